#include <config.h>
#include "hosts.h"

#include <errno.h>
#include <stdio.h>

#include "audit.h"
#include "auth.h"
#include "hypervisor.h"
#include "store.h"
#include "util.h"
#include "vms.h"

#define URI_MAX 512

static bool uri_valid(const char *uri)
{
    size_t n = strlen(uri);
    if (n == 0 || n > URI_MAX || !strstr(uri, ":/"))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) uri[i] <= 0x20 || uri[i] == 0x7f)
            return false;
    return true;
}

static bool pool_valid(const char *pool)
{
    size_t n = strlen(pool);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char) pool[i] <= 0x20 || pool[i] == '/' || pool[i] == 0x7f)
            return false;
    return true;
}

int hosts_register(struct store_txn *txn, const struct principal *by, const char *name,
                   const char *uri, const char *pool, const char *const *segments, size_t n_segments,
                   json_t **ret_host, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    if (!uri_valid(uri)) {
        *ret_error = yg_error_new(422, "invalid_request",
                                  "'%s' is not a libvirt URI (e.g. qemu:///system, "
                                  "qemu+tls://host/system, test:///default)", uri);
        return -EINVAL;
    }
    if (!pool_valid(pool)) {
        *ret_error = yg_error_new(422, "invalid_request", "'%s' is not a storage pool name", pool);
        return -EINVAL;
    }
    int64_t *segment_ids = xcalloc(n_segments ? n_segments : 1, sizeof *segment_ids);
    for (size_t i = 0; i < n_segments; i++) {
        sqlite3_stmt *st = store_stmt(conn, "SELECT id FROM segments WHERE name = ?1");
        if (!st) {
            free(segment_ids);
            return -EIO;
        }
        store_bind_text(st, 1, segments[i]);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            segment_ids[i] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW) {
            *ret_error = yg_error_new(422, "invalid_request",
                                      "segment '%s' is not defined; define it with 'yunguan segment apply' first",
                                      segments[i]);
            _cleanup_free_ char *path = xasprintf("segments[%zu]", i);
            yg_error_add_detail(*ret_error, 0, 0, path, "unknown segment '%s'", segments[i]);
            free(segment_ids);
            return -ENOENT;
        }
    }

    char at[32];
    format_utc_now(at);
    json_t *before = hosts_get_json(conn, name, 1.0);
    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO hosts (name, libvirt_uri, storage_pool, registered_at, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (name) DO UPDATE SET "
        "libvirt_uri = excluded.libvirt_uri, storage_pool = excluded.storage_pool, "
        "registered_at = COALESCE(hosts.registered_at, excluded.registered_at)");
    int rc = SQLITE_ERROR;
    if (st) {
        store_bind_text(st, 1, name);
        store_bind_text(st, 2, uri);
        store_bind_text(st, 3, pool);
        store_bind_text(st, 4, at);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    if (rc != SQLITE_DONE) {
        json_decref(before);
        free(segment_ids);
        return -EIO;
    }
    for (size_t i = 0; i < n_segments; i++) {
        st = store_stmt(conn,
            "INSERT OR IGNORE INTO host_segments (host_id, segment_id) "
            "SELECT id, ?2 FROM hosts WHERE name = ?1");
        if (!st) {
            json_decref(before);
            free(segment_ids);
            return -EIO;
        }
        store_bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, segment_ids[i]);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            json_decref(before);
            free(segment_ids);
            return -EIO;
        }
    }
    free(segment_ids);
    json_t *after = hosts_get_json(conn, name, 1.0);
    _cleanup_free_ char *object = xasprintf("host/%s", name);
    json_t *b = before ? json_pack("{s:O, s:O, s:O}", "libvirt_uri", json_object_get(before, "libvirt_uri"),
                                   "storage_pool", json_object_get(before, "storage_pool"),
                                   "segments", json_object_get(before, "segments")) : NULL;
    json_t *a = json_pack("{s:s, s:s, s:O}", "libvirt_uri", uri, "storage_pool", pool,
                          "segments", json_object_get(after, "segments"));
    int r = audit_append(txn, by->actor, role_to_string(by->role), "host.register", object, b, a);
    json_decref(before);
    json_decref(b);
    json_decref(a);
    if (r < 0) {
        json_decref(after);
        return r;
    }
    *ret_host = after;
    return 0;
}

int hosts_set_drained(struct store_txn *txn, const struct principal *by, const char *name,
                      bool drained, json_t **ret_host, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn, "SELECT drained FROM hosts WHERE name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        *ret_error = yg_error_new(404, "not_found", "host '%s' does not exist", name);
        return -ENOENT;
    }
    bool was = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    if (was != drained) {
        st = store_stmt(conn, "UPDATE hosts SET drained = ?2 WHERE name = ?1");
        if (!st)
            return -EIO;
        store_bind_text(st, 1, name);
        sqlite3_bind_int(st, 2, drained);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return -EIO;
        _cleanup_free_ char *object = xasprintf("host/%s", name);
        json_t *b = json_pack("{s:b}", "drained", was), *a = json_pack("{s:b}", "drained", drained);
        int r = audit_append(txn, by->actor, role_to_string(by->role),
                             drained ? "host.drain" : "host.undrain", object, b, a);
        json_decref(b);
        json_decref(a);
        if (r < 0)
            return r;
    }
    *ret_host = hosts_get_json(conn, name, 1.0);
    return *ret_host ? 0 : -EIO;
}

int hosts_update_status(struct store_txn *txn, const char *name, bool up,
                        const struct hv_capacity *cap, const char *error)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn, "SELECT id, hv_status, hv_error FROM hosts WHERE name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return -ENOENT;
    }
    int64_t id = sqlite3_column_int64(st, 0);
    _cleanup_free_ char *old = xstrdup(store_column_text(st, 1));
    _cleanup_free_ char *old_error = xstrdup(store_column_text(st, 2));
    sqlite3_reset(st);
    const char *status = up ? "up" : "down";
    char at[32];
    format_utc_now(at);
    if (up && cap) {
        st = store_stmt(conn,
            "UPDATE hosts SET cpus = ?2, memory_mib = ?3, disk_gib = ?4, disk_available_gib = ?5, "
            "capacity_at = ?6 WHERE id = ?1");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, cap->cpus);
        sqlite3_bind_int64(st, 3, cap->memory_mib);
        sqlite3_bind_int64(st, 4, cap->disk_gib);
        sqlite3_bind_int64(st, 5, cap->disk_available_gib);
        store_bind_text(st, 6, at);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return -EIO;
    }
    if (streq(old, status) && (up || streq(old_error, error ? error : "")))
        return 0;
    st = store_stmt(conn, "UPDATE hosts SET hv_status = ?2, hv_error = ?3, hv_status_at = ?4 WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, status);
    store_bind_text(st, 3, up ? NULL : error);
    store_bind_text(st, 4, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    if (!streq(old, status)) {
        _cleanup_free_ char *object = xasprintf("host/%s", name);
        json_t *b = json_pack("{s:s}", "status", old);
        json_t *a = json_pack("{s:s, s:s?}", "status", status, "error", up ? NULL : error);
        int r = audit_append(txn, "system", "system", up ? "host.up" : "host.down", object, b, a);
        json_decref(b);
        json_decref(a);
        if (r < 0)
            return r;
    }
    return 0;
}

#define HOST_COLUMNS \
    "SELECT h.id, h.name, h.libvirt_uri, h.storage_pool, h.drained, h.hv_status, h.hv_error, " \
    "       h.cpus, h.memory_mib, h.disk_gib, h.disk_available_gib, h.capacity_at, h.registered_at, " \
    "       (SELECT COALESCE(SUM(v.vcpus),0) FROM vms v WHERE v.host_id = h.id" \
    "        AND " VM_HELD_SQL("v.") "), " \
    "       (SELECT COALESCE(SUM(v.memory_mib),0) FROM vms v WHERE v.host_id = h.id" \
    "        AND " VM_HELD_SQL("v.") "), " \
    "       (SELECT COALESCE(SUM(v.disk_gib),0) FROM vms v WHERE v.host_id = h.id" \
    "        AND " VM_HELD_SQL("v.") "), " \
    "       (SELECT count(*) FROM vms v WHERE v.host_id = h.id" \
    "        AND " VM_HELD_SQL("v.") "), " \
    "       h.hv_status_at " \
    "FROM hosts h "

static json_t *int_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                     : json_integer(sqlite3_column_int64(st, i));
}

static json_t *text_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : json_string(store_column_text(st, i));
}

static json_t *host_row_json(struct store_conn *conn, sqlite3_stmt *st, double overcommit)
{
    int64_t id = sqlite3_column_int64(st, 0);
    bool known = sqlite3_column_type(st, 7) != SQLITE_NULL;
    int64_t cpus = sqlite3_column_int64(st, 7), mem = sqlite3_column_int64(st, 8),
            disk = sqlite3_column_int64(st, 9);
    int64_t vcpu_cap = (int64_t) ((double) cpus * overcommit);
    int64_t uv = sqlite3_column_int64(st, 13), um = sqlite3_column_int64(st, 14),
            ud = sqlite3_column_int64(st, 15);
    json_t *h = json_pack("{s:s, s:o, s:o, s:b, s:b, s:s, s:o, s:o}",
        "name", store_column_text(st, 1),
        "libvirt_uri", text_or_null(st, 2),
        "storage_pool", text_or_null(st, 3),
        "hypervisor", sqlite3_column_type(st, 12) != SQLITE_NULL,
        "drained", sqlite3_column_int(st, 4),
        "status", store_column_text(st, 5),
        "status_error", text_or_null(st, 6),
        "status_since", text_or_null(st, 17));
    json_object_set_new(h, "capacity", !known ? json_null() : json_pack(
        "{s:I, s:I, s:f, s:I, s:I, s:o, s:o}",
        "cpus", (json_int_t) cpus, "vcpus", (json_int_t) vcpu_cap, "vcpu_overcommit", overcommit,
        "memory_mib", (json_int_t) mem, "disk_gib", (json_int_t) disk,
        "disk_available_gib", int_or_null(st, 10), "read_at", text_or_null(st, 11)));
    json_object_set_new(h, "used", json_pack("{s:I, s:I, s:I, s:I}", "vcpus", (json_int_t) uv,
        "memory_mib", (json_int_t) um, "disk_gib", (json_int_t) ud,
        "vms", (json_int_t) sqlite3_column_int64(st, 16)));
    json_object_set_new(h, "free", !known ? json_null() : json_pack("{s:I, s:I, s:I}",
        "vcpus", (json_int_t) (vcpu_cap - uv), "memory_mib", (json_int_t) (mem - um),
        "disk_gib", (json_int_t) (disk - ud)));
    json_t *segments = json_array();
    sqlite3_stmt *s2 = store_stmt(conn,
        "SELECT s.name, s.interface FROM host_segments hs JOIN segments s ON s.id = hs.segment_id "
        "WHERE hs.host_id = ?1 ORDER BY s.name");
    if (s2) {
        sqlite3_bind_int64(s2, 1, id);
        while (sqlite3_step(s2) == SQLITE_ROW)
            json_array_append_new(segments, json_pack("{s:s, s:s}", "name", store_column_text(s2, 0),
                                                      "bridge", store_column_text(s2, 1)));
        sqlite3_reset(s2);
    }
    json_object_set_new(h, "segments", segments);
    return h;
}

json_t *hosts_get_json(struct store_conn *conn, const char *name, double overcommit)
{
    sqlite3_stmt *st = store_stmt(conn, HOST_COLUMNS "WHERE h.name = ?1");
    if (!st)
        return NULL;
    store_bind_text(st, 1, name);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return NULL;
    }
    /* host_row_json() uses another statement: copy this row first. */
    json_t *h = host_row_json(conn, st, overcommit);
    sqlite3_reset(st);
    return h;
}

json_t *hosts_list_json(struct store_conn *conn, double overcommit)
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT name FROM hosts ORDER BY name");
    if (!st)
        return NULL;
    char **names = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(store_column_text(st, 0));
    }
    sqlite3_reset(st);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *h = hosts_get_json(conn, names[i], overcommit);
        if (h)
            json_array_append_new(items, h);
        free(names[i]);
    }
    free(names);
    return json_pack("{s:o}", "items", items);
}

int hosts_foreach_registered(struct store_conn *conn,
                             void (*fn)(const char *name, const char *uri, const char *pool, void *ctx),
                             void *ctx)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT name, libvirt_uri, storage_pool FROM hosts WHERE registered_at IS NOT NULL ORDER BY name");
    if (!st)
        return -EIO;
    while (sqlite3_step(st) == SQLITE_ROW)
        fn(store_column_text(st, 0), store_column_text(st, 1), store_column_text(st, 2), ctx);
    sqlite3_reset(st);
    return 0;
}

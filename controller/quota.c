#include <config.h>
#include "quota.h"

#include <errno.h>
#include <inttypes.h>

#include "audit.h"
#include "auth.h"
#include "lifecycle.h"
#include "store.h"
#include "util.h"
#include "vms.h"

int quota_department_id(struct store_conn *conn, const char *name, int64_t *ret_id)
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT id FROM departments WHERE name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int quota_limits_get(struct store_conn *conn, int64_t department_id, struct quota_limits *ret)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT vcpus, memory_mib, disk_gib, vms, max_lease_days FROM quotas WHERE department_id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, department_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret->max.vcpus = sqlite3_column_int64(st, 0);
        ret->max.memory_mib = sqlite3_column_int64(st, 1);
        ret->max.disk_gib = sqlite3_column_int64(st, 2);
        ret->max.vms = sqlite3_column_int64(st, 3);
        ret->max_lease_days = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

/* One row of four sums into *ADD (added to what is there).  0 or -EIO. */
static int add_sums(struct store_conn *conn, const char *sql, int64_t department_id, struct quota_amounts *add)
{
    sqlite3_stmt *st = store_stmt(conn, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, department_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        add->vcpus += sqlite3_column_int64(st, 0);
        add->memory_mib += sqlite3_column_int64(st, 1);
        add->disk_gib += sqlite3_column_int64(st, 2);
        add->vms += sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

int quota_usage(struct store_conn *conn, int64_t department_id, struct quota_amounts *ret)
{
    /* The live states are those of lifecycle.c's table (request_state_is_live);
     * keep this list in step with it (tests/unit/test-lifecycle.c checks).
     * Once a request has VMs (from its approval on), its VMs count, each
     * until it is decommissioned: decommissioning one credits the quota.
     * Two plain aggregates, each from its covering index, rather than one
     * over a UNION ALL: the union's co-routine cost ~950 instructions per
     * held VM, the plain sum a fifth of that (a department with 1,000 VMs
     * is summed at every submission and approval). */
    struct quota_amounts usage = { 0 };
    int r = add_sums(conn,
        "SELECT COALESCE(SUM(r.total_vcpus),0), COALESCE(SUM(r.total_memory_mib),0), "
        "       COALESCE(SUM(r.total_disk_gib),0), COALESCE(SUM(r.total_vms),0) "
        "FROM requests r WHERE r.department_id = ?1 AND r.state IN (" REQUEST_LIVE_STATES_SQL ") "
        "  AND NOT EXISTS (SELECT 1 FROM vms v WHERE v.request_id = r.id)", department_id, &usage);
    if (r == 0)
        r = add_sums(conn,
            "SELECT COALESCE(SUM(v.vcpus),0), COALESCE(SUM(v.memory_mib),0), COALESCE(SUM(v.disk_gib),0), "
            "       count(*) "
            "FROM vms v WHERE v.department_id = ?1 AND " VM_HELD_SQL("v."), department_id, &usage);
    if (r == 0)
        *ret = usage;
    return r;
}

json_t *quota_amounts_json(const struct quota_amounts *a)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "vcpus", (json_int_t) a->vcpus,
                     "memory_mib", (json_int_t) a->memory_mib,
                     "disk_gib", (json_int_t) a->disk_gib, "vms", (json_int_t) a->vms);
}

json_t *quota_exceeded(const struct quota_limits *limits, const struct quota_amounts *usage,
                       const struct quota_amounts *add)
{
    const struct {
        const char *name;
        int64_t limit, in_use, requested;
    } rows[] = {
        { "vcpus", limits->max.vcpus, usage->vcpus, add->vcpus },
        { "memory_mib", limits->max.memory_mib, usage->memory_mib, add->memory_mib },
        { "disk_gib", limits->max.disk_gib, usage->disk_gib, add->disk_gib },
        { "vms", limits->max.vms, usage->vms, add->vms },
    };
    json_t *out = json_array();
    for (size_t i = 0; i < YG_ARRAY_SIZE(rows); i++)
        if (rows[i].in_use + rows[i].requested > rows[i].limit)
            json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:I, s:I}",
                "resource", rows[i].name, "limit", (json_int_t) rows[i].limit,
                "in_use", (json_int_t) rows[i].in_use, "requested", (json_int_t) rows[i].requested,
                "would_be", (json_int_t) (rows[i].in_use + rows[i].requested)));
    return out;
}

static json_t *limits_json(const struct quota_limits *l)
{
    json_t *j = quota_amounts_json(&l->max);
    json_object_set_new(j, "max_lease_days", json_integer(l->max_lease_days));
    return j;
}

json_t *quota_json(struct store_conn *conn, int64_t department_id)
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT name FROM departments WHERE id = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, department_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return NULL;
    }
    json_t *name = json_string(store_column_text(st, 0));
    sqlite3_reset(st);

    struct quota_limits limits = { 0 };
    struct quota_amounts usage = { 0 };
    int r = quota_limits_get(conn, department_id, &limits);
    if ((r < 0 && r != -ENOENT) || quota_usage(conn, department_id, &usage) < 0) {
        json_decref(name);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o}", "department", name,
                     "limits", r == -ENOENT ? json_null() : limits_json(&limits),
                     "usage", quota_amounts_json(&usage));
}

json_t *quota_list_json(struct store_conn *conn)
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT id FROM departments ORDER BY name");
    if (!st)
        return NULL;
    int64_t ids[1024];
    size_t n = 0;
    while (n < YG_ARRAY_SIZE(ids) && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *q = quota_json(conn, ids[i]);
        if (q)
            json_array_append_new(items, q);
    }
    return items;
}

int quota_set(struct store_txn *txn, const struct principal *by, const char *department,
              const struct quota_limits *limits, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    int64_t department_id;
    char at[32];
    json_t *before = NULL;
    format_utc_now(at);

    int r = quota_department_id(conn, department, &department_id);
    if (r == -ENOENT) {
        sqlite3_stmt *st = store_stmt(conn, "INSERT INTO departments (name, created_at) VALUES (?1, ?2)");
        if (!st)
            return -EIO;
        store_bind_text(st, 1, department);
        store_bind_text(st, 2, at);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return -EIO;
        department_id = sqlite3_last_insert_rowid(store_conn_db(conn));
        json_t *after = json_pack("{s:s}", "name", department);
        _cleanup_free_ char *object = xasprintf("department/%s", department);
        r = audit_append(txn, by->actor, role_to_string(by->role), "department.create",
                         object, NULL, after);
        json_decref(after);
        if (r < 0)
            return r;
    } else if (r < 0) {
        return r;
    } else {
        struct quota_limits old;
        if (quota_limits_get(conn, department_id, &old) == 0)
            before = limits_json(&old);
    }

    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO quotas (department_id, vcpus, memory_mib, disk_gib, vms, max_lease_days) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (department_id) DO UPDATE SET "
        "vcpus = excluded.vcpus, memory_mib = excluded.memory_mib, disk_gib = excluded.disk_gib, "
        "vms = excluded.vms, max_lease_days = excluded.max_lease_days");
    if (!st) {
        json_decref(before);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, department_id);
    sqlite3_bind_int64(st, 2, limits->max.vcpus);
    sqlite3_bind_int64(st, 3, limits->max.memory_mib);
    sqlite3_bind_int64(st, 4, limits->max.disk_gib);
    sqlite3_bind_int64(st, 5, limits->max.vms);
    sqlite3_bind_int64(st, 6, limits->max_lease_days);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(before);
        *ret_error = yg_error_new(500, "internal", "cannot store the quota: %s",
                                  sqlite3_errmsg(store_conn_db(conn)));
        return -EIO;
    }
    json_t *after = limits_json(limits);
    _cleanup_free_ char *object = xasprintf("quota/%s", department);
    r = audit_append(txn, by->actor, role_to_string(by->role), "quota.set", object, before, after);
    json_decref(before);
    json_decref(after);
    return r;
}

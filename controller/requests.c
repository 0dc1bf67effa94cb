#include <config.h>
#include "requests.h"

#include <errno.h>

#include "audit.h"
#include "auth.h"
#include "lifecycle.h"
#include "request.h"
#include "store.h"
#include "util.h"

int64_t requests_insert(struct store_txn *txn, const struct principal *by,
                        const struct request *req, int64_t department_id,
                        const char *source, struct yg_error **ret_error)
{
    char at[32];
    format_utc_now(at);
    return requests_insert_at(txn, by, req, department_id, source, at, ret_error);
}

int64_t requests_insert_at(struct store_txn *txn, const struct principal *by,
                           const struct request *req, int64_t department_id,
                           const char *source, const char *at, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO requests (department_id, name, state, purpose, security_level, lease_until, "
        "  segment, ipv6, total_vms, total_vcpus, total_memory_mib, total_disk_gib, source, "
        "  submitted_by, created_at, updated_at) "
        "VALUES (?1, ?2, 'submitted', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, department_id);
    store_bind_text(st, 2, req->name);
    store_bind_text(st, 3, req->purpose);
    sqlite3_bind_int(st, 4, req->security_level);
    store_bind_text(st, 5, req->lease_until);
    store_bind_text(st, 6, req->segment);
    store_bind_text(st, 7, request_ipv6_to_string(req->ipv6));
    sqlite3_bind_int64(st, 8, req->total_vms);
    sqlite3_bind_int64(st, 9, req->total_vcpus);
    sqlite3_bind_int64(st, 10, req->total_memory_mib);
    sqlite3_bind_int64(st, 11, req->total_disk_gib);
    store_bind_text(st, 12, source);
    store_bind_text(st, 13, by->actor);
    store_bind_text(st, 14, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT) {
        *ret_error = yg_error_new(409, "conflict",
            "department '%s' already has a live request named '%s'; choose another metadata.name "
            "or withdraw the other request first", req->department, req->name);
        yg_error_add_detail(*ret_error, req->name_pos.line, req->name_pos.column, "metadata.name",
                            "a live request named '%s' already exists", req->name);
        return -EEXIST;
    }
    if (rc != SQLITE_DONE)
        return -EIO;
    int64_t id = sqlite3_last_insert_rowid(store_conn_db(conn));

    for (size_t i = 0; i < req->n_vms; i++) {
        const struct request_vm_group *g = &req->vms[i];
        st = store_stmt(conn,
            "INSERT INTO request_vms (request_id, position, name, count, vcpus, memory_mib, "
            "  disk_gib, image) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int(st, 2, (int) i);
        store_bind_text(st, 3, g->name);
        sqlite3_bind_int(st, 4, g->count);
        sqlite3_bind_int(st, 5, g->vcpus);
        sqlite3_bind_int64(st, 6, g->memory_mib);
        sqlite3_bind_int64(st, 7, g->disk_gib);
        store_bind_text(st, 8, g->image);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return -EIO;
    }

    int r = lifecycle_record(txn, by, id, -1, REQUEST_SUBMITTED, NULL);
    if (r < 0)
        return r;
    _cleanup_free_ char *object = xasprintf("request/%lld", (long long) id);
    json_t *after = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}",
                              "state", "submitted", "department", req->department, "name", req->name,
                              "vms", (json_int_t) req->total_vms, "vcpus", (json_int_t) req->total_vcpus,
                              "memory_mib", (json_int_t) req->total_memory_mib,
                              "disk_gib", (json_int_t) req->total_disk_gib);
    r = audit_append(txn, by->actor, role_to_string(by->role), "request.submit", object, NULL, after);
    json_decref(after);
    return r < 0 ? r : id;
}

#define REQUEST_COLUMNS \
    "SELECT r.id, r.name, d.name, r.state, r.purpose, r.security_level, r.lease_until, " \
    "       r.segment, r.ipv6, r.total_vms, r.total_vcpus, r.total_memory_mib, " \
    "       r.total_disk_gib, r.submitted_by, r.created_at, r.updated_at, r.department_id " \
    "FROM requests r JOIN departments d ON d.id = r.department_id "

static json_t *request_row_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, "
                     "s:{s:I, s:I, s:I, s:I}, s:s, s:s, s:s}",
                     "id", (json_int_t) sqlite3_column_int64(st, 0),
                     "name", store_column_text(st, 1),
                     "department", store_column_text(st, 2),
                     "state", store_column_text(st, 3),
                     "purpose", store_column_text(st, 4),
                     "security_level", sqlite3_column_int(st, 5),
                     "lease_until", store_column_text(st, 6),
                     "segment", store_column_text(st, 7),
                     "ipv6", store_column_text(st, 8),
                     "totals",
                       "vms", (json_int_t) sqlite3_column_int64(st, 9),
                       "vcpus", (json_int_t) sqlite3_column_int64(st, 10),
                       "memory_mib", (json_int_t) sqlite3_column_int64(st, 11),
                       "disk_gib", (json_int_t) sqlite3_column_int64(st, 12),
                     "submitted_by", store_column_text(st, 13),
                     "created_at", store_column_text(st, 14),
                     "updated_at", store_column_text(st, 15));
}

json_t *requests_submitted_json(const struct request *req, int64_t id, const char *submitted_by,
                                const char *at)
{
    /* The same keys, order and values as request_row_json() + "vms" give
     * for the row requests_insert_at() stores. */
    json_t *r = json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, "
                          "s:{s:I, s:I, s:I, s:I}, s:s, s:s, s:s}",
                          "id", (json_int_t) id,
                          "name", req->name,
                          "department", req->department,
                          "state", request_state_to_string(REQUEST_SUBMITTED),
                          "purpose", req->purpose,
                          "security_level", req->security_level,
                          "lease_until", req->lease_until,
                          "segment", req->segment,
                          "ipv6", request_ipv6_to_string(req->ipv6),
                          "totals",
                            "vms", (json_int_t) req->total_vms,
                            "vcpus", (json_int_t) req->total_vcpus,
                            "memory_mib", (json_int_t) req->total_memory_mib,
                            "disk_gib", (json_int_t) req->total_disk_gib,
                          "submitted_by", submitted_by,
                          "created_at", at,
                          "updated_at", at);
    if (!r)
        return NULL;
    json_t *vms = json_array();
    for (size_t i = 0; i < req->n_vms; i++) {
        const struct request_vm_group *g = &req->vms[i];
        json_array_append_new(vms, json_pack("{s:s, s:i, s:i, s:I, s:I, s:s}",
            "name", g->name, "count", g->count, "vcpus", g->vcpus,
            "memory_mib", (json_int_t) g->memory_mib, "disk_gib", (json_int_t) g->disk_gib,
            "image", g->image));
    }
    json_object_set_new(r, "vms", vms);
    return r;
}

/* ---- the 201 answer as text, without a jansson tree ----
 * Byte for byte what json_dumps(…, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
 * writes for {"request": requests_submitted_json(…), "warnings": […]}
 * (tests/unit/test-controller.c compares the two): building the tree and
 * dumping it cost ~10 % of a submission's CPU. */

static void answer_indent(struct strbuf *sb, int depth)
{
    static const char spaces[] = "\n                ";
    strbuf_add(sb, spaces, 1 + 2 * (size_t) depth);   /* depth ≤ 7 */
}

/* A JSON string as jansson writes it without JSON_ENSURE_ASCII: UTF-8 as
 * it is. */
static void answer_string(struct strbuf *sb, const char *s)
{
    strbuf_put_json_string(sb, s, strlen(s), false);
}

/* "key": (after a newline and indentation; FIRST: no comma before). */
static void answer_key(struct strbuf *sb, int depth, bool first, const char *key)
{
    if (!first)
        strbuf_add(sb, ",", 1);
    answer_indent(sb, depth);
    answer_string(sb, key);
    strbuf_add(sb, ": ", 2);
}

static void answer_str_field(struct strbuf *sb, int depth, bool first, const char *key,
                             const char *value)
{
    answer_key(sb, depth, first, key);
    answer_string(sb, value ? value : "");
}

static void answer_int_field(struct strbuf *sb, int depth, bool first, const char *key,
                             int64_t value)
{
    char num[24];
    answer_key(sb, depth, first, key);
    int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, (json_int_t) value);
    strbuf_add(sb, num, (size_t) n);
}

char *requests_submitted_answer(const struct request *req, int64_t id, const char *submitted_by,
                                const char *at, const json_t *warnings)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_add(&sb, "{", 1);
    answer_key(&sb, 1, true, "request");
    strbuf_add(&sb, "{", 1);
    answer_int_field(&sb, 2, true, "id", id);
    answer_str_field(&sb, 2, false, "name", req->name);
    answer_str_field(&sb, 2, false, "department", req->department);
    answer_str_field(&sb, 2, false, "state", request_state_to_string(REQUEST_SUBMITTED));
    answer_str_field(&sb, 2, false, "purpose", req->purpose);
    answer_int_field(&sb, 2, false, "security_level", req->security_level);
    answer_str_field(&sb, 2, false, "lease_until", req->lease_until);
    answer_str_field(&sb, 2, false, "segment", req->segment);
    answer_str_field(&sb, 2, false, "ipv6", request_ipv6_to_string(req->ipv6));
    answer_key(&sb, 2, false, "totals");
    strbuf_add(&sb, "{", 1);
    answer_int_field(&sb, 3, true, "vms", req->total_vms);
    answer_int_field(&sb, 3, false, "vcpus", req->total_vcpus);
    answer_int_field(&sb, 3, false, "memory_mib", req->total_memory_mib);
    answer_int_field(&sb, 3, false, "disk_gib", req->total_disk_gib);
    answer_indent(&sb, 2);
    strbuf_add(&sb, "}", 1);
    answer_str_field(&sb, 2, false, "submitted_by", submitted_by);
    answer_str_field(&sb, 2, false, "created_at", at);
    answer_str_field(&sb, 2, false, "updated_at", at);
    answer_key(&sb, 2, false, "vms");
    if (req->n_vms == 0) {
        strbuf_add(&sb, "[]", 2);
    } else {
        strbuf_add(&sb, "[", 1);
        for (size_t i = 0; i < req->n_vms; i++) {
            const struct request_vm_group *g = &req->vms[i];
            if (i)
                strbuf_add(&sb, ",", 1);
            answer_indent(&sb, 3);
            strbuf_add(&sb, "{", 1);
            answer_str_field(&sb, 4, true, "name", g->name);
            answer_int_field(&sb, 4, false, "count", g->count);
            answer_int_field(&sb, 4, false, "vcpus", g->vcpus);
            answer_int_field(&sb, 4, false, "memory_mib", g->memory_mib);
            answer_int_field(&sb, 4, false, "disk_gib", g->disk_gib);
            answer_str_field(&sb, 4, false, "image", g->image);
            answer_indent(&sb, 3);
            strbuf_add(&sb, "}", 1);
        }
        answer_indent(&sb, 2);
        strbuf_add(&sb, "]", 1);
    }
    answer_indent(&sb, 1);
    strbuf_add(&sb, "}", 1);
    answer_key(&sb, 1, false, "warnings");
    size_t n_warnings = json_array_size(warnings);
    if (n_warnings == 0) {
        strbuf_add(&sb, "[]", 2);
    } else {
        strbuf_add(&sb, "[", 1);
        for (size_t i = 0; i < n_warnings; i++) {
            if (i)
                strbuf_add(&sb, ",", 1);
            answer_indent(&sb, 2);
            answer_string(&sb, json_string_value(json_array_get(warnings, i)));
        }
        answer_indent(&sb, 1);
        strbuf_add(&sb, "]", 1);
    }
    strbuf_add(&sb, "\n}", 2);
    return strbuf_steal(&sb);
}

json_t *requests_get_json(struct store_conn *conn, int64_t id, bool full, int64_t *ret_department_id)
{
    sqlite3_stmt *st = store_stmt(conn, REQUEST_COLUMNS "WHERE r.id = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return NULL;
    }
    json_t *r = request_row_json(st);
    if (ret_department_id)
        *ret_department_id = sqlite3_column_int64(st, 16);
    sqlite3_reset(st);

    json_t *vms = json_array();
    st = store_stmt(conn,
        "SELECT name, count, vcpus, memory_mib, disk_gib, image FROM request_vms "
        "WHERE request_id = ?1 ORDER BY position");
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(vms, json_pack("{s:s, s:i, s:i, s:I, s:I, s:s}",
                "name", store_column_text(st, 0), "count", sqlite3_column_int(st, 1),
                "vcpus", sqlite3_column_int(st, 2),
                "memory_mib", (json_int_t) sqlite3_column_int64(st, 3),
                "disk_gib", (json_int_t) sqlite3_column_int64(st, 4),
                "image", store_column_text(st, 5)));
        sqlite3_reset(st);
    }
    json_object_set_new(r, "vms", vms);
    if (!full)
        return r;

    json_t *transitions = json_array();
    st = store_stmt(conn,
        "SELECT from_state, to_state, actor, role, reason, at FROM transitions "
        "WHERE request_id = ?1 ORDER BY id");
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *from = (const char *) sqlite3_column_text(st, 0);
            const char *reason = (const char *) sqlite3_column_text(st, 4);
            json_array_append_new(transitions, json_pack("{s:o, s:s, s:s, s:s, s:o, s:s}",
                "from", from ? json_string(from) : json_null(),
                "to", store_column_text(st, 1), "actor", store_column_text(st, 2),
                "role", store_column_text(st, 3),
                "reason", reason ? json_string(reason) : json_null(),
                "at", store_column_text(st, 5)));
        }
        sqlite3_reset(st);
    }
    json_object_set_new(r, "transitions", transitions);
    st = store_stmt(conn, "SELECT source FROM requests WHERE id = ?1");
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW)
            json_object_set_new(r, "source", json_string(store_column_text(st, 0)));
        sqlite3_reset(st);
    }
    return r;
}

json_t *requests_list_json(struct store_conn *conn, int64_t department_id, int state,
                           int64_t before_id, int limit)
{
    /* One statement per filter combination, so each can use its index:
     * (department_id, id) or (state, id).  Both filters: walk the
     * department's index and test the state. */
    static const char *const sql[4] = {
        REQUEST_COLUMNS "WHERE r.id < ?3 ORDER BY r.id DESC LIMIT ?4",
        REQUEST_COLUMNS "WHERE r.department_id = ?1 AND r.id < ?3 ORDER BY r.id DESC LIMIT ?4",
        REQUEST_COLUMNS "WHERE r.state = ?2 AND r.id < ?3 ORDER BY r.id DESC LIMIT ?4",
        REQUEST_COLUMNS "WHERE r.department_id = ?1 AND r.state = ?2 AND r.id < ?3 "
                        "ORDER BY r.id DESC LIMIT ?4",
    };
    int which = (department_id > 0 ? 1 : 0) | (state >= 0 ? 2 : 0);
    sqlite3_stmt *st = store_stmt(conn, sql[which]);
    if (!st)
        return NULL;
    if (department_id > 0)
        sqlite3_bind_int64(st, 1, department_id);
    if (state >= 0)
        store_bind_text(st, 2, request_state_to_string((enum request_state) state));
    sqlite3_bind_int64(st, 3, before_id > 0 ? before_id : INT64_MAX);
    sqlite3_bind_int(st, 4, limit + 1);
    json_t *items = json_array();
    int n = 0;
    bool more = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == limit) {
            more = true;
            break;
        }
        json_array_append_new(items, request_row_json(st));
        n++;
    }
    sqlite3_reset(st);
    json_t *next = json_null();
    if (more) {
        json_t *last = json_array_get(items, json_array_size(items) - 1);
        next = json_integer(json_integer_value(json_object_get(last, "id")));
    }
    return json_pack("{s:o, s:o}", "items", items, "next", next);
}

int requests_count_by_state(struct store_conn *conn, int64_t counts[])
{
    for (int i = 0; i < REQUEST_STATE_MAX; i++)
        counts[i] = 0;
    sqlite3_stmt *st = store_stmt(conn, "SELECT state, count(*) FROM requests GROUP BY state");
    if (!st)
        return -EIO;
    while (sqlite3_step(st) == SQLITE_ROW) {
        int s = request_state_from_string(store_column_text(st, 0));
        if (s >= 0)
            counts[s] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return 0;
}

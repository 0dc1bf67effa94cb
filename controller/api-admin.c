/* /api/v1/quotas, /api/v1/tokens, /api/v1/audit. */
#include <config.h>

#include <errno.h>
#include <stdio.h>

#include "api.h"
#include "api-handlers.h"
#include "audit.h"
#include "auth.h"
#include "quota.h"
#include "util.h"

/* ---- quotas ---- */

void api_quotas_list(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *items = reader ? quota_list_json(reader) : NULL;
    if (!items)
        api_reply_errorf(call, 500, "internal", "cannot read quotas");
    else
        api_reply_json(call, 200, json_pack("{s:o}", "items", items));
}

void api_quotas_get(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    int64_t id;
    if (by->role == ROLE_DEPARTMENT && !streq(args->name, by->department)) {
        api_reply_errorf(call, 403, "forbidden",
                         "this token belongs to department '%s' and cannot see the quota of '%s'",
                         by->department, args->name);
        return;
    }
    int r = reader ? quota_department_id(reader, args->name, &id) : -EIO;
    json_t *q = r == 0 ? quota_json(reader, id) : NULL;
    if (r == -ENOENT)
        api_reply_errorf(call, 404, "not_found", "department '%s' does not exist", args->name);
    else if (!q)
        api_reply_errorf(call, 500, "internal", "cannot read the quota");
    else
        api_reply_json(call, 200, json_pack("{s:o}", "quota", q));
}

struct quota_job {
    struct principal by;
    char name[128];
    struct quota_limits limits;
    struct yg_error *error;
    json_t *quota;
};

static int quota_run(struct store_txn *txn, void *ctx)
{
    struct quota_job *j = ctx;
    int r = quota_set(txn, &j->by, j->name, &j->limits, &j->error);
    if (r < 0)
        return r;
    int64_t id;
    if (quota_department_id(store_txn_conn(txn), j->name, &id) < 0)
        return -EIO;
    j->quota = quota_json(store_txn_conn(txn), id);
    return j->quota ? 0 : -EIO;
}

static void quota_finish(struct api_call *call, void *ctx, int result)
{
    struct quota_job *j = ctx;
    if (result == 0 && j->quota)
        api_reply_json(call, 200, json_pack("{s:O}", "quota", j->quota));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    json_decref(j->quota);
    free(j);
}

void api_quotas_put(struct api_call *call, const struct api_route_args *args)
{
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    static const char *const fields[] = { "vcpus", "memory_mib", "disk_gib", "vms", "max_lease_days" };
    int64_t values[YG_ARRAY_SIZE(fields)];
    struct yg_error *e = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        bool known = false;
        for (size_t i = 0; i < YG_ARRAY_SIZE(fields); i++)
            known |= streq(key, fields[i]);
        if (!known) {
            if (!e)
                e = yg_error_new(400, "bad_request", "the quota is not valid");
            yg_error_add_detail(e, 0, 0, key, "unknown field; the fields are vcpus, memory_mib, "
                                "disk_gib, vms and max_lease_days");
        }
    }
    for (size_t i = 0; i < YG_ARRAY_SIZE(fields); i++) {
        v = json_object_get(body, fields[i]);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > (json_int_t) 1 << 40) {
            if (!e)
                e = yg_error_new(400, "bad_request", "the quota is not valid");
            yg_error_add_detail(e, 0, 0, fields[i], v ? "must be a non-negative integer"
                                                      : "is required (a non-negative integer)");
            continue;
        }
        values[i] = json_integer_value(v);
    }
    json_decref(body);
    if (e) {
        api_reply_error(call, e);
        return;
    }
    if (values[4] > 3650) {
        api_reply_errorf(call, 400, "bad_request", "max_lease_days must be at most 3650 (ten years)");
        return;
    }
    struct quota_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    snprintf(j->name, sizeof j->name, "%s", args->name);
    j->limits.max.vcpus = values[0];
    j->limits.max.memory_mib = values[1];
    j->limits.max.disk_gib = values[2];
    j->limits.max.vms = values[3];
    j->limits.max_lease_days = values[4];
    api_defer(call, quota_run, quota_finish, j);
}

/* ---- tokens ---- */

struct token_job {
    struct principal by;
    enum role role;
    char department[128];
    char *description;
    int64_t revoke_id;
    struct yg_error *error;
    json_t *token;
    char *secret;
};

static int token_create_run(struct store_txn *txn, void *ctx)
{
    struct token_job *j = ctx;
    int64_t department_id = 0;
    if (j->role == ROLE_DEPARTMENT) {
        int r = quota_department_id(store_txn_conn(txn), j->department, &department_id);
        if (r == -ENOENT) {
            j->error = yg_error_new(422, "invalid_request",
                                    "department '%s' does not exist; create it with 'yunguan quota set %s ...'",
                                    j->department, j->department);
            return r;
        }
        if (r < 0)
            return r;
    }
    int64_t id = auth_token_create(txn, &j->by, j->role, department_id, j->description, &j->secret);
    if (id < 0)
        return (int) id;
    j->token = auth_token_json(store_txn_conn(txn), id);
    return j->token ? 0 : -EIO;
}

static void token_finish(struct api_call *call, void *ctx, int result)
{
    struct token_job *j = ctx;
    if (result == 0 && j->token) {
        if (j->secret)
            json_object_set_new(j->token, "secret", json_string(j->secret));
        api_reply_json(call, j->secret ? 201 : 200, json_pack("{s:O}", "token", j->token));
    } else if (j->error) {
        api_reply_error(call, steal_pointer(&j->error));
    }
    json_decref(j->token);
    if (j->secret)
        explicit_bzero(j->secret, strlen(j->secret));
    free(j->secret);
    free(j->description);
    free(j);
}

void api_tokens_create(struct api_call *call, const struct api_route_args *args)
{
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    const char *role_s = json_string_value(json_object_get(body, "role"));
    const char *department = json_string_value(json_object_get(body, "department"));
    const char *description = json_string_value(json_object_get(body, "description"));
    int role = role_from_string(role_s);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (!streq(key, "role") && !streq(key, "department") && !streq(key, "description")) {
            api_reply_errorf(call, 400, "bad_request",
                             "unknown field '%s'; the fields are role, department and description", key);
            json_decref(body);
            return;
        }
    const char *problem = NULL;
    if (role < 0 || role == ROLE_AGENT)
        problem = "role must be admin, cloudops, netops, auditor or department";
    else if (role == ROLE_DEPARTMENT && (!department || !*department))
        problem = "a department token needs 'department'";
    else if (role != ROLE_DEPARTMENT && json_object_get(body, "department"))
        problem = "only department tokens are bound to a department";
    else if (department && strlen(department) > 63)
        problem = "department names are at most 63 characters";
    else if (description && strlen(description) > 200)
        problem = "description must be at most 200 characters";
    if (problem) {
        api_reply_errorf(call, 400, "bad_request", "%s", problem);
        json_decref(body);
        return;
    }
    struct token_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    j->role = (enum role) role;
    snprintf(j->department, sizeof j->department, "%s", department ? department : "");
    j->description = xstrdup(description ? description : "");
    json_decref(body);
    api_defer(call, token_create_run, token_finish, j);
}

void api_tokens_list(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *items = reader ? auth_token_list(reader) : NULL;
    if (!items)
        api_reply_errorf(call, 500, "internal", "cannot read tokens");
    else
        api_reply_json(call, 200, json_pack("{s:o}", "items", items));
}

static int token_revoke_run(struct store_txn *txn, void *ctx)
{
    struct token_job *j = ctx;
    struct store_conn *conn = store_txn_conn(txn);
    json_t *before = auth_token_json(conn, j->revoke_id);
    if (!before) {
        j->error = yg_error_new(404, "not_found", "token %lld does not exist", (long long) j->revoke_id);
        return -ENOENT;
    }
    if (!json_is_null(json_object_get(before, "revoked_at"))) {
        j->error = yg_error_new(409, "conflict", "token %lld was already revoked at %s",
                                (long long) j->revoke_id,
                                json_string_value(json_object_get(before, "revoked_at")));
        json_decref(before);
        return -EBUSY;
    }
    /* Never lock every administrator out. */
    if (streq_ptr(json_string_value(json_object_get(before, "role")), "admin")) {
        sqlite3_stmt *count = store_stmt(conn,
            "SELECT count(*) FROM tokens WHERE role = 'admin' AND revoked_at IS NULL");
        int64_t admins = count && sqlite3_step(count) == SQLITE_ROW ? sqlite3_column_int64(count, 0) : 0;
        if (count)
            sqlite3_reset(count);
        if (admins <= 1) {
            j->error = yg_error_new(409, "conflict",
                                    "token %lld is the last admin token; create another admin token first",
                                    (long long) j->revoke_id);
            json_decref(before);
            return -EBUSY;
        }
    }
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(conn, "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2");
    if (!st) {
        json_decref(before);
        return -EIO;
    }
    store_bind_text(st, 1, at);
    sqlite3_bind_int64(st, 2, j->revoke_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(before);
        return -EIO;
    }
    j->token = auth_token_json(conn, j->revoke_id);
    char object[48];
    snprintf(object, sizeof object, "token/%lld", (long long) j->revoke_id);
    int r = audit_append(txn, j->by.actor, role_to_string(j->by.role), "token.revoke", object,
                         before, j->token);
    json_decref(before);
    return r;
}

void api_tokens_revoke(struct api_call *call, const struct api_route_args *args)
{
    struct token_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    j->revoke_id = args->id;
    api_call_invalidates_tokens(call);   /* revocation takes effect at once */
    api_defer(call, token_revoke_run, token_finish, j);
}

/* ---- audit ---- */

void api_audit_list(struct api_call *call, const struct api_route_args *args)
{
    int64_t after = 0, limit = 100;
    const char *after_s = api_call_query(call, "after");
    const char *limit_s = api_call_query(call, "limit");
    if ((after_s && !api_parse_int64(after_s, 0, INT64_MAX, &after)) ||
        (limit_s && !api_parse_int64(limit_s, 1, 1000, &limit))) {
        api_reply_errorf(call, 400, "bad_request",
                         "after must be an entry id (0 or more) and limit an integer from 1 to 1000");
        return;
    }
    struct store_conn *reader = api_call_reader(call);
    json_t *page = reader ? audit_list(reader, after, (int) limit) : NULL;
    if (!page)
        api_reply_errorf(call, 500, "internal", "cannot read the audit trail");
    else
        api_reply_json(call, 200, page);
}

void api_audit_verify(struct api_call *call, const struct api_route_args *args)
{
    struct audit_anchor anchors[AUDIT_MAX_ANCHORS];
    size_t n_anchors = 0;
    const char *anchor = api_call_query(call, "anchor");
    char err[256];
    if (anchor && audit_anchors_parse(anchor, anchors, &n_anchors, err, sizeof err) < 0) {
        api_reply_errorf(call, 400, "bad_request", "anchor: %s", err);
        return;
    }
    struct store_conn *reader = api_call_reader(call);
    json_t *result = reader ? audit_verify_anchored(reader, anchors, n_anchors) : NULL;
    if (!result)
        api_reply_errorf(call, 500, "internal", "cannot read the audit trail");
    else
        api_reply_json(call, 200, result);
}

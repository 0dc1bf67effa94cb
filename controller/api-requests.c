/* /api/v1/requests: submit (YAML or JSON, dry run, idempotency), list,
 * show, and the approve / reject / withdraw transitions. */
#include <config.h>

#include <errno.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "api-handlers.h"
#include "lifecycle.h"
#include "quota.h"
#include "request.h"
#include "requests.h"
#include "sha256.h"
#include "util.h"

#define IDEMPOTENCY_KEY_MAX 128

struct submit_job {
    struct request *req;
    int64_t department_id;
    struct principal by;
    char *source;
    char *idempotency_key;
    char body_sha256[65];
    json_t *warnings;
    /* results */
    int64_t id;
    char submitted_at[32];   /* created_at = updated_at of the new row */
    int status;
    char *response;          /* JSON text of the answer */
    bool replayed;
    struct yg_error *error;
};

static void submit_job_free(struct submit_job *j)
{
    request_free(j->req);
    free(j->source);
    free(j->idempotency_key);
    json_decref(j->warnings);
    free(j->response);
    yg_error_free(j->error);
    free(j);
}

static bool media_type_is(const char *content_type, const char *const *accepted)
{
    if (!content_type)
        return false;
    size_t n = strcspn(content_type, ";");
    while (n && content_type[n - 1] == ' ')
        n--;
    for (; *accepted; accepted++)
        if (strlen(*accepted) == n && !strncasecmp(content_type, *accepted, n))
            return true;
    return false;
}

/* 0 and the stored status and response when KEY was used before by this
 * principal with the same body; -EEXIST with another body; -ENOENT. */
static int idempotency_lookup(struct store_conn *conn, const char *principal, const char *key,
                              const char *body_sha256, int *ret_status, char **ret_response)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT body_sha256, status, response FROM idempotency_keys WHERE principal = ?1 AND key = ?2");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, principal);
    store_bind_text(st, 2, key);
    int r = -ENOENT;
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (!streq(store_column_text(st, 0), body_sha256))
            r = -EEXIST;
        else {
            *ret_status = sqlite3_column_int(st, 1);
            *ret_response = xstrdup(store_column_text(st, 2));
            r = 0;
        }
    }
    sqlite3_reset(st);
    return r;
}

static struct yg_error *idempotency_conflict(const char *key)
{
    return yg_error_new(409, "conflict",
                        "the Idempotency-Key '%s' was already used for a different request body; "
                        "use a new key for a new request", key);
}

/* The 201 answer's text, from what was parsed and stored:
 * {"request": …, "warnings": […]}. */
static char *submit_answer(const struct submit_job *j)
{
    return requests_submitted_answer(j->req, j->id, j->by.actor, j->submitted_at, j->warnings);
}

static int submit_run(struct store_txn *txn, void *ctx)
{
    struct submit_job *j = ctx;
    struct store_conn *conn = store_txn_conn(txn);

    if (j->idempotency_key) {
        int r = idempotency_lookup(conn, j->by.actor, j->idempotency_key, j->body_sha256,
                                   &j->status, &j->response);
        if (r == 0) {
            j->replayed = true;
            return 0;
        }
        if (r == -EEXIST) {
            j->error = idempotency_conflict(j->idempotency_key);
            return r;
        }
        if (r != -ENOENT)
            return r;
    }

    format_utc_now(j->submitted_at);
    int64_t id = requests_insert_at(txn, &j->by, j->req, j->department_id, j->source,
                                    j->submitted_at, &j->error);
    if (id < 0)
        return (int) id;
    j->id = id;
    j->status = 201;
    if (!j->idempotency_key)
        return 0;       /* the answer is built after the commit, off the writer */

    /* A replay must return exactly this answer: build and keep it now. */
    j->response = submit_answer(j);

    const char *at = j->submitted_at;
    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO idempotency_keys (principal, key, body_sha256, status, response, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, j->by.actor);
    store_bind_text(st, 2, j->idempotency_key);
    store_bind_text(st, 3, j->body_sha256);
    sqlite3_bind_int(st, 4, j->status);
    store_bind_text(st, 5, j->response);
    store_bind_text(st, 6, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    return 0;
}

static void reply_raw_json(struct api_call *call, int status, const char *text)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, text);
    strbuf_puts(&sb, "\n");
    api_reply_text(call, status, "application/json", strbuf_steal(&sb));
}

static void submit_finish(struct api_call *call, void *ctx, int result)
{
    struct submit_job *j = ctx;
    if (result == 0 && j->response) {
        if (j->replayed)
            api_add_header(call, "Idempotency-Replayed", "true");
        reply_raw_json(call, j->status, j->response);
    } else if (result == 0 && j->id > 0) {
        _cleanup_free_ char *answer = submit_answer(j);
        reply_raw_json(call, 201, answer);
    } else if (j->error) {
        api_reply_error(call, steal_pointer(&j->error));
    } else {
        api_reply_errorf(call, result == -ESHUTDOWN ? 503 : 500, "internal",
                         "the request could not be stored (%s)", strerror(-result));
    }
    submit_job_free(j);
}

static bool idempotency_key_valid(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > IDEMPOTENCY_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e)
            return false;
    return true;
}

static json_t *quota_outcome(const struct quota_limits *limits, const struct quota_amounts *usage,
                             const struct quota_amounts *add, json_t *exceeded)
{
    struct quota_amounts after = {
        usage->vcpus + add->vcpus, usage->memory_mib + add->memory_mib,
        usage->disk_gib + add->disk_gib, usage->vms + add->vms,
    };
    json_t *l = quota_amounts_json(&limits->max);
    json_object_set_new(l, "max_lease_days", json_integer(limits->max_lease_days));
    return json_pack("{s:o, s:o, s:o, s:b, s:O}", "limits", l, "usage", quota_amounts_json(usage),
                     "after", quota_amounts_json(&after), "fits", json_array_size(exceeded) == 0,
                     "exceeded", exceeded);
}

void api_requests_submit(struct api_call *call, const struct api_route_args *args)
{
    static const char *const yaml_types[] = {
        "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "application/json", NULL,
    };
    const struct principal *by = api_call_principal(call);
    const char *content_type = api_call_header(call, "Content-Type");
    if (!media_type_is(content_type, yaml_types)) {
        api_reply_errorf(call, 415, "unsupported_media_type",
                         "send the request as application/yaml or application/json (got '%s')",
                         content_type ? content_type : "nothing");
        return;
    }
    const char *dry = api_call_query(call, "dry_run");
    bool dry_run = dry && (streq(dry, "true") || streq(dry, "1"));
    const char *key = api_call_header(call, "Idempotency-Key");
    if (key && !idempotency_key_valid(key)) {
        api_reply_errorf(call, 400, "bad_request",
                         "the Idempotency-Key must be 1 to %d printable ASCII characters",
                         IDEMPOTENCY_KEY_MAX);
        return;
    }

    size_t len;
    const char *body = api_call_body(call, &len);
    struct request *req = NULL;
    struct yg_error *err = NULL;
    if (request_parse(body, len, NULL, &req, &err) < 0) {
        api_reply_error(call, err);
        return;
    }

    /* Whose request is it? */
    if (by->role == ROLE_DEPARTMENT && !streq(req->department, by->department)) {
        err = yg_error_new(403, "forbidden",
                           "this token belongs to department '%s' and cannot submit for '%s'",
                           by->department, req->department);
        yg_error_add_detail(err, req->department_pos.line, req->department_pos.column,
                            "metadata.department", "must be '%s' for this token", by->department);
        request_free(req);
        api_reply_error(call, err);
        return;
    }
    struct store_conn *reader = api_call_reader(call);
    int64_t department_id = 0;
    struct quota_limits limits;
    struct quota_amounts usage;
    int r = reader ? quota_department_id(reader, req->department, &department_id) : -EIO;
    if (r == 0)
        r = quota_limits_get(reader, department_id, &limits);
    if (r == -ENOENT) {
        err = yg_error_new(422, "invalid_request",
                           "department '%s' has no quota yet; an administrator sets one with "
                           "'yunguan quota set %s ...'", req->department, req->department);
        yg_error_add_detail(err, req->department_pos.line, req->department_pos.column,
                            "metadata.department", "department '%s' has no quota", req->department);
        request_free(req);
        api_reply_error(call, err);
        return;
    }
    if (r < 0 || quota_usage(reader, department_id, &usage) < 0) {
        request_free(req);
        api_reply_errorf(call, 500, "internal", "cannot read the department's quota");
        return;
    }

    /* The department's lease policy. */
    int days = request_lease_days_from(req, (int64_t) time(NULL));
    if (days < 1 || days > limits.max_lease_days) {
        err = yg_error_new(422, "invalid_request", "the lease does not fit department '%s' policy",
                           req->department);
        if (days < 1)
            yg_error_add_detail(err, req->lease_until_pos.line, req->lease_until_pos.column,
                                "spec.lease.until", "lease ends on %s, which is not in the future",
                                req->lease_until);
        else
            yg_error_add_detail(err, req->lease_until_pos.line, req->lease_until_pos.column,
                                "spec.lease.until",
                                "lease of %d days is longer than the %lld days department '%s' allows",
                                days, (long long) limits.max_lease_days, req->department);
        request_free(req);
        api_reply_error(call, err);
        return;
    }

    struct quota_amounts add = { req->total_vcpus, req->total_memory_mib, req->total_disk_gib,
                                 req->total_vms };
    json_t *exceeded = quota_exceeded(&limits, &usage, &add);
    json_t *warnings = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(exceeded, i, x) {
        char w[256];
        snprintf(w, sizeof w, "approval would exceed the %s quota of department '%s': "
                 "%lld in use + %lld requested > limit %lld",
                 json_string_value(json_object_get(x, "resource")), req->department,
                 (long long) json_integer_value(json_object_get(x, "in_use")),
                 (long long) json_integer_value(json_object_get(x, "requested")),
                 (long long) json_integer_value(json_object_get(x, "limit")));
        json_array_append_new(warnings, json_string(w));
    }

    if (dry_run) {
        json_t *doc = request_to_json(req);
        json_t *answer = json_pack("{s:b, s:b, s:o, s:O, s:o, s:o}", "dry_run", 1, "valid", 1,
                                   "request", doc, "totals", json_object_get(doc, "totals"),
                                   "quota", quota_outcome(&limits, &usage, &add, exceeded),
                                   "warnings", warnings);
        json_decref(exceeded);
        request_free(req);
        api_reply_json(call, 200, answer);
        return;
    }
    json_decref(exceeded);

    struct submit_job *j = xcalloc(1, sizeof *j);
    j->req = req;
    j->department_id = department_id;
    j->by = *by;
    j->source = xstrndup(body, len);
    j->warnings = warnings;
    if (key) {
        /* Only a replay compares bodies: no hash of every submission. */
        sha256_hex(body, len, j->body_sha256);
        j->idempotency_key = xstrdup(key);
        /* A replay needs no writer round trip. */
        int status;
        char *response = NULL;
        r = idempotency_lookup(reader, by->actor, key, j->body_sha256, &status, &response);
        if (r == 0) {
            api_add_header(call, "Idempotency-Replayed", "true");
            reply_raw_json(call, status, response);
            free(response);
            submit_job_free(j);
            return;
        }
        if (r == -EEXIST) {
            api_reply_error(call, idempotency_conflict(key));
            submit_job_free(j);
            return;
        }
    }
    api_defer(call, submit_run, submit_finish, j);
}

/* Which department a list is about: a department's token sees its own
 * (asking for another's is a 403); operations may name one (unknown: an
 * empty page) or none (department_id stays 0: all).  False when the
 * answer has been given already. */
bool api_list_department_scope(struct api_call *call, const struct principal *by,
                               struct store_conn *reader, const char *department,
                               int64_t *department_id)
{
    if (by->role == ROLE_DEPARTMENT) {
        if (department && !streq(department, by->department)) {
            api_reply_errorf(call, 403, "forbidden",
                             "this token belongs to department '%s' and cannot list '%s'",
                             by->department, department);
            return false;
        }
        *department_id = by->department_id;
    } else if (department) {
        int r = quota_department_id(reader, department, department_id);
        if (r == -ENOENT) {
            api_reply_json(call, 200, json_pack("{s:[], s:n}", "items", "next"));
            return false;
        }
        if (r < 0) {
            api_reply_errorf(call, 500, "internal", "cannot read departments");
            return false;
        }
    }
    return true;
}

void api_requests_list(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    const char *department = api_call_query(call, "department");
    const char *state_s = api_call_query(call, "state");
    const char *limit_s = api_call_query(call, "limit");
    const char *after_s = api_call_query(call, "after");
    int64_t department_id = 0, limit = REQUESTS_PAGE_DEFAULT, after = 0;
    int state = -1;

    if (!reader) {
        api_reply_errorf(call, 500, "internal", "the store is unavailable");
        return;
    }
    if (!api_list_department_scope(call, by, reader, department, &department_id))
        return;
    if (state_s && (state = request_state_from_string(state_s)) < 0) {
        api_reply_errorf(call, 400, "bad_request",
                         "state '%s' is not known; use submitted, approved, rejected, withdrawn, "
                         "provisioning, active, closed or failed", state_s);
        return;
    }
    if (limit_s && !api_parse_int64(limit_s, 1, REQUESTS_PAGE_MAX, &limit)) {
        api_reply_errorf(call, 400, "bad_request", "limit must be an integer from 1 to %d",
                         REQUESTS_PAGE_MAX);
        return;
    }
    if (after_s && !api_parse_int64(after_s, 1, INT64_MAX, &after)) {
        api_reply_errorf(call, 400, "bad_request", "after must be a request id (a positive integer)");
        return;
    }
    json_t *page = requests_list_json(reader, department_id, state, after, (int) limit);
    if (!page)
        api_reply_errorf(call, 500, "internal", "cannot list requests");
    else
        api_reply_json(call, 200, page);
}

void api_requests_get(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    int64_t department_id = 0;
    json_t *r = reader ? requests_get_json(reader, args->id, true, &department_id) : NULL;
    if (!r || (by->role == ROLE_DEPARTMENT && department_id != by->department_id)) {
        json_decref(r);
        api_reply_errorf(call, 404, "not_found", "request %lld does not exist", (long long) args->id);
        return;
    }
    api_reply_json(call, 200, json_pack("{s:o}", "request", r));
}

struct action_job {
    struct principal by;
    int64_t id;
    enum request_action action;
    char *reason;
    struct yg_error *error;
    json_t *request;
};

static int action_run(struct store_txn *txn, void *ctx)
{
    struct action_job *j = ctx;
    int r = lifecycle_apply(txn, &j->by, j->id, j->action, j->reason, &j->error);
    if (r < 0)
        return r;
    j->request = requests_get_json(store_txn_conn(txn), j->id, false, NULL);
    return j->request ? 0 : -EIO;
}

static void action_finish(struct api_call *call, void *ctx, int result)
{
    struct action_job *j = ctx;
    if (result == 0 && j->request)
        api_reply_json(call, 200, json_pack("{s:O}", "request", j->request));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    else
        api_reply_errorf(call, 500, "internal", "the change could not be stored (%s)",
                         strerror(-result));
    json_decref(j->request);
    free(j->reason);
    free(j);
}

void api_requests_action(struct api_call *call, const struct api_route_args *args)
{
    int action = request_action_from_string(args->verb);
    if (action < 0) {
        api_reply_errorf(call, 404, "not_found", "unknown action '%s'", args->verb);
        return;
    }
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    json_t *reason_j = json_object_get(body, "reason");
    const char *reason = json_string_value(reason_j);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (!streq(key, "reason")) {
            api_reply_errorf(call, 400, "bad_request", "unknown field '%s'; only 'reason' is accepted", key);
            json_decref(body);
            return;
        }
    if ((reason_j && !reason) || (reason && strlen(reason) > 1000)) {
        api_reply_errorf(call, 400, "bad_request", "reason must be a string of at most 1000 characters");
        json_decref(body);
        return;
    }
    if (action == REQUEST_ACTION_REJECT && (!reason || !*reason)) {
        api_reply_errorf(call, 400, "bad_request", "a rejection needs a reason for the department");
        json_decref(body);
        return;
    }
    struct action_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    j->id = args->id;
    j->action = (enum request_action) action;
    j->reason = reason && *reason ? xstrdup(reason) : NULL;
    json_decref(body);
    api_defer(call, action_run, action_finish, j);
}

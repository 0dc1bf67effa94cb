/* Hosts' agents and dual-stack readiness: enrollment, the agent's desired
 * state and reports, segment summaries, progress, waivers. */
#include <config.h>

#include <errno.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "api-handlers.h"
#include "audit.h"
#include "auth.h"
#include "readiness.h"
#include "sha256.h"
#include "util.h"

#define ENROLLMENT_LIFETIME (24 * 3600)

static int64_t now_epoch(void) { return (int64_t) time(NULL); }

/* ---- enrollment ---- */

struct enroll_job {
    struct principal by;
    char host[128];
    char secret_sha256[65];
    char *secret;               /* generated (enrollment) or issued (agent token) */
    int64_t expires;
    struct yg_error *error;
    int status;
};

static void enroll_job_free(struct enroll_job *j)
{
    if (j->secret)
        explicit_bzero(j->secret, strlen(j->secret));
    free(j->secret);
    yg_error_free(j->error);
    free(j);
}

static int host_id_by_name(struct store_conn *conn, const char *name, bool create, int64_t *ret)
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT id FROM hosts WHERE name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (!create)
        return -ENOENT;
    char at[32];
    format_utc_now(at);
    st = store_stmt(conn, "INSERT INTO hosts (name, created_at) VALUES (?1, ?2)");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    store_bind_text(st, 2, at);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    *ret = sqlite3_last_insert_rowid(store_conn_db(conn));
    return 1;
}

static int enrollment_create_run(struct store_txn *txn, void *ctx)
{
    struct enroll_job *j = ctx;
    struct store_conn *conn = store_txn_conn(txn);
    int64_t host_id;
    int r = host_id_by_name(conn, j->host, true, &host_id);
    if (r < 0)
        return r;
    uint8_t raw[24];
    r = random_bytes(raw, sizeof raw);
    if (r < 0)
        return r;
    char hex[2 * sizeof raw + 1];
    hex_encode(raw, sizeof raw, hex);
    j->secret = xasprintf("ygenroll_%s", hex);
    sha256_hex(j->secret, strlen(j->secret), j->secret_sha256);
    char at[32];
    format_utc_now(at);
    j->expires = now_epoch() + ENROLLMENT_LIFETIME;
    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO enrollments (host_id, secret_sha256, created_at, created_by, expires_epoch) "
        "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, host_id);
    store_bind_text(st, 2, j->secret_sha256);
    store_bind_text(st, 3, at);
    store_bind_text(st, 4, j->by.actor);
    sqlite3_bind_int64(st, 5, j->expires);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    _cleanup_free_ char *object = xasprintf("host/%s", j->host);
    json_t *after = json_pack("{s:s, s:I}", "enrollment", "created", "expires_epoch", (json_int_t) j->expires);
    r = audit_append(txn, j->by.actor, role_to_string(j->by.role), "host.enrollment", object, NULL, after);
    json_decref(after);
    return r;
}

static void enrollment_create_finish(struct api_call *call, void *ctx, int result)
{
    struct enroll_job *j = ctx;
    if (result == 0)
        api_reply_json(call, 201, json_pack("{s:s, s:s, s:I, s:s}", "host", j->host,
                                            "secret", j->secret, "expires_epoch", (json_int_t) j->expires,
                                            "note", "one-time: the agent spends it at enrollment"));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    enroll_job_free(j);
}

void api_hosts_enrollment(struct api_call *call, const struct api_route_args *args)
{
    struct enroll_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    snprintf(j->host, sizeof j->host, "%s", args->name);
    api_defer(call, enrollment_create_run, enrollment_create_finish, j);
}

static int agent_enroll_run(struct store_txn *txn, void *ctx)
{
    struct enroll_job *j = ctx;
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT e.id, e.host_id, h.name, e.expires_epoch, e.used_at FROM enrollments e "
        "JOIN hosts h ON h.id = e.host_id WHERE e.secret_sha256 = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, j->secret_sha256);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        j->error = yg_error_new(401, "unauthenticated", "the enrollment secret is not valid");
        return -ENOENT;
    }
    int64_t enrollment_id = sqlite3_column_int64(st, 0), host_id = sqlite3_column_int64(st, 1);
    bool host_matches = streq(store_column_text(st, 2), j->host);
    bool expired = sqlite3_column_int64(st, 3) <= now_epoch();
    bool used = sqlite3_column_type(st, 4) != SQLITE_NULL;
    sqlite3_reset(st);
    if (used || expired) {
        j->error = yg_error_new(401, "unauthenticated", "the enrollment secret was %s; ask an "
                                "administrator for a new one (yunguan host enroll %s)",
                                used ? "already used" : "valid for 24 hours and has expired", j->host);
        return -EACCES;
    }
    if (!host_matches) {
        j->error = yg_error_new(403, "forbidden", "this enrollment secret is for another host, not '%s'",
                                j->host);
        return -EPERM;
    }
    char at[32];
    format_utc_now(at);
    st = store_stmt(conn, "UPDATE enrollments SET used_at = ?2 WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, enrollment_id);
    store_bind_text(st, 2, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    struct principal enroller = { .role = ROLE_AGENT, .host_id = host_id };
    snprintf(enroller.actor, sizeof enroller.actor, "enrollment:%lld", (long long) enrollment_id);
    _cleanup_free_ char *description = xasprintf("agent of %s", j->host);
    int64_t id = auth_agent_token_create(txn, &enroller, host_id, description, &j->secret);
    return id < 0 ? (int) id : 0;
}

static void agent_enroll_finish(struct api_call *call, void *ctx, int result)
{
    struct enroll_job *j = ctx;
    if (result == 0)
        api_reply_json(call, 201, json_pack("{s:s, s:s}", "token", j->secret, "host", j->host));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    enroll_job_free(j);
}

void api_agents_enroll(struct api_call *call, const struct api_route_args *args)
{
    const char *auth = api_call_header(call, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || strlen(auth + 7) > 256) {
        api_reply_errorf(call, 401, "unauthenticated",
                         "enrollment needs 'Authorization: Bearer <enrollment secret>'");
        return;
    }
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    const char *host = json_string_value(json_object_get(body, "host"));
    if (!host || !*host || strlen(host) > 63) {
        api_reply_errorf(call, 400, "bad_request", "the body needs 'host', this host's name");
        json_decref(body);
        return;
    }
    struct enroll_job *j = xcalloc(1, sizeof *j);
    snprintf(j->host, sizeof j->host, "%s", host);
    json_decref(body);
    sha256_hex(auth + 7, strlen(auth + 7), j->secret_sha256);
    api_defer(call, agent_enroll_run, agent_enroll_finish, j);
}

/* ---- the agent's side ---- */

void api_agents_segments(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    json_t *desired = reader && by->host_id ? readiness_agent_segments(reader, by->host_id) : NULL;
    if (!desired)
        api_reply_errorf(call, 500, "internal", "cannot read this host's segments");
    else
        api_reply_json(call, 200, desired);
}

struct report_job {
    struct principal by;
    json_t *report;
    json_t *answer;
    struct yg_error *error;
};

static int report_run(struct store_txn *txn, void *ctx)
{
    struct report_job *j = ctx;
    return readiness_ingest(txn, &j->by, j->report, now_epoch(), &j->answer, &j->error);
}

/* The answer to a report as api_reply_json() would write it, without a
 * dump: {"applied", "last_seq", "resync"[, "results_sha256"]}, indented
 * by 2.  NULL for any other shape (then jansson writes it). */
static char *report_answer_text(json_t *a)
{
    json_t *applied = json_object_get(a, "applied"), *last_seq = json_object_get(a, "last_seq"),
           *resync = json_object_get(a, "resync"), *sha = json_object_get(a, "results_sha256");
    if (!json_is_boolean(applied) || !json_is_integer(last_seq) || !json_is_boolean(resync) ||
        json_object_size(a) != (sha ? 4u : 3u))
        return NULL;
    const char *hex = sha ? json_string_value(sha) : "";
    if (!hex || strspn(hex, "0123456789abcdef") != strlen(hex))
        return NULL;
    return xasprintf("{\n  \"applied\": %s,\n  \"last_seq\": %" JSON_INTEGER_FORMAT ",\n"
                     "  \"resync\": %s%s%s%s\n}\n",
                     json_is_true(applied) ? "true" : "false", json_integer_value(last_seq),
                     json_is_true(resync) ? "true" : "false",
                     sha ? ",\n  \"results_sha256\": \"" : "", hex, sha ? "\"" : "");
}

static void report_finish(struct api_call *call, void *ctx, int result)
{
    struct report_job *j = ctx;
    char *text = result == 0 && j->answer ? report_answer_text(j->answer) : NULL;
    if (text)
        api_reply_text(call, 200, "application/json", text);
    else if (result == 0 && j->answer)
        api_reply_json(call, 200, json_incref(j->answer));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    json_decref(j->answer);
    json_decref(j->report);
    free(j);
}

void api_agents_report(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    if (!by->host_id) {
        api_reply_errorf(call, 403, "forbidden", "this agent token is not bound to a host");
        return;
    }
    json_t *report = api_call_body_json(call);
    if (!report)
        return;
    struct yg_error *e = readiness_report_check(report);
    if (e) {
        json_decref(report);
        api_reply_error(call, e);
        return;
    }
    struct report_job *j = xcalloc(1, sizeof *j);
    j->by = *by;
    j->report = report;
    api_defer(call, report_run, report_finish, j);
}

/* ---- what people read ---- */

/* May BY see segment NAME?  Departments see the segments they own. */
static bool department_owns(struct api_call *call, const char *segment)
{
    const struct principal *by = api_call_principal(call);
    if (by->role != ROLE_DEPARTMENT)
        return true;
    sqlite3_stmt *st = store_stmt(api_call_reader(call),
        "SELECT 1 FROM segment_departments d JOIN segments s ON s.id = d.segment_id "
        "WHERE s.name = ?1 AND d.department = ?2");
    if (!st)
        return false;
    store_bind_text(st, 1, segment);
    store_bind_text(st, 2, by->department);
    bool owns = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return owns;
}

void api_segments_list(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    json_t *list = reader ? readiness_segments_json(reader, by->role == ROLE_DEPARTMENT ? by->department
                                                                                        : NULL, now_epoch())
                          : NULL;
    if (!list)
        api_reply_errorf(call, 500, "internal", "cannot read segments");
    else
        api_reply_json(call, 200, list);
}

void api_segments_show(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *seg = reader && department_owns(call, args->name)
                  ? readiness_segment_json(reader, args->name, now_epoch()) : NULL;
    if (!seg)
        api_reply_errorf(call, 404, "not_found", "segment '%s' does not exist", args->name);
    else
        api_reply_json(call, 200, json_pack("{s:o}", "segment", seg));
}

void api_segments_history(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *h = reader && department_owns(call, args->name) ? readiness_history_json(reader, args->name)
                                                             : NULL;
    if (!h)
        api_reply_errorf(call, 404, "not_found", "segment '%s' does not exist", args->name);
    else
        api_reply_json(call, 200, h);
}

void api_progress(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *p = reader ? readiness_progress_json(reader, now_epoch()) : NULL;
    if (!p)
        api_reply_errorf(call, 500, "internal", "cannot read progress");
    else
        api_reply_json(call, 200, p);
}

struct waiver_job {
    struct principal by;
    char segment[128];
    char host[64];
    char *reason;
    int64_t expires;
    json_t *waiver;
    struct yg_error *error;
};

static int waiver_run(struct store_txn *txn, void *ctx)
{
    struct waiver_job *j = ctx;
    return readiness_waiver_add(txn, &j->by, j->segment, j->host, j->reason, j->expires, now_epoch(),
                                &j->waiver, &j->error);
}

static void waiver_finish(struct api_call *call, void *ctx, int result)
{
    struct waiver_job *j = ctx;
    if (result == 0 && j->waiver)
        api_reply_json(call, 201, json_pack("{s:O}", "waiver", j->waiver));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    json_decref(j->waiver);
    free(j->reason);
    free(j);
}

void api_segments_waive(struct api_call *call, const struct api_route_args *args)
{
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    const char *host = json_string_value(json_object_get(body, "host"));
    const char *reason = json_string_value(json_object_get(body, "reason"));
    json_t *days = json_object_get(body, "days");
    if (!host || strlen(host) > 63 || !reason || !*reason || strlen(reason) > 500 ||
        !json_is_integer(days) || json_integer_value(days) < 1 || json_integer_value(days) > 365) {
        api_reply_errorf(call, 400, "bad_request",
                         "a waiver needs 'host', a 'reason' (1 to 500 characters) and 'days' (1 to 365)");
        json_decref(body);
        return;
    }
    struct waiver_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    snprintf(j->segment, sizeof j->segment, "%s", args->name);
    snprintf(j->host, sizeof j->host, "%s", host);
    j->reason = xstrdup(reason);
    j->expires = now_epoch() + 86400 * (int64_t) json_integer_value(days);
    json_decref(body);
    api_defer(call, waiver_run, waiver_finish, j);
}

#include <config.h>
#include "api.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "api-handlers.h"
#include "log.h"
#include "segments.h"
#include "util.h"

#define LOG_DOMAIN "api"
#define JSON_BODY_MAX (16 * 1024)
#define MAX_URL 1024
#define STOP_ANSWER_WAIT_SEC 5     /* how long api_stop() waits for owed answers */
/* libmicrohttpd's memory pool per connection: request line, headers, the
 * read buffer and the answer's headers.  The body is handed over in pieces
 * and kept in call->body, so it needs no room here.  libmicrohttpd zeroes
 * the pool for every request on a kept-alive connection: 128 KiB cost
 * ~3 % of a submission's CPU in memset; 32 KiB is its own default. */
#define CONNECTION_MEMORY (32 * 1024)

/* What a route reads: nothing; a small JSON object (JSON_BODY_MAX); a
 * document (requests, reports: the configured max_body_bytes); a whole
 * segment list (SEGMENTS_MAX_BYTES, the limit the CLI reads files with). */
enum route_body { BODY_NONE, BODY_JSON, BODY_DOCUMENT, BODY_SEGMENT_LIST };

struct route {
    const char *method;
    const char *pattern;        /* segments; "{id}" integer, "{name}" slug */
    api_handler_fn handler;
    unsigned roles;             /* 0: no token needed */
    enum route_body body;
};

#define R_OPS (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_CLOUDOPS))
#define R_READERS (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_CLOUDOPS) | ROLE_BIT(ROLE_NETOPS) | ROLE_BIT(ROLE_AUDITOR))
#define R_REQUESTERS (R_OPS | ROLE_BIT(ROLE_DEPARTMENT))
#define R_REQUEST_VIEWERS (R_OPS | ROLE_BIT(ROLE_AUDITOR) | ROLE_BIT(ROLE_DEPARTMENT))
#define R_ADMIN ROLE_BIT(ROLE_ADMIN)
#define R_AUDIT (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_AUDITOR))
#define R_NETOPS (ROLE_BIT(ROLE_ADMIN) | ROLE_BIT(ROLE_NETOPS))
#define R_PLAYBOOK_RUNNERS (R_NETOPS | ROLE_BIT(ROLE_CLOUDOPS))

/* Roles are enforced here for every endpoint; the lifecycle table narrows
 * them further per transition (who may approve, who may withdraw). */
static const struct route routes[] = {
    { "GET",    "/healthz",                        api_healthz,         0,                 BODY_NONE },
    { "GET",    "/metrics",                        api_metrics,         R_READERS,         BODY_NONE },
    { "POST",   "/api/v1/requests",                api_requests_submit, R_REQUESTERS,      BODY_DOCUMENT },
    { "GET",    "/api/v1/requests",                api_requests_list,   R_REQUEST_VIEWERS, BODY_NONE },
    { "GET",    "/api/v1/requests/{id}",           api_requests_get,    R_REQUEST_VIEWERS, BODY_NONE },
    { "POST",   "/api/v1/requests/{id}/approve",   api_requests_action, R_OPS,             BODY_JSON },
    { "POST",   "/api/v1/requests/{id}/reject",    api_requests_action, R_OPS,             BODY_JSON },
    { "POST",   "/api/v1/requests/{id}/withdraw",  api_requests_action, R_REQUESTERS,      BODY_JSON },
    { "GET",    "/api/v1/quotas",                  api_quotas_list,     R_READERS,         BODY_NONE },
    { "GET",    "/api/v1/quotas/{name}",           api_quotas_get,      R_READERS | ROLE_BIT(ROLE_DEPARTMENT), BODY_NONE },
    { "PUT",    "/api/v1/quotas/{name}",           api_quotas_put,      R_ADMIN,           BODY_JSON },
    { "POST",   "/api/v1/tokens",                  api_tokens_create,   R_ADMIN,           BODY_JSON },
    { "GET",    "/api/v1/tokens",                  api_tokens_list,     R_ADMIN,           BODY_NONE },
    { "DELETE", "/api/v1/tokens/{id}",             api_tokens_revoke,   R_ADMIN,           BODY_NONE },
    { "GET",    "/api/v1/audit",                   api_audit_list,      R_AUDIT,           BODY_NONE },
    { "GET",    "/api/v1/audit/verify",            api_audit_verify,    R_AUDIT,           BODY_NONE },
    /* Hosts' agents and dual-stack readiness (doc/AGENT.md). */
    { "POST",   "/api/v1/hosts/{name}/enrollment", api_hosts_enrollment, R_ADMIN,          BODY_NONE },
    { "POST",   "/api/v1/agents/enroll",           api_agents_enroll,   0,                 BODY_JSON },
    { "GET",    "/api/v1/agents/self/segments",    api_agents_segments, ROLE_BIT(ROLE_AGENT), BODY_NONE },
    { "POST",   "/api/v1/agents/self/reports",     api_agents_report,   ROLE_BIT(ROLE_AGENT), BODY_DOCUMENT },
    { "GET",    "/api/v1/segments",                api_segments_list,   R_READERS | ROLE_BIT(ROLE_DEPARTMENT), BODY_NONE },
    { "GET",    "/api/v1/segments/{name}",         api_segments_show,   R_READERS | ROLE_BIT(ROLE_DEPARTMENT), BODY_NONE },
    { "GET",    "/api/v1/segments/{name}/history", api_segments_history, R_READERS | ROLE_BIT(ROLE_DEPARTMENT), BODY_NONE },
    { "POST",   "/api/v1/segments/{name}/waivers", api_segments_waive,  R_NETOPS,          BODY_JSON },
    { "GET",    "/api/v1/progress",                api_progress,        R_READERS | ROLE_BIT(ROLE_DEPARTMENT), BODY_NONE },
    /* Hypervisors and VMs (api-hosts.c, api-vms.c). */
    { "POST",   "/api/v1/hosts",                   api_hosts_register,  R_OPS,             BODY_JSON },
    { "GET",    "/api/v1/hosts",                   api_hosts_list,      R_READERS,         BODY_NONE },
    { "GET",    "/api/v1/hosts/{name}",            api_hosts_show,      R_READERS,         BODY_NONE },
    { "POST",   "/api/v1/hosts/{name}/drain",      api_hosts_drain,     R_OPS,             BODY_NONE },
    { "POST",   "/api/v1/hosts/{name}/undrain",    api_hosts_drain,     R_OPS,             BODY_NONE },
    { "GET",    "/api/v1/drift",                   api_drift,           R_READERS,         BODY_NONE },
    { "GET",    "/api/v1/vms",                     api_vms_list,        R_REQUEST_VIEWERS, BODY_NONE },
    { "GET",    "/api/v1/vms/{id}",                api_vms_show,        R_REQUEST_VIEWERS, BODY_NONE },
    { "GET",    "/api/v1/vms/{id}/reclaim",        api_vms_reclaim,     R_REQUEST_VIEWERS, BODY_NONE },
    { "POST",   "/api/v1/vms/{id}/start",          api_vms_action,      R_REQUESTERS,      BODY_NONE },
    { "POST",   "/api/v1/vms/{id}/stop",           api_vms_action,      R_REQUESTERS,      BODY_NONE },
    { "POST",   "/api/v1/vms/{id}/reboot",         api_vms_action,      R_REQUESTERS,      BODY_NONE },
    { "POST",   "/api/v1/vms/{id}/decommission",   api_vms_action,      R_REQUESTERS,      BODY_JSON },
    { "GET",    "/api/v1/decommissions",           api_decommissions_list, R_REQUEST_VIEWERS, BODY_NONE },
    { "POST",   "/api/v1/decommissions/{id}/approve", api_decommissions_decide, R_OPS,     BODY_JSON },
    { "POST",   "/api/v1/decommissions/{id}/reject",  api_decommissions_decide, R_OPS,     BODY_JSON },
    { "GET",    "/api/v1/lease-policies/{name}",   api_lease_policy_get, R_READERS | ROLE_BIT(ROLE_DEPARTMENT), BODY_NONE },
    { "PUT",    "/api/v1/lease-policies/{name}",   api_lease_policy_put, R_ADMIN,          BODY_JSON },
    /* Segment plans and IPv6 prefix allocation (api-segments.c). */
    { "PUT",    "/api/v1/segments",                api_segments_apply,  R_NETOPS,          BODY_SEGMENT_LIST },
    { "GET",    "/api/v1/segments/{name}/plan",    api_segments_plan,   R_READERS,         BODY_NONE },
    { "POST",   "/api/v1/prefixes/allocate",       api_prefixes_allocate, R_NETOPS,        BODY_JSON },
    { "GET",    "/api/v1/prefixes",                api_prefixes_list,   R_READERS,         BODY_NONE },
    /* IPv6 migration playbooks (api-playbooks.c, doc/PLAYBOOKS.md); who may
     * apply (netops, admin) and who only check (cloudops) is decided by
     * controller/playbook-run.c from the run's mode. */
    { "GET",    "/api/v1/playbooks",               api_playbooks_list,  R_READERS,         BODY_NONE },
    { "GET",    "/api/v1/playbooks/{name}",        api_playbooks_show,  R_READERS,         BODY_NONE },
    { "POST",   "/api/v1/playbook-runs",           api_playbook_runs_create, R_PLAYBOOK_RUNNERS, BODY_DOCUMENT },
    { "GET",    "/api/v1/playbook-runs",           api_playbook_runs_list, R_READERS,      BODY_NONE },
    { "GET",    "/api/v1/playbook-runs/{id}",      api_playbook_runs_show, R_READERS,      BODY_NONE },
    { "POST",   "/api/v1/playbook-runs/{id}/cancel", api_playbook_runs_cancel, R_PLAYBOOK_RUNNERS, BODY_NONE },
    { "GET",    "/api/v1/agents/self/tasks",       api_agents_tasks,    ROLE_BIT(ROLE_AGENT), BODY_NONE },
    { "POST",   "/api/v1/agents/self/tasks/{id}/progress", api_agents_task_report, ROLE_BIT(ROLE_AGENT), BODY_DOCUMENT },
    { "POST",   "/api/v1/agents/self/tasks/{id}/result",   api_agents_task_report, ROLE_BIT(ROLE_AGENT), BODY_DOCUMENT },
};

/* Latency histogram bounds, seconds. */
static const double latency_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};
#define N_BOUNDS YG_ARRAY_SIZE(latency_bounds)

struct api_server {
    struct MHD_Daemon *mhd;
    struct store *store;
    struct api_config cfg;
    uint16_t port;
    atomic_uint_fast64_t status_counts[600];
    atomic_uint_fast64_t latency_buckets[N_BOUNDS + 1];
    atomic_uint_fast64_t latency_sum_usec;
    atomic_uint_fast64_t latency_count;
    /* Changes committed whose client had gone before it could be answered. */
    atomic_uint_fast64_t unanswered_changes;

    /* Calls handed to the store and not yet completed: their answers are
     * owed to clients, and api_stop() waits for them. */
    pthread_mutex_t owed_lock;
    pthread_cond_t owed_done;
    unsigned owed;

    /* Agents long-polling for playbook tasks (api-playbooks.c). */
    struct task_waiters *task_waiters;
    /* Principals by token hash (auth.h): no token query per request. */
    struct auth_cache *auth_cache;
};

/* RECEIVING → (PENDING: with the writer → COMMITTED: stored, answer not
 * yet built) → FINISHED.  Answers are built on HTTP threads, so the
 * single writer spends its time on nothing but the store. */
enum call_phase { CALL_RECEIVING, CALL_PENDING, CALL_COMMITTED, CALL_FINISHED };

struct api_call {
    struct api_server *srv;
    struct MHD_Connection *conn;
    char method[8];
    const struct route *route;
    struct api_route_args args;
    struct principal principal;
    struct strbuf body;
    size_t body_limit;
    bool body_too_large;
    _Atomic int phase;
    bool deferred;              /* counted in srv->owed */
    bool suspended_again;       /* the handler or finish suspended it (again) */
    bool abandoned;             /* the client left before the answer was built */
    bool invalidates_tokens;    /* forget cached principals after the commit */
    unsigned store_flags;       /* STORE_JOB_* for its store job */
    uint64_t started_usec;

    /* The answer. */
    int status;
    char *reply;
    const char *content_type;
    char *extra_header_name, *extra_header_value;

    /* Deferred work. */
    store_job_run_fn run;
    api_finish_fn finish;
    void *ctx;
    int result;                 /* of the writer job */
};

struct store *api_call_store(struct api_call *call) { return call->srv->store; }
struct task_waiters *api_call_task_waiters(struct api_call *call) { return call->srv->task_waiters; }

const char *api_call_playbook_dir(struct api_call *call)
{
    return call->srv->cfg.playbook_dir ? call->srv->cfg.playbook_dir : PLAYBOOK_DIR;
}
struct api_server *api_call_server(struct api_call *call) { return call->srv; }
const struct principal *api_call_principal(struct api_call *call) { return &call->principal; }

struct store_conn *api_call_reader(struct api_call *call)
{
    return store_reader(call->srv->store);
}

const char *api_call_query(struct api_call *call, const char *key)
{
    return MHD_lookup_connection_value(call->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *api_call_header(struct api_call *call, const char *key)
{
    return MHD_lookup_connection_value(call->conn, MHD_HEADER_KIND, key);
}

const char *api_call_body(struct api_call *call, size_t *ret_len)
{
    *ret_len = call->body.len;
    return call->body.s ? call->body.s : "";
}

bool api_parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *ret = v;
    return true;
}

void api_reply_text(struct api_call *call, int status, const char *content_type, char *text)
{
    free(call->reply);
    call->status = status;
    call->reply = text;
    call->content_type = content_type;
}

void api_reply_json(struct api_call *call, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(body);
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, text ? text : "{}");
    strbuf_puts(&sb, "\n");
    free(text);
    api_reply_text(call, status, "application/json", strbuf_steal(&sb));
}

void api_reply_error(struct api_call *call, struct yg_error *e)
{
    api_reply_json(call, e->http_status ? e->http_status : 500, yg_error_to_json(e));
    yg_error_free(e);
}

void api_reply_errorf(struct api_call *call, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_reply_error(call, yg_error_new(status, code, "%s", msg));
}

void api_add_header(struct api_call *call, const char *name, const char *value)
{
    free(call->extra_header_name);
    free(call->extra_header_value);
    call->extra_header_name = xstrdup(name);
    call->extra_header_value = xstrdup(value);
}

json_t *api_call_body_json(struct api_call *call)
{
    if (call->body.len == 0)
        return json_object();
    json_error_t jerr;
    json_t *j = json_loadb(call->body.s, call->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || !json_is_object(j)) {
        struct yg_error *e = yg_error_new(400, "bad_request", "the body is not a JSON object");
        if (!j)
            yg_error_add_detail(e, jerr.line, jerr.column, NULL, "%s", jerr.text);
        json_decref(j);
        api_reply_error(call, e);
        return NULL;
    }
    return j;
}

static bool segment_is_slug(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* Match URL against PATTERN segment by segment, filling ARGS. */
static bool route_match(const char *pattern, const char *url, struct api_route_args *args)
{
    const char *p = pattern, *u = url;
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            return false;
        p++, u++;
        size_t pn = strcspn(p, "/"), un = strcspn(u, "/");
        if (pn == 4 && !strncmp(p, "{id}", 4)) {
            char buf[24];
            if (un == 0 || un >= sizeof buf)
                return false;
            memcpy(buf, u, un);
            buf[un] = '\0';
            if (!api_parse_int64(buf, 1, INT64_MAX, &args->id))
                return false;
        } else if (pn == 6 && !strncmp(p, "{name}", 6)) {
            if (!segment_is_slug(u, un))
                return false;
            memcpy(args->name, u, un);
            args->name[un] = '\0';
        } else {
            if (pn != un || strncmp(p, u, pn))
                return false;
            args->verb = p;   /* points into the pattern: NUL-terminated at the end */
        }
        p += pn, u += un;
    }
    return !*p && (!*u || streq(u, "/"));
}

static const char *last_segment(const char *pattern)
{
    const char *slash = strrchr(pattern, '/');
    return slash ? slash + 1 : pattern;
}

static void record_metrics(struct api_call *call)
{
    struct api_server *srv = call->srv;
    int status = call->status >= 100 && call->status < 600 ? call->status : 500;
    atomic_fetch_add(&srv->status_counts[status], 1);
    uint64_t usec = monotonic_usec() - call->started_usec;
    double secs = (double) usec / 1e6;
    size_t b = 0;
    while (b < N_BOUNDS && secs > latency_bounds[b])
        b++;
    atomic_fetch_add(&srv->latency_buckets[b], 1);
    atomic_fetch_add(&srv->latency_sum_usec, usec);
    atomic_fetch_add(&srv->latency_count, 1);
}

void api_metrics_http(struct api_server *srv, struct strbuf *out)
{
    strbuf_puts(out, "# HELP yunguan_http_responses_total HTTP responses by status code.\n"
                     "# TYPE yunguan_http_responses_total counter\n");
    for (int s = 100; s < 600; s++) {
        uint64_t n = atomic_load(&srv->status_counts[s]);
        if (n)
            strbuf_printf(out, "yunguan_http_responses_total{code=\"%d\"} %llu\n", s,
                          (unsigned long long) n);
    }
    strbuf_puts(out, "# HELP yunguan_http_request_duration_seconds Time from request to response.\n"
                     "# TYPE yunguan_http_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= N_BOUNDS; b++) {
        cumulative += atomic_load(&srv->latency_buckets[b]);
        if (b < N_BOUNDS)
            strbuf_printf(out, "yunguan_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                          latency_bounds[b], (unsigned long long) cumulative);
        else
            strbuf_printf(out, "yunguan_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                          (unsigned long long) cumulative);
    }
    strbuf_printf(out, "yunguan_http_request_duration_seconds_sum %.6f\n",
                  (double) atomic_load(&srv->latency_sum_usec) / 1e6);
    strbuf_printf(out, "yunguan_http_request_duration_seconds_count %llu\n",
                  (unsigned long long) atomic_load(&srv->latency_count));
    strbuf_printf(out, "# HELP yunguan_http_unanswered_changes_total Changes committed whose client "
                       "closed its connection before the answer.\n"
                       "# TYPE yunguan_http_unanswered_changes_total counter\n"
                       "yunguan_http_unanswered_changes_total %llu\n",
                  (unsigned long long) atomic_load(&srv->unanswered_changes));
}

static int deferred_run(struct store_txn *txn, void *ctx)
{
    struct api_call *call = ctx;
    return call->run(txn, call->ctx);
}

static void deferred_done(void *ctx, int result)
{
    struct api_call *call = ctx;
    /* Committed (or refused); the answer is not built yet.  From here on
     * no request is served a principal read before this change. */
    if (call->invalidates_tokens)
        auth_cache_invalidate(call->srv->auth_cache);
    call->result = result;
    atomic_store(&call->phase, CALL_COMMITTED);
    MHD_resume_connection(call->conn);
}

void api_call_invalidates_tokens(struct api_call *call)
{
    call->invalidates_tokens = true;
}

void api_call_writes_last(struct api_call *call)
{
    call->store_flags |= STORE_JOB_WRITES_LAST;
}

/* The call's answer is owed from now on (once per call: a long-poll may
 * suspend several times), and the connection is suspended. */
static void call_suspend(struct api_call *call, api_finish_fn finish, void *ctx)
{
    /* An abandoned call's finish must free what it owns instead. */
    assert(!call->abandoned);
    call->finish = finish;
    call->ctx = ctx;
    atomic_store(&call->phase, CALL_PENDING);
    call->suspended_again = true;
    if (!call->deferred) {
        call->deferred = true;
        pthread_mutex_lock(&call->srv->owed_lock);
        call->srv->owed++;
        pthread_mutex_unlock(&call->srv->owed_lock);
    }
    MHD_suspend_connection(call->conn);
}

void api_defer(struct api_call *call, store_job_run_fn run, api_finish_fn finish, void *ctx)
{
    call->run = run;
    /* Suspend before the writer can possibly resume us. */
    call_suspend(call, finish, ctx);
    store_submit_flags(call->srv->store, deferred_run, deferred_done, call, call->store_flags);
}

void api_suspend(struct api_call *call, api_finish_fn finish, void *ctx)
{
    call_suspend(call, finish, ctx);
}

void api_resume(struct api_call *call, int result)
{
    call->result = result;
    atomic_store(&call->phase, CALL_COMMITTED);
    MHD_resume_connection(call->conn);
}

static enum MHD_Result send_reply(struct api_call *call)
{
    const char *text = call->reply ? call->reply : "";
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), (void *) text,
                                                                MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type",
                            call->content_type ? call->content_type : "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (call->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"yunguan\"");
    if (call->extra_header_name)
        MHD_add_response_header(resp, call->extra_header_name, call->extra_header_value);
    enum MHD_Result r = MHD_queue_response(call->conn, (unsigned) call->status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Resolve the route and the caller; false when an error reply was set. */
static bool call_prepare(struct api_call *call, const char *url)
{
    bool path_matched = false;
    if (strlen(url) > MAX_URL) {
        api_reply_errorf(call, 414, "bad_request", "the URL is longer than %d bytes", MAX_URL);
        return false;
    }
    for (size_t i = 0; i < YG_ARRAY_SIZE(routes); i++) {
        struct api_route_args args = { 0 };
        if (!route_match(routes[i].pattern, url, &args))
            continue;
        path_matched = true;
        if (!streq(routes[i].method, call->method))
            continue;
        call->route = &routes[i];
        call->args = args;
        call->args.verb = last_segment(routes[i].pattern);
        break;
    }
    if (!call->route) {
        if (path_matched)
            api_reply_errorf(call, 405, "method_not_allowed", "%s is not allowed on %s",
                             call->method, url);
        else
            api_reply_errorf(call, 404, "not_found", "there is no API endpoint at %s", url);
        return false;
    }
    call->body_limit = call->route->body == BODY_DOCUMENT ? call->srv->cfg.max_body_bytes
                     : call->route->body == BODY_SEGMENT_LIST ? SEGMENTS_MAX_BYTES
                     : call->route->body == BODY_JSON ? JSON_BODY_MAX : 0;

    if (!call->route->roles)
        return true;
    const char *auth = api_call_header(call, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        api_reply_errorf(call, 401, "unauthenticated",
                         "this endpoint needs a token: send 'Authorization: Bearer <token>'");
        return false;
    }
    struct store_conn *reader = api_call_reader(call);
    int r = reader ? auth_lookup_cached(call->srv->auth_cache, reader, auth + 7, &call->principal)
                   : -EIO;
    if (r == -ENOENT) {
        api_reply_errorf(call, 401, "unauthenticated", "the token is not valid (unknown or revoked)");
        return false;
    }
    if (r < 0) {
        api_reply_errorf(call, 500, "internal", "cannot check the token: the store is unavailable");
        return false;
    }
    if (!(call->route->roles & ROLE_BIT(call->principal.role))) {
        api_reply_errorf(call, 403, "forbidden", "permission denied: role '%s' may not %s %s",
                         role_to_string(call->principal.role), call->method, url);
        return false;
    }
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct api_server *srv = cls;
    struct api_call *call = *con_cls;

    if (!call) {
        call = xcalloc(1, sizeof *call);
        call->srv = srv;
        call->conn = conn;
        call->started_usec = monotonic_usec();
        snprintf(call->method, sizeof call->method, "%s", method);
        strbuf_init(&call->body);
        *con_cls = call;
        if (!call_prepare(call, url))
            atomic_store(&call->phase, CALL_FINISHED);
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        /* Keep reading (and discarding) so the client gets our answer. */
        if (atomic_load(&call->phase) == CALL_RECEIVING && !call->body_too_large) {
            if (call->body.len + *upload_data_size > call->body_limit)
                call->body_too_large = true;
            else
                strbuf_add(&call->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    int phase = atomic_load(&call->phase);
    if (phase == CALL_RECEIVING) {
        if (call->body_too_large) {
            if (call->body_limit == 0)
                api_reply_errorf(call, 400, "bad_request", "%s %s takes no body", method, url);
            else
                api_reply_errorf(call, 413, "too_large", "the body is larger than the limit of %zu bytes",
                                 call->body_limit);
        } else {
            call->suspended_again = false;
            call->route->handler(call, &call->args);
        }
        /* Handed to the writer: suspended, and answered once resumed.  Test
         * the flag, not the phase: the writer may have finished already. */
        if (call->suspended_again)
            return MHD_YES;
        atomic_store(&call->phase, CALL_FINISHED);
    } else if (phase == CALL_PENDING) {
        return MHD_YES;
    } else if (phase == CALL_COMMITTED) {
        call->suspended_again = false;
        call->finish(call, call->ctx, call->result);
        /* A long-poll that found nothing waits again (api_suspend/api_defer). */
        if (call->suspended_again)
            return MHD_YES;
        if (!call->reply)
            api_reply_errorf(call, 500, "internal", "the change could not be stored (error %d)",
                             call->result);
        atomic_store(&call->phase, CALL_FINISHED);
    }
    if (!call->reply)
        api_reply_errorf(call, 500, "internal", "no answer was produced");
    return send_reply(call);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_call *call = *con_cls;
    if (!call)
        return;
    /* The writer committed a change but the connection closed before its
     * answer was built (a client that gave up): the change stands, and is
     * counted.  (FINISH is not run here: a long-poll's may suspend again.) */
    if (atomic_load(&call->phase) == CALL_COMMITTED && call->run && call->result == 0 &&
        call->route && !streq(call->route->method, "GET"))
        atomic_fetch_add(&call->srv->unanswered_changes, 1);
    if (call->status)
        record_metrics(call);
    /* Its answer was never built: FINISH owns CTX, so it runs now, told
     * that nobody is listening (its reply is thrown away below; it must
     * not suspend again — a negative result never does). */
    if (atomic_load(&call->phase) == CALL_COMMITTED && call->finish) {
        call->abandoned = true;
        call->finish(call, call->ctx, -ECONNRESET);
    }
    if (call->deferred) {
        struct api_server *srv = call->srv;
        pthread_mutex_lock(&srv->owed_lock);
        if (--srv->owed == 0)
            pthread_cond_broadcast(&srv->owed_done);
        pthread_mutex_unlock(&srv->owed_lock);
    }
    strbuf_free(&call->body);
    free(call->reply);
    free(call->extra_header_name);
    free(call->extra_header_value);
    free(call);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warn(LOG_DOMAIN, "%s", msg);
}

int api_start(const struct api_config *cfg, struct store *store, struct api_server **ret,
              char **ret_errmsg)
{
    struct api_server *srv = xcalloc(1, sizeof *srv);
    srv->store = store;
    srv->cfg = *cfg;
    pthread_mutex_init(&srv->owed_lock, NULL);
    pthread_cond_init(&srv->owed_done, NULL);
    srv->task_waiters = task_waiters_new();
    srv->auth_cache = auth_cache_new();

    struct sockaddr_storage ss = { 0 };
    socklen_t sslen;
    struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, cfg->listen_address, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(cfg->port);
        sslen = sizeof *sin;
    } else if (inet_pton(AF_INET6, cfg->listen_address, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(cfg->port);
        sslen = sizeof *sin6;
        flags |= MHD_USE_IPv6;
    } else {
        *ret_errmsg = xasprintf("'%s' is not an IPv4 or IPv6 address to listen on", cfg->listen_address);
        task_waiters_free(srv->task_waiters);
        auth_cache_free(srv->auth_cache);
        free(srv);
        return -EINVAL;
    }
    (void) sslen;
    /* HTTPS through libmicrohttpd's GnuTLS: TLS 1.2 and 1.3 only. */
    bool tls = cfg->tls_cert_pem && cfg->tls_key_pem;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        *ret_errmsg = xstrdup("this libmicrohttpd was built without TLS: cannot serve HTTPS");
        task_waiters_free(srv->task_waiters);
        auth_cache_free(srv->auth_cache);
        free(srv);
        return -ENOTSUP;
    }
    struct MHD_OptionItem tls_options[] = {
        { tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *) cfg->tls_cert_pem },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) cfg->tls_key_pem },
        { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *) "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2" },
        { MHD_OPTION_END, 0, NULL },
    };
    if (tls)
        flags |= MHD_USE_TLS;
    srv->mhd = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, srv,
                                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) cfg->threads,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned int) cfg->max_connections,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 60,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                MHD_OPTION_ARRAY, tls_options,
                                MHD_OPTION_END);
    if (!srv->mhd) {
        *ret_errmsg = tls ? xasprintf("cannot serve HTTPS on %s port %u: the port is in use or not "
                                      "allowed, or the certificate and key do not load or match "
                                      "(the log above says which)",
                                      cfg->listen_address, (unsigned) cfg->port)
                          : xasprintf("cannot listen on %s port %u (in use, or not allowed?)",
                                      cfg->listen_address, (unsigned) cfg->port);
        task_waiters_free(srv->task_waiters);
        auth_cache_free(srv->auth_cache);
        free(srv);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : cfg->port;
    *ret = srv;
    return 0;
}

uint16_t api_bound_port(struct api_server *srv) { return srv->port; }

void api_stop(struct api_server *srv)
{
    if (!srv)
        return;
    /* Long-polls waiting for tasks are answered (no tasks) now: MHD must
     * not be stopped with suspended connections. */
    task_waiters_stop(srv->task_waiters);
    /* Changes the store has committed (or refused) are answered before the
     * connections are closed: a client must not see a reset for a write
     * that was stored.  Bounded, in case a client does not read. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += STOP_ANSWER_WAIT_SEC;
    pthread_mutex_lock(&srv->owed_lock);
    while (srv->owed > 0 &&
           pthread_cond_timedwait(&srv->owed_done, &srv->owed_lock, &deadline) != ETIMEDOUT)
        ;
    if (srv->owed > 0)
        log_warn(LOG_DOMAIN, "stopping with %u answers not delivered", srv->owed);
    pthread_mutex_unlock(&srv->owed_lock);
    MHD_stop_daemon(srv->mhd);
    task_waiters_free(srv->task_waiters);
    auth_cache_free(srv->auth_cache);
    pthread_mutex_destroy(&srv->owed_lock);
    pthread_cond_destroy(&srv->owed_done);
    free(srv);
}

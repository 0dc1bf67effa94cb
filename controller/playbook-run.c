#include <config.h>
#include "playbook-run.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "audit.h"
#include "auth.h"
#include "log.h"
#include "playbook.h"
#include "sha256.h"
#include "store.h"
#include "util.h"

#define LOG_DOMAIN "playbook"
#define SWEEP_INTERVAL_SECONDS 2
#define REPORT_MAX_TEXT 4096            /* before / after / message of one step */
#define REPORT_MAX_MESSAGE 4096
#define RENDER_ERRORS_MAX 32            /* hosts named in one 422 */

static const char *const run_state_names[_PLAYBOOK_RUN_STATE_MAX] = {
    [PLAYBOOK_RUN_RUNNING] = "running",
    [PLAYBOOK_RUN_SUCCEEDED] = "succeeded",
    [PLAYBOOK_RUN_FAILED] = "failed",
    [PLAYBOOK_RUN_CANCELLED] = "cancelled",
};

static const char *const host_state_names[_PLAYBOOK_HOST_STATE_MAX] = {
    [PLAYBOOK_HOST_WAITING] = "waiting",
    [PLAYBOOK_HOST_SENT] = "sent",
    [PLAYBOOK_HOST_RUNNING] = "running",
    [PLAYBOOK_HOST_SUCCEEDED] = "succeeded",
    [PLAYBOOK_HOST_FAILED] = "failed",
    [PLAYBOOK_HOST_UNKNOWN] = "unknown",
    [PLAYBOOK_HOST_SKIPPED] = "skipped",
    [PLAYBOOK_HOST_CANCELLED] = "cancelled",
};

static const char *const mode_names[_PLAYBOOK_MODE_MAX] = {
    [PLAYBOOK_MODE_CHECK] = "check",
    [PLAYBOOK_MODE_APPLY] = "apply",
};

static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (streq(names[i], s))
            return i;
    return -1;
}

const char *playbook_run_state_to_string(enum playbook_run_state s)
{
    return (unsigned) s < _PLAYBOOK_RUN_STATE_MAX ? run_state_names[s] : NULL;
}
int playbook_run_state_from_string(const char *s) { return lookup(run_state_names, _PLAYBOOK_RUN_STATE_MAX, s); }

const char *playbook_host_state_to_string(enum playbook_host_state s)
{
    return (unsigned) s < _PLAYBOOK_HOST_STATE_MAX ? host_state_names[s] : NULL;
}
int playbook_host_state_from_string(const char *s) { return lookup(host_state_names, _PLAYBOOK_HOST_STATE_MAX, s); }

const char *playbook_mode_to_string(enum playbook_mode m)
{
    return (unsigned) m < _PLAYBOOK_MODE_MAX ? mode_names[m] : NULL;
}
int playbook_mode_from_string(const char *s) { return lookup(mode_names, _PLAYBOOK_MODE_MAX, s); }

/* ---- configuration and hooks ---- */

static atomic_int default_batch_size = PLAYBOOK_BATCH_SIZE_DEFAULT;
static atomic_int host_timeout = PLAYBOOK_HOST_TIMEOUT_DEFAULT;
static _Atomic int64_t judging_since;

void playbook_run_configure(int batch_size, int host_timeout_seconds)
{
    if (batch_size > 0)
        atomic_store(&default_batch_size, batch_size);
    if (host_timeout_seconds > 0)
        atomic_store(&host_timeout, host_timeout_seconds);
}

int playbook_run_host_timeout(void) { return atomic_load(&host_timeout); }
void playbook_run_set_judging_since(int64_t epoch) { atomic_store(&judging_since, epoch); }

static playbook_wake_fn wake_fn;
static void *wake_data;

void playbook_run_set_wake(playbook_wake_fn fn, void *data)
{
    wake_fn = fn;
    wake_data = data;
}

static void wake_host(int64_t host_id)
{
    if (wake_fn)
        wake_fn(host_id, wake_data);
}

/* ---- small SQL helpers ---- */

static int exec_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

#define TEXT_OR_NULL(st, i) (sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() \
                             : json_string(store_column_text(st, i)))

static json_t *json_column(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    json_t *j = json_loads(store_column_text(st, i), 0, NULL);
    return j ? j : json_null();
}

static int audit(struct store_txn *txn, const struct principal *by, const char *action,
                 const char *object, json_t *before, json_t *after)
{
    int r = audit_append(txn, by ? by->actor : "system", by ? role_to_string(by->role) : "system",
                         action, object, before, after);
    json_decref(before);
    json_decref(after);
    return r;
}

/* ---- creating a run ---- */

struct run_host {
    int64_t id;
    char *name;
    char *ipv4_address, *ipv6_address;
    json_t *steps;
    int step_wait_seconds;
    int batch;
};

static void run_hosts_free(struct run_host *hosts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(hosts[i].name);
        free(hosts[i].ipv4_address);
        free(hosts[i].ipv6_address);
        json_decref(hosts[i].steps);
    }
    free(hosts);
}

struct run_segment {
    int64_t id;
    char *name, *interface, *ipv4_prefix, *ipv4_gateway, *ipv6_prefix, *ipv6_gateway;
    bool slaac;
};

static void run_segment_clear(struct run_segment *s)
{
    free(s->name);
    free(s->interface);
    free(s->ipv4_prefix);
    free(s->ipv4_gateway);
    free(s->ipv6_prefix);
    free(s->ipv6_gateway);
}

static char *column_dup(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : xstrdup(store_column_text(st, i));
}

static int load_segment(struct store_conn *conn, const char *name, struct run_segment *ret)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT id, name, interface, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, slaac "
        "FROM segments WHERE name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret->id = sqlite3_column_int64(st, 0);
        ret->name = column_dup(st, 1);
        ret->interface = column_dup(st, 2);
        ret->ipv4_prefix = column_dup(st, 3);
        ret->ipv4_gateway = column_dup(st, 4);
        ret->ipv6_prefix = column_dup(st, 5);
        ret->ipv6_gateway = column_dup(st, 6);
        ret->slaac = sqlite3_column_int(st, 7);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

/* Every host carrying the segment, by name. */
static int load_segment_hosts(struct store_conn *conn, int64_t segment_id, struct run_host **ret,
                              size_t *ret_n)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT h.id, h.name, hs.ipv4_address, hs.ipv6_address FROM host_segments hs "
        "JOIN hosts h ON h.id = hs.host_id WHERE hs.segment_id = ?1 ORDER BY h.name");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, segment_id);
    struct run_host *hosts = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        hosts = xrealloc(hosts, (n + 1) * sizeof *hosts);
        hosts[n] = (struct run_host) {
            .id = sqlite3_column_int64(st, 0),
            .name = column_dup(st, 1),
            .ipv4_address = column_dup(st, 2),
            .ipv6_address = column_dup(st, 3),
        };
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        run_hosts_free(hosts, n);
        return -EIO;
    }
    *ret = hosts;
    *ret_n = n;
    return 0;
}

static json_t *segment_json(const struct run_segment *s, const struct run_host *h)
{
    return json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:b, s:{s:s?, s:s?}}",
                     "name", s->name, "interface", s->interface,
                     "ipv4_prefix", s->ipv4_prefix, "ipv4_gateway", s->ipv4_gateway,
                     "ipv6_prefix", s->ipv6_prefix, "ipv6_gateway", s->ipv6_gateway,
                     "slaac", s->slaac,
                     "plan", "ipv4_address", h->ipv4_address, "ipv6_address", h->ipv6_address);
}

/* The longest a step may legitimately stay silent: its own bounded wait
 * plus its verify's.  Added to the host timeout while a task runs, so a
 * 120 s wait.for is not taken for a dead agent. */
static int steps_wait_seconds(json_t *steps)
{
    int64_t longest_ms = 0;
    size_t i;
    json_t *step;
    json_array_foreach(steps, i, step) {
        int64_t ms = json_integer_value(json_object_get(json_object_get(step, "args"), "timeout_ms")) +
                     json_integer_value(json_object_get(json_object_get(step, "verify"), "timeout_ms"));
        if (ms > longest_ms)
            longest_ms = ms;
    }
    return (int) ((longest_ms + 999) / 1000);
}

/* Parameters as the renderer wants them: every value a string. */
static int params_strings(json_t *params, const char ***ret_names, const char ***ret_values,
                          char ***ret_owned, size_t *ret_n, struct yg_error **ret_error)
{
    size_t n = json_object_size(params), i = 0;
    const char **names = xcalloc(n + 1, sizeof *names);
    const char **values = xcalloc(n + 1, sizeof *values);
    char **owned = xcalloc(n + 1, sizeof *owned);
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
        names[i] = key;
        if (json_is_string(v))
            owned[i] = xstrdup(json_string_value(v));
        else if (json_is_integer(v))
            owned[i] = xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_boolean(v))
            owned[i] = xstrdup(json_is_true(v) ? "true" : "false");
        else {
            if (!*ret_error)
                *ret_error = yg_error_new(422, "invalid_request", "the run's parameters are not valid");
            yg_error_add_detail(*ret_error, 0, 0, "params", "'%s' must be a string, a number or a boolean",
                                key);
            owned[i] = xstrdup("");
        }
        values[i] = owned[i];
        i++;
    }
    *ret_names = names;
    *ret_values = values;
    *ret_owned = owned;
    *ret_n = n;
    return *ret_error ? -EINVAL : 0;
}

static void strings_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static int run_insert_task(struct store_txn *txn, int64_t run_id, const struct run_segment *seg,
                           const struct run_host *h, const char *at)
{
    json_t *sj = segment_json(seg, h);
    _cleanup_free_ char *seg_text = json_dumps(sj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    _cleanup_free_ char *steps_text = json_dumps(h->steps, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(sj);
    sqlite3_stmt *st = store_stmt(store_txn_conn(txn),
        "INSERT INTO playbook_tasks (run_id, host_id, host, batch, state, segment_json, steps, "
        "  step_wait_seconds, updated_at) VALUES (?1, ?2, ?3, ?4, 'waiting', ?5, ?6, ?7, ?8)");
    if (!st || !seg_text || !steps_text)
        return -EIO;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, h->id);
    store_bind_text(st, 3, h->name);
    sqlite3_bind_int(st, 4, h->batch);
    store_bind_text(st, 5, seg_text);
    store_bind_text(st, 6, steps_text);
    sqlite3_bind_int(st, 7, h->step_wait_seconds);
    store_bind_text(st, 8, at);
    return exec_done(st);
}

/* Release batch BATCH of RUN_ID: its hosts may fetch their tasks, and are
 * given up if they do not within the host timeout. */
static int release_batch(struct store_txn *txn, int64_t run_id, int batch, int64_t now)
{
    struct store_conn *conn = store_txn_conn(txn);
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(conn,
        "UPDATE playbook_tasks SET released_at = ?3, deadline_epoch = ?4, updated_at = ?3 "
        "WHERE run_id = ?1 AND batch = ?2 AND state = 'waiting' RETURNING host_id");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, batch);
    store_bind_text(st, 3, at);
    sqlite3_bind_int64(st, 4, now + playbook_run_host_timeout());
    int64_t *woken = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        woken = xrealloc(woken, (n + 1) * sizeof *woken);
        woken[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(woken);
        return -EIO;
    }
    st = store_stmt(conn, "UPDATE playbook_runs SET current_batch = ?2 WHERE id = ?1");
    if (!st) {
        free(woken);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, batch);
    int r = exec_done(st);
    for (size_t i = 0; r == 0 && i < n; i++)
        wake_host(woken[i]);
    free(woken);
    return r;
}

static bool may_run(const struct principal *by, enum playbook_mode mode)
{
    switch (by->role) {
    case ROLE_ADMIN:
    case ROLE_NETOPS:
        return true;
    case ROLE_CLOUDOPS:
        return mode == PLAYBOOK_MODE_CHECK;
    default:
        return false;
    }
}

int playbook_run_create(struct store_txn *txn, const struct principal *by,
                        const struct playbook_run_request *req, int64_t now,
                        int64_t *ret_run_id, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    if (!may_run(by, req->mode)) {
        *ret_error = yg_error_new(403, "forbidden", "permission denied: role '%s' may not run a playbook "
                                  "in %s mode (apply: netops, admin; check: also cloudops)",
                                  role_to_string(by->role), playbook_mode_to_string(req->mode));
        return -EPERM;
    }
    int batch_size = req->batch_size > 0 ? req->batch_size : atomic_load(&default_batch_size);
    if (batch_size > PLAYBOOK_BATCH_SIZE_MAX) {
        *ret_error = yg_error_new(422, "invalid_request", "batch_size %d is larger than %d",
                                  batch_size, PLAYBOOK_BATCH_SIZE_MAX);
        return -EINVAL;
    }

    struct run_segment seg = { 0 };
    int r = load_segment(conn, req->segment, &seg);
    if (r == -ENOENT) {
        *ret_error = yg_error_new(404, "not_found", "there is no segment '%s'", req->segment);
        return r;
    }
    if (r < 0)
        return r;

    struct run_host *all = NULL, *hosts = NULL;
    size_t n_all = 0, n = 0;
    const char **pnames = NULL, **pvalues = NULL;
    char **powned = NULL;
    size_t n_params = 0;
    char *text_sha = NULL;
    json_t *host_names = NULL;
    struct strbuf failed_names = { 0 };
    char *params_text = NULL, *object = NULL;
    r = load_segment_hosts(conn, seg.id, &all, &n_all);
    if (r < 0)
        goto out;

    /* The hosts of the run, by name: the ones asked for (each must carry
     * the segment), else all. */
    if (req->n_hosts > 0) {
        if (req->n_hosts > PLAYBOOK_RUN_MAX_HOSTS) {
            *ret_error = yg_error_new(422, "invalid_request", "a run takes at most %d hosts",
                                      PLAYBOOK_RUN_MAX_HOSTS);
            r = -EINVAL;
            goto out;
        }
        hosts = xcalloc(n_all ? n_all : 1, sizeof *hosts);
        for (size_t i = 0; i < n_all; i++) {
            bool wanted = false;
            for (size_t k = 0; k < req->n_hosts && !wanted; k++)
                wanted = streq(req->hosts[k], all[i].name);
            if (wanted) {
                hosts[n++] = all[i];
                all[i] = (struct run_host) { 0 };
            }
        }
        for (size_t k = 0; k < req->n_hosts; k++) {
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = streq(req->hosts[k], hosts[i].name);
            if (!found) {
                if (!*ret_error)
                    *ret_error = yg_error_new(422, "invalid_request",
                                              "every host of a run must carry segment '%s'", seg.name);
                yg_error_add_detail(*ret_error, 0, 0, "hosts", "host '%s' does not carry segment '%s'",
                                    req->hosts[k], seg.name);
            }
        }
        if (*ret_error) {
            r = -EINVAL;
            goto out;
        }
    } else {
        hosts = steal_pointer(&all);
        n = n_all;
        n_all = 0;
        if (n > PLAYBOOK_RUN_MAX_HOSTS) {
            *ret_error = yg_error_new(422, "invalid_request",
                                      "segment '%s' has %zu hosts; a run takes at most %d: name them with 'hosts'",
                                      seg.name, n, PLAYBOOK_RUN_MAX_HOSTS);
            r = -EINVAL;
            goto out;
        }
    }
    if (n == 0) {
        *ret_error = yg_error_new(422, "invalid_request", "segment '%s' has no hosts to run on", seg.name);
        r = -EINVAL;
        goto out;
    }

    /* One apply run at a time per segment: two would race on the same
     * interfaces, and each one's rollback could undo the other's work. */
    if (req->mode == PLAYBOOK_MODE_APPLY) {
        sqlite3_stmt *st = store_stmt(conn,
            "SELECT id FROM playbook_runs WHERE segment_id = ?1 AND mode = 'apply' AND state = 'running' "
            "LIMIT 1");
        if (!st) {
            r = -EIO;
            goto out;
        }
        sqlite3_bind_int64(st, 1, seg.id);
        int64_t busy = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (busy) {
            *ret_error = yg_error_new(409, "conflict", "run %" PRId64 " is still applying on segment '%s'; "
                                      "wait for it or cancel it first", busy, seg.name);
            r = -EBUSY;
            goto out;
        }
    }

    /* Canary and batches (apply); one batch with everyone (check). */
    size_t canary = 0;
    if (req->canary) {
        if (req->mode != PLAYBOOK_MODE_APPLY) {
            *ret_error = yg_error_new(422, "invalid_request", "a canary is for apply runs only");
            r = -EINVAL;
            goto out;
        }
        for (canary = 0; canary < n && !streq(hosts[canary].name, req->canary); canary++)
            ;
        if (canary == n) {
            *ret_error = yg_error_new(422, "invalid_request", "canary '%s' is not one of the run's hosts",
                                      req->canary);
            r = -EINVAL;
            goto out;
        }
    }
    int batches = 1;
    if (req->mode == PLAYBOOK_MODE_APPLY) {
        int position = 0;
        for (size_t i = 0; i < n; i++) {
            if (i == canary) {
                hosts[i].batch = 0;
                continue;
            }
            hosts[i].batch = 1 + position / batch_size;
            position++;
        }
        batches = 1 + (int) ((n - 1 + (size_t) batch_size - 1) / (size_t) batch_size);
    }

    /* Render every host before anything is stored. */
    r = params_strings(req->params, &pnames, &pvalues, &powned, &n_params, ret_error);
    if (r < 0)
        goto out;
    struct yg_error *render_error = NULL;
    size_t render_failures = 0;
    strbuf_init(&failed_names);
    for (size_t i = 0; i < n; i++) {
        struct playbook_vars vars = {
            .host = hosts[i].name, .segment = seg.name, .interface = seg.interface,
            .ipv4_prefix = seg.ipv4_prefix, .ipv4_gateway = seg.ipv4_gateway,
            .ipv6_prefix = seg.ipv6_prefix, .ipv6_gateway = seg.ipv6_gateway,
            .plan_ipv4_address = hosts[i].ipv4_address, .plan_ipv6_address = hosts[i].ipv6_address,
            .param_names = pnames, .param_values = pvalues, .n_params = n_params,
        };
        struct yg_error *e = NULL;
        int rr = playbook_render(req->playbook, &vars, &hosts[i].steps, &e);
        if (rr < 0) {
            if (rr == -ENOMEM) {
                yg_error_free(e);
                yg_error_free(render_error);
                r = rr;
                goto out;
            }
            if (!render_error)
                render_error = yg_error_new(422, "render_failed",
                                            "the playbook cannot be rendered for host '%s'", hosts[i].name);
            if (++render_failures <= RENDER_ERRORS_MAX) {
                /* The renderer's messages name the host already; keep
                 * where in the playbook each problem stands. */
                for (size_t d = 0; e && d < e->n_details; d++)
                    yg_error_add_detail(render_error, e->details[d].line, e->details[d].column,
                                        e->details[d].path, "%s", e->details[d].message);
                if (e && e->n_details == 0)
                    yg_error_add_detail(render_error, 0, 0, NULL, "host '%s': %s", hosts[i].name, e->message);
                if (!e)
                    yg_error_add_detail(render_error, 0, 0, NULL, "host '%s': cannot be rendered",
                                        hosts[i].name);
            }
            strbuf_printf(&failed_names, "%s'%s'", render_failures > 1 ? ", " : "", hosts[i].name);
            yg_error_free(e);
            continue;
        }
        hosts[i].step_wait_seconds = steps_wait_seconds(hosts[i].steps);
    }
    if (render_error) {
        if (render_failures > 1) {
            free(render_error->message);
            render_error->message = xasprintf("the playbook cannot be rendered for %zu hosts: %s",
                                              render_failures, failed_names.s);
        }
        *ret_error = render_error;
        r = -EINVAL;
        goto out;
    }

    /* Store the run, its tasks, release the first batch. */
    char at[32];
    format_utc_now(at);
    text_sha = xmalloc(65);
    sha256_hex(req->text, req->text_len, text_sha);
    json_t *params = req->params ? json_incref(req->params) : json_object();
    params_text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(params);
    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO playbook_runs (playbook, playbook_sha256, playbook_text, segment_id, segment, mode, "
        "  params, batch_size, canary, batches, current_batch, state, created_by, created_role, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, 'running', ?11, ?12, ?13)");
    if (!st || !params_text) {
        r = -EIO;
        goto out;
    }
    store_bind_text(st, 1, playbook_name(req->playbook));
    store_bind_text(st, 2, text_sha);
    sqlite3_bind_text(st, 3, req->text, (int) req->text_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, seg.id);
    store_bind_text(st, 5, seg.name);
    store_bind_text(st, 6, playbook_mode_to_string(req->mode));
    store_bind_text(st, 7, params_text);
    sqlite3_bind_int(st, 8, batch_size);
    store_bind_text(st, 9, req->mode == PLAYBOOK_MODE_APPLY ? hosts[canary].name : NULL);
    sqlite3_bind_int(st, 10, batches);
    store_bind_text(st, 11, by->actor);
    store_bind_text(st, 12, role_to_string(by->role));
    store_bind_text(st, 13, at);
    r = exec_done(st);
    if (r < 0)
        goto out;
    int64_t run_id = sqlite3_last_insert_rowid(store_conn_db(conn));
    host_names = json_array();
    for (size_t i = 0; i < n && r == 0; i++) {
        r = run_insert_task(txn, run_id, &seg, &hosts[i], at);
        json_array_append_new(host_names, json_string(hosts[i].name));
    }
    if (r < 0)
        goto out;
    r = release_batch(txn, run_id, 0, now);
    if (r < 0)
        goto out;
    object = xasprintf("playbook-run/%" PRId64, run_id);
    r = audit(txn, by, "playbook.run", object, NULL,
              json_pack("{s:s, s:s, s:s, s:s, s:O, s:i, s:s?, s:O}",
                        "playbook", playbook_name(req->playbook), "playbook_sha256", text_sha,
                        "segment", seg.name, "mode", playbook_mode_to_string(req->mode),
                        "hosts", host_names, "batch_size", batch_size,
                        "canary", req->mode == PLAYBOOK_MODE_APPLY ? hosts[canary].name : NULL,
                        "params", req->params ? req->params : json_null()));
    if (r == 0)
        *ret_run_id = run_id;
out:
    free(params_text);
    free(object);
    strbuf_free(&failed_names);
    json_decref(host_names);
    free(text_sha);
    strings_free(powned, n_params);
    free(pnames);
    free(pvalues);
    run_hosts_free(all, n_all);
    run_hosts_free(hosts, n);
    run_segment_clear(&seg);
    return r;
}

/* ---- moving a run on ---- */

struct run_row {
    int64_t id;
    enum playbook_mode mode;
    int state;
    int batches, current_batch;
    char segment[128];
};

static int load_run(struct store_conn *conn, int64_t run_id, struct run_row *ret)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT mode, state, batches, current_batch, segment FROM playbook_runs WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        ret->id = run_id;
        ret->mode = playbook_mode_from_string(store_column_text(st, 0));
        ret->state = playbook_run_state_from_string(store_column_text(st, 1));
        ret->batches = sqlite3_column_int(st, 2);
        ret->current_batch = sqlite3_column_int(st, 3);
        snprintf(ret->segment, sizeof ret->segment, "%s", store_column_text(st, 4));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

static int run_finish(struct store_txn *txn, const struct principal *by, int64_t run_id,
                      enum playbook_run_state state, const char *message)
{
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(store_txn_conn(txn),
        "UPDATE playbook_runs SET state = ?2, message = ?3, finished_at = ?4 WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, run_id);
    store_bind_text(st, 2, playbook_run_state_to_string(state));
    store_bind_text(st, 3, message);
    store_bind_text(st, 4, at);
    int r = exec_done(st);
    if (r < 0)
        return r;
    if (state != PLAYBOOK_RUN_CANCELLED)
        log_info(LOG_DOMAIN, "run %" PRId64 " %s%s%s", run_id, playbook_run_state_to_string(state),
                 message ? ": " : "", message ? message : "");
    _cleanup_free_ char *object = xasprintf("playbook-run/%" PRId64, run_id);
    return audit(txn, by, "playbook.run-end", object, json_pack("{s:s}", "state", "running"),
                 json_pack("{s:s, s:s?}", "state", playbook_run_state_to_string(state), "message", message));
}

static int run_set_message(struct store_txn *txn, int64_t run_id, const char *message)
{
    sqlite3_stmt *st = store_stmt(store_txn_conn(txn), "UPDATE playbook_runs SET message = ?2 WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, run_id);
    store_bind_text(st, 2, message);
    return exec_done(st);
}

/* Hosts of RUN_ID not yet started (waiting, released or not) become
 * NEW_STATE, one audit entry each. */
static int end_unstarted(struct store_txn *txn, const struct principal *by, int64_t run_id,
                         enum playbook_host_state new_state, const char *message)
{
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(store_txn_conn(txn),
        "UPDATE playbook_tasks SET state = ?2, message = ?3, deadline_epoch = NULL, updated_at = ?4 "
        "WHERE run_id = ?1 AND state = 'waiting' RETURNING host");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, run_id);
    store_bind_text(st, 2, playbook_host_state_to_string(new_state));
    store_bind_text(st, 3, message);
    store_bind_text(st, 4, at);
    char **names = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(store_column_text(st, 0));
    }
    sqlite3_reset(st);
    int r = rc == SQLITE_DONE ? 0 : -EIO;
    for (size_t i = 0; i < n; i++) {
        if (r == 0) {
            _cleanup_free_ char *object = xasprintf("playbook-run/%" PRId64 "/host/%s", run_id, names[i]);
            r = audit(txn, by, "playbook.host", object, json_pack("{s:s}", "state", "waiting"),
                      json_pack("{s:s, s:s?}", "state", playbook_host_state_to_string(new_state),
                                "message", message));
        }
        free(names[i]);
    }
    free(names);
    return r;
}

/* After a host of RUN_ID ended: stop the run at a failure, start the next
 * batch when this one is done, end the run when nothing is left. */
static int run_advance(struct store_txn *txn, const struct principal *by, int64_t run_id, int64_t now)
{
    struct store_conn *conn = store_txn_conn(txn);
    struct run_row run;
    int r = load_run(conn, run_id, &run);
    if (r < 0)
        return r;
    if (run.state != PLAYBOOK_RUN_RUNNING)
        return 0;       /* cancelled: late results are recorded, nothing moves */

    sqlite3_stmt *st = store_stmt(conn,
        "SELECT COALESCE(SUM(state IN ('sent', 'running') "
        "                    OR (state = 'waiting' AND deadline_epoch IS NOT NULL)), 0), "
        "       COALESCE(SUM(state IN ('failed', 'unknown')), 0), "
        "       COALESCE(SUM(state = 'waiting' AND batch = ?2), 0), "
        "       (SELECT host || ' ' || state || COALESCE(': ' || message, '') FROM playbook_tasks "
        "        WHERE run_id = ?1 AND state IN ('failed', 'unknown') ORDER BY updated_at, id LIMIT 1) "
        "FROM playbook_tasks WHERE run_id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int(st, 2, run.current_batch);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return -EIO;
    }
    int64_t in_flight = sqlite3_column_int64(st, 0);
    int64_t bad = sqlite3_column_int64(st, 1);
    int64_t batch_left = sqlite3_column_int64(st, 2);
    _cleanup_free_ char *first_bad = column_dup(st, 3);
    sqlite3_reset(st);

    if (bad > 0 && run.mode == PLAYBOOK_MODE_APPLY) {
        /* Stop: the not-yet-fetched hosts are not started at all (they are
         * skipped even when their batch was released); those running finish. */
        _cleanup_free_ char *why = xasprintf("stopped at the first failed host: %s", first_bad ? first_bad : "?");
        r = end_unstarted(txn, by, run_id, PLAYBOOK_HOST_SKIPPED, "the run stopped at a failed host");
        if (r < 0)
            return r;
        st = store_stmt(conn, "SELECT COUNT(*) FROM playbook_tasks WHERE run_id = ?1 AND state IN ('sent', 'running')");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, run_id);
        in_flight = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (in_flight > 0) {
            _cleanup_free_ char *stopping = xasprintf("%s; waiting for %" PRId64 " host(s) already running",
                                                      why, in_flight);
            return run_set_message(txn, run_id, stopping);
        }
        return run_finish(txn, by, run_id, PLAYBOOK_RUN_FAILED, why);
    }
    if (in_flight > 0 || batch_left > 0)
        return 0;
    if (run.current_batch + 1 < run.batches)
        return release_batch(txn, run_id, run.current_batch + 1, now);
    if (bad > 0) {
        _cleanup_free_ char *why = xasprintf("%" PRId64 " host(s) failed; the first: %s", bad,
                                             first_bad ? first_bad : "?");
        return run_finish(txn, by, run_id, PLAYBOOK_RUN_FAILED, why);
    }
    return run_finish(txn, by, run_id, PLAYBOOK_RUN_SUCCEEDED, NULL);
}

int playbook_run_cancel(struct store_txn *txn, const struct principal *by, int64_t run_id,
                        int64_t now, struct yg_error **ret_error)
{
    struct run_row run;
    int r = load_run(store_txn_conn(txn), run_id, &run);
    if (r == -ENOENT) {
        *ret_error = yg_error_new(404, "not_found", "there is no playbook run %" PRId64, run_id);
        return r;
    }
    if (r < 0)
        return r;
    if (!may_run(by, run.mode)) {
        *ret_error = yg_error_new(403, "forbidden", "permission denied: role '%s' may not cancel a %s run",
                                  role_to_string(by->role), playbook_mode_to_string(run.mode));
        return -EPERM;
    }
    if (run.state != PLAYBOOK_RUN_RUNNING) {
        *ret_error = yg_error_new(409, "conflict", "run %" PRId64 " has already ended (%s)", run_id,
                                  playbook_run_state_to_string(run.state));
        return -EBUSY;
    }
    _cleanup_free_ char *message = xasprintf("cancelled by %s", by->actor);
    r = end_unstarted(txn, by, run_id, PLAYBOOK_HOST_CANCELLED, message);
    if (r == 0)
        r = run_finish(txn, by, run_id, PLAYBOOK_RUN_CANCELLED, message);
    (void) now;
    return r;
}

/* ---- the agent's side ---- */

static int64_t running_deadline(int64_t now, int step_wait_seconds)
{
    return now + playbook_run_host_timeout() + step_wait_seconds;
}

int playbook_tasks_fetch(struct store_txn *txn, const struct principal *by, int64_t now,
                         size_t max, json_t **ret_tasks)
{
    struct store_conn *conn = store_txn_conn(txn);
    /* A task already 'sent' but not begun is handed out again: an agent
     * polls only when it has no task in hand and every result of its own
     * is delivered (doc/AGENT.md), so the answer that carried it was lost
     * (the poll's connection dropped).  Its steps are idempotent, and a
     * task the agent did begin has a journal and ends in a result first. */
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT t.id, t.run_id, r.mode, r.playbook, t.segment_json, t.steps, t.step_wait_seconds, t.host, "
        "       t.state "
        "FROM playbook_tasks t JOIN playbook_runs r ON r.id = t.run_id "
        "WHERE t.host_id = ?1 AND t.state IN ('waiting', 'sent') AND t.deadline_epoch IS NOT NULL "
        "ORDER BY t.id LIMIT ?2");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, by->host_id);
    sqlite3_bind_int64(st, 2, (int64_t) max);
    json_t *tasks = json_array();
    int64_t ids[64];
    int waits[64];
    char *hosts[64];
    bool again[64];
    size_t n = 0;
    int rc;
    while (n < YG_ARRAY_SIZE(ids) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids[n] = sqlite3_column_int64(st, 0);
        waits[n] = sqlite3_column_int(st, 6);
        hosts[n] = xstrdup(store_column_text(st, 7));
        again[n] = streq(store_column_text(st, 8), "sent");
        json_array_append_new(tasks, json_pack("{s:I, s:I, s:s, s:s, s:o, s:I, s:o}",
            "id", (json_int_t) ids[n], "run", (json_int_t) sqlite3_column_int64(st, 1),
            "mode", store_column_text(st, 2), "playbook", store_column_text(st, 3),
            "segment", json_column(st, 4),
            "timeout_ms", (json_int_t) playbook_run_host_timeout() * 1000,
            "steps", json_column(st, 5)));
        n++;
    }
    sqlite3_reset(st);
    char at[32];
    format_utc_now(at);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (r == 0) {
            st = store_stmt(conn,
                "UPDATE playbook_tasks SET updated_at = ?2, "
                /* a redelivered task keeps its first deadline: an agent that
                 * keeps polling but never begins must still time out */
                "  sent_at = CASE state WHEN 'sent' THEN sent_at ELSE ?2 END, "
                "  deadline_epoch = CASE state WHEN 'sent' THEN deadline_epoch ELSE ?3 END, "
                "  state = 'sent' "
                "WHERE id = ?1");
            if (!st)
                r = -EIO;
        }
        if (r == 0) {
            sqlite3_bind_int64(st, 1, ids[i]);
            store_bind_text(st, 2, at);
            sqlite3_bind_int64(st, 3, running_deadline(now, waits[i]));
            r = exec_done(st);
        }
        if (r == 0) {
            json_t *t = json_array_get(tasks, i);
            _cleanup_free_ char *object = xasprintf("playbook-run/%" PRId64 "/host/%s",
                                                    (int64_t) json_integer_value(json_object_get(t, "run")),
                                                    hosts[i]);
            r = audit(txn, by, "playbook.host", object,
                      json_pack("{s:s}", "state", again[i] ? "sent" : "waiting"),
                      again[i] ? json_pack("{s:s, s:I, s:b}", "state", "sent", "task",
                                           (json_int_t) ids[i], "redelivered", 1)
                               : json_pack("{s:s, s:I}", "state", "sent", "task", (json_int_t) ids[i]));
        }
        free(hosts[i]);
    }
    if (r < 0) {
        json_decref(tasks);
        return r;
    }
    *ret_tasks = tasks;
    return 0;
}

bool playbook_tasks_pending(struct store_conn *conn, int64_t host_id)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT 1 FROM playbook_tasks WHERE host_id = ?1 AND state IN ('waiting', 'sent') "
        "AND deadline_epoch IS NOT NULL LIMIT 1");
    if (!st)
        return false;
    sqlite3_bind_int64(st, 1, host_id);
    bool pending = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return pending;
}

static bool one_of(const char *s, const char *const *set)
{
    for (; s && *set; set++)
        if (streq(s, *set))
            return true;
    return false;
}

struct yg_error *playbook_task_report_check(json_t *body, bool final)
{
    static const char *const final_states[] = { "succeeded", "failed", NULL };
    static const char *const progress_states[] = { "running", "succeeded", "failed", NULL };
    static const char *const step_states[] = { "changed", "unchanged", "would-change", "skipped", "failed",
                                               "undone", "undo-failed", "not-run", "running", NULL };
    struct yg_error *e = NULL;
#define PROBLEM(path, ...) do { \
        if (!e) e = yg_error_new(422, "invalid_result", "the task %s is not valid", final ? "result" : "progress"); \
        yg_error_add_detail(e, 0, 0, path, __VA_ARGS__); } while (0)
    if (!json_is_object(body))
        return yg_error_new(400, "bad_request", "the body must be a JSON object");
    const char *status = json_string_value(json_object_get(body, "status"));
    if (!one_of(status, final ? final_states : progress_states))
        PROBLEM("status", final ? "must be \"succeeded\" or \"failed\"" : "must be \"running\", \"succeeded\" or \"failed\"");
    static const char *const bools[] = { "rolled_back", "rollback_ok", NULL };
    for (size_t i = 0; bools[i]; i++) {
        json_t *b = json_object_get(body, bools[i]);
        if (b && !json_is_boolean(b))
            PROBLEM(bools[i], "must be true or false");
    }
    static const char *const texts[] = { "message", "started_at", "finished_at", NULL };
    for (size_t i = 0; texts[i]; i++) {
        json_t *t = json_object_get(body, texts[i]);
        if (t && !json_is_null(t) && (!json_is_string(t) || strlen(json_string_value(t)) > REPORT_MAX_MESSAGE))
            PROBLEM(texts[i], "must be a string of at most %d bytes", REPORT_MAX_MESSAGE);
    }
    json_t *steps = json_object_get(body, "steps");
    if (steps && (!json_is_array(steps) || json_array_size(steps) > PLAYBOOK_MAX_STEPS))
        PROBLEM("steps", "must be an array of at most %d steps", PLAYBOOK_MAX_STEPS);
    size_t i;
    json_t *s;
    json_array_foreach(json_is_array(steps) ? steps : NULL, i, s) {
        char path[48];
        snprintf(path, sizeof path, "steps[%zu]", i);
        if (!json_is_object(s)) {
            PROBLEM(path, "must be an object");
            continue;
        }
        json_t *index = json_object_get(s, "index");
        if (!json_is_integer(index) || json_integer_value(index) < 0 ||
            json_integer_value(index) >= PLAYBOOK_MAX_STEPS)
            PROBLEM(path, "needs 'index', an integer from 0 to %d", PLAYBOOK_MAX_STEPS - 1);
        if (!one_of(json_string_value(json_object_get(s, "status")), step_states))
            PROBLEM(path, "'status' must be one of changed, unchanged, would-change, skipped, failed, "
                          "undone, undo-failed, not-run, running");
        static const char *const step_texts[] = { "name", "action", "before", "after", "message", NULL };
        for (size_t k = 0; step_texts[k]; k++) {
            json_t *t = json_object_get(s, step_texts[k]);
            if (t && !json_is_null(t) && (!json_is_string(t) || strlen(json_string_value(t)) > REPORT_MAX_TEXT))
                PROBLEM(path, "'%s' must be a string of at most %d bytes", step_texts[k], REPORT_MAX_TEXT);
        }
        json_t *d = json_object_get(s, "duration_us");
        if (d && (!json_is_integer(d) || json_integer_value(d) < 0))
            PROBLEM(path, "'duration_us' must be a non-negative integer");
    }
#undef PROBLEM
    return e;
}

/* Only the fields doc/AGENT.md names are kept: the store does not hold
 * whatever else a client sends. */
static json_t *steps_sanitized(json_t *steps)
{
    static const char *const keys[] = { "index", "name", "action", "status", "before", "after", "message",
                                        "duration_us", NULL };
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s) {
        json_t *c = json_object();
        for (size_t k = 0; keys[k]; k++) {
            json_t *v = json_object_get(s, keys[k]);
            if (v)
                json_object_set(c, keys[k], v);
        }
        json_array_append_new(out, c);
    }
    return out;
}

static const char *json_text(json_t *body, const char *key)
{
    return json_string_value(json_object_get(body, key));
}

int playbook_task_report(struct store_txn *txn, const struct principal *by, int64_t task_id,
                         json_t *body, bool final, int64_t now, bool *ret_accepted,
                         struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT run_id, host, state, step_wait_seconds FROM playbook_tasks WHERE id = ?1 AND host_id = ?2");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, task_id);
    sqlite3_bind_int64(st, 2, by->host_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        /* Another host's task looks exactly like no task. */
        *ret_error = yg_error_new(404, "not_found", "this host has no task %" PRId64, task_id);
        return -ENOENT;
    }
    int64_t run_id = sqlite3_column_int64(st, 0);
    _cleanup_free_ char *host = xstrdup(store_column_text(st, 1));
    int state = playbook_host_state_from_string(store_column_text(st, 2));
    int step_wait = sqlite3_column_int(st, 3);
    sqlite3_reset(st);

    json_t *steps = json_object_get(body, "steps");
    json_t *clean = steps_sanitized(steps);
    _cleanup_free_ char *steps_text = json_dumps(clean, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(clean);
    const char *status = json_text(body, "status");
    bool ends = final || (status && !streq(status, "running"));
    char at[32];
    format_utc_now(at);
    _cleanup_free_ char *object = xasprintf("playbook-run/%" PRId64 "/host/%s", run_id, host);

    if (state == PLAYBOOK_HOST_UNKNOWN && ends) {
        /* The host was given up for silent, and the run has moved on; what
         * it did in the end is still worth keeping for whoever looks. */
        st = store_stmt(conn, "SELECT late_result IS NULL FROM playbook_tasks WHERE id = ?1");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, task_id);
        bool first = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0);
        sqlite3_reset(st);
        *ret_accepted = false;
        if (!first)
            return 0;
        json_t *late = json_pack("{s:s, s:O?, s:O?, s:O?, s:o}", "status", status,
                                 "rolled_back", json_object_get(body, "rolled_back"),
                                 "rollback_ok", json_object_get(body, "rollback_ok"),
                                 "message", json_object_get(body, "message"),
                                 "steps", steps_sanitized(steps));
        _cleanup_free_ char *late_text = json_dumps(late, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(late);
        st = store_stmt(conn, "UPDATE playbook_tasks SET late_result = ?2, updated_at = ?3 WHERE id = ?1");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, task_id);
        store_bind_text(st, 2, late_text);
        store_bind_text(st, 3, at);
        int r = exec_done(st);
        if (r == 0)
            r = audit(txn, by, "playbook.host-late-result", object, json_pack("{s:s}", "state", "unknown"),
                      json_pack("{s:s}", "status", status));
        *ret_accepted = r == 0;
        return r;
    }
    if (state != PLAYBOOK_HOST_SENT && state != PLAYBOOK_HOST_RUNNING) {
        /* Finished (a retried result), or never delivered. */
        *ret_accepted = false;
        return 0;
    }

    if (!ends) {
        st = store_stmt(conn,
            "UPDATE playbook_tasks SET state = 'running', results = ?2, started_at = COALESCE(?3, started_at), "
            "  deadline_epoch = ?4, updated_at = ?5 WHERE id = ?1");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, task_id);
        store_bind_text(st, 2, steps ? steps_text : NULL);
        store_bind_text(st, 3, json_text(body, "started_at"));
        sqlite3_bind_int64(st, 4, running_deadline(now, step_wait));
        store_bind_text(st, 5, at);
        int r = exec_done(st);
        if (r == 0 && state == PLAYBOOK_HOST_SENT)
            r = audit(txn, by, "playbook.host", object, json_pack("{s:s}", "state", "sent"),
                      json_pack("{s:s}", "state", "running"));
        *ret_accepted = r == 0;
        return r;
    }

    enum playbook_host_state outcome = streq(status, "succeeded") ? PLAYBOOK_HOST_SUCCEEDED
                                                                  : PLAYBOOK_HOST_FAILED;
    json_t *rolled_back = json_object_get(body, "rolled_back");
    json_t *rollback_ok = json_object_get(body, "rollback_ok");
    st = store_stmt(conn,
        "UPDATE playbook_tasks SET state = ?2, results = COALESCE(?3, results), rolled_back = ?4, "
        "  rollback_ok = ?5, message = ?6, started_at = COALESCE(?7, started_at), finished_at = ?8, "
        "  deadline_epoch = NULL, updated_at = ?9 WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, task_id);
    store_bind_text(st, 2, playbook_host_state_to_string(outcome));
    store_bind_text(st, 3, steps ? steps_text : NULL);
    if (rolled_back)
        sqlite3_bind_int(st, 4, json_is_true(rolled_back));
    if (rollback_ok)
        sqlite3_bind_int(st, 5, json_is_true(rollback_ok));
    store_bind_text(st, 6, json_text(body, "message"));
    store_bind_text(st, 7, json_text(body, "started_at"));
    store_bind_text(st, 8, json_text(body, "finished_at") ? json_text(body, "finished_at") : at);
    store_bind_text(st, 9, at);
    int r = exec_done(st);
    if (r == 0)
        r = audit(txn, by, "playbook.host", object,
                  json_pack("{s:s}", "state", playbook_host_state_to_string(state)),
                  json_pack("{s:s, s:I, s:O?, s:O?, s:O?}", "state", playbook_host_state_to_string(outcome),
                            "task", (json_int_t) task_id, "rolled_back", rolled_back,
                            "rollback_ok", rollback_ok, "message", json_object_get(body, "message")));
    if (r == 0)
        r = run_advance(txn, by, run_id, now);
    *ret_accepted = r == 0;
    return r;
}

/* ---- timeouts ---- */

int playbook_run_sweep(struct store_txn *txn, int64_t now)
{
    struct store_conn *conn = store_txn_conn(txn);
    /* A deadline counts from this controller's start at the earliest:
     * agents could not reach it while it was down. */
    int64_t since = atomic_load(&judging_since);
    if (since > 0 && now < since + playbook_run_host_timeout())
        return 0;
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(conn,
        "UPDATE playbook_tasks SET state = 'unknown', deadline_epoch = NULL, updated_at = ?2, "
        "  message = CASE state WHEN 'waiting' THEN 'the agent did not fetch its task in time' "
        "                       ELSE 'the agent went silent: no progress in time' END "
        "WHERE deadline_epoch IS NOT NULL AND deadline_epoch <= ?1 "
        "  AND state IN ('waiting', 'sent', 'running') "
        "RETURNING id, run_id, host, message");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, now);
    store_bind_text(st, 2, at);
    struct gone { int64_t task, run; char *host, *message; } *gone = NULL;
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        gone = xrealloc(gone, (n + 1) * sizeof *gone);
        gone[n].task = sqlite3_column_int64(st, 0);
        gone[n].run = sqlite3_column_int64(st, 1);
        gone[n].host = xstrdup(store_column_text(st, 2));
        gone[n].message = xstrdup(store_column_text(st, 3));
        n++;
    }
    sqlite3_reset(st);
    int r = rc == SQLITE_DONE ? 0 : -EIO;
    for (size_t i = 0; i < n && r == 0; i++) {
        log_warn(LOG_DOMAIN, "run %" PRId64 ": host '%s' is unknown: %s", gone[i].run, gone[i].host,
                 gone[i].message);
        _cleanup_free_ char *object = xasprintf("playbook-run/%" PRId64 "/host/%s", gone[i].run, gone[i].host);
        r = audit(txn, NULL, "playbook.host", object, NULL,
                  json_pack("{s:s, s:I, s:s}", "state", "unknown", "task", (json_int_t) gone[i].task,
                            "message", gone[i].message));
    }
    for (size_t i = 0; i < n && r == 0; i++)
        r = run_advance(txn, NULL, gone[i].run, now);
    for (size_t i = 0; i < n; i++) {
        free(gone[i].host);
        free(gone[i].message);
    }
    free(gone);
    return r;
}

/* ---- reads ---- */

/* The rendered steps with the agent's results merged in by index. */
static json_t *steps_with_results(json_t *steps, json_t *results)
{
    json_t *out = json_array();
    size_t i, k;
    json_t *s, *res;
    json_array_foreach(steps, i, s) {
        json_t *c = json_deep_copy(s);
        json_t *found = NULL;
        json_array_foreach(results, k, res)
            if (json_integer_value(json_object_get(res, "index")) == json_integer_value(json_object_get(s, "index")))
                found = res;
        static const char *const keys[] = { "status", "before", "after", "message", "duration_us", NULL };
        for (size_t j = 0; keys[j]; j++) {
            json_t *v = found ? json_object_get(found, keys[j]) : NULL;
            if (v)
                json_object_set(c, keys[j], v);
            else
                json_object_set_new(c, keys[j], j == 0 ? json_string("not-run") : json_null());
        }
        json_array_append_new(out, c);
    }
    return out;
}

static json_t *run_row_json(sqlite3_stmt *st)
{
    /* Columns: RUN_COLUMNS. */
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:i, s:o, s:i, s:i, s:s, s:o, s:s, s:s, s:s, s:o}",
        "id", (json_int_t) sqlite3_column_int64(st, 0), "playbook", store_column_text(st, 1),
        "playbook_sha256", store_column_text(st, 2), "segment", store_column_text(st, 3),
        "mode", store_column_text(st, 4), "params", json_column(st, 5),
        "batch_size", sqlite3_column_int(st, 6), "canary", TEXT_OR_NULL(st, 7),
        "batches", sqlite3_column_int(st, 8), "current_batch", sqlite3_column_int(st, 9),
        "state", store_column_text(st, 10), "message", TEXT_OR_NULL(st, 11),
        "created_by", store_column_text(st, 12), "created_role", store_column_text(st, 13),
        "created_at", store_column_text(st, 14), "finished_at", TEXT_OR_NULL(st, 15));
}

#define RUN_COLUMNS \
    "SELECT r.id, r.playbook, r.playbook_sha256, r.segment, r.mode, r.params, r.batch_size, r.canary, " \
    "       r.batches, r.current_batch, r.state, r.message, r.created_by, r.created_role, r.created_at, " \
    "       r.finished_at "

static void add_counts(struct store_conn *conn, json_t *run, int64_t run_id)
{
    json_t *counts = json_object();
    for (int s = 0; s < _PLAYBOOK_HOST_STATE_MAX; s++)
        json_object_set_new(counts, host_state_names[s], json_integer(0));
    sqlite3_stmt *st = store_stmt(conn, "SELECT state, COUNT(*) FROM playbook_tasks WHERE run_id = ?1 GROUP BY state");
    int64_t total = 0;
    if (st) {
        sqlite3_bind_int64(st, 1, run_id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_object_set_new(counts, store_column_text(st, 0), json_integer(sqlite3_column_int64(st, 1)));
            total += sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
    }
    json_object_set_new(run, "hosts_total", json_integer(total));
    json_object_set_new(run, "counts", counts);
}

json_t *playbook_run_json(struct store_conn *conn, int64_t run_id)
{
    sqlite3_stmt *st = store_stmt(conn, RUN_COLUMNS ", r.playbook_text FROM playbook_runs r WHERE r.id = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, run_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return NULL;
    }
    json_t *run = run_row_json(st);
    json_object_set_new(run, "playbook_yaml", json_string(store_column_text(st, 16)));
    sqlite3_reset(st);
    add_counts(conn, run, run_id);

    st = store_stmt(conn,
        "SELECT id, host, batch, state, message, rolled_back, rollback_ok, released_at, sent_at, started_at, "
        "       finished_at, deadline_epoch, steps, results, late_result, updated_at "
        "FROM playbook_tasks WHERE run_id = ?1 ORDER BY batch, host");
    if (!st) {
        json_decref(run);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, run_id);
    json_t *hosts = json_array();
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *steps = json_column(st, 12), *results = json_column(st, 13);
        json_t *h = json_pack("{s:s, s:I, s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}",
            "host", store_column_text(st, 1), "task", (json_int_t) sqlite3_column_int64(st, 0),
            "batch", sqlite3_column_int(st, 2), "state", store_column_text(st, 3),
            "message", TEXT_OR_NULL(st, 4),
            "rolled_back", sqlite3_column_type(st, 5) == SQLITE_NULL ? json_null()
                           : json_boolean(sqlite3_column_int(st, 5)),
            "rollback_ok", sqlite3_column_type(st, 6) == SQLITE_NULL ? json_null()
                           : json_boolean(sqlite3_column_int(st, 6)),
            "released_at", TEXT_OR_NULL(st, 7), "sent_at", TEXT_OR_NULL(st, 8),
            "started_at", TEXT_OR_NULL(st, 9), "finished_at", TEXT_OR_NULL(st, 10),
            "deadline_epoch", sqlite3_column_type(st, 11) == SQLITE_NULL ? json_null()
                              : json_integer(sqlite3_column_int64(st, 11)),
            "steps", steps_with_results(steps, results), "updated_at", store_column_text(st, 15));
        if (sqlite3_column_type(st, 14) != SQLITE_NULL)
            json_object_set_new(h, "late_result", json_column(st, 14));
        json_decref(steps);
        json_decref(results);
        json_array_append_new(hosts, h);
    }
    sqlite3_reset(st);
    json_object_set_new(run, "hosts", hosts);
    return run;
}

json_t *playbook_runs_json(struct store_conn *conn, const char *segment, const char *state, int limit)
{
    sqlite3_stmt *st = store_stmt(conn, RUN_COLUMNS "FROM playbook_runs r "
        "WHERE (?1 IS NULL OR r.segment = ?1) AND (?2 IS NULL OR r.state = ?2) ORDER BY r.id DESC LIMIT ?3");
    if (!st)
        return NULL;
    store_bind_text(st, 1, segment);
    store_bind_text(st, 2, state);
    sqlite3_bind_int(st, 3, limit);
    json_t *items = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(items, run_row_json(st));
    sqlite3_reset(st);
    size_t i;
    json_t *run;
    json_array_foreach(items, i, run)
        add_counts(conn, run, (int64_t) json_integer_value(json_object_get(run, "id")));
    return json_pack("{s:o}", "items", items);
}

/* ---- the sweeper thread ---- */

struct playbook_sweeper {
    struct store_ticker *ticker;
};

static int sweeper_run(struct store_txn *txn, void *ctx)
{
    (void) ctx;
    return playbook_run_sweep(txn, (int64_t) time(NULL));
}

static int sweep_interval(void)
{
    return SWEEP_INTERVAL_SECONDS;
}

struct playbook_sweeper *playbook_sweeper_start(struct store *store)
{
    struct playbook_sweeper *sw = xcalloc(1, sizeof *sw);
    playbook_run_set_judging_since((int64_t) time(NULL));
    sw->ticker = store_ticker_start(store, "playbook timeout sweep", sweep_interval, sweeper_run, NULL);
    if (!sw->ticker) {
        free(sw);
        return NULL;
    }
    return sw;
}

void playbook_sweeper_stop(struct playbook_sweeper *sw)
{
    if (!sw)
        return;
    store_ticker_stop(sw->ticker);
    free(sw);
}

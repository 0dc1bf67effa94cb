/* IPv6 migration playbooks over HTTP (doc/PLAYBOOKS.md, doc/AGENT.md
 * "Playbook tasks"): the installed playbooks, runs, and the agents' task
 * long-poll, progress and results.
 *
 * The long-poll holds no thread: a poll that finds nothing suspends its
 * connection in the set of task waiters; making a task fetchable for a
 * host (controller/playbook-run.c, on the writer) wakes that host's
 * waiters, which look again; a timer thread answers `{"tasks": []}` when
 * their `wait` runs out. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "api.h"
#include "api-handlers.h"
#include "auth.h"
#include "log.h"
#include "playbook.h"
#include "playbook-run.h"
#include "sha256.h"
#include "util.h"

#define LOG_DOMAIN "api"
#define TASK_WAIT_MAX 60                /* seconds, doc/AGENT.md */
#define TASKS_PER_FETCH 8
#define PLAYBOOKS_LISTED_MAX 256
#define RUNS_LISTED_DEFAULT 50
#define RUNS_LISTED_MAX 500

static int64_t now_epoch(void) { return (int64_t) time(NULL); }

static bool is_slug(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* ---- installed playbooks ---- */

/* Read and parse DIR/NAME.yaml.  0, -ENOENT, or -EINVAL with *ret_error. */
static int load_installed(const char *dir, const char *name, char **ret_text, size_t *ret_len,
                          struct playbook **ret_pb, struct yg_error **ret_error)
{
    _cleanup_free_ char *path = xasprintf("%s/%s.yaml", dir, name);
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = read_file_limited(path, PLAYBOOK_MAX_BYTES, &text, &len);
    if (r == -ENOENT)
        return r;
    if (r < 0) {
        *ret_error = yg_error_new(r == -EFBIG ? 422 : 500, "invalid_playbook",
                                  "cannot read playbook '%s': %s", path, strerror(-r));
        return r;
    }
    r = playbook_parse(text, len, path, ret_pb, ret_error);
    if (r < 0)
        return r;
    /* Runs and audit entries name the playbook by its file; the file must
     * say the same, or a renamed copy would run under another name. */
    if (!streq(playbook_name(*ret_pb), name)) {
        *ret_error = yg_error_new(422, "invalid_playbook",
                                  "playbook file '%s' declares metadata.name '%s'; the file must be "
                                  "named after it ('%s.yaml')", path, playbook_name(*ret_pb),
                                  playbook_name(*ret_pb));
        playbook_free(*ret_pb);
        *ret_pb = NULL;
        return -EINVAL;
    }
    *ret_text = steal_pointer(&text);
    *ret_len = len;
    return 0;
}

static json_t *params_json(const struct playbook *pb)
{
    json_t *params = json_array();
    for (size_t i = 0; i < playbook_n_params(pb); i++)
        json_array_append_new(params, json_pack("{s:s, s:s, s:s?, s:b}",
            "name", playbook_param_name(pb, i), "type", playbook_param_type(pb, i),
            "default", playbook_param_default(pb, i), "required", playbook_param_default(pb, i) == NULL));
    return params;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

void api_playbooks_list(struct api_call *call, const struct api_route_args *args)
{
    (void) args;
    const char *dir = api_call_playbook_dir(call);
    DIR *d = opendir(dir);
    json_t *items = json_array();
    if (!d && errno != ENOENT) {
        api_reply_errorf(call, 500, "internal", "cannot read the playbook directory '%s': %s", dir,
                         strerror(errno));
        json_decref(items);
        return;
    }
    char *names[PLAYBOOKS_LISTED_MAX];
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) && n < PLAYBOOKS_LISTED_MAX) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || !streq(de->d_name + len - 5, ".yaml"))
            continue;
        char *name = xstrndup(de->d_name, len - 5);
        if (!is_slug(name)) {
            free(name);
            continue;
        }
        names[n++] = name;
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, compare_strings);
    for (size_t i = 0; i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        struct playbook *pb = NULL;
        struct yg_error *e = NULL;
        int r = load_installed(dir, names[i], &text, &len, &pb, &e);
        if (r == 0) {
            char sha[65];
            sha256_hex(text, len, sha);
            json_array_append_new(items, json_pack("{s:s, s:s?, s:i, s:o, s:s}",
                "name", playbook_name(pb), "description", playbook_description(pb),
                "steps", (int) playbook_n_steps(pb), "params", params_json(pb), "sha256", sha));
        } else {
            /* A broken file is listed, with why: the operator must see it. */
            char *why = e ? yg_error_format(e, NULL) : xstrdup(strerror(-r));
            json_array_append_new(items, json_pack("{s:s, s:s}", "name", names[i], "error", why));
            free(why);
        }
        playbook_free(pb);
        yg_error_free(e);
        free(text);
        free(names[i]);
    }
    api_reply_json(call, 200, json_pack("{s:s, s:o}", "directory", dir, "items", items));
}

void api_playbooks_show(struct api_call *call, const struct api_route_args *args)
{
    const char *dir = api_call_playbook_dir(call);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    struct playbook *pb = NULL;
    struct yg_error *e = NULL;
    int r = load_installed(dir, args->name, &text, &len, &pb, &e);
    if (r == -ENOENT) {
        api_reply_errorf(call, 404, "not_found", "there is no installed playbook '%s' (in %s)", args->name, dir);
        return;
    }
    if (r < 0) {
        api_reply_error(call, e);
        return;
    }
    char sha[65];
    sha256_hex(text, len, sha);
    json_t *j = playbook_to_json(pb);
    json_object_set_new(j, "sha256", json_string(sha));
    json_object_set_new(j, "yaml", json_stringn(text, len));
    playbook_free(pb);
    api_reply_json(call, 200, j);
}

/* ---- runs ---- */

struct run_job {
    struct principal by;
    char *text;
    size_t text_len;
    struct playbook *pb;
    char segment[128];
    enum playbook_mode mode;
    char **hosts;
    size_t n_hosts;
    char canary[128];
    int batch_size;
    json_t *params;
    int64_t run_id;
    struct yg_error *error;
};

static void run_job_free(struct run_job *j)
{
    free(j->text);
    playbook_free(j->pb);
    for (size_t i = 0; i < j->n_hosts; i++)
        free(j->hosts[i]);
    free(j->hosts);
    json_decref(j->params);
    yg_error_free(j->error);
    free(j);
}

static int run_create_run(struct store_txn *txn, void *ctx)
{
    struct run_job *j = ctx;
    struct playbook_run_request req = {
        .playbook = j->pb, .text = j->text, .text_len = j->text_len, .segment = j->segment,
        .mode = j->mode, .hosts = (const char *const *) j->hosts, .n_hosts = j->n_hosts,
        .batch_size = j->batch_size, .canary = j->canary[0] ? j->canary : NULL, .params = j->params,
    };
    return playbook_run_create(txn, &j->by, &req, now_epoch(), &j->run_id, &j->error);
}

static void run_show_reply(struct api_call *call, int status, int64_t run_id)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *run = reader ? playbook_run_json(reader, run_id) : NULL;
    if (run)
        api_reply_json(call, status, run);
    else
        api_reply_errorf(call, 500, "internal", "cannot read playbook run %" PRId64, run_id);
}

static void run_create_finish(struct api_call *call, void *ctx, int result)
{
    struct run_job *j = ctx;
    if (result == 0)
        run_show_reply(call, 201, j->run_id);
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    run_job_free(j);
}

#define BAD(path, ...) do { \
        if (!e) e = yg_error_new(422, "invalid_request", "the playbook run request is not valid"); \
        yg_error_add_detail(e, 0, 0, path, __VA_ARGS__); } while (0)

void api_playbook_runs_create(struct api_call *call, const struct api_route_args *args)
{
    (void) args;
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    struct yg_error *e = NULL;
    struct run_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    static const char *const keys[] = { "playbook", "playbook_yaml", "segment", "mode", "hosts",
                                        "batch_size", "canary", "params", NULL };
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        bool known = false;
        for (size_t i = 0; keys[i] && !known; i++)
            known = streq(keys[i], key);
        if (!known)
            BAD(key, "unknown field; the fields are playbook, playbook_yaml, segment, mode, hosts, "
                     "batch_size, canary and params");
    }
    const char *name = json_string_value(json_object_get(body, "playbook"));
    json_t *yaml = json_object_get(body, "playbook_yaml");
    if ((name != NULL) == (yaml != NULL))
        BAD("playbook", "give either 'playbook' (an installed playbook's name) or 'playbook_yaml' "
                        "(a playbook's text)");
    else if (name && !is_slug(name))
        BAD("playbook", "'%s' is not a playbook name ([a-z0-9-], 1-63 characters)", name);
    else if (yaml && (!json_is_string(yaml) || json_string_length(yaml) > PLAYBOOK_MAX_BYTES))
        BAD("playbook_yaml", "must be a playbook's YAML text of at most %d bytes", PLAYBOOK_MAX_BYTES);
    const char *segment = json_string_value(json_object_get(body, "segment"));
    if (!segment || !is_slug(segment))
        BAD("segment", "needs a segment name");
    else
        snprintf(j->segment, sizeof j->segment, "%s", segment);
    int mode = playbook_mode_from_string(json_string_value(json_object_get(body, "mode")));
    if (mode < 0)
        BAD("mode", "must be \"check\" (report what would change) or \"apply\"");
    j->mode = mode < 0 ? PLAYBOOK_MODE_CHECK : (enum playbook_mode) mode;
    json_t *hosts = json_object_get(body, "hosts");
    if (hosts && (!json_is_array(hosts) || json_array_size(hosts) > PLAYBOOK_RUN_MAX_HOSTS))
        BAD("hosts", "must be an array of at most %d host names", PLAYBOOK_RUN_MAX_HOSTS);
    else if (hosts) {
        j->hosts = xcalloc(json_array_size(hosts) + 1, sizeof *j->hosts);
        size_t i;
        json_t *h;
        json_array_foreach(hosts, i, h) {
            const char *hn = json_string_value(h);
            if (!hn || !*hn || strlen(hn) > 127) {
                char path[32];
                snprintf(path, sizeof path, "hosts[%zu]", i);
                BAD(path, "must be a host name");
                continue;
            }
            j->hosts[j->n_hosts++] = xstrdup(hn);
        }
    }
    json_t *bs = json_object_get(body, "batch_size");
    if (bs && (!json_is_integer(bs) || json_integer_value(bs) < 1 ||
               json_integer_value(bs) > PLAYBOOK_BATCH_SIZE_MAX))
        BAD("batch_size", "must be a whole number from 1 to %d", PLAYBOOK_BATCH_SIZE_MAX);
    else if (bs)
        j->batch_size = (int) json_integer_value(bs);
    json_t *canary = json_object_get(body, "canary");
    if (canary && (!json_is_string(canary) || json_string_length(canary) == 0 ||
                   json_string_length(canary) > 127))
        BAD("canary", "must be a host name");
    else if (canary)
        snprintf(j->canary, sizeof j->canary, "%s", json_string_value(canary));
    json_t *params = json_object_get(body, "params");
    if (params && (!json_is_object(params) || json_object_size(params) > 64))
        BAD("params", "must be an object of at most 64 parameters");
    else if (params)
        j->params = json_incref(params);
    if (e) {
        json_decref(body);
        run_job_free(j);
        api_reply_error(call, e);
        return;
    }

    /* The playbook is parsed here, on the HTTP thread; the writer only
     * renders it for the hosts it reads. */
    int r;
    if (name) {
        r = load_installed(api_call_playbook_dir(call), name, &j->text, &j->text_len, &j->pb, &e);
        if (r == -ENOENT)
            e = yg_error_new(404, "not_found", "there is no installed playbook '%s' (in %s)", name,
                             api_call_playbook_dir(call));
    } else {
        j->text_len = json_string_length(yaml);
        j->text = xstrndup(json_string_value(yaml), j->text_len);
        r = playbook_parse(j->text, j->text_len, "playbook_yaml", &j->pb, &e);
    }
    json_decref(body);
    if (r < 0) {
        run_job_free(j);
        if (e)
            api_reply_error(call, e);
        else
            api_reply_errorf(call, 500, "internal", "cannot load the playbook: %s", strerror(-r));
        return;
    }
    api_defer(call, run_create_run, run_create_finish, j);
}

void api_playbook_runs_list(struct api_call *call, const struct api_route_args *args)
{
    (void) args;
    const char *segment = api_call_query(call, "segment");
    const char *state = api_call_query(call, "state");
    const char *limit_text = api_call_query(call, "limit");
    int64_t limit = RUNS_LISTED_DEFAULT;
    if (state && playbook_run_state_from_string(state) < 0) {
        api_reply_errorf(call, 400, "bad_request", "state '%s' is not one of running, succeeded, failed, cancelled",
                         state);
        return;
    }
    if (segment && !is_slug(segment)) {
        api_reply_errorf(call, 400, "bad_request", "'%s' is not a segment name", segment);
        return;
    }
    if (limit_text && !api_parse_int64(limit_text, 1, RUNS_LISTED_MAX, &limit)) {
        api_reply_errorf(call, 400, "bad_request", "limit must be from 1 to %d", RUNS_LISTED_MAX);
        return;
    }
    struct store_conn *reader = api_call_reader(call);
    json_t *list = reader ? playbook_runs_json(reader, segment, state, (int) limit) : NULL;
    if (!list)
        api_reply_errorf(call, 500, "internal", "cannot read the playbook runs");
    else
        api_reply_json(call, 200, list);
}

void api_playbook_runs_show(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *run = reader ? playbook_run_json(reader, args->id) : NULL;
    if (!run)
        api_reply_errorf(call, 404, "not_found", "there is no playbook run %" PRId64, args->id);
    else
        api_reply_json(call, 200, run);
}

struct cancel_job {
    struct principal by;
    int64_t run_id;
    struct yg_error *error;
};

static int cancel_run(struct store_txn *txn, void *ctx)
{
    struct cancel_job *j = ctx;
    return playbook_run_cancel(txn, &j->by, j->run_id, now_epoch(), &j->error);
}

static void cancel_finish(struct api_call *call, void *ctx, int result)
{
    struct cancel_job *j = ctx;
    if (result == 0)
        run_show_reply(call, 200, j->run_id);
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    yg_error_free(j->error);
    free(j);
}

void api_playbook_runs_cancel(struct api_call *call, const struct api_route_args *args)
{
    struct cancel_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    j->run_id = args->id;
    api_defer(call, cancel_run, cancel_finish, j);
}

/* ---- the task long-poll ---- */

/* Wakes are counted per host (hashed; a collision only costs a spurious
 * look): a poll that found nothing parks only if no wake for its host came
 * since it looked, so a task made between the look and the parking is not
 * missed. */
#define WAKE_SLOTS 1024

struct task_poll;

struct task_waiters {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t timer;
    bool timer_started, stopping;
    struct task_poll *parked;           /* doubly linked */
    atomic_uint wakes[WAKE_SLOTS];
};

struct task_poll {
    struct api_call *call;
    struct task_waiters *waiters;
    struct principal by;
    uint64_t deadline_usec;             /* monotonic */
    unsigned wakes_seen;
    json_t *tasks;
    struct task_poll *prev, *next;
};

enum { POLL_WOKEN = 1, POLL_TIMED_OUT = 2 };

static atomic_uint *wake_slot(struct task_waiters *w, int64_t host_id)
{
    return &w->wakes[(uint64_t) host_id % WAKE_SLOTS];
}

static void unpark_locked(struct task_waiters *w, struct task_poll *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        w->parked = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* playbook-run.c's hook, on the writer thread. */
static void on_task_released(int64_t host_id, void *data)
{
    struct task_waiters *w = data;
    pthread_mutex_lock(&w->lock);
    atomic_fetch_add(wake_slot(w, host_id), 1);
    struct task_poll *p = w->parked;
    while (p) {
        struct task_poll *next = p->next;
        if (p->by.host_id == host_id) {
            unpark_locked(w, p);
            api_resume(p->call, POLL_WOKEN);
        }
        p = next;
    }
    pthread_mutex_unlock(&w->lock);
}

static void *timer_main(void *arg)
{
    struct task_waiters *w = arg;
    thread_set_name("yg-task-timer");
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        uint64_t now = monotonic_usec(), next = 0;
        struct task_poll *p = w->parked;
        while (p) {
            struct task_poll *after = p->next;
            if (p->deadline_usec <= now) {
                unpark_locked(w, p);
                api_resume(p->call, POLL_TIMED_OUT);
            } else if (!next || p->deadline_usec < next) {
                next = p->deadline_usec;
            }
            p = after;
        }
        if (!next) {
            pthread_cond_wait(&w->changed, &w->lock);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t delta = next - now;
        until.tv_sec += (time_t) (delta / 1000000);
        until.tv_nsec += (long) (delta % 1000000) * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->changed, &w->lock, &until);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct task_waiters *task_waiters_new(void)
{
    struct task_waiters *w = xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->changed, &attr);
    pthread_condattr_destroy(&attr);
    w->timer_started = pthread_create(&w->timer, NULL, timer_main, w) == 0;
    playbook_run_set_wake(on_task_released, w);
    return w;
}

void task_waiters_stop(struct task_waiters *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    while (w->parked) {
        struct task_poll *p = w->parked;
        unpark_locked(w, p);
        api_resume(p->call, POLL_TIMED_OUT);
    }
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    if (w->timer_started) {
        pthread_join(w->timer, NULL);
        w->timer_started = false;
    }
}

void task_waiters_free(struct task_waiters *w)
{
    if (!w)
        return;
    task_waiters_stop(w);
    playbook_run_set_wake(NULL, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->changed);
    free(w);
}

void task_waiters_metrics(struct task_waiters *w, struct strbuf *out)
{
    unsigned n = 0;
    pthread_mutex_lock(&w->lock);
    for (struct task_poll *p = w->parked; p; p = p->next)
        n++;
    pthread_mutex_unlock(&w->lock);
    strbuf_printf(out, "# HELP yunguan_task_polls_waiting Agents' task long-polls waiting for a task.\n"
                       "# TYPE yunguan_task_polls_waiting gauge\n"
                       "yunguan_task_polls_waiting %u\n", n);
}

static void poll_look(struct api_call *call, struct task_poll *p);

static int poll_fetch_run(struct store_txn *txn, void *ctx)
{
    struct task_poll *p = ctx;
    /* Read on the writer, where every release is serialised with us. */
    p->wakes_seen = atomic_load(wake_slot(p->waiters, p->by.host_id));
    json_decref(p->tasks);
    p->tasks = NULL;
    return playbook_tasks_fetch(txn, &p->by, now_epoch(), TASKS_PER_FETCH, &p->tasks);
}

static void poll_reply(struct api_call *call, struct task_poll *p)
{
    api_reply_json(call, 200, json_pack("{s:o}", "tasks", p->tasks ? steal_pointer(&p->tasks) : json_array()));
    free(p);
}

static void poll_woken(struct api_call *call, void *ctx, int result)
{
    struct task_poll *p = ctx;
    if (result == POLL_WOKEN)
        poll_look(call, p);
    else
        poll_reply(call, p);
}

static void poll_fetch_finish(struct api_call *call, void *ctx, int result)
{
    struct task_poll *p = ctx;
    if (result < 0) {
        json_decref(p->tasks);
        free(p);
        if (result == -ESHUTDOWN)
            api_reply_errorf(call, 503, "unavailable", "the controller is stopping; ask again");
        else
            api_reply_errorf(call, 500, "internal", "cannot fetch this host's tasks (error %d)", result);
        return;
    }
    if (json_array_size(p->tasks) > 0 || monotonic_usec() >= p->deadline_usec) {
        poll_reply(call, p);
        return;
    }
    struct task_waiters *w = p->waiters;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        poll_reply(call, p);
        return;
    }
    if (atomic_load(wake_slot(w, p->by.host_id)) != p->wakes_seen) {
        /* Something was released for this host since we looked. */
        pthread_mutex_unlock(&w->lock);
        poll_look(call, p);
        return;
    }
    api_suspend(call, poll_woken, p);
    p->next = w->parked;
    if (w->parked)
        w->parked->prev = p;
    w->parked = p;
    pthread_cond_signal(&w->changed);
    pthread_mutex_unlock(&w->lock);
}

static void poll_look(struct api_call *call, struct task_poll *p)
{
    api_defer(call, poll_fetch_run, poll_fetch_finish, p);
}

void api_agents_tasks(struct api_call *call, const struct api_route_args *args)
{
    (void) args;
    const struct principal *by = api_call_principal(call);
    if (!by->host_id) {
        api_reply_errorf(call, 403, "forbidden", "this agent token is not bound to a host");
        return;
    }
    int64_t wait = 0;
    const char *wait_text = api_call_query(call, "wait");
    if (wait_text && !api_parse_int64(wait_text, 0, TASK_WAIT_MAX, &wait)) {
        api_reply_errorf(call, 400, "bad_request", "wait must be a number of seconds from 0 to %d",
                         TASK_WAIT_MAX);
        return;
    }
    struct task_waiters *w = api_call_task_waiters(call);
    /* Nothing to fetch and nothing to wait for: answer from the reader,
     * without a write. */
    struct store_conn *reader = api_call_reader(call);
    if (wait == 0 && reader && !playbook_tasks_pending(reader, by->host_id)) {
        api_reply_json(call, 200, json_pack("{s:[]}", "tasks"));
        return;
    }
    struct task_poll *p = xcalloc(1, sizeof *p);
    p->call = call;
    p->waiters = w;
    p->by = *by;
    p->deadline_usec = monotonic_usec() + (uint64_t) wait * 1000000;
    poll_look(call, p);
}

/* ---- progress and results ---- */

struct report_job {
    struct principal by;
    int64_t task_id;
    json_t *body;
    bool final, accepted;
    struct yg_error *error;
};

static int task_report_run(struct store_txn *txn, void *ctx)
{
    struct report_job *j = ctx;
    return playbook_task_report(txn, &j->by, j->task_id, j->body, j->final, now_epoch(), &j->accepted,
                                &j->error);
}

static void task_report_finish(struct api_call *call, void *ctx, int result)
{
    struct report_job *j = ctx;
    if (result == 0)
        api_reply_json(call, 200, json_pack("{s:b}", "accepted", j->accepted));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    json_decref(j->body);
    yg_error_free(j->error);
    free(j);
}

void api_agents_task_report(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    if (!by->host_id) {
        api_reply_errorf(call, 403, "forbidden", "this agent token is not bound to a host");
        return;
    }
    bool final = streq(args->verb, "result");
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    struct yg_error *e = playbook_task_report_check(body, final);
    if (e) {
        json_decref(body);
        api_reply_error(call, e);
        return;
    }
    struct report_job *j = xcalloc(1, sizeof *j);
    j->by = *by;
    j->task_id = args->id;
    j->body = body;
    j->final = final;
    api_defer(call, task_report_run, task_report_finish, j);
}

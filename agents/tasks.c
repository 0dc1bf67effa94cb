/* Playbook tasks: the document, the run with rollback, the journal, the
 * result files and the task loop.
 *
 * Why a thread for the loop: a task may wait for minutes (check.run,
 * wait.for, verify: up to 120 s each) and the long-poll holds an HTTP
 * request for 25 s; the event loop of yunguan-agent.c makes blocking
 * controller calls, so either would stall readiness reports.  The thread
 * has its own libcurl handle, its own netlink socket, and reads kernel
 * state with fresh dumps (netstate_snapshot_fresh), never the event loop's
 * libnl caches.  The two meet in the state directory (the token file,
 * which the event loop writes atomically on enrollment and the thread
 * re-reads after a 401), in one atomic stop flag, and in the event loop's
 * memory of neighbours the kernel dropped unanswered (netstate.c,
 * "unanswered": the event loop writes it, the thread copies it under its
 * mutex into each evaluation, so that a playbook's check.run, when and
 * verify fail a dead gateway as the readiness reports do).  The event
 * loop's netstate outlives the thread: agent_clear stops and joins the
 * thread before netstate_free. */
#include <config.h>
#include "tasks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http-client.h"
#include "log.h"
#include "report.h"
#include "spool.h"
#include "util.h"

#define LOG_DOMAIN "tasks"

#define TASKS_BACKOFF_BASE_MS 500
#define TASKS_BACKOFF_MAX_MS 60000
#define TASKS_CONNECT_MS 3000
#define TASKS_POST_MS 10000
/* The long-poll holds the request up to the wait; the answer may take a
 * little longer to come. */
#define TASKS_POLL_SLACK_MS 15000
/* An empty answer that came back sooner than this (a controller that does
 * not hold the request) is not asked again before it. */
#define TASKS_MIN_POLL_INTERVAL_MS 1000
#define TASKS_JOURNAL_MAX_BYTES (16u * 1024 * 1024)

static int fail(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **ret_error, const char *fmt, ...)
{
    if (ret_error) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
            abort();
        va_end(ap);
    }
    return -EINVAL;
}

/* ---- the task document ---- */

void task_free(struct task *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_steps; i++)
        step_clear(&t->steps[i]);
    free(t->steps);
    desired_segment_clear(&t->segment);
    free(t->playbook);
    free(t);
}

int task_from_json(json_t *js, int mode, struct task **ret, int64_t *ret_id, char **ret_error)
{
    static const char *const keys[] = { "id", "run", "mode", "playbook", "segment", "timeout_ms",
                                        "steps", NULL };
    if (!json_is_object(js))
        return fail(ret_error, "task: must be an object {\"id\", \"mode\", \"segment\", \"steps\", ...}");
    json_t *id = json_object_get(js, "id");
    if (!json_is_integer(id) || json_integer_value(id) < 1)
        return fail(ret_error, "task.id: must be an integer of 1 or more");
    if (ret_id)
        *ret_id = json_integer_value(id);
    const char *k;
    json_t *v;
    json_object_foreach(js, k, v) {
        bool known = false;
        for (const char *const *a = keys; *a && !known; a++)
            known = streq(*a, k);
        if (!known)
            return fail(ret_error, "task.%.64s: unknown member (known: id, run, mode, playbook, "
                        "segment, timeout_ms, steps)", k);
    }
    _cleanup_(task_freep) struct task *t = xcalloc(1, sizeof *t);
    t->id = json_integer_value(id);
    json_t *run = json_object_get(js, "run");
    if (run && (!json_is_integer(run) || json_integer_value(run) < 0))
        return fail(ret_error, "task.run: must be an integer of 0 or more");
    t->run = run ? json_integer_value(run) : 0;
    if (mode >= 0)
        t->mode = (enum step_mode) mode;
    else {
        json_t *m = json_object_get(js, "mode");
        int parsed = json_is_string(m) ? step_mode_from_string(json_string_value(m)) : -1;
        if (parsed < 0)
            return fail(ret_error, "task.mode: must be \"check\" or \"apply\"");
        t->mode = (enum step_mode) parsed;
    }
    json_t *pb = json_object_get(js, "playbook");
    if (pb && !json_is_null(pb)) {
        if (!json_is_string(pb) || json_string_length(pb) == 0 || json_string_length(pb) > 128)
            return fail(ret_error, "task.playbook: must be a string of 1 to 128 characters");
        t->playbook = xstrdup(json_string_value(pb));
    }
    json_t *seg = json_object_get(js, "segment");
    if (!seg)
        return fail(ret_error, "task.segment: missing (the segment the steps are for)");
    int r = desired_segment_from_json(seg, "task.segment", &t->segment, ret_error);
    if (r < 0)
        return r;
    json_t *to = json_object_get(js, "timeout_ms");
    if (to && (!json_is_integer(to) || json_integer_value(to) < 1 ||
               json_integer_value(to) > TASKS_MAX_TIMEOUT_MS))
        return fail(ret_error, "task.timeout_ms: must be an integer from 1 to %d", TASKS_MAX_TIMEOUT_MS);
    t->timeout_ms = to ? (unsigned) json_integer_value(to) : TASKS_DEFAULT_TIMEOUT_MS;

    json_t *steps = json_object_get(js, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return fail(ret_error, "task.steps: missing or empty (an array of 1 to %d steps)", PLAYBOOK_MAX_STEPS);
    if (json_array_size(steps) > PLAYBOOK_MAX_STEPS)
        return fail(ret_error, "task.steps: %zu steps is more than the limit of %d",
                    json_array_size(steps), PLAYBOOK_MAX_STEPS);
    t->steps = xcalloc(json_array_size(steps), sizeof *t->steps);
    size_t i;
    json_t *sj;
    json_array_foreach(steps, i, sj) {
        char path[48];
        snprintf(path, sizeof path, "task.steps[%zu]", i);
        if ((r = step_from_json(sj, path, &t->steps[i], ret_error)) < 0)
            return r;
        t->n_steps++;
        /* The playbook's own numbering: steps a parameter left out leave
         * gaps, but the order holds. */
        if (i > 0 && t->steps[i].index <= t->steps[i - 1].index)
            return fail(ret_error, "%s.index: %u does not follow %u (indexes must increase along "
                        "the list)", path, t->steps[i].index, t->steps[i - 1].index);
    }
    *ret = steal_pointer(&t);
    return 0;
}

/* ---- files in the state dir ---- */

int tasks_state_dir_make(const char *state_dir)
{
    _cleanup_free_ char *copy = xstrdup(state_dir);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(copy, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static char *journal_path(const char *state_dir, int64_t id, bool local)
{
    return xasprintf("%s/%stask-%" PRId64 ".journal", state_dir, local ? "local-" : "", id);
}

static char *result_name(int64_t id)
{
    return xasprintf("task-%" PRId64 ".result", id);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int tasks_result_store(const char *state_dir, int64_t id, json_t *result)
{
    json_t *doc = json_pack("{s:I, s:O}", "task", (json_int_t) id, "result", result);
    _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    _cleanup_free_ char *name = result_name(id);
    return report_write_state_file(state_dir, name, text, strlen(text));
}

int tasks_result_load(const char *state_dir, int64_t id, json_t **ret_result)
{
    _cleanup_free_ char *name = result_name(id);
    _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, name);
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(path, TASKS_JOURNAL_MAX_BYTES, &data, &len);
    if (r < 0)
        return r;
    json_t *doc = json_loadb(data, len, 0, NULL);
    json_t *result = json_object_get(doc, "result");
    if (!json_is_object(result)) {
        json_decref(doc);
        return -EBADMSG;
    }
    *ret_result = json_incref(result);
    json_decref(doc);
    return 0;
}

int tasks_result_remove(const char *state_dir, int64_t id)
{
    _cleanup_free_ char *name = result_name(id);
    _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, name);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return fsync_dir(state_dir);
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

/* "task-17.result" → 17 (prefix and suffix given). */
static bool parse_name(const char *name, const char *prefix, const char *suffix, int64_t *ret)
{
    size_t np = strlen(prefix), ns = strlen(suffix), n = strlen(name);
    if (n <= np + ns || strncmp(name, prefix, np) != 0 || !streq(name + n - ns, suffix))
        return false;
    int64_t v = 0;
    for (size_t i = np; i < n - ns; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *ret = v;
    return v > 0;
}

int tasks_results_pending(const char *state_dir, int64_t **ret_ids, size_t *ret_n)
{
    DIR *d = opendir(state_dir);
    if (!d)
        return errno == ENOENT ? (*ret_ids = NULL, *ret_n = 0, 0) : -errno;
    int64_t *ids = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t id;
        if (!parse_name(de->d_name, "task-", ".result", &id))
            continue;
        ids = xrealloc(ids, (n + 1) * sizeof *ids);
        ids[n++] = id;
    }
    closedir(d);
    if (n > 1)                  /* qsort(NULL, 0, …) is undefined behaviour */
        qsort(ids, n, sizeof *ids, cmp_id);
    *ret_ids = ids;
    *ret_n = n;
    return 0;
}

/* ---- the journal ---- */

struct journal {
    int fd;
    char *path;
};

/* One JSON line, then fdatasync: on disk before the change it describes. */
static int journal_append(struct journal *j, json_t *line)
{
    _cleanup_free_ char *text = json_dumps(line, JSON_COMPACT);
    size_t len = strlen(text);
    text = xrealloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    for (size_t off = 0; off < len;) {
        ssize_t n = write(j->fd, text + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        off += (size_t) n;
    }
    return fdatasync(j->fd) < 0 ? -errno : 0;
}

static int journal_open(const char *state_dir, const struct task *t, bool local, const char *started_at,
                        struct journal *ret)
{
    _cleanup_free_ char *path = journal_path(state_dir, t->id, local);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct journal j = { .fd = fd, .path = steal_pointer(&path) };
    json_t *steps = json_array();
    for (size_t i = 0; i < t->n_steps; i++)
        json_array_append_new(steps, json_pack("{s:I, s:s, s:s}", "index", (json_int_t) t->steps[i].index,
                                               "name", t->steps[i].name, "action",
                                               playbook_action_to_string(t->steps[i].action)));
    json_t *header = json_pack("{s:I, s:I, s:s, s:b, s:s, s:o}", "task", (json_int_t) t->id,
                               "run", (json_int_t) t->run, "mode", step_mode_to_string(t->mode),
                               "local", local, "started_at", started_at, "steps", steps);
    int r = journal_append(&j, header);
    json_decref(header);
    if (r == 0)
        r = fsync_dir(state_dir);       /* the new name too */
    if (r < 0) {
        close(j.fd);
        unlink(j.path);
        free(j.path);
        return r;
    }
    *ret = j;
    return 0;
}

static void journal_close(struct journal *j, bool remove, const char *state_dir)
{
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    if (remove && j->path) {
        if (unlink(j->path) < 0)
            log_warn(LOG_DOMAIN, "cannot remove the journal '%s': %s", j->path, strerror(errno));
        fsync_dir(state_dir);
    }
    free(j->path);
    j->path = NULL;
}

struct journal_ctx {
    struct journal *journal;
};

static int journal_before_change(const struct step *s, json_t *undo, void *userdata)
{
    struct journal_ctx *ctx = userdata;
    if (!ctx->journal)
        return 0;
    json_t *line = json_pack("{s:I, s:s, s:s, s:O}", "index", (json_int_t) s->index, "name", s->name,
                             "action", playbook_action_to_string(s->action), "undo", undo);
    int r = journal_append(ctx->journal, line);
    json_decref(line);
    return r;
}

/* ---- running a task ---- */

static json_t *result_new(const char *started_at)
{
    return json_pack("{s:s, s:b, s:b, s:s, s:s, s:n, s:[]}", "status", "running", "rolled_back", 0,
                     "rollback_ok", 1, "message", "", "started_at", started_at, "finished_at", "steps");
}

static void result_set_step(json_t *result, size_t i, const struct step *s, const struct step_result *r)
{
    json_array_set_new(json_object_get(result, "steps"), i, step_result_to_json(s, r));
}

static void result_finish(json_t *result, bool ok, const char *message)
{
    char ts[32];
    format_utc_now(ts);
    json_object_set_new(result, "status", json_string(ok ? "succeeded" : "failed"));
    json_object_set_new(result, "message", steps_json_text(message));
    json_object_set_new(result, "finished_at", json_string(ts));
}

json_t *task_result_refused(const char *message)
{
    char ts[32];
    format_utc_now(ts);
    json_t *r = result_new(ts);
    _cleanup_free_ char *m = xasprintf("the agent refused the task: %s", message);
    result_finish(r, false, m);
    return r;
}

json_t *task_run(struct nl_sock *sock, const struct task *t, const struct task_run_options *o)
{
    char started[32];
    format_utc_now(started);
    json_t *result = result_new(started);
    struct step_result *res = xcalloc(t->n_steps, sizeof *res);
    for (size_t i = 0; i < t->n_steps; i++) {
        res[i].status = STEP_NOT_RUN;
        json_array_append_new(json_object_get(result, "steps"), step_result_to_json(&t->steps[i], &res[i]));
    }
    struct journal journal = { .fd = -1 };
    struct journal_ctx jctx = { 0 };
    bool apply = t->mode == STEP_MODE_APPLY;
    _cleanup_free_ char *message = NULL, *errors = NULL;

    if (apply && o->state_dir) {
        int r = journal_open(o->state_dir, t, o->local, started, &journal);
        if (r < 0) {
            message = xasprintf("cannot write the journal in '%s': %s; nothing was changed",
                                o->state_dir, strerror(-r));
            result_finish(result, false, message);
            goto out;
        }
        jctx.journal = &journal;
    }

    struct steps_env env = {
        .sock = sock, .segment = &t->segment, .unanswered = o->unanswered,
        .before_change = journal_before_change, .userdata = &jctx,
        .should_stop = o->should_stop, .stop_userdata = o->userdata,
        /* No deadline for the whole task: every wait has its own bound,
         * and timeout_ms is the controller's patience between signs of
         * life (a progress post after each step), see doc/AGENT.md. */
    };
    ssize_t failed = -1;        /* the step that failed an apply */
    ssize_t impossible = -1;    /* the first step a check found impossible */
    size_t counts[STEP_STATUS_MAX] = { 0 };
    for (size_t i = 0; i < t->n_steps; i++) {
        const struct step *s = &t->steps[i];
        if (o->should_stop && o->should_stop(o->userdata)) {
            res[i].status = STEP_FAILED;
            res[i].message = xstrdup("the agent is stopping; the task ends here");
        } else
            steps_run(&env, s, t->mode, &res[i]);
        result_set_step(result, i, s, &res[i]);
        counts[res[i].status]++;
        if (o->progress)
            o->progress(t, result, o->userdata);
        if (res[i].status == STEP_FAILED) {
            if (apply) {
                failed = (ssize_t) i;
                break;
            }
            if (impossible < 0)
                impossible = (ssize_t) i;
        }
    }

    if (failed < 0) {
        if (impossible >= 0)
            message = xasprintf("step %u '%s' cannot run: %s", t->steps[impossible].index, t->steps[impossible].name,
                                res[impossible].message);
        else if (apply)
            message = xasprintf("%zu changed, %zu unchanged, %zu skipped", counts[STEP_CHANGED],
                                counts[STEP_UNCHANGED], counts[STEP_SKIPPED]);
        else
            message = xasprintf("%zu would change, %zu unchanged, %zu skipped", counts[STEP_WOULD_CHANGE],
                                counts[STEP_UNCHANGED], counts[STEP_SKIPPED]);
        result_finish(result, impossible < 0, message);
        goto out;
    }

    /* Roll back, newest change first: the failed step's own change (its
     * verify failed) and every step before it that changed something. */
    bool rollback_ok = true;
    size_t undone = 0;
    struct strbuf undo_errors;
    strbuf_init(&undo_errors);
    for (ssize_t j = failed; j >= 0; j--) {
        if (!res[j].undo)
            continue;
        _cleanup_free_ char *err = NULL;
        int r = steps_undo(sock, res[j].undo, &err);
        _cleanup_free_ char *was = steal_pointer(&res[j].message);
        if (r < 0) {
            rollback_ok = false;
            strbuf_printf(&undo_errors, "%sstep %u '%s': %s", undo_errors.len ? "; " : "",
                          t->steps[j].index, t->steps[j].name, err);
            res[j].message = xasprintf("%s; UNDO FAILED: %s", was ? was : "", err);
            if (j != failed)
                res[j].status = STEP_UNDO_FAILED;
        } else {
            res[j].message = xasprintf("%s; undone", was ? was : "");
            if (j != failed)
                res[j].status = STEP_UNDONE;
            undone++;
        }
        result_set_step(result, (size_t) j, &t->steps[j], &res[j]);
    }
    errors = strbuf_steal(&undo_errors);
    if (rollback_ok)
        message = xasprintf("step %u '%s' failed: %s; %s", t->steps[failed].index, t->steps[failed].name,
                            res[failed].message,
                            undone ? "the changes made were rolled back" : "nothing had been changed");
    else
        message = xasprintf("step %u '%s' failed: %s; ROLLBACK FAILED (%s): the host needs a person",
                            t->steps[failed].index, t->steps[failed].name, res[failed].message, errors);
    json_object_set_new(result, "rolled_back", json_true());
    json_object_set_new(result, "rollback_ok", json_boolean(rollback_ok));
    result_finish(result, false, message);

out:
    if (o->state_dir && !o->local) {
        int r = tasks_result_store(o->state_dir, t->id, result);
        if (r < 0)
            log_err(LOG_DOMAIN, "cannot store the result of task %" PRId64 " in '%s': %s; it is sent "
                    "from memory only", t->id, o->state_dir, strerror(-r));
    }
    /* Removed only once the result is on disk (or when nothing changed). */
    journal_close(&journal, true, o->state_dir);
    for (size_t i = 0; i < t->n_steps; i++)
        step_result_clear(&res[i]);
    free(res);
    return result;
}

/* ---- recovery ---- */

static int recover_one(struct nl_sock *sock, const char *state_dir, const char *name, bool local, int64_t id)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, name);
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(path, TASKS_JOURNAL_MAX_BYTES, &data, &len);
    if (r < 0) {
        log_err(LOG_DOMAIN, "cannot read the journal '%s': %s", path, strerror(-r));
        return r;
    }
    if (!local) {
        _cleanup_free_ char *rname = result_name(id);
        _cleanup_free_ char *rpath = xasprintf("%s/%s", state_dir, rname);
        if (access(rpath, F_OK) == 0) {
            /* Finished: the result was stored, only the removal was cut short. */
            unlink(path);
            return fsync_dir(state_dir);
        }
    }
    /* Lines: the header, then one per changed step.  A torn last line is
     * a change never made (the line is synced before the change). */
    json_t *header = NULL, *records = json_array();
    for (char *line = data, *end; line && *line; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        if (!end)
            break;          /* no newline: torn */
        *end = '\0';
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            break;
        if (!header)
            header = j;
        else
            json_array_append_new(records, j);
    }
    if (!json_is_object(header) || !json_is_array(json_object_get(header, "steps"))) {
        _cleanup_free_ char *bad = xasprintf("%s.unreadable", path);
        log_err(LOG_DOMAIN, "the journal '%s' has no readable header; renamed to '%s' for a person "
                "to look at (its changes, if any, were NOT rolled back)", path, bad);
        if (rename(path, bad) < 0)
            log_err(LOG_DOMAIN, "cannot rename '%s': %s", path, strerror(errno));
        json_decref(header);
        json_decref(records);
        return -EBADMSG;
    }

    json_t *result = result_new(json_string_value(json_object_get(header, "started_at"))
                                    ? json_string_value(json_object_get(header, "started_at")) : "");
    json_t *rsteps = json_object_get(result, "steps");
    size_t i;
    json_t *hs;
    json_array_foreach(json_object_get(header, "steps"), i, hs) {
        json_t *o = json_pack("{s:O, s:O, s:O, s:s, s:n, s:n, s:s, s:i}", "index", json_object_get(hs, "index"),
                              "name", json_object_get(hs, "name"), "action", json_object_get(hs, "action"),
                              "status", "not-run", "before", "after", "message", "", "duration_us", 0);
        json_array_append_new(rsteps, o);
    }
    bool ok = true;
    struct strbuf errors;
    strbuf_init(&errors);
    for (size_t k = json_array_size(records); k-- > 0;) {
        json_t *rec = json_array_get(records, k);
        json_int_t index = json_integer_value(json_object_get(rec, "index"));
        _cleanup_free_ char *err = NULL;
        r = steps_undo(sock, json_object_get(rec, "undo"), &err);
        json_t *o = NULL, *cand;
        size_t c;
        json_array_foreach(rsteps, c, cand)
            if (json_integer_value(json_object_get(cand, "index")) == index)
                o = cand;
        if (r < 0) {
            ok = false;
            strbuf_printf(&errors, "%sstep %lld '%s': %s", errors.len ? "; " : "", (long long) index,
                          json_string_value(json_object_get(rec, "name")), err);
        }
        if (o) {
            json_object_set_new(o, "status", json_string(r < 0 ? "undo-failed" : "undone"));
            json_object_set_new(o, "message", json_string(r < 0 ? err : "undone after the restart"));
        }
    }
    _cleanup_free_ char *errs = strbuf_steal(&errors);
    _cleanup_free_ char *message = ok ? xstrdup("agent restarted during the task; rolled back")
        : xasprintf("agent restarted during the task; ROLLBACK FAILED (%s): the host needs a person", errs);
    json_object_set_new(result, "rolled_back", json_true());
    json_object_set_new(result, "rollback_ok", json_boolean(ok));
    result_finish(result, false, message);
    size_t n_undone = json_array_size(records);
    json_decref(header);
    json_decref(records);

    if (local) {
        if (ok)
            log_warn(LOG_DOMAIN, "a local task (--run-task) %" PRId64 " was cut short: %s (%zu step(s))",
                     id, message, n_undone);
        else
            log_err(LOG_DOMAIN, "a local task (--run-task) %" PRId64 " was cut short: %s (%zu step(s))",
                    id, message, n_undone);
    } else {
        log_warn(LOG_DOMAIN, "task %" PRId64 " was cut short by a restart: %s (%zu step(s)); the "
                 "controller gets the result", id, message, n_undone);
        r = tasks_result_store(state_dir, id, result);
        if (r < 0) {
            log_err(LOG_DOMAIN, "cannot store the result of task %" PRId64 ": %s; the journal stays",
                    id, strerror(-r));
            json_decref(result);
            return r;
        }
    }
    json_decref(result);
    if (unlink(path) < 0)
        return -errno;
    return fsync_dir(state_dir);
}

int tasks_recover(struct nl_sock *sock, const char *state_dir, size_t *ret_n)
{
    DIR *d = opendir(state_dir);
    if (!d) {
        if (ret_n)
            *ret_n = 0;
        return errno == ENOENT ? 0 : -errno;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t id;
        if (parse_name(de->d_name, "task-", ".journal", &id) ||
            parse_name(de->d_name, "local-task-", ".journal", &id)) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = xstrdup(de->d_name);
        }
    }
    closedir(d);
    int first_error = 0;
    size_t done = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t id;
        bool local = parse_name(names[i], "local-task-", ".journal", &id);
        if (!local)
            parse_name(names[i], "task-", ".journal", &id);
        int r = recover_one(sock, state_dir, names[i], local, id);
        if (r < 0 && !first_error)
            first_error = r;
        else if (r == 0)
            done++;
        free(names[i]);
    }
    free(names);
    if (ret_n)
        *ret_n = done;
    return first_error;
}

/* ---- the task loop ---- */

struct tasks_runner {
    pthread_t thread;
    atomic_bool stop;
    int wake_fd;                        /* eventfd: stop wakes the thread's waits */
    char *state_dir;
    struct http_client *http;
    struct nl_sock *sock;
    struct netstate_unanswered *unanswered;     /* the event loop's; may be NULL */
    bool have_token;
    unsigned attempt;
    bool failing;
    int64_t current_task;
};

static int runner_cancel(void *userdata)
{
    struct tasks_runner *r = userdata;
    return atomic_load(&r->stop);
}

static bool runner_should_stop(void *userdata)
{
    struct tasks_runner *r = userdata;
    return atomic_load(&r->stop);
}

/* Wait MS milliseconds or until stopped. */
static void runner_wait(struct tasks_runner *r, uint64_t ms)
{
    struct pollfd p = { .fd = r->wake_fd, .events = POLLIN };
    if (!atomic_load(&r->stop))
        poll(&p, 1, ms > INT32_MAX ? INT32_MAX : (int) ms);
}

static void runner_backoff(struct tasks_runner *r, const char *what, const struct yg_error *e)
{
    unsigned jitter = 0;
    random_bytes(&jitter, sizeof jitter);
    uint64_t now = monotonic_usec() / 1000;
    uint64_t at = spool_backoff_deadline(now, r->attempt, TASKS_BACKOFF_BASE_MS, TASKS_BACKOFF_MAX_MS,
                                         jitter % 1001);
    r->attempt++;
    if (!r->failing)
        log_warn(LOG_DOMAIN, "%s failed: %s; retrying with backoff", what, e ? e->message : "unknown error");
    else
        log_debug(LOG_DOMAIN, "%s failed again (attempt %u): %s", what, r->attempt,
                  e ? e->message : "unknown error");
    r->failing = true;
    runner_wait(r, at - now);
}

static void runner_ok(struct tasks_runner *r)
{
    if (r->failing)
        log_info(LOG_DOMAIN, "the controller answers the task loop again");
    r->failing = false;
    r->attempt = 0;
}

static enum report_outcome runner_post(struct tasks_runner *r, int64_t id, const char *what, json_t *body,
                                       json_t **ret_answer, struct yg_error **ret_error)
{
    _cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
    _cleanup_free_ char *path = xasprintf("/api/v1/agents/self/tasks/%" PRId64 "/%s", id, what);
    struct http_request req = {
        .method = "POST", .path = path, .content_type = "application/json",
        .body = text, .body_len = strlen(text),
    };
    http_client_set_timeouts(r->http, TASKS_CONNECT_MS, TASKS_POST_MS);
    json_t *answer = NULL;
    if (http_client_send_json(r->http, &req, &answer, NULL, ret_error) < 0)
        return report_classify(*ret_error);
    if (ret_answer)
        *ret_answer = answer;
    else
        json_decref(answer);
    return REPORT_OK;
}

static void runner_progress(const struct task *t, json_t *result, void *userdata)
{
    struct tasks_runner *r = userdata;
    struct yg_error *e = NULL;
    enum report_outcome o = runner_post(r, t->id, "progress", result, NULL, &e);
    if (o != REPORT_OK)
        log_debug(LOG_DOMAIN, "progress of task %" PRId64 " not sent (%s): %s", t->id,
                  report_outcome_to_string(o), e ? e->message : "");
    yg_error_free(e);
}

/* Send every stored result, oldest first.  false: stop trying for now
 * (backoff was waited, or the token is refused). */
static bool runner_send_results(struct tasks_runner *r)
{
    _cleanup_free_ int64_t *ids = NULL;
    size_t n = 0;
    int q = tasks_results_pending(r->state_dir, &ids, &n);
    if (q < 0) {
        log_err(LOG_DOMAIN, "cannot list the task results in '%s': %s", r->state_dir, strerror(-q));
        runner_wait(r, TASKS_BACKOFF_MAX_MS);
        return false;
    }
    for (size_t i = 0; i < n && !atomic_load(&r->stop); i++) {
        json_t *result = NULL;
        q = tasks_result_load(r->state_dir, ids[i], &result);
        if (q < 0) {
            log_err(LOG_DOMAIN, "cannot read the stored result of task %" PRId64 ": %s; dropping it",
                    ids[i], strerror(-q));
            tasks_result_remove(r->state_dir, ids[i]);
            continue;
        }
        json_t *answer = NULL;
        struct yg_error *e = NULL;
        enum report_outcome o = runner_post(r, ids[i], "result", result, &answer, &e);
        json_decref(result);
        switch (o) {
        case REPORT_OK:
            runner_ok(r);
            log_info(LOG_DOMAIN, "result of task %" PRId64 " sent (accepted: %s)", ids[i],
                     json_is_true(json_object_get(answer, "accepted")) ? "yes" : "no, it had one already");
            json_decref(answer);
            tasks_result_remove(r->state_dir, ids[i]);
            break;
        case REPORT_REJECTED:
        case REPORT_OUTCOME_MAX:
            log_err(LOG_DOMAIN, "the controller refused the result of task %" PRId64 " (%s); dropping it",
                    ids[i], e ? e->message : "");
            tasks_result_remove(r->state_dir, ids[i]);
            break;
        case REPORT_AUTH:
            r->have_token = false;
            /* fall through */
        case REPORT_RETRY:
            runner_backoff(r, "sending a task result", e);
            yg_error_free(e);
            return false;
        }
        yg_error_free(e);
    }
    return true;
}

static void runner_run_tasks(struct tasks_runner *r, json_t *tasks)
{
    size_t i;
    json_t *tj;
    json_array_foreach(tasks, i, tj) {
        struct task *t = NULL;
        int64_t id = 0;
        _cleanup_free_ char *err = NULL;
        if (task_from_json(tj, -1, &t, &id, &err) < 0) {
            log_err(LOG_DOMAIN, "refusing task %" PRId64 ": %s", id, err);
            if (id > 0) {
                json_t *res = task_result_refused(err);
                if (tasks_result_store(r->state_dir, id, res) < 0)
                    log_err(LOG_DOMAIN, "cannot store the result of task %" PRId64, id);
                json_decref(res);
            }
            continue;
        }
        log_info(LOG_DOMAIN, "task %" PRId64 " (run %" PRId64 ", playbook '%s', %s, segment '%s'): "
                 "%zu step(s)", t->id, t->run, t->playbook ? t->playbook : "", step_mode_to_string(t->mode),
                 t->segment.name, t->n_steps);
        struct task_run_options o = {
            .state_dir = r->state_dir, .progress = runner_progress, .userdata = r,
            .should_stop = runner_should_stop, .unanswered = r->unanswered,
        };
        json_t *result = task_run(r->sock, t, &o);
        log_info(LOG_DOMAIN, "task %" PRId64 " %s: %s", t->id,
                 json_string_value(json_object_get(result, "status")),
                 json_string_value(json_object_get(result, "message")));
        json_decref(result);
        task_free(t);
        /* Its result goes out before the next task runs. */
        runner_send_results(r);
    }
}

static void *runner_main(void *userdata)
{
    struct tasks_runner *r = userdata;
    thread_set_name("yga-tasks");
    while (!atomic_load(&r->stop)) {
        if (!r->have_token) {
            _cleanup_free_ char *token = NULL;
            if (report_token_load(r->state_dir, &token) < 0) {
                /* The event loop has not enrolled yet. */
                runner_wait(r, TASKS_BACKOFF_BASE_MS * 4);
                continue;
            }
            http_client_set_token(r->http, token);
            explicit_bzero(token, strlen(token));
            r->have_token = true;
        }
        if (!runner_send_results(r))
            continue;
        if (atomic_load(&r->stop))
            break;

        _cleanup_free_ char *path = xasprintf("/api/v1/agents/self/tasks?wait=%d", TASKS_POLL_WAIT_S);
        struct http_request req = { .method = "GET", .path = path };
        http_client_set_timeouts(r->http, TASKS_CONNECT_MS, TASKS_POLL_WAIT_S * 1000 + TASKS_POLL_SLACK_MS);
        json_t *answer = NULL;
        struct yg_error *e = NULL;
        uint64_t t0 = monotonic_usec();
        if (http_client_send_json(r->http, &req, &answer, NULL, &e) < 0) {
            if (atomic_load(&r->stop)) {
                yg_error_free(e);
                break;
            }
            enum report_outcome o = report_classify(e);
            if (o == REPORT_AUTH)
                r->have_token = false;
            runner_backoff(r, "asking the controller for tasks", e);
            yg_error_free(e);
            continue;
        }
        runner_ok(r);
        json_t *tasks = json_object_get(answer, "tasks");
        if (!json_is_array(tasks)) {
            struct yg_error *bad = yg_error_new(0, HTTP_CLIENT_E_BAD_RESPONSE,
                                                "the controller's tasks answer has no \"tasks\" array");
            json_decref(answer);
            runner_backoff(r, "asking the controller for tasks", bad);
            yg_error_free(bad);
            continue;
        }
        if (json_array_size(tasks) == 0) {
            uint64_t took_ms = (monotonic_usec() - t0) / 1000;
            if (took_ms < TASKS_MIN_POLL_INTERVAL_MS)
                runner_wait(r, TASKS_MIN_POLL_INTERVAL_MS - took_ms);
        } else
            runner_run_tasks(r, tasks);
        json_decref(answer);
    }
    return NULL;
}

static void runner_free(struct tasks_runner *r)
{
    if (!r)
        return;
    http_client_free(r->http);
    steps_socket_free(r->sock);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    free(r->state_dir);
    free(r);
}

int tasks_runner_start(const char *controller_url, const char *ca_file, const char *state_dir,
                       struct netstate_unanswered *unanswered, struct tasks_runner **ret)
{
    struct tasks_runner *r = xcalloc(1, sizeof *r);
    r->unanswered = unanswered;
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->state_dir = xstrdup(state_dir);
    r->http = http_client_new(controller_url);
    if (r->http)
        http_client_set_ca_file(r->http, ca_file);
    _cleanup_free_ char *err = NULL;
    r->sock = steps_socket_new(&err);
    if (r->wake_fd < 0 || !r->http || !r->sock) {
        log_err(LOG_DOMAIN, "cannot start the task loop: %s", err ? err : "no HTTP client or eventfd");
        runner_free(r);
        return -EIO;
    }
    http_client_set_cancel(r->http, runner_cancel, r);
    int q = pthread_create(&r->thread, NULL, runner_main, r);
    if (q != 0) {
        log_err(LOG_DOMAIN, "cannot start the task loop thread: %s", strerror(q));
        runner_free(r);
        return -q;
    }
    *ret = r;
    return 0;
}

void tasks_runner_stop(struct tasks_runner *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, true);
    uint64_t one = 1;
    if (write(r->wake_fd, &one, sizeof one) < 0)
        log_debug(LOG_DOMAIN, "cannot wake the task loop: %s", strerror(errno));
    pthread_join(r->thread, NULL);
    runner_free(r);
}

/* yunguan-agent — the per-host agent of yunguan (doc/AGENT.md).
 *
 * Reads the host's network state over netlink (agents/netstate.c),
 * evaluates the dual-stack checks of each segment the host carries
 * (agents/checks.c) and reports them to the controller, spooling reports
 * on disk while the controller cannot be reached (agents/spool.c).
 *
 * One event loop owns every fd: the netlink cache manager's socket, one
 * timerfd for debounce / heartbeat / backoff, and a signalfd.  Playbook
 * tasks (agents/tasks.c) run on a thread of their own, with their own
 * HTTP client and netlink socket, so that a task waiting for minutes
 * never holds up readiness reports (tasks.c says more).  Calls to
 * the controller are blocking with short timeouts (an agent has nothing
 * else to serve meanwhile; kernel events wait in an 8 MiB socket buffer
 * and a lost burst is recovered by refilling the caches). */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "checks.h"
#include "desired.h"
#include "log.h"
#include "netstate.h"
#include "probe.h"
#include "report.h"
#include "snapshot.h"
#include "spool.h"
#include "steps.h"
#include "tasks.h"
#include "util.h"

#define LOG_DOMAIN "agent"

#define DEFAULT_STATE_DIR "/var/lib/yunguan-agent"
#define DEBOUNCE_MS 200
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 60000
#define HTTP_CONNECT_MS 3000
#define HTTP_TOTAL_MS 10000

enum exit_code {
    EXIT_PASS = 0,
    EXIT_SEGMENT_FAILS = 1,
    EXIT_ERROR = 2,
};

struct agent_options {
    const char *controller;
    const char *ca_file;        /* for an https:// controller; NULL: the system's CAs */
    const char *state_dir;
    char *enroll_token;         /* copied out of argv, which is then wiped */
    const char *enroll_token_file;
    const char *host;
    const char *segments_file;
    bool once;
    uint64_t spool_max_bytes;
    const char *run_task_file;
    int run_task_mode;          /* enum step_mode, or -1: the file's */
};

struct agent {
    struct agent_options opt;
    char *host;
    struct netstate *ns;
    struct desired_state *desired;
    struct http_client *http;           /* NULL: reports go to stdout */
    struct spool *spool;                /* with a controller only */
    struct tasks_runner *tasks;         /* with a controller only */
    json_t *last_result;                /* segments[] of the last report made */
    json_t *last_spooled;               /* segments[] of the newest spooled report */
    char acked_sha256[REPORT_SHA256_HEX_SIZE]; /* results the controller holds ("": unknown) */
    uint64_t stdout_seq;
    bool need_enroll, need_fetch;
    bool controller_failing;
    unsigned attempt;
    uint64_t retry_at, debounce_at, heartbeat_at;       /* monotonic ms; 0: not armed */
    bool stop;
};

static uint64_t now_ms(void)
{
    return monotonic_usec() / 1000;
}

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: yunguan-agent [OPTION]...\n"
        "The yunguan host agent: checks each segment this host carries for IPv4/IPv6\n"
        "dual-stack readiness from the kernel's network state and reports to the\n"
        "controller.\n"
        "\n"
        "      --controller URL         the controller (e.g. https://yunguand:8470)\n"
        "      --ca-file PEM            for an https:// controller: the CA its certificate\n"
        "                               chains to (default: the system's CA bundle)\n"
        "      --state-dir DIR          token, sequence number, spool and the last desired\n"
        "                               state (default %s)\n"
        "      --enroll-token SECRET    one-time enrollment secret, used when DIR has no\n"
        "                               agent.token yet (visible to 'ps': prefer the file)\n"
        "      --enroll-token-file PATH read the enrollment secret from PATH\n"
        "      --host NAME              this host's name (default: the hostname)\n"
        "      --segments-file FILE     desired state from FILE (doc/AGENT.md \"Desired\n"
        "                               state\") instead of the controller\n"
        "      --once                   evaluate once, print the report to stdout and exit:\n"
        "                               0 every segment passes, 1 a segment fails\n"
        "      --spool-max-bytes N      bound of the report spool (default %u)\n"
        "      --run-task FILE          run one playbook task (doc/AGENT.md \"Playbook tasks\")\n"
        "                               from FILE on this host now, print its result JSON and\n"
        "                               exit: 0 succeeded, 1 failed (rolled back), 2 not run\n"
        "      --mode check|apply       with --run-task: the mode, instead of the file's\n"
        "      --log-level LEVEL        err, warn, info or debug (default info)\n"
        "  -h, --help                   show this help and exit\n"
        "  -V, --version                show the version and exit\n"
        "\n"
        "Without --controller, reports are written to stdout, one JSON object per line.\n"
        "With --controller, the agent also runs the playbook tasks the controller gives it.\n"
        "Exit status 2: a usage or start-up error.  See yunguan-agent(8).\n",
        DEFAULT_STATE_DIR, SPOOL_DEFAULT_MAX_BYTES);
}

/* ---- evaluation ---- */

/* Each heartbeat, one datagram to each segment gateway: the kernel then
 * (re)resolves it, and the gateway-neighbour check reads a live answer
 * (REACHABLE, or INCOMPLETE/FAILED when nobody answers) instead of
 * whatever the neighbour table last remembered — a FAILED entry is
 * forgotten by the kernel's garbage collection, and "no entry" says
 * nothing.  The resulting neighbour events trigger the next evaluation. */
static void probe_gateways(const struct agent *a)
{
    for (size_t i = 0; i < a->desired->n_segments; i++) {
        const struct desired_segment *s = &a->desired->segments[i];
        const struct ip_addr *gw[] = { &s->ipv6_gateway, &s->ipv4_gateway };
        for (size_t k = 0; k < YG_ARRAY_SIZE(gw); k++) {
            if (gw[k]->family != AF_INET6 && gw[k]->family != AF_INET)
                continue;
            int r = neighbour_probe_send(s->interface, (int) if_nametoindex(s->interface), gw[k]);
            if (r < 0)
                log_debug(LOG_DOMAIN, "segment '%s': cannot probe its gateway on %s: %s",
                          s->name, s->interface, strerror(-r));
        }
    }
}

static int evaluate(struct agent *a, json_t **ret_segments)
{
    const struct desired_state *d = a->desired;
    uint64_t t0 = monotonic_usec();
    _cleanup_free_ const char **names = xcalloc(d->n_segments, sizeof *names);
    for (size_t i = 0; i < d->n_segments; i++)
        names[i] = d->segments[i].interface;
    _cleanup_(snapshot_freep) struct snapshot *snap = NULL;
    int r = netstate_snapshot(a->ns, names, d->n_segments, &snap);
    if (r < 0) {
        log_err(LOG_DOMAIN, "cannot take a snapshot of the network state: %s", strerror(-r));
        return r;
    }
    uint64_t t1 = monotonic_usec();
    json_t *segments = json_array();
    for (size_t i = 0; i < d->n_segments; i++) {
        struct checks_result res;
        checks_evaluate(snap, &d->segments[i], &res);
        json_array_append_new(segments, checks_result_to_json(&res));
        checks_result_clear(&res);
    }
    uint64_t t2 = monotonic_usec();
    log_debug(LOG_DOMAIN, "evaluated %zu segment(s) in %.3f ms (snapshot %.3f ms: %zu links, "
              "%zu addresses, %zu routes, %zu neighbours, %zu listeners; checks %.3f ms)",
              d->n_segments, (double) (t2 - t0) / 1000.0, (double) (t1 - t0) / 1000.0,
              snap->n_links, snap->n_addrs, snap->n_routes, snap->n_neighs, snap->n_listeners,
              (double) (t2 - t1) / 1000.0);
    *ret_segments = segments;
    return 0;
}

/* ---- controller ---- */

static void backoff(struct agent *a, const char *what, const struct yg_error *e)
{
    unsigned jitter = 0;
    random_bytes(&jitter, sizeof jitter);
    uint64_t now = now_ms();
    a->retry_at = spool_backoff_deadline(now, a->attempt, BACKOFF_BASE_MS, BACKOFF_MAX_MS,
                                         jitter % 1001);
    a->attempt++;
    /* Logged once per outage, then at debug. */
    if (!a->controller_failing)
        log_warn(LOG_DOMAIN, "%s failed: %s; retrying with backoff%s", what,
                 e ? e->message : "unknown error",
                 a->spool ? ", reports go to the spool meanwhile" : "");
    else
        log_debug(LOG_DOMAIN, "%s failed again (attempt %u): %s; next try in %" PRIu64 " ms",
                  what, a->attempt, e ? e->message : "unknown error", a->retry_at - now);
    a->controller_failing = true;
}

static void controller_ok(struct agent *a)
{
    if (a->controller_failing)
        log_info(LOG_DOMAIN, "the controller answers again");
    a->controller_failing = false;
    a->attempt = 0;
    a->retry_at = 0;
}

static bool controller_blocked(const struct agent *a)
{
    return a->retry_at && now_ms() < a->retry_at;
}

static void handle_auth_failure(struct agent *a, const char *what, const struct yg_error *e)
{
    if (a->opt.enroll_token || a->opt.enroll_token_file) {
        log_err(LOG_DOMAIN, "%s: the controller refused the agent token (%s); enrolling again "
                "with the enrollment secret", what, e ? e->message : "401");
        a->need_enroll = true;
    } else if (!a->controller_failing) {
        log_err(LOG_DOMAIN, "%s: the controller refused the agent token (%s); make a new "
                "enrollment secret ('yunguan host enroll %s') and give it with --enroll-token-file",
                what, e ? e->message : "401", a->host);
    }
    backoff(a, what, e);
}

static int do_enroll(struct agent *a)
{
    _cleanup_free_ char *secret = NULL;
    if (a->opt.enroll_token_file) {
        /* Read at each attempt: an operator may drop a fresh secret in. */
        int r = report_secret_file_read(a->opt.enroll_token_file, &secret);
        if (r < 0) {
            log_err(LOG_DOMAIN, "cannot read the enrollment secret from '%s': %s",
                    a->opt.enroll_token_file, r == -EBADMSG ? "the file is empty" : strerror(-r));
            backoff(a, "enrollment", NULL);
            return r;
        }
    } else if (a->opt.enroll_token)
        secret = xstrdup(a->opt.enroll_token);
    else {
        log_err(LOG_DOMAIN, "there is no agent token in '%s/%s' and no enrollment secret "
                "(--enroll-token-file) to enroll with", a->opt.state_dir, REPORT_TOKEN_FILE);
        backoff(a, "enrollment", NULL);
        return -ENOENT;
    }
    _cleanup_free_ char *token = NULL;
    struct yg_error *e = NULL;
    enum report_outcome o = report_enroll(a->http, a->host, secret, &token, &e);
    explicit_bzero(secret, strlen(secret));
    if (o != REPORT_OK) {
        if (o == REPORT_AUTH && !a->controller_failing)
            log_err(LOG_DOMAIN, "the controller refused the enrollment secret for host '%s' (%s): "
                    "it may be spent or made for another host", a->host, e->message);
        backoff(a, "enrollment", e);
        yg_error_free(e);
        return -EAGAIN;
    }
    int r = report_token_store(a->opt.state_dir, token);
    if (r < 0) {
        /* The secret is spent: keep the token in memory for this run. */
        log_err(LOG_DOMAIN, "enrolled, but cannot store the agent token in '%s/%s': %s; it is "
                "used until the agent stops, then the host needs a new enrollment secret",
                a->opt.state_dir, REPORT_TOKEN_FILE, strerror(-r));
    }
    http_client_set_token(a->http, token);
    explicit_bzero(token, strlen(token));
    if (r == 0)
        log_info(LOG_DOMAIN, "enrolled host '%s'; the agent token is in '%s/%s'", a->host,
                 a->opt.state_dir, REPORT_TOKEN_FILE);
    a->need_enroll = false;
    controller_ok(a);
    return 0;
}

static void set_desired(struct agent *a, struct desired_state *d)
{
    desired_state_free(a->desired);
    a->desired = d;
    if (d->host && !streq(d->host, a->host))
        log_warn(LOG_DOMAIN, "the desired state is for host '%s' but this host is '%s'", d->host, a->host);
    /* Evaluate and report at once, and restart the heartbeat. */
    json_decref(a->last_result);
    a->last_result = NULL;
    a->debounce_at = now_ms();
    a->heartbeat_at = a->debounce_at + (uint64_t) d->heartbeat_seconds * 1000;
}

static int do_fetch(struct agent *a)
{
    struct desired_state *d = NULL;
    json_t *raw = NULL;
    struct yg_error *e = NULL;
    enum report_outcome o = report_fetch_desired(a->http, &d, &raw, &e);
    if (o != REPORT_OK) {
        if (o == REPORT_AUTH)
            handle_auth_failure(a, "fetching the desired state", e);
        else
            backoff(a, "fetching the desired state", e);
        yg_error_free(e);
        if (!a->desired) {
            /* Until the controller answers, check against the last known plan. */
            _cleanup_free_ char *path = xasprintf("%s/%s", a->opt.state_dir, REPORT_DESIRED_CACHE_FILE);
            _cleanup_free_ char *err = NULL;
            struct desired_state *cached = NULL;
            if (access(path, F_OK) == 0 && desired_state_load_file(path, &cached, &err) == 0) {
                log_info(LOG_DOMAIN, "using the last desired state from '%s' until the controller answers",
                         path);
                set_desired(a, cached);
            } else if (err)
                log_warn(LOG_DOMAIN, "cannot use the cached desired state: %s", err);
        }
        return -EAGAIN;
    }
    _cleanup_free_ char *text = json_dumps(raw, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(raw);
    int r = report_write_state_file(a->opt.state_dir, REPORT_DESIRED_CACHE_FILE, text, strlen(text));
    if (r < 0)
        log_warn(LOG_DOMAIN, "cannot cache the desired state in '%s': %s", a->opt.state_dir, strerror(-r));
    log_info(LOG_DOMAIN, "desired state: %zu segment(s), heartbeat every %u s", d->n_segments,
             d->heartbeat_seconds);
    set_desired(a, d);
    a->need_fetch = false;
    controller_ok(a);
    return 0;
}

/* React to the controller's answer to report seq. */
static void handle_answer(struct agent *a, uint64_t seq, const struct report_answer *ans)
{
    if (!ans->applied && ans->last_seq >= seq) {
        /* The controller has seen higher numbers (our state dir was lost or
         * restored from a backup): continue above them and report again. */
        log_warn(LOG_DOMAIN, "the controller has already applied report %" PRIu64 " (this one was %"
                 PRIu64 "); continuing from %" PRIu64, ans->last_seq, seq, ans->last_seq + 1);
        int r = spool_raise_seq(a->spool, ans->last_seq);
        if (r < 0)
            log_err(LOG_DOMAIN, "cannot store the sequence number in '%s': %s", a->opt.state_dir,
                    strerror(-r));
        json_decref(a->last_result);
        a->last_result = NULL;
        a->debounce_at = now_ms();
    }
    if (ans->resync) {
        if (a->opt.segments_file)
            log_debug(LOG_DOMAIN, "the controller asks for a resync; the desired state comes "
                      "from '%s', so there is nothing to fetch", a->opt.segments_file);
        else {
            log_info(LOG_DOMAIN, "the controller asks for a resync: fetching the desired state");
            a->need_fetch = true;
        }
    }
}

/* Send the spooled reports, oldest first, until the spool is empty or the
 * controller fails. */
static void replay_spool(struct agent *a)
{
    size_t sent = 0;
    while (spool_count(a->spool) && !a->need_enroll && !a->stop) {
        uint64_t seq;
        _cleanup_free_ char *body = NULL;
        size_t len;
        int r = spool_peek(a->spool, &seq, &body, &len);
        if (r < 0) {
            /* Remove the unreadable entry so that the spool moves on. */
            log_err(LOG_DOMAIN, "cannot read the oldest spooled report: %s; dropping it", strerror(-r));
            if (spool_remove_oldest(a->spool) < 0) {
                backoff(a, "cleaning the spool", NULL);
                return;
            }
            continue;
        }
        struct report_answer ans;
        struct yg_error *e = NULL;
        enum report_outcome o = report_post(a->http, body, len, &ans, &e);
        if (o == REPORT_RETRY) {
            backoff(a, "sending a spooled report", e);
            yg_error_free(e);
            return;
        }
        if (o == REPORT_AUTH) {
            handle_auth_failure(a, "sending a spooled report", e);
            yg_error_free(e);
            return;
        }
        if (o == REPORT_REJECTED)
            log_err(LOG_DOMAIN, "the controller rejected spooled report %" PRIu64 " (%s); dropping it",
                    seq, e->message);
        yg_error_free(e);
        r = spool_remove(a->spool, seq);
        if (r < 0) {
            log_err(LOG_DOMAIN, "cannot remove spooled report %" PRIu64 ": %s", seq, strerror(-r));
            backoff(a, "cleaning the spool", NULL);
            return;
        }
        if (spool_count(a->spool) == 0) {
            json_decref(a->last_spooled);
            a->last_spooled = NULL;
        }
        controller_ok(a);
        sent++;
        if (o == REPORT_OK)
            handle_answer(a, seq, &ans);
        if (spool_count(a->spool) == 0)
            log_info(LOG_DOMAIN, "sent the %zu spooled report(s); the spool is empty", sent);
    }
}

static void spool_report(struct agent *a, uint64_t seq, const char *body, size_t len, json_t *segments)
{
    bool replace = a->last_spooled && spool_count(a->spool) && json_equal(a->last_spooled, segments);
    size_t dropped = 0;
    int r = spool_add(a->spool, seq, body, len, replace, &dropped);
    if (r < 0) {
        log_err(LOG_DOMAIN, "cannot spool report %" PRIu64 " in '%s/spool': %s; it is lost",
                seq, a->opt.state_dir, strerror(-r));
        return;
    }
    if (dropped)
        log_warn(LOG_DOMAIN, "the spool reached its bound of %" PRIu64 " bytes: dropped the %zu "
                 "oldest report(s), keeping the newest state", a->opt.spool_max_bytes, dropped);
    json_decref(a->last_spooled);
    a->last_spooled = json_incref(segments);
}

static void emit_report(struct agent *a, json_t *segments)
{
    json_decref(a->last_result);
    a->last_result = json_incref(segments);
    char ts[32];
    format_utc_now(ts);

    if (!a->http) {
        json_t *report = report_build(a->host, ++a->stdout_seq, ts, segments);
        _cleanup_free_ char *text = json_dumps(report, JSON_COMPACT);
        json_decref(report);
        printf("%s\n", text);
        fflush(stdout);
        return;
    }

    uint64_t seq;
    int r = spool_next_seq(a->spool, &seq);
    if (r < 0) {
        log_err(LOG_DOMAIN, "cannot store the next sequence number in '%s': %s; report not sent",
                a->opt.state_dir, strerror(-r));
        return;
    }
    /* A hash-only heartbeat when the controller holds exactly these
     * results (doc/AGENT.md, "Heartbeats"); never into the spool. */
    char sha[REPORT_SHA256_HEX_SIZE];
    report_results_sha256(segments, sha);
    bool in_order = !spool_count(a->spool) && !a->need_enroll && !controller_blocked(a);
    bool hash_only = in_order && streq(a->acked_sha256, sha);
    a->acked_sha256[0] = '\0';    /* until an answer says it stored them */
    _cleanup_free_ char *body = hash_only ? report_heartbeat_body(a->host, seq, sha)
                                          : report_full_body(a->host, seq, ts, segments, sha);
    size_t len = strlen(body);

    /* In order: while older reports wait in the spool, this one joins them. */
    if (!in_order) {
        spool_report(a, seq, body, len, segments);
        return;
    }
    struct report_answer ans;
    struct yg_error *e = NULL;
    enum report_outcome o = report_post(a->http, body, len, &ans, &e);
    switch (o) {
    case REPORT_OK:
        controller_ok(a);
        log_debug(LOG_DOMAIN, "%s %" PRIu64 " sent (applied: %s)", hash_only ? "heartbeat" : "report",
                  seq, ans.applied ? "yes" : "no");
        handle_answer(a, seq, &ans);
        if (ans.applied && !ans.resync && streq(ans.results_sha256, sha))
            memcpy(a->acked_sha256, sha, sizeof sha);
        else if (hash_only) {
            /* The controller does not hold these results: the full report now. */
            json_decref(a->last_result);
            a->last_result = NULL;
            a->debounce_at = now_ms();
        }
        break;
    case REPORT_RETRY:
    case REPORT_AUTH:
        if (o == REPORT_RETRY)
            backoff(a, "sending a report", e);
        else
            handle_auth_failure(a, "sending a report", e);
        if (hash_only) {
            free(body);
            body = report_full_body(a->host, seq, ts, segments, sha);
            len = strlen(body);
        }
        spool_report(a, seq, body, len, segments);
        break;
    case REPORT_REJECTED:
    case REPORT_OUTCOME_MAX:
        log_err(LOG_DOMAIN, "the controller rejected report %" PRIu64 ": %s", seq, e ? e->message : "");
        break;
    }
    yg_error_free(e);
}

/* ---- the loop ---- */

static void step(struct agent *a)
{
    uint64_t now = now_ms();
    if (a->http && !controller_blocked(a)) {
        if (a->need_enroll)
            do_enroll(a);
        if (!a->need_enroll && a->need_fetch && !controller_blocked(a))
            do_fetch(a);
        if (!a->need_enroll && !controller_blocked(a) && spool_count(a->spool))
            replay_spool(a);
    }
    if (!a->desired)
        return;
    now = now_ms();
    bool heartbeat = a->heartbeat_at && now >= a->heartbeat_at;
    bool debounced = a->debounce_at && now >= a->debounce_at;
    if (!heartbeat && !debounced)
        return;
    a->debounce_at = 0;
    if (heartbeat)
        probe_gateways(a);
    json_t *segments = NULL;
    if (evaluate(a, &segments) < 0) {
        a->heartbeat_at = now + (uint64_t) a->desired->heartbeat_seconds * 1000;
        return;
    }
    if (heartbeat || !a->last_result || !json_equal(segments, a->last_result)) {
        if (!a->last_result)
            log_info(LOG_DOMAIN, "reporting the evaluation of %zu segment(s)", a->desired->n_segments);
        else if (!heartbeat)
            log_info(LOG_DOMAIN, "the evaluation changed: reporting");
        emit_report(a, segments);
        a->heartbeat_at = now_ms() + (uint64_t) a->desired->heartbeat_seconds * 1000;
    }
    json_decref(segments);
}

static uint64_t next_deadline(const struct agent *a)
{
    uint64_t d = UINT64_MAX;
    if (a->debounce_at && a->debounce_at < d)
        d = a->debounce_at;
    if (a->heartbeat_at && a->heartbeat_at < d)
        d = a->heartbeat_at;
    bool controller_work = a->http && (a->need_enroll || a->need_fetch || spool_count(a->spool));
    if (controller_work) {
        uint64_t r = a->retry_at ? a->retry_at : now_ms();
        if (r < d)
            d = r;
    }
    return d;
}

static int arm_timer(int tfd, uint64_t deadline_ms)
{
    struct itimerspec its = { 0 };
    if (deadline_ms != UINT64_MAX) {
        if (deadline_ms == 0)
            deadline_ms = 1;        /* 0 would disarm */
        its.it_value.tv_sec = (time_t) (deadline_ms / 1000);
        its.it_value.tv_nsec = (long) (deadline_ms % 1000) * 1000000;
    }
    return timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ? -errno : 0;
}

static inline void closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

static int run_loop(struct agent *a)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -errno;
    /* Started with the signals blocked, so that the thread inherits the
     * mask and every signal comes to the signalfd below. */
    /* The task thread gets the daemon's memory of neighbours dropped
     * unanswered, so that its checks fail a dead gateway as the reports
     * do; agent_clear joins it before freeing a->ns. */
    if (a->http && tasks_runner_start(a->opt.controller, a->opt.ca_file, a->opt.state_dir,
                                      netstate_unanswered(a->ns), &a->tasks) < 0)
        log_err(LOG_DOMAIN, "playbook tasks cannot run on this host until the agent restarts");
    _cleanup_(closep) int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    _cleanup_(closep) int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (sfd < 0 || tfd < 0) {
        log_err(LOG_DOMAIN, "cannot create the signal or timer fd: %s", strerror(errno));
        return -errno;
    }
    while (!a->stop) {
        step(a);
        int r = arm_timer(tfd, next_deadline(a));
        if (r < 0) {
            log_err(LOG_DOMAIN, "cannot arm the timer: %s", strerror(-r));
            return r;
        }
        struct pollfd pfd[3] = {
            { .fd = netstate_fd(a->ns), .events = POLLIN },
            { .fd = tfd, .events = POLLIN },
            { .fd = sfd, .events = POLLIN },
        };
        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_err(LOG_DOMAIN, "poll failed: %s", strerror(errno));
            return -errno;
        }
        if (pfd[0].revents) {
            int n = netstate_process(a->ns);
            if (n < 0)
                log_warn(LOG_DOMAIN, "cannot process netlink notifications: %s", strerror(-n));
            else if (n > 0 && !a->debounce_at)
                a->debounce_at = now_ms() + DEBOUNCE_MS;
        }
        if (pfd[1].revents) {
            uint64_t expirations;
            if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                log_debug(LOG_DOMAIN, "timerfd read: %s", strerror(errno));
        }
        if (pfd[2].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t) sizeof si) {
                if (si.ssi_signo == SIGHUP) {
                    log_info(LOG_DOMAIN, "SIGHUP: reloading the desired state");
                    if (a->opt.segments_file) {
                        struct desired_state *d = NULL;
                        _cleanup_free_ char *err = NULL;
                        if (desired_state_load_file(a->opt.segments_file, &d, &err) < 0)
                            log_err(LOG_DOMAIN, "%s; keeping the previous desired state", err);
                        else
                            set_desired(a, d);
                    } else
                        a->need_fetch = true;
                } else {
                    log_info(LOG_DOMAIN, "signal %u: stopping", si.ssi_signo);
                    a->stop = true;
                }
            }
        }
    }
    return 0;
}

/* ---- start-up ---- */

static void agent_clear(struct agent *a)
{
    tasks_runner_stop(a->tasks);
    netstate_free(a->ns);
    desired_state_free(a->desired);
    http_client_free(a->http);
    spool_free(a->spool);
    json_decref(a->last_result);
    json_decref(a->last_spooled);
    free(a->host);
    if (a->opt.enroll_token) {
        explicit_bzero(a->opt.enroll_token, strlen(a->opt.enroll_token));
        free(a->opt.enroll_token);
    }
}

static int parse_size(const char *s, uint64_t *ret)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v < 4096)
        return -EINVAL;
    *ret = v;
    return 0;
}

static int setup_controller(struct agent *a)
{
    a->http = http_client_new(a->opt.controller);
    if (a->http)
        http_client_set_ca_file(a->http, a->opt.ca_file);
    if (!a->http) {
        fprintf(stderr, "yunguan-agent: cannot set up an HTTP client for '%s'\n", a->opt.controller);
        return -EINVAL;
    }
    http_client_set_timeouts(a->http, HTTP_CONNECT_MS, HTTP_TOTAL_MS);
    _cleanup_free_ char *token = NULL;
    int r = report_token_load(a->opt.state_dir, &token);
    if (r == 0) {
        http_client_set_token(a->http, token);
        explicit_bzero(token, strlen(token));
    } else if (r == -ENOENT) {
        if (!a->opt.enroll_token && !a->opt.enroll_token_file) {
            fprintf(stderr, "yunguan-agent: there is no agent token in '%s/%s': give a one-time "
                    "enrollment secret with --enroll-token-file (made by 'yunguan host enroll %s')\n",
                    a->opt.state_dir, REPORT_TOKEN_FILE, a->host);
            return -ENOENT;
        }
        a->need_enroll = true;
    } else {
        fprintf(stderr, "yunguan-agent: cannot read the agent token '%s/%s': %s\n", a->opt.state_dir,
                REPORT_TOKEN_FILE, r == -EBADMSG ? "the file is empty" : strerror(-r));
        return r;
    }
    a->need_fetch = !a->opt.segments_file;
    return 0;
}

/* --once: one evaluation, the report on stdout. */
static int run_once(struct agent *a)
{
    if (a->http) {
        if (a->need_enroll && do_enroll(a) < 0)
            return EXIT_ERROR;
        if (a->need_fetch) {
            struct yg_error *e = NULL;
            struct desired_state *d = NULL;
            if (report_fetch_desired(a->http, &d, NULL, &e) != REPORT_OK) {
                fprintf(stderr, "yunguan-agent: cannot fetch the desired state: %s\n", e->message);
                yg_error_free(e);
                return EXIT_ERROR;
            }
            a->desired = d;
        }
    }
    json_t *segments = NULL;
    if (evaluate(a, &segments) < 0)
        return EXIT_ERROR;
    char ts[32];
    format_utc_now(ts);
    json_t *report = report_build(a->host, 0, ts, segments);
    _cleanup_free_ char *text = json_dumps(report, JSON_INDENT(2));
    json_decref(report);
    printf("%s\n", text);
    bool pass = report_segments_pass(segments);
    json_decref(segments);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "yunguan-agent: cannot write the report: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    return pass ? EXIT_PASS : EXIT_SEGMENT_FAILS;
}

/* ---- --run-task ---- */

static volatile sig_atomic_t run_task_stop;

static void run_task_signal(int sig)
{
    (void) sig;
    run_task_stop = 1;
}

static bool run_task_should_stop(void *userdata)
{
    (void) userdata;
    return run_task_stop != 0;
}

static void run_task_progress(const struct task *t, json_t *result, void *userdata)
{
    (void) userdata;
    size_t i;
    json_t *s;
    /* The newest step that ran. */
    json_t *last = NULL;
    json_array_foreach(json_object_get(result, "steps"), i, s)
        if (!streq(json_string_value(json_object_get(s, "status")), "not-run"))
            last = s;
    if (last)
        log_info(LOG_DOMAIN, "task %" PRId64 " step %lld '%s' (%s): %s: %s", t->id,
                 (long long) json_integer_value(json_object_get(last, "index")),
                 json_string_value(json_object_get(last, "name")),
                 json_string_value(json_object_get(last, "action")),
                 json_string_value(json_object_get(last, "status")),
                 json_string_value(json_object_get(last, "message")));
}

/* Run one task file here and now: an operator's tool, and the tests'. */
static int run_task(struct agent *a)
{
    const char *file = a->opt.run_task_file;
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(file, TASKS_MAX_BYTES, &data, &len);
    if (r < 0) {
        fprintf(stderr, "yunguan-agent: cannot read the task file '%s': %s\n", file,
                r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
        return EXIT_ERROR;
    }
    json_error_t jerr;
    json_t *js = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!js) {
        fprintf(stderr, "yunguan-agent: %s:%d:%d: %s\n", file, jerr.line, jerr.column, jerr.text);
        return EXIT_ERROR;
    }
    _cleanup_(task_freep) struct task *t = NULL;
    _cleanup_free_ char *err = NULL;
    r = task_from_json(js, a->opt.run_task_mode, &t, NULL, &err);
    json_decref(js);
    if (r < 0) {
        fprintf(stderr, "yunguan-agent: %s: %s\n", file, err);
        return EXIT_ERROR;
    }
    if (t->mode == STEP_MODE_APPLY && (r = tasks_state_dir_make(a->opt.state_dir)) < 0) {
        fprintf(stderr, "yunguan-agent: cannot make the state directory '%s' for the task's journal: "
                "%s\n", a->opt.state_dir, strerror(-r));
        return EXIT_ERROR;
    }
    _cleanup_(steps_socket_freep) struct nl_sock *sock = steps_socket_new(&err);
    if (!sock) {
        fprintf(stderr, "yunguan-agent: %s\n", err);
        return EXIT_ERROR;
    }
    /* An earlier run cut short (killed, host crash) is rolled back first. */
    size_t n = 0;
    r = tasks_recover(sock, a->opt.state_dir, &n);
    if (r < 0 && r != -ENOENT) {
        fprintf(stderr, "yunguan-agent: cannot roll back the unfinished task journal(s) in '%s': %s; "
                "not running another task\n", a->opt.state_dir, strerror(-r));
        return EXIT_ERROR;
    }
    struct sigaction sa = { .sa_handler = run_task_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct task_run_options o = {
        .state_dir = a->opt.state_dir, .local = true, .progress = run_task_progress,
        .should_stop = run_task_should_stop,
    };
    json_t *result = task_run(sock, t, &o);
    _cleanup_free_ char *text = json_dumps(result, JSON_INDENT(2));
    bool ok = streq(json_string_value(json_object_get(result, "status")), "succeeded");
    json_decref(result);
    printf("%s\n", text);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "yunguan-agent: cannot write the result: %s\n", strerror(errno));
        return EXIT_ERROR;
    }
    return ok ? EXIT_PASS : EXIT_SEGMENT_FAILS;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "controller", required_argument, NULL, 'c' },
        { "ca-file", required_argument, NULL, 'C' },
        { "state-dir", required_argument, NULL, 'd' },
        { "enroll-token", required_argument, NULL, 'e' },
        { "enroll-token-file", required_argument, NULL, 'E' },
        { "host", required_argument, NULL, 'H' },
        { "segments-file", required_argument, NULL, 's' },
        { "once", no_argument, NULL, '1' },
        { "spool-max-bytes", required_argument, NULL, 'm' },
        { "log-level", required_argument, NULL, 'L' },
        { "run-task", required_argument, NULL, 'T' },
        { "mode", required_argument, NULL, 'M' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    struct agent a = { .opt = { .state_dir = DEFAULT_STATE_DIR, .spool_max_bytes = SPOOL_DEFAULT_MAX_BYTES,
                                .run_task_mode = -1 } };
    const char *level = NULL;
    int c, rc = EXIT_ERROR;
    while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
        switch (c) {
        case 'c': a.opt.controller = optarg; break;
        case 'C':
            if (access(optarg, R_OK) < 0) {
                fprintf(stderr, "yunguan-agent: cannot read the CA file '%s': %s\n", optarg, strerror(errno));
                goto out;
            }
            a.opt.ca_file = optarg;
            break;
        case 'd': a.opt.state_dir = optarg; break;
        case 'e':
            free(a.opt.enroll_token);
            a.opt.enroll_token = xstrdup(optarg);
            explicit_bzero(optarg, strlen(optarg));     /* out of 'ps' */
            break;
        case 'E': a.opt.enroll_token_file = optarg; break;
        case 'H': a.opt.host = optarg; break;
        case 's': a.opt.segments_file = optarg; break;
        case '1': a.opt.once = true; break;
        case 'm':
            if (parse_size(optarg, &a.opt.spool_max_bytes) < 0) {
                fprintf(stderr, "yunguan-agent: --spool-max-bytes '%s' is not a number of bytes "
                        "(at least 4096)\n", optarg);
                goto out;
            }
            break;
        case 'L': level = optarg; break;
        case 'T': a.opt.run_task_file = optarg; break;
        case 'M':
            a.opt.run_task_mode = step_mode_from_string(optarg);
            if (a.opt.run_task_mode < 0) {
                fprintf(stderr, "yunguan-agent: --mode '%s' is not check or apply\n", optarg);
                goto out;
            }
            break;
        case 'h': usage(stdout); rc = 0; goto out;
        case 'V': printf("yunguan-agent %s\n", PACKAGE_VERSION); rc = 0; goto out;
        default:
            fprintf(stderr, "yunguan-agent: see 'yunguan-agent --help' for the options\n");
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "yunguan-agent: unexpected argument '%s'; see 'yunguan-agent --help'\n",
                argv[optind]);
        goto out;
    }
    if (level) {
        int l = log_level_from_string(level);
        if (l < 0) {
            fprintf(stderr, "yunguan-agent: log level '%s' is not one of err, warn, info, debug\n", level);
            goto out;
        }
        log_set_level((enum log_level) l);
    }
    if (a.opt.enroll_token && a.opt.enroll_token_file) {
        fprintf(stderr, "yunguan-agent: give the enrollment secret once: --enroll-token or "
                "--enroll-token-file, not both\n");
        goto out;
    }
    if (a.opt.run_task_mode >= 0 && !a.opt.run_task_file) {
        fprintf(stderr, "yunguan-agent: --mode goes with --run-task FILE\n");
        goto out;
    }
    if (a.opt.run_task_file) {
        if (a.opt.controller || a.opt.segments_file || a.opt.once) {
            fprintf(stderr, "yunguan-agent: --run-task runs one task file on its own; leave out "
                    "--controller, --segments-file and --once\n");
            goto out;
        }
        rc = run_task(&a);
        goto out;
    }
    if (!a.opt.controller && !a.opt.segments_file) {
        fprintf(stderr, "yunguan-agent: nothing to check: give --controller URL, or "
                "--segments-file FILE for a local check\n");
        goto out;
    }
    if (a.opt.host) {
        a.host = xstrdup(a.opt.host);
    } else {
        char name[256];
        if (gethostname(name, sizeof name) < 0) {
            fprintf(stderr, "yunguan-agent: cannot read the hostname (%s); give --host NAME\n",
                    strerror(errno));
            goto out;
        }
        name[sizeof name - 1] = '\0';
        a.host = xstrdup(name);
    }
    signal(SIGPIPE, SIG_IGN);

    /* Start-up order: configuration → state dir → kernel state → serve. */
    if (a.opt.segments_file) {
        _cleanup_free_ char *err = NULL;
        if (desired_state_load_file(a.opt.segments_file, &a.desired, &err) < 0) {
            fprintf(stderr, "yunguan-agent: %s\n", err);
            goto out;
        }
    }
    if (a.opt.controller) {
        if (!a.opt.once) {
            int r = spool_open(a.opt.state_dir, a.opt.spool_max_bytes, &a.spool);
            if (r < 0) {
                fprintf(stderr, "yunguan-agent: cannot use the state directory '%s': %s\n",
                        a.opt.state_dir, strerror(-r));
                goto out;
            }
            if (spool_count(a.spool))
                log_info(LOG_DOMAIN, "%zu report(s) wait in the spool (%" PRIu64 " bytes)",
                         spool_count(a.spool), spool_bytes(a.spool));
        }
        if (setup_controller(&a) < 0)
            goto out;
    }
    {
        _cleanup_free_ char *err = NULL;
        int r = netstate_new(&a.ns, &err);
        if (r < 0) {
            fprintf(stderr, "yunguan-agent: %s\n", err);
            goto out;
        }
    }

    if (a.opt.once) {
        rc = run_once(&a);
        goto out;
    }
    if (a.opt.controller) {
        /* A task cut short by a crash or a kill is rolled back before
         * anything else looks at the host; its result waits in the state
         * dir for the task loop to send. */
        _cleanup_free_ char *err = NULL;
        _cleanup_(steps_socket_freep) struct nl_sock *sock = steps_socket_new(&err);
        size_t n = 0;
        int r = sock ? tasks_recover(sock, a.opt.state_dir, &n) : -EIO;
        if (r < 0)
            log_err(LOG_DOMAIN, "cannot roll back every unfinished task in '%s': %s", a.opt.state_dir,
                    err ? err : strerror(-r));
        else if (n)
            log_warn(LOG_DOMAIN, "rolled back %zu task(s) cut short by the restart", n);
    }
    if (a.desired) {
        struct desired_state *d = steal_pointer(&a.desired);
        set_desired(&a, d);
    }
    log_info(LOG_DOMAIN, "started for host '%s'%s%s", a.host, a.opt.controller ? ", controller " : "",
             a.opt.controller ? a.opt.controller : ", reports on stdout");
    rc = run_loop(&a) < 0 ? EXIT_ERROR : 0;
out:
    agent_clear(&a);
    return rc;
}

/* bench-store-fill: fill a yunguand store with many requests, fast, through
 * yunguand's own store code.
 *
 * Opens (creates) the store with store_open() — the same migrations —,
 * creates departments with quota_set(), then submits one store job per
 * request that calls requests_insert() (the rows an accepted POST
 * /api/v1/requests writes: requests, request_vms, the first transition, the
 * audit entry) and moves the request on to its final state with the writes
 * lifecycle_apply() makes (UPDATE requests, lifecycle_record(),
 * audit_append()).  The jobs go through the writer's group commit, so this
 * is also a figure for the store layer without HTTP and YAML.
 *
 *   bench/bench-store-fill --db PATH [--count N] [--source FILE]
 *
 * Departments (share of the requests): health 25%, police 20%, education
 * 15%, transport 10%, finance 10%, civil-affairs 8%, water 7%,
 * environment 5%; plus "archives" with 20 requests, all submitted.
 * Final states, as in a store that has run for years (most requests
 * finished, 15% live): submitted 5%, approved 3%, rejected 15%, withdrawn
 * 10%, provisioning 1%, active 10%, closed 55%, failed 1%.
 * Start yunguand on PATH afterwards: it creates its admin token then. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "auth.h"
#include "lifecycle.h"
#include "log.h"
#include "quota.h"
#include "request.h"
#include "requests.h"
#include "store.h"
#include "util.h"

static const struct {
    const char *name;
    int weight;     /* per 1000 */
} departments[] = {
    { "health", 250 }, { "police", 200 }, { "education", 150 }, { "transport", 100 },
    { "finance", 100 }, { "civil-affairs", 80 }, { "water", 70 }, { "environment", 50 },
};
#define N_DEPARTMENTS YG_ARRAY_SIZE(departments)
#define SMALL_DEPARTMENT "archives"
#define SMALL_COUNT 20

static const struct {
    enum request_state state;
    int weight;     /* per 1000 */
} final_states[] = {
    { REQUEST_SUBMITTED, 50 }, { REQUEST_APPROVED, 30 }, { REQUEST_REJECTED, 150 },
    { REQUEST_WITHDRAWN, 100 }, { REQUEST_PROVISIONING, 10 }, { REQUEST_ACTIVE, 100 },
    { REQUEST_CLOSED, 550 }, { REQUEST_FAILED, 10 },
};

struct department {
    const char *name;
    int64_t id;
    struct request *req;    /* the template parsed for this department */
    char *source_prefix, *source_suffix;
};

static struct department depts[N_DEPARTMENTS + 1];
static atomic_long failures;

static uint64_t mix(uint64_t x)
{
    /* splitmix64: a deterministic spread of the index. */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int pick(uint64_t r, const int *weights, size_t n)
{
    int x = (int) (r % 1000);
    for (size_t i = 0; i < n; i++) {
        if (x < weights[i])
            return (int) i;
        x -= weights[i];
    }
    return (int) n - 1;
}

static struct principal principal(enum role role, const char *actor, int64_t department_id)
{
    struct principal p = { .role = role, .department_id = department_id };
    snprintf(p.actor, sizeof p.actor, "%s", actor);
    return p;
}

/* The writes lifecycle_apply() makes for one transition. */
static int transition(struct store_txn *txn, const struct principal *by, int64_t id,
                      enum request_state from, enum request_state to, const char *action,
                      const char *reason)
{
    struct store_conn *conn = store_txn_conn(txn);
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(conn, "UPDATE requests SET state = ?1, updated_at = ?2 WHERE id = ?3");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, request_state_to_string(to));
    store_bind_text(st, 2, at);
    sqlite3_bind_int64(st, 3, id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    int r = lifecycle_record(txn, by, id, (int) from, to, reason);
    if (r < 0)
        return r;
    _cleanup_free_ char *object = xasprintf("request/%lld", (long long) id);
    _cleanup_free_ char *audit_action = xasprintf("request.%s", action);
    json_t *before = json_pack("{s:s}", "state", request_state_to_string(from));
    json_t *after = json_pack("{s:s, s:s?}", "state", request_state_to_string(to), "reason", reason);
    r = audit_append(txn, by->actor, role_to_string(by->role), audit_action, object, before, after);
    json_decref(before);
    json_decref(after);
    return r;
}

struct fill_job {
    long index;
    struct department *dept;
    enum request_state final;
};

static int fill_run(struct store_txn *txn, void *ctx)
{
    struct fill_job *j = ctx;
    struct department *d = j->dept;
    char name[64];
    snprintf(name, sizeof name, "fill-%s-%ld", d->name, j->index);
    _cleanup_free_ char *source = xasprintf("%s%s%s", d->source_prefix, name, d->source_suffix);

    /* Only the writer thread runs jobs: the shared template can be renamed here. */
    char *saved = d->req->name;
    d->req->name = name;
    struct principal dept = principal(ROLE_DEPARTMENT, "token:2", d->id);
    snprintf(dept.department, sizeof dept.department, "%s", d->name);
    struct yg_error *err = NULL;
    int64_t id = requests_insert(txn, &dept, d->req, d->id, source, &err);
    d->req->name = saved;
    if (id < 0) {
        if (err)
            fprintf(stderr, "bench-store-fill: %s: %s\n", name, err->message);
        yg_error_free(err);
        return (int) id;
    }

    struct principal ops = principal(ROLE_CLOUDOPS, "token:3", 0);
    struct principal sys = principal(ROLE_ADMIN, "system", 0);
    int r = 0;
    switch (j->final) {
    case REQUEST_SUBMITTED:
        break;
    case REQUEST_REJECTED:
        r = transition(txn, &ops, id, REQUEST_SUBMITTED, REQUEST_REJECTED, "reject",
                       "no capacity on the requested segment this quarter");
        break;
    case REQUEST_WITHDRAWN:
        r = transition(txn, &dept, id, REQUEST_SUBMITTED, REQUEST_WITHDRAWN, "withdraw", NULL);
        break;
    default:
        r = transition(txn, &ops, id, REQUEST_SUBMITTED, REQUEST_APPROVED, "approve", NULL);
        if (r == 0 && j->final != REQUEST_APPROVED)
            r = transition(txn, &sys, id, REQUEST_APPROVED, REQUEST_PROVISIONING, "provision", NULL);
        if (r == 0 && j->final == REQUEST_FAILED)
            r = transition(txn, &sys, id, REQUEST_PROVISIONING, REQUEST_FAILED, "fail",
                           "host ran out of disk while cloning the image");
        if (r == 0 && (j->final == REQUEST_ACTIVE || j->final == REQUEST_CLOSED))
            r = transition(txn, &sys, id, REQUEST_PROVISIONING, REQUEST_ACTIVE, "activate", NULL);
        if (r == 0 && j->final == REQUEST_CLOSED)
            r = transition(txn, &sys, id, REQUEST_ACTIVE, REQUEST_CLOSED, "close", NULL);
        break;
    }
    return r;
}

static void fill_done(void *ctx, int result)
{
    if (result < 0)
        atomic_fetch_add(&failures, 1);
    free(ctx);
}

struct setup_job {
    struct department *d;
};

static int setup_run(struct store_txn *txn, void *ctx)
{
    struct setup_job *j = ctx;
    struct principal admin = principal(ROLE_ADMIN, "token:1", 0);
    /* Limits so large that no approval is refused. */
    struct quota_limits limits = {
        .max = { .vcpus = INT64_C(1) << 40, .memory_mib = INT64_C(1) << 50,
                 .disk_gib = INT64_C(1) << 50, .vms = INT64_C(1) << 40 },
        .max_lease_days = 3650,
    };
    struct yg_error *err = NULL;
    int r = quota_set(txn, &admin, j->d->name, &limits, &err);
    yg_error_free(err);
    if (r < 0)
        return r;
    return quota_department_id(store_txn_conn(txn), j->d->name, &j->d->id);
}

static char *replace_once(const char *text, const char *what, const char *with)
{
    const char *at = strstr(text, what);
    if (!at)
        return xstrdup(text);
    return xasprintf("%.*s%s%s", (int) (at - text), text, with, at + strlen(what));
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-store-fill --db PATH [--count N] [--source bench/request.yaml]\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "db", required_argument, NULL, 'd' },
        { "count", required_argument, NULL, 'n' },
        { "source", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *db = NULL, *source_path = "bench/request.yaml";
    long count = 100000;
    int c;
    while ((c = getopt_long(argc, argv, "d:n:s:h", options, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 's': source_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!db || count < 1) {
        usage(stderr);
        return 2;
    }
    log_set_level(LOG_LEVEL_WARN);
    /* Every UPDATE of requests.state evaluates the partial index
     * requests_live_name (state NOT IN (3 values)), for which SQLite builds
     * and drops an ephemeral table; freeing its page cache makes glibc trim
     * the writer thread's heap (madvise), and with more than one thread
     * each trim is a TLB shootdown.  Without this the fill runs about ten
     * times slower (see bench/README.md, "Performance"). */
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);

    _cleanup_free_ char *template = NULL;
    size_t len;
    int r = read_file_limited(source_path, REQUEST_MAX_BYTES, &template, &len);
    if (r < 0) {
        fprintf(stderr, "bench-store-fill: %s: %s\n", source_path, strerror(-r));
        return 1;
    }
    char lease[16];
    time_t later = time(NULL) + 180 * 86400;
    struct tm tm;
    gmtime_r(&later, &tm);
    strftime(lease, sizeof lease, "%Y-%m-%d", &tm);
    _cleanup_free_ char *dated = replace_once(template, "__LEASE_UNTIL__", lease);

    for (size_t i = 0; i <= N_DEPARTMENTS; i++) {
        struct department *d = &depts[i];
        d->name = i < N_DEPARTMENTS ? departments[i].name : SMALL_DEPARTMENT;
        _cleanup_free_ char *line = xasprintf("department: %s", d->name);
        _cleanup_free_ char *text = replace_once(dated, "department: bench", line);
        _cleanup_free_ char *valid = replace_once(text, "name: __NAME__", "name: template");
        struct yg_error *err = NULL;
        if (request_parse(valid, strlen(valid), source_path, &d->req, &err) < 0) {
            _cleanup_free_ char *msg = err ? yg_error_format(err, source_path) : NULL;
            fprintf(stderr, "bench-store-fill: %s\n", msg ? msg : "the template does not parse");
            yg_error_free(err);
            return 1;
        }
        const char *at = strstr(text, "name: __NAME__");
        if (!at) {
            fprintf(stderr, "bench-store-fill: %s has no 'name: __NAME__' placeholder\n", source_path);
            return 1;
        }
        at += strlen("name: ");
        d->source_prefix = xstrndup(text, (size_t) (at - text));
        d->source_suffix = xstrdup(at + strlen("__NAME__"));
    }

    struct store *store = NULL;
    char *err = NULL;
    if (store_open(db, &store, &err) < 0) {
        fprintf(stderr, "bench-store-fill: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i <= N_DEPARTMENTS; i++) {
        struct setup_job j = { &depts[i] };
        if (store_run(store, setup_run, &j) < 0) {
            fprintf(stderr, "bench-store-fill: cannot create department %s\n", depts[i].name);
            return 1;
        }
    }

    int dweights[N_DEPARTMENTS], sweights[YG_ARRAY_SIZE(final_states)];
    for (size_t i = 0; i < N_DEPARTMENTS; i++)
        dweights[i] = departments[i].weight;
    for (size_t i = 0; i < YG_ARRAY_SIZE(final_states); i++)
        sweights[i] = final_states[i].weight;

    struct store_stats before;
    store_get_stats(store, &before);
    uint64_t start = monotonic_usec();
    long small_every = count / SMALL_COUNT > 0 ? count / SMALL_COUNT : 1;
    for (long i = 0; i < count; i++) {
        struct fill_job *j = xcalloc(1, sizeof *j);
        uint64_t h = mix((uint64_t) i);
        j->index = i;
        if (i % small_every == small_every / 2 && i / small_every < SMALL_COUNT) {
            j->dept = &depts[N_DEPARTMENTS];
            j->final = REQUEST_SUBMITTED;
        } else {
            j->dept = &depts[pick(h, dweights, N_DEPARTMENTS)];
            j->final = final_states[pick(h >> 20, sweights, YG_ARRAY_SIZE(final_states))].state;
        }
        store_submit(store, fill_run, fill_done, j);
    }
    store_shutdown(store);      /* runs every queued job */
    uint64_t usec = monotonic_usec() - start;
    struct store_stats after;
    store_get_stats(store, &after);
    uint64_t jobs = after.jobs - before.jobs, commits = after.commits - before.commits;
    double secs = (double) usec / 1e6;
    printf("store-fill: %ld requests in %.2f s = %.0f jobs/s through store.c (%llu commits, "
           "%.1f jobs/commit), %ld failed\n",
           count, secs, (double) jobs / secs, (unsigned long long) commits,
           commits ? (double) jobs / (double) commits : 0.0, (long) atomic_load(&failures));
    store_close(store);
    for (size_t i = 0; i <= N_DEPARTMENTS; i++) {
        request_free(depts[i].req);
        free(depts[i].source_prefix);
        free(depts[i].source_suffix);
    }
    free(err);
    return atomic_load(&failures) ? 1 : 0;
}

/* Unit tests for the controller's store, audit chain, auth, quota and
 * lifecycle, against a real SQLite file in a temp directory. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "audit.h"
#include "auth.h"
#include "lifecycle.h"
#include "quota.h"
#include "request.h"
#include "requests.h"
#include "store.h"
#include "store-schema.h"
#include "util.h"
#include "vms.h"
#include "../store-files.h"

struct fixture {
    char dir[64];
    char path[128];
    struct store *store;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/yg-unit-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/yunguan.db", f->dir);
    char *err = NULL;
    if (store_open(f->path, &f->store, &err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->store);
    test_store_files_remove(f->dir, f->path);
    free(f);
    return 0;
}

static const struct principal admin = { .token_id = 0, .role = ROLE_ADMIN, .actor = "test" };

/* ---- jobs used by the tests ---- */

struct quota_ctx {
    const char *department;
    struct quota_limits limits;
};

static int set_quota_run(struct store_txn *txn, void *ctx)
{
    struct quota_ctx *q = ctx;
    struct yg_error *e = NULL;
    int r = quota_set(txn, &admin, q->department, &q->limits, &e);
    yg_error_free(e);
    return r;
}

static void set_quota(struct store *s, const char *department, int64_t vcpus)
{
    struct quota_ctx q = { department, { { vcpus, 1 << 20, 1 << 16, 100 }, 365 } };
    assert_int_equal(store_run(s, set_quota_run, &q), 0);
}

struct submit_ctx {
    const char *yaml;
    int64_t department_id;
    int64_t id;
};

static int submit_run(struct store_txn *txn, void *ctx)
{
    struct submit_ctx *c = ctx;
    struct request *req = NULL;
    struct yg_error *e = NULL;
    if (request_parse(c->yaml, strlen(c->yaml), "t.yaml", &req, &e) < 0) {
        char *text = yg_error_format(e, "t.yaml");
        fprintf(stderr, "%s\n", text);
        free(text);
        yg_error_free(e);
        return -EINVAL;
    }
    if (quota_department_id(store_txn_conn(txn), req->department, &c->department_id) < 0) {
        request_free(req);
        return -ENOENT;
    }
    c->id = requests_insert(txn, &admin, req, c->department_id, c->yaml, &e);
    yg_error_free(e);
    request_free(req);
    return c->id < 0 ? (int) c->id : 0;
}

static char *request_yaml(const char *name, const char *department, int vcpus)
{
    return xasprintf("apiVersion: yunguan/v1\nkind: ResourceRequest\n"
                     "metadata: {name: %s, department: %s}\n"
                     "spec:\n  purpose: test\n  securityLevel: 2\n  lease: {until: 2099-01-01}\n"
                     "  network: {segment: seg-a}\n"
                     "  vms:\n    - {name: app, vcpus: %d, memory: 1GiB, disk: 10GiB, image: img}\n",
                     name, department, vcpus);
}

static int64_t submit(struct store *s, const char *name, const char *department, int vcpus)
{
    _cleanup_free_ char *yaml = request_yaml(name, department, vcpus);
    struct submit_ctx c = { .yaml = yaml };
    int r = store_run(s, submit_run, &c);
    return r < 0 ? r : c.id;
}

struct action_ctx {
    int64_t id;
    enum request_action action;
    struct principal by;
    int code;               /* HTTP status of the error, 0 on success */
};

static int action_run(struct store_txn *txn, void *ctx)
{
    struct action_ctx *a = ctx;
    struct yg_error *e = NULL;
    int r = lifecycle_apply(txn, &a->by, a->id, a->action, NULL, &e);
    a->code = e ? e->http_status : 0;
    yg_error_free(e);
    return r;
}

static int apply(struct store *s, int64_t id, enum request_action action, const struct principal *by)
{
    struct action_ctx a = { .id = id, .action = action, .by = *by };
    store_run(s, action_run, &a);
    return a.code;
}

/* ---- tests ---- */

static void test_enum_round_trips(void **state)
{
    for (int i = 0; i < REQUEST_STATE_MAX; i++)
        assert_int_equal(request_state_from_string(request_state_to_string((enum request_state) i)), i);
    for (int i = 0; i < REQUEST_ACTION_MAX; i++)
        assert_int_equal(request_action_from_string(request_action_to_string((enum request_action) i)), i);
    for (int i = 0; i < ROLE_MAX; i++)
        assert_int_equal(role_from_string(role_to_string((enum role) i)), i);
    assert_int_equal(request_state_from_string("running"), -1);
    assert_int_equal(role_from_string("root"), -1);
}

/* The SQL list of live states and request_state_is_live() must agree. */
static void test_live_states_agree(void **state)
{
    for (int i = 0; i < REQUEST_STATE_MAX; i++) {
        char quoted[40];
        snprintf(quoted, sizeof quoted, "'%s'", request_state_to_string((enum request_state) i));
        bool in_sql = strstr(REQUEST_LIVE_STATES_SQL, quoted) != NULL;
        assert_int_equal(in_sql, request_state_is_live((enum request_state) i));
    }
}

static void test_transition_table(void **state)
{
    /* Every transition is unique per (from, action) and user actions name roles. */
    for (size_t i = 0; i < request_n_transitions; i++)
        for (size_t j = i + 1; j < request_n_transitions; j++)
            assert_false(request_transitions[i].from == request_transitions[j].from &&
                         request_transitions[i].action == request_transitions[j].action);
    assert_non_null(lifecycle_find(REQUEST_SUBMITTED, REQUEST_ACTION_APPROVE));
    assert_null(lifecycle_find(REQUEST_REJECTED, REQUEST_ACTION_APPROVE));
    assert_null(lifecycle_find(REQUEST_WITHDRAWN, REQUEST_ACTION_WITHDRAW));
    const struct request_transition *t = lifecycle_find(REQUEST_SUBMITTED, REQUEST_ACTION_APPROVE);
    assert_true(t->roles & ROLE_BIT(ROLE_CLOUDOPS));
    assert_false(t->roles & ROLE_BIT(ROLE_DEPARTMENT));
}

static void test_migrations_ordered(void **state)
{
    for (size_t i = 1; i < store_n_migrations; i++)
        assert_true(store_migrations[i].version > store_migrations[i - 1].version);
    assert_int_equal(store_migrations[0].version, 1);
}

static void test_open_migrates(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_schema_version(f->store), store_latest_version());
}

/* A database made by schema version 1 is upgraded, keeping its rows. */
static void test_upgrade_from_v1(void **state)
{
    char dir[] = "/tmp/yg-unit-v1-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96];
    snprintf(path, sizeof path, "%s/old.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, store_migrations[0].sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
        "PRAGMA user_version=1;"
        "INSERT INTO departments (id, name, created_at) VALUES (1, 'health', '2026-01-01');"
        "INSERT INTO quotas VALUES (1, 8, 8192, 100, 4, 365);", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct store *s;
    char *err = NULL;
    assert_int_equal(store_open(path, &s, &err), 0);
    assert_int_equal(store_schema_version(s), store_latest_version());
    struct store_conn *r = store_reader(s);
    int64_t id;
    assert_int_equal(quota_department_id(r, "health", &id), 0);
    assert_int_equal(id, 1);
    int64_t rid = submit(s, "after-upgrade", "health", 2);
    assert_true(rid > 0);
    json_t *v = audit_verify(r);
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_decref(v);
    store_close(s);

    /* Opening again applies nothing and keeps the version. */
    assert_int_equal(store_open(path, &s, &err), 0);
    assert_int_equal(store_schema_version(s), store_latest_version());
    store_close(s);

    /* A newer database than this program knows is refused, untouched. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_true(store_open(path, &s, &err) < 0);
    assert_non_null(strstr(err, "newer"));
    free(err);

    test_store_files_remove(dir, path);
}

static int failing_run(struct store_txn *txn, void *ctx)
{
    /* Writes, then fails: its write must vanish, others must stay. */
    sqlite3_exec(store_conn_db(store_txn_conn(txn)),
                 "INSERT INTO departments (name, created_at) VALUES ('ghost', 'x')", NULL, NULL, NULL);
    audit_append(txn, "test", "admin", "ghost.create", "department/ghost", NULL, NULL);
    return -EINVAL;
}

struct thread_arg {
    struct store *s;
    int index;
    int64_t id;
    bool fail;
};

static void *submit_thread(void *p)
{
    struct thread_arg *a = p;
    if (a->fail) {
        a->id = store_run(a->s, failing_run, NULL);
    } else {
        char name[32];
        snprintf(name, sizeof name, "req-%d", a->index);
        a->id = submit(a->s, name, "health", 1);
    }
    return NULL;
}

/* Many writers at once: grouped into fewer commits, a failing job rolls
 * back only itself, and the audit chain stays intact. */
static void test_group_commit_isolation(void **state)
{
    struct fixture *f = *state;
    set_quota(f->store, "health", 64);
    enum { N = 64 };
    pthread_t threads[N];
    struct thread_arg args[N];
    struct store_stats before, after;
    store_get_stats(f->store, &before);
    for (int i = 0; i < N; i++) {
        args[i] = (struct thread_arg) { .s = f->store, .index = i, .fail = i % 8 == 3 };
        pthread_create(&threads[i], NULL, submit_thread, &args[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(threads[i], NULL);
    store_get_stats(f->store, &after);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        if (args[i].fail)
            assert_int_equal(args[i].id, -EINVAL);
        else {
            assert_true(args[i].id > 0);
            ok++;
        }
    }
    assert_int_equal(after.jobs - before.jobs, N);
    struct store_conn *r = store_reader(f->store);
    int64_t ghost;
    assert_int_equal(quota_department_id(r, "ghost", &ghost), -ENOENT);
    json_t *page = requests_list_json(r, 0, -1, 0, 500);
    assert_int_equal(json_array_size(json_object_get(page, "items")), ok);
    json_decref(page);
    json_t *v = audit_verify(r);
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_decref(v);
}

static void test_lifecycle_and_quota(void **state)
{
    struct fixture *f = *state;
    set_quota(f->store, "health", 4);
    set_quota(f->store, "police", 4);
    struct principal ops = { .token_id = 2, .role = ROLE_CLOUDOPS, .actor = "token:2" };
    struct principal dept = { .token_id = 3, .role = ROLE_DEPARTMENT, .actor = "token:3" };
    struct principal other = { .token_id = 4, .role = ROLE_DEPARTMENT, .actor = "token:4" };
    struct store_conn *r = store_reader(f->store);
    assert_int_equal(quota_department_id(r, "health", &dept.department_id), 0);
    assert_int_equal(quota_department_id(r, "police", &other.department_id), 0);

    int64_t a = submit(f->store, "a", "health", 3);
    int64_t b = submit(f->store, "b", "health", 3);
    assert_true(a > 0 && b > 0);
    /* The same live name again is a conflict. */
    assert_int_equal(submit(f->store, "a", "health", 1), -EEXIST);

    assert_int_equal(apply(f->store, a, REQUEST_ACTION_APPROVE, &dept), 403);
    assert_int_equal(apply(f->store, a, REQUEST_ACTION_APPROVE, &other), 404);
    assert_int_equal(apply(f->store, a, REQUEST_ACTION_WITHDRAW, &other), 404);
    assert_int_equal(apply(f->store, a, REQUEST_ACTION_APPROVE, &ops), 0);
    /* 3 + 3 > 4: the second approval is refused. */
    assert_int_equal(apply(f->store, b, REQUEST_ACTION_APPROVE, &ops), 409);
    assert_int_equal(apply(f->store, a, REQUEST_ACTION_APPROVE, &ops), 409);   /* illegal now */

    struct quota_amounts usage;
    assert_int_equal(quota_usage(r, dept.department_id, &usage), 0);
    assert_int_equal(usage.vcpus, 3);
    /* Withdrawing the approved one credits the quota back; b then fits. */
    assert_int_equal(apply(f->store, a, REQUEST_ACTION_WITHDRAW, &dept), 0);
    assert_int_equal(quota_usage(r, dept.department_id, &usage), 0);
    assert_int_equal(usage.vcpus, 0);
    assert_int_equal(apply(f->store, b, REQUEST_ACTION_APPROVE, &ops), 0);
    /* The name of a withdrawn request can be used again. */
    assert_true(submit(f->store, "a", "health", 1) > 0);

    json_t *req = requests_get_json(r, b, true, NULL);
    json_t *transitions = json_object_get(req, "transitions");
    assert_int_equal(json_array_size(transitions), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(transitions, 1), "to")),
                        "approved");
    json_decref(req);
}

/* Approvals racing for the last quota: run from many threads at once so
 * they land in the same commit group; exactly one may win. */
struct race_arg {
    struct store *s;
    int64_t id;
    struct principal by;
    int code;
};

static void *approve_thread(void *p)
{
    struct race_arg *a = p;
    a->code = apply(a->s, a->id, REQUEST_ACTION_APPROVE, &a->by);
    return NULL;
}

static void test_approval_race(void **state)
{
    struct fixture *f = *state;
    set_quota(f->store, "health", 4);
    struct principal ops = { .token_id = 2, .role = ROLE_CLOUDOPS, .actor = "token:2" };
    enum { N = 8 };
    struct race_arg args[N];
    pthread_t threads[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "race-%d", i);
        args[i] = (struct race_arg) { .s = f->store, .id = submit(f->store, name, "health", 3), .by = ops };
        assert_true(args[i].id > 0);
    }
    for (int i = 0; i < N; i++)
        pthread_create(&threads[i], NULL, approve_thread, &args[i]);
    int won = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(threads[i], NULL);
        won += args[i].code == 0;
        refused += args[i].code == 409;
    }
    assert_int_equal(won, 1);
    assert_int_equal(refused, N - 1);
    struct quota_amounts usage;
    int64_t dept;
    struct store_conn *r = store_reader(f->store);
    assert_int_equal(quota_department_id(r, "health", &dept), 0);
    assert_int_equal(quota_usage(r, dept, &usage), 0);
    assert_int_equal(usage.vcpus, 3);
}

/* The audit trail's hand-written JSON is what jansson writes for the same
 * value (compact, keys sorted, ASCII only), byte for byte: the trail's
 * form must not change with the writer.  Random values of every kind
 * (nested objects and arrays, every escape, UTF-8 of 1 to 4 bytes, integer
 * extremes, reals that go to jansson), from a fixed seed. */
static const char *const json_pieces[] = {
    "a", "Z", "0", " ", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f", "\x7f",
    "\xc3\xa9", "\xe4\xba\x91", "\xef\xbf\xbf", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "key", "~",
};

static json_t *random_json(unsigned *seed, int depth)
{
    int kind = rand_r(seed) % (depth > 3 ? 6 : 8);
    switch (kind) {
    case 0: {
        char text[64] = "";
        for (int n = rand_r(seed) % 6; n > 0; n--)
            strcat(text, json_pieces[rand_r(seed) % YG_ARRAY_SIZE(json_pieces)]);
        return json_string(text);
    }
    case 1: {
        static const json_int_t ints[] = { 0, -1, 7, 1000000007, INT64_MAX, INT64_MIN };
        return json_integer(ints[rand_r(seed) % YG_ARRAY_SIZE(ints)]);
    }
    case 2: return json_true();
    case 3: return json_false();
    case 4: return json_null();
    case 5: return rand_r(seed) % 4 == 0 ? json_real(0.1 * rand_r(seed)) : json_string("plain");
    case 6: {
        json_t *a = json_array();
        for (int n = rand_r(seed) % 4; n > 0; n--)
            json_array_append_new(a, random_json(seed, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (int n = rand_r(seed) % 5; n > 0; n--) {
            char key[32] = "";
            for (int k = 1 + rand_r(seed) % 3; k > 0; k--)
                strcat(key, json_pieces[rand_r(seed) % YG_ARRAY_SIZE(json_pieces)]);
            json_object_set_new(o, key, random_json(seed, depth + 1));
        }
        return o;
    }
    }
}

static void test_audit_json_text(void **state)
{
    (void) state;
    const int flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII;
    unsigned seed = 20261126;
    for (int i = 0; i < 3000; i++) {
        json_t *j = random_json(&seed, 0);
        char *mine = audit_json_text(j);
        char *theirs = json_dumps(j, flags | JSON_ENCODE_ANY);
        assert_non_null(mine);
        assert_string_equal(mine, theirs);
        free(mine);
        free(theirs);
        /* The same with the move's own keys set over an object. */
        if (json_is_object(j)) {
            const char *step = i % 3 == 0 ? NULL : json_pieces[i % YG_ARRAY_SIZE(json_pieces)];
            const char *pairs[] = { "state", "running", "step", step, "key", "over\xe4\xba\x91" };
            mine = audit_json_text_with(j, pairs, 3);
            json_t *copy = json_deep_copy(j);
            for (size_t k = 0; k < 3; k++)
                if (pairs[2 * k + 1])
                    json_object_set_new(copy, pairs[2 * k], json_string(pairs[2 * k + 1]));
            theirs = json_dumps(copy, flags);
            assert_string_equal(mine, theirs);
            free(mine);
            free(theirs);
            json_decref(copy);
        }
        json_decref(j);
    }
    /* An object too big for the insertion sort. */
    json_t *big = json_object();
    for (int i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", (i * 37) % 40);
        json_object_set_new(big, key, json_integer(i));
    }
    char *mine = audit_json_text(big);
    char *theirs = json_dumps(big, flags);
    assert_string_equal(mine, theirs);
    free(mine);
    free(theirs);
    json_decref(big);
    assert_null(audit_json_text(NULL));
    const char *none[] = { "state", NULL };
    char *empty = audit_json_text_with(NULL, none, 1);
    assert_string_equal(empty, "{}");
    free(empty);
}

/* STORE_JOB_WRITES_LAST: such a job runs without a savepoint.  Refusing
 * before it writes takes nothing else with it; failing after writing
 * rolls its whole group back (every job in it fails with -EIO), so
 * nothing is half-written. */
struct wl_job {
    const char *key;            /* written to settings, NULL: nothing */
    bool end_transaction;       /* ends the transaction, as SQLite does on an I/O error */
    int result;                 /* what RUN returns */
    int done_result;
    bool ran, finished;
    sem_t *hold;                /* the blocker: wait here */
};

static int wl_run(struct store_txn *txn, void *ctx)
{
    struct wl_job *j = ctx;
    __atomic_store_n(&j->ran, true, __ATOMIC_SEQ_CST);
    if (j->hold)
        sem_wait(j->hold);
    if (j->end_transaction)
        sqlite3_exec(store_conn_db(store_txn_conn(txn)), "ROLLBACK", NULL, NULL, NULL);
    if (j->key) {
        sqlite3_stmt *st = store_stmt(store_txn_conn(txn), "INSERT INTO settings (key, value) VALUES (?1, 'x')");
        store_bind_text(st, 1, j->key);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return -EIO;
    }
    return j->result;
}

static void wl_done(void *ctx, int result)
{
    struct wl_job *j = ctx;
    j->done_result = result;
    __atomic_store_n(&j->finished, true, __ATOMIC_SEQ_CST);
}

static int64_t settings_count(struct store *s, const char *key)
{
    sqlite3_stmt *st = store_stmt(store_reader(s), "SELECT count(*) FROM settings WHERE key = ?1");
    store_bind_text(st, 1, key);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    return n;
}

/* Waits (at most 20 s: a stuck writer fails the test, not hangs it) for FLAG. */
static void wait_flag(bool *flag)
{
    for (int i = 0; i < 20000 && !__atomic_load_n(flag, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    assert_true(__atomic_load_n(flag, __ATOMIC_SEQ_CST));
}

/* Runs JOBS as one group: a blocker holds the writer while they queue. */
static void wl_group(struct store *s, struct wl_job *jobs, const unsigned *flags, size_t n)
{
    sem_t hold;
    sem_init(&hold, 0, 0);
    struct wl_job blocker = { .hold = &hold };
    store_submit(s, wl_run, wl_done, &blocker);
    wait_flag(&blocker.ran);
    for (size_t i = 0; i < n; i++)
        store_submit_flags(s, wl_run, wl_done, &jobs[i], flags[i]);
    sem_post(&hold);
    for (size_t i = 0; i < n; i++)
        wait_flag(&jobs[i].finished);
    wait_flag(&blocker.finished);
    sem_destroy(&hold);
}

static void test_writes_last_jobs(void **state)
{
    struct fixture *f = *state;
    const unsigned flags[] = { 0, STORE_JOB_WRITES_LAST, STORE_JOB_WRITES_LAST, 0 };
    struct wl_job ok[] = {
        { .key = "wl-a" },
        { .result = -EINVAL },                    /* refuses before writing */
        { .key = "wl-c" },
        { .key = "wl-d", .result = -EPERM },      /* with a savepoint: only its own row goes */
    };
    wl_group(f->store, ok, flags, 4);
    assert_int_equal(ok[0].done_result, 0);
    assert_int_equal(ok[1].done_result, -EINVAL);
    assert_int_equal(ok[2].done_result, 0);
    assert_int_equal(ok[3].done_result, -EPERM);
    assert_int_equal(settings_count(f->store, "wl-a"), 1);
    assert_int_equal(settings_count(f->store, "wl-c"), 1);
    assert_int_equal(settings_count(f->store, "wl-d"), 0);

    struct wl_job bad[] = {
        { .key = "wl-e" },
        { .key = "wl-f", .result = -EIO },        /* fails after writing, no savepoint */
        { .key = "wl-g" },
        { .key = "wl-h" },
    };
    wl_group(f->store, bad, flags, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(bad[i].done_result, -EIO);
    assert_false(bad[2].ran);                      /* nothing runs after it in the group */
    for (int i = 0; i < 4; i++)
        assert_int_equal(settings_count(f->store, bad[i].key), 0);
    /* The store goes on: the next group commits. */
    struct wl_job after[] = { { .key = "wl-i" } };
    wl_group(f->store, after, flags + 1, 1);
    assert_int_equal(after[0].done_result, 0);
    assert_int_equal(settings_count(f->store, "wl-i"), 1);

    /* SQLite ends the transaction under a job (an I/O error can): the
     * jobs after it must not run outside it, committed one by one. */
    struct wl_job gone[] = { { .key = "wl-j" }, { .end_transaction = true }, { .key = "wl-k" } };
    wl_group(f->store, gone, flags, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gone[i].done_result, -EIO);
    assert_int_equal(settings_count(f->store, "wl-j"), 0);
    assert_int_equal(settings_count(f->store, "wl-k"), 0);
    struct wl_job again[] = { { .key = "wl-l" } };
    wl_group(f->store, again, flags, 1);
    assert_int_equal(again[0].done_result, 0);
    assert_int_equal(settings_count(f->store, "wl-l"), 1);
}

static void test_audit_tamper(void **state)
{
    struct fixture *f = *state;
    set_quota(f->store, "health", 64);
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        assert_true(submit(f->store, name, "health", 1) > 0);
    }
    struct store_conn *r = store_reader(f->store);
    json_t *v = audit_verify(r);
    assert_true(json_is_true(json_object_get(v, "ok")));
    int64_t entries = json_integer_value(json_object_get(v, "entries"));
    assert_true(entries >= 8);
    json_decref(v);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    /* Altered. */
    assert_int_equal(sqlite3_exec(db, "UPDATE audit SET actor = 'mallory' WHERE id = 4", NULL, NULL, NULL), SQLITE_OK);
    v = audit_verify(r);
    assert_false(json_is_true(json_object_get(v, "ok")));
    json_t *p = json_array_get(json_object_get(v, "problems"), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "id")), 4);
    assert_string_equal(json_string_value(json_object_get(p, "problem")), "altered");
    json_decref(v);
    assert_int_equal(sqlite3_exec(db, "UPDATE audit SET actor = 'test' WHERE id = 4", NULL, NULL, NULL), SQLITE_OK);
    v = audit_verify(r);
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_decref(v);

    /* Reordered: swap the content of entries 5 and 6. */
    assert_int_equal(sqlite3_exec(db,
        "UPDATE audit SET id = -5 WHERE id = 5; UPDATE audit SET id = 5 WHERE id = 6;"
        "UPDATE audit SET id = 6 WHERE id = -5;", NULL, NULL, NULL), SQLITE_OK);
    v = audit_verify(r);
    assert_false(json_is_true(json_object_get(v, "ok")));
    p = json_array_get(json_object_get(v, "problems"), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "id")), 5);
    assert_string_equal(json_string_value(json_object_get(p, "problem")), "reordered");
    json_decref(v);
    assert_int_equal(sqlite3_exec(db,
        "UPDATE audit SET id = -5 WHERE id = 5; UPDATE audit SET id = 5 WHERE id = 6;"
        "UPDATE audit SET id = 6 WHERE id = -5;", NULL, NULL, NULL), SQLITE_OK);

    /* Deleted in the middle, and at the end. */
    assert_int_equal(sqlite3_exec(db, "DELETE FROM audit WHERE id = 3", NULL, NULL, NULL), SQLITE_OK);
    v = audit_verify(r);
    p = json_array_get(json_object_get(v, "problems"), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "id")), 3);
    assert_string_equal(json_string_value(json_object_get(p, "problem")), "deleted");
    json_decref(v);
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM audit WHERE id = %lld", (long long) entries);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    v = audit_verify(r);
    size_t n = json_array_size(json_object_get(v, "problems"));
    p = json_array_get(json_object_get(v, "problems"), n - 1);
    assert_int_equal(json_integer_value(json_object_get(p, "id")), entries);
    assert_string_equal(json_string_value(json_object_get(p, "problem")), "deleted");
    json_decref(v);
    sqlite3_close(db);
}

struct token_made {
    char *secret;
    int64_t id;
};

static int token_create_run(struct store_txn *txn, void *ctx)
{
    struct token_made *made = ctx;
    made->id = auth_token_create(txn, &admin, ROLE_ADMIN, 0, "t", &made->secret);
    return made->id < 0 ? (int) made->id : 0;
}

static void test_tokens(void **state)
{
    struct fixture *f = *state;
    struct store_conn *r = store_reader(f->store);
    assert_false(auth_have_admin(r));
    struct token_made made = { 0 };
    assert_int_equal(store_run(f->store, token_create_run, &made), 0);
    assert_true(auth_have_admin(r));
    assert_int_equal(strncmp(made.secret, "yg_", 3), 0);
    assert_int_equal(strlen(made.secret), 46);
    struct principal p;
    assert_int_equal(auth_lookup(r, made.secret, &p), 0);
    assert_int_equal(p.role, ROLE_ADMIN);
    assert_int_equal(p.token_id, made.id);
    assert_int_equal(auth_lookup(r, "yg_not-a-real-token-at-all", &p), -ENOENT);

    /* The secret itself is nowhere in the database file. */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM tokens WHERE secret_sha256 = ?1",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, made.secret, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);

    /* The API's principal cache: a hit needs no query, so a revocation
     * made behind its back is seen only once the cache is invalidated
     * (the API does that right after committing a revocation). */
    struct auth_cache *cache = auth_cache_new();
    struct principal cached;
    assert_int_equal(auth_lookup_cached(cache, r, made.secret, &cached), 0);
    assert_int_equal(cached.token_id, made.id);
    assert_int_equal(cached.role, ROLE_ADMIN);
    assert_int_equal(auth_lookup_cached(cache, r, "yg_not-a-real-token-at-all", &cached), -ENOENT);
    assert_int_equal(auth_lookup_cached(cache, r, "short", &cached), -ENOENT);

    assert_int_equal(sqlite3_exec(db, "UPDATE tokens SET revoked_at = 'now'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(auth_lookup(r, made.secret, &p), -ENOENT);
    assert_int_equal(auth_lookup_cached(cache, r, made.secret, &cached), 0);   /* still cached */
    auth_cache_invalidate(cache);
    assert_int_equal(auth_lookup_cached(cache, r, made.secret, &cached), -ENOENT);
    auth_cache_free(cache);
    free(made.secret);
}

/* The submission's 201 answer is built from the parsed request, not read
 * back: it must be exactly what GET returns for the stored row. */
struct answer_ctx {
    struct request *req;
    char at[32];
    int64_t id;
};

static int insert_at_run(struct store_txn *txn, void *ctx)
{
    struct answer_ctx *c = ctx;
    struct yg_error *e = NULL;
    int64_t department_id;
    if (quota_department_id(store_txn_conn(txn), c->req->department, &department_id) < 0)
        return -ENOENT;
    format_utc_now(c->at);
    c->id = requests_insert_at(txn, &admin, c->req, department_id, "source", c->at, &e);
    yg_error_free(e);
    return c->id < 0 ? (int) c->id : 0;
}

static void test_submitted_json_matches_row(void **state)
{
    struct fixture *f = *state;
    set_quota(f->store, "health", 64);
    static const char yaml[] =
        "apiVersion: yunguan/v1\nkind: ResourceRequest\n"
        "metadata: {name: answer, department: health}\n"
        "spec:\n  purpose: \"  \u533b\u7597 records, two groups  \"\n  securityLevel: 3\n"
        "  lease: {until: 2099-01-01}\n  network: {segment: seg-a, ipv6: required}\n"
        "  vms:\n    - {name: app, count: 3, vcpus: 2, memory: 1536MiB, disk: 1TiB, image: img-a}\n"
        "    - {name: db, vcpus: 8, memory: 64GiB, disk: 40GiB, image: img-b}\n";
    struct answer_ctx c = { 0 };
    struct yg_error *e = NULL;
    assert_int_equal(request_parse(yaml, strlen(yaml), "t.yaml", &c.req, &e), 0);
    assert_int_equal(store_run(f->store, insert_at_run, &c), 0);
    json_t *built = requests_submitted_json(c.req, c.id, admin.actor, c.at);
    json_t *read = requests_get_json(store_reader(f->store), c.id, false, NULL);
    assert_non_null(built);
    assert_non_null(read);
    char *a = json_dumps(built, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *b = json_dumps(read, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(built);
    json_decref(read);

    /* The answer's text, written without jansson, is what jansson writes,
     * with every character class that needs escaping and warnings. */
    const char *purposes[] = { c.req->purpose, "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f \u533b\u7597 end", "" };
    json_t *warning_sets[] = { json_array(), json_pack("[s]", "one \"warning\""),
                               json_pack("[s, s]", "a", "b\nc") };
    char *original_purpose = c.req->purpose;
    for (size_t i = 0; i < YG_ARRAY_SIZE(purposes); i++)
        for (size_t w = 0; w < YG_ARRAY_SIZE(warning_sets); w++) {
            c.req->purpose = (char *) purposes[i];
            json_t *tree = json_pack("{s:o, s:O}", "request",
                                     requests_submitted_json(c.req, c.id, admin.actor, c.at),
                                     "warnings", warning_sets[w]);
            char *want = json_dumps(tree, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            char *got = requests_submitted_answer(c.req, c.id, admin.actor, c.at, warning_sets[w]);
            assert_string_equal(got, want);
            free(want);
            free(got);
            json_decref(tree);
        }
    c.req->purpose = original_purpose;
    for (size_t w = 0; w < YG_ARRAY_SIZE(warning_sets); w++)
        json_decref(warning_sets[w]);
    request_free(c.req);
}

/* The writer's WAL goes through store-walbuf.c: commits far larger than
 * its buffer and than one write of the unix VFS (128 KiB), and many small
 * ones, reach a reader and the file intact. */
struct walbuf_ctx {
    int rows, row_bytes;
    char *vfs_name;
};

static int walbuf_fill_run(struct store_txn *txn, void *ctx)
{
    struct walbuf_ctx *c = ctx;
    sqlite3 *db = store_conn_db(store_txn_conn(txn));
    if (!c->vfs_name)
        sqlite3_file_control(db, "main", SQLITE_FCNTL_VFSNAME, &c->vfs_name);
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS walbuf_test (x BLOB)", NULL, NULL, NULL))
        return -EIO;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO walbuf_test VALUES (randomblob(?1))", -1, &st, NULL))
        return -EIO;
    int rc = SQLITE_DONE;
    for (int i = 0; i < c->rows && rc == SQLITE_DONE; i++) {
        sqlite3_bind_int(st, 1, c->row_bytes);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static int64_t count_rows(struct store_conn *r)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(store_conn_db(r), "SELECT count(*) FROM walbuf_test",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void test_walbuf_commits(void **state)
{
    struct fixture *f = *state;
    struct walbuf_ctx big = { .rows = 3000, .row_bytes = 700 };    /* ~2.5 MB of frames */
    assert_int_equal(store_run(f->store, walbuf_fill_run, &big), 0);
    assert_non_null(big.vfs_name);
    assert_non_null(strstr(big.vfs_name, "yunguan-walbuf"));
    sqlite3_free(big.vfs_name);
    struct store_conn *r = store_reader(f->store);
    assert_int_equal(count_rows(r), 3000);
    /* 32 pages of frames: exactly 128 KiB + 32 headers at a time. */
    for (int i = 0; i < 200; i++) {
        struct walbuf_ctx small = { .rows = 1 + i % 40, .row_bytes = 4000 };
        assert_int_equal(store_run(f->store, walbuf_fill_run, &small), 0);
        sqlite3_free(small.vfs_name);
    }
    int64_t expected = 3000;
    for (int i = 0; i < 200; i++)
        expected += 1 + i % 40;
    assert_int_equal(count_rows(r), expected);
    store_close(f->store);
    f->store = NULL;

    /* What was committed is in the file, consistent, for a plain connection. */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *) sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM walbuf_test", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), expected);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enum_round_trips),
        cmocka_unit_test(test_live_states_agree),
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test(test_migrations_ordered),
        cmocka_unit_test(test_upgrade_from_v1),
        cmocka_unit_test(test_audit_json_text),
        cmocka_unit_test_setup_teardown(test_open_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_last_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_and_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_approval_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submitted_json_matches_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walbuf_commits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Playbook runs (controller/playbook-run.c) on a real SQLite file: canary
 * then batches, stop at the first failure, unknown after the timeout,
 * cancel, repeated results, roles, render failures, a restart mid-run.
 * Time is passed in (NOW), never read from the clock. */
#include <config.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

#include "audit.h"
#include "auth.h"
#include "playbook.h"
#include "playbook-run.h"
#include "store.h"
#include "util.h"
#include "../store-files.h"

static const int64_t T0 = 1900000000;
#define TIMEOUT 120

static const char playbook_text[] =
    "apiVersion: yunguan/v1\n"
    "kind: Playbook\n"
    "metadata:\n"
    "  name: enable-dual-stack\n"
    "  description: test playbook\n"
    "steps:\n"
    "  - name: enable ipv6\n"
    "    action: sysctl.set\n"
    "    args: {key: \"net/ipv6/conf/{{iface}}/disable_ipv6\", value: \"0\"}\n"
    "  - name: address\n"
    "    action: address.add\n"
    "    args: {address: \"{{plan.ipv6_cidr}}\"}\n";

struct fixture {
    char dir[64], path[128];
    struct store *store;
    struct playbook *pb;
    int64_t woken[64];
    size_t n_woken;
};

static void on_wake(int64_t host_id, void *data)
{
    struct fixture *f = data;
    if (f->n_woken < YG_ARRAY_SIZE(f->woken))
        f->woken[f->n_woken++] = host_id;
}

static int open_store(struct fixture *f)
{
    char *err = NULL;
    int r = store_open(f->path, &f->store, &err);
    free(err);
    return r;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/yg-pbrun-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/y.db", f->dir);
    if (open_store(f) < 0)
        return -1;
    playbook_run_configure(PLAYBOOK_BATCH_SIZE_DEFAULT, TIMEOUT);
    playbook_run_set_judging_since(0);
    playbook_run_set_wake(on_wake, f);
    /* health-dmz: four hosts with IPv6 plans; police-lan: v4-only, one
     * host without an IPv6 address to render. */
    sqlite3 *db;
    sqlite3_open(f->path, &db);
    int rc = sqlite3_exec(db,
        "INSERT INTO segments (id, name, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, interface,"
        "  state_since, created_at, updated_at) VALUES"
        " (1, 'health-dmz', '198.51.100.0/24', '198.51.100.1', '2001:db8:10::/64', '2001:db8:10::1', 'br0',"
        "  'x', 'x', 'x'),"
        " (2, 'police-lan', '203.0.113.0/24', '203.0.113.1', NULL, NULL, 'br1', 'x', 'x', 'x');"
        "INSERT INTO hosts (id, name, created_at) VALUES (1, 'hv01', 'x'), (2, 'hv02', 'x'), (3, 'hv03', 'x'),"
        "  (4, 'hv04', 'x'), (5, 'hv05', 'x');"
        "INSERT INTO host_segments (host_id, segment_id, ipv4_address, ipv6_address) VALUES"
        " (1, 1, '198.51.100.21', '2001:db8:10::21'), (2, 1, '198.51.100.22', '2001:db8:10::22'),"
        " (3, 1, '198.51.100.23', '2001:db8:10::23'), (4, 1, '198.51.100.24', '2001:db8:10::24'),"
        " (5, 2, '203.0.113.25', NULL);",
        NULL, NULL, NULL);
    sqlite3_close(db);
    if (rc != SQLITE_OK)
        return -1;
    struct yg_error *e = NULL;
    if (playbook_parse(playbook_text, strlen(playbook_text), "test.yaml", &f->pb, &e) < 0) {
        char *text = yg_error_format(e, "test.yaml");
        fprintf(stderr, "%s\n", text);
        free(text);
        yg_error_free(e);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    playbook_run_set_wake(NULL, NULL);
    store_close(f->store);
    playbook_free(f->pb);
    test_store_files_remove(f->dir, f->path);
    free(f);
    return 0;
}

static struct principal person(enum role role)
{
    struct principal p = { .token_id = 1, .role = role };
    snprintf(p.actor, sizeof p.actor, "token:%d", 10 + (int) role);
    return p;
}

static struct principal agent(int64_t host_id)
{
    struct principal p = { .token_id = 100 + host_id, .role = ROLE_AGENT, .host_id = host_id };
    snprintf(p.actor, sizeof p.actor, "token:%d", 100 + (int) host_id);
    return p;
}

/* ---- jobs ---- */

struct create_ctx {
    struct principal by;
    struct playbook_run_request req;
    int64_t now, run_id;
    struct yg_error *error;
};

static int create_run(struct store_txn *txn, void *ctx)
{
    struct create_ctx *c = ctx;
    return playbook_run_create(txn, &c->by, &c->req, c->now, &c->run_id, &c->error);
}

/* Make a run; returns its id, or the negative result with *ret_status the
 * error's HTTP status. */
static int64_t create(struct fixture *f, enum role role, const char *segment, enum playbook_mode mode,
                      int batch_size, const char *canary, int64_t now, int *ret_status)
{
    struct create_ctx c = {
        .by = person(role), .now = now,
        .req = { .playbook = f->pb, .text = playbook_text, .text_len = strlen(playbook_text),
                 .segment = segment, .mode = mode, .batch_size = batch_size, .canary = canary },
    };
    int r = store_run(f->store, create_run, &c);
    if (ret_status)
        *ret_status = c.error ? c.error->http_status : 0;
    if (r < 0 && !ret_status && c.error) {
        char *text = yg_error_format(c.error, NULL);
        fprintf(stderr, "create: %s\n", text);
        free(text);
    }
    yg_error_free(c.error);
    return r < 0 ? r : c.run_id;
}

struct fetch_ctx {
    struct principal by;
    int64_t now;
    json_t *tasks;
};

static int fetch_run(struct store_txn *txn, void *ctx)
{
    struct fetch_ctx *c = ctx;
    return playbook_tasks_fetch(txn, &c->by, c->now, 8, &c->tasks);
}

/* HOST's fetchable tasks (now marked sent). */
static json_t *fetch(struct fixture *f, int64_t host_id, int64_t now)
{
    struct fetch_ctx c = { .by = agent(host_id), .now = now };
    assert_int_equal(store_run(f->store, fetch_run, &c), 0);
    assert_non_null(c.tasks);
    return c.tasks;
}

/* Fetch HOST's one task and return its id. */
static int64_t fetch_one(struct fixture *f, int64_t host_id, int64_t now)
{
    json_t *tasks = fetch(f, host_id, now);
    assert_int_equal(json_array_size(tasks), 1);
    int64_t id = json_integer_value(json_object_get(json_array_get(tasks, 0), "id"));
    json_decref(tasks);
    return id;
}

struct report_ctx {
    struct principal by;
    int64_t task, now;
    json_t *body;
    bool final, accepted;
    struct yg_error *error;
};

static int report_run(struct store_txn *txn, void *ctx)
{
    struct report_ctx *c = ctx;
    return playbook_task_report(txn, &c->by, c->task, c->body, c->final, c->now, &c->accepted, &c->error);
}

/* Report STATUS for TASK from HOST; returns the job's result, *ret_accepted. */
static int report(struct fixture *f, int64_t host_id, int64_t task, const char *status, bool final,
                  int64_t now, bool *ret_accepted)
{
    json_t *body = json_pack("{s:s, s:b, s:b, s:s, s:[{s:i, s:s, s:s, s:s, s:s, s:i}]}",
        "status", status, "rolled_back", streq(status, "failed"), "rollback_ok", true,
        "message", streq(status, "failed") ? "step 1 failed; rolled back" : "done",
        "steps", "index", 0, "name", "enable ipv6", "status", streq(status, "failed") ? "undone" : "changed",
        "before", "1", "after", "0", "duration_us", 412);
    struct yg_error *e = playbook_task_report_check(body, final);
    assert_null(e);
    struct report_ctx c = { .by = agent(host_id), .task = task, .now = now, .body = body, .final = final };
    int r = store_run(f->store, report_run, &c);
    if (ret_accepted)
        *ret_accepted = c.accepted;
    yg_error_free(c.error);
    json_decref(body);
    return r;
}

static void result_ok(struct fixture *f, int64_t host_id, int64_t task, const char *status, int64_t now)
{
    bool accepted = false;
    assert_int_equal(report(f, host_id, task, status, true, now, &accepted), 0);
    assert_true(accepted);
}

struct sweep_ctx {
    int64_t now;
};

static int sweep_run(struct store_txn *txn, void *ctx)
{
    return playbook_run_sweep(txn, ((struct sweep_ctx *) ctx)->now);
}

static void sweep(struct fixture *f, int64_t now)
{
    struct sweep_ctx c = { now };
    assert_int_equal(store_run(f->store, sweep_run, &c), 0);
}

struct cancel_ctx {
    struct principal by;
    int64_t run;
    struct yg_error *error;
};

static int cancel_run(struct store_txn *txn, void *ctx)
{
    struct cancel_ctx *c = ctx;
    return playbook_run_cancel(txn, &c->by, c->run, T0, &c->error);
}

static int cancel(struct fixture *f, enum role role, int64_t run, int *ret_status)
{
    struct cancel_ctx c = { .by = person(role), .run = run };
    int r = store_run(f->store, cancel_run, &c);
    *ret_status = c.error ? c.error->http_status : 0;
    yg_error_free(c.error);
    return r;
}

/* ---- reading back ---- */

static json_t *run_json(struct fixture *f, int64_t run)
{
    json_t *j = playbook_run_json(store_reader(f->store), run);
    assert_non_null(j);
    return j;
}

static const char *run_state(json_t *run) { return json_string_value(json_object_get(run, "state")); }

static const char *host_state(json_t *run, const char *host)
{
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(run, "hosts"), i, h)
        if (streq(json_string_value(json_object_get(h, "host")), host))
            return json_string_value(json_object_get(h, "state"));
    fail_msg("host %s is not in the run", host);
    return NULL;
}

static void assert_states(struct fixture *f, int64_t run, const char *want_run, const char *hv01,
                          const char *hv02, const char *hv03, const char *hv04)
{
    json_t *j = run_json(f, run);
    assert_string_equal(run_state(j), want_run);
    assert_string_equal(host_state(j, "hv01"), hv01);
    assert_string_equal(host_state(j, "hv02"), hv02);
    assert_string_equal(host_state(j, "hv03"), hv03);
    assert_string_equal(host_state(j, "hv04"), hv04);
    json_decref(j);
}

static int64_t count_sql(struct fixture *f, const char *sql)
{
    sqlite3_stmt *st = store_stmt(store_reader(f->store), sql);
    assert_non_null(st);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return n;
}

static size_t n_tasks(struct fixture *f, int64_t host_id, int64_t now)
{
    json_t *tasks = fetch(f, host_id, now);
    size_t n = json_array_size(tasks);
    json_decref(tasks);
    return n;
}

/* ---- tests ---- */

static void test_names(void **state)
{
    (void) state;
    for (int s = 0; s < _PLAYBOOK_RUN_STATE_MAX; s++)
        assert_int_equal(playbook_run_state_from_string(playbook_run_state_to_string(s)), s);
    for (int s = 0; s < _PLAYBOOK_HOST_STATE_MAX; s++)
        assert_int_equal(playbook_host_state_from_string(playbook_host_state_to_string(s)), s);
    for (int m = 0; m < _PLAYBOOK_MODE_MAX; m++)
        assert_int_equal(playbook_mode_from_string(playbook_mode_to_string(m)), m);
    assert_int_equal(playbook_mode_from_string("yolo"), -1);
    assert_null(playbook_run_state_to_string(_PLAYBOOK_RUN_STATE_MAX));
}

static void test_canary_then_batches(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 2, NULL, T0, NULL);
    assert_true(run > 0);
    /* Only the canary (the first by name) may fetch; it was woken. */
    assert_int_equal(f->n_woken, 1);
    assert_int_equal(f->woken[0], 1);
    assert_int_equal(n_tasks(f, 2, T0), 0);
    assert_int_equal(n_tasks(f, 4, T0), 0);
    json_t *tasks = fetch(f, 1, T0);
    assert_int_equal(json_array_size(tasks), 1);
    json_t *task = json_array_get(tasks, 0);
    int64_t t1 = json_integer_value(json_object_get(task, "id"));
    assert_int_equal(json_integer_value(json_object_get(task, "run")), run);
    assert_string_equal(json_string_value(json_object_get(task, "mode")), "apply");
    assert_string_equal(json_string_value(json_object_get(task, "playbook")), "enable-dual-stack");
    assert_int_equal(json_integer_value(json_object_get(task, "timeout_ms")), TIMEOUT * 1000);
    json_t *seg = json_object_get(task, "segment");
    assert_string_equal(json_string_value(json_object_get(seg, "interface")), "br0");
    assert_string_equal(json_string_value(json_object_get(json_object_get(seg, "plan"), "ipv6_address")),
                        "2001:db8:10::21");
    /* Templates are resolved: the agent sees concrete values only. */
    json_t *step0 = json_array_get(json_object_get(task, "steps"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(step0, "args"), "key")),
                        "net/ipv6/conf/br0/disable_ipv6");
    json_decref(tasks);
    /* Polled again before it began: the answer that carried it may have
     * been lost, so it is handed out again (still 'sent'); once begun, never. */
    assert_int_equal(n_tasks(f, 1, T0), 1);
    assert_states(f, run, "running", "sent", "waiting", "waiting", "waiting");

    bool accepted;
    assert_int_equal(report(f, 1, t1, "running", false, T0 + 1, &accepted), 0);
    assert_true(accepted);
    assert_states(f, run, "running", "running", "waiting", "waiting", "waiting");
    assert_int_equal(n_tasks(f, 1, T0 + 1), 0);
    assert_int_equal(n_tasks(f, 2, T0 + 1), 0);
    result_ok(f, 1, t1, "succeeded", T0 + 2);

    /* Batch 1: hv02 and hv03; hv04 still waits for its batch. */
    assert_int_equal(n_tasks(f, 4, T0 + 2), 0);
    int64_t t2 = fetch_one(f, 2, T0 + 2), t3 = fetch_one(f, 3, T0 + 2);
    result_ok(f, 2, t2, "succeeded", T0 + 3);
    assert_int_equal(n_tasks(f, 4, T0 + 3), 0);
    assert_states(f, run, "running", "succeeded", "succeeded", "sent", "waiting");
    result_ok(f, 3, t3, "succeeded", T0 + 4);

    int64_t t4 = fetch_one(f, 4, T0 + 4);
    result_ok(f, 4, t4, "succeeded", T0 + 5);
    assert_states(f, run, "succeeded", "succeeded", "succeeded", "succeeded", "succeeded");

    /* Step results are kept with the rendered steps. */
    json_t *j = run_json(f, run);
    json_t *h = json_array_get(json_object_get(j, "hosts"), 0);
    json_t *s0 = json_array_get(json_object_get(h, "steps"), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "status")), "changed");
    assert_string_equal(json_string_value(json_object_get(s0, "before")), "1");
    assert_int_equal(json_integer_value(json_object_get(s0, "duration_us")), 412);
    json_t *s1 = json_array_get(json_object_get(h, "steps"), 1);
    assert_string_equal(json_string_value(json_object_get(s1, "status")), "not-run");
    assert_int_equal(json_integer_value(json_object_get(j, "batches")), 3);
    assert_string_equal(json_string_value(json_object_get(j, "canary")), "hv01");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "playbook_sha256"))), 64);
    assert_string_equal(json_string_value(json_object_get(j, "playbook_yaml")), playbook_text);
    json_decref(j);

    /* Audited: the run (with the playbook's SHA-256), each delivery and
     * outcome, the end. */
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM audit WHERE action = 'playbook.run' "
                                  "AND after LIKE '%playbook_sha256%'"), 1);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM audit WHERE action = 'playbook.host' "
                                  "AND after LIKE '%\"succeeded\"%'"), 4);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM audit WHERE action = 'playbook.run-end'"), 1);
    json_t *verify = audit_verify(store_reader(f->store));
    assert_true(json_is_true(json_object_get(verify, "ok")));
    json_decref(verify);
}

static void test_chosen_canary(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_ADMIN, "health-dmz", PLAYBOOK_MODE_APPLY, 10, "hv03", T0, NULL);
    assert_true(run > 0);
    assert_int_equal(n_tasks(f, 1, T0), 0);
    int64_t t3 = fetch_one(f, 3, T0);
    result_ok(f, 3, t3, "succeeded", T0);
    /* One batch of the other three. */
    int64_t t1 = fetch_one(f, 1, T0), t2 = fetch_one(f, 2, T0), t4 = fetch_one(f, 4, T0);
    result_ok(f, 1, t1, "succeeded", T0);
    result_ok(f, 2, t2, "succeeded", T0);
    result_ok(f, 4, t4, "succeeded", T0);
    assert_states(f, run, "succeeded", "succeeded", "succeeded", "succeeded", "succeeded");
    int status;
    assert_true(create(f, ROLE_ADMIN, "health-dmz", PLAYBOOK_MODE_APPLY, 10, "hv05", T0, &status) < 0);
    assert_int_equal(status, 422);
}

static void test_stop_on_first_failure(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 2, NULL, T0, NULL);
    result_ok(f, 1, fetch_one(f, 1, T0), "succeeded", T0);
    int64_t t2 = fetch_one(f, 2, T0), t3 = fetch_one(f, 3, T0);
    /* hv02 fails while hv03 runs: hv04 (not started) is skipped, hv03
     * finishes, and only then does the run end. */
    result_ok(f, 2, t2, "failed", T0 + 1);
    json_t *j = run_json(f, run);
    assert_string_equal(run_state(j), "running");
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "hv02 failed"));
    json_decref(j);
    assert_states(f, run, "running", "succeeded", "failed", "sent", "skipped");
    assert_int_equal(n_tasks(f, 4, T0 + 1), 0);
    result_ok(f, 3, t3, "succeeded", T0 + 2);
    assert_states(f, run, "failed", "succeeded", "failed", "succeeded", "skipped");
    j = run_json(f, run);
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "first failed host: hv02"));
    json_t *h = json_array_get(json_object_get(j, "hosts"), 1);
    assert_string_equal(json_string_value(json_object_get(h, "host")), "hv02");
    assert_true(json_is_true(json_object_get(h, "rolled_back")));
    json_decref(j);
    /* A new apply run may start once this one ended. */
    assert_true(create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 2, NULL, T0 + 3, NULL) > 0);
}

static void test_canary_failure_skips_everyone(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 2, NULL, T0, NULL);
    result_ok(f, 1, fetch_one(f, 1, T0), "failed", T0);
    assert_states(f, run, "failed", "failed", "skipped", "skipped", "skipped");
    assert_int_equal(n_tasks(f, 2, T0), 0);
}

static void test_unknown_after_timeout(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 2, NULL, T0, NULL);
    int64_t t1 = fetch_one(f, 1, T0);
    /* The task's longest step wait counts too (none in this playbook). */
    sweep(f, T0 + TIMEOUT - 1);
    assert_states(f, run, "running", "sent", "waiting", "waiting", "waiting");
    /* Progress is a sign of life: the deadline moves. */
    assert_int_equal(report(f, 1, t1, "running", false, T0 + 100, NULL), 0);
    sweep(f, T0 + TIMEOUT + 1);
    assert_states(f, run, "running", "running", "waiting", "waiting", "waiting");
    /* The deadline: the host timeout after the last sign of life, plus the
     * longest bounded wait of one of its steps. */
    json_t *j0 = run_json(f, run);
    int64_t deadline = json_integer_value(json_object_get(json_array_get(json_object_get(j0, "hosts"), 0),
                                                          "deadline_epoch"));
    json_decref(j0);
    assert_true(deadline >= T0 + 100 + TIMEOUT);
    assert_true(deadline <= T0 + 100 + TIMEOUT + PLAYBOOK_MAX_WAIT_MS / 1000 * 2);
    sweep(f, deadline - 1);
    assert_states(f, run, "running", "running", "waiting", "waiting", "waiting");
    sweep(f, deadline);
    assert_states(f, run, "failed", "unknown", "skipped", "skipped", "skipped");
    json_t *j = run_json(f, run);
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "hv01 unknown"));
    json_decref(j);
    /* What a silent host says in the end is kept (once), but changes
     * nothing. */
    bool accepted = false;
    assert_int_equal(report(f, 1, t1, "succeeded", true, T0 + 300, &accepted), 0);
    assert_true(accepted);
    assert_int_equal(report(f, 1, t1, "succeeded", true, T0 + 301, &accepted), 0);
    assert_false(accepted);
    j = run_json(f, run);
    json_t *h = json_array_get(json_object_get(j, "hosts"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(h, "late_result"), "status")),
                        "succeeded");
    assert_string_equal(run_state(j), "failed");
    json_decref(j);
}

static void test_unknown_never_fetched(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_CHECK, 0, NULL, T0, NULL);
    /* Check: every host released at once; three answer, hv04 never fetches. */
    for (int64_t h = 1; h <= 3; h++)
        result_ok(f, h, fetch_one(f, h, T0), "succeeded", T0 + 1);
    assert_states(f, run, "running", "succeeded", "succeeded", "succeeded", "waiting");
    sweep(f, T0 + TIMEOUT);
    assert_states(f, run, "failed", "succeeded", "succeeded", "succeeded", "unknown");
}

static void test_check_mode_does_not_stop(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_CLOUDOPS, "health-dmz", PLAYBOOK_MODE_CHECK, 1, NULL, T0, NULL);
    assert_true(run > 0);
    assert_int_equal(f->n_woken, 4);
    int64_t t[5];
    for (int64_t h = 1; h <= 4; h++)
        t[h] = fetch_one(f, h, T0);
    result_ok(f, 2, t[2], "failed", T0);
    assert_states(f, run, "running", "sent", "failed", "sent", "sent");
    result_ok(f, 1, t[1], "succeeded", T0);
    result_ok(f, 3, t[3], "succeeded", T0);
    result_ok(f, 4, t[4], "succeeded", T0);
    assert_states(f, run, "failed", "succeeded", "failed", "succeeded", "succeeded");
    /* Check runs may overlap with anything. */
    assert_true(create(f, ROLE_CLOUDOPS, "health-dmz", PLAYBOOK_MODE_CHECK, 1, NULL, T0, NULL) > 0);
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 2, NULL, T0, NULL);
    result_ok(f, 1, fetch_one(f, 1, T0), "succeeded", T0);
    int64_t t2 = fetch_one(f, 2, T0);      /* hv03 released, not fetched */
    int status;
    assert_true(cancel(f, ROLE_CLOUDOPS, run, &status) < 0);
    assert_int_equal(status, 403);
    assert_int_equal(cancel(f, ROLE_NETOPS, run, &status), 0);
    assert_states(f, run, "cancelled", "succeeded", "sent", "cancelled", "cancelled");
    assert_int_equal(n_tasks(f, 3, T0), 0);
    /* The host already running finishes, and its result is recorded. */
    result_ok(f, 2, t2, "succeeded", T0 + 1);
    assert_states(f, run, "cancelled", "succeeded", "succeeded", "cancelled", "cancelled");
    assert_true(cancel(f, ROLE_NETOPS, run, &status) < 0);
    assert_int_equal(status, 409);
    assert_true(cancel(f, ROLE_NETOPS, 999, &status) < 0);
    assert_int_equal(status, 404);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM audit WHERE action = 'playbook.run-end' "
                                  "AND after LIKE '%cancelled%'"), 1);
}

static void test_repeated_result(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 2, NULL, T0, NULL);
    int64_t t1 = fetch_one(f, 1, T0);
    result_ok(f, 1, t1, "succeeded", T0);
    int64_t audit_before = count_sql(f, "SELECT COUNT(*) FROM audit");
    bool accepted = true;
    assert_int_equal(report(f, 1, t1, "succeeded", true, T0 + 1, &accepted), 0);
    assert_false(accepted);
    /* A retried failure for a finished task changes nothing either. */
    assert_int_equal(report(f, 1, t1, "failed", true, T0 + 1, &accepted), 0);
    assert_false(accepted);
    assert_int_equal(report(f, 1, t1, "running", false, T0 + 1, &accepted), 0);
    assert_false(accepted);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM audit"), audit_before);
    assert_states(f, run, "running", "succeeded", "waiting", "waiting", "waiting");
    /* Another host's task is not there for this host. */
    int64_t t2 = fetch_one(f, 2, T0 + 1);
    assert_int_equal(report(f, 3, t2, "succeeded", true, T0 + 1, &accepted), -ENOENT);
    assert_states(f, run, "running", "succeeded", "sent", "waiting", "waiting");
}

static void test_roles(void **state)
{
    struct fixture *f = *state;
    int status;
    assert_true(create(f, ROLE_DEPARTMENT, "health-dmz", PLAYBOOK_MODE_CHECK, 0, NULL, T0, &status) < 0);
    assert_int_equal(status, 403);
    assert_true(create(f, ROLE_AUDITOR, "health-dmz", PLAYBOOK_MODE_CHECK, 0, NULL, T0, &status) < 0);
    assert_int_equal(status, 403);
    assert_true(create(f, ROLE_AGENT, "health-dmz", PLAYBOOK_MODE_CHECK, 0, NULL, T0, &status) < 0);
    assert_int_equal(status, 403);
    assert_true(create(f, ROLE_CLOUDOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 0, NULL, T0, &status) < 0);
    assert_int_equal(status, 403);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM playbook_runs"), 0);
    int64_t check = create(f, ROLE_CLOUDOPS, "health-dmz", PLAYBOOK_MODE_CHECK, 0, NULL, T0, &status);
    assert_true(check > 0);
    assert_int_equal(cancel(f, ROLE_CLOUDOPS, check, &status), 0);
    assert_true(create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 0, NULL, T0, &status) > 0);
    /* One apply run per segment at a time. */
    assert_true(create(f, ROLE_ADMIN, "health-dmz", PLAYBOOK_MODE_APPLY, 0, NULL, T0, &status) < 0);
    assert_int_equal(status, 409);
    assert_true(create(f, ROLE_ADMIN, "no-such-segment", PLAYBOOK_MODE_APPLY, 0, NULL, T0, &status) < 0);
    assert_int_equal(status, 404);
}

static void test_render_failure_stores_nothing(void **state)
{
    struct fixture *f = *state;
    int64_t audit_before = count_sql(f, "SELECT COUNT(*) FROM audit");
    struct create_ctx c = {
        .by = person(ROLE_NETOPS), .now = T0,
        .req = { .playbook = f->pb, .text = playbook_text, .text_len = strlen(playbook_text),
                 .segment = "police-lan", .mode = PLAYBOOK_MODE_APPLY },
    };
    assert_true(store_run(f->store, create_run, &c) < 0);
    assert_non_null(c.error);
    assert_int_equal(c.error->http_status, 422);
    char *text = yg_error_format(c.error, NULL);
    assert_non_null(strstr(text, "hv05"));
    free(text);
    yg_error_free(c.error);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM playbook_runs"), 0);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM playbook_tasks"), 0);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM audit"), audit_before);
    assert_int_equal(f->n_woken, 0);

    /* Hosts named that do not carry the segment: 422, nothing stored. */
    const char *hosts[] = { "hv01", "hv05" };
    c = (struct create_ctx) {
        .by = person(ROLE_NETOPS), .now = T0,
        .req = { .playbook = f->pb, .text = playbook_text, .text_len = strlen(playbook_text),
                 .segment = "health-dmz", .mode = PLAYBOOK_MODE_APPLY, .hosts = hosts, .n_hosts = 2 },
    };
    assert_true(store_run(f->store, create_run, &c) < 0);
    assert_int_equal(c.error->http_status, 422);
    text = yg_error_format(c.error, NULL);
    assert_non_null(strstr(text, "hv05"));
    free(text);
    yg_error_free(c.error);
    assert_int_equal(count_sql(f, "SELECT COUNT(*) FROM playbook_runs"), 0);
}

static void test_subset_of_hosts(void **state)
{
    struct fixture *f = *state;
    const char *hosts[] = { "hv04", "hv02" };
    struct create_ctx c = {
        .by = person(ROLE_NETOPS), .now = T0,
        .req = { .playbook = f->pb, .text = playbook_text, .text_len = strlen(playbook_text),
                 .segment = "health-dmz", .mode = PLAYBOOK_MODE_APPLY, .hosts = hosts, .n_hosts = 2 },
    };
    assert_int_equal(store_run(f->store, create_run, &c), 0);
    json_t *j = run_json(f, c.run_id);
    assert_int_equal(json_array_size(json_object_get(j, "hosts")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "canary")), "hv02");
    json_decref(j);
    assert_int_equal(n_tasks(f, 1, T0), 0);
    result_ok(f, 2, fetch_one(f, 2, T0), "succeeded", T0);
    result_ok(f, 4, fetch_one(f, 4, T0), "succeeded", T0);
    j = run_json(f, c.run_id);
    assert_string_equal(run_state(j), "succeeded");
    json_decref(j);
}

static void test_restart_mid_run(void **state)
{
    struct fixture *f = *state;
    int64_t run = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 3, NULL, T0, NULL);
    result_ok(f, 1, fetch_one(f, 1, T0), "succeeded", T0);
    int64_t t2 = fetch_one(f, 2, T0);

    store_close(f->store);
    f->store = NULL;
    assert_int_equal(open_store(f), 0);

    /* The controller came back at T0 + 500: the silence while it was down
     * does not count against the hosts. */
    playbook_run_set_judging_since(T0 + 500);
    sweep(f, T0 + 501);
    assert_states(f, run, "running", "succeeded", "sent", "waiting", "waiting");
    result_ok(f, 2, t2, "succeeded", T0 + 502);
    int64_t t3 = fetch_one(f, 3, T0 + 502), t4 = fetch_one(f, 4, T0 + 502);
    result_ok(f, 3, t3, "succeeded", T0 + 503);
    result_ok(f, 4, t4, "succeeded", T0 + 503);
    assert_states(f, run, "succeeded", "succeeded", "succeeded", "succeeded", "succeeded");
    json_t *verify = audit_verify(store_reader(f->store));
    assert_true(json_is_true(json_object_get(verify, "ok")));
    json_decref(verify);
}

static void test_lists(void **state)
{
    struct fixture *f = *state;
    int64_t a = create(f, ROLE_CLOUDOPS, "health-dmz", PLAYBOOK_MODE_CHECK, 0, NULL, T0, NULL);
    int64_t b = create(f, ROLE_NETOPS, "health-dmz", PLAYBOOK_MODE_APPLY, 0, NULL, T0, NULL);
    int status;
    assert_int_equal(cancel(f, ROLE_NETOPS, b, &status), 0);
    json_t *all = playbook_runs_json(store_reader(f->store), NULL, NULL, 100);
    json_t *items = json_object_get(all, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "id")), b);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_array_get(items, 1), "counts"),
                                                        "waiting")), 4);
    json_decref(all);
    json_t *cancelled = playbook_runs_json(store_reader(f->store), "health-dmz", "cancelled", 100);
    assert_int_equal(json_array_size(json_object_get(cancelled, "items")), 1);
    json_decref(cancelled);
    json_t *other = playbook_runs_json(store_reader(f->store), "police-lan", NULL, 100);
    assert_int_equal(json_array_size(json_object_get(other, "items")), 0);
    json_decref(other);
    (void) a;
}

static void test_report_validation(void **state)
{
    (void) state;
    json_t *ok = json_pack("{s:s, s:[{s:i, s:s}]}", "status", "failed", "steps", "index", 0, "status", "undone");
    struct yg_error *e = playbook_task_report_check(ok, true);
    assert_null(e);
    json_decref(ok);
    json_t *bad = json_pack("{s:s, s:s, s:[{s:i, s:s}]}", "status", "running", "rolled_back", "yes",
                            "steps", "index", -1, "status", "exploded");
    e = playbook_task_report_check(bad, true);
    assert_non_null(e);
    assert_int_equal(e->http_status, 422);
    assert_int_equal(e->n_details, 4);     /* status, rolled_back, index, step status */
    yg_error_free(e);
    e = playbook_task_report_check(bad, false);
    assert_int_equal(e->n_details, 3);     /* "running" is progress */
    yg_error_free(e);
    json_decref(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_report_validation),
        cmocka_unit_test_setup_teardown(test_canary_then_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chosen_canary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_on_first_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_canary_failure_skips_everyone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_after_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_never_fetched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_mode_does_not_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_failure_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subset_of_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_mid_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

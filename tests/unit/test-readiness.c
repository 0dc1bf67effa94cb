/* Readiness: report ingestion (seq dedup), segment states, staleness,
 * waivers, the regressed flag, history and audit — on a real SQLite file. */
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
#include "readiness.h"
#include "store.h"
#include "util.h"
#include "../store-files.h"

struct fixture {
    char dir[64], path[128];
    struct store *store;
};

static const int64_t T0 = 1900000000;     /* a fixed "now" */

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/yg-ready-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/y.db", f->dir);
    char *err = NULL;
    if (store_open(f->path, &f->store, &err) < 0)
        return -1;
    readiness_set_heartbeat(10);
    /* One segment with IPv6, one without; three hosts on the first. */
    sqlite3 *db;
    sqlite3_open(f->path, &db);
    int rc = sqlite3_exec(db,
        "INSERT INTO segments (id, name, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, interface,"
        "  state_since, created_at, updated_at, target_date) VALUES"
        " (1, 'health-dmz', '198.51.100.0/24', '198.51.100.1', '2001:db8:10::/64', '2001:db8:10::1', 'br0',"
        "  'x', 'x', 'x', '2026-12-31'),"
        " (2, 'police-lan', '203.0.113.0/24', '203.0.113.1', NULL, NULL, 'br1', 'x', 'x', 'x', '2026-12-31');"
        "INSERT INTO segment_departments VALUES (1, 'health'), (2, 'police');"
        "INSERT INTO hosts (id, name, created_at) VALUES (1, 'hv01', 'x'), (2, 'hv02', 'x'), (3, 'hv03', 'x');"
        "INSERT INTO host_segments (host_id, segment_id) VALUES (1, 1), (2, 1), (3, 1), (3, 2);",
        NULL, NULL, NULL);
    sqlite3_close(db);
    if (rc != SQLITE_OK)
        return -1;
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

struct ingest_ctx {
    struct principal agent;
    json_t *report;
    int64_t now;
    json_t *answer;
};

static int ingest_run(struct store_txn *txn, void *ctx)
{
    struct ingest_ctx *c = ctx;
    struct yg_error *e = NULL;
    int r = readiness_ingest(txn, &c->agent, c->report, c->now, &c->answer, &e);
    yg_error_free(e);
    return r;
}

/* Report for HOST: seq, and the failing reason (NULL: all pass). */
static bool report(struct fixture *f, int64_t host_id, int64_t seq, const char *fail_reason,
                   int64_t now)
{
    json_t *checks = json_pack("[{s:s, s:s, s:s}]", "check", "ipv6-global-address",
                               "severity", "pass", "reason", "OK");
    if (fail_reason)
        json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:s}", "check", "ipv6-default-route",
                                                "severity", "fail", "reason", fail_reason,
                                                "message", "no route"));
    struct ingest_ctx c = { .agent = { .role = ROLE_AGENT, .host_id = host_id, .actor = "token:9" },
                            .now = now };
    c.report = json_pack("{s:I, s:[{s:s, s:o}]}", "seq", (json_int_t) seq, "segments",
                         "name", "health-dmz", "checks", checks);
    assert_null(readiness_report_check(c.report));
    assert_int_equal(store_run(f->store, ingest_run, &c), 0);
    bool applied = json_is_true(json_object_get(c.answer, "applied"));
    json_decref(c.answer);
    json_decref(c.report);
    return applied;
}

static json_t *segment(struct fixture *f, const char *name, int64_t now)
{
    json_t *s = readiness_segment_json(store_reader(f->store), name, now);
    assert_non_null(s);
    return s;
}

static const char *state_of(json_t *s) { return json_string_value(json_object_get(s, "state")); }

static void test_states(void **state)
{
    struct fixture *f = *state;
    json_t *s = segment(f, "police-lan", T0);
    assert_string_equal(state_of(s), "v4-only");
    json_decref(s);

    /* Nobody reported: v6-planned (recomputed by the first report below). */
    assert_true(report(f, 1, 1, NULL, T0));
    s = segment(f, "health-dmz", T0);
    assert_string_equal(state_of(s), "dual-stack-partial");
    assert_string_equal(json_string_value(json_object_get(s, "blocking_reason")), "NO_REPORT");
    json_decref(s);

    assert_true(report(f, 2, 1, "NO_IPV6_DEFAULT_ROUTE", T0));
    assert_true(report(f, 3, 1, "NO_IPV6_DEFAULT_ROUTE", T0));
    s = segment(f, "health-dmz", T0);
    assert_string_equal(state_of(s), "dual-stack-partial");
    assert_int_equal(json_integer_value(json_object_get(s, "hosts_ready")), 1);
    assert_string_equal(json_string_value(json_object_get(s, "blocking_reason")), "NO_IPV6_DEFAULT_ROUTE");
    json_t *hosts = json_object_get(s, "hosts");
    json_t *hv02 = json_array_get(hosts, 1);
    assert_string_equal(json_string_value(json_object_get(hv02, "verdict")), "blocked");
    json_t *problem = json_array_get(json_object_get(hv02, "problems"), 0);
    assert_string_equal(json_string_value(json_object_get(problem, "reason")), "NO_IPV6_DEFAULT_ROUTE");
    assert_true(strlen(json_string_value(json_object_get(problem, "remedy"))) > 10);
    json_decref(s);

    /* Fixed: ready. */
    assert_true(report(f, 2, 2, NULL, T0 + 1));
    assert_true(report(f, 3, 2, NULL, T0 + 1));
    s = segment(f, "health-dmz", T0 + 1);
    assert_string_equal(state_of(s), "dual-stack-ready");
    assert_false(json_is_true(json_object_get(s, "regressed")));
    json_decref(s);

    /* A replayed (old) report is acknowledged but not applied. */
    assert_false(report(f, 2, 1, "NO_IPV6_DEFAULT_ROUTE", T0 + 2));
    s = segment(f, "health-dmz", T0 + 2);
    assert_string_equal(state_of(s), "dual-stack-ready");
    json_decref(s);

    /* Falling back sets the regressed flag and audits it. */
    assert_true(report(f, 3, 3, "NO_IPV6_DEFAULT_ROUTE", T0 + 3));
    s = segment(f, "health-dmz", T0 + 3);
    assert_string_equal(state_of(s), "dual-stack-partial");
    assert_true(json_is_true(json_object_get(s, "regressed")));
    json_decref(s);
    json_t *page = audit_list(store_reader(f->store), 0, 100);
    bool regressed_audited = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(page, "items"), i, e)
        regressed_audited |= streq(json_string_value(json_object_get(e, "action")), "segment.regressed");
    assert_true(regressed_audited);
    json_decref(page);

    json_t *history = readiness_history_json(store_reader(f->store), "health-dmz");
    assert_true(json_array_size(json_object_get(history, "items")) >= 3);
    json_decref(history);
    json_t *v = audit_verify(store_reader(f->store));
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_decref(v);
}

struct sweep_ctx {
    int64_t since, now;
};

static int sweep_run(struct store_txn *txn, void *ctx)
{
    struct sweep_ctx *c = ctx;
    return readiness_sweep(txn, c->since, c->now);
}

struct waiver_ctx {
    int64_t now;
    int code;
};

static int waiver_run(struct store_txn *txn, void *ctx)
{
    struct waiver_ctx *c = ctx;
    struct principal netops = { .role = ROLE_NETOPS, .actor = "token:5" };
    json_t *w = NULL;
    struct yg_error *e = NULL;
    int r = readiness_waiver_add(txn, &netops, "health-dmz", "hv03", "hardware replacement in January",
                                 c->now + 86400, c->now, &w, &e);
    c->code = e ? e->http_status : 0;
    json_decref(w);
    yg_error_free(e);
    return r;
}

static void test_stale_and_waiver(void **state)
{
    struct fixture *f = *state;
    for (int64_t h = 1; h <= 3; h++)
        assert_true(report(f, h, 1, NULL, T0));
    json_t *s = segment(f, "health-dmz", T0);
    assert_string_equal(state_of(s), "dual-stack-ready");
    json_decref(s);

    /* hv01 and hv02 keep reporting; hv03 goes silent past 3 heartbeats. */
    assert_true(report(f, 1, 2, NULL, T0 + 25));
    assert_true(report(f, 2, 2, NULL, T0 + 25));
    struct sweep_ctx sw = { .since = T0, .now = T0 + 31 };
    assert_int_equal(store_run(f->store, sweep_run, &sw), 0);
    s = segment(f, "health-dmz", T0 + 31);
    assert_string_equal(state_of(s), "dual-stack-partial");
    assert_string_equal(json_string_value(json_object_get(s, "blocking_reason")), "STALE_REPORT");
    assert_true(json_is_true(json_object_get(s, "regressed")));
    json_decref(s);

    /* A waiver for hv03 makes the segment ready again. */
    struct waiver_ctx w = { .now = T0 + 32 };
    assert_int_equal(store_run(f->store, waiver_run, &w), 0);
    s = segment(f, "health-dmz", T0 + 32);
    assert_string_equal(state_of(s), "dual-stack-ready");
    assert_false(json_is_true(json_object_get(s, "regressed")));
    assert_int_equal(json_integer_value(json_object_get(s, "hosts_total")), 2);
    json_decref(s);

    json_t *p = readiness_progress_json(store_reader(f->store), T0 + 32);
    json_t *overall = json_object_get(p, "overall");
    assert_int_equal(json_integer_value(json_object_get(overall, "segments")), 2);
    assert_int_equal(json_integer_value(json_object_get(overall, "segments_ready")), 1);
    assert_int_equal(json_array_size(json_object_get(p, "departments")), 2);
    json_decref(p);
}

/* A report exactly three heartbeats old is not stale yet (stale means
 * older); the sweep that runs at that second must not take the host off
 * the list the next sweep looks at. */
static void test_stale_at_the_line(void **state)
{
    struct fixture *f = *state;
    for (int64_t h = 1; h <= 3; h++)
        assert_true(report(f, h, 1, NULL, T0));
    assert_true(report(f, 1, 2, NULL, T0 + 25));
    assert_true(report(f, 2, 2, NULL, T0 + 25));
    struct sweep_ctx sw = { .since = T0 + 28, .now = T0 + 30 };
    assert_int_equal(store_run(f->store, sweep_run, &sw), 0);
    json_t *s = segment(f, "health-dmz", T0 + 30);
    assert_string_equal(state_of(s), "dual-stack-ready");
    json_decref(s);
    sw = (struct sweep_ctx) { .since = T0 + 30, .now = T0 + 32 };
    assert_int_equal(store_run(f->store, sweep_run, &sw), 0);
    s = segment(f, "health-dmz", T0 + 32);
    assert_string_equal(state_of(s), "dual-stack-partial");
    assert_string_equal(json_string_value(json_object_get(s, "blocking_reason")), "STALE_REPORT");
    json_decref(s);
}

/* After a controller outage, reports count as fresh from its start: no
 * segment turns stale (and regressed) before the agents could report. */
static void test_restart_grace(void **state)
{
    struct fixture *f = *state;
    for (int64_t h = 1; h <= 3; h++)
        assert_true(report(f, h, 1, NULL, T0));
    readiness_set_judging_since(T0 + 100);      /* down for 100 s, then restarted */
    struct sweep_ctx sw = { .since = 0, .now = T0 + 101 };
    assert_int_equal(store_run(f->store, sweep_run, &sw), 0);
    json_t *s = segment(f, "health-dmz", T0 + 101);
    assert_string_equal(state_of(s), "dual-stack-ready");
    assert_false(json_is_true(json_object_get(s, "regressed")));
    json_decref(s);
    /* Three heartbeats after the restart with no report: stale. */
    sw = (struct sweep_ctx) { .since = T0 + 101, .now = T0 + 131 };
    assert_int_equal(store_run(f->store, sweep_run, &sw), 0);
    s = segment(f, "health-dmz", T0 + 131);
    assert_string_equal(state_of(s), "dual-stack-partial");
    assert_string_equal(json_string_value(json_object_get(s, "blocking_reason")), "STALE_REPORT");
    json_decref(s);
    readiness_set_judging_since(0);
}

/* Post REPORT (stolen) from HOST_ID; the answer (caller frees). */
static json_t *post(struct fixture *f, int64_t host_id, json_t *report, int64_t now)
{
    struct ingest_ctx c = { .agent = { .role = ROLE_AGENT, .host_id = host_id, .actor = "token:9" },
                            .report = report, .now = now };
    assert_null(readiness_report_check(report));
    assert_int_equal(store_run(f->store, ingest_run, &c), 0);
    json_decref(report);
    assert_non_null(c.answer);
    return c.answer;
}

static json_t *full_report(int64_t seq, const char *results_sha256)
{
    json_t *r = json_pack("{s:I, s:[{s:s, s:[{s:s, s:s, s:s}]}]}", "seq", (json_int_t) seq, "segments",
                          "name", "health-dmz", "checks", "check", "ipv6-global-address",
                          "severity", "pass", "reason", "OK");
    if (results_sha256)
        json_object_set_new(r, "results_sha256", json_string(results_sha256));
    return r;
}

static json_t *heartbeat(int64_t seq, const char *results_sha256)
{
    return json_pack("{s:I, s:s}", "seq", (json_int_t) seq, "results_sha256", results_sha256);
}

static void assert_answer(json_t *answer, bool applied, bool resync, const char *results_sha256)
{
    assert_int_equal(json_is_true(json_object_get(answer, "applied")), applied);
    assert_int_equal(json_is_true(json_object_get(answer, "resync")), resync);
    const char *h = json_string_value(json_object_get(answer, "results_sha256"));
    if (results_sha256)
        assert_string_equal(h, results_sha256);
    else
        assert_null(h);
    json_decref(answer);
}

static int64_t host_report_epoch(struct fixture *f, int64_t host_id)
{
    sqlite3_stmt *st = store_stmt(store_reader(f->store),
                                  "SELECT last_report_epoch FROM hosts WHERE id = ?1");
    sqlite3_bind_int64(st, 1, host_id);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t epoch = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return epoch;
}

static void sql(struct fixture *f, const char *text)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Hash-only heartbeats (doc/AGENT.md): a hash the controller stored with
 * the host's results refreshes them; any other hash (wrong, none stored,
 * stored before a plan change, or a full report without one) changes
 * nothing, so stale results never turn fresh on a heartbeat's word. */
static void test_heartbeat_hash(void **state)
{
    struct fixture *f = *state;
    sql(f, "DELETE FROM host_segments WHERE host_id = 3");     /* hv01 and hv02 on health-dmz */
    assert_answer(post(f, 1, full_report(1, HASH_A), T0), true, false, HASH_A);
    assert_answer(post(f, 2, full_report(1, HASH_A), T0), true, false, HASH_A);
    json_t *s = segment(f, "health-dmz", T0);
    assert_string_equal(state_of(s), "dual-stack-ready");
    json_decref(s);

    /* hv01's hash matches; hv02 sends one the controller never stored. */
    assert_answer(post(f, 1, heartbeat(2, HASH_A), T0 + 25), true, false, HASH_A);
    assert_answer(post(f, 2, heartbeat(2, HASH_B), T0 + 25), false, true, NULL);
    assert_int_equal(host_report_epoch(f, 1), T0 + 25);
    assert_int_equal(host_report_epoch(f, 2), T0);
    /* A replayed heartbeat (seq not above last_seq) applies nothing. */
    assert_answer(post(f, 1, heartbeat(2, HASH_A), T0 + 26), false, false, NULL);
    assert_int_equal(host_report_epoch(f, 1), T0 + 25);
    struct sweep_ctx sw = { .since = T0, .now = T0 + 31 };
    assert_int_equal(store_run(f->store, sweep_run, &sw), 0);
    s = segment(f, "health-dmz", T0 + 31);
    assert_string_equal(state_of(s), "dual-stack-partial");
    assert_string_equal(json_string_value(json_object_get(s, "blocking_reason")), "STALE_REPORT");
    json_decref(s);

    /* The right hash from the stale hv02: fresh again, the segment recomputed. */
    assert_answer(post(f, 2, heartbeat(3, HASH_A), T0 + 32), true, false, HASH_A);
    s = segment(f, "health-dmz", T0 + 32);
    assert_string_equal(state_of(s), "dual-stack-ready");
    json_decref(s);

    /* hv01's plan changes: its hash no longer vouches for its results. */
    sql(f, "UPDATE host_segments SET ipv6_address = '2001:db8:10::21' WHERE host_id = 1");
    assert_answer(post(f, 1, heartbeat(3, HASH_A), T0 + 33), false, true, NULL);
    assert_int_equal(host_report_epoch(f, 1), T0 + 25);
    /* The segment's definition changes: the same for hv02. */
    sql(f, "UPDATE segments SET ipv6_gateway = '2001:db8:10::2' WHERE id = 1");
    assert_answer(post(f, 2, heartbeat(4, HASH_A), T0 + 33), false, true, NULL);
    /* ... but the derived columns a recompute writes forget nothing. */
    assert_answer(post(f, 1, full_report(3, HASH_B), T0 + 34), true, false, HASH_B);
    sql(f, "UPDATE segments SET state = 'v4-only', hosts_ready = 0 WHERE id = 1");
    assert_answer(post(f, 1, heartbeat(4, HASH_B), T0 + 35), true, false, HASH_B);

    /* A full report without a hash (an older agent) forgets the old one. */
    assert_answer(post(f, 1, full_report(5, NULL), T0 + 36), true, false, NULL);
    assert_answer(post(f, 1, heartbeat(6, HASH_B), T0 + 37), false, true, NULL);
    assert_int_equal(host_report_epoch(f, 1), T0 + 36);

    /* A host whose full report leaves a carried segment out (resync) has
     * no hash stored: hv03 carries police-lan too. */
    sql(f, "INSERT INTO host_segments (host_id, segment_id) VALUES (3, 1), (3, 2)");
    assert_answer(post(f, 3, full_report(1, HASH_A), T0 + 38), true, true, NULL);
    assert_answer(post(f, 3, heartbeat(2, HASH_A), T0 + 39), false, true, NULL);
}

/* The stored checks' summary read without jansson must be the parsed
 * one, whatever the text: the usual compact dump, and everything the scan
 * leaves to jansson (escapes, members that are not strings and hold the
 * key names, spacing, repeated keys, text that is not JSON). */
static void test_checks_summary(void **state)
{
    (void) state;
    static const struct {
        const char *text;
        bool usable_ipv6;
        const char *first_reason;   /* NULL: none */
    } cases[] = {
        { "[{\"check\":\"ipv6-global-address\",\"severity\":\"pass\",\"reason\":\"OK\",\"message\":\"m\"},"
          "{\"check\":\"ipv6-default-route\",\"severity\":\"fail\",\"reason\":\"NO_IPV6_DEFAULT_ROUTE\",\"message\":\"x\"},"
          "{\"check\":\"gateway-neighbour\",\"severity\":\"fail\",\"reason\":\"GATEWAY_NEIGH_FAILED\"}]",
          true, "NO_IPV6_DEFAULT_ROUTE" },
        { "[{\"check\":\"ipv6-global-address\",\"severity\":\"fail\",\"reason\":\"NO_GLOBAL_IPV6\"}]",
          false, "NO_GLOBAL_IPV6" },
        { "[{\"check\":\"ipv6-global-address\",\"severity\":\"warn\",\"reason\":\"IPV6_OUTSIDE_PREFIX\"}]",
          true, NULL },
        { "[]", false, NULL },
        { " [ { \"severity\" : \"fail\" , \"reason\" : \"R1\" } , { } ] ", false, "R1" },
        /* A failing check without a reason: the next one's counts. */
        { "[{\"severity\":\"fail\"},{\"severity\":\"fail\",\"reason\":\"R2\"}]", false, "R2" },
        /* Repeated keys: the last counts. */
        { "[{\"severity\":\"pass\",\"reason\":\"A\",\"severity\":\"fail\",\"reason\":\"B\"}]", false, "B" },
        /* Escapes: "B" spelt \u0042, a quote in a message. */
        { "[{\"severity\":\"fail\",\"reason\":\"\\u0042\",\"message\":\"say \\\"hi\\\"\"}]", false, "B" },
        { "[{\"message\":\"\\\"\",\"check\":\"ipv6-global-address\",\"severity\":\"pass\"}]", true, NULL },
        /* Members that are not strings, holding what the scan looks for. */
        { "[{\"extra\":{\"severity\":\"fail\",\"reason\":\"INNER\"},\"severity\":\"pass\"}]", false, NULL },
        { "[{\"n\":[1,2,{\"reason\":\"X\"}],\"severity\":\"fail\",\"reason\":\"OUTER\"}]", false, "OUTER" },
        { "[{\"severity\":null,\"reason\":\"R\"},\"fail\",7]", false, NULL },
        /* Not JSON, or not an array: no checks. */
        { "[{\"severity\":\"fail\",\"reason\":\"R\"}", false, NULL },
        { "[{\"severity\":\"fail\",\"reason\":\"R\"}] x", false, NULL },
        { "{\"severity\":\"fail\",\"reason\":\"R\"}", false, NULL },
        { "", false, NULL },
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(cases); i++) {
        struct readiness_checks_summary scanned, parsed;
        readiness_checks_summary_text(cases[i].text, &scanned);
        json_t *checks = json_loads(cases[i].text, 0, NULL);
        readiness_checks_summary_json(checks, &parsed);
        json_decref(checks);
        print_message("case %zu: %s\n", i, cases[i].text);
        assert_int_equal(scanned.usable_ipv6, cases[i].usable_ipv6);
        assert_int_equal(parsed.usable_ipv6, cases[i].usable_ipv6);
        assert_int_equal(scanned.has_reason, cases[i].first_reason != NULL);
        assert_int_equal(parsed.has_reason, cases[i].first_reason != NULL);
        if (cases[i].first_reason) {
            assert_string_equal(scanned.first_reason, cases[i].first_reason);
            assert_string_equal(parsed.first_reason, cases[i].first_reason);
        }
    }
}

/* A segment's state follows a host's status, first failing reason and
 * usable IPv6 — also when the host's status stays 'fail' — while a change
 * of messages alone is stored without a new state or history row. */
static void test_verdict_changes(void **state)
{
    struct fixture *f = *state;
    sql(f, "DELETE FROM host_segments WHERE host_id <> 1");    /* hv01 alone on health-dmz */
#define CHECK_JSON(check, severity, reason, message) \
    "{s:s, s:s, s:s, s:s}", "check", check, "severity", severity, "reason", reason, "message", message
    struct step {
        const char *v6_severity, *v6_reason, *route_severity, *route_reason, *message;
        const char *state, *blocking_reason;
        int history_rows;           /* added by this report */
    } steps[] = {
        /* No usable IPv6, blocked: v6-planned. */
        { "fail", "NO_GLOBAL_IPV6", "fail", "NO_IPV6_DEFAULT_ROUTE", "m1", "v6-planned", "NO_GLOBAL_IPV6", 1 },
        /* Still 'fail', but the address is usable now: partial, another reason. */
        { "pass", "OK", "fail", "NO_IPV6_DEFAULT_ROUTE", "m1", "dual-stack-partial", "NO_IPV6_DEFAULT_ROUTE", 1 },
        /* Only a message differs: stored, same state, no history. */
        { "pass", "OK", "fail", "NO_IPV6_DEFAULT_ROUTE", "m2", "dual-stack-partial", "NO_IPV6_DEFAULT_ROUTE", 0 },
        /* Still 'fail' with usable IPv6, the first failing reason changes. */
        { "pass", "OK", "fail", "NO_ROUTE_OTHER", "m2", "dual-stack-partial", "NO_ROUTE_OTHER", 0 },
        { "pass", "OK", "pass", "OK", "m2", "dual-stack-ready", NULL, 1 },
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(steps); i++) {
        json_t *history = readiness_history_json(store_reader(f->store), "health-dmz");
        size_t rows_before = json_array_size(json_object_get(history, "items"));
        json_decref(history);
        json_t *report = json_pack("{s:I, s:[{s:s, s:[o, o]}]}", "seq", (json_int_t) i + 1, "segments",
            "name", "health-dmz", "checks",
            json_pack(CHECK_JSON("ipv6-global-address", steps[i].v6_severity, steps[i].v6_reason, "a")),
            json_pack(CHECK_JSON("ipv6-default-route", steps[i].route_severity, steps[i].route_reason,
                                 steps[i].message)));
        json_decref(post(f, 1, report, T0 + (int64_t) i));
        json_t *s = segment(f, "health-dmz", T0 + (int64_t) i);
        print_message("step %zu\n", i);
        assert_string_equal(state_of(s), steps[i].state);
        const char *reason = json_string_value(json_object_get(s, "blocking_reason"));
        if (steps[i].blocking_reason)
            assert_string_equal(reason, steps[i].blocking_reason);
        else
            assert_null(reason);
        /* What the page shows is what was reported last. */
        json_t *problems = json_object_get(json_array_get(json_object_get(s, "hosts"), 0), "problems");
        json_t *last = json_array_get(problems, json_array_size(problems) - 1);
        if (streq(steps[i].route_severity, "fail"))
            assert_string_equal(json_string_value(json_object_get(last, "message")), steps[i].message);
        json_decref(s);
        history = readiness_history_json(store_reader(f->store), "health-dmz");
        assert_int_equal(json_array_size(json_object_get(history, "items")),
                         rows_before + (size_t) steps[i].history_rows);
        json_decref(history);
    }
#undef CHECK_JSON
}

static void test_report_validation(void **state)
{
    json_t *bad = json_pack("{s:i, s:[{s:s, s:[{s:s, s:s, s:s}]}]}", "seq", 0, "segments",
                            "name", "x", "checks", "check", "c", "severity", "fatal", "reason", "R");
    struct yg_error *e = readiness_report_check(bad);
    assert_non_null(e);
    assert_int_equal(e->n_details, 2);
    assert_string_equal(e->details[0].path, "seq");
    assert_string_equal(e->details[1].path, "segments[0].checks[0]");
    yg_error_free(e);
    json_decref(bad);
    /* A heartbeat: seq and a well-formed hash, no segments. */
    json_t *hb = json_pack("{s:i, s:s}", "seq", 7, "results_sha256", HASH_A);
    assert_null(readiness_report_check(hb));
    json_decref(hb);
    hb = json_pack("{s:i, s:s}", "seq", 7, "results_sha256", "AAAA");
    e = readiness_report_check(hb);
    assert_non_null(e);
    assert_int_equal(e->n_details, 1);
    assert_string_equal(e->details[0].path, "results_sha256");
    yg_error_free(e);
    json_decref(hb);
    hb = json_pack("{s:i}", "seq", 7);       /* neither segments nor a hash */
    e = readiness_report_check(hb);
    assert_non_null(e);
    assert_string_equal(e->details[0].path, "segments");
    yg_error_free(e);
    json_decref(hb);
    for (int i = 0; i < SEGMENT_STATE_MAX; i++)
        assert_int_equal(segment_state_from_string(segment_state_to_string((enum segment_state) i)), i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_and_waiver, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_at_the_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verdict_changes, setup, teardown),
        cmocka_unit_test(test_checks_summary),
        cmocka_unit_test(test_report_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

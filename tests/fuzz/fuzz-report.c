/* libFuzzer target for the controller's side of agent reports
 * (doc/AGENT.md "Reports"): the body loaded as api_call_body_json() loads
 * it (json_loadb with JSON_REJECT_DUPLICATES, a JSON object), then
 * readiness_report_check(), and for a report it accepts, readiness_ingest()
 * for host hv01 of a small store (three segments, one of them without IPv6,
 * and a segment hv01 does not carry) followed by readiness_segment_json()
 * of each segment, which renders the stored checks back.  Every ingest is
 * rolled back, so each input starts from the same store: hv01's last_seq is
 * 5, so reports 1..5 take the "already applied" path.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan) it checks
 * the promises: a non-object is a 400, an invalid report a 422 with 1 or
 * more details each naming a JSON path; a valid report is always ingested
 * (no error) with an answer {"applied": bool, "last_seq": N, "resync":
 * bool}, applied exactly when seq > 5 and then last_seq == seq; the
 * segment reads always succeed, every state is one of the four, and
 * hosts_ready <= hosts_total. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth.h"
#include "error.h"
#include "log.h"
#include "readiness.h"
#include "store.h"
#include "util.h"
#include "../store-files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LAST_SEQ 5
static const int64_t NOW = 1900000000;
static const char *const segment_names[] = { "health-dmz", "police-lan", "civil-affairs", "tax-dmz" };

static struct store *store;
static char dir[64], path[128];

static void store_remove(void)
{
    store_close(store);
    test_store_files_remove(dir, path);
}

/* A store on tmpfs when there is one (fsync is free there). */
static void store_setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/yg-fuzz-report-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/y.db", dir);
    log_set_level(LOG_LEVEL_ERR);     /* a regressed segment is logged as a warning */
    char *err = NULL;
    if (store_open(path, &store, &err) < 0) {
        fprintf(stderr, "fuzz-report: cannot open a store in %s: %s\n", dir, err ? err : "?");
        abort();
    }
    readiness_set_heartbeat(10);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        abort();
    int rc = sqlite3_exec(db,
        "INSERT INTO segments (id, name, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, interface,"
        "  state, state_since, created_at, updated_at, target_date) VALUES"
        " (1, 'health-dmz', '198.51.100.0/24', '198.51.100.1', '2001:db8:10::/64', '2001:db8:10::1',"
        "  'br-health', 'dual-stack-ready', 'x', 'x', 'x', '2026-12-31'),"
        " (2, 'police-lan', '203.0.113.0/25', '203.0.113.1', '2001:db8:20::/64', '2001:db8:20::1',"
        "  'br-police', 'v6-planned', 'x', 'x', 'x', '2026-12-31'),"
        " (3, 'civil-affairs', '192.0.2.0/24', '192.0.2.1', NULL, NULL, 'br-civil', 'v4-only',"
        "  'x', 'x', 'x', NULL),"
        " (4, 'tax-dmz', '203.0.113.128/25', '203.0.113.129', '2001:db8:50::/64', '2001:db8:50::1',"
        "  'br-tax', 'v6-planned', 'x', 'x', 'x', NULL);"
        "INSERT INTO segment_departments VALUES (1, 'health'), (2, 'police'), (3, 'civil-affairs');"
        "INSERT INTO hosts (id, name, created_at, last_seq, last_report_epoch) VALUES"
        " (1, 'hv01', 'x', 5, 1899999995), (2, 'hv02', 'x', 9, 1899999990);"
        "INSERT INTO host_segments (host_id, segment_id, ipv4_address, ipv6_address, status, checks) VALUES"
        " (1, 1, '198.51.100.21', '2001:db8:10::21', 'pass', '[]'),"
        " (1, 2, '203.0.113.21', NULL, NULL, NULL),"
        " (1, 3, '192.0.2.21', NULL, 'fail',"
        "  '[{\"check\":\"ipv6-global-address\",\"severity\":\"fail\",\"reason\":\"NO_GLOBAL_IPV6\"}]'),"
        " (2, 1, '198.51.100.22', '2001:db8:10::22', 'pass', '[]');"
        "INSERT INTO waivers (host_id, segment_id, reason, expires_epoch, created_by, created_at) VALUES"
        " (2, 1, 'replaced in January', 1900086400, 'token:1', 'x');",
        NULL, NULL, NULL);
    sqlite3_close(db);
    if (rc != SQLITE_OK)
        abort();
    atexit(store_remove);
}

struct ingest {
    json_t *report;
    json_t *answer;
    struct yg_error *error;
    int result;
};

static void check_segment(json_t *s)
{
    if (!s)
        abort();
    if (segment_state_from_string(json_string_value(json_object_get(s, "state"))) < 0)
        abort();
    json_int_t ready = json_integer_value(json_object_get(s, "hosts_ready"));
    json_int_t total = json_integer_value(json_object_get(s, "hosts_total"));
    if (ready < 0 || ready > total || !json_is_array(json_object_get(s, "hosts")))
        abort();
    char *text = json_dumps(s, JSON_COMPACT);
    if (!text)
        abort();
    free(text);
}

static int ingest_run(struct store_txn *txn, void *ctx)
{
    struct ingest *in = ctx;
    struct principal agent = { .role = ROLE_AGENT, .host_id = 1, .actor = "token:7" };
    in->result = readiness_ingest(txn, &agent, in->report, NOW, &in->answer, &in->error);
    /* Read every segment back through the writer's connection, which sees
     * what the report changed. */
    for (size_t i = 0; i < YG_ARRAY_SIZE(segment_names); i++) {
        json_t *s = readiness_segment_json(store_txn_conn(txn), segment_names[i], NOW);
        check_segment(s);
        json_decref(s);
    }
    json_t *list = readiness_segments_json(store_txn_conn(txn), NULL, NOW);
    if (json_array_size(json_object_get(list, "items")) != YG_ARRAY_SIZE(segment_names))
        abort();
    json_decref(list);
    return -ECANCELED;          /* roll back: the next input starts afresh */
}

static void check_error(const struct yg_error *e)
{
    if (e->http_status == 422) {
        if (e->n_details < 1)
            abort();
        for (size_t i = 0; i < e->n_details; i++)
            if (!e->details[i].path || !e->details[i].message)
                abort();
    } else if (e->http_status != 400) {
        abort();
    }
    json_t *j = yg_error_to_json(e);
    char *s = json_dumps(j, 0);
    if (!s)
        abort();
    free(s);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        store_setup();
    /* As api_call_body_json() does (an empty body there is {}, which the
     * check refuses like any other report without seq). */
    json_error_t jerr;
    json_t *report = size ? json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &jerr)
                          : json_object();
    if (!report)
        return 0;
    struct yg_error *e = readiness_report_check(report);
    if (e) {
        check_error(e);
        if (json_is_object(report) && e->http_status != 422)
            abort();
        yg_error_free(e);
        json_decref(report);
        return 0;
    }
    if (!json_is_object(report))
        abort();

    struct ingest in = { .report = report };
    if (store_run(store, ingest_run, &in) != -ECANCELED)
        abort();
    if (in.result != 0 || in.error || !in.answer)
        abort();
    json_int_t seq = json_integer_value(json_object_get(report, "seq"));
    json_t *applied = json_object_get(in.answer, "applied");
    json_int_t last_seq = json_integer_value(json_object_get(in.answer, "last_seq"));
    if (!json_is_boolean(applied) || !json_is_boolean(json_object_get(in.answer, "resync")) ||
        json_is_true(applied) != (seq > LAST_SEQ) ||
        last_seq != (json_is_true(applied) ? seq : LAST_SEQ))
        abort();
    json_decref(in.answer);
    yg_error_free(in.error);
    json_decref(report);
    return 0;
}

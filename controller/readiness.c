#include <config.h>
#include "readiness.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "audit.h"
#include "auth.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define LOG_DOMAIN "readiness"
#define REPORT_MAX_SEGMENTS 256
#define REPORT_MAX_CHECKS 64

static const char *const state_names[SEGMENT_STATE_MAX] = {
    [SEGMENT_V4_ONLY] = "v4-only",
    [SEGMENT_V6_PLANNED] = "v6-planned",
    [SEGMENT_DUAL_STACK_PARTIAL] = "dual-stack-partial",
    [SEGMENT_DUAL_STACK_READY] = "dual-stack-ready",
};

const char *segment_state_to_string(enum segment_state s)
{
    return (unsigned) s < SEGMENT_STATE_MAX ? state_names[s] : NULL;
}

int segment_state_from_string(const char *s)
{
    for (int i = 0; s && i < SEGMENT_STATE_MAX; i++)
        if (streq(state_names[i], s))
            return i;
    return -1;
}

static atomic_int heartbeat_seconds = READINESS_HEARTBEAT_DEFAULT;
void readiness_set_heartbeat(int seconds) { atomic_store(&heartbeat_seconds, seconds > 0 ? seconds : 1); }
int readiness_heartbeat(void) { return atomic_load(&heartbeat_seconds); }
static int64_t stale_after(void) { return 3 * (int64_t) readiness_heartbeat(); }

/* When this controller started judging freshness.  While it was down, agents
 * could not report: their reports count as fresh from its start, so a
 * restart after maintenance does not mark every segment stale (and
 * regressed) before the agents' spools have been replayed. */
static _Atomic int64_t judging_since;
void readiness_set_judging_since(int64_t epoch) { atomic_store(&judging_since, epoch); }

static int64_t freshness(int64_t last_epoch)
{
    int64_t since = atomic_load(&judging_since);
    return last_epoch > since ? last_epoch : since;
}

static const struct {
    const char *reason;
    const char *remedy;
} remedies[] = {
    { "IPV6_DISABLED", "enable IPv6 on the interface (net.ipv6.conf.IFACE.disable_ipv6=0; playbook enable-dual-stack)" },
    { "MTU_TOO_SMALL", "raise the interface MTU to at least 1280, the IPv6 minimum" },
    { "INTERFACE_MISSING", "create the segment's bridge on the host or correct the segment's interface name" },
    { "INTERFACE_DOWN", "bring the interface up" },
    { "NO_LINK_LOCAL", "enable IPv6 on the interface so that it gets a fe80:: link-local address" },
    { "DAD_FAILED", "another node uses the same link-local address: fix the duplicate MAC or interface id" },
    { "NO_GLOBAL_IPV6", "add the planned IPv6 address (playbook enable-dual-stack)" },
    { "IPV6_TENTATIVE", "wait for duplicate address detection to finish; if it persists check the link" },
    { "IPV6_DEPRECATED", "renew the address or the router advertisement's preferred lifetime" },
    { "IPV6_DAD_FAILED", "another host holds the same IPv6 address: correct the address plan" },
    { "IPV6_OUTSIDE_PREFIX", "replace the address with one from the segment's IPv6 prefix" },
    { "NO_IPV4_IN_PREFIX", "configure the planned IPv4 address from the segment's IPv4 prefix" },
    { "NO_IPV6_DEFAULT_ROUTE", "add an IPv6 default route via the segment gateway (playbook fix-default-route)" },
    { "GATEWAY_NEIGH_FAILED", "the IPv6 gateway does not answer neighbour solicitations: check the gateway and the VLAN" },
    { "GATEWAY_NEIGH_INCOMPLETE", "the IPv6 gateway has not answered yet: check the gateway and the VLAN" },
    { "GATEWAY_NOT_ROUTER", "the gateway address answers but is not a router: check the gateway configuration" },
    { "RA_IGNORED_FORWARDING", "set accept_ra=2 on forwarding hosts that use SLAAC (playbook accept-ra-with-forwarding)" },
    { "RA_DISABLED", "enable router advertisements (accept_ra) on SLAAC segments" },
    { "IPV4_ONLY_LISTENER", "make the service listen on IPv6 too ([::] or a dual-stack socket)" },
    { "NO_REPORT", "start yunguan-agent on the host and enroll it (yunguan host enroll HOST)" },
    { "STALE_REPORT", "the host's agent has not reported for three heartbeats: check the agent and the host" },
};

const char *readiness_remedy(const char *reason)
{
    for (size_t i = 0; reason && i < YG_ARRAY_SIZE(remedies); i++)
        if (streq(remedies[i].reason, reason))
            return remedies[i].remedy;
    return "";
}

/* ---- evaluating one host on one segment ---- */

enum host_verdict { HOST_READY, HOST_BLOCKED, HOST_STALE, HOST_NO_REPORT, HOST_WAIVED };

static void summary_note(struct readiness_checks_summary *sum, const char *check, size_t check_len,
                         const char *severity, size_t severity_len, const char *reason,
                         size_t reason_len)
{
    bool fail = severity && severity_len == 4 && !memcmp(severity, "fail", 4);
    if (check && severity && check_len == 19 && !memcmp(check, "ipv6-global-address", 19) && !fail)
        sum->usable_ipv6 = true;
    if (fail && reason && !sum->has_reason) {
        sum->has_reason = true;
        snprintf(sum->first_reason, sizeof sum->first_reason, "%.*s", (int) reason_len, reason);
    }
}

/* The summary of checks already parsed (an array of check objects). */
void readiness_checks_summary_json(json_t *checks, struct readiness_checks_summary *sum)
{
    *sum = (struct readiness_checks_summary) { 0 };
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) {
        json_t *check = json_object_get(c, "check"), *severity = json_object_get(c, "severity"),
               *reason = json_object_get(c, "reason");
        summary_note(sum, json_string_value(check), json_string_length(check),
                     json_string_value(severity), json_string_length(severity),
                     json_string_value(reason), json_string_length(reason));
    }
}

/* A string at *P (after its opening quote) without escapes: its length,
 * *P moved past the closing quote.  -1 at a backslash, a control
 * character or the end: the caller lets jansson read the text. */
static ssize_t scan_plain_string(const char **p)
{
    const char *s = *p;
    for (const char *q = s; ; q++) {
        unsigned char ch = (unsigned char) *q;
        if (ch == '"') {
            *p = q + 1;
            return q - s;
        }
        if (ch == '\\' || ch < 0x20)
            return -1;
    }
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* The summary of stored checks text without building a jansson tree (a
 * segment's recompute reads every blocked host's checks: json_loads was
 * the largest part of a changed report's cost).  The stored text is
 * jansson's compact dump of checks the report check accepted: an array of
 * objects of strings.  Anything else — an escape in a string, a member
 * that is not a string, a syntax this scan does not expect — returns
 * false, and the caller parses with jansson, so both give the same. */
static bool checks_summary_scan(const char *text, struct readiness_checks_summary *sum)
{
    *sum = (struct readiness_checks_summary) { 0 };
    const char *p = skip_ws(text);
    if (*p++ != '[')
        return false;
    p = skip_ws(p);
    if (*p == ']')
        return *skip_ws(p + 1) == '\0';
    for (;;) {
        if (*p++ != '{')
            return false;
        const char *check = NULL, *severity = NULL, *reason = NULL;
        size_t check_len = 0, severity_len = 0, reason_len = 0;
        p = skip_ws(p);
        if (*p == '}')
            p++;
        else
            for (;;) {
                if (*p++ != '"')
                    return false;
                const char *key = p;
                ssize_t key_len = scan_plain_string(&p);
                if (key_len < 0)
                    return false;
                p = skip_ws(p);
                if (*p++ != ':')
                    return false;
                p = skip_ws(p);
                if (*p++ != '"')
                    return false;
                const char *value = p;
                ssize_t value_len = scan_plain_string(&p);
                if (value_len < 0)
                    return false;
                /* A repeated key: the last one counts, as in jansson. */
                if (key_len == 5 && !memcmp(key, "check", 5))
                    check = value, check_len = (size_t) value_len;
                else if (key_len == 8 && !memcmp(key, "severity", 8))
                    severity = value, severity_len = (size_t) value_len;
                else if (key_len == 6 && !memcmp(key, "reason", 6))
                    reason = value, reason_len = (size_t) value_len;
                p = skip_ws(p);
                if (*p == '}') {
                    p++;
                    break;
                }
                if (*p++ != ',')
                    return false;
                p = skip_ws(p);
            }
        summary_note(sum, check, check_len, severity, severity_len, reason, reason_len);
        p = skip_ws(p);
        if (*p == ']')
            return *skip_ws(p + 1) == '\0';
        if (*p++ != ',')
            return false;
        p = skip_ws(p);
    }
}

/* The summary of stored checks text (NULL or empty: no checks). */
void readiness_checks_summary_text(const char *text, struct readiness_checks_summary *sum)
{
    if (!text || !*text) {
        *sum = (struct readiness_checks_summary) { 0 };
        return;
    }
    if (checks_summary_scan(text, sum))
        return;
    json_t *checks = json_loads(text, 0, NULL);
    readiness_checks_summary_json(checks, sum);
    json_decref(checks);
}

struct host_eval {
    enum host_verdict verdict;
    bool usable_ipv6;
    const char *first_reason;      /* points into summary or checks (valid while e lives) */
    json_t *checks;                /* parsed only for a page (host_eval_init's WANT_CHECKS) */
    struct readiness_checks_summary summary;
};

/* The verdict needs only the status and the report's age.  The checks are
 * read when WANT_SUMMARY (to learn whether the host has a usable IPv6
 * address) and always for a blocked host, whose first failing reason is
 * wanted; WANT_CHECKS (a page that shows them) parses them into e->checks,
 * which is NULL otherwise. */
static void host_eval_init(struct host_eval *e, const char *status, const char *checks_text,
                           int64_t last_epoch, bool has_last, bool waived, int64_t now,
                           bool want_summary, bool want_checks)
{
    e->verdict = HOST_READY;
    e->usable_ipv6 = false;
    e->first_reason = NULL;
    e->checks = NULL;
    if (waived)
        e->verdict = HOST_WAIVED;
    else if (!status || !*status || !has_last)
        e->verdict = HOST_NO_REPORT;
    else if (now - freshness(last_epoch) > stale_after())
        e->verdict = HOST_STALE;
    else if (streq(status, "fail"))
        e->verdict = HOST_BLOCKED;
    if (!want_checks && !want_summary && e->verdict != HOST_BLOCKED)
        return;
    if (want_checks) {
        e->checks = checks_text && *checks_text ? json_loads(checks_text, 0, NULL) : NULL;
        readiness_checks_summary_json(e->checks, &e->summary);
        /* The page shows the reason whole. */
        size_t i;
        json_t *c;
        json_array_foreach(e->checks, i, c) {
            const char *severity = json_string_value(json_object_get(c, "severity"));
            if (severity && streq(severity, "fail") && !e->first_reason)
                e->first_reason = json_string_value(json_object_get(c, "reason"));
        }
    } else {
        readiness_checks_summary_text(checks_text, &e->summary);
        if (e->summary.has_reason)
            e->first_reason = e->summary.first_reason;
    }
    e->usable_ipv6 = e->summary.usable_ipv6;
    /* A stale host keeps its last known address: the segment is then
     * 'dual-stack-partial' (reports stale), not back to 'v6-planned'. */
    if (e->verdict == HOST_NO_REPORT)
        e->usable_ipv6 = false;
}

static const char *host_eval_reason(const struct host_eval *e)
{
    switch (e->verdict) {
    case HOST_NO_REPORT: return "NO_REPORT";
    case HOST_STALE: return "STALE_REPORT";
    case HOST_BLOCKED: return e->first_reason ? e->first_reason : "CHECK_FAILED";
    default: return NULL;
    }
}

static const char *verdict_name(enum host_verdict v)
{
    static const char *const names[] = { "ready", "blocked", "stale", "no-report", "waived" };
    return names[v];
}

#define HOSTS_OF_SEGMENT_SQL \
    "SELECT h.id, h.name, hs.status, hs.checks, h.last_report_epoch, h.last_report_at, " \
    "       hs.ipv4_address, hs.ipv6_address, hs.changed_at, " \
    "       (SELECT w.reason FROM waivers w WHERE w.host_id = h.id AND w.segment_id = hs.segment_id " \
    "          AND w.expires_epoch > ?2 ORDER BY w.expires_epoch DESC LIMIT 1), " \
    "       (SELECT w.expires_epoch FROM waivers w WHERE w.host_id = h.id AND w.segment_id = hs.segment_id " \
    "          AND w.expires_epoch > ?2 ORDER BY w.expires_epoch DESC LIMIT 1) " \
    "FROM host_segments hs JOIN hosts h ON h.id = hs.host_id WHERE hs.segment_id = ?1 ORDER BY h.name"

/* What readiness_recompute needs of each host, in no particular order: no
 * ORDER BY and no per-row sorted subquery, so SQLite builds no temporary
 * b-tree (each one is a large allocation and free, and in a threaded
 * process glibc's trimming of it costs a TLB shootdown on every CPU). */
#define HOSTS_OF_SEGMENT_STATE_SQL \
    "SELECT hs.status, hs.checks, h.last_report_epoch, " \
    "       EXISTS (SELECT 1 FROM waivers w WHERE w.host_id = hs.host_id " \
    "               AND w.segment_id = hs.segment_id AND w.expires_epoch > ?2) " \
    "FROM host_segments hs JOIN hosts h ON h.id = hs.host_id WHERE hs.segment_id = ?1"

struct reason_count {
    char reason[48];
    int n;
};

static void count_reason(struct reason_count *counts, size_t *n, size_t cap, const char *reason)
{
    for (size_t i = 0; i < *n; i++)
        if (streq(counts[i].reason, reason)) {
            counts[i].n++;
            return;
        }
    if (*n < cap) {
        snprintf(counts[*n].reason, sizeof counts[*n].reason, "%s", reason);
        counts[(*n)++].n = 1;
    }
}

int readiness_recompute(struct store_txn *txn, int64_t segment_id, int64_t now)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT name, ipv6_prefix IS NOT NULL, state, regressed, hosts_ready, hosts_total, "
        "       blocking_reason FROM segments WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, segment_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return -ENOENT;
    }
    _cleanup_free_ char *name = xstrdup(store_column_text(st, 0));
    bool has_v6 = sqlite3_column_int(st, 1);
    int old_state = segment_state_from_string(store_column_text(st, 2));
    bool old_regressed = sqlite3_column_int(st, 3);
    int old_ready = sqlite3_column_int(st, 4), old_total = sqlite3_column_int(st, 5);
    _cleanup_free_ char *old_reason = sqlite3_column_type(st, 6) == SQLITE_NULL ? NULL
                                      : xstrdup(store_column_text(st, 6));
    sqlite3_reset(st);

    st = store_stmt(conn, HOSTS_OF_SEGMENT_STATE_SQL);
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, segment_id);
    sqlite3_bind_int64(st, 2, now);
    int total = 0, ready = 0, with_v6 = 0;
    struct reason_count counts[32];
    size_t n_counts = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        /* Whether some host has a usable IPv6 address only matters until
         * one is found: the checks of the others need no parsing (blocked
         * hosts' are parsed for their reason all the same). */
        struct host_eval e;
        host_eval_init(&e, (const char *) sqlite3_column_text(st, 0),
                       (const char *) sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2),
                       sqlite3_column_type(st, 2) != SQLITE_NULL, sqlite3_column_int(st, 3),
                       now, with_v6 == 0, false);
        if (e.verdict != HOST_WAIVED) {
            total++;
            ready += e.verdict == HOST_READY;
            with_v6 += e.usable_ipv6;
            const char *reason = host_eval_reason(&e);
            if (reason)
                count_reason(counts, &n_counts, YG_ARRAY_SIZE(counts), reason);
        }
        json_decref(e.checks);
    }
    sqlite3_reset(st);

    enum segment_state state;
    if (!has_v6)
        state = SEGMENT_V4_ONLY;
    else if (total > 0 && ready == total)
        state = SEGMENT_DUAL_STACK_READY;
    else if (with_v6 > 0)
        state = SEGMENT_DUAL_STACK_PARTIAL;
    else
        state = SEGMENT_V6_PLANNED;
    const char *reason = NULL;
    int best = 0;
    for (size_t i = 0; i < n_counts; i++)
        if (counts[i].n > best || (counts[i].n == best && strcmp(counts[i].reason, reason) < 0)) {
            best = counts[i].n;
            reason = counts[i].reason;
        }
    bool regressed = state == SEGMENT_DUAL_STACK_READY ? false
                   : old_regressed || old_state == SEGMENT_DUAL_STACK_READY;

    bool state_changed = (int) state != old_state;
    if (!state_changed && regressed == old_regressed && ready == old_ready && total == old_total &&
        streq_ptr(reason, old_reason))
        return 0;

    char at[32];
    format_utc_now(at);
    st = store_stmt(conn,
        "UPDATE segments SET state = ?2, regressed = ?3, hosts_ready = ?4, hosts_total = ?5, "
        "  blocking_reason = ?6, state_since = CASE WHEN state = ?2 THEN state_since ELSE ?7 END "
        "WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, segment_id);
    store_bind_text(st, 2, state_names[state]);
    sqlite3_bind_int(st, 3, regressed);
    sqlite3_bind_int(st, 4, ready);
    sqlite3_bind_int(st, 5, total);
    store_bind_text(st, 6, reason);
    store_bind_text(st, 7, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    if (!state_changed)
        return 0;

    st = store_stmt(conn,
        "INSERT INTO segment_history (segment_id, state, hosts_ready, hosts_total, at) "
        "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, segment_id);
    store_bind_text(st, 2, state_names[state]);
    sqlite3_bind_int(st, 3, ready);
    sqlite3_bind_int(st, 4, total);
    store_bind_text(st, 5, at);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;

    _cleanup_free_ char *object = xasprintf("segment/%s", name);
    json_t *before = json_pack("{s:s?}", "state", old_state >= 0 ? state_names[old_state] : NULL);
    json_t *after = json_pack("{s:s, s:i, s:i, s:s?, s:b}", "state", state_names[state],
                              "hosts_ready", ready, "hosts_total", total, "blocking_reason", reason,
                              "regressed", regressed);
    bool fell_back = old_state == SEGMENT_DUAL_STACK_READY && state != SEGMENT_DUAL_STACK_READY;
    int r = audit_append(txn, "system", "system", fell_back ? "segment.regressed" : "segment.state",
                         object, before, after);
    json_decref(before);
    json_decref(after);
    if (fell_back)
        log_warn(LOG_DOMAIN, "segment '%s' regressed from dual-stack-ready to %s (%s)", name,
                 state_names[state], reason ? reason : "?");
    return r;
}

int readiness_sweep(struct store_txn *txn, int64_t since, int64_t now)
{
    /* Hosts whose last report crossed the staleness line in (since, now].
     * A report is stale once now - last > stale_after() (host_eval_init),
     * so the sweep at NOW takes last < now - stale_after(), less those the
     * sweep at SINCE took: last < since - stale_after(). */
    sqlite3_stmt *st = store_stmt(store_txn_conn(txn),
        "SELECT DISTINCT hs.segment_id FROM hosts h JOIN host_segments hs ON hs.host_id = h.id "
        "WHERE h.last_report_epoch >= ?1 AND h.last_report_epoch < ?2");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, since - stale_after());
    sqlite3_bind_int64(st, 2, now - stale_after());
    int64_t *ids = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        ids = xrealloc(ids, (n + 1) * sizeof *ids);
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    /* Reports older than this controller's start count as fresh from the
     * start: they all turn stale together, three heartbeats after it. */
    int64_t started = atomic_load(&judging_since);
    if (started > 0 && since - stale_after() <= started && started < now - stale_after()) {
        st = store_stmt(store_txn_conn(txn),
            "SELECT DISTINCT hs.segment_id FROM hosts h JOIN host_segments hs ON hs.host_id = h.id "
            "WHERE h.last_report_epoch < ?1");
        if (!st) {
            free(ids);
            return -EIO;
        }
        sqlite3_bind_int64(st, 1, started);
        while (sqlite3_step(st) == SQLITE_ROW) {
            ids = xrealloc(ids, (n + 1) * sizeof *ids);
            ids[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
    }
    /* Waivers that expired in the window change their segments too. */
    st = store_stmt(store_txn_conn(txn),
        "SELECT DISTINCT segment_id FROM waivers WHERE expires_epoch > ?1 AND expires_epoch <= ?2");
    if (st) {
        sqlite3_bind_int64(st, 1, since);
        sqlite3_bind_int64(st, 2, now);
        while (sqlite3_step(st) == SQLITE_ROW) {
            ids = xrealloc(ids, (n + 1) * sizeof *ids);
            ids[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
    }
    int r = 0;
    for (size_t i = 0; i < n && r >= 0; i++)
        r = readiness_recompute(txn, ids[i], now);
    free(ids);
    return r < 0 ? r : 0;
}

/* ---- reports ---- */

static bool sha256_hex_valid(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool severity_valid(const char *s)
{
    return s && (streq(s, "pass") || streq(s, "warn") || streq(s, "fail"));
}

static int severity_rank(const char *s)
{
    return streq(s, "fail") ? 2 : streq(s, "warn") ? 1 : 0;
}

struct yg_error *readiness_report_check(json_t *report)
{
    struct yg_error *e = NULL;
#define PROBLEM(path, ...) do { \
        if (!e) e = yg_error_new(422, "invalid_report", "the agent report is not valid"); \
        yg_error_add_detail(e, 0, 0, path, __VA_ARGS__); } while (0)
    if (!json_is_object(report))
        return yg_error_new(400, "bad_request", "the agent report must be a JSON object");
    json_t *seq = json_object_get(report, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        PROBLEM("seq", "must be a positive integer");
    json_t *hash = json_object_get(report, "results_sha256");
    if (hash && !sha256_hex_valid(json_string_value(hash)))
        PROBLEM("results_sha256", "must be the SHA-256 of the results: 64 lower-case hex digits");
    json_t *segments = json_object_get(report, "segments");
    /* Without segments the report is a heartbeat: the hash stands for them. */
    if (!(hash && !segments) &&
        (!json_is_array(segments) || json_array_size(segments) > REPORT_MAX_SEGMENTS))
        PROBLEM("segments", "must be an array of at most %d segments (or absent, in a heartbeat "
                "with 'results_sha256')", REPORT_MAX_SEGMENTS);
    size_t i, k;
    json_t *s, *c;
    json_array_foreach(segments, i, s) {
        char path[64];
        snprintf(path, sizeof path, "segments[%zu]", i);
        if (!json_is_string(json_object_get(s, "name")))
            PROBLEM(path, "needs a 'name' string");
        json_t *checks = json_object_get(s, "checks");
        if (!json_is_array(checks) || json_array_size(checks) > REPORT_MAX_CHECKS) {
            PROBLEM(path, "needs 'checks', an array of at most %d checks", REPORT_MAX_CHECKS);
            continue;
        }
        json_array_foreach(checks, k, c) {
            char cpath[96];
            snprintf(cpath, sizeof cpath, "segments[%zu].checks[%zu]", i, k);
            const char *check = json_string_value(json_object_get(c, "check"));
            const char *reason = json_string_value(json_object_get(c, "reason"));
            const char *message = json_string_value(json_object_get(c, "message"));
            if (!check || strlen(check) > 64 || !reason || strlen(reason) > 47 ||
                !severity_valid(json_string_value(json_object_get(c, "severity"))) ||
                (message && strlen(message) > 1024))
                PROBLEM(cpath, "needs check (text), severity (pass, warn or fail), reason (a code) "
                        "and an optional message of at most 1024 characters");
        }
    }
#undef PROBLEM
    return e;
}

/* The answer to an applied report.  RESULTS_SHA256 (when the controller
 * stored it) tells the agent that a heartbeat may carry only that hash. */
static json_t *heartbeat_answer(int64_t seq, bool resync, const char *results_sha256)
{
    json_t *a = json_pack("{s:b, s:I, s:b}", "applied", 1, "last_seq", (json_int_t) seq, "resync", resync);
    if (results_sha256)
        json_object_set_new(a, "results_sha256", json_string(results_sha256));
    return a;
}

/* A heartbeat whose hash matches the stored results: they are the agent's
 * current evaluation, so only their freshness and last_seq move.  A host
 * that was stale becomes fresh, which may change its segments' verdicts. */
static int ingest_heartbeat(struct store_txn *txn, int64_t host_id, int64_t seq,
                            const char *results_sha256, bool was_fresh, int64_t now,
                            json_t **ret_answer)
{
    struct store_conn *conn = store_txn_conn(txn);
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(conn,
        "UPDATE hosts SET last_seq = ?2, last_report_at = ?3, last_report_epoch = ?4 WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, host_id);
    sqlite3_bind_int64(st, 2, seq);
    store_bind_text(st, 3, at);
    sqlite3_bind_int64(st, 4, now);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    if (!was_fresh) {
        int64_t *ids = NULL;
        size_t n = 0;
        st = store_stmt(conn, "SELECT segment_id FROM host_segments WHERE host_id = ?1");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, host_id);
        while (sqlite3_step(st) == SQLITE_ROW) {
            ids = xrealloc(ids, (n + 1) * sizeof *ids);
            ids[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        for (size_t i = 0; i < n; i++)
            if (readiness_recompute(txn, ids[i], now) < 0) {
                free(ids);
                return -EIO;
            }
        free(ids);
    }
    *ret_answer = heartbeat_answer(seq, false, results_sha256);
    return 0;
}

/* Checks are stored as jansson's compact dump (keys in the report's order). */
#define CHECKS_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

struct text_compare {
    const char *text;
    size_t len, off;
};

static int compare_chunk(const char *buf, size_t size, void *data)
{
    struct text_compare *tc = data;
    if (size > tc->len - tc->off || memcmp(tc->text + tc->off, buf, size) != 0)
        return -1;      /* differs: jansson stops dumping */
    tc->off += size;
    return 0;
}

/* A string of the stored text at *P equal to the bytes S (N)?  Stored
 * text is jansson's dump, which escapes '"', '\\' and control characters:
 * a string stored without a backslash is its bytes.  1 equal, 0 not, -1
 * the stored string has an escape (undecided). */
static int plain_string_equal(const char **p, const char *s, size_t n)
{
    if (**p != '"')
        return 0;
    const char *start = ++*p;
    ssize_t len = scan_plain_string(p);
    if (len < 0)
        return -1;
    return (size_t) len == n && memcmp(start, s, n) == 0;
}

/* CHECKS (an array of objects of strings) against stored TEXT, member by
 * member in order, with no dump: 1 equal, 0 not, -1 undecided (anything
 * else: an escape, a value that is not a string). */
static int checks_equal_members(json_t *checks, const char *p)
{
    if (*p++ != '[')
        return 0;
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c) {
        if (!json_is_object(c))
            return -1;
        if (i > 0 && *p++ != ',')
            return 0;
        if (*p++ != '{')
            return 0;
        size_t k = 0;
        const char *key;
        json_t *value;
        json_object_foreach(c, key, value) {
            if (!json_is_string(value))
                return -1;
            if (k++ > 0 && *p++ != ',')
                return 0;
            int r = plain_string_equal(&p, key, strlen(key));
            if (r <= 0)
                return r;
            if (*p++ != ':')
                return 0;
            r = plain_string_equal(&p, json_string_value(value), json_string_length(value));
            if (r <= 0)
                return r;
        }
        if (*p++ != '}')
            return 0;
    }
    return p[0] == ']' && p[1] == '\0';
}

/* Whether CHECKS dump (CHECKS_DUMP_FLAGS) to exactly TEXT (NULL: none
 * stored), without making that text: compared member by member, or else
 * through jansson's dump callback. */
static bool checks_equal_text(json_t *checks, const char *text)
{
    if (!text)
        return false;
    int r = checks_equal_members(checks, text);
    if (r >= 0)
        return r;
    struct text_compare tc = { .text = text, .len = strlen(text) };
    return json_dump_callback(checks, compare_chunk, &tc, CHECKS_DUMP_FLAGS) == 0 && tc.off == tc.len;
}

int readiness_ingest(struct store_txn *txn, const struct principal *agent, json_t *report,
                     int64_t now, json_t **ret_answer, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    int64_t seq = json_integer_value(json_object_get(report, "seq"));
    const char *results_sha256 = json_string_value(json_object_get(report, "results_sha256"));
    json_t *segments = json_object_get(report, "segments");
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT last_seq, last_report_epoch, results_sha256 FROM hosts WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, agent->host_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        *ret_error = yg_error_new(404, "not_found", "this agent's host no longer exists");
        return -ENOENT;
    }
    int64_t last_seq = sqlite3_column_int64(st, 0);
    /* Was this host stale (or never heard of)?  Then every segment's
     * verdict may change even where the results did not. */
    bool was_fresh = sqlite3_column_type(st, 1) != SQLITE_NULL &&
                     now - freshness(sqlite3_column_int64(st, 1)) <= stale_after();
    bool hash_known = results_sha256 && sqlite3_column_type(st, 2) != SQLITE_NULL &&
                      streq(results_sha256, store_column_text(st, 2));
    sqlite3_reset(st);
    if (seq <= last_seq) {
        /* Already applied (a replayed spool): acknowledge, change nothing. */
        *ret_answer = json_pack("{s:b, s:I, s:b}", "applied", 0, "last_seq", (json_int_t) last_seq,
                                "resync", 0);
        return 0;
    }
    if (!segments) {
        if (!hash_known) {
            /* A hash this controller did not store with the host's results
             * (none yet, a plan change since, a restored store): the stored
             * results are not vouched for, so they stay as old as they are.
             * Ask for the full report (and a fresh look at the plan). */
            *ret_answer = json_pack("{s:b, s:I, s:b}", "applied", 0, "last_seq", (json_int_t) last_seq,
                                    "resync", 1);
            return 0;
        }
        return ingest_heartbeat(txn, agent->host_id, seq, results_sha256, was_fresh, now, ret_answer);
    }

    char at[32];
    format_utc_now(at);
    bool resync = false;
    size_t carried = 0;
    /* Every segment the host carries: the report's result, or none. */
    st = store_stmt(conn,
        "SELECT s.id, s.name, hs.status, hs.checks FROM host_segments hs "
        "JOIN segments s ON s.id = hs.segment_id WHERE hs.host_id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, agent->host_id);
    struct carried { int64_t id; char *name, *status, *checks; json_t *found; } *rows = NULL;
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows = xrealloc(rows, (carried + 1) * sizeof *rows);
        rows[carried].id = sqlite3_column_int64(st, 0);
        rows[carried].name = xstrdup(store_column_text(st, 1));
        rows[carried].status = sqlite3_column_type(st, 2) == SQLITE_NULL ? NULL : xstrdup(store_column_text(st, 2));
        rows[carried].checks = sqlite3_column_type(st, 3) == SQLITE_NULL ? NULL : xstrdup(store_column_text(st, 3));
        carried++;
    }
    sqlite3_reset(st);

    /* Which of the report's segments is which carried one. */
    size_t matched = 0;
    for (size_t i = 0; i < carried; i++) {
        json_t *s;
        size_t k;
        rows[i].found = NULL;
        json_array_foreach(segments, k, s)
            if (streq_ptr(json_string_value(json_object_get(s, "name")), rows[i].name)) {
                rows[i].found = s;
                matched++;
                break;
            }
        if (!rows[i].found)
            resync = true;   /* the agent does not know this segment yet */
    }
    if (matched < json_array_size(segments))
        resync = true;       /* it reports segments it no longer carries */

    /* The agent's hash of these results is kept only when they are the
     * results of exactly the segments the host carries: otherwise a later
     * heartbeat with it must not vouch for them.  Updated before the
     * segments are recomputed, which judge the host's freshness. */
    if (resync)
        results_sha256 = NULL;
    st = store_stmt(conn,
        "UPDATE hosts SET last_seq = ?2, last_report_at = ?3, last_report_epoch = ?4, "
        "results_sha256 = ?5 WHERE id = ?1");
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, agent->host_id);
    sqlite3_bind_int64(st, 2, seq);
    store_bind_text(st, 3, at);
    sqlite3_bind_int64(st, 4, now);
    store_bind_text(st, 5, results_sha256);
    if (sqlite3_step(st) != SQLITE_DONE) {
        sqlite3_reset(st);
        goto fail;
    }
    sqlite3_reset(st);

    for (size_t i = 0; i < carried; i++) {
        json_t *found = rows[i].found;
        json_t *checks = found ? json_object_get(found, "checks") : NULL;
        const char *status = NULL;
        if (found) {
            json_t *c;
            size_t k;
            int worst = 0;
            json_array_foreach(checks, k, c) {
                int rank = severity_rank(json_string_value(json_object_get(c, "severity")));
                if (rank > worst)
                    worst = rank;
            }
            status = worst == 2 ? "fail" : worst == 1 ? "warn" : "pass";
        }
        /* Compared with the stored text as it would be stored, without
         * making that text unless it differs (most full reports are
         * unchanged on most segments). */
        bool changed = !streq_ptr(status, rows[i].status) ||
                       (found ? !checks_equal_text(checks, rows[i].checks) : rows[i].checks != NULL);
        if (changed) {
            _cleanup_free_ char *text = found ? json_dumps(checks, CHECKS_DUMP_FLAGS) : NULL;
            st = store_stmt(conn,
                "UPDATE host_segments SET status = ?3, checks = ?4, changed_at = ?5 "
                "WHERE host_id = ?1 AND segment_id = ?2");
            if (!st)
                goto fail;
            sqlite3_bind_int64(st, 1, agent->host_id);
            sqlite3_bind_int64(st, 2, rows[i].id);
            store_bind_text(st, 3, status);
            store_bind_text(st, 4, text);
            store_bind_text(st, 5, at);
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE)
                goto fail;
        }
        /* The segment's state depends on this host only through its
         * status, its first failing reason and whether it has usable IPv6
         * (host_eval_init): a change of messages alone (a neighbour's
         * state, an address's lifetime) leaves the segment as it is. */
        bool verdict_changed = false;
        if (changed) {
            struct readiness_checks_summary before, after;
            readiness_checks_summary_text(rows[i].checks, &before);
            readiness_checks_summary_json(checks, &after);
            verdict_changed = !streq_ptr(status, rows[i].status) ||
                              before.usable_ipv6 != after.usable_ipv6 ||
                              before.has_reason != after.has_reason ||
                              !streq(before.first_reason, after.first_reason);
        }
        if ((verdict_changed || !was_fresh) && readiness_recompute(txn, rows[i].id, now) < 0)
            goto fail;
    }

    for (size_t i = 0; i < carried; i++) {
        free(rows[i].name);
        free(rows[i].status);
        free(rows[i].checks);
    }
    free(rows);
    *ret_answer = heartbeat_answer(seq, resync, results_sha256);
    return 0;
fail:
    for (size_t i = 0; i < carried; i++) {
        free(rows[i].name);
        free(rows[i].status);
        free(rows[i].checks);
    }
    free(rows);
    return -EIO;
}

json_t *readiness_agent_segments(struct store_conn *conn, int64_t host_id)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT s.name, s.interface, s.ipv4_prefix, s.ipv4_gateway, s.ipv6_prefix, s.ipv6_gateway, "
        "       s.slaac, hs.ipv4_address, hs.ipv6_address "
        "FROM host_segments hs JOIN segments s ON s.id = hs.segment_id "
        "WHERE hs.host_id = ?1 ORDER BY s.name");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, host_id);
    json_t *items = json_array();
#define TEXT_OR_NULL(i) (sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() \
                         : json_string(store_column_text(st, i)))
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:{s:o, s:o}}",
            "name", store_column_text(st, 0), "interface", store_column_text(st, 1),
            "ipv4_prefix", TEXT_OR_NULL(2), "ipv4_gateway", TEXT_OR_NULL(3),
            "ipv6_prefix", TEXT_OR_NULL(4), "ipv6_gateway", TEXT_OR_NULL(5),
            "slaac", sqlite3_column_int(st, 6),
            "plan", "ipv4_address", TEXT_OR_NULL(7), "ipv6_address", TEXT_OR_NULL(8)));
    sqlite3_reset(st);
    st = store_stmt(conn, "SELECT name FROM hosts WHERE id = ?1");
    if (!st) {
        json_decref(items);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, host_id);
    json_t *host = sqlite3_step(st) == SQLITE_ROW ? TEXT_OR_NULL(0) : json_null();
    sqlite3_reset(st);
    return json_pack("{s:o, s:i, s:o}", "host", host, "heartbeat_seconds", readiness_heartbeat(),
                     "segments", items);
}

/* ---- reads ---- */

static json_t *segment_row_json(sqlite3_stmt *st)
{
    json_t *s = json_pack("{s:s, s:o, s:s, s:b, s:i, s:i, s:o, s:o, s:s, s:o}",
        "name", store_column_text(st, 0),
        "vlan", sqlite3_column_type(st, 1) == SQLITE_NULL ? json_null() : json_integer(sqlite3_column_int(st, 1)),
        "state", store_column_text(st, 2),
        "regressed", sqlite3_column_int(st, 3),
        "hosts_ready", sqlite3_column_int(st, 4),
        "hosts_total", sqlite3_column_int(st, 5),
        "blocking_reason", TEXT_OR_NULL(6),
        "target_date", TEXT_OR_NULL(7),
        "state_since", store_column_text(st, 8),
        "ipv6_prefix", TEXT_OR_NULL(9));
    return s;
}

#define SEGMENT_COLUMNS \
    "SELECT s.name, s.vlan, s.state, s.regressed, s.hosts_ready, s.hosts_total, s.blocking_reason, " \
    "       s.target_date, s.state_since, s.ipv6_prefix, s.id, s.ipv4_prefix, s.ipv4_gateway, " \
    "       s.ipv6_gateway, s.interface, s.slaac FROM segments s "

json_t *readiness_segments_json(struct store_conn *conn, const char *department, int64_t now)
{
    sqlite3_stmt *st = department
        ? store_stmt(conn, SEGMENT_COLUMNS
                     "WHERE s.id IN (SELECT segment_id FROM segment_departments WHERE department = ?1) "
                     "ORDER BY s.name")
        : store_stmt(conn, SEGMENT_COLUMNS "ORDER BY s.name");
    if (!st)
        return NULL;
    if (department)
        store_bind_text(st, 1, department);
    json_t *items = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(items, segment_row_json(st));
    sqlite3_reset(st);
    return json_pack("{s:o}", "items", items);
}

json_t *readiness_segment_json(struct store_conn *conn, const char *name, int64_t now)
{
    sqlite3_stmt *st = store_stmt(conn, SEGMENT_COLUMNS "WHERE s.name = ?1");
    if (!st)
        return NULL;
    store_bind_text(st, 1, name);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return NULL;
    }
    json_t *seg = segment_row_json(st);
    int64_t id = sqlite3_column_int64(st, 10);
    json_object_set_new(seg, "ipv4_prefix", TEXT_OR_NULL(11));
    json_object_set_new(seg, "ipv4_gateway", TEXT_OR_NULL(12));
    json_object_set_new(seg, "ipv6_gateway", TEXT_OR_NULL(13));
    json_object_set_new(seg, "interface", TEXT_OR_NULL(14));
    json_object_set_new(seg, "slaac", json_boolean(sqlite3_column_int(st, 15)));
    sqlite3_reset(st);

    json_t *departments = json_array();
    st = store_stmt(conn, "SELECT department FROM segment_departments WHERE segment_id = ?1 ORDER BY 1");
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(departments, json_string(store_column_text(st, 0)));
        sqlite3_reset(st);
    }
    json_object_set_new(seg, "departments", departments);

    json_t *hosts = json_array();
    st = store_stmt(conn, HOSTS_OF_SEGMENT_SQL);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now);
        while (sqlite3_step(st) == SQLITE_ROW) {
            struct host_eval e;
            bool waived = sqlite3_column_type(st, 9) != SQLITE_NULL;
            host_eval_init(&e, (const char *) sqlite3_column_text(st, 2),
                           (const char *) sqlite3_column_text(st, 3), sqlite3_column_int64(st, 4),
                           sqlite3_column_type(st, 4) != SQLITE_NULL, waived, now, false, true);
            json_t *failing = json_array();
            size_t k;
            json_t *c;
            json_array_foreach(e.checks, k, c) {
                const char *sev = json_string_value(json_object_get(c, "severity"));
                if (sev && !streq(sev, "pass")) {
                    json_t *copy = json_deep_copy(c);
                    json_object_set_new(copy, "remedy", json_string(
                        readiness_remedy(json_string_value(json_object_get(c, "reason")))));
                    json_array_append_new(failing, copy);
                }
            }
            const char *reason = host_eval_reason(&e);
            if (reason && (e.verdict == HOST_STALE || e.verdict == HOST_NO_REPORT))
                json_array_append_new(failing, json_pack("{s:s, s:s, s:s, s:s, s:s}",
                    "check", "report", "severity", "fail", "reason", reason,
                    "message", e.verdict == HOST_STALE ? "the last report is older than three heartbeats"
                                                       : "no report from this host's agent yet",
                    "remedy", readiness_remedy(reason)));
            json_t *h = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                "host", store_column_text(st, 1), "verdict", verdict_name(e.verdict),
                "status", TEXT_OR_NULL(2), "last_report_at", TEXT_OR_NULL(5),
                "ipv4_address", TEXT_OR_NULL(6), "ipv6_address", TEXT_OR_NULL(7),
                "reason", reason ? json_string(reason) : json_null(),
                "problems", failing, "changed_at", TEXT_OR_NULL(8));
            if (waived)
                json_object_set_new(h, "waiver", json_pack("{s:s, s:I}", "reason",
                    store_column_text(st, 9), "expires_epoch", (json_int_t) sqlite3_column_int64(st, 10)));
            json_array_append_new(hosts, h);
            json_decref(e.checks);
        }
        sqlite3_reset(st);
    }
    json_object_set_new(seg, "hosts", hosts);
    return seg;
}

json_t *readiness_history_json(struct store_conn *conn, const char *name)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT h.state, h.hosts_ready, h.hosts_total, h.at FROM segment_history h "
        "JOIN segments s ON s.id = h.segment_id WHERE s.name = ?1 ORDER BY h.id");
    if (!st)
        return NULL;
    store_bind_text(st, 1, name);
    json_t *items = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(items, json_pack("{s:s, s:i, s:i, s:s}", "state", store_column_text(st, 0),
            "hosts_ready", sqlite3_column_int(st, 1), "hosts_total", sqlite3_column_int(st, 2),
            "at", store_column_text(st, 3)));
    sqlite3_reset(st);
    return json_pack("{s:s, s:o}", "segment", name, "items", items);
}

/* Progress of a set of segments: shares of segments and hosts ready, and
 * the target dates still open. */
static json_t *progress_row(const char *label, int64_t segments, int64_t ready_segments,
                            int64_t hosts, int64_t ready_hosts, const char *next_target,
                            int64_t late)
{
    return json_pack("{s:s, s:I, s:I, s:f, s:I, s:I, s:f, s:o, s:I}",
        "scope", label, "segments", (json_int_t) segments, "segments_ready", (json_int_t) ready_segments,
        "segments_ready_share", segments ? (double) ready_segments / (double) segments : 0.0,
        "hosts", (json_int_t) hosts, "hosts_ready", (json_int_t) ready_hosts,
        "hosts_ready_share", hosts ? (double) ready_hosts / (double) hosts : 0.0,
        "next_target_date", next_target ? json_string(next_target) : json_null(),
        "segments_late", (json_int_t) late);
}

json_t *readiness_progress_json(struct store_conn *conn, int64_t now)
{
    char today[16];
    time_t t = (time_t) now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);

    static const char *const sql_overall =
        "SELECT count(*), COALESCE(SUM(state = 'dual-stack-ready'), 0), COALESCE(SUM(hosts_total), 0), "
        "       COALESCE(SUM(hosts_ready), 0), "
        "       MIN(CASE WHEN state <> 'dual-stack-ready' AND target_date >= ?1 THEN target_date END), "
        "       COALESCE(SUM(state <> 'dual-stack-ready' AND target_date < ?1), 0) FROM segments";
    static const char *const sql_departments =
        "SELECT d.department, count(*), COALESCE(SUM(s.state = 'dual-stack-ready'), 0), "
        "       COALESCE(SUM(s.hosts_total), 0), COALESCE(SUM(s.hosts_ready), 0), "
        "       MIN(CASE WHEN s.state <> 'dual-stack-ready' AND s.target_date >= ?1 THEN s.target_date END), "
        "       COALESCE(SUM(s.state <> 'dual-stack-ready' AND s.target_date < ?1), 0) "
        "FROM segment_departments d JOIN segments s ON s.id = d.segment_id "
        "GROUP BY d.department ORDER BY d.department";
    sqlite3_stmt *st = store_stmt(conn, sql_overall);
    if (!st)
        return NULL;
    store_bind_text(st, 1, today);
    json_t *overall = NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        overall = progress_row("overall", sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                               sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                               (const char *) sqlite3_column_text(st, 4), sqlite3_column_int64(st, 5));
    sqlite3_reset(st);
    json_t *departments = json_array();
    st = store_stmt(conn, sql_departments);
    if (st) {
        store_bind_text(st, 1, today);
        while (sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(departments, progress_row(store_column_text(st, 0),
                sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                sqlite3_column_int64(st, 4), (const char *) sqlite3_column_text(st, 5),
                sqlite3_column_int64(st, 6)));
        sqlite3_reset(st);
    }
    return json_pack("{s:s, s:o, s:o}", "today", today, "overall", overall ? overall : json_null(),
                     "departments", departments);
}

int readiness_waiver_add(struct store_txn *txn, const struct principal *by, const char *segment,
                         const char *host, const char *reason, int64_t expires, int64_t now,
                         json_t **ret_waiver, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT hs.segment_id, hs.host_id FROM host_segments hs "
        "JOIN segments s ON s.id = hs.segment_id JOIN hosts h ON h.id = hs.host_id "
        "WHERE s.name = ?1 AND h.name = ?2");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, segment);
    store_bind_text(st, 2, host);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        *ret_error = yg_error_new(404, "not_found", "host '%s' does not carry segment '%s'", host, segment);
        return -ENOENT;
    }
    int64_t segment_id = sqlite3_column_int64(st, 0), host_id = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    if (expires <= now) {
        *ret_error = yg_error_new(422, "invalid_request", "a waiver must expire in the future");
        return -EINVAL;
    }
    char at[32];
    format_utc_now(at);
    st = store_stmt(conn,
        "INSERT INTO waivers (host_id, segment_id, reason, expires_epoch, created_by, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, host_id);
    sqlite3_bind_int64(st, 2, segment_id);
    store_bind_text(st, 3, reason);
    sqlite3_bind_int64(st, 4, expires);
    store_bind_text(st, 5, by->actor);
    store_bind_text(st, 6, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    int64_t id = sqlite3_last_insert_rowid(store_conn_db(conn));
    json_t *waiver = json_pack("{s:I, s:s, s:s, s:s, s:I, s:s, s:s}", "id", (json_int_t) id,
                               "segment", segment, "host", host, "reason", reason,
                               "expires_epoch", (json_int_t) expires, "created_by", by->actor,
                               "created_at", at);
    _cleanup_free_ char *object = xasprintf("segment/%s/host/%s", segment, host);
    int r = audit_append(txn, by->actor, role_to_string(by->role), "segment.waive", object, NULL, waiver);
    if (r == 0)
        r = readiness_recompute(txn, segment_id, now);
    if (r < 0) {
        json_decref(waiver);
        return r;
    }
    *ret_waiver = waiver;
    return 0;
}

/* ---- the staleness sweep ---- */

struct readiness_sweeper {
    struct store_ticker *ticker;
    int64_t last;
};

static int sweep_run(struct store_txn *txn, void *ctx)
{
    struct readiness_sweeper *sw = ctx;
    int64_t now = (int64_t) time(NULL);
    int r = readiness_sweep(txn, sw->last, now);
    if (r == 0)
        sw->last = now;
    return r;
}

struct readiness_sweeper *readiness_sweeper_start(struct store *store)
{
    struct readiness_sweeper *sw = xcalloc(1, sizeof *sw);
    /* Freshness is judged from now on (see freshness()); the first sweep
     * recomputes every segment whose hosts reported before we started. */
    readiness_set_judging_since((int64_t) time(NULL));
    sw->ticker = store_ticker_start(store, "staleness sweep", readiness_heartbeat, sweep_run, sw);
    if (!sw->ticker) {
        free(sw);
        return NULL;
    }
    return sw;
}

void readiness_sweeper_stop(struct readiness_sweeper *sw)
{
    if (!sw)
        return;
    store_ticker_stop(sw->ticker);
    free(sw);
}

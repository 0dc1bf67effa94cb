/* Per-segment dual-stack readiness from the agents' reports.
 *
 * A host-on-segment result is the worst severity of its checks.  A segment
 * is 'v4-only' (no IPv6 prefix), 'v6-planned' (prefix, but no host has a
 * usable IPv6 address), 'dual-stack-partial' (some non-waived host blocked
 * or its reports stale), 'dual-stack-ready' (every non-waived host passes
 * with fresh reports), with a 'regressed' flag once a ready segment falls
 * back.  The derived state is stored with the segment and recomputed in the
 * same transaction as whatever changes it; each change of state writes a
 * history row and an audit entry. */
#ifndef YG_READINESS_H
#define YG_READINESS_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

struct store;
struct store_conn;
struct store_txn;
struct principal;

enum segment_state {
    SEGMENT_V4_ONLY,
    SEGMENT_V6_PLANNED,
    SEGMENT_DUAL_STACK_PARTIAL,
    SEGMENT_DUAL_STACK_READY,
    SEGMENT_STATE_MAX,
};
const char *segment_state_to_string(enum segment_state s);
int segment_state_from_string(const char *s);

/* Agents report at least this often; a report older than three heartbeats
 * is stale. */
#define READINESS_HEARTBEAT_DEFAULT 10
void readiness_set_heartbeat(int seconds);
int readiness_heartbeat(void);

/* Reports count as fresh at least from EPOCH (the controller's start), so
 * that a controller outage does not make every host stale.  0: off. */
void readiness_set_judging_since(int64_t epoch);

/* Recompute one segment's derived state at NOW (epoch seconds). */
int readiness_recompute(struct store_txn *txn, int64_t segment_id, int64_t now);

/* Recompute the segments of hosts whose reports went stale in (since, now]. */
int readiness_sweep(struct store_txn *txn, int64_t since, int64_t now);

/* Validate an agent report (doc/AGENT.md) before it reaches the writer.
 * NULL when fine, else a 400/422 error naming the JSON path. */
struct yg_error *readiness_report_check(json_t *report);

/* What a segment's state needs of one host's checks: whether it has a
 * usable IPv6 address (ipv6-global-address not failing) and the reason of
 * its first failing check. */
struct readiness_checks_summary {
    bool usable_ipv6;
    bool has_reason;
    char first_reason[48];      /* reasons are at most 47 bytes (readiness_report_check) */
};
/* From checks as stored (their compact JSON text; NULL or "": none), read
 * without a jansson tree when the text is the usual array of objects of
 * plain strings, else parsed: either way the same as ..._json() of the
 * parsed text. */
void readiness_checks_summary_text(const char *text, struct readiness_checks_summary *ret);
void readiness_checks_summary_json(json_t *checks, struct readiness_checks_summary *ret);

/* Apply a checked report from AGENT's host: a full report, or a hash-only
 * heartbeat (no "segments") that refreshes the stored results only when
 * its results_sha256 is the one stored with them.  *ret_answer gets
 * {"applied":bool,"last_seq":N,"resync":bool[,"results_sha256":hash stored]}. */
int readiness_ingest(struct store_txn *txn, const struct principal *agent, json_t *report,
                     int64_t now, json_t **ret_answer, struct yg_error **ret_error);

/* Desired state for an agent's host (doc/AGENT.md "Desired state"). */
json_t *readiness_agent_segments(struct store_conn *conn, int64_t host_id);

/* Reads.  DEPARTMENT limits to segments it owns (NULL: all). */
json_t *readiness_segments_json(struct store_conn *conn, const char *department, int64_t now);
json_t *readiness_segment_json(struct store_conn *conn, const char *name, int64_t now);
json_t *readiness_progress_json(struct store_conn *conn, int64_t now);
json_t *readiness_history_json(struct store_conn *conn, const char *name);

/* A waiver for HOST on SEGMENT until EXPIRES (epoch).  Audited. */
int readiness_waiver_add(struct store_txn *txn, const struct principal *by, const char *segment,
                         const char *host, const char *reason, int64_t expires, int64_t now,
                         json_t **ret_waiver, struct yg_error **ret_error);

/* A human remedy for a reason code ("" when none is known). */
const char *readiness_remedy(const char *reason);

/* Start / stop the thread that runs the staleness sweep every heartbeat. */
struct readiness_sweeper;
struct readiness_sweeper *readiness_sweeper_start(struct store *store);
void readiness_sweeper_stop(struct readiness_sweeper *sw);

#endif

/* The request lifecycle: states and the transition table (data, not ifs).
 *
 *   submitted → approved | rejected | withdrawn
 *   approved  → provisioning → active → closed      (the controller, vms.c)
 *   approved  → withdrawn ;  provisioning → failed → approved (retry)
 */
#ifndef YG_LIFECYCLE_H
#define YG_LIFECYCLE_H 1

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct store_txn;
struct principal;

enum request_state {
    REQUEST_SUBMITTED,
    REQUEST_APPROVED,
    REQUEST_REJECTED,
    REQUEST_WITHDRAWN,
    REQUEST_PROVISIONING,
    REQUEST_ACTIVE,
    REQUEST_CLOSED,
    REQUEST_FAILED,
    REQUEST_STATE_MAX,
};

/* States whose resources count against the department's quota. */
#define REQUEST_LIVE_STATES_SQL "'approved','provisioning','active','failed'"

enum request_action {
    REQUEST_ACTION_APPROVE,
    REQUEST_ACTION_REJECT,
    REQUEST_ACTION_WITHDRAW,
    REQUEST_ACTION_PROVISION,   /* system: placement done, VMs being built */
    REQUEST_ACTION_ACTIVATE,    /* system: every VM running */
    REQUEST_ACTION_CLOSE,       /* system: last VM decommissioned */
    REQUEST_ACTION_FAIL,        /* system: provisioning failed */
    REQUEST_ACTION_RETRY,       /* cloudops: try a failed request again */
    REQUEST_ACTION_MAX,
};

struct request_transition {
    enum request_state from;
    enum request_action action;
    enum request_state to;
    unsigned roles;             /* ROLE_BIT()s allowed; 0 = the controller itself */
};

extern const struct request_transition request_transitions[];
extern const size_t request_n_transitions;

const char *request_state_to_string(enum request_state s);
int request_state_from_string(const char *s);
const char *request_action_to_string(enum request_action a);
int request_action_from_string(const char *s);
bool request_state_is_live(enum request_state s);

const struct request_transition *lifecycle_find(enum request_state from, enum request_action action);

/* Apply ACTION to request ID inside TXN as BY: visibility, role, legality
 * and (for approve) the quota, checked in this same transaction; then the
 * state change, its transition row and its audit entry.  0, or negative
 * with *ret_error set (404, 403, 409 illegal_transition/quota_exceeded). */
int lifecycle_apply(struct store_txn *txn, const struct principal *by, int64_t request_id,
                    enum request_action action, const char *reason, struct yg_error **ret_error);

/* Record the first transition (→ submitted) of a new request. */
int lifecycle_record(struct store_txn *txn, const struct principal *by, int64_t request_id,
                     int from, enum request_state to, const char *reason);

#endif

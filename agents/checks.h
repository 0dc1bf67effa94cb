/* The dual-stack checks of one segment on this host (doc/AGENT.md "Checks
 * and reason codes"): a pure function of a snapshot and the segment's
 * desired state.  No I/O, no clock, no libnl. */
#ifndef YG_AGENT_CHECKS_H
#define YG_AGENT_CHECKS_H 1

#include <stddef.h>
#include <jansson.h>

#include "desired.h"
#include "snapshot.h"

/* Ordered: the worst of several is the largest. */
enum checks_severity {
    CHECKS_PASS,
    CHECKS_WARN,
    CHECKS_FAIL,
    CHECKS_SEVERITY_MAX,
};

enum checks_check {
    CHECK_IPV6_ENABLED,
    CHECK_LINK_LOCAL,
    CHECK_IPV6_GLOBAL_ADDRESS,
    CHECK_IPV4_ADDRESS,
    CHECK_IPV6_DEFAULT_ROUTE,
    CHECK_GATEWAY_NEIGHBOUR,
    CHECK_ACCEPT_RA,
    CHECK_IPV4_ONLY_LISTENERS,
    CHECK_MAX,
};

enum checks_reason {
    REASON_OK,
    REASON_IPV6_DISABLED,
    REASON_MTU_TOO_SMALL,
    REASON_INTERFACE_MISSING,
    REASON_INTERFACE_DOWN,
    REASON_NO_LINK_LOCAL,
    REASON_DAD_FAILED,
    REASON_NO_GLOBAL_IPV6,
    REASON_IPV6_TENTATIVE,
    REASON_IPV6_DEPRECATED,
    REASON_IPV6_DAD_FAILED,
    REASON_IPV6_OUTSIDE_PREFIX,
    REASON_NO_IPV4_IN_PREFIX,
    REASON_NO_IPV6_DEFAULT_ROUTE,
    REASON_GATEWAY_NEIGH_FAILED,
    REASON_GATEWAY_NEIGH_INCOMPLETE,
    REASON_GATEWAY_NOT_ROUTER,
    REASON_RA_IGNORED_FORWARDING,
    REASON_RA_DISABLED,
    REASON_IPV4_ONLY_LISTENER,
    REASON_MAX,
};

const char *checks_severity_to_string(enum checks_severity s);   /* "pass", "warn", "fail" */
int checks_severity_from_string(const char *s);                 /* -1 when unknown */
const char *checks_check_to_string(enum checks_check c);         /* "ipv6-enabled", ... */
int checks_check_from_string(const char *s);
const char *checks_reason_to_string(enum checks_reason r);       /* "IPV6_DISABLED", ... */
int checks_reason_from_string(const char *s);
/* The check a reason belongs to (REASON_OK: CHECK_MAX, it belongs to all). */
enum checks_check checks_reason_check(enum checks_reason r);

/* The ipv6-enabled / gateway-neighbour thresholds. */
#define CHECKS_IPV6_MIN_MTU 1280
/* At most this many values are named in one message ("…and 3 more"). */
#define CHECKS_MAX_LISTED 8

struct checks_item {
    enum checks_check check;
    enum checks_severity severity;
    enum checks_reason reason;
    char *message;              /* one sentence naming the values */
};

struct checks_result {
    char *segment;
    char *interface;
    enum checks_severity status;        /* the worst of items[] */
    struct checks_item *items;          /* in check order; a check may have several */
    size_t n_items;
};

/* Evaluate every check of one segment.  A missing interface gives the one
 * item INTERFACE_MISSING (nothing else can be looked at); otherwise each
 * check gives either one OK item or one item per problem found. */
void checks_evaluate(const struct snapshot *snap, const struct desired_segment *seg,
                     struct checks_result *ret);
void checks_result_clear(struct checks_result *r);

/* {"name","interface","status","checks":[{"check","severity","reason","message"}]} */
json_t *checks_result_to_json(const struct checks_result *r);

#endif

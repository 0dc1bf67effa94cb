/* One concrete playbook step on this host (doc/AGENT.md "Playbook tasks",
 * "Steps"): parsed from the wire into typed values (nothing on the wire is
 * trusted: the action must be known, every argument of the right JSON type
 * and range, addresses of one family, sysctl keys inside the allowed
 * trees), then checked against or applied to the kernel.
 *
 * Changes go through libnl on the caller's own netlink socket, or through
 * writes to /proc/sys; nothing is run in a shell.  State is always read
 * fresh from the kernel just before a step (no cache), so that what is
 * snapshotted is what is changed.
 *
 * Undo information is JSON ("undo operations"): the same objects are kept
 * in memory, written to the task journal before the change, and replayed
 * by steps_undo() in reverse order, in this process or after a restart.
 * Every undo operation is idempotent (deleting what is absent, adding what
 * is present, writing the value already there all succeed), so an
 * operation journalled for a change that never happened is harmless. */
#ifndef YG_AGENT_STEPS_H
#define YG_AGENT_STEPS_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "checks.h"
#include "desired.h"
#include "ip.h"
#include "playbook.h"

#define STEPS_MAX_NAME 128              /* a step's "name" */
#define STEPS_MAX_SYSCTL_VALUE 128      /* a sysctl.set "value" */
#define STEPS_MAX_UNDO_OPS 256          /* per step (route.remove of many routes) */
/* before / after / message in a result are cut to this many bytes (the
 * controller takes at most 4096). */
#define STEPS_MAX_TEXT 4000

enum step_status {
    STEP_NOT_RUN,
    STEP_CHANGED,
    STEP_UNCHANGED,
    STEP_WOULD_CHANGE,
    STEP_SKIPPED,
    STEP_FAILED,
    STEP_UNDONE,
    STEP_UNDO_FAILED,
    STEP_STATUS_MAX,
};
const char *step_status_to_string(enum step_status s);   /* "not-run", "changed", ... */
int step_status_from_string(const char *s);

enum step_mode {
    STEP_MODE_CHECK,
    STEP_MODE_APPLY,
    STEP_MODE_MAX,
};
const char *step_mode_to_string(enum step_mode m);       /* "check", "apply" */
int step_mode_from_string(const char *s);

/* What check.run and verify wait for. */
enum step_expect_kind {
    STEP_EXPECT_DUAL_STACK_READY,       /* every check passes or warns */
    STEP_EXPECT_PASS,
    STEP_EXPECT_WARN,
    STEP_EXPECT_FAIL,
    STEP_EXPECT_MAX,
};

struct step_expect {
    bool present;
    int check;                  /* enum checks_check, or -1: the whole segment */
    enum step_expect_kind expect;
    int reason;                 /* enum checks_reason, or -1: any */
    unsigned timeout_ms;
};

/* `when`: a condition on one check, evaluated just before the step. */
struct step_when {
    bool present;
    enum checks_check check;
    int status;                 /* enum checks_severity, or -1: "does not pass" */
    int reason;                 /* enum checks_reason, or -1: any */
};

enum step_wait_condition {
    STEP_WAIT_ADDRESS_USABLE,
    STEP_WAIT_NEIGHBOUR_REACHABLE,
    STEP_WAIT_MAX,
};

struct step {
    unsigned index;
    char *name;
    enum playbook_action action;
    /* Arguments; which are set depends on the action. */
    char key[96];                               /* sysctl.set */
    char value[STEPS_MAX_SYSCTL_VALUE + 1];     /* sysctl.set */
    char interface[16];                         /* "" when not given */
    struct ip_prefix address;                   /* address.*, wait.for (len: family bits when "addr") */
    bool address_has_len;
    bool nodad;
    struct ip_prefix dst;                       /* route.* */
    struct ip_addr via;                         /* family 0: none */
    bool has_metric, has_table;
    uint32_t metric, table;
    unsigned mtu;
    struct step_expect check;                   /* check.run */
    enum step_wait_condition wait;              /* wait.for */
    unsigned timeout_ms;                        /* wait.for */
    struct step_when when;
    struct step_expect verify;
};

/* Parse one step object.  PATH ("steps[2]") starts every message; the
 * message says what is wrong and what would be right.  0, or -EINVAL
 * with *ret_error (a sentence to free).  *ret is only written on success;
 * steps_clear() it afterwards. */
int step_from_json(json_t *js, const char *path, struct step *ret, char **ret_error);
void step_clear(struct step *s);

/* What one step did. */
struct step_result {
    enum step_status status;
    char *before;               /* NULL: nothing to say */
    char *after;
    char *message;
    uint64_t duration_us;
    json_t *undo;               /* array of undo operations; NULL: nothing to undo */
};
void step_result_clear(struct step_result *r);
/* TEXT as a JSON string of at most STEPS_MAX_TEXT bytes ("…" at the end
 * when cut, never inside a UTF-8 sequence). */
json_t *steps_json_text(const char *text);
/* {"index","name","action","status","before","after","message","duration_us"} */
json_t *step_result_to_json(const struct step *s, const struct step_result *r);

struct nl_sock;
struct netstate_unanswered;

/* Called with the step's undo operations after the snapshot and before
 * the change (the journal write).  A negative return stops the step
 * before anything is changed (it fails with that error). */
typedef int (*steps_before_change_fn)(const struct step *s, json_t *undo, void *userdata);

struct steps_env {
    struct nl_sock *sock;                       /* connected NETLINK_ROUTE, the caller's */
    const struct desired_segment *segment;      /* for check.run / when / verify */
    /* The running daemon's remembered unanswered neighbours, merged into
     * every evaluation (netstate.h); NULL: none (--run-task, tests). */
    struct netstate_unanswered *unanswered;
    steps_before_change_fn before_change;       /* may be NULL */
    void *userdata;
    uint64_t deadline_us;                       /* monotonic; 0: none (each wait has its own bound) */
    /* Polled by waits (at least every 200 ms): true ends the wait and
     * fails the step ("the agent is stopping").  May be NULL. */
    bool (*should_stop)(void *userdata);
    void *stop_userdata;
};

/* Run one step in MODE: evaluate `when`, check or apply the action,
 * evaluate `verify` when it changed something.  Always fills *ret
 * (status, before/after, message, duration, and in apply mode the undo
 * operations of what was changed, also when verify failed after the
 * change).  Returns 0, or -errno when the step failed (ret->status
 * STEP_FAILED, ret->message says why). */
int steps_run(const struct steps_env *env, const struct step *s, enum step_mode mode,
              struct step_result *ret);

/* Replay the undo operations of one step in reverse order.  0, or -errno
 * with *ret_error naming the operation that failed (the rest are still
 * tried). */
int steps_undo(struct nl_sock *sock, json_t *undo, char **ret_error);

/* Evaluate ENV's segment's checks now: a fresh snapshot over env->sock,
 * with env->unanswered merged in.  0 or -errno. */
int steps_evaluate(const struct steps_env *env, struct checks_result *ret);
/* Whether an expectation holds for an evaluation. */
bool steps_expect_holds(const struct step_expect *e, const struct checks_result *res);
/* Whether a `when` holds. */
bool steps_when_holds(const struct step_when *w, const struct checks_result *res);

/* Open a NETLINK_ROUTE socket for steps_*.  NULL and *ret_error on failure. */
struct nl_sock *steps_socket_new(char **ret_error);
void steps_socket_free(struct nl_sock *sock);
static inline void steps_socket_freep(struct nl_sock **s) { steps_socket_free(*s); }

#endif

/* VMs: the use and shutdown half of the closed loop.
 *
 *   pending → provisioning → running ⇄ stopped        (error on failure)
 *   running|stopped|error|unknown|pending → stopping → decommissioning → decommissioned
 *   running|stopped ⇄ unknown                         (host unreachable)
 *
 * The state machine is the table vm_transitions[].  Every change is one
 * store job (one transaction) with one audit entry.
 *
 * libvirt work is driven by the step journal: vms.step names the next
 * libvirt step and is committed before the step runs (build: volume,
 * define and start as one intent; start, stop, reboot; shutdown, wipe,
 * remove: volume deletion and undefine as one intent; rollback).
 * The engine thread hands the VMs that have a step to their host's worker
 * (hypervisor.c); the worker runs the step and commits its outcome together
 * with the next step.  Every step is idempotent on deterministic names
 * (yg-INSTANCE-vm-ID), so after a crash the journal says exactly what to
 * run again: provisioning resumes, a failed provisioning rolls back, and
 * nothing is left behind. */
#ifndef YG_VMS_H
#define YG_VMS_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "lifecycle.h"

struct store;
struct store_conn;
struct store_txn;
struct principal;
struct strbuf;

enum vm_state {
    VM_PENDING,
    VM_PROVISIONING,
    VM_RUNNING,
    VM_STOPPED,
    VM_ERROR,
    VM_STOPPING,
    VM_DECOMMISSIONING,
    VM_DECOMMISSIONED,
    VM_UNKNOWN,
    VM_STATE_MAX,
};
/* A VM holds its host's capacity and its department's quota in every state
 * but 'decommissioned'.  The store keeps that in a column of its own:
 * vms.released_at is NULL while the VM holds them and is set in the one
 * UPDATE that makes it 'decommissioned' (migration 012).  Queries of what
 * VMs hold say "released_at IS NULL": the partial indexes vms_held* answer
 * them, and a VM's moves between the other states rewrite none of them. */
#define VM_HELD_SQL(alias) alias "released_at IS NULL"

const char *vm_state_to_string(enum vm_state s);
int vm_state_from_string(const char *s);

struct vm_transition {
    enum vm_state from, to;
};
extern const struct vm_transition vm_transitions[];
extern const size_t vm_n_transitions;
bool vm_transition_allowed(enum vm_state from, enum vm_state to);

enum vm_action { VM_ACTION_START, VM_ACTION_STOP, VM_ACTION_REBOOT, VM_ACTION_MAX };
const char *vm_action_to_string(enum vm_action a);
int vm_action_from_string(const char *s);

struct vms_config {
    double vcpu_overcommit;             /* vCPUs per host CPU (config vcpu_overcommit) */
    int shutdown_timeout_seconds;       /* ACPI shutdown, then force off */
    int reconcile_seconds;              /* how often every host's domains are compared */
    int64_t volume_size_override_mib;   /* test-only: every volume this size (0: as requested) */
    bool decommission_approval;         /* a department's decommission needs cloudops */
    int lease_notice_days, lease_grace_days;   /* when a department has no policy */
    char *domain_type;                  /* "qemu" (TCG) or "kvm" */
};
void vms_config_defaults(struct vms_config *cfg);

/* The policy in force (set from the configuration by the engine). */
double vms_overcommit(void);
bool vms_decommission_approval(void);

/* The clock for leases: now plus YUNGUAN_TEST_NOW_OFFSET seconds (a
 * test-only shift, read once at start). */
int64_t vms_now(void);

/* Called by lifecycle_apply() inside its transaction after request
 * REQUEST_ID went FROM → TO: approval creates its VMs 'pending', a retry
 * puts failed VMs back to 'pending', a withdrawal cancels pending VMs. */
int vms_request_transitioned(struct store_txn *txn, const struct principal *by, int64_t request_id,
                             enum request_state from, enum request_state to);

/* Reads.  DEPARTMENT_ID 0 = all.  NULL when there is no such VM. */
json_t *vms_get_json(struct store_conn *conn, int64_t id, int64_t *ret_department_id);
json_t *vms_list_json(struct store_conn *conn, int64_t department_id, int64_t request_id, int state,
                      int64_t after, int limit);
json_t *vms_reclaim_json(struct store_conn *conn, int64_t vm_id);
json_t *vms_decommission_requests_json(struct store_conn *conn, int64_t department_id,
                                       const char *state);

/* Ask for start/stop/reboot (journalled; the engine does it).  202-style:
 * returns 0 with the VM in *ret_vm once the step is recorded. */
int vms_action(struct store_txn *txn, const struct principal *by, int64_t id, enum vm_action action,
               json_t **ret_vm, struct yg_error **ret_error);

/* Decommission: operations (or the controller, for leases) directly; a
 * department asks and cloudops decides when policy says so.  *ret_answer
 * is {"vm":…} or {"decommission_request":…}. */
int vms_decommission(struct store_txn *txn, const struct principal *by, int64_t id,
                     const char *reason, bool needs_approval, json_t **ret_answer,
                     struct yg_error **ret_error);
int vms_decommission_decide(struct store_txn *txn, const struct principal *by, int64_t request_id,
                            bool approve, const char *reason, json_t **ret_answer,
                            struct yg_error **ret_error);

/* Lease policy of a department.  Audited. */
int vms_lease_policy_set(struct store_txn *txn, const struct principal *by, const char *department,
                         int notice_days, int grace_days, json_t **ret, struct yg_error **ret_error);
json_t *vms_lease_policy_json(struct store_conn *conn, const char *department);

/* One placement pass over approved requests waiting for hosts; a lease
 * pass at NOW.  (The engine runs them; tests call them directly.) */
int vms_place_pending(struct store_txn *txn);
int vms_lease_sweep(struct store_txn *txn, int64_t now);

/* The engine: the thread that places, dispatches journalled steps to the
 * hosts' workers, runs the lease sweep and the periodic reconcile. */
struct vms_engine;
int vms_engine_start(struct store *store, const struct vms_config *cfg, struct vms_engine **ret,
                     char **ret_errmsg);
void vms_engine_stop(struct vms_engine *e);
/* Something changed (approval, host, capacity): look again soon.  No-op
 * without an engine (unit tests). */
void vms_engine_kick(void);
/* A host was registered or changed: (re)connect its worker. */
void vms_engine_host_changed(const char *name, const char *uri, const char *pool);
/* Run one reconcile of every host now and wait for it (tests, benchmarks).
 * Returns the milliseconds it took, or negative. */
double vms_engine_reconcile_now(struct vms_engine *e);
/* The last reconcile's findings: {"checked_at", "items":[…], "counts":{…}}. */
json_t *vms_drift_json(void);
/* Gauges for /metrics. */
void vms_metrics(struct store_conn *conn, struct strbuf *out);

/* Deterministic libvirt names for VM ID in store INSTANCE. */
void vms_domain_name(const char *instance, int64_t id, char buf[static 64]);
void vms_domain_uuid(const char *instance, int64_t id, char buf[static 37]);
/* The VM id of a domain name of INSTANCE, or -1. */
int64_t vms_id_from_domain(const char *instance, const char *domain);

#endif

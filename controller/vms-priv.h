/* Internals of vms.c shared with vms-engine.c and the unit tests. */
#ifndef YG_VMS_PRIV_H
#define YG_VMS_PRIV_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "vms.h"

struct store_conn;
struct store_txn;
struct principal;

/* This store's tag in libvirt names (settings.instance), buf[32]. */
int vms_instance(struct store_conn *conn, char buf[static 32]);
/* The controller itself, for lifecycle transitions with roles 0. */
const struct principal *vms_system_principal(void);
/* Move VM ID to TO (checked against vm_transitions[]) with STEP and ERROR,
 * one audit entry (AUDIT_ACTION, or "vm.<state>"; EXTRA merged into the
 * entry's "after"), then the request's own transition if its VMs say so. */
int vms_change(struct store_txn *txn, const struct principal *by, int64_t id, enum vm_state to,
               const char *step, const char *error, const char *audit_action, json_t *extra);
/* What a job knows of a VM: vms_change_known() then writes without reading
 * the row.  The write applies only if the row's step is still KNOWN->step
 * (-ESTALE if not: the VM was taken over since), so KNOWN may also come
 * from a read before this transaction, while that step was under way: no
 * one but the step's own outcome moves a VM with a step under way. */
struct vm_known {
    enum vm_state state;
    int64_t request_id;
    const char *step;           /* the step recorded, NULL: none */
};
int vms_change_known(struct store_txn *txn, const struct principal *by, int64_t id,
                     const struct vm_known *known, enum vm_state to, const char *step, const char *error,
                     const char *audit_action, json_t *extra);
/* Shut down (and wiped, WIPE_METHOD not NULL): 'decommissioning' with STEP
 * next and the wipe's method, in one write. */
int vms_change_wiped(struct store_txn *txn, const struct principal *by, int64_t id,
                     const struct vm_known *known, const char *step, const char *wipe_method,
                     const char *audit_action, json_t *extra);
int vms_set_step(struct store_txn *txn, int64_t id, const char *step);
/* Between these two (in one job), vms_change() notes which requests'
 * VMs changed and checks each request once at the end, not once per VM
 * (a batch moves many VMs of the same requests).  RUN false: forget them
 * (the job failed). */
void vms_defer_request_checks(void);
int vms_run_deferred_request_checks(struct store_txn *txn, bool run);
/* Reclaim record, addresses released, state decommissioned.
 * WIPE_OVERRIDE: the wipe method when nothing was built (else the VM's).
 * EXPECT_STEP: the step that ended (-ESTALE if the VM's journal says
 * another now), NULL: whatever it says. */
int vms_finish_decommission(struct store_txn *txn, int64_t vm_id, const char *wipe_override,
                            const char *expect_step);
int vms_request_check(struct store_txn *txn, int64_t request_id);
void vms_set_overcommit(double ratio);
void vms_set_decommission_approval(bool needed);
void vms_set_lease_defaults(int notice_days, int grace_days);

#endif

/* /api/v1/vms: list, show, start / stop / reboot, decommission and the
 * reclaim record; /api/v1/decommissions: a department's decommissions
 * waiting for cloud operations; /api/v1/lease-policies. */
#include <config.h>

#include <errno.h>

#include "api.h"
#include "api-handlers.h"
#include "quota.h"
#include "vms.h"
#include "util.h"

#define VMS_PAGE_DEFAULT 100
#define VMS_PAGE_MAX 1000

void api_vms_list(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    if (!reader) {
        api_reply_errorf(call, 500, "internal", "the store is unavailable");
        return;
    }
    const char *department = api_call_query(call, "department");
    const char *state_s = api_call_query(call, "state");
    const char *request_s = api_call_query(call, "request");
    const char *limit_s = api_call_query(call, "limit");
    const char *after_s = api_call_query(call, "after");
    int64_t department_id = 0, request_id = 0, limit = VMS_PAGE_DEFAULT, after = 0;
    int state = -1;
    if (!api_list_department_scope(call, by, reader, department, &department_id))
        return;
    if (state_s && (state = vm_state_from_string(state_s)) < 0) {
        api_reply_errorf(call, 400, "bad_request",
                         "state '%s' is not known; use pending, provisioning, running, stopped, error, "
                         "stopping, decommissioning, decommissioned or unknown", state_s);
        return;
    }
    if (request_s && !api_parse_int64(request_s, 1, INT64_MAX, &request_id)) {
        api_reply_errorf(call, 400, "bad_request", "request must be a request id (a positive integer)");
        return;
    }
    if (limit_s && !api_parse_int64(limit_s, 1, VMS_PAGE_MAX, &limit)) {
        api_reply_errorf(call, 400, "bad_request", "limit must be an integer from 1 to %d", VMS_PAGE_MAX);
        return;
    }
    if (after_s && !api_parse_int64(after_s, 0, INT64_MAX, &after)) {
        api_reply_errorf(call, 400, "bad_request", "after must be a VM id");
        return;
    }
    json_t *page = vms_list_json(reader, department_id, request_id, state, after, (int) limit);
    if (!page)
        api_reply_errorf(call, 500, "internal", "cannot list VMs");
    else
        api_reply_json(call, 200, page);
}

void api_vms_show(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    int64_t department_id = 0;
    json_t *vm = reader ? vms_get_json(reader, args->id, &department_id) : NULL;
    if (!vm || (by->role == ROLE_DEPARTMENT && department_id != by->department_id)) {
        json_decref(vm);
        api_reply_errorf(call, 404, "not_found", "VM %lld does not exist", (long long) args->id);
        return;
    }
    api_reply_json(call, 200, json_pack("{s:o}", "vm", vm));
}

void api_vms_reclaim(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    int64_t department_id = 0;
    json_t *vm = reader ? vms_get_json(reader, args->id, &department_id) : NULL;
    if (!vm || (by->role == ROLE_DEPARTMENT && department_id != by->department_id)) {
        json_decref(vm);
        api_reply_errorf(call, 404, "not_found", "VM %lld does not exist", (long long) args->id);
        return;
    }
    json_t *rec = vms_reclaim_json(reader, args->id);
    if (!rec) {
        api_reply_errorf(call, 404, "not_found", "VM %lld has no reclaim record: it is '%s', not decommissioned",
                         (long long) args->id, json_string_value(json_object_get(vm, "state")));
        json_decref(vm);
        return;
    }
    json_decref(vm);
    api_reply_json(call, 200, json_pack("{s:o}", "reclaim", rec));
}

enum vm_job_kind { JOB_ACTION, JOB_DECOMMISSION, JOB_DECIDE, JOB_LEASE_POLICY };

struct vm_job {
    enum vm_job_kind kind;
    struct principal by;
    int64_t id;
    enum vm_action action;
    bool approve;
    char *reason;
    char department[128];
    int notice_days, grace_days;
    int status;
    json_t *answer;
    struct yg_error *error;
};

static int vm_job_run(struct store_txn *txn, void *ctx)
{
    struct vm_job *j = ctx;
    json_t *vm = NULL;
    int r;
    switch (j->kind) {
    case JOB_ACTION:
        r = vms_action(txn, &j->by, j->id, j->action, &vm, &j->error);
        if (r == 0)
            j->answer = json_pack("{s:o}", "vm", vm);
        j->status = 202;
        return r;
    case JOB_DECOMMISSION:
        r = vms_decommission(txn, &j->by, j->id, j->reason, vms_decommission_approval(), &j->answer,
                             &j->error);
        j->status = 202;
        return r;
    case JOB_DECIDE:
        j->status = 200;
        return vms_decommission_decide(txn, &j->by, j->id, j->approve, j->reason, &j->answer, &j->error);
    case JOB_LEASE_POLICY:
        j->status = 200;
        r = vms_lease_policy_set(txn, &j->by, j->department, j->notice_days, j->grace_days, &vm, &j->error);
        if (r == 0)
            j->answer = json_pack("{s:o}", "lease_policy", vm);
        return r;
    }
    return -EINVAL;
}

static void vm_job_finish(struct api_call *call, void *ctx, int result)
{
    struct vm_job *j = ctx;
    if (result == 0 && j->answer)
        api_reply_json(call, j->status, json_incref(j->answer));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    else
        api_reply_errorf(call, result == -ESHUTDOWN ? 503 : 500, "internal",
                         "the change could not be stored (%s)", strerror(-result));
    json_decref(j->answer);
    yg_error_free(j->error);
    free(j->reason);
    free(j);
}

/* An optional {"reason": "…"} body. */
static bool reason_body(struct api_call *call, char **ret_reason, bool required)
{
    json_t *body = api_call_body_json(call);
    if (!body)
        return false;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (!streq(key, "reason")) {
            api_reply_errorf(call, 400, "bad_request", "unknown field '%s'; only 'reason' is accepted", key);
            json_decref(body);
            return false;
        }
    json_t *rj = json_object_get(body, "reason");
    const char *reason = json_string_value(rj);
    if ((rj && !json_is_null(rj) && !reason) || (reason && strlen(reason) > 1000)) {
        api_reply_errorf(call, 400, "bad_request", "reason must be a string of at most 1000 characters");
        json_decref(body);
        return false;
    }
    if (required && (!reason || !*reason)) {
        api_reply_errorf(call, 400, "bad_request", "a rejection needs a reason for the department");
        json_decref(body);
        return false;
    }
    *ret_reason = reason && *reason ? xstrdup(reason) : NULL;
    json_decref(body);
    return true;
}

void api_vms_action(struct api_call *call, const struct api_route_args *args)
{
    struct vm_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    j->id = args->id;
    if (streq(args->verb, "decommission")) {
        j->kind = JOB_DECOMMISSION;
        if (!reason_body(call, &j->reason, false)) {
            free(j);
            return;
        }
        api_call_writes_last(call);     /* vms_decommission() checks, then writes */
    } else {
        int a = vm_action_from_string(args->verb);
        if (a < 0) {
            free(j);
            api_reply_errorf(call, 404, "not_found", "unknown action '%s'", args->verb);
            return;
        }
        j->kind = JOB_ACTION;
        j->action = (enum vm_action) a;
    }
    api_defer(call, vm_job_run, vm_job_finish, j);
}

void api_decommissions_list(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    const char *state = api_call_query(call, "state");
    if (state && !streq(state, "pending") && !streq(state, "approved") && !streq(state, "rejected")) {
        api_reply_errorf(call, 400, "bad_request", "state must be pending, approved or rejected");
        return;
    }
    json_t *j = reader ? vms_decommission_requests_json(reader,
                                                        by->role == ROLE_DEPARTMENT ? by->department_id : 0,
                                                        state) : NULL;
    if (!j)
        api_reply_errorf(call, 500, "internal", "cannot read decommission requests");
    else
        api_reply_json(call, 200, j);
}

void api_decommissions_decide(struct api_call *call, const struct api_route_args *args)
{
    struct vm_job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_DECIDE;
    j->by = *api_call_principal(call);
    j->id = args->id;
    j->approve = streq(args->verb, "approve");
    if (!reason_body(call, &j->reason, !j->approve)) {
        free(j);
        return;
    }
    api_defer(call, vm_job_run, vm_job_finish, j);
}

void api_lease_policy_get(struct api_call *call, const struct api_route_args *args)
{
    const struct principal *by = api_call_principal(call);
    struct store_conn *reader = api_call_reader(call);
    if (by->role == ROLE_DEPARTMENT && !streq(args->name, by->department)) {
        api_reply_errorf(call, 404, "not_found", "department '%s' does not exist", args->name);
        return;
    }
    json_t *p = reader ? vms_lease_policy_json(reader, args->name) : NULL;
    if (!p)
        api_reply_errorf(call, 404, "not_found", "department '%s' does not exist", args->name);
    else
        api_reply_json(call, 200, json_pack("{s:o}", "lease_policy", p));
}

void api_lease_policy_put(struct api_call *call, const struct api_route_args *args)
{
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    json_t *n = json_object_get(body, "notice_days"), *g = json_object_get(body, "grace_days");
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (!streq(key, "notice_days") && !streq(key, "grace_days")) {
            api_reply_errorf(call, 400, "bad_request",
                             "unknown field '%s'; the fields are notice_days and grace_days", key);
            json_decref(body);
            return;
        }
    if (!json_is_integer(n) || !json_is_integer(g) || json_integer_value(n) < 0 ||
        json_integer_value(n) > 365 || json_integer_value(g) < 0 || json_integer_value(g) > 365) {
        api_reply_errorf(call, 422, "invalid_request",
                         "notice_days and grace_days must both be whole numbers of days from 0 to 365");
        json_decref(body);
        return;
    }
    struct vm_job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_LEASE_POLICY;
    j->by = *api_call_principal(call);
    snprintf(j->department, sizeof j->department, "%s", args->name);
    j->notice_days = (int) json_integer_value(n);
    j->grace_days = (int) json_integer_value(g);
    json_decref(body);
    api_defer(call, vm_job_run, vm_job_finish, j);
}

/* Route handlers, one file per part of the API. */
#ifndef YG_API_HANDLERS_H
#define YG_API_HANDLERS_H 1

#include <stdbool.h>
#include <stdint.h>

struct api_call;
struct principal;
struct store_conn;

/* Shared by the list handlers (api-requests.c). */
bool api_list_department_scope(struct api_call *call, const struct principal *by,
                               struct store_conn *reader, const char *department,
                               int64_t *department_id);

struct api_route_args {
    int64_t id;             /* {id} */
    char name[128];         /* {name} */
    const char *verb;       /* last literal segment, e.g. "approve" */
};

typedef void (*api_handler_fn)(struct api_call *call, const struct api_route_args *args);

/* api-requests.c */
void api_requests_submit(struct api_call *call, const struct api_route_args *args);
void api_requests_list(struct api_call *call, const struct api_route_args *args);
void api_requests_get(struct api_call *call, const struct api_route_args *args);
void api_requests_action(struct api_call *call, const struct api_route_args *args);

/* api-admin.c */
void api_quotas_list(struct api_call *call, const struct api_route_args *args);
void api_quotas_get(struct api_call *call, const struct api_route_args *args);
void api_quotas_put(struct api_call *call, const struct api_route_args *args);
void api_tokens_create(struct api_call *call, const struct api_route_args *args);
void api_tokens_list(struct api_call *call, const struct api_route_args *args);
void api_tokens_revoke(struct api_call *call, const struct api_route_args *args);
void api_audit_list(struct api_call *call, const struct api_route_args *args);
void api_audit_verify(struct api_call *call, const struct api_route_args *args);

/* api-readiness.c */
void api_hosts_enrollment(struct api_call *call, const struct api_route_args *args);
void api_agents_enroll(struct api_call *call, const struct api_route_args *args);
void api_agents_segments(struct api_call *call, const struct api_route_args *args);
void api_agents_report(struct api_call *call, const struct api_route_args *args);
void api_segments_list(struct api_call *call, const struct api_route_args *args);
void api_segments_show(struct api_call *call, const struct api_route_args *args);
void api_segments_history(struct api_call *call, const struct api_route_args *args);
void api_segments_waive(struct api_call *call, const struct api_route_args *args);
void api_progress(struct api_call *call, const struct api_route_args *args);

/* api-segments.c */
void api_segments_apply(struct api_call *call, const struct api_route_args *args);
void api_segments_plan(struct api_call *call, const struct api_route_args *args);
void api_prefixes_allocate(struct api_call *call, const struct api_route_args *args);
void api_prefixes_list(struct api_call *call, const struct api_route_args *args);

/* api-hosts.c */
void api_hosts_register(struct api_call *call, const struct api_route_args *args);
void api_hosts_list(struct api_call *call, const struct api_route_args *args);
void api_hosts_show(struct api_call *call, const struct api_route_args *args);
void api_hosts_drain(struct api_call *call, const struct api_route_args *args);
void api_drift(struct api_call *call, const struct api_route_args *args);

/* api-vms.c */
void api_vms_list(struct api_call *call, const struct api_route_args *args);
void api_vms_show(struct api_call *call, const struct api_route_args *args);
void api_vms_reclaim(struct api_call *call, const struct api_route_args *args);
void api_vms_action(struct api_call *call, const struct api_route_args *args);
void api_decommissions_list(struct api_call *call, const struct api_route_args *args);
void api_decommissions_decide(struct api_call *call, const struct api_route_args *args);
void api_lease_policy_get(struct api_call *call, const struct api_route_args *args);
void api_lease_policy_put(struct api_call *call, const struct api_route_args *args);

/* api-playbooks.c */
void api_playbooks_list(struct api_call *call, const struct api_route_args *args);
void api_playbooks_show(struct api_call *call, const struct api_route_args *args);
void api_playbook_runs_create(struct api_call *call, const struct api_route_args *args);
void api_playbook_runs_list(struct api_call *call, const struct api_route_args *args);
void api_playbook_runs_show(struct api_call *call, const struct api_route_args *args);
void api_playbook_runs_cancel(struct api_call *call, const struct api_route_args *args);
void api_agents_tasks(struct api_call *call, const struct api_route_args *args);
void api_agents_task_report(struct api_call *call, const struct api_route_args *args);
/* The long-polls waiting for tasks, one set per server: made by
 * api_start, answered by task_waiters_stop (before MHD stops). */
struct task_waiters;
struct task_waiters *task_waiters_new(void);
void task_waiters_stop(struct task_waiters *w);
void task_waiters_free(struct task_waiters *w);
struct strbuf;
void task_waiters_metrics(struct task_waiters *w, struct strbuf *out);

/* api-metrics.c */
void api_healthz(struct api_call *call, const struct api_route_args *args);
void api_metrics(struct api_call *call, const struct api_route_args *args);

#endif

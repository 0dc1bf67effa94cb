/* /healthz and /metrics (Prometheus text format 0.0.4). */
#include <config.h>

#include "api.h"
#include "api-handlers.h"
#include "lifecycle.h"
#include "requests.h"
#include "vms.h"
#include "util.h"

void api_healthz(struct api_call *call, const struct api_route_args *args)
{
    api_reply_json(call, 200, json_pack("{s:s}", "status", "ok"));
}

void api_metrics(struct api_call *call, const struct api_route_args *args)
{
    struct strbuf out;
    strbuf_init(&out);
    int64_t counts[REQUEST_STATE_MAX];
    struct store_conn *reader = api_call_reader(call);
    if (!reader || requests_count_by_state(reader, counts) < 0) {
        api_reply_errorf(call, 500, "internal", "cannot read the store");
        return;
    }
    strbuf_puts(&out, "# HELP yunguan_requests Resource requests by lifecycle state.\n"
                      "# TYPE yunguan_requests gauge\n");
    for (int s = 0; s < REQUEST_STATE_MAX; s++)
        strbuf_printf(&out, "yunguan_requests{state=\"%s\"} %lld\n",
                      request_state_to_string((enum request_state) s), (long long) counts[s]);

    struct store_stats stats;
    store_get_stats(api_call_store(call), &stats);
    strbuf_printf(&out, "# HELP yunguan_store_commits_total Store transactions committed (one fsync each).\n"
                        "# TYPE yunguan_store_commits_total counter\n"
                        "yunguan_store_commits_total %llu\n"
                        "# HELP yunguan_store_changes_total State changes stored (grouped into commits).\n"
                        "# TYPE yunguan_store_changes_total counter\n"
                        "yunguan_store_changes_total %llu\n",
                  (unsigned long long) stats.commits, (unsigned long long) stats.jobs);
    vms_metrics(reader, &out);
    task_waiters_metrics(api_call_task_waiters(call), &out);
    api_metrics_http(api_call_server(call), &out);
    api_reply_text(call, 200, "text/plain; version=0.0.4", strbuf_steal(&out));
}

/* /api/v1/hosts: register hypervisor hosts, list and show them with their
 * capacity, drain them; /api/v1/drift: the last reconcile's findings. */
#include <config.h>

#include <errno.h>

#include "api.h"
#include "api-handlers.h"
#include "hosts.h"
#include "vms.h"
#include "util.h"

struct host_job {
    struct principal by;
    char name[128];
    char *uri, *pool;
    char **segments;
    size_t n_segments;
    bool drained;
    bool drain;                 /* which job */
    json_t *host;
    struct yg_error *error;
};

static void host_job_free(struct host_job *j)
{
    free(j->uri);
    free(j->pool);
    for (size_t i = 0; i < j->n_segments; i++)
        free(j->segments[i]);
    free(j->segments);
    json_decref(j->host);
    yg_error_free(j->error);
    free(j);
}

static int host_run(struct store_txn *txn, void *ctx)
{
    struct host_job *j = ctx;
    if (j->drain)
        return hosts_set_drained(txn, &j->by, j->name, j->drained, &j->host, &j->error);
    return hosts_register(txn, &j->by, j->name, j->uri, j->pool, (const char *const *) j->segments,
                          j->n_segments, &j->host, &j->error);
}

static void host_finish(struct api_call *call, void *ctx, int result)
{
    struct host_job *j = ctx;
    if (result == 0 && j->host) {
        if (!j->drain)
            vms_engine_host_changed(j->name, j->uri, j->pool);
        else
            vms_engine_kick();
        api_reply_json(call, j->drain ? 200 : 201, json_pack("{s:O}", "host", j->host));
    } else if (j->error) {
        api_reply_error(call, steal_pointer(&j->error));
    } else {
        api_reply_errorf(call, 500, "internal", "the host could not be stored (%s)", strerror(-result));
    }
    host_job_free(j);
}

static bool slug(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

void api_hosts_register(struct api_call *call, const struct api_route_args *args)
{
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    struct yg_error *e = NULL;
#define BAD(path, ...) do { \
        if (!e) e = yg_error_new(422, "invalid_request", "the host is not valid"); \
        yg_error_add_detail(e, 0, 0, path, __VA_ARGS__); } while (0)
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (!streq(key, "name") && !streq(key, "libvirt_uri") && !streq(key, "storage_pool") &&
            !streq(key, "segments"))
            BAD(key, "unknown field; the fields are name, libvirt_uri, storage_pool and segments");
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *uri = json_string_value(json_object_get(body, "libvirt_uri"));
    const char *pool = json_string_value(json_object_get(body, "storage_pool"));
    json_t *segments = json_object_get(body, "segments");
    if (!slug(name))
        BAD("name", "must be a host name of lower-case letters, digits and '-' (1 to 63)");
    if (!uri)
        BAD("libvirt_uri", "must be a libvirt URI, e.g. qemu:///system or qemu+tls://hv01/system");
    if (!pool)
        BAD("storage_pool", "must name the libvirt storage pool for VM volumes, e.g. 'default'");
    if (segments && (!json_is_array(segments) || json_array_size(segments) > HOSTS_MAX_SEGMENTS))
        BAD("segments", "must be a list of at most %d segment names", HOSTS_MAX_SEGMENTS);
    size_t i;
    json_array_foreach(segments, i, v)
        if (!slug(json_string_value(v))) {
            char path[32];
            snprintf(path, sizeof path, "segments[%zu]", i);
            BAD(path, "must be a segment name");
        }
#undef BAD
    if (e) {
        json_decref(body);
        api_reply_error(call, e);
        return;
    }
    struct host_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    snprintf(j->name, sizeof j->name, "%s", name);
    j->uri = xstrdup(uri);
    j->pool = xstrdup(pool);
    j->n_segments = json_array_size(segments);
    j->segments = xcalloc(j->n_segments ? j->n_segments : 1, sizeof *j->segments);
    json_array_foreach(segments, i, v)
        j->segments[i] = xstrdup(json_string_value(v));
    json_decref(body);
    api_defer(call, host_run, host_finish, j);
}

void api_hosts_list(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *j = reader ? hosts_list_json(reader, vms_overcommit()) : NULL;
    if (!j)
        api_reply_errorf(call, 500, "internal", "cannot read the hosts");
    else
        api_reply_json(call, 200, j);
}

void api_hosts_show(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *h = reader ? hosts_get_json(reader, args->name, vms_overcommit()) : NULL;
    if (!h) {
        api_reply_errorf(call, 404, "not_found", "host '%s' does not exist", args->name);
        return;
    }
    api_reply_json(call, 200, json_pack("{s:o}", "host", h));
}

void api_hosts_drain(struct api_call *call, const struct api_route_args *args)
{
    struct host_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    snprintf(j->name, sizeof j->name, "%s", args->name);
    j->drain = true;
    j->drained = streq(args->verb, "drain");
    api_defer(call, host_run, host_finish, j);
}

void api_drift(struct api_call *call, const struct api_route_args *args)
{
    api_reply_json(call, 200, vms_drift_json());
}

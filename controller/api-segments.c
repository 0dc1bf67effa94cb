/* /api/v1/segments (apply a segment list), /api/v1/segments/{name}/plan,
 * /api/v1/prefixes (allocate, list). */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>

#include "api.h"
#include "api-handlers.h"
#include "segments.h"
#include "util.h"

static bool media_type_is(const char *content_type, const char *const *accepted)
{
    if (!content_type)
        return false;
    size_t n = strcspn(content_type, ";");
    while (n && content_type[n - 1] == ' ')
        n--;
    for (; *accepted; accepted++)
        if (strlen(*accepted) == n && !strncasecmp(content_type, *accepted, n))
            return true;
    return false;
}

static void reply_store_failure(struct api_call *call, int result, const char *what)
{
    api_reply_errorf(call, result == -ESHUTDOWN ? 503 : 500, "internal",
                     "%s could not be stored (%s)", what, strerror(-result));
}

/* ---- PUT /api/v1/segments ---- */

struct apply_job {
    struct principal by;
    struct segment_list *list;
    json_t *result;
    struct yg_error *error;
};

static int apply_run(struct store_txn *txn, void *ctx)
{
    struct apply_job *j = ctx;
    return segments_apply(txn, &j->by, j->list, &j->result, &j->error);
}

static json_t *answer(bool dry_run, json_t *plan)
{
    json_t *a = json_pack("{s:b}", "dry_run", dry_run);
    json_object_update(a, plan);
    return a;
}

static void apply_finish(struct api_call *call, void *ctx, int result)
{
    struct apply_job *j = ctx;
    if (result == 0 && j->result)
        api_reply_json(call, 200, answer(false, j->result));
    else if (j->error)
        api_reply_error(call, steal_pointer(&j->error));
    else
        reply_store_failure(call, result, "the segment list");
    json_decref(j->result);
    yg_error_free(j->error);
    segment_list_free(j->list);
    free(j);
}

void api_segments_apply(struct api_call *call, const struct api_route_args *args)
{
    static const char *const types[] = {
        "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
        "application/json", NULL,
    };
    const char *content_type = api_call_header(call, "Content-Type");
    if (!media_type_is(content_type, types)) {
        api_reply_errorf(call, 415, "unsupported_media_type",
                         "send the segment list as application/yaml or application/json (got '%s')",
                         content_type ? content_type : "nothing");
        return;
    }
    const char *dry = api_call_query(call, "dry_run");
    if (dry && !streq(dry, "true") && !streq(dry, "1") &&
        !streq(dry, "false") && !streq(dry, "0")) {
        api_reply_errorf(call, 400, "bad_request", "dry_run must be true or false, got '%s'", dry);
        return;
    }
    bool dry_run = dry && (streq(dry, "true") || streq(dry, "1"));

    size_t len;
    const char *body = api_call_body(call, &len);
    struct segment_list *list = NULL;
    struct yg_error *err = NULL;
    if (segment_list_parse(body, len, NULL, &list, &err) < 0) {
        api_reply_error(call, err);
        return;
    }
    if (dry_run) {
        struct store_conn *reader = api_call_reader(call);
        json_t *plan = NULL;
        int r = reader ? segments_plan(reader, list, &plan, &err) : -EIO;
        segment_list_free(list);
        if (r == 0)
            api_reply_json(call, 200, answer(true, plan));
        else if (err)
            api_reply_error(call, err);
        else
            api_reply_errorf(call, 500, "internal", "cannot read the stored segments");
        json_decref(plan);
        return;
    }
    struct apply_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    j->list = list;
    api_defer(call, apply_run, apply_finish, j);
}

/* ---- GET /api/v1/segments/{name}/plan ---- */

void api_segments_plan(struct api_call *call, const struct api_route_args *args)
{
    struct store_conn *reader = api_call_reader(call);
    json_t *def = NULL;
    int r = reader ? segments_get_json(reader, args->name, &def) : -EIO;
    if (r == -ENOENT)
        api_reply_errorf(call, 404, "not_found", "segment '%s' does not exist", args->name);
    else if (r < 0)
        api_reply_errorf(call, 500, "internal", "cannot read segment '%s'", args->name);
    else
        api_reply_json(call, 200, json_pack("{s:o}", "segment", def));
}

/* ---- POST /api/v1/prefixes/allocate ---- */

struct allocate_job {
    struct principal by;
    struct ip_prefix parent;
    unsigned length;
    char *segment;
    json_t *allocation;
    json_t *segment_def;
    struct yg_error *error;
};

static int allocate_run(struct store_txn *txn, void *ctx)
{
    struct allocate_job *j = ctx;
    int r = segments_allocate_prefix(txn, &j->by, &j->parent, j->length, j->segment,
                                     &j->allocation, &j->error);
    if (r == 0 && j->segment && segments_get_json(store_txn_conn(txn), j->segment,
                                                  &j->segment_def) < 0)
        return -EIO;
    return r;
}

static void allocate_finish(struct api_call *call, void *ctx, int result)
{
    struct allocate_job *j = ctx;
    if (result == 0 && j->allocation) {
        json_t *a = json_pack("{s:O}", "allocation", j->allocation);
        if (j->segment_def)
            json_object_set(a, "segment", j->segment_def);
        api_reply_json(call, 201, a);
    } else if (j->error) {
        api_reply_error(call, steal_pointer(&j->error));
    } else {
        reply_store_failure(call, result, "the allocation");
    }
    json_decref(j->allocation);
    json_decref(j->segment_def);
    yg_error_free(j->error);
    free(j->segment);
    free(j);
}

static void bad_field(struct yg_error **e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad_field(struct yg_error **e, const char *field, const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (!*e)
        *e = yg_error_new(400, "bad_request", "the allocation request is not valid");
    yg_error_add_detail(*e, 0, 0, field, "%s", msg);
}

void api_prefixes_allocate(struct api_call *call, const struct api_route_args *args)
{
    json_t *body = api_call_body_json(call);
    if (!body)
        return;
    struct yg_error *e = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v)
        if (!streq(key, "from") && !streq(key, "length") && !streq(key, "segment"))
            bad_field(&e, key, "unknown field; the fields are from, length and segment");

    struct ip_prefix parent = { 0 };
    bool parent_ok = false;
    json_t *from = json_object_get(body, "from");
    if (!json_is_string(from)) {
        bad_field(&e, "from", from ? "must be a prefix in a string, like \"2001:db8:100::/48\""
                                   : "is required: the parent prefix, like \"2001:db8:100::/48\"");
    } else {
        _cleanup_free_ char *perr = NULL;
        char text[IP_PREFIX_STRLEN];
        if (ip_prefix_parse(json_string_value(from), &parent, &perr) < 0)
            bad_field(&e, "from", "%s", perr);
        else if (parent.addr.family != AF_INET6)
            bad_field(&e, "from", "%s is an IPv4 prefix; IPv6 prefixes are allocated from an "
                      "IPv6 parent, like 2001:db8:100::/48", ip_prefix_format(&parent, text));
        else
            parent_ok = true;
    }

    json_t *length = json_object_get(body, "length");
    json_int_t len = json_is_integer(length) ? json_integer_value(length) : -1;
    unsigned min = parent_ok ? parent.len : 1;
    if (!length)
        bad_field(&e, "length", "is required: the length of the prefix to allocate, like 64");
    else if (!json_is_integer(length) || len < min || len > 128)
        bad_field(&e, "length", "must be an integer from %u to 128%s (64 for a segment)", min,
                  parent_ok ? " (not shorter than the parent)" : "");

    json_t *segment = json_object_get(body, "segment");
    const char *segment_name = json_string_value(segment);
    if (segment && !json_is_null(segment) &&
        (!segment_name || !yamldoc_name_is_valid(segment_name)))
        bad_field(&e, "segment", "must be a segment name: 1 to 63 lower-case letters, digits "
                  "and '-'");

    if (e) {
        json_decref(body);
        api_reply_error(call, e);
        return;
    }
    struct allocate_job *j = xcalloc(1, sizeof *j);
    j->by = *api_call_principal(call);
    j->parent = parent;
    j->length = (unsigned) len;
    j->segment = segment_name ? xstrdup(segment_name) : NULL;
    json_decref(body);
    api_defer(call, allocate_run, allocate_finish, j);
}

/* ---- GET /api/v1/prefixes ---- */

void api_prefixes_list(struct api_call *call, const struct api_route_args *args)
{
    int64_t after = 0, limit = SEGMENTS_PAGE_DEFAULT;
    const char *after_s = api_call_query(call, "after");
    const char *limit_s = api_call_query(call, "limit");
    if ((after_s && !api_parse_int64(after_s, 0, INT64_MAX, &after)) ||
        (limit_s && !api_parse_int64(limit_s, 1, SEGMENTS_PAGE_MAX, &limit))) {
        api_reply_errorf(call, 400, "bad_request", "after must be an allocation id (0 or more) "
                         "and limit an integer from 1 to %d", SEGMENTS_PAGE_MAX);
        return;
    }
    struct store_conn *reader = api_call_reader(call);
    json_t *page = reader ? segments_allocations_json(reader, after, (int) limit) : NULL;
    if (!page)
        api_reply_errorf(call, 500, "internal", "cannot read the prefix allocations");
    else
        api_reply_json(call, 200, page);
}

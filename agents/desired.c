#include <config.h>
#include "desired.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

bool desired_interface_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= 16 || streq(name, ".") || streq(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) name[i];
        if (c <= ' ' || c == '/' || c == ':' || c >= 0x7f)
            return false;
    }
    return true;
}

static int fail(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **ret_error, const char *fmt, ...)
{
    if (ret_error) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
            abort();
        va_end(ap);
    }
    return -EINVAL;
}

void desired_segment_clear(struct desired_segment *s)
{
    free(s->name);
    free(s->interface);
    s->name = s->interface = NULL;
}

void desired_state_free(struct desired_state *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_segments; i++)
        desired_segment_clear(&d->segments[i]);
    free(d->segments);
    free(d->host);
    free(d);
}

/* A string member, or NULL when absent or null.  -EINVAL when present
 * with another type. */
static int get_string(json_t *obj, const char *key, const char *path, bool required,
                      const char **ret, char **ret_error)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            return fail(ret_error, "%s.%s: missing (a string is required)", path, key);
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return fail(ret_error, "%s.%s: must be a string", path, key);
    *ret = json_string_value(v);
    return 0;
}

static int get_prefix(json_t *obj, const char *key, const char *path, int family,
                      struct ip_prefix *ret, char **ret_error)
{
    const char *text;
    int r = get_string(obj, key, path, false, &text, ret_error);
    if (r < 0)
        return r;
    if (!text) {
        *ret = (struct ip_prefix) { 0 };
        return 0;
    }
    _cleanup_free_ char *err = NULL;
    struct ip_prefix p;
    if (ip_prefix_parse(text, &p, &err) < 0)
        return fail(ret_error, "%s.%s: %s", path, key, err);
    if (p.addr.family != family)
        return fail(ret_error, "%s.%s: '%s' is not an %s prefix", path, key, text,
                    ip_family_name(family));
    *ret = p;
    return 0;
}

static int get_addr(json_t *obj, const char *key, const char *path, int family,
                    struct ip_addr *ret, char **ret_error)
{
    const char *text;
    int r = get_string(obj, key, path, false, &text, ret_error);
    if (r < 0)
        return r;
    if (!text) {
        *ret = (struct ip_addr) { 0 };
        return 0;
    }
    _cleanup_free_ char *err = NULL;
    if (ip_addr_parse_family(text, family, ret, &err) < 0)
        return fail(ret_error, "%s.%s: %s", path, key, err);
    return 0;
}

int desired_segment_from_json(json_t *js, const char *path, struct desired_segment *s, char **ret_error)
{
    if (!json_is_object(js))
        return fail(ret_error, "%s: must be an object", path);
    const char *name, *iface;
    int r = get_string(js, "name", path, true, &name, ret_error);
    if (r < 0)
        return r;
    if (!*name || strlen(name) > 128)
        return fail(ret_error, "%s.name: must be 1 to 128 characters", path);
    r = get_string(js, "interface", path, true, &iface, ret_error);
    if (r < 0)
        return r;
    if (!desired_interface_name_valid(iface))
        return fail(ret_error, "%s.interface: '%.64s' is not a valid interface name "
                    "(1 to 15 characters, no '/', ':' or white space)", path, iface);
    if ((r = get_prefix(js, "ipv4_prefix", path, AF_INET, &s->ipv4_prefix, ret_error)) < 0 ||
        (r = get_addr(js, "ipv4_gateway", path, AF_INET, &s->ipv4_gateway, ret_error)) < 0 ||
        (r = get_prefix(js, "ipv6_prefix", path, AF_INET6, &s->ipv6_prefix, ret_error)) < 0 ||
        (r = get_addr(js, "ipv6_gateway", path, AF_INET6, &s->ipv6_gateway, ret_error)) < 0)
        return r;
    json_t *slaac = json_object_get(js, "slaac");
    if (slaac && !json_is_null(slaac)) {
        if (!json_is_boolean(slaac))
            return fail(ret_error, "%s.slaac: must be true or false", path);
        s->slaac = json_is_true(slaac);
    }
    json_t *plan = json_object_get(js, "plan");
    if (plan && !json_is_null(plan)) {
        _cleanup_free_ char *plan_path = xasprintf("%s.plan", path);
        if (!json_is_object(plan))
            return fail(ret_error, "%s: must be an object", plan_path);
        if ((r = get_addr(plan, "ipv4_address", plan_path, AF_INET, &s->plan_ipv4, ret_error)) < 0 ||
            (r = get_addr(plan, "ipv6_address", plan_path, AF_INET6, &s->plan_ipv6, ret_error)) < 0)
            return r;
    }
    s->name = xstrdup(name);
    s->interface = xstrdup(iface);
    return 0;
}

int desired_state_from_json(json_t *root, struct desired_state **ret, char **ret_error)
{
    if (!json_is_object(root))
        return fail(ret_error, "the desired state must be a JSON object with a \"segments\" array");
    _cleanup_(desired_state_freep) struct desired_state *d = xcalloc(1, sizeof *d);
    d->heartbeat_seconds = DESIRED_DEFAULT_HEARTBEAT_S;

    const char *host;
    int r = get_string(root, "host", "(top)", false, &host, ret_error);
    if (r < 0)
        return r;
    d->host = xstrdup(host);

    json_t *hb = json_object_get(root, "heartbeat_seconds");
    if (hb && !json_is_null(hb)) {
        if (!json_is_integer(hb) || json_integer_value(hb) < 1 ||
            json_integer_value(hb) > DESIRED_MAX_HEARTBEAT_S)
            return fail(ret_error, "heartbeat_seconds: must be an integer from 1 to %d",
                        DESIRED_MAX_HEARTBEAT_S);
        d->heartbeat_seconds = (unsigned) json_integer_value(hb);
    }

    json_t *segs = json_object_get(root, "segments");
    if (!segs || !json_is_array(segs))
        return fail(ret_error, "segments: missing (an array of segments is required)");
    size_t n = json_array_size(segs);
    if (n > DESIRED_MAX_SEGMENTS)
        return fail(ret_error, "segments: %zu segments is more than the limit of %d", n,
                    DESIRED_MAX_SEGMENTS);
    d->segments = xcalloc(n, sizeof *d->segments);
    for (size_t i = 0; i < n; i++) {
        char path[32];
        snprintf(path, sizeof path, "segments[%zu]", i);
        r = desired_segment_from_json(json_array_get(segs, i), path, &d->segments[i], ret_error);
        if (r < 0)
            return r;
        d->n_segments++;
        for (size_t j = 0; j < i; j++)
            if (streq(d->segments[j].name, d->segments[i].name))
                return fail(ret_error, "%s.name: '%s' is also the name of segments[%zu]", path,
                            d->segments[i].name, j);
    }
    *ret = steal_pointer(&d);
    return 0;
}

int desired_state_load_file(const char *path, struct desired_state **ret, char **ret_error)
{
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(path, DESIRED_MAX_BYTES, &data, &len);
    if (r == -EFBIG)
        return fail(ret_error, "segments file '%s' is larger than %u bytes", path, DESIRED_MAX_BYTES);
    if (r < 0) {
        if (ret_error)
            *ret_error = xasprintf("cannot read segments file '%s': %s", path, strerror(-r));
        return r;
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(ret_error, "segments file '%s': line %d, column %d: %s", path, jerr.line,
                    jerr.column, jerr.text);
    _cleanup_free_ char *err = NULL;
    r = desired_state_from_json(root, ret, &err);
    json_decref(root);
    if (r < 0)
        return fail(ret_error, "segments file '%s': %s", path, err);
    return 0;
}

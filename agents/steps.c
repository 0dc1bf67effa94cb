#include <config.h>
#include "steps.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "log.h"
#include "netstate.h"
#include "probe.h"
#include "util.h"

#define LOG_DOMAIN "steps"

/* Defaults when a step leaves the bound out. */
#define STEPS_DEFAULT_CHECK_MS 10000
#define STEPS_DEFAULT_VERIFY_MS 5000
#define STEPS_DEFAULT_WAIT_MS 10000
/* How often a wait re-reads what raises no netlink event (sysctls,
 * listening sockets) when no event came. */
#define STEPS_REEVALUATE_MS 200
/* Kernel default metric of an IPv6 route added with none. */
#define STEPS_IPV6_DEFAULT_METRIC 1024
#define STEPS_MAX_SYSCTL_READ 4096

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache *, nl_cache_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_addr *, nl_addr_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_addr *, rtnl_addr_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_route *, rtnl_route_put)
static inline void closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

/* ---- names ---- */

static const char *const status_names[STEP_STATUS_MAX] = {
    [STEP_NOT_RUN] = "not-run", [STEP_CHANGED] = "changed", [STEP_UNCHANGED] = "unchanged",
    [STEP_WOULD_CHANGE] = "would-change", [STEP_SKIPPED] = "skipped", [STEP_FAILED] = "failed",
    [STEP_UNDONE] = "undone", [STEP_UNDO_FAILED] = "undo-failed",
};
static const char *const mode_names[STEP_MODE_MAX] = {
    [STEP_MODE_CHECK] = "check", [STEP_MODE_APPLY] = "apply",
};
static const char *const expect_names[STEP_EXPECT_MAX] = {
    [STEP_EXPECT_DUAL_STACK_READY] = "dual-stack-ready", [STEP_EXPECT_PASS] = "pass",
    [STEP_EXPECT_WARN] = "warn", [STEP_EXPECT_FAIL] = "fail",
};
static const char *const wait_names[STEP_WAIT_MAX] = {
    [STEP_WAIT_ADDRESS_USABLE] = "address-usable",
    [STEP_WAIT_NEIGHBOUR_REACHABLE] = "neighbour-reachable",
};

static int lookup(const char *const *names, int n, const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < n; i++)
        if (names[i] && streq(names[i], s))
            return i;
    return -1;
}

const char *step_status_to_string(enum step_status s)
{
    return (unsigned) s < STEP_STATUS_MAX ? status_names[s] : NULL;
}
int step_status_from_string(const char *s)
{
    return lookup(status_names, STEP_STATUS_MAX, s);
}
const char *step_mode_to_string(enum step_mode m)
{
    return (unsigned) m < STEP_MODE_MAX ? mode_names[m] : NULL;
}
int step_mode_from_string(const char *s)
{
    return lookup(mode_names, STEP_MODE_MAX, s);
}

/* ---- parsing ---- */

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

/* Refuse members other than the listed ones: the renderer sends exactly
 * these, so anything else is a mistake (or an attack) worth naming. */
static int only_keys(json_t *obj, const char *path, const char *const *allowed, char **ret_error)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = streq(*a, k);
        if (!ok) {
            struct strbuf sb;
            strbuf_init(&sb);
            for (const char *const *a = allowed; *a; a++)
                strbuf_printf(&sb, "%s%s", a == allowed ? "" : ", ", *a);
            _cleanup_free_ char *list = strbuf_steal(&sb);
            return fail(ret_error, "%s.%.64s: unknown member (known: %s)", path, k, list);
        }
    }
    return 0;
}

static int get_str(json_t *obj, const char *path, const char *key, bool required, size_t max_len,
                   const char **ret, char **ret_error)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return fail(ret_error, "%s.%s: missing (a string is required)", path, key);
        *ret = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return fail(ret_error, "%s.%s: must be a string", path, key);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max_len || strlen(s) != n)
        return fail(ret_error, "%s.%s: must be 1 to %zu characters (no NUL)", path, key, max_len);
    *ret = s;
    return 0;
}

static int get_uint(json_t *obj, const char *path, const char *key, bool required, json_int_t min,
                    json_int_t max, bool *ret_present, json_int_t *ret, char **ret_error)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return fail(ret_error, "%s.%s: missing (an integer from %lld to %lld is required)", path,
                        key, (long long) min, (long long) max);
        if (ret_present)
            *ret_present = false;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(ret_error, "%s.%s: must be an integer from %lld to %lld", path, key,
                    (long long) min, (long long) max);
    *ret = json_integer_value(v);
    if (ret_present)
        *ret_present = true;
    return 0;
}

static int get_timeout(json_t *obj, const char *path, unsigned dflt, unsigned *ret, char **ret_error)
{
    json_int_t v = dflt;
    int r = get_uint(obj, path, "timeout_ms", false, 0, PLAYBOOK_MAX_WAIT_MS, NULL, &v, ret_error);
    if (r < 0)
        return r;
    *ret = (unsigned) v;
    return 0;
}

static int get_interface(json_t *obj, const char *path, bool required, char ret[static 16],
                         char **ret_error)
{
    const char *s;
    int r = get_str(obj, path, "interface", required, 15, &s, ret_error);
    if (r < 0)
        return r;
    if (!s) {
        ret[0] = '\0';
        return 0;
    }
    if (!desired_interface_name_valid(s))
        return fail(ret_error, "%s.interface: '%s' is not a valid interface name (1 to 15 "
                    "characters, no '/', ':' or white space)", path, s);
    snprintf(ret, 16, "%s", s);
    return 0;
}

/* "addr/len", or "addr" when allow_bare (then len is the family's bits). */
static int get_address(json_t *obj, const char *path, const char *key, bool allow_bare,
                       struct ip_prefix *ret, bool *ret_has_len, char **ret_error)
{
    const char *s;
    int r = get_str(obj, path, key, true, IP_PREFIX_STRLEN, &s, ret_error);
    if (r < 0)
        return r;
    _cleanup_free_ char *err = NULL;
    if (strchr(s, '/')) {
        if (ip_addr_prefix_parse(s, ret, &err) < 0)
            return fail(ret_error, "%s.%s: %s", path, key, err);
        *ret_has_len = true;
        return 0;
    }
    if (!allow_bare)
        return fail(ret_error, "%s.%s: '%s' has no prefix length; write it as ADDRESS/LENGTH "
                    "(e.g. 2001:db8:10::21/64)", path, key, s);
    if (ip_addr_parse(s, &ret->addr, &err) < 0)
        return fail(ret_error, "%s.%s: %s", path, key, err);
    ret->len = ip_family_bits(ret->addr.family);
    *ret_has_len = false;
    return 0;
}

static int get_check_name(json_t *obj, const char *path, bool required, int *ret, char **ret_error)
{
    const char *s;
    int r = get_str(obj, path, "check", required, 64, &s, ret_error);
    if (r < 0)
        return r;
    if (!s) {
        *ret = -1;
        return 0;
    }
    int c = checks_check_from_string(s);
    if (c < 0) {
        struct strbuf sb;
        strbuf_init(&sb);
        for (int i = 0; i < CHECK_MAX; i++)
            strbuf_printf(&sb, "%s%s", i ? ", " : "", checks_check_to_string(i));
        _cleanup_free_ char *list = strbuf_steal(&sb);
        return fail(ret_error, "%s.check: '%.64s' is not a check (known: %s)", path, s, list);
    }
    *ret = c;
    return 0;
}

static int get_reason(json_t *obj, const char *path, int check, int *ret, char **ret_error)
{
    const char *s;
    int r = get_str(obj, path, "reason", false, 64, &s, ret_error);
    if (r < 0)
        return r;
    if (!s) {
        *ret = -1;
        return 0;
    }
    int reason = checks_reason_from_string(s);
    if (reason < 0)
        return fail(ret_error, "%s.reason: '%.64s' is not a reason code (doc/AGENT.md, \"Checks "
                    "and reason codes\")", path, s);
    if (check >= 0 && reason != REASON_OK && (int) checks_reason_check(reason) != check)
        return fail(ret_error, "%s.reason: %s belongs to the check '%s', not '%s'", path, s,
                    checks_check_to_string(checks_reason_check(reason)), checks_check_to_string(check));
    *ret = reason;
    return 0;
}

/* check.run args and verify share this shape. */
static int parse_expect(json_t *obj, const char *path, unsigned dflt_timeout, struct step_expect *ret,
                        char **ret_error)
{
    const char *e;
    int r;
    if ((r = get_check_name(obj, path, false, &ret->check, ret_error)) < 0 ||
        (r = get_str(obj, path, "expect", true, 32, &e, ret_error)) < 0)
        return r;
    int k = lookup(expect_names, STEP_EXPECT_MAX, e);
    if (k < 0)
        return fail(ret_error, "%s.expect: '%.32s' is not one of dual-stack-ready, pass, warn, fail",
                    path, e);
    ret->expect = (enum step_expect_kind) k;
    if ((r = get_reason(obj, path, ret->check, &ret->reason, ret_error)) < 0 ||
        (r = get_timeout(obj, path, dflt_timeout, &ret->timeout_ms, ret_error)) < 0)
        return r;
    ret->present = true;
    return 0;
}

static int parse_when(json_t *obj, const char *path, struct step_when *ret, char **ret_error)
{
    static const char *const keys[] = { "check", "status", "reason", NULL };
    if (!json_is_object(obj))
        return fail(ret_error, "%s: must be an object {\"check\", \"status\", \"reason\"}", path);
    int r, check;
    const char *status;
    if ((r = only_keys(obj, path, keys, ret_error)) < 0 ||
        (r = get_check_name(obj, path, true, &check, ret_error)) < 0 ||
        (r = get_str(obj, path, "status", false, 16, &status, ret_error)) < 0)
        return r;
    ret->check = (enum checks_check) check;
    ret->status = -1;
    if (status) {
        ret->status = checks_severity_from_string(status);
        if (ret->status < 0)
            return fail(ret_error, "%s.status: '%.16s' is not one of pass, warn, fail", path, status);
    }
    if ((r = get_reason(obj, path, check, &ret->reason, ret_error)) < 0)
        return r;
    ret->present = true;
    return 0;
}

static int parse_args(json_t *args, const char *path, struct step *s, char **ret_error)
{
    static const char *const k_sysctl[] = { "key", "value", NULL };
    static const char *const k_addr_add[] = { "address", "interface", "nodad", NULL };
    static const char *const k_addr_remove[] = { "address", "interface", NULL };
    static const char *const k_route[] = { "dst", "via", "interface", "metric", "table", NULL };
    static const char *const k_mtu[] = { "interface", "mtu", NULL };
    static const char *const k_check[] = { "expect", "check", "reason", "timeout_ms", NULL };
    static const char *const k_wait[] = { "condition", "address", "interface", "timeout_ms", NULL };
    static const char *const *const keys[_PLAYBOOK_ACTION_MAX] = {
        [PLAYBOOK_SYSCTL_SET] = k_sysctl, [PLAYBOOK_ADDRESS_ADD] = k_addr_add,
        [PLAYBOOK_ADDRESS_REMOVE] = k_addr_remove, [PLAYBOOK_ROUTE_ADD] = k_route,
        [PLAYBOOK_ROUTE_REMOVE] = k_route, [PLAYBOOK_LINK_SET_MTU] = k_mtu,
        [PLAYBOOK_CHECK_RUN] = k_check, [PLAYBOOK_WAIT_FOR] = k_wait,
    };
    int r = only_keys(args, path, keys[s->action], ret_error);
    if (r < 0)
        return r;

    switch (s->action) {
    case PLAYBOOK_SYSCTL_SET: {
        const char *key, *value;
        if ((r = get_str(args, path, "key", true, sizeof s->key - 1, &key, ret_error)) < 0 ||
            (r = get_str(args, path, "value", true, STEPS_MAX_SYSCTL_VALUE, &value, ret_error)) < 0)
            return r;
        if (!playbook_sysctl_key_allowed(key))
            return fail(ret_error, "%s.key: '%.95s' is outside the keys a playbook may write "
                        "(net/ipv6/conf/<interface>/<name> or net/ipv4/conf/<interface>/<name>)",
                        path, key);
        for (const char *p = value; *p; p++)
            if ((unsigned char) *p < ' ' || (unsigned char) *p >= 0x7f)
                return fail(ret_error, "%s.value: must be printable ASCII on one line", path);
        snprintf(s->key, sizeof s->key, "%s", key);
        snprintf(s->value, sizeof s->value, "%s", value);
        return 0;
    }
    case PLAYBOOK_ADDRESS_ADD:
    case PLAYBOOK_ADDRESS_REMOVE:
        if ((r = get_address(args, path, "address", s->action == PLAYBOOK_ADDRESS_REMOVE, &s->address,
                             &s->address_has_len, ret_error)) < 0 ||
            (r = get_interface(args, path, true, s->interface, ret_error)) < 0)
            return r;
        if (s->action == PLAYBOOK_ADDRESS_ADD) {
            json_t *nodad = json_object_get(args, "nodad");
            if (nodad && !json_is_boolean(nodad))
                return fail(ret_error, "%s.nodad: must be true or false", path);
            s->nodad = json_is_true(nodad);
            if (s->address.addr.family != AF_INET6 && s->nodad)
                return fail(ret_error, "%s.nodad: duplicate address detection is IPv6 only; "
                            "leave nodad out for an IPv4 address", path);
        }
        if (ip_addr_is_unspecified(&s->address.addr) || ip_addr_is_loopback(&s->address.addr))
            return fail(ret_error, "%s.address: an unspecified or loopback address cannot be %s",
                        path, s->action == PLAYBOOK_ADDRESS_ADD ? "added" : "removed");
        return 0;
    case PLAYBOOK_ROUTE_ADD:
    case PLAYBOOK_ROUTE_REMOVE: {
        const char *dst, *via;
        _cleanup_free_ char *err = NULL;
        if ((r = get_str(args, path, "dst", true, IP_PREFIX_STRLEN, &dst, ret_error)) < 0)
            return r;
        if (streq(dst, "default"))
            return fail(ret_error, "%s.dst: write the default route as 0.0.0.0/0 or ::/0", path);
        if (ip_prefix_parse(dst, &s->dst, &err) < 0)
            return fail(ret_error, "%s.dst: %s", path, err);
        if ((r = get_str(args, path, "via", false, IP_ADDR_STRLEN, &via, ret_error)) < 0)
            return r;
        if (via && ip_addr_parse_family(via, s->dst.addr.family, &s->via, &err) < 0)
            return fail(ret_error, "%s.via: %s (the dst '%s' is %s)", path, err, dst,
                        ip_family_name(s->dst.addr.family));
        if ((r = get_interface(args, path, false, s->interface, ret_error)) < 0)
            return r;
        json_int_t v = 0;
        if ((r = get_uint(args, path, "metric", false, 0, UINT32_MAX, &s->has_metric, &v, ret_error)) < 0)
            return r;
        s->metric = (uint32_t) v;
        if ((r = get_uint(args, path, "table", false, 1, UINT32_MAX, &s->has_table, &v, ret_error)) < 0)
            return r;
        s->table = s->has_table ? (uint32_t) v : RT_TABLE_MAIN;
        if (s->has_table && (s->table == RT_TABLE_LOCAL || s->table == RT_TABLE_UNSPEC))
            return fail(ret_error, "%s.table: the local table (255) is the kernel's; use main (254) "
                        "or a table of your own", path);
        if (!s->has_metric)
            s->metric = s->dst.addr.family == AF_INET6 ? STEPS_IPV6_DEFAULT_METRIC : 0;
        else if (s->metric == 0 && s->dst.addr.family == AF_INET6)
            s->metric = STEPS_IPV6_DEFAULT_METRIC;      /* what the kernel makes of 0 */
        if (s->action == PLAYBOOK_ROUTE_ADD && !via && !s->interface[0])
            return fail(ret_error, "%s: a route needs \"via\" (a next hop), \"interface\", or both", path);
        return 0;
    }
    case PLAYBOOK_LINK_SET_MTU: {
        json_int_t mtu;
        if ((r = get_interface(args, path, true, s->interface, ret_error)) < 0 ||
            (r = get_uint(args, path, "mtu", true, 68, 65535, NULL, &mtu, ret_error)) < 0)
            return r;
        s->mtu = (unsigned) mtu;
        return 0;
    }
    case PLAYBOOK_CHECK_RUN:
        return parse_expect(args, path, STEPS_DEFAULT_CHECK_MS, &s->check, ret_error);
    case PLAYBOOK_WAIT_FOR: {
        const char *cond;
        if ((r = get_str(args, path, "condition", true, 32, &cond, ret_error)) < 0)
            return r;
        int w = lookup(wait_names, STEP_WAIT_MAX, cond);
        if (w < 0)
            return fail(ret_error, "%s.condition: '%.32s' is not one of address-usable, "
                        "neighbour-reachable", path, cond);
        s->wait = (enum step_wait_condition) w;
        if ((r = get_address(args, path, "address", true, &s->address, &s->address_has_len,
                             ret_error)) < 0 ||
            (r = get_interface(args, path, true, s->interface, ret_error)) < 0 ||
            (r = get_timeout(args, path, STEPS_DEFAULT_WAIT_MS, &s->timeout_ms, ret_error)) < 0)
            return r;
        if (s->wait == STEP_WAIT_NEIGHBOUR_REACHABLE && s->address_has_len)
            return fail(ret_error, "%s.address: a neighbour is one address; leave out the prefix "
                        "length", path);
        if (ip_addr_is_unspecified(&s->address.addr))
            return fail(ret_error, "%s.address: the unspecified address cannot be waited for", path);
        return 0;
    }
    case _PLAYBOOK_ACTION_MAX:
        break;
    }
    return fail(ret_error, "%s: unknown action", path);
}

int step_from_json(json_t *js, const char *path, struct step *ret, char **ret_error)
{
    static const char *const keys[] = { "index", "name", "action", "args", "when", "verify", NULL };
    static const char *const verify_keys[] = { "check", "expect", "reason", "timeout_ms", NULL };
    if (!json_is_object(js))
        return fail(ret_error, "%s: must be an object {\"index\", \"name\", \"action\", \"args\"}", path);
    struct step s = { 0 };
    int r;
    json_int_t index;
    const char *name, *action;
    if ((r = only_keys(js, path, keys, ret_error)) < 0 ||
        (r = get_uint(js, path, "index", true, 0, PLAYBOOK_MAX_STEPS - 1, NULL, &index, ret_error)) < 0 ||
        (r = get_str(js, path, "name", false, STEPS_MAX_NAME, &name, ret_error)) < 0 ||
        (r = get_str(js, path, "action", true, 32, &action, ret_error)) < 0)
        return r;
    s.index = (unsigned) index;
    int a = playbook_action_from_string(action);
    if (a < 0) {
        struct strbuf sb;
        strbuf_init(&sb);
        for (int i = 0; i < _PLAYBOOK_ACTION_MAX; i++)
            strbuf_printf(&sb, "%s%s", i ? ", " : "", playbook_action_to_string(i));
        _cleanup_free_ char *list = strbuf_steal(&sb);
        return fail(ret_error, "%s.action: '%.32s' is not an action (known: %s)", path, action, list);
    }
    s.action = (enum playbook_action) a;

    json_t *args = json_object_get(js, "args");
    _cleanup_free_ char *args_path = xasprintf("%s.args", path);
    if (!args || !json_is_object(args))
        return fail(ret_error, "%s: missing or not an object (the action's arguments)", args_path);
    if ((r = parse_args(args, args_path, &s, ret_error)) < 0)
        return r;

    json_t *when = json_object_get(js, "when");
    if (when && !json_is_null(when)) {
        _cleanup_free_ char *p = xasprintf("%s.when", path);
        if ((r = parse_when(when, p, &s.when, ret_error)) < 0)
            return r;
    }
    json_t *verify = json_object_get(js, "verify");
    if (verify && !json_is_null(verify)) {
        _cleanup_free_ char *p = xasprintf("%s.verify", path);
        if (!json_is_object(verify))
            return fail(ret_error, "%s: must be an object {\"check\", \"expect\", \"reason\", "
                        "\"timeout_ms\"}", p);
        if ((r = only_keys(verify, p, verify_keys, ret_error)) < 0 ||
            (r = parse_expect(verify, p, STEPS_DEFAULT_VERIFY_MS, &s.verify, ret_error)) < 0)
            return r;
        if (s.action == PLAYBOOK_CHECK_RUN || s.action == PLAYBOOK_WAIT_FOR)
            return fail(ret_error, "%s: %s changes nothing, so there is nothing to verify; use a "
                        "check.run step", p, action);
    }
    s.name = xstrdup(name ? name : action);
    *ret = s;
    return 0;
}

void step_clear(struct step *s)
{
    free(s->name);
    s->name = NULL;
}

void step_result_clear(struct step_result *r)
{
    free(r->before);
    free(r->after);
    free(r->message);
    json_decref(r->undo);
    *r = (struct step_result) { 0 };
}

json_t *steps_json_text(const char *text)
{
    size_t n = strlen(text);
    if (n <= STEPS_MAX_TEXT)
        return json_string(text);
    size_t cut = STEPS_MAX_TEXT - 3;
    while (cut > 0 && ((unsigned char) text[cut] & 0xc0) == 0x80)
        cut--;          /* not inside a UTF-8 sequence */
    _cleanup_free_ char *s = xasprintf("%.*s…", (int) cut, text);
    return json_string(s);
}

json_t *step_result_to_json(const struct step *s, const struct step_result *r)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:I}", "index", (json_int_t) s->index, "name", s->name,
                          "action", playbook_action_to_string(s->action),
                          "status", step_status_to_string(r->status),
                          "duration_us", (json_int_t) r->duration_us);
    json_object_set_new(o, "before", r->before ? steps_json_text(r->before) : json_null());
    json_object_set_new(o, "after", r->after ? steps_json_text(r->after) : json_null());
    json_object_set_new(o, "message", steps_json_text(r->message ? r->message : ""));
    return o;
}

/* ---- netlink helpers ---- */

static int nlerr_to_errno(int nlerr)
{
    switch (nlerr < 0 ? -nlerr : nlerr) {
    case NLE_NOMEM: return -ENOMEM;
    case NLE_PERM: return -EPERM;
    case NLE_NOACCESS: return -EACCES;
    case NLE_EXIST: return -EEXIST;
    case NLE_OBJ_NOTFOUND: return -ENOENT;
    case NLE_NOADDR: return -EADDRNOTAVAIL;
    case NLE_NODEV: return -ENODEV;
    case NLE_INVAL: return -EINVAL;
    case NLE_RANGE: return -ERANGE;
    case NLE_BUSY: return -EBUSY;
    case NLE_OPNOTSUPP: return -EOPNOTSUPP;
    case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
    default: return -EIO;
    }
}

struct nl_sock *steps_socket_new(char **ret_error)
{
    struct nl_sock *sock = nl_socket_alloc();
    if (!sock) {
        fail(ret_error, "cannot allocate a netlink socket: out of memory");
        return NULL;
    }
    int r = nl_connect(sock, NETLINK_ROUTE);
    if (r < 0) {
        fail(ret_error, "cannot open a route netlink socket: %s", nl_geterror(r));
        nl_socket_free(sock);
        return NULL;
    }
    return sock;
}

void steps_socket_free(struct nl_sock *sock)
{
    if (sock)
        nl_socket_free(sock);
}

static int ifindex_of(struct nl_sock *sock, const char *name)
{
    _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
    if (rtnl_link_get_kernel(sock, 0, name, &link) < 0 || !link)
        return -ENODEV;
    return rtnl_link_get_ifindex(link);
}

static void ifname_of(struct nl_sock *sock, int ifindex, char buf[static 16])
{
    _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
    if (ifindex > 0 && rtnl_link_get_kernel(sock, ifindex, NULL, &link) == 0 && link &&
        rtnl_link_get_name(link))
        snprintf(buf, 16, "%s", rtnl_link_get_name(link));
    else
        snprintf(buf, 16, "#%d", ifindex);
}

static struct nl_addr *to_nl_addr(const struct ip_addr *a, unsigned len)
{
    struct nl_addr *n = nl_addr_build(a->family, a->bytes, a->family == AF_INET ? 4 : 16);
    if (!n)
        abort();
    nl_addr_set_prefixlen(n, len);
    return n;
}

static void from_nl(struct nl_addr *a, int family, struct ip_addr *ret, unsigned *ret_len)
{
    struct ip_addr x = { .family = family };
    unsigned len = 0;
    if (a) {
        unsigned n = nl_addr_get_len(a);
        if ((family == AF_INET && n == 4) || (family == AF_INET6 && n == 16))
            memcpy(x.bytes, nl_addr_get_binary_addr(a), n);
        len = nl_addr_get_prefixlen(a);
    }
    *ret = x;
    if (ret_len)
        *ret_len = len;
}

#define MSG_NO_INTERFACE "there is no interface '%s' on this host"

/* ---- undo operations (JSON) ---- */

static json_t *op_sysctl(const char *key, const char *value)
{
    return json_pack("{s:s, s:s, s:s}", "op", "sysctl", "key", key, "value", value);
}

static json_t *op_mtu(const char *ifname, unsigned mtu)
{
    return json_pack("{s:s, s:s, s:I}", "op", "mtu", "interface", ifname, "mtu", (json_int_t) mtu);
}

static json_t *op_address(const char *op, const char *ifname, const struct ip_prefix *p,
                          uint32_t flags, uint8_t scope, uint32_t valid, uint32_t preferred)
{
    char buf[IP_PREFIX_STRLEN];
    json_t *o = json_pack("{s:s, s:s, s:s}", "op", op, "interface", ifname, "address",
                          ip_prefix_format(p, buf));
    if (streq(op, "address-add"))
        json_object_update_new(o, json_pack("{s:I, s:I, s:I, s:I}", "flags", (json_int_t) flags,
                                            "scope", (json_int_t) scope, "valid_lft", (json_int_t) valid,
                                            "preferred_lft", (json_int_t) preferred));
    return o;
}

/* A route as JSON, complete enough to add it back or delete exactly it. */
static json_t *route_to_json(struct nl_sock *sock, struct rtnl_route *rt)
{
    int family = rtnl_route_get_family(rt);
    struct ip_prefix dst;
    from_nl(rtnl_route_get_dst(rt), family, &dst.addr, &dst.len);
    char buf[IP_PREFIX_STRLEN];
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "dst", ip_prefix_format(&dst, buf),
                          "table", (json_int_t) rtnl_route_get_table(rt),
                          "metric", (json_int_t) rtnl_route_get_priority(rt),
                          "protocol", (json_int_t) rtnl_route_get_protocol(rt),
                          "scope", (json_int_t) rtnl_route_get_scope(rt),
                          "type", (json_int_t) rtnl_route_get_type(rt));
    struct nl_addr *src = rtnl_route_get_pref_src(rt);
    if (src && nl_addr_get_len(src)) {
        struct ip_addr a;
        from_nl(src, family, &a, NULL);
        char ab[IP_ADDR_STRLEN];
        json_object_set_new(o, "prefsrc", json_string(ip_addr_format(&a, ab)));
    }
    json_t *nhs = json_array();
    for (int i = 0; i < rtnl_route_get_nnexthops(rt); i++) {
        struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, i);
        json_t *j = json_object();
        char ifname[16];
        ifname_of(sock, rtnl_route_nh_get_ifindex(nh), ifname);
        json_object_set_new(j, "interface", json_string(ifname));
        struct nl_addr *gw = rtnl_route_nh_get_gateway(nh);
        if (gw && nl_addr_get_len(gw)) {
            struct ip_addr a;
            from_nl(gw, nl_addr_get_family(gw), &a, NULL);
            char ab[IP_ADDR_STRLEN];
            json_object_set_new(j, "via", json_string(ip_addr_format(&a, ab)));
        }
        json_array_append_new(nhs, j);
    }
    json_object_set_new(o, "nexthops", nhs);
    return o;
}

/* "DST via GW dev IF metric M [table T]" for before/after texts. */
static char *route_json_describe(json_t *r)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, json_string_value(json_object_get(r, "dst")));
    size_t i;
    json_t *nh;
    json_array_foreach(json_object_get(r, "nexthops"), i, nh) {
        const char *via = json_string_value(json_object_get(nh, "via"));
        const char *dev = json_string_value(json_object_get(nh, "interface"));
        if (i)
            strbuf_puts(&sb, " nexthop");
        if (via)
            strbuf_printf(&sb, " via %s", via);
        if (dev)
            strbuf_printf(&sb, " dev %s", dev);
    }
    strbuf_printf(&sb, " metric %lld", (long long) json_integer_value(json_object_get(r, "metric")));
    json_int_t table = json_integer_value(json_object_get(r, "table"));
    if (table != RT_TABLE_MAIN)
        strbuf_printf(&sb, " table %lld", (long long) table);
    return strbuf_steal(&sb);
}

/* Build a libnl route from route_to_json()'s shape.  -EINVAL when the
 * JSON is not that shape; -ENODEV when a next hop's interface is gone. */
static int route_from_json(struct nl_sock *sock, json_t *o, struct rtnl_route **ret)
{
    struct ip_prefix dst;
    const char *dst_s = json_string_value(json_object_get(o, "dst"));
    if (!dst_s || ip_addr_prefix_parse(dst_s, &dst, NULL) < 0)
        return -EINVAL;
    _cleanup_(rtnl_route_putp) struct rtnl_route *rt = rtnl_route_alloc();
    if (!rt)
        abort();
    _cleanup_(nl_addr_putp) struct nl_addr *d = to_nl_addr(&dst.addr, dst.len);
    rtnl_route_set_family(rt, (uint8_t) dst.addr.family);
    if (rtnl_route_set_dst(rt, d) < 0)
        return -EINVAL;
    rtnl_route_set_table(rt, (uint32_t) json_integer_value(json_object_get(o, "table")));
    rtnl_route_set_priority(rt, (uint32_t) json_integer_value(json_object_get(o, "metric")));
    rtnl_route_set_protocol(rt, (uint8_t) json_integer_value(json_object_get(o, "protocol")));
    rtnl_route_set_scope(rt, (uint8_t) json_integer_value(json_object_get(o, "scope")));
    rtnl_route_set_type(rt, (uint8_t) json_integer_value(json_object_get(o, "type")));
    const char *src_s = json_string_value(json_object_get(o, "prefsrc"));
    if (src_s) {
        struct ip_addr a;
        if (ip_addr_parse_family(src_s, dst.addr.family, &a, NULL) < 0)
            return -EINVAL;
        _cleanup_(nl_addr_putp) struct nl_addr *s = to_nl_addr(&a, ip_family_bits(a.family));
        rtnl_route_set_pref_src(rt, s);
    }
    size_t i;
    json_t *nh;
    json_array_foreach(json_object_get(o, "nexthops"), i, nh) {
        struct rtnl_nexthop *n = rtnl_route_nh_alloc();
        if (!n)
            abort();
        const char *dev = json_string_value(json_object_get(nh, "interface"));
        const char *via = json_string_value(json_object_get(nh, "via"));
        if (dev) {
            int ifindex = ifindex_of(sock, dev);
            if (ifindex < 0) {
                rtnl_route_nh_free(n);
                return -ENODEV;
            }
            rtnl_route_nh_set_ifindex(n, ifindex);
        }
        if (via) {
            struct ip_addr a;
            if (ip_addr_parse(via, &a, NULL) < 0) {
                rtnl_route_nh_free(n);
                return -EINVAL;
            }
            _cleanup_(nl_addr_putp) struct nl_addr *g = to_nl_addr(&a, ip_family_bits(a.family));
            rtnl_route_nh_set_gateway(n, g);
        }
        rtnl_route_add_nexthop(rt, n);
    }
    *ret = steal_pointer(&rt);
    return 0;
}

/* ---- sysctl ---- */

static int sysctl_read(const char *key, char **ret)
{
    _cleanup_free_ char *path = xasprintf("/proc/sys/%s", key);
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(path, STEPS_MAX_SYSCTL_READ, &data, &len);
    if (r < 0)
        return r;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
        data[--len] = '\0';
    *ret = steal_pointer(&data);
    return 0;
}

static int sysctl_write(const char *key, const char *value)
{
    if (!playbook_sysctl_key_allowed(key))
        return -EPERM;
    _cleanup_free_ char *path = xasprintf("/proc/sys/%s", key);
    _cleanup_(closep) int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    if (n < 0)
        return -errno;
    if ((size_t) n != len)
        return -EIO;
    return 0;
}

/* ---- addresses and routes of one interface, for restore operations ---- */

/* What a change may take with it: turning IPv6 off on a link (disable_ipv6,
 * an MTU below 1280) deletes its IPv6 addresses and the routes through
 * them; removing an address deletes the routes that used it.  Append to
 * undo operations that bring back the global addresses (with_addresses)
 * and the routes (other than the kernel's own and those learnt from RAs)
 * of FAMILY on IFINDEX.  They come before the step's own operation in the
 * array and so run after it. */
static int append_restore_ops(struct nl_sock *sock, int ifindex, const char *ifname, int family,
                              bool with_addresses, json_t *undo)
{
    int r;
    _cleanup_(nl_cache_freep) struct nl_cache *routes = NULL;
    if ((r = rtnl_route_alloc_cache(sock, family, 0, &routes)) < 0)
        return nlerr_to_errno(r);
    for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *rt = (struct rtnl_route *) o;
        uint8_t proto = rtnl_route_get_protocol(rt);
        if (rtnl_route_get_type(rt) != RTN_UNICAST || rtnl_route_get_table(rt) == RT_TABLE_LOCAL ||
            proto == RTPROT_KERNEL || proto == RTPROT_RA)
            continue;
        bool on_iface = false;
        for (int i = 0; i < rtnl_route_get_nnexthops(rt); i++)
            on_iface |= rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(rt, i)) == ifindex;
        if (!on_iface)
            continue;
        if (json_array_size(undo) >= STEPS_MAX_UNDO_OPS)
            return -E2BIG;
        json_t *op = route_to_json(sock, rt);
        json_object_set_new(op, "op", json_string("route-add"));
        json_array_append_new(undo, op);
    }
    if (!with_addresses)
        return 0;
    _cleanup_(nl_cache_freep) struct nl_cache *addrs = NULL;
    if ((r = rtnl_addr_alloc_cache(sock, &addrs)) < 0)
        return nlerr_to_errno(r);
    for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *) o;
        if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != family ||
            rtnl_addr_get_scope(a) == RT_SCOPE_LINK || rtnl_addr_get_scope(a) == RT_SCOPE_HOST)
            continue;
        /* Addresses made by SLAAC come back by themselves. */
        if (rtnl_addr_get_valid_lifetime(a) != 0xffffffffu && family == AF_INET6)
            continue;
        if (json_array_size(undo) >= STEPS_MAX_UNDO_OPS)
            return -E2BIG;
        struct ip_prefix p;
        from_nl(rtnl_addr_get_local(a), family, &p.addr, NULL);
        p.len = (unsigned) rtnl_addr_get_prefixlen(a);
        json_array_append_new(undo, op_address("address-add", ifname, &p, rtnl_addr_get_flags(a),
                                               (uint8_t) rtnl_addr_get_scope(a),
                                               rtnl_addr_get_valid_lifetime(a),
                                               rtnl_addr_get_preferred_lifetime(a)));
    }
    return 0;
}

/* ---- running one step ---- */

struct step_run {
    const struct steps_env *env;
    const struct step *s;
    enum step_mode mode;
    struct step_result *res;
};

static int step_fail(struct step_run *x, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int step_fail(struct step_run *x, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(x->res->message);
    if (vasprintf(&x->res->message, fmt, ap) < 0)
        abort();
    va_end(ap);
    x->res->status = STEP_FAILED;
    return err < 0 ? err : -EIO;
}

static void step_say(struct step_run *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step_say(struct step_run *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    free(x->res->message);
    if (vasprintf(&x->res->message, fmt, ap) < 0)
        abort();
    va_end(ap);
}

static void set_before_after(struct step_run *x, const char *before, const char *after)
{
    free(x->res->before);
    free(x->res->after);
    x->res->before = before ? xstrdup(before) : NULL;
    x->res->after = after ? xstrdup(after) : NULL;
}

/* Journal the undo operations, then the caller changes the kernel. */
static int before_change(struct step_run *x, json_t *undo)
{
    x->res->undo = json_incref(undo);
    if (!x->env->before_change)
        return 0;
    int r = x->env->before_change(x->s, undo, x->env->userdata);
    if (r < 0) {
        json_decref(x->res->undo);
        x->res->undo = NULL;
        return step_fail(x, r, "cannot write the journal before changing anything: %s; nothing "
                         "was changed", strerror(-r));
    }
    return 0;
}

static int do_sysctl(struct step_run *x)
{
    const struct step *s = x->s;
    _cleanup_free_ char *old = NULL;
    int r = sysctl_read(s->key, &old);
    if (r < 0)
        return step_fail(x, r, r == -ENOENT ? "there is no sysctl '%s' on this host (is the interface "
                         "there, and the protocol enabled?)" : "cannot read sysctl '%s': %s", s->key,
                         strerror(-r));
    set_before_after(x, old, s->value);
    if (streq(old, s->value)) {
        x->res->status = STEP_UNCHANGED;
        step_say(x, "%s is already %s", s->key, s->value);
        return 0;
    }
    if (x->mode == STEP_MODE_CHECK) {
        x->res->status = STEP_WOULD_CHANGE;
        step_say(x, "would write %s to %s (now %s)", s->value, s->key, old);
        return 0;
    }
    _cleanup_(json_decrefp) json_t *undo = json_array();
    /* disable_ipv6 = 1 deletes the link's IPv6 addresses and routes. */
    char dev[16];
    const char *tail = strrchr(s->key, '/');
    if (strncmp(s->key, "net/ipv6/conf/", 14) == 0 && tail && streq(tail + 1, "disable_ipv6") &&
        !streq(s->value, "0") && streq(old, "0")) {
        snprintf(dev, sizeof dev, "%.*s", (int) (tail - (s->key + 14)), s->key + 14);
        int ifindex = ifindex_of(x->env->sock, dev);
        if (ifindex > 0 && (r = append_restore_ops(x->env->sock, ifindex, dev, AF_INET6, true, undo)) < 0)
            return step_fail(x, r, "cannot record the IPv6 state of '%s' before turning IPv6 off: %s",
                             dev, strerror(-r));
    }
    json_array_append_new(undo, op_sysctl(s->key, old));
    if ((r = before_change(x, undo)) < 0)
        return r;
    r = sysctl_write(s->key, s->value);
    if (r < 0)
        return step_fail(x, r, "cannot write '%s' to %s: %s", s->value, s->key, strerror(-r));
    x->res->status = STEP_CHANGED;
    step_say(x, "%s: %s → %s", s->key, old, s->value);
    return 0;
}

/* The address on IFINDEX whose local address is A (any prefix length). */
static struct rtnl_addr *find_address(struct nl_cache *addrs, int ifindex, const struct ip_addr *a)
{
    for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *x = (struct rtnl_addr *) o;
        if (rtnl_addr_get_ifindex(x) != ifindex || rtnl_addr_get_family(x) != a->family)
            continue;
        struct ip_addr local;
        from_nl(rtnl_addr_get_local(x), a->family, &local, NULL);
        if (ip_addr_equal(&local, a))
            return x;
    }
    return NULL;
}

static int do_address(struct step_run *x)
{
    const struct step *s = x->s;
    struct nl_sock *sock = x->env->sock;
    char want[IP_PREFIX_STRLEN], have[IP_PREFIX_STRLEN + 24];
    ip_prefix_format(&s->address, want);
    int ifindex = ifindex_of(sock, s->interface);
    if (ifindex < 0)
        return step_fail(x, ifindex, MSG_NO_INTERFACE, s->interface);
    _cleanup_(nl_cache_freep) struct nl_cache *addrs = NULL;
    int r = rtnl_addr_alloc_cache(sock, &addrs);
    if (r < 0)
        return step_fail(x, nlerr_to_errno(r), "cannot list the addresses: %s", nl_geterror(r));
    struct rtnl_addr *cur = find_address(addrs, ifindex, &s->address.addr);
    unsigned cur_len = cur ? (unsigned) rtnl_addr_get_prefixlen(cur) : 0;
    if (cur) {
        struct ip_prefix p = { .addr = s->address.addr, .len = cur_len };
        ip_prefix_format(&p, have);
    }

    if (s->action == PLAYBOOK_ADDRESS_ADD) {
        _cleanup_free_ char *after = xasprintf("%s on %s", want, s->interface);
        if (cur && cur_len == s->address.len) {
            set_before_after(x, after, after);
            x->res->status = STEP_UNCHANGED;
            step_say(x, "%s is already on %s", want, s->interface);
            return 0;
        }
        if (cur)
            return step_fail(x, -EEXIST, "%s is on %s already as %s (another prefix length); remove it "
                             "first (address.remove) to change its length", want, s->interface, have);
        set_before_after(x, "absent", after);
        if (x->mode == STEP_MODE_CHECK) {
            x->res->status = STEP_WOULD_CHANGE;
            step_say(x, "would add %s to %s", want, s->interface);
            return 0;
        }
        _cleanup_(json_decrefp) json_t *undo = json_array();
        json_array_append_new(undo, op_address("address-delete", s->interface, &s->address, 0, 0, 0, 0));
        if ((r = before_change(x, undo)) < 0)
            return r;
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = rtnl_addr_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *local = to_nl_addr(&s->address.addr, s->address.len);
        if (!a)
            abort();
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_family(a, s->address.addr.family);
        rtnl_addr_set_local(a, local);
        rtnl_addr_set_prefixlen(a, (int) s->address.len);
        if (s->nodad)
            rtnl_addr_set_flags(a, IFA_F_NODAD);
        r = rtnl_addr_add(sock, a, NLM_F_EXCL);
        if (r < 0)
            return step_fail(x, nlerr_to_errno(r), "cannot add %s to %s: %s", want, s->interface,
                             nl_geterror(r));
        x->res->status = STEP_CHANGED;
        step_say(x, "added %s to %s%s", want, s->interface, s->nodad ? " (no DAD)" : "");
        return 0;
    }

    /* address.remove */
    if (!cur || (s->address_has_len && cur_len != s->address.len)) {
        set_before_after(x, "absent", "absent");
        x->res->status = STEP_UNCHANGED;
        if (cur)
            step_say(x, "%s is not on %s (%s is: another prefix length)", want, s->interface, have);
        else
            step_say(x, "%s is not on %s", want, s->interface);
        return 0;
    }
    _cleanup_free_ char *before = xasprintf("%s on %s", have, s->interface);
    set_before_after(x, before, "absent");
    if (x->mode == STEP_MODE_CHECK) {
        x->res->status = STEP_WOULD_CHANGE;
        step_say(x, "would remove %s from %s", have, s->interface);
        return 0;
    }
    struct ip_prefix p = { .addr = s->address.addr, .len = cur_len };
    _cleanup_(json_decrefp) json_t *undo = json_array();
    /* The routes that used the address go with it. */
    if ((r = append_restore_ops(sock, ifindex, s->interface, p.addr.family, false, undo)) < 0)
        return step_fail(x, r, "cannot record the routes on %s: %s", s->interface, strerror(-r));
    json_array_append_new(undo, op_address("address-add", s->interface, &p, rtnl_addr_get_flags(cur),
                                           (uint8_t) rtnl_addr_get_scope(cur),
                                           rtnl_addr_get_valid_lifetime(cur),
                                           rtnl_addr_get_preferred_lifetime(cur)));
    if ((r = before_change(x, undo)) < 0)
        return r;
    r = rtnl_addr_delete(sock, cur, 0);
    if (r < 0)
        return step_fail(x, nlerr_to_errno(r), "cannot remove %s from %s: %s", have, s->interface,
                         nl_geterror(r));
    x->res->status = STEP_CHANGED;
    step_say(x, "removed %s from %s", have, s->interface);
    return 0;
}

/* Whether next hop NH is (via, ifindex); a zero via / ifindex matches any. */
static bool nexthop_matches(struct rtnl_nexthop *nh, const struct ip_addr *via, int ifindex)
{
    if (ifindex > 0 && rtnl_route_nh_get_ifindex(nh) != ifindex)
        return false;
    struct nl_addr *gw = rtnl_route_nh_get_gateway(nh);
    bool has_gw = gw && nl_addr_get_len(gw);
    if (via->family == 0)
        return true;
    if (!has_gw)
        return false;
    struct ip_addr g;
    from_nl(gw, nl_addr_get_family(gw), &g, NULL);
    return ip_addr_equal(&g, via);
}

static bool route_dst_is(struct rtnl_route *rt, const struct ip_prefix *dst)
{
    struct ip_prefix d;
    from_nl(rtnl_route_get_dst(rt), rtnl_route_get_family(rt), &d.addr, &d.len);
    return d.len == dst->len && ip_addr_equal(&d.addr, &dst->addr);
}

static int do_route(struct step_run *x)
{
    const struct step *s = x->s;
    struct nl_sock *sock = x->env->sock;
    int family = s->dst.addr.family;
    int ifindex = 0;
    if (s->interface[0]) {
        ifindex = ifindex_of(sock, s->interface);
        if (ifindex < 0)
            return step_fail(x, ifindex, MSG_NO_INTERFACE, s->interface);
    }
    _cleanup_(nl_cache_freep) struct nl_cache *routes = NULL;
    int r = rtnl_route_alloc_cache(sock, family, 0, &routes);
    if (r < 0)
        return step_fail(x, nlerr_to_errno(r), "cannot list the routes: %s", nl_geterror(r));
    char dst[IP_PREFIX_STRLEN];
    ip_prefix_format(&s->dst, dst);

    if (s->action == PLAYBOOK_ROUTE_ADD) {
        /* The wanted route, in the shape of route_to_json(). */
        json_t *want_nh = json_object();
        if (s->interface[0])
            json_object_set_new(want_nh, "interface", json_string(s->interface));
        if (s->via.family) {
            char vb[IP_ADDR_STRLEN];
            json_object_set_new(want_nh, "via", json_string(ip_addr_format(&s->via, vb)));
        }
        _cleanup_(json_decrefp) json_t *want = json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:I, s:[o]}", "dst", dst, "table", (json_int_t) s->table,
            "metric", (json_int_t) s->metric, "protocol", (json_int_t) RTPROT_STATIC,
            "scope", (json_int_t) (s->via.family || family == AF_INET6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK),
            "type", (json_int_t) RTN_UNICAST, "nexthops", want_nh);
        _cleanup_free_ char *want_text = route_json_describe(want);

        struct rtnl_route *same_slot = NULL;      /* same dst, table, metric */
        for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
            struct rtnl_route *rt = (struct rtnl_route *) o;
            if (rtnl_route_get_type(rt) != RTN_UNICAST || rtnl_route_get_table(rt) != s->table ||
                rtnl_route_get_priority(rt) != s->metric || !route_dst_is(rt, &s->dst))
                continue;
            same_slot = rt;
            break;
        }
        if (same_slot && rtnl_route_get_nnexthops(same_slot) == 1 &&
            nexthop_matches(rtnl_route_nexthop_n(same_slot, 0), &s->via, ifindex) &&
            (s->via.family || !rtnl_route_nh_get_gateway(rtnl_route_nexthop_n(same_slot, 0)))) {
            _cleanup_(json_decrefp) json_t *have = route_to_json(sock, same_slot);
            _cleanup_free_ char *have_text = route_json_describe(have);
            set_before_after(x, have_text, have_text);
            x->res->status = STEP_UNCHANGED;
            step_say(x, "the route %s is already there", have_text);
            return 0;
        }
        _cleanup_(json_decrefp) json_t *undo = json_array();
        _cleanup_free_ char *old_text = NULL;
        if (same_slot) {
            json_t *old = route_to_json(sock, same_slot);
            old_text = route_json_describe(old);
            json_object_set_new(old, "op", json_string("route-replace"));
            json_array_append_new(undo, old);
        } else {
            json_t *op = json_deep_copy(want);
            json_object_set_new(op, "op", json_string("route-delete"));
            json_array_append_new(undo, op);
        }
        set_before_after(x, old_text ? old_text : "absent", want_text);
        if (x->mode == STEP_MODE_CHECK) {
            x->res->status = STEP_WOULD_CHANGE;
            if (old_text)
                step_say(x, "would replace the route %s by %s", old_text, want_text);
            else
                step_say(x, "would add the route %s", want_text);
            return 0;
        }
        if ((r = before_change(x, undo)) < 0)
            return r;
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = NULL;
        if ((r = route_from_json(sock, want, &rt)) < 0)
            return step_fail(x, r, "cannot build the route %s: %s", want_text, strerror(-r));
        r = rtnl_route_add(sock, rt, same_slot ? NLM_F_REPLACE : NLM_F_EXCL);
        if (r < 0)
            return step_fail(x, nlerr_to_errno(r), "cannot %s the route %s: %s",
                             same_slot ? "replace by" : "add", want_text, nl_geterror(r));
        x->res->status = STEP_CHANGED;
        if (old_text)
            step_say(x, "replaced the route %s by %s", old_text, want_text);
        else
            step_say(x, "added the route %s", want_text);
        return 0;
    }

    /* route.remove: every route to dst in the table matching the filters. */
    _cleanup_(json_decrefp) json_t *undo = json_array();
    struct strbuf before;
    strbuf_init(&before);
    size_t n = 0;
    for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *rt = (struct rtnl_route *) o;
        if (rtnl_route_get_type(rt) != RTN_UNICAST || rtnl_route_get_table(rt) != s->table ||
            !route_dst_is(rt, &s->dst) || (s->has_metric && rtnl_route_get_priority(rt) != s->metric))
            continue;
        bool any = false;
        for (int i = 0; i < rtnl_route_get_nnexthops(rt) && !any; i++)
            any = nexthop_matches(rtnl_route_nexthop_n(rt, i), &s->via, ifindex);
        if (!any)
            continue;
        if (n >= STEPS_MAX_UNDO_OPS) {
            strbuf_free(&before);
            return step_fail(x, -E2BIG, "more than %d routes to %s match; narrow the step down "
                             "(via, interface, metric)", STEPS_MAX_UNDO_OPS, dst);
        }
        json_t *op = route_to_json(sock, rt);
        _cleanup_free_ char *text = route_json_describe(op);
        strbuf_printf(&before, "%s%s", n ? "; " : "", text);
        json_object_set_new(op, "op", json_string("route-add"));
        json_array_append_new(undo, op);
        n++;
    }
    _cleanup_free_ char *before_text = strbuf_steal(&before);
    if (n == 0) {
        set_before_after(x, "absent", "absent");
        x->res->status = STEP_UNCHANGED;
        step_say(x, "no route to %s matches", dst);
        return 0;
    }
    set_before_after(x, before_text, "absent");
    if (x->mode == STEP_MODE_CHECK) {
        x->res->status = STEP_WOULD_CHANGE;
        step_say(x, "would remove %zu route(s): %s", n, before_text);
        return 0;
    }
    if ((r = before_change(x, undo)) < 0)
        return r;
    size_t i;
    json_t *op;
    json_array_foreach(undo, i, op) {
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = NULL;
        if ((r = route_from_json(sock, op, &rt)) < 0)
            return step_fail(x, r, "cannot rebuild a route to %s to delete it: %s", dst, strerror(-r));
        rtnl_route_set_scope(rt, RT_SCOPE_NOWHERE);     /* delete: any scope */
        r = rtnl_route_delete(sock, rt, 0);
        if (r < 0 && r != -NLE_OBJ_NOTFOUND)
            return step_fail(x, nlerr_to_errno(r), "cannot remove a route to %s: %s", dst, nl_geterror(r));
    }
    x->res->status = STEP_CHANGED;
    step_say(x, "removed %zu route(s): %s", n, before_text);
    return 0;
}

static int do_mtu(struct step_run *x)
{
    const struct step *s = x->s;
    struct nl_sock *sock = x->env->sock;
    _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
    if (rtnl_link_get_kernel(sock, 0, s->interface, &link) < 0 || !link)
        return step_fail(x, -ENODEV, MSG_NO_INTERFACE, s->interface);
    unsigned old = rtnl_link_get_mtu(link);
    char ob[16], nb[16];
    snprintf(ob, sizeof ob, "%u", old);
    snprintf(nb, sizeof nb, "%u", s->mtu);
    set_before_after(x, ob, nb);
    if (old == s->mtu) {
        x->res->status = STEP_UNCHANGED;
        step_say(x, "the MTU of %s is already %u", s->interface, old);
        return 0;
    }
    if (x->mode == STEP_MODE_CHECK) {
        x->res->status = STEP_WOULD_CHANGE;
        step_say(x, "would set the MTU of %s from %u to %u%s", s->interface, old, s->mtu,
                 s->mtu < CHECKS_IPV6_MIN_MTU && old >= CHECKS_IPV6_MIN_MTU
                     ? " (below 1280: the kernel turns IPv6 off on the link)" : "");
        return 0;
    }
    _cleanup_(json_decrefp) json_t *undo = json_array();
    int r;
    if (s->mtu < CHECKS_IPV6_MIN_MTU && old >= CHECKS_IPV6_MIN_MTU &&
        (r = append_restore_ops(sock, rtnl_link_get_ifindex(link), s->interface, AF_INET6, true, undo)) < 0)
        return step_fail(x, r, "cannot record the IPv6 state of '%s': %s", s->interface, strerror(-r));
    json_array_append_new(undo, op_mtu(s->interface, old));
    if ((r = before_change(x, undo)) < 0)
        return r;
    _cleanup_(rtnl_link_putp) struct rtnl_link *change = rtnl_link_alloc();
    if (!change)
        abort();
    rtnl_link_set_mtu(change, s->mtu);
    r = rtnl_link_change(sock, link, change, 0);
    if (r < 0)
        return step_fail(x, nlerr_to_errno(r), "cannot set the MTU of %s to %u: %s", s->interface,
                         s->mtu, nl_geterror(r));
    x->res->status = STEP_CHANGED;
    step_say(x, "the MTU of %s: %u → %u", s->interface, old, s->mtu);
    return 0;
}

/* ---- checks and waits ---- */

int steps_evaluate(const struct steps_env *env, struct checks_result *ret)
{
    const char *names[1] = { env->segment->interface };
    _cleanup_(snapshot_freep) struct snapshot *snap = NULL;
    /* With the daemon's memory of dropped unanswered neighbours: without
     * it a dead gateway whose FAILED entry the kernel just dropped reads
     * "no entry yet" and passes, and a verify would call a host good that
     * the readiness reports call failed. */
    int r = netstate_snapshot_fresh(env->sock, env->unanswered, names, 1, &snap);
    if (r < 0)
        return r;
    checks_evaluate(snap, env->segment, ret);
    return 0;
}

/* The worst severity of one check's items (a check without items, as
 * when the interface is missing, counts as failing), and whether REASON
 * is among them. */
static enum checks_severity check_severity(const struct checks_result *res, int check, int reason,
                                           bool *ret_has_reason)
{
    bool seen = false, has_reason = reason < 0;
    enum checks_severity worst = CHECKS_PASS;
    for (size_t i = 0; i < res->n_items; i++) {
        const struct checks_item *it = &res->items[i];
        if (check >= 0 && (int) it->check != check)
            continue;
        seen = true;
        if (it->severity > worst)
            worst = it->severity;
        if ((int) it->reason == reason)
            has_reason = true;
    }
    if (check >= 0 && !seen)
        worst = CHECKS_FAIL;
    if (ret_has_reason)
        *ret_has_reason = has_reason;
    return check < 0 ? res->status : worst;
}

bool steps_expect_holds(const struct step_expect *e, const struct checks_result *res)
{
    bool has_reason;
    enum checks_severity sev = check_severity(res, e->check, e->reason, &has_reason);
    if (!has_reason)
        return false;
    switch (e->expect) {
    case STEP_EXPECT_DUAL_STACK_READY: return sev != CHECKS_FAIL;
    case STEP_EXPECT_PASS: return sev == CHECKS_PASS;
    case STEP_EXPECT_WARN: return sev == CHECKS_WARN;
    case STEP_EXPECT_FAIL: return sev == CHECKS_FAIL;
    case STEP_EXPECT_MAX: break;
    }
    return false;
}

bool steps_when_holds(const struct step_when *w, const struct checks_result *res)
{
    bool has_reason;
    enum checks_severity sev = check_severity(res, (int) w->check, w->reason, &has_reason);
    if (!has_reason)
        return false;
    return w->status < 0 ? sev != CHECKS_PASS : (int) sev == w->status;
}

/* "ipv6-global-address fail: NO_GLOBAL_IPV6" / "fail: A, B" */
static char *summarize(const struct checks_result *res, int check)
{
    struct strbuf sb;
    strbuf_init(&sb);
    enum checks_severity sev = check_severity(res, check, -1, NULL);
    if (check >= 0)
        strbuf_printf(&sb, "%s ", checks_check_to_string(check));
    strbuf_puts(&sb, checks_severity_to_string(sev));
    size_t n = 0;
    for (size_t i = 0; i < res->n_items; i++) {
        const struct checks_item *it = &res->items[i];
        if ((check >= 0 && (int) it->check != check) || it->reason == REASON_OK)
            continue;
        strbuf_printf(&sb, "%s%s", n++ ? ", " : ": ", checks_reason_to_string(it->reason));
    }
    return strbuf_steal(&sb);
}

/* The first failing item's message, to say why a wait ended badly. */
static const char *first_problem(const struct checks_result *res, int check)
{
    for (size_t i = 0; i < res->n_items; i++)
        if ((check < 0 || (int) res->items[i].check == check) && res->items[i].severity != CHECKS_PASS)
            return res->items[i].message;
    return "";
}

static char *expect_text(const struct step_expect *e)
{
    return xasprintf("%s%s%s%s%s", e->check >= 0 ? checks_check_to_string(e->check) : "the segment",
                     e->expect == STEP_EXPECT_DUAL_STACK_READY ? " dual-stack-ready" : " ",
                     e->expect == STEP_EXPECT_DUAL_STACK_READY ? "" : expect_names[e->expect],
                     e->reason >= 0 ? " with " : "", e->reason >= 0 ? checks_reason_to_string(e->reason) : "");
}

/* A socket on the rtnetlink groups that announce what the checks look at:
 * a wait wakes up on the kernel's news instead of polling. */
static int event_socket(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct sockaddr_nl sa = {
        .nl_family = AF_NETLINK,
        .nl_groups = RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
                     RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
    };
    if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Sleep until a kernel event or MS milliseconds, then drain the events
 * (the next evaluation takes a fresh dump anyway). */
static void wait_event(int fd, unsigned ms)
{
    if (fd < 0) {
        poll(NULL, 0, (int) ms);
        return;
    }
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, (int) ms) > 0) {
        char buf[8192];
        while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
            ;
    }
}

/* The deadline of a wait of timeout_ms, cut by the task's deadline. */
static uint64_t wait_deadline(const struct steps_env *env, unsigned timeout_ms)
{
    uint64_t d = monotonic_usec() + (uint64_t) timeout_ms * 1000;
    if (env->deadline_us && env->deadline_us < d)
        d = env->deadline_us;
    return d;
}

/* Evaluate until the expectation holds or the deadline.  0 when it holds;
 * -ETIMEDOUT (with *ret_last, the last evaluation) when not; -errno. */
static int wait_expect(const struct steps_env *env, const struct step_expect *e, bool once,
                       char **ret_first, char **ret_last, char **ret_problem)
{
    uint64_t deadline = wait_deadline(env, e->timeout_ms);
    _cleanup_(closep) int fd = once ? -1 : event_socket();
    for (bool first = true;; first = false) {
        struct checks_result res;
        int r = steps_evaluate(env, &res);
        if (r < 0)
            return r;
        bool holds = steps_expect_holds(e, &res);
        if (first && ret_first)
            *ret_first = summarize(&res, e->check);
        uint64_t now = monotonic_usec();
        bool stopping = !holds && env->should_stop && env->should_stop(env->stop_userdata);
        if (holds || once || now >= deadline || stopping) {
            free(*ret_last);
            *ret_last = summarize(&res, e->check);
            if (!holds && ret_problem)
                *ret_problem = xstrdup(first_problem(&res, e->check));
            checks_result_clear(&res);
            return holds ? 0 : stopping ? -ECANCELED : -ETIMEDOUT;
        }
        checks_result_clear(&res);
        uint64_t left_ms = (deadline - now + 999) / 1000;
        wait_event(fd, (unsigned) (left_ms < STEPS_REEVALUATE_MS ? left_ms : STEPS_REEVALUATE_MS));
    }
}

static int do_check_run(struct step_run *x)
{
    const struct step_expect *e = &x->s->check;
    _cleanup_free_ char *first = NULL, *last = NULL, *problem = NULL, *want = expect_text(e);
    uint64_t t0 = monotonic_usec();
    int r = wait_expect(x->env, e, x->mode == STEP_MODE_CHECK, &first, &last, &problem);
    if (r == -ECANCELED) {
        set_before_after(x, first, last);
        return step_fail(x, r, "the agent is stopping: %s was still waited for (%s)", want, last);
    }
    if (r < 0 && r != -ETIMEDOUT)
        return step_fail(x, r, "cannot read the network state: %s", strerror(-r));
    set_before_after(x, first, last);
    if (x->mode == STEP_MODE_CHECK) {
        x->res->status = STEP_UNCHANGED;
        step_say(x, r == 0 ? "%s holds now" : "%s does not hold yet (the steps before may change that)",
                 want);
        return 0;
    }
    if (r < 0)
        return step_fail(x, r, "%s did not hold within %u ms: %s%s%s", want, e->timeout_ms, last,
                         problem && *problem ? "; " : "", problem ? problem : "");
    x->res->status = STEP_UNCHANGED;
    step_say(x, "%s holds (after %llu ms)", want, (unsigned long long) ((monotonic_usec() - t0) / 1000));
    return 0;
}

static const char *nud_name(uint16_t state)
{
    switch (state) {
    case NUD_INCOMPLETE: return "INCOMPLETE";
    case NUD_REACHABLE: return "REACHABLE";
    case NUD_STALE: return "STALE";
    case NUD_DELAY: return "DELAY";
    case NUD_PROBE: return "PROBE";
    case NUD_FAILED: return "FAILED";
    case NUD_NOARP: return "NOARP";
    case NUD_PERMANENT: return "PERMANENT";
    case NUD_NONE: return "NONE";
    default: return "UNKNOWN";
    }
}

/* The condition's state now as text, and whether it holds. */
static int wait_condition_now(const struct step_run *x, int ifindex, char **ret_state, bool *ret_holds)
{
    const struct step *s = x->s;
    struct nl_sock *sock = x->env->sock;
    char ab[IP_ADDR_STRLEN];
    ip_addr_format(&s->address.addr, ab);
    int r;
    if (s->wait == STEP_WAIT_ADDRESS_USABLE) {
        _cleanup_(nl_cache_freep) struct nl_cache *addrs = NULL;
        if ((r = rtnl_addr_alloc_cache(sock, &addrs)) < 0)
            return nlerr_to_errno(r);
        struct rtnl_addr *a = find_address(addrs, ifindex, &s->address.addr);
        if (!a || (s->address_has_len && (unsigned) rtnl_addr_get_prefixlen(a) != s->address.len)) {
            *ret_state = xasprintf("%s absent", ab);
            *ret_holds = false;
            return 0;
        }
        unsigned flags = rtnl_addr_get_flags(a);
        *ret_holds = !(flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED));
        *ret_state = xasprintf("%s %s", ab, flags & IFA_F_DADFAILED ? "dadfailed"
                                           : flags & IFA_F_TENTATIVE ? "tentative" : "usable");
        return 0;
    }
    _cleanup_(nl_cache_freep) struct nl_cache *neighs = NULL;
    if ((r = rtnl_neigh_alloc_cache(sock, &neighs)) < 0)
        return nlerr_to_errno(r);
    uint16_t state = NUD_NONE;
    for (struct nl_object *o = nl_cache_get_first(neighs); o; o = nl_cache_get_next(o)) {
        struct rtnl_neigh *n = (struct rtnl_neigh *) o;
        if (rtnl_neigh_get_ifindex(n) != ifindex || rtnl_neigh_get_family(n) != s->address.addr.family)
            continue;
        struct ip_addr d;
        from_nl(rtnl_neigh_get_dst(n), s->address.addr.family, &d, NULL);
        if (ip_addr_equal(&d, &s->address.addr)) {
            state = (uint16_t) rtnl_neigh_get_state(n);
            break;
        }
    }
    *ret_holds = (state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE)) != 0;
    *ret_state = xasprintf("neighbour %s %s", ab, state == NUD_NONE ? "absent" : nud_name(state));
    return 0;
}

static int do_wait(struct step_run *x)
{
    const struct step *s = x->s;
    if (x->mode == STEP_MODE_CHECK) {
        x->res->status = STEP_SKIPPED;
        step_say(x, "waits are not run in check mode");
        return 0;
    }
    int ifindex = ifindex_of(x->env->sock, s->interface);
    if (ifindex < 0)
        return step_fail(x, ifindex, MSG_NO_INTERFACE, s->interface);
    uint64_t t0 = monotonic_usec(), deadline = wait_deadline(x->env, s->timeout_ms);
    _cleanup_(closep) int fd = event_socket();
    _cleanup_free_ char *first = NULL, *probe_error = NULL;
    bool probed = false;
    for (;;) {
        _cleanup_free_ char *state = NULL;
        bool holds = false;
        int r = wait_condition_now(x, ifindex, &state, &holds);
        if (r < 0)
            return step_fail(x, r, "cannot read the network state: %s", strerror(-r));
        if (!first)
            first = xstrdup(state);
        uint64_t now = monotonic_usec();
        if (!holds && x->env->should_stop && x->env->should_stop(x->env->stop_userdata)) {
            set_before_after(x, first, state);
            return step_fail(x, -ECANCELED, "%s: the agent is stopping (%s)", wait_names[s->wait], state);
        }
        if (holds || now >= deadline) {
            set_before_after(x, first, state);
            if (!holds)
                return step_fail(x, -ETIMEDOUT, "%s: not within %u ms (%s)%s%s",
                                 wait_names[s->wait], s->timeout_ms, state,
                                 probe_error ? "; the probe could not be sent: " : "",
                                 probe_error ? probe_error : "");
            x->res->status = STEP_UNCHANGED;
            step_say(x, "%s after %llu ms", state, (unsigned long long) ((now - t0) / 1000));
            return 0;
        }
        if (s->wait == STEP_WAIT_NEIGHBOUR_REACHABLE && !probed) {
            probed = true;
            r = neighbour_probe_send(s->interface, ifindex, &s->address.addr);
            if (r < 0)
                probe_error = xstrdup(strerror(-r));
        }
        uint64_t left_ms = (deadline - now + 999) / 1000;
        wait_event(fd, (unsigned) (left_ms < STEPS_REEVALUATE_MS ? left_ms : STEPS_REEVALUATE_MS));
    }
}

int steps_run(const struct steps_env *env, const struct step *s, enum step_mode mode,
              struct step_result *ret)
{
    struct step_result res = { .status = STEP_NOT_RUN };
    struct step_run x = { .env = env, .s = s, .mode = mode, .res = &res };
    uint64_t t0 = monotonic_usec();
    int r = 0;

    if (s->when.present) {
        struct checks_result cr;
        r = steps_evaluate(env, &cr);
        if (r < 0) {
            step_fail(&x, r, "cannot evaluate the step's condition: %s", strerror(-r));
            goto out;
        }
        bool holds = steps_when_holds(&s->when, &cr);
        _cleanup_free_ char *now = summarize(&cr, (int) s->when.check);
        checks_result_clear(&cr);
        if (!holds) {
            res.status = STEP_SKIPPED;
            step_say(&x, "the condition does not hold (%s; wanted %s%s%s)", now,
                     s->when.status < 0 ? "not pass" : checks_severity_to_string(s->when.status),
                     s->when.reason >= 0 ? " with " : "",
                     s->when.reason >= 0 ? checks_reason_to_string(s->when.reason) : "");
            goto out;
        }
    }

    switch (s->action) {
    case PLAYBOOK_SYSCTL_SET: r = do_sysctl(&x); break;
    case PLAYBOOK_ADDRESS_ADD:
    case PLAYBOOK_ADDRESS_REMOVE: r = do_address(&x); break;
    case PLAYBOOK_ROUTE_ADD:
    case PLAYBOOK_ROUTE_REMOVE: r = do_route(&x); break;
    case PLAYBOOK_LINK_SET_MTU: r = do_mtu(&x); break;
    case PLAYBOOK_CHECK_RUN: r = do_check_run(&x); break;
    case PLAYBOOK_WAIT_FOR: r = do_wait(&x); break;
    case _PLAYBOOK_ACTION_MAX: r = step_fail(&x, -EINVAL, "unknown action"); break;
    }
    if (r < 0)
        goto out;

    if (res.status == STEP_CHANGED && s->verify.present) {
        _cleanup_free_ char *last = NULL, *problem = NULL, *want = expect_text(&s->verify);
        r = wait_expect(env, &s->verify, false, NULL, &last, &problem);
        if (r == -ECANCELED) {
            _cleanup_free_ char *did = steal_pointer(&res.message);
            step_fail(&x, r, "%s; verify: the agent is stopping before %s held (%s)", did, want, last);
            goto out;
        }
        if (r < 0) {
            _cleanup_free_ char *did = steal_pointer(&res.message);
            step_fail(&x, r, "%s; verify: %s did not hold within %u ms (%s%s%s)", did, want,
                      s->verify.timeout_ms, last ? last : strerror(-r),
                      problem && *problem ? ": " : "", problem ? problem : "");
            goto out;
        }
        _cleanup_free_ char *did = steal_pointer(&res.message);
        step_say(&x, "%s; verified: %s", did, want);
    }
out:
    res.duration_us = monotonic_usec() - t0;
    *ret = res;
    return r;
}

/* ---- undo ---- */

static int undo_one(struct nl_sock *sock, json_t *op, char **ret_what)
{
    const char *kind = json_string_value(json_object_get(op, "op"));
    int r;
    if (!kind)
        kind = "";
    if (streq(kind, "sysctl")) {
        const char *key = json_string_value(json_object_get(op, "key"));
        const char *value = json_string_value(json_object_get(op, "value"));
        if (!key || !value)
            return -EINVAL;
        *ret_what = xasprintf("writing %s back to %s", value, key);
        _cleanup_free_ char *now = NULL;
        if (sysctl_read(key, &now) == 0 && streq(now, value))
            return 0;
        return sysctl_write(key, value);
    }
    if (streq(kind, "mtu")) {
        const char *dev = json_string_value(json_object_get(op, "interface"));
        json_int_t mtu = json_integer_value(json_object_get(op, "mtu"));
        if (!dev || mtu < 68 || mtu > 65535)
            return -EINVAL;
        *ret_what = xasprintf("setting the MTU of %s back to %lld", dev, (long long) mtu);
        _cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
        if (rtnl_link_get_kernel(sock, 0, dev, &link) < 0 || !link)
            return -ENODEV;
        if (rtnl_link_get_mtu(link) == (unsigned) mtu)
            return 0;
        _cleanup_(rtnl_link_putp) struct rtnl_link *change = rtnl_link_alloc();
        rtnl_link_set_mtu(change, (unsigned) mtu);
        r = rtnl_link_change(sock, link, change, 0);
        return r < 0 ? nlerr_to_errno(r) : 0;
    }
    if (streq(kind, "address-add") || streq(kind, "address-delete")) {
        const char *dev = json_string_value(json_object_get(op, "interface"));
        const char *addr = json_string_value(json_object_get(op, "address"));
        struct ip_prefix p;
        if (!dev || !addr || ip_addr_prefix_parse(addr, &p, NULL) < 0)
            return -EINVAL;
        bool add = streq(kind, "address-add");
        *ret_what = xasprintf("%s %s %s %s", add ? "adding" : "removing", addr, add ? "to" : "from", dev);
        int ifindex = ifindex_of(sock, dev);
        if (ifindex < 0)
            return add ? -ENODEV : 0;       /* gone with its interface: nothing to remove */
        _cleanup_(rtnl_addr_putp) struct rtnl_addr *a = rtnl_addr_alloc();
        _cleanup_(nl_addr_putp) struct nl_addr *local = to_nl_addr(&p.addr, p.len);
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_family(a, p.addr.family);
        rtnl_addr_set_local(a, local);
        rtnl_addr_set_prefixlen(a, (int) p.len);
        if (!add) {
            r = rtnl_addr_delete(sock, a, 0);
            return r < 0 && r != -NLE_NOADDR && r != -NLE_OBJ_NOTFOUND ? nlerr_to_errno(r) : 0;
        }
        /* Only the flags an address can be created with. */
        uint32_t flags = (uint32_t) json_integer_value(json_object_get(op, "flags")) &
                         (IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_NOPREFIXROUTE | IFA_F_MANAGETEMPADDR);
        if (flags)
            rtnl_addr_set_flags(a, flags);
        rtnl_addr_set_scope(a, (int) json_integer_value(json_object_get(op, "scope")));
        json_int_t valid = json_integer_value(json_object_get(op, "valid_lft"));
        json_int_t preferred = json_integer_value(json_object_get(op, "preferred_lft"));
        if (valid > 0 && valid < 0xffffffffLL) {
            rtnl_addr_set_valid_lifetime(a, (uint32_t) valid);
            rtnl_addr_set_preferred_lifetime(a, (uint32_t) (preferred <= valid ? preferred : valid));
        }
        r = rtnl_addr_add(sock, a, NLM_F_EXCL);
        return r < 0 && r != -NLE_EXIST ? nlerr_to_errno(r) : 0;
    }
    if (streq(kind, "route-add") || streq(kind, "route-delete") || streq(kind, "route-replace")) {
        _cleanup_free_ char *text = route_json_describe(op);
        bool del = streq(kind, "route-delete");
        *ret_what = xasprintf("%s the route %s", del ? "removing" : "restoring", text);
        _cleanup_(rtnl_route_putp) struct rtnl_route *rt = NULL;
        r = route_from_json(sock, op, &rt);
        if (r == -ENODEV && del)
            return 0;       /* gone with its interface */
        if (r < 0)
            return r;
        if (del) {
            rtnl_route_set_scope(rt, RT_SCOPE_NOWHERE);
            r = rtnl_route_delete(sock, rt, 0);
            return r < 0 && r != -NLE_OBJ_NOTFOUND ? nlerr_to_errno(r) : 0;
        }
        r = rtnl_route_add(sock, rt, streq(kind, "route-replace") ? NLM_F_REPLACE : NLM_F_EXCL);
        return r < 0 && r != -NLE_EXIST ? nlerr_to_errno(r) : 0;
    }
    *ret_what = xasprintf("an unknown undo operation '%.32s'", kind);
    return -EINVAL;
}

int steps_undo(struct nl_sock *sock, json_t *undo, char **ret_error)
{
    int first_error = 0;
    struct strbuf errors;
    strbuf_init(&errors);
    if (!json_is_array(undo)) {
        strbuf_free(&errors);
        if (ret_error)
            *ret_error = xstrdup("the undo record is not a list of operations");
        return -EINVAL;
    }
    for (size_t i = json_array_size(undo); i-- > 0;) {
        _cleanup_free_ char *what = NULL;
        int r = undo_one(sock, json_array_get(undo, i), &what);
        if (r < 0) {
            strbuf_printf(&errors, "%s%s: %s", first_error ? "; " : "", what ? what : "undo",
                          strerror(-r));
            if (!first_error)
                first_error = r;
        }
    }
    _cleanup_free_ char *text = strbuf_steal(&errors);
    if (first_error && ret_error)
        *ret_error = steal_pointer(&text);
    return first_error;
}

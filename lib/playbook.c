/* The playbook loader and renderer (playbook.h, doc/PLAYBOOKS.md).
 *
 * lib/yamldoc.c builds the tree and keeps the problems; this file checks
 * the tree against the playbook format.  What each action takes is data:
 * one table of typed arguments per action (name, type, required, default,
 * filled in from the segment), and `when` / `verify` are tables of the
 * same kind, so loading, rendering and the JSON forms all read the same
 * tables.
 *
 * A value is either literal — checked and typed at load — or holds
 * templates ("{{plan.ipv6_cidr}}", whole or part of a string): at load only
 * their syntax and variable names are checked; the renderer substitutes
 * one host's values and then checks the result with the same type checks
 * as literals, so an agent only ever receives values that a literal
 * playbook could have held. */
#include <config.h>
#include "playbook.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "ip.h"
#include "segments.h"
#include "util.h"
#include "yamldoc.h"

#define API_VERSION "yunguan/v1"
#define KIND "Playbook"
#define PLAYBOOK_MAX_NODES 4096
#define PLAYBOOK_MAX_DEPTH 16
#define DEFAULT_TIMEOUT_MS "10000"          /* check.run, wait.for (as the agent) */
#define DEFAULT_VERIFY_TIMEOUT_MS "5000"    /* verify (as the agent) */
#define STRING_MAX_CHARS 255
#define SYSCTL_VALUE_MAX 64
#define STEP_NAME_MAX_CHARS 100
#define STEP_NAME_MAX_BYTES 128     /* the agent's STEPS_MAX_NAME */
#define DESCRIPTION_MAX_CHARS 500

static const struct yamldoc_options playbook_doc_options = {
    .noun = "playbook",
    .a_noun = "a playbook",
    .max_bytes = PLAYBOOK_MAX_BYTES,
    .max_nodes = PLAYBOOK_MAX_NODES,
    .max_depth = PLAYBOOK_MAX_DEPTH,
    .max_problems = PLAYBOOK_MAX_ERRORS,
    .error_code = "invalid_playbook",
};

/* ------------------------------------------------------------------ */
/* Value kinds: what a parameter, an argument, a `when` or a `verify`   */
/* field may hold.                                                      */

enum value_type {
    VT_STRING,              /* text, 1-255 characters, no control characters */
    VT_INT,                 /* decimal integer in [min, max] */
    VT_BOOL,                /* true | false */
    VT_IPV4_ADDRESS,
    VT_IPV6_ADDRESS,
    VT_IPV4_PREFIX,
    VT_IPV6_PREFIX,
    VT_ADDRESS,             /* either family, no length */
    VT_ADDRESS_CIDR,        /* "addr/len", host bits kept (an interface address) */
    VT_ADDRESS_OR_CIDR,
    VT_PREFIX,              /* either family, host bits clear */
    VT_IFNAME,
    VT_SYSCTL_KEY,          /* playbook_sysctl_key_allowed() */
    VT_SYSCTL_VALUE,        /* 1-64 printable ASCII characters, no spaces */
    VT_ENUM,                /* one of choices */
    VT_CHECK,               /* a check name */
    VT_REASON,              /* a reason code */
};

struct value_kind {
    enum value_type type;
    int64_t min, max;               /* VT_INT */
    const char *const *choices;     /* VT_ENUM, NULL-terminated */
};

static const struct {
    const char *name;
    struct value_kind kind;
} param_types[] = {
    { "string", { .type = VT_STRING } },
    { "int", { .type = VT_INT, .min = INT64_MIN, .max = INT64_MAX } },
    { "bool", { .type = VT_BOOL } },
    { "ipv4-address", { .type = VT_IPV4_ADDRESS } },
    { "ipv6-address", { .type = VT_IPV6_ADDRESS } },
    { "ipv4-prefix", { .type = VT_IPV4_PREFIX } },
    { "ipv6-prefix", { .type = VT_IPV6_PREFIX } },
};

static const char *const expect_choices[] = { "dual-stack-ready", "pass", "warn", "fail", NULL };
static const char *const status_choices[] = { "pass", "warn", "fail", NULL };
static const char *const condition_choices[] = { "address-usable", "neighbour-reachable", NULL };

/* One typed field of an action's args, of `when` or of `verify`. */
struct field_spec {
    const char *name;
    struct value_kind kind;
    bool required;
    const char *def;            /* rendered when absent; NULL: left out */
    bool from_segment;          /* absent: the segment's interface */
};

#define K(t) { .type = (t) }
#define KINT(lo, hi) { .type = VT_INT, .min = (lo), .max = (hi) }
#define KENUM(c) { .type = VT_ENUM, .choices = (c) }

static const struct field_spec sysctl_set_args[] = {
    { "key", K(VT_SYSCTL_KEY), true, NULL, false },
    { "value", K(VT_SYSCTL_VALUE), true, NULL, false },
};
static const struct field_spec address_add_args[] = {
    { "address", K(VT_ADDRESS_CIDR), true, NULL, false },
    { "interface", K(VT_IFNAME), false, NULL, true },
    { "nodad", K(VT_BOOL), false, "false", false },
};
static const struct field_spec address_remove_args[] = {
    { "address", K(VT_ADDRESS_OR_CIDR), true, NULL, false },
    { "interface", K(VT_IFNAME), false, NULL, true },
};
static const struct field_spec route_add_args[] = {
    { "dst", K(VT_PREFIX), true, NULL, false },
    { "via", K(VT_ADDRESS), false, NULL, false },
    { "interface", K(VT_IFNAME), false, NULL, true },
    { "metric", KINT(0, UINT32_MAX), false, NULL, false },
    { "table", KINT(1, UINT32_MAX), false, NULL, false },
};
static const struct field_spec route_remove_args[] = {
    { "dst", K(VT_PREFIX), true, NULL, false },
    { "via", K(VT_ADDRESS), false, NULL, false },
    { "interface", K(VT_IFNAME), false, NULL, true },
    { "metric", KINT(0, UINT32_MAX), false, NULL, false },
    { "table", KINT(1, UINT32_MAX), false, NULL, false },
};
static const struct field_spec link_set_mtu_args[] = {
    { "interface", K(VT_IFNAME), false, NULL, true },
    { "mtu", KINT(68, 65535), true, NULL, false },
};
static const struct field_spec check_run_args[] = {
    { "expect", KENUM(expect_choices), true, NULL, false },
    { "check", K(VT_CHECK), false, NULL, false },
    { "reason", K(VT_REASON), false, NULL, false },
    { "timeout_ms", KINT(0, PLAYBOOK_MAX_WAIT_MS), false, DEFAULT_TIMEOUT_MS, false },
};
static const struct field_spec wait_for_args[] = {
    { "condition", KENUM(condition_choices), true, NULL, false },
    { "address", K(VT_ADDRESS), true, NULL, false },
    { "interface", K(VT_IFNAME), false, NULL, true },
    { "timeout_ms", KINT(0, PLAYBOOK_MAX_WAIT_MS), false, DEFAULT_TIMEOUT_MS, false },
};

/* `verify` (after a step changed something) and the host form of `when`;
 * literal only (the agent evaluates them, the controller passes them on). */
static const struct field_spec verify_fields[] = {
    { "check", K(VT_CHECK), false, NULL, false },
    { "expect", KENUM(expect_choices), true, NULL, false },
    { "reason", K(VT_REASON), false, NULL, false },
    { "timeout_ms", KINT(0, PLAYBOOK_MAX_WAIT_MS), false, DEFAULT_VERIFY_TIMEOUT_MS, false },
};
static const struct field_spec when_check_fields[] = {
    { "check", K(VT_CHECK), true, NULL, false },
    { "status", KENUM(status_choices), false, NULL, false },
    { "reason", K(VT_REASON), false, NULL, false },
};

struct field_table {
    const struct field_spec *fields;
    size_t n;
};
#define TABLE(a) { (a), YG_ARRAY_SIZE(a) }
#define MAX_FIELDS 5

static const struct field_table action_args[_PLAYBOOK_ACTION_MAX] = {
    [PLAYBOOK_SYSCTL_SET] = TABLE(sysctl_set_args),
    [PLAYBOOK_ADDRESS_ADD] = TABLE(address_add_args),
    [PLAYBOOK_ADDRESS_REMOVE] = TABLE(address_remove_args),
    [PLAYBOOK_ROUTE_ADD] = TABLE(route_add_args),
    [PLAYBOOK_ROUTE_REMOVE] = TABLE(route_remove_args),
    [PLAYBOOK_LINK_SET_MTU] = TABLE(link_set_mtu_args),
    [PLAYBOOK_CHECK_RUN] = TABLE(check_run_args),
    [PLAYBOOK_WAIT_FOR] = TABLE(wait_for_args),
};
static const struct field_table verify_table = TABLE(verify_fields);
static const struct field_table when_check_table = TABLE(when_check_fields);

/* Template variables besides params.NAME. */
enum var_source {
    VS_INTERFACE, VS_HOST, VS_SEGMENT, VS_V4_PREFIX, VS_V4_GATEWAY, VS_V4_PREFIX_LEN,
    VS_V6_PREFIX, VS_V6_GATEWAY, VS_V6_PREFIX_LEN, VS_PLAN_V4, VS_PLAN_V6,
    VS_PLAN_V4_CIDR, VS_PLAN_V6_CIDR,
};
static const struct {
    const char *name;
    enum var_source source;
} builtin_vars[] = {
    { "iface", VS_INTERFACE },
    { "host.name", VS_HOST },
    { "segment.name", VS_SEGMENT },
    { "segment.interface", VS_INTERFACE },
    { "segment.ipv4_prefix", VS_V4_PREFIX },
    { "segment.ipv4_gateway", VS_V4_GATEWAY },
    { "segment.ipv4_prefix_length", VS_V4_PREFIX_LEN },
    { "segment.ipv6_prefix", VS_V6_PREFIX },
    { "segment.ipv6_gateway", VS_V6_GATEWAY },
    { "segment.ipv6_prefix_length", VS_V6_PREFIX_LEN },
    { "plan.ipv4_address", VS_PLAN_V4 },
    { "plan.ipv6_address", VS_PLAN_V6 },
    { "plan.ipv4_cidr", VS_PLAN_V4_CIDR },
    { "plan.ipv6_cidr", VS_PLAN_V6_CIDR },
};

/* ------------------------------------------------------------------ */
/* The loaded playbook.                                                 */

struct pb_value {
    bool present;
    bool templated;
    char *text;                 /* as written */
    json_t *value;              /* literal: typed and normalised; NULL when templated */
    json_t *written;            /* as written, typed where literal (playbook_to_json) */
    int line, column;
};

struct pb_param {
    char *name;
    size_t type;                /* index into param_types */
    char *def;                  /* NULL: required */
    json_t *def_value;          /* normalised default */
    char *description;
};

struct pb_step {
    char *name;
    enum playbook_action action;
    struct pb_value args[MAX_FIELDS];   /* indexed like action_args[action] */
    json_t *when_check;         /* host condition, as the agent gets it */
    size_t when_param;          /* index into params, or SIZE_MAX */
    char *when_equals;          /* as written */
    json_t *when_equals_value;  /* normalised */
    json_t *verify;             /* as the agent gets it (timeout_ms filled in) */
    json_t *when_written, *verify_written;
    int line, column;
};

struct playbook {
    char *name;
    char *description;
    struct pb_param *params;
    size_t n_params;
    struct pb_step *steps;
    size_t n_steps;
};

/* ------------------------------------------------------------------ */
/* Pure helpers.                                                        */

static char *lowercase(const char *s)
{
    char *l = xstrdup(s);
    for (char *p = l; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char) (*p - 'A' + 'a');
    return l;
}

/* The candidate closest to S for a "did you mean" hint, or NULL: within a
 * few edits (more for longer names), or one a prefix of the other. */
static const char *closest(const char *s, const char *const *cands, size_t n)
{
    _cleanup_free_ char *lower = lowercase(s);
    const char *best = NULL;
    size_t best_d = SIZE_MAX, slen = strlen(lower);
    for (size_t i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        size_t clen = strlen(cands[i]);
        size_t dist = edit_distance(lower, cands[i]);
        size_t limit = clen <= 3 ? 1 : clen <= 6 ? 2 : 3;
        size_t shorter = slen < clen ? slen : clen;
        if (dist > limit && shorter >= 3 && !strncmp(lower, cands[i], shorter))
            dist = limit;       /* "integer" for int, "ipv6" for ipv6-address */
        if (dist <= limit && dist < best_d) {
            best = cands[i];
            best_d = dist;
        }
    }
    return best;
}

static char *join(const char *const *items, size_t n)
{
    struct strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < n; i++)
        if (items[i])
            strbuf_printf(&sb, "%s%s", sb.len ? ", " : "", items[i]);
    return strbuf_steal(&sb);
}

static size_t n_choices(const char *const *c)
{
    size_t n = 0;
    while (c[n])
        n++;
    return n;
}

/* Decimal integer, optional '-', no leading zero. */
static bool parse_int64(const char *s, int64_t *ret, bool *ret_overflow)
{
    bool neg = *s == '-';
    const char *p = s + neg;
    uint64_t v = 0, limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    *ret_overflow = false;
    if (!*p || (p[0] == '0' && p[1]))
        return false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned digit = (unsigned) (*p - '0');
        if (v > (limit - digit) / 10)
            *ret_overflow = true;
        else
            v = v * 10 + digit;
    }
    *ret = neg ? (int64_t) (0 - v) : (int64_t) v;
    return true;
}

static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

static const char *type_expected(const struct value_kind *k)
{
    switch (k->type) {
    case VT_INT:
        return "integer";
    case VT_BOOL:
        return "true or false";
    default:
        return "string";
    }
}

/* Whether TEXT is a value of kind K: true with *ret (typed, normalised:
 * RFC 5952 addresses, JSON integers and booleans), or false with *ret_why
 * (one sentence quoting TEXT, to free). */
static bool value_check(const struct value_kind *k, const char *text, json_t **ret,
                        char **ret_why)
{
    _cleanup_free_ char *shown = yamldoc_show(text, strlen(text));
    _cleanup_free_ char *err = NULL;
    char buf[IP_PREFIX_STRLEN];
    struct ip_addr a;
    struct ip_prefix p;
    int64_t v;
    bool overflow;

    switch (k->type) {
    case VT_STRING:
        if (!*text || yamldoc_utf8_chars(text, strlen(text)) > STRING_MAX_CHARS ||
            has_control(text)) {
            *ret_why = xasprintf("'%s' is not a valid string: use 1 to %d characters without "
                                 "control characters", shown, STRING_MAX_CHARS);
            return false;
        }
        *ret = json_string(text);
        return true;
    case VT_INT:
        if (!parse_int64(text, &v, &overflow)) {
            if (text[0] == '0' && text[1] && strspn(text, "0123456789") == strlen(text))
                *ret_why = xasprintf("integer expected, got '%s'; write it without the "
                                     "leading zero", shown);
            else
                *ret_why = xasprintf("integer expected, got '%s'", shown);
            return false;
        }
        if (overflow || v < k->min || v > k->max) {
            *ret_why = xasprintf("must be between %" PRId64 " and %" PRId64 ", got %s",
                                 k->min, k->max, shown);
            return false;
        }
        *ret = json_integer(v);
        return true;
    case VT_BOOL:
        if (!streq(text, "true") && !streq(text, "false")) {
            *ret_why = xasprintf("true or false expected, got '%s'", shown);
            return false;
        }
        *ret = json_boolean(streq(text, "true"));
        return true;
    case VT_IPV4_ADDRESS:
    case VT_IPV6_ADDRESS:
        if (ip_addr_parse_family(text, k->type == VT_IPV4_ADDRESS ? AF_INET : AF_INET6, &a,
                                 &err) < 0) {
            *ret_why = steal_pointer(&err);
            return false;
        }
        *ret = json_string(ip_addr_format(&a, buf));
        return true;
    case VT_ADDRESS:
        if (ip_addr_parse(text, &a, &err) < 0) {
            *ret_why = steal_pointer(&err);
            return false;
        }
        *ret = json_string(ip_addr_format(&a, buf));
        return true;
    case VT_IPV4_PREFIX:
    case VT_IPV6_PREFIX:
    case VT_PREFIX:
        if (streq(text, "default")) {
            *ret_why = xstrdup("write the default route as ::/0 or 0.0.0.0/0");
            return false;
        }
        if (ip_prefix_parse(text, &p, &err) < 0) {
            *ret_why = steal_pointer(&err);
            return false;
        }
        if ((k->type == VT_IPV4_PREFIX && p.addr.family != AF_INET) ||
            (k->type == VT_IPV6_PREFIX && p.addr.family != AF_INET6)) {
            *ret_why = xasprintf("'%s' is an %s prefix; an %s prefix is expected", shown,
                                 ip_family_name(p.addr.family),
                                 k->type == VT_IPV4_PREFIX ? "IPv4" : "IPv6");
            return false;
        }
        *ret = json_string(ip_prefix_format(&p, buf));
        return true;
    case VT_ADDRESS_OR_CIDR:
    case VT_ADDRESS_CIDR:
        if (!strchr(text, '/') && k->type == VT_ADDRESS_OR_CIDR) {
            if (ip_addr_parse(text, &a, &err) < 0) {
                *ret_why = steal_pointer(&err);
                return false;
            }
            *ret = json_string(ip_addr_format(&a, buf));
            return true;
        }
        if (!strchr(text, '/')) {
            *ret_why = xasprintf("'%s' has no prefix length; an interface address is written "
                                 "ADDRESS/LENGTH, like 2001:db8:10::21/64 ({{plan.ipv6_cidr}})",
                                 shown);
            return false;
        }
        if (ip_addr_prefix_parse(text, &p, &err) < 0) {
            *ret_why = steal_pointer(&err);
            return false;
        }
        {
            _cleanup_free_ char *cidr = xasprintf("%s/%u", ip_addr_format(&p.addr, buf), p.len);
            *ret = json_string(cidr);
        }
        return true;
    case VT_IFNAME:
        if (!segment_ifname_is_valid(text)) {
            *ret_why = xasprintf("'%s' is not a valid interface name: use 1 to %d characters "
                                 "without '/', ':' or spaces, like 'br-health'", shown,
                                 SEGMENTS_IFNAME_MAX);
            return false;
        }
        *ret = json_string(text);
        return true;
    case VT_SYSCTL_KEY:
        if (!playbook_sysctl_key_allowed(text)) {
            *ret_why = xasprintf("'%s' is not a key a playbook may write: only "
                                 "net/ipv6/conf/INTERFACE/NAME and net/ipv4/conf/INTERFACE/NAME "
                                 "(INTERFACE an interface name, 'all' or 'default')", shown);
            return false;
        }
        *ret = json_string(text);
        return true;
    case VT_SYSCTL_VALUE: {
        size_t n = strlen(text);
        bool ok = n >= 1 && n <= SYSCTL_VALUE_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = text[i] > ' ' && text[i] <= '~';
        if (!ok) {
            *ret_why = xasprintf("'%s' is not a sysctl value: use 1 to %d printable ASCII "
                                 "characters without spaces, like \"0\"", shown,
                                 SYSCTL_VALUE_MAX);
            return false;
        }
        *ret = json_string(text);
        return true;
    }
    case VT_ENUM:
        for (size_t i = 0; k->choices[i]; i++)
            if (streq(k->choices[i], text)) {
                *ret = json_string(text);
                return true;
            }
        {
            const char *hint = closest(text, k->choices, n_choices(k->choices));
            _cleanup_free_ char *list = join(k->choices, n_choices(k->choices));
            if (hint)
                *ret_why = xasprintf("'%s' is not one of %s; did you mean '%s'?", shown, list,
                                     hint);
            else
                *ret_why = xasprintf("'%s' is not one of %s", shown, list);
        }
        return false;
    case VT_CHECK:
        if (playbook_check_known(text)) {
            *ret = json_string(text);
            return true;
        }
        {
            const char *hint = closest(text, playbook_check_names, PLAYBOOK_N_CHECKS);
            _cleanup_free_ char *list = join(playbook_check_names, PLAYBOOK_N_CHECKS);
            if (hint)
                *ret_why = xasprintf("unknown check '%s'; did you mean '%s'?", shown, hint);
            else
                *ret_why = xasprintf("unknown check '%s'; the checks are %s", shown, list);
        }
        return false;
    case VT_REASON:
        if (playbook_reason_check(text)) {
            *ret = json_string(text);
            return true;
        }
        {
            const char *reasons[64];
            size_t n = 0;
            for (const char *r; n < YG_ARRAY_SIZE(reasons) && (r = playbook_reason_at(n)); n++)
                reasons[n] = r;
            _cleanup_free_ char *upper = xstrdup(text);
            for (char *c = upper; *c; c++)
                if (*c >= 'a' && *c <= 'z')
                    *c = (char) (*c - 'a' + 'A');
                else if (*c == '-')
                    *c = '_';
            const char *hint = NULL;
            for (size_t i = 0; i < n && !hint; i++)
                if (streq(reasons[i], upper))
                    hint = reasons[i];
            if (!hint) {
                size_t best = SIZE_MAX;
                for (size_t i = 0; i < n; i++) {
                    size_t d = edit_distance(upper, reasons[i]);
                    if (d <= 3 && d < best)
                        best = d, hint = reasons[i];
                }
            }
            if (hint)
                *ret_why = xasprintf("unknown reason code '%s'; did you mean '%s'?", shown, hint);
            else
                *ret_why = xasprintf("unknown reason code '%s' (doc/AGENT.md lists them, "
                                     "like NO_IPV6_DEFAULT_ROUTE)", shown);
        }
        return false;
    }
    abort();
}

/* ------------------------------------------------------------------ */
/* Templates.                                                           */

struct tmpl {
    size_t start, end;          /* "{{ ... }}" */
    size_t name, name_len;      /* the variable inside */
};

/* The next template in S from FROM: 1 with *t, 0 when there is none, -1
 * with *ret_why when it is malformed. */
static int template_next(const char *s, size_t from, struct tmpl *t, char **ret_why)
{
    const char *open = strstr(s + from, "{{");
    if (!open)
        return 0;
    size_t start = (size_t) (open - s);
    const char *close = strstr(open + 2, "}}");
    if (!close) {
        _cleanup_free_ char *shown = yamldoc_show(open, strlen(open));
        *ret_why = xasprintf("unclosed template '%s': a template is {{NAME}}, like "
                             "{{plan.ipv6_cidr}}", shown);
        return -1;
    }
    size_t a = start + 2, b = (size_t) (close - s);
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    size_t end = (size_t) (close - s) + 2;
    _cleanup_free_ char *shown = yamldoc_show(s + start, end - start);
    if (a == b) {
        *ret_why = xasprintf("empty template '%s': name a variable, like {{iface}}", shown);
        return -1;
    }
    for (size_t i = a; i < b; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            *ret_why = xasprintf("'%s' is not a template of one variable: templates have no "
                                 "expressions, filters or conditionals, only names like "
                                 "{{plan.ipv6_cidr}}", shown);
            return -1;
        }
    }
    t->start = start;
    t->end = end;
    t->name = a;
    t->name_len = b - a;
    return 1;
}

static bool has_template(const char *s)
{
    return strstr(s, "{{") != NULL;
}

static int builtin_var(const char *name)
{
    for (size_t i = 0; i < YG_ARRAY_SIZE(builtin_vars); i++)
        if (streq(builtin_vars[i].name, name))
            return (int) i;
    return -1;
}

static ssize_t param_index(const struct playbook *pb, const char *name)
{
    for (size_t i = 0; i < pb->n_params; i++)
        if (pb->params[i].name && streq(pb->params[i].name, name))
            return (ssize_t) i;
    return -1;
}

/* Check every template in TEXT: syntax and variable names.  False with
 * *ret_why on the first problem. */
static bool templates_check(const struct playbook *pb, const char *text, char **ret_why)
{
    struct tmpl t;
    size_t from = 0;
    int r;
    while ((r = template_next(text, from, &t, ret_why)) > 0) {
        _cleanup_free_ char *name = xstrndup(text + t.name, t.name_len);
        from = t.end;
        if (builtin_var(name) >= 0)
            continue;
        if (!strncmp(name, "params.", 7)) {
            if (param_index(pb, name + 7) >= 0)
                continue;
            const char **cands = xcalloc(pb->n_params + 1, sizeof *cands);
            for (size_t i = 0; i < pb->n_params; i++)
                cands[i] = pb->params[i].name;
            const char *hint = closest(name + 7, cands, pb->n_params);
            if (hint)
                *ret_why = xasprintf("template variable '%s' names no declared parameter; did "
                                     "you mean 'params.%s'?", name, hint);
            else
                *ret_why = xasprintf("template variable '%s' names no declared parameter; "
                                     "declare '%s' under params", name, name + 7);
            free(cands);
            return false;
        }
        const char *cands[YG_ARRAY_SIZE(builtin_vars)];
        for (size_t i = 0; i < YG_ARRAY_SIZE(builtin_vars); i++)
            cands[i] = builtin_vars[i].name;
        const char *hint = closest(name, cands, YG_ARRAY_SIZE(cands));
        if (!hint && param_index(pb, name) >= 0) {
            *ret_why = xasprintf("unknown template variable '%s'; did you mean 'params.%s'?",
                                 name, name);
            return false;
        }
        if (hint) {
            *ret_why = xasprintf("unknown template variable '%s'; did you mean '%s'?", name,
                                 hint);
        } else {
            _cleanup_free_ char *list = join(cands, YG_ARRAY_SIZE(cands));
            *ret_why = xasprintf("unknown template variable '%s'; the variables are %s and "
                                 "params.NAME", name, list);
        }
        return false;
    }
    return r == 0;
}

/* An unquoted {{x}} is YAML for a mapping whose key is the mapping {x: null}. */
static char *unquoted_template(const struct yamldoc_node *n)
{
    if (n->kind != YAMLDOC_MAPPING || n->n_children != 2 || !yamldoc_is_null(n->children[1]))
        return NULL;
    const struct yamldoc_node *k = n->children[0];
    if (k->kind != YAMLDOC_MAPPING || k->n_children != 2 || !yamldoc_is_null(k->children[1]) ||
        k->children[0]->kind != YAMLDOC_SCALAR)
        return NULL;
    return yamldoc_show_node(k->children[0]);
}

/* ------------------------------------------------------------------ */
/* Loading.                                                             */

static const struct yamldoc_key top_keys[] = {
    { "apiVersion", true }, { "kind", true }, { "metadata", true }, { "params", false },
    { "steps", true },
};
enum { TOP_API_VERSION, TOP_KIND, TOP_METADATA, TOP_PARAMS, TOP_STEPS };

static const struct yamldoc_key metadata_keys[] = {
    { "name", true }, { "description", false },
};
enum { META_NAME, META_DESCRIPTION };

static const struct yamldoc_key param_keys[] = {
    { "type", true }, { "default", false }, { "description", false },
};
enum { PARAM_TYPE, PARAM_DEFAULT, PARAM_DESCRIPTION };

static const struct yamldoc_key step_keys[] = {
    { "name", true }, { "action", true }, { "args", true }, { "when", false },
    { "verify", false },
};
enum { STEP_NAME, STEP_ACTION, STEP_ARGS, STEP_WHEN, STEP_VERIFY };

static const struct yamldoc_key when_keys[] = {
    { "check", false }, { "status", false }, { "reason", false }, { "param", false },
    { "equals", false },
};
enum { WHEN_CHECK, WHEN_STATUS, WHEN_REASON, WHEN_PARAM, WHEN_EQUALS };

/* Free text (a description, a step name): 1 to MAX characters, one line. */
static bool get_text(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                     size_t max, size_t max_bytes, const char *what, char **ret)
{
    _cleanup_free_ char *s = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return false;
    size_t chars = yamldoc_utf8_chars(s, strlen(s));
    if (chars > max) {
        yamldoc_problem(d, n, path, "%s is %zu characters long; at most %zu are allowed", what,
                        chars, max);
        return false;
    }
    if (strlen(s) > max_bytes) {
        yamldoc_problem(d, n, path, "%s is %zu bytes long in UTF-8; at most %zu are allowed "
                        "(about %zu Chinese characters)", what, strlen(s), max_bytes,
                        max_bytes / 3);
        return false;
    }
    if (has_control(s)) {
        yamldoc_problem(d, n, path, "%s must be one line without control characters", what);
        return false;
    }
    *ret = steal_pointer(&s);
    return true;
}

static bool param_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63 || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

static bool get_param_type(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                           size_t *ret)
{
    _cleanup_free_ char *s = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return false;
    const char *names[YG_ARRAY_SIZE(param_types)];
    for (size_t i = 0; i < YG_ARRAY_SIZE(param_types); i++) {
        names[i] = param_types[i].name;
        if (streq(s, names[i])) {
            *ret = i;
            return true;
        }
    }
    _cleanup_free_ char *shown = yamldoc_show_node(n);
    _cleanup_free_ char *list = join(names, YG_ARRAY_SIZE(names));
    const char *hint = closest(s, names, YG_ARRAY_SIZE(names));
    if (hint)
        yamldoc_problem(d, n, path, "unknown parameter type '%s'; did you mean '%s'? (the "
                        "types are %s)", shown, hint, list);
    else
        yamldoc_problem(d, n, path, "unknown parameter type '%s'; the types are %s", shown,
                        list);
    return false;
}

/* A literal scalar of kind K (a default, an `equals`, a `when`/`verify`
 * field): true with *ret_text and *ret_value.  PLAIN_ONLY: integers and
 * booleans must be written without quotes (fields), as YAML types them;
 * parameter values are text either way. */
static bool get_literal(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                        const struct value_kind *k, bool plain_only, char **ret_text,
                        json_t **ret_value)
{
    _cleanup_free_ char *tq = unquoted_template(n);
    if (tq) {
        yamldoc_problem(d, n, path, "templates are resolved only in args; write a value here");
        return false;
    }
    if (n->kind != YAMLDOC_SCALAR || n->scalar == YAMLDOC_NULL) {
        yamldoc_type_problem(d, n, path, type_expected(k));
        return false;
    }
    _cleanup_free_ char *s = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return false;
    _cleanup_free_ char *shown = yamldoc_show_node(n);
    if (has_template(s)) {
        yamldoc_problem(d, n, path, "templates are resolved only in args; write a value here, "
                        "not '%s'", shown);
        return false;
    }
    if (plain_only && n->scalar == YAMLDOC_STRING && (k->type == VT_INT || k->type == VT_BOOL)) {
        json_t *v = NULL;
        _cleanup_free_ char *why = NULL;
        if (value_check(k, s, &v, &why)) {
            json_decref(v);
            yamldoc_problem(d, n, path, "%s expected, got the string '%s'; write it without "
                            "quotes", type_expected(k), shown);
        } else {
            yamldoc_problem(d, n, path, "%s expected, got '%s'", type_expected(k), shown);
        }
        return false;
    }
    _cleanup_free_ char *why = NULL;
    json_t *v = NULL;
    if (!value_check(k, s, &v, &why)) {
        yamldoc_problem(d, n, path, "%s", why);
        return false;
    }
    *ret_text = steal_pointer(&s);
    *ret_value = v;
    return true;
}

static void value_clear(struct pb_value *v)
{
    free(v->text);
    json_decref(v->value);
    json_decref(v->written);
    memset(v, 0, sizeof *v);
}

/* Whether a templated sysctl key can still become an allowed one: its
 * fixed start (before the first template) must lie on the way to
 * net/ipv{4,6}/conf/INTERFACE/NAME.  "kernel/{{x}}" never can;
 * "net/ipv6/conf/{{iface}}/disable_ipv6" may (checked again at render). */
static bool sysctl_head_allowed(const char *key)
{
    size_t head = (size_t) (strstr(key, "{{") - key);
    static const char *const trees[] = { "net/ipv6/conf/", "net/ipv4/conf/" };
    for (size_t t = 0; t < YG_ARRAY_SIZE(trees); t++) {
        size_t tl = strlen(trees[t]);
        if (head <= tl) {
            if (!strncmp(key, trees[t], head))
                return true;
            continue;
        }
        if (strncmp(key, trees[t], tl))
            continue;
        _cleanup_free_ char *rest = xstrndup(key + tl, head - tl);
        char *slash = strchr(rest, '/');
        if (!slash)             /* part of the interface name so far */
            return strcspn(rest, ":/ \t") == strlen(rest);
        if (strchr(slash + 1, '/'))
            return false;
        _cleanup_free_ char *probe = xasprintf("%.*sx", (int) (tl + (size_t) (slash - rest) + 1 +
                                                                strlen(slash + 1)), key);
        return playbook_sysctl_key_allowed(probe);
    }
    return false;
}

/* One argument of a step: literal (checked now) or templated (names
 * checked now, the rest at render). */
static void load_arg(struct yamldoc *d, const struct playbook *pb, const struct yamldoc_node *n,
                     const char *path, const struct field_spec *spec, struct pb_value *out)
{
    _cleanup_free_ char *tq = unquoted_template(n);
    if (tq) {
        yamldoc_problem(d, n, path, "an unquoted template is a mapping to YAML; quote it: "
                        "\"{{%s}}\"", tq);
        return;
    }
    if (n->kind != YAMLDOC_SCALAR || n->scalar == YAMLDOC_NULL) {
        yamldoc_type_problem(d, n, path, type_expected(&spec->kind));
        return;
    }
    _cleanup_free_ char *s = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return;
    if (has_template(s)) {
        _cleanup_free_ char *why = NULL;
        if (!templates_check(pb, s, &why)) {
            yamldoc_problem(d, n, path, "%s", why);
            return;
        }
        /* A key's fixed start already tells whether it can be allowed:
         * "kernel/{{x}}" never is, "net/ipv6/conf/{{iface}}/x" may be. */
        if (spec->kind.type == VT_SYSCTL_KEY && !sysctl_head_allowed(s)) {
            _cleanup_free_ char *shown = yamldoc_show_node(n);
            yamldoc_problem(d, n, path, "'%s' is not a key a playbook may write: only "
                            "net/ipv6/conf/INTERFACE/NAME and net/ipv4/conf/INTERFACE/NAME "
                            "(INTERFACE an interface name, 'all' or 'default')", shown);
            return;
        }
        out->present = out->templated = true;
        out->written = json_string(s);
        out->text = steal_pointer(&s);
        out->line = n->line;
        out->column = n->column;
        return;
    }
    _cleanup_free_ char *text = NULL;
    json_t *v = NULL;
    if (!get_literal(d, n, path, &spec->kind, true, &text, &v))
        return;
    out->present = true;
    out->value = v;
    out->written = spec->kind.type == VT_INT || spec->kind.type == VT_BOOL ? json_incref(v)
                                                                         : json_string(text);
    out->text = steal_pointer(&text);
    out->line = n->line;
    out->column = n->column;
}

/* The rules between fields of one step, on typed values (NULL: absent or
 * not known yet).  Shared by the loader (literals) and the renderer. */
struct reporter {
    struct yamldoc *doc;        /* loading */
    struct yg_error *err;       /* rendering */
};

static void report(struct reporter *r, int line, int column, const char *path,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void report(struct reporter *r, int line, int column, const char *path,
                   const char *fmt, ...)
{
    va_list ap;
    char *msg;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (r->doc)
        yamldoc_problem_at(r->doc, line, column, path, "%s", msg);
    else if (r->err->n_details < PLAYBOOK_MAX_ERRORS)
        yg_error_add_detail(r->err, line, column, path, "%s", msg);
    free(msg);
}

static int field_index(const struct field_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (streq(t->fields[i].name, name))
            return (int) i;
    return -1;
}

static const char *jstr(json_t *const *vals, const struct field_table *t, const char *name)
{
    int i = field_index(t, name);
    return i >= 0 && vals[i] ? json_string_value(vals[i]) : NULL;
}

/* check / expect / reason agree (check.run, verify, when). */
static void cross_check_check(struct reporter *r, const struct field_table *t, json_t *const *vals,
                              const int *lines, const int *columns, const char *path)
{
    const char *check = jstr(vals, t, "check"), *expect = jstr(vals, t, "expect");
    const char *reason = jstr(vals, t, "reason");
    int ic = field_index(t, "check"), ir = field_index(t, "reason");
    if (check && expect && streq(expect, "dual-stack-ready")) {
        _cleanup_free_ char *p = yamldoc_path_key(path, "check", 5);
        report(r, lines[ic], columns[ic], p, "expect 'dual-stack-ready' is about every check "
               "of the segment; leave check out, or expect 'pass' of check '%s'", check);
    }
    if (reason) {
        const char *owner = playbook_reason_check(reason);
        _cleanup_free_ char *p = yamldoc_path_key(path, "reason", 6);
        if (!check && owner && *owner)
            report(r, lines[ir], columns[ir], p, "a reason code needs its check: add "
                   "check: %s", owner);
        else if (!check)
            report(r, lines[ir], columns[ir], p, "a reason code needs its check");
        else if (owner && *owner && !streq(owner, check))
            report(r, lines[ir], columns[ir], p, "reason '%s' belongs to check '%s', not '%s'",
                   reason, owner, check);
    }
}

/* dst and via of a route are of one family. */
static void cross_check_route(struct reporter *r, const struct field_table *t, json_t *const *vals,
                              const int *lines, const int *columns, const char *path)
{
    const char *dst = jstr(vals, t, "dst"), *via = jstr(vals, t, "via");
    struct ip_prefix p;
    struct ip_addr a;
    if (!dst || !via || ip_prefix_parse(dst, &p, NULL) < 0 || ip_addr_parse(via, &a, NULL) < 0)
        return;
    if (p.addr.family != a.family) {
        int iv = field_index(t, "via");
        _cleanup_free_ char *pv = yamldoc_path_key(path, "via", 3);
        report(r, lines[iv], columns[iv], pv, "via %s is an %s address but dst %s is an %s "
               "prefix; a route's next hop is of its destination's family", via,
               ip_family_name(a.family), dst, ip_family_name(p.addr.family));
    }
}

/* What the agent refuses too (agents/steps.c), said here with a position. */
static void cross_check_address(struct reporter *r, enum playbook_action action,
                                const struct field_table *t, json_t *const *vals,
                                const int *lines, const int *columns, const char *path)
{
    const char *text = jstr(vals, t, "address");
    struct ip_prefix p;
    int ia = field_index(t, "address");
    if (!text || (strchr(text, '/') ? ip_addr_prefix_parse(text, &p, NULL)
                                    : ip_addr_parse(text, &p.addr, NULL)) < 0)
        return;
    _cleanup_free_ char *pa = yamldoc_path_key(path, "address", 7);
    if (ip_addr_is_unspecified(&p.addr) || ip_addr_is_loopback(&p.addr)) {
        report(r, lines[ia], columns[ia], pa, "%s is %s address; %s", text,
               ip_addr_is_loopback(&p.addr) ? "a loopback" : "the unspecified",
               action == PLAYBOOK_WAIT_FOR ? "there is nothing to wait for"
                                           : "use the host's address on the segment");
        return;
    }
    int in = field_index(t, "nodad");
    if (in >= 0 && vals[in] && json_is_true(vals[in]) && p.addr.family == AF_INET) {
        _cleanup_free_ char *pn = yamldoc_path_key(path, "nodad", 5);
        report(r, lines[in], columns[in], pn, "duplicate address detection is IPv6 only; leave "
               "nodad out for the IPv4 address %s", text);
    }
}

static void cross_check_args(struct reporter *r, enum playbook_action action, json_t *const *vals,
                             const int *lines, const int *columns, const char *path)
{
    const struct field_table *t = &action_args[action];
    if (action == PLAYBOOK_ROUTE_ADD || action == PLAYBOOK_ROUTE_REMOVE) {
        cross_check_route(r, t, vals, lines, columns, path);
        int it = field_index(t, "table");
        if (it >= 0 && vals[it] && json_integer_value(vals[it]) == 255) {
            _cleanup_free_ char *p = yamldoc_path_key(path, "table", 5);
            report(r, lines[it], columns[it], p, "the local table (255) is the kernel's; use "
                   "main (254) or a table of your own");
        }
    }
    if (action == PLAYBOOK_ADDRESS_ADD || action == PLAYBOOK_ADDRESS_REMOVE ||
        action == PLAYBOOK_WAIT_FOR)
        cross_check_address(r, action, t, vals, lines, columns, path);
    if (action == PLAYBOOK_CHECK_RUN)
        cross_check_check(r, t, vals, lines, columns, path);
}

/* A literal-only mapping of FIELDS (`verify`, the host form of `when`):
 * the JSON the agent gets (defaults filled in) and the JSON as written. */
static bool load_fields(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                        const struct field_table *t, const struct yamldoc_node *const *given,
                        json_t **ret_json, json_t **ret_written)
{
    json_t *vals[MAX_FIELDS] = { NULL };
    int lines[MAX_FIELDS] = { 0 }, columns[MAX_FIELDS] = { 0 };
    bool ok = true;
    for (size_t i = 0; i < t->n; i++) {
        const struct field_spec *f = &t->fields[i];
        _cleanup_free_ char *p = yamldoc_path_key(path, f->name, strlen(f->name));
        _cleanup_free_ char *text = NULL;
        if (!given[i]) {
            if (f->required) {
                yamldoc_problem(d, n, p, "required key '%s' is missing", f->name);
                ok = false;
            }
            continue;
        }
        if (!get_literal(d, given[i], p, &f->kind, true, &text, &vals[i]))
            ok = false;
        lines[i] = given[i]->line;
        columns[i] = given[i]->column;
    }
    struct reporter r = { .doc = d };
    size_t before = yamldoc_n_problems(d);
    if (ok)
        cross_check_check(&r, t, vals, lines, columns, path);
    ok = ok && yamldoc_n_problems(d) == before;
    json_t *j = json_object(), *w = json_object();
    for (size_t i = 0; i < t->n; i++) {
        if (vals[i]) {
            json_object_set(w, t->fields[i].name, vals[i]);
            json_object_set_new(j, t->fields[i].name, vals[i]);
        } else if (t->fields[i].def) {
            json_t *v = NULL;
            char *why = NULL;
            if (value_check(&t->fields[i].kind, t->fields[i].def, &v, &why))
                json_object_set_new(j, t->fields[i].name, v);
            free(why);
        }
    }
    if (!ok) {
        json_decref(j);
        json_decref(w);
        return false;
    }
    *ret_json = j;
    *ret_written = w;
    return true;
}

static void load_when(struct yamldoc *d, const struct playbook *pb, const struct yamldoc_node *n,
                      const char *path, struct pb_step *st)
{
    const struct yamldoc_node *v[YG_ARRAY_SIZE(when_keys)];
    if (!yamldoc_check_mapping(d, n, path, when_keys, YG_ARRAY_SIZE(when_keys), v))
        return;
    bool host_form = v[WHEN_CHECK] || v[WHEN_STATUS] || v[WHEN_REASON];
    bool param_form = v[WHEN_PARAM] || v[WHEN_EQUALS];
    if (host_form && param_form) {
        yamldoc_problem(d, n, path, "when is either a host condition (check, status, reason: "
                        "evaluated by the agent) or a parameter condition (param, equals: "
                        "evaluated by the controller), not both");
        return;
    }
    if (!host_form && !param_form) {
        if (yamldoc_n_pairs(n) == 0)
            yamldoc_problem(d, n, path, "when needs a condition: {check: NAME} or "
                            "{param: NAME, equals: VALUE}");
        return;                 /* unknown keys were reported */
    }
    if (host_form) {
        const struct yamldoc_node *given[] = { v[WHEN_CHECK], v[WHEN_STATUS], v[WHEN_REASON] };
        load_fields(d, n, path, &when_check_table, given, &st->when_check, &st->when_written);
        return;
    }
    _cleanup_free_ char *p_param = yamldoc_path_key(path, "param", 5);
    _cleanup_free_ char *p_equals = yamldoc_path_key(path, "equals", 6);
    if (!v[WHEN_PARAM])
        yamldoc_problem(d, n, p_param, "required key 'param' is missing (the parameter that "
                        "'equals' is compared with)");
    if (!v[WHEN_EQUALS])
        yamldoc_problem(d, n, p_equals, "required key 'equals' is missing (the value that "
                        "makes the step run)");
    if (!v[WHEN_PARAM] || !v[WHEN_EQUALS])
        return;
    _cleanup_free_ char *name = NULL;
    if (!yamldoc_get_string(d, v[WHEN_PARAM], p_param, &name))
        return;
    ssize_t pi = param_index(pb, name);
    if (pi < 0) {
        _cleanup_free_ char *shown = yamldoc_show_node(v[WHEN_PARAM]);
        const char **cands = xcalloc(pb->n_params + 1, sizeof *cands);
        for (size_t i = 0; i < pb->n_params; i++)
            cands[i] = pb->params[i].name;
        const char *hint = closest(name, cands, pb->n_params);
        if (hint)
            yamldoc_problem(d, v[WHEN_PARAM], p_param, "'%s' is no declared parameter; did you "
                            "mean '%s'?", shown, hint);
        else
            yamldoc_problem(d, v[WHEN_PARAM], p_param, "'%s' is no declared parameter; declare "
                            "it under params", shown);
        free(cands);
        return;
    }
    const struct value_kind *k = &param_types[pb->params[pi].type].kind;
    _cleanup_free_ char *text = NULL;
    json_t *val = NULL;
    if (!get_literal(d, v[WHEN_EQUALS], p_equals, k, false, &text, &val))
        return;
    st->when_param = (size_t) pi;
    st->when_equals = steal_pointer(&text);
    st->when_equals_value = val;
    st->when_written = json_pack("{s:s, s:s}", "param", name, "equals", st->when_equals);
}

static void load_args(struct yamldoc *d, const struct playbook *pb, const struct yamldoc_node *n,
                      const char *path, struct pb_step *st)
{
    const struct field_table *t = &action_args[st->action];
    struct yamldoc_key keys[MAX_FIELDS];
    const struct yamldoc_node *v[MAX_FIELDS];
    for (size_t i = 0; i < t->n; i++)
        keys[i] = (struct yamldoc_key) { t->fields[i].name, t->fields[i].required };
    if (!yamldoc_check_mapping(d, n, path, keys, t->n, v))
        return;
    json_t *vals[MAX_FIELDS] = { NULL };
    int lines[MAX_FIELDS] = { 0 }, columns[MAX_FIELDS] = { 0 };
    for (size_t i = 0; i < t->n; i++) {
        if (!v[i])
            continue;
        _cleanup_free_ char *p = yamldoc_path_key(path, t->fields[i].name,
                                                  strlen(t->fields[i].name));
        load_arg(d, pb, v[i], p, &t->fields[i], &st->args[i]);
        vals[i] = st->args[i].value;
        lines[i] = v[i]->line;
        columns[i] = v[i]->column;
    }
    struct reporter r = { .doc = d };
    cross_check_args(&r, st->action, vals, lines, columns, path);
}

static void load_step(struct yamldoc *d, const struct playbook *pb, const struct yamldoc_node *n,
                      const char *path, struct pb_step *st)
{
    const struct yamldoc_node *v[YG_ARRAY_SIZE(step_keys)];
    st->line = n->line;
    st->column = n->column;
    if (!yamldoc_check_mapping(d, n, path, step_keys, YG_ARRAY_SIZE(step_keys), v))
        return;
    _cleanup_free_ char *p_name = yamldoc_path_key(path, "name", 4);
    _cleanup_free_ char *p_action = yamldoc_path_key(path, "action", 6);
    _cleanup_free_ char *p_args = yamldoc_path_key(path, "args", 4);
    _cleanup_free_ char *p_when = yamldoc_path_key(path, "when", 4);
    _cleanup_free_ char *p_verify = yamldoc_path_key(path, "verify", 6);

    if (v[STEP_NAME] &&
        get_text(d, v[STEP_NAME], p_name, STEP_NAME_MAX_CHARS, STEP_NAME_MAX_BYTES, "a step name",
                 &st->name) &&
        has_template(st->name)) {
        yamldoc_problem(d, v[STEP_NAME], p_name, "templates are resolved only in args; name "
                        "the step in plain words");
    }
    bool action_ok = false;
    _cleanup_free_ char *action = NULL;
    if (v[STEP_ACTION] && yamldoc_get_string(d, v[STEP_ACTION], p_action, &action)) {
        int a = playbook_action_from_string(action);
        if (a >= 0) {
            st->action = (enum playbook_action) a;
            action_ok = true;
        } else {
            const char *names[_PLAYBOOK_ACTION_MAX];
            for (int i = 0; i < _PLAYBOOK_ACTION_MAX; i++)
                names[i] = playbook_action_to_string((enum playbook_action) i);
            _cleanup_free_ char *shown = yamldoc_show_node(v[STEP_ACTION]);
            _cleanup_free_ char *list = join(names, _PLAYBOOK_ACTION_MAX);
            _cleanup_free_ char *alt = xstrdup(action);
            for (char *c = alt; *c; c++)
                if (*c == '_' || *c == '-')
                    *c = '.';       /* sysctl_set, route-add */
            const char *hint = closest(alt, names, _PLAYBOOK_ACTION_MAX);
            if (hint)
                yamldoc_problem(d, v[STEP_ACTION], p_action, "unknown action '%s'; did you mean "
                                "'%s'?", shown, hint);
            else
                yamldoc_problem(d, v[STEP_ACTION], p_action, "unknown action '%s'; the actions "
                                "are %s", shown, list);
        }
    }
    if (v[STEP_ARGS] && action_ok)
        load_args(d, pb, v[STEP_ARGS], p_args, st);
    if (v[STEP_WHEN])
        load_when(d, pb, v[STEP_WHEN], p_when, st);
    if (v[STEP_VERIFY] && action_ok &&
        (st->action == PLAYBOOK_CHECK_RUN || st->action == PLAYBOOK_WAIT_FOR)) {
        yamldoc_problem(d, v[STEP_VERIFY], p_verify, "%s changes nothing, so there is nothing "
                        "to verify; follow the step with a check.run step",
                        playbook_action_to_string(st->action));
    } else if (v[STEP_VERIFY]) {
        const struct yamldoc_node *vv[YG_ARRAY_SIZE(verify_fields)];
        struct yamldoc_key keys[YG_ARRAY_SIZE(verify_fields)];
        for (size_t i = 0; i < YG_ARRAY_SIZE(verify_fields); i++)
            keys[i] = (struct yamldoc_key) { verify_fields[i].name, false };
        if (yamldoc_check_mapping(d, v[STEP_VERIFY], p_verify, keys, YG_ARRAY_SIZE(keys), vv))
            load_fields(d, v[STEP_VERIFY], p_verify, &verify_table, vv, &st->verify,
                        &st->verify_written);
    }
}

static void load_params(struct yamldoc *d, const struct yamldoc_node *n, struct playbook *pb)
{
    if (yamldoc_is_null(n))
        return;
    if (n->kind != YAMLDOC_MAPPING) {
        yamldoc_type_problem(d, n, "params", "mapping of parameter names to types");
        return;
    }
    size_t np = yamldoc_n_pairs(n);
    if (np > PLAYBOOK_MAX_PARAMS) {
        yamldoc_problem(d, n, "params", "%zu parameters is too many; at most %d", np,
                        PLAYBOOK_MAX_PARAMS);
        return;
    }
    pb->params = xcalloc(np ? np : 1, sizeof *pb->params);
    for (size_t i = 0; i < np; i++) {
        const struct yamldoc_node *k = n->children[2 * i], *v = n->children[2 * i + 1];
        if (k->kind != YAMLDOC_SCALAR) {
            _cleanup_free_ char *got = yamldoc_describe(k);
            yamldoc_problem(d, k, "params", "a parameter name must be a string, got %s", got);
            continue;
        }
        _cleanup_free_ char *path = yamldoc_path_key("params", k->text, k->len);
        _cleanup_free_ char *shown = yamldoc_show_node(k);
        const struct yamldoc_node *first = NULL;
        for (size_t j = 0; j < i && !first; j++) {
            const struct yamldoc_node *k2 = n->children[2 * j];
            if (k2->kind == YAMLDOC_SCALAR && k2->len == k->len && !memcmp(k2->text, k->text, k->len))
                first = k2;
        }
        if (first) {
            yamldoc_problem(d, k, path, "duplicate key '%s' (first given at line %d)", shown,
                            first->line);
            continue;
        }
        if (memchr(k->text, '\0', k->len) || !param_name_valid(k->text)) {
            yamldoc_problem(d, k, path, "'%s' is not a valid parameter name: use a lower-case "
                            "letter, then up to 62 lower-case letters, digits, '_' or '-'", shown);
            continue;
        }
        struct pb_param *p = &pb->params[pb->n_params];
        size_t type;
        if (v->kind == YAMLDOC_SCALAR && !yamldoc_is_null(v)) {
            if (!get_param_type(d, v, path, &type))
                continue;
        } else {
            const struct yamldoc_node *pv[YG_ARRAY_SIZE(param_keys)];
            if (yamldoc_is_null(v)) {
                yamldoc_problem(d, v, path, "a parameter needs its type: '%s: int' or '%s: "
                                "{type: int, default: \"1\"}'", shown, shown);
                continue;
            }
            if (!yamldoc_check_mapping(d, v, path, param_keys, YG_ARRAY_SIZE(param_keys), pv) ||
                !pv[PARAM_TYPE])
                continue;
            _cleanup_free_ char *p_type = yamldoc_path_key(path, "type", 4);
            _cleanup_free_ char *p_def = yamldoc_path_key(path, "default", 7);
            _cleanup_free_ char *p_desc = yamldoc_path_key(path, "description", 11);
            if (!get_param_type(d, pv[PARAM_TYPE], p_type, &type))
                continue;
            /* A bad default or description is reported; the parameter stays
             * declared, so templates naming it are not reported as well. */
            if (pv[PARAM_DEFAULT])
                get_literal(d, pv[PARAM_DEFAULT], p_def, &param_types[type].kind, false,
                            &p->def, &p->def_value);
            if (pv[PARAM_DESCRIPTION])
                get_text(d, pv[PARAM_DESCRIPTION], p_desc, DESCRIPTION_MAX_CHARS,
                         DESCRIPTION_MAX_CHARS * 4, "a description", &p->description);
        }
        p->name = xstrndup(k->text, k->len);
        p->type = type;
        pb->n_params++;
    }
}

static void load_root(struct yamldoc *d, const struct yamldoc_node *root, struct playbook *pb)
{
    if (!root || yamldoc_is_null(root)) {
        yamldoc_problem_at(d, root ? root->line : 1, root ? root->column : 1, NULL,
                           "the document is empty; a playbook is a mapping with apiVersion, "
                           "kind, metadata and steps");
        return;
    }
    if (root->kind != YAMLDOC_MAPPING) {
        _cleanup_free_ char *got = yamldoc_describe(root);
        yamldoc_problem(d, root, NULL, "the top level must be a mapping with apiVersion, kind, "
                        "metadata and steps; got %s", got);
        return;
    }
    const struct yamldoc_node *v[YG_ARRAY_SIZE(top_keys)];
    yamldoc_check_mapping(d, root, NULL, top_keys, YG_ARRAY_SIZE(top_keys), v);
    if (v[TOP_API_VERSION])
        yamldoc_get_exact(d, v[TOP_API_VERSION], "apiVersion", API_VERSION);
    if (v[TOP_KIND])
        yamldoc_get_exact(d, v[TOP_KIND], "kind", KIND);
    if (v[TOP_METADATA]) {
        const struct yamldoc_node *m[YG_ARRAY_SIZE(metadata_keys)];
        if (yamldoc_check_mapping(d, v[TOP_METADATA], "metadata", metadata_keys,
                                  YG_ARRAY_SIZE(metadata_keys), m)) {
            if (m[META_NAME])
                yamldoc_get_name(d, m[META_NAME], "metadata.name", "playbook name", &pb->name);
            if (m[META_DESCRIPTION])
                get_text(d, m[META_DESCRIPTION], "metadata.description", DESCRIPTION_MAX_CHARS,
                         DESCRIPTION_MAX_CHARS * 4, "a description", &pb->description);
        }
    }
    /* Parameters first: templates and `when` refer to them. */
    if (v[TOP_PARAMS])
        load_params(d, v[TOP_PARAMS], pb);
    const struct yamldoc_node *n = v[TOP_STEPS];
    if (!n)
        return;
    if (yamldoc_is_null(n) || (n->kind == YAMLDOC_SEQUENCE && n->n_children == 0)) {
        yamldoc_problem(d, n, "steps", "at least one step is required");
        return;
    }
    if (n->kind != YAMLDOC_SEQUENCE) {
        yamldoc_type_problem(d, n, "steps", "sequence of steps");
        return;
    }
    if (n->n_children > PLAYBOOK_MAX_STEPS) {
        yamldoc_problem(d, n, "steps", "%zu steps is too many; at most %d fit in one playbook "
                        "(split it)", n->n_children, PLAYBOOK_MAX_STEPS);
        return;
    }
    pb->steps = xcalloc(n->n_children, sizeof *pb->steps);
    pb->n_steps = n->n_children;
    for (size_t i = 0; i < n->n_children; i++) {
        _cleanup_free_ char *p = yamldoc_path_index("steps", i);
        pb->steps[i].when_param = SIZE_MAX;
        load_step(d, pb, n->children[i], p, &pb->steps[i]);
    }
}

void playbook_free(struct playbook *pb)
{
    if (!pb)
        return;
    free(pb->name);
    free(pb->description);
    for (size_t i = 0; i < pb->n_params; i++) {
        free(pb->params[i].name);
        free(pb->params[i].def);
        json_decref(pb->params[i].def_value);
        free(pb->params[i].description);
    }
    free(pb->params);
    for (size_t i = 0; i < pb->n_steps; i++) {
        struct pb_step *st = &pb->steps[i];
        free(st->name);
        for (size_t j = 0; j < MAX_FIELDS; j++)
            value_clear(&st->args[j]);
        json_decref(st->when_check);
        free(st->when_equals);
        json_decref(st->when_equals_value);
        json_decref(st->verify);
        json_decref(st->when_written);
        json_decref(st->verify_written);
    }
    free(pb->steps);
    free(pb);
}

int playbook_parse(const char *text, size_t len, const char *filename,
                   struct playbook **ret, struct yg_error **ret_error)
{
    _cleanup_(yamldoc_freep) struct yamldoc *d = yamldoc_new(&playbook_doc_options, filename);
    _cleanup_(playbook_freep) struct playbook *pb = NULL;
    const struct yamldoc_node *root;

    int r = yamldoc_load(d, text, len, &root);
    if (r < 0) {
        *ret_error = yamldoc_error(d);
        return r == -ENOMEM ? -ENOMEM : r == -EFBIG ? -EFBIG : -EINVAL;
    }
    pb = xcalloc(1, sizeof *pb);
    load_root(d, root, pb);
    if (yamldoc_failed(d)) {
        *ret_error = yamldoc_error(d);
        return -EINVAL;
    }
    *ret = steal_pointer(&pb);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Accessors and the JSON form.                                         */

const char *playbook_name(const struct playbook *pb)
{
    return pb->name;
}

const char *playbook_description(const struct playbook *pb)
{
    return pb->description;
}

size_t playbook_n_steps(const struct playbook *pb)
{
    return pb->n_steps;
}

size_t playbook_n_params(const struct playbook *pb)
{
    return pb->n_params;
}

const char *playbook_param_name(const struct playbook *pb, size_t i)
{
    return i < pb->n_params ? pb->params[i].name : NULL;
}

const char *playbook_param_type(const struct playbook *pb, size_t i)
{
    return i < pb->n_params ? param_types[pb->params[i].type].name : NULL;
}

const char *playbook_param_default(const struct playbook *pb, size_t i)
{
    return i < pb->n_params ? pb->params[i].def : NULL;
}

json_t *playbook_to_json(const struct playbook *pb)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(pb->name));
    if (pb->description)
        json_object_set_new(j, "description", json_string(pb->description));
    json_t *params = json_array();
    for (size_t i = 0; i < pb->n_params; i++) {
        const struct pb_param *p = &pb->params[i];
        json_t *jp = json_pack("{s:s, s:s, s:o, s:b}", "name", p->name,
                               "type", param_types[p->type].name,
                               "default", p->def ? json_string(p->def) : json_null(),
                               "required", p->def == NULL);
        if (p->description)
            json_object_set_new(jp, "description", json_string(p->description));
        json_array_append_new(params, jp);
    }
    json_object_set_new(j, "params", params);
    json_t *steps = json_array();
    for (size_t i = 0; i < pb->n_steps; i++) {
        const struct pb_step *st = &pb->steps[i];
        const struct field_table *t = &action_args[st->action];
        json_t *args = json_object();
        for (size_t a = 0; a < t->n; a++)
            if (st->args[a].present)
                json_object_set(args, t->fields[a].name, st->args[a].written);
        json_t *js = json_pack("{s:s, s:s, s:o}", "name", st->name,
                               "action", playbook_action_to_string(st->action), "args", args);
        if (st->when_written)
            json_object_set(js, "when", st->when_written);
        if (st->verify_written)
            json_object_set(js, "verify", st->verify_written);
        json_array_append_new(steps, js);
    }
    json_object_set_new(j, "steps", steps);
    return j;
}

/* ------------------------------------------------------------------ */
/* Rendering.                                                           */

struct render {
    const struct playbook *pb;
    const struct playbook_vars *vars;
    const char **param_values;      /* per declared parameter: given or default */
    json_t **param_json;            /* typed, NULL when missing or invalid */
    struct reporter rep;
};

static const char *host_label(const struct render *c)
{
    return c->vars->host ? c->vars->host : "?";
}

/* The prefix length of PREFIX, as text; NULL when PREFIX is NULL or bad. */
static char *prefix_len_text(const char *prefix, int family)
{
    struct ip_prefix p;
    if (!prefix || ip_prefix_parse(prefix, &p, NULL) < 0 || p.addr.family != family)
        return NULL;
    return xasprintf("%u", p.len);
}

static char *cidr_text(const char *addr, const char *prefix, int family)
{
    struct ip_addr a;
    _cleanup_free_ char *len = prefix_len_text(prefix, family);
    if (!addr || !len || ip_addr_parse_family(addr, family, &a, NULL) < 0)
        return NULL;
    char buf[IP_ADDR_STRLEN];
    return xasprintf("%s/%s", ip_addr_format(&a, buf), len);
}

/* The value of variable NAME for this host: the text (to free), or NULL
 * with *ret_why saying what is missing. */
static char *var_value(const struct render *c, const char *name, char **ret_why)
{
    const struct playbook_vars *v = c->vars;
    const char *seg = v->segment ? v->segment : "?";
    if (!strncmp(name, "params.", 7)) {
        ssize_t i = param_index(c->pb, name + 7);
        if (i >= 0 && c->param_values[i])
            return xstrdup(c->param_values[i]);
        *ret_why = xasprintf("parameter '%s' has no value", name + 7);
        return NULL;
    }
    int b = builtin_var(name);
    char *s = NULL;
    /* What is missing, as "<before> segment 'NAME'<after>". */
    const char *before = "", *after = "";
    switch (b < 0 ? -1 : (int) builtin_vars[b].source) {
    case VS_INTERFACE:
        s = v->interface ? xstrdup(v->interface) : NULL;
        after = " gives no interface";
        break;
    case VS_HOST:
        s = v->host ? xstrdup(v->host) : NULL;
        before = "no host name was given for";
        break;
    case VS_SEGMENT:
        s = v->segment ? xstrdup(v->segment) : NULL;
        before = "no name was given for";
        break;
    case VS_V4_PREFIX:
    case VS_V4_PREFIX_LEN:
        s = builtin_vars[b].source == VS_V4_PREFIX_LEN ? prefix_len_text(v->ipv4_prefix, AF_INET)
          : v->ipv4_prefix ? xstrdup(v->ipv4_prefix) : NULL;
        after = " has no valid IPv4 prefix";
        break;
    case VS_V4_GATEWAY:
        s = v->ipv4_gateway ? xstrdup(v->ipv4_gateway) : NULL;
        after = " has no IPv4 gateway";
        break;
    case VS_V6_PREFIX:
    case VS_V6_PREFIX_LEN:
        s = builtin_vars[b].source == VS_V6_PREFIX_LEN ? prefix_len_text(v->ipv6_prefix, AF_INET6)
          : v->ipv6_prefix ? xstrdup(v->ipv6_prefix) : NULL;
        after = " has no IPv6 prefix yet (add one to the segment list)";
        break;
    case VS_V6_GATEWAY:
        s = v->ipv6_gateway ? xstrdup(v->ipv6_gateway) : NULL;
        after = " has no IPv6 gateway yet (add one to the segment list)";
        break;
    case VS_PLAN_V4:
    case VS_PLAN_V4_CIDR:
        s = builtin_vars[b].source == VS_PLAN_V4_CIDR
          ? cidr_text(v->plan_ipv4_address, v->ipv4_prefix, AF_INET)
          : v->plan_ipv4_address ? xstrdup(v->plan_ipv4_address) : NULL;
        before = v->plan_ipv4_address ? "the IPv4 prefix is not valid in"
                                      : "the host has no planned IPv4 address in";
        break;
    case VS_PLAN_V6:
    case VS_PLAN_V6_CIDR:
        s = builtin_vars[b].source == VS_PLAN_V6_CIDR
          ? cidr_text(v->plan_ipv6_address, v->ipv6_prefix, AF_INET6)
          : v->plan_ipv6_address ? xstrdup(v->plan_ipv6_address) : NULL;
        if (v->plan_ipv6_address) {
            before = "no valid IPv6 prefix in";
        } else {
            before = "the host has no planned IPv6 address in";
            after = " (plan one in the segment list)";
        }
        break;
    default:
        before = "no such variable in";     /* the loader refused it; stay safe */
        break;
    }
    if (!s)
        *ret_why = xasprintf("%s%ssegment '%s'%s", before, *before ? " " : "", seg, after);
    return s;
}

/* TEXT with every template replaced; NULL with *ret_why. */
static char *substitute(const struct render *c, const char *text, char **ret_why)
{
    struct strbuf sb;
    struct tmpl t;
    size_t from = 0;
    int r;
    strbuf_init(&sb);
    while ((r = template_next(text, from, &t, ret_why)) > 0) {
        _cleanup_free_ char *name = xstrndup(text + t.name, t.name_len);
        _cleanup_free_ char *why = NULL;
        _cleanup_free_ char *val = var_value(c, name, &why);
        if (!val) {
            *ret_why = xasprintf("{{%s}} has no value for host '%s': %s", name, host_label(c),
                                 why);
            strbuf_free(&sb);
            return NULL;
        }
        strbuf_add(&sb, text + from, t.start - from);
        strbuf_puts(&sb, val);
        from = t.end;
    }
    if (r < 0) {
        strbuf_free(&sb);
        return NULL;
    }
    strbuf_puts(&sb, text + from);
    return strbuf_steal(&sb);
}

/* Parameters: names known, required ones given, values of their type. */
static void render_params(struct render *c)
{
    const struct playbook *pb = c->pb;
    const struct playbook_vars *v = c->vars;
    const char **names = xcalloc(pb->n_params + 1, sizeof *names);
    for (size_t i = 0; i < pb->n_params; i++)
        names[i] = pb->params[i].name;
    size_t n_given = v->param_names && v->param_values ? v->n_params : 0;
    for (size_t g = 0; g < n_given; g++) {
        const char *name = v->param_names[g], *value = v->param_values[g];
        if (!name)
            continue;
        _cleanup_free_ char *shown = yamldoc_show(name, strlen(name));
        _cleanup_free_ char *path = xasprintf("params.%s", shown);
        ssize_t i = param_index(pb, name);
        if (i < 0) {
            const char *hint = closest(name, names, pb->n_params);
            _cleanup_free_ char *list = join(names, pb->n_params);
            if (hint)
                report(&c->rep, 0, 0, path, "unknown parameter '%s'; did you mean '%s'?", shown,
                       hint);
            else if (pb->n_params)
                report(&c->rep, 0, 0, path, "unknown parameter '%s'; playbook '%s' takes %s",
                       shown, pb->name, list);
            else
                report(&c->rep, 0, 0, path, "unknown parameter '%s'; playbook '%s' takes no "
                       "parameters", shown, pb->name);
            continue;
        }
        bool dup = false;
        for (size_t h = 0; h < g && !dup; h++)
            dup = v->param_names[h] && streq(v->param_names[h], name);
        if (dup) {
            report(&c->rep, 0, 0, path, "parameter '%s' is given twice", shown);
            continue;
        }
        const struct value_kind *k = &param_types[pb->params[i].type].kind;
        _cleanup_free_ char *why = NULL;
        json_t *jv = NULL;
        if (!value || !value_check(k, value, &jv, &why)) {
            report(&c->rep, 0, 0, path, "parameter '%s' is of type %s: %s", shown,
                   param_types[pb->params[i].type].name, why ? why : "a value is required");
            c->param_values[i] = NULL;
            json_decref(c->param_json[i]);
            c->param_json[i] = NULL;
            continue;
        }
        c->param_values[i] = value;
        json_decref(c->param_json[i]);
        c->param_json[i] = jv;
    }
    for (size_t i = 0; i < pb->n_params; i++) {
        bool given = false;
        for (size_t g = 0; g < n_given && !given; g++)
            given = v->param_names[g] && streq(v->param_names[g], pb->params[i].name);
        if (given)
            continue;
        if (pb->params[i].def) {
            c->param_values[i] = pb->params[i].def;
            c->param_json[i] = json_incref(pb->params[i].def_value);
        } else {
            _cleanup_free_ char *path = xasprintf("params.%s", pb->params[i].name);
            report(&c->rep, 0, 0, path, "required parameter '%s' (%s) was not given",
                   pb->params[i].name, param_types[pb->params[i].type].name);
        }
    }
    free(names);
}

/* One argument's concrete value; NULL when left out or failed (reported). */
static json_t *render_arg(struct render *c, const struct pb_step *st, size_t si,
                          const struct field_spec *f, const struct pb_value *a)
{
    _cleanup_free_ char *path = xasprintf("steps[%zu].args.%s", si, f->name);
    json_t *out = NULL;
    _cleanup_free_ char *why = NULL;
    if (a->present && !a->templated)
        return json_incref(a->value);
    if (a->present) {
        _cleanup_free_ char *text = substitute(c, a->text, &why);
        if (!text) {
            report(&c->rep, a->line, a->column, path, "%s", why);
            return NULL;
        }
        if (!value_check(&f->kind, text, &out, &why)) {
            _cleanup_free_ char *shown = yamldoc_show(a->text, strlen(a->text));
            report(&c->rep, a->line, a->column, path, "%s (from '%s' for host '%s')", why,
                   shown, host_label(c));
            return NULL;
        }
        return out;
    }
    if (f->def) {
        if (value_check(&f->kind, f->def, &out, &why))
            return out;
        abort();                /* the tables' defaults are valid */
    }
    if (f->from_segment) {
        if (!c->vars->interface) {
            report(&c->rep, st->line, st->column, path, "step '%s' needs an interface and "
                   "segment '%s' gives none for host '%s'", st->name,
                   c->vars->segment ? c->vars->segment : "?", host_label(c));
            return NULL;
        }
        if (!value_check(&f->kind, c->vars->interface, &out, &why)) {
            report(&c->rep, st->line, st->column, path, "%s (the segment's interface, for host "
                   "'%s')", why, host_label(c));
            return NULL;
        }
        return out;
    }
    return NULL;
}

static json_t *render_step(struct render *c, size_t si)
{
    const struct pb_step *st = &c->pb->steps[si];
    const struct field_table *t = &action_args[st->action];
    json_t *vals[MAX_FIELDS] = { NULL };
    int lines[MAX_FIELDS], columns[MAX_FIELDS];
    size_t before = c->rep.err->n_details;
    for (size_t i = 0; i < t->n; i++) {
        vals[i] = render_arg(c, st, si, &t->fields[i], &st->args[i]);
        lines[i] = st->args[i].present ? st->args[i].line : st->line;
        columns[i] = st->args[i].present ? st->args[i].column : st->column;
    }
    _cleanup_free_ char *path = xasprintf("steps[%zu].args", si);
    if (c->rep.err->n_details == before)
        cross_check_args(&c->rep, st->action, vals, lines, columns, path);
    json_t *args = json_object();
    for (size_t i = 0; i < t->n; i++)
        if (vals[i])
            json_object_set_new(args, t->fields[i].name, vals[i]);
    json_t *js = json_pack("{s:I, s:s, s:s, s:o}", "index", (json_int_t) si, "name", st->name,
                           "action", playbook_action_to_string(st->action), "args", args);
    if (st->when_check)
        json_object_set(js, "when", st->when_check);
    if (st->verify)
        json_object_set(js, "verify", st->verify);
    return js;
}

int playbook_render(const struct playbook *pb, const struct playbook_vars *vars,
                    json_t **ret_steps, struct yg_error **ret_error)
{
    struct render c = { .pb = pb, .vars = vars };
    c.param_values = xcalloc(pb->n_params + 1, sizeof *c.param_values);
    c.param_json = xcalloc(pb->n_params + 1, sizeof *c.param_json);
    if (vars->host)
        c.rep.err = yg_error_new(422, "render_failed", "playbook '%s' cannot be rendered for "
                                 "host '%s'", pb->name, vars->host);
    else
        c.rep.err = yg_error_new(422, "render_failed", "playbook '%s' cannot be rendered",
                                 pb->name);

    render_params(&c);
    json_t *steps = json_array();
    if (c.rep.err->n_details == 0) {
        for (size_t i = 0; i < pb->n_steps; i++) {
            const struct pb_step *st = &pb->steps[i];
            if (st->when_param != SIZE_MAX &&
                !json_equal(c.param_json[st->when_param], st->when_equals_value))
                continue;       /* the parameter says: not this time */
            json_array_append_new(steps, render_step(&c, i));
        }
    }
    for (size_t i = 0; i < pb->n_params; i++)
        json_decref(c.param_json[i]);
    free(c.param_json);
    free(c.param_values);

    if (c.rep.err->n_details > 0) {
        json_decref(steps);
        size_t n = c.rep.err->n_details;
        _cleanup_free_ char *msg = c.rep.err->message;
        c.rep.err->message = xasprintf("%s: %zu problem%s", msg, n, n == 1 ? "" : "s");
        *ret_error = c.rep.err;
        return -EINVAL;
    }
    yg_error_free(c.rep.err);
    *ret_steps = steps;
    return 0;
}

/* The segment list loader (segments.h): lib/yamldoc.c builds the tree and
 * keeps the problems; this file validates the tree against the segment
 * list format, with lib/ip.c for every address and prefix. */
#include <config.h>
#include "segments.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "util.h"

#define API_VERSION "yunguan/v1"
#define KIND "SegmentList"

static const struct yamldoc_options segments_doc_options = {
    .noun = "segment list",
    .a_noun = "a segment list",
    .max_bytes = SEGMENTS_MAX_BYTES,
    .max_nodes = SEGMENTS_MAX_NODES,
    .max_depth = SEGMENTS_MAX_DEPTH,
    .max_problems = SEGMENTS_MAX_ERRORS,
};

static const struct yamldoc_key top_keys[] = {
    { "apiVersion", true }, { "kind", true }, { "segments", true },
};
enum { TOP_API_VERSION, TOP_KIND, TOP_SEGMENTS };

static const struct yamldoc_key segment_keys[] = {
    { "name", true }, { "vlan", false }, { "interface", true }, { "departments", false },
    { "targetDate", false }, { "ipv4", true }, { "ipv6", false }, { "hosts", false },
};
enum { SEG_NAME, SEG_VLAN, SEG_INTERFACE, SEG_DEPARTMENTS, SEG_TARGET_DATE, SEG_IPV4, SEG_IPV6,
       SEG_HOSTS };

static const struct yamldoc_key ipv4_keys[] = {
    { "prefix", true }, { "gateway", true },
};
/* Prefix and gateway are a pair; their absence is reported by hand so
 * that the message can say which half is missing. */
static const struct yamldoc_key ipv6_keys[] = {
    { "prefix", false }, { "gateway", false }, { "slaac", false },
};
enum { IP_PREFIX, IP_GATEWAY, IP_SLAAC };

static const struct yamldoc_key host_keys[] = {
    { "name", true }, { "ipv4", false }, { "ipv6", false },
};
enum { HOST_NAME, HOST_IPV4, HOST_IPV6 };

/* ------------------------------------------------------------------ */
/* Address helpers.                                                     */

bool segment_ifname_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > SEGMENTS_IFNAME_MAX || streq(name, ".") || streq(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (name[i] <= ' ' || name[i] > '~' || name[i] == '/' || name[i] == ':')
            return false;
    return true;
}

/* Set (ones) or clear the bits of A past LEN. */
static void fill_host_bits(struct ip_addr *a, unsigned len, bool ones)
{
    unsigned bits = ip_family_bits(a->family);
    for (unsigned b = len; b < bits; b++) {
        uint8_t mask = (uint8_t) (0x80u >> (b % 8));
        if (ones)
            a->bytes[b / 8] |= mask;
        else
            a->bytes[b / 8] &= (uint8_t) ~mask;
    }
}

/* Add DELTA (+1 or -1) to A, within its family's bytes. */
static void addr_step(struct ip_addr *a, int delta)
{
    size_t n = ip_family_bits(a->family) / 8;
    for (size_t i = n; i-- > 0;) {
        if (delta > 0) {
            if (++a->bytes[i] != 0)
                return;
        } else {
            if (a->bytes[i]-- != 0)
                return;
        }
    }
}

void segment_usable_range(const struct ip_prefix *p, struct ip_addr *ret_first,
                          struct ip_addr *ret_last)
{
    unsigned bits = ip_family_bits(p->addr.family);
    struct ip_addr first = p->addr, last = p->addr;
    fill_host_bits(&first, p->len, false);
    fill_host_bits(&last, p->len, true);
    if (p->len < bits) {
        bool v4_classic = p->addr.family == AF_INET && p->len < 31;
        if (v4_classic || p->addr.family == AF_INET6)
            addr_step(&first, +1);      /* network / subnet-router anycast address */
        if (v4_classic)
            addr_step(&last, -1);       /* broadcast */
    }
    *ret_first = first;
    *ret_last = last;
}

static bool addr_is_multicast(const struct ip_addr *a)
{
    return a->family == AF_INET ? (a->bytes[0] & 0xF0) == 0xE0 : a->bytes[0] == 0xFF;
}

/* ------------------------------------------------------------------ */
/* Validation.                                                          */

/* What the cross-segment checks need of each segment. */
struct seg_check {
    const struct yamldoc_node *name, *vlan, *ipv4_prefix, *ipv6_prefix;
    bool name_ok, vlan_ok, ipv4_ok, ipv6_ok;
};

/* A prefix of FAMILY at N, fit for a segment. */
static bool get_prefix(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                       int family, struct ip_prefix *ret)
{
    _cleanup_free_ char *s = NULL, *err = NULL;
    struct ip_prefix p;
    char text[IP_PREFIX_STRLEN];
    if (!yamldoc_get_string(d, n, path, &s))
        return false;
    if (ip_prefix_parse(s, &p, &err) < 0) {
        yamldoc_problem(d, n, path, "%s", err);
        return false;
    }
    ip_prefix_format(&p, text);
    if (p.addr.family != family) {
        yamldoc_problem(d, n, path, "'%s' is an %s prefix; an %s prefix is expected here "
                        "(%s prefixes go under %s)", text, ip_family_name(p.addr.family),
                        ip_family_name(family), ip_family_name(p.addr.family),
                        family == AF_INET ? "ipv6" : "ipv4");
        return false;
    }
    if (p.len == ip_family_bits(family)) {
        yamldoc_problem(d, n, path, "'%s' holds a single address, no room for a gateway and "
                        "hosts; use /%u or shorter", text, ip_family_bits(family) - 1);
        return false;
    }
    const char *kind = ip_addr_is_loopback(&p.addr) ? "a loopback prefix"
                     : ip_addr_is_link_local(&p.addr) ? "a link-local prefix"
                     : addr_is_multicast(&p.addr) ? "a multicast prefix" : NULL;
    if (kind) {
        yamldoc_problem(d, n, path, "'%s' is %s; a segment needs a prefix hosts can be "
                        "addressed and routed in", text, kind);
        return false;
    }
    *ret = p;
    return true;
}

static bool get_addr(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                     int family, struct ip_addr *ret)
{
    _cleanup_free_ char *s = NULL, *err = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return false;
    if (ip_addr_parse_family(s, family, ret, &err) < 0) {
        yamldoc_problem(d, n, path, "%s", err);
        return false;
    }
    return true;
}

/* Whether A may be used by a gateway or host of prefix P; WHAT is "gateway"
 * or "address" for the message. */
static bool check_usable(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                         const char *what, const struct ip_prefix *p, const struct ip_addr *a)
{
    char ptext[IP_PREFIX_STRLEN], atext[IP_ADDR_STRLEN];
    char ftext[IP_ADDR_STRLEN], ltext[IP_ADDR_STRLEN];
    struct ip_addr first, last;
    segment_usable_range(p, &first, &last);
    ip_prefix_format(p, ptext);
    ip_addr_format(a, atext);
    ip_addr_format(&first, ftext);
    ip_addr_format(&last, ltext);
    const char *fam = ip_family_name(p->addr.family);

    if (!ip_prefix_contains(p, a)) {
        yamldoc_problem(d, n, path, "%s %s is outside the segment's %s prefix %s; use an "
                        "address from %s to %s", what, atext, fam, ptext, ftext, ltext);
        return false;
    }
    if (ip_addr_compare(a, &first) < 0 || ip_addr_compare(a, &last) > 0) {
        const char *role = ip_addr_compare(a, &last) > 0 ? "broadcast address"
                         : p->addr.family == AF_INET ? "network address"
                         : "subnet-router anycast address";
        yamldoc_problem(d, n, path, "%s is the %s of %s, not a usable %s; use an address "
                        "from %s to %s", atext, role, ptext, what, ftext, ltext);
        return false;
    }
    return true;
}

/* ipv4: {prefix, gateway} */
static bool validate_ipv4(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                          struct segment *s, struct seg_check *chk)
{
    const struct yamldoc_node *v[YG_ARRAY_SIZE(ipv4_keys)];
    if (!yamldoc_check_mapping(d, n, path, ipv4_keys, YG_ARRAY_SIZE(ipv4_keys), v))
        return false;
    _cleanup_free_ char *p_prefix = yamldoc_path_key(path, "prefix", 6);
    _cleanup_free_ char *p_gateway = yamldoc_path_key(path, "gateway", 7);
    bool ok = true;
    if (v[IP_PREFIX] && get_prefix(d, v[IP_PREFIX], p_prefix, AF_INET, &s->ipv4_prefix)) {
        chk->ipv4_prefix = v[IP_PREFIX];
        chk->ipv4_ok = true;
        s->ipv4_prefix_pos = yamldoc_pos_of(v[IP_PREFIX]);
    } else {
        ok = false;
    }
    if (v[IP_GATEWAY] && get_addr(d, v[IP_GATEWAY], p_gateway, AF_INET, &s->ipv4_gateway)) {
        if (chk->ipv4_ok && !check_usable(d, v[IP_GATEWAY], p_gateway, "gateway",
                                          &s->ipv4_prefix, &s->ipv4_gateway))
            ok = false;
    } else {
        ok = false;
    }
    return ok;
}

/* ipv6: {prefix, gateway, slaac}, or empty for none.  True when the
 * segment's IPv6 plan is complete and valid (s->has_ipv6). */
static bool validate_ipv6(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                          struct segment *s, struct seg_check *chk)
{
    if (yamldoc_is_null(n))
        return false;           /* v4-only for now */
    const struct yamldoc_node *v[YG_ARRAY_SIZE(ipv6_keys)];
    bool hinted[YG_ARRAY_SIZE(ipv6_keys)];
    if (!yamldoc_check_mapping_hinted(d, n, path, ipv6_keys, YG_ARRAY_SIZE(ipv6_keys), v,
                                      hinted))
        return false;
    _cleanup_free_ char *p_prefix = yamldoc_path_key(path, "prefix", 6);
    _cleanup_free_ char *p_gateway = yamldoc_path_key(path, "gateway", 7);
    _cleanup_free_ char *p_slaac = yamldoc_path_key(path, "slaac", 5);
    bool prefix_ok = false, gateway_ok = false, slaac_ok = true;

    if (v[IP_PREFIX])
        prefix_ok = get_prefix(d, v[IP_PREFIX], p_prefix, AF_INET6, &s->ipv6_prefix);
    if (v[IP_GATEWAY])
        gateway_ok = get_addr(d, v[IP_GATEWAY], p_gateway, AF_INET6, &s->ipv6_gateway);
    if (v[IP_SLAAC])
        slaac_ok = yamldoc_get_bool(d, v[IP_SLAAC], p_slaac, &s->slaac);

    /* A misspelt half was reported already, with a hint. */
    if ((!v[IP_PREFIX] && hinted[IP_PREFIX]) || (!v[IP_GATEWAY] && hinted[IP_GATEWAY]))
        return false;
    if (!v[IP_PREFIX] && !v[IP_GATEWAY]) {
        yamldoc_problem(d, n, path, "an IPv6 plan needs a prefix and a gateway; leave ipv6 "
                        "out for a segment that is v4-only for now");
        return false;
    }
    if (!v[IP_PREFIX]) {
        yamldoc_problem(d, n, p_prefix, "an IPv6 gateway needs its prefix (they are a pair): "
                        "add ipv6.prefix, the segment's /64");
        return false;
    }
    char ptext[IP_PREFIX_STRLEN] = "";
    if (prefix_ok)
        ip_prefix_format(&s->ipv6_prefix, ptext);
    if (!v[IP_GATEWAY]) {
        if (prefix_ok) {
            struct ip_addr first, last;
            char ftext[IP_ADDR_STRLEN];
            segment_usable_range(&s->ipv6_prefix, &first, &last);
            yamldoc_problem(d, n, p_gateway, "an IPv6 prefix needs its gateway (they are a "
                            "pair): add ipv6.gateway, e.g. '%s'", ip_addr_format(&first, ftext));
        } else {
            yamldoc_problem(d, n, p_gateway, "an IPv6 prefix needs its gateway (they are a "
                            "pair): add ipv6.gateway");
        }
        return false;
    }
    if (prefix_ok) {
        chk->ipv6_prefix = v[IP_PREFIX];
        chk->ipv6_ok = true;
        s->ipv6_prefix_pos = yamldoc_pos_of(v[IP_PREFIX]);
    }
    if (prefix_ok && slaac_ok && s->slaac && s->ipv6_prefix.len != 64) {
        if (s->ipv6_prefix.len > 64)
            yamldoc_problem(d, v[IP_PREFIX], p_prefix, "'%s' is longer than /64, so hosts "
                            "cannot form SLAAC addresses (64-bit interface identifiers); use "
                            "a /64 or set slaac: false", ptext);
        else
            yamldoc_problem(d, v[IP_PREFIX], p_prefix, "'%s' is shorter than /64, and SLAAC "
                            "works only on a /64; give the segment one /64 of it or set "
                            "slaac: false", ptext);
        prefix_ok = false;
    }
    if (prefix_ok && gateway_ok &&
        !check_usable(d, v[IP_GATEWAY], p_gateway, "gateway", &s->ipv6_prefix, &s->ipv6_gateway))
        gateway_ok = false;
    return prefix_ok && gateway_ok && slaac_ok;
}

static void validate_departments(struct yamldoc *d, const struct yamldoc_node *n,
                                 const char *path, struct segment *s)
{
    if (yamldoc_is_null(n))
        return;
    if (n->kind != YAMLDOC_SEQUENCE) {
        yamldoc_type_problem(d, n, path, "sequence of department names");
        return;
    }
    if (n->n_children > SEGMENTS_MAX_DEPARTMENTS) {
        yamldoc_problem(d, n, path, "%zu departments is too many; at most %d may own one "
                        "segment", n->n_children, SEGMENTS_MAX_DEPARTMENTS);
        return;
    }
    s->departments = xcalloc(n->n_children ? n->n_children : 1, sizeof *s->departments);
    for (size_t i = 0; i < n->n_children; i++) {
        _cleanup_free_ char *p = yamldoc_path_index(path, i);
        char *name = NULL;
        if (!yamldoc_get_name(d, n->children[i], p, "department name", &name))
            continue;
        bool dup = false;
        for (size_t j = 0; j < s->n_departments && !dup; j++)
            dup = streq(s->departments[j], name);
        if (dup) {
            yamldoc_problem(d, n->children[i], p, "department '%s' is listed twice", name);
            free(name);
            continue;
        }
        s->departments[s->n_departments++] = name;
    }
}

static void validate_host(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                          const struct segment *s, bool ipv4_ok, bool ipv6_ok,
                          const struct yamldoc_node *seg_ipv6, struct segment_host *h,
                          const struct yamldoc_node **ret_name, const struct yamldoc_node **ret_v4,
                          const struct yamldoc_node **ret_v6)
{
    const struct yamldoc_node *v[YG_ARRAY_SIZE(host_keys)];
    *ret_name = *ret_v4 = *ret_v6 = NULL;
    if (!yamldoc_check_mapping(d, n, path, host_keys, YG_ARRAY_SIZE(host_keys), v))
        return;
    _cleanup_free_ char *p_name = yamldoc_path_key(path, "name", 4);
    _cleanup_free_ char *p_ipv4 = yamldoc_path_key(path, "ipv4", 4);
    _cleanup_free_ char *p_ipv6 = yamldoc_path_key(path, "ipv6", 4);
    char atext[IP_ADDR_STRLEN];

    if (v[HOST_NAME] && yamldoc_get_name(d, v[HOST_NAME], p_name, "host name", &h->name))
        *ret_name = v[HOST_NAME];
    if (v[HOST_IPV4] && get_addr(d, v[HOST_IPV4], p_ipv4, AF_INET, &h->ipv4) && ipv4_ok) {
        if (ip_addr_equal(&h->ipv4, &s->ipv4_gateway))
            yamldoc_problem(d, v[HOST_IPV4], p_ipv4, "%s is the segment's IPv4 gateway; "
                            "plan an address of the host's own",
                            ip_addr_format(&h->ipv4, atext));
        else if (check_usable(d, v[HOST_IPV4], p_ipv4, "address", &s->ipv4_prefix, &h->ipv4))
            *ret_v4 = v[HOST_IPV4];
    }
    if (!v[HOST_IPV6])
        return;
    if (!seg_ipv6) {
        yamldoc_problem(d, v[HOST_IPV6], p_ipv6, "the segment has no IPv6 prefix yet; add "
                        "ipv6.prefix and ipv6.gateway to the segment, or leave the host's "
                        "ipv6 out");
        return;
    }
    if (get_addr(d, v[HOST_IPV6], p_ipv6, AF_INET6, &h->ipv6) && ipv6_ok) {
        if (ip_addr_equal(&h->ipv6, &s->ipv6_gateway))
            yamldoc_problem(d, v[HOST_IPV6], p_ipv6, "%s is the segment's IPv6 gateway; "
                            "plan an address of the host's own",
                            ip_addr_format(&h->ipv6, atext));
        else if (check_usable(d, v[HOST_IPV6], p_ipv6, "address", &s->ipv6_prefix, &h->ipv6))
            *ret_v6 = v[HOST_IPV6];
    }
}

/* What is known of one host item while checking duplicates. */
struct host_check {
    const struct yamldoc_node *name, *v4, *v6;
};

static void validate_hosts(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                           struct segment *s, bool ipv4_ok, bool ipv6_ok,
                           const struct yamldoc_node *seg_ipv6)
{
    if (yamldoc_is_null(n))
        return;
    if (n->kind != YAMLDOC_SEQUENCE) {
        yamldoc_type_problem(d, n, path, "sequence of hosts");
        return;
    }
    if (n->n_children > SEGMENTS_MAX_HOSTS) {
        yamldoc_problem(d, n, path, "%zu hosts is too many; at most %d may carry one segment",
                        n->n_children, SEGMENTS_MAX_HOSTS);
        return;
    }
    _cleanup_free_ struct host_check *seen = xcalloc(n->n_children + 1, sizeof *seen);
    s->hosts = xcalloc(n->n_children ? n->n_children : 1, sizeof *s->hosts);
    s->n_hosts = n->n_children;
    for (size_t i = 0; i < n->n_children; i++) {
        _cleanup_free_ char *p = yamldoc_path_index(path, i);
        struct segment_host *h = &s->hosts[i];
        struct host_check *c = &seen[i];
        char atext[IP_ADDR_STRLEN];
        validate_host(d, n->children[i], p, s, ipv4_ok, ipv6_ok, seg_ipv6, h,
                      &c->name, &c->v4, &c->v6);
        for (size_t j = 0; j < i; j++) {
            const struct host_check *o = &seen[j];
            if (c->name && o->name && streq(h->name, s->hosts[j].name)) {
                _cleanup_free_ char *pn = yamldoc_path_key(p, "name", 4);
                yamldoc_problem(d, c->name, pn, "host '%s' is listed twice in this segment "
                                "(first as %s[%zu], line %d)", h->name, path, j, o->name->line);
                c->name = NULL;
            }
            if (c->v4 && o->v4 && ip_addr_equal(&h->ipv4, &s->hosts[j].ipv4)) {
                _cleanup_free_ char *pa = yamldoc_path_key(p, "ipv4", 4);
                yamldoc_problem(d, c->v4, pa, "%s is already planned for host '%s' (line %d); "
                                "every host needs an address of its own",
                                ip_addr_format(&h->ipv4, atext),
                                s->hosts[j].name ? s->hosts[j].name : "?", o->v4->line);
                c->v4 = NULL;
            }
            if (c->v6 && o->v6 && ip_addr_equal(&h->ipv6, &s->hosts[j].ipv6)) {
                _cleanup_free_ char *pa = yamldoc_path_key(p, "ipv6", 4);
                yamldoc_problem(d, c->v6, pa, "%s is already planned for host '%s' (line %d); "
                                "every host needs an address of its own",
                                ip_addr_format(&h->ipv6, atext),
                                s->hosts[j].name ? s->hosts[j].name : "?", o->v6->line);
                c->v6 = NULL;
            }
        }
    }
}

static void validate_segment(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                             struct segment *s, struct seg_check *chk)
{
    const struct yamldoc_node *v[YG_ARRAY_SIZE(segment_keys)];
    s->pos = yamldoc_pos_of(n);
    if (!yamldoc_check_mapping(d, n, path, segment_keys, YG_ARRAY_SIZE(segment_keys), v))
        return;
    _cleanup_free_ char *p_name = yamldoc_path_key(path, "name", 4);
    _cleanup_free_ char *p_vlan = yamldoc_path_key(path, "vlan", 4);
    _cleanup_free_ char *p_if = yamldoc_path_key(path, "interface", 9);
    _cleanup_free_ char *p_depts = yamldoc_path_key(path, "departments", 11);
    _cleanup_free_ char *p_date = yamldoc_path_key(path, "targetDate", 10);
    _cleanup_free_ char *p_ipv4 = yamldoc_path_key(path, "ipv4", 4);
    _cleanup_free_ char *p_ipv6 = yamldoc_path_key(path, "ipv6", 4);
    _cleanup_free_ char *p_hosts = yamldoc_path_key(path, "hosts", 5);

    if (v[SEG_NAME] && yamldoc_get_name(d, v[SEG_NAME], p_name, "segment name", &s->name)) {
        chk->name = v[SEG_NAME];
        chk->name_ok = true;
        s->name_pos = yamldoc_pos_of(v[SEG_NAME]);
    }
    if (v[SEG_VLAN] && yamldoc_get_int(d, v[SEG_VLAN], p_vlan, 1, 4094, &s->vlan)) {
        chk->vlan = v[SEG_VLAN];
        chk->vlan_ok = true;
        s->vlan_pos = yamldoc_pos_of(v[SEG_VLAN]);
    }
    if (v[SEG_INTERFACE] && yamldoc_get_string(d, v[SEG_INTERFACE], p_if, &s->interface) &&
        !segment_ifname_is_valid(s->interface)) {
        _cleanup_free_ char *shown = yamldoc_show_node(v[SEG_INTERFACE]);
        yamldoc_problem(d, v[SEG_INTERFACE], p_if, "'%s' is not a valid interface name: use "
                        "1 to %d characters without '/', ':' or spaces, like 'br-health'",
                        shown, SEGMENTS_IFNAME_MAX);
    }
    if (v[SEG_DEPARTMENTS])
        validate_departments(d, v[SEG_DEPARTMENTS], p_depts, s);
    if (v[SEG_TARGET_DATE])
        yamldoc_get_date(d, v[SEG_TARGET_DATE], p_date, &s->target_date);
    bool ipv4_ok = v[SEG_IPV4] && validate_ipv4(d, v[SEG_IPV4], p_ipv4, s, chk);
    const struct yamldoc_node *seg_ipv6 = v[SEG_IPV6] && !yamldoc_is_null(v[SEG_IPV6])
                                          ? v[SEG_IPV6] : NULL;
    bool ipv6_ok = seg_ipv6 && validate_ipv6(d, seg_ipv6, p_ipv6, s, chk);
    s->has_ipv6 = ipv6_ok;
    s->ipv6_given = v[SEG_IPV6] != NULL;
    if (v[SEG_HOSTS])
        validate_hosts(d, v[SEG_HOSTS], p_hosts, s, ipv4_ok, ipv6_ok, seg_ipv6);
}

/* Names, VLANs and prefixes are unique across the list. */
static void check_across(struct yamldoc *d, const struct segment_list *l,
                         const struct seg_check *chk)
{
    char a[IP_PREFIX_STRLEN], b[IP_PREFIX_STRLEN];
    for (size_t j = 0; j < l->n_segments; j++) {
        const struct segment *s = &l->segments[j];
        const struct seg_check *c = &chk[j];
        _cleanup_free_ char *path = yamldoc_path_index("segments", j);
        bool name_done = false, vlan_done = false, v4_done = false, v6_done = false;
        for (size_t i = 0; i < j; i++) {
            const struct segment *o = &l->segments[i];
            const struct seg_check *oc = &chk[i];
            const char *oname = oc->name_ok ? o->name : "?";
            if (!name_done && c->name_ok && oc->name_ok && streq(s->name, o->name)) {
                _cleanup_free_ char *p = yamldoc_path_key(path, "name", 4);
                yamldoc_problem(d, c->name, p, "duplicate segment name '%s' (first used by "
                                "segments[%zu] at line %d)", s->name, i, oc->name->line);
                name_done = true;
            }
            if (!vlan_done && c->vlan_ok && oc->vlan_ok && s->vlan == o->vlan) {
                _cleanup_free_ char *p = yamldoc_path_key(path, "vlan", 4);
                yamldoc_problem(d, c->vlan, p, "VLAN %d is already used by segment '%s' "
                                "(segments[%zu], line %d)", s->vlan, oname, i, oc->vlan->line);
                vlan_done = true;
            }
            if (!v4_done && c->ipv4_ok && oc->ipv4_ok &&
                ip_prefix_overlap(&s->ipv4_prefix, &o->ipv4_prefix)) {
                _cleanup_free_ char *p = xasprintf("%s.ipv4.prefix", path);
                yamldoc_problem(d, c->ipv4_prefix, p, "%s overlaps %s of segment '%s' "
                                "(segments[%zu], line %d); segments must not share addresses",
                                ip_prefix_format(&s->ipv4_prefix, a),
                                ip_prefix_format(&o->ipv4_prefix, b), oname, i,
                                oc->ipv4_prefix->line);
                v4_done = true;
            }
            if (!v6_done && c->ipv6_ok && oc->ipv6_ok &&
                ip_prefix_overlap(&s->ipv6_prefix, &o->ipv6_prefix)) {
                _cleanup_free_ char *p = xasprintf("%s.ipv6.prefix", path);
                yamldoc_problem(d, c->ipv6_prefix, p, "%s overlaps %s of segment '%s' "
                                "(segments[%zu], line %d); segments must not share addresses",
                                ip_prefix_format(&s->ipv6_prefix, a),
                                ip_prefix_format(&o->ipv6_prefix, b), oname, i,
                                oc->ipv6_prefix->line);
                v6_done = true;
            }
        }
    }
}

static void validate_root(struct yamldoc *d, const struct yamldoc_node *root,
                          struct segment_list *l)
{
    if (!root || yamldoc_is_null(root)) {
        yamldoc_problem_at(d, root ? root->line : 1, root ? root->column : 1, NULL,
                           "the document is empty; a segment list is a mapping with "
                           "apiVersion, kind and segments");
        return;
    }
    if (root->kind != YAMLDOC_MAPPING) {
        _cleanup_free_ char *got = yamldoc_describe(root);
        yamldoc_problem(d, root, NULL, "the top level must be a mapping with apiVersion, kind "
                        "and segments; got %s", got);
        return;
    }
    const struct yamldoc_node *v[YG_ARRAY_SIZE(top_keys)];
    yamldoc_check_mapping(d, root, NULL, top_keys, YG_ARRAY_SIZE(top_keys), v);
    if (v[TOP_API_VERSION])
        yamldoc_get_exact(d, v[TOP_API_VERSION], "apiVersion", API_VERSION);
    if (v[TOP_KIND])
        yamldoc_get_exact(d, v[TOP_KIND], "kind", KIND);
    const struct yamldoc_node *n = v[TOP_SEGMENTS];
    if (!n)
        return;
    if (yamldoc_is_null(n) || (n->kind == YAMLDOC_SEQUENCE && n->n_children == 0)) {
        yamldoc_problem(d, n, "segments", "at least one segment is required");
        return;
    }
    if (n->kind != YAMLDOC_SEQUENCE) {
        yamldoc_type_problem(d, n, "segments", "sequence");
        return;
    }
    if (n->n_children > SEGMENTS_MAX_SEGMENTS) {
        yamldoc_problem(d, n, "segments", "%zu segments is too many; at most %d fit in one "
                        "list (split it)", n->n_children, SEGMENTS_MAX_SEGMENTS);
        return;
    }
    _cleanup_free_ struct seg_check *chk = xcalloc(n->n_children, sizeof *chk);
    l->segments = xcalloc(n->n_children, sizeof *l->segments);
    l->n_segments = n->n_children;
    for (size_t i = 0; i < n->n_children; i++) {
        _cleanup_free_ char *p = yamldoc_path_index("segments", i);
        validate_segment(d, n->children[i], p, &l->segments[i], &chk[i]);
    }
    check_across(d, l, chk);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int cmp_host(const void *a_, const void *b_)
{
    const struct segment_host *a = a_, *b = b_;
    return strcmp(a->name, b->name);
}

/* The canonical order: departments and hosts by name. */
static void canonicalize(struct segment_list *l)
{
    for (size_t i = 0; i < l->n_segments; i++) {
        struct segment *s = &l->segments[i];
        if (s->n_departments > 1)
            qsort(s->departments, s->n_departments, sizeof *s->departments, cmp_strp);
        if (s->n_hosts > 1)
            qsort(s->hosts, s->n_hosts, sizeof *s->hosts, cmp_host);
    }
}

/* ------------------------------------------------------------------ */

void segment_clear(struct segment *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->interface);
    for (size_t i = 0; i < s->n_departments; i++)
        free(s->departments[i]);
    free(s->departments);
    free(s->target_date);
    for (size_t i = 0; i < s->n_hosts; i++)
        free(s->hosts[i].name);
    free(s->hosts);
    memset(s, 0, sizeof *s);
}

void segment_list_free(struct segment_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_segments; i++)
        segment_clear(&l->segments[i]);
    free(l->segments);
    free(l);
}

int segment_list_parse(const char *text, size_t len, const char *filename,
                       struct segment_list **ret_list, struct yg_error **ret_error)
{
    _cleanup_(yamldoc_freep) struct yamldoc *d = yamldoc_new(&segments_doc_options, filename);
    _cleanup_(segment_list_freep) struct segment_list *l = NULL;
    const struct yamldoc_node *root;

    int r = yamldoc_load(d, text, len, &root);
    if (r < 0) {
        *ret_error = yamldoc_error(d);
        return r;
    }
    l = xcalloc(1, sizeof *l);
    validate_root(d, root, l);
    if (yamldoc_failed(d)) {
        *ret_error = yamldoc_error(d);
        return -EINVAL;
    }
    canonicalize(l);
    *ret_list = steal_pointer(&l);
    return 0;
}

static json_t *addr_json(const struct ip_addr *a)
{
    char text[IP_ADDR_STRLEN];
    return json_string(ip_addr_format(a, text));
}

static json_t *prefix_json(const struct ip_prefix *p)
{
    char text[IP_PREFIX_STRLEN];
    return json_string(ip_prefix_format(p, text));
}

json_t *segment_to_json(const struct segment *s)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(s->name));
    if (s->vlan > 0)
        json_object_set_new(j, "vlan", json_integer(s->vlan));
    json_object_set_new(j, "interface", json_string(s->interface));
    json_t *depts = json_array();
    for (size_t i = 0; i < s->n_departments; i++)
        json_array_append_new(depts, json_string(s->departments[i]));
    json_object_set_new(j, "departments", depts);
    if (s->target_date)
        json_object_set_new(j, "targetDate", json_string(s->target_date));
    json_object_set_new(j, "ipv4", json_pack("{s:o, s:o}", "prefix", prefix_json(&s->ipv4_prefix),
                                             "gateway", addr_json(&s->ipv4_gateway)));
    if (s->has_ipv6)
        json_object_set_new(j, "ipv6", json_pack("{s:o, s:o, s:b}",
                                                 "prefix", prefix_json(&s->ipv6_prefix),
                                                 "gateway", addr_json(&s->ipv6_gateway),
                                                 "slaac", s->slaac));
    json_t *hosts = json_array();
    for (size_t i = 0; i < s->n_hosts; i++) {
        const struct segment_host *h = &s->hosts[i];
        json_t *jh = json_pack("{s:s}", "name", h->name);
        if (h->ipv4.family)
            json_object_set_new(jh, "ipv4", addr_json(&h->ipv4));
        if (h->ipv6.family)
            json_object_set_new(jh, "ipv6", addr_json(&h->ipv6));
        json_array_append_new(hosts, jh);
    }
    json_object_set_new(j, "hosts", hosts);
    return j;
}

json_t *segment_list_to_json(const struct segment_list *l)
{
    json_t *items = json_array();
    for (size_t i = 0; i < l->n_segments; i++)
        json_array_append_new(items, segment_to_json(&l->segments[i]));
    return json_pack("{s:s, s:s, s:o}", "apiVersion", API_VERSION, "kind", KIND,
                     "segments", items);
}

#include <config.h>
#include "checks.h"

#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "util.h"

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000    /* <linux/if.h>, which clashes with <net/if.h> */
#endif

static const char *const severity_names[CHECKS_SEVERITY_MAX] = {
    [CHECKS_PASS] = "pass", [CHECKS_WARN] = "warn", [CHECKS_FAIL] = "fail",
};

static const char *const check_names[CHECK_MAX] = {
    [CHECK_IPV6_ENABLED] = "ipv6-enabled",
    [CHECK_LINK_LOCAL] = "link-local",
    [CHECK_IPV6_GLOBAL_ADDRESS] = "ipv6-global-address",
    [CHECK_IPV4_ADDRESS] = "ipv4-address",
    [CHECK_IPV6_DEFAULT_ROUTE] = "ipv6-default-route",
    [CHECK_GATEWAY_NEIGHBOUR] = "gateway-neighbour",
    [CHECK_ACCEPT_RA] = "accept-ra",
    [CHECK_IPV4_ONLY_LISTENERS] = "ipv4-only-listeners",
};

static const struct {
    const char *name;
    enum checks_check check;
} reasons[REASON_MAX] = {
    [REASON_OK] = { "OK", CHECK_MAX },
    [REASON_IPV6_DISABLED] = { "IPV6_DISABLED", CHECK_IPV6_ENABLED },
    [REASON_MTU_TOO_SMALL] = { "MTU_TOO_SMALL", CHECK_IPV6_ENABLED },
    [REASON_INTERFACE_MISSING] = { "INTERFACE_MISSING", CHECK_IPV6_ENABLED },
    [REASON_INTERFACE_DOWN] = { "INTERFACE_DOWN", CHECK_IPV6_ENABLED },
    [REASON_NO_LINK_LOCAL] = { "NO_LINK_LOCAL", CHECK_LINK_LOCAL },
    [REASON_DAD_FAILED] = { "DAD_FAILED", CHECK_LINK_LOCAL },
    [REASON_NO_GLOBAL_IPV6] = { "NO_GLOBAL_IPV6", CHECK_IPV6_GLOBAL_ADDRESS },
    [REASON_IPV6_TENTATIVE] = { "IPV6_TENTATIVE", CHECK_IPV6_GLOBAL_ADDRESS },
    [REASON_IPV6_DEPRECATED] = { "IPV6_DEPRECATED", CHECK_IPV6_GLOBAL_ADDRESS },
    [REASON_IPV6_DAD_FAILED] = { "IPV6_DAD_FAILED", CHECK_IPV6_GLOBAL_ADDRESS },
    [REASON_IPV6_OUTSIDE_PREFIX] = { "IPV6_OUTSIDE_PREFIX", CHECK_IPV6_GLOBAL_ADDRESS },
    [REASON_NO_IPV4_IN_PREFIX] = { "NO_IPV4_IN_PREFIX", CHECK_IPV4_ADDRESS },
    [REASON_NO_IPV6_DEFAULT_ROUTE] = { "NO_IPV6_DEFAULT_ROUTE", CHECK_IPV6_DEFAULT_ROUTE },
    [REASON_GATEWAY_NEIGH_FAILED] = { "GATEWAY_NEIGH_FAILED", CHECK_GATEWAY_NEIGHBOUR },
    [REASON_GATEWAY_NEIGH_INCOMPLETE] = { "GATEWAY_NEIGH_INCOMPLETE", CHECK_GATEWAY_NEIGHBOUR },
    [REASON_GATEWAY_NOT_ROUTER] = { "GATEWAY_NOT_ROUTER", CHECK_GATEWAY_NEIGHBOUR },
    [REASON_RA_IGNORED_FORWARDING] = { "RA_IGNORED_FORWARDING", CHECK_ACCEPT_RA },
    [REASON_RA_DISABLED] = { "RA_DISABLED", CHECK_ACCEPT_RA },
    [REASON_IPV4_ONLY_LISTENER] = { "IPV4_ONLY_LISTENER", CHECK_IPV4_ONLY_LISTENERS },
};

const char *checks_severity_to_string(enum checks_severity s)
{
    return s < CHECKS_SEVERITY_MAX ? severity_names[s] : NULL;
}

int checks_severity_from_string(const char *s)
{
    for (int i = 0; i < CHECKS_SEVERITY_MAX; i++)
        if (streq(severity_names[i], s))
            return i;
    return -1;
}

const char *checks_check_to_string(enum checks_check c)
{
    return c < CHECK_MAX ? check_names[c] : NULL;
}

int checks_check_from_string(const char *s)
{
    for (int i = 0; i < CHECK_MAX; i++)
        if (streq(check_names[i], s))
            return i;
    return -1;
}

const char *checks_reason_to_string(enum checks_reason r)
{
    return r < REASON_MAX ? reasons[r].name : NULL;
}

int checks_reason_from_string(const char *s)
{
    for (int i = 0; i < REASON_MAX; i++)
        if (streq(reasons[i].name, s))
            return i;
    return -1;
}

enum checks_check checks_reason_check(enum checks_reason r)
{
    return r < REASON_MAX ? reasons[r].check : CHECK_MAX;
}

/* ---- result building ---- */

static void add_item(struct checks_result *r, enum checks_check check, enum checks_severity sev,
                     enum checks_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add_item(struct checks_result *r, enum checks_check check, enum checks_severity sev,
                     enum checks_reason reason, const char *fmt, ...)
{
    r->items = xrealloc(r->items, (r->n_items + 1) * sizeof *r->items);
    struct checks_item *it = &r->items[r->n_items++];
    it->check = check;
    it->severity = sev;
    it->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&it->message, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (sev > r->status)
        r->status = sev;
}

/* Items added for check since index mark? */
static bool added_since(const struct checks_result *r, size_t mark)
{
    return r->n_items > mark;
}

void checks_result_clear(struct checks_result *r)
{
    for (size_t i = 0; i < r->n_items; i++)
        free(r->items[i].message);
    free(r->items);
    free(r->segment);
    free(r->interface);
    *r = (struct checks_result) { 0 };
}

json_t *checks_result_to_json(const struct checks_result *r)
{
    json_t *checks = json_array();
    for (size_t i = 0; i < r->n_items; i++) {
        const struct checks_item *it = &r->items[i];
        json_array_append_new(checks, json_pack("{s:s, s:s, s:s, s:s}",
            "check", checks_check_to_string(it->check),
            "severity", checks_severity_to_string(it->severity),
            "reason", checks_reason_to_string(it->reason),
            "message", it->message));
    }
    return json_pack("{s:s, s:s, s:s, s:o}", "name", r->segment, "interface", r->interface,
                     "status", checks_severity_to_string(r->status), "checks", checks);
}

/* ---- helpers over the snapshot ---- */

struct ctx {
    const struct snapshot *snap;
    const struct desired_segment *seg;
    const struct snapshot_link *link;
    const char *ifname;
    struct checks_result *res;
};

static const char *fmt_addr(const struct ip_addr *a, char buf[static IP_ADDR_STRLEN])
{
    return ip_addr_format(a, buf);
}

static const char *fmt_prefix(const struct ip_prefix *p, char buf[static IP_PREFIX_STRLEN])
{
    return ip_prefix_format(p, buf);
}

static bool is_v6_global(const struct snapshot_addr *a)
{
    const struct ip_addr *x = &a->local.addr;
    return x->family == AF_INET6 && !ip_addr_is_link_local(x) && !ip_addr_is_loopback(x) &&
           x->bytes[0] != 0xff && a->scope != RT_SCOPE_HOST && a->scope != RT_SCOPE_LINK;
}

static bool addr_usable(const struct snapshot_addr *a)
{
    return !(a->flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED));
}

static bool route_counts(const struct snapshot_route *rt)
{
    return rt->type == RTN_UNICAST && rt->table != RT_TABLE_LOCAL;
}

static bool route_is_default(const struct snapshot_route *rt, int family)
{
    return rt->dst.addr.family == family && rt->dst.len == 0 && route_counts(rt);
}

/* The first default route of that family through the link, or NULL. */
static const struct snapshot_route *default_route_on(const struct ctx *c, int family)
{
    for (size_t i = 0; i < c->snap->n_routes; i++) {
        const struct snapshot_route *rt = &c->snap->routes[i];
        if (route_is_default(rt, family) && rt->oif == c->link->ifindex)
            return rt;
    }
    return NULL;
}

/* The first default route of that family through another link, or NULL. */
static const struct snapshot_route *default_route_elsewhere(const struct ctx *c, int family)
{
    for (size_t i = 0; i < c->snap->n_routes; i++) {
        const struct snapshot_route *rt = &c->snap->routes[i];
        if (route_is_default(rt, family) && rt->oif != c->link->ifindex)
            return rt;
    }
    return NULL;
}

static const char *link_name(const struct ctx *c, int ifindex)
{
    const struct snapshot_link *l = snapshot_find_link_by_index(c->snap, ifindex);
    return l ? l->name : "?";
}

/* "via GW" or "through IF" for a route's next hop, into buf. */
static const char *describe_nexthop(const struct ctx *c, const struct snapshot_route *rt,
                                    char *buf, size_t size)
{
    char a[IP_ADDR_STRLEN];
    if (rt->gateway.family)
        snprintf(buf, size, "via %s on %s", fmt_addr(&rt->gateway, a), link_name(c, rt->oif));
    else
        snprintf(buf, size, "through %s", link_name(c, rt->oif));
    return buf;
}

/* Append "a, b, c and N more" from a list of texts. */
static void list_append(struct strbuf *sb, size_t index, size_t total, const char *text)
{
    if (index >= CHECKS_MAX_LISTED) {
        if (index == CHECKS_MAX_LISTED)
            strbuf_printf(sb, " and %zu more", total - CHECKS_MAX_LISTED);
        return;
    }
    if (index > 0)
        strbuf_puts(sb, ", ");
    strbuf_puts(sb, text);
}

static const char *operstate_name(uint8_t s)
{
    static const char *const names[] = { "unknown", "notpresent", "down", "lowerlayerdown",
                                         "testing", "dormant", "up" };
    return s < YG_ARRAY_SIZE(names) ? names[s] : "unknown";
}

/* ---- the checks ---- */

static void check_ipv6_enabled(struct ctx *c)
{
    const struct snapshot_link *l = c->link;
    size_t mark = c->res->n_items;
    if (!(l->flags & IFF_UP))
        add_item(c->res, CHECK_IPV6_ENABLED, CHECKS_FAIL, REASON_INTERFACE_DOWN,
                 "interface %s is administratively down", c->ifname);
    else if (!(l->flags & IFF_LOWER_UP))
        add_item(c->res, CHECK_IPV6_ENABLED, CHECKS_FAIL, REASON_INTERFACE_DOWN,
                 "interface %s is up but has no carrier (operstate %s)", c->ifname,
                 operstate_name(l->operstate));
    if (l->mtu < CHECKS_IPV6_MIN_MTU)
        add_item(c->res, CHECK_IPV6_ENABLED, CHECKS_FAIL, REASON_MTU_TOO_SMALL,
                 "MTU %u on %s is below the IPv6 minimum of %d%s", l->mtu, c->ifname,
                 CHECKS_IPV6_MIN_MTU,
                 l->disable_ipv6 < 0 ? " (the kernel has turned IPv6 off on it)" : "");
    else if (!c->snap->ipv6_in_kernel)
        add_item(c->res, CHECK_IPV6_ENABLED, CHECKS_FAIL, REASON_IPV6_DISABLED,
                 "IPv6 is disabled in the kernel (there is no /proc/sys/net/ipv6; "
                 "ipv6.disable=1 on the kernel command line?)");
    else if (l->disable_ipv6 > 0)
        add_item(c->res, CHECK_IPV6_ENABLED, CHECKS_FAIL, REASON_IPV6_DISABLED,
                 "IPv6 is disabled on %s (net.ipv6.conf.%s.disable_ipv6 = %d)", c->ifname,
                 c->ifname, l->disable_ipv6);
    else if (l->disable_ipv6 < 0)
        add_item(c->res, CHECK_IPV6_ENABLED, CHECKS_FAIL, REASON_IPV6_DISABLED,
                 "IPv6 is not available on %s (there is no /proc/sys/net/ipv6/conf/%s)",
                 c->ifname, c->ifname);
    if (!added_since(c->res, mark))
        add_item(c->res, CHECK_IPV6_ENABLED, CHECKS_PASS, REASON_OK,
                 "IPv6 is enabled on %s, which is up with MTU %u", c->ifname, l->mtu);
}

static void check_link_local(struct ctx *c)
{
    const struct snapshot_addr *good = NULL;
    size_t n_failed = 0;
    for (size_t i = 0; i < c->snap->n_addrs; i++) {
        const struct snapshot_addr *a = &c->snap->addrs[i];
        if (a->ifindex != c->link->ifindex || a->local.addr.family != AF_INET6 ||
            !ip_addr_is_link_local(&a->local.addr))
            continue;
        if (a->flags & IFA_F_DADFAILED)
            n_failed++;
        else if (!good || ((good->flags & IFA_F_TENTATIVE) && !(a->flags & IFA_F_TENTATIVE)))
            good = a;
    }
    char p[IP_PREFIX_STRLEN];
    if (n_failed) {
        struct strbuf sb;
        strbuf_init(&sb);
        size_t k = 0;
        for (size_t i = 0; i < c->snap->n_addrs; i++) {
            const struct snapshot_addr *a = &c->snap->addrs[i];
            if (a->ifindex == c->link->ifindex && a->local.addr.family == AF_INET6 &&
                ip_addr_is_link_local(&a->local.addr) && (a->flags & IFA_F_DADFAILED))
                list_append(&sb, k++, n_failed, fmt_prefix(&a->local, p));
        }
        _cleanup_free_ char *list = strbuf_steal(&sb);
        add_item(c->res, CHECK_LINK_LOCAL, CHECKS_FAIL, REASON_DAD_FAILED,
                 "link-local address%s %s on %s failed duplicate address detection "
                 "(another node on the link uses %s)", n_failed == 1 ? "" : "es", list, c->ifname,
                 n_failed == 1 ? "it" : "them");
        return;
    }
    if (!good) {
        add_item(c->res, CHECK_LINK_LOCAL, CHECKS_FAIL, REASON_NO_LINK_LOCAL,
                 "%s has no IPv6 link-local address", c->ifname);
        return;
    }
    add_item(c->res, CHECK_LINK_LOCAL, CHECKS_PASS, REASON_OK, "link-local address %s on %s%s",
             fmt_prefix(&good->local, p), c->ifname,
             (good->flags & IFA_F_TENTATIVE) ? " (tentative: DAD in progress)" : "");
}

static void check_ipv6_global(struct ctx *c)
{
    const struct desired_segment *seg = c->seg;
    bool have_prefix = seg->ipv6_prefix.addr.family == AF_INET6;
    bool have_plan = seg->plan_ipv6.family == AF_INET6;
    char pfx[IP_PREFIX_STRLEN] = "", buf[IP_PREFIX_STRLEN];
    if (have_prefix)
        fmt_prefix(&seg->ipv6_prefix, pfx);

    const struct snapshot_addr *usable_in = NULL, *tentative_in = NULL, *deprecated_in = NULL;
    size_t n_outside = 0, n_dadfailed = 0;
    for (size_t i = 0; i < c->snap->n_addrs; i++) {
        const struct snapshot_addr *a = &c->snap->addrs[i];
        if (a->ifindex != c->link->ifindex || !is_v6_global(a))
            continue;
        bool planned = have_plan && ip_addr_equal(&a->local.addr, &seg->plan_ipv6);
        bool inside = !have_prefix || planned || ip_prefix_contains(&seg->ipv6_prefix, &a->local.addr);
        if (a->flags & IFA_F_DADFAILED) {
            n_dadfailed++;
        } else if (!inside) {
            if (addr_usable(a))
                n_outside++;
        } else if (addr_usable(a)) {
            /* Prefer the planned address when there are several. */
            if (!usable_in || planned)
                usable_in = a;
        } else if (a->flags & IFA_F_TENTATIVE) {
            if (!tentative_in || planned)
                tentative_in = a;
        } else if (a->flags & IFA_F_DEPRECATED) {
            if (!deprecated_in || planned)
                deprecated_in = a;
        }
    }

    if (n_dadfailed) {
        struct strbuf sb;
        strbuf_init(&sb);
        size_t k = 0;
        for (size_t i = 0; i < c->snap->n_addrs; i++) {
            const struct snapshot_addr *a = &c->snap->addrs[i];
            if (a->ifindex == c->link->ifindex && is_v6_global(a) && (a->flags & IFA_F_DADFAILED))
                list_append(&sb, k++, n_dadfailed, fmt_prefix(&a->local, buf));
        }
        _cleanup_free_ char *list = strbuf_steal(&sb);
        add_item(c->res, CHECK_IPV6_GLOBAL_ADDRESS, CHECKS_FAIL, REASON_IPV6_DAD_FAILED,
                 "address%s %s on %s failed duplicate address detection (another host on the "
                 "link uses %s)", n_dadfailed == 1 ? "" : "es", list, c->ifname,
                 n_dadfailed == 1 ? "it" : "them");
    }

    if (!usable_in) {
        if (tentative_in)
            add_item(c->res, CHECK_IPV6_GLOBAL_ADDRESS, CHECKS_FAIL, REASON_IPV6_TENTATIVE,
                     "address %s on %s is tentative (DAD in progress)",
                     fmt_prefix(&tentative_in->local, buf), c->ifname);
        else if (deprecated_in)
            add_item(c->res, CHECK_IPV6_GLOBAL_ADDRESS, CHECKS_FAIL, REASON_IPV6_DEPRECATED,
                     "address %s on %s is deprecated (its preferred lifetime has ended) and "
                     "there is no other usable global address%s%s",
                     fmt_prefix(&deprecated_in->local, buf), c->ifname,
                     have_prefix ? " inside " : "", pfx);
        else if (n_dadfailed == 0 && n_outside == 0) {
            char plan[IP_ADDR_STRLEN];
            if (have_prefix)
                add_item(c->res, CHECK_IPV6_GLOBAL_ADDRESS, CHECKS_FAIL, REASON_NO_GLOBAL_IPV6,
                         "%s has no global IPv6 address inside %s%s%s%s", c->ifname, pfx,
                         have_plan ? " (planned: " : "",
                         have_plan ? fmt_addr(&seg->plan_ipv6, plan) : "", have_plan ? ")" : "");
            else
                add_item(c->res, CHECK_IPV6_GLOBAL_ADDRESS, CHECKS_FAIL, REASON_NO_GLOBAL_IPV6,
                         "%s has no global IPv6 address", c->ifname);
        }
    }

    if (n_outside > 0) {
        struct strbuf sb;
        strbuf_init(&sb);
        size_t k = 0;
        for (size_t i = 0; i < c->snap->n_addrs; i++) {
            const struct snapshot_addr *a = &c->snap->addrs[i];
            if (a->ifindex != c->link->ifindex || !is_v6_global(a) || !addr_usable(a) ||
                ip_prefix_contains(&seg->ipv6_prefix, &a->local.addr) ||
                (have_plan && ip_addr_equal(&a->local.addr, &seg->plan_ipv6)))
                continue;
            list_append(&sb, k++, n_outside, fmt_prefix(&a->local, buf));
        }
        _cleanup_free_ char *list = strbuf_steal(&sb);
        /* Beside a usable address inside the prefix, an extra one outside
         * it is a warning.  Alone it blocks: the segment's gateway has no
         * route back to it, so the host is not reachable over IPv6 there. */
        enum checks_severity sev = usable_in ? CHECKS_WARN : CHECKS_FAIL;
        char plan[IP_ADDR_STRLEN];
        _cleanup_free_ char *alone = usable_in ? xstrdup("") :
            xasprintf(", and there is no usable address inside it%s%s%s",
                      have_plan ? " (planned: " : "",
                      have_plan ? fmt_addr(&seg->plan_ipv6, plan) : "", have_plan ? ")" : "");
        if (n_outside == 1)
            add_item(c->res, CHECK_IPV6_GLOBAL_ADDRESS, sev, REASON_IPV6_OUTSIDE_PREFIX,
                     "address %s on %s is outside the segment's prefix %s%s", list, c->ifname,
                     pfx, alone);
        else
            add_item(c->res, CHECK_IPV6_GLOBAL_ADDRESS, sev, REASON_IPV6_OUTSIDE_PREFIX,
                     "%zu addresses on %s are outside the segment's prefix %s: %s%s", n_outside,
                     c->ifname, pfx, list, alone);
    }

    if (usable_in && n_dadfailed == 0 && n_outside == 0) {
        char plan[IP_ADDR_STRLEN];
        bool plan_missing = have_plan && !ip_addr_equal(&usable_in->local.addr, &seg->plan_ipv6);
        add_item(c->res, CHECK_IPV6_GLOBAL_ADDRESS, CHECKS_PASS, REASON_OK,
                 "address %s on %s is usable%s%s%s%s%s", fmt_prefix(&usable_in->local, buf),
                 c->ifname, have_prefix ? " and inside " : "", pfx,
                 plan_missing ? " (the planned address " : "",
                 plan_missing ? fmt_addr(&seg->plan_ipv6, plan) : "",
                 plan_missing ? " is not configured)" : "");
    }
}

static void check_ipv4_address(struct ctx *c)
{
    const struct desired_segment *seg = c->seg;
    if (seg->ipv4_prefix.addr.family != AF_INET) {
        add_item(c->res, CHECK_IPV4_ADDRESS, CHECKS_PASS, REASON_OK,
                 "no IPv4 prefix is planned for this segment");
        return;
    }
    char pfx[IP_PREFIX_STRLEN], buf[IP_PREFIX_STRLEN];
    fmt_prefix(&seg->ipv4_prefix, pfx);
    const struct snapshot_addr *inside = NULL;
    size_t n_other = 0;
    for (size_t i = 0; i < c->snap->n_addrs; i++) {
        const struct snapshot_addr *a = &c->snap->addrs[i];
        if (a->ifindex != c->link->ifindex || a->local.addr.family != AF_INET)
            continue;
        if (ip_prefix_contains(&seg->ipv4_prefix, &a->local.addr)) {
            if (!inside || (seg->plan_ipv4.family && ip_addr_equal(&a->local.addr, &seg->plan_ipv4)))
                inside = a;
        } else
            n_other++;
    }
    if (inside) {
        add_item(c->res, CHECK_IPV4_ADDRESS, CHECKS_PASS, REASON_OK,
                 "address %s on %s is inside %s", fmt_prefix(&inside->local, buf), c->ifname, pfx);
        return;
    }
    if (n_other == 0) {
        add_item(c->res, CHECK_IPV4_ADDRESS, CHECKS_FAIL, REASON_NO_IPV4_IN_PREFIX,
                 "%s has no IPv4 address inside %s (it has no IPv4 address at all)", c->ifname, pfx);
        return;
    }
    struct strbuf sb;
    strbuf_init(&sb);
    size_t k = 0;
    for (size_t i = 0; i < c->snap->n_addrs; i++) {
        const struct snapshot_addr *a = &c->snap->addrs[i];
        if (a->ifindex == c->link->ifindex && a->local.addr.family == AF_INET)
            list_append(&sb, k++, n_other, fmt_prefix(&a->local, buf));
    }
    _cleanup_free_ char *list = strbuf_steal(&sb);
    add_item(c->res, CHECK_IPV4_ADDRESS, CHECKS_FAIL, REASON_NO_IPV4_IN_PREFIX,
             "%s has no IPv4 address inside %s (it has %s)", c->ifname, pfx, list);
}

static void check_ipv6_default_route(struct ctx *c)
{
    const struct desired_segment *seg = c->seg;
    char nh[128], nh4[128], a[IP_ADDR_STRLEN], d[IP_PREFIX_STRLEN];
    const struct snapshot_route *v6 = default_route_on(c, AF_INET6);
    if (v6) {
        add_item(c->res, CHECK_IPV6_DEFAULT_ROUTE, CHECKS_PASS, REASON_OK,
                 "IPv6 default route %s", describe_nexthop(c, v6, nh, sizeof nh));
        return;
    }
    const struct snapshot_route *elsewhere = default_route_elsewhere(c, AF_INET6);
    char hint[160] = "";
    if (elsewhere)
        snprintf(hint, sizeof hint, " (the IPv6 default route goes %s)",
                 describe_nexthop(c, elsewhere, nh, sizeof nh));

    const struct snapshot_route *v4 = default_route_on(c, AF_INET);
    if (v4) {
        add_item(c->res, CHECK_IPV6_DEFAULT_ROUTE, CHECKS_FAIL, REASON_NO_IPV6_DEFAULT_ROUTE,
                 "an IPv4 default route exists %s but there is no IPv6 default route on %s%s",
                 describe_nexthop(c, v4, nh4, sizeof nh4), c->ifname, hint);
        return;
    }

    /* No IPv4 default route here: IPv4 routes via a gateway on this link
     * need an IPv6 route via the segment's IPv6 gateway. */
    const struct snapshot_route *v4gw = NULL;
    for (size_t i = 0; i < c->snap->n_routes && !v4gw; i++) {
        const struct snapshot_route *rt = &c->snap->routes[i];
        if (rt->dst.addr.family == AF_INET && route_counts(rt) && rt->oif == c->link->ifindex &&
            rt->gateway.family == AF_INET)
            v4gw = rt;
    }
    if (!v4gw) {
        add_item(c->res, CHECK_IPV6_DEFAULT_ROUTE, CHECKS_PASS, REASON_OK,
                 "no IPv4 default route or IPv4 route via a gateway uses %s, so no IPv6 one is needed",
                 c->ifname);
        return;
    }
    const struct snapshot_route *v6gw = NULL;
    for (size_t i = 0; i < c->snap->n_routes && !v6gw; i++) {
        const struct snapshot_route *rt = &c->snap->routes[i];
        if (rt->dst.addr.family == AF_INET6 && route_counts(rt) && rt->oif == c->link->ifindex &&
            rt->gateway.family == AF_INET6 &&
            (!seg->ipv6_gateway.family || ip_addr_equal(&rt->gateway, &seg->ipv6_gateway)))
            v6gw = rt;
    }
    if (v6gw) {
        add_item(c->res, CHECK_IPV6_DEFAULT_ROUTE, CHECKS_PASS, REASON_OK,
                 "IPv4 route %s has an IPv6 counterpart: %s %s",
                 fmt_prefix(&v4gw->dst, d), fmt_prefix(&v6gw->dst, nh4),
                 describe_nexthop(c, v6gw, nh, sizeof nh));
        return;
    }
    char a4[IP_ADDR_STRLEN];
    if (seg->ipv6_gateway.family)
        add_item(c->res, CHECK_IPV6_DEFAULT_ROUTE, CHECKS_FAIL, REASON_NO_IPV6_DEFAULT_ROUTE,
                 "an IPv4 route to %s exists via %s on %s but there is neither an IPv6 default "
                 "route nor an IPv6 route via %s%s", fmt_prefix(&v4gw->dst, d),
                 fmt_addr(&v4gw->gateway, a4), c->ifname, fmt_addr(&seg->ipv6_gateway, a), hint);
    else
        add_item(c->res, CHECK_IPV6_DEFAULT_ROUTE, CHECKS_FAIL, REASON_NO_IPV6_DEFAULT_ROUTE,
                 "an IPv4 route to %s exists via %s on %s but there is neither an IPv6 default "
                 "route nor an IPv6 route via a gateway on %s%s", fmt_prefix(&v4gw->dst, d),
                 fmt_addr(&v4gw->gateway, a4), c->ifname, c->ifname, hint);
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
    default: return "unknown";
    }
}

static void check_gateway_neighbour(struct ctx *c)
{
    /* The planned gateway and every next hop of an IPv6 default route here. */
    struct ip_addr gws[16];
    size_t n = 0;
    if (c->seg->ipv6_gateway.family == AF_INET6)
        gws[n++] = c->seg->ipv6_gateway;
    for (size_t i = 0; i < c->snap->n_routes && n < YG_ARRAY_SIZE(gws); i++) {
        const struct snapshot_route *rt = &c->snap->routes[i];
        if (!route_is_default(rt, AF_INET6) || rt->oif != c->link->ifindex ||
            rt->gateway.family != AF_INET6)
            continue;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = ip_addr_equal(&gws[j], &rt->gateway);
        if (!dup)
            gws[n++] = rt->gateway;
    }
    if (n == 0) {
        add_item(c->res, CHECK_GATEWAY_NEIGHBOUR, CHECKS_PASS, REASON_OK,
                 "no IPv6 gateway is planned or routed on %s", c->ifname);
        return;
    }
    size_t mark = c->res->n_items;
    struct strbuf ok;
    strbuf_init(&ok);
    for (size_t i = 0; i < n; i++) {
        char a[IP_ADDR_STRLEN];
        fmt_addr(&gws[i], a);
        const struct snapshot_neigh *ne = snapshot_find_neigh(c->snap, c->link->ifindex, &gws[i]);
        if (ok.len)
            strbuf_puts(&ok, "; ");
        if (!ne || ne->state == NUD_NONE) {
            strbuf_printf(&ok, "gateway %s on %s has no neighbour entry yet (no traffic has been sent to it)",
                          a, c->ifname);
        } else if (ne->state & NUD_FAILED) {
            add_item(c->res, CHECK_GATEWAY_NEIGHBOUR, CHECKS_FAIL, REASON_GATEWAY_NEIGH_FAILED,
                     ne->dropped
                     ? "gateway %s on %s does not answer neighbour solicitations (neighbour state "
                       "FAILED; the kernel has since dropped the entry)"
                     : "gateway %s on %s does not answer neighbour solicitations (neighbour state FAILED)",
                     a, c->ifname);
        } else if (ne->state & NUD_INCOMPLETE) {
            add_item(c->res, CHECK_GATEWAY_NEIGHBOUR, CHECKS_FAIL, REASON_GATEWAY_NEIGH_INCOMPLETE,
                     "gateway %s on %s has not answered neighbour solicitation yet (neighbour state INCOMPLETE)",
                     a, c->ifname);
        } else if (!(ne->state & (NUD_PERMANENT | NUD_NOARP)) && !(ne->flags & NTF_ROUTER)) {
            add_item(c->res, CHECK_GATEWAY_NEIGHBOUR, CHECKS_FAIL, REASON_GATEWAY_NOT_ROUTER,
                     "gateway %s on %s answers but without the router flag: it does not forward "
                     "IPv6 (neighbour state %s)", a, c->ifname, nud_name(ne->state));
        } else {
            strbuf_printf(&ok, "gateway %s on %s is reachable as a router (neighbour state %s)",
                          a, c->ifname, nud_name(ne->state));
        }
    }
    _cleanup_free_ char *text = strbuf_steal(&ok);
    if (!added_since(c->res, mark))
        add_item(c->res, CHECK_GATEWAY_NEIGHBOUR, CHECKS_PASS, REASON_OK, "%s", text);
}

static void check_accept_ra(struct ctx *c)
{
    const struct snapshot_link *l = c->link;
    const char *ifn = c->ifname;
    bool disabled = l->accept_ra == 0;
    bool ignored = l->accept_ra == 1 && l->forwarding > 0;
    if (c->seg->slaac) {
        if (l->accept_ra < 0)
            add_item(c->res, CHECK_ACCEPT_RA, CHECKS_FAIL, REASON_RA_DISABLED,
                     "the segment uses SLAAC but %s cannot accept router advertisements: IPv6 is off on it",
                     ifn);
        else if (disabled)
            add_item(c->res, CHECK_ACCEPT_RA, CHECKS_FAIL, REASON_RA_DISABLED,
                     "the segment uses SLAAC but %s ignores router advertisements "
                     "(net.ipv6.conf.%s.accept_ra = 0)", ifn, ifn);
        else if (ignored)
            add_item(c->res, CHECK_ACCEPT_RA, CHECKS_FAIL, REASON_RA_IGNORED_FORWARDING,
                     "the segment uses SLAAC but %s ignores router advertisements because it forwards "
                     "(forwarding = 1, accept_ra = 1); set net.ipv6.conf.%s.accept_ra = 2", ifn, ifn);
        else
            add_item(c->res, CHECK_ACCEPT_RA, CHECKS_PASS, REASON_OK,
                     "%s accepts router advertisements for SLAAC (accept_ra = %d, forwarding = %d)",
                     ifn, l->accept_ra, l->forwarding);
        return;
    }
    /* No SLAAC: only a default route learned from RAs that are now ignored
     * matters, because it will expire and not be renewed. */
    const struct snapshot_route *ra = NULL;
    for (size_t i = 0; i < c->snap->n_routes && !ra; i++) {
        const struct snapshot_route *rt = &c->snap->routes[i];
        if (route_is_default(rt, AF_INET6) && rt->oif == l->ifindex && rt->protocol == RTPROT_RA)
            ra = rt;
    }
    char nh[128];
    if (ra && disabled)
        add_item(c->res, CHECK_ACCEPT_RA, CHECKS_WARN, REASON_RA_DISABLED,
                 "the IPv6 default route %s was learned from a router advertisement but %s now "
                 "ignores them (accept_ra = 0): it will expire", describe_nexthop(c, ra, nh, sizeof nh), ifn);
    else if (ra && ignored)
        add_item(c->res, CHECK_ACCEPT_RA, CHECKS_WARN, REASON_RA_IGNORED_FORWARDING,
                 "the IPv6 default route %s was learned from a router advertisement but %s now "
                 "ignores them because it forwards (forwarding = 1, accept_ra = 1): it will expire; "
                 "set net.ipv6.conf.%s.accept_ra = 2 or add a static default route",
                 describe_nexthop(c, ra, nh, sizeof nh), ifn, ifn);
    else if (l->accept_ra < 0)
        add_item(c->res, CHECK_ACCEPT_RA, CHECKS_PASS, REASON_OK,
                 "the segment does not use SLAAC");
    else
        add_item(c->res, CHECK_ACCEPT_RA, CHECKS_PASS, REASON_OK,
                 "the segment does not use SLAAC (accept_ra = %d, forwarding = %d on %s)",
                 l->accept_ra, l->forwarding, ifn);
}

/* Whether the listener's address is one of the link's or within the segment. */
static bool address_on_link(const struct ctx *c, const struct ip_addr *a)
{
    for (size_t i = 0; i < c->snap->n_addrs; i++) {
        const struct snapshot_addr *x = &c->snap->addrs[i];
        if (x->ifindex == c->link->ifindex && ip_addr_equal(&x->local.addr, a))
            return true;
    }
    const struct ip_prefix *p = a->family == AF_INET ? &c->seg->ipv4_prefix : &c->seg->ipv6_prefix;
    return p->addr.family == a->family && ip_prefix_contains(p, a);
}

/* The address a listener accepts IPv4 connections on, or family 0 when
 * it accepts none (a v6only or a plain IPv6 address). */
static struct ip_addr listener_v4_addr(const struct snapshot_listener *l)
{
    struct ip_addr none = { 0 };
    if (l->family == AF_INET)
        return l->addr;
    if (ip_addr_is_v4_mapped(&l->addr)) {
        struct ip_addr v4;
        ip_addr_from_bytes(AF_INET, l->addr.bytes + 12, &v4);
        return v4;
    }
    return none;
}

/* Whether the listener is reachable from this segment at all. */
static bool listener_on_segment(const struct ctx *c, const struct snapshot_listener *l,
                                const struct ip_addr *a)
{
    if (l->bound_ifindex && l->bound_ifindex != c->link->ifindex)
        return false;
    if (ip_addr_is_loopback(a))
        return false;
    return ip_addr_is_unspecified(a) || address_on_link(c, a);
}

static int compare_port(const void *a, const void *b)
{
    const struct snapshot_listener *x = *(const struct snapshot_listener *const *) a;
    const struct snapshot_listener *y = *(const struct snapshot_listener *const *) b;
    if (x->port != y->port)
        return x->port < y->port ? -1 : 1;
    return ip_addr_compare(&x->addr, &y->addr);
}

static void check_listeners(struct ctx *c)
{
    const struct snapshot *s = c->snap;
    if (!s->listeners_known) {
        add_item(c->res, CHECK_IPV4_ONLY_LISTENERS, CHECKS_PASS, REASON_OK,
                 "not checked: the kernel's list of listening sockets could not be read");
        return;
    }
    _cleanup_free_ const struct snapshot_listener **bad = xcalloc(s->n_listeners, sizeof *bad);
    size_t n_bad = 0, n_v4 = 0;
    for (size_t i = 0; i < s->n_listeners; i++) {
        const struct snapshot_listener *l = &s->listeners[i];
        struct ip_addr v4 = listener_v4_addr(l);
        if (!v4.family || !listener_on_segment(c, l, &v4))
            continue;
        /* A dual-stack [::] socket (v6only off) serves both families. */
        if (l->family == AF_INET6 && ip_addr_is_unspecified(&l->addr))
            continue;
        n_v4++;
        bool counterpart = false;
        for (size_t j = 0; j < s->n_listeners && !counterpart; j++) {
            const struct snapshot_listener *m = &s->listeners[j];
            counterpart = m->family == AF_INET6 && m->port == l->port &&
                          !ip_addr_is_v4_mapped(&m->addr) && listener_on_segment(c, m, &m->addr);
        }
        bool dup = false;
        for (size_t j = 0; j < n_bad && !dup; j++)
            dup = bad[j]->port == l->port && ip_addr_equal(&bad[j]->addr, &l->addr);
        if (!counterpart && !dup)
            bad[n_bad++] = l;
    }
    if (n_bad == 0) {
        add_item(c->res, CHECK_IPV4_ONLY_LISTENERS, CHECKS_PASS, REASON_OK,
                 n_v4 ? "every TCP port listening on IPv4 on %s also listens on IPv6"
                      : "no TCP socket listens on IPv4 only on %s", c->ifname);
        return;
    }
    qsort(bad, n_bad, sizeof *bad, compare_port);
    struct strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < n_bad; i++) {
        char a[IP_ADDR_STRLEN], text[IP_ADDR_STRLEN + 8];
        struct ip_addr v4 = listener_v4_addr(bad[i]);
        snprintf(text, sizeof text, "%s:%u", fmt_addr(&v4, a), bad[i]->port);
        list_append(&sb, i, n_bad, text);
    }
    _cleanup_free_ char *list = strbuf_steal(&sb);
    add_item(c->res, CHECK_IPV4_ONLY_LISTENERS, CHECKS_WARN, REASON_IPV4_ONLY_LISTENER,
             "%zu TCP listener%s reachable on %s accept%s IPv4 only, with no IPv6 listener on the "
             "same port: %s", n_bad, n_bad == 1 ? "" : "s", c->ifname, n_bad == 1 ? "s" : "", list);
}

void checks_evaluate(const struct snapshot *snap, const struct desired_segment *seg,
                     struct checks_result *ret)
{
    *ret = (struct checks_result) {
        .segment = xstrdup(seg->name),
        .interface = xstrdup(seg->interface),
        .status = CHECKS_PASS,
    };
    struct ctx c = { .snap = snap, .seg = seg, .ifname = seg->interface, .res = ret };
    c.link = snapshot_find_link(snap, seg->interface);
    if (!c.link) {
        add_item(ret, CHECK_IPV6_ENABLED, CHECKS_FAIL, REASON_INTERFACE_MISSING,
                 "interface %s does not exist on this host", seg->interface);
        return;
    }
    check_ipv6_enabled(&c);
    check_link_local(&c);
    check_ipv6_global(&c);
    check_ipv4_address(&c);
    check_ipv6_default_route(&c);
    check_gateway_neighbour(&c);
    check_accept_ra(&c);
    check_listeners(&c);
}

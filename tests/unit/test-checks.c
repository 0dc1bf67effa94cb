/* Unit tests for the agent (agents/): every check and reason code of
 * doc/AGENT.md on hand-built snapshots, the desired state parser, the
 * spool and the backoff function. */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checks.h"
#include "desired.h"
#include "report.h"
#include "sha256.h"
#include "snapshot.h"
#include "spool.h"
#include "util.h"

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

/* ---- building snapshots by hand ---- */

#define IF_SEG 2
#define IF_OTHER 3

static struct ip_addr A(const char *s)
{
    struct ip_addr a;
    if (ip_addr_parse(s, &a, NULL) < 0)
        fail_msg("bad address '%s' in the test", s);
    return a;
}

static struct ip_prefix P(const char *s)
{
    struct ip_prefix p;
    if (ip_addr_prefix_parse(s, &p, NULL) < 0)
        fail_msg("bad prefix '%s' in the test", s);
    return p;
}

static void add_addr(struct snapshot *s, int ifindex, const char *text, uint32_t flags)
{
    struct snapshot_addr a = { .ifindex = ifindex, .local = P(text), .flags = flags };
    a.scope = ip_addr_is_link_local(&a.local.addr) ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    snapshot_add_addr(s, &a);
}

static void add_route(struct snapshot *s, const char *dst, const char *gw, int oif, uint8_t protocol)
{
    struct snapshot_route r = {
        .dst = P(dst), .oif = oif, .table = RT_TABLE_MAIN, .type = RTN_UNICAST,
        .protocol = protocol,
    };
    if (gw)
        r.gateway = A(gw);
    snapshot_add_route(s, &r);
}

static void add_listener(struct snapshot *s, int family, const char *addr, uint16_t port, bool v6only)
{
    struct snapshot_listener l = { .family = family, .addr = A(addr), .port = port, .v6only = v6only };
    snapshot_add_listener(s, &l);
}

/* A host that passes every check on segment health-dmz (doc/AGENT.md). */
static struct snapshot *good_snapshot(void)
{
    struct snapshot *s = snapshot_new();
    s->ipv6_in_kernel = true;
    s->listeners_known = true;
    struct snapshot_link lo = { .ifindex = 1, .name = "lo", .mtu = 65536, .flags = IFF_UP | IFF_LOWER_UP,
                                .disable_ipv6 = -1, .accept_ra = -1, .forwarding = -1 };
    struct snapshot_link br = { .ifindex = IF_SEG, .name = "br-health", .mtu = 1500,
                                .flags = IFF_UP | IFF_LOWER_UP, .operstate = 6,
                                .disable_ipv6 = 0, .accept_ra = 1, .forwarding = 0 };
    struct snapshot_link other = { .ifindex = IF_OTHER, .name = "eth1", .mtu = 1500,
                                   .flags = IFF_UP | IFF_LOWER_UP, .operstate = 6,
                                   .disable_ipv6 = -1, .accept_ra = -1, .forwarding = -1 };
    snapshot_add_link(s, &lo);
    snapshot_add_link(s, &br);
    snapshot_add_link(s, &other);
    add_addr(s, 1, "127.0.0.1/8", IFA_F_PERMANENT);
    add_addr(s, 1, "::1/128", IFA_F_PERMANENT);
    add_addr(s, IF_SEG, "fe80::5054:ff:fe12:3456/64", IFA_F_PERMANENT);
    add_addr(s, IF_SEG, "2001:db8:10::21/64", IFA_F_PERMANENT);
    add_addr(s, IF_SEG, "198.51.100.21/24", IFA_F_PERMANENT);
    add_addr(s, IF_OTHER, "203.0.113.5/24", IFA_F_PERMANENT);
    add_route(s, "0.0.0.0/0", "198.51.100.1", IF_SEG, RTPROT_STATIC);
    add_route(s, "198.51.100.0/24", NULL, IF_SEG, RTPROT_KERNEL);
    add_route(s, "::/0", "2001:db8:10::1", IF_SEG, RTPROT_STATIC);
    add_route(s, "2001:db8:10::/64", NULL, IF_SEG, RTPROT_KERNEL);
    struct snapshot_neigh gw = { .ifindex = IF_SEG, .addr = A("2001:db8:10::1"),
                                 .state = NUD_REACHABLE, .flags = NTF_ROUTER };
    snapshot_add_neigh(s, &gw);
    add_listener(s, AF_INET, "0.0.0.0", 22, false);
    add_listener(s, AF_INET6, "::", 22, true);
    add_listener(s, AF_INET, "127.0.0.1", 631, false);          /* loopback only: ignored */
    add_listener(s, AF_INET6, "::", 443, false);                /* dual-stack socket */
    return s;
}

static struct desired_segment good_segment(void)
{
    struct desired_segment seg = {
        .name = (char *) "health-dmz", .interface = (char *) "br-health",
        .ipv4_prefix = P("198.51.100.0/24"), .ipv4_gateway = A("198.51.100.1"),
        .ipv6_prefix = P("2001:db8:10::/64"), .ipv6_gateway = A("2001:db8:10::1"),
        .plan_ipv4 = A("198.51.100.21"), .plan_ipv6 = A("2001:db8:10::21"),
    };
    return seg;
}

static struct snapshot_link *link_named(struct snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (streq(s->links[i].name, name))
            return &s->links[i];
    fail_msg("no link '%s'", name);
    return NULL;
}

static struct snapshot_addr *addr_text(struct snapshot *s, const char *text)
{
    struct ip_prefix p = P(text);
    for (size_t i = 0; i < s->n_addrs; i++)
        if (ip_prefix_equal(&s->addrs[i].local, &p))
            return &s->addrs[i];
    fail_msg("no address '%s'", text);
    return NULL;
}

static void remove_addr(struct snapshot *s, const char *text)
{
    struct snapshot_addr *a = addr_text(s, text);
    size_t i = (size_t) (a - s->addrs);
    memmove(&s->addrs[i], &s->addrs[i + 1], (s->n_addrs - i - 1) * sizeof *s->addrs);
    s->n_addrs--;
}

static void remove_route(struct snapshot *s, const char *dst)
{
    struct ip_prefix p = P(dst);
    for (size_t i = 0; i < s->n_routes; i++)
        if (ip_prefix_equal(&s->routes[i].dst, &p)) {
            memmove(&s->routes[i], &s->routes[i + 1], (s->n_routes - i - 1) * sizeof *s->routes);
            s->n_routes--;
            return;
        }
    fail_msg("no route '%s'", dst);
}

/* ---- the cases: one or more per reason code ---- */

static void m_missing(struct snapshot *s, struct desired_segment *g) { g->interface = (char *) "br-gone"; }
static void m_admin_down(struct snapshot *s, struct desired_segment *g)
{
    link_named(s, "br-health")->flags &= ~(unsigned) (IFF_UP | IFF_LOWER_UP);
}
static void m_no_carrier(struct snapshot *s, struct desired_segment *g)
{
    struct snapshot_link *l = link_named(s, "br-health");
    l->flags &= ~(unsigned) IFF_LOWER_UP;
    l->operstate = 2;
}
static void m_mtu(struct snapshot *s, struct desired_segment *g)
{
    struct snapshot_link *l = link_named(s, "br-health");
    l->mtu = 1200;
    l->disable_ipv6 = l->accept_ra = l->forwarding = -1;
}
static void m_disable_ipv6(struct snapshot *s, struct desired_segment *g)
{
    link_named(s, "br-health")->disable_ipv6 = 1;
}
static void m_no_ipv6_kernel(struct snapshot *s, struct desired_segment *g)
{
    s->ipv6_in_kernel = false;
    link_named(s, "br-health")->disable_ipv6 = -1;
}
static void m_no_conf_dir(struct snapshot *s, struct desired_segment *g)
{
    link_named(s, "br-health")->disable_ipv6 = -1;
}
static void m_no_ll(struct snapshot *s, struct desired_segment *g) { remove_addr(s, "fe80::5054:ff:fe12:3456/64"); }
static void m_ll_dad(struct snapshot *s, struct desired_segment *g)
{
    addr_text(s, "fe80::5054:ff:fe12:3456/64")->flags |= IFA_F_DADFAILED | IFA_F_TENTATIVE;
}
static void m_no_global(struct snapshot *s, struct desired_segment *g) { remove_addr(s, "2001:db8:10::21/64"); }
static void m_no_global_no_prefix(struct snapshot *s, struct desired_segment *g)
{
    remove_addr(s, "2001:db8:10::21/64");
    g->ipv6_prefix = (struct ip_prefix) { 0 };
    g->plan_ipv6 = (struct ip_addr) { 0 };
}
static void m_tentative(struct snapshot *s, struct desired_segment *g)
{
    addr_text(s, "2001:db8:10::21/64")->flags |= IFA_F_TENTATIVE;
}
static void m_deprecated(struct snapshot *s, struct desired_segment *g)
{
    addr_text(s, "2001:db8:10::21/64")->flags |= IFA_F_DEPRECATED;
}
static void m_global_dad(struct snapshot *s, struct desired_segment *g)
{
    addr_text(s, "2001:db8:10::21/64")->flags |= IFA_F_DADFAILED | IFA_F_TENTATIVE;
}
static void m_outside(struct snapshot *s, struct desired_segment *g)
{
    addr_text(s, "2001:db8:10::21/64")->local = P("2001:db8:99::40/64");
}
static void m_outside_extra(struct snapshot *s, struct desired_segment *g)
{
    add_addr(s, IF_SEG, "2001:db8:99::40/64", IFA_F_PERMANENT);
}
static void m_no_ipv4(struct snapshot *s, struct desired_segment *g)
{
    addr_text(s, "198.51.100.21/24")->local = P("10.0.0.5/24");
}
static void m_no_ipv4_at_all(struct snapshot *s, struct desired_segment *g) { remove_addr(s, "198.51.100.21/24"); }
static void m_no_v6_default(struct snapshot *s, struct desired_segment *g) { remove_route(s, "::/0"); }
static void m_v6_default_elsewhere(struct snapshot *s, struct desired_segment *g)
{
    remove_route(s, "::/0");
    add_route(s, "::/0", "fe80::1", IF_OTHER, RTPROT_STATIC);
}
static void m_v4_route_no_v6(struct snapshot *s, struct desired_segment *g)
{
    remove_route(s, "::/0");
    remove_route(s, "0.0.0.0/0");
    add_route(s, "10.0.0.0/8", "198.51.100.1", IF_SEG, RTPROT_STATIC);
}
static void m_neigh_failed(struct snapshot *s, struct desired_segment *g) { s->neighs[0].state = NUD_FAILED; }
static void m_neigh_incomplete(struct snapshot *s, struct desired_segment *g) { s->neighs[0].state = NUD_INCOMPLETE; }
static void m_not_router(struct snapshot *s, struct desired_segment *g) { s->neighs[0].flags = 0; }
static void m_route_dead_gw(struct snapshot *s, struct desired_segment *g)
{
    /* The default route points at a gateway nobody has; the planned one is fine. */
    remove_route(s, "::/0");
    add_route(s, "::/0", "2001:db8:10::99", IF_SEG, RTPROT_STATIC);
    struct snapshot_neigh n = { .ifindex = IF_SEG, .addr = A("2001:db8:10::99"), .state = NUD_FAILED };
    snapshot_add_neigh(s, &n);
}
static void m_ra_forwarding(struct snapshot *s, struct desired_segment *g)
{
    g->slaac = true;
    link_named(s, "br-health")->forwarding = 1;
}
static void m_ra_disabled(struct snapshot *s, struct desired_segment *g)
{
    g->slaac = true;
    link_named(s, "br-health")->accept_ra = 0;
}
static void m_ra_route_forwarding(struct snapshot *s, struct desired_segment *g)
{
    remove_route(s, "::/0");
    add_route(s, "::/0", "fe80::1", IF_SEG, RTPROT_RA);
    link_named(s, "br-health")->forwarding = 1;
}
static void m_ra_route_disabled(struct snapshot *s, struct desired_segment *g)
{
    remove_route(s, "::/0");
    add_route(s, "::/0", "fe80::1", IF_SEG, RTPROT_RA);
    link_named(s, "br-health")->accept_ra = 0;
}
static void m_listener(struct snapshot *s, struct desired_segment *g)
{
    add_listener(s, AF_INET, "0.0.0.0", 8080, false);
    add_listener(s, AF_INET, "198.51.100.21", 5432, false);
    add_listener(s, AF_INET, "203.0.113.5", 9000, false);       /* other link: not this segment */
    add_listener(s, AF_INET6, "::1", 8080, false);              /* loopback is no counterpart */
}
static void m_listener_mapped(struct snapshot *s, struct desired_segment *g)
{
    add_listener(s, AF_INET6, "::ffff:198.51.100.21", 8443, false);
}

struct reason_case {
    const char *name;
    void (*mutate)(struct snapshot *, struct desired_segment *);
    enum checks_reason reason;
    enum checks_severity severity;
    enum checks_severity status;
    const char *message;        /* the exact message of the item with that reason */
};

static const struct reason_case cases[] = {
    { "interface missing", m_missing, REASON_INTERFACE_MISSING, CHECKS_FAIL, CHECKS_FAIL,
      "interface br-gone does not exist on this host" },
    { "admin down", m_admin_down, REASON_INTERFACE_DOWN, CHECKS_FAIL, CHECKS_FAIL,
      "interface br-health is administratively down" },
    { "no carrier", m_no_carrier, REASON_INTERFACE_DOWN, CHECKS_FAIL, CHECKS_FAIL,
      "interface br-health is up but has no carrier (operstate down)" },
    { "mtu", m_mtu, REASON_MTU_TOO_SMALL, CHECKS_FAIL, CHECKS_FAIL,
      "MTU 1200 on br-health is below the IPv6 minimum of 1280 (the kernel has turned IPv6 off on it)" },
    { "disable_ipv6", m_disable_ipv6, REASON_IPV6_DISABLED, CHECKS_FAIL, CHECKS_FAIL,
      "IPv6 is disabled on br-health (net.ipv6.conf.br-health.disable_ipv6 = 1)" },
    { "no ipv6 in kernel", m_no_ipv6_kernel, REASON_IPV6_DISABLED, CHECKS_FAIL, CHECKS_FAIL,
      "IPv6 is disabled in the kernel (there is no /proc/sys/net/ipv6; ipv6.disable=1 on the kernel command line?)" },
    { "no conf dir", m_no_conf_dir, REASON_IPV6_DISABLED, CHECKS_FAIL, CHECKS_FAIL,
      "IPv6 is not available on br-health (there is no /proc/sys/net/ipv6/conf/br-health)" },
    { "no link-local", m_no_ll, REASON_NO_LINK_LOCAL, CHECKS_FAIL, CHECKS_FAIL,
      "br-health has no IPv6 link-local address" },
    { "link-local DAD", m_ll_dad, REASON_DAD_FAILED, CHECKS_FAIL, CHECKS_FAIL,
      "link-local address fe80::5054:ff:fe12:3456/64 on br-health failed duplicate address detection "
      "(another node on the link uses it)" },
    { "no global", m_no_global, REASON_NO_GLOBAL_IPV6, CHECKS_FAIL, CHECKS_FAIL,
      "br-health has no global IPv6 address inside 2001:db8:10::/64 (planned: 2001:db8:10::21)" },
    { "no global, no plan", m_no_global_no_prefix, REASON_NO_GLOBAL_IPV6, CHECKS_FAIL, CHECKS_FAIL,
      "br-health has no global IPv6 address" },
    { "tentative", m_tentative, REASON_IPV6_TENTATIVE, CHECKS_FAIL, CHECKS_FAIL,
      "address 2001:db8:10::21/64 on br-health is tentative (DAD in progress)" },
    { "deprecated", m_deprecated, REASON_IPV6_DEPRECATED, CHECKS_FAIL, CHECKS_FAIL,
      "address 2001:db8:10::21/64 on br-health is deprecated (its preferred lifetime has ended) and "
      "there is no other usable global address inside 2001:db8:10::/64" },
    { "global DAD", m_global_dad, REASON_IPV6_DAD_FAILED, CHECKS_FAIL, CHECKS_FAIL,
      "address 2001:db8:10::21/64 on br-health failed duplicate address detection (another host on "
      "the link uses it)" },
    { "outside prefix only", m_outside, REASON_IPV6_OUTSIDE_PREFIX, CHECKS_FAIL, CHECKS_FAIL,
      "address 2001:db8:99::40/64 on br-health is outside the segment's prefix 2001:db8:10::/64, "
      "and there is no usable address inside it (planned: 2001:db8:10::21)" },
    { "outside prefix, extra", m_outside_extra, REASON_IPV6_OUTSIDE_PREFIX, CHECKS_WARN, CHECKS_WARN,
      "address 2001:db8:99::40/64 on br-health is outside the segment's prefix 2001:db8:10::/64" },
    { "no ipv4 in prefix", m_no_ipv4, REASON_NO_IPV4_IN_PREFIX, CHECKS_FAIL, CHECKS_FAIL,
      "br-health has no IPv4 address inside 198.51.100.0/24 (it has 10.0.0.5/24)" },
    { "no ipv4 at all", m_no_ipv4_at_all, REASON_NO_IPV4_IN_PREFIX, CHECKS_FAIL, CHECKS_FAIL,
      "br-health has no IPv4 address inside 198.51.100.0/24 (it has no IPv4 address at all)" },
    { "no v6 default", m_no_v6_default, REASON_NO_IPV6_DEFAULT_ROUTE, CHECKS_FAIL, CHECKS_FAIL,
      "an IPv4 default route exists via 198.51.100.1 on br-health but there is no IPv6 default route on br-health" },
    { "v6 default elsewhere", m_v6_default_elsewhere, REASON_NO_IPV6_DEFAULT_ROUTE, CHECKS_FAIL, CHECKS_FAIL,
      "an IPv4 default route exists via 198.51.100.1 on br-health but there is no IPv6 default route "
      "on br-health (the IPv6 default route goes via fe80::1 on eth1)" },
    { "v4 route without v6", m_v4_route_no_v6, REASON_NO_IPV6_DEFAULT_ROUTE, CHECKS_FAIL, CHECKS_FAIL,
      "an IPv4 route to 10.0.0.0/8 exists via 198.51.100.1 on br-health but there is neither an IPv6 "
      "default route nor an IPv6 route via 2001:db8:10::1" },
    { "neighbour failed", m_neigh_failed, REASON_GATEWAY_NEIGH_FAILED, CHECKS_FAIL, CHECKS_FAIL,
      "gateway 2001:db8:10::1 on br-health does not answer neighbour solicitations (neighbour state FAILED)" },
    { "neighbour incomplete", m_neigh_incomplete, REASON_GATEWAY_NEIGH_INCOMPLETE, CHECKS_FAIL, CHECKS_FAIL,
      "gateway 2001:db8:10::1 on br-health has not answered neighbour solicitation yet (neighbour state INCOMPLETE)" },
    { "not a router", m_not_router, REASON_GATEWAY_NOT_ROUTER, CHECKS_FAIL, CHECKS_FAIL,
      "gateway 2001:db8:10::1 on br-health answers but without the router flag: it does not forward "
      "IPv6 (neighbour state REACHABLE)" },
    { "route via dead gateway", m_route_dead_gw, REASON_GATEWAY_NEIGH_FAILED, CHECKS_FAIL, CHECKS_FAIL,
      "gateway 2001:db8:10::99 on br-health does not answer neighbour solicitations (neighbour state FAILED)" },
    { "slaac, forwarding", m_ra_forwarding, REASON_RA_IGNORED_FORWARDING, CHECKS_FAIL, CHECKS_FAIL,
      "the segment uses SLAAC but br-health ignores router advertisements because it forwards "
      "(forwarding = 1, accept_ra = 1); set net.ipv6.conf.br-health.accept_ra = 2" },
    { "slaac, accept_ra 0", m_ra_disabled, REASON_RA_DISABLED, CHECKS_FAIL, CHECKS_FAIL,
      "the segment uses SLAAC but br-health ignores router advertisements (net.ipv6.conf.br-health.accept_ra = 0)" },
    { "RA route, forwarding", m_ra_route_forwarding, REASON_RA_IGNORED_FORWARDING, CHECKS_WARN, CHECKS_WARN,
      "the IPv6 default route via fe80::1 on br-health was learned from a router advertisement but "
      "br-health now ignores them because it forwards (forwarding = 1, accept_ra = 1): it will expire; "
      "set net.ipv6.conf.br-health.accept_ra = 2 or add a static default route" },
    { "RA route, accept_ra 0", m_ra_route_disabled, REASON_RA_DISABLED, CHECKS_WARN, CHECKS_WARN,
      "the IPv6 default route via fe80::1 on br-health was learned from a router advertisement but "
      "br-health now ignores them (accept_ra = 0): it will expire" },
    { "ipv4-only listeners", m_listener, REASON_IPV4_ONLY_LISTENER, CHECKS_WARN, CHECKS_WARN,
      "2 TCP listeners reachable on br-health accept IPv4 only, with no IPv6 listener on the same "
      "port: 198.51.100.21:5432, 0.0.0.0:8080" },
    { "v4-mapped listener", m_listener_mapped, REASON_IPV4_ONLY_LISTENER, CHECKS_WARN, CHECKS_WARN,
      "1 TCP listener reachable on br-health accepts IPv4 only, with no IPv6 listener on the same "
      "port: 198.51.100.21:8443" },
};

static void print_result(const struct checks_result *r)
{
    for (size_t i = 0; i < r->n_items; i++)
        print_message("  %s %s %s: %s\n", checks_check_to_string(r->items[i].check),
                      checks_severity_to_string(r->items[i].severity),
                      checks_reason_to_string(r->items[i].reason), r->items[i].message);
}

static void test_all_pass(void **state)
{
    _cleanup_(snapshot_freep) struct snapshot *s = good_snapshot();
    struct desired_segment seg = good_segment();
    struct checks_result r;
    checks_evaluate(s, &seg, &r);
    if (r.status != CHECKS_PASS)
        print_result(&r);
    assert_int_equal(r.status, CHECKS_PASS);
    /* Every check, once, in order, each OK. */
    assert_int_equal(r.n_items, CHECK_MAX);
    for (size_t i = 0; i < r.n_items; i++) {
        assert_int_equal(r.items[i].check, (enum checks_check) i);
        assert_int_equal(r.items[i].reason, REASON_OK);
        assert_int_equal(r.items[i].severity, CHECKS_PASS);
    }
    assert_string_equal(r.items[CHECK_IPV6_GLOBAL_ADDRESS].message,
                        "address 2001:db8:10::21/64 on br-health is usable and inside 2001:db8:10::/64");
    assert_string_equal(r.items[CHECK_GATEWAY_NEIGHBOUR].message,
                        "gateway 2001:db8:10::1 on br-health is reachable as a router (neighbour state REACHABLE)");

    json_t *j = checks_result_to_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "health-dmz");
    assert_string_equal(json_string_value(json_object_get(j, "interface")), "br-health");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "pass");
    json_t *c0 = json_array_get(json_object_get(j, "checks"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "check")), "ipv6-enabled");
    assert_string_equal(json_string_value(json_object_get(c0, "severity")), "pass");
    assert_string_equal(json_string_value(json_object_get(c0, "reason")), "OK");
    assert_non_null(json_string_value(json_object_get(c0, "message")));
    json_decref(j);
    checks_result_clear(&r);
}

static void test_reason_cases(void **state)
{
    bool covered[REASON_MAX] = { [REASON_OK] = true };
    for (size_t k = 0; k < YG_ARRAY_SIZE(cases); k++) {
        const struct reason_case *tc = &cases[k];
        _cleanup_(snapshot_freep) struct snapshot *s = good_snapshot();
        struct desired_segment seg = good_segment();
        tc->mutate(s, &seg);
        struct checks_result r;
        checks_evaluate(s, &seg, &r);
        const struct checks_item *hit = NULL;
        for (size_t i = 0; i < r.n_items; i++)
            if (r.items[i].reason == tc->reason)
                hit = &r.items[i];
        if (!hit || hit->severity != tc->severity || r.status != tc->status ||
            !streq(hit->message, tc->message)) {
            print_message("case '%s':\n", tc->name);
            print_result(&r);
        }
        assert_non_null(hit);
        assert_int_equal(hit->check, checks_reason_check(tc->reason));
        assert_int_equal(hit->severity, tc->severity);
        assert_int_equal(r.status, tc->status);
        assert_string_equal(hit->message, tc->message);
        /* Every check appears (but for a missing interface), and each
         * check is either one OK or only problems. */
        if (tc->reason != REASON_INTERFACE_MISSING) {
            for (int c = 0; c < CHECK_MAX; c++) {
                size_t n = 0, ok = 0;
                for (size_t i = 0; i < r.n_items; i++)
                    if (r.items[i].check == (enum checks_check) c) {
                        n++;
                        ok += r.items[i].reason == REASON_OK;
                    }
                assert_true(n >= 1);
                assert_true(ok == 0 || n == 1);
            }
        } else
            assert_int_equal(r.n_items, 1);
        covered[tc->reason] = true;
        checks_result_clear(&r);
    }
    for (int i = 0; i < REASON_MAX; i++)
        if (!covered[i])
            fail_msg("reason %s has no test case", checks_reason_to_string(i));
}

/* Addresses outside the prefix beside a usable one inside: a warning
 * listing them, never NO_GLOBAL_IPV6. */
static void test_outside_prefix_details(void **state)
{
    _cleanup_(snapshot_freep) struct snapshot *s = good_snapshot();
    struct desired_segment seg = good_segment();
    add_addr(s, IF_SEG, "2001:db8:99::40/64", IFA_F_PERMANENT);
    add_addr(s, IF_SEG, "2001:db8:99::41/64", IFA_F_PERMANENT);
    struct checks_result r;
    checks_evaluate(s, &seg, &r);
    assert_int_equal(r.status, CHECKS_WARN);
    bool found = false;
    for (size_t i = 0; i < r.n_items; i++) {
        assert_int_not_equal(r.items[i].reason, REASON_NO_GLOBAL_IPV6);
        if (r.items[i].reason == REASON_IPV6_OUTSIDE_PREFIX) {
            found = true;
            assert_string_equal(r.items[i].message,
                "2 addresses on br-health are outside the segment's prefix 2001:db8:10::/64: "
                "2001:db8:99::40/64, 2001:db8:99::41/64");
        }
    }
    assert_true(found);
    checks_result_clear(&r);

    /* A tentative planned address while another usable one exists: pass. */
    _cleanup_(snapshot_freep) struct snapshot *s2 = good_snapshot();
    add_addr(s2, IF_SEG, "2001:db8:10::99/64", IFA_F_TENTATIVE);
    checks_evaluate(s2, &seg, &r);
    assert_int_equal(r.status, CHECKS_PASS);
    checks_result_clear(&r);
}

static void test_listener_counterparts(void **state)
{
    struct desired_segment seg = good_segment();
    struct checks_result r;
    /* A v6 listener on the segment's address is a counterpart. */
    _cleanup_(snapshot_freep) struct snapshot *s = good_snapshot();
    add_listener(s, AF_INET, "198.51.100.21", 5432, false);
    add_listener(s, AF_INET6, "2001:db8:10::21", 5432, true);
    checks_evaluate(s, &seg, &r);
    assert_int_equal(r.status, CHECKS_PASS);
    assert_string_equal(r.items[CHECK_IPV4_ONLY_LISTENERS].message,
                        "every TCP port listening on IPv4 on br-health also listens on IPv6");
    checks_result_clear(&r);
    /* A listener bound to another device does not count here. */
    _cleanup_(snapshot_freep) struct snapshot *s2 = good_snapshot();
    struct snapshot_listener l = { .family = AF_INET, .addr = A("0.0.0.0"), .port = 53,
                                   .bound_ifindex = IF_OTHER };
    snapshot_add_listener(s2, &l);
    checks_evaluate(s2, &seg, &r);
    assert_int_equal(r.status, CHECKS_PASS);
    checks_result_clear(&r);
    /* sock_diag unavailable: not checked, said so. */
    _cleanup_(snapshot_freep) struct snapshot *s3 = good_snapshot();
    s3->listeners_known = false;
    checks_evaluate(s3, &seg, &r);
    assert_string_equal(r.items[CHECK_IPV4_ONLY_LISTENERS].message,
                        "not checked: the kernel's list of listening sockets could not be read");
    checks_result_clear(&r);
    /* Many: the message is bounded. */
    _cleanup_(snapshot_freep) struct snapshot *s4 = good_snapshot();
    for (uint16_t p = 1000; p < 1100; p++)
        add_listener(s4, AF_INET, "0.0.0.0", p, false);
    checks_evaluate(s4, &seg, &r);
    const char *m = r.items[CHECK_IPV4_ONLY_LISTENERS].message;
    assert_non_null(strstr(m, "100 TCP listeners"));
    assert_non_null(strstr(m, "0.0.0.0:1007 and 92 more"));
    assert_true(strlen(m) < 1024);
    checks_result_clear(&r);
}

static void test_enum_strings(void **state)
{
    for (int i = 0; i < CHECKS_SEVERITY_MAX; i++)
        assert_int_equal(checks_severity_from_string(checks_severity_to_string(i)), i);
    for (int i = 0; i < CHECK_MAX; i++)
        assert_int_equal(checks_check_from_string(checks_check_to_string(i)), i);
    for (int i = 0; i < REASON_MAX; i++) {
        assert_non_null(checks_reason_to_string(i));
        assert_int_equal(checks_reason_from_string(checks_reason_to_string(i)), i);
        if (i != REASON_OK)
            assert_true(checks_reason_check(i) < CHECK_MAX);
    }
    assert_int_equal(checks_reason_from_string("NOPE"), -1);
    assert_null(checks_reason_to_string(REASON_MAX));
    assert_string_equal(checks_reason_to_string(REASON_NO_IPV6_DEFAULT_ROUTE), "NO_IPV6_DEFAULT_ROUTE");
    assert_string_equal(checks_check_to_string(CHECK_IPV4_ONLY_LISTENERS), "ipv4-only-listeners");
    for (int i = 0; i < REPORT_OUTCOME_MAX; i++)
        assert_non_null(report_outcome_to_string(i));
}

/* ---- desired state ---- */

static const char doc_example[] =
    "{\"host\": \"hv01\", \"heartbeat_seconds\": 10,"
    " \"segments\": [{\"name\": \"health-dmz\", \"interface\": \"br-health\","
    "   \"ipv4_prefix\": \"198.51.100.0/24\", \"ipv4_gateway\": \"198.51.100.1\","
    "   \"ipv6_prefix\": \"2001:db8:10::/64\", \"ipv6_gateway\": \"2001:db8:10::1\","
    "   \"slaac\": false,"
    "   \"plan\": {\"ipv4_address\": \"198.51.100.21\", \"ipv6_address\": \"2001:db8:10::21\"}},"
    "  {\"name\": \"police-v4\", \"interface\": \"br-police\", \"ipv4_prefix\": \"203.0.113.0/24\","
    "   \"ipv4_gateway\": null, \"ipv6_prefix\": null, \"ipv6_gateway\": null, \"future_key\": 1}]}";

static void assert_desired_error(const char *text, const char *expected)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    struct desired_state *d = NULL;
    _cleanup_free_ char *err = NULL;
    assert_int_equal(desired_state_from_json(j, &d, &err), -EINVAL);
    assert_null(d);
    assert_string_equal(err, expected);
    json_decref(j);
}

static void test_desired(void **state)
{
    json_t *j = json_loads(doc_example, 0, NULL);
    assert_non_null(j);
    _cleanup_(desired_state_freep) struct desired_state *d = NULL;
    _cleanup_free_ char *err = NULL;
    assert_int_equal(desired_state_from_json(j, &d, &err), 0);
    json_decref(j);
    assert_string_equal(d->host, "hv01");
    assert_int_equal(d->heartbeat_seconds, 10);
    assert_int_equal(d->n_segments, 2);
    const struct desired_segment *s = &d->segments[0];
    assert_string_equal(s->interface, "br-health");
    assert_int_equal(s->ipv6_prefix.len, 64);
    assert_int_equal(s->plan_ipv6.family, AF_INET6);
    assert_false(s->slaac);
    assert_int_equal(d->segments[1].ipv6_prefix.addr.family, 0);
    assert_int_equal(d->segments[1].ipv6_gateway.family, 0);

    assert_desired_error("{\"segments\": [{\"name\": \"a\", \"interface\": \"br0\", \"ipv6_prefix\": \"2001:db8::1/64\"}]}",
                         "segments[0].ipv6_prefix: '2001:db8::1/64' has host bits set; the prefix is 2001:db8::/64");
    assert_desired_error("{\"segments\": [{\"name\": \"a\", \"interface\": \"br0\", \"ipv6_prefix\": \"198.51.100.0/24\"}]}",
                         "segments[0].ipv6_prefix: '198.51.100.0/24' is not an IPv6 prefix");
    assert_desired_error("{\"segments\": [{\"name\": \"a\", \"interface\": \"../etc\"}]}",
                         "segments[0].interface: '../etc' is not a valid interface name (1 to 15 characters, no '/', ':' or white space)");
    assert_desired_error("{\"segments\": [{\"name\": \"a\", \"interface\": \"br0\", \"plan\": {\"ipv6_address\": \"198.51.100.2\"}}]}",
                         "segments[0].plan.ipv6_address: '198.51.100.2' is not an IPv6 address");
    assert_desired_error("{\"segments\": [{\"interface\": \"br0\"}]}", "segments[0].name: missing (a string is required)");
    assert_desired_error("{\"segments\": [{\"name\": \"a\", \"interface\": \"br0\"}, {\"name\": \"a\", \"interface\": \"br1\"}]}",
                         "segments[1].name: 'a' is also the name of segments[0]");
    assert_desired_error("{\"segments\": [{\"name\": \"a\", \"interface\": \"br0\", \"slaac\": \"yes\"}]}",
                         "segments[0].slaac: must be true or false");
    assert_desired_error("{\"heartbeat_seconds\": 0, \"segments\": []}", "heartbeat_seconds: must be an integer from 1 to 3600");
    assert_desired_error("{\"segs\": []}", "segments: missing (an array of segments is required)");
    assert_desired_error("[]", "the desired state must be a JSON object with a \"segments\" array");

    assert_true(desired_interface_name_valid("br-health"));
    assert_true(desired_interface_name_valid("eth0.100"));
    assert_false(desired_interface_name_valid(""));
    assert_false(desired_interface_name_valid("."));
    assert_false(desired_interface_name_valid("abcdefghijklmnop"));
    assert_false(desired_interface_name_valid("a b"));

    /* From a file: the file name leads the message. */
    char path[] = "/tmp/yg-desired-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"segments\": [", 14), 14);
    close(fd);
    struct desired_state *d2 = NULL;
    char *e2 = NULL;
    assert_int_equal(desired_state_load_file(path, &d2, &e2), -EINVAL);
    assert_non_null(strstr(e2, "segments file '"));
    assert_non_null(strstr(e2, "line 1, column 14"));
    free(e2);
    unlink(path);
    e2 = NULL;
    assert_true(desired_state_load_file("/nonexistent/yg.json", &d2, &e2) < 0);
    assert_string_equal(e2, "cannot read segments file '/nonexistent/yg.json': No such file or directory");
    free(e2);
}

/* ---- spool and backoff ---- */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/yg-spool-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

static void rm_tree(const char *dir)
{
    /* Only what the spool makes: seq, spool/ and its files. */
    _cleanup_free_ char *sp = xasprintf("%s/spool", dir);
    struct spool *s = NULL;
    if (spool_open(dir, 0, &s) == 0) {
        while (spool_remove_oldest(s) == 0)
            ;
        spool_free(s);
    }
    rmdir(sp);
    _cleanup_free_ char *seq = xasprintf("%s/seq", dir);
    unlink(seq);
    rmdir(dir);
}

static void test_spool(void **state)
{
    _cleanup_free_ char *dir = make_tmpdir();
    struct spool *s = NULL;
    assert_int_equal(spool_open(dir, 300, &s), 0);
    assert_int_equal(spool_count(s), 0);
    uint64_t seq;
    assert_int_equal(spool_next_seq(s, &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(spool_next_seq(s, &seq), 0);
    assert_int_equal(seq, 2);
    spool_free(s);

    /* The sequence survives a restart. */
    assert_int_equal(spool_open(dir, 300, &s), 0);
    assert_int_equal(spool_last_seq(s), 2);
    assert_int_equal(spool_next_seq(s, &seq), 0);
    assert_int_equal(seq, 3);

    char body[100];
    memset(body, 'a', sizeof body);
    assert_int_equal(spool_add(s, 3, body, 100, false, NULL), 0);
    memset(body, 'b', sizeof body);
    assert_int_equal(spool_add(s, 4, body, 100, false, NULL), 0);
    /* In order only. */
    assert_int_equal(spool_add(s, 4, body, 100, false, NULL), -EINVAL);
    /* A heartbeat equal to the last replaces it. */
    memset(body, 'c', sizeof body);
    assert_int_equal(spool_add(s, 5, body, 100, true, NULL), 0);
    assert_int_equal(spool_count(s), 2);
    assert_int_equal(spool_bytes(s), 200);

    uint64_t got;
    char *data = NULL;
    size_t len;
    assert_int_equal(spool_peek(s, &got, &data, &len), 0);
    assert_int_equal(got, 3);
    assert_int_equal(len, 100);
    assert_int_equal(data[0], 'a');
    free(data);

    /* The bound: the oldest go. */
    size_t dropped = 99;
    memset(body, 'd', sizeof body);
    assert_int_equal(spool_add(s, 6, body, 100, false, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(spool_add(s, 7, body, 100, false, &dropped), 0);
    assert_int_equal(dropped, 1);
    assert_int_equal(spool_count(s), 3);
    assert_int_equal(spool_peek(s, &got, &data, &len), 0);
    assert_int_equal(got, 5);
    assert_int_equal(data[0], 'c');
    free(data);
    char big[400] = { 0 };
    assert_int_equal(spool_add(s, 8, big, sizeof big, false, NULL), -EFBIG);
    spool_free(s);

    /* Reopen: the files are found in seq order, a stray temporary file is
     * removed, and a lost seq file is recovered from the spool. */
    _cleanup_free_ char *stray = xasprintf("%s/spool/00000000000000000009.json.tmp", dir);
    int fd = open(stray, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    _cleanup_free_ char *seqfile = xasprintf("%s/seq", dir);
    assert_int_equal(unlink(seqfile), 0);
    assert_int_equal(spool_open(dir, 300, &s), 0);
    assert_int_equal(access(stray, F_OK), -1);
    assert_int_equal(spool_count(s), 3);
    assert_int_equal(spool_last_seq(s), 7);
    assert_int_equal(spool_next_seq(s, &seq), 0);
    assert_int_equal(seq, 8);
    uint64_t order[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(spool_peek(s, &order[i], &data, &len), 0);
        free(data);
        assert_int_equal(spool_remove(s, order[i]), 0);
    }
    assert_int_equal(order[0], 5);
    assert_int_equal(order[1], 6);
    assert_int_equal(order[2], 7);
    assert_int_equal(spool_peek(s, &got, &data, &len), -ENOENT);
    assert_int_equal(spool_remove(s, 5), -ENOENT);

    /* The controller knows higher numbers. */
    assert_int_equal(spool_raise_seq(s, 500), 0);
    assert_int_equal(spool_next_seq(s, &seq), 0);
    assert_int_equal(seq, 501);
    assert_int_equal(spool_raise_seq(s, 10), 0);       /* never down */
    assert_int_equal(spool_last_seq(s), 501);
    spool_free(s);
    rm_tree(dir);
}

static void test_backoff(void **state)
{
    const uint64_t now = 1000000;
    /* Full jitter value: the whole delay. */
    assert_int_equal(spool_backoff_deadline(now, 0, 500, 60000, 1000), now + 500);
    assert_int_equal(spool_backoff_deadline(now, 1, 500, 60000, 1000), now + 1000);
    assert_int_equal(spool_backoff_deadline(now, 2, 500, 60000, 1000), now + 2000);
    assert_int_equal(spool_backoff_deadline(now, 6, 500, 60000, 1000), now + 32000);
    assert_int_equal(spool_backoff_deadline(now, 7, 500, 60000, 1000), now + 60000);   /* capped */
    assert_int_equal(spool_backoff_deadline(now, 1000, 500, 60000, 1000), now + 60000);
    assert_int_equal(spool_backoff_deadline(now, UINT32_MAX, 500, 60000, 1000), now + 60000);
    /* No jitter: half; the spread is in [delay/2, delay]. */
    assert_int_equal(spool_backoff_deadline(now, 0, 500, 60000, 0), now + 250);
    assert_int_equal(spool_backoff_deadline(now, 3, 500, 60000, 500), now + 3000);
    assert_int_equal(spool_backoff_deadline(now, 3, 500, 60000, 5000), now + 4000);   /* clamped */
    /* Monotone in attempt for a fixed jitter, and in now. */
    uint64_t prev = 0;
    for (unsigned a = 0; a < 40; a++) {
        uint64_t d = spool_backoff_deadline(now, a, 500, 60000, 700);
        assert_true(d >= prev);
        assert_true(d <= now + 60000);
        prev = d;
    }
    assert_true(spool_backoff_deadline(now + 1, 3, 500, 60000, 700) ==
                spool_backoff_deadline(now, 3, 500, 60000, 700) + 1);
    /* A huge base does not overflow. */
    assert_int_equal(spool_backoff_deadline(0, 5, UINT64_MAX / 2, UINT64_MAX / 2, 1000), UINT64_MAX / 2);
}

static void test_report_build(void **state)
{
    json_t *segs = json_pack("[{s:s, s:s}, {s:s, s:s}]", "name", "a", "status", "pass",
                             "name", "b", "status", "warn");
    json_t *r = report_build("hv01", 42, "2026-11-25T23:30:43.123Z", segs);
    assert_string_equal(json_string_value(json_object_get(r, "host")), "hv01");
    assert_int_equal(json_integer_value(json_object_get(r, "seq")), 42);
    assert_ptr_equal(json_object_get(r, "segments"), segs);
    assert_true(report_segments_pass(segs));
    /* results_sha256: the SHA-256 of the compact text of segments[], in
     * the full report's body; a heartbeat carries only seq and the hash. */
    char sha[REPORT_SHA256_HEX_SIZE], expect[65];
    report_results_sha256(segs, sha);
    char *text = json_dumps(segs, JSON_COMPACT);
    sha256_hex(text, strlen(text), expect);
    free(text);
    assert_string_equal(sha, expect);
    char *body = report_full_body("hv01", 43, "2026-11-25T23:30:43.123Z", segs, sha);
    json_t *parsed = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(parsed, "results_sha256")), sha);
    assert_true(json_equal(json_object_get(parsed, "segments"), segs));
    json_decref(parsed);
    free(body);
    body = report_heartbeat_body("hv01", 44, sha);
    parsed = json_loads(body, 0, NULL);
    assert_int_equal(json_object_size(parsed), 3);
    assert_int_equal(json_integer_value(json_object_get(parsed, "seq")), 44);
    assert_string_equal(json_string_value(json_object_get(parsed, "results_sha256")), sha);
    json_decref(parsed);
    free(body);

    json_array_append_new(segs, json_pack("{s:s, s:s}", "name", "c", "status", "fail"));
    assert_false(report_segments_pass(segs));
    /* Another evaluation, another fingerprint. */
    report_results_sha256(segs, expect);
    assert_string_not_equal(sha, expect);
    json_decref(r);
    json_decref(segs);

    /* Token file: stored 0600, read back without the newline. */
    _cleanup_free_ char *dir = make_tmpdir();
    assert_int_equal(report_token_store(dir, "yg_secret"), 0);
    _cleanup_free_ char *tok = NULL;
    assert_int_equal(report_token_load(dir, &tok), 0);
    assert_string_equal(tok, "yg_secret");
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, REPORT_TOKEN_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    unlink(path);
    char *none = NULL;
    assert_int_equal(report_token_load(dir, &none), -ENOENT);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_pass),
        cmocka_unit_test(test_reason_cases),
        cmocka_unit_test(test_outside_prefix_details),
        cmocka_unit_test(test_listener_counterparts),
        cmocka_unit_test(test_enum_strings),
        cmocka_unit_test(test_desired),
        cmocka_unit_test(test_spool),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_report_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

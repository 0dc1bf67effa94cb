/* Playbook steps on a real kernel (agents/steps.c): every action applied,
 * applied again (unchanged), undone (the kernel state is exactly what it
 * was), check mode (nothing changes), the wire checks, and the task runner
 * (agents/tasks.c): rollback of a failed apply and journal recovery.
 *
 * Runs in a private network namespace (unshare(CLONE_NEWNET)) with its own
 * veth pairs, made with libnl: it vanishes with the
 * process and nothing on the host is touched.  Needs root; exit 77
 * (skipped) without it. */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "desired.h"
#include "steps.h"
#include "tasks.h"
#include "util.h"

static struct nl_sock *sock;
static struct desired_segment segment;

/* ---- the namespace ---- */

static int write_sysctl(const char *key, const char *value)
{
    char path[256];
    snprintf(path, sizeof path, "/proc/sys/%s", key);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, value, strlen(value));
    close(fd);
    return n < 0 ? -errno : 0;
}

static char *read_sysctl(const char *key)
{
    char path[256];
    snprintf(path, sizeof path, "/proc/sys/%s", key);
    char *data = NULL;
    size_t len;
    if (read_file_limited(path, 4096, &data, &len) < 0)
        return xstrdup("(absent)");
    while (len && data[len - 1] == '\n')
        data[--len] = '\0';
    return data;
}

static int link_up(const char *name)
{
    struct rtnl_link *link = NULL, *change = rtnl_link_alloc();
    int r = rtnl_link_get_kernel(sock, 0, name, &link);
    if (r == 0) {
        rtnl_link_set_flags(change, IFF_UP);
        r = rtnl_link_change(sock, link, change, 0);
    }
    rtnl_link_put(change);
    if (link)
        rtnl_link_put(link);
    return r;
}

/* lo, a veth pair yg0/yg0p (yg0 carries the segment) and yg1/yg1p. */
static int make_namespace(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test-steps: needs root (a private network namespace); skipped\n");
        return 77;
    }
    if (unshare(CLONE_NEWNET) < 0) {
        fprintf(stderr, "test-steps: unshare(CLONE_NEWNET): %s; skipped\n", strerror(errno));
        return 77;
    }
    if (access("/proc/sys/net/ipv6", F_OK) < 0) {
        fprintf(stderr, "test-steps: the kernel has no IPv6; skipped\n");
        return 77;
    }
    char *err = NULL;
    sock = steps_socket_new(&err);
    if (!sock) {
        fprintf(stderr, "test-steps: %s\n", err);
        return 1;
    }
    /* No DAD on the namespace's links: link-local addresses are usable at
     * once, so that state dumps are stable. */
    if (write_sysctl("net/ipv6/conf/default/accept_dad", "0") < 0 ||
        write_sysctl("net/ipv6/conf/all/accept_dad", "0") < 0)
        return 1;
    int r = rtnl_link_veth_add(sock, "yg0", "yg0p", getpid());
    if (r < 0) {
        fprintf(stderr, "test-steps: cannot make a veth pair: %s; skipped\n", nl_geterror(r));
        return 77;
    }
    /* A second pair rather than a dummy link: the dummy module may be
     * missing (containers). */
    r = rtnl_link_veth_add(sock, "yg1", "yg1p", getpid());
    if (r < 0) {
        fprintf(stderr, "test-steps: cannot make a second veth pair: %s; skipped\n", nl_geterror(r));
        return 77;
    }
    if (link_up("lo") < 0 || link_up("yg0") < 0 || link_up("yg0p") < 0 || link_up("yg1") < 0 || link_up("yg1p") < 0)
        return 1;

    json_t *js = json_loads("{\"name\": \"health-dmz\", \"interface\": \"yg0\","
                            " \"ipv4_prefix\": \"192.0.2.0/24\", \"ipv4_gateway\": \"192.0.2.1\","
                            " \"ipv6_prefix\": \"2001:db8:10::/64\", \"ipv6_gateway\": \"2001:db8:10::1\","
                            " \"plan\": {\"ipv4_address\": \"192.0.2.21\", \"ipv6_address\": \"2001:db8:10::21\"}}",
                            0, NULL);
    r = desired_segment_from_json(js, "segment", &segment, &err);
    json_decref(js);
    if (r < 0) {
        fprintf(stderr, "test-steps: %s\n", err);
        return 1;
    }
    return 0;
}

/* ---- a normalized dump of what steps change ---- */

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static const char *const dumped_sysctls[] = {
    "net/ipv6/conf/yg0/disable_ipv6", "net/ipv6/conf/yg0/forwarding", "net/ipv6/conf/yg0/accept_ra",
    "net/ipv4/conf/yg0/forwarding", "net/ipv6/conf/yg1/disable_ipv6", NULL,
};

/* Links (name, MTU, up), addresses (without the lifetimes and the
 * tentative flag), routes of both families in every table, and the
 * sysctls the tests touch: one sorted line each. */
static char *state_dump_once(void)
{
    char **lines = NULL;
    size_t n = 0;
#define ADD(...) do { lines = xrealloc(lines, (n + 1) * sizeof *lines); lines[n++] = xasprintf(__VA_ARGS__); } while (0)
    struct nl_cache *links, *addrs, *routes;
    assert_int_equal(rtnl_link_alloc_cache(sock, AF_UNSPEC, &links), 0);
    assert_int_equal(rtnl_addr_alloc_cache(sock, &addrs), 0);
    assert_int_equal(rtnl_route_alloc_cache(sock, AF_UNSPEC, 0, &routes), 0);
    char buf[128], buf2[128];
    for (struct nl_object *o = nl_cache_get_first(links); o; o = nl_cache_get_next(o)) {
        struct rtnl_link *l = (struct rtnl_link *) o;
        ADD("link %s mtu %u %s", rtnl_link_get_name(l), rtnl_link_get_mtu(l),
            rtnl_link_get_flags(l) & IFF_UP ? "up" : "down");
    }
    for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *) o;
        ADD("addr if%d %s flags %#x scope %d", rtnl_addr_get_ifindex(a),
            nl_addr2str(rtnl_addr_get_local(a), buf, sizeof buf),
            rtnl_addr_get_flags(a) & ~(unsigned) IFA_F_TENTATIVE, rtnl_addr_get_scope(a));
    }
    for (struct nl_object *o = nl_cache_get_first(routes); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *rt = (struct rtnl_route *) o;
        struct strbuf sb;
        strbuf_init(&sb);
        strbuf_printf(&sb, "route %d table %u %s metric %u proto %u type %u", rtnl_route_get_family(rt),
                      rtnl_route_get_table(rt), nl_addr2str(rtnl_route_get_dst(rt), buf, sizeof buf),
                      rtnl_route_get_priority(rt), rtnl_route_get_protocol(rt), rtnl_route_get_type(rt));
        for (int i = 0; i < rtnl_route_get_nnexthops(rt); i++) {
            struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, i);
            struct nl_addr *gw = rtnl_route_nh_get_gateway(nh);
            strbuf_printf(&sb, " nh if%d via %s", rtnl_route_nh_get_ifindex(nh),
                          gw ? nl_addr2str(gw, buf2, sizeof buf2) : "-");
        }
        lines = xrealloc(lines, (n + 1) * sizeof *lines);
        lines[n++] = strbuf_steal(&sb);
    }
    for (const char *const *k = dumped_sysctls; *k; k++) {
        char *v = read_sysctl(*k);
        ADD("sysctl %s = %s", *k, v);
        free(v);
    }
#undef ADD
    nl_cache_free(links);
    nl_cache_free(addrs);
    nl_cache_free(routes);
    qsort(lines, n, sizeof *lines, cmp_lines);
    struct strbuf out;
    strbuf_init(&out);
    for (size_t i = 0; i < n; i++) {
        strbuf_printf(&out, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    return strbuf_steal(&out);
}

static char *state_dump(void);

/* Equal dumps, or fail naming the lines only one of them has. */
static void assert_same_state(const char *expected, const char *actual)
{
    if (streq(expected, actual))
        return;
    struct strbuf sb;
    strbuf_init(&sb);
    for (int pass = 0; pass < 2; pass++) {
        const char *a = pass ? actual : expected, *b = pass ? expected : actual;
        for (const char *line = a; *line;) {
            const char *end = strchr(line, '\n');
            size_t n = end ? (size_t) (end - line) + 1 : strlen(line);
            char *l = xstrndup(line, n);
            if (!strstr(b, l))
                strbuf_printf(&sb, "%s %s", pass ? "+" : "-", l);
            free(l);
            line += n;
        }
    }
    char *d = strbuf_steal(&sb);
    fail_msg("the kernel state differs (- expected, + actual):\n%s", d);
}

static char *baseline;

/* The kernel finishes some changes after the netlink call returns (the
 * link-local address of a link whose IPv6 was turned back on comes a
 * moment later): the state must become EXPECTED within a bounded number
 * of re-reads (a condition with a bound, not a timing assertion). */
static void expect_state(const char *expected)
{
    char *now = state_dump();
    for (int i = 0; i < 100 && !streq(expected, now); i++) {
        usleep(50 * 1000);
        free(now);
        now = state_dump();
    }
    assert_same_state(expected, now);
    free(now);
}

/* Every test leaves the namespace as it found it. */
static void assert_baseline(void)
{
    expect_state(baseline);
}

/* Until each veth end has its link-local address: the start state. */
static int wait_settled(void)
{
    for (int i = 0; i < 100; i++) {
        char *d = state_dump();
        size_t n = 0;
        for (const char *p = d; (p = strstr(p, " fe80::")); p++)
            n++;
        free(d);
        /* Each of 4 links: its address, its local route. */
        if (n >= 8)
            return 0;
        usleep(50 * 1000);
    }
    fprintf(stderr, "test-steps: the veth links got no link-local addresses\n");
    return 1;
}

/* Whether every IPv6 address has its local route yet: the kernel adds
 * that route from a work queue, a moment after the address. */
static bool local_routes_complete(const char *d)
{
    for (const char *line = d; (line = strstr(line, "addr if"));) {
        const char *end = strchr(line, '\n');
        const char *sp = strchr(line + 5, ' ');
        if (!end || !sp || sp > end)
            break;
        /* "ADDR/LEN flags" or, for a /128, "ADDR flags". */
        size_t n = strcspn(sp + 1, "/ \n");
        char *addr = xstrndup(sp + 1, n);
        if (strchr(addr, ':')) {
            char *want = xasprintf("table 255 %s metric 0", addr);
            bool ok = strstr(d, want) != NULL;
            free(want);
            if (!ok) {
                free(addr);
                return false;
            }
        }
        free(addr);
        line = end;
    }
    return true;
}

static char *state_dump(void)
{
    char *d = state_dump_once();
    for (int i = 0; i < 250 && !local_routes_complete(d); i++) {
        usleep(20 * 1000);
        free(d);
        d = state_dump_once();
    }
    if (!local_routes_complete(d))
        fprintf(stderr, "test-steps: an IPv6 address still has no local route:\n%s", d);
    return d;
}

/* ---- running steps ---- */

static void parse_step(const char *text, struct step *ret)
{
    json_error_t jerr;
    json_t *js = json_loads(text, 0, &jerr);
    if (!js)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    char *err = NULL;
    int r = step_from_json(js, "steps[0]", ret, &err);
    json_decref(js);
    if (r < 0)
        fail_msg("step refused: %s", err);
}

/* Run one step; the result's undo is kept for the caller. */
static enum step_status run(const char *text, enum step_mode mode, struct step_result *ret)
{
    struct step s;
    parse_step(text, &s);
    struct steps_env env = { .sock = sock, .segment = &segment };
    steps_run(&env, &s, mode, ret);
    if (getenv("YG_TEST_VERBOSE"))
        fprintf(stderr, "%s: %s (%s → %s): %s\n", s.name, step_status_to_string(ret->status),
                ret->before ? ret->before : "-", ret->after ? ret->after : "-",
                ret->message ? ret->message : "");
    step_clear(&s);
    return ret->status;
}

static void undo(struct step_result *res)
{
    char *err = NULL;
    assert_non_null(res->undo);
    int r = steps_undo(sock, res->undo, &err);
    if (r < 0)
        fail_msg("undo failed: %s", err);
}

/* Apply → the check holds; apply again → unchanged with nothing to undo;
 * check mode now → unchanged; undo → the dump equals the one before. */
static void apply_again_undo(const char *step_json, void (*holds)(void))
{
    char *before = state_dump();

    /* Check mode first: would-change, and nothing moves. */
    struct step_result res = { 0 };
    assert_int_equal(run(step_json, STEP_MODE_CHECK, &res), STEP_WOULD_CHANGE);
    assert_null(res.undo);
    assert_non_null(res.before);
    assert_non_null(res.after);
    char *after_check = state_dump();
    assert_same_state(before, after_check);
    free(after_check);
    step_result_clear(&res);

    assert_int_equal(run(step_json, STEP_MODE_APPLY, &res), STEP_CHANGED);
    holds();
    char *changed = state_dump();
    assert_string_not_equal(before, changed);

    struct step_result again = { 0 };
    assert_int_equal(run(step_json, STEP_MODE_APPLY, &again), STEP_UNCHANGED);
    assert_null(again.undo);
    step_result_clear(&again);
    assert_int_equal(run(step_json, STEP_MODE_CHECK, &again), STEP_UNCHANGED);
    step_result_clear(&again);
    char *changed2 = state_dump();
    assert_same_state(changed, changed2);

    undo(&res);
    expect_state(before);
    /* Undo is idempotent (a journal replayed twice). */
    undo(&res);
    expect_state(before);

    step_result_clear(&res);
    free(before);
    free(changed);
    free(changed2);
}

static bool has_line(const char *needle)
{
    char *d = state_dump();
    bool found = strstr(d, needle) != NULL;
    free(d);
    return found;
}

/* ---- each action ---- */

static void holds_forwarding(void)
{
    char *v = read_sysctl("net/ipv6/conf/yg0/forwarding");
    assert_string_equal(v, "1");
    free(v);
}

static void test_sysctl_set(void **state)
{
    (void) state;
    apply_again_undo("{\"index\": 0, \"name\": \"forwarding\", \"action\": \"sysctl.set\","
                     " \"args\": {\"key\": \"net/ipv6/conf/yg0/forwarding\", \"value\": \"1\"}}",
                     holds_forwarding);
    assert_baseline();
}

static void holds_v6_address(void)
{
    assert_true(has_line("2001:db8:10::21/64"));
}

static void test_address_add(void **state)
{
    (void) state;
    apply_again_undo("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                     " \"2001:db8:10::21/64\", \"interface\": \"yg0\", \"nodad\": true}}",
                     holds_v6_address);
    assert_baseline();
}

static void holds_v4_address(void)
{
    assert_true(has_line("192.0.2.21/24"));
}

static void test_address_add_v4(void **state)
{
    (void) state;
    apply_again_undo("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                     " \"192.0.2.21/24\", \"interface\": \"yg0\"}}", holds_v4_address);
    assert_baseline();
}

static void holds_no_v4_address(void)
{
    assert_false(has_line("192.0.2.30/24"));
    /* The route through the address went with it. */
    assert_false(has_line("198.51.100.0/24"));
}

/* Removing an address takes the routes through it; undo brings back both. */
static void test_address_remove(void **state)
{
    (void) state;
    struct step_result a = { 0 }, r = { 0 };
    assert_int_equal(run("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                         " \"192.0.2.30/24\", \"interface\": \"yg0\"}}", STEP_MODE_APPLY, &a), STEP_CHANGED);
    assert_int_equal(run("{\"index\": 1, \"action\": \"route.add\", \"args\": {\"dst\":"
                         " \"198.51.100.0/24\", \"via\": \"192.0.2.1\", \"interface\": \"yg0\"}}",
                         STEP_MODE_APPLY, &r), STEP_CHANGED);
    apply_again_undo("{\"index\": 2, \"action\": \"address.remove\", \"args\": {\"address\":"
                     " \"192.0.2.30\", \"interface\": \"yg0\"}}", holds_no_v4_address);
    undo(&r);
    undo(&a);
    step_result_clear(&a);
    step_result_clear(&r);
    assert_baseline();
}

static void holds_default_route(void)
{
    assert_true(has_line("via 2001:db8:10::1"));
}

static void holds_default_route_2(void)
{
    assert_true(has_line("via 2001:db8:10::2"));
    assert_false(has_line("via 2001:db8:10::1"));
}

/* route.add: added; then the same dst/table/metric with another next hop
 * is replaced, and undo puts the first one back. */
static void test_route_add_replace(void **state)
{
    (void) state;
    struct step_result a = { 0 };
    assert_int_equal(run("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                         " \"2001:db8:10::21/64\", \"interface\": \"yg0\", \"nodad\": true}}",
                         STEP_MODE_APPLY, &a), STEP_CHANGED);
    apply_again_undo("{\"index\": 1, \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\","
                     " \"via\": \"2001:db8:10::1\", \"interface\": \"yg0\"}}", holds_default_route);

    struct step_result r = { 0 };
    assert_int_equal(run("{\"index\": 1, \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\","
                         " \"via\": \"2001:db8:10::1\", \"interface\": \"yg0\"}}", STEP_MODE_APPLY, &r),
                     STEP_CHANGED);
    apply_again_undo("{\"index\": 2, \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\","
                     " \"via\": \"2001:db8:10::2\", \"interface\": \"yg0\"}}", holds_default_route_2);
    undo(&r);
    undo(&a);
    step_result_clear(&a);
    step_result_clear(&r);
    assert_baseline();
}

static void holds_no_default_route(void)
{
    assert_false(has_line("via 2001:db8:10::1"));
    assert_false(has_line("via 192.0.2.1"));
}

static void test_route_remove(void **state)
{
    (void) state;
    struct step_result a4 = { 0 }, r4 = { 0 };
    assert_int_equal(run("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                         " \"192.0.2.21/24\", \"interface\": \"yg0\"}}", STEP_MODE_APPLY, &a4), STEP_CHANGED);
    assert_int_equal(run("{\"index\": 1, \"action\": \"route.add\", \"args\": {\"dst\": \"0.0.0.0/0\","
                         " \"via\": \"192.0.2.1\", \"metric\": 100}}", STEP_MODE_APPLY, &r4), STEP_CHANGED);
    apply_again_undo("{\"index\": 2, \"action\": \"route.remove\", \"args\": {\"dst\": \"0.0.0.0/0\"}}",
                     holds_no_default_route);
    undo(&r4);
    undo(&a4);
    step_result_clear(&a4);
    step_result_clear(&r4);
    assert_baseline();
}

static void holds_mtu(void)
{
    assert_true(has_line("link yg1 mtu 1400 up"));
}

static void test_link_set_mtu(void **state)
{
    (void) state;
    apply_again_undo("{\"index\": 0, \"action\": \"link.set-mtu\", \"args\": {\"interface\": \"yg1\","
                     " \"mtu\": 1400}}", holds_mtu);
    assert_baseline();
}

static void holds_ipv6_off(void)
{
    assert_false(has_line("2001:db8:20::5/64"));
}

/* Turning IPv6 off on a link takes its addresses and routes; undo brings
 * them back (the same through an MTU below 1280). */
static void test_ipv6_off_restored(void **state)
{
    (void) state;
    struct step_result a = { 0 }, r = { 0 };
    assert_int_equal(run("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                         " \"2001:db8:20::5/64\", \"interface\": \"yg1\", \"nodad\": true}}",
                         STEP_MODE_APPLY, &a), STEP_CHANGED);
    assert_int_equal(run("{\"index\": 1, \"action\": \"route.add\", \"args\": {\"dst\": \"2001:db8:30::/48\","
                         " \"via\": \"2001:db8:20::1\", \"interface\": \"yg1\"}}", STEP_MODE_APPLY, &r),
                     STEP_CHANGED);
    apply_again_undo("{\"index\": 2, \"action\": \"sysctl.set\", \"args\": {\"key\":"
                     " \"net/ipv6/conf/yg1/disable_ipv6\", \"value\": \"1\"}}", holds_ipv6_off);
    apply_again_undo("{\"index\": 2, \"action\": \"link.set-mtu\", \"args\": {\"interface\": \"yg1\","
                     " \"mtu\": 1200}}", holds_ipv6_off);
    undo(&r);
    undo(&a);
    step_result_clear(&a);
    step_result_clear(&r);
    assert_baseline();
}

/* check.run and wait.for change nothing: unchanged when the expectation
 * holds, failed when it does not within the bound. */
static void test_check_run_and_wait(void **state)
{
    (void) state;
    char *before = state_dump();
    struct step_result res = { 0 };
    const char *global_pass = "{\"index\": 0, \"action\": \"check.run\", \"args\": {\"check\":"
                              " \"ipv6-global-address\", \"expect\": \"pass\", \"timeout_ms\": 300}}";
    assert_int_equal(run(global_pass, STEP_MODE_APPLY, &res), STEP_FAILED);
    assert_non_null(strstr(res.message, "NO_GLOBAL_IPV6"));
    step_result_clear(&res);
    /* Check mode: evaluated once, never a failure. */
    assert_int_equal(run(global_pass, STEP_MODE_CHECK, &res), STEP_UNCHANGED);
    assert_non_null(strstr(res.message, "does not hold yet"));
    step_result_clear(&res);
    assert_int_equal(run("{\"index\": 0, \"action\": \"check.run\", \"args\": {\"check\":"
                         " \"ipv6-global-address\", \"expect\": \"fail\", \"reason\": \"NO_GLOBAL_IPV6\","
                         " \"timeout_ms\": 300}}", STEP_MODE_APPLY, &res), STEP_UNCHANGED);
    step_result_clear(&res);

    /* With the address (and a verify on the step itself). */
    struct step_result a = { 0 };
    assert_int_equal(run("{\"index\": 1, \"action\": \"address.add\", \"args\": {\"address\":"
                         " \"2001:db8:10::21/64\", \"interface\": \"yg0\", \"nodad\": true},"
                         " \"verify\": {\"check\": \"ipv6-global-address\", \"expect\": \"pass\","
                         " \"timeout_ms\": 2000}}", STEP_MODE_APPLY, &a), STEP_CHANGED);
    assert_non_null(strstr(a.message, "verified"));
    assert_int_equal(run(global_pass, STEP_MODE_APPLY, &res), STEP_UNCHANGED);
    step_result_clear(&res);
    assert_int_equal(run("{\"index\": 2, \"action\": \"wait.for\", \"args\": {\"condition\":"
                         " \"address-usable\", \"address\": \"2001:db8:10::21\", \"interface\": \"yg0\","
                         " \"timeout_ms\": 2000}}", STEP_MODE_APPLY, &res), STEP_UNCHANGED);
    step_result_clear(&res);
    assert_int_equal(run("{\"index\": 2, \"action\": \"wait.for\", \"args\": {\"condition\":"
                         " \"address-usable\", \"address\": \"2001:db8:10::99\", \"interface\": \"yg0\","
                         " \"timeout_ms\": 200}}", STEP_MODE_APPLY, &res), STEP_FAILED);
    assert_non_null(strstr(res.message, "absent"));
    step_result_clear(&res);
    assert_int_equal(run("{\"index\": 2, \"action\": \"wait.for\", \"args\": {\"condition\":"
                         " \"address-usable\", \"address\": \"2001:db8:10::99\", \"interface\": \"yg0\","
                         " \"timeout_ms\": 200}}", STEP_MODE_CHECK, &res), STEP_SKIPPED);
    step_result_clear(&res);

    /* when: the step is skipped while the condition does not hold. */
    assert_int_equal(run("{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\":"
                         " \"net/ipv6/conf/yg0/forwarding\", \"value\": \"1\"}, \"when\": {\"check\":"
                         " \"ipv6-global-address\"}}", STEP_MODE_APPLY, &res), STEP_SKIPPED);
    step_result_clear(&res);

    /* A verify that fails fails the step, and its change is in the undo. */
    assert_int_equal(run("{\"index\": 4, \"action\": \"sysctl.set\", \"args\": {\"key\":"
                         " \"net/ipv6/conf/yg0/forwarding\", \"value\": \"1\"}, \"verify\": {\"check\":"
                         " \"link-local\", \"expect\": \"fail\", \"timeout_ms\": 200}}",
                         STEP_MODE_APPLY, &res), STEP_FAILED);
    assert_non_null(strstr(res.message, "verify"));
    holds_forwarding();
    undo(&res);
    step_result_clear(&res);

    undo(&a);
    step_result_clear(&a);
    expect_state(before);
    free(before);
    assert_baseline();
}

/* Steps that cannot run: a missing interface or sysctl fails in both modes. */
static void test_impossible(void **state)
{
    (void) state;
    struct step_result res = { 0 };
    assert_int_equal(run("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                         " \"2001:db8:10::21/64\", \"interface\": \"nosuch0\"}}", STEP_MODE_CHECK, &res),
                     STEP_FAILED);
    assert_non_null(strstr(res.message, "no interface 'nosuch0'"));
    step_result_clear(&res);
    assert_int_equal(run("{\"index\": 0, \"action\": \"sysctl.set\", \"args\": {\"key\":"
                         " \"net/ipv6/conf/nosuch0/forwarding\", \"value\": \"1\"}}", STEP_MODE_APPLY, &res),
                     STEP_FAILED);
    assert_non_null(strstr(res.message, "no sysctl"));
    step_result_clear(&res);
    /* Same address with another length: refused, not silently changed. */
    struct step_result a = { 0 };
    assert_int_equal(run("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                         " \"2001:db8:10::21/64\", \"interface\": \"yg0\", \"nodad\": true}}",
                         STEP_MODE_APPLY, &a), STEP_CHANGED);
    assert_int_equal(run("{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\":"
                         " \"2001:db8:10::21/56\", \"interface\": \"yg0\"}}", STEP_MODE_APPLY, &res),
                     STEP_FAILED);
    assert_non_null(strstr(res.message, "another prefix length"));
    step_result_clear(&res);
    undo(&a);
    step_result_clear(&a);
    assert_baseline();
}

/* ---- the wire ---- */

static void expect_refused(const char *text, const char *fragment)
{
    json_error_t jerr;
    json_t *js = json_loads(text, 0, &jerr);
    if (!js)
        fail_msg("bad test JSON: %s: %s", jerr.text, text);
    struct step s;
    char *err = NULL;
    int r = step_from_json(js, "steps[3]", &s, &err);
    json_decref(js);
    if (r == 0)
        fail_msg("accepted: %s", text);
    assert_int_equal(r, -EINVAL);
    if (!strstr(err, fragment))
        fail_msg("message '%s' does not contain '%s'", err, fragment);
    assert_non_null(strstr(err, "steps[3]"));
    free(err);
}

static void test_sysctl_key_refused(void **state)
{
    (void) state;
    static const char *const keys[] = {
        "kernel/core_pattern", "net/ipv6/conf/../../../kernel/core_pattern", "net/ipv6/conf/yg0/../x",
        "net/core/somaxconn", "net/ipv6/route/flush", "/proc/sys/net/ipv6/conf/yg0/forwarding",
        "net/ipv6/conf/yg0/Forwarding", "net/ipv4/conf/a-very-long-interface/forwarding",
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(keys); i++) {
        char *text = xasprintf("{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\": \"%s\","
                               " \"value\": \"1\"}}", keys[i]);
        expect_refused(text, "outside the keys a playbook may write");
        free(text);
    }
}

static void test_wire_validation(void **state)
{
    (void) state;
    static const struct { const char *json, *fragment; } cases[] = {
        { "[]", "must be an object" },
        { "{\"index\": 3, \"action\": \"shell.run\", \"args\": {}}", "'shell.run' is not an action" },
        { "{\"index\": 3, \"action\": \"sysctl.set\"}", "steps[3].args: missing" },
        { "{\"index\": 3, \"action\": 7, \"args\": {}}", "action: must be a string" },
        { "{\"index\": \"3\", \"action\": \"sysctl.set\", \"args\": {}}", "index: must be an integer" },
        { "{\"index\": 99, \"action\": \"sysctl.set\", \"args\": {}}", "index: must be an integer from 0 to 63" },
        { "{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {}, \"extra\": 1}", "extra: unknown member" },
        { "{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/yg0/forwarding\","
          " \"value\": 1}}", "args.value: must be a string" },
        { "{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/yg0/forwarding\","
          " \"value\": \"1\\n2\"}}", "printable ASCII on one line" },
        { "{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/yg0/forwarding\","
          " \"value\": \"1\", \"cmd\": \"reboot\"}}", "args.cmd: unknown member" },
        { "{\"index\": 3, \"action\": \"address.add\", \"args\": {\"address\": \"2001:db8:10::21\","
          " \"interface\": \"yg0\"}}", "has no prefix length" },
        { "{\"index\": 3, \"action\": \"address.add\", \"args\": {\"address\": \"2001:db8:10::zz/64\","
          " \"interface\": \"yg0\"}}", "args.address:" },
        { "{\"index\": 3, \"action\": \"address.add\", \"args\": {\"address\": \"2001:db8:10::21/64\","
          " \"interface\": \"../etc\"}}", "not a valid interface name" },
        { "{\"index\": 3, \"action\": \"address.add\", \"args\": {\"address\": \"2001:db8:10::21/64\","
          " \"interface\": \"yg0\", \"nodad\": \"yes\"}}", "nodad: must be true or false" },
        { "{\"index\": 3, \"action\": \"address.add\", \"args\": {\"address\": \"192.0.2.5/24\","
          " \"interface\": \"yg0\", \"nodad\": true}}", "IPv6 only" },
        { "{\"index\": 3, \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\", \"via\": \"192.0.2.1\","
          " \"interface\": \"yg0\"}}", "the dst '::/0' is IPv6" },
        { "{\"index\": 3, \"action\": \"route.add\", \"args\": {\"dst\": \"2001:db8::1/64\","
          " \"interface\": \"yg0\"}}", "host bits" },
        { "{\"index\": 3, \"action\": \"route.add\", \"args\": {\"dst\": \"default\", \"interface\": \"yg0\"}}",
          "0.0.0.0/0 or ::/0" },
        { "{\"index\": 3, \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\"}}", "needs \"via\"" },
        { "{\"index\": 3, \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\", \"interface\": \"yg0\","
          " \"metric\": -1}}", "metric: must be an integer" },
        { "{\"index\": 3, \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\", \"interface\": \"yg0\","
          " \"table\": 255}}", "local table" },
        { "{\"index\": 3, \"action\": \"link.set-mtu\", \"args\": {\"interface\": \"yg0\", \"mtu\": 67}}",
          "mtu: must be an integer from 68 to 65535" },
        { "{\"index\": 3, \"action\": \"link.set-mtu\", \"args\": {\"interface\": \"yg0\", \"mtu\": 1500.0}}",
          "mtu: must be an integer" },
        { "{\"index\": 3, \"action\": \"check.run\", \"args\": {\"expect\": \"green\"}}",
          "'green' is not one of dual-stack-ready" },
        { "{\"index\": 3, \"action\": \"check.run\", \"args\": {\"expect\": \"pass\", \"check\": \"ping\"}}",
          "'ping' is not a check" },
        { "{\"index\": 3, \"action\": \"check.run\", \"args\": {\"expect\": \"pass\", \"check\":"
          " \"link-local\", \"reason\": \"NO_GLOBAL_IPV6\"}}", "belongs to the check 'ipv6-global-address'" },
        { "{\"index\": 3, \"action\": \"check.run\", \"args\": {\"expect\": \"pass\", \"timeout_ms\": 120001}}",
          "timeout_ms: must be an integer from 0 to 120000" },
        { "{\"index\": 3, \"action\": \"wait.for\", \"args\": {\"condition\": \"neighbour-reachable\","
          " \"address\": \"2001:db8:10::1/64\", \"interface\": \"yg0\"}}", "leave out the prefix length" },
        { "{\"index\": 3, \"action\": \"wait.for\", \"args\": {\"condition\": \"pingable\","
          " \"address\": \"2001:db8:10::1\", \"interface\": \"yg0\"}}", "'pingable' is not one of" },
        { "{\"index\": 3, \"action\": \"wait.for\", \"args\": {\"condition\": \"address-usable\","
          " \"address\": \"2001:db8:10::1\", \"interface\": \"yg0\", \"timeout_ms\": 9999999}}",
          "timeout_ms: must be an integer from 0 to 120000" },
        { "{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/yg0/forwarding\","
          " \"value\": \"1\"}, \"when\": {\"status\": \"fail\"}}", "when.check: missing" },
        { "{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/yg0/forwarding\","
          " \"value\": \"1\"}, \"when\": {\"check\": \"link-local\", \"status\": \"bad\"}}",
          "when.status: 'bad' is not one of pass, warn, fail" },
        { "{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/yg0/forwarding\","
          " \"value\": \"1\"}, \"verify\": {\"expect\": \"pass\", \"timeout_ms\": true}}",
          "verify.timeout_ms: must be an integer" },
        { "{\"index\": 3, \"action\": \"check.run\", \"args\": {\"expect\": \"pass\"}, \"verify\":"
          " {\"expect\": \"pass\"}}", "nothing to verify" },
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(cases); i++)
        expect_refused(cases[i].json, cases[i].fragment);

    /* A long name and a long value are refused, not truncated. */
    char name[STEPS_MAX_NAME + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char *text = xasprintf("{\"index\": 3, \"name\": \"%s\", \"action\": \"check.run\", \"args\":"
                           " {\"expect\": \"pass\"}}", name);
    expect_refused(text, "name: must be 1 to 128 characters");
    free(text);
}

static void test_names_round_trip(void **state)
{
    (void) state;
    for (int i = 0; i < STEP_STATUS_MAX; i++)
        assert_int_equal(step_status_from_string(step_status_to_string(i)), i);
    for (int i = 0; i < STEP_MODE_MAX; i++)
        assert_int_equal(step_mode_from_string(step_mode_to_string(i)), i);
    assert_int_equal(step_status_from_string("done"), -1);
}

/* ---- tasks ---- */

static char state_dir[64];

static void make_state_dir(void)
{
    snprintf(state_dir, sizeof state_dir, "/tmp/test-steps-XXXXXX");
    assert_non_null(mkdtemp(state_dir));
}

static size_t count_files(const char *suffix)
{
    DIR *d = opendir(state_dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), ls = strlen(suffix);
        if (l > ls && streq(de->d_name + l - ls, suffix))
            n++;
    }
    closedir(d);
    return n;
}

static void remove_state_dir(void)
{
    DIR *d = opendir(state_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
            continue;
        char *p = xasprintf("%s/%s", state_dir, de->d_name);
        unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(state_dir);
}

#define SEGMENT_JSON "{\"name\": \"health-dmz\", \"interface\": \"yg0\", \"ipv4_prefix\": \"192.0.2.0/24\"," \
    " \"ipv4_gateway\": \"192.0.2.1\", \"ipv6_prefix\": \"2001:db8:10::/64\", \"ipv6_gateway\": \"2001:db8:10::1\"," \
    " \"plan\": {\"ipv4_address\": \"192.0.2.21\", \"ipv6_address\": \"2001:db8:10::21\"}}"

/* Four steps; the third waits for a gateway that does not exist. */
#define FAILING_TASK "{\"id\": 17, \"run\": 5, \"mode\": \"apply\", \"playbook\": \"enable-dual-stack\"," \
    " \"segment\": " SEGMENT_JSON ", \"timeout_ms\": 60000, \"steps\": [" \
    "{\"index\": 0, \"name\": \"forwarding\", \"action\": \"sysctl.set\", \"args\": {\"key\":" \
    " \"net/ipv6/conf/yg0/forwarding\", \"value\": \"1\"}}," \
    "{\"index\": 1, \"name\": \"address\", \"action\": \"address.add\", \"args\": {\"address\":" \
    " \"2001:db8:10::21/64\", \"interface\": \"yg0\", \"nodad\": true}," \
    " \"verify\": {\"check\": \"ipv6-global-address\", \"expect\": \"pass\", \"timeout_ms\": 5000}}," \
    "{\"index\": 2, \"name\": \"gateway\", \"action\": \"wait.for\", \"args\": {\"condition\":" \
    " \"neighbour-reachable\", \"address\": \"2001:db8:10::1\", \"interface\": \"yg0\", \"timeout_ms\": 1500}}," \
    "{\"index\": 3, \"name\": \"default route\", \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\"," \
    " \"via\": \"2001:db8:10::1\", \"interface\": \"yg0\"}}]}"

static struct task *parse_task(const char *text, int mode)
{
    json_error_t jerr;
    json_t *js = json_loads(text, 0, &jerr);
    if (!js)
        fail_msg("bad test JSON: %s", jerr.text);
    struct task *t = NULL;
    char *err = NULL;
    int r = task_from_json(js, mode, &t, NULL, &err);
    json_decref(js);
    if (r < 0)
        fail_msg("task refused: %s", err);
    return t;
}

static const char *step_status_at(json_t *result, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(result, "steps"), i), "status"));
}

static void test_task_rollback(void **state)
{
    (void) state;
    make_state_dir();
    char *before = state_dump();
    struct task *t = parse_task(FAILING_TASK, -1);
    struct task_run_options o = { .state_dir = state_dir };
    json_t *res = task_run(sock, t, &o);
    if (getenv("YG_TEST_VERBOSE"))
        json_dumpf(res, stderr, JSON_INDENT(2));
    assert_string_equal(json_string_value(json_object_get(res, "status")), "failed");
    assert_true(json_is_true(json_object_get(res, "rolled_back")));
    assert_true(json_is_true(json_object_get(res, "rollback_ok")));
    assert_string_equal(step_status_at(res, 0), "undone");
    assert_string_equal(step_status_at(res, 1), "undone");
    assert_string_equal(step_status_at(res, 2), "failed");
    assert_string_equal(step_status_at(res, 3), "not-run");
    assert_non_null(strstr(json_string_value(json_object_get(res, "message")), "step 2 'gateway' failed"));
    /* The kernel is back where it was; the journal is gone, the result kept. */
    expect_state(before);
    assert_int_equal(count_files(".journal"), 0);
    assert_int_equal(count_files(".result"), 1);
    json_t *stored = NULL;
    assert_int_equal(tasks_result_load(state_dir, 17, &stored), 0);
    assert_true(json_equal(stored, res));
    json_decref(stored);
    int64_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(tasks_results_pending(state_dir, &ids, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 17);
    free(ids);
    assert_int_equal(tasks_result_remove(state_dir, 17), 0);
    assert_int_equal(count_files(".result"), 0);
    json_decref(res);
    task_free(t);
    free(before);
    remove_state_dir();
    assert_baseline();
}

static void test_task_check_mode(void **state)
{
    (void) state;
    make_state_dir();
    char *before = state_dump();
    struct task *t = parse_task(FAILING_TASK, STEP_MODE_CHECK);
    struct task_run_options o = { .state_dir = state_dir };
    json_t *res = task_run(sock, t, &o);
    assert_string_equal(json_string_value(json_object_get(res, "status")), "succeeded");
    assert_string_equal(step_status_at(res, 0), "would-change");
    assert_string_equal(step_status_at(res, 1), "would-change");
    assert_string_equal(step_status_at(res, 2), "skipped");
    assert_string_equal(step_status_at(res, 3), "would-change");
    json_t *s0 = json_array_get(json_object_get(res, "steps"), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "before")), "0");
    assert_string_equal(json_string_value(json_object_get(s0, "after")), "1");
    char *after = state_dump();
    assert_same_state(before, after);
    assert_int_equal(count_files(".journal"), 0);
    json_decref(res);
    task_free(t);
    free(before);
    free(after);
    remove_state_dir();
}

/* A whole apply that succeeds, again (all unchanged), then undone by a
 * second task.  Its indexes have gaps, as when a parameter left steps out. */
static void test_task_succeeds(void **state)
{
    (void) state;
    const char *apply = "{\"id\": 18, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"steps\": ["
        "{\"index\": 0, \"action\": \"address.add\", \"args\": {\"address\": \"2001:db8:10::21/64\","
        " \"interface\": \"yg0\", \"nodad\": true}},"
        "{\"index\": 2, \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\", \"via\": \"2001:db8:10::1\","
        " \"interface\": \"yg0\"}, \"when\": {\"check\": \"ipv6-default-route\", \"status\": \"fail\"}},"
        "{\"index\": 5, \"action\": \"check.run\", \"args\": {\"check\": \"ipv6-global-address\","
        " \"expect\": \"pass\", \"timeout_ms\": 2000}}]}";
    const char *revert = "{\"id\": 19, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"steps\": ["
        "{\"index\": 0, \"action\": \"route.remove\", \"args\": {\"dst\": \"::/0\"}},"
        "{\"index\": 1, \"action\": \"address.remove\", \"args\": {\"address\": \"2001:db8:10::21/64\","
        " \"interface\": \"yg0\"}}]}";
    struct task_run_options o = { 0 };
    struct task *t = parse_task(apply, -1);
    json_t *res = task_run(sock, t, &o);
    assert_string_equal(json_string_value(json_object_get(res, "status")), "succeeded");
    assert_string_equal(step_status_at(res, 0), "changed");
    /* ipv6-default-route passes without any IPv4 default route: skipped. */
    assert_string_equal(step_status_at(res, 1), "skipped");
    assert_string_equal(step_status_at(res, 2), "unchanged");
    json_decref(res);
    res = task_run(sock, t, &o);
    assert_string_equal(json_string_value(json_object_get(res, "status")), "succeeded");
    assert_string_equal(step_status_at(res, 0), "unchanged");
    json_decref(res);
    task_free(t);
    t = parse_task(revert, -1);
    res = task_run(sock, t, &o);
    assert_string_equal(json_string_value(json_object_get(res, "status")), "succeeded");
    assert_string_equal(step_status_at(res, 0), "unchanged");
    assert_string_equal(step_status_at(res, 1), "changed");
    json_decref(res);
    task_free(t);
    assert_baseline();
}

/* Stop the process in the middle of an apply (after the second change,
 * as a crash would), then recover as a restarted agent does. */
static void crash_after_two(const struct task *t, json_t *result, void *userdata)
{
    (void) t;
    (void) userdata;
    if (streq(step_status_at(result, 1), "changed"))
        _exit(0);
}

static void test_journal_recovery(void **state)
{
    (void) state;
    make_state_dir();
    char *before = state_dump();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct task *t = parse_task(FAILING_TASK, -1);
        struct task_run_options o = { .state_dir = state_dir, .progress = crash_after_two };
        task_run(sock, t, &o);
        _exit(3);       /* not reached */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The child's changes are in the kernel, and in its journal. */
    assert_true(has_line("2001:db8:10::21/64"));
    assert_int_equal(count_files(".journal"), 1);
    assert_int_equal(count_files(".result"), 0);
    /* A torn line (a crash during a journal write) is ignored. */
    char *jpath = xasprintf("%s/task-17.journal", state_dir);
    FILE *f = fopen(jpath, "a");
    assert_non_null(f);
    fputs("{\"index\": 3, \"undo\": [{\"op\": \"sysc", f);
    fclose(f);
    free(jpath);

    size_t n = 0;
    assert_int_equal(tasks_recover(sock, state_dir, &n), 0);
    assert_int_equal(n, 1);
    expect_state(before);
    assert_int_equal(count_files(".journal"), 0);
    json_t *res = NULL;
    assert_int_equal(tasks_result_load(state_dir, 17, &res), 0);
    assert_string_equal(json_string_value(json_object_get(res, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(res, "message")),
                        "agent restarted during the task; rolled back");
    assert_true(json_is_true(json_object_get(res, "rolled_back")));
    assert_true(json_is_true(json_object_get(res, "rollback_ok")));
    assert_string_equal(step_status_at(res, 0), "undone");
    assert_string_equal(step_status_at(res, 1), "undone");
    assert_string_equal(step_status_at(res, 2), "not-run");
    json_decref(res);
    /* Nothing left to recover. */
    assert_int_equal(tasks_recover(sock, state_dir, &n), 0);
    assert_int_equal(n, 0);
    free(before);
    remove_state_dir();
    assert_baseline();
}

/* The agent stopping (SIGTERM) ends a long wait at once; the task is
 * rolled back.  should_stop is asked before each step and in each round
 * of a wait: the third call is the wait's first round. */
static int stop_calls;
static bool stop_on_third_call(void *userdata)
{
    (void) userdata;
    return ++stop_calls >= 3;
}

static void test_task_stop_in_wait(void **state)
{
    (void) state;
    char *before = state_dump();
    struct task *t = parse_task("{\"id\": 21, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"steps\": ["
        "{\"index\": 0, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/yg0/accept_ra\","
        " \"value\": \"0\"}},"
        "{\"index\": 1, \"action\": \"wait.for\", \"args\": {\"condition\": \"neighbour-reachable\","
        " \"address\": \"2001:db8:10::98\", \"interface\": \"yg0\", \"timeout_ms\": 120000}}]}", -1);
    stop_calls = 0;
    struct task_run_options o = { .should_stop = stop_on_third_call };
    json_t *res = task_run(sock, t, &o);
    assert_string_equal(json_string_value(json_object_get(res, "status")), "failed");
    assert_string_equal(step_status_at(res, 0), "undone");
    assert_string_equal(step_status_at(res, 1), "failed");
    /* Ended by the stop, not by its 120 s bound ("not within …"). */
    assert_non_null(strstr(json_string_value(json_object_get(res, "message")),
                           "neighbour-reachable: the agent is stopping"));
    expect_state(before);
    json_decref(res);
    task_free(t);
    free(before);
}

static void test_task_wire(void **state)
{
    (void) state;
    static const struct { const char *json, *fragment; } cases[] = {
        { "[]", "task: must be an object" },
        { "{\"id\": 0}", "task.id: must be an integer of 1 or more" },
        { "{\"id\": 4, \"mode\": \"apply\", \"steps\": []}", "task.segment: missing" },
        { "{\"id\": 4, \"mode\": \"force\", \"segment\": " SEGMENT_JSON "}", "task.mode" },
        { "{\"id\": 4, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"steps\": []}", "task.steps: missing or empty" },
        { "{\"id\": 4, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"exec\": \"/bin/sh\"}", "task.exec: unknown member" },
        { "{\"id\": 4, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"timeout_ms\": 0, \"steps\": []}", "task.timeout_ms" },
        { "{\"id\": 4, \"mode\": \"apply\", \"segment\": {\"name\": \"x\", \"interface\": \"a/b\"},"
          " \"steps\": []}", "task.segment.interface" },
        { "{\"id\": 4, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"steps\": [{\"index\": 1,"
          " \"action\": \"check.run\", \"args\": {\"expect\": \"pass\"}}, {\"index\": 1, \"action\": \"check.run\","
          " \"args\": {\"expect\": \"pass\"}}]}", "task.steps[1].index: 1 does not follow 1" },
        { "{\"id\": 4, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"steps\": [{\"index\": 0,"
          " \"action\": \"sysctl.set\", \"args\": {\"key\": \"kernel/modprobe\", \"value\": \"/tmp/x\"}}]}",
          "task.steps[0].args.key: 'kernel/modprobe' is outside" },
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(cases); i++) {
        json_t *js = json_loads(cases[i].json, 0, NULL);
        assert_non_null(js);
        struct task *t = NULL;
        char *err = NULL;
        int64_t id = 0;
        assert_int_equal(task_from_json(js, -1, &t, &id, &err), -EINVAL);
        json_decref(js);
        if (!strstr(err, cases[i].fragment))
            fail_msg("message '%s' does not contain '%s'", err, cases[i].fragment);
        free(err);
    }
    /* More steps than a playbook may have. */
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "{\"id\": 4, \"mode\": \"apply\", \"segment\": " SEGMENT_JSON ", \"steps\": [");
    for (int i = 0; i <= PLAYBOOK_MAX_STEPS; i++)
        strbuf_printf(&sb, "%s{\"index\": %d, \"action\": \"check.run\", \"args\": {\"expect\": \"pass\"}}",
                      i ? "," : "", i);
    strbuf_puts(&sb, "]}");
    char *text = strbuf_steal(&sb);
    json_t *js = json_loads(text, 0, NULL);
    free(text);
    struct task *t = NULL;
    char *err = NULL;
    assert_int_equal(task_from_json(js, -1, &t, NULL, &err), -EINVAL);
    assert_non_null(strstr(err, "more than the limit of 64"));
    free(err);
    json_decref(js);
}

int main(void)
{
    int r = make_namespace();
    if (r != 0)
        return r;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_wire_validation),
        cmocka_unit_test(test_sysctl_key_refused),
        cmocka_unit_test(test_sysctl_set),
        cmocka_unit_test(test_address_add),
        cmocka_unit_test(test_address_add_v4),
        cmocka_unit_test(test_address_remove),
        cmocka_unit_test(test_route_add_replace),
        cmocka_unit_test(test_route_remove),
        cmocka_unit_test(test_link_set_mtu),
        cmocka_unit_test(test_ipv6_off_restored),
        cmocka_unit_test(test_check_run_and_wait),
        cmocka_unit_test(test_impossible),
        cmocka_unit_test(test_task_wire),
        cmocka_unit_test(test_task_rollback),
        cmocka_unit_test(test_task_check_mode),
        cmocka_unit_test(test_task_succeeds),
        cmocka_unit_test(test_journal_recovery),
        cmocka_unit_test(test_task_stop_in_wait),
    };
    if (wait_settled() != 0)
        return 1;
    baseline = state_dump();
    r = cmocka_run_group_tests(tests, NULL, NULL);
    free(baseline);
    desired_segment_clear(&segment);
    steps_socket_free(sock);
    return r;
}

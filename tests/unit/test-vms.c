/* The pure parts of the VM path: the VM state table, deterministic libvirt
 * names, placement (a table of cases), address allocation, and the domain
 * XML (golden files: YG_REGENERATE=1 rewrites them for review). */
#include <config.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "addresses.h"
#include "domain-xml.h"
#include "ip.h"
#include "placement.h"
#include "util.h"
#include "vms.h"

static void test_state_names(void **state)
{
    for (int s = 0; s < VM_STATE_MAX; s++) {
        const char *name = vm_state_to_string((enum vm_state) s);
        assert_non_null(name);
        assert_int_equal(vm_state_from_string(name), s);
    }
    assert_int_equal(vm_state_from_string("runing"), -1);
    assert_null(vm_state_to_string(VM_STATE_MAX));
    for (int a = 0; a < VM_ACTION_MAX; a++)
        assert_int_equal(vm_action_from_string(vm_action_to_string((enum vm_action) a)), a);
}

static void test_transition_table(void **state)
{
    /* The closed loop: every state but 'pending' is reachable, only
     * 'decommissioned' is final, and each pair is listed once. */
    bool reachable[VM_STATE_MAX] = { [VM_PENDING] = true };
    for (size_t i = 0; i < vm_n_transitions; i++) {
        reachable[vm_transitions[i].to] = true;
        assert_int_not_equal(vm_transitions[i].from, VM_DECOMMISSIONED);
        assert_int_not_equal(vm_transitions[i].from, vm_transitions[i].to);
        for (size_t k = i + 1; k < vm_n_transitions; k++)
            assert_false(vm_transitions[i].from == vm_transitions[k].from &&
                         vm_transitions[i].to == vm_transitions[k].to);
    }
    for (int s = 0; s < VM_STATE_MAX; s++)
        assert_true(reachable[s]);
    assert_true(vm_transition_allowed(VM_PENDING, VM_PROVISIONING));
    assert_true(vm_transition_allowed(VM_RUNNING, VM_STOPPED));
    assert_true(vm_transition_allowed(VM_STOPPED, VM_RUNNING));
    assert_true(vm_transition_allowed(VM_STOPPING, VM_DECOMMISSIONING));
    assert_true(vm_transition_allowed(VM_DECOMMISSIONING, VM_DECOMMISSIONED));
    assert_true(vm_transition_allowed(VM_RUNNING, VM_UNKNOWN));
    assert_false(vm_transition_allowed(VM_PROVISIONING, VM_STOPPING));    /* let the journal finish */
    assert_false(vm_transition_allowed(VM_RUNNING, VM_DECOMMISSIONED));   /* no skipping the wipe */
    assert_false(vm_transition_allowed(VM_DECOMMISSIONED, VM_RUNNING));
}

static void test_names(void **state)
{
    char name[64], uuid[37], again[37];
    vms_domain_name("0a1b2c3d", 42, name);
    assert_string_equal(name, "yg-0a1b2c3d-vm-42");
    assert_int_equal(vms_id_from_domain("0a1b2c3d", name), 42);
    assert_int_equal(vms_id_from_domain("ffffffff", name), -1);
    assert_int_equal(vms_id_from_domain("0a1b2c3d", "yg-0a1b2c3d-vm-"), -1);
    assert_int_equal(vms_id_from_domain("0a1b2c3d", "yg-0a1b2c3d-vm-4x"), -1);
    assert_int_equal(vms_id_from_domain("0a1b2c3d", "test"), -1);
    vms_domain_uuid("0a1b2c3d", 42, uuid);
    vms_domain_uuid("0a1b2c3d", 42, again);
    assert_string_equal(uuid, again);                   /* deterministic */
    assert_int_equal(strlen(uuid), 36);
    assert_int_equal(uuid[14], '5');                    /* name-based version */
    vms_domain_uuid("0a1b2c3d", 43, again);
    assert_string_not_equal(uuid, again);
    vms_domain_uuid("0a1b2c3e", 42, again);
    assert_string_not_equal(uuid, again);
}

/* ---- placement ---- */

#define H(n, up, dr, car, cpus, mem, disk, uv, um, ud) \
    { n, up, dr, car, cpus, mem, disk, uv, um, ud }

struct placement_case {
    const char *what;
    struct placement_host hosts[4];
    size_t n_hosts;
    struct placement_vm vms[4];
    size_t n_vms;
    double overcommit;
    int result;
    const char *expect;     /* host names in VM order, or a piece of the reason */
};

static const struct placement_case placement_cases[] = {
    { "one VM, one host", { H("hv01", 1, 0, 1, 4, 8192, 100, 0, 0, 0) }, 1,
      { { 2, 4096, 40 } }, 1, 4.0, 0, "hv01" },
    { "count 2 spreads over two hosts",
      { H("hv01", 1, 0, 1, 16, 65536, 1000, 0, 0, 0), H("hv02", 1, 0, 1, 16, 65536, 1000, 0, 0, 0) }, 2,
      { { 2, 4096, 40 }, { 2, 4096, 40 } }, 2, 4.0, 0, "hv01 hv02" },
    { "count 3 over two hosts: 2 + 1, the emptier first",
      { H("hv01", 1, 0, 1, 16, 65536, 1000, 0, 8192, 0), H("hv02", 1, 0, 1, 16, 65536, 1000, 0, 0, 0) }, 2,
      { { 1, 1024, 10 }, { 1, 1024, 10 }, { 1, 1024, 10 } }, 3, 4.0, 0, "hv02 hv01 hv02" },
    { "drained host gets nothing",
      { H("hv01", 1, 1, 1, 64, 262144, 1000, 0, 0, 0), H("hv02", 1, 0, 1, 4, 8192, 100, 0, 0, 0) }, 2,
      { { 2, 4096, 40 } }, 1, 4.0, 0, "hv02" },
    { "host without the segment gets nothing",
      { H("hv01", 1, 0, 0, 64, 262144, 1000, 0, 0, 0), H("hv02", 1, 0, 1, 4, 8192, 100, 0, 0, 0) }, 2,
      { { 2, 4096, 40 } }, 1, 4.0, 0, "hv02" },
    { "down host gets nothing",
      { H("hv01", 0, 0, 1, 64, 262144, 1000, 0, 0, 0), H("hv02", 1, 0, 1, 4, 8192, 100, 0, 0, 0) }, 2,
      { { 2, 4096, 40 } }, 1, 4.0, 0, "hv02" },
    { "vCPU overcommit: 4 CPUs x 4.0 = 16 vCPUs, 14 used, 2 more fit",
      { H("hv01", 1, 0, 1, 4, 65536, 1000, 14, 0, 0) }, 1, { { 2, 1024, 10 } }, 1, 4.0, 0, "hv01" },
    { "vCPU overcommit: 3 more do not fit",
      { H("hv01", 1, 0, 1, 4, 65536, 1000, 14, 0, 0) }, 1, { { 3, 1024, 10 } }, 1, 4.0, -ENOSPC,
      "hv01: vCPUs: 2 free of 16 (4 CPUs x 4), 3 needed" },
    { "overcommit 1.0 is strict",
      { H("hv01", 1, 0, 1, 4, 65536, 1000, 3, 0, 0) }, 1, { { 2, 1024, 10 } }, 1, 1.0, -ENOSPC,
      "vCPUs: 1 free of 4" },
    { "memory is never overcommitted",
      { H("hv01", 1, 0, 1, 64, 8192, 1000, 0, 6144, 0) }, 1, { { 1, 4096, 10 } }, 1, 4.0, -ENOSPC,
      "hv01: memory: 2048 MiB free of 8192 MiB, 4096 MiB needed" },
    { "disk from the pool",
      { H("hv01", 1, 0, 1, 64, 65536, 100, 0, 0, 80) }, 1, { { 1, 1024, 40 } }, 1, 4.0, -ENOSPC,
      "hv01: disk: 20 GiB free of 100 GiB, 40 GiB needed" },
    { "all or nothing: the second VM does not fit, nothing is placed",
      { H("hv01", 1, 0, 1, 64, 8192, 1000, 0, 0, 0) }, 1, { { 1, 4096, 10 }, { 1, 8192, 10 } }, 2, 4.0,
      -ENOSPC, "no host can take VM 2 of 2" },
    { "every host named with its reason",
      { H("hv01", 1, 1, 1, 64, 65536, 1000, 0, 0, 0), H("hv02", 1, 0, 0, 64, 65536, 1000, 0, 0, 0),
        H("hv03", 0, 0, 1, 64, 65536, 1000, 0, 0, 0) }, 3, { { 1, 1024, 10 } }, 1, 4.0, -ENOSPC,
      "hv01: drained; hv02: does not carry segment 'dmz'; hv03: down (libvirt not reachable)" },
    { "no hosts at all", { { 0 } }, 0, { { 1, 1024, 10 } }, 1, 4.0, -ENOSPC,
      "no hypervisor host is registered" },
};

static void test_placement(void **state)
{
    for (size_t c = 0; c < YG_ARRAY_SIZE(placement_cases); c++) {
        const struct placement_case *pc = &placement_cases[c];
        struct placement_host hosts[4];
        memcpy(hosts, pc->hosts, sizeof hosts);
        size_t assign[4] = { 0 };
        char *reason = NULL;
        int r = placement_place(hosts, pc->n_hosts, pc->vms, pc->n_vms, pc->overcommit, "dmz", assign, &reason);
        if (r != pc->result)
            fail_msg("case '%s': result %d, expected %d (%s)", pc->what, r, pc->result, reason ? reason : "");
        if (r == 0) {
            struct strbuf sb;
            strbuf_init(&sb);
            for (size_t v = 0; v < pc->n_vms; v++)
                strbuf_printf(&sb, "%s%s", v ? " " : "", hosts[assign[v]].name);
            char *got = strbuf_steal(&sb);
            if (!streq(got, pc->expect))
                fail_msg("case '%s': placed on '%s', expected '%s'", pc->what, got, pc->expect);
            free(got);
            /* What was placed is counted on the hosts. */
            int64_t vcpus = 0, before = 0;
            for (size_t i = 0; i < pc->n_hosts; i++) {
                vcpus += hosts[i].used_vcpus;
                before += pc->hosts[i].used_vcpus;
            }
            for (size_t v = 0; v < pc->n_vms; v++)
                before += pc->vms[v].vcpus;
            assert_int_equal(vcpus, before);
        } else {
            if (!reason || !strstr(reason, pc->expect))
                fail_msg("case '%s': reason '%s' does not contain '%s'", pc->what, reason ? reason : "",
                         pc->expect);
            /* Nothing changed on failure. */
            assert_memory_equal(hosts, pc->hosts, pc->n_hosts * sizeof hosts[0]);
        }
        free(reason);
    }
}

/* ---- addresses ---- */

static struct ip_prefix P(const char *s)
{
    struct ip_prefix p;
    assert_int_equal(ip_prefix_parse(s, &p, NULL), 0);
    return p;
}

static struct ip_addr A(const char *s)
{
    struct ip_addr a;
    assert_int_equal(ip_addr_parse(s, &a, NULL), 0);
    return a;
}

static void expect_next(const char *prefix, uint64_t first, const char *const *used, size_t n_used,
                        const char *expect)
{
    struct ip_prefix p = P(prefix);
    struct ip_addr u[8], got;
    for (size_t i = 0; i < n_used; i++)
        u[i] = A(used[i]);
    int r = addresses_next_free(&p, first, u, n_used, &got);
    if (!expect) {
        assert_int_equal(r, -ENOSPC);
        return;
    }
    assert_int_equal(r, 0);
    char buf[IP_ADDR_STRLEN];
    assert_string_equal(ip_addr_format(&got, buf), expect);
}

static void test_addresses(void **state)
{
    expect_next("198.51.100.0/24", 1, NULL, 0, "198.51.100.1");
    const char *gw[] = { "198.51.100.1" };
    expect_next("198.51.100.0/24", 1, gw, 1, "198.51.100.2");
    const char *some[] = { "198.51.100.3", "198.51.100.1", "198.51.100.2", "198.51.100.5" };
    expect_next("198.51.100.0/24", 1, some, 4, "198.51.100.4");
    /* A /30 has two host addresses; not the network, not the broadcast. */
    const char *two[] = { "192.0.2.1", "192.0.2.2" };
    expect_next("192.0.2.0/30", 1, two, 1, "192.0.2.2");
    expect_next("192.0.2.0/30", 1, two, 2, NULL);
    /* /31 (RFC 3021): both addresses. */
    expect_next("192.0.2.0/31", 0, NULL, 0, "192.0.2.0");
    const char *v6[] = { "2001:db8::10", "2001:db8::11" };
    expect_next("2001:db8::/64", 0x10, v6, 2, "2001:db8::12");
    expect_next("2001:db8::/126", 3, NULL, 0, "2001:db8::3");
    const char *full6[] = { "2001:db8::3" };
    expect_next("2001:db8::/126", 3, full6, 1, NULL);
    /* Addresses of the other family never collide. */
    const char *other[] = { "2001:db8::1" };
    expect_next("198.51.100.0/24", 1, other, 1, "198.51.100.1");
}

/* ---- domain XML (golden) ---- */

static void golden(const char *name, const char *got)
{
    const char *srcdir = getenv("top_srcdir");
    _cleanup_free_ char *path = xasprintf("%s/tests/unit/data/%s", srcdir ? srcdir : ".", name);
    if (getenv("YG_REGENERATE")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(got, f);
        fclose(f);
        return;
    }
    _cleanup_free_ char *want = NULL;
    size_t len;
    if (read_file_limited(path, 1 << 20, &want, &len) < 0)
        fail_msg("cannot read golden file %s (YG_REGENERATE=1 writes it)", path);
    if (!streq(want, got))
        fail_msg("%s differs; got:\n%s", path, got);
}

static void test_domain_xml(void **state)
{
    struct domain_spec spec = {
        .type = "qemu", .name = "yg-0a1b2c3d-vm-7", .uuid = "0f0e0d0c-0b0a-5908-8706-050403020100",
        .title = "health/vaccine-booking/web-1", .vcpus = 2, .memory_mib = 4096,
        .pool = "default", .volume = "yg-0a1b2c3d-vm-7.qcow2", .bridge = "br-dmz",
        .mac = "52:54:00:12:34:56", .vm_id = 7, .request_id = 3, .department = "health",
        .ipv4 = "198.51.100.7", .ipv6 = "2001:db8:10:0:5054:ff:fe12:3456",
    };
    _cleanup_free_ char *xml = domain_xml_build(&spec);
    assert_non_null(xml);
    golden("domain-basic.xml", xml);

    /* The library escapes: a title with markup stays text. */
    spec.title = "卫健委/<script>&'\"/web";
    spec.volume = NULL;
    spec.bridge = NULL;
    spec.ipv4 = spec.ipv6 = NULL;
    _cleanup_free_ char *xml2 = domain_xml_build(&spec);
    assert_non_null(xml2);
    golden("domain-escaped.xml", xml2);
    assert_null(strstr(xml2, "<script>"));

    _cleanup_free_ char *vol = domain_xml_volume("yg-0a1b2c3d-vm-7.qcow2", 1073741824ull,
                                                  "/var/lib/libvirt/images/kylin.qcow2", "qcow2");
    golden("volume-backed.xml", vol);
    _cleanup_free_ char *empty = domain_xml_volume("v.qcow2", 1048576ull, NULL, NULL);
    golden("volume-empty.xml", empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_domain_xml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

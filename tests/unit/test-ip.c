/* Unit tests for lib/ip.c: parsing, RFC 5952 text (the RFC's own
 * examples), containment, overlap, next free sub-prefix, EUI-64. */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "ip.h"
#include "util.h"

static struct ip_addr addr(const char *s)
{
    struct ip_addr a;
    assert_int_equal(ip_addr_parse(s, &a, NULL), 0);
    return a;
}

static struct ip_prefix prefix(const char *s)
{
    struct ip_prefix p;
    _cleanup_free_ char *err = NULL;
    int r = ip_prefix_parse(s, &p, &err);
    if (r < 0)
        fail_msg("'%s': %s", s, err);
    return p;
}

static void assert_formats(const char *in, const char *expected)
{
    char buf[IP_ADDR_STRLEN];
    struct ip_addr a = addr(in);
    assert_string_equal(ip_addr_format(&a, buf), expected);
}

/* RFC 5952 sections 2, 4 and 5: every way of writing the same address
 * comes out as the one recommended text. */
/* A long input is quoted cut at a character boundary, never inside a
 * UTF-8 sequence (messages are UTF-8 text; found by fuzz-playbook). */
static void test_error_quote_utf8(void **state)
{
    (void) state;
    char in[80];
    memset(in, 'a', 62);
    snprintf(in + 62, sizeof in - 62, "\xe6\xaf\x8f\xe6\xaf\x8f");   /* 每每: bytes 62-67 */
    struct ip_addr a;
    _cleanup_free_ char *err = NULL;
    assert_int_equal(ip_addr_parse(in, &a, &err), -EINVAL);
    _cleanup_free_ char *want = xasprintf("'%.62s\xe2\x80\xa6' is not an IPv4 or IPv6 address", in);
    assert_string_equal(err, want);
}

static void test_format_rfc5952(void **state)
{
    /* Section 2.1, leading zeros; 4.1. */
    assert_formats("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
    assert_formats("2001:0db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
    assert_formats("2001:db8::1:0:0:1", "2001:db8::1:0:0:1");
    assert_formats("2001:db8::0:1:0:0:1", "2001:db8::1:0:0:1");
    assert_formats("2001:0db8::1:0:0:1", "2001:db8::1:0:0:1");
    assert_formats("2001:db8:0:0:1::1", "2001:db8::1:0:0:1");
    assert_formats("2001:db8:0000:0:1::1", "2001:db8::1:0:0:1");
    assert_formats("2001:DB8:0:0:1::1", "2001:db8::1:0:0:1");
    /* Section 2.1 other examples. */
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd:eeee:0001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1");
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd:eeee:001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1");
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd:eeee:01", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1");
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd:eeee:1", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1");
    /* Section 2.2, zero compression. */
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd::1", "2001:db8:aaaa:bbbb:cccc:dddd:0:1");
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd:0:1", "2001:db8:aaaa:bbbb:cccc:dddd:0:1");
    assert_formats("2001:db8:0:0:0::1", "2001:db8::1");
    assert_formats("2001:db8:0:0::1", "2001:db8::1");
    assert_formats("2001:db8:0::1", "2001:db8::1");
    assert_formats("2001:db8::1", "2001:db8::1");
    assert_formats("2001:db8::aaaa:0:0:1", "2001:db8::aaaa:0:0:1");
    assert_formats("2001:db8:0:0:aaaa::1", "2001:db8::aaaa:0:0:1");
    /* Section 2.3, upper/lower case. */
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa");
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd:eeee:AAAA", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa");
    assert_formats("2001:db8:aaaa:bbbb:cccc:dddd:eeee:AaAa", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:aaaa");
    /* Section 4.1. */
    assert_formats("2001:0db8::0001", "2001:db8::1");
    /* Section 4.2.1: shorten as much as possible. */
    assert_formats("2001:db8:0:0:0:0:2:1", "2001:db8::2:1");
    /* Section 4.2.2: a single 16-bit 0 field is not compressed. */
    assert_formats("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
    /* Section 4.2.3: the longest run; the first of equal runs. */
    assert_formats("2001:0:0:1:0:0:0:1", "2001:0:0:1::1");
    assert_formats("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
    /* Section 4.3. */
    assert_formats("2001:DB8::ABCD", "2001:db8::abcd");
    /* Section 5: IPv4-mapped. */
    assert_formats("::ffff:192.0.2.1", "::ffff:192.0.2.1");
    assert_formats("0:0:0:0:0:ffff:c000:0201", "::ffff:192.0.2.1");

    /* Edges. */
    assert_formats("::", "::");
    assert_formats("::1", "::1");
    assert_formats("1::", "1::");
    assert_formats("0:0:0:0:0:0:0:1", "::1");
    assert_formats("1:0:0:0:0:0:0:0", "1::");
    assert_formats("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0");
    assert_formats("0:1:2:3:4:5:6:0", "0:1:2:3:4:5:6:0");
    assert_formats("fe80::0200:5eff:fe00:5301", "fe80::200:5eff:fe00:5301");
    assert_formats("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    /* Where glibc's inet_ntop writes an embedded IPv4 form: not mapped, so hex. */
    assert_formats("::1:2", "::1:2");
    assert_formats("::102:304", "::102:304");
    assert_formats("::ffff:0:1", "::ffff:0.0.0.1");      /* mapped: ::ffff:0:0/96 */
    assert_formats("::ffff:0:0:1", "::ffff:0:0:1");      /* not mapped */
    /* The longest run wins over an earlier shorter one. */
    assert_formats("1:0:0:2:0:0:0:3", "1:0:0:2::3");
    /* IPv4. */
    assert_formats("198.51.100.21", "198.51.100.21");
    assert_formats("0.0.0.0", "0.0.0.0");
}

/* Compare with glibc's inet_ntop where the RFC and glibc agree (no run of
 * exactly 6 or mapped-looking zeros): a broad sweep of patterns. */
static void test_format_sweep(void **state)
{
    for (unsigned mask = 0; mask < 256; mask++) {
        struct ip_addr a = { .family = AF_INET6 };
        for (int g = 0; g < 8; g++)
            if (mask & (1u << g)) {
                a.bytes[2 * g] = (uint8_t) (g * 17);
                a.bytes[2 * g + 1] = (uint8_t) (g + 1);
            }
        char ours[IP_ADDR_STRLEN], theirs[INET6_ADDRSTRLEN];
        ip_addr_format(&a, ours);
        inet_ntop(AF_INET6, a.bytes, theirs, sizeof theirs);
        /* Round trip always. */
        struct ip_addr back;
        assert_int_equal(ip_addr_parse(ours, &back, NULL), 0);
        assert_true(ip_addr_equal(&a, &back));
        if (!strchr(theirs, '.'))
            assert_string_equal(ours, theirs);
    }
}

static void assert_prefix_error(const char *in, const char *expected)
{
    struct ip_prefix p;
    _cleanup_free_ char *err = NULL;
    assert_int_equal(ip_prefix_parse(in, &p, &err), -EINVAL);
    assert_non_null(err);
    assert_string_equal(err, expected);
}

static void test_parse(void **state)
{
    struct ip_prefix p = prefix("2001:db8:10::/64");
    assert_int_equal(p.addr.family, AF_INET6);
    assert_int_equal(p.len, 64);
    p = prefix("198.51.100.0/24");
    assert_int_equal(p.addr.family, AF_INET);
    p = prefix("0.0.0.0/0");
    assert_int_equal(p.len, 0);
    p = prefix("::/0");
    assert_int_equal(p.len, 0);
    p = prefix("2001:db8::1/128");
    assert_int_equal(p.len, 128);

    assert_prefix_error("2001:db8::1/64", "'2001:db8::1/64' has host bits set; the prefix is 2001:db8::/64");
    assert_prefix_error("198.51.100.7/24",
                        "'198.51.100.7/24' has host bits set; the prefix is 198.51.100.0/24");
    assert_prefix_error("2001:DB8:0:0:1::/32",
                        "'2001:DB8:0:0:1::/32' has host bits set; the prefix is 2001:db8::/32");
    assert_prefix_error("2001:db8::", "'2001:db8::' has no prefix length (expected ADDRESS/LENGTH, e.g. 2001:db8:10::/64)");
    assert_prefix_error("10.0.0.0", "'10.0.0.0' has no prefix length (expected ADDRESS/LENGTH, e.g. 198.51.100.0/24)");
    assert_prefix_error("2001:db8::/129", "'2001:db8::/129' has an invalid prefix length '129' (IPv6: 0 to 128)");
    assert_prefix_error("10.0.0.0/33", "'10.0.0.0/33' has an invalid prefix length '33' (IPv4: 0 to 32)");
    assert_prefix_error("10.0.0.0/", "'10.0.0.0/' has an invalid prefix length '' (IPv4: 0 to 32)");
    assert_prefix_error("10.0.0.0/-1", "'10.0.0.0/-1' has an invalid prefix length '-1' (IPv4: 0 to 32)");
    assert_prefix_error("10.0.0.0/2x", "'10.0.0.0/2x' has an invalid prefix length '2x' (IPv4: 0 to 32)");
    assert_prefix_error("10.0.0/8", "'10.0.0/8' is not an IPv4 or IPv6 prefix: '10.0.0' is not an address");
    assert_prefix_error("fe80::1%eth0/64", "'fe80::1%eth0/64' is not an IPv4 or IPv6 prefix: 'fe80::1%eth0' is not an address");
    assert_prefix_error(" 10.0.0.0/8", "' 10.0.0.0/8' is not an IPv4 or IPv6 prefix");
    assert_prefix_error("", "'' is not an IPv4 or IPv6 prefix");

    /* Interface notation keeps the host bits. */
    _cleanup_free_ char *err = NULL;
    assert_int_equal(ip_addr_prefix_parse("2001:db8:10::21/64", &p, &err), 0);
    char buf[IP_PREFIX_STRLEN];
    assert_string_equal(ip_prefix_format(&p, buf), "2001:db8:10::21/64");

    struct ip_addr a;
    assert_int_equal(ip_addr_parse("2001:db8::1", &a, NULL), 0);
    assert_int_equal(ip_addr_parse("1.2.3.4", &a, NULL), 0);
    assert_int_equal(a.family, AF_INET);
    char *e = NULL;
    assert_int_equal(ip_addr_parse("1.2.3", &a, &e), -EINVAL);
    assert_string_equal(e, "'1.2.3' is not an IPv4 or IPv6 address");
    free(e);
    e = NULL;
    assert_int_equal(ip_addr_parse("01.2.3.4", &a, NULL), -EINVAL);
    assert_int_equal(ip_addr_parse("1:2:3:4:5:6:7:8:9", &a, NULL), -EINVAL);
    assert_int_equal(ip_addr_parse("2001:db8::/64", &a, &e), -EINVAL);
    assert_string_equal(e, "'2001:db8::/64' is a prefix, not a single address");
    free(e);
    e = NULL;
    assert_int_equal(ip_addr_parse_family("198.51.100.1", AF_INET6, &a, &e), -EINVAL);
    assert_string_equal(e, "'198.51.100.1' is not an IPv6 address");
    free(e);
    e = NULL;
    char longtext[200];
    memset(longtext, '1', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    assert_int_equal(ip_addr_parse(longtext, &a, &e), -EINVAL);
    assert_non_null(strstr(e, "…' is not an IPv4 or IPv6 address"));
    free(e);
}

static void test_contains_overlap(void **state)
{
    struct ip_prefix p = prefix("2001:db8:10::/64");
    struct ip_addr in = addr("2001:db8:10::21"), out = addr("2001:db8:11::21");
    struct ip_addr v4 = addr("198.51.100.21");
    assert_true(ip_prefix_contains(&p, &in));
    assert_false(ip_prefix_contains(&p, &out));
    assert_false(ip_prefix_contains(&p, &v4));
    struct ip_prefix p4 = prefix("198.51.100.0/24");
    assert_true(ip_prefix_contains(&p4, &v4));
    struct ip_addr v4b = addr("198.51.101.1");
    assert_false(ip_prefix_contains(&p4, &v4b));
    struct ip_prefix all = prefix("::/0");
    assert_true(ip_prefix_contains(&all, &out));
    struct ip_prefix odd = prefix("198.51.100.128/25");
    struct ip_addr a129 = addr("198.51.100.129"), a127 = addr("198.51.100.127");
    assert_true(ip_prefix_contains(&odd, &a129));
    assert_false(ip_prefix_contains(&odd, &a127));
    /* Non-octet boundary in IPv6. */
    struct ip_prefix p61 = prefix("2001:db8:0:8::/61");
    struct ip_addr x = addr("2001:db8:0:f::1"), y = addr("2001:db8:0:10::1");
    assert_true(ip_prefix_contains(&p61, &x));
    assert_false(ip_prefix_contains(&p61, &y));

    struct ip_prefix a = prefix("2001:db8::/48"), b = prefix("2001:db8:0:10::/64"),
                     c = prefix("2001:db8:1::/48"), d = prefix("10.0.0.0/8");
    assert_true(ip_prefix_overlap(&a, &b));
    assert_true(ip_prefix_overlap(&b, &a));
    assert_false(ip_prefix_overlap(&a, &c));
    assert_false(ip_prefix_overlap(&a, &d));
    assert_true(ip_prefix_overlap(&a, &a));
    struct ip_prefix e = prefix("10.1.0.0/16");
    assert_true(ip_prefix_overlap(&d, &e));
    assert_true(ip_prefix_equal(&a, &a));
    assert_false(ip_prefix_equal(&a, &b));

    struct ip_addr ll = addr("fe80::1"), lo = addr("::1"), mapped = addr("::ffff:10.0.0.1");
    assert_true(ip_addr_is_link_local(&ll));
    assert_false(ip_addr_is_link_local(&in));
    assert_true(ip_addr_is_loopback(&lo));
    assert_true(ip_addr_is_v4_mapped(&mapped));
    struct ip_addr any = addr("::"), any4 = addr("0.0.0.0");
    assert_true(ip_addr_is_unspecified(&any));
    assert_true(ip_addr_is_unspecified(&any4));
    assert_false(ip_addr_is_unspecified(&lo));
    assert_true(ip_addr_compare(&in, &out) < 0);
    assert_true(ip_addr_compare(&v4, &in) < 0);     /* AF_INET < AF_INET6 */
}

static void assert_next_free(const char *parent, unsigned len, const char *const *used,
                             size_t n_used, const char *expected)
{
    struct ip_prefix par = prefix(parent), got;
    struct ip_prefix u[16];
    assert_true(n_used <= YG_ARRAY_SIZE(u));
    for (size_t i = 0; i < n_used; i++)
        u[i] = prefix(used[i]);
    int r = ip_prefix_next_free(&par, len, u, n_used, &got);
    if (!expected) {
        assert_int_equal(r, -ENOSPC);
        return;
    }
    assert_int_equal(r, 0);
    char buf[IP_PREFIX_STRLEN];
    assert_string_equal(ip_prefix_format(&got, buf), expected);
}

static void test_next_free(void **state)
{
    assert_next_free("2001:db8:10::/48", 64, NULL, 0, "2001:db8:10::/64");
    const char *u1[] = { "2001:db8:10::/64", "2001:db8:10:1::/64" };
    assert_next_free("2001:db8:10::/48", 64, u1, 2, "2001:db8:10:2::/64");
    /* A hole is found; order of used[] does not matter. */
    const char *u2[] = { "2001:db8:10:2::/64", "2001:db8:10::/64" };
    assert_next_free("2001:db8:10::/48", 64, u2, 2, "2001:db8:10:1::/64");
    /* A larger used prefix is skipped in one step. */
    const char *u3[] = { "2001:db8:10::/52" };
    assert_next_free("2001:db8:10::/48", 64, u3, 1, "2001:db8:10:1000::/64");
    /* A smaller used prefix blocks its whole /64. */
    const char *u4[] = { "2001:db8:10::1/128" };
    assert_next_free("2001:db8:10::/48", 64, u4, 1, "2001:db8:10:1::/64");
    /* Prefixes outside the parent and of the other family are ignored. */
    const char *u5[] = { "2001:db8:11::/64", "10.0.0.0/8" };
    assert_next_free("2001:db8:10::/48", 64, u5, 2, "2001:db8:10::/64");
    /* Full. */
    const char *u6[] = { "2001:db8:10::/48" };
    assert_next_free("2001:db8:10::/48", 64, u6, 1, NULL);
    const char *u6b[] = { "2001:db8::/32" };
    assert_next_free("2001:db8:10::/48", 64, u6b, 1, NULL);
    const char *u7[] = { "198.51.100.0/26", "198.51.100.64/26", "198.51.100.128/26" };
    assert_next_free("198.51.100.0/24", 26, u7, 3, "198.51.100.192/26");
    const char *u8[] = { "198.51.100.0/26", "198.51.100.64/26", "198.51.100.128/26", "198.51.100.192/27" };
    assert_next_free("198.51.100.0/24", 26, u8, 4, NULL);
    /* The top of the address space: no wrap-around. */
    const char *u9[] = { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128" };
    assert_next_free("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", 128, u9, 1,
                     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    const char *u10[] = { "::/0" };
    assert_next_free("::/0", 64, u10, 1, NULL);
    assert_next_free("::/0", 0, NULL, 0, "::/0");
    const char *u11[] = { "255.255.255.255/32" };
    assert_next_free("255.255.255.254/31", 32, u11, 1, "255.255.255.254/32");
    /* Same length as the parent. */
    assert_next_free("2001:db8:10::/64", 64, NULL, 0, "2001:db8:10::/64");

    /* Bad arguments. */
    struct ip_prefix par = prefix("2001:db8:10::/48"), got;
    assert_int_equal(ip_prefix_next_free(&par, 40, NULL, 0, &got), -EINVAL);
    assert_int_equal(ip_prefix_next_free(&par, 129, NULL, 0, &got), -EINVAL);
    struct ip_prefix host;
    assert_int_equal(ip_addr_prefix_parse("2001:db8:10::1/48", &host, NULL), 0);
    assert_int_equal(ip_prefix_next_free(&host, 64, NULL, 0, &got), -EINVAL);

    /* Many used /64s in a /56: the 200th free one is found quickly. */
    struct ip_prefix used[256];
    struct ip_prefix parent = prefix("2001:db8:10::/56");
    for (int i = 0; i < 200; i++) {
        used[i] = prefix("2001:db8:10::/64");
        used[i].addr.bytes[7] = (uint8_t) (199 - i);     /* reversed order */
    }
    assert_int_equal(ip_prefix_next_free(&parent, 64, used, 200, &got), 0);
    char buf[IP_PREFIX_STRLEN];
    assert_string_equal(ip_prefix_format(&got, buf), "2001:db8:10:c8::/64");
}

static void test_eui64(void **state)
{
    uint8_t mac[6], iid[8];
    assert_int_equal(ip_mac_parse("52:54:00:12:34:56", mac), 0);
    ip_eui64_from_mac(mac, iid);
    static const uint8_t expected[8] = { 0x50, 0x54, 0x00, 0xff, 0xfe, 0x12, 0x34, 0x56 };
    assert_memory_equal(iid, expected, 8);
    /* RFC 4291 appendix A: 34-56-78-9A-BC-DE → 3656:78ff:fe9a:bcde. */
    assert_int_equal(ip_mac_parse("34-56-78-9A-BC-DE", mac), 0);
    struct ip_prefix p = prefix("2001:db8:10::/64");
    struct ip_addr a;
    assert_int_equal(ip_eui64_address(&p, mac, &a), 0);
    char buf[IP_ADDR_STRLEN];
    assert_string_equal(ip_addr_format(&a, buf), "2001:db8:10:0:3656:78ff:fe9a:bcde");
    struct ip_prefix p48 = prefix("2001:db8::/48");
    assert_int_equal(ip_eui64_address(&p48, mac, &a), -EINVAL);
    assert_int_equal(ip_mac_parse("52:54:00:12:34", mac), -EINVAL);
    assert_int_equal(ip_mac_parse("52:54:00:12:34:5g", mac), -EINVAL);
    assert_int_equal(ip_mac_parse("52:54-00:12:34:56", mac), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_rfc5952),
        cmocka_unit_test(test_format_sweep),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_contains_overlap),
        cmocka_unit_test(test_next_free),
        cmocka_unit_test(test_eui64),
        cmocka_unit_test(test_error_quote_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include <config.h>
#include "ip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "util.h"

/* Inputs longer than this are not addresses or prefixes of any family
 * (the longest IPv6 text with a prefix length is 49 characters). */
#define IP_TEXT_MAX 64

unsigned ip_family_bits(int family)
{
    return family == AF_INET ? 32 : family == AF_INET6 ? 128 : 0;
}

const char *ip_family_name(int family)
{
    return family == AF_INET ? "IPv4" : family == AF_INET6 ? "IPv6" : "unknown";
}

static void set_error(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(char **ret_error, const char *fmt, ...)
{
    if (!ret_error)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(ret_error, fmt, ap) < 0)
        abort();
    va_end(ap);
}

/* Copy s into buf when it fits and holds only printable ASCII without
 * spaces; false otherwise. */
static bool copy_text(const char *s, char buf[static IP_TEXT_MAX + 1])
{
    size_t n = strlen(s);
    if (n == 0 || n > IP_TEXT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    memcpy(buf, s, n + 1);
    return true;
}

/* How much of S to quote in a message: at most IP_TEXT_MAX bytes, cut at
 * a UTF-8 character boundary (a message is UTF-8 text; fuzz-playbook found
 * a cut through a Chinese character). */
static int quote_len(const char *s)
{
    size_t n = strlen(s);
    if (n <= IP_TEXT_MAX)
        return (int) n;
    n = IP_TEXT_MAX;
    while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
        n--;
    return (int) n;
}

/* Text fit to quote in a message. */
#define QUOTE_FMT "'%.*s%s'"
#define QUOTE_ARGS(s) quote_len(s), (s), (strlen(s) > IP_TEXT_MAX ? "…" : "")

static int parse_addr_text(const char *text, struct ip_addr *ret)
{
    struct ip_addr a = { 0 };
    if (strchr(text, ':')) {
        if (inet_pton(AF_INET6, text, a.bytes) != 1)
            return -EINVAL;
        a.family = AF_INET6;
    } else {
        if (inet_pton(AF_INET, text, a.bytes) != 1)
            return -EINVAL;
        a.family = AF_INET;
    }
    *ret = a;
    return 0;
}

int ip_addr_parse(const char *s, struct ip_addr *ret, char **ret_error)
{
    char buf[IP_TEXT_MAX + 1];
    struct ip_addr a;
    if (!copy_text(s, buf) || parse_addr_text(buf, &a) < 0) {
        if (strchr(s, '/'))
            set_error(ret_error, QUOTE_FMT " is a prefix, not a single address", QUOTE_ARGS(s));
        else
            set_error(ret_error, QUOTE_FMT " is not an IPv4 or IPv6 address", QUOTE_ARGS(s));
        return -EINVAL;
    }
    *ret = a;
    return 0;
}

int ip_addr_parse_family(const char *s, int family, struct ip_addr *ret, char **ret_error)
{
    struct ip_addr a;
    char buf[IP_TEXT_MAX + 1];
    if (!copy_text(s, buf) || parse_addr_text(buf, &a) < 0 || a.family != family) {
        if (strchr(s, '/'))
            set_error(ret_error, QUOTE_FMT " is a prefix, not a single %s address",
                      QUOTE_ARGS(s), ip_family_name(family));
        else
            set_error(ret_error, QUOTE_FMT " is not an %s address", QUOTE_ARGS(s),
                      ip_family_name(family));
        return -EINVAL;
    }
    *ret = a;
    return 0;
}

static int parse_prefix(const char *s, bool strict, struct ip_prefix *ret, char **ret_error)
{
    char buf[IP_TEXT_MAX + 1];
    if (!copy_text(s, buf)) {
        set_error(ret_error, QUOTE_FMT " is not an IPv4 or IPv6 prefix", QUOTE_ARGS(s));
        return -EINVAL;
    }
    char *slash = strchr(buf, '/');
    if (!slash) {
        struct ip_addr a;
        bool v6 = parse_addr_text(buf, &a) == 0 && a.family == AF_INET6;
        set_error(ret_error, "'%s' has no prefix length (expected ADDRESS/LENGTH, e.g. %s)",
                  buf, v6 ? "2001:db8:10::/64" : "198.51.100.0/24");
        return -EINVAL;
    }
    *slash = '\0';
    const char *len_text = slash + 1;
    struct ip_prefix p = { 0 };
    if (parse_addr_text(buf, &p.addr) < 0) {
        set_error(ret_error, "'%s' is not an IPv4 or IPv6 prefix: '%s' is not an address", s, buf);
        return -EINVAL;
    }
    unsigned bits = ip_family_bits(p.addr.family);
    size_t n = strlen(len_text);
    bool ok = n >= 1 && n <= 3;
    unsigned len = 0;
    for (size_t i = 0; ok && i < n; i++) {
        if (len_text[i] < '0' || len_text[i] > '9')
            ok = false;
        else
            len = len * 10 + (unsigned) (len_text[i] - '0');
    }
    if (!ok || len > bits) {
        set_error(ret_error, "'%s' has an invalid prefix length '%s' (%s: 0 to %u)", s, len_text,
                  ip_family_name(p.addr.family), bits);
        return -EINVAL;
    }
    p.len = len;
    if (strict && ip_prefix_has_host_bits(&p)) {
        struct ip_prefix masked = p;
        char text[IP_PREFIX_STRLEN];
        ip_addr_mask(&masked.addr, masked.len);
        set_error(ret_error, "'%s' has host bits set; the prefix is %s", s,
                  ip_prefix_format(&masked, text));
        return -EINVAL;
    }
    *ret = p;
    return 0;
}

int ip_prefix_parse(const char *s, struct ip_prefix *ret, char **ret_error)
{
    return parse_prefix(s, true, ret, ret_error);
}

int ip_addr_prefix_parse(const char *s, struct ip_prefix *ret, char **ret_error)
{
    return parse_prefix(s, false, ret, ret_error);
}

void ip_addr_from_bytes(int family, const void *bytes, struct ip_addr *ret)
{
    struct ip_addr a = { .family = family };
    memcpy(a.bytes, bytes, ip_family_bits(family) / 8);
    *ret = a;
}

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b)
{
    return a->family == b->family &&
           memcmp(a->bytes, b->bytes, ip_family_bits(a->family) / 8) == 0;
}

int ip_addr_compare(const struct ip_addr *a, const struct ip_addr *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    return memcmp(a->bytes, b->bytes, ip_family_bits(a->family) / 8);
}

bool ip_addr_is_unspecified(const struct ip_addr *a)
{
    unsigned n = ip_family_bits(a->family) / 8;
    for (unsigned i = 0; i < n; i++)
        if (a->bytes[i])
            return false;
    return n > 0;
}

bool ip_addr_is_loopback(const struct ip_addr *a)
{
    if (a->family == AF_INET)
        return a->bytes[0] == 127;
    if (a->family == AF_INET6) {
        static const uint8_t one[16] = { [15] = 1 };
        return memcmp(a->bytes, one, 16) == 0;
    }
    return false;
}

bool ip_addr_is_link_local(const struct ip_addr *a)
{
    if (a->family == AF_INET)
        return a->bytes[0] == 169 && a->bytes[1] == 254;
    if (a->family == AF_INET6)
        return a->bytes[0] == 0xfe && (a->bytes[1] & 0xc0) == 0x80;
    return false;
}

bool ip_addr_is_v4_mapped(const struct ip_addr *a)
{
    static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };
    return a->family == AF_INET6 && memcmp(a->bytes, prefix, 12) == 0;
}

void ip_addr_mask(struct ip_addr *a, unsigned len)
{
    unsigned bits = ip_family_bits(a->family);
    for (unsigned i = 0; i < bits / 8; i++) {
        unsigned first = i * 8;
        if (first >= len)
            a->bytes[i] = 0;
        else if (first + 8 > len)
            a->bytes[i] &= (uint8_t) (0xff << (8 - (len - first)));
    }
}

/* Set every bit past len. */
static void addr_fill_host_bits(struct ip_addr *a, unsigned len)
{
    unsigned bits = ip_family_bits(a->family);
    for (unsigned i = 0; i < bits / 8; i++) {
        unsigned first = i * 8;
        if (first >= len)
            a->bytes[i] = 0xff;
        else if (first + 8 > len)
            a->bytes[i] |= (uint8_t) (0xff >> (len - first));
    }
}

/* Add 2^(bits - 1 - bitpos) (bit 0 is the most significant).  False on
 * overflow past the top of the address space. */
static bool addr_add_bit(struct ip_addr *a, unsigned bitpos)
{
    int i = (int) (bitpos / 8);
    unsigned carry = 1u << (7 - bitpos % 8);
    for (; i >= 0 && carry; i--) {
        unsigned v = a->bytes[i] + carry;
        a->bytes[i] = (uint8_t) v;
        carry = v >> 8;
    }
    return carry == 0;
}

bool ip_prefix_has_host_bits(const struct ip_prefix *p)
{
    struct ip_addr m = p->addr;
    ip_addr_mask(&m, p->len);
    return !ip_addr_equal(&m, &p->addr);
}

bool ip_prefix_contains(const struct ip_prefix *p, const struct ip_addr *a)
{
    if (p->addr.family != a->family)
        return false;
    struct ip_addr x = *a, y = p->addr;
    ip_addr_mask(&x, p->len);
    ip_addr_mask(&y, p->len);
    return ip_addr_equal(&x, &y);
}

bool ip_prefix_overlap(const struct ip_prefix *a, const struct ip_prefix *b)
{
    if (a->addr.family != b->addr.family)
        return false;
    unsigned len = a->len < b->len ? a->len : b->len;
    struct ip_addr x = a->addr, y = b->addr;
    ip_addr_mask(&x, len);
    ip_addr_mask(&y, len);
    return ip_addr_equal(&x, &y);
}

bool ip_prefix_equal(const struct ip_prefix *a, const struct ip_prefix *b)
{
    return a->len == b->len && ip_addr_equal(&a->addr, &b->addr);
}

static char *format_v4(const uint8_t *b, char *out, size_t size)
{
    snprintf(out, size, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    return out;
}

char *ip_addr_format(const struct ip_addr *a, char buf[static IP_ADDR_STRLEN])
{
    if (a->family == AF_INET)
        return format_v4(a->bytes, buf, IP_ADDR_STRLEN);
    if (a->family != AF_INET6) {
        snprintf(buf, IP_ADDR_STRLEN, "(none)");
        return buf;
    }
    if (ip_addr_is_v4_mapped(a)) {
        char v4[16];
        snprintf(buf, IP_ADDR_STRLEN, "::ffff:%s", format_v4(a->bytes + 12, v4, sizeof v4));
        return buf;
    }
    unsigned words[8];
    for (int i = 0; i < 8; i++)
        words[i] = (unsigned) a->bytes[2 * i] << 8 | a->bytes[2 * i + 1];

    /* RFC 5952 4.2: the longest run of zero groups, the first on a tie,
     * and never a single group. */
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (words[i] != 0) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && words[j] == 0)
            j++;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2)
        best = -1;

    static const char hex[] = "0123456789abcdef";
    char *p = buf;
    for (int i = 0; i < 8;) {
        if (i == best) {
            *p++ = ':';
            *p++ = ':';
            i += best_len;
            continue;
        }
        if (i > 0 && i != best + best_len)
            *p++ = ':';
        /* RFC 5952 4.1: no leading zeros; 4.3: lower case. */
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned nibble = (words[i] >> shift) & 0xf;
            if (nibble || started || shift == 0) {
                *p++ = hex[nibble];
                started = true;
            }
        }
        i++;
    }
    *p = '\0';
    return buf;
}

char *ip_prefix_format(const struct ip_prefix *p, char buf[static IP_PREFIX_STRLEN])
{
    char a[IP_ADDR_STRLEN];
    snprintf(buf, IP_PREFIX_STRLEN, "%s/%u", ip_addr_format(&p->addr, a), p->len);
    return buf;
}

int ip_prefix_next_free(const struct ip_prefix *parent, unsigned len,
                        const struct ip_prefix *used, size_t n_used, struct ip_prefix *ret)
{
    unsigned bits = ip_family_bits(parent->addr.family);
    if (bits == 0 || parent->len > bits || len < parent->len || len > bits ||
        ip_prefix_has_host_bits(parent))
        return -EINVAL;

    struct ip_prefix cand = { .addr = parent->addr, .len = len };
    for (;;) {
        /* Each turn moves past at least one used prefix: at most n_used+1 turns. */
        if (!ip_prefix_contains(parent, &cand.addr))
            return -ENOSPC;
        const struct ip_prefix *conflict = NULL;
        for (size_t i = 0; i < n_used && !conflict; i++)
            if (used[i].addr.family == cand.addr.family && ip_prefix_overlap(&cand, &used[i]))
                conflict = &used[i];
        if (!conflict) {
            *ret = cand;
            return 0;
        }
        bool ok;
        if (conflict->len <= len) {
            /* The used prefix covers the candidate: go past its end, which
             * is aligned to /len since conflict->len <= len. */
            struct ip_addr end = conflict->addr;
            addr_fill_host_bits(&end, conflict->len);
            ok = addr_add_bit(&end, bits - 1);
            cand.addr = end;
        } else {
            /* A smaller used prefix inside the candidate: next candidate. */
            ok = len > 0 && addr_add_bit(&cand.addr, len - 1);
        }
        if (!ok)
            return -ENOSPC;
    }
}

void ip_eui64_from_mac(const uint8_t mac[static 6], uint8_t ret_iid[static 8])
{
    ret_iid[0] = mac[0] ^ 0x02;
    ret_iid[1] = mac[1];
    ret_iid[2] = mac[2];
    ret_iid[3] = 0xff;
    ret_iid[4] = 0xfe;
    ret_iid[5] = mac[3];
    ret_iid[6] = mac[4];
    ret_iid[7] = mac[5];
}

int ip_eui64_address(const struct ip_prefix *p64, const uint8_t mac[static 6], struct ip_addr *ret)
{
    if (p64->addr.family != AF_INET6 || p64->len != 64)
        return -EINVAL;
    struct ip_addr a = p64->addr;
    ip_addr_mask(&a, 64);
    ip_eui64_from_mac(mac, a.bytes + 8);
    *ret = a;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ip_mac_parse(const char *s, uint8_t ret_mac[static 6])
{
    uint8_t mac[6];
    if (strlen(s) != 17)
        return -EINVAL;
    char sep = s[2];
    if (sep != ':' && sep != '-')
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        const char *p = s + 3 * i;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0 || (i < 5 && p[2] != sep))
            return -EINVAL;
        mac[i] = (uint8_t) (hi << 4 | lo);
    }
    memcpy(ret_mac, mac, 6);
    return 0;
}

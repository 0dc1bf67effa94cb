/* IPv4/IPv6 addresses and prefixes: parsing (inet_pton based, strict about
 * host bits), containment, overlap, RFC 5952 text, the next free
 * sub-prefix inside a parent (for prefix allocation) and EUI-64 interface
 * identifiers.
 *
 * Parse errors come back as one sentence quoting the input, e.g.
 * "'2001:db8::1/64' has host bits set; the prefix is 2001:db8::/64";
 * the caller adds where it came from (a file, a JSON path) and turns it
 * into its own error object. */
#ifndef YG_IP_H
#define YG_IP_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text ip_addr_format() / ip_prefix_format() write, with the NUL:
 * "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45 characters. */
#define IP_ADDR_STRLEN   46
#define IP_PREFIX_STRLEN 50     /* + "/128" */

struct ip_addr {
    int family;                 /* AF_INET, AF_INET6; 0 for "none" */
    uint8_t bytes[16];          /* network order; IPv4 uses the first 4 */
};

struct ip_prefix {
    struct ip_addr addr;
    unsigned len;               /* 0..32 or 0..128 */
};

/* Bits in an address of that family: 32, 128, or 0 for an unknown family. */
unsigned ip_family_bits(int family);
/* "IPv4", "IPv6" or "unknown". */
const char *ip_family_name(int family);

/* Parse an IPv4 or IPv6 address (no prefix length, no zone).  0 or
 * -EINVAL with *ret_error (when not NULL) set to a sentence to free. */
int ip_addr_parse(const char *s, struct ip_addr *ret, char **ret_error);
/* The same, refusing the other family ("IPv6 address expected, got …"). */
int ip_addr_parse_family(const char *s, int family, struct ip_addr *ret, char **ret_error);

/* Parse a prefix "ADDRESS/LEN".  Host bits must be clear. */
int ip_prefix_parse(const char *s, struct ip_prefix *ret, char **ret_error);
/* Parse an interface address "ADDRESS/LEN": host bits are kept. */
int ip_addr_prefix_parse(const char *s, struct ip_prefix *ret, char **ret_error);

/* Build from raw bytes (4 or 16 of them by family). */
void ip_addr_from_bytes(int family, const void *bytes, struct ip_addr *ret);

bool ip_addr_equal(const struct ip_addr *a, const struct ip_addr *b);
/* Orders by family, then bytes: for sorting and tests. */
int ip_addr_compare(const struct ip_addr *a, const struct ip_addr *b);
bool ip_addr_is_unspecified(const struct ip_addr *a);   /* 0.0.0.0, :: */
bool ip_addr_is_loopback(const struct ip_addr *a);      /* 127/8, ::1 */
bool ip_addr_is_link_local(const struct ip_addr *a);    /* 169.254/16, fe80::/10 */
bool ip_addr_is_v4_mapped(const struct ip_addr *a);     /* ::ffff:0:0/96 */

/* Clear the bits past len (len may exceed the family's bits: no change). */
void ip_addr_mask(struct ip_addr *a, unsigned len);
/* Whether addr, with all bits past len clear, equals the prefix. */
bool ip_prefix_has_host_bits(const struct ip_prefix *p);
bool ip_prefix_contains(const struct ip_prefix *p, const struct ip_addr *a);
/* Whether the two prefixes share at least one address (same family). */
bool ip_prefix_overlap(const struct ip_prefix *a, const struct ip_prefix *b);
bool ip_prefix_equal(const struct ip_prefix *a, const struct ip_prefix *b);

/* RFC 5952 text: lower case, no leading zeros, the longest run of two or
 * more zero groups as "::" (the first on a tie), IPv4-mapped addresses as
 * ::ffff:192.0.2.1.  IPv4 as dotted quad.  Returns buf. */
char *ip_addr_format(const struct ip_addr *a, char buf[static IP_ADDR_STRLEN]);
/* "ADDRESS/LEN". Returns buf. */
char *ip_prefix_format(const struct ip_prefix *p, char buf[static IP_PREFIX_STRLEN]);

/* The first /len sub-prefix of parent (in address order) that overlaps
 * none of used[].  0 and *ret; -EINVAL when len is shorter than the parent's
 * or past the family's bits, or parent is not a prefix; -ENOSPC when every
 * /len of the parent is taken.  Used prefixes of the other family are
 * ignored.  O(n_used²), independent of the number of candidates. */
int ip_prefix_next_free(const struct ip_prefix *parent, unsigned len,
                        const struct ip_prefix *used, size_t n_used, struct ip_prefix *ret);

/* Modified EUI-64 interface identifier of a 48-bit MAC (RFC 4291 app. A):
 * ff:fe in the middle, the universal/local bit inverted. */
void ip_eui64_from_mac(const uint8_t mac[static 6], uint8_t ret_iid[static 8]);
/* The SLAAC address of a MAC in a /64.  0, or -EINVAL when the prefix is
 * not an IPv6 /64. */
int ip_eui64_address(const struct ip_prefix *p64, const uint8_t mac[static 6],
                     struct ip_addr *ret);
/* Parse "52:54:00:12:34:56" (or with '-').  0 or -EINVAL. */
int ip_mac_parse(const char *s, uint8_t ret_mac[static 6]);

#endif

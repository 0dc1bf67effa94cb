/* The segment list that network engineers write (DESIGN.md "Segments and
 * dual-stack readiness"): load it from YAML (or JSON), validate everything
 * that can be validated without the store, normalise every address to
 * RFC 5952 text, and report every problem with line:column and path.
 *
 *   apiVersion: yunguan/v1
 *   kind: SegmentList
 *   segments:
 *     - name: health-dmz
 *       vlan: 110                       # optional, 1..4094, unique
 *       interface: br-health            # the host bridge/interface carrying it
 *       departments: [health]           # optional
 *       targetDate: 2026-12-31          # optional
 *       ipv4: {prefix: 198.51.100.0/24, gateway: 198.51.100.1}
 *       ipv6: {prefix: "2001:db8:10::/64", gateway: "2001:db8:10::1", slaac: false}
 *       hosts:                          # optional: planned addresses
 *         - {name: hv01, ipv4: 198.51.100.21, ipv6: "2001:db8:10::21"}
 *
 * ipv6 is optional (absent or null: the segment is v4-only for now; a
 * segment whose IPv6 prefix came from `prefix allocate` must keep it
 * written or say null, see controller/segments.c); when
 * given, prefix and gateway come as a pair. */
#ifndef YG_SEGMENTS_H
#define YG_SEGMENTS_H 1

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "error.h"
#include "ip.h"
#include "yamldoc.h"

/* Limits on what a client can make us parse. */
#define SEGMENTS_MAX_BYTES        (256 * 1024)
#define SEGMENTS_MAX_NODES        32768
#define SEGMENTS_MAX_DEPTH        16
#define SEGMENTS_MAX_SEGMENTS     1024
#define SEGMENTS_MAX_HOSTS        1024      /* per segment */
#define SEGMENTS_MAX_DEPARTMENTS  32        /* per segment */
#define SEGMENTS_MAX_ERRORS       20
#define SEGMENTS_IFNAME_MAX       15        /* Linux IFNAMSIZ - 1 */

struct segment_host {
    char *name;                 /* [a-z0-9-], 1..63 */
    struct ip_addr ipv4;        /* family 0: no address planned */
    struct ip_addr ipv6;        /* family 0: no address planned */
};

struct segment {
    char *name;                 /* [a-z0-9-], 1..63, unique in the list */
    int vlan;                   /* 1..4094, unique; 0 when not given */
    char *interface;            /* Linux interface name */
    char **departments;         /* sorted, unique */
    size_t n_departments;
    char *target_date;          /* "YYYY-MM-DD" or NULL */
    struct ip_prefix ipv4_prefix;
    struct ip_addr ipv4_gateway;
    bool has_ipv6;
    bool ipv6_given;                    /* the ipv6 key was written (empty or null:
                                         * the IPv6 plan is taken away on purpose) */
    struct ip_prefix ipv6_prefix;       /* when has_ipv6 */
    struct ip_addr ipv6_gateway;        /* when has_ipv6 */
    bool slaac;
    struct segment_host *hosts;         /* sorted by name, unique names */
    size_t n_hosts;

    /* Where the values stood (zero when the segment did not come from a
     * file), for problems only the controller can find. */
    struct yamldoc_pos pos, name_pos, vlan_pos, ipv4_prefix_pos, ipv6_prefix_pos;
};

struct segment_list {
    struct segment *segments;   /* in file order */
    size_t n_segments;
};

/* Parse and validate a segment list.  FILENAME only labels messages and
 * may be NULL.  On success 0 and *ret_list; on failure -EINVAL (422
 * "invalid_request" with up to SEGMENTS_MAX_ERRORS details, each with
 * line, column and path), -EFBIG (413 "too_large": over
 * SEGMENTS_MAX_BYTES, not read) or -ENOMEM, and *ret_error. */
int segment_list_parse(const char *text, size_t len, const char *filename,
                       struct segment_list **ret_list, struct yg_error **ret_error);

void segment_list_free(struct segment_list *l);
static inline void segment_list_freep(struct segment_list **l) { segment_list_free(*l); }

/* Free what a segment owns (not the struct itself). */
void segment_clear(struct segment *s);

/* Canonical JSON of one segment, in the file's own shape (so it loads back
 * as a list item): {"name","vlan"?,"interface","departments","targetDate"?,
 * "ipv4":{prefix,gateway},"ipv6"?:{prefix,gateway,slaac},"hosts":[{name,
 * ipv4?,ipv6?}]}; optional values that are not set are left out.  Two
 * segments are the same definition exactly when their JSON is equal. */
json_t *segment_to_json(const struct segment *s);

/* {"apiVersion":"yunguan/v1","kind":"SegmentList","segments":[…]}. */
json_t *segment_list_to_json(const struct segment_list *l);

/* Whether NAME is a Linux interface name: 1..15 bytes of printable ASCII,
 * no '/', ':' or white space, not "." or "..". */
bool segment_ifname_is_valid(const char *name);

/* The first and last address a host or gateway may use in P: for IPv4
 * shorter than /31 the network and broadcast addresses are left out; for
 * IPv6 the subnet-router anycast address (the prefix itself). */
void segment_usable_range(const struct ip_prefix *p, struct ip_addr *ret_first,
                          struct ip_addr *ret_last);

#endif

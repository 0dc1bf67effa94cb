/* The controller's desired state for this host (doc/AGENT.md "Desired
 * state"): which segments the host carries, on which interface, with
 * which prefixes, gateways and planned addresses.  The same JSON comes
 * from GET /api/v1/agents/self/segments or from --segments-file. */
#ifndef YG_AGENT_DESIRED_H
#define YG_AGENT_DESIRED_H 1

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "ip.h"

#define DESIRED_MAX_SEGMENTS          256     /* the controller takes reports of at most 256 */
#define DESIRED_DEFAULT_HEARTBEAT_S   10
#define DESIRED_MAX_HEARTBEAT_S       3600
#define DESIRED_MAX_BYTES             (4u * 1024 * 1024)

/* Absent values have family 0 (addresses) or addr.family 0 (prefixes). */
struct desired_segment {
    char *name;
    char *interface;
    struct ip_prefix ipv4_prefix;
    struct ip_addr ipv4_gateway;
    struct ip_prefix ipv6_prefix;
    struct ip_addr ipv6_gateway;
    bool slaac;
    struct ip_addr plan_ipv4;
    struct ip_addr plan_ipv6;
};

struct desired_state {
    char *host;                 /* may be NULL */
    unsigned heartbeat_seconds;
    struct desired_segment *segments;
    size_t n_segments;
};

/* Parse and validate.  0, or -EINVAL with *ret_error one sentence that
 * starts with the JSON path: "segments[0].ipv6_prefix: '2001:db8::1/64'
 * has host bits set; the prefix is 2001:db8::/64".  Unknown keys are
 * ignored (newer controllers may send more). */
int desired_state_from_json(json_t *root, struct desired_state **ret, char **ret_error);
/* One segment object (the same shape; a playbook task carries one).
 * PATH prefixes error messages.  On error *s may hold partial values:
 * desired_segment_clear() it either way. */
int desired_segment_from_json(json_t *js, const char *path, struct desired_segment *s, char **ret_error);
void desired_segment_clear(struct desired_segment *s);
/* Read and parse a file; errors start with the file name. */
int desired_state_load_file(const char *path, struct desired_state **ret, char **ret_error);
void desired_state_free(struct desired_state *d);
static inline void desired_state_freep(struct desired_state **d) { desired_state_free(*d); }

/* Whether NAME can be a Linux interface name (1-15 bytes, no '/', no
 * white space, not "." or ".."): it also names a /proc/sys directory. */
bool desired_interface_name_valid(const char *name);

#endif

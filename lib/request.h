/* The resource request that departments write (DESIGN.md "The resource
 * request"): load from YAML or JSON text, validate everything that can be
 * validated without the store, and report every problem with
 * line:column and field path. */
#ifndef YG_REQUEST_H
#define YG_REQUEST_H 1

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

/* Limits on what a client can make us parse (bytes, nodes, nesting). */
#define REQUEST_MAX_BYTES      (64 * 1024)
#define REQUEST_MAX_NODES      4096
#define REQUEST_MAX_DEPTH      16
#define REQUEST_MAX_VM_GROUPS  64
#define REQUEST_MAX_COUNT      100      /* VMs in one group */
#define REQUEST_MAX_VCPUS      128
#define REQUEST_MAX_MEMORY_MIB (1024 * 1024)      /* 1 TiB */
#define REQUEST_MAX_DISK_GIB   (64 * 1024)        /* 64 TiB */
#define REQUEST_MAX_ERRORS     20

enum request_ipv6 {
    REQUEST_IPV6_REQUIRED,
    REQUEST_IPV6_PREFERRED,
    REQUEST_IPV6_OFF,
    REQUEST_IPV6_MAX,
};
const char *request_ipv6_to_string(enum request_ipv6 v);
int request_ipv6_from_string(const char *s);   /* enum value or -1 */

/* Where a value stood in the source, for errors found later (e.g. by the
 * controller, which knows the department's lease policy). */
struct request_pos {
    int line, column;
};

struct request_vm_group {
    char *name;             /* [a-z0-9-], 1..63, unique within the request */
    int count;              /* 1..REQUEST_MAX_COUNT, default 1 */
    int vcpus;              /* 1..REQUEST_MAX_VCPUS */
    int64_t memory_mib;     /* from "4GiB", "512MiB"; 64 MiB .. 1 TiB */
    int64_t disk_gib;       /* from "40GiB", "1TiB"; 1 GiB .. 64 TiB */
    char *image;
};

struct request {
    char *name;             /* metadata.name: [a-z0-9-], 1..63 */
    char *department;       /* metadata.department */
    char *purpose;          /* spec.purpose: 1..500 chars */
    int security_level;     /* spec.securityLevel: 1..4 */
    char *lease_until;      /* spec.lease.until: "YYYY-MM-DD", a real date */
    char *segment;          /* spec.network.segment */
    enum request_ipv6 ipv6; /* spec.network.ipv6, default preferred */
    struct request_vm_group *vms;
    size_t n_vms;

    /* Totals over all groups (count × size). */
    int64_t total_vms, total_vcpus, total_memory_mib, total_disk_gib;

    struct request_pos department_pos, lease_until_pos, name_pos;
};

/* Parse and validate one request document.  The text may be YAML or JSON
 * (JSON is parsed by the same YAML parser, so positions work for both).
 * FILENAME only labels messages and may be NULL.  On success returns 0 and
 * sets *ret_request; on failure returns -EINVAL (or -EFBIG / -ENOMEM) and
 * sets *ret_error with every problem found (up to REQUEST_MAX_ERRORS),
 * http_status 422 and code "invalid_request"; each detail has the 1-based
 * line and column (in characters) and, for a field, its path.  Text over
 * REQUEST_MAX_BYTES is refused unread: -EFBIG, http_status 413, code
 * "too_large", no details.  YAML syntax errors, aliases/anchors, a second
 * document and the node/depth limits stop the parse at once.
 * spec.purpose is stored without surrounding white space. */
int request_parse(const char *text, size_t len, const char *filename,
                  struct request **ret_request, struct yg_error **ret_error);

void request_free(struct request *r);
static inline void request_freep(struct request **r) { request_free(*r); }

/* Canonical JSON of a parsed request: {"apiVersion","kind","metadata":{…},
 * "spec":{…, "vms":[{name,count,vcpus,memory_mib,disk_gib,image}]},
 * "totals":{vms,vcpus,memory_mib,disk_gib}}.  Keys in a fixed order (jansson
 * keeps insertion order); the golden files dump it with
 * JSON_INDENT(2) | JSON_PRESERVE_ORDER and a final newline. */
json_t *request_to_json(const struct request *r);

/* Days from today (UTC) until the lease date; negative when in the past. */
int request_lease_days_from(const struct request *r, int64_t now_epoch_sec);

#endif

/* Hypervisor hosts in the store: registration (libvirt URI, storage pool,
 * the segments whose bridges it carries), drain, the capacity libvirt
 * reports, and the reads that put capacity next to what is placed. */
#ifndef YG_HOSTS_H
#define YG_HOSTS_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

struct store_conn;
struct store_txn;
struct principal;
struct hv_capacity;

#define HOSTS_MAX_SEGMENTS 64

/* Register host NAME (create it, or give a host known from a segment list
 * its hypervisor) with URI, POOL and the SEGMENTS it carries (added to the
 * ones it has).  Audited.  0 and *ret_host, or negative with *ret_error
 * (422 for an unknown segment or a bad URI). */
int hosts_register(struct store_txn *txn, const struct principal *by, const char *name,
                   const char *uri, const char *pool, const char *const *segments, size_t n_segments,
                   json_t **ret_host, struct yg_error **ret_error);

/* Drain (no new VMs) or undrain.  Audited. */
int hosts_set_drained(struct store_txn *txn, const struct principal *by, const char *name,
                      bool drained, json_t **ret_host, struct yg_error **ret_error);

/* What libvirt said about the host: up with its capacity, or down with the
 * reason.  Going down turns its running and stopped VMs 'unknown' (one
 * audited transition each).  Changes of status are audited. */
int hosts_update_status(struct store_txn *txn, const char *name, bool up,
                        const struct hv_capacity *cap, const char *error);

/* Reads; OVERCOMMIT turns CPUs into schedulable vCPUs.  NULL: no such host. */
json_t *hosts_get_json(struct store_conn *conn, const char *name, double overcommit);
json_t *hosts_list_json(struct store_conn *conn, double overcommit);

/* Each registered host: calls FN(name, uri, pool). */
int hosts_foreach_registered(struct store_conn *conn,
                             void (*fn)(const char *name, const char *uri, const char *pool, void *ctx),
                             void *ctx);

#endif

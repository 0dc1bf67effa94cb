/* VM addresses from a segment's prefixes (static plan).  IPv4: the lowest
 * free host address of the prefix (not the network or broadcast address,
 * not the gateway, not a host's planned address, not another VM's).  IPv6:
 * the EUI-64 address of the VM's MAC when the prefix is a /64 and that
 * address is free, else the lowest free from ::10.  Uniqueness is also
 * enforced by the store (unique indexes on the segment and address). */
#ifndef YG_ADDRESSES_H
#define YG_ADDRESSES_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ip.h"

struct store_conn;

/* The pure part: the lowest address of PREFIX at or after offset FIRST
 * (counted from the prefix's first address) that is not in USED and not
 * the last address of an IPv4 prefix shorter than /31.  0 and *ret, or
 * -ENOSPC. */
int addresses_next_free(const struct ip_prefix *prefix, uint64_t first, const struct ip_addr *used,
                        size_t n_used, struct ip_addr *ret);

/* Allocate for a VM on SEGMENT_ID (inside the writer's transaction).  MAC
 * is "52:54:00:…".  ret_v4/ret_v6 get text ("" when the segment has no
 * prefix of that family or want_v6 is false).  0, -ENOSPC with
 * *ret_error, or -EIO. */
int addresses_allocate(struct store_conn *conn, int64_t segment_id, const char *mac, bool want_v6,
                       char ret_v4[static IP_ADDR_STRLEN], char ret_v6[static IP_ADDR_STRLEN],
                       char **ret_error);

/* The same for many VMs at once (a request's): the segment's used
 * addresses are read once, and each address taken is added to them. */
struct addresses_pool;
int addresses_pool_load(struct store_conn *conn, int64_t segment_id, struct addresses_pool **ret);
int addresses_pool_take(struct addresses_pool *pool, const char *mac, bool want_v6,
                        char ret_v4[static IP_ADDR_STRLEN], char ret_v6[static IP_ADDR_STRLEN],
                        char **ret_error);
void addresses_pool_free(struct addresses_pool *pool);

#endif

/* Segment definitions in the store (DESIGN.md "Segments and dual-stack
 * readiness"): apply a whole segment list, read a stored definition back,
 * hand out IPv6 prefixes from parent prefixes.
 *
 * A segment list is applied as one change: segments are created or updated
 * by name (with their departments, their hosts, created by name when new,
 * and the hosts' planned addresses); segments stored but not in the list
 * stay as they are, and must not overlap the listed ones afterwards.  Each
 * created or changed segment gets one audit entry with its definition
 * before and after, and its readiness state is recomputed. */
#ifndef YG_CONTROLLER_SEGMENTS_H
#define YG_CONTROLLER_SEGMENTS_H 1

#include <stdint.h>
#include <jansson.h>

#include "error.h"
/* lib/segments.h: this header's name is taken here (the two are the file
 * format and the store of the same concept). */
#include "../lib/segments.h"

struct store_conn;
struct store_txn;
struct principal;

#define SEGMENTS_PAGE_DEFAULT 100
#define SEGMENTS_PAGE_MAX 1000

/* What applying LIST to the store on CONN would do, without changing
 * anything: 0 and *ret_plan = {"created":[names],"updated":[…],
 * "unchanged":[…],"changes":{name:[fields]},"warnings":[…]} (names in list
 * order; "changes" names the top-level fields that differ per updated
 * segment).  -EINVAL with *ret_error (422, one detail per problem at the
 * list's line:column) when it cannot be applied: a prefix that overlaps,
 * or a VLAN that repeats, a stored segment the list does not change.
 * -EIO when the store cannot be read. */
int segments_plan(struct store_conn *conn, const struct segment_list *list,
                  json_t **ret_plan, struct yg_error **ret_error);

/* Apply LIST inside TXN (the same checks, made inside the transaction so
 * that nothing can slip in between) and answer as segments_plan() does. */
int segments_apply(struct store_txn *txn, const struct principal *by,
                   const struct segment_list *list, json_t **ret_result,
                   struct yg_error **ret_error);

/* The stored definition of segment NAME, as segment_to_json() gives it.
 * 0, -ENOENT or -EIO. */
int segments_get_json(struct store_conn *conn, const char *name, json_t **ret);

/* Allocate the first /LEN inside PARENT that overlaps no stored segment
 * prefix and no earlier allocation; record it (by BY).  With SEGMENT (may
 * be NULL), that segment, which must have no IPv6 prefix yet, gets it, with
 * its ::1 as gateway (audited, readiness recomputed).  0 and
 * *ret_allocation = {"id","parent","prefix","segment","created_at",
 * "created_by"}; or -ENOENT/-EEXIST/-ENOSPC/-EINVAL with *ret_error (422 for
 * an unknown segment or a length the segment cannot use, 409 when the
 * segment has IPv6 already or the parent is full); -EIO. */
int segments_allocate_prefix(struct store_txn *txn, const struct principal *by,
                             const struct ip_prefix *parent, unsigned len, const char *segment,
                             json_t **ret_allocation, struct yg_error **ret_error);

/* One page of allocations with id > AFTER, oldest first:
 * {"items":[<allocation>],"next":id|null}.  NULL when the store cannot be
 * read. */
json_t *segments_allocations_json(struct store_conn *conn, int64_t after, int limit);

#endif

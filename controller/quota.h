/* Departments and their quotas.  Usage is counted from authoritative
 * state — the requests in live states — never from stored counters. */
#ifndef YG_QUOTA_H
#define YG_QUOTA_H 1

#include <stdint.h>
#include <jansson.h>

#include "error.h"

struct store_conn;
struct store_txn;
struct principal;

struct quota_amounts {
    int64_t vcpus, memory_mib, disk_gib, vms;
};

struct quota_limits {
    struct quota_amounts max;
    int64_t max_lease_days;
};

/* 0, -ENOENT or -EIO. */
int quota_department_id(struct store_conn *conn, const char *name, int64_t *ret_id);
int quota_limits_get(struct store_conn *conn, int64_t department_id, struct quota_limits *ret);
int quota_usage(struct store_conn *conn, int64_t department_id, struct quota_amounts *ret);

/* Which resources USAGE + ADD would take over LIMITS: a JSON array of
 * {resource, limit, in_use, requested, would_be}; empty when it fits. */
json_t *quota_exceeded(const struct quota_limits *limits, const struct quota_amounts *usage,
                       const struct quota_amounts *add);

/* {"department","limits":{…},"usage":{…}}; NULL when unknown. */
json_t *quota_json(struct store_conn *conn, int64_t department_id);
json_t *quota_list_json(struct store_conn *conn);

/* Set a department's limits, creating the department when new.  Audited. */
int quota_set(struct store_txn *txn, const struct principal *by, const char *department,
              const struct quota_limits *limits, struct yg_error **ret_error);

json_t *quota_amounts_json(const struct quota_amounts *a);

#endif

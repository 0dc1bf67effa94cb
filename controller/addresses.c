#include <config.h>
#include "addresses.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "store.h"
#include "util.h"

/* ADDR + N (N < 2^64) within its family; false on overflow past the family. */
static bool addr_add(const struct ip_addr *base, uint64_t n, struct ip_addr *ret)
{
    *ret = *base;
    int bytes = base->family == AF_INET ? 4 : 16;
    unsigned carry = 0;
    for (int i = bytes - 1; i >= 0; i--) {
        unsigned sum = ret->bytes[i] + (unsigned) (n & 0xff) + carry;
        ret->bytes[i] = (uint8_t) sum;
        carry = sum >> 8;
        n >>= 8;
    }
    return carry == 0 && n == 0;
}

static int cmp_addr(const void *a, const void *b)
{
    return ip_addr_compare(a, b);
}

/* The first index of SORTED (N entries) not below A. */
static size_t lower_bound(const struct ip_addr *sorted, size_t n, const struct ip_addr *a)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ip_addr_compare(&sorted[mid], a) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* addresses_next_free() on a USED that is sorted already. */
static int next_free_sorted(const struct ip_prefix *prefix, uint64_t first, const struct ip_addr *sorted,
                            size_t n_used, struct ip_addr *ret, uint64_t *ret_offset)
{
    unsigned bits = ip_family_bits(prefix->addr.family);
    if (!bits || prefix->len > bits)
        return -EINVAL;
    unsigned host_bits = bits - prefix->len;
    uint64_t size = host_bits >= 64 ? UINT64_MAX : (uint64_t) 1 << host_bits;
    /* IPv4 below /31: the broadcast address is not a host's. */
    uint64_t last = prefix->addr.family == AF_INET && prefix->len < 31 ? size - 2 : size - 1;
    size_t k = 0;
    for (uint64_t off = first; off <= last; off++) {
        struct ip_addr cand;
        if (!addr_add(&prefix->addr, off, &cand))
            break;
        if (off == first)
            k = lower_bound(sorted, n_used, &cand);
        while (k < n_used && ip_addr_compare(&sorted[k], &cand) < 0)
            k++;
        if (k < n_used && ip_addr_equal(&sorted[k], &cand))
            continue;
        *ret = cand;
        if (ret_offset)
            *ret_offset = off;
        return 0;
    }
    return -ENOSPC;
}

int addresses_next_free(const struct ip_prefix *prefix, uint64_t first, const struct ip_addr *used,
                        size_t n_used, struct ip_addr *ret)
{
    struct ip_addr *sorted = xcalloc(n_used ? n_used : 1, sizeof *sorted);
    if (n_used > 0) {           /* memcpy/qsort with NULL are undefined even for 0 */
        memcpy(sorted, used, n_used * sizeof *sorted);
        qsort(sorted, n_used, sizeof *sorted, cmp_addr);
    }
    int r = next_free_sorted(prefix, first, sorted, n_used, ret, NULL);
    free(sorted);
    return r;
}

static void collect(sqlite3_stmt *st, int family, struct ip_addr **used, size_t *n)
{
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct ip_addr a;
        if (sqlite3_column_type(st, 0) == SQLITE_NULL ||
            ip_addr_parse_family(store_column_text(st, 0), family, &a, NULL) < 0)
            continue;
        if ((*n & (*n - 1)) == 0 || *n < 16)          /* capacity: powers of two, 16 first */
            *used = xrealloc(*used, (*n < 16 ? 16 : 2 * *n) * sizeof **used);
        (*used)[(*n)++] = a;
    }
    sqlite3_reset(st);
}

static int used_of(struct store_conn *conn, int64_t segment_id, int family, const char *gateway,
                   struct ip_addr **ret, size_t *ret_n)
{
    struct ip_addr *used = NULL;
    size_t n = 0;
    struct ip_addr gw;
    if (gateway && ip_addr_parse_family(gateway, family, &gw, NULL) == 0) {
        used = xrealloc(used, sizeof *used);
        used[n++] = gw;
    }
    sqlite3_stmt *st = store_stmt(conn, family == AF_INET
        ? "SELECT ipv4_address FROM host_segments WHERE segment_id = ?1 AND ipv4_address IS NOT NULL"
        : "SELECT ipv6_address FROM host_segments WHERE segment_id = ?1 AND ipv6_address IS NOT NULL");
    if (!st) {
        free(used);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, segment_id);
    collect(st, family, &used, &n);
    st = store_stmt(conn, family == AF_INET
        ? "SELECT ipv4 FROM vms WHERE segment_id = ?1 AND ipv4 IS NOT NULL"
        : "SELECT ipv6 FROM vms WHERE segment_id = ?1 AND ipv6 IS NOT NULL");
    if (!st) {
        free(used);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, segment_id);
    collect(st, family, &used, &n);
    *ret = used;
    *ret_n = n;
    return 0;
}

struct addresses_pool {
    char *name;
    bool has_v4, has_v6;
    struct ip_prefix p4, p6;
    struct ip_addr *used4, *used6;
    size_t n4, n6;
    /* Every offset below these is taken (0: nothing known).  A pool only
     * gains used addresses, so the next lowest free one is never below:
     * a pass placing N VMs scans the used list once, not N times. */
    uint64_t from4, from6;
};

void addresses_pool_free(struct addresses_pool *pool)
{
    if (!pool)
        return;
    free(pool->name);
    free(pool->used4);
    free(pool->used6);
    free(pool);
}

int addresses_pool_load(struct store_conn *conn, int64_t segment_id, struct addresses_pool **ret)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT name, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway FROM segments WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, segment_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return -ENOENT;
    }
    struct addresses_pool *pool = xcalloc(1, sizeof *pool);
    pool->name = xstrdup(store_column_text(st, 0));
    _cleanup_free_ char *g4 = xstrdup(store_column_text(st, 2));
    _cleanup_free_ char *g6 = sqlite3_column_type(st, 4) == SQLITE_NULL ? NULL : xstrdup(store_column_text(st, 4));
    pool->has_v4 = ip_prefix_parse(store_column_text(st, 1), &pool->p4, NULL) == 0;
    pool->has_v6 = sqlite3_column_type(st, 3) != SQLITE_NULL &&
                   ip_prefix_parse(store_column_text(st, 3), &pool->p6, NULL) == 0;
    sqlite3_reset(st);
    if ((pool->has_v4 && used_of(conn, segment_id, AF_INET, g4, &pool->used4, &pool->n4) < 0) ||
        (pool->has_v6 && used_of(conn, segment_id, AF_INET6, g6, &pool->used6, &pool->n6) < 0)) {
        addresses_pool_free(pool);
        return -EIO;
    }
    /* Kept sorted from here on: each take is a search, not a sort. */
    if (pool->n4 > 1)           /* qsort(NULL, 0, …) is undefined behaviour */
        qsort(pool->used4, pool->n4, sizeof *pool->used4, cmp_addr);
    if (pool->n6 > 1)
        qsort(pool->used6, pool->n6, sizeof *pool->used6, cmp_addr);
    *ret = pool;
    return 0;
}

/* Insert A into the sorted USED. */
static void pool_add(struct ip_addr **used, size_t *n, const struct ip_addr *a)
{
    size_t at = lower_bound(*used, *n, a);
    if ((*n & (*n - 1)) == 0 || *n < 16)          /* capacity as in collect() */
        *used = xrealloc(*used, (*n < 16 ? 16 : 2 * *n) * sizeof **used);
    memmove(&(*used)[at + 1], &(*used)[at], (*n - at) * sizeof **used);
    (*used)[at] = *a;
    (*n)++;
}

static bool in_sorted(const struct ip_addr *a, const struct ip_addr *sorted, size_t n)
{
    size_t at = lower_bound(sorted, n, a);
    return at < n && ip_addr_equal(&sorted[at], a);
}

int addresses_pool_take(struct addresses_pool *pool, const char *mac, bool want_v6,
                        char ret_v4[static IP_ADDR_STRLEN], char ret_v6[static IP_ADDR_STRLEN],
                        char **ret_error)
{
    ret_v4[0] = ret_v6[0] = '\0';
    struct ip_addr a4, a6;
    char buf[IP_PREFIX_STRLEN];
    uint64_t off4 = 0, off6 = 0;
    if (pool->has_v4 && next_free_sorted(&pool->p4, pool->from4 > 1 ? pool->from4 : 1, pool->used4, pool->n4,
                                         &a4, &off4) < 0) {
        *ret_error = xasprintf("segment '%s' has no free IPv4 address left in %s", pool->name,
                               ip_prefix_format(&pool->p4, buf));
        return -ENOSPC;
    }
    if (want_v6 && pool->has_v6) {
        uint8_t m[6];
        int r = -ENOSPC;
        if (pool->p6.len == 64 && mac && ip_mac_parse(mac, m) == 0 &&
            ip_eui64_address(&pool->p6, m, &a6) == 0 && !in_sorted(&a6, pool->used6, pool->n6))
            r = 0;
        if (r < 0) {
            if (next_free_sorted(&pool->p6, pool->from6 > 0x10 ? pool->from6 : 0x10, pool->used6, pool->n6, &a6,
                                 &off6) < 0) {
                *ret_error = xasprintf("segment '%s' has no free IPv6 address left in %s", pool->name,
                                       ip_prefix_format(&pool->p6, buf));
                return -ENOSPC;
            }
            pool->from6 = off6 + 1;
        }
        pool_add(&pool->used6, &pool->n6, &a6);
        ip_addr_format(&a6, ret_v6);
    }
    if (pool->has_v4) {
        pool_add(&pool->used4, &pool->n4, &a4);
        ip_addr_format(&a4, ret_v4);
        pool->from4 = off4 + 1;
    }
    return 0;
}

int addresses_allocate(struct store_conn *conn, int64_t segment_id, const char *mac, bool want_v6,
                       char ret_v4[static IP_ADDR_STRLEN], char ret_v6[static IP_ADDR_STRLEN],
                       char **ret_error)
{
    struct addresses_pool *pool;
    int r = addresses_pool_load(conn, segment_id, &pool);
    if (r < 0)
        return r;
    r = addresses_pool_take(pool, mac, want_v6, ret_v4, ret_v6, ret_error);
    addresses_pool_free(pool);
    return r;
}

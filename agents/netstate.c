#include <config.h>
#include "netstate.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "log.h"
#include "util.h"

#define LOG_DOMAIN "netstate"

/* Large enough for a burst of changes (1,000 addresses added at once);
 * an overrun is survived by refilling the caches. */
#define NETSTATE_RCVBUF (8 * 1024 * 1024)
/* Bound on listening sockets kept per snapshot. */
#define NETSTATE_MAX_LISTENERS 65536
#ifndef TCP_LISTEN
#define TCP_LISTEN 10           /* include/net/tcp_states.h */
#endif

/* Cleanup helpers for libnl handles (only this file uses libnl). */
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cache_mngr *, nl_cache_mngr_free)
static inline void closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

enum netstate_cache {
    NETSTATE_LINKS,
    NETSTATE_ADDRS,
    NETSTATE_ROUTES,
    NETSTATE_NEIGHS,
    NETSTATE_CACHE_MAX,
};

static const char *const cache_names[NETSTATE_CACHE_MAX] = {
    [NETSTATE_LINKS] = "route/link",
    [NETSTATE_ADDRS] = "route/addr",
    [NETSTATE_ROUTES] = "route/route",
    [NETSTATE_NEIGHS] = "route/neigh",
};

/* Neighbours that failed and were then dropped from the kernel's table.
 * The kernel garbage-collects a FAILED entry within seconds; with it gone
 * a dead gateway would read as "no entry yet" and pass until the next
 * probe fails again: the segment would flap to ready.  So a neighbour
 * whose entry is deleted while FAILED or INCOMPLETE stays failed here
 * until it is seen answering (any other state).
 *
 * Two threads read the list: the event loop (netstate_snapshot, for the
 * readiness reports) and the task runner (netstate_snapshot_fresh, for a
 * playbook's check.run, when and verify), so that a playbook never passes
 * a gateway check the reports fail.  Only the event loop writes it (in
 * on_change, called by nl_cache_mngr_data_ready in netstate_process).
 * Every access, the writer's reads included, holds LOCK: a reader copies
 * the entries out under it and merges them into its snapshot after, so
 * the lock is held for a memcpy of at most UNANSWERED_MAX entries (1.8 KB)
 * and nothing allocates or blocks under it.  The handle lives inside
 * struct netstate; the agent joins the task thread (tasks_runner_stop)
 * before netstate_free, which orders the last use before the destroy.
 *
 * What the lock cannot give: the task thread's dump is the kernel's state
 * now, the list is as of the last notification the event loop processed.
 * An entry the kernel dropped a moment ago reads "no entry yet" on the
 * task thread until the event loop reaches its RTM_DELNEIGH (it processes
 * notifications between controller calls, each bounded by 10 s). */
#define UNANSWERED_MAX 64

struct netstate_unanswered {
    pthread_mutex_t lock;
    struct snapshot_neigh entries[UNANSWERED_MAX];      /* oldest first; under lock */
    size_t n;                                           /* under lock */
};

struct netstate {
    struct nl_sock *event_sock;         /* the cache manager's */
    struct nl_sock *sync_sock;          /* for refills */
    struct nl_cache_mngr *mngr;
    struct nl_cache *caches[NETSTATE_CACHE_MAX];        /* owned by mngr */
    unsigned changes;
    struct netstate_unanswered unanswered;
};

static void from_nl_addr(struct nl_addr *a, int family, struct ip_addr *ret, unsigned *ret_len);

static bool neigh_key(struct nl_object *obj, struct snapshot_neigh *ret)
{
    struct rtnl_neigh *n = (struct rtnl_neigh *) obj;
    int family = rtnl_neigh_get_family(n);
    if (family != AF_INET && family != AF_INET6)
        return false;
    *ret = (struct snapshot_neigh) { .ifindex = rtnl_neigh_get_ifindex(n) };
    from_nl_addr(rtnl_neigh_get_dst(n), family, &ret->addr, NULL);
    return ret->addr.family == family;
}

/* Called with u->lock held. */
static void unanswered_forget_locked(struct netstate_unanswered *u, const struct snapshot_neigh *k)
{
    for (size_t i = 0; i < u->n; i++) {
        if (u->entries[i].ifindex == k->ifindex && ip_addr_equal(&u->entries[i].addr, &k->addr)) {
            memmove(&u->entries[i], &u->entries[i + 1], (u->n - i - 1) * sizeof u->entries[0]);
            u->n--;
            return;
        }
    }
}

/* The event loop's thread only (the one writer). */
static void unanswered_track(struct netstate_unanswered *u, struct nl_object *obj, int action)
{
    struct snapshot_neigh k;
    if (!neigh_key(obj, &k))
        return;
    int state = rtnl_neigh_get_state((struct rtnl_neigh *) obj);
    pthread_mutex_lock(&u->lock);
    unanswered_forget_locked(u, &k);
    if (action == NL_ACT_DEL && (state & (NUD_FAILED | NUD_INCOMPLETE))) {
        if (u->n == UNANSWERED_MAX) {
            struct snapshot_neigh oldest = u->entries[0];
            unanswered_forget_locked(u, &oldest);
        }
        k.state = NUD_FAILED;
        k.dropped = true;
        u->entries[u->n++] = k;
    }
    /* A new or changed entry is the kernel's word again: FAILED or
     * INCOMPLETE it says so itself, any other state is an answer. */
    pthread_mutex_unlock(&u->lock);
}

/* Add the remembered neighbours that S has no entry for (the kernel's own
 * entry, whatever its state, is newer news).  Any thread. */
static void unanswered_merge(struct netstate_unanswered *u, struct snapshot *s)
{
    struct snapshot_neigh copy[UNANSWERED_MAX];
    pthread_mutex_lock(&u->lock);
    size_t n = u->n;
    memcpy(copy, u->entries, n * sizeof copy[0]);
    pthread_mutex_unlock(&u->lock);
    for (size_t i = 0; i < n; i++)
        if (!snapshot_find_neigh(s, copy[i].ifindex, &copy[i].addr))
            snapshot_add_neigh(s, &copy[i]);
}

struct netstate_unanswered *netstate_unanswered(struct netstate *ns)
{
    return &ns->unanswered;
}

static void on_change(struct nl_cache *cache, struct nl_object *obj, int action, void *data)
{
    struct netstate *ns = data;
    ns->changes++;
    if (streq(nl_object_get_type(obj), "route/neigh"))
        unanswered_track(&ns->unanswered, obj, action);
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

/* libnl error codes to -errno, for callers that speak errno. */
static int nlerr_to_errno(int nlerr)
{
    switch (nlerr < 0 ? -nlerr : nlerr) {
    case NLE_NOMEM: return -ENOMEM;
    case NLE_PERM: return -EPERM;
    case NLE_NOACCESS: return -EACCES;
    case NLE_AGAIN: return -EAGAIN;
    case NLE_INTR: return -EINTR;
    case NLE_BAD_SOCK: return -EBADF;
    case NLE_OBJ_NOTFOUND: return -ENOENT;
    case NLE_OPNOTSUPP: return -EOPNOTSUPP;
    case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
    default: return -EIO;
    }
}

void netstate_free(struct netstate *ns)
{
    if (!ns)
        return;
    if (ns->mngr)
        nl_cache_mngr_free(ns->mngr);   /* frees the caches it holds */
    if (ns->event_sock)
        nl_socket_free(ns->event_sock);
    if (ns->sync_sock)
        nl_socket_free(ns->sync_sock);
    pthread_mutex_destroy(&ns->unanswered.lock);
    free(ns);
}

int netstate_new(struct netstate **ret, char **ret_error)
{
    /* Declared in this order so that the manager is freed before the
     * socket it uses. */
    _cleanup_(nl_socket_freep) struct nl_sock *event_sock = nl_socket_alloc();
    _cleanup_(nl_socket_freep) struct nl_sock *sync_sock = nl_socket_alloc();
    _cleanup_(nl_cache_mngr_freep) struct nl_cache_mngr *mngr = NULL;
    _cleanup_(netstate_freep) struct netstate *ns = xcalloc(1, sizeof *ns);
    int r = pthread_mutex_init(&ns->unanswered.lock, NULL);
    if (r != 0)
        abort();        /* only ENOMEM or EAGAIN with default attributes */

    if (!event_sock || !sync_sock) {
        set_error(ret_error, "cannot allocate a netlink socket: out of memory");
        return -ENOMEM;
    }
    r = nl_connect(sync_sock, NETLINK_ROUTE);
    if (r < 0) {
        set_error(ret_error, "cannot open a route netlink socket: %s", nl_geterror(r));
        return nlerr_to_errno(r);
    }
    r = nl_cache_mngr_alloc(event_sock, NETLINK_ROUTE, 0, &mngr);
    if (r < 0) {
        set_error(ret_error, "cannot start the netlink cache manager: %s", nl_geterror(r));
        return nlerr_to_errno(r);
    }
    /* The manager connected the socket; now it can be sized. */
    r = nl_socket_set_buffer_size(event_sock, NETSTATE_RCVBUF, 0);
    if (r < 0)
        log_debug(LOG_DOMAIN, "cannot raise the netlink receive buffer to %d bytes: %s",
                  NETSTATE_RCVBUF, nl_geterror(r));
    for (int i = 0; i < NETSTATE_CACHE_MAX; i++) {
        r = nl_cache_mngr_add(mngr, cache_names[i], on_change, ns, &ns->caches[i]);
        if (r < 0) {
            set_error(ret_error, "cannot fill the %s cache from the kernel: %s", cache_names[i],
                      nl_geterror(r));
            return nlerr_to_errno(r);
        }
    }
    log_debug(LOG_DOMAIN, "caches filled: %d links, %d addresses, %d routes, %d neighbours",
              nl_cache_nitems(ns->caches[NETSTATE_LINKS]), nl_cache_nitems(ns->caches[NETSTATE_ADDRS]),
              nl_cache_nitems(ns->caches[NETSTATE_ROUTES]), nl_cache_nitems(ns->caches[NETSTATE_NEIGHS]));
    ns->mngr = steal_pointer(&mngr);
    ns->event_sock = steal_pointer(&event_sock);
    ns->sync_sock = steal_pointer(&sync_sock);
    *ret = steal_pointer(&ns);
    return 0;
}

int netstate_fd(const struct netstate *ns)
{
    return nl_cache_mngr_get_fd(ns->mngr);
}

static int refill_all(struct netstate *ns)
{
    for (int i = 0; i < NETSTATE_CACHE_MAX; i++) {
        int r = nl_cache_refill(ns->sync_sock, ns->caches[i]);
        if (r < 0) {
            log_debug(LOG_DOMAIN, "cannot refill the %s cache: %s", cache_names[i], nl_geterror(r));
            return nlerr_to_errno(r);
        }
    }
    return 0;
}

int netstate_process(struct netstate *ns)
{
    ns->changes = 0;
    int r = nl_cache_mngr_data_ready(ns->mngr);
    if (r < 0) {
        /* ENOBUFS (libnl: NLE_NOMEM): notifications were lost.  The caches
         * may be stale: dump everything again. */
        log_debug(LOG_DOMAIN, "netlink notifications lost (%s): refilling the caches", nl_geterror(r));
        int q = refill_all(ns);
        if (q < 0)
            return q;
        return 1;
    }
    return (int) ns->changes;
}

/* nl_addr to ip_addr; a NULL or empty address is the family's zero. */
static void from_nl_addr(struct nl_addr *a, int family, struct ip_addr *ret, unsigned *ret_len)
{
    struct ip_addr x = { .family = family };
    unsigned len = 0;
    if (a) {
        int f = nl_addr_get_family(a);
        unsigned n = nl_addr_get_len(a);
        if ((f == AF_INET && n == 4) || (f == AF_INET6 && n == 16)) {
            x.family = f;
            memcpy(x.bytes, nl_addr_get_binary_addr(a), n);
        }
        len = nl_addr_get_prefixlen(a);
    }
    *ret = x;
    if (ret_len)
        *ret_len = len;
}

static void copy_links(struct nl_cache *cache, struct snapshot *s)
{
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_link *l = (struct rtnl_link *) o;
        struct snapshot_link sl = {
            .ifindex = rtnl_link_get_ifindex(l),
            .mtu = rtnl_link_get_mtu(l),
            .flags = rtnl_link_get_flags(l),
            .operstate = rtnl_link_get_operstate(l),
            .disable_ipv6 = -1, .accept_ra = -1, .forwarding = -1,
        };
        const char *name = rtnl_link_get_name(l);
        snprintf(sl.name, sizeof sl.name, "%s", name ? name : "");
        snapshot_add_link(s, &sl);
    }
}

static void copy_addrs(struct nl_cache *cache, struct snapshot *s)
{
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *) o;
        int family = rtnl_addr_get_family(a);
        if (family != AF_INET && family != AF_INET6)
            continue;
        struct snapshot_addr sa = {
            .ifindex = rtnl_addr_get_ifindex(a),
            .flags = rtnl_addr_get_flags(a),
            .scope = (uint8_t) rtnl_addr_get_scope(a),
        };
        from_nl_addr(rtnl_addr_get_local(a), family, &sa.local.addr, NULL);
        if (sa.local.addr.family != family)
            continue;
        sa.local.len = (unsigned) rtnl_addr_get_prefixlen(a);
        snapshot_add_addr(s, &sa);
    }
}

static void copy_routes(struct nl_cache *cache, struct snapshot *s)
{
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_route *rt = (struct rtnl_route *) o;
        int family = rtnl_route_get_family(rt);
        if (family != AF_INET && family != AF_INET6)
            continue;
        /* The checks count only unicast routes outside the local table
         * (checks.c, route_counts); the local table alone holds one route
         * per address, so leaving it out halves a big host's snapshot. */
        if (rtnl_route_get_type(rt) != RTN_UNICAST || rtnl_route_get_table(rt) == RT_TABLE_LOCAL)
            continue;
        struct snapshot_route sr = {
            .table = rtnl_route_get_table(rt),
            .type = rtnl_route_get_type(rt),
            .protocol = rtnl_route_get_protocol(rt),
            .priority = rtnl_route_get_priority(rt),
        };
        from_nl_addr(rtnl_route_get_dst(rt), family, &sr.dst.addr, &sr.dst.len);
        int n = rtnl_route_get_nnexthops(rt);
        if (n <= 0) {
            snapshot_add_route(s, &sr);
            continue;
        }
        /* One snapshot route per next hop. */
        for (int i = 0; i < n; i++) {
            struct rtnl_nexthop *nh = rtnl_route_nexthop_n(rt, i);
            struct snapshot_route one = sr;
            one.oif = rtnl_route_nh_get_ifindex(nh);
            struct nl_addr *gw = rtnl_route_nh_get_gateway(nh);
            if (gw)
                from_nl_addr(gw, 0, &one.gateway, NULL);
            snapshot_add_route(s, &one);
        }
    }
}

static void copy_neighs(struct nl_cache *cache, struct snapshot *s)
{
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_neigh *n = (struct rtnl_neigh *) o;
        int family = rtnl_neigh_get_family(n);
        if (family != AF_INET && family != AF_INET6)
            continue;       /* AF_BRIDGE: forwarding database entries */
        struct snapshot_neigh sn = {
            .ifindex = rtnl_neigh_get_ifindex(n),
            .state = (uint16_t) rtnl_neigh_get_state(n),
            .flags = (uint8_t) rtnl_neigh_get_flags(n),
        };
        from_nl_addr(rtnl_neigh_get_dst(n), family, &sn.addr, NULL);
        if (sn.addr.family != family)
            continue;
        snapshot_add_neigh(s, &sn);
    }
}

int netstate_read_ipv6_sysctl(const char *ifname, const char *key, int *ret)
{
    if (!*ifname || strchr(ifname, '/') || streq(ifname, ".") || streq(ifname, ".."))
        return -EINVAL;
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/%s", ifname, key);
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(path, 64, &data, &len);
    if (r < 0)
        return r;
    char *end;
    errno = 0;
    long v = strtol(data, &end, 10);
    if (errno || end == data || (*end && *end != '\n') || v < -1000000 || v > 1000000)
        return -EBADMSG;
    *ret = (int) v;
    return 0;
}

/* One sock_diag dump of listening TCP sockets of one family. */
static int dump_listeners_family(int fd, int family, struct snapshot *snap)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg = {
        .nlh = {
            .nlmsg_len = sizeof msg,
            .nlmsg_type = SOCK_DIAG_BY_FAMILY,
            .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
            .nlmsg_seq = (uint32_t) family,
        },
        .req = {
            .sdiag_family = (uint8_t) family,
            .sdiag_protocol = IPPROTO_TCP,
            .idiag_states = 1u << TCP_LISTEN,
        },
    };
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *) &kernel, sizeof kernel) < 0)
        return -errno;

    /* Aligned for struct nlmsghdr. */
    _Alignas(struct nlmsghdr) char buf[32768];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        size_t left = (size_t) n;
        for (struct nlmsghdr *h = (struct nlmsghdr *) buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e))
                    return -EIO;
                return e->error ? e->error : -EIO;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                continue;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (m->idiag_family != AF_INET && m->idiag_family != AF_INET6)
                continue;
            if (snap->n_listeners >= NETSTATE_MAX_LISTENERS)
                continue;
            struct snapshot_listener l = {
                .family = m->idiag_family,
                .port = ntohs(m->id.idiag_sport),
                .bound_ifindex = (int) m->id.idiag_if,
            };
            ip_addr_from_bytes(m->idiag_family, m->id.idiag_src, &l.addr);
            /* Attributes follow the message. */
            size_t attr_len = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
            const struct rtattr *a = (const struct rtattr *) ((const char *) m + NLMSG_ALIGN(sizeof *m));
            for (; RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len))
                if (a->rta_type == INET_DIAG_SKV6ONLY && RTA_PAYLOAD(a) >= 1)
                    l.v6only = *(const uint8_t *) RTA_DATA(a) != 0;
            snapshot_add_listener(snap, &l);
        }
    }
}

int netstate_dump_listeners(struct snapshot *snap)
{
    _cleanup_(closep) int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -errno;
    size_t before = snap->n_listeners;
    int r = dump_listeners_family(fd, AF_INET, snap);
    if (r == 0)
        r = dump_listeners_family(fd, AF_INET6, snap);
    if (r < 0) {
        snap->n_listeners = before;
        return r;
    }
    snap->listeners_known = true;
    return 0;
}

/* The common part of both snapshots: copy the four caches, then read
 * the sysctls and the listeners, which no cache holds. */
static int snapshot_from_caches(struct nl_cache *const caches[NETSTATE_CACHE_MAX],
                                const char *const *ifnames, size_t n_ifnames, struct snapshot **ret);

int netstate_snapshot(struct netstate *ns, const char *const *ifnames, size_t n_ifnames,
                      struct snapshot **ret)
{
    int r = snapshot_from_caches(ns->caches, ifnames, n_ifnames, ret);
    if (r < 0)
        return r;
    unanswered_merge(&ns->unanswered, *ret);
    return 0;
}

int netstate_snapshot_fresh(struct nl_sock *sock, struct netstate_unanswered *remembered,
                            const char *const *ifnames, size_t n_ifnames, struct snapshot **ret)
{
    struct nl_cache *caches[NETSTATE_CACHE_MAX] = { 0 };
    int r = 0;
    for (int i = 0; i < NETSTATE_CACHE_MAX && r == 0; i++) {
        int q = nl_cache_alloc_name(cache_names[i], &caches[i]);
        if (q == 0)
            q = nl_cache_refill(sock, caches[i]);
        if (q < 0) {
            log_debug(LOG_DOMAIN, "cannot dump %s: %s", cache_names[i], nl_geterror(q));
            r = nlerr_to_errno(q);
        }
    }
    if (r == 0)
        r = snapshot_from_caches(caches, ifnames, n_ifnames, ret);
    if (r == 0 && remembered)
        unanswered_merge(remembered, *ret);
    for (int i = 0; i < NETSTATE_CACHE_MAX; i++)
        if (caches[i])
            nl_cache_free(caches[i]);
    return r;
}

static int snapshot_from_caches(struct nl_cache *const caches[NETSTATE_CACHE_MAX],
                                const char *const *ifnames, size_t n_ifnames, struct snapshot **ret)
{
    _cleanup_(snapshot_freep) struct snapshot *s = snapshot_new();
    copy_links(caches[NETSTATE_LINKS], s);
    copy_addrs(caches[NETSTATE_ADDRS], s);
    copy_routes(caches[NETSTATE_ROUTES], s);
    copy_neighs(caches[NETSTATE_NEIGHS], s);

    /* Sysctl changes raise no rtnetlink event: read them every time. */
    s->ipv6_in_kernel = access("/proc/sys/net/ipv6", F_OK) == 0;
    for (size_t i = 0; i < s->n_links; i++) {
        struct snapshot_link *l = &s->links[i];
        bool wanted = false;
        for (size_t j = 0; j < n_ifnames && !wanted; j++)
            wanted = streq(ifnames[j], l->name);
        if (!wanted)
            continue;
        if (netstate_read_ipv6_sysctl(l->name, "disable_ipv6", &l->disable_ipv6) < 0)
            l->disable_ipv6 = -1;
        if (netstate_read_ipv6_sysctl(l->name, "accept_ra", &l->accept_ra) < 0)
            l->accept_ra = -1;
        if (netstate_read_ipv6_sysctl(l->name, "forwarding", &l->forwarding) < 0)
            l->forwarding = -1;
    }

    int r = netstate_dump_listeners(s);
    if (r < 0)
        log_debug(LOG_DOMAIN, "cannot list listening sockets (sock_diag): %s", strerror(-r));
    *ret = steal_pointer(&s);
    return 0;
}

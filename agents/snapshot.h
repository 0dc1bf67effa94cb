/* A snapshot of one host's network state, as the checks see it: links,
 * addresses, routes, neighbours, per-link IPv6 sysctls and listening
 * sockets.  Plain data, independent of libnl, so that unit tests build
 * snapshots by hand and netstate.c builds them from its caches.
 *
 * Flags and states use the kernel's own values: IFF_* (<net/if.h>),
 * IFA_F_* (<linux/if_addr.h>), RTN_* / RTPROT_* / RT_TABLE_*
 * (<linux/rtnetlink.h>), NUD_* / NTF_* (<linux/neighbour.h>). */
#ifndef YG_AGENT_SNAPSHOT_H
#define YG_AGENT_SNAPSHOT_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ip.h"

#define SNAPSHOT_IFNAMSIZ 16    /* IFNAMSIZ */

struct snapshot_link {
    int ifindex;
    char name[SNAPSHOT_IFNAMSIZ];
    unsigned mtu;
    unsigned flags;             /* IFF_UP, IFF_LOWER_UP, ... */
    uint8_t operstate;          /* IF_OPER_* */
    /* /proc/sys/net/ipv6/conf/NAME/{disable_ipv6,accept_ra,forwarding};
     * -1 when unknown (the directory does not exist: IPv6 is off on that
     * link, e.g. MTU below 1280, or in the whole kernel). */
    int disable_ipv6;
    int accept_ra;
    int forwarding;
};

struct snapshot_addr {
    int ifindex;
    struct ip_prefix local;     /* address/prefixlen, host bits kept */
    uint32_t flags;             /* IFA_F_TENTATIVE, IFA_F_DADFAILED, IFA_F_DEPRECATED, ... */
    uint8_t scope;              /* RT_SCOPE_* */
};

/* One next hop of a route: a multipath route appears once per next hop. */
struct snapshot_route {
    struct ip_prefix dst;
    struct ip_addr gateway;     /* family 0 when there is none */
    int oif;
    uint32_t table;
    uint8_t type;               /* RTN_UNICAST, ... */
    uint8_t protocol;           /* RTPROT_KERNEL, RTPROT_RA, RTPROT_STATIC, ... */
    uint32_t priority;
};

struct snapshot_neigh {
    int ifindex;
    struct ip_addr addr;
    uint16_t state;             /* NUD_* */
    uint8_t flags;              /* NTF_ROUTER, ... */
    bool dropped;               /* not in the kernel's table any more: it failed, and the
                                 * kernel dropped the entry (state NUD_FAILED); see
                                 * netstate.c, "unanswered" */
};

/* A listening TCP socket (sock_diag). */
struct snapshot_listener {
    int family;                 /* of the socket: AF_INET or AF_INET6 */
    struct ip_addr addr;        /* bound address (may be 0.0.0.0 / ::) */
    uint16_t port;
    bool v6only;                /* AF_INET6 only: IPV6_V6ONLY */
    int bound_ifindex;          /* SO_BINDTODEVICE, 0 when none */
};

struct snapshot {
    struct snapshot_link *links;
    size_t n_links;
    struct snapshot_addr *addrs;
    size_t n_addrs;
    struct snapshot_route *routes;
    size_t n_routes;
    struct snapshot_neigh *neighs;
    size_t n_neighs;
    struct snapshot_listener *listeners;
    size_t n_listeners;
    bool ipv6_in_kernel;        /* /proc/sys/net/ipv6 exists */
    bool listeners_known;       /* sock_diag answered */
    size_t cap_links, cap_addrs, cap_routes, cap_neighs, cap_listeners;
};

struct snapshot *snapshot_new(void);
void snapshot_free(struct snapshot *s);
static inline void snapshot_freep(struct snapshot **s) { snapshot_free(*s); }

/* Append a copy; returns the stored element (valid until the next add). */
struct snapshot_link *snapshot_add_link(struct snapshot *s, const struct snapshot_link *l);
struct snapshot_addr *snapshot_add_addr(struct snapshot *s, const struct snapshot_addr *a);
struct snapshot_route *snapshot_add_route(struct snapshot *s, const struct snapshot_route *r);
struct snapshot_neigh *snapshot_add_neigh(struct snapshot *s, const struct snapshot_neigh *n);
struct snapshot_listener *snapshot_add_listener(struct snapshot *s, const struct snapshot_listener *l);

const struct snapshot_link *snapshot_find_link(const struct snapshot *s, const char *name);
const struct snapshot_link *snapshot_find_link_by_index(const struct snapshot *s, int ifindex);
const struct snapshot_neigh *snapshot_find_neigh(const struct snapshot *s, int ifindex,
                                                 const struct ip_addr *addr);

#endif

/* The host's network state from the kernel: libnl caches of links,
 * addresses, routes (IPv4 and IPv6) and neighbours kept current by one
 * nl_cache_mngr (event driven), plus what rtnetlink does not announce:
 * per-link IPv6 sysctls (read from /proc at each snapshot) and listening
 * TCP sockets (sock_diag, dumped at each snapshot). */
#ifndef YG_AGENT_NETSTATE_H
#define YG_AGENT_NETSTATE_H 1

#include <stdbool.h>
#include <stddef.h>

#include "snapshot.h"

struct netstate;

/* Open the netlink sockets and fill the caches.  0 or -errno; *ret_error
 * (when not NULL) gets one sentence to free. */
int netstate_new(struct netstate **ret, char **ret_error);
void netstate_free(struct netstate *ns);
static inline void netstate_freep(struct netstate **ns) { netstate_free(*ns); }

/* The fd to poll for POLLIN: the cache manager's multicast socket. */
int netstate_fd(const struct netstate *ns);

/* Apply the pending kernel notifications to the caches.  Returns the
 * number of changes applied (>0: the state changed), or -errno.  After a
 * lost notification (socket buffer overrun) the caches are refilled and
 * the result counts as a change. */
int netstate_process(struct netstate *ns);

/* Copy the caches into a new snapshot; read the IPv6 sysctls of the links
 * named in ifnames[] (only those: the others get -1) and dump the
 * listening TCP sockets.  0 or -errno. */
int netstate_snapshot(struct netstate *ns, const char *const *ifnames, size_t n_ifnames,
                      struct snapshot **ret);

/* The neighbours a running daemon remembers as unanswered: dropped by the
 * kernel while FAILED or INCOMPLETE and not seen answering since
 * (netstate.c, "unanswered").  A fresh dump cannot know them, so the task
 * runner's thread merges them into its snapshots through this handle.
 * Thread-safe (a mutex inside); valid until netstate_free(), so the
 * threads that use it must be joined before. */
struct netstate_unanswered;
struct netstate_unanswered *netstate_unanswered(struct netstate *ns);

/* The same from a fresh dump over SOCK (a connected NETLINK_ROUTE
 * socket of the caller's): for the task runner, which must not touch the
 * event loop's caches from its thread and wants the state as it is now,
 * not as the last processed notification left it.  REMEMBERED (may be
 * NULL: no daemon, as with --run-task) adds the daemon's unanswered
 * neighbours that the dump has no entry for, as netstate_snapshot()
 * does.  0 or -errno. */
struct nl_sock;
int netstate_snapshot_fresh(struct nl_sock *sock, struct netstate_unanswered *remembered,
                            const char *const *ifnames, size_t n_ifnames, struct snapshot **ret);

/* Read /proc/sys/net/ipv6/conf/IFNAME/KEY as an integer.  0 or -errno. */
int netstate_read_ipv6_sysctl(const char *ifname, const char *key, int *ret);

/* Dump listening TCP sockets of both families into snap (sock_diag).
 * 0 or -errno; sets snap->listeners_known on success. */
int netstate_dump_listeners(struct snapshot *snap);

#endif

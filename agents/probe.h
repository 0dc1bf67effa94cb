/* Neighbour probes: one UDP datagram to the discard port (9) of an
 * address, sent out of a given interface, so that the kernel resolves the
 * neighbour (ND / ARP) and its neighbour table says whether it answers.
 * The datagram's fate does not matter; the neighbour entry does. */
#ifndef YG_AGENT_PROBE_H
#define YG_AGENT_PROBE_H 1

#include "ip.h"

/* IFINDEX is needed for link-local addresses only (0 otherwise).
 * 0 or -errno (the interface is gone, no route, ...). */
int neighbour_probe_send(const char *ifname, int ifindex, const struct ip_addr *a);

#endif

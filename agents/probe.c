/* Neighbour probes (probe.h). */
#include <config.h>

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"

int neighbour_probe_send(const char *ifname, int ifindex, const struct ip_addr *a)
{
    int fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t) strlen(ifname)) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    static const char payload[] = "yunguan-agent neighbour probe";
    ssize_t n;
    if (a->family == AF_INET6) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
        memcpy(&sa.sin6_addr, a->bytes, 16);
        if (ip_addr_is_link_local(a))
            sa.sin6_scope_id = (uint32_t) ifindex;
        n = sendto(fd, payload, sizeof payload - 1, 0, (struct sockaddr *) &sa, sizeof sa);
    } else {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(9) };
        memcpy(&sa.sin_addr, a->bytes, 4);
        n = sendto(fd, payload, sizeof payload - 1, 0, (struct sockaddr *) &sa, sizeof sa);
    }
    int r = n < 0 ? -errno : 0;
    close(fd);
    return r;
}

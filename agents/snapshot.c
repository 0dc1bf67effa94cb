#include <config.h>
#include "snapshot.h"

#include "util.h"

struct snapshot *snapshot_new(void)
{
    return xcalloc(1, sizeof(struct snapshot));
}

void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    free(s->links);
    free(s->addrs);
    free(s->routes);
    free(s->neighs);
    free(s->listeners);
    free(s);
}

/* Grow *array (of n elements, capacity *cap) to hold one more of size. */
static void *grow(void *array, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return array;
    size_t c = *cap ? *cap * 2 : 16;
    *cap = c;
    return xrealloc(array, c * size);
}

#define SNAPSHOT_ADD(s, arr, n, cap, item)                                   \
    ({                                                                      \
        (s)->arr = grow((s)->arr, (s)->n, &(s)->cap, sizeof *(s)->arr);     \
        (s)->arr[(s)->n] = *(item);                                         \
        &(s)->arr[(s)->n++];                                                \
    })

struct snapshot_link *snapshot_add_link(struct snapshot *s, const struct snapshot_link *l)
{
    return SNAPSHOT_ADD(s, links, n_links, cap_links, l);
}

struct snapshot_addr *snapshot_add_addr(struct snapshot *s, const struct snapshot_addr *a)
{
    return SNAPSHOT_ADD(s, addrs, n_addrs, cap_addrs, a);
}

struct snapshot_route *snapshot_add_route(struct snapshot *s, const struct snapshot_route *r)
{
    return SNAPSHOT_ADD(s, routes, n_routes, cap_routes, r);
}

struct snapshot_neigh *snapshot_add_neigh(struct snapshot *s, const struct snapshot_neigh *n)
{
    return SNAPSHOT_ADD(s, neighs, n_neighs, cap_neighs, n);
}

struct snapshot_listener *snapshot_add_listener(struct snapshot *s, const struct snapshot_listener *l)
{
    return SNAPSHOT_ADD(s, listeners, n_listeners, cap_listeners, l);
}

const struct snapshot_link *snapshot_find_link(const struct snapshot *s, const char *name)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (streq(s->links[i].name, name))
            return &s->links[i];
    return NULL;
}

const struct snapshot_link *snapshot_find_link_by_index(const struct snapshot *s, int ifindex)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (s->links[i].ifindex == ifindex)
            return &s->links[i];
    return NULL;
}

const struct snapshot_neigh *snapshot_find_neigh(const struct snapshot *s, int ifindex,
                                                 const struct ip_addr *addr)
{
    for (size_t i = 0; i < s->n_neighs; i++)
        if (s->neighs[i].ifindex == ifindex && ip_addr_equal(&s->neighs[i].addr, addr))
            return &s->neighs[i];
    return NULL;
}

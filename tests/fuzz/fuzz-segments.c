/* libFuzzer target for the segment list loader: segment_list_parse() on
 * arbitrary bytes, then segment_list_to_json() or the error object, then
 * every free.  Besides memory errors (ASan) and undefined behaviour (UBSan)
 * it checks the loader's promises: exactly one of list/error; a 422 error
 * has 1 to SEGMENTS_MAX_ERRORS details each with line and column and valid
 * UTF-8; a list has unique names and VLANs, prefixes that overlap nowhere,
 * gateways and host addresses inside their prefixes, hosts sorted by name;
 * and its canonical JSON loads back to the same JSON. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "error.h"
#include "loader-checks.h"
#include "segments.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_segment(const struct segment *s)
{
    if (!s->name || !s->interface || !segment_ifname_is_valid(s->interface) ||
        s->vlan < 0 || s->vlan > 4094 || s->ipv4_prefix.addr.family != AF_INET ||
        !ip_prefix_contains(&s->ipv4_prefix, &s->ipv4_gateway) ||
        ip_prefix_has_host_bits(&s->ipv4_prefix))
        abort();
    if (s->has_ipv6 && (s->ipv6_prefix.addr.family != AF_INET6 ||
                        !ip_prefix_contains(&s->ipv6_prefix, &s->ipv6_gateway) ||
                        ip_prefix_has_host_bits(&s->ipv6_prefix) ||
                        (s->slaac && s->ipv6_prefix.len != 64)))
        abort();
    if (s->n_hosts > SEGMENTS_MAX_HOSTS || s->n_departments > SEGMENTS_MAX_DEPARTMENTS)
        abort();
    for (size_t i = 0; i < s->n_hosts; i++) {
        const struct segment_host *h = &s->hosts[i];
        if (!h->name || (i > 0 && strcmp(s->hosts[i - 1].name, h->name) >= 0))
            abort();
        if (h->ipv4.family && (!ip_prefix_contains(&s->ipv4_prefix, &h->ipv4) ||
                               ip_addr_equal(&h->ipv4, &s->ipv4_gateway)))
            abort();
        if (h->ipv6.family && (!s->has_ipv6 || !ip_prefix_contains(&s->ipv6_prefix, &h->ipv6) ||
                               ip_addr_equal(&h->ipv6, &s->ipv6_gateway)))
            abort();
    }
}

static void check_list(const struct segment_list *l)
{
    if (l->n_segments < 1 || l->n_segments > SEGMENTS_MAX_SEGMENTS)
        abort();
    for (size_t j = 0; j < l->n_segments; j++) {
        const struct segment *s = &l->segments[j];
        check_segment(s);
        for (size_t i = 0; i < j; i++) {
            const struct segment *o = &l->segments[i];
            if (streq(s->name, o->name) || (s->vlan && s->vlan == o->vlan) ||
                ip_prefix_overlap(&s->ipv4_prefix, &o->ipv4_prefix) ||
                (s->has_ipv6 && o->has_ipv6 && ip_prefix_overlap(&s->ipv6_prefix, &o->ipv6_prefix)))
                abort();
        }
    }
    /* The canonical JSON is a valid segment list with the same JSON. */
    json_t *j = segment_list_to_json(l);
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        abort();
    if (strlen(text) > SEGMENTS_MAX_BYTES) {     /* quotes can make it longer than the input */
        free(text);
        json_decref(j);
        return;
    }
    struct segment_list *again = NULL;
    struct yg_error *e = NULL;
    if (segment_list_parse(text, strlen(text), "again.json", &again, &e) != 0)
        abort();
    json_t *j2 = segment_list_to_json(again);
    if (!json_equal(j, j2))
        abort();
    json_decref(j2);
    segment_list_free(again);
    free(text);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct segment_list *l = NULL;
    struct yg_error *e = NULL;
    int rc = segment_list_parse((const char *) data, size, "fuzz.yaml", &l, &e);
    if (rc == 0) {
        if (!l || e)
            abort();
        check_list(l);
    } else {
        if (l || !e)
            abort();
        fuzz_check_loader_error(e, SEGMENTS_MAX_ERRORS);
    }
    segment_list_free(l);
    yg_error_free(e);
    return 0;
}

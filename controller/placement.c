#include <config.h>
#include "placement.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "util.h"

/* Why HOST cannot take VM (NULL when it can), into buf. */
static const char *refusal(const struct placement_host *h, const struct placement_vm *vm,
                           double overcommit, const char *segment, char *buf, size_t size)
{
    if (!h->carries)
        snprintf(buf, size, "does not carry segment '%s'", segment);
    else if (h->drained)
        snprintf(buf, size, "drained");
    else if (!h->up)
        snprintf(buf, size, "down (libvirt not reachable)");
    else {
        int64_t vcpu_cap = (int64_t) ((double) h->cpus * overcommit);
        if (h->used_vcpus + vm->vcpus > vcpu_cap)
            snprintf(buf, size, "vCPUs: %" PRId64 " free of %" PRId64 " (%" PRId64 " CPUs x %.2g), "
                     "%" PRId64 " needed", vcpu_cap - h->used_vcpus, vcpu_cap, h->cpus, overcommit,
                     vm->vcpus);
        else if (h->used_memory_mib + vm->memory_mib > h->memory_mib)
            snprintf(buf, size, "memory: %" PRId64 " MiB free of %" PRId64 " MiB, %" PRId64 " MiB needed",
                     h->memory_mib - h->used_memory_mib, h->memory_mib, vm->memory_mib);
        else if (h->used_disk_gib + vm->disk_gib > h->disk_gib)
            snprintf(buf, size, "disk: %" PRId64 " GiB free of %" PRId64 " GiB, %" PRId64 " GiB needed",
                     h->disk_gib - h->used_disk_gib, h->disk_gib, vm->disk_gib);
        else
            return NULL;
    }
    return buf;
}

int placement_place(struct placement_host *hosts, size_t n_hosts, const struct placement_vm *vms,
                    size_t n_vms, double overcommit, const char *segment, size_t *ret_assign,
                    char **ret_reason)
{
    struct placement_host *work = xcalloc(n_hosts ? n_hosts : 1, sizeof *work);
    size_t *mine = xcalloc(n_hosts ? n_hosts : 1, sizeof *mine);   /* this request's VMs per host */
    size_t *assign = xcalloc(n_vms ? n_vms : 1, sizeof *assign);
    memcpy(work, hosts, n_hosts * sizeof *work);
    char buf[256];
    int r = 0;

    for (size_t v = 0; v < n_vms && r == 0; v++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < n_hosts; i++) {
            if (refusal(&work[i], &vms[v], overcommit, segment, buf, sizeof buf))
                continue;
            if (best == SIZE_MAX || mine[i] < mine[best] ||
                (mine[i] == mine[best] &&
                 (work[i].memory_mib - work[i].used_memory_mib >
                      work[best].memory_mib - work[best].used_memory_mib ||
                  (work[i].memory_mib - work[i].used_memory_mib ==
                       work[best].memory_mib - work[best].used_memory_mib &&
                   strcmp(work[i].name, work[best].name) < 0))))
                best = i;
        }
        if (best == SIZE_MAX) {
            struct strbuf sb;
            strbuf_init(&sb);
            if (n_hosts == 0) {
                strbuf_puts(&sb, "no hypervisor host is registered ('yunguan host add')");
            } else {
                strbuf_printf(&sb, "no host can take VM %zu of %zu (%" PRId64 " vCPUs, %" PRId64
                              " MiB, %" PRId64 " GiB): ", v + 1, n_vms, vms[v].vcpus,
                              vms[v].memory_mib, vms[v].disk_gib);
                for (size_t i = 0; i < n_hosts; i++) {
                    const char *why = refusal(&work[i], &vms[v], overcommit, segment, buf, sizeof buf);
                    strbuf_printf(&sb, "%s%s: %s", i ? "; " : "", work[i].name,
                                  why ? why : "fits");
                }
            }
            *ret_reason = strbuf_steal(&sb);
            r = -ENOSPC;
            break;
        }
        assign[v] = best;
        mine[best]++;
        work[best].used_vcpus += vms[v].vcpus;
        work[best].used_memory_mib += vms[v].memory_mib;
        work[best].used_disk_gib += vms[v].disk_gib;
    }
    if (r == 0) {
        memcpy(hosts, work, n_hosts * sizeof *work);
        memcpy(ret_assign, assign, n_vms * sizeof *assign);
    }
    free(work);
    free(mine);
    free(assign);
    return r;
}

/* Placement: which host each VM of an approved request goes to.  A pure
 * function of the hosts' capacity and what is already placed on them (the
 * caller counts that from the store), so that it is tested as a table.
 *
 * A host can take a VM when it is up, not drained, carries the request's
 * segment, and has the vCPUs (capacity × overcommit ratio), the memory (no
 * overcommit) and the disk (the storage pool's capacity) left.  A request's
 * VMs are spread: each goes to the eligible host holding the fewest of this
 * request's VMs so far, then the one with the most free memory.  All of a
 * request's VMs are placed or none. */
#ifndef YG_PLACEMENT_H
#define YG_PLACEMENT_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct placement_host {
    const char *name;
    bool up, drained, carries;
    int64_t cpus, memory_mib, disk_gib;
    int64_t used_vcpus, used_memory_mib, used_disk_gib;   /* updated as VMs are placed */
};

struct placement_vm {
    int64_t vcpus, memory_mib, disk_gib;
};

/* 0 and ret_assign[i] = index of VM i's host; or -ENOSPC with *ret_reason,
 * one sentence naming for each host the resource that is short ("hv01:
 * memory 3072 MiB free, 4096 MiB needed; hv02: drained").  HOSTS' used
 * amounts are updated only on success. */
int placement_place(struct placement_host *hosts, size_t n_hosts, const struct placement_vm *vms,
                    size_t n_vms, double overcommit, const char *segment, size_t *ret_assign,
                    char **ret_reason);

#endif

/* The hypervisor layer: one libvirt connection per host, each owned by the
 * host's worker thread, so that blocking libvirt calls never run on an
 * HTTP thread or on the store's writer; one event-loop thread for the
 * whole process (virEventRegisterDefaultImpl + virEventRunDefaultImpl)
 * that carries lifecycle events, keepalives and close notifications.
 *
 * A host that cannot be reached is reported down at once (its tasks get
 * a NULL connection and finish quickly); the worker reconnects with a
 * capped exponential backoff.
 *
 * The hv_* helpers below the workers are plain synchronous libvirt calls
 * with libvirt's own message in *ret_error; they are what the workers run
 * and what the unit tests drive against test:///default. */
#ifndef YG_HYPERVISOR_H
#define YG_HYPERVISOR_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvirt/libvirt.h>

struct hv;

struct hv_capacity {
    int64_t cpus;
    int64_t memory_mib;
    int64_t disk_gib;               /* the storage pool's capacity */
    int64_t disk_available_gib;
};

enum hv_domstate {
    HV_DOM_RUNNING,
    HV_DOM_SHUTOFF,
    HV_DOM_PAUSED,
    HV_DOM_CRASHED,
    HV_DOM_OTHER,
    HV_DOM_MAX,
};
const char *hv_domstate_to_string(enum hv_domstate s);
int hv_domstate_from_string(const char *s);

struct hv_callbacks {
    void *opaque;
    /* On a worker thread: the host became reachable (CAP set) or not
     * (ERROR set); also after each capacity refresh while up. */
    void (*host_status)(void *opaque, const char *host, bool up, const struct hv_capacity *cap,
                        const char *error);
    /* On the event-loop thread: a domain's lifecycle changed. */
    void (*domain_event)(void *opaque, const char *host, const char *domain, enum hv_domstate state);
};

/* Start the event loop.  CB is copied.  0 or -errno. */
int hv_start(const struct hv_callbacks *cb, struct hv **ret);
/* Stop every worker (after its current task) and the event loop. */
void hv_stop(struct hv *hv);

/* Add a host, or change its URI or pool (the worker reconnects). */
void hv_host_set(struct hv *hv, const char *name, const char *uri, const char *pool);
bool hv_host_up(struct hv *hv, const char *name);
/* Ask the worker to read the capacity again soon. */
void hv_host_refresh(struct hv *hv, const char *name);

/* A task runs on HOST's worker thread with the host's connection, or with
 * conn NULL when the host is down (it must then finish without libvirt).
 * -ENOENT (and FN is not called) when there is no such host. */
typedef void (*hv_task_fn)(virConnectPtr conn, const char *host, const char *pool, void *ctx);
int hv_submit(struct hv *hv, const char *host, hv_task_fn fn, void *ctx);

/* Tasks waiting on HOST (for /metrics). */
size_t hv_queue_length(struct hv *hv, const char *host);

/* ---- synchronous helpers (0 or negative errno, *ret_error to free) ---- */

/* libvirt's last error on this thread as one sentence (to free). */
char *hv_error_message(void);
/* Silence libvirt's default printing of errors to stderr. */
void hv_silence_errors(void);

virConnectPtr hv_open(const char *uri, char **ret_error);
/* How many libvirt steps of one batch may run side by side on CONN.
 * HV_PARALLEL_STEPS for a daemon (libvirtd serves one connection's calls
 * on its worker pool, and QEMU's start and destroy wait on the emulator);
 * 1 for a driver that runs inside this process (test:///), whose calls
 * serialise on the driver's own lock: more threads there only contend
 * for it (about a third more CPU per call on two vCPUs). */
#define HV_PARALLEL_STEPS 4
int hv_parallel_steps(virConnectPtr conn);
int hv_capacity_get(virConnectPtr conn, const char *pool, struct hv_capacity *ret, char **ret_error);

/* Create volume NAME (qcow2) in POOL unless it exists: backed by the
 * image volume when the pool holds one (IMAGE, IMAGE.qcow2 or IMAGE.img),
 * else empty, of SIZE_MIB.  *ret_backing (may be NULL) gets the backing
 * path or NULL. */
int hv_volume_ensure(virConnectPtr conn, const char *pool, const char *name, int64_t size_mib,
                     const char *image, char **ret_backing, char **ret_error);
bool hv_volume_exists(virConnectPtr conn, const char *pool, const char *name);
/* Wipe (zero pattern, falling back to libvirt's default algorithm); the
 * method is "zero", "default" or "none: <why>" when the driver has no
 * wipe.  -ENOENT when the volume is gone. */
int hv_volume_wipe(virConnectPtr conn, const char *pool, const char *name, char **ret_method,
                   char **ret_error);
/* 0 also when it was already gone. */
int hv_volume_delete(virConnectPtr conn, const char *pool, const char *name, char **ret_error);

/* Define XML unless a domain of that name exists. */
int hv_domain_define(virConnectPtr conn, const char *name, const char *xml, char **ret_error);
/* Start unless running. */
int hv_domain_start(virConnectPtr conn, const char *name, char **ret_error);
/* ACPI shutdown, wait up to TIMEOUT_MS for it to be off (woken by the
 * lifecycle events), then force it off; *ret_forced tells which.  0 also
 * when it was off or gone. */
int hv_domain_shutdown(virConnectPtr conn, const char *name, int timeout_ms, bool *ret_forced,
                       char **ret_error);
/* The same for N domains at once: every one gets its ACPI request first,
 * then they share one wait, then those still running are forced off on
 * up to 4 threads at once.  ret_forced[i] and ret_errors[i] (to free) per
 * domain; returns the worst result. */
int hv_domains_shutdown(virConnectPtr conn, const char *const *names, size_t n, int timeout_ms,
                        bool *ret_forced, char **ret_errors);
/* Lifecycle events seen so far, and a wait (at most MS) for the next. */
uint64_t hv_event_generation(void);
void hv_wait_event(uint64_t gen, int ms);
int hv_domain_reboot(virConnectPtr conn, const char *name, char **ret_error);
/* Destroy if running, then undefine (with its managed save and NVRAM).
 * 0 also when it was already gone. */
int hv_domain_remove(virConnectPtr conn, const char *name, char **ret_error);
/* -ENOENT when there is no such domain. */
int hv_domain_state(virConnectPtr conn, const char *name, enum hv_domstate *ret, char **ret_error);
bool hv_domain_exists(virConnectPtr conn, const char *name);

struct hv_domain_info {
    char *name;
    enum hv_domstate state;
};
int hv_list_domains(virConnectPtr conn, struct hv_domain_info **ret, size_t *ret_n, char **ret_error);
void hv_domain_infos_free(struct hv_domain_info *d, size_t n);

#endif

#include <config.h>
#include "hypervisor.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <libvirt/virterror.h>

#include "domain-xml.h"
#include "log.h"
#include "util.h"

#define LOG_DOMAIN "hypervisor"
#define BACKOFF_MIN_USEC (500 * 1000ull)
#define BACKOFF_MAX_USEC (30 * 1000 * 1000ull)
#define CAPACITY_EVERY_USEC (30 * 1000 * 1000ull)
#define KEEPALIVE_INTERVAL 3        /* seconds; dead after INTERVAL * (COUNT + 1) */
#define KEEPALIVE_COUNT 2
#define SHUTDOWN_POLL_MS 250        /* bound on each wait between lifecycle events */

static const char *const domstate_names[HV_DOM_MAX] = {
    [HV_DOM_RUNNING] = "running", [HV_DOM_SHUTOFF] = "shutoff", [HV_DOM_PAUSED] = "paused",
    [HV_DOM_CRASHED] = "crashed", [HV_DOM_OTHER] = "other",
};

const char *hv_domstate_to_string(enum hv_domstate s)
{
    return (unsigned) s < HV_DOM_MAX ? domstate_names[s] : NULL;
}

int hv_domstate_from_string(const char *s)
{
    for (int i = 0; s && i < HV_DOM_MAX; i++)
        if (streq(domstate_names[i], s))
            return i;
    return -1;
}

/* Woken on every lifecycle event, for hv_domain_shutdown()'s wait. */
static pthread_mutex_t event_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t event_cond = PTHREAD_COND_INITIALIZER;
static uint64_t event_generation;

static void silent_error(void *opaque, virErrorPtr err) { }

void hv_silence_errors(void)
{
    virSetErrorFunc(NULL, silent_error);
}

char *hv_error_message(void)
{
    const char *m = virGetLastErrorMessage();
    return xstrdup(m && *m ? m : "unknown libvirt error");
}

static int fail(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **ret_error, const char *fmt, ...)
{
    int code = virGetLastErrorCode();
    _cleanup_free_ char *what = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&what, fmt, ap) < 0)
        abort();
    va_end(ap);
    _cleanup_free_ char *msg = hv_error_message();
    if (ret_error)
        *ret_error = xasprintf("%s: %s", what, msg);
    return code == VIR_ERR_NO_SUPPORT ? -ENOTSUP : -EIO;
}

static enum hv_domstate map_state(int s)
{
    switch (s) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
        return HV_DOM_RUNNING;
    case VIR_DOMAIN_SHUTOFF:
        return HV_DOM_SHUTOFF;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
        return HV_DOM_PAUSED;
    case VIR_DOMAIN_CRASHED:
        return HV_DOM_CRASHED;
    default:
        return HV_DOM_OTHER;
    }
}

virConnectPtr hv_open(const char *uri, char **ret_error)
{
    virConnectPtr conn = virConnectOpen(uri);
    if (!conn) {
        fail(ret_error, "cannot connect to '%s'", uri);
        return NULL;
    }
    return conn;
}

int hv_parallel_steps(virConnectPtr conn)
{
    /* The test driver's type is "TEST"; no other driver runs in-process
     * in yunguand (qemu, kvm, remote all go through libvirtd). */
    const char *type = conn ? virConnectGetType(conn) : NULL;
    return type && strcasecmp(type, "test") == 0 ? 1 : HV_PARALLEL_STEPS;
}

int hv_capacity_get(virConnectPtr conn, const char *pool, struct hv_capacity *ret, char **ret_error)
{
    virNodeInfo node;
    if (virNodeGetInfo(conn, &node) < 0)
        return fail(ret_error, "cannot read the node's CPUs and memory");
    virStoragePoolPtr p = virStoragePoolLookupByName(conn, pool);
    if (!p)
        return fail(ret_error, "storage pool '%s'", pool);
    virStoragePoolInfo info;
    int active = virStoragePoolIsActive(p);
    if (active == 0 && virStoragePoolCreate(p, 0) < 0) {
        int r = fail(ret_error, "storage pool '%s' is not active and cannot be started", pool);
        virStoragePoolFree(p);
        return r;
    }
    virStoragePoolRefresh(p, 0);
    int rc = virStoragePoolGetInfo(p, &info);
    virStoragePoolFree(p);
    if (rc < 0)
        return fail(ret_error, "cannot read storage pool '%s'", pool);
    ret->cpus = node.cpus;
    ret->memory_mib = (int64_t) (node.memory / 1024);
    ret->disk_gib = (int64_t) (info.capacity >> 30);
    ret->disk_available_gib = (int64_t) (info.available >> 30);
    return 0;
}

/* The volume, or NULL with libvirt's error code and message (taken
 * before another call resets them). */
static virStorageVolPtr vol_lookup(virConnectPtr conn, const char *pool, const char *name,
                                   virStoragePoolPtr *ret_pool, int *ret_code, char **ret_msg)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(conn, pool);
    virStorageVolPtr v = p ? virStorageVolLookupByName(p, name) : NULL;
    *ret_code = v ? 0 : virGetLastErrorCode();
    *ret_msg = v ? NULL : hv_error_message();
    if (ret_pool)
        *ret_pool = p;
    else if (p)
        virStoragePoolFree(p);
    return v;
}

bool hv_volume_exists(virConnectPtr conn, const char *pool, const char *name)
{
    int code;
    _cleanup_free_ char *msg = NULL;
    virStorageVolPtr v = vol_lookup(conn, pool, name, NULL, &code, &msg);
    if (v)
        virStorageVolFree(v);
    return v != NULL;
}

int hv_volume_ensure(virConnectPtr conn, const char *pool, const char *name, int64_t size_mib,
                     const char *image, char **ret_backing, char **ret_error)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(conn, pool);
    if (!p)
        return fail(ret_error, "storage pool '%s'", pool);
    int r = 0;
    char *backing = NULL, *backing_format = NULL;
    uint64_t capacity = (uint64_t) size_mib << 20;
    virStorageVolPtr v = virStorageVolLookupByName(p, name);
    if (v)
        goto done;       /* made before a restart: the journal said it was next */
    /* The image, when the pool has it, becomes the backing file. */
    if (image && *image) {
        const char *suffixes[] = { "", ".qcow2", ".img", ".raw" };
        for (size_t i = 0; i < YG_ARRAY_SIZE(suffixes) && !backing; i++) {
            _cleanup_free_ char *iname = xasprintf("%s%s", image, suffixes[i]);
            virStorageVolPtr img = virStorageVolLookupByName(p, iname);
            if (!img)
                continue;
            virStorageVolInfo vi;
            char *path = virStorageVolGetPath(img);
            if (path && virStorageVolGetInfo(img, &vi) == 0) {
                backing = xstrdup(path);
                backing_format = xstrdup(i == 1 || i == 0 ? "qcow2" : "raw");
                if (vi.capacity > capacity)
                    capacity = vi.capacity;
            }
            free(path);
            virStorageVolFree(img);
        }
    }
    {
        _cleanup_free_ char *xml = domain_xml_volume(name, capacity, backing, backing_format);
        v = virStorageVolCreateXML(p, xml, 0);
        if (!v && backing) {
            /* A raw image named like qcow2, or the other way round: try the other. */
            char *other = xstrdup(streq(backing_format, "qcow2") ? "raw" : "qcow2");
            free(backing_format);
            backing_format = other;
            _cleanup_free_ char *xml2 = domain_xml_volume(name, capacity, backing, backing_format);
            v = virStorageVolCreateXML(p, xml2, 0);
        }
        if (!v)
            r = fail(ret_error, "cannot create volume '%s' in storage pool '%s'", name, pool);
    }
done:
    if (v)
        virStorageVolFree(v);
    virStoragePoolFree(p);
    if (r == 0 && ret_backing)
        *ret_backing = steal_pointer(&backing);
    free(backing);
    free(backing_format);
    return r;
}

int hv_volume_wipe(virConnectPtr conn, const char *pool, const char *name, char **ret_method,
                   char **ret_error)
{
    int code;
    _cleanup_free_ char *msg = NULL;
    virStorageVolPtr v = vol_lookup(conn, pool, name, NULL, &code, &msg);
    if (!v) {
        if (code == VIR_ERR_NO_STORAGE_VOL)
            return -ENOENT;
        *ret_error = xasprintf("volume '%s' in storage pool '%s': %s", name, pool, msg);
        return -EIO;
    }
    int r = 0;
    if (virStorageVolWipePattern(v, VIR_STORAGE_VOL_WIPE_ALG_ZERO, 0) == 0) {
        *ret_method = xstrdup("zero");
    } else if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT && virStorageVolWipe(v, 0) == 0) {
        *ret_method = xstrdup("default");
    } else if (virGetLastErrorCode() == VIR_ERR_NO_SUPPORT) {
        _cleanup_free_ char *why = hv_error_message();
        *ret_method = xasprintf("none: %s", why);
    } else {
        r = fail(ret_error, "cannot wipe volume '%s' in storage pool '%s'", name, pool);
    }
    virStorageVolFree(v);
    return r;
}

int hv_volume_delete(virConnectPtr conn, const char *pool, const char *name, char **ret_error)
{
    virStoragePoolPtr p = NULL;
    int code;
    _cleanup_free_ char *msg = NULL;
    virStorageVolPtr v = vol_lookup(conn, pool, name, &p, &code, &msg);
    if (!v) {
        if (p)
            virStoragePoolFree(p);
        if (code == VIR_ERR_NO_STORAGE_VOL)
            return 0;
        *ret_error = xasprintf("volume '%s' in storage pool '%s': %s", name, pool, msg);
        return -EIO;
    }
    int r = 0;
    if (virStorageVolDelete(v, 0) < 0)
        r = fail(ret_error, "cannot delete volume '%s' from storage pool '%s'", name, pool);
    virStorageVolFree(v);
    virStoragePoolFree(p);
    return r;
}

bool hv_domain_exists(virConnectPtr conn, const char *name)
{
    virDomainPtr d = virDomainLookupByName(conn, name);
    if (d)
        virDomainFree(d);
    return d != NULL;
}

int hv_domain_define(virConnectPtr conn, const char *name, const char *xml, char **ret_error)
{
    virDomainPtr d = virDomainLookupByName(conn, name);
    if (!d)
        d = virDomainDefineXML(conn, xml);
    if (!d)
        return fail(ret_error, "cannot define domain '%s'", name);
    virDomainFree(d);
    return 0;
}

static virDomainPtr dom_lookup(virConnectPtr conn, const char *name, char **ret_error, int *ret_r)
{
    virDomainPtr d = virDomainLookupByName(conn, name);
    if (!d)
        *ret_r = virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? -ENOENT
                 : fail(ret_error, "domain '%s'", name);
    return d;
}

int hv_domain_state(virConnectPtr conn, const char *name, enum hv_domstate *ret, char **ret_error)
{
    int r = 0, state, reason;
    virDomainPtr d = dom_lookup(conn, name, ret_error, &r);
    if (!d)
        return r;
    if (virDomainGetState(d, &state, &reason, 0) < 0)
        r = fail(ret_error, "cannot read the state of domain '%s'", name);
    else
        *ret = map_state(state);
    virDomainFree(d);
    return r;
}

int hv_domain_start(virConnectPtr conn, const char *name, char **ret_error)
{
    int r = 0;
    virDomainPtr d = dom_lookup(conn, name, ret_error, &r);
    if (!d)
        return r == -ENOENT ? fail(ret_error, "domain '%s'", name) : r;
    int active = virDomainIsActive(d);
    if (active < 0)
        r = fail(ret_error, "domain '%s'", name);
    else if (!active && virDomainCreate(d) < 0)
        r = fail(ret_error, "cannot start domain '%s'", name);
    virDomainFree(d);
    return r;
}

static uint64_t event_gen(void)
{
    pthread_mutex_lock(&event_lock);
    uint64_t g = event_generation;
    pthread_mutex_unlock(&event_lock);
    return g;
}

/* Wait until a lifecycle event arrives after generation GEN, or MS pass. */
static void wait_event(uint64_t gen, int ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += (long) ms * 1000000L;
    deadline.tv_sec += deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&event_lock);
    while (event_generation == gen &&
           pthread_cond_timedwait(&event_cond, &event_lock, &deadline) == 0)
        ;
    pthread_mutex_unlock(&event_lock);
}

uint64_t hv_event_generation(void)
{
    return event_gen();
}

void hv_wait_event(uint64_t gen, int ms)
{
    wait_event(gen, ms);
}

#define FORCE_OFF_THREADS 4

struct force_off {
    virDomainPtr *d;
    const char *const *names;
    size_t n;
    bool *forced;
    char **errors;
    int *results;
    atomic_size_t next;
};

static void *force_off_main(void *arg);

/* A helper's own thread, named for top -H (the host's thread also runs
 * force_off_main() itself). */
static void *force_off_thread(void *arg)
{
    thread_set_name("yg-force-off");
    return force_off_main(arg);
}

static void *force_off_main(void *arg)
{
    struct force_off *f = arg;
    for (size_t i; (i = atomic_fetch_add(&f->next, 1)) < f->n;) {
        if (!f->d[i] || virDomainIsActive(f->d[i]) != 1)
            continue;
        f->forced[i] = true;
        if (virDomainDestroy(f->d[i]) < 0 && virDomainIsActive(f->d[i]) == 1)
            f->results[i] = fail(&f->errors[i], "cannot force domain '%s' off", f->names[i]);
    }
    return NULL;
}

int hv_domains_shutdown(virConnectPtr conn, const char *const *names, size_t n, int timeout_ms,
                        bool *ret_forced, char **ret_errors)
{
    virDomainPtr *d = xcalloc(n ? n : 1, sizeof *d);
    int worst = 0;
    uint64_t gen = event_gen();
    for (size_t i = 0; i < n; i++) {
        ret_forced[i] = false;
        ret_errors[i] = NULL;
        int r = 0;
        d[i] = dom_lookup(conn, names[i], &ret_errors[i], &r);
        if (!d[i]) {
            if (r != -ENOENT)
                worst = r;
            continue;           /* gone: nothing to shut down */
        }
        if (virDomainIsActive(d[i]) == 1 && virDomainShutdown(d[i]) < 0) {
            /* No ACPI (or no agent): it is forced off below. */
        }
    }
    uint64_t start = monotonic_usec();
    for (;;) {
        bool all_off = true;
        for (size_t i = 0; i < n; i++)
            if (d[i] && virDomainIsActive(d[i]) == 1)
                all_off = false;
        if (all_off || (int64_t) (monotonic_usec() - start) >= (int64_t) timeout_ms * 1000)
            break;
        wait_event(gen, SHUTDOWN_POLL_MS);
        gen = event_gen();
    }
    /* The guests that did not answer ACPI in time are forced off, side by
     * side: a destroy can take seconds (QEMU's exit), and the batch's
     * domains do not wait for each other. */
    struct force_off f = { .d = d, .names = names, .n = n, .forced = ret_forced, .errors = ret_errors,
                           .results = xcalloc(n ? n : 1, sizeof *f.results) };
    size_t n_on = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i] && virDomainIsActive(d[i]) == 1)
            n_on++;
    pthread_t threads[FORCE_OFF_THREADS];
    size_t started = 0;
    for (size_t k = 1; k < FORCE_OFF_THREADS && k < n_on; k++)
        if (pthread_create(&threads[started], NULL, force_off_thread, &f) == 0)
            started++;
    force_off_main(&f);
    for (size_t k = 0; k < started; k++)
        pthread_join(threads[k], NULL);
    for (size_t i = 0; i < n; i++) {
        if (f.results[i] < 0)
            worst = f.results[i];
        if (d[i])
            virDomainFree(d[i]);
    }
    free(f.results);
    free(d);
    return worst;
}

int hv_domain_shutdown(virConnectPtr conn, const char *name, int timeout_ms, bool *ret_forced,
                       char **ret_error)
{
    const char *names[1] = { name };
    char *errors[1] = { NULL };
    int r = hv_domains_shutdown(conn, names, 1, timeout_ms, ret_forced, errors);
    if (errors[0] && r < 0)
        *ret_error = errors[0];
    else
        free(errors[0]);
    return r;
}

int hv_domain_reboot(virConnectPtr conn, const char *name, char **ret_error)
{
    int r = 0;
    virDomainPtr d = dom_lookup(conn, name, ret_error, &r);
    if (!d)
        return r == -ENOENT ? fail(ret_error, "domain '%s'", name) : r;
    if (virDomainReboot(d, 0) < 0 && virDomainReset(d, 0) < 0)
        r = fail(ret_error, "cannot reboot domain '%s'", name);
    virDomainFree(d);
    return r;
}

int hv_domain_remove(virConnectPtr conn, const char *name, char **ret_error)
{
    int r = 0;
    virDomainPtr d = dom_lookup(conn, name, ret_error, &r);
    if (!d)
        return r == -ENOENT ? 0 : r;
    if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0 && virDomainIsActive(d) == 1)
        r = fail(ret_error, "cannot force domain '%s' off", name);
    if (r == 0 && virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                            VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                            VIR_DOMAIN_UNDEFINE_NVRAM) < 0 &&
        virDomainUndefine(d) < 0)
        r = fail(ret_error, "cannot undefine domain '%s'", name);
    virDomainFree(d);
    return r;
}

int hv_list_domains(virConnectPtr conn, struct hv_domain_info **ret, size_t *ret_n, char **ret_error)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0)
        return fail(ret_error, "cannot list the domains");
    struct hv_domain_info *out = xcalloc((size_t) n + 1, sizeof *out);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        int state, reason;
        const char *name = virDomainGetName(doms[i]);
        if (name && virDomainGetState(doms[i], &state, &reason, 0) == 0) {
            out[k].name = xstrdup(name);
            out[k].state = map_state(state);
            k++;
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    *ret = out;
    *ret_n = k;
    return 0;
}

void hv_domain_infos_free(struct hv_domain_info *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++)
        free(d[i].name);
    free(d);
}

/* ---- the event loop and the host workers ---- */

struct hv_task {
    hv_task_fn fn;
    void *ctx;
    struct hv_task *next;
};

struct hv_host {
    struct hv *hv;
    char *name;
    pthread_t thread;
    /* under hv->lock */
    char *uri, *pool;
    bool reconnect;             /* URI or pool changed */
    bool refresh;               /* read the capacity soon */
    bool lost;                  /* the close callback fired */
    bool stop;
    struct hv_task *head, *tail;
    size_t queued;
    pthread_cond_t wake;
    _Atomic bool up;
    /* worker-only */
    virConnectPtr conn;
    int event_id;
    uint64_t backoff_usec, next_try_usec, next_capacity_usec;
    struct hv_host *next;
};

struct hv {
    struct hv_callbacks cb;
    pthread_mutex_t lock;
    struct hv_host *hosts;
    pthread_t loop_thread;
    _Atomic bool loop_stop;
    int wake_timer;
};

static void *event_loop_main(void *arg)
{
    struct hv *hv = arg;
    thread_set_name("yg-events");
    while (!atomic_load(&hv->loop_stop))
        if (virEventRunDefaultImpl() < 0) {
            _cleanup_free_ char *m = hv_error_message();
            log_warn(LOG_DOMAIN, "libvirt event loop: %s", m);
        }
    return NULL;
}

static void wake_timer_cb(int timer, void *opaque) { }

static void register_impl(void)
{
    if (virEventRegisterDefaultImpl() < 0)
        log_err(LOG_DOMAIN, "cannot register libvirt's default event loop");
}

int hv_start(const struct hv_callbacks *cb, struct hv **ret)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    hv_silence_errors();
    if (virInitialize() < 0)
        return -EIO;
    pthread_once(&once, register_impl);
    struct hv *hv = xcalloc(1, sizeof *hv);
    hv->cb = *cb;
    pthread_mutex_init(&hv->lock, NULL);
    /* A timer that fires rarely keeps the loop turning, so that it notices
     * loop_stop within a second. */
    hv->wake_timer = virEventAddTimeout(1000, wake_timer_cb, NULL, NULL);
    if (pthread_create(&hv->loop_thread, NULL, event_loop_main, hv) != 0) {
        free(hv);
        return -errno;
    }
    *ret = hv;
    return 0;
}

static void lifecycle_cb(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    struct hv_host *h = opaque;
    enum hv_domstate state;
    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
    case VIR_DOMAIN_EVENT_RESUMED:
        state = HV_DOM_RUNNING;
        break;
    case VIR_DOMAIN_EVENT_STOPPED:
        state = detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? HV_DOM_CRASHED : HV_DOM_SHUTOFF;
        break;
    case VIR_DOMAIN_EVENT_SUSPENDED:
        state = HV_DOM_PAUSED;
        break;
    case VIR_DOMAIN_EVENT_CRASHED:
        state = HV_DOM_CRASHED;
        break;
    default:
        state = HV_DOM_MAX;
    }
    pthread_mutex_lock(&event_lock);
    event_generation++;
    pthread_cond_broadcast(&event_cond);
    pthread_mutex_unlock(&event_lock);
    const char *name = virDomainGetName(dom);
    if (state != HV_DOM_MAX && name && h->hv->cb.domain_event)
        h->hv->cb.domain_event(h->hv->cb.opaque, h->name, name, state);
}

static void close_cb(virConnectPtr conn, int reason, void *opaque)
{
    struct hv_host *h = opaque;
    pthread_mutex_lock(&h->hv->lock);
    h->lost = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->hv->lock);
}

static void host_disconnect(struct hv_host *h)
{
    if (!h->conn)
        return;
    if (h->event_id >= 0)
        virConnectDomainEventDeregisterAny(h->conn, h->event_id);
    virConnectUnregisterCloseCallback(h->conn, close_cb);
    virConnectClose(h->conn);
    h->conn = NULL;
    h->event_id = -1;
    atomic_store(&h->up, false);
}

static void report(struct hv_host *h, bool up, const struct hv_capacity *cap, const char *error)
{
    if (h->hv->cb.host_status)
        h->hv->cb.host_status(h->hv->cb.opaque, h->name, up, cap, error);
}

/* Connect (worker thread, lock not held).  Reports the outcome. */
static void host_connect(struct hv_host *h, const char *uri, const char *pool)
{
    _cleanup_free_ char *err = NULL;
    struct hv_capacity cap;
    virConnectPtr conn = uri ? hv_open(uri, &err) : NULL;
    if (!uri)
        err = xstrdup("the host has no libvirt URI");
    if (conn && hv_capacity_get(conn, pool, &cap, &err) < 0) {
        virConnectClose(conn);
        conn = NULL;
    }
    if (!conn) {
        h->backoff_usec = h->backoff_usec ? h->backoff_usec * 2 : BACKOFF_MIN_USEC;
        if (h->backoff_usec > BACKOFF_MAX_USEC)
            h->backoff_usec = BACKOFF_MAX_USEC;
        h->next_try_usec = monotonic_usec() + h->backoff_usec;
        log_warn(LOG_DOMAIN, "host '%s' is down: %s (next try in %.1f s)", h->name, err,
                 (double) h->backoff_usec / 1e6);
        report(h, false, NULL, err);
        return;
    }
    /* Keepalive: a host that stops answering is noticed in seconds, and
     * the close callback tells this worker. */
    virConnectSetKeepAlive(conn, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT);
    virConnectRegisterCloseCallback(conn, close_cb, h, NULL);
    h->event_id = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                   VIR_DOMAIN_EVENT_CALLBACK(lifecycle_cb), h, NULL);
    if (h->event_id < 0) {
        _cleanup_free_ char *m = hv_error_message();
        log_warn(LOG_DOMAIN, "host '%s': no lifecycle events (%s); the reconcile keeps states right",
                 h->name, m);
    }
    h->conn = conn;
    h->backoff_usec = 0;
    h->next_capacity_usec = monotonic_usec() + CAPACITY_EVERY_USEC;
    atomic_store(&h->up, true);
    log_info(LOG_DOMAIN, "host '%s' is up (%s): %lld CPUs, %lld MiB, pool '%s' %lld GiB",
             h->name, uri, (long long) cap.cpus, (long long) cap.memory_mib, pool,
             (long long) cap.disk_gib);
    report(h, true, &cap, NULL);
}

static void *host_main(void *arg)
{
    struct hv_host *h = arg;
    struct hv *hv = h->hv;
    thread_set_name("yg-hv:%s", h->name);
    pthread_mutex_lock(&hv->lock);
    for (;;) {
        if (h->stop)
            break;
        if (h->lost || h->reconnect) {
            bool lost = h->lost;
            h->lost = h->reconnect = false;
            pthread_mutex_unlock(&hv->lock);
            if (lost && h->conn) {
                log_warn(LOG_DOMAIN, "host '%s': the libvirt connection closed", h->name);
                report(h, false, NULL, "the libvirt connection closed (keepalive or host failure)");
            }
            host_disconnect(h);
            h->next_try_usec = 0;
            pthread_mutex_lock(&hv->lock);
            continue;
        }
        uint64_t now = monotonic_usec();
        if (!h->conn && now >= h->next_try_usec) {
            _cleanup_free_ char *uri = h->uri ? xstrdup(h->uri) : NULL;
            _cleanup_free_ char *pool = xstrdup(h->pool ? h->pool : "default");
            pthread_mutex_unlock(&hv->lock);
            host_connect(h, uri, pool);
            pthread_mutex_lock(&hv->lock);
            continue;
        }
        if (h->conn && (h->refresh || now >= h->next_capacity_usec)) {
            h->refresh = false;
            _cleanup_free_ char *pool = xstrdup(h->pool ? h->pool : "default");
            pthread_mutex_unlock(&hv->lock);
            struct hv_capacity cap;
            _cleanup_free_ char *err = NULL;
            h->next_capacity_usec = monotonic_usec() + CAPACITY_EVERY_USEC;
            if (hv_capacity_get(h->conn, pool, &cap, &err) == 0)
                report(h, true, &cap, NULL);
            else if (virConnectIsAlive(h->conn) != 1)
                h->lost = true;
            else
                log_warn(LOG_DOMAIN, "host '%s': %s", h->name, err);
            pthread_mutex_lock(&hv->lock);
            continue;
        }
        if (h->head) {
            struct hv_task *t = h->head;
            h->head = t->next;
            if (!h->head)
                h->tail = NULL;
            h->queued--;
            _cleanup_free_ char *pool = xstrdup(h->pool ? h->pool : "default");
            pthread_mutex_unlock(&hv->lock);
            t->fn(h->conn, h->name, pool, t->ctx);
            free(t);
            /* A failed call on a dead connection: notice now, not at the
             * next keepalive. */
            bool dead = h->conn && virConnectIsAlive(h->conn) != 1;
            pthread_mutex_lock(&hv->lock);
            if (dead)
                h->lost = true;
            continue;
        }
        uint64_t until = h->conn ? h->next_capacity_usec : h->next_try_usec;
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        uint64_t wait = until > now ? until - now : 0;
        deadline.tv_sec += (time_t) (wait / 1000000);
        deadline.tv_nsec += (long) (wait % 1000000) * 1000;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->wake, &hv->lock, &deadline);
    }
    /* Tasks still queued finish without a connection. */
    while (h->head) {
        struct hv_task *t = h->head;
        h->head = t->next;
        pthread_mutex_unlock(&hv->lock);
        t->fn(NULL, h->name, h->pool, t->ctx);
        free(t);
        pthread_mutex_lock(&hv->lock);
    }
    pthread_mutex_unlock(&hv->lock);
    host_disconnect(h);
    return NULL;
}

static struct hv_host *find_host(struct hv *hv, const char *name)
{
    for (struct hv_host *h = hv->hosts; h; h = h->next)
        if (streq(h->name, name))
            return h;
    return NULL;
}

void hv_host_set(struct hv *hv, const char *name, const char *uri, const char *pool)
{
    pthread_mutex_lock(&hv->lock);
    struct hv_host *h = find_host(hv, name);
    if (h) {
        if (!streq_ptr(h->uri, uri) || !streq_ptr(h->pool, pool)) {
            free(h->uri);
            free(h->pool);
            h->uri = uri ? xstrdup(uri) : NULL;
            h->pool = pool ? xstrdup(pool) : NULL;
            h->reconnect = true;
        } else {
            h->refresh = true;
        }
        pthread_cond_signal(&h->wake);
        pthread_mutex_unlock(&hv->lock);
        return;
    }
    h = xcalloc(1, sizeof *h);
    h->hv = hv;
    h->name = xstrdup(name);
    h->uri = uri ? xstrdup(uri) : NULL;
    h->pool = pool ? xstrdup(pool) : NULL;
    h->event_id = -1;
    pthread_cond_init(&h->wake, NULL);
    if (pthread_create(&h->thread, NULL, host_main, h) != 0) {
        log_err(LOG_DOMAIN, "cannot start a worker thread for host '%s'", name);
        pthread_cond_destroy(&h->wake);
        free(h->name);
        free(h->uri);
        free(h->pool);
        free(h);
        pthread_mutex_unlock(&hv->lock);
        return;
    }
    h->next = hv->hosts;
    hv->hosts = h;
    pthread_mutex_unlock(&hv->lock);
}

bool hv_host_up(struct hv *hv, const char *name)
{
    pthread_mutex_lock(&hv->lock);
    struct hv_host *h = find_host(hv, name);
    bool up = h && atomic_load(&h->up);
    pthread_mutex_unlock(&hv->lock);
    return up;
}

void hv_host_refresh(struct hv *hv, const char *name)
{
    pthread_mutex_lock(&hv->lock);
    struct hv_host *h = find_host(hv, name);
    if (h) {
        h->refresh = true;
        pthread_cond_signal(&h->wake);
    }
    pthread_mutex_unlock(&hv->lock);
}

int hv_submit(struct hv *hv, const char *host, hv_task_fn fn, void *ctx)
{
    pthread_mutex_lock(&hv->lock);
    struct hv_host *h = find_host(hv, host);
    if (!h || h->stop) {
        pthread_mutex_unlock(&hv->lock);
        return -ENOENT;
    }
    struct hv_task *t = xcalloc(1, sizeof *t);
    t->fn = fn;
    t->ctx = ctx;
    if (h->tail)
        h->tail->next = t;
    else
        h->head = t;
    h->tail = t;
    h->queued++;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&hv->lock);
    return 0;
}

size_t hv_queue_length(struct hv *hv, const char *host)
{
    pthread_mutex_lock(&hv->lock);
    struct hv_host *h = find_host(hv, host);
    size_t n = h ? h->queued : 0;
    pthread_mutex_unlock(&hv->lock);
    return n;
}

void hv_stop(struct hv *hv)
{
    if (!hv)
        return;
    pthread_mutex_lock(&hv->lock);
    for (struct hv_host *h = hv->hosts; h; h = h->next) {
        h->stop = true;
        pthread_cond_signal(&h->wake);
    }
    pthread_mutex_unlock(&hv->lock);
    for (struct hv_host *h = hv->hosts, *next; h; h = next) {
        next = h->next;
        pthread_join(h->thread, NULL);
        pthread_cond_destroy(&h->wake);
        free(h->name);
        free(h->uri);
        free(h->pool);
        free(h);
    }
    hv->hosts = NULL;
    atomic_store(&hv->loop_stop, true);
    pthread_join(hv->loop_thread, NULL);
    if (hv->wake_timer >= 0)
        virEventRemoveTimeout(hv->wake_timer);
    pthread_mutex_destroy(&hv->lock);
    free(hv);
}

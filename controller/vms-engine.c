/* The VM engine: one thread that places approved requests, hands each
 * host's journalled steps to that host's worker (hypervisor.c), runs the
 * lease sweep, and starts the periodic reconcile.  libvirt lifecycle
 * events and host up/down reports come back through the hypervisor
 * layer's callbacks and become store jobs. */
#include <config.h>
#include "vms.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "auth.h"
#include "domain-xml.h"
#include "hosts.h"
#include "hypervisor.h"
#include "log.h"
#include "store.h"
#include "util.h"
#include "vms-priv.h"

#define LOG_DOMAIN "vms"
#define BATCH_MAX 64
#define PLACE_EVERY_USEC (10 * 1000000ull)
#define LEASE_EVERY_USEC (5 * 1000000ull)
#define STEP_RETRY_SECONDS 30
#define TICK_MS 1000

struct vms_engine {
    struct store *store;
    struct vms_config cfg;
    struct hv *hv;
    char instance[32];
    const char *kill_after_step;        /* test-only hook */

    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop, kicked, place_dirty, reconcile_due;
    int64_t *inflight;
    size_t n_inflight, cap_inflight;
    char **hosts;                       /* known to the hypervisor layer */
    size_t n_hosts;
    /* Hosts with a batch of steps under way: the next batch waits and
     * gathers everything journalled meanwhile (one shared ACPI wait). */
    char **busy;
    size_t n_busy;

    /* reconcile */
    pthread_cond_t reconcile_cond;
    int reconcile_outstanding;
    json_t *drift;                      /* {host: {"checked_at","items":[…]}} */
    double last_reconcile_ms;
    uint64_t reconcile_started_usec;
};

static _Atomic(struct vms_engine *) the_engine;

void vms_engine_kick(void)
{
    struct vms_engine *e = atomic_load(&the_engine);
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->kicked = true;
    e->place_dirty = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

static bool inflight_has(struct vms_engine *e, int64_t id)
{
    for (size_t i = 0; i < e->n_inflight; i++)
        if (e->inflight[i] == id)
            return true;
    return false;
}

static void inflight_add(struct vms_engine *e, int64_t id)
{
    if (e->n_inflight == e->cap_inflight) {
        e->cap_inflight = e->cap_inflight ? 2 * e->cap_inflight : 64;
        e->inflight = xrealloc(e->inflight, e->cap_inflight * sizeof *e->inflight);
    }
    e->inflight[e->n_inflight++] = id;
}

static void inflight_remove(struct vms_engine *e, int64_t id)
{
    for (size_t i = 0; i < e->n_inflight; i++)
        if (e->inflight[i] == id) {
            e->inflight[i] = e->inflight[--e->n_inflight];
            return;
        }
}

static bool host_busy(struct vms_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_busy; i++)
        if (streq(e->busy[i], name))
            return true;
    return false;
}

static void host_set_busy(struct vms_engine *e, const char *name, bool busy)
{
    for (size_t i = 0; i < e->n_busy; i++)
        if (streq(e->busy[i], name)) {
            if (!busy) {
                free(e->busy[i]);
                e->busy[i] = e->busy[--e->n_busy];
            }
            return;
        }
    if (busy) {
        e->busy = xrealloc(e->busy, (e->n_busy + 1) * sizeof *e->busy);
        e->busy[e->n_busy++] = xstrdup(name);
    }
}

static void engine_add_host(struct vms_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_hosts; i++)
        if (streq(e->hosts[i], name))
            return;
    e->hosts = xrealloc(e->hosts, (e->n_hosts + 1) * sizeof *e->hosts);
    e->hosts[e->n_hosts++] = xstrdup(name);
}

void vms_engine_host_changed(const char *name, const char *uri, const char *pool)
{
    struct vms_engine *e = atomic_load(&the_engine);
    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    engine_add_host(e, name);
    e->place_dirty = true;
    e->kicked = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    hv_host_set(e->hv, name, uri, pool);
}

/* ---- one batch of journalled steps on one host ---- */

struct step_item {
    int64_t id;
    char step[32];
    bool active;            /* still has a step to run in this task */
    bool host_down, skipped;
    bool forced;
    char *error;            /* libvirt's message */
    char failed_call[32];   /* of an intent of several calls: the one that failed */
    char *detail;           /* the wipe method */
    /* The VM as dispatch() read it with the step (has_known), kept up to
     * date by advance_items(): a step's outcome is written without reading
     * the row again, guarded by the step (vms_change_known()). */
    bool has_known;
    enum vm_state state;
    int64_t request_id;
};

struct vm_detail {
    char state[24], step[32];
    char *domain, *uuid, *volume, *mac, *image, *ipv4, *ipv6, *department, *request, *name, *bridge;
    int vcpus;
    int64_t memory_mib, disk_gib, request_id;
};

struct step_batch {
    struct vms_engine *e;
    char *host;
    size_t n;
    struct step_item *items;
    /* What the steps need, read by dispatch() in the same read as the
     * journal (loaded[i]: items[i] was found). */
    struct vm_detail *details;
    bool *loaded;
};

static void vm_detail_free(struct vm_detail *d)
{
    free(d->domain); free(d->uuid); free(d->volume); free(d->mac); free(d->image); free(d->ipv4);
    free(d->ipv6); free(d->department); free(d->request); free(d->name); free(d->bridge);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : xstrdup(store_column_text(st, i));
}

/* The batch's VM ids as a JSON array, for json_each(). */
static char *batch_ids_json(const struct step_batch *b)
{
    struct strbuf ids;
    strbuf_init(&ids);
    strbuf_puts(&ids, "[");
    for (size_t i = 0; i < b->n; i++)
        strbuf_printf(&ids, "%s%" PRId64, i ? "," : "", b->items[i].id);
    strbuf_puts(&ids, "]");
    return strbuf_steal(&ids);
}

/* The details of a batch's VMs, in one query.  LOADED[i] for the VMs
 * found.  dispatch() calls it on its own reader, in the read that found
 * the batch's journal entries: the pages are at hand (a host's thread
 * had to read them again after every commit). */
static int vm_details_load(struct store *store, const struct step_batch *b, struct vm_detail *details,
                           bool *loaded)
{
    struct store_conn *conn = store_reader(store);
    if (!conn)
        return -EIO;
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT v.state, v.step, v.domain_name, v.domain_uuid, v.volume, v.mac, v.vcpus, v.memory_mib, "
        "       v.disk_gib, v.image, v.ipv4, v.ipv6, v.request_id, d.name, r.name, v.name, s.interface, v.id "
        "FROM vms v JOIN departments d ON d.id = v.department_id JOIN requests r ON r.id = v.request_id "
        "LEFT JOIN segments s ON s.id = v.segment_id "
        "WHERE v.id IN (SELECT value FROM json_each(?1))");
    if (!st)
        return -EIO;
    _cleanup_free_ char *text = batch_ids_json(b);
    store_bind_text(st, 1, text);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 17);
        size_t i = 0;
        while (i < b->n && (b->items[i].id != id || loaded[i]))
            i++;
        if (i == b->n)
            continue;
        struct vm_detail *d = &details[i];
        memset(d, 0, sizeof *d);
        snprintf(d->state, sizeof d->state, "%s", store_column_text(st, 0));
        snprintf(d->step, sizeof d->step, "%s", store_column_text(st, 1));
        d->domain = col_dup(st, 2);
        d->uuid = col_dup(st, 3);
        d->volume = col_dup(st, 4);
        d->mac = col_dup(st, 5);
        d->vcpus = sqlite3_column_int(st, 6);
        d->memory_mib = sqlite3_column_int64(st, 7);
        d->disk_gib = sqlite3_column_int64(st, 8);
        d->image = col_dup(st, 9);
        d->ipv4 = col_dup(st, 10);
        d->ipv6 = col_dup(st, 11);
        d->request_id = sqlite3_column_int64(st, 12);
        d->department = col_dup(st, 13);
        d->request = col_dup(st, 14);
        d->name = col_dup(st, 15);
        d->bridge = col_dup(st, 16);
        loaded[i] = true;
    }
    sqlite3_reset(st);
    return 0;
}

/* A start, stop or reboot can be taken over by a decommission between
 * dispatch() and the batch's first round (its step becomes 'shutdown'):
 * such VMs are skipped.  No other step is ever replaced while it is under
 * way, so batches without these need no second read. */
static void recheck_takeovers(struct store *store, struct step_batch *b)
{
    bool any = false;
    for (size_t i = 0; i < b->n && !any; i++)
        any = streq(b->items[i].step, "start") || streq(b->items[i].step, "stop") ||
              streq(b->items[i].step, "reboot");
    if (!any)
        return;
    struct store_conn *conn = store_reader(store);
    sqlite3_stmt *st = conn ? store_stmt(conn,
        "SELECT id, step FROM vms WHERE id IN (SELECT value FROM json_each(?1))") : NULL;
    if (!st)
        return;
    _cleanup_free_ char *text = batch_ids_json(b);
    store_bind_text(st, 1, text);
    bool *seen = xcalloc(b->n, sizeof *seen);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        for (size_t i = 0; i < b->n; i++)
            if (b->items[i].id == id) {
                seen[i] = streq(store_column_text(st, 1), b->items[i].step);
                break;
            }
    }
    sqlite3_reset(st);
    for (size_t i = 0; i < b->n; i++)
        if (!seen[i])
            b->items[i].skipped = true;
    free(seen);
}

static bool is_shutdown_step(const char *step)
{
    return streq(step, "stop") || streq(step, "shutdown");
}

/* Test-only: die exactly between a libvirt call and the journal's record
 * of it, like a kill -9 would (YUNGUAN_TEST_KILL_AFTER_STEP names the
 * call: a step, or one call of an intent). */
static void kill_hook(struct vms_engine *e, const char *call, int64_t id)
{
    if (e->kill_after_step && streq(e->kill_after_step, call)) {
        log_warn(LOG_DOMAIN, "test hook: killing yunguand after step '%s' of vm %" PRId64, call, id);
        raise(SIGKILL);
    }
}

static int volume_call(struct vms_engine *e, virConnectPtr conn, const char *pool, struct vm_detail *d,
                       char **err)
{
    int64_t mib = e->cfg.volume_size_override_mib > 0 ? e->cfg.volume_size_override_mib : d->disk_gib * 1024;
    return hv_volume_ensure(conn, pool, d->volume, mib, d->image, NULL, err);
}

static int define_call(struct vms_engine *e, virConnectPtr conn, const char *pool, int64_t id,
                       struct vm_detail *d, char **err)
{
    _cleanup_free_ char *title = xasprintf("%s/%s/%s", d->department, d->request, d->name);
    struct domain_spec spec = {
        .type = e->cfg.domain_type, .name = d->domain, .uuid = d->uuid, .title = title,
        .vcpus = d->vcpus, .memory_mib = d->memory_mib, .pool = pool, .volume = d->volume,
        .bridge = d->bridge, .mac = d->mac, .vm_id = id, .request_id = d->request_id,
        .department = d->department, .ipv4 = d->ipv4, .ipv6 = d->ipv6,
    };
    _cleanup_free_ char *xml = domain_xml_build(&spec);
    if (!xml) {
        *err = xstrdup("cannot write the domain XML (libxml2 failed)");
        return -EIO;
    }
    return hv_domain_define(conn, d->domain, xml, err);
}

/* The volume wiped; the method in IT->detail (recorded before the volume
 * is deleted: a volume found gone cannot tell how it was wiped). */
static int wipe_call(virConnectPtr conn, const char *pool, struct step_item *it, struct vm_detail *d,
                     char **err)
{
    int r = hv_volume_wipe(conn, pool, d->volume, &it->detail, err);
    if (r == -ENOENT) {
        it->detail = xstrdup("none: the volume was already gone");
        r = 0;
    }
    return r;
}

/* Steps and intents.  An intent is several libvirt calls journalled as
 * one step: 'build' (volume, define, start) and 'remove' (delete-volume,
 * undefine).  Every call looks first (the volume or domain made, the
 * domain running, the volume or domain already gone), so after a crash
 * anywhere inside an intent running it again from its first call finishes
 * it.  The wipe stays a step of its own: its method is recorded before
 * the volume is deleted (a volume found gone cannot tell how it was
 * wiped).  'volume', 'define', 'start', 'delete-volume' and 'undefine'
 * as steps are still run for journals written before the intents. */
static void run_step(struct vms_engine *e, virConnectPtr conn, const char *pool, struct step_item *it,
                     struct vm_detail *d)
{
    const char *step = it->step;
    const char *call = step;
    char *err = NULL;
    int r = 0;
    if (!d->domain) {
        it->error = xstrdup("the VM has no domain name (it was never placed)");
        return;
    }
    if (streq(step, "build")) {
        call = "volume";
        r = volume_call(e, conn, pool, d, &err);
        if (r == 0) {
            kill_hook(e, call, it->id);
            call = "define";
            r = define_call(e, conn, pool, it->id, d, &err);
        }
        if (r == 0) {
            kill_hook(e, call, it->id);
            call = "start";
            r = hv_domain_start(conn, d->domain, &err);
        }
    } else if (streq(step, "remove")) {
        call = "delete-volume";
        r = hv_volume_delete(conn, pool, d->volume, &err);
        if (r == 0) {
            kill_hook(e, call, it->id);
            call = "undefine";
            r = hv_domain_remove(conn, d->domain, &err);
        }
    } else if (streq(step, "volume")) {
        r = volume_call(e, conn, pool, d, &err);
    } else if (streq(step, "define")) {
        r = define_call(e, conn, pool, it->id, d, &err);
    } else if (streq(step, "start")) {
        r = hv_domain_start(conn, d->domain, &err);
    } else if (streq(step, "reboot")) {
        r = hv_domain_reboot(conn, d->domain, &err);
    } else if (streq(step, "wipe")) {
        r = wipe_call(conn, pool, it, d, &err);
    } else if (streq(step, "delete-volume")) {
        r = hv_volume_delete(conn, pool, d->volume, &err);
    } else if (streq(step, "undefine")) {
        r = hv_domain_remove(conn, d->domain, &err);
    } else if (streq(step, "rollback")) {
        r = hv_domain_remove(conn, d->domain, &err);
        if (r == 0)
            r = hv_volume_delete(conn, pool, d->volume, &err);
    } else {
        err = xasprintf("unknown step '%s'", step);
        r = -EINVAL;
    }
    if (r < 0) {
        it->error = err ? err : xasprintf("step '%s' failed (%s)", call, strerror(-r));
        snprintf(it->failed_call, sizeof it->failed_call, "%s", call);
    } else {
        free(err);
        if (call != step)
            kill_hook(e, call, it->id);     /* the last call of an intent */
    }
}

static int advance_items(struct store_txn *txn, struct step_batch *b);

/* The batch's outcomes and next steps; each request whose VMs changed
 * is checked once (activate, fail, close) at the end of the job. */
static int advance_run(struct store_txn *txn, void *ctx)
{
    vms_defer_request_checks();
    int r = advance_items(txn, ctx);
    int r2 = vms_run_deferred_request_checks(txn, r == 0);
    return r < 0 ? r : r2;
}

static int advance_items(struct store_txn *txn, struct step_batch *b)
{
    struct store_conn *conn = store_txn_conn(txn);
    const struct principal *sys = vms_system_principal();
    for (size_t i = 0; i < b->n; i++) {
        struct step_item *it = &b->items[i];
        if (!it->active)
            continue;
        if (it->host_down || it->skipped) {
            it->active = false;
            continue;
        }
        /* A step that ended well moves its VM from what dispatch() read
         * (the write checks the journal still names the step); failures
         * and the journals of older versions read the row first. */
        static const char *const known_outcomes[] = { "build", "shutdown", "remove", "undefine", "start",
                                                      "stop", "reboot" };
        bool fast = it->has_known && !it->error;
        for (size_t k = 0; fast && k < YG_ARRAY_SIZE(known_outcomes); k++)
            if (streq(it->step, known_outcomes[k]))
                break;
            else if (k + 1 == YG_ARRAY_SIZE(known_outcomes))
                fast = false;
        int state = fast ? (int) it->state : -1;
        int64_t request_id = it->request_id;
        sqlite3_stmt *st;
        if (!fast) {
            st = store_stmt(conn, "SELECT state, step, request_id FROM vms WHERE id = ?1");
            if (!st)
                return -EIO;
            sqlite3_bind_int64(st, 1, it->id);
            bool same = false;
            if (sqlite3_step(st) == SQLITE_ROW) {
                state = vm_state_from_string(store_column_text(st, 0));
                same = streq(store_column_text(st, 1), it->step);
                request_id = sqlite3_column_int64(st, 2);
            }
            sqlite3_reset(st);
            if (!same || state < 0) {
                it->active = false;
                continue;
            }
            it->has_known = true;
            it->state = (enum vm_state) state;
            it->request_id = request_id;
        }
        /* The row as just read: the moves below need not read it again. */
        const struct vm_known known = { (enum vm_state) state, request_id, it->step };
        const char *step = it->step;
        const char *next = NULL;
        bool step_written = false;      /* NEXT already recorded */
        int r = 0;
        if (it->error) {
            it->active = false;
            if (state == VM_PROVISIONING) {
                json_t *extra = json_pack("{s:s}", "failed_step", *it->failed_call ? it->failed_call : step);
                r = vms_change_known(txn, sys, it->id, &known, VM_ERROR, "rollback", it->error, "vm.error",
                                     extra);
                json_decref(extra);
                it->state = VM_ERROR;
                next = "rollback";
                it->active = true;
            } else if (streq(step, "start") || streq(step, "stop") || streq(step, "reboot")) {
                json_t *extra = json_pack("{s:s}", "failed_step", step);
                _cleanup_free_ char *action = xasprintf("vm.%s-failed", step);
                r = vms_change_known(txn, sys, it->id, &known, (enum vm_state) state, NULL, it->error, action,
                                     extra);
                json_decref(extra);
            } else {
                /* Rollback and decommissioning steps are tried again later. */
                st = store_stmt(conn, "UPDATE vms SET error = ?2, step_retry_epoch = ?3 WHERE id = ?1");
                if (!st)
                    return -EIO;
                sqlite3_bind_int64(st, 1, it->id);
                store_bind_text(st, 2, it->error);
                sqlite3_bind_int64(st, 3, (int64_t) time(NULL) + STEP_RETRY_SECONDS);
                r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
                sqlite3_reset(st);
                log_warn(LOG_DOMAIN, "vm %" PRId64 ": step '%s' failed, retrying in %d s: %s",
                         it->id, step, STEP_RETRY_SECONDS, it->error);
            }
        } else if (streq(step, "build")) {
            r = vms_change_known(txn, sys, it->id, &known, VM_RUNNING, NULL, NULL, "vm.running", NULL);
        } else if (streq(step, "remove")) {
            r = vms_finish_decommission(txn, it->id, NULL, step);
        } else if (streq(step, "volume")) {
            next = "define";
        } else if (streq(step, "define")) {
            next = "start";
        } else if (streq(step, "start")) {
            r = vms_change_known(txn, sys, it->id, &known, VM_RUNNING, NULL, NULL,
                           state == VM_PROVISIONING ? "vm.running" : "vm.started", NULL);
        } else if (streq(step, "stop")) {
            json_t *extra = json_pack("{s:b}", "forced", it->forced);
            r = vms_change_known(txn, sys, it->id, &known, VM_STOPPED, NULL, NULL, "vm.stopped", extra);
            json_decref(extra);
        } else if (streq(step, "reboot")) {
            r = vms_change_known(txn, sys, it->id, &known, (enum vm_state) state, NULL, NULL, "vm.rebooted",
                                 NULL);
        } else if (streq(step, "shutdown")) {
            /* Shut down and wiped: the method and 'remove' next, in the
             * same write as the state.  (Without a method, as a journal of
             * before the wipe joined the intent would leave it: 'wipe'.) */
            json_t *extra = json_pack("{s:b, s:s?}", "forced", it->forced, "wipe_method", it->detail);
            next = it->detail ? "remove" : "wipe";
            r = vms_change_wiped(txn, sys, it->id, &known, next, it->detail,
                                 it->forced ? "vm.forced-off" : "vm.shut-down", extra);
            json_decref(extra);
            it->state = VM_DECOMMISSIONING;
            it->active = true;
        } else if (streq(step, "wipe")) {
            /* The method and the next step in one write. */
            char at[32];
            format_utc_now(at);
            st = store_stmt(conn, "UPDATE vms SET wipe_method = ?2, step = 'remove', step_at = ?3, "
                                  "step_retry_epoch = NULL, updated_at = ?3 WHERE id = ?1");
            if (!st)
                return -EIO;
            sqlite3_bind_int64(st, 1, it->id);
            store_bind_text(st, 2, it->detail);
            store_bind_text(st, 3, at);
            r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
            sqlite3_reset(st);
            next = "remove";
            step_written = true;
        } else if (streq(step, "delete-volume")) {
            next = "undefine";
        } else if (streq(step, "undefine")) {
            r = vms_finish_decommission(txn, it->id, NULL, step);
        } else if (streq(step, "rollback")) {
            st = store_stmt(conn, "UPDATE vms SET step = NULL, step_at = NULL WHERE id = ?1");
            if (!st)
                return -EIO;
            sqlite3_bind_int64(st, 1, it->id);
            r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
            sqlite3_reset(st);
        }
        if (r == -ESTALE) {
            /* Taken over since dispatch() read it (a decommission of a VM
             * being started or stopped): the journal's new step is not ours. */
            it->active = false;
            free(it->error);
            it->error = NULL;
            continue;
        }
        if (r < 0)
            return r;
        if (next && !step_written && !streq(step, "shutdown") && !(it->error && state == VM_PROVISIONING)) {
            r = vms_set_step(txn, it->id, next);
            if (r < 0)
                return r;
        }
        if (next) {
            snprintf(it->step, sizeof it->step, "%s", next);
            it->active = true;
        } else {
            it->active = false;
        }
        free(it->error);
        it->error = NULL;
        it->failed_call[0] = '\0';
        free(it->detail);
        it->detail = NULL;
    }
    return 0;
}

/* A batch's libvirt steps run side by side on up to hv_parallel_steps()
 * threads of the host's connection (thread-safe; HV_PARALLEL_STEPS for
 * libvirtd, 1 for the in-process test driver).  The helper threads are made
 * once per batch and run every round of it (build; or wipe, then remove),
 * not made anew for each round. */
struct step_par {
    struct vms_engine *e;
    virConnectPtr conn;
    const char *host, *pool;
    struct step_batch *b;
    struct vm_detail *details;
    bool *loaded;
    atomic_size_t next;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned round;             /* bumped by the batch's thread to start one */
    unsigned joined_at;         /* a new helper's first round is the one after this */
    size_t running;             /* helpers still at work on this round */
    bool quit;
};

static void step_par_round(struct step_par *p)
{
    struct vms_engine *e = p->e;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->b->n)
            break;
        struct step_item *it = &p->b->items[i];
        if (!it->active || !p->loaded[i] || it->skipped)
            continue;
        if (!is_shutdown_step(it->step)) {
            uint64_t t0 = monotonic_usec();
            run_step(e, p->conn, p->pool, it, &p->details[i]);
            log_debug(LOG_DOMAIN, "libvirt call: step '%s' of vm %" PRId64 " on host '%s' took %.1f ms",
                      it->step, it->id, p->host, (double) (monotonic_usec() - t0) / 1000.0);
        } else if (streq(it->step, "shutdown") && !it->error && p->details[i].domain) {
            /* The decommission's intent 'shutdown' is the shutdown (the
             * batch's, done) and the wipe of the volume, whose method is
             * recorded with the intent's outcome, before 'remove'
             * deletes the volume.  Both run again after a crash: the
             * domain is found off, the volume wiped once more. */
            kill_hook(e, "shutdown", it->id);
            char *err = NULL;
            uint64_t t0 = monotonic_usec();
            if (wipe_call(p->conn, p->pool, it, &p->details[i], &err) < 0) {
                it->error = err ? err : xstrdup("the volume could not be wiped");
                snprintf(it->failed_call, sizeof it->failed_call, "wipe");
            } else {
                free(err);
                kill_hook(e, "wipe", it->id);
            }
            log_debug(LOG_DOMAIN, "libvirt call: wipe of vm %" PRId64 " on host '%s' took %.1f ms", it->id,
                      p->host, (double) (monotonic_usec() - t0) / 1000.0);
            if (it->error)
                log_warn(LOG_DOMAIN, "vm %" PRId64 " on host '%s': step 'shutdown' failed (wipe): %s", it->id,
                         p->host, it->error);
            continue;
        }
        if (it->error)
            log_warn(LOG_DOMAIN, "vm %" PRId64 " on host '%s': step '%s' failed: %s", it->id, p->host,
                     it->step, it->error);
        if (!it->error)
            kill_hook(e, it->step, it->id);
    }
}

static void *step_helper_main(void *arg)
{
    struct step_par *p = arg;
    thread_set_name("yg-hv+");
    pthread_mutex_lock(&p->lock);
    /* Not p->round: this thread may start after its first round began. */
    unsigned seen = p->joined_at;
    for (;;) {
        while (p->round == seen && !p->quit)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->quit)
            break;
        seen = p->round;
        pthread_mutex_unlock(&p->lock);
        step_par_round(p);
        pthread_mutex_lock(&p->lock);
        if (--p->running == 0)
            pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* One round: the batch's thread and the N_HELPERS helpers share the items. */
static void step_par_run(struct step_par *p, size_t n_helpers)
{
    atomic_store(&p->next, 0);
    pthread_mutex_lock(&p->lock);
    p->round++;
    p->running = n_helpers;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    step_par_round(p);
    pthread_mutex_lock(&p->lock);
    while (p->running > 0)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static void step_task(virConnectPtr conn, const char *host, const char *pool, void *ctx)
{
    struct step_batch *b = ctx;
    struct vms_engine *e = b->e;
    /* What the steps need (domain, volume, XML inputs) was read with the
     * batch by dispatch(): it is fixed at placement.  A VM whose journal
     * no longer says the step it was dispatched for is skipped
     * (recheck_takeovers).  Later rounds run the step this batch's own
     * advance_run() recorded after checking the journal in the writer's
     * transaction; nothing else sets a step on a VM with one under way
     * (vms_action, the lease sweep and decommissioning refuse, or take
     * over only start/stop/reboot, which have no next step). */
    struct vm_detail *details = b->details;
    bool *loaded = b->loaded;
    const char **names = xcalloc(b->n, sizeof *names);
    size_t *which = xcalloc(b->n, sizeof *which);
    for (size_t i = 0; conn && i < b->n; i++)
        if (!loaded[i] || !streq(details[i].step, b->items[i].step))
            b->items[i].skipped = true;
    if (conn)
        recheck_takeovers(e->store, b);
    struct step_par par = { .e = e, .conn = conn, .host = host, .pool = pool, .b = b,
                            .details = details, .loaded = loaded };
    pthread_mutex_init(&par.lock, NULL);
    pthread_cond_init(&par.cond, NULL);
    pthread_t helpers[HV_PARALLEL_STEPS];
    size_t step_threads = conn ? (size_t) hv_parallel_steps(conn) : 1;
    size_t n_helpers = 0;
    for (;;) {
        bool any = false, other = false, runnable = false;
        /* Shutdowns first, all at once: one shared wait for ACPI. */
        size_t n_shut = 0;
        for (size_t i = 0; i < b->n; i++) {
            struct step_item *it = &b->items[i];
            if (!it->active)
                continue;
            any = true;
            if (!conn) {
                it->host_down = true;
                continue;
            }
            if (it->skipped)
                continue;
            runnable = true;
            if (is_shutdown_step(it->step)) {
                if (details[i].domain) {
                    names[n_shut] = details[i].domain;
                    which[n_shut++] = i;
                }
                if (streq(it->step, "shutdown"))
                    other = true;       /* its wipe runs in the round */
            } else {
                other = true;
            }
        }
        if (!any)
            break;
        if (n_shut) {
            bool *forced = xcalloc(n_shut, sizeof *forced);
            char **errors = xcalloc(n_shut, sizeof *errors);
            uint64_t t0 = monotonic_usec();
            hv_domains_shutdown(conn, names, n_shut, e->cfg.shutdown_timeout_seconds * 1000, forced, errors);
            log_debug(LOG_DOMAIN, "libvirt time: shutdown of %zu domains on host '%s' took %.1f ms", n_shut,
                      host, (double) (monotonic_usec() - t0) / 1000.0);
            for (size_t k = 0; k < n_shut; k++) {
                b->items[which[k]].forced = forced[k];
                b->items[which[k]].error = errors[k];
            }
            free(forced);
            free(errors);
        }
        /* Also for shutdowns: the test hook and the warnings are there. */
        if (runnable) {
            size_t want = b->n < step_threads ? b->n - 1 : step_threads - 1;
            pthread_mutex_lock(&par.lock);
            par.joined_at = par.round;  /* helpers made now join the next round */
            pthread_mutex_unlock(&par.lock);
            while (other && n_helpers < want &&
                   pthread_create(&helpers[n_helpers], NULL, step_helper_main, &par) == 0)
                n_helpers++;
            uint64_t t0 = monotonic_usec();
            /* Every helper made so far takes part in every round (the
             * count the round waits for is theirs). */
            step_par_run(&par, n_helpers);
            log_debug(LOG_DOMAIN, "libvirt time: steps of %zu VMs on host '%s' took %.1f ms (%zu threads)",
                      b->n, host, (double) (monotonic_usec() - t0) / 1000.0, n_helpers + 1);
        }
        int r = store_run(e->store, advance_run, b);
        if (r < 0) {
            log_warn(LOG_DOMAIN, "cannot record the outcome of steps on host '%s': %s", host, strerror(-r));
            break;
        }
    }
    pthread_mutex_lock(&par.lock);
    par.quit = true;
    pthread_cond_broadcast(&par.cond);
    pthread_mutex_unlock(&par.lock);
    for (size_t k = 0; k < n_helpers; k++)
        pthread_join(helpers[k], NULL);
    pthread_mutex_destroy(&par.lock);
    pthread_cond_destroy(&par.cond);
    for (size_t i = 0; i < b->n; i++)
        if (loaded[i])
            vm_detail_free(&details[i]);
    free(details);
    free(loaded);
    free(names);
    free(which);
    pthread_mutex_lock(&e->lock);
    host_set_busy(e, b->host, false);
    for (size_t i = 0; i < b->n; i++) {
        inflight_remove(e, b->items[i].id);
        free(b->items[i].error);
        free(b->items[i].detail);
    }
    e->kicked = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    free(b->items);
    free(b->host);
    free(b);
}

/* Hands one batch to its host's thread, with the details its steps need
 * (read on this reader, in the read that found the batch). */
static void batch_submit(struct vms_engine *e, struct step_batch *b)
{
    b->details = xcalloc(b->n, sizeof *b->details);
    b->loaded = xcalloc(b->n, sizeof *b->loaded);
    if (vm_details_load(e->store, b, b->details, b->loaded) < 0)
        log_warn(LOG_DOMAIN, "cannot read the VMs of a batch on host '%s'", b->host);
    for (size_t i = 0; i < b->n; i++) {
        int state = b->loaded[i] ? vm_state_from_string(b->details[i].state) : -1;
        b->items[i].has_known = state >= 0;
        b->items[i].state = state >= 0 ? (enum vm_state) state : VM_PENDING;
        b->items[i].request_id = b->loaded[i] ? b->details[i].request_id : 0;
    }
    if (hv_submit(e->hv, b->host, step_task, b) < 0) {
        for (size_t i = 0; i < b->n; i++) {
            inflight_remove(e, b->items[i].id);
            if (b->loaded[i])
                vm_detail_free(&b->details[i]);
        }
        free(b->details);
        free(b->loaded);
        free(b->items);
        free(b->host);
        free(b);
    } else {
        host_set_busy(e, b->host, true);
    }
}

/* One batch for each host that is up and has none under way: its VMs
 * whose journal has a step to run, oldest first.  Each host's are read
 * from the index of journalled steps by host (vms_step), so a host busy
 * with a batch costs nothing and a dispatch reads at most a batch per
 * idle host (it read, joined and sorted every journalled VM of every
 * host, busy ones included, each time it ran). */
static void dispatch(struct vms_engine *e)
{
    struct store_conn *conn = store_reader(e->store);
    if (!conn)
        return;
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT v.id, v.step FROM vms v WHERE v.host_id = (SELECT id FROM hosts WHERE name = ?1) "
        "AND v.step IS NOT NULL AND (v.step_retry_epoch IS NULL OR v.step_retry_epoch <= ?2) "
        "ORDER BY v.id LIMIT ?3");
    if (!st)
        return;
    int64_t now = (int64_t) time(NULL);
    pthread_mutex_lock(&e->lock);
    for (size_t h = 0; h < e->n_hosts; h++) {
        const char *host = e->hosts[h];
        if (host_busy(e, host) || !hv_host_up(e->hv, host))
            continue;
        store_bind_text(st, 1, host);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int(st, 3, BATCH_MAX);
        struct step_batch *b = NULL;
        while (sqlite3_step(st) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            if (inflight_has(e, id))
                continue;
            if (!b) {
                b = xcalloc(1, sizeof *b);
                b->e = e;
                b->host = xstrdup(host);
                b->items = xcalloc(BATCH_MAX, sizeof *b->items);
            }
            struct step_item *it = &b->items[b->n++];
            it->id = id;
            it->active = true;
            snprintf(it->step, sizeof it->step, "%s", store_column_text(st, 1));
            inflight_add(e, id);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (b)
            batch_submit(e, b);
    }
    pthread_mutex_unlock(&e->lock);
}

/* ---- host status and lifecycle events ---- */

struct host_status_job {
    const char *host;
    bool up;
    const struct hv_capacity *cap;
    const char *error;
};

static int host_status_run(struct store_txn *txn, void *ctx)
{
    struct host_status_job *j = ctx;
    int r = hosts_update_status(txn, j->host, j->up, j->cap, j->error);
    if (r < 0 || j->up)
        return r == -ENOENT ? 0 : r;
    /* Down: its VMs' state is not known any more. */
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT v.id FROM vms v JOIN hosts h ON h.id = v.host_id WHERE h.name = ?1 "
        "AND " VM_HELD_SQL("v.") " AND v.state IN ('running','stopped') AND v.step IS NULL");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, j->host);
    int64_t *ids = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        ids = xrealloc(ids, (n + 1) * sizeof *ids);
        ids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    json_t *extra = json_pack("{s:s, s:s}", "host", j->host, "reason", j->error ? j->error : "host down");
    for (size_t i = 0; i < n && r == 0; i++)
        r = vms_change(txn, vms_system_principal(), ids[i], VM_UNKNOWN, NULL, NULL, "vm.unknown", extra);
    json_decref(extra);
    free(ids);
    return r;
}

static void on_host_status(void *opaque, const char *host, bool up, const struct hv_capacity *cap,
                           const char *error)
{
    struct vms_engine *e = opaque;
    struct host_status_job j = { host, up, cap, error };
    int r = store_run(e->store, host_status_run, &j);
    if (r < 0 && r != -ESHUTDOWN)
        log_warn(LOG_DOMAIN, "cannot record the status of host '%s': %s", host, strerror(-r));
    pthread_mutex_lock(&e->lock);
    e->place_dirty = true;
    e->kicked = true;
    if (up)
        e->reconcile_due = true;      /* VMs 'unknown' learn their state */
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

struct event_job {
    struct vms_engine *e;
    char *host, *domain;
    enum hv_domstate state;
};

static int observe(struct store_txn *txn, const char *instance, const char *host, const char *domain,
                   enum hv_domstate hstate, const char *source)
{
    int64_t id = vms_id_from_domain(instance, domain);
    if (id < 0)
        return 0;
    sqlite3_stmt *st = store_stmt(store_txn_conn(txn),
        "SELECT v.state, v.step IS NOT NULL, h.name FROM vms v JOIN hosts h ON h.id = v.host_id WHERE v.id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return 0;
    }
    int state = vm_state_from_string(store_column_text(st, 0));
    bool busy = sqlite3_column_int(st, 1);
    bool same_host = streq(store_column_text(st, 2), host);
    sqlite3_reset(st);
    if (busy || !same_host || state < 0)
        return 0;
    enum vm_state to;
    const char *error = NULL;
    switch (hstate) {
    case HV_DOM_RUNNING: to = VM_RUNNING; break;
    case HV_DOM_SHUTOFF: to = VM_STOPPED; break;
    case HV_DOM_CRASHED: to = VM_ERROR; error = "the domain crashed"; break;
    default: return 0;
    }
    if ((int) to == state || !vm_transition_allowed((enum vm_state) state, to) ||
        !(state == VM_RUNNING || state == VM_STOPPED || state == VM_UNKNOWN || state == VM_ERROR))
        return 0;
    json_t *extra = json_pack("{s:s, s:s}", "source", source, "libvirt_state", hv_domstate_to_string(hstate));
    int r = vms_change(txn, vms_system_principal(), id, to, NULL, error, "vm.observed", extra);
    json_decref(extra);
    return r;
}

static int event_run(struct store_txn *txn, void *ctx)
{
    struct event_job *j = ctx;
    return observe(txn, j->e->instance, j->host, j->domain, j->state, "libvirt-event");
}

static void event_done(void *ctx, int result)
{
    struct event_job *j = ctx;
    free(j->host);
    free(j->domain);
    free(j);
}

static void on_domain_event(void *opaque, const char *host, const char *domain, enum hv_domstate state)
{
    struct vms_engine *e = opaque;
    int64_t id = vms_id_from_domain(e->instance, domain);
    if (id < 0)
        return;
    /* A VM whose step is under way is the journal's: the event is its own
     * doing (observe() would ignore it), so no store job for it. */
    pthread_mutex_lock(&e->lock);
    bool busy = inflight_has(e, id);
    pthread_mutex_unlock(&e->lock);
    if (busy)
        return;
    struct event_job *j = xcalloc(1, sizeof *j);
    j->e = e;
    j->host = xstrdup(host);
    j->domain = xstrdup(domain);
    j->state = state;
    /* The event loop must not wait for the disk: hand over and go on. */
    store_submit(e->store, event_run, event_done, j);
}

/* ---- reconcile ---- */

struct correction {
    char *domain;
    enum hv_domstate state;
};

struct correct_job {
    struct vms_engine *e;
    const char *host;
    struct correction *c;
    size_t n;
};

static int correct_run(struct store_txn *txn, void *ctx)
{
    struct correct_job *j = ctx;
    for (size_t i = 0; i < j->n; i++) {
        int r = observe(txn, j->e->instance, j->host, j->c[i].domain, j->c[i].state, "reconcile");
        if (r < 0)
            return r;
    }
    return 0;
}

static int cmp_domain(const void *a, const void *b)
{
    return strcmp(((const struct hv_domain_info *) a)->name, ((const struct hv_domain_info *) b)->name);
}

static const char *expected_store_state(enum hv_domstate s)
{
    return s == HV_DOM_RUNNING ? "running" : s == HV_DOM_SHUTOFF ? "stopped" : NULL;
}

static void reconcile_task(virConnectPtr conn, const char *host, const char *pool, void *ctx)
{
    struct vms_engine *e = ctx;
    json_t *items = json_array();
    char at[32];
    format_utc_now(at);
    struct hv_domain_info *doms = NULL;
    size_t n_doms = 0;
    _cleanup_free_ char *err = NULL;
    struct correction *corr = NULL;
    size_t n_corr = 0;
    bool ok = conn && hv_list_domains(conn, &doms, &n_doms, &err) == 0;
    struct store_conn *reader = ok ? store_reader(e->store) : NULL;
    sqlite3_stmt *st = reader ? store_stmt(reader,
        "SELECT v.id, v.state, v.step IS NOT NULL, v.domain_name FROM vms v JOIN hosts h ON h.id = v.host_id "
        "WHERE h.name = ?1 AND " VM_HELD_SQL("v.") " AND v.domain_name IS NOT NULL")
                   : NULL;
    if (st) {
        qsort(doms, n_doms, sizeof *doms, cmp_domain);
        bool *matched = xcalloc(n_doms ? n_doms : 1, sizeof *matched);
        store_bind_text(st, 1, host);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            const char *state = store_column_text(st, 1);
            bool busy = sqlite3_column_int(st, 2);
            struct hv_domain_info key = { .name = (char *) store_column_text(st, 3) };
            struct hv_domain_info *d = bsearch(&key, doms, n_doms, sizeof *doms, cmp_domain);
            if (d)
                matched[d - doms] = true;
            if (busy || streq(state, "pending") || streq(state, "provisioning"))
                continue;       /* the journal is at work on it */
            if (!d) {
                if (!streq(state, "error"))
                    json_array_append_new(items, json_pack("{s:s, s:s, s:I, s:s, s:s, s:n}",
                        "kind", "vm-gone", "host", host, "vm", (json_int_t) id, "domain", key.name,
                        "store_state", state, "libvirt_state"));
                continue;
            }
            const char *want = expected_store_state(d->state);
            if (want && !streq(want, state)) {
                if (!streq(state, "unknown"))
                    json_array_append_new(items, json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:b}",
                        "kind", "state-mismatch", "host", host, "vm", (json_int_t) id, "domain", d->name,
                        "store_state", state, "libvirt_state", hv_domstate_to_string(d->state),
                        "corrected", 1));
                corr = xrealloc(corr, (n_corr + 1) * sizeof *corr);
                corr[n_corr].domain = xstrdup(d->name);
                corr[n_corr].state = d->state;
                n_corr++;
            }
        }
        sqlite3_reset(st);
        for (size_t i = 0; i < n_doms; i++)
            if (!matched[i])
                json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:o}",
                    "kind", "unknown-domain", "host", host, "domain", doms[i].name,
                    "libvirt_state", hv_domstate_to_string(doms[i].state),
                    "ours", json_boolean(vms_id_from_domain(e->instance, doms[i].name) > 0)));
        free(matched);
    }
    if (n_corr) {
        struct correct_job j = { e, host, corr, n_corr };
        store_run(e->store, correct_run, &j);
        for (size_t i = 0; i < n_corr; i++)
            free(corr[i].domain);
    }
    free(corr);
    hv_domain_infos_free(doms, n_doms);
    json_t *h = json_pack("{s:s, s:b, s:o}", "checked_at", at, "reachable", ok, "items", items);
    if (!ok)
        json_object_set_new(h, "error", json_string(err ? err : "the host is down"));
    pthread_mutex_lock(&e->lock);
    json_object_set_new(e->drift, host, h);
    if (--e->reconcile_outstanding == 0) {
        e->last_reconcile_ms = (double) (monotonic_usec() - e->reconcile_started_usec) / 1000.0;
        pthread_cond_broadcast(&e->reconcile_cond);
    }
    pthread_mutex_unlock(&e->lock);
}

/* Called with e->lock held. */
static void start_reconcile(struct vms_engine *e)
{
    if (e->reconcile_outstanding > 0)
        return;
    e->reconcile_started_usec = monotonic_usec();
    for (size_t i = 0; i < e->n_hosts; i++) {
        e->reconcile_outstanding++;
        if (hv_submit(e->hv, e->hosts[i], reconcile_task, e) < 0)
            e->reconcile_outstanding--;
    }
}

double vms_engine_reconcile_now(struct vms_engine *e)
{
    pthread_mutex_lock(&e->lock);
    while (e->reconcile_outstanding > 0)
        pthread_cond_wait(&e->reconcile_cond, &e->lock);
    start_reconcile(e);
    while (e->reconcile_outstanding > 0)
        pthread_cond_wait(&e->reconcile_cond, &e->lock);
    double ms = e->last_reconcile_ms;
    pthread_mutex_unlock(&e->lock);
    return ms;
}

json_t *vms_drift_json(void)
{
    struct vms_engine *e = atomic_load(&the_engine);
    json_t *items = json_array(), *hosts = json_object();
    json_t *counts = json_pack("{s:i, s:i, s:i}", "vm-gone", 0, "unknown-domain", 0, "state-mismatch", 0);
    double ms = 0;
    if (e) {
        pthread_mutex_lock(&e->lock);
        const char *host;
        json_t *h;
        json_object_foreach(e->drift, host, h) {
            json_object_set_new(hosts, host, json_pack("{s:O, s:O, s:O?}", "checked_at",
                json_object_get(h, "checked_at"), "reachable", json_object_get(h, "reachable"),
                "error", json_object_get(h, "error")));
            size_t i;
            json_t *it;
            json_array_foreach(json_object_get(h, "items"), i, it) {
                json_array_append(items, it);
                const char *kind = json_string_value(json_object_get(it, "kind"));
                json_object_set_new(counts, kind, json_integer(json_integer_value(json_object_get(counts, kind)) + 1));
            }
        }
        ms = e->last_reconcile_ms;
        pthread_mutex_unlock(&e->lock);
    }
    return json_pack("{s:o, s:o, s:o, s:f}", "items", items, "counts", counts, "hosts", hosts,
                     "last_reconcile_ms", ms);
}

void vms_metrics(struct store_conn *conn, struct strbuf *out)
{
    int64_t counts[VM_STATE_MAX] = { 0 };
    sqlite3_stmt *st = store_stmt(conn, "SELECT state, count(*) FROM vms GROUP BY state");
    if (st) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            int s = vm_state_from_string(store_column_text(st, 0));
            if (s >= 0)
                counts[s] = sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
    }
    strbuf_puts(out, "# HELP yunguan_vms VMs by state.\n# TYPE yunguan_vms gauge\n");
    for (int s = 0; s < VM_STATE_MAX; s++)
        strbuf_printf(out, "yunguan_vms{state=\"%s\"} %lld\n", vm_state_to_string((enum vm_state) s),
                      (long long) counts[s]);
    strbuf_puts(out, "# HELP yunguan_hypervisor_hosts Registered hypervisor hosts by libvirt reachability.\n"
                     "# TYPE yunguan_hypervisor_hosts gauge\n");
    st = store_stmt(conn,
        "SELECT s.v, (SELECT count(*) FROM hosts h WHERE h.registered_at IS NOT NULL AND h.hv_status = s.v) "
        "FROM (SELECT 'up' AS v UNION ALL SELECT 'down' UNION ALL SELECT 'unknown') s");
    if (st) {
        while (sqlite3_step(st) == SQLITE_ROW)
            strbuf_printf(out, "yunguan_hypervisor_hosts{status=\"%s\"} %lld\n", store_column_text(st, 0),
                          (long long) sqlite3_column_int64(st, 1));
        sqlite3_reset(st);
    }
    json_t *drift = vms_drift_json();
    strbuf_puts(out, "# HELP yunguan_drift Differences between the store and libvirt at the last reconcile.\n"
                     "# TYPE yunguan_drift gauge\n");
    const char *kind;
    json_t *n;
    json_object_foreach(json_object_get(drift, "counts"), kind, n)
        strbuf_printf(out, "yunguan_drift{kind=\"%s\"} %lld\n", kind, (long long) json_integer_value(n));
    strbuf_printf(out, "# HELP yunguan_reconcile_duration_seconds How long the last reconcile of every host took.\n"
                       "# TYPE yunguan_reconcile_duration_seconds gauge\n"
                       "yunguan_reconcile_duration_seconds %.6f\n",
                  json_real_value(json_object_get(drift, "last_reconcile_ms")) / 1000.0);
    json_decref(drift);
    struct vms_engine *e = atomic_load(&the_engine);
    if (e) {
        pthread_mutex_lock(&e->lock);
        size_t inflight = e->n_inflight;
        pthread_mutex_unlock(&e->lock);
        strbuf_printf(out, "# HELP yunguan_vm_steps_in_flight Journalled libvirt steps being run now.\n"
                           "# TYPE yunguan_vm_steps_in_flight gauge\n"
                           "yunguan_vm_steps_in_flight %zu\n", inflight);
    }
}

/* ---- the engine thread ---- */

static int place_run(struct store_txn *txn, void *ctx)
{
    vms_defer_request_checks();
    int r = vms_place_pending(txn);
    int r2 = vms_run_deferred_request_checks(txn, r == 0);
    return r < 0 ? r : r2;
}

static int lease_run(struct store_txn *txn, void *ctx)
{
    return vms_lease_sweep(txn, vms_now());
}

static void *engine_main(void *arg)
{
    struct vms_engine *e = arg;
    thread_set_name("yg-engine");
    uint64_t next_place = 0, next_lease = 0;
    uint64_t next_reconcile = monotonic_usec() + 2000000ull;
    pthread_mutex_lock(&e->lock);
    while (!e->stop) {
        if (!e->kicked) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += TICK_MS / 1000;
            pthread_cond_timedwait(&e->wake, &e->lock, &deadline);
        }
        if (e->stop)
            break;
        e->kicked = false;
        bool place = e->place_dirty;
        e->place_dirty = false;
        uint64_t now = monotonic_usec();
        if (e->reconcile_due || now >= next_reconcile) {
            e->reconcile_due = false;
            next_reconcile = now + (uint64_t) e->cfg.reconcile_seconds * 1000000ull;
            start_reconcile(e);
        }
        pthread_mutex_unlock(&e->lock);

        if (place || now >= next_place) {
            next_place = now + PLACE_EVERY_USEC;
            /* Placement chooses everything first and then writes
             * (vms_place_pending); a pass places up to thousands of VMs. */
            int r = store_run_flags(e->store, place_run, NULL, STORE_JOB_WRITES_LAST);
            if (r < 0 && r != -ESHUTDOWN)
                log_warn(LOG_DOMAIN, "placement pass failed: %s", strerror(-r));
        }
        dispatch(e);
        if (now >= next_lease) {
            next_lease = now + LEASE_EVERY_USEC;
            int r = store_run(e->store, lease_run, NULL);
            if (r < 0 && r != -ESHUTDOWN)
                log_warn(LOG_DOMAIN, "lease pass failed: %s", strerror(-r));
        }
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

static void add_registered(const char *name, const char *uri, const char *pool, void *ctx)
{
    struct vms_engine *e = ctx;
    engine_add_host(e, name);
    hv_host_set(e->hv, name, uri, pool);
}

int vms_engine_start(struct store *store, const struct vms_config *cfg, struct vms_engine **ret,
                     char **ret_errmsg)
{
    struct vms_engine *e = xcalloc(1, sizeof *e);
    e->store = store;
    e->cfg = *cfg;
    e->cfg.domain_type = xstrdup(cfg->domain_type ? cfg->domain_type : "qemu");
    e->drift = json_object();
    e->place_dirty = true;
    const char *hook = getenv("YUNGUAN_TEST_KILL_AFTER_STEP");
    e->kill_after_step = hook && *hook ? hook : NULL;
    if (e->kill_after_step)
        log_warn(LOG_DOMAIN, "test-only hook: yunguand kills itself after step '%s'", e->kill_after_step);
    vms_set_overcommit(cfg->vcpu_overcommit);
    vms_set_decommission_approval(cfg->decommission_approval);
    vms_set_lease_defaults(cfg->lease_notice_days, cfg->lease_grace_days);
    (void) vms_now();
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_cond_init(&e->reconcile_cond, NULL);

    struct store_conn *reader = store_reader(store);
    if (!reader || vms_instance(reader, e->instance) < 0) {
        *ret_errmsg = xstrdup("cannot read this store's instance tag (settings.instance)");
        goto fail;
    }
    struct hv_callbacks cb = { .opaque = e, .host_status = on_host_status, .domain_event = on_domain_event };
    int r = hv_start(&cb, &e->hv);
    if (r < 0) {
        *ret_errmsg = xasprintf("cannot start the libvirt event loop: %s", strerror(-r));
        goto fail;
    }
    atomic_store(&the_engine, e);
    /* Every registered host gets its worker; those mid-journal resume as
     * soon as their host is up (the journal is the truth after a crash). */
    pthread_mutex_lock(&e->lock);
    hosts_foreach_registered(reader, add_registered, e);
    pthread_mutex_unlock(&e->lock);
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        *ret_errmsg = xstrdup("cannot start the VM engine thread");
        atomic_store(&the_engine, NULL);
        hv_stop(e->hv);
        goto fail;
    }
    *ret = e;
    return 0;
fail:
    json_decref(e->drift);
    free(e->cfg.domain_type);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->reconcile_cond);
    free(e);
    return -EIO;
}

void vms_engine_stop(struct vms_engine *e)
{
    if (!e)
        return;
    atomic_store(&the_engine, NULL);
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    /* Workers finish their current task (its outcome is committed: the
     * store is still open) and stop. */
    hv_stop(e->hv);
    for (size_t i = 0; i < e->n_hosts; i++)
        free(e->hosts[i]);
    free(e->hosts);
    for (size_t i = 0; i < e->n_busy; i++)
        free(e->busy[i]);
    free(e->busy);
    free(e->inflight);
    json_decref(e->drift);
    free(e->cfg.domain_type);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->reconcile_cond);
    free(e);
}

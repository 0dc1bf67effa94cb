/* VMs in the store: the state table, creation at approval, placement,
 * the journalled actions, decommissioning with reclaim records, leases.
 * The engine that runs the journal against libvirt is vms-engine.c. */
#include <config.h>
#include "vms.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "addresses.h"
#include "audit.h"
#include "auth.h"
#include "log.h"
#include "placement.h"
#include "sha256.h"
#include "store.h"
#include "util.h"
#include "vms-priv.h"

#define LOG_DOMAIN "vms"
#define PLACE_REQUESTS_PER_PASS 200

static const char *const state_names[VM_STATE_MAX] = {
    [VM_PENDING] = "pending", [VM_PROVISIONING] = "provisioning", [VM_RUNNING] = "running",
    [VM_STOPPED] = "stopped", [VM_ERROR] = "error", [VM_STOPPING] = "stopping",
    [VM_DECOMMISSIONING] = "decommissioning", [VM_DECOMMISSIONED] = "decommissioned",
    [VM_UNKNOWN] = "unknown",
};

const char *vm_state_to_string(enum vm_state s)
{
    return (unsigned) s < VM_STATE_MAX ? state_names[s] : NULL;
}

int vm_state_from_string(const char *s)
{
    for (int i = 0; s && i < VM_STATE_MAX; i++)
        if (streq(state_names[i], s))
            return i;
    return -1;
}

/* The VM state machine (DESIGN.md "Lifecycle"). */
const struct vm_transition vm_transitions[] = {
    { VM_PENDING,         VM_PROVISIONING },    /* placed; the journal starts */
    { VM_PENDING,         VM_DECOMMISSIONED },  /* withdrawn or decommissioned before placement */
    { VM_PROVISIONING,    VM_RUNNING },
    { VM_PROVISIONING,    VM_ERROR },           /* a step failed: rolled back */
    { VM_RUNNING,         VM_STOPPED },
    { VM_STOPPED,         VM_RUNNING },
    { VM_RUNNING,         VM_ERROR },           /* crashed */
    { VM_ERROR,           VM_PENDING },         /* the request is retried */
    { VM_ERROR,           VM_RUNNING },         /* seen running again */
    { VM_ERROR,           VM_STOPPED },
    { VM_RUNNING,         VM_UNKNOWN },         /* host unreachable */
    { VM_STOPPED,         VM_UNKNOWN },
    { VM_UNKNOWN,         VM_RUNNING },
    { VM_UNKNOWN,         VM_STOPPED },
    { VM_RUNNING,         VM_STOPPING },        /* decommission */
    { VM_STOPPED,         VM_STOPPING },
    { VM_ERROR,           VM_STOPPING },
    { VM_UNKNOWN,         VM_STOPPING },
    { VM_STOPPING,        VM_DECOMMISSIONING },
    { VM_DECOMMISSIONING, VM_DECOMMISSIONED },
};
const size_t vm_n_transitions = YG_ARRAY_SIZE(vm_transitions);

bool vm_transition_allowed(enum vm_state from, enum vm_state to)
{
    for (size_t i = 0; i < vm_n_transitions; i++)
        if (vm_transitions[i].from == from && vm_transitions[i].to == to)
            return true;
    return false;
}

static const char *const action_names[VM_ACTION_MAX] = {
    [VM_ACTION_START] = "start", [VM_ACTION_STOP] = "stop", [VM_ACTION_REBOOT] = "reboot",
};

const char *vm_action_to_string(enum vm_action a)
{
    return (unsigned) a < VM_ACTION_MAX ? action_names[a] : NULL;
}

int vm_action_from_string(const char *s)
{
    for (int i = 0; s && i < VM_ACTION_MAX; i++)
        if (streq(action_names[i], s))
            return i;
    return -1;
}

void vms_config_defaults(struct vms_config *cfg)
{
    cfg->vcpu_overcommit = 4.0;
    cfg->shutdown_timeout_seconds = 60;
    cfg->reconcile_seconds = 60;
    cfg->volume_size_override_mib = 0;
    cfg->decommission_approval = true;
    cfg->lease_notice_days = 14;
    cfg->lease_grace_days = 7;
    cfg->domain_type = xstrdup("qemu");
}

static int64_t now_offset;
static bool now_offset_read;

int64_t vms_now(void)
{
    if (!__atomic_load_n(&now_offset_read, __ATOMIC_ACQUIRE)) {
        const char *s = getenv("YUNGUAN_TEST_NOW_OFFSET");
        int64_t off = s && *s ? strtoll(s, NULL, 10) : 0;
        if (off)
            log_warn(LOG_DOMAIN, "test-only clock shift: YUNGUAN_TEST_NOW_OFFSET=%" PRId64 " seconds", off);
        __atomic_store_n(&now_offset, off, __ATOMIC_RELAXED);
        __atomic_store_n(&now_offset_read, true, __ATOMIC_RELEASE);
    }
    return (int64_t) time(NULL) + __atomic_load_n(&now_offset, __ATOMIC_RELAXED);
}

/* ---- names ---- */

void vms_domain_name(const char *instance, int64_t id, char buf[static 64])
{
    snprintf(buf, 64, "yg-%s-vm-%" PRId64, instance, id);
}

void vms_domain_uuid(const char *instance, int64_t id, char buf[static 37])
{
    char seed[96];
    uint8_t h[SHA256_DIGEST_SIZE];
    snprintf(seed, sizeof seed, "yunguan-vm:%s:%" PRId64, instance, id);
    sha256(seed, strlen(seed), h);
    h[6] = (uint8_t) ((h[6] & 0x0f) | 0x50);     /* name-based */
    h[8] = (uint8_t) ((h[8] & 0x3f) | 0x80);     /* RFC 4122 variant */
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
             h[13], h[14], h[15]);
}

int64_t vms_id_from_domain(const char *instance, const char *domain)
{
    size_t n = strlen(instance);
    if (strncmp(domain, "yg-", 3) || strncmp(domain + 3, instance, n) || strncmp(domain + 3 + n, "-vm-", 4))
        return -1;
    const char *p = domain + 3 + n + 4;
    char *end;
    long long id = strtoll(p, &end, 10);
    return *p && !*end && id > 0 ? id : -1;
}

int vms_instance(struct store_conn *conn, char buf[static 32])
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT value FROM settings WHERE key = 'instance'");
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(buf, 32, "%s", store_column_text(st, 0));
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : -EIO;
}

/* ---- transitions ---- */

static const struct principal system_principal = { .role = ROLE_ADMIN, .actor = "system" };

const struct principal *vms_system_principal(void) { return &system_principal; }

static const char *actor_role(const struct principal *by)
{
    return by == &system_principal || (by->token_id == 0 && streq(by->actor, "system"))
           ? "system" : role_to_string(by->role);
}

/* The request's state follows its VMs: provisioning → active when every VM
 * is built, → failed when one failed, → closed when all are
 * decommissioned. */
int vms_request_check(struct store_txn *txn, int64_t request_id)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn, "SELECT state FROM requests WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    int state = sqlite3_step(st) == SQLITE_ROW ? request_state_from_string(store_column_text(st, 0)) : -1;
    sqlite3_reset(st);
    if (state != REQUEST_APPROVED && state != REQUEST_PROVISIONING && state != REQUEST_ACTIVE &&
        state != REQUEST_FAILED)
        return 0;       /* nothing its VMs can change */
    /* The VMs' states from the index vms_request (request_id, state)
     * alone, a count per state in index order: no VM row is read, and no
     * aggregate runs per VM (four SUM()s cost ~2 us more per check). */
    st = store_stmt(conn, "SELECT state, count(*) FROM vms WHERE request_id = ?1 GROUP BY state");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    int64_t total = 0, pending = 0, provisioning = 0, error = 0, gone = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int vm_state = vm_state_from_string(store_column_text(st, 0));
        int64_t n = sqlite3_column_int64(st, 1);
        total += n;
        pending += vm_state == VM_PENDING ? n : 0;
        provisioning += vm_state == VM_PROVISIONING ? n : 0;
        error += vm_state == VM_ERROR ? n : 0;
        gone += vm_state == VM_DECOMMISSIONED ? n : 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    int action = -1;
    const char *reason = NULL;
    if (total > 0 && gone == total &&
        (state == REQUEST_APPROVED || state == REQUEST_PROVISIONING || state == REQUEST_ACTIVE ||
         state == REQUEST_FAILED)) {
        action = REQUEST_ACTION_CLOSE;
        reason = "every VM is decommissioned";
    } else if (state == REQUEST_PROVISIONING && error > 0) {
        action = REQUEST_ACTION_FAIL;
        reason = "a VM failed to provision; see its error";
    } else if (state == REQUEST_PROVISIONING && pending == 0 && provisioning == 0) {
        action = REQUEST_ACTION_ACTIVATE;
        reason = "every VM is built";
    }
    if (action < 0)
        return 0;
    struct yg_error *e = NULL;
    int r = lifecycle_apply(txn, &system_principal, request_id, (enum request_action) action, reason, &e);
    if (r < 0)
        log_warn(LOG_DOMAIN, "request %" PRId64 ": %s", request_id, e ? e->message : strerror(-r));
    yg_error_free(e);
    return r;
}

/* Request checks put off to the end of a job (writer thread only). */
static _Thread_local bool checks_deferred;
static _Thread_local int64_t *deferred_requests;
static _Thread_local size_t n_deferred, cap_deferred;

void vms_defer_request_checks(void)
{
    checks_deferred = true;
    n_deferred = 0;
}

int vms_run_deferred_request_checks(struct store_txn *txn, bool run)
{
    checks_deferred = false;
    int r = 0;
    for (size_t i = 0; run && i < n_deferred && r == 0; i++)
        r = vms_request_check(txn, deferred_requests[i]);
    n_deferred = 0;
    /* Freed every time: a thread-local buffer kept for the next job is
     * lost (and reported by LeakSanitizer) when the writer thread ends. */
    free(deferred_requests);
    deferred_requests = NULL;
    cap_deferred = 0;
    return r;
}

static int request_changed(struct store_txn *txn, int64_t request_id)
{
    if (!checks_deferred)
        return vms_request_check(txn, request_id);
    for (size_t i = 0; i < n_deferred; i++)
        if (deferred_requests[i] == request_id)
            return 0;
    if (n_deferred == cap_deferred) {
        cap_deferred = cap_deferred ? 2 * cap_deferred : 16;
        deferred_requests = xrealloc(deferred_requests, cap_deferred * sizeof *deferred_requests);
    }
    deferred_requests[n_deferred++] = request_id;
    return 0;
}

static int vm_changed(struct store_txn *txn, const struct principal *by, int64_t id, int64_t request_id,
                      enum vm_state from, const char *old_step, enum vm_state to, const char *step,
                      const char *error, const char *audit_action, json_t *extra);

/* What change() writes besides the state, step and error. */
struct change_more {
    bool release_addresses;     /* decommissioned: the addresses and the MAC go back */
    bool decommission;          /* who asked for the decommission, who approved */
    const char *decommission_by, *decommission_approved_by;
    const char *wipe_method;    /* how the volume was wiped */
};

static int change(struct store_txn *txn, const struct principal *by, int64_t id, const struct vm_known *known,
                  enum vm_state to, const char *step, const char *error, const char *audit_action,
                  json_t *extra, const struct change_more *more);

int vms_change(struct store_txn *txn, const struct principal *by, int64_t id, enum vm_state to,
               const char *step, const char *error, const char *audit_action, json_t *extra)
{
    return change(txn, by, id, NULL, to, step, error, audit_action, extra, NULL);
}

int vms_change_known(struct store_txn *txn, const struct principal *by, int64_t id,
                     const struct vm_known *known, enum vm_state to, const char *step, const char *error,
                     const char *audit_action, json_t *extra)
{
    return change(txn, by, id, known, to, step, error, audit_action, extra, NULL);
}

int vms_change_wiped(struct store_txn *txn, const struct principal *by, int64_t id,
                     const struct vm_known *known, const char *step, const char *wipe_method,
                     const char *audit_action, json_t *extra)
{
    struct change_more more = { .wipe_method = wipe_method };
    return change(txn, by, id, known, VM_DECOMMISSIONING, step, NULL, audit_action, extra, &more);
}

/* KNOWN: the VM as the job read it in this transaction (NULL: read here).
 * MORE: what else the same UPDATE writes (NULL: nothing). */
static int change(struct store_txn *txn, const struct principal *by, int64_t id, const struct vm_known *known,
                  enum vm_state to, const char *step, const char *error, const char *audit_action,
                  json_t *extra, const struct change_more *more)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st;
    int from;
    int64_t request_id;
    _cleanup_free_ char *old_step = NULL;
    if (known) {
        from = (int) known->state;
        request_id = known->request_id;
        old_step = known->step ? xstrdup(known->step) : NULL;
    } else {
        st = store_stmt(conn, "SELECT state, request_id, step FROM vms WHERE id = ?1");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_reset(st);
            return -ENOENT;
        }
        from = vm_state_from_string(store_column_text(st, 0));
        request_id = sqlite3_column_int64(st, 1);
        old_step = sqlite3_column_type(st, 2) == SQLITE_NULL ? NULL : xstrdup(store_column_text(st, 2));
        sqlite3_reset(st);
    }
    if (from < 0)
        return -EIO;
    if ((int) to != from && !vm_transition_allowed((enum vm_state) from, to)) {
        log_warn(LOG_DOMAIN, "vm %" PRId64 ": no transition %s -> %s", id, state_names[from], state_names[to]);
        return -EBUSY;
    }
    /* Only the move that releases a VM's resources makes it decommissioned
     * (released_at, migration 012, is written with it). */
    if (to == VM_DECOMMISSIONED && !(more && more->release_addresses) && (int) to != from)
        return -EINVAL;
    char at[32];
    format_utc_now(at);
    if (more && more->release_addresses)
        st = store_stmt(conn,
            "UPDATE vms SET state = ?2, step = ?3, step_at = CASE WHEN ?3 IS NULL THEN NULL ELSE ?4 END, "
            "step_retry_epoch = NULL, error = ?5, updated_at = ?4, ipv4 = NULL, ipv6 = NULL, mac = NULL, "
            "released_at = ?4 WHERE id = ?1 AND step IS ?8");
    else if (more && more->wipe_method)
        st = store_stmt(conn,
            "UPDATE vms SET state = ?2, step = ?3, step_at = CASE WHEN ?3 IS NULL THEN NULL ELSE ?4 END, "
            "step_retry_epoch = NULL, error = ?5, updated_at = ?4, wipe_method = ?6 WHERE id = ?1 AND step IS ?8");
    else if (more && more->decommission)
        st = store_stmt(conn,
            "UPDATE vms SET state = ?2, step = ?3, step_at = CASE WHEN ?3 IS NULL THEN NULL ELSE ?4 END, "
            "step_retry_epoch = NULL, error = ?5, updated_at = ?4, decommission_by = ?6, "
            "decommission_approved_by = ?7 WHERE id = ?1 AND step IS ?8");
    else
        st = store_stmt(conn,
            "UPDATE vms SET state = ?2, step = ?3, step_at = CASE WHEN ?3 IS NULL THEN NULL ELSE ?4 END, "
            "step_retry_epoch = NULL, error = ?5, updated_at = ?4 WHERE id = ?1 AND step IS ?8");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, state_names[to]);
    store_bind_text(st, 3, step);
    store_bind_text(st, 4, at);
    store_bind_text(st, 5, error);
    if (more && !more->release_addresses && more->wipe_method) {
        store_bind_text(st, 6, more->wipe_method);
    } else if (more && !more->release_addresses && more->decommission) {
        store_bind_text(st, 6, more->decommission_by);
        store_bind_text(st, 7, more->decommission_approved_by);
    }
    store_bind_text(st, 8, old_step);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    if (sqlite3_changes(store_conn_db(conn)) != 1)
        return known ? -ESTALE : -ENOENT;    /* known: its step was taken over */
    if ((int) to == from && !audit_action)
        return 0;
    return vm_changed(txn, by, id, request_id, (enum vm_state) from, old_step, to, step, error,
                      audit_action, extra);
}

/* The audit entry of a VM's change FROM/OLD_STEP -> TO/STEP (already
 * written), then the request's check if the state moved. */
/* Whether a VM's move FROM -> TO can change what vms_request_check()
 * decides: it acts when every VM is decommissioned (close), when one is
 * in error while provisioning (fail), and when none is pending or
 * provisioning (activate).  A move among running, stopped, unknown,
 * stopping and decommissioning changes none of those counts (half of a
 * VM's moves in its life: no request query for them). */
static bool request_may_follow(enum vm_state from, enum vm_state to)
{
    if (from == to)
        return false;
    return from == VM_PENDING || from == VM_PROVISIONING || from == VM_ERROR ||
           to == VM_PENDING || to == VM_PROVISIONING || to == VM_ERROR || to == VM_RUNNING ||
           to == VM_DECOMMISSIONED;
}

static int vm_changed(struct store_txn *txn, const struct principal *by, int64_t id, int64_t request_id,
                      enum vm_state from, const char *old_step, enum vm_state to, const char *step,
                      const char *error, const char *audit_action, json_t *extra)
{
    char object[32];
    snprintf(object, sizeof object, "vm/%" PRId64, id);
    char action[48];
    if (!audit_action)
        snprintf(action, sizeof action, "vm.%s", state_names[to]);
    /* The move's own keys set over EXTRA as the trail writes them, without
     * a copy of EXTRA. */
    const char *before_pairs[] = { "state", state_names[from], "step", old_step };
    const char *after_pairs[] = { "state", state_names[to], "step", step, "error", error };
    _cleanup_free_ char *before_s = audit_json_text_with(NULL, before_pairs, 2);
    _cleanup_free_ char *after_s = audit_json_text_with(extra, after_pairs, 3);
    int r = audit_append_text(txn, by->actor, actor_role(by), audit_action ? audit_action : action, object,
                              before_s, after_s);
    if (r < 0)
        return r;
    return request_may_follow(from, to) ? request_changed(txn, request_id) : 0;
}

/* ---- creation at approval ---- */

static int create_vms(struct store_txn *txn, const struct principal *by, int64_t request_id)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn, "SELECT count(*) FROM vms WHERE request_id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    int64_t existing = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    if (existing != 0)
        return existing < 0 ? -EIO : 0;

    st = store_stmt(conn,
        "SELECT r.department_id, r.lease_until, r.ipv6, (SELECT id FROM segments WHERE name = r.segment) "
        "FROM requests r WHERE r.id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return -ENOENT;
    }
    int64_t department_id = sqlite3_column_int64(st, 0);
    _cleanup_free_ char *lease = xstrdup(store_column_text(st, 1));
    _cleanup_free_ char *ipv6 = xstrdup(store_column_text(st, 2));
    bool has_segment = sqlite3_column_type(st, 3) != SQLITE_NULL;
    int64_t segment_id = sqlite3_column_int64(st, 3);
    sqlite3_reset(st);

    struct group { int position, count, vcpus; int64_t memory_mib, disk_gib; char *name, *image; } *groups = NULL;
    size_t n = 0;
    st = store_stmt(conn,
        "SELECT position, name, count, vcpus, memory_mib, disk_gib, image FROM request_vms "
        "WHERE request_id = ?1 ORDER BY position");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        groups = xrealloc(groups, (n + 1) * sizeof *groups);
        groups[n] = (struct group) {
            .position = sqlite3_column_int(st, 0), .name = xstrdup(store_column_text(st, 1)),
            .count = sqlite3_column_int(st, 2), .vcpus = sqlite3_column_int(st, 3),
            .memory_mib = sqlite3_column_int64(st, 4), .disk_gib = sqlite3_column_int64(st, 5),
            .image = xstrdup(store_column_text(st, 6)),
        };
        n++;
    }
    sqlite3_reset(st);

    char at[32];
    format_utc_now(at);
    int r = 0;
    for (size_t g = 0; g < n && r == 0; g++) {
        for (int k = 1; k <= groups[g].count && r == 0; k++) {
            _cleanup_free_ char *name = groups[g].count == 1 ? xstrdup(groups[g].name)
                                        : xasprintf("%s-%d", groups[g].name, k);
            st = store_stmt(conn,
                "INSERT INTO vms (request_id, department_id, name, group_position, vcpus, memory_mib, "
                "  disk_gib, image, ipv6_mode, segment_id, state, lease_until, created_at, updated_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12, ?12)");
            if (!st) {
                r = -EIO;
                break;
            }
            sqlite3_bind_int64(st, 1, request_id);
            sqlite3_bind_int64(st, 2, department_id);
            store_bind_text(st, 3, name);
            sqlite3_bind_int(st, 4, groups[g].position);
            sqlite3_bind_int(st, 5, groups[g].vcpus);
            sqlite3_bind_int64(st, 6, groups[g].memory_mib);
            sqlite3_bind_int64(st, 7, groups[g].disk_gib);
            store_bind_text(st, 8, groups[g].image);
            store_bind_text(st, 9, ipv6);
            if (has_segment)
                sqlite3_bind_int64(st, 10, segment_id);
            else
                sqlite3_bind_null(st, 10);
            store_bind_text(st, 11, lease);
            store_bind_text(st, 12, at);
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE) {
                r = -EIO;
                break;
            }
            int64_t id = sqlite3_last_insert_rowid(store_conn_db(conn));
            _cleanup_free_ char *object = xasprintf("vm/%" PRId64, id);
            json_t *after = json_pack("{s:s, s:s, s:I, s:i, s:I, s:I, s:s}", "state", "pending",
                "name", name, "request", (json_int_t) request_id, "vcpus", groups[g].vcpus,
                "memory_mib", (json_int_t) groups[g].memory_mib,
                "disk_gib", (json_int_t) groups[g].disk_gib, "image", groups[g].image);
            r = audit_append(txn, by->actor, actor_role(by), "vm.create", object, NULL, after);
            json_decref(after);
        }
    }
    for (size_t g = 0; g < n; g++) {
        free(groups[g].name);
        free(groups[g].image);
    }
    free(groups);
    return r;
}

/* Pending VMs (never placed, nothing built) end without libvirt work. */
static int finish_unbuilt(struct store_txn *txn, const struct principal *by, int64_t vm_id,
                          const char *why);

int vms_request_transitioned(struct store_txn *txn, const struct principal *by, int64_t request_id,
                             enum request_state from, enum request_state to)
{
    struct store_conn *conn = store_txn_conn(txn);
    if (to == REQUEST_APPROVED && from == REQUEST_SUBMITTED) {
        int r = create_vms(txn, by, request_id);
        vms_engine_kick();
        return r;
    }
    if (to == REQUEST_APPROVED && from == REQUEST_FAILED) {
        /* Retry: failed VMs (rolled back, nothing left in libvirt) start over. */
        sqlite3_stmt *st = store_stmt(conn,
            "SELECT id FROM vms WHERE request_id = ?1 AND state = 'error' AND step IS NULL");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, request_id);
        int64_t ids[512];
        size_t n = 0;
        while (n < YG_ARRAY_SIZE(ids) && sqlite3_step(st) == SQLITE_ROW)
            ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        for (size_t i = 0; i < n; i++) {
            st = store_stmt(conn,
                "UPDATE vms SET host_id = NULL, ipv4 = NULL, ipv6 = NULL, mac = NULL, "
                "domain_name = NULL, domain_uuid = NULL, volume = NULL WHERE id = ?1");
            if (!st)
                return -EIO;
            sqlite3_bind_int64(st, 1, ids[i]);
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE)
                return -EIO;
            int r = vms_change(txn, by, ids[i], VM_PENDING, NULL, NULL, "vm.retry", NULL);
            if (r < 0)
                return r;
        }
        vms_engine_kick();
        return 0;
    }
    if (to == REQUEST_WITHDRAWN && from == REQUEST_APPROVED) {
        sqlite3_stmt *st = store_stmt(conn, "SELECT id FROM vms WHERE request_id = ?1 AND state = 'pending'");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, request_id);
        int64_t *ids = NULL;
        size_t n = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            ids = xrealloc(ids, (n + 1) * sizeof *ids);
            ids[n++] = sqlite3_column_int64(st, 0);
        }
        sqlite3_reset(st);
        int r = 0;
        for (size_t i = 0; i < n && r == 0; i++)
            r = finish_unbuilt(txn, by, ids[i], "the request was withdrawn");
        free(ids);
        return r;
    }
    return 0;
}

/* ---- placement ---- */

struct host_slot {
    int64_t id;
    char *name;
    struct placement_host p;
};

static int load_hosts(struct store_conn *conn, struct host_slot **ret, size_t *ret_n)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT h.id, h.name, h.hv_status = 'up', h.drained, COALESCE(h.cpus, 0), "
        "       COALESCE(h.memory_mib, 0), COALESCE(h.disk_gib, 0), "
        "       (SELECT COALESCE(SUM(v.vcpus),0) FROM vms v WHERE v.host_id = h.id"
        "        AND " VM_HELD_SQL("v.") "), "
        "       (SELECT COALESCE(SUM(v.memory_mib),0) FROM vms v WHERE v.host_id = h.id"
        "        AND " VM_HELD_SQL("v.") "), "
        "       (SELECT COALESCE(SUM(v.disk_gib),0) FROM vms v WHERE v.host_id = h.id"
        "        AND " VM_HELD_SQL("v.") ") "
        "FROM hosts h WHERE h.registered_at IS NOT NULL ORDER BY h.name");
    if (!st)
        return -EIO;
    struct host_slot *hosts = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        hosts = xrealloc(hosts, (n + 1) * sizeof *hosts);
        struct host_slot *h = &hosts[n++];
        h->id = sqlite3_column_int64(st, 0);
        h->name = xstrdup(store_column_text(st, 1));
        h->p = (struct placement_host) {
            .name = h->name, .up = sqlite3_column_int(st, 2), .drained = sqlite3_column_int(st, 3),
            .cpus = sqlite3_column_int64(st, 4), .memory_mib = sqlite3_column_int64(st, 5),
            .disk_gib = sqlite3_column_int64(st, 6), .used_vcpus = sqlite3_column_int64(st, 7),
            .used_memory_mib = sqlite3_column_int64(st, 8), .used_disk_gib = sqlite3_column_int64(st, 9),
        };
    }
    sqlite3_reset(st);
    *ret = hosts;
    *ret_n = n;
    return 0;
}

static void free_hosts(struct host_slot *hosts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(hosts[i].name);
    free(hosts);
}

static int set_waiting(struct store_txn *txn, int64_t request_id, const char *reason)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn, "SELECT waiting_reason FROM requests WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    _cleanup_free_ char *old = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        old = xstrdup(store_column_text(st, 0));
    sqlite3_reset(st);
    if (streq_ptr(old, reason))
        return 0;
    st = store_stmt(conn, "UPDATE requests SET waiting_reason = ?2 WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    store_bind_text(st, 2, reason);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    if (!reason)
        return 0;
    _cleanup_free_ char *object = xasprintf("request/%" PRId64, request_id);
    json_t *after = json_pack("{s:s, s:s}", "state", "approved", "waiting_reason", reason);
    int r = audit_append(txn, "system", "system", "request.waiting", object, NULL, after);
    json_decref(after);
    return r;
}

/* Random bytes for MACs, taken from the kernel 255 at a time (one
 * getrandom() per 85 MACs, not one each: a system call costs several
 * microseconds on a virtual machine).  Placement runs on the writer
 * thread only; the buffer is that thread's. */
static _Thread_local uint8_t mac_random[255];
static _Thread_local size_t mac_random_left;

static void random_mac(char buf[static 18])
{
    uint8_t b[3];
    if (mac_random_left < sizeof b) {
        if (random_bytes(mac_random, sizeof mac_random) == 0) {
            mac_random_left = sizeof mac_random;
        } else {
            uint64_t t = monotonic_usec();
            memcpy(mac_random, &t, sizeof b);
            mac_random_left = sizeof b;
        }
    }
    mac_random_left -= sizeof b;
    memcpy(b, mac_random + mac_random_left, sizeof b);
    snprintf(buf, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
}

static int unique_mac(struct store_conn *conn, char buf[static 18])
{
    for (int tries = 0; tries < 32; tries++) {
        random_mac(buf);
        sqlite3_stmt *st = store_stmt(conn,
            "SELECT 1 FROM vms WHERE mac = ?1");
        if (!st)
            return -EIO;
        store_bind_text(st, 1, buf);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE)
            return 0;
    }
    return -EEXIST;
}

/* Place every pending VM of one approved request, or say why not. */
/* A placement pass's address pool: one segment's free addresses, loaded
 * once for the requests of the pass on that segment (loading it reads
 * every address of the segment), and kept in step with what the pass
 * writes. */
struct pass_pool {
    int64_t segment_id;
    struct addresses_pool *pool;
};

static int place_request(struct store_txn *txn, int64_t request_id, struct host_slot *hosts,
                         size_t n_hosts, double overcommit, const char *instance, struct pass_pool *pp)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT r.segment, r.ipv6, s.id, s.state FROM requests r "
        "LEFT JOIN segments s ON s.name = r.segment WHERE r.id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return -ENOENT;
    }
    _cleanup_free_ char *segment = xstrdup(store_column_text(st, 0));
    _cleanup_free_ char *ipv6 = xstrdup(store_column_text(st, 1));
    bool has_segment = sqlite3_column_type(st, 2) != SQLITE_NULL;
    int64_t segment_id = sqlite3_column_int64(st, 2);
    _cleanup_free_ char *seg_state = xstrdup(store_column_text(st, 3));
    sqlite3_reset(st);

    if (!has_segment) {
        _cleanup_free_ char *why = xasprintf("segment '%s' is not defined yet", segment);
        return set_waiting(txn, request_id, why);
    }
    if (streq(ipv6, "required") && !streq(seg_state, "dual-stack-ready")) {
        _cleanup_free_ char *why = xasprintf("the request requires IPv6, and segment '%s' is '%s', "
                                             "not dual-stack-ready", segment, seg_state);
        return set_waiting(txn, request_id, why);
    }

    struct pvm { int64_t id; struct placement_vm p; char step[32]; bool has_step; } *vms = NULL;
    size_t n = 0;
    st = store_stmt(conn,
        "SELECT id, vcpus, memory_mib, disk_gib, step FROM vms WHERE request_id = ?1 AND state = 'pending' "
        "ORDER BY id");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        vms = xrealloc(vms, (n + 1) * sizeof *vms);
        vms[n].id = sqlite3_column_int64(st, 0);
        vms[n].p = (struct placement_vm) { sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                           sqlite3_column_int64(st, 3) };
        vms[n].has_step = sqlite3_column_type(st, 4) != SQLITE_NULL;
        snprintf(vms[n].step, sizeof vms[n].step, "%s", store_column_text(st, 4));
        n++;
    }
    sqlite3_reset(st);
    if (n == 0)
        return 0;

    /* Which hosts carry the segment. */
    struct placement_host *ph = xcalloc(n_hosts ? n_hosts : 1, sizeof *ph);
    for (size_t i = 0; i < n_hosts; i++) {
        ph[i] = hosts[i].p;
        st = store_stmt(conn, "SELECT 1 FROM host_segments WHERE host_id = ?1 AND segment_id = ?2");
        if (!st) {
            free(ph);
            free(vms);
            return -EIO;
        }
        sqlite3_bind_int64(st, 1, hosts[i].id);
        sqlite3_bind_int64(st, 2, segment_id);
        ph[i].carries = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
    }
    struct placement_vm *pv = xcalloc(n, sizeof *pv);
    for (size_t i = 0; i < n; i++)
        pv[i] = vms[i].p;
    size_t *assign = xcalloc(n, sizeof *assign);
    char *why = NULL;
    int r = placement_place(ph, n_hosts, pv, n, overcommit, segment, assign, &why);
    free(pv);
    if (r == -ENOSPC) {
        r = set_waiting(txn, request_id, why);
        goto out;
    }

    /* All or nothing, without a savepoint of its own: everything that can
     * run out (MACs, addresses) is chosen first, in memory, and only then
     * is anything written.  A failure while writing fails the whole job,
     * and the store takes the writes back (the engine runs placement as a
     * STORE_JOB_WRITES_LAST job, without a savepoint: its group is rolled
     * back).  (A savepoint per request nested in the job's made SQLite
     * copy every page the UPDATEs touched into its sub-journal: ~100 us
     * per VM; and inside the job's savepoint each placement UPDATE, whose
     * foreign key check opens a statement journal, paid for the whole
     * savepoint's journal again.) */
    struct chosen { char mac[18], v4[IP_ADDR_STRLEN], v6[IP_ADDR_STRLEN]; } *chosen = xcalloc(n, sizeof *chosen);
    if (pp->pool && pp->segment_id != segment_id) {
        addresses_pool_free(pp->pool);
        pp->pool = NULL;
    }
    if (!pp->pool) {
        r = addresses_pool_load(conn, segment_id, &pp->pool);
        pp->segment_id = segment_id;
    }
    struct addresses_pool *pool = pp->pool;
    for (size_t i = 0; i < n && r == 0; i++) {
        /* Unique among the store's live VMs and this request's (not yet written). */
        for (int tries = 0;; tries++) {
            if ((r = unique_mac(conn, chosen[i].mac)) < 0)
                break;
            size_t k = 0;
            while (k < i && !streq(chosen[k].mac, chosen[i].mac))
                k++;
            if (k == i)
                break;
            if (tries == 32) {
                r = -EEXIST;
                break;
            }
        }
        if (r < 0)
            break;
        r = addresses_pool_take(pool, chosen[i].mac, !streq(ipv6, "off"), chosen[i].v4, chosen[i].v6, &why);
    }
    if (r < 0) {
        /* What this request took is not written: the next one reloads. */
        addresses_pool_free(pp->pool);
        pp->pool = NULL;
    }
    if (r == -ENOSPC) {
        free(chosen);
        r = set_waiting(txn, request_id, why);
        goto out;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        struct host_slot *h = &hosts[assign[i]];
        const char *mac = chosen[i].mac, *v4 = chosen[i].v4, *v6 = chosen[i].v6;
        char dom[64], uuid[37];
        vms_domain_name(instance, vms[i].id, dom);
        vms_domain_uuid(instance, vms[i].id, uuid);
        _cleanup_free_ char *volume = xasprintf("%s.qcow2", dom);
        /* Placed and journalled in one write: pending -> provisioning with
         * the intent 'build' next (what vms_change() would write, and the
         * same audit entry). */
        char at[32];
        format_utc_now(at);
        st = store_stmt(conn,
            "UPDATE vms SET host_id = ?2, mac = ?3, ipv4 = ?4, ipv6 = ?5, domain_name = ?6, "
            "domain_uuid = ?7, volume = ?8, state = 'provisioning', step = 'build', step_at = ?9, "
            "step_retry_epoch = NULL, error = NULL, updated_at = ?9 WHERE id = ?1 AND state = 'pending'");
        if (!st) {
            r = -EIO;
            break;
        }
        sqlite3_bind_int64(st, 1, vms[i].id);
        sqlite3_bind_int64(st, 2, h->id);
        store_bind_text(st, 3, mac);
        store_bind_text(st, 4, *v4 ? v4 : NULL);
        store_bind_text(st, 5, *v6 ? v6 : NULL);
        store_bind_text(st, 6, dom);
        store_bind_text(st, 7, uuid);
        store_bind_text(st, 8, volume);
        store_bind_text(st, 9, at);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE || sqlite3_changes(store_conn_db(conn)) != 1) {
            r = -EIO;
            break;
        }
        json_t *extra = json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "host", h->name, "domain", dom,
                                  "mac", mac, "ipv4", *v4 ? v4 : NULL, "ipv6", *v6 ? v6 : NULL);
        r = vm_changed(txn, &system_principal, vms[i].id, request_id, VM_PENDING,
                       vms[i].has_step ? vms[i].step : NULL, VM_PROVISIONING, "build", NULL, "vm.place", extra);
        json_decref(extra);
    }
    free(chosen);
    if (r < 0)
        goto out;       /* the job fails: the store takes back what was written */
    for (size_t i = 0; i < n_hosts; i++) {
        hosts[i].p.used_vcpus = ph[i].used_vcpus;
        hosts[i].p.used_memory_mib = ph[i].used_memory_mib;
        hosts[i].p.used_disk_gib = ph[i].used_disk_gib;
    }
    r = set_waiting(txn, request_id, NULL);
    if (r == 0) {
        struct yg_error *e = NULL;
        r = lifecycle_apply(txn, &system_principal, request_id, REQUEST_ACTION_PROVISION,
                            "placed on hypervisor hosts", &e);
        if (r < 0)
            log_warn(LOG_DOMAIN, "request %" PRId64 ": %s", request_id, e ? e->message : strerror(-r));
        yg_error_free(e);
    }
out:
    free(why);
    free(ph);
    free(assign);
    free(vms);
    return r;
}

static double placement_overcommit = 4.0;
static bool decommission_approval = true;

void vms_set_decommission_approval(bool needed)
{
    decommission_approval = needed;
}

bool vms_decommission_approval(void)
{
    return decommission_approval;
}

void vms_set_overcommit(double ratio)
{
    placement_overcommit = ratio > 0 ? ratio : 4.0;
}

double vms_overcommit(void)
{
    return placement_overcommit;
}

int vms_place_pending(struct store_txn *txn)
{
    struct store_conn *conn = store_txn_conn(txn);
    char instance[32];
    if (vms_instance(conn, instance) < 0)
        return -EIO;
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT DISTINCT r.id FROM requests r JOIN vms v ON v.request_id = r.id "
        "WHERE r.state = 'approved' AND v.state = 'pending' ORDER BY r.id LIMIT ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int(st, 1, PLACE_REQUESTS_PER_PASS);
    int64_t ids[PLACE_REQUESTS_PER_PASS];
    size_t n = 0;
    while (n < YG_ARRAY_SIZE(ids) && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (n == 0)
        return 0;
    struct host_slot *hosts;
    size_t n_hosts;
    if (load_hosts(conn, &hosts, &n_hosts) < 0)
        return -EIO;
    int r = 0;
    struct pass_pool pool = { 0 };
    for (size_t i = 0; i < n && r == 0; i++)
        r = place_request(txn, ids[i], hosts, n_hosts, placement_overcommit, instance, &pool);
    addresses_pool_free(pool.pool);
    free_hosts(hosts, n_hosts);
    return r;
}

/* ---- reads ---- */

#define VM_COLUMNS \
    "SELECT v.id, v.name, v.request_id, r.name, d.name, v.state, v.step, v.error, h.name, " \
    "       v.vcpus, v.memory_mib, v.disk_gib, v.image, s.name, v.ipv4, v.ipv6, v.mac, " \
    "       v.domain_name, v.lease_until, v.lease_state, v.created_at, v.updated_at, " \
    "       v.department_id, v.volume, v.wipe_method, v.lease_notice_at, v.decommission_by, " \
    "       (SELECT notice_days FROM lease_policies lp WHERE lp.department_id = v.department_id), " \
    "       (SELECT grace_days FROM lease_policies lp WHERE lp.department_id = v.department_id), " \
    "       r.waiting_reason " \
    "FROM vms v JOIN requests r ON r.id = v.request_id JOIN departments d ON d.id = v.department_id " \
    "LEFT JOIN hosts h ON h.id = v.host_id LEFT JOIN segments s ON s.id = v.segment_id "

static int lease_notice_days = 14, lease_grace_days = 7;

void vms_set_lease_defaults(int notice_days, int grace_days)
{
    lease_notice_days = notice_days;
    lease_grace_days = grace_days;
}

static json_t *tn(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : json_string(store_column_text(st, i));
}

static json_t *vm_row_json(sqlite3_stmt *st)
{
    json_t *vm = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:i, s:I, s:I, s:s, s:o, "
                           "s:o, s:o, s:o, s:o, s:s, s:s, s:s}",
        "id", (json_int_t) sqlite3_column_int64(st, 0), "name", store_column_text(st, 1),
        "request_id", (json_int_t) sqlite3_column_int64(st, 2), "request", store_column_text(st, 3),
        "department", store_column_text(st, 4), "state", store_column_text(st, 5),
        "step", tn(st, 6), "error", tn(st, 7), "host", tn(st, 8),
        "vcpus", sqlite3_column_int(st, 9), "memory_mib", (json_int_t) sqlite3_column_int64(st, 10),
        "disk_gib", (json_int_t) sqlite3_column_int64(st, 11), "image", store_column_text(st, 12),
        "segment", tn(st, 13), "ipv4", tn(st, 14), "ipv6", tn(st, 15), "mac", tn(st, 16),
        "domain", tn(st, 17), "lease_until", store_column_text(st, 18),
        "created_at", store_column_text(st, 20), "updated_at", store_column_text(st, 21));
    const char *lease_state = (const char *) sqlite3_column_text(st, 19);
    int notice = sqlite3_column_type(st, 27) == SQLITE_NULL ? lease_notice_days : sqlite3_column_int(st, 27);
    int grace = sqlite3_column_type(st, 28) == SQLITE_NULL ? lease_grace_days : sqlite3_column_int(st, 28);
    json_t *lease = json_pack("{s:s, s:s?, s:i, s:i}", "until", store_column_text(st, 18),
                              "state", lease_state, "notice_days", notice, "grace_days", grace);
    if (lease_state && streq(lease_state, "notice"))
        json_object_set_new(lease, "notice", json_sprintf(
            "the lease ends on %s: the VM will be stopped then, and decommissioned %d days later "
            "unless the lease is extended", store_column_text(st, 18), grace));
    else if (lease_state && streq(lease_state, "expired"))
        json_object_set_new(lease, "notice", json_sprintf(
            "the lease ended on %s: the VM is stopped and will be decommissioned after the %d-day grace period",
            store_column_text(st, 18), grace));
    json_object_set_new(vm, "lease", lease);
    if (sqlite3_column_type(st, 29) != SQLITE_NULL && streq(store_column_text(st, 5), "pending"))
        json_object_set_new(vm, "waiting_reason", json_string(store_column_text(st, 29)));
    return vm;
}

static json_t *vm_json(struct store_conn *conn, int64_t id, int64_t *ret_department_id, bool history);

json_t *vms_get_json(struct store_conn *conn, int64_t id, int64_t *ret_department_id)
{
    return vm_json(conn, id, ret_department_id, true);
}

/* Without the history: the answer to an action. */
static json_t *vm_brief_json(struct store_conn *conn, int64_t id)
{
    return vm_json(conn, id, NULL, false);
}

static json_t *vm_json(struct store_conn *conn, int64_t id, int64_t *ret_department_id, bool with_history)
{
    sqlite3_stmt *st = store_stmt(conn, VM_COLUMNS "WHERE v.id = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return NULL;
    }
    json_t *vm = vm_row_json(st);
    json_object_set_new(vm, "volume", tn(st, 23));
    json_object_set_new(vm, "wipe_method", tn(st, 24));
    json_object_set_new(vm, "decommission_by", tn(st, 26));
    if (ret_department_id)
        *ret_department_id = sqlite3_column_int64(st, 22);
    sqlite3_reset(st);
    if (!with_history)
        return vm;
    /* Its history, from the audit trail. */
    json_t *history = json_array();
    _cleanup_free_ char *object = xasprintf("vm/%" PRId64, id);
    st = store_stmt(conn, "SELECT at, actor, role, action, after FROM audit WHERE object = ?1 ORDER BY id");
    if (st) {
        store_bind_text(st, 1, object);
        while (sqlite3_step(st) == SQLITE_ROW) {
            json_t *after = json_loads(store_column_text(st, 4), 0, NULL);
            json_array_append_new(history, json_pack("{s:s, s:s, s:s, s:s, s:o}",
                "at", store_column_text(st, 0), "actor", store_column_text(st, 1),
                "role", store_column_text(st, 2), "action", store_column_text(st, 3),
                "after", after ? after : json_null()));
        }
        sqlite3_reset(st);
    }
    json_object_set_new(vm, "history", history);
    return vm;
}

json_t *vms_list_json(struct store_conn *conn, int64_t department_id, int64_t request_id, int state,
                      int64_t after, int limit)
{
    sqlite3_stmt *st = store_stmt(conn, VM_COLUMNS
        "WHERE v.id > ?1 AND (?2 = 0 OR v.department_id = ?2) AND (?3 = 0 OR v.request_id = ?3) "
        "AND (?4 IS NULL OR v.state = ?4) ORDER BY v.id LIMIT ?5");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, department_id);
    sqlite3_bind_int64(st, 3, request_id);
    store_bind_text(st, 4, state >= 0 ? state_names[state] : NULL);
    sqlite3_bind_int(st, 5, limit + 1);
    json_t *items = json_array();
    int n = 0;
    bool more = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == limit) {
            more = true;
            break;
        }
        json_array_append_new(items, vm_row_json(st));
        n++;
    }
    sqlite3_reset(st);
    json_t *next = json_null();
    if (more)
        next = json_integer(json_integer_value(json_object_get(json_array_get(items, (size_t) n - 1), "id")));
    return json_pack("{s:o, s:o}", "items", items, "next", next);
}

json_t *vms_reclaim_json(struct store_conn *conn, int64_t vm_id)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT id, host, domain_name, freed, wipe_method, requested_by, approved_by, at "
        "FROM reclaims WHERE vm_id = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, vm_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return NULL;
    }
    json_t *freed = json_loads(store_column_text(st, 3), 0, NULL);
    json_t *r = json_pack("{s:I, s:I, s:o, s:o, s:o, s:s, s:s, s:o, s:s}",
        "id", (json_int_t) sqlite3_column_int64(st, 0), "vm", (json_int_t) vm_id,
        "host", tn(st, 1), "domain", tn(st, 2), "freed", freed ? freed : json_null(),
        "wipe_method", store_column_text(st, 4), "requested_by", store_column_text(st, 5),
        "approved_by", tn(st, 6), "at", store_column_text(st, 7));
    sqlite3_reset(st);
    return r;
}

static json_t *decommission_request_json(struct store_conn *conn, int64_t id)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT dr.id, dr.vm_id, v.name, d.name, dr.state, dr.requested_by, dr.reason, dr.decided_by, "
        "       dr.decision_reason, dr.created_at, dr.decided_at "
        "FROM decommission_requests dr JOIN vms v ON v.id = dr.vm_id "
        "JOIN departments d ON d.id = v.department_id WHERE dr.id = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    json_t *j = NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        j = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o}",
            "id", (json_int_t) sqlite3_column_int64(st, 0), "vm", (json_int_t) sqlite3_column_int64(st, 1),
            "vm_name", store_column_text(st, 2), "department", store_column_text(st, 3),
            "state", store_column_text(st, 4), "requested_by", store_column_text(st, 5),
            "reason", tn(st, 6), "decided_by", tn(st, 7), "decision_reason", tn(st, 8),
            "created_at", store_column_text(st, 9), "decided_at", tn(st, 10));
    sqlite3_reset(st);
    return j;
}

json_t *vms_decommission_requests_json(struct store_conn *conn, int64_t department_id, const char *state)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT dr.id FROM decommission_requests dr JOIN vms v ON v.id = dr.vm_id "
        "WHERE (?1 = 0 OR v.department_id = ?1) AND (?2 IS NULL OR dr.state = ?2) "
        "ORDER BY dr.id DESC LIMIT 500");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, department_id);
    store_bind_text(st, 2, state);
    int64_t ids[500];
    size_t n = 0;
    while (n < YG_ARRAY_SIZE(ids) && sqlite3_step(st) == SQLITE_ROW)
        ids[n++] = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *j = decommission_request_json(conn, ids[i]);
        if (j)
            json_array_append_new(items, j);
    }
    return json_pack("{s:o}", "items", items);
}

/* ---- actions ---- */

struct vm_brief {
    int64_t id, department_id, request_id;
    enum vm_state state;
    bool has_step, has_host;
    char step[32];
};

static int vm_brief(struct store_conn *conn, const struct principal *by, int64_t id,
                    struct vm_brief *ret, struct yg_error **ret_error)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT state, department_id, request_id, step, host_id FROM vms WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW ||
        (by->role == ROLE_DEPARTMENT && by->department_id != sqlite3_column_int64(st, 1))) {
        sqlite3_reset(st);
        /* A department cannot learn that another department's VM exists. */
        *ret_error = yg_error_new(404, "not_found", "VM %" PRId64 " does not exist", id);
        return -ENOENT;
    }
    ret->id = id;
    ret->state = (enum vm_state) vm_state_from_string(store_column_text(st, 0));
    ret->department_id = sqlite3_column_int64(st, 1);
    ret->request_id = sqlite3_column_int64(st, 2);
    ret->has_step = sqlite3_column_type(st, 3) != SQLITE_NULL;
    snprintf(ret->step, sizeof ret->step, "%s", store_column_text(st, 3));
    ret->has_host = sqlite3_column_type(st, 4) != SQLITE_NULL;
    sqlite3_reset(st);
    return 0;
}

int vms_set_step(struct store_txn *txn, int64_t id, const char *step)
{
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(store_txn_conn(txn),
        "UPDATE vms SET step = ?2, step_at = CASE WHEN ?2 IS NULL THEN NULL ELSE ?3 END, "
        "step_retry_epoch = NULL, updated_at = ?3 WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, step);
    store_bind_text(st, 3, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int vms_action(struct store_txn *txn, const struct principal *by, int64_t id, enum vm_action action,
               json_t **ret_vm, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    struct vm_brief vm;
    int r = vm_brief(conn, by, id, &vm, ret_error);
    if (r < 0)
        return r;
    bool ok = action == VM_ACTION_START ? vm.state == VM_STOPPED
            : action == VM_ACTION_STOP ? vm.state == VM_RUNNING
            : vm.state == VM_RUNNING;
    if (!ok || vm.has_step) {
        *ret_error = yg_error_new(409, "illegal_transition",
            vm.has_step ? "VM %" PRId64 " cannot %s now: it is '%s' and step '%s' is under way"
                        : "VM %" PRId64 " cannot %s: it is '%s'%s%s",
            id, action_names[action], state_names[vm.state],
            vm.has_step ? vm.step : (action == VM_ACTION_START ? " (start needs 'stopped')"
                                     : " (stop and reboot need 'running')"), "");
        return -EBUSY;
    }
    r = vms_set_step(txn, id, action_names[action]);
    if (r < 0)
        return r;
    _cleanup_free_ char *object = xasprintf("vm/%" PRId64, id);
    _cleanup_free_ char *audit_action = xasprintf("vm.%s-requested", action_names[action]);
    json_t *before = json_pack("{s:s}", "state", state_names[vm.state]);
    json_t *after = json_pack("{s:s, s:s}", "state", state_names[vm.state], "step", action_names[action]);
    r = audit_append(txn, by->actor, actor_role(by), audit_action, object, before, after);
    json_decref(before);
    json_decref(after);
    if (r < 0)
        return r;
    vms_engine_kick();
    *ret_vm = vm_brief_json(conn, id);
    return *ret_vm ? 0 : -EIO;
}

/* The reclaim record and the end: addresses released, state decommissioned. */
int vms_finish_decommission(struct store_txn *txn, int64_t vm_id, const char *wipe_override,
                            const char *expect_step)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT v.vcpus, v.memory_mib, v.disk_gib, v.ipv4, v.ipv6, v.mac, v.domain_name, v.volume, "
        "       h.name, h.storage_pool, v.wipe_method, v.decommission_by, v.decommission_approved_by, "
        "       s.name, v.state, v.request_id, v.step "
        "FROM vms v LEFT JOIN hosts h ON h.id = v.host_id LEFT JOIN segments s ON s.id = v.segment_id "
        "WHERE v.id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, vm_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        return -ENOENT;
    }
    bool built = sqlite3_column_type(st, 6) != SQLITE_NULL && !wipe_override;
    json_t *volumes = json_array();
    if (built && sqlite3_column_type(st, 7) != SQLITE_NULL)
        json_array_append_new(volumes, json_pack("{s:s, s:o, s:I}", "name", store_column_text(st, 7),
            "pool", tn(st, 9), "size_gib", (json_int_t) sqlite3_column_int64(st, 2)));
    json_t *freed = json_pack("{s:i, s:I, s:I, s:o, s:{s:o, s:o, s:o, s:o}, s:o, s:o}",
        "vcpus", sqlite3_column_int(st, 0), "memory_mib", (json_int_t) sqlite3_column_int64(st, 1),
        "disk_gib", (json_int_t) sqlite3_column_int64(st, 2), "volumes", volumes,
        "addresses", "segment", tn(st, 13), "ipv4", tn(st, 3), "ipv6", tn(st, 4), "mac", tn(st, 5),
        "domain", built ? tn(st, 6) : json_null(), "host", tn(st, 8));
    _cleanup_free_ char *host = sqlite3_column_type(st, 8) == SQLITE_NULL ? NULL : xstrdup(store_column_text(st, 8));
    _cleanup_free_ char *domain = built ? xstrdup(store_column_text(st, 6)) : NULL;
    _cleanup_free_ char *wipe = xstrdup(wipe_override ? wipe_override
                                        : sqlite3_column_type(st, 10) == SQLITE_NULL ? "none: no volume"
                                        : store_column_text(st, 10));
    _cleanup_free_ char *requested_by = xstrdup(sqlite3_column_type(st, 11) == SQLITE_NULL ? "system"
                                                : store_column_text(st, 11));
    _cleanup_free_ char *approved_by = sqlite3_column_type(st, 12) == SQLITE_NULL ? NULL
                                       : xstrdup(store_column_text(st, 12));
    int state = vm_state_from_string(store_column_text(st, 14));
    int64_t request_id = sqlite3_column_int64(st, 15);
    _cleanup_free_ char *old_step = sqlite3_column_type(st, 16) == SQLITE_NULL ? NULL
                                    : xstrdup(store_column_text(st, 16));
    sqlite3_reset(st);
    if (state < 0) {
        json_decref(freed);
        return -EIO;
    }
    if (expect_step && !streq_ptr(old_step, expect_step)) {
        json_decref(freed);
        return -ESTALE;
    }

    char at[32];
    format_utc_now(at);
    _cleanup_free_ char *freed_text = json_dumps(freed, JSON_COMPACT | JSON_PRESERVE_ORDER);
    st = store_stmt(conn,
        "INSERT INTO reclaims (vm_id, host, domain_name, freed, wipe_method, requested_by, approved_by, at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    int rc = SQLITE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, vm_id);
        store_bind_text(st, 2, host);
        store_bind_text(st, 3, domain);
        store_bind_text(st, 4, freed_text);
        store_bind_text(st, 5, wipe);
        store_bind_text(st, 6, requested_by);
        store_bind_text(st, 7, approved_by);
        store_bind_text(st, 8, at);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    if (rc != SQLITE_DONE) {
        json_decref(freed);
        return -EIO;
    }
    /* Decommissioned, and the addresses go back to the segment, in one write. */
    json_t *extra = json_pack("{s:o, s:s}", "freed", freed, "wipe_method", wipe);
    struct vm_known known = { (enum vm_state) state, request_id, old_step };
    struct change_more more = { .release_addresses = true };
    int r = change(txn, &system_principal, vm_id, &known, VM_DECOMMISSIONED, NULL, NULL, "vm.reclaimed", extra,
                   &more);
    json_decref(extra);
    return r;
}

static int finish_unbuilt(struct store_txn *txn, const struct principal *by, int64_t vm_id,
                          const char *why)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "UPDATE vms SET decommission_by = COALESCE(decommission_by, ?2) WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, vm_id);
    store_bind_text(st, 2, by->actor);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    _cleanup_free_ char *method = xasprintf("none: nothing was built (%s)", why);
    return vms_finish_decommission(txn, vm_id, method, NULL);
}

static int start_decommission(struct store_txn *txn, const struct principal *by, struct vm_brief *vm,
                              const char *approved_by, const char *reason, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    if (vm->state == VM_DECOMMISSIONED || vm->state == VM_STOPPING || vm->state == VM_DECOMMISSIONING) {
        *ret_error = yg_error_new(409, "illegal_transition", "VM %" PRId64 " is already '%s'",
                                  vm->id, state_names[vm->state]);
        return -EBUSY;
    }
    if (vm->state == VM_PROVISIONING || (vm->has_step && !streq(vm->step, "stop") &&
                                         !streq(vm->step, "start") && !streq(vm->step, "reboot"))) {
        *ret_error = yg_error_new(409, "illegal_transition",
            "VM %" PRId64 " cannot be decommissioned while step '%s' is under way; try again when it is done",
            vm->id, vm->has_step ? vm->step : "provisioning");
        return -EBUSY;
    }
    if (vm->state == VM_PENDING || !vm->has_host) {
        if (!vm_transition_allowed(vm->state, VM_DECOMMISSIONED)) {
            *ret_error = yg_error_new(409, "illegal_transition",
                                      "VM %" PRId64 " has no host and cannot be decommissioned while '%s'",
                                      vm->id, state_names[vm->state]);
            return -EBUSY;
        }
        sqlite3_stmt *st = store_stmt(conn,
            "UPDATE vms SET decommission_by = ?2, decommission_approved_by = ?3 WHERE id = ?1");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, vm->id);
        store_bind_text(st, 2, by->actor);
        store_bind_text(st, 3, approved_by);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return -EIO;
        return finish_unbuilt(txn, by, vm->id, "decommissioned before placement");
    }
    if (!vm_transition_allowed(vm->state, VM_STOPPING)) {
        *ret_error = yg_error_new(409, "illegal_transition",
                                  "VM %" PRId64 " cannot be decommissioned while '%s'", vm->id,
                                  state_names[vm->state]);
        return -EBUSY;
    }
    /* Who asked (and who approved) in the same write as the state: every
     * check is made before anything is written. */
    json_t *extra = json_pack("{s:s?, s:s?}", "reason", reason, "approved_by", approved_by);
    struct vm_known known = { vm->state, vm->request_id, vm->has_step ? vm->step : NULL };
    struct change_more more = { .decommission = true, .decommission_by = by->actor,
                                .decommission_approved_by = approved_by };
    int r = change(txn, by, vm->id, &known, VM_STOPPING, "shutdown", NULL, "vm.decommission", extra, &more);
    json_decref(extra);
    vms_engine_kick();
    return r;
}

int vms_decommission(struct store_txn *txn, const struct principal *by, int64_t id,
                     const char *reason, bool needs_approval, json_t **ret_answer,
                     struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    struct vm_brief vm;
    int r = vm_brief(conn, by, id, &vm, ret_error);
    if (r < 0)
        return r;
    if (by->role == ROLE_DEPARTMENT && needs_approval) {
        if (vm.state == VM_DECOMMISSIONED || vm.state == VM_STOPPING || vm.state == VM_DECOMMISSIONING) {
            *ret_error = yg_error_new(409, "illegal_transition", "VM %" PRId64 " is already '%s'",
                                      id, state_names[vm.state]);
            return -EBUSY;
        }
        char at[32];
        format_utc_now(at);
        sqlite3_stmt *st = store_stmt(conn,
            "INSERT INTO decommission_requests (vm_id, state, requested_by, reason, created_at) "
            "VALUES (?1, 'pending', ?2, ?3, ?4)");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, id);
        store_bind_text(st, 2, by->actor);
        store_bind_text(st, 3, reason);
        store_bind_text(st, 4, at);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT) {
            *ret_error = yg_error_new(409, "conflict",
                "a decommission of VM %" PRId64 " is already waiting for cloud operations", id);
            return -EEXIST;
        }
        if (rc != SQLITE_DONE)
            return -EIO;
        int64_t dr = sqlite3_last_insert_rowid(store_conn_db(conn));
        json_t *j = decommission_request_json(conn, dr);
        _cleanup_free_ char *object = xasprintf("vm/%" PRId64, id);
        r = audit_append(txn, by->actor, actor_role(by), "vm.decommission-requested", object, NULL, j);
        if (r < 0) {
            json_decref(j);
            return r;
        }
        *ret_answer = json_pack("{s:o}", "decommission_request", j);
        return 0;
    }
    r = start_decommission(txn, by, &vm, NULL, reason, ret_error);
    if (r < 0)
        return r;
    *ret_answer = json_pack("{s:o}", "vm", vm_brief_json(conn, id));
    return 0;
}

int vms_decommission_decide(struct store_txn *txn, const struct principal *by, int64_t request_id,
                            bool approve, const char *reason, json_t **ret_answer,
                            struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT vm_id, state, requested_by FROM decommission_requests WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        *ret_error = yg_error_new(404, "not_found", "decommission request %" PRId64 " does not exist", request_id);
        return -ENOENT;
    }
    int64_t vm_id = sqlite3_column_int64(st, 0);
    _cleanup_free_ char *state = xstrdup(store_column_text(st, 1));
    _cleanup_free_ char *requested_by = xstrdup(store_column_text(st, 2));
    sqlite3_reset(st);
    if (!streq(state, "pending")) {
        *ret_error = yg_error_new(409, "illegal_transition",
                                  "decommission request %" PRId64 " was already %s", request_id, state);
        return -EBUSY;
    }
    char at[32];
    format_utc_now(at);
    st = store_stmt(conn,
        "UPDATE decommission_requests SET state = ?2, decided_by = ?3, decision_reason = ?4, decided_at = ?5 "
        "WHERE id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    store_bind_text(st, 2, approve ? "approved" : "rejected");
    store_bind_text(st, 3, by->actor);
    store_bind_text(st, 4, reason);
    store_bind_text(st, 5, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    _cleanup_free_ char *object = xasprintf("vm/%" PRId64, vm_id);
    json_t *after = json_pack("{s:I, s:s, s:s?}", "decommission_request", (json_int_t) request_id,
                              "decision", approve ? "approved" : "rejected", "reason", reason);
    int r = audit_append(txn, by->actor, actor_role(by),
                         approve ? "vm.decommission-approved" : "vm.decommission-rejected", object, NULL, after);
    json_decref(after);
    if (r < 0)
        return r;
    if (approve) {
        struct vm_brief vm;
        r = vm_brief(conn, by, vm_id, &vm, ret_error);
        if (r < 0)
            return r;
        /* The department asked: it is the requester, operations approved. */
        struct principal asker = { .role = ROLE_DEPARTMENT };
        snprintf(asker.actor, sizeof asker.actor, "%s", requested_by);
        r = start_decommission(txn, &asker, &vm, by->actor, reason, ret_error);
        if (r < 0)
            return r;
    }
    *ret_answer = json_pack("{s:o, s:o}", "decommission_request", decommission_request_json(conn, request_id),
                            "vm", vm_brief_json(conn, vm_id));
    return 0;
}

/* ---- leases ---- */

int vms_lease_policy_set(struct store_txn *txn, const struct principal *by, const char *department,
                         int notice_days, int grace_days, json_t **ret, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn, "SELECT id FROM departments WHERE name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, department);
    int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (!id) {
        *ret_error = yg_error_new(404, "not_found", "department '%s' does not exist", department);
        return -ENOENT;
    }
    json_t *before = vms_lease_policy_json(conn, department);
    char at[32];
    format_utc_now(at);
    st = store_stmt(conn,
        "INSERT INTO lease_policies (department_id, notice_days, grace_days, updated_at) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (department_id) DO UPDATE SET notice_days = excluded.notice_days, "
        "grace_days = excluded.grace_days, updated_at = excluded.updated_at");
    if (!st) {
        json_decref(before);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, notice_days);
    sqlite3_bind_int(st, 3, grace_days);
    store_bind_text(st, 4, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(before);
        return -EIO;
    }
    json_t *after = vms_lease_policy_json(conn, department);
    _cleanup_free_ char *object = xasprintf("lease-policy/%s", department);
    int r = audit_append(txn, by->actor, actor_role(by), "lease-policy.set", object, before, after);
    json_decref(before);
    if (r < 0) {
        json_decref(after);
        return r;
    }
    *ret = after;
    return 0;
}

json_t *vms_lease_policy_json(struct store_conn *conn, const char *department)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT d.name, lp.notice_days, lp.grace_days, lp.updated_at FROM departments d "
        "LEFT JOIN lease_policies lp ON lp.department_id = d.id WHERE d.name = ?1");
    if (!st)
        return NULL;
    store_bind_text(st, 1, department);
    json_t *j = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        bool set = sqlite3_column_type(st, 1) != SQLITE_NULL;
        j = json_pack("{s:s, s:i, s:i, s:b, s:o}", "department", store_column_text(st, 0),
                      "notice_days", set ? sqlite3_column_int(st, 1) : lease_notice_days,
                      "grace_days", set ? sqlite3_column_int(st, 2) : lease_grace_days,
                      "default", !set, "updated_at", tn(st, 3));
    }
    sqlite3_reset(st);
    return j;
}

int vms_lease_sweep(struct store_txn *txn, int64_t now)
{
    struct store_conn *conn = store_txn_conn(txn);
    char today[16];
    time_t t = (time_t) now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    /* The lease runs through its last day: expired once that day is past. */
    static const char *const sql =
        "SELECT v.id, v.state, v.lease_state, v.lease_until, v.step IS NOT NULL, "
        "  julianday(?1) >= julianday(v.lease_until) - COALESCE(lp.notice_days, ?2), "
        "  julianday(?1) > julianday(v.lease_until), "
        "  julianday(?1) > julianday(v.lease_until) + COALESCE(lp.grace_days, ?3) "
        "FROM vms v LEFT JOIN lease_policies lp ON lp.department_id = v.department_id "
        "WHERE " VM_HELD_SQL("v.") " AND v.state IN ('running','stopped','error','unknown','pending') "
        "  AND julianday(?1) >= julianday(v.lease_until) - COALESCE(lp.notice_days, ?2) "
        "ORDER BY v.id LIMIT 500";
    sqlite3_stmt *st = store_stmt(conn, sql);
    if (!st)
        return -EIO;
    store_bind_text(st, 1, today);
    sqlite3_bind_int(st, 2, lease_notice_days);
    sqlite3_bind_int(st, 3, lease_grace_days);
    struct due { int64_t id; int state; char lease_state[16]; char until[16]; bool busy, notice, expired, over; } *due = NULL;
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        due = xrealloc(due, (n + 1) * sizeof *due);
        due[n].id = sqlite3_column_int64(st, 0);
        due[n].state = vm_state_from_string(store_column_text(st, 1));
        snprintf(due[n].lease_state, sizeof due[n].lease_state, "%s", store_column_text(st, 2));
        snprintf(due[n].until, sizeof due[n].until, "%s", store_column_text(st, 3));
        due[n].busy = sqlite3_column_int(st, 4);
        due[n].notice = sqlite3_column_int(st, 5);
        due[n].expired = sqlite3_column_int(st, 6);
        due[n].over = sqlite3_column_int(st, 7);
        n++;
    }
    sqlite3_reset(st);
    char at[32];
    format_utc_now(at);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        struct due *d = &due[i];
        _cleanup_free_ char *object = xasprintf("vm/%" PRId64, d->id);
        const char *new_state = NULL, *action = NULL;
        if (!d->expired && !*d->lease_state) {
            new_state = "notice";
            action = "vm.lease-notice";
        } else if (d->expired && !d->over && !streq(d->lease_state, "expired")) {
            new_state = "expired";
            action = "vm.lease-expired";
        }
        if (new_state) {
            st = store_stmt(conn,
                "UPDATE vms SET lease_state = ?2, lease_notice_at = COALESCE(lease_notice_at, ?3) WHERE id = ?1");
            if (!st) {
                r = -EIO;
                break;
            }
            sqlite3_bind_int64(st, 1, d->id);
            store_bind_text(st, 2, new_state);
            store_bind_text(st, 3, at);
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE) {
                r = -EIO;
                break;
            }
            json_t *after = json_pack("{s:s, s:s}", "lease_state", new_state, "lease_until", d->until);
            r = audit_append(txn, "system", "system", action, object, NULL, after);
            json_decref(after);
            if (r < 0)
                break;
        }
        if (d->expired && !d->over && d->state == VM_RUNNING && !d->busy) {
            /* Stop at expiry (journalled like any stop). */
            r = vms_set_step(txn, d->id, "stop");
            if (r == 0) {
                json_t *after = json_pack("{s:s, s:s}", "state", "running", "step", "stop");
                r = audit_append(txn, "system", "system", "vm.stop-requested", object, NULL, after);
                json_decref(after);
            }
        } else if (d->over && !d->busy) {
            struct vm_brief vm;
            struct yg_error *e = NULL;
            if (vm_brief(conn, &system_principal, d->id, &vm, &e) == 0) {
                if (streq(d->lease_state, "expired") || !*d->lease_state) {
                    st = store_stmt(conn, "UPDATE vms SET lease_state = 'over' WHERE id = ?1");
                    if (st) {
                        sqlite3_bind_int64(st, 1, d->id);
                        sqlite3_step(st);
                        sqlite3_reset(st);
                    }
                }
                r = start_decommission(txn, &system_principal, &vm, NULL,
                                       "the lease and its grace period are over", &e);
                if (r == -EBUSY)
                    r = 0;
            }
            yg_error_free(e);
        }
    }
    free(due);
    if (n)
        vms_engine_kick();
    return r;
}

/* The hypervisor layer and the VM engine against libvirt's in-process
 * test driver (test:///default): the synchronous helpers with libvirt's
 * messages, the host workers and lifecycle events, and the whole loop —
 * approval, placement, journalled provisioning, stop/start, decommission
 * with its reclaim record, leases, placement waiting with a reason, and
 * a journal resumed after a "crash". */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "addresses.h"
#include "auth.h"
#include "hosts.h"
#include "hypervisor.h"
#include "lifecycle.h"
#include "quota.h"
#include "request.h"
#include "requests.h"
#include "store.h"
#include "util.h"
#include "vms.h"
#include "vms-priv.h"
#include "../store-files.h"

#define TEST_URI "test:///default"
#define TEST_POOL "default-pool"

static const char *const domain_xml_fmt =
    "<domain type='test'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
    "<os><type arch='x86_64'>hvm</type></os></domain>";

static void test_helpers(void **state)
{
    hv_silence_errors();
    char *err = NULL;
    virConnectPtr conn = hv_open(TEST_URI, &err);
    assert_non_null(conn);

    struct hv_capacity cap;
    assert_int_equal(hv_capacity_get(conn, TEST_POOL, &cap, &err), 0);
    assert_int_equal(cap.cpus, 16);
    assert_true(cap.memory_mib > 0);
    assert_int_equal(cap.disk_gib, 100);
    assert_int_equal(hv_capacity_get(conn, "no-such-pool", &cap, &err), -EIO);
    assert_non_null(strstr(err, "storage pool 'no-such-pool'"));
    assert_non_null(strstr(err, "no-such-pool"));     /* libvirt's own sentence follows */
    free(err);
    err = NULL;

    /* Volumes: created once, found again (idempotent), wiped, deleted. */
    assert_int_equal(hv_volume_ensure(conn, TEST_POOL, "ut-vol.qcow2", 1, "no-image", NULL, &err), 0);
    assert_true(hv_volume_exists(conn, TEST_POOL, "ut-vol.qcow2"));
    assert_int_equal(hv_volume_ensure(conn, TEST_POOL, "ut-vol.qcow2", 1, NULL, NULL, &err), 0);
    char *method = NULL;
    assert_int_equal(hv_volume_wipe(conn, TEST_POOL, "ut-vol.qcow2", &method, &err), 0);
    /* The test driver has no wipe: recorded as such, with libvirt's reason. */
    assert_non_null(method);
    assert_true(streq(method, "zero") || strncmp(method, "none: ", 6) == 0);
    free(method);
    assert_int_equal(hv_volume_delete(conn, TEST_POOL, "ut-vol.qcow2", &err), 0);
    assert_false(hv_volume_exists(conn, TEST_POOL, "ut-vol.qcow2"));
    assert_int_equal(hv_volume_delete(conn, TEST_POOL, "ut-vol.qcow2", &err), 0);   /* already gone */
    method = NULL;
    assert_int_equal(hv_volume_wipe(conn, TEST_POOL, "ut-vol.qcow2", &method, &err), -ENOENT);

    /* Domains: define (idempotent), start, state, list, shutdown, remove. */
    _cleanup_free_ char *xml = xasprintf(domain_xml_fmt, "ut-dom");
    assert_int_equal(hv_domain_define(conn, "ut-dom", xml, &err), 0);
    assert_int_equal(hv_domain_define(conn, "ut-dom", xml, &err), 0);
    enum hv_domstate s;
    assert_int_equal(hv_domain_state(conn, "ut-dom", &s, &err), 0);
    assert_int_equal(s, HV_DOM_SHUTOFF);
    assert_int_equal(hv_domain_start(conn, "ut-dom", &err), 0);
    assert_int_equal(hv_domain_start(conn, "ut-dom", &err), 0);     /* running already */
    assert_int_equal(hv_domain_state(conn, "ut-dom", &s, &err), 0);
    assert_int_equal(s, HV_DOM_RUNNING);
    struct hv_domain_info *doms;
    size_t n;
    assert_int_equal(hv_list_domains(conn, &doms, &n, &err), 0);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= streq(doms[i].name, "ut-dom") && doms[i].state == HV_DOM_RUNNING;
    hv_domain_infos_free(doms, n);
    assert_true(found);
    assert_int_equal(hv_domain_reboot(conn, "ut-dom", &err), 0);
    bool forced;
    assert_int_equal(hv_domain_shutdown(conn, "ut-dom", 2000, &forced, &err), 0);
    assert_int_equal(hv_domain_state(conn, "ut-dom", &s, &err), 0);
    assert_int_equal(s, HV_DOM_SHUTOFF);
    assert_int_equal(hv_domain_remove(conn, "ut-dom", &err), 0);
    assert_false(hv_domain_exists(conn, "ut-dom"));
    assert_int_equal(hv_domain_remove(conn, "ut-dom", &err), 0);    /* already gone */
    assert_int_equal(hv_domain_state(conn, "ut-dom", &s, &err), -ENOENT);
    assert_int_equal(hv_domain_shutdown(conn, "ut-dom", 100, &forced, &err), 0);

    /* libvirt's message reaches the caller. */
    assert_int_equal(hv_domain_start(conn, "ut-nothing", &err), -EIO);
    assert_non_null(strstr(err, "domain 'ut-nothing'"));
    free(err);
    err = NULL;
    _cleanup_free_ char *bad = xasprintf("<domain type='test'><name>ut-bad</name></domain>");
    assert_true(hv_domain_define(conn, "ut-bad", bad, &err) < 0);
    assert_non_null(strstr(err, "cannot define domain 'ut-bad'"));
    free(err);
    virConnectClose(conn);

    err = NULL;
    assert_null(hv_open("qemu:///system?socket=/nonexistent/sock", &err));
    assert_non_null(strstr(err, "/nonexistent/sock"));
    free(err);
}

/* ---- workers and events ---- */

struct seen {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int up, down, events_running;
    char last_error[512];
};

static struct seen seen = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void on_status(void *opaque, const char *host, bool up, const struct hv_capacity *cap, const char *error)
{
    pthread_mutex_lock(&seen.lock);
    if (up)
        seen.up++;
    else {
        seen.down++;
        snprintf(seen.last_error, sizeof seen.last_error, "%s", error ? error : "");
    }
    pthread_cond_broadcast(&seen.cond);
    pthread_mutex_unlock(&seen.lock);
}

static void on_event(void *opaque, const char *host, const char *domain, enum hv_domstate state)
{
    pthread_mutex_lock(&seen.lock);
    if (streq(domain, "ut-ev") && state == HV_DOM_RUNNING)
        seen.events_running++;
    pthread_cond_broadcast(&seen.cond);
    pthread_mutex_unlock(&seen.lock);
}

static bool wait_seen(int *counter, int at_least)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&seen.lock);
    while (*counter < at_least &&
           pthread_cond_timedwait(&seen.cond, &seen.lock, &deadline) == 0)
        ;
    bool ok = *counter >= at_least;
    pthread_mutex_unlock(&seen.lock);
    return ok;
}

struct task_ctx {
    int ran_with_conn;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void start_task(virConnectPtr conn, const char *host, const char *pool, void *ctx)
{
    struct task_ctx *t = ctx;
    char *err = NULL;
    if (conn) {
        _cleanup_free_ char *xml = xasprintf(domain_xml_fmt, "ut-ev");
        t->ran_with_conn = hv_domain_define(conn, "ut-ev", xml, &err) == 0 &&
                           hv_domain_start(conn, "ut-ev", &err) == 0;
    }
    free(err);
    pthread_mutex_lock(&t->lock);
    t->done = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static void cleanup_task(virConnectPtr conn, const char *host, const char *pool, void *ctx)
{
    char *err = NULL;
    if (conn)
        hv_domain_remove(conn, "ut-ev", &err);
    free(err);
    start_task(NULL, host, pool, ctx);
}

static void run_task(struct hv *hv, const char *host, hv_task_fn fn, struct task_ctx *t)
{
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->done = false;
    assert_int_equal(hv_submit(hv, host, fn, t), 0);
    pthread_mutex_lock(&t->lock);
    while (!t->done)
        pthread_cond_wait(&t->cond, &t->lock);
    pthread_mutex_unlock(&t->lock);
}

static void test_workers(void **state)
{
    struct hv_callbacks cb = { .host_status = on_status, .domain_event = on_event };
    struct hv *hv;
    assert_int_equal(hv_start(&cb, &hv), 0);
    hv_host_set(hv, "hv-test", TEST_URI, TEST_POOL);
    hv_host_set(hv, "hv-down", "qemu:///system?socket=/nonexistent/sock", "default");
    assert_true(wait_seen(&seen.up, 1));
    assert_true(wait_seen(&seen.down, 1));
    assert_non_null(strstr(seen.last_error, "/nonexistent/sock"));
    assert_true(hv_host_up(hv, "hv-test"));
    assert_false(hv_host_up(hv, "hv-down"));
    assert_int_equal(hv_submit(hv, "no-such-host", start_task, NULL), -ENOENT);

    struct task_ctx t = { 0 };
    run_task(hv, "hv-test", start_task, &t);
    assert_true(t.ran_with_conn);
    /* The start comes back as a lifecycle event, without polling. */
    assert_true(wait_seen(&seen.events_running, 1));
    /* A down host's task runs at once, without a connection. */
    struct task_ctx t2 = { 0 };
    run_task(hv, "hv-down", start_task, &t2);
    assert_false(t2.ran_with_conn);
    struct task_ctx t3 = { 0 };
    run_task(hv, "hv-test", cleanup_task, &t3);
    hv_stop(hv);
}

/* ---- the whole loop through the store and the engine ---- */

struct fixture {
    char dir[64], path[128];
    struct store *store;
};

static struct principal admin = { .token_id = 1, .role = ROLE_ADMIN, .actor = "token:1" };
static struct principal dept = { .token_id = 2, .role = ROLE_DEPARTMENT, .department_id = 1,
                                 .department = "health", .actor = "token:2" };

/* A store in a directory of its own under /tmp (PREFIX names it). */
static void fixture_open(struct fixture *f, const char *prefix)
{
    *f = (struct fixture) { 0 };
    snprintf(f->dir, sizeof f->dir, "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/y.db", f->dir);
    char *err = NULL;
    assert_int_equal(store_open(f->path, &f->store, &err), 0);
}

/* The store closed and its files and directory removed. */
static void fixture_close(struct fixture *f)
{
    store_close(f->store);
    test_store_files_remove(f->dir, f->path);
}

static int exec_db(struct fixture *f, const char *sql)
{
    sqlite3 *db;
    sqlite3_open(f->path, &db);
    sqlite3_busy_timeout(db, 10000);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

static int64_t query_int(struct fixture *f, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t v = -1;
    sqlite3_open(f->path, &db);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static char *query_text(struct fixture *f, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char *v = NULL;
    sqlite3_open(f->path, &db);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            v = xstrdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static bool wait_int(struct fixture *f, const char *sql, int64_t want)
{
    for (int i = 0; i < 400; i++) {     /* bounded: 20 s */
        if (query_int(f, sql) == want)
            return true;
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "waited in vain for %s = %lld (is %lld)\n", sql, (long long) want,
            (long long) query_int(f, sql));
    return false;
}

struct job {
    const char *yaml;
    int64_t id;
    enum request_action action;
    const char *name;
    const char *uri;
    const char *segment;
    struct yg_error *error;
    json_t *out;
    int64_t now;
};

static int submit_run(struct store_txn *txn, void *ctx)
{
    struct job *j = ctx;
    struct request *req = NULL;
    if (request_parse(j->yaml, strlen(j->yaml), NULL, &req, &j->error) < 0)
        return -EINVAL;
    j->id = requests_insert(txn, &dept, req, 1, j->yaml, &j->error);
    request_free(req);
    return j->id < 0 ? (int) j->id : 0;
}

static int action_run(struct store_txn *txn, void *ctx)
{
    struct job *j = ctx;
    return lifecycle_apply(txn, &admin, j->id, j->action, NULL, &j->error);
}

static int host_run(struct store_txn *txn, void *ctx)
{
    struct job *j = ctx;
    const char *segs[] = { j->segment };
    return hosts_register(txn, &admin, j->name, j->uri, TEST_POOL, segs, 1, &j->out, &j->error);
}

static int decommission_run(struct store_txn *txn, void *ctx)
{
    struct job *j = ctx;
    return vms_decommission(txn, &admin, j->id, "unit test", false, &j->out, &j->error);
}

static int lease_run(struct store_txn *txn, void *ctx)
{
    struct job *j = ctx;
    return vms_lease_sweep(txn, j->now);
}

static int stop_run(struct store_txn *txn, void *ctx)
{
    struct job *j = ctx;
    return vms_action(txn, &dept, j->id, VM_ACTION_STOP, &j->out, &j->error);
}

static int drain_run(struct store_txn *txn, void *ctx)
{
    struct job *j = ctx;
    return hosts_set_drained(txn, &admin, j->name, true, &j->out, &j->error);
}

static int64_t submit_approve(struct fixture *f, const char *name, int count, const char *memory, const char *ipv6)
{
    _cleanup_free_ char *yaml = xasprintf(
        "apiVersion: yunguan/v1\nkind: ResourceRequest\n"
        "metadata: {name: %s, department: health}\n"
        "spec:\n  purpose: unit test\n  securityLevel: 2\n  lease: {until: 2099-06-30}\n"
        "  network: {segment: dmz, ipv6: %s}\n"
        "  vms:\n    - {name: web, count: %d, vcpus: 1, memory: %s, disk: 1GiB, image: none}\n",
        name, ipv6, count, memory);
    struct job j = { .yaml = yaml };
    if (store_run(f->store, submit_run, &j) < 0) {
        fprintf(stderr, "submit: %s\n", j.error ? j.error->message : "?");
        return -1;
    }
    yg_error_free(j.error);
    j.action = REQUEST_ACTION_APPROVE;
    j.error = NULL;
    int r = store_run(f->store, action_run, &j);
    if (r < 0)
        fprintf(stderr, "approve: %s\n", j.error ? j.error->message : "?");
    yg_error_free(j.error);
    return r < 0 ? -1 : j.id;
}

/* A step's outcome is written from what dispatch() read, guarded by the
 * step: a VM whose journal names another step now (a decommission took
 * over a start) is not moved by the start's outcome (-ESTALE), nor reclaimed
 * by a 'remove' it is not at; with the step still its own, the same write
 * applies. */
struct stale_job {
    int64_t id;
    struct vm_known known;
    enum vm_state to;
    const char *expect_step;    /* vms_finish_decommission() when set */
    int result;
};

static int stale_run(struct store_txn *txn, void *ctx)
{
    struct stale_job *j = ctx;
    if (j->expect_step)
        j->result = vms_finish_decommission(txn, j->id, NULL, j->expect_step);
    else
        j->result = vms_change_known(txn, vms_system_principal(), j->id, &j->known, j->to, NULL, NULL,
                                     "vm.started", NULL);
    return 0;
}

static void test_stale_outcome(void **state)
{
    struct fixture f;
    fixture_open(&f, "yg-stale");
    assert_int_equal(exec_db(&f,
        "INSERT INTO departments (id, name, created_at) VALUES (1, 'health', 'x');"
        "INSERT INTO requests (id, department_id, name, state, purpose, security_level, lease_until, segment,"
        "  ipv6, total_vms, total_vcpus, total_memory_mib, total_disk_gib, source, submitted_by, created_at,"
        "  updated_at) VALUES (1, 1, 'r', 'active', 'p', 2, '2099-01-01', 'dmz', 'off', 1, 1, 64, 1, '', 'x',"
        "  'x', 'x');"
        "INSERT INTO vms (id, request_id, department_id, name, group_position, vcpus, memory_mib, disk_gib,"
        "  image, ipv6_mode, state, step, lease_until, created_at, updated_at) VALUES (1, 1, 1, 'web-1', 0,"
        "  1, 64, 1, 'none', 'off', 'stopping', 'shutdown', '2099-01-01', 'x', 'x');"), 0);
    int64_t audits = query_int(&f, "SELECT count(*) FROM audit");

    /* dispatch() read it 'stopped' with step 'start'; since then a
     * decommission made it 'stopping' with step 'shutdown'. */
    struct stale_job j = { .id = 1, .known = { VM_STOPPED, 1, "start" }, .to = VM_RUNNING };
    assert_int_equal(store_run(f.store, stale_run, &j), 0);
    assert_int_equal(j.result, -ESTALE);
    struct stale_job fin = { .id = 1, .expect_step = "remove" };
    assert_int_equal(store_run(f.store, stale_run, &fin), 0);
    assert_int_equal(fin.result, -ESTALE);
    assert_int_equal(query_int(&f, "SELECT state = 'stopping' AND step = 'shutdown' AND released_at IS NULL "
                                   "FROM vms WHERE id = 1"), 1);
    assert_int_equal(query_int(&f, "SELECT count(*) FROM reclaims"), 0);
    assert_int_equal(query_int(&f, "SELECT count(*) FROM audit"), audits);

    /* The journal still naming the step: the same writes apply. */
    assert_int_equal(exec_db(&f, "UPDATE vms SET state = 'stopped', step = 'start' WHERE id = 1"), 0);
    assert_int_equal(store_run(f.store, stale_run, &j), 0);
    assert_int_equal(j.result, 0);
    assert_int_equal(query_int(&f, "SELECT state = 'running' AND step IS NULL FROM vms WHERE id = 1"), 1);
    assert_int_equal(exec_db(&f, "UPDATE vms SET state = 'decommissioning', step = 'remove' WHERE id = 1"), 0);
    assert_int_equal(store_run(f.store, stale_run, &fin), 0);
    assert_int_equal(fin.result, 0);
    assert_int_equal(query_int(&f, "SELECT state = 'decommissioned' AND released_at IS NOT NULL "
                                   "FROM vms WHERE id = 1"), 1);
    assert_int_equal(query_int(&f, "SELECT count(*) FROM reclaims WHERE vm_id = 1"), 1);
    assert_int_equal(query_int(&f, "SELECT count(*) FROM audit WHERE object = 'vm/1'"), 2);
    assert_int_equal(query_int(&f, "SELECT state = 'closed' FROM requests WHERE id = 1"), 1);
    assert_true(query_int(&f, "SELECT count(*) FROM audit") > audits + 2);
    fixture_close(&f);
}

/* A placement pass's address pool hands out the lowest free addresses in
 * order, gaps first, as addresses_next_free() would from scratch each
 * time (the pool starts each search where the last one ended), and says
 * when the prefix is full. */
static void test_address_pool(void **state)
{
    struct fixture f;
    fixture_open(&f, "yg-pool");
    char *err = NULL;
    /* Used: the gateways, and VMs at .3 .4 .7 .10 and ::10 ::12 (no foreign
     * keys on this connection: the rows need no request). */
    assert_int_equal(exec_db(&f,
        "INSERT INTO segments (id, name, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, interface,"
        "  state_since, created_at, updated_at) VALUES (1, 'dmz', '198.51.100.0/28', '198.51.100.1',"
        "  '2001:db8:10::/64', '2001:db8:10::1', 'br-dmz', 'x', 'x', 'x');"
        "INSERT INTO vms (request_id, department_id, name, group_position, vcpus, memory_mib, disk_gib,"
        "  image, ipv6_mode, segment_id, state, ipv4, ipv6, lease_until, created_at, updated_at) VALUES"
        "  (1, 1, 'a', 0, 1, 64, 1, 'i', 'preferred', 1, 'running', '198.51.100.3', '2001:db8:10::10', 'x', 'x', 'x'),"
        "  (1, 1, 'b', 1, 1, 64, 1, 'i', 'preferred', 1, 'running', '198.51.100.4', NULL, 'x', 'x', 'x'),"
        "  (1, 1, 'c', 2, 1, 64, 1, 'i', 'preferred', 1, 'stopped', '198.51.100.7', '2001:db8:10::12', 'x', 'x', 'x'),"
        "  (1, 1, 'd', 3, 1, 64, 1, 'i', 'preferred', 1, 'running', '198.51.100.10', NULL, 'x', 'x', 'x');"), 0);
    struct addresses_pool *pool;
    assert_int_equal(addresses_pool_load(store_reader(f.store), 1, &pool), 0);
    const char *want4[] = { "198.51.100.2", "198.51.100.5", "198.51.100.6", "198.51.100.8", "198.51.100.9",
                            "198.51.100.11", "198.51.100.12", "198.51.100.13", "198.51.100.14" };
    const char *want6[] = { "2001:db8:10::11", "2001:db8:10::13", "2001:db8:10::14", "2001:db8:10::15",
                            "2001:db8:10::16", "2001:db8:10::17", "2001:db8:10::18", "2001:db8:10::19",
                            "2001:db8:10::1a" };
    for (size_t i = 0; i < YG_ARRAY_SIZE(want4); i++) {
        char v4[IP_ADDR_STRLEN], v6[IP_ADDR_STRLEN];
        assert_int_equal(addresses_pool_take(pool, NULL, true, v4, v6, &err), 0);
        assert_string_equal(v4, want4[i]);
        assert_string_equal(v6, want6[i]);
    }
    /* .15 is the broadcast address: the /28 is full. */
    char v4[IP_ADDR_STRLEN], v6[IP_ADDR_STRLEN];
    assert_int_equal(addresses_pool_take(pool, NULL, true, v4, v6, &err), -ENOSPC);
    assert_non_null(strstr(err, "no free IPv4 address"));
    free(err);
    addresses_pool_free(pool);
    fixture_close(&f);
}

static void test_engine_loop(void **state)
{
    struct fixture f;
    fixture_open(&f, "yg-hv");
    char *err = NULL;
    assert_int_equal(exec_db(&f,
        "INSERT INTO departments (id, name, created_at) VALUES (1, 'health', 'x');"
        "INSERT INTO quotas VALUES (1, 64, 4194304, 1000, 50, 36500);"
        "INSERT INTO segments (id, name, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, interface,"
        "  state_since, created_at, updated_at) VALUES (1, 'dmz', '198.51.100.0/29', '198.51.100.1',"
        "  '2001:db8:10::/64', '2001:db8:10::1', 'br-dmz', 'x', 'x', 'x');"), 0);

    struct vms_config cfg;
    vms_config_defaults(&cfg);
    cfg.shutdown_timeout_seconds = 1;
    cfg.reconcile_seconds = 1;
    struct vms_engine *e;
    assert_int_equal(vms_engine_start(f.store, &cfg, &e, &err), 0);
    free(cfg.domain_type);

    struct job h = { .name = "hv01", .uri = TEST_URI, .segment = "dmz" };
    assert_int_equal(store_run(f.store, host_run, &h), 0);
    json_decref(h.out);
    vms_engine_host_changed("hv01", TEST_URI, TEST_POOL);
    assert_true(wait_int(&f, "SELECT hv_status = 'up' FROM hosts WHERE name = 'hv01'", 1));

    /* Approval creates the VMs; placement, volume, define, start follow. */
    int64_t req = submit_approve(&f, "booking", 2, "64MiB", "preferred");
    assert_true(req > 0);
    assert_int_equal(query_int(&f, "SELECT count(*) FROM vms WHERE request_id = 1"), 2);
    assert_true(wait_int(&f, "SELECT count(*) FROM vms WHERE state = 'running' AND step IS NULL", 2));
    assert_true(wait_int(&f, "SELECT state = 'active' FROM requests WHERE id = 1", 1));
    assert_int_equal(query_int(&f, "SELECT count(DISTINCT ipv4) FROM vms WHERE ipv4 LIKE '198.51.100.%'"), 2);
    assert_int_equal(query_int(&f, "SELECT count(*) FROM vms WHERE ipv6 LIKE '2001:db8:10:0:5054:ff:fe%'"), 2);
    /* quota from the VMs */
    assert_int_equal(query_int(&f, "SELECT count(*) FROM audit WHERE action = 'vm.running'"), 2);

    /* A department stops its own VM (journalled, then done by the worker). */
    struct job s = { .id = 1 };
    assert_int_equal(store_run(f.store, stop_run, &s), 0);
    json_decref(s.out);
    assert_true(wait_int(&f, "SELECT state = 'stopped' AND step IS NULL FROM vms WHERE id = 1", 1));

    /* Reconcile: the test driver's own 'test' domain is an unknown domain. */
    double ms = vms_engine_reconcile_now(e);
    assert_true(ms >= 0);
    json_t *drift = vms_drift_json();
    assert_true(json_integer_value(json_object_get(json_object_get(drift, "counts"), "unknown-domain")) >= 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(drift, "counts"), "vm-gone")), 0);
    json_decref(drift);

    /* A domain removed behind the controller's back is 'vm-gone'. */
    _cleanup_free_ char *dom2 = query_text(&f, "SELECT domain_name FROM vms WHERE id = 2");
    virConnectPtr conn = hv_open(TEST_URI, &err);
    assert_non_null(conn);
    assert_int_equal(hv_domain_remove(conn, dom2, &err), 0);
    vms_engine_reconcile_now(e);
    drift = vms_drift_json();
    assert_int_equal(json_integer_value(json_object_get(json_object_get(drift, "counts"), "vm-gone")), 1);
    json_decref(drift);

    /* Nothing fits: the request waits, saying which resource on which host. */
    int64_t big = submit_approve(&f, "huge", 1, "1TiB", "preferred");
    assert_true(big > 0);
    _cleanup_free_ char *reason = NULL;
    for (int i = 0; i < 200 && !reason; i++) {
        reason = query_text(&f, "SELECT waiting_reason FROM requests WHERE name = 'huge'");
        if (!reason) {
            struct timespec ts = { 0, 50 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    assert_non_null(reason);
    assert_non_null(strstr(reason, "hv01: memory:"));
    assert_int_equal(query_int(&f, "SELECT state = 'approved' FROM requests WHERE name = 'huge'"), 1);
    /* ipv6 required onto a segment that is not dual-stack-ready waits too. */
    int64_t v6 = submit_approve(&f, "v6only", 1, "64MiB", "required");
    assert_true(v6 > 0);
    assert_true(wait_int(&f, "SELECT waiting_reason LIKE '%not dual-stack-ready%' FROM requests WHERE name = 'v6only'", 1));

    /* Addresses run out: all or nothing.  dmz is a /29 (198.51.100.2-.6)
     * and 'booking' holds two: four VMs cannot all have one, so none is
     * placed (no host, no address, no step) and the request waits; a
     * one-VM request after it is placed (the pass's address pool is
     * reloaded after the refusal: what 'many' took was never written). */
    int64_t many = submit_approve(&f, "many", 4, "64MiB", "off");
    assert_true(many > 0);
    int64_t small = submit_approve(&f, "small", 1, "64MiB", "off");
    assert_true(small > 0);
    assert_true(wait_int(&f, "SELECT waiting_reason LIKE '%no free IPv4 address%' FROM requests WHERE name = 'many'", 1));
    assert_true(wait_int(&f, "SELECT count(*) FROM vms v JOIN requests r ON r.id = v.request_id "
                             "WHERE r.name = 'small' AND v.state = 'running' AND v.step IS NULL", 1));
    assert_int_equal(query_int(&f, "SELECT count(*) FROM vms v JOIN requests r ON r.id = v.request_id "
                                   "WHERE r.name = 'many' AND v.state = 'pending' AND v.host_id IS NULL "
                                   "AND v.ipv4 IS NULL AND v.mac IS NULL AND v.step IS NULL"), 4);
    assert_int_equal(query_int(&f, "SELECT state = 'approved' FROM requests WHERE name = 'many'"), 1);
    assert_int_equal(query_int(&f, "SELECT count(DISTINCT ipv4) FROM vms WHERE ipv4 IS NOT NULL"), 3);
    /* Out of the way of what follows: 'many' withdrawn, 'small' decommissioned. */
    struct job w = { .id = many, .action = REQUEST_ACTION_WITHDRAW };
    assert_int_equal(store_run(f.store, action_run, &w), 0);
    yg_error_free(w.error);
    struct job ds = { .id = query_int(&f, "SELECT v.id FROM vms v JOIN requests r ON r.id = v.request_id "
                                          "WHERE r.name = 'small'") };
    assert_int_equal(store_run(f.store, decommission_run, &ds), 0);
    json_decref(ds.out);
    assert_true(wait_int(&f, "SELECT count(*) FROM vms v JOIN requests r ON r.id = v.request_id "
                             "WHERE r.name IN ('many', 'small') AND v.state = 'decommissioned'", 5));

    /* Decommission: shut down, wipe, delete, undefine, reclaim. */
    struct job d = { .id = 1 };
    assert_int_equal(store_run(f.store, decommission_run, &d), 0);
    json_decref(d.out);
    assert_true(wait_int(&f, "SELECT state = 'decommissioned' FROM vms WHERE id = 1", 1));
    assert_int_equal(query_int(&f, "SELECT count(*) FROM reclaims WHERE vm_id = 1"), 1);
    assert_int_equal(query_int(&f, "SELECT ipv4 IS NULL AND ipv6 IS NULL FROM vms WHERE id = 1"), 1);
    /* A VM holds resources exactly while it is not decommissioned: the
     * column the held-VM indexes use says the same as the state, for
     * every VM this test made (placed, withdrawn, decommissioned). */
    assert_int_equal(query_int(&f, "SELECT count(*) FROM vms WHERE released_at IS NULL"),
                     query_int(&f, "SELECT count(*) FROM vms WHERE state <> 'decommissioned'"));
    assert_int_equal(query_int(&f, "SELECT count(*) FROM vms WHERE (released_at IS NULL) <> "
                                   "(state <> 'decommissioned')"), 0);
    assert_true(query_int(&f, "SELECT count(*) FROM vms WHERE released_at IS NOT NULL") >= 2);
    _cleanup_free_ char *dom1 = query_text(&f, "SELECT domain_name FROM reclaims WHERE vm_id = 1");
    assert_false(hv_domain_exists(conn, dom1));
    _cleanup_free_ char *vol1 = xasprintf("%s.qcow2", dom1);
    assert_false(hv_volume_exists(conn, TEST_POOL, vol1));

    /* A crash after 'define' ran but before it was recorded, in a journal
     * of before the intents (step 'define'): the restart resumes and
     * nothing doubles. */
    vms_engine_stop(e);
    int64_t r3 = submit_approve(&f, "crash", 1, "64MiB", "off");
    assert_true(r3 > 0);
    vms_config_defaults(&cfg);
    cfg.reconcile_seconds = 1;
    assert_int_equal(vms_engine_start(f.store, &cfg, &e, &err), 0);
    free(cfg.domain_type);      /* the engine keeps its own copy (as above) */
    cfg.domain_type = NULL;
    assert_true(wait_int(&f, "SELECT count(*) FROM vms v JOIN requests r ON r.id = v.request_id "
                             "WHERE r.name = 'crash' AND v.state = 'running'", 1));
    vms_engine_stop(e);
    _cleanup_free_ char *dom3 = query_text(&f, "SELECT v.domain_name FROM vms v JOIN requests r ON "
                                              "r.id = v.request_id WHERE r.name = 'crash'");
    assert_int_equal(exec_db(&f, "UPDATE vms SET state = 'provisioning', step = 'define' WHERE domain_name IS NOT NULL "
                                 "AND request_id = (SELECT id FROM requests WHERE name = 'crash')"), 0);
    assert_int_equal(vms_engine_start(f.store, &cfg, &e, &err), 0);
    assert_true(wait_int(&f, "SELECT count(*) FROM vms v JOIN requests r ON r.id = v.request_id "
                             "WHERE r.name = 'crash' AND v.state = 'running' AND v.step IS NULL", 1));
    struct hv_domain_info *doms;
    size_t n;
    assert_int_equal(hv_list_domains(conn, &doms, &n, &err), 0);
    int copies = 0;
    for (size_t i = 0; i < n; i++)
        copies += streq(doms[i].name, dom3);
    hv_domain_infos_free(doms, n);
    assert_int_equal(copies, 1);
    /* The same with the intent 'build' (what placement journals now): a
     * crash after any of its calls; all three run again and find their
     * work done. */
    vms_engine_stop(e);
    assert_int_equal(exec_db(&f, "UPDATE vms SET state = 'provisioning', step = 'build' WHERE domain_name IS NOT NULL "
                                 "AND request_id = (SELECT id FROM requests WHERE name = 'crash')"), 0);
    assert_int_equal(vms_engine_start(f.store, &cfg, &e, &err), 0);
    assert_true(wait_int(&f, "SELECT count(*) FROM vms v JOIN requests r ON r.id = v.request_id "
                             "WHERE r.name = 'crash' AND v.state = 'running' AND v.step IS NULL", 1));
    assert_int_equal(hv_list_domains(conn, &doms, &n, &err), 0);
    copies = 0;
    for (size_t i = 0; i < n; i++)
        copies += streq(doms[i].name, dom3);
    hv_domain_infos_free(doms, n);
    assert_int_equal(copies, 1);
    _cleanup_free_ char *vol3 = xasprintf("%s.qcow2", dom3);
    assert_true(hv_volume_exists(conn, TEST_POOL, vol3));

    /* Drained host: new requests wait. */
    struct job dr = { .name = "hv01" };
    assert_int_equal(store_run(f.store, drain_run, &dr), 0);
    json_decref(dr.out);
    int64_t r4 = submit_approve(&f, "after-drain", 1, "64MiB", "off");
    assert_true(r4 > 0);
    assert_true(wait_int(&f, "SELECT waiting_reason LIKE '%hv01: drained%' FROM requests WHERE name = 'after-drain'", 1));

    /* Leases: notice, expiry (stop), decommission after the grace period. */
    int64_t vm3 = query_int(&f, "SELECT v.id FROM vms v JOIN requests r ON r.id = v.request_id WHERE r.name = 'crash'");
    assert_int_equal(exec_db(&f, "INSERT INTO lease_policies VALUES (1, 10, 3, 'x')"), 0);
    struct tm tm = { .tm_year = 2099 - 1900, .tm_mon = 5, .tm_mday = 25, .tm_hour = 12 };
    struct job l = { .now = (int64_t) timegm(&tm) };      /* 5 days before 2099-06-30 */
    assert_int_equal(store_run(f.store, lease_run, &l), 0);
    _cleanup_free_ char *sql = xasprintf("SELECT lease_state = 'notice' FROM vms WHERE id = %lld", (long long) vm3);
    assert_int_equal(query_int(&f, sql), 1);
    l.now += 6 * 86400;                                     /* 2099-07-01: expired */
    assert_int_equal(store_run(f.store, lease_run, &l), 0);
    _cleanup_free_ char *sql2 = xasprintf("SELECT lease_state = 'expired' AND state = 'stopped' FROM vms WHERE id = %lld",
                                          (long long) vm3);
    assert_true(wait_int(&f, sql2, 1));
    l.now += 2 * 86400;                                     /* 07-03: the last grace day */
    assert_int_equal(store_run(f.store, lease_run, &l), 0);
    _cleanup_free_ char *sql3 = xasprintf("SELECT state FROM vms WHERE id = %lld", (long long) vm3);
    _cleanup_free_ char *still = query_text(&f, sql3);
    assert_string_equal(still, "stopped");
    l.now += 1 * 86400;                                     /* 07-04: past the grace period */
    assert_int_equal(store_run(f.store, lease_run, &l), 0);
    _cleanup_free_ char *sql4 = xasprintf("SELECT state = 'decommissioned' FROM vms WHERE id = %lld", (long long) vm3);
    assert_true(wait_int(&f, sql4, 1));
    _cleanup_free_ char *sql5 = xasprintf("SELECT count(*) FROM audit WHERE object = 'vm/%lld' AND "
                                          "action IN ('vm.lease-notice', 'vm.lease-expired')", (long long) vm3);
    assert_int_equal(query_int(&f, sql5), 2);
    /* Its request had only that VM: closed. */
    assert_int_equal(query_int(&f, "SELECT state = 'closed' FROM requests WHERE name = 'crash'"), 1);

    /* Every entry's before/after is in the trail's one form (what jansson
     * writes compact, keys sorted, ASCII only), written by hand or not. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f.path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT before, after FROM audit", -1, &st, NULL), SQLITE_OK);
    int entries = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        for (int col = 0; col < 2; col++) {
            const char *text = (const char *) sqlite3_column_text(st, col);
            if (!text)
                continue;
            json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
            assert_non_null(j);
            char *again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
            assert_string_equal(text, again);
            free(again);
            json_decref(j);
            entries++;
        }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(entries > 50);

    vms_engine_stop(e);
    hv_domain_remove(conn, dom2, &err);
    virConnectClose(conn);
    fixture_close(&f);
}

/* A host that cannot be reached: its VMs become 'unknown' at once (the
 * worker reports the host down), and get their state back from libvirt
 * when it answers again (the reconcile after the reconnect). */
static void test_host_down(void **state)
{
    struct fixture f;
    fixture_open(&f, "yg-hv");
    char *err = NULL;
    assert_int_equal(exec_db(&f,
        "INSERT INTO departments (id, name, created_at) VALUES (1, 'health', 'x');"
        "INSERT INTO quotas VALUES (1, 64, 65536, 1000, 50, 36500);"
        "INSERT INTO segments (id, name, ipv4_prefix, ipv4_gateway, interface, state_since, created_at,"
        "  updated_at) VALUES (1, 'dmz', '198.51.100.0/24', '198.51.100.1', 'br-dmz', 'x', 'x', 'x');"), 0);
    struct vms_config cfg;
    vms_config_defaults(&cfg);
    cfg.reconcile_seconds = 1;
    struct vms_engine *e;
    assert_int_equal(vms_engine_start(f.store, &cfg, &e, &err), 0);
    free(cfg.domain_type);      /* the engine keeps its own copy */
    cfg.domain_type = NULL;
    /* test:///default keeps its domains only while a connection is open:
     * this one stands for the hypervisor while the worker's reconnects. */
    virConnectPtr keep = hv_open(TEST_URI, &err);
    assert_non_null(keep);
    struct job h = { .name = "hv09", .uri = TEST_URI, .segment = "dmz" };
    assert_int_equal(store_run(f.store, host_run, &h), 0);
    json_decref(h.out);
    vms_engine_host_changed("hv09", TEST_URI, TEST_POOL);
    assert_true(submit_approve(&f, "downtest", 2, "64MiB", "off") > 0);
    assert_true(wait_int(&f, "SELECT count(*) FROM vms WHERE state = 'running' AND step IS NULL", 2));

    /* The host's libvirt goes away. */
    uint64_t t0 = monotonic_usec();
    vms_engine_host_changed("hv09", "qemu:///system?socket=/nonexistent/yg-down", TEST_POOL);
    assert_true(wait_int(&f, "SELECT count(*) FROM vms WHERE state = 'unknown'", 2));
    double seconds = (double) (monotonic_usec() - t0) / 1e6;
    assert_true(seconds < 5.0);
    assert_int_equal(query_int(&f, "SELECT hv_status = 'down' AND hv_error LIKE '%yg-down%' FROM hosts "
                                   "WHERE name = 'hv09'"), 1);
    assert_int_equal(query_int(&f, "SELECT count(*) FROM audit WHERE action = 'vm.unknown'"), 2);
    assert_int_equal(query_int(&f, "SELECT count(*) FROM audit WHERE action = 'host.down'"), 1);

    /* And comes back: the reconcile gives the VMs their state again. */
    vms_engine_host_changed("hv09", TEST_URI, TEST_POOL);
    assert_true(wait_int(&f, "SELECT count(*) FROM vms WHERE state = 'running'", 2));
    assert_int_equal(query_int(&f, "SELECT hv_status = 'up' FROM hosts WHERE name = 'hv09'"), 1);

    /* Clean the shared test driver of these domains. */
    struct job d = { .id = 1 };
    assert_int_equal(store_run(f.store, decommission_run, &d), 0);
    json_decref(d.out);
    d.id = 2;
    d.out = NULL;
    assert_int_equal(store_run(f.store, decommission_run, &d), 0);
    json_decref(d.out);
    assert_true(wait_int(&f, "SELECT count(*) FROM vms WHERE state = 'decommissioned'", 2));
    vms_engine_stop(e);
    virConnectClose(keep);
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_workers),
        cmocka_unit_test(test_address_pool),
        cmocka_unit_test(test_stale_outcome),
        cmocka_unit_test(test_engine_loop),
        cmocka_unit_test(test_host_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* bench-vms: the VM path on libvirt's test driver (prints figures; never
 * passes or fails on time).
 *
 *   bench-vms loop [VMS [HOSTS]]       (default 1000 VMs on 10 hosts: the test
 *                                       driver's pools hold 100 GiB each)
 *     The full loop through yunguand's own code: submit and approve
 *     requests of 10 VMs, placement, the journalled provisioning on the
 *     hosts' workers, then decommission (shutdown, wipe, delete, undefine,
 *     reclaim record) until every VM is reclaimed.  Then the same libvirt
 *     calls made directly (same XML, same phases, one connection per host
 *     with 1 and with 4 threads on it) and the ratios, by wall clock and by
 *     CPU time (getrusage; the steadier figure on a shared machine).
 *
 *   bench-vms reconcile [DOMAINS [HOSTS]]   (default 10000 on 4 hosts)
 *     Every host's domains (defined in its test-driver node file) against
 *     the store's VMs: one reconcile pass of every host, in ms.
 *
 * Each host is a test:///FILE URI of its own (a node file written to the
 * work directory), so that hosts do not share domains.  WORKDIR (default
 * /var/tmp) holds the store: a real disk, as in production.  WARMUP=0:
 * no unmeasured warm-up run before the loop (see bench_loop).  PERF_CTL=FIFO:
 * a profile of the controller's measured window only (see perf_control). */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif

#include "auth.h"
#include "domain-xml.h"
#include "hosts.h"
#include "hypervisor.h"
#include "lifecycle.h"
#include "log.h"
#include "request.h"
#include "requests.h"
#include "store.h"
#include "util.h"
#include "vms.h"

#define PER_REQUEST 10
#define POOL "bench-pool"

static struct principal admin = { .token_id = 1, .role = ROLE_ADMIN, .actor = "token:1" };
static struct principal dept = { .token_id = 2, .role = ROLE_DEPARTMENT, .department_id = 1,
                                 .department = "health", .actor = "token:2" };

static double now_s(void) { return (double) monotonic_usec() / 1e6; }

/* A profile of the controller's measured window only.  PERF_CTL=FIFO:
 * "enable" / "disable" written to perf's control FIFO,
 *   mkfifo /tmp/ctl; PERF_CTL=/tmp/ctl perf record -D -1 --control fifo:/tmp/ctl ...
 * Under callgrind, its instrumentation is switched on and off (instruction
 * counts are steady where CPU time on a shared machine is not):
 *   valgrind --tool=callgrind --instr-atstart=no bench/bench-vms loop 1000 */
static void perf_control(const char *cmd)
{
#if __has_include(<valgrind/callgrind.h>)
    if (streq(cmd, "enable"))
        CALLGRIND_START_INSTRUMENTATION;
    else
        CALLGRIND_STOP_INSTRUMENTATION;
#endif
    const char *path = getenv("PERF_CTL");
    if (!path)
        return;
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s\n", cmd);
        fclose(f);
    }
}

static void die(const char *what)
{
    fprintf(stderr, "bench-vms: %s\n", what);
    exit(1);
}

/* A node file for one test-driver host; DOMAINS running domains inside. */
static char *write_node(const char *dir, int host, int domains, const char *instance, int64_t first_id)
{
    char *path = xasprintf("%s/node-%d.xml", dir, host);
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write a node file");
    fprintf(f, "<node>\n  <cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>4</sockets>"
               "<cores>16</cores><threads>2</threads><active>128</active></cpu>\n"
               "  <memory>2147483648</memory>\n"
               "  <pool type='dir'><name>" POOL "</name><capacity>10995116277760</capacity>"
               "<allocation>0</allocation><available>10995116277760</available>"
               "<target><path>/bench-pool-%d</path></target></pool>\n", host);
    for (int i = 0; i < domains; i++) {
        char name[64];
        vms_domain_name(instance, first_id + i, name);
        fprintf(f, "  <domain type='test'><name>%s</name><memory>65536</memory>"
                   "<os><type>hvm</type></os></domain>\n", name);
    }
    fputs("</node>\n", f);
    fclose(f);
    return path;
}

struct fixture {
    char dir[128], path[160];
    struct store *store;
    char instance[32];
};

static void fixture_open(struct fixture *f)
{
    const char *wd = getenv("WORKDIR");
    snprintf(f->dir, sizeof f->dir, "%s/yg-bench-vms-XXXXXX", wd ? wd : "/var/tmp");
    if (!mkdtemp(f->dir))
        die("mkdtemp failed");
    snprintf(f->path, sizeof f->path, "%s/y.db", f->dir);
    char *err = NULL;
    if (store_open(f->path, &f->store, &err) < 0)
        die(err);
    sqlite3 *db;
    sqlite3_open(f->path, &db);
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_exec(db,
        "INSERT INTO departments (id, name, created_at) VALUES (1, 'health', 'x');"
        "INSERT INTO quotas VALUES (1, 1000000, 1000000000, 1000000, 1000000, 36500);"
        "INSERT INTO segments (id, name, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, interface,"
        "  state_since, created_at, updated_at) VALUES (1, 'dmz', '10.20.0.0/16', '10.20.0.1',"
        "  '2001:db8:20::/64', '2001:db8:20::1', 'br-dmz', 'x', 'x', 'x');",
        NULL, NULL, NULL) != SQLITE_OK)
        die(sqlite3_errmsg(db));
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT value FROM settings WHERE key = 'instance'", -1, &st, NULL);
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(f->instance, sizeof f->instance, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void fixture_close(struct fixture *f)
{
    store_close(f->store);
    if (!getenv("KEEP")) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s", f->dir);
        const char *suffixes[] = { "/y.db", "/y.db-wal", "/y.db-shm" };
        for (size_t i = 0; i < 3; i++) {
            char p[300];
            snprintf(p, sizeof p, "%s%s", f->dir, suffixes[i]);
            unlink(p);
        }
        for (int h = 0; h < 64; h++) {
            char p[300];
            snprintf(p, sizeof p, "%s/node-%d.xml", f->dir, h);
            unlink(p);
        }
        rmdir(f->dir);
    }
}

static int64_t count(struct fixture *f, const char *sql)
{
    struct store_conn *c = store_reader(f->store);
    sqlite3_stmt *st = store_stmt(c, sql);
    int64_t n = -1;
    if (st && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    if (st)
        sqlite3_reset(st);
    return n;
}

static void wait_count(struct fixture *f, const char *sql, int64_t want, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    while (count(f, sql) != want) {
        if (now_s() > deadline) {
            fprintf(stderr, "bench-vms: waited %.0f s in vain for %s = %lld (is %lld)\n", timeout_s, sql,
                    (long long) want, (long long) count(f, sql));
            exit(1);
        }
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

struct host_job {
    const char *name, *uri;
};

static int host_run(struct store_txn *txn, void *ctx)
{
    struct host_job *j = ctx;
    const char *segs[] = { "dmz" };
    json_t *out = NULL;
    struct yg_error *e = NULL;
    int r = hosts_register(txn, &admin, j->name, j->uri, POOL, segs, 1, &out, &e);
    json_decref(out);
    yg_error_free(e);
    return r;
}

struct submit_job {
    char *yaml;
    int64_t id;
};

static int submit_run(struct store_txn *txn, void *ctx)
{
    struct submit_job *j = ctx;
    struct request *req = NULL;
    struct yg_error *e = NULL;
    if (request_parse(j->yaml, strlen(j->yaml), NULL, &req, &e) < 0) {
        fprintf(stderr, "%s\n", e->message);
        yg_error_free(e);
        return -EINVAL;
    }
    j->id = requests_insert(txn, &dept, req, 1, j->yaml, &e);
    request_free(req);
    if (j->id < 0) {
        yg_error_free(e);
        return (int) j->id;
    }
    int r = lifecycle_apply(txn, &admin, j->id, REQUEST_ACTION_APPROVE, NULL, &e);
    yg_error_free(e);
    return r;
}

static void submit_done(void *ctx, int result)
{
    struct submit_job *j = ctx;
    if (result < 0)
        fprintf(stderr, "bench-vms: a submission failed: %s\n", strerror(-result));
    free(j->yaml);
    free(j);
}

struct decom_job {
    int64_t id;
};

static int decom_run(struct store_txn *txn, void *ctx)
{
    struct decom_job *j = ctx;
    json_t *out = NULL;
    struct yg_error *e = NULL;
    int r = vms_decommission(txn, &admin, j->id, "benchmark", false, &out, &e);
    json_decref(out);
    yg_error_free(e);
    return r;
}

static void free_done(void *ctx, int result)
{
    free(ctx);
}

/* ---- the same libvirt calls, made directly ----
 *
 * The baseline gets what the engine gets: the same calls through the same
 * hypervisor.c functions, the same domain XML (title and <metadata>
 * included: the test driver parses all of it), the phases in the engine's
 * order (every VM built, then every VM decommissioned) and the same
 * concurrency on offer: one connection per host, with 1 or 4 threads on
 * it (the engine runs a batch's steps on up to 4).  Both runs are timed by
 * the wall clock and by the process's CPU time (getrusage: every thread),
 * which is the steadier figure on a shared machine. */
struct direct_host {
    virConnectPtr conn;
    int host, n;              /* this host's VMs: direct-HOST-0 .. n-1 */
    atomic_int next;
    bool decommission;
};

static void direct_names(int host, int i, char name[static 64], char vol[static 80])
{
    snprintf(name, 64, "direct-%d-%d", host, i);
    snprintf(vol, 80, "%s.qcow2", name);
}

static void direct_build(virConnectPtr conn, int host, int i)
{
    char name[64], vol[80], uuid[37], title[96], ipv4[32], ipv6[48];
    char *err = NULL;
    direct_names(host, i, name, vol);
    vms_domain_uuid("direct", (int64_t) host * 1000000 + i, uuid);
    snprintf(title, sizeof title, "health/bench-%d/web-%d", i / PER_REQUEST, i % PER_REQUEST + 1);
    snprintf(ipv4, sizeof ipv4, "10.20.%d.%d", host, i % 250 + 2);
    snprintf(ipv6, sizeof ipv6, "2001:db8:20::%x:%x", host, i + 2);
    struct domain_spec spec = { .type = "test", .name = name, .uuid = uuid, .title = title, .vcpus = 1,
                                .memory_mib = 64, .pool = POOL, .volume = vol, .bridge = "br-dmz",
                                .mac = "52:54:00:00:00:01", .vm_id = (int64_t) host * 1000000 + i,
                                .request_id = i / PER_REQUEST + 1, .department = "health",
                                .ipv4 = ipv4, .ipv6 = ipv6 };
    char *xml = domain_xml_build(&spec);
    if (!xml || hv_volume_ensure(conn, POOL, vol, 1024, "none", NULL, &err) < 0 ||
        hv_domain_define(conn, name, xml, &err) < 0 || hv_domain_start(conn, name, &err) < 0)
        die(err ? err : "direct: cannot build a VM");
    free(xml);
}

static void direct_decommission(virConnectPtr conn, int host, int i)
{
    char name[64], vol[80];
    char *err = NULL, *method = NULL;
    bool forced;
    direct_names(host, i, name, vol);
    if (hv_domain_shutdown(conn, name, 1000, &forced, &err) < 0 ||
        hv_volume_wipe(conn, POOL, vol, &method, &err) < 0 ||
        hv_volume_delete(conn, POOL, vol, &err) < 0 || hv_domain_remove(conn, name, &err) < 0)
        die(err ? err : "direct: cannot decommission a VM");
    free(method);
}

static void *direct_worker(void *arg)
{
    struct direct_host *d = arg;
    for (int i; (i = atomic_fetch_add(&d->next, 1)) < d->n;)
        if (d->decommission)
            direct_decommission(d->conn, d->host, i);
        else
            direct_build(d->conn, d->host, i);
    return NULL;
}

/* What a phase cost: wall clock and CPU time (getrusage: every thread);
 * of the CPU, the part in the kernel (system calls, page faults), and the
 * context switches, which the instruction count of a profile misses. */
struct cost {
    double wall, cpu, sys;    /* seconds */
    double switches;
};

static struct cost usage_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double sys = (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
    double user = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6;
    return (struct cost) { now_s(), user + sys, sys, (double) (ru.ru_nvcsw + ru.ru_nivcsw) };
}

static struct cost cost_since(struct cost u0)
{
    struct cost u = usage_now();
    return (struct cost) { u.wall - u0.wall, u.cpu - u0.cpu, u.sys - u0.sys, u.switches - u0.switches };
}

/* One phase (build or decommission) on every host, THREADS per host. */
static struct cost direct_phase(struct direct_host *d, int n_hosts, int threads, bool decommission)
{
    pthread_t th[64 * 4];
    int n_th = 0;
    struct cost u0 = usage_now();
    for (int h = 0; h < n_hosts; h++) {
        atomic_store(&d[h].next, 0);
        d[h].decommission = decommission;
        for (int k = 0; k < threads; k++)
            if (pthread_create(&th[n_th], NULL, direct_worker, &d[h]) == 0)
                n_th++;
    }
    for (int k = 0; k < n_th; k++)
        pthread_join(th[k], NULL);
    return cost_since(u0);
}

/* Both phases, the connections opened first (the engine's are open too). */
static void direct_run(char **uris, int n_hosts, int n_vms, int threads, struct cost *build,
                       struct cost *decom)
{
    struct direct_host d[64];
    for (int h = 0; h < n_hosts; h++) {
        char *err = NULL;
        d[h] = (struct direct_host) { .host = h, .n = n_vms / n_hosts + (h < n_vms % n_hosts) };
        d[h].conn = hv_open(uris[h], &err);
        if (!d[h].conn)
            die(err);
    }
    *build = direct_phase(d, n_hosts, threads, false);
    *decom = direct_phase(d, n_hosts, threads, true);
    for (int h = 0; h < n_hosts; h++)
        virConnectClose(d[h].conn);
}

static void print_cost(const char *what, struct cost c, int n_vms)
{
    printf("  %-38s %7.3f s wall (%5.0f VMs/s)  %7.3f s CPU (%6.0f us per VM; kernel %4.0f us, %4.1f switches)\n",
           what, c.wall, n_vms / c.wall, c.cpu, c.cpu * 1e6 / n_vms, c.sys * 1e6 / n_vms, c.switches / n_vms);
}

static struct cost cost_add(struct cost a, struct cost b)
{
    return (struct cost) { a.wall + b.wall, a.cpu + b.cpu, a.sys + b.sys, a.switches + b.switches };
}

/* CPU time of every thread of this process (/proc/self/task/TID/schedstat:
 * nanoseconds on a CPU), with the name the controller gives it
 * (thread_set_name()), to say where the controller's CPU goes. */
#define MAX_THREADS 256
struct thread_cpu {
    long tid;
    char name[16];
    uint64_t ns;
};

static size_t threads_snapshot(struct thread_cpu *t)
{
    DIR *d = opendir("/proc/self/task");
    size_t n = 0;
    struct dirent *de;
    while (d && n < MAX_THREADS && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", de->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long ns = 0;
        bool ok = f && fscanf(f, "%llu", &ns) == 1;
        if (f)
            fclose(f);
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        f = fopen(path, "r");
        char name[16] = "?";
        if (f && fgets(name, sizeof name, f))
            name[strcspn(name, "\n:")] = '\0';      /* yg-hv:hv01 -> yg-hv */
        if (f)
            fclose(f);
        if (ok) {
            t[n] = (struct thread_cpu) { .tid = atol(de->d_name), .ns = ns };
            snprintf(t[n].name, sizeof t[n].name, "%s", name);
            n++;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* The window's CPU by thread name: what each kind of thread used between
 * the snapshots BEFORE and NOW; "(ended)" is the threads that ended in the
 * window (a host's step helpers), from the process's total TOTAL_S. */
static void print_threads(const struct thread_cpu *before, size_t n_before, const struct thread_cpu *now,
                          size_t n_now, double total_s, int n_vms)
{
    struct thread_cpu groups[MAX_THREADS];
    size_t n_groups = 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < n_now; i++) {
        uint64_t was = 0;
        for (size_t k = 0; k < n_before; k++)
            if (before[k].tid == now[i].tid)
                was = before[k].ns;
        uint64_t used = now[i].ns - was;
        sum += used;
        size_t g = 0;
        while (g < n_groups && strcmp(groups[g].name, now[i].name) != 0)
            g++;
        if (g == n_groups)
            groups[n_groups++] = (struct thread_cpu) { .tid = 0, .ns = 0 };
        snprintf(groups[g].name, sizeof groups[g].name, "%s", now[i].name);
        groups[g].ns += used;
        groups[g].tid++;
    }
    printf("  CPU per VM by thread (name, threads: us per VM):");
    for (size_t g = 0; g < n_groups; g++)
        if (groups[g].ns / (uint64_t) n_vms >= 1000)
            printf(" %s x%ld: %.0f;", groups[g].name, groups[g].tid, (double) groups[g].ns / 1e3 / n_vms);
    double ended = total_s * 1e9 - (double) sum;
    printf(" (ended): %.0f\n", ended > 0 ? ended / 1e3 / n_vms : 0.0);
}

/* One pass of the loop through yunguand's code: N_VMS VMs in requests of
 * PER_REQUEST submitted and approved, built, then decommissioned.  ROUND
 * numbers the pass (request names, VM ids: the store keeps earlier ones). */
static void controller_loop(struct fixture *f, int n_vms, int round, struct cost *ret_build,
                            struct cost *ret_decom)
{
    struct cost u0 = usage_now();
    int n_requests = (n_vms + PER_REQUEST - 1) / PER_REQUEST;
    for (int i = 0; i < n_requests; i++) {
        struct submit_job *j = xcalloc(1, sizeof *j);
        int count_i = i == n_requests - 1 && n_vms % PER_REQUEST ? n_vms % PER_REQUEST : PER_REQUEST;
        j->yaml = xasprintf(
            "apiVersion: yunguan/v1\nkind: ResourceRequest\n"
            "metadata: {name: bench-%d-%d, department: health}\n"
            "spec:\n  purpose: benchmark\n  securityLevel: 2\n  lease: {until: 2099-06-30}\n"
            "  network: {segment: dmz, ipv6: preferred}\n"
            "  vms:\n    - {name: web, count: %d, vcpus: 1, memory: 64MiB, disk: 1GiB, image: none}\n",
            round, i, count_i);
        store_submit(f->store, submit_run, submit_done, j);
    }
    vms_engine_kick();
    /* Polled every 20 ms: a request is 'active' once all its VMs run (a
     * cheap count; the VMs themselves are counted once, after).  Earlier
     * rounds' requests are closed. */
    wait_count(f, "SELECT count(*) FROM requests WHERE state = 'active'", n_requests, 600);
    *ret_build = cost_since(u0);
    if (count(f, "SELECT count(*) FROM vms WHERE state = 'running' AND step IS NULL") != n_vms)
        die("a request is active but not all its VMs are running");
    struct cost u1 = usage_now();
    for (int64_t id = (int64_t) round * n_vms + 1; id <= (int64_t) (round + 1) * n_vms; id++) {
        struct decom_job *j = xcalloc(1, sizeof *j);
        j->id = id;
        /* As the API submits a decommission (api-vms.c). */
        store_submit_flags(f->store, decom_run, free_done, j, STORE_JOB_WRITES_LAST);
    }
    vms_engine_kick();
    wait_count(f, "SELECT count(*) FROM reclaims", (int64_t) (round + 1) * n_vms, 600);
    *ret_decom = cost_since(u1);
}

static int bench_loop(int n_vms, int n_hosts)
{
    struct fixture f;
    fixture_open(&f);
    char *uris[64];
    for (int h = 0; h < n_hosts; h++) {
        char *node = write_node(f.dir, h, 0, f.instance, 0);
        uris[h] = xasprintf("test://%s", node);
        free(node);
    }
    struct vms_config cfg;
    vms_config_defaults(&cfg);
    cfg.reconcile_seconds = 3600;
    cfg.shutdown_timeout_seconds = 1;
    struct vms_engine *e;
    char *err = NULL;
    if (vms_engine_start(f.store, &cfg, &e, &err) < 0)
        die(err);
    for (int h = 0; h < n_hosts; h++) {
        char name[16];
        snprintf(name, sizeof name, "hv%02d", h + 1);
        struct host_job j = { name, uris[h] };
        if (store_run(f.store, host_run, &j) < 0)
            die("cannot register a host");
        vms_engine_host_changed(name, uris[h], POOL);
    }
    wait_count(&f, "SELECT count(*) FROM hosts WHERE hv_status = 'up'", n_hosts, 30);

    /* Warm-up, not measured: the same direct calls once, then the
     * controller's loop once, so that both measured runs find the
     * process's heap grown and the store's connections with their page
     * caches filled.  In a fresh process the first run pays the heap's
     * first growth (page faults, brk and arena growth: ~150 us per VM
     * here, whichever run comes first), and a fresh store connection its
     * page cache's (SQLite's page buffers: 2 % of the controller's CPU in
     * a profile, the largest cause of its page faults); yunguand, a
     * long-running daemon, pays both once.  The measured loop then finds
     * a store with the warm-up's requests, VMs and audit trail in it, as
     * a production store has its history.  WARMUP=0 skips both (the
     * controller then runs first in a cold process, on an empty store). */
    const char *warm_env = getenv("WARMUP");
    bool warm = !warm_env || strcmp(warm_env, "0") != 0;
    struct cost warm_build = { 0 }, warm_decom = { 0 };
    if (warm)
        direct_run(uris, n_hosts, n_vms, 1, &warm_build, &warm_decom);

    int n_requests = (n_vms + PER_REQUEST - 1) / PER_REQUEST;
    struct store_stats s0;
    int64_t audits0 = 0;
    struct cost build, decom;
    if (warm)
        controller_loop(&f, n_vms, 0, &build, &decom);
    store_get_stats(f.store, &s0);
    audits0 = count(&f, "SELECT count(*) FROM audit");
    /* PROFILE=direct: the profile covers the direct calls (1 thread per
     * host) instead, for a side-by-side of the libvirt work. */
    const char *window = getenv("PROFILE");
    bool profile_direct = window && streq(window, "direct");
    static struct thread_cpu threads0[MAX_THREADS], threads1[MAX_THREADS];
    size_t n_threads0 = threads_snapshot(threads0);
    if (!profile_direct)
        perf_control("enable");
    controller_loop(&f, n_vms, warm ? 1 : 0, &build, &decom);
    if (!profile_direct)
        perf_control("disable");
    size_t n_threads1 = threads_snapshot(threads1);
    struct store_stats s1;
    store_get_stats(f.store, &s1);
    vms_engine_stop(e);
    int64_t closed = count(&f, "SELECT count(*) FROM requests WHERE state = 'closed'") -
                     (warm ? n_requests : 0);
    int64_t audits = count(&f, "SELECT count(*) FROM audit") - audits0;
    struct cost total = cost_add(build, decom);

    /* The same libvirt calls, directly: 1, then 4 threads per host. */
    struct cost d1_build, d1_decom, d4_build, d4_decom;
    if (profile_direct)
        perf_control("enable");
    direct_run(uris, n_hosts, n_vms, 1, &d1_build, &d1_decom);
    if (profile_direct)
        perf_control("disable");
    direct_run(uris, n_hosts, n_vms, 4, &d4_build, &d4_decom);
    struct cost d1 = cost_add(d1_build, d1_decom), d4 = cost_add(d4_build, d4_decom);
    /* The baseline is the better of the two, figure by figure. */
    struct cost best = { d1.wall < d4.wall ? d1.wall : d4.wall, d1.cpu < d4.cpu ? d1.cpu : d4.cpu, 0, 0 };
    struct cost best_build = { d1_build.wall < d4_build.wall ? d1_build.wall : d4_build.wall,
                               d1_build.cpu < d4_build.cpu ? d1_build.cpu : d4_build.cpu, 0, 0 };
    struct cost best_decom = { d1_decom.wall < d4_decom.wall ? d1_decom.wall : d4_decom.wall,
                               d1_decom.cpu < d4_decom.cpu ? d1_decom.cpu : d4_decom.cpu, 0, 0 };

    double load[3] = { 0 };
    getloadavg(load, 3);
    printf("full loop on test:///<node file> x %d hosts: %d VMs (%d requests of up to %d)\n",
           n_hosts, n_vms, n_requests, PER_REQUEST);
    if (warm)
        print_cost("warm-up (direct, not counted):", cost_add(warm_build, warm_decom), n_vms);
    else
        printf("no warm-up (WARMUP=0): the controller runs first, in a cold process\n");
    printf("controller (yunguand's code, in this process):\n");
    print_cost("submit+approve -> all running:", build, n_vms);
    print_cost("decommission -> all reclaimed:", decom, n_vms);
    print_cost("whole loop:", total, n_vms);
    print_threads(threads0, n_threads0, threads1, n_threads1, total.cpu, n_vms);
    printf("  store: %llu commits for %llu jobs; %lld audit entries; %lld of %d requests closed\n",
           (unsigned long long) (s1.commits - s0.commits), (unsigned long long) (s1.jobs - s0.jobs),
           (long long) audits, (long long) closed, n_requests);
    printf("the same libvirt calls made directly (volume, define, start | shutdown, wipe, delete, undefine;\n"
           "same XML, every VM built then every VM decommissioned, one connection per host):\n");
    print_cost("1 thread per host, build:", d1_build, n_vms);
    print_cost("1 thread per host, decommission:", d1_decom, n_vms);
    print_cost("1 thread per host, both:", d1, n_vms);
    print_cost("4 threads per host, build:", d4_build, n_vms);
    print_cost("4 threads per host, decommission:", d4_decom, n_vms);
    print_cost("4 threads per host, both:", d4, n_vms);
    printf("controller / direct (the better direct figure of the two):\n");
    printf("  build:         %5.2fx wall  %5.2fx CPU\n", build.wall / best_build.wall, build.cpu / best_build.cpu);
    printf("  decommission:  %5.2fx wall  %5.2fx CPU\n", decom.wall / best_decom.wall, decom.cpu / best_decom.cpu);
    printf("  whole loop:    %5.2fx wall  %5.2fx CPU   (goal <= 1.5x)\n", total.wall / best.wall,
           total.cpu / best.cpu);
    printf("  load average at the end: %.2f %.2f %.2f on %ld CPUs (wall figures are only fair when low)\n",
           load[0], load[1], load[2], sysconf(_SC_NPROCESSORS_ONLN));
    for (int h = 0; h < n_hosts; h++)
        free(uris[h]);
    fixture_close(&f);
    return 0;
}

static int bench_reconcile(int n_domains, int n_hosts)
{
    struct fixture f;
    fixture_open(&f);
    char *uris[64];
    int per = n_domains / n_hosts;
    /* The store: one running VM per domain, on its host. */
    sqlite3 *db;
    sqlite3_open(f.path, &db);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_exec(db, "BEGIN; INSERT INTO requests (id, department_id, name, state, purpose, security_level, "
                     "lease_until, segment, ipv6, total_vms, total_vcpus, total_memory_mib, total_disk_gib, "
                     "source, submitted_by, created_at, updated_at) VALUES (1, 1, 'r', 'active', 'p', 2, "
                     "'2099-01-01', 'dmz', 'off', 0, 0, 0, 0, '', 'x', 'x', 'x');", NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db, "INSERT INTO vms (id, request_id, department_id, name, group_position, vcpus, "
                           "memory_mib, disk_gib, image, ipv6_mode, segment_id, host_id, state, domain_name, "
                           "lease_until, created_at, updated_at) VALUES (?1, 1, 1, 'v', 0, 1, 64, 1, 'i', "
                           "'off', 1, ?2, 'running', ?3, '2099-01-01', 'x', 'x')", -1, &ins, NULL);
    for (int h = 0; h < n_hosts; h++) {
        char *node = write_node(f.dir, h, per, f.instance, (int64_t) h * per + 1);
        uris[h] = xasprintf("test://%s", node);
        free(node);
        char sql[256];
        snprintf(sql, sizeof sql, "INSERT INTO hosts (id, name, libvirt_uri, storage_pool, registered_at, "
                 "created_at) VALUES (%d, 'hv%02d', '%s', '" POOL "', 'x', 'x')", h + 1, h + 1, uris[h]);
        sqlite3_exec(db, sql, NULL, NULL, NULL);
        for (int i = 0; i < per; i++) {
            int64_t id = (int64_t) h * per + i + 1;
            char name[64];
            vms_domain_name(f.instance, id, name);
            sqlite3_bind_int64(ins, 1, id);
            sqlite3_bind_int(ins, 2, h + 1);
            sqlite3_bind_text(ins, 3, name, -1, SQLITE_TRANSIENT);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
    }
    sqlite3_finalize(ins);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);

    struct vms_config cfg;
    vms_config_defaults(&cfg);
    cfg.reconcile_seconds = 3600;
    struct vms_engine *e;
    char *err = NULL;
    double t0 = now_s();
    if (vms_engine_start(f.store, &cfg, &e, &err) < 0)
        die(err);
    wait_count(&f, "SELECT count(*) FROM hosts WHERE hv_status = 'up'", n_hosts, 120);
    double t_up = now_s();
    double runs[5];
    for (int i = 0; i < 5; i++)
        runs[i] = vms_engine_reconcile_now(e);
    json_t *drift = vms_drift_json();
    long long items = (long long) json_array_size(json_object_get(drift, "items"));
    json_decref(drift);
    vms_engine_stop(e);
    double best = runs[0], sum = 0;
    for (int i = 0; i < 5; i++) {
        sum += runs[i];
        if (runs[i] < best)
            best = runs[i];
    }
    printf("reconcile: %d domains on %d test-driver hosts (%d each), %d VMs in the store\n", per * n_hosts,
           n_hosts, per, per * n_hosts);
    printf("  connect + first capacity read of every host: %.3f s\n", t_up - t0);
    printf("  one reconcile pass of every host: best %.1f ms, mean %.1f ms over 5 (goal < 500 ms)\n",
           best, sum / 5);
    printf("  drift found: %lld items (expected 0)\n", items);
    for (int h = 0; h < n_hosts; h++)
        free(uris[h]);
    fixture_close(&f);
    return 0;
}

int main(int argc, char **argv)
{
    log_set_level(LOG_LEVEL_WARN);
    hv_silence_errors();
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);      /* as yunguand.c does */
    const char *mode = argc > 1 ? argv[1] : "loop";
    int n = argc > 2 ? atoi(argv[2]) : 0;
    int hosts = argc > 3 ? atoi(argv[3]) : streq(mode, "loop") ? 10 : 4;
    if (hosts < 1 || hosts > 64)
        hosts = 4;
    if (streq(mode, "loop"))
        return bench_loop(n > 0 ? n : 1000, hosts);
    if (streq(mode, "reconcile"))
        return bench_reconcile(n > 0 ? n : 10000, hosts);
    fprintf(stderr, "usage: bench-vms loop [VMS [HOSTS]] | reconcile [DOMAINS [HOSTS]]\n");
    return 2;
}

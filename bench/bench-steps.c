/* bench-steps: what one enable-dual-stack-like apply costs on a host, per
 * step, through the agent's own task runner (agents/tasks.c): journal
 * fsyncs, fresh netlink dumps, the change, the check evaluations.
 *
 * Runs inside a private network namespace (root) with a veth pair, so the
 * host is not touched.  Each round applies the task (from IPv6 off) and
 * then a second task puts the link back; only the apply is measured.  The
 * address is added with nodad: DAD's wait (about a second, the kernel's
 * timer) is not the agent's cost and would hide it.
 *
 * Prints, per step, the wall time (median and 90th percentile of the
 * rounds) and the CPU time of the thread (CLOCK_THREAD_CPUTIME_ID, the
 * figure to trust on a shared machine).  Pass a STATE_DIR on tmpfs
 * (/dev/shm/…) to see the cost without the disk's fsync latency.
 *
 *   bench/bench-steps [ROUNDS] [STATE_DIR]      (default 50, a temporary
 *                                                directory under .) */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include "steps.h"
#include "tasks.h"
#include "util.h"

#define N_STEPS 5
#define SEGMENT "{\"name\": \"health-dmz\", \"interface\": \"br-health\", \"ipv4_prefix\": \"198.51.100.0/24\"," \
    " \"ipv4_gateway\": \"198.51.100.1\", \"ipv6_prefix\": \"2001:db8:10::/64\", \"ipv6_gateway\": \"2001:db8:10::1\"," \
    " \"plan\": {\"ipv4_address\": \"198.51.100.21\", \"ipv6_address\": \"2001:db8:10::21\"}}"

static const char apply_task[] =
    "{\"id\": 1, \"mode\": \"apply\", \"playbook\": \"enable-dual-stack\", \"segment\": " SEGMENT ", \"steps\": ["
    "{\"index\": 0, \"name\": \"enable ipv6\", \"action\": \"sysctl.set\", \"args\": {\"key\":"
    " \"net/ipv6/conf/br-health/disable_ipv6\", \"value\": \"0\"}},"
    "{\"index\": 1, \"name\": \"accept RAs\", \"action\": \"sysctl.set\", \"args\": {\"key\":"
    " \"net/ipv6/conf/br-health/accept_ra\", \"value\": \"2\"}},"
    "{\"index\": 2, \"name\": \"address\", \"action\": \"address.add\", \"args\": {\"address\":"
    " \"2001:db8:10::21/64\", \"interface\": \"br-health\", \"nodad\": true},"
    " \"verify\": {\"check\": \"ipv6-global-address\", \"expect\": \"pass\", \"timeout_ms\": 5000}},"
    "{\"index\": 3, \"name\": \"default route\", \"action\": \"route.add\", \"args\": {\"dst\": \"::/0\","
    " \"via\": \"2001:db8:10::1\", \"interface\": \"br-health\"}},"
    "{\"index\": 4, \"name\": \"verify\", \"action\": \"check.run\", \"args\": {\"check\":"
    " \"ipv6-default-route\", \"expect\": \"pass\", \"timeout_ms\": 10000}}]}";

static const char revert_task[] =
    "{\"id\": 2, \"mode\": \"apply\", \"segment\": " SEGMENT ", \"steps\": ["
    "{\"index\": 0, \"action\": \"route.remove\", \"args\": {\"dst\": \"::/0\"}},"
    "{\"index\": 1, \"action\": \"address.remove\", \"args\": {\"address\": \"2001:db8:10::21/64\","
    " \"interface\": \"br-health\"}},"
    "{\"index\": 2, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/br-health/accept_ra\","
    " \"value\": \"1\"}},"
    "{\"index\": 3, \"action\": \"sysctl.set\", \"args\": {\"key\": \"net/ipv6/conf/br-health/disable_ipv6\","
    " \"value\": \"1\"}}]}";

/* The thread's CPU time, user and system (scheduler accounting, to the
 * nanosecond; getrusage counts in ticks, too coarse for one step). */
static uint64_t thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

struct sample {
    int rounds, round;
    uint64_t cpu_mark;
    size_t next_step;
    double *wall_ms[N_STEPS], *cpu_ms[N_STEPS];
};

static void on_progress(const struct task *t, json_t *result, void *userdata)
{
    (void) t;
    struct sample *s = userdata;
    uint64_t now = thread_cpu_us();
    json_t *step = json_array_get(json_object_get(result, "steps"), s->next_step);
    s->wall_ms[s->next_step][s->round] = (double) json_integer_value(json_object_get(step, "duration_us")) / 1000.0;
    s->cpu_ms[s->next_step][s->round] = (double) (now - s->cpu_mark) / 1000.0;
    s->next_step++;
    s->cpu_mark = thread_cpu_us();
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t) n, sizeof *v, cmp_double);
    int i = (int) (p * (n - 1) + 0.5);
    return v[i];
}

static struct task *load(const char *text)
{
    json_t *js = json_loads(text, 0, NULL);
    struct task *t = NULL;
    char *err = NULL;
    if (!js || task_from_json(js, -1, &t, NULL, &err) < 0) {
        fprintf(stderr, "bench-steps: bad task: %s\n", err ? err : "JSON");
        exit(2);
    }
    json_decref(js);
    return t;
}

static int write_sysctl(const char *key, const char *value)
{
    char path[256];
    snprintf(path, sizeof path, "/proc/sys/%s", key);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, value, strlen(value));
    close(fd);
    return n < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 50;
    if (rounds < 1 || rounds > 100000) {
        fprintf(stderr, "usage: bench-steps [ROUNDS] [STATE_DIR]\n");
        return 2;
    }
    char tmpdir[] = "./bench-steps-state-XXXXXX";
    const char *state_dir = argc > 2 ? argv[2] : NULL;
    if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0) {
        fprintf(stderr, "bench-steps: needs root for a private network namespace (%s)\n", strerror(errno));
        return 77;
    }
    if (!state_dir) {
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "bench-steps: mkdtemp: %s\n", strerror(errno));
            return 1;
        }
        state_dir = tmpdir;
    }
    char *err = NULL;
    struct nl_sock *sock = steps_socket_new(&err);
    if (!sock) {
        fprintf(stderr, "bench-steps: %s\n", err);
        return 1;
    }
    write_sysctl("net/ipv6/conf/default/accept_dad", "0");
    if (rtnl_link_veth_add(sock, "br-health", "peer0", getpid()) < 0) {
        fprintf(stderr, "bench-steps: cannot make a veth pair\n");
        return 1;
    }
    const char *names[] = { "lo", "br-health", "peer0" };
    for (size_t i = 0; i < 3; i++) {
        struct rtnl_link *link = NULL, *change = rtnl_link_alloc();
        if (rtnl_link_get_kernel(sock, 0, names[i], &link) == 0) {
            rtnl_link_set_flags(change, IFF_UP);
            rtnl_link_change(sock, link, change, 0);
            rtnl_link_put(link);
        }
        rtnl_link_put(change);
    }
    write_sysctl("net/ipv6/conf/br-health/disable_ipv6", "1");

    struct task *apply = load(apply_task), *revert = load(revert_task);
    struct sample s = { .rounds = rounds };
    for (int i = 0; i < N_STEPS; i++) {
        s.wall_ms[i] = xcalloc((size_t) rounds, sizeof(double));
        s.cpu_ms[i] = xcalloc((size_t) rounds, sizeof(double));
    }
    double *task_wall = xcalloc((size_t) rounds, sizeof(double));
    double *task_cpu = xcalloc((size_t) rounds, sizeof(double));
    struct task_run_options apply_opt = { .state_dir = state_dir, .local = true, .progress = on_progress,
                                          .userdata = &s };
    struct task_run_options revert_opt = { .state_dir = state_dir, .local = true };
    for (s.round = 0; s.round < rounds; s.round++) {
        s.next_step = 0;
        uint64_t w0 = monotonic_usec(), c0 = thread_cpu_us();
        s.cpu_mark = c0;
        json_t *res = task_run(sock, apply, &apply_opt);
        task_wall[s.round] = (double) (monotonic_usec() - w0) / 1000.0;
        task_cpu[s.round] = (double) (thread_cpu_us() - c0) / 1000.0;
        const char *status = json_string_value(json_object_get(res, "status"));
        if (!streq(status, "succeeded") || s.next_step != N_STEPS) {
            fprintf(stderr, "bench-steps: round %d: %s: %s\n", s.round, status,
                    json_string_value(json_object_get(res, "message")));
            return 1;
        }
        json_decref(res);
        res = task_run(sock, revert, &revert_opt);
        if (!streq(json_string_value(json_object_get(res, "status")), "succeeded")) {
            fprintf(stderr, "bench-steps: revert failed: %s\n", json_string_value(json_object_get(res, "message")));
            return 1;
        }
        json_decref(res);
    }

    printf("bench-steps: enable-dual-stack-like apply, %d rounds, journal in '%s' (fdatasync per change)\n",
           rounds, state_dir);
    printf("%-16s %-14s %10s %10s %10s\n", "step", "action", "wall p50", "wall p90", "cpu p50");
    for (size_t i = 0; i < N_STEPS; i++) {
        const struct step *st = &apply->steps[i];
        printf("%-16s %-14s %8.3f ms %7.3f ms %7.3f ms\n", st->name, playbook_action_to_string(st->action),
               pct(s.wall_ms[i], rounds, 0.5), pct(s.wall_ms[i], rounds, 0.9), pct(s.cpu_ms[i], rounds, 0.5));
    }
    printf("%-31s %8.3f ms %7.3f ms %7.3f ms\n", "whole task (journal, result)", pct(task_wall, rounds, 0.5),
           pct(task_wall, rounds, 0.9), pct(task_cpu, rounds, 0.5));
    printf("reproduce: sudo bench/bench-steps %d%s%s   (CPU time is the figure to trust on a shared machine)\n",
           rounds, argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
    if (state_dir == tmpdir)
        rmdir(tmpdir);
    return 0;
}

/* The playbook loader and renderer alone (lib/playbook.c): CPU time to
 * parse each shipped playbook, and to render enable-dual-stack for one host
 * (what a run does for every host before it stores anything).  CPU time
 * (getrusage), not wall time, so the figures hold on a busy machine.
 *
 * Usage: bench-playbook-render [PLAYBOOK-DIR [ROUNDS]]
 *   defaults: $top_srcdir/playbooks (else ./playbooks), 2000 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

#include "playbook.h"
#include "util.h"

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double) ru.ru_utime.tv_sec + (double) ru.ru_stime.tv_sec +
           ((double) ru.ru_utime.tv_usec + (double) ru.ru_stime.tv_usec) / 1e6;
}

static int yaml_only(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 5 && streq(d->d_name + n - 5, ".yaml");
}

int main(int argc, char **argv)
{
    const char *top = getenv("top_srcdir");
    _cleanup_free_ char *dir = argc > 1 ? xstrdup(argv[1]) : xasprintf("%s/playbooks", top ? top : ".");
    long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
    struct dirent **list;
    int n = scandir(dir, &list, yaml_only, alphasort);
    if (n <= 0) {
        fprintf(stderr, "bench-playbook-render: no playbooks in %s\n", dir);
        return 1;
    }
    printf("bench-playbook-render %s %ld  (CPU time per operation)\n", dir, rounds);
    for (int i = 0; i < n; i++) {
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, list[i]->d_name);
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (read_file_limited(path, PLAYBOOK_MAX_BYTES, &text, &len) < 0)
            return 1;
        double t0 = cpu_seconds();
        struct playbook *pb = NULL;
        for (long r = 0; r < rounds; r++) {
            struct yg_error *e = NULL;
            playbook_free(pb);
            pb = NULL;
            if (playbook_parse(text, len, path, &pb, &e) != 0) {
                fprintf(stderr, "%s: %s\n", path, e->message);
                return 1;
            }
        }
        double parse_us = (cpu_seconds() - t0) / (double) rounds * 1e6;
        char host[32];
        struct playbook_vars v = {
            .host = host, .segment = "health-dmz", .interface = "br-health",
            .ipv4_prefix = "198.51.100.0/24", .ipv4_gateway = "198.51.100.1",
            .ipv6_prefix = "2001:db8:10::/64", .ipv6_gateway = "2001:db8:10::1",
            .plan_ipv4_address = "198.51.100.21", .plan_ipv6_address = "2001:db8:10::21",
        };
        t0 = cpu_seconds();
        for (long r = 0; r < rounds; r++) {
            json_t *steps = NULL;
            struct yg_error *e = NULL;
            snprintf(host, sizeof host, "hv%ld", r);
            if (playbook_render(pb, &v, &steps, &e) != 0) {
                fprintf(stderr, "%s: %s\n", path, e->message);
                return 1;
            }
            json_decref(steps);
        }
        double render_us = (cpu_seconds() - t0) / (double) rounds * 1e6;
        printf("%-32s %5zu bytes %2zu steps  parse %7.1f us  render one host %6.1f us\n",
               list[i]->d_name, len, playbook_n_steps(pb), parse_us, render_us);
        playbook_free(pb);
        free(list[i]);
    }
    free(list);
    return 0;
}

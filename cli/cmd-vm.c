/* yunguan vm list | show | start | stop | reboot | decommission | reclaim |
 *            decommissions | approve-decommission | reject-decommission |
 *            lease-policy
 * yunguan host add | list | show | drain | undrain   (in the host group) */
#include <config.h>
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define WAIT_DEFAULT_SECONDS 120

/* ---- hosts ---- */

static char *host_capacity_text(const json_t *h)
{
    const json_t *cap = json_object_get(h, "capacity"), *used = json_object_get(h, "used");
    if (!json_is_object(cap))
        return xstrdup("-");
    _cleanup_free_ char *mem = cli_format_mib(cli_json_int(used, "memory_mib"));
    _cleanup_free_ char *memcap = cli_format_mib(cli_json_int(cap, "memory_mib"));
    return xasprintf("%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT " vCPU, %s/%s, %" JSON_INTEGER_FORMAT
                     "/%" JSON_INTEGER_FORMAT " GiB",
                     cli_json_int(used, "vcpus"), cli_json_int(cap, "vcpus"), mem, memcap,
                     cli_json_int(used, "disk_gib"), cli_json_int(cap, "disk_gib"));
}

static char *host_segments_text(const json_t *h)
{
    struct strbuf sb;
    strbuf_init(&sb);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(h, "segments"), i, s)
        strbuf_printf(&sb, "%s%s (%s)", i ? ", " : "", json_string_value(json_object_get(s, "name")),
                      json_string_value(json_object_get(s, "bridge")));
    return sb.len ? strbuf_steal(&sb) : (strbuf_free(&sb), xstrdup("-"));
}

static int host_name_operand(const struct cli_command *cmd, int argc, char **argv, const char **ret)
{
    int r = cli_operands(cmd, argc, argv, 1, 1, "HOST");
    if (r != 0)
        return r;
    if (!cli_department_valid(argv[optind]))
        return cli_usage_error(cmd, "'%s' is not a host name (%s)", argv[optind], CLI_DEPARTMENT_RULE);
    *ret = argv[optind];
    return 0;
}

int cli_host_add_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "uri", required_argument, NULL, 'u' },
        { "pool", required_argument, NULL, 'p' },
        { "segment", required_argument, NULL, 's' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *uri = NULL, *pool = NULL, *name;
    json_t *segments = json_array();
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT:
            json_decref(segments);
            return r;
        case 'u': uri = optarg; break;
        case 'p': pool = optarg; break;
        case 's': json_array_append_new(segments, json_string(optarg)); break;
        }
    }
    if ((r = host_name_operand(cmd, argc, argv, &name)) != 0) {
        json_decref(segments);
        return r;
    }
    if (!uri || !pool) {
        json_decref(segments);
        return cli_usage_error(cmd, "a host needs --uri LIBVIRT_URI and --pool STORAGE_POOL");
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "name", name, "libvirt_uri", uri,
                             "storage_pool", pool, "segments", segments);
    _cleanup_json_ json_t *root = NULL;
    r = cli_call(cli, "POST", "/api/v1/hosts", body, &root);
    json_decref(body);
    if (r != 0)
        return r;
    if (cli->json) {
        cli_print_json(root);
        return 0;
    }
    const json_t *h = json_object_get(root, "host");
    _cleanup_free_ char *segs = host_segments_text(h);
    printf("Host '%s' registered: %s, pool '%s', segments %s.\n"
           "The controller connects to it now; 'yunguan host show %s' gives its capacity.\n",
           name, uri, pool, segs, name);
    return 0;
}

int cli_host_list_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", "/api/v1/hosts", NULL, &root)) != 0 || !root)
        return r;
    static const char *const headers[] = { "HOST", "STATUS", "DRAINED", "VMS", "USED / CAPACITY", "SEGMENTS", "URI" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 3);
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(root, "items"), i, h) {
        if (!json_is_true(json_object_get(h, "hypervisor")))
            continue;
        table_add_owned(t, cli_json_text(h, "name"));
        table_add_owned(t, cli_json_text(h, "status"));
        table_add(t, json_is_true(json_object_get(h, "drained")) ? "yes" : "no");
        table_addf(t, "%" JSON_INTEGER_FORMAT, cli_json_int(json_object_get(h, "used"), "vms"));
        table_add_owned(t, host_capacity_text(h));
        table_add_owned(t, host_segments_text(h));
        table_add_owned(t, cli_json_text(h, "libvirt_uri"));
    }
    if (table_rows(t) == 0)
        printf("No hypervisor hosts yet; register one with 'yunguan host add HOST --uri URI --pool POOL'.\n");
    else
        table_print(t, stdout);
    return 0;
}

int cli_host_show_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    const char *name;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = host_name_operand(cmd, argc, argv, &name)) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/hosts/%s", name);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", path, NULL, &root)) != 0 || !root)
        return r;
    const json_t *h = json_object_get(root, "host"), *cap = json_object_get(h, "capacity"),
                 *used = json_object_get(h, "used"), *free_ = json_object_get(h, "free");
    _cleanup_(table_freep) struct table *t = table_new(2, NULL);
    table_add(t, "Host:");
    table_add_owned(t, cli_json_text(h, "name"));
    table_add(t, "libvirt:");
    table_add_owned(t, cli_json_text(h, "libvirt_uri"));
    table_add(t, "Status:");
    _cleanup_free_ char *status = cli_json_text(h, "status"), *err = cli_json_text(h, "status_error");
    table_add_owned(t, streq(err, "-") ? xstrdup(status) : xasprintf("%s (%s)", status, err));
    table_add(t, "Drained:");
    table_add(t, json_is_true(json_object_get(h, "drained")) ? "yes (no new VMs)" : "no");
    table_add(t, "Storage pool:");
    table_add_owned(t, cli_json_text(h, "storage_pool"));
    table_add(t, "Segments:");
    table_add_owned(t, host_segments_text(h));
    if (json_is_object(cap)) {
        _cleanup_free_ char *mu = cli_format_mib(cli_json_int(used, "memory_mib"));
        _cleanup_free_ char *mc = cli_format_mib(cli_json_int(cap, "memory_mib"));
        _cleanup_free_ char *mf = cli_format_mib(cli_json_int(free_, "memory_mib"));
        table_add(t, "vCPUs:");
        table_addf(t, "%" JSON_INTEGER_FORMAT " used of %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT
                   " CPUs x %.2g overcommit), %" JSON_INTEGER_FORMAT " free",
                   cli_json_int(used, "vcpus"), cli_json_int(cap, "vcpus"), cli_json_int(cap, "cpus"),
                   json_number_value(json_object_get(cap, "vcpu_overcommit")), cli_json_int(free_, "vcpus"));
        table_add(t, "Memory:");
        table_addf(t, "%s used of %s, %s free (no overcommit)", mu, mc, mf);
        table_add(t, "Disk:");
        table_addf(t, "%" JSON_INTEGER_FORMAT " GiB used of %" JSON_INTEGER_FORMAT " GiB, %" JSON_INTEGER_FORMAT
                   " GiB free", cli_json_int(used, "disk_gib"), cli_json_int(cap, "disk_gib"),
                   cli_json_int(free_, "disk_gib"));
        table_add(t, "Read at:");
        table_add_owned(t, cli_json_text(cap, "read_at"));
    } else {
        table_add(t, "Capacity:");
        table_add(t, "not known yet (libvirt not reached)");
    }
    table_add(t, "VMs:");
    table_addf(t, "%" JSON_INTEGER_FORMAT, cli_json_int(used, "vms"));
    table_print(t, stdout);
    return 0;
}

int cli_host_drain_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    const char *name;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = host_name_operand(cmd, argc, argv, &name)) != 0)
        return r;
    bool drain = streq(cmd->name, "drain");
    _cleanup_free_ char *path = xasprintf("/api/v1/hosts/%s/%s", name, cmd->name);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call(cli, "POST", path, NULL, &root)) != 0)
        return r;
    if (cli->json)
        cli_print_json(root);
    else if (drain)
        printf("Host '%s' is drained: it gets no new VMs; its %" JSON_INTEGER_FORMAT " VMs stay.\n", name,
               cli_json_int(json_object_get(json_object_get(root, "host"), "used"), "vms"));
    else
        printf("Host '%s' takes new VMs again.\n", name);
    return 0;
}

/* ---- VMs ---- */

static int vm_id_operand(const struct cli_command *cmd, int argc, char **argv, json_int_t *ret)
{
    int r = cli_operands(cmd, argc, argv, 1, 1, "ID");
    if (r != 0)
        return r;
    if (cli_parse_id(argv[optind], ret) < 0)
        return cli_usage_error(cmd, "'%s' is not a VM id (a positive integer)", argv[optind]);
    return 0;
}

/* "notice: stop on 2027-06-30" from the lease object. */
static char *lease_text(const json_t *vm)
{
    const json_t *lease = json_object_get(vm, "lease");
    _cleanup_free_ char *until = cli_json_text(lease, "until"), *state = cli_json_text(lease, "state");
    if (streq(state, "notice"))
        return xasprintf("%s NOTICE: ends soon", until);
    if (streq(state, "expired"))
        return xasprintf("%s EXPIRED: decommission after grace", until);
    if (streq(state, "over"))
        return xasprintf("%s OVER", until);
    return xstrdup(until);
}

static int cli_vm_list_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "state", required_argument, NULL, 's' },
        { "request", required_argument, NULL, 'r' },
        { "department", required_argument, NULL, 'd' },
        { "all", no_argument, NULL, 'a' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *state = NULL, *department = NULL;
    json_int_t request = 0;
    bool all = false;
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 's': state = optarg; break;
        case 'd':
            if (!cli_department_valid(optarg))
                return cli_usage_error(cmd, "'%s' is not a department name (%s)", optarg, CLI_DEPARTMENT_RULE);
            department = optarg;
            break;
        case 'a': all = true; break;
        case 'r':
            if (cli_parse_id(optarg, &request) < 0)
                return cli_usage_error(cmd, "--request takes a request id, not '%s'", optarg);
            break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    struct strbuf p;
    strbuf_init(&p);
    strbuf_puts(&p, "/api/v1/vms?limit=1000");
    if (state) {
        if (strspn(state, "abcdefghijklmnopqrstuvwxyz") != strlen(state) || strlen(state) > 32) {
            strbuf_free(&p);
            return cli_usage_error(cmd, "'%s' is not a VM state", state);
        }
        strbuf_printf(&p, "&state=%s", state);
    }
    if (request)
        strbuf_printf(&p, "&request=%" JSON_INTEGER_FORMAT, request);
    if (department)
        strbuf_printf(&p, "&department=%s", department);
    _cleanup_free_ char *path = strbuf_steal(&p);
    _cleanup_json_ json_t *root = NULL;
    /* Decommissioned VMs are history: shown with --all or --state. */
    if ((r = cli_fetch_list_shown(cli, path, 0, true, &root)) != 0 || !root)
        return r;
    static const char *const headers[] = { "ID", "NAME", "REQUEST", "DEPARTMENT", "STATE", "HOST", "IPV4",
                                           "IPV6", "LEASE" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 0);
    size_t i, notices = 0;
    json_t *vm;
    json_array_foreach(json_object_get(root, "items"), i, vm) {
        _cleanup_free_ char *st = cli_json_text(vm, "state");
        if (!all && !state && streq(st, "decommissioned"))
            continue;
        table_add_owned(t, cli_json_text(vm, "id"));
        table_add_owned(t, cli_json_text(vm, "name"));
        _cleanup_free_ char *req = cli_json_text(vm, "request");
        table_add_owned(t, xasprintf("%" JSON_INTEGER_FORMAT " %s", cli_json_int(vm, "request_id"), req));
        table_add_owned(t, cli_json_text(vm, "department"));
        _cleanup_free_ char *step = cli_json_text(vm, "step");
        table_add_owned(t, streq(step, "-") ? xstrdup(st) : xasprintf("%s (%s)", st, step));
        table_add_owned(t, cli_json_text(vm, "host"));
        table_add_owned(t, cli_json_text(vm, "ipv4"));
        table_add_owned(t, cli_json_text(vm, "ipv6"));
        table_add_owned(t, lease_text(vm));
        if (json_object_get(json_object_get(vm, "lease"), "notice"))
            notices++;
    }
    if (table_rows(t) == 0) {
        printf("No VMs%s.\n", state ? " in that state" : " yet");
        return 0;
    }
    table_print(t, stdout);
    json_array_foreach(json_object_get(root, "items"), i, vm) {
        const json_t *notice = json_object_get(json_object_get(vm, "lease"), "notice");
        _cleanup_free_ char *st = cli_json_text(vm, "state");
        if (notice && (all || state || !streq(st, "decommissioned"))) {
            _cleanup_free_ char *text = cli_sanitize(json_string_value(notice));
            printf("Lease notice for VM %" JSON_INTEGER_FORMAT ": %s\n", cli_json_int(vm, "id"), text);
        }
    }
    return 0;
}

static void print_vm(const json_t *vm)
{
    _cleanup_(table_freep) struct table *t = table_new(2, NULL);
    table_set_max_width(t, 1, 100);
    table_add(t, "VM:");
    _cleanup_free_ char *name = cli_json_text(vm, "name");
    table_add_owned(t, xasprintf("%" JSON_INTEGER_FORMAT " %s", cli_json_int(vm, "id"), name));
    table_add(t, "Request:");
    _cleanup_free_ char *req = cli_json_text(vm, "request"), *dep = cli_json_text(vm, "department");
    table_add_owned(t, xasprintf("%" JSON_INTEGER_FORMAT " %s (%s)", cli_json_int(vm, "request_id"), req, dep));
    table_add(t, "State:");
    _cleanup_free_ char *st = cli_json_text(vm, "state"), *step = cli_json_text(vm, "step");
    table_add_owned(t, streq(step, "-") ? xstrdup(st) : xasprintf("%s (step '%s' under way)", st, step));
    if (json_is_string(json_object_get(vm, "error"))) {
        table_add(t, "Error:");
        table_add_owned(t, cli_json_text(vm, "error"));
    }
    if (json_is_string(json_object_get(vm, "waiting_reason"))) {
        table_add(t, "Waiting:");
        table_add_owned(t, cli_json_text(vm, "waiting_reason"));
    }
    table_add(t, "Size:");
    _cleanup_free_ char *mem = cli_format_mib(cli_json_int(vm, "memory_mib"));
    _cleanup_free_ char *img = cli_json_text(vm, "image");
    table_add_owned(t, xasprintf("%" JSON_INTEGER_FORMAT " vCPU, %s memory, %" JSON_INTEGER_FORMAT " GiB disk, image %s",
                                 cli_json_int(vm, "vcpus"), mem, cli_json_int(vm, "disk_gib"), img));
    table_add(t, "Host:");
    table_add_owned(t, cli_json_text(vm, "host"));
    table_add(t, "Domain:");
    table_add_owned(t, cli_json_text(vm, "domain"));
    table_add(t, "Network:");
    _cleanup_free_ char *seg = cli_json_text(vm, "segment"), *v4 = cli_json_text(vm, "ipv4"),
                        *v6 = cli_json_text(vm, "ipv6"), *mac = cli_json_text(vm, "mac");
    table_add_owned(t, xasprintf("segment %s, IPv4 %s, IPv6 %s, MAC %s", seg, v4, v6, mac));
    table_add(t, "Lease:");
    table_add_owned(t, lease_text(vm));
    if (json_object_get(json_object_get(vm, "lease"), "notice")) {
        table_add(t, "Lease notice:");
        table_add_owned(t, cli_json_text(json_object_get(vm, "lease"), "notice"));
    }
    table_print(t, stdout);
    const json_t *history = json_object_get(vm, "history");
    if (json_array_size(history)) {
        printf("\nHistory:\n");
        static const char *const headers[] = { "AT", "ACTION", "BY", "STATE" };
        _cleanup_(table_freep) struct table *h = table_new(YG_ARRAY_SIZE(headers), headers);
        size_t i;
        json_t *e;
        json_array_foreach(history, i, e) {
            table_add_owned(h, cli_json_text(e, "at"));
            table_add_owned(h, cli_json_text(e, "action"));
            _cleanup_free_ char *actor = cli_json_text(e, "actor"), *role = cli_json_text(e, "role");
            table_add_owned(h, xasprintf("%s (%s)", actor, role));
            table_add_owned(h, cli_json_text(json_object_get(e, "after"), "state"));
        }
        table_print(h, stdout);
    }
}

static int cli_vm_show_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    json_int_t id;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = vm_id_operand(cmd, argc, argv, &id)) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/vms/%" JSON_INTEGER_FORMAT, id);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call(cli, "GET", path, NULL, &root)) != 0)
        return r;
    if (cli->json)
        cli_print_json(root);
    else
        print_vm(json_object_get(root, "vm"));
    return 0;
}

/* Poll the VM until its step is done (bounded); the controller runs the
 * step on the host's worker. */
static int wait_step(struct cli *cli, json_int_t id, int seconds, json_t **ret_vm)
{
    _cleanup_free_ char *path = xasprintf("/api/v1/vms/%" JSON_INTEGER_FORMAT, id);
    uint64_t deadline = monotonic_usec() + (uint64_t) seconds * 1000000ull;
    unsigned delay_ms = 100;
    for (;;) {
        json_t *root = NULL;
        int r = cli_call(cli, "GET", path, NULL, &root);
        if (r != 0)
            return r;
        const json_t *vm = json_object_get(root, "vm");
        if (!json_is_string(json_object_get(vm, "step")) || monotonic_usec() >= deadline) {
            *ret_vm = root;
            return 0;
        }
        json_decref(root);
        struct timespec ts = { delay_ms / 1000, (long) (delay_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        if (delay_ms < 1000)
            delay_ms *= 2;
    }
}

static int cli_vm_action_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "no-wait", no_argument, NULL, 'n' },
        { "wait", required_argument, NULL, 'w' },
        { "reason", required_argument, NULL, 'r' },
        CLI_COMMON_OPTIONS,
        {}
    };
    int c, r;
    json_int_t id;
    int64_t wait = WAIT_DEFAULT_SECONDS;
    const char *reason = NULL;
    bool decommission = streq(cmd->name, "decommission");
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'n': wait = 0; break;
        case 'w':
            if (cli_parse_uint(optarg, 3600, &wait) < 0)
                return cli_usage_error(cmd, "--wait takes seconds from 0 to 3600, not '%s'", optarg);
            break;
        case 'r':
            if (!decommission)
                return cli_usage_error(cmd, "--reason is for decommission only");
            reason = optarg;
            break;
        }
    }
    if ((r = vm_id_operand(cmd, argc, argv, &id)) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/vms/%" JSON_INTEGER_FORMAT "/%s", id, cmd->name);
    _cleanup_json_ json_t *root = NULL;
    json_t *body = decommission ? json_pack("{s:s?}", "reason", reason) : NULL;
    r = cli_call(cli, "POST", path, body, &root);
    json_decref(body);
    if (r != 0)
        return r;
    const json_t *dr = json_object_get(root, "decommission_request");
    if (dr) {
        if (cli->json)
            cli_print_json(root);
        else
            printf("Decommission of VM %" JSON_INTEGER_FORMAT " requested (request %" JSON_INTEGER_FORMAT
                   "); cloud operations approves it with 'yunguan vm approve-decommission %" JSON_INTEGER_FORMAT "'.\n",
                   id, cli_json_int(dr, "id"), cli_json_int(dr, "id"));
        return 0;
    }
    _cleanup_json_ json_t *done = NULL;
    if (wait > 0 && (r = wait_step(cli, id, (int) wait, &done)) != 0)
        return r;
    const json_t *vm = json_object_get(done ? done : root, "vm");
    if (cli->json) {
        cli_print_json(done ? done : root);
        return 0;
    }
    _cleanup_free_ char *state = cli_json_text(vm, "state"), *step = cli_json_text(vm, "step");
    if (!streq(step, "-")) {
        printf("VM %" JSON_INTEGER_FORMAT ": %s requested; it is %s, step '%s' under way.\n", id, cmd->name,
               state, step);
        return 0;
    }
    if (json_is_string(json_object_get(vm, "error"))) {
        _cleanup_free_ char *err = cli_json_text(vm, "error");
        cli_error("VM %" JSON_INTEGER_FORMAT " could not %s: %s (it is %s)", id, cmd->name, err, state);
        return CLI_EXIT_REFUSED;
    }
    printf("VM %" JSON_INTEGER_FORMAT " is %s.\n", id, state);
    if (decommission && streq(state, "decommissioned"))
        printf("Its reclaim record: 'yunguan vm reclaim %" JSON_INTEGER_FORMAT "'.\n", id);
    return 0;
}

static int cli_vm_reclaim_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    json_int_t id;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = vm_id_operand(cmd, argc, argv, &id)) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/vms/%" JSON_INTEGER_FORMAT "/reclaim", id);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", path, NULL, &root)) != 0 || !root)
        return r;
    const json_t *rec = json_object_get(root, "reclaim"), *freed = json_object_get(rec, "freed");
    const json_t *addr = json_object_get(freed, "addresses");
    _cleanup_(table_freep) struct table *t = table_new(2, NULL);
    table_set_max_width(t, 1, 100);
    table_add(t, "VM:");
    table_addf(t, "%" JSON_INTEGER_FORMAT, id);
    table_add(t, "Reclaimed at:");
    table_add_owned(t, cli_json_text(rec, "at"));
    table_add(t, "Requested by:");
    table_add_owned(t, cli_json_text(rec, "requested_by"));
    table_add(t, "Approved by:");
    table_add_owned(t, cli_json_text(rec, "approved_by"));
    table_add(t, "Host, domain:");
    _cleanup_free_ char *host = cli_json_text(rec, "host"), *dom = cli_json_text(rec, "domain");
    table_add_owned(t, xasprintf("%s, %s", host, dom));
    table_add(t, "Freed:");
    _cleanup_free_ char *mem = cli_format_mib(cli_json_int(freed, "memory_mib"));
    table_add_owned(t, xasprintf("%" JSON_INTEGER_FORMAT " vCPU, %s memory, %" JSON_INTEGER_FORMAT " GiB disk",
                                 cli_json_int(freed, "vcpus"), mem, cli_json_int(freed, "disk_gib")));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(freed, "volumes"), i, v) {
        table_add(t, "Volume:");
        _cleanup_free_ char *vn = cli_json_text(v, "name"), *vp = cli_json_text(v, "pool");
        table_add_owned(t, xasprintf("%s in pool %s (deleted)", vn, vp));
    }
    table_add(t, "Wipe method:");
    table_add_owned(t, cli_json_text(rec, "wipe_method"));
    table_add(t, "Addresses:");
    _cleanup_free_ char *v4 = cli_json_text(addr, "ipv4"), *v6 = cli_json_text(addr, "ipv6"),
                        *seg = cli_json_text(addr, "segment");
    table_add_owned(t, xasprintf("IPv4 %s, IPv6 %s released on segment %s", v4, v6, seg));
    table_print(t, stdout);
    return 0;
}

static int cli_vm_decommissions_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = { { "state", required_argument, NULL, 's' }, CLI_COMMON_OPTIONS, {} };
    const char *state = "pending";
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        if (c == CLI_OPT_EXIT)
            return r;
        if (c == 's') {
            if (!streq(optarg, "pending") && !streq(optarg, "approved") && !streq(optarg, "rejected"))
                return cli_usage_error(cmd, "--state is pending, approved or rejected, not '%s'", optarg);
            state = optarg;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/decommissions?state=%s", state);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", path, NULL, &root)) != 0 || !root)
        return r;
    static const char *const headers[] = { "ID", "VM", "DEPARTMENT", "STATE", "REQUESTED BY", "REASON", "AT" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(root, "items"), i, d) {
        table_add_owned(t, cli_json_text(d, "id"));
        _cleanup_free_ char *vn = cli_json_text(d, "vm_name");
        table_add_owned(t, xasprintf("%" JSON_INTEGER_FORMAT " %s", cli_json_int(d, "vm"), vn));
        table_add_owned(t, cli_json_text(d, "department"));
        table_add_owned(t, cli_json_text(d, "state"));
        table_add_owned(t, cli_json_text(d, "requested_by"));
        table_add_owned(t, cli_json_text(d, "reason"));
        table_add_owned(t, cli_json_text(d, "created_at"));
    }
    if (table_rows(t) == 0)
        printf("No %s decommission requests.\n", state);
    else
        table_print(t, stdout);
    return 0;
}

static int cli_vm_decide_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = { { "reason", required_argument, NULL, 'r' }, CLI_COMMON_OPTIONS, {} };
    const char *reason = NULL;
    int c, r;
    json_int_t id;
    bool approve = streq(cmd->name, "approve-decommission");
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        if (c == CLI_OPT_EXIT)
            return r;
        if (c == 'r')
            reason = optarg;
    }
    if ((r = cli_operands(cmd, argc, argv, 1, 1, "ID")) != 0)
        return r;
    if (cli_parse_id(argv[optind], &id) < 0)
        return cli_usage_error(cmd, "'%s' is not a decommission request id", argv[optind]);
    if (!approve && (!reason || !*reason))
        return cli_usage_error(cmd, "a rejection needs --reason TEXT for the department");
    _cleanup_free_ char *path = xasprintf("/api/v1/decommissions/%" JSON_INTEGER_FORMAT "/%s", id,
                                          approve ? "approve" : "reject");
    json_t *body = json_pack("{s:s?}", "reason", reason);
    _cleanup_json_ json_t *root = NULL;
    r = cli_call(cli, "POST", path, body, &root);
    json_decref(body);
    if (r != 0)
        return r;
    if (cli->json)
        cli_print_json(root);
    else
        printf("Decommission request %" JSON_INTEGER_FORMAT " %s; VM %" JSON_INTEGER_FORMAT " is %s.\n", id,
               approve ? "approved" : "rejected", cli_json_int(json_object_get(root, "vm"), "id"),
               json_string_value(json_object_get(json_object_get(root, "vm"), "state")));
    return 0;
}

static int cli_vm_lease_policy_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "notice-days", required_argument, NULL, 'n' },
        { "grace-days", required_argument, NULL, 'g' },
        CLI_COMMON_OPTIONS,
        {}
    };
    int64_t notice = -1, grace = -1;
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'n':
            if (cli_parse_uint(optarg, 365, &notice) < 0)
                return cli_usage_error(cmd, "--notice-days takes 0 to 365 days, not '%s'", optarg);
            break;
        case 'g':
            if (cli_parse_uint(optarg, 365, &grace) < 0)
                return cli_usage_error(cmd, "--grace-days takes 0 to 365 days, not '%s'", optarg);
            break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 1, 1, "DEPARTMENT")) != 0)
        return r;
    const char *dep = argv[optind];
    if (!cli_department_valid(dep))
        return cli_usage_error(cmd, "'%s' is not a department name (%s)", dep, CLI_DEPARTMENT_RULE);
    _cleanup_free_ char *path = xasprintf("/api/v1/lease-policies/%s", dep);
    _cleanup_json_ json_t *root = NULL;
    if (notice >= 0 || grace >= 0) {
        if (notice < 0 || grace < 0)
            return cli_usage_error(cmd, "set both --notice-days and --grace-days");
        json_t *body = json_pack("{s:I, s:I}", "notice_days", (json_int_t) notice, "grace_days", (json_int_t) grace);
        r = cli_call(cli, "PUT", path, body, &root);
        json_decref(body);
    } else {
        r = cli_call(cli, "GET", path, NULL, &root);
    }
    if (r != 0)
        return r;
    if (cli->json) {
        cli_print_json(root);
        return 0;
    }
    const json_t *p = json_object_get(root, "lease_policy");
    printf("Department '%s'%s: a notice %" JSON_INTEGER_FORMAT " days before a lease ends, the VM stopped "
           "when it ends, decommissioned %" JSON_INTEGER_FORMAT " days later.\n", dep,
           json_is_true(json_object_get(p, "default")) ? " (the default policy)" : "",
           cli_json_int(p, "notice_days"), cli_json_int(p, "grace_days"));
    return 0;
}

static const struct cli_command vm_commands[] = {
    {
        .group = "vm", .name = "list",
        .synopsis = "[--state STATE] [--request ID] [--department NAME] [--all]",
        .summary = "VMs with their state, host, addresses and lease (a department sees its own).",
        .help =
            "      --state STATE       only VMs in STATE (pending, provisioning, running, stopped,\n"
            "                          error, stopping, decommissioning, decommissioned, unknown)\n"
            "      --request ID        only the VMs of request ID\n"
            "      --department NAME   only that department's VMs (operations)\n"
            "      --all               include decommissioned VMs\n",
        .run = cli_vm_list_run,
    },
    {
        .group = "vm", .name = "show", .synopsis = "ID",
        .summary = "One VM: state, error, host, domain, addresses, lease and history.",
        .run = cli_vm_show_run,
    },
    {
        .group = "vm", .name = "start", .synopsis = "ID [--wait SECONDS | --no-wait]",
        .summary = "Start a stopped VM and wait until it runs.",
        .help = "      --wait SECONDS   wait at most this long for the step (default 120)\n"
                "      --no-wait        return once the controller has recorded the request\n",
        .run = cli_vm_action_run,
    },
    {
        .group = "vm", .name = "stop", .synopsis = "ID [--wait SECONDS | --no-wait]",
        .summary = "Shut a running VM down (ACPI, forced off after the timeout) and wait.",
        .help = "      --wait SECONDS   wait at most this long for the step (default 120)\n"
                "      --no-wait        return once the controller has recorded the request\n",
        .run = cli_vm_action_run,
    },
    {
        .group = "vm", .name = "reboot", .synopsis = "ID [--wait SECONDS | --no-wait]",
        .summary = "Reboot a running VM.",
        .help = "      --wait SECONDS   wait at most this long for the step (default 120)\n"
                "      --no-wait        return once the controller has recorded the request\n",
        .run = cli_vm_action_run,
    },
    {
        .group = "vm", .name = "decommission", .synopsis = "ID [--reason TEXT] [--wait SECONDS | --no-wait]",
        .summary = "Shut down, wipe and delete the volumes, undefine, release the addresses, "
                   "keep a reclaim record (a department's request waits for cloud operations).",
        .help = "      --reason TEXT    why (kept in the audit trail)\n"
                "      --wait SECONDS   wait at most this long (default 120)\n"
                "      --no-wait        return once the controller has recorded the request\n",
        .run = cli_vm_action_run,
    },
    {
        .group = "vm", .name = "reclaim", .synopsis = "ID",
        .summary = "What a decommissioned VM gave back, how its volumes were wiped, when and by whom.",
        .run = cli_vm_reclaim_run,
    },
    {
        .group = "vm", .name = "decommissions", .synopsis = "[--state pending|approved|rejected]",
        .summary = "Departments' decommission requests (default: those waiting).",
        .run = cli_vm_decommissions_run,
    },
    {
        .group = "vm", .name = "approve-decommission", .synopsis = "ID [--reason TEXT]",
        .summary = "Approve a department's decommission request (cloudops, admin).",
        .run = cli_vm_decide_run,
    },
    {
        .group = "vm", .name = "reject-decommission", .synopsis = "ID --reason TEXT",
        .summary = "Reject a department's decommission request (cloudops, admin).",
        .run = cli_vm_decide_run,
    },
    {
        .group = "vm", .name = "lease-policy", .synopsis = "DEPARTMENT [--notice-days N --grace-days N]",
        .summary = "Show or set (admin) a department's lease expiry policy.",
        .help = "      --notice-days N  notice this many days before a lease ends\n"
                "      --grace-days N   decommission this many days after it ended\n",
        .run = cli_vm_lease_policy_run,
    },
};

const struct cli_group cli_group_vm = {
    .name = "vm",
    .summary = "VMs: use them, shut them down, decommission them.",
    .commands = vm_commands,
    .n_commands = YG_ARRAY_SIZE(vm_commands),
};

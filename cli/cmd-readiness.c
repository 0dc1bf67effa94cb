/* Dual-stack readiness for network engineers:
 *   yunguan segments                       (segment list)
 *   yunguan segment show|history|waive …   (entries merged into the segment group)
 *   yunguan progress                       (progress show)
 *   yunguan host enroll HOST */
#include <config.h>
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>

#include "util.h"

static char *share_text(const json_t *obj, const char *key)
{
    double v = json_number_value(json_object_get(obj, key));
    return xasprintf("%.0f%%", 100.0 * v);
}

static char *ready_of(const json_t *s)
{
    return xasprintf("%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
                     cli_json_int(s, "hosts_ready"), cli_json_int(s, "hosts_total"));
}

static int cli_segment_list_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", "/api/v1/segments", NULL, &root)) != 0 || !root)
        return r;
    const json_t *items = json_object_get(root, "items");
    if (json_array_size(items) == 0) {
        printf("No segments yet; define them with 'yunguan segment apply FILE'.\n");
        return 0;
    }
    static const char *const headers[] = { "SEGMENT", "VLAN", "STATE", "HOSTS READY", "TOP BLOCKING REASON",
                                           "TARGET", "IPV6 PREFIX" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 1);
    table_set_right(t, 3);
    size_t i;
    json_t *s;
    json_array_foreach(items, i, s) {
        table_add_owned(t, cli_json_text(s, "name"));
        table_add_owned(t, cli_json_text(s, "vlan"));
        _cleanup_free_ char *state = cli_json_text(s, "state");
        table_add_owned(t, json_is_true(json_object_get(s, "regressed"))
                               ? xasprintf("%s (regressed)", state) : xstrdup(state));
        table_add_owned(t, ready_of(s));
        table_add_owned(t, cli_json_text(s, "blocking_reason"));
        table_add_owned(t, cli_json_text(s, "target_date"));
        table_add_owned(t, cli_json_text(s, "ipv6_prefix"));
    }
    table_print(t, stdout);
    return 0;
}

static int segment_name_operand(const struct cli_command *cmd, int argc, char **argv, const char **ret)
{
    int r = cli_operands(cmd, argc, argv, 1, 1, "SEGMENT");
    if (r != 0)
        return r;
    if (!cli_department_valid(argv[optind]))
        return cli_usage_error(cmd, "'%s' is not a segment name (%s)", argv[optind], CLI_DEPARTMENT_RULE);
    *ret = argv[optind];
    return 0;
}

static int cli_segment_show_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    const char *name;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = segment_name_operand(cmd, argc, argv, &name)) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/segments/%s", name);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", path, NULL, &root)) != 0 || !root)
        return r;
    const json_t *s = json_object_get(root, "segment");
    _cleanup_free_ char *state = cli_json_text(s, "state"), *since = cli_json_text(s, "state_since");
    _cleanup_free_ char *v4 = cli_json_text(s, "ipv4_prefix"), *gw4 = cli_json_text(s, "ipv4_gateway");
    _cleanup_free_ char *v6 = cli_json_text(s, "ipv6_prefix"), *gw6 = cli_json_text(s, "ipv6_gateway");
    _cleanup_free_ char *iface = cli_json_text(s, "interface"), *target = cli_json_text(s, "target_date");
    _cleanup_free_ char *ready = ready_of(s), *sname = cli_json_text(s, "name");
    printf("Segment %s: %s%s since %s; %s hosts ready; target %s\n", sname, state,
           json_is_true(json_object_get(s, "regressed")) ? " (regressed)" : "", since, ready, target);
    printf("  IPv4 %s via %s, IPv6 %s via %s, on %s\n", v4, gw4, v6, gw6, iface);

    static const char *const headers[] = { "HOST", "VERDICT", "CHECK", "REASON", "WHAT IS WRONG", "REMEDY" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_max_width(t, 4, 60);
    table_set_max_width(t, 5, 60);
    size_t i, k;
    json_t *h, *p;
    json_array_foreach(json_object_get(s, "hosts"), i, h) {
        const json_t *problems = json_object_get(h, "problems");
        _cleanup_free_ char *verdict = cli_json_text(h, "verdict");
        const json_t *waiver = json_object_get(h, "waiver");
        if (waiver) {
            free(verdict);
            _cleanup_free_ char *why = cli_json_text(waiver, "reason");
            verdict = xasprintf("waived (%s)", why);
        }
        if (json_array_size(problems) == 0) {
            table_add_owned(t, cli_json_text(h, "host"));
            table_add(t, verdict);
            table_add(t, "-");
            table_add(t, "-");
            table_add(t, "-");
            table_add(t, "-");
            continue;
        }
        json_array_foreach(problems, k, p) {
            table_add_owned(t, k == 0 ? cli_json_text(h, "host") : xstrdup(""));
            table_add(t, k == 0 ? verdict : "");
            table_add_owned(t, cli_json_text(p, "check"));
            _cleanup_free_ char *sev = cli_json_text(p, "severity"), *reason = cli_json_text(p, "reason");
            table_add_owned(t, xasprintf("%s (%s)", reason, sev));
            table_add_owned(t, cli_json_text(p, "message"));
            table_add_owned(t, cli_json_text(p, "remedy"));
        }
    }
    if (table_rows(t) > 0)
        table_print(t, stdout);
    else
        printf("  No hosts carry this segment yet.\n");
    return 0;
}

static int cli_segment_history_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    const char *name;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = segment_name_operand(cmd, argc, argv, &name)) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/segments/%s/history", name);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", path, NULL, &root)) != 0 || !root)
        return r;
    static const char *const headers[] = { "AT", "STATE", "HOSTS READY" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 2);
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(root, "items"), i, h) {
        table_add_owned(t, cli_json_text(h, "at"));
        table_add_owned(t, cli_json_text(h, "state"));
        table_add_owned(t, ready_of(h));
    }
    if (table_rows(t) == 0)
        printf("No state changes recorded for segment '%s' yet.\n", name);
    else
        table_print(t, stdout);
    return 0;
}

static int cli_segment_waive_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", required_argument, NULL, 'H' },
        { "reason", required_argument, NULL, 'r' },
        { "days", required_argument, NULL, 'd' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *host = NULL, *reason = NULL;
    int64_t days = 30;
    int c, r;
    const char *name;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'H': host = optarg; break;
        case 'r': reason = optarg; break;
        case 'd':
            if (cli_parse_uint(optarg, 365, &days) < 0 || days < 1)
                return cli_usage_error(cmd, "--days takes a number of days from 1 to 365, not '%s'", optarg);
            break;
        }
    }
    if ((r = segment_name_operand(cmd, argc, argv, &name)) != 0)
        return r;
    if (!host || !reason || !*reason)
        return cli_usage_error(cmd, "a waiver needs --host HOST and --reason TEXT");
    _cleanup_free_ char *path = xasprintf("/api/v1/segments/%s/waivers", name);
    _cleanup_json_ json_t *root = NULL;
    json_t *body = json_pack("{s:s, s:s, s:I}", "host", host, "reason", reason, "days", (json_int_t) days);
    r = cli_call(cli, "POST", path, body, &root);
    json_decref(body);
    if (r != 0)
        return r;
    if (cli->json)
        cli_print_json(root);
    else
        printf("Host '%s' no longer holds segment '%s' back for %" PRId64 " days (waiver %" JSON_INTEGER_FORMAT ").\n",
               host, name, days, cli_json_int(json_object_get(root, "waiver"), "id"));
    return 0;
}

static int cmd_progress(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", "/api/v1/progress", NULL, &root)) != 0 || !root)
        return r;
    static const char *const headers[] = { "SCOPE", "SEGMENTS READY", "SHARE", "HOSTS READY", "SHARE",
                                           "NEXT TARGET", "LATE" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    for (size_t col = 1; col < 5; col++)
        table_set_right(t, col);
    table_set_right(t, 6);
    const json_t *rows[1 + 256];
    size_t n = 0, i;
    json_t *d;
    rows[n++] = json_object_get(root, "overall");
    json_array_foreach(json_object_get(root, "departments"), i, d)
        if (n < YG_ARRAY_SIZE(rows))
            rows[n++] = d;
    for (i = 0; i < n; i++) {
        const json_t *p = rows[i];
        table_add_owned(t, cli_json_text(p, "scope"));
        table_addf(t, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, cli_json_int(p, "segments_ready"),
                   cli_json_int(p, "segments"));
        table_add_owned(t, share_text(p, "segments_ready_share"));
        table_addf(t, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, cli_json_int(p, "hosts_ready"),
                   cli_json_int(p, "hosts"));
        table_add_owned(t, share_text(p, "hosts_ready_share"));
        table_add_owned(t, cli_json_text(p, "next_target_date"));
        table_add_owned(t, cli_json_text(p, "segments_late"));
    }
    _cleanup_free_ char *today = cli_json_text(root, "today");
    printf("Dual-stack progress on %s (LATE: segments past their target date and not ready)\n", today);
    table_print(t, stdout);
    return 0;
}

static int cmd_host_enroll(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = cli_operands(cmd, argc, argv, 1, 1, "HOST")) != 0)
        return r;
    const char *host = argv[optind];
    if (!cli_department_valid(host))
        return cli_usage_error(cmd, "'%s' is not a host name (%s)", host, CLI_DEPARTMENT_RULE);
    _cleanup_free_ char *path = xasprintf("/api/v1/hosts/%s/enrollment", host);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "POST", path, NULL, &root)) != 0 || !root)
        return r;
    _cleanup_free_ char *secret = cli_json_text(root, "secret");
    /* The URL this command used, unless it is loopback: the host needs the
     * controller's name as it sees it. */
    const char *url = http_client_base_url(cli->http);
    bool local = strstr(url, "://127.") || strstr(url, "://[::1]") || strstr(url, "://localhost");
    bool tls = strncmp(url, "https://", 8) == 0;
    printf("One-time enrollment secret for host '%s' (valid 24 hours, used once):\n\n    %s\n\n"
           "On the host:  yunguan-agent --controller %s%s --host %s --enroll-token-file FILE\n",
           host, secret, local ? "URL" : url, tls ? " --ca-file CA.pem" : "", host);
    return 0;
}

static const struct cli_command cli_segment_status_commands[] = {
    {
        .group = "segment", .name = "apply",
        .synopsis = "FILE [--dry-run]",
        .summary = "Create or update segments from a segment list (netops, admin).",
        .description =
            "FILE (YAML, or JSON when it ends in .json; '-' reads standard input) is a\n"
            "SegmentList; the whole list is applied in one transaction: segments are created\n"
            "or updated by name, with their departments, hosts and planned addresses.\n"
            "Segments not in the list stay as they are.  Problems in the list are printed\n"
            "one per line as FILE:LINE:COLUMN: PATH: MESSAGE.\n",
        .help = "      --dry-run        show what would be created and updated; change nothing\n",
        .run = cli_segment_apply_run,
    },
    {
        .group = "segment", .name = "list",
        .synopsis = "",
        .summary = "Each segment's dual-stack state, hosts ready and top blocking reason ('yunguan segments').",
        .run = cli_segment_list_run,
    },
    {
        .group = "segment", .name = "show",
        .synopsis = "SEGMENT",
        .summary = "Every host of a segment, every failing check, its reason and remedy.",
        .run = cli_segment_show_run,
    },
    {
        .group = "segment", .name = "history",
        .synopsis = "SEGMENT",
        .summary = "The segment's state changes over time.",
        .run = cli_segment_history_run,
    },
    {
        .group = "segment", .name = "waive",
        .synopsis = "SEGMENT --host HOST --reason TEXT [--days N]",
        .summary = "Stop a host holding a segment back, for N days (default 30) (netops, admin).",
        .help =
            "      --host HOST      the host to waive\n"
            "      --reason TEXT    why (kept in the audit trail)\n"
            "      --days N         until when, 1 to 365 days (default 30)\n",
        .run = cli_segment_waive_run,
    },
};

const struct cli_group cli_group_segment = {
    .name = "segment",
    .summary = "Network segments: plans, dual-stack state, hosts, waivers.",
    .commands = cli_segment_status_commands,
    .n_commands = YG_ARRAY_SIZE(cli_segment_status_commands),
};

static const struct cli_command progress_commands[] = {
    {
        .group = "progress", .name = "show",
        .synopsis = "",
        .summary = "Share of segments and hosts dual-stack ready, overall and per department ('yunguan progress').",
        .run = cmd_progress,
    },
};

const struct cli_group cli_group_progress = {
    .name = "progress",
    .summary = "Progress toward the dual-stack target dates.",
    .commands = progress_commands,
    .n_commands = YG_ARRAY_SIZE(progress_commands),
};

static const struct cli_command host_commands[] = {
    {
        .group = "host", .name = "enroll",
        .synopsis = "HOST",
        .summary = "Make a one-time enrollment secret for HOST's agent (admin).",
        .run = cmd_host_enroll,
    },
    {
        .group = "host", .name = "add",
        .synopsis = "HOST --uri LIBVIRT_URI --pool STORAGE_POOL [--segment NAME]...",
        .summary = "Register a hypervisor host: its libvirt URI, storage pool and the segments "
                   "(bridges) it carries (cloudops, admin).",
        .help =
            "      --uri URI        qemu:///system, qemu+tls://HOST/system, qemu+ssh://…, test:///default\n"
            "      --pool POOL      the libvirt storage pool for VM volumes\n"
            "      --segment NAME   a segment whose bridge the host carries (repeat)\n",
        .run = cli_host_add_run,
    },
    {
        .group = "host", .name = "list", .synopsis = "",
        .summary = "Hypervisor hosts: reachability, VMs, used and total capacity.",
        .run = cli_host_list_run,
    },
    {
        .group = "host", .name = "show", .synopsis = "HOST",
        .summary = "One host's capacity (CPUs x overcommit, memory, pool) and what is placed on it.",
        .run = cli_host_show_run,
    },
    {
        .group = "host", .name = "drain", .synopsis = "HOST",
        .summary = "Give a host no new VMs (its VMs stay) (cloudops, admin).",
        .run = cli_host_drain_run,
    },
    {
        .group = "host", .name = "undrain", .synopsis = "HOST",
        .summary = "Let a drained host take new VMs again (cloudops, admin).",
        .run = cli_host_drain_run,
    },
};

const struct cli_group cli_group_host = {
    .name = "host",
    .summary = "Hypervisor hosts and their agents.",
    .commands = host_commands,
    .n_commands = YG_ARRAY_SIZE(host_commands),
};

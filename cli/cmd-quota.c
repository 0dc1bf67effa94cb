/* yunguan quota show | set */
#include <config.h>
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>

#include "util.h"

/* "8 / 64", "24 GiB / 256 GiB" */
static char *used_of(const json_t *q, const char *key, char *(*fmt)(int64_t))
{
    const json_t *limit = json_object_get(json_object_get(q, "limits"), key);
    const json_t *used = json_object_get(json_object_get(q, "usage"), key);
    _cleanup_free_ char *l = !json_is_integer(limit) ? xstrdup("-")
        : fmt ? fmt(json_integer_value(limit)) : xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(limit));
    _cleanup_free_ char *u = !json_is_integer(used) ? xstrdup("-")
        : fmt ? fmt(json_integer_value(used)) : xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(used));
    return xasprintf("%s / %s", u, l);
}

static void print_quotas(const json_t *items)
{
    static const char *const headers[] = {
        "DEPARTMENT", "VCPUS", "MEMORY", "DISK", "VMS", "MAX LEASE DAYS",
    };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    for (size_t c = 1; c < YG_ARRAY_SIZE(headers); c++)
        table_set_right(t, c);
    size_t i;
    json_t *q;
    json_array_foreach(items, i, q) {
        table_add_owned(t, cli_json_text(q, "department"));
        table_add_owned(t, used_of(q, "vcpus", NULL));
        table_add_owned(t, used_of(q, "memory_mib", cli_format_mib));
        table_add_owned(t, used_of(q, "disk_gib", cli_format_gib));
        table_add_owned(t, used_of(q, "vms", NULL));
        table_add_owned(t, cli_json_text(json_object_get(q, "limits"), "max_lease_days"));
    }
    printf("In use / limit:\n");
    table_print(t, stdout);
}

static int cmd_show(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = cli_operands(cmd, argc, argv, 0, 1, "DEPARTMENT")) != 0)
        return r;

    _cleanup_json_ json_t *root = NULL;
    _cleanup_json_ json_t *items = NULL;
    if (optind < argc && !cli_department_valid(argv[optind]))
        return cli_usage_error(cmd, "'%s' is not a department name (" CLI_DEPARTMENT_RULE ")",
                               argv[optind]);
    if (optind < argc) {
        _cleanup_free_ char *dept = http_escape(argv[optind]);
        _cleanup_free_ char *path = xasprintf("/api/v1/quotas/%s", dept);
        r = cli_call(cli, "GET", path, NULL, &root);
        if (r != 0)
            return r;
        items = json_array();
        json_array_append(items, json_object_get(root, "quota"));
    } else {
        r = cli_call(cli, "GET", "/api/v1/quotas", NULL, &root);
        if (r != 0)
            return r;
        items = json_incref(json_object_get(root, "items"));
    }
    if (cli->json) {
        cli_print_json(root);
        return 0;
    }
    if (json_array_size(items) == 0) {
        printf("No departments have a quota yet; set one with 'yunguan quota set'.\n");
        return 0;
    }
    print_quotas(items);
    return 0;
}

enum {
    OPT_VCPUS = 'c',
    OPT_MEMORY = 'm',
    OPT_DISK = 'd',
    OPT_VMS = 'v',
    OPT_LEASE = 'l',
};

static int cmd_set(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "vcpus", required_argument, NULL, OPT_VCPUS },
        { "memory", required_argument, NULL, OPT_MEMORY },
        { "disk", required_argument, NULL, OPT_DISK },
        { "vms", required_argument, NULL, OPT_VMS },
        { "max-lease-days", required_argument, NULL, OPT_LEASE },
        CLI_COMMON_OPTIONS,
        {}
    };
    int64_t vcpus = -1, memory_mib = -1, disk_mib = -1, vms = -1, lease = -1;
    int c, r;

    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT:
            return r;
        case OPT_VCPUS:
            if (cli_parse_uint(optarg, INT32_MAX, &vcpus) < 0)
                return cli_usage_error(cmd, "--vcpus takes a whole number, not '%s'", optarg);
            break;
        case OPT_VMS:
            if (cli_parse_uint(optarg, INT32_MAX, &vms) < 0)
                return cli_usage_error(cmd, "--vms takes a whole number, not '%s'", optarg);
            break;
        case OPT_LEASE:
            if (cli_parse_uint(optarg, 36500, &lease) < 0)
                return cli_usage_error(cmd, "--max-lease-days takes a number of days up to 36500, not '%s'",
                                       optarg);
            break;
        case OPT_MEMORY:
            if (cli_parse_size_mib(optarg, &memory_mib) < 0)
                return cli_usage_error(cmd, "--memory takes a size like '256GiB' (units MiB, GiB, TiB), not '%s'",
                                       optarg);
            break;
        case OPT_DISK:
            if (cli_parse_size_mib(optarg, &disk_mib) < 0)
                return cli_usage_error(cmd, "--disk takes a size like '4TiB' (units GiB, TiB), not '%s'",
                                       optarg);
            if (disk_mib % 1024 != 0)
                return cli_usage_error(cmd, "--disk is counted in whole GiB; '%s' is not", optarg);
            break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 1, 1, "DEPARTMENT")) != 0)
        return r;
    const char *missing = vcpus < 0 ? "--vcpus" : memory_mib < 0 ? "--memory" : disk_mib < 0 ? "--disk"
                        : vms < 0 ? "--vms" : lease < 0 ? "--max-lease-days" : NULL;
    if (missing)
        return cli_usage_error(cmd, "%s is required (a quota sets every limit at once)", missing);
    if (!cli_department_valid(argv[optind]))
        return cli_usage_error(cmd, "'%s' is not a department name (" CLI_DEPARTMENT_RULE ")",
                               argv[optind]);

    _cleanup_json_ json_t *body = json_pack("{s:I, s:I, s:I, s:I, s:I}",
                                            "vcpus", (json_int_t) vcpus,
                                            "memory_mib", (json_int_t) memory_mib,
                                            "disk_gib", (json_int_t) (disk_mib / 1024),
                                            "vms", (json_int_t) vms,
                                            "max_lease_days", (json_int_t) lease);
    _cleanup_free_ char *dept = http_escape(argv[optind]);
    _cleanup_free_ char *path = xasprintf("/api/v1/quotas/%s", dept);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "PUT", path, body, &root)) != 0 || !root)
        return r;
    _cleanup_json_ json_t *items = json_array();
    json_array_append(items, json_object_get(root, "quota"));
    _cleanup_free_ char *name = cli_sanitize(argv[optind]);
    printf("Quota of department '%s' set.\n", name);
    print_quotas(items);
    return 0;
}

static const struct cli_command quota_commands[] = {
    {
        .group = "quota", .name = "show",
        .synopsis = "[DEPARTMENT]",
        .summary = "Show the quota and current use of one department, or of all departments.",
        .description =
            "Use counts the requests in live states (approved and later, until closed).\n"
            "Without DEPARTMENT the token needs role admin, cloudops or auditor.\n",
        .run = cmd_show,
    },
    {
        .group = "quota", .name = "set",
        .synopsis = "DEPARTMENT --vcpus N --memory SIZE --disk SIZE --vms N --max-lease-days N",
        .summary = "Set every quota limit of a department, creating the department when new (admin).",
        .help =
            "      --vcpus N            virtual CPUs\n"
            "      --memory SIZE        memory, like 256GiB (units MiB, GiB, TiB)\n"
            "      --disk SIZE          disk, like 4TiB (units GiB, TiB)\n"
            "      --vms N              virtual machines\n"
            "      --max-lease-days N   longest lease a request may ask for\n",
        .run = cmd_set,
    },
};

const struct cli_group cli_group_quota = {
    .name = "quota",
    .summary = "Department quotas: limits and what is in use.",
    .commands = quota_commands,
    .n_commands = YG_ARRAY_SIZE(quota_commands),
};

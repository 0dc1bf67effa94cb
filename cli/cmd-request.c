/* yunguan request submit | list | show | approve | reject | withdraw */
#include <config.h>
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* "3 VMs, 8 vCPUs, 24 GiB memory, 280 GiB disk" */
static char *format_totals(const json_t *totals)
{
    if (!json_is_object(totals))
        return xstrdup("-");
    json_int_t vms = cli_json_int(totals, "vms"), vcpus = cli_json_int(totals, "vcpus");
    _cleanup_free_ char *mem = cli_format_mib(cli_json_int(totals, "memory_mib"));
    _cleanup_free_ char *disk = cli_format_gib(cli_json_int(totals, "disk_gib"));
    return xasprintf("%" JSON_INTEGER_FORMAT " VM%s, %" JSON_INTEGER_FORMAT " vCPU%s, %s memory, %s disk",
                     vms, vms == 1 ? "" : "s", vcpus, vcpus == 1 ? "" : "s", mem, disk);
}

/* A quota resource value as people read it. */
static char *format_resource(const char *resource, const json_t *v)
{
    if (!json_is_integer(v))
        return xstrdup("-");
    json_int_t n = json_integer_value(v);
    if (strstr(resource, "memory"))
        return cli_format_mib(n);
    if (strstr(resource, "disk"))
        return cli_format_gib(n);
    return xasprintf("%" JSON_INTEGER_FORMAT, n);
}

static const char *resource_label(const char *resource)
{
    if (strstr(resource, "memory"))
        return "memory";
    if (strstr(resource, "disk"))
        return "disk";
    return resource;
}

static void print_warnings(const json_t *root)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(root, "warnings"), i, w)
        if (json_is_string(w))
            cli_warning("%s", json_string_value(w));
}

static void print_dry_run(const json_t *root)
{
    const json_t *req = json_object_get(root, "request");
    const json_t *quota = json_object_get(root, "quota");
    const json_t *totals = json_object_get(root, "totals");
    if (!totals)
        totals = json_object_get(req, "totals");
    /* doc/API.md: the request object without id and state; accept the
     * document's own shape (metadata.name) as well. */
    const json_t *meta = json_object_get(req, "metadata");
    _cleanup_free_ char *name = cli_json_text(json_object_get(req, "name") ? req : meta, "name");
    _cleanup_free_ char *dept = cli_json_text(json_object_get(req, "department") ? req : meta,
                                              "department");
    _cleanup_free_ char *tot = format_totals(totals);

    printf("Dry run: request '%s' for department '%s' is valid; nothing was stored.\n", name, dept);
    printf("Totals: %s\n", tot);
    if (!json_is_object(quota)) {
        printf("Quota: the controller gave no quota outcome.\n");
        return;
    }

    static const char *const resources[] = { "vcpus", "memory_mib", "disk_gib", "vms" };
    static const char *const headers[] = { "RESOURCE", "LIMIT", "IN USE", "AFTER APPROVAL" };
    _cleanup_(table_freep) struct table *t = table_new(4, headers);
    for (size_t c = 1; c < 4; c++)
        table_set_right(t, c);
    const json_t *limits = json_object_get(quota, "limits");
    const json_t *usage = json_object_get(quota, "usage");
    const json_t *after = json_object_get(quota, "after");
    for (size_t i = 0; i < YG_ARRAY_SIZE(resources); i++) {
        const char *res = resources[i];
        table_add(t, resource_label(res));
        table_add_owned(t, format_resource(res, json_object_get(limits, res)));
        table_add_owned(t, format_resource(res, json_object_get(usage, res)));
        table_add_owned(t, format_resource(res, json_object_get(after, res)));
    }
    putchar('\n');
    table_print(t, stdout);
    putchar('\n');

    const json_t *exceeded = json_object_get(quota, "exceeded");
    if (json_is_true(json_object_get(quota, "fits")) || json_array_size(exceeded) == 0) {
        printf("Quota: fits; approving it now stays within the quota of department '%s'.\n", dept);
        return;
    }
    struct strbuf sb;
    strbuf_init(&sb);
    size_t i;
    json_t *x;
    json_array_foreach(exceeded, i, x) {
        const char *res = json_string_value(json_object_get(x, "resource"));
        if (!res)
            res = "?";
        _cleanup_free_ char *would = format_resource(res, json_object_get(x, "would_be"));
        _cleanup_free_ char *limit = format_resource(res, json_object_get(x, "limit"));
        strbuf_printf(&sb, "%s%s would be %s (limit %s)", i ? "; " : "", resource_label(res), would, limit);
    }
    _cleanup_free_ char *text = strbuf_steal(&sb);
    _cleanup_free_ char *clean = cli_sanitize(text);
    printf("Quota: exceeded; approving it now would go over the quota of department '%s': %s.\n",
           dept, clean);
}

static int cmd_submit(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        { "idempotency-key", required_argument, NULL, 'k' },
        CLI_COMMON_OPTIONS,
        {}
    };
    bool dry_run = false;
    const char *key = NULL;
    int c, r;

    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'n': dry_run = true; break;
        case 'k': key = optarg; break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 1, 1, "FILE")) != 0)
        return r;
    const char *file = argv[optind];
    if (key) {
        size_t n = strlen(key);
        bool printable = n >= 1 && n <= 128;
        for (size_t i = 0; printable && i < n; i++)
            printable = key[i] >= 0x20 && key[i] < 0x7f;
        if (!printable)
            return cli_usage_error(cmd, "an idempotency key is 1 to 128 printable ASCII characters");
    }

    /* Refuse what the controller would refuse, before sending anything. */
    const char *shown = streq(file, "-") ? "<stdin>" : file;
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    r = streq(file, "-") ? read_fd_limited(STDIN_FILENO, CLI_MAX_REQUEST_BYTES, &data, &len)
                         : read_file_limited(file, CLI_MAX_REQUEST_BYTES, &data, &len);
    if (r == -EFBIG) {
        cli_error("'%s' is larger than %d KiB, the limit for one request; split it into smaller requests",
                  shown, CLI_MAX_REQUEST_BYTES / 1024);
        return CLI_EXIT_REFUSED;
    }
    if (r < 0) {
        cli_error("cannot read '%s': %s", shown, strerror(-r));
        return CLI_EXIT_REFUSED;
    }
    if (len == 0) {
        cli_error("'%s' is empty; a request is a YAML or JSON document", shown);
        return CLI_EXIT_REFUSED;
    }

    _cleanup_free_ char *key_header = key ? xasprintf("Idempotency-Key: %s", key) : NULL;
    const char *headers[] = { key_header, NULL };
    struct http_request req = {
        .method = "POST",
        .path = dry_run ? "/api/v1/requests?dry_run=true" : "/api/v1/requests",
        .content_type = ends_with(file, ".json") ? "application/json" : "application/yaml",
        .body = data,
        .body_len = len,
        .headers = headers,
    };
    _cleanup_json_ json_t *root = NULL;
    _cleanup_(http_response_freep) struct http_response *resp = NULL;
    r = cli_call_raw(cli, &req, shown, &root, &resp);
    if (r != 0)
        return r;

    if (cli->json) {
        cli_print_json(root);
        return 0;
    }
    if (dry_run) {
        print_dry_run(root);
        print_warnings(root);
        return 0;
    }
    const json_t *request = json_object_get(root, "request");
    _cleanup_free_ char *name = cli_json_text(request, "name");
    _cleanup_free_ char *dept = cli_json_text(request, "department");
    _cleanup_free_ char *state = cli_json_text(request, "state");
    _cleanup_free_ char *tot = format_totals(json_object_get(request, "totals"));
    const char *replayed = http_response_header(resp, "Idempotency-Replayed");
    if (replayed && streq(replayed, "true"))
        printf("Request %" JSON_INTEGER_FORMAT " '%s' was already submitted with this idempotency key; "
               "nothing new was stored (state: %s).\n", cli_json_int(request, "id"), name, state);
    else
        printf("Request %" JSON_INTEGER_FORMAT " '%s' submitted for department '%s' (state: %s).\n",
               cli_json_int(request, "id"), name, dept, state);
    printf("Totals: %s\n", tot);
    print_warnings(root);
    return 0;
}

static void print_request_table(const json_t *items)
{
    static const char *const headers[] = {
        "ID", "NAME", "DEPARTMENT", "STATE", "VMS", "VCPUS", "MEMORY", "DISK", "LEASE UNTIL", "CREATED",
    };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 0);
    for (size_t c = 4; c <= 7; c++)
        table_set_right(t, c);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const json_t *totals = json_object_get(it, "totals");
        table_add_owned(t, cli_json_text(it, "id"));
        table_add_owned(t, cli_json_text(it, "name"));
        table_add_owned(t, cli_json_text(it, "department"));
        table_add_owned(t, cli_json_text(it, "state"));
        table_add_owned(t, cli_json_text(totals, "vms"));
        table_add_owned(t, cli_json_text(totals, "vcpus"));
        table_add_owned(t, cli_format_mib(cli_json_int(totals, "memory_mib")));
        table_add_owned(t, cli_format_gib(cli_json_int(totals, "disk_gib")));
        table_add_owned(t, cli_json_text(it, "lease_until"));
        table_add_owned(t, cli_json_text(it, "created_at"));
    }
    table_print(t, stdout);
}

static int cmd_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "department", required_argument, NULL, 'd' },
        { "state", required_argument, NULL, 's' },
        { "limit", required_argument, NULL, 'l' },
        { "after", required_argument, NULL, 'a' },
        { "all", no_argument, NULL, 'A' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *dept = NULL, *state = NULL;
    int64_t limit = 0;
    json_int_t after = 0;
    bool all = false;
    int c, r;

    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'd': dept = optarg; break;
        case 's': state = optarg; break;
        case 'A': all = true; break;
        case 'l':
            if (cli_parse_uint(optarg, 500, &limit) < 0 || limit < 1)
                return cli_usage_error(cmd, "--limit takes a number from 1 to 500, not '%s'", optarg);
            break;
        case 'a':
            if (cli_parse_id(optarg, &after) < 0)
                return cli_usage_error(cmd, "--after takes a request id, not '%s'", optarg);
            break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;

    struct strbuf path;
    strbuf_init(&path);
    strbuf_puts(&path, "/api/v1/requests");
    char sep = '?';
    if (dept) {
        _cleanup_free_ char *e = http_escape(dept);
        strbuf_printf(&path, "%cdepartment=%s", sep, e);
        sep = '&';
    }
    if (state) {
        _cleanup_free_ char *e = http_escape(state);
        strbuf_printf(&path, "%cstate=%s", sep, e);
        sep = '&';
    }
    if (limit > 0)
        strbuf_printf(&path, "%climit=%" PRId64, sep, limit);
    _cleanup_free_ char *p = strbuf_steal(&path);

    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_fetch_list_shown(cli, p, after, all, &root)) != 0 || !root)
        return r;
    const json_t *items = json_object_get(root, "items");
    if (json_array_size(items) == 0) {
        printf("No requests.\n");
        return 0;
    }
    print_request_table(items);
    const json_t *next = json_object_get(root, "next");
    if (json_is_integer(next))
        printf("More requests follow: use --all, or --after %" JSON_INTEGER_FORMAT ".\n",
               json_integer_value(next));
    return 0;
}

static int parse_request_id(const struct cli_command *cmd, int argc, char **argv,
                            json_int_t *ret_id)
{
    int r = cli_operands(cmd, argc, argv, 1, 1, "ID");
    if (r != 0)
        return r;
    if (cli_parse_id(argv[optind], ret_id) < 0)
        return cli_usage_error(cmd, "'%s' is not a request id (a positive whole number)", argv[optind]);
    return 0;
}

/* Print the submitted text, with control characters other than newline and
 * tab made harmless. */
static void print_source(const char *src)
{
    for (const unsigned char *p = (const unsigned char *) src; *p; p++)
        putchar((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f ? '?' : *p);
    if (*src && src[strlen(src) - 1] != '\n')
        putchar('\n');
}

static void add_kv(struct table *t, const char *key, char *value)
{
    table_add(t, key);
    table_add_owned(t, value);
}

static void print_request(const json_t *req)
{
    _cleanup_free_ char *name = cli_json_text(req, "name");
    printf("Request %" JSON_INTEGER_FORMAT ": %s\n", cli_json_int(req, "id"), name);

    _cleanup_(table_freep) struct table *kv = table_new(2, NULL);
    add_kv(kv, "  Department:", cli_json_text(req, "department"));
    add_kv(kv, "  State:", cli_json_text(req, "state"));
    add_kv(kv, "  Purpose:", cli_json_text(req, "purpose"));
    add_kv(kv, "  Security level:", cli_json_text(req, "security_level"));
    add_kv(kv, "  Lease until:", cli_json_text(req, "lease_until"));
    _cleanup_free_ char *seg = cli_json_text(req, "segment");
    _cleanup_free_ char *ipv6 = cli_json_text(req, "ipv6");
    add_kv(kv, "  Network:", xasprintf("%s (IPv6 %s)", seg, ipv6));
    add_kv(kv, "  Totals:", format_totals(json_object_get(req, "totals")));
    add_kv(kv, "  Submitted by:", cli_json_text(req, "submitted_by"));
    add_kv(kv, "  Created:", cli_json_text(req, "created_at"));
    add_kv(kv, "  Updated:", cli_json_text(req, "updated_at"));
    table_print(kv, stdout);

    const json_t *vms = json_object_get(req, "vms");
    if (json_array_size(vms) > 0) {
        static const char *const headers[] = { "VM", "COUNT", "VCPUS", "MEMORY", "DISK", "IMAGE" };
        _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
        for (size_t c = 1; c <= 4; c++)
            table_set_right(t, c);
        size_t i;
        json_t *vm;
        json_array_foreach(vms, i, vm) {
            table_add_owned(t, cli_json_text(vm, "name"));
            table_add_owned(t, cli_json_text(vm, "count"));
            table_add_owned(t, cli_json_text(vm, "vcpus"));
            table_add_owned(t, cli_format_mib(cli_json_int(vm, "memory_mib")));
            table_add_owned(t, cli_format_gib(cli_json_int(vm, "disk_gib")));
            table_add_owned(t, cli_json_text(vm, "image"));
        }
        printf("\n");
        table_print(t, stdout);
    }

    const json_t *transitions = json_object_get(req, "transitions");
    if (json_array_size(transitions) > 0) {
        static const char *const headers[] = { "AT", "FROM", "TO", "ACTOR", "ROLE", "REASON" };
        _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
        size_t i;
        json_t *tr;
        json_array_foreach(transitions, i, tr) {
            table_add_owned(t, cli_json_text(tr, "at"));
            table_add_owned(t, cli_json_text(tr, "from"));
            table_add_owned(t, cli_json_text(tr, "to"));
            table_add_owned(t, cli_json_text(tr, "actor"));
            table_add_owned(t, cli_json_text(tr, "role"));
            table_add_owned(t, cli_json_text(tr, "reason"));
        }
        printf("\nTransitions:\n");
        table_print(t, stdout);
    }
}

static int cmd_show(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "source", no_argument, NULL, 'S' },
        CLI_COMMON_OPTIONS,
        {}
    };
    bool source = false;
    json_int_t id;
    int c, r;

    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'S': source = true; break;
        }
    }
    if ((r = parse_request_id(cmd, argc, argv, &id)) != 0)
        return r;

    _cleanup_free_ char *path = xasprintf("/api/v1/requests/%" JSON_INTEGER_FORMAT, id);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", path, NULL, &root)) != 0 || !root)
        return r;
    const json_t *req = json_object_get(root, "request");
    if (source) {
        const char *src = json_string_value(json_object_get(req, "source"));
        if (!src) {
            cli_error("the controller did not return the submitted text of request %" JSON_INTEGER_FORMAT, id);
            return CLI_EXIT_REFUSED;
        }
        print_source(src);
        return 0;
    }
    print_request(req);
    return 0;
}

/* approve / reject / withdraw */
static int run_transition(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                          bool reason_required)
{
    static const struct option opts[] = {
        { "reason", required_argument, NULL, 'r' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *reason = NULL;
    json_int_t id;
    int c, r;

    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'r': reason = optarg; break;
        }
    }
    if ((r = parse_request_id(cmd, argc, argv, &id)) != 0)
        return r;
    if (reason_required && (!reason || !*reason))
        return cli_usage_error(cmd, "a reason is required: --reason TEXT");

    _cleanup_json_ json_t *body = json_object();
    if (reason)
        json_object_set_new(body, "reason", json_string(reason));
    _cleanup_free_ char *path = xasprintf("/api/v1/requests/%" JSON_INTEGER_FORMAT "/%s", id, cmd->name);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "POST", path, body, &root)) != 0 || !root)
        return r;
    const json_t *req = json_object_get(root, "request");
    _cleanup_free_ char *name = cli_json_text(req, "name");
    _cleanup_free_ char *state = cli_json_text(req, "state");
    printf("Request %" JSON_INTEGER_FORMAT " '%s' is now '%s'.\n", id, name, state);
    return 0;
}

static int cmd_approve(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    return run_transition(cli, cmd, argc, argv, false);
}

static int cmd_reject(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    return run_transition(cli, cmd, argc, argv, true);
}

static int cmd_withdraw(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    return run_transition(cli, cmd, argc, argv, false);
}

static const struct cli_command request_commands[] = {
    {
        .group = "request", .name = "submit",
        .synopsis = "FILE [--dry-run] [--idempotency-key KEY]",
        .summary = "Submit a resource request (YAML, or JSON when FILE ends in .json).",
        .description =
            "FILE '-' reads standard input.  Files over 64 KiB are refused before anything is\n"
            "sent.  Problems in the document are printed one per line as\n"
            "FILE:LINE:COLUMN: PATH: MESSAGE.  Quota warnings go to standard error.\n",
        .help =
            "      --dry-run                validate and show the totals and the quota outcome;\n"
            "                               store nothing\n"
            "      --idempotency-key KEY    resubmitting with the same KEY returns the first result\n"
            "                               instead of a second request (1-128 printable characters)\n",
        .run = cmd_submit,
    },
    {
        .group = "request", .name = "list",
        .synopsis = "[--department D] [--state S] [--limit N] [--after ID] [--all]",
        .summary = "List requests, newest first.",
        .help =
            "      --department D   only requests of department D\n"
            "      --state S        only requests in state S (submitted, approved, rejected,\n"
            "                       withdrawn, provisioning, active, closed, failed)\n"
            "      --limit N        requests per page, 1 to 500 (the controller's default: 50)\n"
            "      --after ID       start below request ID (the 'next' cursor of a page)\n"
            "      --all            follow the cursors and list every matching request\n",
        .run = cmd_list,
    },
    {
        .group = "request", .name = "show",
        .synopsis = "ID [--source]",
        .summary = "Show one request with its VMs and its transitions.",
        .help = "      --source         print the submitted document instead\n",
        .run = cmd_show,
    },
    {
        .group = "request", .name = "approve",
        .synopsis = "ID [--reason R]",
        .summary = "Approve a submitted request (cloudops, admin); the quota is enforced now.",
        .help = "      --reason R       why, recorded with the transition\n",
        .run = cmd_approve,
    },
    {
        .group = "request", .name = "reject",
        .synopsis = "ID --reason R",
        .summary = "Reject a submitted request (cloudops, admin).",
        .help = "      --reason R       why (required), recorded with the transition\n",
        .run = cmd_reject,
    },
    {
        .group = "request", .name = "withdraw",
        .synopsis = "ID [--reason R]",
        .summary = "Withdraw a submitted request (its own department, admin).",
        .help = "      --reason R       why, recorded with the transition\n",
        .run = cmd_withdraw,
    },
};

const struct cli_group cli_group_request = {
    .name = "request",
    .summary = "Resource requests: submit, follow, approve, reject, withdraw.",
    .commands = request_commands,
    .n_commands = YG_ARRAY_SIZE(request_commands),
};

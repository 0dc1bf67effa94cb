/* Segment plans and IPv6 prefixes for network engineers:
 *   yunguan segment apply FILE [--dry-run]     (listed in the segment group,
 *                                               cmd-readiness.c)
 *   yunguan prefix allocate --from P --length N [--segment S]
 *   yunguan prefix list */
#include <config.h>
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <strings.h>
#include <unistd.h>

#include "segments.h"
#include "util.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* "a, b and c" of a JSON array of strings; the changed fields of each
 * updated segment follow its name in parentheses. */
static char *name_list(const json_t *names, const json_t *changes)
{
    struct strbuf sb;
    size_t i, n = json_array_size(names);
    json_t *v;
    strbuf_init(&sb);
    json_array_foreach(names, i, v) {
        const char *name = json_string_value(v);
        if (!name)
            continue;
        if (i > 0)
            strbuf_puts(&sb, i + 1 == n ? " and " : ", ");
        strbuf_puts(&sb, name);
        const json_t *fields = json_object_get(changes, name);
        if (json_array_size(fields) > 0) {
            size_t k;
            json_t *f;
            strbuf_puts(&sb, " (");
            json_array_foreach(fields, k, f) {
                const char *field = json_string_value(f);
                strbuf_printf(&sb, "%s%s", k ? ", " : "", field ? field : "?");
            }
            strbuf_puts(&sb, ")");
        }
    }
    char *text = strbuf_steal(&sb);
    char *clean = cli_sanitize(text);
    free(text);
    return clean;
}

static void print_outcome(const json_t *root, bool dry_run)
{
    static const struct {
        const char *key, *done, *would;
    } kinds[] = {
        { "created", "Created", "Would create" },
        { "updated", "Updated", "Would update" },
        { "unchanged", "Unchanged", "Unchanged" },
    };
    const json_t *changes = json_object_get(root, "changes");
    size_t counts[YG_ARRAY_SIZE(kinds)], total = 0;
    for (size_t k = 0; k < YG_ARRAY_SIZE(kinds); k++) {
        const json_t *names = json_object_get(root, kinds[k].key);
        counts[k] = json_array_size(names);
        total += counts[k];
        if (counts[k] == 0)
            continue;
        _cleanup_free_ char *list = name_list(names, changes);
        printf("%-13s%s\n", dry_run ? kinds[k].would : kinds[k].done, list);
    }
    if (dry_run)
        printf("Dry run: %zu segment%s checked, %zu would be created, %zu updated; nothing was "
               "changed.\n", total, total == 1 ? "" : "s", counts[0], counts[1]);
    else
        printf("%zu segment%s applied: %zu created, %zu updated, %zu unchanged.\n", total,
               total == 1 ? "" : "s", counts[0], counts[1], counts[2]);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(root, "warnings"), i, w)
        if (json_is_string(w))
            cli_warning("%s", json_string_value(w));
}

int cli_segment_apply_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dry-run", no_argument, NULL, 'n' },
        CLI_COMMON_OPTIONS,
        {}
    };
    bool dry_run = false;
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'n': dry_run = true; break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 1, 1, "FILE")) != 0)
        return r;
    const char *file = argv[optind];
    const char *shown = streq(file, "-") ? "<stdin>" : file;
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    r = streq(file, "-") ? read_fd_limited(STDIN_FILENO, SEGMENTS_MAX_BYTES, &data, &len)
                         : read_file_limited(file, SEGMENTS_MAX_BYTES, &data, &len);
    if (r == -EFBIG) {
        cli_error("'%s' is larger than %d KiB, the limit for one segment list; split it into "
                  "several lists", shown, SEGMENTS_MAX_BYTES / 1024);
        return CLI_EXIT_REFUSED;
    }
    if (r < 0) {
        cli_error("cannot read '%s': %s", shown, strerror(-r));
        return CLI_EXIT_REFUSED;
    }
    if (len == 0) {
        cli_error("'%s' is empty; a segment list is a YAML or JSON document "
                  "(kind: SegmentList)", shown);
        return CLI_EXIT_REFUSED;
    }

    struct http_request req = {
        .method = "PUT",
        .path = dry_run ? "/api/v1/segments?dry_run=true" : "/api/v1/segments",
        .content_type = ends_with(file, ".json") ? "application/json" : "application/yaml",
        .body = data,
        .body_len = len,
    };
    _cleanup_json_ json_t *root = NULL;
    r = cli_call_raw(cli, &req, shown, &root, NULL);
    if (r != 0)
        return r;
    if (cli->json) {
        cli_print_json(root);
        return 0;
    }
    print_outcome(root, dry_run);
    return 0;
}

/* ---- prefix allocate | list ---- */

static int cmd_prefix_allocate(struct cli *cli, const struct cli_command *cmd, int argc,
                               char **argv)
{
    static const struct option opts[] = {
        { "from", required_argument, NULL, 'f' },
        { "length", required_argument, NULL, 'l' },
        { "segment", required_argument, NULL, 's' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *from = NULL, *segment = NULL, *length_s = NULL;
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'f': from = optarg; break;
        case 'l': length_s = optarg; break;
        case 's': segment = optarg; break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    if (!from)
        return cli_usage_error(cmd, "--from is required: the parent prefix, like "
                               "2001:db8:100::/48");
    if (!length_s)
        return cli_usage_error(cmd, "--length is required: the length to allocate, like 64");
    int64_t length;
    if (cli_parse_uint(length_s, 128, &length) < 0 || length < 1)
        return cli_usage_error(cmd, "--length must be an integer from 1 to 128, got '%s'",
                               length_s);
    struct ip_prefix parent;
    _cleanup_free_ char *perr = NULL;
    if (ip_prefix_parse(from, &parent, &perr) < 0)
        return cli_usage_error(cmd, "--from: %s", perr);
    if (segment && !cli_department_valid(segment))
        return cli_usage_error(cmd, "'%s' is not a segment name (%s)", segment,
                               CLI_DEPARTMENT_RULE);

    _cleanup_json_ json_t *body = json_pack("{s:s, s:I}", "from", from,
                                            "length", (json_int_t) length);
    if (segment)
        json_object_set_new(body, "segment", json_string(segment));
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "POST", "/api/v1/prefixes/allocate", body, &root)) != 0 || !root)
        return r;
    const json_t *a = json_object_get(root, "allocation");
    _cleanup_free_ char *prefix = cli_json_text(a, "prefix"), *par = cli_json_text(a, "parent");
    printf("Allocated %s from %s.\n", prefix, par);
    const json_t *seg = json_object_get(root, "segment");
    if (seg) {
        const json_t *v6 = json_object_get(seg, "ipv6");
        _cleanup_free_ char *name = cli_json_text(seg, "name");
        _cleanup_free_ char *gw = cli_json_text(v6, "gateway");
        printf("Segment '%s' now plans IPv6 %s with gateway %s; its hosts' IPv6 addresses go "
               "in the segment list.\n", name, prefix, gw);
    }
    return 0;
}

static int cmd_prefix_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_fetch_list_shown(cli, "/api/v1/prefixes", 0, true, &root)) != 0 || !root)
        return r;
    const json_t *items = json_object_get(root, "items");
    if (json_array_size(items) == 0) {
        printf("No prefixes allocated yet; allocate one with "
               "'yunguan prefix allocate --from PREFIX --length 64'.\n");
        return 0;
    }
    static const char *const headers[] = { "ID", "PREFIX", "PARENT", "SEGMENT", "ALLOCATED", "BY" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 0);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        table_add_owned(t, cli_json_text(it, "id"));
        table_add_owned(t, cli_json_text(it, "prefix"));
        table_add_owned(t, cli_json_text(it, "parent"));
        table_add_owned(t, cli_json_text(it, "segment"));
        table_add_owned(t, cli_json_text(it, "created_at"));
        table_add_owned(t, cli_json_text(it, "created_by"));
    }
    table_print(t, stdout);
    return 0;
}

static const struct cli_command prefix_commands[] = {
    {
        .group = "prefix", .name = "allocate",
        .synopsis = "--from PREFIX --length N [--segment SEGMENT]",
        .summary = "Allocate the next free IPv6 prefix inside a parent prefix (netops, admin).",
        .description =
            "The prefix is the first /N of PREFIX that overlaps no segment's prefix and no\n"
            "earlier allocation; it is recorded, so no two allocations get the same prefix.\n"
            "With --segment, a segment that has no IPv6 prefix yet gets it, with the\n"
            "prefix's ::1 as gateway.\n",
        .help =
            "      --from PREFIX      the parent prefix, like 2001:db8:100::/48 (a district's)\n"
            "      --length N         the length to allocate, like 64 (one segment)\n"
            "      --segment SEGMENT  give it to this segment (which has no IPv6 prefix yet)\n",
        .run = cmd_prefix_allocate,
    },
    {
        .group = "prefix", .name = "list",
        .synopsis = "",
        .summary = "List the allocated prefixes, oldest first.",
        .run = cmd_prefix_list,
    },
};

const struct cli_group cli_group_prefix = {
    .name = "prefix",
    .summary = "IPv6 prefixes allocated from parent prefixes.",
    .commands = prefix_commands,
    .n_commands = YG_ARRAY_SIZE(prefix_commands),
};

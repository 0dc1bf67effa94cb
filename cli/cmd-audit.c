/* yunguan audit list | verify (admin, auditor) */
#include <config.h>
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>

#include "util.h"

static char *value_text(const json_t *v)
{
    if (!v || json_is_null(v))
        return xstrdup("-");
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : xstrdup("?");
}

/* "state: submitted → approved, reason: …" from the before/after objects. */
static char *format_change(const json_t *before, const json_t *after)
{
    struct strbuf sb;
    strbuf_init(&sb);
    const char *key;
    json_t *v;
    if (!json_is_object(before) && !json_is_object(after)) {
        if ((before && !json_is_null(before)) || (after && !json_is_null(after))) {
            _cleanup_free_ char *b = value_text(before), *a = value_text(after);
            strbuf_printf(&sb, "%s → %s", b, a);
        }
        return strbuf_steal(&sb);
    }
    json_object_foreach((json_t *) after, key, v) {
        _cleanup_free_ char *a = value_text(v);
        const json_t *b = json_object_get(before, key);
        if (sb.len)
            strbuf_puts(&sb, ", ");
        if (b) {
            _cleanup_free_ char *bt = value_text(b);
            strbuf_printf(&sb, "%s: %s → %s", key, bt, a);
        } else {
            strbuf_printf(&sb, "%s: %s", key, a);
        }
    }
    json_object_foreach((json_t *) before, key, v) {
        if (json_object_get(after, key))
            continue;
        _cleanup_free_ char *b = value_text(v);
        if (sb.len)
            strbuf_puts(&sb, ", ");
        strbuf_printf(&sb, "%s: %s → -", key, b);
    }
    return strbuf_steal(&sb);
}

static int cmd_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "after", required_argument, NULL, 'a' },
        { "limit", required_argument, NULL, 'l' },
        { "all", no_argument, NULL, 'A' },
        CLI_COMMON_OPTIONS,
        {}
    };
    json_int_t after = 0;
    int64_t limit = 0;
    bool all = false;
    int c, r;

    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'A': all = true; break;
        case 'a':
            if (cli_parse_id(optarg, &after) < 0)
                return cli_usage_error(cmd, "--after takes an audit entry id, not '%s'", optarg);
            break;
        case 'l':
            if (cli_parse_uint(optarg, 100000, &limit) < 0 || limit < 1)
                return cli_usage_error(cmd, "--limit takes a positive whole number, not '%s'", optarg);
            break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;

    _cleanup_free_ char *path = limit > 0 ? xasprintf("/api/v1/audit?limit=%" PRId64, limit)
                                          : xstrdup("/api/v1/audit");
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_fetch_list_shown(cli, path, after, all, &root)) != 0 || !root)
        return r;
    const json_t *items = json_object_get(root, "items");
    if (json_array_size(items) == 0) {
        printf("No audit entries%s.\n", after > 0 ? " after that id" : "");
        return 0;
    }
    static const char *const headers[] = { "ID", "AT", "ACTOR", "ROLE", "ACTION", "OBJECT", "CHANGE" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 0);
    table_set_max_width(t, 6, 72);      /* --json has all of it */
    size_t i;
    json_t *e;
    json_array_foreach(items, i, e) {
        table_add_owned(t, cli_json_text(e, "id"));
        table_add_owned(t, cli_json_text(e, "at"));
        table_add_owned(t, cli_json_text(e, "actor"));
        table_add_owned(t, cli_json_text(e, "role"));
        table_add_owned(t, cli_json_text(e, "action"));
        table_add_owned(t, cli_json_text(e, "object"));
        table_add_owned(t, format_change(json_object_get(e, "before"), json_object_get(e, "after")));
    }
    table_print(t, stdout);
    const json_t *next = json_object_get(root, "next");
    if (json_is_integer(next))
        printf("More entries follow: use --all, or --after %" JSON_INTEGER_FORMAT ".\n",
               json_integer_value(next));
    return 0;
}

static int cmd_verify(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "anchor", required_argument, NULL, 'a' },
        CLI_COMMON_OPTIONS,
        {}
    };
    struct strbuf anchors;
    strbuf_init(&anchors);
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: strbuf_free(&anchors); return r;
        case 'a': {
            /* Checked by the controller; only what would break the URL here. */
            if (strspn(optarg, "0123456789:abcdef") != strlen(optarg) || !strchr(optarg, ':')) {
                strbuf_free(&anchors);
                return cli_usage_error(cmd, "--anchor '%s' is not ENTRY_ID:HASH (the id and the "
                                       "64 lower-case hex digits 'audit verify' shows as the head)",
                                       optarg);
            }
            strbuf_printf(&anchors, "%s%s", anchors.len ? "," : "", optarg);
            break;
        }
        }
    }
    bool anchored = anchors.len > 0;
    _cleanup_free_ char *list = strbuf_steal(&anchors);
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;

    _cleanup_free_ char *path = anchored ? xasprintf("/api/v1/audit/verify?anchor=%s", list)
                                         : xstrdup("/api/v1/audit/verify");
    _cleanup_json_ json_t *root = NULL;
    r = cli_call(cli, "GET", path, NULL, &root);
    if (r != 0)
        return r;
    const json_t *ok = json_object_get(root, "ok");
    json_int_t entries = cli_json_int(root, "entries");
    const json_t *problems = json_object_get(root, "problems");
    if (!json_is_boolean(ok)) {
        cli_error("the controller's verification answer has no 'ok' verdict");
        return CLI_EXIT_CONNECTION;
    }
    if (cli->json)
        cli_print_json(root);

    if (json_is_true(ok)) {
        if (!cli->json) {
            printf("Audit trail intact: %" JSON_INTEGER_FORMAT " entr%s verified, the hash chain is unbroken.\n",
                   entries, entries == 1 ? "y" : "ies");
            size_t n = json_array_size(json_object_get(root, "anchors"));
            if (n > 0)
                printf("%zu anchor%s recorded earlier still hold%s: the trail up to %s was not rewritten.\n",
                       n, n == 1 ? "" : "s", n == 1 ? "s" : "", n == 1 ? "it" : "them");
            const json_t *head = json_object_get(root, "head");
            if (json_is_object(head)) {
                _cleanup_free_ char *hash = cli_json_text(head, "hash");
                json_int_t id = cli_json_int(head, "id");
                printf("Head: entry %" JSON_INTEGER_FORMAT ", hash %s\n"
                       "Record it outside yunguan; 'yunguan audit verify --anchor %" JSON_INTEGER_FORMAT
                       ":%s' later shows whether the trail up to it was rewritten.\n",
                       id, hash, id, hash);
            }
        }
        return 0;
    }

    if (!cli->json && json_array_size(problems) > 0) {
        static const char *const headers[] = { "ENTRY", "PROBLEM", "WHAT IS WRONG" };
        _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
        table_set_right(t, 0);
        size_t i;
        json_t *p;
        json_array_foreach(problems, i, p) {
            table_add_owned(t, cli_json_text(p, "id"));
            table_add_owned(t, cli_json_text(p, "problem"));
            table_add_owned(t, cli_json_text(p, "message"));
        }
        table_print(t, stdout);
    }
    size_t n = json_array_size(problems);
    cli_error("the audit trail is NOT intact: %zu problem%s in %" JSON_INTEGER_FORMAT " entries",
              n, n == 1 ? "" : "s", entries);
    return CLI_EXIT_REFUSED;
}

static const struct cli_command audit_commands[] = {
    {
        .group = "audit", .name = "list",
        .synopsis = "[--after ID] [--limit N] [--all]",
        .summary = "List audit entries, oldest first (admin, auditor).",
        .help =
            "      --after ID       start after entry ID (the 'next' cursor of a page)\n"
            "      --limit N        entries per page\n"
            "      --all            follow the cursors to the last entry\n",
        .run = cmd_list,
    },
    {
        .group = "audit", .name = "verify",
        .synopsis = "[--anchor ENTRY_ID:HASH]...",
        .summary = "Verify the hash chain of the audit trail (admin, auditor).",
        .description =
            "Exits 0 when every entry matches its hash and the chain is unbroken; otherwise\n"
            "names every problem entry (altered, deleted, reordered, rewritten) and exits 1.\n"
            "It prints the head (the last entry's id and hash).  Record the head outside\n"
            "yunguan (a signed report, another system): the chain alone cannot show a\n"
            "trail rewritten from the start with every hash recomputed, but the rewrite\n"
            "changes the recorded entry's hash, which --anchor finds.\n",
        .help =
            "      --anchor ID:HASH  an entry's id and hash recorded earlier (repeat, up to 8)\n",
        .run = cmd_verify,
    },
};

const struct cli_group cli_group_audit = {
    .name = "audit",
    .summary = "The audit trail: read it, prove it unaltered.",
    .commands = audit_commands,
    .n_commands = YG_ARRAY_SIZE(audit_commands),
};

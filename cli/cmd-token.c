/* yunguan token create | list | revoke (admin) */
#include <config.h>
#include "cli.h"

#include <getopt.h>

#include "util.h"

static int cmd_create(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "role", required_argument, NULL, 'r' },
        { "department", required_argument, NULL, 'd' },
        { "description", required_argument, NULL, 'D' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *role = NULL, *dept = NULL, *desc = NULL;
    int c, r;

    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 'r': role = optarg; break;
        case 'd': dept = optarg; break;
        case 'D': desc = optarg; break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    if (!role || !*role)
        return cli_usage_error(cmd, "--role is required (admin, cloudops, netops, auditor, department)");
    if (streq(role, "department") && !dept)
        return cli_usage_error(cmd, "a token of role 'department' needs --department D");

    _cleanup_json_ json_t *body = json_pack("{s:s}", "role", role);
    if (dept)
        json_object_set_new(body, "department", json_string(dept));
    if (desc)
        json_object_set_new(body, "description", json_string(desc));
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "POST", "/api/v1/tokens", body, &root)) != 0 || !root)
        return r;
    const json_t *tok = json_object_get(root, "token");
    const char *secret = json_string_value(json_object_get(tok, "secret"));
    _cleanup_free_ char *r_role = cli_json_text(tok, "role");
    _cleanup_free_ char *r_dept = cli_json_text(tok, "department");
    if (json_is_string(json_object_get(tok, "department")))
        printf("Token %" JSON_INTEGER_FORMAT " created: role '%s', department '%s'.\n",
               cli_json_int(tok, "id"), r_role, r_dept);
    else
        printf("Token %" JSON_INTEGER_FORMAT " created: role '%s'.\n", cli_json_int(tok, "id"), r_role);
    if (!secret) {
        cli_error("the controller did not return the token's secret");
        return CLI_EXIT_CONNECTION;
    }
    _cleanup_free_ char *clean = cli_sanitize(secret);
    printf("\n    %s\n\n", clean);
    printf("Store this secret now (for example in a file of mode 0600 for --token-file): "
           "it will not be shown again.\n");
    return 0;
}

static int cmd_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;

    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", "/api/v1/tokens", NULL, &root)) != 0 || !root)
        return r;
    const json_t *items = json_object_get(root, "items");
    if (json_array_size(items) == 0) {
        printf("No tokens.\n");
        return 0;
    }
    static const char *const headers[] = {
        "ID", "ROLE", "DEPARTMENT", "DESCRIPTION", "CREATED", "CREATED BY", "REVOKED",
    };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 0);
    table_set_max_width(t, 3, 40);
    size_t i;
    json_t *tok;
    json_array_foreach(items, i, tok) {
        table_add_owned(t, cli_json_text(tok, "id"));
        table_add_owned(t, cli_json_text(tok, "role"));
        table_add_owned(t, cli_json_text(tok, "department"));
        table_add_owned(t, cli_json_text(tok, "description"));
        table_add_owned(t, cli_json_text(tok, "created_at"));
        table_add_owned(t, cli_json_text(tok, "created_by"));
        table_add_owned(t, cli_json_text(tok, "revoked_at"));
    }
    table_print(t, stdout);
    return 0;
}

static int cmd_revoke(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    json_int_t id;
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r))
        return r;
    if ((r = cli_operands(cmd, argc, argv, 1, 1, "ID")) != 0)
        return r;
    if (cli_parse_id(argv[optind], &id) < 0)
        return cli_usage_error(cmd, "'%s' is not a token id (a positive whole number)", argv[optind]);

    _cleanup_free_ char *path = xasprintf("/api/v1/tokens/%" JSON_INTEGER_FORMAT, id);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "DELETE", path, NULL, &root)) != 0 || !root)
        return r;
    _cleanup_free_ char *at = cli_json_text(json_object_get(root, "token"), "revoked_at");
    printf("Token %" JSON_INTEGER_FORMAT " revoked at %s.\n", id, at);
    return 0;
}

static const struct cli_command token_commands[] = {
    {
        .group = "token", .name = "create",
        .synopsis = "--role ROLE [--department D] [--description TEXT]",
        .summary = "Create an API token (admin); its secret is printed once.",
        .help =
            "      --role ROLE          admin, cloudops, netops, auditor or department\n"
            "      --department D       the department a 'department' token is bound to\n"
            "      --description TEXT   what the token is for\n",
        .run = cmd_create,
    },
    {
        .group = "token", .name = "list",
        .synopsis = "",
        .summary = "List API tokens, revoked ones included (admin); secrets are never shown.",
        .run = cmd_list,
    },
    {
        .group = "token", .name = "revoke",
        .synopsis = "ID",
        .summary = "Revoke an API token (admin); it stops working at once.",
        .run = cmd_revoke,
    },
};

const struct cli_group cli_group_token = {
    .name = "token",
    .summary = "API tokens (admin).",
    .commands = token_commands,
    .n_commands = YG_ARRAY_SIZE(token_commands),
};

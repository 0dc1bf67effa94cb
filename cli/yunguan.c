/* yunguan: the command-line client of the yunguan controller.
 *
 *   yunguan [GLOBAL OPTIONS] GROUP COMMAND [ARGS…]
 *
 * This file holds main(), the global options, the command dispatch, help
 * and the message helpers; each command group lives in cmd-GROUP.c. */
#include <config.h>
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static const struct cli_group *const groups[] = {
    &cli_group_request, &cli_group_quota, &cli_group_token, &cli_group_audit,
    &cli_group_segment, &cli_group_progress, &cli_group_host, &cli_group_prefix, &cli_group_vm,
    &cli_group_playbook,
};

/* One-word commands DESIGN.md names, as a group and command. */
static const struct {
    const char *word, *group, *command;
} shortcuts[] = {
    { "segments", "segment", "list" },
    { "progress", "progress", "show" },
};

/* Print "yunguan: " + message on one line, with control characters (from
 * server text) made harmless. */
static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
    _cleanup_free_ char *raw = NULL;
    if (vasprintf(&raw, fmt, ap) < 0)
        abort();
    _cleanup_free_ char *clean = cli_sanitize(raw);
    fflush(stdout);
    fprintf(stderr, "yunguan: %s%s\n", prefix, clean);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

void cli_warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning: ", fmt, ap);
    va_end(ap);
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    cli_error("%s %s: %s; try 'yunguan %s %s --help'", cmd->group, cmd->name, msg,
              cmd->group, cmd->name);
    return CLI_EXIT_USAGE;
}

/* The column where a help text's descriptions start ("      --flag ARG   text"). */
static int help_column(const char *help)
{
    const char *p = help ? help : "";
    while (*p == ' ')
        p++;
    const char *gap = strstr(p, "  ");
    const char *nl = strchr(p, '\n');
    if (!gap || (nl && gap > nl))
        return 23;
    while (*gap == ' ')
        gap++;
    return (int) (gap - help);
}

void cli_print_command_help(const struct cli_command *cmd, FILE *f)
{
    fprintf(f, "Usage: yunguan [GLOBAL OPTIONS] %s %s%s%s\n\n%s\n",
            cmd->group, cmd->name, *cmd->synopsis ? " " : "", cmd->synopsis, cmd->summary);
    if (cmd->description)
        fprintf(f, "\n%s", cmd->description);
    fputs("\nOptions:\n", f);
    int col = help_column(cmd->help);
    if (cmd->help)
        fputs(cmd->help, f);
    fprintf(f, "%-*s%s\n", col, "      --json", "print the controller's JSON answer instead of a table");
    fprintf(f, "%-*s%s\n", col, "      --help", "show this help and exit");
    fputs("\nGlobal options (--server, --token, …) go before the command; see 'yunguan --help'.\n", f);
}

static bool is_long_option(const char *arg)
{
    return arg && strncmp(arg, "--", 2) == 0;
}

static const char *option_name(const struct option *longopts, int val)
{
    for (const struct option *o = longopts; o->name; o++)
        if (o->val == val)
            return o->name;
    return "?";
}

int cli_getopt(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
               const struct option *longopts, int *ret_exit)
{
    for (;;) {
        int c = getopt_long(argc, argv, ":h", longopts, NULL);
        switch (c) {
        case -1:
            return CLI_OPT_DONE;
        case 'h':
        case CLI_OPT_HELP:
            cli_print_command_help(cmd, stdout);
            *ret_exit = CLI_EXIT_OK;
            return CLI_OPT_EXIT;
        case CLI_OPT_JSON:
            cli->json = true;
            continue;
        case ':':
            *ret_exit = cli_usage_error(cmd, "option '--%s' needs a value",
                                        option_name(longopts, optopt));
            return CLI_OPT_EXIT;
        case '?':
            if (!is_long_option(argv[optind - 1]))
                *ret_exit = cli_usage_error(cmd, "unknown option '-%c'", optopt);
            else if (optopt != 0)
                *ret_exit = cli_usage_error(cmd, "option '--%s' takes no value",
                                            option_name(longopts, optopt));
            else
                *ret_exit = cli_usage_error(cmd, "unknown or ambiguous option '%s'", argv[optind - 1]);
            return CLI_OPT_EXIT;
        default:
            return c;
        }
    }
}

bool cli_no_options(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                    int *ret_exit)
{
    static const struct option opts[] = { CLI_COMMON_OPTIONS, {} };
    int c;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, ret_exit)) != CLI_OPT_DONE)
        if (c == CLI_OPT_EXIT)
            return true;
    return false;
}

int cli_operands(const struct cli_command *cmd, int argc, char **argv, int min, int max,
                 const char *what)
{
    int n = argc - optind;
    if (n < min)
        return cli_usage_error(cmd, "missing %s", what);
    if (n > max)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + max]);
    return 0;
}

static void print_help(FILE *f)
{
    fputs("Usage: yunguan [GLOBAL OPTIONS] COMMAND [ARGS…]\n"
          "\n"
          "The command-line client of yunguan, the government-cloud controller.\n"
          "\n"
          "Commands:\n", f);
    for (size_t g = 0; g < YG_ARRAY_SIZE(groups); g++) {
        for (size_t i = 0; i < groups[g]->n_commands; i++) {
            const struct cli_command *cmd = &groups[g]->commands[i];
            _cleanup_free_ char *name = xasprintf("%s %s", cmd->group, cmd->name);
            fprintf(f, "  %-18s %s\n", name, cmd->summary);
        }
    }
    fprintf(f, "  %-18s %s\n", "help [GROUP [CMD]]", "Describe a group of commands or one command.");
    fputs("\n"
          "Global options (before the command):\n"
          "      --server URL       controller URL (default " CLI_DEFAULT_SERVER ")\n"
          "      --token TOKEN      bearer token (visible to other local users in ps;\n"
          "                         prefer --token-file)\n"
          "      --token-file PATH  read the bearer token from PATH\n"
          "      --config FILE      configuration file (YAML: server, token, token_file,\n"
          "                         ca_file)\n"
          "      --ca-file PEM      for an https:// server: the CA its certificate chains\n"
          "                         to (default: the system's CA bundle)\n"
          "      --json             print the controller's JSON answers, for scripts\n"
          "      --help             show this help and exit\n"
          "      --version          show the version and exit\n"
          "\n"
          "Settings come from the options, then YUNGUAN_URL, YUNGUAN_TOKEN,\n"
          "YUNGUAN_TOKEN_FILE, YUNGUAN_CA_FILE, then the configuration file (--config,\n"
          "$YUNGUAN_CONFIG, $XDG_CONFIG_HOME/yunguan/config.yaml or\n"
          "~/.config/yunguan/config.yaml).\n"
          "\n"
          "Exit status: 0 success, 1 operation refused or invalid, 2 usage or\n"
          "configuration error, 3 controller unreachable or credentials refused.\n"
          "'yunguan COMMAND --help' describes one command; yunguan(1) has the rest.\n", f);
}

static void print_group_help(const struct cli_group *g, FILE *f)
{
    fprintf(f, "Usage: yunguan [GLOBAL OPTIONS] %s COMMAND [ARGS…]\n\n%s\n\nCommands:\n",
            g->name, g->summary);
    for (size_t i = 0; i < g->n_commands; i++) {
        const struct cli_command *cmd = &g->commands[i];
        fprintf(f, "  %s %s %s\n      %s\n", g->name, cmd->name, cmd->synopsis, cmd->summary);
    }
    fprintf(f, "\n'yunguan %s COMMAND --help' describes one command.\n", g->name);
}

/* "did you mean" among a set of names, or NULL. */
static const char *closest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best_d <= 2 && best_d < strlen(word) ? best : NULL;
}

static const struct cli_group *find_group(const char *name)
{
    for (size_t g = 0; g < YG_ARRAY_SIZE(groups); g++)
        if (streq(groups[g]->name, name))
            return groups[g];
    return NULL;
}

static const struct cli_command *find_command(const struct cli_group *g, const char *name)
{
    for (size_t i = 0; i < g->n_commands; i++)
        if (streq(g->commands[i].name, name))
            return &g->commands[i];
    return NULL;
}

static int unknown_group(const char *name)
{
    const char *names[YG_ARRAY_SIZE(groups)];
    for (size_t g = 0; g < YG_ARRAY_SIZE(groups); g++)
        names[g] = groups[g]->name;
    const char *hint = closest(name, names, YG_ARRAY_SIZE(groups));
    if (hint)
        cli_error("unknown command '%s' (did you mean '%s'?); try 'yunguan --help'", name, hint);
    else
        cli_error("unknown command '%s'; try 'yunguan --help'", name);
    return CLI_EXIT_USAGE;
}

static char *command_names(const struct cli_group *g)
{
    struct strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < g->n_commands; i++)
        strbuf_printf(&sb, "%s%s", i ? ", " : "", g->commands[i].name);
    return strbuf_steal(&sb);
}

static int unknown_command(const struct cli_group *g, const char *name)
{
    const char *names[16];
    size_t n = g->n_commands < 16 ? g->n_commands : 16;
    for (size_t i = 0; i < n; i++)
        names[i] = g->commands[i].name;
    const char *hint = closest(name, names, n);
    _cleanup_free_ char *all = command_names(g);
    if (hint)
        cli_error("unknown command '%s %s' (did you mean '%s %s'?); try 'yunguan %s --help'",
                  g->name, name, g->name, hint, g->name);
    else
        cli_error("unknown command '%s %s' (known: %s); try 'yunguan %s --help'",
                  g->name, name, all, g->name);
    return CLI_EXIT_USAGE;
}

/* yunguan help [GROUP [COMMAND]] */
static int run_help(int argc, char **argv)
{
    if (argc == 0) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_group *g = find_group(argv[0]);
    if (!g)
        return unknown_group(argv[0]);
    if (argc == 1) {
        print_group_help(g, stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *cmd = find_command(g, argv[1]);
    if (!cmd)
        return unknown_command(g, argv[1]);
    cli_print_command_help(cmd, stdout);
    return CLI_EXIT_OK;
}

static int dispatch(struct cli *cli, int argc, char **argv)
{
    if (argc == 0) {
        cli_error("no command given; try 'yunguan --help'");
        return CLI_EXIT_USAGE;
    }
    if (streq(argv[0], "help"))
        return run_help(argc - 1, argv + 1);
    for (size_t i = 0; i < YG_ARRAY_SIZE(shortcuts); i++)
        if (streq(argv[0], shortcuts[i].word) && (argc == 1 || argv[1][0] == '-') &&
            !(argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h")) &&
              streq(shortcuts[i].word, shortcuts[i].group))) {
            /* "segments [OPTIONS]" runs "segment list [OPTIONS]". */
            const struct cli_group *sg = find_group(shortcuts[i].group);
            const struct cli_command *sc = sg ? find_command(sg, shortcuts[i].command) : NULL;
            if (!sc)
                break;
            char **args = xcalloc((size_t) argc + 1, sizeof *args);
            args[0] = (char *) shortcuts[i].command;
            for (int a = 1; a < argc; a++)
                args[a] = argv[a];
            optind = 0;
            int r = sc->run(cli, sc, argc, args);
            free(args);
            return r;
        }
    const struct cli_group *g = find_group(argv[0]);
    if (!g)
        return unknown_group(argv[0]);
    if (argc == 1) {
        _cleanup_free_ char *all = command_names(g);
        cli_error("'%s' needs a command (%s); try 'yunguan %s --help'", g->name, all, g->name);
        return CLI_EXIT_USAGE;
    }
    if (streq(argv[1], "--help") || streq(argv[1], "-h")) {
        print_group_help(g, stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *cmd = find_command(g, argv[1]);
    if (!cmd)
        return unknown_command(g, argv[1]);
    optind = 0;                 /* full re-initialisation of GNU getopt */
    return cmd->run(cli, cmd, argc - 1, argv + 1);
}

static int close_stdout(int r)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        if (e != EPIPE)
            cli_error("cannot write the output: %s", strerror(e));
        return r == 0 ? CLI_EXIT_REFUSED : r;
    }
    return r;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "server", required_argument, NULL, 's' },
        { "token", required_argument, NULL, 't' },
        { "token-file", required_argument, NULL, 'T' },
        { "config", required_argument, NULL, 'c' },
        { "ca-file", required_argument, NULL, 'C' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        {}
    };
    struct cli cli = {0};
    int c, r;

    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");     /* "1.5 GiB" whatever the locale */

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
        switch (c) {
        case 's': cli.opt_server = optarg; break;
        case 't': cli.opt_token = optarg; break;
        case 'T': cli.opt_token_file = optarg; break;
        case 'c': cli.opt_config = optarg; break;
        case 'C': cli.opt_ca_file = optarg; break;
        case 'j': cli.json = true; break;
        case 'h':
            print_help(stdout);
            return close_stdout(CLI_EXIT_OK);
        case 'V':
            printf("yunguan %s\n", PACKAGE_VERSION);
            return close_stdout(CLI_EXIT_OK);
        case ':':
            cli_error("option '%s' needs a value; try 'yunguan --help'", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        default:
            if (!is_long_option(argv[optind - 1]))
                cli_error("unknown option '-%c'; try 'yunguan --help'", optopt);
            else if (optopt != 0)
                cli_error("option '%s' takes no value; try 'yunguan --help'", argv[optind - 1]);
            else
                cli_error("unknown or ambiguous option '%s'; try 'yunguan --help'", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (cli.opt_token && cli.opt_token_file) {
        cli_error("give either --token or --token-file, not both");
        return CLI_EXIT_USAGE;
    }

    r = dispatch(&cli, argc - optind, argv + optind);
    http_client_free(cli.http);
    return close_stdout(r);
}

/* yunguan, the command-line client: what the command files share. */
#ifndef YG_CLI_H
#define YG_CLI_H 1

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "error.h"
#include "http-client.h"
#include "util.h"

/* Exit codes (documented in yunguan(1)). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_REFUSED = 1,       /* the operation was refused or is invalid */
    CLI_EXIT_USAGE = 2,         /* bad command line or configuration */
    CLI_EXIT_CONNECTION = 3,    /* cannot reach the controller, or it refuses the credentials */
};

#define CLI_DEFAULT_SERVER "http://127.0.0.1:8470"
#define CLI_MAX_REQUEST_BYTES (64 * 1024)
#define CLI_MAX_CONFIG_BYTES (64 * 1024)
#define CLI_MAX_TOKEN_BYTES 4096

/* Global state of one invocation. */
struct cli {
    /* from the command line */
    const char *opt_server, *opt_token, *opt_token_file, *opt_config, *opt_ca_file;
    bool json;

    /* resolved by cli_connect() */
    struct http_client *http;
};

struct cli_command {
    const char *group;          /* "request" */
    const char *name;           /* "submit" */
    const char *synopsis;       /* "FILE [--dry-run] [--idempotency-key KEY]" */
    const char *summary;        /* one line */
    const char *description;    /* more paragraphs for --help, may be NULL */
    const char *help;           /* option descriptions, may be NULL */
    int (*run)(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
};

struct cli_group {
    const char *name;           /* "request" */
    const char *summary;
    const struct cli_command *commands;
    size_t n_commands;
};

extern const struct cli_group cli_group_request, cli_group_quota, cli_group_token, cli_group_audit,
    cli_group_segment, cli_group_progress, cli_group_host, cli_group_prefix, cli_group_vm,
    cli_group_playbook;

/* The hypervisor commands of the host group (cmd-vm.c). */
int cli_host_add_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cli_host_list_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cli_host_show_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
int cli_host_drain_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);
/* "segment apply" (cmd-segment.c), listed in the segment group (cmd-readiness.c). */
int cli_segment_apply_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);

/* --- messages (yunguan.c) -------------------------------------------- */
/* "yunguan: " + sentence on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "yunguan: GROUP CMD: sentence; try '…--help'" and returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_print_command_help(const struct cli_command *cmd, FILE *f);

/* Option parsing shared by the commands: getopt_long over argv (argv[0] is
 * the command name, options and operands may mix) that handles --help and
 * --json (put CLI_COMMON_OPTIONS in longopts) and turns getopt's complaints
 * into one usage sentence.  Returns the option's value, CLI_OPT_DONE at the
 * end, or CLI_OPT_EXIT when the command must return *ret_exit now.  After
 * CLI_OPT_DONE the operands are argv[optind..argc-1]. */
#define CLI_OPT_DONE  (-1)
#define CLI_OPT_EXIT  (-2)
#define CLI_OPT_HELP  0x1001
#define CLI_OPT_JSON  0x1002
#define CLI_COMMON_OPTIONS                                  \
    { "help", no_argument, NULL, CLI_OPT_HELP },            \
    { "json", no_argument, NULL, CLI_OPT_JSON }
struct option;
int cli_getopt(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
               const struct option *longopts, int *ret_exit);
/* cli_getopt() for a command with no options of its own (--help, --json
 * only).  True when the command must return *ret_exit now (after --help,
 * or a usage error). */
bool cli_no_options(struct cli *cli, const struct cli_command *cmd, int argc, char **argv,
                    int *ret_exit);
/* Checks the number of operands argv[optind..argc-1] ("what" names them in
 * the message: "FILE").  0, or CLI_EXIT_USAGE after the usage sentence. */
int cli_operands(const struct cli_command *cmd, int argc, char **argv, int min, int max,
                 const char *what);

/* --- talking to the controller (api.c) -------------------------------- */
/* Resolve server and token (flags, environment, config file) and make the
 * HTTP client.  0 or an exit code after printing one sentence. */
int cli_connect(struct cli *cli);

/* One API call with an optional JSON body.  0 and *ret_json, or an exit
 * code after reporting the error. */
int cli_call(struct cli *cli, const char *method, const char *path, json_t *body,
             json_t **ret_json);
/* The general form: raw body, extra headers, the raw answer back. */
int cli_call_raw(struct cli *cli, const struct http_request *req, const char *filename,
                 json_t **ret_json, struct http_response **ret_response);
/* Turn an API error into the one sentence (or the FILE:LINE:COLUMN lines of
 * a 422) and the exit code. */
int cli_report_error(struct cli *cli, const struct yg_error *e, const char *filename,
                     const struct http_response *resp);

/* GET a list endpoint ("/api/v1/requests?state=x"), starting after the
 * cursor "after" (0: from the start), and page by page through the "next"
 * cursor when all is true.  0 and *ret_root: the first page's answer with
 * "items" holding every item fetched and "next" the cursor after the last
 * page; or an exit code. */
int cli_fetch_list(struct cli *cli, const char *path, json_int_t after, bool all,
                   json_t **ret_root);

/* cli_call() and cli_fetch_list() for a command that shows the answer:
 * with --json the answer is printed here and *ret_json is NULL (the
 * command is done: return the 0); otherwise *ret_json is the answer for
 * the command to print as text.
 *     if ((r = cli_call_shown(cli, "GET", path, NULL, &root)) != 0 || !root)
 *         return r;                                                          */
int cli_call_shown(struct cli *cli, const char *method, const char *path, json_t *body,
                   json_t **ret_json);
int cli_fetch_list_shown(struct cli *cli, const char *path, json_int_t after, bool all,
                         json_t **ret_root);

/* --- output (output.c) ------------------------------------------------- */
void cli_print_json(const json_t *j);
/* Columns a string takes on a terminal (wcwidth, UTF-8 fallback). */
size_t cli_display_width(const char *s);
/* Copy cut to max_width display columns, ending in '…' when cut. */
char *cli_truncate(const char *s, size_t max_width);
/* Copy with control characters replaced by '?' (server text on a terminal). */
char *cli_sanitize(const char *s);
/* "24 GiB", "1.5 GiB", "512 MiB", "4 TiB" */
char *cli_format_mib(int64_t mib);
char *cli_format_gib(int64_t gib);
/* Any member as text for a table ("-" when missing, null or empty),
 * control characters made harmless. */
char *cli_json_text(const json_t *obj, const char *key);
json_int_t cli_json_int(const json_t *obj, const char *key);

/* A department name as the API takes it: [a-z0-9-], 1 to 63 characters. */
bool cli_department_valid(const char *s);
#define CLI_DEPARTMENT_RULE "lower-case letters, digits and '-', like 'health'"

/* Parsing of command-line values: 0 or -EINVAL/-ERANGE. */
int cli_parse_id(const char *s, json_int_t *ret_id);
int cli_parse_uint(const char *s, int64_t max, int64_t *ret);
/* "256GiB", "512MiB", "4TiB" (or a bare "0") to MiB. */
int cli_parse_size_mib(const char *s, int64_t *ret_mib);

/* Aligned table (table.c); headers may be NULL for a table without a
 * header row (key: value blocks). */
struct table;
struct table *table_new(size_t n_cols, const char *const *headers);
void table_set_right(struct table *t, size_t col);
/* Cut the cells of col to at most width display columns (with '…'). */
void table_set_max_width(struct table *t, size_t col, size_t width);
void table_add(struct table *t, const char *text);           /* next cell, row by row */
void table_addf(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void table_add_owned(struct table *t, char *text);
size_t table_rows(const struct table *t);
void table_print(const struct table *t, FILE *f);
void table_free(struct table *t);
static inline void table_freep(struct table **t) { table_free(*t); }

/* Settings (settings.c). */
struct cli_settings {
    char *server;
    char *ca_file;              /* NULL: the system's CA bundle */
    char *token;                /* secret; wiped on free */
};
/* Resolve, in order: flags, environment, config file.  0 or an exit code
 * after printing one sentence. */
int cli_settings_resolve(const struct cli *cli, struct cli_settings *ret);
void cli_settings_done(struct cli_settings *s);

/* json_decrefp() comes with jansson >= 2.11 (json_auto_t). */
#define _cleanup_json_ _cleanup_(json_decrefp)

#endif

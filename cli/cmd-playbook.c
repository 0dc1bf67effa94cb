/* IPv6 migration playbooks (doc/PLAYBOOKS.md):
 *   yunguan playbook list | show NAME | validate FILE
 *   yunguan playbook run NAME|FILE --segment S --check|--apply [--wait] …
 *   yunguan playbook runs [--segment S] [--state STATE]
 *   yunguan playbook show-run RUN (alias: status) | cancel RUN */
#include <config.h>
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "playbook.h"
#include "util.h"

#define RUN_PARAMS_MAX 64
#define RUN_HOSTS_MAX 4096

static bool is_name(const char *s)
{
    return cli_department_valid(s);     /* the same rule: [a-z0-9-], 1-63 */
}

static bool looks_like_file(const char *s)
{
    size_t n = strlen(s);
    return streq(s, "-") || strchr(s, '/') || (n > 5 && strcasecmp(s + n - 5, ".yaml") == 0) ||
           (n > 4 && strcasecmp(s + n - 4, ".yml") == 0) || access(s, F_OK) == 0;
}

static int read_playbook_file(const char *file, char **ret_text, size_t *ret_len)
{
    const char *shown = streq(file, "-") ? "<stdin>" : file;
    int r = streq(file, "-") ? read_fd_limited(STDIN_FILENO, PLAYBOOK_MAX_BYTES, ret_text, ret_len)
                             : read_file_limited(file, PLAYBOOK_MAX_BYTES, ret_text, ret_len);
    if (r == -EFBIG) {
        cli_error("'%s' is larger than %d KiB, the limit for one playbook", shown, PLAYBOOK_MAX_BYTES / 1024);
        return CLI_EXIT_REFUSED;
    }
    if (r < 0) {
        cli_error("cannot read '%s': %s", shown, strerror(-r));
        return CLI_EXIT_REFUSED;
    }
    return 0;
}

static int run_id_operand(const struct cli_command *cmd, int argc, char **argv, json_int_t *ret)
{
    int r = cli_operands(cmd, argc, argv, 1, 1, "RUN");
    if (r != 0)
        return r;
    if (cli_parse_id(argv[optind], ret) < 0)
        return cli_usage_error(cmd, "'%s' is not a run id (a positive number)", argv[optind]);
    return 0;
}

/* ---- list | show | validate ---- */

static char *params_summary(const json_t *params)
{
    struct strbuf sb;
    strbuf_init(&sb);
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p) {
        _cleanup_free_ char *name = cli_json_text(p, "name"), *type = cli_json_text(p, "type");
        strbuf_printf(&sb, "%s%s:%s%s", i ? ", " : "", name, type,
                      json_is_true(json_object_get(p, "required")) ? "" : "?");
    }
    char *text = sb.s ? strbuf_steal(&sb) : xstrdup("-");
    return text;
}

static int cmd_list(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r) || (r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", "/api/v1/playbooks", NULL, &root)) != 0 || !root)
        return r;
    const json_t *items = json_object_get(root, "items");
    if (json_array_size(items) == 0) {
        _cleanup_free_ char *dir = cli_json_text(root, "directory");
        printf("No playbooks are installed (in %s).\n", dir);
        return 0;
    }
    static const char *const headers[] = { "NAME", "STEPS", "PARAMETERS", "DESCRIPTION" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 1);
    table_set_max_width(t, 3, 60);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        table_add_owned(t, cli_json_text(it, "name"));
        if (json_object_get(it, "error")) {
            table_add(t, "-");
            table_add(t, "-");
            _cleanup_free_ char *err = cli_json_text(it, "error");
            table_add_owned(t, xasprintf("INVALID: %s", err));
            continue;
        }
        table_add_owned(t, cli_json_text(it, "steps"));
        table_add_owned(t, params_summary(json_object_get(it, "params")));
        table_add_owned(t, cli_json_text(it, "description"));
    }
    table_print(t, stdout);
    return 0;
}

static void print_steps(const json_t *steps)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s) {
        _cleanup_free_ char *name = cli_json_text(s, "name"), *action = cli_json_text(s, "action");
        printf("  %2zu. %-28s %s\n", i + 1, name, action);
    }
}

static int cmd_show_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv);

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int cmd_show(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r) || (r = cli_operands(cmd, argc, argv, 1, 1, "NAME|RUN")) != 0)
        return r;
    const char *name = argv[optind];
    /* 'playbook show 12' is run 12: what an engineer following a run types. */
    if (all_digits(name))
        return cmd_show_run(cli, cmd, argc, argv);
    if (!is_name(name))
        return cli_usage_error(cmd, "'%s' is not a playbook name (%s)", name, CLI_DEPARTMENT_RULE);
    _cleanup_free_ char *path = xasprintf("/api/v1/playbooks/%s", name);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", path, NULL, &root)) != 0 || !root)
        return r;
    _cleanup_free_ char *n = cli_json_text(root, "name"), *d = cli_json_text(root, "description"),
                        *sha = cli_json_text(root, "sha256");
    _cleanup_free_ char *params = params_summary(json_object_get(root, "params"));
    printf("Playbook:    %s\nDescription: %s\nSHA-256:     %s\nParameters:  %s\nSteps:\n", n, d, sha, params);
    print_steps(json_object_get(root, "steps"));
    return 0;
}

static int cmd_validate(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r) || (r = cli_operands(cmd, argc, argv, 1, 1, "FILE")) != 0)
        return r;
    const char *file = argv[optind];
    const char *shown = streq(file, "-") ? "<stdin>" : file;
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    if ((r = read_playbook_file(file, &text, &len)) != 0)
        return r;
    struct playbook *pb = NULL;
    _cleanup_(yg_error_freep) struct yg_error *e = NULL;
    /* Offline: the same loader the controller runs (lib/playbook.c). */
    if (playbook_parse(text, len, shown, &pb, &e) < 0) {
        if (cli->json) {
            json_t *j = e ? yg_error_to_json(e) : json_pack("{s:s}", "error", "invalid");
            cli_print_json(j);
            json_decref(j);
        } else if (e) {
            _cleanup_free_ char *msg = yg_error_format(e, shown);
            fflush(stdout);
            fprintf(stderr, "%s\n", msg);
        } else {
            cli_error("'%s' is not a valid playbook", shown);
        }
        return CLI_EXIT_REFUSED;
    }
    if (cli->json) {
        json_t *j = playbook_to_json(pb);
        json_object_set_new(j, "valid", json_true());
        cli_print_json(j);
        json_decref(j);
    } else {
        size_t n = playbook_n_steps(pb);
        printf("%s: valid playbook '%s' (%zu step%s, %zu parameter%s).\n", shown, playbook_name(pb), n,
               n == 1 ? "" : "s", playbook_n_params(pb), playbook_n_params(pb) == 1 ? "" : "s");
    }
    playbook_free(pb);
    return 0;
}

/* ---- runs ---- */

static bool run_ended(const json_t *run)
{
    const char *state = json_string_value(json_object_get(run, "state"));
    return state && !streq(state, "running");
}

static int run_exit_code(const json_t *run)
{
    const char *state = json_string_value(json_object_get(run, "state"));
    return state && streq(state, "succeeded") ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
}

/* "3 changed, 1 unchanged" of a host's steps. */
static char *steps_summary(const json_t *steps)
{
    static const char *const kinds[] = { "changed", "would-change", "unchanged", "skipped", "failed",
                                         "undone", "undo-failed", "not-run" };
    int counts[YG_ARRAY_SIZE(kinds)] = { 0 };
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s) {
        const char *st = json_string_value(json_object_get(s, "status"));
        for (size_t k = 0; st && k < YG_ARRAY_SIZE(kinds); k++)
            if (streq(st, kinds[k]))
                counts[k]++;
    }
    struct strbuf sb;
    strbuf_init(&sb);
    for (size_t k = 0; k < YG_ARRAY_SIZE(kinds); k++)
        if (counts[k])
            strbuf_printf(&sb, "%s%d %s", sb.len ? ", " : "", counts[k], kinds[k]);
    return sb.s ? strbuf_steal(&sb) : xstrdup("-");
}

static void print_run(const json_t *run)
{
    _cleanup_free_ char *id = cli_json_text(run, "id"), *pb = cli_json_text(run, "playbook"),
                        *sha = cli_json_text(run, "playbook_sha256"), *seg = cli_json_text(run, "segment"),
                        *mode = cli_json_text(run, "mode"), *state = cli_json_text(run, "state"),
                        *msg = cli_json_text(run, "message"), *by = cli_json_text(run, "created_by"),
                        *at = cli_json_text(run, "created_at"), *end = cli_json_text(run, "finished_at"),
                        *canary = cli_json_text(run, "canary");
    printf("Run:       %s\nPlaybook:  %s (SHA-256 %.16s…)\nSegment:   %s\nMode:      %s", id, pb, sha, seg, mode);
    if (streq(mode, "apply"))
        printf(" (canary %s, then batches of %" JSON_INTEGER_FORMAT ")", canary, cli_json_int(run, "batch_size"));
    printf("\nState:     %s\n", state);
    if (!streq(msg, "-"))
        printf("Message:   %s\n", msg);
    printf("Started:   %s by %s\n", at, by);
    if (!streq(end, "-"))
        printf("Ended:     %s\n", end);
    static const char *const headers[] = { "HOST", "BATCH", "STATE", "STEPS", "MESSAGE" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 1);
    table_set_max_width(t, 4, 60);
    size_t i;
    json_t *h;
    const json_t *hosts = json_object_get(run, "hosts");
    json_array_foreach(hosts, i, h) {
        table_add_owned(t, cli_json_text(h, "host"));
        table_add_owned(t, cli_json_text(h, "batch"));
        table_add_owned(t, cli_json_text(h, "state"));
        table_add_owned(t, steps_summary(json_object_get(h, "steps")));
        table_add_owned(t, cli_json_text(h, "message"));
    }
    printf("\n");
    table_print(t, stdout);
    /* Where something went wrong, every step of that host. */
    json_array_foreach(hosts, i, h) {
        const char *st = json_string_value(json_object_get(h, "state"));
        if (!st || !(streq(st, "failed") || streq(st, "unknown")))
            continue;
        _cleanup_free_ char *host = cli_json_text(h, "host");
        printf("\n%s (%s):\n", host, st);
        size_t k;
        json_t *s;
        json_array_foreach(json_object_get(h, "steps"), k, s) {
            _cleanup_free_ char *name = cli_json_text(s, "name"), *action = cli_json_text(s, "action"),
                                *status = cli_json_text(s, "status"), *before = cli_json_text(s, "before"),
                                *after = cli_json_text(s, "after"), *m = cli_json_text(s, "message");
            printf("  %2zu. %-24s %-16s %-13s %s → %s%s%s\n", k + 1, name, action, status, before, after,
                   streq(m, "-") ? "" : "  ", streq(m, "-") ? "" : m);
        }
    }
}

/* Follow RUN_ID until it ends; prints host changes (not with --json). */
static int follow_run(struct cli *cli, json_int_t run_id, json_t **ret_run)
{
    _cleanup_free_ char *path = xasprintf("/api/v1/playbook-runs/%" JSON_INTEGER_FORMAT, run_id);
    json_t *seen = json_object();      /* host -> last state printed */
    unsigned delay_ms = 200;
    for (;;) {
        json_t *run = NULL;
        int r = cli_call(cli, "GET", path, NULL, &run);
        if (r != 0) {
            json_decref(seen);
            return r;
        }
        if (!cli->json) {
            size_t i;
            json_t *h;
            json_array_foreach(json_object_get(run, "hosts"), i, h) {
                const char *host = json_string_value(json_object_get(h, "host"));
                const char *state = json_string_value(json_object_get(h, "state"));
                if (!host || !state || streq(state, "waiting"))
                    continue;
                const char *before = json_string_value(json_object_get(seen, host));
                if (before && streq(before, state))
                    continue;
                json_object_set_new(seen, host, json_string(state));
                _cleanup_free_ char *clean_host = cli_sanitize(host), *m = cli_json_text(h, "message");
                printf("  %-16s %-10s%s%s\n", clean_host, state,
                       streq(m, "-") || !(streq(state, "failed") || streq(state, "unknown")) ? "" : "  ",
                       streq(m, "-") || !(streq(state, "failed") || streq(state, "unknown")) ? "" : m);
                fflush(stdout);
            }
        }
        if (run_ended(run)) {
            json_decref(seen);
            *ret_run = run;
            return 0;
        }
        json_decref(run);
        struct timespec ts = { delay_ms / 1000, (long) (delay_ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        if (delay_ms < 2000)
            delay_ms *= 2;
    }
}

static int cmd_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "segment", required_argument, NULL, 's' },
        { "hosts", required_argument, NULL, 'H' },
        { "batch-size", required_argument, NULL, 'b' },
        { "canary", required_argument, NULL, 'c' },
        { "param", required_argument, NULL, 'p' },
        { "check", no_argument, NULL, 'C' },
        { "apply", no_argument, NULL, 'A' },
        { "wait", no_argument, NULL, 'w' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *segment = NULL, *hosts = NULL, *canary = NULL, *mode = NULL;
    int64_t batch_size = 0;
    bool wait = false;
    _cleanup_json_ json_t *params = json_object();
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 's': segment = optarg; break;
        case 'H': hosts = optarg; break;
        case 'c': canary = optarg; break;
        case 'w': wait = true; break;
        case 'b':
            if (cli_parse_uint(optarg, 1000, &batch_size) < 0 || batch_size < 1)
                return cli_usage_error(cmd, "--batch-size takes a number of hosts from 1 to 1000, not '%s'", optarg);
            break;
        case 'C':
        case 'A':
            if (mode && !streq(mode, c == 'C' ? "check" : "apply"))
                return cli_usage_error(cmd, "give --check or --apply, not both");
            mode = c == 'C' ? "check" : "apply";
            break;
        case 'p': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return cli_usage_error(cmd, "--param takes NAME=VALUE, like metric=1024, not '%s'", optarg);
            if (json_object_size(params) >= RUN_PARAMS_MAX)
                return cli_usage_error(cmd, "at most %d --param", RUN_PARAMS_MAX);
            _cleanup_free_ char *key = xstrndup(optarg, (size_t) (eq - optarg));
            json_object_set_new(params, key, json_string(eq + 1));
            break;
        }
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 1, 1, "NAME or FILE")) != 0)
        return r;
    if (!segment)
        return cli_usage_error(cmd, "--segment is required: the segment to run the playbook on");
    if (!is_name(segment))
        return cli_usage_error(cmd, "'%s' is not a segment name (%s)", segment, CLI_DEPARTMENT_RULE);
    if (!mode)
        return cli_usage_error(cmd, "give --check (report what would change, change nothing) or --apply");
    if (canary && streq(mode, "check"))
        return cli_usage_error(cmd, "--canary is for --apply runs");

    const char *what = argv[optind];
    _cleanup_json_ json_t *body = json_pack("{s:s, s:s}", "segment", segment, "mode", mode);
    _cleanup_free_ char *text = NULL;
    const char *shown = NULL;
    if (looks_like_file(what)) {
        size_t len = 0;
        if ((r = read_playbook_file(what, &text, &len)) != 0)
            return r;
        shown = streq(what, "-") ? "<stdin>" : what;
        json_object_set_new(body, "playbook_yaml", json_stringn(text, len));
    } else if (is_name(what)) {
        json_object_set_new(body, "playbook", json_string(what));
    } else {
        return cli_usage_error(cmd, "'%s' is neither an installed playbook's name (%s) nor a file",
                               what, CLI_DEPARTMENT_RULE);
    }
    if (hosts) {
        json_t *list = json_array();
        _cleanup_free_ char *copy = xstrdup(hosts);
        char *save = NULL;
        for (char *h = strtok_r(copy, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
            if (!*h)
                continue;
            if (json_array_size(list) >= RUN_HOSTS_MAX) {
                json_decref(list);
                return cli_usage_error(cmd, "--hosts takes at most %d hosts", RUN_HOSTS_MAX);
            }
            json_array_append_new(list, json_string(h));
        }
        if (json_array_size(list) == 0) {
            json_decref(list);
            return cli_usage_error(cmd, "--hosts takes host names separated by commas, like hv01,hv02");
        }
        json_object_set_new(body, "hosts", list);
    }
    if (batch_size)
        json_object_set_new(body, "batch_size", json_integer(batch_size));
    if (canary)
        json_object_set_new(body, "canary", json_string(canary));
    if (json_object_size(params))
        json_object_set(body, "params", params);

    _cleanup_free_ char *payload = json_dumps(body, JSON_COMPACT);
    struct http_request req = {
        .method = "POST", .path = "/api/v1/playbook-runs", .content_type = "application/json",
        .body = payload, .body_len = strlen(payload),
    };
    _cleanup_json_ json_t *run = NULL;
    if ((r = cli_call_raw(cli, &req, shown, &run, NULL)) != 0)
        return r;
    json_int_t id = cli_json_int(run, "id");
    if (!wait) {
        if (cli->json) {
            cli_print_json(run);
            return 0;
        }
        _cleanup_free_ char *pb = cli_json_text(run, "playbook");
        printf("Run %" JSON_INTEGER_FORMAT " started: %s on %s (%s), %" JSON_INTEGER_FORMAT " host%s.\n"
               "Follow it with 'yunguan playbook show-run %" JSON_INTEGER_FORMAT "'.\n",
               id, pb, segment, mode, cli_json_int(run, "hosts_total"),
               cli_json_int(run, "hosts_total") == 1 ? "" : "s", id);
        return 0;
    }
    if (!cli->json) {
        _cleanup_free_ char *pb = cli_json_text(run, "playbook");
        printf("Run %" JSON_INTEGER_FORMAT ": %s on %s (%s), %" JSON_INTEGER_FORMAT " hosts; waiting for it to end.\n",
               id, pb, segment, mode, cli_json_int(run, "hosts_total"));
    }
    _cleanup_json_ json_t *done = NULL;
    if ((r = follow_run(cli, id, &done)) != 0)
        return r;
    if (cli->json) {
        cli_print_json(done);
    } else {
        _cleanup_free_ char *state = cli_json_text(done, "state"), *msg = cli_json_text(done, "message");
        printf("Run %" JSON_INTEGER_FORMAT " %s%s%s.\n", id, state, streq(msg, "-") ? "" : ": ",
               streq(msg, "-") ? "" : msg);
    }
    return run_exit_code(done);
}

static int cmd_runs(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    static const struct option opts[] = {
        { "segment", required_argument, NULL, 's' },
        { "state", required_argument, NULL, 'S' },
        CLI_COMMON_OPTIONS,
        {}
    };
    const char *segment = NULL, *state = NULL;
    int c, r;
    while ((c = cli_getopt(cli, cmd, argc, argv, opts, &r)) != CLI_OPT_DONE) {
        switch (c) {
        case CLI_OPT_EXIT: return r;
        case 's': segment = optarg; break;
        case 'S': state = optarg; break;
        }
    }
    if ((r = cli_operands(cmd, argc, argv, 0, 0, "")) != 0)
        return r;
    if (segment && !is_name(segment))
        return cli_usage_error(cmd, "'%s' is not a segment name (%s)", segment, CLI_DEPARTMENT_RULE);
    if (state && !(streq(state, "running") || streq(state, "succeeded") || streq(state, "failed") ||
                   streq(state, "cancelled")))
        return cli_usage_error(cmd, "--state is one of running, succeeded, failed, cancelled");
    struct strbuf path;
    strbuf_init(&path);
    strbuf_puts(&path, "/api/v1/playbook-runs");
    if (segment)
        strbuf_printf(&path, "?segment=%s", segment);
    if (state)
        strbuf_printf(&path, "%cstate=%s", segment ? '&' : '?', state);
    _cleanup_free_ char *p = strbuf_steal(&path);
    _cleanup_json_ json_t *root = NULL;
    if ((r = cli_call_shown(cli, "GET", p, NULL, &root)) != 0 || !root)
        return r;
    const json_t *items = json_object_get(root, "items");
    if (json_array_size(items) == 0) {
        printf("No playbook runs%s%s.\n", segment ? " on " : "", segment ? segment : "");
        return 0;
    }
    static const char *const headers[] = { "RUN", "PLAYBOOK", "SEGMENT", "MODE", "STATE", "HOSTS", "OK",
                                           "FAILED", "STARTED", "BY" };
    _cleanup_(table_freep) struct table *t = table_new(YG_ARRAY_SIZE(headers), headers);
    table_set_right(t, 0);
    table_set_right(t, 5);
    table_set_right(t, 6);
    table_set_right(t, 7);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const json_t *counts = json_object_get(it, "counts");
        table_add_owned(t, cli_json_text(it, "id"));
        table_add_owned(t, cli_json_text(it, "playbook"));
        table_add_owned(t, cli_json_text(it, "segment"));
        table_add_owned(t, cli_json_text(it, "mode"));
        table_add_owned(t, cli_json_text(it, "state"));
        table_add_owned(t, cli_json_text(it, "hosts_total"));
        table_add_owned(t, cli_json_text(counts, "succeeded"));
        table_addf(t, "%" JSON_INTEGER_FORMAT, cli_json_int(counts, "failed") + cli_json_int(counts, "unknown"));
        table_add_owned(t, cli_json_text(it, "created_at"));
        table_add_owned(t, cli_json_text(it, "created_by"));
    }
    table_print(t, stdout);
    return 0;
}

static int cmd_show_run(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    json_int_t id;
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r) || (r = run_id_operand(cmd, argc, argv, &id)) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/playbook-runs/%" JSON_INTEGER_FORMAT, id);
    _cleanup_json_ json_t *run = NULL;
    if ((r = cli_call(cli, "GET", path, NULL, &run)) != 0)
        return r;
    if (cli->json)
        cli_print_json(run);
    else
        print_run(run);
    return 0;
}

static int cmd_cancel(struct cli *cli, const struct cli_command *cmd, int argc, char **argv)
{
    json_int_t id;
    int r;
    if (cli_no_options(cli, cmd, argc, argv, &r) || (r = run_id_operand(cmd, argc, argv, &id)) != 0)
        return r;
    _cleanup_free_ char *path = xasprintf("/api/v1/playbook-runs/%" JSON_INTEGER_FORMAT "/cancel", id);
    _cleanup_json_ json_t *run = NULL;
    if ((r = cli_call_shown(cli, "POST", path, NULL, &run)) != 0 || !run)
        return r;
    json_int_t running = cli_json_int(json_object_get(run, "counts"), "running") +
                         cli_json_int(json_object_get(run, "counts"), "sent");
    printf("Run %" JSON_INTEGER_FORMAT " cancelled: hosts not yet started will not start", id);
    if (running > 0)
        printf("; %" JSON_INTEGER_FORMAT " host%s already running will finish (and roll back on failure)",
               running, running == 1 ? "" : "s");
    printf(".\n");
    return 0;
}

static const struct cli_command playbook_commands[] = {
    {
        .group = "playbook", .name = "list",
        .synopsis = "",
        .summary = "List the installed playbooks (playbook_dir on the controller).",
        .run = cmd_list,
    },
    {
        .group = "playbook", .name = "show",
        .synopsis = "NAME|RUN",
        .summary = "Show an installed playbook (parameters and steps), or a run (a number: as show-run).",
        .run = cmd_show,
    },
    {
        .group = "playbook", .name = "validate",
        .synopsis = "FILE",
        .summary = "Check a playbook file here, without the controller ('-': standard input).",
        .description =
            "Errors are printed as FILE:LINE:COLUMN: PATH: MESSAGE, one per problem; the\n"
            "exit status is 1 when the playbook is not valid.\n",
        .run = cmd_validate,
    },
    {
        .group = "playbook", .name = "run",
        .synopsis = "NAME|FILE --segment SEGMENT --check|--apply [--hosts H,H…] [--batch-size N]\n"
                    "          [--canary HOST] [--param NAME=VALUE]… [--wait]",
        .summary = "Run a playbook on a segment's hosts (apply: netops, admin; check: also cloudops).",
        .description =
            "NAME is an installed playbook; a FILE (a path, or NAME.yaml) is sent with the run\n"
            "and stored with it.  --check reports per host what would change and changes\n"
            "nothing.  --apply runs on one canary host first, then in batches; the first\n"
            "failed or silent host stops the run (hosts not yet started are skipped, a host\n"
            "that failed rolls back its own changes).  With --wait the command follows the\n"
            "run until it ends and exits 1 unless it succeeded.\n",
        .help =
            "      --segment SEGMENT    the segment (its hosts, interface and address plan)\n"
            "      --check              report what would change; change nothing\n"
            "      --apply              change the hosts, canary first, then batch by batch\n"
            "      --hosts H,H…         only these hosts of the segment (default: all)\n"
            "      --batch-size N       hosts per batch after the canary (default: the\n"
            "                           controller's playbook_batch_size, 10)\n"
            "      --canary HOST        the canary (default: the first host by name)\n"
            "      --param NAME=VALUE   a playbook parameter (repeat for more)\n"
            "      --wait               follow the run to its end; exit 1 unless it succeeded\n",
        .run = cmd_run,
    },
    {
        .group = "playbook", .name = "runs",
        .synopsis = "[--segment SEGMENT] [--state STATE]",
        .summary = "List playbook runs, newest first.",
        .help =
            "      --segment SEGMENT    only runs on this segment\n"
            "      --state STATE        running, succeeded, failed or cancelled\n",
        .run = cmd_runs,
    },
    {
        .group = "playbook", .name = "show-run",
        .synopsis = "RUN",
        .summary = "Show a run: every host's state, and every step of hosts that failed.",
        .description = "With --json: every host and every step with status, before, after, message\n"
                       "and duration (doc/PLAYBOOKS.md).\n",
        .run = cmd_show_run,
    },
    {
        .group = "playbook", .name = "status",
        .synopsis = "RUN",
        .summary = "The same as show-run.",
        .run = cmd_show_run,
    },
    {
        .group = "playbook", .name = "cancel",
        .synopsis = "RUN",
        .summary = "Cancel a run: hosts not yet started do not start (netops, admin).",
        .run = cmd_cancel,
    },
};

const struct cli_group cli_group_playbook = {
    .name = "playbook",
    .summary = "IPv6 migration playbooks: check, apply, follow, cancel.",
    .commands = playbook_commands,
    .n_commands = YG_ARRAY_SIZE(playbook_commands),
};

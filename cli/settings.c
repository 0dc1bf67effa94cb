/* Where the client finds the controller's URL and its token, in order of
 * precedence: command-line options, environment (YUNGUAN_URL,
 * YUNGUAN_TOKEN, YUNGUAN_TOKEN_FILE, YUNGUAN_CA_FILE), then a YAML
 * configuration file (--config, $YUNGUAN_CONFIG,
 * $XDG_CONFIG_HOME/yunguan/config.yaml or ~/.config/yunguan/config.yaml)
 * with the keys server, token, token_file, ca_file. */
#include <config.h>
#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "util.h"

struct config_file {
    char *path;
    char *server;
    char *token;
    char *token_file;           /* made absolute against the file's directory */
    char *ca_file;              /* the same */
};

static void config_file_done(struct config_file *cf)
{
    free(cf->path);
    free(cf->server);
    if (cf->token) {
        explicit_bzero(cf->token, strlen(cf->token));
        free(cf->token);
    }
    free(cf->token_file);
    free(cf->ca_file);
    memset(cf, 0, sizeof *cf);
}

static const char *const config_keys[] = { "server", "token", "token_file", "ca_file" };

/* "PATH:LINE:COLUMN: sentence" as the one error line. */
static int config_error(const char *path, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int config_error(const char *path, const yaml_mark_t *mark, const char *fmt, ...)
{
    _cleanup_free_ char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    cli_error("%s:%zu:%zu: %s", path, mark->line + 1, mark->column + 1, msg);
    return CLI_EXIT_USAGE;
}

static char **config_slot(struct config_file *cf, const char *key)
{
    if (streq(key, "server"))
        return &cf->server;
    if (streq(key, "token"))
        return &cf->token;
    if (streq(key, "token_file"))
        return &cf->token_file;
    if (streq(key, "ca_file"))
        return &cf->ca_file;
    return NULL;
}

static const char *config_key_hint(const char *key)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < YG_ARRAY_SIZE(config_keys); i++) {
        size_t d = edit_distance(key, config_keys[i]);
        if (d < best_d) {
            best_d = d;
            best = config_keys[i];
        }
    }
    /* "token-file" for "token_file" is the likely slip */
    return best_d <= 3 ? best : NULL;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *) ev->data.scalar.value;
    return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (streq(v, "") || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL"));
}

enum config_state {
    CS_STREAM,          /* expect STREAM_START */
    CS_DOCUMENT,        /* expect DOCUMENT_START or STREAM_END */
    CS_ROOT,            /* expect the root node */
    CS_KEY,             /* expect a key or MAPPING_END */
    CS_VALUE,           /* expect the value of key */
    CS_DOCUMENT_END,
    CS_END,             /* expect STREAM_END (one document only) */
    CS_DONE,
};

static int config_parse(struct config_file *cf, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    enum config_state state = CS_STREAM;
    char *key = NULL;
    yaml_mark_t key_mark = {0};
    int r = 0;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *) data, len);
    while (state != CS_DONE && r == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            r = config_error(cf->path, &parser.problem_mark, "%s%s%s",
                             parser.problem ? parser.problem : "invalid YAML",
                             parser.context ? " " : "", parser.context ? parser.context : "");
            break;
        }
        if (ev.type == YAML_ALIAS_EVENT) {
            r = config_error(cf->path, &ev.start_mark, "aliases are not allowed here");
        } else switch (state) {
        case CS_STREAM:
            state = CS_DOCUMENT;
            break;
        case CS_DOCUMENT:
            state = ev.type == YAML_STREAM_END_EVENT ? CS_DONE : CS_ROOT;
            break;
        case CS_ROOT:
            if (ev.type == YAML_MAPPING_START_EVENT)
                state = CS_KEY;
            else if (ev.type == YAML_SCALAR_EVENT && is_null_scalar(&ev))
                state = CS_DOCUMENT_END;        /* an empty file */
            else
                r = config_error(cf->path, &ev.start_mark,
                                 "the configuration must be a mapping of keys (server, token, token_file, ca_file)");
            break;
        case CS_KEY:
            if (ev.type == YAML_MAPPING_END_EVENT) {
                state = CS_DOCUMENT_END;
            } else if (ev.type != YAML_SCALAR_EVENT) {
                r = config_error(cf->path, &ev.start_mark, "a key must be a plain word");
            } else {
                const char *k = (const char *) ev.data.scalar.value;
                char **slot = config_slot(cf, k);
                const char *hint = slot ? NULL : config_key_hint(k);
                if (!slot && hint)
                    r = config_error(cf->path, &ev.start_mark,
                                     "unknown key '%s' (did you mean '%s'?)", k, hint);
                else if (!slot)
                    r = config_error(cf->path, &ev.start_mark,
                                     "unknown key '%s' (known keys: server, token, token_file, ca_file)", k);
                else if (*slot)
                    r = config_error(cf->path, &ev.start_mark, "duplicate key '%s'", k);
                else {
                    key = xstrdup(k);
                    key_mark = ev.start_mark;
                    state = CS_VALUE;
                }
            }
            break;
        case CS_VALUE:
            if (ev.type != YAML_SCALAR_EVENT)
                r = config_error(cf->path, &ev.start_mark, "'%s' must be a single value", key);
            else if (is_null_scalar(&ev) || ev.data.scalar.length == 0)
                r = config_error(cf->path, &key_mark, "'%s' has no value", key);
            else if (strlen((const char *) ev.data.scalar.value) != ev.data.scalar.length)
                r = config_error(cf->path, &ev.start_mark, "'%s' contains a NUL character", key);
            else {
                *config_slot(cf, key) = xstrdup((const char *) ev.data.scalar.value);
                free(steal_pointer(&key));
                state = CS_KEY;
            }
            break;
        case CS_DOCUMENT_END:
            state = CS_END;
            break;
        case CS_END:
            if (ev.type == YAML_STREAM_END_EVENT)
                state = CS_DONE;
            else
                r = config_error(cf->path, &ev.start_mark,
                                 "the configuration must be a single YAML document");
            break;
        case CS_DONE:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    free(key);
    return r;
}

/* Load the file at path.  Missing and !must_exist: 0 and nothing set. */
static int config_load(const char *path, bool must_exist, struct config_file *cf)
{
    _cleanup_free_ char *data = NULL;
    size_t len = 0;
    cf->path = xstrdup(path);
    int r = read_file_limited(path, CLI_MAX_CONFIG_BYTES, &data, &len);
    if (r == -ENOENT && !must_exist)
        return 0;
    if (r == -EFBIG) {
        cli_error("configuration file '%s' is larger than %d KiB", path, CLI_MAX_CONFIG_BYTES / 1024);
        return CLI_EXIT_USAGE;
    }
    if (r < 0) {
        cli_error("cannot read configuration file '%s': %s", path, strerror(-r));
        return CLI_EXIT_USAGE;
    }
    r = config_parse(cf, data, len);
    explicit_bzero(data, len);
    if (r != 0)
        return r;

    if (cf->token) {
        struct stat st;
        if (stat(path, &st) == 0 && (st.st_mode & 077))
            cli_warning("'%s' holds a token and can be read by other users (mode %04o); "
                        "run 'chmod 600 %s'", path, (unsigned) (st.st_mode & 07777), path);
    }
    char **relative[] = { &cf->token_file, &cf->ca_file };
    for (size_t i = 0; i < YG_ARRAY_SIZE(relative); i++) {
        if (!*relative[i] || (*relative[i])[0] == '/')
            continue;
        _cleanup_free_ char *copy = xstrdup(path);
        char *abs = xasprintf("%s/%s", dirname(copy), *relative[i]);
        free(*relative[i]);
        *relative[i] = abs;
    }
    return 0;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static char *default_config_path(void)
{
    const char *xdg = env_nonempty("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/')
        return xasprintf("%s/yunguan/config.yaml", xdg);
    const char *home = env_nonempty("HOME");
    if (home)
        return xasprintf("%s/.config/yunguan/config.yaml", home);
    return NULL;
}

static int check_server(const char *url, const char *origin)
{
    const char *rest = NULL;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    if (!rest || !*rest || *rest == '/' || strpbrk(url, " \t\r\n?#")) {
        cli_error("'%s' (from %s) is not a controller URL; expected http://HOST:PORT or https://HOST:PORT",
                  url, origin);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

/* Read a token file: its first line, without surrounding blanks. */
static int read_token_file(const char *path, const char *origin, char **ret)
{
    char *data = NULL;
    size_t len = 0;
    int r = read_file_limited(path, CLI_MAX_TOKEN_BYTES, &data, &len);
    if (r == -EFBIG) {
        cli_error("token file '%s' (from %s) is larger than %d bytes; it should hold only the token",
                  path, origin, CLI_MAX_TOKEN_BYTES);
        return CLI_EXIT_CONNECTION;
    }
    if (r < 0) {
        cli_error("cannot read token file '%s' (from %s): %s", path, origin, strerror(-r));
        return CLI_EXIT_CONNECTION;
    }
    char *nl = memchr(data, '\n', len);     /* the first line only */
    if (nl) {
        *nl = '\0';
        len = (size_t) (nl - data);
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' ||
                       data[len - 1] == ' ' || data[len - 1] == '\t'))
        data[--len] = '\0';
    size_t start = 0;
    while (start < len && (data[start] == ' ' || data[start] == '\t'))
        start++;
    if (start > 0) {
        memmove(data, data + start, len - start + 1);
        len -= start;
    }
    if (len == 0) {
        explicit_bzero(data, len);
        free(data);
        cli_error("token file '%s' (from %s) has no token on its first line", path, origin);
        return CLI_EXIT_CONNECTION;
    }
    *ret = data;
    return 0;
}

static int check_token(const char *token, const char *origin)
{
    for (const unsigned char *p = (const unsigned char *) token; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            cli_error("the token from %s contains spaces or control characters", origin);
            return CLI_EXIT_CONNECTION;
        }
    }
    return 0;
}

void cli_settings_done(struct cli_settings *s)
{
    free(s->server);
    free(s->ca_file);
    if (s->token) {
        explicit_bzero(s->token, strlen(s->token));
        free(s->token);
    }
    memset(s, 0, sizeof *s);
}

int cli_settings_resolve(const struct cli *cli, struct cli_settings *ret)
{
    struct config_file cf = {0};
    _cleanup_free_ char *default_path = NULL;
    const char *server = NULL, *server_origin = NULL;
    const char *token = NULL, *token_file = NULL, *token_origin = NULL;
    _cleanup_free_ char *origin_buf = NULL;
    char *secret = NULL;
    int r;

    /* The configuration file is always read when there is one, so that a
     * mistake in it is reported even while options override it. */
    const char *config = cli->opt_config;
    bool must_exist = true;
    if (!config)
        config = env_nonempty("YUNGUAN_CONFIG");
    if (!config) {
        config = default_path = default_config_path();
        must_exist = false;
    }
    if (config) {
        r = config_load(config, must_exist, &cf);
        if (r != 0)
            goto fail;
    }

    if (cli->opt_server) {
        server = cli->opt_server;
        server_origin = "--server";
    } else if ((server = env_nonempty("YUNGUAN_URL"))) {
        server_origin = "YUNGUAN_URL";
    } else if (cf.server) {
        server = cf.server;
        server_origin = origin_buf = xasprintf("'server' in %s", cf.path);
    } else {
        server = CLI_DEFAULT_SERVER;
        server_origin = "the default";
    }
    r = check_server(server, server_origin);
    if (r != 0)
        goto fail;

    if (cli->opt_token) {
        token = cli->opt_token;
        token_origin = "--token";
    } else if (cli->opt_token_file) {
        token_file = cli->opt_token_file;
        token_origin = "--token-file";
    } else if ((token = env_nonempty("YUNGUAN_TOKEN"))) {
        token_origin = "YUNGUAN_TOKEN";
    } else if ((token_file = env_nonempty("YUNGUAN_TOKEN_FILE"))) {
        token_origin = "YUNGUAN_TOKEN_FILE";
    } else if (cf.token) {
        token = cf.token;
        token_origin = "'token' in the configuration file";
    } else if (cf.token_file) {
        token_file = cf.token_file;
        token_origin = "'token_file' in the configuration file";
    } else {
        cli_error("no token given; use --token-file PATH, --token, YUNGUAN_TOKEN_FILE, "
                  "YUNGUAN_TOKEN or 'token_file' in %s",
                  config ? config : "the configuration file");
        r = CLI_EXIT_CONNECTION;
        goto fail;
    }
    if (token_file) {
        r = read_token_file(token_file, token_origin, &secret);
        if (r != 0)
            goto fail;
    } else {
        secret = xstrdup(token);
    }
    r = check_token(secret, token_origin);
    if (r != 0)
        goto fail;

    /* The CA only matters for https://; checked here so that a wrong path
     * is named at once, not as a TLS failure. */
    const char *ca_file = cli->opt_ca_file, *ca_origin = "--ca-file";
    if (!ca_file && (ca_file = env_nonempty("YUNGUAN_CA_FILE")))
        ca_origin = "YUNGUAN_CA_FILE";
    else if (!ca_file && (ca_file = cf.ca_file))
        ca_origin = "'ca_file' in the configuration file";
    if (ca_file && access(ca_file, R_OK) < 0) {
        cli_error("cannot read the CA file '%s' (from %s): %s", ca_file, ca_origin, strerror(errno));
        r = CLI_EXIT_USAGE;
        goto fail;
    }

    ret->server = xstrdup(server);
    ret->ca_file = ca_file ? xstrdup(ca_file) : NULL;
    ret->token = steal_pointer(&secret);
    config_file_done(&cf);
    return 0;

fail:
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
    config_file_done(&cf);
    return r;
}

/* Talking to the controller: connect with the resolved settings, make one
 * call, turn its errors into one sentence and an exit code, page through
 * lists. */
#include <config.h>
#include "cli.h"

#include <stdio.h>

#include "util.h"

#define CLI_MAX_PAGES 100000

int cli_connect(struct cli *cli)
{
    if (cli->http)
        return 0;
    struct cli_settings s = {0};
    int r = cli_settings_resolve(cli, &s);
    if (r != 0)
        return r;
    cli->http = http_client_new(s.server);
    if (!cli->http) {
        cli_settings_done(&s);
        cli_error("cannot initialise libcurl");
        return CLI_EXIT_CONNECTION;
    }
    http_client_set_token(cli->http, s.token);
    http_client_set_ca_file(cli->http, s.ca_file);
    cli_settings_done(&s);
    return 0;
}

static int exit_code_for(const struct yg_error *e)
{
    if (e->http_status == 0 || e->http_status == 401 || e->http_status >= 500 ||
        streq(e->code, HTTP_CLIENT_E_BAD_RESPONSE))
        return CLI_EXIT_CONNECTION;
    return CLI_EXIT_REFUSED;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int cli_report_error(struct cli *cli, const struct yg_error *e, const char *filename,
                     const struct http_response *resp)
{
    /* Scripts asked for JSON get the API's error body too. */
    if (cli->json && resp && resp->body_len > 0) {
        json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (j && json_object_get(j, "error"))
            cli_print_json(j);
        json_decref(j);
    }

    /* An invalid document: one line per problem, like a compiler. */
    if (e->http_status == 422 && filename && e->n_details > 0) {
        _cleanup_free_ char *text = yg_error_format(e, filename);
        fflush(stdout);
        for (char *line = text, *next; line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            _cleanup_free_ char *clean = cli_sanitize(line);
            fprintf(stderr, "%s\n", clean);
        }
        return CLI_EXIT_REFUSED;
    }

    struct strbuf sb;
    strbuf_init(&sb);
    if (e->http_status == 401 && !starts_with(e->message, "authentication"))
        strbuf_puts(&sb, "authentication failed: ");
    else if (e->http_status == 403 && !starts_with(e->message, "permission denied"))
        strbuf_puts(&sb, "permission denied: ");
    strbuf_puts(&sb, e->message);
    while (sb.len > 0 && sb.s[sb.len - 1] == '.')
        sb.s[--sb.len] = '\0';
    /* Details carry the substance of some errors (the resources over quota,
     * the fields at fault); for the others they repeat the message. */
    bool with_details = streq(e->code, "quota_exceeded") || streq(e->code, "invalid_request") ||
                        streq(e->code, "bad_request") || streq(e->code, "too_large");
    if (with_details && e->n_details > 0) {
        strbuf_puts(&sb, " (");
        size_t shown = e->n_details < 8 ? e->n_details : 8;
        for (size_t i = 0; i < shown; i++) {
            const struct yg_error_detail *d = &e->details[i];
            if (i > 0)
                strbuf_puts(&sb, "; ");
            if (d->path && *d->path)
                strbuf_printf(&sb, "%s: ", d->path);
            strbuf_puts(&sb, d->message);
        }
        if (shown < e->n_details)
            strbuf_printf(&sb, "; and %zu more", e->n_details - shown);
        strbuf_puts(&sb, ")");
    }
    _cleanup_free_ char *msg = strbuf_steal(&sb);
    cli_error("%s", msg);
    return exit_code_for(e);
}

int cli_call_raw(struct cli *cli, const struct http_request *req, const char *filename,
                 json_t **ret_json, struct http_response **ret_response)
{
    _cleanup_(yg_error_freep) struct yg_error *e = NULL;
    struct http_response *resp = NULL;
    json_t *j = NULL;

    int r = cli_connect(cli);
    if (r != 0)
        return r;
    if (http_client_send_json(cli->http, req, &j, &resp, &e) < 0) {
        r = cli_report_error(cli, e, filename, resp);
        http_response_free(resp);
        return r;
    }
    *ret_json = j;
    if (ret_response)
        *ret_response = resp;
    else
        http_response_free(resp);
    return 0;
}

int cli_call(struct cli *cli, const char *method, const char *path, json_t *body,
             json_t **ret_json)
{
    _cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct http_request req = {
        .method = method,
        .path = path,
        .content_type = text ? "application/json" : NULL,
        .body = text,
        .body_len = text ? strlen(text) : 0,
    };
    return cli_call_raw(cli, &req, NULL, ret_json, NULL);
}

static int bad_answer(struct cli *cli, const char *what)
{
    cli_error("the answer from the controller at %s is not what the API describes: %s",
              cli->http ? http_client_base_url(cli->http) : "?", what);
    return CLI_EXIT_CONNECTION;
}

int cli_fetch_list(struct cli *cli, const char *path, json_int_t after, bool all,
                   json_t **ret_root)
{
    const char *sep = strchr(path, '?') ? "&" : "?";
    _cleanup_json_ json_t *root = NULL;
    json_t *items;
    int r;

    {
        _cleanup_free_ char *p = after > 0
            ? xasprintf("%s%safter=%" JSON_INTEGER_FORMAT, path, sep, after) : xstrdup(path);
        r = cli_call(cli, "GET", p, NULL, &root);
        if (r != 0)
            return r;
    }
    items = json_object_get(root, "items");
    if (!json_is_array(items))
        return bad_answer(cli, "no 'items' list");

    for (size_t pages = 1; all; pages++) {
        json_t *next = json_object_get(root, "next");
        if (!next || json_is_null(next))
            break;
        if (!json_is_integer(next))
            return bad_answer(cli, "'next' is not an id");
        json_int_t cursor = json_integer_value(next);
        if (cursor == after || pages >= CLI_MAX_PAGES)
            return bad_answer(cli, "the 'next' cursor does not move on");
        after = cursor;

        _cleanup_free_ char *p = xasprintf("%s%safter=%" JSON_INTEGER_FORMAT, path, sep, cursor);
        _cleanup_json_ json_t *page = NULL;
        r = cli_call(cli, "GET", p, NULL, &page);
        if (r != 0)
            return r;
        json_t *more = json_object_get(page, "items");
        if (!json_is_array(more))
            return bad_answer(cli, "no 'items' list");
        if (json_array_size(more) == 0 && json_is_integer(json_object_get(page, "next")))
            return bad_answer(cli, "an empty page with a 'next' cursor");
        json_array_extend(items, more);
        json_t *page_next = json_object_get(page, "next");
        json_object_set(root, "next", page_next ? page_next : json_null());
    }
    *ret_root = steal_pointer(&root);
    return 0;
}

/* With --json the answer is the output: print it and hand back nothing. */
static int shown(struct cli *cli, int r, json_t **ret_json)
{
    if (r == 0 && cli->json) {
        cli_print_json(*ret_json);
        json_decref(*ret_json);
        *ret_json = NULL;
    }
    return r;
}

int cli_call_shown(struct cli *cli, const char *method, const char *path, json_t *body,
                   json_t **ret_json)
{
    *ret_json = NULL;
    return shown(cli, cli_call(cli, method, path, body, ret_json), ret_json);
}

int cli_fetch_list_shown(struct cli *cli, const char *path, json_int_t after, bool all,
                         json_t **ret_root)
{
    *ret_root = NULL;
    return shown(cli, cli_fetch_list(cli, path, after, all, ret_root), ret_root);
}

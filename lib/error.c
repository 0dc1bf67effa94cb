#include <config.h>
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

#include "util.h"

struct yg_error *yg_error_new(int http_status, const char *code, const char *fmt, ...)
{
    struct yg_error *e = xcalloc(1, sizeof *e);
    va_list ap;
    e->http_status = http_status;
    e->code = xstrdup(code);
    va_start(ap, fmt);
    if (vasprintf(&e->message, fmt, ap) < 0)
        abort();
    va_end(ap);
    return e;
}

void yg_error_add_detail(struct yg_error *e, int line, int column, const char *path,
                         const char *fmt, ...)
{
    va_list ap;
    e->details = xrealloc(e->details, (e->n_details + 1) * sizeof *e->details);
    struct yg_error_detail *d = &e->details[e->n_details++];
    d->line = line;
    d->column = column;
    d->path = xstrdup(path);
    va_start(ap, fmt);
    if (vasprintf(&d->message, fmt, ap) < 0)
        abort();
    va_end(ap);
}

void yg_error_free(struct yg_error *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_details; i++) {
        free(e->details[i].path);
        free(e->details[i].message);
    }
    free(e->details);
    free(e->code);
    free(e->message);
    free(e);
}

json_t *yg_error_to_json(const struct yg_error *e)
{
    json_t *details = json_array();
    for (size_t i = 0; i < e->n_details; i++) {
        const struct yg_error_detail *d = &e->details[i];
        json_t *jd = json_object();
        if (d->line > 0) {
            json_object_set_new(jd, "line", json_integer(d->line));
            json_object_set_new(jd, "column", json_integer(d->column));
        }
        if (d->path)
            json_object_set_new(jd, "path", json_string(d->path));
        json_object_set_new(jd, "message", json_string(d->message));
        json_array_append_new(details, jd);
    }
    return json_pack("{s:{s:s, s:s, s:o}}", "error", "code", e->code,
                     "message", e->message, "details", details);
}

struct yg_error *yg_error_from_json(json_t *root, int http_status)
{
    json_t *err = json_object_get(root, "error");
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *message = json_string_value(json_object_get(err, "message"));
    if (!code || !message)
        return NULL;
    struct yg_error *e = yg_error_new(http_status, code, "%s", message);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(err, "details"), i, d) {
        const char *m = json_string_value(json_object_get(d, "message"));
        yg_error_add_detail(e, (int) json_integer_value(json_object_get(d, "line")),
                            (int) json_integer_value(json_object_get(d, "column")),
                            json_string_value(json_object_get(d, "path")), "%s", m ? m : "");
    }
    return e;
}

char *yg_error_format(const struct yg_error *e, const char *filename)
{
    struct strbuf sb;
    strbuf_init(&sb);
    if (e->n_details == 0) {
        strbuf_puts(&sb, e->message);
        return strbuf_steal(&sb);
    }
    for (size_t i = 0; i < e->n_details; i++) {
        const struct yg_error_detail *d = &e->details[i];
        if (i > 0)
            strbuf_puts(&sb, "\n");
        if (filename)
            strbuf_printf(&sb, "%s:", filename);
        if (d->line > 0)
            strbuf_printf(&sb, "%d:%d:", d->line, d->column);
        if (filename || d->line > 0)
            strbuf_puts(&sb, " ");
        if (d->path && *d->path)
            strbuf_printf(&sb, "%s: ", d->path);
        strbuf_puts(&sb, d->message);
    }
    return strbuf_steal(&sb);
}

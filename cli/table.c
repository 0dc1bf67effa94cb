/* Aligned text tables for people: column widths by display width (so
 * Chinese department names and purposes keep the columns straight), two
 * spaces between columns, no padding after the last column. */
#include <config.h>
#include "cli.h"

#include <stdarg.h>

#include "util.h"

struct table {
    size_t n_cols;
    char **cells;               /* row-major, headers first */
    size_t n_cells;
    bool *right;                /* per column: align right (numbers) */
    size_t *max_width;          /* per column: 0 for no limit */
    bool has_header;
};

struct table *table_new(size_t n_cols, const char *const *headers)
{
    struct table *t = xcalloc(1, sizeof *t);
    t->n_cols = n_cols;
    t->right = xcalloc(n_cols, sizeof *t->right);
    t->max_width = xcalloc(n_cols, sizeof *t->max_width);
    t->has_header = headers != NULL;
    for (size_t i = 0; headers && i < n_cols; i++)
        table_add(t, headers[i]);
    return t;
}

void table_free(struct table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_cells; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->right);
    free(t->max_width);
    free(t);
}

void table_set_right(struct table *t, size_t col)
{
    if (col < t->n_cols)
        t->right[col] = true;
}

void table_set_max_width(struct table *t, size_t col, size_t width)
{
    if (col < t->n_cols)
        t->max_width[col] = width;
}

void table_add_owned(struct table *t, char *text)
{
    size_t col = t->n_cells % t->n_cols;
    char *clean = cli_sanitize(text);
    free(text);
    if (t->max_width[col] > 0 && !(t->has_header && t->n_cells < t->n_cols)) {
        char *cut = cli_truncate(clean, t->max_width[col]);
        free(clean);
        clean = cut;
    }
    t->cells = xrealloc(t->cells, (t->n_cells + 1) * sizeof *t->cells);
    t->cells[t->n_cells++] = clean;
}

void table_add(struct table *t, const char *text)
{
    table_add_owned(t, xstrdup(text ? text : "-"));
}

void table_addf(struct table *t, const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    table_add_owned(t, s);
}

size_t table_rows(const struct table *t)
{
    return t->n_cells / t->n_cols - (t->has_header ? 1 : 0);
}

static void pad(FILE *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fputc(' ', f);
}

void table_print(const struct table *t, FILE *f)
{
    size_t n_rows = (t->n_cells + t->n_cols - 1) / t->n_cols;
    size_t *width = xcalloc(t->n_cols, sizeof *width);
    size_t *cw = xcalloc(t->n_cells ? t->n_cells : 1, sizeof *cw);

    for (size_t i = 0; i < t->n_cells; i++) {
        cw[i] = cli_display_width(t->cells[i]);
        if (cw[i] > width[i % t->n_cols])
            width[i % t->n_cols] = cw[i];
    }
    for (size_t r = 0; r < n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            size_t i = r * t->n_cols + c;
            const char *text = i < t->n_cells ? t->cells[i] : "";
            size_t w = i < t->n_cells ? cw[i] : 0;
            bool last = c + 1 == t->n_cols;
            if (c > 0)
                fputs("  ", f);
            if (t->right[c]) {
                pad(f, width[c] - w);
                fputs(text, f);
            } else {
                fputs(text, f);
                if (!last)
                    pad(f, width[c] - w);
            }
        }
        fputc('\n', f);
    }
    free(cw);
    free(width);
}

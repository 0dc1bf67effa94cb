/* The YAML document layer (yamldoc.h): checked text → tree of positioned
 * nodes → problems with line:column and path → one yg_error. */
#include <config.h>
#include "yamldoc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <yaml.h>

#include "util.h"

#define SHOW_MAX_CHARS 40
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"
#define HINTED_MAX 16

/* ------------------------------------------------------------------ */
/* Small pure helpers.                                                  */

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

bool yamldoc_name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || is_digit(ch);
        if (!alnum && !(ch == '-' && i > 0 && i < n - 1))
            return false;
    }
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

int yamldoc_parse_date(const char *s, int *ret_year, int *ret_month, int *ret_day)
{
    /* Exactly YYYY-MM-DD: ten characters, digits and two dashes. */
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -EINVAL;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !is_digit(s[i]))
            return -EINVAL;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -ERANGE;
    *ret_year = y;
    *ret_month = m;
    *ret_day = d;
    return 0;
}

int64_t yamldoc_days_from_civil(int year, int month, int day)
{
    /* Howard Hinnant's days_from_civil. */
    int64_t y = (int64_t) year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Decode one UTF-8 sequence at P (N bytes available), strictly: no
 * overlong forms, no surrogates, nothing above U+10FFFF.  Returns its
 * length and sets *ret_cp, or 0 when the bytes are not valid UTF-8. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *ret_cp)
{
    unsigned char b = p[0];
    size_t len;
    uint32_t cp;
    unsigned char lo = 0x80, hi = 0xBF;   /* range of the second byte */
    if (b < 0x80) {
        *ret_cp = b;
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        cp = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0;          /* overlong */
        else if (b == 0xED)
            hi = 0x9F;          /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        cp = b & 0x07;
        if (b == 0xF0)
            lo = 0x90;          /* overlong */
        else if (b == 0xF4)
            hi = 0x8F;          /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = p[i];
        if (i == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (c & 0x3F);
    }
    *ret_cp = cp;
    return len;
}

/* libyaml's line breaks (YAML 1.1): LF, CR, CR LF, NEL, LS, PS. */
static bool is_break_cp(uint32_t cp)
{
    return cp == '\n' || cp == '\r' || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

/* What libyaml accepts as a character (its IS_PRINTABLE, plus tab/CR/LF). */
static bool is_allowed_cp(uint32_t cp)
{
    return cp == '\t' || cp == '\n' || cp == '\r' || (cp >= 0x20 && cp <= 0x7E) ||
           cp == 0x85 || (cp >= 0xA0 && cp <= 0xD7FF) ||
           (cp >= 0xE000 && cp <= 0xFFFD && cp != 0xFEFF) ||
           (cp >= 0x10000 && cp <= 0x10FFFF);
}

int yamldoc_check_text(const struct yamldoc_options *opts, const char *text, size_t len,
                       int *ret_line, int *ret_column, char **ret_message)
{
    const unsigned char *p = (const unsigned char *) text;
    size_t i = 0;
    int line = 1, column = 1;

    if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        i = 3;                  /* BOM: libyaml skips it and so do we */
    while (i < len) {
        /* Printable ASCII, most of any document: one byte, one column. */
        if (p[i] >= 0x20 && p[i] < 0x7F) {
            i++;
            column++;
            continue;
        }
        uint32_t cp = 0;
        size_t n = 0;
        char *msg = NULL;
        if (i == 0 && len >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) ||
                                   (p[0] == 0xFE && p[1] == 0xFF))) {
            msg = xasprintf("the text starts with a UTF-16 byte order mark (0x%02X 0x%02X); "
                            "the %s must be UTF-8 text", p[0], p[1], opts->noun);
        } else if (p[i] == 0) {
            msg = xasprintf("NUL byte (0x00) is not allowed; the %s must be "
                            "UTF-8 text (was it saved as UTF-16?)", opts->noun);
        } else if (!(n = utf8_decode(p + i, len - i, &cp))) {
            msg = xasprintf("invalid UTF-8 (byte 0x%02X); the %s must be UTF-8 "
                            "text (convert GBK files with 'iconv -f GB18030 -t UTF-8')",
                            p[i], opts->noun);
        } else if (!is_allowed_cp(cp)) {
            if (cp == 0xFEFF)
                msg = xstrdup("a byte order mark (U+FEFF) is only allowed at the start "
                              "of the text");
            else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
                msg = xasprintf("control character U+%04X is not allowed in %s",
                                (unsigned) cp, opts->a_noun);
            else
                msg = xasprintf("U+%04X is not a character", (unsigned) cp);
        }
        if (msg) {
            *ret_line = line;
            *ret_column = column;
            *ret_message = msg;
            return -EILSEQ;
        }
        i += n;
        if (is_break_cp(cp)) {
            if (cp == '\r' && i < len && p[i] == '\n')
                i++;
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    return 0;
}

size_t yamldoc_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char) s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

char *yamldoc_show(const char *s, size_t len)
{
    struct strbuf sb;
    size_t chars = 0;
    strbuf_init(&sb);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode((const unsigned char *) s + i, len - i, &cp);
        if (chars++ == SHOW_MAX_CHARS) {
            strbuf_puts(&sb, "...");
            break;
        }
        if (!n) {               /* cannot happen after the text check; stay safe */
            strbuf_printf(&sb, "\\x%02X", (unsigned char) s[i]);
            i++;
            continue;
        }
        if (cp == '\n')
            strbuf_puts(&sb, "\\n");
        else if (cp == '\t')
            strbuf_puts(&sb, "\\t");
        else if (cp == '\r')
            strbuf_puts(&sb, "\\r");
        else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
            strbuf_printf(&sb, "\\x%02X", (unsigned) cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF)
            strbuf_printf(&sb, "\\u%04X", (unsigned) cp);
        else
            strbuf_add(&sb, s + i, n);
        i += n;
    }
    return strbuf_steal(&sb);
}

/* ------------------------------------------------------------------ */
/* The document and its problems.                                       */

struct problem {
    int line, column;
    size_t seq;
    char *path;
    char *message;
};

enum load_status { LOAD_OK, LOAD_TOO_LARGE, LOAD_NO_MEMORY };

struct yamldoc {
    const struct yamldoc_options *opts;
    char *filename;
    struct yamldoc_node *root;
    enum load_status status;
    size_t text_len;                /* for the too-large message */
    struct problem *problems;       /* opts->max_problems of them */
    size_t n_problems;              /* kept */
    size_t n_dropped;               /* found beyond max_problems */
};

static void node_free(struct yamldoc_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_children; i++)
        node_free(n->children[i]);
    free(n->children);
    free(n->text);
    free(n);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct yamldoc_node *, node_free);

struct yamldoc *yamldoc_new(const struct yamldoc_options *opts, const char *filename)
{
    struct yamldoc *d = xcalloc(1, sizeof *d);
    d->opts = opts;
    d->filename = filename ? xstrdup(filename) : NULL;
    d->problems = xcalloc(opts->max_problems ? opts->max_problems : 1, sizeof *d->problems);
    return d;
}

static void problems_clear(struct yamldoc *d)
{
    for (size_t i = 0; i < d->n_problems; i++) {
        free(d->problems[i].path);
        free(d->problems[i].message);
    }
    d->n_problems = d->n_dropped = 0;
}

void yamldoc_free(struct yamldoc *d)
{
    if (!d)
        return;
    problems_clear(d);
    free(d->problems);
    node_free(d->root);
    free(d->filename);
    free(d);
}

static void problem_vadd(struct yamldoc *d, int line, int column, const char *path,
                         const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void problem_vadd(struct yamldoc *d, int line, int column, const char *path,
                         const char *fmt, va_list ap)
{
    if (d->n_problems >= d->opts->max_problems) {
        d->n_dropped++;
        return;
    }
    struct problem *p = &d->problems[d->n_problems];
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    p->line = line;
    p->column = column;
    p->seq = d->n_problems++;
    p->path = path && *path ? xstrdup(path) : NULL;
    p->message = msg;
}

void yamldoc_problem_at(struct yamldoc *d, int line, int column, const char *path,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vadd(d, line, column, path, fmt, ap);
    va_end(ap);
}

void yamldoc_problem(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vadd(d, n->line, n->column, path, fmt, ap);
    va_end(ap);
}

size_t yamldoc_n_problems(const struct yamldoc *d)
{
    return d->n_problems + d->n_dropped;
}

bool yamldoc_failed(const struct yamldoc *d)
{
    return d->status != LOAD_OK || yamldoc_n_problems(d) > 0;
}

static int problem_cmp(const void *a_, const void *b_)
{
    const struct problem *a = a_, *b = b_;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->column != b->column)
        return a->column < b->column ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct yg_error *yamldoc_error(struct yamldoc *d)
{
    const char *noun = d->opts->noun;
    struct yg_error *e;

    if (d->status == LOAD_TOO_LARGE) {
        problems_clear(d);
        if (d->filename)
            return yg_error_new(413, "too_large", "%s '%s' is too large: %zu bytes; "
                                "the limit is %zu bytes", noun, d->filename, d->text_len,
                                d->opts->max_bytes);
        return yg_error_new(413, "too_large", "%s is too large: %zu bytes; "
                            "the limit is %zu bytes", noun, d->text_len, d->opts->max_bytes);
    }
    if (d->status == LOAD_NO_MEMORY) {
        problems_clear(d);
        return yg_error_new(500, "internal", "out of memory while parsing the %s", noun);
    }
    if (yamldoc_n_problems(d) == 0)
        return NULL;

    size_t max = d->opts->max_problems;
    const char *code = d->opts->error_code ? d->opts->error_code : "invalid_request";
    qsort(d->problems, d->n_problems, sizeof d->problems[0], problem_cmp);
    if (d->n_dropped && d->filename)
        e = yg_error_new(422, code,
                         "%s '%s' is not valid: more than %zu problems; the first %zu are listed",
                         noun, d->filename, max, max);
    else if (d->n_dropped)
        e = yg_error_new(422, code,
                         "%s is not valid: more than %zu problems; the first %zu are listed",
                         noun, max, max);
    else if (d->filename)
        e = yg_error_new(422, code, "%s '%s' is not valid: %zu problem%s",
                         noun, d->filename, d->n_problems, d->n_problems == 1 ? "" : "s");
    else
        e = yg_error_new(422, code, "%s is not valid: %zu problem%s",
                         noun, d->n_problems, d->n_problems == 1 ? "" : "s");
    for (size_t i = 0; i < d->n_problems; i++) {
        const struct problem *p = &d->problems[i];
        yg_error_add_detail(e, p->line, p->column, p->path, "%s", p->message);
    }
    problems_clear(d);
    return e;
}

/* ------------------------------------------------------------------ */
/* The source tree.                                                     */

/* The tag as a person wrote it: "!!str" for the standard ones. */
static char *tag_show(const char *tag)
{
    size_t plen = strlen(YAML_TAG_PREFIX);
    if (!strncmp(tag, YAML_TAG_PREFIX, plen)) {
        _cleanup_free_ char *rest = yamldoc_show(tag + plen, strlen(tag + plen));
        return xasprintf("!!%s", rest);
    }
    return yamldoc_show(tag, strlen(tag));
}

struct builder {
    struct yamldoc *doc;
    struct yamldoc_node *root;
    struct yamldoc_node **stack;    /* max_depth of them */
    size_t depth;
    size_t n_nodes;
    unsigned n_documents;
};

/* The field path of the node the next event makes ("spec.vms[1]"), for
 * problems found while building; "" at the top or inside a complex key. */
static char *builder_path(const struct builder *b)
{
    struct strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < b->depth; i++) {
        const struct yamldoc_node *p = b->stack[i];
        /* The child we are in: the last one, or for the innermost
         * container the one about to be added. */
        size_t idx = i + 1 < b->depth ? p->n_children - 1 : p->n_children;
        if (p->kind == YAMLDOC_SEQUENCE) {
            strbuf_printf(&sb, "[%zu]", idx);
            continue;
        }
        if (idx % 2 == 0)
            break;              /* a key, not a value */
        const struct yamldoc_node *k = p->children[idx - 1];
        if (k->kind != YAMLDOC_SCALAR)
            break;
        _cleanup_free_ char *shown = yamldoc_show(k->text, k->len);
        strbuf_printf(&sb, "%s%s", sb.len ? "." : "", shown);
    }
    return strbuf_steal(&sb);
}

static const char *const scalar_tags[] = { "str", "int", "float", "bool", "null", "timestamp" };

/* Check an explicit tag; reports and returns false when it is not allowed.
 * *ret_name is the standard tag's name ("str") or NULL when untagged. */
static bool check_tag(struct builder *b, const yaml_event_t *ev, const char *tag,
                      enum yamldoc_kind kind, const char **ret_name)
{
    *ret_name = NULL;
    if (!tag)
        return true;
    int line = (int) ev->start_mark.line + 1, column = (int) ev->start_mark.column + 1;
    size_t plen = strlen(YAML_TAG_PREFIX);
    _cleanup_free_ char *shown = tag_show(tag);
    _cleanup_free_ char *path = builder_path(b);
    if (strncmp(tag, YAML_TAG_PREFIX, plen)) {
        yamldoc_problem_at(b->doc, line, column, path,
                           "tag '%s' is not allowed; %s may only use the standard tags "
                           "!!str, !!int, !!float, !!bool, !!null, !!timestamp, !!map and !!seq",
                           shown, b->doc->opts->a_noun);
        return false;
    }
    const char *name = tag + plen;
    bool fits = false, standard = false;
    for (size_t i = 0; i < YG_ARRAY_SIZE(scalar_tags); i++)
        if (streq(name, scalar_tags[i])) {
            standard = true;
            fits = kind == YAMLDOC_SCALAR;
            *ret_name = scalar_tags[i];
        }
    if (streq(name, "map") || streq(name, "seq")) {
        standard = true;
        fits = kind == (streq(name, "map") ? YAMLDOC_MAPPING : YAMLDOC_SEQUENCE);
    }
    if (!standard) {
        yamldoc_problem_at(b->doc, line, column, path,
                           "tag '%s' is not allowed; %s may only use the standard tags "
                           "!!str, !!int, !!float, !!bool, !!null, !!timestamp, !!map and !!seq",
                           shown, b->doc->opts->a_noun);
        return false;
    }
    if (!fits) {
        yamldoc_problem_at(b->doc, line, column, path, "tag '%s' does not fit a %s", shown,
                           kind == YAMLDOC_SCALAR ? "scalar" :
                           kind == YAMLDOC_MAPPING ? "mapping" : "sequence");
        return false;
    }
    return true;
}

static bool text_is_null(const char *s, size_t len)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
    for (size_t i = 0; i < YG_ARRAY_SIZE(nulls); i++)
        if (len == strlen(nulls[i]) && !memcmp(s, nulls[i], len))
            return true;
    return false;
}

/* A fatal problem: reported, and the load stops. */
static int builder_fatal(struct builder *b, const yaml_event_t *ev, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int builder_fatal(struct builder *b, const yaml_event_t *ev, const char *fmt, ...)
{
    va_list ap;
    /* A second document has no path; anything else is inside this one. */
    _cleanup_free_ char *path = ev->type == YAML_DOCUMENT_START_EVENT ? NULL : builder_path(b);
    va_start(ap, fmt);
    problem_vadd(b->doc, (int) ev->start_mark.line + 1, (int) ev->start_mark.column + 1,
                 path, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int builder_add(struct builder *b, const yaml_event_t *ev, struct yamldoc_node *n_)
{
    _cleanup_(node_freep) struct yamldoc_node *n = n_;
    const struct yamldoc_options *o = b->doc->opts;
    if (++b->n_nodes > o->max_nodes)
        return builder_fatal(b, ev, "the document has more than %zu nodes (keys, values "
                             "and collections); %s needs far fewer", o->max_nodes, o->a_noun);
    n->line = (int) ev->start_mark.line + 1;
    n->column = (int) ev->start_mark.column + 1;
    struct yamldoc_node *container = n->kind == YAMLDOC_SCALAR ? NULL : n;
    if (container && b->depth >= o->max_depth)
        return builder_fatal(b, ev, "the document nests deeper than %zu levels", o->max_depth);
    if (b->depth == 0) {
        b->root = steal_pointer(&n);
    } else {
        struct yamldoc_node *parent = b->stack[b->depth - 1];
        if (parent->n_children == parent->cap) {
            parent->cap = parent->cap ? parent->cap * 2 : 8;
            parent->children = xrealloc(parent->children, parent->cap * sizeof *parent->children);
        }
        parent->children[parent->n_children++] = steal_pointer(&n);
    }
    if (container)
        b->stack[b->depth++] = container;
    return 0;
}

static int builder_event(struct builder *b, yaml_event_t *ev)
{
    const char *anchor = NULL, *tag = NULL;
    const struct yamldoc_options *o = b->doc->opts;
    enum yamldoc_kind kind;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->n_documents > 1)
            return builder_fatal(b, ev, "%s file holds exactly one document; "
                                 "found a second at line %d", o->a_noun,
                                 (int) ev->start_mark.line + 1);
        return 0;
    case YAML_ALIAS_EVENT: {
        _cleanup_free_ char *a = yamldoc_show((const char *) ev->data.alias.anchor,
                                              strlen((const char *) ev->data.alias.anchor));
        return builder_fatal(b, ev, "aliases ('*%s') are not allowed in %s; "
                             "write the value out in full", a, o->a_noun);
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    case YAML_SCALAR_EVENT:
        anchor = (const char *) ev->data.scalar.anchor;
        tag = (const char *) ev->data.scalar.tag;
        kind = YAMLDOC_SCALAR;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = (const char *) ev->data.sequence_start.anchor;
        tag = (const char *) ev->data.sequence_start.tag;
        kind = YAMLDOC_SEQUENCE;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = (const char *) ev->data.mapping_start.anchor;
        tag = (const char *) ev->data.mapping_start.tag;
        kind = YAMLDOC_MAPPING;
        break;
    default:
        return 0;
    }

    if (anchor) {
        _cleanup_free_ char *a = yamldoc_show(anchor, strlen(anchor));
        return builder_fatal(b, ev, "anchors ('&%s') and aliases are not allowed in "
                             "%s; write every value out in full", a, o->a_noun);
    }
    const char *tag_name;
    bool tag_ok = check_tag(b, ev, tag, kind, &tag_name);

    struct yamldoc_node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    if (kind == YAMLDOC_SCALAR) {
        /* Take libyaml's copy of the value (malloc'd, NUL-terminated;
         * yaml_event_delete() then frees nothing) rather than copy it. */
        n->len = ev->data.scalar.length;
        n->text = (char *) ev->data.scalar.value;
        ev->data.scalar.value = NULL;
        if (tag_ok && tag_name)
            n->scalar = streq(tag_name, "str") ? YAMLDOC_STRING :
                        streq(tag_name, "null") ? YAMLDOC_NULL : YAMLDOC_PLAIN;
        else if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            n->scalar = YAMLDOC_STRING;
        else
            n->scalar = text_is_null(n->text, n->len) ? YAMLDOC_NULL : YAMLDOC_PLAIN;
    }
    return builder_add(b, ev, n);
}

static void yaml_parser_deletep(yaml_parser_t *p)
{
    yaml_parser_delete(p);
}

/* Line and column (1-based, in characters) of byte OFFSET. */
static void position_of_offset(const char *text, size_t len, size_t offset,
                               int *ret_line, int *ret_column)
{
    const unsigned char *p = (const unsigned char *) text;
    int line = 1, column = 1;
    size_t i = 0;
    if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        i = 3;
    if (offset > len)
        offset = len;
    while (i < offset) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (!n)
            n = 1, cp = 0;
        i += n;
        if (is_break_cp(cp)) {
            if (cp == '\r' && i < len && p[i] == '\n')
                i++;
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    *ret_line = line;
    *ret_column = column;
}

static int report_yaml_error(struct yamldoc *d, const yaml_parser_t *parser,
                             const char *text, size_t len)
{
    int line, column;
    if (parser->error == YAML_MEMORY_ERROR)
        return -ENOMEM;
    if (parser->error == YAML_READER_ERROR) {
        position_of_offset(text, len, parser->problem_offset, &line, &column);
    } else {
        line = (int) parser->problem_mark.line + 1;
        column = (int) parser->problem_mark.column + 1;
    }
    const char *problem = parser->problem ? parser->problem : "cannot be parsed";
    if (parser->context)
        yamldoc_problem_at(d, line, column, NULL,
                           "YAML syntax error: %s (%s at line %d, column %d)",
                           problem, parser->context, (int) parser->context_mark.line + 1,
                           (int) parser->context_mark.column + 1);
    else
        yamldoc_problem_at(d, line, column, NULL, "YAML syntax error: %s", problem);
    return -EINVAL;
}

/* Stage 2: text → tree.  0 with *ret_root (NULL for an empty stream), or
 * -EINVAL when a fatal problem was reported, or -ENOMEM. */
static int build_tree(struct yamldoc *d, const char *text, size_t len,
                      struct yamldoc_node **ret_root)
{
    _cleanup_(yaml_parser_deletep) yaml_parser_t parser;
    _cleanup_free_ struct yamldoc_node **stack =
        xcalloc(d->opts->max_depth ? d->opts->max_depth : 1, sizeof *stack);
    struct builder b = { .doc = d, .stack = stack };
    int r = 0;

    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            r = report_yaml_error(d, &parser, text, len);
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        r = builder_event(&b, &ev);
        yaml_event_delete(&ev);
        if (r < 0 || end)
            break;
    }
    if (r < 0) {
        node_free(b.root);
        return r;
    }
    *ret_root = b.root;
    return 0;
}

int yamldoc_load(struct yamldoc *d, const char *text, size_t len,
                 const struct yamldoc_node **ret_root)
{
    int line, column, r;
    char *msg;

    if (!text)
        len = 0;
    if (len > d->opts->max_bytes) {
        d->status = LOAD_TOO_LARGE;
        d->text_len = len;
        return -EFBIG;
    }
    if (yamldoc_check_text(d->opts, text, len, &line, &column, &msg) < 0) {
        yamldoc_problem_at(d, line, column, NULL, "%s", msg);
        free(msg);
        return -EINVAL;
    }
    /* libyaml, told the text is UTF-8, would take a BOM for content. */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        text += 3;
        len -= 3;
    }
    node_free(d->root);
    d->root = NULL;
    r = build_tree(d, text ? text : "", len, &d->root);
    if (r == -ENOMEM)
        d->status = LOAD_NO_MEMORY;
    if (r < 0)
        return r;
    *ret_root = d->root;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Validation helpers.                                                  */

char *yamldoc_path_key(const char *parent, const char *key, size_t len)
{
    _cleanup_free_ char *k = yamldoc_show(key, len);
    return parent && *parent ? xasprintf("%s.%s", parent, k) : xstrdup(k);
}

char *yamldoc_path_index(const char *parent, size_t i)
{
    return xasprintf("%s[%zu]", parent ? parent : "", i);
}

char *yamldoc_describe(const struct yamldoc_node *n)
{
    if (n->kind == YAMLDOC_MAPPING)
        return xstrdup("a mapping");
    if (n->kind == YAMLDOC_SEQUENCE)
        return xstrdup("a sequence");
    if (n->scalar == YAMLDOC_NULL)
        return xstrdup(n->len == 0 ? "an empty value" : "null");
    _cleanup_free_ char *s = yamldoc_show(n->text, n->len);
    return xasprintf("'%s'", s);
}

void yamldoc_type_problem(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                          const char *expected)
{
    _cleanup_free_ char *got = yamldoc_describe(n);
    yamldoc_problem(d, n, path, "%s expected, got %s", expected, got);
}

static bool key_is(const struct yamldoc_node *k, const char *name)
{
    return k->len == strlen(name) && !memcmp(k->text, name, k->len);
}

static char *lowercase(const char *s, size_t len)
{
    char *l = xstrndup(s, len);
    for (char *p = l; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char) (*p - 'A' + 'a');
    return l;
}

/* Reports K as unknown; returns the index of the key suggested instead, or -1. */
static int unknown_key_problem(struct yamldoc *d, const struct yamldoc_node *k, const char *path,
                               const struct yamldoc_key *keys, size_t n_keys)
{
    _cleanup_free_ char *shown = yamldoc_show(k->text, k->len);
    _cleanup_free_ char *lower = lowercase(k->text, k->len);
    int best = -1;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n_keys; i++) {
        _cleanup_free_ char *known = lowercase(keys[i].name, strlen(keys[i].name));
        size_t dist = edit_distance(lower, known);
        size_t klen = strlen(known);
        size_t limit = klen <= 3 ? 1 : klen <= 6 ? 2 : 3;
        if (!strncmp(lower, known, klen) && (lower[klen] == '_' || lower[klen] == '-'))
            dist = 1;           /* memory_mib, disk_gib: the canonical JSON's names */
        if (dist <= limit && dist < best_d) {
            best = (int) i;
            best_d = dist;
        }
    }
    if (best >= 0) {
        yamldoc_problem(d, k, path, "unknown key '%s'; did you mean '%s'?", shown,
                        keys[best].name);
        return best;
    }
    struct strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < n_keys; i++)
        strbuf_printf(&sb, "%s%s", i ? ", " : "", keys[i].name);
    _cleanup_free_ char *list = strbuf_steal(&sb);
    yamldoc_problem(d, k, path, "unknown key '%s'; the keys allowed here are: %s", shown, list);
    return -1;
}

bool yamldoc_check_mapping(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                           const struct yamldoc_key *keys, size_t n_keys,
                           const struct yamldoc_node **values)
{
    return yamldoc_check_mapping_hinted(d, n, path, keys, n_keys, values, NULL);
}

bool yamldoc_check_mapping_hinted(struct yamldoc *d, const struct yamldoc_node *n,
                                  const char *path, const struct yamldoc_key *keys,
                                  size_t n_keys, const struct yamldoc_node **values,
                                  bool *ret_hinted)
{
    bool hinted[HINTED_MAX] = { false };    /* a misspelling already points at it */
    for (size_t i = 0; i < n_keys; i++) {
        values[i] = NULL;
        if (ret_hinted)
            ret_hinted[i] = false;
    }
    if (n->kind != YAMLDOC_MAPPING) {
        yamldoc_type_problem(d, n, path, "mapping");
        return false;
    }
    for (size_t p = 0; p < yamldoc_n_pairs(n); p++) {
        const struct yamldoc_node *k = n->children[2 * p], *v = n->children[2 * p + 1];
        if (k->kind != YAMLDOC_SCALAR) {
            _cleanup_free_ char *got = yamldoc_describe(k);
            yamldoc_problem(d, k, path, "a key must be a string, got %s", got);
            continue;
        }
        const struct yamldoc_node *first = NULL;
        for (size_t q = 0; q < p && !first; q++) {
            const struct yamldoc_node *k2 = n->children[2 * q];
            if (k2->kind == YAMLDOC_SCALAR && k2->len == k->len &&
                !memcmp(k2->text, k->text, k->len))
                first = k2;
        }
        if (first) {
            _cleanup_free_ char *kpath = yamldoc_path_key(path, k->text, k->len);
            _cleanup_free_ char *shown = yamldoc_show(k->text, k->len);
            if (first->line == k->line)
                yamldoc_problem(d, k, kpath, "duplicate key '%s' (first given at line %d, "
                                "column %d)", shown, first->line, first->column);
            else
                yamldoc_problem(d, k, kpath, "duplicate key '%s' (first given at line %d)",
                                shown, first->line);
            continue;
        }
        size_t i;
        for (i = 0; i < n_keys; i++)
            if (key_is(k, keys[i].name))
                break;
        if (i == n_keys) {
            /* The key's path only for the message: built for no valid key. */
            _cleanup_free_ char *kpath = yamldoc_path_key(path, k->text, k->len);
            int hint = unknown_key_problem(d, k, kpath, keys, n_keys);
            if (hint >= 0 && (size_t) hint < YG_ARRAY_SIZE(hinted))
                hinted[hint] = true;
            if (hint >= 0 && ret_hinted)
                ret_hinted[hint] = true;
            continue;
        }
        values[i] = v;
    }
    for (size_t i = 0; i < n_keys; i++)
        if (keys[i].required && !values[i] && !(i < YG_ARRAY_SIZE(hinted) && hinted[i])) {
            _cleanup_free_ char *kpath = yamldoc_path_key(path, keys[i].name,
                                                          strlen(keys[i].name));
            yamldoc_problem(d, n, kpath, "required key '%s' is missing", keys[i].name);
        }
    return true;
}

bool yamldoc_get_string(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                        char **ret)
{
    if (n->kind != YAMLDOC_SCALAR || n->scalar == YAMLDOC_NULL) {
        yamldoc_type_problem(d, n, path, "string");
        return false;
    }
    if (memchr(n->text, '\0', n->len)) {
        yamldoc_problem(d, n, path, "a NUL character is not allowed here");
        return false;
    }
    *ret = xstrndup(n->text, n->len);
    return true;
}

bool yamldoc_get_exact(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                       const char *want)
{
    _cleanup_free_ char *s = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return false;
    if (!streq(s, want)) {
        _cleanup_free_ char *shown = yamldoc_show(n->text, n->len);
        yamldoc_problem(d, n, path, "must be '%s', got '%s'", want, shown);
        return false;
    }
    return true;
}

/* Decimal integer with an optional sign and no leading zero; false when
 * S is anything else. */
static bool parse_integer(const char *s, size_t len, bool *ret_overflow, int64_t *ret)
{
    size_t i = 0;
    bool neg = false;
    int64_t v = 0;
    *ret_overflow = false;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == len)
        return false;
    if (s[i] == '0' && i + 1 < len)
        return false;           /* 010: octal in YAML 1.1, ten in 1.2; refuse both */
    for (; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        if (v > (INT64_MAX - 9) / 10)
            *ret_overflow = true;
        else
            v = v * 10 + (s[i] - '0');
    }
    *ret = neg ? -v : v;
    return true;
}

bool yamldoc_get_int(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                     int min, int max, int *ret)
{
    bool overflow;
    int64_t v;
    if (n->kind != YAMLDOC_SCALAR || n->scalar == YAMLDOC_NULL) {
        yamldoc_type_problem(d, n, path, "integer");
        return false;
    }
    bool numeric = parse_integer(n->text, n->len, &overflow, &v);
    _cleanup_free_ char *shown = yamldoc_show(n->text, n->len);
    if (n->scalar == YAMLDOC_STRING) {
        if (numeric)
            yamldoc_problem(d, n, path, "integer expected, got the string '%s'; "
                            "write the number without quotes", shown);
        else
            yamldoc_problem(d, n, path, "integer expected, got '%s'", shown);
        return false;
    }
    if (!numeric) {
        size_t i = n->len > 0 && (n->text[0] == '+' || n->text[0] == '-');
        if (n->len > i + 1 && n->text[i] == '0' &&
            strspn(n->text + i, "0123456789") == n->len - i)
            yamldoc_problem(d, n, path, "integer expected, got '%s'; write it without the "
                            "leading zero (YAML 1.1 reads it as octal)", shown);
        else
            yamldoc_problem(d, n, path, "integer expected, got '%s'", shown);
        return false;
    }
    if (overflow || v < min || v > max) {
        yamldoc_problem(d, n, path, "must be between %d and %d, got %s", min, max, shown);
        return false;
    }
    *ret = (int) v;
    return true;
}

bool yamldoc_get_bool(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                      bool *ret)
{
    static const char *const yaml11[] = {
        "yes", "no", "on", "off", "y", "n", "True", "False", "TRUE", "FALSE",
        "Yes", "No", "YES", "NO", "On", "Off", "ON", "OFF", "Y", "N",
    };
    if (n->kind != YAMLDOC_SCALAR || n->scalar == YAMLDOC_NULL) {
        yamldoc_type_problem(d, n, path, "true or false");
        return false;
    }
    _cleanup_free_ char *shown = yamldoc_show(n->text, n->len);
    bool is_true = key_is(n, "true"), is_false = key_is(n, "false");
    if (n->scalar == YAMLDOC_STRING) {
        if (is_true || is_false)
            yamldoc_problem(d, n, path, "true or false expected, got the string '%s'; "
                            "write it without quotes", shown);
        else
            yamldoc_problem(d, n, path, "true or false expected, got '%s'", shown);
        return false;
    }
    if (!is_true && !is_false) {
        bool old = false;
        for (size_t i = 0; i < YG_ARRAY_SIZE(yaml11); i++)
            old |= key_is(n, yaml11[i]);
        if (old)
            yamldoc_problem(d, n, path, "true or false expected, got '%s'; write 'true' or "
                            "'false' (YAML 1.1 spellings are not accepted)", shown);
        else
            yamldoc_problem(d, n, path, "true or false expected, got '%s'", shown);
        return false;
    }
    *ret = is_true;
    return true;
}

static const char *const month_names[12] = {
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
};

bool yamldoc_get_date(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                      char **ret)
{
    _cleanup_free_ char *s = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return false;
    int y, m, day;
    _cleanup_free_ char *shown = yamldoc_show(n->text, n->len);
    int r = yamldoc_parse_date(s, &y, &m, &day);
    if (r == -EINVAL) {
        yamldoc_problem(d, n, path, "'%s' is not a date in the form YYYY-MM-DD", shown);
        return false;
    }
    if (r < 0) {
        /* The form is right: say which part is wrong. */
        y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        m = (s[5] - '0') * 10 + (s[6] - '0');
        day = (s[8] - '0') * 10 + (s[9] - '0');
        if (y < 1)
            yamldoc_problem(d, n, path, "'%s' is not a real date: there is no year 0", shown);
        else if (m < 1 || m > 12)
            yamldoc_problem(d, n, path, "'%s' is not a real date: there is no month %d",
                            shown, m);
        else if (day < 1)
            yamldoc_problem(d, n, path, "'%s' is not a real date: there is no day 0", shown);
        else
            yamldoc_problem(d, n, path, "'%s' is not a real date: %s %d has %d days",
                            shown, month_names[m - 1], y, days_in_month(y, m));
        return false;
    }
    *ret = steal_pointer(&s);
    return true;
}

bool yamldoc_get_name(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                      const char *what, char **ret)
{
    _cleanup_free_ char *s = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return false;
    if (!yamldoc_name_is_valid(s)) {
        _cleanup_free_ char *shown = yamldoc_show(n->text, n->len);
        yamldoc_problem(d, n, path, "'%s' is not a valid %s: use 1 to 63 lower-case letters, "
                        "digits and '-', starting and ending with a letter or digit",
                        shown, what);
        return false;
    }
    *ret = steal_pointer(&s);
    return true;
}

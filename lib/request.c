/* The resource request loader (DESIGN.md "The resource request").
 *
 * Three stages:
 *   1. the raw text: size limit, then UTF-8 / NUL / control characters are
 *      checked here, byte by byte, so the position of a bad byte is exact;
 *   2. libyaml's event API builds a small tree of our own nodes, each with
 *      its line:column.  Aliases and anchors, a second document, too many
 *      nodes or too deep nesting stop the load at once (so do syntax errors);
 *      tags outside the standard set are reported and the load goes on;
 *   3. the tree is validated against the request format, collecting up to
 *      REQUEST_MAX_ERRORS problems, each with line:column and field path.
 *
 * JSON is read by the same YAML parser (JSON is, near enough, YAML flow
 * style), so positions work the same for both.
 *
 * Scalars and types.  A quoted scalar (or one tagged !!str) is a string; a
 * plain one is whatever its field needs, so `name: 123`, `until: 2027-06-30`
 * and `ipv6: off` are text, as a reader expects (no YAML 1.1 booleans or
 * timestamps).  Integers must be plain (or tagged !!int): `vcpus: "2"` is
 * refused with a hint.  A plain empty value, `~` and `null` are "empty". */
#include <config.h>
#include "request.h"
#include "request-priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <yaml.h>

#include "util.h"

static const char *const ipv6_names[REQUEST_IPV6_MAX] = {
    [REQUEST_IPV6_REQUIRED] = "required",
    [REQUEST_IPV6_PREFERRED] = "preferred",
    [REQUEST_IPV6_OFF] = "off",
};

const char *request_ipv6_to_string(enum request_ipv6 v)
{
    return (unsigned) v < REQUEST_IPV6_MAX ? ipv6_names[v] : NULL;
}

int request_ipv6_from_string(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < REQUEST_IPV6_MAX; i++)
        if (streq(s, ipv6_names[i]))
            return i;
    return -1;
}

#define API_VERSION "yunguan/v1"
#define KIND "ResourceRequest"
#define PURPOSE_MAX_CHARS 500
#define IMAGE_MAX_CHARS 128
#define MEMORY_MIN_MIB 64
#define MIB_PER_GIB INT64_C(1024)
#define MIB_PER_TIB (INT64_C(1024) * 1024)
#define SHOW_MAX_CHARS 40

/* ------------------------------------------------------------------ */
/* Small pure helpers (request-priv.h).                                 */

bool request_name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && !(ch == '-' && i > 0 && i < n - 1))
            return false;
    }
    return true;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
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

int request_parse_date(const char *s, int *ret_year, int *ret_month, int *ret_day)
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

int64_t request_days_from_civil(int year, int month, int day)
{
    /* Howard Hinnant's days_from_civil. */
    int64_t y = (int64_t) year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

enum size_status {
    SIZE_OK,
    SIZE_NO_UNIT,       /* "4096" */
    SIZE_BAD_UNIT,      /* "4GB", "4gb", "4G", "4KiB" */
    SIZE_UNIT_CASE,     /* "4gib": an accepted unit in the wrong case */
    SIZE_SPACE,         /* "4 GiB" */
    SIZE_SYNTAX,        /* "1.5GiB", "lots", "-4GiB" */
    SIZE_OVERFLOW,      /* too many digits for any sane size */
};

static const struct {
    const char *name;
    int64_t mib;
} size_units[] = {
    { "MiB", 1 },
    { "GiB", MIB_PER_GIB },
    { "TiB", MIB_PER_TIB },
};

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Parse S (LEN bytes, may lack a terminating NUL); on SIZE_BAD_UNIT and
 * SIZE_UNIT_CASE, *ret_unit is where the unit starts and *ret_digits how
 * many digits precede it. */
static enum size_status size_parse(const char *s, size_t len, int64_t *ret_mib,
                                   size_t *ret_digits)
{
    size_t i = 0;
    int64_t v = 0;
    bool overflow = false;
    while (i < len && is_digit(s[i])) {
        if (v > (INT64_MAX - 9) / 10)
            overflow = true;
        else
            v = v * 10 + (s[i] - '0');
        i++;
    }
    *ret_digits = i;
    if (i == 0)
        return SIZE_SYNTAX;
    if (i == len)
        return SIZE_NO_UNIT;
    const char *unit = s + i;
    size_t ulen = len - i;
    if (unit[0] == ' ') {
        size_t j = 0;
        while (j < ulen && unit[j] == ' ')
            j++;
        return j < ulen && is_alpha(unit[j]) ? SIZE_SPACE : SIZE_SYNTAX;
    }
    for (size_t j = 0; j < ulen; j++)
        if (!is_alpha(unit[j]))
            return SIZE_SYNTAX;
    for (size_t k = 0; k < YG_ARRAY_SIZE(size_units); k++) {
        if (ulen != strlen(size_units[k].name))
            continue;
        if (!memcmp(unit, size_units[k].name, ulen)) {
            if (overflow || v > INT64_MAX / size_units[k].mib)
                return SIZE_OVERFLOW;
            *ret_mib = v * size_units[k].mib;
            return SIZE_OK;
        }
        if (!strncasecmp(unit, size_units[k].name, ulen))
            return SIZE_UNIT_CASE;
    }
    return SIZE_BAD_UNIT;
}

int request_parse_size_mib(const char *s, int64_t *ret_mib)
{
    int64_t mib;
    size_t digits;
    switch (size_parse(s, strlen(s), &mib, &digits)) {
    case SIZE_OK:
        *ret_mib = mib;
        return 0;
    case SIZE_OVERFLOW:
        return -ERANGE;
    default:
        return -EINVAL;
    }
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

int request_check_text(const char *text, size_t len, int *ret_line, int *ret_column,
                       char **ret_message)
{
    const unsigned char *p = (const unsigned char *) text;
    size_t i = 0;
    int line = 1, column = 1;

    if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        i = 3;                  /* BOM: libyaml skips it and so do we */
    while (i < len) {
        uint32_t cp = 0;
        size_t n = 0;
        char *msg = NULL;
        if (i == 0 && len >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) ||
                                   (p[0] == 0xFE && p[1] == 0xFF))) {
            msg = xasprintf("the text starts with a UTF-16 byte order mark (0x%02X 0x%02X); "
                            "the request must be UTF-8 text", p[0], p[1]);
        } else if (p[i] == 0) {
            msg = xstrdup("NUL byte (0x00) is not allowed; the request must be "
                          "UTF-8 text (was it saved as UTF-16?)");
        } else if (!(n = utf8_decode(p + i, len - i, &cp))) {
            msg = xasprintf("invalid UTF-8 (byte 0x%02X); the request must be UTF-8 "
                            "text (convert GBK files with 'iconv -f GB18030 -t UTF-8')",
                            p[i]);
        } else if (!is_allowed_cp(cp)) {
            if (cp == 0xFEFF)
                msg = xstrdup("a byte order mark (U+FEFF) is only allowed at the start of the text");
            else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
                msg = xasprintf("control character U+%04X is not allowed in a request",
                                (unsigned) cp);
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

/* Characters (code points) in valid UTF-8 text. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char) s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* User text for a message: control characters and line breaks escaped,
 * at most SHOW_MAX_CHARS characters (then "...").  S is valid UTF-8. */
static char *show(const char *s, size_t len)
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
/* Problems: collected, sorted by position, turned into one yg_error.   */

struct problem {
    int line, column;
    size_t seq;
    char *path;
    char *message;
};

struct parse_ctx {
    const char *filename;
    struct problem problems[REQUEST_MAX_ERRORS];
    size_t n_problems;      /* kept */
    size_t n_dropped;       /* found beyond REQUEST_MAX_ERRORS */
};

static void problem_vadd(struct parse_ctx *c, int line, int column, const char *path,
                         const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void problem_vadd(struct parse_ctx *c, int line, int column, const char *path,
                         const char *fmt, va_list ap)
{
    if (c->n_problems >= REQUEST_MAX_ERRORS) {
        c->n_dropped++;
        return;
    }
    struct problem *p = &c->problems[c->n_problems];
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    p->line = line;
    p->column = column;
    p->seq = c->n_problems++;
    p->path = path && *path ? xstrdup(path) : NULL;
    p->message = msg;
}

static void problem_at(struct parse_ctx *c, int line, int column, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void problem_at(struct parse_ctx *c, int line, int column, const char *path,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vadd(c, line, column, path, fmt, ap);
    va_end(ap);
}

static size_t n_found(const struct parse_ctx *c)
{
    return c->n_problems + c->n_dropped;
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

static void ctx_clear(struct parse_ctx *c)
{
    for (size_t i = 0; i < c->n_problems; i++) {
        free(c->problems[i].path);
        free(c->problems[i].message);
    }
    c->n_problems = c->n_dropped = 0;
}

static struct yg_error *ctx_to_error(struct parse_ctx *c)
{
    struct yg_error *e;
    qsort(c->problems, c->n_problems, sizeof c->problems[0], problem_cmp);
    if (c->n_dropped && c->filename)
        e = yg_error_new(422, "invalid_request",
                         "request '%s' is not valid: more than %d problems; the first %d are listed",
                         c->filename, REQUEST_MAX_ERRORS, REQUEST_MAX_ERRORS);
    else if (c->n_dropped)
        e = yg_error_new(422, "invalid_request",
                         "request is not valid: more than %d problems; the first %d are listed",
                         REQUEST_MAX_ERRORS, REQUEST_MAX_ERRORS);
    else if (c->filename)
        e = yg_error_new(422, "invalid_request", "request '%s' is not valid: %zu problem%s",
                         c->filename, c->n_problems, c->n_problems == 1 ? "" : "s");
    else
        e = yg_error_new(422, "invalid_request", "request is not valid: %zu problem%s",
                         c->n_problems, c->n_problems == 1 ? "" : "s");
    for (size_t i = 0; i < c->n_problems; i++) {
        const struct problem *p = &c->problems[i];
        yg_error_add_detail(e, p->line, p->column, p->path, "%s", p->message);
    }
    return e;
}

/* ------------------------------------------------------------------ */
/* The source tree.                                                     */

enum node_kind { NODE_SCALAR, NODE_SEQUENCE, NODE_MAPPING };
enum scalar_kind {
    SCALAR_PLAIN,       /* plain, or tagged !!int/!!float/!!bool/!!timestamp */
    SCALAR_STRING,      /* quoted, block, or tagged !!str */
    SCALAR_NULL,        /* plain "", "~", "null" (any case variant YAML knows), or !!null */
};

struct node {
    enum node_kind kind;
    enum scalar_kind scalar;
    int line, column;           /* 1-based */
    char *text;                 /* scalar value, NUL-terminated; may hold NUL bytes */
    size_t len;
    struct node **children;     /* sequence: items; mapping: key, value, key, value, ... */
    size_t n_children, cap;
};

static void node_free(struct node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_children; i++)
        node_free(n->children[i]);
    free(n->children);
    free(n->text);
    free(n);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct node *, node_free);

static size_t node_n_pairs(const struct node *n)
{
    return n->n_children / 2;
}

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

/* The tag as a person wrote it: "!!str" for the standard ones. */
static char *tag_show(const char *tag)
{
    size_t plen = strlen(YAML_TAG_PREFIX);
    if (!strncmp(tag, YAML_TAG_PREFIX, plen)) {
        _cleanup_free_ char *rest = show(tag + plen, strlen(tag + plen));
        return xasprintf("!!%s", rest);
    }
    return show(tag, strlen(tag));
}

struct builder {
    struct parse_ctx *ctx;
    struct node *root;
    struct node *stack[REQUEST_MAX_DEPTH];
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
        const struct node *p = b->stack[i];
        /* The child we are in: the last one, or for the innermost
         * container the one about to be added. */
        size_t idx = i + 1 < b->depth ? p->n_children - 1 : p->n_children;
        if (p->kind == NODE_SEQUENCE) {
            strbuf_printf(&sb, "[%zu]", idx);
            continue;
        }
        if (idx % 2 == 0)
            break;              /* a key, not a value */
        const struct node *k = p->children[idx - 1];
        if (k->kind != NODE_SCALAR)
            break;
        _cleanup_free_ char *shown = show(k->text, k->len);
        strbuf_printf(&sb, "%s%s", sb.len ? "." : "", shown);
    }
    return strbuf_steal(&sb);
}

static const char *const scalar_tags[] = { "str", "int", "float", "bool", "null", "timestamp" };

/* Check an explicit tag; reports and returns false when it is not allowed.
 * *ret_name is the standard tag's name ("str") or NULL when untagged. */
static bool check_tag(struct builder *b, const yaml_event_t *ev, const char *tag,
                      enum node_kind kind, const char **ret_name)
{
    *ret_name = NULL;
    if (!tag)
        return true;
    int line = (int) ev->start_mark.line + 1, column = (int) ev->start_mark.column + 1;
    size_t plen = strlen(YAML_TAG_PREFIX);
    _cleanup_free_ char *shown = tag_show(tag);
    _cleanup_free_ char *path = builder_path(b);
    if (strncmp(tag, YAML_TAG_PREFIX, plen)) {
        problem_at(b->ctx, line, column, path,
                   "tag '%s' is not allowed; a request may only use the standard tags "
                   "!!str, !!int, !!float, !!bool, !!null, !!timestamp, !!map and !!seq",
                   shown);
        return false;
    }
    const char *name = tag + plen;
    bool fits = false, standard = false;
    for (size_t i = 0; i < YG_ARRAY_SIZE(scalar_tags); i++)
        if (streq(name, scalar_tags[i])) {
            standard = true;
            fits = kind == NODE_SCALAR;
            *ret_name = scalar_tags[i];
        }
    if (streq(name, "map") || streq(name, "seq")) {
        standard = true;
        fits = kind == (streq(name, "map") ? NODE_MAPPING : NODE_SEQUENCE);
    }
    if (!standard) {
        problem_at(b->ctx, line, column, path,
                   "tag '%s' is not allowed; a request may only use the standard tags "
                   "!!str, !!int, !!float, !!bool, !!null, !!timestamp, !!map and !!seq",
                   shown);
        return false;
    }
    if (!fits) {
        problem_at(b->ctx, line, column, path, "tag '%s' does not fit a %s", shown,
                   kind == NODE_SCALAR ? "scalar" :
                   kind == NODE_MAPPING ? "mapping" : "sequence");
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
    problem_vadd(b->ctx, (int) ev->start_mark.line + 1, (int) ev->start_mark.column + 1,
                 path, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int builder_add(struct builder *b, const yaml_event_t *ev, struct node *n_)
{
    _cleanup_(node_freep) struct node *n = n_;
    if (++b->n_nodes > REQUEST_MAX_NODES)
        return builder_fatal(b, ev, "the document has more than %d nodes (keys, values "
                             "and collections); a request needs far fewer",
                             REQUEST_MAX_NODES);
    n->line = (int) ev->start_mark.line + 1;
    n->column = (int) ev->start_mark.column + 1;
    struct node *container = n->kind == NODE_SCALAR ? NULL : n;
    if (container && b->depth >= REQUEST_MAX_DEPTH)
        return builder_fatal(b, ev, "the document nests deeper than %d levels",
                             REQUEST_MAX_DEPTH);
    if (b->depth == 0) {
        b->root = steal_pointer(&n);
    } else {
        struct node *parent = b->stack[b->depth - 1];
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

static int builder_event(struct builder *b, const yaml_event_t *ev)
{
    const char *anchor = NULL, *tag = NULL;
    enum node_kind kind;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->n_documents > 1)
            return builder_fatal(b, ev, "a request file holds exactly one document; "
                                 "found a second at line %d", (int) ev->start_mark.line + 1);
        return 0;
    case YAML_ALIAS_EVENT: {
        _cleanup_free_ char *a = show((const char *) ev->data.alias.anchor,
                                      strlen((const char *) ev->data.alias.anchor));
        return builder_fatal(b, ev, "aliases ('*%s') are not allowed in a request; "
                             "write the value out in full", a);
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    case YAML_SCALAR_EVENT:
        anchor = (const char *) ev->data.scalar.anchor;
        tag = (const char *) ev->data.scalar.tag;
        kind = NODE_SCALAR;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = (const char *) ev->data.sequence_start.anchor;
        tag = (const char *) ev->data.sequence_start.tag;
        kind = NODE_SEQUENCE;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = (const char *) ev->data.mapping_start.anchor;
        tag = (const char *) ev->data.mapping_start.tag;
        kind = NODE_MAPPING;
        break;
    default:
        return 0;
    }

    if (anchor) {
        _cleanup_free_ char *a = show(anchor, strlen(anchor));
        return builder_fatal(b, ev, "anchors ('&%s') and aliases are not allowed in a "
                             "request; write every value out in full", a);
    }
    const char *tag_name;
    bool tag_ok = check_tag(b, ev, tag, kind, &tag_name);

    struct node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    if (kind == NODE_SCALAR) {
        n->len = ev->data.scalar.length;
        n->text = xmalloc(n->len + 1);
        memcpy(n->text, ev->data.scalar.value, n->len);
        n->text[n->len] = '\0';
        if (tag_ok && tag_name)
            n->scalar = streq(tag_name, "str") ? SCALAR_STRING :
                        streq(tag_name, "null") ? SCALAR_NULL : SCALAR_PLAIN;
        else if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            n->scalar = SCALAR_STRING;
        else
            n->scalar = text_is_null(n->text, n->len) ? SCALAR_NULL : SCALAR_PLAIN;
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

static int report_yaml_error(struct parse_ctx *c, const yaml_parser_t *parser,
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
        problem_at(c, line, column, NULL, "YAML syntax error: %s (%s at line %d, column %d)",
                   problem, parser->context, (int) parser->context_mark.line + 1,
                   (int) parser->context_mark.column + 1);
    else
        problem_at(c, line, column, NULL, "YAML syntax error: %s", problem);
    return -EINVAL;
}

/* Stage 2: text → tree.  0 with *ret_root (NULL for an empty stream), or
 * -EINVAL when a fatal problem was reported, or -ENOMEM. */
static int build_tree(struct parse_ctx *c, const char *text, size_t len,
                      struct node **ret_root)
{
    _cleanup_(yaml_parser_deletep) yaml_parser_t parser;
    struct builder b = { .ctx = c };
    int r = 0;

    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            r = report_yaml_error(c, &parser, text, len);
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

/* ------------------------------------------------------------------ */
/* Stage 3: validation.                                                 */

static char *path_key(const char *parent, const char *key, size_t len)
{
    _cleanup_free_ char *k = show(key, len);
    return parent && *parent ? xasprintf("%s.%s", parent, k) : xstrdup(k);
}

static char *path_index(const char *parent, size_t i)
{
    return xasprintf("%s[%zu]", parent, i);
}

static void problem_node(struct parse_ctx *c, const struct node *n, const char *path,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void problem_node(struct parse_ctx *c, const struct node *n, const char *path,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_vadd(c, n->line, n->column, path, fmt, ap);
    va_end(ap);
}

/* "a mapping", "a sequence", "an empty value", "null", "'two'". */
static char *describe(const struct node *n)
{
    if (n->kind == NODE_MAPPING)
        return xstrdup("a mapping");
    if (n->kind == NODE_SEQUENCE)
        return xstrdup("a sequence");
    if (n->scalar == SCALAR_NULL)
        return xstrdup(n->len == 0 ? "an empty value" : "null");
    _cleanup_free_ char *s = show(n->text, n->len);
    return xasprintf("'%s'", s);
}

static void type_problem(struct parse_ctx *c, const struct node *n, const char *path,
                         const char *expected)
{
    _cleanup_free_ char *got = describe(n);
    problem_node(c, n, path, "%s expected, got %s", expected, got);
}

struct key_def {
    const char *name;
    bool required;
};

static bool key_is(const struct node *k, const char *name)
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
static int unknown_key_problem(struct parse_ctx *c, const struct node *k, const char *path,
                               const struct key_def *keys, size_t n_keys)
{
    _cleanup_free_ char *shown = show(k->text, k->len);
    _cleanup_free_ char *lower = lowercase(k->text, k->len);
    int best = -1;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < n_keys; i++) {
        _cleanup_free_ char *known = lowercase(keys[i].name, strlen(keys[i].name));
        size_t d = edit_distance(lower, known);
        size_t klen = strlen(known);
        size_t limit = klen <= 3 ? 1 : klen <= 6 ? 2 : 3;
        if (!strncmp(lower, known, klen) && (lower[klen] == '_' || lower[klen] == '-'))
            d = 1;              /* memory_mib, disk_gib: the canonical JSON's names */
        if (d <= limit && d < best_d) {
            best = (int) i;
            best_d = d;
        }
    }
    if (best >= 0) {
        problem_node(c, k, path, "unknown key '%s'; did you mean '%s'?", shown, keys[best].name);
        return best;
    }
    struct strbuf sb;
    strbuf_init(&sb);
    for (size_t i = 0; i < n_keys; i++)
        strbuf_printf(&sb, "%s%s", i ? ", " : "", keys[i].name);
    _cleanup_free_ char *list = strbuf_steal(&sb);
    problem_node(c, k, path, "unknown key '%s'; the keys allowed here are: %s", shown, list);
    return -1;
}

/* Check that N is a mapping with only KEYS, each at most once, and the
 * required ones present; values[i] is the value of keys[i] or NULL.
 * False (reported) when N is not a mapping at all. */
static bool check_mapping(struct parse_ctx *c, const struct node *n, const char *path,
                          const struct key_def *keys, size_t n_keys,
                          const struct node **values)
{
    bool hinted[16] = { false };    /* a misspelling already points at it */
    for (size_t i = 0; i < n_keys; i++)
        values[i] = NULL;
    if (n->kind != NODE_MAPPING) {
        type_problem(c, n, path, "mapping");
        return false;
    }
    for (size_t p = 0; p < node_n_pairs(n); p++) {
        const struct node *k = n->children[2 * p], *v = n->children[2 * p + 1];
        if (k->kind != NODE_SCALAR) {
            _cleanup_free_ char *got = describe(k);
            problem_node(c, k, path, "a key must be a string, got %s", got);
            continue;
        }
        _cleanup_free_ char *kpath = path_key(path, k->text, k->len);
        const struct node *first = NULL;
        for (size_t q = 0; q < p && !first; q++) {
            const struct node *k2 = n->children[2 * q];
            if (k2->kind == NODE_SCALAR && k2->len == k->len && !memcmp(k2->text, k->text, k->len))
                first = k2;
        }
        if (first) {
            _cleanup_free_ char *shown = show(k->text, k->len);
            if (first->line == k->line)
                problem_node(c, k, kpath, "duplicate key '%s' (first given at line %d, column %d)",
                             shown, first->line, first->column);
            else
                problem_node(c, k, kpath, "duplicate key '%s' (first given at line %d)",
                             shown, first->line);
            continue;
        }
        size_t i;
        for (i = 0; i < n_keys; i++)
            if (key_is(k, keys[i].name))
                break;
        if (i == n_keys) {
            int hint = unknown_key_problem(c, k, kpath, keys, n_keys);
            if (hint >= 0 && (size_t) hint < YG_ARRAY_SIZE(hinted))
                hinted[hint] = true;
            continue;
        }
        values[i] = v;
    }
    for (size_t i = 0; i < n_keys; i++)
        if (keys[i].required && !values[i] && !(i < YG_ARRAY_SIZE(hinted) && hinted[i])) {
            _cleanup_free_ char *kpath = path_key(path, keys[i].name, strlen(keys[i].name));
            problem_node(c, n, kpath, "required key '%s' is missing", keys[i].name);
        }
    return true;
}

/* A string value: any non-empty scalar (see the top of this file). */
static bool get_string(struct parse_ctx *c, const struct node *n, const char *path,
                       char **ret)
{
    if (n->kind != NODE_SCALAR || n->scalar == SCALAR_NULL) {
        type_problem(c, n, path, "string");
        return false;
    }
    if (memchr(n->text, '\0', n->len)) {
        problem_node(c, n, path, "a NUL character is not allowed here");
        return false;
    }
    *ret = xstrndup(n->text, n->len);
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

static bool get_int(struct parse_ctx *c, const struct node *n, const char *path,
                    int min, int max, int *ret)
{
    bool overflow;
    int64_t v;
    if (n->kind != NODE_SCALAR || n->scalar == SCALAR_NULL) {
        type_problem(c, n, path, "integer");
        return false;
    }
    bool numeric = parse_integer(n->text, n->len, &overflow, &v);
    _cleanup_free_ char *shown = show(n->text, n->len);
    if (n->scalar == SCALAR_STRING) {
        if (numeric)
            problem_node(c, n, path, "integer expected, got the string '%s'; "
                         "write the number without quotes", shown);
        else
            problem_node(c, n, path, "integer expected, got '%s'", shown);
        return false;
    }
    if (!numeric) {
        size_t i = n->len > 0 && (n->text[0] == '+' || n->text[0] == '-');
        if (n->len > i + 1 && n->text[i] == '0' && strspn(n->text + i, "0123456789") == n->len - i)
            problem_node(c, n, path, "integer expected, got '%s'; write it without the "
                         "leading zero (YAML 1.1 reads it as octal)", shown);
        else
            problem_node(c, n, path, "integer expected, got '%s'", shown);
        return false;
    }
    if (overflow || v < min || v > max) {
        problem_node(c, n, path, "must be between %d and %d, got %s", min, max, shown);
        return false;
    }
    *ret = (int) v;
    return true;
}

/* "64MiB", "1TiB": the largest unit that holds the value exactly. */
static char *format_mib(int64_t mib)
{
    if (mib % MIB_PER_TIB == 0)
        return xasprintf("%" PRId64 "TiB", mib / MIB_PER_TIB);
    if (mib % MIB_PER_GIB == 0)
        return xasprintf("%" PRId64 "GiB", mib / MIB_PER_GIB);
    return xasprintf("%" PRId64 "MiB", mib);
}

/* A size in MiB between MIN and MAX. */
static bool get_size(struct parse_ctx *c, const struct node *n, const char *path,
                     int64_t min, int64_t max, int64_t *ret_mib)
{
    if (n->kind != NODE_SCALAR || n->scalar == SCALAR_NULL) {
        _cleanup_free_ char *got = describe(n);
        problem_node(c, n, path, "size expected (e.g. '4GiB'), got %s", got);
        return false;
    }
    int64_t mib = 0;
    size_t digits;
    enum size_status st = size_parse(n->text, n->len, &mib, &digits);
    _cleanup_free_ char *shown = show(n->text, n->len);
    _cleanup_free_ char *smin = format_mib(min), *smax = format_mib(max);
    switch (st) {
    case SIZE_OK:
        if (mib < min || mib > max) {
            problem_node(c, n, path, "must be between %s and %s, got '%s'", smin, smax, shown);
            return false;
        }
        *ret_mib = mib;
        return true;
    case SIZE_OVERFLOW:
        problem_node(c, n, path, "must be between %s and %s, got '%s'", smin, smax, shown);
        return false;
    case SIZE_NO_UNIT:
        problem_node(c, n, path, "size '%s' has no unit; use MiB, GiB or TiB (binary units), "
                     "e.g. '4GiB'", shown);
        return false;
    case SIZE_UNIT_CASE:
    case SIZE_BAD_UNIT: {
        const char *unit = n->text + digits;
        size_t ulen = n->len - digits;
        _cleanup_free_ char *ushown = show(unit, ulen);
        const char *good = NULL;
        for (size_t k = 0; k < YG_ARRAY_SIZE(size_units); k++)
            if (ulen >= 1 && (unit[0] | 0x20) == (size_units[k].name[0] | 0x20))
                good = size_units[k].name;
        if (st == SIZE_UNIT_CASE) {
            problem_node(c, n, path, "unit '%s' is not accepted; write '%s' "
                         "(units are case-sensitive)", ushown, good);
            return false;
        }
        if (good && digits <= 12) {
            _cleanup_free_ char *num = xstrndup(n->text, digits);
            problem_node(c, n, path, "unit '%s' is not accepted; use MiB, GiB or TiB "
                         "(binary units), e.g. '%s%s'", ushown, num, good);
        } else {
            problem_node(c, n, path, "unit '%s' is not accepted; use MiB, GiB or TiB "
                         "(binary units), e.g. '4GiB'", ushown);
        }
        return false;
    }
    case SIZE_SPACE:
        problem_node(c, n, path, "'%s' is not a valid size: write the number and the unit "
                     "without a space, e.g. '4GiB'", shown);
        return false;
    case SIZE_SYNTAX:
    default:
        problem_node(c, n, path, "'%s' is not a valid size: use a whole number followed by "
                     "MiB, GiB or TiB, e.g. '4GiB'", shown);
        return false;
    }
}

static const char *const month_names[12] = {
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
};

static bool get_date(struct parse_ctx *c, const struct node *n, const char *path, char **ret)
{
    _cleanup_free_ char *s = NULL;
    if (!get_string(c, n, path, &s))
        return false;
    int y, m, d;
    _cleanup_free_ char *shown = show(n->text, n->len);
    int r = request_parse_date(s, &y, &m, &d);
    if (r == -EINVAL) {
        problem_node(c, n, path, "'%s' is not a date in the form YYYY-MM-DD", shown);
        return false;
    }
    if (r < 0) {
        /* The form is right: say which part is wrong. */
        y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
        m = (s[5] - '0') * 10 + (s[6] - '0');
        d = (s[8] - '0') * 10 + (s[9] - '0');
        if (y < 1)
            problem_node(c, n, path, "'%s' is not a real date: there is no year 0", shown);
        else if (m < 1 || m > 12)
            problem_node(c, n, path, "'%s' is not a real date: there is no month %d", shown, m);
        else if (d < 1)
            problem_node(c, n, path, "'%s' is not a real date: there is no day 0", shown);
        else
            problem_node(c, n, path, "'%s' is not a real date: %s %d has %d days",
                         shown, month_names[m - 1], y, days_in_month(y, m));
        return false;
    }
    *ret = steal_pointer(&s);
    return true;
}

static bool get_name(struct parse_ctx *c, const struct node *n, const char *path,
                     const char *what, char **ret)
{
    _cleanup_free_ char *s = NULL;
    if (!get_string(c, n, path, &s))
        return false;
    if (!request_name_is_valid(s)) {
        _cleanup_free_ char *shown = show(n->text, n->len);
        problem_node(c, n, path, "'%s' is not a valid %s: use 1 to 63 lower-case letters, "
                     "digits and '-', starting and ending with a letter or digit",
                     shown, what);
        return false;
    }
    *ret = steal_pointer(&s);
    return true;
}

static bool image_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > IMAGE_MAX_CHARS)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = is_alpha(ch) || is_digit(ch);
        if (!alnum && !(i > 0 && (ch == '.' || ch == '_' || ch == '-')))
            return false;
    }
    return true;
}

static struct request_pos pos_of(const struct node *n)
{
    return (struct request_pos) { .line = n->line, .column = n->column };
}

static bool get_exact(struct parse_ctx *c, const struct node *n, const char *path,
                      const char *want)
{
    _cleanup_free_ char *s = NULL;
    if (!get_string(c, n, path, &s))
        return false;
    if (!streq(s, want)) {
        _cleanup_free_ char *shown = show(n->text, n->len);
        problem_node(c, n, path, "must be '%s', got '%s'", want, shown);
        return false;
    }
    return true;
}

static void validate_purpose(struct parse_ctx *c, const struct node *n, char **ret)
{
    const char *path = "spec.purpose";
    _cleanup_free_ char *s = NULL;
    if (!get_string(c, n, path, &s))
        return;
    size_t len = strlen(s), chars = utf8_chars(s, len);
    bool blank = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) s[i];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            blank = false;
        if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7F) {
            problem_node(c, n, path, "control character U+%04X is not allowed", ch);
            return;
        }
    }
    if (blank) {
        problem_node(c, n, path, "must not be empty: say what the resources are for");
        return;
    }
    if (chars > PURPOSE_MAX_CHARS) {
        problem_node(c, n, path, "is %zu characters long; at most %d are allowed",
                     chars, PURPOSE_MAX_CHARS);
        return;
    }
    /* Canonical form: no surrounding white space (a folded block keeps a
     * final newline that nobody meant). */
    size_t start = 0, end = len;
    while (start < end && strchr(" \t\n\r", s[start]))
        start++;
    while (end > start && strchr(" \t\n\r", s[end - 1]))
        end--;
    *ret = xstrndup(s + start, end - start);
}

static const struct key_def top_keys[] = {
    { "apiVersion", true }, { "kind", true }, { "metadata", true }, { "spec", true },
};
static const struct key_def metadata_keys[] = {
    { "name", true }, { "department", true },
};
static const struct key_def spec_keys[] = {
    { "purpose", true }, { "securityLevel", true }, { "lease", true },
    { "network", true }, { "vms", true },
};
static const struct key_def lease_keys[] = {
    { "until", true },
};
static const struct key_def network_keys[] = {
    { "segment", true }, { "ipv6", false },
};
static const struct key_def vm_keys[] = {
    { "name", true }, { "count", false }, { "vcpus", true },
    { "memory", true }, { "disk", true }, { "image", true },
};

static void validate_metadata(struct parse_ctx *c, const struct node *n, struct request *r)
{
    const struct node *v[YG_ARRAY_SIZE(metadata_keys)];
    if (!check_mapping(c, n, "metadata", metadata_keys, YG_ARRAY_SIZE(metadata_keys), v))
        return;
    if (v[0] && get_name(c, v[0], "metadata.name", "name", &r->name))
        r->name_pos = pos_of(v[0]);
    if (v[1] && get_name(c, v[1], "metadata.department", "department", &r->department))
        r->department_pos = pos_of(v[1]);
}

static void validate_vm(struct parse_ctx *c, const struct node *n, const char *path,
                        struct request_vm_group *vm, const struct node **ret_name_node)
{
    const struct node *v[YG_ARRAY_SIZE(vm_keys)];
    *ret_name_node = NULL;
    if (!check_mapping(c, n, path, vm_keys, YG_ARRAY_SIZE(vm_keys), v))
        return;
    _cleanup_free_ char *p_name = path_key(path, "name", 4);
    _cleanup_free_ char *p_count = path_key(path, "count", 5);
    _cleanup_free_ char *p_vcpus = path_key(path, "vcpus", 5);
    _cleanup_free_ char *p_memory = path_key(path, "memory", 6);
    _cleanup_free_ char *p_disk = path_key(path, "disk", 4);
    _cleanup_free_ char *p_image = path_key(path, "image", 5);

    if (v[0] && get_name(c, v[0], p_name, "VM name", &vm->name))
        *ret_name_node = v[0];
    vm->count = 1;
    if (v[1])
        get_int(c, v[1], p_count, 1, REQUEST_MAX_COUNT, &vm->count);
    if (v[2])
        get_int(c, v[2], p_vcpus, 1, REQUEST_MAX_VCPUS, &vm->vcpus);
    if (v[3])
        get_size(c, v[3], p_memory, MEMORY_MIN_MIB, REQUEST_MAX_MEMORY_MIB, &vm->memory_mib);
    if (v[4]) {
        int64_t mib;
        if (get_size(c, v[4], p_disk, MIB_PER_GIB,
                     (int64_t) REQUEST_MAX_DISK_GIB * MIB_PER_GIB, &mib)) {
            if (mib % MIB_PER_GIB) {
                _cleanup_free_ char *shown = show(v[4]->text, v[4]->len);
                problem_node(c, v[4], p_disk, "must be a whole number of GiB, got '%s'", shown);
            } else {
                vm->disk_gib = mib / MIB_PER_GIB;
            }
        }
    }
    if (v[5] && get_string(c, v[5], p_image, &vm->image) && !image_is_valid(vm->image)) {
        _cleanup_free_ char *shown = show(v[5]->text, v[5]->len);
        problem_node(c, v[5], p_image, "'%s' is not a valid image name: use up to %d letters, "
                     "digits, '.', '_' and '-', starting with a letter or digit",
                     shown, IMAGE_MAX_CHARS);
    }
}

static void validate_vms(struct parse_ctx *c, const struct node *n, struct request *r)
{
    const char *path = "spec.vms";
    if ((n->kind == NODE_SCALAR && n->scalar == SCALAR_NULL) ||
        (n->kind == NODE_SEQUENCE && n->n_children == 0)) {
        problem_node(c, n, path, "at least one VM group is required");
        return;
    }
    if (n->kind != NODE_SEQUENCE) {
        type_problem(c, n, path, "sequence");
        return;
    }
    if (n->n_children > REQUEST_MAX_VM_GROUPS) {
        problem_node(c, n, path, "%zu VM groups is too many; at most %d are allowed "
                     "(use count for identical VMs)", n->n_children, REQUEST_MAX_VM_GROUPS);
        return;
    }
    const struct node *names[REQUEST_MAX_VM_GROUPS];
    r->vms = xcalloc(n->n_children, sizeof *r->vms);
    r->n_vms = n->n_children;
    for (size_t i = 0; i < n->n_children; i++) {
        _cleanup_free_ char *p = path_index(path, i);
        validate_vm(c, n->children[i], p, &r->vms[i], &names[i]);
        if (!names[i])
            continue;
        for (size_t j = 0; j < i; j++)
            if (names[j] && streq(r->vms[j].name, r->vms[i].name)) {
                _cleanup_free_ char *pn = path_key(p, "name", 4);
                problem_node(c, names[i], pn, "duplicate VM name '%s' (first used by "
                             "spec.vms[%zu] at line %d)", r->vms[i].name, j, names[j]->line);
                break;
            }
    }
}

static void validate_spec(struct parse_ctx *c, const struct node *n, struct request *r)
{
    const struct node *v[YG_ARRAY_SIZE(spec_keys)];
    if (!check_mapping(c, n, "spec", spec_keys, YG_ARRAY_SIZE(spec_keys), v))
        return;
    if (v[0])
        validate_purpose(c, v[0], &r->purpose);
    if (v[1])
        get_int(c, v[1], "spec.securityLevel", 1, 4, &r->security_level);
    if (v[2]) {
        const struct node *lv[YG_ARRAY_SIZE(lease_keys)];
        if (check_mapping(c, v[2], "spec.lease", lease_keys, YG_ARRAY_SIZE(lease_keys), lv) &&
            lv[0] && get_date(c, lv[0], "spec.lease.until", &r->lease_until))
            r->lease_until_pos = pos_of(lv[0]);
    }
    if (v[3]) {
        const struct node *nv[YG_ARRAY_SIZE(network_keys)];
        if (check_mapping(c, v[3], "spec.network", network_keys,
                          YG_ARRAY_SIZE(network_keys), nv)) {
            if (nv[0])
                get_name(c, nv[0], "spec.network.segment", "segment name", &r->segment);
            _cleanup_free_ char *s = NULL;
            if (nv[1] && get_string(c, nv[1], "spec.network.ipv6", &s)) {
                int v6 = request_ipv6_from_string(s);
                if (v6 < 0) {
                    _cleanup_free_ char *shown = show(nv[1]->text, nv[1]->len);
                    problem_node(c, nv[1], "spec.network.ipv6",
                                 "'%s' is not a valid value; use required, preferred or off",
                                 shown);
                } else {
                    r->ipv6 = (enum request_ipv6) v6;
                }
            }
        }
    }
    if (v[4])
        validate_vms(c, v[4], r);
}

static void validate_root(struct parse_ctx *c, const struct node *root, struct request *r)
{
    if (!root || (root->kind == NODE_SCALAR && root->scalar == SCALAR_NULL)) {
        problem_at(c, root ? root->line : 1, root ? root->column : 1, NULL,
                   "the document is empty; a request is a mapping with apiVersion, kind, "
                   "metadata and spec");
        return;
    }
    if (root->kind != NODE_MAPPING) {
        _cleanup_free_ char *got = describe(root);
        problem_node(c, root, NULL, "the top level must be a mapping with apiVersion, kind, "
                     "metadata and spec; got %s", got);
        return;
    }
    const struct node *v[YG_ARRAY_SIZE(top_keys)];
    check_mapping(c, root, NULL, top_keys, YG_ARRAY_SIZE(top_keys), v);
    if (v[0])
        get_exact(c, v[0], "apiVersion", API_VERSION);
    if (v[1])
        get_exact(c, v[1], "kind", KIND);
    if (v[2])
        validate_metadata(c, v[2], r);
    if (v[3])
        validate_spec(c, v[3], r);
}

static void compute_totals(struct request *r)
{
    r->total_vms = r->total_vcpus = r->total_memory_mib = r->total_disk_gib = 0;
    for (size_t i = 0; i < r->n_vms; i++) {
        const struct request_vm_group *g = &r->vms[i];
        r->total_vms += g->count;
        r->total_vcpus += (int64_t) g->count * g->vcpus;
        r->total_memory_mib += (int64_t) g->count * g->memory_mib;
        r->total_disk_gib += (int64_t) g->count * g->disk_gib;
    }
}

/* ------------------------------------------------------------------ */

void request_free(struct request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_vms; i++) {
        free(r->vms[i].name);
        free(r->vms[i].image);
    }
    free(r->vms);
    free(r->name);
    free(r->department);
    free(r->purpose);
    free(r->lease_until);
    free(r->segment);
    free(r);
}

int request_parse(const char *text, size_t len, const char *filename,
                  struct request **ret_request, struct yg_error **ret_error)
{
    struct parse_ctx c = { .filename = filename };
    _cleanup_(node_freep) struct node *root = NULL;
    _cleanup_(request_freep) struct request *r = NULL;
    int line, column, ret;

    if (!text)
        len = 0;
    if (len > REQUEST_MAX_BYTES) {
        if (filename)
            *ret_error = yg_error_new(413, "too_large", "request '%s' is too large: %zu bytes; "
                                      "the limit is %d bytes", filename, len, REQUEST_MAX_BYTES);
        else
            *ret_error = yg_error_new(413, "too_large", "request is too large: %zu bytes; "
                                      "the limit is %d bytes", len, REQUEST_MAX_BYTES);
        return -EFBIG;
    }

    char *msg;
    if (request_check_text(text, len, &line, &column, &msg) < 0) {
        problem_at(&c, line, column, NULL, "%s", msg);
        free(msg);
        ret = -EINVAL;
        goto fail;
    }

    /* libyaml, told the text is UTF-8, would take a BOM for content. */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        text += 3;
        len -= 3;
    }
    ret = build_tree(&c, text ? text : "", len, &root);
    if (ret < 0)
        goto fail;

    r = xcalloc(1, sizeof *r);
    r->ipv6 = REQUEST_IPV6_PREFERRED;
    validate_root(&c, root, r);
    if (n_found(&c) > 0) {
        ret = -EINVAL;
        goto fail;
    }
    compute_totals(r);
    *ret_request = steal_pointer(&r);
    return 0;

fail:
    if (ret == -ENOMEM) {
        ctx_clear(&c);
        *ret_error = yg_error_new(500, "internal", "out of memory while parsing the request");
        return ret;
    }
    *ret_error = ctx_to_error(&c);
    ctx_clear(&c);
    return ret;
}

json_t *request_to_json(const struct request *r)
{
    json_t *root = json_object();
    json_t *metadata = json_object();
    json_t *spec = json_object();
    json_t *vms = json_array();
    json_t *totals = json_object();

    json_object_set_new(root, "apiVersion", json_string(API_VERSION));
    json_object_set_new(root, "kind", json_string(KIND));
    json_object_set_new(metadata, "name", json_string(r->name));
    json_object_set_new(metadata, "department", json_string(r->department));
    json_object_set_new(root, "metadata", metadata);

    json_object_set_new(spec, "purpose", json_string(r->purpose));
    json_object_set_new(spec, "securityLevel", json_integer(r->security_level));
    json_object_set_new(spec, "lease", json_pack("{s:s}", "until", r->lease_until));
    json_object_set_new(spec, "network", json_pack("{s:s, s:s}", "segment", r->segment,
                                                   "ipv6", request_ipv6_to_string(r->ipv6)));
    for (size_t i = 0; i < r->n_vms; i++) {
        const struct request_vm_group *g = &r->vms[i];
        json_t *vm = json_object();
        json_object_set_new(vm, "name", json_string(g->name));
        json_object_set_new(vm, "count", json_integer(g->count));
        json_object_set_new(vm, "vcpus", json_integer(g->vcpus));
        json_object_set_new(vm, "memory_mib", json_integer(g->memory_mib));
        json_object_set_new(vm, "disk_gib", json_integer(g->disk_gib));
        json_object_set_new(vm, "image", json_string(g->image));
        json_array_append_new(vms, vm);
    }
    json_object_set_new(spec, "vms", vms);
    json_object_set_new(root, "spec", spec);

    json_object_set_new(totals, "vms", json_integer(r->total_vms));
    json_object_set_new(totals, "vcpus", json_integer(r->total_vcpus));
    json_object_set_new(totals, "memory_mib", json_integer(r->total_memory_mib));
    json_object_set_new(totals, "disk_gib", json_integer(r->total_disk_gib));
    json_object_set_new(root, "totals", totals);
    return root;
}

int request_lease_days_from(const struct request *r, int64_t now_epoch_sec)
{
    int y, m, d;
    if (!r->lease_until || request_parse_date(r->lease_until, &y, &m, &d) < 0)
        return 0;
    int64_t today = now_epoch_sec / 86400;
    if (now_epoch_sec % 86400 < 0)
        today--;                /* floor for times before 1970 */
    int64_t days = request_days_from_civil(y, m, d) - today;
    if (days > INT32_MAX)
        return INT32_MAX;
    if (days < INT32_MIN)
        return INT32_MIN;
    return (int) days;
}

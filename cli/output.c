/* Output helpers of the command-line client: JSON printing, display width,
 * sizes, and parsing of command-line values. */
#include <config.h>
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

#include "util.h"

void cli_print_json(const json_t *j)
{
    _cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s)
        puts(s);
}

char *cli_sanitize(const char *s)
{
    char *d = xstrdup(s ? s : "");
    for (unsigned char *p = (unsigned char *) d; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    return d;
}

/* East Asian wide and fullwidth ranges, for when the locale cannot decode
 * UTF-8 (LANG=C) but the terminal very likely does. */
static int wide_codepoint(uint32_t c)
{
    return (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0x303e) ||
           (c >= 0x3041 && c <= 0x33ff) || (c >= 0x3400 && c <= 0x4dbf) ||
           (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xa000 && c <= 0xa4cf) ||
           (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
           (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
           (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
           (c >= 0x20000 && c <= 0x3fffd);
}

static size_t utf8_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *) s;
    while (*p) {
        uint32_t c;
        int n;
        if (*p < 0x80) { c = *p; n = 1; }
        else if ((*p & 0xe0) == 0xc0) { c = *p & 0x1f; n = 2; }
        else if ((*p & 0xf0) == 0xe0) { c = *p & 0x0f; n = 3; }
        else if ((*p & 0xf8) == 0xf0) { c = *p & 0x07; n = 4; }
        else { p++; w++; continue; }
        int i;
        for (i = 1; i < n && (p[i] & 0xc0) == 0x80; i++)
            c = (c << 6) | (p[i] & 0x3f);
        if (i < n) {            /* truncated sequence: one column per byte */
            p += i;
            w += (size_t) i;
            continue;
        }
        p += n;
        if ((c >= 0x300 && c <= 0x36f) || c == 0x200b)  /* combining, zero width */
            continue;
        w += wide_codepoint(c) ? 2 : 1;
    }
    return w;
}

/* Width of one UTF-8 character at p (n bytes long) on a terminal. */
static size_t char_width(const char *p, size_t n)
{
    wchar_t wc;
    mbstate_t st = {0};
    size_t r = mbrtowc(&wc, p, n, &st);
    if (r != (size_t) -1 && r != (size_t) -2 && r > 0) {
        int w = wcwidth(wc);
        return w < 0 ? 1 : (size_t) w;
    }
    _cleanup_free_ char *one = xstrndup(p, n);
    return utf8_width(one);
}

/* Length in bytes of the UTF-8 character at p (1 for a stray byte). */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
             : (*p & 0xf8) == 0xf0 ? 4 : 1;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return i;
    return n;
}

char *cli_truncate(const char *s, size_t max_width)
{
    if (max_width < 2 || cli_display_width(s) <= max_width)
        return xstrdup(s);
    size_t w = 0, i = 0, len = strlen(s);
    while (i < len) {
        size_t n = utf8_len((const unsigned char *) s + i);
        size_t cw = char_width(s + i, n);
        if (w + cw > max_width - 1)
            break;
        w += cw;
        i += n;
    }
    return xasprintf("%.*s…", (int) i, s);
}

size_t cli_display_width(const char *s)
{
    size_t n = mbstowcs(NULL, s, 0);
    if (n == (size_t) -1)
        return utf8_width(s);
    wchar_t *w = xcalloc(n + 1, sizeof *w);
    mbstowcs(w, s, n + 1);
    size_t width = 0;
    for (size_t i = 0; i < n; i++) {
        int cw = wcwidth(w[i]);
        width += cw < 0 ? 1 : (size_t) cw;
    }
    free(w);
    return width;
}

static char *format_units(int64_t value, const char *const *units, size_t n_units)
{
    /* value counted in units[0]; each next unit is 1024 times larger */
    size_t u = 0;
    int64_t v = value;
    while (u + 1 < n_units && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    if (u + 1 < n_units && v >= 1024) {
        /* not a whole number of the next unit: one decimal */
        double d = (double) v / 1024.0;
        u++;
        while (u + 1 < n_units && d >= 1024.0) {
            d /= 1024.0;
            u++;
        }
        return xasprintf("%.1f %s", d, units[u]);
    }
    return xasprintf("%" PRId64 " %s", v, units[u]);
}

char *cli_format_mib(int64_t mib)
{
    static const char *const units[] = { "MiB", "GiB", "TiB", "PiB" };
    if (mib == 0)
        return xstrdup("0 GiB");
    return format_units(mib, units, YG_ARRAY_SIZE(units));
}

char *cli_format_gib(int64_t gib)
{
    static const char *const units[] = { "GiB", "TiB", "PiB" };
    return format_units(gib, units, YG_ARRAY_SIZE(units));
}

char *cli_json_text(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return xstrdup("-");
    if (json_is_string(v))
        return cli_sanitize(*json_string_value(v) ? json_string_value(v) : "-");
    if (json_is_integer(v))
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_true(v))
        return xstrdup("yes");
    if (json_is_false(v))
        return xstrdup("no");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *clean = cli_sanitize(s);
    free(s);
    return clean;
}

json_int_t cli_json_int(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

bool cli_department_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

int cli_parse_uint(const char *s, int64_t max, int64_t *ret)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

int cli_parse_id(const char *s, json_int_t *ret_id)
{
    int64_t v;
    int r = cli_parse_uint(s, INT64_MAX, &v);
    if (r < 0)
        return r;
    if (v == 0)
        return -EINVAL;
    *ret_id = (json_int_t) v;
    return 0;
}

int cli_parse_size_mib(const char *s, int64_t *ret_mib)
{
    static const struct { const char *suffix; int64_t mib; } units[] = {
        { "MiB", 1 }, { "GiB", 1024 }, { "TiB", 1024 * 1024 }, { "PiB", 1024LL * 1024 * 1024 },
    };
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end == '\0') {
        if (v != 0)
            return -EINVAL;     /* a bare number needs a unit, but 0 is 0 */
        *ret_mib = 0;
        return 0;
    }
    for (size_t i = 0; i < YG_ARRAY_SIZE(units); i++) {
        if (streq(end, units[i].suffix)) {
            if (v > INT64_MAX / units[i].mib)
                return -ERANGE;
            *ret_mib = v * units[i].mib;
            return 0;
        }
    }
    return -EINVAL;
}

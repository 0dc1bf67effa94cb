#include <config.h>
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
    fputs("out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        oom();
    return d;
}

char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        oom();
    return d;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        oom();
    va_end(ap);
    return s;
}

void strbuf_init(struct strbuf *sb)
{
    sb->s = NULL;
    sb->len = sb->cap = 0;
}

static void strbuf_reserve(struct strbuf *sb, size_t extra)
{
    if (sb->len + extra + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap * 2 : 256;
        while (cap < sb->len + extra + 1)
            cap *= 2;
        sb->s = xrealloc(sb->s, cap);
        sb->cap = cap;
    }
}

void strbuf_add(struct strbuf *sb, const char *data, size_t n)
{
    strbuf_reserve(sb, n);
    memcpy(sb->s + sb->len, data, n);
    sb->len += n;
    sb->s[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
    strbuf_add(sb, s, strlen(s));
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    strbuf_reserve(sb, (size_t) n);
    va_start(ap, fmt);
    vsnprintf(sb->s + sb->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t) n;
}

char *strbuf_steal(struct strbuf *sb)
{
    char *s = sb->s ? sb->s : xstrdup("");
    strbuf_init(sb);
    return s;
}

void strbuf_free(struct strbuf *sb)
{
    free(sb->s);
    strbuf_init(sb);
}

int read_fd_limited(int fd, size_t max_size, char **ret_data, size_t *ret_len)
{
    struct strbuf sb;
    strbuf_init(&sb);
    char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int r = -errno;
            strbuf_free(&sb);
            return r;
        }
        if (n == 0)
            break;
        if (sb.len + (size_t) n > max_size) {
            strbuf_free(&sb);
            return -EFBIG;
        }
        strbuf_add(&sb, buf, (size_t) n);
    }
    *ret_len = sb.len;
    *ret_data = strbuf_steal(&sb);
    return 0;
}

int read_file_limited(const char *path, size_t max_size, char **ret_data, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = read_fd_limited(fd, max_size, ret_data, ret_len);
    close(fd);
    return r;
}

int read_secret_file(const char *path, size_t max_size, char **ret_data, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    if (st.st_size < 0 || (uint64_t) st.st_size > max_size) {
        close(fd);
        return -EFBIG;
    }
    size_t size = (size_t) st.st_size, len = 0;
    char *data = xmalloc(size + 2);     /* one byte more: a file that grew is seen */
    int r = 0;
    while (len < size + 1) {
        ssize_t n = read(fd, data + len, size + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t) n;
    }
    close(fd);
    if (r == 0 && len != size)
        r = -EAGAIN;
    if (r < 0) {
        explicit_bzero(data, size + 2);
        free(data);
        return r;
    }
    data[len] = '\0';
    *ret_data = data;
    *ret_len = len;
    return 0;
}

void free_secret(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static char *put_digits(char *p, long v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char) ('0' + v % 10);
    return p + width;
}

/* Digits written directly: every VM move, audit entry and request
 * transition stamps the time, and strftime() plus snprintf() cost ten
 * times as much (tests/unit/test-lib.c compares the two). */
void format_utc(const struct timespec *ts, char buf[static 32])
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    long year = tm.tm_year + 1900L;
    if (year < 0 || year > 9999) {
        size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, 32 - n, ".%03ldZ", ts->tv_nsec / 1000000);
        return;
    }
    char *p = put_digits(buf, year, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, ts->tv_nsec / 1000000, 3);
    *p++ = 'Z';
    *p = '\0';
}

void format_utc_now(char buf[static 32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    format_utc(&ts, buf);
}

uint64_t monotonic_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += r;
        n -= (size_t) r;
    }
    return 0;
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof cur);
    }
    return prev[lb];
}

void thread_set_name(const char *fmt, ...)
{
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    name[15] = '\0';
    pthread_setname_np(pthread_self(), name);
}

static void put_u16(struct strbuf *sb, unsigned v)
{
    static const char hex_upper[] = "0123456789ABCDEF";
    char seq[6] = { '\\', 'u', hex_upper[(v >> 12) & 15], hex_upper[(v >> 8) & 15],
                    hex_upper[(v >> 4) & 15], hex_upper[v & 15] };
    strbuf_add(sb, seq, sizeof seq);
}

/* One UTF-8 sequence at S (LEN bytes left): its code point and length, or
 * 0 when it is not valid UTF-8 (overlong, surrogate, beyond U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *ret)
{
    unsigned char c = s[0];
    size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    if (n == 0 || n > len)
        return 0;
    uint32_t cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *ret = cp;
    return n;
}

bool strbuf_put_json_string(struct strbuf *sb, const char *text, size_t len, bool ascii_only)
{
    const unsigned char *s = (const unsigned char *) text;
    strbuf_add(sb, "\"", 1);
    size_t run = 0;     /* start of the bytes copied as they are */
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !ascii_only)) {
            i++;
            continue;
        }
        strbuf_add(sb, text + run, i - run);
        size_t n = 1;
        switch (c) {
        case '"': strbuf_add(sb, "\\\"", 2); break;
        case '\\': strbuf_add(sb, "\\\\", 2); break;
        case '\b': strbuf_add(sb, "\\b", 2); break;
        case '\f': strbuf_add(sb, "\\f", 2); break;
        case '\n': strbuf_add(sb, "\\n", 2); break;
        case '\r': strbuf_add(sb, "\\r", 2); break;
        case '\t': strbuf_add(sb, "\\t", 2); break;
        default: {
            uint32_t cp = c;
            if (c >= 0x80 && (n = utf8_next(s + i, len - i, &cp)) == 0)
                return false;
            if (cp < 0x10000) {
                put_u16(sb, cp);
            } else {
                cp -= 0x10000;
                put_u16(sb, 0xd800 | (cp >> 10));
                put_u16(sb, 0xdc00 | (cp & 0x3ff));
            }
        }
        }
        i += n;
        run = i;
    }
    strbuf_add(sb, text + run, len - run);
    strbuf_add(sb, "\"", 1);
    return true;
}

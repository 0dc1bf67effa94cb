/* Small helpers shared by every program: cleanup attributes, ownership
 * moves, checked allocation.  (systemd's macro.h / libvirt's g_autoptr.) */
#ifndef YG_UTIL_H
#define YG_UTIL_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define YG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Take the value out of *p and leave NULL behind: explicit ownership move. */
#define steal_pointer(pp) \
    ({ __typeof__(*(pp)) steal_tmp_ = *(pp); *(pp) = NULL; steal_tmp_; })

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)        \
    static inline void func##p(type *p) {              \
        if (*p)                                        \
            func(*p);                                  \
    }

static inline void freep(void *p) { free(*(void **) p); }
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)

/* Allocation failure is not recoverable in these programs: abort loudly. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline bool streq_ptr(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Growable string buffer. */
struct strbuf {
    char *s;
    size_t len, cap;
};
void strbuf_init(struct strbuf *sb);
void strbuf_add(struct strbuf *sb, const char *data, size_t n);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *strbuf_steal(struct strbuf *sb);   /* NUL-terminated; buffer reset */
/* TEXT (LEN bytes) as a JSON string, as jansson's json_dumps() writes it:
 * '"', '\\' and controls escaped (\b \f \n \r \t by name, the rest
 * \u00XX, upper-case hex), "/" and DEL as they are.  ASCII_ONLY
 * (JSON_ENSURE_ASCII): every other character as \uXXXX, beyond the BMP a
 * surrogate pair; false when TEXT is not UTF-8 (SB then holds a part).
 * Otherwise bytes from 0x80 up are copied as they are. */
bool strbuf_put_json_string(struct strbuf *sb, const char *text, size_t len, bool ascii_only);
void strbuf_free(struct strbuf *sb);

/* Read a whole file, refusing more than max_size bytes.  0 or -errno
 * (-EFBIG when larger than max_size). */
int read_file_limited(const char *path, size_t max_size, char **ret_data, size_t *ret_len);
/* The same for an open descriptor (stdin), read to its end. */
int read_fd_limited(int fd, size_t max_size, char **ret_data, size_t *ret_len);
/* A secret file (a TLS private key) read whole into one buffer of its
 * size, so that no copy of it is left behind: no stack buffer, no buffers
 * outgrown on the way (read_file_limited() leaves both).  Release it with
 * free_secret().  0 or -errno (-EFBIG when larger than max_size, -EAGAIN
 * when it changed size while read). */
int read_secret_file(const char *path, size_t max_size, char **ret_data, size_t *ret_len);
/* Overwrite the NUL-terminated S (explicit_bzero: not optimised away) and
 * free it.  NULL is fine. */
void free_secret(char *s);
static inline void free_secretp(char **p) { free_secret(*p); }
#define _cleanup_free_secret_ _cleanup_(free_secretp)

/* Name the calling thread (printf format; the kernel keeps 15 bytes), so
 * that top -H, ps -L and /proc/PID/task/TID/comm say which thread uses the
 * CPU: yg-store (the writer), yg-hv:HOST, yg-events, yg-engine, ... */
void thread_set_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall clock as RFC 3339 UTC text "2026-11-25T23:30:43.123Z" into buf[32]. */
void format_utc_now(char buf[static 32]);
/* The same for the time TS. */
void format_utc(const struct timespec *ts, char buf[static 32]);
/* Monotonic clock in microseconds. */
uint64_t monotonic_usec(void);

/* Fill buf with random bytes from the kernel.  0 or -errno. */
int random_bytes(void *buf, size_t n);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);

/* Levenshtein distance, for "did you mean" hints. */
size_t edit_distance(const char *a, const char *b);

#endif

#include <config.h>
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define SEQ_DIGITS 20
#define SPOOL_SUFFIX ".json"

struct spool_entry {
    uint64_t seq;
    uint64_t size;
};

struct spool {
    int state_fd;               /* STATE_DIR */
    int spool_fd;               /* STATE_DIR/spool */
    char *spool_dir;            /* its path, for reading */
    uint64_t last_seq;
    uint64_t max_bytes;
    uint64_t bytes;
    struct spool_entry *entries;        /* ascending seq */
    size_t n, cap;
};

static inline void closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

static inline void closedirp(DIR **d)
{
    if (*d)
        closedir(*d);
}

void spool_free(struct spool *s)
{
    if (!s)
        return;
    if (s->state_fd >= 0)
        close(s->state_fd);
    if (s->spool_fd >= 0)
        close(s->spool_fd);
    free(s->entries);
    free(s->spool_dir);
    free(s);
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

/* Write NAME in the directory atomically and durably. */
static int write_file_atomic(int dirfd, const char *name, const char *data, size_t len)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int r = write_all(fd, data, len);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
        r = -errno;
    if (r < 0) {
        unlinkat(dirfd, tmp, 0);
        return r;
    }
    return fsync(dirfd) < 0 ? -errno : 0;
}

static void entry_name(uint64_t seq, char buf[static 32])
{
    snprintf(buf, 32, "%0*" PRIu64 SPOOL_SUFFIX, SEQ_DIGITS, seq);
}

/* seq from "00000000000000000042.json"; false for any other name. */
static bool parse_entry_name(const char *name, uint64_t *ret)
{
    if (strlen(name) != SEQ_DIGITS + strlen(SPOOL_SUFFIX) || !streq(name + SEQ_DIGITS, SPOOL_SUFFIX))
        return false;
    uint64_t v = 0;
    for (int i = 0; i < SEQ_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        uint64_t d = (uint64_t) (name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *ret = v;
    return true;
}

static int compare_entries(const void *a, const void *b)
{
    const struct spool_entry *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int read_seq_file(int dirfd, uint64_t *ret)
{
    _cleanup_(closep) int fd = openat(dirfd, "seq", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? (*ret = 0, 0) : -errno;
    char buf[32];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n < 0)
        return -errno;
    buf[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf || (*end && *end != '\n'))
        return -EBADMSG;
    *ret = v;
    return 0;
}

static int ensure_dir(int dirfd, const char *path)
{
    if (mkdirat(dirfd, path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int spool_open(const char *state_dir, uint64_t max_bytes, struct spool **ret)
{
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    _cleanup_(spool_freep) struct spool *s = xcalloc(1, sizeof *s);
    s->spool_fd = -1;
    s->max_bytes = max_bytes ? max_bytes : SPOOL_DEFAULT_MAX_BYTES;
    s->state_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->state_fd < 0)
        return -errno;
    int r = ensure_dir(s->state_fd, "spool");
    if (r < 0)
        return r;
    s->spool_fd = openat(s->state_fd, "spool", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->spool_fd < 0)
        return -errno;
    s->spool_dir = xasprintf("%s/spool", state_dir);
    r = read_seq_file(s->state_fd, &s->last_seq);
    if (r < 0)
        return r;

    int dfd = dup(s->spool_fd);
    if (dfd < 0)
        return -errno;
    _cleanup_(closedirp) DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t seq;
        size_t nl = strlen(de->d_name);
        if (nl > 4 && streq(de->d_name + nl - 4, ".tmp")) {
            unlinkat(s->spool_fd, de->d_name, 0);      /* left by a crash mid-write */
            continue;
        }
        if (!parse_entry_name(de->d_name, &seq))
            continue;
        struct stat st;
        if (fstatat(s->spool_fd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 16;
            s->entries = xrealloc(s->entries, s->cap * sizeof *s->entries);
        }
        s->entries[s->n++] = (struct spool_entry) { .seq = seq, .size = (uint64_t) st.st_size };
        s->bytes += (uint64_t) st.st_size;
    }
    if (s->n)
        qsort(s->entries, s->n, sizeof *s->entries, compare_entries);
    if (s->n && s->entries[s->n - 1].seq > s->last_seq)
        s->last_seq = s->entries[s->n - 1].seq;
    *ret = steal_pointer(&s);
    return 0;
}

static int store_seq(struct spool *s, uint64_t seq)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", seq);
    return write_file_atomic(s->state_fd, "seq", buf, (size_t) n);
}

int spool_next_seq(struct spool *s, uint64_t *ret_seq)
{
    uint64_t seq = s->last_seq + 1;
    int r = store_seq(s, seq);
    if (r < 0)
        return r;
    s->last_seq = seq;
    *ret_seq = seq;
    return 0;
}

uint64_t spool_last_seq(const struct spool *s)
{
    return s->last_seq;
}

int spool_raise_seq(struct spool *s, uint64_t floor)
{
    if (floor <= s->last_seq)
        return 0;
    int r = store_seq(s, floor);
    if (r < 0)
        return r;
    s->last_seq = floor;
    return 0;
}

size_t spool_count(const struct spool *s)
{
    return s->n;
}

uint64_t spool_bytes(const struct spool *s)
{
    return s->bytes;
}

static int remove_at(struct spool *s, size_t i)
{
    char name[32];
    entry_name(s->entries[i].seq, name);
    if (unlinkat(s->spool_fd, name, 0) < 0 && errno != ENOENT)
        return -errno;
    s->bytes -= s->entries[i].size;
    memmove(&s->entries[i], &s->entries[i + 1], (s->n - i - 1) * sizeof *s->entries);
    s->n--;
    return 0;
}

int spool_add(struct spool *s, uint64_t seq, const char *body, size_t len, bool replace_last,
              size_t *ret_dropped)
{
    if (len > s->max_bytes)
        return -EFBIG;
    if (s->n && seq <= s->entries[s->n - 1].seq)
        return -EINVAL;
    char name[32];
    entry_name(seq, name);
    int r = write_file_atomic(s->spool_fd, name, body, len);
    if (r < 0)
        return r;
    if (replace_last && s->n) {
        r = remove_at(s, s->n - 1);
        if (r < 0)
            return r;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->entries = xrealloc(s->entries, s->cap * sizeof *s->entries);
    }
    s->entries[s->n++] = (struct spool_entry) { .seq = seq, .size = len };
    s->bytes += len;
    if (seq > s->last_seq)
        s->last_seq = seq;

    size_t dropped = 0;
    while (s->bytes > s->max_bytes && s->n > 1) {
        r = remove_at(s, 0);
        if (r < 0)
            return r;
        dropped++;
    }
    if (ret_dropped)
        *ret_dropped = dropped;
    return 0;
}

int spool_peek(struct spool *s, uint64_t *ret_seq, char **ret_body, size_t *ret_len)
{
    if (s->n == 0)
        return -ENOENT;
    char name[32];
    entry_name(s->entries[0].seq, name);
    _cleanup_free_ char *path = xasprintf("%s/%s", s->spool_dir, name);
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(path, s->max_bytes, &data, &len);
    if (r < 0)
        return r;
    *ret_seq = s->entries[0].seq;
    *ret_body = steal_pointer(&data);
    *ret_len = len;
    return 0;
}

int spool_remove(struct spool *s, uint64_t seq)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->entries[i].seq == seq)
            return remove_at(s, i);
    return -ENOENT;
}

int spool_remove_oldest(struct spool *s)
{
    return s->n ? remove_at(s, 0) : -ENOENT;
}

uint64_t spool_backoff_deadline(uint64_t now_ms, unsigned attempt, uint64_t base_ms,
                                uint64_t max_ms, unsigned jitter_permille)
{
    uint64_t d = base_ms ? base_ms : 1;
    for (unsigned i = 0; i < attempt && d < max_ms; i++)
        d = d > max_ms / 2 ? max_ms : d * 2;
    if (d > max_ms)
        d = max_ms;
    if (jitter_permille > 1000)
        jitter_permille = 1000;
    uint64_t half = d / 2, spread = d - half;
    /* spread * jitter / 1000 without overflowing. */
    return now_ms + half + spread / 1000 * jitter_permille + spread % 1000 * jitter_permille / 1000;
}

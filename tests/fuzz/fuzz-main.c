/* Without libFuzzer (a normal build): replay a seed corpus through
 * LLVMFuzzerTestOneInput so "make check" keeps every crash found once as a
 * regression test (systemd does the same).
 * Usage: fuzz-TARGET [FILE-OR-DIR...]; without arguments the target's corpus,
 * $top_srcdir/FUZZ_CORPUS. */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(path, 16 * 1024 * 1024, &data, &len);
    if (r < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(-r));
        return -1;
    }
    /* An exact-size copy, as libFuzzer gives, so overreads are caught. */
    _cleanup_free_ uint8_t *copy = xmalloc(len ? len : 1);
    memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    return 0;
}

static int not_hidden(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

static int run_path(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return run_file(path);
    }
    struct dirent **list;
    int n = scandir(path, &list, not_hidden, alphasort);
    if (n < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    int r = 0;
    for (int i = 0; i < n; i++) {
        _cleanup_free_ char *p = xasprintf("%s/%s", path, list[i]->d_name);
        if (run_path(p, count) < 0)
            r = -1;
        free(list[i]);
    }
    free(list);
    return r;
}

int main(int argc, char **argv)
{
    int count = 0, r = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (run_path(argv[i], &count) < 0)
                r = -1;
    } else {
        const char *top = getenv("top_srcdir");
        _cleanup_free_ char *dir = xasprintf("%s/%s", top ? top : ".", FUZZ_CORPUS);
        r = run_path(dir, &count);
    }
    if (r < 0)
        return 99;
    if (count == 0) {
        fprintf(stderr, "no inputs\n");
        return 99;
    }
    printf("%d inputs replayed without a crash\n", count);
    return 0;
}

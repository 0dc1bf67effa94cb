/* The golden-file runner (golden.h). */
#include <config.h>
#include "golden.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define INPUT_MAX (1024 * 1024)    /* larger than any loader's limit on purpose */

static bool regenerate;

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && streq(s + n - m, suffix);
}

/* The loader's output for one input file. */
static char *run_file(const struct golden_suite *suite, const char *path, const char *label,
                      bool *ret_valid)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = read_file_limited(path, INPUT_MAX, &text, &len);
    if (r < 0) {
        *ret_valid = false;
        return xasprintf("cannot read %s: %s\n", path, strerror(-r));
    }
    return suite->run(text, len, label, ret_valid);
}

/* Split into lines (without their newlines); *ret_n lines. */
static char **split_lines(const char *s, size_t *ret_n)
{
    size_t n = 0, cap = 16;
    char **lines = xmalloc(cap * sizeof *lines);
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t) (nl - s) : strlen(s);
        if (n == cap)
            lines = xrealloc(lines, (cap *= 2) * sizeof *lines);
        lines[n++] = xstrndup(s, len);
        s += len + (nl != NULL);
    }
    *ret_n = n;
    return lines;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* A line diff (longest common subsequence): "-" expected, "+" got, with one
 * line of context around each change. */
static void print_diff(const char *expected, const char *got)
{
    size_t na, nb;
    char **a = split_lines(expected, &na), **b = split_lines(got, &nb);
    size_t w = nb + 1;
    size_t *lcs = xcalloc((na + 1) * w, sizeof *lcs);
    for (size_t i = na; i-- > 0;)
        for (size_t j = nb; j-- > 0;)
            lcs[i * w + j] = streq(a[i], b[j]) ? lcs[(i + 1) * w + j + 1] + 1
                           : lcs[(i + 1) * w + j] > lcs[i * w + j + 1] ? lcs[(i + 1) * w + j]
                           : lcs[i * w + j + 1];
    size_t i = 0, j = 0;
    bool prev_changed = false;
    while (i < na || j < nb) {
        if (i < na && j < nb && streq(a[i], b[j])) {
            bool next_changed = (i + 1 < na || j + 1 < nb) &&
                                !(i + 1 < na && j + 1 < nb && streq(a[i + 1], b[j + 1]));
            if (prev_changed || next_changed)
                printf("    %s\n", a[i]);
            prev_changed = false;
            i++, j++;
        } else if (i < na && (j == nb || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
            printf("  - %s\n", a[i++]);
            prev_changed = true;
        } else {
            printf("  + %s\n", b[j++]);
            prev_changed = true;
        }
    }
    free(lcs);
    free_lines(a, na);
    free_lines(b, nb);
}

static int write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fputs(data, f);
    if (fclose(f) != 0)
        return -errno;
    return 0;
}

/* One golden case; true when it passed. */
static bool check_case(const struct golden_suite *suite, const char *dir, const char *file)
{
    bool json_input = has_suffix(file, ".input.json");
    size_t stem_len = strlen(file) - strlen(json_input ? ".input.json" : ".yaml");
    _cleanup_free_ char *name = xstrndup(file, stem_len);
    _cleanup_free_ char *input = xasprintf("%s/%s", dir, file);
    _cleanup_free_ char *exp_json = xasprintf("%s/%s.json", dir, name);
    _cleanup_free_ char *exp_err = xasprintf("%s/%s.err", dir, name);
    bool valid;
    _cleanup_free_ char *got = run_file(suite, input, file, &valid);

    if (regenerate) {
        const char *target = valid ? exp_json : exp_err, *other = valid ? exp_err : exp_json;
        int r = write_file(target, got);
        if (r < 0) {
            printf("FAIL %s\n  cannot write %s: %s\n", name, target, strerror(-r));
            return false;
        }
        unlink(other);
        printf("ok %s (regenerated %s)\n", name, strrchr(target, '/') + 1);
        return true;
    }

    _cleanup_free_ char *expected = NULL;
    size_t len;
    bool have_json = access(exp_json, F_OK) == 0, have_err = access(exp_err, F_OK) == 0;
    if (have_json && have_err) {
        printf("FAIL %s\n  both %s.json and %s.err exist; keep one\n", name, name, name);
        return false;
    }
    if (!have_json && !have_err) {
        printf("FAIL %s\n  no %s.json or %s.err (YG_REGENERATE=1 writes one); output was:\n",
               name, name, name);
        print_diff("", got);
        return false;
    }
    if (have_json != valid) {
        printf("FAIL %s\n  expected the %s to be %s, but it was %s:\n", name, suite->what,
               have_json ? "valid" : "refused", valid ? "accepted" : "refused");
        print_diff("", got);
        return false;
    }
    const char *exp_path = have_json ? exp_json : exp_err;
    int r = read_file_limited(exp_path, INPUT_MAX, &expected, &len);
    if (r < 0) {
        printf("FAIL %s\n  cannot read %s: %s\n", name, exp_path, strerror(-r));
        return false;
    }
    if (!streq(expected, got)) {
        printf("FAIL %s\n  output differs from %s (- expected, + got):\n", name,
               strrchr(exp_path, '/') + 1);
        print_diff(expected, got);
        return false;
    }
    printf("ok %s\n", name);
    return true;
}

static int select_input(const struct dirent *d)
{
    return has_suffix(d->d_name, ".yaml") || has_suffix(d->d_name, ".input.json");
}

static int select_yaml(const struct dirent *d)
{
    return has_suffix(d->d_name, ".yaml");
}

/* Every shipped sample must be valid (and give EXPECTED_DIR/NAME.json). */
static bool check_sample(const struct golden_suite *suite, const char *path, const char *file,
                         const char *expected_dir)
{
    bool valid;
    _cleanup_free_ char *got = run_file(suite, path, file, &valid);
    if (!valid) {
        printf("FAIL sample %s\n", file);
        print_diff("", got);
        return false;
    }
    if (expected_dir) {
        _cleanup_free_ char *stem = xstrndup(file, strlen(file) - strlen(".yaml"));
        _cleanup_free_ char *exp_path = xasprintf("%s/%s.json", expected_dir, stem);
        _cleanup_free_ char *expected = NULL;
        size_t len;
        if (regenerate) {
            int r = write_file(exp_path, got);
            if (r < 0) {
                printf("FAIL sample %s\n  cannot write %s: %s\n", file, exp_path, strerror(-r));
                return false;
            }
            printf("ok sample %s (regenerated %s.json)\n", file, stem);
            return true;
        }
        int r = read_file_limited(exp_path, INPUT_MAX, &expected, &len);
        if (r < 0) {
            printf("FAIL sample %s\n  cannot read %s: %s (YG_REGENERATE=1 writes it)\n", file,
                   exp_path, strerror(-r));
            return false;
        }
        if (!streq(expected, got)) {
            printf("FAIL sample %s\n  output differs from %s.json (- expected, + got):\n", file,
                   stem);
            print_diff(expected, got);
            return false;
        }
    }
    printf("ok sample %s\n", file);
    return true;
}

/* The samples: one file, or every *.yaml of a directory.  Adds to the counts. */
static void check_samples(const struct golden_suite *suite, const char *samples,
                          const char *expected_dir, int *passed, int *failed)
{
    struct stat st;
    if (stat(samples, &st) == 0 && !S_ISDIR(st.st_mode)) {
        const char *slash = strrchr(samples, '/');
        if (check_sample(suite, samples, slash ? slash + 1 : samples, expected_dir))
            (*passed)++;
        else
            (*failed)++;
        return;
    }
    struct dirent **list;
    int n = scandir(samples, &list, select_yaml, alphasort);
    if (n < 0) {
        printf("FAIL samples\n  cannot read %s: %s\n", samples, strerror(errno));
        (*failed)++;
        return;
    }
    for (int i = 0; i < n; i++) {
        _cleanup_free_ char *path = xasprintf("%s/%s", samples, list[i]->d_name);
        if (check_sample(suite, path, list[i]->d_name, expected_dir))
            (*passed)++;
        else
            (*failed)++;
        free(list[i]);
    }
    free(list);
}

int golden_main(const struct golden_suite *suite, int argc, char **argv)
{
    const char *top = getenv("top_srcdir");
    _cleanup_free_ char *case_dir = argc > 1 ? xstrdup(argv[1])
        : xasprintf("%s/%s", top ? top : ".", suite->case_dir);
    _cleanup_free_ char *samples = argc > 2 ? xstrdup(argv[2])
        : xasprintf("%s/%s", top ? top : ".", suite->samples);
    const char *regen = getenv("YG_REGENERATE");
    regenerate = regen && streq(regen, "1");

    struct dirent **list;
    int n = scandir(case_dir, &list, select_input, alphasort);
    if (n < 0) {
        fprintf(stderr, "%s: cannot read %s: %s\n", suite->program, case_dir, strerror(errno));
        return 99;
    }
    if (n == 0) {
        fprintf(stderr, "%s: no cases in %s\n", suite->program, case_dir);
        free(list);
        return 99;
    }
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        if (check_case(suite, case_dir, list[i]->d_name))
            passed++;
        else
            failed++;
        free(list[i]);
    }
    free(list);

    _cleanup_free_ char *expected_dir = suite->samples_expected
        ? xasprintf("%s/%s", top ? top : ".", suite->samples_expected) : NULL;
    check_samples(suite, samples, expected_dir, &passed, &failed);

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* The golden-file runner shared by the loaders' golden suites (libvirt's
 * xml2xml style).
 *
 * For every CASE-DIR/NAME.yaml or NAME.input.json, the suite's run function
 * parses it and gives its output, which is compared with the expected file
 * next to it:
 *   NAME.json  the document is valid: its canonical JSON dumped with
 *              JSON_INDENT(2) | JSON_PRESERVE_ORDER, then a newline;
 *   NAME.err   it is not: yg_error_format(err, "NAME.yaml"), then a newline.
 * Then every shipped sample (a *.yaml file, or every *.yaml of a directory)
 * must be valid; with samples_expected, its output must also equal
 * SAMPLES-EXPECTED/NAME.json (regenerated like the cases).
 *
 * Prints "ok NAME" or "FAIL NAME" plus a diff per case and a summary line;
 * exits 1 when anything failed.  YG_REGENERATE=1 rewrites the expected files
 * from the current output instead (review the diff before committing).
 *
 * Usage: PROGRAM [CASE-DIR [SAMPLES]]; the defaults are found through
 * $top_srcdir (set by "make check"), else ".". */
#ifndef YG_GOLDEN_H
#define YG_GOLDEN_H 1

#include <stdbool.h>
#include <stddef.h>

/* Parse TEXT (LEN bytes; LABEL names it in messages) and return the text an
 * expected file holds, with its final newline; *ret_valid tells which kind. */
typedef char *(*golden_run_fn)(const char *text, size_t len, const char *label,
                               bool *ret_valid);

struct golden_suite {
    const char *program;        /* "golden-requests", for messages */
    const char *what;           /* "request": "expected the request to be valid" */
    const char *case_dir;       /* relative to $top_srcdir: "tests/golden/requests" */
    const char *samples;        /* a directory or a file, relative to $top_srcdir */
    const char *samples_expected;   /* optional directory, relative to $top_srcdir */
    golden_run_fn run;
};

int golden_main(const struct golden_suite *suite, int argc, char **argv);

#endif

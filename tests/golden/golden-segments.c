/* Golden tests for the segment list loader: tests/golden/segments/NAME.yaml
 * or NAME.input.json → NAME.json (segment_list_to_json) or NAME.err (the
 * exact line:column messages); then contrib/segments.yaml must parse.  The
 * runner is tests/golden/golden.c (golden.h explains it).
 *
 * Usage: golden-segments [CASE-DIR [SAMPLE]]. */
#include <config.h>

#include <stdio.h>

#include "error.h"
#include "golden.h"
#include "segments.h"
#include "util.h"

static char *run_segments(const char *text, size_t len, const char *label, bool *ret_valid)
{
    struct segment_list *l = NULL;
    struct yg_error *err = NULL;
    if (segment_list_parse(text, len, label, &l, &err) == 0) {
        json_t *j = segment_list_to_json(l);
        char *dump = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        char *out = xasprintf("%s\n", dump);
        free(dump);
        json_decref(j);
        segment_list_free(l);
        *ret_valid = true;
        return out;
    }
    _cleanup_free_ char *msg = yg_error_format(err, label);
    yg_error_free(err);
    *ret_valid = false;
    return xasprintf("%s\n", msg);
}

int main(int argc, char **argv)
{
    static const struct golden_suite suite = {
        .program = "golden-segments",
        .what = "segment list",
        .case_dir = "tests/golden/segments",
        .samples = "contrib/segments.yaml",
        .run = run_segments,
    };
    return golden_main(&suite, argc, argv);
}

/* Golden tests for the request loader: tests/golden/requests/NAME.yaml or
 * NAME.input.json → NAME.json (request_to_json) or NAME.err (the exact
 * line:column messages); then every contrib/requests/ *.yaml sample must
 * parse.  The runner is tests/golden/golden.c (golden.h explains it).
 *
 * Usage: golden-requests [CASE-DIR [SAMPLE-DIR]]. */
#include <config.h>

#include <stdio.h>

#include "error.h"
#include "golden.h"
#include "request.h"
#include "util.h"

static char *run_request(const char *text, size_t len, const char *label, bool *ret_valid)
{
    struct request *req = NULL;
    struct yg_error *err = NULL;
    if (request_parse(text, len, label, &req, &err) == 0) {
        json_t *j = request_to_json(req);
        char *dump = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        char *out = xasprintf("%s\n", dump);
        free(dump);
        json_decref(j);
        request_free(req);
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
        .program = "golden-requests",
        .what = "request",
        .case_dir = "tests/golden/requests",
        .samples = "contrib/requests",
        .run = run_request,
    };
    return golden_main(&suite, argc, argv);
}

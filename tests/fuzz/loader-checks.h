/* What every loader of user-written documents promises about its error
 * (request, segment list, playbook), checked by their fuzz targets: a 422
 * has 1..MAX_DETAILS details, each with line and column and valid UTF-8
 * text; otherwise it is a 413; the error formats as text and as JSON.
 * Any broken promise aborts, which libFuzzer reports as a crash. */
#ifndef YG_FUZZ_LOADER_H
#define YG_FUZZ_LOADER_H 1

#include <stdlib.h>
#include <jansson.h>

#include "error.h"

static inline void fuzz_check_loader_error(const struct yg_error *e, size_t max_details)
{
    if (e->http_status == 422) {
        if (e->n_details < 1 || e->n_details > max_details)
            abort();
        for (size_t i = 0; i < e->n_details; i++) {
            const struct yg_error_detail *d = &e->details[i];
            if (d->line < 1 || d->column < 1 || !d->message)
                abort();
            json_t *m = json_string(d->message);     /* NULL unless valid UTF-8 */
            json_t *p = d->path ? json_string(d->path) : json_null();
            if (!m || !p)
                abort();
            json_decref(m);
            json_decref(p);
        }
    } else if (e->http_status != 413) {
        abort();
    }
    char *text = yg_error_format(e, "fuzz.yaml");
    json_t *j = yg_error_to_json(e);
    char *s = json_dumps(j, 0);
    if (!text || !s)
        abort();
    free(s);
    free(text);
    json_decref(j);
}

#endif

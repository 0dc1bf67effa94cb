/* User-facing error object (libvirt's virError, systemd's log_syntax):
 * a stable code, one sentence, and for input errors the places at fault.
 * The API turns it into {"error":{code,message,details:[...]}}, the CLI
 * into one line per place. */
#ifndef YG_ERROR_H
#define YG_ERROR_H 1

#include <stddef.h>
#include <jansson.h>

struct yg_error_detail {
    int line;          /* 1-based; 0 when not tied to a place in input */
    int column;        /* 1-based; 0 when unknown */
    char *path;        /* field path like "spec.vms[1].memory"; may be NULL */
    char *message;
};

struct yg_error {
    int http_status;   /* 400, 401, 403, 404, 409, 413, 422, 500 ... */
    char *code;        /* stable machine code: "invalid_request", "quota_exceeded" */
    char *message;     /* one human sentence */
    struct yg_error_detail *details;
    size_t n_details;
};

struct yg_error *yg_error_new(int http_status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void yg_error_add_detail(struct yg_error *e, int line, int column, const char *path,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void yg_error_free(struct yg_error *e);
static inline void yg_error_freep(struct yg_error **e) { yg_error_free(*e); }

/* {"error": {"code":…, "message":…, "details":[{line,column,path,message}]}} */
json_t *yg_error_to_json(const struct yg_error *e);
/* Parse that JSON back (the CLI); NULL when it does not have that shape. */
struct yg_error *yg_error_from_json(json_t *root, int http_status);

/* Human text: one line per detail as "FILE:LINE:COLUMN: PATH: MESSAGE",
 * or the message alone when there are no details.  FILE may be NULL. */
char *yg_error_format(const struct yg_error *e, const char *filename);

#endif

/* A small libcurl wrapper for talking to yunguand: one method, path, headers
 * and body in, status, headers and body out; plus a JSON helper that turns
 * the API's error bodies into struct yg_error (doc/API.md).
 *
 * Every call has a connect timeout and a total timeout, follows no
 * redirects, speaks only http/https and caps the size of the answer. */
#ifndef YG_HTTP_CLIENT_H
#define YG_HTTP_CLIENT_H 1

#include <stddef.h>
#include <jansson.h>

#include "error.h"

#define HTTP_CLIENT_CONNECT_TIMEOUT_MS   5000
#define HTTP_CLIENT_TOTAL_TIMEOUT_MS     60000
#define HTTP_CLIENT_MAX_RESPONSE_BYTES   (64u * 1024 * 1024)

/* Codes of the errors made on this side (http_status 0, or the status of
 * an answer that is not the API's). */
#define HTTP_CLIENT_E_UNREACHABLE  "unreachable"    /* connect / resolve failed */
#define HTTP_CLIENT_E_TIMEOUT      "timeout"
#define HTTP_CLIENT_E_TRANSPORT    "transport"      /* failed after connecting */
#define HTTP_CLIENT_E_BAD_RESPONSE "bad_response"   /* not the API's JSON */

struct http_client;

struct http_request {
    const char *method;             /* "GET", "POST", "PUT", "DELETE" */
    const char *path;               /* appended to the base URL: "/api/v1/requests?limit=5" */
    const char *content_type;       /* NULL when there is no body */
    const char *body;
    size_t body_len;
    const char *const *headers;     /* extra "Name: value" lines, NULL-terminated; may be NULL */
};

struct http_header {
    char *name;
    char *value;
};

struct http_response {
    long status;
    char *body;                     /* NUL-terminated for convenience */
    size_t body_len;
    char *content_type;             /* may be NULL */
    struct http_header *headers;    /* of the final answer only */
    size_t n_headers;
};

/* base_url: "http://127.0.0.1:8470" (a trailing '/' is dropped).  NULL when
 * libcurl cannot be initialised. */
struct http_client *http_client_new(const char *base_url);
void http_client_free(struct http_client *c);
static inline void http_client_freep(struct http_client **c) { http_client_free(*c); }

const char *http_client_base_url(const struct http_client *c);
/* For an https:// controller: the PEM file of the CA (or the certificate)
 * its certificate must chain to, instead of the system's CA bundle.  The
 * certificate and its name are always checked.  NULL: the system bundle. */
void http_client_set_ca_file(struct http_client *c, const char *path);
/* Sent as "Authorization: Bearer TOKEN" with every request; NULL for none. */
void http_client_set_token(struct http_client *c, const char *token);
void http_client_set_timeouts(struct http_client *c, long connect_ms, long total_ms);
/* CANCEL is polled during each transfer (about once a second, and as data
 * moves); when it returns non-zero the transfer ends at once with a
 * transport error.  For a thread that long-polls and must stop promptly.
 * NULL: none. */
void http_client_set_cancel(struct http_client *c, int (*cancel)(void *userdata), void *userdata);

/* Perform one request.  0 and *ret_response for any HTTP status; on a
 * transport failure a negative errno-style value and *ret_error (with
 * http_status 0 and one of the HTTP_CLIENT_E_* codes). */
int http_client_send(struct http_client *c, const struct http_request *req,
                     struct http_response **ret_response, struct yg_error **ret_error);

/* Perform one request and decode the JSON answer.  2xx: 0 and *ret_json
 * (an empty body gives an empty object).  Otherwise -1 and *ret_error: the
 * API's error body through yg_error_from_json(), or an error made here when
 * the answer is not the API's.  ret_response, when not NULL, receives the
 * raw answer whenever there was one (also on error). */
int http_client_send_json(struct http_client *c, const struct http_request *req,
                          json_t **ret_json, struct http_response **ret_response,
                          struct yg_error **ret_error);

void http_response_free(struct http_response *r);
static inline void http_response_freep(struct http_response **r) { http_response_free(*r); }
/* Value of the first header with that name (case-insensitive), or NULL. */
const char *http_response_header(const struct http_response *r, const char *name);

/* Percent-encode everything but RFC 3986 unreserved characters, for query
 * values and path segments. */
char *http_escape(const char *s);

#endif

#include <config.h>
#include "http-client.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <curl/curl.h>

#include "util.h"

struct http_client {
    CURL *curl;
    char *base_url;
    char *auth_header;              /* "Authorization: Bearer …" or NULL */
    char *ca_file;                  /* NULL: libcurl's (the system's) CA bundle */
    long connect_ms, total_ms;
    int (*cancel)(void *userdata);  /* non-zero: abort the transfer */
    void *cancel_userdata;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

/* libcurl initialises libssh2 (for scp:// and sftp://), and libssh2 then
 * initialises OpenSSL's libcrypto: 1.3 MB of the agent's resident memory
 * for protocols we never use (TLS is GnuTLS's, initialised apart).
 * libssh2_init() counts its callers and sets up crypto only for the first,
 * so a first call that asks for no crypto (LIBSSH2_INIT_NO_CRYPTO, 1 in
 * libssh2.h) leaves it out.  Looked up at run time: libcurl may be built
 * without libssh2, and then there is nothing to do. */
static void libssh2_skip_crypto(void)
{
    int (*ssh2_init)(int flags) = (int (*)(int)) dlsym(RTLD_DEFAULT, "libssh2_init");
    if (ssh2_init)
        (void) ssh2_init(1 /* LIBSSH2_INIT_NO_CRYPTO */);
}

static void curl_init_once(void)
{
    libssh2_skip_crypto();
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http_client *http_client_new(const char *base_url)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return NULL;
    CURL *curl = curl_easy_init();
    if (!curl)
        return NULL;
    struct http_client *c = xcalloc(1, sizeof *c);
    c->curl = curl;
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    c->base_url = xstrndup(base_url, n);
    c->connect_ms = HTTP_CLIENT_CONNECT_TIMEOUT_MS;
    c->total_ms = HTTP_CLIENT_TOTAL_TIMEOUT_MS;
    return c;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->auth_header) {
        explicit_bzero(c->auth_header, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c->base_url);
    free(c->ca_file);
    free(c);
}

void http_client_set_ca_file(struct http_client *c, const char *path)
{
    free(c->ca_file);
    c->ca_file = path ? xstrdup(path) : NULL;
}

const char *http_client_base_url(const struct http_client *c)
{
    return c->base_url;
}

void http_client_set_token(struct http_client *c, const char *token)
{
    if (c->auth_header) {
        explicit_bzero(c->auth_header, strlen(c->auth_header));
        free(c->auth_header);
    }
    c->auth_header = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
}

void http_client_set_timeouts(struct http_client *c, long connect_ms, long total_ms)
{
    c->connect_ms = connect_ms;
    c->total_ms = total_ms;
}

void http_response_free(struct http_response *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    free(r->content_type);
    free(r);
}

const char *http_response_header(const struct http_response *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

char *http_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct strbuf sb;
    strbuf_init(&sb);
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            strbuf_add(&sb, (const char *) p, 1);
        } else {
            char enc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            strbuf_add(&sb, enc, 3);
        }
    }
    return strbuf_steal(&sb);
}

/* What the callbacks collect while a transfer runs. */
struct transfer {
    struct strbuf body;
    bool too_large;
    struct http_header *headers;
    size_t n_headers;
};

static void transfer_clear_headers(struct transfer *t)
{
    for (size_t i = 0; i < t->n_headers; i++) {
        free(t->headers[i].name);
        free(t->headers[i].value);
    }
    free(t->headers);
    t->headers = NULL;
    t->n_headers = 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;
    if (t->body.len + n > HTTP_CLIENT_MAX_RESPONSE_BYTES) {
        t->too_large = true;
        return 0;                   /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    strbuf_add(&t->body, data, n);
    return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    struct transfer *t = userdata;
    size_t n = size * nmemb;
    /* A status line starts the headers of a new answer (after a 100
     * Continue, say): keep only the last answer's. */
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        transfer_clear_headers(t);
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon || t->n_headers >= 200)
        return n;
    const char *v = colon + 1, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    t->headers = xrealloc(t->headers, (t->n_headers + 1) * sizeof *t->headers);
    t->headers[t->n_headers].name = xstrndup(data, (size_t) (colon - data));
    t->headers[t->n_headers].value = xstrndup(v, (size_t) (end - v));
    t->n_headers++;
    return n;
}

/* Turn a failed transfer into one sentence naming the controller. */
static struct yg_error *transport_error(struct http_client *c, CURLcode code,
                                        const char *errbuf, const struct transfer *t)
{
    long os_errno = 0;
    curl_off_t connect_time = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME_T, &connect_time);
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(code);

    switch (code) {
    case CURLE_COULDNT_CONNECT:
        return yg_error_new(0, HTTP_CLIENT_E_UNREACHABLE, "cannot reach the controller at %s: %s",
                            c->base_url, os_errno ? strerror((int) os_errno) : why);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return yg_error_new(0, HTTP_CLIENT_E_UNREACHABLE, "cannot reach the controller at %s: %s",
                            c->base_url, why);
    case CURLE_OPERATION_TIMEDOUT:
        if (connect_time == 0)
            return yg_error_new(0, HTTP_CLIENT_E_TIMEOUT,
                                "cannot reach the controller at %s: no connection within %ld seconds",
                                c->base_url, (c->connect_ms + 999) / 1000);
        return yg_error_new(0, HTTP_CLIENT_E_TIMEOUT,
                            "the controller at %s did not answer within %ld seconds",
                            c->base_url, (c->total_ms + 999) / 1000);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
        return yg_error_new(0, HTTP_CLIENT_E_UNREACHABLE,
                            "cannot trust the controller at %s: %s%s", c->base_url, why,
                            c->ca_file ? "" : " (give the CA that signed its certificate: --ca-file)");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return yg_error_new(0, HTTP_CLIENT_E_UNREACHABLE, "cannot use the controller URL '%s': %s",
                            c->base_url, why);
    case CURLE_WRITE_ERROR:
        if (t->too_large)
            return yg_error_new(0, HTTP_CLIENT_E_TRANSPORT,
                                "the answer from the controller at %s is larger than %u MiB",
                                c->base_url, HTTP_CLIENT_MAX_RESPONSE_BYTES / (1024 * 1024));
        break;
    default:
        break;
    }
    return yg_error_new(0, HTTP_CLIENT_E_TRANSPORT, "failed to talk to the controller at %s: %s",
                        c->base_url, why);
}

/* Called by libcurl about once a second and on every chunk: a non-zero
 * return aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct http_client *c = userdata;
    (void) dltotal; (void) dlnow; (void) ultotal; (void) ulnow;
    return c->cancel(c->cancel_userdata) ? 1 : 0;
}

void http_client_set_cancel(struct http_client *c, int (*cancel)(void *userdata), void *userdata)
{
    c->cancel = cancel;
    c->cancel_userdata = userdata;
}

int http_client_send(struct http_client *c, const struct http_request *req,
                     struct http_response **ret_response, struct yg_error **ret_error)
{
    CURL *curl = c->curl;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct transfer t = {0};
    struct curl_slist *headers = NULL, *tmp;
    _cleanup_free_ char *url = xasprintf("%s%s", c->base_url, req->path);
    _cleanup_free_ char *ctype = NULL;
    int r = 0;

    strbuf_init(&t.body);
    curl_easy_reset(curl);          /* keeps the connection cache */

#define ADD_HEADER(line)                                \
    do {                                                \
        tmp = curl_slist_append(headers, (line));       \
        if (!tmp)                                       \
            abort();                                    \
        headers = tmp;                                  \
    } while (0)

    ADD_HEADER("Accept: application/json");
    ADD_HEADER("Expect:");          /* no 100-continue round trip */
    if (c->auth_header)
        ADD_HEADER(c->auth_header);
    if (req->content_type) {
        ctype = xasprintf("Content-Type: %s", req->content_type);
        ADD_HEADER(ctype);
    }
    for (const char *const *h = req->headers; h && *h; h++)
        ADD_HEADER(*h);
#undef ADD_HEADER

    curl_easy_setopt(curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, c->total_ms);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    /* Verification stays on whatever the CA: peer certificate and name. */
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
    /* One trust store, not two: Debian's libcurl also reads every file in
     * its CA directory (/etc/ssl/certs), and GnuTLS keeps each parsed
     * certificate per handle — ~8 MB per connection, which dwarfs the
     * agent.  The bundle holds the same certificates. */
    curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
    if (c->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) HTTP_CLIENT_MAX_RESPONSE_BYTES);
    if (c->cancel) {
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, c);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }

    const char *method = req->method ? req->method : "GET";
    if (req->body || streq(method, "POST") || streq(method, "PUT")) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (req->body ? req->body_len : 0));
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        if (!streq(method, "POST"))
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    } else if (streq(method, "HEAD")) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (!streq(method, "GET")) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode code = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    if (code != CURLE_OK) {
        *ret_error = transport_error(c, code, errbuf, &t);
        r = code == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
          : code == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
        goto out;
    }

    struct http_response *resp = xcalloc(1, sizeof *resp);
    const char *ct = NULL;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
        resp->content_type = xstrdup(ct);
    resp->body_len = t.body.len;
    resp->body = strbuf_steal(&t.body);
    resp->headers = steal_pointer(&t.headers);
    resp->n_headers = t.n_headers;
    t.n_headers = 0;
    *ret_response = resp;
out:
    /* Nothing may keep pointing at our stack after we return. */
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    transfer_clear_headers(&t);
    strbuf_free(&t.body);
    return r;
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    size_t n = strlen("application/json");
    return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';');
}

/* First line of a body, for errors that are not the API's. */
static char *body_excerpt(const struct http_response *resp)
{
    size_t n = strcspn(resp->body, "\r\n");
    if (n > 120)
        n = 120;
    char *s = xstrndup(resp->body, n);
    for (char *p = s; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    return s;
}

int http_client_send_json(struct http_client *c, const struct http_request *req,
                          json_t **ret_json, struct http_response **ret_response,
                          struct yg_error **ret_error)
{
    struct http_response *resp = NULL;
    int r = http_client_send(c, req, &resp, ret_error);
    if (r < 0)
        return r;

    json_error_t jerr;
    json_t *root = NULL;
    if (resp->body_len > 0)
        root = json_loadb(resp->body, resp->body_len, 0, &jerr);

    if (resp->status >= 200 && resp->status < 300) {
        if (resp->body_len == 0)
            root = json_object();
        if (!root) {
            *ret_error = yg_error_new((int) resp->status, HTTP_CLIENT_E_BAD_RESPONSE,
                                      "the answer from %s is not valid JSON: %s (line %d, column %d)",
                                      c->base_url, jerr.text, jerr.line, jerr.column);
            r = -1;
            goto out;
        }
        *ret_json = root;
        goto out;
    }

    struct yg_error *e = root ? yg_error_from_json(root, (int) resp->status) : NULL;
    json_decref(root);
    if (!e) {
        const char *location = http_response_header(resp, "Location");
        _cleanup_free_ char *excerpt = body_excerpt(resp);
        if (resp->status >= 300 && resp->status < 400 && location)
            e = yg_error_new((int) resp->status, HTTP_CLIENT_E_BAD_RESPONSE,
                             "%s answered with a redirect (HTTP %ld) to '%s'; give the final URL as the server",
                             c->base_url, resp->status, location);
        else if (*excerpt && !is_json_type(resp->content_type))
            e = yg_error_new((int) resp->status, HTTP_CLIENT_E_BAD_RESPONSE,
                             "%s answered HTTP %ld, which is not a yunguan API answer: '%s'",
                             c->base_url, resp->status, excerpt);
        else
            e = yg_error_new((int) resp->status, HTTP_CLIENT_E_BAD_RESPONSE,
                             "%s answered HTTP %ld without an error description",
                             c->base_url, resp->status);
    }
    *ret_error = e;
    r = -1;
out:
    if (ret_response)
        *ret_response = resp;
    else
        http_response_free(resp);
    return r;
}

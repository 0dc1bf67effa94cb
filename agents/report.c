#include <config.h>
#include "report.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sha256.h"
#include "util.h"

#define TOKEN_MAX_BYTES 4096

json_t *report_build(const char *host, uint64_t seq, const char *generated_at, json_t *segments)
{
    return json_pack("{s:s, s:I, s:s, s:O}", "host", host, "seq", (json_int_t) seq,
                     "generated_at", generated_at, "segments", segments);
}

void report_results_sha256(json_t *segments, char out[REPORT_SHA256_HEX_SIZE])
{
    _cleanup_free_ char *text = json_dumps(segments, JSON_COMPACT);
    sha256_hex(text ? text : "", text ? strlen(text) : 0, out);
}

char *report_full_body(const char *host, uint64_t seq, const char *generated_at, json_t *segments,
                       const char *results_sha256)
{
    json_t *report = report_build(host, seq, generated_at, segments);
    if (results_sha256)
        json_object_set_new(report, "results_sha256", json_string(results_sha256));
    char *text = json_dumps(report, JSON_COMPACT);
    json_decref(report);
    return text;
}

char *report_heartbeat_body(const char *host, uint64_t seq, const char *results_sha256)
{
    json_t *hb = json_pack("{s:s, s:I, s:s}", "host", host, "seq", (json_int_t) seq,
                           "results_sha256", results_sha256);
    char *text = json_dumps(hb, JSON_COMPACT);
    json_decref(hb);
    return text;
}

bool report_segments_pass(json_t *segments)
{
    size_t i;
    json_t *seg;
    json_array_foreach(segments, i, seg) {
        const char *status = json_string_value(json_object_get(seg, "status"));
        if (!status || streq(status, "fail"))
            return false;
    }
    return true;
}

const char *report_outcome_to_string(enum report_outcome o)
{
    static const char *const names[REPORT_OUTCOME_MAX] = {
        [REPORT_OK] = "ok", [REPORT_RETRY] = "retry", [REPORT_AUTH] = "auth",
        [REPORT_REJECTED] = "rejected",
    };
    return o < REPORT_OUTCOME_MAX ? names[o] : NULL;
}

enum report_outcome report_classify(const struct yg_error *e)
{
    int st = e ? e->http_status : 0;
    if (st == 401 || st == 403)
        return REPORT_AUTH;
    if (st == 0 || st == 408 || st == 429 || st >= 500)
        return REPORT_RETRY;
    return REPORT_REJECTED;
}

enum report_outcome report_enroll(struct http_client *c, const char *host, const char *secret,
                                  char **ret_token, struct yg_error **ret_error)
{
    json_t *body = json_pack("{s:s}", "host", host);
    _cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    _cleanup_free_ char *auth = xasprintf("Authorization: Bearer %s", secret);
    const char *headers[] = { auth, NULL };
    struct http_request req = {
        .method = "POST", .path = "/api/v1/agents/enroll",
        .content_type = "application/json", .body = text, .body_len = strlen(text),
        .headers = headers,
    };
    /* The enrollment secret goes in this request only, not as the client's token. */
    http_client_set_token(c, NULL);
    json_t *answer = NULL;
    int r = http_client_send_json(c, &req, &answer, NULL, ret_error);
    explicit_bzero(auth, strlen(auth));
    if (r < 0)
        return report_classify(*ret_error);
    const char *token = json_string_value(json_object_get(answer, "token"));
    if (!token || !*token || strlen(token) > TOKEN_MAX_BYTES || strpbrk(token, " \t\r\n")) {
        json_decref(answer);
        *ret_error = yg_error_new(0, HTTP_CLIENT_E_BAD_RESPONSE,
                                  "the controller's enrollment answer has no usable \"token\"");
        return REPORT_REJECTED;
    }
    *ret_token = xstrdup(token);
    json_decref(answer);
    return REPORT_OK;
}

enum report_outcome report_fetch_desired(struct http_client *c, struct desired_state **ret,
                                         json_t **ret_json, struct yg_error **ret_error)
{
    struct http_request req = { .method = "GET", .path = "/api/v1/agents/self/segments" };
    json_t *answer = NULL;
    if (http_client_send_json(c, &req, &answer, NULL, ret_error) < 0)
        return report_classify(*ret_error);
    _cleanup_free_ char *err = NULL;
    if (desired_state_from_json(answer, ret, &err) < 0) {
        json_decref(answer);
        *ret_error = yg_error_new(0, HTTP_CLIENT_E_BAD_RESPONSE,
                                  "the controller's desired state is not valid: %s", err);
        /* A controller bug or a newer schema: retry later, it may be fixed. */
        return REPORT_RETRY;
    }
    if (ret_json)
        *ret_json = answer;
    else
        json_decref(answer);
    return REPORT_OK;
}

enum report_outcome report_post(struct http_client *c, const char *body, size_t len,
                                struct report_answer *ret, struct yg_error **ret_error)
{
    struct http_request req = {
        .method = "POST", .path = "/api/v1/agents/self/reports",
        .content_type = "application/json", .body = body, .body_len = len,
    };
    json_t *answer = NULL;
    if (http_client_send_json(c, &req, &answer, NULL, ret_error) < 0)
        return report_classify(*ret_error);
    json_t *applied = json_object_get(answer, "applied");
    json_t *last = json_object_get(answer, "last_seq");
    struct report_answer a = {
        .applied = applied ? json_is_true(applied) : true,
        .last_seq = json_is_integer(last) && json_integer_value(last) > 0
                        ? (uint64_t) json_integer_value(last) : 0,
        .resync = json_is_true(json_object_get(answer, "resync")),
    };
    /* Only a controller that knows hash-only heartbeats answers one. */
    const char *stored = json_string_value(json_object_get(answer, "results_sha256"));
    if (stored && strlen(stored) == REPORT_SHA256_HEX_SIZE - 1)
        memcpy(a.results_sha256, stored, REPORT_SHA256_HEX_SIZE);
    json_decref(answer);
    *ret = a;
    return REPORT_OK;
}

int report_write_state_file(const char *dir, const char *name, const char *text, size_t len)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
    _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int r = 0;
    while (len > 0 && r == 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0) {
            if (errno != EINTR)
                r = -errno;
            continue;
        }
        text += n;
        len -= (size_t) n;
    }
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp);
        return r;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) < 0)
            r = -errno;
        close(dfd);
    }
    return r;
}

/* The first line of a file, trimmed.  -EBADMSG when empty. */
static int read_first_line(const char *path, char **ret)
{
    _cleanup_free_ char *data = NULL;
    size_t len;
    int r = read_file_limited(path, TOKEN_MAX_BYTES, &data, &len);
    if (r < 0)
        return r;
    char *start = data;
    while (*start && isspace((unsigned char) *start))
        start++;
    char *end = start;
    while (*end && *end != '\n' && *end != '\r')
        end++;
    while (end > start && isspace((unsigned char) end[-1]))
        end--;
    if (end == start) {
        explicit_bzero(data, len);
        return -EBADMSG;
    }
    *ret = xstrndup(start, (size_t) (end - start));
    explicit_bzero(data, len);
    return 0;
}

int report_token_load(const char *state_dir, char **ret_token)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, REPORT_TOKEN_FILE);
    return read_first_line(path, ret_token);
}

int report_token_store(const char *state_dir, const char *token)
{
    _cleanup_free_ char *text = xasprintf("%s\n", token);
    int r = report_write_state_file(state_dir, REPORT_TOKEN_FILE, text, strlen(text));
    explicit_bzero(text, strlen(text));
    return r;
}

int report_secret_file_read(const char *path, char **ret_secret)
{
    return read_first_line(path, ret_secret);
}

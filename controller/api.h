/* The HTTP API: libmicrohttpd, JSON with jansson.
 *
 * Each HTTP request is an api_call.  Once its body is in, the route's
 * handler runs on an HTTP thread: it either answers at once (reads) or
 * hands a job to the store's writer and suspends the connection; the
 * writer's completion resumes it and the answer goes out.  So HTTP
 * threads never wait on a disk flush, and many calls share one commit. */
#ifndef YG_API_H
#define YG_API_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "auth.h"
#include "error.h"
#include "playbook.h"
#include "store.h"
#include "util.h"

struct api_server;
struct api_call;

struct api_config {
    const char *listen_address;     /* "127.0.0.1" */
    uint16_t port;
    unsigned threads;               /* HTTP threads */
    unsigned max_connections;
    size_t max_body_bytes;          /* request documents */
    const char *playbook_dir;       /* installed playbooks; NULL: PLAYBOOK_DIR */
    const char *tls_cert_pem;       /* both set: HTTPS (TLS 1.2+) instead of HTTP */
    const char *tls_key_pem;
};

/* Where installed playbooks are found unless yunguand.yaml says otherwise. */
#ifndef PLAYBOOK_DIR
#define PLAYBOOK_DIR "/usr/share/yunguan/playbooks"
#endif

int api_start(const struct api_config *cfg, struct store *store, struct api_server **ret,
              char **ret_errmsg);
void api_stop(struct api_server *srv);
uint16_t api_bound_port(struct api_server *srv);

/* For handlers (api-*.c). */
struct store *api_call_store(struct api_call *call);
const char *api_call_playbook_dir(struct api_call *call);
struct task_waiters *api_call_task_waiters(struct api_call *call);
struct store_conn *api_call_reader(struct api_call *call);
const struct principal *api_call_principal(struct api_call *call);
const char *api_call_query(struct api_call *call, const char *key);
const char *api_call_header(struct api_call *call, const char *key);
const char *api_call_body(struct api_call *call, size_t *ret_len);
/* Parse the body as a JSON object; an empty body gives an empty object.
 * NULL (and a 400 already set) when it is not. */
json_t *api_call_body_json(struct api_call *call);

/* Answer with JSON (steals the reference). */
void api_reply_json(struct api_call *call, int status, json_t *body);
void api_reply_text(struct api_call *call, int status, const char *content_type, char *text);
/* Answer with the error (steals it). */
void api_reply_error(struct api_call *call, struct yg_error *e);
void api_reply_errorf(struct api_call *call, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void api_add_header(struct api_call *call, const char *name, const char *value);

/* Run RUN on the writer; when it has committed, FINISH runs (on an HTTP
 * thread, where the store's reader sees the commit) and must reply.  CTX
 * is owned by the caller's handlers. */
typedef void (*api_finish_fn)(struct api_call *call, void *ctx, int result);
void api_defer(struct api_call *call, store_job_run_fn run, api_finish_fn finish, void *ctx);
/* Before api_defer(): the change alters tokens (a revocation), so the
 * cached principals are forgotten as soon as it is committed, before its
 * answer is built. */
void api_call_invalidates_tokens(struct api_call *call);
/* Before api_defer(): RUN checks everything that can refuse the call
 * before its first write (STORE_JOB_WRITES_LAST: no savepoint of its own). */
void api_call_writes_last(struct api_call *call);

/* Suspend the call with no store job: someone else (a long-poll's wake-up
 * or its timer) calls api_resume(CALL, RESULT) exactly once, from any
 * thread, and FINISH then runs on an HTTP thread.  FINISH (here or after
 * api_defer) may suspend the call again instead of replying. */
void api_suspend(struct api_call *call, api_finish_fn finish, void *ctx);
void api_resume(struct api_call *call, int result);

/* Parse a positive id or a bounded integer query value. */
bool api_parse_int64(const char *s, int64_t min, int64_t max, int64_t *ret);

/* Metrics kept by the HTTP layer, printed by api-metrics.c. */
void api_metrics_http(struct api_server *srv, struct strbuf *out);
struct api_server *api_call_server(struct api_call *call);

#endif

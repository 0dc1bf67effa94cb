/* Reports and the controller side of doc/AGENT.md: the report document,
 * enrollment, the desired state fetch and the report upload, and the
 * agent token file. */
#ifndef YG_AGENT_REPORT_H
#define YG_AGENT_REPORT_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "desired.h"
#include "error.h"
#include "http-client.h"

#define REPORT_TOKEN_FILE "agent.token"
#define REPORT_DESIRED_CACHE_FILE "segments.json"

/* {"host", "seq", "generated_at", "segments": segments} (segments is
 * borrowed: its reference count is raised). */
json_t *report_build(const char *host, uint64_t seq, const char *generated_at, json_t *segments);
#define REPORT_SHA256_HEX_SIZE 65
/* results_sha256 (doc/AGENT.md): SHA-256 hex of the compact JSON text of
 * segments[], the agent's fingerprint of its evaluation. */
void report_results_sha256(json_t *segments, char out[REPORT_SHA256_HEX_SIZE]);
/* Report bodies as sent (compact JSON; the caller frees): a full report
 * carrying RESULTS_SHA256 (NULL: none), and a hash-only heartbeat. */
char *report_full_body(const char *host, uint64_t seq, const char *generated_at, json_t *segments,
                       const char *results_sha256);
char *report_heartbeat_body(const char *host, uint64_t seq, const char *results_sha256);
/* Whether every segment in segments[] has status "pass" or "warn". */
bool report_segments_pass(json_t *segments);

/* The outcome of one controller call. */
enum report_outcome {
    REPORT_OK,
    REPORT_RETRY,       /* unreachable, timeout, 5xx, 429: try again later */
    REPORT_AUTH,        /* 401/403: the token is not (or no longer) valid */
    REPORT_REJECTED,    /* another 4xx: this request will never succeed */
    REPORT_OUTCOME_MAX,
};
const char *report_outcome_to_string(enum report_outcome o);
/* The outcome of a failed call from its error (http_status 0: transport). */
enum report_outcome report_classify(const struct yg_error *e);

/* POST /api/v1/agents/enroll with the enrollment secret.  REPORT_OK and
 * *ret_token; otherwise *ret_error. */
enum report_outcome report_enroll(struct http_client *c, const char *host, const char *secret,
                                  char **ret_token, struct yg_error **ret_error);

/* GET /api/v1/agents/self/segments.  REPORT_OK and *ret (and the raw JSON
 * in *ret_json, may be NULL) or *ret_error. */
enum report_outcome report_fetch_desired(struct http_client *c, struct desired_state **ret,
                                         json_t **ret_json, struct yg_error **ret_error);

struct report_answer {
    bool applied;
    uint64_t last_seq;
    bool resync;
    /* The hash the controller stored with the applied results, "" when it
     * stored none (or does not know hash-only heartbeats). */
    char results_sha256[REPORT_SHA256_HEX_SIZE];
};

/* POST /api/v1/agents/self/reports. */
enum report_outcome report_post(struct http_client *c, const char *body, size_t len,
                                struct report_answer *ret, struct yg_error **ret_error);

/* STATE_DIR/agent.token: read (0, -ENOENT, -errno) and write (mode 0600,
 * atomically, fsync'd). */
int report_token_load(const char *state_dir, char **ret_token);
int report_token_store(const char *state_dir, const char *token);
/* A secret from a file: the first line, without white space at its ends. */
int report_secret_file_read(const char *path, char **ret_secret);

/* Write TEXT to DIR/NAME atomically (tmp, fsync, rename, fsync dir), 0600. */
int report_write_state_file(const char *dir, const char *name, const char *text, size_t len);

#endif

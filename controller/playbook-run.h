/* Playbook runs (doc/PLAYBOOKS.md "Runs"): one stored object per run and
 * one task per host (doc/AGENT.md "Playbook tasks").
 *
 * A run is made in one writer transaction after every host's steps were
 * rendered; nothing is stored when one host cannot be rendered.  `check`
 * releases every host's task at once; `apply` releases the canary, then
 * batch after batch, each once every host of the one before succeeded.
 * The first failed or silent (`unknown`) host stops an apply run: hosts
 * not yet started are `skipped`, those already running finish, and then
 * the run ends `failed`.
 *
 * Every function that changes state runs inside a writer job (store.h),
 * takes NOW (epoch seconds) so that tests control time, and writes its
 * audit entries in the same transaction.  All state is in SQLite: a
 * restarted controller carries on where it stopped. */
#ifndef YG_PLAYBOOK_RUN_H
#define YG_PLAYBOOK_RUN_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

struct store;
struct store_conn;
struct store_txn;
struct principal;
struct playbook;

enum playbook_run_state {
    PLAYBOOK_RUN_RUNNING,
    PLAYBOOK_RUN_SUCCEEDED,
    PLAYBOOK_RUN_FAILED,
    PLAYBOOK_RUN_CANCELLED,
    _PLAYBOOK_RUN_STATE_MAX,
};
const char *playbook_run_state_to_string(enum playbook_run_state s);
int playbook_run_state_from_string(const char *s);

enum playbook_host_state {
    PLAYBOOK_HOST_WAITING,      /* batch not started, or released and not yet fetched */
    PLAYBOOK_HOST_SENT,         /* the agent fetched it */
    PLAYBOOK_HOST_RUNNING,      /* the agent reported progress */
    PLAYBOOK_HOST_SUCCEEDED,
    PLAYBOOK_HOST_FAILED,
    PLAYBOOK_HOST_UNKNOWN,      /* silent past the timeout */
    PLAYBOOK_HOST_SKIPPED,      /* not started: the run stopped */
    PLAYBOOK_HOST_CANCELLED,    /* not started: the run was cancelled */
    _PLAYBOOK_HOST_STATE_MAX,
};
const char *playbook_host_state_to_string(enum playbook_host_state s);
int playbook_host_state_from_string(const char *s);

enum playbook_mode {
    PLAYBOOK_MODE_CHECK,
    PLAYBOOK_MODE_APPLY,
    _PLAYBOOK_MODE_MAX,
};
const char *playbook_mode_to_string(enum playbook_mode m);
int playbook_mode_from_string(const char *s);

#define PLAYBOOK_BATCH_SIZE_DEFAULT 10
#define PLAYBOOK_HOST_TIMEOUT_DEFAULT 120
#define PLAYBOOK_RUN_MAX_HOSTS 4096
#define PLAYBOOK_BATCH_SIZE_MAX 1000

/* From yunguand.yaml: playbook_batch_size, playbook_host_timeout_seconds. */
void playbook_run_configure(int batch_size, int host_timeout_seconds);
int playbook_run_host_timeout(void);

/* Silence is judged from EPOCH at the earliest (the controller's start):
 * agents could not reach a controller that was down.  0: off. */
void playbook_run_set_judging_since(int64_t epoch);

/* Called (on the writer thread, inside the job) whenever a task becomes
 * fetchable for HOST_ID, so a waiting long-poll can look again.  A wake for
 * a change that is then rolled back is harmless: the poll finds nothing. */
typedef void (*playbook_wake_fn)(int64_t host_id, void *data);
void playbook_run_set_wake(playbook_wake_fn fn, void *data);

struct playbook_run_request {
    const struct playbook *playbook;    /* parsed from TEXT */
    const char *text;                   /* the exact YAML, stored with the run */
    size_t text_len;
    const char *segment;
    enum playbook_mode mode;
    const char *const *hosts;           /* NULL / 0: every host carrying the segment */
    size_t n_hosts;
    int batch_size;                     /* 0: the configured default */
    const char *canary;                 /* NULL: the first host by name */
    json_t *params;                     /* object of string values, or NULL */
};

/* Make a run: check BY's role (netops/admin; cloudops check only), render
 * every host, store the run and its tasks, release the first batch, audit.
 * 0 with *ret_run_id; else -errno with *ret_error (403, 404 no segment or
 * host, 409 an apply run already running on the segment, 422 a host that
 * cannot be rendered, named, and nothing stored). */
int playbook_run_create(struct store_txn *txn, const struct principal *by,
                        const struct playbook_run_request *req, int64_t now,
                        int64_t *ret_run_id, struct yg_error **ret_error);

/* Cancel: hosts not yet started become `cancelled`, the run `cancelled`;
 * hosts already running finish and their results are still recorded.
 * 403 (cloudops on an apply run), 404, 409 (already ended). */
int playbook_run_cancel(struct store_txn *txn, const struct principal *by, int64_t run_id,
                        int64_t now, struct yg_error **ret_error);

/* The agent of BY->host_id fetches its released tasks (marked `sent`):
 * *ret_tasks is a JSON array of task objects as doc/AGENT.md shows, empty
 * when there is none.  At most MAX tasks. */
int playbook_tasks_fetch(struct store_txn *txn, const struct principal *by, int64_t now,
                         size_t max, json_t **ret_tasks);

/* Check a progress/result body (doc/AGENT.md "Results") before it reaches
 * the writer: NULL when fine, else a 422 naming the JSON path.  FINAL: a
 * result (status succeeded|failed), not progress. */
struct yg_error *playbook_task_report_check(json_t *body, bool final);

/* Apply progress (FINAL false) or a result (FINAL true) for TASK_ID from
 * BY's host; *ret_accepted false when the task had already ended (a
 * retried result).  404 when the task is not this host's.  A result moves
 * the run on (next batch, stop, end) in the same transaction. */
int playbook_task_report(struct store_txn *txn, const struct principal *by, int64_t task_id,
                         json_t *body, bool final, int64_t now, bool *ret_accepted,
                         struct yg_error **ret_error);

/* Mark hosts silent past their deadline `unknown` and stop their runs. */
int playbook_run_sweep(struct store_txn *txn, int64_t now);

/* Reads.  NULL when there is no such run (or on a store error). */
json_t *playbook_run_json(struct store_conn *conn, int64_t run_id);
/* Newest first; SEGMENT / STATE may be NULL; at most LIMIT. */
json_t *playbook_runs_json(struct store_conn *conn, const char *segment, const char *state,
                           int limit);
/* Whether HOST_ID has a released task not yet fetched. */
bool playbook_tasks_pending(struct store_conn *conn, int64_t host_id);

/* The thread that runs the timeout sweep (every few seconds). */
struct playbook_sweeper;
struct playbook_sweeper *playbook_sweeper_start(struct store *store);
void playbook_sweeper_stop(struct playbook_sweeper *sw);

#endif

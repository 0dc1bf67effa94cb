/* Playbook tasks on this host (doc/AGENT.md "Playbook tasks"): the task
 * document, running its steps in order with rollback, the crash journal,
 * the result files kept until the controller takes them, and the task
 * loop that long-polls the controller.
 *
 *   STATE_DIR/task-ID.journal        an apply in progress: a header line,
 *                                    then one line per changed step with
 *                                    its undo operations, each fsync'd
 *                                    before the change is made
 *   STATE_DIR/task-ID.result         the result until the controller
 *                                    accepted it (written atomically)
 *   STATE_DIR/local-task-ID.journal  the same for yunguan-agent --run-task
 *                                    (rolled back at the next start, never
 *                                    reported)
 *
 * A result file is written before the journal is removed: at start, a
 * journal without a result is an apply cut short (rolled back and
 * reported failed); a journal with one is only left over. */
#ifndef YG_AGENT_TASKS_H
#define YG_AGENT_TASKS_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "desired.h"
#include "steps.h"

#define TASKS_MAX_BYTES (1024 * 1024)           /* one task document; the tasks answer: 4x */
#define TASKS_MAX_TIMEOUT_MS (86400 * 1000)       /* the controller's playbook_host_timeout_seconds bound */
#define TASKS_DEFAULT_TIMEOUT_MS (600 * 1000)
#define TASKS_POLL_WAIT_S 25

struct task {
    int64_t id;
    int64_t run;
    enum step_mode mode;
    char *playbook;                     /* may be NULL */
    struct desired_segment segment;
    unsigned timeout_ms;                /* the controller's; the agent does not cut a task by it */
    struct step *steps;
    size_t n_steps;
};

/* Parse one task object (an element of the answer's "tasks").  MODE
 * overrides the document's "mode" when >= 0 (--run-task --mode).  0, or
 * -EINVAL with *ret_error starting with the JSON path.  When the task has
 * a usable id, *ret_id gets it even on failure (so that the controller
 * can be told why its task was refused). */
int task_from_json(json_t *js, int mode, struct task **ret, int64_t *ret_id, char **ret_error);
void task_free(struct task *t);
static inline void task_freep(struct task **t) { task_free(*t); }

/* Called after each step with the result so far ("status": "running"). */
typedef void (*task_progress_fn)(const struct task *t, json_t *result, void *userdata);

struct task_run_options {
    const char *state_dir;      /* journal and result file; NULL: neither (tests) */
    bool local;                 /* --run-task: a local-task-ID journal, no result file */
    task_progress_fn progress;  /* may be NULL */
    void *userdata;
    /* Polled between steps: true stops the task there (an apply is rolled
     * back) because the agent is stopping. */
    bool (*should_stop)(void *userdata);
    /* The daemon's remembered unanswered neighbours for check.run, when
     * and verify (netstate.h); NULL: none (--run-task, tests). */
    struct netstate_unanswered *unanswered;
};

/* Run every step of T (doc/AGENT.md "Modes") and return the result
 * object: {"status","rolled_back","rollback_ok","message","started_at",
 * "finished_at","steps":[...]}.  With a state dir, an apply is journalled
 * and the result of a controller's task is stored before the journal is
 * removed. */
json_t *task_run(struct nl_sock *sock, const struct task *t, const struct task_run_options *o);

/* The result for a task the agent refused to run (not valid). */
json_t *task_result_refused(const char *message);

/* Roll back every unfinished apply journalled in STATE_DIR (a crash or a
 * kill during a task): undo its steps in reverse order and store the
 * result "failed" ("agent restarted during the task; rolled back").  0 or
 * -errno; *ret_n (may be NULL) gets the number rolled back. */
int tasks_recover(struct nl_sock *sock, const char *state_dir, size_t *ret_n);

/* Result files. */
int tasks_result_store(const char *state_dir, int64_t id, json_t *result);
/* The ids of the stored results, ascending.  0 or -errno. */
int tasks_results_pending(const char *state_dir, int64_t **ret_ids, size_t *ret_n);
int tasks_result_load(const char *state_dir, int64_t id, json_t **ret_result);
int tasks_result_remove(const char *state_dir, int64_t id);

/* Make STATE_DIR (and its parents) with mode 0700 if missing.  0 or -errno. */
int tasks_state_dir_make(const char *state_dir);

/* The task loop: one thread with its own HTTP client and netlink socket
 * (see tasks.c for why a thread).  UNANSWERED (may be NULL) is the event
 * loop's netstate_unanswered(): it must outlive tasks_runner_stop(). */
struct tasks_runner;
struct netstate_unanswered;
int tasks_runner_start(const char *controller_url, const char *ca_file, const char *state_dir,
                       struct netstate_unanswered *unanswered, struct tasks_runner **ret);
/* Stop (a running task stops after its current step and is rolled back)
 * and join. */
void tasks_runner_stop(struct tasks_runner *r);

#endif

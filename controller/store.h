/* The store: SQLite in WAL mode with synchronous=FULL.
 *
 * One writer thread owns the only writing connection and runs every state
 * change as a job.  Jobs that arrive while a commit is in progress are
 * grouped into the next transaction (group commit: one fsync for many
 * acknowledged writes), each inside its own SAVEPOINT so that one job's
 * failure leaves the others intact.  Because jobs run one at a time, checks
 * made inside a job (quota at approval) cannot race.
 *
 * Readers get a read-only connection per thread. */
#ifndef YG_STORE_H
#define YG_STORE_H 1

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

struct store;
struct store_conn;
struct store_txn;
struct audit_chain;

/* Open (creating if needed) the database at PATH, apply pending migrations
 * and start the writer.  On failure returns -errno and a message. */
int store_open(const char *path, struct store **ret_store, char **ret_errmsg);
/* Finish every queued job and stop the writer; later jobs fail with
 * -ESHUTDOWN.  The store stays readable until store_close(). */
void store_shutdown(struct store *s);
void store_close(struct store *s);
int store_schema_version(struct store *s);
/* The newest schema version this program knows. */
int store_latest_version(void);

/* This thread's read-only connection (opened on first use). */
struct store_conn *store_reader(struct store *s);

sqlite3 *store_conn_db(struct store_conn *c);
/* A prepared statement for SQL (a string literal: cached by address),
 * reset and with bindings cleared.  NULL on error (logged). */
sqlite3_stmt *store_stmt(struct store_conn *c, const char *sql);

/* Work done by the writer inside a transaction.  Return 0 to keep the
 * job's changes, negative to roll them back (the job reports why through
 * its ctx).  DONE runs on the writer thread after the commit, with the
 * final result (a failed commit turns every job's result into -EIO). */
typedef int (*store_job_run_fn)(struct store_txn *txn, void *ctx);
typedef void (*store_job_done_fn)(void *ctx, int result);

void store_submit(struct store *s, store_job_run_fn run, store_job_done_fn done, void *ctx);

/* STORE_JOB_WRITES_LAST: the job makes every check that can refuse it
 * before its first write, so a failure after that can only be the
 * store's (-EIO).  It then runs without a SAVEPOINT of its own: inside
 * one, SQLite copies every page a statement is about to change into the
 * savepoint's journal first (~10 us for a job that moves one VM), and a
 * statement that needs a journal of its own (one that checks a foreign
 * key) then costs time in proportion to the whole savepoint's journal
 * (SQLite walks its in-memory journal to truncate it after each such
 * statement: 67 us instead of 17 per placement UPDATE in a job of 4,000).
 * A job that refuses before writing leaves nothing to take back.  Should one
 * fail after writing after all, its group's transaction is rolled back
 * and every job in the group fails with -EIO: nothing is half-written. */
#define STORE_JOB_WRITES_LAST 1u
void store_submit_flags(struct store *s, store_job_run_fn run, store_job_done_fn done, void *ctx,
                        unsigned flags);
/* Submit and wait. */
int store_run(struct store *s, store_job_run_fn run, void *ctx);
int store_run_flags(struct store *s, store_job_run_fn run, void *ctx, unsigned flags);

/* A thread that runs RUN as a store job every INTERVAL() seconds (read
 * each round) until stopped: the sweeps that look for what went stale.
 * WHAT names it in the log when a round fails.  NULL when no thread. */
struct store_ticker;
struct store_ticker *store_ticker_start(struct store *s, const char *what,
                                        int (*interval)(void), store_job_run_fn run, void *ctx);
void store_ticker_stop(struct store_ticker *t);

struct store_conn *store_txn_conn(struct store_txn *txn);
struct audit_chain *store_txn_audit_chain(struct store_txn *txn);

/* Writer statistics, for /metrics and benchmarks. */
struct store_stats {
    uint64_t commits;
    uint64_t jobs;
};
void store_get_stats(struct store *s, struct store_stats *ret);

/* Bind helpers: text may be NULL (binds NULL). */
void store_bind_text(sqlite3_stmt *st, int i, const char *text);
const char *store_column_text(sqlite3_stmt *st, int i);   /* "" never NULL */

#endif

#include <config.h>
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "log.h"
#include "store-schema.h"
#include "store-walbuf.h"
#include "util.h"

#define LOG_DOMAIN "store"
#define STMT_CACHE_SIZE 256
#define GROUP_MAX_JOBS 256

struct store_conn {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE_SIZE];
    size_t n_cached;
};

struct store_job {
    store_job_run_fn run;
    store_job_done_fn done;
    void *ctx;
    unsigned flags;             /* STORE_JOB_* */
    int result;
    struct store_job *next;
};

struct store_txn {
    struct store_conn *conn;
    struct audit_chain *chain;
};

struct store {
    char *path;
    struct store_conn *writer;
    struct audit_chain chain;
    pthread_t writer_thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct store_job *head, *tail;   /* waiting jobs, FIFO */
    bool stopping;
    bool writer_stopped;        /* joined: new jobs are refused */
    pthread_key_t reader_key;
    int schema_version;
    struct store_stats stats;
};

static void store_conn_free(struct store_conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_cached; i++)
        sqlite3_finalize(c->cache[i].stmt);
    sqlite3_close_v2(c->db);
    free(c);
}

static int exec_sql(sqlite3 *db, const char *sql, char **ret_errmsg)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        if (ret_errmsg)
            *ret_errmsg = xstrdup(err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -EIO;
    }
    return 0;
}

static int read_user_version(sqlite3 *db, int *ret_version, char **ret_errmsg)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
        *ret_errmsg = xstrdup(sqlite3_errmsg(db));
        return -EIO;
    }
    int version = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    *ret_version = version;
    return 0;
}

/* A database newer than this program is refused before anything in it is
 * changed: even journal_mode=WAL rewrites the file header. */
static int check_not_newer(sqlite3 *db, const char *path, char **ret_errmsg)
{
    int version, latest = store_latest_version();
    char *err = NULL;
    if (read_user_version(db, &version, &err) < 0) {
        *ret_errmsg = xasprintf("cannot read the schema version of '%s': %s", path, err);
        free(err);
        return -EIO;
    }
    if (version > latest) {
        *ret_errmsg = xasprintf("the database is at schema version %d, newer than this "
                                "yunguand knows (%d); use a newer yunguand", version, latest);
        return -EPROTO;
    }
    return 0;
}

static int store_conn_open(const char *path, bool readonly, struct store_conn **ret, char **ret_errmsg)
{
    struct store_conn *c = xcalloc(1, sizeof *c);
    int flags = SQLITE_OPEN_NOMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    /* The writer appends to the WAL through store-walbuf.c: one write()
     * per commit.  Readers never write. */
    const char *vfs = readonly ? NULL : store_walbuf_vfs();
    if (sqlite3_open_v2(path, &c->db, flags, vfs) != SQLITE_OK) {
        *ret_errmsg = xasprintf("cannot open database '%s': %s", path,
                                c->db ? sqlite3_errmsg(c->db) : "out of memory");
        store_conn_free(c);
        return -EIO;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 10000);
    int r = readonly ? 0 : check_not_newer(c->db, path, ret_errmsg);
    if (r < 0) {
        store_conn_free(c);
        return r;
    }
    /* WAL + FULL: an acknowledged commit survives a power cut.
     * temp_store=MEMORY: each job's SAVEPOINT keeps its statement journal
     * (pages as they were before the job, for ROLLBACK TO) in memory; on
     * a file it cost a temporary file and a pwrite per page (12 % of the
     * VM loop's CPU).  It only serves rollbacks inside the open
     * transaction, so durability is the WAL's, as before. */
    const char *pragmas = readonly
        ? "PRAGMA foreign_keys=ON; PRAGMA query_only=ON; PRAGMA temp_store=MEMORY;"
        : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
          "PRAGMA temp_store=MEMORY;";
    if (exec_sql(c->db, pragmas, ret_errmsg) < 0) {
        store_conn_free(c);
        return -EIO;
    }
    *ret = c;
    return 0;
}

sqlite3 *store_conn_db(struct store_conn *c) { return c->db; }

sqlite3_stmt *store_stmt(struct store_conn *c, const char *sql)
{
    for (size_t i = 0; i < c->n_cached; i++)
        if (c->cache[i].sql == sql) {
            sqlite3_stmt *st = c->cache[i].stmt;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        log_err(LOG_DOMAIN, "cannot prepare statement: %s: %s", sqlite3_errmsg(c->db), sql);
        return NULL;
    }
    if (c->n_cached < STMT_CACHE_SIZE) {
        c->cache[c->n_cached].sql = sql;
        c->cache[c->n_cached].stmt = st;
        c->n_cached++;
    } else {
        /* Evict the oldest; callers are done with it by the time they ask for another. */
        sqlite3_finalize(c->cache[0].stmt);
        memmove(&c->cache[0], &c->cache[1], (STMT_CACHE_SIZE - 1) * sizeof c->cache[0]);
        c->cache[STMT_CACHE_SIZE - 1].sql = sql;
        c->cache[STMT_CACHE_SIZE - 1].stmt = st;
    }
    return st;
}

void store_bind_text(sqlite3_stmt *st, int i, const char *text)
{
    if (text)
        sqlite3_bind_text(st, i, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

const char *store_column_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *) t : "";
}

int store_latest_version(void)
{
    int v = 0;
    for (size_t i = 0; i < store_n_migrations; i++)
        if (store_migrations[i].version > v)
            v = store_migrations[i].version;
    return v;
}

/* Apply every migration newer than the database, each in one transaction
 * together with its user_version bump.  (A database newer than we know was
 * refused when the connection was opened, before anything was written.) */
static int store_migrate(struct store_conn *c, int *ret_version, char **ret_errmsg)
{
    int version;
    if (read_user_version(c->db, &version, ret_errmsg) < 0)
        return -EIO;
    for (size_t i = 0; i < store_n_migrations; i++) {
        const struct store_migration *m = &store_migrations[i];
        if (m->version <= version)
            continue;
        char *err = NULL;
        _cleanup_free_ char *bump = xasprintf("PRAGMA user_version=%d;", m->version);
        if (exec_sql(c->db, "BEGIN IMMEDIATE;", &err) < 0 ||
            exec_sql(c->db, m->sql, &err) < 0 ||
            exec_sql(c->db, bump, &err) < 0 ||
            exec_sql(c->db, "COMMIT;", &err) < 0) {
            exec_sql(c->db, "ROLLBACK;", NULL);
            *ret_errmsg = xasprintf("migration %s (to version %d) failed: %s",
                                    m->name, m->version, err ? err : "?");
            free(err);
            return -EIO;
        }
        log_info(LOG_DOMAIN, "applied schema migration %s (version %d -> %d)",
                 m->name, version, m->version);
        version = m->version;
    }
    *ret_version = version;
    return 0;
}

static void reader_destroy(void *p) { store_conn_free(p); }

struct store_conn *store_reader(struct store *s)
{
    struct store_conn *c = pthread_getspecific(s->reader_key);
    if (c)
        return c;
    char *err = NULL;
    if (store_conn_open(s->path, true, &c, &err) < 0) {
        log_err(LOG_DOMAIN, "%s", err);
        free(err);
        return NULL;
    }
    pthread_setspecific(s->reader_key, c);
    return c;
}

struct store_conn *store_txn_conn(struct store_txn *txn) { return txn->conn; }
struct audit_chain *store_txn_audit_chain(struct store_txn *txn) { return txn->chain; }

/* One statement without results, prepared once and kept (SAVEPOINT and
 * RELEASE run for every job: parsing them each time was 7 % of the VM
 * loop's CPU).  ERR, if not NULL, gets SQLite's message on failure. */
static int exec_cached(struct store_conn *c, const char *sql, char **ret_errmsg)
{
    sqlite3_stmt *st = store_stmt(c, sql);
    if (!st) {
        if (ret_errmsg && !*ret_errmsg)
            *ret_errmsg = xstrdup(sqlite3_errmsg(c->db));
        return -EIO;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && ret_errmsg && !*ret_errmsg)
        *ret_errmsg = xstrdup(sqlite3_errmsg(c->db));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Run one group of jobs in one transaction: one fsync for all of them. */
static void store_run_group(struct store *s, struct store_job *jobs)
{
    struct store_txn txn = { .conn = s->writer, .chain = &s->chain };
    char *err = NULL;
    int commit_rc = exec_cached(s->writer, "BEGIN IMMEDIATE", &err);
    int64_t group_start_id = s->chain.last_id;
    size_t n = 0;

    for (struct store_job *j = jobs; j; j = j->next) {
        n++;
        if (commit_rc < 0) {
            j->result = -EIO;
            continue;
        }
        struct audit_chain saved = s->chain;
        bool savepoint = !(j->flags & STORE_JOB_WRITES_LAST);
        sqlite3_int64 changes = sqlite3_total_changes64(s->writer->db);
        if (savepoint)
            exec_cached(s->writer, "SAVEPOINT job", NULL);
        j->result = j->run(&txn, j->ctx);
        if (j->result < 0) {
            if (savepoint) {
                exec_cached(s->writer, "ROLLBACK TO job", NULL);
            } else if (sqlite3_total_changes64(s->writer->db) != changes) {
                /* Written, then failed, with no savepoint to go back to:
                 * the whole group goes (below). */
                log_err(LOG_DOMAIN, "a job without a savepoint failed after writing (%s); "
                        "its group is rolled back", strerror(-j->result));
                free(err);
                err = xstrdup("a job without a savepoint failed after writing");
                commit_rc = -EIO;
            }
            s->chain = saved;
        }
        if (savepoint)
            exec_cached(s->writer, "RELEASE job", NULL);
        /* An I/O error, a full disk or no memory can make SQLite roll the
         * whole transaction back by itself: the jobs after this one would
         * then run outside it, each statement committed on its own. */
        if (commit_rc == 0 && sqlite3_get_autocommit(s->writer->db)) {
            log_err(LOG_DOMAIN, "SQLite rolled the transaction back during a job; its group is refused");
            free(err);
            err = xstrdup("SQLite rolled the transaction back");
            commit_rc = -EIO;
        }
    }
    /* The chain head, once per commit rather than once per entry. */
    if (commit_rc == 0 && s->chain.last_id != group_start_id &&
        audit_chain_save_head(s->writer, &s->chain) < 0)
        commit_rc = -EIO;
    if (commit_rc == 0)
        commit_rc = exec_cached(s->writer, "COMMIT", &err);
    if (commit_rc < 0) {
        log_err(LOG_DOMAIN, "transaction failed, %zu changes refused: %s", n, err ? err : "?");
        exec_sql(s->writer->db, "ROLLBACK;", NULL);
        audit_chain_load(s->writer, &s->chain);
    }
    free(err);

    pthread_mutex_lock(&s->lock);
    s->stats.commits++;
    s->stats.jobs += n;
    pthread_mutex_unlock(&s->lock);

    for (struct store_job *j = jobs, *next; j; j = next) {
        next = j->next;
        int result = commit_rc < 0 ? -EIO : j->result;
        if (j->done)
            j->done(j->ctx, result);
        free(j);
    }
}

static void *store_writer_main(void *arg)
{
    struct store *s = arg;
    thread_set_name("yg-store");
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        if (!s->head && s->stopping)
            break;
        /* Take everything that is waiting (bounded), leave the rest. */
        struct store_job *group = s->head, *last = s->head;
        for (size_t n = 1; n < GROUP_MAX_JOBS && last->next; n++)
            last = last->next;
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->lock);
        store_run_group(s, group);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

void store_submit(struct store *s, store_job_run_fn run, store_job_done_fn done, void *ctx)
{
    store_submit_flags(s, run, done, ctx, 0);
}

void store_submit_flags(struct store *s, store_job_run_fn run, store_job_done_fn done, void *ctx,
                        unsigned flags)
{
    struct store_job *j = xcalloc(1, sizeof *j);
    j->run = run;
    j->done = done;
    j->ctx = ctx;
    j->flags = flags;
    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        /* Shutting down: refuse rather than wait forever. */
        pthread_mutex_unlock(&s->lock);
        free(j);
        if (done)
            done(ctx, -ESHUTDOWN);
        return;
    }
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

struct sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool finished;
    int result;
    store_job_run_fn run;
    void *ctx;
};

static int sync_run(struct store_txn *txn, void *ctx)
{
    struct sync_wait *w = ctx;
    return w->run(txn, w->ctx);
}

static void sync_done(void *ctx, int result)
{
    struct sync_wait *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->result = result;
    w->finished = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int store_run(struct store *s, store_job_run_fn run, void *ctx)
{
    return store_run_flags(s, run, ctx, 0);
}

int store_run_flags(struct store *s, store_job_run_fn run, void *ctx, unsigned flags)
{
    struct sync_wait w = { .run = run, .ctx = ctx };
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    store_submit_flags(s, sync_run, sync_done, &w, flags);
    pthread_mutex_lock(&w.lock);
    while (!w.finished)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
    return w.result;
}

/* SQLite's process-wide settings, once, before its first use.  No memory
 * statistics: with them, every allocation SQLite makes takes a global
 * mutex to count itself (Debian's SQLite is built without lookaside, so
 * that is every record, cursor and bound value: 8 % of the writer's
 * instructions in the 1,000-VM loop).  yunguan never reads them.  When
 * SQLite is already in use in this process (a test's own connection),
 * the call is refused and nothing changes. */
static void sqlite_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(const char *path, struct store **ret_store, char **ret_errmsg)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, sqlite_configure);
    struct store *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_key_create(&s->reader_key, reader_destroy);

    int r = store_conn_open(path, false, &s->writer, ret_errmsg);
    if (r < 0)
        goto fail;
    r = store_migrate(s->writer, &s->schema_version, ret_errmsg);
    if (r < 0)
        goto fail;
    r = audit_chain_load(s->writer, &s->chain);
    if (r < 0) {
        *ret_errmsg = xstrdup("cannot read the audit chain head");
        goto fail;
    }
    if (pthread_create(&s->writer_thread, NULL, store_writer_main, s) != 0) {
        r = -errno;
        *ret_errmsg = xstrdup("cannot start the store writer thread");
        goto fail;
    }
    *ret_store = s;
    return 0;
fail:
    store_conn_free(s->writer);
    pthread_key_delete(s->reader_key);
    free(s->path);
    free(s);
    return r;
}

void store_shutdown(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->writer_stopped) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->writer_thread, NULL);   /* runs every job already queued */
    pthread_mutex_lock(&s->lock);
    s->writer_stopped = true;
    pthread_mutex_unlock(&s->lock);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_shutdown(s);
    /* This thread's reader, if it made one. */
    struct store_conn *mine = pthread_getspecific(s->reader_key);
    pthread_setspecific(s->reader_key, NULL);
    store_conn_free(mine);
    store_conn_free(s->writer);
    pthread_key_delete(s->reader_key);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s->path);
    free(s);
}

int store_schema_version(struct store *s) { return s->schema_version; }

void store_get_stats(struct store *s, struct store_stats *ret)
{
    pthread_mutex_lock(&s->lock);
    *ret = s->stats;
    pthread_mutex_unlock(&s->lock);
}

/* ---- periodic jobs ---- */

struct store_ticker {
    struct store *store;
    const char *what;
    int (*interval)(void);
    store_job_run_fn run;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

static void *ticker_main(void *arg)
{
    struct store_ticker *t = arg;
    thread_set_name("yg-sweep");
    pthread_mutex_lock(&t->lock);
    while (!t->stop) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += t->interval();
        while (!t->stop && pthread_cond_timedwait(&t->wake, &t->lock, &deadline) == 0)
            ;
        if (t->stop)
            break;
        pthread_mutex_unlock(&t->lock);
        int r = store_run(t->store, t->run, t->ctx);
        if (r < 0 && r != -ESHUTDOWN)
            log_warn(LOG_DOMAIN, "%s failed: %s", t->what, strerror(-r));
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

struct store_ticker *store_ticker_start(struct store *s, const char *what,
                                        int (*interval)(void), store_job_run_fn run, void *ctx)
{
    struct store_ticker *t = xcalloc(1, sizeof *t);
    *t = (struct store_ticker) { .store = s, .what = what, .interval = interval, .run = run, .ctx = ctx };
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->wake);
        free(t);
        return NULL;
    }
    return t;
}

void store_ticker_stop(struct store_ticker *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t);
}

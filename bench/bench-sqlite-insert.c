/* bench-sqlite-insert: the ceiling of the store alone.
 *
 * Writes what one accepted submission writes (controller/requests.c
 * requests_insert): one requests row carrying the submitted document, one
 * request_vms row per VM group, the first transition, one hash-chained
 * audit entry and the audit_head update — with plain prepared statements on
 * one connection, no HTTP, no YAML, no JSON building.  Same schema
 * (yunguand's compiled-in migrations), same pragmas (WAL,
 * synchronous=FULL, foreign_keys=ON).
 *
 *   bench/bench-sqlite-insert [--db PATH] [--count N] [--group N]
 *                             [--vm-groups N] [--source FILE]
 *                             [--synchronous FULL|NORMAL|OFF] [--savepoints]
 *
 * --group 1 commits every submission on its own (one fsync each);
 * --group 32 commits 32 per transaction (what group commit achieves when 32
 * clients wait).  --savepoints wraps each submission in SAVEPOINT/RELEASE
 * as controller/store.c does.  The database file is created fresh (an
 * existing one is removed).  Prints one line of figures. */
#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "store-schema.h"
#include "util.h"

static sqlite3 *db;

static void die_sql(const char *what)
{
    fprintf(stderr, "bench-sqlite-insert: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "bench-sqlite-insert: %s: %s\n", sql, err ? err : "?");
        exit(1);
    }
}

static sqlite3_stmt *prepare(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        die_sql(sql);
    return st;
}

static void step_done(sqlite3_stmt *st, const char *what)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        die_sql(what);
    sqlite3_reset(st);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-sqlite-insert [--db PATH] [--count N] [--group N] [--vm-groups N]\n"
               "                           [--source FILE] [--synchronous FULL|NORMAL|OFF] [--savepoints]\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "db", required_argument, NULL, 'd' },
        { "count", required_argument, NULL, 'n' },
        { "group", required_argument, NULL, 'g' },
        { "vm-groups", required_argument, NULL, 'v' },
        { "source", required_argument, NULL, 's' },
        { "synchronous", required_argument, NULL, 'S' },
        { "savepoints", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *path = "bench-sqlite-insert.db", *source_path = NULL, *sync = "FULL";
    long count = 5000, group = 1, vm_groups = 4;
    bool savepoints = false;
    int c;
    while ((c = getopt_long(argc, argv, "d:n:g:v:s:S:Ph", options, NULL)) != -1) {
        switch (c) {
        case 'd': path = optarg; break;
        case 'n': count = strtol(optarg, NULL, 10); break;
        case 'g': group = strtol(optarg, NULL, 10); break;
        case 'v': vm_groups = strtol(optarg, NULL, 10); break;
        case 's': source_path = optarg; break;
        case 'S': sync = optarg; break;
        case 'P': savepoints = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (count < 1 || group < 1 || vm_groups < 1 || vm_groups > 64 ||
        !(streq(sync, "FULL") || streq(sync, "NORMAL") || streq(sync, "OFF"))) {
        usage(stderr);
        return 2;
    }

    /* The submitted document stored with each request (about 1.5 KB). */
    char *source = NULL;
    size_t source_len = 0;
    if (source_path) {
        int r = read_file_limited(source_path, 64 * 1024, &source, &source_len);
        if (r < 0) {
            fprintf(stderr, "bench-sqlite-insert: %s: %s\n", source_path, strerror(-r));
            return 1;
        }
    } else {
        source = xmalloc(1501);
        memset(source, 'y', 1500);
        source[1500] = '\0';
    }

    static const char *const suffixes[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < YG_ARRAY_SIZE(suffixes); i++) {
        _cleanup_free_ char *f = xasprintf("%s%s", path, suffixes[i]);
        unlink(f);
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        die_sql("open");
    _cleanup_free_ char *pragmas = xasprintf("PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; "
                                             "PRAGMA foreign_keys=ON;", sync);
    exec(pragmas);
    for (size_t i = 0; i < store_n_migrations; i++) {
        exec("BEGIN IMMEDIATE;");
        exec(store_migrations[i].sql);
        _cleanup_free_ char *bump = xasprintf("PRAGMA user_version=%d;", store_migrations[i].version);
        exec(bump);
        exec("COMMIT;");
    }
    char at[32];
    format_utc_now(at);
    exec("BEGIN;");
    sqlite3_stmt *st = prepare("INSERT INTO departments (name, created_at) VALUES ('bench', ?1)");
    sqlite3_bind_text(st, 1, at, -1, SQLITE_TRANSIENT);
    step_done(st, "department");
    sqlite3_finalize(st);
    exec("COMMIT;");

    /* The statements of requests_insert(), lifecycle_record(), audit_append(). */
    sqlite3_stmt *ins_request = prepare(
        "INSERT INTO requests (department_id, name, state, purpose, security_level, lease_until, "
        "  segment, ipv6, total_vms, total_vcpus, total_memory_mib, total_disk_gib, source, "
        "  submitted_by, created_at, updated_at) "
        "VALUES (?1, ?2, 'submitted', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)");
    sqlite3_stmt *ins_vm = prepare(
        "INSERT INTO request_vms (request_id, position, name, count, vcpus, memory_mib, "
        "  disk_gib, image) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    sqlite3_stmt *ins_transition = prepare(
        "INSERT INTO transitions (request_id, from_state, to_state, actor, role, reason, at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    sqlite3_stmt *ins_audit = prepare(
        "INSERT INTO audit (id, at, actor, role, action, object, before, after, prev_hash, hash) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    sqlite3_stmt *upd_head = prepare(
        "UPDATE audit_head SET last_id = ?1, last_hash = ?2 WHERE singleton = 1");

    static const char purpose[] =
        "居民疫苗接种预约系统（卫健委）：面向全市居民提供在线预约、改约与取消，对接社区卫生服务中心排班与疫苗库存。"
        "Vaccine appointment booking for residents: online booking, rescheduling and cancellation.";
    struct audit_chain chain = { 0 };
    long commits = 0;
    uint64_t start = monotonic_usec();
    for (long i = 0; i < count; i++) {
        if (i % group == 0) {
            exec("BEGIN IMMEDIATE;");
        }
        if (savepoints)
            exec("SAVEPOINT job;");
        char name[64], object[48], after[512], hash[65];
        snprintf(name, sizeof name, "sqlite-bench-%ld", i);
        format_utc_now(at);

        sqlite3_bind_int64(ins_request, 1, 1);
        sqlite3_bind_text(ins_request, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins_request, 3, purpose, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins_request, 4, 3);
        sqlite3_bind_text(ins_request, 5, "2027-06-30", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_request, 6, "health-dmz", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_request, 7, "required", -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins_request, 8, 9);
        sqlite3_bind_int64(ins_request, 9, 36);
        sqlite3_bind_int64(ins_request, 10, 114688);
        sqlite3_bind_int64(ins_request, 11, 1400);
        sqlite3_bind_text(ins_request, 12, source, (int) source_len, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins_request, 13, "token:2", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_request, 14, at, -1, SQLITE_TRANSIENT);
        step_done(ins_request, "insert request");
        int64_t id = sqlite3_last_insert_rowid(db);

        static const char *const vm_names[] = { "web", "app", "cache", "db" };
        for (long v = 0; v < vm_groups; v++) {
            char vm_name[16];
            snprintf(vm_name, sizeof vm_name, "%s%ld", vm_names[v % 4], v / 4 ? v / 4 : 0);
            sqlite3_bind_int64(ins_vm, 1, id);
            sqlite3_bind_int(ins_vm, 2, (int) v);
            sqlite3_bind_text(ins_vm, 3, vm_name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(ins_vm, 4, 2);
            sqlite3_bind_int(ins_vm, 5, 4);
            sqlite3_bind_int64(ins_vm, 6, 8192);
            sqlite3_bind_int64(ins_vm, 7, 80);
            sqlite3_bind_text(ins_vm, 8, "kylin-server-v10", -1, SQLITE_STATIC);
            step_done(ins_vm, "insert request_vms");
        }

        sqlite3_bind_int64(ins_transition, 1, id);
        sqlite3_bind_null(ins_transition, 2);
        sqlite3_bind_text(ins_transition, 3, "submitted", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_transition, 4, "token:2", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_transition, 5, "department", -1, SQLITE_STATIC);
        sqlite3_bind_null(ins_transition, 6);
        sqlite3_bind_text(ins_transition, 7, at, -1, SQLITE_TRANSIENT);
        step_done(ins_transition, "insert transition");

        snprintf(object, sizeof object, "request/%lld", (long long) id);
        snprintf(after, sizeof after,
                 "{\"department\":\"bench\",\"disk_gib\":1400,\"memory_mib\":114688,\"name\":\"%s\","
                 "\"state\":\"submitted\",\"vcpus\":36,\"vms\":9}", name);
        int64_t audit_id = chain.last_id + 1;
        audit_entry_hash(chain.last_hash, at, "token:2", "department", "request.submit", object,
                         NULL, after, hash);
        sqlite3_bind_int64(ins_audit, 1, audit_id);
        sqlite3_bind_text(ins_audit, 2, at, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins_audit, 3, "token:2", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_audit, 4, "department", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_audit, 5, "request.submit", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins_audit, 6, object, -1, SQLITE_TRANSIENT);
        sqlite3_bind_null(ins_audit, 7);
        sqlite3_bind_text(ins_audit, 8, after, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins_audit, 9, chain.last_hash, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins_audit, 10, hash, -1, SQLITE_TRANSIENT);
        step_done(ins_audit, "insert audit");
        sqlite3_bind_int64(upd_head, 1, audit_id);
        sqlite3_bind_text(upd_head, 2, hash, -1, SQLITE_TRANSIENT);
        step_done(upd_head, "update audit_head");
        chain.last_id = audit_id;
        memcpy(chain.last_hash, hash, sizeof hash);

        if (savepoints)
            exec("RELEASE job;");
        if ((i + 1) % group == 0 || i + 1 == count) {
            exec("COMMIT;");
            commits++;
        }
    }
    uint64_t usec = monotonic_usec() - start;
    double secs = (double) usec / 1e6;
    printf("sqlite-insert group=%ld vm_groups=%ld synchronous=%s savepoints=%s: "
           "%ld submissions in %.3f s = %.0f submissions/s (%ld commits, %.0f commits/s, %.3f ms/commit)\n",
           group, vm_groups, sync, savepoints ? "yes" : "no", count, secs, (double) count / secs,
           commits, (double) commits / secs, secs * 1000.0 / (double) commits);

    sqlite3_finalize(ins_request);
    sqlite3_finalize(ins_vm);
    sqlite3_finalize(ins_transition);
    sqlite3_finalize(ins_audit);
    sqlite3_finalize(upd_head);
    sqlite3_close(db);
    free(source);
    return 0;
}

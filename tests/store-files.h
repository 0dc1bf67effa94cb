/* tests/store-files.h: removing a store a test made in a directory of its
 * own (included by the unit and fuzz tests that open stores). */
#ifndef YG_TESTS_STORE_FILES_H
#define YG_TESTS_STORE_FILES_H 1

#include <stdio.h>
#include <unistd.h>

/* The database at DB_PATH, its WAL and shared-memory files, then DIR
 * (which held nothing else).  The store must be closed. */
static inline void test_store_files_remove(const char *dir, const char *db_path)
{
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s%s", db_path, suffixes[i]);
        unlink(p);
    }
    rmdir(dir);
}

#endif

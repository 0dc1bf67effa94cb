/* A SQLite VFS over the default one that gathers the writes of a WAL file
 * and hands them to the kernel in one pwrite(), just before the WAL is
 * synced, read, truncated or sized, or its new frames become visible to
 * readers.
 *
 * Why: a commit appends each changed page to the WAL as two writes (the
 * 24-byte frame header, then the page): ~50 pwrite() calls for a commit of
 * ten submissions, and on this virtual machine each system call is
 * expensive (13 % of yunguand's CPU was in them).  One pwrite() of the same
 * bytes costs a fraction of that.
 *
 * Durability is unchanged: every byte reaches the kernel before the
 * fsync that SQLite asks for, in the same order, and nothing is
 * acknowledged before that fsync.  Readers (other connections, their own
 * file descriptors) see only frames that the wal-index header counts, and
 * SQLite publishes that header after xSync (synchronous=FULL) and in any
 * case after an xShmBarrier on the database file, where this VFS writes
 * out what it holds as well.  A write that fails there cannot be reported
 * to SQLite (xShmBarrier returns nothing): it is kept and returned by the
 * WAL's next operation — with synchronous=FULL, which the store always
 * sets, the buffer is already empty by then. */
#include <config.h>
#include "store-walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WALBUF_VFS_NAME "yunguan-walbuf"
#define WALBUF_CAPACITY (1024 * 1024)   /* a commit of ~250 pages; more is written in pieces */
/* The unix VFS writes at most 128 KiB - 1 per call (seekAndWriteFd masks
 * the length with 0x1ffff: a call of exactly 128 KiB writes nothing and
 * reports SQLITE_FULL), so the buffer goes out in pieces of 124 KiB. */
#define WALBUF_WRITE_MAX ((size_t) 124 * 1024)

struct walbuf_file {
    sqlite3_file base;              /* pMethods = &walbuf_io */
    sqlite3_file *real;             /* the default VFS's file, after this struct */
    struct walbuf_file *db;         /* a WAL: its database file (set while both are open) */
    struct walbuf_file *wal;        /* a database file: its WAL, when open */
    bool is_wal;
    char *buf;                      /* pending bytes of a WAL, from file offset buf_offset */
    size_t buf_len;
    sqlite3_int64 buf_offset;
    int deferred_rc;                /* a write that failed in xShmBarrier */
};

#define REAL_OFFSET ((sizeof(struct walbuf_file) + 15) & ~(size_t) 15)

static sqlite3_vfs walbuf_vfs;
static const sqlite3_io_methods walbuf_io;

static sqlite3_vfs *base_vfs(void) { return walbuf_vfs.pAppData; }

/* Hand the pending bytes to the kernel. */
static int walbuf_flush(struct walbuf_file *f)
{
    if (f->deferred_rc != SQLITE_OK) {
        int rc = f->deferred_rc;   /* reported once, by the WAL's next operation */
        f->deferred_rc = SQLITE_OK;
        return rc;
    }
    if (f->buf_len == 0)
        return SQLITE_OK;
    int rc = SQLITE_OK;
    for (size_t done = 0; done < f->buf_len && rc == SQLITE_OK; ) {
        size_t n = f->buf_len - done < WALBUF_WRITE_MAX ? f->buf_len - done : WALBUF_WRITE_MAX;
        rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int) n,
                                       f->buf_offset + (sqlite3_int64) done);
        done += n;
    }
    f->buf_len = 0;
    return rc;
}

static int walbuf_close(sqlite3_file *file)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    int rc = f->is_wal ? walbuf_flush(f) : SQLITE_OK;
    if (f->db)
        f->db->wal = NULL;
    if (f->wal)
        f->wal->db = NULL;
    free(f->buf);
    f->buf = NULL;
    int rc2 = f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : rc2;
}

static int walbuf_read(sqlite3_file *file, void *out, int amount, sqlite3_int64 offset)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    if (f->is_wal) {
        int rc = walbuf_flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    return f->real->pMethods->xRead(f->real, out, amount, offset);
}

static int walbuf_write(sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    if (!f->is_wal)
        return f->real->pMethods->xWrite(f->real, data, amount, offset);
    if (f->deferred_rc != SQLITE_OK)
        return walbuf_flush(f);
    size_t n = (size_t) amount;
    bool appends = f->buf_len > 0 && offset == f->buf_offset + (sqlite3_int64) f->buf_len;
    if (!appends || f->buf_len + n > WALBUF_CAPACITY) {
        int rc = walbuf_flush(f);
        if (rc != SQLITE_OK)
            return rc;
        if (n > WALBUF_WRITE_MAX)
            return f->real->pMethods->xWrite(f->real, data, amount, offset);
        f->buf_offset = offset;
    }
    if (!f->buf && !(f->buf = malloc(WALBUF_CAPACITY)))
        return f->real->pMethods->xWrite(f->real, data, amount, offset);
    memcpy(f->buf + f->buf_len, data, n);
    f->buf_len += n;
    return SQLITE_OK;
}

static int walbuf_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    int rc = f->is_wal ? walbuf_flush(f) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int walbuf_sync(sqlite3_file *file, int flags)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    int rc = f->is_wal ? walbuf_flush(f) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int walbuf_file_size(sqlite3_file *file, sqlite3_int64 *ret_size)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    int rc = f->is_wal ? walbuf_flush(f) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, ret_size);
}

static int walbuf_lock(sqlite3_file *file, int level)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    return f->real->pMethods->xLock(f->real, level);
}

static int walbuf_unlock(sqlite3_file *file, int level)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int walbuf_check_reserved_lock(sqlite3_file *file, int *ret)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    return f->real->pMethods->xCheckReservedLock(f->real, ret);
}

static int walbuf_file_control(sqlite3_file *file, int op, void *arg)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    if (f->is_wal) {
        int rc = walbuf_flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (op == SQLITE_FCNTL_VFSNAME) {
        /* Name this VFS in front of the one underneath, as SQLite's shims do. */
        int rc = f->real->pMethods->xFileControl(f->real, op, arg);
        if (rc == SQLITE_OK && *(char **) arg) {
            char *under = *(char **) arg;
            *(char **) arg = sqlite3_mprintf("%s/%z", WALBUF_VFS_NAME, under);
        } else if (rc == SQLITE_NOTFOUND) {
            *(char **) arg = sqlite3_mprintf("%s", WALBUF_VFS_NAME);
            rc = SQLITE_OK;
        }
        return rc;
    }
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int walbuf_sector_size(sqlite3_file *file)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int walbuf_device_characteristics(sqlite3_file *file)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* The wal-index (shared memory) belongs to the database file.  Before any
 * lock change or barrier on it, the WAL's pending frames go out, so no
 * reader is ever told of a frame that the kernel does not have. */
static void walbuf_flush_wal_of(struct walbuf_file *db)
{
    if (db->wal && db->wal->buf_len > 0) {
        int rc = walbuf_flush(db->wal);
        if (rc != SQLITE_OK)
            db->wal->deferred_rc = rc;
    }
}

static int walbuf_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **ret)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    return f->real->pMethods->xShmMap(f->real, region, size, extend, ret);
}

static int walbuf_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    if (f->wal && f->wal->buf_len > 0) {
        int rc = walbuf_flush(f->wal);
        if (rc != SQLITE_OK)
            return rc;
    }
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void walbuf_shm_barrier(sqlite3_file *file)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    walbuf_flush_wal_of(f);
    f->real->pMethods->xShmBarrier(f->real);
}

static int walbuf_shm_unmap(sqlite3_file *file, int delete_flag)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    walbuf_flush_wal_of(f);
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int walbuf_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **ret)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    if (f->real->pMethods->iVersion < 3 || f->is_wal) {
        *ret = NULL;
        return SQLITE_OK;
    }
    return f->real->pMethods->xFetch(f->real, offset, amount, ret);
}

static int walbuf_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *p)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    if (f->real->pMethods->iVersion < 3 || f->is_wal)
        return SQLITE_OK;
    return f->real->pMethods->xUnfetch(f->real, offset, p);
}

static const sqlite3_io_methods walbuf_io = {
    .iVersion = 3,
    .xClose = walbuf_close,
    .xRead = walbuf_read,
    .xWrite = walbuf_write,
    .xTruncate = walbuf_truncate,
    .xSync = walbuf_sync,
    .xFileSize = walbuf_file_size,
    .xLock = walbuf_lock,
    .xUnlock = walbuf_unlock,
    .xCheckReservedLock = walbuf_check_reserved_lock,
    .xFileControl = walbuf_file_control,
    .xSectorSize = walbuf_sector_size,
    .xDeviceCharacteristics = walbuf_device_characteristics,
    .xShmMap = walbuf_shm_map,
    .xShmLock = walbuf_shm_lock,
    .xShmBarrier = walbuf_shm_barrier,
    .xShmUnmap = walbuf_shm_unmap,
    .xFetch = walbuf_fetch,
    .xUnfetch = walbuf_unfetch,
};

static int walbuf_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                       int *ret_flags)
{
    struct walbuf_file *f = (struct walbuf_file *) file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *) ((char *) f + REAL_OFFSET);
    int rc = base_vfs()->xOpen(base_vfs(), name, f->real, flags, ret_flags);
    if (rc != SQLITE_OK) {
        f->base.pMethods = NULL;
        return rc;
    }
    if (f->real->pMethods->iVersion < 2) {
        /* No shared memory: WAL needs it, and so does our flushing. */
        f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    f->base.pMethods = &walbuf_io;
    f->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
    if (f->is_wal && name) {
        /* The database this WAL belongs to was opened through this VFS too. */
        sqlite3_file *db = sqlite3_database_file_object(name);
        if (db && db->pMethods == &walbuf_io) {
            f->db = (struct walbuf_file *) db;
            f->db->wal = f;
        }
    }
    return SQLITE_OK;
}

/* The rest is the default VFS's own. */
static int walbuf_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return base_vfs()->xDelete(base_vfs(), name, sync_dir);
}

static int walbuf_access(sqlite3_vfs *vfs, const char *name, int flags, int *ret)
{
    return base_vfs()->xAccess(base_vfs(), name, flags, ret);
}

static int walbuf_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    return base_vfs()->xFullPathname(base_vfs(), name, n, out);
}

static void *walbuf_dlopen(sqlite3_vfs *vfs, const char *path)
{
    return base_vfs()->xDlOpen(base_vfs(), path);
}

static void walbuf_dlerror(sqlite3_vfs *vfs, int n, char *out)
{
    base_vfs()->xDlError(base_vfs(), n, out);
}

static void (*walbuf_dlsym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void)
{
    return base_vfs()->xDlSym(base_vfs(), handle, symbol);
}

static void walbuf_dlclose(sqlite3_vfs *vfs, void *handle)
{
    base_vfs()->xDlClose(base_vfs(), handle);
}

static int walbuf_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    return base_vfs()->xRandomness(base_vfs(), n, out);
}

static int walbuf_sleep(sqlite3_vfs *vfs, int usec)
{
    return base_vfs()->xSleep(base_vfs(), usec);
}

static int walbuf_current_time(sqlite3_vfs *vfs, double *ret)
{
    return base_vfs()->xCurrentTime(base_vfs(), ret);
}

static int walbuf_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    return base_vfs()->xGetLastError ? base_vfs()->xGetLastError(base_vfs(), n, out) : 0;
}

static int walbuf_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *ret)
{
    if (base_vfs()->iVersion >= 2 && base_vfs()->xCurrentTimeInt64)
        return base_vfs()->xCurrentTimeInt64(base_vfs(), ret);
    double now;
    int rc = base_vfs()->xCurrentTime(base_vfs(), &now);
    *ret = (sqlite3_int64) (now * 86400000.0);
    return rc;
}

static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;
static int walbuf_register_rc = SQLITE_ERROR;

static void walbuf_register(void)
{
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    if (!base)
        return;
    walbuf_vfs = (sqlite3_vfs) {
        .iVersion = 2,
        .szOsFile = (int) (REAL_OFFSET + (size_t) base->szOsFile),
        .mxPathname = base->mxPathname,
        .zName = WALBUF_VFS_NAME,
        .pAppData = base,
        .xOpen = walbuf_open,
        .xDelete = walbuf_delete,
        .xAccess = walbuf_access,
        .xFullPathname = walbuf_full_pathname,
        .xDlOpen = walbuf_dlopen,
        .xDlError = walbuf_dlerror,
        .xDlSym = walbuf_dlsym,
        .xDlClose = walbuf_dlclose,
        .xRandomness = walbuf_randomness,
        .xSleep = walbuf_sleep,
        .xCurrentTime = walbuf_current_time,
        .xGetLastError = walbuf_get_last_error,
        .xCurrentTimeInt64 = walbuf_current_time_int64,
    };
    walbuf_register_rc = sqlite3_vfs_register(&walbuf_vfs, 0);
}

const char *store_walbuf_vfs(void)
{
    pthread_once(&walbuf_once, walbuf_register);
    return walbuf_register_rc == SQLITE_OK ? WALBUF_VFS_NAME : NULL;
}

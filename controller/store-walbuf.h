/* A SQLite VFS that writes a WAL's frames with one system call per
 * commit instead of two per page (store-walbuf.c says how and why it keeps
 * durability).  The store opens its writer connection through it. */
#ifndef YG_STORE_WALBUF_H
#define YG_STORE_WALBUF_H 1

/* The VFS's name for sqlite3_open_v2(), registered on first use (not as
 * the default); NULL if it could not be registered. */
const char *store_walbuf_vfs(void);

#endif

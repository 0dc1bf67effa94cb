#include <config.h>
#include "audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "log.h"
#include "sha256.h"
#include "store.h"
#include "util.h"

static void hash_field(struct sha256_ctx *ctx, const char *s)
{
    /* Length-prefixed ("LEN:"), and NULL ("-:") distinct from "". */
    if (!s) {
        sha256_update(ctx, "-:", 2);
        return;
    }
    size_t len = strlen(s);
    char prefix[24];
    char *p = prefix + sizeof prefix;
    *--p = ':';
    size_t v = len;
    do
        *--p = (char) ('0' + v % 10);
    while ((v /= 10) > 0);
    sha256_update(ctx, p, (size_t) (prefix + sizeof prefix - p));
    sha256_update(ctx, s, len);
}

void audit_entry_hash(const char *prev_hash, const char *at, const char *actor,
                      const char *role, const char *action, const char *object,
                      const char *before, const char *after, char out[65])
{
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    hash_field(&ctx, "yunguan-audit-v1");
    hash_field(&ctx, prev_hash);
    hash_field(&ctx, at);
    hash_field(&ctx, actor);
    hash_field(&ctx, role);
    hash_field(&ctx, action);
    hash_field(&ctx, object);
    hash_field(&ctx, before);
    hash_field(&ctx, after);
    sha256_final(&ctx, digest);
    hex_encode(digest, sizeof digest, out);
}

static int chain_read(struct store_conn *conn, const char *sql, struct audit_chain *chain)
{
    sqlite3_stmt *st = store_stmt(conn, sql);
    if (!st)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        chain->last_id = sqlite3_column_int64(st, 0);
        snprintf(chain->last_hash, sizeof chain->last_hash, "%s", store_column_text(st, 1));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -EIO;
}

int audit_chain_load(struct store_conn *conn, struct audit_chain *ret_chain)
{
    /* The chain goes on from the head, not from the newest row: were the
     * newest entries deleted while the daemon was down, continuing from the
     * last row would overwrite the head to match and hide the deletion.
     * The head is written in the same transaction as every entry. */
    struct audit_chain chain = { 0 };
    int r = chain_read(conn, "SELECT last_id, last_hash FROM audit_head WHERE singleton = 1", &chain);
    if (r == 0)
        r = chain_read(conn, "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1", &chain);
    if (r < 0)
        return r;
    *ret_chain = chain;
    return 0;
}

int audit_append(struct store_txn *txn, const char *actor, const char *role,
                 const char *action, const char *object, json_t *before, json_t *after)
{
    _cleanup_free_ char *before_s = audit_json_text(before);
    _cleanup_free_ char *after_s = audit_json_text(after);
    return audit_append_text(txn, actor, role, action, object, before_s, after_s);
}

int audit_append_text(struct store_txn *txn, const char *actor, const char *role,
                      const char *action, const char *object, const char *before_s, const char *after_s)
{
    struct store_conn *conn = store_txn_conn(txn);
    struct audit_chain *chain = store_txn_audit_chain(txn);
    char at[32], hash[65];
    int64_t id = chain->last_id + 1;

    format_utc_now(at);
    audit_entry_hash(chain->last_hash, at, actor, role, action, object, before_s, after_s, hash);

    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO audit (id, at, actor, role, action, object, before, after, prev_hash, hash) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (!st)
        return -EIO;
    /* Every string lives until the statement is reset below: no copies. */
    const char *texts[] = { at, actor, role, action, object, before_s, after_s, chain->last_hash, hash };
    sqlite3_bind_int64(st, 1, id);
    for (int i = 0; i < (int) YG_ARRAY_SIZE(texts); i++)
        if (texts[i])
            sqlite3_bind_text(st, i + 2, texts[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_err("audit", "cannot append audit entry: %s", sqlite3_errmsg(store_conn_db(conn)));
        return -EIO;
    }
    chain->last_id = id;
    memcpy(chain->last_hash, hash, sizeof hash);
    return 0;
}

/* ---- the trail's JSON, written directly ----
 *
 * Byte for byte what json_dumps(J, AUDIT_JSON_FLAGS) writes: compact, keys
 * sorted bytewise, every character outside printable ASCII escaped (\uXXXX,
 * upper-case hex, a surrogate pair beyond the BMP; \b \f \n \r \t by name),
 * "/" as is.  jansson's dump took ~26,000 instructions for a VM's move
 * (a callback per token, its keys sorted through its own allocations, and
 * json_deep_copy() to add the move's own keys): a quarter of the audit's
 * cost per VM.  What this writer does not do itself (reals, strings that
 * are not UTF-8, keys with NUL, nesting deeper than JSON_MAX_DEPTH) goes to
 * jansson, so the form never changes. */
#define AUDIT_JSON_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
#define JSON_MAX_DEPTH 32

static bool put_string(struct strbuf *sb, const char *text, size_t len)
{
    return strbuf_put_json_string(sb, text, len, true);
}

/* A member to write: KEY with a jansson VALUE, or with the string TEXT. */
struct member {
    const char *key;
    json_t *value;
    const char *text;
};

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const struct member *) a)->key, ((const struct member *) b)->key);
}

/* Insertion sort for a move's handful of keys (glibc's qsort() sets up a
 * merge sort, and may allocate, on every call); qsort() for big objects. */
static void sort_members(struct member *m, size_t n)
{
    if (n > 16) {
        qsort(m, n, sizeof *m, cmp_member);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        struct member x = m[i];
        size_t j = i;
        for (; j > 0 && strcmp(m[j - 1].key, x.key) > 0; j--)
            m[j] = m[j - 1];
        m[j] = x;
    }
}

static bool put_value(struct strbuf *sb, json_t *j, int depth);

/* The members of OBJECT (may be NULL) and N key/text PAIRS over them (a
 * NULL text sets nothing), keys sorted.  A pair's key replaces the
 * object's member of that name. */
static bool put_object(struct strbuf *sb, json_t *object, const char *const *pairs, size_t n_pairs, int depth)
{
    size_t size = (object ? json_object_size(object) : 0) + n_pairs;
    struct member stack[16];
    struct member *m = size <= YG_ARRAY_SIZE(stack) ? stack : xmalloc(size * sizeof *m);
    size_t n = 0;
    bool ok = true;
    for (size_t i = 0; i < n_pairs; i++)
        if (pairs[2 * i + 1])
            m[n++] = (struct member) { .key = pairs[2 * i], .text = pairs[2 * i + 1] };
    size_t n_own = n;
    if (object) {
        for (void *it = json_object_iter(object); it; it = json_object_iter_next(object, it)) {
            const char *key = json_object_iter_key(it);
            json_t *v = json_object_iter_value(it);
            if (json_object_iter_key_len(it) != strlen(key)) {
                ok = false;     /* a key with a NUL in it */
                break;
            }
            bool replaced = false;
            for (size_t i = 0; i < n_own && !replaced; i++)
                replaced = streq(m[i].key, key);
            if (!replaced)
                m[n++] = (struct member) { .key = key, .value = v };
        }
    }
    if (ok) {
        sort_members(m, n);
        strbuf_add(sb, "{", 1);
        for (size_t i = 0; i < n && ok; i++) {
            if (i > 0)
                strbuf_add(sb, ",", 1);
            ok = put_string(sb, m[i].key, strlen(m[i].key));
            strbuf_add(sb, ":", 1);
            if (ok)
                ok = m[i].text ? put_string(sb, m[i].text, strlen(m[i].text))
                               : put_value(sb, m[i].value, depth + 1);
        }
        strbuf_add(sb, "}", 1);
    }
    if (m != stack)
        free(m);
    return ok;
}

static bool put_value(struct strbuf *sb, json_t *j, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return false;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return put_object(sb, j, NULL, 0, depth);
    case JSON_ARRAY: {
        strbuf_add(sb, "[", 1);
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                strbuf_add(sb, ",", 1);
            if (!put_value(sb, json_array_get(j, i), depth + 1))
                return false;
        }
        strbuf_add(sb, "]", 1);
        return true;
    }
    case JSON_STRING:
        return put_string(sb, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: {
        char num[24];
        int len = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        strbuf_add(sb, num, (size_t) len);
        return true;
    }
    case JSON_TRUE:
        strbuf_add(sb, "true", 4);
        return true;
    case JSON_FALSE:
        strbuf_add(sb, "false", 5);
        return true;
    case JSON_NULL:
        strbuf_add(sb, "null", 4);
        return true;
    default:
        return false;   /* a real: jansson's digits */
    }
}

char *audit_json_text(json_t *j)
{
    if (!j)
        return NULL;
    struct strbuf sb;
    strbuf_init(&sb);
    if (put_value(&sb, j, 0))
        return strbuf_steal(&sb);
    strbuf_free(&sb);
    return json_dumps(j, AUDIT_JSON_FLAGS | JSON_ENCODE_ANY);
}

char *audit_json_text_with(json_t *object, const char *const *pairs, size_t n)
{
    struct strbuf sb;
    strbuf_init(&sb);
    if (put_object(&sb, object, pairs, n, 0))
        return strbuf_steal(&sb);
    strbuf_free(&sb);
    json_t *copy = object ? json_deep_copy(object) : json_object();
    for (size_t i = 0; i < n; i++)
        if (pairs[2 * i + 1])
            json_object_set_new(copy, pairs[2 * i], json_string(pairs[2 * i + 1]));
    char *text = json_dumps(copy, AUDIT_JSON_FLAGS);
    json_decref(copy);
    return text;
}

int audit_chain_save_head(struct store_conn *conn, const struct audit_chain *chain)
{
    sqlite3_stmt *st = store_stmt(conn, "UPDATE audit_head SET last_id = ?1, last_hash = ?2 WHERE singleton = 1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, chain->last_id);
    store_bind_text(st, 2, chain->last_hash);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

static json_t *entry_json(sqlite3_stmt *st)
{
    json_t *e = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}",
                          "id", (json_int_t) sqlite3_column_int64(st, 0),
                          "at", store_column_text(st, 1), "actor", store_column_text(st, 2),
                          "role", store_column_text(st, 3), "action", store_column_text(st, 4),
                          "object", store_column_text(st, 5));
    for (int col = 6; col <= 7; col++) {
        const char *name = col == 6 ? "before" : "after";
        const char *text = (const char *) sqlite3_column_text(st, col);
        json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
        /* A damaged value is shown as text rather than dropped. */
        json_object_set_new(e, name, v ? v : (text ? json_string(text) : json_null()));
    }
    json_object_set_new(e, "hash", json_string(store_column_text(st, 9)));
    return e;
}

json_t *audit_list(struct store_conn *conn, int64_t after, int limit)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT id, at, actor, role, action, object, before, after, prev_hash, hash "
        "FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, limit + 1);
    json_t *items = json_array();
    int64_t next = -1;
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == limit) {
            next = sqlite3_column_int64(st, 0) - 1;
            break;
        }
        json_array_append_new(items, entry_json(st));
        n++;
    }
    sqlite3_reset(st);
    if (next >= 0) {
        json_t *last = json_array_get(items, json_array_size(items) - 1);
        next = json_integer_value(json_object_get(last, "id"));
    }
    return json_pack("{s:o, s:o}", "items", items,
                     "next", next >= 0 ? json_integer(next) : json_null());
}

/* hash → id, to tell a reordered entry (its predecessor exists elsewhere)
 * from one whose predecessor is gone. */
struct hash_index {
    struct { char hash[65]; int64_t id; } *slots;
    size_t cap;
};

static size_t hash_slot(const struct hash_index *h, const char *hash)
{
    uint64_t v = 0;
    for (int i = 0; i < 16 && hash[i]; i++)
        v = v * 16 + (uint64_t) (hash[i] <= '9' ? hash[i] - '0' : (hash[i] | 32) - 'a' + 10);
    return (size_t) (v % h->cap);
}

static void hash_index_put(struct hash_index *h, const char *hash, int64_t id)
{
    size_t i = hash_slot(h, hash);
    while (h->slots[i].hash[0] && !streq(h->slots[i].hash, hash))
        i = (i + 1) % h->cap;
    snprintf(h->slots[i].hash, sizeof h->slots[i].hash, "%s", hash);
    h->slots[i].id = id;
}

static int64_t hash_index_get(const struct hash_index *h, const char *hash)
{
    if (!*hash)
        return -1;
    size_t i = hash_slot(h, hash);
    while (h->slots[i].hash[0]) {
        if (streq(h->slots[i].hash, hash))
            return h->slots[i].id;
        i = (i + 1) % h->cap;
    }
    return -1;
}

static void add_problem(json_t *problems, int64_t id, const char *problem, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_problem(json_t *problems, int64_t id, const char *problem, const char *fmt, ...)
{
    va_list ap;
    char msg[512];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (json_array_size(problems) < 1000)
        json_array_append_new(problems, json_pack("{s:I, s:s, s:s}", "id", (json_int_t) id,
                                                  "problem", problem, "message", msg));
}

int audit_anchors_parse(const char *text, struct audit_anchor *anchors, size_t *ret_n,
                        char *err, size_t err_size)
{
    size_t n = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchrnul(p, ',');
        const char *colon = memchr(p, ':', (size_t) (end - p));
        if (n == AUDIT_MAX_ANCHORS) {
            snprintf(err, err_size, "at most %d anchors can be checked at once", AUDIT_MAX_ANCHORS);
            return -EINVAL;
        }
        char *idend = NULL;
        errno = 0;
        long long id = colon ? strtoll(p, &idend, 10) : 0;
        size_t hlen = colon ? (size_t) (end - colon - 1) : 0;
        bool hex = hlen == 64;
        for (size_t i = 0; hex && i < 64; i++)
            hex = (colon[1 + i] >= '0' && colon[1 + i] <= '9') || (colon[1 + i] >= 'a' && colon[1 + i] <= 'f');
        if (!colon || idend != colon || errno || id < 1 || !hex) {
            snprintf(err, err_size, "anchor %zu is not ENTRY_ID:HASH (a positive entry id, ':' and "
                     "the entry's 64 lower-case hex digits, as 'audit verify' shows the head)", n + 1);
            return -EINVAL;
        }
        anchors[n].id = id;
        memcpy(anchors[n].hash, colon + 1, 64);
        anchors[n].hash[64] = '\0';
        n++;
        p = *end ? end + 1 : end;
    }
    *ret_n = n;
    return 0;
}

json_t *audit_verify_anchored(struct store_conn *conn, const struct audit_anchor *anchors,
                              size_t n_anchors)
{
    sqlite3 *db = store_conn_db(conn);
    sqlite3_stmt *st;
    int64_t count = 0;

    /* Read in one read transaction so that the two passes see one state. */
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    st = store_stmt(conn, "SELECT count(*) FROM audit");
    if (st && sqlite3_step(st) == SQLITE_ROW)
        count = sqlite3_column_int64(st, 0);
    if (st)
        sqlite3_reset(st);

    struct hash_index index = { .cap = (size_t) count * 2 + 16 };
    index.slots = xcalloc(index.cap, sizeof *index.slots);
    st = store_stmt(conn, "SELECT id, hash FROM audit ORDER BY id");
    while (st && sqlite3_step(st) == SQLITE_ROW)
        hash_index_put(&index, store_column_text(st, 1), sqlite3_column_int64(st, 0));
    if (st)
        sqlite3_reset(st);

    json_t *problems = json_array();
    bool anchor_seen[AUDIT_MAX_ANCHORS] = { false };
    json_t *anchor_results = json_array();
    st = store_stmt(conn,
        "SELECT id, at, actor, role, action, object, before, after, prev_hash, hash "
        "FROM audit ORDER BY id");
    int64_t prev_id = 0;
    char prev_hash[65] = "";
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *stored_prev = store_column_text(st, 8);
        const char *stored_hash = store_column_text(st, 9);
        char computed[65];
        audit_entry_hash(stored_prev, store_column_text(st, 1), store_column_text(st, 2),
                         store_column_text(st, 3), store_column_text(st, 4),
                         store_column_text(st, 5), (const char *) sqlite3_column_text(st, 6),
                         (const char *) sqlite3_column_text(st, 7), computed);

        if (id != prev_id + 1)
            add_problem(problems, prev_id + 1, "deleted",
                        "entries %" PRId64 " to %" PRId64 " are missing (the trail jumps from %"
                        PRId64 " to %" PRId64 ")", prev_id + 1, id - 1, prev_id, id);
        if (!streq(computed, stored_hash))
            add_problem(problems, id, "altered",
                        "entry %" PRId64 " (%s on %s) does not match its hash: its content was changed",
                        id, store_column_text(st, 4), store_column_text(st, 5));
        else if (!streq(stored_prev, prev_hash) && id == prev_id + 1) {
            int64_t real_prev = hash_index_get(&index, stored_prev);
            if (real_prev > 0)
                add_problem(problems, id, "reordered",
                            "entry %" PRId64 " was written after entry %" PRId64
                            " but now stands after entry %" PRId64, id, real_prev, prev_id);
            else
                add_problem(problems, id, "deleted",
                            "the entry written before entry %" PRId64 " is missing", id);
        }
        for (size_t a = 0; a < n_anchors; a++) {
            if (anchors[a].id != id)
                continue;
            anchor_seen[a] = true;
            bool same = streq(anchors[a].hash, stored_hash);
            json_array_append_new(anchor_results, json_pack("{s:I, s:s, s:b}", "id", (json_int_t) id,
                                                            "hash", anchors[a].hash, "ok", same));
            if (!same)
                add_problem(problems, id, "rewritten",
                            "entry %" PRId64 " has the hash %.12s…, not the %.12s… recorded as an "
                            "anchor: the trail was rewritten from entry %" PRId64 " or earlier",
                            id, stored_hash, anchors[a].hash, id);
        }
        prev_id = id;
        snprintf(prev_hash, sizeof prev_hash, "%s", stored_hash);
    }
    for (size_t a = 0; a < n_anchors; a++) {
        if (anchor_seen[a])
            continue;
        json_array_append_new(anchor_results, json_pack("{s:I, s:s, s:b}", "id", (json_int_t) anchors[a].id,
                                                        "hash", anchors[a].hash, "ok", false));
        add_problem(problems, anchors[a].id, "rewritten",
                    "entry %" PRId64 ", recorded as an anchor, is not in the trail: the trail was "
                    "cut or rewritten", anchors[a].id);
    }
    if (st)
        sqlite3_reset(st);

    /* The newest entries removed: the head no longer matches the last entry. */
    st = store_stmt(conn, "SELECT last_id, last_hash FROM audit_head WHERE singleton = 1");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        int64_t head_id = sqlite3_column_int64(st, 0);
        const char *head_hash = store_column_text(st, 1);
        if (head_id > prev_id)
            add_problem(problems, prev_id + 1, "deleted",
                        "entries %" PRId64 " to %" PRId64 " at the end of the trail are missing",
                        prev_id + 1, head_id);
        else if (head_id == prev_id && !streq(head_hash, prev_hash) && prev_id > 0)
            add_problem(problems, prev_id, "altered",
                        "entry %" PRId64 " is not the entry last written", prev_id);
    }
    if (st)
        sqlite3_reset(st);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    free(index.slots);

    /* The head, for the auditor to record outside yunguan as an anchor. */
    json_t *head = prev_id > 0 ? json_pack("{s:I, s:s}", "id", (json_int_t) prev_id, "hash", prev_hash)
                               : json_null();
    return json_pack("{s:b, s:I, s:o, s:o, s:o}", "ok", json_array_size(problems) == 0,
                     "entries", (json_int_t) count, "head", head, "problems", problems,
                     "anchors", anchor_results);
}

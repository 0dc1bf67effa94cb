#include <config.h>
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "sha256.h"
#include "store.h"
#include "util.h"

static const char *const role_names[ROLE_MAX] = {
    [ROLE_ADMIN] = "admin", [ROLE_CLOUDOPS] = "cloudops", [ROLE_NETOPS] = "netops",
    [ROLE_AUDITOR] = "auditor", [ROLE_DEPARTMENT] = "department", [ROLE_AGENT] = "agent",
};

const char *role_to_string(enum role r)
{
    return (unsigned) r < ROLE_MAX ? role_names[r] : NULL;
}

int role_from_string(const char *s)
{
    for (int i = 0; i < ROLE_MAX; i++)
        if (s && streq(role_names[i], s))
            return i;
    return -1;
}

static bool secret_length_ok(size_t len) { return len >= 8 && len <= 256; }

/* The token whose secret hashes to HASH (hex). */
static int lookup_hash(struct store_conn *conn, const char *hash, struct principal *ret)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT t.id, t.role, t.department_id, d.name, t.host_id FROM tokens t "
        "LEFT JOIN departments d ON d.id = t.department_id "
        "WHERE t.secret_sha256 = ?1 AND t.revoked_at IS NULL");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, hash);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? -ENOENT : -EIO;
    }
    struct principal p = { 0 };
    p.token_id = sqlite3_column_int64(st, 0);
    int role = role_from_string(store_column_text(st, 1));
    p.department_id = sqlite3_column_int64(st, 2);
    snprintf(p.department, sizeof p.department, "%s", store_column_text(st, 3));
    p.host_id = sqlite3_column_int64(st, 4);
    snprintf(p.actor, sizeof p.actor, "token:%lld", (long long) p.token_id);
    sqlite3_reset(st);
    if (role < 0)
        return -EIO;
    p.role = (enum role) role;
    *ret = p;
    return 0;
}

int auth_lookup(struct store_conn *conn, const char *secret, struct principal *ret)
{
    char hash[65];
    size_t len = strlen(secret);
    if (!secret_length_ok(len))
        return -ENOENT;
    sha256_hex(secret, len, hash);
    return lookup_hash(conn, hash, ret);
}

/* ---- the principal cache ---- */

/* Set-associative by the hash's first two bytes: every agent of an estate
 * presents its own token on each report and heartbeat, so the cache holds
 * a large estate's: 32,768 principals, ~6 MB.  (64 direct-mapped slots hit
 * almost never with 10,000 agents, and each miss was a token query whose
 * pages a commit had just evicted from the reader's cache; with 4 ways,
 * the sets holding more than 4 of 10,000 agents missed for ~20 % of them,
 * as the agents report in turn.) */
#define AUTH_CACHE_SETS 4096
#define AUTH_CACHE_WAYS 8

struct auth_cache_slot {
    bool used;
    uint64_t generation;        /* of the cache when the lookup began */
    uint8_t hash[SHA256_DIGEST_SIZE];
    struct principal principal;
};

struct auth_cache {
    pthread_mutex_t lock;
    uint64_t generation;        /* bumped by auth_cache_invalidate() */
    struct {
        struct auth_cache_slot way[AUTH_CACHE_WAYS];
        unsigned next;          /* the way replaced next when all are current */
    } sets[AUTH_CACHE_SETS];
};

struct auth_cache *auth_cache_new(void)
{
    struct auth_cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void auth_cache_free(struct auth_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    explicit_bzero(c, sizeof *c);
    free(c);
}

void auth_cache_invalidate(struct auth_cache *c)
{
    pthread_mutex_lock(&c->lock);
    c->generation++;
    pthread_mutex_unlock(&c->lock);
}

int auth_lookup_cached(struct auth_cache *c, struct store_conn *conn, const char *secret,
                       struct principal *ret)
{
    size_t len = strlen(secret);
    if (!secret_length_ok(len))
        return -ENOENT;
    uint8_t hash[SHA256_DIGEST_SIZE];
    sha256(secret, len, hash);
    size_t set = (((size_t) hash[0] << 8) | hash[1]) % AUTH_CACHE_SETS;

    pthread_mutex_lock(&c->lock);
    uint64_t generation = c->generation;
    bool hit = false;
    for (size_t w = 0; w < AUTH_CACHE_WAYS && !hit; w++) {
        const struct auth_cache_slot *sl = &c->sets[set].way[w];
        hit = sl->used && sl->generation == generation && !memcmp(sl->hash, hash, sizeof hash);
        if (hit)
            *ret = sl->principal;
    }
    pthread_mutex_unlock(&c->lock);
    if (hit)
        return 0;

    /* Read the store.  The entry is tagged with the generation seen
     * *before* the read: a revocation committed after that bumps it, so an
     * answer read from before the revocation is never used once the
     * revocation has been acknowledged. */
    static const char hex[] = "0123456789abcdef";
    char hash_hex[2 * SHA256_DIGEST_SIZE + 1];
    for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
        hash_hex[2 * i] = hex[hash[i] >> 4];
        hash_hex[2 * i + 1] = hex[hash[i] & 15];
    }
    hash_hex[2 * SHA256_DIGEST_SIZE] = '\0';
    struct principal p;
    int r = lookup_hash(conn, hash_hex, &p);
    if (r < 0)
        return r;           /* unknown and revoked tokens are not remembered */
    pthread_mutex_lock(&c->lock);
    /* A free or outdated way (or this token's own, if another thread was
     * quicker), else the set's ways in turn. */
    struct auth_cache_slot *slot = NULL;
    for (size_t w = 0; w < AUTH_CACHE_WAYS && !slot; w++) {
        struct auth_cache_slot *sl = &c->sets[set].way[w];
        if (!sl->used || sl->generation != c->generation || !memcmp(sl->hash, hash, sizeof hash))
            slot = sl;
    }
    if (!slot)
        slot = &c->sets[set].way[c->sets[set].next++ % AUTH_CACHE_WAYS];
    slot->used = true;
    slot->generation = generation;
    memcpy(slot->hash, hash, sizeof hash);
    slot->principal = p;
    pthread_mutex_unlock(&c->lock);
    *ret = p;
    return 0;
}

static void base64url(const uint8_t *in, size_t n, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) in[i] << 16;
        if (i + 1 < n) v |= (uint32_t) in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
}

static int64_t token_insert(struct store_txn *txn, const struct principal *by, enum role role,
                            int64_t department_id, int64_t host_id, const char *description,
                            char **ret_secret)
{
    struct store_conn *conn = store_txn_conn(txn);
    uint8_t raw[32];
    char encoded[48], hash[65], at[32];
    int r = random_bytes(raw, sizeof raw);
    if (r < 0)
        return r;
    base64url(raw, sizeof raw, encoded);
    _cleanup_free_ char *secret = xasprintf("yg_%s", encoded);
    sha256_hex(secret, strlen(secret), hash);
    format_utc_now(at);

    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO tokens (secret_sha256, role, department_id, description, created_at, created_by, "
        "  host_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, hash);
    store_bind_text(st, 2, role_to_string(role));
    if (department_id > 0)
        sqlite3_bind_int64(st, 3, department_id);
    store_bind_text(st, 4, description ? description : "");
    store_bind_text(st, 5, at);
    store_bind_text(st, 6, by->actor);
    if (host_id > 0)
        sqlite3_bind_int64(st, 7, host_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return -EIO;
    int64_t id = sqlite3_last_insert_rowid(store_conn_db(conn));

    json_t *after = auth_token_json(conn, id);
    _cleanup_free_ char *object = xasprintf("token/%lld", (long long) id);
    r = audit_append(txn, by->actor, role_to_string(by->role), "token.create", object, NULL, after);
    json_decref(after);
    if (r < 0)
        return r;
    *ret_secret = steal_pointer(&secret);
    return id;
}

int64_t auth_token_create(struct store_txn *txn, const struct principal *by, enum role role,
                          int64_t department_id, const char *description, char **ret_secret)
{
    return token_insert(txn, by, role, department_id, 0, description, ret_secret);
}

int64_t auth_agent_token_create(struct store_txn *txn, const struct principal *by, int64_t host_id,
                                const char *description, char **ret_secret)
{
    return token_insert(txn, by, ROLE_AGENT, 0, host_id, description, ret_secret);
}

static json_t *token_row_json(sqlite3_stmt *st)
{
    json_t *t = json_pack("{s:I, s:s, s:s?, s:s, s:s, s:s}",
                          "id", (json_int_t) sqlite3_column_int64(st, 0),
                          "role", store_column_text(st, 1),
                          "department", (const char *) sqlite3_column_text(st, 2),
                          "description", store_column_text(st, 3),
                          "created_at", store_column_text(st, 4),
                          "created_by", store_column_text(st, 5));
    if (!json_object_get(t, "department"))
        json_object_set_new(t, "department", json_null());
    const char *revoked = (const char *) sqlite3_column_text(st, 6);
    json_object_set_new(t, "revoked_at", revoked ? json_string(revoked) : json_null());
    const char *host = (const char *) sqlite3_column_text(st, 7);
    if (host)
        json_object_set_new(t, "host", json_string(host));
    return t;
}

#define TOKEN_COLUMNS \
    "SELECT t.id, t.role, d.name, t.description, t.created_at, t.created_by, t.revoked_at, " \
    "       h.name " \
    "FROM tokens t LEFT JOIN departments d ON d.id = t.department_id " \
    "LEFT JOIN hosts h ON h.id = t.host_id "

json_t *auth_token_json(struct store_conn *conn, int64_t id)
{
    sqlite3_stmt *st = store_stmt(conn, TOKEN_COLUMNS "WHERE t.id = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    json_t *t = sqlite3_step(st) == SQLITE_ROW ? token_row_json(st) : NULL;
    sqlite3_reset(st);
    return t;
}

json_t *auth_token_list(struct store_conn *conn)
{
    sqlite3_stmt *st = store_stmt(conn, TOKEN_COLUMNS "ORDER BY t.id");
    if (!st)
        return NULL;
    json_t *items = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(items, token_row_json(st));
    sqlite3_reset(st);
    return items;
}

bool auth_have_admin(struct store_conn *conn)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT 1 FROM tokens WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1");
    if (!st)
        return false;
    bool have = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return have;
}

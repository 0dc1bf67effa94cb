/* The audit trail: append-only, hash-chained.  Every state change and every
 * administrative action appends one entry inside its own transaction. */
#ifndef YG_AUDIT_H
#define YG_AUDIT_H 1

#include <stdint.h>
#include <jansson.h>

struct store_conn;
struct store_txn;

/* The newest entry, as the writer knows it (kept in memory between jobs). */
struct audit_chain {
    int64_t last_id;
    char last_hash[65];     /* "" before the first entry */
};

/* Read the chain head from the store. 0 or -errno. */
int audit_chain_load(struct store_conn *conn, struct audit_chain *ret_chain);

/* Record the chain head (in audit_head) inside the writer's transaction:
 * the store does this once per commit, after the jobs of the group. */
int audit_chain_save_head(struct store_conn *conn, const struct audit_chain *chain);

/* Append one entry inside TXN.  before/after may be NULL (borrowed). */
int audit_append(struct store_txn *txn, const char *actor, const char *role,
                 const char *action, const char *object, json_t *before, json_t *after);
/* The same with before/after already as JSON text in the trail's form
 * (compact, keys sorted, ASCII only: what audit_append() dumps), or NULL. */
int audit_append_text(struct store_txn *txn, const char *actor, const char *role,
                      const char *action, const char *object, const char *before, const char *after);

/* J as JSON text in the trail's form: byte for byte
 * json_dumps(J, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII), written
 * directly (jansson's own dump is kept for what this does not write
 * itself, such as reals).  NULL for a NULL J.  Free with free(). */
char *audit_json_text(json_t *j);
/* The same for the object OBJECT (NULL: {}) with N more KEY/TEXT string
 * PAIRS set on it, without changing or copying OBJECT: a pair's key
 * replaces OBJECT's member of that name, a NULL text sets nothing.  The
 * pairs need not be sorted. */
char *audit_json_text_with(json_t *object, const char *const *pairs, size_t n);

/* Hash of one entry: SHA-256 over prev_hash and each field length-prefixed,
 * so no field can bleed into the next.  out[65]. */
void audit_entry_hash(const char *prev_hash, const char *at, const char *actor,
                      const char *role, const char *action, const char *object,
                      const char *before, const char *after, char out[65]);

/* An entry's id and hash as an auditor recorded them outside yunguan (from
 * the "head" a verification answers).  The chain alone cannot show a
 * trail rewritten from the start with every hash recomputed; an anchor
 * can, because the rewrite changes the anchored entry's hash. */
#define AUDIT_MAX_ANCHORS 8
struct audit_anchor {
    int64_t id;
    char hash[65];              /* 64 lower-case hex digits */
};
/* "ID:HASH[,ID:HASH…]" into anchors (at most AUDIT_MAX_ANCHORS).  0, or
 * -EINVAL with a sentence in err that says what is wrong. */
int audit_anchors_parse(const char *text, struct audit_anchor *anchors, size_t *ret_n,
                        char *err, size_t err_size);

/* Walk the whole trail and report every altered, deleted or reordered
 * entry, and every anchor the trail no longer holds:
 * {"ok":bool,"entries":N,"head":{id,hash}|null,"problems":[{id,problem,message}],
 *  "anchors":[{id,hash,ok}]}. */
json_t *audit_verify_anchored(struct store_conn *conn, const struct audit_anchor *anchors,
                              size_t n_anchors);
static inline json_t *audit_verify(struct store_conn *conn) { return audit_verify_anchored(conn, NULL, 0); }

/* One page of entries with id > after, ascending. */
json_t *audit_list(struct store_conn *conn, int64_t after, int limit);

#endif

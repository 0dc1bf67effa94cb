/* Bearer tokens and roles.  Secrets are random 256-bit values shown once;
 * the store keeps only their SHA-256. */
#ifndef YG_AUTH_H
#define YG_AUTH_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

struct store_conn;
struct store_txn;

enum role {
    ROLE_ADMIN,
    ROLE_CLOUDOPS,
    ROLE_NETOPS,
    ROLE_AUDITOR,
    ROLE_DEPARTMENT,
    ROLE_AGENT,
    ROLE_MAX,
};
#define ROLE_BIT(r) (1u << (r))
#define ROLES_ALL ((1u << ROLE_MAX) - 1)

const char *role_to_string(enum role r);
int role_from_string(const char *s);   /* enum value or -1 */

/* Who is calling. */
struct principal {
    int64_t token_id;
    enum role role;
    int64_t department_id;      /* department role only, else 0 */
    int64_t host_id;            /* agent role only, else 0 */
    char department[64];        /* its name, "" otherwise */
    char actor[32];             /* "token:ID", or "system" */
};

/* Look up a presented secret.  0, -ENOENT (unknown or revoked) or -EIO. */
int auth_lookup(struct store_conn *conn, const char *secret, struct principal *ret);

/* A cache of principals by their secret's SHA-256, for the API's threads:
 * a submission then needs no token query.  Only found, unrevoked tokens
 * are kept.  auth_cache_invalidate() forgets every entry; whoever revokes
 * a token (or changes one in any way) must call it once the change is
 * committed and before acknowledging it — api-admin.c's revocation does.
 * (A token changed in the database file behind yunguand's back is seen
 * only once its entry is evicted or the cache invalidated.) */
struct auth_cache;
struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c);
void auth_cache_invalidate(struct auth_cache *c);
/* auth_lookup() through C. */
int auth_lookup_cached(struct auth_cache *c, struct store_conn *conn, const char *secret,
                       struct principal *ret);

/* Create a token inside TXN; *ret_secret is "yg_" + 43 base64url chars.
 * Returns the new id (> 0) or -errno.  Audited. */
int64_t auth_token_create(struct store_txn *txn, const struct principal *by, enum role role,
                          int64_t department_id, const char *description, char **ret_secret);

/* An agent's token, bound to its host (at enrollment).  Audited. */
int64_t auth_agent_token_create(struct store_txn *txn, const struct principal *by, int64_t host_id,
                                const char *description, char **ret_secret);

/* Token row as JSON (never the hash). NULL when there is no such token. */
json_t *auth_token_json(struct store_conn *conn, int64_t id);
json_t *auth_token_list(struct store_conn *conn);

/* Whether the store holds an active admin token. */
bool auth_have_admin(struct store_conn *conn);

#endif

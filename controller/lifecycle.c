#include <config.h>
#include "lifecycle.h"

#include <errno.h>
#include <stdio.h>

#include "audit.h"
#include "auth.h"
#include "quota.h"
#include "store.h"
#include "util.h"
#include "vms.h"

static const char *const state_names[REQUEST_STATE_MAX] = {
    [REQUEST_SUBMITTED] = "submitted", [REQUEST_APPROVED] = "approved",
    [REQUEST_REJECTED] = "rejected", [REQUEST_WITHDRAWN] = "withdrawn",
    [REQUEST_PROVISIONING] = "provisioning", [REQUEST_ACTIVE] = "active",
    [REQUEST_CLOSED] = "closed", [REQUEST_FAILED] = "failed",
};

static const char *const action_names[REQUEST_ACTION_MAX] = {
    [REQUEST_ACTION_APPROVE] = "approve", [REQUEST_ACTION_REJECT] = "reject",
    [REQUEST_ACTION_WITHDRAW] = "withdraw", [REQUEST_ACTION_PROVISION] = "provision",
    [REQUEST_ACTION_ACTIVATE] = "activate", [REQUEST_ACTION_CLOSE] = "close",
    [REQUEST_ACTION_FAIL] = "fail", [REQUEST_ACTION_RETRY] = "retry",
};

#define OPS (ROLE_BIT(ROLE_CLOUDOPS) | ROLE_BIT(ROLE_ADMIN))
#define OWNER (ROLE_BIT(ROLE_DEPARTMENT) | ROLE_BIT(ROLE_ADMIN))

const struct request_transition request_transitions[] = {
    { REQUEST_SUBMITTED,    REQUEST_ACTION_APPROVE,   REQUEST_APPROVED,     OPS },
    { REQUEST_SUBMITTED,    REQUEST_ACTION_REJECT,    REQUEST_REJECTED,     OPS },
    { REQUEST_SUBMITTED,    REQUEST_ACTION_WITHDRAW,  REQUEST_WITHDRAWN,    OWNER },
    /* Approved but not yet being built: the department may still step back. */
    { REQUEST_APPROVED,     REQUEST_ACTION_WITHDRAW,  REQUEST_WITHDRAWN,    OWNER },
    /* Reserved for the provisioning and decommissioning issues. */
    { REQUEST_APPROVED,     REQUEST_ACTION_PROVISION, REQUEST_PROVISIONING, 0 },
    { REQUEST_PROVISIONING, REQUEST_ACTION_ACTIVATE,  REQUEST_ACTIVE,       0 },
    { REQUEST_PROVISIONING, REQUEST_ACTION_FAIL,      REQUEST_FAILED,       0 },
    { REQUEST_FAILED,       REQUEST_ACTION_RETRY,     REQUEST_APPROVED,     OPS },
    { REQUEST_ACTIVE,       REQUEST_ACTION_CLOSE,     REQUEST_CLOSED,       0 },
    /* Every VM decommissioned before the request became active. */
    { REQUEST_APPROVED,     REQUEST_ACTION_CLOSE,     REQUEST_CLOSED,       0 },
    { REQUEST_PROVISIONING, REQUEST_ACTION_CLOSE,     REQUEST_CLOSED,       0 },
    { REQUEST_FAILED,       REQUEST_ACTION_CLOSE,     REQUEST_CLOSED,       0 },
};
const size_t request_n_transitions = YG_ARRAY_SIZE(request_transitions);

const char *request_state_to_string(enum request_state s)
{
    return (unsigned) s < REQUEST_STATE_MAX ? state_names[s] : NULL;
}

int request_state_from_string(const char *s)
{
    for (int i = 0; s && i < REQUEST_STATE_MAX; i++)
        if (streq(state_names[i], s))
            return i;
    return -1;
}

const char *request_action_to_string(enum request_action a)
{
    return (unsigned) a < REQUEST_ACTION_MAX ? action_names[a] : NULL;
}

int request_action_from_string(const char *s)
{
    for (int i = 0; s && i < REQUEST_ACTION_MAX; i++)
        if (streq(action_names[i], s))
            return i;
    return -1;
}

bool request_state_is_live(enum request_state s)
{
    return s == REQUEST_APPROVED || s == REQUEST_PROVISIONING || s == REQUEST_ACTIVE ||
           s == REQUEST_FAILED;
}

const struct request_transition *lifecycle_find(enum request_state from, enum request_action action)
{
    for (size_t i = 0; i < request_n_transitions; i++)
        if (request_transitions[i].from == from && request_transitions[i].action == action)
            return &request_transitions[i];
    return NULL;
}

/* "approve, reject or withdraw" — what can be done from FROM. */
static char *allowed_actions(enum request_state from)
{
    struct strbuf sb;
    strbuf_init(&sb);
    size_t n = 0, total = 0;
    for (size_t i = 0; i < request_n_transitions; i++)
        if (request_transitions[i].from == from && request_transitions[i].roles)
            total++;
    for (size_t i = 0; i < request_n_transitions; i++) {
        const struct request_transition *t = &request_transitions[i];
        if (t->from != from || !t->roles)
            continue;
        if (n > 0)
            strbuf_puts(&sb, n + 1 == total ? " or " : ", ");
        strbuf_puts(&sb, action_names[t->action]);
        n++;
    }
    return n ? strbuf_steal(&sb) : xstrdup("nothing");
}

/* Where ACTION is allowed from, as "'submitted' or 'approved'". */
static char *allowed_from(enum request_action action)
{
    struct strbuf sb;
    strbuf_init(&sb);
    size_t n = 0;
    for (size_t i = 0; i < request_n_transitions; i++)
        if (request_transitions[i].action == action) {
            strbuf_printf(&sb, "%s'%s'", n ? " or " : "", state_names[request_transitions[i].from]);
            n++;
        }
    return strbuf_steal(&sb);
}

int lifecycle_record(struct store_txn *txn, const struct principal *by, int64_t request_id,
                     int from, enum request_state to, const char *reason)
{
    char at[32];
    format_utc_now(at);
    sqlite3_stmt *st = store_stmt(store_txn_conn(txn),
        "INSERT INTO transitions (request_id, from_state, to_state, actor, role, reason, at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    store_bind_text(st, 2, from >= 0 ? state_names[from] : NULL);
    store_bind_text(st, 3, state_names[to]);
    store_bind_text(st, 4, by->actor);
    store_bind_text(st, 5, by->token_id == 0 && streq(by->actor, "system") ? "system"
                           : role_to_string(by->role));
    store_bind_text(st, 6, reason);
    store_bind_text(st, 7, at);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -EIO;
}

int lifecycle_apply(struct store_txn *txn, const struct principal *by, int64_t request_id,
                    enum request_action action, const char *reason, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT r.state, r.department_id, d.name, r.name, r.total_vcpus, r.total_memory_mib, "
        "       r.total_disk_gib, r.total_vms "
        "FROM requests r JOIN departments d ON d.id = r.department_id WHERE r.id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, request_id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_reset(st);
        *ret_error = yg_error_new(404, "not_found", "request %lld does not exist",
                                  (long long) request_id);
        return -ENOENT;
    }
    int state = request_state_from_string(store_column_text(st, 0));
    int64_t department_id = sqlite3_column_int64(st, 1);
    _cleanup_free_ char *department = xstrdup(store_column_text(st, 2));
    _cleanup_free_ char *name = xstrdup(store_column_text(st, 3));
    struct quota_amounts add = {
        .vcpus = sqlite3_column_int64(st, 4), .memory_mib = sqlite3_column_int64(st, 5),
        .disk_gib = sqlite3_column_int64(st, 6), .vms = sqlite3_column_int64(st, 7),
    };
    sqlite3_reset(st);
    if (state < 0)
        return -EIO;

    /* A department never learns about another department's requests. */
    if (by->role == ROLE_DEPARTMENT && by->department_id != department_id) {
        *ret_error = yg_error_new(404, "not_found", "request %lld does not exist",
                                  (long long) request_id);
        return -ENOENT;
    }

    const struct request_transition *t = lifecycle_find((enum request_state) state, action);
    if (!t) {
        _cleanup_free_ char *can = allowed_actions((enum request_state) state);
        _cleanup_free_ char *from = allowed_from(action);
        *ret_error = yg_error_new(409, "illegal_transition",
            "request %lld cannot be %s: it is '%s' (%s is allowed from %s only); from '%s' it can: %s",
            (long long) request_id,
            action == REQUEST_ACTION_APPROVE ? "approved" : action == REQUEST_ACTION_REJECT ? "rejected" :
            action == REQUEST_ACTION_WITHDRAW ? "withdrawn" : action_names[action],
            state_names[state], action_names[action], from, state_names[state], can);
        return -EBUSY;
    }
    /* Roles 0: only the controller itself (vms.c) makes this transition. */
    bool system = by->token_id == 0 && streq(by->actor, "system");
    if (t->roles ? !(t->roles & ROLE_BIT(by->role)) : !system) {
        *ret_error = yg_error_new(403, "forbidden", "permission denied: role '%s' may not %s requests",
                                  role_to_string(by->role), action_names[action]);
        return -EPERM;
    }

    if ((int) t->to != state && request_state_is_live(t->to) && !request_state_is_live((enum request_state) state)) {
        /* Entering a live state takes quota: checked here, inside the same
         * transaction as the change, so two approvals cannot both pass. */
        struct quota_limits limits;
        struct quota_amounts usage;
        int r = quota_limits_get(conn, department_id, &limits);
        if (r == -ENOENT) {
            *ret_error = yg_error_new(409, "quota_exceeded",
                                      "department '%s' has no quota set; ask an administrator to set one",
                                      department);
            return -EDQUOT;
        }
        if (r < 0 || quota_usage(conn, department_id, &usage) < 0)
            return -EIO;
        json_t *exceeded = quota_exceeded(&limits, &usage, &add);
        if (json_array_size(exceeded) > 0) {
            struct yg_error *e = yg_error_new(409, "quota_exceeded",
                "request %lld cannot be approved: it would exceed the quota of department '%s'",
                (long long) request_id, department);
            size_t i;
            json_t *x;
            json_array_foreach(exceeded, i, x) {
                const char *res = json_string_value(json_object_get(x, "resource"));
                _cleanup_free_ char *path = xasprintf("quota.%s", res);
                yg_error_add_detail(e, 0, 0, path, "needs %lld, limit %lld, in use %lld",
                    (long long) json_integer_value(json_object_get(x, "requested")),
                    (long long) json_integer_value(json_object_get(x, "limit")),
                    (long long) json_integer_value(json_object_get(x, "in_use")));
            }
            json_decref(exceeded);
            *ret_error = e;
            return -EDQUOT;
        }
        json_decref(exceeded);
    }

    char at[32];
    format_utc_now(at);
    st = store_stmt(conn, "UPDATE requests SET state = ?1, updated_at = ?2 WHERE id = ?3");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, state_names[t->to]);
    store_bind_text(st, 2, at);
    sqlite3_bind_int64(st, 3, request_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT) {
            *ret_error = yg_error_new(409, "conflict",
                "request %lld cannot return to '%s': another live request in department '%s' is named '%s'",
                (long long) request_id, state_names[t->to], department, name);
            return -EEXIST;
        }
        return -EIO;
    }
    int r = lifecycle_record(txn, by, request_id, state, t->to, reason);
    if (r < 0)
        return r;

    _cleanup_free_ char *object = xasprintf("request/%lld", (long long) request_id);
    _cleanup_free_ char *audit_action = xasprintf("request.%s", action_names[action]);
    json_t *before = json_pack("{s:s}", "state", state_names[state]);
    json_t *after = json_pack("{s:s, s:s?}", "state", state_names[t->to], "reason", reason);
    r = audit_append(txn, by->actor, system ? "system" : role_to_string(by->role), audit_action,
                     object, before, after);
    json_decref(before);
    json_decref(after);
    if (r < 0)
        return r;
    /* The request's VMs follow (created at approval, reset on retry,
     * cancelled on withdrawal), in this same transaction. */
    return vms_request_transitioned(txn, by, request_id, (enum request_state) state, t->to);
}

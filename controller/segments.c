/* Segment definitions in the store (segments.h). */
#include <config.h>
#include "segments.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "audit.h"
#include "auth.h"
#include "log.h"
#include "readiness.h"
#include "store.h"
#include "util.h"

#define LOG_DOMAIN "segments"

/* ------------------------------------------------------------------ */
/* Reading stored segments.                                             */

struct stored {
    int64_t id;
    struct segment seg;
    bool listed;                /* named in the list being applied */
};

struct stored_set {
    struct stored *items;       /* by id, ascending */
    size_t n;
};

static void stored_set_clear(struct stored_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        segment_clear(&set->items[i].seg);
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

/* Stored text is written normalised by this file; anything else means the
 * database was changed behind our back. */
static int stored_prefix(const char *segment, const char *column, const char *text, int family,
                         struct ip_prefix *ret)
{
    if (ip_prefix_parse(text, ret, NULL) < 0 || ret->addr.family != family) {
        log_err(LOG_DOMAIN, "segment '%s': stored %s '%s' is not an %s prefix", segment, column,
                text, ip_family_name(family));
        return -EIO;
    }
    return 0;
}

static int stored_addr(const char *segment, const char *column, const char *text, int family,
                       struct ip_addr *ret)
{
    if (ip_addr_parse_family(text, family, ret, NULL) < 0) {
        log_err(LOG_DOMAIN, "segment '%s': stored %s '%s' is not an %s address", segment, column,
                text, ip_family_name(family));
        return -EIO;
    }
    return 0;
}

static bool column_is_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL;
}

static int stored_cmp_id(const void *key, const void *item)
{
    int64_t id = *(const int64_t *) key, other = ((const struct stored *) item)->id;
    return id < other ? -1 : id > other;
}

static struct stored *stored_by_id(struct stored_set *set, int64_t id)
{
    return bsearch(&id, set->items, set->n, sizeof *set->items, stored_cmp_id);
}

/* One segment row into *s (name and the segments table's columns). */
static int read_segment_row(sqlite3_stmt *st, struct stored *s)
{
    struct segment *g = &s->seg;
    s->id = sqlite3_column_int64(st, 0);
    g->name = xstrdup(store_column_text(st, 1));
    g->vlan = column_is_null(st, 2) ? 0 : sqlite3_column_int(st, 2);
    int r = stored_prefix(g->name, "ipv4_prefix", store_column_text(st, 3), AF_INET,
                          &g->ipv4_prefix);
    if (r == 0)
        r = stored_addr(g->name, "ipv4_gateway", store_column_text(st, 4), AF_INET,
                        &g->ipv4_gateway);
    if (r == 0 && !column_is_null(st, 5)) {
        g->has_ipv6 = true;
        r = stored_prefix(g->name, "ipv6_prefix", store_column_text(st, 5), AF_INET6,
                          &g->ipv6_prefix);
        if (r == 0)
            r = stored_addr(g->name, "ipv6_gateway", store_column_text(st, 6), AF_INET6,
                            &g->ipv6_gateway);
    }
    g->slaac = sqlite3_column_int(st, 7) != 0;
    g->interface = xstrdup(store_column_text(st, 8));
    g->target_date = column_is_null(st, 9) ? NULL : xstrdup(store_column_text(st, 9));
    return r;
}

/* Load every stored segment, or only NAME's; with departments and hosts
 * in their canonical order (by name, as lib/segments.c sorts them). */
static int load_segments(struct store_conn *conn, const char *name, struct stored_set *ret)
{
    struct stored_set set = { 0 };
    size_t cap = 0;
    int r = 0;

    sqlite3_stmt *st = store_stmt(conn,
        "SELECT id, name, vlan, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway, slaac, "
        "       interface, target_date "
        "FROM segments WHERE ?1 IS NULL OR name = ?1 ORDER BY id");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (set.n == cap) {
            cap = cap ? 2 * cap : 16;
            set.items = xrealloc(set.items, cap * sizeof *set.items);
        }
        struct stored *s = &set.items[set.n++];
        memset(s, 0, sizeof *s);
        r = read_segment_row(st, s);
        if (r < 0)
            break;
    }
    sqlite3_reset(st);
    if (r == 0 && rc != SQLITE_DONE)
        r = -EIO;

    if (r == 0) {
        st = store_stmt(conn,
            "SELECT sd.segment_id, sd.department FROM segment_departments sd "
            "JOIN segments s ON s.id = sd.segment_id "
            "WHERE ?1 IS NULL OR s.name = ?1 ORDER BY sd.segment_id, sd.department");
        if (!st)
            r = -EIO;
    }
    if (r == 0) {
        store_bind_text(st, 1, name);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct stored *s = stored_by_id(&set, sqlite3_column_int64(st, 0));
            if (!s)
                continue;
            struct segment *g = &s->seg;
            g->departments = xrealloc(g->departments,
                                      (g->n_departments + 1) * sizeof *g->departments);
            g->departments[g->n_departments++] = xstrdup(store_column_text(st, 1));
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            r = -EIO;
    }

    if (r == 0) {
        st = store_stmt(conn,
            "SELECT hs.segment_id, h.name, hs.ipv4_address, hs.ipv6_address "
            "FROM host_segments hs JOIN hosts h ON h.id = hs.host_id "
            "JOIN segments s ON s.id = hs.segment_id "
            "WHERE ?1 IS NULL OR s.name = ?1 ORDER BY hs.segment_id, h.name");
        if (!st)
            r = -EIO;
    }
    if (r == 0) {
        store_bind_text(st, 1, name);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            struct stored *s = stored_by_id(&set, sqlite3_column_int64(st, 0));
            if (!s)
                continue;
            struct segment *g = &s->seg;
            g->hosts = xrealloc(g->hosts, (g->n_hosts + 1) * sizeof *g->hosts);
            struct segment_host *h = &g->hosts[g->n_hosts++];
            memset(h, 0, sizeof *h);
            h->name = xstrdup(store_column_text(st, 1));
            if (!column_is_null(st, 2))
                r = stored_addr(g->name, "host_segments.ipv4_address",
                                store_column_text(st, 2), AF_INET, &h->ipv4);
            if (r == 0 && !column_is_null(st, 3))
                r = stored_addr(g->name, "host_segments.ipv6_address",
                                store_column_text(st, 3), AF_INET6, &h->ipv6);
            if (r < 0)
                break;
        }
        sqlite3_reset(st);
        if (r == 0 && rc != SQLITE_DONE)
            r = -EIO;
    }

    if (r < 0) {
        stored_set_clear(&set);
        return r;
    }
    *ret = set;
    return 0;
}

int segments_get_json(struct store_conn *conn, const char *name, json_t **ret)
{
    struct stored_set set;
    int r = load_segments(conn, name, &set);
    if (r < 0)
        return r;
    if (set.n == 0) {
        stored_set_clear(&set);
        return -ENOENT;
    }
    *ret = segment_to_json(&set.items[0].seg);
    stored_set_clear(&set);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Planning: what applying a list would change, and what stops it.      */

enum plan_action { PLAN_CREATE, PLAN_UPDATE, PLAN_SAME };

struct plan_item {
    enum plan_action action;
    struct stored *old;         /* UPDATE, SAME */
    json_t *before, *after;     /* the definitions (before: NULL for CREATE) */
};

struct plan {
    struct stored_set stored;
    struct plan_item *items;    /* one per list segment, in list order */
    size_t n;
    json_t *answer;             /* {"created","updated","unchanged","changes","warnings"} */
};

static void plan_clear(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        json_decref(p->items[i].before);
        json_decref(p->items[i].after);
    }
    free(p->items);
    stored_set_clear(&p->stored);
    json_decref(p->answer);
    memset(p, 0, sizeof *p);
}

static int stored_cmp_name(const void *a, const void *b)
{
    const struct stored *x = *(struct stored *const *) a, *y = *(struct stored *const *) b;
    return strcmp(x->seg.name, y->seg.name);
}

static int stored_cmp_name_key(const void *key, const void *item)
{
    return strcmp((const char *) key, (*(struct stored *const *) item)->seg.name);
}

/* Problems found against the store, with the list's positions. */
struct conflicts {
    struct yg_error *error;
    size_t n;
};

static void conflict_add(struct conflicts *c, struct yamldoc_pos pos, const char *path,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void conflict_add(struct conflicts *c, struct yamldoc_pos pos, const char *path,
                         const char *fmt, ...)
{
    if (c->n++ >= SEGMENTS_MAX_ERRORS)
        return;
    _cleanup_free_ char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (!c->error)
        c->error = yg_error_new(422, "invalid_request", "the segment list cannot be applied");
    yg_error_add_detail(c->error, pos.line, pos.column, path, "%s", msg);
}

static int detail_cmp(const void *a_, const void *b_)
{
    const struct yg_error_detail *a = a_, *b = b_;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->column != b->column)
        return a->column < b->column ? -1 : 1;
    return strcmp(a->message, b->message);
}

static struct yg_error *conflicts_finish(struct conflicts *c)
{
    struct yg_error *e = steal_pointer(&c->error);
    if (!e)
        return NULL;
    /* In the list's order, as the loader reports them. */
    qsort(e->details, e->n_details, sizeof *e->details, detail_cmp);
    free(e->message);
    if (c->n > SEGMENTS_MAX_ERRORS)
        e->message = xasprintf("the segment list cannot be applied: more than %d problems; "
                               "the first %d are listed", SEGMENTS_MAX_ERRORS, SEGMENTS_MAX_ERRORS);
    else
        e->message = xasprintf("the segment list cannot be applied: %zu problem%s", c->n,
                               c->n == 1 ? "" : "s");
    return e;
}

/* The listed segments against the stored ones they leave alone: no shared
 * addresses, no shared VLAN. */
static void check_against_store(const struct segment_list *list, const struct stored_set *set,
                                struct conflicts *c)
{
    char a[IP_PREFIX_STRLEN], b[IP_PREFIX_STRLEN];
    for (size_t i = 0; i < list->n_segments; i++) {
        const struct segment *s = &list->segments[i];
        for (size_t k = 0; k < set->n; k++) {
            const struct stored *o = &set->items[k];
            if (o->listed)
                continue;       /* replaced by the list's own definition */
            if (ip_prefix_overlap(&s->ipv4_prefix, &o->seg.ipv4_prefix)) {
                _cleanup_free_ char *path = xasprintf("segments[%zu].ipv4.prefix", i);
                conflict_add(c, s->ipv4_prefix_pos, path, "%s overlaps %s of stored segment "
                             "'%s', which this list does not change; pick another prefix, or "
                             "list '%s' here with its new plan",
                             ip_prefix_format(&s->ipv4_prefix, a),
                             ip_prefix_format(&o->seg.ipv4_prefix, b), o->seg.name, o->seg.name);
            }
            if (s->has_ipv6 && o->seg.has_ipv6 &&
                ip_prefix_overlap(&s->ipv6_prefix, &o->seg.ipv6_prefix)) {
                _cleanup_free_ char *path = xasprintf("segments[%zu].ipv6.prefix", i);
                conflict_add(c, s->ipv6_prefix_pos, path, "%s overlaps %s of stored segment "
                             "'%s', which this list does not change; pick another prefix, or "
                             "list '%s' here with its new plan",
                             ip_prefix_format(&s->ipv6_prefix, a),
                             ip_prefix_format(&o->seg.ipv6_prefix, b), o->seg.name, o->seg.name);
            }
            if (s->vlan && s->vlan == o->seg.vlan) {
                _cleanup_free_ char *path = xasprintf("segments[%zu].vlan", i);
                conflict_add(c, s->vlan_pos, path, "VLAN %d is already used by stored segment "
                             "'%s', which this list does not change; pick another VLAN",
                             s->vlan, o->seg.name);
            }
        }
    }
}

/* The top-level fields of two definitions that differ, as a JSON array. */
static json_t *changed_fields(json_t *before, json_t *after)
{
    static const char *const fields[] = {
        "vlan", "interface", "departments", "targetDate", "ipv4", "ipv6", "hosts",
    };
    json_t *out = json_array();
    for (size_t i = 0; i < YG_ARRAY_SIZE(fields); i++) {
        json_t *x = json_object_get(before, fields[i]), *y = json_object_get(after, fields[i]);
        if ((x == NULL) != (y == NULL) || (x && !json_equal(x, y)))
            json_array_append_new(out, json_string(fields[i]));
    }
    return out;
}

static int department_exists(struct store_conn *conn, const char *name, bool *ret)
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT 1 FROM departments WHERE name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -EIO;
    *ret = rc == SQLITE_ROW;
    return 0;
}

/* What helps the person applying the list but stops nothing. */
static int add_warnings(struct store_conn *conn, const struct segment_list *list,
                        const struct plan *p, json_t *warnings)
{
    char text[IP_PREFIX_STRLEN];
    for (size_t i = 0; i < list->n_segments; i++) {
        const struct segment *s = &list->segments[i];
        const struct plan_item *it = &p->items[i];
        if (it->action == PLAN_SAME)
            continue;
        for (size_t k = 0; k < s->n_departments; k++) {
            bool exists;
            int r = department_exists(conn, s->departments[k], &exists);
            if (r < 0)
                return r;
            if (!exists) {
                _cleanup_free_ char *w = xasprintf(
                    "segment '%s': department '%s' does not exist yet (an administrator "
                    "creates it with 'yunguan quota set %s ...')", s->name, s->departments[k],
                    s->departments[k]);
                json_array_append_new(warnings, json_string(w));
            }
        }
        if (it->action == PLAN_UPDATE && it->old->seg.has_ipv6 && !s->has_ipv6) {
            _cleanup_free_ char *w = xasprintf(
                "segment '%s' loses its IPv6 prefix %s: the list has no ipv6 for it; add it "
                "to the list to keep it", s->name,
                ip_prefix_format(&it->old->seg.ipv6_prefix, text));
            json_array_append_new(warnings, json_string(w));
        }
    }
    return 0;
}

static void bind_prefix(sqlite3_stmt *st, int i, const struct ip_prefix *p);

/* A list written before `prefix allocate` gave a segment its IPv6 prefix
 * leaves ipv6 out; applying it would silently take the plan away.  Leaving
 * the key out of such a segment is refused (the message says what to
 * write); an explicit 'ipv6: null' still takes the plan away, and the
 * allocation stays recorded either way. */
static int check_allocated_ipv6_kept(struct store_conn *conn, const struct segment_list *list,
                                     const struct plan *p, struct conflicts *c)
{
    sqlite3_stmt *st = NULL;
    for (size_t i = 0; i < list->n_segments; i++) {
        const struct segment *s = &list->segments[i];
        const struct stored *old = p->items[i].old;
        if (s->ipv6_given || !old || !old->seg.has_ipv6)
            continue;
        /* Kept prepared; handed back reset, bindings cleared. */
        st = store_stmt(conn,
            "SELECT id, created_at, created_by FROM prefix_allocations "
            "WHERE segment_id = ?1 AND prefix = ?2 ORDER BY id DESC LIMIT 1");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, old->id);
        bind_prefix(st, 2, &old->seg.ipv6_prefix);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            continue;
        if (rc != SQLITE_ROW) {
            log_err(LOG_DOMAIN, "cannot read the prefix allocations: %s", sqlite3_errmsg(store_conn_db(conn)));
            return -EIO;
        }
        char ptext[IP_PREFIX_STRLEN], gtext[IP_ADDR_STRLEN];
        _cleanup_free_ char *path = xasprintf("segments[%zu]", i);
        conflict_add(c, s->pos, path,
                     "segment '%s' has the IPv6 prefix %s that prefix allocation %lld gave it "
                     "(%s, by %s), and this list leaves ipv6 out: to keep it, add "
                     "'ipv6: {prefix: \"%s\", gateway: \"%s\"}'; to take the IPv6 plan away, "
                     "write 'ipv6: null' (the allocation stays recorded)",
                     s->name, ip_prefix_format(&old->seg.ipv6_prefix, ptext),
                     (long long) sqlite3_column_int64(st, 0),
                     (const char *) sqlite3_column_text(st, 1),
                     (const char *) sqlite3_column_text(st, 2), ptext,
                     ip_addr_format(&old->seg.ipv6_gateway, gtext));
    }
    if (st)
        sqlite3_reset(st);
    return 0;
}

static int make_plan(struct store_conn *conn, const struct segment_list *list, struct plan *p,
                     struct yg_error **ret_error)
{
    memset(p, 0, sizeof *p);
    int r = load_segments(conn, NULL, &p->stored);
    if (r < 0)
        return r;

    _cleanup_free_ struct stored **by_name = xcalloc(p->stored.n + 1, sizeof *by_name);
    for (size_t k = 0; k < p->stored.n; k++)
        by_name[k] = &p->stored.items[k];
    qsort(by_name, p->stored.n, sizeof *by_name, stored_cmp_name);

    p->items = xcalloc(list->n_segments + 1, sizeof *p->items);
    p->n = list->n_segments;
    for (size_t i = 0; i < list->n_segments; i++) {
        struct stored **found = bsearch(list->segments[i].name, by_name, p->stored.n,
                                        sizeof *by_name, stored_cmp_name_key);
        p->items[i].old = found ? *found : NULL;
        if (found)
            (*found)->listed = true;
    }

    struct conflicts c = { 0 };
    check_against_store(list, &p->stored, &c);
    r = check_allocated_ipv6_kept(conn, list, p, &c);
    if (r < 0) {
        yg_error_free(c.error);
        return r;
    }
    if (c.n > 0) {
        *ret_error = conflicts_finish(&c);
        return -EINVAL;
    }

    json_t *created = json_array(), *updated = json_array(), *unchanged = json_array();
    json_t *changes = json_object(), *warnings = json_array();
    p->answer = json_pack("{s:o, s:o, s:o, s:o, s:o}", "created", created, "updated", updated,
                          "unchanged", unchanged, "changes", changes, "warnings", warnings);
    for (size_t i = 0; i < list->n_segments; i++) {
        const struct segment *s = &list->segments[i];
        struct plan_item *it = &p->items[i];
        it->after = segment_to_json(s);
        if (!it->old) {
            it->action = PLAN_CREATE;
            json_array_append_new(created, json_string(s->name));
            continue;
        }
        it->before = segment_to_json(&it->old->seg);
        if (json_equal(it->before, it->after)) {
            it->action = PLAN_SAME;
            json_array_append_new(unchanged, json_string(s->name));
            continue;
        }
        it->action = PLAN_UPDATE;
        json_array_append_new(updated, json_string(s->name));
        json_object_set_new(changes, s->name, changed_fields(it->before, it->after));
    }
    return add_warnings(conn, list, p, warnings);
}

int segments_plan(struct store_conn *conn, const struct segment_list *list,
                  json_t **ret_plan, struct yg_error **ret_error)
{
    struct plan p;
    int r = make_plan(conn, list, &p, ret_error);
    if (r == 0)
        *ret_plan = json_incref(p.answer);
    plan_clear(&p);
    return r;
}

/* ------------------------------------------------------------------ */
/* Writing.                                                             */

static int step_done(struct store_conn *conn, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        log_err(LOG_DOMAIN, "cannot %s: %s", what, sqlite3_errmsg(store_conn_db(conn)));
        return -EIO;
    }
    return 0;
}

static void bind_prefix(sqlite3_stmt *st, int i, const struct ip_prefix *p)
{
    char text[IP_PREFIX_STRLEN];
    store_bind_text(st, i, p ? ip_prefix_format(p, text) : NULL);
}

static void bind_addr(sqlite3_stmt *st, int i, const struct ip_addr *a)
{
    char text[IP_ADDR_STRLEN];
    store_bind_text(st, i, a && a->family ? ip_addr_format(a, text) : NULL);
}

/* The segments row: inserted (*id == 0, set on return) or updated. */
static int write_segment_row(struct store_conn *conn, const struct segment *s, const char *at,
                             int64_t *id)
{
    sqlite3_stmt *st = *id == 0
        ? store_stmt(conn,
            "INSERT INTO segments (name, vlan, ipv4_prefix, ipv4_gateway, ipv6_prefix, "
            "  ipv6_gateway, slaac, interface, target_date, state, state_since, created_at, "
            "  updated_at) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'v4-only', ?10, ?10, ?10)")
        : store_stmt(conn,
            "UPDATE segments SET vlan = ?2, ipv4_prefix = ?3, ipv4_gateway = ?4, "
            "  ipv6_prefix = ?5, ipv6_gateway = ?6, slaac = ?7, interface = ?8, "
            "  target_date = ?9, updated_at = ?10 WHERE id = ?11 AND name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, s->name);
    if (s->vlan)
        sqlite3_bind_int(st, 2, s->vlan);
    else
        sqlite3_bind_null(st, 2);
    bind_prefix(st, 3, &s->ipv4_prefix);
    bind_addr(st, 4, &s->ipv4_gateway);
    bind_prefix(st, 5, s->has_ipv6 ? &s->ipv6_prefix : NULL);
    bind_addr(st, 6, s->has_ipv6 ? &s->ipv6_gateway : NULL);
    sqlite3_bind_int(st, 7, s->has_ipv6 && s->slaac);
    store_bind_text(st, 8, s->interface);
    store_bind_text(st, 9, s->target_date);
    store_bind_text(st, 10, at);
    if (*id)
        sqlite3_bind_int64(st, 11, *id);
    int r = step_done(conn, st, *id ? "update a segment" : "insert a segment");
    if (r == 0 && *id == 0)
        *id = sqlite3_last_insert_rowid(store_conn_db(conn));
    return r;
}

static int write_departments(struct store_conn *conn, const struct segment *s, int64_t id)
{
    sqlite3_stmt *st = store_stmt(conn, "DELETE FROM segment_departments WHERE segment_id = ?1");
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    int r = step_done(conn, st, "clear a segment's departments");
    for (size_t k = 0; r == 0 && k < s->n_departments; k++) {
        st = store_stmt(conn,
            "INSERT INTO segment_departments (segment_id, department) VALUES (?1, ?2)");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, id);
        store_bind_text(st, 2, s->departments[k]);
        r = step_done(conn, st, "add a segment's department");
    }
    return r;
}

/* The id of host NAME, created when new.  0 or -EIO. */
static int host_id(struct store_conn *conn, const char *name, const char *at, int64_t *ret)
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT id FROM hosts WHERE name = ?1");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *ret = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return -EIO;
    st = store_stmt(conn, "INSERT INTO hosts (name, created_at) VALUES (?1, ?2)");
    if (!st)
        return -EIO;
    store_bind_text(st, 1, name);
    store_bind_text(st, 2, at);
    int r = step_done(conn, st, "create a host");
    if (r == 0)
        *ret = sqlite3_last_insert_rowid(store_conn_db(conn));
    return r;
}

static bool has_host(const struct segment *s, const char *name)
{
    for (size_t i = 0; i < s->n_hosts; i++)
        if (streq(s->hosts[i].name, name))
            return true;
    return false;
}

/* The segment's hosts and planned addresses: rows of hosts no longer
 * listed go (with their reported results); the others keep their results
 * and get the new addresses. */
static int write_hosts(struct store_conn *conn, const struct segment *s, const struct segment *old,
                       int64_t id, const char *at)
{
    int64_t hid;
    int r = 0;
    for (size_t i = 0; old && r == 0 && i < old->n_hosts; i++) {
        if (has_host(s, old->hosts[i].name))
            continue;
        r = host_id(conn, old->hosts[i].name, at, &hid);
        if (r < 0)
            return r;
        sqlite3_stmt *st = store_stmt(conn,
            "DELETE FROM host_segments WHERE segment_id = ?1 AND host_id = ?2");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, hid);
        r = step_done(conn, st, "remove a host from a segment");
    }
    for (size_t i = 0; r == 0 && i < s->n_hosts; i++) {
        const struct segment_host *h = &s->hosts[i];
        r = host_id(conn, h->name, at, &hid);
        if (r < 0)
            return r;
        sqlite3_stmt *st = store_stmt(conn,
            "INSERT INTO host_segments (host_id, segment_id, ipv4_address, ipv6_address) "
            "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (host_id, segment_id) DO UPDATE SET "
            "ipv4_address = excluded.ipv4_address, ipv6_address = excluded.ipv6_address");
        if (!st)
            return -EIO;
        sqlite3_bind_int64(st, 1, hid);
        sqlite3_bind_int64(st, 2, id);
        bind_addr(st, 3, &h->ipv4);
        bind_addr(st, 4, &h->ipv6);
        r = step_done(conn, st, "plan a host's addresses");
    }
    return r;
}

int segments_apply(struct store_txn *txn, const struct principal *by,
                   const struct segment_list *list, json_t **ret_result,
                   struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    struct plan p;
    char at[32];
    format_utc_now(at);
    int64_t now = (int64_t) time(NULL);

    int r = make_plan(conn, list, &p, ret_error);
    for (size_t i = 0; r == 0 && i < p.n; i++) {
        const struct segment *s = &list->segments[i];
        const struct plan_item *it = &p.items[i];
        if (it->action == PLAN_SAME)
            continue;
        int64_t id = it->old ? it->old->id : 0;
        r = write_segment_row(conn, s, at, &id);
        if (r == 0)
            r = write_departments(conn, s, id);
        if (r == 0)
            r = write_hosts(conn, s, it->old ? &it->old->seg : NULL, id, at);
        if (r < 0)
            break;
        _cleanup_free_ char *object = xasprintf("segment/%s", s->name);
        r = audit_append(txn, by->actor, role_to_string(by->role),
                         it->action == PLAN_CREATE ? "segment.create" : "segment.update",
                         object, it->before, it->after);
        if (r == 0)
            r = readiness_recompute(txn, id, now);
    }
    if (r == 0)
        *ret_result = json_incref(p.answer);
    plan_clear(&p);
    return r;
}

/* ------------------------------------------------------------------ */
/* Prefix allocation.                                                   */

static json_t *allocation_row_json(sqlite3_stmt *st)
{
    return json_pack("{s:I, s:s, s:s, s:o, s:s, s:s}",
                     "id", (json_int_t) sqlite3_column_int64(st, 0),
                     "parent", store_column_text(st, 1), "prefix", store_column_text(st, 2),
                     "segment", column_is_null(st, 3) ? json_null()
                                                      : json_string(store_column_text(st, 3)),
                     "created_at", store_column_text(st, 4),
                     "created_by", store_column_text(st, 5));
}

#define ALLOCATION_COLUMNS \
    "a.id, a.parent, a.prefix, s.name, a.created_at, a.created_by " \
    "FROM prefix_allocations a LEFT JOIN segments s ON s.id = a.segment_id "

json_t *segments_allocations_json(struct store_conn *conn, int64_t after, int limit)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT " ALLOCATION_COLUMNS "WHERE a.id > ?1 ORDER BY a.id LIMIT ?2");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, limit + 1);
    json_t *items = json_array();
    int n = 0, rc;
    int64_t last = 0;
    bool more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            more = true;
            break;
        }
        last = sqlite3_column_int64(st, 0);
        json_array_append_new(items, allocation_row_json(st));
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(items);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "items", items,
                     "next", more ? json_integer(last) : json_null());
}

static json_t *allocation_json(struct store_conn *conn, int64_t id)
{
    sqlite3_stmt *st = store_stmt(conn, "SELECT " ALLOCATION_COLUMNS "WHERE a.id = ?1");
    if (!st)
        return NULL;
    sqlite3_bind_int64(st, 1, id);
    json_t *j = sqlite3_step(st) == SQLITE_ROW ? allocation_row_json(st) : NULL;
    sqlite3_reset(st);
    return j;
}

/* Every IPv6 prefix in use: segments' and earlier allocations'. */
static int used_prefixes(struct store_conn *conn, struct ip_prefix **ret, size_t *ret_n)
{
    sqlite3_stmt *st = store_stmt(conn,
        "SELECT ipv6_prefix FROM segments WHERE ipv6_prefix IS NOT NULL "
        "UNION ALL SELECT prefix FROM prefix_allocations");
    if (!st)
        return -EIO;
    struct ip_prefix *used = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct ip_prefix p;
        const char *text = store_column_text(st, 0);
        if (ip_prefix_parse(text, &p, NULL) < 0) {
            log_warn(LOG_DOMAIN, "stored prefix '%s' is not a prefix; it is ignored", text);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            used = xrealloc(used, cap * sizeof *used);
        }
        used[n++] = p;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        free(used);
        return -EIO;
    }
    *ret = used;
    *ret_n = n;
    return 0;
}

int segments_allocate_prefix(struct store_txn *txn, const struct principal *by,
                             const struct ip_prefix *parent, unsigned len, const char *segment,
                             json_t **ret_allocation, struct yg_error **ret_error)
{
    struct store_conn *conn = store_txn_conn(txn);
    char ptext[IP_PREFIX_STRLEN], ntext[IP_PREFIX_STRLEN];
    struct stored_set target = { 0 };
    json_t *before = NULL, *after = NULL;
    int r;

    ip_prefix_format(parent, ptext);
    if (segment) {
        r = load_segments(conn, segment, &target);
        if (r < 0)
            return r;
        if (target.n == 0) {
            *ret_error = yg_error_new(422, "invalid_request", "segment '%s' does not exist; "
                                      "define it first with 'yunguan segment apply'", segment);
            yg_error_add_detail(*ret_error, 0, 0, "segment", "no segment '%s' is stored",
                                segment);
            return -ENOENT;
        }
        const struct segment *s = &target.items[0].seg;
        if (s->has_ipv6) {
            *ret_error = yg_error_new(409, "conflict", "segment '%s' already has the IPv6 "
                                      "prefix %s; allocate without a segment to reserve "
                                      "another prefix", segment,
                                      ip_prefix_format(&s->ipv6_prefix, ntext));
            stored_set_clear(&target);
            return -EEXIST;
        }
        if (len >= 128) {
            *ret_error = yg_error_new(422, "invalid_request", "a /%u holds a single address: "
                                      "no room for the gateway and hosts of segment '%s'; "
                                      "ask for length 64", len, segment);
            yg_error_add_detail(*ret_error, 0, 0, "length", "must be at most 127 for a "
                                "segment (64 is usual)");
            stored_set_clear(&target);
            return -EINVAL;
        }
    }

    struct ip_prefix *used = NULL, got;
    size_t n_used = 0;
    r = used_prefixes(conn, &used, &n_used);
    if (r == 0) {
        r = ip_prefix_next_free(parent, len, used, n_used, &got);
        if (r == -ENOSPC)
            *ret_error = yg_error_new(409, "conflict", "no free /%u is left in %s: every one "
                                      "overlaps a segment's prefix or an earlier allocation",
                                      len, ptext);
        else if (r < 0)
            *ret_error = yg_error_new(422, "invalid_request", "a /%u cannot be allocated "
                                      "from %s", len, ptext);
    }
    free(used);
    if (r < 0) {
        stored_set_clear(&target);
        return r;
    }
    ip_prefix_format(&got, ntext);

    char at[32];
    format_utc_now(at);
    int64_t segment_id = target.n ? target.items[0].id : 0;
    sqlite3_stmt *st = store_stmt(conn,
        "INSERT INTO prefix_allocations (parent, prefix, segment_id, created_at, created_by) "
        "VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st) {
        stored_set_clear(&target);
        return -EIO;
    }
    store_bind_text(st, 1, ptext);
    store_bind_text(st, 2, ntext);
    if (segment_id)
        sqlite3_bind_int64(st, 3, segment_id);
    else
        sqlite3_bind_null(st, 3);
    store_bind_text(st, 4, at);
    store_bind_text(st, 5, by->actor);
    r = step_done(conn, st, "record a prefix allocation");
    int64_t alloc_id = sqlite3_last_insert_rowid(store_conn_db(conn));
    _cleanup_free_ char *object = xasprintf("prefix/%s", ntext);
    if (r == 0) {
        json_t *a = json_pack("{s:s, s:s, s:s?}", "parent", ptext, "prefix", ntext,
                              "segment", segment);
        r = audit_append(txn, by->actor, role_to_string(by->role), "prefix.allocate", object,
                         NULL, a);
        json_decref(a);
    }

    if (r == 0 && segment_id) {
        /* The segment's IPv6 plan: the prefix, its ::1 as gateway. */
        struct segment *s = &target.items[0].seg;
        struct ip_addr last;
        before = segment_to_json(s);
        s->has_ipv6 = true;
        s->ipv6_prefix = got;
        segment_usable_range(&got, &s->ipv6_gateway, &last);
        after = segment_to_json(s);
        st = store_stmt(conn,
            "UPDATE segments SET ipv6_prefix = ?2, ipv6_gateway = ?3, updated_at = ?4 "
            "WHERE id = ?1");
        if (!st) {
            r = -EIO;
        } else {
            sqlite3_bind_int64(st, 1, segment_id);
            bind_prefix(st, 2, &s->ipv6_prefix);
            bind_addr(st, 3, &s->ipv6_gateway);
            store_bind_text(st, 4, at);
            r = step_done(conn, st, "give a segment its IPv6 prefix");
        }
        _cleanup_free_ char *sobject = xasprintf("segment/%s", segment);
        if (r == 0)
            r = audit_append(txn, by->actor, role_to_string(by->role), "segment.update", sobject,
                             before, after);
        if (r == 0)
            r = readiness_recompute(txn, segment_id, (int64_t) time(NULL));
    }
    json_decref(before);
    json_decref(after);
    stored_set_clear(&target);
    if (r < 0)
        return r;
    *ret_allocation = allocation_json(conn, alloc_id);
    return *ret_allocation ? 0 : -EIO;
}

/* Stored requests: insert a validated request, read one or a page back. */
#ifndef YG_REQUESTS_H
#define YG_REQUESTS_H 1

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

struct request;
struct store_conn;
struct store_txn;
struct principal;

#define REQUESTS_PAGE_MAX 500
#define REQUESTS_PAGE_DEFAULT 50

/* Store REQ (already validated, department resolved) as 'submitted', with
 * its VM groups, first transition and audit entry.  Returns the new id, or
 * negative with *ret_error (409 conflict for a live duplicate name). */
int64_t requests_insert(struct store_txn *txn, const struct principal *by,
                        const struct request *req, int64_t department_id,
                        const char *source, struct yg_error **ret_error);
/* The same with the time of submission given (format_utc_now()), so the
 * caller can answer without reading the row back. */
int64_t requests_insert_at(struct store_txn *txn, const struct principal *by,
                           const struct request *req, int64_t department_id,
                           const char *source, const char *at, struct yg_error **ret_error);

/* What requests_get_json(…, false, …) returns for a request that
 * requests_insert_at() just stored as ID with AT, built from REQ itself
 * (no read of the store: the submission's 201 answer). */
json_t *requests_submitted_json(const struct request *req, int64_t id, const char *submitted_by,
                                const char *at);
/* The submission's answer {"request": <that>, "warnings": WARNINGS (an
 * array of strings)} as the text json_dumps() gives with JSON_INDENT(2) |
 * JSON_PRESERVE_ORDER (no final newline), written directly. */
char *requests_submitted_answer(const struct request *req, int64_t id, const char *submitted_by,
                                const char *at, const json_t *warnings);

/* The request as API JSON; FULL adds transitions and source.  NULL when
 * there is no such request. */
json_t *requests_get_json(struct store_conn *conn, int64_t id, bool full, int64_t *ret_department_id);

/* One page, newest first: department_id 0 = all, state -1 = any,
 * before_id 0 = from the newest.  {"items":[…],"next":id|null}. */
json_t *requests_list_json(struct store_conn *conn, int64_t department_id, int state,
                           int64_t before_id, int limit);

/* {"submitted":N, …} over every state (for /metrics). */
int requests_count_by_state(struct store_conn *conn, int64_t counts[]);

#endif

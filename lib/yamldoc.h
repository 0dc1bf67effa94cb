/* The YAML document layer shared by every loader of user-written files
 * (resource requests, segment lists, later playbooks): the checked text,
 * a tree of nodes with their line:column built from libyaml's events, the
 * problems found with their positions and paths, and the typed getters
 * that validators use.
 *
 * A loader makes one struct yamldoc per document with its options (the
 * noun used in messages and the limits), loads the text, walks the tree
 * reporting what is wrong, and turns the problems into one yg_error:
 *
 *     _cleanup_(yamldoc_freep) struct yamldoc *d = yamldoc_new(&opts, filename);
 *     const struct yamldoc_node *root;
 *     if (yamldoc_load(d, text, len, &root) == 0)
 *         validate(d, root, ...);
 *     if (yamldoc_failed(d)) { *ret_error = yamldoc_error(d); ... }
 *
 * Stages of a load:
 *   1. the raw text: size limit, then UTF-8 / NUL / control characters are
 *      checked byte by byte, so the position of a bad byte is exact;
 *   2. libyaml's event API builds the tree.  Aliases and anchors, a second
 *      document, too many nodes or too deep nesting stop the load at once
 *      (so do syntax errors); tags outside the standard set are reported
 *      and the load goes on.
 * JSON is read by the same YAML parser (JSON is, near enough, YAML flow
 * style), so positions work the same for both.
 *
 * Scalars and types.  A quoted scalar (or one tagged !!str) is a string; a
 * plain one is whatever its field needs, so `name: 123`, `until: 2027-06-30`
 * and `ipv6: off` are text, as a reader expects (no YAML 1.1 booleans or
 * timestamps).  Integers must be plain (or tagged !!int): `vcpus: "2"` is
 * refused with a hint.  A plain empty value, `~` and `null` are "empty".
 *
 * Columns are counted in characters, as libyaml counts them; lines and
 * columns are 1-based. */
#ifndef YG_YAMLDOC_H
#define YG_YAMLDOC_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct yamldoc_options {
    const char *noun;           /* "request": "request 'f.yaml' is not valid" */
    const char *a_noun;         /* "a request": "aliases are not allowed in a request" */
    size_t max_bytes;           /* longer text is refused unread (413) */
    size_t max_nodes;           /* keys, values and collections */
    size_t max_depth;           /* nesting of collections */
    size_t max_problems;        /* problems kept; more are counted */
    const char *error_code;     /* the 422 error's code; NULL: "invalid_request" */
};

enum yamldoc_kind { YAMLDOC_SCALAR, YAMLDOC_SEQUENCE, YAMLDOC_MAPPING };

enum yamldoc_scalar {
    YAMLDOC_PLAIN,      /* plain, or tagged !!int/!!float/!!bool/!!timestamp */
    YAMLDOC_STRING,     /* quoted, block, or tagged !!str */
    YAMLDOC_NULL,       /* plain "", "~", "null" (any case variant YAML knows), or !!null */
};

struct yamldoc_node {
    enum yamldoc_kind kind;
    enum yamldoc_scalar scalar;     /* scalars only */
    int line, column;               /* 1-based */
    char *text;                     /* scalar value, NUL-terminated; may hold NUL bytes */
    size_t len;
    struct yamldoc_node **children; /* sequence: items; mapping: key, value, key, value, ... */
    size_t n_children, cap;
};

static inline size_t yamldoc_n_pairs(const struct yamldoc_node *n)
{
    return n->n_children / 2;
}

/* An empty scalar: "", "~", "null" or !!null. */
static inline bool yamldoc_is_null(const struct yamldoc_node *n)
{
    return n->kind == YAMLDOC_SCALAR && n->scalar == YAMLDOC_NULL;
}

/* Where a value stood in the source, for problems found later (by the
 * controller, which knows what is stored). */
struct yamldoc_pos {
    int line, column;
};

static inline struct yamldoc_pos yamldoc_pos_of(const struct yamldoc_node *n)
{
    return (struct yamldoc_pos) { .line = n->line, .column = n->column };
}

struct yamldoc;

/* FILENAME only labels messages and may be NULL.  OPTS must outlive D. */
struct yamldoc *yamldoc_new(const struct yamldoc_options *opts, const char *filename);
void yamldoc_free(struct yamldoc *d);
static inline void yamldoc_freep(struct yamldoc **d) { yamldoc_free(*d); }

/* Stages 1 and 2: text → tree.  0 with *ret_root (NULL for an empty
 * stream; owned by D); -EFBIG when the text is over max_bytes (nothing
 * read); -EINVAL when a problem stopped the load (recorded); -ENOMEM.
 * A byte order mark at the start is allowed and skipped. */
int yamldoc_load(struct yamldoc *d, const char *text, size_t len,
                 const struct yamldoc_node **ret_root);

/* Whether the load failed or any problem was recorded. */
bool yamldoc_failed(const struct yamldoc *d);
/* Problems found, including those beyond max_problems. */
size_t yamldoc_n_problems(const struct yamldoc *d);

/* The error object for a failed document: 413 "too_large" (no details)
 * when the text was over the limit, 500 "internal" when memory ran out, or
 * 422 "invalid_request" (or opts->error_code) with every kept problem as a
 * detail, sorted by position.  NULL when nothing failed.  The problems are consumed. */
struct yg_error *yamldoc_error(struct yamldoc *d);

/* Record a problem at a position / at a node.  PATH may be NULL. */
void yamldoc_problem_at(struct yamldoc *d, int line, int column, const char *path,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void yamldoc_problem(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "EXPECTED expected, got 'x'" (or "a mapping", "an empty value", …). */
void yamldoc_type_problem(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                          const char *expected);

/* User text for a message: control characters and line breaks escaped, at
 * most 40 characters (then "...").  S is valid UTF-8. */
char *yamldoc_show(const char *s, size_t len);
static inline char *yamldoc_show_node(const struct yamldoc_node *n)
{
    return yamldoc_show(n->text, n->len);
}
/* "a mapping", "a sequence", "an empty value", "null", "'two'". */
char *yamldoc_describe(const struct yamldoc_node *n);

/* Field paths: "spec.vms" + "memory" → "spec.vms.memory" (a NULL or empty
 * parent gives the key alone); "spec.vms" + 1 → "spec.vms[1]". */
char *yamldoc_path_key(const char *parent, const char *key, size_t len);
char *yamldoc_path_index(const char *parent, size_t i);

struct yamldoc_key {
    const char *name;
    bool required;
};

/* Check that N is a mapping with only KEYS, each at most once, and the
 * required ones present; values[i] is the value of keys[i] or NULL.
 * Unknown keys are reported with the closest known key as a hint (or the
 * list of allowed keys); a required key that a misspelling already points
 * at is not reported missing as well.  False (reported) when N is not a
 * mapping at all. */
bool yamldoc_check_mapping(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                           const struct yamldoc_key *keys, size_t n_keys,
                           const struct yamldoc_node **values);
/* The same; ret_hinted[i] tells whether an unknown key was taken for a
 * misspelling of keys[i] (for callers that check presence by hand). */
bool yamldoc_check_mapping_hinted(struct yamldoc *d, const struct yamldoc_node *n,
                                  const char *path, const struct yamldoc_key *keys,
                                  size_t n_keys, const struct yamldoc_node **values,
                                  bool *ret_hinted);

/* Typed getters: true and *ret (to free, for text) when N holds that kind
 * of value; otherwise the problem is reported at N and false returned. */
/* Any non-empty scalar without NUL characters. */
bool yamldoc_get_string(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                        char **ret);
/* A string that must be exactly WANT ("apiVersion: yunguan/v1"). */
bool yamldoc_get_exact(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                       const char *want);
/* A plain decimal integer between MIN and MAX (no quotes, no leading zero). */
bool yamldoc_get_int(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                     int min, int max, int *ret);
/* Plain true or false (YAML 1.2 core schema; yes/no/on/off are refused). */
bool yamldoc_get_bool(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                      bool *ret);
/* "YYYY-MM-DD", a real calendar date. */
bool yamldoc_get_date(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                      char **ret);
/* A name (yamldoc_name_is_valid); WHAT names it in the message ("VM name"). */
bool yamldoc_get_name(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                      const char *what, char **ret);

/* ---- pure helpers -------------------------------------------------- */

/* [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])? — request, VM, department, segment
 * and host names. */
bool yamldoc_name_is_valid(const char *s);

/* "YYYY-MM-DD" → year, month, day.  0, -EINVAL (not in that form) or
 * -ERANGE (in that form but not a calendar date, e.g. 2027-02-30). */
int yamldoc_parse_date(const char *s, int *ret_year, int *ret_month, int *ret_day);

/* Days since 1970-01-01 of a proleptic Gregorian date (negative before). */
int64_t yamldoc_days_from_civil(int year, int month, int day);

/* Characters (code points) in valid UTF-8 text. */
size_t yamldoc_utf8_chars(const char *s, size_t len);

/* The check made before the text reaches libyaml: UTF-8 only (a BOM at the
 * start is allowed), no NUL, no control characters other than tab, CR, LF.
 * 0, or -EILSEQ with the 1-based line and column (in characters, counted as
 * libyaml counts them) of the first bad byte and a message to free, which
 * names the document with OPTS' nouns. */
int yamldoc_check_text(const struct yamldoc_options *opts, const char *text, size_t len,
                       int *ret_line, int *ret_column, char **ret_message);

#endif

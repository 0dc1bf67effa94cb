/* Internals of the request loader, exposed for the unit tests
 * (tests/unit/test-request.c) as libvirt does with its -priv.h files.
 * Nothing outside lib/request.c and its tests should include this.
 * The date, name and text helpers are lib/yamldoc.c's, under the names
 * the request tests have always used. */
#ifndef YG_REQUEST_PRIV_H
#define YG_REQUEST_PRIV_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "4GiB", "512MiB", "1TiB" → mebibytes.  Nothing else is a size: no other
 * unit, no missing unit, no fraction, no space, no sign.  0, -EINVAL (not a
 * size) or -ERANGE (too large to represent). */
int request_parse_size_mib(const char *s, int64_t *ret_mib);

/* "YYYY-MM-DD" → year, month, day.  0, -EINVAL (not in that form) or
 * -ERANGE (in that form but not a calendar date, e.g. 2027-02-30). */
int request_parse_date(const char *s, int *ret_year, int *ret_month, int *ret_day);

/* Days since 1970-01-01 of a proleptic Gregorian date (negative before). */
int64_t request_days_from_civil(int year, int month, int day);

/* [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])? — request, VM, department and segment names. */
bool request_name_is_valid(const char *s);

/* The check made before the text reaches libyaml: UTF-8 only (a BOM at the
 * start is allowed), no NUL, no control characters other than tab, CR, LF.
 * 0, or -EILSEQ with the 1-based line and column (in characters, counted as
 * libyaml counts them) of the first bad byte and a message to free. */
int request_check_text(const char *text, size_t len, int *ret_line, int *ret_column,
                       char **ret_message);

#endif

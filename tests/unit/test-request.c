/* Unit tests for lib/request.c: the pure helpers (sizes, dates, names, the
 * text check), the enum tables, lease days, totals, defaults, positions and
 * the limits.  The golden suite (tests/golden) covers the messages. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "request.h"
#include "request-priv.h"
#include "util.h"

static const char valid_request[] =
    "apiVersion: yunguan/v1\n"
    "kind: ResourceRequest\n"
    "metadata:\n"
    "  name: vaccine-booking\n"
    "  department: health\n"
    "spec:\n"
    "  purpose: Vaccine appointment booking for residents\n"
    "  securityLevel: 2\n"
    "  lease: {until: 2027-06-30}\n"
    "  network: {segment: health-dmz, ipv6: required}\n"
    "  vms:\n"
    "    - {name: web, count: 2, vcpus: 2, memory: 4GiB, disk: 40GiB, image: kylin-server-v10}\n"
    "    - {name: db,  vcpus: 4, memory: 16GiB, disk: 200GiB, image: kylin-server-v10}\n";

/* Parse TEXT (copied into a buffer of exactly its length, without a
 * terminating NUL, so reads past the end show up under ASan). */
static int parse(const char *text, size_t len, struct request **ret_r, struct yg_error **ret_e)
{
    char *copy = xmalloc(len ? len : 1);
    memcpy(copy, text, len);
    *ret_r = NULL;
    *ret_e = NULL;
    int r = request_parse(copy, len, "t.yaml", ret_r, ret_e);
    free(copy);
    return r;
}

static int parse_str(const char *text, struct request **ret_r, struct yg_error **ret_e)
{
    return parse(text, strlen(text), ret_r, ret_e);
}

static void test_ipv6_round_trip(void **state)
{
    for (int v = 0; v < REQUEST_IPV6_MAX; v++) {
        const char *s = request_ipv6_to_string((enum request_ipv6) v);
        assert_non_null(s);
        assert_int_equal(request_ipv6_from_string(s), v);
    }
    assert_string_equal(request_ipv6_to_string(REQUEST_IPV6_REQUIRED), "required");
    assert_string_equal(request_ipv6_to_string(REQUEST_IPV6_PREFERRED), "preferred");
    assert_string_equal(request_ipv6_to_string(REQUEST_IPV6_OFF), "off");
    assert_null(request_ipv6_to_string(REQUEST_IPV6_MAX));
    assert_null(request_ipv6_to_string((enum request_ipv6) -1));
    assert_int_equal(request_ipv6_from_string("Required"), -1);
    assert_int_equal(request_ipv6_from_string(""), -1);
    assert_int_equal(request_ipv6_from_string(NULL), -1);
}

static void test_size_units(void **state)
{
    static const struct {
        const char *s;
        int rc;
        int64_t mib;
    } cases[] = {
        { "4GiB", 0, 4096 },
        { "512MiB", 0, 512 },
        { "1TiB", 0, 1048576 },
        { "0MiB", 0, 0 },                       /* syntax only; ranges are the caller's */
        { "0004GiB", 0, 4096 },
        { "8796093022207TiB", 0, INT64_C(8796093022207) * 1048576 },
        { "8796093022208TiB", -ERANGE, 0 },
        { "99999999999999999999999MiB", -ERANGE, 0 },
        { "4GB", -EINVAL, 0 },
        { "4gb", -EINVAL, 0 },
        { "4G", -EINVAL, 0 },
        { "4gib", -EINVAL, 0 },
        { "4KiB", -EINVAL, 0 },
        { "4", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { "GiB", -EINVAL, 0 },
        { "4 GiB", -EINVAL, 0 },
        { "1.5GiB", -EINVAL, 0 },
        { "-4GiB", -EINVAL, 0 },
        { "+4GiB", -EINVAL, 0 },
        { "4GiB ", -EINVAL, 0 },
        { "4GiBs", -EINVAL, 0 },
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(cases); i++) {
        int64_t mib = -1;
        int rc = request_parse_size_mib(cases[i].s, &mib);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, expected %d", cases[i].s, rc, cases[i].rc);
        if (rc == 0 && mib != cases[i].mib)
            fail_msg("'%s': %" PRId64 " MiB, expected %" PRId64, cases[i].s, mib, cases[i].mib);
        if (rc != 0 && mib != -1)
            fail_msg("'%s': output written on failure", cases[i].s);
    }
}

static void test_dates(void **state)
{
    int y = 0, m = 0, d = 0;
    assert_int_equal(request_parse_date("2027-06-30", &y, &m, &d), 0);
    assert_int_equal(y, 2027);
    assert_int_equal(m, 6);
    assert_int_equal(d, 30);

    static const struct {
        const char *s;
        int rc;
    } cases[] = {
        { "2028-02-29", 0 },          /* leap year */
        { "2000-02-29", 0 },          /* divisible by 400 */
        { "1900-02-29", -ERANGE },    /* divisible by 100 only */
        { "2100-02-29", -ERANGE },
        { "2027-02-29", -ERANGE },
        { "2027-02-30", -ERANGE },
        { "2027-04-31", -ERANGE },
        { "2027-12-31", 0 },
        { "2027-01-31", 0 },
        { "2027-13-01", -ERANGE },
        { "2027-00-10", -ERANGE },
        { "2027-06-00", -ERANGE },
        { "0000-01-01", -ERANGE },
        { "0001-01-01", 0 },
        { "9999-12-31", 0 },
        { "2027-6-30", -EINVAL },
        { "27-06-30", -EINVAL },
        { "2027/06/30", -EINVAL },
        { "2027-06-30T00:00:00Z", -EINVAL },
        { "2027-06-3O", -EINVAL },
        { "", -EINVAL },
        { " 2027-06-30", -EINVAL },
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(cases); i++) {
        int rc = request_parse_date(cases[i].s, &y, &m, &d);
        if (rc != cases[i].rc)
            fail_msg("'%s': rc %d, expected %d", cases[i].s, rc, cases[i].rc);
    }
}

static void test_days_from_civil(void **state)
{
    assert_int_equal(request_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(request_days_from_civil(1970, 1, 2), 1);
    assert_int_equal(request_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(request_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(request_days_from_civil(2027, 6, 30), 20999);
    assert_int_equal(request_days_from_civil(2028, 3, 1) - request_days_from_civil(2028, 2, 28), 2);
    assert_int_equal(request_days_from_civil(2027, 3, 1) - request_days_from_civil(2027, 2, 28), 1);
}

static void test_lease_days(void **state)
{
    struct request *r;
    struct yg_error *e;
    assert_int_equal(parse_str(valid_request, &r, &e), 0);
    int64_t lease_day = request_days_from_civil(2027, 6, 30) * 86400;

    assert_int_equal(request_lease_days_from(r, lease_day), 0);
    assert_int_equal(request_lease_days_from(r, lease_day + 86399), 0);
    assert_int_equal(request_lease_days_from(r, lease_day - 1), 1);
    assert_int_equal(request_lease_days_from(r, lease_day + 86400), -1);
    assert_int_equal(request_lease_days_from(r, lease_day - 30 * 86400), 30);
    /* 2026-11-25 12:00 UTC */
    assert_int_equal(request_lease_days_from(r, request_days_from_civil(2026, 11, 25) * 86400 + 43200),
                     217);
    /* Before 1970: still whole days, rounded toward the past. */
    assert_int_equal(request_lease_days_from(r, -1), request_days_from_civil(2027, 6, 30) + 1);
    request_free(r);
}

static void test_names(void **state)
{
    static const char *const good[] = {
        "a", "0", "web", "vaccine-booking", "a-b-c", "1a", "a1",
        "abcdefghijklmnopqrstuvwxyz-0123456789-abcdefghijklmnopqrstuvwxy",  /* 63 */
    };
    static const char *const bad[] = {
        "", "-a", "a-", "-", "A", "web_1", "web.1", "web 1", "wéb", "疫苗",
        "abcdefghijklmnopqrstuvwxyz-0123456789-abcdefghijklmnopqrstuvwxyz", /* 64 */
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(good); i++)
        if (!request_name_is_valid(good[i]))
            fail_msg("'%s' should be valid", good[i]);
    for (size_t i = 0; i < YG_ARRAY_SIZE(bad); i++)
        if (request_name_is_valid(bad[i]))
            fail_msg("'%s' should be invalid", bad[i]);
}

static void check_text(const char *text, size_t len, int rc, int line, int column)
{
    int l = -1, c = -1;
    char *msg = NULL;
    int r = request_check_text(text, len, &l, &c, &msg);
    assert_int_equal(r, rc);
    if (rc == 0) {
        assert_null(msg);
        return;
    }
    assert_non_null(msg);
    assert_int_equal(l, line);
    assert_int_equal(c, column);
    free(msg);
}

static void test_check_text(void **state)
{
#define T(s, rc, line, col) check_text(s, sizeof(s) - 1, rc, line, col)
    T("a: b\n", 0, 0, 0);
    T("", 0, 0, 0);
    T("\xEF\xBB\xBF" "a: 疫苗\n", 0, 0, 0);
    T("a: \xF0\x9F\x98\x80\n", 0, 0, 0);                 /* 4-byte sequence */
    T("a: b\tc\r\n", 0, 0, 0);
    /* Columns count characters: 疫苗 are two. */
    T("a: 疫苗\xFF\n", -EILSEQ, 1, 6);
    T("x\na: 疫苗\xD2\xDF\n", -EILSEQ, 2, 6);              /* GBK */
    T("\xEF\xBB\xBF" "a\xC0\xAF", -EILSEQ, 1, 2);         /* BOM not counted; overlong */
    T("a\r\nb\rc\r\n\x80", -EILSEQ, 4, 1);                /* CRLF and CR are one break each */
    T("a\xC2\x85" "b\xE2\x80\xA8" "c\x01", -EILSEQ, 3, 2); /* NEL and LS break lines in libyaml */
    T("a: \xED\xA0\x80", -EILSEQ, 1, 4);                  /* surrogate */
    T("a: \xF4\x90\x80\x80", -EILSEQ, 1, 4);              /* above U+10FFFF */
    T("a: \xE6\x96", -EILSEQ, 1, 4);                      /* truncated at the end */
    T("a: \xE6\x96 ", -EILSEQ, 1, 4);                     /* truncated */
    T("a: b\0c", -EILSEQ, 1, 5);
    T("a: \x07", -EILSEQ, 1, 4);
    T("a: \x7F", -EILSEQ, 1, 4);
    T("a: \xC2\x80", -EILSEQ, 1, 4);                      /* C1 control */
    T("a: \xEF\xBB\xBF", -EILSEQ, 1, 4);                  /* BOM inside */
    T("a: \xEF\xBF\xBE", -EILSEQ, 1, 4);                  /* U+FFFE */
    T("\xFF\xFE" "a\0", -EILSEQ, 1, 1);                   /* UTF-16 */
#undef T
}

static void test_totals_and_defaults(void **state)
{
    struct request *r;
    struct yg_error *e;
    assert_int_equal(parse_str(valid_request, &r, &e), 0);
    assert_null(e);
    assert_string_equal(r->name, "vaccine-booking");
    assert_string_equal(r->department, "health");
    assert_string_equal(r->purpose, "Vaccine appointment booking for residents");
    assert_int_equal(r->security_level, 2);
    assert_string_equal(r->lease_until, "2027-06-30");
    assert_string_equal(r->segment, "health-dmz");
    assert_int_equal(r->ipv6, REQUEST_IPV6_REQUIRED);
    assert_int_equal(r->n_vms, 2);
    assert_string_equal(r->vms[0].name, "web");
    assert_int_equal(r->vms[0].count, 2);
    assert_int_equal(r->vms[0].vcpus, 2);
    assert_int_equal(r->vms[0].memory_mib, 4096);
    assert_int_equal(r->vms[0].disk_gib, 40);
    assert_string_equal(r->vms[0].image, "kylin-server-v10");
    assert_int_equal(r->vms[1].count, 1);                 /* default */
    assert_int_equal(r->total_vms, 3);
    assert_int_equal(r->total_vcpus, 2 * 2 + 4);
    assert_int_equal(r->total_memory_mib, 2 * 4096 + 16384);
    assert_int_equal(r->total_disk_gib, 2 * 40 + 200);
    /* Positions of the values the controller checks later. */
    assert_int_equal(r->name_pos.line, 4);
    assert_int_equal(r->name_pos.column, 9);
    assert_int_equal(r->department_pos.line, 5);
    assert_int_equal(r->department_pos.column, 15);
    assert_int_equal(r->lease_until_pos.line, 9);
    assert_int_equal(r->lease_until_pos.column, 18);
    request_free(r);

    /* ipv6 defaults to preferred; the largest group sizes add up in 64 bits. */
    static const char big[] =
        "{apiVersion: yunguan/v1, kind: ResourceRequest, metadata: {name: b, department: d},\n"
        " spec: {purpose: p, securityLevel: 1, lease: {until: 2027-01-01}, network: {segment: s},\n"
        "  vms: [{name: a, count: 100, vcpus: 128, memory: 1TiB, disk: 64TiB, image: i},\n"
        "        {name: b, count: 100, vcpus: 128, memory: 1TiB, disk: 64TiB, image: i}]}}\n";
    assert_int_equal(parse_str(big, &r, &e), 0);
    assert_int_equal(r->ipv6, REQUEST_IPV6_PREFERRED);
    assert_int_equal(r->total_vms, 200);
    assert_int_equal(r->total_vcpus, 200 * 128);
    assert_int_equal(r->total_memory_mib, INT64_C(200) * 1024 * 1024);
    assert_int_equal(r->total_disk_gib, INT64_C(200) * 64 * 1024);
    request_free(r);
}

static void test_to_json(void **state)
{
    struct request *r;
    struct yg_error *e;
    assert_int_equal(parse_str(valid_request, &r, &e), 0);
    json_t *j = request_to_json(r);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s,
        "{\"apiVersion\":\"yunguan/v1\",\"kind\":\"ResourceRequest\","
        "\"metadata\":{\"name\":\"vaccine-booking\",\"department\":\"health\"},"
        "\"spec\":{\"purpose\":\"Vaccine appointment booking for residents\",\"securityLevel\":2,"
        "\"lease\":{\"until\":\"2027-06-30\"},"
        "\"network\":{\"segment\":\"health-dmz\",\"ipv6\":\"required\"},"
        "\"vms\":[{\"name\":\"web\",\"count\":2,\"vcpus\":2,\"memory_mib\":4096,\"disk_gib\":40,"
        "\"image\":\"kylin-server-v10\"},"
        "{\"name\":\"db\",\"count\":1,\"vcpus\":4,\"memory_mib\":16384,\"disk_gib\":200,"
        "\"image\":\"kylin-server-v10\"}]},"
        "\"totals\":{\"vms\":3,\"vcpus\":8,\"memory_mib\":24576,\"disk_gib\":280}}");
    free(s);
    json_decref(j);
    request_free(r);
}

static void test_error_object(void **state)
{
    struct request *r;
    struct yg_error *e;
    char *text = xstrdup(valid_request);
    char *p = strstr(text, "memory: 4GiB");
    memcpy(p, "memory: 4GB ", 12);
    assert_int_equal(parse_str(text, &r, &e), -EINVAL);
    assert_null(r);
    assert_non_null(e);
    assert_int_equal(e->http_status, 422);
    assert_string_equal(e->code, "invalid_request");
    assert_string_equal(e->message, "request 't.yaml' is not valid: 1 problem");
    assert_int_equal(e->n_details, 1);
    assert_int_equal(e->details[0].line, 12);
    assert_int_equal(e->details[0].column, 47);
    assert_string_equal(e->details[0].path, "spec.vms[0].memory");
    assert_string_equal(e->details[0].message,
                        "unit 'GB' is not accepted; use MiB, GiB or TiB (binary units), e.g. '4GiB'");
    yg_error_free(e);

    /* Without a file name. */
    e = NULL;
    assert_int_equal(request_parse(text, strlen(text), NULL, &r, &e), -EINVAL);
    assert_string_equal(e->message, "request is not valid: 1 problem");
    yg_error_free(e);
    free(text);

    /* NULL text is an empty document, not a crash. */
    e = NULL;
    assert_int_equal(request_parse(NULL, 0, NULL, &r, &e), -EINVAL);
    assert_int_equal(e->n_details, 1);
    assert_int_equal(e->details[0].line, 1);
    yg_error_free(e);
}

static void test_too_large(void **state)
{
    struct request *r;
    struct yg_error *e;
    size_t len = REQUEST_MAX_BYTES + 1;
    char *big = xmalloc(len);
    memset(big, '#', len);
    assert_int_equal(parse(big, len, &r, &e), -EFBIG);
    assert_null(r);
    assert_int_equal(e->http_status, 413);
    assert_string_equal(e->code, "too_large");
    assert_int_equal(e->n_details, 0);
    assert_string_equal(e->message,
                        "request 't.yaml' is too large: 65537 bytes; the limit is 65536 bytes");
    yg_error_free(e);

    /* Exactly the limit is read (a comment-only document: empty). */
    assert_int_equal(parse(big, REQUEST_MAX_BYTES, &r, &e), -EINVAL);
    assert_int_equal(e->http_status, 422);
    assert_non_null(strstr(e->details[0].message, "the document is empty"));
    yg_error_free(e);
    free(big);
}

/* "a: [[...]]" nested N deep (the top mapping is level 1). */
static char *nested(int levels)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "a: ");
    for (int i = 1; i < levels; i++)
        strbuf_puts(&sb, "[");
    for (int i = 1; i < levels; i++)
        strbuf_puts(&sb, "]");
    strbuf_puts(&sb, "\n");
    return strbuf_steal(&sb);
}

static void test_depth_limit(void **state)
{
    struct request *r;
    struct yg_error *e;
    char *ok = nested(REQUEST_MAX_DEPTH), *deep = nested(REQUEST_MAX_DEPTH + 1);

    assert_int_equal(parse_str(ok, &r, &e), -EINVAL);
    for (size_t i = 0; i < e->n_details; i++)
        assert_null(strstr(e->details[i].message, "deeper"));
    yg_error_free(e);

    assert_int_equal(parse_str(deep, &r, &e), -EINVAL);
    assert_int_equal(e->n_details, 1);
    assert_string_equal(e->details[0].message, "the document nests deeper than 16 levels");
    assert_int_equal(e->details[0].line, 1);
    assert_int_equal(e->details[0].column, 4 + REQUEST_MAX_DEPTH - 1);
    yg_error_free(e);
    free(ok);
    free(deep);
}

/* "a: [1, 1, ...]" with N nodes in all (mapping, key, sequence, items). */
static char *many_nodes(int n)
{
    struct strbuf sb;
    strbuf_init(&sb);
    strbuf_puts(&sb, "a: [");
    for (int i = 0; i < n - 3; i++)
        strbuf_puts(&sb, i ? ",1" : "1");
    strbuf_puts(&sb, "]\n");
    return strbuf_steal(&sb);
}

static void test_node_limit(void **state)
{
    struct request *r;
    struct yg_error *e;
    char *ok = many_nodes(REQUEST_MAX_NODES), *over = many_nodes(REQUEST_MAX_NODES + 1);

    assert_int_equal(parse_str(ok, &r, &e), -EINVAL);
    for (size_t i = 0; i < e->n_details; i++)
        assert_null(strstr(e->details[i].message, "nodes"));
    yg_error_free(e);

    assert_int_equal(parse_str(over, &r, &e), -EINVAL);
    assert_int_equal(e->n_details, 1);
    assert_non_null(strstr(e->details[0].message, "more than 4096 nodes"));
    yg_error_free(e);
    free(ok);
    free(over);
}

static void test_error_limit(void **state)
{
    struct request *r;
    struct yg_error *e;
    struct strbuf sb;
    strbuf_init(&sb);
    for (int i = 0; i < 30; i++)
        strbuf_printf(&sb, "unknown%d: x\n", i);
    char *text = strbuf_steal(&sb);
    assert_int_equal(parse_str(text, &r, &e), -EINVAL);
    assert_int_equal(e->n_details, REQUEST_MAX_ERRORS);
    assert_string_equal(e->message, "request 't.yaml' is not valid: more than 20 problems; "
                        "the first 20 are listed");
    /* The first 20 found, sorted by position. */
    assert_int_equal(e->details[0].line, 1);
    for (size_t i = 1; i < e->n_details; i++)
        assert_true(e->details[i].line > e->details[i - 1].line ||
                    (e->details[i].line == e->details[i - 1].line &&
                     e->details[i].column >= e->details[i - 1].column));
    yg_error_free(e);
    free(text);
}

static void test_syntax_error_stops(void **state)
{
    struct request *r;
    struct yg_error *e;
    /* A problem before the syntax error is not validated further: one detail. */
    assert_int_equal(parse_str("apiVersion: v2\nkind: [\n", &r, &e), -EINVAL);
    assert_int_equal(e->n_details, 1);
    assert_non_null(strstr(e->details[0].message, "YAML syntax error"));
    yg_error_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv6_round_trip),
        cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_days_from_civil),
        cmocka_unit_test(test_lease_days),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_check_text),
        cmocka_unit_test(test_totals_and_defaults),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_error_object),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_node_limit),
        cmocka_unit_test(test_error_limit),
        cmocka_unit_test(test_syntax_error_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

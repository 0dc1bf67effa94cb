/* Unit tests for lib/: SHA-256 vectors, strbuf, edit distance, errors. */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "error.h"
#include "log.h"
#include "sha256.h"
#include "util.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

static void sha256_vectors(void)
{
    char hex[65];
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two_blocks, strlen(two_blocks), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* A million 'a's, fed in uneven pieces: exercises the buffering. */
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    sha256_init(&ctx);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        sha256_update(&ctx, chunk, n);
        left -= n;
    }
    sha256_final(&ctx, digest);
    hex_encode(digest, sizeof digest, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* 55, 56 and 64 bytes: the padding's edges (one block, or a second). */
    sha256_hex(two_blocks, 55, hex);
    assert_string_equal(hex, "aa353e009edbaebfc6e494c8d847696896cb8b398e0173a4b5c1b636292d87c7");
    sha256_hex(two_blocks, 56, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* The known answers with the CPU's SHA extensions (where it has them) and
 * with the portable code, and the two agree on every length 0..300. */
static void test_sha256_vectors(void **state)
{
    sha256_vectors();
    sha256_set_portable(true);
    sha256_vectors();
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t) (i * 131 + 7);
    char portable[301][65];
    for (size_t n = 0; n <= sizeof data; n++)
        sha256_hex(data, n, portable[n]);
    sha256_set_portable(false);
    for (size_t n = 0; n <= sizeof data; n++) {
        char hex[65];
        sha256_hex(data, n, hex);
        assert_string_equal(hex, portable[n]);
    }
}

static void test_strbuf(void **state)
{
    struct strbuf sb;
    strbuf_init(&sb);
    for (int i = 0; i < 1000; i++)
        strbuf_printf(&sb, "%d,", i);
    assert_int_equal(sb.len, strlen(sb.s));
    assert_true(strncmp(sb.s, "0,1,2,", 6) == 0);
    char *s = strbuf_steal(&sb);
    assert_null(sb.s);
    free(s);
    s = strbuf_steal(&sb);      /* empty buffer gives "" */
    assert_string_equal(s, "");
    free(s);
}

static void test_edit_distance(void **state)
{
    assert_int_equal(edit_distance("memory", "memory"), 0);
    assert_int_equal(edit_distance("memroy", "memory"), 2);
    assert_int_equal(edit_distance("vcpu", "vcpus"), 1);
    assert_int_equal(edit_distance("", "abc"), 3);
}

static void test_error_format_and_json(void **state)
{
    struct yg_error *e = yg_error_new(422, "invalid_request", "request is not valid");
    yg_error_add_detail(e, 7, 15, "spec.vms[0].memory", "unit 'GB' is not accepted");
    yg_error_add_detail(e, 0, 0, NULL, "no place");
    char *text = yg_error_format(e, "app.yaml");
    assert_string_equal(text, "app.yaml:7:15: spec.vms[0].memory: unit 'GB' is not accepted\n"
                              "app.yaml: no place");
    free(text);

    /* JSON round trip keeps code, message and details. */
    json_t *j = yg_error_to_json(e);
    struct yg_error *back = yg_error_from_json(j, 422);
    assert_non_null(back);
    assert_string_equal(back->code, "invalid_request");
    assert_int_equal(back->n_details, 2);
    assert_int_equal(back->details[0].line, 7);
    assert_int_equal(back->details[0].column, 15);
    assert_string_equal(back->details[0].path, "spec.vms[0].memory");
    json_decref(j);
    yg_error_free(back);
    yg_error_free(e);

    e = yg_error_new(404, "not_found", "request %d does not exist", 3);
    text = yg_error_format(e, NULL);
    assert_string_equal(text, "request 3 does not exist");
    free(text);
    yg_error_free(e);
}

static void test_log_level_round_trip(void **state)
{
    for (int i = 0; i < LOG_LEVEL_MAX; i++)
        assert_int_equal(log_level_from_string(log_level_to_string((enum log_level) i)), i);
    assert_int_equal(log_level_from_string("verbose"), -1);
}

static void test_read_file_limited(void **state)
{
    char path[] = "/tmp/yg-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    close(fd);
    char *data;
    size_t len;
    assert_int_equal(read_file_limited(path, 5, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
    assert_int_equal(read_file_limited(path, 4, &data, &len), -EFBIG);
    unlink(path);
    assert_int_equal(read_file_limited(path, 4, &data, &len), -ENOENT);
}

/* A secret file is read whole (a key of 3,000 bytes: what outgrew
 * read_file_limited()'s buffer four times), refused above the limit and
 * when missing; the empty file is an empty secret. */
static void test_read_secret_file(void **state)
{
    (void) state;
    char path[] = "/tmp/yg-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char key[3001];
    for (size_t i = 0; i < sizeof key - 1; i++)
        key[i] = (char) ('A' + i % 26);
    key[sizeof key - 1] = '\0';
    assert_int_equal(write(fd, key, sizeof key - 1), (ssize_t) sizeof key - 1);
    char *data;
    size_t len;
    assert_int_equal(read_secret_file(path, 64 * 1024, &data, &len), 0);
    assert_int_equal(len, sizeof key - 1);
    assert_string_equal(data, key);
    free_secret(data);
    free_secret(NULL);
    assert_int_equal(read_secret_file(path, 2999, &data, &len), -EFBIG);
    assert_int_equal(ftruncate(fd, 0), 0);
    close(fd);
    assert_int_equal(read_secret_file(path, 10, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free_secret(data);
    unlink(path);
    assert_int_equal(read_secret_file(path, 10, &data, &len), -ENOENT);
}

/* format_utc() writes what strftime() and snprintf() wrote before it:
 * "YYYY-MM-DDTHH:MM:SS.mmmZ", for the epoch, leap days, the end of a
 * year, 2038 and beyond, and every millisecond digit. */
static void test_format_utc(void **state)
{
    (void) state;
    const time_t times[] = { 0, 951782400, 1078012799, 1798761599, 2147483647, 2147483648LL, 4102444800LL,
                             253402300799LL, 1764150000 };
    const long nsecs[] = { 0, 999999999, 1000000, 123456789, 5000000 };
    for (size_t i = 0; i < YG_ARRAY_SIZE(times); i++)
        for (size_t k = 0; k < YG_ARRAY_SIZE(nsecs); k++) {
            struct timespec ts = { .tv_sec = times[i], .tv_nsec = nsecs[k] };
            char mine[32], theirs[32];
            format_utc(&ts, mine);
            struct tm tm;
            gmtime_r(&ts.tv_sec, &tm);
            size_t n = strftime(theirs, sizeof theirs, "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(theirs + n, sizeof theirs - n, ".%03ldZ", ts.tv_nsec / 1000000);
            assert_string_equal(mine, theirs);
        }
    char now[32];
    format_utc_now(now);
    assert_int_equal(strlen(now), 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_strbuf),
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_error_format_and_json),
        cmocka_unit_test(test_log_level_round_trip),
        cmocka_unit_test(test_read_file_limited),
        cmocka_unit_test(test_format_utc),
        cmocka_unit_test(test_read_secret_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

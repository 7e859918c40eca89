/* test_logfmt.c - log lines in loguru's shapes (src/base/logfmt.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_check.h"
#include "base/logfmt.h"

#define FIXED_SEC ((time_t)1795377600) /* 2026-11-22 20:00:00 UTC */

static tally_logrec_t granted_record(void)
{
    tally_logrec_t r;
    memset(&r, 0, sizeof r);
    r.level = TALLY_LOG_INFO;
    r.function = "claim";
    r.message = "Request #7";
    r.message_len = strlen(r.message);
    r.request_count = 7;
    r.now.tv_sec = FIXED_SEC;
    r.now.tv_nsec = 123456789;
    r.elapsed_us = 1234567;
    r.pid = 1;
    r.tid = 2;
    r.thread_name = "worker-1";
    return r;
}

static void check_one_line(const tally_buf_t *b)
{
    assert_true(b->len > 0);
    assert_int_equal(b->data[b->len - 1], '\n');
    assert_null(memchr(b->data, '\n', b->len - 1));
}

#define ASSERT_LINE(b, want)                                                                       \
    do {                                                                                           \
        size_t want_len_ = strlen(want);                                                           \
        if ((b)->len != want_len_ || memcmp((b)->data, (want), want_len_) != 0)                    \
            fail_msg("line\n%.*s\nwant\n%s", (int)(b)->len, (b)->data, (want));                    \
    } while (0)

/* The granted-number line, byte for byte: DESIGN.md section 4, with
 * loguru's key order. Elapsed is chosen so Python's float repr and six
 * fixed decimals agree. */
static void test_json_granted_exact(void **state)
{
    (void)state;
    tally_logrec_t r = granted_record();
    tally_timecache_t tc = {0};
    tally_buf_t b = TALLY_BUF_INIT;
    tally_logfmt_json(&b, &r, &tc);
    const char *want =
        "{\"text\":\"2026-11-22 20:00:00.123 | INFO | tally:claim - Request #7\\n\","
        "\"record\":{\"elapsed\":{\"repr\":\"0:00:01.234567\",\"seconds\":1.234567},"
        "\"exception\":null,\"extra\":{\"request_count\":7},\"function\":\"claim\","
        "\"level\":{\"icon\":\"\xe2\x84\xb9\xef\xb8\x8f\",\"name\":\"INFO\",\"no\":20},"
        "\"line\":0,\"message\":\"Request #7\",\"module\":\"tally\",\"name\":\"tally\","
        "\"process\":{\"id\":1,\"name\":\"tallyd\"},\"thread\":{\"id\":2,\"name\":\"worker-1\"},"
        "\"time\":{\"repr\":\"2026-11-22 20:00:00.123456+00:00\","
        "\"timestamp\":1795377600.123456}}}\n";
    ASSERT_LINE(&b, want);
    check_one_line(&b);
    assert_true(json_check_document(b.data, b.len));
    tally_buf_free(&b);
}

static void test_json_refusal_has_empty_extra(void **state)
{
    (void)state;
    tally_logrec_t r = granted_record();
    r.level = TALLY_LOG_WARNING;
    r.function = "serve";
    r.message = "Received a request but we already hit CAP requests!";
    r.message_len = strlen(r.message);
    r.request_count = -1;
    tally_timecache_t tc = {0};
    tally_buf_t b = TALLY_BUF_INIT;
    tally_logfmt_json(&b, &r, &tc);
    check_one_line(&b);
    assert_true(json_check_document(b.data, b.len));
    assert_non_null(memmem(b.data, b.len, "\"extra\":{},", 11));
    assert_null(memmem(b.data, b.len, "request_count", 13));
    const char *level = "\"level\":{\"icon\":\"\xe2\x9a\xa0\xef\xb8\x8f\",\"name\":\"WARNING\","
                        "\"no\":30}";
    assert_non_null(memmem(b.data, b.len, level, strlen(level)));
    const char *text = "{\"text\":\"2026-11-22 20:00:00.123 | WARNING | tally:serve - Received "
                       "a request but we already hit CAP requests!\\n\",";
    assert_int_equal(memcmp(b.data, text, strlen(text)), 0);
    tally_buf_free(&b);
}

static void test_json_request_count_zero_is_kept(void **state)
{
    (void)state;
    /* Only a negative count means "none". */
    tally_logrec_t r = granted_record();
    r.request_count = 0;
    tally_timecache_t tc = {0};
    tally_buf_t b = TALLY_BUF_INIT;
    tally_logfmt_json(&b, &r, &tc);
    const char *zero = "\"extra\":{\"request_count\":0}";
    assert_non_null(memmem(b.data, b.len, zero, strlen(zero)));
    b.len = 0;
    r.request_count = 1000000000000000LL;
    tally_logfmt_json(&b, &r, &tc);
    const char *big = "\"extra\":{\"request_count\":1000000000000000}";
    assert_non_null(memmem(b.data, b.len, big, strlen(big)));
    tally_buf_free(&b);
}

static void test_json_levels(void **state)
{
    (void)state;
    static const struct {
        tally_log_level_t level;
        const char *json;
    } cases[] = {
        {TALLY_LOG_DEBUG, "{\"icon\":\"\xf0\x9f\x90\x9e\",\"name\":\"DEBUG\",\"no\":10}"},
        {TALLY_LOG_INFO, "{\"icon\":\"\xe2\x84\xb9\xef\xb8\x8f\",\"name\":\"INFO\",\"no\":20}"},
        {TALLY_LOG_WARNING,
         "{\"icon\":\"\xe2\x9a\xa0\xef\xb8\x8f\",\"name\":\"WARNING\",\"no\":30}"},
        {TALLY_LOG_ERROR, "{\"icon\":\"\xe2\x9d\x8c\",\"name\":\"ERROR\",\"no\":40}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tally_logrec_t r = granted_record();
        r.level = cases[i].level;
        tally_timecache_t tc = {0};
        tally_buf_t b = TALLY_BUF_INIT;
        tally_logfmt_json(&b, &r, &tc);
        assert_true(json_check_document(b.data, b.len));
        assert_non_null(memmem(b.data, b.len, cases[i].json, strlen(cases[i].json)));
        tally_buf_free(&b);
    }
    assert_string_equal(tally_log_level_name(TALLY_LOG_DEBUG), "DEBUG");
    assert_string_equal(tally_log_level_name(TALLY_LOG_INFO), "INFO");
    assert_string_equal(tally_log_level_name(TALLY_LOG_WARNING), "WARNING");
    assert_string_equal(tally_log_level_name(TALLY_LOG_ERROR), "ERROR");
}

static void test_json_escapes_message(void **state)
{
    (void)state;
    tally_logrec_t r = granted_record();
    r.request_count = -1;
    r.level = TALLY_LOG_ERROR;
    r.message = "redis said \"ERR\"\nsecond line\r\tand \\ \x01 \xff end";
    r.message_len = strlen(r.message);
    tally_timecache_t tc = {0};
    tally_buf_t b = TALLY_BUF_INIT;
    tally_logfmt_json(&b, &r, &tc);
    check_one_line(&b);
    if (!json_check_document(b.data, b.len))
        fail_msg("not JSON: %.*s", (int)b.len, b.data);
    const char *msg = "\"message\":\"redis said \\\"ERR\\\"\\nsecond line\\r\\tand \\\\ "
                      "\\u0001 \\ufffd end\"";
    assert_non_null(memmem(b.data, b.len, msg, strlen(msg)));
    const char *text = "tally:claim - redis said \\\"ERR\\\"\\nsecond line\\r\\tand \\\\ \\u0001 "
                       "\\ufffd end\\n\",";
    assert_non_null(memmem(b.data, b.len, text, strlen(text)));
    tally_buf_free(&b);
}

static void test_json_message_with_nul_and_length(void **state)
{
    (void)state;
    /* The message is message_len bytes, NUL included, and no more. */
    tally_logrec_t r = granted_record();
    r.message = "a\0b and more";
    r.message_len = 3;
    tally_timecache_t tc = {0};
    tally_buf_t b = TALLY_BUF_INIT;
    tally_logfmt_json(&b, &r, &tc);
    assert_true(json_check_document(b.data, b.len));
    assert_non_null(memmem(b.data, b.len, "\"message\":\"a\\u0000b\"", 20));
    assert_null(memmem(b.data, b.len, "more", 4));
    tally_buf_free(&b);
}

/* record.elapsed.repr of a line formatted with elapsed_us. */
static void elapsed_repr(uint64_t us, char *out, size_t outlen, double *seconds)
{
    tally_logrec_t r = granted_record();
    r.elapsed_us = us;
    tally_timecache_t tc = {0};
    tally_buf_t b = TALLY_BUF_INIT;
    tally_logfmt_json(&b, &r, &tc);
    assert_true(json_check_document(b.data, b.len));
    const char *key = "\"elapsed\":{\"repr\":\"";
    const char *p = memmem(b.data, b.len, key, strlen(key));
    assert_non_null(p);
    p += strlen(key);
    const char *q = memchr(p, '"', b.len - (size_t)(p - b.data));
    assert_non_null(q);
    assert_true((size_t)(q - p) < outlen);
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    const char *skey = "\",\"seconds\":";
    assert_int_equal(memcmp(q, skey, strlen(skey)), 0);
    *seconds = strtod(q + strlen(skey), NULL);
    tally_buf_free(&b);
}

static void check_elapsed(uint64_t us, const char *want)
{
    char got[64];
    double seconds;
    elapsed_repr(us, got, sizeof got, &seconds);
    if (strcmp(got, want) != 0)
        fail_msg("elapsed %llu us: repr '%s', want '%s'", (unsigned long long)us, got, want);
    double expect = (double)us / 1e6;
    if (seconds < expect - 1e-6 || seconds > expect + 1e-6)
        fail_msg("elapsed %llu us: seconds %.6f", (unsigned long long)us, seconds);
}

/* Python: str(datetime.timedelta(microseconds=us)). */
static void test_elapsed_repr_like_timedelta(void **state)
{
    (void)state;
    check_elapsed(0, "0:00:00");
    check_elapsed(1, "0:00:00.000001");
    check_elapsed(1500000, "0:00:01.500000");
    check_elapsed(59999999, "0:00:59.999999");
    check_elapsed(60000000, "0:01:00");
    check_elapsed(3600000000ULL, "1:00:00");
    check_elapsed(36000000000ULL + 5000000, "10:00:05");
    check_elapsed(86399999999ULL, "23:59:59.999999");
    check_elapsed(86400000000ULL, "1 day, 0:00:00");
    check_elapsed(86400000000ULL + 1, "1 day, 0:00:00.000001");
    check_elapsed(2 * 86400000000ULL + 3 * 3600000000ULL + 4 * 60000000ULL + 5000006,
                  "2 days, 3:04:05.000006");
    check_elapsed(400 * 86400000000ULL + 1500000, "400 days, 0:00:01.500000");
}

static void test_text_line_shape(void **state)
{
    (void)state;
    tally_logrec_t r = granted_record();
    tally_timecache_t tc = {0};
    tally_buf_t b = TALLY_BUF_INIT;
    tally_logfmt_text(&b, &r, &tc);
    ASSERT_LINE(&b, "2026-11-22 20:00:00.123 | INFO     | tally:claim - Request #7\n");
    check_one_line(&b);

    b.len = 0;
    r.level = TALLY_LOG_WARNING;
    r.function = "serve";
    r.message = "two\nlines \"quoted\"";
    r.message_len = strlen(r.message);
    r.now.tv_nsec = 7000000;
    tally_logfmt_text(&b, &r, &tc);
    ASSERT_LINE(&b, "2026-11-22 20:00:00.007 | WARNING  | tally:serve - two\\nlines "
                    "\\\"quoted\\\"\n");
    check_one_line(&b);

    b.len = 0;
    r.level = TALLY_LOG_DEBUG;
    r.now.tv_nsec = 999999999;
    tally_logfmt_text(&b, &r, &tc);
    ASSERT_LINE(&b, "2026-11-22 20:00:00.999 | DEBUG    | tally:serve - two\\nlines "
                    "\\\"quoted\\\"\n");
    tally_buf_free(&b);
}

static void test_timecache_follows_the_second(void **state)
{
    (void)state;
    tally_logrec_t r = granted_record();
    tally_timecache_t tc = {0};
    tally_buf_t b = TALLY_BUF_INIT;
    tally_logfmt_text(&b, &r, &tc);
    r.now.tv_sec = FIXED_SEC + 3661;
    r.now.tv_nsec = 0;
    tally_logfmt_text(&b, &r, &tc);
    r.now.tv_sec = 0;
    tally_logfmt_json(&b, &r, &tc);
    const char *l2 = "\n2026-11-22 21:01:01.000 | INFO     | tally:claim";
    assert_non_null(memmem(b.data, b.len, l2, strlen(l2)));
    const char *l3 = "\n{\"text\":\"1970-01-01 00:00:00.000 | INFO | tally:claim";
    assert_non_null(memmem(b.data, b.len, l3, strlen(l3)));
    const char *t3 =
        "\"time\":{\"repr\":\"1970-01-01 00:00:00.000000+00:00\",\"timestamp\":0.000000}";
    assert_non_null(memmem(b.data, b.len, t3, strlen(t3)));

    /* Epoch first, with a fresh cache. */
    tally_timecache_t fresh = {0};
    tally_buf_t e = TALLY_BUF_INIT;
    tally_logfmt_text(&e, &r, &fresh);
    ASSERT_LINE(&e, "1970-01-01 00:00:00.000 | INFO     | tally:claim - Request #7\n");
    tally_buf_free(&e);
    tally_buf_free(&b);
}

static void test_lines_append_whole(void **state)
{
    (void)state;
    /* Many lines into one buffer: each whole, each ending in one '\n'. */
    tally_buf_t b = TALLY_BUF_INIT;
    tally_timecache_t tc = {0};
    for (int i = 0; i < 100; i++) {
        tally_logrec_t r = granted_record();
        char msg[32];
        r.request_count = i % 3 == 0 ? -1 : i;
        r.now.tv_sec = FIXED_SEC + i / 10;
        r.message_len = (size_t)snprintf(msg, sizeof msg, "Request #%d\n", i);
        r.message = msg;
        if (i % 2)
            tally_logfmt_json(&b, &r, &tc);
        else
            tally_logfmt_text(&b, &r, &tc);
    }
    size_t lines = 0;
    const char *p = b.data, *end = b.data + b.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        assert_true(nl > p); /* no empty line */
        if (*p == '{' && !json_check_document(p, (size_t)(nl - p)))
            fail_msg("line %zu is not JSON", lines);
        lines++;
        p = nl + 1;
    }
    assert_int_equal(lines, 100);
    tally_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_granted_exact),
        cmocka_unit_test(test_json_refusal_has_empty_extra),
        cmocka_unit_test(test_json_request_count_zero_is_kept),
        cmocka_unit_test(test_json_levels),
        cmocka_unit_test(test_json_escapes_message),
        cmocka_unit_test(test_json_message_with_nul_and_length),
        cmocka_unit_test(test_elapsed_repr_like_timedelta),
        cmocka_unit_test(test_text_line_shape),
        cmocka_unit_test(test_timecache_follows_the_second),
        cmocka_unit_test(test_lines_append_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_http_errors.c - the request parser (src/http/parser.h) on malformed
 * input: which status each refusal carries (400, or 505 for a well-formed
 * version other than 1.0 and 1.1, HTTP/0.9 included), whatever the reads'
 * boundaries; obs-fold however it is cut; Transfer-Encoding with
 * Content-Length, repeated Content-Length, NUL and control bytes, the Host
 * rules, whitespace in a header name; an error stays until
 * tally_http_init(). The fixture is http_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http_fixture.h"

static void test_505_http2(void **state)
{
    (void)state;
    expect_error(S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 8192, 1 << 20, 505);
}

static void test_505_http09(void **state)
{
    (void)state;
    /* An HTTP/0.9 request is complete at its first CRLF: a 0.9 client sends
     * nothing more and waits. */
    expect_error(S("GET /\r\n"), 8192, 1 << 20, 505);
}

static void test_505_http09_then_blank_line(void **state)
{
    (void)state;
    expect_error(S("GET /\r\n\r\n"), 8192, 1 << 20, 505);
    expect_error(S("GET /healthz\r\nHost: a\r\n\r\n"), 8192, 1 << 20, 505);
}

/* The answer to bad input does not depend on where reads end: every cut
 * into two reads gets the status one read gets (both found by fuzz_http). */
static void expect_error_every_split(const char *data, size_t len, int status)
{
    expect_error(data, len, 8192, 1 << 20, status);
    for (size_t cut = 1; cut < len; cut++) {
        fixture_t f;
        setup(&f, 8192, 1 << 20, NULL);
        size_t used = 0;
        tally_http_result_t r = tally_http_feed(&f.h, data, cut, &used);
        if (r == TALLY_HTTP_OK)
            r = tally_http_feed(&f.h, data + cut, len - cut, &used);
        if (r != TALLY_HTTP_ERROR || f.h.error_status != status)
            fail_msg("'%.*s' cut at %zu: result %d status %d, want error %d", (int)len, data, cut,
                     r, f.h.error_status, status);
        teardown(&f);
    }
}

static void test_version_errors_independent_of_split(void **state)
{
    (void)state;
    expect_error_every_split(S("GET /\r\nX Y: z\r\n\r\n"), 505);
    expect_error_every_split(S("GET /\r\nHost: a\r\n\r\n"), 505);
    expect_error_every_split(S("GET / HTTP/1.4\r\nHost: a\r\n\r\n"), 505);
    expect_error_every_split(S("GET / HTTP/1.4x\r\nHost: a\r\n\r\n"), 505);
    expect_error_every_split(S("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), 505);
    expect_error_every_split(S("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400);
    expect_error_every_split(S("GET / HTTP/12.0\r\nHost: a\r\n\r\n"), 400);
    expect_error_every_split(S("GET / HTTP/x.1\r\nHost: a\r\n\r\n"), 400);
}

static void test_400_garbage(void **state)
{
    (void)state;
    expect_error(S("\x01\x02\x03garbage\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / FTP/1.1\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n"), 8192, 1 << 20,
                 400);
}

static void test_400_te_and_cl(void **state)
{
    (void)state;
    expect_error(S("POST /reset HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                   "chunked\r\nContent-Length: 3\r\n\r\n"
                   "0\r\n\r\n"),
                 8192, 1 << 20, 400);
    expect_error(S("POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n"
                   "0\r\n\r\n"),
                 8192, 1 << 20, 400);
}

static void test_400_duplicate_content_length(void **state)
{
    (void)state;
    expect_error(
        S("POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
        8192, 1 << 20, 400);
    expect_error(
        S("POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        8192, 1 << 20, 400);
}

static void test_400_obs_fold(void **state)
{
    (void)state;
    expect_error(S("GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n two\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n\ttwo\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer\r\n tok\r\n\r\n"), 8192,
                 1 << 20, 400);
}

/* Whether the pieces, fed in turn, end in a 400; prints why not. */
static bool fold_refused(const char *const *pieces, size_t n, bool reuse, const char *what)
{
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    tally_http_result_t r = reuse ? feed_pieces_reused(&f, pieces, n) : feed_pieces(&f, pieces, n);
    bool ok = r == TALLY_HTTP_ERROR && f.h.error_status == 400;
    if (!ok)
        print_error("obs-fold %s: result %d, status %d, %d requests (want error 400)\n", what, r,
                    f.h.error_status, f.rec.n);
    teardown(&f);
    return ok;
}

static void test_400_obs_fold_separate_feed(void **state)
{
    (void)state;
    static const char *const a[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n", " two\r\n\r\n"};
    static const char *const b[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: one", "\r\n two\r\n\r\n"};
    static const char *const c[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r", "\n two\r\n\r\n"};
    static const char *const d[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: one", "\r\n",
                                    " two\r\n\r\n"};
    int refused = 0;
    refused += fold_refused(a, 2, false, "after the CRLF");
    refused += fold_refused(b, 2, false, "with the CRLF");
    refused += fold_refused(c, 2, false, "between CR and LF");
    refused += fold_refused(d, 3, false, "CRLF alone");
    assert_int_equal(refused, 4);
}

static void test_400_obs_fold_separate_feed_reused_buffer(void **state)
{
    (void)state;
    /* As the worker reads: every piece lands at the start of one buffer. */
    static const char *const a[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n", " two\r\n\r\n"};
    static const char *const b[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: one", "\r\n two\r\n\r\n"};
    static const char *const d[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: one", "\r\n",
                                    " two\r\n\r\n"};
    static const char *const e[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: one", "\r", "\n",
                                    " two\r\n\r\n"};
    int refused = 0;
    refused += fold_refused(a, 2, true, "after the CRLF, same buffer");
    refused += fold_refused(b, 2, true, "with the CRLF, same buffer");
    refused += fold_refused(d, 3, true, "CRLF alone, same buffer");
    refused += fold_refused(e, 4, true, "CR, LF alone, same buffer");
    assert_int_equal(refused, 4);
}

static void test_value_split_across_feeds_is_fine(void **state)
{
    (void)state;
    /* A value cut by a read boundary is not a fold. */
    static const char *const p[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A: o", "n", "e\r\nX-B: t",
                                    "wo\r\n\r\n"};
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(feed_pieces(&f, p, 4), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    teardown(&f);
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(feed_pieces_reused(&f, p, 4), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    teardown(&f);
}

static void test_400_fold_after_empty_value(void **state)
{
    (void)state;
    /* The value starts on a continuation line: still a fold. */
    expect_error(S("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n 5\r\n\r\nhello"), 8192,
                 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\tchunked\r\n\r\n"), 8192,
                 1 << 20, 400);
    static const char *const a[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A:", "\r\n two\r\n\r\n"};
    static const char *const b[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A:\r\n", " two\r\n\r\n"};
    static const char *const c[] = {"GET / HTTP/1.1\r\nHost: t\r\nX-A:\r", "\n", " ",
                                    "two\r\n\r\n"};
    int refused = 0;
    for (int reuse = 0; reuse < 2; reuse++) {
        refused += fold_refused(a, 2, reuse, "empty value, CRLF in the second input");
        refused += fold_refused(b, 2, reuse, "empty value, CRLF in the first input");
        refused += fold_refused(c, 4, reuse, "empty value, byte by byte");
    }
    assert_int_equal(refused, 6);
    /* Leading spaces and an empty value are fine. */
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(parse_one(&f, S("GET / HTTP/1.1\r\nHost: t\r\nX-A:    v\r\nX-B:\r\n\r\n")),
                     TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    teardown(&f);
}

static void test_400_nul_in_header(void **state)
{
    (void)state;
    expect_error(S("GET / HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: t\r\nX-\0A: ab\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n"), 8192, 1 << 20, 400);
}

static void test_control_bytes_in_target_and_version(void **state)
{
    (void)state;
    expect_error(S("GET /?a\tb HTTP/1.1\r\nHost: t\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET /\x0c HTTP/1.1\r\nHost: t\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET /\x7f HTTP/1.1\r\nHost: t\r\n\r\n"), 8192, 1 << 20, 400);
    /* a malformed version is a bad request; a well-formed unknown one, 505 */
    expect_error("GET / HTTP/1.\0001\r\nHost: t\r\n\r\n", 28, 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.x\r\nHost: t\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.2\r\nHost: t\r\n\r\n"), 8192, 1 << 20, 505);
    expect_error(S("GET / HTTP/3.0\r\nHost: t\r\n\r\n"), 8192, 1 << 20, 505);
}

static void test_host_header_rules(void **state)
{
    (void)state;
    /* RFC 9112 3.2: HTTP/1.1 needs exactly one Host; 1.0 may omit it. */
    expect_error(S("GET / HTTP/1.1\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.0\r\nhost: a\r\nHOST: a\r\n\r\n"), 8192, 1 << 20, 400);
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(parse_one(&f, S("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                     "GET / HTTP/1.1\r\nhOsT: x\r\n\r\n")),
                     TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 2);
    teardown(&f);
}

static void test_whitespace_in_header_name(void **state)
{
    (void)state;
    /* RFC 9112 5.1: no whitespace between a field name and the colon. */
    expect_error(S("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: x\r\nX\tY: z\r\n\r\n"), 8192, 1 << 20, 400);
}

static void test_error_is_sticky(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(parse_one(&f, S("BOGUS\x01 / HTTP/1.1\r\nHost: t\r\n\r\n")), TALLY_HTTP_ERROR);
    assert_int_equal(f.h.error_status, 400);
    size_t used = 0;
    assert_int_equal(tally_http_feed(&f.h, S("GET / HTTP/1.1\r\nHost: t\r\n\r\n"), &used),
                     TALLY_HTTP_ERROR);
    assert_int_equal(f.h.error_status, 400);
    assert_int_equal(f.rec.n, 0);
    /* tally_http_init starts over */
    tally_http_init(&f.h, &f.hc, &f.rec);
    assert_int_equal(parse_one(&f, S("GET / HTTP/1.1\r\nHost: t\r\n\r\n")), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_505_http2),
        cmocka_unit_test(test_505_http09),
        cmocka_unit_test(test_505_http09_then_blank_line),
        cmocka_unit_test(test_version_errors_independent_of_split),
        cmocka_unit_test(test_400_garbage),
        cmocka_unit_test(test_400_te_and_cl),
        cmocka_unit_test(test_400_duplicate_content_length),
        cmocka_unit_test(test_400_obs_fold),
        cmocka_unit_test(test_400_obs_fold_separate_feed),
        cmocka_unit_test(test_400_obs_fold_separate_feed_reused_buffer),
        cmocka_unit_test(test_value_split_across_feeds_is_fine),
        cmocka_unit_test(test_400_nul_in_header),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_400_fold_after_empty_value),
        cmocka_unit_test(test_control_bytes_in_target_and_version),
        cmocka_unit_test(test_host_header_rules),
        cmocka_unit_test(test_whitespace_in_header_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_http_limits.c - the request parser's size limits (src/http/parser.h):
 * --max-header-size counts a request's line and header lines, is 431 one
 * byte past the limit and applies to each pipelined request alone;
 * --max-body-size is 413 for a Content-Length or chunks over it, announced
 * or sent. The fixture is http_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http_fixture.h"

static void test_431_header_too_large(void **state)
{
    (void)state;
    char req[1024];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: %0300d\r\n\r\n", 0);
    expect_error(req, (size_t)n, 256, 1 << 20, 431);
    /* a long request line alone */
    n = snprintf(req, sizeof req, "GET /%0300d HTTP/1.1\r\nHost: t\r\n\r\n", 0);
    expect_error(req, (size_t)n, 256, 1 << 20, 431);
    /* many small headers */
    size_t len = (size_t)snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(req + len, sizeof req - len, "X-%02d: v\r\n", i);
    len += (size_t)snprintf(req + len, sizeof req - len, "\r\n");
    expect_error(req, len, 256, 1 << 20, 431);
}

/* A request whose line and header lines (CRLFs included, the final blank
 * line not) take exactly `size` bytes. */
static size_t request_of_size(char *out, size_t cap, size_t size)
{
    const char *line = "GET / HTTP/1.1\r\nHost: t\r\n"; /* 16 bytes */
    size_t fixed = strlen(line) + strlen("X-Fill: \r\n");
    assert_true(size > fixed && size + 3 < cap);
    size_t fill = size - fixed;
    size_t n = (size_t)snprintf(out, cap, "%sX-Fill: ", line);
    memset(out + n, 'f', fill);
    n += fill;
    memcpy(out + n, "\r\n\r\n", 4);
    return n + 4;
}

static void test_431_boundary(void **state)
{
    (void)state;
    char req[2048];
    fixture_t f;

    /* Exactly the limit: served. */
    setup(&f, 256, 1 << 20, NULL);
    size_t len = request_of_size(req, sizeof req, 256);
    assert_int_equal(parse_one(&f, req, len), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    teardown(&f);

    /* One byte more: 431. */
    setup(&f, 256, 1 << 20, NULL);
    len = request_of_size(req, sizeof req, 257);
    tally_http_result_t r = parse_one(&f, req, len);
    int status = f.h.error_status;
    teardown(&f);
    if (r != TALLY_HTTP_ERROR || status != 431) {
        /* Say how far over the limit a request gets through. */
        size_t size = 258;
        for (; size < 1024; size++) {
            setup(&f, 256, 1 << 20, NULL);
            len = request_of_size(req, sizeof req, size);
            bool refused = parse_one(&f, req, len) == TALLY_HTTP_ERROR;
            teardown(&f);
            if (refused)
                break;
        }
        fail_msg("--max-header-size 256: request line + headers of 257 bytes got result %d, "
                 "status %d (want 431); the first size refused is %zu",
                 r, status, size);
    }
}

static void test_header_limit_is_per_request(void **state)
{
    (void)state;
    /* Pipelined requests each under the limit, together far over it. */
    char req[4096];
    size_t len = 0;
    for (int i = 0; i < 10; i++)
        len += request_of_size(req + len, sizeof req - len, 200);
    fixture_t f;
    setup(&f, 256, 1 << 20, NULL);
    assert_int_equal(parse_one(&f, req, len), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 10);
    teardown(&f);
}

static void test_413_content_length(void **state)
{
    (void)state;
    expect_error(S("POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n"), 8192, 10, 413);
    expect_error(S("POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n"), 8192,
                 1 << 20, 413);
    /* At the limit: fine. */
    fixture_t f;
    setup(&f, 8192, 10, NULL);
    assert_int_equal(parse_one(&f, S("POST /reset HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n"
                                     "0123456789")),
                     TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    teardown(&f);
}

static void test_413_chunked(void **state)
{
    (void)state;
    expect_error(S("POST /reset HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n"),
                 8192, 10, 413);
    /* A single chunk announcing more than the limit. */
    expect_error(S("POST /reset HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "fffffff\r\n0123456789abcdef"),
                 8192, 10, 413);
    fixture_t f;
    setup(&f, 8192, 10, NULL);
    assert_int_equal(
        parse_one(&f, S("POST /reset HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n")),
        TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_431_header_too_large),
        cmocka_unit_test(test_431_boundary),
        cmocka_unit_test(test_header_limit_is_per_request),
        cmocka_unit_test(test_413_content_length),
        cmocka_unit_test(test_413_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

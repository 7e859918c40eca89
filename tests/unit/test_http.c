/* test_http.c - the request parser (src/http/parser.h), driven through
 * tally_http_feed() with a callback that records every request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/parser.h"
#include "route_ids.h"

#define MAX_REQS 64

typedef struct recorder {
    int n;
    tally_http_request_t reqs[MAX_REQS];
    int pause_every; /* the callback returns 1 for these requests (0: never) */
} recorder_t;

static int record(void *owner, const tally_http_request_t *req)
{
    recorder_t *r = owner;
    if (r->n < MAX_REQS)
        r->reqs[r->n] = *req;
    r->n++;
    return r->pause_every != 0 && r->n % r->pause_every == 0;
}

typedef struct fixture {
    tally_http_config_t hc;
    tally_http_t h;
    recorder_t rec;
} fixture_t;

static void setup(fixture_t *f, size_t max_header, uint64_t max_body, const char *token)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(tally_http_config_init(&f->hc, max_header, max_body, token, record,
                                            tally_route_classify, NULL),
                     0);
    tally_http_init(&f->h, &f->hc, &f->rec);
}

static void teardown(fixture_t *f)
{
    tally_http_config_free(&f->hc);
}

/* Feeds everything, resuming after pauses; returns the last result. */
static tally_http_result_t feed_all(fixture_t *f, const char *data, size_t len)
{
    size_t off = 0;
    for (;;) {
        size_t used = (size_t)-1;
        tally_http_result_t r = tally_http_feed(&f->h, data + off, len - off, &used);
        assert_true(used <= len - off);
        off += used;
        if (r != TALLY_HTTP_PAUSED)
            return r;
        if (off == len)
            return r;
    }
}

/* Feeds each piece in turn, stopping at the first error. */
static tally_http_result_t feed_pieces(fixture_t *f, const char *const *pieces, size_t n)
{
    tally_http_result_t r = TALLY_HTTP_OK;
    for (size_t i = 0; i < n && r != TALLY_HTTP_ERROR; i++)
        r = feed_all(f, pieces[i], strlen(pieces[i]));
    return r;
}

/* The worker reads every connection into one buffer: the same bytes land
 * at the same address read after read. Feeds each piece from there. */
static tally_http_result_t feed_pieces_reused(fixture_t *f, const char *const *pieces, size_t n)
{
    static char readbuf[4096];
    tally_http_result_t r = TALLY_HTTP_OK;
    for (size_t i = 0; i < n && r != TALLY_HTTP_ERROR; i++) {
        size_t len = strlen(pieces[i]);
        assert_true(len <= sizeof readbuf);
        memcpy(readbuf, pieces[i], len);
        r = feed_all(f, readbuf, len);
    }
    return r;
}

#define S(lit) (lit), (sizeof(lit) - 1)

/* One whole request in one buffer; returns the result. */
static tally_http_result_t parse_one(fixture_t *f, const char *data, size_t len)
{
    size_t used = 0;
    tally_http_result_t r = tally_http_feed(&f->h, data, len, &used);
    if (r != TALLY_HTTP_PAUSED)
        assert_int_equal(used, len);
    return r;
}

static void expect_error(const char *data, size_t len, size_t max_header, uint64_t max_body,
                         int status)
{
    fixture_t f;
    setup(&f, max_header, max_body, NULL);
    tally_http_result_t r = parse_one(&f, data, len);
    if (r != TALLY_HTTP_ERROR || f.h.error_status != status)
        fail_msg("'%.*s': result %d status %d, want error %d", (int)len, data, r, f.h.error_status,
                 status);
    assert_non_null(f.h.error_detail);
    assert_int_equal(f.rec.n, 0);
    teardown(&f);
}

static void test_simple_get(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(parse_one(&f, S("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    assert_int_equal(f.rec.reqs[0].method, HTTP_GET);
    assert_int_equal(f.rec.reqs[0].minor, 1);
    assert_true(f.rec.reqs[0].keep_alive);
    assert_false(f.rec.reqs[0].auth_ok);
    assert_int_equal(f.rec.reqs[0].route, TALLY_ROUTE_ROOT);
    assert_int_equal(f.h.error_status, 0);
    teardown(&f);
}

static const char pipelined[] =
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    "GET /readyz?verbose=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "POST /reset HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cr3t\r\n"
    "Content-Length: 5\r\n\r\nhello"
    "DELETE /nope HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n0\r\n\r\n"
    "GET /reset HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cr3t\r\n\r\n"
    "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

static void check_pipelined(const recorder_t *rec)
{
    static const struct {
        int method, minor;
        bool keep_alive, auth_ok;
        tally_route_t route;
    } want[] = {
        {HTTP_GET, 1, true, false, TALLY_ROUTE_ROOT},
        {HTTP_HEAD, 1, true, false, TALLY_ROUTE_HEALTHZ},
        {HTTP_GET, 0, true, false, TALLY_ROUTE_READYZ},
        {HTTP_POST, 1, true, true, TALLY_ROUTE_RESET},
        {HTTP_DELETE, 1, true, false, TALLY_ROUTE_UNKNOWN},
        {HTTP_GET, 1, true, true, TALLY_ROUTE_RESET},
        {HTTP_GET, 1, false, false, TALLY_ROUTE_METRICS},
    };
    assert_int_equal(rec->n, (int)(sizeof want / sizeof want[0]));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const tally_http_request_t *q = &rec->reqs[i];
        if (q->method != want[i].method || q->minor != want[i].minor ||
            q->keep_alive != want[i].keep_alive || q->auth_ok != want[i].auth_ok ||
            q->route != want[i].route)
            fail_msg("request %zu: method %d minor %d keep_alive %d auth_ok %d route %d", i,
                     q->method, q->minor, q->keep_alive, q->auth_ok, q->route);
    }
}

static void test_pipelined_in_order(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, "s3cr3t");
    assert_int_equal(parse_one(&f, S(pipelined)), TALLY_HTTP_OK);
    check_pipelined(&f.rec);
    teardown(&f);
}

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, "s3cr3t");
    for (size_t i = 0; i < sizeof pipelined - 1; i++) {
        size_t used = 0;
        assert_int_equal(tally_http_feed(&f.h, pipelined + i, 1, &used), TALLY_HTTP_OK);
        assert_int_equal(used, 1);
    }
    check_pipelined(&f.rec);
    teardown(&f);

    /* The same, each byte read into the same one-byte buffer. */
    setup(&f, 8192, 1 << 20, "s3cr3t");
    char one[1];
    for (size_t i = 0; i < sizeof pipelined - 1; i++) {
        size_t used = 0;
        one[0] = pipelined[i];
        assert_int_equal(tally_http_feed(&f.h, one, 1, &used), TALLY_HTTP_OK);
    }
    check_pipelined(&f.rec);
    teardown(&f);
}

static void test_every_split_point(void **state)
{
    (void)state;
    /* Two reads, split everywhere: always the same requests. */
    for (size_t cut = 0; cut <= sizeof pipelined - 1; cut++) {
        fixture_t f;
        setup(&f, 8192, 1 << 20, "s3cr3t");
        size_t used = 0;
        assert_int_equal(tally_http_feed(&f.h, pipelined, cut, &used), TALLY_HTTP_OK);
        assert_int_equal(tally_http_feed(&f.h, pipelined + cut, sizeof pipelined - 1 - cut, &used),
                         TALLY_HTTP_OK);
        check_pipelined(&f.rec);
        teardown(&f);
    }
}

static void test_pause_and_resume(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, "s3cr3t");
    f.rec.pause_every = 1;
    const char first[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t used = 0;
    tally_http_result_t r = tally_http_feed(&f.h, S(pipelined), &used);
    assert_int_equal(r, TALLY_HTTP_PAUSED);
    assert_int_equal(used, sizeof first - 1);
    assert_int_equal(f.rec.n, 1);
    /* Resuming with the rest: one request per call, consumed adds up. */
    size_t off = used;
    int calls = 1;
    while (off < sizeof pipelined - 1) {
        r = tally_http_feed(&f.h, pipelined + off, sizeof pipelined - 1 - off, &used);
        assert_true(r == TALLY_HTTP_PAUSED || r == TALLY_HTTP_OK);
        assert_true(used > 0);
        off += used;
        calls++;
        assert_int_equal(f.rec.n, calls);
    }
    assert_int_equal(off, sizeof pipelined - 1);
    check_pipelined(&f.rec);
    teardown(&f);
}

static void test_pause_every_other(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, "s3cr3t");
    f.rec.pause_every = 2;
    assert_int_equal(feed_all(&f, S(pipelined)), TALLY_HTTP_OK);
    check_pipelined(&f.rec);
    teardown(&f);
}

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

static void test_400_nul_in_header(void **state)
{
    (void)state;
    expect_error(S("GET / HTTP/1.1\r\nHost: t\r\nX-A: a\0b\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET / HTTP/1.1\r\nHost: t\r\nX-\0A: ab\r\n\r\n"), 8192, 1 << 20, 400);
    expect_error(S("GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n"), 8192, 1 << 20, 400);
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

static tally_route_t route_of(const char *target)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(parse_one(&f, req, (size_t)n), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    tally_route_t r = f.rec.reqs[0].route;
    teardown(&f);
    return r;
}

static void test_query_string_stripped(void **state)
{
    (void)state;
    assert_int_equal(route_of("/?x=1"), TALLY_ROUTE_ROOT);
    assert_int_equal(route_of("/?"), TALLY_ROUTE_ROOT);
    assert_int_equal(route_of("/healthz?probe=k8s&x=/metrics"), TALLY_ROUTE_HEALTHZ);
    assert_int_equal(route_of("/readyz?"), TALLY_ROUTE_READYZ);
    assert_int_equal(route_of("/metrics?name[]=a"), TALLY_ROUTE_METRICS);
    assert_int_equal(route_of("/reset?a=b"), TALLY_ROUTE_RESET);
    assert_int_equal(route_of("/nope?x=/"), TALLY_ROUTE_UNKNOWN);
    assert_int_equal(route_of("/healthz/"), TALLY_ROUTE_UNKNOWN);
    assert_int_equal(route_of("/healthzhealthzhealthz"), TALLY_ROUTE_UNKNOWN);
    assert_int_equal(route_of("/healthz0123456789?x"), TALLY_ROUTE_UNKNOWN);
    assert_int_equal(route_of("/0123456789abcdef"), TALLY_ROUTE_UNKNOWN);
    assert_int_equal(route_of("/0123456789abcde"), TALLY_ROUTE_UNKNOWN);
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

static void test_absolute_form(void **state)
{
    (void)state;
    /* RFC 9112 3.2.2: a server MUST accept the absolute form. */
    assert_int_equal(route_of("http://127.0.0.1:8080/healthz"), TALLY_ROUTE_HEALTHZ);
    assert_int_equal(route_of("http://example.com/"), TALLY_ROUTE_ROOT);
    assert_int_equal(route_of("http://example.com"), TALLY_ROUTE_ROOT);
    assert_int_equal(route_of("http://example.com?x=1"), TALLY_ROUTE_ROOT);
    assert_int_equal(route_of("HTTP://H:1/metrics?x=/reset"), TALLY_ROUTE_METRICS);
    assert_int_equal(route_of("http://h/nope"), TALLY_ROUTE_UNKNOWN);
    assert_int_equal(route_of("*"), TALLY_ROUTE_UNKNOWN);
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

static void test_path_split_across_feeds(void **state)
{
    (void)state;
    static const char *const p[] = {"GET /hea", "lth", "z?q", "=1 HTTP/1.1\r\nHost: t\r\n\r\n"};
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(feed_pieces(&f, p, 4), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    assert_int_equal(f.rec.reqs[0].route, TALLY_ROUTE_HEALTHZ);
    teardown(&f);
}

static bool keep_alive_of(const char *req)
{
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(parse_one(&f, req, strlen(req)), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    bool ka = f.rec.reqs[0].keep_alive;
    teardown(&f);
    return ka;
}

static void test_keep_alive(void **state)
{
    (void)state;
    assert_false(keep_alive_of("GET / HTTP/1.0\r\n\r\n"));
    assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    assert_true(keep_alive_of("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert_true(keep_alive_of("GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    assert_false(keep_alive_of("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    assert_false(keep_alive_of("GET / HTTP/1.1\r\nHost: t\r\nConnection: Close\r\n\r\n"));
    assert_true(keep_alive_of("GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n"));
}

static void test_minor_version(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    assert_int_equal(parse_one(&f, S("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                     "GET / HTTP/1.1\r\nHost: t\r\n\r\n")),
                     TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 2);
    assert_int_equal(f.rec.reqs[0].minor, 0);
    assert_int_equal(f.rec.reqs[0].method, HTTP_HEAD);
    assert_int_equal(f.rec.reqs[1].minor, 1);
    teardown(&f);
}

static void test_upgrade_ends_http(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, NULL);
    tally_http_result_t r = parse_one(&f, S("GET / HTTP/1.1\r\nHost: t\r\nConnection: "
                                            "Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00"));
    assert_int_equal(r, TALLY_HTTP_UPGRADE);
    teardown(&f);
}

/* auth_ok of one request carrying the given header lines. */
static bool auth_of(const char *token, const char *headers)
{
    char req[1024];
    /* HTTP/1.0: Host is optional there, so the header lines are exactly
     * the ones given. */
    int n = snprintf(req, sizeof req, "POST /reset HTTP/1.0\r\n%s\r\n", headers);
    assert_true(n > 0 && (size_t)n < sizeof req);
    fixture_t f;
    setup(&f, 8192, 1 << 20, token);
    tally_http_result_t r = parse_one(&f, req, (size_t)n);
    if (r != TALLY_HTTP_OK)
        fail_msg("'%s': result %d status %d", headers, r, f.h.error_status);
    assert_int_equal(f.rec.n, 1);
    bool ok = f.rec.reqs[0].auth_ok;
    teardown(&f);
    return ok;
}

static void test_auth_exact_token(void **state)
{
    (void)state;
    assert_true(auth_of("s3cr3t", "Authorization: Bearer s3cr3t\r\n"));
    assert_true(auth_of("s3cr3t", "Host: a\r\nAuthorization: Bearer s3cr3t\r\nX: y\r\n"));
    assert_true(auth_of("s3cr3t", "authorization: Bearer s3cr3t\r\n"));
    assert_true(auth_of("s3cr3t", "AUTHORIZATION: Bearer s3cr3t\r\n"));
    assert_true(auth_of("s3cr3t", "Authorization:Bearer s3cr3t\r\n"));
    /* the scheme is case-insensitive */
    assert_true(auth_of("s3cr3t", "Authorization: bearer s3cr3t\r\n"));
    assert_true(auth_of("s3cr3t", "Authorization: BEARER s3cr3t\r\n"));
    assert_true(auth_of("s3cr3t", "Authorization: bEaReR s3cr3t\r\n"));
    assert_true(auth_of("A-Z_a-z.0~9+/=", "Authorization: Bearer A-Z_a-z.0~9+/=\r\n"));
}

static void test_auth_refused(void **state)
{
    (void)state;
    /* the token is case-sensitive */
    assert_false(auth_of("s3cr3t", "Authorization: Bearer S3CR3T\r\n"));
    assert_false(auth_of("Bearer", "Authorization: Bearer bearer\r\n"));
    /* wrong token of the same length, and of others */
    assert_false(auth_of("s3cr3t", "Authorization: Bearer s3cr3x\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bearer wrong\r\n"));
    /* a prefix, a longer value */
    assert_false(auth_of("s3cr3t", "Authorization: Bearer s3cr3\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bearer \r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bearer\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bear\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: \r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bearer s3cr3tt\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bearer s3cr3t,x\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bearer s3cr3t s3cr3t\r\n"));
    /* other schemes, no scheme */
    assert_false(auth_of("s3cr3t", "Authorization: Basic s3cr3t\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Token s3cr3t\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: s3cr3t\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bearers3cr3t\r\n"));
    /* two Authorization headers, even both right */
    assert_false(auth_of("s3cr3t", "Authorization: Bearer s3cr3t\r\n"
                                   "Authorization: Bearer s3cr3t\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization: Bearer wrong\r\n"
                                   "Authorization: Bearer s3cr3t\r\n"));
    /* look-alike header names */
    assert_false(auth_of("s3cr3t", "X-Authorization: Bearer s3cr3t\r\n"));
    assert_false(auth_of("s3cr3t", "Authorization-X: Bearer s3cr3t\r\n"));
    assert_false(auth_of("s3cr3t", "Authorizatio: Bearer s3cr3t\r\n"));
    assert_false(auth_of("s3cr3t", "Proxy-Authorization: Bearer s3cr3t\r\n"));
    /* no header */
    assert_false(auth_of("s3cr3t", "Host: a\r\n"));
}

static void test_auth_no_token_configured(void **state)
{
    (void)state;
    assert_false(auth_of(NULL, "Authorization: Bearer s3cr3t\r\n"));
    assert_false(auth_of(NULL, "Authorization: Bearer \r\n"));
    assert_false(auth_of(NULL, "Authorization: Bearer\r\n"));
    assert_false(auth_of(NULL, "Authorization: \r\n"));
    assert_false(auth_of(NULL, "Host: a\r\n"));
}

static void test_auth_is_per_request(void **state)
{
    (void)state;
    fixture_t f;
    setup(&f, 8192, 1 << 20, "s3cr3t");
    assert_int_equal(
        parse_one(&f, S("POST /reset HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cr3t\r\n\r\n"
                        "POST /reset HTTP/1.1\r\nHost: t\r\n\r\n"
                        "POST /reset HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cr3t\r\n\r\n"
                        "POST /reset HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3\r\n\r\n"
                        "POST /reset HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer x3cr3t\r\n\r\n"
                        "POST /reset HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cr3t\r\n\r\n")),
        TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 6);
    assert_true(f.rec.reqs[0].auth_ok);
    assert_false(f.rec.reqs[1].auth_ok);
    assert_true(f.rec.reqs[2].auth_ok);
    assert_false(f.rec.reqs[3].auth_ok);
    assert_false(f.rec.reqs[4].auth_ok);
    assert_true(f.rec.reqs[5].auth_ok); /* a wrong token before does not stick */
    teardown(&f);
}

static void test_auth_split_across_feeds(void **state)
{
    (void)state;
    static const char *const p[] = {"POST /reset HTTP/1.1\r\nHost: t\r\nAuthor", "ization: Bea",
                                    "rer s3", "cr3t\r\n\r\n"};
    fixture_t f;
    setup(&f, 8192, 1 << 20, "s3cr3t");
    assert_int_equal(feed_pieces_reused(&f, p, 4), TALLY_HTTP_OK);
    assert_int_equal(f.rec.n, 1);
    assert_true(f.rec.reqs[0].auth_ok);
    teardown(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_pause_every_other),
        cmocka_unit_test(test_431_header_too_large),
        cmocka_unit_test(test_431_boundary),
        cmocka_unit_test(test_header_limit_is_per_request),
        cmocka_unit_test(test_413_content_length),
        cmocka_unit_test(test_413_chunked),
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
        cmocka_unit_test(test_query_string_stripped),
        cmocka_unit_test(test_path_split_across_feeds),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_minor_version),
        cmocka_unit_test(test_upgrade_ends_http),
        cmocka_unit_test(test_auth_exact_token),
        cmocka_unit_test(test_auth_refused),
        cmocka_unit_test(test_auth_no_token_configured),
        cmocka_unit_test(test_auth_is_per_request),
        cmocka_unit_test(test_auth_split_across_feeds),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_400_fold_after_empty_value),
        cmocka_unit_test(test_control_bytes_in_target_and_version),
        cmocka_unit_test(test_host_header_rules),
        cmocka_unit_test(test_whitespace_in_header_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

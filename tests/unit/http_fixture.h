/* http_fixture.h - the request parser's test bench, shared by test_http.c,
 * test_http_errors.c, test_http_limits.c and test_http_auth.c: a parser
 * (src/http/parser.h) classifying through the real route table, whose
 * callback records every request it completes, and ways to feed it (all at
 * once, piece by piece, each piece through one reused read buffer).
 * Everything is static inline: each test file takes what it uses. */
#ifndef TALLY_TEST_HTTP_FIXTURE_H
#define TALLY_TEST_HTTP_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static inline int record(void *owner, const tally_http_request_t *req)
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

static inline void setup(fixture_t *f, size_t max_header, uint64_t max_body, const char *token)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(tally_http_config_init(&f->hc, max_header, max_body, token, record,
                                            tally_route_classify, NULL),
                     0);
    tally_http_init(&f->h, &f->hc, &f->rec);
}

static inline void teardown(fixture_t *f)
{
    tally_http_config_free(&f->hc);
}

/* Feeds everything, resuming after pauses; returns the last result. */
static inline tally_http_result_t feed_all(fixture_t *f, const char *data, size_t len)
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
static inline tally_http_result_t feed_pieces(fixture_t *f, const char *const *pieces, size_t n)
{
    tally_http_result_t r = TALLY_HTTP_OK;
    for (size_t i = 0; i < n && r != TALLY_HTTP_ERROR; i++)
        r = feed_all(f, pieces[i], strlen(pieces[i]));
    return r;
}

/* The worker reads every connection into one buffer: the same bytes land
 * at the same address read after read. Feeds each piece from there. */
static inline tally_http_result_t feed_pieces_reused(fixture_t *f, const char *const *pieces,
                                                     size_t n)
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
static inline tally_http_result_t parse_one(fixture_t *f, const char *data, size_t len)
{
    size_t used = 0;
    tally_http_result_t r = tally_http_feed(&f->h, data, len, &used);
    if (r != TALLY_HTTP_PAUSED)
        assert_int_equal(used, len);
    return r;
}

static inline void expect_error(const char *data, size_t len, size_t max_header, uint64_t max_body,
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

#endif

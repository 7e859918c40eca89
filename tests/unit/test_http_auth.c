/* test_http_auth.c - the admin token as the request parser checks it
 * (src/http/parser.h): auth_ok only for exactly one Authorization header
 * carrying "Bearer <token>" (scheme of any case, token exact), never
 * without a configured token, judged per request and across reads. The
 * fixture is http_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http_fixture.h"

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
        cmocka_unit_test(test_auth_exact_token),         cmocka_unit_test(test_auth_refused),
        cmocka_unit_test(test_auth_no_token_configured), cmocka_unit_test(test_auth_is_per_request),
        cmocka_unit_test(test_auth_split_across_feeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

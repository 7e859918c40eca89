/* test_http.c - the request parser (src/http/parser.h) on good input, driven
 * through tally_http_feed() with a callback that records every request
 * (http_fixture.h): one request, many pipelined in one read, a byte at a
 * time, cut at every point, paused and resumed; the route a target reaches
 * (query strings, the absolute form), keep-alive, the minor version,
 * Upgrade. Refused input is in test_http_errors.c, the size limits in
 * test_http_limits.c, the bearer token in test_http_auth.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_pause_every_other),
        cmocka_unit_test(test_query_string_stripped),
        cmocka_unit_test(test_path_split_across_feeds),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_minor_version),
        cmocka_unit_test(test_upgrade_ends_http),
        cmocka_unit_test(test_absolute_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

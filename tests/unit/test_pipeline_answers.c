/* test_pipeline_answers.c - what the sans-IO connection core
 * (src/http/pipeline.c) answers, through pipe_fixture.h's loopback with the
 * real route table: 404/405 and Allow; HEAD; POST /reset with no, wrong and
 * right tokens; parser errors (400/413/431/505) as the last, closing
 * answer; HTTP/1.0 keep-alive; /metrics, /healthz, /readyz.
 */
#include "pipe_fixture.h"

static void test_404_405(void **state)
{
    static const char nf[] = "{\"error\":\"not found\"}",
                      na[] = "{\"error\":\"method not allowed\"}";
    static const row_t rows[] = {
        {REQ("GET /nope", ""), "404", nf, "Allow", NULL},
        {REQ("GET /a/path/longer/than/sixteen", ""), "404", nf, "Allow", NULL},
        {REQ("POST /", "Content-Length: 0\r\n"), "405", na, "Allow", "GET, HEAD"},
        {REQ("GET /reset", ""), "405", na, "Allow", "POST"},
        {REQ("DELETE /metrics", ""), "405", na, "Allow", "GET, HEAD"},
        /* No token configured: POST /reset does not exist, whatever is sent. */
        {REQ("POST /reset", "Authorization: Bearer x\r\n"), "404", nf, "WWW-Authenticate", NULL},
    };
    run(*state, rows, N(rows), false);
}

static void test_head(void **state)
{
    fx_t *f = *state;
    char len[16];
    check(serve(f, REQ("HEAD /", "") REQ("HEAD /healthz", "") REQ("HEAD /nope", "") GET, 0),
          "200H 200H 404H 200#2"); /* HEAD / took a number too */
    snprintf(len, sizeof len, "%zu", tally_root_len(100));
    hdr_is(&ans[0], "Content-Length", len);
    hdr_is(&ans[3], "Content-Length", len);
    hdr_is(&ans[1], "Content-Length", "15"); /* {"status":"ok"} */
    hdr_is(&ans[2], "Content-Length", "21"); /* {"error":"not found"} */
}

static void test_reset_with_token(void **state)
{
    fx_t *f = *state;
    static const char *const bad[] = {
        "", "Bearer wrong", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "Bearer  s3cret"};
    char req[256];
    check(serve(f, GET GET, 0), "200#1 200#2");
    for (size_t i = 0; i < N(bad); i++) {
        snprintf(req, sizeof req, REQ("POST /reset", "Authorization: %s\r\n"), bad[i]);
        check(serve(f, req, 0), "401");
        body_is(&ans[0], "{\"error\":\"unauthorized\"}");
        hdr_is(&ans[0], "WWW-Authenticate", "Bearer");
    }
    check(serve(f, REQ("POST /reset", "") GET, 0), "401 200#3"); /* nothing was reset */
    unsigned wakes = f->wakes;
    check(serve(f, REQ("POST /reset", "Authorization: Bearer s3cret\r\n") GET, 0), "200 200#1");
    body_is(&ans[0], "{\"reset\":true}");
    assert_int_equal(f->wakes, wakes + 2); /* the reset and the claim */
}

static void test_parser_error_is_last(void **state)
{
    char big[512];
    snprintf(big, sizeof big, GET GET REQ("GET /", "X-Big: %0300d\r\n") GET, 0);
    const row_t rows[] = {
        {GET GET "BLAH / HTTP/1.1\r\nHost: t\r\n\r\n" GET, "200#1 200#2 400c", NULL, NULL, NULL},
        {GET GET REQ("GET /", "Bad Header: x\r\n") GET, "200#1 200#2 400c",
         "{\"error\":\"whitespace in a header name\"}", NULL, NULL},
        {GET GET "GET / HTTP/1.1\r\n\r\n" GET, "200#1 200#2 400c",
         "{\"error\":\"missing Host header\"}", NULL, NULL},
        {GET GET "GET / HTTP/1.2\r\nHost: t\r\n\r\n" GET, "200#1 200#2 505c",
         "{\"error\":\"only HTTP/1.0 and HTTP/1.1 are served\"}", NULL, NULL},
        {GET GET REQ("POST /", "Content-Length: 5000\r\n") GET, "200#1 200#2 413c",
         "{\"error\":\"request body too large\"}", NULL, NULL},
        {big, "200#1 200#2 431c", "{\"error\":\"request line and headers too large\"}", NULL, NULL},
    };
    run(*state, rows, N(rows), true);
}

static void test_http10_keep_alive(void **state)
{
    static const row_t rows[] = {
        {"GET / HTTP/1.0\r\n\r\n" GET, "200#1c", NULL, NULL, NULL},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" GET, "200#1k 200#2", NULL, NULL, NULL},
        {REQ("GET /", "Connection: close\r\n") GET, "200#1c", NULL, NULL, NULL},
        {GET GET, "200#1 200#2", NULL, NULL, NULL},
    };
    run(*state, rows, N(rows), true);
}

static void test_metrics(void **state)
{
    fx_t *f = *state;
    static const char *const lines[] = {
        "\ntally_requests_total{route=\"/\",code=\"2xx\"} 2\n",
        "\ntally_requests_total{route=\"other\",code=\"4xx\"} 1\n",
        "\ntally_claims_total{outcome=\"granted\"} 2\n",
        "\ntally_backend_up{worker=\"1\",backend=\"memory\"} 1\n",
        "\ntally_request_duration_seconds_count 3\n",
    };
    check(serve(f, REQ("GET /nope", "") GET GET, 0), "404 200#1 200#2");
    check(serve(f, REQ("GET /metrics", ""), 0), "200");
    hdr_is(&ans[0], "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    for (size_t i = 0; i < N(lines); i++) /* the body ends the output */
        if (strstr(ans[0].body, lines[i]) == NULL)
            fail_msg("metrics lack \"%s\"", lines[i]);
    /* An answer is counted once written: the scrape is not in itself. */
    assert_null(strstr(ans[0].body, "route=\"/metrics\""));
    check(serve(f, REQ("GET /metrics", ""), 0), "200");
    assert_non_null(strstr(ans[0].body, "{route=\"/metrics\",code=\"2xx\"} 1\n"));
}

static void test_health(void **state)
{
    fx_t *f = *state;
    static const row_t up[] = {
        {REQ("GET /healthz", ""), "200", "{\"status\":\"ok\"}", "Content-Type", "application/json"},
        {REQ("GET /readyz", ""), "200", "{\"status\":\"ready\"}", "Retry-After", NULL},
    };
    static const row_t down[] = {
        {REQ("GET /readyz", ""), "503", "{\"error\":\"counter backend not connected\"}",
         "Retry-After", "1"},
        {REQ("GET /healthz", ""), "200", "{\"status\":\"ok\"}", "Retry-After", NULL},
    };
    run(f, up, N(up), false);
    atomic_store(&f->app.backend_up, false);
    run(f, down, N(down), false);
    assert_int_equal(f->wakes, 0); /* nothing deferred */
}

int main(void)
{
    /* The claim and reset log lines would go to stdout, which is TAP's. */
    tally_log_min_level = TALLY_LOG_ERROR + 1;
    const struct CMUnitTest tests[] = {
        T(test_404_405, DEF),
        T(test_head, DEF),
        T(test_reset_with_token, TOKEN),
        T(test_parser_error_is_last, SMALL),
        T(test_http10_keep_alive, DEF),
        T(test_metrics, DEF),
        T(test_health, DEF),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

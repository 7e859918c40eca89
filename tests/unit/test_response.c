/* test_response.c - serialising answers (src/http/response.h), and GET /'s
 * padded answer (tally_root_answer, src/app/routes.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cmocka.h>

#include "json_check.h"
#include "http/response.h"
#include "route_ids.h"

#define FIXED_TIME ((time_t)1795377600) /* Sun, 22 Nov 2026 20:00:00 GMT */

/* ---- a small, strict HTTP/1.1 response reader ---- */

#define MAX_HEADERS 16

typedef struct parsed {
    int status;
    char reason[64];
    int nh;
    char name[MAX_HEADERS][64];
    char value[MAX_HEADERS][128];
    const char *body;
    size_t body_len;
    size_t total; /* bytes of this response */
} parsed_t;

static const char *header(const parsed_t *r, const char *name)
{
    const char *found = NULL;
    for (int i = 0; i < r->nh; i++) {
        if (strcasecmp(r->name[i], name) == 0) {
            if (found)
                fail_msg("header %s appears twice", name);
            found = r->value[i];
        }
    }
    return found;
}

static size_t header_count(const parsed_t *r, const char *name)
{
    size_t n = 0;
    for (int i = 0; i < r->nh; i++)
        n += strcasecmp(r->name[i], name) == 0;
    return n;
}

/* Reads one response at p; its body is Content-Length bytes unless head. */
static void parse_response(const char *p, size_t len, bool head, parsed_t *r)
{
    memset(r, 0, sizeof *r);
    const char *end = p + len;
    const char *eol = memmem(p, len, "\r\n", 2);
    if (eol == NULL || eol - p < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[12] != ' ')
        fail_msg("bad status line in '%.*s'", (int)len, p);
    r->status = atoi(p + 9);
    snprintf(r->reason, sizeof r->reason, "%.*s", (int)(eol - p - 13), p + 13);
    const char *line = eol + 2;
    for (;;) {
        eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (eol == NULL)
            fail_msg("headers not terminated");
        if (eol == line)
            break;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL || colon + 1 >= eol || colon[1] != ' ' || r->nh == MAX_HEADERS)
            fail_msg("bad header line '%.*s'", (int)(eol - line), line);
        for (const char *c = line; c < eol; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                fail_msg("control byte in header line");
        }
        snprintf(r->name[r->nh], sizeof r->name[0], "%.*s", (int)(colon - line), line);
        snprintf(r->value[r->nh], sizeof r->value[0], "%.*s", (int)(eol - colon - 2), colon + 2);
        r->nh++;
        line = eol + 2;
    }
    const char *body = eol + 2;
    const char *cl = header(r, "Content-Length");
    if (cl == NULL)
        fail_msg("no Content-Length");
    char *cl_end;
    unsigned long long n = strtoull(cl, &cl_end, 10);
    if (*cl == '\0' || *cl_end != '\0')
        fail_msg("bad Content-Length '%s'", cl);
    r->body = body;
    r->body_len = head ? 0 : (size_t)n;
    if ((size_t)(end - body) < r->body_len)
        fail_msg("body shorter than Content-Length %llu", n);
    r->total = (size_t)(body - p) + r->body_len;
}

/* The CAP of the last make_ctx(): what root_answer() pads for. */
static int64_t ctx_cap;

static tally_resp_ctx_t make_ctx(int64_t cap)
{
    tally_resp_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    tally_http_date(ctx.date, FIXED_TIME);
    ctx_cap = cap;
    return ctx;
}

static void root_answer(tally_buf_t *b, const tally_resp_ctx_t *ctx, int64_t number, unsigned flags)
{
    tally_root_answer(b, ctx, ctx_cap, tally_root_len(ctx_cap), number, flags);
}

/* A 405 carries the Allow of its route; nothing else does. */
static const char *allow_of(int status, tally_route_t route)
{
    return status == 405 ? route_allow(route) : NULL;
}

/* The common headers every answer carries. */
static void check_common(const parsed_t *r, const char *content_type)
{
    const char *server = header(r, "Server");
    assert_non_null(server);
    assert_string_equal(server, "tally");
    const char *date = header(r, "Date");
    assert_non_null(date);
    assert_string_equal(date, "Sun, 22 Nov 2026 20:00:00 GMT");
    const char *ct = header(r, "Content-Type");
    assert_non_null(ct);
    assert_string_equal(ct, content_type);
}

/* The body a GET / should carry: the JSON, spaces, the closing brace. */
static void expected_root_body(int64_t cap, int64_t number, char *out, size_t len)
{
    int n =
        number > 0
            ? snprintf(out, len + 1, "{\"hello\":\"world\",\"request_num\":%lld", (long long)number)
            : snprintf(out, len + 1, "{\"Go\":\"away!\",\"request_num\":%lld", (long long)cap);
    assert_true(n > 0 && (size_t)n < len);
    memset(out + n, ' ', len - 1 - (size_t)n);
    out[len - 1] = '}';
    out[len] = '\0';
}

static void check_root(int64_t cap, int64_t number)
{
    tally_resp_ctx_t ctx = make_ctx(cap);
    tally_buf_t b = TALLY_BUF_INIT;
    root_answer(&b, &ctx, number, 0);
    parsed_t r;
    parse_response(b.data, b.len, false, &r);
    assert_int_equal(r.total, b.len);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.reason, "OK");
    check_common(&r, "application/json");
    if (r.body_len != tally_root_len(cap))
        fail_msg("cap %lld number %lld: body is %zu bytes, root_len is %zu", (long long)cap,
                 (long long)number, r.body_len, tally_root_len(cap));
    assert_true(json_check_document(r.body, r.body_len));
    char want[128];
    expected_root_body(cap, number, want, r.body_len);
    if (memcmp(r.body, want, r.body_len) != 0)
        fail_msg("body '%.*s', want '%s'", (int)r.body_len, r.body, want);
    tally_buf_free(&b);
}

static void test_root_len(void **state)
{
    (void)state;
    /* {"hello":"world","request_num":CAP} is the longest body under CAP. */
    assert_int_equal(tally_root_len(1), 33);
    assert_int_equal(tally_root_len(9), 33);
    assert_int_equal(tally_root_len(10), 34);
    assert_int_equal(tally_root_len(100), 35);
    assert_int_equal(tally_root_len(1000000000000000LL), 48);
}

static void test_root_cap_100(void **state)
{
    (void)state;
    static const int64_t numbers[] = {1, 9, 10, 99, 100, 0};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        check_root(100, numbers[i]);
}

static void test_root_cap_1(void **state)
{
    (void)state;
    check_root(1, 1);
    check_root(1, 0);
}

static void test_root_cap_max(void **state)
{
    (void)state;
    static const int64_t numbers[] = {
        1, 9, 10, 99, 100, 123456789, 999999999999999LL, 1000000000000000LL, 0};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        check_root(1000000000000000LL, numbers[i]);
}

static void test_root_every_number_same_length(void **state)
{
    (void)state;
    static const int64_t caps[] = {1, 7, 10, 11, 100, 1000, 12345};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        tally_resp_ctx_t ctx = make_ctx(caps[c]);
        tally_buf_t b = TALLY_BUF_INIT;
        size_t first_len = 0;
        for (int64_t n = 0; n <= caps[c]; n++) {
            b.len = 0;
            root_answer(&b, &ctx, n, TALLY_RESP_KEEPALIVE);
            if (n == 0)
                first_len = b.len;
            else if (b.len != first_len)
                fail_msg("cap %lld: answer for %lld is %zu bytes, go-away is %zu",
                         (long long)caps[c], (long long)n, b.len, first_len);
        }
        tally_buf_free(&b);
    }
}

static void test_root_head_keeps_length(void **state)
{
    (void)state;
    tally_resp_ctx_t ctx = make_ctx(100);
    tally_buf_t b = TALLY_BUF_INIT;
    root_answer(&b, &ctx, 42, TALLY_RESP_HEAD);
    parsed_t r;
    parse_response(b.data, b.len, true, &r);
    assert_int_equal(r.total, b.len); /* nothing after the blank line */
    assert_int_equal(r.status, 200);
    check_common(&r, "application/json");
    assert_string_equal(header(&r, "Content-Length"), "35");
    assert_int_equal(b.len >= 4, 1);
    assert_memory_equal(b.data + b.len - 4, "\r\n\r\n", 4);

    b.len = 0;
    root_answer(&b, &ctx, 0, TALLY_RESP_HEAD | TALLY_RESP_CLOSE);
    parse_response(b.data, b.len, true, &r);
    assert_int_equal(r.total, b.len);
    assert_string_equal(header(&r, "Content-Length"), "35");
    assert_string_equal(header(&r, "Connection"), "close");
    tally_buf_free(&b);
}

static void test_connection_headers(void **state)
{
    (void)state;
    tally_resp_ctx_t ctx = make_ctx(100);
    tally_buf_t b = TALLY_BUF_INIT;
    parsed_t r;

    root_answer(&b, &ctx, 5, 0);
    parse_response(b.data, b.len, false, &r);
    assert_int_equal(header_count(&r, "Connection"), 0);

    b.len = 0;
    root_answer(&b, &ctx, 5, TALLY_RESP_KEEPALIVE);
    parse_response(b.data, b.len, false, &r);
    assert_int_equal(header_count(&r, "Connection"), 1);
    assert_string_equal(header(&r, "Connection"), "keep-alive");

    b.len = 0;
    root_answer(&b, &ctx, 5, TALLY_RESP_CLOSE);
    parse_response(b.data, b.len, false, &r);
    assert_int_equal(header_count(&r, "Connection"), 1);
    assert_string_equal(header(&r, "Connection"), "close");

    /* Closing wins: never both. */
    b.len = 0;
    tally_response_error(&b, &ctx, 400, "bad", NULL, TALLY_RESP_KEEPALIVE | TALLY_RESP_CLOSE);
    parse_response(b.data, b.len, false, &r);
    assert_int_equal(header_count(&r, "Connection"), 1);
    assert_string_equal(header(&r, "Connection"), "close");
    tally_buf_free(&b);
}

static void test_pipelined_answers_append(void **state)
{
    (void)state;
    tally_resp_ctx_t ctx = make_ctx(100);
    tally_buf_t b = TALLY_BUF_INIT;
    root_answer(&b, &ctx, 7, TALLY_RESP_KEEPALIVE);
    tally_response_error(&b, &ctx, 404, "not found", NULL, 0);
    root_answer(&b, &ctx, 0, TALLY_RESP_HEAD);
    root_answer(&b, &ctx, 100, TALLY_RESP_CLOSE);
    parsed_t r;
    size_t off = 0;
    parse_response(b.data + off, b.len - off, false, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 35);
    assert_memory_equal(r.body, "{\"hello\":\"world\",\"request_num\":7 ", 33);
    off += r.total;
    parse_response(b.data + off, b.len - off, false, &r);
    assert_int_equal(r.status, 404);
    assert_true(json_check_document(r.body, r.body_len));
    off += r.total;
    parse_response(b.data + off, b.len - off, true, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Length"), "35");
    off += r.total;
    parse_response(b.data + off, b.len - off, false, &r);
    assert_int_equal(r.body_len, 35);
    assert_memory_equal(r.body, "{\"hello\":\"world\",\"request_num\":100}", 35);
    off += r.total;
    assert_int_equal(off, b.len);
    tally_buf_free(&b);
}

static void check_error(int status, const char *reason, tally_route_t route, const char *what,
                        parsed_t *r, tally_buf_t *b)
{
    tally_resp_ctx_t ctx = make_ctx(100);
    b->len = 0;
    tally_response_error(b, &ctx, status, what, allow_of(status, route), 0);
    parse_response(b->data, b->len, false, r);
    assert_int_equal(r->total, b->len);
    assert_int_equal(r->status, status);
    assert_string_equal(r->reason, reason);
    check_common(r, "application/json");
    if (!json_check_document(r->body, r->body_len))
        fail_msg("error body is not JSON: '%.*s'", (int)r->body_len, r->body);
    assert_true(r->body_len > 12);
    assert_memory_equal(r->body, "{\"error\":\"", 10);
    assert_memory_equal(r->body + r->body_len - 2, "\"}", 2);
}

static void test_errors(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    parsed_t r;

    check_error(404, "Not Found", TALLY_ROUTE_UNKNOWN, "not found", &r, &b);
    assert_int_equal(r.body_len, strlen("{\"error\":\"not found\"}"));
    assert_memory_equal(r.body, "{\"error\":\"not found\"}", r.body_len);
    assert_null(header(&r, "Allow"));
    assert_null(header(&r, "Retry-After"));

    check_error(405, "Method Not Allowed", TALLY_ROUTE_ROOT, "method not allowed", &r, &b);
    assert_non_null(header(&r, "Allow"));
    assert_string_equal(header(&r, "Allow"), "GET, HEAD");
    check_error(405, "Method Not Allowed", TALLY_ROUTE_METRICS, "method not allowed", &r, &b);
    assert_string_equal(header(&r, "Allow"), "GET, HEAD");
    check_error(405, "Method Not Allowed", TALLY_ROUTE_RESET, "method not allowed", &r, &b);
    assert_string_equal(header(&r, "Allow"), "POST");

    check_error(503, "Service Unavailable", TALLY_ROUTE_ROOT, "backend unavailable", &r, &b);
    assert_non_null(header(&r, "Retry-After"));
    assert_string_equal(header(&r, "Retry-After"), "1");

    check_error(401, "Unauthorized", TALLY_ROUTE_RESET, "bad token", &r, &b);
    assert_non_null(header(&r, "WWW-Authenticate"));

    check_error(400, "Bad Request", TALLY_ROUTE_UNKNOWN, "x", &r, &b);
    check_error(408, "Request Timeout", TALLY_ROUTE_UNKNOWN, "x", &r, &b);
    check_error(413, "Content Too Large", TALLY_ROUTE_UNKNOWN, "x", &r, &b);
    check_error(431, "Request Header Fields Too Large", TALLY_ROUTE_UNKNOWN, "x", &r, &b);
    check_error(500, "Internal Server Error", TALLY_ROUTE_UNKNOWN, "x", &r, &b);
    check_error(505, "HTTP Version Not Supported", TALLY_ROUTE_UNKNOWN, "x", &r, &b);
    tally_buf_free(&b);
}

static void test_error_text_is_escaped(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    parsed_t r;
    check_error(503, "Service Unavailable", TALLY_ROUTE_ROOT,
                "redis said \"ERR\"\r\n\\ \x01 \xff\xfe", &r, &b);
    char long_what[600];
    for (size_t i = 0; i < sizeof long_what - 1; i++)
        long_what[i] = "\"\\\x01\xe2\x82\xac"[i % 6];
    long_what[sizeof long_what - 1] = '\0';
    check_error(503, "Service Unavailable", TALLY_ROUTE_ROOT, long_what, &r, &b);
    tally_buf_free(&b);
}

static void test_write_other_content(void **state)
{
    (void)state;
    tally_resp_ctx_t ctx = make_ctx(100);
    tally_buf_t b = TALLY_BUF_INIT;
    const char body[] = "# TYPE x counter\nx 1\n";
    tally_response_write(&b, &ctx, 200, "text/plain; version=0.0.4", "X-Extra: yes\r\n", body,
                         sizeof body - 1, 0);
    parsed_t r;
    parse_response(b.data, b.len, false, &r);
    assert_int_equal(r.total, b.len);
    assert_int_equal(r.status, 200);
    check_common(&r, "text/plain; version=0.0.4");
    assert_string_equal(header(&r, "X-Extra"), "yes");
    assert_int_equal(r.body_len, sizeof body - 1);
    assert_memory_equal(r.body, body, sizeof body - 1);

    b.len = 0;
    tally_response_write(&b, &ctx, 200, NULL, NULL, body, sizeof body - 1, TALLY_RESP_HEAD);
    parse_response(b.data, b.len, true, &r);
    assert_int_equal(r.total, b.len);
    check_common(&r, "application/json");
    char cl[16];
    snprintf(cl, sizeof cl, "%zu", sizeof body - 1);
    assert_string_equal(header(&r, "Content-Length"), cl);

    b.len = 0;
    tally_response_write(&b, &ctx, 200, NULL, NULL, "", 0, 0);
    parse_response(b.data, b.len, false, &r);
    assert_int_equal(r.total, b.len);
    assert_string_equal(header(&r, "Content-Length"), "0");
    tally_buf_free(&b);
}

static void test_reasons(void **state)
{
    (void)state;
    assert_string_equal(tally_http_reason(200), "OK");
    assert_string_equal(tally_http_reason(404), "Not Found");
    assert_string_equal(tally_http_reason(405), "Method Not Allowed");
    assert_string_equal(tally_http_reason(503), "Service Unavailable");
    assert_non_null(tally_http_reason(299));
}

static void check_date(time_t t, const char *want)
{
    char out[TALLY_HTTP_DATE_LEN + 1];
    memset(out, 'X', sizeof out);
    tally_http_date(out, t);
    assert_int_equal(out[TALLY_HTTP_DATE_LEN], '\0');
    assert_string_equal(out, want);
}

static void test_http_date(void **state)
{
    (void)state;
    check_date(0, "Thu, 01 Jan 1970 00:00:00 GMT");
    check_date(FIXED_TIME, "Sun, 22 Nov 2026 20:00:00 GMT");
    check_date(951782400, "Tue, 29 Feb 2000 00:00:00 GMT");
    check_date(1709164800, "Thu, 29 Feb 2024 00:00:00 GMT");
    check_date(1700000000, "Tue, 14 Nov 2023 22:13:20 GMT");
    check_date((time_t)253402300799LL, "Fri, 31 Dec 9999 23:59:59 GMT");
    /* Against strftime in the C locale, over many instants. */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        time_t t = (time_t)(x % 4102444800ULL); /* 1970 .. 2100 */
        struct tm tm;
        gmtime_r(&t, &tm);
        char want[64];
        strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        check_date(t, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_len),
        cmocka_unit_test(test_root_cap_100),
        cmocka_unit_test(test_root_cap_1),
        cmocka_unit_test(test_root_cap_max),
        cmocka_unit_test(test_root_every_number_same_length),
        cmocka_unit_test(test_root_head_keeps_length),
        cmocka_unit_test(test_connection_headers),
        cmocka_unit_test(test_pipelined_answers_append),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_text_is_escaped),
        cmocka_unit_test(test_write_other_content),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_http_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

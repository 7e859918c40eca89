/* fuzz_http.c - libFuzzer target for the request path: bytes in, tally_http_t
 * parser, router, response bytes out, driven the way src/conn.c drives one
 * connection (conn.c itself needs a libuv loop and a worker, so its control
 * flow is mirrored here, step for step).
 *
 * Input:  byte 0      settings: max header size, max body size, admin token,
 *                     a flaky backend, CAP (see settings_from())
 *         byte 1      n = byte & 15: how many split sizes follow
 *         n bytes     piece sizes, each 1..256, used in turn (n = 0: the
 *                     whole stream is one read)
 *         the rest    the bytes a client sends on one connection
 *
 * Every piece is copied into one static buffer, as the worker reads every
 * connection into one buffer, with the unused tail poisoned for ASan so a
 * read past the piece is caught. A ring of 16 answers pauses the parser
 * when full (the callback returns 1); the unparsed rest is kept in a
 * malloc'ed copy and parsed once answers have left, as conn.c does.
 *
 * The stream is served twice: once as one read, once in the chosen pieces.
 * Invariants (abort on violation):
 *   - consumed never exceeds the bytes fed;
 *   - no request callback once the parser reported an error, and the
 *     error sticks (a valid request fed afterwards is not parsed);
 *   - parser errors are only 400, 413, 431 or 505, with a printable detail;
 *   - every answer is well formed: status line with the right reason,
 *     CRLF-terminated header lines, exactly one Content-Length equal to the
 *     body length (0 bytes of body for HEAD), Connection as flagged, every
 *     GET / body the same padded length; nothing after an answer that says
 *     Connection: close, and the last answer of a closing connection says it;
 *   - answers leave in request order (GET / numbers strictly increase);
 *   - how the input is split changes nothing: the same requests, the same
 *     final error, the same number of answers (one exception: where the
 *     header size limit, 431, and a syntax error are both in reach, which
 *     one is met first depends on where the reads end).
 *
 * Environment: FUZZ_HTTP_DEBUG=1 prints every answer's status line.
 */
#include <sanitizer/asan_interface.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/parser.h"
#include "http/response.h"
#include "app/routes.h"

#define RING     16 /* TALLY_CONN_SLOTS */
#define FEED_MAX (64 * 1024)
#define MAX_REQS 4096

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_http: invariant violated at line %d: %s\n", __LINE__, #cond);    \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum { SLOT_ROOT, SLOT_HEALTHZ, SLOT_READYZ, SLOT_METRICS, SLOT_RESET, SLOT_ERROR };

typedef struct settings {
    size_t max_header;
    uint64_t max_body;
    bool token; /* TALLY_ADMIN_TOKEN configured */
    bool flaky; /* every third claim fails, /readyz says 503 */
    int64_t cap;
} settings_t;

typedef struct rec {
    uint8_t method, minor, route;
    bool keep_alive, auth_ok;
} rec_t;

typedef struct slot {
    uint8_t kind;
    uint8_t method;
    bool ready;
    unsigned flags;
    int status;
    tally_route_t route;
    const char *detail;
    int64_t number;
    size_t req; /* index in the transcript; SIZE_MAX for a parser error */
} slot_t;

typedef struct run {
    const settings_t *set;
    tally_http_config_t hc;
    tally_http_t http;
    tally_resp_ctx_t resp;
    tally_buf_t out;
    slot_t slots[RING];
    unsigned head, count;
    bool close_after;
    bool errored;
    bool upgraded;
    bool said_close;   /* an answer carried Connection: close */
    bool error_09;     /* the parser had read an HTTP/0.9 request line */
    uint8_t error_hpe; /* llhttp's error code */
    uint16_t error_status;
    char *saved;
    size_t saved_len, saved_off;
    rec_t reqs[MAX_REQS];
    size_t nreqs;     /* requests seen (recorded up to MAX_REQS) */
    size_t answered;  /* answers serialised, in order */
    size_t next_req;  /* the request the next answer must be for */
    int64_t counter;  /* the fake backend's counter */
    uint64_t claims;  /* claims settled */
    int64_t last_num; /* last number answered, for the order check */
} run_t;

static char feedbuf[FEED_MAX];

/* FUZZ_HTTP_DEBUG=1: print each run's answers (to read what a seed does). */
static bool debug;

static const char TOKEN[] = "s3cret-token";

static settings_t settings_from(uint8_t b)
{
    static const size_t headers[4] = {8192, 256, 512, 1024};
    static const uint64_t bodies[4] = {1024 * 1024, 0, 16, 100};
    static const int64_t caps[4] = {100, 1, 3, 1000000000000000LL};
    settings_t s;
    s.max_header = headers[b & 3];
    s.max_body = bodies[(b >> 2) & 3];
    s.token = (b >> 4) & 1;
    s.flaky = (b >> 5) & 1;
    s.cap = caps[(b >> 6) & 3];
    return s;
}

static slot_t *slot_push(run_t *r)
{
    CHECK(r->count < RING);
    slot_t *s = &r->slots[(r->head + r->count) % RING];
    r->count++;
    memset(s, 0, sizeof *s);
    s->req = SIZE_MAX;
    return s;
}

/* tally_conn_on_request(), with a fake backend whose claims settle at the
 * end of the "loop iteration" (settle()). */
static int on_request(void *owner, const tally_http_request_t *req)
{
    run_t *r = owner;
    CHECK(!r->errored);
    CHECK(r->http.error_status == 0);
    CHECK(!r->close_after);
    CHECK(r->count < RING);
    CHECK(!r->http.in_message);
    CHECK(req->route <= TALLY_ROUTE_RESET);
    CHECK(req->minor <= 1);
    CHECK(!req->auth_ok || (r->set->token && req->route == TALLY_ROUTE_RESET));

    if (r->nreqs < MAX_REQS) {
        rec_t *rec = &r->reqs[r->nreqs];
        rec->method = req->method;
        rec->minor = req->minor;
        rec->route = (uint8_t)req->route;
        rec->keep_alive = req->keep_alive;
        rec->auth_ok = req->auth_ok;
    }
    slot_t *s = slot_push(r);
    s->req = r->nreqs++;
    s->route = req->route;
    s->method = req->method;
    if (req->method == HTTP_HEAD)
        s->flags |= TALLY_RESP_HEAD;
    if (!req->keep_alive) {
        s->flags |= TALLY_RESP_CLOSE;
        r->close_after = true;
    } else if (req->minor == 0) {
        s->flags |= TALLY_RESP_KEEPALIVE;
    }
    s->ready = true;
    if (req->route == TALLY_ROUTE_UNKNOWN) {
        s->kind = SLOT_ERROR;
        s->status = 404;
        s->detail = "not found";
    } else if (!tally_route_allows(req->route, req->method)) {
        s->kind = SLOT_ERROR;
        s->status = 405;
        s->detail = "method not allowed";
    } else {
        switch (req->route) {
        case TALLY_ROUTE_ROOT:
            s->kind = SLOT_ROOT;
            s->ready = false;
            break;
        case TALLY_ROUTE_HEALTHZ:
            s->kind = SLOT_HEALTHZ;
            s->status = 200;
            break;
        case TALLY_ROUTE_READYZ:
            s->kind = SLOT_READYZ;
            s->status = r->set->flaky ? 503 : 200;
            break;
        case TALLY_ROUTE_METRICS:
            s->kind = SLOT_METRICS;
            s->status = 200;
            break;
        default:
            s->kind = SLOT_RESET;
            s->status = !r->set->token ? 404 : req->auth_ok ? 200 : 401;
            break;
        }
    }
    return r->close_after || r->count == RING;
}

static void push_error(run_t *r, int status, const char *detail)
{
    slot_t *s = slot_push(r);
    s->kind = SLOT_ERROR;
    s->status = status;
    s->detail = detail;
    s->flags = TALLY_RESP_CLOSE;
    s->route = TALLY_ROUTE_UNKNOWN;
    s->ready = true;
    r->close_after = true;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7F)
            return false;
    return true;
}

/* conn_parse(): returns the bytes consumed; the rest is kept by the caller
 * (ring full) or dropped (the connection is to close). */
static size_t conn_parse(run_t *r, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && !r->close_after && r->count < RING) {
        size_t used = SIZE_MAX;
        size_t before = r->nreqs;
        tally_http_result_t res = tally_http_feed(&r->http, data + off, len - off, &used);
        CHECK(used <= len - off);
        off += used;
        if (res == TALLY_HTTP_OK) {
            CHECK(used == len - (off - used));
            continue;
        }
        if (res == TALLY_HTTP_PAUSED) {
            /* a pause is asked by the callback, so it follows a request */
            CHECK(r->nreqs > before);
            continue;
        }
        if (res == TALLY_HTTP_UPGRADE) {
            if (r->count > 0)
                r->slots[(r->head + r->count - 1) % RING].flags |= TALLY_RESP_CLOSE;
            r->close_after = true;
            r->upgraded = true;
        } else {
            CHECK(res == TALLY_HTTP_ERROR);
            uint16_t st = r->http.error_status;
            CHECK(st == 400 || st == 413 || st == 431 || st == 505);
            CHECK(r->http.error_detail != NULL && r->http.error_detail[0] != '\0');
            CHECK(printable(r->http.error_detail));
            r->errored = true;
            r->error_status = st;
            r->error_09 = r->http.parser.http_major == 0 && r->http.parser.http_minor == 9;
            r->error_hpe = (uint8_t)llhttp_get_errno(&r->http.parser);
            push_error(r, st, r->http.error_detail);
        }
        return len;
    }
    if (r->close_after && off < len)
        return len;
    return off;
}

/* The batch of one loop iteration settles, in arrival order. */
static void settle(run_t *r)
{
    for (unsigned i = 0; i < r->count; i++) {
        slot_t *s = &r->slots[(r->head + i) % RING];
        if (s->ready)
            continue;
        s->ready = true;
        r->claims++;
        if (r->set->flaky && r->claims % 3 == 0) {
            s->status = 503;
        } else if (r->counter < r->set->cap) {
            s->status = 200;
            s->number = ++r->counter;
        } else {
            s->status = 200;
            s->number = 0; /* capped: "Go away!" */
        }
    }
}

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

static bool header_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncmp(line, name, name_len) == 0;
}

static uint64_t digits_value(const char *p, const char *end, bool *ok)
{
    uint64_t v = 0;
    *ok = p < end && end - p <= 19;
    for (; *ok && p < end; p++) {
        if (*p < '0' || *p > '9')
            *ok = false;
        else
            v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

/* One serialised answer, p[0..n), for slot s. */
static void check_answer(run_t *r, const slot_t *s, unsigned flags, const char *p, size_t n)
{
    const char *end = p + n;
    CHECK(n > 17 && memcmp(p, "HTTP/1.1 ", 9) == 0 && p[12] == ' ');
    bool ok;
    uint64_t status = digits_value(p + 9, p + 12, &ok);
    CHECK(ok && (int)status == s->status);
    const char *eol = find_crlf(p, end);
    CHECK(eol != NULL);
    const char *reason = tally_http_reason(s->status);
    CHECK(strcmp(reason, "Unknown") != 0);
    CHECK((size_t)(eol - (p + 13)) == strlen(reason) &&
          memcmp(p + 13, reason, strlen(reason)) == 0);

    int n_len = 0, n_close = 0, n_keep = 0, n_date = 0, n_allow = 0, n_retry = 0;
    uint64_t clen = 0;
    const char *q = eol + 2;
    for (;;) {
        eol = find_crlf(q, end);
        CHECK(eol != NULL);
        if (eol == q)
            break; /* the blank line */
        const char *colon = memchr(q, ':', (size_t)(eol - q));
        CHECK(colon != NULL && colon > q && colon + 1 < eol && colon[1] == ' ');
        for (const char *c = q; c < eol; c++)
            CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7F);
        size_t name_len = (size_t)(colon - q);
        for (const char *c = q; c < colon; c++)
            CHECK(*c != ' ' && *c != '\t');
        const char *val = colon + 2;
        size_t val_len = (size_t)(eol - val);
        if (header_is(q, name_len, "Content-Length")) {
            n_len++;
            clen = digits_value(val, eol, &ok);
            CHECK(ok);
        } else if (header_is(q, name_len, "Connection")) {
            if (val_len == 5 && memcmp(val, "close", 5) == 0)
                n_close++;
            else if (val_len == 10 && memcmp(val, "keep-alive", 10) == 0)
                n_keep++;
            else
                CHECK(!"Connection header with another value");
        } else if (header_is(q, name_len, "Date")) {
            n_date++;
            CHECK(val_len == TALLY_HTTP_DATE_LEN);
        } else if (header_is(q, name_len, "Allow")) {
            n_allow++;
        } else if (header_is(q, name_len, "Retry-After")) {
            n_retry++;
        }
        q = eol + 2;
    }
    const char *body = eol + 2;
    size_t body_len = (size_t)(end - body);
    CHECK(n_len == 1 && n_date == 1);
    if (flags & TALLY_RESP_HEAD)
        CHECK(body_len == 0);
    else
        CHECK(body_len == clen);
    bool closing = (flags & TALLY_RESP_CLOSE) != 0;
    CHECK(n_close == (closing ? 1 : 0));
    CHECK(n_keep == (!closing && (flags & TALLY_RESP_KEEPALIVE) ? 1 : 0));
    CHECK(n_allow == (s->status == 405 ? 1 : 0));
    CHECK(n_retry == (s->status == 503 ? 1 : 0));

    if (s->kind == SLOT_ROOT && s->status == 200) {
        CHECK(clen == r->resp.root_len);
        if (body_len) {
            static const char hello[] = "{\"hello\":\"world\",\"request_num\":";
            static const char away[] = "{\"Go\":\"away!\",\"request_num\":";
            const char *lit = s->number > 0 ? hello : away;
            size_t lit_len = strlen(lit);
            CHECK(body_len > lit_len && memcmp(body, lit, lit_len) == 0);
            const char *d = body + lit_len, *de = d;
            while (de < end && *de >= '0' && *de <= '9')
                de++;
            uint64_t num = digits_value(d, de, &ok);
            CHECK(ok && (int64_t)num == (s->number > 0 ? s->number : r->set->cap));
            while (de < end - 1 && *de == ' ')
                de++;
            CHECK(de == end - 1 && *de == '}');
        }
    } else if (s->status >= 400 && body_len) {
        CHECK(body_len >= 12 && memcmp(body, "{\"error\":\"", 10) == 0 &&
              memcmp(end - 2, "\"}", 2) == 0);
        for (const char *c = body; c < end; c++)
            CHECK((unsigned char)*c >= 0x20);
    }
}

static void serialize(run_t *r, const slot_t *s, unsigned flags)
{
    const tally_resp_ctx_t *ctx = &r->resp;
    tally_buf_t *out = &r->out;
    switch (s->kind) {
    case SLOT_ROOT:
        if (s->status == 503)
            tally_response_error(out, ctx, 503, "counter backend unavailable", TALLY_ROUTE_ROOT,
                                 flags);
        else
            tally_response_root(out, ctx, s->number, flags);
        break;
    case SLOT_HEALTHZ:
        tally_response_write(out, ctx, 200, NULL, NULL, "{\"status\":\"ok\"}", 15, flags);
        break;
    case SLOT_READYZ:
        if (s->status == 200)
            tally_response_write(out, ctx, 200, NULL, NULL, "{\"status\":\"ready\"}", 18, flags);
        else
            tally_response_error(out, ctx, 503, "counter backend not connected", TALLY_ROUTE_READYZ,
                                 flags);
        break;
    case SLOT_METRICS:
        tally_response_write(out, ctx, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                             "# fuzz\n", 7, flags);
        break;
    case SLOT_RESET:
        if (s->status == 200)
            tally_response_write(out, ctx, 200, NULL, NULL, "{\"reset\":true}", 14, flags);
        else
            tally_response_error(out, ctx, s->status,
                                 s->status == 404 ? "not found" : "unauthorized", TALLY_ROUTE_RESET,
                                 flags);
        break;
    default:
        tally_response_error(out, ctx, s->status, s->detail ? s->detail : "error", s->route, flags);
        break;
    }
}

/* flush_ready(): the ready answers at the head of the ring, in order. */
static void flush_ready(run_t *r)
{
    r->out.len = 0;
    while (r->count > 0 && r->slots[r->head].ready) {
        const slot_t *s = &r->slots[r->head];
        size_t start = r->out.len;
        /* conn.c's serialize(): the last answer of a connection that is
         * to close says so, whatever asked for the close. */
        unsigned flags = s->flags;
        if (r->close_after && r->count == 1)
            flags |= TALLY_RESP_CLOSE;
        CHECK(!r->said_close); /* nothing after the answer that said close */
        r->said_close = (flags & TALLY_RESP_CLOSE) != 0;
        serialize(r, s, flags);
        CHECK(!r->out.oom);
        check_answer(r, s, flags, r->out.data + start, r->out.len - start);
        if (debug)
            fprintf(stderr, "  answer %zu: %.*s%s\n", r->answered,
                    (int)(strstr(r->out.data + start, "\r\n") - (r->out.data + start)),
                    r->out.data + start, flags & TALLY_RESP_CLOSE ? " (close)" : "");
        if (s->req != SIZE_MAX) {
            CHECK(s->req == r->next_req);
            r->next_req++;
        } else {
            CHECK(r->count == 1); /* a parser error is the last answer */
        }
        if (s->kind == SLOT_ROOT && s->number > 0) {
            CHECK(s->number > r->last_num);
            r->last_num = s->number;
        }
        r->answered++;
        r->head = (r->head + 1) % RING;
        r->count--;
    }
}

/* tally_conn_pump() after a loop iteration: claims settle, answers leave,
 * the kept rest of the input is parsed as room frees up. */
static void pump(run_t *r)
{
    for (;;) {
        settle(r);
        flush_ready(r);
        CHECK(r->count == 0); /* every claim settles within the iteration */
        if (r->saved && !r->close_after) {
            size_t left = r->saved_len - r->saved_off;
            size_t before = r->nreqs;
            size_t used = conn_parse(r, r->saved + r->saved_off, left);
            CHECK(used <= left);
            CHECK(used > 0 || r->nreqs > before || r->close_after);
            r->saved_off += used;
            if (r->saved_off == r->saved_len || r->close_after) {
                free(r->saved);
                r->saved = NULL;
            }
            continue;
        }
        break;
    }
    if (r->close_after) {
        free(r->saved);
        r->saved = NULL;
    }
}

/* on_read() with the piece in the shared read buffer. */
static void on_read(run_t *r, const uint8_t *piece, size_t n)
{
    ASAN_UNPOISON_MEMORY_REGION(feedbuf, sizeof feedbuf);
    memcpy(feedbuf, piece, n);
    ASAN_POISON_MEMORY_REGION(feedbuf + n, sizeof feedbuf - n);
    size_t used = conn_parse(r, feedbuf, n);
    CHECK(used <= n);
    if (used < n) {
        CHECK(r->saved == NULL && r->count == RING);
        r->saved_len = n - used;
        r->saved_off = 0;
        r->saved = malloc(r->saved_len);
        CHECK(r->saved != NULL);
        memcpy(r->saved, feedbuf + used, r->saved_len);
    }
    ASAN_UNPOISON_MEMORY_REGION(feedbuf, sizeof feedbuf);
    pump(r);
}

static void run_init(run_t *r, const settings_t *set)
{
    memset(r, 0, offsetof(run_t, reqs));
    r->nreqs = 0;
    r->answered = 0;
    r->next_req = 0;
    r->counter = 0;
    r->claims = 0;
    r->last_num = 0;
    r->set = set;
    tally_http_config_init(&r->hc, set->max_header, set->max_body, set->token ? TOKEN : NULL,
                           on_request);
    CHECK(!set->token || r->hc.auth_expect != NULL);
    tally_http_init(&r->http, &r->hc, r);
    tally_http_date(r->resp.date, 1795377600);
    r->resp.cap = set->cap;
    r->resp.root_len = tally_response_root_len(set->cap);
    r->out = (tally_buf_t)TALLY_BUF_INIT;
}

static void run_free(run_t *r)
{
    if (r->errored) {
        /* The error sticks until tally_http_init(): a valid request now
         * must not reach the callback (on_request checks !errored). */
        static const char again[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        size_t used = SIZE_MAX;
        tally_http_result_t res = tally_http_feed(&r->http, again, sizeof again - 1, &used);
        CHECK(res == TALLY_HTTP_ERROR && used <= sizeof again - 1);
    }
    free(r->saved);
    tally_buf_free(&r->out);
    tally_http_config_free(&r->hc);
}

/* Serves stream[0..len) in pieces of the given sizes (cycled), or in one
 * piece when there are none. */
static void serve(run_t *r, const uint8_t *stream, size_t len, const uint8_t *sizes, size_t nsizes)
{
    size_t off = 0, k = 0;
    while (off < len && !r->close_after) {
        size_t piece = nsizes ? (size_t)sizes[k++ % nsizes] + 1 : len - off;
        if (piece > len - off)
            piece = len - off;
        if (piece > FEED_MAX)
            piece = FEED_MAX;
        on_read(r, stream + off, piece);
        off += piece;
    }
}

static void transcript_mismatch(const run_t *a, const run_t *b, const char *what)
{
    fprintf(stderr,
            "fuzz_http: the split changed the outcome (%s): whole: %zu requests, error %u%s "
            "(%s), upgrade %d, %zu answers; split: %zu requests, error %u%s (%s), upgrade %d, "
            "%zu answers\n",
            what, a->nreqs, a->error_status, a->error_09 ? " after HTTP/0.9" : "",
            llhttp_errno_name((llhttp_errno_t)a->error_hpe), a->upgraded, a->answered, b->nreqs,
            b->error_status, b->error_09 ? " after HTTP/0.9" : "",
            llhttp_errno_name((llhttp_errno_t)b->error_hpe), b->upgraded, b->answered);
    abort();
}

static run_t whole_run, split_run;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *d = getenv("FUZZ_HTTP_DEBUG");
    debug = d != NULL && strcmp(d, "1") == 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    settings_t set = settings_from(data[0]);
    size_t nsizes = data[1] & 15;
    if (size < 2 + nsizes)
        return 0;
    const uint8_t *sizes = data + 2;
    const uint8_t *stream = data + 2 + nsizes;
    size_t len = size - 2 - nsizes;
    if (len > FEED_MAX)
        return 0;

    run_t *a = &whole_run;
    run_init(a, &set);
    if (debug)
        fprintf(stderr, "whole:\n");
    serve(a, stream, len, NULL, 0);

    if (nsizes > 0) {
        run_t *b = &split_run;
        run_init(b, &set);
        if (debug)
            fprintf(stderr, "split in %zu sizes:\n", nsizes);
        serve(b, stream, len, sizes, nsizes);
        if (a->nreqs != b->nreqs)
            transcript_mismatch(a, b, "request count");
        size_t n = a->nreqs < MAX_REQS ? a->nreqs : MAX_REQS;
        for (size_t i = 0; i < n; i++) {
            const rec_t *x = &a->reqs[i], *y = &b->reqs[i];
            if (x->method != y->method || x->minor != y->minor || x->route != y->route ||
                x->keep_alive != y->keep_alive || x->auth_ok != y->auth_ok)
                transcript_mismatch(a, b, "a request");
        }
        if (a->errored != b->errored)
            transcript_mismatch(a, b, "the error");
        /* llhttp reports a span (URL, header name or value) when it ends or
         * when the input does, and the size limit is checked as spans are
         * reported. Whether --max-header-size (431) or a syntax error a few
         * bytes on is met first then depends on where the reads end: either
         * way round, both refuse and close. Any other difference is a bug. */
        bool limit_race = a->error_status == 431 || b->error_status == 431;
        if (a->error_status != b->error_status && !limit_race)
            transcript_mismatch(a, b, "the error status");
        if (a->upgraded != b->upgraded || a->answered != b->answered)
            transcript_mismatch(a, b, "the answers");
        run_free(b);
    }
    run_free(a);
    return 0;
}

/* fuzz_http.c - libFuzzer target for the request path, bytes in, answers
 * out: the real connection core (src/http/pipeline.c, with the parser) wired
 * to the real routes and application (src/app/routes.c, app.c) and the real
 * memory counter, driven the way src/server/conn.c drives it: each read is
 * handed to tally_pipe_input(), then the loop turn sends the claims
 * (tally_app_worker_hooks.turn), the ready answers are taken, and kept input
 * is resumed while answers free the ring. Nothing of src/ is copied here:
 * the hooks are wrapped only to watch what passes through them.
 *
 * Input:  byte 0      settings: max header size, max body size, admin token,
 *                     a flaky backend, CAP (see settings_from())
 *         byte 1      n = byte & 15: how many split sizes follow
 *         n bytes     piece sizes, each 1..256, used in turn (n = 0: the
 *                     whole stream is one read)
 *         the rest    the bytes a client sends on one connection
 *
 * Every piece is copied into one static buffer, as a worker reads every
 * connection into one buffer, with the unused tail poisoned for ASan so a
 * read past the piece is caught. A flaky backend is the memory counter
 * behind a wrapper that fails every third batch, with the backend marked
 * down (/readyz 503).
 *
 * The stream is served twice: once as one read, once in the chosen pieces.
 * Invariants (abort on violation):
 *   - no request is started once the parser reported an error, and the
 *     error sticks (a valid request fed afterwards is not started);
 *   - the pipe's own errors are only 400, 413, 431 or 505, with a printable
 *     detail, and are the last answer;
 *   - every answer is well formed: status line with the right reason and
 *     the status the route must give, CRLF-terminated header lines, exactly
 *     one Content-Length equal to the body length (0 bytes of body for
 *     HEAD), Connection as flagged, Allow exactly on 405, Retry-After exactly
 *     on 503, every GET / body the same padded length; nothing after an
 *     answer that says Connection: close, and the last answer of a closing
 *     pipe says it;
 *   - answers leave in request order (GET / numbers strictly increase), and
 *     every claim settles within the loop turn (memory answers at once);
 *   - kept input never exceeds what was fed, and is gone once the pipe
 *     closes;
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

#include "answer_check.h"
#include "app/app.h"
#include "app/routes.h"
#include "http/pipeline.h"

#define FEED_MAX (64 * 1024)
#define MAX_REQS 4096

/* Route ids of src/app/routes.c's table, by hand (the oracle). */
enum { R_NONE, R_ROOT, R_HEALTHZ, R_READYZ, R_METRICS, R_RESET };

typedef struct settings {
    size_t max_header;
    uint64_t max_body;
    bool token; /* an admin token is configured */
    bool flaky; /* every third batch fails, the backend is down */
    int64_t cap;
} settings_t;

typedef struct rec {
    uint8_t method, minor, route;
    bool keep_alive, auth_ok;
} rec_t;

/* A memory counter whose every third batch fails (UNAVAILABLE). */
typedef struct flaky {
    tally_counter_t base;
    tally_counter_t *inner;
    unsigned batches;
} flaky_t;

typedef struct run {
    const settings_t *set;
    uv_loop_t loop;
    tally_memory_shared_t memory;
    tally_server_t server;
    tally_app_shared_t shared;
    tally_app_t app;
    flaky_t flaky;
    tally_pipe_env_t env;
    tally_pipe_t pipe;
    tally_buf_t out;
    bool errored, upgraded;
    bool said_close;   /* an answer carried Connection: close */
    bool error_09;     /* the parser had read an HTTP/0.9 request line */
    uint8_t error_hpe; /* llhttp's error code */
    uint16_t error_status;
    size_t fed;
    rec_t reqs[MAX_REQS];
    size_t nreqs;     /* requests started (recorded up to MAX_REQS) */
    size_t answered;  /* answers written, in order */
    int64_t last_num; /* last number answered, for the order check */
    unsigned wakes;
    bool dirty; /* the connection has something to write */
} run_t;

static char feedbuf[FEED_MAX];
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

/* ---- the flaky counter: a test double around the real memory counter ---- */

static void flaky_claim(tally_counter_t *c, uint32_t k, tally_counter_claim_cb cb, void *arg)
{
    flaky_t *f = (flaky_t *)c;
    if (++f->batches % 3 == 0)
        cb(arg, TALLY_CLAIM_UNAVAILABLE, 0, 0);
    else
        f->inner->ops->claim(f->inner, k, cb, arg);
}

static void flaky_reset(tally_counter_t *c, tally_counter_reset_cb cb, void *arg)
{
    flaky_t *f = (flaky_t *)c;
    f->inner->ops->reset(f->inner, cb, arg);
}

static bool flaky_ready(tally_counter_t *c)
{
    (void)c;
    return false;
}

static void inner_closed(tally_counter_t *c)
{
    (void)c;
}

static void flaky_close(tally_counter_t *c, tally_counter_closed_cb closed)
{
    flaky_t *f = (flaky_t *)c;
    f->inner->ops->close(f->inner, inner_closed);
    closed(c);
}

static const tally_counter_ops_t flaky_ops = {
    .name = "flaky",
    .claim = flaky_claim,
    .reset = flaky_reset,
    .ready = flaky_ready,
    .close = flaky_close,
};

/* ---- the hooks, watched ---- */

static run_t *current;

static uint64_t fake_clock_us(void)
{
    static uint64_t t = 1000;
    return t += 7;
}

static void on_wake(tally_pipe_t *p)
{
    CHECK(p == &current->pipe);
    current->wakes++;
    current->dirty = true;
}

static void watch_start(void *app, tally_slot_t *s, const tally_http_request_t *req)
{
    run_t *r = current;
    CHECK(app == &r->app);
    CHECK(!r->errored);
    CHECK(r->pipe.http.error_status == 0);
    CHECK(!r->pipe.http.in_message);
    CHECK(req->route <= tally_routes_count());
    CHECK(req->minor <= 1);
    CHECK(!req->auth_ok || (r->set->token && req->route == R_RESET));
    if (r->nreqs < MAX_REQS) {
        rec_t *rec = &r->reqs[r->nreqs];
        rec->method = req->method;
        rec->minor = req->minor;
        rec->route = req->route;
        rec->keep_alive = req->keep_alive;
        rec->auth_ok = req->auth_ok;
    }
    r->nreqs++;
    tally_routes_hooks.start(app, s, req);
    /* A reset runs as it starts (memory answers at once): the claims sent
     * from now on count from 1 again. */
    if (s->route == R_RESET && !s->error) {
        CHECK(s->ready && s->status == 200);
        r->last_num = 0;
    }
}

/* The status route must answer with, by the oracle of DESIGN's routes. */
static int expected_status(const run_t *r, const tally_slot_t *s)
{
    if (s->error)
        return s->status;
    switch (s->route) {
    case R_ROOT:
    case R_RESET:
        return s->status ? s->status : 200;
    case R_READYZ:
        return r->set->flaky ? 503 : 200;
    default:
        return 200;
    }
}

static void watch_write(void *app, const tally_slot_t *s, const tally_answer_t *a, tally_buf_t *out)
{
    run_t *r = current;
    size_t start = out->len;
    CHECK(s->ready);
    CHECK(!r->said_close); /* nothing after the answer that said close */
    r->said_close = (a->flags & TALLY_RESP_CLOSE) != 0;
    if (s->route == R_NONE && s->error && s->status != 404) {
        /* the pipe's own: a parser error, the last answer */
        CHECK(s->status == 400 || s->status == 413 || s->status == 431 || s->status == 505);
        CHECK(s->detail != NULL && s->detail[0] != '\0' && answer_printable(s->detail));
        CHECK(r->pipe.count == 1);
        CHECK(a->flags & TALLY_RESP_CLOSE);
    }
    if (r->pipe.close_after && r->pipe.count == 1)
        CHECK(a->flags & TALLY_RESP_CLOSE);
    tally_routes_hooks.write(app, s, a, out);
    CHECK(!out->oom);
    answer_expect_t e = {
        .status = expected_status(r, s),
        .flags = a->flags,
        .root = s->route == R_ROOT && !s->error && s->status == 200,
        .root_len = r->app.root_len,
        .number = s->value,
        .cap = r->set->cap,
    };
    answer_check(&e, out->data + start, out->len - start);
    if (debug)
        fprintf(stderr, "  answer %zu: %.*s%s\n", r->answered,
                (int)(strstr(out->data + start, "\r\n") - (out->data + start)), out->data + start,
                a->flags & TALLY_RESP_CLOSE ? " (close)" : "");
    if (e.root && s->value > 0) {
        CHECK(s->value > r->last_num);
        r->last_num = s->value;
    }
    r->answered++;
}

static const tally_pipe_hooks_t watched = {
    .classify = tally_route_classify,
    .start = watch_start,
    .write = watch_write,
};

/* ---- one connection ---- */

static void note_error(run_t *r)
{
    tally_http_t *h = &r->pipe.http;
    llhttp_errno_t e = llhttp_get_errno(&h->parser);
    if (!r->upgraded && e == HPE_PAUSED_UPGRADE)
        r->upgraded = true;
    if (!r->errored && h->error_status != 0) {
        r->errored = true;
        r->error_status = h->error_status;
        r->error_09 = h->parser.http_major == 0 && h->parser.http_minor == 9;
        r->error_hpe = (uint8_t)e;
    }
}

/* One loop iteration of a connection: the read, then what conn.c's pump
 * does with the pipe. */
static void serve_read(run_t *r, const uint8_t *piece, size_t n)
{
    ASAN_UNPOISON_MEMORY_REGION(feedbuf, sizeof feedbuf);
    memcpy(feedbuf, piece, n);
    ASAN_POISON_MEMORY_REGION(feedbuf + n, sizeof feedbuf - n);
    bool kept = r->pipe.saved != NULL;
    CHECK(!kept); /* conn.c stops reading while input is kept */
    CHECK(tally_pipe_input(&r->pipe, feedbuf, n) == 0);
    ASAN_UNPOISON_MEMORY_REGION(feedbuf, sizeof feedbuf);
    /* input is kept only when the ring is full (what follows a closing
     * answer is dropped) */
    CHECK(r->pipe.saved == NULL || r->pipe.count == TALLY_PIPE_SLOTS);
    CHECK(r->pipe.saved == NULL || r->pipe.saved_len <= n);
    r->fed += n;
    note_error(r);
    /* The worker's check callback: the turn sends the claims, settled
     * answers wake the connection, which writes and resumes. */
    r->dirty = true;
    for (;;) {
        CHECK(r->pipe.saved == NULL || r->pipe.saved_off <= r->pipe.saved_len);
        tally_app_worker_hooks.turn(&r->app);
        if (!r->dirty)
            break;
        r->dirty = false;
        do {
            r->out.len = 0;
            tally_pipe_take(&r->pipe, &r->out);
        } while (tally_pipe_resume(&r->pipe));
        note_error(r);
    }
    tally_pipe_env_turn(&r->env);
    CHECK(r->pipe.pending == 0); /* every claim settles within the iteration */
    note_error(r);
    CHECK(r->pipe.count == 0);
    CHECK(!r->pipe.close_after || r->pipe.saved == NULL);
}

static void run_init(run_t *r, const settings_t *set)
{
    memset(r, 0, offsetof(run_t, reqs));
    r->nreqs = 0;
    r->answered = 0;
    r->last_num = 0;
    r->wakes = 0;
    r->set = set;
    current = r;
    CHECK(uv_loop_init(&r->loop) == 0);
    atomic_init(&r->memory.value, 0);
    r->shared = (tally_app_shared_t){.cap = set->cap,
                                     .admin = set->token,
                                     .backend = "memory",
                                     .napps = 1,
                                     .apps = &r->app,
                                     .server = &r->server};
    tally_counter_params_t cp = {.cap = set->cap, .worker_id = 1, .shared = &r->memory};
    char why[128];
    CHECK(tally_app_init(&r->app, &r->shared, 1, &r->loop, "memory", &cp, why, sizeof why) == 0);
    if (set->flaky) {
        /* the real counter, behind the double */
        r->flaky.base = *r->app.counter;
        r->flaky.base.ops = &flaky_ops;
        r->flaky.inner = r->app.counter;
        r->flaky.inner->up = NULL;
        r->app.counter = &r->flaky.base;
        atomic_store(&r->app.backend_up, false);
    }
    CHECK(tally_pipe_env_init(&r->env, set->max_header, set->max_body, set->token ? TOKEN : NULL,
                              &watched, &r->app) == 0);
    CHECK(!set->token || r->env.http.auth_expect != NULL);
    r->env.clock_us = fake_clock_us;
    r->env.wake = on_wake;
    tally_http_date(r->env.resp.date, 1795377600);
    tally_pipe_init(&r->pipe, &r->env, r);
    r->out = (tally_buf_t)TALLY_BUF_INIT;
}

static void run_free(run_t *r)
{
    current = r;
    if (r->errored) {
        /* The error sticks until tally_http_init(): a valid request now must
         * not be started (watch_start checks !errored). */
        static const char again[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        size_t used = SIZE_MAX;
        tally_http_result_t res = tally_http_feed(&r->pipe.http, again, sizeof again - 1, &used);
        CHECK(res == TALLY_HTTP_ERROR && used <= sizeof again - 1);
    }
    tally_pipe_drop_input(&r->pipe);
    tally_app_worker_hooks.stop(&r->app);
    CHECK(uv_run(&r->loop, UV_RUN_DEFAULT) == 0);
    CHECK(uv_loop_close(&r->loop) == 0);
    tally_app_free(&r->app);
    tally_pipe_env_free(&r->env);
    tally_buf_free(&r->out);
}

/* Serves stream[0..len) in pieces of the given sizes (cycled), or in one
 * piece when there are none. */
static void serve(run_t *r, const uint8_t *stream, size_t len, const uint8_t *sizes, size_t nsizes)
{
    size_t off = 0, k = 0;
    while (off < len && !r->pipe.close_after) {
        size_t piece = nsizes ? (size_t)sizes[k++ % nsizes] + 1 : len - off;
        if (piece > len - off)
            piece = len - off;
        if (piece > FEED_MAX)
            piece = FEED_MAX;
        serve_read(r, stream + off, piece);
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
    run_free(a);

    if (nsizes > 0) {
        run_t *b = &split_run;
        run_init(b, &set);
        if (debug)
            fprintf(stderr, "split in %zu sizes:\n", nsizes);
        serve(b, stream, len, sizes, nsizes);
        run_free(b);
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
    }
    return 0;
}

/* pipe_fixture.h - the loopback harness of the sans-IO connection core
 * (src/http/pipeline.c), shared by test_pipeline.c (the pipe's mechanics)
 * and test_pipeline_answers.c (what each route and error answers): the
 * real pipe, route table (app/routes.h), application (app/app.h) and
 * memory counter, pumped as server/worker.c and server/conn.c do (turn
 * hook, take, resume while it says so; env->wake marks the connection
 * dirty), and a strict HTTP/1.1 reader for what comes out.
 *
 * Contract: setup()/teardown() are cmocka fixtures whose prestate is a
 * const cfg_t *; the state they pass on is the fx_t *, also in `cur`. The
 * readers fail the running test (cmocka) on any malformed answer.
 */
#ifndef TALLY_TEST_PIPE_FIXTURE_H
#define TALLY_TEST_PIPE_FIXTURE_H

#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "app/app.h"
#include "app/routes.h"
#include "base/log.h"
#include "http/pipeline.h"

typedef struct cfg {
    int64_t cap;
    const char *token;
    size_t max_header;
} cfg_t;

/* The configurations the tests run under: the default, CAP 2, an admin
 * token, a 256-byte header limit. */
extern const cfg_t DEF, CAP2, TOKEN, SMALL;

typedef struct fx {
    const cfg_t *cfg;
    uv_loop_t loop;
    tally_memory_shared_t memory;
    tally_server_t server;
    tally_app_shared_t shared;
    tally_app_t app;
    tally_pipe_env_t env;
    tally_pipe_t pipe;
    tally_buf_t out;
    uint64_t now_us;
    unsigned wakes;
    bool dirty; /* the connection would be pumped (conn.c's mark_dirty) */
} fx_t;

extern fx_t *cur;               /* the running test's fixture */
extern char readbuf[64 * 1024]; /* like a worker's: every read lands here */
#define REQ(line, hdrs) line " HTTP/1.1\r\nHost: t\r\n" hdrs "\r\n"
#define GET             REQ("GET /", "")
#define GET_LEN         (sizeof GET - 1)
#define N(a)            (sizeof(a) / sizeof((a)[0]))

int setup(void **state);
int teardown(void **state);
/* A new connection (the previous one fully answered), the counter at 0. */
void reopen(fx_t *f);
/* One read: the bytes go through the shared read buffer, which is scribbled
 * over afterwards (the pipe must have copied what it keeps). */
void feed(fx_t *f, const char *data, size_t len);
/* worker.c's on_check around conn.c's pump; returns all output so far. */
const char *pump(fx_t *f);
/* Serves s in reads of `piece` bytes (0: one read), pumping after each;
 * returns what was answered, NUL-terminated. */
const char *serve(fx_t *f, const char *s, size_t piece);
/* pre, then n times s (a format given the 1-based index), then post, into
 * a static buffer. */
const char *rep(const char *pre, const char *s, int n, const char *post);

/* ---- a strict HTTP/1.1 response reader ---- */

typedef struct answer {
    int status;
    const char *head, *body; /* head: status line and header lines, each with its CRLF */
    size_t head_len, body_len;
} answer_t;

extern answer_t ans[64]; /* what the last check() read */

/* Header name's value in a (NULL: none), which must appear at most once;
 * the value is in a static buffer. */
const char *hdr(const answer_t *a, const char *name);
void hdr_is(const answer_t *a, const char *name, const char *want);
/* Reads every answer of out into ans[] and checks it against spec, a word
 * per answer: the status, then "#n" (GET /'s number n, -cap when capped),
 * "c" or "k" (Connection: close or keep-alive, else none), "H" (to a HEAD:
 * no body). Returns how many. */
unsigned check(const char *out, const char *spec);
void body_is(const answer_t *a, const char *body);
/* The pipe's state: slots in use, deferred, input kept, closing, unread. */
void pipe_is(fx_t *f, int count, int pending, bool saved, bool closing, bool unread);

/* A request (or several), the answers' spec (check()), and the last
 * answer's body and header `name` (NULL: not checked). */
typedef struct row {
    const char *req, *spec, *body, *name, *value;
} row_t;

/* Serves each row (fresh: on a new connection, the counter at 0). A row
 * whose last answer closes sends more after it: left unread, and nothing
 * more is answered nor claimed. */
void run(fx_t *f, const row_t *rows, size_t n, bool fresh);

#define T(f, cfg) cmocka_unit_test_prestate_setup_teardown(f, setup, teardown, (void *)&cfg)

#endif

/* pipeline.h - the part of a connection that is not I/O: bytes in, answers
 * out, in request order.
 *
 * A pipe parses what the connection read, gives each complete request a
 * slot of a small ring, and asks the application (tally_pipe_hooks_t) to
 * start it; the application answers at once or later (a claim that waits
 * for the backend: tally_pipe_defer(), then tally_pipe_settle()). Answers
 * leave in ring order, so pipelined requests are answered in order even
 * when a later one is ready first. When the ring is full the parser pauses
 * and the unparsed rest of the input is kept aside (one malloc'ed copy)
 * until slots free up: memory per connection stays bounded. Errors the
 * parser finds (400, 413, 431, 505) and the connection's own (408) become
 * the last answer, and the pipe is then closing (close_after).
 *
 * Knows no socket, no loop, no route and no counter: server/conn.c embeds
 * one per connection and does the reading and writing; the fuzzer
 * (tests/fuzz/fuzz_http.c) and tests/unit/test_pipeline.c drive the same
 * code with bytes. Everything happens on the thread of the connection.
 */
#ifndef TALLY_PIPELINE_H
#define TALLY_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/wait.h"
#include "http/parser.h"
#include "http/response.h"

#define TALLY_PIPE_SLOTS 16

typedef struct tally_pipe tally_pipe_t;

/* One request's answer. The pipe fills route, flags and t0_us before
 * start(); the application fills status, value and detail. */
typedef struct tally_slot {
    tally_wait_t wait;  /* for the application to lend out while it waits */
    tally_pipe_t *pipe; /* read-only */
    const char *detail; /* error text (static), when error */
    uint64_t t0_us;     /* when the request was parsed (clock_us()) */
    int64_t value;      /* the application's (GET /: the number) */
    uint16_t status;    /* 0 means 200 */
    uint8_t flags;      /* TALLY_RESP_*, as the request asked */
    uint8_t route;      /* tally_http_request_t.route; 0 for the pipe's own errors */
    bool ready;
    bool error; /* answer {"error": detail} with status (tally_slot_fail) */
} tally_slot_t;

/* How an answer leaves: the flags it must carry (the last answer of a
 * closing connection says Connection: close, whatever asked for it), and
 * the time since its request was parsed. */
typedef struct tally_answer {
    unsigned flags;
    uint64_t latency_us;
    const tally_resp_ctx_t *resp;
} tally_answer_t;

/* What the application hands the connections (h2o's handler, lwan's url
 * map): called on the connection's thread, with the app pointer of the
 * tally_pipe_env_t. */
typedef struct tally_pipe_hooks {
    /* The parser's classify() (parser.h). */
    tally_http_classify_cb classify;
    /* A request has been parsed into s: answer it now (leave s ready, or
     * tally_slot_fail() it) or later (tally_pipe_defer(), then
     * tally_pipe_settle()). */
    void (*start)(void *app, tally_slot_t *s, const tally_http_request_t *req);
    /* Appends the whole answer (head and body) of ready slot s to out,
     * errors included (s->error, or the pipe's own with route 0). */
    void (*write)(void *app, const tally_slot_t *s, const tally_answer_t *a, tally_buf_t *out);
} tally_pipe_hooks_t;

/* What every pipe of one thread shares. */
typedef struct tally_pipe_env {
    tally_http_config_t http;
    const tally_pipe_hooks_t *hooks;
    void *app;
    tally_resp_ctx_t resp; /* the Date the owner refreshes */
    bool draining;         /* every answer from now on closes its connection */
    uint64_t (*clock_us)(void);
    /* Clock stamps shared by the answers of one loop iteration, read at
     * most once per iteration each (0: not read yet); the owner clears both
     * at the end of an iteration (tally_pipe_env_turn()). */
    uint64_t read_us;
    uint64_t flush_us;
    /* A deferred slot of pipe p has settled (p->owner's business: write it,
     * or free a connection that closed meanwhile once p->pending is 0). */
    void (*wake)(tally_pipe_t *p);
} tally_pipe_env_t;

struct tally_pipe {
    tally_http_t http;
    tally_pipe_env_t *env;
    void *owner;
    char *saved; /* unparsed input kept while the ring is full */
    uint32_t saved_len, saved_off;
    uint16_t pending; /* deferred slots not settled yet */
    uint8_t head, count;
    bool close_after; /* answer what is queued, then close */
    bool unread;      /* input was left unread: the owner should close with a linger */
    tally_slot_t slots[TALLY_PIPE_SLOTS];
};

/* Sets up env's parser configuration; the rest of env is the caller's to
 * fill. Returns 0 or -ENOMEM. */
int tally_pipe_env_init(tally_pipe_env_t *env, size_t max_header_size, uint64_t max_body_size,
                        const char *admin_token, const tally_pipe_hooks_t *hooks, void *app);
void tally_pipe_env_free(tally_pipe_env_t *env);

/* The end of a loop iteration: the next one reads the clock afresh. */
static inline void tally_pipe_env_turn(tally_pipe_env_t *env)
{
    env->read_us = env->flush_us = 0;
}

/* A pipe for a new connection (owner: the connection). Only the fields
 * before the slots are initialised; slots are cleared as they are used. */
void tally_pipe_init(tally_pipe_t *p, tally_pipe_env_t *env, void *owner);

/* Parses data[0..len), which the caller may reuse afterwards: what the ring
 * has no room for is copied aside and parsed by tally_pipe_resume(), what
 * follows an answer that closes is dropped (unread). Returns 0, or -ENOMEM
 * (the owner should close). */
int tally_pipe_input(tally_pipe_t *p, const char *data, size_t len);

/* Parses kept input while the ring has room; returns whether the answer at
 * the head of the ring is ready (worth another tally_pipe_take()). */
bool tally_pipe_resume(tally_pipe_t *p);

/* Appends the ready answers at the head of the ring to out, in order, and
 * frees their slots; returns how many. */
unsigned tally_pipe_take(tally_pipe_t *p, tally_buf_t *out);

/* Queues an error answer that closes the connection (408 from a timer),
 * unless the ring is full or the pipe closes anyway; returns whether it
 * did. */
bool tally_pipe_fail(tally_pipe_t *p, int status, const char *detail);

/* No more requests: answer those queued, then close. */
static inline void tally_pipe_close_after(tally_pipe_t *p)
{
    p->close_after = true;
}

/* Drops the kept input (the connection closes). */
void tally_pipe_drop_input(tally_pipe_t *p);

/* For start(): the answer of s is an error {"error": detail}. */
static inline void tally_slot_fail(tally_slot_t *s, int status, const char *detail)
{
    s->error = true;
    s->status = (uint16_t)status;
    s->detail = detail;
}

/* For start(): s will be answered later, by tally_pipe_settle(s). */
static inline void tally_pipe_defer(tally_slot_t *s)
{
    s->ready = false;
    s->pipe->pending++;
}

/* s, deferred, has its answer: wakes the owner (env->wake). */
void tally_pipe_settle(tally_slot_t *s);

#endif

/* conn.h - client connections: the socket side of an HTTP/1.x connection.
 *
 * A connection reads into its context's read buffer, hands the bytes to
 * its pipe (http/pipeline.h: parsing, one slot per request, answers in
 * request order), and writes the pipe's ready answers with one
 * uv_try_write(); only when the socket cannot take them all is the rest
 * copied into a write request of its own, and reading waits until it
 * completes. It knows no route and no counter: the application is reached
 * only through the pipe's hooks.
 *
 * Lifetime: tally_conn_accept() creates it; it frees itself (or goes back
 * to the context's cache) in its close callback, and never before every
 * deferred answer of its pipe has settled (the application holds a slot).
 * Deadlines: waiting for a request (--header-timeout, answered 408), idle
 * between requests or waiting for the client to read (--idle-timeout), a
 * lingering close (TALLY_LINGER_MS); one list each, swept by
 * tally_conn_ctx_expire().
 *
 * Everything runs on the context's loop thread.
 */
#ifndef TALLY_CONN_H
#define TALLY_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/stat.h"
#include "http/pipeline.h"

/* How long a half-closed connection may keep sending before it is closed. */
#define TALLY_LINGER_MS 2000
#define TALLY_READ_BUF  (64u << 10)

typedef struct tally_conn_limits {
    uint64_t header_timeout_ms;
    uint64_t idle_timeout_ms;
    unsigned max_connections; /* process-wide; past it a connection is closed at once */
} tally_conn_limits_t;

typedef struct tally_conn_stats {
    tally_stat_t accepted, rejected;
} tally_conn_stats_t;

typedef struct tally_conn tally_conn_t;

/* The connections of one loop (a worker embeds one). Fields are the
 * connections' own unless marked. */
typedef struct tally_conn_ctx {
    /* set by the owner before tally_conn_ctx_init() */
    uv_loop_t *loop;
    tally_conn_limits_t limits;
    _Atomic unsigned *open;                     /* open connections, process-wide */
    void (*closed)(struct tally_conn_ctx *ctx); /* after each close; may be NULL */
    void *data;
    /* set up by tally_conn_ctx_init(): the owner fills in pipe.resp.date
     * and sets pipe.draining through tally_conn_ctx_drain() */
    tally_pipe_env_t pipe;
    /* read-only for the owner */
    unsigned nconns;
    tally_conn_stats_t stats;
    /* private */
    tally_conn_t *dirty; /* connections with output to write this iteration */
    tally_list_t all;    /* every open connection */
    tally_list_t header_list, idle_list, linger_list; /* deadline order each */
    tally_conn_t *free_conns;                         /* closed ones kept for reuse */
    unsigned nfree_conns;
    tally_buf_t out; /* one connection's answers, serialised before one write */
    char readbuf[TALLY_READ_BUF];
} tally_conn_ctx_t;

/* Sets up ctx's pipe environment with the application's hooks. Returns 0
 * or -ENOMEM. */
int tally_conn_ctx_init(tally_conn_ctx_t *ctx, size_t max_header_size, uint64_t max_body_size,
                        const char *admin_token, const tally_pipe_hooks_t *hooks, void *app);

/* Frees what ctx keeps (the connection cache, buffers) once its loop has
 * ended. */
void tally_conn_ctx_free(tally_conn_ctx_t *ctx);

/* Listener callback body: accepts one connection. */
void tally_conn_accept(tally_conn_ctx_t *ctx, uv_stream_t *listener);

/* Serves fd, a socket accepted outside libuv (the listener's queue drained
 * at shutdown); closes it on failure. */
void tally_conn_adopt(tally_conn_ctx_t *ctx, int fd);

/* Whether a connection has output to write (tally_conn_ctx_pump()). */
static inline bool tally_conn_ctx_dirty(const tally_conn_ctx_t *ctx)
{
    return ctx->dirty != NULL;
}

/* Writes every connection that has output, resumes paused parsers, closes
 * what is done, and files each connection under the right deadline. The
 * owner calls it once per loop iteration, after the I/O callbacks, and
 * again while answers settling make more connections dirty. */
void tally_conn_ctx_pump(tally_conn_ctx_t *ctx);

/* Closes the connections whose deadline has passed (now: uv_now()). */
void tally_conn_ctx_expire(tally_conn_ctx_t *ctx, uint64_t now);

/* Shutting down: every answer from now on closes its connection; idle
 * connections close at the next pump, busy ones once answered. */
void tally_conn_ctx_drain(tally_conn_ctx_t *ctx);

/* Closes every connection now. */
void tally_conn_ctx_close_all(tally_conn_ctx_t *ctx);

#endif

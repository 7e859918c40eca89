/* worker.h - one thread, one uv_loop_t: a listener of its own
 * (SO_REUSEPORT), its connections, its timers, and the application it is
 * handed.
 *
 * Nothing a worker touches on the request path is shared with another
 * thread except what its application shares (the memory backend's atomic)
 * and the process-wide count of open connections (one atomic add per
 * accept). The main thread talks to a worker only through
 * tally_worker_stop() (a uv_async_t).
 *
 * The worker knows no route and no counter: it reaches the application
 * through tally_worker_hooks_t, as the connections reach it through the
 * pipe hooks (http/pipeline.h).
 */
#ifndef TALLY_WORKER_H
#define TALLY_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "http/pipeline.h"
#include "server/conn.h"

/* listen(2) backlog of each worker's listener (main listens, the worker's
 * uv_listen() adopts the socket). */
#define TALLY_LISTEN_BACKLOG 1024

/* What the application gives every worker; called on the worker's thread
 * with the app pointer given to tally_worker_init(). */
typedef struct tally_worker_hooks {
    const tally_pipe_hooks_t *pipe; /* for the connections */
    /* After the I/O callbacks of each loop iteration, and again while the
     * connections' answers make more output: send what the requests of the
     * iteration queued (claims, as one batch). */
    void (*turn)(void *app);
    /* The worker is finishing (its connections are closed): close what the
     * application holds on the loop, so that the loop can end. */
    void (*stop)(void *app);
} tally_worker_hooks_t;

/* Everything the server needs from the configuration. */
typedef struct tally_server_params {
    tally_conn_limits_t limits;
    uint64_t shutdown_timeout_ms; /* grace of a drain */
    size_t max_header_size;
    uint64_t max_body_size;
    const char *admin_token; /* NULL: none */
} tally_server_params_t;

/* State every worker reads; written by main before workers start. */
typedef struct tally_server {
    tally_server_params_t params;
    unsigned nworkers;
    struct tally_worker *workers;
    _Atomic unsigned connections; /* open client connections, process-wide */
    uv_async_t *worker_exited;    /* main's: a worker's loop has ended */
    uv_mutex_t stop_mu;           /* guards every worker's wakeup_closed */
} tally_server_t;

typedef struct tally_server_totals {
    uint64_t accepted, rejected, open;
} tally_server_totals_t;

/* Connections accepted and rejected by every worker, and open now. Safe
 * from any thread. */
void tally_server_totals(const tally_server_t *s, tally_server_totals_t *t);

/* A worker. Main allocates them (an array, server->workers); every field
 * is the worker's own unless marked. */
typedef struct tally_worker {
    /* read-only */
    unsigned id; /* 1.. */
    char name[16];
    _Atomic bool exited; /* the loop has ended and been closed */
    int exit_status;
    /* private */
    tally_server_t *server;
    const tally_worker_hooks_t *hooks;
    void *app;
    uv_thread_t thread;
    uv_loop_t loop;
    int listen_fd;
    uv_tcp_t listener;
    uv_async_t wakeup;
    _Atomic int stop_level; /* 0 run, 1 drain, 2 close everything now */
    bool wakeup_closed;     /* under server->stop_mu: no more uv_async_send */
    uv_check_t check;
    uv_timer_t tick;
    uv_timer_t grace;
    uv_timer_t log_flush; /* hands this thread's log lines over 10 ms after the first */
    bool draining;
    bool finished;
    time_t date_sec;
    uint64_t accept_error_ms; /* when an accept error was last logged */
    int handles_open;
    tally_conn_ctx_t conns;
} tally_worker_t;

/* Prepares worker id over listen_fd (listening, not yet the loop's), with
 * the application's hooks and its app pointer. Returns 0 or a negative
 * errno-style code. */
int tally_worker_init(tally_worker_t *w, tally_server_t *server, unsigned id, int listen_fd,
                      const tally_worker_hooks_t *hooks, void *app);

/* The worker's loop, for the application to set up on before the worker
 * starts. */
static inline uv_loop_t *tally_worker_loop(tally_worker_t *w)
{
    return &w->loop;
}

/* Starts the worker's thread. Returns 0 or a negative libuv error. */
int tally_worker_start(tally_worker_t *w);

/* Thread-safe: asks the worker to drain (level 1: stop accepting, finish
 * requests in flight within the shutdown grace) or to close everything now
 * (level 2). */
void tally_worker_stop(tally_worker_t *w, int level);

/* Joins the worker's thread and releases what it owns. */
void tally_worker_join(tally_worker_t *w);

#endif

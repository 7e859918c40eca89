/* worker.h - one thread, one uv_loop_t: a listener of its own
 * (SO_REUSEPORT), its connections, its backend connection, its timers.
 *
 * Nothing a worker touches on the request path is shared with another
 * thread except the memory backend's atomic and the process-wide count of
 * open connections (one atomic add per accept). The main thread talks to a
 * worker only through tally_worker_stop() (a uv_async_t).
 */
#ifndef TALLY_WORKER_H
#define TALLY_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "app/batch.h"
#include "base/buf.h"
#include "config.h"
#include "counter/counter.h"
#include "http/parser.h"
#include "base/list.h"
#include "http/response.h"

/* State every worker reads; written by main before workers start. */
typedef struct tally_server {
    const tally_config_t *cfg;
    unsigned nworkers;
    struct tally_worker *workers;
    tally_memory_shared_t memory;
    _Atomic unsigned connections; /* open client connections, process-wide */
    uv_async_t *worker_exited;    /* main's: a worker's loop has ended */
    uv_mutex_t stop_mu;           /* guards every worker's wakeup_closed */
} tally_server_t;

/* Upper bounds of the request latency histogram buckets, in microseconds
 * (the last bucket is +Inf). */
#define TALLY_LATENCY_BUCKETS 14
extern const uint64_t tally_latency_bounds_us[TALLY_LATENCY_BUCKETS - 1];

/* Requests answered, by route (index tally_route_t) and status class; read
 * racily by /metrics from any worker, hence relaxed atomics. */
typedef struct tally_worker_stats {
    _Atomic uint64_t responses[6][6]; /* [route][status / 100] */
    _Atomic uint64_t claims_granted, claims_capped, claims_failed;
    _Atomic uint64_t accepted, rejected;
    _Atomic uint64_t latency[TALLY_LATENCY_BUCKETS]; /* cumulative-free: one bucket each */
    _Atomic uint64_t latency_sum_us;
} tally_worker_stats_t;

#define TALLY_READ_BUF (64u << 10)
/* listen(2) backlog of each worker's listener (main.c listens, the
 * worker's uv_listen() adopts the socket). */
#define TALLY_LISTEN_BACKLOG 1024

typedef struct tally_worker {
    unsigned id; /* 1.. */
    char name[16];
    tally_server_t *server;
    uv_thread_t thread;
    uv_loop_t loop;
    int listen_fd;
    uv_tcp_t listener;
    uv_async_t wakeup;
    _Atomic int stop_level; /* 0 run, 1 drain, 2 close everything now */
    bool wakeup_closed;     /* under server->stop_mu: no more uv_async_send */
    _Atomic bool exited;    /* the loop has ended and been closed */
    uv_check_t check;
    uv_timer_t tick;
    uv_timer_t grace;
    uv_timer_t log_flush; /* hands this thread's log lines over 10 ms after the first */
    tally_counter_t *counter;
    _Atomic bool backend_up; /* the counter's ready(), for other threads */
    tally_claimq_t claims;
    tally_claim_t *claims_inflight; /* the one batch the backend is answering */
    struct tally_conn *dirty;       /* connections with output to flush this iteration */
    tally_list_t all_conns;         /* every open connection */
    tally_list_t header_list;       /* waiting for a request to complete; deadline order */
    tally_list_t idle_list;         /* keep-alive between requests, or a write pending */
    tally_list_t linger_list;       /* answered and half-closed; draining the input */
    tally_http_config_t http;
    tally_resp_ctx_t resp;
    tally_buf_t out;     /* responses of one connection, serialised before one write */
    tally_buf_t scratch; /* /metrics bodies */
    char capped_msg[96]; /* "Received a request but we already hit CAP requests!" */
    size_t capped_len;
    unsigned nconns;
    struct tally_conn *free_conns; /* closed connections kept for reuse */
    unsigned nfree_conns;
    bool draining;
    /* Clock stamps for the latency histogram, uv_hrtime()/1000, read at
     * most once per loop iteration each (0: not yet read this iteration):
     * read_us at the first request parsed, flush_us at the first answer
     * written; on_check clears both. Batches of requests share them. */
    uint64_t read_us;
    uint64_t flush_us;
    bool finished;
    time_t date_sec;
    uint64_t accept_error_ms; /* when an accept error was last logged */
    int handles_open;
    int exit_status;
    tally_worker_stats_t stats;
    char readbuf[TALLY_READ_BUF];
} tally_worker_t;

/* Prepares worker id over listen_fd (bound, not yet listening). */
int tally_worker_init(tally_worker_t *w, tally_server_t *server, unsigned id, int listen_fd);

/* Starts the worker's thread. Returns 0 or a negative libuv error. */
int tally_worker_start(tally_worker_t *w);

/* Thread-safe: asks the worker to drain (level 1: stop accepting, finish
 * requests in flight within --shutdown-timeout) or to close everything now
 * (level 2). */
void tally_worker_stop(tally_worker_t *w, int level);

/* Joins the worker's thread and releases what it owns. */
void tally_worker_join(tally_worker_t *w);

/* Called by connections: queue a claim, mark a connection to flush, a
 * connection has closed. */
void tally_worker_claim(tally_worker_t *w, tally_claim_t *c);
void tally_worker_conn_closed(tally_worker_t *w);

/* Whether every worker's backend is connected (GET /readyz). */
bool tally_server_ready(tally_server_t *s);

#endif

/* app.h - tally itself, one per worker: the routes' state, the worker's
 * counter, the claim batch of each loop iteration, the statistics.
 *
 * The server layer knows none of this: main hands each worker the hooks of
 * tally_app_worker_hooks with the worker's tally_app_t, and the worker calls
 * them on its own thread (the connections call the route hooks, the loop
 * calls turn() once per iteration and stop() at shutdown).
 *
 * Claims: each GET / queues one (app/batch.h). Once per loop iteration
 * turn() sends everything queued to the backend as one claim for k
 * numbers; one batch is in flight at a time, so the busier the service, the
 * larger the batches and the fewer the round trips per request.
 */
#ifndef TALLY_APP_H
#define TALLY_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "app/batch.h"
#include "app/stats.h"
#include "base/buf.h"
#include "counter/counter.h"
#include "counter/floor.h"
#include "server/worker.h"

/* Process-wide, written by main before any worker starts. */
typedef struct tally_app_shared {
    int64_t cap;
    bool admin;          /* an admin token is configured: POST /reset is served */
    const char *backend; /* the counter's kind, for metrics labels */
    unsigned napps;
    struct tally_app *apps; /* one per worker, for /metrics and /readyz */
    const tally_server_t *server;
    const tally_floor_t *floor; /* the process's (counter/floor.h), for /metrics and /readyz */
} tally_app_shared_t;

typedef struct tally_app {
    const tally_app_shared_t *shared;
    unsigned id; /* the worker's, 1.. */
    tally_counter_t *counter;
    _Atomic bool backend_up; /* the counter's ready(), for other threads */
    tally_claimq_t claims;
    tally_claim_t *claims_inflight; /* the one batch the backend is answering */
    size_t root_len;                /* every GET / body's length under cap */
    char capped_msg[96];            /* "Received a request but we already hit CAP requests!" */
    size_t capped_len;
    tally_buf_t scratch; /* /metrics bodies */
    tally_app_stats_t stats;
} tally_app_t;

/* Sets up a's state and its counter (kind: a backend name, counter.h) on
 * loop. Returns 0, or a negative errno-style code with the reason in why. */
int tally_app_init(tally_app_t *a, const tally_app_shared_t *shared, unsigned id, uv_loop_t *loop,
                   const char *kind, const tally_counter_params_t *cp, char *why, size_t whylen);

/* Frees what a holds once its worker's loop has ended. */
void tally_app_free(tally_app_t *a);

/* The hooks each worker is given, with its tally_app_t as the app pointer. */
extern const tally_worker_hooks_t tally_app_worker_hooks;

/* Queues a claim for the next batch. */
void tally_app_claim(tally_app_t *a, tally_claim_t *c);

/* Whether every worker's backend is connected (GET /readyz). */
bool tally_app_ready(const tally_app_shared_t *shared);

#endif

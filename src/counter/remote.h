/* remote.h - what the redis and postgres backends share.
 *
 * A remote counter is a tally_counter_t whose numbers live in a server. The
 * server-specific part (a "driver": redis.c, pg.c) speaks
 * the protocol; this part keeps the state every driver needs:
 *
 *  - connection state DOWN -> CONNECTING -> UP, reconnecting after a
 *    failure with capped exponential backoff (50 ms doubling to 1 s);
 *  - a connect timeout and a command timeout (--backend-timeout), both
 *    enforced by one 25 ms tick: a server that accepts and never answers
 *    is dropped like one that refuses;
 *  - the operations in flight, oldest first. When the connection drops,
 *    every one of them fails: a claim whose outcome is unknown is answered
 *    UNAVAILABLE and its numbers are never granted (a gap, never a
 *    duplicate);
 *  - the halt cache: once a claim came back short (the counter is at CAP)
 *    claims are refused without a round trip, while the counter is read
 *    every 25 ms so that a reset by any instance is seen within 100 ms;
 *  - the floor (counter/floor.h): each claim carries the process's, and
 *    an answer that had to be raised to it is logged and counted;
 *  - logging once per state change, not once per request.
 */
#ifndef TALLY_REMOTE_H
#define TALLY_REMOTE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "counter/counter.h"
#include "counter/floor.h"
#include "base/list.h"

typedef enum {
    TALLY_OP_CLAIM,
    TALLY_OP_RESET,
    TALLY_OP_PEEK, /* read the counter (halt cache) */
    TALLY_OP_SETUP,
} tally_op_kind_t;

typedef struct tally_op {
    tally_list_t node; /* in the remote's in-flight list, oldest first */
    tally_op_kind_t kind;
    uint32_t k;
    uint64_t sent_ms;
    tally_counter_claim_cb claim_cb;
    tally_counter_reset_cb reset_cb;
    void *arg;
    /* Outcome, filled by the driver before tally_remote_finish(). */
    bool ok;
    int64_t value;    /* CLAIM: counter before (after any raise); PEEK: counter now */
    uint32_t granted; /* CLAIM */
    int64_t had;      /* CLAIM: the counter as the backend had it (< value: raised) */
    int64_t epoch;    /* CLAIM: the backend's epoch as it had it; RESET: the new one */
    /* Sent with a claim: the process's floor, its epoch, and what a
     * counter below the floor is raised to (counter/floor.h). */
    int64_t floor, floor_epoch, raise_to;
    int pending; /* driver's use: results still expected */
} tally_op_t;

typedef enum { TALLY_REMOTE_DOWN, TALLY_REMOTE_CONNECTING, TALLY_REMOTE_UP } tally_remote_state_t;

typedef struct tally_remote tally_remote_t;

typedef struct tally_remote_driver {
    const char *name;
    /* Starts connecting. Calls tally_remote_up() once the connection is
     * ready for claims, tally_remote_down() when it fails (possibly before
     * returning). */
    void (*connect)(tally_remote_t *r);
    /* Tears the connection down at once; ops in flight need not be
     * completed (the remote fails whatever is left). Must not be called
     * from inside the driver's library callbacks: use
     * tally_remote_fail_soon() there. */
    void (*drop)(tally_remote_t *r);
    /* Sends op (already in the in-flight list). Returns 0, or -1 when the
     * connection is broken (the remote then fails op and reconnects). */
    int (*send)(tally_remote_t *r, tally_op_t *op);
    /* Frees the driver's state; called once, after drop(), when the
     * counter closes. Calls done() when every handle it owns is closed. */
    void (*destroy)(tally_remote_t *r, void (*done)(tally_remote_t *r));
} tally_remote_driver_t;

struct tally_remote {
    tally_counter_t base;
    const tally_remote_driver_t *drv;
    void *drv_data;
    const char *key;
    tally_floor_t *floor; /* the process's, or own_floor */
    tally_floor_t own_floor;
    char where[160]; /* the server, without secrets, for logs */
    tally_remote_state_t state;
    bool halted;
    bool closing;
    bool down_logged;
    bool was_up;
    bool peek_inflight;
    unsigned worker_id;
    uint64_t timeout_ms;
    uint64_t backoff_ms;
    uint64_t connect_started_ms;
    uint64_t last_peek_ms;
    uv_timer_t tick;
    uv_timer_t retry;
    int handles_open;
    tally_list_t inflight;
    tally_op_t *free_ops;
    char fail_reason[256];
    tally_counter_closed_cb closed_cb;
};

/* Initialises r (embedded first in the driver's struct) and starts
 * connecting. */
void tally_remote_start(tally_remote_t *r, const tally_remote_driver_t *drv, void *drv_data,
                        uv_loop_t *loop, const tally_counter_params_t *p);

/* The tally_counter_ops_t of every remote counter. */
extern const tally_counter_ops_t tally_remote_counter_ops;

/* Driver -> remote. */
void tally_remote_up(tally_remote_t *r);
void tally_remote_down(tally_remote_t *r, const char *reason);
void tally_remote_fail_soon(tally_remote_t *r, const char *reason);
/* Completes op with the outcome the driver filled in, and frees it. */
void tally_remote_finish(tally_remote_t *r, tally_op_t *op);
/* Queues and sends an op of the driver's own (setup). */
tally_op_t *tally_remote_op_new(tally_remote_t *r, tally_op_kind_t kind);
/* The oldest op in flight, or NULL. */
tally_op_t *tally_remote_oldest(tally_remote_t *r);

#endif

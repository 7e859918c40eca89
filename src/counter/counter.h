/* counter.h - the counter backends behind one small hook table.
 *
 * A worker owns one tally_counter_t (one backend connection, driven by the
 * worker's loop). It asks for numbers with claim(k): "up to k numbers,
 * please". The answer comes through the callback, possibly before claim()
 * returns (memory) or on a later loop iteration (redis, postgres):
 *
 *   TALLY_CLAIM_OK           numbers first .. first+granted-1 are this
 *                            caller's, each granted exactly once across
 *                            everything sharing the backend; granted < k
 *                            means the counter reached CAP (granted may be 0)
 *   TALLY_CLAIM_UNAVAILABLE  the backend could not answer; nothing granted
 *                            (an outcome that is unknown is never granted)
 *
 * The counter never exceeds CAP. reset() sets it to 0. ready() tells
 * whether the backend is connected (on the counter's own thread; other
 * threads read the flag `up` points at). close() ends the backend and calls
 * `closed` once every handle it owns has been closed; pending claims are
 * answered UNAVAILABLE first.
 */
#ifndef TALLY_COUNTER_H
#define TALLY_COUNTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef enum {
    TALLY_CLAIM_OK = 0,
    TALLY_CLAIM_UNAVAILABLE,
} tally_claim_status_t;

typedef struct tally_counter tally_counter_t;

typedef void (*tally_counter_claim_cb)(void *arg, tally_claim_status_t st, int64_t first,
                                       uint32_t granted);
/* ok: the counter is 0 now. */
typedef void (*tally_counter_reset_cb)(void *arg, bool ok);
typedef void (*tally_counter_closed_cb)(tally_counter_t *c);

typedef struct tally_counter_ops {
    const char *name;
    void (*claim)(tally_counter_t *c, uint32_t k, tally_counter_claim_cb cb, void *arg);
    void (*reset)(tally_counter_t *c, tally_counter_reset_cb cb, void *arg);
    bool (*ready)(tally_counter_t *c);
    void (*close)(tally_counter_t *c, tally_counter_closed_cb closed);
} tally_counter_ops_t;

struct tally_counter {
    const tally_counter_ops_t *ops;
    uv_loop_t *loop;
    int64_t cap;
    /* Where the counter also publishes ready() as it changes: a flag its
     * owner keeps (and other threads read) after the counter is freed.
     * NULL: nowhere. */
    _Atomic bool *up;
};

static inline void tally_counter_publish_up(tally_counter_t *c, bool up)
{
    if (c->up)
        atomic_store_explicit(c->up, up, memory_order_relaxed);
}

/* The memory backend's state, shared by every worker of the process. */
typedef struct tally_memory_shared {
    _Atomic int64_t value;
} tally_memory_shared_t;

/* The memory backend's arithmetic: takes min(k, cap - value) numbers with
 * one compare-and-swap loop and returns how many; *first is the first one.
 * Never lets value exceed cap, whatever the threads do. */
uint32_t tally_memory_take(_Atomic int64_t *value, int64_t cap, uint32_t k, int64_t *first);

/* A memory counter for one worker; never fails to claim. NULL when out of
 * memory. */
tally_counter_t *tally_counter_memory_new(uv_loop_t *loop, tally_memory_shared_t *shared,
                                          int64_t cap);

/* What any backend is made from; each reads the fields it needs. */
typedef struct tally_counter_params {
    int64_t cap;
    const char *url;               /* redis: a redis:// URL; postgres: a URL or conninfo */
    const char *key;               /* the counter's name in the server */
    uint64_t timeout_ms;           /* connect and command timeout */
    unsigned worker_id;            /* 1..: named in the backend's log lines */
    tally_memory_shared_t *shared; /* memory: the process's counter */
    struct tally_floor *floor;     /* redis, postgres: the process's floor
                                      (counter/floor.h); NULL: the counter's own */
} tally_counter_params_t;

/* A backend's constructor: 0 and *out, or a negative errno-style code with
 * the reason in why (whylen bytes, one line). */
typedef int (*tally_counter_open_fn)(uv_loop_t *loop, const tally_counter_params_t *p,
                                     tally_counter_t **out, char *why, size_t whylen);

/* The counter of backend `kind` ("memory", "redis", "postgres") on loop,
 * connecting at once (a server that is down is retried, not fatal).
 * Returns 0 and *out, or a negative errno-style code (-EINVAL: an unknown
 * kind or a URL that does not parse; -ENOMEM) with the reason in why. */
int tally_counter_new(const char *kind, uv_loop_t *loop, const tally_counter_params_t *p,
                      tally_counter_t **out, char *why, size_t whylen);

/* The name of the backend a user's word stands for (its name, or an alias:
 * "postgresql" is "postgres"), or NULL when none: a pointer into the
 * registry, valid for ever. */
const char *tally_counter_kind_find(const char *word);

/* The i-th backend's name, from 0; NULL past the last (to list them). */
const char *tally_counter_kind_at(size_t i);

#endif

/* conn_internal.h - what the three parts of a connection share; no other
 * module includes it.
 *
 *   conn.c        reading, parsing, one ring slot per request, the pump,
 *                 deadlines, drain and expiry
 *   conn_write.c  ready answers serialised in ring order and written
 *   conn_life.c   accepting, closing (with a linger when input may follow),
 *                 the worker's cache of closed connections
 *
 * Everything here runs on the connection's worker thread.
 */
#ifndef TALLY_CONN_INTERNAL_H
#define TALLY_CONN_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/conn.h"
#include "server/worker.h"

/* What a slot answers (tally_slot_t.kind). */
enum { SLOT_ROOT, SLOT_HEALTHZ, SLOT_READYZ, SLOT_METRICS, SLOT_RESET, SLOT_ERROR };

/* Adds n to a worker's statistic. One writer per counter (its worker): a
 * relaxed load and store is enough and avoids a locked instruction. */
static inline void tally_stat_add_n(_Atomic uint64_t *v, uint64_t n)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void tally_stat_add(_Atomic uint64_t *v)
{
    tally_stat_add_n(v, 1);
}

/* Queues c for tally_conn_pump() at the end of this loop iteration (once). */
static inline void tally_conn_mark_dirty(tally_conn_t *c)
{
    if (c->dirty || c->closed)
        return;
    c->dirty = true;
    c->dirty_next = c->w->dirty;
    c->w->dirty = c;
}

/* Files c in the worker's deadline list `which` (TALLY_TLIST_*), due
 * timeout_ms from now; TALLY_TLIST_NONE takes it out of any. */
void tally_conn_tlist_set(tally_conn_t *c, int which, uint64_t timeout_ms);

/* uv_read_start() with the connection's callbacks; 0 or a libuv error. */
int tally_conn_read_start(tally_conn_t *c);

/* Starts or stops reading as c's state asks: not while a write is in
 * flight, unparsed input is kept aside (c->saved, the ring was full) or c
 * is to close; always while lingering. */
void tally_conn_update_reading(tally_conn_t *c);

/* Serialises the ready answers at the head of the ring and writes them.
 * Call only with no write in flight (c->wr NULL). May close c. */
void tally_conn_flush(tally_conn_t *c);

/* Everything is answered and c is to close: closes it, or half-closes and
 * lingers when the client may still be sending. */
void tally_conn_finish(tally_conn_t *c);

/* Whether the client has sent bytes not read yet. */
bool tally_conn_has_pending_input(tally_conn_t *c);

/* Hands c's handle to uv_close(); c is freed (or cached) in its close
 * callback. Only for a closed c (c->closed set) with no claim or reset
 * pending, and only once: tally_conn_close() and the last settled claim
 * call it. */
void tally_conn_release(tally_conn_t *c);

#endif

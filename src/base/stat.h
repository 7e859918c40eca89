/* stat.h - statistics counters with one writer each.
 *
 * A counter is written by one thread (its worker) and read by any (the
 * worker answering /metrics): a relaxed load and store is enough for that
 * and costs no locked instruction on the hot path. */
#ifndef TALLY_STAT_H
#define TALLY_STAT_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t tally_stat_t;

static inline void tally_stat_add_n(tally_stat_t *v, uint64_t n)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void tally_stat_add(tally_stat_t *v)
{
    tally_stat_add_n(v, 1);
}

static inline uint64_t tally_stat_read(const tally_stat_t *v)
{
    return atomic_load_explicit((tally_stat_t *)v, memory_order_relaxed);
}

#endif

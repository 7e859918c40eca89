/* memory.c - the in-process backend: one C11 atomic shared by all
 * workers. A claim is a capped compare-and-swap; it answers at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "counter/counter.h"
#include "counter/drivers.h"

typedef struct memory_counter {
    tally_counter_t base;
    tally_memory_shared_t *shared;
} memory_counter_t;

uint32_t tally_memory_take(_Atomic int64_t *value, int64_t cap, uint32_t k, int64_t *first)
{
    int64_t cur = atomic_load_explicit(value, memory_order_relaxed);
    int64_t n;
    do {
        if (cur >= cap)
            return 0;
        n = cap - cur < (int64_t)k ? cap - cur : (int64_t)k;
    } while (!atomic_compare_exchange_weak_explicit(value, &cur, cur + n, memory_order_acq_rel,
                                                    memory_order_relaxed));
    *first = cur + 1;
    return (uint32_t)n;
}

static void memory_claim(tally_counter_t *c, uint32_t k, tally_counter_claim_cb cb, void *arg)
{
    memory_counter_t *m = (memory_counter_t *)c;
    int64_t first = 0;
    uint32_t n = tally_memory_take(&m->shared->value, c->cap, k, &first);
    cb(arg, TALLY_CLAIM_OK, first, n);
}

static void memory_reset(tally_counter_t *c, tally_counter_reset_cb cb, void *arg)
{
    memory_counter_t *m = (memory_counter_t *)c;
    atomic_store_explicit(&m->shared->value, 0, memory_order_release);
    cb(arg, true);
}

static bool memory_ready(tally_counter_t *c)
{
    (void)c;
    return true;
}

static void memory_close(tally_counter_t *c, tally_counter_closed_cb closed)
{
    closed(c);
    free(c);
}

static const tally_counter_ops_t memory_ops = {
    .name = "memory",
    .claim = memory_claim,
    .reset = memory_reset,
    .ready = memory_ready,
    .close = memory_close,
};

tally_counter_t *tally_counter_memory_new(uv_loop_t *loop, tally_memory_shared_t *shared,
                                          int64_t cap)
{
    memory_counter_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->base.ops = &memory_ops;
    m->base.loop = loop;
    m->base.cap = cap;
    m->shared = shared;
    return &m->base;
}

int tally_counter_memory_open(uv_loop_t *loop, const tally_counter_params_t *p,
                              tally_counter_t **out, char *why, size_t whylen)
{
    *out = tally_counter_memory_new(loop, p->shared, p->cap);
    if (*out == NULL) {
        snprintf(why, whylen, "not enough memory for the memory counter");
        return -ENOMEM;
    }
    return 0;
}

/* app.c - a worker's tally state: its counter, the claim batch of each
 * loop iteration, readiness, statistics; see app.h. */
#include "app/app.h"

#include <stdio.h>
#include <string.h>

#include "app/routes.h"

const uint64_t tally_latency_bounds_us[TALLY_LATENCY_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};

void tally_app_stats_answer(tally_app_stats_t *st, unsigned route, int status, uint64_t latency_us)
{
    tally_stat_add(&st->responses[route][status / 100 % 6]);
    int b = 0;
    while (b < TALLY_LATENCY_BUCKETS - 1 && latency_us > tally_latency_bounds_us[b])
        b++;
    tally_stat_add(&st->latency[b]);
    tally_stat_add_n(&st->latency_sum_us, latency_us);
}

int tally_app_init(tally_app_t *a, const tally_app_shared_t *shared, unsigned id, uv_loop_t *loop,
                   const char *kind, const tally_counter_params_t *cp, char *why, size_t whylen)
{
    memset(a, 0, sizeof *a);
    a->shared = shared;
    a->id = id;
    tally_claimq_init(&a->claims);
    a->root_len = tally_root_len(shared->cap);
    int n =
        snprintf(a->capped_msg, sizeof a->capped_msg,
                 "Received a request but we already hit %lld requests!", (long long)shared->cap);
    a->capped_len = (size_t)n;
    int err = tally_counter_new(kind, loop, cp, &a->counter, why, whylen);
    if (err != 0)
        return err;
    atomic_store(&a->backend_up, a->counter->ops->ready(a->counter));
    a->counter->up = &a->backend_up;
    return 0;
}

void tally_app_free(tally_app_t *a)
{
    tally_buf_free(&a->scratch);
}

void tally_app_claim(tally_app_t *a, tally_claim_t *c)
{
    tally_claimq_push(&a->claims, c);
}

bool tally_app_ready(const tally_app_shared_t *shared)
{
    for (unsigned i = 0; i < shared->napps; i++)
        if (!atomic_load_explicit(&shared->apps[i].backend_up, memory_order_relaxed))
            return false;
    return true;
}

static void on_batch_answered(void *arg, tally_claim_status_t st, int64_t first, uint32_t granted)
{
    tally_app_t *a = arg;
    tally_claim_t *list = a->claims_inflight;
    a->claims_inflight = NULL;
    tally_claims_settle(list, st, first, granted);
}

/* Once per loop iteration, and again while connections have output: the
 * claims queued meanwhile go to the backend as one. One batch at a time is
 * in flight: claims arriving while the backend answers wait for the next
 * iteration after the answer, and go as one. */
static void app_turn(void *app)
{
    tally_app_t *a = app;
    if (a->claims.n > 0 && a->claims_inflight == NULL && a->counter) {
        uint32_t n;
        a->claims_inflight = tally_claimq_take(&a->claims, &n);
        a->counter->ops->claim(a->counter, n, on_batch_answered, a);
    }
}

static void on_counter_closed(tally_counter_t *c)
{
    (void)c;
}

/* The worker is finishing: its counter closes (claims still pending are
 * answered UNAVAILABLE first). */
static void app_stop(void *app)
{
    tally_app_t *a = app;
    if (a->counter) {
        tally_counter_t *c = a->counter;
        a->counter = NULL;
        c->up = NULL;
        atomic_store(&a->backend_up, false);
        c->ops->close(c, on_counter_closed);
    }
}

const tally_worker_hooks_t tally_app_worker_hooks = {
    .pipe = &tally_routes_hooks,
    .turn = app_turn,
    .stop = app_stop,
};

/* floor.c - see floor.h. */
#include "counter/floor.h"

#include <uv.h>

#define RATE_WINDOW_US 1000000 /* a rate sample is kept for about a second */
#define SAMPLE_MIN_US  100     /* answers closer than this count as this far apart */
#define SLACK_US       1000    /* added to the time since the last answer */

static uint64_t now_us(void)
{
    return uv_hrtime() / 1000;
}

int tally_floor_init(tally_floor_t *f)
{
    f->epoch = f->value = 0;
    f->at_us = f->rate_us = now_us();
    f->rate = 0;
    atomic_init(&f->shown, 0);
    atomic_init(&f->inflight, 0);
    atomic_init(&f->raises, 0);
    atomic_init(&f->lost, 0);
    return -pthread_mutex_init(&f->lock, NULL);
}

void tally_floor_destroy(tally_floor_t *f)
{
    pthread_mutex_destroy(&f->lock);
}

void tally_floor_get(tally_floor_t *f, int64_t *epoch, int64_t *value, int64_t *raise_to)
{
    uint64_t now = now_us();
    pthread_mutex_lock(&f->lock);
    *epoch = f->epoch;
    *value = f->value;
    /* what others could have taken since this process's last answer */
    double margin = 2.0 * f->rate * (double)(now - f->at_us + SLACK_US) +
                    (double)atomic_load_explicit(&f->inflight, memory_order_relaxed);
    *raise_to = f->value + (margin < 1e15 ? (int64_t)margin : (int64_t)1e15);
    pthread_mutex_unlock(&f->lock);
}

void tally_floor_claim_start(tally_floor_t *f, uint32_t k)
{
    atomic_fetch_add_explicit(&f->inflight, (int64_t)k, memory_order_relaxed);
}

void tally_floor_claim_end(tally_floor_t *f, uint32_t k)
{
    atomic_fetch_sub_explicit(&f->inflight, (int64_t)k, memory_order_relaxed);
}

void tally_floor_saw(tally_floor_t *f, int64_t epoch, int64_t value)
{
    uint64_t now = now_us();
    pthread_mutex_lock(&f->lock);
    if (epoch > f->epoch) {
        f->epoch = epoch;
        f->value = value;
        f->at_us = f->rate_us = now;
        f->rate = 0;
    } else if (epoch == f->epoch && value > f->value) {
        /* the counter's growth as this process sees it, everyone's grants */
        uint64_t dt = now > f->at_us + SAMPLE_MIN_US ? now - f->at_us : SAMPLE_MIN_US;
        double sample = (double)(value - f->value) / (double)dt;
        if (now - f->rate_us >= RATE_WINDOW_US) {
            f->rate = sample > f->rate / 2 ? sample : f->rate / 2; /* halves per window */
            f->rate_us = now;
        } else if (sample > f->rate) {
            f->rate = sample;
        }
        f->value = value;
        f->at_us = now;
    }
    atomic_store_explicit(&f->shown, f->value, memory_order_relaxed);
    pthread_mutex_unlock(&f->lock);
}

void tally_floor_raised(tally_floor_t *f, int64_t had, int64_t floor)
{
    atomic_fetch_add_explicit(&f->raises, 1, memory_order_relaxed);
    if (floor > had)
        atomic_fetch_add_explicit(&f->lost, floor - had, memory_order_relaxed);
}

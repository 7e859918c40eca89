/* stats.h - what one worker's application counts, for /metrics.
 *
 * Each worker writes its own (tally_stat_add: no locked instruction); the
 * worker answering /metrics reads them all. Arrays indexed by route are
 * sized by TALLY_ROUTES_MAX, which app/routes.c asserts its table fits. */
#ifndef TALLY_STATS_H
#define TALLY_STATS_H

#include "base/stat.h"

/* Routes the table may hold; index 0 of the arrays is "other" (no route). */
#define TALLY_ROUTES_MAX 8

/* Upper bounds of the request latency histogram buckets, in microseconds
 * (the last bucket is +Inf). */
#define TALLY_LATENCY_BUCKETS 14
extern const uint64_t tally_latency_bounds_us[TALLY_LATENCY_BUCKETS - 1];

typedef struct tally_app_stats {
    tally_stat_t responses[TALLY_ROUTES_MAX + 1][6]; /* [route id][status / 100] */
    tally_stat_t claims_granted, claims_capped, claims_failed;
    tally_stat_t latency[TALLY_LATENCY_BUCKETS]; /* one bucket each, not cumulative */
    tally_stat_t latency_sum_us;
} tally_app_stats_t;

/* Counts one answer of route id with status, latency_us after its request. */
void tally_app_stats_answer(tally_app_stats_t *st, unsigned route, int status, uint64_t latency_us);

#endif

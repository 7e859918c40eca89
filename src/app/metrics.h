/* metrics.h - GET /metrics in the Prometheus text format (0.0.4).
 *
 * Sums every worker's counters at the time of the request; the counters
 * are relaxed atomics each written by one worker, so reading them from
 * another thread is safe and costs the writers nothing. */
#ifndef TALLY_METRICS_H
#define TALLY_METRICS_H

#include "base/buf.h"

struct tally_app_shared;

/* Appends the exposition text: every worker's application statistics
 * (app/stats.h) and the server's connection counts. */
void tally_metrics_render(const struct tally_app_shared *shared, tally_buf_t *body);

#endif

/* metrics.h - GET /metrics in the Prometheus text format (0.0.4).
 *
 * Sums every worker's counters at the time of the request; the counters
 * are relaxed atomics each written by one worker, so reading them from
 * another thread is safe and costs the writers nothing. */
#ifndef TALLY_METRICS_H
#define TALLY_METRICS_H

#include "base/buf.h"

struct tally_worker;

/* Appends the whole HTTP answer (head and body) for w's request. */
void tally_metrics_respond(struct tally_worker *w, tally_buf_t *out, unsigned flags);

/* Appends just the exposition text. */
void tally_metrics_render(struct tally_worker *w, tally_buf_t *body);

#endif

/* counter_remote.h - constructors of the network counters (counter.h
 * describes what a counter does; remote.h how these two behave when their
 * server fails). */
#ifndef TALLY_COUNTER_REMOTE_H
#define TALLY_COUNTER_REMOTE_H

#include <uv.h>

#include "config.h"
#include "counter/counter.h"
#include "counter/url.h"

/* A Redis counter for one worker, connecting at once (a server that is
 * down is retried, not fatal). NULL when out of memory or cfg->redis_url
 * does not parse. */
tally_counter_t *tally_counter_redis_new(uv_loop_t *loop, const tally_config_t *cfg,
                                         unsigned worker_id);

/* A PostgreSQL counter for one worker, likewise, on cfg->database_url. */
tally_counter_t *tally_counter_pg_new(uv_loop_t *loop, const tally_config_t *cfg,
                                      unsigned worker_id);

#endif

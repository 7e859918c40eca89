/* drivers.h - the backends' constructors, for the registry (counter.c)
 * alone: everything else asks for a backend by name, tally_counter_new().
 * counter.h describes what a counter does; remote.h how the network ones
 * behave when their server fails. */
#ifndef TALLY_DRIVERS_H
#define TALLY_DRIVERS_H

#include "counter/counter.h"

/* Each is a tally_counter_open_fn (counter.h). */
int tally_counter_memory_open(uv_loop_t *loop, const tally_counter_params_t *p,
                              tally_counter_t **out, char *why, size_t whylen);
int tally_counter_redis_open(uv_loop_t *loop, const tally_counter_params_t *p,
                             tally_counter_t **out, char *why, size_t whylen);
int tally_counter_pg_open(uv_loop_t *loop, const tally_counter_params_t *p, tally_counter_t **out,
                          char *why, size_t whylen);

#endif

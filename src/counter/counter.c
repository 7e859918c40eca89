/* counter.c - the registry of backends by name; see counter.h. Adding a
 * backend is one row here and its driver file. */
#include "counter/counter.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "counter/drivers.h"

static const struct {
    const char *kind;
    const char *alias; /* a second word for it, or NULL */
    tally_counter_open_fn open;
} backends[] = {
    {"memory", NULL, tally_counter_memory_open},
    {"redis", NULL, tally_counter_redis_open},
    {"postgres", "postgresql", tally_counter_pg_open},
};

#define NBACKENDS (sizeof backends / sizeof backends[0])

const char *tally_counter_kind_find(const char *word)
{
    for (size_t i = 0; i < NBACKENDS; i++)
        if (strcmp(backends[i].kind, word) == 0 ||
            (backends[i].alias && strcmp(backends[i].alias, word) == 0))
            return backends[i].kind;
    return NULL;
}

const char *tally_counter_kind_at(size_t i)
{
    return i < NBACKENDS ? backends[i].kind : NULL;
}

int tally_counter_new(const char *kind, uv_loop_t *loop, const tally_counter_params_t *p,
                      tally_counter_t **out, char *why, size_t whylen)
{
    *out = NULL;
    for (size_t i = 0; i < NBACKENDS; i++)
        if (strcmp(backends[i].kind, kind) == 0)
            return backends[i].open(loop, p, out, why, whylen);
    snprintf(why, whylen, "no counter backend is called \"%s\"", kind);
    return -EINVAL;
}

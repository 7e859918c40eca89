/* route_ids.h - the route ids of src/app/routes.c's table, written out by
 * hand for the tests: an independent oracle of the table (a row moved or
 * dropped fails test_routes), and the names the parser tests use. */
#ifndef TEST_ROUTE_IDS_H
#define TEST_ROUTE_IDS_H

#include <string.h>

#include "app/routes.h"

typedef enum {
    TALLY_ROUTE_UNKNOWN = 0,
    TALLY_ROUTE_ROOT,
    TALLY_ROUTE_HEALTHZ,
    TALLY_ROUTE_READYZ,
    TALLY_ROUTE_METRICS,
    TALLY_ROUTE_RESET,
} tally_route_t;

/* The table's lookup, as the parser calls it. */
static inline tally_route_t tally_route_find(const char *path, size_t len)
{
    bool wants_auth;
    return (tally_route_t)tally_route_classify(NULL, path, len, &wants_auth);
}

/* The Allow text of a route, in a buffer of the test's. */
static inline const char *route_allow(tally_route_t r)
{
    static char buf[64];
    return tally_route_allow((unsigned)r, buf, sizeof buf);
}

#endif

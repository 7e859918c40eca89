/* router.h - tally's routes (DESIGN.md section 3): path to route, and which
 * methods each route takes. */
#ifndef TALLY_ROUTER_H
#define TALLY_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    TALLY_ROUTE_UNKNOWN = 0, /* 404 */
    TALLY_ROUTE_ROOT,        /* GET/HEAD /        : claim a number */
    TALLY_ROUTE_HEALTHZ,     /* GET/HEAD /healthz : liveness */
    TALLY_ROUTE_READYZ,      /* GET/HEAD /readyz  : backend connected */
    TALLY_ROUTE_METRICS,     /* GET/HEAD /metrics : Prometheus text */
    TALLY_ROUTE_RESET,       /* POST /reset       : counter to 0 */
} tally_route_t;

/* The longest path that names a route; longer paths are unknown. */
#define TALLY_ROUTE_PATH_MAX 16

/* Route of an origin-form path (query string already removed). */
tally_route_t tally_route_find(const char *path, size_t len);

/* Whether the route takes the method (an llhttp_method_t value). */
bool tally_route_allows(tally_route_t route, int method);

/* The Allow header value for the route ("GET, HEAD"). */
const char *tally_route_allow(tally_route_t route);

/* Name used in metrics labels: "/", "/healthz", ..., "other". */
const char *tally_route_name(tally_route_t route);

#endif

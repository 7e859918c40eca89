/* router.c - see router.h. */
#include "app/routes.h"

#include <string.h>

#include "llhttp.h"

tally_route_t tally_route_find(const char *path, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(path, lit, sizeof(lit) - 1) == 0)
    if (IS("/"))
        return TALLY_ROUTE_ROOT;
    if (IS("/healthz"))
        return TALLY_ROUTE_HEALTHZ;
    if (IS("/readyz"))
        return TALLY_ROUTE_READYZ;
    if (IS("/metrics"))
        return TALLY_ROUTE_METRICS;
    if (IS("/reset"))
        return TALLY_ROUTE_RESET;
#undef IS
    return TALLY_ROUTE_UNKNOWN;
}

bool tally_route_allows(tally_route_t route, int method)
{
    switch (route) {
    case TALLY_ROUTE_ROOT:
    case TALLY_ROUTE_HEALTHZ:
    case TALLY_ROUTE_READYZ:
    case TALLY_ROUTE_METRICS:
        return method == HTTP_GET || method == HTTP_HEAD;
    case TALLY_ROUTE_RESET:
        return method == HTTP_POST;
    default:
        return false;
    }
}

const char *tally_route_allow(tally_route_t route)
{
    return route == TALLY_ROUTE_RESET ? "POST" : "GET, HEAD";
}

const char *tally_route_name(tally_route_t route)
{
    switch (route) {
    case TALLY_ROUTE_ROOT:
        return "/";
    case TALLY_ROUTE_HEALTHZ:
        return "/healthz";
    case TALLY_ROUTE_READYZ:
        return "/readyz";
    case TALLY_ROUTE_METRICS:
        return "/metrics";
    case TALLY_ROUTE_RESET:
        return "/reset";
    default:
        return "other";
    }
}

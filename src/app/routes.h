/* routes.h - tally's routes: one table (routes.c) from which the lookup,
 * the 404/405 answers and Allow, the admin check and the metrics labels all
 * follow.
 *
 * A route is a row {path, methods, flags, start, write}: start() (NULL:
 * nothing to wait for) may defer the answer (a claim), write() appends the
 * answer and returns the status it wrote. Route ids are the row's index + 1;
 * 0 is "no route" (404, "other" in metrics).
 */
#ifndef TALLY_ROUTES_H
#define TALLY_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "http/pipeline.h"

/* The route hooks every connection of a worker is given (pipeline.h), with
 * the worker's tally_app_t as the app pointer. */
extern const tally_pipe_hooks_t tally_routes_hooks;

/* Number of rows; ids run 1..tally_routes_count(). */
unsigned tally_routes_count(void);

/* Route id of an origin-form path (query string already removed); 0: none.
 * *wants_auth: the route serves only requests with the admin token. */
uint8_t tally_route_classify(void *app, const char *path, size_t len, bool *wants_auth);

/* Whether route id takes the method (an llhttp_method_t value). */
bool tally_route_allows(unsigned id, int method);

/* The Allow header value for route id ("GET, HEAD"), into buf. */
const char *tally_route_allow(unsigned id, char *buf, size_t size);

/* --help's list of the routes: methods, path and a line each. */
void tally_routes_usage(FILE *out);

/* Name used in metrics labels: the path, or "other" for id 0. */
const char *tally_route_name(unsigned id);

/* GET /'s body length under cap: every answer has it, granted or not. */
size_t tally_root_len(int64_t cap);

/* GET /'s answer: 200 {"hello":"world","request_num":number} when
 * number > 0, else 200 {"Go":"away!","request_num":cap}; both padded with
 * spaces (JSON whitespace) before the closing brace to root_len bytes
 * (tally_root_len(cap)), so that every answer under one CAP has the same
 * Content-Length (ab counts any other as a failure). */
void tally_root_answer(tally_buf_t *out, const tally_resp_ctx_t *resp, int64_t cap, size_t root_len,
                       int64_t number, unsigned flags);

#endif

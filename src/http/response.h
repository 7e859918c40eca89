/* response.h - serialising answers: status line, headers, body.
 *
 * Responses are appended to a tally_buf_t that a worker reuses for all its
 * connections; each is built by hand from literals, the Date string the
 * worker caches once a second, and a hand-formatted Content-Length.
 *
 * Every answer to GET / under one CAP has the same Content-Length: both
 * bodies are padded with spaces (JSON whitespace) before the closing brace
 * to tally_response_root_len(cap) bytes, so `ab` sees no length failures.
 */
#ifndef TALLY_RESPONSE_H
#define TALLY_RESPONSE_H

#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "app/routes.h"

#define TALLY_HTTP_DATE_LEN 29 /* "Thu, 26 Nov 2026 12:28:05 GMT" */

/* Per-response flags. */
enum {
    TALLY_RESP_HEAD = 1 << 0,      /* HEAD: headers only */
    TALLY_RESP_KEEPALIVE = 1 << 1, /* add "Connection: keep-alive" (HTTP/1.0 asked) */
    TALLY_RESP_CLOSE = 1 << 2,     /* add "Connection: close" */
};

typedef struct tally_resp_ctx {
    char date[TALLY_HTTP_DATE_LEN + 1]; /* refreshed by the worker */
    int64_t cap;
    size_t root_len; /* tally_response_root_len(cap) */
} tally_resp_ctx_t;

/* Formats t as an IMF-fixdate into out (TALLY_HTTP_DATE_LEN + 1 bytes). */
void tally_http_date(char *out, time_t t);

/* Length of every GET / body under cap. */
size_t tally_response_root_len(int64_t cap);

/* 200 {"hello":"world","request_num":number} when number > 0, else
 * 200 {"Go":"away!","request_num":CAP}; padded to ctx->root_len. */
void tally_response_root(tally_buf_t *out, const tally_resp_ctx_t *ctx, int64_t number,
                         unsigned flags);

/* Any other answer: status with its reason phrase, a body of content_type
 * (NULL: application/json), and extra header lines (each ending in CRLF, or
 * NULL). */
void tally_response_write(tally_buf_t *out, const tally_resp_ctx_t *ctx, int status,
                          const char *content_type, const char *extra_headers, const char *body,
                          size_t body_len, unsigned flags);

/* A JSON error answer {"error":"<what>"} (what is escaped), e.g. 400, 413,
 * 431, 503 (with Retry-After: 1). 405 carries Allow for route. */
void tally_response_error(tally_buf_t *out, const tally_resp_ctx_t *ctx, int status,
                          const char *what, tally_route_t route, unsigned flags);

/* Reason phrase of a status code ("Not Found"). */
const char *tally_http_reason(int status);

#endif

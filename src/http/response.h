/* response.h - serialising answers: status line, headers, body.
 *
 * Responses are appended to a tally_buf_t that a worker reuses for all its
 * connections; each is built by hand from literals, the Date string the
 * worker caches once a second, and a hand-formatted Content-Length. Knows
 * no route: what a body says is the caller's.
 */
#ifndef TALLY_RESPONSE_H
#define TALLY_RESPONSE_H

#include <stdint.h>
#include <time.h>

#include "base/buf.h"

#define TALLY_HTTP_DATE_LEN 29 /* "Thu, 26 Nov 2026 12:28:05 GMT" */

/* Per-response flags. */
enum {
    TALLY_RESP_HEAD = 1 << 0,      /* HEAD: headers only */
    TALLY_RESP_KEEPALIVE = 1 << 1, /* add "Connection: keep-alive" (HTTP/1.0 asked) */
    TALLY_RESP_CLOSE = 1 << 2,     /* add "Connection: close" */
};

typedef struct tally_resp_ctx {
    char date[TALLY_HTTP_DATE_LEN + 1]; /* refreshed by the worker */
} tally_resp_ctx_t;

/* Formats t as an IMF-fixdate into out (TALLY_HTTP_DATE_LEN + 1 bytes). */
void tally_http_date(char *out, time_t t);

/* The status line and headers of an answer whose body (of content_type,
 * NULL: application/json) will be body_len bytes, and the blank line: the
 * caller appends the body itself, unless flags has TALLY_RESP_HEAD. */
void tally_response_head(tally_buf_t *out, const tally_resp_ctx_t *ctx, int status,
                         const char *content_type, size_t body_len, unsigned flags);

/* Any other answer: status with its reason phrase, a body of content_type
 * (NULL: application/json), and extra header lines (each ending in CRLF, or
 * NULL). */
void tally_response_write(tally_buf_t *out, const tally_resp_ctx_t *ctx, int status,
                          const char *content_type, const char *extra_headers, const char *body,
                          size_t body_len, unsigned flags);

/* A JSON error answer {"error":"<what>"} (what is escaped), e.g. 400, 413,
 * 431, 503 (with Retry-After: 1), 401 (with WWW-Authenticate: Bearer); a 405
 * carries "Allow: <allow>" (allow: the methods the route takes, "GET, HEAD"). */
void tally_response_error(tally_buf_t *out, const tally_resp_ctx_t *ctx, int status,
                          const char *what, const char *allow, unsigned flags);

/* Reason phrase of a status code ("Not Found"). */
const char *tally_http_reason(int status);

#endif

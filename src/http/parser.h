/* parser.h - an HTTP/1.x request parser for one connection, on llhttp.
 *
 * tally needs little from a request: method, route, version, keep-alive and
 * (for a route that asks for it) whether the Authorization header holds the
 * admin token. The parser knows no route: it hands the path to the
 * classify() hook it is configured with, which names the route by a small
 * number and says whether that route wants the token matched.
 * All of it is extracted while llhttp streams the bytes, so a connection
 * keeps no copy of its input: the read buffer is the worker's and is reused
 * for the next connection as soon as a read has been parsed.
 *
 * Limits are enforced here: request line + headers over max_header_size
 * (431), a body over max_body_size (413), versions other than 1.0/1.1
 * (505), anything llhttp rejects (400). After an error the parser stays in
 * error until tally_http_init() again; the connection answers and closes.
 */
#ifndef TALLY_HTTP_H
#define TALLY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llhttp.h"

/* The longest path a route may have; longer paths reach no route
 * (classify() is not asked). */
#define TALLY_HTTP_PATH_MAX 16

typedef struct tally_http_request {
    uint8_t method; /* llhttp_method_t */
    uint8_t minor;  /* HTTP/1.minor */
    bool keep_alive;
    bool auth_ok;  /* Authorization: Bearer <admin token>, compared in constant time,
                      for a route classify() said wants it */
    uint8_t route; /* classify()'s answer; 0 when the path is longer than
                      TALLY_HTTP_PATH_MAX */
} tally_http_request_t;

/* Called once per complete request, in order. Return 0 to go on, or 1 to
 * pause the parser after this request (tally_http_feed() then returns
 * TALLY_HTTP_PAUSED and reports how much it consumed). */
typedef int (*tally_http_request_cb)(void *owner, const tally_http_request_t *req);

/* Names the route of path[0..len) (origin-form, query string removed, len
 * <= TALLY_HTTP_PATH_MAX) as a number the request carries; sets
 * *wants_auth when the route's requests need their Authorization header
 * matched. Called once per request, when its target has been read. */
typedef uint8_t (*tally_http_classify_cb)(void *ctx, const char *path, size_t len,
                                          bool *wants_auth);

/* Shared, read-only after setup: one per worker. */
typedef struct tally_http_config {
    llhttp_settings_t settings; /* filled by tally_http_config_init */
    size_t max_header_size;
    uint64_t max_body_size;
    const char *auth_expect; /* "Bearer <token>", or NULL: no token configured */
    size_t auth_expect_len;
    tally_http_request_cb on_request;
    tally_http_classify_cb classify;
    void *classify_ctx;
} tally_http_config_t;

/* admin_token NULL: no route's Authorization is matched (auth_ok stays
 * false). Returns 0, or -ENOMEM. */
int tally_http_config_init(tally_http_config_t *hc, size_t max_header_size, uint64_t max_body_size,
                           const char *admin_token, tally_http_request_cb on_request,
                           tally_http_classify_cb classify, void *classify_ctx);
void tally_http_config_free(tally_http_config_t *hc);

typedef struct tally_http {
    llhttp_t parser;
    const tally_http_config_t *cfg;
    void *owner;
    uint32_t header_bytes;
    uint64_t body_bytes;
    uint16_t auth_pos;
    uint8_t auth_diff;
    uint8_t auth_count;
    uint8_t path_len; /* TALLY_HTTP_PATH_MAX + 1 means "too long" */
    uint8_t field_len;
    bool in_path; /* still reading the path (before '?' or '#') */
    bool url_started;
    bool absolute;       /* absolute-form target: the path follows scheme://authority */
    uint8_t url_slashes; /* slashes seen in an absolute-form target, up to 3 */
    uint8_t host_count;  /* Host headers seen */
    bool field_is_auth;
    bool want_auth;            /* classify() asked, a token is configured: match Authorization */
    uint8_t route;             /* classify()'s answer for this request */
    bool in_message;           /* a request has begun and not completed */
    uint32_t messages;         /* requests begun so far */
    const char *value_end;     /* where this header's last value span ended, in this input */
    bool value_started;        /* this header's value has had a span */
    bool value_carries;        /* ...that ran to the end of the previous input */
    const char *field_end;     /* where this header's name ended, in this input */
    bool before_value;         /* between a header's name and its value's first byte */
    bool lf_before_value;      /* ...with a line break in an earlier input */
    const char *feed_start;    /* the input of the current tally_http_feed() */
    const char *prev_feed_end; /* the end of the previous one's */
    uint16_t error_status;
    const char *error_detail; /* static text */
    char path[TALLY_HTTP_PATH_MAX];
    char field[16];
} tally_http_t;

typedef enum {
    TALLY_HTTP_OK = 0,  /* all input consumed */
    TALLY_HTTP_PAUSED,  /* the callback asked to pause; *consumed tells where */
    TALLY_HTTP_UPGRADE, /* an Upgrade/CONNECT request ended the HTTP stream */
    TALLY_HTTP_ERROR,   /* h->error_status and h->error_detail say why */
} tally_http_result_t;

void tally_http_init(tally_http_t *h, const tally_http_config_t *cfg, void *owner);

/* Parses data[0..len). *consumed is set to the bytes consumed (all of them
 * unless PAUSED). After PAUSED, call again with the rest. */
tally_http_result_t tally_http_feed(tally_http_t *h, const char *data, size_t len,
                                    size_t *consumed);

#endif

/* parser.c - llhttp callbacks that extract what tally needs; see parser.h. */
#include "http/parser.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bytes a line costs beyond its spans, counted so that --max-header-size
 * bounds the bytes a client sends, not just their payload: a header line's
 * ": " and CRLF; a request line's two spaces, "HTTP/" and CRLF. */
#define LINE_OVERHEAD         4
#define REQUEST_LINE_OVERHEAD 9

static tally_http_t *H(llhttp_t *p)
{
    return (tally_http_t *)p->data;
}

static int fail(tally_http_t *h, uint16_t status, const char *detail)
{
    h->error_status = status;
    h->error_detail = detail;
    return HPE_USER;
}

static int count_header_bytes(tally_http_t *h, size_t n)
{
    h->header_bytes += (uint32_t)n;
    if (h->header_bytes > h->cfg->max_header_size)
        return fail(h, 431, "request line and headers too large");
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    tally_http_t *h = H(p);
    h->in_message = true;
    h->messages++;
    h->header_bytes = 0;
    h->body_bytes = 0;
    h->auth_pos = 0;
    h->auth_diff = 0;
    h->auth_count = 0;
    h->path_len = 0;
    h->in_path = true;
    h->url_started = false;
    h->absolute = false;
    h->url_slashes = 0;
    h->host_count = 0;
    h->field_len = 0;
    h->field_is_auth = false;
    h->want_auth = false;
    h->route = 0;
    return 0;
}

static int on_span(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return count_header_bytes(H(p), len);
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    tally_http_t *h = H(p);
    if (count_header_bytes(h, len) != 0)
        return HPE_USER;
    /* llhttp's URL table lets tab and form feed through; RFC 9112 does not. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)at[i];
        if (c <= 0x20 || c == 0x7F)
            return fail(h, 400, "control character in the request target");
    }
    for (size_t i = 0; i < len && h->in_path; i++) {
        char c = at[i];
        if (!h->url_started) {
            h->url_started = true;
            h->absolute = c != '/';
        }
        if (h->absolute && h->url_slashes < 3) {
            /* absolute-form, "http://host:port/path": the path starts at
             * the third slash; RFC 9112 requires accepting it */
            if (c == '?' || c == '#')
                h->in_path = false;
            else if (c == '/' && ++h->url_slashes == 3)
                h->path[h->path_len++] = c;
            continue;
        }
        if (c == '?' || c == '#')
            h->in_path = false;
        else if (h->path_len < TALLY_HTTP_PATH_MAX)
            h->path[h->path_len++] = c;
        else
            h->path_len = TALLY_HTTP_PATH_MAX + 1; /* no route is this long */
    }
    return 0;
}

static int on_line_complete(llhttp_t *p)
{
    return count_header_bytes(H(p), LINE_OVERHEAD) ? -1 : 0;
}

static int on_url_complete(llhttp_t *p)
{
    tally_http_t *h = H(p);
    if (h->absolute && h->url_slashes == 2 && h->path_len == 0)
        h->path[h->path_len++] = '/'; /* "http://host" names the root */
    /* Only a route that asks reads a header (Authorization): other requests
     * skip the matching of header names. */
    bool wants_auth = false;
    h->route = h->path_len <= TALLY_HTTP_PATH_MAX
                   ? h->cfg->classify(h->cfg->classify_ctx, h->path, h->path_len, &wants_auth)
                   : 0;
    h->want_auth = wants_auth && h->cfg->auth_expect != NULL;
    return count_header_bytes(h, REQUEST_LINE_OVERHEAD) ? -1 : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    tally_http_t *h = H(p);
    if (count_header_bytes(h, len) != 0)
        return HPE_USER;
    /* llhttp 8 lets "Host : x" and "X Y: z" through; RFC 9112 says 400. */
    if (memchr(at, ' ', len) != NULL || memchr(at, '\t', len) != NULL)
        return fail(h, 400, "whitespace in a header name");
    h->field_end = at + len;
    /* Keep the first bytes of the name: enough to tell Host and
     * Authorization apart from the rest. */
    if (h->field_len + len <= sizeof h->field) {
        memcpy(h->field + h->field_len, at, len);
        h->field_len = (uint8_t)(h->field_len + len);
    } else {
        h->field_len = sizeof h->field + 1; /* longer than any name we match */
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    tally_http_t *h = H(p);
    h->field_is_auth =
        h->want_auth && h->field_len == 13 && strncasecmp(h->field, "authorization", 13) == 0;
    h->before_value = true;
    h->lf_before_value = false;
    if (h->field_len == 4 && strncasecmp(h->field, "host", 4) == 0 && h->host_count < UINT8_MAX)
        h->host_count++;
    h->field_len = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    tally_http_t *h = H(p);
    if (count_header_bytes(h, len) != 0)
        return HPE_USER;
    if (len == 0)
        return 0;
    /* A value that starts on a continuation line ("X:\r\n value") is a fold
     * too: look for a line break between the name and the value's first
     * byte (it may have arrived in an earlier input: lf_before_value). */
    if (h->before_value) {
        const char *from = h->field_end ? h->field_end : h->feed_start;
        if (h->lf_before_value || (from <= at && memchr(from, '\n', (size_t)(at - from))))
            return fail(h, 400, "obsolete line folding in a header");
        h->before_value = false;
    }
    /* llhttp accepts obs-fold (a value continued on an indented line) and
     * reports the continuation as one more span of the same value, with the
     * CRLF skipped between them. RFC 9112 lets a server reject it, and
     * smuggling attacks use it: refuse any further span of a value that
     * does not continue the previous one byte for byte, either in the same
     * read or, when the previous read ended inside the value, at the start
     * of this one. */
    if (h->value_started) {
        bool contiguous =
            h->value_end ? at == h->value_end : h->value_carries && at == h->feed_start;
        if (!contiguous)
            return fail(h, 400, "obsolete line folding in a header");
    }
    h->value_started = true;
    h->value_end = at + len;
    if (!h->field_is_auth)
        return 0;
    /* Streamed constant-time comparison with "Bearer <token>": every byte
     * costs the same whether it matches or not; the scheme is
     * case-insensitive (RFC 9110), the token is not. */
    const char *exp = h->cfg->auth_expect;
    size_t exp_len = h->cfg->auth_expect_len;
    for (size_t i = 0; i < len; i++) {
        size_t pos = h->auth_pos;
        unsigned char c = (unsigned char)at[i];
        unsigned char e = exp && pos < exp_len ? (unsigned char)exp[pos] : 0;
        if (pos < 6) {
            c |= (unsigned char)((c >= 'A' && c <= 'Z') << 5);
            e |= (unsigned char)((e >= 'A' && e <= 'Z') << 5);
        }
        h->auth_diff |= (uint8_t)((c ^ e) | (pos >= exp_len));
        if (h->auth_pos < UINT16_MAX)
            h->auth_pos++;
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    tally_http_t *h = H(p);
    h->value_end = NULL;
    h->value_started = false;
    h->before_value = false;
    if (h->field_is_auth && h->auth_count < UINT8_MAX)
        h->auth_count++;
    h->field_is_auth = false;
    return on_line_complete(p);
}

static int on_headers_complete(llhttp_t *p)
{
    tally_http_t *h = H(p);
    if (p->http_major != 1 || p->http_minor > 1) {
        fail(h, 505, "only HTTP/1.0 and HTTP/1.1 are served");
        return -1;
    }
    /* RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host; none or
     * several is a 400. HTTP/1.0 may omit it. */
    if (h->host_count > 1 || (p->http_minor == 1 && h->host_count == 0)) {
        fail(h, 400, h->host_count ? "more than one Host header" : "missing Host header");
        return -1;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > h->cfg->max_body_size) {
        fail(h, 413, "request body too large");
        return -1;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    tally_http_t *h = H(p);
    h->body_bytes += len;
    if (h->body_bytes > h->cfg->max_body_size)
        return fail(h, 413, "request body too large");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    tally_http_t *h = H(p);
    tally_http_request_t req;
    req.method = p->method;
    req.minor = p->http_minor;
    req.keep_alive = llhttp_should_keep_alive(p) != 0;
    req.route = h->route;
    req.auth_ok = h->want_auth && h->auth_count == 1 && h->auth_pos == h->cfg->auth_expect_len &&
                  h->auth_diff == 0;
    h->in_message = false;
    return h->cfg->on_request(h->owner, &req) ? HPE_PAUSED : 0;
}

int tally_http_config_init(tally_http_config_t *hc, size_t max_header_size, uint64_t max_body_size,
                           const char *admin_token, tally_http_request_cb on_request,
                           tally_http_classify_cb classify, void *classify_ctx)
{
    memset(hc, 0, sizeof *hc);
    llhttp_settings_t *s = &hc->settings;
    llhttp_settings_init(s);
    s->on_message_begin = on_message_begin;
    s->on_method = on_span;
    s->on_url = on_url;
    s->on_url_complete = on_url_complete;
    s->on_version = on_span;
    s->on_header_field = on_header_field;
    s->on_header_field_complete = on_header_field_complete;
    s->on_header_value = on_header_value;
    s->on_header_value_complete = on_header_value_complete;
    s->on_headers_complete = on_headers_complete;
    s->on_body = on_body;
    s->on_message_complete = on_message_complete;
    hc->max_header_size = max_header_size;
    hc->max_body_size = max_body_size;
    hc->on_request = on_request;
    hc->classify = classify;
    hc->classify_ctx = classify_ctx;
    if (admin_token) {
        size_t n = strlen(admin_token);
        char *e = malloc(7 + n + 1);
        if (e == NULL)
            return -ENOMEM;
        memcpy(e, "Bearer ", 7);
        memcpy(e + 7, admin_token, n + 1);
        hc->auth_expect = e;
        hc->auth_expect_len = 7 + n;
    }
    return 0;
}

void tally_http_config_free(tally_http_config_t *hc)
{
    free((char *)hc->auth_expect);
    hc->auth_expect = NULL;
}

void tally_http_init(tally_http_t *h, const tally_http_config_t *cfg, void *owner)
{
    memset(h, 0, sizeof *h);
    llhttp_init(&h->parser, HTTP_REQUEST, &cfg->settings);
    h->parser.data = h;
    h->cfg = cfg;
    h->owner = owner;
}

tally_http_result_t tally_http_feed(tally_http_t *h, const char *data, size_t len, size_t *consumed)
{
    /* Did the last value span reach the end of the previous input? Then a
     * span at the start of this input continues it. */
    h->value_carries = h->value_end != NULL && h->value_end == h->prev_feed_end;
    h->value_end = NULL;
    h->field_end = NULL;
    h->feed_start = data;
    llhttp_errno_t e = llhttp_execute(&h->parser, data, len);
    h->prev_feed_end = data + len;
    if (h->before_value && !h->lf_before_value) {
        /* the input ended between a header's name and its value */
        const char *from = h->field_end ? h->field_end : data;
        h->lf_before_value = memchr(from, '\n', (size_t)(data + len - from)) != NULL;
    }
    /* "GET /\r\n" is an HTTP/0.9 request to llhttp, which then waits for
     * headers that such a client never sends: refuse it at once. Whatever
     * error the bytes after its line met, the answer is the one a read
     * ending at the line's end gets, so it does not depend on the split. */
    if (h->in_message && h->parser.http_major == 0 && h->parser.http_minor == 9) {
        fail(h, 505, "only HTTP/1.0 and HTTP/1.1 are served");
        *consumed = len;
        return TALLY_HTTP_ERROR;
    }
    switch (e) {
    case HPE_OK:
        *consumed = len;
        return TALLY_HTTP_OK;
    case HPE_PAUSED:
        *consumed = (size_t)(llhttp_get_error_pos(&h->parser) - data);
        llhttp_resume(&h->parser);
        return TALLY_HTTP_PAUSED;
    case HPE_INVALID_VERSION: {
        /* llhttp checks the version as soon as it has read "HTTP/D.D", before
         * the byte after it: a well-formed version it does not serve
         * ("HTTP/1.2") fails with this reason, whatever follows and wherever
         * the read ended: 505. Anything else is malformed ("HTTP/1.x", a NUL
         * byte, "HTTP/12.0"): 400. */
        const char *reason = llhttp_get_error_reason(&h->parser);
        *consumed = len;
        if (h->error_status == 0) {
            if (reason && strcmp(reason, "Invalid HTTP version") == 0)
                fail(h, 505, "only HTTP/1.0 and HTTP/1.1 are served");
            else
                fail(h, 400, "malformed HTTP version");
        }
        return TALLY_HTTP_ERROR;
    }
    case HPE_PAUSED_UPGRADE:
        *consumed = len;
        return TALLY_HTTP_UPGRADE;
    default:
        *consumed = len;
        if (h->error_status == 0) {
            h->error_status = 400;
            h->error_detail = llhttp_get_error_reason(&h->parser);
            if (h->error_detail == NULL)
                h->error_detail = llhttp_errno_name(e);
        }
        return TALLY_HTTP_ERROR;
    }
}

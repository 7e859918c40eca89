/* conn.c - client connections: reading, parsing, one ring slot per
 * request, and the pump; see conn.h. Writing answers is conn_write.c's,
 * accepting and closing conn_life.c's. */
#include "server/conn.h"

#include <stdlib.h>
#include <string.h>

#include "server/conn_internal.h"
#include "base/log.h"

void tally_conn_tlist_set(tally_conn_t *c, int which, uint64_t timeout_ms)
{
    tally_worker_t *w = c->w;
    if (c->tlist != TALLY_TLIST_NONE)
        tally_list_remove(&c->tnode);
    c->tlist = (uint8_t)which;
    if (which == TALLY_TLIST_NONE)
        return;
    /* Every connection in a list has the same timeout, so appending keeps
     * each list in deadline order and the sweep only looks at heads. */
    c->deadline = uv_now(&w->loop) + timeout_ms;
    tally_list_t *l = which == TALLY_TLIST_HEADER ? &w->header_list
                      : which == TALLY_TLIST_IDLE ? &w->idle_list
                                                  : &w->linger_list;
    tally_list_push_tail(l, &c->tnode);
}

static void update_timeout(tally_conn_t *c)
{
    const tally_config_t *cfg = c->w->server->cfg;
    if (c->closed)
        tally_conn_tlist_set(c, TALLY_TLIST_NONE, 0);
    else if (c->lingering)
        return; /* filed once, when the linger began */
    else if (c->wr)
        tally_conn_tlist_set(c, TALLY_TLIST_IDLE, cfg->idle_timeout_ms); /* the client must read */
    else if (c->close_after || c->saved)
        tally_conn_tlist_set(c, TALLY_TLIST_NONE, 0); /* waiting for our own answers */
    else if (c->http.in_message) {
        /* The deadline runs from each request's first bytes, however slowly
         * the rest trickles in. */
        if (c->tlist != TALLY_TLIST_HEADER || c->deadline_msg != c->http.messages) {
            tally_conn_tlist_set(c, TALLY_TLIST_HEADER, cfg->header_timeout_ms);
            c->deadline_msg = c->http.messages;
        }
    } else if (c->count > 0)
        tally_conn_tlist_set(c, TALLY_TLIST_NONE, 0); /* the backend has timeouts of its own */
    else
        tally_conn_tlist_set(c, TALLY_TLIST_IDLE, cfg->idle_timeout_ms);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    tally_conn_t *c = (tally_conn_t *)h;
    /* One buffer per worker: a read is parsed completely before the next
     * read of any connection of this loop happens. */
    *buf = uv_buf_init(c->w->readbuf, TALLY_READ_BUF);
}

static tally_slot_t *slot_push(tally_conn_t *c)
{
    tally_slot_t *s = &c->slots[(c->head + c->count) % TALLY_CONN_SLOTS];
    c->count++;
    memset(s, 0, sizeof *s);
    s->conn = c;
    return s;
}

static void push_error(tally_conn_t *c, int status, const char *detail)
{
    tally_slot_t *s = slot_push(c);
    /* Errors also come from timers (408), outside the iteration's reads:
     * their own stamp, not the shared read_us. Rare, so a clock read each. */
    s->t0_us = uv_hrtime() / 1000;
    s->kind = SLOT_ERROR;
    s->status = (uint16_t)status;
    s->detail = detail;
    s->flags = TALLY_RESP_CLOSE;
    s->route = TALLY_ROUTE_UNKNOWN;
    s->ready = true;
    c->close_after = true;
    c->unread = true;
    if (tally_log_enabled(TALLY_LOG_DEBUG))
        tally_logf(TALLY_LOG_DEBUG, "serve", "answering %d and closing: %s", status, detail);
}

/* A claim or reset of c has its answer: write it, or finish closing. */
static void slot_settled(tally_conn_t *c)
{
    c->pending--;
    if (c->closed) {
        if (c->pending == 0)
            tally_conn_release(c);
        return;
    }
    tally_conn_mark_dirty(c);
}

static void on_claim_settled(tally_claim_t *cl, tally_claim_status_t st, int64_t number)
{
    tally_slot_t *s = tally_container_of(cl, tally_slot_t, claim);
    tally_conn_t *c = s->conn;
    tally_worker_t *w = c->w;
    s->ready = true;
    s->number = number;
    if (st != TALLY_CLAIM_OK) {
        s->status = 503;
        tally_stat_add(&w->stats.claims_failed);
    } else if (number > 0) {
        s->status = 200;
        tally_stat_add(&w->stats.claims_granted);
        if (tally_log_enabled(TALLY_LOG_INFO)) {
            char msg[32] = "Request #";
            size_t n = 9 + tally_u64_to_dec(msg + 9, (uint64_t)number);
            tally_log(TALLY_LOG_INFO, "claim", number, msg, n);
        }
    } else {
        s->status = 200;
        tally_stat_add(&w->stats.claims_capped);
        if (tally_log_enabled(TALLY_LOG_WARNING))
            tally_log(TALLY_LOG_WARNING, "claim", -1, w->capped_msg, w->capped_len);
    }
    slot_settled(c);
}

static void on_reset_done(void *arg, bool ok)
{
    tally_slot_t *s = arg;
    tally_conn_t *c = s->conn;
    s->ready = true;
    s->status = ok ? 200 : 503;
    if (ok)
        tally_logf(TALLY_LOG_WARNING, "reset", "counter reset to 0 by POST /reset");
    slot_settled(c);
}

int tally_conn_on_request(void *owner, const tally_http_request_t *req)
{
    tally_conn_t *c = owner;
    tally_worker_t *w = c->w;
    tally_slot_t *s = slot_push(c);
    s->route = (uint8_t)req->route;
    if (w->read_us == 0)
        w->read_us = uv_hrtime() / 1000;
    s->t0_us = w->read_us;
    if (req->method == HTTP_HEAD)
        s->flags |= TALLY_RESP_HEAD;
    if (!req->keep_alive || w->draining) {
        s->flags |= TALLY_RESP_CLOSE;
        c->close_after = true;
    } else if (req->minor == 0) {
        s->flags |= TALLY_RESP_KEEPALIVE; /* HTTP/1.0 asked for it: say yes, or ab -k hangs */
    }

    if (req->route == TALLY_ROUTE_UNKNOWN) {
        s->kind = SLOT_ERROR;
        s->status = 404;
        s->detail = "not found";
        s->ready = true;
    } else if (!tally_route_allows(req->route, req->method)) {
        s->kind = SLOT_ERROR;
        s->status = 405;
        s->detail = "method not allowed";
        s->ready = true;
    } else {
        switch (req->route) {
        case TALLY_ROUTE_ROOT:
            s->kind = SLOT_ROOT;
            s->claim.settled = on_claim_settled;
            c->pending++;
            tally_worker_claim(w, &s->claim);
            break;
        case TALLY_ROUTE_HEALTHZ:
            s->kind = SLOT_HEALTHZ;
            s->ready = true;
            break;
        case TALLY_ROUTE_READYZ:
            s->kind = SLOT_READYZ;
            s->ready = true;
            break;
        case TALLY_ROUTE_METRICS:
            s->kind = SLOT_METRICS;
            s->ready = true;
            break;
        default: /* TALLY_ROUTE_RESET */
            s->kind = SLOT_RESET;
            if (w->server->cfg->admin_token == NULL) {
                s->status = 404;
                s->ready = true;
            } else if (!req->auth_ok) {
                s->status = 401;
                s->ready = true;
                tally_logf(TALLY_LOG_WARNING, "reset",
                           "POST /reset refused: wrong or missing token");
            } else {
                c->pending++;
                w->counter->ops->reset(w->counter, on_reset_done, s);
            }
            break;
        }
    }
    return c->close_after || c->count == TALLY_CONN_SLOTS;
}

/* Parses data[0..len); returns how many bytes were consumed. Stops early
 * when the ring is full (the caller keeps the rest) or the connection is
 * to close (the rest is dropped). */
static size_t conn_parse(tally_conn_t *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && !c->close_after && c->count < TALLY_CONN_SLOTS) {
        size_t used = 0;
        tally_http_result_t r = tally_http_feed(&c->http, data + off, len - off, &used);
        off += used;
        if (r == TALLY_HTTP_OK || r == TALLY_HTTP_PAUSED)
            continue;
        if (r == TALLY_HTTP_UPGRADE) {
            /* tally speaks no other protocol: answer the request, then close. */
            if (c->count > 0)
                c->slots[(c->head + c->count - 1) % TALLY_CONN_SLOTS].flags |= TALLY_RESP_CLOSE;
            c->close_after = true;
            c->unread = true;
        } else {
            push_error(c, c->http.error_status, c->http.error_detail);
        }
        return len;
    }
    if (c->close_after && off < len) {
        c->unread = true;
        return len;
    }
    return off;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tally_conn_t *c = (tally_conn_t *)stream;
    if (c->closed)
        return;
    if (nread > 0) {
        if (c->lingering)
            return; /* discarding what the client still sends */
        if (c->saved) {
            /* Only when libuv read more in the same event before the stop
             * below took effect: keep the order, append. */
            size_t n = c->saved_len + (size_t)nread;
            char *p = realloc(c->saved, n);
            if (p == NULL || n > UINT32_MAX) {
                free(p ? p : c->saved);
                c->saved = NULL;
                tally_conn_close(c);
                return;
            }
            memcpy(p + c->saved_len, buf->base, (size_t)nread);
            c->saved = p;
            c->saved_len = (uint32_t)n;
            tally_conn_mark_dirty(c);
            return;
        }
        size_t used = conn_parse(c, buf->base, (size_t)nread);
        if (used < (size_t)nread) {
            size_t rest = (size_t)nread - used;
            c->saved = malloc(rest);
            if (c->saved == NULL) {
                tally_conn_close(c);
                return;
            }
            memcpy(c->saved, buf->base + used, rest);
            c->saved_len = (uint32_t)rest;
            c->saved_off = 0;
            /* The ring is full: read no more until answers free it. libuv
             * keeps reading in this event unless told at once. */
            uv_read_stop(stream);
            c->reading = false;
        }
        tally_conn_mark_dirty(c);
    } else if (nread == UV_EOF) {
        c->eof = true;
        c->reading = false; /* libuv stops reading at EOF */
        if (c->lingering) {
            tally_conn_close(c);
            return;
        }
        /* A half-close: answer the requests that arrived whole, then close
         * (a partial one never will be). */
        c->close_after = true;
        tally_conn_mark_dirty(c);
    } else if (nread < 0) {
        tally_conn_close(c);
    }
}

int tally_conn_read_start(tally_conn_t *c)
{
    int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (err == 0)
        c->reading = true;
    return err;
}

void tally_conn_update_reading(tally_conn_t *c)
{
    bool want = !c->closed && !c->eof &&
                (c->lingering || (!c->close_after && c->saved == NULL && c->wr == NULL));
    if (want == c->reading)
        return;
    if (want) {
        tally_conn_read_start(c);
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

void tally_conn_pump(tally_conn_t *c)
{
    for (;;) {
        if (c->closed || c->lingering)
            return;
        if (c->wr == NULL)
            tally_conn_flush(c);
        if (c->closed)
            return;
        if (c->saved && c->wr == NULL && !c->close_after && c->count < TALLY_CONN_SLOTS) {
            uint32_t left = c->saved_len - c->saved_off;
            size_t used = conn_parse(c, c->saved + c->saved_off, left);
            c->saved_off += (uint32_t)used;
            if (c->saved_off == c->saved_len || c->close_after) {
                free(c->saved);
                c->saved = NULL;
            }
            if (c->count > 0 && c->slots[c->head].ready)
                continue;
        }
        break;
    }
    if (c->wr == NULL && c->count == 0) {
        if (c->close_after) {
            tally_conn_finish(c);
            return;
        }
        if (c->w->draining && !c->http.in_message && !tally_conn_has_pending_input(c)) {
            tally_conn_close(c);
            return;
        }
    }
    tally_conn_update_reading(c);
    update_timeout(c);
}

void tally_conn_drain(tally_conn_t *c)
{
    /* Answer what is queued, the last answer with Connection: close, and
     * read no more. A request half received is let finish (its answer will
     * close); an idle connection closes at the next pump unless the client
     * has sent something already. */
    if (c->count > 0 && !c->http.in_message)
        c->close_after = true;
    tally_conn_mark_dirty(c);
}

void tally_conn_expire(tally_conn_t *c)
{
    int which = c->tlist;
    tally_conn_tlist_set(c, TALLY_TLIST_NONE, 0);
    if (which == TALLY_TLIST_HEADER && c->http.in_message && !c->close_after &&
        c->count < TALLY_CONN_SLOTS) {
        push_error(c, 408, "request not received in time");
        tally_conn_mark_dirty(c);
        return;
    }
    tally_conn_close(c);
}

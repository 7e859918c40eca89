/* conn.c - client connections; see conn.h. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "worker.h"

enum { SLOT_ROOT, SLOT_HEALTHZ, SLOT_READYZ, SLOT_METRICS, SLOT_RESET, SLOT_ERROR };

typedef struct conn_write {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} conn_write_t;

static void conn_really_close(tally_conn_t *c);

static void stat_add(_Atomic uint64_t *v)
{
    /* One writer per counter (its worker): a relaxed load and store is
     * enough and avoids a locked instruction. */
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void mark_dirty(tally_conn_t *c)
{
    if (c->dirty || c->closed)
        return;
    c->dirty = true;
    c->dirty_next = c->w->dirty;
    c->w->dirty = c;
}

static void tlist_set(tally_conn_t *c, int which, uint64_t timeout_ms)
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
        tlist_set(c, TALLY_TLIST_NONE, 0);
    else if (c->lingering)
        return; /* filed once, when the linger began */
    else if (c->wr)
        tlist_set(c, TALLY_TLIST_IDLE, cfg->idle_timeout_ms); /* the client must read */
    else if (c->close_after || c->saved)
        tlist_set(c, TALLY_TLIST_NONE, 0); /* waiting for our own answers */
    else if (c->http.in_message) {
        /* The deadline runs from each request's first bytes, however slowly
         * the rest trickles in. */
        if (c->tlist != TALLY_TLIST_HEADER || c->deadline_msg != c->http.messages) {
            tlist_set(c, TALLY_TLIST_HEADER, cfg->header_timeout_ms);
            c->deadline_msg = c->http.messages;
        }
    } else if (c->count > 0)
        tlist_set(c, TALLY_TLIST_NONE, 0); /* the backend has timeouts of its own */
    else
        tlist_set(c, TALLY_TLIST_IDLE, cfg->idle_timeout_ms);
}

static void update_reading(tally_conn_t *c);

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
            conn_really_close(c);
        return;
    }
    mark_dirty(c);
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
        stat_add(&w->stats.claims_failed);
    } else if (number > 0) {
        s->status = 200;
        stat_add(&w->stats.claims_granted);
        if (tally_log_enabled(TALLY_LOG_INFO)) {
            char msg[32] = "Request #";
            size_t n = 9 + tally_u64_to_dec(msg + 9, (uint64_t)number);
            tally_log(TALLY_LOG_INFO, "claim", number, msg, n);
        }
    } else {
        s->status = 200;
        stat_add(&w->stats.claims_capped);
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
            mark_dirty(c);
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
        mark_dirty(c);
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
        mark_dirty(c);
    } else if (nread < 0) {
        tally_conn_close(c);
    }
}

static void update_reading(tally_conn_t *c)
{
    bool want = !c->closed && !c->eof &&
                (c->lingering || (!c->close_after && c->saved == NULL && c->wr == NULL));
    if (want == c->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void serialize(tally_conn_t *c, tally_slot_t *s, tally_buf_t *out)
{
    tally_worker_t *w = c->w;
    const tally_resp_ctx_t *ctx = &w->resp;
    unsigned flags = s->flags;
    if (c->close_after && c->count == 1)
        flags |= TALLY_RESP_CLOSE; /* the last answer this connection sends */
    int status = s->status ? s->status : 200;
    switch (s->kind) {
    case SLOT_ROOT:
        if (status == 503)
            tally_response_error(out, ctx, 503, "counter backend unavailable", TALLY_ROUTE_ROOT,
                                 flags);
        else
            tally_response_root(out, ctx, s->number, flags);
        break;
    case SLOT_HEALTHZ:
        tally_response_write(out, ctx, 200, NULL, NULL, "{\"status\":\"ok\"}", 15, flags);
        break;
    case SLOT_READYZ:
        if (tally_server_ready(w->server)) {
            tally_response_write(out, ctx, 200, NULL, NULL, "{\"status\":\"ready\"}", 18, flags);
        } else {
            status = 503;
            tally_response_error(out, ctx, 503, "counter backend not connected", TALLY_ROUTE_READYZ,
                                 flags);
        }
        break;
    case SLOT_METRICS:
        tally_metrics_respond(w, out, flags);
        break;
    case SLOT_RESET:
        if (status == 200)
            tally_response_write(out, ctx, 200, NULL, NULL, "{\"reset\":true}", 14, flags);
        else
            tally_response_error(out, ctx, status,
                                 status == 404   ? "not found"
                                 : status == 401 ? "unauthorized"
                                                 : "counter backend unavailable",
                                 TALLY_ROUTE_RESET, flags);
        break;
    default:
        tally_response_error(out, ctx, status, s->detail ? s->detail : "error",
                             (tally_route_t)s->route, flags);
        break;
    }
    stat_add(&w->stats.responses[s->route][status / 100 % 6]);
    uint64_t us = w->flush_us > s->t0_us ? w->flush_us - s->t0_us : 0;
    int b = 0;
    while (b < TALLY_LATENCY_BUCKETS - 1 && us > tally_latency_bounds_us[b])
        b++;
    stat_add(&w->stats.latency[b]);
    atomic_store_explicit(&w->stats.latency_sum_us,
                          atomic_load_explicit(&w->stats.latency_sum_us, memory_order_relaxed) + us,
                          memory_order_relaxed);
}

static void on_write(uv_write_t *req, int status)
{
    conn_write_t *wr = (conn_write_t *)req;
    tally_conn_t *c = req->data;
    free(wr);
    c->wr = NULL;
    if (c->closed)
        return; /* cancelled by uv_close; the close callback frees c */
    if (status < 0) {
        tally_conn_close(c);
        return;
    }
    mark_dirty(c);
}

/* Serialises and writes the ready answers at the head of the ring. */
static void flush_ready(tally_conn_t *c)
{
    tally_buf_t *out = &c->w->out;
    out->len = 0;
    /* Restamped when requests were parsed after the stamp (a paused parser
     * resumed in this on_check), so that none is measured as 0 us. */
    if (c->count > 0 && c->slots[c->head].ready &&
        (c->w->flush_us == 0 || c->w->flush_us < c->w->read_us))
        c->w->flush_us = uv_hrtime() / 1000;
    while (c->count > 0 && c->slots[c->head].ready) {
        serialize(c, &c->slots[c->head], out);
        c->head = (uint8_t)((c->head + 1) % TALLY_CONN_SLOTS);
        c->count--;
    }
    if (out->len == 0)
        return;
    if (out->oom) {
        out->oom = 0;
        tally_conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(out->data, (unsigned)out->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)out->len)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        tally_conn_close(c);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    size_t rest = out->len - done;
    conn_write_t *wr = malloc(sizeof *wr + rest);
    if (wr == NULL) {
        tally_conn_close(c);
        return;
    }
    memcpy(wr->data, out->data + done, rest);
    wr->buf = uv_buf_init(wr->data, (unsigned)rest);
    wr->req.data = c;
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &wr->buf, 1, on_write) != 0) {
        free(wr);
        tally_conn_close(c);
        return;
    }
    c->wr = wr;
}

/* Everything is answered and the connection is to close. When input may
 * still be arriving, closing at once would make the kernel send a reset
 * that can destroy the answer in flight; half-close instead and drain the
 * input for a moment (nginx's lingering close). */
static bool has_pending_input(tally_conn_t *c);

static void finish(tally_conn_t *c)
{
    if (c->eof || (!c->unread && !has_pending_input(c))) {
        tally_conn_close(c);
        return;
    }
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || shutdown(fd, SHUT_WR) != 0) {
        tally_conn_close(c);
        return;
    }
    c->lingering = true;
    free(c->saved);
    c->saved = NULL;
    tlist_set(c, TALLY_TLIST_LINGER, TALLY_LINGER_MS);
    update_reading(c);
}

/* Whether the client has sent bytes not read yet: while draining, a
 * connection is idle only if it has not (a request sent just before
 * SIGTERM is still answered). */
static bool has_pending_input(tally_conn_t *c)
{
    uv_os_fd_t fd;
    char b;
    return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 &&
           recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

void tally_conn_pump(tally_conn_t *c)
{
    for (;;) {
        if (c->closed || c->lingering)
            return;
        if (c->wr == NULL)
            flush_ready(c);
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
            finish(c);
            return;
        }
        if (c->w->draining && !c->http.in_message && !has_pending_input(c)) {
            tally_conn_close(c);
            return;
        }
    }
    update_reading(c);
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
    mark_dirty(c);
}

void tally_conn_expire(tally_conn_t *c)
{
    int which = c->tlist;
    tlist_set(c, TALLY_TLIST_NONE, 0);
    if (which == TALLY_TLIST_HEADER && c->http.in_message && !c->close_after &&
        c->count < TALLY_CONN_SLOTS) {
        push_error(c, 408, "request not received in time");
        mark_dirty(c);
        return;
    }
    tally_conn_close(c);
}

/* Connections come and go with every request of a client without
 * keep-alive: keep a few closed ones for the next accepts. */
#define FREE_CONNS_MAX 64

static void conn_free(tally_worker_t *w, tally_conn_t *c)
{
    if (w->nfree_conns < FREE_CONNS_MAX && !w->draining) {
        c->dirty_next = w->free_conns;
        w->free_conns = c;
        w->nfree_conns++;
    } else {
        free(c);
    }
}

void tally_conn_free_cache(tally_worker_t *w)
{
    while (w->free_conns) {
        tally_conn_t *c = w->free_conns;
        w->free_conns = c->dirty_next;
        free(c);
    }
    w->nfree_conns = 0;
}

static void on_closed(uv_handle_t *h)
{
    tally_conn_t *c = (tally_conn_t *)h;
    tally_worker_t *w = c->w;
    conn_free(w, c);
    tally_worker_conn_closed(w);
}

static void conn_really_close(tally_conn_t *c)
{
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void tally_conn_close(tally_conn_t *c)
{
    if (c->closed)
        return;
    c->closed = true;
    tlist_set(c, TALLY_TLIST_NONE, 0);
    tally_list_remove(&c->all);
    free(c->saved);
    c->saved = NULL;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->pending == 0)
        conn_really_close(c);
}

/* A connection for w whose socket is yet to be attached; NULL when out of
 * memory. Counted open from here: every path ends in on_closed(). */
static tally_conn_t *conn_new(tally_worker_t *w)
{
    tally_conn_t *c = w->free_conns;
    if (c) {
        w->free_conns = c->dirty_next;
        w->nfree_conns--;
    } else if ((c = malloc(sizeof *c)) == NULL) {
        return NULL;
    }
    /* Only the fields that are not set below need zeroing; the slots are
     * cleared as they are used. */
    memset(c, 0, offsetof(tally_conn_t, slots));
    c->w = w;
    tally_list_init(&c->tnode);
    tally_list_init(&c->all);
    if (uv_tcp_init(&w->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    w->nconns++;
    atomic_fetch_add_explicit(&w->server->connections, 1, memory_order_relaxed);
    return c;
}

/* The socket is attached (attached: whether that worked): serve it, or
 * close it at once past --max-connections. */
static void conn_start(tally_conn_t *c, bool attached)
{
    tally_worker_t *w = c->w;
    unsigned open = atomic_load_explicit(&w->server->connections, memory_order_relaxed);
    if (!attached || open > w->server->cfg->max_connections) {
        if (attached)
            stat_add(&w->stats.rejected);
        c->closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    stat_add(&w->stats.accepted);
    /* TCP_NODELAY is inherited from the listener (main.c). */
    tally_http_init(&c->http, &w->http, c);
    tally_list_push_tail(&w->all_conns, &c->all);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        tally_conn_close(c);
        return;
    }
    c->reading = true;
    tlist_set(c, TALLY_TLIST_HEADER, w->server->cfg->header_timeout_ms);
}

void tally_conn_accept(tally_worker_t *w, uv_stream_t *listener)
{
    tally_conn_t *c = conn_new(w);
    if (c)
        conn_start(c, uv_accept(listener, (uv_stream_t *)&c->tcp) == 0);
}

void tally_conn_adopt(tally_worker_t *w, int fd)
{
    tally_conn_t *c = conn_new(w);
    if (c == NULL) {
        close(fd);
        return;
    }
    bool attached = uv_tcp_open(&c->tcp, fd) == 0;
    if (!attached)
        close(fd);
    conn_start(c, attached);
}

/* conn.c - client connections: accept, read, write, deadlines, the
 * lingering close and the cache of closed connections; see conn.h. */
#include "server/conn.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { TLIST_NONE = 0, TLIST_HEADER, TLIST_IDLE, TLIST_LINGER };

/* The rest of a batch of answers the socket did not take at once. */
typedef struct conn_write {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} conn_write_t;

struct tally_conn {
    uv_tcp_t tcp;
    tally_conn_ctx_t *ctx;
    tally_conn_t *dirty_next; /* in ctx->dirty, or ctx->free_conns */
    tally_list_t all;         /* in ctx->all */
    tally_list_t tnode;       /* in one of ctx's deadline lists, or self-linked */
    uint64_t deadline;
    uint32_t deadline_msg; /* the request (http.messages) the header deadline is for */
    conn_write_t *wr;      /* write in flight (slow path) or NULL */
    uint8_t tlist;
    bool dirty;
    bool reading;
    bool eof; /* the client sent FIN */
    bool lingering;
    bool closed;
    tally_pipe_t pipe; /* last: its slots are cleared as they are used */
};

/* Connections come and go with every request of a client without
 * keep-alive: keep a few closed ones for the next accepts. */
#define FREE_CONNS_MAX 64

static void conn_close(tally_conn_t *c);

static uint64_t clock_us(void)
{
    return uv_hrtime() / 1000;
}

/* Queues c for tally_conn_ctx_pump() at the end of this iteration (once). */
static void mark_dirty(tally_conn_t *c)
{
    if (c->dirty || c->closed)
        return;
    c->dirty = true;
    c->dirty_next = c->ctx->dirty;
    c->ctx->dirty = c;
}

/* Files c in deadline list `which` (TLIST_*), due timeout_ms from now;
 * TLIST_NONE takes it out of any. */
static void tlist_set(tally_conn_t *c, int which, uint64_t timeout_ms)
{
    tally_conn_ctx_t *ctx = c->ctx;
    if (c->tlist != TLIST_NONE)
        tally_list_remove(&c->tnode);
    c->tlist = (uint8_t)which;
    if (which == TLIST_NONE)
        return;
    /* Every connection in a list has the same timeout, so appending keeps
     * each list in deadline order and the sweep only looks at heads. */
    c->deadline = uv_now(ctx->loop) + timeout_ms;
    tally_list_t *l = which == TLIST_HEADER ? &ctx->header_list
                      : which == TLIST_IDLE ? &ctx->idle_list
                                            : &ctx->linger_list;
    tally_list_push_tail(l, &c->tnode);
}

static void update_timeout(tally_conn_t *c)
{
    const tally_conn_limits_t *lim = &c->ctx->limits;
    tally_pipe_t *p = &c->pipe;
    if (c->closed)
        tlist_set(c, TLIST_NONE, 0);
    else if (c->lingering)
        return; /* filed once, when the linger began */
    else if (c->wr)
        tlist_set(c, TLIST_IDLE, lim->idle_timeout_ms); /* the client must read */
    else if (p->close_after || p->saved)
        tlist_set(c, TLIST_NONE, 0); /* waiting for our own answers */
    else if (p->http.in_message) {
        /* The deadline runs from each request's first bytes, however slowly
         * the rest trickles in. */
        if (c->tlist != TLIST_HEADER || c->deadline_msg != p->http.messages) {
            tlist_set(c, TLIST_HEADER, lim->header_timeout_ms);
            c->deadline_msg = p->http.messages;
        }
    } else if (p->count > 0)
        tlist_set(c, TLIST_NONE, 0); /* the backend has timeouts of its own */
    else
        tlist_set(c, TLIST_IDLE, lim->idle_timeout_ms);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    tally_conn_t *c = (tally_conn_t *)h;
    /* One buffer per loop: a read is parsed completely before the next
     * read of any connection of this loop happens. */
    *buf = uv_buf_init(c->ctx->readbuf, TALLY_READ_BUF);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static int read_start(tally_conn_t *c)
{
    int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (err == 0)
        c->reading = true;
    return err;
}

/* Starts or stops reading as c's state asks: not while a write is in
 * flight, unparsed input is kept aside (the ring was full) or c is to
 * close; always while lingering. */
static void update_reading(tally_conn_t *c)
{
    bool want = !c->closed && !c->eof &&
                (c->lingering || (!c->pipe.close_after && c->pipe.saved == NULL && c->wr == NULL));
    if (want == c->reading)
        return;
    if (want) {
        read_start(c);
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    tally_conn_t *c = (tally_conn_t *)stream;
    if (c->closed)
        return;
    if (nread > 0) {
        if (c->lingering)
            return; /* discarding what the client still sends */
        bool kept = c->pipe.saved != NULL;
        if (tally_pipe_input(&c->pipe, buf->base, (size_t)nread) != 0) {
            conn_close(c);
            return;
        }
        if (!kept && c->pipe.saved) {
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
            conn_close(c);
            return;
        }
        /* A half-close: answer the requests that arrived whole, then close
         * (a partial one never will be). */
        tally_pipe_close_after(&c->pipe);
        mark_dirty(c);
    } else if (nread < 0) {
        conn_close(c);
    }
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
        conn_close(c);
        return;
    }
    mark_dirty(c);
}

/* Serialises the ready answers at the head of the ring and writes them.
 * Call only with no write in flight. May close c. */
static void flush(tally_conn_t *c)
{
    tally_buf_t *out = &c->ctx->out;
    out->len = 0;
    if (tally_pipe_take(&c->pipe, out) == 0)
        return;
    if (out->oom) {
        out->oom = 0;
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(out->data, (unsigned)out->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)out->len)
        return;
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    size_t rest = out->len - done;
    conn_write_t *wr = malloc(sizeof *wr + rest);
    if (wr == NULL) {
        conn_close(c);
        return;
    }
    memcpy(wr->data, out->data + done, rest);
    wr->buf = uv_buf_init(wr->data, (unsigned)rest);
    wr->req.data = c;
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &wr->buf, 1, on_write) != 0) {
        free(wr);
        conn_close(c);
        return;
    }
    c->wr = wr;
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

/* Everything is answered and c is to close. When input may still be
 * arriving, closing at once would make the kernel send a reset that can
 * destroy the answer in flight; half-close instead and drain the input for
 * a moment (nginx's lingering close). */
static void finish(tally_conn_t *c)
{
    if (c->eof || (!c->pipe.unread && !has_pending_input(c))) {
        conn_close(c);
        return;
    }
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || shutdown(fd, SHUT_WR) != 0) {
        conn_close(c);
        return;
    }
    c->lingering = true;
    tally_pipe_drop_input(&c->pipe);
    tlist_set(c, TLIST_LINGER, TALLY_LINGER_MS);
    update_reading(c);
}

static void pump(tally_conn_t *c)
{
    for (;;) {
        if (c->closed || c->lingering)
            return;
        if (c->wr == NULL)
            flush(c);
        if (c->closed)
            return;
        if (c->wr == NULL && tally_pipe_resume(&c->pipe))
            continue;
        break;
    }
    if (c->wr == NULL && c->pipe.count == 0) {
        if (c->pipe.close_after) {
            finish(c);
            return;
        }
        if (c->ctx->pipe.draining && !c->pipe.http.in_message && !has_pending_input(c)) {
            conn_close(c);
            return;
        }
    }
    update_reading(c);
    update_timeout(c);
}

void tally_conn_ctx_pump(tally_conn_ctx_t *ctx)
{
    while (ctx->dirty) {
        tally_conn_t *c = ctx->dirty;
        ctx->dirty = c->dirty_next;
        c->dirty = false;
        if (!c->closed)
            pump(c);
    }
}

static void conn_free(tally_conn_ctx_t *ctx, tally_conn_t *c)
{
    if (ctx->nfree_conns < FREE_CONNS_MAX && !ctx->pipe.draining) {
        c->dirty_next = ctx->free_conns;
        ctx->free_conns = c;
        ctx->nfree_conns++;
    } else {
        free(c);
    }
}

static void on_closed(uv_handle_t *h)
{
    tally_conn_t *c = (tally_conn_t *)h;
    tally_conn_ctx_t *ctx = c->ctx;
    conn_free(ctx, c);
    ctx->nconns--;
    atomic_fetch_sub_explicit(ctx->open, 1, memory_order_relaxed);
    if (ctx->closed)
        ctx->closed(ctx);
}

/* Closes now (idempotent); c is freed in its close callback once no
 * deferred answer points at it. */
static void conn_close(tally_conn_t *c)
{
    if (c->closed)
        return;
    c->closed = true;
    tlist_set(c, TLIST_NONE, 0);
    tally_list_remove(&c->all);
    tally_pipe_drop_input(&c->pipe);
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->pipe.pending == 0)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* The pipe's wake(): a deferred answer of c has settled. */
static void on_settled(tally_pipe_t *p)
{
    tally_conn_t *c = p->owner;
    if (c->closed) {
        if (p->pending == 0)
            uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    mark_dirty(c);
}

/* A connection whose socket is yet to be attached; NULL when out of
 * memory. Counted open from here: every path ends in on_closed(). */
static tally_conn_t *conn_new(tally_conn_ctx_t *ctx)
{
    tally_conn_t *c = ctx->free_conns;
    if (c) {
        ctx->free_conns = c->dirty_next;
        ctx->nfree_conns--;
    } else if ((c = malloc(sizeof *c)) == NULL) {
        return NULL;
    }
    memset(c, 0, offsetof(tally_conn_t, pipe));
    c->ctx = ctx;
    tally_list_init(&c->tnode);
    tally_list_init(&c->all);
    if (uv_tcp_init(ctx->loop, &c->tcp) != 0) {
        free(c);
        return NULL;
    }
    ctx->nconns++;
    atomic_fetch_add_explicit(ctx->open, 1, memory_order_relaxed);
    return c;
}

/* The socket is attached (attached: whether that worked): serve it, or
 * close it at once past the connection limit. */
static void conn_start(tally_conn_t *c, bool attached)
{
    tally_conn_ctx_t *ctx = c->ctx;
    unsigned open = atomic_load_explicit(ctx->open, memory_order_relaxed);
    if (!attached || open > ctx->limits.max_connections) {
        if (attached)
            tally_stat_add(&ctx->stats.rejected);
        c->closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    tally_stat_add(&ctx->stats.accepted);
    /* TCP_NODELAY is inherited from the listener (listen.c). */
    tally_pipe_init(&c->pipe, &ctx->pipe, c);
    tally_list_push_tail(&ctx->all, &c->all);
    if (read_start(c) != 0) {
        conn_close(c);
        return;
    }
    tlist_set(c, TLIST_HEADER, ctx->limits.header_timeout_ms);
}

void tally_conn_accept(tally_conn_ctx_t *ctx, uv_stream_t *listener)
{
    tally_conn_t *c = conn_new(ctx);
    if (c)
        conn_start(c, uv_accept(listener, (uv_stream_t *)&c->tcp) == 0);
}

void tally_conn_adopt(tally_conn_ctx_t *ctx, int fd)
{
    tally_conn_t *c = conn_new(ctx);
    if (c == NULL) {
        close(fd);
        return;
    }
    bool attached = uv_tcp_open(&c->tcp, fd) == 0;
    if (!attached)
        close(fd);
    conn_start(c, attached);
}

/* The deadline of the list c is in has passed. */
static void expire(tally_conn_t *c)
{
    int which = c->tlist;
    tlist_set(c, TLIST_NONE, 0);
    if (which == TLIST_HEADER && c->pipe.http.in_message &&
        tally_pipe_fail(&c->pipe, 408, "request not received in time")) {
        mark_dirty(c);
        return;
    }
    conn_close(c);
}

static void expire_list(tally_list_t *l, uint64_t now)
{
    while (!tally_list_empty(l)) {
        tally_conn_t *c = tally_container_of(l->next, tally_conn_t, tnode);
        if (c->deadline > now)
            break;
        expire(c);
    }
}

void tally_conn_ctx_expire(tally_conn_ctx_t *ctx, uint64_t now)
{
    expire_list(&ctx->header_list, now);
    expire_list(&ctx->idle_list, now);
    expire_list(&ctx->linger_list, now);
}

void tally_conn_ctx_drain(tally_conn_ctx_t *ctx)
{
    ctx->pipe.draining = true;
    /* Answer what is queued, the last answer with Connection: close, and
     * read no more. A request half received is let finish (its answer will
     * close); an idle connection closes at the next pump unless the client
     * has sent something already. */
    for (tally_list_t *n = ctx->all.next; n != &ctx->all; n = n->next) {
        tally_conn_t *c = tally_container_of(n, tally_conn_t, all);
        if (c->pipe.count > 0 && !c->pipe.http.in_message)
            tally_pipe_close_after(&c->pipe);
        mark_dirty(c);
    }
}

void tally_conn_ctx_close_all(tally_conn_ctx_t *ctx)
{
    while (!tally_list_empty(&ctx->all))
        conn_close(tally_container_of(ctx->all.next, tally_conn_t, all));
}

int tally_conn_ctx_init(tally_conn_ctx_t *ctx, size_t max_header_size, uint64_t max_body_size,
                        const char *admin_token, const tally_pipe_hooks_t *hooks, void *app)
{
    ctx->nconns = 0;
    ctx->dirty = NULL;
    ctx->free_conns = NULL;
    ctx->nfree_conns = 0;
    ctx->out = (tally_buf_t)TALLY_BUF_INIT;
    tally_list_init(&ctx->all);
    tally_list_init(&ctx->header_list);
    tally_list_init(&ctx->idle_list);
    tally_list_init(&ctx->linger_list);
    memset(&ctx->pipe, 0, sizeof ctx->pipe);
    ctx->pipe.clock_us = clock_us;
    ctx->pipe.wake = on_settled;
    return tally_pipe_env_init(&ctx->pipe, max_header_size, max_body_size, admin_token, hooks, app);
}

void tally_conn_ctx_free(tally_conn_ctx_t *ctx)
{
    while (ctx->free_conns) {
        tally_conn_t *c = ctx->free_conns;
        ctx->free_conns = c->dirty_next;
        free(c);
    }
    ctx->nfree_conns = 0;
    tally_buf_free(&ctx->out);
    tally_pipe_env_free(&ctx->pipe);
}

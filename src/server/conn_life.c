/* conn_life.c - a connection's birth and end: accepting (or adopting a
 * socket), closing, the lingering close, and the worker's cache of closed
 * connections; see conn.h and conn_internal.h. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/conn_internal.h"

/* Everything is answered and the connection is to close. When input may
 * still be arriving, closing at once would make the kernel send a reset
 * that can destroy the answer in flight; half-close instead and drain the
 * input for a moment (nginx's lingering close). */
void tally_conn_finish(tally_conn_t *c)
{
    if (c->eof || (!c->unread && !tally_conn_has_pending_input(c))) {
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
    tally_conn_tlist_set(c, TALLY_TLIST_LINGER, TALLY_LINGER_MS);
    tally_conn_update_reading(c);
}

/* Whether the client has sent bytes not read yet: while draining, a
 * connection is idle only if it has not (a request sent just before
 * SIGTERM is still answered). */
bool tally_conn_has_pending_input(tally_conn_t *c)
{
    uv_os_fd_t fd;
    char b;
    return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 &&
           recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
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

void tally_conn_release(tally_conn_t *c)
{
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void tally_conn_close(tally_conn_t *c)
{
    if (c->closed)
        return;
    c->closed = true;
    tally_conn_tlist_set(c, TALLY_TLIST_NONE, 0);
    tally_list_remove(&c->all);
    free(c->saved);
    c->saved = NULL;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->pending == 0)
        tally_conn_release(c);
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
            tally_stat_add(&w->stats.rejected);
        c->closed = true;
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    tally_stat_add(&w->stats.accepted);
    /* TCP_NODELAY is inherited from the listener (main.c). */
    tally_http_init(&c->http, &w->http, c);
    tally_list_push_tail(&w->all_conns, &c->all);
    if (tally_conn_read_start(c) != 0) {
        tally_conn_close(c);
        return;
    }
    tally_conn_tlist_set(c, TALLY_TLIST_HEADER, w->server->cfg->header_timeout_ms);
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

/* worker.c - a worker thread and its loop; see worker.h. */
#include "server/worker.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "server/conn.h"

/* Period of the timer that refreshes the Date header and expires
 * connections past their deadline: the precision of every timeout. */
#define TICK_MS 100
/* Log lines wait at most this long in a worker before the writer thread
 * gets them; under load a chunk fills first. Handing over fewer, larger
 * chunks saves the writer thread wake-ups and write() calls. */
#define LOG_FLUSH_MS    10
#define LOG_FLUSH_BYTES (48u << 10)

void tally_server_totals(const tally_server_t *s, tally_server_totals_t *t)
{
    t->accepted = t->rejected = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        t->accepted += tally_stat_read(&s->workers[i].conns.stats.accepted);
        t->rejected += tally_stat_read(&s->workers[i].conns.stats.rejected);
    }
    t->open = atomic_load_explicit(&((tally_server_t *)s)->connections, memory_order_relaxed);
}

static void on_log_flush(uv_timer_t *t)
{
    (void)t;
    tally_log_flush();
}

/* After the I/O callbacks of an iteration: the application sends what
 * they queued (the claims, as one batch), then every connection that has
 * output writes it. Answers settled at once (memory) make more connections
 * dirty, and writing can let a paused parser go on and queue more: repeat
 * until quiet. */
static void on_check(uv_check_t *h)
{
    tally_worker_t *w = h->data;
    for (;;) {
        w->hooks->turn(w->app);
        if (!tally_conn_ctx_dirty(&w->conns))
            break;
        tally_conn_ctx_pump(&w->conns);
    }
    tally_pipe_env_turn(&w->conns.pipe);
    size_t pending = tally_log_pending();
    if (pending >= LOG_FLUSH_BYTES)
        tally_log_flush();
    else if (pending > 0 && !uv_is_active((uv_handle_t *)&w->log_flush))
        uv_timer_start(&w->log_flush, on_log_flush, LOG_FLUSH_MS, 0);
}

static void refresh_date(tally_worker_t *w)
{
    time_t now = time(NULL);
    if (now != w->date_sec) {
        w->date_sec = now;
        tally_http_date(w->conns.pipe.resp.date, now);
    }
}

static void on_tick(uv_timer_t *t)
{
    tally_worker_t *w = t->data;
    refresh_date(w);
    tally_conn_ctx_expire(&w->conns, uv_now(&w->loop));
}

static void on_handle_closed(uv_handle_t *h)
{
    tally_worker_t *w = h->data;
    w->handles_open--;
}

static void close_handle(tally_worker_t *w, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        w->handles_open++;
        uv_close(h, on_handle_closed);
    }
}

/* Every connection has closed: close what is left, so uv_run returns. */
static void finish(tally_worker_t *w)
{
    if (w->finished)
        return;
    w->finished = true;
    close_handle(w, (uv_handle_t *)&w->listener);
    close_handle(w, (uv_handle_t *)&w->check);
    close_handle(w, (uv_handle_t *)&w->tick);
    close_handle(w, (uv_handle_t *)&w->grace);
    close_handle(w, (uv_handle_t *)&w->log_flush);
    /* The main thread may still want to wake us: close the async handle
     * under the lock tally_worker_stop() takes, so it never sends to a
     * closed handle. */
    uv_mutex_lock(&w->server->stop_mu);
    w->wakeup_closed = true;
    close_handle(w, (uv_handle_t *)&w->wakeup);
    uv_mutex_unlock(&w->server->stop_mu);
    w->hooks->stop(w->app);
}

/* The connections' closed(): the last one ends a drain. */
static void on_conn_closed(tally_conn_ctx_t *ctx)
{
    tally_worker_t *w = ctx->data;
    if (w->draining && ctx->nconns == 0)
        finish(w);
}

static void on_grace_over(uv_timer_t *t)
{
    tally_worker_t *w = t->data;
    if (w->conns.nconns > 0)
        tally_logf(TALLY_LOG_WARNING, "shutdown",
                   "shutdown grace over: closing %u connections with requests in flight",
                   w->conns.nconns);
    tally_conn_ctx_close_all(&w->conns);
}

static void on_wakeup(uv_async_t *a)
{
    tally_worker_t *w = a->data;
    int level = atomic_load(&w->stop_level);
    if (level >= 1 && !w->draining) {
        w->draining = true;
        w->conns.pipe.draining = true; /* what is adopted below closes when answered */
        /* Connections the kernel has completed but we have not accepted
         * yet would be reset with the listener: take them first. */
        uv_os_fd_t lfd;
        if (uv_fileno((uv_handle_t *)&w->listener, &lfd) == 0) {
            int fd;
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                tally_conn_adopt(&w->conns, fd);
        }
        close_handle(w, (uv_handle_t *)&w->listener);
        uv_timer_start(&w->grace, on_grace_over, w->server->params.shutdown_timeout_ms, 0);
        /* Idle connections close now; busy ones once answered. */
        tally_conn_ctx_drain(&w->conns);
    }
    if (level >= 2)
        tally_conn_ctx_close_all(&w->conns);
    if (w->draining && w->conns.nconns == 0)
        finish(w);
}

static void on_connection(uv_stream_t *listener, int status)
{
    tally_worker_t *w = listener->data;
    if (status < 0) {
        /* EMFILE and friends repeat for as long as they last: once a second */
        uint64_t now = uv_now(&w->loop);
        if (now - w->accept_error_ms >= 1000 || w->accept_error_ms == 0) {
            w->accept_error_ms = now;
            tally_logf(TALLY_LOG_ERROR, "accept", "%s: accept failed: %s", w->name,
                       uv_strerror(status));
        }
        return;
    }
    tally_conn_accept(&w->conns, listener);
}

int tally_worker_init(tally_worker_t *w, tally_server_t *server, unsigned id, int listen_fd,
                      const tally_worker_hooks_t *hooks, void *app)
{
    const tally_server_params_t *p = &server->params;
    memset(w, 0, offsetof(tally_worker_t, conns));
    w->id = id;
    snprintf(w->name, sizeof w->name, "worker-%u", id);
    w->server = server;
    w->hooks = hooks;
    w->app = app;
    w->listen_fd = listen_fd;
    w->exit_status = 0;

    int err = uv_loop_init(&w->loop);
    if (err)
        return err;
    tally_conn_ctx_t *ctx = &w->conns;
    ctx->loop = &w->loop;
    ctx->limits = p->limits;
    ctx->open = &server->connections;
    ctx->closed = on_conn_closed;
    ctx->data = w;
    err = tally_conn_ctx_init(ctx, p->max_header_size, p->max_body_size, p->admin_token,
                              hooks->pipe, app);
    if (err)
        return err;
    refresh_date(w);
    w->loop.data = w;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    uv_check_init(&w->loop, &w->check);
    w->check.data = w;
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_init(&w->loop, &w->grace);
    w->grace.data = w;
    uv_timer_init(&w->loop, &w->log_flush);
    w->log_flush.data = w;
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    return 0;
}

static void worker_main(void *arg)
{
    tally_worker_t *w = arg;
    tally_log_thread(w->name, false);
    int err = uv_tcp_open(&w->listener, w->listen_fd);
    if (err != 0)
        close(w->listen_fd); /* not libuv's yet */
    else
        err = uv_listen((uv_stream_t *)&w->listener, TALLY_LISTEN_BACKLOG, on_connection);
    if (err != 0) {
        tally_logf(TALLY_LOG_ERROR, "serve", "%s: cannot listen: %s", w->name, uv_strerror(err));
        w->exit_status = 1;
        w->draining = true;
        finish(w);
    } else {
        uv_check_start(&w->check, on_check);
        uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&w->loop);
    if (rc != 0) {
        tally_logf(TALLY_LOG_ERROR, "shutdown", "%s: loop not closed cleanly: %s", w->name,
                   uv_strerror(rc));
        w->exit_status = 1;
    }
    tally_log_thread_done();
    atomic_store(&w->exited, true);
    uv_async_send(w->server->worker_exited);
}

int tally_worker_start(tally_worker_t *w)
{
    return uv_thread_create(&w->thread, worker_main, w);
}

void tally_worker_stop(tally_worker_t *w, int level)
{
    uv_mutex_lock(&w->server->stop_mu);
    if (!w->wakeup_closed) {
        atomic_store(&w->stop_level, level);
        uv_async_send(&w->wakeup);
    }
    uv_mutex_unlock(&w->server->stop_mu);
}

void tally_worker_join(tally_worker_t *w)
{
    uv_thread_join(&w->thread);
    tally_conn_ctx_free(&w->conns);
}

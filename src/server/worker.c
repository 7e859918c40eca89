/* worker.c - a worker thread and its loop; see worker.h. */
#include "server/worker.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/conn.h"
#include "counter/remote_new.h"
#include "base/log.h"

/* Period of the timer that refreshes the Date header and expires
 * connections past their deadline: the precision of every timeout. */
#define TICK_MS 100
/* Log lines wait at most this long in a worker before the writer thread
 * gets them; under load a chunk fills first. Handing over fewer, larger
 * chunks saves the writer thread wake-ups and write() calls. */
#define LOG_FLUSH_MS    10
#define LOG_FLUSH_BYTES (48u << 10)

const uint64_t tally_latency_bounds_us[TALLY_LATENCY_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};

static void on_batch_answered(void *arg, tally_claim_status_t st, int64_t first, uint32_t granted)
{
    tally_worker_t *w = arg;
    tally_claim_t *list = w->claims_inflight;
    w->claims_inflight = NULL;
    tally_claims_settle(list, st, first, granted);
}

bool tally_server_ready(tally_server_t *s)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        if (!atomic_load_explicit(&s->workers[i].backend_up, memory_order_relaxed))
            return false;
    return true;
}

void tally_worker_claim(tally_worker_t *w, tally_claim_t *c)
{
    tally_claimq_push(&w->claims, c);
}

static void on_log_flush(uv_timer_t *t)
{
    (void)t;
    tally_log_flush();
}

/* After the I/O callbacks of an iteration: send the claims they queued to
 * the backend as one, then write every connection that has output. Claims
 * answered at once (memory) make more connections dirty, and writing can
 * let a paused parser go on and queue more claims: repeat until quiet.
 *
 * One batch at a time is in flight: claims arriving while the backend
 * answers wait for the next iteration after the answer, and go as one. The
 * busier the service, the larger the batches and the fewer the round
 * trips per request. */
static void on_check(uv_check_t *h)
{
    tally_worker_t *w = h->data;
    for (;;) {
        if (w->claims.n > 0 && w->claims_inflight == NULL && w->counter) {
            uint32_t n;
            w->claims_inflight = tally_claimq_take(&w->claims, &n);
            w->counter->ops->claim(w->counter, n, on_batch_answered, w);
        }
        if (w->dirty == NULL)
            break;
        while (w->dirty) {
            tally_conn_t *c = w->dirty;
            w->dirty = c->dirty_next;
            c->dirty = false;
            if (!c->closed)
                tally_conn_pump(c);
        }
    }
    w->read_us = w->flush_us = 0;
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
        tally_http_date(w->resp.date, now);
    }
}

static void expire_list(tally_worker_t *w, tally_list_t *l, uint64_t now)
{
    while (!tally_list_empty(l)) {
        tally_conn_t *c = tally_container_of(l->next, tally_conn_t, tnode);
        if (c->deadline > now)
            break;
        tally_conn_expire(c);
    }
    (void)w;
}

static void on_tick(uv_timer_t *t)
{
    tally_worker_t *w = t->data;
    refresh_date(w);
    uint64_t now = uv_now(&w->loop);
    expire_list(w, &w->header_list, now);
    expire_list(w, &w->idle_list, now);
    expire_list(w, &w->linger_list, now);
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

static void on_counter_closed(tally_counter_t *c)
{
    (void)c;
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
    if (w->counter) {
        tally_counter_t *c = w->counter;
        w->counter = NULL;
        c->up = NULL;
        atomic_store(&w->backend_up, false);
        c->ops->close(c, on_counter_closed);
    }
}

static void close_all_connections(tally_worker_t *w)
{
    while (!tally_list_empty(&w->all_conns)) {
        tally_conn_t *c = tally_container_of(w->all_conns.next, tally_conn_t, all);
        tally_conn_close(c);
    }
}

void tally_worker_conn_closed(tally_worker_t *w)
{
    w->nconns--;
    atomic_fetch_sub_explicit(&w->server->connections, 1, memory_order_relaxed);
    if (w->draining && w->nconns == 0)
        finish(w);
}

static void on_grace_over(uv_timer_t *t)
{
    tally_worker_t *w = t->data;
    if (w->nconns > 0)
        tally_logf(TALLY_LOG_WARNING, "shutdown",
                   "shutdown grace over: closing %u connections with requests in flight",
                   w->nconns);
    close_all_connections(w);
}

static void on_wakeup(uv_async_t *a)
{
    tally_worker_t *w = a->data;
    int level = atomic_load(&w->stop_level);
    if (level >= 1 && !w->draining) {
        w->draining = true;
        /* Connections the kernel has completed but we have not accepted
         * yet would be reset with the listener: take them first. */
        uv_os_fd_t lfd;
        if (uv_fileno((uv_handle_t *)&w->listener, &lfd) == 0) {
            int fd;
            while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                tally_conn_adopt(w, fd);
        }
        close_handle(w, (uv_handle_t *)&w->listener);
        uv_timer_start(&w->grace, on_grace_over, w->server->cfg->shutdown_timeout_ms, 0);
        /* Idle connections close now; busy ones once answered. */
        for (tally_list_t *n = w->all_conns.next; n != &w->all_conns; n = n->next)
            tally_conn_drain(tally_container_of(n, tally_conn_t, all));
    }
    if (level >= 2)
        close_all_connections(w);
    if (w->draining && w->nconns == 0)
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
    tally_conn_accept(w, listener);
}

int tally_worker_init(tally_worker_t *w, tally_server_t *server, unsigned id, int listen_fd)
{
    const tally_config_t *cfg = server->cfg;
    memset(w, 0, offsetof(tally_worker_t, readbuf));
    w->id = id;
    snprintf(w->name, sizeof w->name, "worker-%u", id);
    w->server = server;
    w->listen_fd = listen_fd;
    w->exit_status = 0;
    tally_claimq_init(&w->claims);
    tally_list_init(&w->all_conns);
    tally_list_init(&w->header_list);
    tally_list_init(&w->idle_list);
    tally_list_init(&w->linger_list);
    tally_http_config_init(&w->http, cfg->max_header_size, cfg->max_body_size, cfg->admin_token,
                           tally_conn_on_request);
    w->resp.cap = cfg->cap;
    w->resp.root_len = tally_response_root_len(cfg->cap);
    refresh_date(w);
    int n = snprintf(w->capped_msg, sizeof w->capped_msg,
                     "Received a request but we already hit %lld requests!", (long long)cfg->cap);
    w->capped_len = (size_t)n;

    int err = uv_loop_init(&w->loop);
    if (err)
        return err;
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

    if (cfg->backend == TALLY_BACKEND_MEMORY)
        w->counter = tally_counter_memory_new(&w->loop, &server->memory, cfg->cap);
    else if (cfg->backend == TALLY_BACKEND_REDIS)
        w->counter = tally_counter_redis_new(&w->loop, cfg, id);
    else
        w->counter = tally_counter_pg_new(&w->loop, cfg, id);
    if (w->counter == NULL)
        return UV_ENOMEM;
    atomic_store(&w->backend_up, w->counter->ops->ready(w->counter));
    w->counter->up = &w->backend_up;
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
    tally_conn_free_cache(w);
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
    tally_http_config_free(&w->http);
    tally_buf_free(&w->out);
    tally_buf_free(&w->scratch);
}

/* main.c - tallyd: wiring only. Configuration in, then the listeners, the
 * workers (server/) each with its application (app/), signals, exit. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "app/app.h"
#include "app/routes.h"
#include "base/log.h"
#include "config.h"
#include "server/listen.h"
#include "server/worker.h"
#include "version.h"

extern char **environ;

typedef struct app {
    tally_config_t cfg;
    tally_server_t server;
    tally_app_shared_t shared;
    tally_app_t *apps;
    tally_memory_shared_t memory;
    tally_floor_t floor; /* redis, postgres: the process's (counter/floor.h) */
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_async_t worker_exited;
    int signals;
    unsigned started; /* workers whose thread runs */
    bool stopping;
    int exit_status;
} app_t;

/* An error at start: the reason goes to the log (JSON on stdout, for the
 * log's readers) and, in plain text, to stderr (for whoever started
 * tallyd and reads their terminal). */
static void start_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void start_error(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "tallyd: %s\n", msg); /* first: the log may be slow to flush */
    tally_logf(TALLY_LOG_ERROR, "main", "%s", msg);
}

/* host as it stands before ":port": an IPv6 address in brackets. */
static const char *url_host(const char *host, char *buf, size_t size)
{
    if (strchr(host, ':') == NULL)
        return host;
    snprintf(buf, size, "[%s]", host);
    return buf;
}

static void listen_failed(const app_t *app, int err)
{
    char h[80];
    start_error("cannot listen on %s:%u: %s%s", url_host(app->cfg.host, h, sizeof h), app->cfg.port,
                strerror(-err),
                err == -EADDRINUSE ? " (another process listens there: stop it, or choose "
                                     "another --port)"
                                   : "");
}

static void stop_workers(app_t *app, int level)
{
    for (unsigned i = 0; i < app->started; i++)
        tally_worker_stop(&app->server.workers[i], level);
}

static void on_signal(uv_signal_t *h, int signum)
{
    app_t *app = h->data;
    app->signals++;
    if (app->signals == 1) {
        tally_logf(TALLY_LOG_INFO, "shutdown",
                   "%s: no longer accepting; finishing requests in flight (grace %llums)",
                   signum == SIGTERM ? "SIGTERM" : "SIGINT",
                   (unsigned long long)app->cfg.shutdown_timeout_ms);
        app->stopping = true;
        stop_workers(app, 1);
    } else {
        tally_logf(TALLY_LOG_WARNING, "shutdown", "second signal: closing every connection now");
        stop_workers(app, 2);
    }
}

static void on_worker_exited(uv_async_t *a)
{
    app_t *app = a->data;
    unsigned done = 0;
    bool failed = false;
    for (unsigned i = 0; i < app->started; i++) {
        tally_worker_t *w = &app->server.workers[i];
        if (atomic_load(&w->exited)) {
            done++;
            failed |= w->exit_status != 0;
        }
    }
    if (failed && !app->stopping) {
        app->stopping = true;
        app->exit_status = 1;
        stop_workers(app, 2);
    }
    /* A worker sets `exited` before its uv_async_send(): the last one's
     * send may come after this closes the handle. That is safe because
     * main joins every thread before closing its loop. */
    if (done == app->started) {
        uv_close((uv_handle_t *)&app->sigterm, NULL);
        uv_close((uv_handle_t *)&app->sigint, NULL);
        uv_close((uv_handle_t *)&app->worker_exited, NULL);
    }
}

int main(int argc, char **argv)
{
    static app_t app;
    char err[512];
    tally_config_defaults(&app.cfg);
    switch (tally_config_parse(&app.cfg, argc, argv, environ, err, sizeof err)) {
    case TALLY_CONFIG_HELP:
        tally_config_usage(stdout);
        tally_routes_usage(stdout);
        return 0;
    case TALLY_CONFIG_VERSION:
        printf("tallyd %s\n", TALLY_VERSION);
        return 0;
    case TALLY_CONFIG_ERROR:
        fprintf(stderr, "%s\n", err);
        return 2;
    case TALLY_CONFIG_RUN:
        break;
    }

    signal(SIGPIPE, SIG_IGN);
    tally_raise_nofile();
    unsigned nthreads = app.cfg.threads ? app.cfg.threads : tally_cpus_available();

    if (tally_log_start(app.cfg.log_level, app.cfg.log_format, STDOUT_FILENO) != 0) {
        fprintf(stderr, "tallyd: cannot start the log writer\n");
        return 1;
    }
    tally_log_thread("main", true);

    const tally_config_t *cfg = &app.cfg;
    tally_server_t *s = &app.server;
    s->params = (tally_server_params_t){
        .limits = {.header_timeout_ms = cfg->header_timeout_ms,
                   .idle_timeout_ms = cfg->idle_timeout_ms,
                   .max_connections = cfg->max_connections},
        .shutdown_timeout_ms = cfg->shutdown_timeout_ms,
        .max_header_size = cfg->max_header_size,
        .max_body_size = cfg->max_body_size,
        .admin_token = cfg->admin_token,
    };
    s->nworkers = nthreads;
    atomic_init(&app.memory.value, 0);
    if (tally_floor_init(&app.floor) != 0) {
        start_error("cannot set up the counter's floor");
        tally_log_stop();
        return 1;
    }
    atomic_init(&s->connections, 0);
    uv_mutex_init(&s->stop_mu);
    s->workers = calloc(nthreads, sizeof *s->workers);
    app.apps = calloc(nthreads, sizeof *app.apps);
    app.shared = (tally_app_shared_t){
        .cap = cfg->cap,
        .admin = cfg->admin_token != NULL,
        .backend = cfg->backend,
        .napps = nthreads,
        .apps = app.apps,
        /* the memory counter needs none: it lives and dies with the process */
        .floor = strcmp(cfg->backend, "memory") != 0 ? &app.floor : NULL,
        .server = s,
    };
    int *fds = calloc(nthreads, sizeof *fds);
    if (s->workers == NULL || app.apps == NULL || fds == NULL) {
        start_error("out of memory");
        tally_log_stop();
        return 1;
    }

    int probe = tally_port_is_free(app.cfg.host, app.cfg.port);
    if (probe < 0) {
        listen_failed(&app, probe);
        tally_log_stop();
        return 1;
    }
    for (unsigned i = 0; i < nthreads; i++) {
        fds[i] = tally_bound_socket(app.cfg.host, app.cfg.port, true);
        /* Listening from here on (the worker's uv_listen() only adopts
         * it): connections queue until the workers run, and the "serving"
         * line below is true when it is written. */
        if (fds[i] >= 0 && listen(fds[i], TALLY_LISTEN_BACKLOG) != 0) {
            int err = -errno;
            close(fds[i]);
            fds[i] = err;
        }
        if (fds[i] < 0) {
            listen_failed(&app, fds[i]);
            for (unsigned j = 0; j < i; j++)
                close(fds[j]);
            tally_log_stop();
            return 1;
        }
    }

    uv_loop_init(&app.loop);
    uv_signal_init(&app.loop, &app.sigterm);
    uv_signal_init(&app.loop, &app.sigint);
    app.sigterm.data = app.sigint.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_async_init(&app.loop, &app.worker_exited, on_worker_exited);
    app.worker_exited.data = &app;
    s->worker_exited = &app.worker_exited;

    /* Every worker is complete before any thread starts: a worker serving
     * /metrics or /readyz reads its siblings' state. An initialisation that
     * fails (out of memory) ends the process here, without closing the
     * loops already made. */
    tally_counter_params_t cp = {
        .cap = cfg->cap,
        .url = strcmp(cfg->backend, "redis") == 0 ? cfg->redis_url : cfg->database_url,
        .key = cfg->key,
        .timeout_ms = cfg->backend_timeout_ms,
        .shared = &app.memory,
        .floor = &app.floor,
    };
    for (unsigned i = 0; i < nthreads; i++) {
        tally_worker_t *w = &s->workers[i];
        char why[256];
        int rc = tally_worker_init(w, s, i + 1, fds[i], &tally_app_worker_hooks, &app.apps[i]);
        if (rc != 0) {
            start_error("cannot set up worker %u: %s", i + 1, uv_strerror(rc));
            tally_log_stop();
            return 1;
        }
        cp.worker_id = i + 1;
        rc = tally_app_init(&app.apps[i], &app.shared, i + 1, tally_worker_loop(w),
                            app.shared.backend, &cp, why, sizeof why);
        if (rc != 0) {
            start_error("cannot set up worker %u: %s", i + 1, why);
            tally_log_stop();
            return 1;
        }
    }
    free(fds);
    unsigned started = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        int rc = tally_worker_start(&s->workers[i]);
        if (rc != 0) {
            start_error("cannot start worker %u: %s", i + 1, uv_strerror(rc));
            app.exit_status = 1;
            break;
        }
        started++;
    }
    app.started = started;

    if (started == nthreads) {
        char banner[256], h[80];
        snprintf(banner, sizeof banner, "serving http://%s:%u/ (%s backend, %u thread%s, cap %lld)",
                 url_host(app.cfg.host, h, sizeof h), app.cfg.port, app.cfg.backend, nthreads,
                 nthreads == 1 ? "" : "s", (long long)app.cfg.cap);
        tally_logf(TALLY_LOG_INFO, "main", "tallyd %s %s", TALLY_VERSION, banner);
        /* Whoever started tallyd by hand with its log in a file still
         * sees that it serves. */
        if (isatty(STDERR_FILENO) && !isatty(STDOUT_FILENO))
            fprintf(stderr, "tallyd: %s; log on stdout\n", banner);
    } else {
        app.stopping = true;
        stop_workers(&app, 2);
    }
    if (started > 0)
        uv_run(&app.loop, UV_RUN_DEFAULT);

    for (unsigned i = 0; i < started; i++) {
        tally_worker_join(&s->workers[i]);
        tally_app_free(&app.apps[i]);
        if (s->workers[i].exit_status != 0)
            app.exit_status = 1;
    }
    if (started == 0) {
        uv_close((uv_handle_t *)&app.sigterm, NULL);
        uv_close((uv_handle_t *)&app.sigint, NULL);
        uv_close((uv_handle_t *)&app.worker_exited, NULL);
        uv_run(&app.loop, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&app.loop) != 0)
        app.exit_status = 1;
    uv_library_shutdown();
    tally_logf(TALLY_LOG_INFO, "shutdown", "stopped (exit status %d)", app.exit_status);
    tally_log_stop();
    tally_log_thread_done();
    free(s->workers);
    free(app.apps);
    uv_mutex_destroy(&s->stop_mu);
    return app.exit_status;
}

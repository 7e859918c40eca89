/* metrics.c - see metrics.h. */
#include "app/metrics.h"

#include <stdio.h>

#include "base/log.h"
#include "http/response.h"
#include "app/routes.h"
#include "server/worker.h"

static uint64_t rd(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void counter_line(tally_buf_t *b, const char *name, const char *labels, uint64_t v)
{
    tally_buf_str(b, name);
    if (labels) {
        tally_buf_byte(b, '{');
        tally_buf_str(b, labels);
        tally_buf_byte(b, '}');
    }
    tally_buf_byte(b, ' ');
    tally_buf_u64(b, v);
    tally_buf_byte(b, '\n');
}

static void help(tally_buf_t *b, const char *name, const char *type, const char *text)
{
    tally_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

void tally_metrics_render(tally_worker_t *self, tally_buf_t *b)
{
    tally_server_t *s = self->server;
    help(b, "tally_requests_total", "counter",
         "HTTP requests answered, by route and status class.");
    for (int r = 0; r < 6; r++) {
        for (int k = 1; k < 6; k++) {
            uint64_t sum = 0;
            for (unsigned i = 0; i < s->nworkers; i++)
                sum += rd(&s->workers[i].stats.responses[r][k]);
            if (sum == 0 && !(r == TALLY_ROUTE_ROOT && k == 2))
                continue;
            char labels[64];
            snprintf(labels, sizeof labels, "route=\"%s\",code=\"%dxx\"",
                     tally_route_name((tally_route_t)r), k);
            counter_line(b, "tally_requests_total", labels, sum);
        }
    }
    uint64_t granted = 0, capped = 0, failed = 0, accepted = 0, rejected = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        tally_worker_stats_t *st = &s->workers[i].stats;
        granted += rd(&st->claims_granted);
        capped += rd(&st->claims_capped);
        failed += rd(&st->claims_failed);
        accepted += rd(&st->accepted);
        rejected += rd(&st->rejected);
    }
    help(b, "tally_claims_total", "counter",
         "Claims for a number: granted, refused at the cap, failed (backend unavailable).");
    counter_line(b, "tally_claims_total", "outcome=\"granted\"", granted);
    counter_line(b, "tally_claims_total", "outcome=\"capped\"", capped);
    counter_line(b, "tally_claims_total", "outcome=\"failed\"", failed);

    help(b, "tally_backend_up", "gauge", "1 when the worker's counter backend is connected.");
    for (unsigned i = 0; i < s->nworkers; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "worker=\"%u\",backend=\"%s\"", s->workers[i].id,
                 tally_backend_name(s->cfg->backend));
        counter_line(b, "tally_backend_up", labels,
                     atomic_load_explicit(&s->workers[i].backend_up, memory_order_relaxed));
    }
    help(b, "tally_request_duration_seconds", "histogram",
         "Time from reading a request to writing its answer, backend round trip included.");
    uint64_t cum = 0, sum_us = 0;
    for (int k = 0; k < TALLY_LATENCY_BUCKETS; k++) {
        for (unsigned i = 0; i < s->nworkers; i++)
            cum += rd(&s->workers[i].stats.latency[k]);
        char labels[48];
        if (k < TALLY_LATENCY_BUCKETS - 1)
            snprintf(labels, sizeof labels, "le=\"%g\"", (double)tally_latency_bounds_us[k] / 1e6);
        else
            snprintf(labels, sizeof labels, "le=\"+Inf\"");
        counter_line(b, "tally_request_duration_seconds_bucket", labels, cum);
    }
    for (unsigned i = 0; i < s->nworkers; i++)
        sum_us += rd(&s->workers[i].stats.latency_sum_us);
    tally_buf_printf(b, "tally_request_duration_seconds_sum %.6f\n", (double)sum_us / 1e6);
    counter_line(b, "tally_request_duration_seconds_count", NULL, cum);
    help(b, "tally_open_connections", "gauge", "Client connections open now.");
    counter_line(b, "tally_open_connections", NULL,
                 atomic_load_explicit(&s->connections, memory_order_relaxed));
    help(b, "tally_connections_total", "counter",
         "Client connections accepted, or closed at once past --max-connections.");
    counter_line(b, "tally_connections_total", "result=\"accepted\"", accepted);
    counter_line(b, "tally_connections_total", "result=\"rejected\"", rejected);
    help(b, "tally_log_dropped_lines_total", "counter",
         "Log lines dropped because stdout did not keep up or had broken.");
    counter_line(b, "tally_log_dropped_lines_total", NULL, tally_log_dropped());
}

void tally_metrics_respond(tally_worker_t *w, tally_buf_t *out, unsigned flags)
{
    w->scratch.len = 0;
    tally_metrics_render(w, &w->scratch);
    tally_response_write(out, &w->resp, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                         w->scratch.data, w->scratch.len, flags);
}

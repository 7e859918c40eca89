/* metrics.c - see metrics.h. */
#include "app/metrics.h"

#include <stdio.h>

#include "app/app.h"
#include "app/routes.h"
#include "base/log.h"

static uint64_t rd(const tally_stat_t *v)
{
    return tally_stat_read(v);
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

void tally_metrics_render(const tally_app_shared_t *s, tally_buf_t *b)
{
    help(b, "tally_requests_total", "counter",
         "HTTP requests answered, by route and status class.");
    /* Route 0 ("other") first, then the table's; the first route's 2xx
     * line is always there, so that a scrape before any request sees it. */
    for (unsigned r = 0; r <= tally_routes_count(); r++) {
        for (int k = 1; k < 6; k++) {
            uint64_t sum = 0;
            for (unsigned i = 0; i < s->napps; i++)
                sum += rd(&s->apps[i].stats.responses[r][k]);
            if (sum == 0 && !(r == 1 && k == 2))
                continue;
            char labels[64];
            snprintf(labels, sizeof labels, "route=\"%s\",code=\"%dxx\"", tally_route_name(r), k);
            counter_line(b, "tally_requests_total", labels, sum);
        }
    }
    uint64_t granted = 0, capped = 0, failed = 0;
    for (unsigned i = 0; i < s->napps; i++) {
        const tally_app_stats_t *st = &s->apps[i].stats;
        granted += rd(&st->claims_granted);
        capped += rd(&st->claims_capped);
        failed += rd(&st->claims_failed);
    }
    tally_server_totals_t conns;
    tally_server_totals(s->server, &conns);
    help(b, "tally_claims_total", "counter",
         "Claims for a number: granted, refused at the cap, failed (backend unavailable).");
    counter_line(b, "tally_claims_total", "outcome=\"granted\"", granted);
    counter_line(b, "tally_claims_total", "outcome=\"capped\"", capped);
    counter_line(b, "tally_claims_total", "outcome=\"failed\"", failed);

    help(b, "tally_backend_up", "gauge", "1 when the worker's counter backend is connected.");
    for (unsigned i = 0; i < s->napps; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "worker=\"%u\",backend=\"%s\"", s->apps[i].id, s->backend);
        counter_line(b, "tally_backend_up", labels,
                     atomic_load_explicit(&s->apps[i].backend_up, memory_order_relaxed));
    }
    if (s->floor) {
        const tally_floor_t *f = s->floor;
        const struct {
            const char *name, *type, *text;
            const _Atomic int64_t *v;
        } floor_series[] = {
            {"tally_counter_floor", "gauge",
             "The highest counter value this process has seen its backend answer; no claim "
             "grants at or below it.",
             &f->shown},
            {"tally_counter_lost_writes_total", "counter",
             "Claims the backend answered below the floor (it had lost writes); each was raised "
             "past the floor, so nothing was granted twice.",
             &f->raises},
            {"tally_counter_lost_numbers_total", "counter",
             "Numbers those backends had forgotten (the floor minus what they had), summed; "
             "none of them was granted again.",
             &f->lost},
        };
        for (size_t i = 0; i < sizeof floor_series / sizeof floor_series[0]; i++) {
            help(b, floor_series[i].name, floor_series[i].type, floor_series[i].text);
            counter_line(b, floor_series[i].name, NULL,
                         (uint64_t)atomic_load_explicit(floor_series[i].v, memory_order_relaxed));
        }
    }
    help(b, "tally_request_duration_seconds", "histogram",
         "Time from reading a request to writing its answer, backend round trip included.");
    uint64_t cum = 0, sum_us = 0;
    for (int k = 0; k < TALLY_LATENCY_BUCKETS; k++) {
        for (unsigned i = 0; i < s->napps; i++)
            cum += rd(&s->apps[i].stats.latency[k]);
        char labels[48];
        if (k < TALLY_LATENCY_BUCKETS - 1)
            snprintf(labels, sizeof labels, "le=\"%g\"", (double)tally_latency_bounds_us[k] / 1e6);
        else
            snprintf(labels, sizeof labels, "le=\"+Inf\"");
        counter_line(b, "tally_request_duration_seconds_bucket", labels, cum);
    }
    for (unsigned i = 0; i < s->napps; i++)
        sum_us += rd(&s->apps[i].stats.latency_sum_us);
    tally_buf_printf(b, "tally_request_duration_seconds_sum %.6f\n", (double)sum_us / 1e6);
    counter_line(b, "tally_request_duration_seconds_count", NULL, cum);
    help(b, "tally_open_connections", "gauge", "Client connections open now.");
    counter_line(b, "tally_open_connections", NULL, conns.open);
    help(b, "tally_connections_total", "counter",
         "Client connections accepted, or closed at once past --max-connections.");
    counter_line(b, "tally_connections_total", "result=\"accepted\"", conns.accepted);
    counter_line(b, "tally_connections_total", "result=\"rejected\"", conns.rejected);
    help(b, "tally_log_dropped_lines_total", "counter",
         "Log lines dropped because stdout did not keep up or had broken.");
    counter_line(b, "tally_log_dropped_lines_total", NULL, tally_log_dropped());
}

/* conn_write.c - a connection's ready answers, serialised in ring order
 * into the worker's output buffer and written with one uv_try_write(); see
 * conn.h and conn_internal.h. */
#include <stdlib.h>
#include <string.h>

#include "server/conn_internal.h"
#include "app/metrics.h"

/* The rest of a batch the socket did not take at once. */
typedef struct conn_write {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} conn_write_t;

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
    tally_stat_add(&w->stats.responses[s->route][status / 100 % 6]);
    uint64_t us = w->flush_us > s->t0_us ? w->flush_us - s->t0_us : 0;
    int b = 0;
    while (b < TALLY_LATENCY_BUCKETS - 1 && us > tally_latency_bounds_us[b])
        b++;
    tally_stat_add(&w->stats.latency[b]);
    tally_stat_add_n(&w->stats.latency_sum_us, us);
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
    tally_conn_mark_dirty(c);
}

void tally_conn_flush(tally_conn_t *c)
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

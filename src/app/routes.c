/* routes.c - the route table and the routes; see routes.h. Adding a route
 * is one row below and its functions in this file. */
#include "app/routes.h"

#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "app/metrics.h"
#include "base/log.h"

#define M(m) (1u << (m)) /* a method (llhttp_method_t) in a route's method set */

/* Route flags. */
enum {
    ADMIN = 1 << 0, /* only with Authorization: Bearer <admin token>; 404 without a token */
};

typedef struct route {
    const char *path;
    unsigned methods;
    unsigned flags;
    void (*start)(tally_app_t *a, tally_slot_t *s, const tally_http_request_t *req);
    int (*write)(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an, tally_buf_t *out);
    const char *what; /* --help's line */
} route_t;

static void start_claim(tally_app_t *a, tally_slot_t *s, const tally_http_request_t *req);
static int write_claim(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                       tally_buf_t *out);
static int write_healthz(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                         tally_buf_t *out);
static int write_readyz(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                        tally_buf_t *out);
static int write_metrics(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                         tally_buf_t *out);
static void start_reset(tally_app_t *a, tally_slot_t *s, const tally_http_request_t *req);
static int write_reset(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                       tally_buf_t *out);

static const route_t routes[] = {
    /* path       methods                    flags  start        write */
    {"/", M(HTTP_GET) | M(HTTP_HEAD), 0, start_claim, write_claim,
     "the next number (\"hello\") until CAP, then \"Go away!\""},
    {"/healthz", M(HTTP_GET) | M(HTTP_HEAD), 0, NULL, write_healthz, "liveness: always 200"},
    {"/readyz", M(HTTP_GET) | M(HTTP_HEAD), 0, NULL, write_readyz,
     "readiness: 200 when the backend is connected, else 503"},
    {"/metrics", M(HTTP_GET) | M(HTTP_HEAD), 0, NULL, write_metrics, "Prometheus text format"},
    {"/reset", M(HTTP_POST), ADMIN, start_reset, write_reset,
     "counter to 0, with TALLY_ADMIN_TOKEN as a bearer token"},
};

#define NROUTES (sizeof routes / sizeof routes[0])
_Static_assert(NROUTES <= TALLY_ROUTES_MAX, "app/stats.h sizes its arrays by TALLY_ROUTES_MAX");
_Static_assert(NROUTES < 256, "route ids are a uint8_t");

unsigned tally_routes_count(void)
{
    return NROUTES;
}

static const route_t *route_of(unsigned id)
{
    return id >= 1 && id <= NROUTES ? &routes[id - 1] : NULL;
}

uint8_t tally_route_classify(void *app, const char *path, size_t len, bool *wants_auth)
{
    (void)app;
    for (unsigned i = 0; i < NROUTES; i++) {
        if (strlen(routes[i].path) == len && memcmp(routes[i].path, path, len) == 0) {
            *wants_auth = (routes[i].flags & ADMIN) != 0;
            return (uint8_t)(i + 1);
        }
    }
    *wants_auth = false;
    return 0;
}

bool tally_route_allows(unsigned id, int method)
{
    const route_t *r = route_of(id);
    return r && method >= 0 && method < 32 && (r->methods & M(method)) != 0;
}

const char *tally_route_allow(unsigned id, char *buf, size_t size)
{
    const route_t *r = route_of(id);
    size_t n = 0;
    buf[0] = '\0';
    for (int m = 0; r && m < 32; m++) {
        if (!(r->methods & M(m)))
            continue;
        const char *name = llhttp_method_name((llhttp_method_t)m);
        size_t len = strlen(name);
        if (n + len + 3 > size)
            break;
        if (n > 0) {
            memcpy(buf + n, ", ", 2);
            n += 2;
        }
        memcpy(buf + n, name, len + 1);
        n += len;
    }
    return buf;
}

void tally_routes_usage(FILE *out)
{
    char allow[64];
    fputs("\nRoutes:\n", out);
    for (unsigned id = 1; id <= NROUTES; id++) {
        char left[64];
        snprintf(left, sizeof left, "%s %s", tally_route_allow(id, allow, sizeof allow),
                 routes[id - 1].path);
        fprintf(out, "  %-28s %s\n", left, routes[id - 1].what);
    }
}

const char *tally_route_name(unsigned id)
{
    const route_t *r = route_of(id);
    return r ? r->path : "other";
}

/* The pipe's start(): 404 and 405 from the table, then the route's own. */
static void app_start(void *app, tally_slot_t *s, const tally_http_request_t *req)
{
    tally_app_t *a = app;
    const route_t *r = route_of(req->route);
    if (r == NULL)
        tally_slot_fail(s, 404, "not found");
    else if (!tally_route_allows(req->route, req->method))
        tally_slot_fail(s, 405, "method not allowed");
    else if (r->start)
        r->start(a, s, req);
}

/* The pipe's write(): errors answered alike for every route, the rest by
 * the route; every answer is counted. */
static void app_write(void *app, const tally_slot_t *s, const tally_answer_t *an, tally_buf_t *out)
{
    tally_app_t *a = app;
    int status;
    if (s->error) {
        char allow[32];
        status = s->status;
        tally_response_error(
            out, an->resp, status, s->detail ? s->detail : "error",
            status == 405 ? tally_route_allow(s->route, allow, sizeof allow) : NULL, an->flags);
    } else {
        status = route_of(s->route)->write(a, s, an, out);
    }
    tally_app_stats_answer(&a->stats, s->route, status, an->latency_us);
}

const tally_pipe_hooks_t tally_routes_hooks = {
    .classify = tally_route_classify,
    .start = app_start,
    .write = app_write,
};

/* GET / : a number, through the worker's claim batch. */

static void on_claim_settled(tally_wait_t *w, int st, int64_t number)
{
    tally_slot_t *s = tally_container_of(w, tally_slot_t, wait);
    tally_app_t *a = s->pipe->env->app;
    s->value = number;
    if (st != TALLY_CLAIM_OK) {
        s->status = 503;
        tally_stat_add(&a->stats.claims_failed);
    } else if (number > 0) {
        s->status = 200;
        tally_stat_add(&a->stats.claims_granted);
        if (tally_log_enabled(TALLY_LOG_INFO)) {
            char msg[32] = "Request #";
            size_t n = 9 + tally_u64_to_dec(msg + 9, (uint64_t)number);
            tally_log(TALLY_LOG_INFO, "claim", number, msg, n);
        }
    } else {
        s->status = 200;
        tally_stat_add(&a->stats.claims_capped);
        if (tally_log_enabled(TALLY_LOG_WARNING))
            tally_log(TALLY_LOG_WARNING, "claim", -1, a->capped_msg, a->capped_len);
    }
    tally_pipe_settle(s);
}

static void start_claim(tally_app_t *a, tally_slot_t *s, const tally_http_request_t *req)
{
    (void)req;
    s->wait.settled = on_claim_settled;
    tally_pipe_defer(s);
    tally_app_claim(a, &s->wait);
}

static size_t dec_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t tally_root_len(int64_t cap)
{
    /* {"hello":"world","request_num":N} is the longer shape: 32 + digits. */
    return 32 + dec_len((uint64_t)cap);
}

void tally_root_answer(tally_buf_t *b, const tally_resp_ctx_t *resp, int64_t cap, size_t root_len,
                       int64_t number, unsigned flags)
{
    tally_response_head(b, resp, 200, NULL, root_len, flags);
    if (flags & TALLY_RESP_HEAD)
        return;
    size_t start = b->len;
    if (number > 0) {
        tally_buf_lit(b, "{\"hello\":\"world\",\"request_num\":");
        tally_buf_i64(b, number);
    } else {
        tally_buf_lit(b, "{\"Go\":\"away!\",\"request_num\":");
        tally_buf_i64(b, cap);
    }
    if (tally_buf_reserve(b, root_len) != 0)
        return;
    size_t used = b->len - start;
    while (used + 1 < root_len) {
        b->data[b->len++] = ' ';
        used++;
    }
    b->data[b->len++] = '}';
}

static int write_claim(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                       tally_buf_t *b)
{
    if (s->status == 503) {
        tally_response_error(b, an->resp, 503, "counter backend unavailable", NULL, an->flags);
        return 503;
    }
    tally_root_answer(b, an->resp, a->shared->cap, a->root_len, s->value, an->flags);
    return 200;
}

/* GET /healthz : the process serves. */
static int write_healthz(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                         tally_buf_t *out)
{
    (void)a;
    (void)s;
    tally_response_write(out, an->resp, 200, NULL, NULL, "{\"status\":\"ok\"}", 15, an->flags);
    return 200;
}

/* GET /readyz : every worker's backend is connected. Once the backend has
 * answered below the floor (counter/floor.h), the body says how often. */
static int write_readyz(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                        tally_buf_t *out)
{
    (void)s;
    if (!tally_app_ready(a->shared)) {
        tally_response_error(out, an->resp, 503, "counter backend not connected", NULL, an->flags);
        return 503;
    }
    const tally_floor_t *f = a->shared->floor;
    int64_t lost = f ? atomic_load_explicit(&f->raises, memory_order_relaxed) : 0;
    if (lost == 0) {
        tally_response_write(out, an->resp, 200, NULL, NULL, "{\"status\":\"ready\"}", 18,
                             an->flags);
        return 200;
    }
    char body[80];
    int n =
        snprintf(body, sizeof body, "{\"status\":\"ready\",\"lost_writes\":%lld}", (long long)lost);
    tally_response_write(out, an->resp, 200, NULL, NULL, body, (size_t)n, an->flags);
    return 200;
}

/* GET /metrics : Prometheus text. */
static int write_metrics(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                         tally_buf_t *out)
{
    (void)s;
    a->scratch.len = 0;
    tally_metrics_render(a->shared, &a->scratch);
    tally_response_write(out, an->resp, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                         a->scratch.data, a->scratch.len, an->flags);
    return 200;
}

/* POST /reset : the counter to 0, with the admin token. */

static void on_reset_done(void *arg, bool ok)
{
    tally_slot_t *s = arg;
    s->status = ok ? 200 : 503;
    if (ok)
        tally_logf(TALLY_LOG_WARNING, "reset", "counter reset to 0 by POST %s",
                   tally_route_name(s->route));
    tally_pipe_settle(s);
}

static void start_reset(tally_app_t *a, tally_slot_t *s, const tally_http_request_t *req)
{
    if (!a->shared->admin) {
        tally_slot_fail(s, 404, "not found");
    } else if (!req->auth_ok) {
        tally_slot_fail(s, 401, "unauthorized");
        tally_logf(TALLY_LOG_WARNING, "reset", "POST %s refused: wrong or missing token",
                   tally_route_name(s->route));
    } else {
        tally_pipe_defer(s);
        a->counter->ops->reset(a->counter, on_reset_done, s);
    }
}

static int write_reset(tally_app_t *a, const tally_slot_t *s, const tally_answer_t *an,
                       tally_buf_t *out)
{
    (void)a;
    if (s->status == 200) {
        tally_response_write(out, an->resp, 200, NULL, NULL, "{\"reset\":true}", 14, an->flags);
        return 200;
    }
    tally_response_error(out, an->resp, 503, "counter backend unavailable", NULL, an->flags);
    return 503;
}

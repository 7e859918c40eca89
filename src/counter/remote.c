/* remote.c - state shared by the network backends; see remote.h. */
#include "counter/remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define TICK_MS        25
#define PEEK_EVERY_MS  25
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

static tally_remote_t *R(tally_counter_t *c)
{
    return (tally_remote_t *)c;
}

tally_op_t *tally_remote_op_new(tally_remote_t *r, tally_op_kind_t kind)
{
    tally_op_t *op = r->free_ops;
    if (op)
        r->free_ops = *(tally_op_t **)op;
    else if ((op = malloc(sizeof *op)) == NULL)
        return NULL;
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->sent_ms = uv_now(r->base.loop);
    tally_list_push_tail(&r->inflight, &op->node);
    return op;
}

static void op_free(tally_remote_t *r, tally_op_t *op)
{
    /* Keep a few for the next claims: no allocation per batch. */
    *(tally_op_t **)op = r->free_ops;
    r->free_ops = op;
}

tally_op_t *tally_remote_oldest(tally_remote_t *r)
{
    if (tally_list_empty(&r->inflight))
        return NULL;
    return tally_container_of(r->inflight.next, tally_op_t, node);
}

/* A claim's answer against the floor it carried (counter/floor.h): a raise
 * means the backend had lost writes; then the floor learns the counter. */
static void saw_claim(tally_remote_t *r, const tally_op_t *op)
{
    if (r->floor == NULL)
        return;
    if (op->value > op->had || op->floor_epoch > op->epoch) {
        tally_floor_raised(r->floor, op->had, op->floor);
        tally_logf(TALLY_LOG_ERROR, "backend",
                   "worker-%u: %s: the counter was %lld (reset epoch %lld) where this process had "
                   "seen %lld (epoch %lld): the backend lost writes (a restart without "
                   "persistence, a failover to a replica or standby that was behind, or a restored "
                   "backup); raised to %lld in the same claim (past what other processes may "
                   "have taken meanwhile), so no number is granted twice",
                   r->worker_id, r->drv->name, (long long)op->had, (long long)op->epoch,
                   (long long)op->floor, (long long)op->floor_epoch, (long long)op->value);
    }
    int64_t epoch = op->floor_epoch > op->epoch ? op->floor_epoch : op->epoch;
    tally_floor_saw(r->floor, epoch, op->value + op->granted);
}

void tally_remote_finish(tally_remote_t *r, tally_op_t *op)
{
    tally_list_remove(&op->node);
    switch (op->kind) {
    case TALLY_OP_CLAIM:
        /* The floor learns the answer before the claim leaves the count in
         * flight: another thread's tally_floor_get() never sees neither. */
        if (op->ok)
            saw_claim(r, op);
        if (r->floor)
            tally_floor_claim_end(r->floor, op->k);
        if (op->ok) {
            if (op->granted < op->k)
                r->halted = true; /* the counter is at CAP: stop asking */
            op->claim_cb(op->arg, TALLY_CLAIM_OK, op->value + 1, op->granted);
        } else {
            op->claim_cb(op->arg, TALLY_CLAIM_UNAVAILABLE, 0, 0);
        }
        break;
    case TALLY_OP_RESET:
        if (op->ok) {
            r->halted = false;
            if (r->floor)
                tally_floor_saw(r->floor, op->epoch, 0);
        }
        op->reset_cb(op->arg, op->ok);
        break;
    case TALLY_OP_PEEK:
        r->peek_inflight = false;
        if (op->ok && op->value < r->base.cap)
            r->halted = false; /* reset by someone: ask again */
        break;
    case TALLY_OP_SETUP:
        break;
    }
    op_free(r, op);
}

static void fail_all(tally_remote_t *r)
{
    tally_op_t *op;
    while ((op = tally_remote_oldest(r)) != NULL) {
        op->ok = false;
        tally_remote_finish(r, op);
    }
}

static void start_connect(tally_remote_t *r)
{
    r->state = TALLY_REMOTE_CONNECTING;
    r->connect_started_ms = uv_now(r->base.loop);
    r->drv->connect(r);
}

static void on_retry(uv_timer_t *t)
{
    tally_remote_t *r = t->data;
    if (r->closing)
        return;
    if (r->fail_reason[0]) {
        /* a failure noticed inside a library callback, acted on here */
        char reason[sizeof r->fail_reason];
        memcpy(reason, r->fail_reason, sizeof reason);
        r->fail_reason[0] = '\0';
        r->drv->drop(r);
        tally_remote_down(r, reason);
        return;
    }
    if (r->state == TALLY_REMOTE_DOWN)
        start_connect(r);
}

void tally_remote_up(tally_remote_t *r)
{
    if (r->fail_reason[0])
        return; /* a failure is pending: the connection is being remade */
    r->state = TALLY_REMOTE_UP;
    r->backoff_ms = 0;
    r->halted = false;
    tally_counter_publish_up(&r->base, true);
    if (!r->was_up || r->down_logged)
        tally_logf(TALLY_LOG_INFO, "backend", "worker-%u: %s: connected to %s", r->worker_id,
                   r->drv->name, r->where);
    r->was_up = true;
    r->down_logged = false;
}

void tally_remote_down(tally_remote_t *r, const char *reason)
{
    bool was = r->state == TALLY_REMOTE_UP;
    r->state = TALLY_REMOTE_DOWN;
    tally_counter_publish_up(&r->base, false);
    r->halted = false;
    fail_all(r);
    if (r->closing)
        return;
    if (!r->down_logged) {
        tally_logf(was ? TALLY_LOG_ERROR : TALLY_LOG_WARNING, "backend",
                   "worker-%u: %s: %s %s: %s; answering 503 and retrying with backoff",
                   r->worker_id, r->drv->name, was ? "lost connection to" : "cannot connect to",
                   r->where, reason);
        r->down_logged = true;
    } else if (tally_log_enabled(TALLY_LOG_DEBUG)) {
        tally_logf(TALLY_LOG_DEBUG, "backend", "worker-%u: %s: still down: %s", r->worker_id,
                   r->drv->name, reason);
    }
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    uv_timer_start(&r->retry, on_retry, r->backoff_ms, 0);
}

void tally_remote_fail_soon(tally_remote_t *r, const char *reason)
{
    if (r->fail_reason[0] || r->closing)
        return;
    snprintf(r->fail_reason, sizeof r->fail_reason, "%s", reason);
    uv_timer_start(&r->retry, on_retry, 0, 0);
}

/* Sends op; when the connection cannot take it, op fails at once and the
 * connection is dropped and remade. */
static void send_op(tally_remote_t *r, tally_op_t *op)
{
    if (r->drv->send(r, op) != 0) {
        op->ok = false;
        tally_remote_finish(r, op);
        tally_remote_fail_soon(r, "cannot send a command");
    }
}

static void on_tick(uv_timer_t *t)
{
    tally_remote_t *r = t->data;
    uint64_t now = uv_now(r->base.loop);
    if (r->closing || r->fail_reason[0])
        return;
    if (r->state == TALLY_REMOTE_CONNECTING && now - r->connect_started_ms >= r->timeout_ms) {
        char reason[64];
        snprintf(reason, sizeof reason, "no connection within %llums",
                 (unsigned long long)r->timeout_ms);
        r->drv->drop(r);
        tally_remote_down(r, reason);
        return;
    }
    tally_op_t *old = tally_remote_oldest(r);
    if (r->state == TALLY_REMOTE_UP && old && now - old->sent_ms >= r->timeout_ms) {
        char reason[64];
        snprintf(reason, sizeof reason, "no answer within %llums",
                 (unsigned long long)r->timeout_ms);
        r->drv->drop(r);
        tally_remote_down(r, reason);
        return;
    }
    if (r->state == TALLY_REMOTE_UP && r->halted && !r->peek_inflight &&
        now - r->last_peek_ms >= PEEK_EVERY_MS) {
        tally_op_t *op = tally_remote_op_new(r, TALLY_OP_PEEK);
        if (op == NULL)
            return;
        r->peek_inflight = true;
        r->last_peek_ms = now;
        send_op(r, op);
    }
}

static void remote_claim(tally_counter_t *c, uint32_t k, tally_counter_claim_cb cb, void *arg)
{
    tally_remote_t *r = R(c);
    if (r->state != TALLY_REMOTE_UP || r->fail_reason[0]) {
        cb(arg, TALLY_CLAIM_UNAVAILABLE, 0, 0);
        return;
    }
    if (r->halted) {
        cb(arg, TALLY_CLAIM_OK, 0, 0);
        return;
    }
    tally_op_t *op = tally_remote_op_new(r, TALLY_OP_CLAIM);
    if (op == NULL) {
        cb(arg, TALLY_CLAIM_UNAVAILABLE, 0, 0);
        return;
    }
    op->k = k;
    op->claim_cb = cb;
    op->arg = arg;
    if (r->floor) {
        tally_floor_get(r->floor, &op->floor_epoch, &op->floor, &op->raise_to);
        tally_floor_claim_start(r->floor, k);
    }
    send_op(r, op);
}

static void remote_reset(tally_counter_t *c, tally_counter_reset_cb cb, void *arg)
{
    tally_remote_t *r = R(c);
    if (r->state != TALLY_REMOTE_UP || r->fail_reason[0]) {
        cb(arg, false);
        return;
    }
    tally_op_t *op = tally_remote_op_new(r, TALLY_OP_RESET);
    if (op == NULL) {
        cb(arg, false);
        return;
    }
    op->reset_cb = cb;
    op->arg = arg;
    send_op(r, op);
}

static bool remote_ready(tally_counter_t *c)
{
    return R(c)->state == TALLY_REMOTE_UP;
}

static void maybe_closed(tally_remote_t *r)
{
    if (r->handles_open > 0)
        return;
    while (r->free_ops) {
        tally_op_t *op = r->free_ops;
        r->free_ops = *(tally_op_t **)op;
        free(op);
    }
    tally_counter_closed_cb cb = r->closed_cb;
    if (r->floor == &r->own_floor)
        tally_floor_destroy(&r->own_floor);
    cb(&r->base);
    free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    tally_remote_t *r = h->data;
    r->handles_open--;
    maybe_closed(r);
}

static void on_driver_destroyed(tally_remote_t *r)
{
    r->handles_open--;
    maybe_closed(r);
}

static void remote_close(tally_counter_t *c, tally_counter_closed_cb closed)
{
    tally_remote_t *r = R(c);
    r->closing = true;
    r->closed_cb = closed;
    r->drv->drop(r);
    tally_remote_down(r, "closing");
    r->handles_open = 3;
    uv_close((uv_handle_t *)&r->tick, on_handle_closed);
    uv_close((uv_handle_t *)&r->retry, on_handle_closed);
    r->drv->destroy(r, on_driver_destroyed);
}

const tally_counter_ops_t tally_remote_counter_ops = {
    .name = "remote",
    .claim = remote_claim,
    .reset = remote_reset,
    .ready = remote_ready,
    .close = remote_close,
};

void tally_remote_start(tally_remote_t *r, const tally_remote_driver_t *drv, void *drv_data,
                        uv_loop_t *loop, const tally_counter_params_t *p)
{
    r->base.loop = loop;
    r->base.cap = p->cap;
    r->drv = drv;
    r->drv_data = drv_data;
    r->key = p->key;
    r->timeout_ms = p->timeout_ms;
    r->worker_id = p->worker_id;
    r->floor = p->floor;
    if (r->floor == NULL && tally_floor_init(&r->own_floor) == 0)
        r->floor = &r->own_floor;
    r->state = TALLY_REMOTE_DOWN;
    tally_list_init(&r->inflight);
    uv_timer_init(loop, &r->tick);
    r->tick.data = r;
    uv_timer_init(loop, &r->retry);
    r->retry.data = r;
    uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
    start_connect(r);
}

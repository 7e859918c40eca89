/* pipeline.c - a connection's requests and answers, without I/O; see
 * pipeline.h. */
#include "http/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

static tally_slot_t *slot_push(tally_pipe_t *p)
{
    tally_slot_t *s = &p->slots[(p->head + p->count) % TALLY_PIPE_SLOTS];
    p->count++;
    memset(s, 0, sizeof *s);
    s->pipe = p;
    return s;
}

static void push_error(tally_pipe_t *p, int status, const char *detail)
{
    tally_slot_t *s = slot_push(p);
    /* Errors also come from timers (408), outside the iteration's reads:
     * their own stamp, not the shared read_us. Rare, so a clock read each. */
    s->t0_us = p->env->clock_us();
    tally_slot_fail(s, status, detail);
    s->flags = TALLY_RESP_CLOSE;
    s->ready = true;
    p->close_after = true;
    p->unread = true;
    if (tally_log_enabled(TALLY_LOG_DEBUG))
        tally_logf(TALLY_LOG_DEBUG, "serve", "answering %d and closing: %s", status, detail);
}

/* The parser's request callback: one slot, started by the application. */
static int on_request(void *owner, const tally_http_request_t *req)
{
    tally_pipe_t *p = owner;
    tally_pipe_env_t *env = p->env;
    tally_slot_t *s = slot_push(p);
    s->route = req->route;
    if (env->read_us == 0)
        env->read_us = env->clock_us();
    s->t0_us = env->read_us;
    if (req->method == HTTP_HEAD)
        s->flags |= TALLY_RESP_HEAD;
    if (!req->keep_alive || env->draining) {
        s->flags |= TALLY_RESP_CLOSE;
        p->close_after = true;
    } else if (req->minor == 0) {
        s->flags |= TALLY_RESP_KEEPALIVE; /* HTTP/1.0 asked for it: say yes, or ab -k hangs */
    }
    s->ready = true;
    env->hooks->start(env->app, s, req);
    return p->close_after || p->count == TALLY_PIPE_SLOTS;
}

int tally_pipe_env_init(tally_pipe_env_t *env, size_t max_header_size, uint64_t max_body_size,
                        const char *admin_token, const tally_pipe_hooks_t *hooks, void *app)
{
    env->hooks = hooks;
    env->app = app;
    return tally_http_config_init(&env->http, max_header_size, max_body_size, admin_token,
                                  on_request, hooks->classify, app);
}

void tally_pipe_env_free(tally_pipe_env_t *env)
{
    tally_http_config_free(&env->http);
}

void tally_pipe_init(tally_pipe_t *p, tally_pipe_env_t *env, void *owner)
{
    memset(p, 0, offsetof(tally_pipe_t, slots));
    p->env = env;
    p->owner = owner;
    tally_http_init(&p->http, &env->http, p);
}

/* Parses data[0..len); returns how many bytes were consumed. Stops early
 * when the ring is full (the caller keeps the rest) or the pipe is to
 * close (the rest is dropped). */
static size_t parse(tally_pipe_t *p, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && !p->close_after && p->count < TALLY_PIPE_SLOTS) {
        size_t used = 0;
        tally_http_result_t r = tally_http_feed(&p->http, data + off, len - off, &used);
        off += used;
        if (r == TALLY_HTTP_OK || r == TALLY_HTTP_PAUSED)
            continue;
        if (r == TALLY_HTTP_UPGRADE) {
            /* tally speaks no other protocol: answer the request, then close. */
            if (p->count > 0)
                p->slots[(p->head + p->count - 1) % TALLY_PIPE_SLOTS].flags |= TALLY_RESP_CLOSE;
            p->close_after = true;
            p->unread = true;
        } else {
            push_error(p, p->http.error_status, p->http.error_detail);
        }
        return len;
    }
    if (p->close_after && off < len) {
        p->unread = true;
        return len;
    }
    return off;
}

int tally_pipe_input(tally_pipe_t *p, const char *data, size_t len)
{
    if (p->saved) {
        /* Only when the owner read more before it could stop reading: keep
         * the order, append. */
        size_t n = p->saved_len + len;
        char *s = n <= UINT32_MAX ? realloc(p->saved, n) : NULL;
        if (s == NULL) {
            tally_pipe_drop_input(p);
            return -ENOMEM;
        }
        memcpy(s + p->saved_len, data, len);
        p->saved = s;
        p->saved_len = (uint32_t)n;
        return 0;
    }
    size_t used = parse(p, data, len);
    if (used == len)
        return 0;
    size_t rest = len - used;
    p->saved = rest <= UINT32_MAX ? malloc(rest) : NULL;
    if (p->saved == NULL)
        return -ENOMEM;
    memcpy(p->saved, data + used, rest);
    p->saved_len = (uint32_t)rest;
    p->saved_off = 0;
    return 0;
}

bool tally_pipe_resume(tally_pipe_t *p)
{
    if (p->saved && !p->close_after && p->count < TALLY_PIPE_SLOTS) {
        size_t used = parse(p, p->saved + p->saved_off, p->saved_len - p->saved_off);
        p->saved_off += (uint32_t)used;
        if (p->saved_off == p->saved_len || p->close_after)
            tally_pipe_drop_input(p);
        return p->count > 0 && p->slots[p->head].ready;
    }
    return false;
}

void tally_pipe_drop_input(tally_pipe_t *p)
{
    free(p->saved);
    p->saved = NULL;
}

unsigned tally_pipe_take(tally_pipe_t *p, tally_buf_t *out)
{
    tally_pipe_env_t *env = p->env;
    if (p->count == 0 || !p->slots[p->head].ready)
        return 0;
    /* Restamped when requests were parsed after the stamp (a paused parser
     * resumed in this iteration), so that none is measured as 0 us. */
    if (env->flush_us == 0 || env->flush_us < env->read_us)
        env->flush_us = env->clock_us();
    tally_answer_t a;
    a.resp = &env->resp;
    unsigned n = 0;
    while (p->count > 0 && p->slots[p->head].ready) {
        tally_slot_t *s = &p->slots[p->head];
        a.flags = s->flags;
        if (p->close_after && p->count == 1)
            a.flags |= TALLY_RESP_CLOSE; /* the last answer this connection sends */
        a.latency_us = env->flush_us > s->t0_us ? env->flush_us - s->t0_us : 0;
        env->hooks->write(env->app, s, &a, out);
        p->head = (uint8_t)((p->head + 1) % TALLY_PIPE_SLOTS);
        p->count--;
        n++;
    }
    return n;
}

bool tally_pipe_fail(tally_pipe_t *p, int status, const char *detail)
{
    if (p->close_after || p->count >= TALLY_PIPE_SLOTS)
        return false;
    push_error(p, status, detail);
    return true;
}

void tally_pipe_settle(tally_slot_t *s)
{
    tally_pipe_t *p = s->pipe;
    s->ready = true;
    p->pending--;
    p->env->wake(p);
}

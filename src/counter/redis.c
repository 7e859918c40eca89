/* redis.c - the counter in Redis: one Lua script per claim.
 *
 * Handshake on every connection: AUTH (when the URL has a password), SELECT
 * (db != 0), SCRIPT LOAD; the worker is up once the script's SHA is known.
 * A claim is EVALSHA of the script, which adds min(k, CAP - value) to the
 * key atomically and returns {value before, granted}. NOSCRIPT (after a
 * SCRIPT FLUSH or a restart) is answered by sending the same claim as EVAL
 * with the script body, which also puts the script back in the cache: the
 * claim was not executed, so resending it is safe.
 */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter/drivers.h"
#include "counter/url.h"
#include "base/log.h"
#include "counter/redis_uv.h"
#include "counter/remote.h"
#include "counter/replies.h"

static const char SCRIPT[] =
    "local v = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if v == nil then return redis.error_reply('tally: counter value is not a number') end\n"
    "local cap = tonumber(ARGV[1])\n"
    "local n = tonumber(ARGV[2])\n"
    "if v >= cap then return {v, 0} end\n"
    "if n > cap - v then n = cap - v end\n"
    "redis.call('INCRBY', KEYS[1], n)\n"
    "return {v, n}\n";

typedef struct redis_counter {
    tally_remote_t r; /* first: the counter is a remote */
    tally_redis_url_t url;
    redisAsyncContext *ac;
    bool dropping;
    char sha[41];
    char cap_s[24];
    char last_error[128];
} redis_counter_t;

static void on_disconnect(const redisAsyncContext *ac, int status);

static void command_error(redis_counter_t *rc, const char *what, const char *err)
{
    /* Once per distinct error, not once per batch. */
    if (strncmp(rc->last_error, err, sizeof rc->last_error - 1) == 0)
        return;
    snprintf(rc->last_error, sizeof rc->last_error, "%s", err);
    tally_logf(TALLY_LOG_ERROR, "backend", "worker-%u: redis: %s failed: %s", rc->r.worker_id, what,
               err);
}

static void on_claim_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    redis_counter_t *rc = ac->data;
    redisReply *reply = reply_;
    tally_op_t *op = privdata;
    op->ok = false;
    if (reply == NULL) {
        tally_remote_finish(&rc->r, op); /* connection going away: outcome unknown */
        return;
    }
    const char *why;
    switch (tally_redis_claim_reply(reply, op->k, &op->value, &op->granted, &why)) {
    case TALLY_REPLY_OK:
        op->ok = true;
        rc->last_error[0] = '\0';
        break;
    case TALLY_REPLY_NOSCRIPT:
        /* not executed: resending is safe, and EVAL caches the script again */
        if (redisAsyncCommand(ac, on_claim_reply, op, "EVAL %s 1 %s %s %u", SCRIPT, rc->r.key,
                              rc->cap_s, op->k) == REDIS_OK)
            return;
        tally_remote_fail_soon(&rc->r, "cannot send EVAL");
        break;
    default:
        command_error(rc, "claim", why);
        break;
    }
    tally_remote_finish(&rc->r, op);
}

static void on_simple_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    redis_counter_t *rc = ac->data;
    redisReply *reply = reply_;
    tally_op_t *op = privdata;
    if (op->kind == TALLY_OP_RESET) {
        op->ok = tally_redis_status_ok(reply);
        if (!op->ok && reply && reply->type == REDIS_REPLY_ERROR)
            command_error(rc, "reset", reply->str);
    } else {
        op->ok = tally_redis_peek_reply(reply, &op->value);
    }
    tally_remote_finish(&rc->r, op);
}

/* Replies of the handshake: AUTH and SELECT (privdata NULL), SCRIPT LOAD
 * (privdata the setup op). */
static void on_handshake_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    redis_counter_t *rc = ac->data;
    redisReply *reply = reply_;
    tally_op_t *op = privdata;
    if (reply == NULL) {
        if (op)
            tally_remote_finish(&rc->r, op);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        char reason[200];
        snprintf(reason, sizeof reason, "handshake refused: %s", reply->str);
        tally_remote_fail_soon(&rc->r, reason);
        if (op)
            tally_remote_finish(&rc->r, op);
        return;
    }
    if (op == NULL)
        return;
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(rc->sha, reply->str, 40);
        rc->sha[40] = '\0';
        op->ok = true;
        tally_remote_finish(&rc->r, op);
        tally_remote_up(&rc->r); /* not if AUTH or SELECT failed (fail_reason) */
    } else {
        tally_remote_finish(&rc->r, op);
        tally_remote_fail_soon(&rc->r, "unexpected reply to SCRIPT LOAD");
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    redis_counter_t *rc = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns */
        char reason[160];
        snprintf(reason, sizeof reason, "%s", ac->errstr[0] ? ac->errstr : "connect failed");
        rc->ac = NULL;
        if (!rc->dropping)
            tally_remote_down(&rc->r, reason);
        return;
    }
    int ok = REDIS_OK;
    if (rc->url.password[0]) {
        if (rc->url.user[0])
            ok = redisAsyncCommand(ac, on_handshake_reply, NULL, "AUTH %s %s", rc->url.user,
                                   rc->url.password);
        else
            ok = redisAsyncCommand(ac, on_handshake_reply, NULL, "AUTH %s", rc->url.password);
    }
    if (ok == REDIS_OK && rc->url.db != 0)
        ok = redisAsyncCommand(ac, on_handshake_reply, NULL, "SELECT %d", rc->url.db);
    tally_op_t *op = tally_remote_op_new(&rc->r, TALLY_OP_SETUP);
    if (op == NULL) {
        tally_remote_fail_soon(&rc->r, "out of memory");
        return;
    }
    if (ok == REDIS_OK)
        ok = redisAsyncCommand(ac, on_handshake_reply, op, "SCRIPT LOAD %s", SCRIPT);
    if (ok != REDIS_OK) {
        tally_remote_finish(&rc->r, op);
        tally_remote_fail_soon(&rc->r, "cannot send the handshake");
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    redis_counter_t *rc = ac->data;
    char reason[160];
    snprintf(reason, sizeof reason, "%s",
             status == REDIS_OK ? "connection closed" : (ac->errstr[0] ? ac->errstr : "I/O error"));
    rc->ac = NULL;
    if (!rc->dropping)
        tally_remote_down(&rc->r, reason);
}

static void redis_connect(tally_remote_t *r)
{
    redis_counter_t *rc = (redis_counter_t *)r;
    redisAsyncContext *ac = rc->url.path[0] ? redisAsyncConnectUnix(rc->url.path)
                                            : redisAsyncConnect(rc->url.host, rc->url.port);
    if (ac == NULL) {
        tally_remote_down(r, "out of memory");
        return;
    }
    if (ac->err) {
        char reason[160];
        snprintf(reason, sizeof reason, "%s", ac->errstr);
        redisAsyncFree(ac);
        tally_remote_down(r, reason);
        return;
    }
    ac->data = rc;
    if (tally_redis_uv_attach(ac, r->base.loop) != 0) {
        redisAsyncFree(ac);
        tally_remote_down(r, "cannot watch the socket");
        return;
    }
    rc->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static void redis_drop(tally_remote_t *r)
{
    redis_counter_t *rc = (redis_counter_t *)r;
    redisAsyncContext *ac = rc->ac;
    if (ac == NULL)
        return;
    rc->ac = NULL;
    rc->dropping = true;
    redisAsyncFree(ac); /* runs every pending reply callback with NULL */
    rc->dropping = false;
}

static int redis_send(tally_remote_t *r, tally_op_t *op)
{
    redis_counter_t *rc = (redis_counter_t *)r;
    if (rc->ac == NULL)
        return -1;
    int ok;
    switch (op->kind) {
    case TALLY_OP_CLAIM:
        ok = redisAsyncCommand(rc->ac, on_claim_reply, op, "EVALSHA %s 1 %s %s %u", rc->sha, r->key,
                               rc->cap_s, op->k);
        break;
    case TALLY_OP_RESET:
        ok = redisAsyncCommand(rc->ac, on_simple_reply, op, "SET %s 0", r->key);
        break;
    case TALLY_OP_PEEK:
        ok = redisAsyncCommand(rc->ac, on_simple_reply, op, "GET %s", r->key);
        break;
    default:
        return -1;
    }
    return ok == REDIS_OK ? 0 : -1;
}

static void redis_destroy(tally_remote_t *r, void (*done)(tally_remote_t *r))
{
    /* The socket's poll handle closes on its own (redis_uv.c). */
    done(r);
}

static const tally_remote_driver_t redis_driver = {
    .name = "redis",
    .connect = redis_connect,
    .drop = redis_drop,
    .send = redis_send,
    .destroy = redis_destroy,
};

int tally_counter_redis_open(uv_loop_t *loop, const tally_counter_params_t *p,
                             tally_counter_t **out, char *why, size_t whylen)
{
    redis_counter_t *rc = calloc(1, sizeof *rc);
    if (rc == NULL) {
        snprintf(why, whylen, "not enough memory for the redis counter");
        return -ENOMEM;
    }
    if (tally_redis_url_parse(p->url, &rc->url, why, whylen) != 0) {
        free(rc);
        return -EINVAL;
    }
    snprintf(rc->cap_s, sizeof rc->cap_s, "%lld", (long long)p->cap);
    rc->r.base.ops = &tally_remote_counter_ops;
    tally_redis_url_display(&rc->url, rc->r.where, sizeof rc->r.where);
    tally_remote_start(&rc->r, &redis_driver, rc, loop, p->cap, p->key, p->timeout_ms,
                       p->worker_id);
    *out = &rc->r.base;
    return 0;
}

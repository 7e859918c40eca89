/* redis.c - the counter in Redis: one Lua script per claim.
 *
 * Handshake on every connection: AUTH (when the URL has a password), SELECT
 * (db != 0), SCRIPT LOAD; the worker is up once the script's SHA is known.
 * A claim is EVALSHA of the script, which raises the key to the process's
 * floor (counter/floor.h) and adds min(k, CAP - value) atomically, and
 * returns {value before, granted, value it had, epoch it had}. A reset sets
 * the key to 0 and increments KEY:epoch in one script. NOSCRIPT (after a
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

/* KEYS: the counter, its epoch (KEY:epoch). ARGV: cap, k, the process's
 * floor, its epoch and what a counter below it is raised to
 * (counter/floor.h). Raises a counter below the floor (at most to cap)
 * unless the backend's epoch is newer (a reset the process had not seen),
 * restores an epoch the backend lost, then takes min(k, cap - value).
 * Returns {value before, granted, value it had, epoch it had}. Numbers are
 * written with %d: Lua's own conversion would write 1e+15. */
static const char SCRIPT[] =
    "local v = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if v == nil then return redis.error_reply('tally: counter value is not a number') end\n"
    "local e = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "if e == nil then return redis.error_reply('tally: counter epoch is not a number') end\n"
    "local cap, n = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local floor, fe, to = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local had = v\n"
    "if fe >= e then\n"
    "  if fe > e then redis.call('SET', KEYS[2], string.format('%d', fe)) end\n"
    "  if v < floor then v = math.min(math.max(to, floor), cap) end\n"
    "end\n"
    "if v >= cap then n = 0 elseif n > cap - v then n = cap - v end\n"
    "if v + n ~= had then redis.call('SET', KEYS[1], string.format('%d', v + n)) end\n"
    "return {v, n, had, e}\n";

/* Sets the counter to 0 in the next epoch; returns the epoch. */
static const char RESET_SCRIPT[] = "redis.call('SET', KEYS[1], 0)\n"
                                   "return redis.call('INCR', KEYS[2])\n";

typedef struct redis_counter {
    tally_remote_t r; /* first: the counter is a remote */
    tally_redis_url_t url;
    redisAsyncContext *ac;
    bool dropping;
    char sha[41];
    char cap_s[24];
    char epoch_key[256]; /* KEY:epoch */
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
    tally_claim_answer_t an;
    switch (tally_redis_claim_reply(reply, op->k, &an, &why)) {
    case TALLY_REPLY_OK:
        op->ok = true;
        op->value = an.before;
        op->granted = an.granted;
        op->had = an.had;
        op->epoch = an.epoch;
        rc->last_error[0] = '\0';
        break;
    case TALLY_REPLY_NOSCRIPT:
        /* not executed: resending is safe, and EVAL caches the script again */
        if (redisAsyncCommand(ac, on_claim_reply, op, "EVAL %s 2 %s %s %s %u %lld %lld %lld",
                              SCRIPT, rc->r.key, rc->epoch_key, rc->cap_s, op->k,
                              (long long)op->floor, (long long)op->floor_epoch,
                              (long long)op->raise_to) == REDIS_OK)
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
        op->ok = tally_redis_reset_reply(reply, &op->epoch);
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
        ok = redisAsyncCommand(rc->ac, on_claim_reply, op,
                               "EVALSHA %s 2 %s %s %s %u %lld %lld %lld", rc->sha, r->key,
                               rc->epoch_key, rc->cap_s, op->k, (long long)op->floor,
                               (long long)op->floor_epoch, (long long)op->raise_to);
        break;
    case TALLY_OP_RESET:
        ok = redisAsyncCommand(rc->ac, on_simple_reply, op, "EVAL %s 2 %s %s", RESET_SCRIPT, r->key,
                               rc->epoch_key);
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
    snprintf(rc->epoch_key, sizeof rc->epoch_key, "%s:epoch", p->key);
    rc->r.base.ops = &tally_remote_counter_ops;
    tally_redis_url_display(&rc->url, rc->r.where, sizeof rc->r.where);
    tally_remote_start(&rc->r, &redis_driver, rc, loop, p);
    *out = &rc->r.base;
    return 0;
}

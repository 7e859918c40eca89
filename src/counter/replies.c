/* replies.c - see replies.h. */
#include "counter/replies.h"

#include <string.h>

bool tally_parse_count(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

tally_reply_t tally_redis_claim_reply(const redisReply *r, uint32_t k, int64_t *before,
                                      uint32_t *granted, const char **why)
{
    *why = "unexpected reply to the claim script";
    if (r == NULL)
        return TALLY_REPLY_ERROR;
    if (r->type == REDIS_REPLY_ERROR) {
        if (r->str && r->len >= 8 && strncmp(r->str, "NOSCRIPT", 8) == 0)
            return TALLY_REPLY_NOSCRIPT;
        *why = r->str && r->len > 0 ? r->str : "error reply";
        return TALLY_REPLY_ERROR;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element == NULL)
        return TALLY_REPLY_ERROR;
    const redisReply *a = r->element[0], *b = r->element[1];
    if (a == NULL || b == NULL || a->type != REDIS_REPLY_INTEGER ||
        b->type != REDIS_REPLY_INTEGER || a->integer < 0 || b->integer < 0 ||
        b->integer > (long long)k)
        return TALLY_REPLY_ERROR;
    *before = a->integer;
    *granted = (uint32_t)b->integer;
    return TALLY_REPLY_OK;
}

bool tally_redis_peek_reply(const redisReply *r, int64_t *value)
{
    if (r == NULL)
        return false;
    if (r->type == REDIS_REPLY_NIL) {
        *value = 0;
        return true;
    }
    if (r->type != REDIS_REPLY_STRING || r->str == NULL || strlen(r->str) != r->len)
        return false;
    return tally_parse_count(r->str, value);
}

bool tally_redis_status_ok(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_STATUS && r->str != NULL && r->len == 2 &&
           memcmp(r->str, "OK", 2) == 0;
}

bool tally_pg_claim_row(const char *before_s, const char *after_s, uint32_t k, int64_t *before,
                        uint32_t *granted)
{
    int64_t b, a;
    if (!tally_parse_count(before_s, &b) || !tally_parse_count(after_s, &a) || a < b ||
        a - b > (int64_t)k)
        return false;
    *before = b;
    *granted = (uint32_t)(a - b);
    return true;
}

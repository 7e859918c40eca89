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

tally_reply_t tally_redis_claim_reply(const redisReply *r, uint32_t k, tally_claim_answer_t *out,
                                      const char **why)
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
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element == NULL)
        return TALLY_REPLY_ERROR;
    long long v[4];
    for (int i = 0; i < 4; i++) {
        const redisReply *e = r->element[i];
        if (e == NULL || e->type != REDIS_REPLY_INTEGER || e->integer < 0)
            return TALLY_REPLY_ERROR;
        v[i] = e->integer;
    }
    if (v[1] > (long long)k || v[2] > v[0])
        return TALLY_REPLY_ERROR;
    *out = (tally_claim_answer_t){v[0], (uint32_t)v[1], v[2], v[3]};
    return TALLY_REPLY_OK;
}

bool tally_redis_reset_reply(const redisReply *r, int64_t *epoch)
{
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < 1)
        return false;
    *epoch = r->integer;
    return true;
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

bool tally_pg_claim_row(const char *const fields[4], uint32_t k, tally_claim_answer_t *out)
{
    int64_t v[4];
    for (int i = 0; i < 4; i++)
        if (!tally_parse_count(fields[i], &v[i]))
            return false;
    if (v[1] < v[0] || v[1] - v[0] > (int64_t)k || v[2] > v[0])
        return false;
    *out = (tally_claim_answer_t){v[0], (uint32_t)(v[1] - v[0]), v[2], v[3]};
    return true;
}

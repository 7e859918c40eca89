/* replies.h - what the backends' answers mean, as pure functions.
 *
 * The redis and postgres drivers hand every reply to one of these before
 * trusting it: a reply of the wrong shape, a negative or out-of-range
 * number, or trailing garbage is an error, never a grant. Kept apart from
 * the drivers so that they can be tested and fuzzed without a server.
 */
#ifndef TALLY_REPLIES_H
#define TALLY_REPLIES_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    TALLY_REPLY_OK = 0,
    TALLY_REPLY_NOSCRIPT, /* the script is not cached: resend as EVAL */
    TALLY_REPLY_ERROR,    /* *why says what was wrong */
} tally_reply_t;

/* The claim script's answer to a claim of k: {value before, granted} with
 * 0 <= granted <= k and value before >= 0. */
tally_reply_t tally_redis_claim_reply(const redisReply *r, uint32_t k, int64_t *before,
                                      uint32_t *granted, const char **why);

/* GET of the counter: nil is 0, else a decimal integer >= 0. */
bool tally_redis_peek_reply(const redisReply *r, int64_t *value);

/* SET's answer: +OK. */
bool tally_redis_status_ok(const redisReply *r);

/* A strict decimal integer >= 0 (PostgreSQL's text form of a bigint). */
bool tally_parse_count(const char *s, int64_t *out);

/* The claim statement's row (value before, value after) for a claim of k:
 * both counts, after - before between 0 and k. */
bool tally_pg_claim_row(const char *before_s, const char *after_s, uint32_t k, int64_t *before,
                        uint32_t *granted);

#endif

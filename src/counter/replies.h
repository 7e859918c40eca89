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

/* What a claim's answer says (counter/floor.h). */
typedef struct tally_claim_answer {
    int64_t before;   /* the counter before the claim, after any raise to the floor */
    uint32_t granted; /* numbers before+1 .. before+granted */
    int64_t had;      /* the counter as the backend had it: below before when raised */
    int64_t epoch;    /* the reset epoch as the backend had it */
} tally_claim_answer_t;

/* The claim script's answer to a claim of k: {before, granted, had, epoch},
 * every one >= 0, granted <= k, had <= before. */
tally_reply_t tally_redis_claim_reply(const redisReply *r, uint32_t k, tally_claim_answer_t *out,
                                      const char **why);

/* The reset script's answer: the new epoch, an integer >= 1. */
bool tally_redis_reset_reply(const redisReply *r, int64_t *epoch);

/* GET of the counter: nil is 0, else a decimal integer >= 0. */
bool tally_redis_peek_reply(const redisReply *r, int64_t *value);

/* The claim statement's row (before, after, had, epoch), each in text
 * form: the same rules as the claim script's answer, granted = after -
 * before. */
bool tally_pg_claim_row(const char *const fields[4], uint32_t k, tally_claim_answer_t *out);

/* A strict decimal integer >= 0 (PostgreSQL's text form of a bigint). */
bool tally_parse_count(const char *s, int64_t *out);

#endif

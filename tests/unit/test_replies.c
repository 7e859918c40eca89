/* test_replies.c - what backend answers mean (src/counter/replies.h): only a
 * well-formed answer grants anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "counter/replies.h"

static redisReply integer(long long v)
{
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_INTEGER;
    r.integer = v;
    return r;
}

static redisReply text(int type, const char *s)
{
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.str = (char *)s;
    r.len = strlen(s);
    return r;
}

/* The claim script's answer {before, granted, had, epoch} as n integers
 * (element i NULL when v[i] is NULL_EL, a string when it is STR_EL). */
#define NULL_EL -1000
#define STR_EL  -2000

static tally_reply_t claim(const long long *v, size_t n, uint32_t k, tally_claim_answer_t *out)
{
    redisReply el[6], *elp[6];
    redisReply arr;
    memset(&arr, 0, sizeof arr);
    arr.type = REDIS_REPLY_ARRAY;
    arr.elements = n;
    arr.element = elp;
    for (size_t i = 0; i < n; i++) {
        el[i] = v[i] == STR_EL ? text(REDIS_REPLY_STRING, "2") : integer(v[i]);
        elp[i] = v[i] == NULL_EL ? NULL : &el[i];
    }
    const char *why = NULL;
    tally_reply_t t = tally_redis_claim_reply(&arr, k, out, &why);
    assert_non_null(why);
    return t;
}

static void test_redis_claim_ok(void **state)
{
    (void)state;
    static const long long ok[][4] = {
        {41, 7, 41, 0}, {41, 0, 41, 3}, {41, 10, 41, 0}, {500, 10, 20, 2} /* raised from 20 */,
        {0, 10, 0, 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        tally_claim_answer_t an = {-1, 99, -1, -1};
        assert_int_equal(claim(ok[i], 4, 10, &an), TALLY_REPLY_OK);
        assert_int_equal(an.before, ok[i][0]);
        assert_int_equal(an.granted, ok[i][1]);
        assert_int_equal(an.had, ok[i][2]);
        assert_int_equal(an.epoch, ok[i][3]);
    }
}

static void test_redis_claim_bad_shapes(void **state)
{
    (void)state;
    static const struct {
        long long v[5];
        size_t n;
    } bad[] = {
        {{1, 2, 1, 0}, 3},
        {{1, 2, 1, 0, 0}, 5},
        {{1, 2}, 2},
        {{1, 2, 1, 0}, 0},
        {{-1, 2, 0, 0}, 4},
        {{1, -1, 1, 0}, 4},
        {{1, 11, 1, 0}, 4} /* more than asked */,
        {{1, 2, 1, -1}, 4},
        {{1, 2, 2, 0}, 4} /* had above before: a raise only goes up */,
        {{1, STR_EL, 1, 0}, 4},
        {{NULL_EL, 2, 1, 0}, 4},
        {{1, 2, 1, NULL_EL}, 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tally_claim_answer_t an = {5, 5, 5, 5};
        if (claim(bad[i].v, bad[i].n, 10, &an) != TALLY_REPLY_ERROR)
            fail_msg("bad answer %zu was taken", i);
        assert_int_equal(an.before, 5); /* nothing was written on failure */
        assert_int_equal(an.granted, 5);
    }

    tally_claim_answer_t an;
    const char *why = NULL;
    assert_int_equal(tally_redis_claim_reply(NULL, 1, &an, &why), TALLY_REPLY_ERROR);
    redisReply i = integer(3);
    assert_int_equal(tally_redis_claim_reply(&i, 1, &an, &why), TALLY_REPLY_ERROR);
    redisReply nil;
    memset(&nil, 0, sizeof nil);
    nil.type = REDIS_REPLY_NIL;
    assert_int_equal(tally_redis_claim_reply(&nil, 1, &an, &why), TALLY_REPLY_ERROR);

    /* The reset script's answer: the new epoch, at least 1. */
    int64_t e = -1;
    redisReply one = integer(1), zero = integer(0), s = text(REDIS_REPLY_STRING, "1");
    assert_true(tally_redis_reset_reply(&one, &e));
    assert_int_equal(e, 1);
    assert_false(tally_redis_reset_reply(&zero, &e));
    assert_false(tally_redis_reset_reply(&s, &e));
    assert_false(tally_redis_reset_reply(NULL, &e));
}

static void test_redis_errors(void **state)
{
    (void)state;
    tally_claim_answer_t an;
    const char *why = NULL;
    redisReply e = text(REDIS_REPLY_ERROR, "NOSCRIPT No matching script. Please use EVAL.");
    assert_int_equal(tally_redis_claim_reply(&e, 1, &an, &why), TALLY_REPLY_NOSCRIPT);
    redisReply w = text(REDIS_REPLY_ERROR, "WRONGTYPE Operation against a key");
    assert_int_equal(tally_redis_claim_reply(&w, 1, &an, &why), TALLY_REPLY_ERROR);
    assert_string_equal(why, "WRONGTYPE Operation against a key");
    redisReply n = text(REDIS_REPLY_ERROR, "NOSCRIP");
    assert_int_equal(tally_redis_claim_reply(&n, 1, &an, &why), TALLY_REPLY_ERROR);
}

static void test_redis_peek_and_status(void **state)
{
    (void)state;
    int64_t v = -1;
    redisReply nil;
    memset(&nil, 0, sizeof nil);
    nil.type = REDIS_REPLY_NIL;
    assert_true(tally_redis_peek_reply(&nil, &v));
    assert_int_equal(v, 0);
    redisReply s = text(REDIS_REPLY_STRING, "100");
    assert_true(tally_redis_peek_reply(&s, &v));
    assert_int_equal(v, 100);
    const char *bad[] = {"", "-1", "1x", " 1", "99999999999999999999", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        redisReply b = text(REDIS_REPLY_STRING, bad[i]);
        assert_false(tally_redis_peek_reply(&b, &v));
    }
    redisReply st = text(REDIS_REPLY_STATUS, "100");
    assert_false(tally_redis_peek_reply(&st, &v));
    assert_false(tally_redis_peek_reply(NULL, &v));
}

/* The claim statement's row (before, after, had, epoch). */
static bool pg_row(const char *b, const char *a, const char *had, const char *e, uint32_t k,
                   tally_claim_answer_t *out)
{
    const char *f[4] = {b, a, had, e};
    return tally_pg_claim_row(f, k, out);
}

static void test_pg_rows(void **state)
{
    (void)state;
    tally_claim_answer_t an = {-1, 0, -1, -1};
    assert_true(pg_row("90", "100", "90", "0", 32, &an));
    assert_int_equal(an.before, 90);
    assert_int_equal(an.granted, 10);
    assert_int_equal(an.had, 90);
    assert_int_equal(an.epoch, 0);
    assert_true(pg_row("100", "100", "100", "4", 32, &an));
    assert_int_equal(an.granted, 0);
    assert_int_equal(an.epoch, 4);
    assert_true(pg_row("0", "32", "0", "0", 32, &an));
    assert_int_equal(an.granted, 32);
    assert_true(pg_row("500", "510", "7", "1", 32, &an)); /* raised from 7 to 500 */
    assert_int_equal(an.had, 7);
    assert_int_equal(an.granted, 10);
    assert_false(pg_row("0", "33", "0", "0", 32, &an));   /* more than asked */
    assert_false(pg_row("10", "9", "10", "0", 32, &an));  /* went down */
    assert_false(pg_row("10", "12", "11", "0", 32, &an)); /* had above before */
    assert_false(pg_row("-1", "0", "0", "0", 32, &an));   /* negative */
    assert_false(pg_row("1", "2", "1", "-1", 32, &an));   /* negative epoch */
    assert_false(pg_row("", "0", "0", "0", 32, &an));     /* empty */
    assert_false(pg_row("1 ", "2", "1", "0", 32, &an));   /* trailing */
    assert_false(pg_row(NULL, "2", "0", "0", 32, &an));   /* NULL */
    assert_false(pg_row("1", "2", "1", NULL, 32, &an));   /* NULL */
    assert_false(
        pg_row("9223372036854775808", "9223372036854775808", "0", "0", 32, &an)); /* overflow */
    int64_t v;
    assert_true(tally_parse_count("9223372036854775807", &v));
    assert_int_equal(v, INT64_MAX);
    assert_false(tally_parse_count("+1", &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_claim_ok), cmocka_unit_test(test_redis_claim_bad_shapes),
        cmocka_unit_test(test_redis_errors),   cmocka_unit_test(test_redis_peek_and_status),
        cmocka_unit_test(test_pg_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_replies.c - what backend answers mean (src/counter/replies.h): only a
 * well-formed answer grants anything. */
#include <setjmp.h>
#include <stdarg.h>
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

static tally_reply_t claim(redisReply *a, redisReply *b, size_t n, uint32_t k, int64_t *before,
                           uint32_t *granted)
{
    redisReply *el[2] = {a, b};
    redisReply arr;
    memset(&arr, 0, sizeof arr);
    arr.type = REDIS_REPLY_ARRAY;
    arr.elements = n;
    arr.element = el;
    const char *why = NULL;
    tally_reply_t t = tally_redis_claim_reply(&arr, k, before, granted, &why);
    assert_non_null(why);
    return t;
}

static void test_redis_claim_ok(void **state)
{
    (void)state;
    redisReply a = integer(41), b = integer(7);
    int64_t before = -1;
    uint32_t granted = 99;
    assert_int_equal(claim(&a, &b, 2, 10, &before, &granted), TALLY_REPLY_OK);
    assert_int_equal(before, 41);
    assert_int_equal(granted, 7);
    redisReply z = integer(0);
    assert_int_equal(claim(&a, &z, 2, 10, &before, &granted), TALLY_REPLY_OK);
    assert_int_equal(granted, 0);
    redisReply k = integer(10);
    assert_int_equal(claim(&a, &k, 2, 10, &before, &granted), TALLY_REPLY_OK);
    assert_int_equal(granted, 10);
}

static void test_redis_claim_bad_shapes(void **state)
{
    (void)state;
    int64_t before = 5;
    uint32_t granted = 5;
    redisReply a = integer(1), b = integer(2), neg = integer(-1), big = integer(11);
    redisReply s = text(REDIS_REPLY_STRING, "2");
    assert_int_equal(claim(&a, &b, 1, 10, &before, &granted), TALLY_REPLY_ERROR);
    assert_int_equal(claim(&a, &b, 0, 10, &before, &granted), TALLY_REPLY_ERROR);
    assert_int_equal(claim(&neg, &b, 2, 10, &before, &granted), TALLY_REPLY_ERROR);
    assert_int_equal(claim(&a, &neg, 2, 10, &before, &granted), TALLY_REPLY_ERROR);
    assert_int_equal(claim(&a, &big, 2, 10, &before, &granted), TALLY_REPLY_ERROR);
    assert_int_equal(claim(&a, &s, 2, 10, &before, &granted), TALLY_REPLY_ERROR);
    assert_int_equal(claim(NULL, &b, 2, 10, &before, &granted), TALLY_REPLY_ERROR);
    /* nothing was written on failure */
    assert_int_equal(before, 5);
    assert_int_equal(granted, 5);

    const char *why = NULL;
    assert_int_equal(tally_redis_claim_reply(NULL, 1, &before, &granted, &why), TALLY_REPLY_ERROR);
    redisReply i = integer(3);
    assert_int_equal(tally_redis_claim_reply(&i, 1, &before, &granted, &why), TALLY_REPLY_ERROR);
    redisReply nil;
    memset(&nil, 0, sizeof nil);
    nil.type = REDIS_REPLY_NIL;
    assert_int_equal(tally_redis_claim_reply(&nil, 1, &before, &granted, &why), TALLY_REPLY_ERROR);
}

static void test_redis_errors(void **state)
{
    (void)state;
    int64_t before;
    uint32_t granted;
    const char *why = NULL;
    redisReply e = text(REDIS_REPLY_ERROR, "NOSCRIPT No matching script. Please use EVAL.");
    assert_int_equal(tally_redis_claim_reply(&e, 1, &before, &granted, &why), TALLY_REPLY_NOSCRIPT);
    redisReply w = text(REDIS_REPLY_ERROR, "WRONGTYPE Operation against a key");
    assert_int_equal(tally_redis_claim_reply(&w, 1, &before, &granted, &why), TALLY_REPLY_ERROR);
    assert_string_equal(why, "WRONGTYPE Operation against a key");
    redisReply n = text(REDIS_REPLY_ERROR, "NOSCRIP");
    assert_int_equal(tally_redis_claim_reply(&n, 1, &before, &granted, &why), TALLY_REPLY_ERROR);
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

    redisReply ok = text(REDIS_REPLY_STATUS, "OK");
    assert_true(tally_redis_status_ok(&ok));
    redisReply okstr = text(REDIS_REPLY_STRING, "OK");
    assert_false(tally_redis_status_ok(&okstr));
    redisReply queued = text(REDIS_REPLY_STATUS, "QUEUED");
    assert_false(tally_redis_status_ok(&queued));
    assert_false(tally_redis_status_ok(NULL));
}

static void test_pg_rows(void **state)
{
    (void)state;
    int64_t before = -1;
    uint32_t granted = 0;
    assert_true(tally_pg_claim_row("90", "100", 32, &before, &granted));
    assert_int_equal(before, 90);
    assert_int_equal(granted, 10);
    assert_true(tally_pg_claim_row("100", "100", 32, &before, &granted));
    assert_int_equal(granted, 0);
    assert_true(tally_pg_claim_row("0", "32", 32, &before, &granted));
    assert_int_equal(granted, 32);
    assert_false(tally_pg_claim_row("0", "33", 32, &before, &granted)); /* more than asked */
    assert_false(tally_pg_claim_row("10", "9", 32, &before, &granted)); /* went down */
    assert_false(tally_pg_claim_row("-1", "0", 32, &before, &granted)); /* negative */
    assert_false(tally_pg_claim_row("", "0", 32, &before, &granted));   /* empty */
    assert_false(tally_pg_claim_row("1 ", "2", 32, &before, &granted)); /* trailing */
    assert_false(tally_pg_claim_row(NULL, "2", 32, &before, &granted)); /* NULL */
    assert_false(tally_pg_claim_row("9223372036854775808", "9223372036854775808", 32, &before,
                                    &granted)); /* overflow */
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

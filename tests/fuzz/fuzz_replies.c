/* fuzz_replies.c - libFuzzer target for the backends' answers (src/counter/replies.h).
 *
 * Input: bytes 0-3  k, the size of the claim (little-endian uint32)
 *        byte 4     where the RESP bytes are cut in two feeds
 *        the rest   RESP bytes for hiredis' own reader; the same bytes, cut
 *                   at the first NUL (and the next), are the two text
 *                   columns of a PostgreSQL claim row
 *
 * hiredis' reader (the one tally's connections use) turns the bytes into
 * redisReply trees; every node of every tree, and NULL, goes through
 * tally_redis_claim_reply(), tally_redis_peek_reply() and
 * tally_redis_status_ok(). Multi-bulk headers above 1024 elements make the
 * reader calloc() their count before any element arrives, so inputs that
 * hold one skip the RESP part (hiredis' memory, not tally's logic).
 *
 * Invariants (abort on violation):
 *   claim  OK: the node is an array of two integers, before = the first
 *          >= 0, granted = the second, 0 <= granted <= k; NOSCRIPT: an
 *          error reply starting "NOSCRIPT"; ERROR: a NUL-terminated reason;
 *   peek   true: nil (0) or a string that is a count, value >= 0;
 *   status true only for the status reply "OK";
 *   tally_parse_count agrees with an independent reading (digits only,
 *          at most INT64_MAX);
 *   tally_pg_claim_row true: both are counts, before >= 0,
 *          0 <= granted <= k and before + granted = after.
 */
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter/replies.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_replies: invariant violated at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Independent reading of a count: 1 or more digits, value <= INT64_MAX. */
static bool oracle_count(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    while (s[0] == '0' && s[1] != '\0')
        s++;
    size_t n = strlen(s);
    if (n > 19 || (n == 19 && strcmp(s, "9223372036854775807") > 0))
        return false;
    *out = (int64_t)strtoull(s, NULL, 10);
    return true;
}

static void check_count(const char *s)
{
    int64_t got = -1, want = -1;
    bool ok = tally_parse_count(s, &got);
    CHECK(ok == oracle_count(s, &want));
    if (ok)
        CHECK(got == want && got >= 0);
}

static void check_node(const redisReply *r, uint32_t k, int depth)
{
    int64_t before = -1;
    uint32_t granted = UINT32_MAX;
    const char *why = NULL;
    switch (tally_redis_claim_reply(r, k, &before, &granted, &why)) {
    case TALLY_REPLY_OK:
        CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        CHECK(r->element[0]->type == REDIS_REPLY_INTEGER);
        CHECK(r->element[1]->type == REDIS_REPLY_INTEGER);
        CHECK(before >= 0 && before == r->element[0]->integer);
        CHECK(granted <= k && (long long)granted == r->element[1]->integer);
        break;
    case TALLY_REPLY_NOSCRIPT:
        CHECK(r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= 8);
        CHECK(memcmp(r->str, "NOSCRIPT", 8) == 0);
        break;
    case TALLY_REPLY_ERROR:
        CHECK(why != NULL);
        (void)strlen(why); /* terminated: ASan would see a read past it */
        break;
    default:
        CHECK(!"unknown claim result");
    }

    int64_t value = -1;
    if (tally_redis_peek_reply(r, &value)) {
        CHECK(r != NULL && value >= 0);
        if (r->type == REDIS_REPLY_NIL) {
            CHECK(value == 0);
        } else {
            int64_t want = -1;
            CHECK(r->type == REDIS_REPLY_STRING && oracle_count(r->str, &want) && want == value);
        }
    }
    if (tally_redis_status_ok(r))
        CHECK(r->type == REDIS_REPLY_STATUS && r->len == 2 && memcmp(r->str, "OK", 2) == 0);

    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_ERROR) {
        char *copy = malloc(r->len + 1);
        CHECK(copy != NULL);
        memcpy(copy, r->str, r->len);
        copy[r->len] = '\0';
        check_count(copy);
        free(copy);
    }
    if (r->type == REDIS_REPLY_ARRAY && depth < 16)
        for (size_t i = 0; i < r->elements; i++)
            check_node(r->element[i], k, depth + 1);
}

/* Whether a multi-bulk header announces more than 1024 elements. */
static bool huge_multibulk(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '*')
            continue;
        size_t j = i + 1;
        if (j < n && p[j] == '-')
            j++;
        uint64_t v = 0;
        while (j < n && p[j] >= '0' && p[j] <= '9') {
            v = v * 10 + (p[j] - '0');
            if (v > 1024)
                return true;
            j++;
        }
    }
    return false;
}

static void check_resp(const uint8_t *p, size_t n, size_t cut, uint32_t k)
{
    redisReader *rd = redisReaderCreate();
    CHECK(rd != NULL);
    int rc = redisReaderFeed(rd, (const char *)p, cut);
    if (rc == REDIS_OK)
        rc = redisReaderFeed(rd, (const char *)p + cut, n - cut);
    while (rc == REDIS_OK) {
        void *reply = NULL;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL)
            break;
        check_node(reply, k, 0);
        freeReplyObject(reply);
    }
    redisReaderFree(rd);
}

static void check_pg(const uint8_t *p, size_t n, uint32_t k)
{
    /* before: up to the first NUL; after: from there to the next */
    const uint8_t *nul = memchr(p, '\0', n);
    size_t blen = nul ? (size_t)(nul - p) : n;
    const uint8_t *a = nul ? nul + 1 : p + n;
    size_t arest = (size_t)(p + n - a);
    const uint8_t *nul2 = memchr(a, '\0', arest);
    size_t alen = nul2 ? (size_t)(nul2 - a) : arest;

    char *bs = malloc(blen + 1), *as = malloc(alen + 1);
    CHECK(bs != NULL && as != NULL);
    memcpy(bs, p, blen);
    bs[blen] = '\0';
    memcpy(as, a, alen);
    as[alen] = '\0';

    check_count(bs);
    check_count(as);
    int64_t before = -1;
    uint32_t granted = UINT32_MAX;
    if (tally_pg_claim_row(bs, as, k, &before, &granted)) {
        int64_t b = -1, af = -1;
        CHECK(oracle_count(bs, &b) && oracle_count(as, &af));
        CHECK(before == b && before >= 0);
        CHECK(granted <= k);
        CHECK(before + (int64_t)granted == af);
    }
    CHECK(!tally_pg_claim_row(NULL, as, k, &before, &granted));
    CHECK(!tally_pg_claim_row(bs, NULL, k, &before, &granted));
    free(bs);
    free(as);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5 || size > 65536)
        return 0;
    uint32_t k = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                 (uint32_t)data[3] << 24;
    const uint8_t *p = data + 5;
    size_t n = size - 5;
    size_t cut = n ? data[4] % (n + 1) : 0;

    check_node(NULL, k, 0);
    if (!huge_multibulk(p, n))
        check_resp(p, n, cut, k);
    check_pg(p, n, k);
    return 0;
}

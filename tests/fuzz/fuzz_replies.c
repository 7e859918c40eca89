/* fuzz_replies.c - libFuzzer target for the backends' answers (src/counter/replies.h).
 *
 * Input: bytes 0-3  k, the size of the claim (little-endian uint32)
 *        byte 4     where the RESP bytes are cut in two feeds
 *        the rest   RESP bytes for hiredis' own reader; the same bytes, cut
 *                   at NULs, are the four text columns of a PostgreSQL
 *                   claim row
 *
 * hiredis' reader (the one tally's connections use) turns the bytes into
 * redisReply trees; every node of every tree, and NULL, goes through
 * tally_redis_claim_reply(), tally_redis_reset_reply() and
 * tally_redis_peek_reply(). Multi-bulk headers above 1024 elements make
 * the reader calloc() their count before any element arrives, so inputs that hold one skip the RESP
 * part (hiredis' memory, not tally's logic).
 *
 * Invariants (abort on violation):
 *   claim  OK: the node is an array of four integers {before, granted,
 *          had, epoch}, each >= 0, granted <= k, had <= before; NOSCRIPT:
 *          an error reply starting "NOSCRIPT"; ERROR: a NUL-terminated
 *          reason;
 *   reset  true: an integer >= 1, the epoch;
 *   peek   true: nil (0) or a string that is a count, value >= 0;
 *   tally_parse_count agrees with an independent reading (digits only,
 *          at most INT64_MAX);
 *   tally_pg_claim_row true: all four are counts, 0 <= granted <= k,
 *          before + granted = after, had <= before.
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
    tally_claim_answer_t an = {-1, UINT32_MAX, -1, -1};
    const char *why = NULL;
    switch (tally_redis_claim_reply(r, k, &an, &why)) {
    case TALLY_REPLY_OK:
        CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 4);
        for (int i = 0; i < 4; i++)
            CHECK(r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer >= 0);
        CHECK(an.before == r->element[0]->integer);
        CHECK(an.granted <= k && (long long)an.granted == r->element[1]->integer);
        CHECK(an.had == r->element[2]->integer && an.had <= an.before);
        CHECK(an.epoch == r->element[3]->integer);
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

    int64_t epoch = -1;
    if (tally_redis_reset_reply(r, &epoch))
        CHECK(r->type == REDIS_REPLY_INTEGER && epoch >= 1 && epoch == r->integer);

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
    /* four columns, each up to the next NUL (the last to the end) */
    char *f[4];
    const uint8_t *at = p, *end = p + n;
    for (int i = 0; i < 4; i++) {
        const uint8_t *nul = memchr(at, '\0', (size_t)(end - at));
        size_t len = nul ? (size_t)(nul - at) : (size_t)(end - at);
        f[i] = malloc(len + 1);
        CHECK(f[i] != NULL);
        memcpy(f[i], at, len);
        f[i][len] = '\0';
        at = nul ? nul + 1 : end;
        check_count(f[i]);
    }
    tally_claim_answer_t an = {-1, UINT32_MAX, -1, -1};
    if (tally_pg_claim_row((const char *const *)f, k, &an)) {
        int64_t v[4];
        for (int i = 0; i < 4; i++)
            CHECK(oracle_count(f[i], &v[i]));
        CHECK(an.before == v[0] && an.granted <= k && an.before + (int64_t)an.granted == v[1]);
        CHECK(an.had == v[2] && an.had <= an.before && an.epoch == v[3]);
    }
    for (int i = 0; i < 4; i++) {
        char *keep = f[i];
        f[i] = NULL;
        CHECK(!tally_pg_claim_row((const char *const *)f, k, &an));
        f[i] = keep;
    }
    for (int i = 0; i < 4; i++)
        free(f[i]);
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

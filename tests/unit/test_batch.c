/* test_batch.c - the claim queue and settling a batch (src/app/batch.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "app/batch.h"

/* A claim that remembers how it was settled. */
typedef struct rec_claim {
    tally_claim_t claim; /* first: the callback gets this pointer */
    int id;
    int settled_count;
    int order; /* position among all settlements of the test */
    tally_claim_status_t st;
    int64_t number;
} rec_claim_t;

static int settle_seq;

static void on_settled(tally_claim_t *c, int st, int64_t number)
{
    rec_claim_t *r = (rec_claim_t *)c;
    r->settled_count++;
    r->order = settle_seq++;
    r->st = st;
    r->number = number;
}

static void init_claims(rec_claim_t *rc, int n)
{
    settle_seq = 0;
    for (int i = 0; i < n; i++) {
        rc[i].claim.next = (tally_claim_t *)0x1; /* push must overwrite it */
        rc[i].claim.settled = on_settled;
        rc[i].id = i;
        rc[i].settled_count = 0;
        rc[i].order = -1;
        rc[i].st = TALLY_CLAIM_UNAVAILABLE;
        rc[i].number = -1;
    }
}

static tally_claim_t *queue_all(tally_claimq_t *q, rec_claim_t *rc, int n, uint32_t *got)
{
    tally_claimq_init(q);
    for (int i = 0; i < n; i++)
        tally_claimq_push(q, &rc[i].claim);
    assert_int_equal(q->n, (uint32_t)n);
    return tally_claimq_take(q, got);
}

static void test_queue_keeps_arrival_order(void **state)
{
    (void)state;
    rec_claim_t rc[6];
    init_claims(rc, 6);
    tally_claimq_t q;
    uint32_t n = 0;
    tally_claim_t *list = queue_all(&q, rc, 6, &n);
    assert_int_equal(n, 6);
    int i = 0;
    for (tally_claim_t *c = list; c; c = c->next, i++)
        assert_ptr_equal(c, &rc[i].claim);
    assert_int_equal(i, 6);
    /* take empties the queue */
    assert_null(q.head);
    assert_int_equal(q.n, 0);
    uint32_t n2 = 99;
    assert_null(tally_claimq_take(&q, &n2));
    assert_int_equal(n2, 0);
}

static void test_queue_reusable_after_take(void **state)
{
    (void)state;
    rec_claim_t rc[3];
    init_claims(rc, 3);
    tally_claimq_t q;
    tally_claimq_init(&q);
    tally_claimq_push(&q, &rc[0].claim);
    uint32_t n = 0;
    tally_claim_t *first = tally_claimq_take(&q, &n);
    assert_int_equal(n, 1);
    assert_ptr_equal(first, &rc[0].claim);
    assert_null(first->next);
    tally_claimq_push(&q, &rc[1].claim);
    tally_claimq_push(&q, &rc[2].claim);
    tally_claim_t *second = tally_claimq_take(&q, &n);
    assert_int_equal(n, 2);
    assert_ptr_equal(second, &rc[1].claim);
    assert_ptr_equal(second->next, &rc[2].claim);
    assert_null(second->next->next);
    /* the first batch was not disturbed by the second */
    assert_null(first->next);
}

static void test_settle_partial_grant_in_order(void **state)
{
    (void)state;
    rec_claim_t rc[5];
    init_claims(rc, 5);
    tally_claimq_t q;
    uint32_t n = 0;
    tally_claim_t *list = queue_all(&q, rc, 5, &n);
    tally_claims_settle(list, TALLY_CLAIM_OK, 98, 3);
    static const int64_t want[5] = {98, 99, 100, 0, 0};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rc[i].settled_count, 1);
        assert_int_equal(rc[i].order, i);
        assert_int_equal(rc[i].st, TALLY_CLAIM_OK);
        assert_int_equal(rc[i].number, want[i]);
    }
}

static void test_settle_all_granted(void **state)
{
    (void)state;
    rec_claim_t rc[4];
    init_claims(rc, 4);
    tally_claimq_t q;
    uint32_t n = 0;
    tally_claim_t *list = queue_all(&q, rc, 4, &n);
    tally_claims_settle(list, TALLY_CLAIM_OK, 1, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rc[i].settled_count, 1);
        assert_int_equal(rc[i].order, i);
        assert_int_equal(rc[i].st, TALLY_CLAIM_OK);
        assert_int_equal(rc[i].number, i + 1);
    }
}

static void test_settle_none_granted_is_refusal(void **state)
{
    (void)state;
    rec_claim_t rc[3];
    init_claims(rc, 3);
    tally_claimq_t q;
    uint32_t n = 0;
    tally_claim_t *list = queue_all(&q, rc, 3, &n);
    tally_claims_settle(list, TALLY_CLAIM_OK, 101, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rc[i].settled_count, 1);
        assert_int_equal(rc[i].order, i);
        assert_int_equal(rc[i].st, TALLY_CLAIM_OK);
        assert_int_equal(rc[i].number, 0);
    }
}

static void test_settle_unavailable_fails_all(void **state)
{
    (void)state;
    rec_claim_t rc[4];
    init_claims(rc, 4);
    for (int i = 0; i < 4; i++)
        rc[i].st = TALLY_CLAIM_OK; /* so that the settled status is observed */
    tally_claimq_t q;
    uint32_t n = 0;
    tally_claim_t *list = queue_all(&q, rc, 4, &n);
    /* Whatever first/granted say, nothing is granted when unavailable. */
    tally_claims_settle(list, TALLY_CLAIM_UNAVAILABLE, 7, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rc[i].settled_count, 1);
        assert_int_equal(rc[i].order, i);
        assert_int_equal(rc[i].st, TALLY_CLAIM_UNAVAILABLE);
        assert_int_equal(rc[i].number, 0);
    }
}

static void test_settle_empty_list(void **state)
{
    (void)state;
    settle_seq = 0;
    tally_claims_settle(NULL, TALLY_CLAIM_OK, 1, 5);
    tally_claims_settle(NULL, TALLY_CLAIM_UNAVAILABLE, 0, 0);
    assert_int_equal(settle_seq, 0);
}

/* The callback may free its claim: settling must not touch it afterwards
 * (the sanitizer build turns a violation into a failure). */
typedef struct heap_claim {
    tally_claim_t claim;
    int id;
} heap_claim_t;

static int64_t freed_numbers[64];
static int freed_ids[64];
static int freed_count;

static void on_settled_free(tally_claim_t *c, int st, int64_t number)
{
    heap_claim_t *h = (heap_claim_t *)c;
    assert_int_equal(st, TALLY_CLAIM_OK);
    freed_numbers[freed_count] = number;
    freed_ids[freed_count] = h->id;
    freed_count++;
    /* poison before freeing, so a read of next after the callback shows */
    h->claim.next = (tally_claim_t *)0x10;
    free(h);
}

static void test_settle_callback_may_free(void **state)
{
    (void)state;
    tally_claimq_t q;
    tally_claimq_init(&q);
    for (int i = 0; i < 40; i++) {
        heap_claim_t *h = malloc(sizeof *h);
        assert_non_null(h);
        h->claim.settled = on_settled_free;
        h->id = i;
        tally_claimq_push(&q, &h->claim);
    }
    uint32_t n = 0;
    tally_claim_t *list = tally_claimq_take(&q, &n);
    assert_int_equal(n, 40);
    freed_count = 0;
    tally_claims_settle(list, TALLY_CLAIM_OK, 1000, 25);
    assert_int_equal(freed_count, 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(freed_ids[i], i);
        assert_int_equal(freed_numbers[i], i < 25 ? 1000 + i : 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_keeps_arrival_order),
        cmocka_unit_test(test_queue_reusable_after_take),
        cmocka_unit_test(test_settle_partial_grant_in_order),
        cmocka_unit_test(test_settle_all_granted),
        cmocka_unit_test(test_settle_none_granted_is_refusal),
        cmocka_unit_test(test_settle_unavailable_fails_all),
        cmocka_unit_test(test_settle_empty_list),
        cmocka_unit_test(test_settle_callback_may_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_counter.c - the memory counter's arithmetic at the cap, alone and
 * under threads hammering it, and its hook table (src/counter/counter.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <sched.h>

#include <cmocka.h>

#include "counter/counter.h"

static void test_take_one_at_a_time(void **state)
{
    (void)state;
    _Atomic int64_t value = 0;
    for (int64_t want = 1; want <= 5; want++) {
        int64_t first = -1;
        assert_int_equal(tally_memory_take(&value, 5, 1, &first), 1);
        assert_int_equal(first, want);
        assert_int_equal(atomic_load(&value), want);
    }
    int64_t first = -1;
    assert_int_equal(tally_memory_take(&value, 5, 1, &first), 0);
    assert_int_equal(atomic_load(&value), 5);
}

static void test_take_partial_at_cap(void **state)
{
    (void)state;
    _Atomic int64_t value = 95;
    int64_t first = -1;
    assert_int_equal(tally_memory_take(&value, 100, 10, &first), 5);
    assert_int_equal(first, 96);
    assert_int_equal(atomic_load(&value), 100);
    assert_int_equal(tally_memory_take(&value, 100, 10, &first), 0);
    assert_int_equal(atomic_load(&value), 100);
}

static void test_take_exactly_to_cap(void **state)
{
    (void)state;
    _Atomic int64_t value = 0;
    int64_t first = -1;
    assert_int_equal(tally_memory_take(&value, 100, 100, &first), 100);
    assert_int_equal(first, 1);
    assert_int_equal(atomic_load(&value), 100);
    assert_int_equal(tally_memory_take(&value, 100, 1, &first), 0);
}

static void test_take_cap_one(void **state)
{
    (void)state;
    _Atomic int64_t value = 0;
    int64_t first = -1;
    assert_int_equal(tally_memory_take(&value, 1, 7, &first), 1);
    assert_int_equal(first, 1);
    assert_int_equal(tally_memory_take(&value, 1, 7, &first), 0);
    assert_int_equal(atomic_load(&value), 1);
}

static void test_take_never_moves_past_cap(void **state)
{
    (void)state;
    /* A value already past the cap (a lowered --cap over an old count)
     * grants nothing and is left alone. */
    _Atomic int64_t value = 150;
    int64_t first = -1;
    assert_int_equal(tally_memory_take(&value, 100, 1, &first), 0);
    assert_int_equal(tally_memory_take(&value, 100, UINT32_MAX, &first), 0);
    assert_int_equal(atomic_load(&value), 150);
}

static void test_take_large_values(void **state)
{
    (void)state;
    const int64_t cap = 1000000000000000LL; /* TALLY_CAP_MAX */
    _Atomic int64_t value = cap - 3;
    int64_t first = -1;
    assert_int_equal(tally_memory_take(&value, cap, UINT32_MAX, &first), 3);
    assert_int_equal(first, cap - 2);
    assert_int_equal(atomic_load(&value), cap);

    atomic_store(&value, 0);
    assert_int_equal(tally_memory_take(&value, cap, UINT32_MAX, &first), UINT32_MAX);
    assert_int_equal(first, 1);
    assert_int_equal(atomic_load(&value), (int64_t)UINT32_MAX);
    assert_int_equal(tally_memory_take(&value, cap, 2, &first), 2);
    assert_int_equal(first, (int64_t)UINT32_MAX + 1);
}

/* ---- threads hammering one counter ---- */

#define HAMMER_THREADS 8
#define HAMMER_CAP     1000000

typedef struct hammer {
    _Atomic int64_t value;
    int64_t cap;
    _Atomic unsigned char *seen; /* per number 1..cap: times granted */
    _Atomic int64_t granted_total;
    _Atomic int bad_range;  /* a grant outside 1..cap */
    _Atomic int duplicates; /* a number granted twice */
    _Atomic int done;
    _Atomic int64_t max_seen; /* largest value an observer read */
    pthread_barrier_t start;
} hammer_t;

typedef struct hammer_arg {
    hammer_t *h;
    unsigned seed;
} hammer_arg_t;

static void *hammer_worker(void *p)
{
    hammer_arg_t *a = p;
    hammer_t *h = a->h;
    unsigned seed = a->seed;
    pthread_barrier_wait(&h->start);
    for (;;) {
        seed = seed * 1103515245u + 12345u;
        /* mostly single numbers, as under light load; some batches */
        uint32_t k = (seed >> 16) % 8 == 0 ? 1 + (seed >> 20) % 16 : 1;
        int64_t first = 0;
        uint32_t n = tally_memory_take(&h->value, h->cap, k, &first);
        if (n > k)
            atomic_fetch_add(&h->bad_range, 1);
        if (n == 0)
            break;
        for (uint32_t i = 0; i < n; i++) {
            int64_t num = first + i;
            if (num < 1 || num > h->cap) {
                atomic_fetch_add(&h->bad_range, 1);
                continue;
            }
            if (atomic_fetch_add(&h->seen[num], 1) != 0)
                atomic_fetch_add(&h->duplicates, 1);
        }
        atomic_fetch_add(&h->granted_total, (int64_t)n);
    }
    return NULL;
}

static void *hammer_observer(void *p)
{
    hammer_t *h = p;
    pthread_barrier_wait(&h->start);
    while (!atomic_load(&h->done)) {
        int64_t v = atomic_load(&h->value);
        if (v > atomic_load(&h->max_seen))
            atomic_store(&h->max_seen, v);
        sched_yield(); /* leave the cores to the workers */
    }
    return NULL;
}

static void hammer_run(int64_t cap, int nthreads, unsigned seed)
{
    hammer_t *h = calloc(1, sizeof *h);
    assert_non_null(h);
    h->cap = cap;
    h->seen = calloc((size_t)cap + 1, sizeof *h->seen);
    assert_non_null(h->seen);
    assert_int_equal(pthread_barrier_init(&h->start, NULL, (unsigned)nthreads + 1), 0);
    pthread_t t[HAMMER_THREADS], obs;
    hammer_arg_t args[HAMMER_THREADS];
    for (int i = 0; i < nthreads; i++) {
        args[i].h = h;
        args[i].seed = seed + (unsigned)i * 7919u;
        assert_int_equal(pthread_create(&t[i], NULL, hammer_worker, &args[i]), 0);
    }
    assert_int_equal(pthread_create(&obs, NULL, hammer_observer, h), 0);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    atomic_store(&h->done, 1);
    pthread_join(obs, NULL);
    pthread_barrier_destroy(&h->start);

    int missing = 0;
    for (int64_t i = 1; i <= cap; i++)
        missing += atomic_load(&h->seen[i]) == 0;
    int64_t total = atomic_load(&h->granted_total);
    int dups = atomic_load(&h->duplicates);
    int bad = atomic_load(&h->bad_range);
    int64_t max_seen = atomic_load(&h->max_seen);
    int64_t final = atomic_load(&h->value);
    free((void *)h->seen);
    free(h);

    assert_int_equal(total, cap);
    assert_int_equal(dups, 0);
    assert_int_equal(bad, 0);
    assert_int_equal(missing, 0);
    assert_true(max_seen <= cap);
    assert_int_equal(final, cap);
}

static void test_threads_grant_exactly_cap(void **state)
{
    (void)state;
    hammer_run(HAMMER_CAP, HAMMER_THREADS, 1);
}

/* ---- many rounds racing to a small cap ----
 *
 * The interesting moment is reaching the cap. Workers stay alive across
 * rounds and spin on a round number, so that they start each round
 * together (a barrier's wake-up skew is longer than a whole round). */

#define RACE_THREADS 3
#define RACE_ROUNDS  40000
#define RACE_CAP_MAX 48

typedef struct race {
    _Atomic int64_t value;
    _Atomic int64_t cap;
    _Atomic unsigned round; /* bumped by the main thread to start a round */
    _Atomic unsigned finished;
    _Atomic int stop;
    _Atomic int64_t granted;
    _Atomic int bad_range;
    _Atomic int duplicates;
    _Atomic unsigned char seen[RACE_CAP_MAX + 1];
} race_t;

static void *race_worker(void *p)
{
    race_t *r = p;
    unsigned seen_round = 0;
    unsigned seed = (unsigned)(uintptr_t)&seen_round;
    for (;;) {
        unsigned spins = 0;
        while (atomic_load(&r->round) == seen_round && !atomic_load(&r->stop)) {
            if (++spins % 64 == 0)
                sched_yield();
        }
        if (atomic_load(&r->stop))
            return NULL;
        seen_round = atomic_load(&r->round);
        int64_t cap = atomic_load(&r->cap);
        for (;;) {
            seed = seed * 1103515245u + 12345u;
            uint32_t k = (seed >> 16) % 4 == 0 ? 2 : 1;
            int64_t first = 0;
            uint32_t n = tally_memory_take(&r->value, cap, k, &first);
            if (n == 0)
                break;
            if (n > k)
                atomic_fetch_add(&r->bad_range, 1);
            for (uint32_t i = 0; i < n; i++) {
                int64_t num = first + i;
                if (num < 1 || num > cap)
                    atomic_fetch_add(&r->bad_range, 1);
                else if (atomic_fetch_add(&r->seen[num], 1) != 0)
                    atomic_fetch_add(&r->duplicates, 1);
            }
            atomic_fetch_add(&r->granted, (int64_t)n);
        }
        atomic_fetch_add(&r->finished, 1);
    }
}

static void test_threads_many_small_caps(void **state)
{
    (void)state;
    race_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    pthread_t t[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_worker, r), 0);
    int wrong_total = 0, over_cap = 0, missing = 0;
    for (unsigned round = 1; round <= RACE_ROUNDS; round++) {
        int64_t cap = 1 + round % RACE_CAP_MAX;
        atomic_store(&r->cap, cap);
        atomic_store(&r->value, 0);
        atomic_store(&r->granted, 0);
        atomic_store(&r->finished, 0);
        for (int i = 0; i <= RACE_CAP_MAX; i++)
            atomic_store(&r->seen[i], 0);
        atomic_store(&r->round, round);
        while (atomic_load(&r->finished) != RACE_THREADS)
            sched_yield();
        wrong_total += atomic_load(&r->granted) != cap;
        over_cap += atomic_load(&r->value) != cap;
        for (int64_t i = 1; i <= cap; i++)
            missing += atomic_load(&r->seen[i]) == 0;
    }
    atomic_store(&r->stop, 1);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    int bad = atomic_load(&r->bad_range), dups = atomic_load(&r->duplicates);
    free(r);
    if (wrong_total || over_cap || missing || bad || dups)
        fail_msg("%d rounds: %d granted a wrong total, %d left the counter off the cap, "
                 "%d numbers never granted, %d grants out of range, %d duplicates",
                 RACE_ROUNDS, wrong_total, over_cap, missing, bad, dups);
}

/* ---- the hook table ---- */

typedef struct claim_result {
    int calls;
    tally_claim_status_t st;
    int64_t first;
    uint32_t granted;
} claim_result_t;

static void on_claim(void *arg, tally_claim_status_t st, int64_t first, uint32_t granted)
{
    claim_result_t *r = arg;
    r->calls++;
    r->st = st;
    r->first = first;
    r->granted = granted;
}

static void on_reset(void *arg, bool ok)
{
    int *r = arg;
    *r = ok ? 1 : 2;
}

static int closed_calls;
static tally_counter_t *closed_counter;

static void on_closed(tally_counter_t *c)
{
    closed_calls++;
    closed_counter = c;
}

static void test_memory_counter_ops(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    tally_memory_shared_t shared;
    atomic_init(&shared.value, 0);
    /* Two workers share one counter. */
    tally_counter_t *a = tally_counter_memory_new(&loop, &shared, 10);
    tally_counter_t *b = tally_counter_memory_new(&loop, &shared, 10);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a->ops->name, "memory");
    assert_int_equal(a->cap, 10);
    assert_ptr_equal(a->loop, &loop);
    assert_true(a->ops->ready(a));

    claim_result_t r = {0};
    a->ops->claim(a, 4, on_claim, &r); /* the memory backend answers at once */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.st, TALLY_CLAIM_OK);
    assert_int_equal(r.first, 1);
    assert_int_equal(r.granted, 4);

    memset(&r, 0, sizeof r);
    b->ops->claim(b, 4, on_claim, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.first, 5);
    assert_int_equal(r.granted, 4);

    memset(&r, 0, sizeof r);
    a->ops->claim(a, 4, on_claim, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.st, TALLY_CLAIM_OK);
    assert_int_equal(r.first, 9);
    assert_int_equal(r.granted, 2);

    memset(&r, 0, sizeof r);
    b->ops->claim(b, 1, on_claim, &r);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.st, TALLY_CLAIM_OK);
    assert_int_equal(r.granted, 0);
    assert_int_equal(atomic_load(&shared.value), 10);

    int reset = 0;
    b->ops->reset(b, on_reset, &reset);
    assert_int_equal(reset, 1);
    assert_int_equal(atomic_load(&shared.value), 0);
    memset(&r, 0, sizeof r);
    a->ops->claim(a, 1, on_claim, &r);
    assert_int_equal(r.first, 1);
    assert_int_equal(r.granted, 1);

    closed_calls = 0;
    a->ops->close(a, on_closed);
    assert_int_equal(closed_calls, 1);
    assert_ptr_equal(closed_counter, a);
    b->ops->close(b, on_closed);
    assert_int_equal(closed_calls, 2);
    assert_ptr_equal(closed_counter, b);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_one_at_a_time),
        cmocka_unit_test(test_take_partial_at_cap),
        cmocka_unit_test(test_take_exactly_to_cap),
        cmocka_unit_test(test_take_cap_one),
        cmocka_unit_test(test_take_never_moves_past_cap),
        cmocka_unit_test(test_take_large_values),
        cmocka_unit_test(test_threads_grant_exactly_cap),
        cmocka_unit_test(test_threads_many_small_caps),
        cmocka_unit_test(test_memory_counter_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_floor.c - the floor (src/counter/floor.h): epochs, the highest value
 * seen, what a counter below it is raised to, and the loss counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "counter/floor.h"

typedef struct seen {
    int64_t epoch, value, to;
} seen_t;

static seen_t get(tally_floor_t *f)
{
    seen_t s;
    tally_floor_get(f, &s.epoch, &s.value, &s.to);
    assert_true(s.to >= s.value);
    return s;
}

static void test_epochs_and_values(void **state)
{
    (void)state;
    tally_floor_t f;
    assert_int_equal(tally_floor_init(&f), 0);
    seen_t s = get(&f);
    assert_int_equal(s.epoch, 0);
    assert_int_equal(s.value, 0);
    assert_int_equal(s.to, 0); /* nothing seen: nothing to raise to */
    tally_floor_saw(&f, 0, 40);
    tally_floor_saw(&f, 0, 30); /* an older answer: the floor stays */
    assert_int_equal(get(&f).value, 40);
    tally_floor_saw(&f, 2, 5); /* a reset seen: the new epoch's value, lower */
    s = get(&f);
    assert_int_equal(s.epoch, 2);
    assert_int_equal(s.value, 5);
    tally_floor_saw(&f, 1, 1000); /* overtaken by the reset: ignored */
    s = get(&f);
    assert_int_equal(s.epoch, 2);
    assert_int_equal(s.value, 5);
    assert_int_equal(atomic_load(&f.shown), 5);
    tally_floor_destroy(&f);
}

static void test_raise_covers_claims_in_flight(void **state)
{
    (void)state;
    tally_floor_t f;
    assert_int_equal(tally_floor_init(&f), 0);
    tally_floor_saw(&f, 0, 100);
    int64_t base = get(&f).to;
    tally_floor_claim_start(&f, 64);
    tally_floor_claim_start(&f, 16);
    assert_true(get(&f).to >= base + 80); /* what those claims may have taken */
    tally_floor_claim_end(&f, 64);
    tally_floor_claim_end(&f, 16);
    assert_int_equal(atomic_load(&f.inflight), 0);
    tally_floor_destroy(&f);
}

static void test_raise_grows_with_rate_and_time(void **state)
{
    (void)state;
    tally_floor_t f;
    assert_int_equal(tally_floor_init(&f), 0);
    tally_floor_saw(&f, 0, 1000);
    usleep(2000);
    tally_floor_saw(&f, 0, 3000); /* at most 1 number per µs */
    seen_t s = get(&f);
    assert_int_equal(s.value, 3000);
    assert_true(s.to > s.value); /* 1 ms of slack at that rate, twice */
    usleep(20000);
    assert_true(get(&f).to > s.to); /* others could have taken more since */
    tally_floor_destroy(&f);
}

static void test_losses_are_counted(void **state)
{
    (void)state;
    tally_floor_t f;
    assert_int_equal(tally_floor_init(&f), 0);
    tally_floor_raised(&f, 0, 500);
    tally_floor_raised(&f, 480, 500);
    tally_floor_raised(&f, 500, 500); /* the epoch only */
    assert_int_equal(atomic_load(&f.raises), 3);
    assert_int_equal(atomic_load(&f.lost), 520);
    tally_floor_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epochs_and_values),
        cmocka_unit_test(test_raise_covers_claims_in_flight),
        cmocka_unit_test(test_raise_grows_with_rate_and_time),
        cmocka_unit_test(test_losses_are_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

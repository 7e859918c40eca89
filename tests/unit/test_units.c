/* test_units.c - the duration and size parsers behind the timeout and size
 * flags (src/base/units.h): what each accepts and its value, and that
 * anything else is refused with a reason, the output left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/units.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } good[] = {
        {"10", 10000},   {"10s", 10000},  {"1.5s", 1500},      {"250ms", 250},
        {"2m", 120000},  {"0", 0},        {"0ms", 0},          {"0.5", 500},
        {"1.25s", 1250}, {"1.5m", 90000}, {"86400", 86400000}, {"1000ms", 1000},
        {"0.001s", 1},   {"30s", 30000},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t ms = 12345;
        char e[256] = "";
        if (tally_parse_duration_ms(good[i].s, &ms, e, sizeof e) != 0)
            fail_msg("duration '%s' refused: %s", good[i].s, e);
        if (ms != good[i].ms)
            fail_msg("duration '%s' is %llu ms, want %llu", good[i].s, (unsigned long long)ms,
                     (unsigned long long)good[i].ms);
    }
    static const char *const bad[] = {"",
                                      "s",
                                      "ms",
                                      "m",
                                      "abc",
                                      "10x",
                                      "10 s",
                                      " 10",
                                      "10s ",
                                      "-1",
                                      "+1",
                                      "1.5.5",
                                      "1e3",
                                      "10sec",
                                      "5mss",
                                      ".",
                                      "0x10",
                                      "10ss",
                                      "99999999999999999999",
                                      "1,5s",
                                      "s10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 777;
        char e[256] = "";
        if (tally_parse_duration_ms(bad[i], &ms, e, sizeof e) != -1)
            fail_msg("duration '%s' accepted as %llu ms", bad[i], (unsigned long long)ms);
        assert_int_equal(ms, 777);
        if (e[0] == '\0')
            fail_msg("duration '%s': no reason given", bad[i]);
        assert_null(strchr(e, '\n'));
    }
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t bytes;
    } good[] = {
        {"8192", 8192},  {"0", 0},        {"8k", 8192},          {"8K", 8192},
        {"1m", 1048576}, {"1M", 1048576}, {"1024m", 1073741824}, {"256", 256},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        char e[256] = "";
        if (tally_parse_size(good[i].s, &v, e, sizeof e) != 0)
            fail_msg("size '%s' refused: %s", good[i].s, e);
        if (v != good[i].bytes)
            fail_msg("size '%s' is %llu, want %llu", good[i].s, (unsigned long long)v,
                     (unsigned long long)good[i].bytes);
    }
    static const char *const bad[] = {"",
                                      "k",
                                      "m",
                                      "8g",
                                      "-1",
                                      "+8",
                                      "8 k",
                                      " 8",
                                      "8k ",
                                      "1.5k",
                                      "8kk",
                                      "abc",
                                      "0x10",
                                      "99999999999999999999",
                                      "18014398509481984k"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 777;
        char e[256] = "";
        if (tally_parse_size(bad[i], &v, e, sizeof e) != -1)
            fail_msg("size '%s' accepted as %llu", bad[i], (unsigned long long)v);
        assert_int_equal(v, 777);
        if (e[0] == '\0')
            fail_msg("size '%s': no reason given", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

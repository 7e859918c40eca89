/* test_config_errors.c - what the configuration (src/config.h) refuses, and
 * how: bad values of every flag and its variable, values too long and
 * empty, unknown options, a flag missing its value, postgres without a
 * database URL; each an error of one line naming the flag or variable,
 * whatever the value holds. The helpers are config_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config_check.h"

typedef struct bad_case {
    const char *flag;
    const char *env;
    const char *value;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"--host", "TALLY_HOST", "example.com"},
    {"--host", "TALLY_HOST", "1.2.3"},
    {"--host", "TALLY_HOST", "256.0.0.1"},
    {"--host", "TALLY_HOST", "::g"},
    {"--host", "TALLY_HOST", "0.0.0.0 "},
    {"--port", "TALLY_PORT", "0"},
    {"--port", "TALLY_PORT", "65536"},
    {"--port", "TALLY_PORT", "80a"},
    {"--port", "TALLY_PORT", "-1"},
    {"--port", "TALLY_PORT", "+80"},
    {"--port", "TALLY_PORT", " 80"},
    {"--port", "TALLY_PORT", "0x50"},
    {"--port", "TALLY_PORT", "99999999999999999999999"},
    {"--threads", "TALLY_THREADS", "0"},
    {"--threads", "TALLY_THREADS", "1025"},
    {"--threads", "TALLY_THREADS", "many"},
    {"--threads", "TALLY_THREADS", "-2"},
    {"--cap", "TALLY_CAP", "0"},
    {"--cap", "TALLY_CAP", "-5"},
    {"--cap", "TALLY_CAP", "1e3"},
    {"--cap", "TALLY_CAP", "10.5"},
    {"--cap", "TALLY_CAP", "1000000000000001"},
    {"--cap", "TALLY_CAP", "18446744073709551616"},
    {"--backend", "TALLY_BACKEND", "sqlite"},
    {"--backend", "TALLY_BACKEND", "memory,redis"},
    {"--redis-url", "TALLY_REDIS_URL", "redis://a b:6379"},
    {"--redis-url", "TALLY_REDIS_URL", "redis://\x7f"},
    {"--key", "TALLY_KEY", "two words"},
    {"--key", "TALLY_KEY", "tab\there"},
    {"--log-level", "TALLY_LOG_LEVEL", "trace"},
    {"--log-level", "TALLY_LOG_LEVEL", "20"},
    {"--log-format", "TALLY_LOG_FORMAT", "xml"},
    {"--max-connections", "TALLY_MAX_CONNECTIONS", "0"},
    {"--max-connections", "TALLY_MAX_CONNECTIONS", "1000001"},
    {"--max-connections", "TALLY_MAX_CONNECTIONS", "lots"},
    {"--max-header-size", "TALLY_MAX_HEADER_SIZE", "255"},
    {"--max-header-size", "TALLY_MAX_HEADER_SIZE", "2m"},
    {"--max-header-size", "TALLY_MAX_HEADER_SIZE", "8x"},
    {"--max-body-size", "TALLY_MAX_BODY_SIZE", "1025m"},
    {"--max-body-size", "TALLY_MAX_BODY_SIZE", "2g"},
    {"--header-timeout", "TALLY_HEADER_TIMEOUT", "0"},
    {"--header-timeout", "TALLY_HEADER_TIMEOUT", "abc"},
    {"--header-timeout", "TALLY_HEADER_TIMEOUT", "10 s"},
    {"--header-timeout", "TALLY_HEADER_TIMEOUT", "86401"},
    {"--idle-timeout", "TALLY_IDLE_TIMEOUT", "-1"},
    {"--idle-timeout", "TALLY_IDLE_TIMEOUT", "0ms"},
    {"--shutdown-timeout", "TALLY_SHUTDOWN_TIMEOUT", "soon"},
    {"--shutdown-timeout", "TALLY_SHUTDOWN_TIMEOUT", "1441m"},
    {"--backend-timeout", "TALLY_BACKEND_TIMEOUT", "5ms"},
    {"--backend-timeout", "TALLY_BACKEND_TIMEOUT", "never"},
    {"--redis-url", "TALLY_REDIS_URL", "http://127.0.0.1:6379"},
    {"--redis-url", "TALLY_REDIS_URL", "redis://host:notaport/0"},
    {"--database-url", "TALLY_DATABASE_URL", "host='unterminated"},
    {"--database-url", "TALLY_DATABASE_URL", "postgresql://h/db?nosuchoption=1"},
};

static void test_bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case_t *bc = &bad_cases[i];
        char joined[256], var[256], what[300];
        snprintf(joined, sizeof joined, "%s=%s", bc->flag, bc->value);
        snprintf(var, sizeof var, "%s=%s", bc->env, bc->value);
        snprintf(what, sizeof what, "%s '%s'", bc->flag, bc->value);
        expect_error(ARGS(bc->flag, bc->value), NOENV, bc->flag, what);
        expect_error(ARGS(joined), NOENV, bc->flag, what);
        snprintf(what, sizeof what, "%s", var);
        expect_error(NOARGS, ENV(var), bc->env, what);
    }
}

static void test_bad_long_values(void **state)
{
    (void)state;
    static char longkey[202], longurl[5002], longredis[1100];
    memset(longkey, 'k', 201);
    memset(longurl, 'd', 5001);
    memcpy(longredis, "redis://", 8);
    memset(longredis + 8, 'h', 1030);
    expect_error(ARGS("--key", longkey), NOENV, "--key", "201-byte key");
    expect_error(ARGS("--database-url", longurl), NOENV, "--database-url", "5001-byte URL");
    expect_error(ARGS("--redis-url", longredis), NOENV, "--redis-url", "1038-byte URL");
    /* an error message fits whatever buffer it is given */
    tally_config_t cfg;
    char small[16];
    memset(small, 'Z', sizeof small);
    tally_config_defaults(&cfg);
    assert_int_equal(tally_config_parse(&cfg, 3, (char *const *)ARGS("--port", "nope"), NULL, small,
                                        sizeof small),
                     TALLY_CONFIG_ERROR);
    assert_non_null(memchr(small, '\0', sizeof small));
}

static void test_empty_values(void **state)
{
    (void)state;
    expect_error(ARGS("--port="), NOENV, "--port", "--port=");
    expect_error(ARGS("--port", ""), NOENV, "--port", "--port ''");
    expect_error(ARGS("--key="), NOENV, "--key", "--key=");
    expect_error(ARGS("--database-url", ""), NOENV, "--database-url", "--database-url ''");
}

static void test_error_message_is_one_line(void **state)
{
    (void)state;
    /* Values come from outside: a newline in one must not split the line. */
    int ok = 0;
    ok += error_names(ARGS("--cap", "1\n2"), NOENV, "--cap", "--cap with a newline");
    ok += error_names(ARGS("--log-level=info\r\nerror"), NOENV, "--log-level",
                      "--log-level with CRLF");
    ok += error_names(NOARGS, ENV("TALLY_PORT=80\n"), "TALLY_PORT", "TALLY_PORT with a newline");
    ok += error_names(ARGS("--po\nrt", "1"), NOENV, "rt", "unknown option with a newline");
    assert_int_equal(ok, 4);
}

static void test_unknown_options(void **state)
{
    (void)state;
    expect_error(ARGS("--nope"), NOENV, "--nope", "--nope");
    expect_error(ARGS("--nope=3"), NOENV, "--nope", "--nope=3");
    expect_error(ARGS("--port", "9000", "--porta", "1"), NOENV, "--porta", "--porta");
    expect_error(ARGS("--por", "1"), NOENV, "--por", "--por");
    expect_error(ARGS("stray"), NOENV, "stray", "positional argument");
    expect_error(ARGS("-p", "80"), NOENV, "-p", "short option");
    expect_error(ARGS("--PORT", "80"), NOENV, "--PORT", "upper-case flag");
}

static void test_missing_value(void **state)
{
    (void)state;
    expect_error(ARGS("--port"), NOENV, "--port", "--port at the end");
    expect_error(ARGS("--cap", "5", "--key"), NOENV, "--key", "--key at the end");
    expect_error(ARGS("--header-timeout"), NOENV, "--header-timeout",
                 "--header-timeout at the end");
}

static void test_postgres_needs_database_url(void **state)
{
    (void)state;
    tally_config_t cfg;
    expect_error(ARGS("--backend", "postgres"), NOENV, "--database-url", "postgres without URL");
    expect_error(NOARGS, ENV("TALLY_BACKEND=postgres"), "--database-url",
                 "TALLY_BACKEND=postgres without URL");
    assert_int_equal(run(&cfg, ARGS("--backend", "postgres", "--database-url", "dbname=t"), NOENV),
                     TALLY_CONFIG_RUN);
    assert_string_equal(cfg.backend, "postgres");
    assert_string_equal(cfg.database_url, "dbname=t");
    assert_int_equal(run(&cfg, ARGS("--backend=postgres"), ENV("DATABASE_URL=postgresql:///x")),
                     TALLY_CONFIG_RUN);
    assert_string_equal(cfg.backend, "postgres");
    assert_string_equal(cfg.database_url, "postgresql:///x");
    /* A database URL alone does not pick the backend. */
    assert_int_equal(run(&cfg, ARGS("--database-url", "dbname=t"), NOENV), TALLY_CONFIG_RUN);
    assert_string_equal(cfg.backend, "memory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_long_values),
        cmocka_unit_test(test_empty_values),
        cmocka_unit_test(test_error_message_is_one_line),
        cmocka_unit_test(test_unknown_options),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_postgres_needs_database_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

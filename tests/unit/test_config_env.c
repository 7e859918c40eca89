/* test_config_env.c - the environment beyond each flag's TALLY_* twin
 * (src/config.h; the twins are in test_config.c): the PORT, REDIS_URL and
 * DATABASE_URL aliases and their order against the twins and flags, errors
 * naming the variable read, an empty variable counting as unset, names that
 * only look alike, TALLY_ADMIN_TOKEN with no flag. The helpers are
 * config_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config_check.h"

static void test_aliases(void **state)
{
    (void)state;
    tally_config_t cfg;
    assert_int_equal(run(&cfg, NOARGS, ENV("PORT=9000")), TALLY_CONFIG_RUN);
    assert_int_equal(cfg.port, 9000);
    assert_int_equal(run(&cfg, NOARGS, ENV("PORT=9000", "TALLY_PORT=9001")), TALLY_CONFIG_RUN);
    assert_int_equal(cfg.port, 9001);
    assert_int_equal(run(&cfg, NOARGS, ENV("TALLY_PORT=9001", "PORT=9000")), TALLY_CONFIG_RUN);
    assert_int_equal(cfg.port, 9001);
    assert_int_equal(run(&cfg, ARGS("--port", "9002"), ENV("PORT=9000", "TALLY_PORT=9001")),
                     TALLY_CONFIG_RUN);
    assert_int_equal(cfg.port, 9002);
    assert_int_equal(run(&cfg, ARGS("--port=9002"), ENV("PORT=9000")), TALLY_CONFIG_RUN);
    assert_int_equal(cfg.port, 9002);

    assert_int_equal(run(&cfg, NOARGS, ENV("REDIS_URL=redis://r:1/0")), TALLY_CONFIG_RUN);
    assert_string_equal(cfg.redis_url, "redis://r:1/0");
    assert_int_equal(
        run(&cfg, NOARGS, ENV("REDIS_URL=redis://r:1/0", "TALLY_REDIS_URL=redis://t:2/0")),
        TALLY_CONFIG_RUN);
    assert_string_equal(cfg.redis_url, "redis://t:2/0");
    assert_int_equal(run(&cfg, ARGS("--redis-url", "redis://f:3/0"),
                         ENV("REDIS_URL=redis://r:1/0", "TALLY_REDIS_URL=redis://t:2/0")),
                     TALLY_CONFIG_RUN);
    assert_string_equal(cfg.redis_url, "redis://f:3/0");

    assert_int_equal(run(&cfg, NOARGS, ENV("DATABASE_URL=postgresql:///a")), TALLY_CONFIG_RUN);
    assert_string_equal(cfg.database_url, "postgresql:///a");
    assert_int_equal(run(&cfg, NOARGS,
                         ENV("TALLY_DATABASE_URL=postgresql:///t", "DATABASE_URL=postgresql:///a")),
                     TALLY_CONFIG_RUN);
    assert_string_equal(cfg.database_url, "postgresql:///t");
    assert_int_equal(run(&cfg, ARGS("--database-url=dbname=f"),
                         ENV("TALLY_DATABASE_URL=postgresql:///t", "DATABASE_URL=postgresql:///a")),
                     TALLY_CONFIG_RUN);
    assert_string_equal(cfg.database_url, "dbname=f");
}

static void test_alias_errors_name_the_variable(void **state)
{
    (void)state;
    expect_error(NOARGS, ENV("PORT=http"), "PORT", "PORT=http");
    expect_error(NOARGS, ENV("PORT=9000", "TALLY_PORT=x"), "TALLY_PORT", "TALLY_PORT=x");
    expect_error(NOARGS, ENV("REDIS_URL=redis://a b"), "REDIS_URL", "REDIS_URL with a space");
}

static void test_empty_env_is_unset(void **state)
{
    (void)state;
    tally_config_t cfg, want;
    tally_config_defaults(&want);
    assert_int_equal(
        run(&cfg, NOARGS,
            ENV("TALLY_HOST=", "TALLY_PORT=", "PORT=", "TALLY_THREADS=", "TALLY_CAP=",
                "TALLY_BACKEND=", "TALLY_REDIS_URL=", "REDIS_URL=", "TALLY_DATABASE_URL=",
                "DATABASE_URL=", "TALLY_KEY=", "TALLY_LOG_LEVEL=", "TALLY_LOG_FORMAT=",
                "TALLY_MAX_CONNECTIONS=", "TALLY_MAX_HEADER_SIZE=", "TALLY_MAX_BODY_SIZE=",
                "TALLY_HEADER_TIMEOUT=", "TALLY_IDLE_TIMEOUT=", "TALLY_SHUTDOWN_TIMEOUT=",
                "TALLY_ADMIN_TOKEN=")),
        TALLY_CONFIG_RUN);
    assert_config_equal(&cfg, &want, "all variables empty");

    /* An empty variable lets the weaker one through. */
    assert_int_equal(run(&cfg, NOARGS, ENV("TALLY_PORT=", "PORT=9000")), TALLY_CONFIG_RUN);
    assert_int_equal(cfg.port, 9000);
    assert_int_equal(run(&cfg, NOARGS, ENV("TALLY_REDIS_URL=", "REDIS_URL=redis://r:1/0")),
                     TALLY_CONFIG_RUN);
    assert_string_equal(cfg.redis_url, "redis://r:1/0");
    /* An empty DATABASE_URL is no database URL. */
    expect_error(NOARGS, ENV("TALLY_BACKEND=postgres", "DATABASE_URL="), "--database-url",
                 "postgres with an empty DATABASE_URL");
}

static void test_env_names_match_exactly(void **state)
{
    (void)state;
    tally_config_t cfg, want;
    tally_config_defaults(&want);
    assert_int_equal(run(&cfg, NOARGS,
                         ENV("TALLY_PORTX=1", "XTALLY_PORT=2", "TALLY_PORT", "TALLY_CA=7",
                             "tally_cap=7", "TALLY_CAPS=7", "PORTS=3")),
                     TALLY_CONFIG_RUN);
    assert_config_equal(&cfg, &want, "look-alike variables");
}

static void test_admin_token_env_only(void **state)
{
    (void)state;
    tally_config_t cfg;
    assert_int_equal(run(&cfg, NOARGS, ENV("TALLY_ADMIN_TOKEN=s3cr3t")), TALLY_CONFIG_RUN);
    assert_string_equal(cfg.admin_token, "s3cr3t");
    assert_int_equal(run(&cfg, NOARGS, NOENV), TALLY_CONFIG_RUN);
    assert_null(cfg.admin_token);
    expect_error(NOARGS, ENV("TALLY_ADMIN_TOKEN=has space"), "TALLY_ADMIN_TOKEN",
                 "token with a space");
    expect_error(ARGS("--admin-token", "x"), NOENV, "--admin-token", "no flag for the token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_alias_errors_name_the_variable),
        cmocka_unit_test(test_empty_env_is_unset),
        cmocka_unit_test(test_env_names_match_exactly),
        cmocka_unit_test(test_admin_token_env_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

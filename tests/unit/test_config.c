/* test_config.c - flags and their environment twins (src/config.h,
 * DESIGN.md section 5): the defaults, every flag in both forms, every
 * TALLY_* twin, flags winning over the environment, several together,
 * --help and --version, the usage text naming every flag and variable,
 * backend names. The helpers are config_check.h; the rest of the
 * environment (aliases, empty and look-alike variables, the admin token) is
 * test_config_env.c, refused input test_config_errors.c, durations and
 * sizes test_units.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config_check.h"

static void test_defaults_match_design(void **state)
{
    (void)state;
    tally_config_t cfg;
    memset(&cfg, 0xA5, sizeof cfg);
    tally_config_defaults(&cfg);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.port, 8080);
    assert_int_equal(cfg.threads, 0); /* CPUs available */
    assert_int_equal(cfg.cap, 100);
    assert_string_equal(cfg.backend, "memory");
    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
    assert_null(cfg.database_url);
    assert_string_equal(cfg.key, "request_count");
    assert_int_equal(cfg.log_level, TALLY_LOG_INFO);
    assert_int_equal(cfg.log_format, TALLY_LOG_JSON);
    assert_int_equal(cfg.max_connections, 10000);
    assert_int_equal(cfg.max_header_size, 8192);
    assert_int_equal(cfg.max_body_size, 1024 * 1024);
    assert_int_equal(cfg.header_timeout_ms, 10000);
    assert_int_equal(cfg.idle_timeout_ms, 5000);
    assert_int_equal(cfg.shutdown_timeout_ms, 10000); /* DESIGN.md section 6 */
    assert_int_equal(cfg.backend_timeout_ms, 2000);   /* README */
    assert_null(cfg.admin_token);
}

static void test_no_args_no_env_runs_with_defaults(void **state)
{
    (void)state;
    tally_config_t cfg, want;
    tally_config_defaults(&want);
    assert_int_equal(run(&cfg, NOARGS, NOENV), TALLY_CONFIG_RUN);
    assert_config_equal(&cfg, &want, "no arguments");
    assert_int_equal(run(&cfg, NOARGS, ENV("HOME=/root", "PATH=/bin")), TALLY_CONFIG_RUN);
    assert_config_equal(&cfg, &want, "unrelated environment");
}

/* ---- every flag, both forms, its environment twin, flags winning ---- */

typedef struct flag_case {
    const char *flag;
    const char *env;
    const char *v1, *v2;
    void (*want)(tally_config_t *c, int which); /* applies v1 or v2 to defaults */
} flag_case_t;

static void w_host(tally_config_t *c, int w)
{
    strcpy(c->host, w == 1 ? "127.0.0.1" : "::1");
}
static void w_port(tally_config_t *c, int w)
{
    c->port = w == 1 ? 9000 : 9001;
}
static void w_threads(tally_config_t *c, int w)
{
    c->threads = w == 1 ? 3 : 7;
}
static void w_cap(tally_config_t *c, int w)
{
    c->cap = w == 1 ? 5 : 1000000000000000LL;
}
static void w_backend(tally_config_t *c, int w)
{
    c->backend = w == 1 ? "redis" : "memory";
}
static void w_redis_url(tally_config_t *c, int w)
{
    c->redis_url = w == 1 ? "redis://10.0.0.1:6380/2" : "unix:///run/redis/redis.sock";
}
static void w_database_url(tally_config_t *c, int w)
{
    c->database_url = w == 1 ? "postgresql://tally@db:5433/tally" : "host=/tmp dbname=tally";
}
static void w_key(tally_config_t *c, int w)
{
    c->key = w == 1 ? "k1" : "other:key";
}
static void w_log_level(tally_config_t *c, int w)
{
    c->log_level = w == 1 ? TALLY_LOG_DEBUG : TALLY_LOG_ERROR;
}
static void w_log_format(tally_config_t *c, int w)
{
    c->log_format = w == 1 ? TALLY_LOG_TEXT : TALLY_LOG_JSON;
}
static void w_max_connections(tally_config_t *c, int w)
{
    c->max_connections = w == 1 ? 5 : 77;
}
static void w_max_header_size(tally_config_t *c, int w)
{
    c->max_header_size = w == 1 ? 16384 : 1024;
}
static void w_max_body_size(tally_config_t *c, int w)
{
    c->max_body_size = w == 1 ? 2 * 1024 * 1024 : 0;
}
static void w_header_timeout(tally_config_t *c, int w)
{
    c->header_timeout_ms = w == 1 ? 1500 : 250;
}
static void w_idle_timeout(tally_config_t *c, int w)
{
    c->idle_timeout_ms = w == 1 ? 120000 : 30000;
}
static void w_shutdown_timeout(tally_config_t *c, int w)
{
    c->shutdown_timeout_ms = w == 1 ? 0 : 3000;
}

static void w_backend_timeout(tally_config_t *c, int w)
{
    c->backend_timeout_ms = w == 1 ? 500 : 5000;
}

static const flag_case_t flag_cases[] = {
    {"--host", "TALLY_HOST", "127.0.0.1", "::1", w_host},
    {"--port", "TALLY_PORT", "9000", "9001", w_port},
    {"--threads", "TALLY_THREADS", "3", "7", w_threads},
    {"--cap", "TALLY_CAP", "5", "1000000000000000", w_cap},
    {"--backend", "TALLY_BACKEND", "redis", "memory", w_backend},
    {"--redis-url", "TALLY_REDIS_URL", "redis://10.0.0.1:6380/2", "unix:///run/redis/redis.sock",
     w_redis_url},
    {"--database-url", "TALLY_DATABASE_URL", "postgresql://tally@db:5433/tally",
     "host=/tmp dbname=tally", w_database_url},
    {"--key", "TALLY_KEY", "k1", "other:key", w_key},
    {"--log-level", "TALLY_LOG_LEVEL", "debug", "error", w_log_level},
    {"--log-format", "TALLY_LOG_FORMAT", "text", "json", w_log_format},
    {"--max-connections", "TALLY_MAX_CONNECTIONS", "5", "77", w_max_connections},
    {"--max-header-size", "TALLY_MAX_HEADER_SIZE", "16k", "1024", w_max_header_size},
    {"--max-body-size", "TALLY_MAX_BODY_SIZE", "2m", "0", w_max_body_size},
    {"--header-timeout", "TALLY_HEADER_TIMEOUT", "1.5s", "250ms", w_header_timeout},
    {"--idle-timeout", "TALLY_IDLE_TIMEOUT", "2m", "30", w_idle_timeout},
    {"--shutdown-timeout", "TALLY_SHUTDOWN_TIMEOUT", "0", "3s", w_shutdown_timeout},
    {"--backend-timeout", "TALLY_BACKEND_TIMEOUT", "500ms", "5s", w_backend_timeout},
};

#define N_FLAG_CASES (sizeof flag_cases / sizeof flag_cases[0])

static void check_parsed(const flag_case_t *fc, int which, const char *const *argv,
                         const char *const *env, const char *form)
{
    tally_config_t cfg, want;
    char what[160];
    snprintf(what, sizeof what, "%s %s (%s)", fc->flag, which == 1 ? fc->v1 : fc->v2, form);
    tally_config_action_t act = run(&cfg, argv, env);
    if (act != TALLY_CONFIG_RUN)
        fail_msg("%s: action %d, err '%s'", what, act, err);
    tally_config_defaults(&want);
    fc->want(&want, which);
    assert_config_equal(&cfg, &want, what);
}

static void test_every_flag_both_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FLAG_CASES; i++) {
        const flag_case_t *fc = &flag_cases[i];
        for (int which = 1; which <= 2; which++) {
            const char *v = which == 1 ? fc->v1 : fc->v2;
            char joined[256];
            snprintf(joined, sizeof joined, "%s=%s", fc->flag, v);
            check_parsed(fc, which, ARGS(fc->flag, v), NOENV, "--flag value");
            check_parsed(fc, which, ARGS(joined), NOENV, "--flag=value");
        }
    }
}

static void test_every_flag_env_twin(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FLAG_CASES; i++) {
        const flag_case_t *fc = &flag_cases[i];
        for (int which = 1; which <= 2; which++) {
            char var[256];
            snprintf(var, sizeof var, "%s=%s", fc->env, which == 1 ? fc->v1 : fc->v2);
            check_parsed(fc, which, NOARGS, ENV("HOME=/", var, "X=1"), "environment");
        }
    }
}

static void test_flags_win_over_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FLAG_CASES; i++) {
        const flag_case_t *fc = &flag_cases[i];
        char var[256], joined[256];
        snprintf(var, sizeof var, "%s=%s", fc->env, fc->v1);
        snprintf(joined, sizeof joined, "%s=%s", fc->flag, fc->v2);
        check_parsed(fc, 2, ARGS(fc->flag, fc->v2), ENV(var), "env v1, --flag v2");
        check_parsed(fc, 2, ARGS(joined), ENV(var), "env v1, --flag=v2");
    }
}

static void test_several_flags_together(void **state)
{
    (void)state;
    tally_config_t cfg, want;
    assert_int_equal(
        run(&cfg,
            ARGS("--port", "9000", "--cap=5", "--log-format", "text", "--key=k1", "--threads", "3"),
            ENV("TALLY_BACKEND=redis", "TALLY_HEADER_TIMEOUT=1.5s")),
        TALLY_CONFIG_RUN);
    tally_config_defaults(&want);
    w_port(&want, 1);
    w_cap(&want, 1);
    w_log_format(&want, 1);
    w_key(&want, 1);
    w_threads(&want, 1);
    w_backend(&want, 1);
    w_header_timeout(&want, 1);
    assert_config_equal(&cfg, &want, "several flags");
}

static void test_help_and_version(void **state)
{
    (void)state;
    tally_config_t cfg;
    assert_int_equal(run(&cfg, ARGS("--help"), NOENV), TALLY_CONFIG_HELP);
    assert_int_equal(run(&cfg, ARGS("-h"), NOENV), TALLY_CONFIG_HELP);
    assert_int_equal(run(&cfg, ARGS("--version"), NOENV), TALLY_CONFIG_VERSION);
    assert_int_equal(run(&cfg, ARGS("-V"), NOENV), TALLY_CONFIG_VERSION);
    assert_int_equal(run(&cfg, ARGS("--port", "9000", "--help"), NOENV), TALLY_CONFIG_HELP);
    assert_int_equal(run(&cfg, ARGS("--cap=3", "--version"), NOENV), TALLY_CONFIG_VERSION);
}

static void test_usage_lists_everything(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    tally_config_usage(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(text);
    for (size_t i = 0; i < N_FLAG_CASES; i++) {
        if (!names(text, flag_cases[i].flag))
            fail_msg("--help does not list %s", flag_cases[i].flag);
        if (!names(text, flag_cases[i].env))
            fail_msg("--help does not list %s", flag_cases[i].env);
    }
    static const char *const more[] = {"PORT",   "REDIS_URL", "DATABASE_URL", "TALLY_ADMIN_TOKEN",
                                       "--help", "--version"};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        if (!names(text, more[i]))
            fail_msg("--help does not list %s", more[i]);
    }
    free(text);
}

static void test_backend_names(void **state)
{
    (void)state;
    /* The backend is stored by its registry name; an alias becomes it. */
    static const char *const words[][2] = {{"memory", "memory"},
                                           {"redis", "redis"},
                                           {"postgres", "postgres"},
                                           {"postgresql", "postgres"}};
    tally_config_t cfg;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        assert_int_equal(
            run(&cfg, ARGS("--backend", words[i][0], "--database-url", "dbname=t"), NOENV),
            TALLY_CONFIG_RUN);
        assert_string_equal(cfg.backend, words[i][1]);
        assert_ptr_equal(cfg.backend, tally_counter_kind_find(words[i][1]));
    }
    for (size_t i = 0; tally_counter_kind_at(i); i++) /* every registered backend is accepted */
        assert_int_equal(
            run(&cfg, ARGS("--backend", tally_counter_kind_at(i), "--database-url", "dbname=t"),
                NOENV),
            TALLY_CONFIG_RUN);
    assert_null(tally_counter_kind_find("Memory"));
    assert_null(tally_counter_kind_find("mysql"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_design),
        cmocka_unit_test(test_no_args_no_env_runs_with_defaults),
        cmocka_unit_test(test_every_flag_both_forms),
        cmocka_unit_test(test_every_flag_env_twin),
        cmocka_unit_test(test_flags_win_over_env),
        cmocka_unit_test(test_several_flags_together),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_usage_lists_everything),
        cmocka_unit_test(test_backend_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_config.c - flags, environment twins, defaults and validation
 * (src/config.h, DESIGN.md section 5). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "base/units.h"

#define ARGS(...) ((const char *const[]){"tallyd", __VA_ARGS__, NULL})
#define NOARGS    ((const char *const[]){"tallyd", NULL})
#define ENV(...)  ((const char *const[]){__VA_ARGS__, NULL})
#define NOENV     ((const char *const *)NULL)

static int count(const char *const *v)
{
    int n = 0;
    while (v[n])
        n++;
    return n;
}

static char err[512];

/* Parses over the defaults, as main does. */
static tally_config_action_t run(tally_config_t *cfg, const char *const *argv,
                                 const char *const *env)
{
    tally_config_defaults(cfg);
    memset(err, 0, sizeof err);
    return tally_config_parse(cfg, count(argv), (char *const *)argv, (char *const *)env, err,
                              sizeof err);
}

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Every field of got equals want; names the first that differs. */
static void assert_config_equal(const tally_config_t *got, const tally_config_t *want,
                                const char *what)
{
#define NUM(f)                                                                                     \
    if (got->f != want->f)                                                                         \
        fail_msg("%s: " #f " is %lld, want %lld", what, (long long)got->f, (long long)want->f);
#define STR(f)                                                                                     \
    if (!str_eq(got->f, want->f))                                                                  \
        fail_msg("%s: " #f " is '%s', want '%s'", what, got->f ? got->f : "(null)",                \
                 want->f ? want->f : "(null)");
    STR(host)
    NUM(port)
    NUM(threads)
    NUM(cap)
    NUM(backend)
    STR(redis_url)
    STR(database_url)
    STR(key)
    NUM(log_level)
    NUM(log_format)
    NUM(max_connections)
    NUM(max_header_size)
    NUM(max_body_size)
    NUM(header_timeout_ms)
    NUM(idle_timeout_ms)
    NUM(shutdown_timeout_ms)
    NUM(backend_timeout_ms)
    STR(admin_token)
#undef NUM
#undef STR
}

/* Whether err names `name` as a whole word (so PORT is not found inside
 * TALLY_PORT). */
static bool names(const char *msg, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(msg, name); p; p = strstr(p + 1, name)) {
        char before = p == msg ? ' ' : p[-1];
        char after = p[n];
        bool word_before = (before >= 'A' && before <= 'Z') || (before >= 'a' && before <= 'z') ||
                           (before >= '0' && before <= '9') || before == '_' || before == '-';
        bool word_after = (after >= 'A' && after <= 'Z') || (after >= 'a' && after <= 'z') ||
                          (after >= '0' && after <= '9') || after == '_' || after == '-';
        if (!word_before && !word_after)
            return true;
    }
    return false;
}

/* Whether parsing fails with one line naming `name`; prints why not. */
static bool error_names(const char *const *argv, const char *const *env, const char *name,
                        const char *what)
{
    tally_config_t cfg;
    tally_config_action_t act = run(&cfg, argv, env);
    if (act != TALLY_CONFIG_ERROR) {
        print_error("%s: action %d, want TALLY_CONFIG_ERROR\n", what, act);
        return false;
    }
    if (err[0] == '\0') {
        print_error("%s: empty error message\n", what);
        return false;
    }
    if (strchr(err, '\n') || strchr(err, '\r')) {
        print_error("%s: message is not one line: '%s'\n", what, err);
        return false;
    }
    if (!names(err, name)) {
        print_error("%s: message does not name %s: '%s'\n", what, name, err);
        return false;
    }
    return true;
}

static void expect_error(const char *const *argv, const char *const *env, const char *name,
                         const char *what)
{
    if (!error_names(argv, env, name, what))
        fail_msg("%s: see above", what);
}

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
    assert_int_equal(cfg.backend, TALLY_BACKEND_MEMORY);
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
    c->backend = w == 1 ? TALLY_BACKEND_REDIS : TALLY_BACKEND_MEMORY;
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

/* ---- bad values ---- */

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
    assert_int_equal(cfg.backend, TALLY_BACKEND_POSTGRES);
    assert_string_equal(cfg.database_url, "dbname=t");
    assert_int_equal(run(&cfg, ARGS("--backend=postgres"), ENV("DATABASE_URL=postgresql:///x")),
                     TALLY_CONFIG_RUN);
    assert_int_equal(cfg.backend, TALLY_BACKEND_POSTGRES);
    assert_string_equal(cfg.database_url, "postgresql:///x");
    /* A database URL alone does not pick the backend. */
    assert_int_equal(run(&cfg, ARGS("--database-url", "dbname=t"), NOENV), TALLY_CONFIG_RUN);
    assert_int_equal(cfg.backend, TALLY_BACKEND_MEMORY);
}

static void test_backend_names(void **state)
{
    (void)state;
    assert_string_equal(tally_backend_name(TALLY_BACKEND_MEMORY), "memory");
    assert_string_equal(tally_backend_name(TALLY_BACKEND_REDIS), "redis");
    assert_string_equal(tally_backend_name(TALLY_BACKEND_POSTGRES), "postgres");
}

/* ---- durations and sizes ---- */

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
        cmocka_unit_test(test_defaults_match_design),
        cmocka_unit_test(test_no_args_no_env_runs_with_defaults),
        cmocka_unit_test(test_every_flag_both_forms),
        cmocka_unit_test(test_every_flag_env_twin),
        cmocka_unit_test(test_flags_win_over_env),
        cmocka_unit_test(test_several_flags_together),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_alias_errors_name_the_variable),
        cmocka_unit_test(test_empty_env_is_unset),
        cmocka_unit_test(test_env_names_match_exactly),
        cmocka_unit_test(test_admin_token_env_only),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_long_values),
        cmocka_unit_test(test_empty_values),
        cmocka_unit_test(test_error_message_is_one_line),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_usage_lists_everything),
        cmocka_unit_test(test_unknown_options),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_postgres_needs_database_url),
        cmocka_unit_test(test_backend_names),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

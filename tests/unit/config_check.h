/* config_check.h - running the configuration parser (src/config.h) as main
 * does and judging what it returns, shared by test_config.c,
 * test_config_env.c and test_config_errors.c: argv and environment
 * literals, run() over the defaults (its message in err), a whole-config
 * comparison naming the first field that differs, and error checks: one
 * line that names the flag or variable as a whole word. Everything is
 * static inline: each test file takes what it uses. */
#ifndef TALLY_TEST_CONFIG_CHECK_H
#define TALLY_TEST_CONFIG_CHECK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "counter/counter.h"

#define ARGS(...) ((const char *const[]){"tallyd", __VA_ARGS__, NULL})
#define NOARGS    ((const char *const[]){"tallyd", NULL})
#define ENV(...)  ((const char *const[]){__VA_ARGS__, NULL})
#define NOENV     ((const char *const *)NULL)

static inline int count(const char *const *v)
{
    int n = 0;
    while (v[n])
        n++;
    return n;
}

static char err[512];

/* Parses over the defaults, as main does. */
static inline tally_config_action_t run(tally_config_t *cfg, const char *const *argv,
                                        const char *const *env)
{
    tally_config_defaults(cfg);
    memset(err, 0, sizeof err);
    return tally_config_parse(cfg, count(argv), (char *const *)argv, (char *const *)env, err,
                              sizeof err);
}

static inline bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Every field of got equals want; names the first that differs. */
static inline void assert_config_equal(const tally_config_t *got, const tally_config_t *want,
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
    STR(backend)
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
static inline bool names(const char *msg, const char *name)
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
static inline bool error_names(const char *const *argv, const char *const *env, const char *name,
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

static inline void expect_error(const char *const *argv, const char *const *env, const char *name,
                                const char *what)
{
    if (!error_names(argv, env, name, what))
        fail_msg("%s: see above", what);
}

#endif

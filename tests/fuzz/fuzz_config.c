/* fuzz_config.c - libFuzzer target for tally_config_parse() (src/config.h).
 *
 * Input: strings separated by NUL bytes. Those before the first empty
 * string are the command line (after argv[0] = "tallyd"), those after it
 * the environment ("NAME=value"). At most 64 of each.
 *
 * Invariants (abort on violation):
 *   RUN      every value is within its documented range: port 1..65535,
 *            threads 0..1024, cap 1..10^15, max connections 1..10^6,
 *            header size 256..1m, body size 0..1024m, header and idle
 *            timeouts 1 ms..24 h, shutdown 0..24 h, backend 10 ms..24 h;
 *            host an address literal; backend, log level and format known;
 *            key and token printable without spaces; the Redis URL parses;
 *            a PostgreSQL backend has a database URL libpq accepts; every
 *            string points into argv, the environment or a default;
 *   HELP / VERSION  only when -h/--help or -V/--version is on the line;
 *   ERROR    exactly one line that starts with "tallyd: ", has a reason
 *            after it, no control bytes, fits the buffer; the defaults are
 *            restored by tally_config_defaults() for the next input.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "counter/counter.h"
#include "counter/url.h"

#define MAX_STRS 64

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_config: invariant violated at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool printable_nospace(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7F)
            return false;
    return true;
}

/* Whether p points at the start of a value inside one of the strings. */
static bool points_into(const char *p, char *const *strs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(strs[i]);
        if (p >= strs[i] && p <= strs[i] + len)
            return true;
    }
    return false;
}

static bool on_line(char *const *argv, int argc, const char *a, const char *b)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], a) == 0 || strcmp(argv[i], b) == 0)
            return true;
    return false;
}

static void check_run(const tally_config_t *cfg, const tally_config_t *def, char *const *argv,
                      int argc, char *const *env, size_t nenv)
{
    unsigned char addr[16];
    CHECK(memchr(cfg->host, '\0', sizeof cfg->host) != NULL);
    CHECK(inet_pton(AF_INET, cfg->host, addr) == 1 || inet_pton(AF_INET6, cfg->host, addr) == 1);
    CHECK(cfg->port >= 1);
    CHECK(cfg->threads <= 1024);
    CHECK(cfg->cap >= 1 && cfg->cap <= TALLY_CAP_MAX);
    CHECK(cfg->backend != NULL && tally_counter_kind_find(cfg->backend) == cfg->backend);
    CHECK(cfg->log_level == TALLY_LOG_DEBUG || cfg->log_level == TALLY_LOG_INFO ||
          cfg->log_level == TALLY_LOG_WARNING || cfg->log_level == TALLY_LOG_ERROR);
    CHECK(cfg->log_format == TALLY_LOG_JSON || cfg->log_format == TALLY_LOG_TEXT);
    CHECK(cfg->max_connections >= 1 && cfg->max_connections <= 1000000);
    CHECK(cfg->max_header_size >= 256 && cfg->max_header_size <= 1024 * 1024);
    CHECK(cfg->max_body_size <= 1024ULL * 1024 * 1024);
    CHECK(cfg->header_timeout_ms >= 1 && cfg->header_timeout_ms <= 86400000ULL);
    CHECK(cfg->idle_timeout_ms >= 1 && cfg->idle_timeout_ms <= 86400000ULL);
    CHECK(cfg->shutdown_timeout_ms <= 86400000ULL);
    CHECK(cfg->backend_timeout_ms >= 10 && cfg->backend_timeout_ms <= 86400000ULL);

    CHECK(cfg->key != NULL && printable_nospace(cfg->key, 200));
    CHECK(cfg->key == def->key || points_into(cfg->key, argv, (size_t)argc) ||
          points_into(cfg->key, env, nenv));
    if (cfg->admin_token) {
        CHECK(printable_nospace(cfg->admin_token, 256));
        CHECK(points_into(cfg->admin_token, env, nenv));
    }

    CHECK(cfg->redis_url != NULL);
    CHECK(cfg->redis_url == def->redis_url || points_into(cfg->redis_url, argv, (size_t)argc) ||
          points_into(cfg->redis_url, env, nenv));
    tally_redis_url_t u;
    char err[256];
    CHECK(tally_redis_url_parse(cfg->redis_url, &u, err, sizeof err) == 0);
    CHECK(u.port >= 1 && u.port <= 65535);

    if (strcmp(cfg->backend, "postgres") == 0)
        CHECK(cfg->database_url != NULL);
    if (cfg->database_url) {
        CHECK(points_into(cfg->database_url, argv, (size_t)argc) ||
              points_into(cfg->database_url, env, nenv));
        size_t n = strlen(cfg->database_url);
        CHECK(n >= 1 && n <= 4096);
        CHECK(tally_pg_url_check(cfg->database_url, err, sizeof err) == 0);
    }
}

static void check_error(const char *err, size_t errlen)
{
    size_t n = strnlen(err, errlen);
    CHECK(n < errlen);
    CHECK(n > 8 && strncmp(err, "tallyd: ", 8) == 0);
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] != 0x7F);
    /* "tallyd: WHO: WHY": someone is named and a reason follows */
    const char *sep = strstr(err + 8, ": ");
    CHECK(sep != NULL && sep[2] != '\0');
}

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One copy with a terminating NUL; the strings point into it. */
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    char *argv[MAX_STRS + 2];
    char *env[MAX_STRS + 1];
    int argc = 0;
    size_t nenv = 0;
    argv[argc++] = (char *)"tallyd";
    bool in_env = false;
    char *p = buf, *end = buf + size;
    while (p < end) {
        size_t len = strlen(p);
        if (len == 0 && !in_env) {
            in_env = true;
        } else if (!in_env) {
            if (argc <= MAX_STRS)
                argv[argc++] = p;
        } else if (len > 0 && nenv < MAX_STRS) {
            env[nenv++] = p;
        }
        p += len + 1;
    }
    argv[argc] = NULL;
    env[nenv] = NULL;

    tally_config_t def, cfg;
    tally_config_defaults(&def);
    tally_config_defaults(&cfg);
    char err[512]; /* main.c's size */
    memset(err, 0, sizeof err);
    switch (tally_config_parse(&cfg, argc, argv, env, err, sizeof err)) {
    case TALLY_CONFIG_RUN:
        check_run(&cfg, &def, argv, argc, env, nenv);
        break;
    case TALLY_CONFIG_HELP:
        CHECK(on_line(argv, argc, "--help", "-h"));
        if (devnull)
            tally_config_usage(devnull);
        break;
    case TALLY_CONFIG_VERSION:
        CHECK(on_line(argv, argc, "--version", "-V"));
        break;
    case TALLY_CONFIG_ERROR:
        check_error(err, sizeof err);
        break;
    default:
        CHECK(!"unknown action");
    }

    /* A tiny error buffer must still be written within bounds. */
    char small[12];
    tally_config_defaults(&cfg);
    if (tally_config_parse(&cfg, argc, argv, env, small, sizeof small) == TALLY_CONFIG_ERROR)
        CHECK(strnlen(small, sizeof small) < sizeof small);
    free(buf);
    return 0;
}

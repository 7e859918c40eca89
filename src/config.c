/* config.c - flags and environment; see config.h.
 *
 * One table drives parsing, the environment twins and --help, so a flag
 * cannot exist without its variable and its line of documentation.
 */
#include "config.h"

#include "base/units.h"
#include "counter/url.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef int (*setter_fn)(tally_config_t *cfg, const char *val, char *why, size_t whylen);

typedef struct option {
    const char *flag;    /* "--port" */
    const char *env;     /* "TALLY_PORT" */
    const char *alias;   /* a second, weaker variable ("PORT") or NULL */
    const char *metavar; /* "N" */
    const char *help;
    setter_fn set;
} option_t;

static int parse_range(const char *val, uint64_t lo, uint64_t hi, uint64_t *out, char *why,
                       size_t whylen)
{
    uint64_t v = 0;
    if (tally_parse_u64(val, &v) != 0 || v < lo || v > hi)
        return tally_units_reason(why, whylen, "expected an integer from %llu to %llu, got '%s'",
                                  (unsigned long long)lo, (unsigned long long)hi, val);
    *out = v;
    return 0;
}

static int set_host(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    unsigned char addr[16];
    const char *lit = strcmp(val, "localhost") == 0 ? "127.0.0.1" : val;
    if (strlen(lit) >= sizeof cfg->host ||
        (inet_pton(AF_INET, lit, addr) != 1 && inet_pton(AF_INET6, lit, addr) != 1))
        return tally_units_reason(
            why, whylen, "expected an IPv4 or IPv6 address such as 0.0.0.0 or ::, got '%s'", val);
    strcpy(cfg->host, lit);
    return 0;
}

static int set_port(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    uint64_t v = 0;
    if (parse_range(val, 1, 65535, &v, why, whylen) != 0)
        return -1;
    cfg->port = (uint16_t)v;
    return 0;
}

static int set_threads(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    uint64_t v = 0;
    if (strcmp(val, "auto") == 0) {
        cfg->threads = 0;
        return 0;
    }
    if (parse_range(val, 1, 1024, &v, why, whylen) != 0)
        return tally_units_reason(why, whylen,
                                  "expected 'auto' or an integer from 1 to 1024, got '%s'", val);
    cfg->threads = (unsigned)v;
    return 0;
}

static int set_cap(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    uint64_t v = 0;
    if (parse_range(val, 1, (uint64_t)TALLY_CAP_MAX, &v, why, whylen) != 0)
        return -1;
    cfg->cap = (int64_t)v;
    return 0;
}

static int set_backend(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    if (strcmp(val, "memory") == 0)
        cfg->backend = TALLY_BACKEND_MEMORY;
    else if (strcmp(val, "redis") == 0)
        cfg->backend = TALLY_BACKEND_REDIS;
    else if (strcmp(val, "postgres") == 0 || strcmp(val, "postgresql") == 0)
        cfg->backend = TALLY_BACKEND_POSTGRES;
    else
        return tally_units_reason(why, whylen, "expected memory, redis or postgres, got '%s'", val);
    return 0;
}

/* Printable ASCII without spaces: what fits in a log line, a URL or a token
 * without surprises. */
static int check_printable(const char *val, size_t max, const char *what, char *why, size_t whylen)
{
    size_t n = strlen(val);
    if (n == 0 || n > max)
        return tally_units_reason(why, whylen, "expected %s of 1 to %zu characters", what, max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)val[i];
        if (c <= 0x20 || c >= 0x7F)
            return tally_units_reason(why, whylen,
                                      "expected %s of printable characters without spaces", what);
    }
    return 0;
}

static int set_redis_url(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    tally_redis_url_t u;
    if (check_printable(val, 1024, "a URL", why, whylen) != 0)
        return -1;
    if (tally_redis_url_parse(val, &u, why, whylen) != 0)
        return -1;
    cfg->redis_url = val;
    return 0;
}

static int set_database_url(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    /* A conninfo string may hold spaces ("host=x port=y"); only bound it. */
    size_t n = strlen(val);
    if (n == 0 || n > 4096)
        return tally_units_reason(why, whylen,
                                  "expected a libpq URI or conninfo string of 1 to 4096 bytes");
    if (tally_pg_url_check(val, why, whylen) != 0)
        return -1;
    cfg->database_url = val;
    return 0;
}

static int set_key(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    if (check_printable(val, 200, "a key name", why, whylen) != 0)
        return -1;
    cfg->key = val;
    return 0;
}

static int set_log_level(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    if (strcasecmp(val, "debug") == 0)
        cfg->log_level = TALLY_LOG_DEBUG;
    else if (strcasecmp(val, "info") == 0)
        cfg->log_level = TALLY_LOG_INFO;
    else if (strcasecmp(val, "warning") == 0 || strcasecmp(val, "warn") == 0)
        cfg->log_level = TALLY_LOG_WARNING;
    else if (strcasecmp(val, "error") == 0)
        cfg->log_level = TALLY_LOG_ERROR;
    else
        return tally_units_reason(why, whylen, "expected debug, info, warning or error, got '%s'",
                                  val);
    return 0;
}

static int set_log_format(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    if (strcmp(val, "json") == 0)
        cfg->log_format = TALLY_LOG_JSON;
    else if (strcmp(val, "text") == 0)
        cfg->log_format = TALLY_LOG_TEXT;
    else
        return tally_units_reason(why, whylen, "expected json or text, got '%s'", val);
    return 0;
}

static int set_max_connections(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    uint64_t v = 0;
    if (parse_range(val, 1, 1000000, &v, why, whylen) != 0)
        return -1;
    cfg->max_connections = (unsigned)v;
    return 0;
}

static int set_max_header_size(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    uint64_t v = 0;
    if (tally_parse_size(val, &v, why, whylen) != 0)
        return -1;
    if (v < 256 || v > 1024 * 1024)
        return tally_units_reason(why, whylen, "expected a size from 256 bytes to 1m, got '%s'",
                                  val);
    cfg->max_header_size = (size_t)v;
    return 0;
}

static int set_max_body_size(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    uint64_t v = 0;
    if (tally_parse_size(val, &v, why, whylen) != 0)
        return -1;
    if (v > 1024ULL * 1024 * 1024)
        return tally_units_reason(why, whylen, "expected a size from 0 to 1024m, got '%s'", val);
    cfg->max_body_size = (size_t)v;
    return 0;
}

static int set_timeout(uint64_t *dst, uint64_t min_ms, const char *val, char *why, size_t whylen)
{
    uint64_t v = 0;
    if (tally_parse_duration_ms(val, &v, why, whylen) != 0)
        return -1;
    if (v < min_ms || v > 86400000ULL)
        return tally_units_reason(why, whylen, "expected a duration from %llums to 24h, got '%s'",
                                  (unsigned long long)min_ms, val);
    *dst = v;
    return 0;
}

static int set_header_timeout(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    return set_timeout(&cfg->header_timeout_ms, 1, val, why, whylen);
}

static int set_idle_timeout(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    return set_timeout(&cfg->idle_timeout_ms, 1, val, why, whylen);
}

static int set_shutdown_timeout(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    return set_timeout(&cfg->shutdown_timeout_ms, 0, val, why, whylen);
}

static int set_backend_timeout(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    return set_timeout(&cfg->backend_timeout_ms, 10, val, why, whylen);
}

static int set_admin_token(tally_config_t *cfg, const char *val, char *why, size_t whylen)
{
    if (check_printable(val, 256, "a token", why, whylen) != 0)
        return -1;
    cfg->admin_token = val;
    return 0;
}

static const option_t options[] = {
    {"--host", "TALLY_HOST", NULL, "ADDR", "address to listen on (default 0.0.0.0)", set_host},
    {"--port", "TALLY_PORT", "PORT", "N", "port to listen on (default 8080)", set_port},
    {"--threads", "TALLY_THREADS", NULL, "N|auto",
     "worker threads, one event loop each (default: CPUs available)", set_threads},
    {"--cap", "TALLY_CAP", NULL, "N", "numbers granted in all, 1..CAP (default 100)", set_cap},
    {"--backend", "TALLY_BACKEND", NULL, "NAME", "memory, redis or postgres (default memory)",
     set_backend},
    {"--redis-url", "TALLY_REDIS_URL", "REDIS_URL", "URL",
     "redis://[:password@]host:port/db or unix:///path (default redis://127.0.0.1:6379/0)",
     set_redis_url},
    {"--database-url", "TALLY_DATABASE_URL", "DATABASE_URL", "URL",
     "PostgreSQL: a libpq URI or conninfo string", set_database_url},
    {"--key", "TALLY_KEY", NULL, "NAME", "counter name in the backend (default request_count)",
     set_key},
    {"--log-level", "TALLY_LOG_LEVEL", NULL, "LEVEL",
     "debug, info, warning or error (default info)", set_log_level},
    {"--log-format", "TALLY_LOG_FORMAT", NULL, "FMT",
     "json (loguru serialize=True lines) or text (default json)", set_log_format},
    {"--max-connections", "TALLY_MAX_CONNECTIONS", NULL, "N",
     "open client connections per process; more are closed at once (default 10000)",
     set_max_connections},
    {"--max-header-size", "TALLY_MAX_HEADER_SIZE", NULL, "SIZE",
     "request line + headers limit, else 431 (default 8k; 256..1m)", set_max_header_size},
    {"--max-body-size", "TALLY_MAX_BODY_SIZE", NULL, "SIZE",
     "request body limit, else 413 (default 1m; 0..1024m)", set_max_body_size},
    {"--header-timeout", "TALLY_HEADER_TIMEOUT", NULL, "DURATION",
     "time for a whole request to arrive, else 408 (default 10s)", set_header_timeout},
    {"--idle-timeout", "TALLY_IDLE_TIMEOUT", NULL, "DURATION",
     "idle keep-alive connections are closed after this (default 5s)", set_idle_timeout},
    {"--shutdown-timeout", "TALLY_SHUTDOWN_TIMEOUT", NULL, "DURATION",
     "grace for requests in flight on SIGTERM/SIGINT (default 10s)", set_shutdown_timeout},
    {"--backend-timeout", "TALLY_BACKEND_TIMEOUT", NULL, "DURATION",
     "redis/postgres connect and command timeout; then 503 and reconnect (default 2s)",
     set_backend_timeout},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

const char *tally_backend_name(tally_backend_kind_t k)
{
    switch (k) {
    case TALLY_BACKEND_REDIS:
        return "redis";
    case TALLY_BACKEND_POSTGRES:
        return "postgres";
    default:
        return "memory";
    }
}

void tally_config_defaults(tally_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->host, "0.0.0.0");
    cfg->port = 8080;
    cfg->threads = 0;
    cfg->cap = 100;
    cfg->backend = TALLY_BACKEND_MEMORY;
    cfg->redis_url = "redis://127.0.0.1:6379/0";
    cfg->database_url = NULL;
    cfg->key = "request_count";
    cfg->log_level = TALLY_LOG_INFO;
    cfg->log_format = TALLY_LOG_JSON;
    cfg->max_connections = 10000;
    cfg->max_header_size = 8192;
    cfg->max_body_size = 1024 * 1024;
    cfg->header_timeout_ms = 10000;
    cfg->idle_timeout_ms = 5000;
    cfg->shutdown_timeout_ms = 10000;
    cfg->backend_timeout_ms = 2000;
    cfg->admin_token = NULL;
}

/* Value of NAME in env, or NULL when absent or empty (an empty variable is
 * treated as unset, as shells and container runtimes make them easily). */
static const char *env_get(char *const *env, const char *name)
{
    if (env == NULL || name == NULL)
        return NULL;
    size_t n = strlen(name);
    for (char *const *e = env; *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return (*e)[n + 1] ? *e + n + 1 : NULL;
    }
    return NULL;
}

/* The message is one line whatever the user typed: control bytes in an
 * echoed value or option name become '?'. */
static tally_config_action_t one_line(char *err)
{
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            *p = '?';
    return TALLY_CONFIG_ERROR;
}

static tally_config_action_t fail(char *err, size_t errlen, const char *who, const char *why)
{
    snprintf(err, errlen, "tallyd: %s: %s", who, why);
    return one_line(err);
}

static const option_t *find_option(const char *arg, size_t name_len)
{
    for (size_t j = 0; j < N_OPTIONS; j++)
        if (strlen(options[j].flag) == name_len && strncmp(options[j].flag, arg, name_len) == 0)
            return &options[j];
    return NULL;
}

tally_config_action_t tally_config_parse(tally_config_t *cfg, int argc, char *const *argv,
                                         char *const *env, char *err, size_t errlen)
{
    char why[320];
    bool given[N_OPTIONS] = {false};

    /* First the command line's shape: --help, --version, unknown options,
     * missing values, and which options it sets (their variables are then
     * not read at all: a flag wins even over a malformed variable). */
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return TALLY_CONFIG_HELP;
        if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0)
            return TALLY_CONFIG_VERSION;
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const option_t *o = find_option(arg, name_len);
        if (o == NULL) {
            snprintf(err, errlen, "tallyd: %.*s: unknown option (see tallyd --help)",
                     (int)(name_len > 200 ? 200 : name_len), arg);
            return one_line(err);
        }
        if (!eq && ++i >= argc)
            return fail(err, errlen, o->flag, "missing value");
        given[o - options] = true;
    }

    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_t *o = &options[i];
        if (given[i])
            continue;
        const char *name = o->env;
        const char *val = env_get(env, o->env);
        if (val == NULL && o->alias) {
            name = o->alias;
            val = env_get(env, o->alias);
        }
        if (val != NULL && o->set(cfg, val, why, sizeof why) != 0)
            return fail(err, errlen, name, why);
    }
    const char *token = env_get(env, "TALLY_ADMIN_TOKEN");
    if (token != NULL && set_admin_token(cfg, token, why, sizeof why) != 0)
        return fail(err, errlen, "TALLY_ADMIN_TOKEN", why);

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const option_t *o = find_option(arg, name_len);
        const char *val = eq ? eq + 1 : argv[++i];
        if (*val == '\0')
            return fail(err, errlen, o->flag, "empty value");
        if (o->set(cfg, val, why, sizeof why) != 0)
            return fail(err, errlen, o->flag, why);
    }

    if (cfg->backend == TALLY_BACKEND_POSTGRES && cfg->database_url == NULL)
        return fail(err, errlen, "--database-url",
                    "required with --backend postgres (or set DATABASE_URL)");
    return TALLY_CONFIG_RUN;
}

void tally_config_usage(FILE *out)
{
    fputs("Usage: tallyd [OPTION VALUE | OPTION=VALUE]...\n"
          "Hands out request numbers 1..CAP exactly once across threads, processes and\n"
          "containers sharing a backend; \"Go away!\" after that. Serves HTTP/1.x on\n"
          "GET / (/healthz, /readyz, /metrics, POST /reset).\n\n"
          "Options (each also read from its environment variable; flags win):\n",
          out);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_t *o = &options[i];
        char left[64];
        snprintf(left, sizeof left, "%s %s", o->flag, o->metavar);
        fprintf(out, "  %-28s %s\n  %-28s   env %s%s%s\n", left, o->help, "", o->env,
                o->alias ? ", " : "", o->alias ? o->alias : "");
    }
    fputs("  -h, --help                   this text\n"
          "  -V, --version                print the version\n\n"
          "Environment only:\n"
          "  TALLY_ADMIN_TOKEN            bearer token enabling POST /reset (unset: 404)\n\n"
          "Durations: 10 or 10s, 1.5s, 250ms, 2m. Sizes: bytes, or with k / m (KiB, MiB).\n"
          "A bad value exits with status 2. SIGTERM/SIGINT stop gracefully.\n",
          out);
}

/* config.c - flags and environment; see config.h.
 *
 * One typed table (options[]) drives the defaults, parsing, the
 * environment twins, the reasons a value is refused and --help: each
 * flag's names, default, range or words, and help line are written once,
 * in its row. Adding a flag is a field in config.h and a row here (a type
 * the table lacks is a case in set()).
 */
#include "config.h"

#include "base/units.h"
#include "counter/counter.h"
#include "counter/url.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* How a row's value is read and where it goes (field at `off`, `size`
 * bytes wide): the row's own data (range, choices, check) does the rest. */
typedef enum {
    OPT_UINT,     /* decimal in lo..hi; choices may name special values */
    OPT_SIZE,     /* bytes with k/m suffixes, in lo..hi */
    OPT_DURATION, /* milliseconds (10s, 250ms, 2m), in lo..hi */
    OPT_CHOICE,   /* one of choices, stored as its value */
    OPT_BACKEND,  /* a backend's name or alias, stored as its name */
    OPT_STRING,   /* kept as a pointer after check (and `max`, `what`) */
    OPT_HOST,     /* an IP literal copied into a char array */
} opt_type_t;

/* A word and what it stores; hidden words are accepted, never offered. */
typedef struct choice {
    const char *word;
    int value;
    bool hidden;
} choice_t;

typedef int (*check_fn)(const char *val, char *why, size_t whylen);

/* One flag (or environment-only variable): everything about it is written
 * here once: names, default, range, help. */
typedef struct option {
    const char *flag;    /* "--port", or NULL: environment only */
    const char *env;     /* "TALLY_PORT" */
    const char *alias;   /* a second, weaker variable ("PORT") or NULL */
    const char *metavar; /* "N" */
    const char *def;     /* the default as a user writes it; NULL: unset */
    const char *help;    /* --help's line, which adds choices, default, range */
    opt_type_t type;
    size_t off, size;        /* the field in tally_config_t */
    uint64_t lo, hi;         /* OPT_UINT, OPT_SIZE, OPT_DURATION */
    const choice_t *choices; /* OPT_CHOICE, or OPT_UINT's special words */
    bool nocase;             /* choices match in any case */
    size_t max;              /* OPT_STRING: printable, no spaces, 1..max (0: unchecked) */
    const char *what;        /* OPT_STRING: "a URL" in the reasons */
    check_fn check;          /* OPT_STRING: more checks, or NULL */
} option_t;

#define FIELD(f) .off = offsetof(tally_config_t, f), .size = sizeof(((tally_config_t *)0)->f)
#define KiB      1024ULL
#define MiB      (1024ULL * 1024)
#define DAY_MS   86400000ULL

static const choice_t threads_words[] = {{"auto", 0, false}, {NULL, 0, false}};
static const choice_t level_words[] = {
    {"debug", TALLY_LOG_DEBUG, false},     {"info", TALLY_LOG_INFO, false},
    {"warning", TALLY_LOG_WARNING, false}, {"warn", TALLY_LOG_WARNING, true},
    {"error", TALLY_LOG_ERROR, false},     {NULL, 0, false}};
static const choice_t format_words[] = {
    {"json", TALLY_LOG_JSON, false}, {"text", TALLY_LOG_TEXT, false}, {NULL, 0, false}};

static int check_redis_url(const char *val, char *why, size_t whylen)
{
    tally_redis_url_t u;
    return tally_redis_url_parse(val, &u, why, whylen);
}

static int check_database_url(const char *val, char *why, size_t whylen)
{
    /* A conninfo string may hold spaces ("host=x port=y"); only bound it. */
    if (strlen(val) > 4096)
        return tally_units_reason(why, whylen,
                                  "expected a libpq URI or conninfo string of 1 to 4096 bytes");
    return tally_pg_url_check(val, why, whylen);
}

static const option_t options[] = {
    {"--host", "TALLY_HOST", NULL, "ADDR", "0.0.0.0", "address to listen on", OPT_HOST,
     FIELD(host)},
    {"--port", "TALLY_PORT", "PORT", "N", "8080", "port to listen on", OPT_UINT, FIELD(port),
     .lo = 1, .hi = 65535},
    {"--threads", "TALLY_THREADS", NULL, "N|auto", "auto",
     "worker threads, one event loop each; auto: CPUs available", OPT_UINT, FIELD(threads), .lo = 1,
     .hi = 1024, .choices = threads_words},
    {"--cap", "TALLY_CAP", NULL, "N", "100", "numbers granted in all, 1..CAP", OPT_UINT, FIELD(cap),
     .lo = 1, .hi = (uint64_t)TALLY_CAP_MAX},
    {"--backend", "TALLY_BACKEND", NULL, "NAME", "memory", "where the counter lives", OPT_BACKEND,
     FIELD(backend)},
    {"--redis-url", "TALLY_REDIS_URL", "REDIS_URL", "URL", "redis://127.0.0.1:6379/0",
     "redis://[:password@]host:port/db or unix:///path", OPT_STRING, FIELD(redis_url), .max = 1024,
     .what = "a URL", .check = check_redis_url},
    {"--database-url", "TALLY_DATABASE_URL", "DATABASE_URL", "URL", NULL,
     "PostgreSQL: a libpq URI or conninfo string", OPT_STRING, FIELD(database_url),
     .check = check_database_url},
    {"--key", "TALLY_KEY", NULL, "NAME", "request_count", "counter name in the backend", OPT_STRING,
     FIELD(key), .max = 200, .what = "a key name"},
    {"--log-level", "TALLY_LOG_LEVEL", NULL, "LEVEL", "info", "lowest level logged", OPT_CHOICE,
     FIELD(log_level), .choices = level_words, .nocase = true},
    {"--log-format", "TALLY_LOG_FORMAT", NULL, "FMT", "json",
     "log line format (json is loguru's serialize=True)", OPT_CHOICE, FIELD(log_format),
     .choices = format_words},
    {"--max-connections", "TALLY_MAX_CONNECTIONS", NULL, "N", "10000",
     "open client connections per process; more are closed at once", OPT_UINT,
     FIELD(max_connections), .lo = 1, .hi = 1000000},
    {"--max-header-size", "TALLY_MAX_HEADER_SIZE", NULL, "SIZE", "8k",
     "request line + headers limit, else 431", OPT_SIZE, FIELD(max_header_size), .lo = 256,
     .hi = MiB},
    {"--max-body-size", "TALLY_MAX_BODY_SIZE", NULL, "SIZE", "1m", "request body limit, else 413",
     OPT_SIZE, FIELD(max_body_size), .lo = 0, .hi = 1024 * MiB},
    {"--header-timeout", "TALLY_HEADER_TIMEOUT", NULL, "DURATION", "10s",
     "time for a whole request to arrive, else 408", OPT_DURATION, FIELD(header_timeout_ms),
     .lo = 1, .hi = DAY_MS},
    {"--idle-timeout", "TALLY_IDLE_TIMEOUT", NULL, "DURATION", "5s",
     "idle keep-alive connections are closed after this", OPT_DURATION, FIELD(idle_timeout_ms),
     .lo = 1, .hi = DAY_MS},
    {"--shutdown-timeout", "TALLY_SHUTDOWN_TIMEOUT", NULL, "DURATION", "10s",
     "grace for requests in flight on SIGTERM/SIGINT", OPT_DURATION, FIELD(shutdown_timeout_ms),
     .lo = 0, .hi = DAY_MS},
    {"--backend-timeout", "TALLY_BACKEND_TIMEOUT", NULL, "DURATION", "2s",
     "redis/postgres connect and command timeout; then 503 and reconnect", OPT_DURATION,
     FIELD(backend_timeout_ms), .lo = 10, .hi = DAY_MS},
    {NULL, "TALLY_ADMIN_TOKEN", NULL, NULL, NULL, "bearer token enabling POST /reset (unset: 404)",
     OPT_STRING, FIELD(admin_token), .max = 256, .what = "a token"},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

/* "a, b or c": the words a user is offered for o (a backend: the names
 * in counter/counter.h's registry). */
static void list_words(const option_t *o, char *buf, size_t len)
{
    const char *w[16];
    size_t total = 0, n = 0;
    for (size_t i = 0; total < 16; i++) {
        const char *word = o->type == OPT_BACKEND ? tally_counter_kind_at(i) : o->choices[i].word;
        if (word == NULL)
            break;
        if (o->type == OPT_BACKEND || !o->choices[i].hidden)
            w[total++] = word;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < total && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s",
                              i == 0           ? ""
                              : i + 1 == total ? " or "
                                               : ", ",
                              w[i]);
}

/* A size or a duration as a user would write it ("1m", "256 bytes", "24h",
 * "10ms"); `bytes` adds the unit to a plain number of bytes. */
static void show_amount(opt_type_t type, uint64_t v, bool bytes, char *buf, size_t len)
{
    unsigned long long u = (unsigned long long)v;
    if (type == OPT_SIZE && v != 0 && v % MiB == 0)
        snprintf(buf, len, "%llum", u / MiB);
    else if (type == OPT_SIZE && v != 0 && v % KiB == 0)
        snprintf(buf, len, "%lluk", u / KiB);
    else if (type == OPT_SIZE)
        snprintf(buf, len, "%llu%s", u, bytes && v != 0 ? " bytes" : "");
    else if (type == OPT_DURATION && v != 0 && v % 3600000 == 0)
        snprintf(buf, len, "%lluh", u / 3600000);
    else if (type == OPT_DURATION && v != 0 && v % 1000 == 0)
        snprintf(buf, len, "%llus", u / 1000);
    else if (type == OPT_DURATION)
        snprintf(buf, len, "%llums", u);
    else
        snprintf(buf, len, "%llu", u);
}

static void store_uint(tally_config_t *cfg, const option_t *o, uint64_t v)
{
    char *at = (char *)cfg + o->off;
    uint16_t v16 = (uint16_t)v;
    uint32_t v32 = (uint32_t)v;
    switch (o->size) {
    case sizeof v16:
        memcpy(at, &v16, sizeof v16);
        break;
    case sizeof v32:
        memcpy(at, &v32, sizeof v32);
        break;
    case sizeof v:
        memcpy(at, &v, sizeof v);
        break;
    default:
        abort(); /* a field of a width the table does not know */
    }
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

static const choice_t *find_word(const option_t *o, const char *val)
{
    for (const choice_t *w = o->choices; w && w->word; w++)
        if ((o->nocase ? strcasecmp(w->word, val) : strcmp(w->word, val)) == 0)
            return w;
    return NULL;
}

/* Sets o's field from val, or returns -1 with the reason in why. */
static int set(tally_config_t *cfg, const option_t *o, const char *val, char *why, size_t whylen)
{
    char lo[32], hi[32], words[128];
    const choice_t *w = find_word(o, val);
    uint64_t v = 0;
    int rc = 0;

    switch (o->type) {
    case OPT_HOST: {
        unsigned char addr[16];
        const char *lit = strcmp(val, "localhost") == 0 ? "127.0.0.1" : val;
        if (strlen(lit) >= o->size ||
            (inet_pton(AF_INET, lit, addr) != 1 && inet_pton(AF_INET6, lit, addr) != 1))
            return tally_units_reason(
                why, whylen, "expected an IPv4 or IPv6 address such as 0.0.0.0 or ::, got '%s'",
                val);
        strcpy((char *)cfg + o->off, lit);
        return 0;
    }
    case OPT_CHOICE:
    case OPT_BACKEND: {
        const char *name = o->type == OPT_BACKEND ? tally_counter_kind_find(val) : NULL;
        if (w == NULL && name == NULL) {
            list_words(o, words, sizeof words);
            return tally_units_reason(why, whylen, "expected %s, got '%s'", words, val);
        }
        if (name != NULL)
            memcpy((char *)cfg + o->off, &name, sizeof name);
        else
            store_uint(cfg, o, (uint64_t)w->value);
        return 0;
    }
    case OPT_STRING:
        if ((o->max && check_printable(val, o->max, o->what, why, whylen) != 0) ||
            (o->check && o->check(val, why, whylen) != 0))
            return -1;
        memcpy((char *)cfg + o->off, &val, sizeof val);
        return 0;
    case OPT_UINT:
        if (w != NULL) {
            store_uint(cfg, o, (uint64_t)w->value);
            return 0;
        }
        if (tally_parse_u64(val, &v) == 0 && v >= o->lo && v <= o->hi)
            break;
        words[0] = '\0';
        if (o->choices) /* threads: "expected 'auto' or an integer ..." */
            snprintf(words, sizeof words, "'%s' or ", o->choices[0].word);
        return tally_units_reason(why, whylen, "expected %san integer from %llu to %llu, got '%s'",
                                  words, (unsigned long long)o->lo, (unsigned long long)o->hi, val);
    case OPT_SIZE:
    case OPT_DURATION:
        rc = o->type == OPT_SIZE ? tally_parse_size(val, &v, why, whylen)
                                 : tally_parse_duration_ms(val, &v, why, whylen);
        if (rc != 0)
            return -1;
        if (v >= o->lo && v <= o->hi)
            break;
        show_amount(o->type, o->lo, true, lo, sizeof lo);
        show_amount(o->type, o->hi, true, hi, sizeof hi);
        return tally_units_reason(why, whylen, "expected a %s from %s to %s, got '%s'",
                                  o->type == OPT_SIZE ? "size" : "duration", lo, hi, val);
    }
    store_uint(cfg, o, v);
    return 0;
}

void tally_config_defaults(tally_config_t *cfg)
{
    char why[320];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].def != NULL && set(cfg, &options[i], options[i].def, why, sizeof why) != 0)
            abort(); /* a default the table itself refuses: test_config catches it */
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
        if (options[j].flag && strlen(options[j].flag) == name_len &&
            strncmp(options[j].flag, arg, name_len) == 0)
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
        if (val != NULL && set(cfg, o, val, why, sizeof why) != 0)
            return fail(err, errlen, name, why);
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const option_t *o = find_option(arg, name_len);
        const char *val = eq ? eq + 1 : argv[++i];
        if (*val == '\0')
            return fail(err, errlen, o->flag, "empty value");
        if (set(cfg, o, val, why, sizeof why) != 0)
            return fail(err, errlen, o->flag, why);
    }

    if (strcmp(cfg->backend, "postgres") == 0 && cfg->database_url == NULL)
        return fail(err, errlen, "--database-url",
                    "required with --backend postgres (or set DATABASE_URL)");
    return TALLY_CONFIG_RUN;
}

/* --help's second line of o: "env TALLY_PORT, PORT; default 8080; 1..65535". */
static void describe(const option_t *o, char *buf, size_t len)
{
    char lo[32], hi[32];
    int n =
        snprintf(buf, len, "env %s%s%s", o->env, o->alias ? ", " : "", o->alias ? o->alias : "");
    if (o->def && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "; default %s", o->def);
    if ((o->type == OPT_UINT || o->type == OPT_SIZE || o->type == OPT_DURATION) && n >= 0 &&
        (size_t)n < len) {
        show_amount(o->type, o->lo, false, lo, sizeof lo);
        show_amount(o->type, o->hi, false, hi, sizeof hi);
        snprintf(buf + n, len - (size_t)n, "; %s..%s", lo, hi);
    }
}

void tally_config_usage(FILE *out)
{
    char left[64], right[192], words[128];
    fputs("Usage: tallyd [OPTION VALUE | OPTION=VALUE]...\n"
          "Hands out request numbers 1..CAP exactly once across threads, processes and\n"
          "containers sharing a backend; \"Go away!\" after that. Serves HTTP/1.x on\n"
          "the routes listed at the end.\n\n"
          "Options (each also read from its environment variable; flags win):\n",
          out);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_t *o = &options[i];
        if (o->flag == NULL)
            continue;
        snprintf(left, sizeof left, "%s %s", o->flag, o->metavar);
        words[0] = '\0';
        if (o->type == OPT_CHOICE || o->type == OPT_BACKEND)
            list_words(o, words, sizeof words);
        describe(o, right, sizeof right);
        fprintf(out, "  %-28s %s%s%s\n  %-28s   %s\n", left, o->help, words[0] ? ": " : "", words,
                "", right);
    }
    fputs("  -h, --help                   this text\n"
          "  -V, --version                print the version\n\n"
          "Environment only:\n",
          out);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].flag == NULL)
            fprintf(out, "  %-28s %s\n", options[i].env, options[i].help);
    fputs("\nDurations: 10 or 10s, 1.5s, 250ms, 2m. Sizes: bytes, or with k / m (KiB, MiB).\n"
          "A bad value exits with status 2. SIGTERM/SIGINT stop gracefully.\n",
          out);
}

/* config.h - tallyd's configuration: flags, their TALLY_* environment twins,
 * defaults and validation (DESIGN.md section 5).
 *
 * Parsing is pure: it reads argv and an environment array and fills a
 * tally_config_t, or produces one human line naming the flag (or variable)
 * and why its value is refused. The caller prints and exits 2.
 */
#ifndef TALLY_CONFIG_H
#define TALLY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"

/* Largest accepted --cap: Redis' Lua numbers are doubles, exact to 2^53. */
#define TALLY_CAP_MAX  1000000000000000LL
#define TALLY_HOST_MAX 64

typedef struct tally_config {
    char host[TALLY_HOST_MAX]; /* IPv4 or IPv6 literal */
    uint16_t port;
    unsigned threads; /* 0 = CPUs available to the process */
    int64_t cap;
    const char *backend;      /* a backend's name from counter/counter.h's registry */
    const char *redis_url;    /* points into argv/environ or a literal */
    const char *database_url; /* NULL when unset */
    const char *key;
    tally_log_level_t log_level;
    tally_log_format_t log_format;
    unsigned max_connections;
    size_t max_header_size;
    size_t max_body_size;
    uint64_t header_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t shutdown_timeout_ms;
    uint64_t backend_timeout_ms; /* connect and command timeout of redis/postgres */
    const char *admin_token;     /* NULL: POST /reset answers 404 */
} tally_config_t;

typedef enum {
    TALLY_CONFIG_RUN = 0, /* cfg is complete: start the service */
    TALLY_CONFIG_HELP,    /* --help: print tally_config_usage() and exit 0 */
    TALLY_CONFIG_VERSION, /* --version: print the version and exit 0 */
    TALLY_CONFIG_ERROR,   /* err holds one line; exit 2 */
} tally_config_action_t;

/* Fills cfg with the defaults of DESIGN.md section 5. */
void tally_config_defaults(tally_config_t *cfg);

/* Parses argv[1..argc) over the defaults, with env (a NULL-terminated
 * "NAME=value" array such as environ; may be NULL) read first and flags
 * winning. Accepts "--flag value" and "--flag=value". On TALLY_CONFIG_ERROR
 * err (errlen bytes) holds a message without a trailing newline, naming the
 * flag or variable. Strings in cfg point into argv/env, which must outlive
 * cfg. */
tally_config_action_t tally_config_parse(tally_config_t *cfg, int argc, char *const *argv,
                                         char *const *env, char *err, size_t errlen);

/* The --help text. */
void tally_config_usage(FILE *out);

#endif

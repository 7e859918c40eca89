/* url.h - where the backends are: --redis-url and --database-url.
 *
 * Redis URLs:  redis://[[user]:password@]host[:port][/db]
 *              unix:///path/to/redis.sock[?db=N]
 * host may be a name, an IPv4 address or a bracketed IPv6 address; port
 * defaults to 6379 and db to 0. PostgreSQL URLs are whatever libpq takes (a
 * postgresql:// URI or a "key=value ..." conninfo string) and are checked
 * with libpq's own parser.
 */
#ifndef TALLY_URL_H
#define TALLY_URL_H

#include <stddef.h>

typedef struct tally_redis_url {
    char host[256]; /* empty for unix sockets */
    int port;
    char path[108]; /* unix socket path, or empty */
    char user[128];
    char password[256];
    int db;
} tally_redis_url_t;

/* Returns 0, or -1 with a reason in err. */
int tally_redis_url_parse(const char *url, tally_redis_url_t *out, char *err, size_t errlen);

/* The URL with any password replaced by "***", for logs. */
void tally_redis_url_display(const tally_redis_url_t *u, char *out, size_t outlen);

/* Returns 0 when libpq can parse conninfo, or -1 with libpq's reason. */
int tally_pg_url_check(const char *conninfo, char *err, size_t errlen);

/* Where conninfo points, without secrets ("host:port/dbname"), for logs. */
void tally_pg_url_display(const char *conninfo, char *out, size_t outlen);

/* libpq's keyword and value arrays (for PQconnectStartParams) for conninfo,
 * with its host list rotated to begin at host start % n, and the hostaddr
 * and port lists too where they have one entry per host: reconnect attempt
 * n begins at host n, so a host that accepts and never answers costs one
 * attempt (one --backend-timeout), not every one (libpq's own
 * connect_timeout does not bound PQconnectPoll). */
typedef struct tally_pg_params {
    const char **keywords; /* NULL-terminated */
    const char **values;
    unsigned hosts; /* n, at least 1 */
    void *opts_;    /* private */
    char *lists_[3];
} tally_pg_params_t;

/* 0 and *out (free it with tally_pg_params_free), or -1 when conninfo
 * does not parse or memory ran out. */
int tally_pg_params(const char *conninfo, unsigned start, tally_pg_params_t *out);
void tally_pg_params_free(tally_pg_params_t *p);

#endif

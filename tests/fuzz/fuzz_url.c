/* fuzz_url.c - libFuzzer target for the backend URLs (src/counter/url.h).
 *
 * Input: the URL, made NUL-terminated (bytes after an inner NUL are simply
 * not seen, as with a C string from argv or the environment).
 *
 * Invariants (abort on violation):
 *   tally_redis_url_parse  on success: port 1..65535, db >= 0, exactly one
 *       of host and unix path set, every field NUL-terminated in its array,
 *       a unix path absolute, a host of the allowed characters unless it
 *       was bracketed; on failure: a non-empty reason, one line;
 *   tally_redis_url_display  does not depend on the password's value (the
 *       same URL with another password displays the same), says "***"
 *       where one was, and stays within the buffer at every size;
 *   tally_pg_url_check  agrees with libpq's parser; its reason has no newline;
 *   tally_pg_url_display  is exactly "postgres host:port/db" of the values
 *       libpq reads (so no password), within the buffer at every size.
 */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter/url.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_url: invariant violated at line %d: %s\n", __LINE__, #cond);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define TERMINATED(arr) (memchr((arr), '\0', sizeof(arr)) != NULL)

static bool one_line(const char *s)
{
    return strchr(s, '\n') == NULL && strchr(s, '\r') == NULL;
}

static void check_redis(const char *url)
{
    tally_redis_url_t u;
    char err[256];
    memset(err, 0, sizeof err);
    if (tally_redis_url_parse(url, &u, err, sizeof err) != 0) {
        CHECK(err[0] != '\0' && TERMINATED(err) && one_line(err));
        return;
    }
    CHECK(u.port >= 1 && u.port <= 65535);
    CHECK(u.db >= 0);
    CHECK(TERMINATED(u.host) && TERMINATED(u.path) && TERMINATED(u.user) && TERMINATED(u.password));
    CHECK((u.host[0] != '\0') != (u.path[0] != '\0'));
    if (u.path[0]) {
        CHECK(strncmp(url, "unix://", 7) == 0 && u.path[0] == '/');
    } else {
        CHECK(strncmp(url, "redis://", 8) == 0);
        if (!strchr(url, '['))
            for (const char *s = u.host; *s; s++)
                CHECK((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_');
    }

    /* The display depends on whether there is a password, never on what
     * it is: the same URL with another password shows the same. */
    char big[1024], other[1024];
    tally_redis_url_display(&u, big, sizeof big);
    CHECK(TERMINATED(big));
    tally_redis_url_t v = u;
    snprintf(v.password, sizeof v.password, "%s", u.password[0] == 'x' ? "y" : "x");
    tally_redis_url_display(&v, other, sizeof other);
    if (u.password[0]) {
        CHECK(strcmp(big, other) == 0);
        if (u.path[0] == '\0')
            CHECK(strncmp(big, "redis://:***@", 13) == 0);
    } else {
        CHECK(strstr(big, "***") == NULL || strstr(u.host, "***") || strstr(u.path, "***"));
    }
    /* Every buffer size, as a log field of any width would use. */
    for (size_t n = 1; n <= 200; n += 7) {
        char *small = malloc(n);
        CHECK(small != NULL);
        tally_redis_url_display(&u, small, n);
        CHECK(memchr(small, '\0', n) != NULL);
        CHECK(strncmp(small, big, n - 1) == 0);
        free(small);
    }
}

/* The value libpq read for keyword, or NULL (opts may be NULL). */
static const char *option(const PQconninfoOption *opts, const char *keyword)
{
    while (opts && opts->keyword && strcmp(opts->keyword, keyword) != 0)
        opts++;
    return opts && opts->keyword ? opts->val : NULL;
}

static void check_pg(const char *conninfo)
{
    char err[200]; /* counter/pg.c's size */
    memset(err, 0, sizeof err);
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    int rc = tally_pg_url_check(conninfo, err, sizeof err);
    CHECK((rc == 0) == (opts != NULL));
    /* libpq's reason is cut at its first newline; it may still quote a
     * control byte of the input, which config.c's error path masks. */
    if (rc != 0)
        CHECK(err[0] != '\0' && TERMINATED(err) && strchr(err, '\n') == NULL);
    PQfreemem(msg);

    const char *host = option(opts, "host"), *port = option(opts, "port"),
               *db = option(opts, "dbname");
    /* Exactly host, port and database as libpq read them: no field that
     * could carry the password. */
    char big[8192], want[8192];
    tally_pg_url_display(conninfo, big, sizeof big);
    CHECK(TERMINATED(big));
    snprintf(want, sizeof want, "postgres %s:%s/%s", host ? host : "(default host)",
             port ? port : "5432", db ? db : "(default db)");
    CHECK(strcmp(big, want) == 0);
    char where[160]; /* remote.h's size */
    tally_pg_url_display(conninfo, where, sizeof where);
    CHECK(TERMINATED(where) && strncmp(where, big, sizeof where - 1) == 0);
    char tiny[1];
    tally_pg_url_display(conninfo, tiny, sizeof tiny);
    CHECK(tiny[0] == '\0');
    if (opts)
        PQconninfoFree(opts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_redis(s);
    check_pg(s);
    free(s);
    return 0;
}

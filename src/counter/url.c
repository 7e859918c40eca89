/* url.c - backend URLs; see url.h. */
#include "counter/url.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

/* Decodes %XX escapes of s[0..n) into out (outlen bytes). */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            char hex[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end != '\0' || v <= 0)
                return -1;
            c = (char)v;
            i += 2;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_db(const char *s, size_t n, int *db)
{
    if (n == 0)
        return 0;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 100000)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *db = v;
    return 0;
}

int tally_redis_url_parse(const char *url, tally_redis_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7;
        const char *q = strchr(path, '?');
        size_t plen = q ? (size_t)(q - path) : strlen(path);
        if (plen == 0 || path[0] != '/')
            return bad(err, errlen, "expected unix:///absolute/path[?db=N]");
        if (plen >= sizeof u->path)
            return bad(err, errlen, "unix socket path longer than 107 bytes");
        memcpy(u->path, path, plen);
        u->path[plen] = '\0';
        if (q) {
            if (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, strlen(q + 4), &u->db) != 0 ||
                q[4] == '\0')
                return bad(err, errlen, "expected ?db=N after the unix socket path");
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return bad(err, errlen, "expected redis://[:password@]host[:port][/db] or unix:///path");
    const char *p = url + 8;
    const char *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p);
    /* userinfo: everything before the last '@' of the authority */
    const char *at = NULL;
    for (const char *s = p; s < end; s++)
        if (*s == '@')
            at = s;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (pct_decode(p, (size_t)(colon - p), u->user, sizeof u->user) != 0 ||
                pct_decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof u->password) !=
                    0)
                return bad(err, errlen, "malformed user or password");
        } else if (pct_decode(p, (size_t)(at - p), u->password, sizeof u->password) != 0) {
            return bad(err, errlen, "malformed password");
        }
        p = at + 1;
    }
    const char *host_end;
    const char *port_start = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return bad(err, errlen, "unterminated [IPv6] host");
        if ((size_t)(rb - p - 1) >= sizeof u->host || rb == p + 1)
            return bad(err, errlen, "bad [IPv6] host");
        memcpy(u->host, p + 1, (size_t)(rb - p - 1));
        u->host[rb - p - 1] = '\0';
        host_end = rb + 1;
        if (host_end < end) {
            if (*host_end != ':')
                return bad(err, errlen, "expected :port after [IPv6] host");
            port_start = host_end + 1;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host_end = colon ? colon : end;
        if (host_end == p)
            return bad(err, errlen, "missing host");
        if ((size_t)(host_end - p) >= sizeof u->host)
            return bad(err, errlen, "host name too long");
        memcpy(u->host, p, (size_t)(host_end - p));
        u->host[host_end - p] = '\0';
        for (const char *s = u->host; *s; s++)
            if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                  (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
                return bad(err, errlen, "bad character in host");
        if (colon)
            port_start = colon + 1;
    }
    if (port_start) {
        if (port_start == end)
            return bad(err, errlen, "empty port");
        int port = 0;
        for (const char *s = port_start; s < end; s++) {
            if (*s < '0' || *s > '9' || port > 65535)
                return bad(err, errlen, "port must be a number from 1 to 65535");
            port = port * 10 + (*s - '0');
        }
        if (port < 1 || port > 65535)
            return bad(err, errlen, "port must be a number from 1 to 65535");
        u->port = port;
    }
    if (slash) {
        const char *db = slash + 1;
        if (strchr(db, '?') || strchr(db, '/') || parse_db(db, strlen(db), &u->db) != 0)
            return bad(err, errlen, "database must be a number (redis://host:port/0)");
    }
    return 0;
}

void tally_redis_url_display(const tally_redis_url_t *u, char *out, size_t outlen)
{
    const char *auth = u->password[0] ? ":***@" : "";
    if (u->path[0])
        snprintf(out, outlen, "unix://%s?db=%d", u->path, u->db);
    else if (strchr(u->host, ':'))
        snprintf(out, outlen, "redis://%s[%s]:%d/%d", auth, u->host, u->port, u->db);
    else
        snprintf(out, outlen, "redis://%s%s:%d/%d", auth, u->host, u->port, u->db);
}

int tally_pg_url_check(const char *conninfo, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
    if (opts == NULL) {
        snprintf(err, errlen, "%s", msg ? msg : "cannot parse (out of memory?)");
        /* libpq's messages end with a newline: one line is promised */
        char *nl = strchr(err, '\n');
        if (nl)
            *nl = '\0';
        PQfreemem(msg);
        return -1;
    }
    PQconninfoFree(opts);
    return 0;
}

void tally_pg_url_display(const char *conninfo, char *out, size_t outlen)
{
    const char *host = NULL, *port = NULL, *db = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts) {
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (o->val == NULL)
                continue;
            if (strcmp(o->keyword, "host") == 0)
                host = o->val;
            else if (strcmp(o->keyword, "port") == 0)
                port = o->val;
            else if (strcmp(o->keyword, "dbname") == 0)
                db = o->val;
        }
    }
    snprintf(out, outlen, "postgres %s:%s/%s", host ? host : "(default host)", port ? port : "5432",
             db ? db : "(default db)");
    if (opts)
        PQconninfoFree(opts);
}

/* Entries of a comma-separated list. */
static unsigned list_len(const char *s)
{
    unsigned n = 1;
    for (; *s; s++)
        n += *s == ',';
    return n;
}

/* list (n entries) rotated to begin at entry start, in a new string. */
static char *rotated(const char *list, unsigned n, unsigned start)
{
    size_t len = strlen(list);
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    const char *at = list;
    for (unsigned i = 0; i < start; i++)
        at = strchr(at, ',') + 1;
    /* entries start..n-1, then 0..start-1 */
    size_t tail = len - (size_t)(at - list);
    memcpy(out, at, tail);
    if (start > 0) {
        out[tail] = ',';
        memcpy(out + tail + 1, list, (size_t)(at - list) - 1);
    }
    out[len] = '\0';
    (void)n;
    return out;
}

int tally_pg_params(const char *conninfo, unsigned start, tally_pg_params_t *out)
{
    memset(out, 0, sizeof *out);
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (opts == NULL)
        return -1;
    size_t n = 0;
    const char *host = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        n += o->val != NULL;
        if (o->val && strcmp(o->keyword, "host") == 0)
            host = o->val;
    }
    out->opts_ = opts;
    out->hosts = host ? list_len(host) : 1;
    out->keywords = calloc(n + 1, sizeof *out->keywords);
    out->values = calloc(n + 1, sizeof *out->values);
    if (out->keywords == NULL || out->values == NULL) {
        tally_pg_params_free(out);
        return -1;
    }
    static const char *const lists[3] = {"host", "hostaddr", "port"};
    unsigned s = start % out->hosts;
    size_t i = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val == NULL)
            continue;
        out->keywords[i] = o->keyword;
        out->values[i] = o->val;
        for (int l = 0; l < 3 && s > 0; l++)
            if (strcmp(o->keyword, lists[l]) == 0 && list_len(o->val) == out->hosts) {
                out->lists_[l] = rotated(o->val, out->hosts, s);
                if (out->lists_[l] == NULL) {
                    tally_pg_params_free(out);
                    return -1;
                }
                out->values[i] = out->lists_[l];
            }
        i++;
    }
    return 0;
}

void tally_pg_params_free(tally_pg_params_t *p)
{
    free(p->keywords);
    free(p->values);
    for (int l = 0; l < 3; l++)
        free(p->lists_[l]);
    if (p->opts_)
        PQconninfoFree(p->opts_);
    memset(p, 0, sizeof *p);
}

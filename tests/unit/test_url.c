/* test_url.c - --redis-url and --database-url parsing (src/counter/url.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "counter/url.h"

static tally_redis_url_t parse_ok(const char *url)
{
    tally_redis_url_t u;
    char err[200] = "";
    int rc = tally_redis_url_parse(url, &u, err, sizeof err);
    if (rc != 0)
        fail_msg("'%s' refused: %s", url, err);
    return u;
}

static void parse_bad(const char *url)
{
    tally_redis_url_t u;
    char err[200] = "";
    if (tally_redis_url_parse(url, &u, err, sizeof err) == 0)
        fail_msg("'%s' accepted", url);
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
}

static void test_defaults(void **state)
{
    (void)state;
    tally_redis_url_t u = parse_ok("redis://127.0.0.1");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_string_equal(u.path, "");
}

static void test_full_form(void **state)
{
    (void)state;
    tally_redis_url_t u = parse_ok("redis://:s%40cret@redis.example-1.internal:6380/3");
    assert_string_equal(u.host, "redis.example-1.internal");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "s@cret");

    u = parse_ok("redis://alice:pw@10.0.0.1:7000/0");
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.port, 7000);

    u = parse_ok("redis://onlypassword@host/");
    assert_string_equal(u.password, "onlypassword");
    assert_int_equal(u.db, 0);

    u = parse_ok("redis://[::1]:6390/2");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 2);
}

static void test_unix(void **state)
{
    (void)state;
    tally_redis_url_t u = parse_ok("unix:///run/redis/redis.sock");
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 0);
    u = parse_ok("unix:///tmp/r.sock?db=5");
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 5);
}

static void test_malformed(void **state)
{
    (void)state;
    parse_bad("");
    parse_bad("http://host:6379");
    parse_bad("redis://");
    parse_bad("redis://:6379");
    parse_bad("redis://host:");
    parse_bad("redis://host:0");
    parse_bad("redis://host:65536");
    parse_bad("redis://host:12ab");
    parse_bad("redis://host:6379/x");
    parse_bad("redis://host:6379/1/2");
    parse_bad("redis://host:6379/1?x=y");
    parse_bad("redis://ho st:6379");
    parse_bad("redis://[::1");
    parse_bad("redis://[::1]x");
    parse_bad("redis://:%zz@host");
    parse_bad("redis://:%4@host");
    parse_bad("unix://relative.sock");
    parse_bad("unix://");
    parse_bad("unix:///tmp/r.sock?db=");
    parse_bad("unix:///tmp/r.sock?x=1");
    char long_path[200] = "unix:///";
    memset(long_path + 8, 'a', 150);
    long_path[158] = '\0';
    parse_bad(long_path);
}

static void test_display_hides_password(void **state)
{
    (void)state;
    tally_redis_url_t u = parse_ok("redis://:hunter2@db:6379/1");
    char out[200];
    tally_redis_url_display(&u, out, sizeof out);
    assert_null(strstr(out, "hunter2"));
    assert_string_equal(out, "redis://:***@db:6379/1");
    u = parse_ok("unix:///tmp/x.sock?db=2");
    tally_redis_url_display(&u, out, sizeof out);
    assert_string_equal(out, "unix:///tmp/x.sock?db=2");
}

static void test_pg(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(tally_pg_url_check("postgresql://u:pw@127.0.0.1:5433/db", err, sizeof err), 0);
    assert_int_equal(tally_pg_url_check("host=127.0.0.1 port=5433 dbname=db", err, sizeof err), 0);
    assert_int_equal(tally_pg_url_check("host=x port", err, sizeof err), -1);
    assert_null(strchr(err, '\n'));
    assert_int_equal(tally_pg_url_check("postgresql://[::1", err, sizeof err), -1);
    assert_int_equal(tally_pg_url_check("nosuchkey=1", err, sizeof err), -1);

    char out[200];
    tally_pg_url_display("postgresql://u:secretpw@10.1.2.3:5433/app", out, sizeof out);
    assert_null(strstr(out, "secretpw"));
    assert_string_equal(out, "postgres 10.1.2.3:5433/app");
}

/* The value of keyword in p, or NULL. */
static const char *param(const tally_pg_params_t *p, const char *keyword)
{
    for (size_t i = 0; p->keywords[i]; i++)
        if (strcmp(p->keywords[i], keyword) == 0)
            return p->values[i];
    return NULL;
}

static void test_pg_hosts_rotate(void **state)
{
    (void)state;
    static const struct {
        const char *conninfo;
        unsigned start, hosts;
        const char *host, *port, *dbname;
    } cases[] = {
        {"host=a,b,c port=1,2,3 dbname=d", 0, 3, "a,b,c", "1,2,3", "d"},
        {"host=a,b,c port=1,2,3 dbname=d", 1, 3, "b,c,a", "2,3,1", "d"},
        {"host=a,b,c port=1,2,3 dbname=d", 2, 3, "c,a,b", "3,1,2", "d"},
        {"host=a,b,c port=1,2,3 dbname=d", 4, 3, "b,c,a", "2,3,1", "d"}, /* wraps */
        {"host=a,b port=5432", 1, 2, "b,a", "5432", NULL}, /* one port for all: kept */
        {"postgresql://u@h1:1,h2:2/db?target_session_attrs=read-write", 1, 2, "h2,h1", "2,1", "db"},
        {"dbname=x", 7, 1, NULL, NULL, "x"}, /* no host: libpq's default, one */
        {"host=only port=9", 3, 1, "only", "9", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tally_pg_params_t p;
        assert_int_equal(tally_pg_params(cases[i].conninfo, cases[i].start, &p), 0);
        assert_int_equal(p.hosts, cases[i].hosts);
        const char *h = param(&p, "host"), *po = param(&p, "port"), *db = param(&p, "dbname");
        if (!((h == NULL && cases[i].host == NULL) ||
              (h && cases[i].host && !strcmp(h, cases[i].host))) ||
            !((po == NULL && cases[i].port == NULL) ||
              (po && cases[i].port && !strcmp(po, cases[i].port))) ||
            !((db == NULL && cases[i].dbname == NULL) ||
              (db && cases[i].dbname && !strcmp(db, cases[i].dbname))))
            fail_msg("case %zu: host %s port %s dbname %s", i, h ? h : "-", po ? po : "-",
                     db ? db : "-");
        tally_pg_params_free(&p);
    }
    tally_pg_params_t p;
    assert_int_equal(tally_pg_params("host='unterminated", 0, &p), -1);
    assert_ptr_equal(p.keywords, NULL);
    assert_int_equal(
        tally_pg_params("postgresql://u@h1:1,h2:2/db?target_session_attrs=read-write", 1, &p), 0);
    assert_string_equal(param(&p, "target_session_attrs"), "read-write");
    assert_string_equal(param(&p, "user"), "u");
    tally_pg_params_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_form),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_display_hides_password),
        cmocka_unit_test(test_pg),
        cmocka_unit_test(test_pg_hosts_rotate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

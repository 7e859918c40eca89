/* test_routes.c - the route table (src/app/routes.h): paths to routes, the
 * methods each takes, names, the admin flag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llhttp.h"
#include "route_ids.h"

static tally_route_t find(const char *path)
{
    return tally_route_find(path, strlen(path));
}

static void test_known_paths(void **state)
{
    (void)state;
    assert_int_equal(find("/"), TALLY_ROUTE_ROOT);
    assert_int_equal(find("/healthz"), TALLY_ROUTE_HEALTHZ);
    assert_int_equal(find("/readyz"), TALLY_ROUTE_READYZ);
    assert_int_equal(find("/metrics"), TALLY_ROUTE_METRICS);
    assert_int_equal(find("/reset"), TALLY_ROUTE_RESET);
}

static void test_unknown_paths(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "",
        "//",
        "/healthz/",
        "/healthzz",
        "/health",
        "/HEALTHZ",
        "/Metrics",
        "/reset/",
        "/ready",
        "/readyz2",
        "healthz",
        "/favicon.ico",
        "/metrics?",
        "/ ",
        "/index.html",
        "/healthz/../healthz",
        "/a/very/long/path/that/is/not/a/route",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (find(paths[i]) != TALLY_ROUTE_UNKNOWN)
            fail_msg("'%s' should be unknown", paths[i]);
    }
}

static void test_length_is_respected(void **state)
{
    (void)state;
    /* Only the first len bytes count: no reading up to a NUL. */
    assert_int_equal(tally_route_find("/healthzXYZ", 8), TALLY_ROUTE_HEALTHZ);
    assert_int_equal(tally_route_find("/healthz", 7), TALLY_ROUTE_UNKNOWN);
    assert_int_equal(tally_route_find("/reset", 1), TALLY_ROUTE_ROOT);
    assert_int_equal(tally_route_find("/x", 0), TALLY_ROUTE_UNKNOWN);
    /* An embedded NUL is not the end of the path. */
    assert_int_equal(tally_route_find("/\0", 2), TALLY_ROUTE_UNKNOWN);
    assert_int_equal(tally_route_find("/reset\0", 7), TALLY_ROUTE_UNKNOWN);
}

static void test_methods(void **state)
{
    (void)state;
    static const tally_route_t reads[] = {TALLY_ROUTE_ROOT, TALLY_ROUTE_HEALTHZ, TALLY_ROUTE_READYZ,
                                          TALLY_ROUTE_METRICS};
    static const int others[] = {HTTP_POST,    HTTP_PUT,   HTTP_DELETE, HTTP_PATCH,
                                 HTTP_OPTIONS, HTTP_TRACE, HTTP_CONNECT};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        assert_true(tally_route_allows(reads[i], HTTP_GET));
        assert_true(tally_route_allows(reads[i], HTTP_HEAD));
        for (size_t j = 0; j < sizeof others / sizeof others[0]; j++)
            assert_false(tally_route_allows(reads[i], others[j]));
        assert_string_equal(route_allow(reads[i]), "GET, HEAD");
    }
    assert_true(tally_route_allows(TALLY_ROUTE_RESET, HTTP_POST));
    assert_false(tally_route_allows(TALLY_ROUTE_RESET, HTTP_GET));
    assert_false(tally_route_allows(TALLY_ROUTE_RESET, HTTP_HEAD));
    assert_false(tally_route_allows(TALLY_ROUTE_RESET, HTTP_PUT));
    assert_false(tally_route_allows(TALLY_ROUTE_RESET, HTTP_DELETE));
    assert_string_equal(route_allow(TALLY_ROUTE_RESET), "POST");
    /* Unknown paths take nothing: they answer 404, not 405. */
    assert_false(tally_route_allows(TALLY_ROUTE_UNKNOWN, HTTP_GET));
    assert_false(tally_route_allows(TALLY_ROUTE_UNKNOWN, HTTP_HEAD));
    assert_false(tally_route_allows(TALLY_ROUTE_UNKNOWN, HTTP_POST));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(tally_route_name(TALLY_ROUTE_ROOT), "/");
    assert_string_equal(tally_route_name(TALLY_ROUTE_HEALTHZ), "/healthz");
    assert_string_equal(tally_route_name(TALLY_ROUTE_READYZ), "/readyz");
    assert_string_equal(tally_route_name(TALLY_ROUTE_METRICS), "/metrics");
    assert_string_equal(tally_route_name(TALLY_ROUTE_RESET), "/reset");
    assert_string_equal(tally_route_name(TALLY_ROUTE_UNKNOWN), "other");
    /* Every route's name finds the route again. */
    for (int r = TALLY_ROUTE_ROOT; r <= TALLY_ROUTE_RESET; r++)
        assert_int_equal(find(tally_route_name((unsigned)r)), r);
}

static void test_table(void **state)
{
    (void)state;
    /* The ids above are the whole table, and only /reset wants the token. */
    assert_int_equal(tally_routes_count(), TALLY_ROUTE_RESET);
    for (int r = TALLY_ROUTE_ROOT; r <= TALLY_ROUTE_RESET; r++) {
        bool wants_auth = true;
        const char *path = tally_route_name((unsigned)r);
        assert_int_equal(tally_route_classify(NULL, path, strlen(path), &wants_auth), r);
        assert_int_equal(wants_auth, r == TALLY_ROUTE_RESET);
    }
    bool wants_auth = true;
    assert_int_equal(tally_route_classify(NULL, "/nope", 5, &wants_auth), 0);
    assert_false(wants_auth);
    assert_string_equal(tally_route_name(tally_routes_count() + 1), "other");
}

/* --help's route list: a line per route, in table order, its Allow methods
 * then its path, and nothing else. */
static void test_usage(void **state)
{
    (void)state;
    static const char *const want[] = {"GET, HEAD /", "GET, HEAD /healthz", "GET, HEAD /readyz",
                                       "GET, HEAD /metrics", "POST /reset"};
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    tally_routes_usage(f);
    assert_int_equal(fclose(f), 0);
    const char *p = text;
    assert_string_equal(strtok(text, "\n"), "Routes:");
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *line = strtok(NULL, "\n");
        assert_non_null(line);
        size_t n = strlen(want[i]);
        if (strncmp(line, "  ", 2) != 0 || strncmp(line + 2, want[i], n) != 0 || line[2 + n] != ' ')
            fail_msg("line %zu is \"%s\", want \"  %s ...\"", i + 1, line, want[i]);
        assert_true(strlen(line) > 32); /* and its description */
    }
    assert_null(strtok(NULL, "\n"));
    assert_int_equal(tally_routes_count(), sizeof want / sizeof want[0]);
    free((void *)p);
}

static void test_route_paths_fit_the_limit(void **state)
{
    (void)state;
    for (int r = TALLY_ROUTE_ROOT; r <= TALLY_ROUTE_RESET; r++)
        assert_true(strlen(tally_route_name((unsigned)r)) <= TALLY_HTTP_PATH_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_paths),
        cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_route_paths_fit_the_limit),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

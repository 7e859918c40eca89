/* test_buf.c - the growable byte buffer (src/base/buf.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/buf.h"

#ifdef __SANITIZE_ADDRESS__
/* The tests below ask for impossible sizes on purpose: let malloc say NULL
 * instead of AddressSanitizer aborting, as glibc's malloc would. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif

#define ASSERT_BUF(b, lit)                                                                         \
    do {                                                                                           \
        assert_int_equal((b)->len, sizeof(lit) - 1);                                               \
        assert_memory_equal((b)->data, (lit), sizeof(lit) - 1);                                    \
    } while (0)

static void test_init_is_empty(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.oom, 0);
    tally_buf_free(&b); /* freeing an untouched buffer is fine */
    assert_null(b.data);
}

static void test_append_grows_and_keeps_content(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    char expect[5000];
    for (size_t i = 0; i < sizeof expect; i++) {
        char c = (char)('a' + i % 26);
        expect[i] = c;
        tally_buf_append(&b, &c, 1);
        assert_true(b.cap >= b.len);
    }
    assert_int_equal(b.len, sizeof expect);
    assert_memory_equal(b.data, expect, sizeof expect);
    assert_int_equal(b.oom, 0);
    tally_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_append_large_block(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    size_t n = 1 << 20;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    tally_buf_lit(&b, "head");
    tally_buf_append(&b, big, n);
    assert_int_equal(b.len, n + 4);
    assert_memory_equal(b.data, "head", 4);
    assert_memory_equal(b.data + 4, big, n);
    free(big);
    tally_buf_free(&b);
}

static void test_lit_str_byte(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    tally_buf_lit(&b, "ab");
    tally_buf_str(&b, "cd");
    tally_buf_byte(&b, 'e');
    tally_buf_str(&b, "");
    tally_buf_append(&b, "zzz", 0);
    ASSERT_BUF(&b, "abcde");
    tally_buf_free(&b);
}

static void test_reserve_gives_room(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    assert_int_equal(tally_buf_reserve(&b, 1000), 0);
    assert_true(b.cap - b.len >= 1000);
    assert_int_equal(b.len, 0);
    tally_buf_lit(&b, "xyz");
    assert_int_equal(tally_buf_reserve(&b, 5000), 0);
    assert_true(b.cap - b.len >= 5000);
    ASSERT_BUF(&b, "xyz");
    assert_int_equal(tally_buf_reserve(&b, 0), 0);
    tally_buf_free(&b);
}

static void test_u64_and_i64(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    tally_buf_u64(&b, 0);
    tally_buf_byte(&b, ' ');
    tally_buf_u64(&b, 9);
    tally_buf_byte(&b, ' ');
    tally_buf_u64(&b, 10);
    tally_buf_byte(&b, ' ');
    tally_buf_u64(&b, 1000000000000000ULL);
    tally_buf_byte(&b, ' ');
    tally_buf_u64(&b, UINT64_MAX);
    ASSERT_BUF(&b, "0 9 10 1000000000000000 18446744073709551615");
    b.len = 0;
    tally_buf_i64(&b, -1);
    tally_buf_byte(&b, ' ');
    tally_buf_i64(&b, 0);
    tally_buf_byte(&b, ' ');
    tally_buf_i64(&b, INT64_MAX);
    tally_buf_byte(&b, ' ');
    tally_buf_i64(&b, INT64_MIN);
    ASSERT_BUF(&b, "-1 0 9223372036854775807 -9223372036854775808");
    tally_buf_free(&b);
}

static void test_u64_to_dec_matches_printf(void **state)
{
    (void)state;
    uint64_t v = 1;
    for (int i = 0; i < 2000; i++) {
        char got[21], want[32];
        size_t n = tally_u64_to_dec(got, v);
        int wn = snprintf(want, sizeof want, "%llu", (unsigned long long)v);
        assert_int_equal(n, (size_t)wn);
        assert_memory_equal(got, want, n);
        v = v * 6364136223846793005ULL + 1442695040888963407ULL;
        if (i % 3 == 0)
            v >>= (unsigned)(i % 64);
    }
}

static void test_printf_small_and_large(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    tally_buf_lit(&b, "<");
    tally_buf_printf(&b, "%s=%d", "n", 42);
    ASSERT_BUF(&b, "<n=42");
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tally_buf_printf(&b, "[%s]%d", big, 7);
    assert_int_equal(b.len, 5 + 1 + 999 + 1 + 1);
    assert_memory_equal(b.data, "<n=42[", 6);
    assert_memory_equal(b.data + 6, big, 999);
    assert_memory_equal(b.data + 6 + 999, "]7", 2);
    tally_buf_printf(&b, "%s", "");
    assert_int_equal(b.len, 5 + 1 + 999 + 1 + 1);
    tally_buf_free(&b);
}

/* Buffer of the tests that may fail half-way: freed by the teardown, so a
 * failure does not add a leak report to the sanitizer build's output. */
static tally_buf_t shared_buf = TALLY_BUF_INIT;

static int free_shared_buf(void **state)
{
    (void)state;
    tally_buf_free(&shared_buf);
    return 0;
}

/* A size no allocation can satisfy must be refused, even when len + extra
 * wraps around. */
static void test_reserve_refuses_wrapping_size(void **state)
{
    (void)state;
    tally_buf_t *b = &shared_buf;
    tally_buf_lit(b, "0123456789");
    assert_int_equal(tally_buf_reserve(b, SIZE_MAX), -ENOMEM);
    assert_int_not_equal(b->oom, 0);
}

/* Runs reserve(extra) on a fresh buffer in a child with a deadline: 0 when
 * it returned -ENOMEM with oom set, 1 when it wrongly succeeded, 2 when it hung. */
static int reserve_in_child(size_t extra)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(3);
        tally_buf_t b = TALLY_BUF_INIT;
        int rc = tally_buf_reserve(&b, extra);
        _exit(rc == -ENOMEM && b.oom ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        return 2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}

static void test_reserve_huge_fails_without_hanging(void **state)
{
    (void)state;
    /* Doubling the capacity towards this overflows size_t. */
    int r = reserve_in_child(SIZE_MAX / 2 + 2);
    if (r != 0)
        fail_msg("reserve(SIZE_MAX/2+2) on an empty buffer: %s",
                 r == 2 ? "hung (capacity doubling overflowed)" : "did not fail cleanly");
}

/* buf.h: once an allocation failed, appends become no-ops. */
static void test_appends_are_noops_after_oom(void **state)
{
    (void)state;
    tally_buf_t *b = &shared_buf;
    tally_buf_lit(b, "ok");
    assert_int_equal(tally_buf_reserve(b, (size_t)1 << 62), -ENOMEM);
    assert_int_not_equal(b->oom, 0);
    size_t len = b->len;
    assert_int_equal(tally_buf_reserve(b, 1), -ENOMEM);
    tally_buf_lit(b, "abc");
    tally_buf_byte(b, 'd');
    tally_buf_str(b, "ef");
    tally_buf_u64(b, 12345);
    tally_buf_printf(b, "%d", 6);
    assert_int_equal(b->len, len);
    assert_memory_equal(b->data, "ok", 2);
    tally_buf_free(b);
    assert_int_equal(b->oom, 0); /* free makes the buffer usable again */
    tally_buf_lit(b, "again");
    ASSERT_BUF(b, "again");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty),
        cmocka_unit_test(test_append_grows_and_keeps_content),
        cmocka_unit_test(test_append_large_block),
        cmocka_unit_test(test_lit_str_byte),
        cmocka_unit_test(test_reserve_gives_room),
        cmocka_unit_test(test_u64_and_i64),
        cmocka_unit_test(test_u64_to_dec_matches_printf),
        cmocka_unit_test(test_printf_small_and_large),
        cmocka_unit_test_teardown(test_reserve_refuses_wrapping_size, free_shared_buf),
        cmocka_unit_test(test_reserve_huge_fails_without_hanging),
        cmocka_unit_test_teardown(test_appends_are_noops_after_oom, free_shared_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

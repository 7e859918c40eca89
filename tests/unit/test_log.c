/* test_log.c - the log writer (src/base/log.h): lines from several threads reach
 * a slow, non-blocking, nearly full pipe whole, in each thread's order, and
 * none is lost. The pipe is shrunk to one page so the writer's writev(2)
 * calls come back short and with EAGAIN, the paths a fast reader never
 * takes. A closed pipe's lines are counted as dropped, and only those that
 * did not go out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "json_check.h"
#include "base/log.h"

#define PRODUCERS 3
#define LINES     1500

typedef struct {
    int fd;
    char *data;
    size_t len, cap;
} sink_t;

/* Reads until EOF, in small reads with pauses: a slow consumer. */
static void *reader_main(void *arg)
{
    sink_t *s = arg;
    unsigned reads = 0;
    for (;;) {
        if (s->cap - s->len < 4096) {
            s->cap = s->cap ? 2 * s->cap : 1 << 20;
            s->data = realloc(s->data, s->cap);
            if (s->data == NULL)
                abort();
        }
        ssize_t n = read(s->fd, s->data + s->len, 1500);
        if (n == 0)
            break;
        if (n < 0)
            abort();
        s->len += (size_t)n;
        if (++reads % 32 == 0) {
            struct timespec pause = {0, 200 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    return NULL;
}

static void *producer_main(void *arg)
{
    long id = (long)(intptr_t)arg;
    char name[16];
    snprintf(name, sizeof name, "prod-%ld", id);
    tally_log_thread(name, false);
    for (int i = 0; i < LINES; i++) {
        tally_logf(TALLY_LOG_INFO, "test", "seq %d of %ld", i, id);
        /* Hand over at varying sizes, as workers do by size and by timer. */
        if (i % (7 + 13 * (int)id) == 0)
            tally_log_flush();
    }
    tally_log_flush();
    tally_log_thread_done();
    return NULL;
}

/* A pipe for the log to write to, SIGPIPE ignored; one_page shrinks it to
 * a single page (the smallest a pipe gets) so that writes come back short. */
static void open_pipe(int fds[2], bool one_page)
{
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(pipe(fds), 0);
    if (one_page)
        assert_true(fcntl(fds[1], F_SETPIPE_SZ, 4096) >= 0);
}

static void test_lines_whole_and_in_order_through_a_slow_short_pipe(void **state)
{
    (void)state;
    int fds[2];
    open_pipe(fds, true);
    assert_int_equal(fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK), 0);

    sink_t sink = {.fd = fds[0]};
    pthread_t reader, prod[PRODUCERS];
    assert_int_equal(pthread_create(&reader, NULL, reader_main, &sink), 0);
    assert_int_equal(tally_log_start(TALLY_LOG_INFO, TALLY_LOG_JSON, fds[1]), 0);
    for (long i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_create(&prod[i], NULL, producer_main, (void *)(intptr_t)i), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(prod[i], NULL);
    assert_true(tally_log_stop()); /* the writer finished, not left behind */
    assert_int_equal(tally_log_dropped(), 0);
    close(fds[1]);
    pthread_join(reader, NULL);
    close(fds[0]);

    int next[PRODUCERS] = {0};
    size_t lines = 0;
    const char *p = sink.data, *end = sink.data + sink.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl); /* the output ends with a whole line */
        assert_true(json_check_document(p, (size_t)(nl - p)));
        const char *m = NULL;
        for (const char *q = p; q + 14 < nl; q++)
            if (memcmp(q, "\"message\":\"seq ", 15) == 0) {
                m = q + 15;
                break;
            }
        assert_non_null(m);
        int seq = -1;
        long id = -1;
        assert_int_equal(sscanf(m, "%d of %ld", &seq, &id), 2);
        assert_true(id >= 0 && id < PRODUCERS);
        assert_int_equal(seq, next[id]); /* each thread's lines in order, none missing */
        next[id]++;
        lines++;
        p = nl + 1;
    }
    assert_int_equal(lines, (size_t)PRODUCERS * LINES);
    free(sink.data);
}

/* Nobody reads the output (a closed pipe): every line is lost, and every
 * one is counted as dropped (/metrics' tally_log_dropped_lines_total). The
 * log restarts cleanly after the previous test's stop. */
static void test_lines_lost_to_a_broken_output_are_counted(void **state)
{
    (void)state;
    int fds[2];
    open_pipe(fds, false);
    close(fds[0]); /* every write fails with EPIPE */
    uint64_t before = tally_log_dropped();
    assert_int_equal(tally_log_start(TALLY_LOG_INFO, TALLY_LOG_JSON, fds[1]), 0);
    pthread_t prod;
    assert_int_equal(pthread_create(&prod, NULL, producer_main, (void *)(intptr_t)1), 0);
    pthread_join(prod, NULL);
    assert_true(tally_log_stop());
    assert_int_equal(tally_log_dropped() - before, LINES);
    close(fds[1]);
}

typedef struct {
    int fd;
    size_t want;       /* bytes to read before closing */
    uint64_t newlines; /* lines received whole */
    size_t shortest;   /* shortest whole line received, newline included */
} quitter_t;

/* Reads `want` bytes, then closes its end, as `tallyd | head -c` would. */
static void *quitter_main(void *arg)
{
    quitter_t *q = arg;
    char buf[4096];
    size_t got = 0, line = 0;
    q->shortest = SIZE_MAX;
    while (got < q->want) {
        ssize_t n = read(q->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            line++;
            if (buf[i] == '\n') {
                q->newlines++;
                if (line < q->shortest)
                    q->shortest = line;
                line = 0;
            }
        }
        got += (size_t)n;
    }
    close(q->fd);
    return NULL;
}

/* The reader leaves mid-stream: what it received and what is counted as
 * dropped add up to what was logged, less at most what the pipe itself
 * held when it was closed (written, so not dropped, and never read). A
 * count that takes a batch the writer had partly written as wholly lost
 * adds up to more. */
static void test_lines_delivered_plus_dropped_add_up_when_the_reader_leaves(void **state)
{
    (void)state;
    int fds[2];
    open_pipe(fds, true);
    quitter_t q = {.fd = fds[0], .want = 256 << 10};
    pthread_t reader, prod;
    assert_int_equal(pthread_create(&reader, NULL, quitter_main, &q), 0);
    uint64_t before = tally_log_dropped();
    assert_int_equal(tally_log_start(TALLY_LOG_INFO, TALLY_LOG_JSON, fds[1]), 0);
    assert_int_equal(tally_log_start(TALLY_LOG_INFO, TALLY_LOG_JSON, fds[1]), -EBUSY);
    assert_int_equal(pthread_create(&prod, NULL, producer_main, (void *)(intptr_t)2), 0);
    pthread_join(prod, NULL);
    assert_true(tally_log_stop());
    pthread_join(reader, NULL);
    close(fds[1]);

    uint64_t dropped = tally_log_dropped() - before;
    assert_true(q.newlines > 0 && q.newlines < LINES); /* it did leave mid-stream */
    assert_true(q.newlines + dropped <= LINES);
    assert_true(q.newlines + dropped >= LINES - (4096 / q.shortest + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_whole_and_in_order_through_a_slow_short_pipe),
        cmocka_unit_test(test_lines_lost_to_a_broken_output_are_counted),
        cmocka_unit_test(test_lines_delivered_plus_dropped_add_up_when_the_reader_leaves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* log.c - per-thread log chunks and the single writer thread; see log.h. */
#include "base/log.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/logfmt.h"

/* A chunk is handed over once it holds this much, or at the next flush. */
#define CHUNK_SIZE      (64u << 10)
#define CHUNK_HANDOFF   (48u << 10)
#define FREE_CHUNKS_MAX 16
/* Free chunks kept once nothing has been logged for IDLE_SHED_S seconds;
 * see shed_idle_memory(). */
#define FREE_CHUNKS_IDLE 4
#define IDLE_SHED_S      1
/* The writer's pause between batches under load; see writer_main(). */
#define WRITER_NAP_NS (20 * 1000 * 1000)
/* Chunks per writev(2) (well under IOV_MAX). */
#define IOV_BATCH 64
/* Longest message kept; longer ones are cut (backend errors can be long). */
#define MESSAGE_MAX 2048

typedef struct chunk {
    struct chunk *next;
    tally_buf_t buf;
    uint64_t lines;
} chunk_t;

typedef struct logthread {
    chunk_t *chunk;
    const char *name;
    long tid;
    bool autoflush;
    tally_timecache_t tc;
} logthread_t;

int tally_log_min_level = TALLY_LOG_INFO;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chunk_t *head, *tail;
    size_t queued;
    chunk_t *free;
    int nfree;
    unsigned freed; /* chunks the writer freed since its last malloc_trim() (its own) */
    bool stop;
    bool waiting;
    bool started;
    uint64_t dropped, dropped_reported;
    pthread_t thread;
    int fd;
    bool fd_broken;
    tally_log_format_t format;
    struct timespec start; /* CLOCK_REALTIME at tally_log_start() */
    long pid;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .fd = 1};

static __thread logthread_t T = {.name = "main"};

static chunk_t *chunk_new(void)
{
    chunk_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (tally_buf_reserve(&c->buf, CHUNK_SIZE) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void chunk_free(chunk_t *c)
{
    tally_buf_free(&c->buf);
    free(c);
}

/* Writes all of v[0..n) to the log fd, resuming after short writes and
 * waiting out EAGAIN; a broken output is given up on (logging must never
 * take the service down with it). Consumes v: returns the index of the
 * first buffer not wholly written (n when all were), whose iov_base and
 * iov_len then describe what of it did not go out. */
static int writev_all(struct iovec *v, int n)
{
    int i = 0;
    while (i < n && !L.fd_broken) {
        ssize_t w = writev(L.fd, v + i, n - i);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = L.fd, .events = POLLOUT};
            poll(&pfd, 1, 1000);
            continue;
        }
        if (w <= 0) {
            L.fd_broken = true;
            break;
        }
        /* A short write: skip what went out, resume mid-buffer. */
        size_t done = (size_t)w;
        while (i < n && done >= v[i].iov_len) {
            done -= v[i].iov_len;
            i++;
        }
        if (i < n) {
            v[i].iov_base = (char *)v[i].iov_base + done;
            v[i].iov_len -= done;
        }
    }
    return i;
}

/* Lines whose newline is in p[0..n): those of a buffer not written. */
static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t k = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        k++;
    return k;
}

static void add_dropped(uint64_t lines)
{
    if (lines == 0)
        return;
    pthread_mutex_lock(&L.mu);
    L.dropped += lines;
    pthread_mutex_unlock(&L.mu);
}

/* Writes p[0..n); returns the lines (newlines) that did not go out. */
static uint64_t write_all(const char *p, size_t n)
{
    struct iovec v = {(void *)p, n};
    return writev_all(&v, 1) == 1 ? 0 : count_lines(v.iov_base, v.iov_len);
}

/* Writes every chunk of the list, in order, IOV_BATCH chunks per writev:
 * one system call per batch rather than one per chunk. Once the output is
 * broken, the lines that did not go out (those of the chunk it broke in
 * whose newline was not written, and all of every later chunk) are
 * counted as dropped. */
static void write_chunks(chunk_t *list)
{
    struct iovec iov[IOV_BATCH];
    chunk_t *of[IOV_BATCH];
    uint64_t lost = 0;
    while (list) {
        int n = 0;
        for (; list && n < IOV_BATCH; list = list->next)
            if (list->buf.len > 0) {
                of[n] = list;
                iov[n++] = (struct iovec){list->buf.data, list->buf.len};
            }
        int i = writev_all(iov, n);
        if (i < n) {
            lost += count_lines(iov[i].iov_base, iov[i].iov_len);
            while (++i < n)
                lost += of[i]->lines;
        }
    }
    add_dropped(lost);
}

/* Frees a list of chunks: the writer's own work (L.freed is its count). */
static void free_chunks(chunk_t *list)
{
    while (list) {
        chunk_t *c = list;
        list = c->next;
        chunk_free(c);
        L.freed++;
    }
}

/* Empties the written chunks and keeps up to FREE_CHUNKS_MAX of them for
 * the workers to reuse (one lock for the whole list); frees the rest. */
static void recycle_chunks(chunk_t *list)
{
    chunk_t *spare = NULL;
    pthread_mutex_lock(&L.mu);
    while (list) {
        chunk_t *c = list;
        list = c->next;
        c->buf.len = 0;
        c->lines = 0;
        if (L.nfree < FREE_CHUNKS_MAX && c->buf.cap <= 2 * CHUNK_SIZE) {
            c->next = L.free;
            L.free = c;
            L.nfree++;
        } else {
            c->next = spare;
            spare = c;
        }
    }
    pthread_mutex_unlock(&L.mu);
    free_chunks(spare);
}

/* Called by the writer, L.mu held, once nothing has been queued for
 * IDLE_SHED_S: the free list goes down to FREE_CHUNKS_IDLE, and when the
 * writer has freed FREE_CHUNKS_MAX chunks (1 MiB) or more since the last
 * time, malloc_trim() gives their pages back. glibc would keep them: once
 * its dynamic mmap threshold has risen, a 64 KiB buffer comes from the
 * heap, and a tallyd that once ran at full load stayed 3-4 MB bigger when
 * idle. Under load the writer finds chunks after every nap and never
 * waits, so this runs only after a second without a log line; a worker
 * that logs during malloc_trim() may wait for its arena's lock once.
 * Returns with L.mu held. */
static void shed_idle_memory(void)
{
    chunk_t *extra = NULL;
    while (L.nfree > FREE_CHUNKS_IDLE) {
        chunk_t *c = L.free;
        L.free = c->next;
        L.nfree--;
        c->next = extra;
        extra = c;
    }
    pthread_mutex_unlock(&L.mu);
    free_chunks(extra);
    if (L.freed >= FREE_CHUNKS_MAX) {
        malloc_trim(0);
        L.freed = 0;
    }
    pthread_mutex_lock(&L.mu);
}

static void format_record(tally_buf_t *b, tally_log_level_t level, const char *function,
                          int64_t count, const char *msg, size_t len)
{
    tally_logrec_t r;
    r.level = level;
    r.function = function;
    r.message = msg;
    r.message_len = len > MESSAGE_MAX ? MESSAGE_MAX : len;
    r.request_count = count;
    /* One clock read per line: elapsed is wall-clock time since the start,
     * as loguru computes it (now - start, both datetime.now()). */
    clock_gettime(CLOCK_REALTIME, &r.now);
    int64_t el = (int64_t)(r.now.tv_sec - L.start.tv_sec) * 1000000 +
                 (r.now.tv_nsec - L.start.tv_nsec) / 1000;
    r.elapsed_us = el > 0 && L.start.tv_sec != 0 ? (uint64_t)el : 0;
    r.pid = L.pid;
    if (T.tid == 0)
        T.tid = (long)syscall(SYS_gettid);
    r.tid = T.tid;
    r.thread_name = T.name;
    if (L.format == TALLY_LOG_TEXT)
        tally_logfmt_text(b, &r, &T.tc);
    else
        tally_logfmt_json(b, &r, &T.tc);
}

static void *writer_main(void *arg)
{
    (void)arg;
    T.name = "log";
    pthread_mutex_lock(&L.mu);
    for (;;) {
        while (L.head == NULL && !L.stop) {
            L.waiting = true;
            if (L.nfree > FREE_CHUNKS_IDLE || L.freed >= FREE_CHUNKS_MAX) {
                /* Memory to give back once nothing has come for a second
                 * (a lull between requests is not the end of a burst). */
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += IDLE_SHED_S;
                if (pthread_cond_timedwait(&L.cv, &L.mu, &until) == ETIMEDOUT && L.head == NULL &&
                    !L.stop)
                    shed_idle_memory();
            } else {
                pthread_cond_wait(&L.cv, &L.mu);
            }
            L.waiting = false;
        }
        chunk_t *list = L.head;
        L.head = L.tail = NULL;
        L.queued = 0;
        uint64_t dropped = L.dropped - L.dropped_reported;
        L.dropped_reported = L.dropped;
        bool stop = L.stop;
        pthread_mutex_unlock(&L.mu);

        if (dropped) {
            tally_buf_t b = TALLY_BUF_INIT;
            char msg[128];
            int n = snprintf(msg, sizeof msg, "log output is not keeping up: dropped %llu lines",
                             (unsigned long long)dropped);
            format_record(&b, TALLY_LOG_WARNING, "log", -1, msg, (size_t)n);
            /* Not counted when it is lost itself: that would report again. */
            (void)write_all(b.data, b.len);
            tally_buf_free(&b);
        }
        write_chunks(list);
        recycle_chunks(list);
        if (stop) {
            pthread_mutex_lock(&L.mu);
            if (L.head == NULL)
                break;
            continue;
        }
        /* Nap so that under load chunks arrive in batches and the workers
         * rarely have to wake this thread (a futex call each). The nap is
         * long on purpose: each wakeup of this thread preempts a worker or
         * the client on a busy CPU, and with a 1 ms nap (1,000 wakeups/s)
         * tallyd under wrk needed 13.5-14.9 us of CPU per request against
         * 12.1-12.2 us with 20 ms (bench/README.md). A line then reaches
         * the output within ~30 ms (LOG_FLUSH_MS in worker.c + this). */
        struct timespec nap = {0, WRITER_NAP_NS};
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&L.mu);
    }
    pthread_mutex_unlock(&L.mu);
    return NULL;
}

int tally_log_start(tally_log_level_t level, tally_log_format_t format, int fd)
{
    pthread_mutex_lock(&L.mu);
    if (L.started) {
        pthread_mutex_unlock(&L.mu);
        return -EBUSY;
    }
    tally_log_min_level = (int)level;
    L.format = format;
    L.fd = fd;
    L.pid = (long)getpid();
    L.stop = false;
    L.fd_broken = false;
    L.dropped_reported = L.dropped; /* a past run's losses are not this one's */
    clock_gettime(CLOCK_REALTIME, &L.start);
    pthread_mutex_unlock(&L.mu);
    int err = pthread_create(&L.thread, NULL, writer_main, NULL);
    if (err != 0)
        return -err;
    L.started = true;
    return 0;
}

void tally_log_thread(const char *name, bool autoflush)
{
    T.name = name;
    T.autoflush = autoflush;
    T.tid = (long)syscall(SYS_gettid);
}

void tally_log_flush(void)
{
    chunk_t *c = T.chunk;
    if (c == NULL || c->buf.len == 0)
        return;
    if (!L.started) {
        /* Before start (or after stop): write directly, in this thread. */
        add_dropped(write_all(c->buf.data, c->buf.len));
        c->buf.len = 0;
        c->lines = 0;
        return;
    }
    pthread_mutex_lock(&L.mu);
    /* Counted by the buffers' size, not their lines': at low load chunks are
     * handed over nearly empty (every 10 ms), and a stalled reader must not
     * let thousands of them pile up under a cap that counts bytes of lines. */
    if (L.queued + c->buf.cap > TALLY_LOG_QUEUE_MAX) {
        L.dropped += c->lines;
        c->buf.len = 0;
        c->lines = 0;
    } else {
        c->next = NULL;
        if (L.tail)
            L.tail->next = c;
        else
            L.head = c;
        L.tail = c;
        L.queued += c->buf.cap;
        if (L.waiting)
            pthread_cond_signal(&L.cv);
        T.chunk = L.free;
        if (T.chunk) {
            L.free = T.chunk->next;
            L.nfree--;
        }
    }
    pthread_mutex_unlock(&L.mu);
}

void tally_log(tally_log_level_t level, const char *function, int64_t request_count,
               const char *msg, size_t len)
{
    if (!tally_log_enabled(level))
        return;
    if (T.chunk == NULL && (T.chunk = chunk_new()) == NULL)
        return;
    format_record(&T.chunk->buf, level, function, request_count, msg, len);
    T.chunk->lines++;
    if (T.autoflush || T.chunk->buf.len >= CHUNK_HANDOFF)
        tally_log_flush();
}

void tally_logf(tally_log_level_t level, const char *function, const char *fmt, ...)
{
    if (!tally_log_enabled(level))
        return;
    char msg[MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    tally_log(level, function, -1, msg, (size_t)n >= sizeof msg ? sizeof msg - 1 : (size_t)n);
}

void tally_log_thread_done(void)
{
    tally_log_flush();
    if (T.chunk) {
        chunk_free(T.chunk);
        T.chunk = NULL;
    }
}

bool tally_log_stop(void)
{
    tally_log_flush();
    if (!L.started)
        return true;
    pthread_mutex_lock(&L.mu);
    L.stop = true;
    pthread_cond_signal(&L.cv);
    pthread_mutex_unlock(&L.mu);
    /* A reader that stopped reading (a full pipe) must not hold the exit
     * forever: give the writer a few seconds, then leave it. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    if (pthread_timedjoin_np(L.thread, NULL, &deadline) != 0)
        return false;
    L.started = false;
    while (L.free) {
        chunk_t *c = L.free;
        L.free = c->next;
        chunk_free(c);
    }
    L.nfree = 0;
    /* Whatever the calling thread logs from now on is written directly. */
    tally_log_flush();
    return true;
}

size_t tally_log_pending(void)
{
    return T.chunk ? T.chunk->buf.len : 0;
}

uint64_t tally_log_dropped(void)
{
    pthread_mutex_lock(&L.mu);
    uint64_t d = L.dropped;
    pthread_mutex_unlock(&L.mu);
    return d;
}

/* log.h - the process's log: whole lines from every thread, never torn.
 *
 * Each thread formats records into its own chunk of memory (no lock per
 * line). A thread hands its chunk to one writer thread with
 * tally_log_flush(): workers do so once 48 KiB have gathered or 10 ms
 * after their first pending line (worker.c), other threads after every line
 * (tally_log_thread(name, autoflush=true)). The writer alone writes to the
 * output fd, whole chunks in order, many per writev(2), every ~20 ms under
 * load, so lines from different threads never interleave or split, and a
 * slow reader (a full pipe) stalls only the writer: past
 * TALLY_LOG_QUEUE_MAX bytes of queued buffers, chunks are dropped and
 * counted rather than blocking a loop.
 */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Numeric values are loguru's level numbers. */
typedef enum {
    TALLY_LOG_DEBUG = 10,
    TALLY_LOG_INFO = 20,
    TALLY_LOG_WARNING = 30,
    TALLY_LOG_ERROR = 40,
} tally_log_level_t;

typedef enum {
    TALLY_LOG_JSON = 0,
    TALLY_LOG_TEXT,
} tally_log_format_t;

#define TALLY_LOG_QUEUE_MAX (64u << 20)

/* Starts the writer thread writing to fd. Returns 0, -EBUSY while a writer
 * runs (started and not stopped, or left behind by a tally_log_stop() that
 * returned false), or another negative errno. A stopped log may be started
 * again. */
int tally_log_start(tally_log_level_t level, tally_log_format_t format, int fd);

/* Flushes every handed-over chunk, writes the calling thread's pending
 * lines, and joins the writer. Threads must have stopped logging. Returns
 * false if the writer was left behind, still writing after 5 s (a reader
 * that stopped reading); the output fd must then stay open. */
bool tally_log_stop(void);

/* Names the calling thread in its records ("worker-1"); call once per
 * thread before it logs. autoflush hands each line over at once. */
void tally_log_thread(const char *name, bool autoflush);

/* Frees the calling thread's chunk (after its last flush). */
void tally_log_thread_done(void);

extern int tally_log_min_level;

static inline bool tally_log_enabled(tally_log_level_t level)
{
    return (int)level >= tally_log_min_level;
}

/* Logs msg[0..len) from `function`; request_count < 0 means none. */
void tally_log(tally_log_level_t level, const char *function, int64_t request_count,
               const char *msg, size_t len);

/* printf-style, for cold paths. */
void tally_logf(tally_log_level_t level, const char *function, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Hands the calling thread's pending lines to the writer. Cheap when there
 * are none. */
void tally_log_flush(void);

/* Bytes of whole lines the calling thread holds, not yet handed over. */
size_t tally_log_pending(void);

/* Lines dropped so far: the output did not keep up (past
 * TALLY_LOG_QUEUE_MAX queued) or had broken (a closed pipe). */
uint64_t tally_log_dropped(void);

#endif

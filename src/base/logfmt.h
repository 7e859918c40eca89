/* logfmt.h - one log record to one line of text, in loguru's shapes.
 *
 * Pure formatting, separate from the writer (log.c) so it can be tested
 * byte for byte. JSON lines follow loguru's serialize=True layout
 * (DESIGN.md section 4): `jq .record.extra.request_count` reads granted
 * numbers; records without a number carry "extra":{}.
 */
#ifndef TALLY_LOGFMT_H
#define TALLY_LOGFMT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"

typedef struct tally_logrec {
    tally_log_level_t level;
    const char *function; /* loguru's record.function: "claim", "serve" ... */
    const char *message;
    size_t message_len;
    int64_t request_count; /* < 0: no record.extra.request_count */
    struct timespec now;   /* CLOCK_REALTIME */
    uint64_t elapsed_us;   /* since the process started */
    long pid;
    long tid;
    const char *thread_name;
} tally_logrec_t;

/* What a thread's lines share, formatted once and reused: the civil time of
 * the current second ("YYYY-MM-DD HH:MM:SS", UTC), the whole-second part
 * of the elapsed time, and the process/thread identity. Zero-initialise;
 * every field is refreshed when what it depends on changes. */
typedef struct tally_timecache {
    time_t sec;
    char civil[20];
    char sec_dec[24]; /* the second as a decimal number */
    uint8_t sec_dec_len;
    uint64_t el_sec;
    bool el_valid;
    char el_repr[40]; /* "H:MM:SS" or "D day(s), H:MM:SS" */
    uint8_t el_repr_len;
    char el_secs[24]; /* decimal whole seconds */
    uint8_t el_secs_len;
    long pid, tid;
    char thread_name[32];
    char ident[160]; /* ,"process":{...},"thread":{...},"time":{"repr":" */
    uint8_t ident_len;
} tally_timecache_t;

/* Refreshes tc when sec differs from the cached second. */
void tally_timecache_update(tally_timecache_t *tc, time_t sec);

/* Appends one whole line ending in '\n'. tc may be shared by every line a
 * thread formats; it is refreshed as needed. */
void tally_logfmt_json(tally_buf_t *out, const tally_logrec_t *r, tally_timecache_t *tc);
void tally_logfmt_text(tally_buf_t *out, const tally_logrec_t *r, tally_timecache_t *tc);

/* "INFO", "WARNING" ... */
const char *tally_log_level_name(tally_log_level_t level);

#endif

/* logfmt.c - log line formatting; see logfmt.h.
 *
 * Every field is appended by hand: a log line is written per request, and
 * printf-style formatting of ~500 bytes would dominate its cost.
 */
#include "logfmt.h"

#include "json.h"

const char *tally_log_level_name(tally_log_level_t level)
{
    switch (level) {
    case TALLY_LOG_DEBUG:
        return "DEBUG";
    case TALLY_LOG_INFO:
        return "INFO";
    case TALLY_LOG_WARNING:
        return "WARNING";
    default:
        return "ERROR";
    }
}

/* loguru's default level icons, as UTF-8. */
static const char *level_icon(tally_log_level_t level)
{
    switch (level) {
    case TALLY_LOG_DEBUG:
        return "\xf0\x9f\x90\x9e"; /* U+1F41E */
    case TALLY_LOG_INFO:
        return "\xe2\x84\xb9\xef\xb8\x8f"; /* U+2139 U+FE0F */
    case TALLY_LOG_WARNING:
        return "\xe2\x9a\xa0\xef\xb8\x8f"; /* U+26A0 U+FE0F */
    default:
        return "\xe2\x9d\x8c"; /* U+274C */
    }
}

void tally_timecache_update(tally_timecache_t *tc, time_t sec)
{
    if (tc->sec == sec && tc->civil[0] != '\0')
        return;
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(tc->civil, sizeof tc->civil, "%Y-%m-%d %H:%M:%S", &tm);
    tc->sec = sec;
}

/* Fixed-width, zero-padded decimal. */
static void put_fixed(tally_buf_t *b, uint64_t v, int width)
{
    char tmp[20];
    for (int i = width - 1; i >= 0; i--) {
        tmp[i] = (char)('0' + v % 10);
        v /= 10;
    }
    tally_buf_append(b, tmp, (size_t)width);
}

/* The head loguru's default format gives a line:
 * "YYYY-MM-DD HH:MM:SS.mmm | LEVEL | tally:function - ". */
static void put_text_head(tally_buf_t *b, const tally_logrec_t *r, const tally_timecache_t *tc,
                          int pad_level)
{
    tally_buf_append(b, tc->civil, 19);
    tally_buf_byte(b, '.');
    put_fixed(b, (uint64_t)r->now.tv_nsec / 1000000, 3);
    tally_buf_lit(b, " | ");
    const char *name = tally_log_level_name(r->level);
    size_t n = strlen(name);
    tally_buf_append(b, name, n);
    if (pad_level)
        for (; n < 8; n++)
            tally_buf_byte(b, ' ');
    tally_buf_lit(b, " | tally:");
    tally_buf_str(b, r->function);
    tally_buf_lit(b, " - ");
}

/* str(datetime.timedelta): "[D day[s], ]H:MM:SS[.ffffff]". */
static void put_elapsed_repr(tally_buf_t *b, uint64_t us)
{
    uint64_t secs = us / 1000000, frac = us % 1000000;
    uint64_t days = secs / 86400;
    secs %= 86400;
    if (days) {
        tally_buf_u64(b, days);
        if (days == 1)
            tally_buf_lit(b, " day, ");
        else
            tally_buf_lit(b, " days, ");
    }
    tally_buf_u64(b, secs / 3600);
    tally_buf_byte(b, ':');
    put_fixed(b, secs / 60 % 60, 2);
    tally_buf_byte(b, ':');
    put_fixed(b, secs % 60, 2);
    if (frac) {
        tally_buf_byte(b, '.');
        put_fixed(b, frac, 6);
    }
}

void tally_logfmt_json(tally_buf_t *b, const tally_logrec_t *r, tally_timecache_t *tc)
{
    tally_timecache_update(tc, r->now.tv_sec);
    uint64_t usec = (uint64_t)r->now.tv_nsec / 1000;

    tally_buf_lit(b, "{\"text\":\"");
    put_text_head(b, r, tc, 0);
    tally_json_escape(b, r->message, r->message_len);
    tally_buf_lit(b, "\\n\",\"record\":{\"elapsed\":{\"repr\":\"");
    put_elapsed_repr(b, r->elapsed_us);
    tally_buf_lit(b, "\",\"seconds\":");
    tally_buf_u64(b, r->elapsed_us / 1000000);
    tally_buf_byte(b, '.');
    put_fixed(b, r->elapsed_us % 1000000, 6);
    tally_buf_lit(b, "},\"exception\":null,\"extra\":{");
    if (r->request_count >= 0) {
        tally_buf_lit(b, "\"request_count\":");
        tally_buf_i64(b, r->request_count);
    }
    tally_buf_lit(b, "},\"function\":\"");
    tally_buf_str(b, r->function);
    tally_buf_lit(b, "\",\"level\":{\"icon\":\"");
    tally_buf_str(b, level_icon(r->level));
    tally_buf_lit(b, "\",\"name\":\"");
    tally_buf_str(b, tally_log_level_name(r->level));
    tally_buf_lit(b, "\",\"no\":");
    tally_buf_u64(b, (uint64_t)r->level);
    tally_buf_lit(b, "},\"line\":0,\"message\":\"");
    tally_json_escape(b, r->message, r->message_len);
    tally_buf_lit(b, "\",\"module\":\"tally\",\"name\":\"tally\",\"process\":{\"id\":");
    tally_buf_i64(b, r->pid);
    tally_buf_lit(b, ",\"name\":\"tallyd\"},\"thread\":{\"id\":");
    tally_buf_i64(b, r->tid);
    tally_buf_lit(b, ",\"name\":\"");
    tally_buf_str(b, r->thread_name);
    tally_buf_lit(b, "\"},\"time\":{\"repr\":\"");
    tally_buf_append(b, tc->civil, 19);
    tally_buf_byte(b, '.');
    put_fixed(b, usec, 6);
    tally_buf_lit(b, "+00:00\",\"timestamp\":");
    tally_buf_i64(b, (int64_t)r->now.tv_sec);
    tally_buf_byte(b, '.');
    put_fixed(b, usec, 6);
    tally_buf_lit(b, "}}}\n");
}

void tally_logfmt_text(tally_buf_t *b, const tally_logrec_t *r, tally_timecache_t *tc)
{
    tally_timecache_update(tc, r->now.tv_sec);
    put_text_head(b, r, tc, 1);
    /* Text lines stay one line each: control bytes are escaped the JSON way. */
    tally_json_escape(b, r->message, r->message_len);
    tally_buf_byte(b, '\n');
}

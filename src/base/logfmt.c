/* logfmt.c - log line formatting; see logfmt.h.
 *
 * Every field is appended by hand: a log line is written per request, and
 * printf-style formatting of ~500 bytes would dominate its cost.
 */
#include "base/logfmt.h"

#include <stdio.h>

#include "base/json.h"

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

void tally_timecache_update(tally_timecache_t *tc, time_t sec)
{
    if (tc->sec == sec && tc->civil[0] != '\0')
        return;
    struct tm tm;
    gmtime_r(&sec, &tm);
    strftime(tc->civil, sizeof tc->civil, "%Y-%m-%d %H:%M:%S", &tm);
    tc->sec_dec_len = (uint8_t)(sec < 0 ? 0 : tally_u64_to_dec(tc->sec_dec, (uint64_t)sec));
    tc->sec = sec;
}

/* Fixed-width, zero-padded decimal, written in place. */
static void put_fixed(tally_buf_t *b, uint64_t v, int width)
{
    if (tally_buf_reserve(b, (size_t)width) != 0)
        return;
    char *p = b->data + b->len;
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    b->len += (size_t)width;
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

/* Whole-second parts of the elapsed time, as str(datetime.timedelta) and
 * as a number: "[D day[s], ]H:MM:SS" and "S". */
static void update_elapsed(tally_timecache_t *tc, uint64_t secs)
{
    if (tc->el_valid && tc->el_sec == secs)
        return;
    tally_buf_t b = {tc->el_repr, 0, sizeof tc->el_repr, 0};
    uint64_t days = secs / 86400, rem = secs % 86400;
    if (days) {
        tally_buf_u64(&b, days);
        if (days == 1)
            tally_buf_lit(&b, " day, ");
        else
            tally_buf_lit(&b, " days, ");
    }
    tally_buf_u64(&b, rem / 3600);
    tally_buf_byte(&b, ':');
    put_fixed(&b, rem / 60 % 60, 2);
    tally_buf_byte(&b, ':');
    put_fixed(&b, rem % 60, 2);
    tc->el_repr_len = (uint8_t)b.len;
    tc->el_secs_len = (uint8_t)tally_u64_to_dec(tc->el_secs, secs);
    tc->el_sec = secs;
    tc->el_valid = true;
}

static void update_ident(tally_timecache_t *tc, const tally_logrec_t *r)
{
    if (tc->ident_len && tc->pid == r->pid && tc->tid == r->tid &&
        strncmp(tc->thread_name, r->thread_name, sizeof tc->thread_name) == 0)
        return;
    tc->pid = r->pid;
    tc->tid = r->tid;
    snprintf(tc->thread_name, sizeof tc->thread_name, "%s", r->thread_name);
    tally_buf_t b = {tc->ident, 0, sizeof tc->ident, 0};
    tally_buf_lit(&b, "\",\"module\":\"tally\",\"name\":\"tally\",\"process\":{\"id\":");
    tally_buf_i64(&b, r->pid);
    tally_buf_lit(&b, ",\"name\":\"tallyd\"},\"thread\":{\"id\":");
    tally_buf_i64(&b, r->tid);
    tally_buf_lit(&b, ",\"name\":\"");
    tally_json_escape(&b, tc->thread_name, strlen(tc->thread_name));
    tally_buf_lit(&b, "\"},\"time\":{\"repr\":\"");
    tc->ident_len = b.oom ? 0 : (uint8_t)b.len;
}

/* ,"level":{...},"line":0,"message":" for each level. */
static const char *level_json(tally_log_level_t level)
{
    switch (level) {
    case TALLY_LOG_DEBUG:
        return "\",\"level\":{\"icon\":\"\xf0\x9f\x90\x9e\",\"name\":\"DEBUG\",\"no\":10},"
               "\"line\":0,\"message\":\"";
    case TALLY_LOG_INFO:
        return "\",\"level\":{\"icon\":\"\xe2\x84\xb9\xef\xb8\x8f\",\"name\":\"INFO\",\"no\":20},"
               "\"line\":0,\"message\":\"";
    case TALLY_LOG_WARNING:
        return "\",\"level\":{\"icon\":\"\xe2\x9a\xa0\xef\xb8\x8f\",\"name\":\"WARNING\",\"no\":"
               "30},\"line\":0,\"message\":\"";
    default:
        return "\",\"level\":{\"icon\":\"\xe2\x9d\x8c\",\"name\":\"ERROR\",\"no\":40},"
               "\"line\":0,\"message\":\"";
    }
}

void tally_logfmt_json(tally_buf_t *b, const tally_logrec_t *r, tally_timecache_t *tc)
{
    tally_timecache_update(tc, r->now.tv_sec);
    update_elapsed(tc, r->elapsed_us / 1000000);
    update_ident(tc, r);
    uint64_t usec = (uint64_t)r->now.tv_nsec / 1000;
    uint64_t el_frac = r->elapsed_us % 1000000;

    /* One reservation covers all but the escaped message and function. */
    if (tally_buf_reserve(b, 700 + 2 * r->message_len) != 0)
        return;
    tally_buf_lit(b, "{\"text\":\"");
    put_text_head(b, r, tc, 0);
    size_t msg_at = b->len;
    tally_json_escape(b, r->message, r->message_len);
    size_t msg_len = b->len - msg_at;
    tally_buf_lit(b, "\\n\",\"record\":{\"elapsed\":{\"repr\":\"");
    tally_buf_append(b, tc->el_repr, tc->el_repr_len);
    if (el_frac) {
        tally_buf_byte(b, '.');
        put_fixed(b, el_frac, 6);
    }
    tally_buf_lit(b, "\",\"seconds\":");
    tally_buf_append(b, tc->el_secs, tc->el_secs_len);
    tally_buf_byte(b, '.');
    put_fixed(b, el_frac, 6);
    tally_buf_lit(b, "},\"exception\":null,\"extra\":{");
    if (r->request_count >= 0) {
        tally_buf_lit(b, "\"request_count\":");
        tally_buf_i64(b, r->request_count);
    }
    tally_buf_lit(b, "},\"function\":\"");
    tally_buf_str(b, r->function);
    tally_buf_str(b, level_json(r->level));
    /* the message, escaped once above */
    if (tally_buf_reserve(b, msg_len) == 0) {
        memcpy(b->data + b->len, b->data + msg_at, msg_len);
        b->len += msg_len;
    }
    tally_buf_append(b, tc->ident, tc->ident_len);
    tally_buf_append(b, tc->civil, 19);
    tally_buf_byte(b, '.');
    put_fixed(b, usec, 6);
    tally_buf_lit(b, "+00:00\",\"timestamp\":");
    tally_buf_append(b, tc->sec_dec, tc->sec_dec_len);
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

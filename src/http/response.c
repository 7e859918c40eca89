/* response.c - see response.h. */
#include "http/response.h"

#include <stdio.h>

#include "base/json.h"

const char *tally_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void tally_http_date(char *out, time_t t)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    char *p = out;
    memcpy(p, days[tm.tm_wday % 7], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    *p++ = (char)('0' + tm.tm_mday / 10);
    *p++ = (char)('0' + tm.tm_mday % 10);
    *p++ = ' ';
    memcpy(p, months[tm.tm_mon % 12], 3);
    p += 3;
    *p++ = ' ';
    int year = (tm.tm_year + 1900) % 10000;
    *p++ = (char)('0' + year / 1000);
    *p++ = (char)('0' + year / 100 % 10);
    *p++ = (char)('0' + year / 10 % 10);
    *p++ = (char)('0' + year % 10);
    *p++ = ' ';
    int hms[3] = {tm.tm_hour, tm.tm_min, tm.tm_sec};
    for (int i = 0; i < 3; i++) {
        *p++ = (char)('0' + hms[i] / 10);
        *p++ = (char)('0' + hms[i] % 10);
        *p++ = i < 2 ? ':' : ' ';
    }
    memcpy(p, "GMT", 4);
}

static void put_head(tally_buf_t *b, const tally_resp_ctx_t *ctx, int status,
                     const char *content_type, size_t body_len, unsigned flags)
{
    if (status == 200) {
        tally_buf_lit(b, "HTTP/1.1 200 OK\r\n");
    } else {
        tally_buf_lit(b, "HTTP/1.1 ");
        tally_buf_u64(b, (uint64_t)status);
        tally_buf_byte(b, ' ');
        tally_buf_str(b, tally_http_reason(status));
        tally_buf_lit(b, "\r\n");
    }
    tally_buf_lit(b, "Server: tally\r\nDate: ");
    tally_buf_append(b, ctx->date, TALLY_HTTP_DATE_LEN);
    if (content_type == NULL) {
        tally_buf_lit(b, "\r\nContent-Type: application/json\r\nContent-Length: ");
    } else {
        tally_buf_lit(b, "\r\nContent-Type: ");
        tally_buf_str(b, content_type);
        tally_buf_lit(b, "\r\nContent-Length: ");
    }
    tally_buf_u64(b, body_len);
    if (flags & TALLY_RESP_CLOSE)
        tally_buf_lit(b, "\r\nConnection: close");
    else if (flags & TALLY_RESP_KEEPALIVE)
        tally_buf_lit(b, "\r\nConnection: keep-alive");
    tally_buf_lit(b, "\r\n");
}

void tally_response_head(tally_buf_t *b, const tally_resp_ctx_t *ctx, int status,
                         const char *content_type, size_t body_len, unsigned flags)
{
    put_head(b, ctx, status, content_type, body_len, flags);
    tally_buf_lit(b, "\r\n");
}

void tally_response_write(tally_buf_t *b, const tally_resp_ctx_t *ctx, int status,
                          const char *content_type, const char *extra_headers, const char *body,
                          size_t body_len, unsigned flags)
{
    put_head(b, ctx, status, content_type, body_len, flags);
    if (extra_headers)
        tally_buf_str(b, extra_headers);
    tally_buf_lit(b, "\r\n");
    if (!(flags & TALLY_RESP_HEAD))
        tally_buf_append(b, body, body_len);
}

void tally_response_error(tally_buf_t *b, const tally_resp_ctx_t *ctx, int status, const char *what,
                          const char *allow, unsigned flags)
{
    char body[512];
    tally_buf_t jb = {body, 0, sizeof body, 0};
    /* jb never grows: escaped text that would not fit is cut below. */
    size_t what_len = strlen(what);
    if (what_len > 80)
        what_len = 80;
    tally_buf_lit(&jb, "{\"error\":\"");
    tally_json_escape(&jb, what, what_len);
    tally_buf_lit(&jb, "\"}");

    char extra[96];
    const char *hdrs = NULL;
    if (status == 405) {
        snprintf(extra, sizeof extra, "Allow: %s\r\n", allow ? allow : "");
        hdrs = extra;
    } else if (status == 503) {
        hdrs = "Retry-After: 1\r\n";
    } else if (status == 401) {
        hdrs = "WWW-Authenticate: Bearer\r\n";
    }
    tally_response_write(b, ctx, status, NULL, hdrs, jb.data, jb.len, flags);
}

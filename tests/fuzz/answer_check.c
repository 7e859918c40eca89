/* answer_check.c - see answer_check.h. */
#include "answer_check.h"

#include <string.h>

#include "http/response.h"

bool answer_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7F)
            return false;
    return true;
}

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

static bool header_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncmp(line, name, name_len) == 0;
}

static uint64_t digits_value(const char *p, const char *end, bool *ok)
{
    uint64_t v = 0;
    *ok = p < end && end - p <= 19;
    for (; *ok && p < end; p++) {
        if (*p < '0' || *p > '9')
            *ok = false;
        else
            v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

static void check_root_body(const answer_expect_t *e, const char *body, const char *end)
{
    static const char hello[] = "{\"hello\":\"world\",\"request_num\":";
    static const char away[] = "{\"Go\":\"away!\",\"request_num\":";
    size_t body_len = (size_t)(end - body);
    const char *lit = e->number > 0 ? hello : away;
    size_t lit_len = strlen(lit);
    CHECK(body_len > lit_len && memcmp(body, lit, lit_len) == 0);
    const char *d = body + lit_len, *de = d;
    while (de < end && *de >= '0' && *de <= '9')
        de++;
    bool ok;
    uint64_t num = digits_value(d, de, &ok);
    CHECK(ok && (int64_t)num == (e->number > 0 ? e->number : e->cap));
    while (de < end - 1 && *de == ' ')
        de++;
    CHECK(de == end - 1 && *de == '}');
}

void answer_check(const answer_expect_t *e, const char *p, size_t n)
{
    const char *end = p + n;
    CHECK(n > 17 && memcmp(p, "HTTP/1.1 ", 9) == 0 && p[12] == ' ');
    bool ok;
    uint64_t status = digits_value(p + 9, p + 12, &ok);
    CHECK(ok && (int)status == e->status);
    const char *eol = find_crlf(p, end);
    CHECK(eol != NULL);
    const char *reason = tally_http_reason(e->status);
    CHECK(strcmp(reason, "Unknown") != 0);
    CHECK((size_t)(eol - (p + 13)) == strlen(reason) &&
          memcmp(p + 13, reason, strlen(reason)) == 0);

    int n_len = 0, n_close = 0, n_keep = 0, n_date = 0, n_allow = 0, n_retry = 0;
    uint64_t clen = 0;
    const char *q = eol + 2;
    for (;;) {
        eol = find_crlf(q, end);
        CHECK(eol != NULL);
        if (eol == q)
            break; /* the blank line */
        const char *colon = memchr(q, ':', (size_t)(eol - q));
        CHECK(colon != NULL && colon > q && colon + 1 < eol && colon[1] == ' ');
        for (const char *c = q; c < eol; c++)
            CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7F);
        size_t name_len = (size_t)(colon - q);
        for (const char *c = q; c < colon; c++)
            CHECK(*c != ' ' && *c != '\t');
        const char *val = colon + 2;
        size_t val_len = (size_t)(eol - val);
        if (header_is(q, name_len, "Content-Length")) {
            n_len++;
            clen = digits_value(val, eol, &ok);
            CHECK(ok);
        } else if (header_is(q, name_len, "Connection")) {
            if (val_len == 5 && memcmp(val, "close", 5) == 0)
                n_close++;
            else if (val_len == 10 && memcmp(val, "keep-alive", 10) == 0)
                n_keep++;
            else
                CHECK(!"Connection header with another value");
        } else if (header_is(q, name_len, "Date")) {
            n_date++;
            CHECK(val_len == TALLY_HTTP_DATE_LEN);
        } else if (header_is(q, name_len, "Allow")) {
            n_allow++;
            CHECK(val_len > 0);
        } else if (header_is(q, name_len, "Retry-After")) {
            n_retry++;
        }
        q = eol + 2;
    }
    const char *body = eol + 2;
    size_t body_len = (size_t)(end - body);
    CHECK(n_len == 1 && n_date == 1);
    if (e->flags & TALLY_RESP_HEAD)
        CHECK(body_len == 0);
    else
        CHECK(body_len == clen);
    bool closing = (e->flags & TALLY_RESP_CLOSE) != 0;
    CHECK(n_close == (closing ? 1 : 0));
    CHECK(n_keep == (!closing && (e->flags & TALLY_RESP_KEEPALIVE) ? 1 : 0));
    CHECK(n_allow == (e->status == 405 ? 1 : 0));
    CHECK(n_retry == (e->status == 503 ? 1 : 0));

    if (e->root) {
        CHECK(clen == e->root_len);
        if (body_len)
            check_root_body(e, body, end);
    } else if (e->status >= 400 && body_len) {
        CHECK(body_len >= 12 && memcmp(body, "{\"error\":\"", 10) == 0 &&
              memcmp(end - 2, "\"}", 2) == 0);
        for (const char *c = body; c < end; c++)
            CHECK((unsigned char)*c >= 0x20);
    }
}

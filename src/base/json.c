/* json.c - JSON string escaping; see json.h. */
#include "base/json.h"

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0
 * when the bytes there are not one (overlong forms, surrogates and code
 * points past U+10FFFF included). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* 1 for the bytes that can be copied as they are: printable ASCII but the
 * quote and the backslash. */
static const unsigned char plain[256] = {
    ['\x20'] = 1,
    1,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1, /* 0x20-0x2f, '"' not */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1, /* 0x30-0x3f */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1, /* 0x40-0x4f */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    0,
    1,
    1,
    1, /* 0x50-0x5f, '\\' not */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1, /* 0x60-0x6f */
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    0, /* 0x70-0x7f, DEL not */
};

void tally_json_escape(tally_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t run = i;
        while (run < n && plain[p[run]])
            run++;
        if (run > i) {
            tally_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        switch (c) {
        case '"':
            tally_buf_lit(b, "\\\"");
            i++;
            continue;
        case '\\':
            tally_buf_lit(b, "\\\\");
            i++;
            continue;
        case '\n':
            tally_buf_lit(b, "\\n");
            i++;
            continue;
        case '\r':
            tally_buf_lit(b, "\\r");
            i++;
            continue;
        case '\t':
            tally_buf_lit(b, "\\t");
            i++;
            continue;
        default:
            break;
        }
        if (c < 0x20 || c == 0x7F) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            tally_buf_append(b, e, sizeof e);
            i++;
            continue;
        }
        size_t len = utf8_seq_len(p + i, n - i);
        if (len == 0) {
            tally_buf_lit(b, "\\ufffd");
            i++;
        } else {
            tally_buf_append(b, s + i, len);
            i += len;
        }
    }
}

void tally_json_string(tally_buf_t *b, const char *s, size_t n)
{
    tally_buf_byte(b, '"');
    tally_json_escape(b, s, n);
    tally_buf_byte(b, '"');
}

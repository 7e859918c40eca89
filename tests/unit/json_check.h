/* json_check.h - a small, strict JSON validator for the unit tests.
 *
 * Independent of src/json.c on purpose: the tests judge tally's output
 * with it. RFC 8259 grammar, plus strictness a lenient parser would skip:
 * raw text must be valid UTF-8 (no overlong forms, no surrogates, nothing
 * past U+10FFFF), control bytes must be escaped, \u escapes of surrogates
 * must come in proper pairs, and nothing may follow the value.
 */
#ifndef TALLY_TEST_JSON_CHECK_H
#define TALLY_TEST_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes) and its code
 * point in *cp, or 0 when the bytes there are not valid UTF-8. */
static inline size_t jc_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Appends the UTF-8 form of cp to out (room for 4 more bytes assumed). */
static inline size_t jc_utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

typedef struct jc {
    const unsigned char *p;
    const unsigned char *end;
    int depth;
    unsigned char *out; /* decoded bytes of the last string, or NULL */
    size_t out_cap;
    size_t out_len;
} jc_t;

static inline void jc_ws(jc_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static inline bool jc_emit(jc_t *c, uint32_t cp)
{
    if (c->out == NULL)
        return true;
    if (c->out_cap - c->out_len < 4)
        return false;
    c->out_len += jc_utf8_encode(cp, c->out + c->out_len);
    return true;
}

static inline int jc_hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char h = p[i];
        int d;
        if (h >= '0' && h <= '9')
            d = h - '0';
        else if (h >= 'a' && h <= 'f')
            d = h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
            d = h - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static inline bool jc_string(jc_t *c)
{
    c->out_len = 0;
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    for (;;) {
        if (c->p >= c->end)
            return false;
        unsigned char ch = *c->p;
        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch != '\\') {
            uint32_t cp;
            size_t len = jc_utf8_decode(c->p, (size_t)(c->end - c->p), &cp);
            if (len == 0 || !jc_emit(c, cp))
                return false;
            c->p += len;
            continue;
        }
        if (c->end - c->p < 2)
            return false;
        uint32_t cp;
        switch (c->p[1]) {
        case '"':
        case '\\':
        case '/':
            cp = c->p[1];
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u': {
            if (c->end - c->p < 6)
                return false;
            int v = jc_hex4(c->p + 2);
            if (v < 0 || (v >= 0xDC00 && v <= 0xDFFF))
                return false;
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (c->end - c->p < 12 || c->p[6] != '\\' || c->p[7] != 'u')
                    return false;
                int lo = jc_hex4(c->p + 8);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return false;
                cp = 0x10000 + (((uint32_t)v - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                c->p += 6;
            } else {
                cp = (uint32_t)v;
            }
            c->p += 4;
            break;
        }
        default:
            return false;
        }
        c->p += 2;
        if (!jc_emit(c, cp))
            return false;
    }
}

static inline bool jc_digits(jc_t *c)
{
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

static inline bool jc_number(jc_t *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p >= c->end)
        return false;
    if (*c->p == '0') {
        c->p++;
    } else if (!jc_digits(c)) {
        return false;
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!jc_digits(c))
            return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!jc_digits(c))
            return false;
    }
    return true;
}

static inline bool jc_literal(jc_t *c, const char *lit)
{
    for (; *lit; lit++, c->p++)
        if (c->p >= c->end || *c->p != (unsigned char)*lit)
            return false;
    return true;
}

static inline bool jc_value(jc_t *c);

static inline bool jc_members(jc_t *c, unsigned char close, bool object)
{
    c->p++;
    if (++c->depth > 64)
        return false;
    jc_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        c->depth--;
        return true;
    }
    for (;;) {
        jc_ws(c);
        if (object) {
            if (!jc_string(c))
                return false;
            jc_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return false;
            c->p++;
            jc_ws(c);
        }
        if (!jc_value(c))
            return false;
        jc_ws(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p != close)
            return false;
        c->p++;
        c->depth--;
        return true;
    }
}

static inline bool jc_value(jc_t *c)
{
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '{':
        return jc_members(c, '}', true);
    case '[':
        return jc_members(c, ']', false);
    case '"':
        return jc_string(c);
    case 't':
        return jc_literal(c, "true");
    case 'f':
        return jc_literal(c, "false");
    case 'n':
        return jc_literal(c, "null");
    default:
        return jc_number(c);
    }
}

/* Whether s[0..n) is exactly one JSON value (surrounding whitespace allowed). */
static inline bool json_check_document(const char *s, size_t n)
{
    jc_t c = {(const unsigned char *)s, (const unsigned char *)s + n, 0, NULL, 0, 0};
    jc_ws(&c);
    if (!jc_value(&c))
        return false;
    jc_ws(&c);
    return c.p == c.end;
}

/* Whether s[0..n) is exactly one JSON string, nothing around it. When out
 * is not NULL the decoded bytes (UTF-8) go there and *out_len gets their
 * number. */
static inline bool json_check_string(const char *s, size_t n, unsigned char *out, size_t out_cap,
                                     size_t *out_len)
{
    jc_t c = {(const unsigned char *)s, (const unsigned char *)s + n, 0, out, out_cap, 0};
    if (!jc_string(&c) || c.p != c.end)
        return false;
    if (out_len)
        *out_len = c.out_len;
    return true;
}

#endif

/* test_json.c - JSON string escaping (src/base/json.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/json.h"
#include "json_check.h"

/* Escapes in[0..n) and compares with want, printing both on a mismatch. */
static void check_escape(const char *in, size_t n, const char *want)
{
    tally_buf_t b = TALLY_BUF_INIT;
    tally_json_escape(&b, in, n);
    size_t want_len = strlen(want);
    if (b.len != want_len || memcmp(b.data ? b.data : "", want, want_len) != 0) {
        fail_msg("escape gave '%.*s' (%zu bytes), want '%s' (%zu bytes)", (int)b.len,
                 b.data ? b.data : "", b.len, want, want_len);
    }
    tally_buf_free(&b);
}

#define CHECK_ESCAPE(lit, want) check_escape((lit), sizeof(lit) - 1, (want))

/* Whether out is prefix, then one or more \ufffd, then suffix. */
static void check_replaced(const char *in, size_t n, const char *prefix, const char *suffix)
{
    tally_buf_t b = TALLY_BUF_INIT;
    tally_json_escape(&b, in, n);
    const char *p = b.data ? b.data : "";
    size_t len = b.len;
    size_t pl = strlen(prefix), sl = strlen(suffix);
    bool ok =
        len >= pl + 6 + sl && memcmp(p, prefix, pl) == 0 && memcmp(p + len - sl, suffix, sl) == 0;
    if (ok) {
        size_t mid = len - pl - sl;
        ok = mid % 6 == 0;
        for (size_t i = 0; ok && i < mid; i += 6)
            ok = memcmp(p + pl + i, "\\ufffd", 6) == 0;
    }
    if (!ok)
        fail_msg("escape gave '%.*s', want '%s' + \\ufffd... + '%s'", (int)len, p, prefix, suffix);
    tally_buf_free(&b);
}

#define CHECK_REPLACED(lit, prefix, suffix)                                                        \
    check_replaced((lit), sizeof(lit) - 1, (prefix), (suffix))

static void test_plain_ascii_unchanged(void **state)
{
    (void)state;
    CHECK_ESCAPE("", "");
    CHECK_ESCAPE("hello world", "hello world");
    CHECK_ESCAPE("Request #7 / ~ {}[]:,", "Request #7 / ~ {}[]:,");
}

static void test_quote_and_backslash(void **state)
{
    (void)state;
    CHECK_ESCAPE("\"", "\\\"");
    CHECK_ESCAPE("\\", "\\\\");
    CHECK_ESCAPE("a\"b\\c", "a\\\"b\\\\c");
    CHECK_ESCAPE("\\\"\\\"", "\\\\\\\"\\\\\\\"");
}

static void test_short_escapes(void **state)
{
    (void)state;
    CHECK_ESCAPE("\n", "\\n");
    CHECK_ESCAPE("\r", "\\r");
    CHECK_ESCAPE("\t", "\\t");
    CHECK_ESCAPE("a\r\nb\tc", "a\\r\\nb\\tc");
}

static void test_control_bytes_as_u00xx(void **state)
{
    (void)state;
    CHECK_ESCAPE("\x01", "\\u0001");
    CHECK_ESCAPE("\x08", "\\u0008");
    CHECK_ESCAPE("\x0c", "\\u000c");
    CHECK_ESCAPE("\x1b[0m", "\\u001b[0m");
    CHECK_ESCAPE("\x1f", "\\u001f");
    CHECK_ESCAPE("a\0b", "a\\u0000b");
    /* Every control byte comes out as an escape, never raw. */
    for (int c = 0; c < 0x20; c++) {
        char in[3] = {'x', (char)c, 'y'};
        tally_buf_t b = TALLY_BUF_INIT;
        tally_json_escape(&b, in, sizeof in);
        for (size_t i = 0; i < b.len; i++)
            assert_true((unsigned char)b.data[i] >= 0x20);
        assert_true(b.len > 3);
        assert_int_equal(b.data[1], '\\');
        tally_buf_free(&b);
    }
}

static void test_valid_utf8_passes_through(void **state)
{
    (void)state;
    CHECK_ESCAPE("caf\xc3\xa9", "caf\xc3\xa9");                           /* U+00E9 */
    CHECK_ESCAPE("\xc2\x80", "\xc2\x80");                                 /* U+0080 */
    CHECK_ESCAPE("\xdf\xbf", "\xdf\xbf");                                 /* U+07FF */
    CHECK_ESCAPE("\xe0\xa0\x80", "\xe0\xa0\x80");                         /* U+0800 */
    CHECK_ESCAPE("\xe2\x82\xac 5", "\xe2\x82\xac 5");                     /* U+20AC */
    CHECK_ESCAPE("\xed\x9f\xbf", "\xed\x9f\xbf");                         /* U+D7FF */
    CHECK_ESCAPE("\xee\x80\x80", "\xee\x80\x80");                         /* U+E000 */
    CHECK_ESCAPE("\xef\xbf\xbd", "\xef\xbf\xbd");                         /* U+FFFD */
    CHECK_ESCAPE("\xef\xbf\xbf", "\xef\xbf\xbf");                         /* U+FFFF */
    CHECK_ESCAPE("\xf0\x90\x80\x80", "\xf0\x90\x80\x80");                 /* U+10000 */
    CHECK_ESCAPE("\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!");               /* U+1F600 */
    CHECK_ESCAPE("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");                 /* U+10FFFF */
    CHECK_ESCAPE("\xe2\x84\xb9\xef\xb8\x8f", "\xe2\x84\xb9\xef\xb8\x8f"); /* loguru's INFO icon */
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    CHECK_REPLACED("a\x80z", "a", "z");             /* lone continuation byte */
    CHECK_REPLACED("a\xbfz", "a", "z");             /* lone continuation byte */
    CHECK_REPLACED("a\xc3z", "a", "z");             /* lead byte, no continuation */
    CHECK_REPLACED("a\xc3", "a", "");               /* truncated at the end */
    CHECK_REPLACED("a\xe2\x82", "a", "");           /* truncated 3-byte */
    CHECK_REPLACED("a\xe2\x82z", "a", "z");         /* interrupted 3-byte */
    CHECK_REPLACED("a\xf0\x9f\x98z", "a", "z");     /* interrupted 4-byte */
    CHECK_REPLACED("a\xfez", "a", "z");             /* never valid */
    CHECK_REPLACED("a\xffz", "a", "z");             /* never valid */
    CHECK_REPLACED("a\xf5\x80\x80\x80z", "a", "z"); /* lead byte past U+10FFFF */
    CHECK_REPLACED("a\xf4\x90\x80\x80z", "a", "z"); /* U+110000 */
}

static void test_overlong_forms_replaced(void **state)
{
    (void)state;
    CHECK_REPLACED("a\xc0\x80z", "a", "z");         /* overlong NUL */
    CHECK_REPLACED("a\xc0\xafz", "a", "z");         /* overlong '/' */
    CHECK_REPLACED("a\xc1\xbfz", "a", "z");         /* overlong U+007F */
    CHECK_REPLACED("a\xe0\x80\xafz", "a", "z");     /* 3-byte overlong '/' */
    CHECK_REPLACED("a\xe0\x9f\xbfz", "a", "z");     /* 3-byte overlong U+07FF */
    CHECK_REPLACED("a\xf0\x80\x80\xafz", "a", "z"); /* 4-byte overlong '/' */
    CHECK_REPLACED("a\xf0\x8f\xbf\xbfz", "a", "z"); /* 4-byte overlong U+FFFF */
    /* An overlong quote must not turn into a raw quote. */
    CHECK_REPLACED("a\xc0\xa2z", "a", "z");
}

static void test_surrogates_replaced(void **state)
{
    (void)state;
    CHECK_REPLACED("a\xed\xa0\x80z", "a", "z");             /* U+D800 */
    CHECK_REPLACED("a\xed\xaf\xbfz", "a", "z");             /* U+DBFF */
    CHECK_REPLACED("a\xed\xb0\x80z", "a", "z");             /* U+DC00 */
    CHECK_REPLACED("a\xed\xbf\xbfz", "a", "z");             /* U+DFFF */
    CHECK_REPLACED("a\xed\xa0\xbd\xed\xb8\x80z", "a", "z"); /* CESU-8 pair */
}

static void test_string_adds_quotes(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    tally_buf_lit(&b, "x=");
    tally_json_string(&b, "say \"hi\"\n", 9);
    const char want[] = "x=\"say \\\"hi\\\"\\n\"";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    tally_buf_free(&b);
}

static void test_appends_to_existing_content(void **state)
{
    (void)state;
    tally_buf_t b = TALLY_BUF_INIT;
    tally_buf_lit(&b, "{\"k\":\"");
    tally_json_escape(&b, "\x01\"\xff", 3);
    tally_buf_lit(&b, "\"}");
    assert_true(json_check_document(b.data, b.len));
    const char want[] = "{\"k\":\"\\u0001\\\"\\ufffd\"}";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    tally_buf_free(&b);
}

/* The checker itself must be able to say no, or the tests below prove
 * nothing. */
static void test_checker_rejects_bad_strings(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "\"",
        "\"abc",
        "abc\"",
        "\"a\"b",
        "\"\x01\"",
        "\"\n\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\xff\"",
        "\"\xc0\x80\"",
        "\"\xed\xa0\x80\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\xf4\x90\x80\x80\"",
        "\"a\"\"b\"",
        "\"\\\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (json_check_string(bad[i], strlen(bad[i]), NULL, 0, NULL))
            fail_msg("checker accepted bad string #%zu", i);
    }
    static const char *const good[] = {
        "\"\"", "\"a\\\"b\"", "\"\\u00e9\\/\\b\\f\"", "\"\\ud83d\\ude00\"", "\"\xe2\x82\xac\"",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!json_check_string(good[i], strlen(good[i]), NULL, 0, NULL))
            fail_msg("checker refused good string #%zu", i);
    }
    assert_false(json_check_document("{\"a\":1,}", 8));
    assert_false(json_check_document("{\"a\":01}", 8));
    assert_true(json_check_document(" {\"a\":[1,-2.5e3,true,null,{}]} ", 31));
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Bytes that exercise every branch of an escaper, mixed with uniform ones. */
static unsigned char random_byte(void)
{
    static const unsigned char tricky[] = {0x00, 0x01, 0x08, 0x09, 0x0a, 0x0d, 0x1f, '"',  '\\',
                                           '/',  'a',  0x7f, 0x80, 0x8f, 0x9f, 0xa0, 0xbf, 0xc0,
                                           0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0,
                                           0xf1, 0xf4, 0xf5, 0xf8, 0xfe, 0xff};
    uint64_t r = rng();
    if (r & 1)
        return (unsigned char)(r >> 8);
    return tricky[(r >> 8) % sizeof tricky];
}

static void hexdump_fail(const char *what, const unsigned char *in, size_t n)
{
    char hex[3 * 80 + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && i < 80; i++)
        k += (size_t)snprintf(hex + k, sizeof hex - k, "%02x ", in[i]);
    hex[k] = '\0';
    fail_msg("%s; input bytes: %s", what, hex);
}

/* Reference: valid sequences copied, each invalid byte one U+FFFD, then
 * runs of U+FFFD collapsed (how many replacements an invalid run gets is
 * the escaper's choice; where they go is not). */
static size_t collapse_fffd(const unsigned char *s, size_t n, unsigned char *out)
{
    static const unsigned char fffd[3] = {0xef, 0xbf, 0xbd};
    size_t k = 0;
    bool last_fffd = false;
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && memcmp(s + i, fffd, 3) == 0) {
            if (!last_fffd) {
                memcpy(out + k, fffd, 3);
                k += 3;
            }
            last_fffd = true;
            i += 3;
        } else {
            out[k++] = s[i++];
            last_fffd = false;
        }
    }
    return k;
}

static void test_random_bytes_always_valid_json(void **state)
{
    (void)state;
    unsigned char in[64];
    unsigned char decoded[64 * 4 + 8];
    unsigned char ref[64 * 4 + 8];
    unsigned char c1[sizeof ref], c2[sizeof decoded];
    tally_buf_t b = TALLY_BUF_INIT;
    for (int iter = 0; iter < 50000; iter++) {
        size_t n = (size_t)(rng() % sizeof in);
        for (size_t i = 0; i < n; i++)
            in[i] = random_byte();
        b.len = 0;
        tally_buf_byte(&b, '"');
        tally_json_escape(&b, (const char *)in, n);
        tally_buf_byte(&b, '"');
        assert_false(b.oom);
        size_t dlen = 0;
        if (!json_check_string(b.data, b.len, decoded, sizeof decoded, &dlen))
            hexdump_fail("escaped output is not a valid JSON string", in, n);

        /* The decoded text is the input with only the invalid parts replaced. */
        size_t rlen = 0;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t len = jc_utf8_decode(in + i, n - i, &cp);
            if (len == 0) {
                rlen += jc_utf8_encode(0xFFFD, ref + rlen);
                i++;
            } else {
                memcpy(ref + rlen, in + i, len);
                rlen += len;
                i += len;
            }
        }
        size_t l1 = collapse_fffd(ref, rlen, c1);
        size_t l2 = collapse_fffd(decoded, dlen, c2);
        if (l1 != l2 || memcmp(c1, c2, l1) != 0)
            hexdump_fail("decoded output differs from the input beyond replacements", in, n);
    }
    tally_buf_free(&b);
}

static void test_random_valid_utf8_round_trips(void **state)
{
    (void)state;
    unsigned char in[32 * 4];
    unsigned char decoded[sizeof in + 8];
    tally_buf_t b = TALLY_BUF_INIT;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        size_t count = (size_t)(rng() % 32);
        for (size_t i = 0; i < count; i++) {
            uint32_t cp;
            switch (rng() % 4) {
            case 0:
                cp = (uint32_t)(rng() % 0x80);
                break;
            case 1:
                cp = 0x80 + (uint32_t)(rng() % (0x800 - 0x80));
                break;
            case 2:
                cp = 0x800 + (uint32_t)(rng() % (0x10000 - 0x800));
                break;
            default:
                cp = 0x10000 + (uint32_t)(rng() % (0x110000 - 0x10000));
                break;
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD;
            n += jc_utf8_encode(cp, in + n);
        }
        b.len = 0;
        tally_json_string(&b, (const char *)in, n);
        size_t dlen = 0;
        if (!json_check_string(b.data, b.len, decoded, sizeof decoded, &dlen))
            hexdump_fail("escaped valid UTF-8 is not a valid JSON string", in, n);
        if (dlen != n || memcmp(decoded, in, n) != 0)
            hexdump_fail("valid UTF-8 did not round-trip", in, n);
    }
    tally_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_ascii_unchanged),
        cmocka_unit_test(test_quote_and_backslash),
        cmocka_unit_test(test_short_escapes),
        cmocka_unit_test(test_control_bytes_as_u00xx),
        cmocka_unit_test(test_valid_utf8_passes_through),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_overlong_forms_replaced),
        cmocka_unit_test(test_surrogates_replaced),
        cmocka_unit_test(test_string_adds_quotes),
        cmocka_unit_test(test_appends_to_existing_content),
        cmocka_unit_test(test_checker_rejects_bad_strings),
        cmocka_unit_test(test_random_bytes_always_valid_json),
        cmocka_unit_test(test_random_valid_utf8_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* units.c - strict parsers for the numbers a user types: decimal integers,
 * durations and sizes; see units.h. */
#include "base/units.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int tally_units_reason(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

int tally_parse_u64(const char *s, uint64_t *out)
{
    if (*s == '\0')
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int tally_parse_duration_ms(const char *s, uint64_t *out, char *err, size_t errlen)
{
    /* "10" and "10s" are seconds; "250ms", "1.5s", "2m" as written. */
    const char *p = s;
    uint64_t whole = 0, frac = 0, frac_div = 1;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (whole > 1000000000ULL)
            goto bad;
        whole = whole * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (frac_div < 1000000) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_div *= 10;
            }
            p++;
            digits++;
        }
    }
    if (digits == 0)
        goto bad;
    uint64_t unit_ms;
    if (*p == '\0' || strcmp(p, "s") == 0)
        unit_ms = 1000;
    else if (strcmp(p, "ms") == 0)
        unit_ms = 1;
    else if (strcmp(p, "m") == 0)
        unit_ms = 60000;
    else if (strcmp(p, "h") == 0)
        unit_ms = 3600000;
    else
        goto bad;
    *out = whole * unit_ms + frac * unit_ms / frac_div;
    return 0;
bad:
    return tally_units_reason(
        err, errlen, "expected a duration such as 10, 10s, 1.5s, 250ms, 2m or 1h, got '%s'", s);
}

int tally_parse_size(const char *s, uint64_t *out, char *err, size_t errlen)
{
    /* Bytes, or with a k/m suffix (KiB/MiB, the way nginx reads sizes). */
    char digits[32];
    size_t n = strspn(s, "0123456789");
    uint64_t mult = 1;
    const char *suffix = s + n;
    if (strcasecmp(suffix, "k") == 0 || strcasecmp(suffix, "kb") == 0 ||
        strcasecmp(suffix, "kib") == 0)
        mult = 1024;
    else if (strcasecmp(suffix, "m") == 0 || strcasecmp(suffix, "mb") == 0 ||
             strcasecmp(suffix, "mib") == 0)
        mult = 1024 * 1024;
    else if (*suffix != '\0')
        goto bad;
    if (n == 0 || n >= sizeof digits)
        goto bad;
    memcpy(digits, s, n);
    digits[n] = '\0';
    uint64_t v = 0;
    if (tally_parse_u64(digits, &v) != 0 || v > UINT64_MAX / mult)
        goto bad;
    *out = v * mult;
    return 0;
bad:
    return tally_units_reason(err, errlen, "expected a size such as 8192, 8k or 1m, got '%s'", s);
}

/* units.h - strict parsers for the numbers a user types in flags and
 * environment variables. Each returns 0 and stores the value, or -1 with a
 * one-line reason ("expected ..., got '...'") in err; nothing is accepted
 * that only looks like a number (no sign, spaces, or trailing bytes). */
#ifndef TALLY_UNITS_H
#define TALLY_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Decimal digits only, no overflow (no reason given: the caller knows the
 * range it wanted). */
int tally_parse_u64(const char *s, uint64_t *out);

/* "10" and "10s" are seconds; "250ms", "1.5s", "2m", "1h" as written. */
int tally_parse_duration_ms(const char *s, uint64_t *out, char *err, size_t errlen);

/* Bytes, or with a k/m suffix (KiB/MiB, as nginx reads sizes). */
int tally_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);

/* Formats a reason into why (truncated to whylen) and returns -1. */
int tally_reason(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

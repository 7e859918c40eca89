/* units.h - strict parsers for the numbers a user types in flags and
 * environment variables: nothing is accepted that only looks like a number
 * (no sign, no spaces, no trailing bytes, no overflow). The duration and
 * size parsers return 0 and store the value, or -1 with a one-line reason
 * ("expected ..., got '...'") in err. */
#ifndef TALLY_UNITS_H
#define TALLY_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Decimal digits only: 0 and the value, or -1 (no reason: the caller knows
 * the range it wanted and says so). */
int tally_parse_u64(const char *s, uint64_t *out);

/* "10" and "10s" are seconds; "250ms", "1.5s", "2m", "1h" as written. */
int tally_parse_duration_ms(const char *s, uint64_t *out, char *err, size_t errlen);

/* Bytes, or KiB with a k, kb or kib suffix, MiB with m, mb or mib (any
 * case; as nginx reads sizes). */
int tally_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);

/* Not a parser: formats a reason into why (truncated to whylen) and
 * returns -1, for the parsers here and config.c's flag setters. */
int tally_units_reason(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

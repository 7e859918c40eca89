/* json.h - the little JSON tally writes: escaped strings.
 *
 * Everything tally emits as JSON (log lines, error bodies) is assembled by
 * hand from fixed keys; only strings that come from outside (messages,
 * backend error texts, paths) pass through here.
 */
#ifndef TALLY_JSON_H
#define TALLY_JSON_H

#include "base/buf.h"

/* Appends the JSON string form of s[0..n) WITHOUT the surrounding quotes:
 * '"' and '\\' are escaped, control bytes become \n, \r, \t or \u00XX, and
 * any byte sequence that is not valid UTF-8 becomes \ufffd, so the output
 * is always valid JSON text whatever the input. */
void tally_json_escape(tally_buf_t *b, const char *s, size_t n);

/* Appends "s" with quotes. */
void tally_json_string(tally_buf_t *b, const char *s, size_t n);

#endif

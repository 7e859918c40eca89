/* buf.h - a growable byte buffer.
 *
 * The one piece of dynamic storage tally's text producers share: response
 * serialisation, log lines and metrics all append into a tally_buf_t that
 * its owner keeps and reuses, so the hot path allocates only when a buffer
 * must grow past its high-water mark.
 */
#ifndef TALLY_BUF_H
#define TALLY_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tally_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom; /* set once an allocation failed; appends become no-ops */
} tally_buf_t;

/* Empty buffer; no allocation until the first append. */
#define TALLY_BUF_INIT                                                                             \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

void tally_buf_free(tally_buf_t *b);

/* Make room for at least `extra` more bytes. Returns 0, or -ENOMEM (and
 * sets b->oom) when memory ran out, now or before. */
int tally_buf_reserve(tally_buf_t *b, size_t extra);

static inline void tally_buf_append(tally_buf_t *b, const void *p, size_t n)
{
    if (b->oom || (b->cap - b->len < n && tally_buf_reserve(b, n) != 0))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

#define tally_buf_lit(b, s) tally_buf_append((b), (s), sizeof(s) - 1)

static inline void tally_buf_str(tally_buf_t *b, const char *s)
{
    tally_buf_append(b, s, strlen(s));
}

static inline void tally_buf_byte(tally_buf_t *b, char c)
{
    if (b->oom || (b->cap == b->len && tally_buf_reserve(b, 1) != 0))
        return;
    b->data[b->len++] = c;
}

/* Decimal digits of v (v >= 0), written by hand: no printf on hot paths. */
void tally_buf_u64(tally_buf_t *b, uint64_t v);
void tally_buf_i64(tally_buf_t *b, int64_t v);

/* printf-style append, for cold paths. */
void tally_buf_printf(tally_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the decimal form of v into out (at least 20 bytes); returns its
 * length. */
size_t tally_u64_to_dec(char *out, uint64_t v);

#endif

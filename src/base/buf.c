/* buf.c - growable byte buffer; see buf.h. */
#include "base/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void tally_buf_free(tally_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

int tally_buf_reserve(tally_buf_t *b, size_t extra)
{
    if (b->oom)
        return -ENOMEM;
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX - b->len) {
        b->oom = 1;
        return -ENOMEM;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->oom = 1;
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

size_t tally_u64_to_dec(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void tally_buf_u64(tally_buf_t *b, uint64_t v)
{
    char tmp[20];
    tally_buf_append(b, tmp, tally_u64_to_dec(tmp, v));
}

void tally_buf_i64(tally_buf_t *b, int64_t v)
{
    if (v < 0) {
        tally_buf_byte(b, '-');
        tally_buf_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        tally_buf_u64(b, (uint64_t)v);
    }
}

void tally_buf_printf(tally_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        tally_buf_append(b, small, (size_t)n);
        return;
    }
    if (tally_buf_reserve(b, (size_t)n + 1) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

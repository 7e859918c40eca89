/* answer_check.h - what fuzz_http demands of one serialised answer. */
#ifndef FUZZ_ANSWER_CHECK_H
#define FUZZ_ANSWER_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: invariant violated at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct answer_expect {
    int status;     /* the status it must carry */
    unsigned flags; /* TALLY_RESP_* it was written with */
    bool root;      /* a GET / 200: the padded hello / go-away body */
    size_t root_len;
    int64_t number; /* root: > 0 granted, 0 go away */
    int64_t cap;
} answer_expect_t;

/* Aborts unless p[0..n) is exactly one well-formed answer as expected:
 * status line with the right reason, CRLF-terminated printable header
 * lines, one Content-Length equal to the body (no body for HEAD), one
 * Date, Connection as flagged, Allow exactly on 405, Retry-After exactly on
 * 503, a JSON error body on errors, the padded body on root answers. */
void answer_check(const answer_expect_t *e, const char *p, size_t n);

/* Whether s is printable ASCII. */
bool answer_printable(const char *s);

#endif

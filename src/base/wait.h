/* wait.h - a one-shot completion link.
 *
 * Whoever must answer later (a request waiting for a number) lends one of
 * these to whoever will answer (the claim queue): the borrower may chain it
 * through `next` while it holds it, and gives it back by calling `settled`
 * exactly once, with a status and a value whose meaning the two agree on
 * (app/batch.h: a tally_claim_status_t and the number). The lender owns the
 * memory and keeps it alive until then.
 */
#ifndef TALLY_WAIT_H
#define TALLY_WAIT_H

#include <stdint.h>

typedef struct tally_wait tally_wait_t;

struct tally_wait {
    tally_wait_t *next;
    void (*settled)(tally_wait_t *w, int status, int64_t value);
};

#endif

/* batch.h - claims queued during one loop iteration, settled as one.
 *
 * Each GET / adds a tally_claim_t to its worker's queue. Once per loop
 * iteration the worker takes the whole queue and asks the backend for k
 * numbers at once; the answer (first, granted) is handed out in arrival
 * order: the first `granted` claims get first, first+1, ...; the rest are
 * refused (counter at CAP), or all fail when the backend was unavailable.
 */
#ifndef TALLY_BATCH_H
#define TALLY_BATCH_H

#include <stdint.h>

#include "base/wait.h"
#include "counter/counter.h"

/* A claim is a completion link (base/wait.h) whose settled(c, st, number)
 * gets a tally_claim_status_t and the number: number > 0: granted; 0:
 * refused, counter at CAP. With TALLY_CLAIM_UNAVAILABLE number is 0. The
 * callback may free the claim. */
typedef tally_wait_t tally_claim_t;

typedef struct tally_claimq {
    tally_claim_t *head;
    tally_claim_t **tail;
    uint32_t n;
} tally_claimq_t;

void tally_claimq_init(tally_claimq_t *q);
void tally_claimq_push(tally_claimq_t *q, tally_claim_t *c);

/* Detaches the queued claims as a NULL-terminated list (in arrival order)
 * and empties the queue; *n receives their number. */
tally_claim_t *tally_claimq_take(tally_claimq_t *q, uint32_t *n);

/* Settles every claim of list in order, as described above. */
void tally_claims_settle(tally_claim_t *list, tally_claim_status_t st, int64_t first,
                         uint32_t granted);

#endif

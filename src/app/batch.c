/* batch.c - see batch.h. */
#include "app/batch.h"

#include <stddef.h>

void tally_claimq_init(tally_claimq_t *q)
{
    q->head = NULL;
    q->tail = &q->head;
    q->n = 0;
}

void tally_claimq_push(tally_claimq_t *q, tally_claim_t *c)
{
    c->next = NULL;
    *q->tail = c;
    q->tail = &c->next;
    q->n++;
}

tally_claim_t *tally_claimq_take(tally_claimq_t *q, uint32_t *n)
{
    tally_claim_t *list = q->head;
    *n = q->n;
    tally_claimq_init(q);
    return list;
}

void tally_claims_settle(tally_claim_t *list, tally_claim_status_t st, int64_t first,
                         uint32_t granted)
{
    uint32_t i = 0;
    while (list) {
        tally_claim_t *c = list;
        list = c->next; /* read before the callback: it may free c */
        if (st != TALLY_CLAIM_OK)
            c->settled(c, (int)st, 0);
        else
            c->settled(c, (int)st, i < granted ? first + (int64_t)i : 0);
        i++;
    }
}

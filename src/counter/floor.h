/* floor.h - the floor: the highest counter value a process has seen its
 * shared backend answer, below which no claim may grant.
 *
 * A backend that loses writes (Redis restarted without persistence, a
 * failover to a replica or standby that was behind, a restored backup)
 * would otherwise hand out again numbers that were granted already. Every
 * claim carries the process's floor, and the backend's claim script or
 * statement raises the counter to it first, atomically and only upward, in
 * the same round trip: a claim never grants a number at or below what this
 * process has seen (its own grants and, through each answer's counter
 * value, everyone's before them). The answer says what the backend had, so
 * a raise is logged and counted (/metrics, /readyz).
 *
 * A reset (POST /reset) must not be undone by the floors of the other
 * processes: it moves the counter to the next epoch, stored beside it
 * (Redis: KEY:epoch; PostgreSQL: the row's epoch column). A floor belongs
 * to its epoch; a claim carrying an older epoch than the backend's is not
 * raised (a reset it had not seen), one carrying a newer epoch (the backend
 * lost the reset too) restores the epoch and is raised.
 *
 * This process's claims still in flight, and other processes' claims since
 * its last answer, may have been granted numbers above the floor. So a
 * claim that finds the counter below the floor raises it higher: to floor
 * + the numbers this process's claims in flight may take + 2 x (the
 * counter's recent growth rate, as seen in this process's answers) x (the
 * time since the last one, plus 1 ms), at most CAP: the numbers others could have taken meanwhile
 * are skipped (a gap, never a duplicate). A burst far above the recent rate could still outrun that
 * margin; replication that acknowledges before a grant is what closes it for failovers.
 *
 * What a process that has seen nothing cannot know: it starts at floor 0
 * in epoch 0 and learns the backend's epoch from its first answer. Numbers
 * a backend lost before any running process saw them are not protected.
 *
 * Thread-safe: one floor per process, shared by every worker's counter.
 */
#ifndef TALLY_FLOOR_H
#define TALLY_FLOOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct tally_floor {
    pthread_mutex_t lock;
    int64_t epoch;            /* guarded by lock */
    int64_t value;            /* guarded by lock */
    uint64_t at_us;           /* when value was last raised (monotonic µs) */
    double rate;              /* numbers per µs, the highest sample of the window */
    uint64_t rate_us;         /* when that window began */
    _Atomic int64_t inflight; /* numbers this process's claims in flight may take */
    _Atomic int64_t shown;    /* value, for /metrics */
    _Atomic int64_t raises;   /* answers that were below the floor (lost writes) */
    _Atomic int64_t lost;     /* numbers they had forgotten, summed */
} tally_floor_t;

/* Epoch 0, value 0. Returns 0 or a negative errno. */
int tally_floor_init(tally_floor_t *f);
void tally_floor_destroy(tally_floor_t *f);

/* The floor, its epoch and what a counter found below it is raised to (at
 * least the floor), to send with a claim. */
void tally_floor_get(tally_floor_t *f, int64_t *epoch, int64_t *value, int64_t *raise_to);

/* A claim of k is sent (after tally_floor_get()) / answered or failed. */
void tally_floor_claim_start(tally_floor_t *f, uint32_t k);
void tally_floor_claim_end(tally_floor_t *f, uint32_t k);

/* The backend answered that in epoch `epoch` its counter is `value` (after
 * a claim: the value after it; after a reset: 0 in the new epoch). A newer
 * epoch replaces the floor; the same one raises it to value if higher; an
 * older one (an answer overtaken by a reset) is ignored. */
void tally_floor_saw(tally_floor_t *f, int64_t epoch, int64_t value);

/* The backend had only `had` where the claim's floor said `floor` (or had
 * an older epoch): counted in raises and lost. */
void tally_floor_raised(tally_floor_t *f, int64_t had, int64_t floor);

#endif

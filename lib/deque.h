/*
 * deque.h - a Chase-Lev work-stealing deque of futures (private).
 *
 * One owner pushes and takes at the bottom (LIFO); any thread steals from
 * the top (FIFO).  The ring grows by doubling; old rings are kept until the
 * deque is freed, because a thief may still be reading one.
 *
 * Memory ordering.  top and bottom are accessed with seq_cst operations
 * (Chase & Lev 2005; Le et al. 2013 give the weaker fence-based form).  The
 * owner writes a slot, then publishes it by storing bottom; a thief loads
 * top, then bottom, reads the slot and claims it with a CAS on top, so the
 * thief's acquire of bottom orders the slot (and everything the submitter
 * wrote into the future before pushing it) before its use.  The one race,
 * owner take versus thief steal of the last element, is settled by both
 * CASing top.  Slots are atomics, so a thief reading a slot that the owner
 * is overwriting (after a failed CAS the value is discarded) is not a data
 * race.
 */
#ifndef FUT_DEQUE_H
#define FUT_DEQUE_H

#include "future.h"

typedef struct fut__ring {
    int64_t size; /* a power of two */
    struct fut__ring *older;
    _Atomic(fut_t *) slot[];
} fut__ring_t;

typedef struct fut__deque {
    _Atomic int64_t top;
    char pad1[64 - sizeof(int64_t)];
    _Atomic int64_t bottom;
    _Atomic(fut__ring_t *) ring;
    char pad2[64 - sizeof(int64_t) - sizeof(void *)];
} fut__deque_t;

/* Steal outcomes besides a future. */
#define FUT__DEQUE_EMPTY ((fut_t *)NULL)
#define FUT__DEQUE_ABORT ((fut_t *)(uintptr_t)1) /* lost a race: retry */

int fut__deque_init(fut__deque_t *d);
void fut__deque_destroy(fut__deque_t *d);
/* Owner only.  0, or ENOMEM when the ring could not grow. */
int fut__deque_push(fut__deque_t *d, fut_t *f);
/* Owner only.  The newest future, or NULL. */
fut_t *fut__deque_take(fut__deque_t *d);
/* Any thread.  The oldest future, FUT__DEQUE_EMPTY or FUT__DEQUE_ABORT. */
fut_t *fut__deque_steal(fut__deque_t *d);
/* Any thread: a hint, exact only while nobody pushes or takes. */
int64_t fut__deque_size(fut__deque_t *d);

#endif /* FUT_DEQUE_H */

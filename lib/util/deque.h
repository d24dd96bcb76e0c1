/*
 * deque.h - a bounded Chase-Lev work-stealing deque of pointers (private;
 * util layer).
 *
 * One owner pushes and takes at the bottom (LIFO); any thread steals from
 * the top (FIFO).  The ring has a fixed capacity and lives inside the
 * deque: a push that finds it full fails and the owner sends the item
 * elsewhere (the pool's shared queue).  A fixed ring costs no allocation,
 * cannot fail to grow, and keeps a worker's queue memory constant however
 * much work passes through it; a deque that grew to hold a burst would keep
 * the burst's ring for the life of the pool.
 *
 * Memory ordering.  top and bottom are accessed with seq_cst operations
 * (Chase & Lev 2005; Le et al. 2013 give the weaker fence-based form).  The
 * owner writes a slot, then publishes it by storing bottom; a thief loads
 * top, then bottom, reads the slot and claims it with a CAS on top, so the
 * thief's acquire of bottom orders the slot (and everything the pusher
 * wrote into the item before pushing it) before its use.  The one race,
 * owner take versus thief steal of the last element, is settled by both
 * CASing top.  The owner writes slot b only when b - top < CAPACITY for a
 * top it read, so it never overwrites a slot a thief can still claim; a
 * thief that read a stale top may read a slot being overwritten, but its
 * CAS on top then fails and the value is discarded.  Slots are atomics, so
 * that read is not a data race.
 */
#ifndef FUT_UTIL_DEQUE_H
#define FUT_UTIL_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { FUT__DEQUE_CAPACITY = 256 }; /* a power of two */

typedef struct fut__deque {
    _Atomic int64_t top;
    char pad1[64 - sizeof(int64_t)];
    _Atomic int64_t bottom;
    char pad2[64 - sizeof(int64_t)];
    void *_Atomic slot[FUT__DEQUE_CAPACITY];
} fut__deque_t;

/* Steal outcomes besides an item (items are never NULL). */
#define FUT__DEQUE_EMPTY ((void *)NULL)
#define FUT__DEQUE_ABORT ((void *)(uintptr_t)1) /* lost a race: retry */

void fut__deque_init(fut__deque_t *d);
/* Owner only.  False when the deque is full (nothing was pushed). */
bool fut__deque_push(fut__deque_t *d, void *item);
/* Owner only.  The newest item, or NULL. */
void *fut__deque_take(fut__deque_t *d);
/* Any thread.  The oldest item, FUT__DEQUE_EMPTY or FUT__DEQUE_ABORT. */
void *fut__deque_steal(fut__deque_t *d);

#endif /* FUT_UTIL_DEQUE_H */

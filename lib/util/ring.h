/*
 * ring.h - a bounded multi-producer multi-consumer FIFO of pointers
 * (private; util layer).
 *
 * Dmitry Vyukov's bounded MPMC queue: each cell carries a sequence number
 * that says whose turn it is.  A producer at position pos may fill the
 * cell when its sequence is pos, a consumer may empty it when it is
 * pos + 1.  Consumers claim their position with one CAS on the shared
 * head; producers here take a lock of their own (the pool's), so the tail
 * is advanced by a plain store.  No allocation, FIFO.
 *
 * Memory ordering.  The producer writes the item, then publishes it with a
 * release store of the cell's sequence; the consumer reads the sequence
 * with acquire before it reads the item, so it sees the item and whatever
 * the producer wrote before pushing (a task's fields).  Handing the cell
 * back is the consumer's release store of pos + capacity, which the next
 * producer of that cell acquires, so the item is read before it is
 * overwritten.  The CAS on head only decides who owns a position
 * (relaxed).  Positions are size_t and wrap harmlessly.
 */
#ifndef FUT_UTIL_RING_H
#define FUT_UTIL_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum { FUT__RING_CAPACITY = 1024 }; /* a power of two */

typedef struct fut__ring_cell {
    _Atomic size_t seq;
    void *item;
} fut__ring_cell_t;

typedef struct fut__ring {
    _Alignas(64) _Atomic size_t head; /* next position to take */
    _Alignas(64) _Atomic size_t tail; /* next position to fill */
    _Alignas(64) fut__ring_cell_t cell[FUT__RING_CAPACITY];
} fut__ring_t;

void fut__ring_init(fut__ring_t *r);
/* The caller is the only producer at the time (it holds the lock all
 * producers take), so the tail needs no CAS.  False when the ring is full
 * (nothing was pushed). */
bool fut__ring_push_alone(fut__ring_t *r, void *item);
/* Any thread.  The oldest item, or NULL when the ring is empty. */
void *fut__ring_pop(fut__ring_t *r);
/* A hint: true if an item may be waiting (no order implied). */
bool fut__ring_nonempty(fut__ring_t *r);

#endif /* FUT_UTIL_RING_H */

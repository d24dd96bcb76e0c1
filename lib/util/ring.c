/*
 * ring.c - the bounded MPMC FIFO (ring.h has the protocol and its memory
 * ordering).
 */
#include "util/ring.h"

#include <stdint.h>

enum {
    MASK = FUT__RING_CAPACITY - 1,
    /* Cells per cache line (16 bytes each), and lines in the ring. */
    PER_LINE = 4,
    LINES = FUT__RING_CAPACITY / PER_LINE,
};

/* The cell of position pos.  Consecutive positions go to different cache
 * lines, so that two consumers taking neighbouring positions do not write
 * the same line (their seq stores would bounce it between them). */
_Static_assert(sizeof(fut__ring_cell_t) * PER_LINE == 64,
               "PER_LINE cells fill a cache line");

static fut__ring_cell_t *cell_of(fut__ring_t *r, size_t pos)
{
    size_t i = pos & MASK;
    return &r->cell[(i % LINES) * PER_LINE + i / LINES];
}

void fut__ring_init(fut__ring_t *r)
{
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    for (size_t i = 0; i < FUT__RING_CAPACITY; i++) {
        atomic_init(&cell_of(r, i)->seq, i);
        cell_of(r, i)->item = NULL;
    }
}

bool fut__ring_push_alone(fut__ring_t *r, void *item)
{
    size_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    fut__ring_cell_t *c = cell_of(r, pos);
    if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos)
        return false; /* a lap behind: full */
    atomic_store_explicit(&r->tail, pos + 1, memory_order_relaxed);
    c->item = item;
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    return true;
}

void *fut__ring_pop(fut__ring_t *r)
{
    size_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
    fut__ring_cell_t *c;
    for (;;) {
        c = cell_of(r, pos);
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)(seq - (pos + 1));
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (diff < 0) {
            return NULL; /* not filled yet: empty */
        } else {
            pos = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
    void *item = c->item;
    atomic_store_explicit(&c->seq, pos + FUT__RING_CAPACITY,
                          memory_order_release);
    return item;
}

bool fut__ring_nonempty(fut__ring_t *r)
{
    return atomic_load_explicit(&r->head, memory_order_relaxed) !=
           atomic_load_explicit(&r->tail, memory_order_relaxed);
}

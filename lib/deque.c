/*
 * deque.c - the Chase-Lev work-stealing deque (see deque.h for the
 * ordering argument).  Rings come from malloc: they are per-worker runtime
 * state that lives as long as the pool.
 */
#include "deque.h"

#include <errno.h>
#include <stdlib.h>

static fut__ring_t *ring_new(int64_t size, fut__ring_t *older)
{
    fut__ring_t *r = malloc(sizeof *r + (size_t)size * sizeof r->slot[0]);
    if (!r)
        return NULL;
    r->size = size;
    r->older = older;
    for (int64_t i = 0; i < size; i++)
        atomic_init(&r->slot[i], NULL);
    return r;
}

int fut__deque_init(fut__deque_t *d)
{
    fut__ring_t *r = ring_new(256, NULL);
    if (!r)
        return ENOMEM;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->ring, r);
    return 0;
}

void fut__deque_destroy(fut__deque_t *d)
{
    fut__ring_t *r = atomic_load(&d->ring);
    while (r) {
        fut__ring_t *older = r->older;
        free(r);
        r = older;
    }
}

static fut_t *slot_get(fut__ring_t *r, int64_t i)
{
    return atomic_load_explicit(&r->slot[i & (r->size - 1)],
                                memory_order_relaxed);
}

static void slot_put(fut__ring_t *r, int64_t i, fut_t *f)
{
    atomic_store_explicit(&r->slot[i & (r->size - 1)], f, memory_order_relaxed);
}

int fut__deque_push(fut__deque_t *d, fut_t *f)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load(&d->top);
    fut__ring_t *r = atomic_load_explicit(&d->ring, memory_order_relaxed);
    if (b - t > r->size - 1) {
        fut__ring_t *bigger = ring_new(r->size * 2, r);
        if (!bigger)
            return ENOMEM;
        for (int64_t i = t; i < b; i++)
            slot_put(bigger, i, slot_get(r, i));
        atomic_store(&d->ring, bigger);
        r = bigger;
    }
    slot_put(r, b, f);
    atomic_store(&d->bottom, b + 1); /* publishes the slot */
    return 0;
}

fut_t *fut__deque_take(fut__deque_t *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    fut__ring_t *r = atomic_load_explicit(&d->ring, memory_order_relaxed);
    atomic_store(&d->bottom, b);
    int64_t t = atomic_load(&d->top);
    if (t > b) {
        atomic_store(&d->bottom, b + 1); /* empty */
        return NULL;
    }
    fut_t *f = slot_get(r, b);
    if (t == b) {
        /* The last one: race the thieves for it. */
        if (!atomic_compare_exchange_strong(&d->top, &t, t + 1))
            f = NULL;
        atomic_store(&d->bottom, b + 1);
    }
    return f;
}

fut_t *fut__deque_steal(fut__deque_t *d)
{
    int64_t t = atomic_load(&d->top);
    int64_t b = atomic_load(&d->bottom);
    if (t >= b)
        return FUT__DEQUE_EMPTY;
    fut__ring_t *r = atomic_load(&d->ring);
    fut_t *f = slot_get(r, t);
    if (!atomic_compare_exchange_strong(&d->top, &t, t + 1))
        return FUT__DEQUE_ABORT;
    return f;
}

int64_t fut__deque_size(fut__deque_t *d)
{
    int64_t n = atomic_load(&d->bottom) - atomic_load(&d->top);
    return n > 0 ? n : 0;
}

/*
 * deque.c - the bounded Chase-Lev work-stealing deque (see deque.h for the
 * ordering argument).
 */
#include "util/deque.h"

enum { MASK = FUT__DEQUE_CAPACITY - 1 };

void fut__deque_init(fut__deque_t *d)
{
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    for (int i = 0; i < FUT__DEQUE_CAPACITY; i++)
        atomic_init(&d->slot[i], NULL);
}

static void *slot_get(fut__deque_t *d, int64_t i)
{
    return atomic_load_explicit(&d->slot[i & MASK], memory_order_relaxed);
}

static void slot_put(fut__deque_t *d, int64_t i, void *f)
{
    atomic_store_explicit(&d->slot[i & MASK], f, memory_order_relaxed);
}

bool fut__deque_push(fut__deque_t *d, void *f)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load(&d->top);
    if (b - t >= FUT__DEQUE_CAPACITY)
        return false;
    slot_put(d, b, f);
    atomic_store(&d->bottom, b + 1); /* publishes the slot */
    return true;
}

void *fut__deque_take(fut__deque_t *d)
{
    /* Empty for sure (top only grows, and bottom is ours): skip the
     * store-load fence of a take, which an idle worker would pay on every
     * look for work. */
    if (atomic_load_explicit(&d->bottom, memory_order_relaxed) <=
        atomic_load_explicit(&d->top, memory_order_relaxed))
        return NULL;
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    atomic_store(&d->bottom, b);
    int64_t t = atomic_load(&d->top);
    if (t > b) {
        atomic_store(&d->bottom, b + 1); /* empty */
        return NULL;
    }
    void *f = slot_get(d, b);
    if (t == b) {
        /* The last one: race the thieves for it. */
        if (!atomic_compare_exchange_strong(&d->top, &t, t + 1))
            f = NULL;
        atomic_store(&d->bottom, b + 1);
    }
    return f;
}

void *fut__deque_steal(fut__deque_t *d)
{
    int64_t t = atomic_load(&d->top);
    int64_t b = atomic_load(&d->bottom);
    if (t >= b)
        return FUT__DEQUE_EMPTY;
    void *f = slot_get(d, t);
    if (!atomic_compare_exchange_strong(&d->top, &t, t + 1))
        return FUT__DEQUE_ABORT;
    return f;
}

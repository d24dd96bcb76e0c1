/*
 * iter.c - PEP 3148 as_completed: an iterator yielding each future once,
 * in the order they settle.
 *
 * The iterator block embeds one slot per future (pushed on its callback
 * stack, no allocation per future) and a ring of indexes: a settling
 * future's slot appends its index under the lock and unparks the thread
 * waiting in fut_iter_next, if any.  Waiting goes through fut__wait_until,
 * so a pool worker iterating runs queued tasks meanwhile (rule 7).
 *
 * References: the user's, plus one per slot that has not fired; the last
 * one releases the futures (the iterator keeps its own references) and
 * frees the block.  `lock` guards the ring and the waiter; no user code
 * runs under it.
 */
#include "core/wait.h"
#include "util/park.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

struct fut_iter {
    pthread_mutex_t lock;
    _Atomic size_t refs;
    size_t n, head, tail; /* ring[head..tail) settled, not yet yielded */
    size_t size;
    fut__parker_t *waiter; /* a reference, or NULL */
    fut_t **fs;
    size_t *ring;
    fut__cb_t slots[];
};

static void iter_release(fut_iter_t *it)
{
    if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < it->n; i++)
        fut_release(it->fs[i]);
    fut__parker_release(it->waiter);
    pthread_mutex_destroy(&it->lock);
    fut__free(it, it->size);
}

static void slot_fired(fut_t *f, void *node)
{
    (void)f;
    fut__cb_t *slot = node;
    fut_iter_t *it = slot->arg;
    pthread_mutex_lock(&it->lock);
    it->ring[it->tail++] = (size_t)(slot - it->slots);
    fut__parker_t *w = it->waiter;
    if (w)
        fut__parker_retain(w);
    pthread_mutex_unlock(&it->lock);
    if (w) {
        fut__parker_unpark(w);
        fut__parker_release(w);
    }
    iter_release(it);
}

fut_iter_t *fut_as_completed(fut_t *const *fs, size_t n)
{
    if (!fs && n)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return NULL;
    if (n > (SIZE_MAX / 2) / 64)
        return NULL;
    size_t size = sizeof(fut_iter_t) + n * sizeof(fut__cb_t) +
                  n * sizeof(fut_t *) + n * sizeof(size_t);
    fut_iter_t *it = fut__alloc(size);
    if (!it)
        return NULL;
    memset(it, 0, size);
    it->size = size;
    it->n = n;
    it->fs = (fut_t **)(it->slots + n);
    it->ring = (size_t *)(it->fs + n);
    pthread_mutex_init(&it->lock, NULL);
    atomic_init(&it->refs, n + 1);
    for (size_t i = 0; i < n; i++)
        it->fs[i] = fut_retain(fs[i]);
    for (size_t i = 0; i < n; i++) {
        it->slots[i].fn = slot_fired;
        it->slots[i].arg = it;
        if (!fut__cbs_push(it->fs[i], (uintptr_t)&it->slots[i] | FUT__TAG_SLOT))
            slot_fired(it->fs[i], &it->slots[i]);
    }
    return it;
}

typedef struct iter_waiter {
    fut__waiter_t base;
    fut_iter_t *it;
} iter_waiter_t;

static bool iter_ready(fut__waiter_t *w)
{
    fut_iter_t *it = ((iter_waiter_t *)w)->it;
    pthread_mutex_lock(&it->lock);
    bool ready = it->head < it->tail;
    pthread_mutex_unlock(&it->lock);
    return ready;
}

static int iter_arm(fut__waiter_t *w, fut__parker_t *p)
{
    fut_iter_t *it = ((iter_waiter_t *)w)->it;
    fut__parker_retain(p);
    pthread_mutex_lock(&it->lock);
    fut__parker_t *old = it->waiter;
    it->waiter = p;
    pthread_mutex_unlock(&it->lock);
    fut__parker_release(old);
    return 0;
}

int fut_iter_next(fut_iter_t *it, int64_t timeout, fut_t **f, size_t *index)
{
    if (f)
        *f = NULL;
    if (!it)
        return EINVAL;
    int64_t deadline = fut__deadline(timeout);
    for (;;) {
        pthread_mutex_lock(&it->lock);
        if (it->head == it->n) {
            pthread_mutex_unlock(&it->lock);
            return ENOENT;
        }
        if (it->head < it->tail) {
            size_t i = it->ring[it->head++];
            pthread_mutex_unlock(&it->lock);
            if (f)
                *f = it->fs[i];
            if (index)
                *index = i;
            return 0;
        }
        pthread_mutex_unlock(&it->lock);
        if (timeout == 0)
            return ETIMEDOUT;
        fut__wait_reap(it->fs, it->n);
        iter_waiter_t w = {{iter_ready, iter_arm}, it};
        int rc = fut__wait_until(&w.base, deadline);
        if (rc)
            return rc;
    }
}

void fut_iter_free(fut_iter_t *it)
{
    if (it)
        iter_release(it);
}

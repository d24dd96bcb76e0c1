/*
 * lock.h - a small mutex for short critical sections that run no user
 * code and never block (private; util layer).
 *
 * Why not pthread_mutex_t: a task group takes its lock once per member
 * added, and glibc's lock and unlock (two calls that check the mutex's
 * type, around the same two atomic instructions) were 18% of the
 * submitting thread's time in W9.  This one is a word, taken with one CAS
 * and given back with one exchange, both inline.
 *
 * The word: 0 free, 1 held, 2 held and someone may sleep on it.  A taker
 * that finds it held spins briefly, then swaps in 2 and sleeps on the word
 * (a futex) until it takes it with its swap; the unlocker that swaps out a
 * 2 wakes one sleeper.  A woken taker swaps in 2 again (it cannot know it
 * is the last), so at worst an unlock wakes nobody in vain.  Without a
 * futex (the portable build) it
 * is a pthread mutex.
 */
#ifndef FUT_UTIL_LOCK_H
#define FUT_UTIL_LOCK_H

#include "util/park.h"

#if FUT__PARK_FUTEX

typedef struct fut__lock {
    _Atomic uint32_t word;
} fut__lock_t;

/* A static lock's initializer. */
#define FUT__LOCK_INIT                                                         \
    {                                                                          \
        0                                                                      \
    }

void fut__lock_wait(fut__lock_t *l);
void fut__lock_wake(fut__lock_t *l);

static inline void fut__lock_init(fut__lock_t *l)
{
    atomic_init(&l->word, 0);
}

static inline void fut__lock_destroy(fut__lock_t *l)
{
    (void)l;
}

static inline void fut__lock(fut__lock_t *l)
{
    uint32_t free = 0;
    if (!atomic_compare_exchange_strong_explicit(
            &l->word, &free, 1, memory_order_acquire, memory_order_relaxed))
        fut__lock_wait(l);
}

static inline void fut__unlock(fut__lock_t *l)
{
    if (atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2)
        fut__lock_wake(l);
}

#else /* portable */

typedef struct fut__lock {
    pthread_mutex_t m;
} fut__lock_t;

#define FUT__LOCK_INIT                                                         \
    {                                                                          \
        PTHREAD_MUTEX_INITIALIZER                                              \
    }

static inline void fut__lock_init(fut__lock_t *l)
{
    pthread_mutex_init(&l->m, NULL);
}

static inline void fut__lock_destroy(fut__lock_t *l)
{
    pthread_mutex_destroy(&l->m);
}

static inline void fut__lock(fut__lock_t *l)
{
    pthread_mutex_lock(&l->m);
}

static inline void fut__unlock(fut__lock_t *l)
{
    pthread_mutex_unlock(&l->m);
}

#endif

#endif /* FUT_UTIL_LOCK_H */

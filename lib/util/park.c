/*
 * park.c - per-thread parkers: a futex word each on Linux, a mutex and a
 * condition variable around the same word elsewhere or with FUT_PORTABLE
 * (see park.h for the protocol and the memory-ordering argument).
 *
 * unpark skips the wake (the futex syscall, or the mutex and broadcast)
 * when nobody sleeps: a sleeper increments `sleepers` (seq_cst) before it
 * compares the word and waits, and the waker reads it (seq_cst) after
 * bumping `seq`; by the store-load ordering of seq_cst one of them sees the
 * other, so either the waker issues the wake or the sleeper's compare
 * fails on the bumped word.
 *
 * The portable parker compares and waits under `lock` (the condition
 * variable releases it atomically), and a waker that saw a sleeper takes
 * `lock` before it broadcasts: the waker's lock is acquired either before
 * the sleeper took it (then the sleeper's compare sees the bumped word) or
 * once the sleeper is waiting (then the broadcast wakes it) or after it
 * left.  The deadline is absolute on CLOCK_MONOTONIC, which the condition
 * variable uses where pthread_condattr_setclock exists; elsewhere it is
 * converted to CLOCK_REALTIME at each wait (a clock step then moves the
 * wake-up, which callers tolerate as a spurious or late return).
 */
#include "util/park.h"

#include "util/lock.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if FUT__PARK_FUTEX
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

static pthread_key_t parker_key;
static pthread_once_t parker_once = PTHREAD_ONCE_INIT;
static _Thread_local fut__parker_t *parker_tls;

#if !FUT__PARK_FUTEX
/* fork(): the child has one thread, but the parkers of the parent's other
 * threads live on, and one of those threads may have held a parker's mutex
 * or waited on its condition variable at the fork.  Each parker records
 * the fork generation it was made in; the child bumps the generation and
 * gives the forking thread's own parker a fresh mutex and condition
 * variable.  unpark (and the last release) leave the mutex and condition
 * variable of an older generation's parker alone: its owner is not in this
 * process, and a broadcast to its vanished waiters may never return.  The
 * generation is written only by the child's handler, while it is the only
 * thread. */
static uint32_t fork_gen;

static int sync_init(fut__parker_t *p)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
#ifdef FUT_HAVE_PTHREAD_CONDATTR_SETCLOCK
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0) {
        pthread_condattr_destroy(&attr);
        return -1;
    }
#endif
    int rc = pthread_cond_init(&p->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        pthread_cond_destroy(&p->cond);
        return -1;
    }
    p->gen = fork_gen;
    return 0;
}

static void parker_fork_child(void)
{
    fork_gen++;
    /* The old mutex may be held by a thread that is gone; the old
     * condition variable has no waiter (only its owner, which is
     * forking, waits on it).  On failure the parker keeps its old
     * generation, and waking it stays a bump of the word. */
    if (parker_tls)
        sync_init(parker_tls);
}
#endif

static void parker_thread_exit(void *p)
{
    parker_tls = NULL;
    fut__parker_release(p);
}

static void parker_key_init(void)
{
    if (pthread_key_create(&parker_key, parker_thread_exit) != 0)
        abort(); /* no key: the process is out of a basic resource */
#if !FUT__PARK_FUTEX
    if (pthread_atfork(NULL, NULL, parker_fork_child) != 0)
        abort();
#endif
}

fut__parker_t *fut__parker_new(void)
{
    fut__parker_t *p = malloc(sizeof *p);
    if (!p)
        return NULL;
    atomic_init(&p->seq, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->refs, 1);
#if !FUT__PARK_FUTEX
    pthread_once(&parker_once, parker_key_init); /* the fork handler */
    if (sync_init(p) != 0) {
        free(p);
        return NULL;
    }
#endif
    return p;
}

void fut__parker_retain(fut__parker_t *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void fut__parker_release(fut__parker_t *p)
{
    if (p &&
        atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
#if !FUT__PARK_FUTEX
        if (p->gen == fork_gen) {
            pthread_cond_destroy(&p->cond);
            pthread_mutex_destroy(&p->lock);
        }
#endif
        free(p);
    }
}

void fut__parker_adopt(fut__parker_t *p)
{
    pthread_once(&parker_once, parker_key_init);
    fut__parker_retain(p);
    fut__parker_t *old = parker_tls;
    parker_tls = p;
    pthread_setspecific(parker_key, p);
    fut__parker_release(old);
}

fut__parker_t *fut__parker_self(void)
{
    if (parker_tls)
        return parker_tls;
    pthread_once(&parker_once, parker_key_init);
    fut__parker_t *p = fut__parker_new();
    if (!p)
        return NULL;
    parker_tls = p;
    pthread_setspecific(parker_key, p);
    return p;
}

#if FUT__PARK_FUTEX

void fut__parker_park(fut__parker_t *p, uint32_t seen, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline >= 0) {
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&p->seq, memory_order_seq_cst) == seen)
        syscall(SYS_futex, &p->seq, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                seen, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
}

void fut__parker_unpark(fut__parker_t *p)
{
    atomic_fetch_add_explicit(&p->seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) != 0)
        syscall(SYS_futex, &p->seq, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX,
                NULL, NULL, 0);
}

/* lock.h's contended path: a short spin (the holder's section is short),
 * then sleep on the word, marked 2 so the unlocker wakes someone. */
void fut__lock_wait(fut__lock_t *l)
{
    for (int i = 0; i < 64; i++) {
        fut__cpu_relax();
        uint32_t free = 0;
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(
                &l->word, &free, 1, memory_order_acquire, memory_order_relaxed))
            return;
    }
    while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0)
        syscall(SYS_futex, &l->word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, NULL,
                NULL, 0);
}

void fut__lock_wake(fut__lock_t *l)
{
    syscall(SYS_futex, &l->word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL,
            0);
}

#else /* portable: mutex + condition variable */

/* The absolute deadline (monotonic ns) as the timespec the condition
 * variable's clock wants. */
static struct timespec cond_deadline(int64_t deadline)
{
#ifndef FUT_HAVE_PTHREAD_CONDATTR_SETCLOCK
    /* The condition variable waits on CLOCK_REALTIME: shift by the
     * distance between the clocks, saturating. */
    struct timespec real;
    clock_gettime(CLOCK_REALTIME, &real);
    int64_t now_real = (int64_t)real.tv_sec * 1000000000 + real.tv_nsec;
    int64_t left = deadline - fut__now();
    if (left < 0)
        left = 0;
    deadline = left > INT64_MAX - now_real ? INT64_MAX : now_real + left;
#endif
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline / 1000000000);
    ts.tv_nsec = (long)(deadline % 1000000000);
    return ts;
}

void fut__parker_park(fut__parker_t *p, uint32_t seen, int64_t deadline)
{
    if (p->gen != fork_gen) {
        /* A fork child's parker whose reinitialisation failed: nobody
         * broadcasts to it, so return (spuriously) after a short nap. */
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
        return;
    }
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&p->seq, memory_order_seq_cst) == seen) {
        if (deadline < 0) {
            pthread_cond_wait(&p->cond, &p->lock);
        } else {
            struct timespec ts = cond_deadline(deadline);
            pthread_cond_timedwait(&p->cond, &p->lock, &ts);
        }
    }
    atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
    pthread_mutex_unlock(&p->lock);
}

void fut__parker_unpark(fut__parker_t *p)
{
    atomic_fetch_add_explicit(&p->seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) != 0 &&
        p->gen == fork_gen) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    }
}

#endif /* FUT__PARK_FUTEX */

void fut__thread_name(const char *name)
{
#ifdef FUT_HAVE_PTHREAD_SETNAME_NP
    char cut[16]; /* Linux keeps 15 bytes and the NUL */
    size_t n = strlen(name);
    if (n > sizeof cut - 1)
        n = sizeof cut - 1;
    memcpy(cut, name, n);
    cut[n] = '\0';
    pthread_setname_np(pthread_self(), cut);
#else
    (void)name;
#endif
}

int64_t fut__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t fut__deadline(int64_t timeout)
{
    if (timeout < 0)
        return -1;
    int64_t now = fut__now();
    if (timeout > INT64_MAX - now)
        return INT64_MAX;
    return now + timeout;
}

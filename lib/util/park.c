/*
 * park.c - per-thread parkers: a futex word each (see park.h for the
 * protocol and the memory-ordering argument).
 *
 * unpark skips the futex syscall when nobody sleeps: a sleeper increments
 * `sleepers` (seq_cst) before the futex wait and the waker reads it
 * (seq_cst) after bumping `seq`; by the store-load ordering of seq_cst one
 * of them sees the other, so either the waker issues the wake or the
 * sleeper's futex compare fails on the bumped word.
 */
#include "util/park.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_key_t parker_key;
static pthread_once_t parker_once = PTHREAD_ONCE_INIT;
static _Thread_local fut__parker_t *parker_tls;

static void parker_thread_exit(void *p)
{
    parker_tls = NULL;
    fut__parker_release(p);
}

static void parker_key_init(void)
{
    if (pthread_key_create(&parker_key, parker_thread_exit) != 0)
        abort(); /* no key: the process is out of a basic resource */
}

fut__parker_t *fut__parker_new(void)
{
    fut__parker_t *p = malloc(sizeof *p);
    if (!p)
        return NULL;
    atomic_init(&p->seq, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->refs, 1);
    return p;
}

void fut__parker_retain(fut__parker_t *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void fut__parker_release(fut__parker_t *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        free(p);
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

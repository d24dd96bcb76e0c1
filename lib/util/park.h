/*
 * park.h - per-thread parkers (over a futex on Linux, a mutex and condition
 * variable elsewhere), monotonic time and thread names (private; util
 * layer).
 *
 * A parker is a 32-bit sequence word a thread sleeps on.  The protocol:
 *
 *     waiter                               waker
 *     seen = fut__parker_prepare(p);       make the condition true
 *     if (condition) done;                 fut__parker_unpark(p);
 *     fut__parker_park(p, seen, deadline);
 *     loop and check again
 *
 * The waker bumps the word after making the condition true, so either the
 * waiter's check sees the condition, or park's compare sees a changed word
 * and returns at once, or the wake finds the waiter queued: no wakeup is
 * lost.  (With a futex the kernel makes compare-and-queue atomic; with the
 * portable parker the waiter compares and waits under the parker's mutex,
 * and a waker that sees a sleeper takes that mutex before it broadcasts.)
 * prepare is an acquire load and unpark a release RMW, so a waiter that read
 * the bumped word also sees the condition.
 *
 * Parkers are reference counted because a timed-out waiter may leave a wake
 * callback behind on a future that settles after the thread has exited.
 * They come from malloc (not the pluggable allocator): they are per-thread
 * runtime state, not per-object memory.
 */
#ifndef FUT_UTIL_PARK_H
#define FUT_UTIL_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Which parker: the futex where CMake found it (FUT_HAVE_FUTEX), unless
 * FUT_PORTABLE forces the portable one.  The choice is made once here; the
 * definitions are the library's own (PRIVATE), and the struct is private
 * to lib/. */
#if defined(FUT_HAVE_FUTEX) && !defined(FUT_PORTABLE)
#define FUT__PARK_FUTEX 1
#else
#define FUT__PARK_FUTEX 0
#include <pthread.h>
#endif

typedef struct fut__parker {
    _Atomic uint32_t seq;
    _Atomic uint32_t sleepers; /* unpark wakes anyone only if nonzero */
    _Atomic uint32_t refs;
#if !FUT__PARK_FUTEX
    pthread_mutex_t lock; /* guards the compare-and-wait against the wake */
    pthread_cond_t cond;  /* on CLOCK_MONOTONIC where condattr_setclock is */
    uint32_t gen;         /* the fork generation it was made in (park.c) */
#endif
} fut__parker_t;

/* This thread's parker (created on first use; NULL only on ENOMEM).  The
 * thread holds one reference until it exits. */
fut__parker_t *fut__parker_self(void);
/* Installs p (a new reference is taken) as this thread's parker. */
void fut__parker_adopt(fut__parker_t *p);

fut__parker_t *fut__parker_new(void);
void fut__parker_retain(fut__parker_t *p);
void fut__parker_release(fut__parker_t *p);

static inline uint32_t fut__parker_prepare(fut__parker_t *p)
{
    return atomic_load_explicit(&p->seq, memory_order_acquire);
}

/* Sleeps while p's word equals seen, until deadline (absolute, monotonic
 * ns; negative: none).  Spurious returns are allowed. */
void fut__parker_park(fut__parker_t *p, uint32_t seen, int64_t deadline);
void fut__parker_unpark(fut__parker_t *p);

/* Monotonic clock in nanoseconds, and deadline arithmetic for timeouts. */
int64_t fut__now(void);
/* timeout < 0: -1 (forever); else now + timeout, saturated. */
int64_t fut__deadline(int64_t timeout);
static inline bool fut__expired(int64_t deadline)
{
    return deadline >= 0 && fut__now() >= deadline;
}

/* Names the calling thread (cut to the 15 bytes Linux keeps) where the
 * platform can (FUT_HAVE_PTHREAD_SETNAME_NP); a no-op elsewhere. */
void fut__thread_name(const char *name);

/* CPU relax hint for short spins. */
static inline void fut__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif /* FUT_UTIL_PARK_H */

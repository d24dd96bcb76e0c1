/*
 * wait.h - blocking until a condition over futures holds (private).
 *
 * One mechanism serves fut_wait, fut_get, fut_wait_for, as_completed and
 * the loop executor: a waiter names a condition (ready) and how to be woken
 * when it may have changed (arm: register wake callbacks that unpark the
 * given parker).  fut__wait_until drains this thread's trampoline, lets a
 * pool worker run queued tasks meanwhile (rule 7), spins briefly, arms once
 * and parks.  When arming finds no memory it polls with a growing nap
 * instead: a wait never fails for want of memory.
 */
#ifndef FUT_WAIT_H
#define FUT_WAIT_H

#include "future.h"
#include "park.h"

typedef struct fut__waiter fut__waiter_t;
struct fut__waiter {
    bool (*ready)(fut__waiter_t *w);
    /* 0: armed; EALREADY: ready already (nothing to wait for); ENOMEM. */
    int (*arm)(fut__waiter_t *w, fut__parker_t *p);
};

/* 0 once ready, or ETIMEDOUT at deadline (absolute ns; negative: never). */
int fut__wait_until(fut__waiter_t *w, int64_t deadline);

/* Pushes a callback on f that unparks p when f settles: 0, EALREADY if f
 * had already settled and dispatched (nothing pushed), ENOMEM. */
int fut__arm_wake(fut_t *f, fut__parker_t *p);

/* Sleeps a growing backoff, at most until deadline. */
void fut__nap(int64_t *nap, int64_t deadline);

/* If this thread is a worker of a live pool, waits for w while running the
 * pool's queued tasks, stores 0 or ETIMEDOUT in *rc and returns true;
 * otherwise returns false (pool.c). */
bool fut__executor_help_wait(fut__waiter_t *w, int64_t deadline, int *rc);

#endif /* FUT_WAIT_H */

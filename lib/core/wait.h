/*
 * wait.h - blocking until a condition over futures holds (private; core
 * layer).
 *
 * One mechanism serves fut_wait, fut_get, fut_wait_for and as_completed: a
 * waiter names a condition (ready) and how to be woken when it may have
 * changed (arm: register wake callbacks that unpark the given parker).
 * fut__wait_until drains this thread's trampoline, lets the executor whose
 * work this thread runs help meanwhile (exec.h, help_wait: rule 7), spins
 * briefly, arms once and parks.  When arming finds no memory it polls with
 * a growing nap instead: a wait never fails for want of memory.
 */
#ifndef FUT_CORE_WAIT_H
#define FUT_CORE_WAIT_H

#include "core/exec.h"
#include "util/park.h"

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

/* After fork(): asks the executors that hold the futures (or their
 * inputs) to reap, so that the wait ends (exec.h, reap).  A no-op in a
 * process that never forked with a live pool. */
void fut__wait_reap(fut_t *const *fs, size_t n);

/* Sleeps a growing backoff, at most until deadline. */
void fut__nap(int64_t *nap, int64_t deadline);

#endif /* FUT_CORE_WAIT_H */

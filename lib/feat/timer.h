/*
 * timer.h - timers: fut_delay and fut_within (private; feature layer).
 */
#ifndef FUT_FEAT_TIMER_H
#define FUT_FEAT_TIMER_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__timer_kind;

/* A timer future settled at its deadline on ex (NULL: on the timer thread;
 * a reference is taken), or, with input (consumed), as input settles if
 * it does first.  Never NULL. */
fut_t *fut__timer_new(fut_executor_t *ex, int64_t ns, fut_t *input);

#endif /* FUT_FEAT_TIMER_H */

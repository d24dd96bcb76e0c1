/*
 * timer.h - timers: fut_delay and fut_within (private; feature layer).
 */
#ifndef FUT_FEAT_TIMER_H
#define FUT_FEAT_TIMER_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__timer_kind;

#endif /* FUT_FEAT_TIMER_H */

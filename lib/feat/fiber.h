/*
 * fiber.h - fibers: fut_async, fut_await, fut_yield (private; feature
 * layer).  The design is at the top of fiber.c.
 */
#ifndef FUT_FEAT_FIBER_H
#define FUT_FEAT_FIBER_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__fiber_kind;

#endif /* FUT_FEAT_FIBER_H */

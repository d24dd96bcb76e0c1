/*
 * fiber.h - fibers: fut_async, fut_await, fut_yield (private; feature
 * layer).  The design is at the top of fiber.c.
 */
#ifndef FUT_FEAT_FIBER_H
#define FUT_FEAT_FIBER_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__fiber_kind;

/* True if f is a fiber whose run has let it go: it suspended, and the
 * run's reference went with it (fut__run_done), though the run has not
 * returned yet.  For a fork child's reap, which must not drop that
 * reference for the worker. */
bool fut__fiber_let_go(fut_t *f);

/* True if f is a fiber woken again after it suspended (not a new one), so
 * that a fiber about to suspend may switch straight to it (take_resume in
 * core/exec.h). */
bool fut__fiber_resumable(fut_t *f);

#endif /* FUT_FEAT_FIBER_H */

/*
 * fence.h - a lopsided StoreLoad fence (private; util layer).
 *
 * The pool's wakeup is Dekker's pattern: a submitter stores a task, then
 * loads the count of parked workers; a worker about to park raises that
 * count, then looks for a task once more.  At least one of the two must see
 * the other's store, which takes a StoreLoad fence on both sides.  The
 * submitter runs it once per task and the worker once per park, so the
 * cost can be moved: with membarrier(2) (Linux 4.14, private expedited),
 * the worker's side makes every running thread of the process execute a
 * full barrier, and the submitter's side is only a compiler barrier.
 * Measured: the submitter's seq_cst store of the task (an xchg, which waits
 * for the cache line that idle workers keep reading) cost W6 7% at the p50
 * and W3 with 8 workers a fifth.
 *
 * The lopsided mode is on once membarrier is registered for the process
 * (fut__fence_init, again in a fork() child, whose registration is new).
 * Without it the light side is a seq_cst operation and the heavy side a
 * seq_cst fence.  Callers ask fut__fence_lopsided() which light side to
 * use.
 */
#ifndef FUT_UTIL_FENCE_H
#define FUT_UTIL_FENCE_H

#include <stdatomic.h>
#include <stdbool.h>

extern _Atomic bool fut__fence_on;

/* Registers membarrier once per process (any thread; cheap after). */
void fut__fence_init(void);

/* True if the light side may be a compiler barrier. */
static inline bool fut__fence_lopsided(void)
{
    return atomic_load_explicit(&fut__fence_on, memory_order_relaxed);
}

/* The heavy side.  False if it could not be made (membarrier failed after
 * it had worked): the caller may then have missed a light-side store and
 * should not wait without a timeout. */
bool fut__fence_heavy(void);

#endif /* FUT_UTIL_FENCE_H */

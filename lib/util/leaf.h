/*
 * leaf.h - a global lock that survives fork() (private; util layer).
 *
 * A process-wide lock (not one per object) that a fork child could inherit
 * held by a thread the child does not have: the child's first use would
 * wait for ever.  A leaf lock is held across fork() by one set of fork
 * handlers for all of them, and the child starts with each free.
 *
 * Leaf: nothing is taken while one is held, no other lock and no
 * allocation (an allocator has locks of its own), and no user code runs
 * under it.  That is what makes one prepare handler that takes them all
 * safe whatever the order of the other fork handlers: a thread that holds
 * a leaf waits for nothing, so the prepare handler always gets it.  A lock
 * with anything under it needs fork handlers ordered with that thing's.
 *
 * The first take of a leaf registers it (at most FUT__LEAVES in the
 * process); later takes cost one load more than util/lock.h's.
 */
#ifndef FUT_UTIL_LEAF_H
#define FUT_UTIL_LEAF_H

#include "util/lock.h"

#include <stdatomic.h>
#include <stdbool.h>

enum { FUT__LEAVES = 24 }; /* 19 in use: 16 side-table shards and 3 more */

typedef struct fut__leaf {
    fut__lock_t lock;
    _Atomic bool registered; /* listed for the fork handlers */
} fut__leaf_t;

#define FUT__LEAF_INIT                                                         \
    {                                                                          \
        FUT__LOCK_INIT, false                                                  \
    }

/* Lists l for the fork handlers (installing them the first time). */
void fut__leaf_register(fut__leaf_t *l);

static inline void fut__leaf_lock(fut__leaf_t *l)
{
    if (!atomic_load_explicit(&l->registered, memory_order_acquire))
        fut__leaf_register(l);
    fut__lock(&l->lock);
}

static inline void fut__leaf_unlock(fut__leaf_t *l)
{
    fut__unlock(&l->lock);
}

#endif /* FUT_UTIL_LEAF_H */

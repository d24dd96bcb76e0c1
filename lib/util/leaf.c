/*
 * leaf.c - the fork handlers of the leaf locks (leaf.h).
 *
 * Prepare takes the registry's mutex (no registration meanwhile), then
 * every leaf in the order listed; the parent gives them back in reverse;
 * the child, whose only thread is the one that forked, starts each afresh.
 * The handlers are installed before the registry's mutex is first taken,
 * never under it: pthread_atfork may wait for a fork in progress, whose
 * prepare handler would wait for that mutex.
 */
#include "util/leaf.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;
static fut__leaf_t *leaves[FUT__LEAVES];
static size_t nleaves;
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&registry);
    for (size_t i = 0; i < nleaves; i++)
        fut__lock(&leaves[i]->lock);
}

static void fork_parent(void)
{
    for (size_t i = nleaves; i-- > 0;)
        fut__unlock(&leaves[i]->lock);
    pthread_mutex_unlock(&registry);
}

static void fork_child(void)
{
    for (size_t i = 0; i < nleaves; i++)
        fut__lock_init(&leaves[i]->lock);
    pthread_mutex_init(&registry, NULL);
}

static void install_handlers(void)
{
    if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
        abort(); /* ENOMEM at the first take of a lock: nothing to fall
                    back on that keeps a fork child safe */
}

void fut__leaf_register(fut__leaf_t *l)
{
    pthread_once(&handlers_once, install_handlers);
    pthread_mutex_lock(&registry);
    if (!atomic_load_explicit(&l->registered, memory_order_relaxed)) {
        if (nleaves == FUT__LEAVES)
            abort(); /* a private constant too small: a bug of fut's */
        leaves[nleaves++] = l;
        atomic_store_explicit(&l->registered, true, memory_order_release);
    }
    pthread_mutex_unlock(&registry);
}

/*
 * pool_fork.c - the registry of live pools, and the fork handlers.
 *
 * Every live pool is registered so that fork handlers can lock them around
 * fork() and mark them forked in the child.  Order: registry lock, then
 * each pool's lock and its queue's.  The deques are lock-free, hence
 * consistent in the child at any instant; the queue's crossings between
 * blocks are whole because its lock is held across fork(), and the holes
 * of submitters stopped inside a push are stepped over by the child's
 * drain (util/segq.h, Fork).
 */
#include "exec/pool.h"

typedef fut__pool_t pool_t;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pool_t *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    for (pool_t *p = registry; p; p = p->reg_next) {
        pthread_mutex_lock(&p->lock);
        fut__segq_lock(&p->queue);
    }
}

static void fork_parent(void)
{
    for (pool_t *p = registry; p; p = p->reg_next) {
        fut__segq_unlock(&p->queue);
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
    /* The child's only thread is the one that forked and holds every lock
     * taken in prepare; the workers are gone, so start the locks afresh. */
    for (pool_t *p = registry; p; p = p->reg_next) {
        pthread_mutex_init(&p->lock, NULL);
        fut__segq_reinit_lock(&p->queue);
        pthread_mutex_init(&p->join_lock, NULL);
        pthread_cond_init(&p->not_full, NULL);
        atomic_store(&p->forked, true);
        atomic_store(&fut__exec_orphaned, true);
        atomic_store(&p->shutdown, true);
        atomic_store(&p->closed, true);
        atomic_store(&p->admit,
                     atomic_load(&p->admit) & ~(uint64_t)FUT__ADMIT_INFLIGHT);
        atomic_store(&p->nidle, 0);
        atomic_store(&p->watching, false);
        atomic_store(&p->blocked_submitters, 0);
        p->alive = 0;
        p->awake = 0;
        p->idle = NULL;
        p->joined = true; /* nothing to join here */
        for (size_t i = 0; i < p->nthreads; i++) {
            p->workers[i].idle = false;
            p->workers[i].watching = false;
            p->workers[i].live = false;
        }
        pthread_cond_init(&p->exited, NULL);
        atomic_store(&p->blocked, 0);
        p->retiring = 0;
    }
    pthread_mutex_init(&registry_lock, NULL);
}

static void atfork_install(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void fut__pool_register(pool_t *p)
{
    pthread_once(&atfork_once, atfork_install);
    pthread_mutex_lock(&registry_lock);
    p->reg_prev = NULL;
    p->reg_next = registry;
    if (registry)
        registry->reg_prev = p;
    registry = p;
    pthread_mutex_unlock(&registry_lock);
}

void fut__pool_unregister(pool_t *p)
{
    pthread_mutex_lock(&registry_lock);
    if (p->reg_prev)
        p->reg_prev->reg_next = p->reg_next;
    else
        registry = p->reg_next;
    if (p->reg_next)
        p->reg_next->reg_prev = p->reg_prev;
    pthread_mutex_unlock(&registry_lock);
}

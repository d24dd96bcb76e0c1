/*
 * pool_elastic.c - extra threads for blocking calls.
 *
 * A task that declares a blocking call (FUT_BLOCKING, fut_blocking_begin)
 * counts in `blocked` until the call ends.  While fewer than the
 * configured number of workers would stay runnable (alive - blocked <
 * nbase), the worker entering the call starts an extra thread in a free
 * slot beyond the configured ones, up to max_threads.  Extra threads are
 * detached (freeing the pool waits for them by count, `exited`), hold a
 * reference of the pool each, and retire after keep_alive idle when more
 * than the configured number would stay runnable without them.  Idle
 * workers count as runnable, so a pool with an idle extra starts no other.
 *
 * Lock: `lock` guards alive, the slots' `live` flags and `spawned`;
 * pthread_create runs under it, which only delays other compensations and
 * the idle list for the moment a thread takes to start.
 */
#include "exec/pool.h"

#include <errno.h>

typedef fut__pool_t pool_t;
typedef fut__worker_t worker_t;

/* An extra worker idle for the keep-alive leaves if more than the
 * configured number of workers would stay runnable.  Lock not held; true
 * if it left the pool's count (the caller then exits). */
bool fut__pool_retire(worker_t *w)
{
    pool_t *p = w->pool;
    pthread_mutex_lock(&p->lock);
    size_t runnable = p->alive - p->retiring - atomic_load(&p->blocked);
    bool leave = runnable > p->nbase;
    if (leave)
        p->retiring++; /* counted alive until worker_exit has run */
    pthread_mutex_unlock(&p->lock);
    /* A submitter may have picked this worker to wake just as it timed
     * out: pass the wake on if work is waiting. */
    if (leave && fut__pool_queue_nonempty(p))
        fut__pool_wake_one(p);
    return leave;
}

/* Lock held.  Starts an extra worker in a free slot: 0, or EAGAIN when
 * every slot is taken or the thread could not start. */
static int spawn_extra(pool_t *p)
{
    size_t i = p->nbase;
    while (i < p->nthreads && p->workers[i].live)
        i++;
    if (i == p->nthreads)
        return EAGAIN;
    worker_t *w = &p->workers[i];
    w->live = true;
    w->extra = true;
    w->blocking = 0;
    w->depth = 0;
    p->alive++;
    fut__exec_retain(&p->base); /* the thread's reference */
    if (i + 1 > atomic_load_explicit(&p->used, memory_order_relaxed))
        atomic_store_explicit(&p->used, i + 1, memory_order_release);
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&w->thread, &attr, fut__pool_worker_main, w);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        w->live = false;
        p->alive--;
        fut__exec_release(&p->base); /* not the last: the caller's pool */
        return EAGAIN;
    }
    p->spawned++;
    return 0;
}

int fut__pool_blocking(fut_executor_t *ex, int delta)
{
    pool_t *p = (pool_t *)(void *)ex;
    worker_t *w = fut__pool_self(p);
    if (!w)
        return 0;
    if (delta < 0) {
        if (w->blocking > 0 && --w->blocking == 0)
            atomic_fetch_sub(&p->blocked, 1);
        return 0;
    }
    if (w->blocking++ > 0)
        return 0; /* nested: counted once */
    atomic_fetch_add(&p->blocked, 1);
    /* Keep `base` workers runnable: idle ones count, blocked ones not. */
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if (!atomic_load(&p->closed) && !atomic_load(&p->forked) &&
        p->alive - p->retiring - atomic_load(&p->blocked) < p->nbase &&
        p->alive < p->nthreads)
        rc = spawn_extra(p);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

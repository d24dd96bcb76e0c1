/*
 * pool.c - the thread-pool executor: creating a pool, submitting to it,
 * shutting it down, freeing it, its stats.  The queues and the workers are
 * in pool_worker.c, the fork registry in pool_fork.c (pool.h lists them).
 *
 * Shutdown.  Submitters announce themselves (the in-flight bits of
 * `admit`) before they check the flags and push; shutdown sets the flag,
 * waits for the submitters in flight to drain, and only then sets
 * `closed`, so no task can be pushed after the workers decide to exit
 * (they exit when closed and they find no work).
 *
 * Lifetime (core/exec.h).  The pool holds one reference per worker
 * thread, dropped as the thread exits, plus the user's.  fut_executor_free
 * shuts down, joins the workers (or, called from one of them, detaches
 * them) and drops the user's reference; the last reference frees the
 * memory, whoever drops it: the freeing thread, the last worker out, or a
 * continuation that still named the pool.
 *
 * Lock order.  `join_lock` serialises joining and is never taken with
 * `lock` held; the other locks are described in pool_worker.c.  The fork
 * registry lock comes before any pool's.
 *
 * Fork.  A pool inherited across fork() has no threads in the child: it is
 * marked forked and closed (pool_fork.c), answers ESHUTDOWN to submits,
 * rejects its queued tasks with ESHUTDOWN when shut down or freed, and is
 * freed without joining.
 */
#include "exec/pool.h"

#include "feat/fiber.h"

#include <errno.h>
#include <stdlib.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef fut__pool_t pool_t;
typedef fut__worker_t worker_t;

/* --- the executor interface ------------------------------------------- */

static bool is_own_worker(pool_t *p)
{
    return fut__pool_self(p) != NULL;
}

static uint64_t queued_now(pool_t *p)
{
    uint64_t out = atomic_load(&p->drained) + atomic_load(&p->zombies);
    size_t used = atomic_load(&p->used);
    for (size_t i = 0; i < used; i++)
        out += atomic_load(&p->workers[i].taken);
    uint64_t in = atomic_load(&p->admit) >> 16;
    for (size_t i = 0; i < used; i++)
        in += atomic_load(&p->workers[i].resumed);
    return in > out ? in - out : 0;
}

/* Bounded queue: waits while full (lock not held on entry or exit). */
static int wait_not_full(pool_t *p, unsigned flags)
{
    if (queued_now(p) < p->max_queued)
        return 0;
    if (flags & FUT_NOWAIT)
        return EAGAIN;
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->blocked_submitters, 1);
    while (queued_now(p) >= p->max_queued && !atomic_load(&p->shutdown))
        pthread_cond_wait(&p->not_full, &p->lock);
    atomic_fetch_sub(&p->blocked_submitters, 1);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static int refusal(pool_t *p)
{
    if (atomic_load(&p->forked))
        return ESHUTDOWN;
    int broken = atomic_load(&p->broken);
    if (broken)
        return broken;
    return atomic_load(&p->shutdown) ? ESHUTDOWN : 0;
}

static int pool_submit(fut_executor_t *ex, fut_t *f, unsigned flags)
{
    pool_t *p = (pool_t *)(void *)ex;
    fut__worker_t *self = fut__pool_self(p);
    if ((flags & FUT__SUBMIT_RESUME) && self && !refusal(p)) {
        /* A fiber woken on one of our workers: to that worker's next slot,
         * without the shared counter.  The worker is alive, so nothing can
         * close behind the push, and a resume is no new task (counted as
         * one resumed, for queued_now).  Two locked instructions on a line
         * every submitter writes, per message of the W8 ping-pong. */
        fut__pool_bump(&self->resumed);
        if (fut__pool_push(p, f, false) == 0)
            return 0;
        atomic_store_explicit(
            &self->resumed,
            atomic_load_explicit(&self->resumed, memory_order_relaxed) - 1,
            memory_order_relaxed);
        return ENOMEM;
    }
    bool own = self != NULL;
    if (p->max_queued && !own) {
        int rc = refusal(p);
        if (!rc)
            rc = wait_not_full(p, flags);
        if (rc)
            return rc;
    }
    /* Announce: in flight, and counted as accepted. */
    atomic_fetch_add_explicit(&p->admit, FUT__ADMIT_ONE + 1,
                              memory_order_seq_cst);
    int rc = refusal(p);
    if (rc) {
        atomic_fetch_sub_explicit(&p->admit, FUT__ADMIT_ONE + 1,
                                  memory_order_release);
        return rc;
    }
    if (flags & FUT__SUBMIT_RESUME) /* accepted, but no new task */
        atomic_fetch_add_explicit(&p->resumed, 1, memory_order_relaxed);
    /* Push and wake before leaving: once no submitter is in flight,
     * shutdown may finish and the pool's threads exit. */
    if (fut__pool_push(p, f, (flags & FUT__SUBMIT_BACK) != 0) != 0) {
        if (flags & FUT__SUBMIT_RESUME)
            atomic_fetch_sub_explicit(&p->resumed, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&p->admit, FUT__ADMIT_ONE + 1,
                                  memory_order_release);
        return ENOMEM;
    }
    atomic_fetch_sub_explicit(&p->admit, 1, memory_order_release);
    return 0;
}

static void join_all(pool_t *p)
{
    pthread_mutex_lock(&p->join_lock);
    if (!p->joined) {
        /* The configured workers are joined; extra ones are detached, and
         * waited for by their count. */
        for (size_t i = 0; i < p->nbase; i++)
            if (p->workers[i].started)
                pthread_join(p->workers[i].thread, NULL);
        pthread_mutex_lock(&p->lock);
        while (p->alive > 0)
            pthread_cond_wait(&p->exited, &p->lock);
        pthread_mutex_unlock(&p->lock);
        p->joined = true;
    }
    pthread_mutex_unlock(&p->join_lock);
}

static const char forked_message[] = "thread pool inherited across fork()";

/* A forked child's view of a running task whose worker is gone. */
static void reap_running(fut_t *f)
{
    if (fut__fiber_let_go(f))
        return; /* suspended: its reference is its wake's, not the worker's */
    uint32_t s = fut__load(f);
    unsigned st = s & (FUT__STATE_MASK | FUT__CLAIMED);
    if (st == FUT_PENDING)
        fut__reject_unstarted(f, ESHUTDOWN, forked_message); /* taken, not
                                                                started */
    else if (st == FUT_RUNNING && !(s & FUT__ADOPTING))
        fut__fail_static(f, ESHUTDOWN, forked_message);
    else if (fut__is_settled(s) && !fut__cbs_closed(f))
        /* The worker had settled it and not yet closed its callbacks: do
         * it here, or the last release would find them open (seen with a
         * waiter that returned on the settled state and let go). */
        fut__dispatch(f);
    /* Settled, or following another future: nothing more to do. */
    fut_release(f); /* the worker's reference */
}

/* In a fork() child: settles what the pool held when the parent forked,
 * queued or running, with ESHUTDOWN.  The worker threads are gone, so
 * their `running` entries are frozen: each names a task the worker had
 * taken and not yet released (it clears the entry before releasing). */
static void pool_reap(fut_executor_t *ex)
{
    pool_t *p = (pool_t *)(void *)ex;
    if (!atomic_load(&p->forked) || atomic_exchange(&p->reaped, true))
        return;
    fut__pool_drain(p, ESHUTDOWN, forked_message);
    for (size_t i = 0; i < p->nthreads; i++) {
        for (int d = 0; d <= FUT__HELP_DEPTH_MAX; d++) {
            fut_t *f = p->workers[i].running[d];
            p->workers[i].running[d] = NULL;
            if (f)
                reap_running(f);
        }
    }
}

static int pool_shutdown(fut_executor_t *ex, unsigned flags)
{
    pool_t *p = (pool_t *)(void *)ex;
    atomic_store(&p->shutdown, true);
    while (atomic_load(&p->admit) & FUT__ADMIT_INFLIGHT)
        sched_yield(); /* a submitter between its check and its push */
    atomic_store(&p->closed, true);
    bool forked = atomic_load(&p->forked);
    if (forked)
        pool_reap(ex);
    else if (flags & FUT_SHUTDOWN_CANCEL_PENDING)
        fut__pool_drain(p, ECANCELED, NULL);
    fut__pool_wake_all(p);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->not_full);
    pthread_mutex_unlock(&p->lock);
    if (forked)
        return ESHUTDOWN;
    if (flags & FUT_SHUTDOWN_WAIT) {
        if (is_own_worker(p))
            return EDEADLK;
        join_all(p);
    }
    return 0;
}

/* The pool and its workers are cache-line aligned; the allocator promises
 * only malloc's alignment, so ask for a line more and keep the address it
 * gave in the word before the aligned block.  fut's own pools, which live
 * as long as the process, take their memory from malloc, not from the
 * installed allocator, which could not get it back. */
static void *alloc_aligned(size_t size, bool internal)
{
    size_t bytes = size + 64 + sizeof(void *);
    char *raw = internal ? malloc(bytes) : fut__alloc(bytes);
    if (!raw)
        return NULL;
    uintptr_t at = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    memcpy((char *)at - sizeof raw, &raw, sizeof raw);
    return (void *)at;
}

static void free_aligned(void *p, size_t size, bool internal)
{
    char *raw;
    memcpy(&raw, (char *)p - sizeof raw, sizeof raw);
    if (internal)
        free(raw);
    else
        fut__free(raw, size + 64 + sizeof(void *));
}

/* The last reference went: every thread is gone (joined, or detached and
 * past its last touch of the pool). */
static void pool_destroy(fut_executor_t *ex)
{
    pool_t *p = (pool_t *)(void *)ex;
    fut__pool_unregister(p);
    if (fut__segq_long(&p->queue)) /* a fork child's reap may leave it */
        atomic_fetch_sub(&fut__exec_backlogged, 1);
    fut__segq_destroy(&p->queue);
    for (size_t i = 0; i < p->nthreads; i++)
        fut__parker_release(p->workers[i].parker);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->join_lock);
    pthread_cond_destroy(&p->not_full);
    pthread_cond_destroy(&p->exited);
    bool internal = p->flush_idle;
    free_aligned(p->workers, p->nthreads * sizeof *p->workers, internal);
    free_aligned(p, sizeof *p, internal);
    /* Its workers' caches went to the depot as they exited: what a burst
     * on this pool left free goes back to malloc (fut_trim). */
    fut__alloc_trim();
}

/* fut_executor_free: shut down and wait; from one of its own workers,
 * which cannot join itself, detach the threads instead (the last one out
 * drops the last reference of the threads). */
static void pool_close(fut_executor_t *ex)
{
    pool_t *p = (pool_t *)(void *)ex;
    if (pool_shutdown(ex, FUT_SHUTDOWN_WAIT) != EDEADLK)
        return;
    pthread_mutex_lock(&p->join_lock);
    if (!p->joined) {
        for (size_t i = 0; i < p->nbase; i++)
            if (p->workers[i].started)
                pthread_detach(p->workers[i].thread);
        p->joined = true;
    }
    pthread_mutex_unlock(&p->join_lock);
}

static void pool_cancelled(fut_executor_t *ex)
{
    pool_t *p = (pool_t *)(void *)ex;
    atomic_fetch_add(&p->zombies, 1);
    atomic_fetch_add(&p->cancelled, 1);
    if (p->max_queued)
        fut__pool_signal_not_full(p); /* a slot is free again */
}

static int pool_stats(fut_executor_t *ex, fut_stats_t *out)
{
    pool_t *p = (pool_t *)(void *)ex;
    pthread_mutex_lock(&p->lock);
    out->threads = p->alive;
    out->spawned = p->spawned;
    pthread_mutex_unlock(&p->lock);
    out->blocked = atomic_load(&p->blocked);
    out->idle = atomic_load(&p->nidle);
    out->queued = (size_t)queued_now(p);
    out->submitted = (atomic_load(&p->admit) >> 16) - atomic_load(&p->resumed);
    size_t used = atomic_load(&p->used);
    for (size_t i = 0; i < used; i++)
        out->completed += atomic_load(&p->workers[i].completed);
    out->cancelled = atomic_load(&p->cancelled);
    out->broken = atomic_load(&p->broken);
    out->shutdown = atomic_load(&p->shutdown) || atomic_load(&p->forked);
    return 0;
}

static const fut__executor_ops_t pool_ops = {
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .close = pool_close,
    .destroy = pool_destroy,
    .stats = pool_stats,
    .cancelled = pool_cancelled,
    .help_wait = fut__pool_help_wait,
    .reap = pool_reap,
    .blocking = fut__pool_blocking,
    .take_resume = fut__pool_take_resume,
};

/* --- creation --------------------------------------------------------- */

/* A pool's memory with n worker slots (`base` of them for the configured
 * workers), every field set up but no thread started; NULL on ENOMEM, with
 * everything it had made undone. */
static pool_t *pool_alloc(size_t n, size_t base, const fut_pool_config_t *cfg,
                          bool internal)
{
    pool_t *p = alloc_aligned(sizeof *p, internal);
    worker_t *ws = p ? alloc_aligned(n * sizeof *ws, internal) : NULL;
    bool queue = false;
    if (ws) {
        memset(p, 0, sizeof *p);
        memset(ws, 0, n * sizeof *ws);
        queue = fut__segq_init(&p->queue, internal) == 0;
    }
    size_t made = 0;
    while (queue && made < n && (ws[made].parker = fut__parker_new()) != NULL)
        made++;
    if (made < n) {
        for (size_t i = 0; i < made; i++)
            fut__parker_release(ws[i].parker);
        if (queue)
            fut__segq_destroy(&p->queue);
        if (ws)
            free_aligned(ws, n * sizeof *ws, internal);
        if (p)
            free_aligned(p, sizeof *p, internal);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        fut__deque_init(&ws[i].deque);
        ws[i].pool = p;
        ws[i].index = i;
        ws[i].rng = (unsigned)i * 2654435761u + 1;
    }
    /* The user's reference and one per configured worker thread (extra
     * ones take theirs as they start). */
    fut__exec_init(&p->base, &pool_ops, (uint32_t)(1 + base));
    p->workers = ws;
    p->nthreads = n;
    p->nbase = base;
    atomic_init(&p->used, base);
    p->keep_alive = cfg->keep_alive > 0 ? cfg->keep_alive : FUT_S(10);
    p->base.fiber_stack = cfg->fiber_stack;
    p->max_queued = cfg->max_queued;
    p->init = cfg->worker_init;
    p->exit_fn = cfg->worker_exit;
    p->arg = cfg->worker_arg;
    snprintf(p->name, sizeof p->name, "%s", cfg->name ? cfg->name : "fut");
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->join_lock, NULL);
    pthread_cond_init(&p->not_full, NULL);
    pthread_cond_init(&p->exited, NULL);
    return p;
}

int fut_pool_new(const fut_pool_config_t *cfg, fut_executor_t **out)
{
    return fut__pool_new(cfg, false, out);
}

int fut__pool_new(const fut_pool_config_t *cfg, bool flush_idle,
                  fut_executor_t **out)
{
    if (!out)
        return EINVAL;
    *out = NULL;
    fut_pool_config_t defaults = {0};
    if (!cfg)
        cfg = &defaults;
    size_t n = cfg->threads;
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (size_t)cpus : 1;
    }
    if (n > FUT__POOL_THREADS_MAX)
        return EINVAL;
    size_t max = cfg->max_threads ? cfg->max_threads : n + 64;
    if (max < n)
        max = n;
    if (max > FUT__POOL_THREADS_MAX)
        max = FUT__POOL_THREADS_MAX;
    pool_t *p = pool_alloc(max, n, cfg, flush_idle);
    if (!p)
        return ENOMEM;
    p->flush_idle = flush_idle;
    fut__pool_register(p);
    p->alive = n;
    for (size_t i = 0; i < n; i++) {
        worker_t *w = &p->workers[i];
        if (pthread_create(&w->thread, NULL, fut__pool_worker_main, w) != 0) {
            /* The threads never started drop their references; the
             * others see the shutdown and exit, and freeing joins them. */
            pthread_mutex_lock(&p->lock);
            p->alive -= n - i;
            pthread_mutex_unlock(&p->lock);
            for (size_t k = i; k < n; k++)
                fut__exec_release(&p->base);
            fut_executor_free(&p->base);
            return EAGAIN;
        }
        w->started = true;
    }
    *out = &p->base;
    return 0;
}

int fut_pool_worker_index(void)
{
    fut_executor_t *ex = fut__exec_current();
    if (!ex || ex->ops != &pool_ops)
        return -1;
    fut__worker_t *w = fut__pool_self((pool_t *)(void *)ex);
    return w ? (int)w->index : -1;
}

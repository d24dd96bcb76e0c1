/*
 * pool.c - the thread-pool executor.
 *
 * Design.  Outside submitters append task futures to one FIFO injection
 * queue, linked through the futures' own `next` field (no allocation per
 * task).  Workers pop from it and run the task.  An idle worker registers in
 * the idle list and parks on its own parker; a submit wakes one idle worker
 * only when the idle list is not empty, so a busy pool makes no syscall per
 * task.  (A work-stealing scheduler replaces the single queue behind the
 * same executor interface; see the performance issue.)
 *
 * Lock order.  One lock per pool, `lock`, guards the queue, the idle list,
 * the flags and the counters.  No user code runs under it, and no other lock
 * of fut is taken while it is held.  `join_lock` serialises joining and is
 * never taken with `lock` held.  The fork registry lock (fork handler) is
 * taken before any pool lock.
 *
 * Invariants.  A queued future is PENDING or was cancelled while queued; the
 * queue owns one reference to it.  A worker is in the idle list exactly when
 * w->idle is set, and only the thread that clears w->idle (under the lock)
 * unparks it on that account.  Worker loops start each iteration with the
 * lock held.
 *
 * Waiting inside a task (rule 7).  A worker that waits on a future runs the
 * pool's queued tasks meanwhile; when there are none it parks both as an
 * idle worker (so a submit wakes it) and on the future (a wake callback), so
 * whichever comes first resumes it.  Nested helping is limited in depth;
 * past the limit the worker simply blocks.
 *
 * Fork.  A pool inherited across fork() has no threads in the child: it is
 * marked forked, answers ESHUTDOWN to submits, rejects its queued tasks
 * with ESHUTDOWN when shut down or freed, and is freed without joining.
 */
#include "executor.h"
#include "park.h"
#include "wait.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { HELP_DEPTH_MAX = 64, NAME_MAX_BYTES = 15 };

typedef struct pool pool_t;

static void pool_register(pool_t *p);
static void pool_unregister(pool_t *p);

typedef struct worker {
    struct pool *pool;
    pthread_t thread;
    size_t index;
    fut__parker_t *parker; /* the pool holds a reference, the thread another */
    struct worker *idle_next;
    bool idle;
    bool started;
    int depth; /* nested help-while-wait levels */
} worker_t;

struct pool {
    fut_executor_t base;
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    fut_t *head, *tail;
    size_t queued;  /* in the queue, including the cancelled ones below */
    size_t zombies; /* cancelled while queued, not yet taken out */
    worker_t *idle;
    size_t nidle;
    size_t nthreads, alive;
    worker_t *workers;
    size_t max_queued;
    size_t blocked_submitters;
    int (*init)(void *);
    void (*exit_fn)(void *);
    void *arg;
    int broken;
    bool shutdown, joined, self_free, forked;
    uint64_t submitted, completed, cancelled;
    pthread_mutex_t join_lock;
    char name[NAME_MAX_BYTES + 1]; /* the prefix, as much as can show */
    struct pool *reg_prev, *reg_next; /* fork registry (pool.h) */
};

static _Thread_local worker_t *self_worker;

/* --- queue and idle list (lock held) ---------------------------------- */

/* Tasks waiting to start.  Zombies are cancelled tasks still linked in the
 * queue; a detached queue (queue_take) keeps them counted until
 * reject_all meets them, hence the guard. */
static size_t live_queued(const pool_t *p)
{
    return p->queued > p->zombies ? p->queued - p->zombies : 0;
}

static void queue_push(pool_t *p, fut_t *f)
{
    f->next = NULL;
    if (p->tail)
        p->tail->next = f;
    else
        p->head = f;
    p->tail = f;
    p->queued++;
}

static fut_t *queue_pop(pool_t *p)
{
    fut_t *f = p->head;
    if (!f)
        return NULL;
    p->head = f->next;
    if (!p->head)
        p->tail = NULL;
    f->next = NULL;
    p->queued--;
    if (p->blocked_submitters)
        pthread_cond_signal(&p->not_full);
    return f;
}

/* Detaches the whole queue; the caller settles each future outside the
 * lock. */
static fut_t *queue_take(pool_t *p)
{
    fut_t *f = p->head;
    p->head = p->tail = NULL;
    p->queued = 0;
    pthread_cond_broadcast(&p->not_full);
    return f;
}

static void idle_push(pool_t *p, worker_t *w)
{
    w->idle = true;
    w->idle_next = p->idle;
    p->idle = w;
    p->nidle++;
}

static void idle_remove(pool_t *p, worker_t *w)
{
    if (!w->idle)
        return;
    for (worker_t **pp = &p->idle; *pp; pp = &(*pp)->idle_next) {
        if (*pp == w) {
            *pp = w->idle_next;
            break;
        }
    }
    w->idle = false;
    p->nidle--;
}

static worker_t *idle_pop(pool_t *p)
{
    worker_t *w = p->idle;
    if (w) {
        p->idle = w->idle_next;
        w->idle = false;
        p->nidle--;
    }
    return w;
}

/* Takes every idle worker off the list; returns them chained. */
static worker_t *idle_take_all(pool_t *p)
{
    worker_t *all = p->idle;
    for (worker_t *w = all; w; w = w->idle_next)
        w->idle = false;
    p->idle = NULL;
    p->nidle = 0;
    return all;
}

static void unpark_all(worker_t *chain)
{
    while (chain) {
        worker_t *next = chain->idle_next;
        fut__parker_unpark(chain->parker);
        chain = next;
    }
}

/* Takes a future out of the queue's books once it is out of the queue:
 * a task that did not run was cancelled while queued, either counted then
 * (FUT__CANCEL_TOLD: it leaves the zombies) or not (a continuation). */
static void account_unrun(pool_t *p, fut_t *f)
{
    if (fut__load(f) & FUT__CANCEL_TOLD)
        p->zombies--;
    else
        p->cancelled++;
}

/* Settles every future of a detached queue with code and drops the
 * queue's references. */
static void reject_all(pool_t *p, fut_t *f, int code, const char *message)
{
    while (f) {
        fut_t *next = f->next;
        f->next = NULL;
        bool settled = fut__reject_unstarted(f, code, message);
        pthread_mutex_lock(&p->lock);
        if (settled)
            p->cancelled++;
        else
            account_unrun(p, f);
        pthread_mutex_unlock(&p->lock);
        fut_release(f);
        f = next;
    }
}

/* --- running ---------------------------------------------------------- */

static void run_one(pool_t *p, fut_t *f)
{
    bool ran = fut__task_run(f);
    pthread_mutex_lock(&p->lock);
    if (ran)
        p->completed++;
    else
        account_unrun(p, f);
    pthread_mutex_unlock(&p->lock);
    fut_release(f);
}

static void break_pool(pool_t *p, int code)
{
    pthread_mutex_lock(&p->lock);
    if (!p->broken)
        p->broken = code;
    fut_t *taken = queue_take(p);
    worker_t *idle = idle_take_all(p);
    pthread_mutex_unlock(&p->lock);
    unpark_all(idle);
    reject_all(p, taken, code,
               "thread pool broken: a worker initializer failed");
}

static void run_loop(worker_t *w)
{
    pool_t *p = w->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->broken)
            break;
        fut_t *f = queue_pop(p);
        if (f) {
            pthread_mutex_unlock(&p->lock);
            run_one(p, f);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        if (p->shutdown)
            break;
        idle_push(p, w);
        uint32_t seen = fut__parker_prepare(w->parker);
        pthread_mutex_unlock(&p->lock);
        fut__parker_park(w->parker, seen, -1);
        pthread_mutex_lock(&p->lock);
        idle_remove(p, w); /* a spurious wake leaves us listed */
    }
    pthread_mutex_unlock(&p->lock);
}

static void pool_free_memory(pool_t *p);

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    pool_t *p = w->pool;
    /* "<prefix>-<index>", cut to the 15 bytes a thread name can hold. */
    char name[64];
    snprintf(name, sizeof name, "%s-%zu", p->name, w->index);
    name[NAME_MAX_BYTES] = '\0';
    pthread_setname_np(pthread_self(), name);
    self_worker = w;
    fut__parker_adopt(w->parker);

    int rc = p->init ? p->init(p->arg) : 0;
    if (rc != 0) {
        break_pool(p, rc > 0 ? rc : EINVAL);
    } else {
        run_loop(w);
        if (p->exit_fn)
            p->exit_fn(p->arg);
    }
    fut__trampoline_flush();
    self_worker = NULL;
    pthread_mutex_lock(&p->lock);
    bool last = --p->alive == 0 && p->self_free;
    pthread_mutex_unlock(&p->lock);
    if (last)
        pool_free_memory(p);
    return NULL;
}

/* --- help while waiting (rule 7) -------------------------------------- */

static int help_wait(worker_t *w, fut__waiter_t *wt, int64_t deadline)
{
    pool_t *p = w->pool;
    bool armed = false, poll = false;
    int64_t nap = 1000;
    for (;;) {
        if (wt->ready(wt))
            return 0;
        if (fut__expired(deadline))
            return ETIMEDOUT;
        pthread_mutex_lock(&p->lock);
        fut_t *t = p->broken ? NULL : queue_pop(p);
        if (t) {
            pthread_mutex_unlock(&p->lock);
            w->depth++;
            run_one(p, t);
            w->depth--;
            continue;
        }
        if (!armed || poll) {
            pthread_mutex_unlock(&p->lock);
            if (poll) {
                fut__nap(&nap, deadline);
                continue;
            }
            int rc = wt->arm(wt, w->parker);
            if (rc == EALREADY)
                return 0;
            poll = rc == ENOMEM; /* no memory: poll instead of parking */
            armed = true;
            continue;
        }
        idle_push(p, w);
        uint32_t seen = fut__parker_prepare(w->parker);
        pthread_mutex_unlock(&p->lock);
        if (!wt->ready(wt))
            fut__parker_park(w->parker, seen, deadline);
        pthread_mutex_lock(&p->lock);
        idle_remove(p, w);
        pthread_mutex_unlock(&p->lock);
    }
}

bool fut__executor_help_wait(fut__waiter_t *wt, int64_t deadline, int *rc)
{
    worker_t *w = self_worker;
    if (!w || w->depth >= HELP_DEPTH_MAX)
        return false;
    pthread_mutex_lock(&w->pool->lock);
    bool forked = w->pool->forked;
    pthread_mutex_unlock(&w->pool->lock);
    if (forked)
        return false;
    *rc = help_wait(w, wt, deadline);
    return true;
}

/* --- the executor interface ------------------------------------------- */

static bool is_own_worker(pool_t *p)
{
    return self_worker && self_worker->pool == p;
}

static int pool_submit(fut_executor_t *ex, fut_t *f, unsigned flags)
{
    pool_t *p = (pool_t *)ex;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        int rc = p->forked ? ESHUTDOWN : p->broken ? p->broken
                                     : p->shutdown ? ESHUTDOWN
                                                   : 0;
        if (rc) {
            pthread_mutex_unlock(&p->lock);
            return rc;
        }
        if (!p->max_queued || live_queued(p) < p->max_queued ||
            is_own_worker(p))
            break;
        if (flags & FUT_NOWAIT) {
            pthread_mutex_unlock(&p->lock);
            return EAGAIN;
        }
        p->blocked_submitters++;
        pthread_cond_wait(&p->not_full, &p->lock);
        p->blocked_submitters--;
    }
    queue_push(p, f);
    p->submitted++;
    worker_t *w = idle_pop(p);
    pthread_mutex_unlock(&p->lock);
    if (w)
        fut__parker_unpark(w->parker);
    return 0;
}

static void join_all(pool_t *p)
{
    pthread_mutex_lock(&p->join_lock);
    if (!p->joined) {
        for (size_t i = 0; i < p->nthreads; i++)
            if (p->workers[i].started)
                pthread_join(p->workers[i].thread, NULL);
        p->joined = true;
    }
    pthread_mutex_unlock(&p->join_lock);
}

static int pool_shutdown(fut_executor_t *ex, unsigned flags)
{
    pool_t *p = (pool_t *)ex;
    pthread_mutex_lock(&p->lock);
    bool forked = p->forked;
    p->shutdown = true;
    fut_t *taken = NULL;
    if (forked || (flags & FUT_SHUTDOWN_CANCEL_PENDING))
        taken = queue_take(p);
    worker_t *idle = idle_take_all(p);
    pthread_cond_broadcast(&p->not_full);
    pthread_mutex_unlock(&p->lock);
    unpark_all(idle);
    if (forked)
        reject_all(p, taken, ESHUTDOWN, "thread pool inherited across fork()");
    else
        reject_all(p, taken, ECANCELED, NULL);
    if (forked)
        return ESHUTDOWN;
    if (flags & FUT_SHUTDOWN_WAIT) {
        if (is_own_worker(p))
            return EDEADLK;
        join_all(p);
    }
    return 0;
}

static void pool_free_memory(pool_t *p)
{
    pool_unregister(p);
    for (size_t i = 0; i < p->nthreads; i++)
        fut__parker_release(p->workers[i].parker);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->join_lock);
    pthread_cond_destroy(&p->not_full);
    fut__free(p->workers, p->nthreads * sizeof *p->workers);
    fut__free(p, sizeof *p);
}

static void pool_destroy(fut_executor_t *ex)
{
    pool_t *p = (pool_t *)ex;
    if (pool_shutdown(ex, FUT_SHUTDOWN_WAIT) == EDEADLK) {
        /* Freed from one of its own workers: it cannot join itself, so the
         * threads are detached and the last one out frees the pool. */
        pthread_mutex_lock(&p->join_lock);
        if (!p->joined) {
            for (size_t i = 0; i < p->nthreads; i++)
                if (p->workers[i].started)
                    pthread_detach(p->workers[i].thread);
            p->joined = true;
        }
        pthread_mutex_unlock(&p->join_lock);
        pthread_mutex_lock(&p->lock);
        p->self_free = true; /* this thread is alive, so alive >= 1 */
        pthread_mutex_unlock(&p->lock);
        return;
    }
    pool_free_memory(p);
}

static void pool_cancelled(fut_executor_t *ex)
{
    pool_t *p = (pool_t *)ex;
    pthread_mutex_lock(&p->lock);
    p->zombies++;
    p->cancelled++;
    if (p->blocked_submitters)
        pthread_cond_signal(&p->not_full); /* a slot is free again */
    pthread_mutex_unlock(&p->lock);
}

static int pool_stats(fut_executor_t *ex, fut_stats_t *out)
{
    pool_t *p = (pool_t *)ex;
    pthread_mutex_lock(&p->lock);
    out->threads = p->alive;
    out->idle = p->nidle;
    out->queued = live_queued(p);
    out->submitted = p->submitted;
    out->completed = p->completed;
    out->cancelled = p->cancelled;
    out->broken = p->broken;
    out->shutdown = p->shutdown || p->forked;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static const fut__executor_ops_t pool_ops = {
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .destroy = pool_destroy,
    .stats = pool_stats,
    .cancelled = pool_cancelled,
};

/* --- creation --------------------------------------------------------- */

int fut_pool_new(const fut_pool_config_t *cfg, fut_executor_t **out)
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
    if (n > 4096)
        return EINVAL;

    pool_t *p = fut__alloc(sizeof *p);
    if (!p)
        return ENOMEM;
    memset(p, 0, sizeof *p);
    p->workers = fut__alloc(n * sizeof *p->workers);
    if (!p->workers) {
        fut__free(p, sizeof *p);
        return ENOMEM;
    }
    memset(p->workers, 0, n * sizeof *p->workers);
    for (size_t i = 0; i < n; i++) {
        p->workers[i].parker = fut__parker_new();
        if (!p->workers[i].parker) {
            while (i-- > 0)
                fut__parker_release(p->workers[i].parker);
            fut__free(p->workers, n * sizeof *p->workers);
            fut__free(p, sizeof *p);
            return ENOMEM;
        }
        p->workers[i].pool = p;
        p->workers[i].index = i;
    }
    p->base.ops = &pool_ops;
    p->nthreads = n;
    p->max_queued = cfg->max_queued;
    p->init = cfg->worker_init;
    p->exit_fn = cfg->worker_exit;
    p->arg = cfg->worker_arg;
    snprintf(p->name, sizeof p->name, "%s", cfg->name ? cfg->name : "fut");
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->join_lock, NULL);
    pthread_cond_init(&p->not_full, NULL);
    pool_register(p);

    p->alive = n;
    for (size_t i = 0; i < n; i++) {
        worker_t *w = &p->workers[i];
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pthread_mutex_lock(&p->lock);
            p->alive -= n - i;
            pthread_mutex_unlock(&p->lock);
            pool_destroy(&p->base);
            return EAGAIN;
        }
        w->started = true;
    }
    *out = &p->base;
    return 0;
}

/* --- fork support ---------------------------------------------------- */

/* Every live pool is registered so that fork handlers can lock them before
 * fork() (the queue is then consistent in the child) and mark them forked
 * in the child.  Order: registry lock, then each pool's lock. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pool_t *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    for (pool_t *p = registry; p; p = p->reg_next)
        pthread_mutex_lock(&p->lock);
}

static void fork_parent(void)
{
    for (pool_t *p = registry; p; p = p->reg_next)
        pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void)
{
    /* The child's only thread is the one that forked and holds every lock
     * taken in prepare; the workers are gone, so start the locks afresh. */
    for (pool_t *p = registry; p; p = p->reg_next) {
        pthread_mutex_init(&p->lock, NULL);
        pthread_mutex_init(&p->join_lock, NULL);
        pthread_cond_init(&p->not_full, NULL);
        p->forked = true;
        p->alive = 0;
        p->idle = NULL;
        p->nidle = 0;
        p->blocked_submitters = 0;
        p->joined = true; /* nothing to join here */
        for (size_t i = 0; i < p->nthreads; i++)
            p->workers[i].idle = false;
    }
    pthread_mutex_init(&registry_lock, NULL);
}

static void atfork_install(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void pool_register(pool_t *p)
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

static void pool_unregister(pool_t *p)
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

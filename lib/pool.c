/*
 * pool.c - the thread-pool executor: work stealing, spin-then-park.
 *
 * Queues.  Each worker owns a bounded Chase-Lev deque (deque.h) for the
 * work it spawns itself: tasks submitted from inside tasks, continuations
 * handed to the pool by a settle on a worker; when it is full they go to
 * the shared queue instead.  The shared (injection) queue has two parts.
 * Outside submitters push onto a lock-free stack linked through the
 * futures' own `next` (no allocation per task).  Workers take from a FIFO
 * backlog under `inject_lock`; when the backlog is empty, the taker moves
 * the whole stack into it at once (one exchange) and reverses it.  The
 * backlog only ever holds tasks older than those on the stack, so tasks
 * leave in submission order.  A worker takes at most INJECT_BATCH at a
 * time: it runs the oldest and pushes the others on its deque, oldest at
 * the bottom, so it runs them in order and thieves take the newest.
 * Taking in bounded batches keeps every deque within its fixed ring, so
 * queue memory does not grow with a burst, and leaves the rest of a burst
 * in the shared queue for whichever worker is free.
 * A worker looking for work takes its own deque, then a batch from the
 * shared queue, then steals from the other workers' deques.
 *
 * Parking.  An idle worker spins briefly, then registers in the idle list
 * (nidle++), looks once more, and parks on its own parker.  A submitter
 * pushes, then reads nidle, and takes the idle lock and unparks one worker
 * only when nidle is not zero: a busy pool makes no syscall and takes no
 * lock per task.  No wakeup is lost: the push and the worker's nidle++ are
 * seq_cst operations, and so are the submitter's load of nidle and the
 * worker's second look, so at least one of the two sees the other.  A
 * worker that takes a batch wakes another idle worker, which steals.
 *
 * Shutdown.  Submitters announce themselves (the in-flight bits of
 * `admit`) before they check the flags and push; shutdown sets the flag,
 * waits for the submitters in flight to drain,
 * and only then sets `closed`, so no task can be pushed after the workers
 * decide to exit (they exit when closed and they find no work).
 *
 * Lock order.  `lock` guards the idle list, the flags' transitions and the
 * bounded-queue wait; `inject_lock` guards the backlog.  No user code runs
 * under either, and neither is taken while the other is held, except by
 * the fork handlers (lock, then inject_lock).  `join_lock` serialises joining
 * and is never taken with `lock` held.  The fork registry lock comes before any
 * pool's.
 *
 * Cache lines.  The pool's fields are grouped by writer, a line each:
 * measured, W1 went from 7-14 M to 30 M tasks/s when the workers stopped
 * reading the line every submit writes.
 *
 * Counters.  Each worker counts what it took out of the queues in its own
 * cache line (written by it alone); stats sum them.  A task cancelled while
 * queued stays in its queue, counted as a zombie (the executor is told at
 * once, see executor.h) until a worker takes it out.
 *
 * Waiting inside a task (rule 7).  A worker that waits on a future runs the
 * pool's work meanwhile; when there is none it parks both as an idle worker
 * (so a submit wakes it) and on the future (a wake callback).  Nested
 * helping is limited in depth; past the limit the worker simply blocks.
 *
 * Fork.  A pool inherited across fork() has no threads in the child: it is
 * marked forked and closed, answers ESHUTDOWN to submits, rejects its
 * queued tasks with ESHUTDOWN when shut down or freed, and is freed without
 * joining.
 */
#include "deque.h"
#include "executor.h"
#include "park.h"
#include "wait.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum {
    HELP_DEPTH_MAX = 64,
    NAME_MAX_BYTES = 15,
    SPIN_ROUNDS = 64,  /* looks for work before parking */
    STEAL_TRIES = 4,   /* retries of a steal that lost a race */
    INJECT_BATCH = 64, /* tasks a worker takes from the shared queue */
};
_Static_assert((int)INJECT_BATCH <= (int)FUT__DEQUE_CAPACITY,
               "a batch fits in an empty deque");

typedef struct pool pool_t;

static void pool_register(pool_t *p);
static void pool_unregister(pool_t *p);

typedef struct worker {
    fut__deque_t deque; /* first: its own cache lines */
    struct pool *pool;
    pthread_t thread;
    size_t index;
    fut__parker_t *parker; /* the pool holds a reference, the thread another */
    struct worker *idle_next;
    bool idle; /* in the idle list (lock held) */
    bool started;
    int depth; /* nested help-while-wait levels */
    unsigned rng;
    /* Written by this worker only, on a line of their own. */
    _Alignas(64) _Atomic uint64_t taken, completed;
} worker_t;

/* Fields are grouped by who writes them, one cache line per group, so
 * that the submit path and the workers do not bounce lines they only
 * read. */
#define LINE _Alignas(64)

struct pool {
    fut_executor_t base;
    /* Read-mostly: set at creation or on shutdown. */
    LINE _Atomic bool shutdown; /* no more submits */
    _Atomic bool closed;        /* shutdown and no submit in flight */
    _Atomic int broken;         /* a worker initializer's code */
    _Atomic bool forked;
    size_t nthreads;
    worker_t *workers;
    size_t max_queued;
    /* Written by every submit: submitters in flight (low 16 bits) and
     * tasks accepted (the rest), one RMW to enter, one to leave. */
    LINE _Atomic uint64_t admit;
    /* The injection stack: submitters push, workers take it whole. */
    LINE fut_t *_Atomic inject;
    /* The backlog, oldest first: workers take, under inject_lock (the
     * atomic lets a worker look without the lock). */
    LINE fut_t *_Atomic backlog;
    pthread_mutex_t inject_lock;
    /* Written by workers as they park and wake. */
    LINE _Atomic size_t nidle;
    /* Rare. */
    LINE _Atomic uint64_t cancelled, zombies, drained;
    _Atomic size_t blocked_submitters;
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    worker_t *idle;
    size_t alive;
    int (*init)(void *);
    void (*exit_fn)(void *);
    void *arg;
    bool joined, self_free;
    pthread_mutex_t join_lock;
    char name[NAME_MAX_BYTES + 1];    /* the prefix, as much as can show */
    struct pool *reg_prev, *reg_next; /* fork registry */
};

#define ADMIT_ONE ((uint64_t)1 << 16) /* one task accepted */
#define ADMIT_INFLIGHT 0xffffu

static _Thread_local worker_t *self_worker;

static void bump(_Atomic uint64_t *c)
{
    /* Single writer: a plain load and store, no locked instruction. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* --- the injection queue --------------------------------------------- */

static void inject_push(pool_t *p, fut_t *f)
{
    fut_t *head = atomic_load_explicit(&p->inject, memory_order_relaxed);
    do
        f->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &p->inject, &head, f, memory_order_seq_cst, memory_order_relaxed));
}

/* True if the shared queue may hold a task.  The seq_cst load of the stack
 * is the worker's half of the no-lost-wakeup argument (see Parking). */
static bool inject_nonempty(pool_t *p)
{
    return atomic_load_explicit(&p->backlog, memory_order_relaxed) ||
           atomic_load_explicit(&p->inject, memory_order_seq_cst);
}

/* Moves up to max of the oldest tasks in the shared queue into out[],
 * oldest first, and returns how many; 0 if there are none, or if another
 * worker is taking and !wait.  *more says whether tasks were left behind.
 *
 * A worker about to park looks with wait: it takes the lock, so either it
 * sees what an earlier taker left in the backlog, or that taker's critical
 * section comes after its own, hence after its nidle++, and the taker,
 * which reads nidle when it leaves work behind, wakes it. */
static size_t inject_take(pool_t *p, fut_t **out, size_t max, bool wait,
                          bool *more)
{
    *more = false;
    if (wait)
        pthread_mutex_lock(&p->inject_lock);
    else if (!inject_nonempty(p) || pthread_mutex_trylock(&p->inject_lock) != 0)
        return 0; /* a holder wakes a helper if it leaves work */
    fut_t *head = atomic_load_explicit(&p->backlog, memory_order_relaxed);
    if (!head) {
        /* Move the stack (newest first) into the backlog, reversed. */
        fut_t *s =
            atomic_exchange_explicit(&p->inject, NULL, memory_order_seq_cst);
        while (s) {
            fut_t *next = s->next;
            s->next = head;
            head = s;
            s = next;
        }
    }
    size_t n = 0;
    for (; n < max && head; n++) {
        out[n] = head;
        head = head->next;
        out[n]->next = NULL;
    }
    atomic_store_explicit(&p->backlog, head, memory_order_relaxed);
    pthread_mutex_unlock(&p->inject_lock);
    *more = inject_nonempty(p);
    return n;
}

/* --- the idle list (lock held unless said) ---------------------------- */

static void idle_push(pool_t *p, worker_t *w)
{
    w->idle = true;
    w->idle_next = p->idle;
    p->idle = w;
    atomic_fetch_add_explicit(&p->nidle, 1, memory_order_seq_cst);
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
    atomic_fetch_sub_explicit(&p->nidle, 1, memory_order_relaxed);
}

static worker_t *idle_pop(pool_t *p)
{
    worker_t *w = p->idle;
    if (w) {
        p->idle = w->idle_next;
        w->idle = false;
        atomic_fetch_sub_explicit(&p->nidle, 1, memory_order_relaxed);
    }
    return w;
}

/* Lock not held.  Wakes one parked worker, if any. */
static void wake_one(pool_t *p)
{
    if (atomic_load_explicit(&p->nidle, memory_order_seq_cst) == 0)
        return;
    pthread_mutex_lock(&p->lock);
    worker_t *w = idle_pop(p);
    pthread_mutex_unlock(&p->lock);
    if (w)
        fut__parker_unpark(w->parker);
}

/* Lock not held.  Wakes every parked worker. */
static void wake_all(pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    worker_t *all = p->idle;
    for (worker_t *w = all; w; w = w->idle_next)
        w->idle = false;
    p->idle = NULL;
    atomic_store(&p->nidle, 0);
    pthread_mutex_unlock(&p->lock);
    /* The workers stay allocated as long as the pool, and their parkers
     * hold references of the pool's: unparking after unlocking is safe. */
    while (all) {
        worker_t *next = all->idle_next;
        fut__parker_unpark(all->parker);
        all = next;
    }
}

/* --- finding work ----------------------------------------------------- */

static fut_t *steal_any(pool_t *p, worker_t *self)
{
    size_t n = p->nthreads;
    size_t start =
        self ? (self->rng = self->rng * 1103515245u + 12345u) % n : 0;
    for (size_t k = 0; k < n; k++) {
        worker_t *v = &p->workers[(start + k) % n];
        if (v == self)
            continue;
        for (int t = 0; t < STEAL_TRIES; t++) {
            fut_t *f = fut__deque_steal(&v->deque);
            if (f == FUT__DEQUE_EMPTY)
                break;
            if (f != FUT__DEQUE_ABORT)
                return f;
        }
    }
    return NULL;
}

/* The next task for worker w, or NULL.  wait: take the shared queue's
 * lock even if another worker holds it (the last look before parking). */
static fut_t *find_work(worker_t *w, bool wait)
{
    pool_t *p = w->pool;
    fut_t *f = fut__deque_take(&w->deque);
    if (f)
        return f;
    bool more;
    fut_t *batch[INJECT_BATCH];
    size_t n = inject_take(p, batch, INJECT_BATCH, wait, &more);
    if (n > 0) {
        /* Run the oldest now; push the others newest first, so that the
         * owner takes them oldest first.  The deque was empty and a batch
         * fits it, so every push succeeds. */
        for (size_t i = n - 1; i > 0; i--)
            FUT__ASSERT(fut__deque_push(&w->deque, batch[i]));
        if (more || n > 1)
            wake_one(p); /* let an idle worker steal or take the rest */
        return batch[0];
    }
    return steal_any(p, w);
}

/* --- running ---------------------------------------------------------- */

/* A task taken out of the queues that did not run had been cancelled while
 * queued: counted then (FUT__CANCEL_TOLD, a zombie until now) or not (a
 * continuation, cancelled before it was handed to us). */
static void account_unrun(pool_t *p, fut_t *f)
{
    if (fut__load(f) & FUT__CANCEL_TOLD)
        atomic_fetch_sub(&p->zombies, 1);
    else
        atomic_fetch_add(&p->cancelled, 1);
}

/* Settles a task taken out of the queues that will not run (broken pool,
 * shutdown) with code, and counts it. */
static void reject_queued(pool_t *p, fut_t *f, int code, const char *message)
{
    if (fut__reject_unstarted(f, code, message))
        atomic_fetch_add(&p->cancelled, 1);
    else
        account_unrun(p, f);
}

static void signal_not_full(pool_t *p)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&p->blocked_submitters)) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->not_full);
        pthread_mutex_unlock(&p->lock);
    }
}

static void run_one(worker_t *w, fut_t *f)
{
    pool_t *p = w->pool;
    bump(&w->taken);
    int broken = atomic_load_explicit(&p->broken, memory_order_relaxed);
    if (broken)
        reject_queued(p, f, broken,
                      "thread pool broken: a worker initializer failed");
    else if (fut__task_run(f)) {
        bump(&w->completed);
    } else {
        account_unrun(p, f);
    }
    fut_release(f);
    if (p->max_queued)
        signal_not_full(p);
}

/* Parks w until woken or deadline, unless work or an exit shows up after
 * it registered as idle.  ready (may be NULL) is a waiter whose condition
 * also ends the wait.  Returns a task found on the second look, or NULL. */
static fut_t *park(worker_t *w, fut__waiter_t *ready, int64_t deadline)
{
    pool_t *p = w->pool;
    pthread_mutex_lock(&p->lock);
    idle_push(p, w);
    uint32_t seen = fut__parker_prepare(w->parker);
    pthread_mutex_unlock(&p->lock);
    fut_t *f = find_work(w, true);
    if (!f && !atomic_load(&p->closed) && !(ready && ready->ready(ready)))
        fut__parker_park(w->parker, seen, deadline);
    pthread_mutex_lock(&p->lock);
    idle_remove(p, w); /* still listed unless a submitter woke us */
    pthread_mutex_unlock(&p->lock);
    return f;
}

static void run_loop(worker_t *w)
{
    pool_t *p = w->pool;
    for (;;) {
        fut_t *f = NULL;
        for (int spin = 0; spin < SPIN_ROUNDS && !f; spin++) {
            f = find_work(w, false);
            if (!f && spin >= SPIN_ROUNDS / 2)
                sched_yield();
        }
        if (!f) {
            if (atomic_load(&p->closed))
                return;
            f = park(w, NULL, -1);
        }
        if (f)
            run_one(w, f);
    }
}

static void break_pool(pool_t *p, int code)
{
    int none = 0;
    atomic_compare_exchange_strong(&p->broken, &none, code);
    /* Queued tasks are rejected by the workers as they take them (run_one);
     * wake them all so they do. */
    wake_all(p);
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
    if (rc != 0)
        break_pool(p, rc > 0 ? rc : EINVAL);
    run_loop(w); /* a broken pool's workers reject what they find */
    if (rc == 0 && p->exit_fn)
        p->exit_fn(p->arg);
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
    bool armed = false, poll = false;
    int64_t nap = 1000;
    for (;;) {
        if (wt->ready(wt))
            return 0;
        if (fut__expired(deadline))
            return ETIMEDOUT;
        fut_t *t = find_work(w, false);
        if (t) {
            w->depth++;
            run_one(w, t);
            w->depth--;
            continue;
        }
        if (!armed) {
            int rc = wt->arm(wt, w->parker);
            if (rc == EALREADY)
                return 0;
            poll = rc == ENOMEM; /* no memory: poll instead of parking */
            armed = true;
            continue;
        }
        if (poll) {
            fut__nap(&nap, deadline);
            continue;
        }
        t = park(w, wt, deadline);
        if (t) {
            w->depth++;
            run_one(w, t);
            w->depth--;
        }
    }
}

bool fut__executor_help_wait(fut__waiter_t *wt, int64_t deadline, int *rc)
{
    worker_t *w = self_worker;
    if (!w || w->depth >= HELP_DEPTH_MAX || atomic_load(&w->pool->forked))
        return false;
    *rc = help_wait(w, wt, deadline);
    return true;
}

/* --- the executor interface ------------------------------------------- */

static bool is_own_worker(pool_t *p)
{
    return self_worker && self_worker->pool == p;
}

static uint64_t queued_now(pool_t *p)
{
    uint64_t out = atomic_load(&p->drained) + atomic_load(&p->zombies);
    for (size_t i = 0; i < p->nthreads; i++)
        out += atomic_load(&p->workers[i].taken);
    uint64_t in = atomic_load(&p->admit) >> 16;
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
    pool_t *p = (pool_t *)ex;
    bool own = is_own_worker(p);
    if (p->max_queued && !own) {
        int rc = refusal(p);
        if (!rc)
            rc = wait_not_full(p, flags);
        if (rc)
            return rc;
    }
    /* Announce: in flight, and counted as accepted. */
    atomic_fetch_add_explicit(&p->admit, ADMIT_ONE + 1, memory_order_seq_cst);
    int rc = refusal(p);
    if (rc) {
        atomic_fetch_sub_explicit(&p->admit, ADMIT_ONE + 1,
                                  memory_order_release);
        return rc;
    }
    if (!own || !fut__deque_push(&self_worker->deque, f))
        inject_push(p, f);
    /* Wake before leaving: once no submitter is in flight, shutdown may
     * finish and, from a worker (fut_executor_free in a task), the pool
     * may be freed while this thread would still read it. */
    wake_one(p);
    atomic_fetch_sub_explicit(&p->admit, 1, memory_order_release);
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

/* Takes every queued task out (injection stack and all deques) and settles
 * it with code.  Used when no worker will run them. */
static void drain_all(pool_t *p, int code, const char *message)
{
    for (;;) {
        bool more;
        fut_t *batch[INJECT_BATCH];
        size_t n = inject_take(p, batch, INJECT_BATCH, true, &more);
        if (n == 0 && (batch[0] = steal_any(p, NULL)) != NULL)
            n = 1;
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            atomic_fetch_add(&p->drained, 1);
            reject_queued(p, batch[i], code, message);
            fut_release(batch[i]);
        }
    }
}

static int pool_shutdown(fut_executor_t *ex, unsigned flags)
{
    pool_t *p = (pool_t *)ex;
    atomic_store(&p->shutdown, true);
    while (atomic_load(&p->admit) & ADMIT_INFLIGHT)
        sched_yield(); /* a submitter between its check and its push */
    atomic_store(&p->closed, true);
    bool forked = atomic_load(&p->forked);
    if (forked)
        drain_all(p, ESHUTDOWN, "thread pool inherited across fork()");
    else if (flags & FUT_SHUTDOWN_CANCEL_PENDING)
        drain_all(p, ECANCELED, NULL);
    wake_all(p);
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
 * gave in the word before the aligned block. */
static void *alloc_aligned(size_t size)
{
    char *raw = fut__alloc(size + 64 + sizeof(void *));
    if (!raw)
        return NULL;
    uintptr_t at = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)at)[-1] = raw;
    return (void *)at;
}

static void free_aligned(void *p, size_t size)
{
    fut__free(((void **)p)[-1], size + 64 + sizeof(void *));
}

static void pool_free_memory(pool_t *p)
{
    pool_unregister(p);
    for (size_t i = 0; i < p->nthreads; i++)
        fut__parker_release(p->workers[i].parker);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->inject_lock);
    pthread_mutex_destroy(&p->join_lock);
    pthread_cond_destroy(&p->not_full);
    free_aligned(p->workers, p->nthreads * sizeof *p->workers);
    free_aligned(p, sizeof *p);
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
    atomic_fetch_add(&p->zombies, 1);
    atomic_fetch_add(&p->cancelled, 1);
    if (p->max_queued)
        signal_not_full(p); /* a slot is free again */
}

static int pool_stats(fut_executor_t *ex, fut_stats_t *out)
{
    pool_t *p = (pool_t *)ex;
    pthread_mutex_lock(&p->lock);
    out->threads = p->alive;
    pthread_mutex_unlock(&p->lock);
    out->idle = atomic_load(&p->nidle);
    out->queued = (size_t)queued_now(p);
    out->submitted = atomic_load(&p->admit) >> 16;
    for (size_t i = 0; i < p->nthreads; i++)
        out->completed += atomic_load(&p->workers[i].completed);
    out->cancelled = atomic_load(&p->cancelled);
    out->broken = atomic_load(&p->broken);
    out->shutdown = atomic_load(&p->shutdown) || atomic_load(&p->forked);
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

static void workers_free(worker_t *ws, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fut__parker_release(ws[i].parker);
}

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

    pool_t *p = alloc_aligned(sizeof *p);
    if (!p)
        return ENOMEM;
    memset(p, 0, sizeof *p);
    p->workers = alloc_aligned(n * sizeof *p->workers);
    if (!p->workers) {
        free_aligned(p, sizeof *p);
        return ENOMEM;
    }
    memset(p->workers, 0, n * sizeof *p->workers);
    for (size_t i = 0; i < n; i++) {
        worker_t *w = &p->workers[i];
        w->parker = fut__parker_new();
        if (!w->parker) {
            workers_free(p->workers, i);
            free_aligned(p->workers, n * sizeof *p->workers);
            free_aligned(p, sizeof *p);
            return ENOMEM;
        }
        fut__deque_init(&w->deque);
        w->pool = p;
        w->index = i;
        w->rng = (unsigned)i * 2654435761u + 1;
    }
    p->base.ops = &pool_ops;
    p->nthreads = n;
    p->max_queued = cfg->max_queued;
    p->init = cfg->worker_init;
    p->exit_fn = cfg->worker_exit;
    p->arg = cfg->worker_arg;
    snprintf(p->name, sizeof p->name, "%s", cfg->name ? cfg->name : "fut");
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->inject_lock, NULL);
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

/* Every live pool is registered so that fork handlers can lock them around
 * fork() and mark them forked in the child.  Order: registry lock, then
 * each pool's two locks.  The stack and the deques are lock-free, hence
 * consistent in the child at any instant; the backlog is consistent because
 * its lock is held across fork(). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pool_t *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    for (pool_t *p = registry; p; p = p->reg_next) {
        pthread_mutex_lock(&p->lock);
        pthread_mutex_lock(&p->inject_lock);
    }
}

static void fork_parent(void)
{
    for (pool_t *p = registry; p; p = p->reg_next) {
        pthread_mutex_unlock(&p->inject_lock);
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
        pthread_mutex_init(&p->inject_lock, NULL);
        pthread_mutex_init(&p->join_lock, NULL);
        pthread_cond_init(&p->not_full, NULL);
        atomic_store(&p->forked, true);
        atomic_store(&p->shutdown, true);
        atomic_store(&p->closed, true);
        atomic_store(&p->admit,
                     atomic_load(&p->admit) & ~(uint64_t)ADMIT_INFLIGHT);
        atomic_store(&p->nidle, 0);
        atomic_store(&p->blocked_submitters, 0);
        p->alive = 0;
        p->idle = NULL;
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

/*
 * pool.h - the thread-pool executor's shared structure (private; executor
 * layer).
 *
 * The pool is four files: pool.c (creating, submitting, shutting down,
 * freeing, stats), pool_worker.c (the queues, the worker loop, parking and
 * helping while a worker waits), pool_elastic.c (extra threads for
 * blocking calls) and pool_fork.c (the registry of live pools and the fork
 * handlers).  Their design essays are at the top of pool.c, pool_worker.c
 * and pool_elastic.c.
 *
 * Cache lines.  The pool's fields are grouped by writer, a line each:
 * measured, W1 went from 7-14 M to 30 M tasks/s when the workers stopped
 * reading the line every submit writes.
 */
#ifndef FUT_EXEC_POOL_H
#define FUT_EXEC_POOL_H

#include "core/exec.h"
#include "core/wait.h"
#include "util/deque.h"
#include "util/park.h"
#include "util/segq.h"

#include <pthread.h>

enum {
    FUT__POOL_NAME_MAX = 15, /* bytes a thread name can show */
    FUT__POOL_THREADS_MAX = 4096,
    FUT__HELP_DEPTH_MAX = 64, /* nested help-while-wait levels */
};

typedef struct fut__pool fut__pool_t;

typedef struct fut__worker {
    fut__deque_t deque; /* first: its own cache lines */
    /* The newest task this worker spawned, run next by it (see "Next" in
     * pool_worker.c); on the deque's line of owner-written fields. */
    fut_t *_Atomic next;
    /* Pushes into `next`, so that a thief tells a task that sat there for
     * NEXT_STEAL_NS from the same task pushed again since (a fiber in a
     * ping-pong is pushed over and over). */
    _Atomic uint32_t next_pushes;
    fut__pool_t *pool;
    pthread_t thread;
    size_t index;
    fut__parker_t *parker; /* the pool holds a reference, the thread another */
    struct fut__worker *idle_next;
    bool idle; /* in the idle list (lock held) */
    bool started;
    bool extra;   /* beyond the configured threads: detached, may retire */
    bool live;    /* an extra slot's thread exists (lock held) */
    int blocking; /* nested declared blocking calls of its task */
    int depth;    /* nested help-while-wait levels */
    unsigned rng;
    /* A thief's last look at another worker's next slot. */
    struct fut__worker *seen_victim;
    fut_t *seen_next;
    uint32_t seen_pushes;
    int64_t next_look_at; /* its last look at the others' next slots */
    int64_t seen_at;
    bool next_waiting;   /* its last look saw a next task not yet its to take */
    int64_t recheck;     /* its parks' recheck interval while others are busy */
    bool watching;       /* the parked worker that looks back (lock held) */
    uint64_t flushed_at; /* `taken` when it last flushed its cache */
    /* The task run at each help depth (NULL: none): read only in a fork()
     * child, whose waits settle them (pool.c, reap). */
    fut_t *running[FUT__HELP_DEPTH_MAX + 1];
    /* Written by this worker only, on a line of their own. */
    _Alignas(64) _Atomic uint64_t taken, completed, resumed;
} fut__worker_t;

#define FUT__LINE _Alignas(64)

struct fut__pool {
    fut_executor_t base;
    /* Read-mostly: set at creation or on shutdown. */
    FUT__LINE _Atomic bool shutdown; /* no more submits */
    _Atomic bool closed;             /* shutdown and no submit in flight */
    _Atomic int broken;              /* a worker initializer's code */
    _Atomic bool forked;
    _Atomic bool reaped;    /* forked, and what it held is settled */
    size_t nthreads;        /* worker slots: max_threads */
    size_t nbase;           /* the configured threads, slots 0..nbase-1 */
    _Atomic size_t used;    /* slots ever used (scans stop there) */
    _Atomic size_t blocked; /* workers in declared blocking calls */
    int64_t keep_alive;
    uint64_t spawned; /* extra threads started (lock held) */
    size_t retiring;  /* extra threads on their way out (lock held) */
    fut__worker_t *workers;
    size_t max_queued;
    /* Written by every submit: submitters in flight (low 16 bits) and
     * tasks accepted (the rest), one RMW to enter, one to leave. */
    FUT__LINE _Atomic uint64_t admit;
    /* The FIFO of outside work (util/segq.h): submitters push, every
     * worker takes one task at a time.  While it is long, the pool counts
     * as backlogged (core/exec.h): one count per transition it reports. */
    fut__segq_t queue;
    /* Written by workers as they park and wake. */
    FUT__LINE _Atomic size_t nidle;
    _Atomic bool watching; /* a parked worker looks back (pool_worker.c) */
    /* Rare. */
    FUT__LINE _Atomic uint64_t cancelled, zombies, drained;
    _Atomic uint64_t resumed; /* fibers woken from outside: accepted, no task */
    _Atomic size_t blocked_submitters;
    pthread_mutex_t lock;
    pthread_cond_t not_full;
    pthread_cond_t exited; /* a worker left (alive went down) */
    fut__worker_t *idle;
    size_t alive;
    /* Workers that may be in a look at the shared queue: started and not
     * parked (see "Spare blocks" in pool_worker.c). */
    size_t awake;
    int (*init)(void *);
    void (*exit_fn)(void *);
    void *arg;
    bool joined;
    bool flush_idle; /* fut__pool_new */
    pthread_mutex_t join_lock;
    char name[FUT__POOL_NAME_MAX + 1]; /* the prefix, as much as can show */
    fut__pool_t *reg_prev, *reg_next;  /* fork registry (pool_fork.c) */
};

/* Counts one on a counter only its worker writes: a plain load and store,
 * no locked instruction. */
static inline void fut__pool_bump(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

#define FUT__ADMIT_ONE ((uint64_t)1 << 16) /* one task accepted */
#define FUT__ADMIT_INFLIGHT 0xffffu

/* fut_pool_new, for fut's own pools (flush_idle true): a worker hands its
 * cached blocks to the allocator's depot each time it goes idle, so that
 * fut_set_allocator can take them back from threads that never exit, and
 * the pool's own memory comes from malloc, not from the installed
 * allocator (it lives as long as the process). */
int fut__pool_new(const fut_pool_config_t *cfg, bool flush_idle,
                  fut_executor_t **out);

/* --- pool_worker.c ---------------------------------------------------- */

void *fut__pool_worker_main(void *worker);

/* The worker of p running on this thread, or NULL. */
fut__worker_t *fut__pool_self(const fut__pool_t *p);

/* Pushes f on the shared queue (any thread), or, unless back, to the
 * calling worker's next slot; then wakes a parked worker if there is one.
 * 0, or ENOMEM when the shared queue could not grow (f is queued
 * nowhere). */
int fut__pool_push(fut__pool_t *p, fut_t *f, bool back);

/* Takes every queued task out and settles it with code: for when no
 * worker will run them. */
void fut__pool_drain(fut__pool_t *p, int code, const char *message);

/* The executor's take_resume operation (core/exec.h): the calling
 * worker's next task, if it is a fiber woken again and cur is the task the
 * worker runs. */
fut_t *fut__pool_take_resume(fut_executor_t *ex, fut_t *cur);

/* Wakes every parked worker. */
void fut__pool_wake_all(fut__pool_t *p);

/* The executor's help_wait operation (rule 7). */
bool fut__pool_help_wait(fut_executor_t *ex, fut__waiter_t *w, int64_t deadline,
                         int *rc);

/* Wakes one parked worker, if any; lock not held. */
void fut__pool_wake_one(fut__pool_t *p);

/* True if the shared queue may hold a task. */
bool fut__pool_queue_nonempty(fut__pool_t *p);

/* --- pool_elastic.c --------------------------------------------------- */

/* The executor's blocking operation (elastic capacity). */
int fut__pool_blocking(fut_executor_t *ex, int delta);

/* An extra worker idle for the keep-alive: true if it is to leave (the
 * caller then runs worker_exit and exits; it stays counted alive until
 * then, so that freeing the pool waits for it). */
bool fut__pool_retire(fut__worker_t *w);

/* Wakes submitters blocked on a full bounded queue. */
void fut__pool_signal_not_full(fut__pool_t *p);

/* --- pool_fork.c ------------------------------------------------------ */

void fut__pool_register(fut__pool_t *p);
void fut__pool_unregister(fut__pool_t *p);

#endif /* FUT_EXEC_POOL_H */

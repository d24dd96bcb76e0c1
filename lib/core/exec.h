/*
 * exec.h - the executor interface (private; core layer).
 *
 * An executor is a small table of operations and a reference count.  The
 * interface sits in the core so that producers (tasks, continuations) and
 * blocking waits can use any executor without naming one; the executors
 * themselves (pool, loop, inline) live in the executor layer.
 *
 * Submitting.  A producer hands ops->submit a PENDING future with one
 * reference for the executor.  On success the executor owns that reference
 * until it has run the future (fut__run) or rejected it (fut__reject_
 * unstarted); on failure (an errno code) nothing was queued and the
 * producer rejects the future itself.
 *
 * Lifetime.  The user's handle is one reference; fut_executor_free closes
 * the executor (ops->close: shut down, wait as it documents) and drops it.
 * Anything else that keeps a pointer to the executor for later holds a
 * reference: a continuation given an executor, until it is handed over or
 * decided; a pool's worker threads, until they exit; a loop's wake
 * callbacks.  The last reference calls ops->destroy, which frees the
 * memory.  So a future never refers to freed executor memory, and a closed
 * executor answers ESHUTDOWN to late submits.  Executors without destroy
 * are immortal (the inline executor).
 *
 * Waiting.  A thread that runs an executor's work (a pool worker) names
 * that executor with fut__exec_enter; a blocking wait on such a thread
 * asks the executor to help (ops->help_wait: run its queued work while
 * waiting, rule 7) instead of parking the thread.
 */
#ifndef FUT_CORE_EXEC_H
#define FUT_CORE_EXEC_H

#include "core/future.h"

typedef struct fut__waiter fut__waiter_t;

typedef struct fut__executor_ops {
    int (*submit)(fut_executor_t *ex, fut_t *f, unsigned flags);
    int (*shutdown)(fut_executor_t *ex, unsigned flags);
    /* fut_executor_free: stop taking work and finish as documented; the
     * caller then drops the user's reference. */
    void (*close)(fut_executor_t *ex);
    /* The last reference went: free the memory.  NULL: immortal. */
    void (*destroy)(fut_executor_t *ex);
    int (*stats)(fut_executor_t *ex, fut_stats_t *out);
    /* Optional: a task still in ex's queue was just cancelled (it stays
     * queued, marked FUT__CANCEL_TOLD, until ex takes it out).  Called by
     * fut_cancel while it holds the claim, so ex is alive: a worker that
     * meets a claimed task waits for the claim to be published. */
    void (*cancelled)(fut_executor_t *ex);
    /* Optional: this thread runs ex's work and must wait for w; run ex's
     * work meanwhile.  Returns false if it cannot help (then the caller
     * parks); else true with *rc 0 or ETIMEDOUT at deadline. */
    bool (*help_wait)(fut_executor_t *ex, fut__waiter_t *w, int64_t deadline,
                      int *rc);
    /* Optional: ex's threads are gone (a pool inherited across fork()):
     * settle, with ESHUTDOWN, what it still holds, queued or running.
     * Idempotent. */
    void (*reap)(fut_executor_t *ex);
    /* Optional: the task running on this thread (one of ex's) enters
     * (delta +1) or leaves (-1) a blocking call; ex may start threads to
     * keep its others running.  0, or EAGAIN (no thread could start). */
    int (*blocking)(fut_executor_t *ex, int delta);
    /* Optional: cur, the task this thread runs for ex, is a fiber about to
     * suspend.  If the task the thread would run next is a suspended fiber
     * woken again (fut__fiber_resumable), take it out of the queue, with
     * the queue's reference, and make it the thread's running task in
     * cur's place, so that cur can switch straight to it; else NULL. */
    fut_t *(*take_resume)(fut_executor_t *ex, fut_t *cur);
} fut__executor_ops_t;

struct fut_executor {
    const fut__executor_ops_t *ops;
    _Atomic uint32_t refs;
    size_t fiber_stack; /* stack size for its fibers, 0: the default */
};

/* Submit flag for ops->submit: queue f behind the other work (a fiber that
 * yields), not on the submitting worker's own deque. */
#define FUT__SUBMIT_BACK 0x80000000u
/* Submit flag for ops->submit: f is a suspended fiber woken again, not a
 * new task (an executor need not count it as a submission). */
#define FUT__SUBMIT_RESUME 0x40000000u

/* Sets up the header: ops, and `refs` references. */
void fut__exec_init(fut_executor_t *ex, const fut__executor_ops_t *ops,
                    uint32_t refs);
fut_executor_t *fut__exec_retain(fut_executor_t *ex);
void fut__exec_release(fut_executor_t *ex);

/* Set (for good) once some executor lost its threads: a fork() child
 * inherited a pool.  Blocking waits then ask the executors of the futures
 * they wait for to reap (wait.c), so that the child's waits end with
 * ESHUTDOWN instead of hanging. */
extern _Atomic bool fut__exec_orphaned;

/* Executors with more queued work than they can start at once (a pool
 * whose queue overflowed its ring), counted by the executors: while any
 * has, a thread waiting from outside spins less before it parks (wait.c). */
extern _Atomic int fut__exec_backlogged;

/* The executor whose work this thread runs (NULL: none), set by its
 * threads as they start (enter) and cleared as they stop (NULL). */
void fut__exec_enter(fut_executor_t *ex);
fut_executor_t *fut__exec_current(void);

#endif /* FUT_CORE_EXEC_H */

/*
 * executor.h - the executor interface (private).
 *
 * An executor is a small vtable.  fut_submit_ex allocates the task's future
 * (its fn, arg and free_arg live inside it) with two references, one for the
 * caller and one for the executor, and hands it to ops->submit.  On success
 * the executor owns that reference until the task has run or been
 * cancelled; on failure (an errno code) nothing was queued and the caller
 * rejects the future.  Executors run a task with fut__task_run.
 */
#ifndef FUT_EXECUTOR_H
#define FUT_EXECUTOR_H

#include "future.h"

typedef struct fut__executor_ops {
    int (*submit)(fut_executor_t *ex, fut_t *task, unsigned flags);
    int (*shutdown)(fut_executor_t *ex, unsigned flags);
    void (*destroy)(fut_executor_t *ex);
    int (*stats)(fut_executor_t *ex, fut_stats_t *out);
    /* Optional: a task still in ex's queue was just cancelled (it stays
     * queued, marked FUT__CANCEL_TOLD, until ex takes it out).  Called by
     * fut_cancel while it holds the claim, so ex is alive: a worker that
     * meets a claimed task waits for the claim to be published. */
    void (*cancelled)(fut_executor_t *ex);
} fut__executor_ops_t;

struct fut_executor {
    const fut__executor_ops_t *ops;
};

/* Starts and runs a queued task on this thread: PENDING -> RUNNING, calls
 * fn, runs free_arg, publishes the result.  Does nothing if the task was
 * cancelled meanwhile.  Returns true if it ran.  Does not drop the
 * executor's reference. */
bool fut__task_run(fut_t *f);

#endif /* FUT_EXECUTOR_H */

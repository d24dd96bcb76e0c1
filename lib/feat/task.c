/*
 * task.c - tasks: submitting them, running them, cancelling them.
 *
 * A task's future carries its fn, arg and free_arg (one allocation per
 * task) and a pointer to its executor.  The context lives on the stack of
 * the thread that runs the task; it collects what the function says about
 * its result and is turned into the future's terminal state when the
 * function returns (core/ctx.h).  free_arg runs exactly once: after fn
 * returns, or, for a task that never starts, by whoever claims it (a
 * cancel, or the executor refusing or dropping it: the kind's cancel and
 * discard operations below).
 */
#include "feat/task.h"

#include "core/ctx.h"
#include "core/exec.h"

#include <errno.h>
#include <sched.h>

fut_t *fut_submit_ex(fut_executor_t *ex, fut_fn fn, void *arg,
                     fut_free_fn free_arg, unsigned flags)
{
    if (!ex || !fn) {
        if (free_arg)
            free_arg(arg);
        return fut_rejected(EINVAL, ex ? "fut_submit: fn is NULL"
                                       : "fut_submit: executor is NULL");
    }
    fut_t *f = fut__new(FUT__KIND_TASK, 2); /* the caller's, the queue's */
    if (!f) {
        if (free_arg)
            free_arg(arg);
        return &fut__enomem;
    }
    f->ex = ex;
    if (flags & FUT_BLOCKING)
        atomic_fetch_or_explicit(&f->state, FUT__BLOCKING,
                                 memory_order_relaxed);
    f->u.task.fn = fn;
    f->u.task.arg = arg;
    f->u.task.free_arg = free_arg;
    (void)fut__task_queue(f, flags);
    return f;
}

fut_t *fut_submit(fut_executor_t *ex, fut_fn fn, void *arg)
{
    return fut_submit_ex(ex, fn, arg, NULL, 0);
}

/* What a task that never starts owes: its free_arg. */
static void task_discard(fut_t *f)
{
    if (f->u.task.free_arg)
        f->u.task.free_arg(f->u.task.arg);
}

fut_t *fut__task_new(fut_fn fn, void *arg, fut_free_fn free_arg, uint32_t refs,
                     bool roomy)
{
    fut_t *f = fut__new(roomy ? FUT__KIND_TASK_ROOMY : FUT__KIND_TASK, refs);
    if (!f) {
        if (free_arg)
            free_arg(arg);
        return NULL;
    }
    f->u.task.fn = fn;
    f->u.task.arg = arg;
    f->u.task.free_arg = free_arg;
    return f;
}

int fut__task_queue(fut_t *f, unsigned flags)
{
    int rc = f->ex->ops->submit(f->ex, f, flags);
    if (rc != 0) {
        fut__reject_unstarted(f, rc, NULL);
        fut_release(f); /* the queue's, never taken */
    }
    return rc;
}

int fut__task_start(fut_t *f, fut_executor_t *ex, unsigned flags)
{
    /* Set the executor under the claim: a canceller that claims first finds
     * none (nothing to tell); one that claims after finds it, and the task
     * is, or is about to be, in its queue, which counts the cancel.  The
     * claim is given back before submitting: an inline executor runs the
     * task at once.  (A cancel between the two whose submit is then refused
     * leaves the executor one cancel counted for a task it never held.) */
    if (!fut__try_claim(f)) {
        fut_release(f); /* the queue's, not needed */
        return ECANCELED;
    }
    f->ex = ex;
    if (flags & FUT_BLOCKING)
        atomic_fetch_or_explicit(&f->state, FUT__BLOCKING,
                                 memory_order_relaxed);
    FUT__MUST(
        fut__transition(f, FUT_PENDING | FUT__CLAIMED, FUT_PENDING, 0, NULL));
    return fut__task_queue(f, flags);
}

static int task_run(fut_t *f)
{
    uint32_t seen;
    while (!fut__transition(f, FUT_PENDING, FUT_RUNNING, 0, &seen)) {
        /* Cancelled while queued.  If the canceller still holds the claim,
         * wait for it to publish: it may be telling our executor. */
        if (!(seen & FUT__CLAIMED))
            return FUT__NOT_RUN;
        sched_yield();
    }
    fut_fn fn = f->u.task.fn;
    void *arg = f->u.task.arg;
    fut_free_fn free_arg = f->u.task.free_arg;
    fut_ctx_t ctx = {.f = f};
    fut_t *outer = fut__set_current(f);
    void *value = fn(&ctx, arg);
    fut__set_current(outer);
    if (free_arg)
        free_arg(arg);
    fut__ctx_settle(&ctx, value);
    return FUT__RAN;
}

static void task_cancel(fut_t *f)
{
    /* A pending task is in its executor's queue, which counts it; one not
     * started yet (fut__task_start) has no executor. */
    if (f->ex && f->ex->ops->cancelled) {
        atomic_fetch_or_explicit(&f->state, FUT__CANCEL_TOLD,
                                 memory_order_relaxed);
        f->ex->ops->cancelled(f->ex);
    }
    task_discard(f);
}

bool fut__task_unstarted(fut_t *f)
{
    uint32_t s = fut__load(f);
    unsigned k = fut__kind(s);
    return (k == FUT__KIND_TASK || k == FUT__KIND_TASK_ROOMY) && !f->ex &&
           !fut__is_settled(s);
}

const fut__kind_ops_t fut__task_kind = {
    .name = "task",
    .size = sizeof(struct fut),
    .run = task_run,
    .cancel = task_cancel,
    .discard = task_discard,
};

const fut__kind_ops_t fut__task_roomy_kind = {
    .name = "task",
    .size = FUT__CLASS_ROOMY,
    .run = task_run,
    .cancel = task_cancel,
    .discard = task_discard,
};

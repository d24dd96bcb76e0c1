/*
 * executor.c - the public executor calls (dispatch through the vtable) and
 * the inline executor, which runs each task on the submitting thread before
 * fut_submit returns.
 */
#include "executor.h"

#include <errno.h>
#include <string.h>

int fut_executor_shutdown(fut_executor_t *ex, unsigned flags)
{
    if (!ex)
        return EINVAL;
    return ex->ops->shutdown(ex, flags);
}

void fut_executor_free(fut_executor_t *ex)
{
    if (ex)
        ex->ops->destroy(ex);
}

int fut_executor_stats(fut_executor_t *ex, fut_stats_t *out)
{
    if (!ex || !out)
        return EINVAL;
    memset(out, 0, sizeof *out);
    return ex->ops->stats(ex, out);
}

/* --- the inline executor ---------------------------------------------- */

static _Atomic uint64_t inline_submitted, inline_completed;

static int inline_submit(fut_executor_t *ex, fut_t *task, unsigned flags)
{
    (void)ex;
    (void)flags;
    atomic_fetch_add_explicit(&inline_submitted, 1, memory_order_relaxed);
    fut__task_run(task);
    atomic_fetch_add_explicit(&inline_completed, 1, memory_order_relaxed);
    fut_release(task);
    return 0;
}

static int inline_shutdown(fut_executor_t *ex, unsigned flags)
{
    (void)ex;
    (void)flags;
    return 0; /* a shared singleton: nobody may shut it down for others */
}

static void inline_destroy(fut_executor_t *ex)
{
    (void)ex;
}

static int inline_stats(fut_executor_t *ex, fut_stats_t *out)
{
    (void)ex;
    out->submitted =
        atomic_load_explicit(&inline_submitted, memory_order_relaxed);
    out->completed =
        atomic_load_explicit(&inline_completed, memory_order_relaxed);
    return 0;
}

static const fut__executor_ops_t inline_ops = {
    .submit = inline_submit,
    .shutdown = inline_shutdown,
    .destroy = inline_destroy,
    .stats = inline_stats,
};

static fut_executor_t inline_executor = {.ops = &inline_ops};

fut_executor_t *fut_inline_executor(void)
{
    return &inline_executor;
}

/*
 * exec.c - the public executor calls (dispatched through the table),
 * executor references, and the per-thread current executor (the interface
 * is in exec.h).  The last release is acq_rel so the destroyer
 * sees every write of every earlier holder.
 */
#include "core/exec.h"

#include <errno.h>
#include <string.h>

static _Thread_local fut_executor_t *current;

_Atomic bool fut__exec_orphaned;
_Atomic int fut__exec_backlogged;

void fut__exec_init(fut_executor_t *ex, const fut__executor_ops_t *ops,
                    uint32_t refs)
{
    ex->ops = ops;
    atomic_init(&ex->refs, refs);
    ex->fiber_stack = 0;
}

fut_executor_t *fut__exec_retain(fut_executor_t *ex)
{
    if (ex && ex->ops->destroy)
        atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
    return ex;
}

void fut__exec_release(fut_executor_t *ex)
{
    if (!ex || !ex->ops->destroy)
        return;
    uint32_t old =
        atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_acq_rel);
    FUT__ASSERT(old != 0);
    if (old == 1)
        ex->ops->destroy(ex);
}

void fut__exec_enter(fut_executor_t *ex)
{
    current = ex;
}

fut_executor_t *fut__exec_current(void)
{
    return current;
}

/* --- the public calls ------------------------------------------------- */

int fut_executor_shutdown(fut_executor_t *ex, unsigned flags)
{
    if (!ex)
        return EINVAL;
    return ex->ops->shutdown(ex, flags);
}

void fut_executor_free(fut_executor_t *ex)
{
    if (!ex)
        return;
    ex->ops->close(ex);
    fut__exec_release(ex);
}

int fut_blocking_begin(void)
{
    fut_executor_t *ex = current;
    return ex && ex->ops->blocking ? ex->ops->blocking(ex, +1) : 0;
}

void fut_blocking_end(void)
{
    fut_executor_t *ex = current;
    if (ex && ex->ops->blocking)
        ex->ops->blocking(ex, -1);
}

int fut_executor_stats(fut_executor_t *ex, fut_stats_t *out)
{
    if (!ex || !out)
        return EINVAL;
    memset(out, 0, sizeof *out);
    return ex->ops->stats(ex, out);
}

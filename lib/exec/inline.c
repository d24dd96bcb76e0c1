/*
 * inline.c - the inline executor: runs each task on the submitting thread
 * before fut_submit returns.  A shared singleton: immortal (no destroy
 * operation), and nobody may shut it down for the others.
 */
#include "core/exec.h"

/* --- the inline executor ---------------------------------------------- */

static _Atomic uint64_t inline_submitted, inline_completed;

static int inline_submit(fut_executor_t *ex, fut_t *task, unsigned flags)
{
    (void)ex;
    (void)flags;
    atomic_fetch_add_explicit(&inline_submitted, 1, memory_order_relaxed);
    int r = fut__run(task);
    atomic_fetch_add_explicit(&inline_completed, 1, memory_order_relaxed);
    fut__run_done(task, r);
    return 0;
}

static int inline_shutdown(fut_executor_t *ex, unsigned flags)
{
    (void)ex;
    (void)flags;
    return 0; /* a shared singleton: nobody may shut it down for others */
}

static void inline_close(fut_executor_t *ex)
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
    .close = inline_close,
    .stats = inline_stats,
};

static fut_executor_t inline_executor = {.ops = &inline_ops, .refs = 1};

fut_executor_t *fut_inline_executor(void)
{
    return &inline_executor;
}

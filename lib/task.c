/*
 * task.c - submitting tasks, running them, and the context handed to them.
 *
 * A task's future carries its fn, arg and free_arg (one allocation per
 * task).  The context lives on the stack of the thread that runs the task;
 * it collects what the function says about its result (a failure, a value
 * destructor) and is turned into the future's terminal state when the
 * function returns.  free_arg runs exactly once: after fn returns, or by
 * whoever rejects or cancels the task before it starts
 * (fut__reject_unstarted).
 */
#include "executor.h"

#include <errno.h>
#include <stdarg.h>

struct fut_ctx {
    fut_t *f;
    fut_free_fn free_value;
    int code;      /* first failure, 0 if none */
    char *message; /* owned; NULL: static description of code */
};

fut_t *fut_submit_ex(fut_executor_t *ex, fut_fn fn, void *arg,
                     fut_free_fn free_arg, unsigned flags)
{
    if (!ex || !fn) {
        if (free_arg)
            free_arg(arg);
        return fut_rejected(EINVAL, ex ? "fut_submit: fn is NULL"
                                       : "fut_submit: executor is NULL");
    }
    fut_t *f = fut__new(FUT__KIND_TASK, 2);
    if (!f) {
        if (free_arg)
            free_arg(arg);
        return &fut__enomem;
    }
    f->ex = ex;
    f->u.task.fn = fn;
    f->u.task.arg = arg;
    f->u.task.free_arg = free_arg;
    int rc = ex->ops->submit(ex, f, flags);
    if (rc != 0) {
        fut__reject_unstarted(f, rc, NULL);
        fut_release(f);
    }
    return f;
}

fut_t *fut_submit(fut_executor_t *ex, fut_fn fn, void *arg)
{
    return fut_submit_ex(ex, fn, arg, NULL, 0);
}

bool fut__task_run(fut_t *f)
{
    if (!fut__transition(f, FUT_PENDING, FUT_RUNNING, 0, NULL))
        return false; /* cancelled (or being cancelled) while queued */
    fut_fn fn = f->u.task.fn;
    void *arg = f->u.task.arg;
    fut_free_fn free_arg = f->u.task.free_arg;
    struct fut_ctx ctx = {.f = f};
    fut_t *outer = fut__set_current(f);
    void *value = fn(&ctx, arg);
    fut__set_current(outer);
    if (free_arg)
        free_arg(arg);
    if (ctx.code) {
        if (value && ctx.free_value)
            ctx.free_value(value);
        fut__fail_owned(f, ctx.code, ctx.message);
    } else {
        fut__fulfil(f, value, ctx.free_value);
    }
    return true;
}

void *fut_fail(fut_ctx_t *ctx, int code, const char *fmt, ...)
{
    if (!ctx || ctx->code)
        return NULL; /* the first failure wins */
    if (code <= 0) {
        ctx->code = EINVAL;
        ctx->message = fut__msg_copy("fut_fail: the code must be a "
                                     "positive errno value");
        return NULL;
    }
    ctx->code = code;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        ctx->message = fut__msg_vformat(fmt, ap);
        va_end(ap);
    }
    return NULL;
}

void fut_set_free(fut_ctx_t *ctx, fut_free_fn free_value)
{
    if (ctx)
        ctx->free_value = free_value;
}

bool fut_cancel_requested(const fut_ctx_t *ctx)
{
    return ctx && (fut__load(ctx->f) & FUT__CANCEL_REQ);
}

void fut_progress(fut_ctx_t *ctx, void *progress)
{
    if (ctx)
        fut__notify(ctx->f, progress);
}

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
#include "ctx.h"
#include "executor.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>

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

void fut__ctx_settle(fut_ctx_t *ctx, void *value)
{
    fut_t *f = ctx->f;
    if (ctx->code || ctx->adopt) {
        if (value && ctx->free_value)
            ctx->free_value(value);
    }
    if (ctx->code) {
        fut_release(ctx->adopt);
        fut__fail_owned(f, ctx->code, ctx->message);
    } else if (ctx->adopt) {
        fut__adopt_start(f, ctx->adopt);
    } else {
        fut__fulfil(f, value, ctx->free_value);
    }
}

bool fut__task_run(fut_t *f)
{
    fut__kind_t kind = fut__kind(fut__load(f));
    if (kind != FUT__KIND_TASK)
        return fut__cont_run(f); /* a continuation given an executor */
    uint32_t seen;
    while (!fut__transition(f, FUT_PENDING, FUT_RUNNING, 0, &seen)) {
        /* Cancelled while queued.  If the canceller still holds the claim,
         * wait for it to publish: it may be telling our executor. */
        if (!(seen & FUT__CLAIMED))
            return false;
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
    return true;
}

void *fut_fail(fut_ctx_t *ctx, int code, const char *fmt, ...)
{
    if (!ctx || ctx->code || ctx->adopt)
        return NULL; /* the first failure or adoption wins */
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

void *fut_adopt(fut_ctx_t *ctx, fut_t *other)
{
    if (!ctx || ctx->code || ctx->adopt) {
        fut_release(other);
        return NULL;
    }
    if (!other) {
        ctx->code = EINVAL;
        ctx->message = fut__msg_copy("fut_adopt: the future is NULL");
        return NULL;
    }
    ctx->adopt = other;
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

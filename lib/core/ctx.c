/*
 * ctx.c - the context's calls (fut_fail, fut_set_free, fut_adopt,
 * fut_cancel_requested), settling from a context, and the current future.
 */
#include "core/ctx.h"

#include "core/adopt.h"
#include "util/msg.h"

#include <errno.h>
#include <stdarg.h>

static _Thread_local fut_t *current;

fut_t *fut__current(void)
{
    return current;
}

fut_t *fut__set_current(fut_t *f)
{
    fut_t *old = current;
    current = f;
    return old;
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
        fut__fail_in(f, ctx->domain, ctx->code, ctx->message);
    } else if (ctx->adopt) {
        fut__adopt_start(f, ctx->adopt);
    } else {
        fut__fulfil(f, value, ctx->free_value);
    }
}

static void fail_v(fut_ctx_t *ctx, int domain, int code, const char *fmt,
                   va_list ap)
{
    if (!ctx || ctx->code || ctx->adopt)
        return; /* the first failure or adoption wins */
    if (domain < 0 || code == 0 || (domain == FUT_DOMAIN_ERRNO && code < 0)) {
        ctx->code = EINVAL;
        ctx->message = fut__msg_copy("fut_fail: a bad code for its domain "
                                     "(errno codes are positive)");
        return;
    }
    ctx->code = code;
    ctx->domain = domain;
    if (fmt)
        ctx->message = fut__msg_vformat(fmt, ap);
}

void *fut_fail(fut_ctx_t *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(ctx, FUT_DOMAIN_ERRNO, code, fmt, ap);
    va_end(ap);
    return NULL;
}

void *fut_fail_in(fut_ctx_t *ctx, int domain, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(ctx, domain, code, fmt, ap);
    va_end(ap);
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

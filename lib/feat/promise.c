/*
 * promise.c - the write side of a future, and futures born settled
 * (fut_resolved, fut_rejected).
 *
 * A promise is its future seen through another type: fut_promise_t * is the
 * fut_t * itself, so a promise costs no allocation beyond its future.  The
 * writers share one reference to the future and are counted in the WRITER
 * bits of the state word; when the last writer goes while the future is
 * unsettled, the future rejects with EPIPE (a broken promise) so that no
 * reader waits forever.  Settling claims the future first (future.h), so
 * two writers racing to settle see exactly one success and one EALREADY.
 */
#include "feat/promise.h"

#include "feat/progress.h"
#include "util/msg.h"

#include <errno.h>
#include <stdarg.h>

/* Neither kind is queued, waits for an input or owns anything while
 * pending: cancelling one just settles it. */
const fut__kind_ops_t fut__promise_kind = {
    .name = "promise",
    .size = sizeof(struct fut),
};

const fut__kind_ops_t fut__value_kind = {
    .name = "value",
    .size = sizeof(struct fut),
};

static fut_t *as_future(fut_promise_t *p)
{
    return (fut_t *)p;
}

fut_promise_t *fut_promise_new(void)
{
    fut_t *f = fut__new(FUT__KIND_PROMISE, 1);
    if (!f)
        return NULL;
    /* The writer's count: a plain store, nobody else has seen f. */
    atomic_store_explicit(&f->state, fut__load(f) | FUT__WRITER_ONE,
                          memory_order_relaxed);
    return (fut_promise_t *)f;
}

fut_t *fut_promise_future(fut_promise_t *p)
{
    if (!p)
        return fut_rejected(EINVAL, "fut_promise_future: promise is NULL");
    return fut_retain(as_future(p));
}

fut_promise_t *fut_promise_retain(fut_promise_t *p)
{
    if (p) {
        uint32_t old = atomic_fetch_add_explicit(
            &as_future(p)->state, FUT__WRITER_ONE, memory_order_relaxed);
        FUT__ASSERT((old >> FUT__WRITER_SHIFT) != 0xffffu); /* overflow */
    }
    return p;
}

void fut_promise_release(fut_promise_t *p)
{
    if (!p)
        return;
    fut_t *f = as_future(p);
    uint32_t old = atomic_fetch_sub_explicit(&f->state, FUT__WRITER_ONE,
                                             memory_order_acq_rel);
    FUT__ASSERT((old >> FUT__WRITER_SHIFT) != 0);
    if ((old >> FUT__WRITER_SHIFT) != 1)
        return;
    /* The last writer: nobody can settle it any more. */
    if (fut__claim(f))
        fut__fail_static(f, EPIPE, NULL);
    fut_release(f); /* the writers' shared reference */
}

int fut_resolve(fut_promise_t *p, void *value, fut_free_fn free_value)
{
    if (!p) {
        if (free_value)
            free_value(value);
        return EINVAL;
    }
    fut_t *f = as_future(p);
    if (!fut__claim(f)) {
        if (free_value)
            free_value(value);
        return EALREADY;
    }
    fut__fulfil(f, value, free_value);
    return 0;
}

static bool valid_code(int domain, int code)
{
    return domain >= 0 && code != 0 && (domain != FUT_DOMAIN_ERRNO || code > 0);
}

static int reject_v(fut_promise_t *p, int domain, int code, const char *fmt,
                    va_list ap)
{
    if (!p || !valid_code(domain, code))
        return EINVAL;
    fut_t *f = as_future(p);
    if (fut_done(f))
        return EALREADY; /* cheap early answer; the claim decides */
    char *msg = fmt ? fut__msg_vformat(fmt, ap) : NULL;
    if (!fut__claim(f)) {
        fut__msg_free(msg);
        return EALREADY;
    }
    fut__fail_in(f, domain, code, msg);
    return 0;
}

int fut_reject(fut_promise_t *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = reject_v(p, FUT_DOMAIN_ERRNO, code, fmt, ap);
    va_end(ap);
    return rc;
}

int fut_reject_in(fut_promise_t *p, int domain, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = reject_v(p, domain, code, fmt, ap);
    va_end(ap);
    return rc;
}

int fut_notify(fut_promise_t *p, void *progress)
{
    if (!p)
        return EINVAL;
    return fut__notify(as_future(p), progress);
}

fut_t *fut_resolved(void *value, fut_free_fn free_value)
{
    fut_t *f = fut__new(FUT__KIND_VALUE, 1);
    if (!f) {
        if (free_value)
            free_value(value);
        return &fut__enomem;
    }
    FUT__MUST(fut__claim(f)); /* nobody else has seen it */
    fut__fulfil(f, value, free_value);
    return f;
}

fut_t *fut_rejected_in(int domain, int code, const char *message)
{
    if (!valid_code(domain, code))
        return fut_rejected(EINVAL, "fut_rejected_in: a negative domain or "
                                    "a bad code");
    fut_t *f = fut__new(FUT__KIND_VALUE, 1);
    if (!f)
        return &fut__enomem;
    FUT__MUST(fut__claim(f)); /* nobody else has seen it */
    fut__fail_in(f, domain, code, message ? fut__msg_copy(message) : NULL);
    return f;
}

fut_t *fut_rejected(int code, const char *message)
{
    if (code <= 0) {
        code = EINVAL;
        message = "fut_rejected: the code must be a positive errno value";
    }
    fut_t *f = fut__new(FUT__KIND_VALUE, 1);
    if (!f)
        return &fut__enomem;
    FUT__MUST(fut__claim(f)); /* nobody else has seen it */
    if (message)
        fut__fail_owned(f, code, fut__msg_copy(message));
    else
        fut__fail_static(f, code, NULL);
    return f;
}

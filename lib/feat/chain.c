/*
 * chain.c - continuations: then, catch, then_catch, finally, the _on forms
 * and fut_then_ex.
 *
 * A continuation is one allocation: the derived future (fut__cont_t, see
 * chain.h) holds the handlers, their argument and its destructor, and a
 * reference to the input.  It waits on the input's callback stack as a
 * future entry, so registering it allocates nothing more.  When the input
 * settles, its dispatcher calls this kind's input_settled: the continuation
 * runs inline on that thread (inside the trampoline, so a long chain never
 * grows the stack) or is handed to its executor, which runs it through
 * the kind's run operation.
 *
 * Outcomes follow Promises/A+ 2.2: a value skips catch handlers and an
 * error skips then handlers, in which case the derived future borrows the
 * input's outcome (fut__settle_like) and keeps a reference to its owner.
 * A handler's own result is settled through the context, like a task's.
 *
 * Decided exactly once.  A continuation is decided by the one thread that
 * moves it out of PENDING: its runner (PENDING -> RUNNING), a canceller or
 * an executor that drops it (claim).  That thread runs free_arg and
 * releases the input.  The continuation's reference to its executor is
 * dropped by the one call that may still use it, input_settled (which runs
 * exactly once, when the input has settled): it keeps the executor's memory
 * valid from fut_then_on until then, even if the user frees the executor
 * meanwhile (a late submit is refused with ESHUTDOWN and the continuation
 * rejects with it), and even if a cancel decides the continuation while
 * input_settled is about to submit it.
 *
 * The input field is read by other threads (cancel, the adoption walk,
 * progress relays, through the input operation) while the decider may
 * consume it, so it is guarded by swapping in FUT__BUSY while borrowed: a
 * tiny per-object lock that only those rare readers and the one consumer
 * ever take, each for a few instructions.  Lock order: none other is taken
 * while it is held.
 */
#include "feat/chain.h"

#include "core/ctx.h"
#include "core/exec.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>

#define FUT__BUSY ((fut_t *)(uintptr_t)1)

static fut__cont_t *as_cont(fut_t *f)
{
    return (fut__cont_t *)f;
}

/* --- the input reference ---------------------------------------------- */

/* Swaps in BUSY and returns the input (NULL once consumed). */
static fut_t *borrow_input(fut__cont_t *c)
{
    fut_t *in = atomic_load_explicit(&c->input, memory_order_acquire);
    for (;;) {
        if (!in)
            return NULL;
        if (in == FUT__BUSY) {
            sched_yield();
            in = atomic_load_explicit(&c->input, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&c->input, &in, FUT__BUSY,
                                                  memory_order_acquire,
                                                  memory_order_acquire))
            return in;
    }
}

static void return_input(fut__cont_t *c, fut_t *in)
{
    atomic_store_explicit(&c->input, in, memory_order_release);
}

/* Takes the input reference for good. */
static fut_t *take_input(fut__cont_t *c)
{
    fut_t *in = borrow_input(c);
    return_input(c, NULL);
    return in;
}

static fut_t *cont_input(fut_t *d)
{
    fut__cont_t *c = as_cont(d);
    fut_t *in = borrow_input(c);
    if (!in)
        return NULL;
    fut_retain(in);
    return_input(c, in);
    return in;
}

/* --- deciding --------------------------------------------------------- */

/* What every decider does once the handler ran or never will. */
static void finish(fut_t *d, void *arg)
{
    fut__cont_t *c = as_cont(d);
    if (c->free_arg)
        c->free_arg(arg);
}

static int cont_run(fut_t *d)
{
    if (!fut__transition(d, FUT_PENDING, FUT_RUNNING, 0, NULL))
        return FUT__NOT_RUN; /* cancelled meanwhile */
    fut_t *in = take_input(as_cont(d));
    FUT__ASSERT(in != NULL);
    bool finally = fut__kind(fut__load(d)) == FUT__KIND_FINALLY;
    fut_then_fn on_value = d->u.cont.on_value.then;
    fut_finally_fn fin = d->u.cont.on_value.fin;
    fut_catch_fn on_error = d->u.cont.on_error;
    void *arg = d->u.cont.arg;
    bool ok = (fut__load(in) & FUT__STATE_MASK) == FUT_FULFILLED;

    fut_ctx_t ctx = {.f = d};
    bool handled = false;
    void *value = NULL;
    fut_t *outer = fut__set_current(d);
    if (finally) {
        fin(in, arg);
    } else if (ok && on_value) {
        value = on_value(&ctx, in->u.ok.value, arg);
        handled = true;
    } else if (!ok && on_error) {
        fut__observe(in);
        value = on_error(&ctx, &in->u.err, arg);
        handled = true;
    }
    fut__set_current(outer);
    finish(d, arg);
    if (handled)
        fut__ctx_settle(&ctx, value);
    else
        fut__settle_like(d, in);
    fut_release(in);
    return FUT__RAN;
}

static void cont_discard(fut_t *d)
{
    finish(d, d->u.cont.arg);
    fut_release(take_input(as_cont(d)));
}

static void cont_cancel(fut_t *d)
{
    finish(d, d->u.cont.arg);
    fut_t *in = take_input(as_cont(d));
    if (in) {
        fut__cancel_unshared(in);
        fut_release(in);
    }
}

static void cont_input_settled(fut_t *d, fut_t *input)
{
    (void)input; /* the continuation holds its own reference to it */
    /* The executor reference is this call's to drop, whatever happens to
     * d: a cancel may decide d on another thread between the state check
     * below and the submit, and the executor must stay valid for it. */
    fut_executor_t *ex = d->ex;
    uint32_t s = fut__load(d);
    if ((s & (FUT__STATE_MASK | FUT__CLAIMED)) != FUT_PENDING) {
        /* Cancelled (or being cancelled by this very thread, which is
         * cancelling our input from inside fut_cancel(d)). */
    } else if (ex) {
        int rc = ex->ops->submit(ex, d, 0);
        if (rc == 0) {
            fut__exec_release(ex); /* d may have run already: not d->ex */
            return; /* the executor owns the stack's reference now */
        }
        fut__reject_unstarted(d, rc, NULL);
    } else {
        cont_run(d);
    }
    fut__exec_release(ex);
    fut_release(d);
}

const fut__kind_ops_t fut__cont_kind = {
    .name = "continuation",
    .size = sizeof(fut__cont_t),
    .run = cont_run,
    .input_settled = cont_input_settled,
    .cancel = cont_cancel,
    .discard = cont_discard,
    .input = cont_input,
};

/* --- construction ----------------------------------------------------- */

typedef struct handlers {
    const char *who; /* the public function, for error messages */
    fut_then_fn on_value;
    fut_finally_fn fin;
    fut_catch_fn on_error;
    void *arg;
    fut_free_fn free_arg;
} handlers_t;

static fut_t *refuse(fut_t *f, const handlers_t *h, const char *why)
{
    if (h->free_arg)
        h->free_arg(h->arg);
    fut_release(f);
    char msg[96]; /* names the call: "fut_then_on: executor or ..." */
    snprintf(msg, sizeof msg, "%s: %s", h->who, why);
    return fut_rejected(EINVAL, msg);
}

static fut_t *cont_new(unsigned kind, fut_executor_t *ex, fut_t *f,
                       const handlers_t *h)
{
    if (!f)
        return refuse(f, h, "the input future is NULL");
    fut_t *d = fut__new(kind, 2); /* the caller's and the input stack's */
    if (!d) {
        if (h->free_arg)
            h->free_arg(h->arg);
        fut_release(f);
        return &fut__enomem;
    }
    fut__cont_t *c = as_cont(d);
    d->ex = fut__exec_retain(ex);
    if (kind == FUT__KIND_FINALLY)
        d->u.cont.on_value.fin = h->fin;
    else
        d->u.cont.on_value.then = h->on_value;
    d->u.cont.on_error = h->on_error;
    d->u.cont.arg = h->arg;
    c->free_arg = h->free_arg;
    atomic_init(&c->input, f); /* consumes the caller's reference */
    if (!fut__cbs_push(f, (uintptr_t)d | FUT__TAG_FUTURE))
        cont_input_settled(d, f); /* f has settled and dispatched: now */
    return d;
}

fut_t *fut_then_ex(fut_executor_t *ex, fut_t *f, fut_then_fn on_value,
                   fut_catch_fn on_error, void *arg, fut_free_fn free_arg)
{
    handlers_t h = {"fut_then_ex", on_value, NULL, on_error, arg, free_arg};
    return cont_new(FUT__KIND_THEN, ex, f, &h);
}

fut_t *fut_then(fut_t *f, fut_then_fn on_value, void *arg)
{
    handlers_t h = {"fut_then", on_value, NULL, NULL, arg, NULL};
    if (!on_value)
        return refuse(f, &h, "on_value is NULL");
    return cont_new(FUT__KIND_THEN, NULL, f, &h);
}

fut_t *fut_catch(fut_t *f, fut_catch_fn on_error, void *arg)
{
    handlers_t h = {"fut_catch", NULL, NULL, on_error, arg, NULL};
    if (!on_error)
        return refuse(f, &h, "on_error is NULL");
    return cont_new(FUT__KIND_THEN, NULL, f, &h);
}

fut_t *fut_then_catch(fut_t *f, fut_then_fn on_value, fut_catch_fn on_error,
                      void *arg)
{
    handlers_t h = {"fut_then_catch", on_value, NULL, on_error, arg, NULL};
    return cont_new(FUT__KIND_THEN, NULL, f, &h);
}

fut_t *fut_finally(fut_t *f, fut_finally_fn fn, void *arg)
{
    handlers_t h = {"fut_finally", NULL, fn, NULL, arg, NULL};
    if (!fn)
        return refuse(f, &h, "fn is NULL");
    return cont_new(FUT__KIND_FINALLY, NULL, f, &h);
}

fut_t *fut_then_on(fut_executor_t *ex, fut_t *f, fut_then_fn on_value,
                   void *arg)
{
    handlers_t h = {"fut_then_on", on_value, NULL, NULL, arg, NULL};
    if (!on_value || !ex)
        return refuse(f, &h, "executor or on_value is NULL");
    return cont_new(FUT__KIND_THEN, ex, f, &h);
}

fut_t *fut_catch_on(fut_executor_t *ex, fut_t *f, fut_catch_fn on_error,
                    void *arg)
{
    handlers_t h = {"fut_catch_on", NULL, NULL, on_error, arg, NULL};
    if (!on_error || !ex)
        return refuse(f, &h, "executor or on_error is NULL");
    return cont_new(FUT__KIND_THEN, ex, f, &h);
}

fut_t *fut_finally_on(fut_executor_t *ex, fut_t *f, fut_finally_fn fn,
                      void *arg)
{
    handlers_t h = {"fut_finally_on", NULL, fn, NULL, arg, NULL};
    if (!fn || !ex)
        return refuse(f, &h, "executor or fn is NULL");
    return cont_new(FUT__KIND_FINALLY, ex, f, &h);
}

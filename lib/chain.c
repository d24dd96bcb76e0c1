/*
 * chain.c - continuations (then, catch, then_catch, finally, the _on
 * forms) and adoption.
 *
 * A continuation is one allocation: the derived future (fut__cont_t) holds
 * the handlers, their argument and its destructor, and a reference to the
 * input.  It waits on the input's callback stack as a tagged entry, so
 * registering it allocates nothing more.  When the input settles, its
 * dispatcher calls fut__fire: the continuation runs inline on that thread
 * (inside the trampoline, so a long chain never grows the stack) or is
 * handed to its executor, which runs it through fut__task_run.
 *
 * Outcomes follow Promises/A+ 2.2: a value skips catch handlers and an
 * error skips then handlers, in which case the derived future borrows the
 * input's outcome (fut__settle_like) and keeps a reference to its owner.
 * A handler's own result is settled through the context, like a task's.
 *
 * Adoption (Promises/A+ 2.3): a future that adopts x is RUNNING with the
 * ADOPTING flag and waits on x's stack the same way, as a future entry;
 * fut__fire then settles it like x.
 *
 * The input reference of a pending continuation is read by other threads
 * (cancel, progress relay) while the dispatcher may consume it, so it is
 * guarded by swapping in FUT__BUSY while borrowed: a tiny per-object lock
 * that only those rare readers and the one consumer ever take.
 */
#include "ctx.h"
#include "executor.h"
#include "park.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>

/* --- the input reference ---------------------------------------------- */

fut_t *fut__cont_borrow_input(fut__cont_t *c)
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

void fut__cont_return_input(fut__cont_t *c, fut_t *in)
{
    atomic_store_explicit(&c->input, in, memory_order_release);
}

/* Takes the input reference for good. */
static fut_t *take_input(fut__cont_t *c)
{
    fut_t *in = fut__cont_borrow_input(c);
    fut__cont_return_input(c, NULL);
    return in;
}

/* --- running ---------------------------------------------------------- */

bool fut__cont_run(fut_t *d)
{
    if (!fut__transition(d, FUT_PENDING, FUT_RUNNING, 0, NULL))
        return false; /* cancelled meanwhile */
    fut__cont_t *c = fut__as_cont(d);
    fut_t *in = take_input(c);
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
    if (c->free_arg)
        c->free_arg(arg);
    if (handled)
        fut__ctx_settle(&ctx, value);
    else
        fut__settle_like(d, in);
    fut_release(in);
    return true;
}

/* A continuation that will never run: its executor refused it. */
static void reject_unstarted(fut_t *d, int code)
{
    if (!fut__claim(d))
        return;
    fut__cont_t *c = fut__as_cont(d);
    if (c->free_arg)
        c->free_arg(d->u.cont.arg);
    fut_release(take_input(c));
    fut__fail_static(d, code, NULL);
}

static void adopt_end(fut_t *f);

void fut__fire(fut_t *input, fut_t *d)
{
    uint32_t s = fut__load(d);
    if (s & FUT__ADOPTING) {
        FUT__ASSERT(d->u.adopt_src == input);
        adopt_end(d);
        fut__settle_like(d, input);
        fut_release(input); /* the reference adoption held */
    } else if ((s & (FUT__STATE_MASK | FUT__CLAIMED)) != FUT_PENDING) {
        /* Cancelled (or being cancelled by this very thread, which is
         * cancelling our input from inside fut_cancel(d)). */
    } else if (d->ex) {
        int rc = d->ex->ops->submit(d->ex, d, 0);
        if (rc == 0)
            return; /* the executor owns the stack's reference now */
        reject_unstarted(d, rc);
    } else {
        fut__cont_run(d);
    }
    fut_release(d);
}

void fut__cont_cancelled(fut_t *d)
{
    fut__cont_t *c = fut__as_cont(d);
    if (c->free_arg)
        c->free_arg(d->u.cont.arg);
    fut_t *in = take_input(c);
    if (in) {
        fut__cancel_unshared(in);
        fut_release(in);
    }
}

/* --- construction ----------------------------------------------------- */

static fut_t *cont_new(fut__kind_t kind, fut_executor_t *ex, fut_t *f,
                       fut_then_fn on_value, fut_finally_fn fin,
                       fut_catch_fn on_error, void *arg, fut_free_fn free_arg)
{
    if (!f) {
        if (free_arg)
            free_arg(arg);
        return fut_rejected(EINVAL, "fut_then: the input future is NULL");
    }
    fut_t *d = fut__new(kind, 2); /* the caller's and the input stack's */
    if (!d) {
        if (free_arg)
            free_arg(arg);
        fut_release(f);
        return &fut__enomem;
    }
    fut__cont_t *c = fut__as_cont(d);
    d->ex = ex;
    if (kind == FUT__KIND_FINALLY)
        d->u.cont.on_value.fin = fin;
    else
        d->u.cont.on_value.then = on_value;
    d->u.cont.on_error = on_error;
    d->u.cont.arg = arg;
    c->free_arg = free_arg;
    atomic_init(&c->input, f); /* consumes the caller's reference */
    if (!fut__cbs_push(f, (uintptr_t)d | FUT__TAG_FUTURE))
        fut__fire(f, d); /* f has settled and dispatched: run now */
    return d;
}

static fut_t *bad_handler(fut_t *f, const char *what)
{
    fut_release(f);
    return fut_rejected(EINVAL, what);
}

fut_t *fut_then_ex(fut_executor_t *ex, fut_t *f, fut_then_fn on_value,
                   fut_catch_fn on_error, void *arg, fut_free_fn free_arg)
{
    return cont_new(FUT__KIND_THEN, ex, f, on_value, NULL, on_error, arg,
                    free_arg);
}

fut_t *fut_then(fut_t *f, fut_then_fn on_value, void *arg)
{
    if (!on_value)
        return bad_handler(f, "fut_then: on_value is NULL");
    return fut_then_ex(NULL, f, on_value, NULL, arg, NULL);
}

fut_t *fut_catch(fut_t *f, fut_catch_fn on_error, void *arg)
{
    if (!on_error)
        return bad_handler(f, "fut_catch: on_error is NULL");
    return fut_then_ex(NULL, f, NULL, on_error, arg, NULL);
}

fut_t *fut_then_catch(fut_t *f, fut_then_fn on_value, fut_catch_fn on_error,
                      void *arg)
{
    return fut_then_ex(NULL, f, on_value, on_error, arg, NULL);
}

fut_t *fut_finally(fut_t *f, fut_finally_fn fn, void *arg)
{
    return fut_finally_on(NULL, f, fn, arg);
}

fut_t *fut_then_on(fut_executor_t *ex, fut_t *f, fut_then_fn on_value,
                   void *arg)
{
    if (!on_value || !ex)
        return bad_handler(f, "fut_then_on: executor or on_value is NULL");
    return fut_then_ex(ex, f, on_value, NULL, arg, NULL);
}

fut_t *fut_catch_on(fut_executor_t *ex, fut_t *f, fut_catch_fn on_error,
                    void *arg)
{
    if (!on_error || !ex)
        return bad_handler(f, "fut_catch_on: executor or on_error is NULL");
    return fut_then_ex(ex, f, NULL, on_error, arg, NULL);
}

fut_t *fut_finally_on(fut_executor_t *ex, fut_t *f, fut_finally_fn fn,
                      void *arg)
{
    if (!fn)
        return bad_handler(f, "fut_finally: fn is NULL");
    return cont_new(FUT__KIND_FINALLY, ex, f, NULL, fn, NULL, arg, NULL);
}

/* --- adoption --------------------------------------------------------- */

/* Adoption edges (who follows whom) change under one global lock, so that
 * a new adoption can walk the line it would join.  Adoption is rare next to
 * then and submit; the lock is never held while user code runs. */
static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;

/* Would f adopting x close a loop?  True if the line that x follows leads
 * back to f: through futures adopting others (their u.adopt_src, stable
 * under adopt_lock while ADOPTING is set) and continuations waiting for
 * their input (the guarded input field).  Each step holds a reference.
 * Called with adopt_lock held. */
static bool adopts_itself(fut_t *f, fut_t *x)
{
    fut_t *cur = fut_retain(x);
    bool loop = false;
    while (cur) {
        if (cur == f) {
            loop = true;
            break;
        }
        uint32_t s = fut__load(cur);
        fut__kind_t k = fut__kind(s);
        fut_t *next = NULL;
        if ((s & FUT__ADOPTING) && !fut__is_settled(s)) {
            next = fut_retain(cur->u.adopt_src);
        } else if ((k == FUT__KIND_THEN || k == FUT__KIND_FINALLY) &&
                   (s & FUT__STATE_MASK) == FUT_PENDING) {
            fut__cont_t *c = fut__as_cont(cur);
            fut_t *in = fut__cont_borrow_input(c);
            next = fut_retain(in);
            if (in)
                fut__cont_return_input(c, in);
        }
        fut_release(cur);
        cur = next;
    }
    fut_release(cur);
    return loop;
}

void fut__adopt_start(fut_t *f, fut_t *x)
{
    pthread_mutex_lock(&adopt_lock);
    if (adopts_itself(f, x)) {
        pthread_mutex_unlock(&adopt_lock);
        fut_release(x);
        fut__fail_static(f, EDEADLK, "a future cannot adopt itself");
        return;
    }
    f->u.adopt_src = x; /* the reference the caller gave us */
    FUT__ASSERT(
        fut__transition(f, FUT_RUNNING, FUT_RUNNING, FUT__ADOPTING, NULL));
    pthread_mutex_unlock(&adopt_lock);
    fut_retain(f); /* x's stack holds f until x settles */
    if (!fut__cbs_push(x, (uintptr_t)f | FUT__TAG_FUTURE))
        fut__fire(x, f);
}

/* The line f followed ends: clear ADOPTING under the lock before u is
 * overwritten with the result, so no walker reads it half-way. */
static void adopt_end(fut_t *f)
{
    pthread_mutex_lock(&adopt_lock);
    atomic_fetch_and_explicit(&f->state, ~(uint32_t)FUT__ADOPTING,
                              memory_order_relaxed);
    pthread_mutex_unlock(&adopt_lock);
}

/*
 * future.c - the future object: references, settling, the callback stack,
 * the per-thread trampoline, waiting and cancellation.
 *
 * The state machine and the ownership rules are in future.h.  This file
 * holds no locks.  Memory ordering: results are written before the release
 * CAS that publishes the terminal state and read after an acquire load that
 * sees it; callback nodes are published by a release CAS on `cbs` and taken
 * by an acquire exchange; the last reference is dropped with acq_rel so the
 * destroyer sees every write of every earlier holder.
 *
 * The trampoline (rule 6).  Dispatching callbacks may settle other futures
 * (a callback resolving a promise, later a continuation), whose dispatch
 * would recurse.  Instead each thread keeps a FIFO of futures waiting for
 * dispatch, linked through `next`; the outermost dispatch drains it in a
 * loop, so the stack depth stays constant however long the chain.  A thread
 * about to block drains its FIFO first (fut__trampoline_flush), so a
 * deferred dispatch can never be what it waits for.
 */
#include "future.h"

#include "executor.h"
#include "park.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

/* --- creation and references ------------------------------------------ */

fut_t *fut__new(fut__kind_t kind, uint32_t refs)
{
    fut_t *f = fut__alloc(sizeof *f);
    if (!f)
        return NULL;
    f->next = NULL;
    atomic_init(&f->state, (uint32_t)FUT_PENDING |
                               ((uint32_t)kind << FUT__KIND_SHIFT));
    atomic_init(&f->refs, refs);
    atomic_init(&f->cbs, FUT__CBS_EMPTY);
    f->ex = NULL;
    memset(&f->u, 0, sizeof f->u);
    atomic_init(&f->ext, NULL);
    return f;
}

fut_t *fut_retain(fut_t *f)
{
    if (f && !(atomic_load_explicit(&f->state, memory_order_relaxed) &
               FUT__IMMORTAL))
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

static void destroy(fut_t *f)
{
    uint32_t s = fut__load(f);
    /* Every holder that could settle a future owns a reference, so the
     * last one finds it settled and dispatched. */
    FUT__ASSERT(fut__is_settled(s) && !(s & FUT__CLAIMED));
    FUT__ASSERT(atomic_load_explicit(&f->cbs, memory_order_acquire) ==
                FUT__CBS_CLOSED);
    if ((s & FUT__STATE_MASK) == FUT_FULFILLED) {
        if (f->u.ok.free_value)
            f->u.ok.free_value(f->u.ok.value);
    } else if (s & FUT__MSG_OWNED) {
        fut__msg_free((char *)f->u.err.message);
    }
    fut__ext_t *ext = atomic_load_explicit(&f->ext, memory_order_acquire);
    if (ext)
        fut__ext_free(ext);
    fut__free(f, sizeof *f);
}

void fut_release(fut_t *f)
{
    if (!f || (atomic_load_explicit(&f->state, memory_order_relaxed) &
               FUT__IMMORTAL))
        return;
    uint32_t old = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
    FUT__ASSERT(old != 0);
    if (old == 1)
        destroy(f);
}

/* --- queries ---------------------------------------------------------- */

fut_state_t fut_state(const fut_t *f)
{
    if (!f)
        return FUT_REJECTED;
    return (fut_state_t)(fut__load(f) & FUT__STATE_MASK);
}

bool fut_done(const fut_t *f)
{
    return !f || fut__is_settled(fut__load(f));
}

const fut_error_t *fut_error(const fut_t *f)
{
    if (!f)
        return NULL;
    uint32_t s = fut__load(f);
    if (!fut__is_settled(s) || (s & FUT__STATE_MASK) == FUT_FULFILLED)
        return NULL;
    if (!(s & FUT__OBSERVED))
        atomic_fetch_or_explicit(&((fut_t *)f)->state, FUT__OBSERVED,
                                 memory_order_relaxed);
    return &f->u.err;
}

/* --- settling --------------------------------------------------------- */

bool fut__claim(fut_t *f)
{
    for (;;) {
        uint32_t seen;
        if (fut__transition(f, FUT_PENDING, FUT_PENDING | FUT__CLAIMED, 0,
                            &seen))
            return true;
        /* Another claimer is writing the result: a few stores, no user
         * code, so wait for it to publish. */
        if (!(seen & FUT__CLAIMED))
            return false;
        sched_yield();
    }
}

/* Moves a claimed or running future to `to`.  Only the claimer or the
 * running worker gets here, so the transition cannot fail. */
static void publish(fut_t *f, uint32_t to, uint32_t add)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    uint32_t from = (s & FUT__CLAIMED) ? (FUT_PENDING | FUT__CLAIMED)
                                       : (uint32_t)FUT_RUNNING;
    FUT__ASSERT(fut__transition(f, from, to, add, NULL));
    fut__dispatch(f);
}

void fut__fulfil(fut_t *f, void *value, fut_free_fn free_value)
{
    f->u.ok.value = value;
    f->u.ok.free_value = free_value;
    publish(f, FUT_FULFILLED, 0);
}

void fut__fail_static(fut_t *f, int code, const char *message)
{
    f->u.err.code = code;
    f->u.err.message = message ? message : fut__code_message(code);
    publish(f, code == ECANCELED ? FUT_CANCELLED : FUT_REJECTED, 0);
}

void fut__fail_owned(fut_t *f, int code, char *message)
{
    if (!message) {
        fut__fail_static(f, code, NULL);
        return;
    }
    f->u.err.code = code;
    f->u.err.message = message;
    publish(f, code == ECANCELED ? FUT_CANCELLED : FUT_REJECTED,
            FUT__MSG_OWNED);
}

bool fut__reject_unstarted(fut_t *f, int code, const char *message)
{
    if (!fut__claim(f))
        return false;
    void *arg = f->u.task.arg;
    fut_free_fn free_arg = f->u.task.free_arg;
    if (free_arg)
        free_arg(arg);
    fut__fail_static(f, code, message);
    return true;
}

/* --- cancellation ----------------------------------------------------- */

bool fut_cancel(fut_t *f)
{
    if (!f)
        return false;
    for (;;) {
        uint32_t s = fut__load(f);
        switch (s & FUT__STATE_MASK) {
        case FUT_CANCELLED:
            return true;
        case FUT_FULFILLED:
        case FUT_REJECTED:
            return false;
        case FUT_RUNNING:
            /* PEP 3148: a running call cannot be cancelled; ask it. */
            if (fut__transition(f, FUT_RUNNING, FUT_RUNNING, FUT__CANCEL_REQ,
                                NULL))
                return false;
            continue;
        default:
            break;
        }
        if (fut__kind(s) == FUT__KIND_TASK) {
            if (fut__reject_unstarted(f, ECANCELED, NULL))
                return true;
        } else if (fut__claim(f)) {
            fut__fail_static(f, ECANCELED, NULL);
            return true;
        }
        /* Lost a race with a worker starting it or a claimer settling it:
         * look again. */
    }
}

/* --- the callback stack ----------------------------------------------- */

/* Pushes node; false if the stack is closed (f settled and dispatched). */
static bool cbs_push(fut_t *f, fut__cb_t *node)
{
    uintptr_t head = atomic_load_explicit(&f->cbs, memory_order_relaxed);
    do {
        if (head == FUT__CBS_CLOSED)
            return false;
        node->next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &f->cbs, &head, (uintptr_t)node, memory_order_release,
        memory_order_relaxed));
    return true;
}

static void run_node(fut_t *f, fut__cb_t *node)
{
    node->fn(f, node->arg);
    if (node->free_arg)
        node->free_arg(node->arg);
    fut__free(node, sizeof *node);
}

/* Takes and runs every callback on settled f until the stack closes. */
static void run_callbacks(fut_t *f)
{
    for (;;) {
        uintptr_t list = atomic_exchange_explicit(&f->cbs, FUT__CBS_EMPTY,
                                                  memory_order_acquire);
        FUT__ASSERT(list != FUT__CBS_CLOSED);
        if (list == FUT__CBS_EMPTY) {
            uintptr_t expect = FUT__CBS_EMPTY;
            if (atomic_compare_exchange_strong_explicit(
                    &f->cbs, &expect, FUT__CBS_CLOSED, memory_order_acq_rel,
                    memory_order_acquire))
                return;
            continue; /* a callback arrived meanwhile */
        }
        /* Reverse the LIFO into registration order. */
        uintptr_t fifo = FUT__CBS_EMPTY;
        while (list != FUT__CBS_EMPTY) {
            fut__cb_t *node = (fut__cb_t *)list;
            list = node->next;
            node->next = fifo;
            fifo = (uintptr_t)node;
        }
        while (fifo != FUT__CBS_EMPTY) {
            fut__cb_t *node = (fut__cb_t *)fifo;
            fifo = node->next;
            run_node(f, node);
        }
    }
}

int fut_on_done_ex(fut_t *f, void (*cb)(fut_t *f, void *arg), void *arg,
                   fut_free_fn free_arg)
{
    if (!f || !cb) {
        if (free_arg)
            free_arg(arg);
        return EINVAL;
    }
    if (atomic_load_explicit(&f->cbs, memory_order_acquire) ==
        FUT__CBS_CLOSED) {
        cb(f, arg); /* already settled and dispatched: run at once */
        if (free_arg)
            free_arg(arg);
        return 0;
    }
    fut__cb_t *node = fut__alloc(sizeof *node);
    if (!node) {
        if (free_arg)
            free_arg(arg);
        return ENOMEM;
    }
    node->fn = cb;
    node->arg = arg;
    node->free_arg = free_arg;
    if (!cbs_push(f, node))
        run_node(f, node);
    return 0;
}

int fut_on_done(fut_t *f, void (*cb)(fut_t *f, void *arg), void *arg)
{
    return fut_on_done_ex(f, cb, arg, NULL);
}

/* --- the trampoline --------------------------------------------------- */

typedef struct trampoline {
    fut_t *head, *tail;
    bool draining;
} trampoline_t;

static _Thread_local trampoline_t tramp;
static _Thread_local fut_t *current_task;

fut_t *fut__current(void)
{
    return current_task;
}

fut_t *fut__set_current(fut_t *f)
{
    fut_t *old = current_task;
    current_task = f;
    return old;
}

static void drain(void)
{
    fut_t *f;
    while ((f = tramp.head) != NULL) {
        tramp.head = f->next;
        if (!tramp.head)
            tramp.tail = NULL;
        f->next = NULL;
        run_callbacks(f);
        fut_release(f);
    }
}

void fut__dispatch(fut_t *f)
{
    /* Nothing registered and nothing can be waiting: close directly. */
    uintptr_t expect = FUT__CBS_EMPTY;
    if (atomic_compare_exchange_strong_explicit(&f->cbs, &expect,
                                                FUT__CBS_CLOSED,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
        return;
    fut_retain(f);
    f->next = NULL;
    if (tramp.tail)
        tramp.tail->next = f;
    else
        tramp.head = f;
    tramp.tail = f;
    if (tramp.draining)
        return;
    tramp.draining = true;
    drain();
    tramp.draining = false;
}

void fut__trampoline_flush(void)
{
    /* Called from inside a callback that is about to block: run what this
     * thread deferred.  The outer drain loop continues where we stop. */
    if (tramp.head)
        drain();
}

/* --- waiting ---------------------------------------------------------- */

static void wake_cb(fut_t *f, void *arg)
{
    (void)f;
    fut__parker_unpark(arg);
}

static void wake_free(void *arg)
{
    fut__parker_release(arg);
}

int fut__arm_wake(fut_t *f, fut__parker_t *p)
{
    fut__cb_t *node = fut__alloc(sizeof *node);
    if (!node)
        return ENOMEM;
    fut__parker_retain(p);
    node->fn = wake_cb;
    node->arg = p;
    node->free_arg = wake_free;
    if (!cbs_push(f, node)) {
        run_node(f, node);
        return EALREADY;
    }
    return 0;
}

void fut__nap(int64_t *nap, int64_t deadline)
{
    int64_t ns = *nap;
    if (deadline >= 0) {
        int64_t left = deadline - fut__now();
        if (left < ns)
            ns = left > 0 ? left : 0;
    }
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
    if (*nap < 1000000)
        *nap *= 2;
}

int fut__block(fut_t *f, int64_t deadline)
{
    fut__parker_t *self = fut__parker_self();
    int rc = self ? fut__arm_wake(f, self) : ENOMEM;
    if (rc == EALREADY)
        return 0;
    if (rc == ENOMEM) {
        /* No memory for a wake callback: poll with a growing sleep rather
         * than fail the wait. */
        int64_t nap = 1000;
        while (!fut__is_settled(fut__load(f))) {
            if (fut__expired(deadline))
                return ETIMEDOUT;
            fut__nap(&nap, deadline);
        }
        return 0;
    }
    for (;;) {
        uint32_t seen = fut__parker_prepare(self);
        if (fut__is_settled(fut__load(f)))
            return 0;
        if (fut__expired(deadline))
            return ETIMEDOUT;
        fut__parker_park(self, seen, deadline);
    }
}

int fut_wait(fut_t *f, int64_t timeout)
{
    if (!f)
        return EINVAL;
    if (fut__is_settled(fut__load(f)))
        return 0;
    if (f == current_task)
        return EDEADLK;
    if (timeout == 0)
        return ETIMEDOUT;
    int64_t deadline = fut__deadline(timeout);
    fut__trampoline_flush();
    /* A pool worker runs its pool's queued work while it waits (rule 7). */
    int rc;
    if (fut__executor_help_wait(f, deadline, &rc))
        return rc;
    for (int i = 0; i < 64; i++) {
        if (fut__is_settled(fut__load(f)))
            return 0;
        fut__cpu_relax();
    }
    return fut__block(f, deadline);
}

int fut_get(fut_t *f, int64_t timeout, void **value)
{
    if (value)
        *value = NULL;
    int rc = fut_wait(f, timeout);
    if (rc)
        return rc;
    uint32_t s = fut__load(f);
    if ((s & FUT__STATE_MASK) == FUT_FULFILLED) {
        if (value)
            *value = f->u.ok.value;
        return 0;
    }
    if (!(s & FUT__OBSERVED))
        atomic_fetch_or_explicit(&f->state, FUT__OBSERVED,
                                 memory_order_relaxed);
    return f->u.err.code;
}

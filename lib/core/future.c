/*
 * future.c - the future object: creation, references and destruction,
 * settling, cancellation.
 *
 * The state machine and the ownership rules are in future.h.  This file
 * takes no lock.  Memory ordering: results are written before the release
 * CAS that publishes the terminal state and read after an acquire load that
 * sees it; the last reference is dropped with acq_rel so the destroyer sees
 * every write of every earlier holder.
 *
 * No recursion (rule 6).  Two operations could otherwise nest once per
 * future in a line of futures, and each is made iterative with a small
 * per-thread list that the outermost call drains:
 *   - destruction: freeing a future releases what it held (the owner of a
 *     borrowed result, a combinator's inputs through its value's
 *     destructor...), which may free another future.  A release that drops
 *     the last reference while this thread is already destroying links the
 *     future into the list through its own `next` (free at that point: no
 *     queue holds a future nobody references) instead of freeing it there.
 *   - cancellation: cancelling a pending derived future asks its inputs to
 *     cancel (fut__cancel_unshared), which may cancel their inputs in turn.
 *     Requests made inside a cancellation are queued in a growable array
 *     (the futures may still sit in executor queues, so their links are not
 *     free) and carried out by the outermost fut_cancel before it returns.
 */
#include "core/future.h"

#include "core/ext.h"
#include "util/msg.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* --- creation and references ------------------------------------------ */

fut_t *fut__new(unsigned kind, uint32_t refs)
{
    fut_t *f = fut__alloc(fut__kinds[kind]->size);
    if (!f)
        return NULL;
    /* A constant size, so the compiler clears with a few stores instead of
     * a string instruction (W2 spent most of fut__new starting one). */
    memset(f, 0, sizeof(struct fut));
    atomic_init(&f->state,
                (uint32_t)FUT_PENDING | ((uint32_t)kind << FUT__KIND_SHIFT));
    atomic_init(&f->refs, refs);
    atomic_init(&f->cbs, FUT__CBS_EMPTY);
    return f;
}

fut_t *fut_retain(fut_t *f)
{
    if (f && !(atomic_load_explicit(&f->state, memory_order_relaxed) &
               FUT__IMMORTAL))
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

/* Futures whose last reference went while this thread was destroying
 * another, linked through `next`. */
static _Thread_local struct {
    fut_t *head;
    bool active;
} doomed;

/* Frees f: its value or message, its extension block, the object, and its
 * reference to the owner of a borrowed result. */
static void destroy_one(fut_t *f)
{
    uint32_t s = fut__load(f);
    /* Every holder that could settle a future owns a reference, so the
     * last one finds it settled and dispatched. */
    FUT__ASSERT(fut__is_settled(s) && !(s & FUT__CLAIMED));
    FUT__ASSERT(fut__cbs_closed(f));
    unsigned st = s & FUT__STATE_MASK;
    if (st == FUT_REJECTED && !(s & FUT__OBSERVED))
        fut__report_unhandled(&f->u.err);
    fut_t *hold = f->u.hold;
    if (st == FUT_FULFILLED) {
        if (f->u.ok.free_value)
            f->u.ok.free_value(f->u.ok.value);
    } else if (s & FUT__MSG_OWNED) {
        fut__msg_free((char *)(uintptr_t)f->u.err.message);
    }
    if (s & FUT__HAS_EXT)
        fut__ext_free(f);
    fut__free(f, fut__ops(s)->size);
    fut_release(hold);
}

bool fut__destroy_hold(void)
{
    bool was = doomed.active;
    doomed.active = true;
    return was;
}

void fut__destroy_resume(bool held)
{
    if (held)
        return; /* an outer holder frees them */
    fut_t *f;
    while ((f = doomed.head) != NULL) {
        doomed.head = f->next;
        destroy_one(f);
    }
    doomed.active = false;
}

void fut_release(fut_t *f)
{
    if (!f ||
        (atomic_load_explicit(&f->state, memory_order_relaxed) & FUT__IMMORTAL))
        return;
    uint32_t old = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
    FUT__ASSERT(old != 0);
    if (old != 1)
        return;
    f->next = doomed.head;
    doomed.head = f;
    fut__destroy_resume(fut__destroy_hold());
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

fut_t *fut__input(fut_t *f)
{
    fut_t *(*input)(fut_t *) = fut__ops(fut__load(f))->input;
    return input ? input(f) : NULL;
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

bool fut__try_claim(fut_t *f)
{
    return fut__transition(f, FUT_PENDING, FUT_PENDING | FUT__CLAIMED, 0, NULL);
}

fut_t *fut__decide(fut_t *_Atomic *holder)
{
    fut_t *r = atomic_exchange_explicit(holder, NULL, memory_order_acq_rel);
    if (!r)
        return NULL;
    if (fut__try_claim(r))
        return r;
    fut_release(r);
    return NULL;
}

/* Moves a claimed or running future to `to`.  Only the claimer or the
 * runner gets here, so the transition cannot fail. */
static void publish(fut_t *f, uint32_t to, uint32_t add)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    uint32_t from = (s & FUT__CLAIMED) ? (FUT_PENDING | FUT__CLAIMED)
                                       : (uint32_t)FUT_RUNNING;
    FUT__MUST(fut__transition(f, from, to, add, NULL));
    /* An extension block flagged before the transition shows in this load
     * (both are RMWs of state); one flagged after sees f settled and is
     * closed by its creator (ext.h). */
    if (atomic_load_explicit(&f->state, memory_order_acquire) & FUT__HAS_EXT)
        fut__ext_close(f);
    fut__dispatch(f);
}

void fut__fulfil(fut_t *f, void *value, fut_free_fn free_value)
{
    f->u.ok.value = value;
    f->u.ok.free_value = free_value;
    f->u.hold = NULL;
    publish(f, FUT_FULFILLED, 0);
}

/* The one way to reject: a cancellation is ECANCELED in errno's domain. */
static void fail(fut_t *f, int domain, int code, const char *message,
                 bool owned)
{
    f->u.err.code = code;
    f->u.err.domain = domain;
    f->u.err.message = message;
    f->u.hold = NULL;
    bool cancel = domain == FUT_DOMAIN_ERRNO && code == ECANCELED;
    publish(f, cancel ? FUT_CANCELLED : FUT_REJECTED,
            owned ? FUT__MSG_OWNED : 0);
}

void fut__fail_static(fut_t *f, int code, const char *message)
{
    fail(f, FUT_DOMAIN_ERRNO, code, message ? message : fut__code_message(code),
         false);
}

void fut__fail_owned(fut_t *f, int code, char *message)
{
    fut__fail_in(f, FUT_DOMAIN_ERRNO, code, message);
}

void fut__fail_in(fut_t *f, int domain, int code, char *message)
{
    if (message)
        fail(f, domain, code, message, true);
    else
        fail(f, domain, code, fut__domain_message(domain, code), false);
}

void fut__settle_like(fut_t *f, fut_t *src)
{
    uint32_t s = fut__load(src);
    FUT__ASSERT(fut__is_settled(s));
    fut_t *owner = fut__owner(src);
    if ((s & FUT__STATE_MASK) == FUT_FULFILLED) {
        f->u.ok.value = src->u.ok.value;
        f->u.ok.free_value = NULL;
    } else {
        f->u.err = src->u.err;
        fut__observe(src);
    }
    /* The immortal ENOMEM future owns static data: nothing to hold. */
    f->u.hold = (fut__load(owner) & FUT__IMMORTAL) ? NULL : fut_retain(owner);
    publish(f, s & FUT__STATE_MASK, 0);
}

bool fut__reject_unstarted(fut_t *f, int code, const char *message)
{
    if (!fut__claim(f))
        return false;
    void (*discard)(fut_t *) = fut__ops(fut__load(f))->discard;
    FUT__ASSERT(discard != NULL); /* only queued kinds reach an executor */
    discard(f);
    fut__fail_static(f, code, message);
    return true;
}

int fut__run(fut_t *f)
{
    int (*run)(fut_t *) = fut__ops(fut__load(f))->run;
    FUT__ASSERT(run != NULL);
    return run(f);
}

/* --- cancellation ----------------------------------------------------- */

/* Requests queued inside a cancellation (each a reference), in an array
 * from malloc: runtime state, not an object of the user's. */
static _Thread_local struct {
    fut_t **buf;
    size_t len, cap;
    bool active;
} later;

static bool later_push(fut_t *f)
{
    if (later.len == later.cap) {
        size_t cap = later.cap ? later.cap * 2 : 16;
        fut_t **buf = realloc(later.buf, cap * sizeof *buf);
        if (!buf)
            return false;
        later.buf = buf;
        later.cap = cap;
    }
    later.buf[later.len++] = f;
    return true;
}

static bool cancel_one(fut_t *f)
{
    for (;;) {
        uint32_t s = fut__load(f);
        switch (s & FUT__STATE_MASK) {
        case FUT_CANCELLED:
            return true;
        case FUT_FULFILLED:
        case FUT_REJECTED:
            return false;
        case FUT_RUNNING:
            /* PEP 3148: a running call cannot be cancelled; ask it (once:
             * a kind that produces by other means hears of it). */
            if (fut__transition(f, FUT_RUNNING, FUT_RUNNING, FUT__CANCEL_REQ,
                                NULL)) {
                void (*asked)(fut_t *) = fut__ops(s)->cancel_requested;
                if (asked && !(s & FUT__CANCEL_REQ))
                    asked(f);
                return false;
            }
            continue;
        default:
            break;
        }
        if (fut__claim(f)) {
            void (*cancel)(fut_t *) = fut__ops(s)->cancel;
            if (cancel)
                cancel(f);
            fut__fail_static(f, ECANCELED, NULL);
            return true;
        }
        /* Lost a race with its producer starting it or a claimer settling
         * it: look again. */
    }
}

bool fut_cancel(fut_t *f)
{
    if (!f)
        return false;
    if (later.active)
        return cancel_one(f); /* an outer fut_cancel drains what it queues */
    later.active = true;
    bool cancelled = cancel_one(f);
    while (later.len > 0) {
        fut_t *in = later.buf[--later.len];
        cancel_one(in);
        fut_release(in);
    }
    later.active = false;
    /* Cascades are rare next to cancels: give the array back rather than
     * keep per-thread memory that a thread's exit would have to free. */
    free(later.buf);
    later.buf = NULL;
    later.cap = 0;
    return cancelled;
}

bool fut__may_suspend(void)
{
    return !doomed.active && !later.active && !fut__trampoline_busy();
}

void fut__cancel_unshared(fut_t *f)
{
    /* A pending future has exactly one producer reference (its queue, its
     * promise's writers, the stack of its input, its combinator or timer);
     * with ours that makes two.  Nobody can take a new reference without
     * holding one, so two means nobody else wants the result. */
    if (fut__is_settled(fut__load(f)) ||
        atomic_load_explicit(&f->refs, memory_order_acquire) != 2)
        return;
    if (later.active) {
        if (later_push(fut_retain(f)))
            return;
        fut_release(f);
    }
    /* Outside a cancellation, or no memory to queue it: cancel here (one
     * level deeper when out of memory, which is the rare case). */
    fut_cancel(f);
}

/*
 * future.c - the future object: references, settling, cancellation, the
 * callback stack and the per-thread trampoline.
 *
 * The state machine and the ownership rules are in future.h.  This file
 * holds no locks.  Memory ordering: results are written before the release
 * CAS that publishes the terminal state and read after an acquire load that
 * sees it; callback entries are published by a release CAS on `cbs` and
 * taken by an acquire exchange; the last reference is dropped with acq_rel
 * so the destroyer sees every write of every earlier holder.
 *
 * The trampoline (rule 6).  Dispatching callbacks settles other futures
 * (continuations, a callback resolving a promise), whose dispatch would
 * recurse.  Instead each thread keeps a FIFO of futures waiting for
 * dispatch (a ring of pointers, so a future's own link stays free for the
 * executor queue that may still hold it); the outermost dispatch drains it in a
 * loop, so the stack depth stays constant however long the chain.  A thread
 * about to block drains its FIFO first (fut__trampoline_flush), so a
 * deferred dispatch can never be what it waits for.  Destruction is
 * iterative for the same reason: a future that borrows its result keeps a
 * reference to the owner, and the last release walks that line in a loop.
 */
#include "future.h"

#include "executor.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* --- creation and references ------------------------------------------ */

fut_t *fut__new(fut__kind_t kind, uint32_t refs)
{
    size_t size = fut__size(kind);
    fut_t *f = fut__alloc(size);
    if (!f)
        return NULL;
    /* Constant sizes, so the compiler clears with a few stores instead of
     * a string instruction (W2 spent most of fut__new starting one). */
    if (size == sizeof(fut__cont_t))
        memset(f, 0, sizeof(fut__cont_t));
    else
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

/* --- unobserved rejections -------------------------------------------- */

static fut_unhandled_fn unhandled_hook;
static void *unhandled_arg;
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static int debug_env = -1; /* FUT_DEBUG=1: print unread rejections */

void fut_set_unhandled_hook(fut_unhandled_fn hook, void *arg)
{
    pthread_mutex_lock(&hook_lock);
    unhandled_hook = hook;
    unhandled_arg = arg;
    pthread_mutex_unlock(&hook_lock);
}

static void report_unhandled(const fut_error_t *err)
{
    pthread_mutex_lock(&hook_lock);
    fut_unhandled_fn hook = unhandled_hook;
    void *arg = unhandled_arg;
    if (debug_env < 0) {
        const char *e = getenv("FUT_DEBUG");
        debug_env = e && !strcmp(e, "1");
    }
    bool print = debug_env;
    pthread_mutex_unlock(&hook_lock);
    if (hook)
        hook(err, arg);
    else if (print)
        fprintf(stderr, "fut: rejection never retrieved: %d: %s\n", err->code,
                err->message);
}

void fut__observe(fut_t *f)
{
    if (!(atomic_load_explicit(&f->state, memory_order_relaxed) &
          FUT__OBSERVED))
        atomic_fetch_or_explicit(&f->state, FUT__OBSERVED,
                                 memory_order_relaxed);
}

/* --- destruction ------------------------------------------------------ */

/* Frees f and returns the future whose reference it held (`hold`) if that
 * reference was the last, so the caller can free it in turn. */
static fut_t *destroy_one(fut_t *f)
{
    uint32_t s = fut__load(f);
    /* Every holder that could settle a future owns a reference, so the
     * last one finds it settled and dispatched. */
    FUT__ASSERT(fut__is_settled(s) && !(s & FUT__CLAIMED));
    FUT__ASSERT(atomic_load_explicit(&f->cbs, memory_order_acquire) ==
                FUT__CBS_CLOSED);
    unsigned st = s & FUT__STATE_MASK;
    if (st == FUT_REJECTED && !(s & FUT__OBSERVED))
        report_unhandled(&f->u.err);
    fut_t *hold = f->u.hold;
    if (st == FUT_FULFILLED) {
        if (f->u.ok.free_value)
            f->u.ok.free_value(f->u.ok.value);
    } else if (s & FUT__MSG_OWNED) {
        fut__msg_free((char *)f->u.err.message);
    }
    if (s & FUT__HAS_EXT)
        fut__ext_free(f);
    fut__free(f, fut__size(fut__kind(s)));
    if (hold &&
        atomic_fetch_sub_explicit(&hold->refs, 1, memory_order_acq_rel) == 1)
        return hold;
    return NULL;
}

void fut_release(fut_t *f)
{
    if (!f ||
        (atomic_load_explicit(&f->state, memory_order_relaxed) & FUT__IMMORTAL))
        return;
    uint32_t old = atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
    FUT__ASSERT(old != 0);
    if (old == 1)
        while (f)
            f = destroy_one(f);
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
    fut__observe((fut_t *)f);
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
    /* An extension block flagged before the transition shows in this load
     * (both are RMWs of state); one flagged after sees f settled and is
     * closed by its creator (add_listener). */
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

void fut__fail_static(fut_t *f, int code, const char *message)
{
    f->u.err.code = code;
    f->u.err.message = message ? message : fut__code_message(code);
    f->u.hold = NULL;
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
    f->u.hold = NULL;
    publish(f, code == ECANCELED ? FUT_CANCELLED : FUT_REJECTED,
            FUT__MSG_OWNED);
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

/* Settles a claimed task that never ran: its free_arg, then the error. */
static void finish_unstarted(fut_t *f, int code, const char *message)
{
    void *arg = f->u.task.arg;
    fut_free_fn free_arg = f->u.task.free_arg;
    if (free_arg)
        free_arg(arg);
    fut__fail_static(f, code, message);
}

bool fut__reject_unstarted(fut_t *f, int code, const char *message)
{
    if (!fut__claim(f))
        return false;
    finish_unstarted(f, code, message);
    return true;
}

/* --- cancellation ----------------------------------------------------- */

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

void fut__cancel_unshared(fut_t *f)
{
    /* A pending future has exactly one producer reference (its queue, its
     * promise's writers, the stack of its input, its combinator or timer);
     * with ours that makes two.  Nobody can take a new reference without
     * holding one, so two means nobody else wants the result. */
    if (!fut__is_settled(fut__load(f)) &&
        atomic_load_explicit(&f->refs, memory_order_acquire) == 2)
        fut_cancel(f);
}

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
        fut__kind_t kind = fut__kind(s);
        if (kind == FUT__KIND_TASK) {
            if (fut__claim(f)) {
                /* A pending task is in its executor's queue. */
                if (f->ex && f->ex->ops->cancelled) {
                    atomic_fetch_or_explicit(&f->state, FUT__CANCEL_TOLD,
                                             memory_order_relaxed);
                    f->ex->ops->cancelled(f->ex);
                }
                finish_unstarted(f, ECANCELED, NULL);
                return true;
            }
        } else if (fut__claim(f)) {
            if (kind == FUT__KIND_THEN || kind == FUT__KIND_FINALLY)
                fut__cont_cancelled(f);
            else if (kind == FUT__KIND_WHEN)
                fut__when_cancelled(f);
            else if (kind == FUT__KIND_TIMER)
                fut__timer_cancelled(f);
            fut__fail_static(f, ECANCELED, NULL);
            return true;
        }
        /* Lost a race with a worker starting it or a claimer settling it:
         * look again. */
    }
}

/* --- the callback stack ----------------------------------------------- */

static uintptr_t *entry_link(uintptr_t e)
{
    if ((e & FUT__TAG_MASK) == FUT__TAG_FUTURE)
        return &((fut_t *)(e & ~(uintptr_t)FUT__TAG_MASK))->link;
    return &((fut__cb_t *)(e & ~(uintptr_t)FUT__TAG_MASK))->next;
}

bool fut__cbs_push(fut_t *f, uintptr_t entry)
{
    uintptr_t *link = entry_link(entry);
    uintptr_t head = atomic_load_explicit(&f->cbs, memory_order_relaxed);
    do {
        if (head == FUT__CBS_CLOSED)
            return false;
        *link = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &f->cbs, &head, entry, memory_order_release, memory_order_relaxed));
    return true;
}

static void run_entry(fut_t *f, uintptr_t e)
{
    void *p = (void *)(e & ~(uintptr_t)FUT__TAG_MASK);
    switch (e & FUT__TAG_MASK) {
    case FUT__TAG_FUTURE:
        fut__fire(f, p);
        break;
    case FUT__TAG_SLOT: {
        fut__cb_t *slot = p;
        slot->fn(f, slot); /* gets the slot itself; its owner frees it */
        break;
    }
    default: {
        fut__cb_t *node = p;
        node->fn(f, node->arg);
        if (node->free_arg)
            node->free_arg(node->arg);
        fut__free(node, sizeof *node);
        break;
    }
    }
}

/* Takes and runs every entry on settled f until the stack closes. */
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
            continue; /* an entry arrived meanwhile */
        }
        /* Reverse the LIFO into registration order. */
        uintptr_t fifo = FUT__CBS_EMPTY;
        while (list != FUT__CBS_EMPTY) {
            uintptr_t *link = entry_link(list);
            uintptr_t next = *link;
            *link = fifo;
            fifo = list;
            list = next;
        }
        while (fifo != FUT__CBS_EMPTY) {
            uintptr_t next = *entry_link(fifo);
            run_entry(f, fifo);
            fifo = next;
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
    if (!fut__cbs_push(f, (uintptr_t)node))
        run_entry(f, (uintptr_t)node);
    return 0;
}

int fut_on_done(fut_t *f, void (*cb)(fut_t *f, void *arg), void *arg)
{
    return fut_on_done_ex(f, cb, arg, NULL);
}

/* --- the trampoline --------------------------------------------------- */

/* The FIFO is a growable ring of pointers per thread (from malloc: it is
 * runtime state, freed at thread exit), so dispatch never touches a
 * future's own link, which may still hold it in an executor queue (a task
 * cancelled while queued is dispatched at once). */
typedef struct trampoline {
    fut_t **buf;
    size_t cap, head, len;
    bool draining;
} trampoline_t;

static _Thread_local trampoline_t tramp;
static _Thread_local fut_t *current_task;
static pthread_key_t tramp_key;
static pthread_once_t tramp_once = PTHREAD_ONCE_INIT;

static void tramp_thread_exit(void *buf)
{
    free(buf);
}

static void tramp_key_init(void)
{
    if (pthread_key_create(&tramp_key, tramp_thread_exit) != 0)
        abort(); /* no key: the process is out of a basic resource */
}

static bool tramp_push(fut_t *f)
{
    if (tramp.len == tramp.cap) {
        size_t cap = tramp.cap ? tramp.cap * 2 : 64;
        fut_t **buf = malloc(cap * sizeof *buf);
        if (!buf)
            return false;
        for (size_t i = 0; i < tramp.len; i++)
            buf[i] = tramp.buf[(tramp.head + i) % tramp.cap];
        if (!tramp.buf) {
            pthread_once(&tramp_once, tramp_key_init);
        }
        free(tramp.buf);
        tramp.buf = buf;
        tramp.cap = cap;
        tramp.head = 0;
        pthread_setspecific(tramp_key, buf);
    }
    tramp.buf[(tramp.head + tramp.len++) % tramp.cap] = f;
    return true;
}

static fut_t *tramp_pop(void)
{
    if (!tramp.len)
        return NULL;
    fut_t *f = tramp.buf[tramp.head];
    tramp.head = (tramp.head + 1) % tramp.cap;
    tramp.len--;
    return f;
}

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
    while ((f = tramp_pop()) != NULL) {
        run_callbacks(f);
        fut_release(f);
    }
}

void fut__dispatch(fut_t *f)
{
    /* Nothing registered: close directly, no trampoline needed. */
    uintptr_t expect = FUT__CBS_EMPTY;
    if (atomic_compare_exchange_strong_explicit(
            &f->cbs, &expect, FUT__CBS_CLOSED, memory_order_acq_rel,
            memory_order_acquire))
        return;
    fut_retain(f);
    if (!tramp_push(f)) {
        /* No memory to queue it: run it here, one level deeper. */
        run_callbacks(f);
        fut_release(f);
        return;
    }
    if (tramp.draining)
        return;
    tramp.draining = true;
    drain();
    tramp.draining = false;
}

void fut__trampoline_flush(void)
{
    /* Called by a thread about to block, possibly from inside a callback:
     * run what this thread deferred.  An outer drain loop continues where
     * this one stops. */
    if (tramp.len) {
        bool outer = tramp.draining;
        tramp.draining = true;
        drain();
        tramp.draining = outer;
    }
}

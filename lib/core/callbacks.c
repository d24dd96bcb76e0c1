/*
 * callbacks.c - the callback stack of a future, fut_on_done, and the
 * per-thread trampoline that runs dispatches without recursion.
 *
 * The stack's protocol is in future.h.  Memory ordering: entries are
 * published by a release CAS on `cbs` and taken by an acquire exchange, so
 * the dispatcher sees each entry's fields; the closing CAS is acq_rel so a
 * pusher that finds CLOSED sees the settled result.
 *
 * The trampoline (rule 6).  Dispatching callbacks settles other futures
 * (continuations, a callback resolving a promise), whose dispatch would
 * recurse.  Instead each thread keeps a FIFO of futures waiting for
 * dispatch (a ring of pointers, so a future's own link stays free for the
 * executor queue that may still hold it); the outermost dispatch drains it
 * in a loop, so the stack depth stays constant however long the chain.  A
 * thread about to block drains its FIFO first (fut__trampoline_flush), so
 * a deferred dispatch can never be what it waits for.
 */
#include "core/future.h"

#include "core/adopt.h"

#include <errno.h>
#include <stdlib.h>

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
    case FUT__TAG_FUTURE: {
        fut_t *d = p;
        uint32_t s = fut__load(d);
        if (s & FUT__ADOPTING)
            fut__adopt_settled(d, f);
        else
            fut__ops(s)->input_settled(d, f);
        break;
    }
    case FUT__TAG_SLOT:
    case FUT__TAG_WAKE: {
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

/* Takes and runs every entry on settled f until the stack closes.  After
 * each batch the close is tried first: a CAS from EMPTY that succeeds
 * unless an entry arrived meanwhile, so a batch costs one exchange and one
 * CAS, not an exchange more to find the stack empty. */
static void run_callbacks(fut_t *f)
{
    for (;;) {
        uintptr_t list = atomic_exchange_explicit(&f->cbs, FUT__CBS_EMPTY,
                                                  memory_order_acquire);
        FUT__ASSERT(list != FUT__CBS_CLOSED); /* only we close it */
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
        uintptr_t expect = FUT__CBS_EMPTY;
        if (atomic_compare_exchange_strong_explicit(
                &f->cbs, &expect, FUT__CBS_CLOSED, memory_order_acq_rel,
                memory_order_acquire))
            return;
        /* Entries arrived while the batch ran: take them too. */
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
    if (fut__cbs_closed(f)) {
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

/* The FIFO is a ring of pointers per thread, so dispatch never touches a
 * future's own link, which may still hold it in an executor queue (a task
 * cancelled while queued is dispatched at once).  The first TRAMP_INLINE
 * entries live in the thread's own storage; a longer burst grows into
 * malloc'd memory, which is freed as soon as the FIFO drains empty.  So a
 * thread holds no heap memory between dispatches, and a thread that lives
 * to the end of the process (an executor's worker) leaves nothing for a
 * leak checker to report. */
enum { TRAMP_INLINE = 32 };

typedef struct trampoline {
    fut_t **buf; /* inline, or malloc'd while a burst is queued */
    size_t cap, head, len;
    bool draining;
    fut_t *inline_buf[TRAMP_INLINE];
} trampoline_t;

static _Thread_local trampoline_t tramp;

static bool tramp_push(fut_t *f)
{
    if (!tramp.buf) {
        tramp.buf = tramp.inline_buf;
        tramp.cap = TRAMP_INLINE;
    }
    if (tramp.len == tramp.cap) {
        size_t cap = tramp.cap * 2;
        fut_t **buf = malloc(cap * sizeof *buf);
        if (!buf)
            return false;
        for (size_t i = 0; i < tramp.len; i++)
            buf[i] = tramp.buf[(tramp.head + i) % tramp.cap];
        if (tramp.buf != tramp.inline_buf)
            free(tramp.buf);
        tramp.buf = buf;
        tramp.cap = cap;
        tramp.head = 0;
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

/* The FIFO is empty: give a burst's heap buffer back. */
static void tramp_shrink(void)
{
    if (tramp.buf && tramp.buf != tramp.inline_buf) {
        free(tramp.buf);
        tramp.buf = tramp.inline_buf;
        tramp.cap = TRAMP_INLINE;
    }
    tramp.head = 0;
}

bool fut__trampoline_busy(void)
{
    return tramp.draining;
}

static void drain(void)
{
    fut_t *f;
    while ((f = tramp_pop()) != NULL) {
        run_callbacks(f);
        fut_release(f);
    }
    tramp_shrink();
}

/* True if the stack holds exactly one entry, a wake (the load that read
 * head acquired its push, so its link is visible). */
static bool lone_wake(uintptr_t head)
{
    return (head & FUT__TAG_MASK) == FUT__TAG_WAKE &&
           ((fut__cb_t *)(head & ~(uintptr_t)FUT__TAG_MASK))->next ==
               FUT__CBS_EMPTY;
}

void fut__dispatch(fut_t *f)
{
    /* Nothing registered, or one wake outside any dispatch: close directly
     * (a load first: with other entries waiting, the CAS would fail, a
     * locked instruction for nothing), then run the wake, if any, as the
     * outermost dispatch would. */
    uintptr_t head = atomic_load_explicit(&f->cbs, memory_order_acquire);
    bool closed =
        (head == FUT__CBS_EMPTY || (!tramp.draining && lone_wake(head))) &&
        atomic_compare_exchange_strong_explicit(&f->cbs, &head, FUT__CBS_CLOSED,
                                                memory_order_acq_rel,
                                                memory_order_acquire);
    if (closed && head == FUT__CBS_EMPTY)
        return;
    if (!closed && tramp.draining) {
        fut_retain(f); /* the FIFO's: the settler may let go before it runs */
        if (!tramp_push(f)) {
            /* No memory to queue it: run it here, one level deeper. */
            run_callbacks(f);
            fut_release(f);
        }
        return;
    }
    /* The outermost dispatch runs f's callbacks at once, before what they
     * queue: the FIFO is empty, so that is its order anyway, and f needs no
     * reference of the FIFO's, since whoever settled it holds one until
     * this returns (a resolver its promise, a worker its task, a
     * continuation the stack's). */
    tramp.draining = true;
    if (closed)
        run_entry(f, head); /* the lone wake */
    else
        run_callbacks(f);
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

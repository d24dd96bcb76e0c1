/*
 * timer.c - timers (fut_delay_on, fut_within_on): one timer thread,
 * started on first use, sleeping on a binary min-heap of deadlines
 * (CLOCK_MONOTONIC).  The timer thread runs no user code: at a deadline it
 * hands the timer's future to the timer's executor, which settles it there
 * (the kind's run operation), so callbacks and continuations run on that
 * executor's threads and a handler that blocks delays no other timer.  The
 * default forms (fut_delay, fut_within) name fut's own timer executor
 * (exec/timers.c); only when no executor can take it (none could be made,
 * or its bounded queue is full) does the timer thread settle it itself.
 *
 * A timer entry decides its result future R the way a combinator does
 * (combine.c): it holds one reference to R in `result`, and whoever takes
 * it with an atomic exchange decides R: for fut_within the input settling
 * first (it claims and settles R at once), or the timer thread at the
 * deadline (it hands R, still pending, to the executor, whose run claims
 * and settles it); fut_cancel may claim R first, and then the others let
 * go.  Entry references: one while it is in the heap (at the deadline it
 * goes with R to the executor), one for the input's slot (fut_within), one
 * owned by R while R is pending (R->u.pending; R->aux also names the entry,
 * for the executor) and taken over by whoever settles R.  The last one
 * frees the entry, its input reference and its executor reference.
 *
 * Lock order: `lock` guards the heap and each entry's `index`; no user code
 * and no other lock of fut runs under it.
 *
 * Fork: the child has no timer thread; the handlers below keep the heap
 * consistent across fork() and the child starts a new thread on next use,
 * so pending timers still fire there.
 */
#include "feat/timer.h"

#include "core/exec.h"
#include "util/park.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NOT_QUEUED UINT32_MAX

typedef struct timer {
    int64_t deadline;
    uint32_t index; /* position in the heap, NOT_QUEUED when not in it */
    _Atomic uint32_t refs;
    fut_t *_Atomic result;
    fut_t *input;       /* fut_within: the input (a reference); else NULL */
    fut_executor_t *ex; /* settles R at the deadline (a reference), or NULL */
    fut__cb_t slot;     /* fut_within: on the input's callback stack */
} entry_t;

_Static_assert(sizeof(entry_t) == FUT__CLASS_LARGE,
               "timer entries are cached by the allocator");

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wakeup, quiet;
static uint64_t flush_asked, flushed; /* quiesce requests, and served */
static entry_t **heap;
static size_t heap_len, heap_cap;
static bool thread_running, stopping;
static pthread_t timer_thread;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* --- the heap (lock held) --------------------------------------------- */

static void heap_set(size_t i, entry_t *t)
{
    heap[i] = t;
    t->index = (uint32_t)i;
}

static void sift_up(size_t i)
{
    entry_t *t = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent]->deadline <= t->deadline)
            break;
        heap_set(i, heap[parent]);
        i = parent;
    }
    heap_set(i, t);
}

static void sift_down(size_t i)
{
    entry_t *t = heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_len)
            break;
        if (c + 1 < heap_len && heap[c + 1]->deadline < heap[c]->deadline)
            c++;
        if (t->deadline <= heap[c]->deadline)
            break;
        heap_set(i, heap[c]);
        i = c;
    }
    heap_set(i, t);
}

static int heap_push(entry_t *t)
{
    if (heap_len == heap_cap) {
        size_t cap = heap_cap ? heap_cap * 2 : 64;
        /* Runtime state of the process, not an object of the user's:
         * from malloc, so that no installed allocator is left holding it. */
        entry_t **h = realloc(heap, cap * sizeof *h);
        if (!h)
            return ENOMEM;
        heap = h;
        heap_cap = cap;
    }
    heap[heap_len] = t;
    t->index = (uint32_t)heap_len++;
    sift_up(t->index);
    return 0;
}

static void heap_remove(entry_t *t)
{
    size_t i = t->index;
    t->index = NOT_QUEUED;
    entry_t *last = heap[--heap_len];
    if (i == heap_len)
        return;
    heap_set(i, last);
    sift_down(i);
    sift_up(last->index);
}

/* --- entries ---------------------------------------------------------- */

static void timer_release(entry_t *t)
{
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    fut_release(t->input);
    fut__exec_release(t->ex);
    fut__free(t, sizeof *t);
}

/* Removes t from the heap if it is still there; true if it was (the
 * caller then owns the heap's reference). */
static bool unqueue(entry_t *t)
{
    pthread_mutex_lock(&lock);
    bool queued = t->index != NOT_QUEUED;
    if (queued)
        heap_remove(t);
    pthread_mutex_unlock(&lock);
    return queued;
}

/* Settles R at its deadline, unless fut_cancel claimed it first: the
 * kind's run operation, on the timer's executor (or, failing that, on the
 * timer thread).  Carries the heap's entry reference, which it drops. */
static int timer_run(fut_t *r)
{
    entry_t *t = r->aux;
    bool ran = fut__try_claim(r);
    if (ran) {
        if (t->input)
            fut__fail_static(r, ETIMEDOUT, "timed out");
        else
            fut__fulfil(r, NULL, NULL);
        timer_release(t); /* R's reference, which settling takes over */
        if (t->input)
            fut_cancel(t->input); /* asyncio wait_for: cancel the inner */
    }
    timer_release(t); /* the heap's */
    return ran ? FUT__RAN : FUT__NOT_RUN;
}

/* The executor will never run R (shut down): it rejects R with its code. */
static void timer_discard(fut_t *r)
{
    entry_t *t = r->aux;
    timer_release(t); /* R's */
    timer_release(t); /* the heap's */
}

/* At the deadline (timer thread, holding the heap's reference): hands R,
 * with the entry's reference to it, to the executor. */
static void expire(entry_t *t)
{
    fut_t *r = atomic_exchange_explicit(&t->result, NULL, memory_order_acq_rel);
    if (!r) {
        timer_release(t); /* decided already: cancelled, or input settled */
        return;
    }
    if (t->ex) {
        /* A handler may block: the executor may compensate. */
        atomic_fetch_or_explicit(&r->state, FUT__BLOCKING,
                                 memory_order_relaxed);
        int rc = t->ex->ops->submit(t->ex, r, FUT_NOWAIT);
        if (rc == 0)
            return; /* the executor owns r's reference now */
        if (rc != EAGAIN) {
            fut__reject_unstarted(r, rc, NULL);
            fut_release(r);
            return;
        }
    }
    timer_run(r); /* no executor, or its queue is full: here */
    fut_release(r);
}

/* --- the timer thread ------------------------------------------------- */

static void *timer_main(void *arg)
{
    (void)arg;
    fut__thread_name("fut-clock");
    pthread_mutex_lock(&lock);
    for (;;) {
        /* The loop always starts with the lock held. */
        if (stopping)
            break;
        if (flushed < flush_asked) {
            /* fut_set_allocator waits (quiesce): nothing is firing here,
             * so what this thread freed can go to the depot. */
            uint64_t asked = flush_asked;
            pthread_mutex_unlock(&lock);
            fut__alloc_flush();
            pthread_mutex_lock(&lock);
            flushed = asked;
            pthread_cond_broadcast(&quiet);
            continue;
        }
        if (heap_len == 0) {
            pthread_cond_wait(&wakeup, &lock);
            continue;
        }
        int64_t now = fut__now(), due = heap[0]->deadline;
        if (due > now) {
            struct timespec ts = {(time_t)(due / 1000000000),
                                  (long)(due % 1000000000)};
            pthread_cond_timedwait(&wakeup, &lock, &ts);
            continue;
        }
        entry_t *t = heap[0];
        heap_remove(t);
        pthread_mutex_unlock(&lock);
        expire(t);
        fut__trampoline_flush();
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Before fut_set_allocator switches allocators: waits until the timer
 * thread is between firings and has handed what it freed to the depot, so
 * that no block of the old allocator stays in its cache and none is freed
 * by it later (it never exits).  On the timer thread itself (a callback
 * that switches allocators) it flushes its own cache. */
static void timer_quiesce(void)
{
    pthread_mutex_lock(&lock);
    bool self = thread_running && pthread_equal(timer_thread, pthread_self());
    uint64_t asked = ++flush_asked;
    pthread_cond_signal(&wakeup);
    while (!self && thread_running && !stopping && flushed < asked)
        pthread_cond_wait(&quiet, &lock);
    pthread_mutex_unlock(&lock);
    if (self)
        fut__alloc_flush();
}

/* At exit the thread is stopped and joined, so that leak checkers see a
 * clean process; timers still pending then never fire. */
static void stop_at_exit(void)
{
    pthread_mutex_lock(&lock);
    bool join = thread_running && !pthread_equal(timer_thread, pthread_self());
    stopping = true;
    pthread_cond_signal(&wakeup);
    pthread_cond_broadcast(&quiet);
    pthread_mutex_unlock(&lock);
    if (join)
        pthread_join(timer_thread, NULL);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

static void fork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&wakeup, &a);
    pthread_condattr_destroy(&a);
    pthread_cond_init(&quiet, NULL);
    thread_running = false;
    flushed = flush_asked;
}

static void timer_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&wakeup, &a);
    pthread_condattr_destroy(&a);
    pthread_cond_init(&quiet, NULL);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    fut__alloc_on_switch(timer_quiesce);
    atexit(stop_at_exit);
}

/* Queues t (lock not held); starts the thread on first use. */
static int schedule(entry_t *t)
{
    pthread_once(&once, timer_init);
    pthread_mutex_lock(&lock);
    int rc = 0;
    if (stopping) {
        rc = ESHUTDOWN; /* the process is exiting */
    } else if (!thread_running) {
        rc = pthread_create(&timer_thread, NULL, timer_main, NULL);
        thread_running = rc == 0;
    }
    if (rc == 0)
        rc = heap_push(t);
    if (rc == 0 && t->index == 0)
        pthread_cond_signal(&wakeup); /* a new earliest deadline */
    pthread_mutex_unlock(&lock);
    return rc;
}

/* --- the API ---------------------------------------------------------- */

static void timer_cancel(fut_t *r)
{
    /* r is claimed by fut_cancel: its entry reference is ours now. */
    entry_t *t = r->u.pending;
    fut_release(
        atomic_exchange_explicit(&t->result, NULL, memory_order_acq_rel));
    if (unqueue(t))
        timer_release(t);
    if (t->input)
        fut__cancel_unshared(t->input);
    timer_release(t);
}

const fut__kind_ops_t fut__timer_kind = {
    .name = "timer",
    .size = sizeof(struct fut),
    .run = timer_run,
    .cancel = timer_cancel,
    .discard = timer_discard,
};

static void input_settled(fut_t *in, void *node)
{
    entry_t *t = (entry_t *)(void *)((char *)node - offsetof(entry_t, slot));
    fut_t *r = fut__decide(&t->result);
    if (r) {
        fut__settle_like(r, in);
        timer_release(t); /* R's reference */
        fut_release(r);
    }
    if (unqueue(t))
        timer_release(t);
    timer_release(t); /* the slot's */
}

/* A timer future: R with an entry holding `refs` references. */
fut_t *fut__timer_new(fut_executor_t *ex, int64_t ns, fut_t *input)
{
    entry_t *t = fut__alloc(sizeof *t);
    fut_t *r = t ? fut__new(FUT__KIND_TIMER, 2) : NULL;
    if (!r) {
        fut__free(t, sizeof *t);
        fut_release(input);
        return &fut__enomem;
    }
    memset(t, 0, sizeof *t);
    t->deadline = fut__deadline(ns < 0 ? 0 : ns);
    t->index = NOT_QUEUED;
    t->input = input;
    t->ex = fut__exec_retain(ex);
    atomic_init(&t->refs, input ? 3u : 2u);
    atomic_init(&t->result, r);
    r->u.pending = t;
    r->aux = t;
    if (input) {
        /* The input first: one that has settled already decides R now,
         * before any timer could beat it. */
        t->slot.fn = input_settled;
        t->slot.arg = t;
        if (!fut__cbs_push(input, (uintptr_t)&t->slot | FUT__TAG_SLOT))
            input_settled(input, &t->slot);
        if (!atomic_load_explicit(&t->result, memory_order_acquire)) {
            timer_release(t); /* the heap's, never taken */
            return r;
        }
    }
    int rc = schedule(t);
    if (rc) {
        /* Not queued: settle R with the error ourselves, unless the input
         * (or a cancel) decided it meanwhile. */
        timer_release(t); /* the heap's, never taken */
        fut_t *mine = fut__decide(&t->result);
        if (mine) {
            fut__fail_static(mine, rc, "fut: the timer could not be scheduled");
            timer_release(t);  /* R's */
            fut_release(mine); /* the entry's reference to R */
        }
    }
    return r;
}

fut_t *fut_delay_on(fut_executor_t *ex, int64_t ns)
{
    if (!ex)
        return fut_rejected(EINVAL, "fut_delay_on: the executor is NULL");
    return fut__timer_new(ex, ns, NULL);
}

fut_t *fut_within_on(fut_executor_t *ex, fut_t *f, int64_t ns)
{
    if (!f || !ex) {
        fut_release(f);
        return fut_rejected(EINVAL,
                            "fut_within_on: the executor or future is NULL");
    }
    return fut__timer_new(ex, ns, f);
}

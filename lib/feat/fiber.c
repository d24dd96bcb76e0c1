/*
 * fiber.c - fibers: tasks that suspend on a future (fut_await) instead of
 * blocking their thread.
 *
 * A fiber is a future of kind FIBER whose object also holds the fiber:
 * its function, its stack (util/stack.h) and its saved context
 * (util/fctx.h).  Its executor runs it like a task, through the kind's run
 * operation: the first run takes a stack and switches onto it; fut_await
 * on a pending future registers a wake callback and switches back to the
 * worker, whose run returns FUT__SUSPENDED; the wake callback queues the
 * fiber on its executor again, and the next run (on any worker of that
 * executor) switches back in.  When the function returns, the fiber
 * settles its future on its own stack, then switches back for good and the
 * worker gives the stack back.
 *
 * The wake word.  A wake may come before the fiber has left its stack (the
 * awaited future settles at once, on another thread): resuming it then
 * would put two threads on one stack.  So a wake and the switch-out
 * handshake on one atomic word: the waker sets WOKEN and queues the fiber
 * only if OUT was set; the worker, once back on its own stack, sets OUT and
 * resumes the fiber itself if WOKEN was set.  Exactly one of them carries
 * on.  The word also holds the await's number, so that a late wake from an
 * earlier await (its timer, its future) cannot wake a later one.
 *
 * References.  Whoever runs a fiber holds a reference to it (the queue's),
 * and so does every wake registered for it, since a wake may fire long
 * after the fiber finished.  The wake in the fiber's own slot (the common
 * await) takes none: the run's reference goes to it, and the word's SLOT
 * bit says so.  Suspending then drops no reference, and the slot's wake
 * hands the reference to the queue: a message between two fibers costs no
 * reference count of the fiber.  The slot's winning wake clears SLOT as it
 * sets WOKEN; another wake leaves it set, so the thread that carries on
 * knows the slot kept the reference and takes one of its own, and the slot
 * drops the one it kept when it fires, late, without waking anything.
 * Measured, a ping-pong of two fibers (W8switch): 6.86 -> 7.27 M
 * switches/s.
 *
 * Hand-off.  A fiber that suspends while its worker's next task is a fiber
 * woken again (the common case: it woke that fiber, then awaits its reply)
 * switches straight to it instead of to the worker, which would only take
 * it and switch to it (the executor's take_resume, core/exec.h).  The
 * fiber arriving finishes the other's switch-out (sets OUT, or requeues it
 * if it was woken meanwhile), since only then is that stack free; it
 * returns to the worker the other would have returned to, and the worker's
 * run follows it (switch_in returns whichever fiber comes back).  Measured,
 * a ping-pong of two fibers (W8switch): 6.98 -> 8.98 M switches/s.
 *
 * Thread-local state.  A fiber may resume on another worker: errno and any
 * thread-local of the program belong to the thread, not the fiber.  fut's
 * own per-thread state is safe: the current future is saved and restored
 * around each switch, and a fiber does not suspend from inside a dispatch,
 * a destruction, a cancellation or a progress relay of its thread
 * (fut__may_suspend): fut_await then blocks like fut_get.
 *
 * Sanitizers: AddressSanitizer is told of every switch (start/finish
 * switch fiber), ThreadSanitizer gets a fiber per fiber and a switch
 * before each jump, valgrind knows the stacks (util/stack.c).
 */
#include "feat/fiber.h"

#include "core/ctx.h"
#include "core/exec.h"
#include "feat/progress.h"
#include "feat/timer.h"
#include "util/fctx.h"
#include "util/stack.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define FIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FIBER_TSAN 1
#endif
#endif

#ifdef FIBER_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old, size_t *size_old);
#endif
#ifdef FIBER_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

enum { OUT = 1u, WOKEN = 2u, SLOT = 4u, GEN_SHIFT = 3 };

typedef struct fiber {
    struct fut f; /* first: the fiber is its future */
    fut_fn fn;
    void *arg;
    fut_free_fn free_arg;
    size_t stack_size;
    fut__stack_t stack;
    fut__fctx_t ctx;   /* the fiber, while it is switched out */
    fut__fctx_t *back; /* the worker to return to, while it runs */
    _Atomic uint32_t wake;
    uint32_t gen; /* the current await's number */
    /* The wake of an await on its future, without an allocation: pushed
     * on the awaited future's callback stack, it fires once, for await
     * number slot_gen.  Busy from its push until it has fired: an await
     * woken otherwise (cancel, timeout) may leave it on a future that
     * settles later, so the next await then allocates a wake instead. */
    fut__cb_t slot;
    uint32_t slot_gen;
    _Atomic bool slot_busy;
    bool finished, yielding;
#ifdef FIBER_ASAN
    void *fake;              /* the fiber's fake stack while switched out */
    const void *back_bottom; /* the worker's stack, to switch back to */
    size_t back_size;
#endif
#ifdef FIBER_TSAN
    void *tsan, *tsan_back;
#endif
} fiber_t;

static _Thread_local fiber_t *running;
/* The fiber that switched straight to the one arriving (see Hand-off):
 * its switch-out is finished on arrival, off its stack. */
static _Thread_local fiber_t *handed_from;

static fiber_t *as_fiber(fut_t *f)
{
    return (fiber_t *)f;
}

/* --- switching -------------------------------------------------------- */

/* Worker -> fiber; returns the fiber that switches back: fb, or the last
 * of the fibers it handed the thread to (suspend). */
static fiber_t *switch_in(fiber_t *fb)
{
    fut__fctx_t here;
    fb->back = &here;
    fiber_t *outer = running;
    fut_t *outer_current = fut__current();
    running = fb;
#ifdef FIBER_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, fb->stack.base, fb->stack.size);
#endif
#ifdef FIBER_TSAN
    fb->tsan_back = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(fb->tsan, 0);
#endif
    fut__fctx_switch(&here, &fb->ctx);
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    fiber_t *back = running;
    running = outer;
    fut__set_current(outer_current);
    return back;
}

static bool went_out(fiber_t *fb);
static void requeue(fiber_t *fb, unsigned flags, bool ref);

/* On the fiber: just arrived (first entry, or a resume).  Never inlined:
 * a fiber may resume on another worker than the one it left, and a
 * compiler may keep a thread-local variable's address across the call
 * that switched (it assumes a call returns on the thread that made it).
 * Inlined into suspend (clang, the ThreadSanitizer build), this read and
 * cleared the old worker's handed_from; out of line, it finds its own
 * thread's, and it is the only place a fiber touches this file's
 * thread-locals after a switch. */
__attribute__((noinline)) static void arrived(fiber_t *fb)
{
    fiber_t *from = handed_from;
#ifdef FIBER_ASAN
    /* Handed the thread by another fiber, its stack is the one left, but
     * the one to return to is still the worker's (set by suspend). */
    const void *left_bottom;
    size_t left_size;
    __sanitizer_finish_switch_fiber(fb->fake,
                                    from ? &left_bottom : &fb->back_bottom,
                                    from ? &left_size : &fb->back_size);
#endif
    fut__set_current(&fb->f); /* fut_wait's EDEADLK test, on this thread */
    if (from) {
        /* Off its stack now: finish its switch-out, as its worker would. */
        handed_from = NULL;
        if (!went_out(from))
            requeue(from, FUT__SUBMIT_RESUME, true); /* woken meanwhile */
    }
}

/* Fiber -> worker; returns when the fiber is resumed (unless it ended). */
static void switch_out(fiber_t *fb)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(fb->finished ? NULL : &fb->fake,
                                   fb->back_bottom, fb->back_size);
#endif
#ifdef FIBER_TSAN
    __tsan_switch_to_fiber(fb->tsan_back, 0);
#endif
    fut__fctx_switch(&fb->ctx, fb->back);
    arrived(fb);
}

/* --- running ---------------------------------------------------------- */

static void fiber_main(void *arg)
{
    fiber_t *fb = arg;
    arrived(fb);
    fut_ctx_t ctx = {.f = &fb->f};
    void *value = fb->fn(&ctx, fb->arg);
    fut__set_current(NULL);
    if (fb->free_arg)
        fb->free_arg(fb->arg);
    fut__ctx_settle(&ctx, value);
    fb->finished = true;
    switch_out(fb); /* for good */
    FUT__MUST(!"a finished fiber was resumed");
}

/* Queues fb again; ref: the caller's reference becomes the queue's. */
static void requeue(fiber_t *fb, unsigned flags, bool ref)
{
    fut_executor_t *ex = fb->f.ex;
    if (!ref)
        fut_retain(&fb->f); /* the queue's */
    if (ex->ops->submit(ex, &fb->f, flags) != 0) {
        /* Its executor shut down while it waited: it finishes here, on the
         * thread that woke it, rather than never. */
        fut__run_done(&fb->f, fut__run(&fb->f));
    }
}

static void release_stack(fiber_t *fb)
{
#ifdef FIBER_TSAN
    __tsan_destroy_fiber(fb->tsan);
#endif
    fut__stack_put(&fb->stack);
}

/* A run takes fb on again: OUT says otherwise to a fork child's reap
 * (fut__fiber_let_go).  A plain store: once OUT was set, the wake that
 * queued the fiber, or the one its worker saw, set WOKEN, and no other wake
 * writes the word until the next await. */
static void come_back(fiber_t *fb)
{
    uint32_t w = atomic_load_explicit(&fb->wake, memory_order_relaxed);
    if (w & OUT)
        atomic_store_explicit(&fb->wake, w & ~OUT, memory_order_relaxed);
}

static int fiber_run(fut_t *f)
{
    fiber_t *fb = as_fiber(f);
    uint32_t s = fut__load(f);
    if ((s & FUT__STATE_MASK) != FUT_PENDING &&
        (s & FUT__STATE_MASK) != FUT_RUNNING)
        return FUT__NOT_RUN; /* cancelled while queued, before it started */
    if ((s & FUT__STATE_MASK) == FUT_PENDING) {
        uint32_t seen;
        while (!fut__transition(f, FUT_PENDING, FUT_RUNNING, 0, &seen)) {
            if (!(seen & FUT__CLAIMED))
                return FUT__NOT_RUN; /* cancelled while queued */
            sched_yield();
        }
        if (!fut__stack_get(&fb->stack, fb->stack_size)) {
            if (fb->free_arg)
                fb->free_arg(fb->arg);
            fut__fail_static(f, ENOMEM, "fut_async: no memory for a stack");
            fut__exec_release(f->ex);
            return FUT__RAN;
        }
        fut__fctx_make(&fb->ctx, fb->stack.base, fb->stack.size, fiber_main,
                       fb);
#ifdef FIBER_TSAN
        fb->tsan = __tsan_create_fiber(0);
#endif
    }
    for (;;) {
        come_back(fb);
        /* What comes back may be another fiber fb handed the thread to:
         * the run is that one's now (run_one follows it too). */
        fb = switch_in(fb);
        f = &fb->f;
        if (fb->finished) {
            release_stack(fb);
            fut__exec_release(f->ex);
            return FUT__RAN;
        }
        if (fb->yielding) {
            fb->yielding = false;
            requeue(fb, FUT__SUBMIT_BACK, true); /* with the run's reference */
            return FUT__SUSPENDED;
        }
        if (went_out(fb))
            return FUT__SUSPENDED;
        /* Woken before it was out: carry on here. */
    }
}

/* fb, suspended, is off its stack: sets OUT, so that its wake queues it.
 * False if a wake came first: the caller carries it on and holds the
 * run's reference for it. */
static bool went_out(fiber_t *fb)
{
    uint32_t old =
        atomic_fetch_or_explicit(&fb->wake, OUT, memory_order_acq_rel);
    if (!(old & WOKEN)) {
        /* Its waker queues it again, with a reference of its own, or, if
         * it is the slot's, with the one the run gave it. */
        if (!(old & SLOT))
            fut_release(&fb->f);
        return true;
    }
    /* Another wake than the slot's left SLOT set: the slot keeps the
     * run's reference until it fires, so the run takes one more. */
    if (old & SLOT)
        fut_retain(&fb->f);
    return false;
}

/* What a wake did. */
enum {
    WAKE_LOST,   /* another await's, or woken already: nothing */
    WAKE_INSIDE, /* won before the fiber was out: its worker carries on */
    WAKE_QUEUED, /* queued the fiber (with the caller's reference, if ref) */
};

/* A wake for await number gen: queues the fiber if it is out, else leaves
 * WOKEN for its worker to see.  ref: the caller holds a reference to give
 * the queue.  clear: bits the winning wake clears (the slot's clears
 * SLOT). */
static int wake_ref(fiber_t *fb, uint32_t gen, bool ref, uint32_t clear)
{
    uint32_t old = atomic_load_explicit(&fb->wake, memory_order_acquire);
    for (;;) {
        if ((old >> GEN_SHIFT) != gen || (old & WOKEN))
            return WAKE_LOST;
        if (atomic_compare_exchange_weak_explicit(
                &fb->wake, &old, (old | WOKEN) & ~clear, memory_order_acq_rel,
                memory_order_acquire))
            break;
    }
    if (!(old & OUT))
        return WAKE_INSIDE;
    requeue(fb, FUT__SUBMIT_RESUME, ref);
    return WAKE_QUEUED;
}

static void wake(fiber_t *fb, uint32_t gen)
{
    (void)wake_ref(fb, gen, false, 0);
}

bool fut__fiber_resumable(fut_t *f)
{
    uint32_t s = fut__load(f);
    return fut__kind(s) == FUT__KIND_FIBER &&
           (s & FUT__STATE_MASK) == FUT_RUNNING && !(s & FUT__BLOCKING);
}

bool fut__fiber_let_go(fut_t *f)
{
    if (fut__kind(fut__load(f)) != FUT__KIND_FIBER)
        return false;
    return atomic_load_explicit(&as_fiber(f)->wake, memory_order_acquire) & OUT;
}

static void fiber_discard(fut_t *f)
{
    fiber_t *fb = as_fiber(f);
    if (fb->free_arg)
        fb->free_arg(fb->arg);
    fut__exec_release(f->ex);
}

static void fiber_cancel(fut_t *f)
{
    /* Cancelled before it started: its queue counts it like a task's. */
    if (f->ex->ops->cancelled) {
        atomic_fetch_or_explicit(&f->state, FUT__CANCEL_TOLD,
                                 memory_order_relaxed);
        f->ex->ops->cancelled(f->ex);
    }
    fiber_discard(f);
}

/* fut_cancel on a started fiber: its pending fut_await returns ECANCELED.
 * The caller of fut_cancel holds a reference, so the fiber is alive. */
static void fiber_cancel_requested(fut_t *f)
{
    fiber_t *fb = as_fiber(f);
    uint32_t w = atomic_load_explicit(&fb->wake, memory_order_acquire);
    wake(fb, w >> GEN_SHIFT);
}

const fut__kind_ops_t fut__fiber_kind = {
    .name = "fiber",
    .size = sizeof(fiber_t),
    .run = fiber_run,
    .cancel = fiber_cancel,
    .discard = fiber_discard,
    .cancel_requested = fiber_cancel_requested,
};

/* --- the API ---------------------------------------------------------- */

static void slot_fired(fut_t *f, void *node);

fut_t *fut_async_ex(fut_executor_t *ex, fut_fn fn, void *arg,
                    fut_free_fn free_arg, size_t stack_size)
{
    if (!ex || !fn) {
        if (free_arg)
            free_arg(arg);
        return fut_rejected(EINVAL, "fut_async: a NULL executor or fn");
    }
    fut_t *f = fut__new(FUT__KIND_FIBER, 2); /* the caller's, the queue's */
    if (!f) {
        if (free_arg)
            free_arg(arg);
        return &fut__enomem;
    }
    fiber_t *fb = as_fiber(f);
    memset((char *)fb + sizeof(struct fut), 0, sizeof *fb - sizeof(struct fut));
    fb->fn = fn;
    fb->arg = arg;
    fb->free_arg = free_arg;
    fb->slot.fn = slot_fired; /* set once: every await's slot runs it */
    fb->stack_size = stack_size        ? stack_size
                     : ex->fiber_stack ? ex->fiber_stack
                                       : FUT__STACK_DEFAULT;
    /* A reference to the executor for the fiber's life: a wake queues it
     * there again, however long after the user freed the executor. */
    f->ex = fut__exec_retain(ex);
    int rc = ex->ops->submit(ex, f, 0);
    if (rc != 0) {
        fut__reject_unstarted(f, rc, NULL);
        fut_release(f);
    }
    return f;
}

fut_t *fut_async(fut_executor_t *ex, fut_fn fn, void *arg)
{
    return fut_async_ex(ex, fn, arg, NULL, 0);
}

/* A wake callback of one await: on its timer, or on the awaited future
 * while the fiber's own slot is busy. */
typedef struct wake_arg {
    fiber_t *fb; /* a reference to its future */
    uint32_t gen;
} wake_arg_t;

/* Allocated in the smallest cached size (the allocator caches exact
 * sizes): an odd size would go to malloc on every await. */
_Static_assert(sizeof(wake_arg_t) <= FUT__CLASS_SMALL,
               "a wake fits the callback node's size");

static void wake_cb(fut_t *f, void *arg)
{
    (void)f;
    wake_arg_t *w = arg;
    wake(w->fb, w->gen);
}

static void wake_free(void *arg)
{
    wake_arg_t *w = arg;
    fut_release(&w->fb->f);
    fut__free(w, FUT__CLASS_SMALL);
}

/* The fiber's own slot fired: the awaited future settled.  The slot holds
 * the reference its await's run gave it (see References above). */
static void slot_fired(fut_t *f, void *node)
{
    (void)f;
    fiber_t *fb = (fiber_t *)(void *)((char *)node - offsetof(fiber_t, slot));
    uint32_t gen = fb->slot_gen;
    /* Free before the wake: once queued, the fiber may await again. */
    atomic_store_explicit(&fb->slot_busy, false, memory_order_release);
    /* The reference goes to the queue if the wake queues it, back to the
     * run if the wake won before the fiber was out (SLOT cleared: its
     * worker carries on with it); a late wake drops it. */
    if (wake_ref(fb, gen, true, SLOT) == WAKE_LOST)
        fut_release(&fb->f); /* last: fb may be gone after it */
}

/* Registers a wake of await gen on f: in the fiber's slot if slot (the
 * slot is free and the wake word has SLOT: the run's reference goes to
 * it), else allocated, with a reference of its own; false on ENOMEM. */
static bool arm(fiber_t *fb, uint32_t gen, fut_t *f, bool slot)
{
    if (slot) {
        atomic_store_explicit(&fb->slot_busy, true, memory_order_relaxed);
        fb->slot_gen = gen;
        if (!fut__cbs_push(f, (uintptr_t)&fb->slot | FUT__TAG_WAKE))
            slot_fired(f, &fb->slot); /* dispatched meanwhile */
        return true;
    }
    wake_arg_t *w = fut__alloc(FUT__CLASS_SMALL);
    if (!w)
        return false;
    w->fb = fb;
    w->gen = gen;
    fut_retain(&fb->f);
    return fut_on_done_ex(f, wake_cb, w, wake_free) == 0;
}

/* Fiber -> the next fiber its worker would run, if that is one woken
 * again (the executor's take_resume), else -> the worker; returns when fb
 * is resumed.  The hand-off skips a switch to the worker's stack and back
 * and the worker's run loop between two fibers that wake each other; the
 * next fiber, on arrival, finishes fb's switch-out (arrived). */
static void suspend(fiber_t *fb)
{
    fut_executor_t *ex = fb->f.ex;
    fut_t *n = ex->ops->take_resume && !(fut__load(&fb->f) & FUT__BLOCKING)
                   ? ex->ops->take_resume(ex, &fb->f)
                   : NULL;
    if (!n) {
        switch_out(fb);
        return;
    }
    fiber_t *nb = as_fiber(n);
    FUT__ASSERT(nb != fb);
    come_back(nb);
    nb->back = fb->back; /* the worker's, where the run returns */
#ifdef FIBER_ASAN
    nb->back_bottom = fb->back_bottom;
    nb->back_size = fb->back_size;
    __sanitizer_start_switch_fiber(&fb->fake, nb->stack.base, nb->stack.size);
#endif
#ifdef FIBER_TSAN
    nb->tsan_back = fb->tsan_back;
    __tsan_switch_to_fiber(nb->tsan, 0);
#endif
    handed_from = fb;
    running = nb;
    fut__fctx_switch(&fb->ctx, &nb->ctx);
    arrived(fb);
}

int fut_await(fut_t *f, int64_t timeout, void **value)
{
    fiber_t *fb = running;
    if (!fb || !f || timeout == 0 || fut_done(f) || !fut__may_suspend() ||
        fut__progress_busy())
        return fut_get(f, timeout, value);
    if (value)
        *value = NULL;
    if (f == &fb->f)
        return EDEADLK;
    uint32_t gen = ++fb->gen;
    /* The slot is free once its last wake fired (a timed-out await may
     * leave it on a future that settles later). */
    bool slot = !atomic_load_explicit(&fb->slot_busy, memory_order_acquire);
    atomic_store_explicit(&fb->wake, gen << GEN_SHIFT | (slot ? SLOT : 0),
                          memory_order_release);
    fut_t *timer = NULL;
    if (timeout > 0) {
        timer = fut__timer_new(fb->f.ex, timeout, NULL);
        if (!arm(fb, gen, timer, false)) {
            fut_cancel(timer);
            fut_release(timer);
            return fut_get(f, timeout, value); /* no memory: block */
        }
    }
    if (!arm(fb, gen, f, slot)) {
        if (timer) {
            fut_cancel(timer);
            fut_release(timer);
        }
        return fut_get(f, timeout, value);
    }
    /* A cancel asked before the await was armed. */
    if (fut__load(&fb->f) & FUT__CANCEL_REQ)
        wake(fb, gen);
    suspend(fb); /* back when woken */
    if (timer) {
        fut_cancel(timer);
        fut_release(timer);
    }
    if (fut_done(f))
        return fut_get(f, 0, value);
    if (fut__load(&fb->f) & FUT__CANCEL_REQ)
        return ECANCELED;
    return FUT_TIMEDOUT;
}

void fut_yield(void)
{
    fiber_t *fb = running;
    if (!fb || !fut__may_suspend() || fut__progress_busy()) {
        sched_yield();
        return;
    }
    fb->yielding = true;
    switch_out(fb);
}

bool fut_in_fiber(void)
{
    return running != NULL;
}

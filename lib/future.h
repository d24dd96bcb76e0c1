/*
 * future.h - the future object and its state machine (private).
 *
 * Nomenclature
 *   settle    move a future to FULFILLED, REJECTED or CANCELLED (terminal).
 *   claim     win the right to settle a future that is not running: a CAS
 *             from PENDING to PENDING|CLAIMED.  The claimer then writes the
 *             result fields and publishes the terminal state.
 *   dispatch  run the callbacks registered on a settled future, in the
 *             order they were registered, and close its callback stack.
 *
 * State machine (the low three bits of `state`; values match fut_state_t)
 *
 *                 claim (promise settle, cancel, failed submit)
 *      PENDING ---------> PENDING|CLAIMED ----publish----+
 *         |                                              |
 *         | worker starts the task (CAS)                 v
 *         +-------------> RUNNING --------publish---> FULFILLED
 *                           |  ^                      REJECTED
 *               fut_cancel  |  |                      CANCELLED
 *                           +--+ sets CANCEL_REQ         (terminal)
 *
 *   Terminal states never change.  An illegal transition is a bug and
 *   aborts through FUT__ASSERT.  Every transition goes through
 *   fut__transition(): a load, then a CAS that keeps the flag bits.
 *
 * Ownership of the fields, by state
 *   PENDING           u.task belongs to the future (fn, arg, free_arg of a
 *                     task still queued).  Whoever claims it or starts it
 *                     takes them over.  Promise futures leave u unused.
 *   PENDING|CLAIMED   u belongs to the claimer, which writes the result.
 *   RUNNING           u belongs to the worker running the task; it writes
 *                     the result and publishes.  Others may only OR in
 *                     CANCEL_REQ.
 *   FULFILLED         u.ok (value, free_value) is read-only, borrowed by
 *                     readers; free_value(value) runs once when the last
 *                     reference goes.
 *   REJECTED/         u.err is read-only; err.message is owned by the future
 *   CANCELLED         when MSG_OWNED is set, else static.
 *   Publication is a release CAS; readers load state with acquire before
 *   touching u, so the result fields are visible once the state says so.
 *
 * The callback stack (`cbs`)
 *   A lock-free LIFO of registered callbacks (tagged pointers, see
 *   fut__cb_t), pushed with CAS.  After settling, the dispatcher takes the
 *   whole stack (exchange with EMPTY), reverses it to registration order,
 *   runs it, and loops until a CAS from EMPTY to CLOSED succeeds.  A push
 *   that finds CLOSED runs its callback at once instead.  Because only the
 *   dispatcher closes the stack, a callback registered during dispatch is
 *   queued behind the ones already there: order holds (rule 5) and nothing
 *   is lost or run twice (rule 4).
 *
 * References (`refs`)
 *   Every holder owns one: the user, the executor queue while a task is
 *   queued, the trampoline while a dispatch is pending, a promise's writers
 *   (one reference for all writers, counted in WRITERS bits).  The last
 *   release destroys the value and frees the object.  IMMORTAL futures (the
 *   preallocated ENOMEM future) ignore references.
 *
 * Blocking
 *   There is no mutex, no condition variable and no futex word per future.
 *   A thread that must block pushes a wake callback that unparks its
 *   per-thread parker (park.h), so waiting costs nothing until a thread
 *   actually waits.
 */
#ifndef FUT_FUTURE_H
#define FUT_FUTURE_H

#include "fut.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* One assertion macro: a broken internal invariant aborts. */
#define FUT__ASSERT(cond)                                                      \
    do {                                                                       \
        if (__builtin_expect(!(cond), 0))                                      \
            fut__assert_fail(#cond, __FILE__, __LINE__);                       \
    } while (0)

_Noreturn void fut__assert_fail(const char *what, const char *file, int line);

/* --- the state word --------------------------------------------------- */

enum {
    FUT__STATE_MASK = 0x7u,
    FUT__CLAIMED = 1u << 3,    /* being settled by its claimer */
    FUT__CANCEL_REQ = 1u << 4, /* fut_cancel asked a running task to stop */
    FUT__MSG_OWNED = 1u << 5,  /* u.err.message was allocated by fut */
    FUT__OBSERVED = 1u << 6,   /* someone read the error */
    FUT__IMMORTAL = 1u << 7,   /* static object: references are ignored */
    FUT__KIND_SHIFT = 8,
    FUT__KIND_MASK = 0xfu << 8,
    FUT__WRITER_SHIFT = 16, /* promise writer references, bits 16..31 */
    FUT__WRITER_ONE = 1u << 16,
};

/* What produces the future's result; fixed at creation. */
typedef enum fut__kind {
    FUT__KIND_VALUE = 0,   /* created settled (fut_resolved, fut_rejected) */
    FUT__KIND_TASK = 1,    /* u.task runs on an executor */
    FUT__KIND_PROMISE = 2, /* settled through fut_promise_t */
} fut__kind_t;

/* --- the object ------------------------------------------------------- */

typedef struct fut__ext fut__ext_t;

struct fut {
    /* Intrusive link: executor queue, trampoline queue.  A future is in at
     * most one of them at a time. */
    struct fut *next;
    _Atomic uint32_t state;
    _Atomic uint32_t refs;
    _Atomic uintptr_t cbs;  /* callback stack, see above */
    fut_executor_t *ex;     /* where the task runs (task kind) */
    union {
        struct {
            fut_fn fn;
            void *arg;
            fut_free_fn free_arg;
        } task;
        struct {
            void *value;
            fut_free_fn free_value;
        } ok;
        fut_error_t err;
    } u;
    /* Rarely used parts (progress listeners), allocated on first use and
     * freed with the future. */
    fut__ext_t *_Atomic ext;
};

_Static_assert(sizeof(struct fut) <= 64, "the future object must stay small");

/* --- callbacks -------------------------------------------------------- */

/* A callback node.  Pointers in the stack are tagged: bit 0 clear marks a
 * fut__cb_t.  (Bit 0 set is reserved for futures linked as continuations.) */
typedef struct fut__cb {
    uintptr_t next;
    void (*fn)(fut_t *f, void *arg);
    void *arg;
    fut_free_fn free_arg;
} fut__cb_t;

#define FUT__CBS_EMPTY ((uintptr_t)0)
#define FUT__CBS_CLOSED ((uintptr_t)2)

/* --- state helpers ---------------------------------------------------- */

static inline uint32_t fut__load(const fut_t *f)
{
    return atomic_load_explicit(&((fut_t *)f)->state, memory_order_acquire);
}

static inline bool fut__is_settled(uint32_t s)
{
    return (s & FUT__STATE_MASK) >= FUT_FULFILLED;
}

static inline fut__kind_t fut__kind(uint32_t s)
{
    return (fut__kind_t)((s & FUT__KIND_MASK) >> FUT__KIND_SHIFT);
}

/* The one transition helper.  Moves f from `from` (state bits plus
 * CLAIMED, compared exactly) to `to` (state bits plus CLAIMED), keeping
 * the other flags and OR-ing in `add`.  Returns true if this call made the
 * move; false (and *seen set) if f was not in `from`.  acq_rel: the
 * claimer acquires the fields, the publisher releases them. */
static inline bool fut__transition(fut_t *f, uint32_t from, uint32_t to,
                                   uint32_t add, uint32_t *seen)
{
    const uint32_t sel = FUT__STATE_MASK | FUT__CLAIMED;
    uint32_t old = atomic_load_explicit(&f->state, memory_order_acquire);
    for (;;) {
        if ((old & sel) != from) {
            if (seen)
                *seen = old;
            return false;
        }
        uint32_t want = (old & ~sel) | to | add;
        if (atomic_compare_exchange_weak_explicit(&f->state, &old, want,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire))
            return true;
    }
}

/* --- internal API ----------------------------------------------------- */

/* A new future of `kind`, PENDING, with `refs` references; NULL on ENOMEM. */
fut_t *fut__new(fut__kind_t kind, uint32_t refs);

/* The preallocated immortal future rejected with ENOMEM. */
extern fut_t fut__enomem;

/* Claims a PENDING (not running) future.  Spins while another claimer holds
 * it.  Returns true if this thread now owns u and must publish. */
bool fut__claim(fut_t *f);

/* Publishes a claimed (or, by its worker, a RUNNING) future: writes the
 * result given, moves to the terminal state, and dispatches callbacks.
 * fut__fulfil takes ownership of value; fut__fail_owned of message (allocated
 * with fut__msg_*; NULL means a static message for the code). */
void fut__fulfil(fut_t *f, void *value, fut_free_fn free_value);
void fut__fail_owned(fut_t *f, int code, char *message);
void fut__fail_static(fut_t *f, int code, const char *message);

/* Claims, then rejects a task future that never ran (failed submit,
 * shutdown, broken pool): runs its free_arg, settles with code (ECANCELED
 * settles CANCELLED).  Returns false if it was no longer pending. */
bool fut__reject_unstarted(fut_t *f, int code, const char *message);

/* Runs the callbacks of settled f on this thread, through the per-thread
 * trampoline (rule 6): nested dispatches are queued, not recursed into. */
void fut__dispatch(fut_t *f);

/* Runs dispatches this thread has queued (before it blocks). */
void fut__trampoline_flush(void);

/* The future of the task running on this thread, or NULL. */
fut_t *fut__current(void);
fut_t *fut__set_current(fut_t *f);

/* Messages: formatted into memory from the allocator; NULL on ENOMEM. */
char *fut__msg_vformat(const char *fmt, va_list ap);
char *fut__msg_copy(const char *s);
void fut__msg_free(char *s);
const char *fut__code_message(int code);

/* Waiting (future.c).  fut__arm_wake pushes a callback that unparks p when
 * f settles: 0, EALREADY (f already settled: nothing pushed) or ENOMEM.
 * fut__block waits for f until deadline (absolute ns, negative: none) on
 * this thread's parker: 0 or ETIMEDOUT.  fut__nap sleeps a growing backoff
 * (the fallback when there is no memory for a wake callback). */
struct fut__parker;
int fut__arm_wake(fut_t *f, struct fut__parker *p);
int fut__block(fut_t *f, int64_t deadline);
void fut__nap(int64_t *nap, int64_t deadline);

/* Progress (progress.c): frees f's rarely used parts. */
void fut__ext_free(fut__ext_t *ext);
int fut__notify(fut_t *f, void *progress);

/* The allocator (alloc.c). */
void *fut__alloc(size_t size);
void fut__free(void *p, size_t size);

#endif /* FUT_FUTURE_H */

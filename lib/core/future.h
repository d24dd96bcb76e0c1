/*
 * future.h - the future object, its state machine and the table of kind
 * operations (private; core layer).
 *
 * Nomenclature
 *   settle    move a future to FULFILLED, REJECTED or CANCELLED (terminal).
 *   claim     win the right to settle a future that is not running: a CAS
 *             from PENDING to PENDING|CLAIMED.  The claimer then writes the
 *             result fields and publishes the terminal state.
 *   publish   the release CAS that makes a written result visible, followed
 *             by dispatch.
 *   dispatch  run the callbacks registered on a settled future, in the
 *             order they were registered, and close its callback stack.
 *   kind      what produces a future's result (a task, a promise, a
 *             continuation, a combinator, a timer...), fixed at creation.
 *             The core knows kinds only as indexes into fut__kinds, the
 *             table of kind operations that the layer above fills in one
 *             place (feat/kinds.c); it names none of them.
 *
 * State machine (the low three bits of `state`; values match fut_state_t)
 *
 *                 claim (promise settle, cancel, refused submit)
 *      PENDING ---------> PENDING|CLAIMED ----publish----+
 *         |                                              |
 *         | its producer starts it (CAS)                 v
 *         +-------------> RUNNING --------publish---> FULFILLED
 *                          |  ^  \                     REJECTED
 *              fut_cancel  |  |   \ fut_adopt          CANCELLED
 *                          +--+    RUNNING|ADOPTING      (terminal)
 *                     sets CANCEL_REQ   | settles like the adopted
 *                                       +--- future (publish) ---^
 *
 *   Terminal states never change.  An illegal transition is a bug and
 *   aborts (FUT__MUST).  Every transition goes through fut__transition():
 *   a load, then a CAS that keeps the flag bits.
 *
 * Ownership of the fields, by state
 *   PENDING           u belongs to the future's kind: u.task (a queued
 *                     task), u.cont (a continuation waiting for its input),
 *                     u.pending (a combinator's block, a timer's entry).
 *                     Whoever claims it or starts it takes them over; a
 *                     claimer that settles it without running it first
 *                     calls the kind's `cancel` or `discard` operation,
 *                     which releases them.  Promise futures leave u unused.
 *   PENDING|CLAIMED   u belongs to the claimer, which writes the result.
 *   RUNNING           u belongs to the thread running the function; it
 *                     writes the result and publishes.  Others may only OR
 *                     in CANCEL_REQ.  With ADOPTING, u.adopt holds the
 *                     followed future until the dispatcher of that future
 *                     settles this one (adopt.c).
 *   FULFILLED         u.ok (value, free_value) is read-only, borrowed by
 *                     readers; free_value(value) runs once when the last
 *                     reference goes.
 *   REJECTED/         u.err is read-only; err.message is owned by the future
 *   CANCELLED         when MSG_OWNED is set, else static.
 *   Settled futures may borrow: u.hold is a reference to the future that
 *   owns the value or error message (a derived future passing its input's
 *   outcome on), and the error is then not MSG_OWNED.
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
 *   queued behind the ones already there: order holds and nothing is lost
 *   or run twice.
 *
 * References (`refs`)
 *   Every holder owns one: the user, the executor queue while a task is
 *   queued, the trampoline while a dispatch is pending, a promise's writers
 *   (one reference for all writers, counted in WRITERS bits), the callback
 *   stack of the input a continuation waits for.  The last release destroys
 *   the value and frees the object.  IMMORTAL futures (the preallocated
 *   ENOMEM future) ignore references.
 *
 * Blocking
 *   There is no mutex, no condition variable and no futex word per future.
 *   A thread that must block pushes a wake callback that unparks its
 *   per-thread parker (wait.h), so waiting costs nothing until a thread
 *   actually waits.
 */
#ifndef FUT_CORE_FUTURE_H
#define FUT_CORE_FUTURE_H

#include "fut.h"
#include "util/alloc.h"
#include "util/assert.h"

#include <stdatomic.h>

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
    FUT__ADOPTING = 1u << 12,    /* RUNNING, following u.adopt.src */
    FUT__CANCEL_TOLD = 1u << 13, /* cancelled while queued; the executor
                                    was told (exec.h, cancelled) */
    FUT__HAS_EXT = 1u << 14,     /* has an extension block (ext.h) */
    FUT__BLOCKING = 1u << 15,    /* its function blocks: its executor may
                                    compensate (exec.h, blocking) */
    FUT__WRITER_SHIFT = 16,      /* promise writer references, bits 16..31 */
    FUT__WRITER_ONE = 1u << 16,
};

/* --- the object ------------------------------------------------------- */

struct fut {
    /* Intrusive link: executor queue, trampoline queue, the per-thread
     * list of futures being destroyed, or (as a tagged `link`) another
     * future's callback stack.  A future is in at most one at a time. */
    union {
        struct fut *next;
        uintptr_t link;
    };
    _Atomic uint32_t state;
    _Atomic uint32_t refs;
    _Atomic uintptr_t cbs; /* callback stack, see above */
    union {
        fut_executor_t *ex; /* where its function runs (tasks, continuations
                               given an executor), or NULL */
        void *aux;          /* a kind's own pointer (a timer's entry) */
    };
    /* Pending: what will produce the result (owned as said above).
     * Settled: the result, and `hold`, a reference to the future that owns
     * a borrowed value or error message (NULL when this future owns it). */
    union {
        struct {
            fut_fn fn;
            void *arg;
            fut_free_fn free_arg;
        } task;
        struct {
            union {
                fut_then_fn then;
                fut_finally_fn fin;
            } on_value;
            fut_catch_fn on_error;
            void *arg;
        } cont;
        struct {
            struct fut *src; /* the future it follows (a reference) */
            struct fut *end; /* where the line of adoptions from src ends
                                (a reference; adopt.c) */
        } adopt;
        void *pending; /* a combinator's block, a timer's entry */
        struct {
            union {
                struct {
                    void *value;
                    fut_free_fn free_value;
                } ok;
                fut_error_t err;
            };
            struct fut *hold;
        };
    } u;
    /* Rarely used parts (progress listeners) live in a side table keyed by
     * the future, flagged by FUT__HAS_EXT (ext.h), so that futures nobody
     * watches do not carry a pointer for them. */
};

/* 56 bytes: a million pending futures fit in 56 MB, and the allocator
 * caches the size (alloc.h). */
_Static_assert(sizeof(struct fut) == FUT__CLASS_MEDIUM,
               "the future object must stay small");

/* --- kinds ------------------------------------------------------------ */

/* Operations of a kind of future.  A NULL operation is one the kind never
 * needs; the core aborts if it is asked for one. */
typedef struct fut__kind_ops {
    const char *name;
    size_t size; /* bytes allocated for a future of this kind */
    /* Starts and runs f, taken out of an executor's queue: PENDING ->
     * RUNNING, calls the user's function, publishes.  Returns FUT__RAN,
     * FUT__NOT_RUN if f was cancelled meanwhile (then it did nothing), or
     * FUT__SUSPENDED if f's function gave its thread away and will be
     * queued again (a fiber).  Does not drop the queue's reference, but
     * for FUT__SUSPENDED, where the reference went with f (fut__run_done). */
    int (*run)(fut_t *f);
    /* f waits on input's callback stack as a future entry, and input has
     * settled and is dispatching.  Consumes the stack's reference to f. */
    void (*input_settled)(fut_t *f, fut_t *input);
    /* fut_cancel claimed pending f and will publish it CANCELLED: release
     * what the pending future owns, tell whoever produces it, and ask
     * inputs nobody else holds to cancel (fut__cancel_unshared). */
    void (*cancel)(fut_t *f);
    /* f was claimed by an executor that will never run it (shutdown,
     * refused submit, broken pool): release what the pending future owns;
     * f is then rejected with the executor's code. */
    void (*discard)(fut_t *f);
    /* The future pending f waits for (a new reference), or NULL: adoption
     * walks these to find loops, progress relays along them. */
    fut_t *(*input)(fut_t *f);
    /* fut_cancel asked RUNNING f to stop (CANCEL_REQ was just set): a kind
     * whose result comes from work of its own (a group's members) passes
     * the request on.  Called once, by the asking thread. */
    void (*cancel_requested)(fut_t *f);
} fut__kind_ops_t;

/* Kind 0 is a future born settled; the others are the layer above's. */
enum { FUT__KIND_VALUE = 0, FUT__KINDS = 16 };

/* Filled in one place by the layer that knows the kinds (feat/kinds.c);
 * the one symbol the core takes from above, by design. */
extern const fut__kind_ops_t *const fut__kinds[FUT__KINDS];

/* --- callbacks -------------------------------------------------------- */

/* A callback node.  Entries of the stack are tagged pointers:
 *   FUT__TAG_NODE   a fut__cb_t from the allocator, freed after it ran;
 *   FUT__TAG_FUTURE a future linked through `link`: one waiting for this
 *                   input (its kind's input_settled runs), or a future
 *                   adopting it;
 *   FUT__TAG_SLOT   a fut__cb_t embedded in a larger object; its fn gets
 *                   the node itself as arg, and its owner frees it;
 *   FUT__TAG_WAKE   a slot whose fn only wakes its owner (a fiber's await),
 *                   so it needs no order with the other entries: when it
 *                   is the only one, dispatch closes the stack with one CAS
 *                   and runs it after (an exchange and a CAS otherwise).
 * EMPTY is 0; CLOSED is all ones, which no tagged pointer can be. */
typedef struct fut__cb {
    uintptr_t next;
    void (*fn)(fut_t *f, void *arg);
    void *arg;
    fut_free_fn free_arg;
} fut__cb_t;

_Static_assert(sizeof(fut__cb_t) == FUT__CLASS_SMALL,
               "callback nodes are cached by the allocator");

enum {
    FUT__TAG_NODE = 0,
    FUT__TAG_FUTURE = 1,
    FUT__TAG_SLOT = 2,
    FUT__TAG_WAKE = 3,
    FUT__TAG_MASK = 3,
};

#define FUT__CBS_EMPTY ((uintptr_t)0)
#define FUT__CBS_CLOSED (~(uintptr_t)0)

/* --- state helpers ---------------------------------------------------- */

static inline uint32_t fut__load(const fut_t *f)
{
    return atomic_load_explicit(&((fut_t *)(uintptr_t)f)->state,
                                memory_order_acquire);
}

static inline bool fut__is_settled(uint32_t s)
{
    return (s & FUT__STATE_MASK) >= FUT_FULFILLED;
}

static inline unsigned fut__kind(uint32_t s)
{
    return (s & FUT__KIND_MASK) >> FUT__KIND_SHIFT;
}

static inline const fut__kind_ops_t *fut__ops(uint32_t s)
{
    return fut__kinds[fut__kind(s)];
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

/* --- creating, settling, cancelling (future.c) ------------------------ */

/* A new future of `kind`, PENDING, with `refs` references; NULL on ENOMEM.
 * The object is cleared (sizeof(struct fut) bytes; a kind with a larger
 * object initialises the rest). */
fut_t *fut__new(unsigned kind, uint32_t refs);

/* Holds back destruction on this thread until the matching resume: a
 * future whose last reference goes meanwhile is freed then.  For code that
 * drops references under a lock that user code (a value's destructor)
 * might need.  Pass resume what hold returned; holds nest. */
bool fut__destroy_hold(void);
void fut__destroy_resume(bool held);

/* The preallocated immortal future rejected with ENOMEM (error.c). */
extern fut_t fut__enomem;

/* Claims a PENDING (not running) future.  Spins while another claimer holds
 * it.  Returns true if this thread now owns u and must publish. */
bool fut__claim(fut_t *f);

/* Claims f without waiting: false if it is settled or another claimer
 * holds it (that claimer will settle it). */
bool fut__try_claim(fut_t *f);

/* "First exchange wins" (combinators, timers): *holder is a reference to
 * a result future that several parties may race to settle.  The winner of
 * the exchange claims it (without waiting) and gets it back claimed, with
 * the reference; everyone else, or the winner when fut_cancel claimed the
 * future first (the canceller settles it), gets NULL. */
fut_t *fut__decide(fut_t *_Atomic *holder);

/* Publishes a claimed (or, by its runner, a RUNNING) future: writes the
 * result given, moves to the terminal state, and dispatches callbacks.
 * fut__fulfil takes ownership of value; fut__fail_owned of message (from
 * util/msg.h; NULL means the static message for the code).  ECANCELED
 * settles CANCELLED. */
void fut__fulfil(fut_t *f, void *value, fut_free_fn free_value);
void fut__fail_owned(fut_t *f, int code, char *message);
void fut__fail_static(fut_t *f, int code, const char *message);
/* As fut__fail_owned with a code of another domain (fut.h, fut_error_t);
 * NULL message: the domain's static description of the code. */
void fut__fail_in(fut_t *f, int domain, int code, char *message);

/* Settles a claimed or RUNNING future f with the outcome of settled src,
 * borrowing its value or error (f keeps a reference to their owner), and
 * marks src's error as observed: responsibility for it moves to f. */
void fut__settle_like(fut_t *f, fut_t *src);

/* An executor's verdict on a future it will never run (refused submit,
 * shutdown, broken pool): claims it, lets its kind release what it owned
 * (discard), and rejects it with code (ECANCELED settles CANCELLED).
 * Returns false if it was no longer pending (cancelled meanwhile). */
bool fut__reject_unstarted(fut_t *f, int code, const char *message);

/* Runs f, taken out of an executor's queue, through its kind's run
 * operation: FUT__RAN, FUT__NOT_RUN (cancelled meanwhile) or
 * FUT__SUSPENDED (it will be queued again: the queue's reference went
 * with it, to whatever queues it next, so that a fiber's await and wake
 * move one reference instead of taking and dropping one each). */
enum { FUT__NOT_RUN = 0, FUT__RAN = 1, FUT__SUSPENDED = 2 };
int fut__run(fut_t *f);

/* After fut__run(f) returned r: drops the queue's reference unless it went
 * with f. */
static inline void fut__run_done(fut_t *f, int r)
{
    if (r != FUT__SUSPENDED)
        fut_release(f);
}

/* Asks f to cancel if the caller's reference and f's producer's are the
 * only ones (nothing else could still want its result).  Borrows f.
 * Inside a cancellation the request is queued and carried out by the
 * outermost fut_cancel before it returns, so cancelling a chain of any
 * length takes constant stack (rule 6). */
void fut__cancel_unshared(fut_t *f);

/* The future pending f waits for, through its kind (a new reference), or
 * NULL. */
fut_t *fut__input(fut_t *f);

/* The owner of f's result: the future its value or error is borrowed
 * from, or f itself. */
static inline fut_t *fut__owner(fut_t *f)
{
    return f->u.hold ? f->u.hold : f;
}

/* --- errors (error.c) ------------------------------------------------- */

/* Marks f's error as read (fut_get, fut_error, handlers, combinators). */
void fut__observe(fut_t *f);

/* Reports a rejection freed unread (the unhandled-rejection hook). */
void fut__report_unhandled(const fut_error_t *err);

/* --- the callback stack and dispatch (callbacks.c) -------------------- */

/* Pushes a tagged entry on f's callback stack; false if the stack is
 * closed (f settled and dispatched), and then nothing was pushed. */
bool fut__cbs_push(fut_t *f, uintptr_t entry);

/* True once f's callbacks have all run (its stack is closed). */
static inline bool fut__cbs_closed(const fut_t *f)
{
    return atomic_load_explicit(&((fut_t *)(uintptr_t)f)->cbs,
                                memory_order_acquire) == FUT__CBS_CLOSED;
}

/* Runs the callbacks of settled f on this thread, through the per-thread
 * trampoline (rule 6): nested dispatches are queued, not recursed into.
 * The caller holds a reference to f until this returns (the outermost
 * dispatch takes none of its own). */
void fut__dispatch(fut_t *f);

/* Runs dispatches this thread has queued (before it blocks). */
void fut__trampoline_flush(void);

/* True while this thread drains its trampoline (callbacks.c). */
bool fut__trampoline_busy(void);

/* True if the code running on this thread may give its thread away (a
 * fiber suspending): it is not inside a dispatch, a destruction or a
 * cancellation that this thread's lists are in the middle of. */
bool fut__may_suspend(void);

#endif /* FUT_CORE_FUTURE_H */

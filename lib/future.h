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
 *         | a task or continuation starts (CAS)          v
 *         +-------------> RUNNING --------publish---> FULFILLED
 *                          |  ^  \                     REJECTED
 *              fut_cancel  |  |   \ fut_adopt          CANCELLED
 *                          +--+    RUNNING|ADOPTING      (terminal)
 *                     sets CANCEL_REQ   | settles like the adopted
 *                                       +--- future (publish) ---^
 *
 *   Terminal states never change.  An illegal transition is a bug and
 *   aborts through FUT__ASSERT.  Every transition goes through
 *   fut__transition(): a load, then a CAS that keeps the flag bits.
 *
 * Ownership of the fields, by state
 *   PENDING           u belongs to the future: u.task (a task still
 *                     queued), u.cont (a continuation waiting for its
 *                     input, with fut__cont_t's input and free_arg),
 *                     u.pending (a combinator's block, a timer's entry).
 *                     Whoever claims it or starts it takes them over.
 *                     Promise futures leave u unused.
 *   PENDING|CLAIMED   u belongs to the claimer, which writes the result.
 *   RUNNING           u belongs to the thread running the function; it
 *                     writes the result and publishes.  Others may only OR
 *                     in CANCEL_REQ.  With ADOPTING, u.adopt_src holds the
 *                     followed future until the dispatcher of that future
 *                     settles this one (chain.c).
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
    FUT__ADOPTING = 1u << 12,    /* RUNNING, following u.adopt_src */
    FUT__CANCEL_TOLD = 1u << 13, /* cancelled while queued; the executor
                                    was told (ops->cancelled) */
    FUT__HAS_EXT = 1u << 14,     /* has an extension block (progress.c) */
    FUT__WRITER_SHIFT = 16,      /* promise writer references, bits 16..31 */
    FUT__WRITER_ONE = 1u << 16,
};

/* What produces the future's result; fixed at creation. */
typedef enum fut__kind {
    FUT__KIND_VALUE = 0,   /* created settled (fut_resolved, fut_rejected) */
    FUT__KIND_TASK = 1,    /* u.task runs on an executor */
    FUT__KIND_PROMISE = 2, /* settled through fut_promise_t */
    FUT__KIND_THEN = 3,    /* fut__cont_t: then/catch/then_catch */
    FUT__KIND_FINALLY = 4, /* fut__cont_t: finally */
    FUT__KIND_WHEN = 5,    /* a combinator's result (combine.c) */
    FUT__KIND_TIMER = 6,   /* fut_delay, fut_within (timer.c) */
} fut__kind_t;

/* --- the object ------------------------------------------------------- */

typedef struct fut__ext fut__ext_t;

struct fut {
    /* Intrusive link: executor queue, trampoline queue, or (as a tagged
     * `link`) another future's callback stack.  A future is in at most one
     * of them at a time. */
    union {
        struct fut *next;
        uintptr_t link;
    };
    _Atomic uint32_t state;
    _Atomic uint32_t refs;
    _Atomic uintptr_t cbs; /* callback stack, see above */
    fut_executor_t *ex;    /* where the task runs (task kind) */
    /* Pending: what will produce the result (owned as future.h says).
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
        fut_t *adopt_src; /* ADOPTING: the future it follows (a reference) */
        void *pending;    /* WHEN, TIMER: their private state */
        struct {
            union {
                struct {
                    void *value;
                    fut_free_fn free_value;
                } ok;
                fut_error_t err;
            };
            fut_t *hold;
        };
    } u;
    /* Rarely used parts (progress listeners) live in a side table keyed by
     * the future, flagged by FUT__HAS_EXT (progress.c), so that futures
     * nobody watches do not carry a pointer for them. */
};

/* 56 bytes: a million pending futures fit in 56 MB, and malloc serves a
 * 56-byte request from a 64-byte chunk when the freelists are off. */
_Static_assert(sizeof(struct fut) <= 56, "the future object must stay small");

/* A continuation (then, catch, finally) carries two more words: the input
 * it waits for and its argument's destructor.  `input` holds one reference
 * to the input until the continuation runs or is cancelled; a reader that
 * needs it meanwhile (cancel, progress relay) swaps in FUT__BUSY and puts it
 * back (fut__cont_borrow_input / fut__cont_return_input). */
typedef struct fut__cont {
    struct fut f;
    fut_t *_Atomic input;
    fut_free_fn free_arg;
} fut__cont_t;

#define FUT__BUSY ((fut_t *)(uintptr_t)1)

static inline fut__cont_t *fut__as_cont(fut_t *f)
{
    return (fut__cont_t *)f;
}

/* The allocation size of a future of kind k. */
static inline size_t fut__size(unsigned k)
{
    return (k == FUT__KIND_THEN || k == FUT__KIND_FINALLY) ? sizeof(fut__cont_t)
                                                           : sizeof(struct fut);
}

/* --- callbacks -------------------------------------------------------- */

/* A callback node.  Entries of the stack are tagged pointers:
 *   FUT__TAG_NODE   a fut__cb_t from the allocator, freed after it ran;
 *   FUT__TAG_FUTURE a future linked through `next`: a continuation waiting
 *                   for this input, or a future adopting it;
 *   FUT__TAG_SLOT   a fut__cb_t embedded in a larger object; its fn gets
 *                   the node itself as arg (a combinator's
 *                   slot), which its owner frees.
 * EMPTY is 0; CLOSED is all ones, which no tagged pointer can be. */
typedef struct fut__cb {
    uintptr_t next;
    void (*fn)(fut_t *f, void *arg);
    void *arg;
    fut_free_fn free_arg;
} fut__cb_t;

enum {
    FUT__TAG_NODE = 0,
    FUT__TAG_FUTURE = 1,
    FUT__TAG_SLOT = 2,
    FUT__TAG_MASK = 3,
};

#define FUT__CBS_EMPTY ((uintptr_t)0)
#define FUT__CBS_CLOSED (~(uintptr_t)0)

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

/* Settles a claimed or RUNNING future f with the outcome of settled src,
 * borrowing its value or error (f keeps a reference to their owner), and
 * marks src's error as observed: responsibility for it moves to f. */
void fut__settle_like(fut_t *f, fut_t *src);

/* Pushes a tagged entry on f's callback stack; false if the stack is
 * closed (f settled and dispatched), and then nothing was pushed. */
bool fut__cbs_push(fut_t *f, uintptr_t entry);

/* Called by the dispatcher of settled `input` for each future entry d
 * (chain.c): runs or schedules the continuation d, or settles d if it
 * adopts input.  Consumes the stack's reference to d. */
void fut__fire(fut_t *input, fut_t *d);

/* Kind hooks for fut_cancel (chain.c, combine.c, timer.c): called after f
 * was claimed for cancellation and before it is published as CANCELLED;
 * they release what the pending future owned and ask inputs that nothing
 * else holds to cancel. */
void fut__cont_cancelled(fut_t *f);
void fut__when_cancelled(fut_t *f);
void fut__timer_cancelled(fut_t *f);

/* Asks f to cancel if the caller's reference and f's producer's are the
 * only ones (nothing else could still want its result).  Borrows f. */
void fut__cancel_unshared(fut_t *f);

/* "First exchange wins" (combinators, timers): *holder is a reference to
 * a result future that several parties may race to settle.  The winner of
 * the exchange claims it (without waiting) and gets it back claimed, with
 * the reference; everyone else, or the winner when fut_cancel claimed the
 * future first (the canceller settles it), gets NULL. */
fut_t *fut__decide(fut_t *_Atomic *holder);

/* Claims f without waiting: false if it is settled or another claimer
 * holds it (that claimer will settle it). */
bool fut__try_claim(fut_t *f);

/* The guarded input of a pending continuation (chain.c): borrow swaps in
 * FUT__BUSY and returns the input (NULL once consumed); return puts it
 * back.  Hold it only for a few instructions. */
fut_t *fut__cont_borrow_input(fut__cont_t *c);
void fut__cont_return_input(fut__cont_t *c, fut_t *in);

/* The owner of f's result: the future its value or error is borrowed
 * from, or f itself. */
static inline fut_t *fut__owner(fut_t *f)
{
    return f->u.hold ? f->u.hold : f;
}

/* Marks f's error as read (fut_get, fut_error, handlers, combinators). */
void fut__observe(fut_t *f);

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

/* Progress (progress.c).  For a future with FUT__HAS_EXT: close ends
 * progress when it settles; free releases the block when it is freed. */
void fut__ext_close(fut_t *f);
void fut__ext_free(fut_t *f);
int fut__notify(fut_t *f, void *progress);

/* The allocator (alloc.c). */
void *fut__alloc(size_t size);
void fut__free(void *p, size_t size);

#endif /* FUT_FUTURE_H */

/*
 * fut.h - futures and promises over a pthread thread pool (C11).
 *
 * The one public header.  Concepts (see README.md for a tour):
 *
 *   executor  runs functions: the thread pool (fut_pool_new), the inline
 *             executor (fut_inline_executor), or the loop executor
 *             (fut_loop_new), whose work runs on the thread that drains it.
 *             Every executor has the same interface.
 *   future    the read side of a result that may not exist yet.  States:
 *             FUT_PENDING -> (FUT_RUNNING) -> FUT_FULFILLED | FUT_REJECTED |
 *             FUT_CANCELLED.  A settled future never changes again.
 *   promise   the write side, for results produced outside an executor.
 *   context   handed to every user function that produces a result.
 *
 * Ownership is explicit: a function that returns a fut_t * gives the
 * caller one reference, released with fut_release().  Blocking and query
 * functions borrow their future argument.  Every comment below says which.
 *
 * Errors: functions returning int return 0 or a positive errno value, and
 * return EINVAL for a NULL object argument.  Functions returning a future
 * never return NULL: on failure they return an already-rejected future that
 * carries the code (ENOMEM: a preallocated immortal future).
 *
 * Threads: every function may be called from any thread, including from
 * inside tasks and callbacks.
 */
#ifndef FUT_H
#define FUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FUT_STATIC_DEFINE)
#define FUT_API
#elif defined(FUT_BUILDING)
#define FUT_API __attribute__((visibility("default")))
#else
#define FUT_API
#endif

#if defined(__GNUC__)
#define FUT_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FUT_PRINTF(fmt, args)
#endif

/* On functions that return a new reference (or object): dropping the
 * result leaks it, so gcc and clang warn.  fut_retain and
 * fut_promise_retain go without it: they return their argument, which the
 * caller still holds, so a call made only for its effect leaks nothing. */
#if defined(__GNUC__) || defined(__clang__)
#define FUT_NODISCARD __attribute__((warn_unused_result))
#else
#define FUT_NODISCARD
#endif

/* -------------------------------------------------------------- version */

/* The header's version: FUT_VERSION_MAJOR, _MINOR, _PATCH, FUT_VERSION_STRING
 * ("0.1.0") and FUT_VERSION_NUMBER (MAJOR * 10000 + MINOR * 100 + PATCH)
 * come from <fut/version.h>, which the build generates from the project's
 * version and installs next to this header.  Where it cannot be found (the
 * source tree's include/ used without a build), they are not defined. */
#ifdef __has_include
#if __has_include(<fut/version.h>)
#include <fut/version.h>
#endif
#else
#include <fut/version.h>
#endif

/* The version of the library linked in, as a string ("0.1.0"), to compare
 * with FUT_VERSION_STRING.  Any thread may call it. */
FUT_API const char *fut_version(void);

/* The version of the library linked in, as a number like
 * FUT_VERSION_NUMBER.  A program built against one version's header and run
 * with another's library can tell: fut_version_number() !=
 * FUT_VERSION_NUMBER.  Any thread may call it. */
FUT_API int fut_version_number(void);

/* ---------------------------------------------------------------- time */

/* Timeouts are int64_t nanoseconds.  FUT_FOREVER (any negative value) waits
 * without limit; 0 polls.  FUT_US, FUT_MS and FUT_S turn microseconds,
 * milliseconds and seconds into nanoseconds. */
#define FUT_FOREVER ((int64_t)-1)
#define FUT_US(x) ((int64_t)(x)*INT64_C(1000))
#define FUT_MS(x) ((int64_t)(x)*INT64_C(1000000))
#define FUT_S(x) ((int64_t)(x)*INT64_C(1000000000))

/* --------------------------------------------------------------- types */

/* The opaque handles, used only through pointers: a future, a promise, the
 * context handed to a task or handler (valid only during that call), and an
 * executor.  See the concepts at the top of this header. */
typedef struct fut fut_t;
typedef struct fut_promise fut_promise_t;
typedef struct fut_ctx fut_ctx_t;
typedef struct fut_executor fut_executor_t;

/* A future's state, as fut_state() reads it.  The last three are settled:
 * a settled future never changes again. */
typedef enum fut_state {
    FUT_PENDING = 0,   /* not started, or a promise not yet settled */
    FUT_RUNNING = 1,   /* a task is executing on some thread */
    FUT_FULFILLED = 2, /* settled with a value */
    FUT_REJECTED = 3,  /* settled with an error */
    FUT_CANCELLED = 4, /* settled by cancellation (error code ECANCELED) */
} fut_state_t;

/* An error: a code, the domain the code belongs to, and a message that
 * lives as long as the future that carries it.  In the default domain
 * (FUT_DOMAIN_ERRNO, 0) the code is a positive errno value; in another
 * domain it is that domain's own code, any value but 0 (getaddrinfo's
 * EAI_* codes are negative, SQLite's collide with errno's), and fut_get
 * answers FUT_EFOREIGN for it rather than a code it could be mistaken
 * for. */
typedef struct fut_error {
    int code;            /* errno value (positive; ECANCELED when cancelled),
                            or the domain's own code */
    int domain;          /* FUT_DOMAIN_ERRNO, or another FUT_DOMAIN_* */
    const char *message; /* never NULL: describes code if none was given */
} fut_error_t;

/* Error domains.  FUT_DOMAIN_GETADDRINFO: EAI_* codes (a NULL message
 * becomes gai_strerror's); FUT_DOMAIN_SQLITE: SQLite's result codes;
 * FUT_DOMAIN_USER and above: the program's own. */
#define FUT_DOMAIN_ERRNO 0
#define FUT_DOMAIN_GETADDRINFO 1
#define FUT_DOMAIN_SQLITE 2
#define FUT_DOMAIN_USER 256

/* fut_get's answer when its own wait ran out (the future is still
 * pending).  Negative, so it is never a code a future rejected with:
 * fut_get returns ETIMEDOUT only for a future that rejected with it (a
 * connect timeout, fut_within's deadline). */
#define FUT_TIMEDOUT (-1)

/* fut_get's answer for a future rejected in a domain other than errno:
 * read domain, code and message with fut_error().  Above every errno
 * value. */
#define FUT_EFOREIGN 0x10000

/* Destructor for a value or an argument. */
typedef void (*fut_free_fn)(void *p);

/* A task: runs on an executor, returns the future's value (or calls
 * fut_fail and returns NULL). */
typedef void *(*fut_fn)(fut_ctx_t *ctx, void *arg);

/* ------------------------------------------------------------ allocator */

/* The allocator behind every object fut allocates.  alloc returns NULL on
 * failure (fut then reports ENOMEM and loses nothing); free receives the
 * size that was asked for.  ctx is passed through. */
typedef struct fut_allocator {
    /* size bytes, aligned as malloc's are, or NULL */
    void *(*alloc)(size_t size, void *ctx);
    /* gives back p, which alloc returned for size bytes */
    void (*free)(void *p, size_t size, void *ctx);
    void *ctx; /* passed to alloc and free */
} fut_allocator_t;

/* Installs an allocator (NULL restores malloc/free).  Call it while no
 * object of fut's is alive and no thread but the caller that has used fut
 * is still running (free your pools first; fut's own threads hand back
 * what they hold when asked): objects are freed through the allocator that
 * is installed when they die, and a thread's cache of free blocks goes back
 * through the allocator installed when the thread exits.  An installed
 * allocator gets one call per object (of that object's size), so it can
 * count, place or fail each one; with malloc, fut carves its small objects
 * from slabs it keeps for reuse, and this call gives the slabs back once
 * all their objects are free (so fut_set_allocator(NULL) also trims).
 * Freed objects are cached per thread either way, except under
 * AddressSanitizer, under valgrind and with FUT_DIRECT_ALLOC=1 in the
 * environment: then every object goes straight to the allocator and back,
 * so leak checkers see a forgotten future.  Returns 0, or EINVAL if a
 * function is missing. */
FUT_API int fut_set_allocator(const fut_allocator_t *allocator);

/* Gives back the memory fut keeps for reuse: the stacks of finished
 * fibers (which otherwise wait a few seconds for the next fibers: a burst
 * of fibers costs one mapping per 64 of them the first time and none
 * after; an idle stack keeps the pages its fiber touched), and, with the
 * built-in allocator, the slabs whose futures and callback records are
 * all free (first this thread's cache of them is handed back; pool
 * workers hand theirs back when idle, and beyond a watermark give the
 * slabs back themselves).  Any thread, any time; nothing alive is
 * affected. */
FUT_API void fut_trim(void);

/* ------------------------------------------------------------ executors */

/* fut_pool_new's settings.  A NULL cfg is a zeroed one: each field left 0
 * (or NULL) takes the default it names. */
typedef struct fut_pool_config {
    size_t threads;    /* worker threads; 0: one per online CPU */
    size_t max_queued; /* 0: unbounded; else submit blocks while this many
                          tasks wait (FUT_NOWAIT: rejects EAGAIN instead).
                          Tasks submitted from the pool's own workers are
                          never blocked (they would deadlock the pool). */
    const char *name;  /* worker thread name prefix, "fut" if NULL; threads
                          are named "<name>-<index>", cut to 15 bytes */
    /* PEP 3148 initializer: runs on each worker before it takes work.  A
     * non-zero return breaks the pool: queued and later tasks reject with
     * that code, and fut_executor_stats reports it. */
    int (*worker_init)(void *worker_arg);
    /* Runs on each worker whose worker_init succeeded (or was NULL) when
     * it exits. */
    void (*worker_exit)(void *worker_arg);
    void *worker_arg; /* passed to worker_init and worker_exit */
    /* Elastic capacity for blocking calls.  While tasks are in declared
     * blocking calls (FUT_BLOCKING, fut_blocking_begin), the pool starts
     * extra threads so that `threads` workers stay runnable, up to
     * max_threads in all (0: threads + 64); an extra thread idle for
     * keep_alive nanoseconds exits (0: 10 s).  max_threads below threads
     * means threads (no extra threads). */
    size_t max_threads; /* threads in all, extra ones included */
    int64_t keep_alive; /* ns an extra thread may idle before it exits */
    size_t fiber_stack; /* stack bytes of its fibers (fut_async); 0: 64 KiB */
} fut_pool_config_t;

/* A snapshot of an executor's counters (fut_executor_stats).  The inline
 * executor fills only submitted and completed, a loop executor all but
 * threads, idle and broken; the others read 0. */
typedef struct fut_stats {
    size_t threads;     /* worker threads started and not yet exited */
    size_t idle;        /* workers parked waiting for work */
    size_t queued;      /* tasks waiting to start */
    uint64_t submitted; /* tasks accepted (a fiber once, however often woken) */
    uint64_t completed; /* tasks that ran to the end (any outcome) */
    uint64_t cancelled; /* tasks settled by cancellation before running */
    int broken;         /* 0, or the code a failing worker_init returned */
    bool shutdown;      /* fut_executor_shutdown was called */
    size_t blocked;     /* workers in declared blocking calls now */
    uint64_t spawned;   /* extra threads started for them, in all */
} fut_stats_t;

/* The index of the pool worker running on this thread (0..threads-1 for
 * the configured workers, above for extra ones), or -1 on any other
 * thread.  worker_init may call it, e.g. to open one connection per
 * worker. */
FUT_API int fut_pool_worker_index(void);

/* A task about to block (a read, a query, a lock held elsewhere) says so,
 * as Java's ManagedBlocker does: on a pool worker, the pool starts or
 * wakes another worker if fewer than `threads` would stay runnable (up to
 * max_threads), so blocking calls do not starve the pool's other work.
 * fut_blocking_end ends the call; the pair nests.  Returns 0, or EAGAIN if
 * a thread was needed and could not be started (the task still runs).
 * Outside a pool worker both do nothing (0).  A task submitted with
 * FUT_BLOCKING is treated as one blocking call from start to end. */
FUT_API int fut_blocking_begin(void);
FUT_API void fut_blocking_end(void);

/* Creates a thread pool.  cfg may be NULL for defaults.  Returns 0 and the
 * pool in *out, or EINVAL (out NULL, or more than 4096 threads), ENOMEM,
 * EAGAIN (threads could not be created).  Any thread may call it. */
FUT_API int fut_pool_new(const fut_pool_config_t *cfg, fut_executor_t **out);

/* The inline executor: fut_submit runs the task on the calling thread before
 * returning.  A process-wide singleton; shutting it down or freeing it does
 * nothing. */
FUT_API fut_executor_t *fut_inline_executor(void);

/* Shutdown flags (PEP 3148 shutdown(wait, cancel_futures)). */
#define FUT_SHUTDOWN_WAIT 1u /* return after every worker exited */
#define FUT_SHUTDOWN_CANCEL_PENDING                                            \
    2u /* cancel tasks that have not started                                   \
        */

/* Stops accepting work: later submits reject with ESHUTDOWN.  Queued tasks
 * still run unless FUT_SHUTDOWN_CANCEL_PENDING cancels them (their free_arg
 * runs on this thread).  With FUT_SHUTDOWN_WAIT, returns once all workers
 * have exited.  May be called more than once.  Returns 0, EINVAL, or
 * EDEADLK when asked to wait from one of the pool's own workers (the
 * shutdown still happens; the call does not wait). */
FUT_API int fut_executor_shutdown(fut_executor_t *ex, unsigned flags);

/* Shuts down with FUT_SHUTDOWN_WAIT, then frees the executor.  Futures
 * obtained from it stay valid.  Called from one of the pool's own workers,
 * the pool is freed when its last worker exits.  NULL is a no-op. */
FUT_API void fut_executor_free(fut_executor_t *ex);

/* Fills *out with a snapshot of the executor's counters.  Returns 0 or
 * EINVAL. */
FUT_API int fut_executor_stats(fut_executor_t *ex, fut_stats_t *out);

/* ---------------------------------------------------------------- tasks */

/* Submit flags. */
#define FUT_NOWAIT                                                             \
    1u /* a full bounded queue rejects EAGAIN instead of                       \
          blocking the submitter */
#define FUT_BLOCKING                                                           \
    2u /* the task blocks (I/O, a query): the pool keeps others running        \
          meanwhile, see fut_blocking_begin */

/* Submits fn(ctx, arg) to ex and returns a new reference to its future.
 * Never returns NULL: bad arguments reject EINVAL, a shut-down executor
 * ESHUTDOWN (a broken pool: the initializer's code), a full queue with
 * FUT_NOWAIT EAGAIN, no memory ENOMEM.  free_arg (may be NULL) runs exactly
 * once: after fn returned, or when the task is cancelled or rejected before
 * it ran (then on the thread that cancelled or submitted it). */
FUT_API FUT_NODISCARD fut_t *fut_submit(fut_executor_t *ex, fut_fn fn,
                                        void *arg);
FUT_API FUT_NODISCARD fut_t *fut_submit_ex(fut_executor_t *ex, fut_fn fn,
                                           void *arg, fut_free_fn free_arg,
                                           unsigned flags);

/* Inside a task (or any function handed a ctx): rejects the future with
 * code (positive; otherwise EINVAL is used) and a printf-style message,
 * and returns NULL so that `return fut_fail(ctx, EIO, "...")` reads
 * naturally.  The first failure wins; the value the function then returns
 * is destroyed with its destructor, if one was named.  ECANCELED settles
 * the future as FUT_CANCELLED. */
FUT_API void *fut_fail(fut_ctx_t *ctx, int code, const char *fmt, ...)
    FUT_PRINTF(3, 4);

/* As fut_fail with a code of another domain (FUT_DOMAIN_*; the code may be
 * any value but 0): the future's error keeps domain, code and message
 * exactly.  A NULL fmt takes the domain's own description where fut knows
 * one (gai_strerror), else "error <code> in domain <domain>".  A negative
 * domain or a zero code fails the function with EINVAL instead. */
FUT_API void *fut_fail_in(fut_ctx_t *ctx, int domain, int code, const char *fmt,
                          ...) FUT_PRINTF(4, 5);

/* Names the destructor of the value the function is about to return; it
 * runs exactly once, when the future holding the value is freed. */
FUT_API void fut_set_free(fut_ctx_t *ctx, fut_free_fn free_value);

/* True once someone called fut_cancel on the running task's future. */
FUT_API bool fut_cancel_requested(const fut_ctx_t *ctx);

/* Reports progress to the future's fut_on_progress callbacks, on this
 * thread, before returning.  progress is borrowed for the call. */
FUT_API void fut_progress(fut_ctx_t *ctx, void *progress);

/* -------------------------------------------------------------- futures */

/* Adds a reference; returns f.  NULL is returned unchanged. */
FUT_API fut_t *fut_retain(fut_t *f);

/* Drops a reference; the last one frees the future and destroys its value
 * (exactly once).  NULL is a no-op. */
FUT_API void fut_release(fut_t *f);

/* Borrows f.  The state now (FUT_REJECTED for NULL). */
FUT_API fut_state_t fut_state(const fut_t *f);

/* Borrows f.  True once f is fulfilled, rejected or cancelled (and for NULL).
 */
FUT_API bool fut_done(const fut_t *f);

/* Borrows f.  Blocks until f settles or timeout passes.  Returns 0 once
 * settled, ETIMEDOUT, EINVAL (NULL), or EDEADLK when a task waits on its own
 * future.  On a pool worker it runs the pool's queued tasks while it waits
 * (so a one-thread pool whose task waits on a second task completes). */
FUT_API int fut_wait(fut_t *f, int64_t timeout);

/* Borrows f.  Waits like fut_wait, then returns 0 and stores the value in
 * *value (may be NULL); or FUT_TIMEDOUT when the wait ran out first (f is
 * still pending); or f's rejection: its errno code (ECANCELED when
 * cancelled, ETIMEDOUT when f itself timed out), or FUT_EFOREIGN for a code
 * of another domain (fut_error tells it); or EINVAL (NULL) or EDEADLK (a
 * task waiting on its own future).  *value is NULL unless 0 is returned.
 * The value is borrowed: it lives as long as the caller's reference to f
 * (and its destructor runs when the last reference goes, which may be
 * dropped by the thread that settled f just after this returns: see
 * README, "Values and their destructors"). */
FUT_API int fut_get(fut_t *f, int64_t timeout, void **value);

/* Borrows f.  The error of a rejected or cancelled future, valid as long as
 * f; NULL while pending or fulfilled (and for NULL). */
FUT_API const fut_error_t *fut_error(const fut_t *f);

/* Borrows f.  PEP 3148 cancel: a future that had not started becomes
 * FUT_CANCELLED and true is returned (true also if already cancelled); a
 * running task is asked to stop (fut_cancel_requested) and false is
 * returned; a settled future returns false.  Callbacks of a future it
 * cancels run on this thread. */
FUT_API bool fut_cancel(fut_t *f);

/* Borrows f.  Calls cb(f, arg) exactly once when f settles: at once on this
 * thread if it already has, else on the thread that settles it.  Callbacks
 * on one future run in registration order.  Returns 0, EINVAL, or ENOMEM
 * (then cb is never called). */
FUT_API int fut_on_done(fut_t *f, void (*cb)(fut_t *f, void *arg), void *arg);

/* As fut_on_done; free_arg(arg) runs exactly once after cb ran (or, if the
 * call fails, before it returns). */
FUT_API int fut_on_done_ex(fut_t *f, void (*cb)(fut_t *f, void *arg), void *arg,
                           fut_free_fn free_arg);

/* Borrows f.  Calls cb(f, progress, arg) on the notifying thread for each
 * fut_notify / fut_progress while f is pending.  Like jQuery's progress(),
 * a callback added after a notification is called at once with the most
 * recent progress.  Returns 0, EINVAL, ENOMEM, or EALREADY when f has
 * already settled (no more progress will come; cb is not called). */
FUT_API int fut_on_progress(fut_t *f,
                            void (*cb)(fut_t *f, void *progress, void *arg),
                            void *arg);

/* ------------------------------------------------------------- promises */

/* A new unsettled promise with one writer reference, or NULL (ENOMEM). */
FUT_API FUT_NODISCARD fut_promise_t *fut_promise_new(void);

/* A new reference to the promise's future (never NULL; EINVAL-rejected
 * future for a NULL promise). */
FUT_API FUT_NODISCARD fut_t *fut_promise_future(fut_promise_t *p);

/* Fulfils the promise with value; free_value (may be NULL) destroys it once
 * when the future is freed.  Callbacks run on this thread before it
 * returns (called from inside a callback or handler, they run right after
 * that outer callback returns: nested settles go through a per-thread
 * trampoline so chains never grow the stack).  Returns 0, EINVAL (p NULL),
 * or EALREADY if already settled; on either error free_value(value) runs at
 * once, so nothing leaks. */
FUT_API int fut_resolve(fut_promise_t *p, void *value, fut_free_fn free_value);

/* Rejects the promise with code (positive) and a printf-style message.
 * Returns 0, EINVAL (NULL, or code <= 0), or EALREADY. */
FUT_API int fut_reject(fut_promise_t *p, int code, const char *fmt, ...)
    FUT_PRINTF(3, 4);

/* As fut_reject with a code of another domain (see fut_fail_in).  Returns
 * 0, EINVAL (NULL, a negative domain or a zero code), or EALREADY. */
FUT_API int fut_reject_in(fut_promise_t *p, int domain, int code,
                          const char *fmt, ...) FUT_PRINTF(4, 5);

/* Sends progress to the future's fut_on_progress callbacks on this thread.
 * Returns 0, EINVAL, EALREADY once settled, or ENOMEM when the future's
 * first notification cannot allocate the block that keeps the latest
 * progress for listeners added later (nobody heard it). */
FUT_API int fut_notify(fut_promise_t *p, void *progress);

/* Adds a writer reference; returns p. */
FUT_API fut_promise_t *fut_promise_retain(fut_promise_t *p);

/* Drops a writer reference.  When the last one goes while the promise is
 * unsettled, its future rejects with EPIPE (a broken promise).  NULL is a
 * no-op. */
FUT_API void fut_promise_release(fut_promise_t *p);

/* A new future already fulfilled with value (free_value as fut_resolve). */
FUT_API FUT_NODISCARD fut_t *fut_resolved(void *value, fut_free_fn free_value);

/* A new future already rejected with code (EINVAL if code <= 0) and a copy
 * of message (may be NULL). */
FUT_API FUT_NODISCARD fut_t *fut_rejected(int code, const char *message);

/* As fut_rejected with a code of another domain (see fut_fail_in); a
 * negative domain or a zero code gives a future rejected EINVAL. */
FUT_API FUT_NODISCARD fut_t *fut_rejected_in(int domain, int code,
                                             const char *message);

/* ------------------------------------------------------------- chaining */

/* A continuation: runs once its input settles.  It produces the derived
 * future's result the way a task does: return a value (fut_set_free names
 * its destructor), fut_fail to reject, fut_adopt to follow another future.
 * on_value gets the input's value (borrowed for the call); on_error the
 * input's error (borrowed for the call). */
typedef void *(*fut_then_fn)(fut_ctx_t *ctx, void *value, void *arg);
typedef void *(*fut_catch_fn)(fut_ctx_t *ctx, const fut_error_t *err,
                              void *arg);
typedef void (*fut_finally_fn)(fut_t *settled, void *arg);

/* Each consumes f and returns a new reference to the derived future.
 * Semantics (Promises/A+ 2.2, Twisted's callback/errback chain):
 *  - a value skips catch handlers and an error skips then handlers: the
 *    derived future takes the input's outcome unchanged (a cancelled input
 *    makes a cancelled derived future; a catch handler does run for it,
 *    with err->code ECANCELED);
 *  - a catch handler that returns recovers the chain with its value;
 *  - a handler that calls fut_fail switches to the error path;
 *  - a handler that calls fut_adopt makes the derived future follow another
 *    future; one that ends up adopting itself rejects with EDEADLK.
 * Handlers run exactly once, never before f settles, in the order they were
 * registered on f, inline on the thread that settles f (at once, on the
 * calling thread, if f has already settled), or on ex in the _on forms.
 * A settled chain never grows the stack: nested settles are queued on a
 * per-thread trampoline.  Bad arguments return a future rejected EINVAL
 * (and release f).  Cancelling a derived future that has not run asks f to
 * cancel when nothing else holds f. */
FUT_API FUT_NODISCARD fut_t *fut_then(fut_t *f, fut_then_fn on_value,
                                      void *arg);
FUT_API FUT_NODISCARD fut_t *fut_catch(fut_t *f, fut_catch_fn on_error,
                                       void *arg);
/* jQuery then(done, fail): exactly one of the two runs; either may be NULL
 * (the outcome passes through). */
FUT_API FUT_NODISCARD fut_t *fut_then_catch(fut_t *f, fut_then_fn on_value,
                                            fut_catch_fn on_error, void *arg);
/* Runs fn(settled input, arg) on any outcome; the derived future takes the
 * input's outcome unchanged. */
FUT_API FUT_NODISCARD fut_t *fut_finally(fut_t *f, fut_finally_fn fn,
                                         void *arg);

/* The same on an executor (the loop executor hands results back to the
 * thread that drains it).  If ex refuses the continuation (shut down), the
 * derived future rejects with its code. */
FUT_API FUT_NODISCARD fut_t *fut_then_on(fut_executor_t *ex, fut_t *f,
                                         fut_then_fn on_value, void *arg);
FUT_API FUT_NODISCARD fut_t *fut_catch_on(fut_executor_t *ex, fut_t *f,
                                          fut_catch_fn on_error, void *arg);
FUT_API FUT_NODISCARD fut_t *fut_finally_on(fut_executor_t *ex, fut_t *f,
                                            fut_finally_fn fn, void *arg);

/* The general form: ex may be NULL (inline); free_arg (may be NULL) runs
 * exactly once, after the handler ran or was skipped or cancelled (on the
 * thread that did that), or at once when the call fails.  Both handlers
 * NULL: the outcome passes through. */
FUT_API FUT_NODISCARD fut_t *fut_then_ex(fut_executor_t *ex, fut_t *f,
                                         fut_then_fn on_value,
                                         fut_catch_fn on_error, void *arg,
                                         fut_free_fn free_arg);

/* Inside a task or continuation: the future being produced follows other
 * (consumes it) and settles as it settles, with its value (borrowed, kept
 * alive) or error.  Meanwhile it reads FUT_RUNNING (it has started), so
 * fut_cancel only asks it to stop.  Returns NULL, so `return fut_adopt(ctx, g)`
 * reads naturally.  Adopting the future itself rejects it with EDEADLK. */
FUT_API void *fut_adopt(fut_ctx_t *ctx, fut_t *other);

/* ---------------------------------------------------------- combinators */

/* Each consumes the n futures in fs (fs itself is not kept) and returns a
 * new reference.  The inputs' values are borrowed by the result and live as
 * long as it does.  n == 0 with fs NULL is allowed.  The result settles on
 * the thread that settles the deciding input (at once, on the calling
 * thread, if the inputs have already settled), so its callbacks run there.
 * Errors: fs NULL with n > 0 or an unknown kind rejects EINVAL (the inputs
 * are still released); a NULL input counts as an input rejected EINVAL; no
 * memory returns the ENOMEM future.  Any thread may call them. */

/* Value: a void ** of the n values in input order.  Rejects with the first
 * rejection as soon as it happens (jQuery $.when); n == 0 fulfils at once. */
FUT_API FUT_NODISCARD fut_t *fut_when_all(fut_t **fs, size_t n);

/* Value: a fut_t ** of the n inputs, all settled (borrowed from the
 * result).  Never rejects. */
FUT_API FUT_NODISCARD fut_t *fut_when_all_settled(fut_t **fs, size_t n);

/* One input's result, in the value of fut_when_any, fut_when_first and
 * fut_when_some; it lives as long as the result does. */
typedef struct fut_any {
    size_t index; /* which input */
    void *value;  /* its value (borrowed) */
} fut_any_t;

/* First input to fulfil; value: a fut_any_t *.  Rejects only when every
 * input rejected (with the last rejection); n == 0 rejects EINVAL. */
FUT_API FUT_NODISCARD fut_t *fut_when_any(fut_t **fs, size_t n);

/* First input to settle (a race); value: a fut_any_t *, or that input's
 * rejection.  n == 0 rejects EINVAL. */
FUT_API FUT_NODISCARD fut_t *fut_when_first(fut_t **fs, size_t n);

/* First k inputs to fulfil (a quorum); value: a fut_any_t * array of k
 * entries in fulfilment order.  Rejects (with the latest rejection) as soon
 * as k can no longer be reached; k == 0 fulfils at once, k > n rejects
 * EINVAL. */
FUT_API FUT_NODISCARD fut_t *fut_when_some(fut_t **fs, size_t n, size_t k);

/* Flag for fut_when_ex: once the result is decided, cancel the inputs that
 * have not settled and that nothing else holds. */
#define FUT_CANCEL_LOSERS 1u

/* The combinators with flags.  kind: FUT_WHEN_ALL, FUT_WHEN_ALL_SETTLED,
 * FUT_WHEN_ANY, FUT_WHEN_FIRST, FUT_WHEN_SOME (k used only there). */
enum {
    FUT_WHEN_ALL = 0,
    FUT_WHEN_ALL_SETTLED = 1,
    FUT_WHEN_ANY = 2,
    FUT_WHEN_FIRST = 3,
    FUT_WHEN_SOME = 4,
};
FUT_API FUT_NODISCARD fut_t *fut_when_ex(int kind, fut_t **fs, size_t n,
                                         size_t k, unsigned flags);

/* PEP 3148 wait(): borrows the futures; blocks the calling thread (a pool
 * worker runs queued tasks meanwhile) until return_when holds or timeout
 * passes.  Returns 0, ETIMEDOUT, or EINVAL (fs NULL with n > 0, a NULL
 * future, an unknown return_when); *done (may be NULL) receives how many of
 * fs have settled.  FUT_FIRST_EXCEPTION counts rejections, not
 * cancellations. */
#define FUT_FIRST_COMPLETED 1
#define FUT_FIRST_EXCEPTION 2
#define FUT_ALL_COMPLETED 3
FUT_API int fut_wait_for(fut_t *const *fs, size_t n, int64_t timeout,
                         int return_when, size_t *done);

/* PEP 3148 as_completed(): an iterator over fs (borrowed; the iterator keeps
 * its own references) yielding each future once, in the order they settle.
 * fut_iter_next stores the next settled future (borrowed from the iterator)
 * and its index; returns 0, ETIMEDOUT (none settled within timeout, per
 * call), ENOENT when every future has been yielded, EINVAL (it NULL).
 * fut_as_completed returns NULL only on ENOMEM or bad arguments (fs NULL
 * with n > 0, a NULL future).  fut_iter_free(NULL) is a no-op.  One thread
 * at a time may call fut_iter_next on an iterator; any thread may. */
typedef struct fut_iter fut_iter_t;
FUT_API FUT_NODISCARD fut_iter_t *fut_as_completed(fut_t *const *fs, size_t n);
FUT_API int fut_iter_next(fut_iter_t *it, int64_t timeout, fut_t **f,
                          size_t *index);
FUT_API void fut_iter_free(fut_iter_t *it);

/* PEP 3148 map() with chunksize: runs fn(ctx, items[i], arg) for each item
 * on ex, chunk items per task (0: 1).  Value: a void ** of the n results in
 * input order (each destroyed with the destructor its call named).  The
 * first failure rejects the result and cancels chunks not yet started.
 * Borrows items only for the call (the pointers are copied).  fn runs on
 * ex's threads; the result settles on the thread that finishes the last
 * chunk.  Bad arguments (ex or fn NULL, items NULL with n > 0) reject
 * EINVAL; n == 0 fulfils with NULL; no memory: the ENOMEM future.
 * fut_adopt inside fn fails that item with EINVAL. */
typedef void *(*fut_map_fn)(fut_ctx_t *ctx, void *item, void *arg);
FUT_API FUT_NODISCARD fut_t *fut_map(fut_executor_t *ex, fut_map_fn fn,
                                     void *const *items, size_t n, size_t chunk,
                                     void *arg);

/* ---------------------------------------------------------------- fibers */

/* Runs fn(ctx, arg) as a fiber on ex and returns a new reference to its
 * future, like fut_submit (nothing is consumed).  A fiber is a task with a
 * stack of its own: inside it, fut_await suspends the fiber, not the
 * thread, so thousands of waiting fibers share a few workers.  It may
 * resume on another worker of ex: errno and the program's own
 * thread-locals belong to the thread it runs on at the moment.  Stacks are
 * mmap'ed with a guard page (an overflow faults, it never reaches another
 * fiber's memory), 64 KiB by default (fut_pool_config_t.fiber_stack, or
 * stack_size here; at least 16 KiB), of which only the touched pages cost
 * memory, and reused.  No stack (memory, or Linux's vm.max_map_count:
 * about 32,000 fibers alive at once by default): the future rejects
 * ENOMEM.  free_arg as fut_submit_ex.  Bad arguments reject EINVAL. */
FUT_API FUT_NODISCARD fut_t *fut_async(fut_executor_t *ex, fut_fn fn,
                                       void *arg);
FUT_API FUT_NODISCARD fut_t *fut_async_ex(fut_executor_t *ex, fut_fn fn,
                                          void *arg, fut_free_fn free_arg,
                                          size_t stack_size);

/* Borrows f.  In a fiber: suspends the fiber until f settles or timeout
 * passes, while its worker runs other work, and returns what fut_get
 * would: 0 and the value, FUT_TIMEDOUT, f's code (FUT_EFOREIGN for another
 * domain's), or ECANCELED when fut_cancel was called on the fiber's own
 * future meanwhile (f is then still pending: the fiber decides how to
 * finish).  Outside a fiber, or where the fiber cannot give its thread
 * away (inside a callback it runs), it is fut_get. */
FUT_API int fut_await(fut_t *f, int64_t timeout, void **value);

/* In a fiber: lets the other work of its executor run first, then
 * continues.  Elsewhere: sched_yield(). */
FUT_API void fut_yield(void);

/* True on a fiber. */
FUT_API bool fut_in_fiber(void);

/* ----------------------------------------------------------- task groups */

/* Structured concurrency (asyncio.TaskGroup, Trio's nurseries): tasks
 * started in a group end before the group's future settles, so none
 * outlives the code that started it.  Start members with
 * fut_group_submit or fut_group_spawn (tasks) or fut_group_add (futures
 * you have), then
 * fut_group_close: the group's future settles once every member has
 * settled.  Modes (flags of fut_group_new):
 *   FUT_GROUP_ALL      value: void ** of the members' values in start
 *                      order (alive as long as the group's future); the
 *                      first failure cancels the other members and, once
 *                      they have settled, rejects the group with that
 *                      error ("... (and N other members failed)" when more
 *                      failed);
 *   FUT_GROUP_SETTLED  value: fut_t ** of the members, all settled (read
 *                      each outcome); a member's failure cancels nothing;
 *   FUT_GROUP_RACE     value: a fut_any_t * (index, value) of the first
 *                      member to fulfil; the others are cancelled; rejects
 *                      with the last failure when every member failed.
 * Cancelling the group (fut_group_cancel, or fut_cancel on its future,
 * which reads FUT_RUNNING and so returns false) cancels every member that
 * has not settled: queued ones at once, running ones see
 * fut_cancel_requested; the group's future then settles CANCELLED once all
 * have settled.  A deadline cancels the members the same way and rejects
 * the group with ETIMEDOUT.  Every call may come from any thread. */
typedef struct fut_group fut_group_t;

/* Group modes. */
#define FUT_GROUP_ALL 0u
#define FUT_GROUP_SETTLED 1u
#define FUT_GROUP_RACE 2u

/* A new open group whose tasks run on ex.  NULL for a NULL ex or unknown
 * flags (EINVAL) or without memory. */
FUT_API FUT_NODISCARD fut_group_t *fut_group_new(fut_executor_t *ex,
                                                 unsigned flags);

/* A child group on parent's executor: its future is a member of parent
 * (so parent waits for it, and cancelling parent cancels the child's
 * members).  NULL if parent is NULL or closed, or without memory. */
FUT_API FUT_NODISCARD fut_group_t *fut_group_child(fut_group_t *parent,
                                                   unsigned flags);

/* At most max_running members run at once (0: no limit); the others wait,
 * in start order, and start as running ones settle.  Returns 0 or EINVAL
 * (NULL). */
FUT_API int fut_group_limit(fut_group_t *g, size_t max_running);

/* A deadline ns from now: then the members are cancelled and the group
 * rejects with ETIMEDOUT (Trio's fail_after).  Returns 0, EINVAL (NULL,
 * or a deadline set already), ENOMEM. */
FUT_API int fut_group_deadline(fut_group_t *g, int64_t ns);

/* Starts fn(ctx, arg) as a member (or queues it behind the limit) and
 * returns a new reference to its future.  free_arg as fut_submit_ex;
 * flags as fut_submit_ex (FUT_BLOCKING).  A closed group rejects EINVAL;
 * a cancelled one returns a cancelled future (the task never runs). */
FUT_API FUT_NODISCARD fut_t *fut_group_submit(fut_group_t *g, fut_fn fn,
                                              void *arg);
FUT_API FUT_NODISCARD fut_t *fut_group_submit_ex(fut_group_t *g, fut_fn fn,
                                                 void *arg,
                                                 fut_free_fn free_arg,
                                                 unsigned flags);

/* fut_group_submit without a future for the caller (Trio's start_soon, Go's
 * errgroup.Go): the member's outcome reaches the caller through the group's
 * future alone, and the submitter is spared a reference it would drop at
 * once (while a worker runs the task).  Returns 0 (started, or waiting
 * behind the limit); EINVAL (NULL g or fn, or a closed group: nothing
 * added); ECANCELED (the group is cancelled: the member is added cancelled
 * and never runs); ENOMEM (nothing added); or the executor's refusal, such
 * as ESHUTDOWN, which the member rejects with (in FUT_GROUP_ALL, the
 * group's failure).  free_arg runs exactly once on every path. */
FUT_API int fut_group_spawn(fut_group_t *g, fut_fn fn, void *arg);
FUT_API int fut_group_spawn_ex(fut_group_t *g, fut_fn fn, void *arg,
                               fut_free_fn free_arg, unsigned flags);

/* Consumes f: it becomes a member (cancelled with the group).  Returns 0,
 * EINVAL (NULL, or a closed group; f released), ENOMEM (f released). */
FUT_API int fut_group_add(fut_group_t *g, fut_t *f);

/* No more members: returns a new reference to the group's future, which
 * settles once every member has settled (at once if all have).  A second
 * call returns a future rejected EALREADY; NULL g one rejected EINVAL. */
FUT_API FUT_NODISCARD fut_t *fut_group_close(fut_group_t *g);

/* Cancels the members that have not settled (see above).  True if this
 * call cancelled the group, false if it was cancelled or finished already
 * (or g is NULL). */
FUT_API bool fut_group_cancel(fut_group_t *g);

/* The group of the member task running on this thread (borrowed: valid
 * while the task runs), or NULL: a member can start siblings. */
FUT_API fut_group_t *fut_group_current(void);

/* Drops the handle.  A group not closed yet is cancelled, closed and
 * waited for first (no orphans: its members have all settled when this
 * returns).  NULL is a no-op. */
FUT_API void fut_group_release(fut_group_t *g);

/* ---------------------------------------------------------------- timers */

/* A new future fulfilled (value NULL) after ns nanoseconds on
 * CLOCK_MONOTONIC, never earlier (asyncio call_later); ns <= 0 fires at
 * once.  No user code runs on the timer thread: at the deadline the future
 * is settled on fut's timer executor, a small internal pool whose threads
 * run its callbacks and continuations (a callback that blocks makes it
 * start another thread, so it delays no other timer).  Cancelling it
 * removes the timer.  No memory: the ENOMEM future; the timer thread
 * cannot start: rejected with pthread_create's code (ESHUTDOWN once the
 * process is exiting). */
FUT_API FUT_NODISCARD fut_t *fut_delay(int64_t ns);

/* Consumes f; returns a new reference.  Settles as f settles if it does
 * within ns (on the thread that settles f), otherwise rejects ETIMEDOUT on
 * fut's timer executor and asks f to cancel (fut_cancel).  Cancelling the
 * result cancels f when nothing else holds it.  f NULL rejects EINVAL; no
 * memory: the ENOMEM future (f released). */
FUT_API FUT_NODISCARD fut_t *fut_within(fut_t *f, int64_t ns);

/* The same, settled at the deadline on ex (any executor: a pool of yours,
 * a loop executor to have timeouts handed back to your event loop thread).
 * If ex is shut down by then, the future rejects with its code (ESHUTDOWN);
 * if its bounded queue is full, the timer thread settles it itself.  ex
 * NULL rejects EINVAL (f released). */
FUT_API FUT_NODISCARD fut_t *fut_delay_on(fut_executor_t *ex, int64_t ns);
FUT_API FUT_NODISCARD fut_t *fut_within_on(fut_executor_t *ex, fut_t *f,
                                           int64_t ns);

/* ------------------------------------------------------- loop executor */

/* A queue that the caller's own thread drains (asyncio's hand-back to the
 * loop thread).  Tasks and continuations given to it run only inside
 * fut_loop_run_pending / fut_loop_run_until, on the thread that calls them.
 * Returns 0, EINVAL, ENOMEM, or an errno from eventfd. */
FUT_API int fut_loop_new(fut_executor_t **out);

/* An eventfd that is readable while work is queued, for poll/epoll/libuv
 * (fut_loop_run_until may also make it readable to wake its own poll).
 * -1 if loop is not a loop executor.  Owned by the loop: do not close it. */
FUT_API int fut_loop_fd(fut_executor_t *loop);

/* Runs every task queued now (not those they queue) on the calling thread;
 * returns how many ran (0 if loop is not a loop executor).  Call it from
 * one thread at a time: the loop's owner. */
FUT_API size_t fut_loop_run_pending(fut_executor_t *loop);

/* Runs queued work on the calling thread until f settles (borrowed) or
 * timeout passes, sleeping in poll() on the fd meanwhile.  Returns 0,
 * ETIMEDOUT, or EINVAL (not a loop, f NULL).  fut_executor_shutdown on a
 * loop refuses new work; FUT_SHUTDOWN_WAIT does not wait (the loop has no
 * threads: queued work runs when its owner drains it), and
 * fut_executor_free cancels whatever is still queued. */
FUT_API int fut_loop_run_until(fut_executor_t *loop, fut_t *f, int64_t timeout);

/* ------------------------------------------------ unobserved rejections */

/* Called when a rejected future is freed without anyone having read its
 * error (fut_get, fut_error, a catch or then_catch handler, a combinator,
 * or handing it down a chain count as reading).  Runs on the thread that
 * drops the last reference.  NULL restores the default, which prints to
 * stderr when the environment variable FUT_DEBUG is set to 1.  Cancelled
 * futures are not reported.  Any thread may set it. */
typedef void (*fut_unhandled_fn)(const fut_error_t *err, void *arg);
FUT_API void fut_set_unhandled_hook(fut_unhandled_fn hook, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* FUT_H */

/*
 * test_util.h - helpers shared by the fut Check suites.
 *
 * Everything here is written so that a test can run in a Check-forked child
 * or, under valgrind, in one process with CK_FORK=no: helpers own no hidden
 * global state that outlives a test, and every object they create has a
 * matching destroy function.
 *
 * Callbacks that the library runs on other threads must never call
 * ck_assert (Check's failure path is not thread-safe and, with CK_FORK=no,
 * longjmps across threads).  They record what they saw in atomics and the
 * test thread asserts afterwards.
 */
#ifndef FUT_TEST_UTIL_H
#define FUT_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fut.h"

/* ------------------------------------------------------------- suites */

/* One prototype per suite of suites.h. */
#define FUT_TEST_SUITE(name) Suite *fut_test_##name##_suite(void);
#include "suites.h"
#undef FUT_TEST_SUITE

/* Timeouts of Check cases, in seconds (CK_TIMEOUT_MULTIPLIER scales them
 * for valgrind and sanitizer runs). */
#define FUT_TEST_QUICK_TIMEOUT 20.0
#define FUT_TEST_STRESS_TIMEOUT 240.0

/* Casts between small integers and values, for tasks that return numbers. */
#define FUT_TEST_INT(p) ((int)(intptr_t)(p))
#define FUT_TEST_PTR(i) ((void *)(intptr_t)(i))

/* ------------------------------------------------------- time, threads */

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t fut_test_now_ns(void);

/* Sleeps at least ms milliseconds (restarts after signals). */
void fut_test_sleep_ms(int ms);

/* A small integer naming the calling thread (1, 2, ...), stable for the
 * thread's life.  Lets callbacks record "which thread ran me" in an
 * atomic_int. */
int fut_test_thread_id(void);

/* fork(): the child runs fn(arg) (0: all good, else the number of the
 * check that failed), reports through a pipe and leaves with _exit().
 * fut_test_child_run returns true if the child reported "ok" and was not
 * killed, else puts the reason in why; it asserts nothing itself (callers
 * may have threads to stop first).  fut_test_in_child asserts it, naming
 * what.  In the child, fut_test_child_note says why a check failed. */
bool fut_test_child_run(int (*fn)(void *), void *arg, char *why, size_t whylen);
void fut_test_in_child(int (*fn)(void *), void *arg, const char *what);
void fut_test_child_note(const char *fmt, ...) FUT_PRINTF(1, 2);

/* Starts a joinable thread running fn(arg); fails the test if it cannot. */
pthread_t fut_test_spawn(void *(*fn)(void *), void *arg);
void fut_test_join(pthread_t t);

/* Polls cond (with short sleeps) until it holds; fails the test with what
 * after about 60 s.  Use only where the library gives no event to wait
 * on (e.g. stats counters), never to assert an upper bound on time. */
#define FUT_TEST_WAIT_UNTIL(cond, what)                                        \
    do {                                                                       \
        int64_t fut_test_deadline_ = fut_test_now_ns() + FUT_S(60);            \
        while (!(cond)) {                                                      \
            ck_assert_msg(fut_test_now_ns() < fut_test_deadline_,              \
                          "gave up waiting for %s", what);                     \
            fut_test_sleep_ms(1);                                              \
        }                                                                      \
    } while (0)

/* Waits (spinning politely) until *a >= value; fails after about 60 s. */
void fut_test_wait_atomic(atomic_int *a, int value);

/* ----------------------------------------------------------- promises */

/* n new promises, and in fs a reference to each one's future. */
void fut_test_promises(fut_promise_t **ps, fut_t **fs, size_t n);

/* Releases the n promises of ps and the n futures of fs (either array may
 * be NULL), the end of a test that made them with fut_test_promises. */
void fut_test_release_all(fut_promise_t **ps, fut_t **fs, size_t n);

/* What fut_test_settle_later does, from a thread of its own: it sleeps ms
 * milliseconds, so that the test thread is (probably) blocked by then,
 * and settles p: fulfils it with value if code is 0, else rejects it with
 * code.  Correctness never depends on the sleep. */
typedef struct fut_test_later {
    fut_promise_t *p;
    int code;
    int ms;
    void *value;
} fut_test_later_t;

/* A thread function (see fut_test_spawn) for a fut_test_later_t. */
void *fut_test_settle_later(void *later);

/* ------------------------------------------------------ latch, barrier */

/* A one-shot gate that blocks with a plain condition variable.  Tasks that
 * must stay "running" block on a latch, not on a future: fut_wait on a pool
 * worker would run other queued tasks meanwhile (rule 7: no deadlock
 * from waiting inside a task), which
 * would spoil tests that need those tasks to stay queued. */
typedef struct fut_test_latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
} fut_test_latch_t;

void fut_test_latch_init(fut_test_latch_t *l);
void fut_test_latch_open(fut_test_latch_t *l);
void fut_test_latch_wait(fut_test_latch_t *l);
void fut_test_latch_destroy(fut_test_latch_t *l);

/* A reusable barrier for n threads. */
typedef struct fut_test_barrier {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned n, waiting, generation;
} fut_test_barrier_t;

void fut_test_barrier_init(fut_test_barrier_t *b, unsigned n);
void fut_test_barrier_wait(fut_test_barrier_t *b);
void fut_test_barrier_destroy(fut_test_barrier_t *b);

/* ----------------------------------------------- counted destructors */

/* Counts objects made and destroyed.  last_thread is fut_test_thread_id()
 * of the thread that ran the last destructor. */
typedef struct fut_test_tracker {
    atomic_int made;
    atomic_int freed;
    atomic_int last_thread;
} fut_test_tracker_t;

void fut_test_tracker_init(fut_test_tracker_t *t);

/* A pool of `threads` workers; fails the test if it cannot be made. */
fut_executor_t *fut_test_pool(size_t threads);
/* A heap object whose destructor (fut_test_obj_free, a fut_free_fn)
 * counts itself in its tracker.  Valgrind reports a second free. */
typedef struct fut_test_obj {
    fut_test_tracker_t *tracker;
    int value;
} fut_test_obj_t;

fut_test_obj_t *fut_test_obj_new(fut_test_tracker_t *t, int value);
void fut_test_obj_free(void *p);

/* A fut_free_fn for a non-heap atomic_int counter: increments it. */
void fut_test_count_free(void *counter);

/* ---------------------------------------------------------- tasks */

/* The argument of fut_test_task_counted, which counts its runs and returns
 * FUT_TEST_PTR(value).  Given as free_arg, fut_test_counted_free counts
 * the frees and notes the thread that ran the last; given to fut_on_done,
 * fut_test_counted_done counts the callbacks and notes the state that the
 * last one saw (state_seen is -1 until then). */
typedef struct fut_test_counted {
    atomic_int ran;
    atomic_int freed;
    atomic_int free_thread;
    atomic_int state_seen;
    atomic_int done_calls;
    int value;
} fut_test_counted_t;

void fut_test_counted_init(fut_test_counted_t *c, int value);
void *fut_test_task_counted(fut_ctx_t *ctx, void *counted);
void fut_test_counted_free(void *counted);
void fut_test_counted_done(fut_t *f, void *counted);

/* A task that returns its argument. */
void *fut_test_task_identity(fut_ctx_t *ctx, void *arg);

/* A task that blocks: it marks started, waits on latch, marks finished and
 * returns FUT_TEST_PTR(value).  started/finished let the test order itself
 * against the task without sleeping. */
typedef struct fut_test_blocker {
    fut_test_latch_t latch;
    atomic_int started;
    atomic_int finished;
    atomic_int cancel_seen; /* fut_cancel_requested() after the latch */
    int value;
} fut_test_blocker_t;

void fut_test_blocker_init(fut_test_blocker_t *b, int value);
void fut_test_blocker_destroy(fut_test_blocker_t *b);
void *fut_test_task_block(fut_ctx_t *ctx, void *blocker);

/* A pool of one worker that a blocker (of value 1) holds busy, so that
 * what is submitted next stays queued (FUT_PENDING) until the blocker's
 * latch opens.  fut_test_held_finish opens the latch, checks that the
 * blocker fulfilled, frees the pool (every task has then finished) and
 * releases the rest. */
typedef struct fut_test_held {
    fut_executor_t *pool;
    fut_test_blocker_t b;
    fut_t *running;
} fut_test_held_t;

void fut_test_held_start(fut_test_held_t *h);
void fut_test_held_finish(fut_test_held_t *h);

/* ------------------------------------------------ callback records */

/* A log shared by the done-callbacks of one test: how many ran, in which
 * order (the entry indexes, in run order), on which thread, and whether a
 * callback saw something wrong (bad != 0). */
#define FUT_TEST_LOG_MAX 256

typedef struct fut_test_log {
    atomic_int calls;
    atomic_int freed;
    atomic_int bad;
    atomic_int thread; /* fut_test_thread_id() of the last callback */
    atomic_int order[FUT_TEST_LOG_MAX];
} fut_test_log_t;

/* One registration: the arg of fut_test_done_cb / fut_test_entry_free. */
typedef struct fut_test_entry {
    fut_test_log_t *log;
    int index;
    atomic_int ran;            /* times the callback ran */
    atomic_int freed;          /* times free_arg ran */
    atomic_int ran_when_freed; /* ran, as seen by free_arg */
} fut_test_entry_t;

void fut_test_log_init(fut_test_log_t *l);
void fut_test_entry_init(fut_test_entry_t *e, fut_test_log_t *l, int index);

/* A done-callback: records itself in e->log; flags bad if f is not done. */
void fut_test_done_cb(fut_t *f, void *entry);

/* A free_arg for fut_test_entry_t: counts, and notes whether the callback
 * had run by then. */
void fut_test_entry_free(void *entry);

/* ------------------------------------------------------- randomness */

/* The seed of a randomized test: FUT_TEST_SEED from the environment if
 * set, else one derived from the time and pid.  Prints "seed=N" to
 * stderr so that a failure can be replayed with FUT_TEST_SEED=N. */
unsigned fut_test_seed(void);

/* Runs round(seed) for `rounds` consecutive seeds from fut_test_seed(),
 * so that a failure that names seed N replays from FUT_TEST_SEED=N (the
 * seed 0, which xorshift cannot use, is skipped for 1). */
void fut_test_seeded_rounds(int rounds, void (*round)(unsigned seed));

/* A small xorshift generator, one state per thread. */
static inline unsigned fut_test_rand(unsigned *state)
{
    unsigned x = *state ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

#endif /* FUT_TEST_UTIL_H */

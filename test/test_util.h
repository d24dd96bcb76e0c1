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

Suite *fut_test_future_suite(void);
Suite *fut_test_promise_suite(void);
Suite *fut_test_pool_suite(void);
Suite *fut_test_cancel_suite(void);
Suite *fut_test_progress_suite(void);
Suite *fut_test_alloc_suite(void);
Suite *fut_test_fork_suite(void);
Suite *fut_test_race_suite(void);
Suite *fut_test_chain_suite(void);
Suite *fut_test_combinators_suite(void);
Suite *fut_test_wait_suite(void);
Suite *fut_test_timer_suite(void);
Suite *fut_test_loop_suite(void);
Suite *fut_test_unhandled_suite(void);
Suite *fut_test_model_suite(void);

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

/* Starts a joinable thread running fn(arg); fails the test if it cannot. */
pthread_t fut_test_spawn(void *(*fn)(void *), void *arg);
void fut_test_join(pthread_t t);

/* Polls cond (with short sleeps) until it holds; fails the test with what
 * after about 60 s.  Use only where the library gives no event to wait
 * on (e.g. stats counters), never to assert an upper bound on time. */
#define FUT_TEST_WAIT_UNTIL(cond, what)                                       \
    do {                                                                      \
        int64_t fut_test_deadline_ = fut_test_now_ns() + FUT_S(60);           \
        while (!(cond)) {                                                     \
            ck_assert_msg(fut_test_now_ns() < fut_test_deadline_,             \
                          "gave up waiting for %s", what);                    \
            fut_test_sleep_ms(1);                                             \
        }                                                                     \
    } while (0)

/* Waits (spinning politely) until *a >= value; fails after about 60 s. */
void fut_test_wait_atomic(atomic_int *a, int value);

/* ------------------------------------------------------ latch, barrier */

/* A one-shot gate that blocks with a plain condition variable.  Tasks that
 * must stay "running" block on a latch, not on a future: fut_wait on a pool
 * worker would run other queued tasks meanwhile (DESIGN.md rule 7), which
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
/* n new promises, and in fs a reference to each one's future. */
void fut_test_promises(fut_promise_t **ps, fut_t **fs, size_t n);

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
    atomic_int ran;           /* times the callback ran */
    atomic_int freed;         /* times free_arg ran */
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

/* A small xorshift generator, one state per thread. */
static inline unsigned fut_test_rand(unsigned *state) {
    unsigned x = *state ? *state : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

#endif /* FUT_TEST_UTIL_H */

/*
 * test_reliability.c - regression tests for defects an outside probe of
 * the public API found, each named for what it guards.  Every case here
 * failed (crashed, leaked, overflowed its stack or timed out) before the
 * fix it guards.
 *
 *  - a queued continuation that its executor rejects (shutdown, broken
 *    pool) runs its free_arg and releases its input; it never calls its
 *    argument as a function;
 *  - a continuation whose executor was freed while its input was pending
 *    rejects with ESHUTDOWN when the input settles (no use after free);
 *  - rule 6, no unbounded recursion, also outside settling: cancelling the
 *    tail of a pending chain, cancelling nested combinators, releasing
 *    nested combinators, relaying progress down a chain;
 *  - progress under allocation failure: nothing stays allocated, and a
 *    listener either hears the head's progress or fut_on_progress says
 *    ENOMEM;
 *  - building a pending line of adoptions takes linear time.
 */
#include "test_util.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- helpers */

static void *h_pass(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx, (void)arg;
    return value;
}

static void *h_count(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    atomic_fetch_add((atomic_int *)arg, 1);
    return value;
}

static void fin_count(fut_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* An argument that tells a handler's run from its destructor's. */
typedef struct calls {
    atomic_int ran, freed;
} calls_t;

static void *h_calls(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    atomic_fetch_add(&((calls_t *)arg)->ran, 1);
    return value;
}

static void calls_free(void *arg)
{
    atomic_fetch_add(&((calls_t *)arg)->freed, 1);
}

/* An allocator that counts live objects and bytes, and fails allocation
 * number fail_at (1-based; 0: never) and, with fail_after, every one from
 * there on. */
typedef struct counting {
    atomic_long live, bytes, calls;
    long fail_at;
    bool fail_after;
} counting_t;

static void *counting_alloc(size_t size, void *ctx)
{
    counting_t *c = ctx;
    long n = atomic_fetch_add(&c->calls, 1) + 1;
    if (c->fail_at && (n == c->fail_at || (c->fail_after && n > c->fail_at)))
        return NULL;
    void *p = malloc(size);
    if (p) {
        atomic_fetch_add(&c->live, 1);
        atomic_fetch_add(&c->bytes, (long)size);
    }
    return p;
}

static void counting_free(void *p, size_t size, void *ctx)
{
    counting_t *c = ctx;
    if (!p)
        return;
    atomic_fetch_sub(&c->live, 1);
    atomic_fetch_sub(&c->bytes, (long)size);
    free(p);
}

static void counting_install(counting_t *c, long fail_at, bool fail_after)
{
    memset(c, 0, sizeof *c);
    c->fail_at = fail_at;
    c->fail_after = fail_after;
    fut_allocator_t a = {counting_alloc, counting_free, c};
    ck_assert_int_eq(fut_set_allocator(&a), 0);
}

/* Restores malloc (which hands every cached block back to the counting
 * allocator) and checks that nothing it gave is still alive. */
static void counting_check_empty(counting_t *c, const char *what)
{
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    ck_assert_msg(atomic_load(&c->live) == 0 && atomic_load(&c->bytes) == 0,
                  "%s: %ld objects (%ld bytes) still allocated", what,
                  atomic_load(&c->live), atomic_load(&c->bytes));
}

#define STACK_256KIB ((size_t)256 << 10)

/* Runs fn(arg) on a new thread with a 256 KiB stack and joins it. */
static void on_small_stack(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    ck_assert_int_eq(pthread_attr_init(&attr), 0);
    ck_assert_int_eq(pthread_attr_setstacksize(&attr, STACK_256KIB), 0);
    pthread_t t;
    int rc = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    ck_assert_msg(rc == 0, "pthread_create: %d", rc);
    fut_test_join(t);
}

enum { DEPTH_QUICK = 100000, DEPTH_STRESS = 1000000 };

/* ---------------------------------- executors rejecting continuations */

/* The loop executor cancels what is still queued when it is freed: a
 * continuation queued there is cancelled, its handler never runs, its
 * free_arg runs once and its input is released (valgrind and ASan see a
 * leak or a call through the argument otherwise). */
START_TEST(queued_continuation_cancelled_by_loop_free_runs_free_arg_only)
{
    fut_executor_t *loop = NULL;
    ck_assert_int_eq(fut_loop_new(&loop), 0);
    calls_t c = {0}, c2 = {0};
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_t *in = fut_resolved(fut_test_obj_new(&tr, 1), fut_test_obj_free);
    fut_t *d = fut_then_ex(loop, in, h_calls, NULL, &c, calls_free);
    fut_t *d2 = fut_then_on(loop, fut_resolved(NULL, NULL), h_calls, &c2);
    ck_assert_int_eq(fut_state(d), FUT_PENDING); /* queued on the loop */
    fut_executor_free(loop);
    ck_assert_int_eq(fut_state(d), FUT_CANCELLED);
    ck_assert_int_eq(fut_state(d2), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&c.ran), 0);
    ck_assert_int_eq(atomic_load(&c.freed), 1);
    ck_assert_int_eq(atomic_load(&c2.ran), 0);
    ck_assert_int_eq(atomic_load(&tr.freed), 1); /* the input was released */
    fut_release(d);
    fut_release(d2);
}
END_TEST

/* A pool of one thread whose worker is held on a latch, so that what is
 * submitted meanwhile stays queued. */
static fut_executor_t *held_pool(fut_test_blocker_t *b, fut_t **blocker)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_test_blocker_init(b, 0);
    *blocker = fut_submit(pool, fut_test_task_block, b);
    fut_test_wait_atomic(&b->started, 1);
    return pool;
}

START_TEST(queued_continuation_cancelled_by_pool_shutdown_runs_free_arg_only)
{
    fut_test_blocker_t b;
    fut_t *blocker;
    fut_executor_t *pool = held_pool(&b, &blocker);
    calls_t c = {0}, c2 = {0};
    fut_t *d = fut_then_on(pool, fut_resolved(NULL, NULL), h_calls, &c);
    fut_t *e = fut_then_ex(pool, fut_resolved(NULL, NULL), h_calls, NULL, &c2,
                           calls_free);
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    ck_assert_int_eq(fut_state(d), FUT_CANCELLED);
    ck_assert_int_eq(fut_state(e), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&c.ran), 0);
    ck_assert_int_eq(atomic_load(&c2.ran), 0);
    ck_assert_int_eq(atomic_load(&c2.freed), 1); /* free_arg, not the call */
    fut_test_latch_open(&b.latch);
    ck_assert_int_eq(fut_wait(blocker, FUT_FOREVER), 0);
    fut_executor_free(pool);
    fut_release(blocker);
    fut_release(d);
    fut_release(e);
    fut_test_blocker_destroy(&b);
}
END_TEST

static int init_fails(void *arg)
{
    (void)arg;
    return EACCES;
}

START_TEST(continuation_on_broken_pool_rejects_with_the_initializer_code)
{
    fut_pool_config_t cfg = {.threads = 1, .worker_init = init_fails};
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), 0);
    atomic_int ran = 0;
    calls_t c = {0};
    fut_t *d = fut_then_on(pool, fut_resolved(NULL, NULL), h_count, &ran);
    fut_t *e = fut_finally_on(pool, fut_resolved(NULL, NULL), fin_count, &ran);
    fut_t *g = fut_then_ex(pool, fut_resolved(NULL, NULL), h_calls, NULL, &c,
                           calls_free);
    ck_assert_int_eq(fut_get(d, FUT_FOREVER, NULL), EACCES);
    ck_assert_int_eq(fut_get(e, FUT_FOREVER, NULL), EACCES);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EACCES);
    ck_assert_int_eq(atomic_load(&ran), 0);
    ck_assert_int_eq(atomic_load(&c.ran), 0);
    ck_assert_int_eq(atomic_load(&c.freed), 1);
    fut_release(d);
    fut_release(e);
    fut_release(g);
    fut_executor_free(pool);
}
END_TEST

/* ------------------------------- a continuation outlives its executor */

static void check_outlives(fut_executor_t *ex)
{
    fut_promise_t *p = fut_promise_new();
    atomic_int ran = 0;
    calls_t c = {0};
    fut_t *d = fut_then_on(ex, fut_promise_future(p), h_count, &ran);
    fut_t *e =
        fut_then_ex(ex, fut_promise_future(p), h_calls, NULL, &c, calls_free);
    fut_executor_free(ex); /* while both wait for p */
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    ck_assert_int_eq(fut_get(d, FUT_FOREVER, NULL), ESHUTDOWN);
    ck_assert_int_eq(fut_get(e, FUT_FOREVER, NULL), ESHUTDOWN);
    ck_assert_int_eq(atomic_load(&ran), 0);
    ck_assert_int_eq(atomic_load(&c.ran), 0);
    ck_assert_int_eq(atomic_load(&c.freed), 1);
    fut_release(d);
    fut_release(e);
    fut_promise_release(p);
}

START_TEST(continuation_on_freed_pool_rejects_eshutdown)
{
    check_outlives(fut_test_pool(2));
}
END_TEST

START_TEST(continuation_on_freed_loop_rejects_eshutdown)
{
    fut_executor_t *loop = NULL;
    ck_assert_int_eq(fut_loop_new(&loop), 0);
    check_outlives(loop);
}
END_TEST

/* A continuation cancelled while its executor is gone: nothing to run. */
START_TEST(continuation_cancelled_after_its_pool_was_freed)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p); /* held: the cancel leaves it alone */
    atomic_int ran = 0;
    fut_t *d = fut_then_on(pool, fut_retain(pf), h_count, &ran);
    fut_executor_free(pool);
    ck_assert(fut_cancel(d));
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    ck_assert_int_eq(atomic_load(&ran), 0);
    fut_release(d);
    fut_release(pf);
    fut_promise_release(p);
}
END_TEST

/* ----------------------------------- rule 6 outside settling: cancel */

typedef struct depth {
    size_t n;
    int rc;
    bool ok;
} depth_t;

/* Cancels the tail of an n-long pending then-chain: every link cancels. */
static void *cancel_chain_body(void *arg)
{
    depth_t *j = arg;
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_promise_future(p);
    for (size_t i = 0; i < j->n; i++)
        g = fut_then(g, h_pass, NULL);
    j->ok = fut_cancel(g);
    /* Nothing else held the links, so the cancel reached the head: the
     * promise is settled (cancelled) already. */
    j->rc = fut_resolve(p, NULL, NULL) == EALREADY ? 0 : -1;
    fut_release(g);
    fut_promise_release(p);
    return NULL;
}

static void check_cancel_chain(size_t n)
{
    depth_t j = {.n = n, .rc = -2};
    on_small_stack(cancel_chain_body, &j);
    ck_assert(j.ok);
    ck_assert_int_eq(j.rc, 0);
}

START_TEST(cancel_tail_of_100k_pending_chain_on_256kib_stack)
{
    check_cancel_chain(DEPTH_QUICK);
}
END_TEST

START_TEST(cancel_tail_of_1m_pending_chain_on_256kib_stack)
{
    check_cancel_chain(DEPTH_STRESS);
}
END_TEST

/* Nests n combinators of one input each (kind picks which), around a
 * pending promise, and cancels the outermost. */
static fut_t *nest(fut_t *f, int kind)
{
    switch (kind) {
    case 0:
        return fut_when_all(&f, 1);
    case 1:
        return fut_when_any(&f, 1);
    default:
        return fut_within(f, FUT_S(3600));
    }
}

typedef struct nest_job {
    size_t n;
    int kind;
    bool cancel; /* cancel the outermost; else settle the head, release */
    int rc;
} nest_job_t;

static void *nest_body(void *arg)
{
    nest_job_t *j = arg;
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_promise_future(p);
    for (size_t i = 0; i < j->n; i++)
        g = nest(g, j->kind);
    if (j->cancel) {
        bool ok = fut_cancel(g);
        /* The cancel reached the head: the promise is settled already. */
        j->rc = ok && fut_resolve(p, NULL, NULL) == EALREADY ? 0 : -1;
        fut_release(g);
    } else {
        fut_resolve(p, NULL, NULL);
        j->rc = fut_wait(g, FUT_FOREVER);
        fut_release(g); /* frees n nested results, one inside the other */
    }
    fut_promise_release(p);
    return NULL;
}

static void check_nest(size_t n, int kind, bool cancel)
{
    nest_job_t j = {.n = n, .kind = kind, .cancel = cancel, .rc = -2};
    on_small_stack(nest_body, &j);
    ck_assert_int_eq(j.rc, 0);
}

START_TEST(cancel_100k_nested_when_all_on_256kib_stack)
{
    check_nest(DEPTH_QUICK, 0, true);
}
END_TEST

START_TEST(cancel_100k_nested_when_any_on_256kib_stack)
{
    check_nest(DEPTH_QUICK, 1, true);
}
END_TEST

START_TEST(cancel_100k_nested_within_on_256kib_stack)
{
    check_nest(DEPTH_QUICK, 2, true);
}
END_TEST

START_TEST(release_100k_nested_when_all_on_256kib_stack)
{
    check_nest(DEPTH_QUICK, 0, false);
}
END_TEST

START_TEST(cancel_and_release_1m_nested_combinators_on_256kib_stack)
{
    for (int kind = 0; kind < 3; kind++)
        check_nest(DEPTH_STRESS, kind, true);
    check_nest(DEPTH_STRESS, 0, false);
}
END_TEST

/* --------------------------- rule 6 outside settling: progress relays */

static void progress_seen(fut_t *f, void *progress, void *arg)
{
    (void)f;
    atomic_store((atomic_int *)arg, FUT_TEST_INT(progress));
}

static void *relay_body(void *arg)
{
    depth_t *j = arg;
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_promise_future(p);
    for (size_t i = 0; i < j->n; i++)
        g = fut_then(g, h_pass, NULL);
    atomic_int seen = 0;
    j->rc = fut_on_progress(g, progress_seen, &seen);
    if (j->rc == 0)
        j->rc = fut_notify(p, FUT_TEST_PTR(42));
    j->ok = atomic_load(&seen) == 42;
    fut_resolve(p, NULL, NULL);
    fut_release(g);
    fut_promise_release(p);
    return NULL;
}

static void check_relay(size_t n)
{
    depth_t j = {.n = n, .rc = -2};
    on_small_stack(relay_body, &j);
    ck_assert_int_eq(j.rc, 0);
    ck_assert(j.ok);
}

START_TEST(notify_relayed_down_100k_chain_on_256kib_stack)
{
    check_relay(DEPTH_QUICK);
}
END_TEST

START_TEST(notify_relayed_down_1m_chain_on_256kib_stack)
{
    check_relay(DEPTH_STRESS);
}
END_TEST

/* ------------------------------ progress under allocation failure */

/* Fails each allocation of fut_on_progress on a fresh future in turn; after
 * releasing everything, nothing the allocator gave may be alive (a bucket
 * array of the progress table was left behind, then freed through whatever
 * allocator was installed later). */
START_TEST(progress_allocation_failure_leaves_nothing_allocated)
{
    for (long k = 1; k <= 8; k++) {
        counting_t c;
        counting_install(&c, k, false);
        fut_promise_t *p = fut_promise_new();
        atomic_int seen = 0;
        if (p) {
            fut_t *f = fut_promise_future(p);
            int rc = fut_on_progress(f, progress_seen, &seen);
            ck_assert_msg(rc == 0 || rc == ENOMEM, "k=%ld rc=%d", k, rc);
            fut_release(f);
            fut_promise_release(p);
        }
        counting_check_empty(&c, "after a failed fut_on_progress");
        /* And with malloc back, progress works on many futures. */
        fut_promise_t *ps[64];
        fut_t *fs[64];
        fut_test_promises(ps, fs, 64);
        for (int i = 0; i < 64; i++) {
            ck_assert_int_eq(fut_on_progress(fs[i], progress_seen, &seen), 0);
            ck_assert_int_eq(fut_notify(ps[i], FUT_TEST_PTR(i + 1)), 0);
            ck_assert_int_eq(atomic_load(&seen), i + 1);
            fut_release(fs[i]);
            fut_promise_release(ps[i]);
        }
    }
}
END_TEST

/* On a 3-link chain, failing allocation k: fut_on_progress returns 0 and
 * the listener hears the head's progress, or it returns ENOMEM (and then a
 * second call, with memory, succeeds and hears it). */
START_TEST(progress_listener_hears_the_chain_or_gets_enomem)
{
    for (long k = 1; k <= 16; k++) {
        for (int after = 0; after < 2; after++) {
            fut_promise_t *p = fut_promise_new();
            fut_t *g = fut_promise_future(p);
            for (int i = 0; i < 3; i++)
                g = fut_then(g, h_pass, NULL);
            atomic_int seen = 0;
            counting_t c;
            counting_install(&c, k, after);
            int rc = fut_on_progress(g, progress_seen, &seen);
            ck_assert_int_eq(fut_set_allocator(NULL), 0);
            ck_assert_msg(rc == 0 || rc == ENOMEM, "k=%ld rc=%d", k, rc);
            if (rc == ENOMEM)
                ck_assert_int_eq(fut_on_progress(g, progress_seen, &seen), 0);
            ck_assert_int_eq(fut_notify(p, FUT_TEST_PTR(7)), 0);
            ck_assert_msg(atomic_load(&seen) == 7,
                          "k=%ld after=%d rc=%d: the listener heard nothing", k,
                          after, rc);
            fut_resolve(p, NULL, NULL);
            fut_release(g);
            fut_promise_release(p);
        }
    }
}
END_TEST

/* ------------------------------------------ adoption in linear time */

static void *h_adopt_arg(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)value;
    return fut_adopt(ctx, arg);
}

/* Link i+1 adopts link i, all pending on one promise; then the promise
 * settles the whole line. */
static void *adopt_line_body(void *arg)
{
    depth_t *j = arg;
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_promise_future(p);
    for (size_t i = 0; i < j->n; i++)
        g = fut_then(fut_resolved(NULL, NULL), h_adopt_arg, g);
    j->ok = fut_state(g) == FUT_RUNNING; /* adopting, not settled */
    fut_resolve(p, FUT_TEST_PTR(5), NULL);
    void *v = NULL;
    j->rc = fut_get(g, FUT_FOREVER, &v);
    j->ok = j->ok && v == FUT_TEST_PTR(5);
    fut_release(g);
    fut_promise_release(p);
    return NULL;
}

static void check_adopt_line(size_t n)
{
    depth_t j = {.n = n, .rc = -2};
    on_small_stack(adopt_line_body, &j);
    ck_assert_int_eq(j.rc, 0);
    ck_assert(j.ok);
}

/* The quadratic search took 38 s for 100,000 links; linear takes well
 * under the case's timeout. */
START_TEST(adoption_line_of_100k_builds_in_linear_time)
{
    check_adopt_line(DEPTH_QUICK);
}
END_TEST

START_TEST(adoption_line_of_1m_builds_in_linear_time)
{
    check_adopt_line(DEPTH_STRESS);
}
END_TEST

/* The hint that makes it linear must not hide a loop: a link that adopts
 * the last link of the line it heads deadlocks, and says so. */
static void *h_adopt_tail(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)value;
    fut_t **tail = arg;
    return fut_adopt(ctx, fut_retain(*tail));
}

START_TEST(adoption_loop_through_a_long_line_rejects_edeadlk)
{
    fut_promise_t *gate = fut_promise_new();
    fut_t *tail = NULL;
    /* The head waits for the gate; when it runs it adopts the tail. */
    fut_t *head = fut_then(fut_promise_future(gate), h_adopt_tail, &tail);
    fut_t *g = fut_retain(head);
    for (int i = 0; i < 1000; i++)
        g = fut_then(fut_resolved(NULL, NULL), h_adopt_arg, g);
    tail = g;
    ck_assert_int_eq(fut_resolve(gate, NULL, NULL), 0);
    ck_assert_int_eq(fut_get(head, FUT_S(10), NULL), EDEADLK);
    ck_assert_int_eq(fut_get(tail, FUT_S(10), NULL), EDEADLK);
    fut_release(head);
    fut_release(tail);
    fut_promise_release(gate);
}
END_TEST

/* ------------------------------------------ found by model and fuzzing */

static void *task_one(fut_ctx_t *ctx, void *arg)
{
    (void)ctx, (void)arg;
    return FUT_TEST_PTR(1);
}

/* A task queued on an idle pool right before a plain shutdown still runs:
 * the workers' last look for work could come before it, and they left on
 * seeing the pool closed (the model found it: the task never settled). */
START_TEST(plain_shutdown_runs_a_task_queued_just_before_it)
{
    for (int round = 0; round < 3000; round++) {
        fut_executor_t *pool = fut_test_pool(1);
        fut_t *warm = fut_submit(pool, task_one, NULL);
        ck_assert_int_eq(fut_wait(warm, FUT_FOREVER), 0);
        fut_release(warm);
        for (int i = 0; i < round % 64; i++)
            sched_yield(); /* the worker goes idle at some point */
        fut_t *f = fut_submit(pool, task_one, NULL);
        ck_assert_int_eq(fut_executor_shutdown(pool, 0), 0);
        ck_assert_msg(fut_wait(f, FUT_S(10)) == 0, "round %d: stranded", round);
        ck_assert_int_eq(fut_get(f, 0, NULL), 0);
        fut_release(f);
        fut_executor_free(pool);
    }
}
END_TEST

/* fut_within on an input that has settled passes it through, however
 * short the deadline (the timer was armed before the input was looked at,
 * and won about one time in twenty). */
START_TEST(within_on_a_settled_input_never_times_out)
{
    for (int round = 0; round < 2000; round++) {
        fut_t *w = fut_within(fut_resolved(FUT_TEST_PTR(7), NULL),
                              round % 2 ? 0 : FUT_US(50));
        void *v = NULL;
        ck_assert_int_eq(fut_get(w, FUT_FOREVER, &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), 7);
        fut_release(w);
    }
}
END_TEST

typedef struct settle_job {
    fut_promise_t *p;
} settle_job_t;

static void *settle_thread(void *arg)
{
    fut_resolve(((settle_job_t *)arg)->p, NULL, NULL);
    return NULL;
}

/* A continuation on a loop is cancelled while its input settles on another
 * thread; then the loop is freed.  The settling thread must not submit to
 * the freed loop (the fuzzer found a heap-use-after-free there). */
START_TEST(cancel_racing_input_settle_then_free_executor)
{
    for (int round = 0; round < 2000; round++) {
        fut_executor_t *loop = NULL;
        ck_assert_int_eq(fut_loop_new(&loop), 0);
        fut_promise_t *p = fut_promise_new();
        fut_t *pf = fut_promise_future(p);
        fut_t *d = fut_then_on(loop, fut_retain(pf), h_pass, NULL);
        settle_job_t job = {p};
        pthread_t t = fut_test_spawn(settle_thread, &job);
        fut_cancel(d);
        fut_test_join(t);
        fut_executor_free(loop); /* runs or cancels what is queued */
        ck_assert(fut_done(d));
        fut_release(d);
        fut_release(pf);
        fut_promise_release(p);
    }
}
END_TEST

/* A retiring extra thread runs worker_exit before fut_executor_free
 * returns (it left the pool's count first, so free returned while
 * worker_exit still ran). */
static atomic_int inits, exits;

static int count_init(void *arg)
{
    (void)arg;
    atomic_fetch_add(&inits, 1);
    return 0;
}

static void slow_exit(void *arg)
{
    (void)arg;
    if (fut_pool_worker_index() > 0)
        fut_test_sleep_ms(50); /* an extra thread: slow to leave */
    atomic_fetch_add(&exits, 1);
}

static void *task_blocking_5ms(fut_ctx_t *ctx, void *arg)
{
    (void)ctx, (void)arg;
    fut_test_sleep_ms(5);
    return NULL;
}

START_TEST(extra_threads_run_worker_exit_before_free_returns)
{
    atomic_store(&inits, 0);
    atomic_store(&exits, 0);
    fut_pool_config_t cfg = {.threads = 1,
                             .max_threads = 4,
                             .keep_alive = FUT_MS(1),
                             .worker_init = count_init,
                             .worker_exit = slow_exit};
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), 0);
    fut_t *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] =
            fut_submit_ex(pool, task_blocking_5ms, NULL, NULL, FUT_BLOCKING);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fut_wait(fs[i], FUT_FOREVER), 0);
        fut_release(fs[i]);
    }
    fut_test_sleep_ms(8); /* extra threads retire: in worker_exit now */
    fut_executor_free(pool);
    ck_assert_int_ge(atomic_load(&inits), 2); /* an extra thread ran */
    ck_assert_int_eq(atomic_load(&exits), atomic_load(&inits));
}
END_TEST

/* The trampoline's FIFO grows into heap memory for a burst of dispatches
 * (one settle releasing hundreds of continuations).  That memory was kept
 * until the thread exited, so the timer's worker, which lives to the end of
 * the process, left it for LeakSanitizer to report (found by fuzzing).  The
 * burst here runs on that worker; under the asan workflow LeakSanitizer
 * then checks, as libFuzzer does, while the worker is still alive (its
 * thread-local storage is not scanned as a root). */
#if defined(__SANITIZE_ADDRESS__)
#define FUT_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUT_TEST_LSAN 1
#endif
#endif
#if FUT_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static void *pass_value(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx, (void)arg;
    return value;
}

START_TEST(trampoline_burst_on_timer_worker_leaves_no_heap_behind)
{
    enum { N = 300 };
    fut_t *delay = fut_delay(FUT_MS(1));
    fut_t *tails[N];
    for (int i = 0; i < N; i++) {
        fut_t *mid = fut_then(fut_retain(delay), pass_value, NULL);
        tails[i] = fut_then(mid, pass_value, NULL);
    }
    fut_release(delay);
    fut_t *all = fut_when_all(tails, N);
    ck_assert_int_eq(fut_wait(all, FUT_FOREVER), 0);
    ck_assert_int_eq(fut_state(all), FUT_FULFILLED);
    fut_release(all); /* when_all consumed the tails */
#if FUT_TEST_LSAN
    ck_assert_int_eq(__lsan_do_recoverable_leak_check(), 0);
#endif
}
END_TEST

Suite *fut_test_reliability_suite(void)
{
    Suite *s = suite_create("reliability");
    TCase *tc = tcase_create("quick");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(
        tc, queued_continuation_cancelled_by_loop_free_runs_free_arg_only);
    tcase_add_test(
        tc, queued_continuation_cancelled_by_pool_shutdown_runs_free_arg_only);
    tcase_add_test(
        tc, continuation_on_broken_pool_rejects_with_the_initializer_code);
    tcase_add_test(tc, continuation_on_freed_pool_rejects_eshutdown);
    tcase_add_test(tc, continuation_on_freed_loop_rejects_eshutdown);
    tcase_add_test(tc, continuation_cancelled_after_its_pool_was_freed);
    tcase_add_test(tc, cancel_tail_of_100k_pending_chain_on_256kib_stack);
    tcase_add_test(tc, cancel_100k_nested_when_all_on_256kib_stack);
    tcase_add_test(tc, cancel_100k_nested_when_any_on_256kib_stack);
    tcase_add_test(tc, cancel_100k_nested_within_on_256kib_stack);
    tcase_add_test(tc, release_100k_nested_when_all_on_256kib_stack);
    tcase_add_test(tc, notify_relayed_down_100k_chain_on_256kib_stack);
    tcase_add_test(tc, progress_allocation_failure_leaves_nothing_allocated);
    tcase_add_test(tc, progress_listener_hears_the_chain_or_gets_enomem);
    tcase_add_test(tc, adoption_line_of_100k_builds_in_linear_time);
    tcase_add_test(tc, adoption_loop_through_a_long_line_rejects_edeadlk);
    tcase_add_test(tc, plain_shutdown_runs_a_task_queued_just_before_it);
    tcase_add_test(tc, within_on_a_settled_input_never_times_out);
    tcase_add_test(tc, cancel_racing_input_settle_then_free_executor);
    tcase_add_test(tc, extra_threads_run_worker_exit_before_free_returns);
    tcase_add_test(tc, trampoline_burst_on_timer_worker_leaves_no_heap_behind);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("stress");
    tcase_set_tags(st, "stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(st, cancel_tail_of_1m_pending_chain_on_256kib_stack);
    tcase_add_test(st,
                   cancel_and_release_1m_nested_combinators_on_256kib_stack);
    tcase_add_test(st, notify_relayed_down_1m_chain_on_256kib_stack);
    tcase_add_test(st, adoption_line_of_1m_builds_in_linear_time);
    suite_add_tcase(s, st);
    return s;
}

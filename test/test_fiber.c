/*
 * test_fiber.c - fibers: fut_await of settled, pending, rejected and
 * cancelled futures; timeouts; cancel of a suspended fiber; fibers that
 * await fibers 1,000 deep; fut_yield; await outside a fiber; a fiber on the
 * loop executor; no stack -> ENOMEM; a stack overflow that hits the guard
 * page; and 100,000 suspended fibers (stress).
 */
#include "test_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Awaits the future in arg and returns what it got (value + 1, or the
 * negative code). */
static void *fiber_await_arg(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    void *v = NULL;
    int rc = fut_await(arg, FUT_FOREVER, &v);
    return rc ? FUT_TEST_PTR(-rc) : FUT_TEST_PTR(FUT_TEST_INT(v) + 1);
}

START_TEST(fiber_awaits_a_settled_and_a_pending_future)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_t *done = fut_resolved(FUT_TEST_PTR(1), NULL);
    fut_t *a = fut_async(pool, fiber_await_arg, done);
    void *v = NULL;
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(a);
    fut_release(done);

    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *b = fut_async(pool, fiber_await_arg, pf);
    fut_test_sleep_ms(10); /* let it suspend */
    ck_assert_int_eq(fut_state(b), FUT_RUNNING);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(41), NULL), 0);
    ck_assert_int_eq(fut_get(b, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 42);
    fut_release(b);
    fut_release(pf);
    fut_promise_release(p);
    fut_executor_free(pool);
}
END_TEST

START_TEST(fiber_await_returns_rejection_and_cancellation_codes)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *a = fut_async(pool, fiber_await_arg, pf);
    ck_assert_int_eq(fut_reject(p, EIO, "broken"), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), -EIO);
    fut_release(a);
    fut_release(pf);
    fut_promise_release(p);

    p = fut_promise_new();
    pf = fut_promise_future(p);
    a = fut_async(pool, fiber_await_arg, pf);
    fut_test_sleep_ms(5);
    ck_assert(fut_cancel(pf));
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), -ECANCELED);
    fut_release(a);
    fut_release(pf);
    fut_promise_release(p);
    fut_executor_free(pool);
}
END_TEST

static void *fiber_await_10ms(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    int rc = fut_await(arg, FUT_MS(10), NULL);
    return FUT_TEST_PTR(rc);
}

/* The timeout is the wait's: FUT_TIMEDOUT, the future still pending. */
START_TEST(fiber_await_times_out)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *a = fut_async(pool, fiber_await_10ms, pf);
    void *v = NULL;
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), FUT_TIMEDOUT);
    ck_assert_int_eq(fut_state(pf), FUT_PENDING);
    fut_release(a);
    fut_release(pf);
    fut_promise_release(p);
    fut_executor_free(pool);
}
END_TEST

/* An await that timed out leaves its wake on a future still pending; the
 * next await must neither lose its own wake nor be woken by the old one
 * when that future settles later. */
typedef struct two_waits {
    fut_t *first, *second;
    atomic_int stage; /* 1: first timed out, 2: second returned */
    atomic_int second_value;
} two_waits_t;

static void *fiber_await_twice(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    two_waits_t *t = arg;
    if (fut_await(t->first, FUT_MS(1), NULL) != FUT_TIMEDOUT)
        return FUT_TEST_PTR(-1);
    atomic_store(&t->stage, 1);
    void *v = NULL;
    int rc = fut_await(t->second, FUT_FOREVER, &v);
    atomic_store(&t->second_value, rc ? -rc : FUT_TEST_INT(v));
    atomic_store(&t->stage, 2);
    return NULL;
}

START_TEST(fiber_await_after_a_timeout_ignores_the_old_wake)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_promise_t *p1 = fut_promise_new(), *p2 = fut_promise_new();
    two_waits_t t = {.first = fut_promise_future(p1),
                     .second = fut_promise_future(p2)};
    fut_t *a = fut_async(pool, fiber_await_twice, &t);
    fut_test_wait_atomic(&t.stage, 1);
    fut_test_sleep_ms(2); /* the fiber is suspended on the second */
    ck_assert_int_eq(fut_resolve(p1, FUT_TEST_PTR(1), NULL), 0);
    fut_test_sleep_ms(5);
    ck_assert_int_eq(atomic_load(&t.stage), 1); /* the old wake: ignored */
    ck_assert_int_eq(fut_resolve(p2, FUT_TEST_PTR(2), NULL), 0);
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(atomic_load(&t.stage), 2);
    ck_assert_int_eq(atomic_load(&t.second_value), 2);
    fut_release(a);
    fut_release(t.first);
    fut_release(t.second);
    fut_promise_release(p1);
    fut_promise_release(p2);
    fut_executor_free(pool);
}
END_TEST

/* Cancelling a suspended fiber makes its pending await return ECANCELED;
 * the fiber decides how to finish (here: with a value). */
static void *fiber_until_cancelled(fut_ctx_t *ctx, void *arg)
{
    int rc = fut_await(arg, FUT_FOREVER, NULL);
    if (rc == ECANCELED && fut_cancel_requested(ctx))
        return FUT_TEST_PTR(99);
    return fut_fail(ctx, EPROTO, "await returned %d", rc);
}

START_TEST(fiber_cancel_wakes_its_pending_await)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *a = fut_async(pool, fiber_until_cancelled, pf);
    fut_test_sleep_ms(10);
    ck_assert(!fut_cancel(a)); /* running: asked, PEP 3148 */
    void *v = NULL;
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 99);
    ck_assert_int_eq(fut_state(pf), FUT_PENDING);
    fut_release(a);
    fut_release(pf);
    fut_promise_release(p);
    fut_executor_free(pool);
}
END_TEST

/* A fiber that awaits a fiber that awaits a fiber ... 1,000 deep. */
typedef struct chain {
    fut_executor_t *ex;
    int depth;
} chain_t;

static void *fiber_nest(fut_ctx_t *ctx, void *arg)
{
    chain_t *c = arg;
    if (c->depth == 0)
        return FUT_TEST_PTR(0);
    chain_t *next = malloc(sizeof *next);
    if (!next)
        return fut_fail(ctx, ENOMEM, NULL);
    *next = (chain_t){c->ex, c->depth - 1};
    fut_t *inner = fut_async_ex(c->ex, fiber_nest, next, free, 0);
    void *v = NULL;
    int rc = fut_await(inner, FUT_FOREVER, &v);
    fut_release(inner);
    if (rc)
        return fut_fail(ctx, rc, "depth %d", c->depth);
    return FUT_TEST_PTR(FUT_TEST_INT(v) + 1);
}

START_TEST(fiber_awaits_fibers_1000_deep)
{
    fut_executor_t *pool = fut_test_pool(2);
    chain_t c = {pool, 1000};
    fut_t *a = fut_async(pool, fiber_nest, &c);
    void *v = NULL;
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1000);
    fut_release(a);
    fut_executor_free(pool);
}
END_TEST

/* Two fibers on one worker take turns through fut_yield. */
typedef struct turns {
    atomic_int log[20];
    atomic_int n;
} turns_t;

typedef struct turner {
    turns_t *t;
    int id;
} turner_t;

static void *fiber_turns(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    turner_t *me = arg;
    for (int i = 0; i < 5; i++) {
        atomic_store(&me->t->log[atomic_fetch_add(&me->t->n, 1)], me->id);
        fut_yield();
    }
    return NULL;
}

START_TEST(fiber_yield_lets_the_other_fiber_run)
{
    fut_executor_t *pool = fut_test_pool(1);
    turns_t t;
    memset(&t, 0, sizeof t);
    turner_t a = {&t, 1}, b = {&t, 2};
    fut_t *fa = fut_async(pool, fiber_turns, &a);
    fut_t *fb = fut_async(pool, fiber_turns, &b);
    ck_assert_int_eq(fut_wait(fa, FUT_FOREVER), 0);
    ck_assert_int_eq(fut_wait(fb, FUT_FOREVER), 0);
    /* Interleaved: after the first turns, no fiber runs twice in a row
     * while the other still has turns left. */
    int switches = 0;
    for (int i = 1; i < 10; i++)
        switches += atomic_load(&t.log[i]) != atomic_load(&t.log[i - 1]);
    ck_assert_int_ge(switches, 8);
    fut_release(fa);
    fut_release(fb);
    fut_executor_free(pool);
}
END_TEST

START_TEST(fiber_await_outside_a_fiber_is_fut_get)
{
    ck_assert(!fut_in_fiber());
    fut_t *f = fut_resolved(FUT_TEST_PTR(3), NULL);
    void *v = NULL;
    ck_assert_int_eq(fut_await(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 3);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    ck_assert_int_eq(fut_await(pf, FUT_MS(1), NULL), FUT_TIMEDOUT);
    fut_yield(); /* a sched_yield here */
    fut_release(pf);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

static void *fiber_in_fiber(fut_ctx_t *ctx, void *arg)
{
    (void)ctx, (void)arg;
    return FUT_TEST_PTR(fut_in_fiber());
}

/* On the loop executor the fiber runs, and resumes, when the loop's owner
 * drains it. */
START_TEST(fiber_on_the_loop_executor_resumes_on_the_loop_thread)
{
    fut_executor_t *loop = NULL;
    ck_assert_int_eq(fut_loop_new(&loop), 0);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *a = fut_async(loop, fiber_await_arg, pf);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 0); /* ran, suspended */
    ck_assert_int_eq(fut_state(a), FUT_RUNNING);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(1), NULL), 0);
    ck_assert_int_eq(fut_state(a), FUT_RUNNING); /* queued on the loop */
    ck_assert_int_eq(fut_loop_run_until(loop, a, FUT_S(20)), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(a, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_t *b = fut_async(loop, fiber_in_fiber, NULL);
    ck_assert_int_eq(fut_loop_run_until(loop, b, FUT_S(20)), 0);
    ck_assert_int_eq(fut_get(b, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1);
    fut_release(b);
    fut_release(a);
    fut_release(pf);
    fut_promise_release(p);
    fut_executor_free(loop);
}
END_TEST

START_TEST(fiber_without_a_stack_rejects_enomem)
{
    fut_executor_t *pool = fut_test_pool(1);
    atomic_int freed = 0;
    fut_t *a = fut_async_ex(pool, fiber_in_fiber, &freed, fut_test_count_free,
                            (size_t)1 << 46);
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, NULL), ENOMEM);
    ck_assert_int_eq(atomic_load(&freed), 1);
    fut_release(a);
    fut_t *bad = fut_async(NULL, fiber_in_fiber, NULL);
    ck_assert_int_eq(fut_get(bad, 0, NULL), EINVAL);
    fut_release(bad);
    fut_executor_free(pool);
}
END_TEST

/* A stack overflow hits the guard page: the (forked) process dies of
 * SIGSEGV, and nothing else happens first. */
static int recurse(volatile char *p, int n)
{
    volatile char buf[1024];
    buf[0] = (char)n;
    if (p)
        buf[1] = p[0];
    return n > 0 ? recurse(buf, n + 1) + buf[0] : 0;
}

static void *fiber_overflow(fut_ctx_t *ctx, void *arg)
{
    (void)ctx, (void)arg;
    return FUT_TEST_PTR(recurse(NULL, 1));
}

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_TEST_ASAN 1
#endif
#endif

START_TEST(fiber_stack_overflow_hits_the_guard_page)
{
#ifdef FIBER_TEST_ASAN
    printf("fiber_stack_overflow_hits_the_guard_page: skipped under ASan "
           "(it reports the overflow itself)\n");
    return;
#endif
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(20);
        fut_executor_t *pool = NULL;
        fut_pool_config_t cfg = {.threads = 1};
        if (fut_pool_new(&cfg, &pool) != 0)
            _exit(3);
        fut_t *a = fut_async_ex(pool, fiber_overflow, NULL, NULL, 16 * 1024);
        fut_wait(a, FUT_FOREVER);
        _exit(4); /* not reached: the overflow kills the process */
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                  "child status %d", status);
}
END_TEST

/* Mappings in this process (/proc/self/maps lines). */
static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;
    if (!f)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Touches most of a megabyte of its stack. */
static void *fiber_big_frame(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    volatile char buf[1 << 20];
    for (size_t i = 0; i < sizeof buf; i += 4096)
        buf[i] = (char)i;
    buf[sizeof buf - 1] = 1;
    return FUT_TEST_PTR(FUT_TEST_INT(arg) + buf[sizeof buf - 1]);
}

/* Stacks of every size: above the chunked sizes (a mapping each), and
 * more distinct sizes than there are chunk classes (the rest a mapping
 * each); every fiber runs, and its stack is given back. */
START_TEST(fiber_stacks_of_many_sizes_and_a_large_one)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_t *big =
        fut_async_ex(pool, fiber_big_frame, FUT_TEST_PTR(1), NULL, 2 << 20);
    enum { SIZES = 12 };
    fut_t *fs[SIZES];
    for (int i = 0; i < SIZES; i++)
        fs[i] = fut_async_ex(pool, fiber_in_fiber, NULL, NULL,
                             (size_t)(16 + 4 * i) * 1024);
    void *v = NULL;
    ck_assert_int_eq(fut_get(big, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(big);
    for (int i = 0; i < SIZES; i++) {
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
        fut_release(fs[i]);
    }
    fut_trim();
    fut_executor_free(pool);
}
END_TEST

static atomic_int waiting_fibers;

static void *fiber_count_await(fut_ctx_t *ctx, void *arg)
{
    atomic_fetch_add(&waiting_fibers, 1);
    return fiber_await_arg(ctx, arg);
}

/* Stacks of finished fibers are kept for the next ones; fut_trim gives
 * them back (their mappings go), and fibers still run after it. */
START_TEST(fiber_trim_gives_back_idle_stacks)
{
    enum { N = 320 }; /* five chunks of 64 stacks */
    fut_executor_t *pool = fut_test_pool(2);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *fs[N];
    atomic_store(&waiting_fibers, 0);
    for (int i = 0; i < N; i++)
        fs[i] = fut_async_ex(pool, fiber_count_await, pf, NULL, 20 * 1024);
    while (atomic_load(&waiting_fibers) < N) /* all alive at once */
        fut_test_sleep_ms(1);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(1), NULL), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
        fut_release(fs[i]);
    }
    long kept = count_maps();
    fut_trim();
    long trimmed = count_maps();
    ck_assert_msg(kept > 0 && trimmed < kept - 2 * 64,
                  "mappings: %ld kept, %ld after fut_trim", kept, trimmed);
    fut_t *again = fut_async_ex(pool, fiber_await_arg, pf, NULL, 20 * 1024);
    void *v = NULL;
    ck_assert_int_eq(fut_get(again, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(again);
    fut_release(pf);
    fut_promise_release(p);
    fut_executor_free(pool);
}
END_TEST

/* 100,000 fibers suspended at once, each on its own promise, resolved by
 * the main thread.  Each stack needs two kernel mappings (stack and guard),
 * so the case raises vm.max_map_count when it may and skips otherwise. */
static long read_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long have = 0;
    if (f) {
        if (fscanf(f, "%ld", &have) != 1)
            have = 0;
        fclose(f);
    }
    return have;
}

/* n fibers, each running fn on its own promise's future: the arrays a test
 * resolves and checks, and releases with inbox_fibers_free. */
typedef struct inbox_fibers {
    int n;
    fut_promise_t **ps;
    fut_t **pfs, **fs;
} inbox_fibers_t;

static inbox_fibers_t inbox_fibers_start(fut_executor_t *pool, int n, fut_fn fn,
                                         size_t stack)
{
    inbox_fibers_t a = {.n = n,
                        .ps = malloc((size_t)n * sizeof *a.ps),
                        .pfs = malloc((size_t)n * sizeof *a.pfs),
                        .fs = malloc((size_t)n * sizeof *a.fs)};
    ck_assert(a.ps && a.pfs && a.fs);
    for (int i = 0; i < n; i++) {
        a.ps[i] = fut_promise_new();
        a.pfs[i] = fut_promise_future(a.ps[i]);
        a.fs[i] = fut_async_ex(pool, fn, a.pfs[i], NULL, stack);
    }
    return a;
}

/* Releases fiber i, its promise and its promise's future. */
static void inbox_fibers_release(inbox_fibers_t *a, int i)
{
    fut_release(a->fs[i]);
    fut_release(a->pfs[i]);
    fut_promise_release(a->ps[i]);
}

static void inbox_fibers_free(inbox_fibers_t *a)
{
    free(a->ps);
    free(a->pfs);
    free(a->fs);
}

static bool write_map_count(long n)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "w");
    if (!f)
        return false;
    bool ok = fprintf(f, "%ld\n", n) > 0;
    return (fclose(f) == 0) && ok;
}

START_TEST(fiber_100k_suspended_at_once)
{
    enum { N = 100000 };
    long before = read_map_count();
    bool raised = before < 2L * N + 65536 && write_map_count(2L * N + 65536);
    if (before < 2L * N + 65536 && !raised) {
        printf("fiber_100k_suspended_at_once: skipped, vm.max_map_count is "
               "below %ld and cannot be raised here\n",
               2L * N + 65536);
        return;
    }
    fut_executor_t *pool = fut_test_pool(2);
    inbox_fibers_t a = inbox_fibers_start(pool, N, fiber_await_arg, 16 * 1024);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(fut_resolve(a.ps[i], FUT_TEST_PTR(i), NULL), 0);
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        ck_assert_int_eq(fut_get(a.fs[i], FUT_FOREVER, &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), i + 1);
        inbox_fibers_release(&a, i);
    }
    inbox_fibers_free(&a);
    fut_executor_free(pool);
    if (raised)
        write_map_count(before); /* the machine's setting, as it was */
}
END_TEST

/* A fiber suspended when its pool is freed: the pool's memory stays valid
 * for it, and its wake finishes it on the waking thread. */
/* Two fibers that wake each other on the pool's workers, and fibers woken
 * from outside: stats count each fut_async once as submitted and once as
 * completed, however often its fiber was woken, and nothing is left queued
 * (a worker's own wakes skip the pool's shared counter). */
static void *fiber_resolve_arg(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    fut_test_sleep_ms(1); /* usually after the other fiber suspended */
    ck_assert_int_eq(fut_resolve(arg, FUT_TEST_PTR(7), NULL), 0);
    return NULL;
}

START_TEST(fiber_wakes_are_not_counted_as_submitted_tasks)
{
    fut_executor_t *pool = fut_test_pool(2);
    enum { OUTSIDE = 50, INSIDE = 20 };
    fut_promise_t *ps[OUTSIDE];
    fut_t *pf[OUTSIDE], *fs[OUTSIDE];
    for (int i = 0; i < OUTSIDE; i++) {
        ps[i] = fut_promise_new();
        pf[i] = fut_promise_future(ps[i]);
        fs[i] = fut_async(pool, fiber_await_arg, pf[i]);
    }
    fut_test_sleep_ms(10);
    for (int i = 0; i < OUTSIDE; i++)
        ck_assert_int_eq(fut_resolve(ps[i], FUT_TEST_PTR(i), NULL), 0);
    for (int i = 0; i < OUTSIDE; i++) {
        void *v;
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), i + 1);
        fut_release(fs[i]);
        fut_release(pf[i]);
        fut_promise_release(ps[i]);
    }
    /* Woken by a fiber, on a worker. */
    for (int i = 0; i < INSIDE; i++) {
        fut_promise_t *p = fut_promise_new();
        fut_t *f = fut_promise_future(p);
        fut_t *waiter = fut_async(pool, fiber_await_arg, f);
        fut_t *waker = fut_async(pool, fiber_resolve_arg, p);
        void *v;
        ck_assert_int_eq(fut_get(waiter, FUT_FOREVER, &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), 8);
        ck_assert_int_eq(fut_get(waker, FUT_FOREVER, NULL), 0);
        fut_release(waiter);
        fut_release(waker);
        fut_release(f);
        fut_promise_release(p);
    }
    /* A worker counts a completion just after the settle fut_get saw. */
    fut_stats_t st = {0};
    FUT_TEST_WAIT_UNTIL(fut_executor_stats(pool, &st) == 0 &&
                            st.completed == OUTSIDE + 2 * INSIDE,
                        "every fiber counted as completed");
    ck_assert_uint_eq(st.submitted, OUTSIDE + 2 * INSIDE);
    ck_assert_uint_eq(st.queued, 0);
    fut_executor_free(pool);
}
END_TEST

/* A fiber whose wake is still queued when the pool shuts down with
 * FUT_SHUTDOWN_CANCEL_PENDING is no pending task: it runs to its end (the
 * drain took it out of the queue with the tasks and dropped it, so its
 * future never settled). */
typedef struct gate {
    fut_test_latch_t started, release;
} gate_t;

static void *task_hold_worker(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    gate_t *g = arg;
    fut_test_latch_open(&g->started);
    fut_test_latch_wait(&g->release);
    return NULL;
}

START_TEST(fiber_woken_before_a_cancel_pending_shutdown_still_finishes)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *fb = fut_async(pool, fiber_await_arg, pf);
    fut_test_sleep_ms(10); /* it suspends */
    gate_t g;
    fut_test_latch_init(&g.started);
    fut_test_latch_init(&g.release);
    fut_t *hold = fut_submit(pool, task_hold_worker, &g);
    fut_test_latch_wait(&g.started); /* the only worker is busy */
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(41), NULL), 0); /* queued */
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    fut_test_latch_open(&g.release);
    void *v = NULL;
    ck_assert_int_eq(fut_get(fb, FUT_S(10), &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 42);
    ck_assert_int_eq(fut_get(hold, FUT_FOREVER, NULL), 0);
    fut_release(hold);
    fut_release(fb);
    fut_release(pf);
    fut_promise_release(p);
    fut_executor_free(pool);
    fut_test_latch_destroy(&g.started);
    fut_test_latch_destroy(&g.release);
}
END_TEST

/* A fiber cancelled while it waits in the queue, before any worker started
 * it, never runs: its future is CANCELLED, the worker that takes it out
 * skips it and goes on (it switched onto a stack the fiber never had, and
 * crashed), and the pool counts it cancelled. */
static atomic_int queued_fiber_ran;

static void *fiber_mark_ran(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    atomic_fetch_add(&queued_fiber_ran, 1);
    return NULL;
}

START_TEST(fiber_cancelled_while_queued_never_runs)
{
    fut_executor_t *pool = fut_test_pool(1);
    gate_t g;
    fut_test_latch_init(&g.started);
    fut_test_latch_init(&g.release);
    fut_t *hold = fut_submit(pool, task_hold_worker, &g);
    fut_test_latch_wait(&g.started); /* the only worker is busy */
    fut_t *fb = fut_async(pool, fiber_mark_ran, NULL);
    ck_assert_int_eq(fut_cancel(fb), true);
    ck_assert_int_eq(fut_state(fb), FUT_CANCELLED);
    fut_test_latch_open(&g.release);
    ck_assert_int_eq(fut_get(hold, FUT_FOREVER, NULL), 0);
    fut_t *after = fut_async(pool, fiber_mark_ran, NULL); /* still works */
    ck_assert_int_eq(fut_get(after, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(atomic_load(&queued_fiber_ran), 1); /* `after` only */
    ck_assert_int_eq(fut_get(fb, 0, NULL), ECANCELED);
    fut_stats_t st;
    ck_assert_int_eq(fut_executor_stats(pool, &st), 0);
    ck_assert_uint_eq(st.cancelled, 1);
    ck_assert_uint_eq(st.queued, 0);
    fut_release(after);
    fut_release(fb);
    fut_release(hold);
    fut_executor_free(pool);
    fut_test_latch_destroy(&g.started);
    fut_test_latch_destroy(&g.release);
    atomic_store(&queued_fiber_ran, 0);
}
END_TEST

/* Two fibers that wake each other and then wait: the waiting one switches
 * straight to the one it woke, which finishes the other's switch-out
 * (suspend in fiber.c), and their awaits' timers race the wakes.  Every
 * message arrives, every task the pool took (the fibers, and the expiries
 * of the timers) counts as run or cancelled, and nothing is left queued,
 * on one worker and on two. */
enum { PP_PAIRS = 4, PP_ROUNDS = 2000 };

typedef struct pp_pair {
    fut_promise_t *_Atomic inbox[2];
    fut_t *first; /* side 1's first inbox */
} pp_pair_t;

typedef struct pp_side {
    pp_pair_t *pair;
    int me;
} pp_side_t;

/* Awaits f, retrying when its short timeout passes first. */
static int await_patiently(fut_t *f)
{
    for (int64_t t = FUT_US(20);; t *= 2) {
        int rc = fut_await(f, t, NULL);
        if (rc != FUT_TIMEDOUT)
            return rc;
    }
}

/* Resolves the other side's inbox; unless last, makes our next one first. */
static fut_t *pp_send(pp_pair_t *pp, int me, bool last)
{
    fut_t *next = NULL;
    if (!last) {
        fut_promise_t *p = fut_promise_new();
        next = fut_promise_future(p);
        atomic_store(&pp->inbox[me], p);
    }
    fut_promise_t *other = atomic_load(&pp->inbox[1 - me]);
    fut_resolve(other, NULL, NULL);
    fut_promise_release(other);
    return next;
}

static void *fiber_pingpong(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    pp_side_t *side = arg;
    int got = 0;
    if (side->me == 0) {
        for (int r = 0; r < PP_ROUNDS; r++) {
            fut_t *f = pp_send(side->pair, 0, false);
            got += await_patiently(f) == 0;
            fut_release(f);
        }
    } else {
        fut_t *f = fut_retain(side->pair->first);
        for (int r = 0; r < PP_ROUNDS; r++) {
            got += await_patiently(f) == 0;
            fut_release(f);
            f = pp_send(side->pair, 1, r + 1 == PP_ROUNDS);
        }
    }
    return FUT_TEST_PTR(got);
}

static void pingpong_on(size_t workers)
{
    fut_executor_t *pool = fut_test_pool(workers);
    pp_pair_t pairs[PP_PAIRS];
    pp_side_t sides[PP_PAIRS][2];
    fut_t *fs[PP_PAIRS][2];
    for (int i = 0; i < PP_PAIRS; i++) {
        fut_promise_t *p = fut_promise_new();
        pairs[i].first = fut_promise_future(p);
        atomic_store(&pairs[i].inbox[1], p);
        atomic_store(&pairs[i].inbox[0], NULL);
        for (int me = 0; me < 2; me++) {
            sides[i][me] = (pp_side_t){.pair = &pairs[i], .me = me};
            fs[i][me] = fut_async(pool, fiber_pingpong, &sides[i][me]);
        }
    }
    for (int i = 0; i < PP_PAIRS; i++) {
        for (int me = 0; me < 2; me++) {
            void *v = NULL;
            ck_assert_int_eq(fut_get(fs[i][me], FUT_FOREVER, &v), 0);
            ck_assert_int_eq(FUT_TEST_INT(v), PP_ROUNDS);
            fut_release(fs[i][me]);
        }
        fut_release(pairs[i].first);
    }
    /* The fibers, and the timers whose expiry the pool settled. */
    fut_stats_t st = {0};
    FUT_TEST_WAIT_UNTIL(fut_executor_stats(pool, &st) == 0 &&
                            st.completed + st.cancelled == st.submitted,
                        "every task counted as run or cancelled");
    ck_assert_uint_ge(st.submitted, 2 * PP_PAIRS);
    ck_assert_uint_eq(st.queued, 0);
    fut_executor_free(pool);
}

START_TEST(fiber_pingpong_hands_the_thread_over)
{
    pingpong_on(1);
    pingpong_on(2);
}
END_TEST

/* Many pairs' worth of hand-offs on two workers: a fiber handed the thread
 * on one worker is often resumed on the other, and whatever it reads of
 * its thread's state on arrival must be that thread's (a compiler may keep
 * a thread-local variable's address across the switch's call, assuming
 * the call returns on the thread that made it; ThreadSanitizer reported
 * the one worker's handed_from read by a fiber on the other). */
START_TEST(stress_fiber_pingpong_migrating_between_workers)
{
    for (int i = 0; i < 40; i++)
        pingpong_on(2);
}
END_TEST

START_TEST(fiber_outlives_its_freed_pool)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *a = fut_async(pool, fiber_await_arg, pf);
    fut_test_sleep_ms(10); /* suspended */
    fut_executor_free(pool);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(1), NULL), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(a);
    fut_release(pf);
    fut_promise_release(p);
}
END_TEST

/* Every wake of an await races the others: its future settling on another
 * thread, its timer, a cancel, and the fiber still on its way out.  Whichever
 * wins, each fiber runs on to its end exactly once with the right result,
 * and a wake that lost, or that fires after its fiber finished (a timed-out
 * await's, on a future settled later), finds the fiber alive and lets it go
 * (the references the fiber's run hands to its wakes; the sanitizer and
 * valgrind builds check what this cannot see). */
enum { RACE_FIBERS = 2000, RACE_CANCELLED = -1 };

static void *fiber_await_racing_wakes(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    fut_t *f = arg;
    for (int64_t t = FUT_US(5);; t *= 2) {
        void *v = NULL;
        int rc = fut_await(f, t, &v);
        if (rc == 0)
            return v;
        if (rc == ECANCELED)
            return FUT_TEST_PTR(RACE_CANCELLED);
        if (rc != FUT_TIMEDOUT)
            return FUT_TEST_PTR(-1000 - rc); /* fails the check below */
    }
}

START_TEST(fiber_await_survives_its_wakes_racing)
{
    fut_executor_t *pool = fut_test_pool(2);
    inbox_fibers_t a =
        inbox_fibers_start(pool, RACE_FIBERS, fiber_await_racing_wakes, 0);
    unsigned rng = 7;
    for (int i = 0; i < RACE_FIBERS; i++) {
        if (i % 5 == 0)
            fut_cancel(a.fs[i]);
        ck_assert_int_eq(fut_resolve(a.ps[i], FUT_TEST_PTR(i + 1), NULL), 0);
        for (unsigned spin = fut_test_rand(&rng) % 2000; spin; spin--)
            atomic_signal_fence(memory_order_seq_cst);
    }
    for (int i = 0; i < RACE_FIBERS; i++) {
        void *v = NULL;
        int rc = fut_get(a.fs[i], FUT_FOREVER, &v);
        if (i % 5 == 0) { /* cancelled: before it started, or awaiting */
            ck_assert(rc == ECANCELED || rc == 0);
            if (rc == 0 && FUT_TEST_INT(v) != RACE_CANCELLED)
                ck_assert_int_eq(FUT_TEST_INT(v), i + 1);
        } else {
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(FUT_TEST_INT(v), i + 1);
        }
        inbox_fibers_release(&a, i);
    }
    inbox_fibers_free(&a);
    fut_executor_free(pool);
}
END_TEST

Suite *fut_test_fiber_suite(void)
{
    Suite *s = suite_create("fiber");
    TCase *tc = tcase_create("quick");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, fiber_awaits_a_settled_and_a_pending_future);
    tcase_add_test(tc, fiber_await_returns_rejection_and_cancellation_codes);
    tcase_add_test(tc, fiber_await_times_out);
    tcase_add_test(tc, fiber_await_after_a_timeout_ignores_the_old_wake);
    tcase_add_test(tc, fiber_cancel_wakes_its_pending_await);
    tcase_add_test(tc, fiber_awaits_fibers_1000_deep);
    tcase_add_test(tc, fiber_yield_lets_the_other_fiber_run);
    tcase_add_test(tc, fiber_await_outside_a_fiber_is_fut_get);
    tcase_add_test(tc, fiber_on_the_loop_executor_resumes_on_the_loop_thread);
    tcase_add_test(tc, fiber_without_a_stack_rejects_enomem);
    tcase_add_test(tc, fiber_trim_gives_back_idle_stacks);
    tcase_add_test(tc, fiber_stacks_of_many_sizes_and_a_large_one);
    tcase_add_test(tc, fiber_stack_overflow_hits_the_guard_page);
    tcase_add_test(tc, fiber_wakes_are_not_counted_as_submitted_tasks);
    tcase_add_test(tc,
                   fiber_woken_before_a_cancel_pending_shutdown_still_finishes);
    tcase_add_test(tc, fiber_outlives_its_freed_pool);
    tcase_add_test(tc, fiber_await_survives_its_wakes_racing);
    tcase_add_test(tc, fiber_cancelled_while_queued_never_runs);
    tcase_add_test(tc, fiber_pingpong_hands_the_thread_over);
    suite_add_tcase(s, tc);
    TCase *st = tcase_create("stress");
    tcase_set_tags(st, "stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(st, fiber_100k_suspended_at_once);
    tcase_add_test(st, stress_fiber_pingpong_migrating_between_workers);
    suite_add_tcase(s, st);
    return s;
}

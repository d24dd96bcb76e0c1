/*
 * test_fork.c - fork(): the child can create and use new executors and
 * promises; a pool inherited from the parent rejects with ESHUTDOWN instead
 * of hanging; the parent's pool is unaffected.  Also forks while another
 * thread is busy inside the library (its locks must not be inherited held).
 *
 * Each check runs in a child through fut_test_in_child (test_util.c): it
 * reports through a pipe and always leaves with _exit(); an alarm turns a
 * hang in the child into a failure instead of a stuck test.
 */
#include "test_util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void *task_add_one(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return FUT_TEST_PTR(FUT_TEST_INT(arg) + 1);
}

/* A parent pool whose threads exist (they ran a task), optionally kept
 * busy by a blocked task while the child forks. */
static fut_executor_t *started_pool(size_t threads)
{
    fut_executor_t *pool = fut_test_pool(threads);
    fut_t *f = fut_submit(pool, task_add_one, FUT_TEST_PTR(0));
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), 0);
    fut_release(f);
    return pool;
}

/* ------------------------------------------------------- child bodies */

static int child_uses_new_pool(void *arg)
{
    (void)arg;
    fut_pool_config_t cfg = {.threads = 2};
    fut_executor_t *pool = NULL;
    int prc = fut_pool_new(&cfg, &pool);
    if (prc != 0) {
        fut_test_child_note("fut_pool_new in the child: %d", prc);
        return 1;
    }
    enum { N = 8 };
    fut_t *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit(pool, task_add_one, FUT_TEST_PTR(i));
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        int64_t t0 = fut_test_now_ns();
        int rc = fut_get(fs[i], FUT_S(60), &v);
        if (rc != 0) {
            const fut_error_t *e = fut_error(fs[i]);
            fut_test_child_note(
                "task %d of a new pool in the child: fut_get %d after "
                "%lld ns, state %d (%s)",
                i, rc, (long long)(fut_test_now_ns() - t0),
                (int)fut_state(fs[i]), e && e->message ? e->message : "-");
            return 2;
        }
        if (FUT_TEST_INT(v) != i + 1)
            return 3;
        fut_release(fs[i]);
    }
    fut_executor_free(pool);

    fut_promise_t *p = fut_promise_new();
    if (p == NULL)
        return 4;
    fut_t *f = fut_promise_future(p);
    if (fut_resolve(p, FUT_TEST_PTR(9), NULL) != 0)
        return 5;
    void *v = NULL;
    if (fut_get(f, 0, &v) != 0 || FUT_TEST_INT(v) != 9)
        return 6;
    fut_promise_release(p);
    fut_release(f);

    f = fut_submit(fut_inline_executor(), task_add_one, FUT_TEST_PTR(1));
    if (fut_get(f, 0, &v) != 0 || FUT_TEST_INT(v) != 2)
        return 7;
    fut_release(f);
    return 0;
}

static int child_inherited_pool_is_shut_down(void *arg)
{
    fut_executor_t *inherited = arg;
    fut_t *f = fut_submit(inherited, task_add_one, FUT_TEST_PTR(0));
    int rc = fut_get(f, FUT_S(60), NULL);
    fut_release(f);
    if (rc != ESHUTDOWN) {
        fut_test_child_note(
            "submit to the inherited pool: fut_get %d, want ESHUTDOWN", rc);
        return 10;
    }
    fut_stats_t st;
    if (fut_executor_stats(inherited, &st) != 0)
        return 11;
    /* Shutting it down must not wait for threads that do not exist here. */
    fut_executor_shutdown(inherited, FUT_SHUTDOWN_WAIT);
    /* And the child can still make pools of its own. */
    return child_uses_new_pool(NULL);
}

/* The futures a parent's pool held at fork(): one running, one queued,
 * and a continuation waiting for the running one. */
typedef struct held {
    fut_t *running, *queued, *then;
} held_t;

static void *h_identity(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx, (void)arg;
    return value;
}

/* In the child, waiting on what the inherited pool held ends with
 * ESHUTDOWN (its threads are gone), without a shutdown or free first:
 * before, the queued task stayed PENDING and the running one RUNNING, so
 * fut_get(FUT_FOREVER) hung. */
static int child_waits_end_eshutdown(void *arg)
{
    held_t *h = arg;
    int rc = fut_get(h->running, FUT_FOREVER, NULL);
    if (rc != ESHUTDOWN) {
        fut_test_child_note("running task at fork: fut_get %d, want ESHUTDOWN",
                            rc);
        return 20;
    }
    rc = fut_get(h->queued, FUT_FOREVER, NULL);
    if (rc != ESHUTDOWN) {
        fut_test_child_note("queued task at fork: fut_get %d, want ESHUTDOWN",
                            rc);
        return 21;
    }
    rc = fut_get(h->then, FUT_FOREVER, NULL);
    if (rc != ESHUTDOWN) {
        fut_test_child_note("continuation of it: fut_get %d, want ESHUTDOWN",
                            rc);
        return 22;
    }
    return 0;
}

/* --------------------------------------------------------------- tests */

START_TEST(fork_child_can_create_and_use_new_pool)
{
    fut_executor_t *pool = started_pool(2);
    fut_test_in_child(child_uses_new_pool, NULL, "new pool in child");
    fut_executor_free(pool);
}
END_TEST

START_TEST(fork_inherited_pool_reports_eshutdown)
{
    fut_executor_t *pool = started_pool(2);
    fut_test_in_child(child_inherited_pool_is_shut_down, pool,
                      "inherited pool in child");
    /* The parent's pool is unaffected. */
    fut_t *f = fut_submit(pool, task_add_one, FUT_TEST_PTR(41));
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 42);
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

START_TEST(fork_child_waits_on_inherited_tasks_end_eshutdown)
{
    fut_executor_t *pool = started_pool(1);
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    held_t h;
    h.running = fut_submit(pool, fut_test_task_block, &b);
    h.queued = fut_submit(pool, task_add_one, FUT_TEST_PTR(1));
    h.then = fut_then(fut_retain(h.running), h_identity, NULL);
    fut_test_wait_atomic(&b.started, 1);
    fut_test_in_child(child_waits_end_eshutdown, &h,
                      "waits on inherited tasks");
    /* In the parent, everything runs as usual. */
    fut_test_latch_open(&b.latch);
    ck_assert_int_eq(fut_get(h.then, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(fut_get(h.queued, FUT_FOREVER, NULL), 0);
    fut_release(h.running);
    fut_release(h.queued);
    fut_release(h.then);
    fut_executor_free(pool);
    fut_test_blocker_destroy(&b);
}
END_TEST

START_TEST(fork_while_task_running_in_parent)
{
    fut_executor_t *pool = started_pool(1);
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    fut_t *running = fut_submit(pool, fut_test_task_block, &b);
    fut_t *queued = fut_submit(pool, task_add_one, FUT_TEST_PTR(1));
    fut_test_wait_atomic(&b.started, 1);
    fut_test_in_child(child_inherited_pool_is_shut_down, pool,
                      "fork with a running task");
    fut_test_latch_open(&b.latch);
    ck_assert_int_eq(fut_get(running, FUT_FOREVER, NULL), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(queued, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(running);
    fut_release(queued);
    fut_executor_free(pool);
    fut_test_blocker_destroy(&b);
}
END_TEST

/* A thread that keeps the library busy (allocating, settling, waking
 * workers) while the test thread forks: it runs round(pool) until told to
 * stop. */
typedef struct churn {
    fut_executor_t *pool;
    void (*round)(fut_executor_t *pool);
    atomic_int stop;
    atomic_int rounds;
} churn_t;

static void *churn_thread(void *arg)
{
    churn_t *c = arg;
    while (!atomic_load(&c->stop)) {
        c->round(c->pool);
        atomic_fetch_add(&c->rounds, 1);
    }
    return NULL;
}

/* Waits for and releases fs[0..n). */
static void wait_all(fut_t **fs, int n)
{
    for (int i = 0; i < n; i++) {
        fut_wait(fs[i], FUT_FOREVER);
        fut_release(fs[i]);
    }
}

static void tasks_and_promise_round(fut_executor_t *pool)
{
    fut_t *fs[8];
    for (int i = 0; i < 8; i++)
        fs[i] = fut_submit(pool, task_add_one, FUT_TEST_PTR(i));
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_resolve(p, NULL, NULL);
    fut_promise_release(p);
    fut_release(f);
    wait_all(fs, 8);
}

/* A new one-worker pool in a fork child, or NULL (noted). */
static fut_executor_t *child_pool(void)
{
    fut_executor_t *pool = NULL;
    int rc = fut_pool_new(&(fut_pool_config_t){.threads = 1}, &pool);
    if (rc != 0)
        fut_test_child_note("fut_pool_new in the child: %d", rc);
    return rc == 0 ? pool : NULL;
}

/* Forks `forks` times while a thread runs round on a 2-worker pool; each
 * child runs child(pool) and must report success. */
static void fork_while_busy_with(void (*round)(fut_executor_t *),
                                 int (*child)(void *), int forks)
{
    fut_executor_t *pool = started_pool(2);
    churn_t c = {.pool = pool, .round = round, .stop = 0, .rounds = 0};
    pthread_t t = fut_test_spawn(churn_thread, &c);
    fut_test_wait_atomic(&c.rounds, 1);
    char why[1200] = "";
    int failed_fork = -1;
    for (int i = 0; i < forks && failed_fork < 0; i++)
        if (!fut_test_child_run(child, pool, why, sizeof why))
            failed_fork = i;
    atomic_store(&c.stop, 1);
    fut_test_join(t);
    fut_executor_free(pool);
    ck_assert_msg(failed_fork < 0, "fork %d while busy: %s", failed_fork, why);
}

static void fork_while_busy(int forks)
{
    fork_while_busy_with(tasks_and_promise_round,
                         child_inherited_pool_is_shut_down, forks);
}

/* A future whose worker was running its callbacks when the parent forked:
 * settled, its callback list taken, not closed.  The child drops the last
 * reference the test held, then shuts the inherited pool down, which
 * drops the worker's: the future must be freed cleanly (the callbacks the
 * dead worker was running are gone with it). */
typedef struct in_callback {
    fut_test_latch_t entered, release;
} in_callback_t;

static void cb_block(fut_t *f, void *arg)
{
    (void)f;
    in_callback_t *c = arg;
    fut_test_latch_open(&c->entered);
    fut_test_latch_wait(&c->release);
}

static fut_t *dispatching; /* the child drops the test's reference */

static int child_frees_future_dispatching_at_fork(void *pool)
{
    fut_release(dispatching);
    fut_executor_shutdown(pool, FUT_SHUTDOWN_WAIT);
    return 0; /* an abort in the shutdown is the failure */
}

START_TEST(fork_while_worker_runs_callbacks_frees_cleanly_in_child)
{
    fut_executor_t *pool = started_pool(1);
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    in_callback_t c;
    fut_test_latch_init(&c.entered);
    fut_test_latch_init(&c.release);
    dispatching = fut_submit(pool, fut_test_task_block, &b);
    ck_assert_int_eq(fut_on_done(dispatching, cb_block, &c), 0);
    fut_test_latch_open(&b.latch);
    fut_test_latch_wait(&c.entered); /* the worker is in cb_block */
    fut_test_in_child(child_frees_future_dispatching_at_fork, pool,
                      "fork while a worker runs a future's callbacks");
    fut_test_latch_open(&c.release);
    ck_assert_int_eq(fut_get(dispatching, FUT_FOREVER, NULL), 0);
    fut_release(dispatching);
    fut_executor_free(pool);
    fut_test_latch_destroy(&c.entered);
    fut_test_latch_destroy(&c.release);
    fut_test_blocker_destroy(&b);
}
END_TEST

START_TEST(fork_while_other_thread_busy_in_library)
{
    fork_while_busy(3);
}
END_TEST

/* Fibers started and finished on the parent's workers while it forks: the
 * lock of the fiber stacks' chunks is taken twice per fiber there, and a
 * child that inherited it held waited for ever at its own first fiber. */
static void fibers_round(fut_executor_t *pool)
{
    fut_t *fs[16];
    for (int i = 0; i < 16; i++)
        fs[i] =
            fut_async_ex(pool, task_add_one, FUT_TEST_PTR(i), NULL, 16 * 1024);
    wait_all(fs, 16);
}

static int child_runs_fibers(void *arg)
{
    (void)arg;
    fut_executor_t *pool = child_pool();
    if (!pool)
        return 1;
    for (int i = 0; i < 4; i++) {
        fut_t *f =
            fut_async_ex(pool, task_add_one, FUT_TEST_PTR(i), NULL, 16 * 1024);
        void *v = NULL;
        int rc = fut_get(f, FUT_S(60), &v);
        fut_release(f);
        if (rc != 0 || FUT_TEST_INT(v) != i + 1) {
            fut_test_child_note("fiber %d in the child: fut_get %d", i, rc);
            return 2;
        }
    }
    fut_executor_free(pool);
    return 0;
}

START_TEST(fork_while_fibers_start_and_finish_leaves_stacks_usable)
{
    fork_while_busy_with(fibers_round, child_runs_fibers, 10);
}
END_TEST

/* Tasks that adopt a future, and rejected futures nobody reads, made and
 * dropped while the parent forks: adoption and the report of an unread
 * rejection each take a process-wide lock, which a child that inherited
 * it held waited on for ever. */
static void *task_adopts_its_arg(fut_ctx_t *ctx, void *arg)
{
    return fut_adopt(ctx, fut_resolved(arg, NULL));
}

static void adoptions_round(fut_executor_t *pool)
{
    fut_t *fs[16];
    for (int i = 0; i < 16; i++)
        fs[i] = fut_submit(pool, task_adopts_its_arg, FUT_TEST_PTR(i));
    wait_all(fs, 16);
    for (int i = 0; i < 16; i++) /* unread: reported, then freed */
        fut_release(fut_rejected(EIO, "churn"));
}

static int child_adopts_and_drops_a_rejection(void *arg)
{
    (void)arg;
    fut_release(fut_rejected(EIO, "in the child")); /* the report's lock */
    fut_executor_t *pool = child_pool();
    if (!pool)
        return 1;
    fut_t *f = fut_submit(pool, task_adopts_its_arg, FUT_TEST_PTR(7));
    void *v = NULL;
    int rc = fut_get(f, FUT_S(60), &v);
    fut_release(f);
    fut_executor_free(pool);
    if (rc != 0 || FUT_TEST_INT(v) != 7) {
        fut_test_child_note("a task that adopts, in the child: fut_get %d", rc);
        return 2;
    }
    return 0;
}

/* Progress listeners and notifications made while the parent forks: a
 * future's progress block lives in a process-wide side table whose shards
 * each have a lock. */
static void on_progress_noop(fut_t *f, void *progress, void *arg)
{
    (void)f;
    (void)progress;
    (void)arg;
}

static int progress_round(void)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    int rc = fut_on_progress(f, on_progress_noop, NULL);
    if (rc == 0)
        rc = fut_notify(p, FUT_TEST_PTR(1));
    fut_resolve(p, NULL, NULL);
    fut_promise_release(p);
    fut_release(f);
    return rc;
}

static void progress_rounds(fut_executor_t *pool)
{
    (void)pool;
    for (int i = 0; i < 64; i++)
        (void)progress_round();
}

/* The child listens to 64 futures at once, so that their blocks land in
 * every shard of the table (a shard is picked by the future's address):
 * one listener on one future met an inherited lock in 1 shard of 16. */
static int child_listens_to_progress(void *arg)
{
    (void)arg;
    enum { N = 64 };
    fut_promise_t *ps[N];
    fut_t *fs[N];
    int rc = 0;
    for (int i = 0; i < N; i++) {
        ps[i] = fut_promise_new();
        if (ps[i] == NULL) {
            fut_test_child_note("fut_promise_new in the child failed");
            return 1;
        }
        fs[i] = fut_promise_future(ps[i]);
        if (rc == 0)
            rc = fut_on_progress(fs[i], on_progress_noop, NULL);
        if (rc == 0)
            rc = fut_notify(ps[i], FUT_TEST_PTR(i));
    }
    for (int i = 0; i < N; i++) {
        fut_resolve(ps[i], NULL, NULL);
        fut_promise_release(ps[i]);
        fut_release(fs[i]);
    }
    if (rc != 0) {
        fut_test_child_note("progress in the child: %d", rc);
        return 2;
    }
    return 0;
}

START_TEST(fork_while_progress_is_reported_leaves_its_table_usable)
{
    fork_while_busy_with(progress_rounds, child_listens_to_progress, 10);
}
END_TEST

START_TEST(stress_fork_while_progress_is_reported)
{
    fork_while_busy_with(progress_rounds, child_listens_to_progress, 2000);
}
END_TEST

START_TEST(fork_while_adoptions_and_unread_rejections_leaves_their_locks_free)
{
    fork_while_busy_with(adoptions_round, child_adopts_and_drops_a_rejection,
                         10);
}
END_TEST

START_TEST(stress_fork_while_adoptions_and_unread_rejections)
{
    fork_while_busy_with(adoptions_round, child_adopts_and_drops_a_rejection,
                         2000);
}
END_TEST

/* Before the fix about one fork in a few hundred to a few thousand left
 * the child waiting (the lock is held for a few instructions at a time). */
START_TEST(stress_fork_while_fibers_start_and_finish)
{
    fork_while_busy_with(fibers_round, child_runs_fibers, 2000);
}
END_TEST

START_TEST(stress_fork_while_other_thread_busy_in_library)
{
    fork_while_busy(40);
}
END_TEST

/* clang 14's AddressSanitizer does not hold its allocator's locks across
 * fork(): a child forked while another thread is inside malloc or free
 * (ASan's quarantine) hangs in ASan's allocator, about one fork in ten here
 * (seen with gdb: every child thread waits in SizeClassAllocator64).  So
 * the ASan build leaves the fork cases out; they run in the plain,
 * ThreadSanitizer and valgrind runs. */
#if defined(__SANITIZE_ADDRESS__)
#define FORK_UNSAFE_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORK_UNSAFE_ALLOCATOR 1
#endif
#endif

Suite *fut_test_fork_suite(void)
{
    Suite *s = suite_create("fork");
#ifdef FORK_UNSAFE_ALLOCATOR
    fprintf(stderr, "fork: cases left out under AddressSanitizer (its "
                    "allocator is not fork-safe)\n");
    return s;
#endif
    TCase *tc = tcase_create("fork");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, fork_child_can_create_and_use_new_pool);
    tcase_add_test(tc, fork_inherited_pool_reports_eshutdown);
    tcase_add_test(tc, fork_while_task_running_in_parent);
    tcase_add_test(tc, fork_child_waits_on_inherited_tasks_end_eshutdown);
    tcase_add_test(tc, fork_while_other_thread_busy_in_library);
    tcase_add_test(tc, fork_while_fibers_start_and_finish_leaves_stacks_usable);
    tcase_add_test(
        tc, fork_while_adoptions_and_unread_rejections_leaves_their_locks_free);
    tcase_add_test(tc, fork_while_progress_is_reported_leaves_its_table_usable);
    tcase_add_test(tc, fork_while_worker_runs_callbacks_frees_cleanly_in_child);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("fork_stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_set_tags(st, "stress");
    tcase_add_test(st, stress_fork_while_other_thread_busy_in_library);
    tcase_add_test(st, stress_fork_while_fibers_start_and_finish);
    tcase_add_test(st, stress_fork_while_adoptions_and_unread_rejections);
    tcase_add_test(st, stress_fork_while_progress_is_reported);
    suite_add_tcase(s, st);
    return s;
}

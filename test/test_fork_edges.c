/*
 * test_fork_edges.c - what a fork() child can do with a pool inherited
 * from its parent beyond submitting to it: read its stats (shut down),
 * shut it down with or without waiting, free it, wait on a chain whose
 * head the pool held, and cancel what it held.  The parent's pool is
 * unaffected.
 *
 * As in test_fork.c, each check runs in a child through fut_test_in_child
 * (test_util.c), which reports through a pipe ("ok" last) and leaves with
 * _exit().  Left out under AddressSanitizer, whose allocator
 * is not fork-safe (see test_fork.c).
 */
#include "test_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void *task_add_one(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return FUT_TEST_PTR(FUT_TEST_INT(arg) + 1);
}

static void *then_identity(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx, (void)arg;
    return value;
}

/* What the parent's one-worker pool held at fork(): a running task, a
 * queued one, a continuation of the running one on the pool and an inline
 * continuation of that. */
typedef struct held {
    fut_executor_t *pool;
    fut_t *running, *queued, *then_on, *then;
} held_t;

static void held_start(held_t *h, fut_test_blocker_t *b)
{
    fut_pool_config_t cfg = {.threads = 1};
    ck_assert_int_eq(fut_pool_new(&cfg, &h->pool), 0);
    h->running = fut_submit(h->pool, fut_test_task_block, b);
    h->queued = fut_submit(h->pool, task_add_one, FUT_TEST_PTR(1));
    h->then_on =
        fut_then_on(h->pool, fut_retain(h->running), then_identity, NULL);
    h->then = fut_then(fut_retain(h->then_on), then_identity, NULL);
    fut_test_wait_atomic(&b->started, 1);
}

/* The parent's view afterwards: everything runs as usual. */
static void held_finish(held_t *h, fut_test_blocker_t *b)
{
    fut_test_latch_open(&b->latch);
    void *v = NULL;
    ck_assert_int_eq(fut_get(h->then, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1);
    ck_assert_int_eq(fut_get(h->queued, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(h->running);
    fut_release(h->queued);
    fut_release(h->then_on);
    fut_release(h->then);
    fut_executor_free(h->pool);
}

/* ------------------------------------------------------- child bodies */

static int child_stats_then_shutdown(void *arg)
{
    held_t *h = arg;
    fut_stats_t st;
    if (fut_executor_stats(h->pool, &st) != 0 || !st.shutdown)
        return 1;
    /* Shutting down an inherited pool reaps what it held. */
    if (fut_executor_shutdown(h->pool, 0) != ESHUTDOWN)
        return 2;
    if (fut_get(h->running, 0, NULL) != ESHUTDOWN)
        return 3;
    if (fut_get(h->queued, 0, NULL) != ESHUTDOWN)
        return 4;
    if (fut_get(h->then, FUT_FOREVER, NULL) != ESHUTDOWN)
        return 5;
    /* Again, and with FUT_SHUTDOWN_WAIT: nothing to wait for. */
    if (fut_executor_shutdown(h->pool, FUT_SHUTDOWN_WAIT) != ESHUTDOWN)
        return 6;
    fut_t *f = fut_submit_ex(h->pool, task_add_one, NULL, NULL, FUT_NOWAIT);
    int rc = fut_get(f, 0, NULL);
    fut_release(f);
    return rc == ESHUTDOWN ? 0 : 7;
}

static int child_waits_on_chain(void *arg)
{
    held_t *h = arg;
    /* The tail of a chain whose head the inherited pool runs. */
    if (fut_get(h->then, FUT_FOREVER, NULL) != ESHUTDOWN)
        return 1;
    size_t done = 0;
    fut_t *fs[2] = {h->queued, h->running};
    if (fut_wait_for(fs, 2, FUT_FOREVER, FUT_ALL_COMPLETED, &done) != 0 ||
        done != 2)
        return 2;
    return 0;
}

static int child_frees_pool(void *arg)
{
    held_t *h = arg;
    fut_executor_free(h->pool);
    if (fut_get(h->queued, 0, NULL) != ESHUTDOWN)
        return 1;
    if (fut_get(h->then_on, 0, NULL) != ESHUTDOWN)
        return 2;
    return 0;
}

static int child_cancels_queued(void *arg)
{
    held_t *h = arg;
    if (!fut_cancel(h->queued))
        return 1;
    if (fut_cancel(h->running))
        return 2; /* running: only asked to stop */
    if (fut_get(h->running, FUT_FOREVER, NULL) != ESHUTDOWN)
        return 3;
    return 0;
}

static int child_uses_bounded_pool(void *arg)
{
    (void)arg;
    fut_pool_config_t cfg = {.threads = 1, .max_queued = 2};
    fut_executor_t *pool = NULL;
    if (fut_pool_new(&cfg, &pool) != 0)
        return 1;
    fut_t *f = fut_submit(pool, task_add_one, FUT_TEST_PTR(4));
    void *v = NULL;
    int rc = fut_get(f, FUT_S(60), &v);
    fut_release(f);
    fut_executor_free(pool);
    return rc == 0 && FUT_TEST_INT(v) == 5 ? 0 : 2;
}

/* Futures that wait on no inherited pool: continuations queued for a
 * loop executor (one of a pending input, one of a settled one) and a
 * continuation adopting a promise's future. */
typedef struct unpinned {
    fut_t *on_loop, *adopting, *queued_on_loop;
} unpinned_t;

static int child_waits_time_out_on_unpinned(void *arg)
{
    unpinned_t *u = arg;
    if (fut_wait(u->on_loop, FUT_MS(1)) != ETIMEDOUT)
        return 1;
    if (fut_wait(u->adopting, FUT_MS(1)) != ETIMEDOUT)
        return 2;
    if (fut_wait(u->queued_on_loop, FUT_MS(1)) != ETIMEDOUT)
        return 3;
    return 0;
}

static void *then_adopt_arg(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)value;
    return fut_adopt(ctx, fut_retain(arg));
}

/* --------------------------------------------------------------- tests */

typedef int (*child_fn)(void *);

static void held_case(child_fn fn)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    held_t h;
    held_start(&h, &b);
    fut_test_in_child(fn, &h, "inherited pool");
    held_finish(&h, &b);
    fut_test_blocker_destroy(&b);
}

START_TEST(fork_child_shuts_down_inherited_pool_reaping_it)
{
    held_case(child_stats_then_shutdown);
}
END_TEST

START_TEST(fork_child_waits_on_chain_of_inherited_task)
{
    held_case(child_waits_on_chain);
}
END_TEST

START_TEST(fork_child_frees_inherited_pool)
{
    held_case(child_frees_pool);
}
END_TEST

START_TEST(fork_child_cancels_inherited_tasks)
{
    held_case(child_cancels_queued);
}
END_TEST

START_TEST(fork_child_uses_new_bounded_pool)
{
    fut_pool_config_t cfg = {.threads = 1, .max_queued = 2};
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), 0);
    fut_test_in_child(child_uses_bounded_pool, NULL, "bounded pool in child");
    fut_t *f = fut_submit(pool, task_add_one, FUT_TEST_PTR(0));
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), 0);
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

/* In the child, waits on futures that no inherited pool holds still just
 * time out (nothing is reaped for them). */
START_TEST(fork_child_waits_on_loop_and_adopting_futures)
{
    fut_pool_config_t cfg = {.threads = 1};
    fut_executor_t *pool = NULL; /* a live pool marks the child orphaned */
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), 0);
    fut_executor_t *loop = NULL;
    ck_assert_int_eq(fut_loop_new(&loop), 0);
    fut_promise_t *p1 = fut_promise_new(), *p2 = fut_promise_new();
    fut_t *f2 = fut_promise_future(p2);
    unpinned_t u;
    u.on_loop = fut_then_on(loop, fut_promise_future(p1), then_identity, NULL);
    u.adopting = fut_then(fut_resolved(NULL, NULL), then_adopt_arg, f2);
    ck_assert_int_eq(fut_state(u.adopting), FUT_RUNNING);
    u.queued_on_loop = fut_then_on(loop, fut_resolved(FUT_TEST_PTR(3), NULL),
                                   then_identity, NULL);
    fut_test_in_child(child_waits_time_out_on_unpinned, &u, "waits time out");
    ck_assert_int_eq(fut_resolve(p1, FUT_TEST_PTR(1), NULL), 0);
    ck_assert_int_eq(fut_resolve(p2, FUT_TEST_PTR(2), NULL), 0);
    ck_assert_int_eq(fut_loop_run_until(loop, u.on_loop, FUT_S(60)), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(u.on_loop, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1);
    ck_assert_int_eq(fut_get(u.adopting, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    ck_assert_int_eq(fut_get(u.queued_on_loop, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 3);
    fut_release(u.on_loop);
    fut_release(u.adopting);
    fut_release(u.queued_on_loop);
    fut_release(f2);
    fut_promise_release(p1);
    fut_promise_release(p2);
    fut_executor_free(loop);
    fut_executor_free(pool);
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
#define FORK_UNSAFE_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORK_UNSAFE_ALLOCATOR 1
#endif
#endif

Suite *fut_test_fork_edges_suite(void)
{
    Suite *s = suite_create("fork_edges");
#ifdef FORK_UNSAFE_ALLOCATOR
    fprintf(stderr, "fork_edges: cases left out under AddressSanitizer (its "
                    "allocator is not fork-safe)\n");
    return s;
#endif
    TCase *tc = tcase_create("fork_edges");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, fork_child_shuts_down_inherited_pool_reaping_it);
    tcase_add_test(tc, fork_child_waits_on_chain_of_inherited_task);
    tcase_add_test(tc, fork_child_frees_inherited_pool);
    tcase_add_test(tc, fork_child_cancels_inherited_tasks);
    tcase_add_test(tc, fork_child_uses_new_bounded_pool);
    tcase_add_test(tc, fork_child_waits_on_loop_and_adopting_futures);
    suite_add_tcase(s, tc);
    return s;
}

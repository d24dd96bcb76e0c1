/*
 * test_cancel.c - PEP 3148 cancel: pending (true), running (false, asks the
 * task to stop), done (false), cancelled twice (true), promise futures,
 * callbacks registered before and after, cancel from another thread, and
 * the args of cancelled tasks destroyed exactly once.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ PEP 3148 */

START_TEST(pep3148_cancel_pending_returns_true)
{
    fut_test_held_t bz;
    fut_test_held_start(&bz);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_t *f = fut_submit_ex(bz.pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    ck_assert_int_eq(fut_state(f), FUT_PENDING);
    ck_assert(fut_cancel(f));
    ck_assert_int_eq(fut_state(f), FUT_CANCELLED);
    ck_assert(fut_done(f));
    ck_assert_int_eq(fut_wait(f, 0), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), ECANCELED);
    ck_assert_ptr_nonnull(fut_error(f));
    ck_assert_int_eq(fut_error(f)->code, ECANCELED);
    /* The arg was freed on this thread before fut_cancel returned. */
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    ck_assert_int_eq(atomic_load(&rf.free_thread), fut_test_thread_id());
    fut_test_held_finish(&bz);
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    fut_release(f);
}
END_TEST

START_TEST(pep3148_cancel_twice_returns_true)
{
    fut_test_held_t bz;
    fut_test_held_start(&bz);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e;
    fut_test_entry_init(&e, &log, 0);
    fut_t *f = fut_submit_ex(bz.pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    ck_assert_int_eq(
        fut_on_done_ex(f, fut_test_done_cb, &e, fut_test_entry_free), 0);
    ck_assert(fut_cancel(f));
    ck_assert(fut_cancel(f));
    ck_assert_int_eq(fut_state(f), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&e.ran), 1);
    ck_assert_int_eq(atomic_load(&e.freed), 1);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    fut_test_held_finish(&bz);
    ck_assert(fut_cancel(f));
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    ck_assert_int_eq(atomic_load(&e.ran), 1);
    fut_release(f);
}
END_TEST

START_TEST(pep3148_cancel_running_returns_false_and_requests_stop)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 6);
    fut_t *f = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1);
    ck_assert(!fut_cancel(f));
    ck_assert_int_eq(fut_state(f), FUT_RUNNING);
    ck_assert(!fut_cancel(f));
    fut_test_latch_open(&b.latch);
    void *v = NULL;
    /* The task ignored the request: its value stands. */
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 6);
    ck_assert_int_eq(atomic_load(&b.cancel_seen), 1);
    ck_assert_int_eq(fut_state(f), FUT_FULFILLED);
    fut_release(f);
    fut_executor_free(pool);
    fut_test_blocker_destroy(&b);
}
END_TEST

static void *task_until_cancelled(fut_ctx_t *ctx, void *arg)
{
    atomic_int *started = arg;
    atomic_store(started, 1);
    while (!fut_cancel_requested(ctx))
        fut_test_sleep_ms(1);
    return fut_fail(ctx, ECANCELED, "stopped on request");
}

START_TEST(pep3148_cancel_running_task_that_stops_is_cancelled)
{
    fut_executor_t *pool = fut_test_pool(2);
    atomic_int started = 0;
    fut_t *f = fut_submit(pool, task_until_cancelled, &started);
    fut_test_wait_atomic(&started, 1);
    ck_assert(!fut_cancel(f));
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), ECANCELED);
    ck_assert_int_eq(fut_state(f), FUT_CANCELLED);
    ck_assert(fut_cancel(f)); /* now it is cancelled: true */
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

static void *task_report_cancel_requested(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    return FUT_TEST_PTR(fut_cancel_requested(ctx) ? 1 : 2);
}

START_TEST(pep3148_cancel_requested_false_without_cancel)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f = fut_submit(pool, task_report_cancel_requested, NULL);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(f);
    fut_executor_free(pool);
    f = fut_submit(fut_inline_executor(), task_report_cancel_requested, NULL);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(f);
}
END_TEST

START_TEST(pep3148_cancel_done_returns_false)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_t *f = fut_resolved(fut_test_obj_new(&tr, 1), fut_test_obj_free);
    ck_assert(!fut_cancel(f));
    ck_assert_int_eq(fut_state(f), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);

    fut_t *r = fut_rejected(EIO, "x");
    ck_assert(!fut_cancel(r));
    ck_assert_int_eq(fut_state(r), FUT_REJECTED);
    ck_assert_int_eq(fut_get(r, 0, NULL), EIO);
    fut_release(r);

    fut_executor_t *pool = fut_test_pool(1);
    fut_t *t = fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(3));
    ck_assert_int_eq(fut_wait(t, FUT_FOREVER), 0);
    ck_assert(!fut_cancel(t));
    ck_assert_int_eq(fut_state(t), FUT_FULFILLED);
    fut_release(t);
    fut_executor_free(pool);
}
END_TEST

START_TEST(pep3148_cancel_promise_future)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert(fut_cancel(f));
    ck_assert_int_eq(fut_state(f), FUT_CANCELLED);
    ck_assert_int_eq(fut_get(f, 0, NULL), ECANCELED);
    /* The writer finds it settled; its value is destroyed at once. */
    ck_assert_int_eq(
        fut_resolve(p, fut_test_obj_new(&tr, 1), fut_test_obj_free), EALREADY);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
    ck_assert_int_eq(fut_reject(p, EIO, "late"), EALREADY);
    ck_assert_int_eq(fut_notify(p, NULL), EALREADY);
    fut_promise_release(p); /* no EPIPE: already settled */
    ck_assert_int_eq(fut_state(f), FUT_CANCELLED);
    ck_assert_int_eq(fut_error(f)->code, ECANCELED);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* ------------------------------------------------ rules 3, 4 and 5 */

START_TEST(rule4_callback_registered_before_cancel_runs_once)
{
    fut_test_held_t bz;
    fut_test_held_start(&bz);
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e[3];
    fut_t *f = fut_submit(bz.pool, fut_test_task_identity, NULL);
    for (int i = 0; i < 3; i++) {
        fut_test_entry_init(&e[i], &log, i);
        ck_assert_int_eq(
            fut_on_done_ex(f, fut_test_done_cb, &e[i], fut_test_entry_free), 0);
    }
    ck_assert(fut_cancel(f));
    /* They ran on this thread, in order, before fut_cancel returned. */
    ck_assert_int_eq(atomic_load(&log.calls), 3);
    ck_assert_int_eq(atomic_load(&log.thread), fut_test_thread_id());
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&log.order[i]), i);
        ck_assert_int_eq(atomic_load(&e[i].freed), 1);
    }
    ck_assert(fut_cancel(f));
    fut_test_held_finish(&bz);
    ck_assert_int_eq(atomic_load(&log.calls), 3);
    ck_assert_int_eq(atomic_load(&log.freed), 3);
    ck_assert_int_eq(atomic_load(&log.bad), 0);
    fut_release(f);
}
END_TEST

START_TEST(rule5_callback_registered_after_cancel_runs_at_once)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e[2];
    fut_test_entry_init(&e[0], &log, 0);
    fut_test_entry_init(&e[1], &log, 1);
    ck_assert_int_eq(fut_on_done(f, fut_test_done_cb, &e[0]), 0);
    ck_assert(fut_cancel(f));
    ck_assert_int_eq(atomic_load(&e[0].ran), 1);
    ck_assert_int_eq(
        fut_on_done_ex(f, fut_test_done_cb, &e[1], fut_test_entry_free), 0);
    ck_assert_int_eq(atomic_load(&e[1].ran), 1);
    ck_assert_int_eq(atomic_load(&e[1].freed), 1);
    ck_assert_int_eq(atomic_load(&log.order[0]), 0);
    ck_assert_int_eq(atomic_load(&log.order[1]), 1);
    fut_promise_release(p);
    ck_assert_int_eq(atomic_load(&log.calls), 2);
    fut_release(f);
}
END_TEST

START_TEST(rule3_cancelled_task_arg_destroyed_once)
{
    fut_test_held_t bz;
    fut_test_held_start(&bz);
    fut_test_tracker_t args;
    fut_test_tracker_init(&args);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    enum { N = 10 };
    fut_t *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit_ex(
            bz.pool, i % 2 ? fut_test_task_counted : fut_test_task_identity,
            i % 2 ? (void *)&rf : (void *)fut_test_obj_new(&args, i),
            i % 2 ? fut_test_counted_free : fut_test_obj_free, 0);
    for (int i = 0; i < N; i += 2)
        ck_assert(fut_cancel(fs[i]));
    ck_assert_int_eq(atomic_load(&args.freed), N / 2);
    ck_assert_int_eq(atomic_load(&rf.freed), 0);
    fut_test_held_finish(&bz);
    /* The others ran, and their args were freed once after they ran. */
    ck_assert_int_eq(atomic_load(&rf.ran), N / 2);
    ck_assert_int_eq(atomic_load(&rf.freed), N / 2);
    ck_assert_int_eq(atomic_load(&args.freed), N / 2);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(fut_state(fs[i]),
                         i % 2 ? FUT_FULFILLED : FUT_CANCELLED);
        fut_release(fs[i]);
    }
    ck_assert_int_eq(atomic_load(&args.freed), N / 2);
}
END_TEST

/* ------------------------------------------------ other threads */

typedef struct canceller {
    fut_t *f;
    int thread;
    bool result;
    int delay_ms;
} canceller_t;

static void *cancel_thread(void *arg)
{
    canceller_t *c = arg;
    c->thread = fut_test_thread_id();
    /* This lets the main thread block first (correctness does not need it). */
    fut_test_sleep_ms(c->delay_ms);
    c->result = fut_cancel(c->f);
    return NULL;
}

START_TEST(rule8_cancel_from_other_thread_wakes_waiter)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e;
    fut_test_entry_init(&e, &log, 0);
    ck_assert_int_eq(fut_on_done(f, fut_test_done_cb, &e), 0);
    canceller_t c = {.f = f, .delay_ms = 10};
    pthread_t t = fut_test_spawn(cancel_thread, &c);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), ECANCELED);
    fut_test_join(t);
    ck_assert(c.result);
    ck_assert_int_eq(atomic_load(&e.ran), 1);
    /* The callbacks ran on the thread that cancelled. */
    ck_assert_int_eq(atomic_load(&log.thread), c.thread);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(rule8_cancel_queued_task_from_other_thread)
{
    fut_test_held_t bz;
    fut_test_held_start(&bz);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_t *f = fut_submit_ex(bz.pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    canceller_t c = {.f = f, .delay_ms = 10};
    pthread_t t = fut_test_spawn(cancel_thread, &c);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), ECANCELED);
    fut_test_join(t);
    ck_assert(c.result);
    /* The cancelled task's arg was freed on the cancelling thread. */
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    ck_assert_int_eq(atomic_load(&rf.free_thread), c.thread);
    fut_test_held_finish(&bz);
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    fut_release(f);
}
END_TEST

START_TEST(rule8_cancel_running_task_from_other_thread)
{
    fut_executor_t *pool = fut_test_pool(1);
    atomic_int started = 0;
    fut_t *f = fut_submit(pool, task_until_cancelled, &started);
    fut_test_wait_atomic(&started, 1);
    canceller_t c = {.f = f, .delay_ms = 0};
    pthread_t t = fut_test_spawn(cancel_thread, &c);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), ECANCELED);
    fut_test_join(t);
    ck_assert(!c.result); /* it was running */
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

Suite *fut_test_cancel_suite(void)
{
    Suite *s = suite_create("cancel");
    TCase *tc = tcase_create("cancel");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, pep3148_cancel_pending_returns_true);
    tcase_add_test(tc, pep3148_cancel_twice_returns_true);
    tcase_add_test(tc, pep3148_cancel_running_returns_false_and_requests_stop);
    tcase_add_test(tc, pep3148_cancel_running_task_that_stops_is_cancelled);
    tcase_add_test(tc, pep3148_cancel_requested_false_without_cancel);
    tcase_add_test(tc, pep3148_cancel_done_returns_false);
    tcase_add_test(tc, pep3148_cancel_promise_future);
    tcase_add_test(tc, rule4_callback_registered_before_cancel_runs_once);
    tcase_add_test(tc, rule5_callback_registered_after_cancel_runs_at_once);
    tcase_add_test(tc, rule3_cancelled_task_arg_destroyed_once);
    tcase_add_test(tc, rule8_cancel_from_other_thread_wakes_waiter);
    tcase_add_test(tc, rule8_cancel_queued_task_from_other_thread);
    tcase_add_test(tc, rule8_cancel_running_task_from_other_thread);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * test_future.c - the future itself: references, values and errors, get and
 * wait with timeouts, done-callbacks and their order, fut_fail, EDEADLK,
 * never-NULL on bad input, and the time macros.
 *
 * The rules it checks: rule 1, ownership is explicit (consume or borrow);
 * rule 2, never NULL (rejected futures, EINVAL on a NULL argument); rule 3,
 * a value's destructor runs exactly once; rule 4, callbacks run exactly
 * once; rule 5, callbacks run in registration order, at once when the
 * future has settled; rule 8, thread-safe everywhere, callbacks included.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A task whose value is a counted object with a destructor. */
static void *task_counted_value(fut_ctx_t *ctx, void *tracker)
{
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(tracker, 7);
}

static void *task_fail_fmt(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    return fut_fail(ctx, EIO, "bad %d of %s", 42, "x");
}

static void *task_fail_code(fut_ctx_t *ctx, void *arg)
{
    return fut_fail(ctx, FUT_TEST_INT(arg), "code %d", FUT_TEST_INT(arg));
}

static void *task_fail_twice(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    fut_fail(ctx, EIO, "first");
    return fut_fail(ctx, ENOENT, "second");
}

/* Fails, then still returns a value with a destructor: the value must be
 * destroyed exactly once (header: "the value the function then returns is
 * destroyed with its destructor"). */
static void *task_fail_then_value(fut_ctx_t *ctx, void *tracker)
{
    fut_fail(ctx, EIO, "failed");
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(tracker, 1);
}

/* -------------------------------------- rule 1: ownership is explicit */

START_TEST(rule1_retain_returns_same_future_and_keeps_value)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_t *f = fut_resolved(fut_test_obj_new(&tr, 1), fut_test_obj_free);
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_eq(fut_retain(f), f);
    ck_assert_ptr_eq(fut_retain(f), f);
    fut_release(f);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v), 0);
    ck_assert_int_eq(((fut_test_obj_t *)v)->value, 1);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

START_TEST(rule1_retain_release_null_is_noop)
{
    ck_assert_ptr_null(fut_retain(NULL));
    fut_release(NULL);
}
END_TEST

START_TEST(rule1_submit_returns_one_reference)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_executor_t *pool = fut_test_pool(2);
    fut_t *f = fut_submit(pool, task_counted_value, &tr);
    ck_assert_ptr_nonnull(f);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(((fut_test_obj_t *)v)->value, 7);
    fut_executor_free(pool);
    /* The future outlives its executor and holds the value until our one
     * reference goes. */
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* ------------------------------------------------- rule 2: never NULL */

static void progress_never(fut_t *f, void *progress, void *log)
{
    (void)f;
    (void)progress;
    atomic_fetch_add(&((fut_test_log_t *)log)->bad, 1);
}

START_TEST(rule2_never_null_queries_on_null)
{
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e;
    fut_test_entry_init(&e, &log, 0);
    void *v = &log;
    ck_assert_int_eq(fut_state(NULL), FUT_REJECTED);
    ck_assert(fut_done(NULL));
    ck_assert_ptr_null(fut_error(NULL));
    ck_assert_int_eq(fut_wait(NULL, 0), EINVAL);
    ck_assert_int_eq(fut_wait(NULL, FUT_FOREVER), EINVAL);
    ck_assert_int_eq(fut_get(NULL, FUT_FOREVER, &v), EINVAL);
    ck_assert_int_eq(fut_get(NULL, 0, NULL), EINVAL);
    ck_assert(!fut_cancel(NULL));
    ck_assert_int_eq(fut_on_done(NULL, fut_test_done_cb, &e), EINVAL);
    ck_assert_int_eq(fut_on_progress(NULL, progress_never, &log), EINVAL);
    /* The _ex form frees its arg before returning when the call fails. */
    ck_assert_int_eq(
        fut_on_done_ex(NULL, fut_test_done_cb, &e, fut_test_entry_free),
        EINVAL);
    ck_assert_int_eq(atomic_load(&e.freed), 1);
    ck_assert_int_eq(atomic_load(&e.ran), 0);
    ck_assert_int_eq(atomic_load(&log.bad), 0);
}
END_TEST

START_TEST(rule2_never_null_on_done_null_callback_is_einval)
{
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e;
    fut_test_entry_init(&e, &log, 0);
    fut_promise_t *p = fut_promise_new();
    ck_assert_ptr_nonnull(p);
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_on_done(f, NULL, &e), EINVAL);
    ck_assert_int_eq(fut_on_done_ex(f, NULL, &e, fut_test_entry_free), EINVAL);
    ck_assert_int_eq(atomic_load(&e.freed), 1);
    ck_assert_int_eq(fut_on_progress(f, NULL, &e), EINVAL);
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    ck_assert_int_eq(atomic_load(&e.freed), 1);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(rule2_never_null_rejected_bad_code_is_einval)
{
    fut_t *f = fut_rejected(0, "zero");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert_int_eq(fut_get(f, 0, NULL), EINVAL);
    ck_assert_int_eq(fut_error(f)->code, EINVAL);
    fut_release(f);
    f = fut_rejected(-5, NULL);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EINVAL);
    fut_release(f);
}
END_TEST

START_TEST(rule2_rejected_copies_message)
{
    char msg[32];
    strcpy(msg, "disk on fire");
    fut_t *f = fut_rejected(EIO, msg);
    memset(msg, 'x', sizeof msg - 1);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert(fut_done(f));
    const fut_error_t *err = fut_error(f);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->code, EIO);
    ck_assert_ptr_nonnull(err->message);
    ck_assert_str_eq(err->message, "disk on fire");
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), EIO);
    fut_release(f);

    f = fut_rejected(ENOENT, NULL); /* message may be NULL */
    ck_assert_int_eq(fut_error(f)->code, ENOENT);
    ck_assert_int_eq(fut_get(f, 0, NULL), ENOENT);
    fut_release(f);
}
END_TEST

START_TEST(rule2_never_null_submit_bad_arguments_reject_einval)
{
    atomic_int freed = 0;
    fut_executor_t *pool = fut_test_pool(1);

    /* Rejected before it ran: free_arg has run, on this thread, already. */
    fut_t *f = fut_submit_ex(NULL, fut_test_task_identity, &freed,
                             fut_test_count_free, 0);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(atomic_load(&freed), 1);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EINVAL);
    fut_release(f);

    f = fut_submit_ex(pool, NULL, &freed, fut_test_count_free, 0);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(atomic_load(&freed), 2);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EINVAL);
    fut_release(f);

    f = fut_submit(NULL, fut_test_task_identity, NULL);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EINVAL);
    fut_release(f);

    f = fut_submit(pool, NULL, NULL);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EINVAL);
    fut_release(f);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&freed), 2);
}
END_TEST

START_TEST(rule2_fail_rejects_with_formatted_message)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_t *f = fut_submit(pool, task_fail_fmt, NULL);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), EIO);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    const fut_error_t *err = fut_error(f);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->code, EIO);
    ck_assert_str_eq(err->message, "bad 42 of x");
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

START_TEST(rule2_fail_nonpositive_code_is_einval)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f0 = fut_submit(pool, task_fail_code, FUT_TEST_PTR(0));
    fut_t *fn = fut_submit(pool, task_fail_code, FUT_TEST_PTR(-7));
    ck_assert_int_eq(fut_get(f0, FUT_FOREVER, NULL), EINVAL);
    ck_assert_int_eq(fut_get(fn, FUT_FOREVER, NULL), EINVAL);
    ck_assert_int_eq(fut_state(f0), FUT_REJECTED);
    ck_assert_int_eq(fut_error(fn)->code, EINVAL);
    fut_release(f0);
    fut_release(fn);
    fut_executor_free(pool);
}
END_TEST

START_TEST(rule2_fail_ecanceled_settles_cancelled)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f = fut_submit(pool, task_fail_code, FUT_TEST_PTR(ECANCELED));
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), ECANCELED);
    ck_assert_int_eq(fut_state(f), FUT_CANCELLED);
    ck_assert_int_eq(fut_error(f)->code, ECANCELED);
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

START_TEST(rule2_fail_first_failure_wins)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f = fut_submit(pool, task_fail_twice, NULL);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EIO);
    ck_assert_str_eq(fut_error(f)->message, "first");
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

START_TEST(rule2_get_reports_rejection_code)
{
    fut_t *f = fut_rejected(ERANGE, "out of range");
    void *v = NULL;
    ck_assert_int_eq(fut_wait(f, FUT_FOREVER), 0);
    ck_assert_int_eq(fut_wait(f, 0), 0);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), ERANGE);
    ck_assert_int_eq(fut_get(f, 0, &v), ERANGE);
    ck_assert_int_eq(fut_get(f, FUT_MS(5), NULL), ERANGE);
    fut_release(f);
}
END_TEST

/* ------------------------------ rule 3: values destroyed exactly once */

START_TEST(rule3_value_destroyed_once_on_last_release)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_t *f = fut_resolved(fut_test_obj_new(&tr, 5), fut_test_obj_free);
    fut_t *g = fut_retain(f);
    ck_assert_int_eq(fut_state(f), FUT_FULFILLED);
    ck_assert(fut_done(f));
    ck_assert_ptr_null(fut_error(f));
    void *v1 = NULL, *v2 = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v1), 0);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v2), 0);
    ck_assert_ptr_eq(v1, v2);
    ck_assert_int_eq(((fut_test_obj_t *)v1)->value, 5);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

START_TEST(rule3_value_without_destructor_is_callers)
{
    int local = 99;
    fut_t *f = fut_resolved(&local, NULL);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v), 0);
    ck_assert_ptr_eq(v, &local);
    ck_assert_int_eq(fut_get(f, 0, NULL), 0); /* value pointer may be NULL */
    fut_release(f);
    ck_assert_int_eq(local, 99);

    f = fut_resolved(NULL, NULL);
    v = &local;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_ptr_null(v);
    fut_release(f);
}
END_TEST

START_TEST(rule3_task_value_destroyed_once)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_executor_t *pool = fut_test_pool(2);
    enum { N = 16 };
    fut_t *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit(pool, task_counted_value, &tr);
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, &v), 0);
        ck_assert_int_eq(((fut_test_obj_t *)v)->value, 7);
    }
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    for (int i = 0; i < N; i++)
        fut_release(fs[i]);
    /* A worker may still hold its own reference for a moment after the
     * future settled; once the pool is gone, every future is freed. */
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&tr.made), N);
    ck_assert_int_eq(atomic_load(&tr.freed), N);
}
END_TEST

START_TEST(rule3_fail_destroys_returned_value_once)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f = fut_submit(pool, task_fail_then_value, &tr);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EIO);
    fut_release(f);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&tr.made), 1);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* ------------------------------------------------- states, timeouts */

START_TEST(states_pending_running_fulfilled)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 3);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *running = fut_submit(pool, fut_test_task_block, &b);
    fut_t *queued = fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(4));
    fut_test_wait_atomic(&b.started, 1);
    ck_assert_int_eq(fut_state(running), FUT_RUNNING);
    ck_assert(!fut_done(running));
    ck_assert_ptr_null(fut_error(running));
    ck_assert_int_eq(fut_state(queued), FUT_PENDING);
    ck_assert(!fut_done(queued));
    ck_assert_int_eq(fut_wait(running, 0), ETIMEDOUT);
    ck_assert_int_eq(fut_get(queued, 0, NULL), FUT_TIMEDOUT);
    fut_test_latch_open(&b.latch);
    void *v = NULL;
    ck_assert_int_eq(fut_get(queued, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 4);
    ck_assert_int_eq(fut_get(running, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 3);
    ck_assert_int_eq(fut_state(running), FUT_FULFILLED);
    ck_assert(fut_done(running));
    fut_release(running);
    fut_release(queued);
    fut_executor_free(pool);
    fut_test_blocker_destroy(&b);
}
END_TEST

START_TEST(wait_timeout_etimedout_and_get_timeout_fut_timedout)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    int64_t t0 = fut_test_now_ns();
    ck_assert_int_eq(fut_wait(f, FUT_MS(50)), ETIMEDOUT);
    int64_t t1 = fut_test_now_ns();
    ck_assert_msg(t1 - t0 >= FUT_MS(50), "fut_wait returned after %lld ns",
                  (long long)(t1 - t0));
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_MS(30), &v), FUT_TIMEDOUT);
    ck_assert_msg(fut_test_now_ns() - t1 >= FUT_MS(30),
                  "fut_get returned early");
    ck_assert_int_eq(fut_state(f), FUT_PENDING);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(1), NULL), 0);
    ck_assert_int_eq(fut_get(f, FUT_MS(30), &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(wait_zero_polls)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_wait(f, 0), ETIMEDOUT);
    ck_assert_int_eq(fut_get(f, 0, NULL), FUT_TIMEDOUT);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(8), NULL), 0);
    ck_assert_int_eq(fut_wait(f, 0), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 8);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(wait_any_negative_timeout_waits_forever)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_test_later_t l = {.p = p, .ms = 30, .value = FUT_TEST_PTR(11)};
    pthread_t t = fut_test_spawn(fut_test_settle_later, &l);
    ck_assert_int_eq(fut_wait(f, -12345), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, INT64_MIN, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 11);
    fut_test_join(t);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

/* A task that waits on its own future must get EDEADLK, not hang. */
typedef struct selfwait {
    fut_test_latch_t ready;
    fut_t *self;
    int wait_rc, get_rc, timed_rc;
} selfwait_t;

static void *task_wait_self(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    selfwait_t *s = arg;
    fut_test_latch_wait(&s->ready);
    s->wait_rc = fut_wait(s->self, FUT_FOREVER);
    s->get_rc = fut_get(s->self, FUT_FOREVER, NULL);
    s->timed_rc = fut_wait(s->self, FUT_MS(10));
    return FUT_TEST_PTR(1);
}

START_TEST(edeadlk_task_waits_on_own_future)
{
    selfwait_t s = {.self = NULL};
    fut_test_latch_init(&s.ready);
    fut_executor_t *pool = fut_test_pool(2);
    fut_t *f = fut_submit(pool, task_wait_self, &s);
    s.self = f;
    fut_test_latch_open(&s.ready);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1);
    ck_assert_int_eq(s.wait_rc, EDEADLK);
    ck_assert_int_eq(s.get_rc, EDEADLK);
    ck_assert_int_eq(s.timed_rc, EDEADLK);
    fut_release(f);
    fut_executor_free(pool);
    fut_test_latch_destroy(&s.ready);
}
END_TEST

/* ---------------------------------------------------- rules 4 and 5 */

START_TEST(rule5_callbacks_run_in_registration_order)
{
    enum { N = 40 };
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e[N];
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    for (int i = 0; i < N; i++) {
        fut_test_entry_init(&e[i], &log, i);
        if (i % 2)
            ck_assert_int_eq(fut_on_done(f, fut_test_done_cb, &e[i]), 0);
        else
            ck_assert_int_eq(
                fut_on_done_ex(f, fut_test_done_cb, &e[i], fut_test_entry_free),
                0);
    }
    ck_assert_int_eq(atomic_load(&log.calls), 0);
    ck_assert_int_eq(atomic_load(&log.freed), 0);
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    /* fut_resolve runs the callbacks on this thread before returning. */
    ck_assert_int_eq(atomic_load(&log.calls), N);
    ck_assert_int_eq(atomic_load(&log.thread), fut_test_thread_id());
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&log.order[i]), i);
        ck_assert_int_eq(atomic_load(&e[i].ran), 1);
    }
    for (int i = 0; i < N; i += 2) {
        ck_assert_int_eq(atomic_load(&e[i].freed), 1);
        ck_assert_int_eq(atomic_load(&e[i].ran_when_freed), 1);
    }
    ck_assert_int_eq(atomic_load(&log.bad), 0);
    fut_promise_release(p);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&log.calls), N);
}
END_TEST

START_TEST(rule5_callback_on_settled_future_runs_at_once)
{
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e[3];
    for (int i = 0; i < 3; i++)
        fut_test_entry_init(&e[i], &log, i);
    fut_t *f = fut_resolved(NULL, NULL);
    ck_assert_int_eq(fut_on_done(f, fut_test_done_cb, &e[0]), 0);
    ck_assert_int_eq(atomic_load(&e[0].ran), 1);
    ck_assert_int_eq(atomic_load(&log.thread), fut_test_thread_id());
    ck_assert_int_eq(
        fut_on_done_ex(f, fut_test_done_cb, &e[1], fut_test_entry_free), 0);
    ck_assert_int_eq(atomic_load(&e[1].ran), 1);
    ck_assert_int_eq(atomic_load(&e[1].freed), 1);
    ck_assert_int_eq(atomic_load(&e[1].ran_when_freed), 1);
    fut_release(f);

    fut_t *r = fut_rejected(EIO, "x");
    ck_assert_int_eq(fut_on_done(r, fut_test_done_cb, &e[2]), 0);
    ck_assert_int_eq(atomic_load(&e[2].ran), 1);
    fut_release(r);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(atomic_load(&log.order[i]), i);
    ck_assert_int_eq(atomic_load(&log.bad), 0);
}
END_TEST

START_TEST(rule5_callbacks_run_on_settling_thread)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 0);
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e[4];
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f = fut_submit(pool, fut_test_task_block, &b);
    for (int i = 0; i < 4; i++) {
        fut_test_entry_init(&e[i], &log, i);
        ck_assert_int_eq(
            fut_on_done_ex(f, fut_test_done_cb, &e[i], fut_test_entry_free), 0);
    }
    ck_assert_int_eq(atomic_load(&log.calls), 0);
    fut_test_latch_open(&b.latch);
    ck_assert_int_eq(fut_wait(f, FUT_FOREVER), 0);
    fut_executor_free(pool); /* after this the worker has run every callback */
    ck_assert_int_eq(atomic_load(&log.calls), 4);
    ck_assert_int_ne(atomic_load(&log.thread), fut_test_thread_id());
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(atomic_load(&log.order[i]), i);
        ck_assert_int_eq(atomic_load(&e[i].freed), 1);
        ck_assert_int_eq(atomic_load(&e[i].ran_when_freed), 1);
    }
    fut_release(f);
    fut_test_blocker_destroy(&b);
}
END_TEST

/* A callback may call back into the library (rule 8: thread-safe
 * everywhere), here on the future it is told about, and may hold the only
 * reference left. */
typedef struct reenter {
    atomic_int ok;
    atomic_int calls;
} reenter_t;

static void cb_reenter(fut_t *f, void *arg)
{
    reenter_t *r = arg;
    void *v = NULL;
    fut_t *g = fut_retain(f);
    if (fut_get(g, 0, &v) == 0 && FUT_TEST_INT(v) == 21 &&
        fut_state(g) == FUT_FULFILLED && fut_wait(g, FUT_FOREVER) == 0 &&
        !fut_cancel(g))
        atomic_store(&r->ok, 1);
    fut_release(g);
    atomic_fetch_add(&r->calls, 1);
}

START_TEST(rule8_callback_may_use_the_api_on_its_future)
{
    reenter_t r = {.ok = 0, .calls = 0};
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_on_done(f, cb_reenter, &r), 0);
    fut_release(f); /* the promise keeps the future alive for the callback */
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(21), NULL), 0);
    ck_assert_int_eq(atomic_load(&r.calls), 1);
    ck_assert_int_eq(atomic_load(&r.ok), 1);
    fut_promise_release(p);
}
END_TEST

/* ------------------------------------- rule 6: no unbounded recursion */

/* A chain of promises where each done-callback resolves the next: settling
 * the head must not recurse once per link (rule 6: no unbounded recursion;
 * inline continuations are drained by a per-thread trampoline).  The chain runs
 * on a thread with a small stack, so recursion would overflow it. */
typedef struct chain {
    size_t n;
    fut_promise_t **ps;
    fut_t **fs;
    atomic_size_t ran;
    int rc;
} chain_t;

typedef struct chain_link {
    chain_t *c;
    size_t i;
} chain_link_t;

static void cb_chain_next(fut_t *f, void *arg)
{
    (void)f;
    chain_link_t *l = arg;
    atomic_fetch_add(&l->c->ran, 1);
    if (l->i + 1 < l->c->n)
        fut_resolve(l->c->ps[l->i + 1], NULL, NULL);
}

static void *chain_thread(void *arg)
{
    chain_t *c = arg;
    c->rc = fut_resolve(c->ps[0], NULL, NULL);
    return NULL;
}

static void run_chain(size_t n)
{
    chain_t c = {.n = n, .rc = -1};
    atomic_init(&c.ran, 0);
    c.ps = calloc(n, sizeof *c.ps);
    c.fs = calloc(n, sizeof *c.fs);
    chain_link_t *links = calloc(n, sizeof *links);
    ck_assert(c.ps && c.fs && links);
    for (size_t i = 0; i < n; i++) {
        c.ps[i] = fut_promise_new();
        ck_assert_ptr_nonnull(c.ps[i]);
        c.fs[i] = fut_promise_future(c.ps[i]);
        links[i] = (chain_link_t){.c = &c, .i = i};
        ck_assert_int_eq(fut_on_done(c.fs[i], cb_chain_next, &links[i]), 0);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    ck_assert_int_eq(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &attr, chain_thread, &c), 0);
    pthread_attr_destroy(&attr);
    fut_test_join(t);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_uint_eq(atomic_load(&c.ran), n);
    ck_assert_int_eq(fut_state(c.fs[n - 1]), FUT_FULFILLED);
    for (size_t i = 0; i < n; i++) {
        fut_promise_release(c.ps[i]);
        fut_release(c.fs[i]);
    }
    free(c.ps);
    free(c.fs);
    free(links);
}

START_TEST(rule6_callback_chain_does_not_grow_the_stack)
{
    run_chain(50000);
}
END_TEST

START_TEST(stress_rule6_callback_chain_of_a_million)
{
    run_chain(1000000);
}
END_TEST

/* ------------------------------------------------------------ macros */

START_TEST(time_macros_convert_to_nanoseconds)
{
    ck_assert(FUT_FOREVER < 0);
    ck_assert_int_eq(FUT_US(1), 1000);
    ck_assert_int_eq(FUT_MS(1), 1000000);
    ck_assert_int_eq(FUT_S(1), 1000000000);
    /* The macro parenthesises its argument. */
    ck_assert_int_eq(FUT_MS(1 + 1), 2000000);
    ck_assert_int_eq(FUT_S(3) - FUT_MS(3000), 0);
    /* The macro computes in int64_t: no int overflow. */
    ck_assert_int_eq(FUT_S(5000000000), INT64_C(5000000000000000000));
    ck_assert_int_eq(FUT_US(0), 0);
    int small = 7;
    ck_assert(sizeof(FUT_MS(small)) == sizeof(int64_t));
    ck_assert_int_eq(FUT_MS(small), INT64_C(7000000));
}
END_TEST

Suite *fut_test_future_suite(void)
{
    Suite *s = suite_create("future");
    TCase *tc = tcase_create("future");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, rule1_retain_returns_same_future_and_keeps_value);
    tcase_add_test(tc, rule1_retain_release_null_is_noop);
    tcase_add_test(tc, rule1_submit_returns_one_reference);
    tcase_add_test(tc, rule2_never_null_queries_on_null);
    tcase_add_test(tc, rule2_never_null_on_done_null_callback_is_einval);
    tcase_add_test(tc, rule2_never_null_rejected_bad_code_is_einval);
    tcase_add_test(tc, rule2_rejected_copies_message);
    tcase_add_test(tc, rule2_never_null_submit_bad_arguments_reject_einval);
    tcase_add_test(tc, rule2_fail_rejects_with_formatted_message);
    tcase_add_test(tc, rule2_fail_nonpositive_code_is_einval);
    tcase_add_test(tc, rule2_fail_ecanceled_settles_cancelled);
    tcase_add_test(tc, rule2_fail_first_failure_wins);
    tcase_add_test(tc, rule2_get_reports_rejection_code);
    tcase_add_test(tc, rule3_value_destroyed_once_on_last_release);
    tcase_add_test(tc, rule3_value_without_destructor_is_callers);
    tcase_add_test(tc, rule3_task_value_destroyed_once);
    tcase_add_test(tc, rule3_fail_destroys_returned_value_once);
    tcase_add_test(tc, states_pending_running_fulfilled);
    tcase_add_test(tc, wait_timeout_etimedout_and_get_timeout_fut_timedout);
    tcase_add_test(tc, wait_zero_polls);
    tcase_add_test(tc, wait_any_negative_timeout_waits_forever);
    tcase_add_test(tc, edeadlk_task_waits_on_own_future);
    tcase_add_test(tc, rule5_callbacks_run_in_registration_order);
    tcase_add_test(tc, rule5_callback_on_settled_future_runs_at_once);
    tcase_add_test(tc, rule5_callbacks_run_on_settling_thread);
    tcase_add_test(tc, rule8_callback_may_use_the_api_on_its_future);
    tcase_add_test(tc, time_macros_convert_to_nanoseconds);
    tcase_add_test(tc, rule6_callback_chain_does_not_grow_the_stack);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("future_stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_set_tags(st, "stress");
    tcase_add_test(st, stress_rule6_callback_chain_of_a_million);
    suite_add_tcase(s, st);
    return s;
}

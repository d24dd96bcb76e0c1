/*
 * test_wait.c - PEP 3148 wait() over many futures: fut_wait_for with
 * FIRST_COMPLETED / FIRST_EXCEPTION / ALL_COMPLETED and a timeout.
 * as_completed has its own suite (test_iter.c), and so has map
 * (test_map.c).
 *
 * Timeouts are checked from below only (CLOCK_MONOTONIC): never an upper
 * bound on a shared machine.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_wait_suite(void);

/* ----------------------------------------------------- fut_wait_for */

START_TEST(pep3148_wait_first_completed_returns_when_one_settles)
{
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    size_t done = 99;
    ck_assert_int_eq(fut_wait_for(f, 3, 0, FUT_FIRST_COMPLETED, &done),
                     ETIMEDOUT);
    ck_assert_uint_eq(done, 0);
    fut_test_later_t l = {.p = p[1], .code = 0, .ms = 20};
    pthread_t t = fut_test_spawn(fut_test_settle_later, &l);
    ck_assert_int_eq(
        fut_wait_for(f, 3, FUT_FOREVER, FUT_FIRST_COMPLETED, &done), 0);
    ck_assert_uint_eq(done, 1);
    ck_assert_int_eq(fut_state(f[1]), FUT_FULFILLED);
    ck_assert_int_eq(fut_state(f[0]), FUT_PENDING);
    fut_test_join(t);
    /* Already satisfied: returns at once, even when polling. */
    ck_assert_int_eq(fut_wait_for(f, 3, 0, FUT_FIRST_COMPLETED, &done), 0);
    ck_assert_uint_eq(done, 1);
    ck_assert_int_eq(fut_wait_for(f, 3, 0, FUT_FIRST_COMPLETED, NULL), 0);
    /* A rejection completes too. */
    ck_assert_int_eq(fut_reject(p[2], EIO, "x"), 0);
    ck_assert_int_eq(
        fut_wait_for(f + 2, 1, FUT_FOREVER, FUT_FIRST_COMPLETED, &done), 0);
    ck_assert_uint_eq(done, 1);
    ck_assert_int_eq(fut_get(f[2], 0, NULL), EIO);
    fut_test_release_all(p, f, 3);
}
END_TEST

START_TEST(pep3148_wait_first_exception_returns_on_first_rejection)
{
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    ck_assert_int_eq(fut_resolve(p[0], NULL, NULL), 0);
    size_t done = 99;
    /* A fulfilment does not satisfy FIRST_EXCEPTION. */
    ck_assert_int_eq(fut_wait_for(f, 3, 0, FUT_FIRST_EXCEPTION, &done),
                     ETIMEDOUT);
    ck_assert_uint_eq(done, 1);
    fut_test_later_t l = {.p = p[2], .code = EIO, .ms = 20};
    pthread_t t = fut_test_spawn(fut_test_settle_later, &l);
    ck_assert_int_eq(
        fut_wait_for(f, 3, FUT_FOREVER, FUT_FIRST_EXCEPTION, &done), 0);
    ck_assert_uint_eq(done, 2);
    /* The wait returned while input 1 was pending. */
    ck_assert_int_eq(fut_state(f[1]), FUT_PENDING);
    ck_assert_int_eq(fut_get(f[2], 0, NULL), EIO);
    fut_test_join(t);
    fut_test_release_all(p, f, 3);
}
END_TEST

START_TEST(pep3148_wait_first_exception_without_rejection_waits_for_all)
{
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    ck_assert_int_eq(fut_resolve(p[0], NULL, NULL), 0);
    ck_assert_int_eq(fut_resolve(p[2], NULL, NULL), 0);
    size_t done = 99;
    int64_t t0 = fut_test_now_ns();
    ck_assert_int_eq(fut_wait_for(f, 3, FUT_MS(20), FUT_FIRST_EXCEPTION, &done),
                     ETIMEDOUT);
    ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(20));
    ck_assert_uint_eq(done, 2);
    fut_test_later_t l = {.p = p[1], .code = 0, .ms = 10};
    pthread_t t = fut_test_spawn(fut_test_settle_later, &l);
    ck_assert_int_eq(
        fut_wait_for(f, 3, FUT_FOREVER, FUT_FIRST_EXCEPTION, &done), 0);
    ck_assert_uint_eq(done, 3);
    fut_test_join(t);
    fut_test_release_all(p, f, 3);
}
END_TEST

START_TEST(pep3148_wait_all_completed_waits_for_every_future)
{
    fut_promise_t *p[4];
    fut_t *f[4];
    fut_test_promises(p, f, 4);
    /* A rejection does not end an ALL_COMPLETED wait. */
    ck_assert_int_eq(fut_reject(p[0], EIO, "zero"), 0);
    ck_assert_int_eq(fut_resolve(p[1], NULL, NULL), 0);
    ck_assert(fut_cancel(f[3]));
    size_t done = 99;
    int64_t t0 = fut_test_now_ns();
    ck_assert_int_eq(fut_wait_for(f, 4, FUT_MS(30), FUT_ALL_COMPLETED, &done),
                     ETIMEDOUT);
    ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(30));
    ck_assert_uint_eq(done, 3);
    fut_test_later_t l = {.p = p[2], .code = 0, .ms = 10};
    pthread_t t = fut_test_spawn(fut_test_settle_later, &l);
    ck_assert_int_eq(fut_wait_for(f, 4, FUT_FOREVER, FUT_ALL_COMPLETED, &done),
                     0);
    ck_assert_uint_eq(done, 4);
    for (int i = 0; i < 4; i++)
        ck_assert(fut_done(f[i]));
    fut_test_join(t);
    ck_assert_int_eq(fut_get(f[0], 0, NULL), EIO); /* borrowed: still ours */
    fut_test_release_all(p, f, 4);
}
END_TEST

/* Futures settled by pool tasks, waited on with every mode. */
START_TEST(pep3148_wait_on_pool_tasks)
{
    enum { N = 16 };
    fut_executor_t *pool = fut_test_pool(4);
    fut_t *f[N];
    for (int i = 0; i < N; i++)
        f[i] = fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(i));
    size_t done = 0;
    ck_assert_int_eq(
        fut_wait_for(f, N, FUT_FOREVER, FUT_FIRST_COMPLETED, &done), 0);
    ck_assert_uint_ge(done, 1);
    ck_assert_int_eq(
        fut_wait_for(f, N, FUT_FOREVER, FUT_FIRST_EXCEPTION, &done), 0);
    ck_assert_uint_eq(done, N);
    ck_assert_int_eq(fut_wait_for(f, N, FUT_FOREVER, FUT_ALL_COMPLETED, &done),
                     0);
    ck_assert_uint_eq(done, N);
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        ck_assert_int_eq(fut_get(f[i], 0, &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), i);
        fut_release(f[i]);
    }
    fut_executor_free(pool);
}
END_TEST

START_TEST(pep3148_wait_bad_arguments_einval)
{
    fut_t *f[1] = {fut_resolved(NULL, NULL)};
    ck_assert_int_eq(fut_wait_for(NULL, 2, 0, FUT_ALL_COMPLETED, NULL), EINVAL);
    ck_assert_int_eq(fut_wait_for(f, 1, 0, 0, NULL), EINVAL);
    ck_assert_int_eq(fut_wait_for(f, 1, 0, 99, NULL), EINVAL);
    fut_release(f[0]);
}
END_TEST

/* ------------------------------------------------------------- suite */

Suite *fut_test_wait_suite(void)
{
    Suite *s = suite_create("wait");
    TCase *tc = tcase_create("wait");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, pep3148_wait_first_completed_returns_when_one_settles);
    tcase_add_test(tc, pep3148_wait_first_exception_returns_on_first_rejection);
    tcase_add_test(
        tc, pep3148_wait_first_exception_without_rejection_waits_for_all);
    tcase_add_test(tc, pep3148_wait_all_completed_waits_for_every_future);
    tcase_add_test(tc, pep3148_wait_on_pool_tasks);
    tcase_add_test(tc, pep3148_wait_bad_arguments_einval);
    suite_add_tcase(s, tc);
    return s;
}

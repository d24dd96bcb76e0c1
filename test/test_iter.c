/*
 * test_iter.c - PEP 3148 as_completed(): fut_as_completed / fut_iter_next
 * yield each future once in the order they settle, with a timeout per
 * call, and the iterator keeps its own references.
 *
 * Timeouts are checked from below only (CLOCK_MONOTONIC): never an upper
 * bound on a shared machine.  Randomized cases print their seed and take
 * FUT_TEST_SEED.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_iter_suite(void);

/* --------------------------------------------------- fut_as_completed */

START_TEST(pep3148_as_completed_yields_in_settle_order)
{
    enum { N = 5 };
    fut_promise_t *p[N];
    fut_t *f[N];
    fut_test_promises(p, f, N);
    fut_iter_t *it = fut_as_completed(f, N);
    ck_assert_ptr_nonnull(it);
    const int order[N] = {3, 0, 4, 1, 2};
    for (int i = 0; i < N; i++) {
        fut_t *got = NULL;
        size_t index = 99;
        ck_assert_int_eq(fut_iter_next(it, 0, &got, &index), ETIMEDOUT);
        if (order[i] % 2)
            ck_assert_int_eq(fut_reject(p[order[i]], EIO, "odd"), 0);
        else
            ck_assert_int_eq(
                fut_resolve(p[order[i]], FUT_TEST_PTR(order[i]), NULL), 0);
        ck_assert_int_eq(fut_iter_next(it, FUT_FOREVER, &got, &index), 0);
        ck_assert_uint_eq(index, (size_t)order[i]);
        ck_assert_ptr_eq(got, f[order[i]]);
        ck_assert(fut_done(got));
    }
    fut_t *got = NULL;
    size_t index = 0;
    ck_assert_int_eq(fut_iter_next(it, FUT_FOREVER, &got, &index), ENOENT);
    ck_assert_int_eq(fut_iter_next(it, 0, &got, &index), ENOENT);
    fut_iter_free(it);
    for (int i = 1; i < N; i += 2)
        ck_assert_int_eq(fut_get(f[i], 0, NULL), EIO);
    fut_test_release_all(p, f, N);
}
END_TEST

START_TEST(pep3148_as_completed_yields_settled_futures_first)
{
    fut_promise_t *p[4];
    fut_t *f[4];
    fut_test_promises(p, f, 4);
    ck_assert_int_eq(fut_resolve(p[1], NULL, NULL), 0);
    ck_assert_int_eq(fut_resolve(p[3], NULL, NULL), 0);
    fut_iter_t *it = fut_as_completed(f, 4);
    ck_assert_ptr_nonnull(it);
    ck_assert_int_eq(fut_resolve(p[0], NULL, NULL), 0);
    bool seen[4] = {false};
    size_t index = 99;
    fut_t *got = NULL;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(fut_iter_next(it, 0, &got, &index), 0);
        ck_assert_msg(index == 1 || index == 3,
                      "yielded %zu before the settled ones", index);
        ck_assert(!seen[index]);
        seen[index] = true;
    }
    ck_assert_int_eq(fut_iter_next(it, 0, &got, &index), 0);
    ck_assert_uint_eq(index, 0);
    ck_assert_int_eq(fut_iter_next(it, 0, &got, &index), ETIMEDOUT);
    ck_assert_int_eq(fut_resolve(p[2], NULL, NULL), 0);
    ck_assert_int_eq(fut_iter_next(it, 0, &got, &index), 0);
    ck_assert_uint_eq(index, 2);
    ck_assert_int_eq(fut_iter_next(it, 0, &got, &index), ENOENT);
    fut_iter_free(it);
    fut_test_release_all(p, f, 4);
}
END_TEST

START_TEST(pep3148_as_completed_timeout_applies_per_call)
{
    fut_promise_t *p[2];
    fut_t *f[2];
    fut_test_promises(p, f, 2);
    fut_iter_t *it = fut_as_completed(f, 2);
    fut_t *got = NULL;
    size_t index = 99;
    for (int round = 0; round < 2; round++) {
        int64_t t0 = fut_test_now_ns();
        ck_assert_int_eq(fut_iter_next(it, FUT_MS(20), &got, &index),
                         ETIMEDOUT);
        ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(20));
    }
    fut_test_later_t l = {.p = p[1], .code = 0, .ms = 10};
    pthread_t t = fut_test_spawn(fut_test_settle_later, &l);
    ck_assert_int_eq(fut_iter_next(it, FUT_FOREVER, &got, &index), 0);
    ck_assert_uint_eq(index, 1);
    fut_test_join(t);
    int64_t t0 = fut_test_now_ns();
    ck_assert_int_eq(fut_iter_next(it, FUT_MS(20), &got, &index), ETIMEDOUT);
    ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(20));
    ck_assert_int_eq(fut_resolve(p[0], NULL, NULL), 0);
    ck_assert_int_eq(fut_iter_next(it, FUT_MS(20), &got, &index), 0);
    ck_assert_uint_eq(index, 0);
    fut_iter_free(it);
    fut_test_release_all(p, f, 2);
}
END_TEST

START_TEST(pep3148_as_completed_keeps_its_own_references)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    fut_iter_t *it = fut_as_completed(f, 3);
    ck_assert_ptr_nonnull(it);
    for (int i = 0; i < 3; i++)
        fut_release(
            f[i]); /* only the promises and the iterator hold them now */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fut_resolve(p[2 - i], fut_test_obj_new(&tr, 2 - i),
                                     fut_test_obj_free),
                         0);
        fut_promise_release(p[2 - i]);
    }
    for (int i = 0; i < 3; i++) {
        fut_t *got = NULL;
        size_t index = 99;
        ck_assert_int_eq(fut_iter_next(it, FUT_FOREVER, &got, &index), 0);
        ck_assert_uint_eq(index, (size_t)(2 - i));
        void *v = NULL;
        ck_assert_int_eq(fut_get(got, 0, &v), 0);
        ck_assert_int_eq(((fut_test_obj_t *)v)->value, 2 - i);
    }
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_iter_free(it);
    ck_assert_int_eq(atomic_load(&tr.freed), 3);
}
END_TEST

/* An iterator freed before it has yielded everything still lets go of the
 * futures it never yielded: its references may last until those futures
 * settle (their callbacks still point into it), but once they have settled
 * and the caller has dropped its own references, every value is destroyed.
 * Settling them after fut_iter_free must touch no freed memory (valgrind
 * and AddressSanitizer check that). */
START_TEST(pep3148_as_completed_freed_before_exhausted)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    fut_iter_t *it = fut_as_completed(f, 3);
    ck_assert_ptr_nonnull(it);
    ck_assert_int_eq(fut_resolve(p[0], NULL, NULL), 0);
    fut_t *got = NULL;
    size_t index = 99;
    ck_assert_int_eq(fut_iter_next(it, FUT_FOREVER, &got, &index), 0);
    ck_assert_uint_eq(index, 0);
    ck_assert_ptr_eq(got, f[0]);
    fut_iter_free(it); /* two never yielded, both still pending */
    ck_assert_int_eq(fut_state(f[1]), FUT_PENDING);
    ck_assert_int_eq(fut_state(f[2]), FUT_PENDING);
    for (int i = 1; i < 3; i++) {
        ck_assert_int_eq(
            fut_resolve(p[i], fut_test_obj_new(&tr, i), fut_test_obj_free), 0);
        fut_promise_release(p[i]);
        fut_release(f[i]);
    }
    ck_assert_int_eq(atomic_load(&tr.made), 2);
    ck_assert_int_eq(atomic_load(&tr.freed), 2);
    fut_promise_release(p[0]);
    fut_release(f[0]);
}
END_TEST

START_TEST(pep3148_as_completed_bad_arguments)
{
    fut_t *got = NULL;
    size_t index = 0;
    ck_assert_ptr_null(fut_as_completed(NULL, 3));
    ck_assert_int_eq(fut_iter_next(NULL, 0, &got, &index), EINVAL);
}
END_TEST

/* Futures settled from several threads released together: each is
 * yielded exactly once, and two settled by one thread come in the order
 * that thread settled them. */
enum { AC_N = 24, AC_T = 4 };

typedef struct ac_thread {
    fut_test_barrier_t *barrier;
    fut_promise_t *p[AC_N];
    int count;
} ac_thread_t;

static void *ac_settler(void *arg)
{
    ac_thread_t *t = arg;
    fut_test_barrier_wait(t->barrier);
    for (int j = 0; j < t->count; j++)
        fut_resolve(t->p[j], NULL, NULL);
    return NULL;
}

static void as_completed_round(unsigned seed)
{
    unsigned st = seed;
    fut_promise_t *p[AC_N];
    fut_t *f[AC_N];
    int thread_of[AC_N], pos[AC_N];
    ac_thread_t th[AC_T];
    fut_test_barrier_t barrier;
    fut_test_barrier_init(&barrier, AC_T + 1);
    fut_test_promises(p, f, AC_N);
    for (int t = 0; t < AC_T; t++) {
        th[t].barrier = &barrier;
        th[t].count = 0;
    }
    for (int i = 0; i < AC_N; i++) {
        int t = (int)(fut_test_rand(&st) % AC_T);
        thread_of[i] = t;
        pos[i] = th[t].count;
        th[t].p[th[t].count++] = p[i];
    }
    fut_iter_t *it = fut_as_completed(f, AC_N);
    ck_assert_ptr_nonnull(it);
    pthread_t tids[AC_T];
    for (int t = 0; t < AC_T; t++)
        tids[t] = fut_test_spawn(ac_settler, &th[t]);
    fut_test_barrier_wait(&barrier);
    int last_pos[AC_T];
    bool seen[AC_N] = {false};
    for (int t = 0; t < AC_T; t++)
        last_pos[t] = -1;
    for (int k = 0; k < AC_N; k++) {
        fut_t *got = NULL;
        size_t index = 0;
        ck_assert_msg(fut_iter_next(it, FUT_FOREVER, &got, &index) == 0,
                      "seed %u: next", seed);
        ck_assert_msg(index < AC_N && !seen[index], "seed %u: index %zu twice",
                      seed, index);
        seen[index] = true;
        ck_assert_msg(got == f[index], "seed %u: wrong future", seed);
        ck_assert_msg(pos[index] > last_pos[thread_of[index]],
                      "seed %u: out of settle order", seed);
        last_pos[thread_of[index]] = pos[index];
    }
    fut_t *got = NULL;
    size_t index = 0;
    ck_assert_msg(fut_iter_next(it, 0, &got, &index) == ENOENT,
                  "seed %u: not exhausted", seed);
    for (int t = 0; t < AC_T; t++)
        fut_test_join(tids[t]);
    fut_iter_free(it);
    fut_test_barrier_destroy(&barrier);
    fut_test_release_all(p, f, AC_N);
}

START_TEST(pep3148_as_completed_threads_20_seeds)
{
    fut_test_seeded_rounds(20, as_completed_round);
}
END_TEST

START_TEST(pep3148_as_completed_threads_1000_seeds)
{
    fut_test_seeded_rounds(1000, as_completed_round);
}
END_TEST

/* ------------------------------------------------------------- suite */

Suite *fut_test_iter_suite(void)
{
    Suite *s = suite_create("iter");
    TCase *tc = tcase_create("iter");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, pep3148_as_completed_yields_in_settle_order);
    tcase_add_test(tc, pep3148_as_completed_yields_settled_futures_first);
    tcase_add_test(tc, pep3148_as_completed_timeout_applies_per_call);
    tcase_add_test(tc, pep3148_as_completed_keeps_its_own_references);
    tcase_add_test(tc, pep3148_as_completed_freed_before_exhausted);
    tcase_add_test(tc, pep3148_as_completed_bad_arguments);
    tcase_add_test(tc, pep3148_as_completed_threads_20_seeds);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("iter_stress");
    tcase_set_tags(st, "stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(st, pep3148_as_completed_threads_1000_seeds);
    suite_add_tcase(s, st);
    return s;
}

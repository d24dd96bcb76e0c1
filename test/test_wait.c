/*
 * test_wait.c - the PEP 3148 blocking side over many futures:
 * fut_wait_for (wait with FIRST_COMPLETED / FIRST_EXCEPTION /
 * ALL_COMPLETED and a timeout), fut_as_completed / fut_iter_next
 * (as_completed: settle order, a timeout per call, its own references),
 * and fut_map (map with chunksize: input order, the first failure,
 * chunks not yet started cancelled, destructors).
 *
 * Timeouts are checked from below only (CLOCK_MONOTONIC): never an upper
 * bound on a shared machine.  Randomized cases print their seed and take
 * FUT_TEST_SEED.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_wait_suite(void);

static void release_all(fut_promise_t **ps, fut_t **fs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fut_promise_release(ps[i]);
        fut_release(fs[i]);
    }
}

/* Settles one promise from another thread, after the test thread is
 * (probably) blocked; correctness does not depend on that. */
typedef struct later {
    fut_promise_t *p;
    int code; /* 0: fulfil */
    int ms;
} later_t;

static void *settle_later(void *arg)
{
    later_t *l = arg;
    fut_test_sleep_ms(l->ms);
    if (l->code == 0)
        fut_resolve(l->p, FUT_TEST_PTR(1), NULL);
    else
        fut_reject(l->p, l->code, "later");
    return NULL;
}

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
    later_t l = {.p = p[1], .code = 0, .ms = 20};
    pthread_t t = fut_test_spawn(settle_later, &l);
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
    release_all(p, f, 3);
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
    later_t l = {.p = p[2], .code = EIO, .ms = 20};
    pthread_t t = fut_test_spawn(settle_later, &l);
    ck_assert_int_eq(
        fut_wait_for(f, 3, FUT_FOREVER, FUT_FIRST_EXCEPTION, &done), 0);
    ck_assert_uint_eq(done, 2);
    ck_assert_int_eq(fut_state(f[1]),
                     FUT_PENDING); /* returned while 1 was pending */
    ck_assert_int_eq(fut_get(f[2], 0, NULL), EIO);
    fut_test_join(t);
    release_all(p, f, 3);
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
    later_t l = {.p = p[1], .code = 0, .ms = 10};
    pthread_t t = fut_test_spawn(settle_later, &l);
    ck_assert_int_eq(
        fut_wait_for(f, 3, FUT_FOREVER, FUT_FIRST_EXCEPTION, &done), 0);
    ck_assert_uint_eq(done, 3);
    fut_test_join(t);
    release_all(p, f, 3);
}
END_TEST

START_TEST(pep3148_wait_all_completed_waits_for_every_future)
{
    fut_promise_t *p[4];
    fut_t *f[4];
    fut_test_promises(p, f, 4);
    ck_assert_int_eq(fut_reject(p[0], EIO, "zero"),
                     0); /* does not end the wait */
    ck_assert_int_eq(fut_resolve(p[1], NULL, NULL), 0);
    ck_assert(fut_cancel(f[3]));
    size_t done = 99;
    int64_t t0 = fut_test_now_ns();
    ck_assert_int_eq(fut_wait_for(f, 4, FUT_MS(30), FUT_ALL_COMPLETED, &done),
                     ETIMEDOUT);
    ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(30));
    ck_assert_uint_eq(done, 3);
    later_t l = {.p = p[2], .code = 0, .ms = 10};
    pthread_t t = fut_test_spawn(settle_later, &l);
    ck_assert_int_eq(fut_wait_for(f, 4, FUT_FOREVER, FUT_ALL_COMPLETED, &done),
                     0);
    ck_assert_uint_eq(done, 4);
    for (int i = 0; i < 4; i++)
        ck_assert(fut_done(f[i]));
    fut_test_join(t);
    ck_assert_int_eq(fut_get(f[0], 0, NULL), EIO); /* borrowed: still ours */
    release_all(p, f, 4);
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
    release_all(p, f, N);
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
    release_all(p, f, 4);
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
    later_t l = {.p = p[1], .code = 0, .ms = 10};
    pthread_t t = fut_test_spawn(settle_later, &l);
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
    release_all(p, f, 2);
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

START_TEST(pep3148_as_completed_freed_before_exhausted)
{
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    fut_iter_t *it = fut_as_completed(f, 3);
    ck_assert_int_eq(fut_resolve(p[0], NULL, NULL), 0);
    fut_t *got = NULL;
    size_t index = 99;
    ck_assert_int_eq(fut_iter_next(it, FUT_FOREVER, &got, &index), 0);
    ck_assert_uint_eq(index, 0);
    ck_assert_ptr_eq(got, f[0]);
    fut_iter_free(it); /* two never yielded, one still pending */
    ck_assert_int_eq(fut_resolve(p[1], NULL, NULL), 0);
    release_all(p, f, 3);
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
    release_all(p, f, AC_N);
}

static void as_completed_rounds(int rounds)
{
    unsigned base = fut_test_seed();
    for (int i = 0; i < rounds; i++) {
        unsigned seed = base + (unsigned)i;
        as_completed_round(seed != 0 ? seed : 1u);
    }
}

START_TEST(pep3148_as_completed_threads_20_seeds)
{
    as_completed_rounds(20);
}
END_TEST

START_TEST(pep3148_as_completed_threads_1000_seeds)
{
    as_completed_rounds(1000);
}
END_TEST

/* ---------------------------------------------------------- fut_map */

typedef struct map_arg {
    fut_test_tracker_t *tracker; /* NULL: results are plain integers */
    int fail_at;                 /* item that fails, or -1 */
    atomic_int calls;
    atomic_int other_thread; /* calls not on the test thread */
    int test_thread;
} map_arg_t;

static void map_arg_init(map_arg_t *m, fut_test_tracker_t *tr, int fail_at)
{
    m->tracker = tr;
    m->fail_at = fail_at;
    atomic_init(&m->calls, 0);
    atomic_init(&m->other_thread, 0);
    m->test_thread = fut_test_thread_id();
}

/* item is an integer; the result is item * 3, as an integer or as a
 * counted object with a destructor. */
static void *map_triple(fut_ctx_t *ctx, void *item, void *arg)
{
    map_arg_t *m = arg;
    atomic_fetch_add(&m->calls, 1);
    if (fut_test_thread_id() != m->test_thread)
        atomic_fetch_add(&m->other_thread, 1);
    int x = FUT_TEST_INT(item);
    if (x == m->fail_at)
        return fut_fail(ctx, EDOM, "item %d", x);
    if (m->tracker == NULL)
        return FUT_TEST_PTR(x * 3);
    fut_test_obj_t *o = malloc(sizeof *o);
    if (o == NULL)
        return fut_fail(ctx, ENOMEM, "test: no memory");
    o->tracker = m->tracker;
    o->value = x * 3;
    atomic_fetch_add(&m->tracker->made, 1);
    fut_set_free(ctx, fut_test_obj_free);
    return o;
}

enum { MAP_N = 50 };

static void fill_items(void **items, int n)
{
    for (int i = 0; i < n; i++)
        items[i] = FUT_TEST_PTR(i);
}

START_TEST(pep3148_map_results_in_input_order_for_every_chunk_size)
{
    void *items[MAP_N];
    fill_items(items, MAP_N);
    fut_executor_t *pool = fut_test_pool(4);
    const size_t chunks[] = {0, 1, 3, 7, MAP_N, MAP_N + 5};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        map_arg_t m;
        map_arg_init(&m, NULL, -1);
        fut_t *r = fut_map(pool, map_triple, items, MAP_N, chunks[c], &m);
        void *v = NULL;
        ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
        void **res = v;
        for (int i = 0; i < MAP_N; i++)
            ck_assert_msg(FUT_TEST_INT(res[i]) == 3 * i,
                          "chunk %zu: result %d is %d", chunks[c], i,
                          FUT_TEST_INT(res[i]));
        ck_assert_int_eq(atomic_load(&m.calls), MAP_N);
        ck_assert_int_eq(atomic_load(&m.other_thread),
                         MAP_N); /* ran on the pool */
        fut_release(r);
    }
    fut_executor_free(pool);
}
END_TEST

START_TEST(pep3148_map_destroys_each_result_once_with_the_result)
{
    void *items[MAP_N];
    fill_items(items, MAP_N);
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    map_arg_t m;
    map_arg_init(&m, &tr, -1);
    fut_executor_t *pool = fut_test_pool(3);
    fut_t *r = fut_map(pool, map_triple, items, MAP_N, 4, &m);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
    fut_executor_free(pool);
    for (int i = 0; i < MAP_N; i++)
        ck_assert_int_eq(((fut_test_obj_t **)v)[i]->value, 3 * i);
    ck_assert_int_eq(atomic_load(&tr.made), MAP_N);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(r);
    ck_assert_int_eq(atomic_load(&tr.freed), MAP_N);
}
END_TEST

START_TEST(pep3148_map_first_failure_rejects)
{
    void *items[MAP_N];
    fill_items(items, MAP_N);
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    map_arg_t m;
    map_arg_init(&m, &tr, 17);
    fut_executor_t *pool = fut_test_pool(4);
    fut_t *r = fut_map(pool, map_triple, items, MAP_N, 2, &m);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EDOM);
    ck_assert_str_eq(fut_error(r)->message, "item 17");
    fut_executor_free(pool);
    fut_release(r);
    /* Whatever ran, every value made was destroyed exactly once. */
    ck_assert_int_eq(atomic_load(&tr.freed), atomic_load(&tr.made));
}
END_TEST

/* With one worker held busy, every chunk is queued when the map starts;
 * the first chunk to run fails, and no other chunk may start after it. */
static void *map_fail_first(fut_ctx_t *ctx, void *item, void *arg)
{
    map_arg_t *m = arg;
    if (atomic_fetch_add(&m->calls, 1) == 0)
        return fut_fail(ctx, EIO, "first item %d", FUT_TEST_INT(item));
    return item;
}

START_TEST(pep3148_map_failure_cancels_chunks_not_started)
{
    void *items[MAP_N];
    fill_items(items, MAP_N);
    map_arg_t m;
    map_arg_init(&m, NULL, -1);
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 0);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *running = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1);
    fut_t *r = fut_map(pool, map_fail_first, items, MAP_N, 1, &m);
    ck_assert_int_eq(fut_state(r), FUT_PENDING);
    fut_test_latch_open(&b.latch);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EIO);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&m.calls), 1);
    fut_release(r);
    fut_release(running);
    fut_test_blocker_destroy(&b);
}
END_TEST

START_TEST(pep3148_map_of_nothing_fulfils)
{
    void *items[1] = {NULL};
    map_arg_t m;
    map_arg_init(&m, NULL, -1);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *r = fut_map(pool, map_triple, items, 0, 1, &m);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(atomic_load(&m.calls), 0);
    fut_release(r);
    fut_executor_free(pool);
}
END_TEST

START_TEST(pep3148_map_bad_arguments_reject_einval)
{
    void *items[2] = {FUT_TEST_PTR(1), FUT_TEST_PTR(2)};
    map_arg_t m;
    map_arg_init(&m, NULL, -1);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *r = fut_map(NULL, map_triple, items, 2, 1, &m);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    r = fut_map(pool, NULL, items, 2, 1, &m);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    r = fut_map(pool, map_triple, NULL, 2, 1, &m);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&m.calls), 0);
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
    tcase_add_test(tc, pep3148_as_completed_yields_in_settle_order);
    tcase_add_test(tc, pep3148_as_completed_yields_settled_futures_first);
    tcase_add_test(tc, pep3148_as_completed_timeout_applies_per_call);
    tcase_add_test(tc, pep3148_as_completed_keeps_its_own_references);
    tcase_add_test(tc, pep3148_as_completed_freed_before_exhausted);
    tcase_add_test(tc, pep3148_as_completed_bad_arguments);
    tcase_add_test(tc, pep3148_as_completed_threads_20_seeds);
    tcase_add_test(tc, pep3148_map_results_in_input_order_for_every_chunk_size);
    tcase_add_test(tc, pep3148_map_destroys_each_result_once_with_the_result);
    tcase_add_test(tc, pep3148_map_first_failure_rejects);
    tcase_add_test(tc, pep3148_map_failure_cancels_chunks_not_started);
    tcase_add_test(tc, pep3148_map_of_nothing_fulfils);
    tcase_add_test(tc, pep3148_map_bad_arguments_reject_einval);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("wait_stress");
    tcase_set_tags(st, "stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(st, pep3148_as_completed_threads_1000_seeds);
    suite_add_tcase(s, st);
    return s;
}

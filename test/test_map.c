/*
 * test_map.c - PEP 3148 map() with chunksize: fut_map keeps input order for
 * every chunk size, rejects on the first failure and cancels the chunks
 * not yet started, and destroys each result once with the result.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_map_suite(void);

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
        /* Every call ran on the pool, none on this thread. */
        ck_assert_int_eq(atomic_load(&m.other_thread), MAP_N);
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

Suite *fut_test_map_suite(void)
{
    Suite *s = suite_create("map");
    TCase *tc = tcase_create("map");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, pep3148_map_results_in_input_order_for_every_chunk_size);
    tcase_add_test(tc, pep3148_map_destroys_each_result_once_with_the_result);
    tcase_add_test(tc, pep3148_map_first_failure_rejects);
    tcase_add_test(tc, pep3148_map_failure_cancels_chunks_not_started);
    tcase_add_test(tc, pep3148_map_of_nothing_fulfils);
    tcase_add_test(tc, pep3148_map_bad_arguments_reject_einval);
    suite_add_tcase(s, tc);
    return s;
}

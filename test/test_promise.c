/*
 * test_promise.c - promises: resolve, reject, settled twice, settled from
 * other threads, broken promises (EPIPE), writer references, and values
 * destroyed exactly once however the promise ends.
 */
#include "test_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fut_promise_t *new_promise(void)
{
    fut_promise_t *p = fut_promise_new();
    ck_assert_ptr_nonnull(p);
    return p;
}

/* -------------------------------------- rule 1: ownership is explicit */

START_TEST(rule1_promise_future_returns_new_reference)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p = new_promise();
    fut_t *f1 = fut_promise_future(p);
    fut_t *f2 = fut_promise_future(p);
    ck_assert_ptr_nonnull(f1);
    ck_assert_ptr_nonnull(f2);
    ck_assert_int_eq(fut_state(f1), FUT_PENDING);
    ck_assert(!fut_done(f1));
    ck_assert_ptr_null(fut_error(f1));
    fut_release(f1);
    ck_assert_int_eq(
        fut_resolve(p, fut_test_obj_new(&tr, 3), fut_test_obj_free), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f2, 0, &v), 0);
    ck_assert_int_eq(((fut_test_obj_t *)v)->value, 3);
    fut_promise_release(p);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(f2);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* ------------------------------------------------- rule 2: never NULL */

START_TEST(rule2_never_null_promise_null_arguments)
{
    fut_t *f = fut_promise_future(NULL);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EINVAL);
    fut_release(f);
    int local = 0;
    ck_assert_int_eq(fut_resolve(NULL, &local, NULL), EINVAL);
    ck_assert_int_eq(fut_reject(NULL, EIO, "x"), EINVAL);
    ck_assert_int_eq(fut_notify(NULL, &local), EINVAL);
    fut_promise_release(NULL);
}
END_TEST

START_TEST(rule2_reject_nonpositive_code_is_einval)
{
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_reject(p, 0, "zero"), EINVAL);
    ck_assert_int_eq(fut_reject(p, -1, "negative"), EINVAL);
    /* A refused call settles nothing. */
    ck_assert_int_eq(fut_state(f), FUT_PENDING);
    ck_assert_int_eq(fut_reject(p, EPERM, "now %s", "valid"), 0);
    ck_assert_int_eq(fut_get(f, 0, NULL), EPERM);
    ck_assert_str_eq(fut_error(f)->message, "now valid");
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

/* ------------------------------------------------- resolve / reject */

START_TEST(promise_resolve_fulfils)
{
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    int x = 5;
    ck_assert_int_eq(fut_resolve(p, &x, NULL), 0);
    ck_assert_int_eq(fut_state(f), FUT_FULFILLED);
    ck_assert(fut_done(f));
    ck_assert_ptr_null(fut_error(f));
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_ptr_eq(v, &x);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(promise_reject_rejects_with_formatted_message)
{
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_reject(p, ENOENT, "no %s at %d", "file", 12), 0);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), ENOENT);
    ck_assert_int_eq(fut_error(f)->code, ENOENT);
    ck_assert_str_eq(fut_error(f)->message, "no file at 12");
    fut_promise_release(p);
    /* The error lives as long as the future. */
    ck_assert_str_eq(fut_error(f)->message, "no file at 12");
    fut_release(f);
}
END_TEST

/* ------------------------------------------------- settled twice */

START_TEST(rule4_resolve_twice_ealready_destroys_second_value)
{
    fut_test_tracker_t first, second;
    fut_test_tracker_init(&first);
    fut_test_tracker_init(&second);
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(
        fut_resolve(p, fut_test_obj_new(&first, 1), fut_test_obj_free), 0);
    ck_assert_int_eq(
        fut_resolve(p, fut_test_obj_new(&second, 2), fut_test_obj_free),
        EALREADY);
    /* The refused value is destroyed at once, on this thread. */
    ck_assert_int_eq(atomic_load(&second.freed), 1);
    ck_assert_int_eq(atomic_load(&second.last_thread), fut_test_thread_id());
    ck_assert_int_eq(atomic_load(&first.freed), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v), 0);
    ck_assert_int_eq(((fut_test_obj_t *)v)->value, 1);
    ck_assert_int_eq(fut_reject(p, EIO, "late"), EALREADY);
    ck_assert_int_eq(fut_state(f), FUT_FULFILLED);
    fut_promise_release(p);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&first.freed), 1);
    ck_assert_int_eq(atomic_load(&second.freed), 1);
}
END_TEST

START_TEST(rule4_reject_twice_ealready_keeps_first_error)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_reject(p, EIO, "first"), 0);
    ck_assert_int_eq(fut_reject(p, ENOENT, "second"), EALREADY);
    ck_assert_int_eq(
        fut_resolve(p, fut_test_obj_new(&tr, 1), fut_test_obj_free), EALREADY);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
    ck_assert_int_eq(fut_get(f, 0, NULL), EIO);
    ck_assert_str_eq(fut_error(f)->message, "first");
    fut_promise_release(p);
    /* Releasing a settled promise changes nothing. */
    ck_assert_int_eq(fut_error(f)->code, EIO);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

START_TEST(rule4_notify_after_settle_is_ealready)
{
    fut_promise_t *p = new_promise();
    int x = 0;
    ck_assert_int_eq(fut_notify(p, &x), 0); /* no listener: fine */
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    ck_assert_int_eq(fut_notify(p, &x), EALREADY);
    fut_promise_release(p);
}
END_TEST

/* ---------------------------------------------------- broken promise */

START_TEST(epipe_broken_promise_rejects_on_last_release)
{
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e;
    fut_test_entry_init(&e, &log, 0);
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(
        fut_on_done_ex(f, fut_test_done_cb, &e, fut_test_entry_free), 0);
    fut_promise_release(p);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert_int_eq(fut_get(f, 0, NULL), EPIPE);
    ck_assert_int_eq(fut_error(f)->code, EPIPE);
    ck_assert_int_eq(atomic_load(&e.ran), 1);
    ck_assert_int_eq(atomic_load(&e.freed), 1);
    ck_assert_int_eq(atomic_load(&log.thread), fut_test_thread_id());
    ck_assert_int_eq(atomic_load(&log.bad), 0);
    fut_release(f);
}
END_TEST

START_TEST(epipe_only_when_last_writer_reference_goes)
{
    fut_promise_t *p = new_promise();
    ck_assert_ptr_eq(fut_promise_retain(p), p);
    fut_t *f = fut_promise_future(p);
    fut_promise_release(p);
    ck_assert_int_eq(fut_state(f), FUT_PENDING);
    ck_assert_int_eq(fut_wait(f, 0), ETIMEDOUT);
    fut_promise_release(p);
    ck_assert_int_eq(fut_get(f, 0, NULL), EPIPE);
    fut_release(f);
}
END_TEST

/* An allocator that counts the objects (and bytes) fut allocates and
 * frees through it, and hands the memory to malloc underneath.  fut frees
 * an object with the size that was asked for, so the bytes must balance
 * as well as the counts. */
typedef struct alloc_count {
    atomic_long allocs, frees, bytes_allocated, bytes_freed;
} alloc_count_t;

static void *count_alloc(size_t size, void *ctx)
{
    alloc_count_t *c = ctx;
    void *p = malloc(size ? size : 1);
    if (p != NULL) {
        atomic_fetch_add(&c->allocs, 1);
        atomic_fetch_add(&c->bytes_allocated, (long)size);
    }
    return p;
}

static void count_free(void *p, size_t size, void *ctx)
{
    alloc_count_t *c = ctx;
    if (p == NULL)
        return;
    atomic_fetch_add(&c->frees, 1);
    atomic_fetch_add(&c->bytes_freed, (long)size);
    free(p);
}

START_TEST(epipe_after_future_released_leaks_nothing)
{
    /* fut.h: install an allocator only while no object of fut's is alive,
     * since objects are freed through the allocator installed when they
     * die.  This test made none before this point and makes none after it
     * restores malloc, and fut_set_allocator(NULL) gives back what fut
     * cached, so every object the counter saw allocated must come back
     * to it by then. */
    alloc_count_t c = {0};
    const fut_allocator_t counting = {
        .alloc = count_alloc, .free = count_free, .ctx = &c};
    ck_assert_int_eq(fut_set_allocator(&counting), 0);

    /* Nobody reads this future: release both sides unsettled. */
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    long made = atomic_load(&c.allocs);
    fut_release(f);
    fut_promise_release(p);
    /* And the reverse order: the promise breaks (EPIPE) while the future
     * is still held, and then the future goes unread. */
    p = new_promise();
    f = fut_promise_future(p);
    fut_promise_release(p);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    fut_release(f);

    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    /* The counter saw the first pair's objects, so the balance below is
     * not a vacuous 0 == 0.  The second pair may reuse the first pair's
     * cached memory instead of allocating again; whatever it took, it
     * must have given back. */
    long allocs = atomic_load(&c.allocs), frees = atomic_load(&c.frees);
    long bytes_allocated = atomic_load(&c.bytes_allocated);
    long bytes_freed = atomic_load(&c.bytes_freed);
    ck_assert_int_gt(made, 0);
    ck_assert_msg(frees == allocs, "%ld objects allocated, %ld freed", allocs,
                  frees);
    ck_assert_msg(bytes_freed == bytes_allocated,
                  "%ld bytes allocated, %ld freed", bytes_allocated,
                  bytes_freed);
}
END_TEST

/* ------------------------------ rule 3: values destroyed exactly once */

START_TEST(rule3_value_destroyed_once_when_future_released_first)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    fut_release(f); /* only the promise holds the future now */
    ck_assert_int_eq(
        fut_resolve(p, fut_test_obj_new(&tr, 1), fut_test_obj_free), 0);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_promise_release(p);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

START_TEST(rule3_resolved_with_destructor_destroyed_once)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_t *f = fut_resolved(fut_test_obj_new(&tr, 9), fut_test_obj_free);
    ck_assert_int_eq(fut_state(f), FUT_FULFILLED);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* ------------------------------------------------- other threads */

typedef struct settler {
    fut_promise_t *p;
    fut_test_tracker_t *tr;
    fut_test_barrier_t *start;
    int how; /* 0 resolve, 1 reject, 2 release (break) */
    int rc;
    int thread;
} settler_t;

static void *settle_thread(void *arg)
{
    settler_t *s = arg;
    s->thread = fut_test_thread_id();
    if (s->start)
        fut_test_barrier_wait(s->start);
    else
        fut_test_sleep_ms(
            10); /* let the main thread block first (not required) */
    switch (s->how) {
    case 0:
        s->rc = fut_resolve(s->p, fut_test_obj_new(s->tr, s->thread),
                            fut_test_obj_free);
        break;
    case 1:
        s->rc = fut_reject(s->p, EIO, "thread %d", s->thread);
        break;
    default:
        fut_promise_release(s->p);
        s->rc = 0;
        break;
    }
    return NULL;
}

START_TEST(rule8_resolve_from_other_thread_wakes_waiter)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e;
    fut_test_entry_init(&e, &log, 0);
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_on_done(f, fut_test_done_cb, &e), 0);
    settler_t s = {.p = p, .tr = &tr, .how = 0};
    pthread_t t = fut_test_spawn(settle_thread, &s);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    fut_test_join(t);
    ck_assert_int_eq(s.rc, 0);
    ck_assert_int_eq(((fut_test_obj_t *)v)->value, s.thread);
    /* The callback ran on the resolving thread, before fut_resolve returned. */
    ck_assert_int_eq(atomic_load(&e.ran), 1);
    ck_assert_int_eq(atomic_load(&log.thread), s.thread);
    fut_promise_release(p);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

START_TEST(rule8_reject_from_other_thread_wakes_waiter)
{
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    settler_t s = {.p = p, .how = 1};
    pthread_t t = fut_test_spawn(settle_thread, &s);
    ck_assert_int_eq(fut_wait(f, FUT_FOREVER), 0);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EIO);
    fut_test_join(t);
    char want[32];
    snprintf(want, sizeof want, "thread %d", s.thread);
    ck_assert_str_eq(fut_error(f)->message, want);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(rule8_broken_promise_from_other_thread_wakes_waiter)
{
    fut_promise_t *p = new_promise();
    fut_t *f = fut_promise_future(p);
    settler_t s = {.p = p, .how = 2};
    pthread_t t = fut_test_spawn(settle_thread, &s);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EPIPE);
    fut_test_join(t);
    fut_release(f);
}
END_TEST

/* Many threads settle one promise at once: exactly one wins, every
 * refused value is destroyed at once, the winner's when the future goes. */
START_TEST(rule4_settle_race_exactly_one_wins)
{
    enum { T = 8, ROUNDS = 20 };
    for (int round = 0; round < ROUNDS; round++) {
        fut_test_tracker_t tr;
        fut_test_tracker_init(&tr);
        fut_test_barrier_t start;
        fut_test_barrier_init(&start, T);
        fut_promise_t *p = new_promise();
        fut_t *f = fut_promise_future(p);
        settler_t s[T];
        pthread_t t[T];
        int resolvers = 0;
        for (int i = 0; i < T; i++) {
            s[i] = (settler_t){
                .p = p, .tr = &tr, .start = &start, .how = (i + round) % 2};
            resolvers += s[i].how == 0;
            t[i] = fut_test_spawn(settle_thread, &s[i]);
        }
        for (int i = 0; i < T; i++)
            fut_test_join(t[i]);
        int won = 0, winner = -1;
        for (int i = 0; i < T; i++) {
            if (s[i].rc == 0) {
                won++;
                winner = i;
            } else {
                ck_assert_int_eq(s[i].rc, EALREADY);
            }
        }
        ck_assert_int_eq(won, 1);
        ck_assert(fut_done(f));
        if (s[winner].how == 0) {
            void *v = NULL;
            ck_assert_int_eq(fut_get(f, 0, &v), 0);
            ck_assert_int_eq(((fut_test_obj_t *)v)->value, s[winner].thread);
            ck_assert_int_eq(atomic_load(&tr.freed), resolvers - 1);
        } else {
            ck_assert_int_eq(fut_get(f, 0, NULL), EIO);
            ck_assert_int_eq(atomic_load(&tr.freed), resolvers);
        }
        fut_promise_release(p);
        fut_release(f);
        ck_assert_int_eq(atomic_load(&tr.freed), resolvers);
        ck_assert_int_eq(atomic_load(&tr.made), resolvers);
        fut_test_barrier_destroy(&start);
    }
}
END_TEST

/* A callback may settle another promise: a short chain of promises, each
 * callback resolving the next, all done when the first resolve returns. */
enum { CHAIN = 100 };

typedef struct link {
    fut_promise_t *next; /* NULL for the last */
    atomic_int *count;
} link_t;

static void cb_resolve_next(fut_t *f, void *arg)
{
    link_t *l = arg;
    void *v = NULL;
    if (fut_get(f, 0, &v) == 0)
        atomic_fetch_add(l->count, 1);
    if (l->next)
        fut_resolve(l->next, FUT_TEST_PTR(FUT_TEST_INT(v) + 1), NULL);
}

START_TEST(rule8_callback_may_settle_another_promise)
{
    atomic_int count = 0;
    fut_promise_t *ps[CHAIN];
    fut_t *fs[CHAIN];
    link_t links[CHAIN];
    for (int i = 0; i < CHAIN; i++) {
        ps[i] = new_promise();
        fs[i] = fut_promise_future(ps[i]);
    }
    for (int i = 0; i < CHAIN; i++) {
        links[i] =
            (link_t){.next = i + 1 < CHAIN ? ps[i + 1] : NULL, .count = &count};
        ck_assert_int_eq(fut_on_done(fs[i], cb_resolve_next, &links[i]), 0);
    }
    ck_assert_int_eq(fut_resolve(ps[0], FUT_TEST_PTR(0), NULL), 0);
    ck_assert_int_eq(atomic_load(&count), CHAIN);
    void *v = NULL;
    ck_assert_int_eq(fut_get(fs[CHAIN - 1], 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), CHAIN - 1);
    for (int i = 0; i < CHAIN; i++) {
        fut_promise_release(ps[i]);
        fut_release(fs[i]);
    }
}
END_TEST

Suite *fut_test_promise_suite(void)
{
    Suite *s = suite_create("promise");
    TCase *tc = tcase_create("promise");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, rule1_promise_future_returns_new_reference);
    tcase_add_test(tc, rule2_never_null_promise_null_arguments);
    tcase_add_test(tc, rule2_reject_nonpositive_code_is_einval);
    tcase_add_test(tc, promise_resolve_fulfils);
    tcase_add_test(tc, promise_reject_rejects_with_formatted_message);
    tcase_add_test(tc, rule4_resolve_twice_ealready_destroys_second_value);
    tcase_add_test(tc, rule4_reject_twice_ealready_keeps_first_error);
    tcase_add_test(tc, rule4_notify_after_settle_is_ealready);
    tcase_add_test(tc, epipe_broken_promise_rejects_on_last_release);
    tcase_add_test(tc, epipe_only_when_last_writer_reference_goes);
    tcase_add_test(tc, epipe_after_future_released_leaks_nothing);
    tcase_add_test(tc, rule3_value_destroyed_once_when_future_released_first);
    tcase_add_test(tc, rule3_resolved_with_destructor_destroyed_once);
    tcase_add_test(tc, rule8_resolve_from_other_thread_wakes_waiter);
    tcase_add_test(tc, rule8_reject_from_other_thread_wakes_waiter);
    tcase_add_test(tc, rule8_broken_promise_from_other_thread_wakes_waiter);
    tcase_add_test(tc, rule4_settle_race_exactly_one_wins);
    tcase_add_test(tc, rule8_callback_may_settle_another_promise);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * test_loop.c - the loop executor: nothing it is given runs until the
 * caller drains it (fut_loop_run_pending / fut_loop_run_until), and then
 * on the draining thread; its eventfd is readable while work is queued
 * (also when another thread queues it); run_pending runs only what was
 * queued when it started; run_until's timeout (checked from below);
 * the _on forms hand results back to the loop thread; cancel and shutdown.
 */
#include "test_util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_loop_suite(void);

static fut_executor_t *new_loop(void)
{
    fut_executor_t *loop = NULL;
    ck_assert_int_eq(fut_loop_new(&loop), 0);
    ck_assert_ptr_nonnull(loop);
    return loop;
}

/* 1 if fd is readable within timeout_ms (0: now), 0 if not. */
static int readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
    int rc;
    do
        rc = poll(&pfd, 1, timeout_ms);
    while (rc < 0 && errno == EINTR);
    ck_assert_int_ge(rc, 0);
    return rc > 0 && (pfd.revents & POLLIN) ? 1 : 0;
}

/* What the tasks and handlers of a test saw. */
typedef struct seen {
    atomic_int ran;
    atomic_int thread;
    atomic_int freed;
} seen_t;

static void seen_init(seen_t *s)
{
    atomic_init(&s->ran, 0);
    atomic_init(&s->thread, 0);
    atomic_init(&s->freed, 0);
}

static void *task_note(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    seen_t *s = arg;
    atomic_store(&s->thread, fut_test_thread_id());
    return FUT_TEST_PTR(atomic_fetch_add(&s->ran, 1) + 1);
}

static void seen_free(void *arg)
{
    atomic_fetch_add(&((seen_t *)arg)->freed, 1);
}

static void *h_note(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    seen_t *s = arg;
    atomic_store(&s->thread, fut_test_thread_id());
    atomic_fetch_add(&s->ran, 1);
    return value;
}

static void *h_note_error(fut_ctx_t *ctx, const fut_error_t *err, void *arg)
{
    (void)ctx;
    seen_t *s = arg;
    atomic_store(&s->thread, fut_test_thread_id());
    atomic_fetch_add(&s->ran, 1);
    return FUT_TEST_PTR(err->code);
}

static void h_note_finally(fut_t *settled, void *arg)
{
    (void)settled;
    seen_t *s = arg;
    atomic_store(&s->thread, fut_test_thread_id());
    atomic_fetch_add(&s->ran, 1);
}

static void *task_thread_id(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return FUT_TEST_PTR(fut_test_thread_id());
}

/* ------------------------------------------------------------------ */

START_TEST(loop_nothing_runs_until_drained)
{
    fut_executor_t *loop = new_loop();
    seen_t s, h;
    seen_init(&s);
    seen_init(&h);
    fut_t *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = fut_submit(loop, task_note, &s);
    fut_t *g =
        fut_then_on(loop, fut_resolved(FUT_TEST_PTR(8), NULL), h_note, &h);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fut_state(t[i]), FUT_PENDING);
        /* Nobody else runs the loop's queue, so the task stays queued. */
        ck_assert_int_eq(fut_wait(t[i], FUT_MS(5)), ETIMEDOUT);
    }
    ck_assert_int_eq(fut_state(g), FUT_PENDING);
    ck_assert_int_eq(atomic_load(&s.ran), 0);
    ck_assert_int_eq(atomic_load(&h.ran), 0);
    ck_assert_uint_ge(fut_loop_run_pending(loop), 3);
    ck_assert_int_eq(atomic_load(&s.ran), 3);
    ck_assert_int_eq(atomic_load(&h.ran), 1);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fut_state(t[i]), FUT_FULFILLED);
        fut_release(t[i]);
    }
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 8);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 0);
    fut_release(g);
    fut_executor_free(loop);
}
END_TEST

START_TEST(loop_run_pending_counts_the_tasks_it_ran)
{
    fut_executor_t *loop = new_loop();
    seen_t s;
    seen_init(&s);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 0);
    fut_t *t[5];
    for (int i = 0; i < 5; i++)
        t[i] = fut_submit(loop, task_note, &s);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 5);
    ck_assert_int_eq(atomic_load(&s.ran), 5);
    for (int i = 0; i < 5; i++)
        fut_release(t[i]);
    fut_executor_free(loop);
}
END_TEST

typedef struct drainer {
    fut_executor_t *loop;
    fut_t *until;
    atomic_int thread;
    int rc;
} drainer_t;

static void *drain_until(void *arg)
{
    drainer_t *d = arg;
    atomic_store(&d->thread, fut_test_thread_id());
    d->rc = fut_loop_run_until(d->loop, d->until, FUT_FOREVER);
    return NULL;
}

/* Tasks run on whichever thread drains the loop, not on the submitter. */
START_TEST(loop_runs_on_draining_thread)
{
    fut_executor_t *loop = new_loop();
    fut_executor_t *pool = fut_test_pool(1);
    seen_t s, h;
    seen_init(&s);
    seen_init(&h);
    fut_t *t = fut_submit(loop, task_note, &s);
    fut_t *g = fut_then_on(
        loop, fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(2)), h_note,
        &h);
    drainer_t d = {.loop = loop, .until = g, .thread = 0, .rc = -1};
    pthread_t th = fut_test_spawn(drain_until, &d);
    fut_test_join(th);
    ck_assert_int_eq(d.rc, 0);
    ck_assert_int_eq(fut_state(g), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&h.ran), 1);
    ck_assert_int_eq(atomic_load(&h.thread), atomic_load(&d.thread));
    ck_assert_int_ne(atomic_load(&h.thread), fut_test_thread_id());
    /* The task queued first ran on the drainer as well. */
    ck_assert_int_eq(fut_state(t), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&s.thread), atomic_load(&d.thread));
    fut_release(t);
    fut_release(g);
    fut_executor_free(pool);
    fut_executor_free(loop);
}
END_TEST

START_TEST(loop_fd_readable_while_work_queued)
{
    fut_executor_t *loop = new_loop();
    seen_t s;
    seen_init(&s);
    int fd = fut_loop_fd(loop);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fut_loop_fd(loop), fd); /* one fd per loop */
    ck_assert_int_eq(readable(fd, 0), 0);
    fut_t *t1 = fut_submit(loop, task_note, &s);
    ck_assert_int_eq(readable(fd, 0), 1);
    ck_assert_int_eq(readable(fd, 0), 1); /* polling does not consume it */
    ck_assert_uint_eq(fut_loop_run_pending(loop), 1);
    ck_assert_int_eq(readable(fd, 0), 0);
    fut_t *t2 = fut_submit(loop, task_note, &s);
    fut_t *t3 = fut_submit(loop, task_note, &s);
    ck_assert_int_eq(readable(fd, 0), 1);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 2);
    ck_assert_int_eq(readable(fd, 0), 0);
    ck_assert_int_eq(atomic_load(&s.ran), 3);
    fut_release(t1);
    fut_release(t2);
    fut_release(t3);
    fut_executor_free(loop);
}
END_TEST

/* A pool worker hands a continuation to the loop: the fd wakes a poll()
 * that is already waiting. */
START_TEST(loop_fd_wakes_poll_when_another_thread_queues)
{
    fut_executor_t *loop = new_loop();
    fut_executor_t *pool = fut_test_pool(1);
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 3);
    seen_t h;
    seen_init(&h);
    int fd = fut_loop_fd(loop);
    fut_t *g = fut_then_on(loop, fut_submit(pool, fut_test_task_block, &b),
                           h_note, &h);
    ck_assert_int_eq(readable(fd, 0), 0);
    fut_test_latch_open(&b.latch);
    ck_assert_int_eq(readable(fd, 60000), 1);
    ck_assert_int_eq(atomic_load(&h.ran), 0);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 1);
    ck_assert_int_eq(atomic_load(&h.ran), 1);
    ck_assert_int_eq(atomic_load(&h.thread), fut_test_thread_id());
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 3);
    fut_release(g);
    fut_executor_free(pool);
    fut_executor_free(loop);
    fut_test_blocker_destroy(&b);
}
END_TEST

typedef struct requeue {
    fut_executor_t *loop;
    seen_t inner;
    fut_t *queued; /* the task the outer task queued */
} requeue_t;

static void *task_requeue(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    requeue_t *r = arg;
    r->queued = fut_submit(r->loop, task_note, &r->inner);
    return NULL;
}

/* run_pending runs what was queued when it started, not what that queues. */
START_TEST(loop_run_pending_runs_only_work_queued_now)
{
    fut_executor_t *loop = new_loop();
    requeue_t r = {.loop = loop, .queued = NULL};
    seen_init(&r.inner);
    fut_t *outer = fut_submit(loop, task_requeue, &r);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 1);
    ck_assert_int_eq(fut_state(outer), FUT_FULFILLED);
    ck_assert_ptr_nonnull(r.queued);
    ck_assert_int_eq(atomic_load(&r.inner.ran), 0);
    ck_assert_int_eq(fut_state(r.queued), FUT_PENDING);
    ck_assert_int_eq(readable(fut_loop_fd(loop), 0), 1);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 1);
    ck_assert_int_eq(atomic_load(&r.inner.ran), 1);
    ck_assert_int_eq(fut_state(r.queued), FUT_FULFILLED);
    fut_release(outer);
    fut_release(r.queued);
    fut_executor_free(loop);
}
END_TEST

START_TEST(loop_run_until_runs_work_until_future_settles)
{
    fut_executor_t *loop = new_loop();
    fut_executor_t *pool = fut_test_pool(2);
    seen_t h1, h2;
    seen_init(&h1);
    seen_init(&h2);
    /* pool -> loop -> pool -> loop */
    fut_t *g = fut_then_on(
        loop, fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(4)), h_note,
        &h1);
    g = fut_then_on(pool, g, h_note, &h2);
    g = fut_then_on(loop, g, h_note, &h1);
    ck_assert_int_eq(fut_loop_run_until(loop, g, FUT_FOREVER), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 4);
    ck_assert_int_eq(atomic_load(&h1.ran), 2);
    ck_assert_int_eq(atomic_load(&h1.thread), fut_test_thread_id());
    ck_assert_int_eq(atomic_load(&h2.ran), 1);
    ck_assert_int_ne(atomic_load(&h2.thread), fut_test_thread_id());
    /* Already settled: returns at once. */
    ck_assert_int_eq(fut_loop_run_until(loop, g, 0), 0);
    fut_release(g);
    fut_executor_free(pool);
    fut_executor_free(loop);
}
END_TEST

START_TEST(loop_run_until_times_out_not_early)
{
    fut_executor_t *loop = new_loop();
    seen_t s;
    seen_init(&s);
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_t *t = fut_submit(loop, task_note, &s);
    int64_t t0 = fut_test_now_ns();
    ck_assert_int_eq(fut_loop_run_until(loop, f, FUT_MS(25)), ETIMEDOUT);
    ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(25));
    ck_assert_int_eq(atomic_load(&s.ran), 1); /* queued work ran meanwhile */
    ck_assert_int_eq(fut_loop_run_until(loop, f, 0), ETIMEDOUT);
    ck_assert_int_eq(fut_state(f), FUT_PENDING);
    fut_release(t);
    fut_release(f);
    fut_promise_release(p);
    fut_executor_free(loop);
}
END_TEST

/* then_on / catch_on / finally_on with the loop: inputs settled on a pool
 * worker, handlers run on the thread that drains the loop, and not before. */
START_TEST(loop_on_forms_run_on_loop_thread)
{
    fut_executor_t *loop = new_loop();
    fut_executor_t *pool = fut_test_pool(1);
    seen_t h[4];
    for (int i = 0; i < 4; i++)
        seen_init(&h[i]);
    fut_t *w = fut_submit(pool, task_thread_id, NULL);
    fut_t *g[4];
    g[0] = fut_then_on(loop, fut_retain(w), h_note, &h[0]);
    g[1] = fut_catch_on(loop, fut_rejected(EIO, NULL), h_note_error, &h[1]);
    g[2] = fut_finally_on(loop, fut_retain(w), h_note_finally, &h[2]);
    g[3] = fut_then_ex(loop, fut_retain(w), h_note, h_note_error, &h[3],
                       seen_free);
    void *v = NULL;
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, &v), 0);
    int worker = FUT_TEST_INT(v);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(atomic_load(&h[i].ran), 0);
        ck_assert_int_eq(fut_state(g[i]), FUT_PENDING);
    }
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(fut_loop_run_until(loop, g[i], FUT_FOREVER), 0);
    int me = fut_test_thread_id();
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(atomic_load(&h[i].ran), 1);
        ck_assert_int_eq(atomic_load(&h[i].thread), me);
        ck_assert_int_ne(atomic_load(&h[i].thread), worker);
    }
    ck_assert_int_eq(fut_get(g[0], 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), worker);
    ck_assert_int_eq(fut_get(g[1], 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), EIO);
    ck_assert_int_eq(fut_get(g[2], 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), worker);
    for (int i = 0; i < 4; i++)
        fut_release(g[i]);
    fut_release(w);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&h[3].freed), 1);
    fut_executor_free(loop);
}
END_TEST

START_TEST(loop_cancel_queued_task)
{
    fut_executor_t *loop = new_loop();
    seen_t s;
    seen_init(&s);
    fut_t *t = fut_submit_ex(loop, task_note, &s, seen_free, 0);
    ck_assert(fut_cancel(t));
    ck_assert_int_eq(fut_state(t), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&s.freed), 1);
    fut_loop_run_pending(loop);
    ck_assert_int_eq(atomic_load(&s.ran), 0);
    ck_assert_int_eq(atomic_load(&s.freed), 1);
    fut_release(t);
    fut_executor_free(loop);
}
END_TEST

START_TEST(loop_shutdown_refuses_new_work_and_runs_queued_work)
{
    fut_executor_t *loop = new_loop();
    seen_t queued, late, h;
    seen_init(&queued);
    seen_init(&late);
    seen_init(&h);
    fut_t *t = fut_submit(loop, task_note, &queued);
    ck_assert_int_eq(fut_executor_shutdown(loop, 0), 0);
    fut_t *r = fut_submit_ex(loop, task_note, &late, seen_free, 0);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ESHUTDOWN);
    ck_assert_int_eq(atomic_load(&late.freed), 1);
    fut_t *g = fut_then_on(loop, fut_resolved(NULL, NULL), h_note, &h);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), ESHUTDOWN);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 1);
    ck_assert_int_eq(fut_state(t), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&late.ran), 0);
    ck_assert_int_eq(atomic_load(&h.ran), 0);
    fut_t *queue[] = {t, r, g};
    for (int i = 0; i < 3; i++)
        fut_release(queue[i]);
    fut_executor_free(loop);
}
END_TEST

START_TEST(loop_shutdown_cancel_pending_cancels_queued_work)
{
    fut_executor_t *loop = new_loop();
    seen_t s;
    seen_init(&s);
    fut_t *t[2];
    for (int i = 0; i < 2; i++)
        t[i] = fut_submit_ex(loop, task_note, &s, seen_free, 0);
    ck_assert_int_eq(fut_executor_shutdown(loop, FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(fut_state(t[i]), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&s.freed), 2);
    ck_assert_uint_eq(fut_loop_run_pending(loop), 0);
    ck_assert_int_eq(atomic_load(&s.ran), 0);
    for (int i = 0; i < 2; i++)
        fut_release(t[i]);
    fut_executor_free(loop);
}
END_TEST

/* fut_executor_stats on a loop: queued counts what waits for a drain,
 * completed what ran, cancelled what a drain skipped (cancelled while
 * queued) and what a cancelling shutdown settled; a loop has no threads. */
START_TEST(loop_stats_count_queued_ran_and_cancelled)
{
    fut_executor_t *loop = new_loop();
    seen_t s;
    seen_init(&s);
    fut_stats_t st;
    ck_assert_int_eq(fut_executor_stats(loop, &st), 0);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.submitted, 0);
    ck_assert(!st.shutdown);

    fut_t *t[5];
    for (int i = 0; i < 3; i++)
        t[i] = fut_submit(loop, task_note, &s);
    ck_assert_int_eq(fut_executor_stats(loop, &st), 0);
    ck_assert_uint_eq(st.queued, 3);
    ck_assert_uint_eq(st.submitted, 3);
    ck_assert_uint_eq(st.completed, 0);
    ck_assert(fut_cancel(t[1]));
    ck_assert_uint_eq(fut_loop_run_pending(loop), 2);
    ck_assert_int_eq(fut_executor_stats(loop, &st), 0);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.submitted, 3);
    ck_assert_uint_eq(st.completed, 2);
    ck_assert_uint_eq(st.cancelled, 1);

    for (int i = 3; i < 5; i++)
        t[i] = fut_submit(loop, task_note, &s);
    ck_assert_int_eq(fut_executor_shutdown(loop, FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    ck_assert_int_eq(fut_executor_stats(loop, &st), 0);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.submitted, 5);
    ck_assert_uint_eq(st.completed, 2);
    ck_assert_uint_eq(st.cancelled, 3);
    ck_assert(st.shutdown);
    ck_assert_uint_eq(st.threads, 0);
    ck_assert_uint_eq(st.idle, 0);
    ck_assert_int_eq(st.broken, 0);
    ck_assert_int_eq(atomic_load(&s.ran), 2);
    for (int i = 0; i < 5; i++)
        fut_release(t[i]);
    fut_executor_free(loop);
}
END_TEST

START_TEST(loop_bad_arguments)
{
    ck_assert_int_eq(fut_loop_new(NULL), EINVAL);
    ck_assert_int_eq(fut_loop_fd(NULL), -1);
    ck_assert_int_eq(fut_loop_fd(fut_inline_executor()), -1);
    fut_executor_t *pool = fut_test_pool(1);
    ck_assert_int_eq(fut_loop_fd(pool), -1);
    fut_executor_t *loop = new_loop();
    fut_t *f = fut_resolved(NULL, NULL);
    ck_assert_int_eq(fut_loop_run_until(NULL, f, 0), EINVAL);
    ck_assert_int_eq(fut_loop_run_until(loop, NULL, 0), EINVAL);
    ck_assert_int_eq(fut_loop_run_until(pool, f, 0), EINVAL);
    ck_assert_uint_eq(fut_loop_run_pending(NULL), 0);
    fut_release(f);
    fut_executor_free(loop);
    fut_executor_free(pool);
}
END_TEST

/* ------------------------------------------------------------- suite */

Suite *fut_test_loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, loop_nothing_runs_until_drained);
    tcase_add_test(tc, loop_run_pending_counts_the_tasks_it_ran);
    tcase_add_test(tc, loop_runs_on_draining_thread);
    tcase_add_test(tc, loop_fd_readable_while_work_queued);
    tcase_add_test(tc, loop_fd_wakes_poll_when_another_thread_queues);
    tcase_add_test(tc, loop_run_pending_runs_only_work_queued_now);
    tcase_add_test(tc, loop_run_until_runs_work_until_future_settles);
    tcase_add_test(tc, loop_run_until_times_out_not_early);
    tcase_add_test(tc, loop_on_forms_run_on_loop_thread);
    tcase_add_test(tc, loop_cancel_queued_task);
    tcase_add_test(tc, loop_shutdown_refuses_new_work_and_runs_queued_work);
    tcase_add_test(tc, loop_shutdown_cancel_pending_cancels_queued_work);
    tcase_add_test(tc, loop_bad_arguments);
    tcase_add_test(tc, loop_stats_count_queued_ran_and_cancelled);
    suite_add_tcase(s, tc);
    return s;
}

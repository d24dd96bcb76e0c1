/*
 * test_timer.c - fut_delay and fut_within: a delay never fulfils before
 * its time (CLOCK_MONOTONIC), its callbacks run on the timer thread,
 * cancelling it removes the timer; within passes a fast input's outcome
 * through (value kept alive) and, on a slow input, rejects ETIMEDOUT no
 * earlier than its deadline and asks the input to cancel.
 *
 * Only lower bounds on time are asserted; upper bounds would be flaky on a
 * shared machine.  A timestamp is taken in a done-callback, which runs when
 * the future settles (or at once if it had already settled: later, which
 * only strengthens a lower bound).
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_timer_suite(void);

/* When and where a future's done-callback ran. */
typedef struct stamp {
    atomic_llong at;
    atomic_int thread;
    atomic_int calls;
    atomic_int state;
} stamp_t;

static void stamp_init(stamp_t *s)
{
    atomic_init(&s->at, 0);
    atomic_init(&s->thread, 0);
    atomic_init(&s->calls, 0);
    atomic_init(&s->state, -1);
}

static void stamp_cb(fut_t *f, void *arg)
{
    stamp_t *s = arg;
    atomic_store(&s->at, (long long)fut_test_now_ns());
    atomic_store(&s->thread, fut_test_thread_id());
    atomic_store(&s->state, (int)fut_state(f));
    atomic_fetch_add(&s->calls, 1);
}

/* ------------------------------------------------------------ delay */

/* Delays of several lengths, some zero, made from this thread: none fires
 * before its time. */
START_TEST(delay_never_fires_early)
{
    enum { N = 24 };
    unsigned seed = fut_test_seed(), st = seed;
    int64_t ns[N], t0[N];
    fut_t *d[N];
    stamp_t s[N];
    for (int i = 0; i < N; i++) {
        stamp_init(&s[i]);
        ns[i] = i < 4 ? (int64_t)i * FUT_US(300)
                      : FUT_US(fut_test_rand(&st) % 40000);
        t0[i] = fut_test_now_ns();
        d[i] = fut_delay(ns[i]);
        ck_assert_ptr_nonnull(d[i]);
        ck_assert_int_eq(fut_on_done(d[i], stamp_cb, &s[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        void *v = &v;
        ck_assert_int_eq(fut_get(d[i], FUT_FOREVER, &v), 0);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(fut_state(d[i]), FUT_FULFILLED);
        int64_t waited = fut_test_now_ns() - t0[i];
        ck_assert_msg(waited >= ns[i],
                      "seed %u: delay %d of %lld ns returned after %lld ns",
                      seed, i, (long long)ns[i], (long long)waited);
    }
    for (int i = 0; i < N; i++) {
        fut_test_wait_atomic(&s[i].calls, 1);
        int64_t fired = (int64_t)atomic_load(&s[i].at) - t0[i];
        ck_assert_msg(fired >= ns[i],
                      "seed %u: delay %d of %lld ns fired after %lld ns", seed,
                      i, (long long)ns[i], (long long)fired);
        ck_assert_int_eq(atomic_load(&s[i].calls), 1);
        fut_release(d[i]);
    }
}
END_TEST

typedef struct delay_maker {
    fut_test_barrier_t *barrier;
    unsigned seed;
    int bad;
    int64_t worst; /* smallest fired - deadline seen */
} delay_maker_t;

/* Delays made from several threads at once, each checked on its thread. */
static void *make_delays(void *arg)
{
    enum { M = 20 };
    delay_maker_t *m = arg;
    unsigned st = m->seed;
    fut_t *d[M];
    stamp_t s[M];
    int64_t ns[M], t0[M];
    fut_test_barrier_wait(m->barrier);
    for (int i = 0; i < M; i++) {
        stamp_init(&s[i]);
        ns[i] = FUT_US(fut_test_rand(&st) % 20000);
        t0[i] = fut_test_now_ns();
        d[i] = fut_delay(ns[i]);
        if (fut_on_done(d[i], stamp_cb, &s[i]) != 0)
            m->bad++;
    }
    m->worst = INT64_MAX;
    for (int i = 0; i < M; i++) {
        if (fut_wait(d[i], FUT_FOREVER) != 0 ||
            fut_state(d[i]) != FUT_FULFILLED)
            m->bad++;
        while (atomic_load(&s[i].calls) == 0)
            fut_test_sleep_ms(1);
        int64_t early = (int64_t)atomic_load(&s[i].at) - t0[i] - ns[i];
        if (early < m->worst)
            m->worst = early;
        fut_release(d[i]);
    }
    return NULL;
}

START_TEST(delay_from_many_threads_never_fires_early)
{
    enum { T = 4 };
    unsigned seed = fut_test_seed();
    fut_test_barrier_t b;
    fut_test_barrier_init(&b, T);
    delay_maker_t m[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        m[i] = (delay_maker_t){
            .barrier = &b, .seed = seed + (unsigned)i * 7919u, .bad = 0};
        t[i] = fut_test_spawn(make_delays, &m[i]);
    }
    for (int i = 0; i < T; i++)
        fut_test_join(t[i]);
    for (int i = 0; i < T; i++) {
        ck_assert_msg(m[i].bad == 0, "seed %u: thread %d saw %d failures", seed,
                      i, m[i].bad);
        ck_assert_msg(m[i].worst >= 0, "seed %u: a delay fired %lld ns early",
                      seed, (long long)-m[i].worst);
    }
    fut_test_barrier_destroy(&b);
}
END_TEST

static void *h_thread(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    atomic_store((atomic_int *)arg, fut_test_thread_id());
    return value;
}

/* Callbacks and inline continuations registered before a delay fires run
 * on the timer thread.  A registration is known to precede the firing when
 * it returned before the delay's time had passed; otherwise retry longer. */
START_TEST(delay_callbacks_run_on_timer_thread)
{
    int me = fut_test_thread_id();
    bool checked = false;
    for (int64_t ns = FUT_MS(50); !checked && ns <= FUT_S(3); ns *= 2) {
        stamp_t s;
        stamp_init(&s);
        atomic_int then_thread = 0;
        int64_t t0 = fut_test_now_ns();
        fut_t *d = fut_delay(ns);
        ck_assert_int_eq(fut_on_done(d, stamp_cb, &s), 0);
        fut_t *g = fut_then(fut_retain(d), h_thread, &then_thread);
        bool before = fut_test_now_ns() - t0 < ns;
        ck_assert_int_eq(fut_wait(g, FUT_FOREVER), 0);
        fut_test_wait_atomic(&s.calls, 1);
        if (before) {
            ck_assert_int_ne(atomic_load(&s.thread), me);
            ck_assert_int_ne(atomic_load(&then_thread), me);
            ck_assert_int_eq(atomic_load(&s.thread), atomic_load(&then_thread));
            checked = true;
        }
        fut_release(g);
        fut_release(d);
    }
    ck_assert_msg(checked, "could not register before a delay fired");
}
END_TEST

/* Cancelling a pending delay settles it FUT_CANCELLED at once and removes
 * the timer: a later delay fires, the cancelled one never does. */
START_TEST(delay_cancel_removes_timer)
{
    stamp_t s1, s2;
    stamp_init(&s1);
    stamp_init(&s2);
    fut_t *d1 = fut_delay(FUT_MS(5));
    fut_t *d2 = fut_delay(FUT_MS(60));
    ck_assert_int_eq(fut_on_done(d1, stamp_cb, &s1), 0);
    ck_assert_int_eq(fut_on_done(d2, stamp_cb, &s2), 0);
    if (fut_cancel(d1)) {
        ck_assert_int_eq(fut_state(d1), FUT_CANCELLED);
        /* The callback ran on this thread, before the call returned. */
        ck_assert_int_eq(atomic_load(&s1.calls), 1);
        ck_assert_int_eq(atomic_load(&s1.thread), fut_test_thread_id());
    } else {
        /* Too slow a machine: d1 had already fired. */
        ck_assert_int_eq(fut_state(d1), FUT_FULFILLED);
    }
    ck_assert(fut_cancel(d2));
    ck_assert_int_eq(fut_state(d2), FUT_CANCELLED);
    ck_assert_int_eq(fut_get(d2, 0, NULL), ECANCELED);
    fut_t *d3 = fut_delay(FUT_MS(100));
    /* It fires after d1 and d2 would have. */
    ck_assert_int_eq(fut_wait(d3, FUT_FOREVER), 0);
    ck_assert_int_eq(fut_state(d3), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&s1.calls), 1);
    ck_assert_int_eq(atomic_load(&s2.calls), 1);
    ck_assert_int_eq(atomic_load(&s2.state), FUT_CANCELLED);
    ck_assert_int_eq(fut_state(d2), FUT_CANCELLED);
    fut_release(d1);
    fut_release(d2);
    fut_release(d3);
}
END_TEST

/* Releasing the only reference to a delay before it fires must neither
 * lose the timer nor free the future under the timer thread: the timer
 * keeps it alive, so it still fires, its callback runs exactly once and
 * the callback's free_arg then runs exactly once.
 * A use after free here is for valgrind and AddressSanitizer to report. */
START_TEST(delay_released_before_firing)
{
    enum { N = 16 };
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e[N];
    for (int i = 0; i < N; i++) {
        fut_test_entry_init(&e[i], &log, i);
        fut_t *d = fut_delay(FUT_MS(i % 4));
        ck_assert_int_eq(
            fut_on_done_ex(d, fut_test_done_cb, &e[i], fut_test_entry_free), 0);
        fut_release(d);
    }
    fut_test_wait_atomic(&log.freed, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&e[i].ran), 1);
        ck_assert_int_eq(atomic_load(&e[i].freed), 1);
        ck_assert_int_eq(atomic_load(&e[i].ran_when_freed), 1);
    }
    ck_assert_int_eq(atomic_load(&log.calls), N);
    ck_assert_int_eq(atomic_load(&log.bad), 0);
    /* The timer thread still serves new delays afterwards. */
    fut_t *d = fut_delay(FUT_MS(10));
    ck_assert_int_eq(fut_wait(d, FUT_FOREVER), 0);
    ck_assert_int_eq(fut_state(d), FUT_FULFILLED);
    fut_release(d);
}
END_TEST

/* ----------------------------------------------------------- within */

START_TEST(within_fast_input_settles_with_its_outcome)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_test_obj_t *o = fut_test_obj_new(&tr, 4);

    /* Already settled. */
    fut_t *w = fut_within(fut_resolved(o, fut_test_obj_free), FUT_S(30));
    void *v = NULL;
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, &v), 0);
    ck_assert_ptr_eq(v, o);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(w);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
    w = fut_within(fut_rejected(EIO, "fast"), FUT_S(30));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), EIO);
    ck_assert_str_eq(fut_error(w)->message, "fast");
    fut_release(w);

    /* Settled in time, later: the value passes through and lives as long
     * as the within future. */
    fut_promise_t *p = fut_promise_new();
    w = fut_within(fut_promise_future(p), FUT_S(30));
    ck_assert_int_eq(fut_state(w), FUT_PENDING);
    o = fut_test_obj_new(&tr, 5);
    ck_assert_int_eq(fut_resolve(p, o, fut_test_obj_free), 0);
    fut_promise_release(p);
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, &v), 0);
    ck_assert_ptr_eq(v, o);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
    fut_release(w);
    ck_assert_int_eq(atomic_load(&tr.freed), 2);

    p = fut_promise_new();
    w = fut_within(fut_promise_future(p), FUT_S(30));
    ck_assert_int_eq(fut_reject(p, ENOENT, "gone"), 0);
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), ENOENT);
    fut_release(w);
    fut_promise_release(p);

    /* A pool task that finishes in time. */
    fut_executor_t *pool = fut_test_pool(1);
    w = fut_within(fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(6)),
                   FUT_S(30));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 6);
    fut_release(w);
    fut_executor_free(pool);
}
END_TEST

START_TEST(within_slow_input_rejects_etimedout_not_early)
{
    const int64_t ns[] = {0, FUT_MS(1), FUT_MS(20), FUT_MS(45)};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        stamp_t s;
        stamp_init(&s);
        fut_promise_t *p = fut_promise_new();
        int64_t t0 = fut_test_now_ns();
        fut_t *w = fut_within(fut_promise_future(p), ns[i]);
        ck_assert_int_eq(fut_on_done(w, stamp_cb, &s), 0);
        ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), ETIMEDOUT);
        ck_assert_int_eq(fut_state(w), FUT_REJECTED);
        fut_test_wait_atomic(&s.calls, 1);
        int64_t fired = (int64_t)atomic_load(&s.at) - t0;
        ck_assert_msg(fired >= ns[i], "within %lld ns rejected after %lld ns",
                      (long long)ns[i], (long long)fired);
        fut_release(w);
        fut_promise_release(p);
    }
}
END_TEST

/* On timeout the input is asked to cancel: a pending promise's future
 * becomes FUT_CANCELLED, even though the caller kept a reference. */
START_TEST(within_timeout_cancels_pending_input)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_t *w = fut_within(fut_retain(f), FUT_MS(10));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), ETIMEDOUT);
    ck_assert_int_eq(fut_wait(f, FUT_FOREVER), 0);
    ck_assert_int_eq(fut_state(f), FUT_CANCELLED);
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), EALREADY);
    /* The outcome is unchanged by the cancel. */
    ck_assert_int_eq(fut_get(w, 0, NULL), ETIMEDOUT);
    fut_release(w);
    fut_release(f);
    fut_promise_release(p);
}
END_TEST

/* A task that runs until it is asked to stop (or a minute passes), and
 * returns whether it was asked. */
static void *task_until_cancelled(fut_ctx_t *ctx, void *started)
{
    atomic_store((atomic_int *)started, 1);
    int64_t deadline = fut_test_now_ns() + FUT_S(60);
    while (!fut_cancel_requested(ctx) && fut_test_now_ns() < deadline)
        fut_test_sleep_ms(1);
    return FUT_TEST_PTR(fut_cancel_requested(ctx) ? 1 : 0);
}

START_TEST(within_timeout_asks_running_task_to_stop)
{
    atomic_int started = 0;
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *task = fut_submit(pool, task_until_cancelled, &started);
    fut_test_wait_atomic(&started, 1);
    int64_t t0 = fut_test_now_ns();
    fut_t *w = fut_within(fut_retain(task), FUT_MS(20));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), ETIMEDOUT);
    ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(20));
    void *v = NULL;
    ck_assert_int_eq(fut_get(task, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1);
    fut_release(w);
    fut_release(task);
    fut_executor_free(pool);
}
END_TEST

/* A queued task that nothing has started is cancelled outright. */
START_TEST(within_timeout_cancels_queued_task)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    atomic_int freed = 0;
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *running = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1);
    fut_t *q = fut_submit_ex(pool, fut_test_task_identity, &freed,
                             fut_test_count_free, 0);
    fut_t *w = fut_within(fut_retain(q), FUT_MS(10));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), ETIMEDOUT);
    ck_assert_int_eq(fut_wait(q, FUT_FOREVER), 0);
    ck_assert_int_eq(fut_state(q), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&freed), 1);
    fut_test_latch_open(&b.latch);
    fut_executor_free(pool);
    fut_release(w);
    fut_release(q);
    fut_release(running);
    fut_test_blocker_destroy(&b);
}
END_TEST

/* within composes with a delay: the shorter one wins, and only from below. */
START_TEST(within_on_delay_picks_the_earlier_deadline)
{
    int64_t t0 = fut_test_now_ns();
    fut_t *w = fut_within(fut_delay(FUT_MS(5)), FUT_S(30));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), 0);
    ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(5));
    fut_release(w);
    t0 = fut_test_now_ns();
    fut_t *d = fut_delay(FUT_S(30));
    fut_t *kept = fut_retain(d);
    w = fut_within(d, FUT_MS(15));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), ETIMEDOUT);
    ck_assert_int_ge(fut_test_now_ns() - t0, FUT_MS(15));
    ck_assert_int_eq(fut_wait(kept, FUT_FOREVER), 0); /* cancelled, not fired */
    ck_assert_int_eq(fut_state(kept), FUT_CANCELLED);
    fut_release(kept);
    fut_release(w);
}
END_TEST

START_TEST(within_bad_arguments_reject_einval)
{
    fut_t *w = fut_within(NULL, FUT_MS(1));
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), EINVAL);
    fut_release(w);
}
END_TEST

/* ------------------------------------------------------------- suite */

Suite *fut_test_timer_suite(void)
{
    Suite *s = suite_create("timer");
    TCase *tc = tcase_create("timer");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, delay_never_fires_early);
    tcase_add_test(tc, delay_from_many_threads_never_fires_early);
    tcase_add_test(tc, delay_callbacks_run_on_timer_thread);
    tcase_add_test(tc, delay_cancel_removes_timer);
    tcase_add_test(tc, delay_released_before_firing);
    tcase_add_test(tc, within_fast_input_settles_with_its_outcome);
    tcase_add_test(tc, within_slow_input_rejects_etimedout_not_early);
    tcase_add_test(tc, within_timeout_cancels_pending_input);
    tcase_add_test(tc, within_timeout_asks_running_task_to_stop);
    tcase_add_test(tc, within_timeout_cancels_queued_task);
    tcase_add_test(tc, within_on_delay_picks_the_earlier_deadline);
    tcase_add_test(tc, within_bad_arguments_reject_einval);
    suite_add_tcase(s, tc);
    return s;
}

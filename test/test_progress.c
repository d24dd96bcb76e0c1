/*
 * test_progress.c - progress (jQuery deferred.notify / progress): callbacks
 * on the notifying thread, in registration order, "memory" replay of the
 * latest progress to late listeners, EALREADY once settled, fut_progress
 * from a task.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { MAXP = 64 };

/* What the progress callbacks of one test saw. */
typedef struct plog {
    atomic_int calls;
    atomic_int thread;
    atomic_int bad;
    atomic_int seen[MAXP];  /* the int each call's progress pointed to */
    atomic_int order[MAXP]; /* the listener index of each call */
} plog_t;

typedef struct listener {
    plog_t *log;
    int index;
} listener_t;

static void plog_init(plog_t *l)
{
    atomic_init(&l->calls, 0);
    atomic_init(&l->thread, 0);
    atomic_init(&l->bad, 0);
    for (int i = 0; i < MAXP; i++) {
        atomic_init(&l->seen[i], -1);
        atomic_init(&l->order[i], -1);
    }
}

/* progress points to an int, read during the call (it is borrowed). */
static void on_progress(fut_t *f, void *progress, void *arg)
{
    listener_t *li = arg;
    plog_t *l = li->log;
    if (f == NULL || progress == NULL)
        atomic_fetch_add(&l->bad, 1);
    atomic_store(&l->thread, fut_test_thread_id());
    int k = atomic_fetch_add(&l->calls, 1);
    if (k < MAXP) {
        atomic_store(&l->seen[k], progress ? *(int *)progress : -2);
        atomic_store(&l->order[k], li->index);
    }
}

START_TEST(progress_notify_calls_listener_on_notifying_thread)
{
    plog_t log;
    plog_init(&log);
    listener_t li = {.log = &log, .index = 0};
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_on_progress(f, on_progress, &li), 0);
    ck_assert_int_eq(atomic_load(&log.calls), 0); /* nothing to replay yet */
    for (int i = 0; i < 5; i++) {
        int x = i * 10;
        ck_assert_int_eq(fut_notify(p, &x), 0);
        /* The listener ran before fut_notify returned. */
        ck_assert_int_eq(atomic_load(&log.calls), i + 1);
        ck_assert_int_eq(atomic_load(&log.seen[i]), i * 10);
    }
    ck_assert_int_eq(atomic_load(&log.thread), fut_test_thread_id());
    ck_assert_int_eq(fut_state(f), FUT_PENDING); /* progress settles nothing */
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    ck_assert_int_eq(atomic_load(&log.calls), 5);
    ck_assert_int_eq(atomic_load(&log.bad), 0);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(rule5_progress_listeners_run_in_registration_order)
{
    enum { N = 8 };
    plog_t log;
    plog_init(&log);
    listener_t li[N];
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    for (int i = 0; i < N; i++) {
        li[i] = (listener_t){.log = &log, .index = i};
        ck_assert_int_eq(fut_on_progress(f, on_progress, &li[i]), 0);
    }
    int x = 1;
    ck_assert_int_eq(fut_notify(p, &x), 0);
    x = 2;
    ck_assert_int_eq(fut_notify(p, &x), 0);
    ck_assert_int_eq(atomic_load(&log.calls), 2 * N);
    for (int i = 0; i < 2 * N; i++) {
        ck_assert_int_eq(atomic_load(&log.order[i]), i % N);
        ck_assert_int_eq(atomic_load(&log.seen[i]), 1 + i / N);
    }
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(progress_memory_replays_latest_to_late_listener)
{
    static int values[3] = {
        7, 8, 9}; /* outlive the calls: replay may hand them back */
    plog_t log;
    plog_init(&log);
    listener_t early = {.log = &log, .index = 0},
               late = {.log = &log, .index = 1};
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_on_progress(f, on_progress, &early), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(fut_notify(p, &values[i]), 0);
    ck_assert_int_eq(atomic_load(&log.calls), 3);
    /* A late listener is called at once, on this thread, with the most recent
     * progress only. */
    ck_assert_int_eq(fut_on_progress(f, on_progress, &late), 0);
    ck_assert_int_eq(atomic_load(&log.calls), 4);
    ck_assert_int_eq(atomic_load(&log.order[3]), 1);
    ck_assert_int_eq(atomic_load(&log.seen[3]), 9);
    /* Then it hears what comes next, like the early one. */
    int x = 10;
    ck_assert_int_eq(fut_notify(p, &x), 0);
    ck_assert_int_eq(atomic_load(&log.calls), 6);
    ck_assert_int_eq(atomic_load(&log.order[4]), 0);
    ck_assert_int_eq(atomic_load(&log.order[5]), 1);
    ck_assert_int_eq(atomic_load(&log.seen[5]), 10);
    ck_assert_int_eq(atomic_load(&log.bad), 0);
    ck_assert_int_eq(fut_reject(p, EIO, "done"), 0);
    fut_promise_release(p);
    fut_release(f);
}
END_TEST

START_TEST(progress_ealready_after_settle)
{
    static int value = 3;
    plog_t log;
    plog_init(&log);
    listener_t li = {.log = &log, .index = 0};
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_notify(p, &value), 0); /* memory exists... */
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    /* ...but a settled future takes no listener and replays nothing. */
    ck_assert_int_eq(fut_on_progress(f, on_progress, &li), EALREADY);
    ck_assert_int_eq(fut_notify(p, &value), EALREADY);
    ck_assert_int_eq(atomic_load(&log.calls), 0);
    fut_promise_release(p);
    fut_release(f);

    fut_t *r = fut_rejected(EIO, NULL);
    ck_assert_int_eq(fut_on_progress(r, on_progress, &li), EALREADY);
    fut_release(r);
    fut_t *c = fut_promise_future(p = fut_promise_new());
    ck_assert(fut_cancel(c));
    ck_assert_int_eq(fut_on_progress(c, on_progress, &li), EALREADY);
    ck_assert_int_eq(fut_notify(p, &value), EALREADY);
    fut_promise_release(p);
    fut_release(c);
    ck_assert_int_eq(atomic_load(&log.calls), 0);
}
END_TEST

START_TEST(rule2_never_null_progress_bad_arguments)
{
    plog_t log;
    plog_init(&log);
    listener_t li = {.log = &log, .index = 0};
    ck_assert_int_eq(fut_on_progress(NULL, on_progress, &li), EINVAL);
    int x = 0;
    ck_assert_int_eq(fut_notify(NULL, &x), EINVAL);
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_on_progress(f, NULL, &li), EINVAL);
    ck_assert_int_eq(fut_notify(p, &x), 0); /* nobody listens: fine */
    fut_promise_release(p);
    fut_release(f);
    ck_assert_int_eq(atomic_load(&log.calls), 0);
}
END_TEST

/* ----------------------------------------------- progress from a task */

typedef struct reporter {
    fut_test_latch_t go;     /* the task waits for its listener */
    fut_test_latch_t finish; /* ...and, in the replay test, to finish */
    atomic_int reported;
    int steps;
    int values[MAXP];
    bool hold;
} reporter_t;

static void *task_report(fut_ctx_t *ctx, void *arg)
{
    reporter_t *r = arg;
    fut_test_latch_wait(&r->go);
    for (int i = 0; i < r->steps; i++) {
        r->values[i] = i + 100;
        fut_progress(ctx, &r->values[i]);
    }
    atomic_store(&r->reported, 1);
    if (r->hold)
        fut_test_latch_wait(&r->finish);
    return FUT_TEST_PTR(r->steps);
}

static void reporter_init(reporter_t *r, int steps, bool hold)
{
    fut_test_latch_init(&r->go);
    fut_test_latch_init(&r->finish);
    atomic_init(&r->reported, 0);
    r->steps = steps;
    r->hold = hold;
}

static void reporter_destroy(reporter_t *r)
{
    fut_test_latch_destroy(&r->go);
    fut_test_latch_destroy(&r->finish);
}

START_TEST(progress_from_task_reaches_listener_on_worker)
{
    fut_executor_t *pool = fut_test_pool(1);
    reporter_t r;
    reporter_init(&r, 5, false);
    plog_t log;
    plog_init(&log);
    listener_t li = {.log = &log, .index = 0};
    fut_t *f = fut_submit(pool, task_report, &r);
    ck_assert_int_eq(fut_on_progress(f, on_progress, &li), 0);
    fut_test_latch_open(&r.go);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 5);
    /* fut_progress calls listeners before it returns: all five are in. */
    ck_assert_int_eq(atomic_load(&log.calls), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(atomic_load(&log.seen[i]), 100 + i);
    ck_assert_int_ne(atomic_load(&log.thread), fut_test_thread_id());
    ck_assert_int_eq(atomic_load(&log.bad), 0);
    ck_assert_int_eq(fut_on_progress(f, on_progress, &li), EALREADY);
    fut_release(f);
    fut_executor_free(pool);
    reporter_destroy(&r);
}
END_TEST

START_TEST(progress_from_task_replays_to_late_listener)
{
    fut_executor_t *pool = fut_test_pool(1);
    reporter_t r;
    reporter_init(&r, 3, true);
    plog_t log;
    plog_init(&log);
    listener_t li = {.log = &log, .index = 0};
    fut_t *f = fut_submit(pool, task_report, &r);
    fut_test_latch_open(&r.go);
    /* The task has reported 100, 101 and 102 and is still running. */
    fut_test_wait_atomic(&r.reported, 1);
    ck_assert_int_eq(fut_on_progress(f, on_progress, &li), 0);
    ck_assert_int_eq(atomic_load(&log.calls), 1);
    ck_assert_int_eq(atomic_load(&log.seen[0]), 102);
    ck_assert_int_eq(atomic_load(&log.thread), fut_test_thread_id());
    fut_test_latch_open(&r.finish);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(atomic_load(&log.calls), 1);
    fut_release(f);
    fut_executor_free(pool);
    reporter_destroy(&r);
}
END_TEST

START_TEST(progress_from_inline_task_without_listener)
{
    reporter_t r;
    reporter_init(&r, 4, false);
    fut_test_latch_open(&r.go);
    fut_t *f = fut_submit(fut_inline_executor(), task_report, &r);
    /* Every step reported with nobody listening, and the task finished
     * with its value before fut_submit returned. */
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 4);
    ck_assert_int_eq(atomic_load(&r.reported), 1);
    fut_release(f);
    reporter_destroy(&r);
}
END_TEST

typedef struct notifier {
    fut_promise_t *p;
    int thread;
    int value;
} notifier_t;

static void *notify_thread(void *arg)
{
    notifier_t *n = arg;
    n->thread = fut_test_thread_id();
    fut_notify(n->p, &n->value);
    return NULL;
}

START_TEST(rule8_notify_from_other_thread)
{
    plog_t log;
    plog_init(&log);
    listener_t li = {.log = &log, .index = 0};
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_on_progress(f, on_progress, &li), 0);
    notifier_t n = {.p = p, .value = 55};
    pthread_t t = fut_test_spawn(notify_thread, &n);
    fut_test_join(t);
    ck_assert_int_eq(atomic_load(&log.calls), 1);
    ck_assert_int_eq(atomic_load(&log.seen[0]), 55);
    ck_assert_int_eq(atomic_load(&log.thread), n.thread);
    fut_promise_release(p);
    ck_assert_int_eq(fut_get(f, 0, NULL), EPIPE);
    fut_release(f);
}
END_TEST

/* Many watched futures at once: each listener hears only its own future,
 * however the futures' progress blocks are stored, and watching and
 * releasing them in any order loses nothing. */
typedef struct own_watch {
    fut_t *f;
    atomic_int heard;
    atomic_int wrong;
} own_watch_t;

/* n pending promises, their futures and a watch record for each. */
typedef struct watched {
    fut_promise_t **ps;
    fut_t **fs;
    own_watch_t *ws;
} watched_t;

static watched_t watched_new(int n)
{
    watched_t w = {calloc((size_t)n, sizeof *w.ps),
                   calloc((size_t)n, sizeof *w.fs),
                   calloc((size_t)n, sizeof *w.ws)};
    ck_assert_ptr_nonnull(w.ps);
    ck_assert_ptr_nonnull(w.fs);
    ck_assert_ptr_nonnull(w.ws);
    fut_test_promises(w.ps, w.fs, (size_t)n);
    return w;
}

static void watched_free(watched_t w)
{
    free(w.ws);
    free(w.fs);
    free(w.ps);
}

static void on_own_progress(fut_t *f, void *progress, void *arg)
{
    own_watch_t *w = arg;
    if (f != w->f || progress != (void *)w)
        atomic_fetch_add(&w->wrong, 1);
    atomic_fetch_add(&w->heard, 1);
}

START_TEST(progress_many_watched_futures_hear_only_their_own)
{
    enum { N = 20000 };
    watched_t w = watched_new(N);
    fut_promise_t **ps = w.ps;
    fut_t **fs = w.fs;
    own_watch_t *ws = w.ws;
    for (int i = 0; i < N; i++) {
        ws[i].f = fs[i];
        ck_assert_int_eq(fut_on_progress(fs[i], on_own_progress, &ws[i]), 0);
    }
    for (int round = 0; round < 2; round++)
        for (int i = N - 1; i >= 0; i--)
            ck_assert_int_eq(fut_notify(ps[i], &ws[i]), 0);
    /* Settle and free every other one first, then the rest. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = pass; i < N; i += 2) {
            ck_assert_int_eq(fut_resolve(ps[i], NULL, NULL), 0);
            ck_assert_int_eq(fut_notify(ps[i], &ws[i]), EALREADY);
            fut_promise_release(ps[i]);
            ck_assert_int_eq(atomic_load(&ws[i].heard), 2);
            ck_assert_int_eq(atomic_load(&ws[i].wrong), 0);
            fut_release(fs[i]);
        }
    }
    watched_free(w);
}
END_TEST

/* Threads attach listeners at once: the side table grows while others
 * insert into the same shards (a grow allocates with the shard unlocked
 * and installs its array only if the shard still needs it). */
typedef struct attach_share {
    fut_promise_t **ps;
    fut_t **fs;
    own_watch_t *ws;
    int from, to;
    fut_test_barrier_t *start;
    atomic_int failed;
} attach_share_t;

static void *attach_listeners(void *arg)
{
    attach_share_t *a = arg;
    fut_test_barrier_wait(a->start);
    for (int i = a->from; i < a->to; i++) {
        a->ws[i].f = a->fs[i];
        if (fut_on_progress(a->fs[i], on_own_progress, &a->ws[i]) != 0)
            atomic_fetch_add(&a->failed, 1);
        if (fut_notify(a->ps[i], &a->ws[i]) != 0)
            atomic_fetch_add(&a->failed, 1);
    }
    return NULL;
}

START_TEST(progress_listeners_attached_from_threads_at_once_hear_their_own)
{
    enum { N = 12000, T = 3 };
    watched_t w = watched_new(N);
    fut_promise_t **ps = w.ps;
    fut_t **fs = w.fs;
    own_watch_t *ws = w.ws;
    fut_test_barrier_t start;
    fut_test_barrier_init(&start, T);
    attach_share_t shares[T];
    pthread_t threads[T];
    for (int t = 0; t < T; t++) {
        shares[t] = (attach_share_t){.ps = ps,
                                     .fs = fs,
                                     .ws = ws,
                                     .from = t * (N / T),
                                     .to = (t + 1) * (N / T),
                                     .start = &start};
        atomic_init(&shares[t].failed, 0);
        threads[t] = fut_test_spawn(attach_listeners, &shares[t]);
    }
    for (int t = 0; t < T; t++) {
        fut_test_join(threads[t]);
        ck_assert_int_eq(atomic_load(&shares[t].failed), 0);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(fut_notify(ps[i], &ws[i]), 0);
        ck_assert_int_eq(fut_resolve(ps[i], NULL, NULL), 0);
        fut_promise_release(ps[i]);
        ck_assert_int_eq(atomic_load(&ws[i].heard), 2);
        ck_assert_int_eq(atomic_load(&ws[i].wrong), 0);
        fut_release(fs[i]);
    }
    fut_test_barrier_destroy(&start);
    watched_free(w);
}
END_TEST

Suite *fut_test_progress_suite(void)
{
    Suite *s = suite_create("progress");
    TCase *tc = tcase_create("progress");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, progress_notify_calls_listener_on_notifying_thread);
    tcase_add_test(tc, rule5_progress_listeners_run_in_registration_order);
    tcase_add_test(tc, progress_memory_replays_latest_to_late_listener);
    tcase_add_test(tc, progress_ealready_after_settle);
    tcase_add_test(tc, rule2_never_null_progress_bad_arguments);
    tcase_add_test(tc, progress_from_task_reaches_listener_on_worker);
    tcase_add_test(tc, progress_from_task_replays_to_late_listener);
    tcase_add_test(tc, progress_from_inline_task_without_listener);
    tcase_add_test(tc, rule8_notify_from_other_thread);
    tcase_add_test(tc, progress_many_watched_futures_hear_only_their_own);
    tcase_add_test(
        tc, progress_listeners_attached_from_threads_at_once_hear_their_own);
    suite_add_tcase(s, tc);
    return s;
}

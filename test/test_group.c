/*
 * test_group.c - task groups: every mode, cancellation reaching running
 * and queued members, deadlines, nesting three levels deep, the limit on
 * running members, 100,000 members, cancel racing completion, release
 * before close, and allocation failure at every site.  The rule they
 * share: the group's future settles only once every member has settled.
 */
#include "test_util.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

static void *task_value(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

static void *task_fail(fut_ctx_t *ctx, void *arg)
{
    return fut_fail(ctx, EIO, "member %d failed", FUT_TEST_INT(arg));
}

/* Runs until its latch opens or it is asked to stop, then says which. */
typedef struct hold {
    fut_test_latch_t latch;
    atomic_int started, saw_cancel, finished;
} hold_t;

static void hold_init(hold_t *h)
{
    fut_test_latch_init(&h->latch);
    atomic_init(&h->started, 0);
    atomic_init(&h->saw_cancel, 0);
    atomic_init(&h->finished, 0);
}

static void *task_hold(fut_ctx_t *ctx, void *arg)
{
    hold_t *h = arg;
    atomic_fetch_add(&h->started, 1);
    while (!fut_cancel_requested(ctx)) {
        pthread_mutex_lock(&h->latch.mu);
        bool open = h->latch.open;
        pthread_mutex_unlock(&h->latch.mu);
        if (open)
            break;
        fut_test_sleep_ms(1);
    }
    if (fut_cancel_requested(ctx))
        atomic_fetch_add(&h->saw_cancel, 1);
    atomic_fetch_add(&h->finished, 1);
    return NULL;
}

/* ------------------------------------------------------------- modes */

START_TEST(group_all_collects_values_in_start_order)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    ck_assert_ptr_nonnull(g);
    for (int i = 0; i < 20; i++)
        fut_release(fut_group_submit(g, task_value, FUT_TEST_PTR(i)));
    fut_t *r = fut_group_close(g);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
    void **values = v;
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(FUT_TEST_INT(values[i]), i);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
}
END_TEST

/* The first failure cancels the others; the group settles only after the
 * running member has finished, with the failure's error. */
START_TEST(group_all_first_failure_cancels_others_and_waits_for_them)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    hold_t h;
    hold_init(&h);
    fut_t *running = fut_group_submit(g, task_hold, &h);
    fut_test_wait_atomic(&h.started, 1);
    fut_t *fail = fut_group_submit(g, task_fail, FUT_TEST_PTR(1));
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EIO);
    /* By then the running member saw the cancel and finished. */
    ck_assert_int_eq(atomic_load(&h.finished), 1);
    ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
    ck_assert(fut_done(running));
    ck_assert_str_eq(fut_error(r)->message, "member 1 failed");
    fut_release(running);
    fut_release(fail);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

/* Two failures: the group's error is the first, and says how many more
 * members failed. */
START_TEST(group_all_error_counts_the_other_failures)
{
    fut_group_t *g = fut_group_new(fut_inline_executor(), FUT_GROUP_ALL);
    ck_assert_int_eq(fut_group_add(g, fut_rejected(EIO, "first")), 0);
    ck_assert_int_eq(fut_group_add(g, fut_rejected(EPERM, "second")), 0);
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EIO);
    ck_assert_str_eq(fut_error(r)->message,
                     "first (and 1 other members failed)");
    fut_release(r);
    fut_group_release(g);
}
END_TEST

START_TEST(group_settled_returns_every_outcome)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_SETTLED);
    for (int i = 0; i < 10; i++)
        fut_release(fut_group_submit(g, i % 3 ? task_value : task_fail,
                                     FUT_TEST_PTR(i)));
    fut_t *r = fut_group_close(g);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
    fut_t **members = v;
    for (int i = 0; i < 10; i++) {
        void *mv = NULL;
        int rc = fut_get(members[i], 0, &mv);
        if (i % 3) {
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(FUT_TEST_INT(mv), i);
        } else {
            ck_assert_int_eq(rc, EIO);
        }
    }
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
}
END_TEST

START_TEST(group_race_first_success_cancels_the_rest)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_RACE);
    hold_t h;
    hold_init(&h);
    fut_t *slow = fut_group_submit(g, task_hold, &h);
    fut_test_wait_atomic(&h.started, 1);
    fut_release(fut_group_submit(g, task_value, FUT_TEST_PTR(7)));
    fut_t *r = fut_group_close(g);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
    fut_any_t *any = v;
    ck_assert_uint_eq(any->index, 1);
    ck_assert_int_eq(FUT_TEST_INT(any->value), 7);
    ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
    ck_assert(fut_done(slow));
    fut_release(slow);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

START_TEST(group_race_rejects_when_every_member_failed)
{
    fut_group_t *g = fut_group_new(fut_inline_executor(), FUT_GROUP_RACE);
    for (int i = 0; i < 3; i++)
        fut_release(fut_group_submit(g, task_fail, FUT_TEST_PTR(i)));
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EIO);
    ck_assert_str_eq(fut_error(r)->message, "member 2 failed");
    fut_release(r);
    fut_group_release(g);
}
END_TEST

/* ------------------------------------------------------ cancellation */

/* fut_cancel on the group's future only asks (it is running); running
 * members see fut_cancel_requested, queued ones never run, and the group
 * settles CANCELLED once they have all settled. */
START_TEST(group_cancel_reaches_running_and_queued_members)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    hold_t h;
    hold_init(&h);
    fut_t *running = fut_group_submit(g, task_hold, &h);
    fut_test_wait_atomic(&h.started, 1);
    atomic_int freed = 0;
    fut_t *queued =
        fut_group_submit_ex(g, task_value, &freed, fut_test_count_free, 0);
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_state(r), FUT_RUNNING);
    ck_assert(!fut_cancel(r)); /* asked, not cancelled yet */
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ECANCELED);
    ck_assert_int_eq(fut_state(r), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
    ck_assert_int_eq(fut_state(queued), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&freed), 1); /* its free_arg, once */
    ck_assert(fut_done(running));
    fut_release(running);
    fut_release(queued);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

START_TEST(group_deadline_cancels_members_and_rejects_etimedout)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    ck_assert_int_eq(fut_group_deadline(g, FUT_MS(20)), 0);
    ck_assert_int_eq(fut_group_deadline(g, FUT_MS(20)), EINVAL);
    hold_t h;
    hold_init(&h);
    fut_release(fut_group_submit(g, task_hold, &h));
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
    ck_assert_int_eq(atomic_load(&h.finished), 1);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

/* Three levels: cancelling the top reaches the grandchild's member, and
 * no level settles before the level below. */
START_TEST(group_nesting_three_levels_cancel_from_the_top)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *top = fut_group_new(pool, FUT_GROUP_ALL);
    fut_group_t *mid = fut_group_child(top, FUT_GROUP_ALL);
    fut_group_t *low = fut_group_child(mid, FUT_GROUP_ALL);
    ck_assert_ptr_nonnull(low);
    hold_t h;
    hold_init(&h);
    fut_release(fut_group_submit(low, task_hold, &h));
    fut_test_wait_atomic(&h.started, 1);
    fut_t *rl = fut_group_close(low);
    fut_t *rm = fut_group_close(mid);
    fut_t *rt = fut_group_close(top);
    ck_assert(fut_group_cancel(top));
    ck_assert(!fut_group_cancel(top));
    ck_assert_int_eq(fut_get(rt, FUT_FOREVER, NULL), ECANCELED);
    ck_assert(fut_done(rm) && fut_done(rl));
    ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
    fut_release(rl);
    fut_release(rm);
    fut_release(rt);
    fut_group_release(low);
    fut_group_release(mid);
    fut_group_release(top);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

/* ---------------------------------------------------------- the limit */

typedef struct gauge {
    atomic_int now, peak, runs;
} gauge_t;

static void *task_gauge(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    gauge_t *gg = arg;
    int now = atomic_fetch_add(&gg->now, 1) + 1;
    int peak = atomic_load(&gg->peak);
    while (now > peak && !atomic_compare_exchange_weak(&gg->peak, &peak, now))
        ;
    fut_test_sleep_ms(1);
    atomic_fetch_sub(&gg->now, 1);
    atomic_fetch_add(&gg->runs, 1);
    return NULL;
}

/* 200 blocking calls through an elastic pool, at most 16 at once: the
 * tasks themselves count how many run together. */
START_TEST(group_limit_never_more_than_max_running)
{
    fut_pool_config_t cfg = {.threads = 2, .max_threads = 40};
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), 0);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    ck_assert_int_eq(fut_group_limit(g, 16), 0);
    gauge_t gg = {0};
    for (int i = 0; i < 200; i++)
        fut_release(
            fut_group_submit_ex(g, task_gauge, &gg, NULL, FUT_BLOCKING));
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(atomic_load(&gg.runs), 200);
    ck_assert_int_le(atomic_load(&gg.peak), 16);
    ck_assert_int_ge(atomic_load(&gg.peak), 2);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
}
END_TEST

/* A limit set while members run counts them: three members hold, the
 * limit becomes 2, and the members submitted after it wait until the
 * running ones have settled, then run at most two at once. */
START_TEST(group_limit_set_late_counts_the_members_already_running)
{
    fut_executor_t *pool = fut_test_pool(4);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    hold_t h;
    hold_init(&h);
    for (int i = 0; i < 3; i++)
        fut_release(fut_group_submit(g, task_hold, &h));
    while (atomic_load(&h.started) < 3)
        fut_test_sleep_ms(1);
    ck_assert_int_eq(fut_group_limit(g, 2), 0);
    gauge_t gg = {0};
    for (int i = 0; i < 6; i++)
        fut_release(fut_group_submit(g, task_gauge, &gg));
    fut_test_sleep_ms(30);
    ck_assert_int_eq(atomic_load(&gg.runs), 0); /* 3 running >= 2 */
    ck_assert_int_eq(atomic_load(&gg.peak), 0);
    fut_test_latch_open(&h.latch);
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(atomic_load(&gg.runs), 6);
    ck_assert_int_le(atomic_load(&gg.peak), 2);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

START_TEST(group_of_100k_members)
{
    enum { N = 100000 };
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    for (int i = 0; i < N; i++)
        fut_release(fut_group_submit(g, task_value, FUT_TEST_PTR(i)));
    fut_t *r = fut_group_close(g);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
    void **values = v;
    for (int i = 0; i < N; i += 997)
        ck_assert_int_eq(FUT_TEST_INT(values[i]), i);
    ck_assert_int_eq(FUT_TEST_INT(values[N - 1]), N - 1);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
}
END_TEST

/* Four threads add members to one group at once while the workers' slots
 * take the group's lock to start the members waiting behind a limit: the
 * lock keeps the member list whole (every value once, in each adder's
 * order) and the limit exact. */
typedef struct adder {
    fut_group_t *g;
    int base;
    pthread_t thread;
} adder_t;

enum { ADDERS = 4, PER_ADDER = 5000 };

static void *task_index(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

static void *add_members(void *arg)
{
    adder_t *a = arg;
    for (int i = 0; i < PER_ADDER; i++)
        ck_assert_int_eq(
            fut_group_spawn(a->g, task_index, FUT_TEST_PTR(a->base + i)), 0);
    return NULL;
}

START_TEST(group_concurrent_adders_lose_no_member)
{
    fut_executor_t *pool = fut_test_pool(2);
    for (int limit = 0; limit <= 3; limit += 3) {
        fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
        ck_assert_int_eq(fut_group_limit(g, (size_t)limit), 0);
        adder_t a[ADDERS];
        for (int t = 0; t < ADDERS; t++) {
            a[t] = (adder_t){.g = g, .base = t * PER_ADDER};
            ck_assert_int_eq(
                pthread_create(&a[t].thread, NULL, add_members, &a[t]), 0);
        }
        for (int t = 0; t < ADDERS; t++)
            pthread_join(a[t].thread, NULL);
        fut_t *r = fut_group_close(g);
        void **values = NULL;
        ck_assert_int_eq(fut_get(r, FUT_FOREVER, (void **)&values), 0);
        static unsigned char seen[ADDERS * PER_ADDER];
        memset(seen, 0, sizeof seen);
        int last[ADDERS] = {-1, -1, -1, -1};
        for (int i = 0; i < ADDERS * PER_ADDER; i++) {
            int v = FUT_TEST_INT(values[i]);
            ck_assert(v >= 0 && v < ADDERS * PER_ADDER);
            ck_assert_msg(!seen[v], "value %d twice", v);
            seen[v] = 1;
            int t = v / PER_ADDER;
            ck_assert_int_gt(v, last[t]); /* each adder's order kept */
            last[t] = v;
        }
        fut_release(r);
        fut_group_release(g);
    }
    fut_executor_free(pool);
}
END_TEST

/* ---------------------------------------------- races, release, joining */

static void *task_obj(fut_ctx_t *ctx, void *arg)
{
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(arg, 1);
}

/* Cancel racing completion: whichever wins, every member settles, the
 * group's outcome is one the rules allow, and every value is destroyed
 * exactly once. */
START_TEST(group_cancel_racing_completion_loses_nothing)
{
    unsigned seed = fut_test_seed();
    fut_executor_t *pool = fut_test_pool(2);
    for (int round = 0; round < 200; round++) {
        fut_test_tracker_t tr;
        fut_test_tracker_init(&tr);
        fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
        int n = 1 + (int)(fut_test_rand(&seed) % 8);
        for (int i = 0; i < n; i++)
            fut_release(fut_group_submit(g, task_obj, &tr));
        fut_t *r = fut_group_close(g);
        if (fut_test_rand(&seed) % 2)
            fut_group_cancel(g);
        int rc = fut_get(r, FUT_FOREVER, NULL);
        ck_assert_msg(rc == 0 || rc == ECANCELED, "round %d: %d", round, rc);
        fut_release(r);
        fut_group_release(g);
        /* The thread that settled the last member may drop its references
         * a moment after the group's future settled (README, "Values and
         * their destructors"): wait for the values, then count them. */
        FUT_TEST_WAIT_UNTIL(atomic_load(&tr.freed) == atomic_load(&tr.made),
                            "every member's value destroyed");
        ck_assert_int_eq(atomic_load(&tr.freed), atomic_load(&tr.made));
    }
    fut_executor_free(pool);
}
END_TEST

/* A member started at once is queued without a claim (its executor is set
 * before any canceller can find it): one cancelled between its adding and
 * its queueing is queued cancelled, told to the pool, and counted when a
 * worker takes it out.  Spawns race a cancel of their group, round after
 * round, on a pool whose worker is held so that members queue: afterwards
 * every free_arg ran once, and the pool's counts add up (nothing queued,
 * every task submitted either completed or cancelled). */
typedef struct spawner {
    fut_group_t *g;
    atomic_int *freed;
    atomic_int spawned;
} spawner_t;

static void *spawn_members(void *arg)
{
    spawner_t *sp = arg;
    for (int i = 0; i < 64; i++) {
        int rc = fut_group_spawn_ex(sp->g, task_value, sp->freed,
                                    fut_test_count_free, 0);
        ck_assert_msg(rc == 0 || rc == ECANCELED, "spawn: %d", rc);
        atomic_fetch_add(&sp->spawned, 1);
    }
    return NULL;
}

START_TEST(group_spawns_racing_a_cancel_keep_the_pool_counts_whole)
{
    unsigned seed = fut_test_seed();
    fut_executor_t *pool = fut_test_pool(1);
    for (int round = 0; round < 100; round++) {
        hold_t h;
        hold_init(&h);
        fut_t *held = fut_submit(pool, task_hold, &h);
        fut_test_wait_atomic(&h.started, 1);
        atomic_int freed = 0;
        spawner_t sp = {fut_group_new(pool, FUT_GROUP_ALL), &freed, 0};
        ck_assert_ptr_nonnull(sp.g);
        pthread_t t = fut_test_spawn(spawn_members, &sp);
        int after = (int)(fut_test_rand(&seed) % 64);
        while (atomic_load(&sp.spawned) < after)
            sched_yield();
        fut_group_cancel(sp.g);
        fut_test_join(t);
        fut_test_latch_open(&h.latch);
        fut_t *r = fut_group_close(sp.g);
        ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ECANCELED);
        ck_assert_int_eq(fut_get(held, FUT_FOREVER, NULL), 0);
        fut_release(r);
        fut_release(held);
        fut_group_release(sp.g);
        FUT_TEST_WAIT_UNTIL(atomic_load(&freed) == 64, "every free_arg ran");
        fut_stats_t st;
        FUT_TEST_WAIT_UNTIL(fut_executor_stats(pool, &st) == 0 &&
                                st.queued == 0 &&
                                st.submitted == st.completed + st.cancelled,
                            "the pool's counts add up");
        ck_assert_int_eq(atomic_load(&freed), 64);
        fut_test_latch_destroy(&h.latch);
    }
    fut_executor_free(pool);
}
END_TEST

/* Released before it was closed: the group cancels and waits, so no
 * member outlives the call. */
START_TEST(group_release_before_close_cancels_and_waits)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    hold_t h;
    hold_init(&h);
    fut_t *m = fut_group_submit(g, task_hold, &h);
    fut_test_wait_atomic(&h.started, 1);
    fut_group_release(g);
    ck_assert_int_eq(atomic_load(&h.finished), 1);
    ck_assert_int_eq(atomic_load(&h.saw_cancel), 1);
    ck_assert(fut_done(m));
    fut_release(m);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

/* A member starts a sibling in its own group (fut_group_current). */
static void *task_spawn_sibling(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    fut_group_t *g = fut_group_current();
    if (g == NULL)
        return fut_fail(ctx, EINVAL, "no current group");
    fut_release(fut_group_submit(g, task_value, arg));
    return arg;
}

START_TEST(group_member_starts_a_sibling_through_current)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    ck_assert_ptr_null(fut_group_current());
    fut_t *first = fut_group_submit(g, task_spawn_sibling, FUT_TEST_PTR(5));
    ck_assert_int_eq(fut_wait(first, FUT_FOREVER), 0);
    fut_t *r = fut_group_close(g);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(((void **)v)[0]), 5);
    ck_assert_int_eq(FUT_TEST_INT(((void **)v)[1]), 5);
    fut_release(first);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
}
END_TEST

/* A fiber member: cancelling the group makes its pending fut_await
 * return ECANCELED, and the group waits for the fiber to finish. */
static void *fiber_await_forever(fut_ctx_t *ctx, void *arg)
{
    int rc = fut_await(arg, FUT_FOREVER, NULL);
    if (rc == ECANCELED)
        return fut_fail(ctx, ECANCELED, NULL);
    return FUT_TEST_PTR(rc);
}

START_TEST(group_cancel_reaches_a_fiber_members_await)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *fiber = fut_async(pool, fiber_await_forever, pf);
    ck_assert_int_eq(fut_group_add(g, fut_retain(fiber)), 0);
    fut_t *r = fut_group_close(g);
    fut_test_sleep_ms(5); /* the fiber is suspended in its await */
    ck_assert(fut_group_cancel(g));
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ECANCELED);
    ck_assert_int_eq(fut_state(fiber), FUT_CANCELLED);
    ck_assert_int_eq(fut_state(pf), FUT_PENDING);
    fut_release(fiber);
    fut_release(r);
    fut_release(pf);
    fut_promise_release(p);
    fut_group_release(g);
    fut_executor_free(pool);
}
END_TEST

/* Fail-fast does not wait for close: a member that fails while the
 * group is still open cancels the running ones at once (the group is
 * closed only after the running member saw the cancel). */
START_TEST(group_all_failure_cancels_others_before_close)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    hold_t h;
    hold_init(&h);
    fut_release(fut_group_submit(g, task_hold, &h));
    fut_test_wait_atomic(&h.started, 1);
    fut_release(fut_group_submit(g, task_fail, FUT_TEST_PTR(1)));
    fut_test_wait_atomic(&h.saw_cancel, 1);
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EIO);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

static void *task_follow(fut_ctx_t *ctx, void *arg)
{
    return fut_adopt(ctx, fut_retain(arg));
}

/* The same for a member that follows a future (fut_adopt) which rejects
 * later: its failure cancels the others before close. */
START_TEST(group_all_adopted_failure_cancels_others_before_close)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    hold_t h;
    hold_init(&h);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_release(fut_group_submit(g, task_hold, &h));
    fut_test_wait_atomic(&h.started, 1);
    fut_t *follower = fut_group_submit(g, task_follow, pf);
    while (fut_state(follower) == FUT_PENDING)
        fut_test_sleep_ms(1); /* running: following pf */
    ck_assert_int_eq(fut_reject(p, EPERM, "later"), 0);
    fut_test_wait_atomic(&h.saw_cancel, 1);
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EPERM);
    fut_release(r);
    fut_release(follower);
    fut_release(pf);
    fut_promise_release(p);
    fut_group_release(g);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

/* Members that settled before close and members still running at close
 * are both counted, once: values in start order, the group settles after
 * the last one. */
START_TEST(group_close_counts_members_settled_before_and_after)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    hold_t h;
    hold_init(&h);
    fut_t *done = fut_group_submit(g, task_value, FUT_TEST_PTR(7));
    ck_assert_int_eq(fut_wait(done, FUT_FOREVER), 0);
    fut_release(fut_group_submit(g, task_hold, &h));
    fut_test_wait_atomic(&h.started, 1);
    fut_t *r = fut_group_close(g);
    fut_test_sleep_ms(5);
    ck_assert(!fut_done(r)); /* the held member still runs */
    fut_test_latch_open(&h.latch);
    void **values = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, (void **)&values), 0);
    ck_assert_int_eq(FUT_TEST_INT(values[0]), 7);
    ck_assert_ptr_null(values[1]);
    ck_assert_int_eq(atomic_load(&h.finished), 1);
    fut_release(done);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
    fut_test_latch_destroy(&h.latch);
}
END_TEST

/* fut_group_spawn: members without a future for the caller; their
 * values still reach the group's, in start order. */
START_TEST(group_spawn_values_in_start_order)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    atomic_int freed = 0;
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(
            fut_group_spawn_ex(g, task_value, FUT_TEST_PTR(i), NULL, 0), 0);
    ck_assert_int_eq(
        fut_group_spawn_ex(g, task_value, &freed, fut_test_count_free, 0), 0);
    fut_t *r = fut_group_close(g);
    void **values = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, (void **)&values), 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(FUT_TEST_INT(values[i]), i);
    ck_assert_ptr_eq(values[1000], &freed);
    ck_assert_int_eq(atomic_load(&freed), 1);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
}
END_TEST

/* Every refusal says why, adds nothing it should not, and runs free_arg
 * once: NULL arguments, a closed group, a cancelled one, a member whose
 * executor refuses it (which fails the group). */
START_TEST(group_spawn_refusals_return_their_codes)
{
    atomic_int freed = 0;
    ck_assert_int_eq(
        fut_group_spawn_ex(NULL, task_value, &freed, fut_test_count_free, 0),
        EINVAL);
    ck_assert_int_eq(atomic_load(&freed), 1);
    fut_group_t *g = fut_group_new(fut_inline_executor(), FUT_GROUP_ALL);
    ck_assert_int_eq(
        fut_group_spawn_ex(g, NULL, &freed, fut_test_count_free, 0), EINVAL);
    ck_assert_int_eq(atomic_load(&freed), 2);
    ck_assert(fut_group_cancel(g));
    ck_assert_int_eq(
        fut_group_spawn_ex(g, task_value, &freed, fut_test_count_free, 0),
        ECANCELED);
    ck_assert_int_eq(atomic_load(&freed), 3);
    fut_t *r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ECANCELED);
    ck_assert_int_eq(fut_group_spawn(g, task_value, NULL), EINVAL); /* closed */
    fut_release(r);
    fut_group_release(g);

    fut_executor_t *pool = fut_test_pool(1);
    g = fut_group_new(pool, FUT_GROUP_ALL);
    ck_assert_int_eq(fut_group_spawn(g, task_value, NULL), 0);
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_WAIT), 0);
    ck_assert_int_eq(
        fut_group_spawn_ex(g, task_value, &freed, fut_test_count_free, 0),
        ESHUTDOWN);
    ck_assert_int_eq(atomic_load(&freed), 4);
    r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ESHUTDOWN);
    fut_release(r);
    fut_group_release(g);
    fut_executor_free(pool);
}
END_TEST

START_TEST(group_bad_arguments)
{
    ck_assert_ptr_null(fut_group_new(NULL, 0));
    ck_assert_ptr_null(fut_group_new(fut_inline_executor(), 99));
    ck_assert_ptr_null(fut_group_child(NULL, 0));
    ck_assert_int_eq(fut_group_limit(NULL, 1), EINVAL);
    ck_assert_int_eq(fut_group_deadline(NULL, 1), EINVAL);
    ck_assert_int_eq(fut_group_add(NULL, fut_resolved(NULL, NULL)), EINVAL);
    ck_assert(!fut_group_cancel(NULL));
    fut_group_release(NULL);
    fut_t *r = fut_group_close(NULL);
    ck_assert_int_eq(fut_get(r, 0, NULL), EINVAL);
    fut_release(r);
    fut_group_t *g = fut_group_new(fut_inline_executor(), 0);
    atomic_int freed = 0;
    fut_t *f = fut_group_submit_ex(g, NULL, &freed, fut_test_count_free, 0);
    ck_assert_int_eq(fut_get(f, 0, NULL), EINVAL);
    ck_assert_int_eq(atomic_load(&freed), 1);
    fut_release(f);
    r = fut_group_close(g);
    ck_assert_int_eq(fut_get(r, 0, NULL), 0); /* no members: at once */
    fut_t *again = fut_group_close(g);
    ck_assert_int_eq(fut_get(again, 0, NULL), EALREADY);
    f = fut_group_submit_ex(g, task_value, &freed, fut_test_count_free, 0);
    ck_assert_int_eq(fut_get(f, 0, NULL), EINVAL); /* closed */
    ck_assert_int_eq(atomic_load(&freed), 2);
    ck_assert_int_eq(fut_group_add(g, fut_resolved(NULL, NULL)), EINVAL);
    fut_release(f);
    fut_release(again);
    fut_release(r);
    fut_group_release(g);
}
END_TEST

/* ------------------------------------------------- allocation failure */

typedef struct counting {
    atomic_long live, calls;
    long fail_at;
} counting_t;

static void *counting_alloc(size_t size, void *ctx)
{
    counting_t *c = ctx;
    long n = atomic_fetch_add(&c->calls, 1) + 1;
    if (n >= c->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&c->live, 1);
    return p;
}

static void counting_free(void *p, size_t size, void *ctx)
{
    (void)size;
    if (p) {
        atomic_fetch_sub(&((counting_t *)ctx)->live, 1);
        free(p);
    }
}

/* Every allocation from the Nth on fails, for every N: the calls report
 * ENOMEM or a rejected future, every free_arg runs once, nothing leaks. */
START_TEST(group_allocation_failure_at_every_site_loses_nothing)
{
    for (long n = 1; n < 400; n++) {
        counting_t c = {.fail_at = n};
        fut_allocator_t a = {counting_alloc, counting_free, &c};
        ck_assert_int_eq(fut_set_allocator(&a), 0);
        atomic_int freed = 0;
        int submitted = 0;
        fut_group_t *g = fut_group_new(fut_inline_executor(), FUT_GROUP_ALL);
        if (g != NULL) {
            for (int i = 0; i < 4; i++, submitted++)
                fut_release(fut_group_submit_ex(g, task_value, &freed,
                                                fut_test_count_free, 0));
            for (int i = 0; i < 2; i++, submitted++) {
                int rc = fut_group_spawn_ex(g, task_value, &freed,
                                            fut_test_count_free, 0);
                ck_assert_msg(rc == 0 || rc == ENOMEM, "n=%ld spawn rc=%d", n,
                              rc);
            }
            fut_t *r = fut_group_close(g);
            int rc = fut_get(r, FUT_FOREVER, NULL);
            ck_assert_msg(rc == 0 || rc == ENOMEM, "n=%ld rc=%d", n, rc);
            fut_release(r);
            fut_group_release(g);
        }
        ck_assert_int_eq(fut_set_allocator(NULL), 0);
        ck_assert_int_eq(atomic_load(&freed), submitted);
        ck_assert_msg(atomic_load(&c.live) == 0, "n=%ld: %ld objects leaked", n,
                      atomic_load(&c.live));
        if (atomic_load(&c.calls) < n)
            break; /* ran to the end without a failure */
    }
}
END_TEST

Suite *fut_test_group_suite(void)
{
    Suite *s = suite_create("group");
    TCase *tc = tcase_create("quick");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, group_all_collects_values_in_start_order);
    tcase_add_test(tc,
                   group_all_first_failure_cancels_others_and_waits_for_them);
    tcase_add_test(tc, group_all_error_counts_the_other_failures);
    tcase_add_test(tc, group_settled_returns_every_outcome);
    tcase_add_test(tc, group_race_first_success_cancels_the_rest);
    tcase_add_test(tc, group_race_rejects_when_every_member_failed);
    tcase_add_test(tc, group_cancel_reaches_running_and_queued_members);
    tcase_add_test(tc, group_deadline_cancels_members_and_rejects_etimedout);
    tcase_add_test(tc, group_nesting_three_levels_cancel_from_the_top);
    tcase_add_test(tc, group_limit_never_more_than_max_running);
    tcase_add_test(tc, group_limit_set_late_counts_the_members_already_running);
    tcase_add_test(tc, group_of_100k_members);
    tcase_add_test(tc, group_concurrent_adders_lose_no_member);
    tcase_add_test(tc, group_cancel_racing_completion_loses_nothing);
    tcase_add_test(tc, group_spawns_racing_a_cancel_keep_the_pool_counts_whole);
    tcase_add_test(tc, group_release_before_close_cancels_and_waits);
    tcase_add_test(tc, group_member_starts_a_sibling_through_current);
    tcase_add_test(tc, group_cancel_reaches_a_fiber_members_await);
    tcase_add_test(tc, group_all_failure_cancels_others_before_close);
    tcase_add_test(tc, group_all_adopted_failure_cancels_others_before_close);
    tcase_add_test(tc, group_close_counts_members_settled_before_and_after);
    tcase_add_test(tc, group_spawn_values_in_start_order);
    tcase_add_test(tc, group_spawn_refusals_return_their_codes);
    tcase_add_test(tc, group_bad_arguments);
    tcase_add_test(tc, group_allocation_failure_at_every_site_loses_nothing);
    suite_add_tcase(s, tc);
    return s;
}

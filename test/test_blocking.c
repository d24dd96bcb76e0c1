/*
 * test_blocking.c - wrapping blocking calls: tasks from outside a pool
 * start in submission order whenever a worker is free; a wait that timed
 * out is told apart from a future rejected with ETIMEDOUT; errors of other
 * domains (getaddrinfo, SQLite, the user's own) come back whole.
 */
#include "test_util.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

/* ------------------------------------------------ submission order */

/* A task that records when it started (its rank among starts), then
 * sleeps its own duration. */
typedef struct timed {
    atomic_int *starts; /* shared counter */
    int rank;           /* order in which it started, -1 before */
    int64_t started_ns;
    int sleep_ms;
} timed_t;

static void *task_timed(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    timed_t *t = arg;
    t->started_ns = fut_test_now_ns();
    t->rank = atomic_fetch_add(t->starts, 1);
    if (t->sleep_ms > 0)
        fut_test_sleep_ms(t->sleep_ms);
    return NULL;
}

/* Submits n tasks that each sleep 0, 10, 20 or 30 ms (seeded), in order,
 * recording their starts in t. */
static void submit_timed(fut_executor_t *pool, timed_t *t, fut_t **fs, int n,
                         atomic_int *starts, unsigned *seed)
{
    for (int i = 0; i < n; i++) {
        int ms = (int)(fut_test_rand(seed) % 4) * 10;
        t[i] = (timed_t){starts, -1, 0, ms};
    }
    for (int i = 0; i < n; i++)
        fs[i] = fut_submit(pool, task_timed, &t[i]);
}

/* No task started well (20 ms) before one submitted earlier. */
static void assert_started_in_order(const timed_t *t, int n, size_t workers)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            ck_assert_msg(
                t[j].started_ns >= t[i].started_ns - FUT_MS(20),
                "%zu workers: task %d started %lld ms before "
                "task %d, submitted earlier",
                workers, j,
                (long long)((t[i].started_ns - t[j].started_ns) / 1000000), i);
}

/* Two workers; A and C block 300 ms, B returns at once: B must not wait
 * behind A (one worker took A, B and C as a batch and the other stole C, so
 * B finished at 300 ms, every time). */
START_TEST(order_quick_task_between_two_blocking_ones_is_not_held_back)
{
    fut_executor_t *pool = fut_test_pool(2);
    atomic_int starts = 0;
    timed_t t[3] = {
        {&starts, -1, 0, 300},
        {&starts, -1, 0, 0},
        {&starts, -1, 0, 300},
    };
    int64_t t0 = fut_test_now_ns();
    fut_t *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = fut_submit(pool, task_timed, &t[i]);
    ck_assert_int_eq(fut_get(fs[1], FUT_FOREVER, NULL), 0);
    int64_t b_done = fut_test_now_ns() - t0;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
        fut_release(fs[i]);
    }
    fut_executor_free(pool);
    /* B starts as soon as the second worker is free: long before A ends.
     * 150 ms leaves room for a slow, shared machine. */
    ck_assert_msg(b_done < FUT_MS(150), "B finished after %lld ms",
                  (long long)(b_done / 1000000));
    ck_assert_int_lt(t[1].rank, t[2].rank);
}
END_TEST

/* Random blocking durations on 2..8 workers: no task submitted from
 * outside starts while an earlier one is still waiting for a worker.  Start
 * ranks come from the tasks themselves, so two workers that take tasks a
 * few microseconds apart may record them in either order; an inversion
 * counts only when the later task started well (20 ms) before the earlier
 * one did. */
START_TEST(order_external_tasks_start_in_submission_order)
{
    unsigned seed = fut_test_seed();
    enum { N = 48 };
    for (int round = 0; round < 4; round++) {
        size_t workers = 2 + fut_test_rand(&seed) % 7;
        fut_executor_t *pool = fut_test_pool(workers);
        atomic_int starts = 0;
        timed_t t[N];
        fut_t *fs[N];
        submit_timed(pool, t, fs, N, &starts, &seed);
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
            fut_release(fs[i]);
        }
        fut_executor_free(pool);
        assert_started_in_order(t, N, workers);
    }
}
END_TEST

/* 20,000 quick tasks, then random blocking durations on 2..4 workers, the
 * same check as above: order holds whatever state a burst of quick tasks
 * left the workers in.  (A pool that takes outside tasks in batches sized
 * by how fast the last ones ran fails here: the batches claimed right after
 * the quick tasks are large, and a worker runs its newer tasks while older
 * ones wait behind another worker's long task.) */
static void *task_quick(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

START_TEST(order_holds_after_quick_tasks_grew_the_batches)
{
    unsigned seed = fut_test_seed();
    enum { N = 48, QUICK = 20000 };
    fut_t **quick = malloc(QUICK * sizeof *quick);
    ck_assert_ptr_nonnull(quick);
    for (int round = 0; round < 4; round++) {
        size_t workers = 2 + fut_test_rand(&seed) % 3;
        fut_executor_t *pool = fut_test_pool(workers);
        for (int i = 0; i < QUICK; i++)
            quick[i] = fut_submit(pool, task_quick, NULL);
        atomic_int starts = 0;
        timed_t t[N];
        fut_t *fs[N];
        submit_timed(pool, t, fs, N, &starts, &seed);
        for (int i = 0; i < QUICK; i++) {
            ck_assert_int_eq(fut_get(quick[i], FUT_FOREVER, NULL), 0);
            fut_release(quick[i]);
        }
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
            fut_release(fs[i]);
        }
        fut_executor_free(pool);
        assert_started_in_order(t, N, workers);
    }
    free(quick);
}
END_TEST

/* Several threads submit thousands of tasks each while the pool's one
 * worker is held busy, so the shared queue grows through hundreds of
 * blocks, then drains; twice, so that the second burst reuses the blocks
 * the first one left.  Every task runs once, and each thread's tasks start
 * in the order that thread submitted them. */
enum { SUBMITTERS = 4, PER_SUBMITTER = 5000 };

typedef struct queued {
    atomic_int *clock;
    int rank; /* start order among all, -1 before */
    atomic_int ran;
} queued_t;

static void *task_queued(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    queued_t *q = arg;
    q->rank = atomic_fetch_add(q->clock, 1);
    atomic_fetch_add(&q->ran, 1);
    return NULL;
}

typedef struct submitter {
    fut_executor_t *pool;
    queued_t *q;
    fut_t **fs;
} submitter_t;

static void *submit_many(void *arg)
{
    submitter_t *s = arg;
    for (int i = 0; i < PER_SUBMITTER; i++)
        s->fs[i] = fut_submit(s->pool, task_queued, &s->q[i]);
    return NULL;
}

/* One round: a blocked worker while SUBMITTERS threads queue
 * PER_SUBMITTER tasks each; then every task starts once, each thread's in
 * its order. */
static void many_submitters_round(fut_executor_t *pool, queued_t *q, fut_t **fs,
                                  int round)
{
    atomic_int clock = 0;
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    fut_t *blocker = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1);
    pthread_t th[SUBMITTERS];
    submitter_t sub[SUBMITTERS];
    for (int k = 0; k < SUBMITTERS; k++) {
        for (int i = 0; i < PER_SUBMITTER; i++) {
            queued_t *e = &q[k * PER_SUBMITTER + i];
            e->clock = &clock;
            e->rank = -1;
            atomic_init(&e->ran, 0);
        }
        sub[k] =
            (submitter_t){pool, &q[k * PER_SUBMITTER], &fs[k * PER_SUBMITTER]};
        ck_assert_int_eq(pthread_create(&th[k], NULL, submit_many, &sub[k]), 0);
    }
    for (int k = 0; k < SUBMITTERS; k++)
        pthread_join(th[k], NULL);
    fut_test_latch_open(&b.latch);
    for (int k = 0; k < SUBMITTERS; k++) {
        int last = -1;
        for (int i = 0; i < PER_SUBMITTER; i++) {
            int j = k * PER_SUBMITTER + i;
            ck_assert_int_eq(fut_get(fs[j], FUT_FOREVER, NULL), 0);
            ck_assert_int_eq(atomic_load(&q[j].ran), 1);
            ck_assert_msg(q[j].rank > last,
                          "round %d, submitter %d: task %d started at %d, "
                          "after a later one at %d",
                          round, k, i, q[j].rank, last);
            last = q[j].rank;
            fut_release(fs[j]);
        }
    }
    ck_assert_int_eq(atomic_load(&clock), SUBMITTERS * PER_SUBMITTER);
    ck_assert_int_eq(fut_get(blocker, FUT_FOREVER, NULL), 0);
    fut_release(blocker);
    fut_test_blocker_destroy(&b);
}

enum { STREAMED = 40 * 255 };

/* One round: STREAMED tasks submitted about 100 ns apart while the worker
 * keeps up; every task starts once, in submission order. */
static void streaming_round(fut_executor_t *pool, queued_t *q, fut_t **fs,
                            int round)
{
    atomic_int clock = 0;
    int64_t at = fut_test_now_ns();
    for (int i = 0; i < STREAMED; i++) {
        q[i].clock = &clock;
        q[i].rank = -1;
        atomic_init(&q[i].ran, 0);
        while (fut_test_now_ns() - at < 100)
            ;
        at = fut_test_now_ns();
        fs[i] = fut_submit(pool, task_queued, &q[i]);
    }
    int last = -1;
    for (int i = 0; i < STREAMED; i++) {
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
        ck_assert_int_eq(atomic_load(&q[i].ran), 1);
        ck_assert_msg(q[i].rank > last,
                      "round %d: task %d started at %d, after a later one "
                      "at %d",
                      round, i, q[i].rank, last);
        last = q[i].rank;
        fut_release(fs[i]);
    }
    ck_assert_int_eq(atomic_load(&clock), STREAMED);
}

static queued_t *queued_new(size_t n, fut_t ***fs)
{
    queued_t *q = calloc(n, sizeof *q);
    *fs = calloc(n, sizeof **fs);
    ck_assert(q && *fs);
    return q;
}

typedef void round_fn(fut_executor_t *pool, queued_t *q, fut_t **fs, int round);

/* rounds rounds of round on one 1-worker pool, with room for n tasks. */
static void run_rounds(round_fn *round, size_t n, int rounds)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_t **fs;
    queued_t *q = queued_new(n, &fs);
    for (int r = 0; r < rounds; r++)
        round(pool, q, fs, r);
    fut_executor_free(pool);
    free(q);
    free(fs);
}

START_TEST(order_holds_across_the_queue_blocks_with_many_submitters)
{
    run_rounds(many_submitters_round, SUBMITTERS * PER_SUBMITTER, 2);
}
END_TEST

/* A submitter that streams while the worker keeps up: the queue stays
 * short and fast, which is when its blocks spread their tasks one to a
 * cache line (util/segq.h, Layout), so this goes through spread blocks and
 * the switches between layouts when the timing allows. */
START_TEST(order_holds_while_the_worker_keeps_up_with_a_streaming_submitter)
{
    run_rounds(streaming_round, STREAMED, 3);
}
END_TEST

/* Both layouts of the queue's blocks, fixed through FUT_QUEUE_LAYOUT
 * whatever the timing: a long queue across many blocks from several
 * threads, and a streamed one, each in order and once. */
START_TEST(order_holds_in_either_queue_layout)
{
    static const char *const layouts[] = {"spread", "packed"};
    size_t n = SUBMITTERS * PER_SUBMITTER > STREAMED
                   ? SUBMITTERS * PER_SUBMITTER
                   : STREAMED;
    fut_t **fs;
    queued_t *q = queued_new(n, &fs);
    for (int l = 0; l < 2; l++) {
        ck_assert_int_eq(setenv("FUT_QUEUE_LAYOUT", layouts[l], 1), 0);
        fut_executor_t *pool = fut_test_pool(1);
        ck_assert_int_eq(unsetenv("FUT_QUEUE_LAYOUT"), 0);
        many_submitters_round(pool, q, fs, l);
        streaming_round(pool, q, fs, l);
        fut_executor_free(pool);
    }
    free(q);
    free(fs);
}
END_TEST

/* ------------------------------------------------- unambiguous waits */

static void *task_fail_timedout(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    return fut_fail(ctx, ETIMEDOUT, "connect timed out");
}

/* fut_get says FUT_TIMEDOUT when its own wait ran out, and ETIMEDOUT when
 * the future rejected with ETIMEDOUT (a connect timeout): one call tells
 * them apart. */
START_TEST(get_tells_a_timed_out_wait_from_an_etimedout_rejection)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    void *v = &v;
    ck_assert_int_eq(fut_get(f, 0, &v), FUT_TIMEDOUT);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(fut_get(f, FUT_MS(5), NULL), FUT_TIMEDOUT);
    ck_assert_int_eq(fut_state(f), FUT_PENDING);

    fut_t *g = fut_submit(fut_inline_executor(), task_fail_timedout, NULL);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), ETIMEDOUT);
    ck_assert_int_eq(fut_get(g, 0, NULL), ETIMEDOUT);
    ck_assert_int_ne(FUT_TIMEDOUT, ETIMEDOUT);
    ck_assert_int_lt(FUT_TIMEDOUT, 0); /* no errno code is negative */

    /* fut_within's own deadline is a rejection with ETIMEDOUT. */
    fut_t *w = fut_within(fut_retain(f), FUT_MS(1));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), ETIMEDOUT);
    fut_release(w);
    fut_release(g);
    fut_release(f);
    fut_promise_release(p);
}
END_TEST

/* ------------------------------------------------------ error domains */

static void *h_value(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx, (void)arg;
    return value;
}

static void *task_gai(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    return fut_fail_in(ctx, FUT_DOMAIN_GETADDRINFO, EAI_NONAME, NULL);
}

static void *task_sqlite_error(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    /* SQLITE_ERROR is 1, which is also EPERM: the domain tells them apart. */
    return fut_fail_in(ctx, FUT_DOMAIN_SQLITE, 1, "no such table: %s", "t");
}

START_TEST(foreign_error_codes_come_back_with_their_domain_and_message)
{
    fut_executor_t *ex = fut_inline_executor();
    fut_t *g = fut_submit(ex, task_gai, NULL);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), FUT_EFOREIGN);
    const fut_error_t *e = fut_error(g);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->domain, FUT_DOMAIN_GETADDRINFO);
    ck_assert_int_eq(e->code, EAI_NONAME);
    ck_assert_str_eq(e->message, gai_strerror(EAI_NONAME));

    fut_t *s = fut_submit(ex, task_sqlite_error, NULL);
    ck_assert_int_eq(fut_get(s, FUT_FOREVER, NULL), FUT_EFOREIGN);
    e = fut_error(s);
    ck_assert_int_eq(e->domain, FUT_DOMAIN_SQLITE);
    ck_assert_int_eq(e->code, 1);
    ck_assert_str_eq(e->message, "no such table: t");

    /* errno stays the default domain. */
    fut_t *r = fut_rejected(EPERM, "not allowed");
    ck_assert_int_eq(fut_get(r, 0, NULL), EPERM);
    ck_assert_int_eq(fut_error(r)->domain, FUT_DOMAIN_ERRNO);

    /* Promises and born-rejected futures take domains too, and the error
     * passes down a chain and through a combinator unchanged. */
    fut_promise_t *p = fut_promise_new();
    ck_assert_int_eq(fut_reject_in(p, FUT_DOMAIN_USER + 7, -42, "mine %d", 42),
                     0);
    fut_t *chained = fut_then(fut_promise_future(p), h_value, NULL);
    ck_assert_int_eq(fut_get(chained, 0, NULL), FUT_EFOREIGN);
    ck_assert_int_eq(fut_error(chained)->domain, FUT_DOMAIN_USER + 7);
    ck_assert_int_eq(fut_error(chained)->code, -42);
    fut_t *in[2] = {fut_promise_future(p),
                    fut_rejected_in(FUT_DOMAIN_USER, 3, NULL)};
    fut_t *all = fut_when_all(in, 2);
    ck_assert_int_eq(fut_get(all, FUT_FOREVER, NULL), FUT_EFOREIGN);
    ck_assert_int_eq(fut_error(all)->domain, FUT_DOMAIN_USER + 7);
    ck_assert_int_eq(fut_error(all)->code, -42);
    ck_assert_str_eq(fut_error(all)->message, "mine 42");

    /* Bad domains and a zero code are refused, not stored. */
    ck_assert_int_eq(fut_reject_in(p, -1, 5, NULL), EINVAL);
    fut_t *z = fut_rejected_in(FUT_DOMAIN_USER, 0, NULL);
    ck_assert_int_eq(fut_get(z, 0, NULL), EINVAL);

    fut_release(z);
    fut_release(chained);
    fut_release(all);
    fut_promise_release(p);
    fut_release(r);
    fut_release(s);
    fut_release(g);
}
END_TEST

/* ------------------------------------------------- elastic capacity */

/* Blocks on the latch, counting how many run at once (peak). */
typedef struct gate {
    fut_test_latch_t latch;
    atomic_int inside, peak;
} gate_t;

static void gate_init(gate_t *g)
{
    fut_test_latch_init(&g->latch);
    atomic_init(&g->inside, 0);
    atomic_init(&g->peak, 0);
}

static void *task_gate(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    gate_t *g = arg;
    int now = atomic_fetch_add(&g->inside, 1) + 1;
    int peak = atomic_load(&g->peak);
    while (now > peak && !atomic_compare_exchange_weak(&g->peak, &peak, now))
        ;
    fut_test_latch_wait(&g->latch);
    atomic_fetch_sub(&g->inside, 1);
    return NULL;
}

/* Declares itself blocking from inside, as ManagedBlocker does. */
static void *task_gate_declared(fut_ctx_t *ctx, void *arg)
{
    int rc = fut_blocking_begin();
    if (rc != 0)
        return fut_fail(ctx, rc, "fut_blocking_begin");
    void *r = task_gate(ctx, arg);
    fut_blocking_end();
    return r;
}

static fut_executor_t *elastic_pool(size_t threads, size_t max_threads)
{
    fut_pool_config_t cfg = {.threads = threads,
                             .max_threads = max_threads,
                             .keep_alive = FUT_MS(50)};
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), 0);
    return pool;
}

/* With every worker in a declared blocking call, short tasks still run:
 * the pool starts threads so that `threads` workers stay runnable, and
 * retires them after the keep-alive once the calls return. */
static void check_compensation(fut_fn blocker, unsigned flags)
{
    enum { BLOCKED = 4, QUICK = 200 };
    fut_executor_t *pool = elastic_pool(2, 16);
    gate_t g;
    gate_init(&g);
    fut_t *slow[BLOCKED];
    for (int i = 0; i < BLOCKED; i++)
        slow[i] = fut_submit_ex(pool, blocker, &g, NULL, flags);
    fut_test_wait_atomic(&g.inside, BLOCKED);
    fut_t *quick[QUICK];
    for (int i = 0; i < QUICK; i++)
        quick[i] = fut_submit(pool, task_quick, FUT_TEST_PTR(i));
    for (int i = 0; i < QUICK; i++) {
        void *v = NULL;
        ck_assert_int_eq(fut_get(quick[i], FUT_S(20), &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), i);
        fut_release(quick[i]);
    }
    fut_stats_t st;
    ck_assert_int_eq(fut_executor_stats(pool, &st), 0);
    ck_assert_uint_eq(st.blocked, BLOCKED);
    ck_assert_uint_ge(st.threads, 2 + BLOCKED);
    ck_assert_uint_ge(st.spawned, BLOCKED);
    fut_test_latch_open(&g.latch);
    for (int i = 0; i < BLOCKED; i++) {
        ck_assert_int_eq(fut_get(slow[i], FUT_FOREVER, NULL), 0);
        fut_release(slow[i]);
    }
    /* The extra threads retire after the keep-alive. */
    FUT_TEST_WAIT_UNTIL(fut_executor_stats(pool, &st) == 0 && st.threads == 2,
                        "the extra threads to retire");
    ck_assert_uint_eq(st.blocked, 0);
    fut_executor_free(pool);
    fut_test_latch_destroy(&g.latch);
}

START_TEST(elastic_pool_runs_short_tasks_while_blocking_tasks_hold_workers)
{
    check_compensation(task_gate, FUT_BLOCKING);
}
END_TEST

START_TEST(elastic_blocking_begin_inside_a_task_compensates)
{
    check_compensation(task_gate_declared, 0);
}
END_TEST

/* Never more than max_threads threads: the blocking tasks beyond it wait
 * for a worker (and are counted by the tasks themselves). */
START_TEST(elastic_pool_never_exceeds_max_threads)
{
    fut_executor_t *pool = elastic_pool(1, 3);
    gate_t g;
    gate_init(&g);
    fut_t *fs[6];
    for (int i = 0; i < 6; i++)
        fs[i] = fut_submit_ex(pool, task_gate, &g, NULL, FUT_BLOCKING);
    fut_test_wait_atomic(&g.inside, 3);
    fut_test_sleep_ms(50); /* room for a fourth, which must not come */
    fut_stats_t st;
    ck_assert_int_eq(fut_executor_stats(pool, &st), 0);
    ck_assert_uint_le(st.threads, 3);
    ck_assert_int_eq(atomic_load(&g.inside), 3);
    fut_test_latch_open(&g.latch);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
        fut_release(fs[i]);
    }
    ck_assert_int_eq(atomic_load(&g.peak), 3);
    fut_executor_free(pool);
    fut_test_latch_destroy(&g.latch);
}
END_TEST

/* Outside a pool worker there is nothing to compensate: the calls do
 * nothing and say so with 0. */
START_TEST(elastic_blocking_calls_outside_a_pool_do_nothing)
{
    ck_assert_int_eq(fut_blocking_begin(), 0);
    fut_blocking_end();
    fut_blocking_end(); /* unmatched: ignored */
}
END_TEST

/* worker_init learns its worker's index: 0..threads-1, each once. */
static atomic_int seen_index[8];

static int init_index(void *arg)
{
    (void)arg;
    int i = fut_pool_worker_index();
    if (i >= 0 && i < 8)
        atomic_fetch_add(&seen_index[i], 1);
    return 0;
}

START_TEST(worker_init_learns_its_worker_index)
{
    for (int i = 0; i < 8; i++)
        atomic_store(&seen_index[i], 0);
    fut_pool_config_t cfg = {.threads = 4, .worker_init = init_index};
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), 0);
    fut_executor_free(pool); /* joins: every init has run */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(atomic_load(&seen_index[i]), 1);
    for (int i = 4; i < 8; i++)
        ck_assert_int_eq(atomic_load(&seen_index[i]), 0);
    ck_assert_int_eq(fut_pool_worker_index(), -1);
}
END_TEST

/* ----------------------------------------------------------- timers */

static void record_thread_name(fut_t *f, void *arg)
{
    (void)f;
    char *name = arg;
    pthread_getname_np(pthread_self(), name, 16);
}

/* No user code runs on the timer thread ("fut-clock"): a delay's callback
 * runs on fut's timer executor. */
START_TEST(timer_callbacks_do_not_run_on_the_timer_thread)
{
    char name[16] = "";
    fut_t *d = fut_delay(FUT_MS(1));
    ck_assert_int_eq(fut_on_done(d, record_thread_name, name), 0);
    ck_assert_int_eq(fut_wait(d, FUT_FOREVER), 0);
    FUT_TEST_WAIT_UNTIL(name[0] != '\0', "the callback");
    ck_assert_str_ne(name, "fut-clock");
    ck_assert_msg(strncmp(name, "fut-timer", 9) == 0, "ran on %s", name);
    fut_release(d);
}
END_TEST

static void *h_sleep_500ms(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx, (void)arg;
    fut_test_sleep_ms(500);
    return value;
}

/* A 500 ms handler on one delay does not hold back another timer: the
 * fut_within(50 ms) below settled at 490 ms when handlers ran on the timer
 * thread. */
START_TEST(timer_blocking_handler_delays_no_other_timer)
{
    fut_t *slow = fut_then(fut_delay(FUT_MS(5)), h_sleep_500ms, NULL);
    fut_test_sleep_ms(20); /* the handler is running now */
    fut_promise_t *p = fut_promise_new();
    int64_t t0 = fut_test_now_ns();
    fut_t *w = fut_within(fut_promise_future(p), FUT_MS(50));
    ck_assert_int_eq(fut_get(w, FUT_FOREVER, NULL), ETIMEDOUT);
    int64_t took = fut_test_now_ns() - t0;
    ck_assert_msg(took < FUT_MS(300), "fut_within(50 ms) took %lld ms",
                  (long long)(took / 1000000));
    ck_assert_int_eq(fut_get(slow, FUT_FOREVER, NULL), 0);
    fut_release(w);
    fut_release(slow);
    fut_promise_release(p);
}
END_TEST

static void note_thread(fut_t *f, void *arg)
{
    (void)f;
    atomic_store((atomic_int *)arg, fut_test_thread_id());
}

/* Timeouts handed back to the caller's own loop thread. */
START_TEST(timer_on_loop_executor_settles_on_the_loop_thread)
{
    fut_executor_t *loop = NULL;
    ck_assert_int_eq(fut_loop_new(&loop), 0);
    fut_t *d = fut_delay_on(loop, FUT_MS(1));
    atomic_int thread = 0;
    ck_assert_int_eq(fut_on_done(d, note_thread, &thread), 0);
    fut_test_sleep_ms(20); /* past the deadline, but nobody ran the loop */
    ck_assert_int_eq(fut_state(d), FUT_PENDING);
    ck_assert_int_eq(fut_loop_run_until(loop, d, FUT_S(20)), 0);
    ck_assert_int_eq(fut_state(d), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&thread), fut_test_thread_id());
    fut_release(d);
    fut_promise_t *p = fut_promise_new();
    fut_t *w = fut_within_on(loop, fut_promise_future(p), FUT_MS(1));
    ck_assert_int_eq(fut_loop_run_until(loop, w, FUT_S(20)), 0);
    ck_assert_int_eq(fut_get(w, 0, NULL), ETIMEDOUT);
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), EALREADY); /* cancelled */
    fut_release(w);
    fut_promise_release(p);
    fut_executor_free(loop);
}
END_TEST

/* An executor shut down before the deadline: the timer rejects with its
 * code; a NULL executor is refused. */
START_TEST(timer_on_shut_down_executor_rejects_eshutdown)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *d = fut_delay_on(pool, FUT_MS(5));
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_WAIT), 0);
    ck_assert_int_eq(fut_get(d, FUT_FOREVER, NULL), ESHUTDOWN);
    fut_release(d);
    fut_executor_free(pool);
    fut_t *bad = fut_delay_on(NULL, 1);
    ck_assert_int_eq(fut_get(bad, 0, NULL), EINVAL);
    fut_release(bad);
    bad = fut_within_on(NULL, fut_resolved(NULL, NULL), 1);
    ck_assert_int_eq(fut_get(bad, 0, NULL), EINVAL);
    fut_release(bad);
}
END_TEST

Suite *fut_test_blocking_suite(void)
{
    Suite *s = suite_create("blocking");
    TCase *tc = tcase_create("quick");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc,
                   order_quick_task_between_two_blocking_ones_is_not_held_back);
    tcase_add_test(tc, order_external_tasks_start_in_submission_order);
    tcase_add_test(tc, order_holds_after_quick_tasks_grew_the_batches);
    tcase_add_test(tc,
                   order_holds_across_the_queue_blocks_with_many_submitters);
    tcase_add_test(
        tc, order_holds_while_the_worker_keeps_up_with_a_streaming_submitter);
    tcase_add_test(tc, order_holds_in_either_queue_layout);
    tcase_add_test(tc, get_tells_a_timed_out_wait_from_an_etimedout_rejection);
    tcase_add_test(tc,
                   foreign_error_codes_come_back_with_their_domain_and_message);
    tcase_add_test(
        tc, elastic_pool_runs_short_tasks_while_blocking_tasks_hold_workers);
    tcase_add_test(tc, elastic_blocking_begin_inside_a_task_compensates);
    tcase_add_test(tc, elastic_pool_never_exceeds_max_threads);
    tcase_add_test(tc, elastic_blocking_calls_outside_a_pool_do_nothing);
    tcase_add_test(tc, worker_init_learns_its_worker_index);
    tcase_add_test(tc, timer_callbacks_do_not_run_on_the_timer_thread);
    tcase_add_test(tc, timer_blocking_handler_delays_no_other_timer);
    tcase_add_test(tc, timer_on_loop_executor_settles_on_the_loop_thread);
    tcase_add_test(tc, timer_on_shut_down_executor_rejects_eshutdown);
    suite_add_tcase(s, tc);
    return s;
}

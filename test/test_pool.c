/*
 * test_pool.c - the thread pool and the inline executor: threads, names,
 * initializer and finalizer, broken pools, shutdown (wait, cancel pending,
 * submit after), the bounded queue and FUT_NOWAIT, nested waits (rule 7:
 * no deadlock from waiting inside a task),
 * stats counters.
 */
#include "test_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fut_executor_t *new_pool_cfg(const fut_pool_config_t *cfg)
{
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(cfg, &pool), 0);
    ck_assert_ptr_nonnull(pool);
    return pool;
}

static fut_stats_t stats_of(fut_executor_t *ex)
{
    fut_stats_t st;
    memset(&st, 0xab, sizeof st);
    ck_assert_int_eq(fut_executor_stats(ex, &st), 0);
    return st;
}

/* A task that meets n-1 others (and maybe the test thread) at a barrier,
 * proving they all run at once, and records its thread's name. */
typedef struct meet {
    fut_test_barrier_t *barrier;
    char name[16];
    int thread;
} meet_t;

static void *task_meet(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    meet_t *m = arg;
    m->thread = fut_test_thread_id();
    pthread_getname_np(pthread_self(), m->name, sizeof m->name);
    fut_test_barrier_wait(m->barrier);
    return NULL;
}

/* Runs n tasks that must all be running at once on pool (fails by timeout
 * if the pool has fewer than n threads); fills ms. */
static void meet_on(fut_executor_t *pool, meet_t *ms, size_t n)
{
    fut_test_barrier_t b;
    fut_test_barrier_init(&b, (unsigned)n + 1);
    fut_t **fs = calloc(n, sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    for (size_t i = 0; i < n; i++) {
        ms[i].barrier = &b;
        fs[i] = fut_submit(pool, task_meet, &ms[i]);
    }
    fut_test_barrier_wait(&b);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
        fut_release(fs[i]);
    }
    free(fs);
    fut_test_barrier_destroy(&b);
}

/* ------------------------------------------------------ creation */

START_TEST(rule2_pool_new_null_out_is_einval)
{
    fut_pool_config_t cfg = {.threads = 1};
    ck_assert_int_eq(fut_pool_new(&cfg, NULL), EINVAL);
    ck_assert_int_eq(fut_pool_new(NULL, NULL), EINVAL);
    fut_executor_free(NULL); /* no-op */
    ck_assert_int_eq(fut_executor_shutdown(NULL, 0), EINVAL);
    ck_assert_int_eq(fut_executor_shutdown(NULL, FUT_SHUTDOWN_WAIT), EINVAL);
    fut_stats_t st;
    ck_assert_int_eq(fut_executor_stats(NULL, &st), EINVAL);
    fut_executor_t *pool = fut_test_pool(1);
    ck_assert_int_eq(fut_executor_stats(pool, NULL), EINVAL);
    fut_executor_free(pool);
}
END_TEST

START_TEST(pool_default_config_runs_tasks)
{
    fut_executor_t *pool = new_pool_cfg(NULL);
    fut_t *f = fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(42));
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 42);
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

START_TEST(pool_runs_configured_threads_concurrently)
{
    enum { N = 4 };
    fut_executor_t *pool = fut_test_pool(N);
    meet_t ms[N];
    meet_on(pool, ms, N);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            ck_assert_int_ne(ms[i].thread, ms[j].thread);
    fut_stats_t st = stats_of(pool);
    ck_assert_uint_eq(st.threads, N);
    fut_executor_free(pool);
}
END_TEST

START_TEST(pool_zero_threads_means_one_per_cpu)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert(cpus > 0);
    fut_pool_config_t cfg = {.threads = 0};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    meet_t *ms = calloc((size_t)cpus, sizeof *ms);
    ck_assert_ptr_nonnull(ms);
    meet_on(pool, ms, (size_t)cpus);
    fut_stats_t st = stats_of(pool);
    ck_assert_uint_eq(st.threads, (size_t)cpus);
    free(ms);
    fut_executor_free(pool);
}
END_TEST

/* --------------------------------------------------- thread names */

static bool is_worker_name(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || name[n] != '-' || name[n + 1] == '\0')
        return false;
    for (const char *c = name + n + 1; *c; c++)
        if (*c < '0' || *c > '9')
            return false;
    return true;
}

START_TEST(pool_threads_are_named_prefix_index)
{
    fut_pool_config_t cfg = {.threads = 2, .name = "tpool"};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    meet_t ms[2];
    meet_on(pool, ms, 2);
    ck_assert_msg(is_worker_name(ms[0].name, "tpool"), "thread name \"%s\"",
                  ms[0].name);
    ck_assert_msg(is_worker_name(ms[1].name, "tpool"), "thread name \"%s\"",
                  ms[1].name);
    ck_assert_str_ne(ms[0].name, ms[1].name);
    fut_executor_free(pool);

    pool = fut_test_pool(2); /* default prefix "fut" */
    meet_on(pool, ms, 2);
    ck_assert_msg(is_worker_name(ms[0].name, "fut"), "thread name \"%s\"",
                  ms[0].name);
    ck_assert_msg(is_worker_name(ms[1].name, "fut"), "thread name \"%s\"",
                  ms[1].name);
    ck_assert_str_ne(ms[0].name, ms[1].name);
    fut_executor_free(pool);
}
END_TEST

START_TEST(pool_long_thread_name_cut_to_15_bytes)
{
    const char *longname = "averyveryverylongpoolname";
    fut_pool_config_t cfg = {.threads = 1, .name = longname};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    meet_t m;
    meet_on(pool, &m, 1);
    fut_executor_free(pool);
    ck_assert_msg(
        strlen(m.name) == 15 && strncmp(m.name, longname, 15) == 0,
        "thread name \"%s\", want the first 15 bytes of \"%s-<index>\"", m.name,
        longname);
}
END_TEST

/* ----------------------------------------- initializer, finalizer */

typedef struct initlog {
    atomic_int inits;
    atomic_int exits;
    atomic_int bad;       /* worker_arg mismatch, or ran on the test thread */
    atomic_int fail_from; /* the init call numbered >= this fails (0: never) */
    int code;
    int main_thread;
} initlog_t;

static void initlog_init(initlog_t *l, int fail_from, int code)
{
    atomic_init(&l->inits, 0);
    atomic_init(&l->exits, 0);
    atomic_init(&l->bad, 0);
    atomic_init(&l->fail_from, fail_from);
    l->code = code;
    l->main_thread = fut_test_thread_id();
}

static int worker_init(void *arg)
{
    initlog_t *l = arg;
    if (fut_test_thread_id() == l->main_thread)
        atomic_fetch_add(&l->bad, 1);
    int n = atomic_fetch_add(&l->inits, 1) + 1;
    int from = atomic_load(&l->fail_from);
    return from > 0 && n >= from ? l->code : 0;
}

static void worker_exit(void *arg)
{
    initlog_t *l = arg;
    if (fut_test_thread_id() == l->main_thread)
        atomic_fetch_add(&l->bad, 1);
    atomic_fetch_add(&l->exits, 1);
}

START_TEST(pool_worker_init_and_exit_run_once_per_worker)
{
    enum { N = 3 };
    initlog_t l;
    initlog_init(&l, 0, 0);
    fut_pool_config_t cfg = {.threads = N,
                             .worker_init = worker_init,
                             .worker_exit = worker_exit,
                             .worker_arg = &l};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    meet_t ms[N];
    meet_on(pool, ms, N); /* every worker has started and taken work */
    ck_assert_int_eq(atomic_load(&l.inits), N);
    ck_assert_int_eq(atomic_load(&l.exits), 0);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&l.inits), N);
    ck_assert_int_eq(atomic_load(&l.exits), N);
    ck_assert_int_eq(atomic_load(&l.bad), 0);
}
END_TEST

START_TEST(pool_failing_initializer_breaks_pool)
{
    initlog_t l;
    initlog_init(&l, 1, EIO); /* every init fails */
    fut_pool_config_t cfg = {.threads = 2,
                             .worker_init = worker_init,
                             .worker_exit = worker_exit,
                             .worker_arg = &l};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    enum { N = 4 };
    fut_t *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = fut_submit_ex(pool, fut_test_task_counted, &rf,
                              fut_test_counted_free, 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), EIO);
        ck_assert_int_eq(fut_state(fs[i]), FUT_REJECTED);
        fut_release(fs[i]);
    }
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), N);
    fut_stats_t st = stats_of(pool);
    ck_assert_int_eq(st.broken, EIO);
    /* Later submits reject with the initializer's code too. */
    fut_t *f = fut_submit_ex(pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), EIO);
    fut_release(f);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), N + 1);
    ck_assert_int_eq(atomic_load(&l.exits), 0); /* no init succeeded */
    ck_assert_int_eq(atomic_load(&l.bad), 0);
}
END_TEST

START_TEST(pool_one_failing_initializer_breaks_pool)
{
    initlog_t l;
    initlog_init(&l, 2, ENODEV); /* the second worker's init fails */
    fut_pool_config_t cfg = {.threads = 3,
                             .worker_init = worker_init,
                             .worker_exit = worker_exit,
                             .worker_arg = &l};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    /* The first task may run on the good worker or reject. */
    fut_t *first = fut_submit(pool, fut_test_task_identity, NULL);
    int rc = fut_get(first, FUT_FOREVER, NULL);
    ck_assert_msg(rc == 0 || rc == ENODEV, "first task settled with %d", rc);
    fut_release(first);
    FUT_TEST_WAIT_UNTIL(stats_of(pool).broken != 0,
                        "the pool to report it is broken");
    ck_assert_int_eq(stats_of(pool).broken, ENODEV);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_t *f = fut_submit_ex(pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), ENODEV);
    fut_release(f);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    /* worker_exit ran on exactly the workers whose init succeeded. */
    int inits = atomic_load(&l.inits);
    ck_assert_int_ge(inits, 2);
    ck_assert_int_eq(atomic_load(&l.exits), 1);
    ck_assert_int_eq(atomic_load(&l.bad), 0);
}
END_TEST

/* ------------------------------------------------------- shutdown */

START_TEST(pep3148_shutdown_runs_queued_tasks)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    fut_executor_t *pool = fut_test_pool(1);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_t *a = fut_submit(pool, fut_test_task_block, &b);
    fut_t *q1 =
        fut_submit_ex(pool, fut_test_task_identity, FUT_TEST_PTR(2), NULL, 0);
    fut_t *q2 = fut_submit_ex(pool, fut_test_task_counted, &rf,
                              fut_test_counted_free, 0);
    fut_test_wait_atomic(&b.started, 1);
    ck_assert_int_eq(fut_executor_shutdown(pool, 0), 0);
    ck_assert(stats_of(pool).shutdown);
    ck_assert_int_eq(fut_state(q1), FUT_PENDING);
    fut_test_latch_open(&b.latch);
    void *v = NULL;
    ck_assert_int_eq(fut_get(q1, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    ck_assert_int_eq(fut_get(q2, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, NULL), 0);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&rf.ran), 1);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    fut_release(a);
    fut_release(q1);
    fut_release(q2);
    fut_test_blocker_destroy(&b);
}
END_TEST

START_TEST(pep3148_submit_after_shutdown_is_eshutdown)
{
    fut_executor_t *pool = fut_test_pool(2);
    ck_assert_int_eq(fut_executor_shutdown(pool, 0), 0);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_t *f = fut_submit_ex(pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    ck_assert_ptr_nonnull(f);
    /* Rejected before it ran: free_arg ran on this thread, already. */
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert_int_eq(fut_get(f, 0, NULL), ESHUTDOWN);
    fut_release(f);
    f = fut_submit_ex(pool, fut_test_task_counted, &rf, fut_test_counted_free,
                      FUT_NOWAIT);
    ck_assert_int_eq(fut_get(f, 0, NULL), ESHUTDOWN);
    fut_release(f);
    f = fut_submit(pool, fut_test_task_identity, NULL);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), ESHUTDOWN);
    fut_release(f);
    /* Shutting down again is fine. */
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_WAIT), 0);
    ck_assert_int_eq(fut_executor_shutdown(
                         pool, FUT_SHUTDOWN_WAIT | FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    fut_stats_t st = stats_of(pool);
    ck_assert(st.shutdown);
    ck_assert_uint_eq(st.submitted, 0); /* rejected submits are not accepted */
    ck_assert_uint_eq(st.threads, 0);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), 2);
}
END_TEST

START_TEST(pep3148_shutdown_wait_returns_after_workers_exit)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    initlog_t l;
    initlog_init(&l, 0, 0);
    fut_pool_config_t cfg = {.threads = 2,
                             .worker_init = worker_init,
                             .worker_exit = worker_exit,
                             .worker_arg = &l};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    fut_t *a = fut_submit(pool, fut_test_task_block, &b);
    enum { N = 6 };
    fut_t *q[N];
    for (int i = 0; i < N; i++)
        q[i] = fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(i));
    fut_test_wait_atomic(&b.started, 1);
    fut_test_latch_open(&b.latch);
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_WAIT), 0);
    /* Every queued task ran and every worker has exited. */
    ck_assert_int_eq(atomic_load(&l.exits), atomic_load(&l.inits));
    fut_stats_t st = stats_of(pool);
    ck_assert_uint_eq(st.threads, 0);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert(st.shutdown);
    ck_assert_int_eq(fut_state(a), FUT_FULFILLED);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(fut_state(q[i]), FUT_FULFILLED);
        fut_release(q[i]);
    }
    fut_release(a);
    fut_executor_free(pool);
    fut_test_blocker_destroy(&b);
}
END_TEST

START_TEST(pep3148_shutdown_cancel_pending_cancels_queued_tasks)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 5);
    fut_executor_t *pool = fut_test_pool(1);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_test_tracker_t args;
    fut_test_tracker_init(&args);
    fut_t *a = fut_submit(pool, fut_test_task_block, &b);
    enum { N = 5 };
    fut_t *q[N];
    fut_test_wait_atomic(&b.started, 1);
    for (int i = 0; i < N; i++)
        q[i] = fut_submit_ex(pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    fut_t *o = fut_submit_ex(pool, fut_test_task_identity,
                             fut_test_obj_new(&args, 0), fut_test_obj_free, 0);
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    /* The queued tasks are cancelled now, their args freed on this thread. */
    ck_assert_int_eq(atomic_load(&rf.freed), N);
    ck_assert_int_eq(atomic_load(&args.freed), 1);
    ck_assert_int_eq(atomic_load(&args.last_thread), fut_test_thread_id());
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(fut_state(q[i]), FUT_CANCELLED);
        ck_assert_int_eq(fut_get(q[i], 0, NULL), ECANCELED);
    }
    ck_assert_int_eq(fut_get(o, 0, NULL), ECANCELED);
    /* The running task is not cancelled. */
    ck_assert_int_eq(fut_state(a), FUT_RUNNING);
    fut_test_latch_open(&b.latch);
    void *v = NULL;
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 5);
    ck_assert_uint_eq(stats_of(pool).cancelled, N + 1);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&rf.ran), 0); /* none of them ran */
    ck_assert_int_eq(atomic_load(&rf.freed), N);
    for (int i = 0; i < N; i++)
        fut_release(q[i]);
    fut_release(o);
    fut_release(a);
    ck_assert_int_eq(atomic_load(&args.freed), 1);
    fut_test_blocker_destroy(&b);
}
END_TEST

typedef struct opener {
    fut_executor_t *pool;
    fut_test_latch_t *latch;
} opener_t;

static void *open_after_shutdown(void *arg)
{
    opener_t *o = arg;
    fut_stats_t st;
    do {
        fut_test_sleep_ms(1);
        fut_executor_stats(o->pool, &st);
    } while (!st.shutdown);
    fut_test_latch_open(o->latch);
    return NULL;
}

START_TEST(pep3148_shutdown_wait_cancel_pending_waits_for_running)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 5);
    fut_executor_t *pool = fut_test_pool(1);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_t *a = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1);
    fut_t *q = fut_submit_ex(pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    opener_t o = {.pool = pool, .latch = &b.latch};
    pthread_t t = fut_test_spawn(open_after_shutdown, &o);
    ck_assert_int_eq(fut_executor_shutdown(
                         pool, FUT_SHUTDOWN_WAIT | FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    fut_test_join(t);
    ck_assert_int_eq(fut_state(a), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&b.finished), 1);
    ck_assert_int_eq(fut_state(q), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    ck_assert_uint_eq(stats_of(pool).threads, 0);
    fut_release(a);
    fut_release(q);
    fut_executor_free(pool);
    fut_test_blocker_destroy(&b);
}
END_TEST

typedef struct selfstop {
    fut_executor_t *pool;
    int rc;
} selfstop_t;

static void *task_shutdown_own_pool(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    selfstop_t *s = arg;
    s->rc = fut_executor_shutdown(s->pool, FUT_SHUTDOWN_WAIT);
    return NULL;
}

START_TEST(edeadlk_shutdown_wait_from_own_worker)
{
    fut_executor_t *pool = fut_test_pool(2);
    selfstop_t s = {.pool = pool, .rc = -1};
    fut_t *f = fut_submit(pool, task_shutdown_own_pool, &s);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(s.rc, EDEADLK);
    /* The shutdown still happened. */
    fut_t *g = fut_submit(pool, fut_test_task_identity, NULL);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), ESHUTDOWN);
    ck_assert(stats_of(pool).shutdown);
    fut_release(f);
    fut_release(g);
    fut_executor_free(pool);
}
END_TEST

typedef struct selffree {
    fut_executor_t *pool;
} selffree_t;

static void *task_free_own_pool(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    fut_executor_free(((selffree_t *)arg)->pool);
    return FUT_TEST_PTR(3);
}

START_TEST(pool_free_from_own_worker)
{
    initlog_t l;
    initlog_init(&l, 0, 0);
    fut_pool_config_t cfg = {.threads = 2,
                             .worker_init = worker_init,
                             .worker_exit = worker_exit,
                             .worker_arg = &l};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    selffree_t s = {.pool = pool};
    fut_t *f = fut_submit(pool, task_free_own_pool, &s);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 3);
    /* The pool goes away with its last worker; the future stays valid. */
    FUT_TEST_WAIT_UNTIL(atomic_load(&l.inits) > 0 &&
                            atomic_load(&l.exits) == atomic_load(&l.inits),
                        "the workers to exit");
    ck_assert_int_eq(fut_state(f), FUT_FULFILLED);
    fut_release(f);
    fut_test_sleep_ms(20); /* let the last worker finish freeing (leak check) */
}
END_TEST

/* ---------------------------------------------------- bounded queue */

typedef struct submitter {
    fut_executor_t *pool;
    atomic_int before, after;
    fut_t *f;
} submitter_t;

static void *submit_thread(void *arg)
{
    submitter_t *s = arg;
    atomic_store(&s->before, 1);
    s->f = fut_submit(s->pool, fut_test_task_identity, FUT_TEST_PTR(9));
    atomic_store(&s->after, 1);
    return NULL;
}

START_TEST(pool_bounded_queue_blocks_and_nowait_rejects_eagain)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    fut_pool_config_t cfg = {.threads = 1, .max_queued = 2};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    fut_t *a = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1); /* a has left the queue */
    fut_t *q1 = fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(1));
    fut_t *q2 = fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(2));
    fut_stats_t st = stats_of(pool);
    ck_assert_uint_eq(st.queued, 2);
    ck_assert_uint_eq(st.submitted, 3);

    /* Full: FUT_NOWAIT rejects EAGAIN at once and frees the arg here. */
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_t *n = fut_submit_ex(pool, fut_test_task_counted, &rf,
                             fut_test_counted_free, FUT_NOWAIT);
    ck_assert_int_eq(fut_state(n), FUT_REJECTED);
    ck_assert_int_eq(fut_get(n, 0, NULL), EAGAIN);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    ck_assert_uint_eq(stats_of(pool).submitted, 3);

    /* Full: a plain submit blocks until there is room. */
    submitter_t s = {.pool = pool, .before = 0, .after = 0, .f = NULL};
    pthread_t t = fut_test_spawn(submit_thread, &s);
    fut_test_wait_atomic(&s.before, 1);
    fut_test_sleep_ms(50);
    ck_assert_msg(atomic_load(&s.after) == 0,
                  "submit to a full queue did not block");
    fut_test_latch_open(&b.latch);
    fut_test_join(t);
    void *v = NULL;
    ck_assert_int_eq(fut_get(s.f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 9);
    ck_assert_int_eq(fut_get(q1, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(fut_get(q2, FUT_FOREVER, NULL), 0);
    ck_assert_int_eq(fut_get(a, FUT_FOREVER, NULL), 0);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    fut_release(a);
    fut_release(q1);
    fut_release(q2);
    fut_release(n);
    fut_release(s.f);
    fut_test_blocker_destroy(&b);
}
END_TEST

START_TEST(pool_blocked_submit_wakes_on_shutdown)
{
    /* A submitter blocked on a full queue must not hang when the pool shuts
     * down: it returns a future (ESHUTDOWN, or the task ran). */
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    fut_pool_config_t cfg = {.threads = 1, .max_queued = 1};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    fut_t *a = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1);
    fut_t *q = fut_submit(pool, fut_test_task_identity, NULL);
    submitter_t s = {.pool = pool, .before = 0, .after = 0, .f = NULL};
    pthread_t t = fut_test_spawn(submit_thread, &s);
    fut_test_wait_atomic(&s.before, 1);
    fut_test_sleep_ms(20);
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    fut_test_join(t); /* must return without the latch opening */
    int rc = fut_get(s.f, 0, NULL);
    ck_assert_msg(rc == ESHUTDOWN || rc == ECANCELED,
                  "blocked submit settled with %d", rc);
    fut_test_latch_open(&b.latch);
    fut_executor_free(pool);
    fut_release(a);
    fut_release(q);
    fut_release(s.f);
    fut_test_blocker_destroy(&b);
}
END_TEST

typedef struct fanout {
    fut_executor_t *pool;
    int n;
    int rejected;
} fanout_t;

static void *task_fanout(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    fanout_t *fo = arg;
    fut_t *fs[8];
    int sum = 0;
    for (int i = 0; i < fo->n; i++)
        fs[i] =
            fut_submit(fo->pool, fut_test_task_identity, FUT_TEST_PTR(i + 1));
    for (int i = 0; i < fo->n; i++) {
        void *v = NULL;
        if (fut_get(fs[i], FUT_FOREVER, &v) == 0)
            sum += FUT_TEST_INT(v);
        else
            fo->rejected++;
        fut_release(fs[i]);
    }
    return FUT_TEST_PTR(sum);
}

START_TEST(pool_worker_submit_never_blocks_on_full_queue)
{
    fut_pool_config_t cfg = {.threads = 1, .max_queued = 1};
    fut_executor_t *pool = new_pool_cfg(&cfg);
    fanout_t fo = {.pool = pool, .n = 8, .rejected = 0};
    fut_t *f = fut_submit(pool, task_fanout, &fo);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(fo.rejected, 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 36);
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

/* ------------------------------------------------- queue order, depth */

/* Records the order in which tasks start. */
typedef struct order_log {
    atomic_int next;
    int *seen;
} order_log_t;

typedef struct order_item {
    order_log_t *log;
    int index;
} order_item_t;

static void *task_record(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    order_item_t *it = arg;
    it->log->seen[atomic_fetch_add(&it->log->next, 1)] = it->index;
    return NULL;
}

/* PEP 3148 max_workers=1: tasks from outside run in submission order, also
 * when far more are queued than one worker's deque holds (the rest wait in
 * the injection queue) and while the worker is taking batches. */
START_TEST(pool_one_thread_runs_outside_submits_in_order)
{
    enum { N = 20000 };
    fut_executor_t *pool = fut_test_pool(1);
    fut_test_blocker_t gate;
    fut_test_blocker_init(&gate, 0);
    fut_t *first = fut_submit(pool, fut_test_task_block, &gate);
    order_log_t log = {.seen = calloc(N, sizeof(int))};
    order_item_t *items = calloc(N, sizeof *items);
    fut_t **fs = calloc(N, sizeof *fs);
    ck_assert_ptr_nonnull(log.seen);
    ck_assert_ptr_nonnull(items);
    ck_assert_ptr_nonnull(fs);
    for (int i = 0; i < N; i++) {
        items[i] = (order_item_t){.log = &log, .index = i};
        fs[i] = fut_submit(pool, task_record, &items[i]);
        if (i == N / 2)
            fut_test_latch_open(&gate.latch); /* the worker starts taking */
    }
    ck_assert_int_eq(fut_get(first, FUT_FOREVER, NULL), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, NULL), 0);
        fut_release(fs[i]);
    }
    ck_assert_int_eq(atomic_load(&log.next), N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(log.seen[i], i);
    fut_release(first);
    fut_executor_free(pool);
    fut_test_blocker_destroy(&gate);
    free(fs);
    free(items);
    free(log.seen);
}
END_TEST

/* A task on a worker submits many more tasks than a worker's own deque
 * holds: the overflow goes to the shared queue, and every task runs once. */
typedef struct spawner {
    fut_executor_t *pool;
    int n;
} spawner_t;

static void *task_spawn_many(fut_ctx_t *ctx, void *arg)
{
    spawner_t *sp = arg;
    fut_t **fs = calloc((size_t)sp->n, sizeof *fs);
    if (!fs)
        return fut_fail(ctx, ENOMEM, "no memory for the test");
    for (int i = 0; i < sp->n; i++)
        fs[i] =
            fut_submit(sp->pool, fut_test_task_identity, FUT_TEST_PTR(i + 1));
    long sum = 0;
    int failed = 0;
    for (int i = 0; i < sp->n; i++) {
        void *v = NULL;
        if (fut_get(fs[i], FUT_FOREVER, &v) == 0)
            sum += FUT_TEST_INT(v);
        else
            failed++;
        fut_release(fs[i]);
    }
    free(fs);
    if (failed)
        return fut_fail(ctx, EIO, "%d nested tasks failed", failed);
    return (void *)(intptr_t)sum;
}

static void spawn_many_on(size_t threads)
{
    enum { N = 50000 };
    fut_executor_t *pool = fut_test_pool(threads);
    spawner_t sp = {.pool = pool, .n = N};
    fut_t *f = fut_submit(pool, task_spawn_many, &sp);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq((long)(intptr_t)v, (long)N * (N + 1) / 2);
    fut_release(f);
    /* A worker counts a task after settling it: join the workers first. */
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_WAIT), 0);
    fut_stats_t st = stats_of(pool);
    ck_assert_uint_eq(st.submitted, N + 1);
    ck_assert_uint_eq(st.completed, N + 1);
    ck_assert_uint_eq(st.queued, 0);
    fut_executor_free(pool);
}

START_TEST(pool_worker_spawns_past_its_deque_one_thread)
{
    spawn_many_on(1);
}
END_TEST

START_TEST(pool_worker_spawns_past_its_deque_two_threads)
{
    spawn_many_on(2);
}
END_TEST

/* --------------------- rule 7: no deadlock from waiting inside a task */

typedef struct nest {
    fut_executor_t *pool;
    int depth;
} nest_t;

static void *task_nested(fut_ctx_t *ctx, void *arg)
{
    nest_t *n = arg;
    if (n->depth == 0)
        return FUT_TEST_PTR(0);
    nest_t inner = {.pool = n->pool, .depth = n->depth - 1};
    fut_t *f = fut_submit(n->pool, task_nested, &inner);
    void *v = NULL;
    int rc = fut_get(f, FUT_FOREVER, &v);
    fut_release(f);
    if (rc != 0)
        return fut_fail(ctx, rc, "nested get failed");
    return FUT_TEST_PTR(FUT_TEST_INT(v) + 1);
}

/* Work a worker spawns runs next on that worker (its next slot), but not
 * only there: a task that settles a promise, whose continuation is on the
 * pool, and then blocks must not hold the continuation back while another
 * worker is free (a thief takes a next task that stays put). */
typedef struct settle_then_block {
    fut_promise_t *p;
    fut_test_latch_t release;
} settle_then_block_t;

static void *task_settle_then_block(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    settle_then_block_t *s = arg;
    fut_resolve(s->p, FUT_TEST_PTR(1), NULL); /* the continuation: next */
    fut_test_latch_wait(&s->release);
    return NULL;
}

static void *then_plus_one(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx, (void)arg;
    return FUT_TEST_PTR(FUT_TEST_INT(value) + 1);
}

START_TEST(pool_spawned_work_runs_elsewhere_while_its_worker_blocks)
{
    fut_executor_t *pool = fut_test_pool(2);
    for (int round = 0; round < 20; round++) {
        settle_then_block_t s;
        s.p = fut_promise_new();
        fut_test_latch_init(&s.release);
        fut_t *then =
            fut_then_on(pool, fut_promise_future(s.p), then_plus_one, NULL);
        fut_t *blocker = fut_submit(pool, task_settle_then_block, &s);
        void *v = NULL;
        /* Well before the blocker ends (it waits for this). */
        ck_assert_int_eq(fut_get(then, FUT_S(10), &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), 2);
        fut_test_latch_open(&s.release);
        ck_assert_int_eq(fut_get(blocker, FUT_FOREVER, NULL), 0);
        fut_release(blocker);
        fut_release(then);
        fut_promise_release(s.p);
        fut_test_latch_destroy(&s.release);
    }
    fut_executor_free(pool);
}
END_TEST

/* A task spawns one (it goes to its worker's next slot, which wakes
 * nobody) and then blocks without telling fut: the other worker, parked
 * since before, must take the spawned task while the spawner blocks, in
 * well under the spawner's 2 s (the parked worker looks again after at
 * most a millisecond; 500 ms leaves room for a loaded machine). */
typedef struct spawn_then_block {
    fut_executor_t *pool;
    fut_test_latch_t started, release;
    int64_t spawned_at, ran_at;
    fut_t *child;
} spawn_then_block_t;

static void *task_note_start(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    spawn_then_block_t *s = arg;
    s->ran_at = fut_test_now_ns();
    fut_test_latch_open(&s->started);
    return NULL;
}

static void *task_spawn_then_block(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    spawn_then_block_t *s = arg;
    s->spawned_at = fut_test_now_ns();
    s->child = fut_submit(s->pool, task_note_start, s);
    fut_test_latch_wait(&s->release); /* a plain block, not a fut wait */
    return NULL;
}

START_TEST(
    pool_spawned_task_is_taken_by_a_parked_worker_while_its_spawner_blocks)
{
    fut_executor_t *pool = fut_test_pool(2);
    for (int round = 0; round < 5; round++) {
        spawn_then_block_t s = {.pool = pool};
        fut_test_latch_init(&s.started);
        fut_test_latch_init(&s.release);
        fut_test_sleep_ms(20); /* both workers park */
        fut_t *spawner = fut_submit(pool, task_spawn_then_block, &s);
        fut_test_latch_wait(&s.started);
        ck_assert_msg(s.ran_at - s.spawned_at < FUT_MS(500),
                      "the spawned task waited %lld ms",
                      (long long)((s.ran_at - s.spawned_at) / 1000000));
        fut_test_latch_open(&s.release);
        ck_assert_int_eq(fut_get(spawner, FUT_FOREVER, NULL), 0);
        ck_assert_int_eq(fut_get(s.child, FUT_FOREVER, NULL), 0);
        fut_release(s.child);
        fut_release(spawner);
        fut_test_latch_destroy(&s.started);
        fut_test_latch_destroy(&s.release);
    }
    fut_executor_free(pool);
}
END_TEST

START_TEST(rule7_nested_wait_one_thread_pool)
{
    fut_executor_t *pool = fut_test_pool(1);
    nest_t n = {.pool = pool, .depth = 1};
    fut_t *f = fut_submit(pool, task_nested, &n);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1);
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

START_TEST(rule7_deeply_nested_wait_one_thread_pool)
{
    fut_executor_t *pool = fut_test_pool(1);
    nest_t n = {.pool = pool, .depth = 20};
    fut_t *f = fut_submit(pool, task_nested, &n);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 20);
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

/* Every worker of a two-thread pool waits on work it submitted. */
START_TEST(rule7_all_workers_waiting_still_complete)
{
    fut_executor_t *pool = fut_test_pool(2);
    enum { N = 6 };
    nest_t n[N];
    fut_t *fs[N];
    for (int i = 0; i < N; i++) {
        n[i] = (nest_t){.pool = pool, .depth = 3};
        fs[i] = fut_submit(pool, task_nested, &n[i]);
    }
    for (int i = 0; i < N; i++) {
        void *v = NULL;
        ck_assert_int_eq(fut_get(fs[i], FUT_FOREVER, &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), 3);
        fut_release(fs[i]);
    }
    fut_executor_free(pool);
}
END_TEST

/* ------------------------------------------------------------ stats */

START_TEST(pool_stats_count_tasks)
{
    /* Snapshots first, assertions after cleanup: a failed check must not
     * leave a blocked worker behind (CK_FORK=no runs share one process). */
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 0);
    fut_executor_t *pool = fut_test_pool(1);
    fut_stats_t fresh = stats_of(pool);

    fut_t *a = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1);
    fut_t *q[4];
    for (int i = 0; i < 4; i++)
        q[i] = fut_submit(pool, fut_test_task_identity, NULL);
    fut_stats_t busy = stats_of(pool);
    bool cancelled = fut_cancel(q[3]);
    fut_stats_t after_cancel = stats_of(pool);

    fut_test_latch_open(&b.latch);
    for (int i = 0; i < 3; i++)
        fut_wait(q[i], FUT_FOREVER);
    int rc = fut_executor_shutdown(pool, FUT_SHUTDOWN_WAIT);
    fut_stats_t done = stats_of(pool);
    for (int i = 0; i < 4; i++)
        fut_release(q[i]);
    fut_release(a);
    fut_executor_free(pool);
    fut_test_blocker_destroy(&b);

    ck_assert_uint_eq(fresh.submitted, 0);
    ck_assert_uint_eq(fresh.completed, 0);
    ck_assert_uint_eq(fresh.cancelled, 0);
    ck_assert_uint_eq(fresh.queued, 0);
    ck_assert_int_eq(fresh.broken, 0);
    ck_assert(!fresh.shutdown);

    ck_assert_uint_eq(busy.threads, 1);
    ck_assert_uint_eq(busy.idle, 0);
    ck_assert_uint_eq(busy.queued, 4);
    ck_assert_uint_eq(busy.submitted, 5);
    ck_assert_uint_eq(busy.completed, 0);

    ck_assert(cancelled);
    /* A task cancelled while queued is counted at once, and no longer waits. */
    ck_assert_uint_eq(after_cancel.cancelled, 1);
    ck_assert_uint_eq(after_cancel.queued, 3);

    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(done.submitted, 5);
    ck_assert_uint_eq(done.completed, 4);
    ck_assert_uint_eq(done.cancelled, 1);
    ck_assert_uint_eq(done.queued, 0);
    ck_assert_uint_eq(done.threads, 0);
    ck_assert_uint_eq(done.idle, 0);
    ck_assert_int_eq(done.broken, 0);
    ck_assert(done.shutdown);
}
END_TEST

static void *task_fail_eio(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    return fut_fail(ctx, EIO, "no");
}

START_TEST(pool_stats_completed_counts_failures_and_idle_workers)
{
    fut_executor_t *pool = fut_test_pool(2);
    fut_t *f1 = fut_submit(pool, task_fail_eio, NULL);
    fut_t *f2 = fut_submit(pool, fut_test_task_identity, NULL);
    ck_assert_int_eq(fut_get(f1, FUT_FOREVER, NULL), EIO);
    ck_assert_int_eq(fut_get(f2, FUT_FOREVER, NULL), 0);
    /* With nothing to do, both workers end up parked. */
    FUT_TEST_WAIT_UNTIL(stats_of(pool).idle == 2, "both workers to be idle");
    fut_stats_t st = stats_of(pool);
    ck_assert_uint_eq(st.completed, 2);
    ck_assert_uint_eq(st.threads, 2);
    ck_assert_uint_eq(st.queued, 0);
    fut_release(f1);
    fut_release(f2);
    fut_executor_free(pool);
}
END_TEST

/* -------------------------------------------------- inline executor */

typedef struct where {
    int thread;
    atomic_int ran;
    atomic_int freed;
} where_t;

static void where_free(void *arg)
{
    atomic_fetch_add(&((where_t *)arg)->freed, 1);
}

static void *task_where(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    where_t *w = arg;
    w->thread = fut_test_thread_id();
    atomic_fetch_add(&w->ran, 1);
    return FUT_TEST_PTR(77);
}

START_TEST(inline_executor_runs_on_calling_thread)
{
    fut_executor_t *ex = fut_inline_executor();
    ck_assert_ptr_nonnull(ex);
    ck_assert_ptr_eq(fut_inline_executor(), ex);
    where_t w = {.thread = 0, .ran = 0, .freed = 0};
    fut_t *f = fut_submit_ex(ex, task_where, &w, where_free, 0);
    /* Done before submit returned, on this thread, arg already freed. */
    ck_assert(fut_done(f));
    ck_assert_int_eq(atomic_load(&w.ran), 1);
    ck_assert_int_eq(atomic_load(&w.freed), 1);
    ck_assert_int_eq(w.thread, fut_test_thread_id());
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 77);
    fut_release(f);
}
END_TEST

START_TEST(inline_executor_frees_arg_and_reports_failure)
{
    fut_executor_t *ex = fut_inline_executor();
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 1);
    fut_t *f =
        fut_submit_ex(ex, fut_test_task_counted, &rf, fut_test_counted_free, 0);
    ck_assert_int_eq(atomic_load(&rf.ran), 1);
    ck_assert_int_eq(atomic_load(&rf.freed), 1);
    ck_assert_int_eq(fut_get(f, 0, NULL), 0);
    fut_release(f);
    f = fut_submit(ex, task_fail_eio, NULL);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert_int_eq(fut_get(f, 0, NULL), EIO);
    fut_release(f);
}
END_TEST

START_TEST(inline_executor_shutdown_and_free_do_nothing)
{
    fut_executor_t *ex = fut_inline_executor();
    ck_assert_int_eq(fut_executor_shutdown(ex, FUT_SHUTDOWN_WAIT |
                                                   FUT_SHUTDOWN_CANCEL_PENDING),
                     0);
    fut_executor_free(ex);
    fut_t *f = fut_submit(fut_inline_executor(), fut_test_task_identity,
                          FUT_TEST_PTR(5));
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 5);
    fut_release(f);
    fut_stats_t st;
    ck_assert_int_eq(fut_executor_stats(ex, &st), 0);
}
END_TEST

static void *task_inline_nested(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    int depth = FUT_TEST_INT(arg);
    if (depth == 0)
        return FUT_TEST_PTR(0);
    fut_t *f = fut_submit(fut_inline_executor(), task_inline_nested,
                          FUT_TEST_PTR(depth - 1));
    void *v = NULL;
    int rc = fut_get(f, FUT_FOREVER, &v);
    fut_release(f);
    return rc == 0 ? FUT_TEST_PTR(FUT_TEST_INT(v) + 1)
                   : fut_fail(ctx, rc, "inner");
}

START_TEST(inline_executor_nested_submit)
{
    fut_t *f =
        fut_submit(fut_inline_executor(), task_inline_nested, FUT_TEST_PTR(10));
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 10);
    fut_release(f);
}
END_TEST

Suite *fut_test_pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, rule2_pool_new_null_out_is_einval);
    tcase_add_test(tc, pool_default_config_runs_tasks);
    tcase_add_test(tc, pool_runs_configured_threads_concurrently);
    tcase_add_test(tc, pool_zero_threads_means_one_per_cpu);
    tcase_add_test(tc, pool_threads_are_named_prefix_index);
    tcase_add_test(tc, pool_long_thread_name_cut_to_15_bytes);
    tcase_add_test(tc, pool_worker_init_and_exit_run_once_per_worker);
    tcase_add_test(tc, pool_failing_initializer_breaks_pool);
    tcase_add_test(tc, pool_one_failing_initializer_breaks_pool);
    tcase_add_test(tc, pep3148_shutdown_runs_queued_tasks);
    tcase_add_test(tc, pep3148_submit_after_shutdown_is_eshutdown);
    tcase_add_test(tc, pep3148_shutdown_wait_returns_after_workers_exit);
    tcase_add_test(tc, pep3148_shutdown_cancel_pending_cancels_queued_tasks);
    tcase_add_test(tc, pep3148_shutdown_wait_cancel_pending_waits_for_running);
    tcase_add_test(tc, edeadlk_shutdown_wait_from_own_worker);
    tcase_add_test(tc, pool_free_from_own_worker);
    tcase_add_test(tc, pool_bounded_queue_blocks_and_nowait_rejects_eagain);
    tcase_add_test(tc, pool_blocked_submit_wakes_on_shutdown);
    tcase_add_test(tc, pool_worker_submit_never_blocks_on_full_queue);
    tcase_add_test(tc, pool_one_thread_runs_outside_submits_in_order);
    tcase_add_test(tc, pool_worker_spawns_past_its_deque_one_thread);
    tcase_add_test(tc, pool_worker_spawns_past_its_deque_two_threads);
    tcase_add_test(tc,
                   pool_spawned_work_runs_elsewhere_while_its_worker_blocks);
    tcase_add_test(
        tc,
        pool_spawned_task_is_taken_by_a_parked_worker_while_its_spawner_blocks);
    tcase_add_test(tc, rule7_nested_wait_one_thread_pool);
    tcase_add_test(tc, rule7_deeply_nested_wait_one_thread_pool);
    tcase_add_test(tc, rule7_all_workers_waiting_still_complete);
    tcase_add_test(tc, pool_stats_count_tasks);
    tcase_add_test(tc, pool_stats_completed_counts_failures_and_idle_workers);
    tcase_add_test(tc, inline_executor_runs_on_calling_thread);
    tcase_add_test(tc, inline_executor_frees_arg_and_reports_failure);
    tcase_add_test(tc, inline_executor_shutdown_and_free_do_nothing);
    tcase_add_test(tc, inline_executor_nested_submit);
    suite_add_tcase(s, tc);
    return s;
}

/*
 * test_race.c - randomized races for rule 4 (exactly once: callbacks,
 * continuations, destructors), rule 5 (callbacks in registration order)
 * and rule 8 (thread-safe everywhere): many threads
 * settle, register callbacks, notify, cancel, wait and release on the same
 * futures at once; cancel races task start; submitters race a bounded pool.
 * Every case prints its seed ("seed=N") and replays with FUT_TEST_SEED=N.
 * The invariants are counted: every callback and destructor exactly once,
 * exactly one settlement per future, nothing leaked.
 */
#include "test_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------- settle / register / release */

enum { MAXT = 8 };

typedef struct slot {
    fut_promise_t *p;
    fut_t *f;
    atomic_int resolve_ok, reject_ok, cancel_true;
} slot_t;

typedef struct race {
    slot_t *slots;
    int nslots, nthreads, steps;
    unsigned seed;
    fut_test_barrier_t start;
    fut_test_tracker_t values;
    atomic_int reg_attempts, reg_ok, cb_runs, arg_frees;
    atomic_int progress_regs, bad;
} race_t;

typedef struct reg {
    race_t *r;
    atomic_int ran;
} reg_t;

static void reg_cb(fut_t *f, void *arg)
{
    reg_t *g = arg;
    if (!fut_done(f))
        atomic_fetch_add(&g->r->bad, 1);
    if (atomic_fetch_add(&g->ran, 1) != 0)
        atomic_fetch_add(&g->r->bad, 1); /* ran twice */
    atomic_fetch_add(&g->r->cb_runs, 1);
}

static void reg_free(void *arg)
{
    reg_t *g = arg;
    atomic_fetch_add(&g->r->arg_frees, 1);
    free(g);
}

static void race_progress(fut_t *f, void *progress, void *arg)
{
    (void)f;
    (void)progress;
    (void)arg;
}

typedef struct worker_arg {
    race_t *r;
    int index;
} worker_arg_t;

static void *race_worker(void *arg)
{
    worker_arg_t *w = arg;
    race_t *r = w->r;
    unsigned rng = r->seed * 2654435761u + (unsigned)w->index * 40503u + 1;
    fut_test_barrier_wait(&r->start);
    for (int step = 0; step < r->steps; step++) {
        slot_t *s = &r->slots[fut_test_rand(&rng) % (unsigned)r->nslots];
        switch (fut_test_rand(&rng) % 9) {
        case 0:
        case 1: { /* register, holding our own reference meanwhile */
            fut_t *g = fut_retain(s->f);
            reg_t *reg = malloc(sizeof *reg);
            if (reg == NULL)
                abort();
            reg->r = r;
            atomic_init(&reg->ran, 0);
            atomic_fetch_add(&r->reg_attempts, 1);
            if (fut_on_done_ex(g, reg_cb, reg, reg_free) == 0)
                atomic_fetch_add(&r->reg_ok, 1);
            fut_release(g);
            break;
        }
        case 2: {
            fut_test_obj_t *o =
                fut_test_obj_new(&r->values, (int)(s - r->slots));
            int rc = fut_resolve(s->p, o, fut_test_obj_free);
            if (rc == 0)
                atomic_fetch_add(&s->resolve_ok, 1);
            else if (rc != EALREADY)
                atomic_fetch_add(&r->bad, 1);
            break;
        }
        case 3: {
            int rc = fut_reject(s->p, EIO, "slot %d", (int)(s - r->slots));
            if (rc == 0)
                atomic_fetch_add(&s->reject_ok, 1);
            else if (rc != EALREADY)
                atomic_fetch_add(&r->bad, 1);
            break;
        }
        case 4:
            if (fut_test_rand(&rng) % 4 == 0 && fut_cancel(s->f))
                atomic_fetch_add(&s->cancel_true, 1);
            break;
        case 5: {
            int rc = fut_notify(s->p, NULL);
            if (rc != 0 && rc != EALREADY)
                atomic_fetch_add(&r->bad, 1);
            rc = fut_on_progress(s->f, race_progress, NULL);
            if (rc != 0 && rc != EALREADY)
                atomic_fetch_add(&r->bad, 1);
            break;
        }
        case 6: {
            void *v = NULL;
            int rc = fut_get(s->f, 0, &v);
            if (rc == 0 && (v == NULL || ((fut_test_obj_t *)v)->value !=
                                             (int)(s - r->slots)))
                atomic_fetch_add(&r->bad, 1);
            if (rc != 0 && rc != FUT_TIMEDOUT && rc != EIO && rc != ECANCELED)
                atomic_fetch_add(&r->bad, 1);
            break;
        }
        case 7: {
            int rc = fut_wait(s->f, FUT_US(20));
            if (rc != 0 && rc != ETIMEDOUT)
                atomic_fetch_add(&r->bad, 1);
            break;
        }
        default: /* writer references come and go */
            fut_promise_release(fut_promise_retain(s->p));
            break;
        }
    }
    return NULL;
}

static void race_settle_register_release(int nslots, int nthreads, int steps)
{
    race_t r;
    memset(&r, 0, sizeof r);
    r.seed = fut_test_seed();
    r.nslots = nslots;
    r.nthreads = nthreads;
    r.steps = steps;
    fut_test_tracker_init(&r.values);
    fut_test_barrier_init(&r.start, (unsigned)nthreads);
    r.slots = calloc((size_t)nslots, sizeof *r.slots);
    ck_assert_ptr_nonnull(r.slots);
    for (int i = 0; i < nslots; i++) {
        r.slots[i].p = fut_promise_new();
        ck_assert_ptr_nonnull(r.slots[i].p);
        r.slots[i].f = fut_promise_future(r.slots[i].p);
    }
    pthread_t t[MAXT];
    worker_arg_t wa[MAXT];
    for (int i = 0; i < nthreads; i++) {
        wa[i] = (worker_arg_t){.r = &r, .index = i};
        t[i] = fut_test_spawn(race_worker, &wa[i]);
    }
    for (int i = 0; i < nthreads; i++)
        fut_test_join(t[i]);

    int fulfilled = 0;
    for (int i = 0; i < nslots; i++) {
        slot_t *s = &r.slots[i];
        fut_promise_release(s->p); /* unsettled ones break: EPIPE */
        ck_assert(fut_done(s->f));
        int res = atomic_load(&s->resolve_ok), rej = atomic_load(&s->reject_ok);
        switch (fut_state(s->f)) {
        case FUT_FULFILLED:
            ck_assert_msg(res == 1 && rej == 0,
                          "slot %d: %d resolves, %d rejects won", i, res, rej);
            fulfilled++;
            break;
        case FUT_REJECTED: {
            int code = fut_error(s->f)->code;
            ck_assert_int_eq(res, 0);
            ck_assert_msg(
                (code == EIO && rej == 1) || (code == EPIPE && rej == 0),
                "slot %d: rejected %d after %d rejects won", i, code, rej);
            break;
        }
        case FUT_CANCELLED:
            ck_assert_msg(res == 0 && rej == 0 &&
                              atomic_load(&s->cancel_true) >= 1,
                          "slot %d: cancelled, yet %d resolves, %d rejects won",
                          i, res, rej);
            break;
        default:
            ck_abort_msg("slot %d: not settled", i);
        }
    }
    ck_assert_int_eq(atomic_load(&r.bad), 0);
    ck_assert_int_eq(atomic_load(&r.cb_runs), atomic_load(&r.reg_ok));
    ck_assert_int_eq(atomic_load(&r.arg_frees), atomic_load(&r.reg_attempts));
    /* Refused values were destroyed at once; the futures hold the
     * winners. */
    ck_assert_int_eq(atomic_load(&r.values.freed),
                     atomic_load(&r.values.made) - fulfilled);
    for (int i = 0; i < nslots; i++)
        fut_release(r.slots[i].f);
    ck_assert_int_eq(atomic_load(&r.values.freed), atomic_load(&r.values.made));
    free(r.slots);
    fut_test_barrier_destroy(&r.start);
}

START_TEST(rule8_race_settle_register_release)
{
    race_settle_register_release(32, 4, 400);
}
END_TEST

START_TEST(stress_rule8_race_settle_register_release)
{
    for (int round = 0; round < 20; round++)
        race_settle_register_release(256, 8, 20000);
}
END_TEST

/* --------------------------------------------- cancel races start */

typedef struct cancel_race {
    fut_t **fs;
    bool *cancelled;
    int *order;
    int n;
} cancel_race_t;

static void *cancel_all(void *arg)
{
    cancel_race_t *c = arg;
    for (int i = 0; i < c->n; i++)
        c->cancelled[c->order[i]] = fut_cancel(c->fs[c->order[i]]);
    return NULL;
}

static void cancel_races_start(int n, int rounds)
{
    unsigned rng = fut_test_seed();
    fut_t **fs = calloc((size_t)n, sizeof *fs);
    bool *cancelled = calloc((size_t)n, sizeof *cancelled);
    int *order = calloc((size_t)n, sizeof *order);
    fut_test_counted_t *ts = calloc((size_t)n, sizeof *ts);
    ck_assert(fs && cancelled && order && ts);
    for (int round = 0; round < rounds; round++) {
        fut_executor_t *pool = fut_test_pool(2);
        for (int i = 0; i < n; i++) {
            order[i] = i;
            fut_test_counted_init(&ts[i], 0);
        }
        for (int i = n - 1; i > 0; i--) { /* shuffle the cancel order */
            int j = (int)(fut_test_rand(&rng) % (unsigned)(i + 1));
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        cancel_race_t c = {
            .fs = fs, .cancelled = cancelled, .order = order, .n = n};
        for (int i = 0; i < n; i++)
            fs[i] = fut_submit_ex(pool, fut_test_task_counted, &ts[i],
                                  fut_test_counted_free, 0);
        pthread_t t = fut_test_spawn(cancel_all, &c);
        fut_test_join(t);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(fut_wait(fs[i], FUT_FOREVER), 0);
            if (cancelled[i]) {
                ck_assert_int_eq(fut_state(fs[i]), FUT_CANCELLED);
                /* fut_cancel freed the argument. */
                ck_assert_int_eq(atomic_load(&ts[i].freed), 1);
            } else {
                ck_assert_int_eq(fut_state(fs[i]), FUT_FULFILLED);
            }
        }
        /* Once the pool is freed every task has finished, free_arg included. */
        fut_executor_free(pool);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(atomic_load(&ts[i].ran), cancelled[i] ? 0 : 1);
            ck_assert_int_eq(atomic_load(&ts[i].freed), 1);
            fut_release(fs[i]);
        }
    }
    free(fs);
    free(cancelled);
    free(order);
    free(ts);
}

START_TEST(rule4_cancel_races_task_start_exactly_once)
{
    cancel_races_start(64, 10);
}
END_TEST

START_TEST(stress_rule4_cancel_races_task_start_exactly_once)
{
    cancel_races_start(2000, 50);
}
END_TEST

/* ------------------------------------ order while settling concurrently */

enum { ORD_K = 24 };

typedef struct ord {
    atomic_int next;
    atomic_int order[ORD_K];
} ord_t;

typedef struct ord_entry {
    ord_t *o;
    int seq;
} ord_entry_t;

static void ord_cb(fut_t *f, void *arg)
{
    (void)f;
    ord_entry_t *e = arg;
    int k = atomic_fetch_add(&e->o->next, 1);
    if (k < ORD_K)
        atomic_store(&e->o->order[k], e->seq);
}

typedef struct ord_settler {
    fut_promise_t *p;
    fut_test_barrier_t *start;
    unsigned spins;
} ord_settler_t;

static void *ord_settle(void *arg)
{
    ord_settler_t *s = arg;
    fut_test_barrier_wait(s->start);
    for (volatile unsigned i = 0; i < s->spins; i++) {
    }
    fut_resolve(s->p, NULL, NULL);
    return NULL;
}

/* One thread registers callbacks while another settles the future: those
 * registered before run on the settler, those after run at once; together
 * they must still run in registration order (rule 5: order). */
static void order_while_settling(int rounds)
{
    unsigned rng = fut_test_seed();
    for (int round = 0; round < rounds; round++) {
        ord_t o;
        atomic_init(&o.next, 0);
        for (int i = 0; i < ORD_K; i++)
            atomic_init(&o.order[i], -1);
        ord_entry_t e[ORD_K];
        fut_test_barrier_t start;
        fut_test_barrier_init(&start, 2);
        fut_promise_t *p = fut_promise_new();
        fut_t *f = fut_promise_future(p);
        ord_settler_t s = {
            .p = p, .start = &start, .spins = fut_test_rand(&rng) % 20000};
        pthread_t t = fut_test_spawn(ord_settle, &s);
        fut_test_barrier_wait(&start);
        for (int i = 0; i < ORD_K; i++) {
            e[i] = (ord_entry_t){.o = &o, .seq = i};
            ck_assert_int_eq(fut_on_done(f, ord_cb, &e[i]), 0);
        }
        fut_test_join(t);
        ck_assert_int_eq(atomic_load(&o.next), ORD_K);
        for (int i = 0; i < ORD_K; i++)
            ck_assert_msg(
                atomic_load(&o.order[i]) == i,
                "round %d: callback %d ran in place %d (rule 5: order)", round,
                atomic_load(&o.order[i]), i);
        fut_promise_release(p);
        fut_release(f);
        fut_test_barrier_destroy(&start);
    }
}

START_TEST(rule5_order_kept_while_settling_concurrently)
{
    order_while_settling(200);
}
END_TEST

START_TEST(stress_rule5_order_kept_while_settling_concurrently)
{
    order_while_settling(20000);
}
END_TEST

/* ------------------------------- notify while listeners are added */

typedef struct notify_race {
    fut_promise_t *p;
    fut_t *f;
    fut_test_barrier_t start;
    atomic_int calls, bad;
    int n;
} notify_race_t;

static void nr_listener(fut_t *f, void *progress, void *arg)
{
    notify_race_t *nr = arg;
    if (f != nr->f || progress != (void *)nr)
        atomic_fetch_add(&nr->bad, 1);
    atomic_fetch_add(&nr->calls, 1);
}

static void *nr_notifier(void *arg)
{
    notify_race_t *nr = arg;
    fut_test_barrier_wait(&nr->start);
    for (int i = 0; i < nr->n; i++)
        if (fut_notify(nr->p, nr) != 0)
            atomic_fetch_add(&nr->bad, 1);
    return NULL;
}

static void *nr_adder(void *arg)
{
    notify_race_t *nr = arg;
    fut_test_barrier_wait(&nr->start);
    for (int i = 0; i < nr->n; i++)
        if (fut_on_progress(nr->f, nr_listener, nr) != 0)
            atomic_fetch_add(&nr->bad, 1);
    return NULL;
}

static void notify_while_adding(int n)
{
    notify_race_t nr = {.n = n};
    atomic_init(&nr.calls, 0);
    atomic_init(&nr.bad, 0);
    fut_test_barrier_init(&nr.start, 2);
    nr.p = fut_promise_new();
    nr.f = fut_promise_future(nr.p);
    pthread_t a = fut_test_spawn(nr_notifier, &nr);
    pthread_t b = fut_test_spawn(nr_adder, &nr);
    fut_test_join(a);
    fut_test_join(b);
    ck_assert_int_eq(atomic_load(&nr.bad), 0);
    /* A listener hears each notification at most once, plus one replay. */
    ck_assert_int_le(atomic_load(&nr.calls), n * (n + 1));
    /* No registration was lost in the race: a notification now reaches
     * every one of the n listeners, once each. */
    int before = atomic_load(&nr.calls);
    ck_assert_int_eq(fut_notify(nr.p, &nr), 0);
    ck_assert_int_eq(atomic_load(&nr.calls), before + n);
    ck_assert_int_eq(atomic_load(&nr.bad), 0);
    fut_promise_release(nr.p);
    fut_release(nr.f);
    fut_test_barrier_destroy(&nr.start);
}

START_TEST(rule8_race_notify_while_adding_progress_listeners)
{
    for (int round = 0; round < 20; round++)
        notify_while_adding(100);
}
END_TEST

/* ------------------------------ submitters race a bounded pool */

typedef struct sub_race {
    fut_executor_t *pool;
    unsigned seed;
    int per_thread;
    fut_test_tracker_t values;
    atomic_int args_made, args_freed, accepted, bad;
} sub_race_t;

typedef struct sub_item {
    sub_race_t *r;
    int value;
} sub_item_t;

static void sub_item_free(void *arg)
{
    sub_item_t *it = arg;
    atomic_fetch_add(&it->r->args_freed, 1);
    free(it);
}

static void *sub_task(fut_ctx_t *ctx, void *arg)
{
    sub_item_t *it = arg;
    if (it->value % 7 == 0)
        return fut_fail(ctx, EIO, "task %d", it->value);
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(&it->r->values, it->value);
}

typedef struct sub_thread_arg {
    sub_race_t *r;
    int index;
} sub_thread_arg_t;

static void *sub_thread(void *arg)
{
    sub_thread_arg_t *a = arg;
    sub_race_t *r = a->r;
    unsigned rng = r->seed ^ (0x9e3779b9u * (unsigned)(a->index + 1));
    enum { WINDOW = 8 };
    fut_t *window[WINDOW] = {NULL};
    int values[WINDOW] = {0};
    for (int i = 0; i < r->per_thread; i++) {
        int w = i % WINDOW;
        if (window[w]) { /* retire the oldest: check it, maybe cancel first */
            void *v = NULL;
            int rc = fut_get(window[w], FUT_FOREVER, &v);
            if (rc == 0 && ((fut_test_obj_t *)v)->value != values[w])
                atomic_fetch_add(&r->bad, 1);
            if (rc != 0 && rc != EIO && rc != ECANCELED && rc != EAGAIN)
                atomic_fetch_add(&r->bad, 1);
            if ((rc == EIO) != (values[w] % 7 == 0) && rc != ECANCELED &&
                rc != EAGAIN)
                atomic_fetch_add(&r->bad, 1);
            fut_release(window[w]);
        }
        sub_item_t *it = malloc(sizeof *it);
        if (it == NULL)
            abort();
        it->r = r;
        it->value = a->index * 1000000 + i;
        atomic_fetch_add(&r->args_made, 1);
        unsigned dice = fut_test_rand(&rng);
        values[w] = it->value;
        window[w] = fut_submit_ex(r->pool, sub_task, it, sub_item_free,
                                  dice % 5 == 0 ? FUT_NOWAIT : 0);
        if (fut_state(window[w]) != FUT_REJECTED ||
            fut_error(window[w])->code != EAGAIN)
            atomic_fetch_add(&r->accepted, 1);
        if (dice % 11 == 0)
            fut_cancel(window[w]);
        if (dice % 13 == 0)
            fut_wait(window[w], FUT_US(50));
    }
    for (int w = 0; w < WINDOW; w++) {
        if (window[w]) {
            fut_wait(window[w], FUT_FOREVER);
            fut_release(window[w]);
        }
    }
    return NULL;
}

static void submitters_race_bounded_pool(int nthreads, int per_thread)
{
    sub_race_t r;
    memset(&r, 0, sizeof r);
    r.seed = fut_test_seed();
    r.per_thread = per_thread;
    fut_test_tracker_init(&r.values);
    fut_pool_config_t cfg = {.threads = 2, .max_queued = 4};
    ck_assert_int_eq(fut_pool_new(&cfg, &r.pool), 0);
    pthread_t t[MAXT];
    sub_thread_arg_t a[MAXT];
    for (int i = 0; i < nthreads; i++) {
        a[i] = (sub_thread_arg_t){.r = &r, .index = i};
        t[i] = fut_test_spawn(sub_thread, &a[i]);
    }
    for (int i = 0; i < nthreads; i++)
        fut_test_join(t[i]);
    ck_assert_int_eq(fut_executor_shutdown(r.pool, FUT_SHUTDOWN_WAIT), 0);
    fut_stats_t st;
    ck_assert_int_eq(fut_executor_stats(r.pool, &st), 0);
    ck_assert_uint_eq(st.submitted, (uint64_t)atomic_load(&r.accepted));
    ck_assert_uint_eq(st.completed + st.cancelled, st.submitted);
    ck_assert_uint_eq(st.queued, 0);
    fut_executor_free(r.pool);
    ck_assert_int_eq(atomic_load(&r.bad), 0);
    ck_assert_int_eq(atomic_load(&r.args_freed), atomic_load(&r.args_made));
    ck_assert_int_eq(atomic_load(&r.values.freed), atomic_load(&r.values.made));
}

START_TEST(rule8_race_submitters_on_bounded_pool)
{
    submitters_race_bounded_pool(4, 200);
}
END_TEST

START_TEST(stress_rule8_race_submitters_on_bounded_pool)
{
    submitters_race_bounded_pool(8, 50000);
}
END_TEST

Suite *fut_test_race_suite(void)
{
    Suite *s = suite_create("race");
    TCase *tc = tcase_create("race");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, rule8_race_settle_register_release);
    tcase_add_test(tc, rule4_cancel_races_task_start_exactly_once);
    tcase_add_test(tc, rule5_order_kept_while_settling_concurrently);
    tcase_add_test(tc, rule8_race_submitters_on_bounded_pool);
    tcase_add_test(tc, rule8_race_notify_while_adding_progress_listeners);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("race_stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_set_tags(st, "stress");
    tcase_add_test(st, stress_rule8_race_settle_register_release);
    tcase_add_test(st, stress_rule4_cancel_races_task_start_exactly_once);
    tcase_add_test(st, stress_rule5_order_kept_while_settling_concurrently);
    tcase_add_test(st, stress_rule8_race_submitters_on_bounded_pool);
    suite_add_tcase(s, st);
    return s;
}

/*
 * test_chain.c - chaining: then / catch / then_catch / finally, their _on
 * forms and fut_then_ex, checked against the Promises/A+ 2.2 and 2.3 rules
 * that apply to C, plus what fut.h adds: adoption (fut_adopt, EDEADLK),
 * free_arg exactly once, progress relayed down a chain, cancellation of a
 * derived future reaching its input, the executor a handler runs on, and
 * the per-thread trampoline (rule 6: no unbounded recursion) on an 8 MiB and a
 * 256 KiB stack.
 *
 * Promises/A+ rules that do not apply to C and are not tested: 2.2.4
 * (fut.h runs a handler at once when its input has already settled),
 * 2.2.5 (no `this`), 2.3.3 (there are no foreign thenables: fut_adopt only
 * takes a fut_t).
 *
 * Handlers never call ck_assert (test_util.h): they record what they saw
 * in a rec_t and the test asserts afterwards.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_chain_suite(void);

/* ------------------------------------------------------ handler records */

/* What one handler registration saw: how often it ran, on which thread,
 * the value (as an integer) or error code it was handed, whether the error
 * message matched want_msg, and how often its free_arg ran. */
typedef struct rec {
    fut_test_log_t *log; /* run order, may be NULL */
    int index;
    const char *want_msg;
    atomic_int ran;
    atomic_int thread;
    atomic_intptr_t seen;
    atomic_int msg_ok;
    atomic_int freed;
    atomic_int ran_when_freed;
} rec_t;

static void rec_init(rec_t *r, fut_test_log_t *log, int index)
{
    r->log = log;
    r->index = index;
    r->want_msg = NULL;
    atomic_init(&r->ran, 0);
    atomic_init(&r->thread, 0);
    atomic_init(&r->seen, -1);
    atomic_init(&r->msg_ok, 0);
    atomic_init(&r->freed, 0);
    atomic_init(&r->ran_when_freed, -1);
}

static void rec_note(rec_t *r, intptr_t seen)
{
    atomic_store(&r->thread, fut_test_thread_id());
    atomic_store(&r->seen, seen);
    if (r->log != NULL) {
        int k = atomic_fetch_add(&r->log->calls, 1);
        if (k < FUT_TEST_LOG_MAX)
            atomic_store(&r->log->order[k], r->index);
    }
    atomic_fetch_add(&r->ran, 1);
}

/* free_arg for a rec_t. */
static void rec_free(void *arg)
{
    rec_t *r = arg;
    atomic_store(&r->ran_when_freed, atomic_load(&r->ran));
    atomic_fetch_add(&r->freed, 1);
}

/* on_value: returns the value plus one. */
static void *h_inc(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    rec_note(arg, (intptr_t)value);
    return FUT_TEST_PTR(FUT_TEST_INT(value) + 1);
}

/* on_value that switches to the error path. */
static void *h_fail(fut_ctx_t *ctx, void *value, void *arg)
{
    rec_t *r = arg;
    rec_note(r, (intptr_t)value);
    return fut_fail(ctx, EDOM, "then %d failed", r->index);
}

/* on_error: recovers with 1000 + index. */
static void *h_recover(fut_ctx_t *ctx, const fut_error_t *err, void *arg)
{
    (void)ctx;
    rec_t *r = arg;
    if (r->want_msg != NULL && err->message != NULL &&
        strcmp(err->message, r->want_msg) == 0)
        atomic_store(&r->msg_ok, 1);
    rec_note(r, err->code);
    return FUT_TEST_PTR(1000 + r->index);
}

/* on_error that fails again with another code. */
static void *h_catch_fail(fut_ctx_t *ctx, const fut_error_t *err, void *arg)
{
    rec_t *r = arg;
    rec_note(r, err->code);
    return fut_fail(ctx, ERANGE, "catch %d failed", r->index);
}

/* finally: records the settled input's state; msg_ok says it was done. */
static void h_finally(fut_t *settled, void *arg)
{
    rec_t *r = arg;
    if (fut_done(settled))
        atomic_store(&r->msg_ok, 1);
    rec_note(r, (intptr_t)fut_state(settled));
}

/* on_value without a record, for long chains. */
static void *h_plain_inc(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)arg;
    return (void *)((intptr_t)value + 1);
}

/* on_value whose result is a counted heap object with a destructor.
 * Allocates without ck_assert (this runs as a callback). */
typedef struct make_obj {
    fut_test_tracker_t *tracker;
    atomic_int ran;
} make_obj_t;

static void *h_make_obj(fut_ctx_t *ctx, void *value, void *arg)
{
    make_obj_t *m = arg;
    atomic_fetch_add(&m->ran, 1);
    fut_test_obj_t *o = malloc(sizeof *o);
    if (o == NULL)
        return fut_fail(ctx, ENOMEM, "test: no memory");
    o->tracker = m->tracker;
    o->value = FUT_TEST_INT(value) * 10;
    atomic_fetch_add(&m->tracker->made, 1);
    fut_set_free(ctx, fut_test_obj_free);
    return o;
}

/* ------------------------------------------------ Promises/A+ 2.2 */

/* 2.2.1: a missing handler is ignored and the outcome passes through. */
START_TEST(aplus_2_2_1_then_catch_missing_handler_passes_outcome_through)
{
    rec_t rv, re;
    rec_init(&rv, NULL, 0);
    rec_init(&re, NULL, 1);
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_test_obj_t *o = fut_test_obj_new(&tr, 3);

    fut_t *g = fut_then_catch(fut_resolved(o, fut_test_obj_free), NULL,
                              h_recover, &re);
    ck_assert_ptr_nonnull(g);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_ptr_eq(v, o);
    ck_assert_int_eq(atomic_load(&re.ran), 0);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);

    g = fut_then_catch(fut_rejected(EIO, "disk"), h_inc, NULL, &rv);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EIO);
    ck_assert_int_eq(fut_state(g), FUT_REJECTED);
    ck_assert_str_eq(fut_error(g)->message, "disk");
    ck_assert_int_eq(atomic_load(&rv.ran), 0);
    fut_release(g);
}
END_TEST

/* 2.2.2: on_value runs after fulfilment, with the value, at most once. */
START_TEST(aplus_2_2_2_on_value_runs_after_fulfilment_with_value_once)
{
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_promise_t *p = fut_promise_new();
    ck_assert_ptr_nonnull(p);
    fut_t *g = fut_then(fut_promise_future(p), h_inc, &r);
    ck_assert_int_eq(atomic_load(&r.ran), 0); /* 2.2.2.2: not before */
    ck_assert_int_eq(fut_state(g), FUT_PENDING);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(41), NULL), 0);
    /* The handler ran inline, before fut_resolve returned. */
    ck_assert_int_eq(atomic_load(&r.ran), 1);
    ck_assert_int_eq(atomic_load(&r.seen), 41);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(7), NULL), EALREADY);
    ck_assert_int_eq(fut_reject(p, EIO, "late"), EALREADY);
    ck_assert_int_eq(atomic_load(&r.ran), 1); /* 2.2.2.3: not more than once */
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 42);
    fut_promise_release(p);
    fut_release(g);
}
END_TEST

/* 2.2.3: on_error runs after rejection, with the reason, at most once. */
START_TEST(aplus_2_2_3_on_error_runs_after_rejection_with_reason_once)
{
    rec_t r;
    rec_init(&r, NULL, 4);
    r.want_msg = "boom 3";
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_catch(fut_promise_future(p), h_recover, &r);
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    ck_assert_int_eq(fut_state(g), FUT_PENDING);
    ck_assert_int_eq(fut_reject(p, EIO, "boom %d", 3), 0);
    ck_assert_int_eq(atomic_load(&r.ran), 1);
    ck_assert_int_eq(atomic_load(&r.seen), EIO);
    ck_assert_int_eq(atomic_load(&r.msg_ok), 1);
    ck_assert_int_eq(fut_reject(p, EIO, "again"), EALREADY);
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), EALREADY);
    ck_assert_int_eq(atomic_load(&r.ran), 1);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1004);
    fut_promise_release(p);
    fut_release(g);
}
END_TEST

enum { ORDER_N = 24, ORDER_LATE = 6 };

/* Registers handler i on f (fut_retain(f): each form consumes), cycling
 * through the forms that have an on_value, and a catch that must be
 * skipped.  error: the forms that have an on_error instead. */
static fut_t *register_nth(fut_t *f, int i, rec_t *r, rec_t *skip,
                           fut_t **skipped, bool error)
{
    if (error)
        *skipped = fut_then(fut_retain(f), h_inc, skip);
    else
        *skipped = fut_catch(fut_retain(f), h_recover, skip);
    switch (i % 3) {
    case 0:
        return error ? fut_catch(fut_retain(f), h_recover, r)
                     : fut_then(fut_retain(f), h_inc, r);
    case 1:
        return fut_then_catch(fut_retain(f), h_inc, h_recover, r);
    default:
        return error
                   ? fut_then_ex(NULL, fut_retain(f), NULL, h_recover, r, NULL)
                   : fut_then_ex(NULL, fut_retain(f), h_inc, NULL, r, NULL);
    }
}

static void check_registration_order(bool error)
{
    fut_test_log_t log;
    fut_test_log_init(&log);
    rec_t r[ORDER_N + ORDER_LATE], skip[ORDER_N + ORDER_LATE];
    fut_t *g[ORDER_N + ORDER_LATE], *s[ORDER_N + ORDER_LATE];
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    for (int i = 0; i < ORDER_N + ORDER_LATE; i++) {
        rec_init(&r[i], &log, i);
        rec_init(&skip[i], NULL, i);
    }
    for (int i = 0; i < ORDER_N; i++)
        g[i] = register_nth(f, i, &r[i], &skip[i], &s[i], error);
    ck_assert_int_eq(atomic_load(&log.calls), 0);
    if (error)
        ck_assert_int_eq(fut_reject(p, EIO, "no"), 0);
    else
        ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(10), NULL), 0);
    ck_assert_int_eq(atomic_load(&log.calls), ORDER_N);
    /* Registered on the settled future: each runs at once, so the order
     * continues. */
    for (int i = ORDER_N; i < ORDER_N + ORDER_LATE; i++)
        g[i] = register_nth(f, i, &r[i], &skip[i], &s[i], error);
    ck_assert_int_eq(atomic_load(&log.calls), ORDER_N + ORDER_LATE);
    for (int i = 0; i < ORDER_N + ORDER_LATE; i++) {
        ck_assert_msg(atomic_load(&log.order[i]) == i,
                      "handler %d ran at position %d",
                      atomic_load(&log.order[i]), i);
        ck_assert_int_eq(atomic_load(&r[i].ran), 1);
        ck_assert_int_eq(atomic_load(&r[i].seen), error ? EIO : 10);
        ck_assert_int_eq(atomic_load(&skip[i].ran), 0);
        void *v = NULL;
        ck_assert_int_eq(fut_get(g[i], FUT_FOREVER, &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), error ? 1000 + i : 11);
        ck_assert_int_eq(fut_get(s[i], FUT_FOREVER, &v), error ? EIO : 0);
        fut_release(g[i]);
        fut_release(s[i]);
    }
    fut_promise_release(p);
    fut_release(f);
}

/* 2.2.6.1: the on_value handlers of one future run in registration order. */
START_TEST(aplus_2_2_6_1_on_value_handlers_run_in_registration_order)
{
    check_registration_order(false);
}
END_TEST

/* 2.2.6.2: the on_error handlers of one future run in registration order. */
START_TEST(aplus_2_2_6_2_on_error_handlers_run_in_registration_order)
{
    check_registration_order(true);
}
END_TEST

/* 2.2.7 and 2.2.7.1: each form returns a new future, which a returned value
 * fulfils (its destructor named with fut_set_free runs once, when the
 * derived future is freed). */
START_TEST(aplus_2_2_7_1_returned_value_fulfils_the_new_future)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    make_obj_t m = {.tracker = &tr, .ran = 0};
    fut_t *f = fut_resolved(FUT_TEST_PTR(4), NULL);
    fut_t *g = fut_then(fut_retain(f), h_make_obj, &m);
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_ne(g, f);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(((fut_test_obj_t *)v)->value, 40);
    ck_assert_int_eq(atomic_load(&tr.made), 1);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);

    rec_t r;
    rec_init(&r, NULL, 2);
    fut_t *e = fut_rejected(EIO, "x");
    g = fut_catch(fut_retain(e), h_recover, &r); /* recovers the chain */
    ck_assert_ptr_ne(g, e);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(fut_state(g), FUT_FULFILLED);
    ck_assert_int_eq(FUT_TEST_INT(v), 1002);
    fut_release(g);

    g = fut_finally(fut_retain(f), h_finally, &r);
    ck_assert_ptr_ne(g, f);
    fut_release(g);
    ck_assert_int_eq(fut_get(e, 0, NULL), EIO);
    fut_release(e);
    fut_release(f);
}
END_TEST

/* 2.2.7.2: a handler that fails rejects the new future with its error. */
START_TEST(aplus_2_2_7_2_failing_handler_rejects_the_new_future)
{
    rec_t r1, r2, r3;
    rec_init(&r1, NULL, 1);
    rec_init(&r2, NULL, 2);
    rec_init(&r3, NULL, 3);
    fut_t *g = fut_then(fut_resolved(FUT_TEST_PTR(5), NULL), h_fail, &r1);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EDOM);
    ck_assert_int_eq(fut_state(g), FUT_REJECTED);
    ck_assert_str_eq(fut_error(g)->message, "then 1 failed");
    /* The error path: then handlers are skipped, a failing catch replaces
     * the error, a recovering catch ends it. */
    g = fut_then(g, h_inc, &r2);
    g = fut_catch(g, h_catch_fail, &r2);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), ERANGE);
    ck_assert_str_eq(fut_error(g)->message, "catch 2 failed");
    ck_assert_int_eq(atomic_load(&r2.ran), 1);
    ck_assert_int_eq(atomic_load(&r2.seen), EDOM);
    g = fut_then_catch(g, h_inc, h_recover, &r3);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1003);
    ck_assert_int_eq(atomic_load(&r3.seen), ERANGE);
    ck_assert_int_eq(atomic_load(&r1.ran), 1);
    ck_assert_int_eq(atomic_load(&r3.ran), 1);
    fut_release(g);
}
END_TEST

/* 2.2.7.3: without an on_value, a fulfilled input's value passes through,
 * the same pointer, kept alive as long as the new future. */
START_TEST(aplus_2_2_7_3_value_skips_catch_and_stays_alive)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_test_obj_t *o = fut_test_obj_new(&tr, 8);
    fut_t *g = fut_catch(fut_resolved(o, fut_test_obj_free), h_recover, &r);
    g = fut_then_ex(NULL, g, NULL, h_recover, &r, NULL);
    g = fut_finally(g, h_finally, &r);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_ptr_eq(v, o);
    ck_assert_int_eq(atomic_load(&r.ran), 1); /* only the finally */
    ck_assert_int_eq(atomic_load(&r.seen), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    ck_assert_int_eq(o->value, 8);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* 2.2.7.4: without an on_error, a rejected input's error passes through;
 * a cancelled input makes a cancelled derived future. */
START_TEST(aplus_2_2_7_4_error_skips_then_and_cancel_passes_through)
{
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_t *g = fut_then(fut_rejected(EIO, "m"), h_inc, &r);
    g = fut_then_ex(NULL, g, h_inc, NULL, &r, NULL);
    g = fut_then_catch(g, h_inc, NULL, &r);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EIO);
    ck_assert_int_eq(fut_state(g), FUT_REJECTED);
    ck_assert_str_eq(fut_error(g)->message, "m");
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    fut_release(g);

    /* Cancelled before the handler was attached, and after. */
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_t *before = fut_then(fut_retain(f), h_inc, &r);
    ck_assert(fut_cancel(f));
    fut_t *after = fut_then(fut_retain(f), h_inc, &r);
    ck_assert_int_eq(fut_get(before, FUT_FOREVER, NULL), ECANCELED);
    ck_assert_int_eq(fut_get(after, FUT_FOREVER, NULL), ECANCELED);
    ck_assert_int_eq(fut_state(before), FUT_CANCELLED);
    ck_assert_int_eq(fut_state(after), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    fut_release(before);
    fut_release(after);
    fut_release(f);
    fut_promise_release(p);
}
END_TEST

/* ------------------------------------------------ Promises/A+ 2.3 */

/* The future a handler adopts (consumed by fut_adopt), and a count. */
typedef struct adopt_slot {
    fut_t *target;
    bool retain; /* adopt fut_retain(target) rather than target itself */
    atomic_int ran;
} adopt_slot_t;

static void *h_adopt(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)value;
    adopt_slot_t *s = arg;
    atomic_fetch_add(&s->ran, 1);
    return fut_adopt(ctx, s->retain ? fut_retain(s->target) : s->target);
}

/* 2.3.1: a future that adopts itself rejects with EDEADLK. */
START_TEST(aplus_2_3_1_handler_adopting_its_own_future_rejects_edeadlk)
{
    adopt_slot_t s = {.target = NULL, .retain = true, .ran = 0};
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_then(fut_promise_future(p), h_adopt, &s);
    s.target = g;
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    ck_assert_int_eq(fut_wait(g, FUT_S(10)), 0);
    ck_assert_int_eq(fut_get(g, 0, NULL), EDEADLK);
    ck_assert_int_eq(fut_state(g), FUT_REJECTED);
    ck_assert_int_eq(atomic_load(&s.ran), 1);
    fut_promise_release(p);
    fut_release(g);
}
END_TEST

typedef struct self_task {
    fut_test_latch_t ready;
    fut_t *self;
} self_task_t;

static void *task_adopt_self(fut_ctx_t *ctx, void *arg)
{
    self_task_t *s = arg;
    fut_test_latch_wait(&s->ready);
    return fut_adopt(ctx, fut_retain(s->self));
}

/* 2.3.1 for a task: a task adopting its own future rejects with EDEADLK. */
START_TEST(aplus_2_3_1_task_adopting_its_own_future_rejects_edeadlk)
{
    self_task_t s = {.self = NULL};
    fut_test_latch_init(&s.ready);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f = fut_submit(pool, task_adopt_self, &s);
    s.self = f;
    fut_test_latch_open(&s.ready);
    ck_assert_int_eq(fut_wait(f, FUT_S(10)), 0);
    ck_assert_int_eq(fut_get(f, 0, NULL), EDEADLK);
    fut_executor_free(pool);
    fut_release(f);
    fut_test_latch_destroy(&s.ready);
}
END_TEST

/* 2.3.1 through a cycle: g adopts h, then h adopts g.  h ends up adopting
 * itself (EDEADLK), and g, following h, rejects with it. */
START_TEST(aplus_2_3_1_adoption_cycle_rejects_edeadlk)
{
    adopt_slot_t s1 = {.retain = true, .ran = 0},
                 s2 = {.retain = true, .ran = 0};
    fut_promise_t *p1 = fut_promise_new(), *p2 = fut_promise_new();
    fut_t *g = fut_then(fut_promise_future(p1), h_adopt, &s1);
    fut_t *h = fut_then(fut_promise_future(p2), h_adopt, &s2);
    s1.target = h;
    s2.target = g;
    ck_assert_int_eq(fut_resolve(p1, NULL, NULL), 0);
    ck_assert(!fut_done(g)); /* follows h, not settled */
    ck_assert_int_eq(fut_resolve(p2, NULL, NULL), 0);
    ck_assert_int_eq(fut_wait(h, FUT_S(10)), 0);
    ck_assert_int_eq(fut_wait(g, FUT_S(10)), 0);
    ck_assert_int_eq(fut_get(h, 0, NULL), EDEADLK);
    ck_assert_int_eq(fut_get(g, 0, NULL), EDEADLK);
    fut_promise_release(p1);
    fut_promise_release(p2);
    fut_release(g);
    fut_release(h);
}
END_TEST

/* 2.3.2.1 and 2.3.2.2: adopting a pending future keeps the new future
 * pending until it fulfils, then takes its value (kept alive by the new
 * future). */
START_TEST(aplus_2_3_2_1_adopting_pending_future_waits_for_it)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *head = fut_promise_new(), *q = fut_promise_new();
    adopt_slot_t s = {
        .target = fut_promise_future(q), .retain = false, .ran = 0};
    fut_t *g = fut_then(fut_promise_future(head), h_adopt, &s);
    ck_assert_int_eq(fut_resolve(head, FUT_TEST_PTR(1), NULL), 0);
    ck_assert_int_eq(atomic_load(&s.ran), 1);
    /* Not settled: fut.h does not say whether a follower reads
     * FUT_PENDING or FUT_RUNNING. */
    ck_assert(!fut_done(g));
    ck_assert_int_eq(fut_wait(g, 0), ETIMEDOUT);
    fut_test_obj_t *o = fut_test_obj_new(&tr, 12);
    ck_assert_int_eq(fut_resolve(q, o, fut_test_obj_free), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_ptr_eq(v, o);
    fut_promise_release(q);
    fut_promise_release(head);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    ck_assert_int_eq(o->value, 12);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* 2.3.2.2: adopting a fulfilled future takes its value. */
START_TEST(aplus_2_3_2_2_adopting_fulfilled_future_takes_its_value)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_test_obj_t *o = fut_test_obj_new(&tr, 21);
    adopt_slot_t s = {.target = fut_resolved(o, fut_test_obj_free),
                      .retain = false,
                      .ran = 0};
    fut_t *g = fut_then(fut_resolved(NULL, NULL), h_adopt, &s);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_ptr_eq(v, o);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* 2.3.2.3: adopting a rejected future takes its error. */
START_TEST(aplus_2_3_2_3_adopting_rejected_future_takes_its_error)
{
    adopt_slot_t s = {
        .target = fut_rejected(ENOENT, "adopted"), .retain = false, .ran = 0};
    fut_t *g = fut_then(fut_resolved(NULL, NULL), h_adopt, &s);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), ENOENT);
    ck_assert_int_eq(fut_state(g), FUT_REJECTED);
    ck_assert_str_eq(fut_error(g)->message, "adopted");
    fut_release(g);

    /* Pending, then rejected. */
    fut_promise_t *q = fut_promise_new();
    adopt_slot_t s2 = {
        .target = fut_promise_future(q), .retain = false, .ran = 0};
    g = fut_then(fut_resolved(NULL, NULL), h_adopt, &s2);
    ck_assert(!fut_done(g));
    ck_assert_int_eq(fut_reject(q, EPROTO, "later %d", 2), 0);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EPROTO);
    ck_assert_str_eq(fut_error(g)->message, "later 2");
    fut_release(g);
    fut_promise_release(q);
}
END_TEST

static void *task_adopt_submitted(fut_ctx_t *ctx, void *pool)
{
    return fut_adopt(ctx,
                     fut_submit(pool, fut_test_task_identity, FUT_TEST_PTR(9)));
}

/* 2.3.2 from a task: a task's future flattens the future it adopts. */
START_TEST(aplus_2_3_2_task_adopting_another_task_flattens)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f = fut_submit(pool, task_adopt_submitted, pool);
    void *v = NULL;
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 9);
    fut_release(f);
    fut_executor_free(pool);
}
END_TEST

static void *h_return_arg(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)value;
    return arg;
}

/* 2.3.4: a plain value (here NULL, or a small integer) fulfils. */
START_TEST(aplus_2_3_4_plain_value_fulfils)
{
    fut_t *g =
        fut_then(fut_resolved(FUT_TEST_PTR(3), NULL), h_return_arg, NULL);
    void *v = &v;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(fut_state(g), FUT_FULFILLED);
    fut_release(g);
    g = fut_then(fut_resolved(NULL, NULL), h_return_arg, FUT_TEST_PTR(77));
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 77);
    fut_release(g);
}
END_TEST

/* ---------------------------------------------------- chain semantics */

/* Twisted's callback/errback chain end to end. */
START_TEST(chain_catch_recovers_then_continues)
{
    rec_t a, b, c, d;
    rec_init(&a, NULL, 0);
    rec_init(&b, NULL, 1);
    rec_init(&c, NULL, 5);
    rec_init(&d, NULL, 3);
    c.want_msg = "bad input";
    fut_t *g = fut_rejected(EINVAL, "bad input");
    g = fut_then(g, h_inc, &a);      /* skipped */
    g = fut_then(g, h_inc, &b);      /* skipped */
    g = fut_catch(g, h_recover, &c); /* recovers with 1005 */
    g = fut_catch(g, h_recover, &d); /* skipped */
    g = fut_then(g, h_inc, &d);      /* 1006 */
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1006);
    ck_assert_int_eq(atomic_load(&a.ran), 0);
    ck_assert_int_eq(atomic_load(&b.ran), 0);
    ck_assert_int_eq(atomic_load(&c.ran), 1);
    ck_assert_int_eq(atomic_load(&c.seen), EINVAL);
    ck_assert_int_eq(atomic_load(&c.msg_ok), 1);
    ck_assert_int_eq(atomic_load(&d.ran), 1);
    ck_assert_int_eq(atomic_load(&d.seen), 1005);
    fut_release(g);
}
END_TEST

/* jQuery then(done, fail): exactly one of the two runs. */
START_TEST(chain_then_catch_runs_exactly_one_handler)
{
    rec_t r1, r2;
    rec_init(&r1, NULL, 1);
    rec_init(&r2, NULL, 2);
    fut_t *g = fut_then_catch(fut_resolved(FUT_TEST_PTR(6), NULL), h_inc,
                              h_recover, &r1);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 7);
    ck_assert_int_eq(atomic_load(&r1.ran), 1);
    ck_assert_int_eq(atomic_load(&r1.seen), 6);
    fut_release(g);
    g = fut_then_catch(fut_rejected(EAGAIN, NULL), h_inc, h_recover, &r2);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1002);
    ck_assert_int_eq(atomic_load(&r2.ran), 1);
    ck_assert_int_eq(atomic_load(&r2.seen), EAGAIN);
    fut_release(g);
}
END_TEST

/* finally runs on every outcome, sees the settled input, and passes the
 * outcome through unchanged. */
START_TEST(chain_finally_runs_on_every_outcome_and_passes_it_through)
{
    rec_t r1, r2, r3;
    rec_init(&r1, NULL, 1);
    rec_init(&r2, NULL, 2);
    rec_init(&r3, NULL, 3);
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_test_obj_t *o = fut_test_obj_new(&tr, 1);
    fut_t *g = fut_finally(fut_resolved(o, fut_test_obj_free), h_finally, &r1);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_ptr_eq(v, o);
    ck_assert_int_eq(atomic_load(&r1.ran), 1);
    ck_assert_int_eq(atomic_load(&r1.seen), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&r1.msg_ok), 1);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);

    g = fut_finally(fut_rejected(EIO, "io"), h_finally, &r2);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EIO);
    ck_assert_str_eq(fut_error(g)->message, "io");
    ck_assert_int_eq(atomic_load(&r2.seen), FUT_REJECTED);
    ck_assert_int_eq(atomic_load(&r2.msg_ok), 1);
    fut_release(g);

    fut_promise_t *p = fut_promise_new();
    g = fut_finally(fut_promise_future(p), h_finally, &r3);
    ck_assert_int_eq(atomic_load(&r3.ran), 0);
    fut_t *f = fut_promise_future(p);
    ck_assert(fut_cancel(f));
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), ECANCELED);
    ck_assert_int_eq(fut_state(g), FUT_CANCELLED);
    ck_assert_int_eq(atomic_load(&r3.ran), 1);
    ck_assert_int_eq(atomic_load(&r3.seen), FUT_CANCELLED);
    fut_release(f);
    fut_release(g);
    fut_promise_release(p);
}
END_TEST

/* A handler on a settled future runs at once, on the calling thread. */
START_TEST(chain_handler_on_settled_future_runs_at_once_on_calling_thread)
{
    rec_t r1, r2, r3;
    rec_init(&r1, NULL, 1);
    rec_init(&r2, NULL, 2);
    rec_init(&r3, NULL, 3);
    int me = fut_test_thread_id();
    fut_t *g1 = fut_then(fut_resolved(FUT_TEST_PTR(1), NULL), h_inc, &r1);
    ck_assert_int_eq(atomic_load(&r1.ran), 1);
    ck_assert_int_eq(atomic_load(&r1.thread), me);
    ck_assert_int_eq(fut_state(g1), FUT_FULFILLED);
    fut_t *g2 = fut_catch(fut_rejected(EIO, NULL), h_recover, &r2);
    ck_assert_int_eq(atomic_load(&r2.ran), 1);
    ck_assert_int_eq(atomic_load(&r2.thread), me);
    ck_assert_int_eq(fut_state(g2), FUT_FULFILLED);
    fut_t *g3 = fut_finally(fut_resolved(NULL, NULL), h_finally, &r3);
    ck_assert_int_eq(atomic_load(&r3.ran), 1);
    ck_assert_int_eq(atomic_load(&r3.thread), me);
    ck_assert_int_eq(fut_state(g3), FUT_FULFILLED);
    fut_release(g1);
    fut_release(g2);
    fut_release(g3);
}
END_TEST

typedef struct settler {
    fut_promise_t *p;
    atomic_int thread;
} settler_t;

static void *settle_from_thread(void *arg)
{
    settler_t *s = arg;
    atomic_store(&s->thread, fut_test_thread_id());
    fut_resolve(s->p, FUT_TEST_PTR(30), NULL);
    return NULL;
}

/* A handler on a pending future runs inline on the thread that settles it. */
START_TEST(chain_handler_runs_inline_on_settling_thread)
{
    rec_t r1, r2;
    rec_init(&r1, NULL, 1);
    rec_init(&r2, NULL, 2);
    settler_t s = {.p = fut_promise_new(), .thread = 0};
    fut_t *g = fut_then(fut_promise_future(s.p), h_inc, &r1);
    g = fut_finally(g, h_finally, &r2);
    pthread_t t = fut_test_spawn(settle_from_thread, &s);
    fut_test_join(t);
    /* Everything ran inside fut_resolve, on that thread. */
    ck_assert_int_eq(atomic_load(&r1.ran), 1);
    ck_assert_int_eq(atomic_load(&r2.ran), 1);
    ck_assert_int_eq(atomic_load(&r1.thread), atomic_load(&s.thread));
    ck_assert_int_eq(atomic_load(&r2.thread), atomic_load(&s.thread));
    ck_assert_int_ne(atomic_load(&r1.thread), fut_test_thread_id());
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 31);
    fut_release(g);
    fut_promise_release(s.p);
}
END_TEST

/* A handler's fut_set_free destructor runs once, with the derived future. */
START_TEST(chain_handler_value_destroyed_once_with_derived_future)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    make_obj_t m = {.tracker = &tr, .ran = 0};
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_then(fut_promise_future(p), h_make_obj, &m);
    /* The handler reads g's value. */
    fut_t *h = fut_then(fut_retain(g), h_return_arg, NULL);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(2), NULL), 0);
    fut_promise_release(p);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(((fut_test_obj_t *)v)->value, 20);
    fut_release(h);
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&m.ran), 1);
    ck_assert_int_eq(atomic_load(&tr.made), 1);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

/* Bad arguments: a future rejected EINVAL, never NULL, and the input is
 * released (its value destroyed). */
/* A NULL input is rejected EINVAL by every form; so is a NULL handler on
 * the _on forms, which must still release the input they were given (its
 * counted value is then destroyed). */
START_TEST(chain_bad_arguments_reject_einval_and_release_input)
{
    enum { NULL_INPUT = 7, N = 10 };
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *g[N];
    g[0] = fut_then(NULL, h_inc, &r);
    g[1] = fut_catch(NULL, h_recover, &r);
    g[2] = fut_then_catch(NULL, h_inc, h_recover, &r);
    g[3] = fut_finally(NULL, h_finally, &r);
    g[4] = fut_then_on(pool, NULL, h_inc, &r);
    g[5] = fut_catch_on(pool, NULL, h_recover, &r);
    g[6] = fut_finally_on(pool, NULL, h_finally, &r);
    g[7] = fut_then_on(
        pool, fut_resolved(fut_test_obj_new(&tr, 7), fut_test_obj_free), NULL,
        &r);
    g[8] = fut_catch_on(
        pool, fut_resolved(fut_test_obj_new(&tr, 8), fut_test_obj_free), NULL,
        &r);
    g[9] = fut_finally_on(
        pool, fut_resolved(fut_test_obj_new(&tr, 9), fut_test_obj_free), NULL,
        &r);
    for (int i = 0; i < N; i++) {
        ck_assert_ptr_nonnull(g[i]);
        ck_assert_msg(fut_get(g[i], FUT_FOREVER, NULL) == EINVAL,
                      "call %d did not reject EINVAL", i);
        fut_release(g[i]);
    }
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    /* The inputs were released: nothing else held them. */
    ck_assert_int_eq(atomic_load(&tr.made), N - NULL_INPUT);
    ck_assert_int_eq(atomic_load(&tr.freed), N - NULL_INPUT);
}
END_TEST

/* fut_then, fut_catch and fut_finally take a handler: NULL is a bad
 * argument (only fut_then_catch documents NULL as "passes through"). */
START_TEST(chain_null_handler_rejects_einval_and_releases_input)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_t *g = fut_then(
        fut_resolved(fut_test_obj_new(&tr, 1), fut_test_obj_free), NULL, NULL);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EINVAL);
    fut_release(g);
    g = fut_catch(fut_resolved(fut_test_obj_new(&tr, 2), fut_test_obj_free),
                  NULL, NULL);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EINVAL);
    fut_release(g);
    g = fut_finally(fut_resolved(fut_test_obj_new(&tr, 3), fut_test_obj_free),
                    NULL, NULL);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EINVAL);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&tr.freed), 3);
}
END_TEST

/* ------------------------------------------------ free_arg exactly once */

START_TEST(then_ex_free_arg_runs_once_after_handler_ran)
{
    rec_t r1, r2;
    rec_init(&r1, NULL, 1);
    rec_init(&r2, NULL, 2);
    fut_t *g = fut_then_ex(NULL, fut_resolved(FUT_TEST_PTR(1), NULL), h_inc,
                           h_recover, &r1, rec_free);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&r1.ran), 1);
    ck_assert_int_eq(atomic_load(&r1.freed), 1);
    ck_assert_int_eq(atomic_load(&r1.ran_when_freed), 1);

    /* On a pool. */
    fut_executor_t *pool = fut_test_pool(2);
    g = fut_then_ex(pool, fut_rejected(EIO, NULL), h_inc, h_recover, &r2,
                    rec_free);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1002);
    fut_executor_free(pool);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&r2.ran), 1);
    ck_assert_int_eq(atomic_load(&r2.freed), 1);
    ck_assert_int_eq(atomic_load(&r2.ran_when_freed), 1);
}
END_TEST

START_TEST(then_ex_free_arg_runs_once_when_handler_skipped)
{
    rec_t r1, r2, r3;
    rec_init(&r1, NULL, 1);
    rec_init(&r2, NULL, 2);
    rec_init(&r3, NULL, 3);
    fut_t *g =
        fut_then_ex(NULL, fut_rejected(EIO, NULL), h_inc, NULL, &r1, rec_free);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EIO);
    fut_release(g);
    g = fut_then_ex(NULL, fut_resolved(NULL, NULL), NULL, h_recover, &r2,
                    rec_free);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), 0);
    fut_release(g);
    fut_executor_t *pool = fut_test_pool(1);
    g = fut_then_ex(pool, fut_rejected(EIO, NULL), h_inc, NULL, &r3, rec_free);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EIO);
    fut_executor_free(pool);
    fut_release(g);
    rec_t *rs[] = {&r1, &r2, &r3};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&rs[i]->ran), 0);
        ck_assert_int_eq(atomic_load(&rs[i]->freed), 1);
    }
}
END_TEST

START_TEST(then_ex_free_arg_runs_once_when_cancelled)
{
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_then_ex(NULL, fut_promise_future(p), h_inc, h_recover, &r,
                           rec_free);
    ck_assert(fut_cancel(g));
    ck_assert_int_eq(fut_state(g), FUT_CANCELLED);
    ck_assert_int_eq(fut_get(g, 0, NULL), ECANCELED);
    /* The input may or may not have been cancelled by now. */
    fut_resolve(p, FUT_TEST_PTR(1), NULL);
    fut_promise_release(p);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    ck_assert_int_eq(atomic_load(&r.freed), 1);
}
END_TEST

START_TEST(then_ex_free_arg_runs_once_on_bad_arguments_and_refusal)
{
    rec_t r1, r2, r3;
    rec_init(&r1, NULL, 1);
    rec_init(&r2, NULL, 2);
    rec_init(&r3, NULL, 3);
    fut_t *g = fut_then_ex(NULL, NULL, h_inc, h_recover, &r1, rec_free);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), EINVAL);
    fut_release(g);
    ck_assert_int_eq(atomic_load(&r1.freed), 1);

    /* A shut-down executor refuses the continuation: the derived future
     * rejects with its code (settled input, and input settled later). */
    fut_executor_t *pool = fut_test_pool(1);
    ck_assert_int_eq(fut_executor_shutdown(pool, FUT_SHUTDOWN_WAIT), 0);
    g = fut_then_ex(pool, fut_resolved(NULL, NULL), h_inc, NULL, &r2, rec_free);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), ESHUTDOWN);
    fut_release(g);
    fut_promise_t *p = fut_promise_new();
    g = fut_then_ex(pool, fut_promise_future(p), h_inc, NULL, &r3, rec_free);
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), 0);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), ESHUTDOWN);
    fut_release(g);
    fut_promise_release(p);
    fut_t *h = fut_then_on(pool, fut_resolved(NULL, NULL), h_inc, &r2);
    ck_assert_int_eq(fut_get(h, FUT_FOREVER, NULL), ESHUTDOWN);
    fut_release(h);
    fut_executor_free(pool);
    ck_assert_int_eq(
        atomic_load(&r1.ran) + atomic_load(&r2.ran) + atomic_load(&r3.ran), 0);
    ck_assert_int_eq(atomic_load(&r2.freed), 1);
    ck_assert_int_eq(atomic_load(&r3.freed), 1);
}
END_TEST

/* ------------------------------------------------------ cancellation */

START_TEST(cancel_derived_cancels_input_nothing_else_holds)
{
    fut_test_held_t h;
    fut_test_held_start(&h);
    fut_test_counted_t c;
    fut_test_counted_init(&c, 5);
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_t *q = fut_submit_ex(h.pool, fut_test_task_counted, &c,
                             fut_test_counted_free, 0);
    ck_assert_int_eq(fut_on_done(q, fut_test_counted_done, &c), 0);
    /* fut_then_ex consumes our reference to q. */
    fut_t *g = fut_then_ex(NULL, q, h_inc, NULL, &r, rec_free);
    ck_assert(fut_cancel(g));
    ck_assert_int_eq(fut_state(g), FUT_CANCELLED);
    fut_test_wait_atomic(&c.done_calls, 1);
    ck_assert_int_eq(atomic_load(&c.state_seen), FUT_CANCELLED);
    fut_test_held_finish(&h);
    ck_assert_int_eq(atomic_load(&c.ran), 0);
    ck_assert_int_eq(atomic_load(&c.freed), 1);
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    ck_assert_int_eq(atomic_load(&r.freed), 1);
    fut_release(g);
}
END_TEST

START_TEST(cancel_derived_spares_input_the_caller_retained)
{
    fut_test_held_t h;
    fut_test_held_start(&h);
    fut_test_counted_t c;
    fut_test_counted_init(&c, 5);
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_t *q = fut_submit_ex(h.pool, fut_test_task_counted, &c,
                             fut_test_counted_free, 0);
    fut_t *g = fut_then(fut_retain(q), h_inc, &r);
    ck_assert(fut_cancel(g));
    ck_assert_int_eq(fut_state(g), FUT_CANCELLED);
    ck_assert_int_eq(fut_state(q), FUT_PENDING);
    fut_test_latch_open(&h.b.latch);
    void *v = NULL;
    ck_assert_int_eq(fut_get(q, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 5);
    fut_test_held_finish(&h);
    ck_assert_int_eq(atomic_load(&c.ran), 1);
    ck_assert_int_eq(atomic_load(&c.freed), 1);
    /* The handler never ran: the derived future was cancelled. */
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    fut_release(q);
    fut_release(g);
}
END_TEST

START_TEST(cancel_derived_asks_running_input_to_stop)
{
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 4);
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *g = fut_then(fut_submit(pool, fut_test_task_block, &b), h_inc, &r);
    fut_test_wait_atomic(&b.started, 1);
    ck_assert(fut_cancel(g));
    ck_assert_int_eq(fut_state(g), FUT_CANCELLED);
    fut_test_latch_open(&b.latch);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&b.finished), 1);
    ck_assert_int_eq(atomic_load(&b.cancel_seen), 1);
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    fut_release(g);
    fut_test_blocker_destroy(&b);
}
END_TEST

/* Cancelling the end of a longer chain reaches the head when nothing else
 * holds the links. */
START_TEST(cancel_chain_end_reaches_unshared_head)
{
    fut_test_held_t h;
    fut_test_held_start(&h);
    fut_test_counted_t c;
    fut_test_counted_init(&c, 5);
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_t *q = fut_submit_ex(h.pool, fut_test_task_counted, &c,
                             fut_test_counted_free, 0);
    ck_assert_int_eq(fut_on_done(q, fut_test_counted_done, &c), 0);
    fut_t *g = fut_then(fut_then(fut_then(q, h_inc, &r), h_inc, &r), h_inc, &r);
    ck_assert(fut_cancel(g));
    fut_test_wait_atomic(&c.done_calls, 1);
    ck_assert_int_eq(atomic_load(&c.state_seen), FUT_CANCELLED);
    fut_test_held_finish(&h);
    ck_assert_int_eq(atomic_load(&c.ran), 0);
    ck_assert_int_eq(atomic_load(&c.freed), 1);
    ck_assert_int_eq(atomic_load(&r.ran), 0);
    fut_release(g);
}
END_TEST

/* ------------------------------------------------------------ progress */

typedef struct plisten {
    atomic_int calls;
    atomic_int seen;
    atomic_int thread;
    _Atomic(fut_t *) target;
} plisten_t;

static void on_progress(fut_t *f, void *progress, void *arg)
{
    plisten_t *l = arg;
    atomic_store(&l->target, f);
    atomic_store(&l->seen, progress ? *(const int *)progress : -1);
    atomic_store(&l->thread, fut_test_thread_id());
    atomic_fetch_add(&l->calls, 1);
}

/* A listener on the end of a chain hears progress sent to its head. */
START_TEST(progress_relayed_down_a_chain)
{
    static const int values[3] = {10, 20, 30};
    plisten_t l = {.calls = 0, .seen = 0, .thread = 0, .target = NULL};
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_promise_t *p = fut_promise_new();
    fut_t *g = fut_then(fut_promise_future(p), h_inc, &r);
    g = fut_catch(g, h_recover, &r);
    g = fut_then(g, h_inc, &r);
    ck_assert_int_eq(fut_on_progress(g, on_progress, &l), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fut_notify(p, (void *)&values[i]), 0);
        ck_assert_int_eq(atomic_load(&l.calls), i + 1);
        ck_assert_int_eq(atomic_load(&l.seen), values[i]);
    }
    ck_assert_ptr_eq(atomic_load(&l.target), g);
    ck_assert_int_eq(atomic_load(&l.thread), fut_test_thread_id());
    ck_assert_int_eq(fut_state(g), FUT_PENDING);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(1), NULL), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 3);
    ck_assert_int_eq(fut_on_progress(g, on_progress, &l), EALREADY);
    ck_assert_int_eq(atomic_load(&l.calls), 3);
    fut_promise_release(p);
    fut_release(g);
}
END_TEST

typedef struct progress_task {
    fut_test_latch_t go;
} progress_task_t;

static void *task_progress(fut_ctx_t *ctx, void *arg)
{
    static const int value = 55;
    progress_task_t *t = arg;
    fut_test_latch_wait(&t->go);
    fut_progress(ctx, (void *)&value);
    return FUT_TEST_PTR(1);
}

/* fut_progress in a task reaches a listener on a future chained to it, on
 * the worker thread. */
START_TEST(progress_from_task_relayed_down_a_chain)
{
    progress_task_t t;
    fut_test_latch_init(&t.go);
    plisten_t l = {.calls = 0, .seen = 0, .thread = 0, .target = NULL};
    rec_t r;
    rec_init(&r, NULL, 0);
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *g = fut_then(
        fut_then(fut_submit(pool, task_progress, &t), h_inc, &r), h_inc, &r);
    ck_assert_int_eq(fut_on_progress(g, on_progress, &l), 0);
    fut_test_latch_open(&t.go);
    void *v = NULL;
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 3);
    fut_executor_free(pool);
    ck_assert_int_eq(atomic_load(&l.calls), 1);
    ck_assert_int_eq(atomic_load(&l.seen), 55);
    ck_assert_int_ne(atomic_load(&l.thread), fut_test_thread_id());
    fut_release(g);
    fut_test_latch_destroy(&t.go);
}
END_TEST

/* --------------------------------------------------------- _on forms */

static void *task_thread_id(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return FUT_TEST_PTR(fut_test_thread_id());
}

/* The _on forms run their handler on the executor: with a one-thread pool,
 * on its worker, never inline on the calling or settling thread, even when
 * the input has already settled. */
START_TEST(on_forms_run_handler_on_pool_thread)
{
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *t = fut_submit(pool, task_thread_id, NULL);
    void *v = NULL;
    ck_assert_int_eq(fut_get(t, FUT_FOREVER, &v), 0);
    int worker = FUT_TEST_INT(v);
    int me = fut_test_thread_id();
    ck_assert_int_ne(worker, me);
    fut_release(t);

    rec_t r[5];
    for (int i = 0; i < 5; i++)
        rec_init(&r[i], NULL, i);
    fut_promise_t *p = fut_promise_new();
    fut_t *g[5];
    g[0] = fut_then_on(pool, fut_resolved(FUT_TEST_PTR(1), NULL), h_inc, &r[0]);
    g[1] = fut_catch_on(pool, fut_rejected(EIO, NULL), h_recover, &r[1]);
    g[2] = fut_finally_on(pool, fut_resolved(NULL, NULL), h_finally, &r[2]);
    g[3] = fut_then_on(pool, fut_promise_future(p), h_inc, &r[3]);
    g[4] =
        fut_then_ex(pool, fut_promise_future(p), h_inc, NULL, &r[4], rec_free);
    /* The promise settles here, on this thread. */
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(7), NULL), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(fut_wait(g[i], FUT_FOREVER), 0);
    ck_assert_int_eq(fut_get(g[0], 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 2);
    ck_assert_int_eq(fut_get(g[1], 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1001);
    ck_assert_int_eq(fut_get(g[3], 0, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 8);
    fut_executor_free(pool);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(atomic_load(&r[i].ran), 1);
        ck_assert_msg(atomic_load(&r[i].thread) == worker,
                      "handler %d ran on thread %d, not %d", i,
                      atomic_load(&r[i].thread), worker);
        fut_release(g[i]);
    }
    ck_assert_int_eq(atomic_load(&r[4].freed), 1);
    fut_promise_release(p);
}
END_TEST

/* ------------------------ rule 6: no unbounded recursion (trampoline) */

#define STACK_8MIB ((size_t)8 << 20)
#define STACK_256KIB ((size_t)256 << 10)

typedef struct depth_job {
    size_t n;
    bool settle_last; /* build on a pending head, then resolve it */
    int rc;
    intptr_t value;
    bool finished;
} depth_job_t;

/* Runs on a thread with a chosen stack: builds an n-long chain of fut_then
 * and settles it; the whole chain is released on this stack too. */
static void *depth_chain_body(void *arg)
{
    depth_job_t *j = arg;
    fut_promise_t *p = NULL;
    fut_t *g;
    if (j->settle_last) {
        p = fut_promise_new();
        if (p == NULL) {
            j->rc = ENOMEM;
            return NULL;
        }
        g = fut_promise_future(p);
    } else {
        g = fut_resolved(NULL, NULL);
    }
    for (size_t i = 0; i < j->n; i++)
        g = fut_then(g, h_plain_inc, NULL);
    if (p != NULL)
        fut_resolve(p, NULL, NULL);
    void *v = NULL;
    j->rc = fut_get(g, FUT_FOREVER, &v);
    j->value = (intptr_t)v;
    fut_release(g);
    fut_promise_release(p);
    j->finished = true;
    return NULL;
}

static void run_on_stack(size_t stack, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    ck_assert_int_eq(pthread_attr_init(&attr), 0);
    ck_assert_int_eq(pthread_attr_setstacksize(&attr, stack), 0);
    pthread_t t;
    int rc = pthread_create(&t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    ck_assert_msg(rc == 0, "pthread_create: %d", rc);
    fut_test_join(t);
}

static void check_chain_depth(size_t n, size_t stack, bool settle_last)
{
    depth_job_t j = {.n = n,
                     .settle_last = settle_last,
                     .rc = -1,
                     .value = 0,
                     .finished = false};
    run_on_stack(stack, depth_chain_body, &j);
    ck_assert(j.finished);
    ck_assert_int_eq(j.rc, 0);
    ck_assert_int_eq(j.value, (intptr_t)n);
}

enum { DEPTH_QUICK = 100000, DEPTH_STRESS = 1000000 };

START_TEST(depth_resolve_head_of_100k_chain_on_8mib_stack)
{
    check_chain_depth(DEPTH_QUICK, STACK_8MIB, true);
}
END_TEST

START_TEST(depth_resolve_head_of_100k_chain_on_256kib_stack)
{
    check_chain_depth(DEPTH_QUICK, STACK_256KIB, true);
}
END_TEST

START_TEST(depth_build_100k_chain_on_settled_head_on_8mib_stack)
{
    check_chain_depth(DEPTH_QUICK, STACK_8MIB, false);
}
END_TEST

START_TEST(depth_build_100k_chain_on_settled_head_on_256kib_stack)
{
    check_chain_depth(DEPTH_QUICK, STACK_256KIB, false);
}
END_TEST

START_TEST(depth_resolve_head_of_1m_chain_on_8mib_stack)
{
    check_chain_depth(DEPTH_STRESS, STACK_8MIB, true);
}
END_TEST

START_TEST(depth_resolve_head_of_1m_chain_on_256kib_stack)
{
    check_chain_depth(DEPTH_STRESS, STACK_256KIB, true);
}
END_TEST

START_TEST(depth_build_1m_chain_on_settled_head_on_8mib_stack)
{
    check_chain_depth(DEPTH_STRESS, STACK_8MIB, false);
}
END_TEST

START_TEST(depth_build_1m_chain_on_settled_head_on_256kib_stack)
{
    check_chain_depth(DEPTH_STRESS, STACK_256KIB, false);
}
END_TEST

/* A chain of adoptions: each link adopts an already-fulfilled future, and
 * the head is resolved last.  Adoption must go through the trampoline too. */
static void *h_adopt_inc(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)arg;
    return fut_adopt(ctx, fut_resolved((void *)((intptr_t)value + 1), NULL));
}

typedef struct adopt_depth_job {
    size_t n;
    int rc;
    intptr_t value;
} adopt_depth_job_t;

static void *depth_adopt_body(void *arg)
{
    adopt_depth_job_t *j = arg;
    fut_promise_t *p = fut_promise_new();
    if (p == NULL) {
        j->rc = ENOMEM;
        return NULL;
    }
    fut_t *g = fut_promise_future(p);
    for (size_t i = 0; i < j->n; i++)
        g = fut_then(g, h_adopt_inc, NULL);
    fut_resolve(p, NULL, NULL);
    void *v = NULL;
    j->rc = fut_get(g, FUT_FOREVER, &v);
    j->value = (intptr_t)v;
    fut_release(g);
    fut_promise_release(p);
    return NULL;
}

START_TEST(depth_resolve_head_of_100k_adopting_chain_on_256kib_stack)
{
    adopt_depth_job_t j = {.n = DEPTH_QUICK, .rc = -1, .value = 0};
    run_on_stack(STACK_256KIB, depth_adopt_body, &j);
    ck_assert_int_eq(j.rc, 0);
    ck_assert_int_eq(j.value, DEPTH_QUICK);
}
END_TEST

/* ------------------------------------------------------------- suite */

Suite *fut_test_chain_suite(void)
{
    Suite *s = suite_create("chain");
    TCase *tc = tcase_create("chain");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(
        tc, aplus_2_2_1_then_catch_missing_handler_passes_outcome_through);
    tcase_add_test(tc,
                   aplus_2_2_2_on_value_runs_after_fulfilment_with_value_once);
    tcase_add_test(tc,
                   aplus_2_2_3_on_error_runs_after_rejection_with_reason_once);
    tcase_add_test(tc,
                   aplus_2_2_6_1_on_value_handlers_run_in_registration_order);
    tcase_add_test(tc,
                   aplus_2_2_6_2_on_error_handlers_run_in_registration_order);
    tcase_add_test(tc, aplus_2_2_7_1_returned_value_fulfils_the_new_future);
    tcase_add_test(tc, aplus_2_2_7_2_failing_handler_rejects_the_new_future);
    tcase_add_test(tc, aplus_2_2_7_3_value_skips_catch_and_stays_alive);
    tcase_add_test(tc,
                   aplus_2_2_7_4_error_skips_then_and_cancel_passes_through);
    tcase_add_test(tc,
                   aplus_2_3_1_handler_adopting_its_own_future_rejects_edeadlk);
    tcase_add_test(tc,
                   aplus_2_3_1_task_adopting_its_own_future_rejects_edeadlk);
    tcase_add_test(tc, aplus_2_3_1_adoption_cycle_rejects_edeadlk);
    tcase_add_test(tc, aplus_2_3_2_1_adopting_pending_future_waits_for_it);
    tcase_add_test(tc, aplus_2_3_2_2_adopting_fulfilled_future_takes_its_value);
    tcase_add_test(tc, aplus_2_3_2_3_adopting_rejected_future_takes_its_error);
    tcase_add_test(tc, aplus_2_3_2_task_adopting_another_task_flattens);
    tcase_add_test(tc, aplus_2_3_4_plain_value_fulfils);
    tcase_add_test(tc, chain_catch_recovers_then_continues);
    tcase_add_test(tc, chain_then_catch_runs_exactly_one_handler);
    tcase_add_test(tc,
                   chain_finally_runs_on_every_outcome_and_passes_it_through);
    tcase_add_test(
        tc, chain_handler_on_settled_future_runs_at_once_on_calling_thread);
    tcase_add_test(tc, chain_handler_runs_inline_on_settling_thread);
    tcase_add_test(tc, chain_handler_value_destroyed_once_with_derived_future);
    tcase_add_test(tc, chain_bad_arguments_reject_einval_and_release_input);
    tcase_add_test(tc, chain_null_handler_rejects_einval_and_releases_input);
    tcase_add_test(tc, then_ex_free_arg_runs_once_after_handler_ran);
    tcase_add_test(tc, then_ex_free_arg_runs_once_when_handler_skipped);
    tcase_add_test(tc, then_ex_free_arg_runs_once_when_cancelled);
    tcase_add_test(tc, then_ex_free_arg_runs_once_on_bad_arguments_and_refusal);
    tcase_add_test(tc, cancel_derived_cancels_input_nothing_else_holds);
    tcase_add_test(tc, cancel_derived_spares_input_the_caller_retained);
    tcase_add_test(tc, cancel_derived_asks_running_input_to_stop);
    tcase_add_test(tc, cancel_chain_end_reaches_unshared_head);
    tcase_add_test(tc, progress_relayed_down_a_chain);
    tcase_add_test(tc, progress_from_task_relayed_down_a_chain);
    tcase_add_test(tc, on_forms_run_handler_on_pool_thread);
    tcase_add_test(tc, depth_resolve_head_of_100k_chain_on_8mib_stack);
    tcase_add_test(tc, depth_resolve_head_of_100k_chain_on_256kib_stack);
    tcase_add_test(tc, depth_build_100k_chain_on_settled_head_on_8mib_stack);
    tcase_add_test(tc, depth_build_100k_chain_on_settled_head_on_256kib_stack);
    tcase_add_test(tc,
                   depth_resolve_head_of_100k_adopting_chain_on_256kib_stack);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("chain_stress");
    tcase_set_tags(st, "stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(st, depth_resolve_head_of_1m_chain_on_8mib_stack);
    tcase_add_test(st, depth_resolve_head_of_1m_chain_on_256kib_stack);
    tcase_add_test(st, depth_build_1m_chain_on_settled_head_on_8mib_stack);
    tcase_add_test(st, depth_build_1m_chain_on_settled_head_on_256kib_stack);
    suite_add_tcase(s, st);
    return s;
}

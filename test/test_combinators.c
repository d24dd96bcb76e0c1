/*
 * test_combinators.c - fut_when_all / _all_settled / _any / _first / _some
 * and fut_when_ex: the jQuery $.when rules (fail fast while others are
 * pending, values in input order, no arguments), each combinator's early
 * decision, FUT_CANCEL_LOSERS, values borrowed for as long as the result
 * lives, bad arguments, rule 6 (no unbounded recursion) for a when_all of
 * 100,000 / 1,000,000 inputs on an 8 MiB and a 256 KiB stack, and seeded races:
 * inputs settled from several threads released together by a barrier.
 *
 * Races print "seed=N"; FUT_TEST_SEED=N replays from that seed (seed i of
 * a run is base + i, and a failure names the seed it failed on).
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_combinators_suite(void);

/* ---------------------------------------------------- jQuery $.when */

START_TEST(jquery_when_fails_fast_while_others_pending)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    fut_t *all = fut_when_all(f, 3);
    ck_assert_int_eq(fut_state(all), FUT_PENDING);
    ck_assert_int_eq(fut_reject(p[1], EIO, "input %d", 1), 0);
    /* Decided while inputs 0 and 2 are still pending. */
    ck_assert_int_eq(fut_wait(all, FUT_S(10)), 0);
    ck_assert_int_eq(fut_get(all, 0, NULL), EIO);
    ck_assert_int_eq(fut_state(all), FUT_REJECTED);
    ck_assert_str_eq(fut_error(all)->message, "input 1");
    /* Later outcomes change nothing, and their values are not lost. */
    ck_assert_int_eq(
        fut_resolve(p[0], fut_test_obj_new(&tr, 0), fut_test_obj_free), 0);
    ck_assert_int_eq(fut_reject(p[2], ERANGE, "input 2"), 0);
    ck_assert_int_eq(fut_get(all, 0, NULL), EIO);
    ck_assert_str_eq(fut_error(all)->message, "input 1");
    fut_test_release_all(p, NULL, 3);
    fut_release(all);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

START_TEST(jquery_when_first_rejection_wins)
{
    fut_promise_t *p[4];
    fut_t *f[4];
    fut_test_promises(p, f, 4);
    fut_t *all = fut_when_all(f, 4);
    ck_assert_int_eq(fut_resolve(p[0], NULL, NULL), 0);
    ck_assert_int_eq(fut_reject(p[3], ENOENT, "three"), 0);
    ck_assert_int_eq(fut_reject(p[1], EIO, "one"), 0);
    ck_assert_int_eq(fut_get(all, FUT_FOREVER, NULL), ENOENT);
    ck_assert_str_eq(fut_error(all)->message, "three");
    ck_assert_int_eq(fut_resolve(p[2], NULL, NULL), 0);
    ck_assert_int_eq(fut_get(all, FUT_FOREVER, NULL), ENOENT);
    fut_test_release_all(p, NULL, 4);
    fut_release(all);
}
END_TEST

/* Values in input order, whatever the order of fulfilment; already
 * settled inputs mixed in. */
START_TEST(jquery_when_values_in_input_order)
{
    enum { N = 9 };
    unsigned seed = fut_test_seed();
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p[N];
    fut_t *f[N];
    fut_test_obj_t *o[N];
    fut_test_promises(p, f, N);
    for (int i = 0; i < N; i++)
        o[i] = fut_test_obj_new(&tr, i);
    /* Inputs 0, 4 and 8 are replaced by already-fulfilled futures. */
    for (int i = 0; i < N; i += 4) {
        fut_release(f[i]);
        f[i] = fut_resolved(o[i], fut_test_obj_free);
    }
    fut_t *all = fut_when_all(f, N);
    int order[N], m = 0;
    for (int i = 0; i < N; i++)
        if (i % 4 != 0)
            order[m++] = i;
    unsigned st = seed;
    for (int i = m - 1; i > 0; i--) {
        int j = (int)(fut_test_rand(&st) % (unsigned)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < m; i++) {
        ck_assert_msg(fut_state(all) == FUT_PENDING,
                      "seed %u: decided before the last input", seed);
        ck_assert_int_eq(
            fut_resolve(p[order[i]], o[order[i]], fut_test_obj_free), 0);
    }
    void *v = NULL;
    ck_assert_int_eq(fut_get(all, FUT_FOREVER, &v), 0);
    void **vals = v;
    ck_assert_ptr_nonnull(vals);
    for (int i = 0; i < N; i++)
        ck_assert_msg(vals[i] == o[i], "seed %u: value %d out of order", seed,
                      i);
    fut_test_release_all(p, NULL, N);
    ck_assert_int_eq(atomic_load(&tr.freed), 0); /* kept alive by the result */
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(o[i]->value, i);
    fut_release(all);
    ck_assert_int_eq(atomic_load(&tr.freed), N);
}
END_TEST

START_TEST(jquery_when_no_arguments_fulfils_at_once)
{
    fut_t *all = fut_when_all(NULL, 0);
    ck_assert_ptr_nonnull(all);
    ck_assert_int_eq(fut_state(all), FUT_FULFILLED);
    ck_assert_int_eq(fut_get(all, 0, NULL), 0);
    fut_release(all);
    fut_t *dummy[1] = {NULL};
    all = fut_when_all(dummy, 0);
    ck_assert_int_eq(fut_state(all), FUT_FULFILLED);
    fut_release(all);
    all = fut_when_all_settled(NULL, 0);
    ck_assert_int_eq(fut_state(all), FUT_FULFILLED);
    fut_release(all);
}
END_TEST

START_TEST(when_all_cancelled_input_rejects_ecanceled)
{
    fut_promise_t *p[2];
    fut_t *f[2];
    fut_test_promises(p, f, 2);
    fut_t *keep = fut_retain(f[1]);
    fut_t *all = fut_when_all(f, 2);
    ck_assert(fut_cancel(keep));
    ck_assert_int_eq(fut_wait(all, FUT_S(10)), 0);
    ck_assert_int_eq(fut_get(all, 0, NULL), ECANCELED);
    ck_assert_int_eq(fut_state(f[0]), FUT_PENDING); /* still ours via p[0] */
    fut_test_release_all(p, NULL, 2);
    fut_release(keep);
    fut_release(all);
}
END_TEST

/* ------------------------------------------------- other combinators */

START_TEST(when_all_settled_never_rejects_and_keeps_inputs)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p[3];
    fut_t *f[3], *in[3];
    fut_test_promises(p, f, 3);
    fut_t *cancel_me = fut_retain(f[2]);
    memcpy(in, f, sizeof in);
    fut_t *r = fut_when_all_settled(in, 3);
    ck_assert_int_eq(fut_reject(p[1], EIO, "one"), 0);
    ck_assert(fut_cancel(cancel_me));
    ck_assert_int_eq(fut_state(r), FUT_PENDING);
    fut_test_obj_t *o = fut_test_obj_new(&tr, 5);
    ck_assert_int_eq(fut_resolve(p[0], o, fut_test_obj_free), 0);
    fut_test_release_all(p, NULL, 3);
    fut_release(cancel_me);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
    fut_t **arr = v;
    ck_assert_ptr_nonnull(arr);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(arr[i], f[i]);
    ck_assert_int_eq(fut_state(arr[0]), FUT_FULFILLED);
    ck_assert_int_eq(fut_state(arr[1]), FUT_REJECTED);
    ck_assert_int_eq(fut_state(arr[2]), FUT_CANCELLED);
    ck_assert_int_eq(fut_get(arr[0], 0, &v), 0);
    ck_assert_ptr_eq(v, o);
    ck_assert_int_eq(fut_get(arr[1], 0, NULL), EIO);
    ck_assert_str_eq(fut_error(arr[1])->message, "one");
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    fut_release(r);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

START_TEST(when_any_first_fulfilment_decides_early)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    fut_t *r = fut_when_any(f, 3);
    ck_assert_int_eq(fut_reject(p[0], EIO, "zero"), 0);
    /* A rejection does not decide. */
    ck_assert_int_eq(fut_state(r), FUT_PENDING);
    fut_test_obj_t *o = fut_test_obj_new(&tr, 2);
    ck_assert_int_eq(fut_resolve(p[2], o, fut_test_obj_free), 0);
    ck_assert_int_eq(fut_wait(r, FUT_S(10)), 0); /* while input 1 is pending */
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, 0, &v), 0);
    fut_any_t *any = v;
    ck_assert_uint_eq(any->index, 2);
    ck_assert_ptr_eq(any->value, o);
    ck_assert_int_eq(fut_resolve(p[1], FUT_TEST_PTR(1), NULL), 0);
    ck_assert_int_eq(fut_get(r, 0, &v), 0);
    ck_assert_uint_eq(((fut_any_t *)v)->index, 2);
    fut_test_release_all(p, NULL, 3);
    /* The winner's value lives as long as r. */
    ck_assert_int_eq(atomic_load(&tr.freed), 0);
    ck_assert_int_eq(((fut_test_obj_t *)any->value)->value, 2);
    fut_release(r);
    ck_assert_int_eq(atomic_load(&tr.freed), 1);
}
END_TEST

START_TEST(when_any_rejects_only_when_all_reject_with_last_rejection)
{
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    fut_t *r = fut_when_any(f, 3);
    ck_assert_int_eq(fut_reject(p[1], EIO, "one"), 0);
    ck_assert_int_eq(fut_reject(p[0], EDOM, "zero"), 0);
    ck_assert_int_eq(fut_state(r), FUT_PENDING);
    ck_assert_int_eq(fut_reject(p[2], ERANGE, "two"), 0);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ERANGE);
    ck_assert_str_eq(fut_error(r)->message, "two");
    fut_test_release_all(p, NULL, 3);
    fut_release(r);
}
END_TEST

START_TEST(when_first_first_settlement_decides_with_value)
{
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    fut_t *r = fut_when_first(f, 3);
    ck_assert_int_eq(fut_state(r), FUT_PENDING);
    ck_assert_int_eq(fut_resolve(p[1], FUT_TEST_PTR(11), NULL), 0);
    ck_assert_int_eq(fut_wait(r, FUT_S(10)), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, 0, &v), 0);
    ck_assert_uint_eq(((fut_any_t *)v)->index, 1);
    ck_assert_int_eq(FUT_TEST_INT(((fut_any_t *)v)->value), 11);
    ck_assert_int_eq(fut_reject(p[0], EIO, "late"), 0);
    ck_assert_int_eq(fut_get(r, 0, &v), 0);
    fut_test_release_all(p, NULL, 3);
    fut_release(r);
}
END_TEST

START_TEST(when_first_first_settlement_decides_with_rejection)
{
    fut_promise_t *p[3];
    fut_t *f[3];
    fut_test_promises(p, f, 3);
    fut_t *r = fut_when_first(f, 3);
    ck_assert_int_eq(fut_reject(p[2], EPROTO, "two"), 0);
    ck_assert_int_eq(fut_wait(r, FUT_S(10)), 0);
    ck_assert_int_eq(fut_get(r, 0, NULL), EPROTO);
    ck_assert_str_eq(fut_error(r)->message, "two");
    ck_assert_int_eq(fut_resolve(p[0], NULL, NULL), 0);
    ck_assert_int_eq(fut_get(r, 0, NULL), EPROTO);
    fut_test_release_all(p, NULL, 3);
    fut_release(r);
}
END_TEST

START_TEST(when_some_first_k_in_fulfilment_order)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p[5];
    fut_t *f[5];
    fut_test_obj_t *o[5];
    fut_test_promises(p, f, 5);
    for (int i = 0; i < 5; i++)
        o[i] = fut_test_obj_new(&tr, i);
    fut_t *r = fut_when_some(f, 5, 3);
    ck_assert_int_eq(fut_resolve(p[3], o[3], fut_test_obj_free), 0);
    ck_assert_int_eq(fut_reject(p[1], EIO, "one"), 0);
    /* Input 1 rejects, so its object was never handed over: free it here. */
    fut_test_obj_free(o[1]);
    ck_assert_int_eq(fut_resolve(p[0], o[0], fut_test_obj_free), 0);
    ck_assert_int_eq(fut_state(r), FUT_PENDING);
    ck_assert_int_eq(fut_resolve(p[4], o[4], fut_test_obj_free), 0);
    ck_assert_int_eq(fut_wait(r, FUT_S(10)), 0); /* input 2 still pending */
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, 0, &v), 0);
    fut_any_t *some = v;
    const size_t want[3] = {3, 0, 4};
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(some[i].index, want[i]);
        ck_assert_ptr_eq(some[i].value, o[want[i]]);
    }
    ck_assert_int_eq(fut_resolve(p[2], o[2], fut_test_obj_free), 0);
    fut_test_release_all(p, NULL, 5);
    ck_assert_int_eq(o[3]->value, 3); /* alive with r */
    fut_release(r);
    ck_assert_int_eq(atomic_load(&tr.freed), 5);
}
END_TEST

START_TEST(when_some_rejects_as_soon_as_quorum_unreachable)
{
    fut_promise_t *p[4];
    fut_t *f[4];
    fut_test_promises(p, f, 4);
    fut_t *r = fut_when_some(f, 4, 3);
    ck_assert_int_eq(fut_reject(p[0], EIO, "zero"), 0);
    /* The other 3 can still all fulfil. */
    ck_assert_int_eq(fut_state(r), FUT_PENDING);
    ck_assert_int_eq(fut_resolve(p[3], NULL, NULL), 0);
    ck_assert_int_eq(fut_reject(p[2], ENOENT, "two"), 0);
    ck_assert_int_eq(fut_wait(r, FUT_S(10)), 0); /* input 1 still pending */
    ck_assert_int_eq(fut_get(r, 0, NULL), ENOENT);
    ck_assert_str_eq(fut_error(r)->message, "two");
    ck_assert_int_eq(fut_resolve(p[1], NULL, NULL), 0);
    ck_assert_int_eq(fut_get(r, 0, NULL), ENOENT);
    fut_test_release_all(p, NULL, 4);
    fut_release(r);
}
END_TEST

START_TEST(when_some_k_zero_fulfils_at_once_and_k_above_n_is_einval)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_promise_t *p[2];
    fut_t *f[2];
    fut_test_promises(p, f, 2);
    fut_t *r = fut_when_some(f, 2, 0);
    ck_assert_int_eq(fut_state(r), FUT_FULFILLED);
    fut_release(r);
    fut_t *g[2] = {fut_resolved(fut_test_obj_new(&tr, 0), fut_test_obj_free),
                   fut_resolved(fut_test_obj_new(&tr, 1), fut_test_obj_free)};
    r = fut_when_some(g, 2, 3);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    ck_assert_int_eq(atomic_load(&tr.freed), 2); /* the inputs were consumed */
    r = fut_when_some(NULL, 0, 0);
    ck_assert_int_eq(fut_state(r), FUT_FULFILLED);
    fut_release(r);
    fut_test_release_all(p, NULL, 2);
}
END_TEST

START_TEST(combinators_bad_arguments_reject_einval_and_consume_inputs)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_t *r = fut_when_any(NULL, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    r = fut_when_first(NULL, 0);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    r = fut_when_all(NULL, 2);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    r = fut_when_ex(FUT_WHEN_ANY, NULL, 0, 0, FUT_CANCEL_LOSERS);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    fut_t *g[2] = {fut_resolved(fut_test_obj_new(&tr, 0), fut_test_obj_free),
                   fut_resolved(fut_test_obj_new(&tr, 1), fut_test_obj_free)};
    r = fut_when_ex(99, g, 2, 0, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), EINVAL);
    fut_release(r);
    ck_assert_int_eq(atomic_load(&tr.freed), 2);
}
END_TEST

/* fut_when_ex without flags is the plain combinator. */
/* The plain combinator of a kind, for when_ex_kinds_match_plain_combinators
 * (k is used by FUT_WHEN_SOME only, as in fut_when_ex). */
static fut_t *plain_combinator(int kind, fut_t **fs, size_t n, size_t k)
{
    switch (kind) {
    case FUT_WHEN_ALL:
        return fut_when_all(fs, n);
    case FUT_WHEN_ALL_SETTLED:
        return fut_when_all_settled(fs, n);
    case FUT_WHEN_ANY:
        return fut_when_any(fs, n);
    case FUT_WHEN_FIRST:
        return fut_when_first(fs, n);
    default:
        return fut_when_some(fs, n, k);
    }
}

/* fut_when_ex(kind, ...) gives the same result as the plain combinator of
 * that kind on the same inputs (input i fulfilled with i + 1). */
START_TEST(when_ex_kinds_match_plain_combinators)
{
    enum { N = 2 };
    const int kinds[] = {FUT_WHEN_ALL, FUT_WHEN_ALL_SETTLED, FUT_WHEN_ANY,
                         FUT_WHEN_FIRST, FUT_WHEN_SOME};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int kind = kinds[k];
        fut_t *fe[N], *fp[N];
        for (int i = 0; i < N; i++) {
            fe[i] = fut_resolved(FUT_TEST_PTR(i + 1), NULL);
            fp[i] = fut_resolved(FUT_TEST_PTR(i + 1), NULL);
        }
        fut_t *re = fut_when_ex(kind, fe, N, N, 0);
        fut_t *rp = plain_combinator(kind, fp, N, N);
        void *ve = NULL, *vp = NULL;
        ck_assert_msg(fut_get(re, FUT_FOREVER, &ve) == 0, "kind %d", kind);
        ck_assert_msg(fut_get(rp, FUT_FOREVER, &vp) == 0, "kind %d", kind);
        switch (kind) {
        case FUT_WHEN_ALL:
            for (int i = 0; i < N; i++) {
                ck_assert_ptr_eq(((void **)ve)[i], ((void **)vp)[i]);
                ck_assert_int_eq(FUT_TEST_INT(((void **)ve)[i]), i + 1);
            }
            break;
        case FUT_WHEN_ALL_SETTLED:
            for (int i = 0; i < N; i++) {
                fut_t *a = ((fut_t **)ve)[i], *b = ((fut_t **)vp)[i];
                ck_assert_ptr_eq(a, fe[i]);
                ck_assert_ptr_eq(b, fp[i]);
                void *va = NULL, *vb = NULL;
                ck_assert_int_eq(fut_get(a, 0, &va), 0);
                ck_assert_int_eq(fut_get(b, 0, &vb), 0);
                ck_assert_ptr_eq(va, vb);
            }
            break;
        case FUT_WHEN_SOME:
            for (int i = 0; i < N; i++) {
                fut_any_t *a = &((fut_any_t *)ve)[i];
                fut_any_t *b = &((fut_any_t *)vp)[i];
                ck_assert_uint_eq(a->index, b->index);
                ck_assert_ptr_eq(a->value, b->value);
                ck_assert_int_eq(FUT_TEST_INT(a->value), (int)a->index + 1);
            }
            ck_assert_uint_ne(((fut_any_t *)ve)[0].index,
                              ((fut_any_t *)ve)[1].index);
            break;
        default: {
            fut_any_t *a = ve, *b = vp;
            ck_assert_uint_lt(a->index, N);
            ck_assert_uint_eq(a->index, b->index);
            ck_assert_ptr_eq(a->value, b->value);
            ck_assert_int_eq(FUT_TEST_INT(a->value), (int)a->index + 1);
            break;
        }
        }
        fut_release(re);
        fut_release(rp);
    }
}
END_TEST

/* ---------------------------------------------- FUT_CANCEL_LOSERS */

/* A queued task with a done-callback that records how it settled. */
static fut_t *queued_task(fut_test_held_t *h, fut_test_counted_t *c)
{
    fut_test_counted_init(c, 5);
    fut_t *q = fut_submit_ex(h->pool, fut_test_task_counted, c,
                             fut_test_counted_free, 0);
    ck_assert_int_eq(fut_on_done(q, fut_test_counted_done, c), 0);
    ck_assert_int_eq(fut_state(q), FUT_PENDING);
    return q;
}

/* Inputs: queued task, a promise that decides, queued task.  With
 * FUT_CANCEL_LOSERS the two tasks are cancelled once the result is decided
 * (unless keep: then the caller holds input 2, which must run). */
static void check_cancel_losers(int kind, size_t k, bool fulfil, bool keep)
{
    fut_test_held_t h;
    fut_test_held_start(&h);
    fut_test_counted_t c0, c2;
    fut_promise_t *p = fut_promise_new();
    fut_t *f[3] = {queued_task(&h, &c0), fut_promise_future(p),
                   queued_task(&h, &c2)};
    fut_t *kept = keep ? fut_retain(f[2]) : NULL;
    fut_t *r = fut_when_ex(kind, f, 3, k, FUT_CANCEL_LOSERS);
    ck_assert_int_eq(fut_state(r), FUT_PENDING);
    if (fulfil)
        ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(3), NULL), 0);
    else
        ck_assert_int_eq(fut_reject(p, EIO, "decides"), 0);
    ck_assert_int_eq(fut_wait(r, FUT_S(10)), 0);
    ck_assert_int_eq(fut_get(r, 0, NULL), fulfil ? 0 : EIO);
    fut_test_wait_atomic(&c0.done_calls, 1);
    ck_assert_int_eq(atomic_load(&c0.state_seen), FUT_CANCELLED);
    if (!keep) {
        fut_test_wait_atomic(&c2.done_calls, 1);
        ck_assert_int_eq(atomic_load(&c2.state_seen), FUT_CANCELLED);
    }
    fut_test_held_finish(&h);
    ck_assert_int_eq(atomic_load(&c0.ran), 0);
    ck_assert_int_eq(atomic_load(&c0.freed), 1);
    ck_assert_int_eq(atomic_load(&c2.ran), keep ? 1 : 0);
    ck_assert_int_eq(atomic_load(&c2.freed), 1);
    if (keep) {
        ck_assert_int_eq(fut_state(kept), FUT_FULFILLED);
        ck_assert_int_eq(atomic_load(&c2.state_seen), FUT_FULFILLED);
    }
    fut_release(kept);
    fut_release(r);
    fut_promise_release(p);
}

START_TEST(cancel_losers_when_all_after_first_rejection)
{
    check_cancel_losers(FUT_WHEN_ALL, 0, false, false);
}
END_TEST

START_TEST(cancel_losers_when_any_after_first_fulfilment)
{
    check_cancel_losers(FUT_WHEN_ANY, 0, true, false);
}
END_TEST

START_TEST(cancel_losers_when_first_after_first_settlement)
{
    check_cancel_losers(FUT_WHEN_FIRST, 0, true, false);
    check_cancel_losers(FUT_WHEN_FIRST, 0, false, false);
}
END_TEST

START_TEST(cancel_losers_when_some_after_quorum_or_unreachable)
{
    check_cancel_losers(FUT_WHEN_SOME, 1, true, false);
    check_cancel_losers(FUT_WHEN_SOME, 3, false, false);
}
END_TEST

START_TEST(cancel_losers_spares_inputs_the_caller_holds)
{
    check_cancel_losers(FUT_WHEN_ANY, 0, true, true);
    check_cancel_losers(FUT_WHEN_ALL, 0, false, true);
}
END_TEST

/* Without the flag the losers are left alone: queued tasks still run. */
START_TEST(without_cancel_losers_losers_still_run)
{
    fut_test_held_t h;
    fut_test_held_start(&h);
    fut_test_counted_t c0, c2;
    fut_promise_t *p = fut_promise_new();
    fut_t *f[3] = {queued_task(&h, &c0), fut_promise_future(p),
                   queued_task(&h, &c2)};
    fut_t *r = fut_when_any(f, 3);
    ck_assert_int_eq(fut_resolve(p, FUT_TEST_PTR(3), NULL), 0);
    void *v = NULL;
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, &v), 0);
    ck_assert_uint_eq(((fut_any_t *)v)->index, 1);
    fut_test_held_finish(&h);
    ck_assert_int_eq(atomic_load(&c0.ran), 1);
    ck_assert_int_eq(atomic_load(&c2.ran), 1);
    ck_assert_int_eq(atomic_load(&c0.state_seen), FUT_FULFILLED);
    ck_assert_int_eq(atomic_load(&c2.state_seen), FUT_FULFILLED);
    fut_release(r);
    fut_promise_release(p);
}
END_TEST

/* fut_cancel on a pending combined future: it had not started, so it is
 * now FUT_CANCELLED, and later input outcomes do not change it. */
START_TEST(cancel_combined_result_settles_it_cancelled)
{
    fut_promise_t *p[2];
    fut_t *f[2];
    fut_test_promises(p, f, 2);
    fut_t *r = fut_when_any(f, 2);
    ck_assert(fut_cancel(r));
    ck_assert_int_eq(fut_state(r), FUT_CANCELLED);
    ck_assert_int_eq(fut_get(r, 0, NULL), ECANCELED);
    fut_resolve(p[0], NULL, NULL); /* the inputs may or may not be cancelled */
    fut_resolve(p[1], NULL, NULL);
    ck_assert_int_eq(fut_state(r), FUT_CANCELLED);
    fut_test_release_all(p, NULL, 2);
    fut_release(r);
}
END_TEST

/* Regression: cancelling a combined future over a queued task must not
 * strand the tasks queued behind that one. */
START_TEST(cancel_combined_result_leaves_other_queued_work_running)
{
    fut_test_held_t h;
    fut_test_held_start(&h);
    fut_test_counted_t c0, c2;
    fut_t *q0 = queued_task(&h, &c0);
    fut_t *q2 = queued_task(&h, &c2);
    fut_t *r = fut_when_any(&q0, 1);
    ck_assert(fut_cancel(r));
    fut_test_latch_open(&h.b.latch);
    ck_assert_int_eq(fut_wait(q2, FUT_S(10)), 0);
    ck_assert_int_eq(fut_state(q2), FUT_FULFILLED);
    fut_test_held_finish(&h);
    ck_assert_int_eq(atomic_load(&c2.ran), 1);
    ck_assert_int_eq(atomic_load(&c0.freed), 1);
    fut_release(q2);
    fut_release(r);
}
END_TEST

/* ------------------------ rule 6: no unbounded recursion (wide when_all) */

#define STACK_8MIB ((size_t)8 << 20)
#define STACK_256KIB ((size_t)256 << 10)

static void *h_return_arg(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)value;
    return arg;
}

typedef struct wide_job {
    size_t n;
    int rc_chained, rc_settled;
    size_t bad;
    bool finished;
} wide_job_t;

/* Runs on a thread with a chosen stack.  First: n inputs all chained to one
 * pending head, so that resolving the head settles every input and then the
 * when_all, from inside one fut_resolve.  Second: n already-fulfilled
 * inputs.  Everything is released on this stack too. */
static void *wide_body(void *arg)
{
    wide_job_t *j = arg;
    fut_t **in = malloc(j->n * sizeof *in);
    fut_promise_t *p = fut_promise_new();
    if (in == NULL || p == NULL) {
        free(in);
        fut_promise_release(p);
        j->rc_chained = j->rc_settled = ENOMEM;
        return NULL;
    }
    fut_t *head = fut_promise_future(p);
    for (size_t i = 0; i < j->n; i++)
        in[i] = fut_then(fut_retain(head), h_return_arg, (void *)(uintptr_t)i);
    fut_release(head);
    fut_t *all = fut_when_all(in, j->n);
    fut_resolve(p, NULL, NULL);
    void *v = NULL;
    j->rc_chained = fut_get(all, FUT_FOREVER, &v);
    for (size_t i = 0; j->rc_chained == 0 && i < j->n; i++)
        if (((void **)v)[i] != (void *)(uintptr_t)i)
            j->bad++;
    fut_release(all);
    fut_promise_release(p);

    for (size_t i = 0; i < j->n; i++)
        in[i] = fut_resolved((void *)(uintptr_t)i, NULL);
    all = fut_when_all(in, j->n);
    j->rc_settled = fut_get(all, FUT_FOREVER, &v);
    for (size_t i = 0; j->rc_settled == 0 && i < j->n; i++)
        if (((void **)v)[i] != (void *)(uintptr_t)i)
            j->bad++;
    fut_release(all);
    free(in);
    j->finished = true;
    return NULL;
}

static void check_wide_when_all(size_t n, size_t stack)
{
    wide_job_t j = {.n = n,
                    .rc_chained = -1,
                    .rc_settled = -1,
                    .bad = 0,
                    .finished = false};
    pthread_attr_t attr;
    ck_assert_int_eq(pthread_attr_init(&attr), 0);
    ck_assert_int_eq(pthread_attr_setstacksize(&attr, stack), 0);
    pthread_t t;
    int rc = pthread_create(&t, &attr, wide_body, &j);
    pthread_attr_destroy(&attr);
    ck_assert_msg(rc == 0, "pthread_create: %d", rc);
    fut_test_join(t);
    ck_assert(j.finished);
    ck_assert_int_eq(j.rc_chained, 0);
    ck_assert_int_eq(j.rc_settled, 0);
    ck_assert_uint_eq(j.bad, 0);
}

START_TEST(depth_when_all_of_100k_inputs_on_8mib_stack)
{
    check_wide_when_all(100000, STACK_8MIB);
}
END_TEST

START_TEST(depth_when_all_of_100k_inputs_on_256kib_stack)
{
    check_wide_when_all(100000, STACK_256KIB);
}
END_TEST

START_TEST(depth_when_all_of_1m_inputs_on_8mib_stack)
{
    check_wide_when_all(1000000, STACK_8MIB);
}
END_TEST

START_TEST(depth_when_all_of_1m_inputs_on_256kib_stack)
{
    check_wide_when_all(1000000, STACK_256KIB);
}
END_TEST

/* ------------------------------------------------------------- races */

enum { RACE_MAX_N = 8, RACE_MAX_T = 4, RACE_CODE = 100 };

typedef struct race race_t;

typedef struct race_thread {
    race_t *race;
    int idx[RACE_MAX_N]; /* the inputs this thread settles, in order */
    int count;
} race_thread_t;

/* One round: n promises settled by nthreads threads released together.
 * pre inputs are settled before the combinators are built.  With late,
 * the test thread builds the combinators while the threads settle. */
struct race {
    unsigned seed;
    int n, k, nthreads;
    bool late;
    fut_promise_t *p[RACE_MAX_N];
    fut_t *f[RACE_MAX_N];
    fut_test_obj_t *obj[RACE_MAX_N];
    bool fulfil[RACE_MAX_N], pre[RACE_MAX_N];
    int thread_of[RACE_MAX_N], pos[RACE_MAX_N];
    race_thread_t th[RACE_MAX_T];
    fut_test_barrier_t barrier;
    atomic_int bad;
};

static void settle_input(race_t *r, int i)
{
    int rc = r->fulfil[i] ? fut_resolve(r->p[i], r->obj[i], fut_test_obj_free)
                          : fut_reject(r->p[i], RACE_CODE + i, "input %d", i);
    if (rc != 0)
        atomic_fetch_add(&r->bad, 1);
}

static void *race_settler(void *arg)
{
    race_thread_t *t = arg;
    fut_test_barrier_wait(&t->race->barrier);
    for (int j = 0; j < t->count; j++)
        settle_input(t->race, t->idx[j]);
    return NULL;
}

/* True when no input settled before i by i's own thread satisfies
 * want (fulfilled: 1, rejected: 0, either: -1). */
static bool first_in_thread(const race_t *r, int i, int want)
{
    for (int j = 0; j < r->n; j++)
        if (!r->pre[j] && r->thread_of[j] == r->thread_of[i] &&
            r->pos[j] < r->pos[i] && (want < 0 || r->fulfil[j] == (want == 1)))
            return false;
    return true;
}

static bool last_in_thread(const race_t *r, int i)
{
    for (int j = 0; j < r->n; j++)
        if (!r->pre[j] && r->thread_of[j] == r->thread_of[i] &&
            r->pos[j] > r->pos[i])
            return false;
    return true;
}

static int code_input(const race_t *r, int code)
{
    int i = code - RACE_CODE;
    return i >= 0 && i < r->n && !r->fulfil[i] ? i : -1;
}

static fut_t *race_when(race_t *r, int kind, size_t k)
{
    fut_t *in[RACE_MAX_N];
    for (int i = 0; i < r->n; i++)
        in[i] = fut_retain(r->f[i]);
    return fut_when_ex(kind, in, (size_t)r->n, k, 0);
}

static void race_plan(race_t *r, unsigned seed, fut_test_tracker_t *tr)
{
    unsigned st = seed;
    r->seed = seed;
    r->n = 2 + (int)(fut_test_rand(&st) % (RACE_MAX_N - 1));
    r->nthreads = 2 + (int)(fut_test_rand(&st) % (RACE_MAX_T - 1));
    r->k = 1 + (int)(fut_test_rand(&st) % (unsigned)r->n);
    r->late = fut_test_rand(&st) % 4 == 0;
    atomic_init(&r->bad, 0);
    for (int t = 0; t < r->nthreads; t++) {
        r->th[t].race = r;
        r->th[t].count = 0;
    }
    for (int i = 0; i < r->n; i++) {
        r->p[i] = fut_promise_new();
        ck_assert_ptr_nonnull(r->p[i]);
        r->f[i] = fut_promise_future(r->p[i]);
        r->fulfil[i] = fut_test_rand(&st) % 3 != 0;
        r->pre[i] = fut_test_rand(&st) % 5 == 0;
        r->obj[i] = r->fulfil[i] ? fut_test_obj_new(tr, i) : NULL;
        r->thread_of[i] = -1;
        r->pos[i] = -1;
        if (!r->pre[i]) {
            int t = (int)(fut_test_rand(&st) % (unsigned)r->nthreads);
            r->thread_of[i] = t;
            r->th[t].idx[r->th[t].count++] = i;
        }
    }
    /* Shuffle each thread's order, then note positions. */
    for (int t = 0; t < r->nthreads; t++) {
        race_thread_t *th = &r->th[t];
        for (int j = th->count - 1; j > 0; j--) {
            int m = (int)(fut_test_rand(&st) % (unsigned)(j + 1));
            int x = th->idx[j];
            th->idx[j] = th->idx[m];
            th->idx[m] = x;
        }
        for (int j = 0; j < th->count; j++)
            r->pos[th->idx[j]] = j;
    }
}

static void race_round(unsigned seed)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    race_t r;
    race_plan(&r, seed, &tr);
    for (int i = 0; i < r.n; i++)
        if (r.pre[i])
            settle_input(&r, i);

    enum { ALL, SETTLED, ANY, FIRST, SOME, NKINDS };
    fut_t *res[NKINDS];
    const int kinds[NKINDS] = {FUT_WHEN_ALL, FUT_WHEN_ALL_SETTLED, FUT_WHEN_ANY,
                               FUT_WHEN_FIRST, FUT_WHEN_SOME};
    fut_test_barrier_init(&r.barrier,
                          (unsigned)r.nthreads + (r.late ? 1u : 0u));
    pthread_t tids[RACE_MAX_T];
    if (!r.late)
        for (int c = 0; c < NKINDS; c++)
            res[c] = race_when(&r, kinds[c], (size_t)r.k);
    for (int t = 0; t < r.nthreads; t++)
        tids[t] = fut_test_spawn(race_settler, &r.th[t]);
    if (r.late) {
        fut_test_barrier_wait(&r.barrier);
        for (int c = 0; c < NKINDS; c++)
            res[c] = race_when(&r, kinds[c], (size_t)r.k);
    }
    for (int t = 0; t < r.nthreads; t++)
        fut_test_join(tids[t]);
    fut_test_barrier_destroy(&r.barrier);
    ck_assert_msg(atomic_load(&r.bad) == 0, "seed %u: a settle failed", seed);

    int nful = 0, npre_ful = 0, npre_rej = 0, nrej_live = 0;
    for (int i = 0; i < r.n; i++) {
        nful += r.fulfil[i];
        npre_ful += r.pre[i] && r.fulfil[i];
        npre_rej += r.pre[i] && !r.fulfil[i];
        nrej_live += !r.pre[i] && !r.fulfil[i];
    }
    bool strict = !r.late; /* orders are only known when built before */
    for (int c = 0; c < NKINDS; c++)
        ck_assert_msg(fut_wait(res[c], FUT_S(30)) == 0,
                      "seed %u: combinator %d unsettled", seed, c);

    /* when_all: values in order, or the first rejection. */
    void *v = NULL;
    int rc = fut_get(res[ALL], 0, &v);
    if (nful == r.n) {
        ck_assert_msg(rc == 0, "seed %u: when_all rc %d", seed, rc);
        for (int i = 0; i < r.n; i++)
            ck_assert_msg(((void **)v)[i] == r.obj[i],
                          "seed %u: when_all value %d", seed, i);
    } else {
        int i = code_input(&r, rc);
        ck_assert_msg(i >= 0, "seed %u: when_all rc %d", seed, rc);
        if (strict && npre_rej > 0)
            ck_assert_msg(r.pre[i],
                          "seed %u: when_all missed a settled rejection", seed);
        else if (strict)
            ck_assert_msg(first_in_thread(&r, i, 0),
                          "seed %u: when_all took a later rejection", seed);
    }

    /* when_all_settled: the inputs, as they settled. */
    ck_assert_msg(fut_get(res[SETTLED], 0, &v) == 0,
                  "seed %u: when_all_settled rejected", seed);
    for (int i = 0; i < r.n; i++) {
        fut_t *in = ((fut_t **)v)[i];
        ck_assert_msg(in == r.f[i], "seed %u: when_all_settled input %d", seed,
                      i);
        ck_assert_msg(fut_state(in) ==
                          (r.fulfil[i] ? FUT_FULFILLED : FUT_REJECTED),
                      "seed %u: when_all_settled state %d", seed, i);
    }

    /* when_any: the first fulfilment, or the last rejection. */
    rc = fut_get(res[ANY], 0, &v);
    if (nful > 0) {
        ck_assert_msg(rc == 0, "seed %u: when_any rc %d", seed, rc);
        int i = (int)((fut_any_t *)v)->index;
        ck_assert_msg(i < r.n && r.fulfil[i], "seed %u: when_any index %d",
                      seed, i);
        ck_assert_msg(((fut_any_t *)v)->value == r.obj[i],
                      "seed %u: when_any value", seed);
        if (strict && npre_ful > 0)
            ck_assert_msg(r.pre[i], "seed %u: when_any missed a settled value",
                          seed);
        else if (strict)
            ck_assert_msg(first_in_thread(&r, i, 1),
                          "seed %u: when_any took a later value", seed);
    } else {
        int i = code_input(&r, rc);
        ck_assert_msg(i >= 0, "seed %u: when_any rc %d", seed, rc);
        if (strict && nrej_live > 0)
            ck_assert_msg(!r.pre[i] && last_in_thread(&r, i),
                          "seed %u: when_any did not take the last rejection",
                          seed);
    }

    /* when_first: the first settlement, either way. */
    rc = fut_get(res[FIRST], 0, &v);
    int first = rc == 0 ? (int)((fut_any_t *)v)->index : code_input(&r, rc);
    ck_assert_msg(first >= 0 && first < r.n, "seed %u: when_first rc %d", seed,
                  rc);
    ck_assert_msg(r.fulfil[first] == (rc == 0), "seed %u: when_first outcome",
                  seed);
    if (rc == 0)
        ck_assert_msg(((fut_any_t *)v)->value == r.obj[first],
                      "seed %u: when_first value", seed);
    if (strict && npre_ful + npre_rej > 0)
        ck_assert_msg(r.pre[first],
                      "seed %u: when_first missed a settled input", seed);
    else if (strict)
        ck_assert_msg(first_in_thread(&r, first, -1),
                      "seed %u: when_first took a later input", seed);

    /* when_some: the first k fulfilments in order, or a rejection once the
     * quorum was out of reach. */
    rc = fut_get(res[SOME], 0, &v);
    if (nful >= r.k) {
        ck_assert_msg(rc == 0, "seed %u: when_some rc %d", seed, rc);
        fut_any_t *some = v;
        bool seen[RACE_MAX_N] = {false};
        for (int e = 0; e < r.k; e++) {
            int i = (int)some[e].index;
            ck_assert_msg(i < r.n && r.fulfil[i] && !seen[i],
                          "seed %u: when_some entry %d", seed, e);
            seen[i] = true;
            ck_assert_msg(some[e].value == r.obj[i],
                          "seed %u: when_some value %d", seed, e);
            if (!strict)
                continue;
            /* Inputs fulfilled before the build come first. */
            ck_assert_msg(r.pre[i] == (e < npre_ful),
                          "seed %u: when_some order (pre) at %d", seed, e);
            for (int d = 0; d < e; d++) {
                int j = (int)some[d].index;
                if (!r.pre[i] && !r.pre[j] && r.thread_of[j] == r.thread_of[i])
                    ck_assert_msg(r.pos[j] < r.pos[i],
                                  "seed %u: when_some order at %d", seed, e);
            }
        }
        /* A fulfilment that happened before a chosen one on the same thread
         * was chosen too. */
        for (int e = 0; strict && e < r.k; e++) {
            int i = (int)some[e].index;
            for (int j = 0; j < r.n && !r.pre[i]; j++)
                if (!r.pre[j] && r.fulfil[j] &&
                    r.thread_of[j] == r.thread_of[i] && r.pos[j] < r.pos[i])
                    ck_assert_msg(seen[j],
                                  "seed %u: when_some skipped input %d", seed,
                                  j);
        }
    } else {
        ck_assert_msg(code_input(&r, rc) >= 0, "seed %u: when_some rc %d", seed,
                      rc);
    }

    for (int c = 0; c < NKINDS; c++)
        fut_release(res[c]);
    for (int i = 0; i < r.n; i++) {
        fut_release(r.f[i]);
        fut_promise_release(r.p[i]);
    }
    ck_assert_msg(atomic_load(&tr.freed) == atomic_load(&tr.made),
                  "seed %u: %d values made, %d destroyed", seed,
                  atomic_load(&tr.made), atomic_load(&tr.freed));
}

START_TEST(race_inputs_settled_from_threads_25_seeds)
{
    fut_test_seeded_rounds(25, race_round);
}
END_TEST

START_TEST(race_inputs_settled_from_threads_1000_seeds)
{
    fut_test_seeded_rounds(1000, race_round);
}
END_TEST

/* ------------------------------------------------------------- suite */

Suite *fut_test_combinators_suite(void)
{
    Suite *s = suite_create("combinators");
    TCase *tc = tcase_create("combinators");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, jquery_when_fails_fast_while_others_pending);
    tcase_add_test(tc, jquery_when_first_rejection_wins);
    tcase_add_test(tc, jquery_when_values_in_input_order);
    tcase_add_test(tc, jquery_when_no_arguments_fulfils_at_once);
    tcase_add_test(tc, when_all_cancelled_input_rejects_ecanceled);
    tcase_add_test(tc, when_all_settled_never_rejects_and_keeps_inputs);
    tcase_add_test(tc, when_any_first_fulfilment_decides_early);
    tcase_add_test(tc,
                   when_any_rejects_only_when_all_reject_with_last_rejection);
    tcase_add_test(tc, when_first_first_settlement_decides_with_value);
    tcase_add_test(tc, when_first_first_settlement_decides_with_rejection);
    tcase_add_test(tc, when_some_first_k_in_fulfilment_order);
    tcase_add_test(tc, when_some_rejects_as_soon_as_quorum_unreachable);
    tcase_add_test(tc,
                   when_some_k_zero_fulfils_at_once_and_k_above_n_is_einval);
    tcase_add_test(tc,
                   combinators_bad_arguments_reject_einval_and_consume_inputs);
    tcase_add_test(tc, when_ex_kinds_match_plain_combinators);
    tcase_add_test(tc, cancel_losers_when_all_after_first_rejection);
    tcase_add_test(tc, cancel_losers_when_any_after_first_fulfilment);
    tcase_add_test(tc, cancel_losers_when_first_after_first_settlement);
    tcase_add_test(tc, cancel_losers_when_some_after_quorum_or_unreachable);
    tcase_add_test(tc, cancel_losers_spares_inputs_the_caller_holds);
    tcase_add_test(tc, without_cancel_losers_losers_still_run);
    tcase_add_test(tc, cancel_combined_result_settles_it_cancelled);
    tcase_add_test(tc, cancel_combined_result_leaves_other_queued_work_running);
    tcase_add_test(tc, depth_when_all_of_100k_inputs_on_8mib_stack);
    tcase_add_test(tc, depth_when_all_of_100k_inputs_on_256kib_stack);
    tcase_add_test(tc, race_inputs_settled_from_threads_25_seeds);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("combinators_stress");
    tcase_set_tags(st, "stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(st, depth_when_all_of_1m_inputs_on_8mib_stack);
    tcase_add_test(st, depth_when_all_of_1m_inputs_on_256kib_stack);
    tcase_add_test(st, race_inputs_settled_from_threads_1000_seeds);
    suite_add_tcase(s, st);
    return s;
}

/*
 * test_unhandled.c - unobserved rejections (fut_set_unhandled_hook): the
 * hook runs once, on the thread that drops the last reference, for a
 * rejected future freed without anyone reading its error; reading it with
 * fut_get, fut_error, a catch or then_catch handler, a combinator, or
 * handing it down a chain counts as reading, so the intermediate links of
 * a chain are never reported, only its unread end.
 *
 * The hook is process-wide.  A checked fixture resets it after every test
 * (also after a failure with CK_FORK=no), and the hook counts only errors
 * carrying the code the test expects, with codes no other suite uses, so a
 * rejection freed late by some other test cannot disturb the counts.
 */
#include "test_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

Suite *fut_test_unhandled_suite(void);

/* Codes that only this suite uses. */
#define CODE_A ENOTBLK
#define CODE_B EXFULL
#define CODE_C EBADSLT

typedef struct hook_state {
    atomic_int want;   /* the code the hook counts */
    atomic_int calls;  /* calls with that code */
    atomic_int thread; /* thread of the last such call */
    atomic_int msg_ok; /* the last such call's message was want_msg */
    atomic_int arg_ok; /* the last call got the registered arg */
    const char *want_msg;
} hook_state_t;

static hook_state_t hs;

static void hook(const fut_error_t *err, void *arg)
{
    if (err == NULL || err->code != atomic_load(&hs.want))
        return;
    atomic_store(&hs.arg_ok, arg == &hs);
    atomic_store(&hs.msg_ok, hs.want_msg != NULL && err->message != NULL &&
                                 strcmp(err->message, hs.want_msg) == 0);
    atomic_store(&hs.thread, fut_test_thread_id());
    atomic_fetch_add(&hs.calls, 1);
}

static void expect(int code, const char *msg)
{
    atomic_store(&hs.want, code);
    atomic_store(&hs.calls, 0);
    atomic_store(&hs.thread, 0);
    atomic_store(&hs.msg_ok, 0);
    atomic_store(&hs.arg_ok, 0);
    hs.want_msg = msg;
}

static void setup(void)
{
    expect(-1, NULL);
    fut_set_unhandled_hook(hook, &hs);
}

static void teardown(void)
{
    fut_set_unhandled_hook(NULL, NULL);
}

static int calls(void)
{
    return atomic_load(&hs.calls);
}

/* ----------------------------------------------------- reported once */

typedef struct releaser {
    fut_t *f;
    atomic_int thread;
} releaser_t;

static void *release_on_thread(void *arg)
{
    releaser_t *r = arg;
    atomic_store(&r->thread, fut_test_thread_id());
    fut_release(r->f);
    return NULL;
}

START_TEST(unhandled_hook_called_once_for_rejection_freed_unread)
{
    expect(CODE_A, "never read");
    fut_t *f = fut_rejected(CODE_A, "never read");
    fut_t *extra = fut_retain(f);
    fut_release(extra);
    ck_assert_int_eq(calls(), 0); /* not while a reference remains */
    releaser_t r = {.f = f, .thread = 0};
    pthread_t t = fut_test_spawn(release_on_thread, &r);
    fut_test_join(t);
    ck_assert_int_eq(calls(), 1);
    /* The hook ran on the thread that released last. */
    ck_assert_int_eq(atomic_load(&hs.thread), atomic_load(&r.thread));
    ck_assert_int_eq(atomic_load(&hs.msg_ok), 1);
    ck_assert_int_eq(atomic_load(&hs.arg_ok), 1);
}
END_TEST

START_TEST(unhandled_hook_called_for_promise_rejected_and_unread)
{
    expect(CODE_B, "promised 2");
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    ck_assert_int_eq(fut_reject(p, CODE_B, "promised %d", 2), 0);
    fut_release(f);
    fut_promise_release(p);
    ck_assert_int_eq(calls(), 1);
    ck_assert_int_eq(atomic_load(&hs.msg_ok), 1);
    ck_assert_int_eq(atomic_load(&hs.thread), fut_test_thread_id());
}
END_TEST

/* A broken promise (EPIPE) whose future someone held and never read. */
START_TEST(unhandled_hook_called_for_broken_promise)
{
    expect(EPIPE, NULL);
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_promise_release(p);
    ck_assert_int_eq(fut_state(f), FUT_REJECTED);
    ck_assert_int_eq(calls(), 0);
    fut_release(f);
    ck_assert_int_eq(calls(), 1);
}
END_TEST

static void *task_fail_a(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    return fut_fail(ctx, CODE_A, "task failed");
}

START_TEST(unhandled_hook_called_for_failed_task_unread)
{
    expect(CODE_A, "task failed");
    fut_executor_t *pool = fut_test_pool(1);
    fut_t *f = fut_submit(pool, task_fail_a, NULL);
    ck_assert_int_eq(fut_wait(f, FUT_FOREVER), 0); /* waiting is not reading */
    fut_release(f);
    fut_executor_free(pool);
    ck_assert_int_eq(calls(), 1);
    ck_assert_int_eq(atomic_load(&hs.msg_ok), 1);
}
END_TEST

START_TEST(unhandled_hook_not_called_for_fulfilled_or_null_hook)
{
    expect(CODE_A, NULL);
    fut_release(fut_resolved(FUT_TEST_PTR(CODE_A), NULL));
    ck_assert_int_eq(calls(), 0);
    /* NULL restores the default: our hook is no longer called. */
    fut_set_unhandled_hook(NULL, NULL);
    fut_release(fut_rejected(CODE_A, "to the default"));
    ck_assert_int_eq(calls(), 0);
    fut_set_unhandled_hook(hook, &hs);
    fut_release(fut_rejected(CODE_A, "to ours"));
    ck_assert_int_eq(calls(), 1);
}
END_TEST

/* ---------------------------------------------------- reading counts */

START_TEST(unhandled_not_called_after_fut_get)
{
    expect(CODE_A, NULL);
    fut_t *f = fut_rejected(CODE_A, "read");
    ck_assert_int_eq(fut_get(f, 0, NULL), CODE_A);
    fut_release(f);
    fut_promise_t *p = fut_promise_new();
    f = fut_promise_future(p);
    ck_assert_int_eq(fut_reject(p, CODE_A, "read"), 0);
    fut_promise_release(p);
    ck_assert_int_eq(fut_get(f, FUT_FOREVER, NULL), CODE_A);
    fut_release(f);
    ck_assert_int_eq(calls(), 0);
}
END_TEST

START_TEST(unhandled_not_called_after_fut_error)
{
    expect(CODE_A, NULL);
    fut_t *f = fut_rejected(CODE_A, "read");
    ck_assert_int_eq(fut_error(f)->code, CODE_A);
    fut_release(f);
    ck_assert_int_eq(calls(), 0);
}
END_TEST

static void *h_recover(fut_ctx_t *ctx, const fut_error_t *err, void *arg)
{
    (void)ctx;
    (void)arg;
    return FUT_TEST_PTR(err->code);
}

static void *h_value(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)arg;
    return value;
}

START_TEST(unhandled_not_called_after_catch_handler)
{
    expect(CODE_A, NULL);
    fut_release(fut_catch(fut_rejected(CODE_A, NULL), h_recover, NULL));
    fut_release(
        fut_then_catch(fut_rejected(CODE_A, NULL), h_value, h_recover, NULL));
    fut_release(fut_then_ex(NULL, fut_rejected(CODE_A, NULL), NULL, h_recover,
                            NULL, NULL));
    /* A catch far down the chain reads it too. */
    fut_t *g = fut_then(fut_then(fut_rejected(CODE_A, NULL), h_value, NULL),
                        h_value, NULL);
    fut_release(fut_catch(g, h_recover, NULL));
    /* On a pool. */
    fut_executor_t *pool = fut_test_pool(1);
    g = fut_catch_on(pool, fut_rejected(CODE_A, NULL), h_recover, NULL);
    ck_assert_int_eq(fut_wait(g, FUT_FOREVER), 0);
    fut_release(g);
    fut_executor_free(pool);
    ck_assert_int_eq(calls(), 0);
}
END_TEST

/* Handing a rejection down a chain reads each link: only the end, if
 * nobody reads it, is reported, and once. */
START_TEST(unhandled_chain_reports_only_its_unread_end)
{
    expect(CODE_B, "chain");
    fut_t *g = fut_rejected(CODE_B, "chain");
    for (int i = 0; i < 5; i++)
        g = fut_then(g, h_value, NULL);
    fut_release(g);
    ck_assert_int_eq(calls(), 1);
    ck_assert_int_eq(atomic_load(&hs.msg_ok), 1);

    /* The end was read: nothing. */
    expect(CODE_B, NULL);
    g = fut_rejected(CODE_B, "chain");
    for (int i = 0; i < 5; i++)
        g = fut_then(g, h_value, NULL);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), CODE_B);
    fut_release(g);
    ck_assert_int_eq(calls(), 0);

    /* A pending head rejected later, links released as they go. */
    fut_promise_t *p = fut_promise_new();
    g = fut_promise_future(p);
    for (int i = 0; i < 5; i++)
        g = fut_then(g, h_value, NULL);
    ck_assert_int_eq(fut_reject(p, CODE_B, "later"), 0);
    fut_promise_release(p);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), CODE_B);
    fut_release(g);
    ck_assert_int_eq(calls(), 0);
}
END_TEST

static void h_nothing(fut_t *settled, void *arg)
{
    (void)settled;
    (void)arg;
}

START_TEST(unhandled_finally_passes_the_rejection_on)
{
    expect(CODE_C, NULL);
    fut_t *g = fut_finally(fut_rejected(CODE_C, NULL), h_nothing, NULL);
    ck_assert_int_eq(fut_get(g, FUT_FOREVER, NULL), CODE_C);
    fut_release(g);
    ck_assert_int_eq(calls(), 0);
    g = fut_finally(fut_rejected(CODE_C, NULL), h_nothing, NULL);
    fut_release(g);
    ck_assert_int_eq(calls(), 1); /* the unread end */
}
END_TEST

static void *fail_a(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    return fut_fail(ctx, CODE_A, "member");
}

/* A group reads its members, in every mode, whether a member settled
 * before the group was closed (counted at close) or after. */
START_TEST(unhandled_not_called_for_group_members)
{
    expect(CODE_A, NULL);
    const unsigned modes[] = {FUT_GROUP_ALL, FUT_GROUP_SETTLED, FUT_GROUP_RACE};
    fut_executor_t *pool = fut_test_pool(2);
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        fut_group_t *g = fut_group_new(pool, modes[k]);
        fut_t *early = fut_group_submit(g, fail_a, NULL);
        ck_assert_int_eq(fut_wait(early, FUT_FOREVER), 0);
        fut_release(early); /* the group's reference is the last */
        fut_release(fut_group_submit(g, fail_a, NULL));
        fut_t *r = fut_group_close(g);
        ck_assert_int_eq(fut_wait(r, FUT_FOREVER), 0);
        (void)fut_get(r, 0, NULL);
        fut_release(r);
        fut_group_release(g);
        ck_assert_msg(calls() == 0, "mode %u reported a member it had read",
                      modes[k]);
    }
    fut_executor_free(pool);
}
END_TEST

/* Combinators read their inputs, including rejections that arrive after
 * the result was decided. */
START_TEST(unhandled_not_called_for_combinator_inputs)
{
    expect(CODE_A, NULL);
    const int kinds[] = {FUT_WHEN_ALL, FUT_WHEN_ALL_SETTLED, FUT_WHEN_ANY,
                         FUT_WHEN_FIRST, FUT_WHEN_SOME};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fut_promise_t *p[3];
        fut_t *f[3];
        for (int i = 0; i < 3; i++) {
            p[i] = fut_promise_new();
            f[i] = fut_promise_future(p[i]);
        }
        fut_t *r = fut_when_ex(kinds[k], f, 3, 1, 0);
        ck_assert_int_eq(fut_resolve(p[1], NULL, NULL), 0);
        ck_assert_int_eq(fut_reject(p[0], CODE_A, "input 0"), 0);
        ck_assert_int_eq(fut_reject(p[2], CODE_A, "input 2"), 0);
        for (int i = 0; i < 3; i++)
            fut_promise_release(p[i]);
        ck_assert_int_eq(fut_wait(r, FUT_FOREVER), 0);
        (void)fut_get(r, 0, NULL); /* the result is read */
        fut_release(r);
        ck_assert_msg(calls() == 0, "kind %d reported an input it had read",
                      kinds[k]);
    }
    /* when_all rejected by an input: reading the result is enough. */
    fut_t *f2[2] = {fut_rejected(CODE_A, "a"), fut_rejected(CODE_A, "b")};
    fut_t *r = fut_when_all(f2, 2);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), CODE_A);
    fut_release(r);
    ck_assert_int_eq(calls(), 0);
    /* Its result left unread is reported once, not its inputs. */
    fut_t *f3[2] = {fut_rejected(CODE_A, "a"), fut_rejected(CODE_A, "b")};
    fut_release(fut_when_all(f3, 2));
    ck_assert_int_eq(calls(), 1);
}
END_TEST

/* ------------------------------------------------------------- suite */

Suite *fut_test_unhandled_suite(void)
{
    Suite *s = suite_create("unhandled");
    TCase *tc = tcase_create("unhandled");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, unhandled_hook_called_once_for_rejection_freed_unread);
    tcase_add_test(tc, unhandled_hook_called_for_promise_rejected_and_unread);
    tcase_add_test(tc, unhandled_hook_called_for_broken_promise);
    tcase_add_test(tc, unhandled_hook_called_for_failed_task_unread);
    tcase_add_test(tc, unhandled_hook_not_called_for_fulfilled_or_null_hook);
    tcase_add_test(tc, unhandled_not_called_after_fut_get);
    tcase_add_test(tc, unhandled_not_called_after_fut_error);
    tcase_add_test(tc, unhandled_not_called_after_catch_handler);
    tcase_add_test(tc, unhandled_chain_reports_only_its_unread_end);
    tcase_add_test(tc, unhandled_finally_passes_the_rejection_on);
    tcase_add_test(tc, unhandled_not_called_for_combinator_inputs);
    tcase_add_test(tc, unhandled_not_called_for_group_members);
    suite_add_tcase(s, tc);
    return s;
}

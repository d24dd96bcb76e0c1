/*
 * fiber_check.c - fibers on another architecture, run under qemu-user by
 * ci/cross.sh (the Check suites need Check built for that machine; this
 * needs only fut.h): awaits of a settled and a pending future, 1,000
 * fibers suspended at once, the callee-saved floating-point registers kept
 * across switches (eight doubles live across fut_yield and fut_await),
 * fibers awaiting fibers 200 deep, and a ping-pong of two fibers over
 * promises.  Prints "ok" and exits 0, or names each failed check.
 */
#include <fut.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <math.h>

static fut_executor_t *pool;
static int fails;
#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #c);                 \
            fails++;                                                           \
        }                                                                      \
    } while (0)

static void *await_arg(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    void *v = NULL;
    int rc = fut_await(arg, FUT_FOREVER, &v);
    return rc ? (void *)(intptr_t)-rc : (void *)((intptr_t)v + 1);
}

/* Keeps doubles live across awaits: d8-d15 must survive. */
static void *fp_fiber(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    volatile double acc = 0;
    double a = 1.5, b = 2.25, c = 3.125, d = 4.0625, e = 5.5, f = 6.75,
           g = 7.875, h = 8.5;
    for (int i = 0; i < 100; i++) {
        fut_yield();
        a += 1;
        b += 1;
        c += 1;
        d += 1;
        e += 1;
        f += 1;
        g += 1;
        h += 1;
        if (i % 10 == 0)
            fut_await(arg, FUT_FOREVER, NULL);
    }
    acc = a + b + c + d + e + f + g + h;
    return (void *)(intptr_t)llround(acc * 1000);
}

static void *nest(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    intptr_t depth = (intptr_t)arg;
    if (depth == 0)
        return (void *)1;
    fut_t *f = fut_async_ex(pool, nest, (void *)(depth - 1), NULL, 32 * 1024);
    void *v = NULL;
    int rc = fut_await(f, FUT_FOREVER, &v);
    fut_release(f);
    return rc ? NULL : (void *)((intptr_t)v + 1);
}

static fut_promise_t *_Atomic slot[2];
static long rounds;
static fut_t *first;
static fut_t *sendm(int me, int last)
{
    fut_t *next = NULL;
    if (!last) {
        fut_promise_t *p = fut_promise_new();
        next = fut_promise_future(p);
        atomic_store(&slot[me], p);
    }
    fut_promise_t *o = atomic_load(&slot[1 - me]);
    fut_resolve(o, NULL, NULL);
    fut_promise_release(o);
    return next;
}
static void *pp(fut_ctx_t *c, void *a)
{
    (void)c;
    int me = (int)(intptr_t)a;
    if (me == 0)
        for (long r = 0; r < rounds; r++) {
            fut_t *f = sendm(0, 0);
            fut_await(f, FUT_FOREVER, NULL);
            fut_release(f);
        }
    else {
        fut_t *f = fut_retain(first);
        for (long r = 0; r < rounds; r++) {
            fut_await(f, FUT_FOREVER, NULL);
            fut_release(f);
            f = sendm(1, r + 1 == rounds);
        }
    }
    return (void *)7;
}

int main(void)
{
    fut_pool_config_t cfg = {.threads = 2};
    CHECK(fut_pool_new(&cfg, &pool) == 0);
    /* settled and pending */
    fut_t *done = fut_resolved((void *)41, NULL);
    fut_t *a = fut_async(pool, await_arg, done);
    void *v = NULL;
    CHECK(fut_get(a, FUT_FOREVER, &v) == 0 && (intptr_t)v == 42);
    fut_release(a);
    fut_release(done);
    fut_promise_t *p = fut_promise_new();
    fut_t *pf = fut_promise_future(p);
    fut_t *fs[1000];
    for (int i = 0; i < 1000; i++)
        fs[i] = fut_async_ex(pool, await_arg, pf, NULL, 16 * 1024);
    fut_resolve(p, (void *)9, NULL);
    for (int i = 0; i < 1000; i++) {
        CHECK(fut_get(fs[i], FUT_FOREVER, &v) == 0 && (intptr_t)v == 10);
        fut_release(fs[i]);
    }
    /* floating point */
    fut_t *fp[4];
    for (int i = 0; i < 4; i++)
        fp[i] = fut_async(pool, fp_fiber, pf);
    double want =
        (1.5 + 2.25 + 3.125 + 4.0625 + 5.5 + 6.75 + 7.875 + 8.5 + 800) * 1000;
    for (int i = 0; i < 4; i++) {
        CHECK(fut_get(fp[i], FUT_FOREVER, &v) == 0 &&
              (intptr_t)v == llround(want));
        fut_release(fp[i]);
    }
    fut_release(pf);
    fut_promise_release(p);
    /* nesting 200 deep */
    fut_t *n = fut_async(pool, nest, (void *)200);
    CHECK(fut_get(n, FUT_FOREVER, &v) == 0 && (intptr_t)v == 201);
    fut_release(n);
    /* ping-pong */
    rounds = 20000;
    fut_promise_t *q = fut_promise_new();
    first = fut_promise_future(q);
    atomic_store(&slot[1], q);
    fut_t *x = fut_async(pool, pp, (void *)0),
          *y = fut_async(pool, pp, (void *)1);
    CHECK(fut_get(x, FUT_FOREVER, &v) == 0 && (intptr_t)v == 7);
    CHECK(fut_get(y, FUT_FOREVER, &v) == 0 && (intptr_t)v == 7);
    fut_release(x);
    fut_release(y);
    fut_release(first);
    fut_executor_free(pool);
    fut_trim();
    printf("%s: %d failures\n", fails ? "FAILED" : "ok", fails);
    return fails != 0;
}

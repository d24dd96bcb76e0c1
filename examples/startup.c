/*
 * startup.c - a service that starts in steps (connect, then load its
 * configuration, then warm a cache), each a blocking call wrapped as a
 * future, written twice: as a fiber that awaits each step and reads top to
 * bottom, and as a chain of continuations.  Both run on the same pool and
 * must reach the same result.
 *
 * In the fiber, fut_await suspends the fiber, not the worker: while a step
 * is in flight the worker runs other work, so thousands of such services
 * could start on two threads.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <fut.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static fut_executor_t *pool;

static void nap_ms(int ms)
{
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

/* The three blocking steps, each a task on the pool. */
static void *connect_db(fut_ctx_t *ctx, void *arg)
{
    (void)ctx, (void)arg;
    nap_ms(5);
    return (void *)"db:5432";
}

static void *load_config(fut_ctx_t *ctx, void *conn)
{
    (void)ctx;
    nap_ms(5);
    return strcmp(conn, "db:5432") == 0 ? (void *)"cache_size=3" : NULL;
}

static void *warm_cache(fut_ctx_t *ctx, void *config)
{
    if (!config)
        return fut_fail(ctx, EINVAL, "no configuration");
    nap_ms(5);
    return (void *)(intptr_t)atoi(strchr(config, '=') + 1);
}

/* One step as a future: submitted as a blocking call. */
static fut_t *step(fut_fn fn, void *arg)
{
    return fut_submit_ex(pool, fn, arg, NULL, FUT_BLOCKING);
}

/* --- top to bottom, in a fiber ---------------------------------------- */

static void *start_service(fut_ctx_t *ctx, void *arg)
{
    (void)arg;
    void *conn, *config, *entries;
    fut_t *f = step(connect_db, NULL);
    int rc = fut_await(f, FUT_S(5), &conn);
    if (rc == 0) {
        fut_t *g = step(load_config, conn);
        rc = fut_await(g, FUT_S(5), &config);
        if (rc == 0) {
            fut_t *h = step(warm_cache, config);
            rc = fut_await(h, FUT_S(5), &entries);
            fut_release(h);
        }
        fut_release(g);
    }
    fut_release(f);
    if (rc != 0)
        return fut_fail(ctx, rc > 0 ? rc : EIO, "startup failed (%d)", rc);
    return entries;
}

/* --- the same as a chain of continuations ----------------------------- */

static void *then_load(fut_ctx_t *ctx, void *conn, void *arg)
{
    (void)arg;
    return fut_adopt(ctx, step(load_config, conn));
}

static void *then_warm(fut_ctx_t *ctx, void *config, void *arg)
{
    (void)arg;
    return fut_adopt(ctx, step(warm_cache, config));
}

static fut_t *start_service_chained(void)
{
    fut_t *f = step(connect_db, NULL);
    f = fut_then(f, then_load, NULL);
    return fut_then(f, then_warm, NULL);
}

int main(void)
{
    fut_pool_config_t cfg = {0};
    cfg.threads = 2;
    if (fut_pool_new(&cfg, &pool) != 0)
        return 1;
    void *a = NULL, *b = NULL;
    fut_t *fiber = fut_async(pool, start_service, NULL);
    fut_t *chain = start_service_chained();
    int rc1 = fut_get(fiber, FUT_FOREVER, &a);
    int rc2 = fut_get(chain, FUT_FOREVER, &b);
    printf("fiber: %d cache entries (rc %d); chain: %d (rc %d)\n",
           (int)(intptr_t)a, rc1, (int)(intptr_t)b, rc2);
    fut_release(fiber);
    fut_release(chain);
    fut_executor_free(pool);
    return rc1 == 0 && rc2 == 0 && a == b ? 0 : 1;
}

/*
 * pool_shutdown_strands_task.c - reproducer of a task that a plain
 * fut_executor_shutdown leaves queued forever (found by the model suite,
 * test/test_model.c, FUT_MODEL_AVOID_SHUTDOWN_STRANDS_QUEUED).
 *
 * fut.h: "Queued tasks still run unless FUT_SHUTDOWN_CANCEL_PENDING
 * cancels them."  A task submitted to an idle one-worker pool right before
 * fut_executor_shutdown(pool, 0) sometimes never runs and never settles:
 * the stats then show no worker left and one task queued.  It also never
 * runs its free_arg, and fut_executor_free does not settle it either.
 *   clang -g -Iinclude -DFUT_STATIC_DEFINE \
 *       fuzz/crashes/pool_shutdown_strands_task.c build/test/libfut.a -lpthread
 * Prints the round that lost its task and exits 1 (within a few seconds
 * here), or prints "ok".
 */
#include "fut.h"

#include <sched.h>
#include <stdio.h>

static void *task(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

int main(void)
{
    for (int round = 0; round < 100000; round++) {
        fut_pool_config_t cfg = {.threads = 1};
        fut_executor_t *pool;
        if (fut_pool_new(&cfg, &pool) != 0)
            return 2;
        fut_t *warm = fut_submit(pool, task, NULL);
        fut_wait(warm, FUT_FOREVER);
        fut_release(warm);
        for (int i = 0; i < round % 64; i++)
            sched_yield(); /* let the worker go idle */
        fut_t *f = fut_submit(pool, task, NULL);
        fut_executor_shutdown(pool, 0);
        if (fut_wait(f, FUT_S(2)) != 0) {
            fut_stats_t s;
            fut_executor_stats(pool, &s);
            printf("round %d: the task queued before shutdown never ran "
                   "(state %d; workers %zu, queued %zu)\n",
                   round, (int)fut_state(f), s.threads, s.queued);
            return 1;
        }
        fut_release(f);
        fut_executor_free(pool);
    }
    puts("ok");
    return 0;
}

/*
 * peer_cthreadpool.c - Pithikos' C-Thread-Pool (Debian's cthreadpool-dev).
 *
 * A plain pool without futures: thpool_add_work() queues a function and one
 * pointer; thpool_wait() returns once the queue is empty and no worker is
 * busy.  Every workload is a batch: n thpool_add_work() calls, each task
 * writing its result slot (the index travels in the argument pointer), then
 * one thpool_wait().  The package ships only the header and thpool.c, which
 * the build compiles into this program.
 */
#include "harness.h"

#include <errno.h>
#include <thpool.h>

static threadpool pool;

/* The batch being run; the queue's lock publishes it to the workers. */
static struct {
    peer_task_fn fn;
    void *ctx;
} current;

static void run_one(void *arg)
{
    current.fn(current.ctx, (size_t)(uintptr_t)arg);
}

static int start(int threads)
{
    pool = thpool_init(threads);
    return pool ? 0 : ENOMEM;
}

static void stop(void)
{
    thpool_destroy(pool);
}

static int batch(size_t n, peer_task_fn fn, void *ctx)
{
    current.fn = fn;
    current.ctx = ctx;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (thpool_add_work(pool, run_one, (void *)(uintptr_t)i))
            rc = ENOMEM;
    thpool_wait(pool);
    return rc;
}

int main(int argc, char **argv)
{
    const peer_ops_t ops = {
        .name = "cthreadpool",
        .start = start,
        .stop = stop,
        .batch = batch,
        .note = {[PEER_W1] = "no futures: result slots + thpool_wait",
                 [PEER_W3] = "no futures: result slots + thpool_wait",
                 [PEER_W7] = "fixed thpool of 2: no hint for blocking "
                             "calls; the sleeps hold its workers"},
    };
    return peer_main(argc, argv, &ops);
}

/*
 * peer_libuv.c - libuv's threadpool through uv_queue_work() on the default
 * loop.
 *
 * A batch queues n uv_work_t requests; the work callback runs the task on
 * a pool thread (writing its result slot), libuv then runs the after-work
 * callback on the loop thread, and uv_run() returns once no request is left.
 * libuv has no futures; the loop is the wait.
 *
 * libuv reads UV_THREADPOOL_SIZE once, when the pool first starts, so the
 * first workload fixes the size for the process; a workload that needs
 * another size (W4's 16 threads) asks the harness to run it in a fresh copy
 * of this program.
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_loop_t *loop;
static int pool_size; /* 0 until the pool is sized */
static uv_work_t *reqs;
static size_t reqs_cap;
static int failed;

/* The batch being run; libuv's queue lock publishes it to the workers. */
static struct {
    peer_task_fn fn;
    void *ctx;
} current;

static void work_cb(uv_work_t *req)
{
    current.fn(current.ctx, (size_t)(req - reqs));
}

static void after_cb(uv_work_t *req, int status)
{
    (void)req;
    if (status)
        failed = status;
}

static int start(int threads)
{
    if (pool_size && pool_size != threads)
        return PEER_RESPAWN;
    if (!pool_size) {
        char size[16];
        snprintf(size, sizeof size, "%d", threads);
        if (setenv("UV_THREADPOOL_SIZE", size, 1))
            return errno;
        pool_size = threads;
    }
    loop = uv_default_loop();
    return loop ? 0 : ENOMEM;
}

static void stop(void)
{
}

static int batch(size_t n, peer_task_fn fn, void *ctx)
{
    if (n > reqs_cap) { /* the warm-up run grows it outside the timed runs */
        free(reqs);
        reqs = malloc(n * sizeof *reqs);
        reqs_cap = reqs ? n : 0;
        if (!reqs)
            return ENOMEM;
    }
    current.fn = fn;
    current.ctx = ctx;
    failed = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = uv_queue_work(loop, &reqs[i], work_cb, after_cb);
        if (rc) {
            failed = rc;
            break;
        }
    }
    uv_run(loop, UV_RUN_DEFAULT);
    return failed ? EIO : 0;
}

int main(int argc, char **argv)
{
    const peer_ops_t ops = {
        .name = "libuv",
        .start = start,
        .stop = stop,
        .batch = batch,
        .note = {[PEER_W1] = "no futures: result slots + uv_run",
                 [PEER_W3] = "no futures: result slots + uv_run",
                 [PEER_W4] = "run in a second process (pool size is fixed "
                             "at first use)",
                 [PEER_W7] = "uv_queue_work on UV_THREADPOOL_SIZE=2, fixed "
                             "at first use: no hint for blocking calls; the "
                             "sleeps hold its workers"},
    };
    int status = peer_main(argc, argv, &ops);
    free(reqs);
    return status;
}

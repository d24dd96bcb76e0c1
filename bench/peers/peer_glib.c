/*
 * peer_glib.c - GLib's GThreadPool.
 *
 * An exclusive pool (its threads start at once and serve only it).  GLib
 * has no futures and no "wait for the queue", so a batch pushes n items
 * (index + 1: a GThreadPool item may not be NULL), each task writes its
 * result slot, and the last task to finish wakes the main thread through a
 * counter and a GCond.
 */
#include "harness.h"

#include <errno.h>
#include <glib.h>
#include <stdatomic.h>
#include <stdio.h>

static GThreadPool *pool;
static GMutex done_lock;
static GCond done_cond;
static atomic_size_t remaining;

/* The batch being run; the pool's queue publishes it to the workers. */
static struct {
    peer_task_fn fn;
    void *ctx;
} current;

/* Called by the last task of a batch, or by the main thread for the items
 * it could not push; the lock orders the signal after the main thread's
 * check, so the wake-up is never lost. */
static void finish(size_t count)
{
    if (atomic_fetch_sub(&remaining, count) == count) {
        g_mutex_lock(&done_lock);
        g_cond_signal(&done_cond);
        g_mutex_unlock(&done_lock);
    }
}

static void run_one(gpointer item, gpointer unused)
{
    (void)unused;
    current.fn(current.ctx, GPOINTER_TO_SIZE(item) - 1);
    finish(1);
}

static int start(int threads)
{
    GError *err = NULL;
    pool = g_thread_pool_new(run_one, NULL, threads, TRUE, &err);
    if (!pool) {
        fprintf(stderr, "g_thread_pool_new: %s\n", err->message);
        g_error_free(err);
        return EAGAIN;
    }
    return 0;
}

static void stop(void)
{
    g_thread_pool_free(pool, FALSE, TRUE);
}

static int batch(size_t n, peer_task_fn fn, void *ctx)
{
    current.fn = fn;
    current.ctx = ctx;
    atomic_store(&remaining, n);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        GError *err = NULL;
        if (!g_thread_pool_push(pool, GSIZE_TO_POINTER(i + 1), &err)) {
            fprintf(stderr, "g_thread_pool_push: %s\n", err->message);
            g_error_free(err);
            finish(n - i);
            rc = EAGAIN;
            break;
        }
    }
    g_mutex_lock(&done_lock);
    while (atomic_load(&remaining))
        g_cond_wait(&done_cond, &done_lock);
    g_mutex_unlock(&done_lock);
    return rc;
}

int main(int argc, char **argv)
{
    const peer_ops_t ops = {
        .name = "glib",
        .start = start,
        .stop = stop,
        .batch = batch,
        .note = {[PEER_W1] = "no futures: result slots + counter/GCond",
                 [PEER_W3] = "no futures: result slots + counter/GCond",
                 [PEER_W7] = "GThreadPool of 2: no per-task hint for "
                             "blocking calls (only a resize of the whole "
                             "pool); the sleeps hold its workers"},
    };
    return peer_main(argc, argv, &ops);
}

/*
 * peer_openmp.c - OpenMP tasks (GCC's libgomp).
 *
 * A batch is one parallel region of the pool's thread count in which a
 * single thread creates n `omp task`s and then waits for them with
 * taskwait; the other threads of the team run tasks from the moment they
 * reach the region's barrier, and libgomp keeps the team's threads between
 * regions.  libgomp runs a task at once in the creating thread when too
 * many are queued, so the creating thread shares the work in W1/W3.
 * W6 keeps all round trips inside one region (the region is the pool):
 * one task, one taskwait, per trip.
 * W7 runs through batch(): OpenMP has no way to declare a blocking call.
 */
#include "harness.h"

#include <errno.h>
#include <omp.h>

static int nthreads;

static int start(int threads)
{
    nthreads = threads;
    return 0;
}

static void stop(void)
{
}

static int batch(size_t n, peer_task_fn fn, void *ctx)
{
#pragma omp parallel num_threads(nthreads)
#pragma omp single
    {
        for (size_t i = 0; i < n; i++) {
#pragma omp task firstprivate(i)
            fn(ctx, i);
        }
#pragma omp taskwait
    }
    return 0;
}

static int latency(size_t n, double *lat_us)
{
    int bad = 0;
#pragma omp parallel num_threads(nthreads)
#pragma omp single
    for (size_t k = 0; k < n; k++) {
        uint64_t got = 0;
        uint64_t t0 = peer_now_ns();
#pragma omp task shared(got) firstprivate(k)
        got = k + 1;
#pragma omp taskwait
        lat_us[k] = (double)(peer_now_ns() - t0) / 1e3;
        bad |= got != k + 1;
    }
    return bad ? EIO : 0;
}

int main(int argc, char **argv)
{
    const peer_ops_t ops = {
        .name = "openmp",
        .start = start,
        .stop = stop,
        .batch = batch,
        .latency = latency,
        .note = {[PEER_W1] = "no futures: result slots + taskwait",
                 [PEER_W3] = "no futures: result slots + taskwait",
                 [PEER_W6] = "task + taskwait inside one parallel region; "
                             "the waiting thread may run the task itself",
                 [PEER_W7] = "no mechanism for blocking calls; the "
                             "creating thread runs tasks itself once many "
                             "are queued, so the sleeps hold it too"},
    };
    return peer_main(argc, argv, &ops);
}

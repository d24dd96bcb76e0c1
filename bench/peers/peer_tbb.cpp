// peer_tbb.cpp - oneTBB's task_group inside a task_arena.
//
// The arena has the pool's thread count, and a global_control raises TBB's
// limit to it (TBB otherwise caps workers at the core count).  As always in
// TBB, the thread that waits joins the arena: the main thread counts as one
// of the arena's threads and runs tasks inside task_group::wait().  TBB has
// no futures: a batch runs n tasks that write their result slots, then one
// wait().
#include "harness.h"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <memory>

namespace
{

std::unique_ptr<tbb::global_control> control;
std::unique_ptr<tbb::task_arena> arena;

int start(int threads)
{
    control = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, threads);
    arena = std::make_unique<tbb::task_arena>(threads);
    arena->initialize();
    return 0;
}

void stop()
{
    arena.reset();
    control.reset();
}

int batch(size_t n, peer_task_fn fn, void *ctx)
{
    try {
        arena->execute([&] {
            tbb::task_group group;
            for (size_t i = 0; i < n; i++)
                group.run([fn, ctx, i] { fn(ctx, i); });
            group.wait();
        });
    } catch (const std::exception &e) {
        std::fprintf(stderr, "tbb: %s\n", e.what());
        return EIO;
    }
    return 0;
}

void sort_ints(int *a, size_t n)
{
    std::sort(a, a + n);
}

} // namespace

int main(int argc, char **argv)
{
    peer_ops_t ops = {};
    ops.name = "tbb";
    ops.start = start;
    ops.stop = stop;
    ops.batch = batch;
    ops.sort = sort_ints;
    ops.note[PEER_W1] = "no futures: result slots + task_group::wait; "
                        "the waiting main thread is one of the threads";
    ops.note[PEER_W3] = "no futures: result slots + task_group::wait";
    ops.note[PEER_W5] = "std::sort";
    ops.note[PEER_W6] = "run + wait; the waiting thread may run the task "
                        "itself";
    ops.note[PEER_W7] = "task_group in an arena of 2: oneTBB has no hint "
                        "for a blocking call; the sleeps hold its threads "
                        "(the waiting main thread is one of them)";
    return peer_main(argc, argv, &ops);
}

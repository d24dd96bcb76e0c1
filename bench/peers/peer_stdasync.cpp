// peer_stdasync.cpp - std::async(std::launch::async) and std::future.
//
// No pool at all: libstdc++ starts one thread per std::async call, so
// --threads has no effect and W4's 64 sleeps run on 64 threads at once.
// W1/W3: async per task, then get() each (the standard library has no
// when_all, so W3 is the same shape with fewer inputs).  W4/W5: async per
// task, get() each.  W6: async + get, i.e. a thread start per round trip.
// W7: async per task; a sleeping task holds only its own thread.
// W2 is n/a: std::future has no continuations.
#include "harness.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <future>
#include <vector>

namespace
{

// A thread per task makes the standard W1 (10^6 threads) unbearably slow,
// and every finished but not yet joined thread keeps its stack mapping:
// past ~32,000 of them Linux's default vm.max_map_count (65530) makes
// thread creation fail with EAGAIN.
constexpr size_t max_tasks = 20000;

template <typename F> int guarded(F body)
{
    try {
        return body();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "stdasync: %s\n", e.what());
        return EIO;
    }
}

int start(int)
{
    return 0;
}

void stop()
{
}

int submit_sum(size_t n, uint64_t *sum)
{
    return guarded([&] {
        std::vector<std::future<uint64_t>> fs;
        fs.reserve(n);
        for (size_t i = 0; i < n; i++)
            fs.push_back(
                std::async(std::launch::async, [i] { return uint64_t(i); }));
        for (auto &f : fs)
            *sum += f.get();
        return 0;
    });
}

int batch(size_t n, peer_task_fn fn, void *ctx)
{
    return guarded([&] {
        std::vector<std::future<void>> fs;
        fs.reserve(n);
        for (size_t i = 0; i < n; i++)
            fs.push_back(
                std::async(std::launch::async, [fn, ctx, i] { fn(ctx, i); }));
        for (auto &f : fs)
            f.get();
        return 0;
    });
}

int round_trip(uint64_t in, uint64_t *out)
{
    return guarded([&] {
        *out = std::async(std::launch::async, [in] { return in; }).get();
        return 0;
    });
}

void sort_ints(int *a, size_t n)
{
    std::sort(a, a + n);
}

} // namespace

int main(int argc, char **argv)
{
    peer_ops_t ops = {};
    ops.name = "stdasync";
    ops.start = start;
    ops.stop = stop;
    ops.batch = batch;
    ops.submit_sum = submit_sum;
    ops.fan_in = submit_sum;
    ops.round_trip = round_trip;
    ops.sort = sort_ints;
    ops.max_n[PEER_W1] = max_tasks;
    ops.max_n[PEER_W3] = max_tasks;
    // W7 starts a thread per tiny task too, twice per run: 5,000 show the
    // cost as well as 20,000 and keep the run short.
    ops.max_n[PEER_W7] = 5000;
    ops.max_blocking = 64; // a thread per task: every sleep at once
    ops.note[PEER_W1] = "one thread per task; --threads ignored";
    ops.note[PEER_W3] = "one thread per task; get() of every future";
    ops.note[PEER_W4] = "one thread per task: 64 threads, not 16";
    ops.note[PEER_W5] = "std::sort; one thread per chunk";
    ops.note[PEER_W6] = "a thread start per round trip";
    ops.note[PEER_W7] = "one thread per task: the sleeps never hold up "
                        "other tasks, but every task pays a thread start";
    return peer_main(argc, argv, &ops);
}

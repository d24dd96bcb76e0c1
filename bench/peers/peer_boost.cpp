// peer_boost.cpp - Boost.Thread futures (BOOST_THREAD_VERSION 4) over a
// boost::executors::basic_thread_pool.
//
// W1: boost::async(pool, task) per task, then get() each.  W2: a chain of
// future::then(pool, continuation) on a promise's future: each continuation
// is submitted to the pool when its parent settles (then() without an
// executor would start a thread per continuation or recurse).  W3:
// boost::when_all over the futures, then get() the vector.  W4/W5: async
// per task and get() each.  W6: async + get.
#define BOOST_THREAD_VERSION 4
#define BOOST_THREAD_PROVIDES_EXECUTORS

#include "harness.h"

#include <boost/thread/executors/basic_thread_pool.hpp>
#include <boost/thread/future.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <memory>
#include <vector>

namespace
{

std::unique_ptr<boost::executors::basic_thread_pool> pool;

template <typename F> int guarded(F body)
{
    try {
        return body();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "boost: %s\n", e.what());
        return EIO;
    }
}

int start(int threads)
{
    return guarded([&] {
        pool = std::make_unique<boost::executors::basic_thread_pool>(
            static_cast<unsigned>(threads));
        return 0;
    });
}

void stop()
{
    pool->close();
    pool->join();
    pool.reset();
}

std::vector<boost::future<uint64_t>> submit_all(size_t n)
{
    std::vector<boost::future<uint64_t>> fs;
    fs.reserve(n);
    for (size_t i = 0; i < n; i++)
        fs.push_back(boost::async(*pool, [i] { return uint64_t(i); }));
    return fs;
}

int submit_sum(size_t n, uint64_t *sum)
{
    return guarded([&] {
        auto fs = submit_all(n);
        for (auto &f : fs)
            *sum += f.get();
        return 0;
    });
}

int fan_in(size_t n, uint64_t *sum)
{
    return guarded([&] {
        auto fs = submit_all(n);
        auto all = boost::when_all(fs.begin(), fs.end()).get();
        for (auto &f : all)
            *sum += f.get();
        return 0;
    });
}

int chain(size_t n, uint64_t *tail)
{
    return guarded([&] {
        boost::promise<uint64_t> head;
        boost::future<uint64_t> f = head.get_future();
        for (size_t i = 0; i < n; i++)
            f = f.then(*pool, [](boost::future<uint64_t> parent) {
                return parent.get() + 1;
            });
        head.set_value(0);
        *tail = f.get();
        return 0;
    });
}

int batch(size_t n, peer_task_fn fn, void *ctx)
{
    return guarded([&] {
        std::vector<boost::future<void>> fs;
        fs.reserve(n);
        for (size_t i = 0; i < n; i++)
            fs.push_back(boost::async(*pool, [fn, ctx, i] { fn(ctx, i); }));
        for (auto &f : fs)
            f.get();
        return 0;
    });
}

int round_trip(uint64_t in, uint64_t *out)
{
    return guarded([&] {
        *out = boost::async(*pool, [in] { return in; }).get();
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
    ops.name = "boost";
    ops.start = start;
    ops.stop = stop;
    ops.batch = batch;
    ops.submit_sum = submit_sum;
    ops.chain = chain;
    ops.fan_in = fan_in;
    ops.round_trip = round_trip;
    ops.sort = sort_ints;
    ops.note[PEER_W2] = "then(pool, f): each continuation runs on the pool";
    ops.note[PEER_W3] = "boost::when_all(begin, end)";
    ops.note[PEER_W5] = "std::sort";
    ops.note[PEER_W7] = "basic_thread_pool of 2: no hint for blocking "
                        "calls; the sleeps hold its workers";
    return peer_main(argc, argv, &ops);
}

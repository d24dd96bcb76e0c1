// peer_boostfiber.cpp - Boost.Fiber as a peer of fut, for W8 (fibers) only.
//
// A standalone program (no harness): boost::fibers::algo::work_stealing
// over --threads threads (default 2), the main thread and threads - 1
// helper threads, each of which installs the algorithm and then waits on
// a fiber condition variable until the benchmark is over, so that its
// scheduler runs the fibers it steals.  Fibers use the default stack
// allocator (fixedsize_stack, Boost.Context's default size, no guard
// page).
//
//	W8        n fibers started at once, each awaiting its own
//	          boost::fibers::future until the main thread sets i + 1 on
//	          its promise; time = from the first start until the last fiber
//	          is about to wait (it notes the time) + from the first resolve
//	          until all finished (the poll in between is not timed).
//	W8rss     resident set per waiting fiber, KiB (/proc/self/statm).
//	W8switch  a ping-pong between two fibers, a fresh promise/future per
//	          message: each side makes its next promise, puts it in its
//	          slot, then resolves the other side's and awaits its own.
//
// Options as the other peers: --quick, --only LIST, --runs R, --threads N,
// --child (ignored).  A failure prints why on stderr and exits 1.  The
// sizes come from bench/workloads.json through compile definitions set by
// bench/peers/CMakeLists.txt.
#include <boost/context/stack_traits.hpp>
#include <boost/fiber/all.hpp>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef PEER_W8_STANDARD_N
#error "PEER_W8_STANDARD_N is set by bench/peers/CMakeLists.txt"
#endif

namespace
{

const char *const kSystem = "boost.fiber";

double now_s()
{
    return std::chrono::duration<double>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

long rss_now_kib()
{
    FILE *f = std::fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (f) {
        if (std::fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        std::fclose(f);
    }
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

long peak_rss_kib()
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

void report(const char *workload, std::vector<double> v, const char *unit,
            size_t n, const std::string &note)
{
    std::sort(v.begin(), v.end());
    size_t k = v.size();
    double med = k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
    std::printf("RESULT system=%s workload=%s value=%.6g unit=%s n=%zu "
                "runs=%zu min=%.6g max=%.6g rss_kib=%ld note=\"%s\"\n",
                kSystem, workload, med, unit, n, k, v.front(), v.back(),
                peak_rss_kib(), note.c_str());
    std::fflush(stdout);
}

// --- W8: n fibers, each awaiting its own promise --------------------------

std::atomic<size_t> parked{0};
std::atomic<double> parked_at{0}; // when the last fiber was about to wait

// Returns the seconds (from the first start until the last fiber is about
// to wait, + from the first resolve until all finished); *kib gets the
// resident set per waiting fiber.  trim (the warm-up run): the previous
// run's stacks go back to the system first (they are malloc'ed), so that
// *kib counts this run's; the timed runs reuse what the run before left,
// as every W8 system does.
double w8_once(size_t n, double *kib, bool trim)
{
    std::vector<boost::fibers::promise<uint64_t>> ps(n);
    std::vector<boost::fibers::future<uint64_t>> fs;
    fs.reserve(n);
    for (auto &p : ps)
        fs.push_back(p.get_future());
    std::vector<uint64_t> got(n, 0);
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(n);
    parked.store(0);
    parked_at.store(0);
    if (trim)
        malloc_trim(0);
    long rss0 = rss_now_kib();
    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        fibers.emplace_back([i, n, &fs, &got] {
            if (parked.fetch_add(1, std::memory_order_relaxed) + 1 == n)
                parked_at.store(now_s());
            got[i] = fs[i].get();
        });
    // this_fiber: the main thread's scheduler runs fibers meanwhile.
    while (parked_at.load() == 0)
        boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
    double started = parked_at.load() - t0;
    *kib = double(rss_now_kib() - rss0) / double(n);
    double t1 = now_s();
    for (size_t i = 0; i < n; i++)
        ps[i].set_value(i + 1);
    for (auto &f : fibers)
        f.join();
    double secs = started + (now_s() - t1);
    uint64_t sum = 0;
    for (uint64_t v : got)
        sum += v;
    if (sum != uint64_t(n) * (n + 1) / 2)
        throw std::runtime_error("W8: sum " + std::to_string(sum) +
                                 ", want " +
                                 std::to_string(uint64_t(n) * (n + 1) / 2));
    return secs;
}

// --- W8switch: a ping-pong, a fresh promise per message -------------------

// slot[k]: the promise side k awaits next.  A side moves the other's
// promise out of its slot before resolving it, so the other may refill
// the slot as soon as it wakes.
boost::fibers::promise<int> slot[2];

// Side me: resolve the other side's current promise with v.
void pp_signal(int me, int v)
{
    boost::fibers::promise<int> other = std::move(slot[1 - me]);
    other.set_value(v);
}

double pingpong_once(int rounds)
{
    slot[0] = boost::fibers::promise<int>();
    slot[1] = boost::fibers::promise<int>();
    boost::fibers::future<int> first = slot[1].get_future();
    bool wrong = false;
    double t0 = now_s();
    boost::fibers::fiber a([rounds, &wrong] {
        for (int r = 1; r <= rounds; r++) {
            slot[0] = boost::fibers::promise<int>();
            boost::fibers::future<int> mine = slot[0].get_future();
            pp_signal(0, r);
            if (mine.get() != r)
                wrong = true;
        }
    });
    boost::fibers::fiber b([rounds, &first] {
        boost::fibers::future<int> mine = std::move(first);
        for (int r = 1; r <= rounds; r++) {
            int v = mine.get();
            if (r < rounds) {
                slot[1] = boost::fibers::promise<int>();
                mine = slot[1].get_future();
            }
            pp_signal(1, v);
        }
    });
    a.join();
    b.join();
    double secs = now_s() - t0;
    if (wrong)
        throw std::runtime_error("W8switch: a reply carried a wrong value");
    return secs;
}

// --- helper threads ---------------------------------------------------------

boost::fibers::mutex done_mutex;
boost::fibers::condition_variable done_cv;
bool done = false;

void helper(int threads)
{
    boost::fibers::use_scheduling_algorithm<
        boost::fibers::algo::work_stealing>(threads);
    std::unique_lock<boost::fibers::mutex> lock(done_mutex);
    done_cv.wait(lock, [] { return done; });
}

[[noreturn]] void usage()
{
    std::fprintf(stderr, "usage: peer_boostfiber [--quick] [--only LIST] "
                         "[--runs R] [--threads N] [--child]\n");
    std::exit(2);
}

int positive(const char *s)
{
    char *end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 1000000)
        usage();
    return int(v);
}

} // namespace

int main(int argc, char **argv)
{
    bool quick = false, chosen = true;
    int runs = 0, threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!std::strcmp(a, "--quick")) {
            quick = true;
        } else if (!std::strcmp(a, "--child")) {
        } else if (!std::strcmp(a, "--only") && i + 1 < argc) {
            // A name selects W8 when it starts with "W8" (W8switch, W8rss).
            std::string list = argv[++i];
            chosen = false;
            size_t at = 0;
            while (at <= list.size()) {
                size_t comma = list.find(',', at);
                if (comma == std::string::npos)
                    comma = list.size();
                if (list.compare(at, 2, "W8") == 0 && comma - at >= 2)
                    chosen = true;
                at = comma + 1;
            }
        } else if (!std::strcmp(a, "--runs") && i + 1 < argc) {
            runs = positive(argv[++i]);
        } else if (!std::strcmp(a, "--threads") && i + 1 < argc) {
            threads = positive(argv[++i]);
        } else {
            usage();
        }
    }
    if (!chosen)
        return 0;
    if (runs == 0)
        runs = quick ? 3 : 5;
    size_t n = quick ? PEER_W8_QUICK_N : PEER_W8_STANDARD_N;
    int rounds = quick ? PEER_W8SWITCH_QUICK_N : PEER_W8SWITCH_STANDARD_N;

    std::vector<std::thread> helpers;
    for (int k = 1; k < threads; k++)
        helpers.emplace_back(helper, threads);
    boost::fibers::use_scheduling_algorithm<
        boost::fibers::algo::work_stealing>(threads);

    std::vector<double> rate, kib, sw;
    int status = 0;
    try {
        for (int r = -1; r < runs; r++) {
            std::fprintf(stderr, "\r%s W8 %s %d/%d ", kSystem,
                         r < 0 ? "warm-up" : "run", r < 0 ? 1 : r + 1,
                         r < 0 ? 1 : runs);
            double k = 0;
            double secs = w8_once(n, &k, r < 0);
            double ps = pingpong_once(rounds);
            if (r < 0) {
                kib.push_back(k);
            } else {
                rate.push_back(double(n) / secs);
                sw.push_back(2.0 * rounds / ps);
            }
        }
        std::fprintf(stderr, "\n");
    } catch (const std::exception &e) {
        std::fprintf(stderr, "\n%s verification failed: %s\n", kSystem,
                     e.what());
        status = 1;
    }

    {
        std::unique_lock<boost::fibers::mutex> lock(done_mutex);
        done = true;
    }
    done_cv.notify_all();
    for (auto &t : helpers)
        t.join();
    if (status)
        return status;

    char stack[200];
    std::snprintf(stack, sizeof stack,
                  "fixedsize_stack, default size (%zu KiB), no guard page",
                  boost::context::stack_traits::default_size() / 1024);
    report("W8", rate, "fibers/s", n,
           std::string(stack) + "; each fiber awaits its own "
           "fibers::future, work_stealing over " + std::to_string(threads) +
           " threads; start until all wait + resolve until all finished");
    report("W8switch", sw, "switches/s", size_t(rounds),
           std::string(stack) + "; a ping-pong, a fresh fibers::promise "
           "per message, two switches a round trip");
    report("W8rss", kib, "KiB/fiber", n,
           std::string(stack) + "; resident set per waiting fiber "
           "(statm; the warm-up run, after malloc_trim)");
    return 0;
}

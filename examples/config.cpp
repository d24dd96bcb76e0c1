// config.cpp - a thread pool configured from C++.
//
// fut.h is a C header that C++ includes as it is (its declarations are
// extern "C").  C++ has no compound literals, and designated initializers
// only from C++20, so the pool's configuration is value-initialized (every
// field 0 or NULL: the defaults) and then set field by field.
#include <fut.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace
{

struct workers {
    std::atomic<int> started{0};
    std::atomic<int> exited{0};
};

} // namespace

// Functions that fut calls are declared with C language linkage, like the
// pointer types they are stored in.
extern "C" {

static int worker_started(void *arg)
{
    static_cast<workers *>(arg)->started++;
    return 0; // non-zero would break the pool
}

static void worker_exited(void *arg)
{
    static_cast<workers *>(arg)->exited++;
}

static void free_long(void *p)
{
    delete static_cast<long *>(p);
}

// A task: the square of its argument, as a value the future owns.
static void *square(fut_ctx_t *ctx, void *arg)
{
    long n = static_cast<long>(reinterpret_cast<std::intptr_t>(arg));
    fut_set_free(ctx, free_long);
    return new long(n * n);
}

} // extern "C"

int main()
{
#ifdef FUT_VERSION_NUMBER
    if (fut_version_number() != FUT_VERSION_NUMBER) {
        std::fprintf(stderr, "fut.h is %s but the library is %s\n",
                     FUT_VERSION_STRING, fut_version());
        return 1;
    }
#endif
    workers counts;

    fut_pool_config_t cfg{}; // all fields 0 / NULL
    cfg.threads = 2;
    cfg.max_queued = 16; // submit blocks while 16 tasks wait
    cfg.name = "cxx";
    cfg.worker_init = worker_started;
    cfg.worker_exit = worker_exited;
    cfg.worker_arg = &counts;

    fut_executor_t *pool = nullptr;
    int rc = fut_pool_new(&cfg, &pool);
    if (rc) {
        std::fprintf(stderr, "fut_pool_new: %s\n", std::strerror(rc));
        return 1;
    }

    const std::size_t n = 8;
    fut_t *squares[n];
    for (std::size_t i = 0; i < n; i++)
        squares[i] = fut_submit(pool, square,
                                reinterpret_cast<void *>(std::intptr_t(i)));

    // fut_when_all consumes the inputs; its value is a void ** of theirs.
    fut_t *all = fut_when_all(squares, n);
    void *value = nullptr;
    rc = fut_get(all, FUT_S(5), &value);
    long sum = 0;
    if (rc == 0) {
        void **values = static_cast<void **>(value);
        for (std::size_t i = 0; i < n; i++)
            sum += *static_cast<long *>(values[i]);
    }
    fut_release(all);
    fut_executor_free(pool); // waits for the workers to exit

    std::printf("sum of squares 0..%zu: %ld (%d workers started, %d exited)\n",
                n - 1, sum, counts.started.load(), counts.exited.load());
    return rc == 0 && sum == 140 && counts.started == counts.exited ? 0 : 1;
}

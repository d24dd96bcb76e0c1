/*
 * bench.c - fut's benchmark program.
 *
 * fut runs the same workloads as every peer (bench/peers/harness.h: the
 * harness owns options, timing, verification and the RESULT lines, and
 * bench/workloads.json the sizes),
 * each through fut's own API with a real future per task:
 *   W1 fut_submit + fut_get per task;   W2 a fut_then chain on a promise;
 *   W3 fut_when_all over submitted tasks; W4/W5 batches of tasks combined
 *   with fut_when_all; W6 one fut_submit + fut_get round trip at a time;
 *   W7 a batch whose blocking tasks are submitted with FUT_BLOCKING, on a
 *   pool of max_threads = threads + PEER_W7_EXTRA_THREADS (66 for the
 *   default 2 workers: all 64 blocking tasks can block at once).
 * Then W8, fibers (peers: Boost.Fiber and Go): W8 fibers started at once
 * with 16 KiB stacks, each awaiting its own promise, which the main thread
 * then resolves (fibers/s, and resident KiB per suspended fiber), and a
 * ping-pong of two fibers over promises (switches/s).  Then the figures
 * only fut can report: W9, workloads.json's W9 tasks
 * started through a task group (FUT_GROUP_ALL, fut_group_spawn: the
 * group's future is the one result wanted) against the same tasks
 * through fut_when_all, timed in alternating pairs in one process (the
 * group's cost is the median of the pairs' time ratios); and the memory
 * figures, counted through the pluggable allocator: bytes per pending
 * future (the "mem" queued tasks) and allocator calls per task in steady
 * state.
 *
 * Usage: fut_bench [--quick] [--only W1[,W2...|W8|W9|mem]] [--runs R]
 *                  [--threads N]
 * Output: RESULT lines (see bench/compare.py), progress on stderr.
 */
#include "harness.h"
#include "peer_workloads.h"

#include <fut.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static fut_executor_t *pool;

static int start(int threads)
{
    /* max_threads only matters when tasks declare blocking calls (W7). */
    return fut_pool_new(
        &(fut_pool_config_t){.threads = (size_t)threads,
                             .max_threads =
                                 (size_t)threads + PEER_W7_EXTRA_THREADS},
        &pool);
}

/* Extra threads the last pool started for declared blocking calls (W7). */
static uint64_t last_spawned;

static void stop(void)
{
    fut_stats_t st;
    if (fut_executor_stats(pool, &st) == 0)
        last_spawned = st.spawned;
    fut_executor_free(pool);
    pool = NULL;
}

/* --- batch: n tasks, combined with fut_when_all ----------------------- */

static peer_task_fn batch_fn;
static void *batch_ctx;

static void *batch_task(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    batch_fn(batch_ctx, (size_t)(uintptr_t)arg);
    return NULL;
}

/* blocking NULL: every task a plain one (batch); else W7's marks. */
static int batch_mixed(size_t n, peer_task_fn fn, void *ctx,
                       const unsigned char *blocking)
{
    fut_t **fs = malloc(n * sizeof *fs);
    if (!fs)
        return ENOMEM;
    batch_fn = fn;
    batch_ctx = ctx;
    for (size_t i = 0; i < n; i++)
        fs[i] = fut_submit_ex(pool, batch_task, (void *)(uintptr_t)i, NULL,
                              blocking && blocking[i] ? FUT_BLOCKING : 0);
    fut_t *all = fut_when_all(fs, n);
    int rc = fut_get(all, FUT_FOREVER, NULL);
    fut_release(all);
    free(fs);
    return rc;
}

static int batch(size_t n, peer_task_fn fn, void *ctx)
{
    return batch_mixed(n, fn, ctx, NULL);
}

/* --- W1, W3, W6: tasks that return their index ------------------------ */

static void *return_index(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

static int submit_sum(size_t n, uint64_t *sum)
{
    fut_t **fs = malloc(n * sizeof *fs);
    if (!fs)
        return ENOMEM;
    for (size_t i = 0; i < n; i++)
        fs[i] = fut_submit(pool, return_index, (void *)(uintptr_t)i);
    int rc = 0;
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        void *v;
        int r = fut_get(fs[i], FUT_FOREVER, &v);
        if (r)
            rc = r;
        s += (uintptr_t)v;
        fut_release(fs[i]);
    }
    free(fs);
    *sum = s;
    return rc;
}

/* Waits for a combined future whose value is a void ** of n indexes and
 * sums them (0 on failure); releases it. */
static int get_index_sum(fut_t *all, size_t n, uint64_t *sum)
{
    void *v;
    int rc = fut_get(all, FUT_FOREVER, &v);
    uint64_t s = 0;
    if (rc == 0)
        for (size_t i = 0; i < n; i++)
            s += (uintptr_t)((void **)v)[i];
    fut_release(all);
    *sum = s;
    return rc;
}

static int fan_in(size_t n, uint64_t *sum)
{
    fut_t **fs = malloc(n * sizeof *fs);
    if (!fs)
        return ENOMEM;
    for (size_t i = 0; i < n; i++)
        fs[i] = fut_submit(pool, return_index, (void *)(uintptr_t)i);
    fut_t *all = fut_when_all(fs, n);
    free(fs);
    return get_index_sum(all, n, sum);
}

static int round_trip(uint64_t in, uint64_t *out)
{
    fut_t *f = fut_submit(pool, return_index, (void *)(uintptr_t)in);
    void *v;
    int rc = fut_get(f, FUT_FOREVER, &v);
    fut_release(f);
    *out = (uintptr_t)v;
    return rc;
}

/* --- W2: a continuation chain ----------------------------------------- */

static void *plus_one(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)arg;
    return (void *)((uintptr_t)value + 1);
}

static int chain(size_t n, uint64_t *tail)
{
    fut_promise_t *p = fut_promise_new();
    if (!p)
        return ENOMEM;
    fut_t *f = fut_promise_future(p);
    for (size_t i = 0; i < n; i++)
        f = fut_then(f, plus_one, NULL);
    fut_resolve(p, (void *)0, NULL);
    fut_promise_release(p);
    void *v;
    int rc = fut_get(f, FUT_FOREVER, &v);
    fut_release(f);
    *tail = (uintptr_t)v;
    return rc;
}

/* --- W9: a task group against fut_when_all ---------------------------- */

static int group_fan_in(size_t n, uint64_t *sum)
{
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    if (!g)
        return ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = fut_group_spawn(g, return_index, (void *)(uintptr_t)i);
        if (rc != 0) {
            fut_group_release(g);
            return rc;
        }
    }
    int rc = get_index_sum(fut_group_close(g), n, sum);
    fut_group_release(g);
    return rc;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A RESULT line: the median of runs figures (sorted here), with their
 * range, and the process's peak RSS so far. */
static void result_runs(const char *workload, double *v, int runs,
                        const char *unit, size_t n, const char *note)
{
    double med = median(v, runs);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT system=fut workload=%s value=%.6g unit=%s n=%zu runs=%d "
           "min=%.6g max=%.6g rss_kib=%ld note=\"%s\"\n",
           workload, med, unit, n, runs, v[0], v[runs - 1], ru.ru_maxrss, note);
    fflush(stdout);
}

/* A RESULT line for one figure. */
static void result(const char *workload, double value, const char *unit,
                   size_t n, const char *note)
{
    result_runs(workload, &value, 1, unit, n, note);
}

enum { W9_PAIRS_MAX = 64 };

/* One warm-up pair, then pairs timed in alternating order (so neither
 * side always runs on a warmer pool); every run's sum is checked. */
static int groups(bool quick, int threads, int pairs)
{
    size_t n = quick ? PEER_W9_QUICK_N : PEER_W9_STANDARD_N;
    uint64_t expect = (uint64_t)n * (n - 1) / 2;
    double tg[W9_PAIRS_MAX], tw[W9_PAIRS_MAX], ratio[W9_PAIRS_MAX];
    int rc = start(threads);
    if (rc)
        return rc;
    for (int r = -1; r < pairs && rc == 0; r++) {
        double t[2];
        for (int k = 0; k < 2 && rc == 0; k++) {
            bool group = (k == 0) == (r % 2 == 0);
            uint64_t sum = 0;
            double t0 = seconds();
            rc = group ? group_fan_in(n, &sum) : fan_in(n, &sum);
            t[group] = seconds() - t0;
            if (rc == 0 && sum != expect)
                rc = EPROTO; /* a wrong sum fails the run */
        }
        if (r >= 0) {
            tg[r] = t[1];
            tw[r] = t[0];
            ratio[r] = t[1] / t[0];
        }
    }
    stop();
    if (rc)
        return rc;
    char note[160];
    snprintf(note, sizeof note, "median of %d alternating pairs, %d threads",
             pairs, threads);
    result("W9group", (double)n / median(tg, pairs), "inputs/s", n, note);
    result("W9when_all", (double)n / median(tw, pairs), "inputs/s", n, note);
    result("W9", median(ratio, pairs), "x", n,
           "time through a FUT_GROUP_ALL group (fut_group_spawn) / through "
           "fut_when_all, "
           "same tasks (median of the pairs' ratios)");
    return 0;
}

/* --- W8: fibers ------------------------------------------------------ */

enum { W8_STACK = 16 * 1024 }; /* the smallest stack fut_async_ex takes */

static fut_t **w8_inbox;            /* fiber i awaits w8_inbox[i] */
static _Atomic size_t w8_parked;    /* fibers about to await */
static size_t w8_n;                 /* fibers of this run */
static _Atomic double w8_parked_at; /* when the last one was about to */

static void *w8_fiber(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    size_t i = (size_t)(uintptr_t)arg;
    if (atomic_fetch_add_explicit(&w8_parked, 1, memory_order_relaxed) + 1 ==
        w8_n)
        atomic_store(&w8_parked_at, seconds());
    void *v = NULL;
    int rc = fut_await(w8_inbox[i], FUT_FOREVER, &v);
    return rc == 0 ? v : NULL; /* a wrong sum reports a failed await */
}

/* The process's resident set now, in KiB (/proc/self/statm). */
static long rss_now_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(f);
    }
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* One W8 run: n fibers started at once, each awaiting its own promise;
 * once all are about to wait, the resident set is read (*kib_per_fiber)
 * and the main thread resolves every promise.  *secs: from the first
 * start until the last fiber is about to wait (it notes the time), plus
 * from the first resolve until all finished; the poll between the two
 * and the resident set's reading are not timed.  Counting until the
 * fibers wait, not until the starting calls return, charges every system
 * for running each fiber to its wait, whether it does so at once or after
 * the calls return.  trim: first give back the stacks kept from
 * earlier fibers, so that *kib_per_fiber counts the stacks' pages (the
 * warm-up run; the timed runs reuse what the run before kept, as the
 * peers reuse their heaps). */
static int w8_once(size_t n, bool trim, double *secs, double *kib_per_fiber)
{
    if (trim)
        fut_trim();
    fut_promise_t **ps = malloc(n * sizeof *ps);
    fut_t **fs = malloc(n * sizeof *fs);
    w8_inbox = malloc(n * sizeof *w8_inbox);
    if (!ps || !fs || !w8_inbox) {
        free(ps);
        free(fs);
        free(w8_inbox);
        return ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ps[i] = fut_promise_new();
        w8_inbox[i] = fut_promise_future(ps[i]);
    }
    atomic_store(&w8_parked, 0);
    atomic_store(&w8_parked_at, 0.0);
    w8_n = n;
    long rss0 = rss_now_kib();
    double t0 = seconds();
    for (size_t i = 0; i < n; i++)
        fs[i] =
            fut_async_ex(pool, w8_fiber, (void *)(uintptr_t)i, NULL, W8_STACK);
    int rc = 0;
    while (atomic_load(&w8_parked_at) == 0.0 && rc == 0) {
        nanosleep(&(struct timespec){0, 1000000}, NULL);
        for (size_t i = 0; i < n && rc == 0; i += n / 64 + 1)
            if (fut_state(fs[i]) == FUT_REJECTED)
                rc = fut_get(fs[i], 0, NULL); /* no stack: ENOMEM */
    }
    double started = rc == 0 ? atomic_load(&w8_parked_at) - t0 : 0;
    *kib_per_fiber = (double)(rss_now_kib() - rss0) / (double)n;
    double t1 = seconds();
    for (size_t i = 0; i < n; i++)
        fut_resolve(ps[i], (void *)(uintptr_t)(i + 1), NULL);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        void *v = NULL;
        int r = fut_get(fs[i], FUT_FOREVER, &v);
        if (r && !rc)
            rc = r;
        sum += (uintptr_t)v;
        fut_release(fs[i]);
        fut_release(w8_inbox[i]);
        fut_promise_release(ps[i]);
    }
    *secs = started + (seconds() - t1);
    if (rc == 0 && sum != (uint64_t)n * (n + 1) / 2)
        rc = EPROTO;
    free(ps);
    free(fs);
    free(w8_inbox);
    return rc;
}

/* The ping-pong: each side's inbox is a promise it makes before it
 * signals the other (so the other's reply has somewhere to go), then
 * awaits; the receiver of a message releases its future, the sender the
 * promise it resolved. */
typedef struct pingpong {
    fut_promise_t *_Atomic slot[2]; /* each side's current inbox */
    size_t rounds;
} pingpong_t;

static pingpong_t pp;
static fut_t *pp_first; /* side 1's first inbox */

/* Side me resolves the other side's inbox; unless last, first makes its
 * own next one and returns its future. */
static fut_t *pp_send(int me, bool last)
{
    fut_t *next = NULL;
    if (!last) {
        fut_promise_t *p = fut_promise_new();
        next = fut_promise_future(p);
        /* Release/acquire: the other side reads the slot only after this
         * side's resolve woke it, which orders it anyway; a seq_cst store
         * would add a locked instruction per message to the harness. */
        atomic_store_explicit(&pp.slot[me], p, memory_order_release);
    }
    fut_promise_t *other =
        atomic_load_explicit(&pp.slot[1 - me], memory_order_acquire);
    fut_resolve(other, NULL, NULL);
    fut_promise_release(other);
    return next;
}

static void *pp_fiber(fut_ctx_t *ctx, void *arg)
{
    int me = (int)(uintptr_t)arg;
    size_t rounds = pp.rounds;
    int rc = 0;
    if (me == 0) {
        for (size_t r = 0; r < rounds && rc == 0; r++) {
            fut_t *f = pp_send(0, false);
            rc = fut_await(f, FUT_FOREVER, NULL);
            fut_release(f);
        }
    } else {
        fut_t *f = fut_retain(pp_first);
        for (size_t r = 0; r < rounds && rc == 0; r++) {
            rc = fut_await(f, FUT_FOREVER, NULL);
            fut_release(f);
            f = pp_send(1, r + 1 == rounds);
        }
    }
    return rc ? fut_fail(ctx, rc, "ping-pong await") : NULL;
}

static int pingpong_once(size_t rounds, double *secs)
{
    fut_promise_t *p = fut_promise_new();
    pp_first = fut_promise_future(p);
    atomic_store(&pp.slot[1], p);
    pp.rounds = rounds;
    double t0 = seconds();
    fut_t *a = fut_async_ex(pool, pp_fiber, (void *)0, NULL, W8_STACK);
    fut_t *b = fut_async_ex(pool, pp_fiber, (void *)1, NULL, W8_STACK);
    int rc = fut_get(a, FUT_FOREVER, NULL);
    int rb = fut_get(b, FUT_FOREVER, NULL);
    *secs = seconds() - t0;
    fut_release(a);
    fut_release(b);
    fut_release(pp_first);
    return rc ? rc : rb;
}

/* vm.max_map_count: each fiber stack is two mappings (stack and guard
 * page).  Raised for the run when it is too low and we may (root), and
 * put back after; otherwise W8 runs as many fibers as fit and says so. */
static long map_count(long set)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", set ? "w" : "r");
    long have = 0;
    if (!f)
        return 0;
    if (set)
        have = fprintf(f, "%ld\n", set) > 0 ? set : 0;
    else if (fscanf(f, "%ld", &have) != 1)
        have = 0;
    if (fclose(f) != 0)
        have = 0;
    return have;
}

static int fibers(bool quick, int threads, int runs)
{
    size_t n = quick ? PEER_W8_QUICK_N : PEER_W8_STANDARD_N;
    size_t rounds = quick ? PEER_W8SWITCH_QUICK_N : PEER_W8SWITCH_STANDARD_N;
    long need = 2 * (long)n + 65536, before = map_count(0), raised = 0;
    char note[160] = "";
    if (before > 0 && before < need) {
        raised = map_count(need);
        if (!raised) {
            size_t fit = (size_t)(before > 40000 ? (before - 30000) / 2 : 0);
            snprintf(note, sizeof note,
                     "n reduced from %zu: vm.max_map_count is %ld", n, before);
            n = fit;
        }
    }
    int rc = n ? start(threads) : EINVAL;
    double t[W9_PAIRS_MAX], sw[W9_PAIRS_MAX], kib = 0;
    for (int r = -1; r < runs && rc == 0; r++) {
        double secs = 0, k = 0, ps = 0;
        fprintf(stderr, "\rfut W8 %s %d/%d ", r < 0 ? "warm-up" : "run",
                r < 0 ? 1 : r + 1, r < 0 ? 1 : runs);
        rc = w8_once(n, r < 0, &secs, &k);
        if (rc == 0)
            rc = pingpong_once(rounds, &ps);
        if (r < 0) {
            kib = k;
        } else {
            t[r] = (double)n / secs;
            sw[r] = 2.0 * (double)rounds / ps;
        }
    }
    fprintf(stderr, "\n");
    if (n)
        stop();
    if (raised)
        map_count(before); /* the machine's setting, as it was */
    if (rc)
        return rc;
    char w8note[320]; /* note (160) and the text after it */
    snprintf(w8note, sizeof w8note,
             "%s%sfibers (fut_async_ex, 16 KiB stacks) each awaiting its "
             "own promise, %d workers; start until all wait + resolve until "
             "all finished",
             note, *note ? "; " : "", threads);
    result_runs("W8", t, runs, "fibers/s", n, w8note);
    result_runs("W8switch", sw, runs, "switches/s", rounds,
                "ping-pong of two fibers, a new promise per message");
    result("W8rss", kib, "KiB/fiber", n,
           "resident KiB per suspended fiber (16 KiB stacks; the warm-up "
           "run, after fut_trim)");
    return 0;
}

/* --- memory ----------------------------------------------------------- */

typedef struct counting {
    _Atomic size_t calls, bytes, live_bytes;
} counting_t;

static void *count_alloc(size_t size, void *ctx)
{
    counting_t *c = ctx;
    atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->bytes, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->live_bytes, size, memory_order_relaxed);
    return malloc(size);
}

static void count_free(void *p, size_t size, void *ctx)
{
    counting_t *c = ctx;
    atomic_fetch_sub_explicit(&c->live_bytes, size, memory_order_relaxed);
    free(p);
}

static atomic_bool gate;

static void *wait_gate(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    /* Sleeps rather than waits on a future: nothing here may allocate
     * while the queued tasks are being counted. */
    while (!atomic_load(&gate))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    return NULL;
}

/* Pool and allocator set up before counting starts; the pool's own
 * allocations are made first and not counted per task. */
static int memory(bool quick)
{
    size_t n = quick ? PEER_MEM_QUICK_N : PEER_MEM_STANDARD_N;
    counting_t c = {0};
    fut_allocator_t a = {count_alloc, count_free, &c};
    fut_set_allocator(&a);
    int rc = start(1);
    if (rc)
        return rc;
    fut_t **fs = malloc(n * sizeof *fs);
    if (!fs)
        return ENOMEM;

    /* Bytes per pending future: a blocked worker, n tasks queued. */
    atomic_store(&gate, false);
    fut_t *blocker = fut_submit(pool, wait_gate, NULL);
    size_t before = atomic_load(&c.live_bytes);
    for (size_t i = 0; i < n; i++)
        fs[i] = fut_submit(pool, return_index, (void *)(uintptr_t)i);
    size_t held = atomic_load(&c.live_bytes) - before;
    atomic_store(&gate, true);
    for (size_t i = 0; i < n; i++) {
        fut_get(fs[i], FUT_FOREVER, NULL);
        fut_release(fs[i]);
    }
    fut_get(blocker, FUT_FOREVER, NULL);
    fut_release(blocker);
    result("mem_future", (double)held / (double)n, "B", n,
           "bytes from the allocator per pending task future");

    /* Allocator calls per task once warm: submit + get + release. */
    for (int round = 0; round < 2; round++) {
        size_t calls0 = atomic_load(&c.calls);
        for (size_t i = 0; i < n; i++)
            fs[i] = fut_submit(pool, return_index, (void *)(uintptr_t)i);
        for (size_t i = 0; i < n; i++) {
            fut_get(fs[i], FUT_FOREVER, NULL);
            fut_release(fs[i]);
        }
        if (round == 1)
            result("mallocs_per_task",
                   (double)(atomic_load(&c.calls) - calls0) / (double)n,
                   "calls", n, "allocator calls per task, second round");
    }
    free(fs);
    stop();
    fut_set_allocator(NULL);
    return 0;
}

static const peer_ops_t fut_ops = {
    .name = "fut",
    .start = start,
    .stop = stop,
    .batch = batch,
    .submit_sum = submit_sum,
    .chain = chain,
    .fan_in = fan_in,
    .round_trip = round_trip,
    .batch_mixed = batch_mixed,
    .max_blocking = PEER_W7_EXTRA_THREADS,
    .note = {[PEER_W2] = "fut_then chain on a promise",
             [PEER_W3] = "fut_when_all",
             [PEER_W7] = "FUT_BLOCKING on the blocking tasks; max_threads = "
                         "threads + 64 (66): extra threads keep 2 runnable"},
};

int main(int argc, char **argv)
{
    bool quick = false, mem = true, w9 = true, w8 = true;
    int threads = 2, runs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            mem = strstr(argv[i + 1], "mem") != NULL;
            w9 = strstr(argv[i + 1], "W9") != NULL;
            w8 = strstr(argv[i + 1], "W8") != NULL;
        }
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--child"))
            mem = w9 = w8 = false;
    }
    int status = peer_main(argc, argv, &fut_ops);
    if (status == 0 && last_spawned) {
        result("W7spawned", (double)last_spawned, "threads", 0,
               "extra threads the W7 pool started over its warm-up and "
               "timed runs (an idle one lives 10 s: later runs reuse it)");
    }
    if (status == 0 && w9) {
        int pairs = runs > 0 ? runs : quick ? 3 : 7;
        if (pairs > W9_PAIRS_MAX)
            pairs = W9_PAIRS_MAX;
        int rc = groups(quick, threads > 0 ? threads : 2, pairs);
        if (rc) {
            fprintf(stderr, "fut_bench: W9: %s\n", strerror(rc));
            status = 1;
        }
    }
    if (status == 0 && w8) {
        int r8 = runs > 0 ? runs : quick ? 3 : 5;
        if (r8 > W9_PAIRS_MAX)
            r8 = W9_PAIRS_MAX;
        int rc = fibers(quick, threads > 0 ? threads : 2, r8);
        if (rc) {
            fprintf(stderr, "fut_bench: W8: %s\n", strerror(rc));
            status = 1;
        }
    }
    if (status == 0 && mem) {
        int rc = memory(quick);
        if (rc) {
            fprintf(stderr, "fut_bench: memory: %s\n", strerror(rc));
            status = 1;
        }
    }
    return status;
}

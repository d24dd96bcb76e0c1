/*
 * harness.c - options, workloads, timing, verification and output of the
 * compiled peer programs (see harness.h for the division of labour).
 *
 * Every workload runs once as a warm-up and then R timed runs; each timed
 * run is measured with CLOCK_MONOTONIC around exactly the work the workload
 * names, and its result is verified before it counts.  A failed
 * verification prints why on stderr and makes the program exit 1; it never
 * produces a figure.  The figure is the median of the runs, with their min
 * and max, and the process's peak RSS so far (a high-water mark: it only
 * grows from one workload to the next).
 *
 * Each workload starts the peer's pool with its thread count and stops it
 * afterwards, so a workload never sees another's threads.  Inputs, result
 * slots and latency arrays are allocated before the timed region.
 */
#include "harness.h"
#include "peer_workloads.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

#define DEFAULT_RUNS 5
#define QUICK_RUNS 3
#define DEFAULT_THREADS 2
#define W4_THREADS PEER_W4_THREADS
#define W4_SLEEP_NS PEER_W4_SLEEP_NS
#define W5_CHUNKS PEER_W5_CHUNKS
#define W7_SLEEP_NS PEER_W7_SLEEP_NS
#define MAX_FIGURES 4 /* figures one timed run can produce */

static const char *const workload_names[PEER_NWORKLOADS] = {
    [PEER_W1] = "W1", [PEER_W2] = "W2", [PEER_W3] = "W3", [PEER_W4] = "W4",
    [PEER_W5] = "W5", [PEER_W6] = "W6", [PEER_W7] = "W7",
};

/* Standard sizes (tasks, continuations, inputs, sleeping tasks, ints,
 * round trips, tiny tasks) and the --quick ones, from bench/workloads.json. */
static const size_t full_n[PEER_NWORKLOADS] = PEER_STANDARD_N;
static const size_t quick_n[PEER_NWORKLOADS] = PEER_QUICK_N;

typedef struct options {
    bool quick;
    bool child; /* a respawned copy: no mem line, the parent prints it */
    int runs;
    int threads;
    unsigned only; /* one bit per workload */
    const char *argv0;
} options_t;

typedef struct stats {
    double median, min, max;
} stats_t;

/* One timed run of a workload: fills up to MAX_FIGURES figures; 0 or 1. */
typedef int (*once_fn)(void *state, double *figures);

uint64_t peer_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v in place. */
static stats_t summarise(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return (stats_t){.median = med, .min = v[0], .max = v[n - 1]};
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? -1 : ru.ru_maxrss;
}

static void report(const peer_ops_t *ops, const char *workload, stats_t s,
                   const char *unit, size_t n, int runs, const char *note)
{
    printf("RESULT system=%s workload=%s value=%.6g unit=%s n=%zu runs=%d "
           "min=%.6g max=%.6g rss_kib=%ld note=\"%s\"\n",
           ops->name, workload, s.median, unit, n, runs, s.min, s.max,
           peak_rss_kib(), note ? note : "");
    fflush(stdout);
}

/*
 * One warm-up and o->runs timed runs of once(); figures[f][r] is figure f
 * of run r.  Returns 0, or 1 as soon as a run fails.
 */
static int timed_runs(const peer_ops_t *ops, const options_t *o,
                      const char *label, once_fn once, void *state,
                      double *figures[MAX_FIGURES])
{
    double f[MAX_FIGURES];
    for (int r = -1; r < o->runs; r++) {
        fprintf(stderr, "\r%s %s %s %d/%d ", ops->name, label,
                r < 0 ? "warm-up" : "run", r < 0 ? 1 : r + 1,
                r < 0 ? 1 : o->runs);
        if (once(state, f)) {
            fprintf(stderr, "\n");
            return 1;
        }
        for (int k = 0; r >= 0 && k < MAX_FIGURES; k++)
            if (figures[k])
                figures[k][r] = f[k];
    }
    fprintf(stderr, "\n");
    return 0;
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return p;
}

static void sleep_ns(long ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000L,
                          .tv_nsec = ns % 1000000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* --- W1 and W3: n tasks that return their index, summed ---------------- */

typedef struct sum_state {
    const peer_ops_t *ops;
    const char *label;
    int (*native)(size_t n, uint64_t *sum);
    size_t n;
    uint64_t *slots; /* result slots when built on batch() */
} sum_state_t;

static void put_index(void *ctx, size_t i)
{
    ((uint64_t *)ctx)[i] = i;
}

static int sum_once(void *state, double *figures)
{
    sum_state_t *s = state;
    uint64_t sum = 0;
    int rc;
    /* A lost task leaves an all-ones slot behind, which the sum catches. */
    if (!s->native)
        memset(s->slots, 0xff, s->n * sizeof *s->slots);
    uint64_t t0 = peer_now_ns();
    if (s->native) {
        rc = s->native(s->n, &sum);
    } else {
        rc = s->ops->batch(s->n, put_index, s->slots);
        for (size_t i = 0; i < s->n && !rc; i++)
            sum += s->slots[i];
    }
    uint64_t t = peer_now_ns() - t0;
    uint64_t want = (uint64_t)s->n * (s->n - 1) / 2;
    if (rc || sum != want) {
        fprintf(stderr,
                "\n%s %s: verification failed (rc %d, sum %llu, "
                "want %llu)\n",
                s->ops->name, s->label, rc, (unsigned long long)sum,
                (unsigned long long)want);
        return 1;
    }
    figures[0] = (double)s->n / ((double)t * 1e-9);
    return 0;
}

static int run_sum(const peer_ops_t *ops, const options_t *o,
                   enum peer_workload w, size_t n, const char *note)
{
    const char *label = workload_names[w];
    sum_state_t s = {
        .ops = ops,
        .label = label,
        .native = w == PEER_W1 ? ops->submit_sum : ops->fan_in,
        .n = n,
    };
    if (!s.native)
        s.slots = xmalloc(n * sizeof *s.slots);
    double *rates = xmalloc((size_t)o->runs * sizeof *rates);
    int status = timed_runs(ops, o, label, sum_once, &s,
                            (double *[MAX_FIGURES]){rates, NULL, NULL});
    if (!status)
        report(ops, label, summarise(rates, o->runs),
               w == PEER_W1 ? "tasks/s" : "inputs/s", n, o->runs, note);
    free(rates);
    free(s.slots);
    return status;
}

/* --- W2: a chain of n continuations ------------------------------------ */

typedef struct chain_state {
    const peer_ops_t *ops;
    size_t n;
} chain_state_t;

static int chain_once(void *state, double *figures)
{
    chain_state_t *s = state;
    uint64_t tail = 0;
    uint64_t t0 = peer_now_ns();
    int rc = s->ops->chain(s->n, &tail);
    uint64_t t = peer_now_ns() - t0;
    if (rc || tail != s->n) {
        fprintf(stderr,
                "\n%s W2: verification failed (rc %d, tail %llu, "
                "want %zu)\n",
                s->ops->name, rc, (unsigned long long)tail, s->n);
        return 1;
    }
    figures[0] = (double)s->n / ((double)t * 1e-9);
    return 0;
}

static int run_chain(const peer_ops_t *ops, const options_t *o, size_t n,
                     const char *note)
{
    chain_state_t s = {.ops = ops, .n = n};
    double *rates = xmalloc((size_t)o->runs * sizeof *rates);
    int status = timed_runs(ops, o, "W2", chain_once, &s,
                            (double *[MAX_FIGURES]){rates, NULL, NULL});
    if (!status)
        report(ops, "W2", summarise(rates, o->runs), "cont/s", n, o->runs,
               note);
    free(rates);
    return status;
}

/* --- W4: n tasks that each sleep 2 ms, on W4_THREADS threads ----------- */

typedef struct sleep_state {
    const peer_ops_t *ops;
    size_t n;
    unsigned char *ran;
} sleep_state_t;

static void sleep_task(void *ctx, size_t i)
{
    sleep_ns(W4_SLEEP_NS);
    ((unsigned char *)ctx)[i] = 1;
}

/* The ideal wall time: the sleeps spread evenly over the threads. */
static double w4_ideal_ms(size_t n)
{
    return (double)((n + W4_THREADS - 1) / W4_THREADS) * W4_SLEEP_NS / 1e6;
}

static int sleep_once(void *state, double *figures)
{
    sleep_state_t *s = state;
    memset(s->ran, 0, s->n);
    uint64_t t0 = peer_now_ns();
    int rc = s->ops->batch(s->n, sleep_task, s->ran);
    uint64_t t = peer_now_ns() - t0;
    size_t ran = 0;
    for (size_t i = 0; i < s->n; i++)
        ran += s->ran[i];
    if (rc || ran != s->n) {
        fprintf(stderr,
                "\n%s W4: verification failed (rc %d, %zu of %zu "
                "tasks ran)\n",
                s->ops->name, rc, ran, s->n);
        return 1;
    }
    /* The floor: the same sleeps of one thread's share, back to back. */
    size_t rounds = (s->n + W4_THREADS - 1) / W4_THREADS;
    uint64_t f0 = peer_now_ns();
    for (size_t k = 0; k < rounds; k++)
        sleep_ns(W4_SLEEP_NS);
    figures[0] = (double)t / 1e6;
    figures[1] = (double)(peer_now_ns() - f0) / 1e6;
    return 0;
}

static int run_sleep(const peer_ops_t *ops, const options_t *o, size_t n,
                     const char *note)
{
    sleep_state_t s = {.ops = ops, .n = n, .ran = xmalloc(n)};
    int runs = o->runs;
    double *ms = xmalloc((size_t)runs * sizeof *ms);
    double *floor_ms = xmalloc((size_t)runs * sizeof *floor_ms);
    double *eff = xmalloc((size_t)runs * sizeof *eff);
    int status = timed_runs(ops, o, "W4", sleep_once, &s,
                            (double *[MAX_FIGURES]){ms, floor_ms, NULL});
    if (!status) {
        double ideal = w4_ideal_ms(n);
        for (int r = 0; r < runs; r++)
            eff[r] = ideal / ms[r];
        report(ops, "W4", summarise(ms, runs), "ms", n, runs, note);
        report(ops, "W4eff", summarise(eff, runs), "x", n, runs,
               "ideal wall time / measured");
        report(ops, "W4floor", summarise(floor_ms, runs), "ms",
               (n + W4_THREADS - 1) / W4_THREADS, runs,
               "one thread, the 2 ms sleeps back to back");
    }
    free(eff);
    free(floor_ms);
    free(ms);
    free(s.ran);
    return status;
}

/* --- W5: sort 64 chunks as 64 tasks, then a serial k-way merge --------- */

typedef struct sort_state {
    const peer_ops_t *ops;
    void (*sort)(int *a, size_t n);
    size_t n;
    const int *input;
    int *work; /* sorted in place, chunk by chunk */
    int *out;  /* the merge's output */
    uint64_t checksum;
    size_t bounds[W5_CHUNKS + 1];
} sort_state_t;

/* The C peers' and fut's chunk sort: an introsort of ints with the
 * comparison inlined (quicksort on the median of three down to SORT_SMALL,
 * heapsort past a depth of 2 log2 n, then one insertion sort over the
 * whole array), the same kind of
 * sort as the C++ peers' std::sort, so that W5 compares executors, not
 * qsort's indirect comparisons (qsort: 712 ms against std::sort's 472-488
 * before, on the same machine). */
enum { SORT_SMALL = 16 };

static void swap_int(int *a, int *b)
{
    int t = *a;
    *a = *b;
    *b = t;
}

static void insertion_sort(int *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int v = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

static void heap_sift(int *a, size_t root, size_t n)
{
    for (size_t child; (child = 2 * root + 1) < n; root = child) {
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[root] >= a[child])
            return;
        swap_int(&a[root], &a[child]);
    }
}

static void heap_sort(int *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        heap_sift(a, i, n);
    for (size_t end = n; end-- > 1;) {
        swap_int(&a[0], &a[end]);
        heap_sift(a, 0, end);
    }
}

static void intro_sort(int *a, size_t n, int depth)
{
    while (n > SORT_SMALL) {
        if (depth-- == 0) {
            heap_sort(a, n);
            return;
        }
        /* Median of three to a[0], then Hoare's partition around it. */
        size_t mid = n / 2;
        if (a[mid] < a[0])
            swap_int(&a[mid], &a[0]);
        if (a[n - 1] < a[0])
            swap_int(&a[n - 1], &a[0]);
        if (a[n - 1] < a[mid])
            swap_int(&a[n - 1], &a[mid]);
        swap_int(&a[0], &a[mid]);
        int pivot = a[0];
        size_t i = 0, j = n;
        for (;;) {
            do /* a[n - 1] >= pivot stops the first pass, a swapped one after */
                i++;
            while (a[i] < pivot);
            do
                j--;
            while (a[j] > pivot);
            if (i >= j)
                break;
            swap_int(&a[i], &a[j]);
        }
        swap_int(&a[0], &a[j]);
        /* Recurse into the smaller side, loop on the larger. */
        if (j < n - j - 1) {
            intro_sort(a, j, depth);
            a += j + 1;
            n -= j + 1;
        } else {
            intro_sort(a + j + 1, n - j - 1, depth);
            n = j;
        }
    }
    /* Left for one insertion sort over the whole array (sort_ints). */
}

static void sort_ints(int *a, size_t n)
{
    int depth = 0;
    for (size_t m = n; m > 1; m >>= 1)
        depth += 2;
    intro_sort(a, n, depth);
    insertion_sort(a, n); /* each element is at most SORT_SMALL away */
}

/* xorshift64 (13, 7, 17) from seed 42, value = (int)(x >> 33): the same
 * sequence the Python and Node peers generate. */
static void fill_input(int *a, size_t n)
{
    uint64_t x = 42;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        a[i] = (int)(x >> 33);
    }
}

static uint64_t checksum(const int *a, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (uint64_t)a[i];
    return sum;
}

static int check_sorted(const sort_state_t *s, const int *a, const char *what)
{
    for (size_t i = 1; i < s->n; i++) {
        if (a[i - 1] > a[i]) {
            fprintf(stderr, "\n%s W5: %s output unsorted at %zu\n",
                    s->ops->name, what, i);
            return 1;
        }
    }
    if (checksum(a, s->n) != s->checksum) {
        fprintf(stderr,
                "\n%s W5: %s output checksum differs from the "
                "input's\n",
                s->ops->name, what);
        return 1;
    }
    return 0;
}

static void sort_chunk(void *ctx, size_t c)
{
    sort_state_t *s = ctx;
    s->sort(s->work + s->bounds[c], s->bounds[c + 1] - s->bounds[c]);
}

/* Restores the min-heap property below heap[i]; a chunk's key is the value
 * at its read position. */
static void sift_down(size_t *heap, size_t k, size_t i, const int *a,
                      const size_t *pos)
{
    size_t c = heap[i];
    int key = a[pos[c]];
    for (;;) {
        size_t m = 2 * i + 1;
        if (m >= k)
            break;
        if (m + 1 < k && a[pos[heap[m + 1]]] < a[pos[heap[m]]])
            m++;
        if (a[pos[heap[m]]] >= key)
            break;
        heap[i] = heap[m];
        i = m;
    }
    heap[i] = c;
}

static void merge_chunks(sort_state_t *s)
{
    size_t pos[W5_CHUNKS], heap[W5_CHUNKS], k = 0;
    for (size_t c = 0; c < W5_CHUNKS; c++) {
        pos[c] = s->bounds[c];
        if (pos[c] < s->bounds[c + 1])
            heap[k++] = c;
    }
    for (size_t i = k / 2; i-- > 0;)
        sift_down(heap, k, i, s->work, pos);
    for (size_t o = 0; k; o++) {
        size_t c = heap[0];
        s->out[o] = s->work[pos[c]++];
        if (pos[c] == s->bounds[c + 1])
            heap[0] = heap[--k];
        if (k)
            sift_down(heap, k, 0, s->work, pos);
    }
}

static int sort_once(void *state, double *figures)
{
    sort_state_t *s = state;
    memcpy(s->work, s->input, s->n * sizeof *s->work);
    uint64_t t0 = peer_now_ns();
    s->sort(s->work, s->n);
    uint64_t serial = peer_now_ns() - t0;
    if (check_sorted(s, s->work, "serial"))
        return 1;

    memcpy(s->work, s->input, s->n * sizeof *s->work);
    t0 = peer_now_ns();
    int rc = s->ops->batch(W5_CHUNKS, sort_chunk, s);
    if (!rc)
        merge_chunks(s);
    uint64_t parallel = peer_now_ns() - t0;
    if (rc) {
        fprintf(stderr, "\n%s W5: batch failed (rc %d)\n", s->ops->name, rc);
        return 1;
    }
    if (check_sorted(s, s->out, "chunk-sorted and merged"))
        return 1;
    figures[0] = (double)parallel / 1e6;
    figures[1] = (double)serial / (double)parallel;
    return 0;
}

static int run_sort(const peer_ops_t *ops, const options_t *o, size_t n,
                    const char *note)
{
    sort_state_t s = {
        .ops = ops,
        .sort = ops->sort ? ops->sort : sort_ints,
        .n = n,
        .work = xmalloc(n * sizeof(int)),
        .out = xmalloc(n * sizeof(int)),
    };
    int *input = xmalloc(n * sizeof *input);
    fill_input(input, n);
    s.input = input;
    s.checksum = checksum(input, n);
    for (size_t c = 0; c <= W5_CHUNKS; c++)
        s.bounds[c] = n * c / W5_CHUNKS;
    double *ms = xmalloc((size_t)o->runs * sizeof *ms);
    double *speedup = xmalloc((size_t)o->runs * sizeof *speedup);
    int status = timed_runs(ops, o, "W5", sort_once, &s,
                            (double *[MAX_FIGURES]){ms, speedup, NULL});
    if (!status) {
        report(ops, "W5", summarise(ms, o->runs), "ms", n, o->runs, note);
        report(ops, "W5speedup", summarise(speedup, o->runs), "x", n, o->runs,
               "serial sort of the whole array / chunk sort + merge");
    }
    free(speedup);
    free(ms);
    free(input);
    free(s.out);
    free(s.work);
    return status;
}

/* --- W6: n round trips, one task at a time ----------------------------- */

typedef struct latency_state {
    const peer_ops_t *ops;
    size_t n;
    double *lat_us;
} latency_state_t;

static void echo_task(void *ctx, size_t i)
{
    uint64_t *io = ctx;
    (void)i;
    io[1] = io[0];
}

static int round_trip(const peer_ops_t *ops, uint64_t in, uint64_t *out)
{
    if (ops->round_trip)
        return ops->round_trip(in, out);
    uint64_t io[2] = {in, ~in};
    int rc = ops->batch(1, echo_task, io);
    *out = io[1];
    return rc;
}

/* The floor of a round trip between two threads on this machine: the same
 * number of round trips, timed the same way, each a bare hand-off of one
 * cache line to a thread spinning on it and back (no library, no queue, no
 * parking).  A system whose figure is below it answered without crossing
 * threads (its waiting thread ran the task). */
typedef struct bounce {
    _Alignas(64) _Atomic uint64_t req;
    _Alignas(64) _Atomic uint64_t ack;
    size_t n;
} bounce_t;

static void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void *bounce_back(void *arg)
{
    bounce_t *b = arg;
    for (uint64_t i = 1; i <= b->n; i++) {
        while (atomic_load_explicit(&b->req, memory_order_acquire) != i)
            spin_pause();
        atomic_store_explicit(&b->ack, i, memory_order_release);
    }
    return NULL;
}

/* n bare round trips into lat_us (sorted); 0, or -1 if no thread. */
static int floor_runs(size_t n, double *lat_us)
{
    static bounce_t b; /* aligned lines; one measurement at a time */
    atomic_store(&b.req, 0);
    atomic_store(&b.ack, 0);
    b.n = n;
    pthread_t t;
    if (pthread_create(&t, NULL, bounce_back, &b) != 0)
        return -1;
    for (uint64_t k = 1; k <= n; k++) {
        uint64_t t0 = peer_now_ns();
        atomic_store_explicit(&b.req, k, memory_order_release);
        while (atomic_load_explicit(&b.ack, memory_order_acquire) != k)
            spin_pause();
        lat_us[k - 1] = (double)(peer_now_ns() - t0) / 1e3;
    }
    pthread_join(t, NULL);
    qsort(lat_us, n, sizeof *lat_us, cmp_double);
    return 0;
}

static int latency_once(void *state, double *figures)
{
    latency_state_t *s = state;
    int rc = 0;
    if (s->ops->latency) {
        rc = s->ops->latency(s->n, s->lat_us);
    } else {
        for (size_t k = 0; k < s->n && !rc; k++) {
            uint64_t got = 0;
            uint64_t t0 = peer_now_ns();
            rc = round_trip(s->ops, k + 1, &got);
            s->lat_us[k] = (double)(peer_now_ns() - t0) / 1e3;
            if (!rc && got != k + 1)
                rc = EIO;
        }
    }
    if (rc) {
        fprintf(stderr,
                "\n%s W6: a round trip failed or returned the wrong "
                "value (rc %d)\n",
                s->ops->name, rc);
        return 1;
    }
    qsort(s->lat_us, s->n, sizeof *s->lat_us, cmp_double);
    figures[0] = s->lat_us[s->n / 2];
    figures[1] = s->lat_us[(size_t)ceil(0.99 * (double)s->n) - 1];
    if (floor_runs(s->n, s->lat_us) != 0)
        return 1;
    figures[2] = s->lat_us[s->n / 2];
    figures[3] = s->lat_us[(size_t)ceil(0.99 * (double)s->n) - 1];
    return 0;
}

static int run_latency(const peer_ops_t *ops, const options_t *o, size_t n,
                       const char *note)
{
    latency_state_t s = {
        .ops = ops, .n = n, .lat_us = xmalloc(n * sizeof(double))};
    double *p50 = xmalloc((size_t)o->runs * sizeof *p50);
    double *p99 = xmalloc((size_t)o->runs * sizeof *p99);
    double *bare = xmalloc((size_t)o->runs * sizeof *bare);
    double *bare99 = xmalloc((size_t)o->runs * sizeof *bare99);
    int status = timed_runs(ops, o, "W6", latency_once, &s,
                            (double *[MAX_FIGURES]){p50, p99, bare, bare99});
    if (!status) {
        report(ops, "W6p50", summarise(p50, o->runs), "us", n, o->runs, note);
        report(ops, "W6p99", summarise(p99, o->runs), "us", n, o->runs, note);
        report(ops, "W6floor", summarise(bare, o->runs), "us", n, o->runs,
               "p50 of a bare cache-line round trip between two threads");
        report(ops, "W6floor99", summarise(bare99, o->runs), "us", n, o->runs,
               "p99 of a bare cache-line round trip between two threads");
    }
    free(bare99);
    free(bare);
    free(p99);
    free(p50);
    free(s.lat_us);
    return status;
}

/* --- W7: mixed load: tiny tasks among blocking ones -------------------- */

/*
 * PEER_W7_BLOCKING tasks (PEER_W7_BLOCKING_QUICK with --quick) that each
 * sleep W7_SLEEP_NS (a blocking call) are submitted evenly spaced among n
 * tiny tasks, on the default pool size.  A
 * system with a mechanism for blocking calls is told which tasks block
 * (batch_mixed); a fixed pool runs them all through batch().  Each run
 * first times the n tiny tasks alone on the same pool, then the mixed
 * batch.  The tasks themselves stamp when the last tiny one and the last
 * blocking one finished, so the figures are: the time until all tiny tasks
 * are done over the time of the tiny tasks alone (the slowdown that the
 * blocking tasks cause; 1 is none), and the blocking tasks' wall time
 * against its ideal, ceil(blocking tasks / max_blocking) sleeps.
 */
typedef struct mixed_state {
    const peer_ops_t *ops;
    size_t tiny;          /* tiny tasks */
    size_t nblocking;     /* blocking tasks */
    size_t n;             /* all tasks of the mixed batch */
    unsigned char *marks; /* per task of the mixed batch: 1 if it blocks */
    unsigned char *none;  /* all 0: the tiny tasks alone */
    const unsigned char *blocking; /* marks or none, for mixed_check */
    uint64_t *slots; /* a tiny task's value, a blocking task's 1 */
    uint64_t t0;
    atomic_size_t tiny_left, blocking_left;
    _Atomic uint64_t tiny_done, blocking_done; /* ns since t0 */
} mixed_state_t;

/* The tiny task's computation: a multiplicative hash of its index, checked
 * against the same expression afterwards. */
static uint64_t tiny_value(size_t i)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15u;
    return (x ^ (x >> 29)) | 1u;
}

static void stamp_if_last(atomic_size_t *left, _Atomic uint64_t *done,
                          uint64_t t0)
{
    if (atomic_fetch_sub_explicit(left, 1, memory_order_acq_rel) == 1)
        atomic_store_explicit(done, peer_now_ns() - t0, memory_order_release);
}

static void tiny_task(void *ctx, size_t i)
{
    mixed_state_t *s = ctx;
    s->slots[i] = tiny_value(i);
    stamp_if_last(&s->tiny_left, &s->tiny_done, s->t0);
}

static void mixed_task(void *ctx, size_t i)
{
    mixed_state_t *s = ctx;
    if (s->blocking[i]) {
        sleep_ns(W7_SLEEP_NS);
        s->slots[i] = 1;
        stamp_if_last(&s->blocking_left, &s->blocking_done, s->t0);
    } else {
        tiny_task(ctx, i);
    }
}

static int mixed_check(const mixed_state_t *s, size_t n, int rc,
                       const char *what)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += s->slots[i] != (s->blocking[i] ? 1 : tiny_value(i));
    if (rc || bad || atomic_load(&s->tiny_left) ||
        atomic_load(&s->blocking_left)) {
        fprintf(stderr,
                "\n%s W7: verification of the %s failed (rc %d, %zu of "
                "%zu tasks missing or wrong)\n",
                s->ops->name, what, rc, bad, n);
        return 1;
    }
    return 0;
}

static int mixed_once(void *state, double *figures)
{
    mixed_state_t *s = state;

    /* The tiny tasks alone. */
    memset(s->slots, 0, s->n * sizeof *s->slots);
    atomic_store(&s->tiny_left, s->tiny);
    atomic_store(&s->blocking_left, 0);
    s->blocking = s->none;
    s->t0 = peer_now_ns();
    int rc = s->ops->batch(s->tiny, tiny_task, s);
    if (mixed_check(s, s->tiny, rc, "tiny tasks alone"))
        return 1;
    double alone = (double)atomic_load(&s->tiny_done) / 1e6;

    /* The mixed batch. */
    memset(s->slots, 0, s->n * sizeof *s->slots);
    s->blocking = s->marks;
    atomic_store(&s->tiny_left, s->tiny);
    atomic_store(&s->blocking_left, s->nblocking);
    s->t0 = peer_now_ns();
    rc = s->ops->batch_mixed
             ? s->ops->batch_mixed(s->n, mixed_task, s, s->marks)
             : s->ops->batch(s->n, mixed_task, s);
    if (mixed_check(s, s->n, rc, "mixed batch"))
        return 1;
    figures[0] = alone;
    figures[1] = (double)atomic_load(&s->tiny_done) / 1e6;
    figures[2] = (double)atomic_load(&s->blocking_done) / 1e6;
    return 0;
}

static int run_mixed(const peer_ops_t *ops, const options_t *o, size_t n,
                     const char *note)
{
    size_t nb = o->quick ? PEER_W7_BLOCKING_QUICK : PEER_W7_BLOCKING;
    mixed_state_t s = {.ops = ops, .tiny = n, .nblocking = nb, .n = n + nb};
    s.marks = calloc(s.n, 1);
    s.none = calloc(s.n, 1);
    s.slots = xmalloc(s.n * sizeof *s.slots);
    if (!s.marks || !s.none) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    /* Blocking task k at k * stride: evenly spaced, the first one first. */
    size_t stride = s.n / nb;
    for (size_t k = 0; k < nb; k++)
        s.marks[k * stride] = 1;
    int runs = o->runs;
    double *alone = xmalloc((size_t)runs * sizeof *alone);
    double *mixed = xmalloc((size_t)runs * sizeof *mixed);
    double *block = xmalloc((size_t)runs * sizeof *block);
    double *ratio = xmalloc((size_t)runs * sizeof *ratio);
    double *eff = xmalloc((size_t)runs * sizeof *eff);
    int status = timed_runs(ops, o, "W7", mixed_once, &s,
                            (double *[MAX_FIGURES]){alone, mixed, block});
    if (!status) {
        size_t conc =
            ops->max_blocking ? ops->max_blocking : (size_t)o->threads;
        if (conc > nb)
            conc = nb;
        double ideal =
            (double)((nb + conc - 1) / conc) * (double)W7_SLEEP_NS / 1e6;
        for (int r = 0; r < runs; r++) {
            ratio[r] = mixed[r] / alone[r];
            eff[r] = ideal / block[r];
        }
        char text[512];
        report(ops, "W7", summarise(ratio, runs), "x", n, runs, note);
        report(ops, "W7tiny", summarise(mixed, runs), "ms", n, runs,
               "until the last tiny task of the mixed batch finished");
        report(ops, "W7alone", summarise(alone, runs), "ms", n, runs,
               "the tiny tasks alone on the same pool");
        snprintf(text, sizeof text,
                 "until the last of %zu blocking tasks finished; ideal "
                 "%.0f ms (%zu blocking at once)",
                 nb, ideal, conc);
        report(ops, "W7block", summarise(block, runs), "ms", nb, runs, text);
        report(ops, "W7ideal", (stats_t){ideal, ideal, ideal}, "ms", nb, runs,
               text);
        report(ops, "W7blockeff", summarise(eff, runs), "x", nb, runs,
               "ideal wall time of the blocking tasks / measured");
    }
    free(eff);
    free(ratio);
    free(block);
    free(mixed);
    free(alone);
    free(s.slots);
    free(s.none);
    free(s.marks);
    return status;
}

/* --- driver ------------------------------------------------------------ */

/* Runs workload w in a fresh copy of this program (see PEER_RESPAWN). */
static int respawn(const options_t *o, enum peer_workload w)
{
    char runs[16], threads[16];
    snprintf(runs, sizeof runs, "%d", o->runs);
    snprintf(threads, sizeof threads, "%d", o->threads);
    char *argv[] = {(char *)o->argv0,
                    "--child",
                    "--only",
                    (char *)workload_names[w],
                    "--runs",
                    runs,
                    "--threads",
                    threads,
                    o->quick ? "--quick" : NULL,
                    NULL};
    fflush(stdout);
    fflush(stderr);
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
    if (rc) {
        fprintf(stderr, "cannot respawn for %s: %s\n", workload_names[w],
                strerror(rc));
        return 1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int run_workload(const peer_ops_t *ops, const options_t *o,
                        enum peer_workload w)
{
    if (w == PEER_W2 && !ops->chain)
        return 0; /* no continuations: n/a, no line */
    size_t n = o->quick ? quick_n[w] : full_n[w];
    const char *peer_note = ops->note[w] ? ops->note[w] : "";
    if (w == PEER_W7 && !ops->note[w] && !ops->batch_mixed)
        peer_note = "fixed pool, no mechanism for blocking calls: the "
                    "sleeping tasks hold its workers";
    if (w == PEER_W5 && !ops->note[w])
        peer_note = ops->sort ? "the peer's own sort"
                              : "the harness's introsort of ints";
    char note[256];
    snprintf(note, sizeof note, "%s", peer_note);
    if (ops->max_n[w] && ops->max_n[w] < n) {
        snprintf(note, sizeof note, "n reduced from %zu%s%s", n,
                 *peer_note ? "; " : "", peer_note);
        n = ops->max_n[w];
    }
    int threads = w == PEER_W4 ? W4_THREADS : o->threads;
    int rc = ops->start(threads);
    if (rc == PEER_RESPAWN)
        return respawn(o, w);
    if (rc) {
        fprintf(stderr, "%s: cannot start a pool of %d threads (%s)\n",
                ops->name, threads, strerror(rc));
        return 1;
    }
    int status = 0;
    switch (w) {
    case PEER_W1:
    case PEER_W3:
        status = run_sum(ops, o, w, n, note);
        break;
    case PEER_W2:
        status = run_chain(ops, o, n, note);
        break;
    case PEER_W4:
        status = run_sleep(ops, o, n, note);
        break;
    case PEER_W5:
        status = run_sort(ops, o, n, note);
        break;
    case PEER_W6:
        status = run_latency(ops, o, n, note);
        break;
    case PEER_W7:
        status = run_mixed(ops, o, n, note);
        break;
    case PEER_NWORKLOADS:
        break;
    }
    ops->stop();
    return status;
}

/* The workloads a --only list names ("W1,W4eff,...": a derived figure
 * selects its workload).  "mem", "W9" (fut_bench's own figures) and "W8*"
 * (fibers: fut_bench and the fiber peers) set no bit: no harness peer has
 * them.  False on an unknown name. */
static bool parse_only(const char *list, unsigned *bits)
{
    bool ok = true;
    *bits = 0;
    char *copy = xmalloc(strlen(list) + 1);
    strcpy(copy, list);
    for (char *save, *tok = strtok_r(copy, ",", &save); tok && ok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "mem") || !strcmp(tok, "W9") || !strncmp(tok, "W8", 2))
            continue;
        int w = -1;
        for (int k = 0; k < PEER_NWORKLOADS; k++)
            if (!strncmp(tok, workload_names[k], 2))
                w = k;
        if (w < 0)
            ok = false;
        else
            *bits |= 1u << w;
    }
    free(copy);
    return ok;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--quick] [--only W1[,W2...]] [--runs R] "
            "[--threads N]\n"
            "  --quick      smaller sizes and %d runs (a smoke test)\n"
            "  --only LIST  the workloads to run (default: all; fut_bench "
            "also has W9 and mem)\n"
            "  --runs R     timed runs per figure after one warm-up "
            "(default %d)\n"
            "  --threads N  pool size for every workload but W4, which "
            "uses %d (default %d)\n",
            argv0, QUICK_RUNS, DEFAULT_RUNS, W4_THREADS, DEFAULT_THREADS);
    return 2;
}

int peer_main(int argc, char **argv, const peer_ops_t *ops)
{
    options_t o = {.runs = 0,
                   .threads = DEFAULT_THREADS,
                   .only = (1u << PEER_NWORKLOADS) - 1,
                   .argv0 = argv[0]};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            o.quick = true;
        } else if (!strcmp(argv[i], "--child")) {
            o.child = true;
        } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            if (!parse_only(argv[++i], &o.only))
                return usage(argv[0]);
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            o.runs = atoi(argv[++i]);
            if (o.runs < 1)
                return usage(argv[0]);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            o.threads = atoi(argv[++i]);
            if (o.threads < 1)
                return usage(argv[0]);
        } else {
            return usage(argv[0]);
        }
    }
    if (!o.runs)
        o.runs = o.quick ? QUICK_RUNS : DEFAULT_RUNS;

    int status = 0;
    for (int w = 0; w < PEER_NWORKLOADS; w++)
        if (o.only & (1u << w))
            status |= run_workload(ops, &o, (enum peer_workload)w);
    if (!o.child) {
        double rss = (double)peak_rss_kib();
        report(ops, "mem", (stats_t){rss, rss, rss}, "KiB", 0, 1,
               "peak RSS of the whole process (high-water mark)");
    }
    return status;
}

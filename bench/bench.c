/*
 * bench.c - fut's benchmark program.
 *
 * W1 submit throughput: submit N tasks that return their index, each with a
 * real future, wait for every future, check the sum.  Reported as tasks per
 * second, the median of several timed runs after a warm-up, timed inside the
 * program with CLOCK_MONOTONIC.  A wrong sum is a failure, not a figure.
 *
 * Usage: fut_bench [--quick] [--threads N] [--runs R] [--n N]
 *   --quick    fewer tasks and runs (a smoke test of the harness)
 * Output: one line per figure, `RESULT system=fut workload=W1 value=...
 * unit=... n=... runs=... min=... max=... rss_kib=... note="..."`, the
 * format bench/compare.py reads from fut and from every peer.
 * Peers and the other workloads join this program in later work; the
 * harness (median of runs, verification, one line per figure) is shared.
 */
#include <fut.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct options {
    size_t n;
    size_t threads;
    int runs;
} options_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void *return_index(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

/* One W1 run: returns elapsed seconds, or a negative value on failure. */
static double w1_once(fut_executor_t *pool, fut_t **fs, size_t n)
{
    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        fs[i] = fut_submit(pool, return_index, (void *)(uintptr_t)i);
    unsigned long long sum = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        void *v;
        int rc = fut_get(fs[i], FUT_FOREVER, &v);
        if (rc != 0)
            bad = rc;
        else
            sum += (uintptr_t)v;
    }
    double t = now_s() - t0;
    for (size_t i = 0; i < n; i++)
        fut_release(fs[i]);
    unsigned long long want = (unsigned long long)n * (n - 1) / 2;
    if (bad || sum != want) {
        fprintf(stderr, "W1: verification failed (rc %d, sum %llu, want %llu)\n",
                bad, sum, want);
        return -1;
    }
    return t;
}

static int w1(const options_t *o)
{
    fut_executor_t *pool;
    int rc = fut_pool_new(&(fut_pool_config_t){.threads = o->threads}, &pool);
    if (rc) {
        fprintf(stderr, "fut_pool_new: %s\n", strerror(rc));
        return 1;
    }
    fut_t **fs = malloc(o->n * sizeof *fs);
    double *rates = malloc((size_t)o->runs * sizeof *rates);
    if (!fs || !rates) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    int status = 0;
    if (w1_once(pool, fs, o->n) < 0) /* warm-up */
        status = 1;
    for (int r = 0; r < o->runs && !status; r++) {
        double t = w1_once(pool, fs, o->n);
        if (t < 0)
            status = 1;
        else
            rates[r] = (double)o->n / t;
        fprintf(stderr, "\rW1 run %d/%d", r + 1, o->runs);
    }
    fprintf(stderr, "\n");
    if (!status) {
        double lo = rates[0], hi = rates[0];
        for (int r = 1; r < o->runs; r++) {
            lo = rates[r] < lo ? rates[r] : lo;
            hi = rates[r] > hi ? rates[r] : hi;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("RESULT system=fut workload=W1 value=%.0f unit=tasks/s n=%zu "
               "runs=%d min=%.0f max=%.0f rss_kib=%ld note=\"%zu workers\"\n",
               median(rates, o->runs), o->n, o->runs, lo, hi, ru.ru_maxrss,
               o->threads);
    }
    free(rates);
    free(fs);
    fut_executor_free(pool);
    return status;
}

int main(int argc, char **argv)
{
    options_t o = {.n = 1000000, .threads = 2, .runs = 5};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            o.n = 100000;
            o.runs = 3;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            o.threads = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            o.runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--n") && i + 1 < argc) {
            o.n = (size_t)strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr,
                    "usage: %s [--quick] [--threads N] [--runs R] [--n N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (o.runs < 1 || o.n < 1) {
        fprintf(stderr, "--runs and --n must be positive\n");
        return 2;
    }
    return w1(&o);
}

/*
 * harness.h - what every compiled peer program shares.
 *
 * A peer program measures one other system (a thread pool or a futures
 * library) on the same workloads as fut's own benchmark, so that
 * bench/compare.py can put them side by side.  The peer supplies a small
 * table of operations (peer_ops_t); the harness owns everything else: the
 * options, the timed loop (one warm-up, then R runs; median, min and max),
 * the verification of every result, and the RESULT lines of the output
 * protocol.  So the peers differ only in how they run tasks, never in how
 * they are measured.  The workload sizes belong to bench/workloads.json,
 * which every program reads: the harness through peer_workloads.h (made
 * from it by the build), compare.py and the Python and Node peers directly.
 *
 * The one primitive every peer provides is batch(): run fn(ctx, i) for each
 * i < n as n separate tasks of its pool and return once all have run.  The
 * workloads are built on it unless the peer offers a better native form
 * (its own futures for W1/W3/W6, continuations for W2, a loop that must stay
 * inside a parallel region for W6, a way to declare the blocking tasks of
 * W7's mixed load).  Java and Go peers (Peer.java, peer_go.go) and the
 * Python and Node ones follow the same protocol in their own code.
 *
 * Threads: the harness calls every operation from the main thread, one at a
 * time; only fn runs on the pool's threads.
 */
#ifndef PEER_HARNESS_H
#define PEER_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The workloads, in the order they run. */
enum peer_workload {
    PEER_W1, /* submit throughput */
    PEER_W2, /* continuation chain */
    PEER_W3, /* fan-in */
    PEER_W4, /* blocking-call wrapping (with its floor and efficiency) */
    PEER_W5, /* chunk sort (with its speedup) */
    PEER_W6, /* round-trip latency p50/p99 */
    PEER_W7, /* mixed load: tiny tasks among blocking ones */
    PEER_NWORKLOADS
};

/* Returned by start() when the system cannot change its thread count inside
 * this process any more (libuv fixes it on first use): the harness then runs
 * that workload in a fresh copy of the program. */
#define PEER_RESPAWN (-1)

typedef void (*peer_task_fn)(void *ctx, size_t i);

typedef struct peer_ops {
    const char *name;
    /* Create the pool with `threads` workers; 0, PEER_RESPAWN or an errno. */
    int (*start)(int threads);
    void (*stop)(void);
    /* Required: fn(ctx, i) for every i < n as n tasks; returns 0 once all
     * have run, or an errno (the workload then fails). */
    int (*batch)(size_t n, peer_task_fn fn, void *ctx);

    /* Optional native forms; NULL means "built on batch" (W1, W3, W6) or
     * "not available" (W2, whose line is then simply not printed). */
    int (*submit_sum)(size_t n, uint64_t *sum);    /* W1: tasks return i */
    int (*chain)(size_t n, uint64_t *tail);        /* W2: n continuations +1 */
    int (*fan_in)(size_t n, uint64_t *sum);        /* W3: combine n results */
    int (*round_trip)(uint64_t in, uint64_t *out); /* W6: one task returns in */
    /* W6 when the whole loop must run in one context (an OpenMP region):
     * n round trips, lat_us[k] the k-th one's latency (peer_now_ns). */
    int (*latency)(size_t n, double *lat_us);

    /* W7: as batch(), but blocking[i] != 0 marks task i as one that blocks
     * (it sleeps), so that a system with a mechanism for blocking calls
     * (fut's FUT_BLOCKING, a managed blocker, a blocking-call hint) uses it
     * for exactly those tasks.  NULL: W7 runs every task through batch(),
     * as a fixed pool must. */
    int (*batch_mixed)(size_t n, peer_task_fn fn, void *ctx,
                       const unsigned char *blocking);
    /* W7: how many blocking tasks can block at once on this system with the
     * pool started for W7 (its ideal wall time for the blocking tasks
     * follows from it); 0: the pool's thread count (a fixed pool). */
    size_t max_blocking;

    /* The sort routine of W5 (its serial baseline uses the same one);
     * NULL: the harness's introsort of ints. */
    void (*sort)(int *a, size_t n);
    /* Upper bounds on the task counts for systems too slow for the standard
     * sizes (0: standard); the harness adds "n reduced from N" to the note. */
    size_t max_n[PEER_NWORKLOADS];
    /* Free text for the note field of each workload's lines. */
    const char *note[PEER_NWORKLOADS];
} peer_ops_t;

/* Parses the options, runs the selected workloads and prints the RESULT
 * lines.  Returns the process exit status: 0, 1 on a failed verification or
 * a failed operation, 2 on bad usage. */
int peer_main(int argc, char **argv, const peer_ops_t *ops);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t peer_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif

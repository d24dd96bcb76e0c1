#!/usr/bin/env python3
"""peer_python.py - concurrent.futures (PEP 3148) as a peer of fut.

The same workloads, options and RESULT lines as the compiled peers
(harness.c), run by concurrent.futures.ThreadPoolExecutor:

  W1  submit() per task, then result() of each.
  W2  a chain of bare Future objects, each add_done_callback() setting the
      next one's result to its own + 1.  Callbacks run inside set_result(),
      so the chain recurses: N is reduced and the recursion limit raised.
  W3  submit() per task, concurrent.futures.wait(ALL_COMPLETED), then sum.
  W4  an executor of w4_threads workers (bench/workloads.json), time.sleep()
      of w4_sleep_ms per task (clock_nanosleep).
  W5  list.sort() of 64 slices as 64 tasks, heapq.merge() of the results;
      the serial baseline is list.sort() of the whole list.  At most
      1,000,000 ints (MAX_N).
  W6  submit() + result(), one at a time.
  W7  submit() per task on an executor of 2 workers; the blocking tasks
      time.sleep() (which releases the GIL), but the executor has no way to
      add a thread for them, so they hold its workers.  At most 20,000
      tiny tasks (MAX_N).

The GIL serialises the Python code of every task, so the sizes are smaller
than the standard ones and every line whose size differs says so.
"""
import argparse
import concurrent.futures as cf
import heapq
import itertools
import json
import math
import operator
import os
import resource
import sys
import threading
import time

SYSTEM = "python"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
NOT_RUN = ("W8", "W9")  # workloads of the benchmark this peer does not run
# The sizes and parameters of the workloads belong to bench/workloads.json,
# shared with the harness, compare.py and the Node peer.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "workloads.json")) as _f:
    SPEC = json.load(_f)
STANDARD_N = {w: SPEC["standard"][w] for w in WORKLOADS}
QUICK_N = {w: SPEC["quick"][w] for w in WORKLOADS}
# What the GIL lets this peer run in reasonable time: a size above its cap
# runs at the cap, and the line says "n reduced from N" (as max_n does for
# the compiled peers).
MAX_N = {"W1": 100_000, "W2": 100_000, "W5": 1_000_000, "W7": 20_000}
W4_THREADS = SPEC["w4_threads"]
W4_SLEEP_S = SPEC["w4_sleep_ms"] / 1000
W5_CHUNKS = SPEC["w5_chunks"]


class VerificationError(Exception):
    pass


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def size_of(workload, quick):
    """The size this peer runs: the shared one, capped by MAX_N (a tenth of
    it with --quick, as the shared quick sizes are a tenth of the standard
    ones: at the full cap this peer alone took over half of compare.py
    --quick)."""
    n = (QUICK_N if quick else STANDARD_N)[workload]
    if workload not in MAX_N:
        return n
    return min(n, MAX_N[workload] // 10 if quick else MAX_N[workload])


def note_for(workload, n, quick, extra=""):
    parts = []
    shared = (QUICK_N if quick else STANDARD_N)[workload]
    if n != shared:
        parts.append(f"n reduced from {shared}")
    if extra:
        parts.append(extra)
    return "; ".join(parts)


def report(workload, values, unit, n, note=""):
    values = sorted(values)
    k = len(values)
    med = values[k // 2] if k % 2 else (values[k // 2 - 1] + values[k // 2]) / 2
    print(f"RESULT system={SYSTEM} workload={workload} value={med:.6g} "
          f"unit={unit} n={n} runs={k} min={values[0]:.6g} "
          f"max={values[-1]:.6g} rss_kib={peak_rss_kib()} note=\"{note}\"",
          flush=True)


def timed_runs(label, runs, once):
    """One warm-up, then `runs` timed runs; returns the list of figures."""
    figures = []
    for r in range(-1, runs):
        what = "warm-up 1/1" if r < 0 else f"run {r + 1}/{runs}"
        print(f"\r{SYSTEM} {label} {what} ", end="", file=sys.stderr,
              flush=True)
        f = once()
        if r >= 0:
            figures.append(f)
    print(file=sys.stderr)
    return figures


def identity(i):
    return i


def w1(ex, n):
    want = n * (n - 1) // 2

    def once():
        t0 = time.monotonic_ns()
        fs = [ex.submit(identity, i) for i in range(n)]
        total = sum(f.result() for f in fs)
        t = time.monotonic_ns() - t0
        if total != want:
            raise VerificationError(f"W1: sum {total}, want {want}")
        return n / (t * 1e-9)
    return once


def w3(ex, n):
    want = n * (n - 1) // 2

    def once():
        t0 = time.monotonic_ns()
        fs = [ex.submit(identity, i) for i in range(n)]
        done, not_done = cf.wait(fs, return_when=cf.ALL_COMPLETED)
        total = sum(f.result() for f in done)
        t = time.monotonic_ns() - t0
        if not_done or total != want:
            raise VerificationError(f"W3: sum {total}, want {want}")
        return n / (t * 1e-9)
    return once


def w2(n):
    def link(nxt):
        return lambda f: nxt.set_result(f.result() + 1)

    def once():
        t0 = time.monotonic_ns()
        futures = [cf.Future() for _ in range(n + 1)]
        for k in range(n):
            futures[k].add_done_callback(link(futures[k + 1]))
        futures[0].set_result(0)
        try:
            tail = futures[n].result(timeout=60)
        except cf.TimeoutError:
            raise VerificationError("W2: the tail never settled (a callback "
                                    "failed; see the log above)") from None
        t = time.monotonic_ns() - t0
        if tail != n:
            raise VerificationError(f"W2: tail {tail}, want {n}")
        return n / (t * 1e-9)
    return once


def w4(ex, n):
    ran = [0] * n

    def sleeper(i):
        time.sleep(W4_SLEEP_S)
        ran[i] = 1

    rounds = -(-n // W4_THREADS)

    def once():
        ran[:] = [0] * n
        t0 = time.monotonic_ns()
        for f in [ex.submit(sleeper, i) for i in range(n)]:
            f.result()
        t = time.monotonic_ns() - t0
        if sum(ran) != n:
            raise VerificationError(f"W4: {sum(ran)} of {n} tasks ran")
        f0 = time.monotonic_ns()
        for _ in range(rounds):
            time.sleep(W4_SLEEP_S)
        return t / 1e6, (time.monotonic_ns() - f0) / 1e6
    return once, rounds * W4_SLEEP_S * 1e3, rounds


def generate(n):
    """xorshift64 (13, 7, 17) from seed 42, value = x >> 33, as harness.c."""
    mask = (1 << 64) - 1
    x = 42
    out = [0] * n
    for i in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out[i] = x >> 33
    return out


def check_sorted(a, checksum, what):
    if not all(map(operator.le, a, itertools.islice(a, 1, None))):
        raise VerificationError(f"W5: {what} output unsorted")
    if sum(a) != checksum:
        raise VerificationError(f"W5: {what} output checksum differs")


def w5(ex, n):
    data = generate(n)
    checksum = sum(data)
    bounds = [n * c // W5_CHUNKS for c in range(W5_CHUNKS + 1)]

    def sort_chunk(c):
        chunk = data[bounds[c]:bounds[c + 1]]
        chunk.sort()
        return chunk

    def once():
        work = list(data)
        t0 = time.monotonic_ns()
        work.sort()
        serial = time.monotonic_ns() - t0
        check_sorted(work, checksum, "serial")
        t0 = time.monotonic_ns()
        chunks = [f.result() for f in
                  [ex.submit(sort_chunk, c) for c in range(W5_CHUNKS)]]
        out = list(heapq.merge(*chunks))
        parallel = time.monotonic_ns() - t0
        if len(out) != n:
            raise VerificationError(f"W5: {len(out)} values, want {n}")
        check_sorted(out, checksum, "chunk-sorted and merged")
        return parallel / 1e6, serial / parallel
    return once


def w6(ex, n):
    lat = [0.0] * n

    def once():
        for k in range(n):
            t0 = time.monotonic_ns()
            got = ex.submit(identity, k + 1).result()
            lat[k] = (time.monotonic_ns() - t0) / 1e3
            if got != k + 1:
                raise VerificationError(f"W6: round trip returned {got}")
        s = sorted(lat)
        return s[n // 2], s[math.ceil(0.99 * n) - 1]
    return once


def tiny_value(i):
    x = (i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    return (x ^ (x >> 29)) | 1


def w7(ex, n, blocking):
    """The harness's mixed load: returns once() -> (tiny alone ms, tiny in
    the mixed batch ms, blocking wall ms)."""
    total = n + blocking
    stride = total // blocking
    marks = [False] * total
    for k in range(blocking):
        marks[k * stride] = True
    sleep_s = SPEC["w7_sleep_ms"] / 1000
    lock = threading.Lock()

    def batch(m, mixed):
        slots = [0] * m
        state = {"tiny": n, "block": blocking if mixed else 0,
                 "tiny_done": 0, "block_done": 0}
        t0 = time.monotonic_ns()

        def tiny(i):
            slots[i] = tiny_value(i)
            with lock:
                state["tiny"] -= 1
                if state["tiny"] == 0:
                    state["tiny_done"] = time.monotonic_ns() - t0

        def block(i):
            time.sleep(sleep_s)
            slots[i] = 1
            with lock:
                state["block"] -= 1
                if state["block"] == 0:
                    state["block_done"] = time.monotonic_ns() - t0

        fs = [ex.submit(block if mixed and marks[i] else tiny, i)
              for i in range(m)]
        cf.wait(fs)
        for f in fs:
            f.result()
        bad = sum(slots[i] != (1 if mixed and marks[i] else tiny_value(i))
                  for i in range(m))
        if bad or state["tiny"] or state["block"]:
            raise VerificationError(f"W7: {bad} of {m} tasks missing or wrong")
        return state["tiny_done"] / 1e6, state["block_done"] / 1e6

    def once():
        alone, _ = batch(n, False)
        tiny, block = batch(total, True)
        return alone, tiny, block
    return once


def run(workload, args):
    n = size_of(workload, args.quick)
    threads = W4_THREADS if workload == "W4" else args.threads
    if workload == "W2":
        # Each link is three Python frames deep in the one before.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * n + 1000))
        figures = timed_runs(workload, args.runs, w2(n))
        report("W2", figures, "cont/s", n, note_for(
            "W2", n, args.quick, "bare Futures chained by add_done_callback;"
            " callbacks recurse inside set_result()"))
        return
    with cf.ThreadPoolExecutor(max_workers=threads) as ex:
        if workload == "W1":
            report("W1", timed_runs("W1", args.runs, w1(ex, n)), "tasks/s",
                   n, note_for("W1", n, args.quick))
        elif workload == "W3":
            report("W3", timed_runs("W3", args.runs, w3(ex, n)), "inputs/s",
                   n, note_for("W3", n, args.quick, "concurrent.futures.wait"))
        elif workload == "W4":
            once, ideal, rounds = w4(ex, n)
            figures = timed_runs("W4", args.runs, once)
            ms = [f[0] for f in figures]
            report("W4", ms, "ms", n, f"time.sleep({W4_SLEEP_S:g})")
            report("W4eff", [ideal / m for m in ms], "x", n,
                   "ideal wall time / measured")
            report("W4floor", [f[1] for f in figures], "ms", rounds,
                   f"one thread, the {SPEC['w4_sleep_ms']} ms sleeps back to"
                   " back")
        elif workload == "W5":
            figures = timed_runs("W5", args.runs, w5(ex, n))
            report("W5", [f[0] for f in figures], "ms", n,
                   note_for("W5", n, args.quick, "list.sort + heapq.merge"))
            report("W5speedup", [f[1] for f in figures], "x", n,
                   "serial sort of the whole list / chunk sort + merge")
        elif workload == "W6":
            figures = timed_runs("W6", args.runs, w6(ex, n))
            report("W6p50", [f[0] for f in figures], "us", n)
            report("W6p99", [f[1] for f in figures], "us", n)
        elif workload == "W7":
            blocking = SPEC["w7_blocking_quick" if args.quick
                            else "w7_blocking"]
            figures = timed_runs("W7", args.runs, w7(ex, n, blocking))
            conc = min(threads, blocking)
            ideal = -(-blocking // conc) * SPEC["w7_sleep_ms"]
            report("W7", [f[1] / f[0] for f in figures], "x", n,
                   note_for("W7", n, args.quick,
                            f"ThreadPoolExecutor of {threads}: no hint for "
                            "blocking calls; the sleeps hold its workers"))
            report("W7tiny", [f[1] for f in figures], "ms", n,
                   "until the last tiny task of the mixed batch finished")
            report("W7alone", [f[0] for f in figures], "ms", n,
                   "the tiny tasks alone on the same pool")
            text = (f"until the last of {blocking} blocking tasks finished;"
                    f" ideal {ideal} ms ({conc} blocking at once)")
            report("W7block", [f[2] for f in figures], "ms", blocking, text)
            report("W7ideal", [float(ideal)] * len(figures), "ms", blocking,
                   text)
            report("W7blockeff", [ideal / f[2] for f in figures], "x",
                   blocking, "ideal wall time of the blocking tasks / "
                   "measured")


def parse_only(text):
    chosen = set()
    for name in text.split(","):
        if name == "mem":
            continue
        # W7 (the mixed load) is accepted and not run: no line, n/a.
        match = [w for w in WORKLOADS + NOT_RUN if name.startswith(w)]
        if not match:
            raise argparse.ArgumentTypeError(f"unknown workload {name!r}")
        chosen.add(match[0])
    return chosen


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smaller sizes and 3 runs (a smoke test)")
    p.add_argument("--only", type=parse_only, default=set(WORKLOADS),
                   help="comma-separated workloads (default: all)")
    p.add_argument("--runs", type=int, help="timed runs after one warm-up")
    p.add_argument("--threads", type=int, default=2,
                   help="executor workers for every workload but W4 (16)")
    args = p.parse_args()
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.runs < 1 or args.threads < 1:
        p.error("--runs and --threads must be positive")
    status = 0
    for workload in WORKLOADS:
        if workload in args.only:
            try:
                run(workload, args)
            except VerificationError as e:
                print(f"\n{SYSTEM} verification failed: {e}", file=sys.stderr)
                status = 1
    rss = peak_rss_kib()
    report("mem", [rss], "KiB", 0,
           "peak RSS of the whole process (high-water mark)")
    return status


if __name__ == "__main__":
    sys.exit(main())

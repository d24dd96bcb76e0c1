#!/usr/bin/env python3
"""compare.py - run fut's benchmark and its peers, and put them side by side.

Usage:
  python3 bench/compare.py --build-dir DIR [--quick] [--only W1,...]
                           [--procs P] [--systems a,b] [--runs R] [--no-sweep]

Runs DIR/bench/fut_bench and every peer the build found (listed in
DIR/bench/peers/peers.tsv, written by bench/peers/CMakeLists.txt), each in P
separate processes (default 3; 1 with --quick), one program at a time and
round-robin so that slow drift of the machine spreads over all systems.
Every program prints RESULT lines (see bench/peers/harness.h); each line is
already the median of R timed runs inside that process.  This script takes
the median over processes and the range across them, prints one table of
workloads x systems, and writes DIR/bench/results.csv and results.json.
With gnuplot it also draws results.png/.svg (throughputs relative to fut),
results_threads.png/.svg (W1 against 1, 2, 4, 8 workers, from runs with
--threads N) and results_w7.png/.svg (W7, the mixed load: per system the
tiny tasks' slowdown and the blocking tasks' wall time over one sleep).

A program that fails (a failed verification exits non-zero) is reported with
the tail of its stderr, its figures from that process are dropped, and this
script exits 1 at the end.  Standard library only.
"""
import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROWS = [  # (workload, label)
    ("W1", "W1 submit"),
    ("W2", "W2 chain"),
    ("W3", "W3 fan-in"),
    ("W4", "W4 {w4_threads}x{w4_sleep_ms}ms"),
    ("W4eff", "W4 efficiency"),
    ("W4floor", "W4 floor"),
    ("W5", "W5 sort"),
    ("W5speedup", "W5 speedup"),
    ("W6p50", "W6 p50"),
    ("W6p99", "W6 p99"),
    ("W6floor", "W6 floor"),
    ("W6floor99", "W6 floor p99"),
    ("W7", "W7 tiny slowdown"),
    ("W7tiny", "W7 tiny, mixed"),
    ("W7alone", "W7 tiny alone"),
    ("W7block", "W7 blocking wall"),
    ("W7ideal", "W7 blocking ideal"),
    ("W7blockeff", "W7 blocking eff."),
    ("W7spawned", "W7 extra threads"),
    ("W8", "W8 fibers"),
    ("W8switch", "W8 switches"),
    ("W8rss", "W8 KiB/fiber"),
    ("W9", "W9 group cost"),
    ("W9group", "W9 group"),
    ("W9when_all", "W9 when_all"),
    ("W1rss", "W1 peak RSS"),
    ("mem", "peak RSS"),
    ("mem_future", "B/pending fut"),
    ("mallocs_per_task", "mallocs/task"),
]
WORKLOADS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7"]
HIGHER_IS_BETTER = {"tasks/s", "cont/s", "inputs/s", "x", "fibers/s",
                    "switches/s"}
# Figures in "x" where lower is better: W7's slowdown of the tiny tasks,
# W9's cost of a group over fut_when_all.
LOWER_IS_BETTER = {"W7", "W9"}
# W4 floor: the same sleeps for everyone, a reference, no contest.  W7's
# ideal and efficiency depend on how many blocking tasks each system can
# block at once, so they are not compared across systems (W7block is).
NO_RATIO = {"W4floor", "W6floor", "W6floor99", "W7ideal",
            "W7blockeff"}
# W7 figures whose n is the number of blocking tasks, not the tiny tasks'.
W7_BLOCKING_ROWS = {"W7block", "W7ideal", "W7blockeff"}
# fut's own figures: memory counted through its allocator, and W9 (a task
# group against fut_when_all, the same tasks): no peer has one.
FUT_ONLY = {"mem_future", "mallocs_per_task", "W7spawned", "W9",
            "W9group", "W9when_all"}
THROUGHPUTS = ["W1", "W2", "W3"]
SWEEP_THREADS = [1, 2, 4, 8]
DEFAULT_THREADS = 2
# Systems that ignore --threads (a thread per task): the sweep would run
# the same program three more times for the same figure.
NO_SWEEP = {"stdasync"}
# The sizes every system should use, from bench/workloads.json (which the
# harness and the Python and Node peers read too); a cell whose n differs
# is marked with '*'.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "workloads.json")) as _f:
    WORKLOAD_SPEC = json.load(_f)
STANDARD_N = {w: WORKLOAD_SPEC["standard"][w] for w in WORKLOADS}
QUICK_N = {w: WORKLOAD_SPEC["quick"][w] for w in WORKLOADS}
STANDARD_N["W7blocking"] = WORKLOAD_SPEC["w7_blocking"]
QUICK_N["W7blocking"] = WORKLOAD_SPEC["w7_blocking_quick"]
ROWS = [(w, label.format(**WORKLOAD_SPEC)) for w, label in ROWS]
TIMEOUT_S = 1800

LINE_RE = re.compile(r'(\w+)=("[^"]*"|\S+)')


def parse_results(stdout):
    """The RESULT lines of one process, as dicts with typed fields."""
    out = []
    for line in stdout.splitlines():
        if not line.startswith("RESULT "):
            continue
        f = {k: v.strip('"') for k, v in LINE_RE.findall(line)}
        try:
            for k in ("value", "min", "max"):
                f[k] = float(f[k])
            f["n"] = int(f.get("n", 0))
            f["runs"] = int(f.get("runs", 0))
            f["rss_kib"] = int(float(f.get("rss_kib", -1)))
        except (KeyError, ValueError):
            print(f"\nunparsable line: {line}", file=sys.stderr)
            continue
        out.append(f)
    return out


class Progress:
    def __init__(self, total):
        self.total, self.done, self.t0 = total, 0, time.monotonic()

    def show(self, what):
        el = int(time.monotonic() - self.t0)
        print(f"\r\033[K[{self.done + 1}/{self.total}] "
              f"{el // 60}:{el % 60:02d} {what}", end="", file=sys.stderr,
              flush=True)

    def step(self):
        self.done += 1

    def end(self):
        print(file=sys.stderr)


def run_program(name, cmd, args, only, progress, what):
    """Runs one process; returns (ok, results).  A program that rejects
    --only (exit 2, usage) is run again without it and its lines filtered."""
    progress.show(what)
    full = cmd + args + (["--only", ",".join(only)] if only else [])
    try:
        p = subprocess.run(full, capture_output=True, text=True,
                           timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"\n{name}: timed out after {TIMEOUT_S} s", file=sys.stderr)
        return False, []
    except OSError as e:
        print(f"\n{name}: cannot run {cmd[0]}: {e}", file=sys.stderr)
        return False, []
    if p.returncode == 2 and only and "usage" in p.stderr:
        print(f"\n{name}: does not take --only; running all its workloads",
              file=sys.stderr)
        return run_program(name, cmd, args, None, progress, what)
    if p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-8:])
        print(f"\n{name}: FAILED (exit {p.returncode}): {' '.join(full)}\n"
              f"{tail}", file=sys.stderr)
        return False, []
    results = parse_results(p.stdout)
    if only:
        results = [r for r in results
                   if r["workload"] == "mem" or r["workload"][:2] in only]
    return True, results


def find_programs(build_dir, systems):
    progs = []
    fut = os.path.join(build_dir, "bench", "fut_bench")
    if os.access(fut, os.X_OK):
        progs.append(("fut", [fut]))
    else:
        print(f"warning: {fut} not found: the fut column will be n/a",
              file=sys.stderr)
    manifest = os.path.join(build_dir, "bench", "peers", "peers.tsv")
    if os.path.exists(manifest):
        with open(manifest) as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 2:
                    progs.append((fields[0], fields[1:]))
    else:
        print(f"warning: {manifest} not found: no peers (configure the "
              "build with bench/peers)", file=sys.stderr)
    if systems:
        unknown = systems - {name for name, _ in progs}
        if unknown:
            print(f"warning: not built, skipped: {', '.join(sorted(unknown))}",
                  file=sys.stderr)
        progs = [(n, c) for n, c in progs if n == "fut" or n in systems]
    return progs


def aggregate(per_process):
    """per_process: list of result lists (one per successful process) ->
    {workload: figure} with the median over processes and the ranges."""
    by_workload = {}
    for results in per_process:
        for r in results:
            by_workload.setdefault(r["workload"], []).append(r)
            if r["workload"] == "W1":
                # W1 runs first in every program, so the high-water mark
                # right after it is W1's own peak RSS.
                by_workload.setdefault("W1rss", []).append(
                    {**r, "workload": "W1rss", "value": r["rss_kib"],
                     "unit": "KiB", "min": r["rss_kib"],
                     "max": r["rss_kib"], "note": "after W1"})
    agg = {}
    for w, rs in by_workload.items():
        values = [r["value"] for r in rs]
        agg[w] = {
            "value": statistics.median(values),
            "unit": rs[0]["unit"],
            "n": rs[0]["n"],
            "runs": rs[0]["runs"],
            "procs": len(rs),
            "proc_min": min(values),
            "proc_max": max(values),
            "run_min": min(r["min"] for r in rs),
            "run_max": max(r["max"] for r in rs),
            "rss_kib": int(statistics.median(r["rss_kib"] for r in rs)),
            "note": rs[0].get("note", ""),
        }
    return agg


def advantage(workload, fig, ref):
    """fut's advantage over a peer, > 1 when fut is better; None if n/a."""
    if workload in NO_RATIO or not fig or not ref or fig is ref:
        return None
    if fig["value"] <= 0 or ref["value"] <= 0:
        return None
    if higher_is_better(workload, fig["unit"]):
        return ref["value"] / fig["value"]
    return fig["value"] / ref["value"]


def higher_is_better(workload, unit):
    return unit in HIGHER_IS_BETTER and workload not in LOWER_IS_BETTER


def fmt_value(v, unit):
    if unit == "KiB":
        return f"{v / 1024:.1f}"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def row_unit(workload, table):
    for figs in table.values():
        if workload in figs:
            return "MiB" if figs[workload]["unit"] == "KiB" else \
                figs[workload]["unit"]
    return ""


def differs(workload, fig, sizes):
    """Whether a figure was measured at another size than the standard."""
    base = workload[:2]
    if workload == "W7spawned":
        return False  # a count of threads, no size
    if workload in W7_BLOCKING_ROWS:
        return fig["n"] != sizes["W7blocking"]
    return (workload != "W4floor" and base in sizes
            and fig["n"] != sizes[base])


def print_table(table, systems, sizes, procs):
    header = ["workload", "unit"] + systems
    lines = []
    for w, label in ROWS:
        if not any(w in table.get(s, {}) for s in systems):
            continue  # not run (--only): no row
        ref = table.get("fut", {}).get(w)
        row = [label, row_unit(w, table)]
        for s in systems:
            fig = table.get(s, {}).get(w)
            if not fig:
                row.append("n/a")
                continue
            cell = fmt_value(fig["value"], fig["unit"])
            if differs(w, fig, sizes):
                cell += "*"
            if procs > 1 and fig["value"] > 0:
                half = (fig["proc_max"] - fig["proc_min"]) / 2 / fig["value"]
                cell += f" ±{half * 100:.0f}%"
            r = advantage(w, fig, ref)
            if r is not None:
                cell += f" ({r:.2f})"
            row.append(cell)
        lines.append(row)
    widths = [max(len(r[i]) for r in [header] + lines)
              for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(widths[i]) if i < 2 else
                              c.rjust(widths[i]) for i, c in enumerate(r))
    print(fmt(header))
    print("  ".join("-" * w for w in widths))
    for r in lines:
        print(fmt(r))
    print(f"""
Each cell: the median over {procs} process(es) of each process's median of its
timed runs (after one warm-up).  ±: half the range of the per-process medians,
relative to the median.  (r): fut's advantage, r > 1 means fut is better in
EVERY row: r = fut/peer where higher is better (tasks/s, cont/s, inputs/s,
efficiency, speedup), r = peer/fut where lower is better (ms, us, memory).
W4 floor is one thread doing the {WORKLOAD_SPEC["w4_sleep_ms"]} ms sleeps back to back (no ratio).
W6 floor is the p50 of a bare round trip between two threads (one cache line
handed to a spinning thread and back, timed like W6; no ratio): a W6 p50
below it means the waiting thread ran the task itself; W6 floor p99 is the
same round trips' p99, the tail this machine adds to any hand-off.
*: a different size n than the standard (see the notes).  n/a: the system
has no such figure (no continuations, no futures pool, or not built).
W7 (mixed load, {sizes["W7blocking"]} tasks sleeping {WORKLOAD_SPEC["w7_sleep_ms"]} ms among the tiny ones, on the default
pool; max. {WORKLOAD_SPEC["w7_extra_threads"]} extra threads where a system can add them): tiny slowdown = time until the last tiny task finished / the same
tiny tasks alone on the same pool (lower is better, 1 is no slowdown; fut's
target is 1.2 at most); W7 wall = until the last blocking task finished,
W7 blocking ideal = ceil({sizes["W7blocking"]} / tasks that can block at once) x {WORKLOAD_SPEC["w7_sleep_ms"]} ms for that
system (its notes say how many and why), eff. = ideal / wall, no ratio.
The last blocking task is submitted after ~98% of the tiny ones, so a
system that takes tasks in order cannot finish it before the tiny tasks'
time plus one sleep.
W8 (fibers: fut, Boost.Fiber, Go): W8 fibers = n / (time from starting
the first of n fibers that each await their own promise until the last
is about to await + time from resolving them all to all finished); W8 switches = 2 x round trips / time of a ping-pong of
two fibers; W8 KiB/fiber = resident memory per suspended fiber (the
warm-up run, after giving back the memory earlier runs left; the timed
runs reuse it, as each system's allocator would).
W9 (fut only): the same tasks started through a task group (FUT_GROUP_ALL,
fut_group_spawn) and through fut_when_all, in alternating pairs in one process; group cost =
group time / when_all time (lower is better; fut's target is 1.2 at most).
Peak RSS is a high-water mark (getrusage ru_maxrss): a process's peak over
all the workloads it ran, not the memory of one workload; the rss_kib
column of results.csv is the mark right after each workload.""")


def print_notes(table, systems, sizes):
    print("\nnotes:")
    for s in systems:
        seen = {}
        for w, _ in ROWS:
            fig = table.get(s, {}).get(w)
            if not fig or w in ("W4eff", "W4floor", "W6floor", "W6floor99",
                                "W5speedup",
                                "mem",
                                "W7tiny", "W7alone", "W7ideal",
                                "W7blockeff"):
                continue
            text = fig["note"]
            if differs(w, fig, sizes) and "reduced" not in text:
                text = f"n={fig['n']}" + (f"; {text}" if text else "")
            if text and text not in seen.values():
                seen[w] = text
        for w, text in seen.items():
            print(f"  {s:<12} {w:<6} {text}")


def write_files(out_dir, table, systems, sweep, failures, meta):
    rows = []
    for w, _ in ROWS:
        ref = table.get("fut", {}).get(w)
        for s in systems:
            fig = table.get(s, {}).get(w)
            if not fig:
                continue
            r = advantage(w, fig, ref)
            rows.append({
                "system": s, "workload": w, **fig,
                "better": "higher" if higher_is_better(w, fig["unit"])
                else "lower",
                "fut_advantage": round(r, 4) if r is not None else "",
            })
    cols = ["system", "workload", "value", "unit", "n", "runs", "procs",
            "proc_min", "proc_max", "run_min", "run_max", "rss_kib",
            "better", "fut_advantage", "note"]
    with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=cols)
        wr.writeheader()
        wr.writerows(rows)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({**meta, "results": rows, "threads_sweep": sweep,
                   "failures": failures}, f, indent=2)


GNUPLOT_BARS = """\
set datafile missing '?'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set key outside right top
set title "Throughput relative to fut (fut = 1; higher is better; log scale)"
set ylabel "throughput / fut's throughput"
plot for [i=2:{ncols}] '{data}' using i:xtic(1) title columnheader(i) \
     linecolor rgb word(colours, i - 1)
"""

GNUPLOT_SWEEP = """\
set datafile missing '?'
set logscale x 2
set logscale y
set xrange [0.8:10]
set xtics (1, 2, 4, 8)
set grid
set key outside right top
set title "W1 submit throughput against pool workers"
set xlabel "workers (--threads)"
set ylabel "tasks/s"
plot for [i=2:{ncols}] '{data}' using 1:i with linespoints linewidth 2 \
     linecolor rgb word(colours, i - 1) title columnheader(i)
"""

GNUPLOT_W7 = """\
set datafile missing '?'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set key below
set yrange [0.5:*]
set xtics rotate by -30
set title "W7: {blocking} x {sleep} ms blocking among {tiny} tiny tasks, 2 workers (lower is better)"
set ylabel "ratio (log scale)"
plot for [i=2:{ncols}] '{data}' using i:xtic(1) title columnheader(i) \
     linecolor rgb word(colours, i - 1)
"""

# One colour per system, in the order of the table's columns: as many as
# there are systems (with 12, Java and Go were drawn in fut's black and
# the textbook pool's red).
COLOURS = ["#000000", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00",
           "#a65628", "#f781bf", "#999999", "#66c2a5", "#ffd92f", "#8da0cb",
           "#17becf", "#bcbd22"]


def gnuplot(gp, out_dir, stem, script, columns, data_rows, colours):
    """Writes stem.dat and draws stem.png and stem.svg."""
    data = os.path.join(out_dir, stem + ".dat")
    with open(data, "w") as f:
        f.write(" ".join(f'"{c}"' for c in columns) + "\n")
        for row in data_rows:
            f.write(" ".join(row) + "\n")
    body = f"colours = \"{' '.join(colours)}\"\n" + script.format(
        ncols=len(columns), data=data)
    for term, ext in (("pngcairo size 1100,550 noenhanced", "png"),
                      ("svg size 1100,550 noenhanced", "svg")):
        out = os.path.join(out_dir, f"{stem}.{ext}")
        with tempfile.NamedTemporaryFile("w", suffix=".gp",
                                         delete=False) as f:
            f.write(f"set terminal {term}\nset output '{out}'\n{body}")
        p = subprocess.run([gp, f.name], capture_output=True, text=True)
        os.unlink(f.name)
        if p.returncode != 0:
            print(f"gnuplot failed for {out}:\n{p.stderr}", file=sys.stderr)
        else:
            print(f"wrote {out}", file=sys.stderr)


def colours_of(shown, systems):
    return [COLOURS[systems.index(s) % len(COLOURS)] for s in shown]


def plot_bars(gp, out_dir, table, systems):
    fut = table.get("fut", {})
    rows_w = [w for w in THROUGHPUTS if w in fut]
    shown = [s for s in systems if any(w in table.get(s, {}) for w in rows_w)]
    if not rows_w or len(shown) < 2:
        print("no throughput figures of fut and a peer to plot",
              file=sys.stderr)
        return
    data_rows = []
    for w in rows_w:
        row = [w]
        for s in shown:
            fig = table.get(s, {}).get(w)
            row.append(f"{fig['value'] / fut[w]['value']:.6g}" if fig
                       else "?")
        data_rows.append(row)
    gnuplot(gp, out_dir, "results", GNUPLOT_BARS, ["workload"] + shown,
            data_rows, colours_of(shown, systems))


def plot_w7(gp, out_dir, table, systems):
    """Per system: the tiny tasks' slowdown and the blocking tasks' wall
    time over one sleep (the ideal when all can block at once)."""
    shown = [s for s in systems if "W7" in table.get(s, {})]
    if not shown:
        return
    sleep = WORKLOAD_SPEC["w7_sleep_ms"]
    data_rows = []
    for s in shown:
        figs = table[s]
        block = figs.get("W7block")
        data_rows.append([f'"{s}"', f"{figs['W7']['value']:.6g}",
                          f"{block['value'] / sleep:.6g}" if block else "?"])
    tiny = table[shown[0]]["W7"]["n"]
    nblock = next((table[s]["W7block"]["n"] for s in shown
                   if "W7block" in table[s]), WORKLOAD_SPEC["w7_blocking"])
    script = GNUPLOT_W7.replace("{blocking}", str(nblock)) \
        .replace("{sleep}", str(sleep)).replace("{tiny}", f"{tiny:,}")
    gnuplot(gp, out_dir, "results_w7", script,
            ["system", "tiny tasks: mixed / alone",
             f"blocking tasks: wall / {sleep} ms"],
            data_rows, ["#377eb8", "#e41a1c"])


def plot_sweep(gp, out_dir, sweep, systems):
    shown = [s for s in systems if any(r["system"] == s for r in sweep)]
    if not shown:
        return
    val = {(r["system"], r["threads"]): r["value"] for r in sweep}
    data_rows = [[str(t)] + [f"{val[(s, t)]:.6g}" if (s, t) in val else "?"
                             for s in shown] for t in SWEEP_THREADS]
    gnuplot(gp, out_dir, "results_threads", GNUPLOT_SWEEP,
            ["workers"] + shown, data_rows, colours_of(shown, systems))


def main():
    ap = argparse.ArgumentParser(
        description="Run fut_bench and the peer programs; compare them.")
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--quick", action="store_true",
                    help="pass --quick (smaller sizes, 3 runs), 1 process")
    ap.add_argument("--only", help="workloads, e.g. W1,W3 (default: all)")
    ap.add_argument("--procs", type=int,
                    help="processes per program (default 3, 1 with --quick)")
    ap.add_argument("--systems", help="peers to run, e.g. tbb,boost "
                    "(default: all built; fut always runs)")
    ap.add_argument("--runs", type=int, help="pass --runs R to every program")
    ap.add_argument("--no-sweep", action="store_true",
                    help="skip the W1 runs at 1, 4 and 8 workers")
    a = ap.parse_args()

    only = None
    if a.only:
        only = sorted({w[:2] for w in a.only.split(",") if w != "mem"})
        bad = [w for w in only if w not in WORKLOADS + ["W8", "W9"]]
        if bad:
            ap.error(f"unknown workloads: {', '.join(bad)}")
    procs = a.procs or (1 if a.quick else 3)
    if procs < 1:
        ap.error("--procs must be positive")
    systems_filter = set(a.systems.split(",")) if a.systems else None
    progs = find_programs(a.build_dir, systems_filter)
    if not progs:
        print("nothing to run", file=sys.stderr)
        return 1
    common = (["--quick"] if a.quick else []) + \
        (["--runs", str(a.runs)] if a.runs else [])
    sweep_threads = [t for t in SWEEP_THREADS if t != DEFAULT_THREADS]
    do_sweep = not a.no_sweep and (only is None or "W1" in only)

    per_system = {name: [] for name, _ in progs}
    failures = []
    total = procs * len(progs) + (len(progs) * len(sweep_threads)
                                  if do_sweep else 0)
    progress = Progress(total)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    for p in range(procs):
        for name, cmd in progs:
            ok, results = run_program(name, cmd, common, only, progress,
                                      f"{name} (process {p + 1}/{procs})")
            progress.step()
            if ok:
                per_system[name].append(results)
            else:
                failures.append({"system": name, "run": f"process {p + 1}"})
    table = {name: aggregate(rs) for name, rs in per_system.items()}

    # W1 against the pool size: the default size comes from the runs above.
    sweep = []
    if do_sweep:
        for name, figs in table.items():
            if "W1" in figs and name not in NO_SWEEP:
                sweep.append({"system": name, "threads": DEFAULT_THREADS,
                              "value": figs["W1"]["value"],
                              "n": figs["W1"]["n"]})
        for t in sweep_threads:
            for name, cmd in progs:
                if "W1" not in table[name] or name in NO_SWEEP:
                    progress.step()
                    continue
                ok, results = run_program(
                    name, cmd, common + ["--threads", str(t)], ["W1"],
                    progress, f"{name} W1 with {t} workers")
                progress.step()
                if not ok:
                    failures.append({"system": name,
                                     "run": f"W1 with {t} workers"})
                for r in results:
                    if r["workload"] == "W1":
                        sweep.append({"system": name, "threads": t,
                                      "value": r["value"], "n": r["n"]})
    progress.end()

    systems = [name for name, _ in progs]
    sizes = QUICK_N if a.quick else STANDARD_N
    print()
    print_table(table, systems, sizes, procs)
    print_notes(table, systems, sizes)
    if failures:
        print("\nFAILED: " + ", ".join(f"{f['system']} ({f['run']})"
                                       for f in failures))

    out_dir = os.path.join(a.build_dir, "bench")
    meta = {"started": started, "quick": a.quick, "procs": procs,
            "only": only, "command_args": sys.argv[1:],
            "nproc": os.cpu_count()}
    write_files(out_dir, table, systems, sweep, failures, meta)
    print(f"\nwrote {out_dir}/results.csv and results.json", file=sys.stderr)
    gp = shutil.which("gnuplot")
    if gp:
        plot_bars(gp, out_dir, table, systems)
        plot_w7(gp, out_dir, table, systems)
        if sweep:
            plot_sweep(gp, out_dir, sweep, systems)
    else:
        print("gnuplot not found: no plots", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

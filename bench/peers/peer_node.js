#!/usr/bin/env node
// peer_node.js - JavaScript Promises (and worker_threads) as a peer of fut.
//
// The same options and RESULT lines as the compiled peers (harness.c):
//
//   W1  n/a: JavaScript has no thread pool that returns promises per task;
//       a worker_threads message per task measures message passing, not a
//       futures pool, so no line is printed.
//   W2  a chain of n .then(v => v + 1) on an unresolved Promise,
//       resolved with 0, then the tail awaited.  All on the main thread.
//   W3  Promise.all of n Promises, each resolved with its index from a
//       queueMicrotask() callback (already scheduled, not yet settled when
//       Promise.all subscribes).  All on the main thread.
//   W4, W5, W6 run on a small pool of worker_threads that hands back a
//       Promise per task (one task in flight per worker, FIFO queue):
//   W4  w4_threads workers (bench/workloads.json); a task blocks its worker
//       for w4_sleep_ms with Atomics.wait on a SharedArrayBuffer (a futex
//       wait with a timeout: a blocking sleep).
//   W5  at most 1,000,000 ints (MAX_N) in a SharedArrayBuffer; one task per
//       chunk (w5_chunks of them) sorts its Int32Array chunk in place
//       (TypedArray.prototype.sort), then a binary-heap merge on the main
//       thread; the serial baseline sorts a copy of the whole array the same
//       way.
//   W6  one echo task at a time: postMessage there and back.
'use strict';

const { Worker, isMainThread, parentPort } = require('node:worker_threads');

const SYSTEM = 'node';
const WORKLOADS = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'];
// Workloads of the benchmark this peer accepts in --only but does not run.
const NOT_RUN = ['W7', 'W8', 'W9'];
// The sizes and parameters of the workloads belong to bench/workloads.json,
// shared with the harness, compare.py and the Python peer.
const SPEC = JSON.parse(
  require('node:fs').readFileSync(
    require('node:path').join(__dirname, '..', 'workloads.json'),
    'utf8',
  ),
);
// What this peer runs in reasonable time: a size above its cap runs at the
// cap, and the line says "n reduced from N" (as max_n does for the compiled
// peers).
const MAX_N = { W5: 1000000 };
const W4_THREADS = SPEC.w4_threads;
const W4_SLEEP_MS = SPEC.w4_sleep_ms;
const W5_CHUNKS = SPEC.w5_chunks;

// The shared size of a workload for this run, and the size this peer runs.
function sharedSize(workload, quick) {
  return (quick ? SPEC.quick : SPEC.standard)[workload];
}
function sizeOf(workload, quick) {
  const n = sharedSize(workload, quick);
  return workload in MAX_N ? Math.min(n, MAX_N[workload]) : n;
}
// "n reduced from N; " when the peer runs less than the shared size.
function reducedNote(workload, n, quick) {
  const shared = sharedSize(workload, quick);
  return n === shared ? '' : `n reduced from ${shared}; `;
}

class VerificationError extends Error {}

// --- the worker side ------------------------------------------------------

function workerMain() {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  parentPort.on('message', (task) => {
    switch (task.op) {
      case 'sleep':
        Atomics.wait(sleeper, 0, 0, task.ms);
        break;
      case 'sort':
        new Int32Array(task.buffer, task.lo * 4, task.hi - task.lo).sort();
        break;
      case 'echo':
        break;
    }
    parentPort.postMessage(task.value);
  });
}

// --- the main side --------------------------------------------------------

// A FIFO pool of workers: submit() returns a Promise of the worker's reply.
class Pool {
  constructor(threads) {
    this.idle = [];
    this.queue = [];
    this.workers = [];
    for (let i = 0; i < threads; i++) {
      const w = new Worker(__filename);
      w.on('message', (value) => {
        const settle = w.current;
        w.current = null;
        this.dispatch(w);
        settle(value);
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  submit(task) {
    return new Promise((resolve) => {
      this.queue.push({ task, resolve });
      if (this.idle.length) this.dispatch(this.idle.pop());
    });
  }

  dispatch(w) {
    const next = this.queue.shift();
    if (!next) {
      this.idle.push(w);
      return;
    }
    w.current = next.resolve;
    w.postMessage(next.task);
  }

  async close() {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

const nowNs = () => process.hrtime.bigint();
const msSince = (t0) => Number(nowNs() - t0) / 1e6;
const peakRssKib = () => process.resourceUsage().maxRSS;

function report(workload, values, unit, n, note = '') {
  const v = [...values].sort((a, b) => a - b);
  const k = v.length;
  const med = k % 2 ? v[(k - 1) / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
  const g = (x) => Number(x.toPrecision(6));
  process.stdout.write(
    `RESULT system=${SYSTEM} workload=${workload} value=${g(med)} ` +
      `unit=${unit} n=${n} runs=${k} min=${g(v[0])} max=${g(v[k - 1])} ` +
      `rss_kib=${peakRssKib()} note="${note}"\n`,
  );
}

async function timedRuns(label, runs, once) {
  const figures = [];
  for (let r = -1; r < runs; r++) {
    const what = r < 0 ? 'warm-up 1/1' : `run ${r + 1}/${runs}`;
    process.stderr.write(`\r${SYSTEM} ${label} ${what} `);
    const f = await once();
    if (r >= 0) figures.push(f);
  }
  process.stderr.write('\n');
  return figures;
}

async function chainOnce(n) {
  const t0 = nowNs();
  let resolveHead;
  let tail = new Promise((resolve) => {
    resolveHead = resolve;
  });
  for (let i = 0; i < n; i++) tail = tail.then((v) => v + 1);
  resolveHead(0);
  const v = await tail;
  const ms = msSince(t0);
  if (v !== n) throw new VerificationError(`W2: tail ${v}, want ${n}`);
  return n / (ms / 1e3);
}

async function fanInOnce(n) {
  const t0 = nowNs();
  const inputs = new Array(n);
  for (let i = 0; i < n; i++)
    inputs[i] = new Promise((resolve) => queueMicrotask(() => resolve(i)));
  const values = await Promise.all(inputs);
  let sum = 0;
  for (const v of values) sum += v;
  const ms = msSince(t0);
  const want = (n * (n - 1)) / 2;
  if (sum !== want) throw new VerificationError(`W3: sum ${sum}, want ${want}`);
  return n / (ms / 1e3);
}

async function sleepOnce(pool, n) {
  const t0 = nowNs();
  const done = await Promise.all(
    Array.from({ length: n }, () =>
      pool.submit({ op: 'sleep', ms: W4_SLEEP_MS, value: 1 }),
    ),
  );
  const ms = msSince(t0);
  const ran = done.reduce((a, b) => a + b, 0);
  if (ran !== n) throw new VerificationError(`W4: ${ran} of ${n} tasks ran`);
  // The floor: one thread's share of the sleeps, back to back, blocking.
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const f0 = nowNs();
  for (let k = 0; k < Math.ceil(n / W4_THREADS); k++)
    Atomics.wait(sleeper, 0, 0, W4_SLEEP_MS);
  return [ms, msSince(f0)];
}

// xorshift64 (13, 7, 17) from seed 42, value = x >> 33, as harness.c.
function generate(n) {
  const mask = (1n << 64n) - 1n;
  let x = 42n;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= (x << 13n) & mask;
    x ^= x >> 7n;
    x ^= (x << 17n) & mask;
    out[i] = Number(x >> 33n);
  }
  return out;
}

function checksum(a) {
  let s = 0; // below 2^53 for these sizes: exact
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

function checkSorted(a, want, what) {
  for (let i = 1; i < a.length; i++)
    if (a[i - 1] > a[i])
      throw new VerificationError(`W5: ${what} output unsorted at ${i}`);
  if (checksum(a) !== want)
    throw new VerificationError(`W5: ${what} output checksum differs`);
}

// Merges the sorted chunks of `work` (bounds[c]..bounds[c+1]) into `out`
// through a binary min-heap of chunk numbers keyed by their next value.
function mergeChunks(work, bounds, out) {
  const pos = bounds.slice(0, W5_CHUNKS);
  const heap = [];
  for (let c = 0; c < W5_CHUNKS; c++) if (pos[c] < bounds[c + 1]) heap.push(c);
  const key = (c) => work[pos[c]];
  const siftDown = (i) => {
    const c = heap[i];
    const k = key(c);
    for (;;) {
      let m = 2 * i + 1;
      if (m >= heap.length) break;
      if (m + 1 < heap.length && key(heap[m + 1]) < key(heap[m])) m++;
      if (key(heap[m]) >= k) break;
      heap[i] = heap[m];
      i = m;
    }
    heap[i] = c;
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
  for (let o = 0; heap.length; o++) {
    const c = heap[0];
    out[o] = work[pos[c]++];
    if (pos[c] === bounds[c + 1]) {
      const last = heap.pop();
      if (!heap.length) break;
      heap[0] = last;
    }
    siftDown(0);
  }
}

function sortWorkload(n) {
  const input = generate(n);
  const want = checksum(input);
  const bounds = Array.from({ length: W5_CHUNKS + 1 }, (_, c) =>
    Math.floor((n * c) / W5_CHUNKS),
  );
  const shared = new SharedArrayBuffer(n * 4);
  const work = new Int32Array(shared);
  const out = new Int32Array(n);
  return async (pool) => {
    const serial = Int32Array.from(input);
    let t0 = nowNs();
    serial.sort();
    const serialMs = msSince(t0);
    checkSorted(serial, want, 'serial');
    work.set(input);
    t0 = nowNs();
    await Promise.all(
      Array.from({ length: W5_CHUNKS }, (_, c) =>
        pool.submit({
          op: 'sort',
          buffer: shared,
          lo: bounds[c],
          hi: bounds[c + 1],
          value: c,
        }),
      ),
    );
    mergeChunks(work, bounds, out);
    const ms = msSince(t0);
    checkSorted(out, want, 'chunk-sorted and merged');
    return [ms, serialMs / ms];
  };
}

async function latencyOnce(pool, n, lat) {
  for (let k = 0; k < n; k++) {
    const t0 = nowNs();
    const got = await pool.submit({ op: 'echo', value: k + 1 });
    lat[k] = Number(nowNs() - t0) / 1e3;
    if (got !== k + 1)
      throw new VerificationError(`W6: round trip returned ${got}`);
  }
  const s = Float64Array.from(lat).sort();
  return [s[n >> 1], s[Math.ceil(0.99 * n) - 1]];
}

async function run(workload, opts) {
  const n = sizeOf(workload, opts.quick);
  const runs = opts.runs;
  switch (workload) {
    case 'W1':
      return; // n/a, see the top of the file
    case 'W2':
      report('W2', await timedRuns('W2', runs, () => chainOnce(n)), 'cont/s',
        n, 'Promise.then chain on the main thread');
      return;
    case 'W3':
      report('W3', await timedRuns('W3', runs, () => fanInOnce(n)),
        'inputs/s', n, 'Promise.all of queueMicrotask-resolved promises');
      return;
  }
  const pool = new Pool(workload === 'W4' ? W4_THREADS : opts.threads);
  try {
    if (workload === 'W4') {
      const f = await timedRuns('W4', runs, () => sleepOnce(pool, n));
      const rounds = Math.ceil(n / W4_THREADS);
      const ms = f.map((x) => x[0]);
      report('W4', ms, 'ms', n,
        `worker_threads; Atomics.wait ${W4_SLEEP_MS} ms`);
      report('W4eff', ms.map((m) => (rounds * W4_SLEEP_MS) / m), 'x', n,
        'ideal wall time / measured');
      report('W4floor', f.map((x) => x[1]), 'ms', rounds,
        `one thread, the ${W4_SLEEP_MS} ms sleeps back to back`);
    } else if (workload === 'W5') {
      const once = sortWorkload(n);
      const f = await timedRuns('W5', runs, () => once(pool));
      report('W5', f.map((x) => x[0]), 'ms', n,
        reducedNote('W5', n, opts.quick) +
          'worker_threads; Int32Array sort + heap merge');
      report('W5speedup', f.map((x) => x[1]), 'x', n,
        'serial sort of the whole array / chunk sort + merge');
    } else if (workload === 'W6') {
      const lat = new Array(n);
      const f = await timedRuns('W6', runs, () => latencyOnce(pool, n, lat));
      const note = 'worker_threads postMessage round trip';
      report('W6p50', f.map((x) => x[0]), 'us', n, note);
      report('W6p99', f.map((x) => x[1]), 'us', n, note);
    }
  } finally {
    await pool.close();
  }
}

function usage() {
  process.stderr.write(
    'usage: peer_node.js [--quick] [--only W1[,W2...]] [--runs R] ' +
      '[--threads N]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { quick: false, only: new Set(WORKLOADS), runs: 0, threads: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--only' && i + 1 < argv.length) {
      opts.only = new Set();
      for (const name of argv[++i].split(',')) {
        if (name === 'mem') continue;
        const w = WORKLOADS.concat(NOT_RUN).find((x) => name.startsWith(x));
        if (!w) usage();
        opts.only.add(w);
      }
    } else if (a === '--runs' && i + 1 < argv.length) {
      opts.runs = parseInt(argv[++i], 10);
      if (!(opts.runs >= 1)) usage();
    } else if (a === '--threads' && i + 1 < argv.length) {
      opts.threads = parseInt(argv[++i], 10);
      if (!(opts.threads >= 1)) usage();
    } else usage();
  }
  if (!opts.runs) opts.runs = opts.quick ? 3 : 5;
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let status = 0;
  for (const w of WORKLOADS) {
    if (!opts.only.has(w)) continue;
    try {
      await run(w, opts);
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      process.stderr.write(`\n${SYSTEM} verification failed: ${e.message}\n`);
      status = 1;
    }
  }
  const rss = peakRssKib();
  report('mem', [rss], 'KiB', 0, 'peak RSS of the whole process (high-water mark)');
  process.exitCode = status;
}

if (isMainThread) {
  main().catch((e) => {
    process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  });
} else {
  workerMain();
}

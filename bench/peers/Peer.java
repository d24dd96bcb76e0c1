/*
 * Peer.java - Java's ForkJoinPool and CompletableFuture as a peer of fut.
 *
 * The same workloads, options and RESULT lines as the compiled peers
 * (harness.c), on a ForkJoinPool of --threads workers (default 2):
 *
 *   W1  CompletableFuture.supplyAsync per task, then join() of each.
 *   W2  a thenApply chain of n continuations (+1) on an incomplete
 *       CompletableFuture, completed once the chain is built.
 *   W3  supplyAsync per input, CompletableFuture.allOf, then the sum.
 *   W4  a ForkJoinPool of w4_threads workers, each task a Thread.sleep of
 *       w4_sleep_ms (undeclared, as on the fixed pools).
 *   W5  Arrays.sort of 64 chunks as 64 runAsync tasks, allOf, then a k-way
 *       heap merge; the serial baseline is Arrays.sort of the whole array.
 *   W6  supplyAsync + join, one at a time.
 *   W7  runAsync per task; a blocking task sleeps inside
 *       ForkJoinPool.managedBlock (a ManagedBlocker), which lets the pool
 *       start a spare worker while it blocks, up to the pool's
 *       maximumPoolSize: threads + w7_extra_threads.
 *
 * The JIT compiles the hot paths during the first runs, so each workload
 * has --warmup untimed runs (default 3; 1 with --quick) before the timed
 * ones; the heap is
 * fixed by the command line (bench/peers/CMakeLists.txt: -Xms and -Xmx)
 * and the notes state both.  Every result is verified; a failure prints
 * why on stderr, produces no figure, and makes the program exit 1.  The
 * sizes come from bench/workloads.json (--workloads PATH).
 */
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

@SuppressWarnings("rawtypes") // arrays of CompletableFuture<?> for allOf
public final class Peer {
    static final String SYSTEM = "java";
    static final String[] WORKLOADS = {"W1", "W2", "W3", "W4", "W5", "W6", "W7"};

    static final class VerificationError extends Exception {
        private static final long serialVersionUID = 1L;

        VerificationError(String msg) {
            super(msg);
        }
    }

    /** One timed run: its figures. */
    interface Once {
        double[] run() throws Exception;
    }

    static Map<String, Integer> sizes;
    static Map<String, Long> params = new HashMap<>();
    static int threads = 2;
    static int runs;
    static int warmups = 3;
    static String jvmNote;
    static boolean quick;

    // --- workloads.json: a flat reader for its two size tables and its
    // top-level integer parameters (the file is ours and stays that simple).
    static Map<String, Integer> sizeTable(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\\{([^}]*)\\}")
                .matcher(json);
        if (!m.find())
            throw new IllegalArgumentException("no \"" + name + "\" table");
        Map<String, Integer> t = new HashMap<>();
        Matcher e = Pattern.compile("\"(\\w+)\"\\s*:\\s*(\\d+)").matcher(m.group(1));
        while (e.find())
            t.put(e.group(1), Integer.parseInt(e.group(2)));
        return t;
    }

    static void readSpec(String path, boolean quick) throws Exception {
        String json = Files.readString(Path.of(path));
        sizes = sizeTable(json, quick ? "quick" : "standard");
        String top = json.replaceAll("\\{[^{}]*\\}", "{}"); // drop the tables
        Matcher e = Pattern.compile("\"(\\w+)\"\\s*:\\s*(\\d+)").matcher(top);
        while (e.find())
            params.put(e.group(1), Long.parseLong(e.group(2)));
    }

    static long param(String name) {
        Long v = params.get(name);
        if (v == null)
            throw new IllegalArgumentException("workloads.json lacks " + name);
        return v;
    }

    // --- output ----------------------------------------------------------
    static long peakRssKib() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmHWM:"))
                    return Long.parseLong(line.replaceAll("\\D", ""));
        } catch (Exception e) {
            // fall through
        }
        return -1;
    }

    static void report(String workload, double[] values, String unit, long n,
                       String note) {
        double[] s = values.clone();
        Arrays.sort(s);
        int k = s.length;
        double med = k % 2 == 1 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
        String text = note.isEmpty() ? jvmNote : note + "; " + jvmNote;
        System.out.printf(Locale.ROOT,
                "RESULT system=%s workload=%s value=%s unit=%s n=%d runs=%d "
                        + "min=%s max=%s rss_kib=%d note=\"%s\"%n",
                SYSTEM, workload, g(med), unit, n, k, g(s[0]), g(s[k - 1]),
                peakRssKib(), text);
        System.out.flush();
    }

    /** %.6g as C prints it (no trailing zeros). */
    static String g(double v) {
        String s = String.format(Locale.ROOT, "%.6g", v);
        if (s.contains("e") || !s.contains("."))
            return s;
        return s.replaceAll("0+$", "").replaceAll("\\.$", "");
    }

    static double[][] timedRuns(String label, Once once) throws Exception {
        double[][] figs = new double[runs][];
        for (int r = -warmups; r < runs; r++) {
            System.err.printf("\r%s %s %s %d/%d ", SYSTEM, label,
                    r < 0 ? "warm-up" : "run", r < 0 ? r + warmups + 1 : r + 1,
                    r < 0 ? warmups : runs);
            double[] f = once.run();
            if (r >= 0)
                figs[r] = f;
        }
        System.err.println();
        return figs;
    }

    static double[] column(double[][] figs, int k) {
        double[] v = new double[figs.length];
        for (int r = 0; r < figs.length; r++)
            v[r] = figs[r][k];
        return v;
    }

    static ForkJoinPool newPool(int parallelism, int maxThreads) {
        // asyncMode: FIFO for tasks that are never joined by their pool.
        return new ForkJoinPool(parallelism,
                ForkJoinPool.defaultForkJoinWorkerThreadFactory, null, true,
                0, maxThreads, 1, null, 60, TimeUnit.SECONDS);
    }

    // --- W1 and W3 -------------------------------------------------------
    static void runSum(String w, int n) throws Exception {
        ForkJoinPool pool = newPool(threads, threads + 256);
        long want = (long) n * (n - 1) / 2;
        try {
            double[][] figs = timedRuns(w, () -> {
                @SuppressWarnings("unchecked")
                CompletableFuture<Long>[] fs = new CompletableFuture[n];
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    final long v = i;
                    fs[i] = CompletableFuture.supplyAsync(() -> v, pool);
                }
                long sum = 0;
                if (w.equals("W3"))
                    CompletableFuture.allOf(fs).join();
                for (CompletableFuture<Long> f : fs)
                    sum += f.join();
                long t = System.nanoTime() - t0;
                if (sum != want)
                    throw new VerificationError(w + ": sum " + sum + ", want " + want);
                return new double[] {n / (t * 1e-9)};
            });
            if (w.equals("W1"))
                report("W1", column(figs, 0), "tasks/s", n,
                        "CompletableFuture.supplyAsync on a ForkJoinPool, join() each");
            else
                report("W3", column(figs, 0), "inputs/s", n,
                        "supplyAsync + CompletableFuture.allOf");
        } finally {
            pool.shutdown();
        }
    }

    // --- W2 --------------------------------------------------------------
    static void runChain(int n) throws Exception {
        double[][] figs = timedRuns("W2", () -> {
            long t0 = System.nanoTime();
            CompletableFuture<Long> head = new CompletableFuture<>();
            CompletableFuture<Long> f = head;
            for (int i = 0; i < n; i++)
                f = f.thenApply(v -> v + 1);
            head.complete(0L);
            long tail = f.join();
            long t = System.nanoTime() - t0;
            if (tail != n)
                throw new VerificationError("W2: tail " + tail + ", want " + n);
            return new double[] {n / (t * 1e-9)};
        });
        report("W2", column(figs, 0), "cont/s", n,
                "thenApply chain on an incomplete CompletableFuture");
    }

    // --- W4 --------------------------------------------------------------
    static void sleepNs(long ns) {
        long deadline = System.nanoTime() + ns;
        for (long left = ns; left > 0; left = deadline - System.nanoTime()) {
            try {
                Thread.sleep(left / 1000000, (int) (left % 1000000));
            } catch (InterruptedException e) {
                // keep sleeping until the deadline
            }
        }
    }

    static void runSleep(int n) throws Exception {
        int poolSize = (int) param("w4_threads");
        long sleep = param("w4_sleep_ms") * 1000000L;
        int rounds = (n + poolSize - 1) / poolSize;
        ForkJoinPool pool = newPool(poolSize, poolSize + 256);
        try {
            double[][] figs = timedRuns("W4", () -> {
                byte[] ran = new byte[n];
                CompletableFuture<?>[] fs = new CompletableFuture[n];
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    final int k = i;
                    fs[i] = CompletableFuture.runAsync(() -> {
                        sleepNs(sleep);
                        ran[k] = 1;
                    }, pool);
                }
                CompletableFuture.allOf(fs).join();
                long t = System.nanoTime() - t0;
                int count = 0;
                for (byte b : ran)
                    count += b;
                if (count != n)
                    throw new VerificationError("W4: " + count + " of " + n + " tasks ran");
                long f0 = System.nanoTime();
                for (int k = 0; k < rounds; k++)
                    sleepNs(sleep);
                return new double[] {t / 1e6, (System.nanoTime() - f0) / 1e6};
            });
            double ideal = rounds * sleep / 1e6;
            double[] ms = column(figs, 0);
            double[] eff = new double[ms.length];
            for (int r = 0; r < ms.length; r++)
                eff[r] = ideal / ms[r];
            report("W4", ms, "ms", n, "a ForkJoinPool of " + poolSize
                    + " workers; Thread.sleep, not declared");
            report("W4eff", eff, "x", n, "ideal wall time / measured");
            report("W4floor", column(figs, 1), "ms", rounds,
                    "one thread, the sleeps back to back");
        } finally {
            pool.shutdown();
        }
    }

    // --- W5 --------------------------------------------------------------
    static void fillInput(int[] a) {
        long x = 42;
        for (int i = 0; i < a.length; i++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            a[i] = (int) (x >>> 33);
        }
    }

    static long checksum(int[] a) {
        long s = 0;
        for (int v : a)
            s += v;
        return s;
    }

    static void checkSorted(int[] a, long want, String what) throws VerificationError {
        for (int i = 1; i < a.length; i++)
            if (a[i - 1] > a[i])
                throw new VerificationError("W5: " + what + " output unsorted at " + i);
        if (checksum(a) != want)
            throw new VerificationError("W5: " + what + " output checksum differs");
    }

    /** Merges the sorted chunks of work into out: a min-heap of chunks
     *  keyed by the value at their read position. */
    static void mergeChunks(int[] work, int[] out, int[] bounds) {
        int chunks = bounds.length - 1;
        int[] pos = new int[chunks];
        int[] heap = new int[chunks];
        int k = 0;
        for (int c = 0; c < chunks; c++) {
            pos[c] = bounds[c];
            if (pos[c] < bounds[c + 1])
                heap[k++] = c;
        }
        for (int i = k / 2 - 1; i >= 0; i--)
            siftDown(heap, k, i, work, pos);
        for (int o = 0; k > 0; o++) {
            int c = heap[0];
            out[o] = work[pos[c]++];
            if (pos[c] == bounds[c + 1])
                heap[0] = heap[--k];
            if (k > 0)
                siftDown(heap, k, 0, work, pos);
        }
    }

    static void siftDown(int[] heap, int k, int i, int[] a, int[] pos) {
        int c = heap[i];
        int key = a[pos[c]];
        for (;;) {
            int m = 2 * i + 1;
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

    static void runSort(int n) throws Exception {
        int chunks = (int) param("w5_chunks");
        int[] input = new int[n];
        fillInput(input);
        long want = checksum(input);
        int[] work = new int[n];
        int[] out = new int[n];
        int[] bounds = new int[chunks + 1];
        for (int c = 0; c <= chunks; c++)
            bounds[c] = (int) ((long) n * c / chunks);
        ForkJoinPool pool = newPool(threads, threads + 256);
        try {
            double[][] figs = timedRuns("W5", () -> {
                System.arraycopy(input, 0, work, 0, n);
                long t0 = System.nanoTime();
                Arrays.sort(work);
                long serial = System.nanoTime() - t0;
                checkSorted(work, want, "serial");
                System.arraycopy(input, 0, work, 0, n);
                t0 = System.nanoTime();
                CompletableFuture<?>[] fs = new CompletableFuture[chunks];
                for (int c = 0; c < chunks; c++) {
                    final int lo = bounds[c], hi = bounds[c + 1];
                    fs[c] = CompletableFuture.runAsync(
                            () -> Arrays.sort(work, lo, hi), pool);
                }
                CompletableFuture.allOf(fs).join();
                mergeChunks(work, out, bounds);
                long parallel = System.nanoTime() - t0;
                checkSorted(out, want, "chunk-sorted and merged");
                return new double[] {parallel / 1e6, (double) serial / parallel};
            });
            report("W5", column(figs, 0), "ms", n,
                    "Arrays.sort (dual-pivot quicksort); runAsync per chunk + allOf");
            report("W5speedup", column(figs, 1), "x", n,
                    "serial sort of the whole array / chunk sort + merge");
        } finally {
            pool.shutdown();
        }
    }

    // --- W6 --------------------------------------------------------------
    static void runLatency(int n) throws Exception {
        ForkJoinPool pool = newPool(threads, threads + 256);
        double[] lat = new double[n];
        try {
            double[][] figs = timedRuns("W6", () -> {
                for (int k = 0; k < n; k++) {
                    final long in = k + 1;
                    long t0 = System.nanoTime();
                    long got = CompletableFuture.supplyAsync(() -> in, pool).join();
                    lat[k] = (System.nanoTime() - t0) / 1e3;
                    if (got != in)
                        throw new VerificationError("W6: got " + got + ", want " + in);
                }
                Arrays.sort(lat);
                return new double[] {lat[n / 2], lat[(int) Math.ceil(0.99 * n) - 1]};
            });
            String note = "supplyAsync + join";
            report("W6p50", column(figs, 0), "us", n, note);
            report("W6p99", column(figs, 1), "us", n, note);
        } finally {
            pool.shutdown();
        }
    }

    // --- W7 --------------------------------------------------------------
    static long tinyValue(int i) {
        long x = i * 0x9e3779b97f4a7c15L;
        return (x ^ (x >>> 29)) | 1L;
    }

    /** A sleep that tells the ForkJoinPool it blocks. */
    static final class Sleeper implements ForkJoinPool.ManagedBlocker {
        final long ns;
        boolean done;

        Sleeper(long ns) {
            this.ns = ns;
        }

        @Override
        public boolean block() {
            sleepNs(ns);
            done = true;
            return true;
        }

        @Override
        public boolean isReleasable() {
            return done;
        }
    }

    static void runMixed(int n) throws Exception {
        int blocking = (int) param(quick ? "w7_blocking_quick" : "w7_blocking");
        long sleep = param("w7_sleep_ms") * 1000000L;
        int extra = (int) param("w7_extra_threads");
        int total = n + blocking;
        boolean[] marks = new boolean[total];
        int stride = total / blocking;
        for (int k = 0; k < blocking; k++)
            marks[k * stride] = true;
        long[] slots = new long[total];
        ForkJoinPool pool = newPool(threads, threads + extra);
        AtomicLong tinyLeft = new AtomicLong(), blockLeft = new AtomicLong();
        AtomicLong tinyDone = new AtomicLong(), blockDone = new AtomicLong();
        try {
            // Runs the first m tasks; returns {tiny done, blocking done} in ns.
            Once[] batch = new Once[2];
            for (int mode = 0; mode < 2; mode++) {
                final boolean mixed = mode == 1;
                final int m = mixed ? total : n;
                batch[mode] = () -> {
                    Arrays.fill(slots, 0);
                    tinyLeft.set(n);
                    blockLeft.set(mixed ? blocking : 0);
                    CompletableFuture<?>[] fs = new CompletableFuture[m];
                    final long t0 = System.nanoTime();
                    for (int i = 0; i < m; i++) {
                        final int k = i;
                        Runnable r;
                        if (mixed && marks[i]) {
                            r = () -> {
                                try {
                                    ForkJoinPool.managedBlock(new Sleeper(sleep));
                                } catch (InterruptedException e) {
                                    Thread.currentThread().interrupt();
                                }
                                slots[k] = 1;
                                if (blockLeft.decrementAndGet() == 0)
                                    blockDone.set(System.nanoTime() - t0);
                            };
                        } else {
                            r = () -> {
                                slots[k] = tinyValue(k);
                                if (tinyLeft.decrementAndGet() == 0)
                                    tinyDone.set(System.nanoTime() - t0);
                            };
                        }
                        fs[i] = CompletableFuture.runAsync(r, pool);
                    }
                    CompletableFuture.allOf(fs).join();
                    int bad = 0;
                    for (int i = 0; i < m; i++)
                        bad += slots[i] != (mixed && marks[i] ? 1 : tinyValue(i)) ? 1 : 0;
                    if (bad != 0 || tinyLeft.get() != 0 || blockLeft.get() != 0)
                        throw new VerificationError("W7: " + bad + " of " + m
                                + " tasks missing or wrong");
                    return new double[] {tinyDone.get(), blockDone.get()};
                };
            }
            double[][] figs = timedRuns("W7", () -> {
                double alone = batch[0].run()[0];
                double[] mixed = batch[1].run();
                return new double[] {alone / 1e6, mixed[0] / 1e6, mixed[1] / 1e6};
            });
            double[] alone = column(figs, 0), tiny = column(figs, 1),
                     block = column(figs, 2);
            int conc = Math.min(extra, blocking);
            double ideal = (double) ((blocking + conc - 1) / conc) * sleep / 1e6;
            double[] ratio = new double[runs], eff = new double[runs],
                     idealv = new double[runs];
            for (int r = 0; r < runs; r++) {
                ratio[r] = tiny[r] / alone[r];
                eff[r] = ideal / block[r];
                idealv[r] = ideal;
            }
            report("W7", ratio, "x", n, "runAsync per task on a ForkJoinPool("
                    + threads + "), maximumPoolSize " + (threads + extra)
                    + "; the sleeps in ForkJoinPool.managedBlock (ManagedBlocker)");
            report("W7tiny", tiny, "ms", n,
                    "until the last tiny task of the mixed batch finished");
            report("W7alone", alone, "ms", n, "the tiny tasks alone on the same pool");
            String text = String.format(Locale.ROOT, "until the last of %d blocking "
                    + "tasks finished; ideal %.0f ms (%d blocking at once)",
                    blocking, ideal, conc);
            report("W7block", block, "ms", blocking, text);
            report("W7ideal", idealv, "ms", blocking, text);
            report("W7blockeff", eff, "x", blocking,
                    "ideal wall time of the blocking tasks / measured");
        } finally {
            pool.shutdown();
        }
    }

    // --- driver ----------------------------------------------------------
    static int usage() {
        System.err.println("usage: Peer [--quick] [--only W1[,W2...]] [--runs R] "
                + "[--threads N] [--warmup W] [--workloads PATH]");
        return 2;
    }

    static int main2(String[] args) throws Exception {
        String only = null, spec = "bench/workloads.json";
        boolean warmupGiven = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            boolean more = i + 1 < args.length;
            if (a.equals("--quick"))
                quick = true;
            else if (a.equals("--child"))
                continue;
            else if (a.equals("--only") && more)
                only = args[++i];
            else if (a.equals("--runs") && more)
                runs = Integer.parseInt(args[++i]);
            else if (a.equals("--threads") && more)
                threads = Integer.parseInt(args[++i]);
            else if (a.equals("--warmup") && more) {
                warmups = Integer.parseInt(args[++i]);
                warmupGiven = true;
            }
            else if (a.equals("--workloads") && more)
                spec = args[++i];
            else
                return usage();
        }
        if (runs < 0 || threads < 1 || warmups < 0)
            return usage();
        if (runs == 0)
            runs = quick ? 3 : 5;
        if (quick && !warmupGiven)
            warmups = 1; // a smoke test: the JIT's figures need the full run
        List<String> chosen = new ArrayList<>();
        if (only == null) {
            chosen.addAll(Arrays.asList(WORKLOADS));
        } else {
            for (String name : only.split(",")) {
                // mem is always printed; W8 (fibers) and W9 (groups) are
                // fut_bench's and the fiber peers': accepted, not run.
                if (name.equals("mem") || name.startsWith("W8")
                    || name.startsWith("W9"))
                    continue;
                String found = null;
                for (String w : WORKLOADS)
                    if (name.startsWith(w))
                        found = w;
                if (found == null)
                    return usage();
                if (!chosen.contains(found))
                    chosen.add(found);
            }
        }
        readSpec(spec, quick);
        List<String> jvm = new ArrayList<>();
        for (String arg : ManagementFactory.getRuntimeMXBean().getInputArguments())
            if (arg.startsWith("-Xm"))
                jvm.add(arg);
        jvmNote = "JDK " + Runtime.version().feature() + ", heap "
                + (jvm.isEmpty() ? "default" : String.join(" ", jvm)) + ", "
                + warmups + " warm-up runs";

        int status = 0;
        for (String w : WORKLOADS) {
            if (!chosen.contains(w))
                continue;
            int n = sizes.get(w);
            try {
                switch (w) {
                case "W1":
                case "W3":
                    runSum(w, n);
                    break;
                case "W2":
                    runChain(n);
                    break;
                case "W4":
                    runSleep(n);
                    break;
                case "W5":
                    runSort(n);
                    break;
                case "W6":
                    runLatency(n);
                    break;
                case "W7":
                    runMixed(n);
                    break;
                default:
                    break;
                }
            } catch (VerificationError e) {
                System.err.println("\n" + SYSTEM + " verification failed: " + e.getMessage());
                status = 1;
            }
        }
        double rss = peakRssKib();
        report("mem", new double[] {rss}, "KiB", 0,
                "peak RSS of the whole process (high-water mark)");
        return status;
    }

    public static void main(String[] args) throws Exception {
        System.exit(main2(args));
    }
}

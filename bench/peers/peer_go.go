// peer_go.go - Go's goroutines as a peer of fut.
//
// The same workloads, options and RESULT lines as the compiled peers
// (harness.c), run by the Go runtime with GOMAXPROCS set to --threads
// (default 2): the runtime multiplexes goroutines over that many running
// threads, and when a goroutine enters a blocking system call it hands
// its processor to another thread (starting one if needed), which is
// Go's mechanism for blocking calls.
//
//	W1  a goroutine per task writing its index into a result slot, a
//	    WaitGroup, then the sum (no futures: slots + WaitGroup).
//	W2  an analogue of a continuation chain: n goroutines, each receiving
//	    a value on its channel and sending value + 1 on the next one (at
//	    most 100,000: each link is a parked goroutine with its own stack).
//	W3  a goroutine per input sending its result on one buffered channel,
//	    which the caller drains and sums (fan-in through a channel).
//	W4  a pool of w4_threads goroutines taking indices from a channel,
//	    each task a time.Sleep of w4_sleep_ms (which parks the goroutine).
//	W5  sort.Ints of 64 chunks as 64 goroutines, then a k-way heap merge;
//	    the serial baseline is sort.Ints of the whole slice.
//	W6  a goroutine that sends its input back on a channel, one at a time.
//	W7  a goroutine per task; each blocking task sleeps in the
//	    nanosleep(2) system call itself (syscall.Nanosleep, a real
//	    blocking call: time.Sleep would only park the goroutine), so the
//	    runtime's hand-off of the processor is what keeps the tiny tasks
//	    running.
//	W8  fibers: n goroutines started at once, each blocking on its own
//	    unbuffered channel until the main goroutine sends it i + 1; the
//	    resident set per parked goroutine (W8rss); and a ping-pong between
//	    two goroutines over two unbuffered channels (W8switch).
//
// Every result is verified as the harness verifies it; a failure prints
// why on stderr, produces no figure, and makes the program exit 1.  The
// workload sizes come from bench/workloads.json (its path is set at build
// time by bench/peers/CMakeLists.txt; --workloads overrides it).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const system = "go"

var workloadNames = []string{"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"}

// Set with -ldflags "-X main.workloadsPath=..." by the build.
var workloadsPath = "bench/workloads.json"

type spec struct {
	Standard       map[string]int `json:"standard"`
	Quick          map[string]int `json:"quick"`
	W4Threads      int            `json:"w4_threads"`
	W4SleepMs      int            `json:"w4_sleep_ms"`
	W5Chunks       int            `json:"w5_chunks"`
	W7Blocking     int            `json:"w7_blocking"`
	W7BlockingQ    int            `json:"w7_blocking_quick"`
	W7SleepMs      int            `json:"w7_sleep_ms"`
	W7ExtraThreads int            `json:"w7_extra_threads"`
}

var (
	cfg     spec
	start   = time.Now()
	threads int
)

// nowNs is a monotonic clock in nanoseconds (time.Since is monotonic).
func nowNs() int64 { return int64(time.Since(start)) }

type verificationError struct{ msg string }

func (e verificationError) Error() string { return e.msg }

func fail(format string, args ...interface{}) error {
	return verificationError{fmt.Sprintf(format, args...)}
}

func peakRssKib() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Maxrss
}

func median(v []float64) (med, lo, hi float64) {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	k := len(s)
	if k%2 == 1 {
		med = s[k/2]
	} else {
		med = (s[k/2-1] + s[k/2]) / 2
	}
	return med, s[0], s[k-1]
}

func report(workload string, values []float64, unit string, n, runs int,
	note string) {
	med, lo, hi := median(values)
	fmt.Printf("RESULT system=%s workload=%s value=%.6g unit=%s n=%d "+
		"runs=%d min=%.6g max=%.6g rss_kib=%d note=\"%s\"\n",
		system, workload, med, unit, n, runs, lo, hi, peakRssKib(), note)
}

// timedRuns: one warm-up, then runs timed runs of once, each returning
// its figures; stops at the first failure.
func timedRuns(label string, runs int, once func() ([]float64, error)) (
	[][]float64, error) {
	var out [][]float64
	for r := -1; r < runs; r++ {
		if r < 0 {
			fmt.Fprintf(os.Stderr, "\r%s %s warm-up 1/1 ", system, label)
		} else {
			fmt.Fprintf(os.Stderr, "\r%s %s run %d/%d ", system, label,
				r+1, runs)
		}
		f, err := once()
		if err != nil {
			fmt.Fprintln(os.Stderr)
			return nil, err
		}
		if r >= 0 {
			out = append(out, f)
		}
	}
	fmt.Fprintln(os.Stderr)
	return out, nil
}

func column(figs [][]float64, k int) []float64 {
	v := make([]float64, len(figs))
	for i, f := range figs {
		v[i] = f[k]
	}
	return v
}

// --- W1 and W3 ----------------------------------------------------------

func submitSum(n int, slots []uint64) (uint64, error) {
	for i := range slots {
		slots[i] = math.MaxUint64 // a lost task leaves this behind
	}
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			slots[i] = uint64(i)
			wg.Done()
		}(i)
	}
	wg.Wait()
	var sum uint64
	for _, v := range slots {
		sum += v
	}
	return sum, nil
}

func fanIn(n int) (uint64, error) {
	ch := make(chan uint64, n)
	for i := 0; i < n; i++ {
		go func(i int) { ch <- uint64(i) }(i)
	}
	var sum uint64
	for k := 0; k < n; k++ {
		sum += <-ch
	}
	return sum, nil
}

func runSum(w string, n, runs int) error {
	slots := make([]uint64, n)
	want := uint64(n) * uint64(n-1) / 2
	figs, err := timedRuns(w, runs, func() ([]float64, error) {
		t0 := nowNs()
		var sum uint64
		if w == "W1" {
			sum, _ = submitSum(n, slots)
		} else {
			sum, _ = fanIn(n)
		}
		t := nowNs() - t0
		if sum != want {
			return nil, fail("%s: sum %d, want %d", w, sum, want)
		}
		return []float64{float64(n) / (float64(t) * 1e-9)}, nil
	})
	if err != nil {
		return err
	}
	if w == "W1" {
		report("W1", column(figs, 0), "tasks/s", n, runs,
			"no futures: a goroutine per task, result slots + WaitGroup")
	} else {
		report("W3", column(figs, 0), "inputs/s", n, runs,
			"a goroutine per input, results over one buffered channel")
	}
	return nil
}

// --- W2: a channel chain (an analogue of a continuation chain) ----------

// maxChain caps W2: every link is a parked goroutine with its own stack
// (about 3 KiB), so the standard million would hold some 3 GiB.
const maxChain = 100000

func runChain(n, runs int) error {
	note := "analogue: a chain of goroutines linked by channels, each +1"
	if n > maxChain {
		note = fmt.Sprintf("n reduced from %d; %s (a parked goroutine "+
			"per link)", n, note)
		n = maxChain
	}
	figs, err := timedRuns("W2", runs, func() ([]float64, error) {
		t0 := nowNs()
		first := make(chan uint64, 1)
		in := first
		for i := 0; i < n; i++ {
			out := make(chan uint64, 1)
			go func(in <-chan uint64, out chan<- uint64) {
				out <- <-in + 1
			}(in, out)
			in = out
		}
		first <- 0
		tail := <-in
		t := nowNs() - t0
		if tail != uint64(n) {
			return nil, fail("W2: tail %d, want %d", tail, n)
		}
		return []float64{float64(n) / (float64(t) * 1e-9)}, nil
	})
	if err != nil {
		return err
	}
	report("W2", column(figs, 0), "cont/s", n, runs, note)
	return nil
}

// --- W4: sleeps on a pool of w4_threads goroutines ----------------------

func runSleep(n, runs int) error {
	poolSize := cfg.W4Threads
	sleep := time.Duration(cfg.W4SleepMs) * time.Millisecond
	ran := make([]uint32, n)
	rounds := (n + poolSize - 1) / poolSize
	figs, err := timedRuns("W4", runs, func() ([]float64, error) {
		for i := range ran {
			ran[i] = 0
		}
		t0 := nowNs()
		work := make(chan int, n)
		var wg sync.WaitGroup
		wg.Add(poolSize)
		for k := 0; k < poolSize; k++ {
			go func() {
				for i := range work {
					time.Sleep(sleep)
					ran[i] = 1
				}
				wg.Done()
			}()
		}
		for i := 0; i < n; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		t := nowNs() - t0
		count := 0
		for _, r := range ran {
			count += int(r)
		}
		if count != n {
			return nil, fail("W4: %d of %d tasks ran", count, n)
		}
		f0 := nowNs()
		for k := 0; k < rounds; k++ {
			time.Sleep(sleep)
		}
		return []float64{float64(t) / 1e6, float64(nowNs()-f0) / 1e6}, nil
	})
	if err != nil {
		return err
	}
	ideal := float64(rounds) * float64(sleep) / 1e6
	ms := column(figs, 0)
	eff := make([]float64, len(ms))
	for r := range ms {
		eff[r] = ideal / ms[r]
	}
	report("W4", ms, "ms", n, runs, fmt.Sprintf(
		"a pool of %d goroutines; time.Sleep", poolSize))
	report("W4eff", eff, "x", n, runs, "ideal wall time / measured")
	report("W4floor", column(figs, 1), "ms", rounds, runs,
		fmt.Sprintf("one goroutine, the %d ms sleeps back to back",
			cfg.W4SleepMs))
	return nil
}

// --- W5: chunk sort + k-way merge ----------------------------------------

// fillInput: xorshift64 (13, 7, 17) from seed 42, value = int32(x >> 33),
// the harness's sequence.
func fillInput(a []int) {
	x := uint64(42)
	for i := range a {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		a[i] = int(int32(x >> 33))
	}
}

func checksum(a []int) uint64 {
	var s uint64
	for _, v := range a {
		s += uint64(int64(v))
	}
	return s
}

func checkSorted(a []int, want uint64, what string) error {
	for i := 1; i < len(a); i++ {
		if a[i-1] > a[i] {
			return fail("W5: %s output unsorted at %d", what, i)
		}
	}
	if checksum(a) != want {
		return fail("W5: %s output checksum differs from the input's", what)
	}
	return nil
}

// siftDown restores the min-heap property below heap[i] (its first k
// entries); a chunk's key is the value at its read position.
func siftDown(heap []int, k, i int, a, pos []int) {
	c := heap[i]
	key := a[pos[c]]
	for {
		m := 2*i + 1
		if m >= k {
			break
		}
		if m+1 < k && a[pos[heap[m+1]]] < a[pos[heap[m]]] {
			m++
		}
		if a[pos[heap[m]]] >= key {
			break
		}
		heap[i] = heap[m]
		i = m
	}
	heap[i] = c
}

// mergeChunks merges the sorted chunks work[bounds[c]:bounds[c+1]] into
// out with a binary min-heap of chunk indices.
func mergeChunks(work, out []int, bounds []int) {
	chunks := len(bounds) - 1
	pos := make([]int, chunks)
	heap := make([]int, chunks)
	k := 0
	for c := 0; c < chunks; c++ {
		pos[c] = bounds[c]
		if pos[c] < bounds[c+1] {
			heap[k] = c
			k++
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(heap, k, i, work, pos)
	}
	for o := 0; k > 0; o++ {
		c := heap[0]
		out[o] = work[pos[c]]
		pos[c]++
		if pos[c] == bounds[c+1] {
			k--
			heap[0] = heap[k]
		}
		if k > 0 {
			siftDown(heap, k, 0, work, pos)
		}
	}
}

func runSort(n, runs int) error {
	chunks := cfg.W5Chunks
	input := make([]int, n)
	fillInput(input)
	want := checksum(input)
	work := make([]int, n)
	out := make([]int, n)
	bounds := make([]int, chunks+1)
	for c := 0; c <= chunks; c++ {
		bounds[c] = int(int64(n) * int64(c) / int64(chunks))
	}
	figs, err := timedRuns("W5", runs, func() ([]float64, error) {
		copy(work, input)
		t0 := nowNs()
		sort.Ints(work)
		serial := nowNs() - t0
		if err := checkSorted(work, want, "serial"); err != nil {
			return nil, err
		}
		copy(work, input)
		t0 = nowNs()
		var wg sync.WaitGroup
		wg.Add(chunks)
		for c := 0; c < chunks; c++ {
			go func(c int) {
				sort.Ints(work[bounds[c]:bounds[c+1]])
				wg.Done()
			}(c)
		}
		wg.Wait()
		mergeChunks(work, out, bounds)
		parallel := nowNs() - t0
		if err := checkSorted(out, want,
			"chunk-sorted and merged"); err != nil {
			return nil, err
		}
		return []float64{float64(parallel) / 1e6,
			float64(serial) / float64(parallel)}, nil
	})
	if err != nil {
		return err
	}
	report("W5", column(figs, 0), "ms", n, runs,
		"sort.Ints; a goroutine per chunk")
	report("W5speedup", column(figs, 1), "x", n, runs,
		"serial sort of the whole array / chunk sort + merge")
	return nil
}

// --- W6: round trips, one at a time ---------------------------------------

func runLatency(n, runs int) error {
	lat := make([]float64, n)
	ch := make(chan uint64)
	figs, err := timedRuns("W6", runs, func() ([]float64, error) {
		for k := 0; k < n; k++ {
			in := uint64(k + 1)
			t0 := nowNs()
			go func() { ch <- in }()
			got := <-ch
			lat[k] = float64(nowNs()-t0) / 1e3
			if got != in {
				return nil, fail("W6: round trip returned %d, want %d",
					got, in)
			}
		}
		sort.Float64s(lat)
		p99 := int(math.Ceil(0.99*float64(n))) - 1
		return []float64{lat[n/2], lat[p99]}, nil
	})
	if err != nil {
		return err
	}
	note := "go func() sends its input back on an unbuffered channel"
	report("W6p50", column(figs, 0), "us", n, runs, note)
	report("W6p99", column(figs, 1), "us", n, runs, note)
	return nil
}

// --- W7: mixed load -------------------------------------------------------

func tinyValue(i int) uint64 {
	x := uint64(i) * 0x9e3779b97f4a7c15
	return (x ^ (x >> 29)) | 1
}

func runMixed(n, runs int, quick bool) error {
	blocking := cfg.W7Blocking
	if quick {
		blocking = cfg.W7BlockingQ
	}
	sleepNs := int64(cfg.W7SleepMs) * 1000000
	total := n + blocking
	marks := make([]bool, total)
	stride := total / blocking
	for k := 0; k < blocking; k++ {
		marks[k*stride] = true
	}
	slots := make([]uint64, total)

	// Runs the first m tasks (tiny ones only unless mixed) as goroutines;
	// returns the ns from the start until the last tiny and the last
	// blocking task finished.
	batch := func(m int, mixed bool) (int64, int64, error) {
		for i := range slots {
			slots[i] = 0
		}
		var tinyLeft, blockLeft int64 = int64(n), 0
		if mixed {
			blockLeft = int64(blocking)
		}
		var tinyDone, blockDone int64
		var wg sync.WaitGroup
		wg.Add(m)
		t0 := nowNs()
		for i := 0; i < m; i++ {
			if mixed && marks[i] {
				go func(i int) {
					ts := syscall.NsecToTimespec(sleepNs)
					for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
					}
					slots[i] = 1
					if atomic.AddInt64(&blockLeft, -1) == 0 {
						atomic.StoreInt64(&blockDone, nowNs()-t0)
					}
					wg.Done()
				}(i)
			} else {
				go func(i int) {
					slots[i] = tinyValue(i)
					if atomic.AddInt64(&tinyLeft, -1) == 0 {
						atomic.StoreInt64(&tinyDone, nowNs()-t0)
					}
					wg.Done()
				}(i)
			}
		}
		wg.Wait()
		bad := 0
		for i := 0; i < m; i++ {
			want := tinyValue(i)
			if mixed && marks[i] {
				want = 1
			}
			if slots[i] != want {
				bad++
			}
		}
		if bad != 0 || tinyLeft != 0 || blockLeft != 0 {
			return 0, 0, fail("W7: %d of %d tasks missing or wrong", bad, m)
		}
		return tinyDone, blockDone, nil
	}

	figs, err := timedRuns("W7", runs, func() ([]float64, error) {
		alone, _, err := batch(n, false)
		if err != nil {
			return nil, err
		}
		tiny, block, err := batch(total, true)
		if err != nil {
			return nil, err
		}
		return []float64{float64(alone) / 1e6, float64(tiny) / 1e6,
			float64(block) / 1e6}, nil
	})
	if err != nil {
		return err
	}
	alone, tiny, block := column(figs, 0), column(figs, 1), column(figs, 2)
	// Every blocking task has its own goroutine and thread: all can block
	// at once.
	ideal := float64(cfg.W7SleepMs)
	ratio := make([]float64, runs)
	eff := make([]float64, runs)
	for r := 0; r < runs; r++ {
		ratio[r] = tiny[r] / alone[r]
		eff[r] = ideal / block[r]
	}
	report("W7", ratio, "x", n, runs, fmt.Sprintf(
		"a goroutine per task, GOMAXPROCS=%d; the sleeps are nanosleep(2) "+
			"system calls (syscall.Nanosleep), during which the runtime "+
			"hands the processor to another thread", threads))
	report("W7tiny", tiny, "ms", n, runs,
		"until the last tiny task of the mixed batch finished")
	report("W7alone", alone, "ms", n, runs,
		"the tiny tasks alone on the same pool")
	text := fmt.Sprintf("until the last of %d blocking tasks finished; "+
		"ideal %.0f ms (%d blocking at once)", blocking, ideal, blocking)
	report("W7block", block, "ms", blocking, runs, text)
	idealv := make([]float64, runs)
	for r := range idealv {
		idealv[r] = ideal
	}
	report("W7ideal", idealv, "ms", blocking, runs, text)
	report("W7blockeff", eff, "x", blocking, runs,
		"ideal wall time of the blocking tasks / measured")
	return nil
}

// --- W8: fibers ----------------------------------------------------------

// rssNowKib is the process's resident set now (/proc/self/statm).
func rssNowKib() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize()) / 1024
}

// w8Once: n goroutines, each parked on its own channel; returns the time
// from the first start until the last goroutine is about to block (it
// notes the time) plus from the first send until all finished (the poll
// between the two and the resident set's reading are not timed: every
// system is charged for running each goroutine to its wait, whether that
// happens at once or after the go statements return), and the KiB of resident
// set per parked goroutine.  trim (the warm-up run): the previous memory
// goes back to the OS first, so that the KiB count this run's stacks; the
// timed runs reuse what the run before left, as every W8 system does.
func w8Once(n int, trim bool) (float64, float64, error) {
	chans := make([]chan uint64, n)
	for i := range chans {
		chans[i] = make(chan uint64)
	}
	got := make([]uint64, n)
	var parked, parkedAt int64
	var wg sync.WaitGroup
	wg.Add(n)
	if trim {
		debug.FreeOSMemory()
	}
	rss0 := rssNowKib()
	t0 := nowNs()
	for i := 0; i < n; i++ {
		go func(i int) {
			if atomic.AddInt64(&parked, 1) == int64(n) {
				atomic.StoreInt64(&parkedAt, nowNs())
			}
			got[i] = <-chans[i]
			wg.Done()
		}(i)
	}
	for atomic.LoadInt64(&parkedAt) == 0 {
		time.Sleep(time.Millisecond)
	}
	started := atomic.LoadInt64(&parkedAt) - t0
	kib := float64(rssNowKib()-rss0) / float64(n)
	t1 := nowNs()
	for i := 0; i < n; i++ {
		chans[i] <- uint64(i + 1)
	}
	wg.Wait()
	t := started + (nowNs() - t1)
	var sum uint64
	for _, v := range got {
		sum += v
	}
	if want := uint64(n) * uint64(n+1) / 2; sum != want {
		return 0, 0, fail("W8: sum %d, want %d", sum, want)
	}
	return float64(t) * 1e-9, kib, nil
}

// pingPong: m round trips between two goroutines over two unbuffered
// channels; returns the seconds.
func pingPong(m int) (float64, error) {
	ping := make(chan int)
	pong := make(chan int)
	bad := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := nowNs()
	go func() {
		defer wg.Done()
		for r := 1; r <= m; r++ {
			ping <- r
			if v := <-pong; v != r {
				bad <- fail("W8switch: round %d returned %d", r, v)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for r := 1; r <= m; r++ {
			pong <- <-ping
		}
	}()
	wg.Wait()
	t := nowNs() - t0
	select {
	case err := <-bad:
		return 0, err
	default:
	}
	return float64(t) * 1e-9, nil
}

func runW8(n, m, runs int) error {
	warmKib, first := 0.0, true
	figs, err := timedRuns("W8", runs, func() ([]float64, error) {
		secs, kib, err := w8Once(n, first)
		if err != nil {
			return nil, err
		}
		if first {
			warmKib, first = kib, false
		}
		ps, err := pingPong(m)
		if err != nil {
			return nil, err
		}
		return []float64{float64(n) / secs, kib, 2 * float64(m) / ps}, nil
	})
	if err != nil {
		return err
	}
	note := "goroutines with channels; stacks grow from 2 KiB (" +
		runtime.Version() + ": _StackMin, adaptive start)"
	report("W8", column(figs, 0), "fibers/s", n, runs, fmt.Sprintf(
		"%s; each parked on its own unbuffered channel, GOMAXPROCS=%d; "+
			"start until all wait + resolve until all finished", note, threads))
	report("W8switch", column(figs, 2), "switches/s", m, runs, note+
		"; a ping-pong over two unbuffered channels, two switches a round trip")
	report("W8rss", []float64{warmKib}, "KiB/fiber", n, 1, note+
		"; resident set per parked goroutine (statm; the warm-up run, "+
		"after debug.FreeOSMemory)")
	return nil
}

// --- driver -------------------------------------------------------------

func main() {
	quick := flag.Bool("quick", false, "smaller sizes and 3 runs (a smoke test)")
	only := flag.String("only", "", "comma-separated workloads (default: all)")
	runs := flag.Int("runs", 0, "timed runs after one warm-up")
	flag.IntVar(&threads, "threads", 2, "GOMAXPROCS (W4 uses its own pool)")
	flag.StringVar(&workloadsPath, "workloads", workloadsPath,
		"path of bench/workloads.json")
	child := flag.Bool("child", false, "accepted for the harness's protocol")
	flag.Parse()
	_ = child
	if flag.NArg() != 0 || *runs < 0 || threads < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *runs == 0 {
		*runs = 5
		if *quick {
			*runs = 3
		}
	}
	chosen := map[string]bool{}
	if *only == "" {
		for _, w := range workloadNames {
			chosen[w] = true
		}
	} else {
		for _, name := range strings.Split(*only, ",") {
			if name == "mem" {
				continue
			}
			found := false
			for _, w := range workloadNames {
				if strings.HasPrefix(name, w) {
					chosen[w], found = true, true
				}
			}
			if !found {
				fmt.Fprintf(os.Stderr, "usage: unknown workload %q\n", name)
				os.Exit(2)
			}
		}
	}
	data, err := os.ReadFile(workloadsPath)
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot read %s: %v\n", system,
			workloadsPath, err)
		os.Exit(2)
	}
	sizes := cfg.Standard
	if *quick {
		sizes = cfg.Quick
	}
	runtime.GOMAXPROCS(threads)

	status := 0
	for _, w := range workloadNames {
		if !chosen[w] {
			continue
		}
		n := sizes[w]
		var err error
		switch w {
		case "W1", "W3":
			err = runSum(w, n, *runs)
		case "W2":
			err = runChain(n, *runs)
		case "W4":
			err = runSleep(n, *runs)
		case "W5":
			err = runSort(n, *runs)
		case "W6":
			err = runLatency(n, *runs)
		case "W7":
			err = runMixed(n, *runs, *quick)
		case "W8":
			err = runW8(n, sizes["W8switch"], *runs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "\n%s verification failed: %v\n", system,
				err)
			status = 1
		}
		runtime.GC()
	}
	rss := float64(peakRssKib())
	report("mem", []float64{rss}, "KiB", 0, 1,
		"peak RSS of the whole process (high-water mark)")
	os.Exit(status)
}

/*
 * pool_worker.c - the pool's queues and its workers: finding work,
 * running it, parking, and helping while a worker waits.
 *
 * Queues.  Work from outside the pool goes through one shared FIFO, so
 * that outside tasks start in submission order whichever worker is free
 * (PEP 3148's work queue, libuv, GLib): a free worker never runs a later
 * outside task while an earlier one waits.  It is an unbounded MPMC queue
 * in linked blocks (util/segq.h): a submitter claims the next position with
 * one CAS and stores the task there, a worker claims the oldest with one
 * CAS, and only a submitter takes a lock, once per 255 tasks.  While the
 * queue is long, the pool counts as backlogged (core/exec.h), so that
 * outside waiters park sooner (core/wait.c).  Each worker also owns a
 * bounded Chase-Lev deque (util/deque.h) for work it spawns itself (tasks
 * submitted from inside tasks, continuations handed to the pool by a settle
 * on a worker), which it runs newest first for locality and others may
 * steal oldest first; when full, that work goes to the shared queue.  A
 * worker looking for work takes its own deque, then the shared FIFO, then
 * steals from the other workers' deques.
 *
 * Replaced (2026-12-03): submitters pushed onto a lock-free stack linked
 * through the futures, and a worker that found the FIFO (then a bounded
 * ring) empty took the stack whole under a lock, reversed it and moved it
 * into the ring.  The reversal chased one pointer per task through futures
 * another core had just written, one cache miss after another, inside the
 * lock (refill: 10% of W1's samples with one worker, 14% with eight).
 * fut_bench, the blocks against the ring, medians of 6 alternating
 * processes: W1 22.5 M tasks/s against 12.3 M (2 workers), 23.6 against
 * 16.8 (1), 17.2 against 11.2 (4), 13.5 against 9.2 (8); W3 16.8 M against
 * 15.1 M; W6 p50 0.355 us against 0.382, p99 0.708 against 0.777.  Against
 * 64ba601 (batches of 64, no strict order) in the same way: W1 22.9 M
 * against 17.0 M, W3 15.7 against 13.0, but 13.4 against 18.2 with 8
 * workers, where one claim point per task is shared by eight threads on
 * two cores.
 *
 * Next.  The newest task a worker spawns goes to its `next` slot, not to
 * its deque, and is the first thing it runs: a fiber that wakes another
 * and then waits, or a continuation that settles the next one, hands its
 * work to the same thread, whose caches hold it (Go's runnext).  What the
 * slot held before moves to the deque, where thieves take it.  A thief
 * takes another worker's next task only once it has seen the same task
 * there for NEXT_STEAL_NS, so a worker about to run it keeps it, and one
 * busy in a long task loses it; a thief that has seen one parks for at
 * most NEXT_RECHECK_NS, since nobody wakes it for that task.  Measured, a
 * ping-pong of two fibers on two workers (W8switch): the idle worker stole
 * every wake from the deque and each switch crossed cores, 1.1 M
 * switches/s against 4.8 M on one worker.  A push into an empty next slot
 * wakes nobody while some parked worker watches: its worker runs it next,
 * and the futex wake of a parked worker, which could only find it not yet
 * stealable, cost the ping-pong 15% (5.0 -> 5.85 M switches/s without it).
 * The first worker that parks while another is busy is the watcher (one
 * at a time, decided under `lock`): it comes back to look after
 * NEXT_RECHECK_NS, twice as long each time it finds nothing, at most
 * RECHECK_MAX_NS, so a next task whose worker stays in a long task is taken
 * within about a millisecond.  The others sleep until woken, and a push
 * into an empty next slot wakes one of them when no parked worker watches.
 * (Every parked worker watching cost W7, with its 64 extra threads, a
 * third: they all woke every few hundred microseconds.)  A fiber about to
 * suspend takes a woken fiber out of the slot itself and switches straight
 * to it (fut__pool_take_resume; feat/fiber.c, Hand-off): run_one then
 * finishes with the task that came back, which running[] names.
 *
 * Rejected: taking outside work in batches of 64 into the taker's deque
 * (the previous design).  It made W1 cheap, one lock per 64 tasks, but a
 * thief stole the newest of a batch and the taker ran its batch behind
 * a task that blocked, so a quick task waited 300 ms behind a blocking one
 * on a two-worker pool while the other worker was free.  Also rejected,
 * after measuring: batches kept oldest-on-top (owner and thieves take the
 * oldest) with free workers stealing from a worker stuck in one task for
 * over 2 ms.  A free worker still ran its own newer batch while an older
 * task sat behind a task that only became long afterwards: 20 ms
 * inversions on 5 workers (order_external_tasks_start_in_submission_order).
 * Strict order needs one point where every outside task is claimed; the
 * queue's head is it, and its contended CAS is what W1 pays: 11.9 M tasks/s
 * against 18.0 M with batches (64ba601; medians of 5 alternating
 * processes, 2 workers, 2026-12-02), W3 12.8 M against 12.9 M.  (Before
 * the ring spread neighbouring positions over cache lines: 9.7 M.)
 *
 * Also rejected, measured on 2026-12-03: workers that
 * claim runs of consecutive ring positions at once (one CAS for up to 32,
 * sized to about 20 us of the last run's pace), taken oldest first by CAS
 * on the claimer's cursor, by it or by others.  Others taking a batch only
 * once it is overdue read W1 19.6 M against 14.3 M with the ring; a worker
 * whose batch is empty taking the older half of another's first (strict
 * among batches) read 16.6 M; a clock read per batch task cost a fifth of
 * W1 (rdtsc or vDSO), so the look came every few tasks.  Every variant let
 * 20-40 ms inversions through once quick tasks had grown the batches
 * (order_holds_after_quick_tasks_grew_the_batches): a worker cannot know,
 * when it starts a newer task, that the older one another worker holds is
 * about to wait behind a long task.  What W1 had with batches of 64 was in
 * part one worker idle: over 8 runs of 1,000,000 tasks, one of 64ba601's
 * workers ran 109 ms (parking 16,000 times) beside the other's 347 ms and
 * the submitter's 311 ms; the ring's two workers ran 370 and 409 ms beside
 * the submitter's 345 ms, and the three waited 570 ms in all for a CPU.
 *
 * The chase.  A submitter slower per task than a worker (a task group's
 * spawn, ~45 ns) has the worker one task behind it: the
 * worker reads each slot just after it is stored (94% of its pops found
 * the task at the first look, so this is not polling an empty queue),
 * and the submitter's store into the next slot of the same cache line
 * must take the line back, which each of its next locked instructions
 * waits for.  Measured: 100,000 spawns 10-16 ms against 4.5 ms with the
 * worker behind (2026-12-03, W9).  W8's start looks the same: its
 * submitting thread spends 11-15 ms of CPU on 100,000 fut_async against
 * 10.5-11.5 with the code before the queue change.  Fixed by the queue's
 * layout (util/segq.h, Layout): while a producer streams and the consumers
 * keep up, the queue spreads its items one to a cache line, in an order
 * the prefetchers do not follow, so the line a producer writes next is
 * one no consumer has read (W9 2.11 -> 1.26).  Tried before that: a submit
 * without the admission counter (the queue's tail closed at shutdown
 * instead) made submits 26 -> 19 ns and the group fast
 * enough to stay ahead (W9 2.8 -> 1.1), but W1 with two workers fell from
 * 23 M to 15 M tasks/s: both workers stayed busy, three threads shared two
 * cores, and two workers claiming in turn move the head's line per task.
 * Two dummy locked instructions per submit gave W1 back, and W9 its 2.2:
 * the submitter's pace, not the protocol, decides both.  One item per
 * cache line (blocks of 31, an experiment) then read W9 1.12 against
 * 1.85 for the same blocks packed, which pointed at the line.
 *
 * Parking.  An idle worker spins briefly, then registers in the idle list
 * (nidle++), looks once more, and parks on its own parker.  A submitter
 * pushes, then reads nidle, and takes the idle lock and unparks one worker
 * only when nidle is not zero: a busy pool makes no syscall and takes no
 * lock per task.  No wakeup is lost: the submitter stores the task in its
 * slot, then loads nidle; the worker raises nidle, then looks again, with
 * a StoreLoad fence between on both sides, so at least one of the two sees
 * the other.  The fence is lopsided (util/fence.h): the worker, which
 * parks rarely, runs membarrier(2), and the submitter, once per task, only
 * a compiler barrier (or a seq_cst store without membarrier).  Pushes into
 * a next slot or a deque are seq_cst read-modify-writes of their own.  A
 * worker that takes outside work and sees more waiting wakes another idle
 * worker, which does the same, so a burst fans out.
 *
 * Spare blocks.  The shared queue keeps the blocks its head has left for
 * reuse; a burst would keep its blocks (8 bytes per task) for the life of
 * the pool.  They can go back only when no look at the queue can be
 * holding one (a look reads a block before its CAS: util/segq.h).  So
 * `awake` counts the workers that may look, under `lock`: raised when a
 * worker starts and when it wakes, before its next look; lowered when it
 * parks, after its last look, and when it exits.  The worker that lowers it
 * to 0 detaches all but SPARE_BLOCKS under `lock` (no worker can raise it
 * meanwhile) and frees them after.  Threads that drain the queue
 * (fut__pool_drain: shutdown, a fork child) are the queue's guests, and no
 * block goes while one is in.
 *
 * Waiting inside a task (rule 7).  A worker that waits on a future runs
 * the pool's work meanwhile (the executor's help_wait operation, reached
 * through core/exec.h); when there is none it parks both as an idle worker
 * (so a submit wakes it) and on the future (a wake callback).  Nested
 * helping is limited in depth; past the limit the worker simply blocks.
 *
 * Lock order.  `lock` guards the idle list, the flags' transitions and the
 * bounded-queue wait; the shared queue's own lock its crossings between
 * blocks.  No user code runs under either, and neither is taken while the
 * other is held, except by the fork handlers (lock, then the queue's).
 *
 * Counters.  Each worker counts what it took out of the queues in its own
 * cache line (written by it alone); stats sum them.  A task cancelled while
 * queued stays in its queue, counted as a zombie (the executor is told at
 * once, core/exec.h) until a worker takes it out.
 */
#include "exec/pool.h"

#include "feat/fiber.h"
#include "util/fence.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>

enum {
    HELP_DEPTH_MAX = FUT__HELP_DEPTH_MAX,
    SPIN_ROUNDS = 64,         /* looks for work before parking */
    STEAL_TRIES = 4,          /* retries of a steal that lost a race */
    NEXT_STEAL_NS = 5000,     /* how long a next task waits before a thief */
    FLUSH_EVERY = 4096,       /* tasks between an idle worker's cache flushes */
    NEXT_RECHECK_NS = 50000,  /* a parked thief's look back at a next task */
    NEXT_LOOK_NS = 1000,      /* a spinning thief's looks at next slots */
    RECHECK_MAX_NS = 1000000, /* a parked worker's longest recheck */
    SPARE_BLOCKS = 4,         /* the shared queue's kept when all park */
};

typedef fut__pool_t pool_t;
typedef fut__worker_t worker_t;

static _Thread_local worker_t *self_worker;

worker_t *fut__pool_self(const pool_t *p)
{
    return self_worker && self_worker->pool == p ? self_worker : NULL;
}

/* --- the shared queue ------------------------------------------------ */

/* Counts the pool as backlogged while its queue is long (see core/wait.c:
 * an outside waiter parks sooner behind a long queue). */
static void note_long(int changed)
{
    if (changed)
        atomic_fetch_add_explicit(&fut__exec_backlogged, changed,
                                  memory_order_relaxed);
}

/* True if the shared queue may hold a task (a hint: the look that must
 * not miss one is a parking worker's pop, after its fence; see Parking). */
bool fut__pool_queue_nonempty(pool_t *p)
{
    return fut__segq_nonempty(&p->queue);
}

/* The oldest task from outside, or NULL. */
static fut_t *take_outside(pool_t *p)
{
    int changed;
    fut_t *f = fut__segq_pop(&p->queue, &changed);
    note_long(changed);
    return f;
}

/* --- the idle list (lock held unless said) ---------------------------- */

static void idle_push(pool_t *p, worker_t *w)
{
    w->idle = true;
    w->idle_next = p->idle;
    p->idle = w;
    atomic_fetch_add_explicit(&p->nidle, 1, memory_order_seq_cst);
}

static void idle_remove(pool_t *p, worker_t *w)
{
    if (!w->idle)
        return;
    for (worker_t **pp = &p->idle; *pp; pp = &(*pp)->idle_next) {
        if (*pp == w) {
            *pp = w->idle_next;
            break;
        }
    }
    w->idle = false;
    atomic_fetch_sub_explicit(&p->nidle, 1, memory_order_relaxed);
}

static worker_t *idle_pop(pool_t *p)
{
    worker_t *w = p->idle;
    if (w) {
        p->idle = w->idle_next;
        w->idle = false;
        atomic_fetch_sub_explicit(&p->nidle, 1, memory_order_relaxed);
    }
    return w;
}

/* Lock not held.  Wakes one parked worker, if any. */
void fut__pool_wake_one(pool_t *p)
{
    if (atomic_load_explicit(&p->nidle, memory_order_seq_cst) == 0)
        return;
    pthread_mutex_lock(&p->lock);
    worker_t *w = idle_pop(p);
    pthread_mutex_unlock(&p->lock);
    if (w)
        fut__parker_unpark(w->parker);
}

/* Lock not held.  Unparks under the lock: once a worker is unparked it
 * may push itself back on the idle list, rewriting its idle_next, so the
 * list is walked only while no worker can do that.  (Unparking is a futex
 * wake; this runs at shutdown and when the pool breaks, not per task.) */
void fut__pool_wake_all(pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    worker_t *all = p->idle;
    p->idle = NULL;
    atomic_store(&p->nidle, 0);
    for (worker_t *w = all; w; w = w->idle_next) {
        w->idle = false;
        fut__parker_unpark(w->parker);
    }
    pthread_mutex_unlock(&p->lock);
}

/* --- finding work ----------------------------------------------------- */

/* Takes v's next task for thief self if self has seen it there for
 * NEXT_STEAL_NS (self NULL: at once, for draining). */
static fut_t *steal_next(worker_t *self, worker_t *v)
{
    fut_t *f = atomic_load_explicit(&v->next, memory_order_acquire);
    if (!f)
        return NULL;
    if (self) {
        int64_t now = fut__now();
        /* After the acquire load: at least the count of f's push. */
        uint32_t pushes =
            atomic_load_explicit(&v->next_pushes, memory_order_relaxed);
        if (self->seen_victim != v || self->seen_next != f ||
            self->seen_pushes != pushes) {
            self->seen_victim = v;
            self->seen_next = f;
            self->seen_pushes = pushes;
            self->seen_at = now;
            self->next_waiting = true;
            return NULL;
        }
        if (now - self->seen_at < NEXT_STEAL_NS) {
            self->next_waiting = true; /* park only briefly: see park */
            return NULL;
        }
        self->seen_next = NULL;
    }
    return atomic_compare_exchange_strong(&v->next, &f, NULL) ? f : NULL;
}

/* wait: the last look before parking, which looks at the next slots
 * whenever it last did (it must see a next task to come back for it). */
static fut_t *steal_any(pool_t *p, worker_t *self, bool wait)
{
    size_t n = atomic_load_explicit(&p->used, memory_order_acquire);
    size_t start =
        self ? (self->rng = self->rng * 1103515245u + 12345u) % n : 0;
    for (size_t k = 0; k < n; k++) {
        worker_t *v = &p->workers[(start + k) % n];
        if (v == self)
            continue;
        for (int t = 0; t < STEAL_TRIES; t++) {
            fut_t *f = fut__deque_steal(&v->deque);
            if (f == FUT__DEQUE_EMPTY)
                break;
            if (f != FUT__DEQUE_ABORT)
                return f;
        }
    }
    /* The next slots: a thief may take one only after NEXT_STEAL_NS, so it
     * looks at most every NEXT_LOOK_NS: each look pulls the line the slot's
     * owner writes twice per task (a fiber ping-pong on one worker ran 20%
     * slower while another worker spun looking at it). */
    if (self && !wait) {
        int64_t now = fut__now();
        if (now - self->next_look_at < NEXT_LOOK_NS)
            return NULL;
        self->next_look_at = now;
    }
    for (size_t k = 0; k < n; k++) {
        worker_t *v = &p->workers[(start + k) % n];
        fut_t *f = v == self ? NULL : steal_next(self, v);
        if (f)
            return f;
    }
    return NULL;
}

/* Lock not held.  More outside work is waiting: wake an idle worker to
 * take it (each one woken does the same, so a burst fans out). */
static void wake_for_more(pool_t *p)
{
    if (atomic_load_explicit(&p->nidle, memory_order_seq_cst) != 0 &&
        fut__pool_queue_nonempty(p))
        fut__pool_wake_one(p);
}

/* The next task for worker w, or NULL: its own deque (work it spawned,
 * newest first), then the shared FIFO (outside work, oldest first, so that
 * outside tasks start in submission order whichever worker is free), then
 * the other workers' deques.  wait: the last look before parking (see
 * steal_any). */
static fut_t *find_work(worker_t *w, bool wait)
{
    pool_t *p = w->pool;
    fut_t *f = atomic_load_explicit(&w->next, memory_order_relaxed)
                   ? atomic_exchange(&w->next, NULL)
                   : NULL;
    if (f)
        return f;
    f = fut__deque_take(&w->deque);
    if (f)
        return f;
    f = take_outside(p);
    if (f) {
        wake_for_more(p);
        return f;
    }
    return steal_any(p, w, wait);
}

/* --- running ---------------------------------------------------------- */

/* A task taken out of the queues that did not run had been cancelled while
 * queued: counted then (FUT__CANCEL_TOLD, a zombie until now) or not (a
 * continuation, cancelled before it was handed to us). */
static void account_unrun(pool_t *p, fut_t *f)
{
    if (fut__load(f) & FUT__CANCEL_TOLD)
        atomic_fetch_sub(&p->zombies, 1);
    else
        atomic_fetch_add(&p->cancelled, 1);
}

/* Settles a task taken out of the queues that will not run (broken pool,
 * shutdown) with code, and counts it. */
static void reject_queued(pool_t *p, fut_t *f, int code, const char *message)
{
    if (fut__reject_unstarted(f, code, message))
        atomic_fetch_add(&p->cancelled, 1);
    else
        account_unrun(p, f);
}

void fut__pool_signal_not_full(pool_t *p)
{
    /* A read-modify-write, not a load: it is ordered with the blocked
     * submitter's increment either way.  If it comes first, the submitter's
     * RMW acquires it and sees this worker's `taken` (the queue has room);
     * if it comes after, it sees the submitter and wakes it.  (A fence and a
     * load said the same, but gcc's ThreadSanitizer rejects fences.) */
    if (atomic_fetch_add_explicit(&p->blocked_submitters, 0,
                                  memory_order_acq_rel)) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->not_full);
        pthread_mutex_unlock(&p->lock);
    }
}

fut_t *fut__pool_take_resume(fut_executor_t *ex, fut_t *cur)
{
    worker_t *w = fut__pool_self((pool_t *)(void *)ex);
    /* Only from the task this worker's run_one runs (not from a fiber run
     * on a thread that woke it, or from a drain). */
    if (!w || w->running[w->depth] != cur)
        return NULL;
    fut_t *f = atomic_load_explicit(&w->next, memory_order_relaxed);
    if (!f || !fut__fiber_resumable(f))
        return NULL;
    /* Only a thief can have changed the slot since: it took f. */
    if (atomic_exchange(&w->next, NULL) != f)
        return NULL;
    fut__pool_bump(&w->taken);
    w->running[w->depth] = f;
    return f;
}

static void run_one(worker_t *w, fut_t *f)
{
    pool_t *p = w->pool;
    fut__pool_bump(&w->taken);
    w->running[w->depth] = f;
    int broken = atomic_load_explicit(&p->broken, memory_order_relaxed);
    bool blocking = fut__load(f) & FUT__BLOCKING;
    int r = FUT__NOT_RUN;
    if (broken) {
        reject_queued(p, f, broken,
                      "thread pool broken: a worker initializer failed");
    } else {
        if (blocking)
            fut__pool_blocking(&p->base, +1);
        r = fut__run(f);
        /* A fiber that suspended may have switched straight to the next
         * one (take_resume), which is what came back. */
        f = w->running[w->depth];
        if (r == FUT__RAN)
            fut__pool_bump(&w->completed);
        else if (r == FUT__NOT_RUN)
            account_unrun(p, f);
        if (blocking)
            fut__pool_blocking(&p->base, -1);
    }
    w->running[w->depth] = NULL; /* before the release: see pool.c, reap */
    fut__run_done(f, r);
    if (p->max_queued)
        fut__pool_signal_not_full(p);
}

/* A worker about to park that is the last awake one gives back the
 * shared queue's spare blocks but SPARE_BLOCKS (see "Spare blocks"). */
static void give_back_spare(pool_t *p)
{
    fut__segq_block_t *spare = NULL;
    pthread_mutex_lock(&p->lock);
    if (--p->awake == 0)
        spare = fut__segq_detach_spare(&p->queue, SPARE_BLOCKS);
    pthread_mutex_unlock(&p->lock);
    fut__segq_free_chain(&p->queue, spare); /* no lock: the allocator's */
}

/* Parks w until woken or deadline, unless work or an exit shows up after
 * it registered as idle.  ready (may be NULL) is a waiter whose condition
 * also ends the wait.  Returns a task found on the second look, or NULL. */
static fut_t *park(worker_t *w, fut__waiter_t *ready, int64_t deadline)
{
    pool_t *p = w->pool;
    /* Hand the cache of free blocks back now and then (always, for fut's
     * own pools): the flush is also where a burst's free slabs go back to
     * malloc beyond a watermark (util/alloc.c). */
    uint64_t taken = atomic_load_explicit(&w->taken, memory_order_relaxed);
    if (p->flush_idle || taken - w->flushed_at >= FLUSH_EVERY) {
        w->flushed_at = taken;
        fut__alloc_flush();
    }
    pthread_mutex_lock(&p->lock);
    idle_push(p, w);
    uint32_t seen = fut__parker_prepare(w->parker);
    /* The watcher: one parked worker at a time looks back while another is
     * busy (see "Next" and fut__pool_push). */
    w->watching = atomic_load(&p->nidle) < p->alive &&
                  !atomic_load_explicit(&p->watching, memory_order_relaxed);
    if (w->watching)
        atomic_store_explicit(&p->watching, true, memory_order_relaxed);
    pthread_mutex_unlock(&p->lock);
    /* The heavy side of the submitters' fence (see Parking); if it failed,
     * a task pushed meanwhile may be missed: park briefly. */
    bool fenced = fut__fence_heavy();
    w->next_waiting = false;
    fut_t *f = find_work(w, true);
    int64_t recheck = -1;
    if (w->next_waiting) {
        /* Another worker's next task, not ours to take yet: come back for
         * it (nobody wakes us for it), in case its worker stays busy. */
        recheck = NEXT_RECHECK_NS;
    } else if (w->watching) {
        /* A busy worker may fill its next slot without waking anyone: look
         * again later, less often each time nothing turns up. */
        w->recheck = w->recheck ? w->recheck * 2 : NEXT_RECHECK_NS;
        if (w->recheck > RECHECK_MAX_NS)
            w->recheck = RECHECK_MAX_NS;
        recheck = w->recheck;
    } else {
        w->recheck = 0; /* not watching: a later watch starts afresh */
    }
    if (!fenced)
        recheck = NEXT_RECHECK_NS;
    if (recheck >= 0) {
        int64_t soon = fut__now() + recheck;
        if (deadline < 0 || deadline > soon)
            deadline = soon;
    }
    bool sleep =
        !f && !atomic_load(&p->closed) && !(ready && ready->ready(ready));
    if (sleep) {
        give_back_spare(p);
        fut__parker_park(w->parker, seen, deadline);
    }
    pthread_mutex_lock(&p->lock);
    if (sleep)
        p->awake++;    /* before any look at the queue: see give_back_spare */
    idle_remove(p, w); /* still listed unless a submitter woke us */
    if (w->watching) {
        w->watching = false;
        atomic_store_explicit(&p->watching, false, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->lock);
    return f;
}

/* Runs w's work until the pool closes (false) or w, an extra worker,
 * retires after its keep-alive (true). */
static bool run_loop(worker_t *w)
{
    pool_t *p = w->pool;
    for (;;) {
        fut_t *f = NULL;
        /* Back from a recheck (see park): one look, not a spin. */
        int spins = w->recheck ? 1 : SPIN_ROUNDS;
        for (int spin = 0; spin < spins && !f; spin++) {
            f = find_work(w, false);
            if (!f && spin >= SPIN_ROUNDS / 2)
                sched_yield();
            else if (!f) /* a growing pause between the first looks */
                for (int k = 0; k < 1 << (spin / 4); k++)
                    fut__cpu_relax();
        }
        if (!f && atomic_load(&p->closed)) {
            /* Closed: no submit is in flight any more, but one may have
             * pushed since the looks above.  The last look before leaving
             * sees every task pushed (each was stored before its submitter
             * left), so nothing queued is left. */
            f = find_work(w, true);
            if (!f)
                return false;
        }
        if (!f) {
            int64_t deadline = w->extra ? fut__deadline(p->keep_alive) : -1;
            f = park(w, NULL, deadline);
            if (!f && w->extra && fut__expired(deadline) && fut__pool_retire(w))
                return true;
        }
        if (f) {
            w->recheck = 0;
            run_one(w, f);
        }
    }
}

static void break_pool(pool_t *p, int code)
{
    int none = 0;
    atomic_compare_exchange_strong(&p->broken, &none, code);
    /* Queued tasks are rejected by the workers as they take them (run_one);
     * wake them all so they do. */
    fut__pool_wake_all(p);
}

void *fut__pool_worker_main(void *arg)
{
    worker_t *w = arg;
    pool_t *p = w->pool;
    /* "<prefix>-<index>", cut to the 15 bytes a thread name can hold. */
    char name[64];
    snprintf(name, sizeof name, "%s-%zu", p->name, w->index);
    name[FUT__POOL_NAME_MAX] = '\0';
    fut__thread_name(name);
    self_worker = w;
    fut__exec_enter(&p->base);
    fut__parker_adopt(w->parker);

    int rc = p->init ? p->init(p->arg) : 0;
    if (rc != 0)
        break_pool(p, rc > 0 ? rc : EINVAL);
    pthread_mutex_lock(&p->lock);
    p->awake++;
    pthread_mutex_unlock(&p->lock);
    bool retired = run_loop(w); /* a broken pool's rejects what it finds */
    if (rc == 0 && p->exit_fn)
        p->exit_fn(p->arg);
    fut__trampoline_flush();
    self_worker = NULL;
    fut__exec_enter(NULL);
    pthread_mutex_lock(&p->lock);
    p->alive--;
    p->awake--;
    if (retired)
        p->retiring--;
    w->live = false;
    pthread_cond_broadcast(&p->exited);
    pthread_mutex_unlock(&p->lock);
    /* The thread's reference: the last one out of a pool freed from its
     * own worker frees the pool here, so nothing after may touch it. */
    fut__exec_release(&p->base);
    return NULL;
}

/* --- help while waiting (rule 7) -------------------------------------- */

static int help_wait(worker_t *w, fut__waiter_t *wt, int64_t deadline)
{
    bool armed = false, poll = false;
    int64_t nap = 1000;
    for (;;) {
        if (wt->ready(wt))
            return 0;
        if (fut__expired(deadline))
            return ETIMEDOUT;
        fut_t *t = find_work(w, false);
        if (t) {
            w->depth++;
            run_one(w, t);
            w->depth--;
            continue;
        }
        if (!armed) {
            int rc = wt->arm(wt, w->parker);
            if (rc == EALREADY)
                return 0;
            poll = rc == ENOMEM; /* no memory: poll instead of parking */
            armed = true;
            continue;
        }
        if (poll) {
            fut__nap(&nap, deadline);
            continue;
        }
        t = park(w, wt, deadline);
        if (t) {
            w->depth++;
            run_one(w, t);
            w->depth--;
        }
    }
}

bool fut__pool_help_wait(fut_executor_t *ex, fut__waiter_t *wt,
                         int64_t deadline, int *rc)
{
    worker_t *w = fut__pool_self((pool_t *)(void *)ex);
    if (!w || w->depth >= HELP_DEPTH_MAX || atomic_load(&w->pool->forked))
        return false;
    *rc = help_wait(w, wt, deadline);
    return true;
}

/* Takes every queued task out (the shared queue and all deques).  In a
 * fork() child the caller is the only thread, and a submitter that was
 * stopped inside its push left a hole the queue steps over. */
void fut__pool_drain(pool_t *p, int code, const char *message)
{
    fut_t *f;
    bool alone = atomic_load(&p->forked);
    fut__segq_guest_enter(&p->queue); /* no spare blocks go meanwhile */
    while ((f = alone ? fut__segq_pop_alone(&p->queue) : take_outside(p)) !=
               NULL ||
           (f = steal_any(p, NULL, true)) != NULL) {
        atomic_fetch_add(&p->drained, 1);
        if ((fut__load(f) & FUT__STATE_MASK) != FUT_RUNNING) {
            reject_queued(p, f, code, message);
        } else if (atomic_load(&p->forked)) {
            /* A fiber woken again, in a fork child: its thread is gone,
             * as a running task's is (pool.c, reap). */
            fut__fail_static(f, ESHUTDOWN, message);
        } else {
            /* A fiber woken again is no pending task: it carries on here,
             * as it does when a shut-down pool refuses its wake (rejecting
             * it would find it started and drop it, never settled). */
            fut__run_done(f, fut__run(f));
            continue;
        }
        fut_release(f);
    }
    fut__segq_guest_leave(&p->queue);
}

int fut__pool_push(pool_t *p, fut_t *f, bool back)
{
    worker_t *own = back ? NULL : fut__pool_self(p);
    fut_t *mine = f;
    if (own) {
        /* The new task runs next here; the one it displaces is stealable.
         * Counted before it is published (steal_next). */
        atomic_store_explicit(
            &own->next_pushes,
            atomic_load_explicit(&own->next_pushes, memory_order_relaxed) + 1,
            memory_order_relaxed);
        f = atomic_exchange(&own->next, f);
        if (!f) {
            /* No wake while a parked worker watches: see "Next". */
            if (atomic_load_explicit(&p->nidle, memory_order_seq_cst) &&
                !atomic_load_explicit(&p->watching, memory_order_relaxed))
                fut__pool_wake_one(p);
            return 0;
        }
    }
    if (!own || !fut__deque_push(&own->deque, f)) {
        int changed;
        if (fut__segq_push(&p->queue, f, &changed) != 0) {
            /* The queue could not grow.  A displaced task goes back to
             * the next slot in place of the new one, which is refused (a
             * thief may have taken the new one meanwhile: then it is
             * accepted, and the displaced one stays next). */
            if (own && atomic_exchange(&own->next, f) != mine)
                return 0;
            return ENOMEM;
        }
        note_long(changed);
    }
    fut__pool_wake_one(p);
    return 0;
}

/*
 * fuzz_ops.c - a libFuzzer target: the input is a program of API calls on
 * a few handles (promise slots, future slots), interpreted byte by byte.
 * It asserts what fut.h documents: functions that return a future never
 * return NULL, int results are among the documented codes, fut_cancel
 * returning true leaves the future CANCELLED, zero-timeout queries agree
 * with each other, and every value destructor, free_arg and done-callback
 * runs exactly once.  At the end of each input everything is released and
 * every executor freed, so ASan's leak check sees any object the library
 * lost.
 *
 * The first byte picks the executors: bit 0 adds a one-worker pool (the
 * run is then no longer deterministic), otherwise only the inline and loop
 * executors run work, on this thread.
 *
 * FUZZ_AVOID_KNOWN_DEFECTS=1 keeps out the operations that hit the
 * defects the fuzzer found first (a CANCEL_PENDING shutdown that rejected
 * a queued _on continuation, a pool shut down while a task was being
 * queued, an executor freed while a dispatcher was about to submit a
 * continuation just cancelled).  They are fixed, so the default (0) runs
 * them; fuzz/crashes/README.md describes what it found.
 */
#include "fut.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FUZZ_AVOID_KNOWN_DEFECTS
#define FUZZ_AVOID_KNOWN_DEFECTS 0
#endif

/* A failed invariant: say which, then abort so libFuzzer saves the input. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_ops.c:%d: invariant failed: %s\n", __LINE__, \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

enum { NP = 4, NF = 8, MAXN = 4 };

/* Counters of one input; checked at its end. */
static struct {
    atomic_int values_made, values_freed;
    atomic_int args_made, args_freed;
    atomic_int cbs_made, cbs_ran, cb_args_freed;
    atomic_int tracked, settled; /* futures made, and their done-callbacks */
} ctr;

/* ------------------------------------------------------------- values */

#define VALUE_MAGIC 0x76616c75u

typedef struct value {
    unsigned magic;
    int n;
} value_t;

static void value_free(void *p)
{
    value_t *v = p;
    CHECK(v != NULL && v->magic == VALUE_MAGIC);
    v->magic = 0;
    free(v);
    atomic_fetch_add(&ctr.values_freed, 1);
}

static value_t *value_new(int n)
{
    value_t *v = malloc(sizeof *v);
    if (v == NULL)
        abort();
    v->magic = VALUE_MAGIC;
    v->n = n;
    atomic_fetch_add(&ctr.values_made, 1);
    return v;
}

/* --------------------------------------------------- tasks, handlers */

typedef struct arg {
    unsigned magic;
    int mode;
    int code;
    fut_t *adopt; /* a reference, consumed by fut_adopt or by arg_free */
} arg_t;

#define ARG_MAGIC 0x61726775u

static arg_t *arg_new(int mode, int code, fut_t *adopt)
{
    arg_t *a = malloc(sizeof *a);
    if (a == NULL)
        abort();
    a->magic = ARG_MAGIC;
    a->mode = mode;
    a->code = code;
    a->adopt = adopt;
    atomic_fetch_add(&ctr.args_made, 1);
    return a;
}

static void arg_free(void *p)
{
    arg_t *a = p;
    CHECK(a != NULL && a->magic == ARG_MAGIC);
    a->magic = 0;
    fut_release(a->adopt);
    free(a);
    atomic_fetch_add(&ctr.args_freed, 1);
}

static void *act(fut_ctx_t *ctx, arg_t *a)
{
    CHECK(a->magic == ARG_MAGIC);
    switch (a->mode % 6) {
    case 0:
        fut_set_free(ctx, value_free);
        return value_new(a->code);
    case 1:
        /* A code <= 0 must turn into EINVAL. */
        return fut_fail(ctx, a->code, "fails with %d", a->code);
    case 2: /* fail, then return a value: the library destroys it */
        fut_fail(ctx, a->code > 0 ? a->code : EIO, NULL);
        fut_set_free(ctx, value_free);
        return value_new(a->code);
    case 3: {
        fut_t *x = a->adopt;
        a->adopt = NULL;
        return fut_adopt(ctx, x); /* NULL: rejects EINVAL */
    }
    case 4:
        if (fut_cancel_requested(ctx))
            return fut_fail(ctx, ECANCELED, NULL);
        return NULL;
    default:
        fut_progress(ctx, NULL);
        return NULL;
    }
}

static void *task_fn(fut_ctx_t *ctx, void *p)
{
    return act(ctx, p);
}

static void *then_fn(fut_ctx_t *ctx, void *value, void *p)
{
    (void)value;
    return act(ctx, p);
}

static void *catch_fn(fut_ctx_t *ctx, const fut_error_t *err, void *p)
{
    CHECK(err != NULL && err->code > 0);
    return act(ctx, p);
}

static void finally_fn(fut_t *settled, void *p)
{
    arg_t *a = p;
    CHECK(a->magic == ARG_MAGIC);
    CHECK(fut_done(settled));
}

static void *map_fn(fut_ctx_t *ctx, void *item, void *p)
{
    (void)p;
    if ((uintptr_t)item % 3 == 2)
        return fut_fail(ctx, EIO, "item %d", (int)(uintptr_t)item);
    fut_set_free(ctx, value_free);
    return value_new((int)(uintptr_t)item);
}

/* ---------------------------------------------------- done-callbacks */

typedef struct cb {
    unsigned magic;
    atomic_int ran;
} cb_t;

static void cb_fn(fut_t *f, void *p)
{
    cb_t *c = p;
    CHECK(c->magic == ARG_MAGIC);
    CHECK(fut_done(f));
    CHECK(atomic_fetch_add(&c->ran, 1) == 0);
    atomic_fetch_add(&ctr.cbs_ran, 1);
}

static void cb_free(void *p)
{
    cb_t *c = p;
    CHECK(c->magic == ARG_MAGIC);
    c->magic = 0;
    free(c);
    atomic_fetch_add(&ctr.cb_args_freed, 1);
}

/* Every future the input makes is tracked: its settling is counted. */
static void settled_cb(fut_t *f, void *p)
{
    (void)p;
    CHECK(fut_done(f));
    fut_state_t st = fut_state(f);
    const fut_error_t *e = fut_error(f);
    CHECK(st >= FUT_FULFILLED && st <= FUT_CANCELLED);
    if (st == FUT_FULFILLED)
        CHECK(e == NULL);
    else
        CHECK(e != NULL && e->code > 0 &&
              (st == FUT_CANCELLED) == (e->code == ECANCELED));
    atomic_fetch_add(&ctr.settled, 1);
}

static void noop_cb(fut_t *f, void *p)
{
    (void)f;
    (void)p;
}

static void progress_cb(fut_t *f, void *progress, void *p)
{
    (void)f;
    (void)progress;
    (void)p;
}

/* ------------------------------------------------------ interpreter */

typedef struct vm {
    const uint8_t *in;
    size_t len, at;
    fut_promise_t *p[NP];
    fut_t *f[NF];
    fut_executor_t *pool, *loop;
    bool loop_shut;
} vm_t;

static unsigned next(vm_t *m)
{
    return m->at < m->len ? m->in[m->at++] : 0;
}

static fut_t *track(fut_t *f)
{
    CHECK(f != NULL);
    atomic_fetch_add(&ctr.tracked, 1);
    CHECK(fut_on_done(f, settled_cb, NULL) == 0);
    return f;
}

static void put(vm_t *m, unsigned slot, fut_t *f)
{
    slot %= NF;
    fut_release(m->f[slot]);
    m->f[slot] = f;
}

static fut_executor_t *pick_ex(vm_t *m, unsigned b, bool allow_null)
{
    switch (b % 4) {
    case 0:
        return fut_inline_executor();
    case 1:
        return m->loop;
    case 2:
        return m->pool ? m->pool : m->loop;
    default:
        return allow_null ? NULL : fut_inline_executor();
    }
}

static int pick_code(unsigned b)
{
    static const int codes[] = {EIO,       ENOENT,    0,     -3,
                                ECANCELED, ETIMEDOUT, EPIPE, ERANGE};
    return codes[b % 8];
}

/* Zero-timeout queries on f agree with each other. */
static void query(fut_t *f)
{
    fut_state_t before = fut_state(f);
    int wrc = fut_wait(f, 0);
    CHECK(wrc == 0 || wrc == ETIMEDOUT);
    fut_state_t mid = fut_state(f);
    void *v = NULL;
    int grc = fut_get(f, 0, &v);
    fut_state_t st = fut_state(f);
    if (before >= FUT_FULFILLED)
        CHECK(wrc == 0 && st == before);
    if (wrc == 0)
        CHECK(mid >= FUT_FULFILLED);
    if (st >= FUT_FULFILLED)
        CHECK(fut_done(f));
    if (mid < FUT_FULFILLED && grc == FUT_TIMEDOUT)
        return;
    const fut_error_t *e = fut_error(f);
    if (grc == 0)
        CHECK(st == FUT_FULFILLED && e == NULL);
    else
        CHECK(e != NULL && e->code == grc && st != FUT_FULFILLED &&
              (st == FUT_CANCELLED) == (grc == ECANCELED));
}

static void op_then(vm_t *m)
{
    unsigned b = next(m), s = next(m), x = next(m);
    fut_t *in = m->f[s % NF]; /* consumed, may be NULL */
    m->f[s % NF] = NULL;
    fut_executor_t *ex = pick_ex(m, b >> 3, false);
    int mode = (int)(x % 6);
    fut_t *d;
    arg_t *a = (b % 8) == 7 ? NULL : arg_new(mode, pick_code(x >> 3), NULL);
    switch (b % 8) {
    case 0:
        d = fut_then(in, then_fn, a);
        break;
    case 1:
        d = fut_catch(in, catch_fn, a);
        break;
    case 2:
        d = fut_then_catch(in, then_fn, catch_fn, a);
        break;
    case 3:
        d = fut_finally(in, finally_fn, a);
        break;
    case 4:
        d = fut_then_on(ex, in, then_fn, a);
        break;
    case 5:
        d = fut_catch_on(ex, in, catch_fn, a);
        break;
    case 6:
        d = fut_finally_on(ex, in, finally_fn, a);
        break;
    default: {
        fut_t *adopt = NULL;
        if (mode == 3)
            adopt = fut_retain(m->f[(x >> 3) % NF]);
        d = fut_then_ex(pick_ex(m, b >> 3, true), in,
                        (x & 0x40) ? NULL : then_fn,
                        (x & 0x80) ? NULL : catch_fn,
                        arg_new(mode, pick_code(x >> 3), adopt), arg_free);
        put(m, s, track(d));
        return;
    }
    }
    /* The plain forms name no free_arg.  The handler runs before the
     * derived future settles, or never, so a done-callback on the derived
     * future frees the argument. */
    track(d);
    CHECK(fut_on_done_ex(d, noop_cb, a, arg_free) == 0);
    put(m, s, d);
}

static void op_when(vm_t *m)
{
    unsigned b = next(m), c = next(m);
    size_t n = b % (MAXN + 1);
    fut_t *fs[MAXN];
    for (size_t i = 0; i < n; i++) {
        unsigned s = next(m);
        /* Moved or shared: a moved input may be cancelled as a loser. */
        fut_t *f = m->f[s % NF];
        if (s & 0x80) {
            m->f[s % NF] = NULL;
            fs[i] = f;
        } else {
            fs[i] = fut_retain(f);
        }
    }
    int kind = (int)(c % 6); /* 5 is not a kind: EINVAL */
    size_t k = (c >> 3) % (MAXN + 2);
    unsigned flags = (c & 0x80) ? FUT_CANCEL_LOSERS : 0;
    fut_t *r = fut_when_ex(kind, n ? fs : NULL, n, k, flags);
    CHECK(r != NULL);
    if (kind == 5 || (kind == FUT_WHEN_SOME && k > n) ||
        (n == 0 && (kind == FUT_WHEN_ANY || kind == FUT_WHEN_FIRST)))
        CHECK(fut_state(r) == FUT_REJECTED && fut_error(r)->code == EINVAL);
    if (n == 0 && (kind == FUT_WHEN_ALL || kind == FUT_WHEN_ALL_SETTLED))
        CHECK(fut_state(r) == FUT_FULFILLED);
    if (kind == FUT_WHEN_ALL_SETTLED && fut_state(r) == FUT_FULFILLED &&
        n > 0) {
        fut_t **all = NULL;
        CHECK(fut_get(r, 0, (void **)&all) == 0 && all != NULL);
        for (size_t i = 0; i < n; i++)
            CHECK(fut_done(all[i]));
    }
    put(m, c >> 1, track(r));
}

static void op_task(vm_t *m)
{
    unsigned b = next(m), x = next(m), s = next(m);
    int mode = (int)(x % 6);
    fut_t *adopt = mode == 3 ? fut_retain(m->f[(x >> 3) % NF]) : NULL;
    fut_executor_t *ex = pick_ex(m, b, false);
    fut_t *f =
        fut_submit_ex(ex, task_fn, arg_new(mode, pick_code(x >> 3), adopt),
                      arg_free, (b & 4) ? FUT_NOWAIT : 0);
    put(m, s, track(f));
}

static void op_settle(vm_t *m)
{
    unsigned b = next(m);
    fut_promise_t *p = m->p[(b >> 2) % NP];
    int rc;
    switch (b % 4) {
    case 0: {
        value_t *v = value_new((int)b);
        rc = fut_resolve(p, v, value_free);
        /* Refused (EALREADY, or EINVAL for no promise): the value is
         * destroyed at once, which the counters at the end check. */
        if (p == NULL)
            CHECK(rc == EINVAL);
        else
            CHECK(rc == 0 || rc == EALREADY);
        break;
    }
    case 1: {
        int code = pick_code(b >> 4);
        rc = fut_reject(p, code, "rejected %u", b);
        if (p == NULL || code <= 0)
            CHECK(rc == EINVAL);
        else
            CHECK(rc == 0 || rc == EALREADY);
        break;
    }
    case 2:
        rc = fut_notify(p, NULL);
        CHECK(rc == 0 || rc == EALREADY || (p == NULL && rc == EINVAL));
        break;
    default:
        fut_promise_release(p);
        m->p[(b >> 2) % NP] = NULL;
        break;
    }
}

static void op_misc(vm_t *m)
{
    unsigned b = next(m), s = next(m);
    fut_t *f = m->f[s % NF];
    switch (b % 16) {
    case 0: /* cancel */
        if (fut_cancel(f))
            CHECK(fut_state(f) == FUT_CANCELLED);
        else if (f != NULL)
            CHECK(fut_state(f) != FUT_PENDING);
        break;
    case 1:
        if (f != NULL)
            query(f);
        else
            CHECK(fut_wait(NULL, 0) == EINVAL &&
                  fut_get(NULL, 0, NULL) == EINVAL &&
                  fut_state(NULL) == FUT_REJECTED && fut_done(NULL) &&
                  fut_error(NULL) == NULL && !fut_cancel(NULL));
        break;
    case 2:
        put(m, s, NULL);
        break;
    case 3:
        put(m, s >> 3, fut_retain(f));
        break;
    case 4: {
        cb_t *c = malloc(sizeof *c);
        if (c == NULL)
            abort();
        c->magic = ARG_MAGIC;
        atomic_init(&c->ran, 0);
        atomic_fetch_add(&ctr.cbs_made, 1);
        int rc = fut_on_done_ex(f, cb_fn, c, cb_free);
        if (f == NULL) {
            /* free_arg ran before the call returned. */
            CHECK(rc == EINVAL);
            atomic_fetch_add(&ctr.cbs_ran, 1);
        } else {
            CHECK(rc == 0);
        }
        break;
    }
    case 5: {
        int rc = fut_on_progress(f, progress_cb, NULL);
        CHECK(rc == 0 || rc == EALREADY || (f == NULL && rc == EINVAL));
        break;
    }
    case 6: {
        int ns = (int)(s >> 3) * 20000;
        if (b & 0x10)
            put(m, s, track(fut_delay(ns)));
        else {
            m->f[s % NF] = NULL;
            fut_t *w = track(fut_within(f, ns));
            if (f == NULL)
                CHECK(fut_state(w) == FUT_REJECTED &&
                      fut_error(w)->code == EINVAL);
            put(m, s, w);
        }
        break;
    }
    case 7:
        if (b & 0x10)
            put(m, s, track(fut_resolved(value_new((int)s), value_free)));
        else
            put(m, s, track(fut_rejected(pick_code(s >> 3), NULL)));
        break;
    case 8: {
        fut_promise_t **pp = &m->p[(s >> 3) % NP];
        if (*pp == NULL) {
            *pp = fut_promise_new();
            CHECK(*pp != NULL);
        }
        put(m, s, track(fut_promise_future(*pp)));
        break;
    }
    case 9:
        fut_loop_run_pending(m->loop);
        break;
    case 10: {
        fut_t *fs[NF];
        size_t n = 0;
        for (size_t i = 0; i < NF; i++)
            if (m->f[i])
                fs[n++] = m->f[i];
        size_t done = 99;
        int how = (int)(s % 5);
        int rc = fut_wait_for(fs, n, 0, how, &done);
        if (how < 1 || how > 3)
            CHECK(rc == EINVAL);
        else
            CHECK((rc == 0 || rc == ETIMEDOUT) && done <= n);
        break;
    }
    case 11: {
        fut_t *fs[NF];
        size_t n = 0;
        for (size_t i = 0; i < NF; i++)
            if (m->f[i])
                fs[n++] = m->f[i];
        fut_iter_t *it = fut_as_completed(fs, n);
        CHECK(it != NULL);
        fut_t *g;
        size_t idx, seen = 0;
        int rc;
        while ((rc = fut_iter_next(it, 0, &g, &idx)) == 0) {
            CHECK(idx < n && g == fs[idx] && fut_done(g));
            seen++;
        }
        CHECK(rc == ETIMEDOUT || (rc == ENOENT && seen == n));
        fut_iter_free(it);
        break;
    }
    case 12: {
        void *items[3] = {(void *)1, (void *)2, (void *)3};
        size_t n = s % 4;
        fut_executor_t *ex = pick_ex(m, s >> 2, false);
        put(m, s >> 4,
            track(fut_map(ex, map_fn, items, n, (s >> 5) % 3, NULL)));
        break;
    }
    case 13: {
        fut_stats_t st;
        CHECK(fut_executor_stats(m->pool ? m->pool : m->loop, &st) == 0);
        CHECK(fut_executor_stats(NULL, &st) == EINVAL);
        break;
    }
    case 14: {
        /* A plain loop shutdown: queued work still runs when drained.  The
         * known defects: CANCEL_PENDING calls a queued _on continuation's
         * argument as a function; a pool shut down right after a task was
         * queued may never run it. */
        unsigned flags = 0;
        if (!FUZZ_AVOID_KNOWN_DEFECTS && (s & 1))
            flags = FUT_SHUTDOWN_CANCEL_PENDING;
        if (!FUZZ_AVOID_KNOWN_DEFECTS && (s & 2) && m->pool != NULL)
            CHECK(fut_executor_shutdown(m->pool, flags) == 0);
        else if (!m->loop_shut)
            CHECK(fut_executor_shutdown(m->loop, flags) == 0);
        m->loop_shut = true;
        break;
    }
    default:
        /* Bad arguments: rejected EINVAL, inputs consumed. */
        CHECK(fut_executor_shutdown(NULL, 0) == EINVAL);
        put(m, s, track(fut_then(NULL, then_fn, NULL)));
        CHECK(fut_state(m->f[s % NF]) == FUT_REJECTED);
        put(m, s >> 3, track(fut_submit(NULL, task_fn, NULL)));
        CHECK(fut_error(m->f[(s >> 3) % NF])->code == EINVAL);
        break;
    }
}

/* Frees an input's executors.  Known defect: a thread that settles the
 * input of an _on continuation may read the continuation as pending, lose
 * the CPU while this thread cancels it (every future is then settled) and
 * frees the executor, and then submit to the freed executor.  The threads
 * other than this one that settle futures here are the pool's worker and
 * the timer thread.  Avoiding the defect, this waits for a zero delay,
 * which fires after every earlier fire of the timer thread has finished,
 * and frees the pool (joining its worker) before the loop. */
static void free_executors(fut_executor_t *loop, fut_executor_t *pool)
{
    if (FUZZ_AVOID_KNOWN_DEFECTS) {
        fut_t *quiet = fut_delay(0);
        CHECK(fut_wait(quiet, FUT_FOREVER) == 0);
        fut_release(quiet);
    }
    fut_executor_free(pool);
    fut_executor_free(loop);
}

static bool balanced(void)
{
    return atomic_load(&ctr.values_freed) == atomic_load(&ctr.values_made) &&
           atomic_load(&ctr.args_freed) == atomic_load(&ctr.args_made) &&
           atomic_load(&ctr.cbs_ran) == atomic_load(&ctr.cbs_made) &&
           atomic_load(&ctr.cb_args_freed) == atomic_load(&ctr.cbs_made);
}

/* Runs everything to the end: promises break, the loop drains, every
 * tracked future settles; then all is released and freed, and the
 * counters must balance. */
static void finish(vm_t *m)
{
    for (int i = 0; i < NP; i++)
        fut_promise_release(m->p[i]);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&ctr.settled) < atomic_load(&ctr.tracked)) {
        fut_loop_run_pending(m->loop);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10) {
            fprintf(stderr, "fuzz_ops: %d of %d futures never settled\n",
                    atomic_load(&ctr.tracked) - atomic_load(&ctr.settled),
                    atomic_load(&ctr.tracked));
            abort();
        }
        sched_yield();
    }
    for (int i = 0; i < NF; i++)
        fut_release(m->f[i]);
    while (fut_loop_run_pending(m->loop) > 0) {
    }
    free_executors(m->loop, m->pool);
    fut_executor_free(fut_inline_executor()); /* does nothing */
    /* The timer thread may still be running the callbacks after ours, or
     * hold a last reference, for a moment. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!balanced()) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            break;
        sched_yield();
    }
    CHECK(atomic_load(&ctr.values_freed) == atomic_load(&ctr.values_made));
    CHECK(atomic_load(&ctr.args_freed) == atomic_load(&ctr.args_made));
    CHECK(atomic_load(&ctr.cbs_ran) == atomic_load(&ctr.cbs_made));
    CHECK(atomic_load(&ctr.cb_args_freed) == atomic_load(&ctr.cbs_made));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&ctr, 0, sizeof ctr);
    vm_t m = {.in = data, .len = size};
    unsigned cfg = next(&m);
    CHECK(fut_loop_new(&m.loop) == 0);
    if (cfg & 1) {
        fut_pool_config_t pc = {.threads = 1};
        CHECK(fut_pool_new(&pc, &m.pool) == 0);
    }
    for (int i = 0; i < NP; i++) {
        m.p[i] = fut_promise_new();
        CHECK(m.p[i] != NULL);
        m.f[i] = track(fut_promise_future(m.p[i]));
    }
    while (m.at < m.len) {
        switch (next(&m) % 5) {
        case 0:
            op_then(&m);
            break;
        case 1:
            op_when(&m);
            break;
        case 2:
            op_task(&m);
            break;
        case 3:
            op_settle(&m);
            break;
        default:
            op_misc(&m);
            break;
        }
    }
    finish(&m);
    return 0;
}

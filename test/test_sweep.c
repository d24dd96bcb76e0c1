/*
 * test_sweep.c - the allocation-failure sweep over every public function
 * family.
 *
 * Each case runs one scenario again and again under a counting allocator
 * installed with fut_set_allocator.  Pass "exactly" fails only the Nth
 * allocation; pass "from" fails the Nth and every later one.  N runs 1, 2,
 * 3, ... until a run in which no allocation was failed (the scenario then
 * needed fewer than N), in both passes.  After every run the sweep checks:
 *
 *  - every API call returned a result fut.h documents (a future-returning
 *    function never returns NULL, an int function returns 0 or one of the
 *    codes its comment lists, ENOMEM is reported only when an allocation
 *    failed);
 *  - every value destructor, free_arg, done callback, progress listener
 *    and handler ran exactly once, or never where fut.h says so;
 *  - nothing leaked: once the scenario released everything and
 *    fut_set_allocator(NULL) flushed the caches, every block the counting
 *    allocator handed out in this run came back, with the size it was asked
 *    for, and nothing was freed through it that it did not hand out in this
 *    same run.
 *
 * Pools are created and freed inside the scenario, after the counting
 * allocator was installed, because fut.h allows installing an allocator
 * only while no other thread that used fut is alive (a pool's workers hand
 * their caches back when they exit in fut_executor_free).
 *
 * Checks inside a run do not stop the run: they are recorded, the sweep
 * goes on to the next N, and the case fails at its end with the list of
 * failed checks (the first few in the Check message, all on stderr).  So a
 * case that fails shows every N at which it fails, not just the first.
 * Callbacks that run on other threads only count in atomics; the test
 * thread compares the counts afterwards.
 */
#include "test_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ counting allocator */

enum { NBUCKETS = 4096 };

/* One block handed out, with the run that allocated it. */
typedef struct block {
    void *p;
    size_t size;
    long gen;
    const char *scenario;
    long n;
    const char *mode;
    struct block *next;
} block_t;

static struct {
    pthread_mutex_t mu;
    block_t *buckets[NBUCKETS];
    long gen;  /* the current run (each installation is one run) */
    long live; /* blocks of this run not yet freed */
    long live_bytes;
    long foreign;  /* frees of pointers the allocator never handed out */
    long stale;    /* frees of blocks an earlier run handed out */
    long mismatch; /* frees whose size differs from the one asked for */
    long bad_ctx;  /* calls without our ctx */
    char stale_what[200];
    const char *scenario; /* the run, for the records of its blocks */
    long n;
    const char *mode;
    unsigned rng;    /* random failures: xorshift state, 0: off */
    unsigned one_in; /* random failures: each call fails with 1/one_in */
    atomic_long calls;
    atomic_long fail_at; /* this call fails, and with fail_from every later */
    atomic_int fail_from;
    atomic_int failed; /* some call failed */
} A = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The run being swept, for messages and block records. */
static struct {
    const char *scenario;
    long n;             /* the failing allocation, or the random run */
    const char *mode;   /* "exactly", "from" or "random" */
    int nfail;          /* failed checks over the whole sweep */
    char summary[3000]; /* the first few of them */
    size_t len;
    bool saw_enomem; /* the scenario saw ENOMEM in this run */
} R;

static int ctx_token;

static size_t bucket_of(const void *p)
{
    return ((uintptr_t)p >> 4) % NBUCKETS;
}

static void *count_alloc(size_t size, void *ctx)
{
    long n = atomic_fetch_add(&A.calls, 1) + 1;
    long at = atomic_load(&A.fail_at);
    bool fail = at > 0 && (n == at || (atomic_load(&A.fail_from) && n > at));
    pthread_mutex_lock(&A.mu);
    if (ctx != &ctx_token)
        A.bad_ctx++;
    if (A.one_in > 0)
        fail = fut_test_rand(&A.rng) % A.one_in == 0;
    pthread_mutex_unlock(&A.mu);
    if (fail) {
        atomic_store(&A.failed, 1);
        return NULL;
    }
    /* The block itself is a plain malloc block, so that a block the
     * library frees later through the default allocator (free) is freed
     * correctly; the record lives beside it. */
    void *p = malloc(size ? size : 1);
    block_t *b = malloc(sizeof *b);
    if (p == NULL || b == NULL) {
        free(p);
        free(b);
        return NULL;
    }
    pthread_mutex_lock(&A.mu);
    /* malloc handed out p again, so an old record of p is dead: a block
     * leaked by an earlier run and since freed through free(). */
    block_t **link = &A.buckets[bucket_of(p)];
    while (*link != NULL) {
        if ((*link)->p == p) {
            block_t *dead = *link;
            *link = dead->next;
            free(dead);
        } else {
            link = &(*link)->next;
        }
    }
    *b = (block_t){.p = p,
                   .size = size,
                   .gen = A.gen,
                   .scenario = A.scenario,
                   .n = A.n,
                   .mode = A.mode,
                   .next = A.buckets[bucket_of(p)]};
    A.buckets[bucket_of(p)] = b;
    A.live++;
    A.live_bytes += (long)size;
    pthread_mutex_unlock(&A.mu);
    return p;
}

static void count_free(void *p, size_t size, void *ctx)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&A.mu);
    if (ctx != &ctx_token)
        A.bad_ctx++;
    block_t **link = &A.buckets[bucket_of(p)];
    while (*link != NULL && (*link)->p != p)
        link = &(*link)->next;
    block_t *b = *link;
    if (b == NULL) {
        A.foreign++;
    } else {
        *link = b->next;
        if (b->gen != A.gen) {
            if (A.stale++ == 0)
                snprintf(A.stale_what, sizeof A.stale_what,
                         "a %zu-byte block allocated in %s run N=%ld (%s) "
                         "was freed in a later run",
                         b->size, b->scenario, b->n, b->mode);
        } else {
            A.live--;
            A.live_bytes -= (long)b->size;
        }
        if (b->size != size)
            A.mismatch++;
    }
    pthread_mutex_unlock(&A.mu);
    free(b);
    free(p); /* a malloc block either way */
}

static const fut_allocator_t counting = {
    .alloc = count_alloc, .free = count_free, .ctx = &ctx_token};

/* Starts a run: a new generation, counters cleared, the failure armed
 * (fail_at > 0), or random failures one call in one_in (one_in > 0). */
static void alloc_arm(long fail_at, bool fail_from, unsigned one_in,
                      unsigned seed)
{
    pthread_mutex_lock(&A.mu);
    A.gen++;
    A.scenario = R.scenario;
    A.n = R.n;
    A.mode = R.mode;
    A.one_in = one_in;
    A.rng = seed;
    A.live = A.live_bytes = 0;
    A.foreign = A.stale = A.mismatch = A.bad_ctx = 0;
    A.stale_what[0] = '\0';
    pthread_mutex_unlock(&A.mu);
    atomic_store(&A.calls, 0);
    atomic_store(&A.fail_at, fail_at);
    atomic_store(&A.fail_from, fail_from);
    atomic_store(&A.failed, 0);
}

/* ------------------------------------------------------ soft checks */

static void record(int line, const char *fmt, ...) FUT_PRINTF(2, 3);

static void record(int line, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    char msg[520];
    snprintf(msg, sizeof msg, "%s N=%ld (%s) line %d: %s\n", R.scenario, R.n,
             R.mode, line, what);
    fputs(msg, stderr);
    if (R.nfail++ < 8 && R.len + strlen(msg) < sizeof R.summary) {
        memcpy(R.summary + R.len, msg, strlen(msg) + 1);
        R.len += strlen(msg);
    }
}

#define CHECK(cond) check_((cond), #cond, __LINE__)

static bool check_(bool ok, const char *what, int line)
{
    if (!ok)
        record(line, "check failed: %s", what);
    return ok;
}

/* RC(expr, codes...): expr must return one of codes; returns it. */
#define RC(expr, ...)                                                          \
    check_rc_((expr), (const int[]){__VA_ARGS__},                              \
              sizeof((const int[]){__VA_ARGS__}) / sizeof(int), #expr,         \
              __LINE__)

static int check_rc_(int rc, const int *ok, size_t n, const char *what,
                     int line)
{
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found = found || ok[i] == rc;
    if (!found)
        record(line, "%s returned %d (%s), which is not documented here", what,
               rc, strerror(rc));
    if (rc == ENOMEM)
        R.saw_enomem = true;
    return rc;
}

/* The ENOMEM future: what fut.h says every future-returning function
 * returns when it cannot allocate.  Captured once per case. */
static fut_t *enomem_f;

/* FUT(expr): a future-returning call; it must not return NULL.  A NULL is
 * recorded and replaced by the ENOMEM future so the scenario can go on. */
#define FUT(expr) check_fut_((expr), #expr, __LINE__)

static fut_t *check_fut_(fut_t *f, const char *what, int line)
{
    if (f == NULL) {
        record(line, "%s returned NULL", what);
        return enomem_f;
    }
    if (f == enomem_f)
        R.saw_enomem = true;
    return f;
}

/* How f settled: 0 when fulfilled, else its error code.  Waits (bounded)
 * so a future that never settles shows as a failed check, not a hang. */
#define OUTCOME(f) outcome_((f), #f, __LINE__)

static int outcome_(fut_t *f, const char *what, int line)
{
    int rc = fut_wait(f, FUT_S(20));
    if (rc != 0) {
        record(line, "fut_wait(%s) returned %d: it never settled", what, rc);
        return -1;
    }
    rc = fut_get(f, 0, NULL);
    if (rc == ENOMEM)
        R.saw_enomem = true;
    return rc;
}

static bool enomem_failed(void)
{
    return atomic_load(&A.failed) != 0;
}

/* ---------------------------------------------------------- the sweep */

typedef void (*scenario_fn)(void);

/* Restores malloc (which flushes this thread's cache and the depot into
 * the counting allocator) and checks that the run gave everything back. */
static void finish_run(void)
{
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    pthread_mutex_lock(&A.mu);
    long live = A.live, bytes = A.live_bytes, foreign = A.foreign;
    long stale = A.stale, mismatch = A.mismatch, bad_ctx = A.bad_ctx;
    char stale_what[sizeof A.stale_what];
    memcpy(stale_what, A.stale_what, sizeof stale_what);
    /* The sizes of the first few leaked blocks tell which objects they
     * are (32: callback node or listener, 56: future, 72: continuation or
     * timer entry, others: arrays and blocks of their own size). */
    char sizes[120] = "";
    size_t len = 0;
    int listed = 0;
    for (int i = 0; i < NBUCKETS && listed < 8 && live > 0; i++)
        for (block_t *b = A.buckets[i]; b != NULL && listed < 8; b = b->next)
            if (b->gen == A.gen && len + 24 < sizeof sizes) {
                len += (size_t)snprintf(sizes + len, sizeof sizes - len, " %zu",
                                        b->size);
                listed++;
            }
    pthread_mutex_unlock(&A.mu);
    if (live != 0 || bytes != 0)
        record(__LINE__, "leak: %ld blocks (%ld bytes) never freed; sizes:%s",
               live, bytes, sizes);
    if (foreign != 0)
        record(__LINE__, "%ld frees of blocks the allocator never handed out",
               foreign);
    if (stale != 0)
        record(__LINE__, "%ld frees through another run's allocator: %s", stale,
               stale_what);
    if (mismatch != 0)
        record(__LINE__, "%ld frees with a size other than the one asked for",
               mismatch);
    if (bad_ctx != 0)
        record(__LINE__, "%ld calls without the allocator's ctx", bad_ctx);
}

/* Starts a case: clears the record of failed checks and captures the
 * ENOMEM future, as an allocator that fails everything shows it. */
static void sweep_begin(const char *name)
{
    R.scenario = name;
    R.nfail = 0;
    R.len = 0;
    R.summary[0] = '\0';
    R.n = 0;
    R.mode = "capture";
    alloc_arm(1, true, 0, 0);
    ck_assert_int_eq(fut_set_allocator(&counting), 0);
    enomem_f = fut_resolved(NULL, NULL);
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    ck_assert_int_eq(fut_state(enomem_f), FUT_REJECTED);
    ck_assert_int_eq(fut_error(enomem_f)->code, ENOMEM);
}

/* One run of fn under the armed allocator; true if an allocation failed
 * in it. */
static bool sweep_run(scenario_fn fn, long fail_at, bool fail_from,
                      unsigned one_in, unsigned seed)
{
    R.saw_enomem = false;
    alloc_arm(fail_at, fail_from, one_in, seed);
    ck_assert_int_eq(fut_set_allocator(&counting), 0);
    fn();
    finish_run();
    bool failed = enomem_failed();
    if (!failed && R.saw_enomem)
        record(__LINE__, "ENOMEM reported, but no allocation failed");
    return failed;
}

/* Ends a case: fails it if any check of any run failed. */
static void sweep_end(const char *name, long runs)
{
    fut_set_unhandled_hook(NULL, NULL);
    if (getenv("FUT_SWEEP_VERBOSE") != NULL)
        fprintf(stderr, "sweep %s: %ld runs\n", name, runs);
    ck_assert_msg(R.nfail == 0, "%s: %d failed checks in %ld runs:\n%s", name,
                  R.nfail, runs, R.summary);
}

/* Runs the scenario for N = 1, 2, ... in both passes, each pass until a
 * run in which no allocation failed. */
static void sweep(const char *name, scenario_fn fn, long max_runs)
{
    sweep_begin(name);
    long runs = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (long n = 1;; n++) {
            R.n = n;
            R.mode = pass == 0 ? "exactly" : "from";
            runs++;
            if (!sweep_run(fn, n, pass == 1, 0, 0)) {
                if (n == 1)
                    record(__LINE__, "the scenario allocated nothing");
                break;
            }
            if (n >= max_runs) {
                record(__LINE__, "still allocating after %ld runs", n);
                break;
            }
        }
    }
    sweep_end(name, runs);
}

/* A scenario and its name, for the random sweeps. */
typedef struct named_scenario {
    const char *name;
    scenario_fn fn;
} named_scenario_t;

/* Runs each scenario `runs` times with every allocation failing at random,
 * one in one_in, from a seed that FUT_TEST_SEED replays (thread
 * interleaving still varies which objects the failures hit). */
static void sweep_random(const char *name, const named_scenario_t *list,
                         size_t n, long runs, unsigned one_in)
{
    sweep_begin(name);
    unsigned seed = fut_test_seed();
    for (size_t k = 0; k < n; k++) {
        R.scenario = list[k].name;
        for (long i = 1; i <= runs; i++) {
            R.n = i;
            R.mode = "random";
            sweep_run(list[k].fn, 0, false, one_in,
                      seed + (unsigned)(k * 1000 + (size_t)i) * 2654435761u);
        }
    }
    R.scenario = name;
    sweep_end(name, runs * (long)n);
}

/* ------------------------------------------------------------ helpers */

/* A done callback that counts its calls (arg: an atomic_int). */
static void done_count(fut_t *f, void *counter)
{
    (void)f;
    atomic_fetch_add((atomic_int *)counter, 1);
}

/* A done callback with a free_arg: both get the same arg. */
typedef struct cbrec {
    atomic_int ran;
    atomic_int freed;
} cbrec_t;

static void cbrec_init(cbrec_t *c)
{
    atomic_init(&c->ran, 0);
    atomic_init(&c->freed, 0);
}

static void cbrec_ran(fut_t *f, void *arg)
{
    (void)f;
    atomic_fetch_add(&((cbrec_t *)arg)->ran, 1);
}

static void cbrec_freed(void *arg)
{
    atomic_fetch_add(&((cbrec_t *)arg)->freed, 1);
}

/* A progress listener: counts calls and remembers the last progress. */
typedef struct heard {
    atomic_int calls;
    atomic_int last; /* the int the last progress pointed to */
} heard_t;

static void heard_init(heard_t *h)
{
    atomic_init(&h->calls, 0);
    atomic_init(&h->last, -1);
}

static void listen(fut_t *f, void *progress, void *arg)
{
    (void)f;
    heard_t *h = arg;
    atomic_store(&h->last, progress ? *(int *)progress : -2);
    atomic_fetch_add(&h->calls, 1);
}

/* A promise and a reference to its future; *fp is the ENOMEM future when
 * fut_promise_new returned NULL (it may, and only then: ENOMEM). */
static fut_promise_t *promise(fut_t **fp)
{
    fut_promise_t *p = fut_promise_new();
    if (p == NULL) {
        CHECK(enomem_failed());
        R.saw_enomem = true;
        *fp = enomem_f;
        return NULL;
    }
    *fp = FUT(fut_promise_future(p));
    CHECK(*fp != enomem_f && fut_state(*fp) == FUT_PENDING);
    return p;
}

/* A pool, or NULL when fut_pool_new reported ENOMEM (then nothing may be
 * left behind: the leak check covers it). */
static fut_executor_t *pool(size_t threads)
{
    fut_pool_config_t cfg = {.threads = threads};
    fut_executor_t *ex = NULL;
    int rc = RC(fut_pool_new(&cfg, &ex), 0, ENOMEM);
    CHECK((rc == 0) == (ex != NULL));
    return rc == 0 ? ex : NULL;
}

/* ------------------------------------------------- promise scenario */

/* A promise's life: callbacks before and after settling, resolve, a second
 * resolve (EALREADY, the value still destroyed once), reject, a broken
 * promise (EPIPE), writer references, and the born-settled futures. */
static void scenario_promise(void)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    cbrec_t cr[4];
    for (int i = 0; i < 4; i++)
        cbrec_init(&cr[i]);

    /* Resolved, with callbacks registered before and after. */
    fut_t *f;
    fut_promise_t *p = promise(&f);
    int rc0 = RC(fut_on_done_ex(f, cbrec_ran, &cr[0], cbrec_freed), 0, ENOMEM);
    /* fut_on_done_ex's free_arg runs at once when the call fails. */
    CHECK(atomic_load(&cr[0].freed) ==
          (rc0 == 0 ? atomic_load(&cr[0].ran) : 1));
    int rc1 = RC(fut_on_done(f, cbrec_ran, &cr[1]), 0, ENOMEM);
    if (p != NULL) {
        RC(fut_resolve(p, fut_test_obj_new(&vals, 1), fut_test_obj_free), 0);
        CHECK(atomic_load(&cr[0].ran) == (rc0 == 0 ? 1 : 0));
        CHECK(atomic_load(&cr[1].ran) == (rc1 == 0 ? 1 : 0));
        /* The second resolve loses and destroys its value at once. */
        RC(fut_resolve(p, fut_test_obj_new(&vals, 2), fut_test_obj_free),
           EALREADY);
        CHECK(atomic_load(&vals.freed) == 1);
        RC(fut_reject(p, EIO, "late %d", 3), EALREADY);
        void *v = NULL;
        RC(fut_get(f, 0, &v), 0);
        CHECK(v != NULL && ((fut_test_obj_t *)v)->value == 1);
    } else {
        /* The ENOMEM future has settled: callbacks ran at once. */
        CHECK(rc0 == 0 && atomic_load(&cr[0].ran) == 1);
    }
    /* Registered after settling: runs at once on this thread. */
    int rc2 = RC(fut_on_done_ex(f, cbrec_ran, &cr[2], cbrec_freed), 0, ENOMEM);
    CHECK(atomic_load(&cr[2].ran) == (rc2 == 0 ? 1 : 0));
    CHECK(atomic_load(&cr[2].freed) == 1);
    CHECK(atomic_load(&cr[0].freed) == 1);
    fut_release(f);
    fut_promise_release(p);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));

    /* Rejected through the second of two writer references. */
    p = promise(&f);
    if (p != NULL) {
        CHECK(fut_promise_retain(p) == p);
        fut_promise_release(p);
        CHECK(fut_state(f) == FUT_PENDING);
        RC(fut_reject(p, EIO, "failed %s", "here"), 0);
        RC(fut_reject(p, EIO, "again"), EALREADY);
        RC(fut_reject(p, 0, "bad code"), EINVAL, EALREADY);
        CHECK(fut_state(f) == FUT_REJECTED);
        const fut_error_t *e = fut_error(f);
        CHECK(e != NULL && e->code == EIO && e->message != NULL);
    }
    int rc3 = RC(fut_on_done(f, cbrec_ran, &cr[3]), 0, ENOMEM);
    CHECK(atomic_load(&cr[3].ran) == (rc3 == 0 ? 1 : 0));
    fut_release(f);
    fut_promise_release(p);

    /* A broken promise: the last writer leaves it unsettled. */
    p = promise(&f);
    fut_promise_release(p);
    RC(OUTCOME(f), p != NULL ? EPIPE : ENOMEM);
    fut_release(f);

    /* Born settled: the value is destroyed exactly once even when the
     * future cannot be allocated. */
    f = FUT(fut_resolved(fut_test_obj_new(&vals, 4), fut_test_obj_free));
    RC(OUTCOME(f), 0, ENOMEM);
    fut_release(f);
    f = FUT(fut_rejected(EIO, "copied message"));
    RC(OUTCOME(f), EIO, ENOMEM);
    fut_release(f);
    f = FUT(fut_promise_future(NULL));
    RC(OUTCOME(f), EINVAL, ENOMEM);
    fut_release(f);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_promise_settles_and_destroys_exactly_once)
{
    sweep("promise", scenario_promise, 500);
}
END_TEST

/* ---------------------------------------------------- task scenarios */

/* A task's record: how often it ran and its free_arg ran. */
typedef struct task_rec {
    atomic_int ran;
    atomic_int freed;
    int kind; /* TASK_VALUE, TASK_FAIL, TASK_PROGRESS, TASK_NESTED */
    fut_test_tracker_t *vals;
    fut_executor_t *ex;     /* TASK_NESTED submits here */
    fut_test_latch_t *gate; /* if set, the task waits for it first */
} task_rec_t;

enum { TASK_VALUE, TASK_FAIL, TASK_PROGRESS, TASK_NESTED };

static void task_rec_init(task_rec_t *t, int kind, fut_test_tracker_t *vals,
                          fut_executor_t *ex)
{
    atomic_init(&t->ran, 0);
    atomic_init(&t->freed, 0);
    t->kind = kind;
    t->vals = vals;
    t->ex = ex;
    t->gate = NULL;
}

static void task_rec_free(void *arg)
{
    atomic_fetch_add(&((task_rec_t *)arg)->freed, 1);
}

static int progress_token = 7;

/* Returns a counted value, fails with EIO, reports progress, or waits for
 * a nested task on its own executor, as its record says. */
static void *task_body(fut_ctx_t *ctx, void *arg)
{
    task_rec_t *t = arg;
    atomic_fetch_add(&t->ran, 1);
    if (t->gate != NULL)
        fut_test_latch_wait(t->gate);
    switch (t->kind) {
    case TASK_FAIL:
        return fut_fail(ctx, EIO, "task %d failed", t->kind);
    case TASK_PROGRESS:
        fut_progress(ctx, &progress_token);
        break;
    case TASK_NESTED: {
        fut_t *inner = fut_submit(t->ex, fut_test_task_identity, t);
        int rc = fut_get(inner, FUT_FOREVER, NULL);
        fut_release(inner);
        if (rc != 0)
            return fut_fail(ctx, rc, "inner task: %d", rc);
        break;
    }
    default:
        break;
    }
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(t->vals, t->kind);
}

/* Checks a finished task against its record: free_arg once; the task ran
 * once unless the submit itself failed (the ENOMEM future); the outcome is
 * the one its kind produces. */
static void task_check(fut_t *f, task_rec_t *t, int line)
{
    int rc = OUTCOME(f);
    if (atomic_load(&t->freed) != 1)
        record(line, "free_arg ran %d times", atomic_load(&t->freed));
    int ran = atomic_load(&t->ran);
    if (f == enomem_f) {
        if (ran != 0)
            record(line, "a task whose submit failed ran %d times", ran);
        return;
    }
    if (ran != 1)
        record(line, "an accepted task ran %d times", ran);
    int want = t->kind == TASK_FAIL ? EIO : 0;
    if (rc != want && !(t->kind == TASK_NESTED && rc == ENOMEM))
        record(line, "task of kind %d settled with %d", t->kind, rc);
    if (rc == 0) {
        void *v = NULL;
        fut_get(f, 0, &v);
        if (v == NULL || ((fut_test_obj_t *)v)->value != t->kind)
            record(line, "task of kind %d has the wrong value", t->kind);
    }
}

/* The inline executor runs the task inside fut_submit_ex; the only
 * allocation is the future, so a task either ran or got the ENOMEM
 * future. */
static void scenario_inline(void)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    enum { NT = 3 };
    task_rec_t t[NT];
    fut_t *f[NT];
    for (int i = 0; i < NT; i++) {
        task_rec_init(&t[i], i == 2 ? TASK_VALUE : i, &vals, NULL);
        f[i] = FUT(fut_submit_ex(fut_inline_executor(), task_body, &t[i],
                                 task_rec_free, 0));
        /* Inline: everything happened before fut_submit_ex returned. */
        CHECK(fut_done(f[i]) && atomic_load(&t[i].freed) == 1);
    }
    for (int i = 0; i < NT; i++) {
        task_check(f[i], &t[i], __LINE__);
        fut_release(f[i]);
    }
    fut_t *g = FUT(fut_submit(fut_inline_executor(), fut_test_task_identity,
                              FUT_TEST_PTR(5)));
    void *v = NULL;
    if (RC(fut_get(g, 0, &v), 0, ENOMEM) == 0)
        CHECK(FUT_TEST_INT(v) == 5);
    fut_release(g);
    /* Shutting the inline executor down does nothing. */
    RC(fut_executor_shutdown(fut_inline_executor(), FUT_SHUTDOWN_WAIT), 0);
    fut_executor_free(fut_inline_executor());
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_inline_submit_runs_task_or_returns_enomem)
{
    sweep("inline", scenario_inline, 200);
}
END_TEST

static atomic_int workers_alive;

static int count_init(void *arg)
{
    (void)arg;
    atomic_fetch_add(&workers_alive, 1);
    return 0;
}

static void count_exit(void *arg)
{
    (void)arg;
    atomic_fetch_sub(&workers_alive, 1);
}

/* A pool's life: creation (ENOMEM leaves nothing behind), tasks of every
 * kind including one that waits on a nested task, done callbacks on task
 * futures, stats, and the worker_init/worker_exit pairing. */
static void scenario_pool(void)
{
    atomic_store(&workers_alive, 0);
    fut_pool_config_t cfg = {.threads = 2,
                             .name = "sweep",
                             .worker_init = count_init,
                             .worker_exit = count_exit};
    fut_executor_t *ex = NULL;
    if (RC(fut_pool_new(&cfg, &ex), 0, ENOMEM) != 0) {
        CHECK(ex == NULL);
        CHECK(atomic_load(&workers_alive) == 0);
        return;
    }
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    enum { NT = 6 };
    task_rec_t t[NT];
    fut_t *f[NT];
    int cb_rc[NT];
    cbrec_t cb[NT];
    for (int i = 0; i < NT; i++) {
        /* No TASK_PROGRESS here: progress has cases of its own. */
        static const int kinds[] = {TASK_VALUE, TASK_FAIL, TASK_NESTED};
        task_rec_init(&t[i], kinds[i % 3], &vals, ex);
        cbrec_init(&cb[i]);
        f[i] =
            FUT(i % 2 ? fut_submit_ex(ex, task_body, &t[i], task_rec_free,
                                      FUT_NOWAIT)
                      : fut_submit_ex(ex, task_body, &t[i], task_rec_free, 0));
        cb_rc[i] =
            RC(fut_on_done_ex(f[i], cbrec_ran, &cb[i], cbrec_freed), 0, ENOMEM);
    }
    for (int i = 0; i < NT; i++)
        task_check(f[i], &t[i], __LINE__);
    fut_stats_t st;
    RC(fut_executor_stats(ex, &st), 0);
    CHECK(st.threads == 2 && st.broken == 0 && !st.shutdown);
    fut_executor_free(ex);
    CHECK(atomic_load(&workers_alive) == 0);
    for (int i = 0; i < NT; i++) {
        CHECK(atomic_load(&cb[i].ran) == (cb_rc[i] == 0 ? 1 : 0));
        CHECK(atomic_load(&cb[i].freed) == 1);
        fut_release(f[i]);
    }
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_pool_new_submit_free_lose_nothing)
{
    sweep("pool", scenario_pool, 2000);
}
END_TEST

/* A one-worker pool with a bounded queue, its worker held by a task:
 * queued tasks are cancelled one by one and by
 * fut_executor_shutdown(FUT_SHUTDOWN_CANCEL_PENDING), a full queue answers
 * EAGAIN under FUT_NOWAIT, and a shut-down pool ESHUTDOWN.  Every free_arg
 * runs once, no cancelled task runs. */
static void scenario_pool_cancel(void)
{
    fut_pool_config_t cfg = {.threads = 1, .max_queued = 2};
    fut_executor_t *ex = NULL;
    if (RC(fut_pool_new(&cfg, &ex), 0, ENOMEM) != 0)
        return;
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    fut_test_latch_t gate;
    fut_test_latch_init(&gate);
    task_rec_t hold;
    task_rec_init(&hold, TASK_VALUE, &vals, ex);
    hold.gate = &gate;
    fut_t *holder = FUT(fut_submit_ex(ex, task_body, &hold, task_rec_free, 0));
    bool held = holder != enomem_f;
    if (held)
        fut_test_wait_atomic(&hold.ran, 1); /* the worker is busy now */

    enum { NQ = 4 };
    task_rec_t t[NQ];
    fut_t *q[NQ];
    int queued = 0;
    for (int i = 0; i < NQ; i++) {
        task_rec_init(&t[i], TASK_VALUE, &vals, ex);
        q[i] =
            FUT(fut_submit_ex(ex, task_body, &t[i], task_rec_free, FUT_NOWAIT));
        if (q[i] == enomem_f) {
            CHECK(atomic_load(&t[i].freed) == 1);
            continue;
        }
        if (!held)
            continue; /* the worker may be taking tasks */
        if (queued < 2) {
            CHECK(fut_state(q[i]) == FUT_PENDING);
            queued++;
        } else {
            /* The queue holds max_queued tasks: EAGAIN, free_arg now. */
            RC(OUTCOME(q[i]), EAGAIN);
            CHECK(atomic_load(&t[i].freed) == 1);
        }
    }
    if (held) {
        /* Cancel the first queued one by hand, the rest by shutdown. */
        for (int i = 0; i < NQ; i++) {
            if (q[i] != enomem_f && fut_state(q[i]) == FUT_PENDING) {
                CHECK(fut_cancel(q[i]));
                CHECK(atomic_load(&t[i].freed) == 1);
                break;
            }
        }
        RC(fut_executor_shutdown(ex, FUT_SHUTDOWN_CANCEL_PENDING), 0);
        for (int i = 0; i < NQ; i++) {
            CHECK(atomic_load(&t[i].freed) == 1);
            CHECK(atomic_load(&t[i].ran) == 0);
            if (q[i] != enomem_f)
                RC(OUTCOME(q[i]), ECANCELED, EAGAIN);
        }
    } else {
        RC(fut_executor_shutdown(ex, 0), 0);
    }
    task_rec_t late;
    task_rec_init(&late, TASK_VALUE, &vals, ex);
    fut_t *l = FUT(fut_submit_ex(ex, task_body, &late, task_rec_free, 0));
    RC(OUTCOME(l), ESHUTDOWN, ENOMEM);
    CHECK(atomic_load(&late.freed) == 1 && atomic_load(&late.ran) == 0);
    fut_release(l);

    fut_test_latch_open(&gate);
    fut_executor_free(ex);
    if (held)
        task_check(holder, &hold, __LINE__);
    CHECK(atomic_load(&hold.freed) == 1);
    for (int i = 0; i < NQ; i++) {
        CHECK(atomic_load(&t[i].freed) == 1);
        /* Without the holder the tasks ran, unless they were refused. */
        int rc = OUTCOME(q[i]);
        bool refused = q[i] == enomem_f || rc == EAGAIN || rc == ECANCELED;
        CHECK(atomic_load(&t[i].ran) == (held || refused ? 0 : 1));
        fut_release(q[i]);
    }
    fut_release(holder);
    fut_test_latch_destroy(&gate);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_pool_cancel_and_shutdown_run_free_arg_once)
{
    sweep("pool_cancel", scenario_pool_cancel, 2000);
}
END_TEST

/* ------------------------------------------------ continuation links */

/* What a handler does with its input. */
enum {
    ACT_VALUE,         /* return a new counted value */
    ACT_FAIL,          /* fut_fail(EIO) */
    ACT_ADOPT,         /* fut_adopt(a fut_resolved counted value) */
    ACT_ADOPT_PENDING, /* fut_adopt(the link's pending future) */
};

/* The kind of a link: which function made it. */
enum {
    L_THEN,
    L_CATCH,
    L_THEN_CATCH,
    L_FINALLY,
    L_THEN_EX, /* fut_then_ex with both handlers and a free_arg */
};

/* One continuation and what its handlers saw. */
typedef struct link {
    int kind;
    int act;
    fut_test_tracker_t *vals;
    fut_t *in; /* a reference to the input, kept to judge the outcome */
    fut_t *d;  /* the derived future */
    fut_t *_Atomic adopt; /* ACT_ADOPT_PENDING: handed over by the handler */
    atomic_int value_runs, error_runs, finally_runs, freed;
    atomic_int err_code; /* the code the error handler saw */
} link_t;

static void *link_act(fut_ctx_t *ctx, link_t *l)
{
    switch (l->act) {
    case ACT_FAIL:
        return fut_fail(ctx, EIO, "handler of kind %d failed", l->kind);
    case ACT_ADOPT:
        return fut_adopt(ctx, fut_resolved(fut_test_obj_new(l->vals, 30),
                                           fut_test_obj_free));
    case ACT_ADOPT_PENDING:
        return fut_adopt(ctx, atomic_exchange(&l->adopt, NULL));
    default:
        fut_set_free(ctx, fut_test_obj_free);
        return fut_test_obj_new(l->vals, 20);
    }
}

static void *h_value(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)value;
    link_t *l = arg;
    atomic_fetch_add(&l->value_runs, 1);
    return link_act(ctx, l);
}

static void *h_error(fut_ctx_t *ctx, const fut_error_t *err, void *arg)
{
    link_t *l = arg;
    atomic_store(&l->err_code, err ? err->code : -1);
    atomic_fetch_add(&l->error_runs, 1);
    /* An error handler recovers (or fails again, as its act says). */
    if (l->act == ACT_FAIL)
        return fut_fail(ctx, EIO, "handler of kind %d failed", l->kind);
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(l->vals, 21);
}

static void h_finally(fut_t *settled, void *arg)
{
    (void)settled;
    atomic_fetch_add(&((link_t *)arg)->finally_runs, 1);
}

static void link_free_arg(void *arg)
{
    atomic_fetch_add(&((link_t *)arg)->freed, 1);
}

/* Gets a link ready; adopt is what an ACT_ADOPT_PENDING handler adopts
 * (a reference, handed over), set before the handler can run. */
static void link_init(link_t *l, fut_t *adopt)
{
    atomic_init(&l->adopt, adopt);
}

/* Appends a link of `kind` to prev (consumed) on ex (NULL: inline; the _on
 * forms otherwise) and returns a new reference to its derived future, the
 * next link's input. */
static fut_t *link_add(link_t *l, int kind, int act, fut_executor_t *ex,
                       fut_test_tracker_t *vals, fut_t *prev)
{
    l->kind = kind;
    l->act = act;
    l->vals = vals;
    atomic_init(&l->value_runs, 0);
    atomic_init(&l->error_runs, 0);
    atomic_init(&l->finally_runs, 0);
    atomic_init(&l->freed, 0);
    atomic_init(&l->err_code, 0);
    l->in = fut_retain(prev);
    switch (kind) {
    case L_THEN:
        l->d = FUT(ex ? fut_then_on(ex, prev, h_value, l)
                      : fut_then(prev, h_value, l));
        break;
    case L_CATCH:
        l->d = FUT(ex ? fut_catch_on(ex, prev, h_error, l)
                      : fut_catch(prev, h_error, l));
        break;
    case L_THEN_CATCH:
        l->d = FUT(ex ? fut_then_ex(ex, prev, h_value, h_error, l, NULL)
                      : fut_then_catch(prev, h_value, h_error, l));
        break;
    case L_FINALLY:
        l->d = FUT(ex ? fut_finally_on(ex, prev, h_finally, l)
                      : fut_finally(prev, h_finally, l));
        break;
    default:
        l->d = FUT(fut_then_ex(ex, prev, h_value, h_error, l, link_free_arg));
        /* The free_arg runs at once when the call fails. */
        if (l->d == enomem_f)
            CHECK(atomic_load(&l->freed) == 1);
        break;
    }
    return fut_retain(l->d);
}

/* Once the link's derived future has settled: each handler ran exactly
 * when its input's outcome calls for it (never if the continuation could
 * not be allocated), the free_arg once, and the derived future holds the
 * outcome the handler produced or the input's, passed through. */
static void link_check(link_t *l, int line)
{
    int rc = OUTCOME(l->d);
    int vr = atomic_load(&l->value_runs), er = atomic_load(&l->error_runs);
    int fr = atomic_load(&l->finally_runs);
    if (l->kind == L_THEN_EX && atomic_load(&l->freed) != 1)
        record(line, "link kind %d: free_arg ran %d times", l->kind,
               atomic_load(&l->freed));
    if (l->d == enomem_f) {
        if (vr || er || fr)
            record(line,
                   "link kind %d: a handler of a continuation that "
                   "was never made ran",
                   l->kind);
        return;
    }
    if (!fut_done(l->in)) {
        record(line, "link kind %d: derived settled before its input", l->kind);
        return;
    }
    int in_rc = fut_get(l->in, 0, NULL);
    bool on_value = l->kind != L_CATCH && l->kind != L_FINALLY;
    bool on_error = l->kind != L_THEN && l->kind != L_FINALLY;
    int want_vr = on_value && in_rc == 0;
    int want_er = on_error && in_rc != 0;
    int want_fr = l->kind == L_FINALLY;
    if (vr != want_vr || er != want_er || fr != want_fr) {
        record(line,
               "link kind %d, input %d: value/error/finally handlers ran "
               "%d/%d/%d times, expected %d/%d/%d",
               l->kind, in_rc, vr, er, fr, want_vr, want_er, want_fr);
        return;
    }
    if (er && atomic_load(&l->err_code) != in_rc)
        record(line, "link kind %d: the error handler saw code %d, not %d",
               l->kind, atomic_load(&l->err_code), in_rc);
    int want;
    if (!vr && !er)
        want = in_rc; /* passed through */
    else if (er)
        want = l->act == ACT_FAIL ? EIO : 0;
    else if (l->act == ACT_FAIL)
        want = EIO;
    else
        want = 0;
    /* Adopting a future that could not be made adopts the ENOMEM one. */
    bool may_enomem =
        vr && (l->act == ACT_ADOPT || l->act == ACT_ADOPT_PENDING);
    if (rc != want && !(may_enomem && rc == ENOMEM))
        record(line,
               "link kind %d act %d, input %d: derived settled with %d, "
               "expected %d",
               l->kind, l->act, in_rc, rc, want);
}

static void link_release(link_t *l)
{
    fut_release(atomic_exchange(&l->adopt, NULL));
    fut_release(l->in);
    fut_release(l->d);
}

/* --------------------------------------------------- chain scenarios */

typedef struct link_spec {
    int kind, act;
} link_spec_t;

/* A value travelling down: then, a skipped catch, finally, a then_catch
 * that fails, a catch that recovers, then_ex adopting a settled future,
 * then adopting a pending one. */
static const link_spec_t chain_value[] = {
    {L_THEN, ACT_VALUE},         {L_CATCH, ACT_VALUE}, {L_FINALLY, ACT_VALUE},
    {L_THEN_CATCH, ACT_FAIL},    {L_CATCH, ACT_VALUE}, {L_THEN_EX, ACT_ADOPT},
    {L_THEN, ACT_ADOPT_PENDING},
};
/* An error travelling down: a skipped then, then_ex failing again,
 * finally, a catch that recovers, then_catch taking the value. */
static const link_spec_t chain_error[] = {
    {L_THEN, ACT_VALUE},  {L_THEN_EX, ACT_FAIL},     {L_FINALLY, ACT_VALUE},
    {L_CATCH, ACT_VALUE}, {L_THEN_CATCH, ACT_VALUE},
};
/* On an input that has already settled: handlers run at once. */
static const link_spec_t chain_settled[] = {
    {L_THEN, ACT_VALUE},
    {L_THEN_EX, ACT_FAIL},
    {L_CATCH, ACT_VALUE},
};

#define NLINKS(a) (sizeof(a) / sizeof((a)[0]))

/* Builds the three chains (links of the value chain on ex_a, of the error
 * chain on ex_b, NULL meaning inline), settles their heads, drives the
 * loop if ex_b is one, and checks every link.  The caller checks the
 * values once the executors are gone: a worker drops its reference to a
 * link's input just after settling the link. */
static void chains(fut_executor_t *ex_a, fut_executor_t *ex_b, bool b_is_loop,
                   fut_test_tracker_t *vals)
{
    link_t la[NLINKS(chain_value)], lb[NLINKS(chain_error)],
        lc[NLINKS(chain_settled)];

    fut_t *fa, *fb, *fq;
    fut_promise_t *pa = promise(&fa), *pb = promise(&fb), *pq = promise(&fq);
    fut_t *tail = fa;
    for (size_t i = 0; i < NLINKS(chain_value); i++) {
        link_init(&la[i], chain_value[i].act == ACT_ADOPT_PENDING
                              ? fut_retain(fq)
                              : NULL);
        tail = link_add(&la[i], chain_value[i].kind, chain_value[i].act, ex_a,
                        vals, tail);
    }
    fut_t *tail_a = tail;
    tail = fb;
    for (size_t i = 0; i < NLINKS(chain_error); i++)
        link_init(&lb[i], NULL);
    for (size_t i = 0; i < NLINKS(chain_error); i++)
        tail = link_add(&lb[i], chain_error[i].kind, chain_error[i].act, ex_b,
                        vals, tail);
    fut_t *tail_b = tail;
    tail = FUT(fut_resolved(fut_test_obj_new(vals, 1), fut_test_obj_free));
    for (size_t i = 0; i < NLINKS(chain_settled); i++)
        link_init(&lc[i], NULL);
    for (size_t i = 0; i < NLINKS(chain_settled); i++)
        tail = link_add(&lc[i], chain_settled[i].kind, chain_settled[i].act,
                        ex_a, vals, tail);
    fut_t *tail_c = tail;

    if (pa != NULL)
        RC(fut_resolve(pa, fut_test_obj_new(vals, 2), fut_test_obj_free), 0);
    if (pb != NULL)
        RC(fut_reject(pb, EIO, "head of the error chain"), 0);
    if (pq != NULL)
        RC(fut_resolve(pq, fut_test_obj_new(vals, 3), fut_test_obj_free), 0);
    /* Every link of the error chain, not just its tail: when a link could
     * not be made, the links after it settle without waiting for it. */
    for (size_t i = 0; b_is_loop && i < NLINKS(chain_error); i++)
        RC(fut_loop_run_until(ex_b, lb[i].d, FUT_S(20)), 0);

    for (size_t i = 0; i < NLINKS(chain_value); i++)
        link_check(&la[i], __LINE__);
    for (size_t i = 0; i < NLINKS(chain_error); i++)
        link_check(&lb[i], __LINE__);
    for (size_t i = 0; i < NLINKS(chain_settled); i++)
        link_check(&lc[i], __LINE__);
    for (size_t i = 0; i < NLINKS(chain_value); i++)
        link_release(&la[i]);
    for (size_t i = 0; i < NLINKS(chain_error); i++)
        link_release(&lb[i]);
    for (size_t i = 0; i < NLINKS(chain_settled); i++)
        link_release(&lc[i]);
    fut_release(tail_a);
    fut_release(tail_b);
    fut_release(tail_c);
    fut_release(fq);
    fut_promise_release(pa);
    fut_promise_release(pb);
    fut_promise_release(pq);
}

static void scenario_chain_inline(void)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    chains(NULL, NULL, false, &vals);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_chain_handlers_run_exactly_once_inline)
{
    sweep("chain_inline", scenario_chain_inline, 2000);
}
END_TEST

/* The _on forms: the value chain's continuations run on a pool, the error
 * chain's on a loop executor that this thread drains; then a continuation
 * given to the pool after its shutdown. */
static void scenario_chain_on(void)
{
    fut_executor_t *ex = pool(2);
    fut_executor_t *loop = NULL;
    int rc = RC(fut_loop_new(&loop), 0, ENOMEM);
    CHECK((rc == 0) == (loop != NULL));
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    if (ex != NULL && loop != NULL)
        chains(ex, loop, true, &vals);
    if (ex != NULL) {
        /* A shut-down pool refuses the continuation: the derived future
         * rejects ESHUTDOWN, no handler runs, the free_arg runs once. */
        RC(fut_executor_shutdown(ex, 0), 0);
        link_t l;
        link_init(&l, NULL);
        fut_t *in = FUT(fut_resolved(NULL, NULL));
        fut_t *tail = link_add(&l, L_THEN_EX, ACT_VALUE, ex, &vals, in);
        int out = OUTCOME(l.d);
        if (l.d != enomem_f)
            CHECK(out == ESHUTDOWN && atomic_load(&l.value_runs) == 0 &&
                  atomic_load(&l.error_runs) == 0);
        CHECK(atomic_load(&l.freed) == 1);
        link_release(&l);
        fut_release(tail);
    }
    fut_executor_free(loop);
    fut_executor_free(ex);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_chain_on_pool_and_loop_run_handlers_exactly_once)
{
    sweep("chain_on", scenario_chain_on, 3000);
}
END_TEST

/* ----------------------------------------------------- loop scenario */

typedef struct later {
    fut_promise_t *p;
    atomic_int rc;
} later_t;

/* Another thread settles a promise while the loop's owner sleeps in
 * fut_loop_run_until. */
static void *resolve_later(void *arg)
{
    later_t *l = arg;
    fut_test_sleep_ms(1);
    atomic_store(&l->rc, fut_resolve(l->p, FUT_TEST_PTR(9), NULL));
    return NULL;
}

/* The loop executor: tasks run only when its owner drains it, a
 * continuation whose input another thread settles wakes
 * fut_loop_run_until, a wait that times out leaves nothing behind, a
 * shut-down loop refuses work, and fut_executor_free cancels what is still
 * queued. */
static void scenario_loop(void)
{
    fut_executor_t *loop = NULL;
    if (RC(fut_loop_new(&loop), 0, ENOMEM) != 0) {
        CHECK(loop == NULL);
        return;
    }
    CHECK(fut_loop_fd(loop) >= 0);
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    enum { NT = 3 };
    task_rec_t t[NT];
    fut_t *f[NT];
    size_t accepted = 0;
    for (int i = 0; i < NT; i++) {
        task_rec_init(&t[i], i == 1 ? TASK_FAIL : TASK_VALUE, &vals, loop);
        f[i] = FUT(fut_submit_ex(loop, task_body, &t[i], task_rec_free, 0));
        if (f[i] != enomem_f) {
            accepted++;
            CHECK(fut_state(f[i]) == FUT_PENDING); /* not drained yet */
        }
    }
    CHECK(fut_loop_run_pending(loop) == accepted);
    for (int i = 0; i < NT; i++) {
        task_check(f[i], &t[i], __LINE__);
        fut_release(f[i]);
    }

    /* A continuation on the loop, its input settled by another thread. */
    link_t l;
    link_init(&l, NULL);
    fut_t *pf;
    later_t lt = {.p = promise(&pf)};
    atomic_init(&lt.rc, -1);
    fut_t *tail = link_add(&l, L_THEN, ACT_VALUE, loop, &vals, pf);
    pthread_t th = 0;
    if (lt.p != NULL)
        th = fut_test_spawn(resolve_later, &lt);
    RC(fut_loop_run_until(loop, tail, FUT_S(20)), 0);
    if (lt.p != NULL) {
        fut_test_join(th);
        RC(atomic_load(&lt.rc), 0);
    }
    link_check(&l, __LINE__);
    link_release(&l);
    fut_release(tail);
    fut_promise_release(lt.p);

    /* Waiting on a future that does not settle in time. */
    fut_t *qf;
    fut_promise_t *q = promise(&qf);
    RC(fut_loop_run_until(loop, qf, FUT_MS(1)), q ? ETIMEDOUT : 0);

    /* One task stays queued; after shutdown the loop refuses work. */
    task_rec_t left, late;
    task_rec_init(&left, TASK_VALUE, &vals, loop);
    task_rec_init(&late, TASK_VALUE, &vals, loop);
    fut_t *lf = FUT(fut_submit_ex(loop, task_body, &left, task_rec_free, 0));
    RC(fut_executor_shutdown(loop, FUT_SHUTDOWN_WAIT), 0);
    fut_t *zf = FUT(fut_submit_ex(loop, task_body, &late, task_rec_free, 0));
    RC(OUTCOME(zf), ESHUTDOWN, ENOMEM);
    CHECK(atomic_load(&late.freed) == 1 && atomic_load(&late.ran) == 0);
    fut_executor_free(loop);
    RC(OUTCOME(lf), ECANCELED, ENOMEM);
    CHECK(atomic_load(&left.freed) == 1 && atomic_load(&left.ran) == 0);
    fut_release(lf);
    fut_release(zf);
    /* The loop's wake-up callback on qf outlives the loop harmlessly. */
    if (q != NULL)
        RC(fut_resolve(q, NULL, NULL), 0);
    fut_release(qf);
    fut_promise_release(q);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_loop_executor_runs_drained_work_and_cancels_the_rest)
{
    sweep("loop", scenario_loop, 2000);
}
END_TEST

/* ---------------------------------------------- combinator scenario */

/* Three promises settled in order: value, EIO, value. */
static void settle_three(fut_promise_t **ps, fut_test_tracker_t *vals)
{
    if (ps[0] != NULL)
        RC(fut_resolve(ps[0], fut_test_obj_new(vals, 0), fut_test_obj_free), 0);
    if (ps[1] != NULL)
        RC(fut_reject(ps[1], EIO, "input %d", 1), 0);
    if (ps[2] != NULL)
        RC(fut_resolve(ps[2], fut_test_obj_new(vals, 2), fut_test_obj_free), 0);
}

/* Checks the result of a combinator whose inputs were settled value, EIO,
 * value; exact when every input could be made. */
static void when_check(int kind, fut_t *r, bool inputs_ok, int line)
{
    int rc = OUTCOME(r);
    if (r == enomem_f || !inputs_ok)
        return;
    void *v = NULL;
    fut_get(r, 0, &v);
    switch (kind) {
    case FUT_WHEN_ALL:
        if (rc != EIO)
            record(line, "when_all settled with %d, not EIO", rc);
        break;
    case FUT_WHEN_ALL_SETTLED: {
        fut_t **in = v;
        if (rc != 0 || in == NULL || fut_state(in[0]) != FUT_FULFILLED ||
            fut_state(in[1]) != FUT_REJECTED ||
            fut_state(in[2]) != FUT_FULFILLED)
            record(line, "when_all_settled: %d or wrong inputs", rc);
        break;
    }
    case FUT_WHEN_SOME: {
        fut_any_t *a = v;
        if (rc != 0 || a == NULL || a[0].index != 0 || a[1].index != 2 ||
            ((fut_test_obj_t *)a[1].value)->value != 2)
            record(line, "when_some: %d or wrong entries", rc);
        break;
    }
    default: {
        fut_any_t *a = v;
        if (rc != 0 || a == NULL || a->index != 0 ||
            ((fut_test_obj_t *)a->value)->value != 0)
            record(line, "when_any/first (%d): %d or wrong entry", kind, rc);
        break;
    }
    }
}

/* Every combinator over pending inputs, with a done callback on its
 * result; FUT_CANCEL_LOSERS; the n == 0 and NULL-input rules. */
static void scenario_combinators(void)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    static const int kinds[] = {FUT_WHEN_ALL, FUT_WHEN_ALL_SETTLED,
                                FUT_WHEN_ANY, FUT_WHEN_FIRST, FUT_WHEN_SOME};
    for (size_t c = 0; c < sizeof kinds / sizeof kinds[0]; c++) {
        fut_promise_t *ps[3];
        fut_t *fs[3];
        bool ok = true;
        for (int i = 0; i < 3; i++) {
            ps[i] = promise(&fs[i]);
            ok = ok && ps[i] != NULL;
        }
        fut_t *r;
        switch (kinds[c]) {
        case FUT_WHEN_ALL:
            r = FUT(fut_when_all(fs, 3));
            break;
        case FUT_WHEN_ALL_SETTLED:
            r = FUT(fut_when_all_settled(fs, 3));
            break;
        case FUT_WHEN_ANY:
            r = FUT(fut_when_any(fs, 3));
            break;
        case FUT_WHEN_FIRST:
            r = FUT(fut_when_first(fs, 3));
            break;
        default:
            r = FUT(fut_when_some(fs, 3, 2));
            break;
        }
        atomic_int cb = 0;
        int rc_cb = RC(fut_on_done(r, done_count, &cb), 0, ENOMEM);
        settle_three(ps, &vals);
        when_check(kinds[c], r, ok, __LINE__);
        CHECK(atomic_load(&cb) == (rc_cb == 0 ? 1 : 0));
        fut_release(r);
        for (int i = 0; i < 3; i++)
            fut_promise_release(ps[i]);
    }

    /* FUT_CANCEL_LOSERS: once the race is decided the inputs nobody else
     * holds are cancelled, so their promises can no longer settle them. */
    fut_promise_t *ps[3];
    fut_t *fs[3];
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        ps[i] = promise(&fs[i]);
        ok = ok && ps[i] != NULL;
    }
    fut_t *r = FUT(fut_when_ex(FUT_WHEN_FIRST, fs, 3, 0, FUT_CANCEL_LOSERS));
    bool live = r != enomem_f;
    /* An input that is the ENOMEM future decides the race at once. */
    bool decided = fut_done(r);
    if (ps[0] != NULL)
        RC(fut_resolve(ps[0], fut_test_obj_new(&vals, 0), fut_test_obj_free),
           live && decided ? EALREADY : 0);
    int rc = OUTCOME(r);
    if (live && ok)
        CHECK(rc == 0);
    /* Once a live result has decided, the losers are cancelled. */
    for (int i = 1; i < 3; i++)
        if (ps[i] != NULL)
            RC(fut_resolve(ps[i], fut_test_obj_new(&vals, i),
                           fut_test_obj_free),
               live ? EALREADY : 0);
    fut_release(r);
    for (int i = 0; i < 3; i++)
        fut_promise_release(ps[i]);

    /* No inputs, and a NULL input. */
    r = FUT(fut_when_all(NULL, 0));
    RC(OUTCOME(r), 0, ENOMEM);
    fut_release(r);
    r = FUT(fut_when_any(NULL, 0));
    RC(OUTCOME(r), EINVAL, ENOMEM);
    fut_release(r);
    fut_t *two[2] = {NULL, FUT(fut_resolved(NULL, NULL))};
    r = FUT(fut_when_all_settled(two, 2));
    if (RC(OUTCOME(r), 0, ENOMEM) == 0) {
        void *v = NULL;
        fut_get(r, 0, &v);
        fut_t **in = v;
        int rc0 = fut_get(in[0], 0, NULL);
        CHECK(rc0 == EINVAL || rc0 == ENOMEM);
    }
    fut_release(r);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_combinators_decide_once_and_release_inputs)
{
    sweep("combinators", scenario_combinators, 2000);
}
END_TEST

/* --------------------------------------------------- cancel scenario */

/* A then handler counting its runs in a cbrec_t. */
static void *h_count(fut_ctx_t *ctx, void *value, void *rec)
{
    (void)ctx;
    (void)value;
    atomic_fetch_add(&((cbrec_t *)rec)->ran, 1);
    return NULL;
}

/* fut_cancel on a pending chain and on pending combinators: the
 * cancellation reaches inputs nobody else holds (their promises then
 * answer EALREADY), handlers of cancelled continuations never run, their
 * free_arg runs once. */
static void scenario_cancel(void)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);

    /* p -> then -> then_ex; only the tail is held. */
    cbrec_t r1, r2;
    cbrec_init(&r1);
    cbrec_init(&r2);
    fut_t *pf;
    fut_promise_t *p = promise(&pf);
    fut_t *d1 = FUT(fut_then(pf, h_count, &r1));
    bool d1_pending = fut_state(d1) == FUT_PENDING;
    fut_t *d2 = FUT(fut_then_ex(NULL, d1, h_count, NULL, &r2, cbrec_freed));
    bool d2_pending = fut_state(d2) == FUT_PENDING;
    CHECK(fut_cancel(d2) == d2_pending);
    CHECK(atomic_load(&r2.freed) == 1);
    if (d2_pending)
        CHECK(fut_state(d2) == FUT_CANCELLED);
    if (p != NULL)
        RC(fut_resolve(p, fut_test_obj_new(&vals, 1), fut_test_obj_free),
           d1_pending && d2_pending ? EALREADY : 0);
    CHECK(atomic_load(&r1.ran) == (d1_pending && !d2_pending ? 1 : 0));
    CHECK(atomic_load(&r2.ran) == 0);
    fut_release(d2);
    fut_promise_release(p);

    /* A pending combinator: cancelling it cancels its inputs. */
    for (int kind = FUT_WHEN_ALL; kind <= FUT_WHEN_SOME; kind++) {
        fut_promise_t *ps[3];
        fut_t *fs[3];
        for (int i = 0; i < 3; i++)
            ps[i] = promise(&fs[i]);
        fut_t *r = FUT(fut_when_ex(kind, fs, 3, 2, 0));
        bool pending = fut_state(r) == FUT_PENDING;
        atomic_int cb = 0;
        int rc_cb = RC(fut_on_done(r, done_count, &cb), 0, ENOMEM);
        CHECK(fut_cancel(r) == pending);
        CHECK(atomic_load(&cb) == (rc_cb == 0 ? 1 : 0));
        for (int i = 0; i < 3; i++)
            if (ps[i] != NULL)
                RC(fut_resolve(ps[i], fut_test_obj_new(&vals, i),
                               fut_test_obj_free),
                   pending ? EALREADY : 0);
        fut_release(r);
        for (int i = 0; i < 3; i++)
            fut_promise_release(ps[i]);
    }
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_cancel_reaches_unshared_inputs_of_chains_and_combinators)
{
    sweep("cancel", scenario_cancel, 2000);
}
END_TEST

/* ------------------------------------------ waiting and iterating */

static void *task_nap(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    fut_test_sleep_ms(1);
    return arg;
}

/* fut_wait, fut_get and fut_wait_for on futures a pool settles while this
 * thread blocks (a blocked waiter allocates a wake-up node, and polls when
 * it cannot), timeouts on a pending promise, and fut_as_completed yielding
 * each future once in the order they settle. */
static void scenario_wait(void)
{
    fut_executor_t *ex = pool(2);
    if (ex == NULL)
        return;
    enum { NT = 3 };
    fut_t *f[NT];
    for (int i = 0; i < NT; i++)
        f[i] = FUT(fut_submit(ex, task_nap, FUT_TEST_PTR(i + 1)));
    RC(fut_wait(f[0], FUT_FOREVER), 0);
    void *v = NULL;
    if (RC(fut_get(f[1], FUT_S(20), &v), 0, ENOMEM) == 0)
        CHECK(FUT_TEST_INT(v) == 2);
    size_t done = 99;
    RC(fut_wait_for(f, NT, FUT_S(20), FUT_ALL_COMPLETED, &done), 0);
    CHECK(done == NT);

    fut_t *pf;
    fut_promise_t *p = promise(&pf);
    RC(fut_wait(pf, 0), p ? ETIMEDOUT : 0);
    RC(fut_wait(pf, FUT_MS(1)), p ? ETIMEDOUT : 0);
    RC(fut_get(pf, FUT_US(100), NULL), p ? FUT_TIMEDOUT : ENOMEM);
    fut_t *both[2] = {f[2], pf};
    RC(fut_wait_for(both, 2, FUT_MS(1), FUT_ALL_COMPLETED, &done),
       p ? ETIMEDOUT : 0);
    CHECK(done == (p ? 1u : 2u));
    RC(fut_wait_for(both, 2, FUT_S(20), FUT_FIRST_COMPLETED, &done), 0);
    CHECK(done >= 1);
    if (p != NULL)
        RC(fut_reject(p, EIO, "wake the waiter"), 0);
    RC(fut_wait_for(both, 2, FUT_S(20), FUT_FIRST_EXCEPTION, &done), 0);
    CHECK(done == 2);

    /* As completed: three promises settled in the order 2, 0, 1. */
    fut_promise_t *qs[3];
    fut_t *qf[3];
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        qs[i] = promise(&qf[i]);
        ok = ok && qs[i] != NULL;
    }
    fut_iter_t *it = fut_as_completed(qf, 3);
    if (it == NULL) {
        /* Only ENOMEM (the arguments are good). */
        CHECK(enomem_failed());
        R.saw_enomem = true;
    }
    fut_t *g = NULL;
    size_t idx = 99;
    if (it != NULL && ok)
        RC(fut_iter_next(it, 0, &g, &idx), ETIMEDOUT);
    static const int order[3] = {2, 0, 1};
    for (int k = 0; k < 3; k++)
        if (qs[order[k]] != NULL)
            RC(fut_resolve(qs[order[k]], NULL, NULL), 0);
    if (it != NULL) {
        int seen[3] = {0, 0, 0};
        for (int k = 0; k < 3; k++) {
            if (RC(fut_iter_next(it, FUT_S(20), &g, &idx), 0) != 0)
                break;
            if (!CHECK(idx < 3 && g == qf[idx]))
                break;
            seen[idx]++;
            if (ok)
                CHECK(idx == (size_t)order[k]);
        }
        CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
        RC(fut_iter_next(it, 0, &g, &idx), ENOENT);
    }
    fut_iter_free(it);
    fut_iter_free(NULL);

    /* An iterator that blocks until a pool task settles. */
    fut_t *slow = FUT(fut_submit(ex, task_nap, FUT_TEST_PTR(4)));
    it = fut_as_completed(&slow, 1);
    if (it != NULL) {
        RC(fut_iter_next(it, FUT_S(20), &g, &idx), 0);
        CHECK(g == slow && idx == 0);
        fut_iter_free(it);
    } else {
        CHECK(enomem_failed());
        R.saw_enomem = true;
    }

    fut_executor_free(ex);
    for (int i = 0; i < NT; i++)
        fut_release(f[i]);
    for (int i = 0; i < 3; i++) {
        fut_release(qf[i]);
        fut_promise_release(qs[i]);
    }
    fut_release(slow);
    fut_release(pf);
    fut_promise_release(p);
}

START_TEST(sweep_wait_and_as_completed_return_documented_codes)
{
    sweep("wait", scenario_wait, 2000);
}
END_TEST

/* ------------------------------------------------------ map scenario */

enum { MAP_N = 8 };

typedef struct map_rec {
    fut_test_tracker_t *vals;
    int fail_item; /* this item fails with EIO; -1: none */
    atomic_int calls[MAP_N];
} map_rec_t;

static void *map_item(fut_ctx_t *ctx, void *item, void *arg)
{
    map_rec_t *m = arg;
    int i = FUT_TEST_INT(item);
    atomic_fetch_add(&m->calls[i], 1);
    if (i == m->fail_item)
        return fut_fail(ctx, EIO, "item %d failed", i);
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(m->vals, i);
}

/* Starts one fut_map over MAP_N items and returns how it settled,
 * checking the results when it fulfils.  The record outlives the call:
 * chunks already running when the result settles (a failing item, or no
 * memory for the result) still run, and call fn with m, until the pool
 * is freed. */
static int map_once(fut_executor_t *ex, map_rec_t *m, int fail_item,
                    size_t chunk, fut_test_tracker_t *vals)
{
    *m = (map_rec_t){.vals = vals, .fail_item = fail_item};
    void *items[MAP_N];
    for (int i = 0; i < MAP_N; i++) {
        atomic_init(&m->calls[i], 0);
        items[i] = FUT_TEST_PTR(i);
    }
    fut_t *r = FUT(fut_map(ex, map_item, items, MAP_N, chunk, m));
    int rc =
        fail_item < 0 ? RC(OUTCOME(r), 0, ENOMEM) : RC(OUTCOME(r), EIO, ENOMEM);
    if (rc == 0) {
        void *v = NULL;
        fut_get(r, 0, &v);
        void **res = v;
        for (int i = 0; i < MAP_N; i++)
            CHECK(res != NULL && ((fut_test_obj_t *)res[i])->value == i);
    }
    fut_release(r);
    return rc;
}

/* Each item's function ran at most once (chunks that were cancelled or
 * never submitted did not run), and every item when the map fulfilled. */
static void map_check(map_rec_t *m, int rc)
{
    for (int i = 0; i < MAP_N; i++) {
        int calls = atomic_load(&m->calls[i]);
        CHECK(calls <= 1);
        if (rc == 0)
            CHECK(calls == 1);
    }
}

/* fut_map on a pool (each chunk its own task) and on the inline executor,
 * succeeding and with a failing item, and with no items. */
static void scenario_map(void)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    map_rec_t m[3];
    int rc[3] = {-1, -1, -1};
    fut_executor_t *ex = pool(2);
    if (ex != NULL) {
        rc[0] = map_once(ex, &m[0], -1, 3, &vals);
        rc[1] = map_once(ex, &m[1], 5, 2, &vals);
    }
    rc[2] = map_once(fut_inline_executor(), &m[2], -1, 0, &vals);
    map_rec_t none = {.vals = &vals, .fail_item = -1};
    fut_t *r = FUT(fut_map(fut_inline_executor(), map_item, NULL, 0, 1, &none));
    RC(OUTCOME(r), 0, ENOMEM);
    fut_release(r);
    fut_executor_free(ex);
    for (int i = 0; i < 3; i++)
        if (rc[i] != -1)
            map_check(&m[i], rc[i]);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_map_runs_items_at_most_once_and_frees_results)
{
    sweep("map", scenario_map, 3000);
}
END_TEST

/* ---------------------------------------------------- timer scenario */

/* fut_delay fires (its done callback runs once, on the timer thread);
 * fut_within times out (and cancels its input) or passes its input's value
 * on; cancelling a delay and a within removes the timer and, for within,
 * cancels the input nobody else holds. */
static void scenario_timer(void)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);

    fut_t *d = FUT(fut_delay(FUT_MS(1)));
    atomic_int cb = 0;
    int rc_cb = RC(fut_on_done(d, done_count, &cb), 0, ENOMEM);
    RC(OUTCOME(d), 0, ENOMEM);
    /* The callback may run on the timer thread just after d settles. */
    if (rc_cb == 0)
        fut_test_wait_atomic(&cb, 1);
    CHECK(atomic_load(&cb) == (rc_cb == 0 ? 1 : 0));
    fut_release(d);

    /* Times out: the input is asked to cancel. */
    fut_t *pf;
    fut_promise_t *p = promise(&pf);
    fut_t *keep = fut_retain(pf);
    fut_t *w = FUT(fut_within(pf, FUT_MS(1)));
    int rc = RC(OUTCOME(w), ETIMEDOUT, ENOMEM, p ? ETIMEDOUT : ENOMEM);
    if (rc == ETIMEDOUT) {
        RC(fut_wait(keep, FUT_S(20)), 0);
        CHECK(fut_state(keep) == FUT_CANCELLED);
    }
    if (p != NULL)
        RC(fut_resolve(p, fut_test_obj_new(&vals, 1), fut_test_obj_free),
           rc == ETIMEDOUT ? EALREADY : 0);
    fut_release(w);
    fut_release(keep);
    fut_promise_release(p);

    /* Settles in time: the value passes through. */
    p = promise(&pf);
    w = FUT(fut_within(pf, FUT_S(20)));
    if (p != NULL)
        RC(fut_resolve(p, fut_test_obj_new(&vals, 2), fut_test_obj_free), 0);
    if (RC(OUTCOME(w), 0, ENOMEM) == 0) {
        void *v = NULL;
        fut_get(w, 0, &v);
        CHECK(v != NULL && ((fut_test_obj_t *)v)->value == 2);
    }
    fut_release(w);
    fut_promise_release(p);

    /* Cancelled before they fire. */
    d = FUT(fut_delay(FUT_S(20)));
    bool pending = fut_state(d) == FUT_PENDING;
    CHECK(fut_cancel(d) == pending);
    RC(OUTCOME(d), pending ? ECANCELED : ENOMEM);
    fut_release(d);
    p = promise(&pf);
    w = FUT(fut_within(pf, FUT_S(20)));
    pending = fut_state(w) == FUT_PENDING;
    CHECK(fut_cancel(w) == pending);
    if (p != NULL)
        RC(fut_resolve(p, fut_test_obj_new(&vals, 3), fut_test_obj_free),
           pending ? EALREADY : 0);
    fut_release(w);
    fut_promise_release(p);
    CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(sweep_timer_delay_and_within_settle_once_and_lose_nothing)
{
    sweep("timer", scenario_timer, 2000);
}
END_TEST

/* ------------------------------------------------- progress scenarios */

/* Progress straight on a promise and on tasks: a listener added after a
 * notification hears it at once (memory), then every later one; after the
 * promise settles notify and registration answer EALREADY; fut_progress
 * from a task reaches a listener registered before the task ran, on the
 * loop executor and on a pool. */
static void scenario_progress_direct(void)
{
    int a = 1, b = 2, c = 3;
    heard_t h1, h2, h3;
    heard_init(&h1);
    heard_init(&h2);
    heard_init(&h3);

    fut_t *f;
    fut_promise_t *p = promise(&f);
    if (p != NULL) {
        /* fut.h lists no ENOMEM for fut_notify; the notify case checks
         * that rule on its own, so here it only decides what the listener
         * may have heard. */
        int n1 = RC(fut_notify(p, &a), 0, ENOMEM);
        int l1 = RC(fut_on_progress(f, listen, &h1), 0, ENOMEM);
        if (l1 == 0)
            CHECK(atomic_load(&h1.calls) == (n1 == 0 ? 1 : 0));
        int n2 = RC(fut_notify(p, &b), 0, ENOMEM);
        if (l1 == 0)
            CHECK(atomic_load(&h1.calls) == (n1 == 0) + (n2 == 0) &&
                  atomic_load(&h1.last) == (n2 == 0 ? 2 : -1));
        RC(fut_resolve(p, NULL, NULL), 0);
        RC(fut_notify(p, &c), EALREADY);
        RC(fut_on_progress(f, listen, &h2), EALREADY);
        CHECK(atomic_load(&h2.calls) == 0);
        CHECK(atomic_load(&h1.calls) <= 2);
    }
    RC(fut_on_progress(f, listen, &h2), EALREADY);
    fut_release(f);
    fut_promise_release(p);

    /* A task on the loop executor: queued until drained, so the listener
     * is in place when it reports. */
    fut_executor_t *loop = NULL;
    if (RC(fut_loop_new(&loop), 0, ENOMEM) == 0) {
        fut_test_tracker_t vals;
        fut_test_tracker_init(&vals);
        task_rec_t t;
        task_rec_init(&t, TASK_PROGRESS, &vals, loop);
        fut_t *tf = FUT(fut_submit_ex(loop, task_body, &t, task_rec_free, 0));
        int l3 = RC(fut_on_progress(tf, listen, &h3), 0, ENOMEM,
                    tf == enomem_f ? EALREADY : 0);
        fut_loop_run_pending(loop);
        task_check(tf, &t, __LINE__);
        CHECK(atomic_load(&h3.calls) == (l3 == 0 ? 1 : 0));
        fut_release(tf);
        fut_executor_free(loop);
        CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
    }

    /* A task on a pool, held at a gate until its listener is in place;
     * the listener runs on the worker. */
    fut_executor_t *ex = pool(1);
    if (ex != NULL) {
        fut_test_tracker_t vals;
        fut_test_tracker_init(&vals);
        fut_test_latch_t gate;
        fut_test_latch_init(&gate);
        heard_t h4;
        heard_init(&h4);
        task_rec_t t;
        task_rec_init(&t, TASK_PROGRESS, &vals, ex);
        t.gate = &gate;
        fut_t *tf = FUT(fut_submit_ex(ex, task_body, &t, task_rec_free, 0));
        int l4 = RC(fut_on_progress(tf, listen, &h4), 0, ENOMEM,
                    tf == enomem_f ? EALREADY : 0);
        fut_test_latch_open(&gate);
        task_check(tf, &t, __LINE__);
        fut_executor_free(ex);
        CHECK(atomic_load(&h4.calls) == (l4 == 0 ? 1 : 0));
        fut_release(tf);
        fut_test_latch_destroy(&gate);
        CHECK(atomic_load(&vals.freed) == atomic_load(&vals.made));
    }
}

START_TEST(sweep_progress_on_promise_and_task_reaches_listeners)
{
    sweep("progress_direct", scenario_progress_direct, 2000);
}
END_TEST

/* fut_notify returns 0, EINVAL, EALREADY or ENOMEM, the codes fut.h
 * lists: with no listener yet (the latest progress is still kept for a
 * late listener, which takes memory), after settling, and for NULL. */
static void scenario_notify_codes(void)
{
    int x = 5;
    heard_t h;
    heard_init(&h);
    fut_t *f;
    fut_promise_t *p = promise(&f);
    if (p != NULL) {
        RC(fut_notify(p, &x), 0, ENOMEM);
        RC(fut_notify(p, &x), 0, ENOMEM);
        RC(fut_resolve(p, NULL, NULL), 0);
        RC(fut_notify(p, &x), EALREADY);
        RC(fut_on_progress(f, listen, &h), EALREADY);
        CHECK(atomic_load(&h.calls) == 0);
    }
    RC(fut_notify(NULL, &x), EINVAL);
    fut_release(f);
    fut_promise_release(p);
}

START_TEST(sweep_progress_notify_returns_only_documented_codes)
{
    sweep("notify", scenario_notify_codes, 500);
}
END_TEST

static void *h_pass(fut_ctx_t *ctx, void *value, void *counter)
{
    (void)ctx;
    atomic_fetch_add((atomic_int *)counter, 1);
    return value;
}

/* Progress relayed down a then-chain: a listener on the tail of
 * promise -> then -> then -> then hears the head's notification when
 * fut_on_progress returned 0 (fut.h: the continuation relays its input's
 * progress), and each handler runs once when the head resolves. */
static void scenario_progress_chain(void)
{
    enum { LINKS = 3 };
    int x = 11;
    heard_t h;
    heard_init(&h);
    atomic_int ran[LINKS];
    fut_t *pf;
    fut_promise_t *p = promise(&pf);
    fut_t *tail = pf;
    bool made[LINKS];
    for (int i = 0; i < LINKS; i++) {
        atomic_init(&ran[i], 0);
        tail = FUT(fut_then(tail, h_pass, &ran[i]));
        made[i] = tail != enomem_f;
    }
    int rc = RC(fut_on_progress(tail, listen, &h), 0, ENOMEM,
                fut_done(tail) ? EALREADY : 0);
    if (p != NULL) {
        /* ENOMEM (not in fut.h, see the notify case) means the head had no
         * relay to call, which is itself a failure when rc == 0. */
        RC(fut_notify(p, &x), 0, ENOMEM);
        int calls = atomic_load(&h.calls), last = atomic_load(&h.last);
        if (rc == 0 && (calls != 1 || last != x))
            record(__LINE__,
                   "fut_on_progress returned 0 on the tail of a %d-link "
                   "chain, and the listener heard %d notifications (the "
                   "last: %d), not 1 (%d)",
                   LINKS, calls, last, x);
        RC(fut_resolve(p, NULL, NULL), 0);
    }
    RC(OUTCOME(tail), 0, ENOMEM);
    /* A link's handler runs iff it and every link before it were made. */
    bool all = p != NULL;
    for (int i = 0; i < LINKS; i++) {
        all = all && made[i];
        CHECK(atomic_load(&ran[i]) == (all ? 1 : 0));
    }
    CHECK(atomic_load(&h.calls) <= 1);
    fut_release(tail);
    fut_promise_release(p);
}

START_TEST(sweep_progress_relayed_down_a_chain_reaches_the_tail_listener)
{
    sweep("progress_chain", scenario_progress_chain, 2000);
}
END_TEST

/* ------------------------------------------ unhandled-rejection hook */

static atomic_int hook_calls, hook_code;

static void hook(const fut_error_t *err, void *arg)
{
    (void)arg;
    atomic_store(&hook_code, err ? err->code : -1);
    atomic_fetch_add(&hook_calls, 1);
}

/* A rejection freed unread reaches the hook exactly once (the ENOMEM
 * future, which is not freed, never); one that was read, or handed down a
 * chain, does not; a chain that cannot grow hands the rejection back to
 * its input, which then reports it. */
static void scenario_unhandled(void)
{
    atomic_store(&hook_calls, 0);
    atomic_store(&hook_code, 0);
    fut_set_unhandled_hook(hook, NULL);

    fut_t *f = FUT(fut_rejected(EIO, "never read"));
    bool real = f != enomem_f;
    fut_release(f);
    CHECK(atomic_load(&hook_calls) == (real ? 1 : 0));
    if (real)
        CHECK(atomic_load(&hook_code) == EIO);

    /* Read with fut_error: not reported. */
    atomic_store(&hook_calls, 0);
    f = FUT(fut_rejected(EIO, "read"));
    CHECK(fut_error(f) != NULL);
    fut_release(f);
    CHECK(atomic_load(&hook_calls) == 0);

    /* A promise rejected and dropped unread. */
    atomic_store(&hook_calls, 0);
    fut_promise_t *p = promise(&f);
    if (p != NULL)
        RC(fut_reject(p, EPROTO, "dropped"), 0);
    fut_release(f);
    fut_promise_release(p);
    CHECK(atomic_load(&hook_calls) == (p != NULL ? 1 : 0));

    /* Handed down a chain: the tail, unread, reports it once; if the
     * continuation could not be made the input reports it instead; if the
     * input was the ENOMEM future the tail reports ENOMEM. */
    atomic_store(&hook_calls, 0);
    cbrec_t ran;
    cbrec_init(&ran);
    f = FUT(fut_rejected(EIO, "down the chain"));
    real = f != enomem_f;
    fut_t *d = FUT(fut_then(f, h_count, &ran));
    bool d_real = d != enomem_f;
    fut_release(d);
    CHECK(atomic_load(&hook_calls) == (real || d_real ? 1 : 0));
    if (real)
        CHECK(atomic_load(&hook_code) == EIO);
    CHECK(atomic_load(&ran.ran) == 0);
    fut_set_unhandled_hook(NULL, NULL);
}

START_TEST(sweep_unhandled_hook_reports_each_unread_rejection_once)
{
    sweep("unhandled", scenario_unhandled, 500);
}
END_TEST

/* ------------------------------------------------------ random sweeps */

/* Many failures in one run, at random places: the rules hold for every
 * combination, not just for one failure or a failing tail. */
static const named_scenario_t families[] = {
    {"promise", scenario_promise},   {"inline", scenario_inline},
    {"pool", scenario_pool},         {"pool_cancel", scenario_pool_cancel},
    {"loop", scenario_loop},         {"chain_inline", scenario_chain_inline},
    {"chain_on", scenario_chain_on}, {"combinators", scenario_combinators},
    {"cancel", scenario_cancel},     {"wait", scenario_wait},
    {"map", scenario_map},           {"unhandled", scenario_unhandled},
};

static const named_scenario_t timer_progress[] = {
    {"timer", scenario_timer},
    {"notify", scenario_notify_codes},
    {"progress_direct", scenario_progress_direct},
    {"progress_chain", scenario_progress_chain},
};

START_TEST(stress_sweep_random_failures_keep_every_rule)
{
    sweep_random("random", families, sizeof families / sizeof families[0], 200,
                 4);
}
END_TEST

START_TEST(stress_sweep_random_failures_in_timers_and_progress)
{
    sweep_random("random_timer_progress", timer_progress,
                 sizeof timer_progress / sizeof timer_progress[0], 200, 4);
}
END_TEST

/* ------------------------------------------------------------- suite */

Suite *fut_test_sweep_suite(void)
{
    Suite *s = suite_create("sweep");
    TCase *tc = tcase_create("sweep");
    tcase_set_timeout(tc, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(tc, sweep_promise_settles_and_destroys_exactly_once);
    tcase_add_test(tc, sweep_inline_submit_runs_task_or_returns_enomem);
    tcase_add_test(tc, sweep_pool_new_submit_free_lose_nothing);
    tcase_add_test(tc, sweep_pool_cancel_and_shutdown_run_free_arg_once);
    tcase_add_test(tc,
                   sweep_loop_executor_runs_drained_work_and_cancels_the_rest);
    tcase_add_test(tc, sweep_chain_handlers_run_exactly_once_inline);
    tcase_add_test(tc, sweep_chain_on_pool_and_loop_run_handlers_exactly_once);
    tcase_add_test(tc, sweep_combinators_decide_once_and_release_inputs);
    tcase_add_test(
        tc, sweep_cancel_reaches_unshared_inputs_of_chains_and_combinators);
    tcase_add_test(tc, sweep_wait_and_as_completed_return_documented_codes);
    tcase_add_test(tc, sweep_map_runs_items_at_most_once_and_frees_results);
    tcase_add_test(tc, sweep_unhandled_hook_reports_each_unread_rejection_once);
    suite_add_tcase(s, tc);

    /* Scenarios that fail on today's library each have a case of their
     * own, so that each shows its own failure. */
    TCase *tt = tcase_create("sweep_timer");
    tcase_set_timeout(tt, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(tt,
                   sweep_timer_delay_and_within_settle_once_and_lose_nothing);
    suite_add_tcase(s, tt);
    TCase *tp = tcase_create("sweep_progress");
    tcase_set_timeout(tp, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(tp, sweep_progress_notify_returns_only_documented_codes);
    tcase_add_test(tp, sweep_progress_on_promise_and_task_reaches_listeners);
    tcase_add_test(
        tp, sweep_progress_relayed_down_a_chain_reaches_the_tail_listener);
    suite_add_tcase(s, tp);

    TCase *st = tcase_create("sweep_stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_set_tags(st, "stress");
    tcase_add_test(st, stress_sweep_random_failures_keep_every_rule);
    tcase_add_test(st, stress_sweep_random_failures_in_timers_and_progress);
    suite_add_tcase(s, st);
    return s;
}

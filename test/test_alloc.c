/*
 * test_alloc.c - allocation failure injection through fut_set_allocator.
 *
 * A counting allocator fails exactly its Nth call.  Each scenario runs with
 * N = 1, 2, 3, ... until a run in which the Nth call never came (the
 * scenario then ran without a failure).  In every run: each API reports
 * ENOMEM as documented (an ENOMEM-rejected future, ENOMEM from an int
 * function, NULL from fut_promise_new), counted destructors of values and
 * args run exactly once, callbacks run exactly once or (on ENOMEM) never,
 * and every block the allocator handed out has come back, with the size it
 * was asked for, once the scenario's objects are gone and the default
 * allocator is restored.
 *
 * The allocator's state is global (the library's allocator is); every test
 * restores the default allocator before it ends.
 */
#include "test_util.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ counting allocator */

enum { NBUCKETS = 4096 };

typedef struct block {
    void *p;
    size_t size;
    struct block *next;
} block_t;

static struct {
    pthread_mutex_t mu;
    block_t *buckets[NBUCKETS];
    long live;          /* blocks handed out and not yet freed */
    long foreign;       /* frees of pointers this allocator never handed out */
    long size_mismatch; /* frees whose size differs from the one asked for */
    long bad_ctx;       /* calls that did not pass our ctx through */
    atomic_long calls;
    atomic_long fail_at;  /* this call fails (0: none) */
    atomic_int failed;    /* the failing call happened */
    atomic_int fail_all;  /* every call fails */
    atomic_long fail_big; /* calls for this many bytes or more fail (0: no) */
} A = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int ctx_token;

static size_t bucket_of(const void *p)
{
    return ((uintptr_t)p >> 4) % NBUCKETS;
}

static void *count_alloc(size_t size, void *ctx)
{
    long n = atomic_fetch_add(&A.calls, 1) + 1;
    if (ctx != &ctx_token) {
        pthread_mutex_lock(&A.mu);
        A.bad_ctx++;
        pthread_mutex_unlock(&A.mu);
    }
    long big = atomic_load(&A.fail_big);
    if (atomic_load(&A.fail_all) || n == atomic_load(&A.fail_at) ||
        (big && (long)size >= big)) {
        atomic_store(&A.failed, 1);
        return NULL;
    }
    void *p = malloc(size ? size : 1);
    block_t *b = malloc(sizeof *b);
    if (p == NULL || b == NULL) {
        free(p);
        free(b);
        return NULL;
    }
    b->p = p;
    b->size = size;
    pthread_mutex_lock(&A.mu);
    b->next = A.buckets[bucket_of(p)];
    A.buckets[bucket_of(p)] = b;
    A.live++;
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
    while (*link && (*link)->p != p)
        link = &(*link)->next;
    block_t *b = *link;
    if (b == NULL) {
        A.foreign++;
    } else {
        *link = b->next;
        A.live--;
        if (b->size != size)
            A.size_mismatch++;
    }
    pthread_mutex_unlock(&A.mu);
    free(b);
    free(p); /* malloc underneath either way */
}

static const fut_allocator_t counting = {
    .alloc = count_alloc, .free = count_free, .ctx = &ctx_token};

static void alloc_arm(long fail_at, bool fail_all)
{
    pthread_mutex_lock(&A.mu);
    A.foreign = A.size_mismatch = A.bad_ctx = 0;
    pthread_mutex_unlock(&A.mu);
    atomic_store(&A.calls, 0);
    atomic_store(&A.fail_at, fail_at);
    atomic_store(&A.failed, 0);
    atomic_store(&A.fail_all, fail_all);
    atomic_store(&A.fail_big, 0);
}

/* Restores the default allocator and checks that nothing leaked. */
static void alloc_restore_and_check(long n)
{
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    pthread_mutex_lock(&A.mu);
    long live = A.live, foreign = A.foreign, mismatch = A.size_mismatch,
         bad_ctx = A.bad_ctx;
    /* Free what leaked so that valgrind reports only the first leak. */
    for (int i = 0; i < NBUCKETS; i++) {
        while (A.buckets[i]) {
            block_t *b = A.buckets[i];
            A.buckets[i] = b->next;
            free(b->p);
            free(b);
        }
    }
    A.live = 0;
    pthread_mutex_unlock(&A.mu);
    ck_assert_msg(live == 0, "failing allocation %ld: %ld blocks never freed",
                  n, live);
    ck_assert_msg(foreign == 0,
                  "failing allocation %ld: %ld frees of unknown blocks", n,
                  foreign);
    ck_assert_msg(mismatch == 0,
                  "failing allocation %ld: %ld frees with the wrong size", n,
                  mismatch);
    ck_assert_msg(bad_ctx == 0,
                  "failing allocation %ld: ctx not passed through", n);
}

/* The failing allocation of the current run, for messages. */
static long cur_n;

#define AC(cond)                                                               \
    ck_assert_msg((cond), "failing allocation %ld: assertion '%s' failed",     \
                  cur_n, #cond)
#define AC_CODE(rc, ...)                                                       \
    do {                                                                       \
        int ac_rc_ = (rc);                                                     \
        int ac_ok_[] = {__VA_ARGS__};                                          \
        bool ac_found_ = false;                                                \
        for (size_t ac_i_ = 0; ac_i_ < sizeof ac_ok_ / sizeof ac_ok_[0];       \
             ac_i_++)                                                          \
            ac_found_ = ac_found_ || ac_ok_[ac_i_] == ac_rc_;                  \
        ck_assert_msg(ac_found_, "failing allocation %ld: %s returned %d",     \
                      cur_n, #rc, ac_rc_);                                     \
    } while (0)

/* What a scenario saw. */
typedef struct outcome {
    bool saw_enomem;
} outcome_t;

typedef void (*scenario_fn)(outcome_t *out);

/* Runs fn with the Nth allocation failing, for every N until fn runs out
 * of allocations before N. */
static void run_failing_each_allocation(scenario_fn fn, long max_runs)
{
    for (long n = 1;; n++) {
        cur_n = n;
        outcome_t out = {.saw_enomem = false};
        alloc_arm(n, false);
        ck_assert_int_eq(fut_set_allocator(&counting), 0);
        fn(&out);
        alloc_restore_and_check(n);
        bool failed = atomic_load(&A.failed);
        if (!failed) {
            ck_assert_msg(
                !out.saw_enomem,
                "ENOMEM reported without a failed allocation (run %ld)", n);
            ck_assert_msg(
                n > 1, "the scenario allocated nothing through the allocator");
            break;
        }
        ck_assert_msg(n < max_runs, "more than %ld allocations in one scenario",
                      max_runs);
    }
}

/* ------------------------------------------------------------ helpers */

static bool is_enomem(fut_t *f)
{
    const fut_error_t *e = fut_error(f);
    return e != NULL && e->code == ENOMEM;
}

static void progress_count(fut_t *f, void *progress, void *counter)
{
    (void)f;
    (void)progress;
    atomic_fetch_add((atomic_int *)counter, 1);
}

/* ----------------------------------------------------- the allocator */

START_TEST(alloc_set_allocator_requires_both_functions)
{
    fut_allocator_t no_alloc = {.alloc = NULL, .free = count_free, .ctx = NULL};
    fut_allocator_t no_free = {.alloc = count_alloc, .free = NULL, .ctx = NULL};
    ck_assert_int_eq(fut_set_allocator(&no_alloc), EINVAL);
    ck_assert_int_eq(fut_set_allocator(&no_free), EINVAL);
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    /* The default allocator still works. */
    fut_t *f = fut_resolved(NULL, NULL);
    ck_assert_int_eq(fut_state(f), FUT_FULFILLED);
    fut_release(f);
}
END_TEST

START_TEST(alloc_objects_come_from_the_installed_allocator)
{
    alloc_arm(0, false);
    cur_n = 0;
    ck_assert_int_eq(fut_set_allocator(&counting), 0);
    fut_promise_t *p = fut_promise_new();
    ck_assert_ptr_nonnull(p);
    fut_t *f = fut_promise_future(p);
    fut_t *g = fut_resolved(NULL, NULL);
    ck_assert(atomic_load(&A.calls) > 0);
    fut_release(g);
    fut_release(f);
    fut_promise_release(p);
    alloc_restore_and_check(0);
}
END_TEST

/* With malloc (no allocator installed) futures are carved from slabs:
 * each costs its own size and no malloc chunk header, freed objects are
 * reused rather than allocated again, and fut_set_allocator gives the
 * slabs back once every object is free.  Measured with glibc's mallinfo2;
 * skipped where malloc is replaced (sanitizers, valgrind: mallinfo2 then
 * reports nothing) or fut's caches are off. */
static size_t heap_in_use(void)
{
    return mallinfo2().uordblks;
}

START_TEST(alloc_builtin_slabs_pack_reuse_and_give_back)
{
    enum { N = 100000 };
    fut_t **fs = malloc(N * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    size_t base = heap_in_use();
    size_t grew[3];
    for (int round = 0; round < 3; round++) {
        size_t before = heap_in_use();
        for (size_t i = 0; i < N; i++)
            fs[i] = fut_resolved(NULL, NULL);
        size_t after = heap_in_use();
        grew[round] = after > before ? after - before : 0;
        for (size_t i = 0; i < N; i++)
            fut_release(fs[i]);
    }
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    size_t end = heap_in_use();
    free(fs);
    const char *direct = getenv("FUT_DIRECT_ALLOC");
    if (direct && strcmp(direct, "1") == 0) {
        printf("alloc_builtin_slabs_pack_reuse_and_give_back: skipped, "
               "FUT_DIRECT_ALLOC=1 turns the caches off\n");
        return;
    }
    if (base == 0 || grew[0] < (size_t)N * 16) {
        printf("alloc_builtin_slabs_pack_reuse_and_give_back: skipped, "
               "malloc is not glibc's here\n");
        return;
    }
    /* 56 bytes a future plus slab headers; one malloc chunk each would be
     * 64 bytes a future. */
    ck_assert_uint_le(grew[0], (size_t)N * 58);
    ck_assert_uint_le(grew[1], grew[0] / 50);
    ck_assert_uint_le(grew[2], grew[0] / 50);
    ck_assert_uint_le(end, base + grew[0] / 50);
}
END_TEST

/* fut_trim gives back the slabs whose objects are all free, and keeps the
 * ones that still hold a live object (the live ones stay usable): a
 * burst of 100,000 futures, one in 1,000 kept. */
START_TEST(alloc_trim_gives_back_whole_free_slabs)
{
    enum { N = 100000, KEEP_EVERY = 1000 };
    fut_t **fs = malloc(N * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    size_t base = heap_in_use();
    for (size_t i = 0; i < N; i++)
        fs[i] = fut_resolved(FUT_TEST_PTR(i), NULL);
    size_t grew = heap_in_use() - base;
    for (size_t i = 0; i < N; i++)
        if (i % KEEP_EVERY != 0)
            fut_release(fs[i]);
    fut_trim();
    size_t pinned = heap_in_use() - base;
    for (size_t i = 0; i < N; i += KEEP_EVERY) {
        void *v = NULL;
        ck_assert_int_eq(fut_get(fs[i], 0, &v), 0);
        ck_assert_int_eq(FUT_TEST_INT(v), (int)i);
        fut_release(fs[i]);
    }
    fut_trim();
    size_t end = heap_in_use();
    free(fs);
    if (getenv("FUT_DIRECT_ALLOC") || base == 0 || grew < (size_t)N * 16) {
        printf("alloc_trim_gives_back_whole_free_slabs: skipped, the caches "
               "are off or malloc is not glibc's here\n");
        return;
    }
    /* 100 live futures pin at most 100 slabs of 256: under 40% of them. */
    ck_assert_msg(pinned <= grew * 2 / 5, "pinned %zu of %zu bytes", pinned,
                  grew);
    ck_assert_msg(end <= base + grew / 50, "%zu bytes left of %zu", end - base,
                  grew);
}
END_TEST

/* A pool's burst goes back when the pool is freed: its workers' caches
 * reach the depot as they exit, and fut_executor_free trims. */
static void *return_arg(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

START_TEST(alloc_pool_free_gives_back_its_burst)
{
    enum { N = 100000 };
    fut_t **fs = malloc(N * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
    size_t base = heap_in_use();
    fut_executor_t *pool = fut_test_pool(2);
    for (size_t i = 0; i < N; i++)
        fs[i] = fut_submit(pool, return_arg, FUT_TEST_PTR(i));
    size_t grew = heap_in_use() - base;
    for (size_t i = 0; i < N; i++) {
        ck_assert_int_eq(fut_wait(fs[i], FUT_FOREVER), 0);
        fut_release(fs[i]);
    }
    fut_executor_free(pool);
    size_t end = heap_in_use();
    free(fs);
    if (getenv("FUT_DIRECT_ALLOC") || base == 0 || grew < (size_t)N * 16) {
        printf("alloc_pool_free_gives_back_its_burst: skipped, the caches "
               "are off or malloc is not glibc's here\n");
        return;
    }
    ck_assert_msg(end <= base + grew / 10, "%zu bytes left of %zu",
                  end > base ? end - base : 0, grew);
}
END_TEST

/* Live blocks of the counting allocator of at least min bytes. */
static long live_at_least(size_t min)
{
    long n = 0;
    pthread_mutex_lock(&A.mu);
    for (int i = 0; i < NBUCKETS; i++)
        for (block_t *b = A.buckets[i]; b; b = b->next)
            n += b->size >= min;
    pthread_mutex_unlock(&A.mu);
    return n;
}

static void *return_nothing(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

/* A burst queued behind a busy worker grows the pool's queue of outside
 * tasks by hundreds of blocks; once the burst has run and the worker has
 * parked, the pool gives all but a few back to the allocator, without
 * being freed.  (Before, a pool kept the blocks of the longest its queue
 * had been until it was freed.) */
START_TEST(alloc_idle_pool_gives_back_its_queue_blocks)
{
    enum { N = 100000, BIG = 1024 };
    fut_t **fs = malloc(N * sizeof *fs);
    ck_assert_ptr_nonnull(fs);
    alloc_arm(0, false);
    ck_assert_int_eq(fut_set_allocator(&counting), 0);
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&(fut_pool_config_t){.threads = 1}, &pool),
                     0);
    for (int round = 0; round < 2; round++) {
        fut_test_blocker_t b;
        fut_test_blocker_init(&b, 1);
        fut_t *blocker = fut_submit(pool, fut_test_task_block, &b);
        fut_test_wait_atomic(&b.started, 1);
        long before = live_at_least(BIG);
        for (size_t i = 0; i < N; i++)
            fs[i] = fut_submit(pool, return_nothing, NULL);
        long during = live_at_least(BIG);
        ck_assert_msg(during > before + 100, "the queue grew by %ld blocks",
                      during - before);
        fut_test_latch_open(&b.latch);
        for (size_t i = 0; i < N; i++) {
            ck_assert_int_eq(fut_wait(fs[i], FUT_FOREVER), 0);
            fut_release(fs[i]);
        }
        ck_assert_int_eq(fut_wait(blocker, FUT_FOREVER), 0);
        fut_release(blocker);
        fut_test_blocker_destroy(&b);
        /* The worker parks after a few looks for more work. */
        int64_t deadline = fut_test_now_ns() + FUT_S(10);
        while (live_at_least(BIG) > before + 8 && fut_test_now_ns() < deadline)
            fut_test_sleep_ms(1);
        ck_assert_msg(live_at_least(BIG) <= before + 8,
                      "round %d: %ld of %ld blocks kept", round,
                      live_at_least(BIG) - before, during - before);
    }
    fut_executor_free(pool);
    free(fs);
    alloc_restore_and_check(0);
}
END_TEST

/* Threads that exit with part of a batch in their caches leave those
 * blocks to the depot, counted right, and later threads use them: each
 * thread frees futures another thread made (its cache then ends between
 * batches) and makes new ones from what earlier threads left (a batch
 * counted wrong crashed a later thread's exit). */
typedef struct churn {
    fut_t *fs[1000];
    size_t n;
} churn_t;

static void *churn_thread(void *arg)
{
    churn_t *c = arg;
    for (size_t i = 0; i < c->n; i++)
        fut_release(c->fs[i]);
    c->n = 1000 - c->n;
    for (size_t i = 0; i < c->n; i++)
        c->fs[i] = fut_resolved(NULL, NULL);
    return NULL;
}

START_TEST(alloc_thread_exit_leaves_partial_caches_usable)
{
    static churn_t c;
    c.n = 0;
    for (size_t i = 0; i < 60; i++) {
        size_t want = 1 + i * 97 % 999;
        for (; c.n < want; c.n++)
            c.fs[c.n] = fut_resolved(NULL, NULL);
        fut_test_join(fut_test_spawn(churn_thread, &c));
        for (size_t k = 0; k < c.n; k++)
            ck_assert_int_eq(fut_state(c.fs[k]), FUT_FULFILLED);
    }
    for (size_t k = 0; k < c.n; k++)
        fut_release(c.fs[k]);
    ck_assert_int_eq(fut_set_allocator(NULL), 0);
}
END_TEST

/* ------------------------------------------- every allocation fails */

START_TEST(rule2_enomem_when_every_allocation_fails)
{
    fut_test_tracker_t tr;
    fut_test_tracker_init(&tr);
    fut_test_counted_t rf;
    fut_test_counted_init(&rf, 0);
    cur_n = -1;
    alloc_arm(0, true);
    ck_assert_int_eq(fut_set_allocator(&counting), 0);

    ck_assert_ptr_null(fut_promise_new());

    fut_t *r = fut_resolved(fut_test_obj_new(&tr, 1), fut_test_obj_free);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fut_state(r), FUT_REJECTED);
    ck_assert_int_eq(fut_get(r, FUT_FOREVER, NULL), ENOMEM);
    ck_assert_int_eq(fut_error(r)->code, ENOMEM);
    fut_release(r);
    ck_assert_int_eq(atomic_load(&tr.freed), 1); /* the value was not lost */

    r = fut_rejected(EIO, "message");
    ck_assert_ptr_nonnull(r);
    AC_CODE(fut_get(r, 0, NULL), EIO, ENOMEM);
    fut_release(r);

    fut_executor_t *pool = NULL;
    fut_pool_config_t cfg = {.threads = 2};
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), ENOMEM);

    /* The immortal ENOMEM future survives any number of releases. */
    fut_t *a = fut_submit_ex(fut_inline_executor(), fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    fut_t *b = fut_submit_ex(fut_inline_executor(), fut_test_task_counted, &rf,
                             fut_test_counted_free, 0);
    ck_assert_int_eq(fut_get(a, 0, NULL), ENOMEM);
    ck_assert_int_eq(fut_get(b, 0, NULL), ENOMEM);
    ck_assert_int_eq(atomic_load(&rf.ran), 0);
    ck_assert_int_eq(atomic_load(&rf.freed), 2);
    ck_assert_ptr_eq(fut_retain(a), a);
    fut_release(a);
    fut_release(a);
    fut_release(b);
    fut_t *c = fut_resolved(NULL, NULL);
    ck_assert(!fut_cancel(c)); /* settled: cannot be cancelled */
    ck_assert_int_eq(fut_state(c), FUT_REJECTED);
    ck_assert_int_eq(fut_error(c)->code, ENOMEM);
    fut_release(c);

    alloc_restore_and_check(-1);
}
END_TEST

/* ---------------------------------------------- promise scenario */

static void scenario_promise(outcome_t *out)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e[3];
    for (int i = 0; i < 3; i++)
        fut_test_entry_init(&e[i], &log, i);
    atomic_int progress_calls = 0;

    fut_promise_t *p = fut_promise_new();
    if (p == NULL) {
        AC(atomic_load(&A.failed));
        out->saw_enomem = true;
    } else {
        fut_t *f = fut_promise_future(p);
        AC(f != NULL);
        bool f_ok = !is_enomem(f);
        out->saw_enomem |= !f_ok;
        int rc0 =
            fut_on_done_ex(f, fut_test_done_cb, &e[0], fut_test_entry_free);
        AC_CODE(rc0, 0, ENOMEM);
        AC(atomic_load(&e[0].freed) == (rc0 == 0 ? 0 : 1));
        int rc1 = fut_on_done(f, fut_test_done_cb, &e[1]);
        AC_CODE(rc1, 0, ENOMEM);
        int rcp = fut_on_progress(f, progress_count, &progress_calls);
        AC_CODE(rcp, 0, ENOMEM, f_ok ? 0 : EALREADY);
        out->saw_enomem |= rc0 || rc1 || rcp == ENOMEM;
        int x = 1;
        AC_CODE(fut_notify(p, &x), 0);
        AC(atomic_load(&progress_calls) == (f_ok && rcp == 0 ? 1 : 0));
        AC_CODE(fut_resolve(p, fut_test_obj_new(&vals, 1), fut_test_obj_free),
                0);
        AC(atomic_load(&e[0].ran) == (rc0 == 0 ? 1 : 0));
        AC(atomic_load(&e[0].freed) == 1);
        AC(atomic_load(&e[1].ran) == (rc1 == 0 ? 1 : 0));
        AC_CODE(fut_resolve(p, fut_test_obj_new(&vals, 2), fut_test_obj_free),
                EALREADY);
        AC(atomic_load(&vals.freed) == 1);
        if (f_ok) {
            void *v = NULL;
            AC_CODE(fut_get(f, 0, &v), 0);
            AC(((fut_test_obj_t *)v)->value == 1);
        }
        /* Registered after settling: runs at once, or ENOMEM and never. */
        int rc2 =
            fut_on_done_ex(f, fut_test_done_cb, &e[2], fut_test_entry_free);
        AC_CODE(rc2, 0, ENOMEM);
        out->saw_enomem |= rc2 != 0;
        AC(atomic_load(&e[2].ran) == (rc2 == 0 ? 1 : 0));
        AC(atomic_load(&e[2].freed) == 1);
        fut_release(f);
        fut_promise_release(p);
        AC(atomic_load(&vals.freed) == 2);
    }

    /* A broken promise. */
    p = fut_promise_new();
    if (p == NULL) {
        out->saw_enomem = true;
    } else {
        fut_t *f = fut_promise_future(p);
        fut_promise_release(p);
        if (is_enomem(f))
            out->saw_enomem = true;
        else
            AC_CODE(fut_get(f, 0, NULL), EPIPE);
        fut_release(f);
    }

    /* Ready-made futures. */
    fut_t *r = fut_resolved(fut_test_obj_new(&vals, 3), fut_test_obj_free);
    int rc = fut_get(r, 0, NULL);
    AC_CODE(rc, 0, ENOMEM);
    out->saw_enomem |= rc != 0;
    fut_release(r);
    AC(atomic_load(&vals.freed) == atomic_load(&vals.made));
    r = fut_rejected(EIO, "copied message");
    rc = fut_get(r, 0, NULL);
    AC_CODE(rc, EIO, ENOMEM);
    out->saw_enomem |= rc == ENOMEM;
    fut_release(r);
    AC(atomic_load(&log.bad) == 0);
}

START_TEST(rule4_alloc_failure_promise_scenario)
{
    run_failing_each_allocation(scenario_promise, 1000);
}
END_TEST

/* ------------------------------------------------- pool scenario */

enum { PT = 6 };

typedef struct ptask {
    /* First, so that fut_test_counted_free can take the whole ptask_t as
     * its argument. */
    fut_test_counted_t rf;
    fut_test_tracker_t *vals;
    fut_executor_t *pool;
    int kind; /* 0 value, 1 fail, 2 progress, 3 nested submit */
} ptask_t;

static void *task_scenario(fut_ctx_t *ctx, void *arg)
{
    ptask_t *t = arg;
    atomic_fetch_add(&t->rf.ran, 1);
    switch (t->kind) {
    case 1:
        return fut_fail(ctx, EIO, "failed %d", t->kind);
    case 2: {
        int x = 5;
        fut_progress(ctx, &x);
        break;
    }
    case 3: {
        fut_t *inner =
            fut_submit(t->pool, fut_test_task_identity, FUT_TEST_PTR(4));
        int rc = fut_get(inner, FUT_FOREVER, NULL);
        fut_release(inner);
        if (rc != 0)
            return fut_fail(ctx, rc, "inner %d", rc);
        break;
    }
    default:
        break;
    }
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(t->vals, t->kind);
}

static int scen_init(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

static void scen_exit(void *arg)
{
    atomic_fetch_sub((atomic_int *)arg, 1);
}

static void scenario_pool(outcome_t *out)
{
    atomic_int workers = 0; /* inits minus exits */
    fut_pool_config_t cfg = {.threads = 2,
                             .worker_init = scen_init,
                             .worker_exit = scen_exit,
                             .worker_arg = &workers};
    fut_executor_t *pool = NULL;
    int rc = fut_pool_new(&cfg, &pool);
    AC_CODE(rc, 0, ENOMEM);
    if (rc != 0) {
        out->saw_enomem = true;
        AC(atomic_load(&workers) == 0);
        return;
    }
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    fut_test_log_t log;
    fut_test_log_init(&log);
    fut_test_entry_t e[PT];
    ptask_t t[PT];
    fut_t *fs[PT];
    int cb_rc[PT];
    atomic_int progress_calls = 0;
    for (int i = 0; i < PT; i++) {
        t[i] = (ptask_t){.vals = &vals, .pool = pool, .kind = i % 4};
        fut_test_counted_init(&t[i].rf, 0);
        fut_test_entry_init(&e[i], &log, i);
        fs[i] =
            fut_submit_ex(pool, task_scenario, &t[i], fut_test_counted_free, 0);
        AC(fs[i] != NULL);
        cb_rc[i] =
            fut_on_done_ex(fs[i], fut_test_done_cb, &e[i], fut_test_entry_free);
        AC_CODE(cb_rc[i], 0, ENOMEM);
        out->saw_enomem |= cb_rc[i] != 0;
        if (i == 2) {
            int prc = fut_on_progress(fs[i], progress_count, &progress_calls);
            AC_CODE(prc, 0, ENOMEM, EALREADY);
            out->saw_enomem |= prc == ENOMEM;
        }
    }
    for (int i = 0; i < PT; i++) {
        void *v = NULL;
        rc = fut_get(fs[i], FUT_FOREVER, &v);
        if (t[i].kind == 1)
            AC_CODE(rc, EIO, ENOMEM);
        else
            AC_CODE(rc, 0, ENOMEM);
        out->saw_enomem |= rc == ENOMEM;
        if (rc == 0)
            AC(((fut_test_obj_t *)v)->value == t[i].kind);
        AC(atomic_load(&t[i].rf.ran) <= 1);
        if (rc == 0 || rc == EIO)
            AC(atomic_load(&t[i].rf.ran) == 1);
    }
    fut_executor_free(pool);
    AC(atomic_load(&workers) == 0); /* worker_exit matched every worker_init */
    for (int i = 0; i < PT; i++) {
        AC(atomic_load(&t[i].rf.freed) == 1);
        AC(atomic_load(&e[i].freed) == 1);
        AC(atomic_load(&e[i].ran) == (cb_rc[i] == 0 ? 1 : 0));
        fut_release(fs[i]);
    }
    AC(atomic_load(&vals.freed) == atomic_load(&vals.made));
    AC(atomic_load(&progress_calls) <= 1);
    AC(atomic_load(&log.bad) == 0);
}

START_TEST(rule4_alloc_failure_pool_scenario)
{
    run_failing_each_allocation(scenario_pool, 2000);
}
END_TEST

/* --------------------------------------- cancel/shutdown scenario */

/* A pool of one worker, held busy by *blocker (on b) if that submit was
 * accepted (*blocked); NULL when the pool could not be made. */
static fut_executor_t *busy_pool(outcome_t *out, fut_test_blocker_t *b,
                                 fut_t **blocker, bool *blocked)
{
    fut_pool_config_t cfg = {.threads = 1};
    fut_executor_t *pool = NULL;
    int rc = fut_pool_new(&cfg, &pool);
    AC_CODE(rc, 0, ENOMEM);
    if (rc != 0) {
        out->saw_enomem = true;
        return NULL;
    }
    fut_test_blocker_init(b, 1);
    *blocker = fut_submit(pool, fut_test_task_block, b);
    *blocked = !is_enomem(*blocker);
    out->saw_enomem |= !*blocked;
    if (*blocked)
        fut_test_wait_atomic(&b->started, 1);
    return pool;
}

static void scenario_cancel(outcome_t *out)
{
    fut_test_blocker_t b;
    fut_t *blocker;
    bool blocked;
    fut_executor_t *pool = busy_pool(out, &b, &blocker, &blocked);
    if (!pool)
        return;
    enum { Q = 4 };
    fut_test_counted_t rf[Q];
    fut_t *q[Q];
    bool accepted[Q];
    for (int i = 0; i < Q; i++) {
        fut_test_counted_init(&rf[i], 0);
        q[i] = fut_submit_ex(pool, fut_test_task_counted, &rf[i],
                             fut_test_counted_free, 0);
        accepted[i] = !is_enomem(q[i]);
        out->saw_enomem |= !accepted[i];
        if (!accepted[i])
            AC(atomic_load(&rf[i].freed) == 1);
    }
    if (blocked) {
        for (int i = 0; i < 2; i++) {
            AC(fut_cancel(q[i]) == accepted[i]);
            AC(atomic_load(&rf[i].freed) == 1);
        }
        AC_CODE(fut_executor_shutdown(pool, FUT_SHUTDOWN_CANCEL_PENDING), 0);
        for (int i = 0; i < Q; i++) {
            AC(atomic_load(&rf[i].freed) == 1);
            AC_CODE(fut_get(q[i], 0, NULL), accepted[i] ? ECANCELED : ENOMEM);
        }
    }
    fut_test_latch_open(&b.latch);
    fut_executor_free(pool);
    for (int i = 0; i < Q; i++) {
        AC(atomic_load(&rf[i].freed) == 1);
        if (blocked)
            AC(atomic_load(&rf[i].ran) == 0);
        else
            AC(atomic_load(&rf[i].ran) == (accepted[i] ? 1 : 0));
        fut_release(q[i]);
    }
    fut_release(blocker);
    fut_test_blocker_destroy(&b);
}

START_TEST(rule4_alloc_failure_cancel_shutdown_scenario)
{
    run_failing_each_allocation(scenario_cancel, 2000);
}
END_TEST

/* ------------------------------------------ queue growth scenario */

/* A task that notes when it started among the others. */
typedef struct ranked {
    fut_test_counted_t rf;
    atomic_int *clock;
    int rank;
} ranked_t;

static void *task_ranked(fut_ctx_t *ctx, void *arg)
{
    ranked_t *t = arg;
    t->rank = atomic_fetch_add(t->clock, 1);
    return fut_test_task_counted(ctx, &t->rf);
}

static void ranked_free(void *arg)
{
    fut_test_counted_free(&((ranked_t *)arg)->rf);
}

/* Outside tasks queued behind a busy worker fill several of the shared
 * queue's blocks: a submit whose block cannot be allocated is refused with
 * ENOMEM (its argument freed, never run), and every accepted task runs
 * once, in submission order, refused ones or not. */
static void scenario_queue_growth(outcome_t *out)
{
    fut_test_blocker_t b;
    fut_t *blocker;
    bool blocked;
    fut_executor_t *pool = busy_pool(out, &b, &blocker, &blocked);
    if (!pool)
        return;
    enum { Q = 300 }; /* past the first of the queue's blocks */
    static ranked_t t[Q];
    fut_t *q[Q];
    atomic_int clock = 0;
    for (int i = 0; i < Q; i++) {
        fut_test_counted_init(&t[i].rf, i);
        t[i].clock = &clock;
        t[i].rank = -1;
        q[i] = fut_submit_ex(pool, task_ranked, &t[i], ranked_free, 0);
        out->saw_enomem |= is_enomem(q[i]);
    }
    fut_test_latch_open(&b.latch);
    int last = -1;
    for (int i = 0; i < Q; i++) {
        bool accepted = !is_enomem(q[i]);
        AC_CODE(fut_get(q[i], FUT_FOREVER, NULL), accepted ? 0 : ENOMEM);
        AC(atomic_load(&t[i].rf.ran) == (accepted ? 1 : 0));
        AC(atomic_load(&t[i].rf.freed) == 1);
        if (accepted) {
            AC(t[i].rank > last);
            last = t[i].rank;
        }
        fut_release(q[i]);
    }
    fut_executor_free(pool);
    fut_release(blocker);
    fut_test_blocker_destroy(&b);
}

START_TEST(rule4_alloc_failure_queue_growth_scenario)
{
    run_failing_each_allocation(scenario_queue_growth, 4000);
}
END_TEST

/* The shared queue cannot grow while futures still can be allocated (an
 * allocator that refuses every request of 256 bytes or more; a future is
 * far smaller): submits past what the queue holds are refused with ENOMEM,
 * nothing accepted is lost or reordered, and the queue grows again once
 * the allocator gives. */
START_TEST(rule4_queue_that_cannot_grow_refuses_submits_and_recovers)
{
    alloc_arm(0, false);
    ck_assert_int_eq(fut_set_allocator(&counting), 0);
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&(fut_pool_config_t){.threads = 1}, &pool),
                     0);
    fut_test_blocker_t b;
    fut_test_blocker_init(&b, 1);
    fut_t *blocker = fut_submit(pool, fut_test_task_block, &b);
    fut_test_wait_atomic(&b.started, 1);
    atomic_store(&A.fail_big, 256);
    enum { Q = 1200, MORE = 600 }; /* several of the queue's blocks */
    static ranked_t t[Q + MORE];
    fut_t *q[Q + MORE];
    atomic_int clock = 0;
    int refused = 0;
    for (int i = 0; i < Q + MORE; i++) {
        if (i == Q)
            atomic_store(&A.fail_big, 0); /* the allocator gives again */
        fut_test_counted_init(&t[i].rf, i);
        t[i].clock = &clock;
        t[i].rank = -1;
        q[i] = fut_submit_ex(pool, task_ranked, &t[i], ranked_free, 0);
        if (is_enomem(q[i])) {
            ck_assert_int_lt(i, Q);
            refused++;
        }
    }
    ck_assert_int_gt(refused, 0);
    ck_assert_int_lt(refused, Q);
    fut_test_latch_open(&b.latch);
    int last = -1;
    for (int i = 0; i < Q + MORE; i++) {
        bool accepted = !is_enomem(q[i]);
        ck_assert_int_eq(fut_get(q[i], FUT_FOREVER, NULL),
                         accepted ? 0 : ENOMEM);
        ck_assert_int_eq(atomic_load(&t[i].rf.ran), accepted ? 1 : 0);
        ck_assert_int_eq(atomic_load(&t[i].rf.freed), 1);
        if (accepted) {
            ck_assert_int_gt(t[i].rank, last);
            last = t[i].rank;
        }
        fut_release(q[i]);
    }
    fut_executor_free(pool);
    fut_release(blocker);
    fut_test_blocker_destroy(&b);
    alloc_restore_and_check(0);
}
END_TEST

/* ------------------------------------------------ inline scenario */

static void *task_inline_value(fut_ctx_t *ctx, void *arg)
{
    ptask_t *t = arg;
    atomic_fetch_add(&t->rf.ran, 1);
    fut_set_free(ctx, fut_test_obj_free);
    return fut_test_obj_new(t->vals, 1);
}

static void scenario_inline(outcome_t *out)
{
    fut_test_tracker_t vals;
    fut_test_tracker_init(&vals);
    ptask_t t = {.vals = &vals};
    fut_test_counted_init(&t.rf, 0);
    fut_t *f = fut_submit_ex(fut_inline_executor(), task_inline_value, &t,
                             fut_test_counted_free, 0);
    AC(f != NULL);
    AC(atomic_load(&t.rf.freed) == 1);
    void *v = NULL;
    int rc = fut_get(f, 0, &v);
    AC_CODE(rc, 0, ENOMEM);
    out->saw_enomem |= rc != 0;
    AC(atomic_load(&t.rf.ran) <= 1);
    if (rc == 0)
        AC(atomic_load(&t.rf.ran) == 1);
    fut_release(f);
    AC(atomic_load(&vals.freed) == atomic_load(&vals.made));
}

START_TEST(rule4_alloc_failure_inline_scenario)
{
    run_failing_each_allocation(scenario_inline, 1000);
}
END_TEST

/* -------------------------------------------------------- stress */

static void scenario_pool_repeated(outcome_t *out)
{
    for (int i = 0; i < 4; i++)
        scenario_pool(out);
}

START_TEST(stress_rule4_alloc_failure_pool_scenario_repeated)
{
    run_failing_each_allocation(scenario_pool_repeated, 20000);
}
END_TEST

Suite *fut_test_alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("alloc");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, alloc_set_allocator_requires_both_functions);
    tcase_add_test(tc, alloc_objects_come_from_the_installed_allocator);
    tcase_add_test(tc, alloc_builtin_slabs_pack_reuse_and_give_back);
    tcase_add_test(tc, alloc_trim_gives_back_whole_free_slabs);
    tcase_add_test(tc, alloc_pool_free_gives_back_its_burst);
    tcase_add_test(tc, alloc_idle_pool_gives_back_its_queue_blocks);
    tcase_add_test(tc, alloc_thread_exit_leaves_partial_caches_usable);
    tcase_add_test(tc, rule2_enomem_when_every_allocation_fails);
    tcase_add_test(tc, rule4_alloc_failure_promise_scenario);
    tcase_add_test(tc, rule4_alloc_failure_pool_scenario);
    tcase_add_test(tc, rule4_alloc_failure_cancel_shutdown_scenario);
    tcase_add_test(tc, rule4_alloc_failure_queue_growth_scenario);
    tcase_add_test(tc,
                   rule4_queue_that_cannot_grow_refuses_submits_and_recovers);
    tcase_add_test(tc, rule4_alloc_failure_inline_scenario);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("alloc_stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_set_tags(st, "stress");
    tcase_add_test(st, stress_rule4_alloc_failure_pool_scenario_repeated);
    suite_add_tcase(s, st);
    return s;
}

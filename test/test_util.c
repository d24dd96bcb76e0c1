/*
 * test_util.c - definitions of the helpers declared in test_util.h.
 */
#include "test_util.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t fut_test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec;
}

void fut_test_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static atomic_int next_thread_id;
static _Thread_local int this_thread_id;

int fut_test_thread_id(void)
{
    if (this_thread_id == 0)
        this_thread_id = atomic_fetch_add(&next_thread_id, 1) + 1;
    return this_thread_id;
}

pthread_t fut_test_spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    ck_assert_msg(rc == 0, "pthread_create: %d", rc);
    return t;
}

void fut_test_join(pthread_t t)
{
    int rc = pthread_join(t, NULL);
    ck_assert_msg(rc == 0, "pthread_join: %d", rc);
}

void fut_test_wait_atomic(atomic_int *a, int value)
{
    int64_t deadline = fut_test_now_ns() + FUT_S(60);
    unsigned spins = 0;
    while (atomic_load(a) < value) {
        if (++spins < 100) {
            sched_yield();
            continue;
        }
        ck_assert_msg(fut_test_now_ns() < deadline,
                      "gave up waiting for a counter to reach %d", value);
        fut_test_sleep_ms(1);
    }
}

/* ---------------------------------------------------------- latch */

void fut_test_latch_init(fut_test_latch_t *l)
{
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->open = false;
}

void fut_test_latch_open(fut_test_latch_t *l)
{
    pthread_mutex_lock(&l->mu);
    l->open = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void fut_test_latch_wait(fut_test_latch_t *l)
{
    pthread_mutex_lock(&l->mu);
    while (!l->open)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

void fut_test_latch_destroy(fut_test_latch_t *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

/* -------------------------------------------------------- barrier */

void fut_test_barrier_init(fut_test_barrier_t *b, unsigned n)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->n = n;
    b->waiting = 0;
    b->generation = 0;
}

void fut_test_barrier_wait(fut_test_barrier_t *b)
{
    pthread_mutex_lock(&b->mu);
    unsigned gen = b->generation;
    if (++b->waiting == b->n) {
        b->waiting = 0;
        b->generation++;
        pthread_cond_broadcast(&b->cv);
    } else {
        while (gen == b->generation)
            pthread_cond_wait(&b->cv, &b->mu);
    }
    pthread_mutex_unlock(&b->mu);
}

void fut_test_barrier_destroy(fut_test_barrier_t *b)
{
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

/* ------------------------------------------------ counted objects */

fut_executor_t *fut_test_pool(size_t threads)
{
    fut_pool_config_t cfg = {.threads = threads};
    fut_executor_t *pool = NULL;
    ck_assert_int_eq(fut_pool_new(&cfg, &pool), 0);
    ck_assert_ptr_nonnull(pool);
    return pool;
}

void fut_test_promises(fut_promise_t **ps, fut_t **fs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ps[i] = fut_promise_new();
        ck_assert_ptr_nonnull(ps[i]);
        fs[i] = fut_promise_future(ps[i]);
    }
}

void fut_test_release_all(fut_promise_t **ps, fut_t **fs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ps != NULL)
            fut_promise_release(ps[i]);
        if (fs != NULL)
            fut_release(fs[i]);
    }
}

void *fut_test_settle_later(void *arg)
{
    fut_test_later_t *l = arg;
    fut_test_sleep_ms(l->ms);
    if (l->code == 0)
        fut_resolve(l->p, l->value, NULL);
    else
        fut_reject(l->p, l->code, "later");
    return NULL;
}

void fut_test_tracker_init(fut_test_tracker_t *t)
{
    atomic_init(&t->made, 0);
    atomic_init(&t->freed, 0);
    atomic_init(&t->last_thread, 0);
}

fut_test_obj_t *fut_test_obj_new(fut_test_tracker_t *t, int value)
{
    fut_test_obj_t *o = malloc(sizeof *o);
    ck_assert_ptr_nonnull(o);
    o->tracker = t;
    o->value = value;
    atomic_fetch_add(&t->made, 1);
    return o;
}

void fut_test_obj_free(void *p)
{
    fut_test_obj_t *o = p;
    if (o == NULL)
        return;
    /* On a second free of o, valgrind reports the read here. */
    fut_test_tracker_t *t = o->tracker;
    free(o);
    atomic_store(&t->last_thread, fut_test_thread_id());
    atomic_fetch_add(&t->freed, 1);
}

void fut_test_count_free(void *counter)
{
    atomic_fetch_add((atomic_int *)counter, 1);
}

/* ---------------------------------------------------------- tasks */

void *fut_test_task_identity(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return arg;
}

void fut_test_blocker_init(fut_test_blocker_t *b, int value)
{
    fut_test_latch_init(&b->latch);
    atomic_init(&b->started, 0);
    atomic_init(&b->finished, 0);
    atomic_init(&b->cancel_seen, 0);
    b->value = value;
}

void fut_test_blocker_destroy(fut_test_blocker_t *b)
{
    fut_test_latch_destroy(&b->latch);
}

void *fut_test_task_block(fut_ctx_t *ctx, void *arg)
{
    fut_test_blocker_t *b = arg;
    atomic_fetch_add(&b->started, 1);
    fut_test_latch_wait(&b->latch);
    atomic_store(&b->cancel_seen, fut_cancel_requested(ctx) ? 1 : 0);
    atomic_fetch_add(&b->finished, 1);
    return FUT_TEST_PTR(b->value);
}

void fut_test_counted_init(fut_test_counted_t *c, int value)
{
    atomic_init(&c->ran, 0);
    atomic_init(&c->freed, 0);
    atomic_init(&c->free_thread, 0);
    atomic_init(&c->state_seen, -1);
    atomic_init(&c->done_calls, 0);
    c->value = value;
}

void *fut_test_task_counted(fut_ctx_t *ctx, void *arg)
{
    fut_test_counted_t *c = arg;
    (void)ctx;
    atomic_fetch_add(&c->ran, 1);
    return FUT_TEST_PTR(c->value);
}

void fut_test_counted_free(void *arg)
{
    fut_test_counted_t *c = arg;
    atomic_store(&c->free_thread, fut_test_thread_id());
    atomic_fetch_add(&c->freed, 1);
}

void fut_test_counted_done(fut_t *f, void *arg)
{
    fut_test_counted_t *c = arg;
    atomic_store(&c->state_seen, (int)fut_state(f));
    atomic_fetch_add(&c->done_calls, 1);
}

void fut_test_held_start(fut_test_held_t *h)
{
    fut_test_blocker_init(&h->b, 1);
    h->pool = fut_test_pool(1);
    h->running = fut_submit(h->pool, fut_test_task_block, &h->b);
    fut_test_wait_atomic(&h->b.started, 1);
}

void fut_test_held_finish(fut_test_held_t *h)
{
    fut_test_latch_open(&h->b.latch);
    void *v = NULL;
    ck_assert_int_eq(fut_get(h->running, FUT_FOREVER, &v), 0);
    ck_assert_int_eq(FUT_TEST_INT(v), 1);
    fut_executor_free(h->pool);
    fut_release(h->running);
    fut_test_blocker_destroy(&h->b);
}

/* ------------------------------------------------ callback records */

void fut_test_log_init(fut_test_log_t *l)
{
    atomic_init(&l->calls, 0);
    atomic_init(&l->freed, 0);
    atomic_init(&l->bad, 0);
    atomic_init(&l->thread, 0);
    for (int i = 0; i < FUT_TEST_LOG_MAX; i++)
        atomic_init(&l->order[i], -1);
}

void fut_test_entry_init(fut_test_entry_t *e, fut_test_log_t *l, int index)
{
    e->log = l;
    e->index = index;
    atomic_init(&e->ran, 0);
    atomic_init(&e->freed, 0);
    atomic_init(&e->ran_when_freed, -1);
}

void fut_test_done_cb(fut_t *f, void *arg)
{
    fut_test_entry_t *e = arg;
    fut_test_log_t *l = e->log;
    if (!fut_done(f))
        atomic_fetch_add(&l->bad, 1);
    atomic_store(&l->thread, fut_test_thread_id());
    int k = atomic_fetch_add(&l->calls, 1);
    if (k < FUT_TEST_LOG_MAX)
        atomic_store(&l->order[k], e->index);
    atomic_fetch_add(&e->ran, 1);
}

void fut_test_entry_free(void *arg)
{
    fut_test_entry_t *e = arg;
    atomic_store(&e->ran_when_freed, atomic_load(&e->ran));
    atomic_fetch_add(&e->freed, 1);
    atomic_fetch_add(&e->log->freed, 1);
}

/* ----------------------------------------------------------- seed */

unsigned fut_test_seed(void)
{
    const char *env = getenv("FUT_TEST_SEED");
    unsigned seed;
    if (env != NULL && *env != '\0') {
        seed = (unsigned)strtoul(env, NULL, 0);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (unsigned)ts.tv_sec * 2654435761u ^ (unsigned)ts.tv_nsec ^
               (unsigned)getpid();
    }
    if (seed == 0)
        seed = 1; /* xorshift needs a non-zero state */
    fprintf(stderr, "seed=%u\n", seed);
    return seed;
}

void fut_test_seeded_rounds(int rounds, void (*round)(unsigned seed))
{
    unsigned base = fut_test_seed();
    for (int i = 0; i < rounds; i++) {
        unsigned seed = base + (unsigned)i;
        round(seed != 0 ? seed : 1u);
    }
}

/* ------------------------------------------------ checks in a child */

/* fork()'s child reports through a pipe to the parent: fut_test_child_note
 * records why a check failed, and the child writes "ok" last when fn
 * returned 0.  The parent trusts the pipe, not the exit status (valgrind
 * may replace that with its error exit code when it finds the parent's
 * thread stacks "possibly lost" in the child).  The child always leaves
 * with _exit(); in a gcc --coverage build (FUT_TEST_COVERAGE) it first
 * writes its coverage counters, so that its paths count.  An alarm turns a
 * hang in the child into a failure instead of a stuck test. */
static unsigned child_alarm_s(void)
{
    /* Under a quick case's Check timeout (20 s, scaled like it by
     * CK_TIMEOUT_MULTIPLIER), so that a hung child is reported by the
     * parent, with the fork's number and what the child said, before
     * Check ends the whole case with a bare "timeout expired". */
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    long k = m ? strtol(m, NULL, 10) : 1;
    return (unsigned)(15 * (k > 0 && k < 100 ? k : 1));
}

/* libgcov's. */
#ifdef FUT_TEST_COVERAGE
void __gcov_dump(void);
#endif

static int child_fd = -1;

void fut_test_child_note(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    if (write(child_fd, buf, (size_t)n) < 0)
        _exit(99);
}

bool fut_test_child_run(int (*fn)(void *), void *arg, char *why, size_t whylen)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        return false;
    }
    unsigned alarm_s = child_alarm_s();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        child_fd = fds[1];
        /* The alarm must end this child alone: Check's handler, inherited
         * from the test process, would kill the whole process group (the
         * test with it) instead of letting the parent report the hang. */
        signal(SIGALRM, SIG_DFL);
        alarm(alarm_s);
        int rc = fn(arg);
        if (rc == 0)
            fut_test_child_note("ok");
        else
            fut_test_child_note("failed check %d", rc);
#ifdef FUT_TEST_COVERAGE
        __gcov_dump();
#endif
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    char report[1024];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], report + len, sizeof report - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof report - 1)
            break;
    }
    report[len] = '\0';
    close(fds[0]);
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (got != pid) {
        snprintf(why, whylen, "waitpid: %s", strerror(errno));
        return false;
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, whylen, "child killed by signal %d%s; it said: %s",
                 WTERMSIG(status),
                 WTERMSIG(status) == SIGALRM ? " (it hung)" : "", report);
        return false;
    }
    size_t rl = strlen(report);
    if (rl < 3 || strcmp(report + rl - 3, "ok\n") != 0) {
        snprintf(why, whylen, "child said: %s", report);
        return false;
    }
    return true;
}

void fut_test_in_child(int (*fn)(void *), void *arg, const char *what)
{
    char why[1200];
    bool ok = fut_test_child_run(fn, arg, why, sizeof why);
    ck_assert_msg(ok, "%s: %s", what, why);
}

/*
 * peer_textbook.c - the textbook future pool, as a reference point.
 *
 * What one would write from a textbook in an afternoon: one FIFO task queue
 * guarded by one mutex and one condition variable; each submit mallocs a
 * task node and a future; each future embeds its own pthread mutex and
 * condition variable; get() locks the future and waits on its condvar until
 * the worker has stored the value.  No continuations, no combinators (W2 is
 * n/a; W3's "combine" is a get() of every future).  It is the yardstick for
 * the peak-RSS comparison: fut's one small allocation per future, without a
 * mutex and condvar inside, should beat it.
 *
 * Lock order: the queue lock and a future's lock are never held together.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct tb_future {
    pthread_mutex_t lock;
    pthread_cond_t settled;
    bool done;
    uint64_t value;
} tb_future_t;

typedef struct tb_task {
    struct tb_task *next;
    uint64_t (*fn)(uint64_t arg);
    uint64_t arg;
    tb_future_t *future;
} tb_task_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    tb_task_t *head, *tail;
    bool stopping;
    int nthreads;
    pthread_t *threads;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .nonempty = PTHREAD_COND_INITIALIZER};

static void *worker(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        /* The loop always starts with the queue lock held. */
        while (!pool.head && !pool.stopping)
            pthread_cond_wait(&pool.nonempty, &pool.lock);
        if (!pool.head)
            break;
        tb_task_t *t = pool.head;
        pool.head = t->next;
        if (!pool.head)
            pool.tail = NULL;
        pthread_mutex_unlock(&pool.lock);

        uint64_t v = t->fn(t->arg);
        tb_future_t *f = t->future;
        free(t);
        pthread_mutex_lock(&f->lock);
        f->value = v;
        f->done = true;
        pthread_cond_broadcast(&f->settled);
        pthread_mutex_unlock(&f->lock);

        pthread_mutex_lock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* Returns a new future, or NULL when out of memory. */
static tb_future_t *tb_submit(uint64_t (*fn)(uint64_t), uint64_t arg)
{
    tb_task_t *t = malloc(sizeof *t);
    tb_future_t *f = malloc(sizeof *f);
    if (!t || !f) {
        free(t);
        free(f);
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->settled, NULL);
    f->done = false;
    *t = (tb_task_t){.fn = fn, .arg = arg, .future = f};
    pthread_mutex_lock(&pool.lock);
    if (pool.tail)
        pool.tail->next = t;
    else
        pool.head = t;
    pool.tail = t;
    pthread_cond_signal(&pool.nonempty);
    pthread_mutex_unlock(&pool.lock);
    return f;
}

static uint64_t tb_get(tb_future_t *f)
{
    pthread_mutex_lock(&f->lock);
    while (!f->done)
        pthread_cond_wait(&f->settled, &f->lock);
    uint64_t v = f->value;
    pthread_mutex_unlock(&f->lock);
    return v;
}

static void tb_future_free(tb_future_t *f)
{
    pthread_cond_destroy(&f->settled);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static int start(int threads)
{
    pool.threads = malloc((size_t)threads * sizeof *pool.threads);
    if (!pool.threads)
        return ENOMEM;
    pool.stopping = false;
    for (pool.nthreads = 0; pool.nthreads < threads; pool.nthreads++) {
        int rc =
            pthread_create(&pool.threads[pool.nthreads], NULL, worker, NULL);
        if (rc)
            return rc; /* the harness calls stop() only after success */
    }
    return 0;
}

static void stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    pthread_cond_broadcast(&pool.nonempty);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.nthreads; i++)
        pthread_join(pool.threads[i], NULL);
    free(pool.threads);
}

static uint64_t identity(uint64_t i)
{
    return i;
}

/* Room for the largest workload's futures (W1 at its standard size). */
#define MAX_FUTURES 1000000
static tb_future_t **futures;

/* W1 and W3: a future per task, then get() each in order. */
static int submit_sum(size_t n, uint64_t *sum)
{
    if (n > MAX_FUTURES)
        return E2BIG;
    for (size_t i = 0; i < n; i++)
        if (!(futures[i] = tb_submit(identity, i)))
            return ENOMEM; /* the harness exits on the failure */
    for (size_t i = 0; i < n; i++) {
        *sum += tb_get(futures[i]);
        tb_future_free(futures[i]);
    }
    return 0;
}

/* batch() for W4/W5: one future per task, each task calls fn(ctx, i). */
static struct {
    peer_task_fn fn;
    void *ctx;
} current;

static uint64_t run_current(uint64_t i)
{
    current.fn(current.ctx, (size_t)i);
    return 0;
}

static int batch(size_t n, peer_task_fn fn, void *ctx)
{
    if (n > MAX_FUTURES)
        return E2BIG;
    current.fn = fn;
    current.ctx = ctx;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (!(futures[i] = tb_submit(run_current, i)))
            rc = ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        tb_get(futures[i]);
        tb_future_free(futures[i]);
    }
    return rc;
}

static int round_trip(uint64_t in, uint64_t *out)
{
    tb_future_t *f = tb_submit(identity, in);
    if (!f)
        return ENOMEM;
    *out = tb_get(f);
    tb_future_free(f);
    return 0;
}

int main(int argc, char **argv)
{
    futures = malloc(MAX_FUTURES * sizeof *futures);
    if (!futures)
        return 1;
    const peer_ops_t ops = {
        .name = "textbook",
        .start = start,
        .stop = stop,
        .batch = batch,
        .submit_sum = submit_sum,
        .fan_in = submit_sum,
        .round_trip = round_trip,
        .note = {[PEER_W3] = "no combinator: get() of every future",
                 [PEER_W7] = "fixed pool of 2: no hint for blocking calls; "
                             "the sleeps hold its workers"},
    };
    int status = peer_main(argc, argv, &ops);
    free(futures);
    return status;
}

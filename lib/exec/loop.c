/*
 * loop.c - the loop executor: a queue that the user's own thread drains,
 * the way asyncio hands results back to its loop thread.
 *
 * Submitting appends the task's future to a FIFO (linked through the
 * futures' own `next`, no allocation) and, when the queue goes from empty
 * to non-empty, makes the loop's fd readable, so poll/epoll/libuv can
 * watch it: an eventfd on Linux, a non-blocking self-pipe elsewhere or
 * with FUT_PORTABLE (fut_loop_fd gives its read end).  Nothing runs until
 * the owner calls fut_loop_run_pending or fut_loop_run_until; then every
 * task queued at that moment runs on the calling thread.  A continuation
 * given the loop (fut_then_on) is submitted here when its input settles,
 * so it too runs on the draining thread.
 *
 * Lock order: `lock` guards the queue and the flags; no user code runs
 * under it.  The fd is reset (the eventfd's counter read, the pipe
 * drained) under the lock whenever the queue is emptied, so "readable"
 * means "work queued" exactly, up to a wake-up written by
 * fut_loop_run_until's own waiter.
 */
#include "core/exec.h"
#include "util/park.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#if defined(FUT_HAVE_EVENTFD) && !defined(FUT_PORTABLE)
#define LOOP_EVENTFD 1
#include <sys/eventfd.h>
#else
#define LOOP_EVENTFD 0
#include <fcntl.h>
#endif

typedef struct loop {
    fut_executor_t base;
    pthread_mutex_t lock;
    fut_t *head, *tail;
    size_t queued;
    int fd;  /* readable while work is queued (fut_loop_fd) */
    int wfd; /* where signals are written: fd itself, or the pipe's write end */
    bool shutdown;
    uint64_t submitted, completed, cancelled;
} loop_t;

static const fut__executor_ops_t loop_ops;

static loop_t *as_loop(fut_executor_t *ex)
{
    return ex && ex->ops == &loop_ops ? (loop_t *)ex : NULL;
}

#if LOOP_EVENTFD

static int open_fds(int *rfd, int *wfd)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return errno;
    *rfd = *wfd = fd;
    return 0;
}

static void close_fds(int rfd, int wfd)
{
    (void)wfd; /* the same fd */
    close(rfd);
}

static void signal_fd(int fd)
{
    uint64_t one = 1;
    ssize_t rc;
    do
        rc = write(fd, &one, sizeof one);
    while (rc < 0 && errno == EINTR);
}

static void reset_fd(int fd)
{
    uint64_t v;
    ssize_t rc;
    do
        rc = read(fd, &v, sizeof v);
    while (rc < 0 && errno == EINTR);
}

#else /* a self-pipe */

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return errno;
    int fdf = fcntl(fd, F_GETFD);
    if (fdf < 0 || fcntl(fd, F_SETFD, fdf | FD_CLOEXEC) < 0)
        return errno;
    return 0;
}

static int open_fds(int *rfd, int *wfd)
{
    int fds[2];
    if (pipe(fds) != 0)
        return errno;
    int rc = set_flags(fds[0]);
    if (rc == 0)
        rc = set_flags(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        close(fds[1]);
        return rc;
    }
    *rfd = fds[0];
    *wfd = fds[1];
    return 0;
}

static void close_fds(int rfd, int wfd)
{
    close(rfd);
    close(wfd);
}

/* One byte.  A full pipe (EAGAIN) is already readable: nothing to do. */
static void signal_fd(int fd)
{
    char one = 1;
    ssize_t rc;
    do
        rc = write(fd, &one, 1);
    while (rc < 0 && errno == EINTR);
}

/* Drains the pipe: it stays empty until the next signal. */
static void reset_fd(int fd)
{
    char buf[64];
    ssize_t rc;
    do
        rc = read(fd, buf, sizeof buf);
    while (rc > 0 || (rc < 0 && errno == EINTR));
}

#endif /* LOOP_EVENTFD */

static int loop_submit(fut_executor_t *ex, fut_t *f, unsigned flags)
{
    loop_t *l = (loop_t *)ex;
    pthread_mutex_lock(&l->lock);
    if (l->shutdown) {
        pthread_mutex_unlock(&l->lock);
        return ESHUTDOWN;
    }
    f->next = NULL;
    if (l->tail)
        l->tail->next = f;
    else
        l->head = f;
    l->tail = f;
    bool first = l->queued++ == 0;
    if (!(flags & FUT__SUBMIT_RESUME)) /* a woken fiber is no new task */
        l->submitted++;
    if (first)
        signal_fd(l->wfd);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

static fut_t *take_all(loop_t *l)
{
    fut_t *f = l->head;
    l->head = l->tail = NULL;
    l->queued = 0;
    reset_fd(l->fd);
    return f;
}

size_t fut_loop_run_pending(fut_executor_t *ex)
{
    loop_t *l = as_loop(ex);
    if (!l)
        return 0;
    pthread_mutex_lock(&l->lock);
    fut_t *f = l->queued ? take_all(l) : NULL;
    pthread_mutex_unlock(&l->lock);
    size_t ran = 0, skipped = 0;
    while (f) {
        fut_t *next = f->next;
        f->next = NULL;
        int r = fut__run(f);
        if (r == FUT__RAN)
            ran++;
        else if (r == FUT__NOT_RUN)
            skipped++;
        fut__run_done(f, r);
        f = next;
    }
    pthread_mutex_lock(&l->lock);
    l->completed += ran;
    l->cancelled += skipped;
    pthread_mutex_unlock(&l->lock);
    return ran;
}

int fut_loop_fd(fut_executor_t *ex)
{
    loop_t *l = as_loop(ex);
    return l ? l->fd : -1;
}

/* References (core/exec.h): the owner's, plus one per wake callback left
 * on a future by fut_loop_run_until, so the fd stays open until the last
 * one goes. */
static void loop_unref(void *arg)
{
    fut__exec_release(arg);
}

/* Wakes the loop's own poll when the awaited future settles. */
static void poke(fut_t *f, void *arg)
{
    (void)f;
    signal_fd(((loop_t *)arg)->wfd);
}

int fut_loop_run_until(fut_executor_t *ex, fut_t *f, int64_t timeout)
{
    loop_t *l = as_loop(ex);
    if (!l || !f)
        return EINVAL;
    int64_t deadline = fut__deadline(timeout);
    bool armed = false;
    for (;;) {
        fut_loop_run_pending(ex);
        if (fut_done(f))
            return 0;
        if (fut__expired(deadline) || timeout == 0)
            return ETIMEDOUT;
        if (!armed) {
            /* A failure here (no memory) only makes us poll in slices. */
            fut__exec_retain(ex);
            armed = fut_on_done_ex(f, poke, l, loop_unref) == 0;
        }
        int ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - fut__now();
            ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        if (!armed && (ms < 0 || ms > 10))
            ms = 10;
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        poll(&p, 1, ms);
    }
}

static int loop_shutdown(fut_executor_t *ex, unsigned flags)
{
    loop_t *l = (loop_t *)ex;
    pthread_mutex_lock(&l->lock);
    l->shutdown = true;
    fut_t *f = (flags & FUT_SHUTDOWN_CANCEL_PENDING) ? take_all(l) : NULL;
    pthread_mutex_unlock(&l->lock);
    uint64_t n = 0;
    while (f) {
        fut_t *next = f->next;
        f->next = NULL;
        fut__reject_unstarted(f, ECANCELED, NULL);
        fut_release(f);
        n++;
        f = next;
    }
    pthread_mutex_lock(&l->lock);
    l->cancelled += n;
    pthread_mutex_unlock(&l->lock);
    /* FUT_SHUTDOWN_WAIT: the loop has no threads of its own; the work
     * still queued runs when its owner drains it. */
    return 0;
}

static void loop_close(fut_executor_t *ex)
{
    /* Nobody will drain it any more: cancel what is left. */
    loop_shutdown(ex, FUT_SHUTDOWN_CANCEL_PENDING);
}

static void loop_destroy(fut_executor_t *ex)
{
    loop_t *l = (loop_t *)ex;
    close_fds(l->fd, l->wfd);
    pthread_mutex_destroy(&l->lock);
    fut__free(l, sizeof *l);
}

static int loop_stats(fut_executor_t *ex, fut_stats_t *out)
{
    loop_t *l = (loop_t *)ex;
    pthread_mutex_lock(&l->lock);
    out->queued = l->queued;
    out->submitted = l->submitted;
    out->completed = l->completed;
    out->cancelled = l->cancelled;
    out->shutdown = l->shutdown;
    pthread_mutex_unlock(&l->lock);
    return 0;
}

static const fut__executor_ops_t loop_ops = {
    .submit = loop_submit,
    .shutdown = loop_shutdown,
    .close = loop_close,
    .destroy = loop_destroy,
    .stats = loop_stats,
};

int fut_loop_new(fut_executor_t **out)
{
    if (!out)
        return EINVAL;
    *out = NULL;
    loop_t *l = fut__alloc(sizeof *l);
    if (!l)
        return ENOMEM;
    int rc = open_fds(&l->fd, &l->wfd);
    if (rc != 0) {
        fut__free(l, sizeof *l);
        return rc;
    }
    fut__exec_init(&l->base, &loop_ops, 1);
    pthread_mutex_init(&l->lock, NULL);
    l->head = l->tail = NULL;
    l->queued = 0;
    l->shutdown = false;
    l->submitted = l->completed = l->cancelled = 0;
    *out = &l->base;
    return 0;
}

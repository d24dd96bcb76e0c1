/*
 * wait.c - blocking: fut_wait, fut_get, fut_wait_for (PEP 3148 wait), and
 * the waiter mechanism they share (wait.h).
 *
 * A blocked thread costs its futures nothing until it blocks: it then
 * pushes a wake callback on each future it waits for and sleeps on its own
 * parker (park.h), which the callback unparks.  A wait that times out
 * leaves its callbacks behind; they hold a reference to the parker, so they
 * stay harmless after the thread has moved on or exited.
 */
#include "core/wait.h"

#include "core/ctx.h"

#include <errno.h>
#include <time.h>

static void wake_cb(fut_t *f, void *arg)
{
    (void)f;
    fut__parker_unpark(arg);
}

static void wake_free(void *arg)
{
    fut__parker_release(arg);
}

int fut__arm_wake(fut_t *f, fut__parker_t *p)
{
    if (fut__cbs_closed(f))
        return EALREADY;
    fut__cb_t *node = fut__alloc(sizeof *node);
    if (!node)
        return ENOMEM;
    fut__parker_retain(p);
    node->fn = wake_cb;
    node->arg = p;
    node->free_arg = wake_free;
    if (!fut__cbs_push(f, (uintptr_t)node)) {
        fut__parker_release(p);
        fut__free(node, sizeof *node);
        return EALREADY;
    }
    return 0;
}

void fut__nap(int64_t *nap, int64_t deadline)
{
    int64_t ns = *nap;
    if (deadline >= 0) {
        int64_t left = deadline - fut__now();
        if (left < ns)
            ns = left > 0 ? left : 0;
    }
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
    if (*nap < 1000000)
        *nap *= 2;
}

int fut__wait_until(fut__waiter_t *w, int64_t deadline)
{
    if (w->ready(w))
        return 0;
    fut__trampoline_flush();
    int rc;
    fut_executor_t *ex = fut__exec_current();
    if (ex && ex->ops->help_wait && ex->ops->help_wait(ex, w, deadline, &rc))
        return rc;
    /* Eight looks before parking, with a pause that doubles between them
     * (255 pauses in all): the line looked at is the one the settling
     * thread is about to write, and a waiter that polled it 64 times
     * without pause took it away from that thread at every look.  Measured
     * (fut_bench, alternating processes, medians): W6 p50 0.74 -> 0.35 us,
     * p99 1.26 -> 0.48; W1 with one worker 9.8 -> 12.2 M tasks/s; W1, W2,
     * W3 with two unchanged.
     *
     * Two looks only while some executor is backlogged (exec.h): a caller
     * that waits in order for the results of a burst catches up with the
     * worker and then waits for each result as it is written, one line
     * passed back and forth per task; parking at once lets the worker run
     * ahead, and the caller wakes to a run of settled futures.  Measured
     * (fut_bench, 3 alternating processes): W1 with one worker 11.5 ->
     * 21.4 M tasks/s, with two 12.9 -> 15.6 M; W6 (an idle pool, no
     * backlog) unchanged. */
    int looks =
        atomic_load_explicit(&fut__exec_backlogged, memory_order_relaxed) ? 2
                                                                          : 8;
    for (int i = 0, pause = 1; i < looks; i++, pause *= 2) {
        if (w->ready(w))
            return 0;
        for (int k = 0; k < pause; k++)
            fut__cpu_relax();
    }
    fut__parker_t *self = fut__parker_self();
    rc = self ? w->arm(w, self) : ENOMEM;
    if (rc == ENOMEM) {
        int64_t nap = 1000;
        while (!w->ready(w)) {
            if (fut__expired(deadline))
                return ETIMEDOUT;
            fut__nap(&nap, deadline);
        }
        return 0;
    }
    for (;;) {
        uint32_t seen = fut__parker_prepare(self);
        if (w->ready(w))
            return 0;
        if (fut__expired(deadline))
            return ETIMEDOUT;
        fut__parker_park(self, seen, deadline);
    }
}

/* --- one future ------------------------------------------------------- */

typedef struct one_waiter {
    fut__waiter_t base;
    fut_t *f;
} one_waiter_t;

static bool one_ready(fut__waiter_t *w)
{
    return fut__is_settled(fut__load(((one_waiter_t *)w)->f));
}

static int one_arm(fut__waiter_t *w, fut__parker_t *p)
{
    return fut__arm_wake(((one_waiter_t *)w)->f, p);
}

/* After fork(): a future that an inherited executor holds (queued or
 * running), or that waits (through continuations) for one, would never
 * settle.  Ask those executors to reap.  Only futures that still pin their
 * executor are asked: pending ones, and running ones that are not just
 * following another future. */
static void reap_line(fut_t *f)
{
    if (!atomic_load_explicit(&fut__exec_orphaned, memory_order_relaxed))
        return;
    fut_t *cur = fut_retain(f);
    while (cur) {
        uint32_t s = fut__load(cur);
        unsigned st = s & (FUT__STATE_MASK | FUT__CLAIMED);
        bool pinned =
            st == FUT_PENDING || (st == FUT_RUNNING && !(s & FUT__ADOPTING));
        if (pinned && cur->ex && cur->ex->ops->reap)
            cur->ex->ops->reap(cur->ex);
        fut_t *next = fut__input(cur);
        fut_release(cur);
        cur = next;
    }
}

void fut__wait_reap(fut_t *const *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        reap_line(fs[i]);
}

int fut_wait(fut_t *f, int64_t timeout)
{
    if (!f)
        return EINVAL;
    if (fut__is_settled(fut__load(f)))
        return 0;
    if (f == fut__current())
        return EDEADLK;
    if (timeout == 0)
        return ETIMEDOUT;
    reap_line(f);
    one_waiter_t w = {{one_ready, one_arm}, f};
    return fut__wait_until(&w.base, fut__deadline(timeout));
}

int fut_get(fut_t *f, int64_t timeout, void **value)
{
    if (value)
        *value = NULL;
    int rc = fut_wait(f, timeout);
    if (rc)
        return rc == ETIMEDOUT ? FUT_TIMEDOUT : rc; /* the wait's, not f's */
    uint32_t s = fut__load(f);
    if ((s & FUT__STATE_MASK) == FUT_FULFILLED) {
        if (value)
            *value = f->u.ok.value;
        return 0;
    }
    fut__observe(f);
    return f->u.err.domain == FUT_DOMAIN_ERRNO ? f->u.err.code : FUT_EFOREIGN;
}

/* --- PEP 3148 wait ---------------------------------------------------- */

typedef struct many_waiter {
    fut__waiter_t base;
    fut_t *const *fs;
    size_t n;
    int return_when;
    size_t done;
} many_waiter_t;

static bool many_ready(fut__waiter_t *w)
{
    many_waiter_t *m = (many_waiter_t *)w;
    size_t done = 0;
    bool failed = false;
    for (size_t i = 0; i < m->n; i++) {
        uint32_t s = fut__load(m->fs[i]);
        if (fut__is_settled(s)) {
            done++;
            failed |= (s & FUT__STATE_MASK) == FUT_REJECTED;
        }
    }
    m->done = done;
    switch (m->return_when) {
    case FUT_FIRST_COMPLETED:
        return done > 0 || m->n == 0;
    case FUT_FIRST_EXCEPTION:
        return failed || done == m->n;
    default:
        return done == m->n;
    }
}

static int many_arm(fut__waiter_t *w, fut__parker_t *p)
{
    many_waiter_t *m = (many_waiter_t *)w;
    int armed = 0;
    for (size_t i = 0; i < m->n; i++) {
        int rc = fut__arm_wake(m->fs[i], p);
        if (rc == ENOMEM)
            return ENOMEM; /* those already armed stay harmless */
        armed += rc == 0;
    }
    return armed ? 0 : EALREADY;
}

int fut_wait_for(fut_t *const *fs, size_t n, int64_t timeout, int return_when,
                 size_t *done)
{
    if (done)
        *done = 0;
    if ((!fs && n) || return_when < FUT_FIRST_COMPLETED ||
        return_when > FUT_ALL_COMPLETED)
        return EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return EINVAL;
    many_waiter_t m = {{many_ready, many_arm}, fs, n, return_when, 0};
    int rc;
    if (many_ready(&m.base))
        rc = 0;
    else if (timeout == 0)
        rc = ETIMEDOUT;
    else {
        fut__wait_reap(fs, n);
        rc = fut__wait_until(&m.base, fut__deadline(timeout));
    }
    if (rc == ETIMEDOUT)
        many_ready(&m.base); /* count what settled meanwhile */
    if (done)
        *done = m.done;
    return rc;
}

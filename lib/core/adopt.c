/*
 * adopt.c - adoption, and the search for loops that makes it safe.
 *
 * Following x would deadlock if x's line leads back to f: x waits for y,
 * y for z, ..., and something waits for f.  A line is made of two kinds of
 * edges: adoption (a RUNNING|ADOPTING future follows u.adopt.src) and
 * input (a pending continuation waits for its input, fut__input).  Since f
 * is RUNNING and not yet adopting, f can only be the end of any line it is
 * on, so f adopting x closes a loop exactly when the line from x ends at f.
 *
 * Linear time.  A line built by adoptions (t2 follows t1, t3 follows t2,
 * ...) would cost a walk of its whole length per adoption, quadratic in
 * all.  So each adopting future also keeps `u.adopt.end`, a reference to
 * the first future that is not adopting on its line of adoption edges, and
 * a walk jumps there.  The jump never skips f: it skips only ADOPTING
 * futures, and f has never been one.  The hint stays correct as the line
 * changes: futures on a line of adoptions settle from its end outwards, so
 * while a future is ADOPTING every future its hint skips still is; when the
 * end itself starts adopting, the walk follows that end's hint in turn, and
 * the walker's starting point learns the new end (path compression).
 *
 * Lock: adoption edges change under `adopt_lock`, so that u.adopt and the
 * ADOPTING flag are stable for a walker; fut__adopt_settled clears the flag
 * under it before u is overwritten with the result.  No user code runs under
 * the lock: destruction is held back while the walk drops its references
 * (fut__destroy_hold), since a value's destructor is user code.  Nothing
 * else is taken under it either, so it is a leaf (util/leaf.h), held across
 * fork(): a child never inherits it held.
 */
#include "core/adopt.h"
#include "util/leaf.h"

#include <errno.h>

static fut__leaf_t adopt_lock = FUT__LEAF_INIT;

/* Lock held.  The first future on x's line of adoption edges that is not
 * adopting (a new reference); x's hint learns it. *old gets a reference
 * the caller drops after unlocking (x's previous hint), or NULL. */
static fut_t *adoption_end(fut_t *x, fut_t **old)
{
    *old = NULL;
    fut_t *cur = x;
    while (fut__load(cur) & FUT__ADOPTING)
        cur = cur->u.adopt.end;
    if (cur != x && x->u.adopt.end != cur) {
        *old = x->u.adopt.end;
        x->u.adopt.end = fut_retain(cur);
    }
    return fut_retain(cur);
}

/* Lock held.  True if the line from `from` (a reference, consumed) ends at
 * f. */
static bool line_reaches(fut_t *f, fut_t *from)
{
    fut_t *cur = from;
    while (cur && cur != f) {
        uint32_t s = fut__load(cur);
        fut_t *next = NULL;
        if (s & FUT__ADOPTING)
            next = fut_retain(cur->u.adopt.end);
        else if ((s & (FUT__STATE_MASK | FUT__CLAIMED)) == FUT_PENDING)
            next = fut__input(cur);
        fut_release(cur);
        cur = next;
    }
    fut_release(cur);
    return cur == f;
}

void fut__adopt_start(fut_t *f, fut_t *x)
{
    bool held = fut__destroy_hold();
    fut__leaf_lock(&adopt_lock);
    fut_t *old;
    fut_t *end = adoption_end(x, &old);
    bool loop = line_reaches(f, fut_retain(end));
    if (!loop) {
        f->u.adopt.src = x; /* the reference the caller gave us */
        f->u.adopt.end = end;
        FUT__MUST(
            fut__transition(f, FUT_RUNNING, FUT_RUNNING, FUT__ADOPTING, NULL));
    }
    fut__leaf_unlock(&adopt_lock);
    fut_release(old);
    if (loop) {
        fut_release(end);
        fut_release(x);
        fut__destroy_resume(held);
        fut__fail_static(f, EDEADLK, "a future cannot adopt itself");
        return;
    }
    fut__destroy_resume(held);
    fut_retain(f); /* x's stack holds f until x settles */
    if (!fut__cbs_push(x, (uintptr_t)f | FUT__TAG_FUTURE))
        fut__adopt_settled(f, x);
}

void fut__adopt_settled(fut_t *f, fut_t *x)
{
    fut__leaf_lock(&adopt_lock);
    FUT__ASSERT(f->u.adopt.src == x);
    fut_t *end = f->u.adopt.end;
    atomic_fetch_and_explicit(&f->state, ~(uint32_t)FUT__ADOPTING,
                              memory_order_relaxed);
    fut__leaf_unlock(&adopt_lock);
    fut__settle_like(f, x);
    fut_release(end);
    fut_release(x); /* the reference adoption held */
    fut_release(f); /* x's stack's */
}

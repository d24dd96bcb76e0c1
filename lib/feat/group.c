/*
 * group.c - task groups (structured concurrency): members started as you
 * go, a future R that settles only once every member has settled.
 *
 * R is created RUNNING (kind GROUP): nobody claims it, so fut_cancel only
 * asks (CANCEL_REQ), and the kind's cancel_requested passes that on to the
 * members; R settles from RUNNING when the last member has settled and the
 * group is closed.  So R cannot settle while a member still runs.
 *
 * Members.  Each member has a record (member_t) that holds the slot pushed
 * on its future's callback stack, its index in start order, and, for a
 * task, the user's function: the task runs member_run, which names the
 * group for fut_group_current, so a member can start siblings.  A task
 * member's record is the room of its task (a roomy task, task.h: one
 * allocation); a future handed to fut_group_add gets a record of its own,
 * which its slot frees.  A task member beyond the limit is made
 * (fut__task_new) but not queued; it starts (fut__task_start) as running
 * members settle.  The slot fires last for every member (after its
 * function, its free_arg and its settling).
 *
 * Watching.  A slot costs the worker that settles the member a callback
 * and two writes to the block's shared line; fut_when_all, given the
 * futures after they ran, pays neither.  So a task member started at once
 * (no limit) in ALL or SETTLED mode, whose fulfilment decides nothing, is
 * added UNWATCHED (its mark; `unwatched` counts them): no slot, nothing in
 * `pending`.  Whoever moves its mark from UNWATCHED (a CAS, so once)
 * watches it: pushes its slot, or, if the member was dispatched already,
 * does the slot's counting on the spot.  That is
 *   - the member itself, when its function failed or adopted a future
 *     (member_run, watch_self), so a failure cancels the others at once,
 *     not at close; also the submitter when a start was refused;
 *   - fut_group_close, which walks the members once (they can no longer
 *     grow), as fut_when_all walks its inputs;
 *   - fut_group_limit, under the lock: a limit counts the running members,
 *     so they must say when they end.  With a limit set nothing is added
 *     unwatched, so while a limit holds every member is watched.
 * A member that rejects without running its function (its executor
 * dropped it) is seen at close.  A watcher first adds one to `pending`
 * per member it takes off `unwatched`, and gives back those it did not
 * push a slot for (fut__group_watch).
 *
 * Counting.  `pending` is one per watched member whose slot has not
 * fired, plus one per unwatched member being watched, plus one while the
 * group is open; close drops the open one.  Whoever drops the last settles
 * R (fut__group_settle), so R settles exactly once, after every member and
 * the close.  The adder takes `pending` 64 at a time (credits, under the
 * lock) so that it writes the slots' cache line once per 64 members; close
 * gives back what it did not use.  A slot touches the block only before
 * its drop: until then R is pending, and R's reference keeps the block.
 *
 * Deciding.  A member that fulfils (ALL), or settles any way (SETTLED),
 * decides nothing: it is counted without the lock, and ALL reads the
 * values from the members, in start order, when R settles.
 * The lock is taken by the slots that may end the group early: the first
 * failure (ALL) or the first success (RACE) cancels the other members.
 * The first cause of a cancel is kept (a member's failure, the race's
 * winner, the deadline, the user), and decides R once every member has
 * settled.
 *
 * Starting.  With no limit, a task member starts at once (COUNTED): the
 * adder counts it in `fast_started` (under the lock), its slot (or its
 * watcher) in `fast_done` (atomic).  Behind a limit, members wait (DEFERRED,
 * `waiting`) and start in start order as running ones settle
 * (fut__group_start_members, under the lock: marks[i] RUNNING says a
 * deferred member was started and not yet uncounted, by its slot or by a
 * start that failed, whichever comes first).  Running members are
 * fast_started - fast_done + deferred_running, so a limit set after
 * members started counts those still running.  A COUNTED slot counts
 * itself done, then looks at `waiting`; a deferral counts itself in
 * `waiting`, then looks at `fast_done`: all seq_cst, so one of them sees
 * the other and no waiting member is left unstarted.
 *
 * References to the block: the handle's, R's while R is pending (then the
 * value's, if R's value lives in the block), and the deadline timer's
 * callback.  The last one releases the members and frees the block.
 *
 * Lock: `lock` guards the member list, the cause, the flags and the
 * starting of deferred members; no user code runs under it (cancelling and
 * starting members happen after unlocking).  Memory ordering: what a slot
 * wrote, under the lock or not, comes before its acq_rel drop of
 * `pending`, which the last drop acquires; R is published by the release
 * CAS of settling.
 */
#include "feat/group.h"

#include "core/exec.h"
#include "feat/timer.h"
#include "util/msg.h"

#include <errno.h>
#include <string.h>

/* --- the block -------------------------------------------------------- */

void fut__group_retain(fut_group_t *g)
{
    atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void fut__group_unref(fut_group_t *g)
{
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < g->n; i++)
        fut_release(g->members[i]);
    fut_release(g->first_failed);
    fut_release(g->timer);
    if (g->cap) {
        fut__free(g->members - 1, (g->cap + 1) * sizeof *g->members);
        fut__free(g->values - 1, (g->cap + 1) * sizeof *g->values);
        fut__free((void *)g->marks, g->cap);
    }
    fut__exec_release(g->ex);
    fut__lock_destroy(&g->lock);
    fut__free(g, sizeof *g);
}

/* R's value lives in the block (the values, the members, `won`): its
 * destructor drops the reference R's value holds.  The value's address
 * finds the block through the word before it. */
static void value_free(void *value)
{
    fut_group_t *g;
    memcpy(&g, (char *)value - sizeof g, sizeof g);
    fut__group_unref(g);
}

/* Lock held.  Room for one more member; false on ENOMEM.  Each array has
 * a word in front pointing at the block (value_free). */
bool fut__group_grow(fut_group_t *g)
{
    if (g->n < g->cap)
        return true;
    size_t cap = g->cap ? g->cap * 2 : 8;
    fut_t **m = fut__alloc((cap + 1) * sizeof *m);
    void **v = m ? fut__alloc((cap + 1) * sizeof *v) : NULL;
    _Atomic unsigned char *r = v ? fut__alloc(cap) : NULL;
    if (!r) {
        fut__free(v, (cap + 1) * sizeof *v);
        fut__free(m, (cap + 1) * sizeof *m);
        return false;
    }
    memcpy(m, &g, sizeof g); /* the word before the array: the block */
    memcpy(v, &g, sizeof g);
    if (g->n) {
        memcpy(m + 1, g->members, g->n * sizeof *m);
        memcpy(v + 1, g->values, g->n * sizeof *v);
    }
    /* The marks one by one: atomics (nobody else touches them while the
     * lock is held and the group open). */
    for (size_t i = 0; i < cap; i++)
        atomic_init(&r[i], i < g->n ? atomic_load_explicit(&g->marks[i],
                                                           memory_order_relaxed)
                                    : MARK_NONE);
    if (g->cap) {
        fut__free(g->members - 1, (g->cap + 1) * sizeof *m);
        fut__free(g->values - 1, (g->cap + 1) * sizeof *v);
        fut__free((void *)g->marks, g->cap);
    }
    g->members = m + 1;
    g->values = v + 1;
    g->marks = r;
    g->cap = cap;
    return true;
}

/* --- settling R ------------------------------------------------------- */

/* ALL's value: each member's, in start order (a member cancelled by
 * itself reads NULL).  Every member has settled and the group is closed. */
static void collect_values(fut_group_t *g)
{
    for (size_t i = 0; i < g->n; i++) {
        if (atomic_load_explicit(&g->marks[i], memory_order_relaxed) ==
            MARK_VALUE)
            continue; /* written by its watcher at close */
        fut_t *m = g->members[i];
        g->values[i] = (fut__load(m) & FUT__STATE_MASK) == FUT_FULFILLED
                           ? m->u.ok.value
                           : NULL;
    }
}

static void finish(fut_group_t *g)
{
    fut_t *r = g->result;
    if (g->timer)
        fut_cancel(g->timer);
    void *value = NULL;
    switch (g->cause) {
    case CAUSE_CANCEL:
        fut__fail_static(r, ECANCELED, NULL);
        break;
    case CAUSE_DEADLINE:
        fut__fail_static(r, ETIMEDOUT, "the group's deadline passed");
        break;
    case CAUSE_FAILED: {
        const fut_error_t *e = &g->first_failed->u.err;
        size_t others = atomic_load(&g->rejected) - 1;
        char *msg = others ? fut__msg_format("%s (and %zu other members "
                                             "failed)",
                                             e->message, others)
                           : NULL;
        if (msg)
            fut__fail_in(r, e->domain, e->code, msg);
        else
            fut__settle_like(r, g->first_failed);
        break;
    }
    case CAUSE_WON:
        value = &g->won;
        break;
    default:
        if (g->mode == FUT_GROUP_RACE) {
            if (g->first_failed)
                fut__settle_like(r, g->first_failed); /* all failed */
            else
                fut__fail_static(r, EINVAL,
                                 "fut_group: a race without "
                                 "members");
        } else {
            if (g->mode == FUT_GROUP_ALL)
                collect_values(g);
            value = g->mode == FUT_GROUP_ALL ? (void *)g->values
                                             : (void *)g->members;
        }
        break;
    }
    /* The block lets go of R first: R's value may hold the block, and the
     * block must not hold R then (nothing reads g->result after finish). */
    g->result = NULL;
    if (!fut__is_settled(fut__load(r)))
        fut__fulfil(r, value, value ? value_free : NULL);
    if (!value)
        fut__group_unref(g); /* R's reference goes with R's pending state */
    fut_release(r);          /* the block's reference to R */
}

void fut__group_settle(fut_group_t *g, size_t k)
{
    if (atomic_fetch_sub_explicit(&g->pending, k, memory_order_acq_rel) != k)
        return;
    fut__lock(&g->lock);
    g->finished = true; /* no cause, no deadline from now on */
    fut__unlock(&g->lock);
    finish(g);
}

/* --- cancelling and starting members ---------------------------------- */

/* Cancels every member that has not settled, one at a time, no lock held
 * while fut_cancel runs (it runs callbacks, the slots among them). */
void fut__group_cancel_members(fut_group_t *g)
{
    for (size_t i = 0;; i++) {
        fut__lock(&g->lock);
        fut_t *m = i < g->n ? fut_retain(g->members[i]) : NULL;
        fut__unlock(&g->lock);
        if (!m)
            return;
        fut_cancel(m);
        fut_release(m);
    }
}

/* Lock held.  The first cause wins; true if this was it. */
bool fut__group_set_cause(fut_group_t *g, cause_t cause)
{
    if (g->cause != CAUSE_NONE || g->finished)
        return false;
    g->cause = cause;
    return true;
}

bool fut__group_cancel(fut_group_t *g, cause_t cause)
{
    fut__lock(&g->lock);
    bool first = fut__group_set_cause(g, cause);
    fut__unlock(&g->lock);
    if (first)
        fut__group_cancel_members(g);
    return first;
}

/* --- the group's future ----------------------------------------------- */

static void group_cancel_requested(fut_t *r)
{
    fut__group_cancel(r->aux, CAUSE_CANCEL);
}

const fut__kind_ops_t fut__group_kind = {
    .name = "group",
    .size = sizeof(struct fut),
    .cancel_requested = group_cancel_requested,
};

/* --- the API ---------------------------------------------------------- */

fut_group_t *fut_group_new(fut_executor_t *ex, unsigned flags)
{
    if (!ex || flags > FUT_GROUP_RACE)
        return NULL;
    fut_group_t *g = fut__alloc(sizeof *g);
    fut_t *r = g ? fut__new(FUT__KIND_GROUP, 2) : NULL; /* user's, block's */
    if (!r) {
        fut__free(g, sizeof *g);
        return NULL;
    }
    memset(g, 0, sizeof *g);
    fut__lock_init(&g->lock);
    atomic_init(&g->refs, 2);    /* the handle's and R's */
    atomic_init(&g->pending, 1); /* open */
    g->ex = fut__exec_retain(ex);
    g->mode = flags;
    g->self = g;
    g->result = r;
    r->aux = g;
    FUT__MUST(fut__transition(r, FUT_PENDING, FUT_RUNNING, 0, NULL));
    fut_release(r); /* the user's: fut_group_close hands out references */
    return g;
}

fut_group_t *fut_group_child(fut_group_t *parent, unsigned flags)
{
    if (!parent)
        return NULL;
    fut_group_t *child = fut_group_new(parent->ex, flags);
    if (!child)
        return NULL;
    if (fut_group_add(parent, fut_retain(child->result)) != 0) {
        fut_group_cancel(child);
        fut_group_release(child);
        return NULL;
    }
    return child;
}

int fut_group_limit(fut_group_t *g, size_t max_running)
{
    if (!g)
        return EINVAL;
    bool cancel_others = false;
    size_t back = 0;
    fut__lock(&g->lock);
    g->max_running = max_running;
    if (max_running && g->unwatched) {
        /* A limit counts the running members: each must say when it ends. */
        size_t u = g->unwatched;
        g->unwatched = 0;
        atomic_fetch_add(&g->pending, u);
        back = u - fut__group_watch(g, g->n, true, &cancel_others);
    }
    fut__unlock(&g->lock);
    if (back)
        fut__group_settle(g, back); /* open: not the last */
    if (cancel_others)
        fut__group_cancel_members(g);
    fut__group_start_members(g); /* a higher limit lets waiting members start */
    return 0;
}

static void deadline_fired(fut_t *timer, void *g)
{
    if (fut_state(timer) == FUT_FULFILLED)
        fut__group_cancel(g, CAUSE_DEADLINE);
}

static void deadline_free(void *g)
{
    fut__group_unref(g);
}

int fut_group_deadline(fut_group_t *g, int64_t ns)
{
    if (!g)
        return EINVAL;
    fut_t *t = fut__timer_new(g->ex, ns, NULL);
    if (t == &fut__enomem)
        return ENOMEM;
    fut__lock(&g->lock);
    bool taken = g->timer != NULL || g->finished;
    if (!taken)
        g->timer = fut_retain(t);
    fut__unlock(&g->lock);
    if (taken) {
        fut_cancel(t);
        fut_release(t);
        return EINVAL;
    }
    fut__group_retain(g); /* the callback's */
    int rc = fut_on_done_ex(t, deadline_fired, g, deadline_free);
    fut_release(t);
    return rc;
}

fut_t *fut_group_close(fut_group_t *g)
{
    if (!g)
        return fut_rejected(EINVAL, "fut_group_close: the group is NULL");
    fut__lock(&g->lock);
    if (g->closed) {
        fut__unlock(&g->lock);
        return fut_rejected(EALREADY, "fut_group_close: closed already");
    }
    g->closed = true;
    size_t unused = g->credits;
    g->credits = 0;
    size_t u = g->unwatched, n = g->n;
    g->unwatched = 0;
    fut_t *r = fut_retain(g->result);
    fut__unlock(&g->lock);
    if (u) {
        /* The members are fixed now: watch the unwatched ones. */
        bool cancel_others = false;
        atomic_fetch_add(&g->pending, u);
        unused += u - fut__group_watch(g, n, false, &cancel_others);
        if (cancel_others)
            fut__group_cancel_members(g);
        else if (atomic_load(&g->waiting))
            fut__group_start_members(g);
    }
    fut__group_settle(g, unused + 1); /* the open one, and unused credits */
    return r;
}

bool fut_group_cancel(fut_group_t *g)
{
    return g && fut__group_cancel(g, CAUSE_CANCEL);
}

void fut_group_release(fut_group_t *g)
{
    if (!g)
        return;
    fut__lock(&g->lock);
    bool open = !g->closed;
    fut__unlock(&g->lock);
    if (open) {
        fut__group_cancel(g, CAUSE_CANCEL);
        fut_t *r = fut_group_close(g);
        fut_wait(r, FUT_FOREVER);
        fut_release(r);
    }
    fut__group_unref(g);
}

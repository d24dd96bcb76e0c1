/*
 * group_member.c - a task group's members: adding them, starting task
 * members within the limit, and counting each one settled (its slot).
 * The design, the references and the lock are described in group.c.
 */
#include "feat/group.h"

#include "core/ctx.h"
#include "core/exec.h"
#include "feat/task.h"

#include <errno.h>
#include <string.h>

enum { CREDITS = 64 }; /* of `pending`, taken at once by add_member */

static _Thread_local fut_group_t *current;

fut_group_t *fut_group_current(void)
{
    return current;
}

/* Lock held.  Deferred member i stops counting against the limit. */
static void stop_running(fut_group_t *g, size_t i)
{
    if (atomic_load_explicit(&g->marks[i], memory_order_relaxed) ==
        MARK_RUNNING) {
        atomic_store_explicit(&g->marks[i], MARK_NONE, memory_order_relaxed);
        g->deferred_running--;
    }
}

/* Lock held.  Task members started and not settled. */
static size_t running(fut_group_t *g)
{
    return g->fast_started - atomic_load(&g->fast_done) + g->deferred_running;
}

/* Lock held.  Moves `started` past member i, which waited. */
static void pass_waiting(fut_group_t *g)
{
    g->started++;
    atomic_fetch_sub(&g->waiting, 1);
}

/* Starts waiting members while the limit allows.  A deferred task counts
 * as running from the moment it is picked; whichever comes first of its
 * slot and a failed start stops it counting. */
void fut__group_start_members(fut_group_t *g)
{
    for (;;) {
        fut_t *m = NULL;
        size_t i = 0;
        fut__lock(&g->lock);
        while (g->started < g->n &&
               (g->max_running == 0 || running(g) < g->max_running)) {
            i = g->started;
            pass_waiting(g);
            fut_t *c = g->members[i];
            /* Only tasks the group made wait to start. */
            if (fut__task_unstarted(c)) {
                m = fut_retain(c);
                atomic_store_explicit(&g->marks[i], MARK_RUNNING,
                                      memory_order_relaxed);
                g->deferred_running++;
                break;
            }
        }
        fut__unlock(&g->lock);
        if (!m)
            return;
        unsigned flags = (fut__load(m) & FUT__BLOCKING) ? FUT_BLOCKING : 0;
        if (fut__task_start(m, g->ex, flags) != 0) { /* m is the queue's */
            fut__lock(&g->lock);
            stop_running(g, i); /* cancelled meanwhile, or refused */
            fut__unlock(&g->lock);
        }
    }
}

/* --- members ---------------------------------------------------------- */

/* Lock held.  A member that may end the group early (ALL's failure,
 * RACE's outcome): true if it is the first cause, and the others are to
 * be cancelled. */
static bool decide(fut_group_t *g, fut_t *f, unsigned st, size_t index)
{
    if (st == FUT_FULFILLED && g->mode == FUT_GROUP_RACE) {
        if (!fut__group_set_cause(g, CAUSE_WON))
            return false;
        g->won.index = index;
        g->won.value = f->u.ok.value;
        return true;
    }
    if (st != FUT_REJECTED)
        return false;
    if (g->mode == FUT_GROUP_ALL) {
        if (!fut__group_set_cause(g, CAUSE_FAILED))
            return false;
        g->first_failed = fut_retain(f);
        return true;
    }
    if (g->mode == FUT_GROUP_RACE) {
        fut_release(g->first_failed); /* keep the last */
        g->first_failed = fut_retain(f);
    }
    return false;
}

/* What member f's settling means to the group, counted once per member:
 * by its slot, or by fut__group_watch for a member dispatched before
 * anyone watched it.  ix: the member's index and flags; lock held if
 * locked.  True if f decided the group: the others are to be cancelled. */
static bool count_settled(fut_group_t *g, fut_t *f, size_t ix, bool locked)
{
    bool deferred = ix & FUT__MEMBER_DEFERRED;
    unsigned st = fut__load(f) & FUT__STATE_MASK;
    if (st != FUT_FULFILLED)
        fut__observe(f); /* the group read it */
    if (st == FUT_REJECTED)
        atomic_fetch_add(&g->rejected, 1);
    /* The lock only for what may decide the group or a deferred start. */
    if (!deferred && g->mode != FUT_GROUP_RACE &&
        !(g->mode == FUT_GROUP_ALL && st == FUT_REJECTED))
        return false;
    if (!locked)
        fut__lock(&g->lock);
    if (deferred)
        stop_running(g, ix & FUT__MEMBER_INDEX);
    bool cancel_others = decide(g, f, st, ix & FUT__MEMBER_INDEX);
    if (!locked)
        fut__unlock(&g->lock);
    return cancel_others;
}

static void slot_fired(fut_t *f, void *node)
{
    member_t *rec = node;
    fut_group_t *g = rec->g;
    size_t ix = rec->index;
    if (ix & FUT__MEMBER_OWN)
        fut__free(rec, sizeof *rec);
    if (ix & FUT__MEMBER_COUNTED)
        atomic_fetch_add(&g->fast_done, 1);
    if (count_settled(g, f, ix, false))
        fut__group_cancel_members(g);
    else if ((ix & (FUT__MEMBER_COUNTED | FUT__MEMBER_DEFERRED)) &&
             atomic_load(&g->waiting))
        fut__group_start_members(g);
    fut__group_settle(g, 1); /* last: g may be gone after it */
}

size_t fut__group_watch(fut_group_t *g, size_t n, bool locked,
                        bool *cancel_others)
{
    size_t pushed = 0, done = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char mark = MARK_UNWATCHED;
        if (atomic_load_explicit(&g->marks[i], memory_order_relaxed) !=
                MARK_UNWATCHED ||
            !atomic_compare_exchange_strong(&g->marks[i], &mark, MARK_NONE))
            continue; /* watched, or watching itself (watch_self) */
        fut_t *m = g->members[i];
        member_t *rec = fut__task_room(m);
        if (fut__cbs_push(m, (uintptr_t)&rec->slot | FUT__TAG_SLOT)) {
            pushed++;
            continue;
        }
        /* Dispatched already: its slot's work, here (an unwatched member
         * is COUNTED, never deferred, and its index is i); and ALL's value,
         * while the member's line is here (collect_values skips it). */
        done++;
        if (g->mode == FUT_GROUP_ALL &&
            (fut__load(m) & FUT__STATE_MASK) == FUT_FULFILLED) {
            g->values[i] = m->u.ok.value;
            atomic_store_explicit(&g->marks[i], MARK_VALUE,
                                  memory_order_relaxed);
        }
        if (count_settled(g, m, i | FUT__MEMBER_COUNTED, locked))
            *cancel_others = true;
    }
    if (done)
        atomic_fetch_add(&g->fast_done, done);
    return pushed;
}

/* Watches member f now if nobody has (it is marked UNWATCHED): a member
 * that failed, or follows a future, so that a failure cancels the others
 * at once instead of at close; or one whose start failed. */
static void watch_self(fut_group_t *g, member_t *rec, fut_t *f)
{
    unsigned char mark = MARK_UNWATCHED;
    fut__lock(&g->lock); /* the marks do not move meanwhile */
    bool mine = atomic_compare_exchange_strong(
        &g->marks[rec->index & FUT__MEMBER_INDEX], &mark, MARK_NONE);
    if (mine) {
        if (!g->closed)
            g->unwatched--; /* else the closer counted it, and gives back */
        atomic_fetch_add(&g->pending, 1);
    }
    fut__unlock(&g->lock);
    if (mine && !fut__cbs_push(f, (uintptr_t)&rec->slot | FUT__TAG_SLOT))
        slot_fired(f, &rec->slot); /* dispatched already */
}

static void *member_run(fut_ctx_t *ctx, void *arg)
{
    member_t *rec = arg;
    fut_group_t *g = rec->g;
    fut_group_t *outer = current;
    current = g;
    void *v = rec->fn(ctx, rec->arg);
    current = outer;
    if ((ctx->code || ctx->adopt) && g->mode == FUT_GROUP_ALL)
        watch_self(g, rec, ctx->f);
    return v;
}

static void member_free_arg(void *arg)
{
    member_t *rec = arg;
    if (rec->free_arg)
        rec->free_arg(rec->arg);
}

/* Adds f (a reference, consumed) as a member with record rec (its room,
 * or an allocation of its own that its slot frees); task: f is a task the
 * group starts.  EINVAL if the group is closed (nothing added: the caller
 * still owns f, and a record of its own is freed),
 * ECANCELED if it was cancelled (f is added and cancelled), ENOMEM.  *start
 * says the caller is to start f now (no limit, nobody waiting before it). */
static int add_member(fut_group_t *g, fut_t *f, member_t *rec, bool task,
                      bool *cancel, bool *start)
{
    fut__lock(&g->lock);
    if (g->closed || !fut__group_grow(g)) {
        int rc = g->closed ? EINVAL : ENOMEM;
        fut__unlock(&g->lock);
        if (!task)
            fut__free(rec, sizeof *rec);
        return rc;
    }
    size_t i = g->n++;
    rec->g = g;
    rec->index = task ? i : i | FUT__MEMBER_OWN;
    rec->slot.fn = slot_fired;
    rec->slot.arg = rec;
    g->members[i] = f; /* values[i] is written at finish; marks[i] is
                          MARK_NONE from fut__group_grow */
    *cancel = g->cause != CAUSE_NONE;
    *start = false;
    if (g->started == i && (!task || g->max_running == 0)) {
        g->started++; /* nothing to wait for */
        if (task && !*cancel) {
            /* Started at once: its executor is set before the unlock that
             * lets a canceller find it, so it needs no claim to start
             * (fut__task_queue). */
            f->ex = g->ex;
            rec->index |= FUT__MEMBER_COUNTED;
            g->fast_started++;
            *start = true;
            if (g->mode != FUT_GROUP_RACE) {
                /* No slot until it may decide the group (group.c,
                 * Watching). */
                atomic_store_explicit(&g->marks[i], MARK_UNWATCHED,
                                      memory_order_relaxed);
                g->unwatched++;
                fut__unlock(&g->lock);
                return 0;
            }
        }
    } else {
        rec->index |= FUT__MEMBER_DEFERRED;
        atomic_fetch_add(&g->waiting, 1);
    }
    if (g->credits == 0) {
        /* One write to the slots' line per CREDITS members added. */
        atomic_fetch_add_explicit(&g->pending, CREDITS, memory_order_relaxed);
        g->credits = CREDITS;
    }
    g->credits--;
    fut__unlock(&g->lock);
    if (!fut__cbs_push(f, (uintptr_t)&rec->slot | FUT__TAG_SLOT))
        slot_fired(f, &rec->slot);
    return 0;
}

/* Starts a task member: fut_group_submit_ex with *out (a reference for
 * the caller), fut_group_spawn_ex without (out NULL).  Returns 0, or the
 * code the member is rejected with, or was refused with (EINVAL, ENOMEM),
 * or ECANCELED; free_arg runs once on every path. */
static int spawn(fut_group_t *g, fut_fn fn, void *arg, fut_free_fn free_arg,
                 unsigned flags, fut_t **out)
{
    if (!g || !fn) {
        if (free_arg)
            free_arg(arg);
        if (out)
            *out = fut_rejected(EINVAL, "fut_group_submit: a NULL group or "
                                        "fn");
        return EINVAL;
    }
    /* The group's reference, the queue's and the caller's if it wants one;
     * the record in its room. */
    fut_t *f = fut__task_new(member_run, NULL, NULL, out ? 3 : 2, true);
    if (!f) {
        if (free_arg)
            free_arg(arg);
        if (out)
            *out = &fut__enomem;
        return ENOMEM;
    }
    member_t *rec = fut__task_room(f);
    memset(rec, 0, sizeof *rec);
    rec->fn = fn;
    rec->arg = arg;
    rec->free_arg = free_arg;
    f->u.task.arg = rec;
    f->u.task.free_arg = member_free_arg;
    if (flags & FUT_BLOCKING)
        atomic_fetch_or_explicit(&f->state, FUT__BLOCKING,
                                 memory_order_relaxed);
    if (out)
        *out = f;
    bool cancel = false, start = false;
    int rc = add_member(g, f, rec, true, &cancel, &start);
    if (rc != 0) {
        /* Not a member: it never runs, and is settled here without its own
         * free_arg; the user's still runs. */
        if (free_arg)
            free_arg(arg);
        FUT__MUST(fut__claim(f)); /* nobody else has seen it */
        fut__fail_static(f, rc, rc == EINVAL ? "fut_group: closed" : NULL);
        fut_release(f); /* the group's and the queue's, never taken */
        fut_release(f);
        return rc;
    }
    if (start) {
        /* A failed start settles f: its watcher uncounts it. */
        rc = fut__task_queue(f, flags & FUT_BLOCKING);
        if (rc != 0)
            watch_self(g, rec, f);
        return rc;
    }
    fut_release(f); /* the queue's: not now (the group's keeps f) */
    if (cancel) {
        fut_cancel(f);
        return ECANCELED;
    }
    fut__group_start_members(g);
    return 0;
}

fut_t *fut_group_submit_ex(fut_group_t *g, fut_fn fn, void *arg,
                           fut_free_fn free_arg, unsigned flags)
{
    fut_t *f;
    (void)spawn(g, fn, arg, free_arg, flags, &f);
    return f;
}

fut_t *fut_group_submit(fut_group_t *g, fut_fn fn, void *arg)
{
    return fut_group_submit_ex(g, fn, arg, NULL, 0);
}

int fut_group_spawn_ex(fut_group_t *g, fut_fn fn, void *arg,
                       fut_free_fn free_arg, unsigned flags)
{
    return spawn(g, fn, arg, free_arg, flags, NULL);
}

int fut_group_spawn(fut_group_t *g, fut_fn fn, void *arg)
{
    return spawn(g, fn, arg, NULL, 0, NULL);
}

int fut_group_add(fut_group_t *g, fut_t *f)
{
    if (!g || !f) {
        fut_release(f);
        return EINVAL;
    }
    member_t *rec = fut__alloc(sizeof *rec);
    if (!rec) {
        fut_release(f);
        return ENOMEM;
    }
    memset(rec, 0, sizeof *rec);
    bool cancel = false, start = false;
    int rc = add_member(g, f, rec, false, &cancel, &start);
    if (rc != 0) {
        fut_release(f);
        return rc;
    }
    /* Not a task of ours: it runs by its own means, outside the limit. */
    if (cancel)
        fut_cancel(f);
    else
        fut__group_start_members(g); /* moves `started` past it if waiting */
    return 0;
}

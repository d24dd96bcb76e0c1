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
    if (g->running_now[i]) {
        g->running_now[i] = 0;
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
        pthread_mutex_lock(&g->lock);
        while (g->started < g->n &&
               (g->max_running == 0 || running(g) < g->max_running)) {
            i = g->started;
            pass_waiting(g);
            fut_t *c = g->members[i];
            /* Only tasks the group made wait to start. */
            if (fut__task_unstarted(c)) {
                m = fut_retain(c);
                g->running_now[i] = 1;
                g->deferred_running++;
                break;
            }
        }
        pthread_mutex_unlock(&g->lock);
        if (!m)
            return;
        unsigned flags = (fut__load(m) & FUT__BLOCKING) ? FUT_BLOCKING : 0;
        if (fut__task_start(m, g->ex, flags) != 0) {
            pthread_mutex_lock(&g->lock);
            stop_running(g, i); /* cancelled meanwhile, or refused */
            pthread_mutex_unlock(&g->lock);
        }
        fut_release(m);
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

static void slot_fired(fut_t *f, void *node)
{
    member_t *rec = node;
    fut_group_t *g = rec->g;
    size_t index = rec->index & FUT__MEMBER_INDEX;
    bool counted = rec->index & FUT__MEMBER_COUNTED;
    bool deferred = rec->index & FUT__MEMBER_DEFERRED;
    if (rec->index & FUT__MEMBER_OWN)
        fut__free(rec, sizeof *rec);
    unsigned st = fut__load(f) & FUT__STATE_MASK;
    if (st != FUT_FULFILLED)
        fut__observe(f); /* the group read it */
    if (st == FUT_REJECTED)
        atomic_fetch_add(&g->rejected, 1);
    if (counted)
        atomic_fetch_add(&g->fast_done, 1);
    bool cancel_others = false;
    /* The lock only for what may decide the group or a deferred start. */
    if (deferred || g->mode == FUT_GROUP_RACE ||
        (g->mode == FUT_GROUP_ALL && st == FUT_REJECTED)) {
        pthread_mutex_lock(&g->lock);
        if (deferred)
            stop_running(g, index);
        cancel_others = decide(g, f, st, index);
        pthread_mutex_unlock(&g->lock);
    }
    if (cancel_others)
        fut__group_cancel_members(g);
    else if ((counted || deferred) && atomic_load(&g->waiting))
        fut__group_start_members(g);
    fut__group_settle(g, 1); /* last: g may be gone after it */
}

static void *member_run(fut_ctx_t *ctx, void *arg)
{
    member_t *rec = arg;
    fut_group_t *outer = current;
    current = rec->g;
    void *v = rec->fn(ctx, rec->arg);
    current = outer;
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
    pthread_mutex_lock(&g->lock);
    if (g->closed || !fut__group_grow(g)) {
        int rc = g->closed ? EINVAL : ENOMEM;
        pthread_mutex_unlock(&g->lock);
        if (!task)
            fut__free(rec, sizeof *rec);
        return rc;
    }
    size_t i = g->n++;
    rec->g = g;
    rec->index = task ? i : i | FUT__MEMBER_OWN;
    g->members[i] = f;
    g->values[i] = NULL;
    g->running_now[i] = 0;
    *cancel = g->cause != CAUSE_NONE;
    *start = false;
    if (g->started == i && (!task || g->max_running == 0)) {
        g->started++; /* nothing to wait for */
        if (task && !*cancel) {
            rec->index |= FUT__MEMBER_COUNTED;
            g->fast_started++;
            *start = true;
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
    pthread_mutex_unlock(&g->lock);
    rec->slot.fn = slot_fired;
    rec->slot.arg = rec;
    if (!fut__cbs_push(f, (uintptr_t)&rec->slot | FUT__TAG_SLOT))
        slot_fired(f, &rec->slot);
    return 0;
}

fut_t *fut_group_submit_ex(fut_group_t *g, fut_fn fn, void *arg,
                           fut_free_fn free_arg, unsigned flags)
{
    if (!g || !fn) {
        if (free_arg)
            free_arg(arg);
        return fut_rejected(EINVAL, "fut_group_submit: a NULL group or fn");
    }
    /* The caller's reference and the group's; the record in its room. */
    fut_t *f = fut__task_new(member_run, NULL, NULL, 2, true);
    if (!f) {
        if (free_arg)
            free_arg(arg);
        return &fut__enomem;
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
    bool cancel = false, start = false;
    int rc = add_member(g, f, rec, true, &cancel, &start);
    if (rc != 0) {
        /* Not a member: it never runs, and is settled here without its own
         * free_arg; the user's still runs. */
        if (free_arg)
            free_arg(arg);
        FUT__MUST(fut__claim(f)); /* nobody else has seen it */
        fut__fail_static(f, rc, rc == EINVAL ? "fut_group: closed" : NULL);
        fut_release(f); /* the group's, never taken */
        return f;
    }
    if (cancel) {
        fut_cancel(f);
    } else if (start) {
        /* A failed start settles f: its slot uncounts it. */
        (void)fut__task_start(f, g->ex, flags & FUT_BLOCKING);
    } else {
        fut__group_start_members(g);
    }
    return f;
}

fut_t *fut_group_submit(fut_group_t *g, fut_fn fn, void *arg)
{
    return fut_group_submit_ex(g, fn, arg, NULL, 0);
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

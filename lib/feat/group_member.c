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

static _Thread_local fut_group_t *current;

fut_group_t *fut_group_current(void)
{
    return current;
}

/* Lock held.  Member i stops counting against the limit. */
static void stop_running(fut_group_t *g, size_t i)
{
    if (g->running_now[i]) {
        g->running_now[i] = 0;
        g->running--;
    }
}

/* Starts waiting task members while the limit allows.  A member counts as
 * running from the moment it is picked; whichever comes first of its slot
 * and a failed start stops it counting. */
void fut__group_start_members(fut_group_t *g)
{
    for (;;) {
        pthread_mutex_lock(&g->lock);
        size_t i = g->started;
        bool room =
            i < g->n && (g->max_running == 0 || g->running < g->max_running);
        fut_t *m = NULL;
        if (room) {
            m = fut_retain(g->members[i]);
            g->started++;
            uint32_t s = fut__load(m);
            /* Only tasks the group made wait to start (no executor yet). */
            if (fut__kind(s) == FUT__KIND_TASK && !m->ex &&
                !fut__is_settled(s)) {
                g->running_now[i] = 1;
                g->running++;
            } else {
                fut_release(m);
                m = NULL;
            }
        }
        pthread_mutex_unlock(&g->lock);
        if (!room)
            return;
        if (!m)
            continue;
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

static void slot_fired(fut_t *f, void *node)
{
    member_t *rec = node;
    fut_group_t *g = rec->g;
    unsigned st = fut__load(f) & FUT__STATE_MASK;
    bool ok = st == FUT_FULFILLED;
    bool cancel_others = false, done;
    if (st != FUT_FULFILLED)
        fut__observe(f); /* the group read it */
    pthread_mutex_lock(&g->lock);
    g->settled++;
    stop_running(g, rec->index);
    if (ok && g->mode == FUT_GROUP_ALL) {
        g->values[rec->index] = f->u.ok.value;
    } else if (ok && g->mode == FUT_GROUP_RACE) {
        if (fut__group_set_cause(g, CAUSE_WON)) {
            g->won.index = rec->index;
            g->won.value = f->u.ok.value;
            cancel_others = true;
        }
    } else if (st == FUT_REJECTED) {
        g->rejected++;
        if (g->mode == FUT_GROUP_ALL && fut__group_set_cause(g, CAUSE_FAILED)) {
            g->first_failed = fut_retain(f);
            cancel_others = true;
        } else if (g->mode == FUT_GROUP_RACE) {
            fut_release(g->first_failed); /* keep the last */
            g->first_failed = fut_retain(f);
        }
    }
    done = g->closed && g->settled == g->n && !g->finished;
    if (done)
        g->finished = true;
    pthread_mutex_unlock(&g->lock);
    fut__free(rec, sizeof *rec);
    if (cancel_others)
        fut__group_cancel_members(g);
    else if (!done)
        fut__group_start_members(g);
    if (done)
        fut__group_finish(g);
    fut__group_unref(g); /* the slot's */
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

/* Adds f (a reference, consumed) as a member with record rec (freed by
 * its slot).  EINVAL if the group is closed (nothing added: the caller
 * still owns f, and rec is freed), ECANCELED if it was cancelled (f is
 * added and cancelled), ENOMEM. */
static int add_member(fut_group_t *g, fut_t *f, member_t *rec, bool *cancel)
{
    pthread_mutex_lock(&g->lock);
    if (g->closed || !fut__group_grow(g)) {
        int rc = g->closed ? EINVAL : ENOMEM;
        pthread_mutex_unlock(&g->lock);
        fut__free(rec, sizeof *rec);
        return rc;
    }
    rec->g = g;
    rec->index = g->n;
    g->members[g->n] = f;
    g->values[g->n] = NULL;
    g->running_now[g->n] = 0;
    g->n++;
    *cancel = g->cause != CAUSE_NONE;
    fut__group_retain(g); /* the slot's */
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
    member_t *rec = fut__alloc(sizeof *rec);
    if (!rec) {
        if (free_arg)
            free_arg(arg);
        return &fut__enomem;
    }
    memset(rec, 0, sizeof *rec);
    rec->fn = fn;
    rec->arg = arg;
    rec->free_arg = free_arg;
    /* The caller's reference and the group's. */
    fut_t *f = fut__task_new(member_run, rec, member_free_arg, 2);
    if (!f) {
        fut__free(rec, sizeof *rec);
        return &fut__enomem;
    }
    if (flags & FUT_BLOCKING)
        atomic_fetch_or_explicit(&f->state, FUT__BLOCKING,
                                 memory_order_relaxed);
    bool cancel = false;
    int rc = add_member(g, f, rec, &cancel);
    if (rc != 0) {
        /* Not a member (rec is freed): it never runs, and is settled here
         * without its own free_arg; the user's still runs. */
        if (free_arg)
            free_arg(arg);
        FUT__MUST(fut__claim(f)); /* nobody else has seen it */
        fut__fail_static(f, rc, rc == EINVAL ? "fut_group: closed" : NULL);
        fut_release(f); /* the group's, never taken */
        return f;
    }
    if (cancel)
        fut_cancel(f);
    else
        fut__group_start_members(g);
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
    bool cancel = false;
    int rc = add_member(g, f, rec, &cancel);
    if (rc != 0) {
        fut_release(f);
        return rc;
    }
    /* Not a task of ours: it runs by its own means, outside the limit. */
    if (cancel)
        fut_cancel(f);
    else
        fut__group_start_members(g); /* moves `started` past it */
    return 0;
}

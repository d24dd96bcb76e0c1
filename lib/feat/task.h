/*
 * task.h - tasks: a function and its argument run on an executor (private;
 * feature layer).
 */
#ifndef FUT_FEAT_TASK_H
#define FUT_FEAT_TASK_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__task_kind;
extern const fut__kind_ops_t fut__task_roomy_kind;

/* Bytes of room a roomy task has after its future, for its creator's own
 * record (a group member's), so that the two are one allocation: one
 * fewer allocation per task, and the thread that runs the task finds the
 * record next to the future instead of on a line of its own. */
enum { FUT__TASK_ROOM = FUT__CLASS_ROOMY - sizeof(struct fut) };

/* A task future that is not queued yet (its executor unset), with `refs`
 * references; roomy: with FUT__TASK_ROOM bytes of room (fut__task_room),
 * kind FUT__KIND_TASK_ROOMY.  NULL on ENOMEM (free_arg then ran).
 * Cancelling it before it starts runs free_arg and tells no executor. */
fut_t *fut__task_new(fut_fn fn, void *arg, fut_free_fn free_arg, uint32_t refs,
                     bool roomy);

/* A roomy task's room: lives as long as the future. */
static inline void *fut__task_room(fut_t *f)
{
    return (char *)f + sizeof(struct fut);
}

/* f is a task not started yet (by fut__task_start) and not settled. */
bool fut__task_unstarted(fut_t *f);

/* Queues task f (from fut__task_new) on ex, with a reference the caller
 * passes for the queue (consumed on every path: made with it, the task
 * costs no atomic for it).  0; ECANCELED if f was cancelled meanwhile (nothing
 * queued); or ex's refusal, and then f is rejected with it. */
int fut__task_start(fut_t *f, fut_executor_t *ex, unsigned flags);

/* Queues task f on f->ex, set by the caller before any other thread could
 * see f: nobody can have claimed f to read its executor half set, so no
 * claim is taken (two locked instructions fewer: fut_submit, and a group's
 * member started at once).  A task cancelled after f->ex was set is queued
 * all the same; its executor was told, and counts it when it takes it
 * out.  0, or ex's refusal (f rejected with it); the queue's reference is
 * consumed on every path. */
int fut__task_queue(fut_t *f, unsigned flags);

#endif /* FUT_FEAT_TASK_H */

/*
 * task.h - tasks: a function and its argument run on an executor (private;
 * feature layer).
 */
#ifndef FUT_FEAT_TASK_H
#define FUT_FEAT_TASK_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__task_kind;

/* A task future that is not queued yet (its executor unset), with `refs`
 * references; NULL on ENOMEM (free_arg then ran).  Cancelling it before it
 * starts runs free_arg and tells no executor. */
fut_t *fut__task_new(fut_fn fn, void *arg, fut_free_fn free_arg,
                     uint32_t refs);

/* Queues task f (from fut__task_new) on ex, taking a reference for the
 * queue.  0; ECANCELED if f was cancelled meanwhile (nothing queued); or
 * ex's refusal, and then f is rejected with it. */
int fut__task_start(fut_t *f, fut_executor_t *ex, unsigned flags);

#endif /* FUT_FEAT_TASK_H */

/*
 * task.h - tasks: a function and its argument run on an executor (private;
 * feature layer).
 */
#ifndef FUT_FEAT_TASK_H
#define FUT_FEAT_TASK_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__task_kind;

#endif /* FUT_FEAT_TASK_H */

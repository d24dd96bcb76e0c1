/*
 * kinds.h - the kinds of future this layer produces (private; feature
 * layer).
 *
 * The core stores a kind as a small index in the state word and reaches
 * its operations through fut__kinds, which kinds.c fills from the kinds'
 * own headers.  Index 0 is the core's: futures born settled.
 */
#ifndef FUT_FEAT_KINDS_H
#define FUT_FEAT_KINDS_H

#include "core/future.h"

enum {
    FUT__KIND_TASK = 1,       /* runs fn on an executor (task.h) */
    FUT__KIND_PROMISE = 2,    /* settled through fut_promise_t (promise.h) */
    FUT__KIND_THEN = 3,       /* then, catch, then_catch (chain.h) */
    FUT__KIND_FINALLY = 4,    /* finally (chain.h) */
    FUT__KIND_WHEN = 5,       /* a combinator's result (combine.h) */
    FUT__KIND_TIMER = 6,      /* fut_delay, fut_within (timer.h) */
    FUT__KIND_GROUP = 7,      /* a task group's future (group.h) */
    FUT__KIND_FIBER = 8,      /* fut_async: a task on a stack of its own */
    FUT__KIND_TASK_ROOMY = 9, /* a task with room for its creator's record
                                 (task.h: a group's task members) */
};

#endif /* FUT_FEAT_KINDS_H */

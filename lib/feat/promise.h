/*
 * promise.h - promises: futures settled through their write side
 * (private; feature layer).
 */
#ifndef FUT_FEAT_PROMISE_H
#define FUT_FEAT_PROMISE_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__promise_kind;
extern const fut__kind_ops_t fut__value_kind; /* born settled (kind 0) */

#endif /* FUT_FEAT_PROMISE_H */

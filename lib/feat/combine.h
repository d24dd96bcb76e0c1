/*
 * combine.h - combinators: the when_* family (private; feature layer).
 */
#ifndef FUT_FEAT_COMBINE_H
#define FUT_FEAT_COMBINE_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__when_kind;

#endif /* FUT_FEAT_COMBINE_H */

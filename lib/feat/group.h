/*
 * group.h - task groups: members started as you go, a future that settles
 * once every member has (private; feature layer).
 */
#ifndef FUT_FEAT_GROUP_H
#define FUT_FEAT_GROUP_H

#include "feat/kinds.h"

extern const fut__kind_ops_t fut__group_kind;

#endif /* FUT_FEAT_GROUP_H */

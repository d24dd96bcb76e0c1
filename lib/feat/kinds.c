/*
 * kinds.c - the table of kind operations, filled in this one place.
 */
#include "feat/chain.h"
#include "feat/combine.h"
#include "feat/fiber.h"
#include "feat/group.h"
#include "feat/promise.h"
#include "feat/task.h"
#include "feat/timer.h"

const fut__kind_ops_t *const fut__kinds[FUT__KINDS] = {
    [FUT__KIND_VALUE] = &fut__value_kind,
    [FUT__KIND_TASK] = &fut__task_kind,
    [FUT__KIND_PROMISE] = &fut__promise_kind,
    [FUT__KIND_THEN] = &fut__cont_kind,
    [FUT__KIND_FINALLY] = &fut__cont_kind,
    [FUT__KIND_WHEN] = &fut__when_kind,
    [FUT__KIND_TIMER] = &fut__timer_kind,
    [FUT__KIND_GROUP] = &fut__group_kind,
    [FUT__KIND_FIBER] = &fut__fiber_kind,
    [FUT__KIND_TASK_ROOMY] = &fut__task_roomy_kind,
};

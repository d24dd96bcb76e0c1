/*
 * chain.h - continuations: then, catch, then_catch, finally and their _on
 * forms (private; feature layer).
 *
 * A continuation carries two words more than a future: the input it waits
 * for and its argument's destructor.  `input` holds one reference to the
 * input until the continuation runs or is cancelled; a reader that needs
 * it meanwhile (cancel, the adoption walk, progress relays, through the
 * kind's input operation) swaps in FUT__BUSY and puts it back.
 */
#ifndef FUT_FEAT_CHAIN_H
#define FUT_FEAT_CHAIN_H

#include "feat/kinds.h"

typedef struct fut__cont {
    struct fut f;
    fut_t *_Atomic input;
    fut_free_fn free_arg;
} fut__cont_t;

_Static_assert(sizeof(fut__cont_t) == FUT__CLASS_LARGE,
               "continuations are cached by the allocator");

/* then, catch and then_catch share the operations with finally; the kind
 * index tells them apart. */
extern const fut__kind_ops_t fut__cont_kind;

#endif /* FUT_FEAT_CHAIN_H */

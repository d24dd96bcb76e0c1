/*
 * ext.h - extension blocks: rarely used parts of a future kept in a side
 * table keyed by the future (private; core layer).
 *
 * A feature that needs more per-future state than the object holds (the
 * progress listeners) attaches a block whose first member is fut__ext_t.
 * The future then has FUT__HAS_EXT in its state, so futures without a
 * block pay one bit and no lookup.  The core tells the block's owner, by
 * the block's operations, when the future settles (close) and when it is
 * freed (free).  A block attached after the future settled is not closed
 * by the core (the settler saw no flag): the attacher checks for that
 * after attaching.  Flag and settle are both read-modify-writes of the
 * state word, so one of the two sees the other.
 */
#ifndef FUT_CORE_EXT_H
#define FUT_CORE_EXT_H

#include "core/future.h"

typedef struct fut__ext fut__ext_t;

typedef struct fut__ext_ops {
    void (*close)(fut__ext_t *e); /* its future settled */
    void (*free)(fut__ext_t *e);  /* its future is freed: free the block */
} fut__ext_ops_t;

struct fut__ext {
    fut_t *key;
    fut__ext_t *hash_next;
    const fut__ext_ops_t *ops;
};

/* f's block, or NULL. */
fut__ext_t *fut__ext_find(fut_t *f);

/* Attaches `fresh` (made by the caller, with ops set) to f unless f has a
 * block already.  Returns f's block: fresh if it was attached, the older
 * one otherwise (the caller frees fresh), NULL on ENOMEM (nothing
 * attached, nothing left allocated). */
fut__ext_t *fut__ext_attach(fut_t *f, fut__ext_t *fresh);

/* The core's calls: f settled (close), f is being freed (free). */
void fut__ext_close(fut_t *f);
void fut__ext_free(fut_t *f);

#endif /* FUT_CORE_EXT_H */

/*
 * segq.h - an unbounded multi-producer multi-consumer FIFO of pointers,
 * in linked blocks (private; util layer).
 *
 * Why.  The pool's queue of outside work was a lock-free stack that a
 * worker took whole under a lock, reversed, and moved into a bounded ring
 * the workers took from one at a time.  The reversal chased one pointer
 * per task through futures the submitter had just written (a cache miss
 * each, one after another) while holding the lock: measured, 10% of W1 with
 * one worker, 14% with eight, where a worker preempted inside the lock left
 * the others nothing to take.  Here a submitter writes the task into its
 * slot and a worker reads it from there: no lock per task, no walk.
 *
 * Positions.  Every push claims the next tail position with one CAS, every
 * pop the next head position with one CAS, so items leave in the order
 * their positions were claimed, and each position is taken once.  Position
 * p is slot p % LAP of the block whose `base` is p - p % LAP; the last
 * index of a block, LAP - 1, holds no item.  Tail there means that the
 * push which took the block's last slot is linking the next block (under
 * the queue's lock), and other pushes wait for it to move tail past.  The
 * pop that takes a block's last item moves head straight to the next
 * block's first position and then head_blk to that block (it alone writes
 * head_blk); a pop that finds head past head_blk's block waits for that
 * store.  Positions are 64-bit and never wrap.
 *
 * Slots.  A slot is NULL until its item is stored, and is not written
 * again until its block is reused.  A consumer reads the slot at head
 * before it claims the position: NULL means empty (or a producer that
 * claimed the position has not stored yet; the queue then looks empty until
 * it has); otherwise it claims the position with a CAS on head, and the
 * item is its own.  A consumer never touches a block after its CAS (the
 * last item's pop only stores the next block's address), so a block that
 * head_blk has left can be reused.  Reads made before a CAS may see a
 * block that was reused meanwhile (head moved on): its base then is past
 * head, or the CAS fails, and what was read is dropped.  Blocks are never
 * freed while the queue lives (the memory stays a block), so such a read is
 * not a use after free; a NULL seen there counts as empty only if head has
 * not moved.
 *
 * Blocks.  They form one chain, oldest first: the blocks head has left
 * (free for reuse), head's block, ..., tail's block.  A push that takes a
 * block's last slot links the block held ready, under the lock, then
 * readies another: the chain's oldest if head_blk has left it, else a new
 * one.  A push that would take a last slot while no block is ready
 * allocates one first and fails with ENOMEM, claiming nothing, if it
 * cannot: a claimed last slot always has a next block.  The blocks head
 * has left stay for reuse (8 bytes per item of the longest the queue has
 * been) until the owner, at a moment when nothing can be reading them,
 * detaches those beyond a few (fut__segq_detach_spare; the pool does it
 * when its last awake worker parks), or the queue is destroyed.  LAP is 256:
 * with 64, the crossing (the lock, the clearing of the reused block) came once
 * per 63 tasks and made W6's p99 0.90 us against 0.73 with 256 (medians of 8
 * processes, 2026-12-03).
 *
 * Layout.  A block's items are packed, eight to a cache line, or spread,
 * one to a line in bit-reversed order; the push at a crossing chooses for
 * the block after the next: spread while less than a block is queued and
 * the last block filled within SPREAD_NS (a producer that streams, and
 * consumers that keep up), packed otherwise.  Why: a consumer that keeps
 * up reads each item just after it is stored, and with items packed the
 * producer's next store, into the same line, must take the line back, a
 * wait that each of its next locked instructions pays (a task group's
 * spawn: 10-16 ms per 100,000 against 4.5 with the consumer behind).  One
 * item to a line gives the producer lines the consumer has not read; the
 * order is bit-reversed because in plain order the consumer's prefetchers
 * fetched the next lines ahead of the producer (spawns 10-12 ms with
 * spread lines in order, 6.2-6.5 ms bit-reversed, 13-15 ms packed;
 * fut_bench W9 2.11 -> 1.26, W1, W3, W6 unchanged, 2026-12-03).  A packed
 * queue costs 8 bytes per queued item, and a long queue stays packed; a
 * spread block is 16 KiB.  A spread block can be reused packed, not the
 * other way: a packed block met in the chain while a spread one is wanted
 * is set aside (q->packed), reused first when packed ones are wanted, and
 * freed with the spare blocks (a stale read may still look at it until
 * then).  FUT_QUEUE_LAYOUT=spread or =packed in the environment fixes the
 * layout of the queues made after it is set (for tests).
 *
 * Memory ordering.  The producer stores the item with release (at least)
 * after everything it wrote into the item, and the consumer loads it with
 * seq_cst, so the consumer sees the item's contents.  A producer that takes
 * a last slot sets the next block's base and links it (release) before it
 * stores the item, so a consumer that sees the item sees the link, and one
 * that loads head_blk (acquire, stored with release by the pop that read
 * the link with acquire) sees the base.  The CAS on head is acq_rel, so
 * every pop's reads of a block happen before the reuse of the block (the
 * reuser acquires head_blk).  The store of an item is the light side of a
 * lopsided fence (util/fence.h: seq_cst, or release and a compiler barrier
 * while membarrier is on), and a caller that looks with fut__segq_nonempty
 * after the heavy side sees every item stored before: the queue's half of
 * a no-lost-wakeup argument (exec/pool_worker.c, Parking).
 *
 * Fork.  The lock is held across fork() (fut__segq_lock), so no link is
 * half made in a child.  A pop stopped between its CAS and its store of
 * head_blk, and a push stopped between its claim and its store, are mended
 * by the child's only thread, which drains with fut__segq_pop_alone: it
 * moves head_blk on, and steps over holes.
 */
#ifndef FUT_UTIL_SEGQ_H
#define FUT_UTIL_SEGQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    FUT__SEGQ_LAP = 256,                 /* positions per block */
    FUT__SEGQ_SLOTS = FUT__SEGQ_LAP - 1, /* items per block */
    FUT__SEGQ_LONG = 16 * FUT__SEGQ_LAP  /* positions: see fut__segq_long */
};

/* A block's items are packed (item i in slot i, eight to a cache line) or
 * spread (item i in slot 8 x (i bit-reversed), one to a line): Layout. */
enum { FUT__SEGQ_PACKED = 0, FUT__SEGQ_SPREAD = 3 };

typedef struct fut__segq_block {
    struct fut__segq_block *_Atomic next;
    _Atomic uint64_t base;  /* the position of item 0 */
    _Atomic unsigned shift; /* item i is slot i << shift (FUT__SEGQ_PACKED,
                               FUT__SEGQ_SPREAD); set before it is linked */
    unsigned room;          /* the largest shift its slots hold: fixed */
    char pad[64 - 2 * sizeof(uint64_t) - 2 * sizeof(unsigned)];
    void *_Atomic slot[]; /* FUT__SEGQ_LAP << room */
} fut__segq_block_t;

typedef struct fut__segq {
    /* Written by producers. */
    _Alignas(64) _Atomic uint64_t tail;
    fut__segq_block_t *_Atomic tail_blk;
    fut__segq_block_t *_Atomic ready; /* the next block to link */
    /* Written by consumers. */
    _Alignas(64) _Atomic uint64_t head;
    fut__segq_block_t *_Atomic head_blk;
    /* Under lock: crossings. */
    _Alignas(64) pthread_mutex_t lock;
    fut__segq_block_t *oldest; /* the chain's first block */
    fut__segq_block_t *packed; /* left the chain for a spread one: Layout */
    int64_t crossed_at;        /* the last crossing (fut__now) */
    int layout;                /* FUT_QUEUE_LAYOUT, or 0: see Layout */
    _Atomic bool is_long;      /* see fut__segq_long */
    size_t guests;             /* fut__segq_guest_enter, not yet left */
    bool internal; /* blocks from malloc, not the installed allocator */
} fut__segq_t;

/* 0, or ENOMEM.  internal: the blocks come from malloc (for queues that
 * live as long as the process), else from fut's installed allocator. */
int fut__segq_init(fut__segq_t *q, bool internal);

/* Frees the blocks; items still queued are forgotten.  No other thread may
 * use the queue any more. */
void fut__segq_destroy(fut__segq_t *q);

/* Appends item (not NULL): 0, or ENOMEM when the queue needed a new block
 * and none could be allocated (nothing is queued then).  *long_changed,
 * if not NULL, gets +1 when this push made the queue long, else 0. */
int fut__segq_push(fut__segq_t *q, void *item, int *long_changed);

/* The oldest item, or NULL if there is none (or the oldest position's
 * producer has not stored its item yet).  *long_changed, if not NULL, gets
 * -1 when this pop ended the queue's being long, else 0. */
void *fut__segq_pop(fut__segq_t *q, int *long_changed);

/* For a thread with the queue to itself (a fork() child): the oldest item,
 * stepping over positions whose producer never stored (it is gone). */
void *fut__segq_pop_alone(fut__segq_t *q);

/* True if the oldest position holds an item, or a pop or a crossing is
 * under way.  seq_cst: see Memory ordering. */
bool fut__segq_nonempty(fut__segq_t *q);

/* Long: more than FUT__SEGQ_LONG positions (about a thousand items) were
 * queued when a crossing last looked (every FUT__SEGQ_SLOTS pushes or
 * pops). */
bool fut__segq_long(fut__segq_t *q);

/* Detaches the blocks head has left, but keep of them, and the packed
 * ones set aside (Layout), and returns them linked through next (NULL if
 * there were none to detach, or a guest is in).  The caller guarantees that no
 * pop or look (fut__segq_pop, pop_alone, nonempty) of its own is under way or
 * starts before it returns, so that no stale read of them can come later; a
 * thread outside the caller's control pops between fut__segq_guest_enter and
 * _leave; pushes may run.  Free them with fut__segq_free_chain, at any time. */
fut__segq_block_t *fut__segq_detach_spare(fut__segq_t *q, size_t keep);
void fut__segq_free_chain(fut__segq_t *q, fut__segq_block_t *chain);
void fut__segq_guest_enter(fut__segq_t *q);
void fut__segq_guest_leave(fut__segq_t *q);

/* Around fork(): prepare locks, parent unlocks, child starts the lock
 * afresh. */
void fut__segq_lock(fut__segq_t *q);
void fut__segq_unlock(fut__segq_t *q);
void fut__segq_reinit_lock(fut__segq_t *q);

#endif /* FUT_UTIL_SEGQ_H */

/*
 * segq.c - the unbounded MPMC FIFO in linked blocks (segq.h has the
 * protocol and its memory ordering).
 */
#include "util/segq.h"

#include "util/alloc.h"
#include "util/fence.h"
#include "util/park.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

enum {
    LAP = FUT__SEGQ_LAP,
    LAST = FUT__SEGQ_LAP - 2,
    SPINS_BEFORE_YIELD = 64,
    SPREAD_NS = 40000, /* a block filled faster than this: pushes stream */
    LAYOUT_AUTO = 0,
    LAYOUT_SPREAD,
    LAYOUT_PACKED
};

typedef fut__segq_block_t block_t;

/* --- blocks ----------------------------------------------------------- */

static size_t block_bytes(unsigned room)
{
    return sizeof(block_t) + ((size_t)FUT__SEGQ_LAP << room) * sizeof(void *);
}

/* The 8 bits of off reversed: a spread block's items in an order that no
 * stride or stream prefetcher follows (see Layout). */
static unsigned bits_reversed(unsigned off)
{
    off = ((off & 0xf0u) >> 4) | ((off & 0x0fu) << 4);
    off = ((off & 0xccu) >> 2) | ((off & 0x33u) << 2);
    return ((off & 0xaau) >> 1) | ((off & 0x55u) << 1);
}

/* Item off's slot in b.  A reader holding a block reused meanwhile may
 * see its new layout: the index stays within the block's room, and what
 * it reads is dropped (segq.h, Slots). */
static unsigned slot_of(block_t *b, unsigned off)
{
    unsigned shift = atomic_load_explicit(&b->shift, memory_order_relaxed);
    return shift ? bits_reversed(off) << shift : off;
}

static void block_clear(block_t *b, unsigned shift)
{
    atomic_store_explicit(&b->shift, shift, memory_order_relaxed);
    for (unsigned i = 0; i < LAP; i++) /* LAP - 1 items, and room for LAP */
        atomic_store_explicit(&b->slot[i << shift], NULL, memory_order_relaxed);
    atomic_store_explicit(&b->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&b->base, 0, memory_order_relaxed);
}

static block_t *block_new(fut__segq_t *q, unsigned shift)
{
    size_t bytes = block_bytes(shift);
    block_t *b = q->internal ? malloc(bytes) : fut__alloc(bytes);
    if (b) {
        b->room = shift;
        block_clear(b, shift);
    }
    return b;
}

static void block_free(fut__segq_t *q, block_t *b)
{
    if (q->internal)
        free(b);
    else
        fut__free(b, block_bytes(b->room));
}

/* Lock held.  A block to link next, laid out with shift: a packed one
 * set aside before (when packed is wanted), or the chain's oldest if head
 * has left it (no consumer touches it any more) and it has the room, else
 * a new one; NULL on ENOMEM.  A packed block met while a spread one is
 * wanted leaves the chain for the set-aside list, not for the allocator:
 * a stale read may still look at it (see Layout).  Clearing a reused
 * block races only with reads a failed CAS discards. */
static block_t *block_take(fut__segq_t *q, unsigned shift)
{
    block_t *b = q->packed;
    if (shift == FUT__SEGQ_PACKED && b) {
        q->packed = atomic_load_explicit(&b->next, memory_order_relaxed);
        block_clear(b, shift);
        return b;
    }
    block_t *head = atomic_load_explicit(&q->head_blk, memory_order_acquire);
    while ((b = q->oldest) != head) {
        q->oldest = atomic_load_explicit(&b->next, memory_order_relaxed);
        if (b->room >= shift) {
            block_clear(b, shift);
            return b;
        }
        atomic_store_explicit(&b->next, q->packed, memory_order_relaxed);
        q->packed = b;
    }
    return block_new(q, shift);
}

/* Lock held, at the crossing at position t.  The layout of the block
 * after the next: spread while the consumers keep up with a producer that
 * streams (less than a block queued, and the last block filled within
 * SPREAD_NS), packed otherwise (see Layout). */
static unsigned layout_wanted(fut__segq_t *q, uint64_t t)
{
    if (q->layout != LAYOUT_AUTO)
        return q->layout == LAYOUT_SPREAD ? FUT__SEGQ_SPREAD : FUT__SEGQ_PACKED;
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    int64_t now = fut__now(), took = now - q->crossed_at;
    q->crossed_at = now;
    return t - h < LAP && took < SPREAD_NS ? FUT__SEGQ_SPREAD
                                           : FUT__SEGQ_PACKED;
}

/* --- the queue -------------------------------------------------------- */

/* FUT_QUEUE_LAYOUT=spread or packed fixes the layout, for tests that
 * must go through one of them whatever the timing. */
static int layout_from_env(void)
{
    const char *e = getenv("FUT_QUEUE_LAYOUT");
    if (e && strcmp(e, "spread") == 0)
        return LAYOUT_SPREAD;
    if (e && strcmp(e, "packed") == 0)
        return LAYOUT_PACKED;
    return LAYOUT_AUTO;
}

int fut__segq_init(fut__segq_t *q, bool internal)
{
    fut__fence_init();
    q->internal = internal;
    q->layout = layout_from_env();
    unsigned shift =
        q->layout == LAYOUT_SPREAD ? FUT__SEGQ_SPREAD : FUT__SEGQ_PACKED;
    block_t *first = block_new(q, shift);
    if (!first)
        return ENOMEM;
    block_t *ready = block_new(q, shift);
    if (!ready) {
        block_free(q, first);
        return ENOMEM;
    }
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        block_free(q, ready);
        block_free(q, first);
        return ENOMEM;
    }
    atomic_init(&q->tail, 0);
    atomic_init(&q->tail_blk, first);
    atomic_init(&q->ready, ready);
    atomic_init(&q->head, 0);
    atomic_init(&q->head_blk, first);
    q->oldest = first;
    q->packed = NULL;
    q->crossed_at = 0;
    atomic_init(&q->is_long, false);
    q->guests = 0;
    return 0;
}

void fut__segq_destroy(fut__segq_t *q)
{
    fut__segq_free_chain(q, q->oldest);
    fut__segq_free_chain(q, q->packed);
    block_t *b = atomic_load_explicit(&q->ready, memory_order_relaxed);
    if (b)
        block_free(q, b);
    pthread_mutex_destroy(&q->lock);
}

/* Another thread is crossing a block boundary: let it finish. */
static void wait_crossing(int *spins)
{
    if (++*spins < SPINS_BEFORE_YIELD)
        fut__cpu_relax();
    else
        sched_yield(); /* it may have been preempted inside the crossing */
}

/* A crossing: is the queue long now?  Returns the change (+1, -1, 0);
 * the exchange makes each change reported once. */
static int update_long(fut__segq_t *q)
{
    uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    bool is_long = t - h > FUT__SEGQ_LONG;
    if (atomic_exchange_explicit(&q->is_long, is_long, memory_order_relaxed) ==
        is_long)
        return 0;
    return is_long ? 1 : -1;
}

/* head's block, given b just loaded as head_blk, or NULL with *crossing
 * set if head is in the next block (the pop that took b's last item has
 * yet to move head_blk: it is the only one that does), or NULL alone if b
 * is stale (reloading fixes it).  A reused block's base is past h. */
static block_t *head_block(uint64_t h, block_t *b, bool *crossing)
{
    uint64_t base = atomic_load_explicit(&b->base, memory_order_relaxed);
    *crossing = h - base == LAP;
    return h - base < LAP ? b : NULL;
}

int fut__segq_push(fut__segq_t *q, void *item, int *long_changed)
{
    int spins = 0, changed = 0;
    for (;;) {
        uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
        unsigned off = (unsigned)(t % LAP);
        if (off == LAP - 1) {
            wait_crossing(&spins);
            continue;
        }
        if (off == LAST &&
            !atomic_load_explicit(&q->ready, memory_order_acquire)) {
            /* Only a crossing empties `ready`, and none can happen until
             * this last slot is taken: ready one before claiming it. */
            pthread_mutex_lock(&q->lock);
            block_t *r = atomic_load_explicit(&q->ready, memory_order_relaxed);
            if (!r) {
                r = block_take(q, layout_wanted(q, t));
                atomic_store_explicit(&q->ready, r, memory_order_release);
            }
            pthread_mutex_unlock(&q->lock);
            if (!r)
                return ENOMEM;
        }
        /* At least the block of t (stored before tail moved into it); a
         * later one only if tail moved on, and then the CAS fails. */
        block_t *b = atomic_load_explicit(&q->tail_blk, memory_order_acquire);
        if (!atomic_compare_exchange_weak_explicit(&q->tail, &t, t + 1,
                                                   memory_order_relaxed,
                                                   memory_order_relaxed))
            continue;
        if (off == LAST) {
            pthread_mutex_lock(&q->lock);
            block_t *next =
                atomic_load_explicit(&q->ready, memory_order_relaxed);
            atomic_store_explicit(&q->ready, block_take(q, layout_wanted(q, t)),
                                  memory_order_release);
            atomic_store_explicit(
                &next->base,
                atomic_load_explicit(&b->base, memory_order_relaxed) + LAP,
                memory_order_relaxed);
            atomic_store_explicit(&b->next, next, memory_order_release);
            atomic_store_explicit(&q->tail_blk, next, memory_order_release);
            atomic_store_explicit(&q->tail, t + 2, memory_order_release);
            pthread_mutex_unlock(&q->lock);
            changed = update_long(q) > 0;
        }
        if (fut__fence_lopsided()) {
            /* The caller's load after this push is ordered by the other
             * side's membarrier (util/fence.h). */
            atomic_store_explicit(&b->slot[slot_of(b, off)], item,
                                  memory_order_release);
            atomic_signal_fence(memory_order_seq_cst);
        } else {
            atomic_store_explicit(&b->slot[slot_of(b, off)], item,
                                  memory_order_seq_cst);
        }
        if (long_changed)
            *long_changed = changed;
        return 0;
    }
}

void *fut__segq_pop(fut__segq_t *q, int *long_changed)
{
    int spins = 0;
    if (long_changed)
        *long_changed = 0;
    for (;;) {
        uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        block_t *b = atomic_load_explicit(&q->head_blk, memory_order_acquire);
        bool crossing;
        b = head_block(h, b, &crossing);
        if (!b) {
            if (crossing)
                wait_crossing(&spins);
            continue;
        }
        unsigned off = (unsigned)(h % LAP);
        void *item = atomic_load_explicit(&b->slot[slot_of(b, off)],
                                          memory_order_seq_cst);
        if (!item) {
            /* Empty, unless head moved meanwhile (b may be reused). */
            if (atomic_load_explicit(&q->head, memory_order_seq_cst) == h)
                return NULL;
            continue;
        }
        /* The last item's pop goes to the next block's first position
         * (the block was linked before that item was stored). */
        block_t *next =
            off == LAST ? atomic_load_explicit(&b->next, memory_order_acquire)
                        : NULL;
        /* Release: this pop's reads of b come before the reuse of b,
         * which acquires head_blk after the last pop of b acquired this
         * (block_take). */
        if (!atomic_compare_exchange_weak_explicit(
                &q->head, &h, h + (next ? 2 : 1), memory_order_acq_rel,
                memory_order_relaxed))
            continue;
        if (next) {
            atomic_store_explicit(&q->head_blk, next, memory_order_release);
            if (long_changed)
                *long_changed = update_long(q) < 0 ? -1 : 0;
        }
        return item;
    }
}

void *fut__segq_pop_alone(fut__segq_t *q)
{
    for (;;) {
        uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (h >= t)
            return NULL;
        block_t *b = atomic_load_explicit(&q->head_blk, memory_order_relaxed);
        bool crossing;
        if (!head_block(h, b, &crossing)) {
            /* A pop that took b's last item stopped before it moved
             * head_blk on (the next block was linked before that item). */
            atomic_store_explicit(
                &q->head_blk,
                atomic_load_explicit(&b->next, memory_order_relaxed),
                memory_order_relaxed);
            continue;
        }
        unsigned off = (unsigned)(h % LAP);
        void *item = atomic_load_explicit(&b->slot[slot_of(b, off)],
                                          memory_order_relaxed);
        block_t *next = NULL;
        if (off == LAST) {
            next = atomic_load_explicit(&b->next, memory_order_relaxed);
            if (!next)
                return NULL; /* the last slot's producer never linked */
            atomic_store_explicit(&q->head_blk, next, memory_order_relaxed);
        }
        atomic_store_explicit(&q->head, h + (next ? 2 : 1),
                              memory_order_relaxed);
        if (item)
            return item;
        /* A hole: its producer stopped between claim and store. */
    }
}

bool fut__segq_nonempty(fut__segq_t *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_seq_cst);
    block_t *b = atomic_load_explicit(&q->head_blk, memory_order_acquire);
    bool crossing;
    if (!head_block(h, b, &crossing))
        return true; /* a pop is moving to the next block, or b is stale */
    if (atomic_load_explicit(&b->slot[slot_of(b, (unsigned)(h % LAP))],
                             memory_order_seq_cst))
        return true;
    return atomic_load_explicit(&q->head, memory_order_seq_cst) != h;
}

fut__segq_block_t *fut__segq_detach_spare(fut__segq_t *q, size_t keep)
{
    pthread_mutex_lock(&q->lock);
    if (q->guests) {
        pthread_mutex_unlock(&q->lock);
        return NULL;
    }
    block_t *head = atomic_load_explicit(&q->head_blk, memory_order_relaxed);
    size_t spare = 0;
    for (block_t *b = q->oldest; b != head;
         b = atomic_load_explicit(&b->next, memory_order_relaxed))
        spare++;
    block_t *first = NULL;
    if (spare > keep) {
        first = q->oldest;
        block_t *last = first;
        for (size_t i = 1; i < spare - keep; i++)
            last = atomic_load_explicit(&last->next, memory_order_relaxed);
        q->oldest = atomic_load_explicit(&last->next, memory_order_relaxed);
        atomic_store_explicit(&last->next, q->packed, memory_order_relaxed);
    } else {
        first = q->packed;
    }
    q->packed = NULL; /* set aside by the chase: no reader can hold one now */
    pthread_mutex_unlock(&q->lock);
    return first;
}

void fut__segq_free_chain(fut__segq_t *q, fut__segq_block_t *b)
{
    while (b) {
        block_t *next = atomic_load_explicit(&b->next, memory_order_relaxed);
        block_free(q, b);
        b = next;
    }
}

void fut__segq_guest_enter(fut__segq_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->guests++;
    pthread_mutex_unlock(&q->lock);
}

void fut__segq_guest_leave(fut__segq_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->guests--;
    pthread_mutex_unlock(&q->lock);
}

bool fut__segq_long(fut__segq_t *q)
{
    return atomic_load(&q->is_long);
}

void fut__segq_lock(fut__segq_t *q)
{
    pthread_mutex_lock(&q->lock);
}

void fut__segq_unlock(fut__segq_t *q)
{
    pthread_mutex_unlock(&q->lock);
}

void fut__segq_reinit_lock(fut__segq_t *q)
{
    pthread_mutex_init(&q->lock, NULL);
}

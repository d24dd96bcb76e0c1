/*
 * ext.c - the side table of extension blocks (ext.h).
 *
 * The table is sharded by the future's address; each shard is a chained
 * hash table under its own mutex that doubles as it fills and gives its
 * bucket array back when it empties.  Lock order: a shard's lock, then
 * nothing; the blocks' operations run after unlocking.  The flag is set
 * under the shard lock after the block is in the table, so whoever sees
 * the flag finds the block.
 */
#include "core/ext.h"

#include <pthread.h>

enum { SHARD_BITS = 4, NSHARDS = 1 << SHARD_BITS, MIN_BUCKETS = 16 };

typedef struct shard {
    pthread_mutex_t lock;
    fut__ext_t **bucket; /* NULL while the shard is empty */
    size_t nbuckets, count;
} shard_t;

#define SHARD_INIT                                                             \
    {                                                                          \
        PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0                                  \
    }
static shard_t table[NSHARDS] = {
    SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT,
    SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT,
    SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT,
};
_Static_assert(sizeof table / sizeof table[0] == NSHARDS, "one per shard");

static uint64_t hash_of(const fut_t *f)
{
    return (uint64_t)(uintptr_t)f * 0x9e3779b97f4a7c15ull; /* Fibonacci */
}

static shard_t *shard_of(const fut_t *f)
{
    return &table[hash_of(f) >> (64 - SHARD_BITS)];
}

static size_t slot_of(const shard_t *sh, const fut_t *f)
{
    return (size_t)(hash_of(f) >> 16) & (sh->nbuckets - 1);
}

/* Shard lock held.  The link that points at f's block (or at NULL). */
static fut__ext_t **shard_link(shard_t *sh, const fut_t *f)
{
    fut__ext_t **pp = &sh->bucket[slot_of(sh, f)];
    while (*pp && (*pp)->key != f)
        pp = &(*pp)->hash_next;
    return pp;
}

/* Shard lock held.  Gives the shard twice the buckets (or its first);
 * false on ENOMEM, and then the shard is unchanged. */
static bool shard_grow(shard_t *sh)
{
    size_t n = sh->nbuckets ? sh->nbuckets * 2 : MIN_BUCKETS;
    fut__ext_t **b = fut__alloc(n * sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < n; i++)
        b[i] = NULL;
    fut__ext_t **old = sh->bucket;
    size_t old_n = sh->nbuckets;
    sh->bucket = b;
    sh->nbuckets = n;
    for (size_t i = 0; i < old_n; i++) {
        for (fut__ext_t *e = old[i], *next; e; e = next) {
            next = e->hash_next;
            size_t k = slot_of(sh, e->key);
            e->hash_next = b[k];
            b[k] = e;
        }
    }
    fut__free(old, old_n * sizeof *old);
    return true;
}

fut__ext_t *fut__ext_find(fut_t *f)
{
    if (!(fut__load(f) & FUT__HAS_EXT))
        return NULL;
    shard_t *sh = shard_of(f);
    pthread_mutex_lock(&sh->lock);
    fut__ext_t *e = *shard_link(sh, f);
    pthread_mutex_unlock(&sh->lock);
    FUT__ASSERT(e);
    return e;
}

fut__ext_t *fut__ext_attach(fut_t *f, fut__ext_t *fresh)
{
    shard_t *sh = shard_of(f);
    pthread_mutex_lock(&sh->lock);
    fut__ext_t *e = sh->bucket ? *shard_link(sh, f) : NULL;
    /* Grow at a load factor of one; a full shard that cannot grow still
     * takes the block (chains get longer, nothing fails). */
    if (!e && (sh->count < sh->nbuckets || shard_grow(sh) || sh->bucket)) {
        e = fresh;
        e->key = f;
        fut__ext_t **pp = &sh->bucket[slot_of(sh, f)];
        e->hash_next = *pp;
        *pp = e;
        sh->count++;
        atomic_fetch_or_explicit(&f->state, FUT__HAS_EXT, memory_order_acq_rel);
    }
    pthread_mutex_unlock(&sh->lock);
    return e;
}

void fut__ext_close(fut_t *f)
{
    fut__ext_t *e = fut__ext_find(f);
    e->ops->close(e);
}

void fut__ext_free(fut_t *f)
{
    shard_t *sh = shard_of(f);
    pthread_mutex_lock(&sh->lock);
    fut__ext_t **pp = shard_link(sh, f);
    fut__ext_t *e = *pp;
    FUT__ASSERT(e);
    *pp = e->hash_next;
    if (--sh->count == 0) {
        fut__free(sh->bucket, sh->nbuckets * sizeof *sh->bucket);
        sh->bucket = NULL;
        sh->nbuckets = 0;
    }
    pthread_mutex_unlock(&sh->lock);
    e->ops->free(e);
}

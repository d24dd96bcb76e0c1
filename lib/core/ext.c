/*
 * ext.c - the side table of extension blocks (ext.h).
 *
 * The table is sharded by the future's address; each shard is a chained
 * hash table under its own lock that doubles as it fills and gives its
 * bucket array back when it empties.  The shard locks are leaves
 * (util/leaf.h): held across fork(), so a child never inherits one held
 * by a thread it does not have.  Nothing is taken under them: the bucket
 * arrays are allocated before locking (and the lock taken again to
 * install one) and freed after unlocking, and the blocks' operations run
 * after unlocking.  The flag is set under the shard lock after the block
 * is in the table, so whoever sees the flag finds the block.
 */
#include "core/ext.h"

#include "util/leaf.h"

enum { SHARD_BITS = 4, NSHARDS = 1 << SHARD_BITS, MIN_BUCKETS = 16 };

typedef struct shard {
    fut__leaf_t lock;
    fut__ext_t **bucket; /* NULL while the shard is empty */
    size_t nbuckets, count;
} shard_t;

#define SHARD_INIT                                                             \
    {                                                                          \
        FUT__LEAF_INIT, NULL, 0, 0                                             \
    }
static shard_t table[NSHARDS] = {
    SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT,
    SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT,
    SHARD_INIT, SHARD_INIT, SHARD_INIT, SHARD_INIT,
};
_Static_assert(sizeof table / sizeof table[0] == NSHARDS, "one per shard");
_Static_assert(NSHARDS + 3 <= FUT__LEAVES, "leaf.h has room for the shards");

static uint64_t hash_of(const fut_t *f)
{
    return (uint64_t)(uintptr_t)f * 0x9e3779b97f4a7c15ull; /* Fibonacci */
}

static shard_t *shard_of(const fut_t *f)
{
    return &table[hash_of(f) >> (64 - SHARD_BITS)];
}

static size_t slot_of(size_t nbuckets, const fut_t *f)
{
    return (size_t)(hash_of(f) >> 16) & (nbuckets - 1);
}

/* Shard lock held.  The link that points at f's block (or at NULL). */
static fut__ext_t **shard_link(shard_t *sh, const fut_t *f)
{
    fut__ext_t **pp = &sh->bucket[slot_of(sh->nbuckets, f)];
    while (*pp && (*pp)->key != f)
        pp = &(*pp)->hash_next;
    return pp;
}

/* A bucket array: its links and their number. */
typedef struct buckets {
    fut__ext_t **b;
    size_t n;
} buckets_t;

static buckets_t buckets_alloc(size_t n)
{
    buckets_t a = {fut__alloc(n * sizeof(fut__ext_t *)), n};
    if (!a.b)
        return (buckets_t){NULL, 0};
    for (size_t i = 0; i < n; i++)
        a.b[i] = NULL;
    return a;
}

static void buckets_free(buckets_t a)
{
    if (a.b)
        fut__free(a.b, a.n * sizeof *a.b);
}

/* Shard lock held.  Moves the shard's blocks into `fresh` (empty, larger)
 * and returns the array it had, for the caller to free after unlocking. */
static buckets_t shard_rehash(shard_t *sh, buckets_t fresh)
{
    buckets_t old = {sh->bucket, sh->nbuckets};
    for (size_t i = 0; i < old.n; i++) {
        for (fut__ext_t *e = old.b[i], *next; e; e = next) {
            next = e->hash_next;
            size_t k = slot_of(fresh.n, e->key);
            e->hash_next = fresh.b[k];
            fresh.b[k] = e;
        }
    }
    sh->bucket = fresh.b;
    sh->nbuckets = fresh.n;
    return old;
}

/* Shard lock held, f not in the table, a bucket array in place. */
static void shard_insert(shard_t *sh, fut_t *f, fut__ext_t *e)
{
    e->key = f;
    fut__ext_t **pp = &sh->bucket[slot_of(sh->nbuckets, f)];
    e->hash_next = *pp;
    *pp = e;
    sh->count++;
    atomic_fetch_or_explicit(&f->state, FUT__HAS_EXT, memory_order_acq_rel);
}

fut__ext_t *fut__ext_find(fut_t *f)
{
    if (!(fut__load(f) & FUT__HAS_EXT))
        return NULL;
    shard_t *sh = shard_of(f);
    fut__leaf_lock(&sh->lock);
    fut__ext_t *e = *shard_link(sh, f);
    fut__leaf_unlock(&sh->lock);
    FUT__ASSERT(e);
    return e;
}

fut__ext_t *fut__ext_attach(fut_t *f, fut__ext_t *fresh)
{
    shard_t *sh = shard_of(f);
    buckets_t spare = {NULL, 0}; /* allocated unlocked, for a grow */
    buckets_t old = {NULL, 0};   /* replaced under the lock, freed after */
    bool tried = false;          /* one allocation failed: no more tries */
    fut__ext_t *e;
    for (;;) {
        fut__leaf_lock(&sh->lock);
        e = sh->bucket ? *shard_link(sh, f) : NULL;
        if (e)
            break; /* f has a block already */
        /* Grow at a load factor of one; a full shard that cannot grow
         * still takes the block (chains get longer, nothing fails). */
        size_t want = sh->nbuckets ? sh->nbuckets * 2 : MIN_BUCKETS;
        if (sh->count >= sh->nbuckets && spare.n == want) {
            old = shard_rehash(sh, spare);
            spare = (buckets_t){NULL, 0};
        }
        if (sh->count < sh->nbuckets || (tried && sh->bucket)) {
            shard_insert(sh, f, fresh);
            e = fresh;
            break;
        }
        if (tried)
            break; /* no array at all, and none to be had: ENOMEM */
        fut__leaf_unlock(&sh->lock);
        /* Others may change the shard meanwhile: the loop looks again. */
        buckets_free(spare);
        spare = buckets_alloc(want);
        tried = spare.b == NULL;
    }
    fut__leaf_unlock(&sh->lock);
    buckets_free(spare);
    buckets_free(old);
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
    buckets_t emptied = {NULL, 0};
    fut__leaf_lock(&sh->lock);
    fut__ext_t **pp = shard_link(sh, f);
    fut__ext_t *e = *pp;
    FUT__ASSERT(e);
    *pp = e->hash_next;
    if (--sh->count == 0) {
        emptied = (buckets_t){sh->bucket, sh->nbuckets};
        sh->bucket = NULL;
        sh->nbuckets = 0;
    }
    fut__leaf_unlock(&sh->lock);
    buckets_free(emptied);
    e->ops->free(e);
}

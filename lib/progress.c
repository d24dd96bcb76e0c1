/*
 * progress.c - progress notifications (jQuery's notify/progress).
 *
 * Listeners live in the future's extension block, allocated on first use
 * and freed with the future.  The blocks are found through a side table
 * keyed by the future's address, and a future has one only if its state
 * says FUT__HAS_EXT, so futures nobody watches pay one bit and no lookup.
 * The table is sharded by address; each shard is a chained hash table
 * under its own mutex that doubles as it fills and is freed when empty.
 * Lock order: a shard's lock, then nothing; an extension block's lock,
 * then nothing.
 * The listener list is append-only while the future lives: a notifier
 * takes the lock only to record the latest progress and to read how many
 * listeners exist, then calls them without the lock (a listener may notify,
 * register or settle from inside its callback).  Nodes are never freed
 * before the future, so walking them unlocked is safe.
 *
 * A continuation relays its input's progress (see install_relays), so a
 * listener at the end of a chain hears the head's notifications.  Relaying
 * recurses once per link that has listeners downstream.
 *
 * When the future settles the list closes (fut__ext_close): later
 * notifications and registrations answer EALREADY, and the relays'
 * references are dropped once no notifier is still walking the list.
 *
 * "memory" (jQuery.Callbacks): a listener added after a notification is
 * called at once with the latest progress; the lock makes each listener see
 * each notification exactly once.
 */
#include "future.h"

#include <errno.h>
#include <pthread.h>

typedef struct listener {
    struct listener *next;
    void (*cb)(fut_t *f, void *progress, void *arg);
    void *arg;
    fut_free_fn free_arg; /* runs when the future is freed */
} listener_t;

struct fut__ext {
    fut_t *key;            /* the future (side table) */
    fut__ext_t *hash_next; /* the shard's chain */
    pthread_mutex_t lock;
    listener_t *head, *tail;
    size_t count;
    void *last;
    bool has_last;
    bool relayed;  /* a relay from this continuation's input is installed */
    bool closed;   /* the future settled: no more progress */
    size_t active; /* notifiers calling listeners now */
};

/* --- the side table ----------------------------------------------------- */

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

/* Shard lock held.  The block of f, or NULL. */
static fut__ext_t *shard_find(shard_t *sh, const fut_t *f)
{
    if (!sh->bucket)
        return NULL;
    fut__ext_t *e = sh->bucket[slot_of(sh, f)];
    while (e && e->key != f)
        e = e->hash_next;
    return e;
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

/* The block of f if it has one. */
static fut__ext_t *ext_find(fut_t *f)
{
    if (!(fut__load(f) & FUT__HAS_EXT))
        return NULL;
    shard_t *sh = shard_of(f);
    pthread_mutex_lock(&sh->lock);
    fut__ext_t *e = shard_find(sh, f);
    pthread_mutex_unlock(&sh->lock);
    FUT__ASSERT(e);
    return e;
}

/* The block of f, made on first use; NULL on ENOMEM.  The block is in the
 * table before the flag is set, so whoever sees the flag finds it. */
static fut__ext_t *ext_get(fut_t *f)
{
    fut__ext_t *e = ext_find(f);
    if (e)
        return e;
    shard_t *sh = shard_of(f);
    pthread_mutex_lock(&sh->lock);
    e = shard_find(sh, f);
    if (!e && (sh->count < sh->nbuckets || shard_grow(sh) || sh->bucket)) {
        e = fut__alloc(sizeof *e);
        if (e) {
            e->key = f;
            pthread_mutex_init(&e->lock, NULL);
            e->head = e->tail = NULL;
            e->count = 0;
            e->last = NULL;
            e->has_last = false;
            e->relayed = false;
            e->closed = false;
            e->active = 0;
            size_t k = slot_of(sh, f);
            e->hash_next = sh->bucket[k];
            sh->bucket[k] = e;
            sh->count++;
            atomic_fetch_or_explicit(&f->state, FUT__HAS_EXT,
                                     memory_order_acq_rel);
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return e;
}

void fut__ext_free(fut_t *f)
{
    shard_t *sh = shard_of(f);
    pthread_mutex_lock(&sh->lock);
    fut__ext_t **pp = &sh->bucket[slot_of(sh, f)];
    while (*pp && (*pp)->key != f)
        pp = &(*pp)->hash_next;
    fut__ext_t *ext = *pp;
    FUT__ASSERT(ext);
    *pp = ext->hash_next;
    if (--sh->count == 0) {
        fut__free(sh->bucket, sh->nbuckets * sizeof *sh->bucket);
        sh->bucket = NULL;
        sh->nbuckets = 0;
    }
    pthread_mutex_unlock(&sh->lock);

    listener_t *l = ext->head;
    while (l) {
        listener_t *next = l->next;
        if (l->free_arg)
            l->free_arg(l->arg);
        fut__free(l, sizeof *l);
        l = next;
    }
    pthread_mutex_destroy(&ext->lock);
    fut__free(ext, sizeof *ext);
}

/* Detaches up to max arguments that have destructors (relays, which hold
 * their continuation); lock held.  The caller runs the destructors after
 * unlocking. */
static size_t detach_args(fut__ext_t *ext, fut_free_fn *fns, void **args,
                          size_t max)
{
    size_t n = 0;
    for (listener_t *l = ext->head; l && n < max; l = l->next) {
        if (l->free_arg) {
            fns[n] = l->free_arg;
            args[n++] = l->arg;
            l->free_arg = NULL;
        }
    }
    return n;
}

/* Runs the detached destructors, in batches so no allocation is needed. */
static void release_args(fut__ext_t *ext)
{
    enum { MAX = 16 };
    fut_free_fn fns[MAX];
    void *args[MAX];
    for (;;) {
        pthread_mutex_lock(&ext->lock);
        size_t n = ext->closed && ext->active == 0
                       ? detach_args(ext, fns, args, MAX)
                       : 0;
        pthread_mutex_unlock(&ext->lock);
        for (size_t i = 0; i < n; i++)
            fns[i](args[i]);
        if (n < MAX)
            return;
    }
}

static void ext_close(fut__ext_t *ext)
{
    /* f settled: relays hold their continuation only while progress can
     * still come, else a continuation that borrows f's value (and so holds
     * f) and f's relay to it would keep each other alive. */
    pthread_mutex_lock(&ext->lock);
    ext->closed = true;
    pthread_mutex_unlock(&ext->lock);
    release_args(ext);
}

int fut__notify(fut_t *f, void *progress)
{
    if (fut_done(f))
        return EALREADY;
    fut__ext_t *ext = ext_get(f);
    if (!ext)
        return ENOMEM;
    pthread_mutex_lock(&ext->lock);
    if (ext->closed) {
        pthread_mutex_unlock(&ext->lock);
        return EALREADY;
    }
    ext->last = progress;
    ext->has_last = true;
    ext->active++;
    size_t n = ext->count;
    listener_t *l = ext->head;
    pthread_mutex_unlock(&ext->lock);
    /* Only the first n listeners: the tail's `next` may be written by a
     * concurrent registration, so it is not read past the n-th. */
    for (; n > 0; n--) {
        listener_t *next = n > 1 ? l->next : NULL;
        l->cb(f, progress, l->arg);
        l = next;
    }
    pthread_mutex_lock(&ext->lock);
    bool last = --ext->active == 0 && ext->closed;
    pthread_mutex_unlock(&ext->lock);
    if (last)
        release_args(ext);
    return 0;
}

void fut__ext_close(fut_t *f)
{
    ext_close(ext_find(f));
}

static int add_listener(fut_t *f,
                        void (*cb)(fut_t *f, void *progress, void *arg),
                        void *arg, fut_free_fn free_arg)
{
    fut__ext_t *ext = ext_get(f);
    listener_t *l = ext ? fut__alloc(sizeof *l) : NULL;
    if (!l) {
        if (free_arg)
            free_arg(arg);
        return ENOMEM;
    }
    l->next = NULL;
    l->cb = cb;
    l->arg = arg;
    l->free_arg = free_arg;
    pthread_mutex_lock(&ext->lock);
    if (ext->closed) {
        pthread_mutex_unlock(&ext->lock);
        fut__free(l, sizeof *l);
        if (free_arg)
            free_arg(arg);
        return EALREADY;
    }
    if (ext->tail)
        ext->tail->next = l;
    else
        ext->head = l;
    ext->tail = l;
    ext->count++;
    bool replay = ext->has_last;
    void *last = ext->last;
    pthread_mutex_unlock(&ext->lock);
    if (replay)
        cb(f, last, arg);
    /* If f settled before its block was flagged, its settler saw no block
     * to close: close it here.  Flag and settle are both RMWs of f's state,
     * so one of the two sees the other. */
    if (fut_done(f))
        ext_close(ext);
    return 0;
}

/* --- relaying down a chain -------------------------------------------- */

/* A continuation hears its input's progress through a relay listener on
 * the input, installed when someone first listens to the continuation, and
 * up the chain from there (iteratively).  The relay holds a reference to
 * the continuation, dropped when the input is freed. */

static void relay_cb(fut_t *in, void *progress, void *d)
{
    (void)in;
    fut__notify(d, progress);
}

static void relay_free(void *d)
{
    fut_release(d);
}

static void install_relays(fut_t *d)
{
    fut_t *cur = fut_retain(d);
    while (cur) {
        fut__kind_t k = fut__kind(fut__load(cur));
        if (k != FUT__KIND_THEN && k != FUT__KIND_FINALLY)
            break;
        fut__ext_t *ext = ext_get(cur);
        if (!ext)
            break;
        pthread_mutex_lock(&ext->lock);
        bool done = ext->relayed;
        ext->relayed = true;
        pthread_mutex_unlock(&ext->lock);
        if (done)
            break;
        fut__cont_t *c = fut__as_cont(cur);
        fut_t *in = fut__cont_borrow_input(c);
        if (!in)
            break; /* the continuation has run: no more progress */
        fut_retain(in);
        fut__cont_return_input(c, in);
        add_listener(in, relay_cb, fut_retain(cur), relay_free);
        fut_release(cur);
        cur = in;
    }
    fut_release(cur);
}

int fut_on_progress(fut_t *f, void (*cb)(fut_t *f, void *progress, void *arg),
                    void *arg)
{
    if (!f || !cb)
        return EINVAL;
    if (fut_done(f))
        return EALREADY;
    int rc = add_listener(f, cb, arg, NULL);
    if (rc == 0)
        install_relays(f);
    return rc;
}

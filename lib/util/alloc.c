/*
 * alloc.c - the pluggable allocator, and per-thread freelists over it.
 *
 * The hot objects have three fixed sizes (alloc.h: 32 for callback nodes
 * and progress listeners, 56 for futures, 72 for continuations).  Each thread
 * keeps a stack of free blocks per size class, so the steady state allocates
 * nothing from the allocator.  Blocks migrate: a pool worker frees the futures
 * the submitting thread allocated, so a cache that grows past CACHE_MAX hands
 * a batch of BATCH blocks to a global depot, and a thread whose cache is
 * empty takes a batch from it before it asks the allocator.  The depot is
 * one mutex per class, taken once per batch.  Any other size goes straight
 * to the allocator.
 *
 * Slabs.  With the built-in allocator (malloc), a thread whose cache and
 * the depot are empty carves SLAB_BLOCKS blocks out of one malloc'd slab:
 * a block then costs its size and no malloc chunk header (malloc rounds a
 * 56-byte request up to a 64-byte chunk, 72 to 80), and one call serves
 * SLAB_BLOCKS objects.  Slabs are kept for reuse, listed in the depot, and
 * freed when fut_set_allocator finds every block of their class free.  An
 * installed allocator gets one call per object instead, with the object's
 * own size, so it sees (and can count, place or fail) every object.
 *
 * A block is freed through the allocator that is installed when it leaves
 * the caches: at thread exit (the cache goes to the depot), and in
 * fut_set_allocator, which empties the calling thread's cache and the depot
 * into the old allocator before it installs the new one.  Hence the rule in
 * fut.h: install an allocator while no object of fut's is alive and no other
 * thread that used fut is still running.
 *
 * Memory ordering: the caches are thread-local; blocks cross threads only
 * through the depot, under its mutex.  Fork: the depot mutexes are taken
 * around fork() so the child inherits consistent lists.
 */
#include "util/alloc.h"

#include "fut.h"
#include "util/assert.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { NCLASS = 3, CACHE_MAX = 512, BATCH = 256, SLAB_BLOCKS = BATCH };

static const size_t class_size[NCLASS] = {
    FUT__CLASS_SMALL,
    FUT__CLASS_MEDIUM,
    FUT__CLASS_LARGE,
};

/* Leak checkers see every object when the caches are off, so that a
 * forgotten future shows as a leak rather than as a block cached for
 * reuse: in AddressSanitizer builds (which also catch a use after free
 * that a reused block would hide), under valgrind (found by its preload
 * library), and wherever FUT_DIRECT_ALLOC=1 is in the environment.  Every
 * object then goes straight to the allocator, malloc by default. */
#if defined(__SANITIZE_ADDRESS__)
#define FUT_NO_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUT_NO_CACHE 1
#endif
#endif

static bool direct_alloc(void)
{
#ifdef FUT_NO_CACHE
    return true;
#else
    static _Atomic int mode = -1; /* -1: not looked yet */
    int m = atomic_load_explicit(&mode, memory_order_relaxed);
    if (m < 0) {
        const char *env = getenv("FUT_DIRECT_ALLOC");
        const char *preload = getenv("LD_PRELOAD");
        m = (env && strcmp(env, "1") == 0) ||
            (preload && strstr(preload, "vgpreload") != NULL);
        atomic_store_explicit(&mode, m, memory_order_relaxed);
    }
    return m;
#endif
}

static int class_of(size_t size)
{
    if (direct_alloc())
        return -1;
    for (int c = 0; c < NCLASS; c++)
        if (class_size[c] == size)
            return c;
    return -1;
}

/* A free block: its first word links the blocks of a list; the head block
 * of a batch in the depot links batches and says how many blocks it has
 * (BATCH, or fewer for what a thread had left when it exited). */
typedef struct block {
    struct block *next;
    struct block *next_batch;
    size_t count;
} block_t;

/* A slab's header; its blocks follow. */
typedef struct slab {
    struct slab *next;
    size_t bytes;
} slab_t;

_Static_assert(sizeof(block_t) <= 32, "a free block fits the smallest class");
_Static_assert(sizeof(slab_t) % 16 == 0, "blocks start malloc-aligned");
/* So slab_new's (void *) casts of a slab's bytes to blocks are aligned. */
_Static_assert(FUT__CLASS_SMALL % _Alignof(block_t) == 0 &&
                   FUT__CLASS_MEDIUM % _Alignof(block_t) == 0 &&
                   FUT__CLASS_LARGE % _Alignof(block_t) == 0,
               "every block of a slab is aligned for block_t");

/* --- the allocator ---------------------------------------------------- */

static void *default_alloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}

static void default_free(void *p, size_t size, void *ctx)
{
    (void)size;
    (void)ctx;
    free(p);
}

typedef void *(*alloc_fn)(size_t, void *);
typedef void (*free_fn)(void *, size_t, void *);

static _Atomic(alloc_fn) cur_alloc = default_alloc;
static _Atomic(free_fn) cur_free = default_free;
static void *_Atomic cur_ctx = NULL;

static void *raw_alloc(size_t size)
{
    alloc_fn fn = atomic_load_explicit(&cur_alloc, memory_order_relaxed);
    return fn(size, atomic_load_explicit(&cur_ctx, memory_order_relaxed));
}

static void raw_free(void *p, size_t size)
{
    free_fn fn = atomic_load_explicit(&cur_free, memory_order_relaxed);
    fn(p, size, atomic_load_explicit(&cur_ctx, memory_order_relaxed));
}

/* --- the depot -------------------------------------------------------- */

typedef struct depot {
    pthread_mutex_t lock;
    block_t *batches; /* each a list of count blocks */
    slab_t *slabs;    /* every slab of this class */
    size_t nslabs;
} depot_t;

static depot_t depot[NCLASS] = {
    {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0},
};

static void depot_put(int c, block_t *batch, size_t count)
{
    FUT__ASSERT(count > 0); /* the count the taker's cache will trust */
    batch->count = count;
    pthread_mutex_lock(&depot[c].lock);
    batch->next_batch = depot[c].batches;
    depot[c].batches = batch;
    pthread_mutex_unlock(&depot[c].lock);
}

static block_t *depot_take(int c)
{
    pthread_mutex_lock(&depot[c].lock);
    block_t *batch = depot[c].batches;
    if (batch)
        depot[c].batches = batch->next_batch;
    pthread_mutex_unlock(&depot[c].lock);
    return batch;
}

static void free_list(block_t *b, size_t size)
{
    while (b) {
        block_t *next = b->next;
        raw_free(b, size);
        b = next;
    }
}

static bool carving(void)
{
    return atomic_load_explicit(&cur_alloc, memory_order_relaxed) ==
           default_alloc;
}

/* A new slab of class c, its blocks linked into a list; NULL on ENOMEM. */
static block_t *slab_new(int c)
{
    size_t size = class_size[c];
    size_t bytes = sizeof(slab_t) + SLAB_BLOCKS * size;
    slab_t *sl = raw_alloc(bytes);
    if (!sl)
        return NULL;
    sl->bytes = bytes;
    char *first = (char *)(sl + 1);
    for (size_t i = 0; i < SLAB_BLOCKS; i++)
        ((block_t *)(void *)(first + i * size))->next =
            i + 1 < SLAB_BLOCKS ? (block_t *)(void *)(first + (i + 1) * size)
                                : NULL;
    pthread_mutex_lock(&depot[c].lock);
    sl->next = depot[c].slabs;
    depot[c].slabs = sl;
    depot[c].nslabs++;
    pthread_mutex_unlock(&depot[c].lock);
    return (block_t *)(void *)first;
}

/* --- the per-thread caches -------------------------------------------- */

typedef struct cache {
    block_t *head[NCLASS];
    size_t count[NCLASS];
    bool registered;
} cache_t;

static _Thread_local cache_t cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* Moves the first n blocks of class c's cache into a detached list. */
static block_t *cache_cut(int c, size_t n)
{
    block_t *first = cache.head[c], *b = first;
    for (size_t i = 1; i < n; i++)
        b = b->next;
    cache.head[c] = b->next;
    b->next = NULL;
    cache.count[c] -= n;
    return first;
}

static void cache_thread_exit(void *unused)
{
    (void)unused;
    for (int c = 0; c < NCLASS; c++) {
        while (cache.count[c] >= BATCH)
            depot_put(c, cache_cut(c, BATCH), BATCH);
        size_t rest = cache.count[c];
        if (rest > 0 && carving()) /* slab blocks: keep them */
            depot_put(c, cache_cut(c, rest), rest);
        free_list(cache.head[c], class_size[c]);
        cache.head[c] = NULL;
        cache.count[c] = 0;
    }
    cache.registered = false; /* a later free registers again */
}

void fut__alloc_flush(void)
{
    for (int c = 0; c < NCLASS; c++) {
        while (cache.count[c] > 0) {
            size_t n = cache.count[c] < BATCH ? cache.count[c] : BATCH;
            depot_put(c, cache_cut(c, n), n);
        }
    }
}

static void fork_prepare(void)
{
    for (int c = 0; c < NCLASS; c++)
        pthread_mutex_lock(&depot[c].lock);
}

static void fork_parent(void)
{
    for (int c = 0; c < NCLASS; c++)
        pthread_mutex_unlock(&depot[c].lock);
}

static void fork_child(void)
{
    for (int c = 0; c < NCLASS; c++)
        pthread_mutex_init(&depot[c].lock, NULL);
}

static void cache_init(void)
{
    if (pthread_key_create(&cache_key, cache_thread_exit) != 0)
        abort(); /* no key: the process is out of a basic resource */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void cache_register(void)
{
    pthread_once(&cache_once, cache_init);
    /* Any non-NULL value makes the destructor run at thread exit. */
    pthread_setspecific(cache_key, &cache);
    cache.registered = true;
}

/* Fills the empty cache of class c from the depot or a new slab; false if
 * neither has blocks (then the allocator serves one object). */
static bool cache_refill(int c)
{
    size_t count = SLAB_BLOCKS;
    block_t *list = depot_take(c);
    if (list)
        count = list->count;
    else if (carving())
        list = slab_new(c);
    if (!list)
        return false;
    if (!cache.registered)
        cache_register();
    cache.head[c] = list;
    cache.count[c] = count;
    return true;
}

void *fut__alloc(size_t size)
{
    int c = class_of(size);
    if (c < 0)
        return raw_alloc(size);
    if (!cache.head[c] && !cache_refill(c))
        return carving() ? NULL : raw_alloc(size);
    block_t *b = cache.head[c];
    cache.head[c] = b->next;
    cache.count[c]--;
    return b;
}

void fut__free(void *p, size_t size)
{
    if (!p)
        return;
    int c = class_of(size);
    if (c < 0) {
        raw_free(p, size);
        return;
    }
    if (!cache.registered)
        cache_register();
    block_t *b = p;
    b->next = cache.head[c];
    cache.head[c] = b;
    if (++cache.count[c] >= CACHE_MAX)
        depot_put(c, cache_cut(c, BATCH), BATCH);
}

/* Class c's free blocks (this thread's cache and the depot) go back to
 * the allocator they came from.  Slabs are freed when all their blocks are
 * free.  Otherwise objects are still alive (fut.h forbids it, but another
 * thread may hold blocks in its cache) and the slabs are kept; their free
 * blocks go back to the depot if malloc stays installed, else they are
 * left unused rather than handed out as the new allocator's. */
static void release_class(int c, bool slabs, bool keep_default)
{
    block_t *all = cache.head[c];
    size_t n = cache.count[c];
    cache.head[c] = NULL;
    cache.count[c] = 0;
    block_t *batch;
    while ((batch = depot_take(c)) != NULL) {
        n += batch->count;
        block_t *last = batch;
        while (last->next)
            last = last->next;
        last->next = all;
        all = batch;
    }
    if (!slabs) {
        free_list(all, class_size[c]);
        return;
    }
    pthread_mutex_lock(&depot[c].lock);
    slab_t *sl = NULL;
    if (n == depot[c].nslabs * SLAB_BLOCKS) {
        sl = depot[c].slabs;
        depot[c].slabs = NULL;
        depot[c].nslabs = 0;
    }
    pthread_mutex_unlock(&depot[c].lock);
    if (!sl && all && keep_default)
        depot_put(c, all, n);
    while (sl) {
        slab_t *next = sl->next;
        raw_free(sl, sl->bytes);
        sl = next;
    }
}

enum { MAX_SWITCH_HOOKS = 4 };
static void (*_Atomic switch_hooks[MAX_SWITCH_HOOKS])(void);

void fut__alloc_on_switch(void (*fn)(void))
{
    for (int i = 0; i < MAX_SWITCH_HOOKS; i++) {
        void (*none)(void) = NULL;
        if (atomic_compare_exchange_strong(&switch_hooks[i], &none, fn))
            return;
    }
    FUT__MUST(!"too many allocator switch hooks");
}

int fut_set_allocator(const fut_allocator_t *a)
{
    if (a && (!a->alloc || !a->free))
        return EINVAL;
    for (int i = 0; i < MAX_SWITCH_HOOKS; i++) {
        void (*fn)(void) = atomic_load(&switch_hooks[i]);
        if (fn)
            fn();
    }
    bool slabs = carving();
    for (int c = 0; c < NCLASS; c++)
        release_class(c, slabs, !a);
    atomic_store_explicit(&cur_alloc, a ? a->alloc : default_alloc,
                          memory_order_relaxed);
    atomic_store_explicit(&cur_free, a ? a->free : default_free,
                          memory_order_relaxed);
    atomic_store_explicit(&cur_ctx, a ? a->ctx : NULL, memory_order_relaxed);
    return 0;
}

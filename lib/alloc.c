/*
 * alloc.c - the pluggable allocator, and per-thread freelists over it.
 *
 * The hot objects have three fixed sizes (32: callback nodes and progress
 * listeners, 56: futures, 72: continuations).  Each thread keeps a stack of
 * free blocks per size class, so the steady state allocates nothing from the
 * allocator.  Blocks migrate: a pool worker frees the futures the submitting
 * thread allocated, so a cache that grows past CACHE_MAX hands a batch of BATCH
 * blocks to a global depot, and a thread whose cache is empty takes a batch
 * from it before it asks the allocator.  The depot is one mutex per class,
 * taken once per BATCH blocks.  Any other size goes straight to the allocator.
 *
 * A block is freed through the allocator that is installed when it leaves
 * the caches: at thread exit (the cache goes to the depot), and in
 * fut_set_allocator, which empties the calling thread's cache and the depot
 * into the old allocator before it installs the new one.  Hence the rule in
 * fut.h: install an allocator while no other thread that used fut is alive.
 *
 * Memory ordering: the caches are thread-local; blocks cross threads only
 * through the depot, under its mutex.  Fork: the depot mutexes are taken
 * around fork() so the child inherits consistent lists.
 */
#include "future.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

enum { NCLASS = 3, CACHE_MAX = 512, BATCH = 256 };

static const size_t class_size[NCLASS] = {
    sizeof(fut__cb_t),
    sizeof(struct fut),
    sizeof(fut__cont_t),
};

/* AddressSanitizer builds skip the caches so that a use after free is
 * caught rather than hidden by a reused block. */
#if defined(__SANITIZE_ADDRESS__)
#define FUT_NO_CACHE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUT_NO_CACHE 1
#endif
#endif

static int class_of(size_t size)
{
#ifdef FUT_NO_CACHE
    (void)size;
    return -1;
#endif
    for (int c = 0; c < NCLASS; c++)
        if (class_size[c] == size)
            return c;
    return -1;
}

/* A free block: its first word links the blocks of a list; the head block
 * of a batch in the depot uses its second word to link batches. */
typedef struct block {
    struct block *next;
    struct block *next_batch;
} block_t;

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
    block_t *batches; /* each a list of BATCH blocks */
} depot_t;

static depot_t depot[NCLASS] = {
    {PTHREAD_MUTEX_INITIALIZER, NULL},
    {PTHREAD_MUTEX_INITIALIZER, NULL},
    {PTHREAD_MUTEX_INITIALIZER, NULL},
};

static void depot_put(int c, block_t *batch)
{
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
            depot_put(c, cache_cut(c, BATCH));
        free_list(cache.head[c], class_size[c]);
        cache.head[c] = NULL;
        cache.count[c] = 0;
    }
    cache.registered = false; /* a later free registers again */
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

void *fut__alloc(size_t size)
{
    int c = class_of(size);
    if (c < 0)
        return raw_alloc(size);
    if (!cache.head[c]) {
        block_t *batch = depot_take(c);
        if (!batch)
            return raw_alloc(size);
        if (!cache.registered)
            cache_register();
        cache.head[c] = batch;
        cache.count[c] = BATCH;
    }
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
        depot_put(c, cache_cut(c, BATCH));
}

int fut_set_allocator(const fut_allocator_t *a)
{
    if (a && (!a->alloc || !a->free))
        return EINVAL;
    /* Give every cached block back to the allocator it came from. */
    for (int c = 0; c < NCLASS; c++) {
        free_list(cache.head[c], class_size[c]);
        cache.head[c] = NULL;
        cache.count[c] = 0;
        block_t *batch;
        while ((batch = depot_take(c)) != NULL)
            free_list(batch, class_size[c]);
    }
    atomic_store_explicit(&cur_alloc, a ? a->alloc : default_alloc,
                          memory_order_relaxed);
    atomic_store_explicit(&cur_free, a ? a->free : default_free,
                          memory_order_relaxed);
    atomic_store_explicit(&cur_ctx, a ? a->ctx : NULL, memory_order_relaxed);
    return 0;
}

/*
 * alloc.c - the pluggable allocator, and per-thread freelists over it.
 *
 * The hot objects have four fixed sizes (alloc.h: 32 for callback nodes
 * and progress listeners, 56 for futures, 72 for continuations, 128 for a
 * group's task members, each with its record).  Each thread
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
 * SLAB_BLOCKS objects.  Slabs are kept for reuse, listed in the depot.
 * A slab all of whose blocks are in the depot goes back to malloc: when
 * fut_trim asks, when a pool is freed, when a pool worker's flush finds
 * more than TRIM_WATERMARK free blocks of its class for over a second
 * (keeping TRIM_KEEP_SLABS), and
 * when fut_set_allocator finds every block of the class free.  (Before,
 * slabs were kept for good, so a program that once had a burst of a
 * million pending futures kept their memory: fut_bench's process peaked
 * at 247 MiB across the workloads, the high-water marks adding up.)  An
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
#include "util/park.h"
#include "util/stack.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

enum { NCLASS = 4, CACHE_MAX = 512, BATCH = 256, SLAB_BLOCKS = BATCH };
/* Free blocks of a class beyond which a pool worker's flush gives whole
 * free slabs back to malloc, keeping TRIM_KEEP_SLABS of them, once the
 * surplus has lasted TRIM_AFTER_NS. */
enum { TRIM_WATERMARK = 64 * SLAB_BLOCKS, TRIM_KEEP_SLABS = 16 };
#define TRIM_AFTER_NS ((int64_t)1000000000)

static const size_t class_size[NCLASS] = {
    FUT__CLASS_SMALL,
    FUT__CLASS_MEDIUM,
    FUT__CLASS_LARGE,
    FUT__CLASS_ROOMY,
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
                   FUT__CLASS_LARGE % _Alignof(block_t) == 0 &&
                   FUT__CLASS_ROOMY % _Alignof(block_t) == 0,
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
    block_t *batches;      /* each a list of count blocks */
    size_t nfree;          /* blocks in batches */
    int64_t surplus_since; /* nfree above TRIM_WATERMARK since (0: not) */
    slab_t *slabs;         /* every slab of this class */
    size_t nslabs;
} depot_t;

static depot_t depot[NCLASS] = {
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, NULL, 0},
};

static void depot_put(int c, block_t *batch, size_t count)
{
    FUT__ASSERT(count > 0); /* the count the taker's cache will trust */
    batch->count = count;
    pthread_mutex_lock(&depot[c].lock);
    batch->next_batch = depot[c].batches;
    depot[c].batches = batch;
    depot[c].nfree += count;
    pthread_mutex_unlock(&depot[c].lock);
}

static block_t *depot_take(int c)
{
    pthread_mutex_lock(&depot[c].lock);
    block_t *batch = depot[c].batches;
    if (batch) {
        depot[c].batches = batch->next_batch;
        depot[c].nfree -= batch->count;
        if (depot[c].nfree <= TRIM_WATERMARK)
            depot[c].surplus_since = 0; /* in use again: no surplus */
    }
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

static void trim_class(int c, size_t keep, bool watermark);

void fut__alloc_flush(void)
{
    for (int c = 0; c < NCLASS; c++) {
        bool flushed = cache.count[c] > 0;
        while (cache.count[c] > 0) {
            size_t n = cache.count[c] < BATCH ? cache.count[c] : BATCH;
            depot_put(c, cache_cut(c, n), n);
        }
        /* The watermark: a burst's slabs go back once its blocks are. */
        if (flushed)
            trim_class(c, TRIM_KEEP_SLABS, true);
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

/* --- trimming: whole free slabs go back to malloc --------------------- */

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (slab_t *const *)a;
    uintptr_t y = (uintptr_t) * (slab_t *const *)b;
    return (x > y) - (x < y);
}

/* The slab of sorted[0..n) that holds b (every free block is in one). */
static size_t slab_index(slab_t **sorted, size_t n, const block_t *b)
{
    size_t lo = 0, hi = n; /* the last slab starting at or below b */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)sorted[mid] <= (uintptr_t)b)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Frees the slabs of `slabs` (n of them) all of whose blocks are in
 * `batches` (nfree blocks), but for the first keep of them by address.
 * Both were taken out of the depot, so nobody else sees them meanwhile.
 * Returns the free blocks of the slabs kept, in batches (*left: how many),
 * and the kept slabs in *slabs (*n: how many). */
static block_t *trim_detached(slab_t **slabs, size_t *n, block_t *batches,
                              size_t *left, size_t keep)
{
    size_t ns = *n;
    slab_t **sorted = malloc(ns * sizeof *sorted);
    unsigned short *free_in = calloc(ns, sizeof *free_in);
    if (!sorted || !free_in) { /* no memory to trim with: later */
        free(sorted);
        free(free_in);
        return batches;
    }
    size_t i = 0;
    for (slab_t *sl = *slabs; sl; sl = sl->next)
        sorted[i++] = sl;
    qsort(sorted, ns, sizeof *sorted, by_address);
    for (block_t *batch = batches; batch; batch = batch->next_batch)
        for (block_t *b = batch; b; b = b->next)
            free_in[slab_index(sorted, ns, b)]++;
    enum { GOING = 0xffff };
    size_t kept_whole = 0;
    for (i = 0; i < ns; i++)
        if (free_in[i] == SLAB_BLOCKS && kept_whole++ >= keep)
            free_in[i] = GOING;
    /* The free blocks of the slabs that stay, in batches of BATCH. */
    block_t *out = NULL, *cur = NULL;
    size_t count = 0, total = 0;
    for (block_t *batch = batches; batch;) {
        block_t *next_batch = batch->next_batch;
        for (block_t *b = batch; b;) {
            block_t *next = b->next;
            if (free_in[slab_index(sorted, ns, b)] != GOING) {
                b->next = cur;
                cur = b;
                if (++count == BATCH) {
                    cur->count = count;
                    cur->next_batch = out;
                    out = cur;
                    total += count;
                    cur = NULL;
                    count = 0;
                }
            }
            b = next;
        }
        batch = next_batch;
    }
    if (cur) {
        cur->count = count;
        cur->next_batch = out;
        out = cur;
        total += count;
    }
    *slabs = NULL;
    *n = 0;
    for (i = 0; i < ns; i++) {
        if (free_in[i] == GOING) {
            raw_free(sorted[i], sorted[i]->bytes);
        } else {
            sorted[i]->next = *slabs;
            *slabs = sorted[i];
            (*n)++;
        }
    }
    free(sorted);
    free(free_in);
    *left = total;
    return out;
}

/* Lock held.  Whether the watermark lets class c trim now: its free
 * blocks have stayed above TRIM_WATERMARK for TRIM_AFTER_NS (a burst that
 * is over, not the gap between two bursts, whose blocks are taken again
 * at once: trimming then made the next burst carve new slabs while the
 * old ones were being counted). */
static bool surplus_expired(depot_t *d)
{
    if (d->nfree <= TRIM_WATERMARK) {
        d->surplus_since = 0;
        return false;
    }
    int64_t now = fut__now();
    if (d->surplus_since == 0) {
        d->surplus_since = now;
        return false;
    }
    return now - d->surplus_since >= TRIM_AFTER_NS;
}

/* Frees class c's whole free slabs but keep of them (all: when asked;
 * watermark: only once the surplus has lasted, see surplus_expired).  The
 * depot's batches and slabs are taken out under the lock and the work is
 * done without it (a thread that finds the depot empty meanwhile carves a
 * new slab), then what stays is put back.  Only with the built-in
 * allocator: an installed one gets its objects back one by one already. */
static void trim_class(int c, size_t keep, bool watermark)
{
    if (!carving())
        return;
    depot_t *d = &depot[c];
    pthread_mutex_lock(&d->lock);
    if ((watermark && !surplus_expired(d)) ||
        d->nfree < SLAB_BLOCKS * (keep + 1)) {
        pthread_mutex_unlock(&d->lock);
        return;
    }
    d->surplus_since = 0;
    block_t *batches = d->batches;
    slab_t *slabs = d->slabs;
    size_t n = d->nslabs, left = d->nfree;
    d->batches = NULL;
    d->slabs = NULL;
    d->nfree = 0;
    d->nslabs = 0;
    pthread_mutex_unlock(&d->lock);
    batches = trim_detached(&slabs, &n, batches, &left, keep);
    pthread_mutex_lock(&d->lock);
    while (batches) {
        block_t *next = batches->next_batch;
        batches->next_batch = d->batches;
        d->batches = batches;
        batches = next;
    }
    d->nfree += left;
    while (slabs) {
        slab_t *next = slabs->next;
        slabs->next = d->slabs;
        d->slabs = slabs;
        slabs = next;
    }
    d->nslabs += n;
    pthread_mutex_unlock(&d->lock);
}

void fut__alloc_trim(void)
{
    fut__alloc_flush();
    for (int c = 0; c < NCLASS; c++)
        trim_class(c, 0, false);
#ifdef __GLIBC__
    /* Freed slabs sit in the middle of glibc's heap, where free() keeps
     * their pages: give those back to the system too.  (Measured, fut_bench
     * W1-W7 in one process: peak RSS 159 MiB without it, W5's large arrays
     * on top of the 72 MiB W1 and W2 left in the heap.) */
    if (carving())
        malloc_trim(0);
#endif
}

void fut_trim(void)
{
    fut__alloc_trim();
    fut__stack_trim();
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

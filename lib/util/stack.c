/*
 * stack.c - fiber stacks (stack.h).
 *
 * Chunks.  Stacks come from chunks: one anonymous mapping of SLOTS slots,
 * each a guard page and a stack above it.  A slot's guard page is made
 * PROT_NONE the first time the slot is handed out and stays so; a freed
 * slot goes back to its chunk, keeps its guard and the pages its fiber
 * touched, and is handed out again before any new mapping is made.  So a
 * fiber costs no system call in steady state, a new slot one (the guard's
 * mprotect), and a burst of fibers one mmap per SLOTS of them.
 *
 * Keeping.  A chunk whose slots are all free is idle: it waits on its
 * class's idle list, newest first, and is unmapped once it has been idle
 * for KEEP_NS (checked whenever another chunk becomes idle) or by
 * fut__stack_trim (fut_trim), beyond the FREE_CHUNKS_KEPT newest.  So a
 * program that runs bursts of fibers reuses the burst's stacks, and one
 * that stops gives them back after a few seconds of use elsewhere, or at
 * once when it asks.  Measured (fut_bench W8, 100,000 fibers at once):
 * a mapping per stack, 66 k fibers/s, 80% of the time in the kernel (a
 * munmap per fiber, each a TLB shootdown on every CPU the process runs
 * on); chunks unmapped as soon as idle, 422 k; idle chunks kept, 1.5-1.65
 * M.  Making idle chunks' pages free (MADV_DONTNEED or MADV_FREE) instead
 * of keeping them resident cost most of the gain (575-590 k).
 *
 * Size classes.  A chunk serves one stack size; the first CLASSES sizes
 * asked for get a class each (most programs use one or two sizes), and a
 * size beyond them, or above CHUNKED_MAX, gets a mapping of its own as
 * before chunks.
 *
 * Lock: one lock guards the classes and their chunks' free masks; the
 * system calls are made outside it.  It is util/lock.h's futex word, not
 * a pthread mutex: every fiber takes it twice, from the thread that
 * starts it and the worker it finishes on, and with glibc's mutex the
 * two sides' lock calls and the sleeps and wakes of its contention were
 * a fifth of W8's time (fut_bench W8, 4 processes each: 1.01 M fibers/s
 * with the mutex, 1.24 M with the futex word).  It is a leaf (util/leaf.h:
 * nothing is taken under it), held across fork() so that a child never
 * inherits it held by a thread it does not have.  Under valgrind each stack is
 * registered while handed out, so its stack-switch heuristics know the
 * fiber's frames for what they are.
 */
#include "util/stack.h"
#include "util/leaf.h"
#include "util/park.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define FUT_VALGRIND 1
#endif
#endif

enum {
    SLOTS = 64, /* bits of a chunk's masks */
    CLASSES = 8,
    FREE_CHUNKS_KEPT = 2,
};
#define KEEP_NS ((int64_t)5 * 1000000000) /* an idle chunk's keep-alive */
#define CHUNKED_MAX ((size_t)1 << 20)     /* larger stacks: a mapping each */
#define ALL_SLOTS UINT64_MAX

typedef struct stack_class class_t;

typedef struct chunk {
    struct chunk *prev, *next; /* in its class's `room` or `idle` list */
    class_t *cls;
    int64_t idle_since; /* when its last slot came back */
    char *map;          /* SLOTS x (page + size) */
    uint64_t free;      /* bit i: slot i is free */
    uint64_t guarded;   /* bit i: slot i's guard page is PROT_NONE */
} chunk_t;

typedef struct list {
    chunk_t *head, *tail;
} list_t;

struct stack_class {
    size_t size;  /* stack bytes, a multiple of the page */
    list_t room;  /* chunks with free and taken slots, last freed first */
    list_t idle;  /* chunks with every slot free, newest first */
    size_t nidle; /* chunks in idle */
};

static fut__leaf_t lock = FUT__LEAF_INIT; /* leaf.h: held across fork() */
static class_t classes[CLASSES];
static size_t nclasses;

static size_t page_size(void)
{
    static _Atomic size_t page; /* the same value, whoever stores it */
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        long sz = sysconf(_SC_PAGESIZE);
        p = sz > 0 ? (size_t)sz : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

/* --- a class's lists of chunks (lock held) ----------------------------- */

static void list_push(list_t *l, chunk_t *k)
{
    k->prev = NULL;
    k->next = l->head;
    if (l->head)
        l->head->prev = k;
    else
        l->tail = k;
    l->head = k;
}

static void list_remove(list_t *l, chunk_t *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        l->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        l->tail = k->prev;
    k->prev = k->next = NULL;
}

/* The class of size, made if there is room for one; NULL if not. */
static class_t *class_of(size_t size)
{
    for (size_t i = 0; i < nclasses; i++)
        if (classes[i].size == size)
            return &classes[i];
    if (nclasses == CLASSES)
        return NULL;
    classes[nclasses].size = size;
    return &classes[nclasses++];
}

/* --- stacks with a mapping of their own ------------------------------- */

static bool get_alone(fut__stack_t *s, size_t size, size_t page)
{
    char *m = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return false;
    if (mprotect(m, page, PROT_NONE) != 0) {
        munmap(m, size + page);
        return false;
    }
    s->base = m + page;
    s->chunk = NULL;
    s->slot = 0;
    return true;
}

/* --- chunks ----------------------------------------------------------- */

static chunk_t *chunk_new(class_t *c, size_t page)
{
    chunk_t *k = malloc(sizeof *k);
    if (!k)
        return NULL;
    size_t len = SLOTS * (page + c->size);
    k->map =
        mmap(NULL, len, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (k->map == MAP_FAILED) {
        free(k);
        return NULL;
    }
    k->cls = c;
    k->free = ALL_SLOTS;
    k->guarded = 0;
    k->prev = k->next = NULL;
    return k;
}

/* Takes a free slot in c (lock held): from a chunk in use, else from the
 * newest idle chunk; NULL if none.  *guard: the slot still needs its guard
 * page. */
static chunk_t *take_slot(class_t *c, unsigned *slot, bool *guard)
{
    chunk_t *k = c->room.head;
    if (!k && (k = c->idle.head) != NULL) {
        list_remove(&c->idle, k);
        c->nidle--;
        list_push(&c->room, k);
    }
    if (!k)
        return NULL;
    unsigned i = (unsigned)__builtin_ctzll(k->free);
    k->free &= ~((uint64_t)1 << i);
    if (k->free == 0)
        list_remove(&c->room, k);
    *slot = i;
    *guard = !(k->guarded & ((uint64_t)1 << i));
    return k;
}

/* Takes the oldest idle chunk of c out if it is to be unmapped (lock
 * held): beyond the FREE_CHUNKS_KEPT newest, and idle since before
 * `before` (INT64_MAX: whatever its age).  NULL if none. */
static chunk_t *take_expired(class_t *c, int64_t before)
{
    chunk_t *k = c->idle.tail;
    if (!k || c->nidle <= FREE_CHUNKS_KEPT || k->idle_since >= before)
        return NULL;
    list_remove(&c->idle, k);
    c->nidle--;
    return k;
}

/* Gives slot i back to k (lock held).  True if k became idle: the caller
 * then unmaps what has expired. */
static bool give_slot(chunk_t *k, unsigned i)
{
    class_t *c = k->cls;
    if (k->free == 0)
        list_push(&c->room, k);
    k->free |= (uint64_t)1 << i;
    if (k->free != ALL_SLOTS)
        return false;
    list_remove(&c->room, k);
    k->idle_since = fut__now();
    list_push(&c->idle, k);
    c->nidle++;
    return true;
}

static void chunk_unmap(chunk_t *k, size_t page)
{
    munmap(k->map, SLOTS * (page + k->cls->size));
    free(k);
}

/* Unmaps c's idle chunks that have expired by `before` (lock not held). */
static void expire(class_t *c, int64_t before, size_t page)
{
    for (;;) {
        fut__leaf_lock(&lock);
        chunk_t *k = take_expired(c, before);
        fut__leaf_unlock(&lock);
        if (!k)
            return;
        chunk_unmap(k, page);
    }
}

static bool get_chunked(fut__stack_t *s, class_t *c, size_t page)
{
    unsigned i = 0;
    bool guard = false;
    fut__leaf_lock(&lock);
    chunk_t *k = take_slot(c, &i, &guard);
    fut__leaf_unlock(&lock);
    if (!k) {
        chunk_t *fresh = chunk_new(c, page);
        if (!fresh)
            return false;
        fut__leaf_lock(&lock);
        list_push(&c->room, fresh);
        k = take_slot(c, &i, &guard); /* maybe another's, freed meanwhile */
        fut__leaf_unlock(&lock);
    }
    char *slot = k->map + (size_t)i * (page + c->size);
    if (guard) {
        /* Fails at vm.max_map_count: the slot goes back unguarded. */
        bool ok = mprotect(slot, page, PROT_NONE) == 0;
        fut__leaf_lock(&lock);
        if (ok)
            k->guarded |= (uint64_t)1 << i;
        else
            give_slot(k, i);
        fut__leaf_unlock(&lock);
        if (!ok)
            return false;
    }
    s->base = slot + page;
    s->chunk = k;
    s->slot = i;
    return true;
}

/* --- the interface ---------------------------------------------------- */

bool fut__stack_get(fut__stack_t *s, size_t size)
{
    size_t page = page_size();
    if (size < FUT__STACK_MIN)
        size = FUT__STACK_MIN;
    if (size > SIZE_MAX / 2)
        return false; /* no such stack: the rounding would wrap */
    size = (size + page - 1) & ~(page - 1);
    class_t *c = NULL;
    if (size <= CHUNKED_MAX) {
        fut__leaf_lock(&lock);
        c = class_of(size);
        fut__leaf_unlock(&lock);
    }
    if (!(c ? get_chunked(s, c, page) : get_alone(s, size, page)))
        return false;
    s->size = size;
    s->vg_id = 0;
#ifdef FUT_VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(s->base, (char *)s->base + size);
#endif
    return true;
}

void fut__stack_put(fut__stack_t *s)
{
#ifdef FUT_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    size_t page = page_size();
    if (!s->chunk) {
        munmap((char *)s->base - page, s->size + page);
        return;
    }
    chunk_t *k = s->chunk;
    fut__leaf_lock(&lock);
    bool idle = give_slot(k, s->slot);
    fut__leaf_unlock(&lock);
    if (idle)
        expire(k->cls, fut__now() - KEEP_NS, page);
}

void fut__stack_trim(void)
{
    size_t page = page_size();
    fut__leaf_lock(&lock);
    size_t n = nclasses;
    fut__leaf_unlock(&lock);
    for (size_t i = 0; i < n; i++)
        expire(&classes[i], INT64_MAX, page);
}

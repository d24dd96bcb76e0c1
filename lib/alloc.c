/*
 * alloc.c - the pluggable allocator behind every object fut allocates.
 *
 * fut_set_allocator is documented as a call made while no fut object is
 * alive, so the three words below are written only then; readers load
 * them relaxed (atomics keep ThreadSanitizer honest about that rule).
 * Per-thread freelists will sit on top of these two functions.
 */
#include "future.h"

#include <errno.h>
#include <stdlib.h>

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

int fut_set_allocator(const fut_allocator_t *a)
{
    if (a && (!a->alloc || !a->free))
        return EINVAL;
    atomic_store_explicit(&cur_alloc, a ? a->alloc : default_alloc,
                          memory_order_relaxed);
    atomic_store_explicit(&cur_free, a ? a->free : default_free,
                          memory_order_relaxed);
    atomic_store_explicit(&cur_ctx, a ? a->ctx : NULL, memory_order_relaxed);
    return 0;
}

void *fut__alloc(size_t size)
{
    alloc_fn fn = atomic_load_explicit(&cur_alloc, memory_order_relaxed);
    return fn(size, atomic_load_explicit(&cur_ctx, memory_order_relaxed));
}

void fut__free(void *p, size_t size)
{
    if (!p)
        return;
    free_fn fn = atomic_load_explicit(&cur_free, memory_order_relaxed);
    fn(p, size, atomic_load_explicit(&cur_ctx, memory_order_relaxed));
}

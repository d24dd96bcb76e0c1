/*
 * stack.c - fiber stacks (stack.h).
 *
 * Each stack is one anonymous mapping: a PROT_NONE guard page at the
 * bottom, the stack above it.  Freed stacks of the default size go to a
 * small cache under a mutex (most fibers use the default), so a steady
 * stream of fibers maps nothing; the cache holds at most CACHE_MAX and
 * hands back the rest.  Under valgrind each stack is registered, so its
 * stack-switch heuristics know the fiber's frames for what they are.
 */
#include "util/stack.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define FUT_VALGRIND 1
#endif
#endif

enum { CACHE_MAX = 64 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fut__stack_t cache[CACHE_MAX];
static size_t cached;

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

bool fut__stack_get(fut__stack_t *s, size_t size)
{
    size_t page = page_size();
    if (size < FUT__STACK_MIN)
        size = FUT__STACK_MIN;
    size = (size + page - 1) & ~(page - 1);
    if (size == FUT__STACK_DEFAULT) {
        pthread_mutex_lock(&lock);
        bool hit = cached > 0;
        if (hit)
            *s = cache[--cached];
        pthread_mutex_unlock(&lock);
        if (hit)
            return true;
    }
    char *m = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return false;
    if (mprotect(m, page, PROT_NONE) != 0) {
        munmap(m, size + page);
        return false;
    }
    s->base = m + page;
    s->size = size;
    s->vg_id = 0;
#ifdef FUT_VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(s->base, (char *)s->base + size);
#endif
    return true;
}

void fut__stack_put(fut__stack_t *s)
{
    if (s->size == FUT__STACK_DEFAULT) {
        pthread_mutex_lock(&lock);
        bool kept = cached < CACHE_MAX;
        if (kept)
            cache[cached++] = *s;
        pthread_mutex_unlock(&lock);
        if (kept)
            return;
    }
#ifdef FUT_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    size_t page = page_size();
    munmap((char *)s->base - page, s->size + page);
}

/*
 * stack.h - fiber stacks: mmap'ed in chunks, a guard page below each,
 * reused (private; util layer).
 *
 * A stack overflow runs into the guard page (SIGSEGV), never into another
 * fiber's memory.  Only the pages a fiber touches cost memory.  Each stack
 * is two mappings' worth of kernel bookkeeping (the guard splits it), so
 * Linux's vm.max_map_count (65530 by default) bounds how many fibers can
 * be alive at once to about 32,000; fut_async reports ENOMEM beyond.
 */
#ifndef FUT_UTIL_STACK_H
#define FUT_UTIL_STACK_H

#include <stdbool.h>
#include <stddef.h>

enum { FUT__STACK_DEFAULT = 64 * 1024, FUT__STACK_MIN = 16 * 1024 };

typedef struct fut__stack {
    void *base; /* the usable bottom (above the guard page) */
    size_t size;
    void *chunk;    /* the chunk it came from, or NULL: a mapping of its own */
    unsigned slot;  /* its place in the chunk */
    unsigned vg_id; /* valgrind's id for it, or 0 */
} fut__stack_t;

/* A stack of at least size bytes (rounded up to pages); false on ENOMEM. */
bool fut__stack_get(fut__stack_t *s, size_t size);
/* Gives the stack back (to its chunk, or to the kernel). */
void fut__stack_put(fut__stack_t *s);
/* Unmaps every idle chunk but the few newest of each size (fut_trim). */
void fut__stack_trim(void);

#endif /* FUT_UTIL_STACK_H */

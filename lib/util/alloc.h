/*
 * alloc.h - the pluggable allocator and its per-thread caches (private;
 * util layer).
 *
 * fut__alloc / fut__free go through the allocator installed with
 * fut_set_allocator.  Four fixed sizes are cached per thread (and, with the
 * built-in allocator, carved from slabs): the sizes of fut's hot objects.
 * The layers above assert that their objects have exactly these sizes, so
 * an object that grows falls out of the caches loudly, not silently.
 * fut__free must be given the size that was asked for.
 */
#ifndef FUT_UTIL_ALLOC_H
#define FUT_UTIL_ALLOC_H

#include <stddef.h>

enum {
    FUT__CLASS_SMALL = 32,  /* callback nodes, progress listeners */
    FUT__CLASS_MEDIUM = 56, /* futures */
    FUT__CLASS_LARGE = 72,  /* futures with two more words (continuations) */
    FUT__CLASS_ROOMY =
        128, /* tasks with their owner's record (group members) */
};

void *fut__alloc(size_t size);
void fut__free(void *p, size_t size);

/* Hands this thread's cached blocks to the shared depot, where
 * fut_set_allocator finds them: for a long-lived thread of fut's own (the
 * timer thread) that would otherwise keep them until it exits. */
void fut__alloc_flush(void);

/* Flushes this thread's cache, then gives every slab whose blocks are all
 * free back to malloc (fut_trim; nothing with an installed allocator). */
void fut__alloc_trim(void);

/* Registers fn to run at the start of every fut_set_allocator, before the
 * caches are emptied: a layer with a thread of its own (the timer) waits
 * there until that thread holds no block.  At most a few, for good. */
void fut__alloc_on_switch(void (*fn)(void));

#endif /* FUT_UTIL_ALLOC_H */

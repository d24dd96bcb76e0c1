/*
 * leak_probe.c - forgets one future on purpose, so that a leak checker
 * must report it: with fut's caches on, the block would sit in a cache for
 * reuse and valgrind would call it "still reachable" at most.  Run by the
 * test leak_is_visible_to_valgrind, which expects valgrind to find it
 * definitely lost.
 */
#include <fut.h>

#include <stdio.h>

static void forget(void)
{
    fut_promise_t *p = fut_promise_new();
    fut_t *f = fut_promise_future(p);
    fut_promise_release(p); /* rejects f with EPIPE; f itself is forgotten */
    printf("forgot a future in state %d\n", (int)fut_state(f));
}

int main(void)
{
    forget();
    return 0;
}

/*
 * error.c - errors as futures carry them: the immortal ENOMEM future,
 * fut_error, and unobserved rejections (a rejected future freed without
 * anyone reading its error goes to the hook of fut_set_unhandled_hook, or
 * to stderr when FUT_DEBUG=1 — asyncio's "exception was never retrieved").
 *
 * Lock: `hook_lock` guards the hook and its argument; the hook itself is
 * called after unlocking, so it may call into fut.  Nothing is taken under
 * it (getenv takes no lock), so it is a leaf (util/leaf.h), held across
 * fork(): a child never inherits it held.
 */
#include "core/future.h"
#include "util/leaf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fut_t fut__enomem = {
    .state = FUT_REJECTED | FUT__IMMORTAL | FUT__OBSERVED,
    .refs = 1,
    .cbs = FUT__CBS_CLOSED,
    .u.err = {.code = ENOMEM, .message = "out of memory"},
};

const fut_error_t *fut_error(const fut_t *f)
{
    if (!f)
        return NULL;
    uint32_t s = fut__load(f);
    if (!fut__is_settled(s) || (s & FUT__STATE_MASK) == FUT_FULFILLED)
        return NULL;
    fut__observe((fut_t *)(uintptr_t)f);
    return &f->u.err;
}

void fut__observe(fut_t *f)
{
    if (!(atomic_load_explicit(&f->state, memory_order_relaxed) &
          FUT__OBSERVED))
        atomic_fetch_or_explicit(&f->state, FUT__OBSERVED,
                                 memory_order_relaxed);
}

static fut_unhandled_fn unhandled_hook;
static void *unhandled_arg;
static fut__leaf_t hook_lock = FUT__LEAF_INIT;
static int debug_env = -1; /* FUT_DEBUG=1: print unread rejections */

void fut_set_unhandled_hook(fut_unhandled_fn hook, void *arg)
{
    fut__leaf_lock(&hook_lock);
    unhandled_hook = hook;
    unhandled_arg = arg;
    fut__leaf_unlock(&hook_lock);
}

void fut__report_unhandled(const fut_error_t *err)
{
    fut__leaf_lock(&hook_lock);
    fut_unhandled_fn hook = unhandled_hook;
    void *arg = unhandled_arg;
    if (debug_env < 0) {
        const char *e = getenv("FUT_DEBUG");
        debug_env = e && !strcmp(e, "1");
    }
    bool print = debug_env;
    fut__leaf_unlock(&hook_lock);
    if (hook)
        hook(err, arg);
    else if (print)
        fprintf(stderr, "fut: rejection never retrieved: %d (domain %d): %s\n",
                err->code, err->domain, err->message);
}

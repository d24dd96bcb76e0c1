/*
 * ctx.h - the context handed to every user function that produces a
 * result, and the current future of a thread (private; core layer).
 *
 * A context lives on the stack of the thread that runs the function and
 * collects what the function says about its result; fut__ctx_settle turns
 * that into the future's outcome when the function returns.  The first of
 * fut_fail and fut_adopt wins; later calls are ignored and lose nothing (a
 * second future to adopt is released, a value is destroyed with its
 * destructor).
 */
#ifndef FUT_CORE_CTX_H
#define FUT_CORE_CTX_H

#include "core/future.h"

struct fut_ctx {
    fut_t *f; /* the future being produced (RUNNING) */
    fut_free_fn free_value;
    int code;      /* first failure, 0 if none */
    int domain;    /* its domain (fut.h, FUT_DOMAIN_*) */
    char *message; /* owned; NULL: static description of code */
    fut_t *adopt;  /* future to follow (a reference), or NULL */
};

/* Settles ctx->f (RUNNING, owned by the caller) from what the function
 * said and the value it returned. */
void fut__ctx_settle(fut_ctx_t *ctx, void *value);

/* The future whose function runs on this thread (NULL if none), and the
 * setter that brackets a call: old = set(f); call; set(old).  fut_wait
 * uses it to refuse a future waiting on itself (EDEADLK). */
fut_t *fut__current(void);
fut_t *fut__set_current(fut_t *f);

#endif /* FUT_CORE_CTX_H */

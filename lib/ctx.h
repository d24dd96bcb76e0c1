/*
 * ctx.h - the context handed to tasks and continuations (private).
 *
 * It lives on the stack of the thread that runs the function and collects
 * what the function says about its result; fut__ctx_settle turns that into
 * the future's outcome when the function returns.  The first of fut_fail
 * and fut_adopt wins; later calls are ignored and lose nothing (a second
 * future to adopt is released, a value is destroyed with its destructor).
 */
#ifndef FUT_CTX_H
#define FUT_CTX_H

#include "future.h"

struct fut_ctx {
    fut_t *f; /* the future being produced (RUNNING) */
    fut_free_fn free_value;
    int code;      /* first failure, 0 if none */
    char *message; /* owned; NULL: static description of code */
    fut_t *adopt;  /* future to follow (a reference), or NULL */
};

/* Settles ctx->f (RUNNING, owned by the caller) from what the function
 * said and the value it returned. */
void fut__ctx_settle(fut_ctx_t *ctx, void *value);

/* ctx->f follows x (consumes x): settles like x once x settles (chain.c). */
void fut__adopt_start(fut_t *f, fut_t *x);

/* Runs a continuation whose input has settled (chain.c): PENDING ->
 * RUNNING, calls the handler, settles.  False if it had been cancelled. */
bool fut__cont_run(fut_t *d);

#endif /* FUT_CTX_H */

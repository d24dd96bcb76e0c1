/*
 * adopt.h - adoption: a running future that follows another (private;
 * core layer).
 *
 * A function that returns through fut_adopt(ctx, x) makes its future f
 * settle as x settles (Promises/A+ 2.3, thenCompose).  f is then RUNNING
 * with the ADOPTING flag and waits on x's callback stack as a future entry;
 * the dispatcher of x calls fut__adopt_settled.
 */
#ifndef FUT_CORE_ADOPT_H
#define FUT_CORE_ADOPT_H

#include "core/future.h"

/* f (RUNNING, owned by the caller) follows x; consumes x.  If following x
 * would close a loop (x's line leads back to f), f rejects with EDEADLK. */
void fut__adopt_start(fut_t *f, fut_t *x);

/* x, which f follows, has settled: f settles like it.  Consumes the
 * reference x's callback stack held to f. */
void fut__adopt_settled(fut_t *f, fut_t *x);

#endif /* FUT_CORE_ADOPT_H */

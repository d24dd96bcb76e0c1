/*
 * within_settled_input_times_out.c - reproducer of fut_within rejecting
 * ETIMEDOUT although its input had already settled when it was called
 * (found by the model suite, test/test_model.c,
 * FUT_MODEL_AVOID_WITHIN_TIMER_FIRST).
 *
 * fut.h: "Settles as f settles if it does within ns".  fut_within arms its
 * timer before it looks at f, so with a short ns the timer thread can fire
 * before the already-settled input is seen.
 *   clang -g -Iinclude -DFUT_STATIC_DEFINE \
 *       fuzz/crashes/within_settled_input_times_out.c build/test/libfut.a \
 *       -lpthread
 * Prints how many of the rounds timed out.
 */
#include "fut.h"

#include <errno.h>
#include <stdio.h>

int main(void)
{
    int timed_out = 0, rounds = 100000;
    for (int i = 0; i < rounds; i++) {
        fut_t *w = fut_within(fut_resolved(NULL, NULL), 0);
        fut_wait(w, FUT_FOREVER);
        if (fut_get(w, 0, NULL) == ETIMEDOUT)
            timed_out++;
        fut_release(w);
    }
    printf("%d of %d rounds: an input settled before the call timed out\n",
           timed_out, rounds);
    return timed_out != 0;
}

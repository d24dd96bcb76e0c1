/*
 * cancel_then_free_executor.c - reproducer of a use-after-free that
 * fuzz_ops found (fuzz/crashes/README.md).
 *
 * A then_on(loop) continuation d waits for a promise.  Another thread
 * resolves the promise while this thread cancels d; once d has settled
 * (cancelled) and the loop has nothing left to run, the loop is freed.  The
 * resolving thread's dispatcher (fut__fire) may have read d as pending just
 * before the cancel, and then submits d to the loop after it was freed.
 *
 * The window is a few instructions wide, so this program rarely shows it
 * as it is; with a delay added between fut__fire's state check and its
 * submit (a debugging change to the library, not part of it) every run
 * does.  Build with ASan:
 *   clang -g -fsanitize=address -Iinclude -DFUT_STATIC_DEFINE \
 *       fuzz/crashes/cancel_then_free_executor.c build/asan/libfut.a -lpthread
 */
#include "fut.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>

static void *cont(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)arg;
    return value;
}

static void *settler(void *p)
{
    fut_resolve(p, NULL, NULL);
    return NULL;
}

int main(void)
{
    for (int round = 0; round < 200000; round++) {
        fut_executor_t *loop;
        if (fut_loop_new(&loop) != 0)
            return 2;
        fut_promise_t *p = fut_promise_new();
        fut_t *d = fut_then_on(loop, fut_promise_future(p), cont, NULL);
        pthread_t t;
        pthread_create(&t, NULL, settler, p);
        for (int i = 0; i < round % 16; i++)
            sched_yield();
        fut_cancel(d);
        /* Every future has settled and the loop is idle: freeing it is
         * what fut.h allows ("futures obtained from it stay valid"). */
        while (fut_loop_run_pending(loop) > 0) {
        }
        fut_wait(d, FUT_FOREVER);
        fut_executor_free(loop);
        pthread_join(t, NULL);
        fut_release(d);
        fut_promise_release(p);
    }
    puts("no use-after-free seen");
    return 0;
}

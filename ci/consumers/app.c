/* app.c - a program that uses fut the way a project that depends on it would:
 * the header/library version check, a pool, a task, and a promise whose
 * continuation runs on the pool.  Every CI consumer (find_package,
 * pkg-config, add_subdirectory, FetchContent, the .deb) builds and runs it;
 * it exits 0 when everything worked. */
#include <fut.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void *twice(fut_ctx_t *ctx, void *arg)
{
    (void)ctx;
    return (void *)((intptr_t)arg * 2);
}

static void *plus_one(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)arg;
    return (void *)((intptr_t)value + 1);
}

int main(void)
{
    if (fut_version_number() != FUT_VERSION_NUMBER) {
        fprintf(stderr, "header %s, library %s\n", FUT_VERSION_STRING,
                fut_version());
        return 1;
    }

    fut_executor_t *pool;
    int rc = fut_pool_new(&(fut_pool_config_t){.threads = 2}, &pool);
    if (rc) {
        fprintf(stderr, "fut_pool_new: %s\n", strerror(rc));
        return 1;
    }

    fut_t *task = fut_submit(pool, twice, (void *)(intptr_t)21);
    fut_promise_t *p = fut_promise_new();
    fut_t *next = fut_then_on(pool, fut_promise_future(p), plus_one, NULL);
    fut_resolve(p, (void *)(intptr_t)41, NULL);
    fut_promise_release(p);

    void *a = NULL, *b = NULL;
    int rc_a = fut_get(task, FUT_S(5), &a);
    int rc_b = fut_get(next, FUT_S(5), &b);
    fut_release(task);
    fut_release(next);
    fut_executor_free(pool);

    printf("fut %s: task %d -> %ld, promise %d -> %ld\n", fut_version(), rc_a,
           (long)(intptr_t)a, rc_b, (long)(intptr_t)b);
    return rc_a == 0 && rc_b == 0 && (intptr_t)a == 42 && (intptr_t)b == 42 ? 0
                                                                            : 1;
}

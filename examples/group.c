/*
 * group.c - start five queries, give up on the first failure, and let no
 * query outlive the function that started them.
 *
 * Without a group, the function that returns on the first error leaves the
 * other four queries running, holding pointers into its frame.  In a task
 * group they are cancelled and waited for before fut_group_release
 * returns: queued ones never run, running ones see fut_cancel_requested.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <fut.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A stand-in for a blocking query: the key "bad" fails; others answer
 * after a few milliseconds, unless asked to stop. */
static void *query(fut_ctx_t *ctx, void *key)
{
    if (strcmp(key, "bad") == 0)
        return fut_fail(ctx, EIO, "query %s: connection reset", (char *)key);
    for (int ms = 0; ms < 20; ms++) {
        if (fut_cancel_requested(ctx))
            return fut_fail(ctx, ECANCELED, NULL);
        struct timespec t = {0, 1000000};
        nanosleep(&t, NULL);
    }
    return key;
}

/* All five answers into out[], or the first failure's code. */
static int fetch_all(fut_executor_t *pool, const char *keys[5],
                     const char *out[5])
{
    fut_group_t *g = fut_group_new(pool, FUT_GROUP_ALL);
    if (!g)
        return ENOMEM;
    for (int i = 0; i < 5; i++)
        fut_release(
            fut_group_submit_ex(g, query, (void *)keys[i], NULL, FUT_BLOCKING));
    fut_t *all = fut_group_close(g);
    void *v;
    int rc = fut_get(all, FUT_FOREVER, &v);
    if (rc == 0)
        for (int i = 0; i < 5; i++)
            out[i] = ((const char **)v)[i];
    else
        fprintf(stderr, "fetch_all: %s\n", fut_error(all)->message);
    fut_release(all);
    fut_group_release(g); /* every query has ended by now */
    return rc;
}

int main(void)
{
    fut_executor_t *pool;
    if (fut_pool_new(NULL, &pool) != 0)
        return 1;
    const char *good[5] = {"a", "b", "c", "d", "e"};
    const char *mixed[5] = {"a", "bad", "c", "d", "e"};
    const char *out[5];
    int rc1 = fetch_all(pool, good, out);
    if (rc1 == 0)
        printf("all five: %s %s %s %s %s\n", out[0], out[1], out[2], out[3],
               out[4]);
    int rc2 = fetch_all(pool, mixed, out);
    printf("with a bad key: %s\n", strerror(rc2));
    fut_executor_free(pool);
    return rc1 == 0 && rc2 == EIO ? 0 : 1;
}

/* loop_poll.c - hand results back to your own event loop.
 *
 * A program that owns a poll() loop fans three blocking "queries" out to a
 * thread pool, waits for all of them with a deadline, and gets the answer
 * back on the loop thread, where it may touch the program's state without
 * locks (asyncio's call_soon_threadsafe, done with a loop executor). */
#define _POSIX_C_SOURCE 200809L /* nanosleep, poll, pthread */

#include <fut.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct query {
    const char *table;
    int ms; /* how long the "database" takes */
};

/* The blocking call, on a pool worker.  The row is a malloc'ed string that
 * the future owns (fut_set_free). */
static void *run_query(fut_ctx_t *ctx, void *arg)
{
    const struct query *q = arg;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = q->ms * 1000000L};
    nanosleep(&ts, NULL);
    char *row = malloc(64);
    if (!row)
        return fut_fail(ctx, ENOMEM, "no memory for %s", q->table);
    snprintf(row, 64, "%s: %d rows", q->table, q->ms / 10);
    fut_set_free(ctx, free);
    return row;
}

/* Program state: only the loop thread touches it. */
static pthread_t loop_thread;
static int rows_shown;
static int off_loop; /* handlers that ran anywhere else */

/* On the loop thread: fut_when_all's value is the rows in query order. */
static void *show(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)arg;
    if (!pthread_equal(pthread_self(), loop_thread))
        off_loop++;
    char **rows = value;
    for (int i = 0; i < 3; i++, rows_shown++)
        printf("  %s\n", rows[i]);
    return NULL;
}

static void *show_error(fut_ctx_t *ctx, const fut_error_t *err, void *arg)
{
    (void)arg;
    if (!pthread_equal(pthread_self(), loop_thread))
        off_loop++;
    printf("  failed: %s\n",
           err->code == ETIMEDOUT ? "timed out" : strerror(err->code));
    return fut_fail(ctx, err->code,
                    "queries failed"); /* stay on the error path */
}

int main(void)
{
    fut_executor_t *pool, *loop;
    if (fut_pool_new(&(fut_pool_config_t){.threads = 3, .name = "db"}, &pool) ||
        fut_loop_new(&loop)) {
        fprintf(stderr, "cannot create the executors\n");
        return 1;
    }
    loop_thread = pthread_self();

    static const struct query queries[3] = {
        {"users", 80}, {"orders", 30}, {"items", 50}};
    fut_t *q[3];
    for (int i = 0; i < 3; i++)
        q[i] = fut_submit(pool, run_query, (void *)&queries[i]);

    /* All three within 5 s, then back to the loop thread for either outcome.
     * Each call consumes the future it is given. */
    fut_t *answer = fut_within(fut_when_all(q, 3), FUT_S(5));
    answer = fut_then_on(loop, answer, show, NULL);
    answer = fut_catch_on(loop, answer, show_error, NULL);

    /* The program's own loop: fut_loop_fd is readable while work is queued. */
    struct pollfd pfd = {.fd = fut_loop_fd(loop), .events = POLLIN};
    printf("waiting on the loop thread...\n");
    while (!fut_done(answer)) {
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        fut_loop_run_pending(loop); /* the handlers run here, on this thread */
    }

    int rc = fut_get(answer, 0, NULL);
    fut_release(answer);
    fut_executor_free(pool);
    fut_executor_free(loop);
    printf("%d rows, handlers off the loop thread: %d\n", rows_shown, off_loop);
    return rc == 0 && rows_shown == 3 && off_loop == 0 ? 0 : 1;
}

/* loop_libuv.c - hand results back to a libuv loop.
 *
 * The same program as loop_poll.c, driven by libuv: a uv_poll_t watches
 * fut_loop_fd and drains the loop executor whenever it becomes readable, so
 * fut's handlers run on the libuv thread like any other libuv callback. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, pthread_equal */

#include <fut.h>
#include <uv.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct query {
    const char *table;
    int ms;
};

/* The blocking call, on a pool worker. */
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

/* What the libuv callbacks need. */
struct app {
    fut_executor_t *loop; /* fut's loop executor */
    fut_t *answer;
    pthread_t uv_thread;
    int rows_shown;
    int off_loop;
};

static void *show(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    struct app *app = arg;
    if (!pthread_equal(pthread_self(), app->uv_thread))
        app->off_loop++;
    char **rows = value;
    for (int i = 0; i < 3; i++, app->rows_shown++)
        printf("  %s\n", rows[i]);
    return NULL;
}

static void *show_error(fut_ctx_t *ctx, const fut_error_t *err, void *arg)
{
    struct app *app = arg;
    if (!pthread_equal(pthread_self(), app->uv_thread))
        app->off_loop++;
    printf("  failed: %s\n",
           err->code == ETIMEDOUT ? "timed out" : strerror(err->code));
    return fut_fail(ctx, err->code, "queries failed");
}

/* libuv calls this when fut_loop_fd is readable: run what is queued, and
 * stop watching once the answer is in (uv_run then returns). */
static void on_readable(uv_poll_t *watch, int status, int events)
{
    (void)status;
    (void)events;
    struct app *app = watch->data;
    fut_loop_run_pending(app->loop);
    if (fut_done(app->answer))
        uv_close((uv_handle_t *)watch, NULL);
}

int main(void)
{
    struct app app = {.uv_thread = pthread_self()};
    fut_executor_t *pool;
    if (fut_pool_new(&(fut_pool_config_t){.threads = 3, .name = "db"}, &pool) ||
        fut_loop_new(&app.loop)) {
        fprintf(stderr, "cannot create the executors\n");
        return 1;
    }

    static const struct query queries[3] = {
        {"users", 80}, {"orders", 30}, {"items", 50}};
    fut_t *q[3];
    for (int i = 0; i < 3; i++)
        q[i] = fut_submit(pool, run_query, (void *)&queries[i]);
    fut_t *answer = fut_within(fut_when_all(q, 3), FUT_S(5));
    answer = fut_then_on(app.loop, answer, show, &app);
    app.answer = fut_catch_on(app.loop, answer, show_error, &app);

    uv_loop_t *uv = uv_default_loop();
    uv_poll_t watch;
    watch.data = &app;
    if (uv_poll_init(uv, &watch, fut_loop_fd(app.loop)) ||
        uv_poll_start(&watch, UV_READABLE, on_readable)) {
        fprintf(stderr, "cannot watch the loop executor's fd\n");
        return 1;
    }
    printf("running the libuv loop...\n");
    uv_run(uv, UV_RUN_DEFAULT); /* returns once the watch is closed */
    uv_loop_close(uv);

    int rc = fut_get(app.answer, 0, NULL);
    fut_release(app.answer);
    fut_executor_free(pool);
    fut_executor_free(app.loop);
    printf("%d rows, handlers off the libuv thread: %d\n", app.rows_shown,
           app.off_loop);
    return rc == 0 && app.rows_shown == 3 && app.off_loop == 0 ? 0 : 1;
}

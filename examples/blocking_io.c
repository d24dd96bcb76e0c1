/* blocking_io.c - wrap a blocking call as a future, wait with a timeout,
 * handle the error.  Reads two files on a thread pool: one that exists and
 * one that does not. */
#include <fut.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The blocking call, run on a pool worker.  On success the value is a
 * malloc'ed string the future owns (fut_set_free); on failure the future
 * rejects with errno and a message. */
static void *read_file(fut_ctx_t *ctx, void *arg)
{
    const char *path = arg;
    FILE *fp = fopen(path, "r");
    if (!fp)
        return fut_fail(ctx, errno, "open %s: %s", path, strerror(errno));
    char *buf = calloc(1, 4096);
    if (!buf) {
        fclose(fp);
        return fut_fail(ctx, ENOMEM, "no memory for %s", path);
    }
    size_t n = fread(buf, 1, 4095, fp);
    fclose(fp);
    buf[n] = '\0';
    fut_set_free(ctx, free); /* the future frees buf when it is freed */
    return buf;
}

int main(void)
{
    fut_executor_t *pool;
    int rc =
        fut_pool_new(&(fut_pool_config_t){.threads = 4, .name = "io"}, &pool);
    if (rc) {
        fprintf(stderr, "fut_pool_new: %s\n", strerror(rc));
        return 1;
    }

    const char *paths[] = {"/proc/self/status", "/no/such/file"};
    fut_t *reads[2];
    for (int i = 0; i < 2; i++)
        reads[i] = fut_submit(pool, read_file, (void *)paths[i]);

    int failures = 0;
    for (int i = 0; i < 2; i++) {
        void *text;
        rc = fut_get(reads[i], FUT_S(2), &text); /* wait at most 2 s */
        if (rc == 0) {
            printf("%s: %zu bytes, starts with \"%.4s\"\n", paths[i],
                   strlen(text), (char *)text);
        } else if (rc == FUT_TIMEDOUT) { /* our wait ran out, not the read */
            printf("%s: still reading after 2 s\n", paths[i]);
            fut_cancel(reads[i]);
            failures++;
        } else {
            /* rejected: the code and the task's message */
            printf("%s: failed (%d): %s\n", paths[i], rc,
                   fut_error(reads[i])->message);
            failures++;
        }
        fut_release(reads[i]); /* the text goes with the last reference */
    }
    fut_executor_free(pool);
    /* The demo expects exactly one failure: the missing file. */
    return failures == 1 ? 0 : 1;
}

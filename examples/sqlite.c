/*
 * sqlite.c - database queries as futures: one SQLite connection per pool
 * worker, opened by worker_init; a bad query's error comes back whole.
 *
 * worker_init runs on each worker before it takes work and learns its
 * worker's index (fut_pool_worker_index), so each worker opens its own
 * connection and never shares it.  A query is a task that runs on whichever
 * worker is free, with that worker's connection.  A failed query rejects
 * in SQLite's error domain: the caller gets SQLite's result code and
 * sqlite3_errmsg's text, which an errno code would garble (SQLITE_ERROR
 * is 1, the same number as EPERM).
 */
#define _POSIX_C_SOURCE 200809L

#include <fut.h>
#include <sqlite3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WORKERS = 2 };

static const char DB[] = "file:fut-example?mode=memory&cache=shared";
static sqlite3 *conns[WORKERS];

static int open_connection(void *arg)
{
    (void)arg;
    int i = fut_pool_worker_index();
    if (i < 0 || i >= WORKERS)
        return EINVAL; /* breaks the pool: every query then says so */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI;
    return sqlite3_open_v2(DB, &conns[i], flags, NULL) == SQLITE_OK ? 0 : EIO;
}

static void close_connection(void *arg)
{
    (void)arg;
    int i = fut_pool_worker_index();
    sqlite3_close(conns[i]);
    conns[i] = NULL;
}

/* The task: the first column of the first row, as a number. */
static void *query(fut_ctx_t *ctx, void *sql)
{
    sqlite3 *db = conns[fut_pool_worker_index()];
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        void *r = fut_fail_in(ctx, FUT_DOMAIN_SQLITE, sqlite3_errcode(db), "%s",
                              sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return r;
    }
    long long *n = malloc(sizeof *n);
    if (n)
        *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (!n)
        return fut_fail(ctx, ENOMEM, NULL);
    fut_set_free(ctx, free);
    return n;
}

int main(void)
{
    /* The database lives while one connection is open: the main thread's. */
    sqlite3 *setup;
    if (sqlite3_open_v2(DB, &setup,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(setup,
                     "CREATE TABLE t(x INTEGER);"
                     "INSERT INTO t VALUES (1), (2), (3), (4);",
                     NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "setup: %s\n", sqlite3_errmsg(setup));
        return 1;
    }

    fut_pool_config_t cfg = {0};
    cfg.threads = WORKERS;
    cfg.max_threads = WORKERS; /* one connection per worker, no extras */
    cfg.name = "sql";
    cfg.worker_init = open_connection;
    cfg.worker_exit = close_connection;
    fut_executor_t *pool;
    int rc = fut_pool_new(&cfg, &pool);
    if (rc) {
        fprintf(stderr, "fut_pool_new: %d\n", rc);
        return 1;
    }
    static const char *sql[] = {"SELECT count(*) FROM t",
                                "SELECT sum(x) FROM t",
                                "SELECT * FROM missing"};
    enum { N = sizeof sql / sizeof sql[0] };
    fut_t *rows[N];
    for (int i = 0; i < N; i++)
        rows[i] = fut_submit(pool, query, (void *)sql[i]);

    int ok = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        void *v;
        rc = fut_get(rows[i], FUT_FOREVER, &v);
        if (rc == 0) {
            printf("%-24s = %lld\n", sql[i], *(long long *)v);
            ok++;
        } else if (rc == FUT_EFOREIGN) {
            const fut_error_t *e = fut_error(rows[i]);
            printf("%-24s : SQLite error %d: %s\n", sql[i], e->code,
                   e->message);
            failed += e->domain == FUT_DOMAIN_SQLITE && e->code == SQLITE_ERROR;
        } else {
            printf("%-24s : failed (%d)\n", sql[i], rc);
        }
        fut_release(rows[i]);
    }
    fut_executor_free(pool);
    sqlite3_close(setup);
    return ok == 2 && failed == 1 ? 0 : 1;
}

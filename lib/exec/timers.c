/*
 * timers.c - fut_delay and fut_within, on fut's own timer executor.
 *
 * The timer thread (feat/timer.c) runs no user code: at a deadline it hands
 * the timer's future to an executor that settles it.  The default forms use
 * this one: a pool of one thread, started on first use, whose work is
 * declared blocking, so that a callback that blocks makes the pool start
 * another thread (up to 64, each retiring after a second idle) instead of
 * holding back the timers behind it.  Its workers hand what they cached to
 * the allocator's depot when they go idle, and fut_set_allocator waits for
 * them to be idle, so that switching allocators finds every block.  The
 * pool lives as long as the process; it is freed at exit, so that leak
 * checkers see a clean end.
 */
#include "exec/pool.h"
#include "feat/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

static fut_executor_t *timer_pool;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Before fut_set_allocator: until the pool is idle (its workers flushed
 * their caches as they went idle), at most about ten seconds, so that a
 * callback blocked for good cannot hang the switch. */
static void quiesce(void)
{
    for (int i = 0; i < 10000; i++) {
        fut_stats_t st;
        if (fut_executor_stats(timer_pool, &st) != 0 ||
            (st.queued == 0 && st.idle == st.threads))
            return;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

static void free_at_exit(void)
{
    fut_executor_t *ex = timer_pool;
    timer_pool = NULL;
    fut_executor_free(ex);
}

static void start(void)
{
    fut_pool_config_t cfg = {.threads = 1,
                             .max_threads = 64,
                             .keep_alive = FUT_S(1),
                             .name = "fut-timer"};
    if (fut__pool_new(&cfg, true, &timer_pool) != 0)
        return; /* the timer thread settles timers itself */
    fut__alloc_on_switch(quiesce);
    atexit(free_at_exit);
}

static fut_executor_t *executor(void)
{
    pthread_once(&once, start);
    return timer_pool;
}

fut_t *fut_delay(int64_t ns)
{
    return fut__timer_new(executor(), ns, NULL);
}

fut_t *fut_within(fut_t *f, int64_t ns)
{
    if (!f)
        return fut_rejected(EINVAL, "fut_within: the future is NULL");
    return fut__timer_new(executor(), ns, f);
}

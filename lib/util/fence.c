/*
 * fence.c - the lopsided StoreLoad fence (fence.h).
 */
#include "util/fence.h"

#include <pthread.h>

#if defined(FUT_HAVE_FUTEX) && !defined(FUT_PORTABLE)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#define HAVE_MEMBARRIER 1
#else
#define HAVE_MEMBARRIER 0
#endif

_Atomic bool fut__fence_on;

#if HAVE_MEMBARRIER
static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

/* On if the kernel has private expedited membarrier and lets this process
 * register for it (seccomp, an old kernel or valgrind may not). */
static void fence_register(void)
{
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    bool on = cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
              membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
    atomic_store(&fut__fence_on, on);
}

static void fence_atfork_child(void)
{
    /* A new process: its registration is its own. */
    atomic_store(&fut__fence_on, false);
    fence_register();
}

static void fence_once(void)
{
    fence_register();
    pthread_atfork(NULL, NULL, fence_atfork_child);
}
#endif

void fut__fence_init(void)
{
#if HAVE_MEMBARRIER
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fence_once);
#endif
}

bool fut__fence_heavy(void)
{
    atomic_thread_fence(memory_order_seq_cst);
#if HAVE_MEMBARRIER
    if (atomic_load(&fut__fence_on) &&
        membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
        /* Light sides switch to seq_cst from now on; one that ran before
         * may have been missed. */
        atomic_store(&fut__fence_on, false);
        return false;
    }
#endif
    return true;
}

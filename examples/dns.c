/*
 * dns.c - name lookups as futures: getaddrinfo on a pool, each with a
 * deadline, the resolver's own errors coming back whole.
 *
 * getaddrinfo blocks, so each lookup is submitted with FUT_BLOCKING: the
 * pool keeps its two workers runnable by starting extra threads while
 * lookups wait.  A failed lookup rejects in getaddrinfo's error domain, so
 * the caller gets the EAI_* code and gai_strerror's text, not an errno
 * value that would mean something else.  fut_within gives each lookup a
 * deadline and cancels the ones that miss it.  Works offline: "localhost"
 * and "127.0.0.1" resolve, the ".invalid" names (reserved, never
 * registered) fail with the resolver's code.
 */
#define _POSIX_C_SOURCE 200809L

#include <fut.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void free_addrinfo(void *res)
{
    freeaddrinfo(res);
}

/* The task: the address list of a name (freed with the future). */
static void *resolve(fut_ctx_t *ctx, void *name)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(name, "80", &hints, &res);
    if (rc == EAI_SYSTEM)
        return fut_fail(ctx, errno ? errno : EIO, "%s: %s", (char *)name,
                        strerror(errno));
    if (rc != 0)
        return fut_fail_in(ctx, FUT_DOMAIN_GETADDRINFO, rc, "%s: %s",
                           (char *)name, gai_strerror(rc));
    fut_set_free(ctx, free_addrinfo);
    return res;
}

static const char *first_address(const struct addrinfo *ai, char *buf,
                                 size_t len)
{
    const void *addr =
        ai->ai_family == AF_INET
            ? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
            : (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)
                  ->sin6_addr;
    return inet_ntop(ai->ai_family, addr, buf, (socklen_t)len);
}

int main(void)
{
    fut_pool_config_t cfg = {0};
    cfg.threads = 2;
    cfg.max_threads = 8;
    cfg.name = "dns";
    fut_executor_t *pool;
    int rc = fut_pool_new(&cfg, &pool);
    if (rc) {
        fprintf(stderr, "fut_pool_new: %s\n", strerror(rc));
        return 1;
    }
    static const char *names[] = {"localhost", "no-such-host.invalid",
                                  "127.0.0.1", "also-missing.invalid"};
    enum { N = sizeof names / sizeof names[0] };
    fut_t *lookups[N];
    for (int i = 0; i < N; i++)
        lookups[i] = fut_within(
            fut_submit_ex(pool, resolve, (void *)names[i], NULL, FUT_BLOCKING),
            FUT_S(3));

    int resolved = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        void *v;
        char buf[INET6_ADDRSTRLEN];
        rc = fut_get(lookups[i], FUT_FOREVER, &v);
        if (rc == 0) {
            printf("%-22s %s\n", names[i], first_address(v, buf, sizeof buf));
            resolved++;
        } else if (rc == FUT_EFOREIGN) {
            const fut_error_t *e = fut_error(lookups[i]);
            printf("%-22s resolver error %d (%s)\n", names[i], e->code,
                   e->message);
            failed++;
        } else if (rc == ETIMEDOUT) {
            printf("%-22s no answer within 3 s (lookup cancelled)\n", names[i]);
            failed++;
        } else {
            printf("%-22s failed: %s\n", names[i], strerror(rc));
        }
        fut_release(lookups[i]);
    }
    fut_executor_free(pool);
    /* The demo expects the two local names to resolve and the two
     * .invalid ones to fail cleanly. */
    return resolved == 2 && failed == 2 ? 0 : 1;
}

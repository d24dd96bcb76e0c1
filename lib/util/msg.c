/*
 * msg.c - error messages and the assertion failure path.
 *
 * A message is either owned by the future that carries it (allocated here)
 * or static (a string literal, or strerrordesc_np's table).  Stored with
 * its size in front so that the allocator gets back the size it gave.
 */
#include "util/msg.h"

#include "util/alloc.h"
#include "util/assert.h"

#include "fut.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void fut__assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "fut: internal invariant broken: %s (%s:%d)\n", what, file,
            line);
    abort();
}

const char *fut__code_message(int code)
{
    switch (code) {
    case ECANCELED:
        return "cancelled";
    case EPIPE:
        return "broken promise: released without being settled";
    case ESHUTDOWN:
        return "executor shut down";
    default:
        break;
    }
    const char *d = strerrordesc_np(code);
    return d ? d : "unknown error";
}

const char *fut__domain_message(int domain, int code)
{
    switch (domain) {
    case FUT_DOMAIN_ERRNO:
        return fut__code_message(code);
    case FUT_DOMAIN_GETADDRINFO:
        return gai_strerror(code);
    case FUT_DOMAIN_SQLITE:
        return "SQLite error (no message given)";
    default:
        return "error of the program's own domain (no message given)";
    }
}

static char *msg_alloc(size_t len)
{
    size_t *m = fut__alloc(sizeof(size_t) + len + 1);
    if (!m)
        return NULL;
    m[0] = len + 1;
    return (char *)(m + 1);
}

void fut__msg_free(char *s)
{
    if (!s)
        return;
    char *m = s - sizeof(size_t); /* the size prefix, read bytewise */
    size_t size;
    memcpy(&size, m, sizeof size);
    fut__free(m, sizeof(size_t) + size);
}

char *fut__msg_vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = msg_alloc((size_t)n);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *fut__msg_format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = fut__msg_vformat(fmt, ap);
    va_end(ap);
    return s;
}

char *fut__msg_copy(const char *src)
{
    size_t n = strlen(src);
    char *s = msg_alloc(n);
    if (s)
        memcpy(s, src, n + 1);
    return s;
}

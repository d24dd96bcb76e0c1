/*
 * error.c - error messages, the immortal ENOMEM future, and the futures
 * that are born settled (fut_resolved, fut_rejected).
 *
 * A message is either owned by its future (allocated here, flagged
 * FUT__MSG_OWNED) or static (a string literal or strerrordesc_np's table).
 * When a message cannot be allocated the code survives with its static
 * description: an error is never lost for want of memory.
 */
#include "future.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

fut_t fut__enomem = {
    .state = FUT_REJECTED | FUT__IMMORTAL | FUT__OBSERVED,
    .refs = 1,
    .cbs = FUT__CBS_CLOSED,
    .u.err = {.code = ENOMEM, .message = "out of memory"},
};

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

/* Stored with its length in front so fut__msg_free can hand the allocator
 * the size it asked for. */
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
    size_t *m = (size_t *)s - 1;
    fut__free(m, sizeof(size_t) + m[0]);
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

char *fut__msg_copy(const char *src)
{
    size_t n = strlen(src);
    char *s = msg_alloc(n);
    if (s)
        memcpy(s, src, n + 1);
    return s;
}

fut_t *fut_resolved(void *value, fut_free_fn free_value)
{
    fut_t *f = fut__new(FUT__KIND_VALUE, 1);
    if (!f) {
        if (free_value)
            free_value(value);
        return &fut__enomem;
    }
    FUT__ASSERT(fut__claim(f));
    fut__fulfil(f, value, free_value);
    return f;
}

fut_t *fut_rejected(int code, const char *message)
{
    if (code <= 0) {
        code = EINVAL;
        message = "fut_rejected: the code must be a positive errno value";
    }
    fut_t *f = fut__new(FUT__KIND_VALUE, 1);
    if (!f)
        return &fut__enomem;
    FUT__ASSERT(fut__claim(f));
    if (message)
        fut__fail_owned(f, code, fut__msg_copy(message));
    else
        fut__fail_static(f, code, NULL);
    return f;
}

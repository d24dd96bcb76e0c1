/*
 * msg.h - error messages (private; util layer).
 *
 * A message fut formats or copies lives in memory from the allocator,
 * with its length in front, so that fut__msg_free can hand the allocator
 * the size it asked for.  NULL means no memory: callers then fall back to
 * fut__code_message, a static description of the code, so an error is
 * never lost for want of memory.
 */
#ifndef FUT_UTIL_MSG_H
#define FUT_UTIL_MSG_H

#include <stdarg.h>

char *fut__msg_vformat(const char *fmt, va_list ap);
char *fut__msg_format(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
char *fut__msg_copy(const char *s);
void fut__msg_free(char *s);

/* A static description of an errno code (fut's own codes first). */
const char *fut__code_message(int code);

/* A static description of a code of any domain (fut.h, FUT_DOMAIN_*):
 * errno's and getaddrinfo's own words, else a generic one. */
const char *fut__domain_message(int domain, int code);

#endif /* FUT_UTIL_MSG_H */

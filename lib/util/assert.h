/*
 * assert.h - the one way fut stops on a broken internal invariant
 * (private; util layer).
 *
 * FUT__ASSERT(cond) checks a condition without side effects; a build may
 * compile it out (-DFUT_NO_ASSERT), so nothing may depend on its argument
 * being evaluated.  FUT__MUST(expr) evaluates expr exactly once in every
 * build and aborts if it is false: it is for calls whose success is an
 * invariant (a transition only the calling thread can make, a push into a
 * ring known to have room).  An illegal state is a bug that aborts with a
 * message, never one that is silently ignored.
 */
#ifndef FUT_UTIL_ASSERT_H
#define FUT_UTIL_ASSERT_H

_Noreturn void fut__assert_fail(const char *what, const char *file, int line);

#define FUT__MUST(expr)                                                        \
    do {                                                                       \
        if (__builtin_expect(!(expr), 0))                                      \
            fut__assert_fail(#expr, __FILE__, __LINE__);                       \
    } while (0)

#ifdef FUT_NO_ASSERT
#define FUT__ASSERT(cond) ((void)0)
#else
#define FUT__ASSERT(cond) FUT__MUST(cond)
#endif

#endif /* FUT_UTIL_ASSERT_H */

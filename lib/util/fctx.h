/*
 * fctx.h - switching stacks: the machine context of a fiber (private; util
 * layer).
 *
 * A context is the stack pointer of a suspended flow of control; the
 * callee-saved registers (and the floating-point control words) sit on that
 * stack, pushed by fut__fctx_switch.  On x86-64 the switch is a few
 * instructions of assembly; elsewhere, or when the build forces it
 * (FUT_FIBER_UCONTEXT), ucontext's swapcontext does it, slower (it saves
 * the signal mask with a system call) but portable.
 */
#ifndef FUT_UTIL_FCTX_H
#define FUT_UTIL_FCTX_H

#include <stddef.h>

#if (defined(__x86_64__) || defined(__aarch64__)) &&                         \
    !defined(FUT_FIBER_UCONTEXT)
#define FUT__FCTX_ASM 1
typedef struct fut__fctx {
    void *sp;
} fut__fctx_t;
#else
#include <ucontext.h>
typedef struct fut__fctx {
    ucontext_t uc;
} fut__fctx_t;
#endif

/* Prepares ctx so that the first switch into it runs entry(arg) on the
 * stack [base, base + size).  entry must never return: it ends by
 * switching away for good. */
void fut__fctx_make(fut__fctx_t *ctx, void *base, size_t size,
                    void (*entry)(void *), void *arg);

/* Saves the running context in *from and continues in *to. */
void fut__fctx_switch(fut__fctx_t *from, fut__fctx_t *to);

/* "asm" or "ucontext": which mechanism this build switches with. */
const char *fut__fctx_kind(void);

#endif /* FUT_UTIL_FCTX_H */

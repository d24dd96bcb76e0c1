/*
 * fctx.c - the stack switch (fctx.h).
 *
 * x86-64 (System V): fut__fctx_switch(from, to) pushes the callee-saved
 * registers (rbp, rbx, r12-r15) and the x87 and SSE control words, stores
 * rsp in from->sp, loads to->sp, and pops the same in reverse, so the
 * `ret` continues wherever `to` was suspended.  A new context is a stack
 * laid out as if it had been suspended there: its saved r12 and r13 hold
 * arg and entry, and its return address is fctx_start, which calls
 * entry(arg) with the stack 16-byte aligned as the ABI wants.
 */
#include "util/fctx.h"

#include <stdint.h>
#include <string.h>

#ifdef FUT__FCTX_ASM

__asm__(".text\n"
        ".globl fut__fctx_switch\n"
        ".hidden fut__fctx_switch\n"
        ".type fut__fctx_switch,@function\n"
        "fut__fctx_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    subq $8, %rsp\n"
        "    fnstcw (%rsp)\n"
        "    stmxcsr 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq (%rsi), %rsp\n"
        "    fldcw (%rsp)\n"
        "    ldmxcsr 4(%rsp)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size fut__fctx_switch,.-fut__fctx_switch\n"
        "fut__fctx_start:\n"
        "    movq %r12, %rdi\n"
        "    callq *%r13\n"
        "    ud2\n");

void fut__fctx_start(void);

void fut__fctx_make(fut__fctx_t *ctx, void *base, size_t size,
                    void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)base + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 80); /* 16-aligned: see the layout */
    uint16_t x87 = 0;
    uint32_t sse = 0;
    __asm__ volatile("fnstcw %0" : "=m"(x87));
    __asm__ volatile("stmxcsr %0" : "=m"(sse));
    sp[0] = 0; /* the x87 control word at +0, MXCSR at +4 */
    memcpy(&sp[0], &x87, sizeof x87);
    memcpy((char *)&sp[0] + 4, &sse, sizeof sse);
    sp[1] = 0;                          /* r15 */
    sp[2] = 0;                          /* r14 */
    sp[3] = (uint64_t)(uintptr_t)entry; /* r13 */
    sp[4] = (uint64_t)(uintptr_t)arg;   /* r12 */
    sp[5] = 0;                          /* rbx */
    sp[6] = 0;                          /* rbp: the end of the frames */
    sp[7] = (uint64_t)(uintptr_t)fut__fctx_start; /* where `ret` goes */
    ctx->sp = sp;
}

const char *fut__fctx_kind(void)
{
    return "asm";
}

#else /* ucontext */

/* makecontext passes int arguments only: the pointer goes in two halves. */
static void start(int hi, int lo, int ehi, int elo)
{
    uintptr_t a = ((uintptr_t)(unsigned)hi << 32) | (unsigned)lo;
    uintptr_t e = ((uintptr_t)(unsigned)ehi << 32) | (unsigned)elo;
    void (*entry)(void *);
    memcpy(&entry, &e, sizeof entry);
    entry((void *)a);
}

void fut__fctx_make(fut__fctx_t *ctx, void *base, size_t size,
                    void (*entry)(void *), void *arg)
{
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = base;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    uintptr_t a = (uintptr_t)arg, e;
    memcpy(&e, &entry, sizeof e);
    makecontext(&ctx->uc, (void (*)(void))start, 4, (int)(a >> 32),
                (int)(a & 0xffffffffu), (int)(e >> 32), (int)(e & 0xffffffffu));
}

void fut__fctx_switch(fut__fctx_t *from, fut__fctx_t *to)
{
    swapcontext(&from->uc, &to->uc);
}

const char *fut__fctx_kind(void)
{
    return "ucontext";
}

#endif

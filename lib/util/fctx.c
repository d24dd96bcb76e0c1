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
 *
 * AArch64 (AAPCS64): the same in a 176-byte frame: x19-x28, the frame
 * pointer x29 and the link register x30, the low halves d8-d15 of v8-v15
 * (the callee-saved part of the vector registers) and FPCR; sp moves to
 * `to`'s frame and `ret` returns through its restored x30.  A new context's
 * frame holds arg in x19, entry in x20 and fctx_start in x30.
 */
#include "util/fctx.h"

#include <stdint.h>
#include <string.h>

#if defined(FUT__FCTX_ASM) && defined(__aarch64__)

__asm__(".text\n"
        ".globl fut__fctx_switch\n"
        ".hidden fut__fctx_switch\n"
        ".type fut__fctx_switch,%function\n"
        ".p2align 4\n"
        "fut__fctx_switch:\n"
        "    sub sp, sp, #176\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mrs x9, fpcr\n"
        "    str x9, [sp, #160]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        "    ldr x9, [x1]\n"
        "    mov sp, x9\n"
        "    ldr x9, [sp, #160]\n"
        "    msr fpcr, x9\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    add sp, sp, #176\n"
        "    ret\n"
        ".size fut__fctx_switch,.-fut__fctx_switch\n"
        /* A global (hidden) symbol: the C code takes its address, which a
         * local label in this block did not give right (it read as
         * fut__fctx_switch's). */
        ".globl fut__fctx_start\n"
        ".hidden fut__fctx_start\n"
        ".type fut__fctx_start,%function\n"
        "fut__fctx_start:\n"
        "    mov x0, x19\n"
        "    blr x20\n"
        "    brk #0\n"
        ".size fut__fctx_start,.-fut__fctx_start\n");

void fut__fctx_start(void);

void fut__fctx_make(fut__fctx_t *ctx, void *base, size_t size,
                    void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)base + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 176); /* the frame: see above */
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)arg;              /* x19 */
    sp[1] = (uint64_t)(uintptr_t)entry;            /* x20 */
    sp[10] = 0;                                    /* x29: end of frames */
    sp[11] = (uint64_t)(uintptr_t)fut__fctx_start; /* x30: where `ret` goes */
    sp[20] = fpcr;
    ctx->sp = sp;
}

const char *fut__fctx_kind(void)
{
    return "asm";
}

#elif defined(FUT__FCTX_ASM)

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

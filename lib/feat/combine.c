/*
 * combine.c - the when_* family: all, all_settled, any, first, some.
 *
 * One block per combinator holds everything: a slot (an embedded callback
 * node) per input, the input references, and the result's value area.  Each
 * input gets its slot pushed on its callback stack (no allocation per
 * input); when the input settles its dispatcher calls slot_fired.  So a
 * when_all of n inputs costs two allocations (result future, block)
 * whatever n is, and settling runs inside the inputs' dispatchers, through
 * the trampoline: no recursion however many inputs.
 *
 * Deciding (concurrencpp's "first CAS wins").  The block holds one
 * reference to the result future R in `result`.  The slot that decides the
 * outcome takes it with an atomic exchange, so exactly one slot decides;
 * it then claims R (without waiting: if fut_cancel claimed R first, R is
 * cancelled and the slot just lets go).  Losers detach cleanly: their slots
 * still fire later and only drop their block reference.
 *
 * Block references: one per slot that has not fired, plus one owned by R
 * while R is pending (R->u.pending points at the block).  Whoever settles R
 * takes that one over: a fulfilled R keeps it as long as its value (which
 * lives in the block); a rejected or cancelled R drops it.  The last
 * reference releases the inputs and frees the block.
 *
 * Memory ordering.  Each slot writes its own entry of the value area
 * (values[i], or the any entry it picked) before an acq_rel RMW on a
 * counter (remaining, written); the slot whose RMW completes the count
 * therefore sees every other slot's entry, and it publishes R with the
 * release CAS of fut__fulfil, so readers of R's value see them too.  The
 * `picked` counter of some only hands out distinct entries (relaxed): the
 * ordering comes from `written`.  `rejected` is acq_rel for the same
 * reason as the others (its last increment decides).  The exchange on
 * `result` is acq_rel: whoever takes R sees what the block's creator
 * wrote.  The block's reference count is dropped with acq_rel, so the
 * freer sees every slot's writes.  No lock is taken.
 */
#include "feat/combine.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct when {
    _Atomic size_t refs;
    _Atomic size_t remaining; /* inputs not yet fulfilled (all, settled) */
    _Atomic size_t rejected;  /* rejected or cancelled inputs */
    _Atomic size_t picked;    /* some: entries handed out */
    _Atomic size_t written;   /* some: entries written */
    fut_t *_Atomic result;    /* R, until the deciding slot takes it */
    int kind;
    unsigned flags;
    size_t n, k;
    size_t size;       /* bytes, for the allocator */
    fut_t **inputs;    /* n references */
    void **values;     /* all: n values */
    fut_any_t *any;    /* any, first: 1 entry; some: k entries */
    fut__cb_t slots[]; /* n slots, then the areas above */
} when_t;

/* --- the block -------------------------------------------------------- */

/* Layout: the header, n slots, then the areas, each preceded by one word
 * that holds the block pointer, so that a value destructor handed only the
 * area (the result's value) finds its block: [w] inputs[n] [w] values[n]
 * [w] any[k]. */
static when_t *block_new(int kind, size_t n, size_t k)
{
    size_t nany = kind == FUT_WHEN_SOME                              ? k
                  : (kind == FUT_WHEN_ANY || kind == FUT_WHEN_FIRST) ? 1
                                                                     : 0;
    size_t nvalues = kind == FUT_WHEN_ALL ? n : 0;
    if (n > (SIZE_MAX / 2 - sizeof(when_t)) / 64)
        return NULL;
    size_t size = sizeof(when_t) + n * sizeof(fut__cb_t) +
                  3 * sizeof(when_t *) + n * sizeof(fut_t *) +
                  nvalues * sizeof(void *) + nany * sizeof(fut_any_t);
    when_t *w = fut__alloc(size);
    if (!w)
        return NULL;
    memset(w, 0, size);
    w->size = size;
    w->kind = kind;
    w->n = n;
    w->k = k;
    when_t **p = (when_t **)(w->slots + n);
    *p++ = w;
    w->inputs = (fut_t **)p;
    p += n;
    *p++ = w;
    w->values = (void **)p;
    p += nvalues;
    *p++ = w;
    w->any = (fut_any_t *)p;
    atomic_init(&w->refs, n + 1);
    atomic_init(&w->remaining, n);
    return w;
}

static void block_release(when_t *w)
{
    if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < w->n; i++)
        fut_release(w->inputs[i]);
    fut__free(w, w->size);
}

/* --- settling R ------------------------------------------------------- */

static void value_free(void *value);

static void cancel_losers(when_t *w)
{
    if (!(w->flags & FUT_CANCEL_LOSERS))
        return;
    for (size_t i = 0; i < w->n; i++)
        if (!fut_done(w->inputs[i]))
            fut__cancel_unshared(w->inputs[i]);
}

/* R fulfils with a value inside the block: R's block reference goes with
 * the value and comes back through value_free. */
static void fulfil_r(when_t *w, fut_t *r, void *value)
{
    if (value) {
        fut__fulfil(r, value, value_free);
    } else {
        fut__fulfil(r, NULL, NULL);
        block_release(w);
    }
    fut_release(r);
    cancel_losers(w);
}

static void reject_r(when_t *w, fut_t *r, fut_t *like)
{
    fut__settle_like(r, like);
    block_release(w);
    fut_release(r);
    cancel_losers(w);
}

static void value_free(void *value)
{
    block_release(((when_t **)value)[-1]);
}

/* --- slots: one policy per combinator -------------------------------- */

/* Input i settled (ok: fulfilled).  Each policy decides R when its rule
 * says so; the slot's block reference is dropped by slot_fired. */

static void all_fired(when_t *w, size_t i, fut_t *in, bool ok)
{
    fut_t *r;
    if (!ok) {
        if ((r = fut__decide(&w->result)))
            reject_r(w, r, in); /* the first rejection ($.when) */
        return;
    }
    w->values[i] = in->u.ok.value;
    if (atomic_fetch_sub_explicit(&w->remaining, 1, memory_order_acq_rel) ==
            1 &&
        (r = fut__decide(&w->result)))
        fulfil_r(w, r, w->values);
}

static void all_settled_fired(when_t *w, size_t i, fut_t *in, bool ok)
{
    (void)i, (void)in, (void)ok;
    fut_t *r;
    if (atomic_fetch_sub_explicit(&w->remaining, 1, memory_order_acq_rel) ==
            1 &&
        (r = fut__decide(&w->result)))
        fulfil_r(w, r, w->inputs);
}

/* any: the first to fulfil wins; rejects when every input rejected.
 * first: the first to settle wins, either way. */
static void any_fired(when_t *w, size_t i, fut_t *in, bool ok)
{
    fut_t *r;
    if (ok || w->kind == FUT_WHEN_FIRST) {
        if (!(r = fut__decide(&w->result)))
            return;
        if (!ok) {
            reject_r(w, r, in);
            return;
        }
        w->any->index = i;
        w->any->value = in->u.ok.value;
        fulfil_r(w, r, w->any);
        return;
    }
    size_t rejected =
        atomic_fetch_add_explicit(&w->rejected, 1, memory_order_acq_rel) + 1;
    if (rejected == w->n && (r = fut__decide(&w->result)))
        reject_r(w, r, in); /* every input rejected: the last one */
}

/* some: the first k to fulfil, in the order they fulfilled; rejects as
 * soon as k can no longer be reached. */
static void some_fired(when_t *w, size_t i, fut_t *in, bool ok)
{
    fut_t *r;
    if (!ok) {
        size_t rejected =
            atomic_fetch_add_explicit(&w->rejected, 1, memory_order_acq_rel) +
            1;
        if (w->n - rejected < w->k && (r = fut__decide(&w->result)))
            reject_r(w, r, in);
        return;
    }
    /* `picked` hands out entries, `written` counts them filled in: the
     * one that fills the k-th entry, whichever it is, decides. */
    size_t at = atomic_fetch_add_explicit(&w->picked, 1, memory_order_relaxed);
    if (at >= w->k)
        return;
    w->any[at].index = i;
    w->any[at].value = in->u.ok.value;
    if (atomic_fetch_add_explicit(&w->written, 1, memory_order_acq_rel) + 1 ==
            w->k &&
        (r = fut__decide(&w->result)))
        fulfil_r(w, r, w->any);
}

typedef void (*policy_fn)(when_t *w, size_t i, fut_t *in, bool ok);

static const policy_fn policies[] = {
    [FUT_WHEN_ALL] = all_fired,   [FUT_WHEN_ALL_SETTLED] = all_settled_fired,
    [FUT_WHEN_ANY] = any_fired,   [FUT_WHEN_FIRST] = any_fired,
    [FUT_WHEN_SOME] = some_fired,
};

static void slot_fired(fut_t *in, void *node)
{
    fut__cb_t *slot = node;
    when_t *w = slot->arg;
    bool ok = (fut__load(in) & FUT__STATE_MASK) == FUT_FULFILLED;
    if (!ok)
        fut__observe(in); /* the combinator read the error */
    policies[w->kind](w, (size_t)(slot - w->slots), in, ok);
    block_release(w);
}

static void when_cancel(fut_t *r)
{
    /* r is claimed by fut_cancel: its block reference is ours now. */
    when_t *w = r->u.pending;
    fut_t *mine =
        atomic_exchange_explicit(&w->result, NULL, memory_order_acq_rel);
    fut_release(mine); /* the block's reference to r; the caller has one */
    for (size_t i = 0; i < w->n; i++)
        if (!fut_done(w->inputs[i]))
            fut__cancel_unshared(w->inputs[i]);
    block_release(w);
}

const fut__kind_ops_t fut__when_kind = {
    .name = "combinator",
    .size = sizeof(struct fut),
    .cancel = when_cancel,
};

/* --- construction ----------------------------------------------------- */

static const char *const names[] = {
    [FUT_WHEN_ALL] = "fut_when_all",
    [FUT_WHEN_ALL_SETTLED] = "fut_when_all_settled",
    [FUT_WHEN_ANY] = "fut_when_any",
    [FUT_WHEN_FIRST] = "fut_when_first",
    [FUT_WHEN_SOME] = "fut_when_some",
};

/* The answer when nothing needs waiting for: k of n unreachable, a race
 * or an `any` without inputs (rejected), or all of nothing and 0 of n
 * (fulfilled). */
static fut_t *settled_now(int kind, size_t n, size_t k)
{
    char msg[64];
    if (kind == FUT_WHEN_SOME && k > n) {
        snprintf(msg, sizeof msg, "%s: k is larger than n", names[kind]);
        return fut_rejected(EINVAL, msg);
    }
    if (kind == FUT_WHEN_ANY || kind == FUT_WHEN_FIRST) {
        snprintf(msg, sizeof msg, "%s: no inputs", names[kind]);
        return fut_rejected(EINVAL, msg);
    }
    return fut_resolved(NULL, NULL);
}

fut_t *fut_when_ex(int kind, fut_t **fs, size_t n, size_t k, unsigned flags)
{
    bool bad = (kind < FUT_WHEN_ALL || kind > FUT_WHEN_SOME) || (!fs && n);
    if (bad || (kind == FUT_WHEN_SOME && (k > n || k == 0)) || n == 0) {
        for (size_t i = 0; fs && i < n; i++)
            fut_release(fs[i]);
        if (bad)
            return fut_rejected(EINVAL, "fut_when_ex: bad arguments");
        return settled_now(kind, n, k);
    }
    when_t *w = block_new(kind, n, k);
    fut_t *r = w ? fut__new(FUT__KIND_WHEN, 2) : NULL; /* caller's, block's */
    if (!r) {
        if (w)
            fut__free(w, w->size);
        for (size_t i = 0; i < n; i++)
            fut_release(fs[i]);
        return &fut__enomem;
    }
    w->flags = flags;
    r->u.pending = w;
    atomic_init(&w->result, r);
    for (size_t i = 0; i < n; i++)
        w->inputs[i] =
            fs[i] ? fs[i] : fut_rejected(EINVAL, "fut_when: a NULL input");
    for (size_t i = 0; i < n; i++) {
        fut__cb_t *slot = &w->slots[i];
        slot->fn = slot_fired;
        slot->arg = w;
        if (!fut__cbs_push(w->inputs[i], (uintptr_t)slot | FUT__TAG_SLOT))
            slot_fired(w->inputs[i], slot);
    }
    return r;
}

fut_t *fut_when_all(fut_t **fs, size_t n)
{
    return fut_when_ex(FUT_WHEN_ALL, fs, n, 0, 0);
}

fut_t *fut_when_all_settled(fut_t **fs, size_t n)
{
    return fut_when_ex(FUT_WHEN_ALL_SETTLED, fs, n, 0, 0);
}

fut_t *fut_when_any(fut_t **fs, size_t n)
{
    return fut_when_ex(FUT_WHEN_ANY, fs, n, 0, 0);
}

fut_t *fut_when_first(fut_t **fs, size_t n)
{
    return fut_when_ex(FUT_WHEN_FIRST, fs, n, 0, 0);
}

fut_t *fut_when_some(fut_t **fs, size_t n, size_t k)
{
    return fut_when_ex(FUT_WHEN_SOME, fs, n, k, 0);
}

/*
 * test_model.c - a model-based randomized test.  Each round builds a random
 * graph of futures through the public API (promises, pool, inline and loop
 * tasks, inline and _on continuations, combinators, fut_within, fut_delay,
 * constants) and acts on it (settles, broken promises, cancels, releases,
 * polls, executor shutdowns), some of it from a helper thread that races
 * the test thread.  A done-callback registered on every node the moment it
 * is made records what the node became.  At the end of the round the model
 * computes, node by node in creation order, the set of outcomes that the
 * documented semantics allow given what the node's inputs became and what
 * the racing operations reported (fut_cancel's return value, fut_resolve's
 * return code, whether a handler ran and what it saw), and checks that the
 * recorded outcome is in it.  It also checks that every callback, handler,
 * free_arg and value destructor ran exactly once.
 *
 * A case prints "seed=N"; FUT_TEST_SEED=N replays it (round i of a case
 * uses seed + i, and a failure names the round's seed; FUT_MODEL_TRACE=1
 * prints each round's seed as it starts).  Thread timing is not replayed,
 * only the operations.
 *
 * The operations that hit the defects this model found, or was written
 * against, stay behind switches: compile-time macros that now default to 0
 * (exercise the operation), since the library is fixed; build with
 * -DFUT_MODEL_AVOID_...=1 to leave one out again.  The switches and the
 * defects they guarded:
 *   FUT_MODEL_AVOID_CANCEL_RECURSION: fut_cancel on the tail of a long
 *     chain of pending continuations recurses once per link (stack
 *     overflow).  Off: one round in eight cancels the tail of a chain of
 *     100,000 on a thread with a 1 MiB stack.
 *   FUT_MODEL_AVOID_FREE_WITH_PENDING_ON: fut_executor_free while an _on
 *     continuation on that executor still waits for its input is a
 *     use-after-free when the input settles.  Off: the second pool may be
 *     freed in the middle of a round.
 *   FUT_MODEL_AVOID_SHUTDOWN_REJECTS_ON: a queued _on continuation that a
 *     FUT_SHUTDOWN_CANCEL_PENDING shutdown rejects has its argument called
 *     as a function.  Off: the second pool and the loop may be shut down
 *     with FUT_SHUTDOWN_CANCEL_PENDING in the middle of a round.
 *   FUT_MODEL_AVOID_SHUTDOWN_STRANDS_QUEUED: a task queued on an idle pool
 *     right before a plain fut_executor_shutdown may never run nor settle
 *     (the worker's last look for work came before the task, and it exits
 *     on seeing the pool closed without looking again).  Off: the second
 *     pool (one worker) may be shut down in the middle of a round.  On,
 *     only the loop executor is, which covers ESHUTDOWN refusals.
 *   FUT_MODEL_AVOID_WITHIN_TIMER_FIRST: fut_within arms its timer before
 *     it looks at its input, so an input that had already settled (and
 *     run its callbacks) can still lose to the timer and the result
 *     rejects ETIMEDOUT (seen with 0 ns).  On: the model accepts that.
 *     Off: the model insists on the input's outcome.
 */
#include "test_util.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUT_MODEL_AVOID_CANCEL_RECURSION
#define FUT_MODEL_AVOID_CANCEL_RECURSION 0
#endif
#ifndef FUT_MODEL_AVOID_FREE_WITH_PENDING_ON
#define FUT_MODEL_AVOID_FREE_WITH_PENDING_ON 0
#endif
#ifndef FUT_MODEL_AVOID_SHUTDOWN_REJECTS_ON
#define FUT_MODEL_AVOID_SHUTDOWN_REJECTS_ON 0
#endif
#ifndef FUT_MODEL_AVOID_SHUTDOWN_STRANDS_QUEUED
#define FUT_MODEL_AVOID_SHUTDOWN_STRANDS_QUEUED 0
#endif
#ifndef FUT_MODEL_AVOID_WITHIN_TIMER_FIRST
#define FUT_MODEL_AVOID_WITHIN_TIMER_FIRST 0
#endif

Suite *fut_test_model_suite(void);

/* ------------------------------------------------------------ the model */

enum { MAXIN = 4 };

typedef enum nkind {
    N_PROMISE,
    N_CONST,
    N_TASK,
    N_THEN, /* then, catch, then_catch (inline, _on or _ex) */
    N_FINALLY,
    N_WHEN,
    N_WITHIN,
    N_DELAY,
} nkind_t;

/* What a task or handler does when it runs. */
typedef enum hmode {
    H_VALUE,    /* return a new value */
    H_FAIL,     /* fut_fail with a code */
    H_FAIL_RET, /* fut_fail, then return a value anyway (destroyed) */
    H_ADOPT,    /* fut_adopt an older node */
    H_CHECK,    /* poll fut_cancel_requested; fail ECANCELED if asked */
    H_RETHROW,  /* catch only: fail with the error's own code */
    NMODES
} hmode_t;

/* Executors a node may run on. */
enum { EX_NONE = -1, EX_POOL_A, EX_POOL_B, EX_INLINE, EX_LOOP, NEX };

typedef struct outcome {
    int st;   /* fut_state_t */
    int code; /* REJECTED, CANCELLED */
    int id;   /* FULFILLED: value id, 0 for NULL, -1 for a combinator's */
} outcome_t;

typedef struct round round_t;

/* The argument of a task or handler: what to do, and what it saw. */
typedef struct harg {
    round_t *r;
    int node;
    int mode;
    int code;         /* H_FAIL, H_FAIL_RET */
    int vid;          /* H_VALUE, H_CHECK, H_FAIL_RET, catch recover */
    fut_t *adopt;     /* H_ADOPT: a reference, consumed or released */
    int adopt_node;   /* H_ADOPT: the node adopted */
    atomic_int ran;   /* times the function ran */
    atomic_int freed; /* times free_arg ran */
    atomic_int saw_cancel;
    atomic_int seen_st; /* the input state the handler saw */
    atomic_int seen_id; /* the value id (then) or code (catch) it saw */
} harg_t;

typedef struct node {
    nkind_t kind;
    int ex;           /* EX_* for tasks and continuations, else EX_NONE */
    fut_t *f;         /* the model's handle, or NULL once dropped */
    fut_t *raw;       /* the future's address, for identity checks only */
    fut_promise_t *p; /* the model's writer reference (promises) */
    int nin, in[MAXIN];
    fut_t *in_raw[MAXIN];
    /* The input had settled and finished running its callbacks before
     * this node was made, so the library looked at it at once, in input
     * order (see settled_probe). */
    bool in_done[MAXIN];
    atomic_int probe[MAXIN];
    int when_kind, k;
    int64_t ns; /* N_WITHIN, N_DELAY */
    unsigned flags;
    bool on_value, on_error; /* N_THEN: which handlers exist */
    bool ex_form;            /* made with a free_arg (harg is heap) */
    harg_t *h;               /* task or handler argument, or NULL */
    outcome_t expect;        /* N_CONST: the outcome it was made with */
    bool b_shut_before;      /* its executor was shut down before */
    bool shut_cancel;        /* a CANCEL_PENDING shutdown may have hit it */
    bool shut_any;           /* its executor was shut down meanwhile */
    bool exposed;            /* a cancellation may have reached it */
    bool exposed_any_time;   /* ... at a time the model does not know */
    atomic_int cancel_true, cancel_false;
    /* Promises: the settle that won, as its caller reported. */
    atomic_int won;
    outcome_t won_out;
    /* The record, written by the done-callback. */
    atomic_int rec_calls, rec_freed, rec_done;
    outcome_t got;
    int err_bad; /* the callback saw an inconsistency: a reason code */
    int rec_n;   /* combinators: entries recorded */
    int rec_idx[MAXIN], rec_id[MAXIN], rec_st[MAXIN];
} node_t;

/* A value.  The magic word tells it from a combinator's value (an array
 * that a continuation may pass on or a finally handler may see). */
typedef struct mval {
    uint64_t magic;
    round_t *r;
    int id;
} mval_t;

#define MVAL_MAGIC UINT64_C(0x6d6f64656c76616c)

/* An action the helper thread performs, racing the test thread. */
typedef enum act {
    A_RESOLVE,
    A_REJECT,
    A_RELEASE_PROMISE,
    A_CANCEL,
    A_RELEASE,
    A_STOP
} act_t;

typedef struct action {
    act_t what;
    int node;
    int arg;
    fut_promise_t *p; /* a writer reference the action owns */
    fut_t *f;         /* a future reference the action owns */
} action_t;

struct round {
    unsigned seed, rng;
    int maxnodes, nnodes;
    node_t *nodes;
    int *held; /* indexes of nodes whose handle the model holds */
    int nheld;
    int maxvals;
    atomic_int nvals;
    atomic_int *vfree, *vmade;
    atomic_int bad_value_free; /* a destructor got an unknown object */
    fut_executor_t *ex[NEX];
    bool b_shut, b_freed, loop_shut;
    /* The helper thread's queue. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    action_t *q;
    int qhead, qtail, qcap;
    pthread_t helper;
    atomic_int helper_bad;
    char why[1024];
    int ops;
};

static unsigned rnd(round_t *r, unsigned n)
{
    return fut_test_rand(&r->rng) % n;
}

/* ------------------------------------------------------------- values */

static int new_vid(round_t *r)
{
    int id = atomic_fetch_add(&r->nvals, 1) + 1;
    return id < r->maxvals ? id : 0;
}

static void mval_free(void *p)
{
    mval_t *v = p;
    if (v->magic != MVAL_MAGIC)
        abort(); /* not one of ours: the library handed a wrong pointer */
    v->magic = 0;
    if (v->id > 0 && v->id < v->r->maxvals)
        atomic_fetch_add(&v->r->vfree[v->id], 1);
    else
        atomic_fetch_add(&v->r->bad_value_free, 1);
    free(v);
}

/* A value object with a fresh id, or id 0 (no object) if the table is
 * full. */
static mval_t *mval_new(round_t *r, int id)
{
    if (id <= 0)
        return NULL;
    mval_t *v = malloc(sizeof *v);
    if (v == NULL)
        abort();
    atomic_fetch_add(&r->vmade[id], 1);
    v->magic = MVAL_MAGIC;
    v->r = r;
    v->id = id;
    return v;
}

/* A value's id: 0 for NULL, -1 for a combinator's value. */
static int mval_id(const void *v)
{
    if (v == NULL)
        return 0;
    const mval_t *m = v;
    return m->magic == MVAL_MAGIC ? m->id : -1;
}

/* ------------------------------------------------------------ records */

enum {
    BAD_NOT_DONE = 1,
    BAD_GET,
    BAD_ERROR,
    BAD_CODE,
    BAD_ARRAY,
};

static void record_fill(fut_t *f, node_t *n)
{
    if (!fut_done(f)) {
        n->err_bad = BAD_NOT_DONE;
        return;
    }
    void *v = NULL;
    int rc = fut_get(f, 0, &v);
    const fut_error_t *e = fut_error(f);
    n->got.st = (int)fut_state(f);
    n->got.code = 0;
    n->got.id = 0;
    if (n->got.st == FUT_FULFILLED) {
        if (rc != 0)
            n->err_bad = BAD_GET;
        if (e != NULL)
            n->err_bad = BAD_ERROR;
        if (n->kind != N_WHEN) {
            n->got.id = mval_id(v);
            return;
        }
        n->got.id = -1;
        if (v == NULL) {
            n->err_bad = BAD_ARRAY;
            return;
        }
        switch (n->when_kind) {
        case FUT_WHEN_ALL:
            n->rec_n = n->nin;
            for (int i = 0; i < n->nin; i++)
                n->rec_id[i] = mval_id(((void **)v)[i]);
            break;
        case FUT_WHEN_ALL_SETTLED:
            n->rec_n = n->nin;
            for (int i = 0; i < n->nin; i++) {
                fut_t *g = ((fut_t **)v)[i];
                void *gv = NULL;
                n->rec_idx[i] = g == n->in_raw[i];
                n->rec_st[i] = (int)fut_state(g);
                int grc = fut_get(g, 0, &gv);
                n->rec_id[i] =
                    n->rec_st[i] == FUT_FULFILLED ? mval_id(gv) : grc;
            }
            break;
        case FUT_WHEN_ANY:
        case FUT_WHEN_FIRST:
            n->rec_n = 1;
            n->rec_idx[0] = (int)((fut_any_t *)v)->index;
            n->rec_id[0] = mval_id(((fut_any_t *)v)->value);
            break;
        default:
            n->rec_n = n->k;
            for (int i = 0; i < n->k; i++) {
                n->rec_idx[i] = (int)((fut_any_t *)v)[i].index;
                n->rec_id[i] = mval_id(((fut_any_t *)v)[i].value);
            }
            break;
        }
        return;
    }
    if (e == NULL) {
        n->err_bad = BAD_ERROR;
        return;
    }
    n->got.code = e->code;
    if (rc != e->code)
        n->err_bad = BAD_GET;
    if ((n->got.st == FUT_CANCELLED) != (e->code == ECANCELED))
        n->err_bad = BAD_CODE;
}

static void record_cb(fut_t *f, void *arg)
{
    node_t *n = arg;
    if (atomic_fetch_add(&n->rec_calls, 1) != 0)
        return; /* counted; the model reports it */
    record_fill(f, n);
    atomic_store_explicit(&n->rec_done, 1, memory_order_release);
}

static void record_free(void *arg)
{
    atomic_fetch_add(&((node_t *)arg)->rec_freed, 1);
}

/* ------------------------------------------------- tasks and handlers */

static void harg_free(void *arg)
{
    harg_t *h = arg;
    atomic_fetch_add(&h->freed, 1);
    /* Not adopted: the reference the argument held goes here. */
    fut_release(h->adopt);
    h->adopt = NULL;
}

/* Runs mode on ctx; shared by tasks and then-handlers. */
static void *act_out(fut_ctx_t *ctx, harg_t *h)
{
    switch (h->mode) {
    case H_VALUE:
        fut_set_free(ctx, mval_free);
        return mval_new(h->r, h->vid);
    case H_FAIL:
        return fut_fail(ctx, h->code, "node %d fails", h->node);
    case H_FAIL_RET:
        fut_fail(ctx, h->code, "node %d fails", h->node);
        fut_set_free(ctx, mval_free);
        return mval_new(h->r, h->vid);
    case H_ADOPT: {
        fut_t *x = h->adopt;
        h->adopt = NULL;
        return fut_adopt(ctx, x);
    }
    case H_CHECK:
        /* Give a racing fut_cancel a chance to ask. */
        for (int i = 0; i < 20; i++) {
            if (fut_cancel_requested(ctx)) {
                atomic_store(&h->saw_cancel, 1);
                return fut_fail(ctx, ECANCELED, "node %d asked to stop",
                                h->node);
            }
            sched_yield();
        }
        fut_set_free(ctx, mval_free);
        return mval_new(h->r, h->vid);
    default:
        return NULL;
    }
}

static void *task_fn(fut_ctx_t *ctx, void *arg)
{
    harg_t *h = arg;
    atomic_fetch_add(&h->ran, 1);
    return act_out(ctx, h);
}

static void *then_fn(fut_ctx_t *ctx, void *value, void *arg)
{
    harg_t *h = arg;
    atomic_store(&h->seen_st, FUT_FULFILLED);
    atomic_store(&h->seen_id, mval_id(value));
    atomic_fetch_add(&h->ran, 1);
    return act_out(ctx, h);
}

static void *catch_fn(fut_ctx_t *ctx, const fut_error_t *err, void *arg)
{
    harg_t *h = arg;
    atomic_store(&h->seen_st,
                 err->code == ECANCELED ? FUT_CANCELLED : FUT_REJECTED);
    atomic_store(&h->seen_id, err->code);
    atomic_fetch_add(&h->ran, 1);
    if (h->mode == H_RETHROW)
        return fut_fail(ctx, err->code, "rethrown by node %d", h->node);
    if (h->mode == H_FAIL || h->mode == H_FAIL_RET || h->mode == H_ADOPT ||
        h->mode == H_CHECK)
        return act_out(ctx, h);
    fut_set_free(ctx, mval_free); /* recover */
    return mval_new(h->r, h->vid);
}

static void finally_fn(fut_t *settled, void *arg)
{
    harg_t *h = arg;
    void *v = NULL;
    int rc = fut_get(settled, 0, &v);
    atomic_store(&h->seen_st, (int)fut_state(settled));
    atomic_store(&h->seen_id, rc == 0 ? mval_id(v) : rc);
    atomic_fetch_add(&h->ran, 1);
}

/* ------------------------------------------------------------- helper */

static void push_action(round_t *r, action_t a)
{
    pthread_mutex_lock(&r->mu);
    if (r->qtail == r->qcap) {
        r->qcap = r->qcap ? 2 * r->qcap : 256;
        r->q = realloc(r->q, (size_t)r->qcap * sizeof *r->q);
        if (r->q == NULL)
            abort();
    }
    r->q[r->qtail++] = a;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void promise_won(node_t *n, outcome_t o)
{
    n->won_out = o;
    atomic_fetch_add(&n->won, 1);
}

static void *helper_main(void *arg)
{
    round_t *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->qhead == r->qtail)
            pthread_cond_wait(&r->cv, &r->mu);
        action_t a = r->q[r->qhead++];
        pthread_mutex_unlock(&r->mu);
        node_t *n = a.node >= 0 ? &r->nodes[a.node] : NULL;
        switch (a.what) {
        case A_RESOLVE: {
            int rc = fut_resolve(a.p, mval_new(r, a.arg), mval_free);
            if (rc == 0)
                promise_won(n, (outcome_t){FUT_FULFILLED, 0, a.arg});
            else if (rc != EALREADY)
                atomic_fetch_add(&r->helper_bad, 1);
            fut_promise_release(a.p);
            break;
        }
        case A_REJECT: {
            int rc = fut_reject(a.p, a.arg, "helper rejects %d", a.node);
            if (rc == 0)
                promise_won(n, (outcome_t){FUT_REJECTED, a.arg, 0});
            else if (rc != EALREADY)
                atomic_fetch_add(&r->helper_bad, 1);
            fut_promise_release(a.p);
            break;
        }
        case A_RELEASE_PROMISE:
            fut_promise_release(a.p);
            break;
        case A_CANCEL:
            if (fut_cancel(a.f)) {
                atomic_fetch_add(&n->cancel_true, 1);
                if (fut_state(a.f) != FUT_CANCELLED)
                    atomic_fetch_add(&r->helper_bad, 1);
            } else {
                atomic_fetch_add(&n->cancel_false, 1);
            }
            fut_release(a.f);
            break;
        case A_RELEASE:
            fut_release(a.f);
            break;
        case A_STOP:
            return NULL;
        }
    }
}

/* ------------------------------------------------------ graph building */

static void fail_round(round_t *r, const char *fmt, ...) FUT_PRINTF(2, 3);

static void fail_round(round_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    ck_abort_msg("seed=%u: %s", r->seed, r->why);
}

static void hold(round_t *r, int i)
{
    r->held[r->nheld++] = i;
}

/* Removes the model's handle of node i from the held list (the caller
 * takes the reference). */
static fut_t *unhold_at(round_t *r, int at)
{
    int i = r->held[at];
    r->held[at] = r->held[--r->nheld];
    fut_t *f = r->nodes[i].f;
    r->nodes[i].f = NULL;
    return f;
}

/* A held node, biased towards recent ones so that chains grow deep. */
static int pick_at(round_t *r)
{
    if (r->nheld == 0)
        return -1;
    unsigned w = (unsigned)(r->nheld < 8 ? r->nheld : 8);
    if (rnd(r, 4) != 0)
        return r->nheld - 1 - (int)rnd(r, w);
    return (int)rnd(r, (unsigned)r->nheld);
}

/* A reference to an input for a consuming call: sometimes the model's own
 * handle moves into the call (the input is then unshared, and cancelling
 * the consumer may cancel it), else a new reference. */
static fut_t *take_input(round_t *r, int at, int *index)
{
    int i = r->held[at];
    *index = i;
    if (rnd(r, 3) == 0)
        return unhold_at(r, at);
    return fut_retain(r->nodes[i].f);
}

static int new_node(round_t *r, nkind_t kind)
{
    ck_assert_int_lt(r->nnodes, r->maxnodes);
    int i = r->nnodes++;
    node_t *n = &r->nodes[i];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->ex = EX_NONE;
    return i;
}

/* Registers the record callback and keeps the handle. */
static void publish(round_t *r, int i, fut_t *f)
{
    node_t *n = &r->nodes[i];
    ck_assert_ptr_nonnull(f);
    n->f = f;
    n->raw = f;
    int rc = fut_on_done_ex(f, record_cb, n, record_free);
    ck_assert_msg(rc == 0, "seed=%u: fut_on_done_ex: %d", r->seed, rc);
    hold(r, i);
}

static harg_t *harg_new(round_t *r, int node, bool heap)
{
    harg_t *h = heap ? malloc(sizeof *h) : calloc(1, sizeof *h);
    if (h == NULL)
        abort();
    memset(h, 0, sizeof *h);
    h->r = r;
    h->node = node;
    return h;
}

/* Whether f has settled and its callback stack is closed: fut_on_done
 * then runs the callback at once on this thread.  fut_done alone is not
 * enough, since a future whose dispatcher is still running on another
 * thread queues new callbacks behind its own, to run there later. */
static void probe_cb(fut_t *f, void *arg)
{
    (void)f;
    atomic_store((atomic_int *)arg, fut_test_thread_id());
}

static bool settled_probe(round_t *r, fut_t *f, atomic_int *slot)
{
    int rc = fut_on_done(f, probe_cb, slot);
    ck_assert_msg(rc == 0, "seed=%u: fut_on_done: %d", r->seed, rc);
    return atomic_load(slot) == fut_test_thread_id();
}

static const int codes[] = {EIO, ENOENT, EPERM, E2BIG, ERANGE};

static int rnd_code(round_t *r)
{
    return codes[rnd(r, sizeof codes / sizeof codes[0])];
}

/* Fills a handler's mode; ADOPT needs an older held node (else VALUE). */
static void pick_mode(round_t *r, harg_t *h, bool is_catch)
{
    int m = (int)rnd(r, is_catch ? NMODES : NMODES - 1);
    h->mode = m;
    h->code = rnd_code(r);
    h->vid = new_vid(r);
    if (m == H_ADOPT) {
        int at = pick_at(r);
        if (at < 0) {
            h->mode = H_VALUE;
        } else {
            h->adopt = fut_retain(r->nodes[r->held[at]].f);
            h->adopt_node = r->held[at];
        }
    }
}

static int pick_ex(round_t *r)
{
    int e = (int)rnd(r, NEX);
    if (e == EX_POOL_B && r->b_freed)
        e = EX_POOL_A;
    return e;
}

/* A node made for an executor that is already shut down. */
static void mark_shutdown_state(round_t *r, node_t *n)
{
    if ((n->ex == EX_POOL_B && r->b_shut) || (n->ex == EX_LOOP && r->loop_shut))
        n->shut_any = n->b_shut_before = true;
}

static void op_promise(round_t *r)
{
    int i = new_node(r, N_PROMISE);
    node_t *n = &r->nodes[i];
    n->p = fut_promise_new();
    ck_assert_ptr_nonnull(n->p);
    publish(r, i, fut_promise_future(n->p));
}

static void op_const(round_t *r)
{
    int i = new_node(r, N_CONST);
    node_t *n = &r->nodes[i];
    if (rnd(r, 2)) {
        int id = new_vid(r);
        n->expect = (outcome_t){FUT_FULFILLED, 0, id};
        publish(r, i, fut_resolved(mval_new(r, id), mval_free));
    } else {
        int code = rnd_code(r);
        n->expect = (outcome_t){FUT_REJECTED, code, 0};
        publish(r, i, fut_rejected(code, "constant"));
    }
}

static void op_task(round_t *r)
{
    int i = new_node(r, N_TASK);
    node_t *n = &r->nodes[i];
    n->ex = pick_ex(r);
    harg_t *h = harg_new(r, i, true);
    pick_mode(r, h, false);
    n->h = h;
    n->ex_form = true;
    mark_shutdown_state(r, n);
    publish(r, i, fut_submit_ex(r->ex[n->ex], task_fn, h, harg_free, 0));
}

static void op_then(round_t *r)
{
    int at = pick_at(r);
    if (at < 0)
        return;
    int i = new_node(r, N_THEN);
    node_t *n = &r->nodes[i];
    int form = (int)rnd(r, 9);
    bool finally = form == 3 || form == 6;
    n->kind = finally ? N_FINALLY : N_THEN;
    /* Only the _ex form names a free_arg, and only it may adopt (the
     * reference to the adopted future must go when the handler is
     * skipped). */
    n->ex_form = form == 7 || form == 8;
    harg_t *h = harg_new(r, i, n->ex_form);
    n->h = h;
    switch (form) {
    case 0: /* fut_then */
    case 4: /* fut_then_on */
        n->on_value = true;
        break;
    case 1: /* fut_catch */
    case 5: /* fut_catch_on */
        n->on_error = true;
        break;
    case 2: /* fut_then_catch */
        n->on_value = n->on_error = true;
        break;
    case 7: /* fut_then_ex inline or on an executor */
    case 8:
        n->on_value = rnd(r, 3) != 0;
        n->on_error = rnd(r, 3) != 0;
        break;
    default:
        break;
    }
    if (form >= 4 && form <= 6)
        n->ex = pick_ex(r);
    if (form == 8)
        n->ex = pick_ex(r);
    if (n->ex == EX_INLINE && form != 8)
        n->ex = EX_POOL_A;
    if (!finally) {
        pick_mode(r, h, n->on_error && !n->on_value);
        if (!n->ex_form && h->mode == H_ADOPT) {
            fut_release(h->adopt);
            h->adopt = NULL;
            h->mode = H_VALUE;
        }
        if (n->on_value && h->mode == H_RETHROW)
            h->mode = H_VALUE;
    }
    mark_shutdown_state(r, n);
    int in;
    fut_t *f = take_input(r, at, &in);
    n->nin = 1;
    n->in[0] = in;
    n->in_raw[0] = r->nodes[in].raw;
    n->in_done[0] = settled_probe(r, f, &n->probe[0]);
    fut_executor_t *ex = n->ex >= 0 ? r->ex[n->ex] : NULL;
    fut_t *d;
    switch (form) {
    case 0:
        d = fut_then(f, then_fn, h);
        break;
    case 1:
        d = fut_catch(f, catch_fn, h);
        break;
    case 2:
        d = fut_then_catch(f, then_fn, catch_fn, h);
        break;
    case 3:
        d = fut_finally(f, finally_fn, h);
        break;
    case 4:
        d = fut_then_on(ex, f, then_fn, h);
        break;
    case 5:
        d = fut_catch_on(ex, f, catch_fn, h);
        break;
    case 6:
        d = fut_finally_on(ex, f, finally_fn, h);
        break;
    default:
        d = fut_then_ex(ex, f, n->on_value ? then_fn : NULL,
                        n->on_error ? catch_fn : NULL, h, harg_free);
        break;
    }
    publish(r, i, d);
}

static void op_when(round_t *r)
{
    if (r->nheld == 0)
        return;
    int i = new_node(r, N_WHEN);
    node_t *n = &r->nodes[i];
    n->when_kind = (int)rnd(r, 5);
    n->nin = 1 + (int)rnd(r, MAXIN);
    n->k =
        n->when_kind == FUT_WHEN_SOME ? 1 + (int)rnd(r, (unsigned)n->nin) : 0;
    n->flags = rnd(r, 3) == 0 ? FUT_CANCEL_LOSERS : 0;
    fut_t *fs[MAXIN];
    for (int j = 0; j < n->nin; j++) {
        int at = pick_at(r);
        if (at < 0) { /* every handle moved away: fill with a constant */
            op_const(r);
            at = r->nheld - 1;
            n = &r->nodes[i];
        }
        fs[j] = take_input(r, at, &n->in[j]);
        n->in_raw[j] = r->nodes[n->in[j]].raw;
        n->in_done[j] = settled_probe(r, fs[j], &n->probe[j]);
    }
    fut_t *w;
    if (n->flags == 0 && rnd(r, 2)) {
        switch (n->when_kind) {
        case FUT_WHEN_ALL:
            w = fut_when_all(fs, (size_t)n->nin);
            break;
        case FUT_WHEN_ALL_SETTLED:
            w = fut_when_all_settled(fs, (size_t)n->nin);
            break;
        case FUT_WHEN_ANY:
            w = fut_when_any(fs, (size_t)n->nin);
            break;
        case FUT_WHEN_FIRST:
            w = fut_when_first(fs, (size_t)n->nin);
            break;
        default:
            w = fut_when_some(fs, (size_t)n->nin, (size_t)n->k);
            break;
        }
    } else {
        w = fut_when_ex(n->when_kind, fs, (size_t)n->nin, (size_t)n->k,
                        n->flags);
    }
    publish(r, i, w);
}

static const int64_t short_ns[] = {0, FUT_US(50), FUT_US(500), FUT_MS(2)};

static void op_timer(round_t *r)
{
    int64_t ns = short_ns[rnd(r, 4)];
    int at = rnd(r, 3) ? pick_at(r) : -1;
    if (at < 0) {
        int i = new_node(r, N_DELAY);
        publish(r, i, fut_delay(ns));
        return;
    }
    int i = new_node(r, N_WITHIN);
    node_t *n = &r->nodes[i];
    n->ns = ns;
    fut_t *f = take_input(r, at, &n->in[0]);
    n->nin = 1;
    n->in_raw[0] = r->nodes[n->in[0]].raw;
    n->in_done[0] = settled_probe(r, f, &n->probe[0]);
    publish(r, i, fut_within(f, ns));
}

/* A promise with the model's writer reference, or -1. */
static int pick_promise(round_t *r)
{
    for (int tries = 0; tries < 4; tries++) {
        int at = pick_at(r);
        if (at < 0)
            return -1;
        int i = r->held[at];
        if (r->nodes[i].kind == N_PROMISE && r->nodes[i].p)
            return i;
    }
    for (int i = r->nnodes - 1; i >= 0 && i >= r->nnodes - 64; i--)
        if (r->nodes[i].kind == N_PROMISE && r->nodes[i].p)
            return i;
    return -1;
}

static void op_settle(round_t *r)
{
    int i = pick_promise(r);
    if (i < 0) {
        op_promise(r);
        return;
    }
    node_t *n = &r->nodes[i];
    unsigned what = rnd(r, 8);
    if (what < 3) {
        int id = new_vid(r);
        int rc = fut_resolve(n->p, mval_new(r, id), mval_free);
        if (rc == 0)
            promise_won(n, (outcome_t){FUT_FULFILLED, 0, id});
        else
            ck_assert_msg(rc == EALREADY, "seed=%u: fut_resolve: %d", r->seed,
                          rc);
    } else if (what < 5) {
        int code = rnd_code(r);
        int rc = fut_reject(n->p, code, "node %d", i);
        if (rc == 0)
            promise_won(n, (outcome_t){FUT_REJECTED, code, 0});
        else
            ck_assert_msg(rc == EALREADY, "seed=%u: fut_reject: %d", r->seed,
                          rc);
    } else if (what < 6) {
        fut_promise_release(n->p); /* unsettled: a broken promise */
        n->p = NULL;
    } else {
        /* The helper settles it, racing whatever the test does next. */
        action_t a = {.node = i, .p = fut_promise_retain(n->p)};
        a.what = what == 6 ? A_RESOLVE : A_REJECT;
        a.arg = what == 6 ? new_vid(r) : rnd_code(r);
        if (a.what == A_RESOLVE && a.arg == 0)
            a.what = A_RELEASE_PROMISE;
        if (rnd(r, 2)) { /* and the helper's is the last writer */
            fut_promise_release(n->p);
            n->p = NULL;
        }
        push_action(r, a);
    }
}

/* Marks the inputs of a node that fut_cancel just cancelled on this
 * thread: those the model holds no handle to may have been cancelled too
 * (fut_cancel asks inputs that nothing else holds), and so on up.  The
 * walk goes on through inputs exposed before: one exposed by an earlier
 * cancel, when the model still held a handle to its own input, passes
 * this cancel on to that input now that the handle is gone (seed
 * 440617163 of model_random_graphs_10m_ops: a promise cancelled through
 * a finally node exposed earlier was reported as cancelled by nobody).
 * Iterative, each node once: chains can be long. */
static void expose_inputs_now(round_t *r, int i)
{
    char *seen = calloc((size_t)r->nnodes, 1);
    int *todo = malloc((size_t)r->nnodes * sizeof *todo);
    ck_assert(seen && todo);
    int ntodo = 0;
    todo[ntodo++] = i;
    seen[i] = 1;
    while (ntodo > 0) {
        node_t *n = &r->nodes[todo[--ntodo]];
        if (n->kind != N_THEN && n->kind != N_FINALLY && n->kind != N_WHEN &&
            n->kind != N_WITHIN)
            continue;
        for (int j = 0; j < n->nin; j++) {
            int k = n->in[j];
            node_t *in = &r->nodes[k];
            if (in->f == NULL && !seen[k]) {
                in->exposed = true;
                seen[k] = 1;
                todo[ntodo++] = k;
            }
        }
    }
    free(seen);
    free(todo);
}

static void op_cancel(round_t *r)
{
    int at = pick_at(r);
    if (at < 0)
        return;
    int i = r->held[at];
    node_t *n = &r->nodes[i];
    n->exposed = true;
    if (rnd(r, 2)) {
        n->exposed_any_time = true;
        action_t a = {.what = A_CANCEL, .node = i, .f = fut_retain(n->f)};
        if (rnd(r, 2)) /* the helper's reference is the last one */
            fut_release(unhold_at(r, at));
        push_action(r, a);
        return;
    }
    if (fut_cancel(n->f)) {
        atomic_fetch_add(&n->cancel_true, 1);
        ck_assert_msg(fut_state(n->f) == FUT_CANCELLED,
                      "seed=%u: node %d: fut_cancel returned true, state %d",
                      r->seed, i, (int)fut_state(n->f));
        expose_inputs_now(r, i);
    } else {
        atomic_fetch_add(&n->cancel_false, 1);
        ck_assert_msg(fut_state(n->f) != FUT_PENDING,
                      "seed=%u: node %d: fut_cancel returned false on a "
                      "pending future",
                      r->seed, i);
    }
}

static void op_release(round_t *r)
{
    int at = pick_at(r);
    if (at < 0)
        return;
    if (rnd(r, 2)) {
        fut_release(unhold_at(r, at));
    } else {
        int i = r->held[at];
        push_action(
            r, (action_t){.what = A_RELEASE, .node = i, .f = unhold_at(r, at)});
    }
}

/* Polls with a zero timeout; the answers must agree with each other (a
 * rejection may itself carry ETIMEDOUT: fut_within's). */
static void op_poll(round_t *r)
{
    int at = pick_at(r);
    if (at < 0)
        return;
    int i = r->held[at];
    fut_t *f = r->nodes[i].f;
    fut_state_t before = fut_state(f);
    int wrc = fut_wait(f, 0);
    ck_assert_msg(wrc == 0 || wrc == ETIMEDOUT, "seed=%u: fut_wait: %d",
                  r->seed, wrc);
    fut_state_t mid = fut_state(f);
    void *v = NULL;
    int grc = fut_get(f, 0, &v);
    fut_state_t st = fut_state(f);
    if (before >= FUT_FULFILLED)
        ck_assert_msg(wrc == 0 && st == before,
                      "seed=%u: node %d was %d, then wait %d state %d", r->seed,
                      i, (int)before, wrc, (int)st);
    if (wrc == 0)
        ck_assert_msg(mid >= FUT_FULFILLED, "seed=%u: node %d: state %d",
                      r->seed, i, (int)mid);
    if (st >= FUT_FULFILLED)
        ck_assert(fut_done(f));
    if (mid < FUT_FULFILLED && grc == FUT_TIMEDOUT)
        return; /* pending when fut_get looked */
    const fut_error_t *e = fut_error(f);
    if (grc == 0) {
        ck_assert_int_eq(st, FUT_FULFILLED);
        ck_assert_ptr_null(e);
    } else {
        ck_assert_msg(e != NULL && e->code == grc &&
                          (st == FUT_CANCELLED) == (grc == ECANCELED) &&
                          st != FUT_FULFILLED,
                      "seed=%u: node %d: get %d, state %d", r->seed, i, grc,
                      (int)st);
    }
}

/* Marks the nodes that run on executor e as having seen it shut down. */
static void mark_shut(round_t *r, int e, bool cancel_pending)
{
    for (int i = 0; i < r->nnodes; i++)
        if (r->nodes[i].ex == e) {
            r->nodes[i].shut_any = true;
            r->nodes[i].shut_cancel |= cancel_pending;
        }
}

static void op_executor(round_t *r)
{
    unsigned what = rnd(r, 64);
    bool cancel_pending = !FUT_MODEL_AVOID_SHUTDOWN_REJECTS_ON && rnd(r, 2);
    unsigned flags = cancel_pending ? FUT_SHUTDOWN_CANCEL_PENDING : 0;
    if (what < 40) {
        fut_loop_run_pending(r->ex[EX_LOOP]);
    } else if (what == 40 && !r->b_shut && !r->b_freed &&
               !FUT_MODEL_AVOID_SHUTDOWN_STRANDS_QUEUED) {
        ck_assert_int_eq(fut_executor_shutdown(r->ex[EX_POOL_B], flags), 0);
        r->b_shut = true;
        mark_shut(r, EX_POOL_B, cancel_pending);
    } else if (what == 41 && !r->b_freed &&
               !FUT_MODEL_AVOID_FREE_WITH_PENDING_ON) {
        fut_executor_free(r->ex[EX_POOL_B]);
        r->ex[EX_POOL_B] = NULL;
        r->b_shut = r->b_freed = true;
        mark_shut(r, EX_POOL_B, false);
    } else if (what == 42 && !r->loop_shut) {
        ck_assert_int_eq(fut_executor_shutdown(r->ex[EX_LOOP], flags), 0);
        r->loop_shut = true;
        mark_shut(r, EX_LOOP, cancel_pending);
    }
}

#if !FUT_MODEL_AVOID_CANCEL_RECURSION
static void *cancel_tail(void *arg)
{
    return (void *)(intptr_t)fut_cancel(arg);
}

static void *chain_fn(fut_ctx_t *ctx, void *value, void *arg)
{
    (void)ctx;
    (void)arg;
    return value;
}

/* A chain of 100,000 pending continuations that hold the only reference
 * to their input, cancelled from its tail on a 1 MiB stack: every link
 * must end cancelled, without the stack growing with the chain. */
static void op_long_chain(round_t *r)
{
    enum { DEPTH = 100000 };
    fut_promise_t *p = fut_promise_new();
    ck_assert_ptr_nonnull(p);
    fut_t *f = fut_promise_future(p);
    for (int i = 0; i < DEPTH; i++)
        f = fut_then(f, chain_fn, NULL);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 1 << 20);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, &at, cancel_tail, f), 0);
    pthread_attr_destroy(&at);
    void *rv;
    pthread_join(t, &rv);
    ck_assert_msg(rv != NULL, "seed=%u: fut_cancel on a chain's tail", r->seed);
    ck_assert_int_eq(fut_state(f), FUT_CANCELLED);
    fut_release(f);
    ck_assert_int_eq(fut_resolve(p, NULL, NULL), EALREADY);
    fut_promise_release(p);
}
#endif

/* ----------------------------------------------------------- checking */

static bool same(outcome_t a, outcome_t b)
{
    if (a.st != b.st)
        return false;
    if (a.st == FUT_FULFILLED)
        return a.id == b.id;
    return a.code == b.code;
}

static const char *st_name(int st)
{
    static const char *names[] = {"PENDING", "RUNNING", "FULFILLED", "REJECTED",
                                  "CANCELLED"};
    return st >= 0 && st <= 4 ? names[st] : "?";
}

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            fail_round(r, __VA_ARGS__);                                        \
    } while (0)

static void describe(round_t *r, int i, char *buf, size_t len);

/* Fails the round naming node i and what the model knows of it. */
static void fail_node(round_t *r, int i, const char *fmt, ...) FUT_PRINTF(3, 4);

static void fail_node(round_t *r, int i, const char *fmt, ...)
{
    char d[600], m[200];
    describe(r, i, d, sizeof d);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    fail_round(r, "%s: %s", d, m);
}

/* A check about node i (a variable in scope). */
#define NCHECK(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            fail_node(r, i, __VA_ARGS__);                                      \
    } while (0)

static const outcome_t CANCELLED = {FUT_CANCELLED, ECANCELED, 0};

/* What a task or handler that ran must have produced. */
static outcome_t mode_outcome(round_t *r, harg_t *h, int seen_code)
{
    switch (h->mode) {
    case H_VALUE:
        return (outcome_t){FUT_FULFILLED, 0, h->vid};
    case H_FAIL:
    case H_FAIL_RET:
        return (outcome_t){FUT_REJECTED, h->code, 0};
    case H_ADOPT:
        return r->nodes[h->adopt_node].got;
    case H_CHECK:
        if (atomic_load(&h->saw_cancel))
            return CANCELLED;
        return (outcome_t){FUT_FULFILLED, 0, h->vid};
    case H_RETHROW:
        if (seen_code == ECANCELED)
            return CANCELLED;
        return (outcome_t){FUT_REJECTED, seen_code, 0};
    default:
        return (outcome_t){-1, 0, 0};
    }
}

/* Whether node i could have been cancelled: a fut_cancel aimed at it,
 * directly or through a consumer. */
static bool may_cancel(node_t *n)
{
    return n->exposed || atomic_load(&n->cancel_true) > 0;
}

static void describe(round_t *r, int i, char *buf, size_t len)
{
    node_t *n = &r->nodes[i];
    int at =
        snprintf(buf, len,
                 "node %d (kind %d ex %d when %d k %d flags %u exposed %d "
                 "shut %d/%d cancel %d/%d) got %s code %d id %d; inputs",
                 i, (int)n->kind, n->ex, n->when_kind, n->k, n->flags,
                 n->exposed, n->shut_any, n->shut_cancel,
                 atomic_load(&n->cancel_true), atomic_load(&n->cancel_false),
                 st_name(n->got.st), n->got.code, n->got.id);
    for (int j = 0; j < n->nin && at > 0 && (size_t)at < len; j++) {
        node_t *in = &r->nodes[n->in[j]];
        at += snprintf(buf + at, len - (size_t)at, " %d:%s/%d/%d%s", n->in[j],
                       st_name(in->got.st), in->got.code, in->got.id,
                       n->in_done[j] ? "(settled)" : "");
    }
}

static void check_promise(round_t *r, int i)
{
    node_t *n = &r->nodes[i];
    int won = atomic_load(&n->won);
    NCHECK(won <= 1, "%d settles succeeded", won);
    if (won == 1) {
        NCHECK(atomic_load(&n->cancel_true) == 0,
               "a settle and a cancel both succeeded");
        NCHECK(same(n->got, n->won_out), "the winning settle was %s %d %d",
               st_name(n->won_out.st), n->won_out.code, n->won_out.id);
        return;
    }
    if (atomic_load(&n->cancel_true) > 0 || n->got.st == FUT_CANCELLED) {
        NCHECK(n->got.st == FUT_CANCELLED && may_cancel(n),
               "no settle won; cancel returned true %d times",
               atomic_load(&n->cancel_true));
        return;
    }
    NCHECK(n->got.st == FUT_REJECTED && n->got.code == EPIPE,
           "no settle won, so a broken promise (EPIPE)");
}

static void check_task(round_t *r, int i)
{
    node_t *n = &r->nodes[i];
    harg_t *h = n->h;
    int ran = atomic_load(&h->ran);
    NCHECK(atomic_load(&h->freed) == 1, "free_arg ran %d times",
           atomic_load(&h->freed));
    NCHECK(ran <= 1, "the task ran %d times", ran);
    if (ran == 1) {
        outcome_t want = mode_outcome(r, h, 0);
        NCHECK(same(n->got, want), "the task (mode %d) made %s %d %d", h->mode,
               st_name(want.st), want.code, want.id);
        if (atomic_load(&h->saw_cancel))
            NCHECK(may_cancel(n), "asked to stop, but nobody cancelled");
        return;
    }
    if (n->got.st == FUT_CANCELLED) {
        NCHECK(may_cancel(n) || n->shut_cancel,
               "cancelled before it ran, but nobody cancelled it");
        return;
    }
    NCHECK(n->got.st == FUT_REJECTED && n->got.code == ESHUTDOWN &&
               n->b_shut_before,
           "the task never ran");
}

/* A continuation: the handler for the input's outcome ran and decided, or
 * the outcome passed through, or it was cancelled before it ran, or its
 * executor refused it. */
static void check_then(round_t *r, int i)
{
    node_t *n = &r->nodes[i];
    harg_t *h = n->h;
    node_t *in = &r->nodes[n->in[0]];
    int ran = atomic_load(&h->ran);
    NCHECK(ran <= 1, "the handler ran %d times", ran);
    if (n->ex_form)
        NCHECK(atomic_load(&h->freed) == 1, "free_arg ran %d times",
               atomic_load(&h->freed));
    bool ok = in->got.st == FUT_FULFILLED;
    bool has_handler = n->kind == N_FINALLY || (ok ? n->on_value : n->on_error);
    if (ran == 1) {
        NCHECK(has_handler, "a handler ran for input %s", st_name(in->got.st));
        int seen_st = atomic_load(&h->seen_st), seen = atomic_load(&h->seen_id);
        NCHECK(seen_st == in->got.st &&
                   seen == (ok ? in->got.id : in->got.code),
               "the handler saw %s %d, the input was %s", st_name(seen_st),
               seen, st_name(in->got.st));
        outcome_t want =
            n->kind == N_FINALLY ? in->got : mode_outcome(r, h, seen);
        NCHECK(same(n->got, want), "the handler (mode %d) made %s %d %d",
               h->mode, st_name(want.st), want.code, want.id);
        if (atomic_load(&h->saw_cancel))
            NCHECK(may_cancel(n), "asked to stop, but nobody cancelled");
        return;
    }
    if (n->got.st == FUT_CANCELLED && may_cancel(n))
        return; /* cancelled before the handler ran */
    if (n->got.st == FUT_REJECTED && n->got.code == ESHUTDOWN && n->shut_any)
        return; /* the executor refused it */
    if (n->got.st == FUT_CANCELLED && n->shut_cancel)
        return; /* the executor cancelled it */
    NCHECK(!has_handler, "the handler for input %s %d never ran",
           st_name(in->got.st), in->got.code);
    NCHECK(same(n->got, in->got), "the input's %s %d %d did not pass",
           st_name(in->got.st), in->got.code, in->got.id);
}

/* The outcome of a combinator that settles like input j. */
static bool like_input(round_t *r, node_t *n, int j)
{
    return same(n->got, r->nodes[n->in[j]].got);
}

static void check_when(round_t *r, int i)
{
    node_t *n = &r->nodes[i];
    int nin = n->nin, nok = 0;
    outcome_t in[MAXIN];
    for (int j = 0; j < nin; j++) {
        in[j] = r->nodes[n->in[j]].got;
        nok += in[j].st == FUT_FULFILLED;
    }
    if (n->got.st == FUT_CANCELLED && may_cancel(n))
        return;
    /* Which input decided a rejection: any that did not fulfil, unless
     * the inputs before it were settled when the combinator was made (then
     * it was processed first, in input order). */
    bool any_like = false;
    for (int j = 0; j < nin; j++)
        if (in[j].st != FUT_FULFILLED && like_input(r, n, j))
            any_like = true;
    switch (n->when_kind) {
    case FUT_WHEN_ALL: {
        if (nok == nin) {
            NCHECK(n->got.st == FUT_FULFILLED && n->rec_n == nin,
                   "every input fulfilled");
            for (int j = 0; j < nin; j++)
                NCHECK(n->rec_id[j] == in[j].id, "value %d is %d, input had %d",
                       j, n->rec_id[j], in[j].id);
            return;
        }
        NCHECK(n->got.st != FUT_FULFILLED && any_like,
               "must settle like an input that did not fulfil");
        int first = 0;
        while (in[first].st == FUT_FULFILLED)
            first++;
        bool settled_before = true;
        for (int j = 0; j <= first; j++)
            settled_before = settled_before && n->in_done[j];
        if (settled_before)
            NCHECK(like_input(r, n, first), "input %d was the first rejection",
                   first);
        return;
    }
    case FUT_WHEN_ALL_SETTLED:
        NCHECK(n->got.st == FUT_FULFILLED && n->rec_n == nin,
               "all_settled fulfils");
        for (int j = 0; j < nin; j++) {
            NCHECK(n->rec_idx[j] == 1, "entry %d is not input %d", j, j);
            NCHECK(n->rec_st[j] == in[j].st &&
                       n->rec_id[j] ==
                           (in[j].st == FUT_FULFILLED ? in[j].id : in[j].code),
                   "entry %d reads %s %d", j, st_name(n->rec_st[j]),
                   n->rec_id[j]);
        }
        return;
    case FUT_WHEN_ANY:
    case FUT_WHEN_FIRST:
        if (n->got.st == FUT_FULFILLED) {
            int j = n->rec_idx[0];
            NCHECK(n->rec_n == 1 && j >= 0 && j < nin &&
                       in[j].st == FUT_FULFILLED && n->rec_id[0] == in[j].id,
                   "the winner %d (value %d) did not fulfil so", j,
                   n->rec_id[0]);
            if (n->when_kind == FUT_WHEN_FIRST && n->in_done[0])
                NCHECK(j == 0, "input 0 had settled first");
            if (n->when_kind == FUT_WHEN_ANY) {
                int first = 0;
                while (first < nin && in[first].st != FUT_FULFILLED)
                    first++;
                bool before = true;
                for (int m = 0; m <= first && m < nin; m++)
                    before = before && n->in_done[m];
                if (before)
                    NCHECK(j == first, "input %d fulfilled first", first);
            }
            return;
        }
        if (n->when_kind == FUT_WHEN_ANY)
            NCHECK(nok == 0, "rejected although an input fulfilled");
        NCHECK(any_like, "must settle like an input");
        if (n->when_kind == FUT_WHEN_FIRST && n->in_done[0])
            NCHECK(like_input(r, n, 0), "input 0 had settled first");
        if (n->when_kind == FUT_WHEN_ANY) {
            bool all_before = true;
            for (int j = 0; j < nin; j++)
                all_before = all_before && n->in_done[j];
            if (all_before)
                NCHECK(like_input(r, n, nin - 1),
                       "the last rejection is input %d", nin - 1);
        }
        return;
    default: /* some */
        if (n->got.st == FUT_FULFILLED) {
            NCHECK(n->rec_n == n->k && nok >= n->k, "%d of %d fulfilled", nok,
                   n->k);
            for (int a = 0; a < n->k; a++) {
                int j = n->rec_idx[a];
                NCHECK(j >= 0 && j < nin && in[j].st == FUT_FULFILLED &&
                           n->rec_id[a] == in[j].id,
                       "entry %d names input %d", a, j);
                for (int b = 0; b < a; b++)
                    NCHECK(n->rec_idx[b] != j, "input %d twice", j);
            }
            /* Inputs settled before the call are taken in input order. */
            bool all_before = true;
            for (int j = 0; j < nin; j++)
                all_before = all_before && n->in_done[j];
            for (int a = 0, j = 0; all_before && a < n->k; a++, j++) {
                while (in[j].st != FUT_FULFILLED)
                    j++;
                NCHECK(n->rec_idx[a] == j, "entry %d should be input %d", a, j);
            }
            return;
        }
        NCHECK(nok < n->k, "rejected, yet %d of %d fulfilled", nok, n->k);
        NCHECK(any_like, "must settle like an input that did not fulfil");
        return;
    }
}

static void check_node(round_t *r, int i)
{
    node_t *n = &r->nodes[i];
    NCHECK(atomic_load(&n->rec_calls) == 1, "done-callback ran %d times",
           atomic_load(&n->rec_calls));
    NCHECK(atomic_load(&n->rec_freed) == 1, "its free_arg ran %d times",
           atomic_load(&n->rec_freed));
    NCHECK(n->err_bad == 0, "the callback saw inconsistency %d", n->err_bad);
    NCHECK(n->got.st >= FUT_FULFILLED, "not settled");
    if (atomic_load(&n->cancel_true) > 0)
        NCHECK(n->got.st == FUT_CANCELLED,
               "fut_cancel returned true, so it must be CANCELLED");
    switch (n->kind) {
    case N_PROMISE:
        check_promise(r, i);
        break;
    case N_CONST:
        NCHECK(same(n->got, n->expect), "a constant changed");
        break;
    case N_TASK:
        check_task(r, i);
        break;
    case N_THEN:
    case N_FINALLY:
        check_then(r, i);
        break;
    case N_WHEN:
        check_when(r, i);
        break;
    case N_WITHIN: {
        outcome_t in = r->nodes[n->in[0]].got;
        if (n->got.st == FUT_CANCELLED && may_cancel(n))
            break;
        if (n->got.st == FUT_REJECTED && n->got.code == ETIMEDOUT &&
            !(in.st == FUT_REJECTED && in.code == ETIMEDOUT)) {
            NCHECK(FUT_MODEL_AVOID_WITHIN_TIMER_FIRST || !n->in_done[0],
                   "timed out (%lld ns) an input already settled (%s %d)",
                   (long long)n->ns, st_name(in.st), in.code);
            break;
        }
        NCHECK(same(n->got, in), "settles like its input (%s %d %d)",
               st_name(in.st), in.code, in.id);
        break;
    }
    case N_DELAY:
        if (n->got.st == FUT_CANCELLED)
            NCHECK(may_cancel(n), "nobody cancelled it");
        else
            NCHECK(n->got.st == FUT_FULFILLED && n->got.id == 0,
                   "a delay fulfils with NULL");
        break;
    }
}

/* Where a cancellation may have reached without the model seeing it at
 * the time: from a consumer cancelled on another thread or at an unknown
 * moment, from FUT_CANCEL_LOSERS, from a fut_within that timed out.  The
 * inputs of a node are older than it, so one pass from the newest node
 * down settles the question. */
static void expose_late(round_t *r)
{
    for (int i = r->nnodes - 1; i >= 0; i--) {
        node_t *n = &r->nodes[i];
        bool to_inputs = false;
        if (n->exposed_any_time && n->got.st == FUT_CANCELLED &&
            n->kind != N_TASK && n->kind != N_PROMISE)
            to_inputs = true;
        if (n->kind == N_WHEN && (n->flags & FUT_CANCEL_LOSERS))
            to_inputs = true;
        if (n->kind == N_WITHIN && n->got.st == FUT_REJECTED &&
            n->got.code == ETIMEDOUT)
            to_inputs = true;
        if (!to_inputs)
            continue;
        for (int j = 0; j < n->nin; j++) {
            node_t *in = &r->nodes[n->in[j]];
            in->exposed = true;
            in->exposed_any_time = true;
        }
    }
}

/* ------------------------------------------------------------- rounds */

/* What the rounds of a case exercised, printed with FUT_MODEL_STATS=1 so
 * that a change that makes the model vacuous shows. */
typedef struct stats {
    long nodes, by_kind_state[8][5], handlers_ran, cancel_true, cancel_false,
        saw_cancel, adopted, in_done;
} stats_t;

static void count_round(round_t *r, stats_t *s)
{
    for (int i = 0; i < r->nnodes; i++) {
        node_t *n = &r->nodes[i];
        s->nodes++;
        s->by_kind_state[n->kind][n->got.st]++;
        s->cancel_true += atomic_load(&n->cancel_true);
        s->cancel_false += atomic_load(&n->cancel_false);
        for (int j = 0; j < n->nin; j++)
            s->in_done += n->in_done[j];
        if (n->h) {
            s->handlers_ran += atomic_load(&n->h->ran);
            s->saw_cancel += atomic_load(&n->h->saw_cancel);
            s->adopted += n->h->mode == H_ADOPT && atomic_load(&n->h->ran);
        }
    }
}

static void print_stats(const stats_t *s)
{
    static const char *kinds[] = {"promise", "const", "task",   "then",
                                  "finally", "when",  "within", "delay"};
    fprintf(stderr,
            "model: %ld nodes, %ld handlers ran, cancel true %ld false %ld, "
            "%ld saw a cancel request, %ld adopted, %ld inputs settled "
            "before use\n",
            s->nodes, s->handlers_ran, s->cancel_true, s->cancel_false,
            s->saw_cancel, s->adopted, s->in_done);
    for (int k = 0; k < 8; k++)
        fprintf(stderr,
                "model:   %-8s fulfilled %ld rejected %ld cancelled %ld\n",
                kinds[k], s->by_kind_state[k][FUT_FULFILLED],
                s->by_kind_state[k][FUT_REJECTED],
                s->by_kind_state[k][FUT_CANCELLED]);
}

/* How long the end of a round waits for every node to settle: less than
 * the case's timeout, so that a node that never settles is named. */
static int64_t wind_down_ns(void)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    int64_t mult = m != NULL && atoi(m) > 0 ? atoi(m) : 1;
    return FUT_S(10) * mult;
}

static void run_round(unsigned seed, int ops, stats_t *stats)
{
    round_t *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->seed = seed;
    r->rng = seed;
    r->ops = ops;
    r->maxnodes = (1 + MAXIN) * ops + 16;
    r->nodes = calloc((size_t)r->maxnodes, sizeof *r->nodes);
    r->held = calloc((size_t)r->maxnodes, sizeof *r->held);
    r->maxvals = 4 * ops + 16;
    r->vfree = calloc((size_t)r->maxvals, sizeof *r->vfree);
    r->vmade = calloc((size_t)r->maxvals, sizeof *r->vmade);
    ck_assert(r->nodes && r->held && r->vfree && r->vmade);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->ex[EX_POOL_A] = fut_test_pool(2);
    r->ex[EX_POOL_B] = fut_test_pool(1);
    r->ex[EX_INLINE] = fut_inline_executor();
    ck_assert_int_eq(fut_loop_new(&r->ex[EX_LOOP]), 0);
    r->helper = fut_test_spawn(helper_main, r);

#if !FUT_MODEL_AVOID_CANCEL_RECURSION
    if (rnd(r, 8) == 0)
        op_long_chain(r);
#endif
    for (int op = 0; op < ops; op++) {
        unsigned w = rnd(r, 100);
        if (w < 14)
            op_promise(r);
        else if (w < 17)
            op_const(r);
        else if (w < 29)
            op_task(r);
        else if (w < 47)
            op_then(r);
        else if (w < 54)
            op_when(r);
        else if (w < 57)
            op_timer(r);
        else if (w < 72)
            op_settle(r);
        else if (w < 79)
            op_cancel(r);
        else if (w < 86)
            op_release(r);
        else if (w < 93)
            op_poll(r);
        else
            op_executor(r);
    }

    /* Wind down: the helper finishes its queue, promises still held
     * break, the loop is drained until every node has settled. */
    push_action(r, (action_t){.what = A_STOP, .node = -1});
    fut_test_join(r->helper);
    for (int i = 0; i < r->nnodes; i++)
        if (r->nodes[i].p) {
            fut_promise_release(r->nodes[i].p);
            r->nodes[i].p = NULL;
        }
    int64_t deadline = fut_test_now_ns() + wind_down_ns();
    for (int i = 0; i < r->nnodes; i++) {
        while (atomic_load(&r->nodes[i].rec_done) == 0) {
            fut_loop_run_pending(r->ex[EX_LOOP]);
            if (fut_test_now_ns() > deadline) {
                char d[600];
                describe(r, i, d, sizeof d);
                fut_stats_t bs = {0};
                if (r->ex[EX_POOL_B])
                    fut_executor_stats(r->ex[EX_POOL_B], &bs);
                harg_t *h = r->nodes[i].h;
                fail_round(r,
                           "%s: never settled (made after shutdown %d, ran "
                           "%d, freed %d; pool B: threads %zu idle %zu "
                           "queued %zu submitted %llu completed %llu "
                           "cancelled %llu shutdown %d)",
                           d, r->nodes[i].b_shut_before,
                           h ? atomic_load(&h->ran) : -1,
                           h ? atomic_load(&h->freed) : -1, bs.threads, bs.idle,
                           bs.queued, (unsigned long long)bs.submitted,
                           (unsigned long long)bs.completed,
                           (unsigned long long)bs.cancelled, bs.shutdown);
            }
            sched_yield();
        }
    }
    while (r->nheld > 0)
        fut_release(unhold_at(r, r->nheld - 1));
    /* Settled continuations on the loop may still be queued there. */
    while (fut_loop_run_pending(r->ex[EX_LOOP]) > 0) {
    }
    fut_executor_free(r->ex[EX_LOOP]);
    fut_executor_free(r->ex[EX_POOL_A]);
    if (!r->b_freed)
        fut_executor_free(r->ex[EX_POOL_B]);

    CHECK(atomic_load(&r->helper_bad) == 0,
          "the helper saw %d bad return codes", atomic_load(&r->helper_bad));
    expose_late(r);
    for (int i = 0; i < r->nnodes; i++)
        check_node(r, i);

    /* Every value destroyed exactly once.  The timer thread may still be
     * dropping its last references: wait for it. */
    int nvals = atomic_load(&r->nvals);
    if (nvals >= r->maxvals)
        nvals = r->maxvals - 1;
    for (int id = 1; id <= nvals; id++) {
        int made = atomic_load(&r->vmade[id]);
        CHECK(made <= 1, "value %d made %d times", id, made);
        while (atomic_load(&r->vfree[id]) < made &&
               fut_test_now_ns() < deadline)
            fut_test_sleep_ms(1);
        CHECK(atomic_load(&r->vfree[id]) == made,
              "value %d (made %d times) destroyed %d times", id, made,
              atomic_load(&r->vfree[id]));
    }
    CHECK(atomic_load(&r->bad_value_free) == 0, "an unknown value destroyed");

    count_round(r, stats);
    for (int i = 0; i < r->nnodes; i++)
        free(r->nodes[i].h);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->q);
    free(r->vfree);
    free(r->vmade);
    free(r->held);
    free(r->nodes);
    free(r);
}

static void run_rounds(long total_ops, int ops_per_round)
{
    unsigned seed = fut_test_seed();
    long rounds = (total_ops + ops_per_round - 1) / ops_per_round;
    stats_t stats;
    memset(&stats, 0, sizeof stats);
    /* FUT_MODEL_TRACE=1 names each round before it runs, so that a crash
     * inside the library can be tied to its round. */
    const char *trace = getenv("FUT_MODEL_TRACE");
    for (long i = 0; i < rounds; i++) {
        if (trace != NULL && strcmp(trace, "1") == 0)
            fprintf(stderr, "model: round %ld seed=%u\n", i,
                    seed + (unsigned)i);
        run_round(seed + (unsigned)i, ops_per_round, &stats);
    }
    const char *env = getenv("FUT_MODEL_STATS");
    if (env != NULL && strcmp(env, "1") == 0)
        print_stats(&stats);
}

START_TEST(model_random_graphs_100k_ops)
{
    run_rounds(100000, 2000);
}
END_TEST

START_TEST(model_random_graphs_10m_ops)
{
    run_rounds(10000000, 5000);
}
END_TEST

Suite *fut_test_model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, FUT_TEST_QUICK_TIMEOUT);
    tcase_add_test(tc, model_random_graphs_100k_ops);
    suite_add_tcase(s, tc);

    TCase *st = tcase_create("model_stress");
    tcase_set_tags(st, "stress");
    tcase_set_timeout(st, FUT_TEST_STRESS_TIMEOUT);
    tcase_add_test(st, model_random_graphs_10m_ops);
    suite_add_tcase(s, st);
    return s;
}

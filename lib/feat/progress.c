/*
 * progress.c - progress notifications (jQuery's notify/progress).
 *
 * Listeners live in the future's extension block (core/ext.h), made on
 * first use and freed with the future.  The listener list is append-only
 * while the future lives: a notifier takes the block's lock only to record
 * the latest progress and to read how many listeners exist, then calls
 * them without the lock (a listener may notify, register or settle from
 * inside its callback).  Nodes are never freed before the future, so
 * walking them unlocked is safe.  Lock order: a block's lock, then
 * nothing.
 *
 * "memory" (jQuery.Callbacks): a listener added after a notification is
 * called at once with the latest progress; the lock makes each listener see
 * each notification exactly once.
 *
 * When the future settles the list closes (the block's close operation):
 * later notifications and registrations answer EALREADY, and the relays'
 * references are dropped once no notifier is still walking the list.
 *
 * Relays.  A continuation hears its input's progress through a relay
 * listener on the input, installed (up the chain, iteratively) when someone
 * first listens to the continuation.  A relay holds a reference to the
 * continuation, dropped when the input's list closes.  A relay is marked
 * in place only once its listener is on the input, and relays go in from
 * the listened future upwards, so a link marked in place has every link
 * above it in place too (the walk stops there).  An allocation failure
 * leaves nothing half done: fut_on_progress reports ENOMEM and a later
 * call goes on where it stopped.  Relayed notifications do not recurse (rule
 * 6): a notifier meets a relay and queues (continuation, progress) on a
 * per-thread list that the outermost notifier drains, so a chain of any
 * length relays with constant stack.
 */
#include "feat/progress.h"

#include "core/ctx.h"
#include "core/ext.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

typedef struct listener {
    struct listener *next;
    void (*cb)(fut_t *f, void *progress, void *arg);
    void *arg;
    fut_free_fn free_arg; /* runs when the list closes (relays) or the
                             future is freed */
} listener_t;

_Static_assert(sizeof(listener_t) == FUT__CLASS_SMALL,
               "listeners are cached by the allocator");

typedef struct progress {
    fut__ext_t ext; /* first: the core's view of the block */
    pthread_mutex_t lock;
    listener_t *head, *tail;
    size_t count;
    void *last;
    bool has_last;
    int relay;     /* the relay from this continuation's input: RELAY_* */
    bool closed;   /* the future settled: no more progress */
    size_t active; /* notifiers calling listeners now */
} progress_t;

/* --- the block -------------------------------------------------------- */

static void block_close(fut__ext_t *e);
static void block_free(fut__ext_t *e);

static const fut__ext_ops_t progress_ops = {
    .close = block_close,
    .free = block_free,
};

static void block_destroy(progress_t *p)
{
    pthread_mutex_destroy(&p->lock);
    fut__free(p, sizeof *p);
}

/* The block of f, made on first use; NULL on ENOMEM. */
static progress_t *block_get(fut_t *f)
{
    fut__ext_t *e = fut__ext_find(f);
    if (!e) {
        progress_t *fresh = fut__alloc(sizeof *fresh);
        if (!fresh)
            return NULL;
        *fresh = (progress_t){.ext = {.ops = &progress_ops}};
        pthread_mutex_init(&fresh->lock, NULL);
        e = fut__ext_attach(f, &fresh->ext);
        if (e != &fresh->ext)
            block_destroy(fresh); /* another made one first, or ENOMEM */
        if (!e)
            return NULL;
    }
    FUT__ASSERT(e->ops == &progress_ops); /* the only kind of block */
    return (progress_t *)e;
}

static void block_free(fut__ext_t *e)
{
    progress_t *p = (progress_t *)e;
    listener_t *l = p->head;
    while (l) {
        listener_t *next = l->next;
        if (l->free_arg)
            l->free_arg(l->arg);
        fut__free(l, sizeof *l);
        l = next;
    }
    block_destroy(p);
}

/* Detaches up to max arguments that have destructors (relays, which hold
 * their continuation); lock held.  The caller runs the destructors after
 * unlocking. */
static size_t detach_args(progress_t *p, fut_free_fn *fns, void **args,
                          size_t max)
{
    size_t n = 0;
    for (listener_t *l = p->head; l && n < max; l = l->next) {
        if (l->free_arg) {
            fns[n] = l->free_arg;
            args[n++] = l->arg;
            l->free_arg = NULL;
        }
    }
    return n;
}

/* Once closed and no notifier walks the list: runs the destructors, in
 * batches so that no allocation is needed. */
static void release_args(progress_t *p)
{
    enum { MAX = 16 };
    fut_free_fn fns[MAX];
    void *args[MAX];
    for (;;) {
        pthread_mutex_lock(&p->lock);
        size_t n =
            p->closed && p->active == 0 ? detach_args(p, fns, args, MAX) : 0;
        pthread_mutex_unlock(&p->lock);
        for (size_t i = 0; i < n; i++)
            fns[i](args[i]);
        if (n < MAX)
            return;
    }
}

static void block_close(fut__ext_t *e)
{
    /* The future settled: relays hold their continuation only while
     * progress can still come, else a continuation that borrows the
     * future's value (and so holds it) and the relay to it would keep each
     * other alive. */
    progress_t *p = (progress_t *)e;
    pthread_mutex_lock(&p->lock);
    p->closed = true;
    pthread_mutex_unlock(&p->lock);
    release_args(p);
}

/* --- notifying -------------------------------------------------------- */

static void relay_cb(fut_t *in, void *progress, void *d);

/* Relayed notifications queued by this thread: (continuation reference,
 * progress) pairs, in an array from malloc (runtime state). */
typedef struct relayed {
    fut_t *f;
    void *progress;
} relayed_t;

static _Thread_local struct {
    relayed_t *buf;
    size_t len, cap;
    bool active;
} later;

static bool later_push(fut_t *d, void *progress)
{
    if (later.len == later.cap) {
        size_t cap = later.cap ? later.cap * 2 : 16;
        relayed_t *buf = realloc(later.buf, cap * sizeof *buf);
        if (!buf)
            return false;
        later.buf = buf;
        later.cap = cap;
    }
    later.buf[later.len++] = (relayed_t){fut_retain(d), progress};
    return true;
}

/* Calls f's listeners with progress; relays are queued, not called. */
static int notify_one(fut_t *f, void *progress)
{
    if (fut_done(f))
        return EALREADY;
    progress_t *p = block_get(f);
    if (!p)
        return ENOMEM;
    pthread_mutex_lock(&p->lock);
    if (p->closed) {
        pthread_mutex_unlock(&p->lock);
        return EALREADY;
    }
    p->last = progress;
    p->has_last = true;
    p->active++;
    size_t n = p->count;
    listener_t *l = p->head;
    pthread_mutex_unlock(&p->lock);
    /* Only the first n listeners: the tail's `next` may be written by a
     * concurrent registration, so it is not read past the n-th. */
    for (; n > 0; n--) {
        listener_t *next = n > 1 ? l->next : NULL;
        if (l->cb != relay_cb || !later_push(l->arg, progress))
            l->cb(f, progress, l->arg); /* no memory: relay right here */
        l = next;
    }
    pthread_mutex_lock(&p->lock);
    bool last = --p->active == 0 && p->closed;
    pthread_mutex_unlock(&p->lock);
    if (last)
        release_args(p);
    return 0;
}

int fut__notify(fut_t *f, void *progress)
{
    if (later.active)
        return notify_one(f, progress); /* the outer call drains relays */
    later.active = true;
    int rc = notify_one(f, progress);
    /* Depth first: the most recent relay goes on first. */
    while (later.len > 0) {
        relayed_t r = later.buf[--later.len];
        notify_one(r.f, r.progress);
        fut_release(r.f);
    }
    later.active = false;
    free(later.buf);
    later.buf = NULL;
    later.cap = 0;
    return rc;
}

bool fut__progress_busy(void)
{
    return later.active;
}

static void relay_cb(fut_t *in, void *progress, void *d)
{
    (void)in;
    fut__notify(d, progress);
}

static void relay_free(void *d)
{
    fut_release(d);
}

void fut_progress(fut_ctx_t *ctx, void *progress)
{
    if (ctx)
        fut__notify(ctx->f, progress);
}

/* --- listening -------------------------------------------------------- */

/* Appends a listener to p (f's block).  0 with *replay set when f had
 * progress already (the caller then calls cb with *last: no user code runs
 * in here), EALREADY once closed, ENOMEM. */
static int add_listener(progress_t *p, void (*cb)(fut_t *, void *, void *),
                        void *arg, fut_free_fn free_arg, bool *replay,
                        void **last)
{
    listener_t *l = fut__alloc(sizeof *l);
    if (!l)
        return ENOMEM;
    *l = (listener_t){NULL, cb, arg, free_arg};
    pthread_mutex_lock(&p->lock);
    if (p->closed) {
        pthread_mutex_unlock(&p->lock);
        fut__free(l, sizeof *l);
        return EALREADY;
    }
    if (p->tail)
        p->tail->next = l;
    else
        p->head = l;
    p->tail = l;
    p->count++;
    *replay = p->has_last;
    *last = p->last;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* If f settled before its block was flagged, its settler saw no block to
 * close: close it here (core/ext.h). */
static void close_if_settled(fut_t *f, progress_t *p)
{
    if (fut_done(f))
        block_close(&p->ext);
}

/* The relay into a continuation's block, from its input:
 *   NONE        not installed;
 *   INSTALLING  a thread is adding it (no user code runs meanwhile);
 *   LISTENING   installed; links above may still lack theirs;
 *   DONE        installed, and so is every link above it.
 * Links become DONE only after a walk up the chain succeeded, so a walk
 * that meets DONE may stop there. */
enum { RELAY_NONE, RELAY_INSTALLING, RELAY_LISTENING, RELAY_DONE };

/* The relay state of p after claiming it: NONE means this thread now holds
 * it (INSTALLING) and must install the relay.  Waits while another thread
 * installs it: that thread runs no user code meanwhile. */
static int relay_claim(progress_t *p)
{
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int st = p->relay;
        if (st == RELAY_NONE)
            p->relay = RELAY_INSTALLING;
        pthread_mutex_unlock(&p->lock);
        if (st != RELAY_INSTALLING)
            return st;
        sched_yield();
    }
}

static void relay_set(progress_t *p, int st)
{
    pthread_mutex_lock(&p->lock);
    if (st != RELAY_DONE || p->relay == RELAY_LISTENING)
        p->relay = st;
    pthread_mutex_unlock(&p->lock);
}

/* Installs the relay from cur's input `in` into cur (p: cur's block, the
 * relay claimed).  0 or ENOMEM; on ENOMEM the claim is given back. */
static int relay_install(fut_t *cur, progress_t *p, fut_t *in)
{
    progress_t *ip = block_get(in);
    bool replay = false;
    void *last = NULL;
    int rc = ENOMEM;
    if (ip) {
        rc = add_listener(ip, relay_cb, fut_retain(cur), relay_free, &replay,
                          &last);
        if (rc != 0)
            fut_release(cur); /* the relay's reference, never handed over */
    }
    if (rc == ENOMEM) {
        relay_set(p, RELAY_NONE);
        return ENOMEM;
    }
    /* Installed, or `in` has settled (EALREADY: it will notify no more). */
    relay_set(p, RELAY_LISTENING);
    if (rc == 0) {
        close_if_settled(in, ip);
        if (replay)
            relay_cb(in, last, cur);
    }
    return 0;
}

/* Walks up from d, one link per pending continuation.  mark == false:
 * installs the missing relays, stopping at a DONE link; 0 or ENOMEM (the
 * relays installed stay, and a later call goes on where it stopped).
 * mark == true: marks the links LISTENING -> DONE, after a successful
 * install, up to the first DONE link.  O(links not yet DONE). */
static int walk_relays(fut_t *d, bool mark)
{
    fut_t *cur = fut_retain(d);
    int rc = 0;
    while (cur) {
        fut_t *in = fut__input(cur); /* NULL: not a pending continuation */
        progress_t *p = in ? block_get(cur) : NULL;
        bool stop = !in;
        if (in && !p) {
            rc = ENOMEM;
        } else if (p && mark) {
            pthread_mutex_lock(&p->lock);
            stop = p->relay == RELAY_DONE;
            pthread_mutex_unlock(&p->lock);
            relay_set(p, RELAY_DONE);
        } else if (p) {
            int st = relay_claim(p);
            stop = st == RELAY_DONE;
            if (st == RELAY_NONE)
                rc = relay_install(cur, p, in);
        }
        fut_release(cur);
        cur = in;
        if (rc || stop) {
            fut_release(cur);
            cur = NULL;
        }
    }
    return rc;
}

int fut_on_progress(fut_t *f, void (*cb)(fut_t *f, void *progress, void *arg),
                    void *arg)
{
    if (!f || !cb)
        return EINVAL;
    if (fut_done(f))
        return EALREADY;
    if (walk_relays(f, false) == ENOMEM)
        return ENOMEM;
    walk_relays(f, true);
    progress_t *p = block_get(f);
    if (!p)
        return ENOMEM;
    bool replay;
    void *last;
    int rc = add_listener(p, cb, arg, NULL, &replay, &last);
    if (rc == 0) {
        if (replay)
            cb(f, last, arg);
        close_if_settled(f, p);
    }
    return rc;
}

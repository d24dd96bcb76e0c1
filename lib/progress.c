/*
 * progress.c - progress notifications (jQuery's notify/progress).
 *
 * Listeners live in the future's extension block, allocated on first use
 * and freed with the future, so futures nobody watches pay one NULL word.
 * The listener list is append-only while the future lives: a notifier
 * takes the lock only to record the latest progress and to read how many
 * listeners exist, then calls them without the lock (a listener may notify,
 * register or settle from inside its callback).  Nodes are never freed
 * before the future, so walking them unlocked is safe.
 *
 * A continuation relays its input's progress (see install_relays), so a
 * listener at the end of a chain hears the head's notifications.  Relaying
 * recurses once per link that has listeners downstream.
 *
 * When the future settles the list closes (fut__ext_close): later
 * notifications and registrations answer EALREADY, and the relays'
 * references are dropped once no notifier is still walking the list.
 *
 * "memory" (jQuery.Callbacks): a listener added after a notification is
 * called at once with the latest progress; the lock makes each listener see
 * each notification exactly once.
 */
#include "future.h"

#include <errno.h>
#include <pthread.h>

typedef struct listener {
    struct listener *next;
    void (*cb)(fut_t *f, void *progress, void *arg);
    void *arg;
    fut_free_fn free_arg; /* runs when the future is freed */
} listener_t;

struct fut__ext {
    pthread_mutex_t lock;
    listener_t *head, *tail;
    size_t count;
    void *last;
    bool has_last;
    bool relayed;  /* a relay from this continuation's input is installed */
    bool closed;   /* the future settled: no more progress */
    size_t active; /* notifiers calling listeners now */
};

static fut__ext_t *ext_get(fut_t *f)
{
    fut__ext_t *ext = atomic_load_explicit(&f->ext, memory_order_acquire);
    if (ext)
        return ext;
    fut__ext_t *mine = fut__alloc(sizeof *mine);
    if (!mine)
        return NULL;
    pthread_mutex_init(&mine->lock, NULL);
    mine->head = mine->tail = NULL;
    mine->count = 0;
    mine->last = NULL;
    mine->has_last = false;
    mine->relayed = false;
    mine->closed = false;
    mine->active = 0;
    if (atomic_compare_exchange_strong_explicit(
            &f->ext, &ext, mine, memory_order_acq_rel, memory_order_acquire))
        return mine;
    pthread_mutex_destroy(&mine->lock);
    fut__free(mine, sizeof *mine);
    return ext; /* another thread installed one first */
}

void fut__ext_free(fut__ext_t *ext)
{
    listener_t *l = ext->head;
    while (l) {
        listener_t *next = l->next;
        if (l->free_arg)
            l->free_arg(l->arg);
        fut__free(l, sizeof *l);
        l = next;
    }
    pthread_mutex_destroy(&ext->lock);
    fut__free(ext, sizeof *ext);
}

/* Detaches up to max arguments that have destructors (relays, which hold
 * their continuation); lock held.  The caller runs the destructors after
 * unlocking. */
static size_t detach_args(fut__ext_t *ext, fut_free_fn *fns, void **args,
                          size_t max)
{
    size_t n = 0;
    for (listener_t *l = ext->head; l && n < max; l = l->next) {
        if (l->free_arg) {
            fns[n] = l->free_arg;
            args[n++] = l->arg;
            l->free_arg = NULL;
        }
    }
    return n;
}

/* Runs the detached destructors, in batches so no allocation is needed. */
static void release_args(fut__ext_t *ext)
{
    enum { MAX = 16 };
    fut_free_fn fns[MAX];
    void *args[MAX];
    for (;;) {
        pthread_mutex_lock(&ext->lock);
        size_t n = ext->closed && ext->active == 0
                       ? detach_args(ext, fns, args, MAX)
                       : 0;
        pthread_mutex_unlock(&ext->lock);
        for (size_t i = 0; i < n; i++)
            fns[i](args[i]);
        if (n < MAX)
            return;
    }
}

void fut__ext_close(fut__ext_t *ext)
{
    /* f settled: relays hold their continuation only while progress can
     * still come, else a continuation that borrows f's value (and so holds
     * f) and f's relay to it would keep each other alive. */
    pthread_mutex_lock(&ext->lock);
    ext->closed = true;
    pthread_mutex_unlock(&ext->lock);
    release_args(ext);
}

int fut__notify(fut_t *f, void *progress)
{
    if (fut_done(f))
        return EALREADY;
    fut__ext_t *ext = ext_get(f);
    if (!ext)
        return ENOMEM;
    pthread_mutex_lock(&ext->lock);
    if (ext->closed) {
        pthread_mutex_unlock(&ext->lock);
        return EALREADY;
    }
    ext->last = progress;
    ext->has_last = true;
    ext->active++;
    size_t n = ext->count;
    listener_t *l = ext->head;
    pthread_mutex_unlock(&ext->lock);
    /* Only the first n listeners: the tail's `next` may be written by a
     * concurrent registration, so it is not read past the n-th. */
    for (; n > 0; n--) {
        listener_t *next = n > 1 ? l->next : NULL;
        l->cb(f, progress, l->arg);
        l = next;
    }
    pthread_mutex_lock(&ext->lock);
    bool last = --ext->active == 0 && ext->closed;
    pthread_mutex_unlock(&ext->lock);
    if (last)
        release_args(ext);
    return 0;
}

static int add_listener(fut_t *f,
                        void (*cb)(fut_t *f, void *progress, void *arg),
                        void *arg, fut_free_fn free_arg)
{
    fut__ext_t *ext = ext_get(f);
    listener_t *l = ext ? fut__alloc(sizeof *l) : NULL;
    if (!l) {
        if (free_arg)
            free_arg(arg);
        return ENOMEM;
    }
    l->next = NULL;
    l->cb = cb;
    l->arg = arg;
    l->free_arg = free_arg;
    pthread_mutex_lock(&ext->lock);
    if (ext->closed) {
        pthread_mutex_unlock(&ext->lock);
        fut__free(l, sizeof *l);
        if (free_arg)
            free_arg(arg);
        return EALREADY;
    }
    if (ext->tail)
        ext->tail->next = l;
    else
        ext->head = l;
    ext->tail = l;
    ext->count++;
    bool replay = ext->has_last;
    void *last = ext->last;
    pthread_mutex_unlock(&ext->lock);
    if (replay)
        cb(f, last, arg);
    /* If f settled before this block existed, its settler saw no block to
     * close: close it here.  The fences pair with the one in publish. */
    atomic_thread_fence(memory_order_seq_cst);
    if (fut_done(f))
        fut__ext_close(ext);
    return 0;
}

/* --- relaying down a chain -------------------------------------------- */

/* A continuation hears its input's progress through a relay listener on
 * the input, installed when someone first listens to the continuation, and
 * up the chain from there (iteratively).  The relay holds a reference to
 * the continuation, dropped when the input is freed. */

static void relay_cb(fut_t *in, void *progress, void *d)
{
    (void)in;
    fut__notify(d, progress);
}

static void relay_free(void *d)
{
    fut_release(d);
}

static void install_relays(fut_t *d)
{
    fut_t *cur = fut_retain(d);
    while (cur) {
        fut__kind_t k = fut__kind(fut__load(cur));
        if (k != FUT__KIND_THEN && k != FUT__KIND_FINALLY)
            break;
        fut__ext_t *ext = ext_get(cur);
        if (!ext)
            break;
        pthread_mutex_lock(&ext->lock);
        bool done = ext->relayed;
        ext->relayed = true;
        pthread_mutex_unlock(&ext->lock);
        if (done)
            break;
        fut__cont_t *c = fut__as_cont(cur);
        fut_t *in = fut__cont_borrow_input(c);
        if (!in)
            break; /* the continuation has run: no more progress */
        fut_retain(in);
        fut__cont_return_input(c, in);
        add_listener(in, relay_cb, fut_retain(cur), relay_free);
        fut_release(cur);
        cur = in;
    }
    fut_release(cur);
}

int fut_on_progress(fut_t *f, void (*cb)(fut_t *f, void *progress, void *arg),
                    void *arg)
{
    if (!f || !cb)
        return EINVAL;
    if (fut_done(f))
        return EALREADY;
    int rc = add_listener(f, cb, arg, NULL);
    if (rc == 0)
        install_relays(f);
    return rc;
}

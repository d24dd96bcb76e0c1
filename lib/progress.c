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
    bool relayed; /* a relay from this continuation's input is installed */
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
    if (atomic_compare_exchange_strong_explicit(&f->ext, &ext, mine,
                                                memory_order_acq_rel,
                                                memory_order_acquire))
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

int fut__notify(fut_t *f, void *progress)
{
    if (fut_done(f))
        return EALREADY;
    fut__ext_t *ext = ext_get(f);
    if (!ext)
        return ENOMEM;
    pthread_mutex_lock(&ext->lock);
    ext->last = progress;
    ext->has_last = true;
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

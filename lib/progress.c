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
} listener_t;

struct fut__ext {
    pthread_mutex_t lock;
    listener_t *head, *tail;
    size_t count;
    void *last;
    bool has_last;
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
    for (; n > 0; n--, l = l->next)
        l->cb(f, progress, l->arg);
    return 0;
}

int fut_on_progress(fut_t *f, void (*cb)(fut_t *f, void *progress, void *arg),
                    void *arg)
{
    if (!f || !cb)
        return EINVAL;
    if (fut_done(f))
        return EALREADY;
    fut__ext_t *ext = ext_get(f);
    if (!ext)
        return ENOMEM;
    listener_t *l = fut__alloc(sizeof *l);
    if (!l)
        return ENOMEM;
    l->next = NULL;
    l->cb = cb;
    l->arg = arg;
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

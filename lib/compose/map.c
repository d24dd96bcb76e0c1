/*
 * map.c - PEP 3148 map with a chunk size.
 *
 * The items are cut into chunks; each chunk is one task that calls fn on
 * its items in order, each call with a context of its own (so each result
 * can name its destructor).  The chunk futures are combined with
 * fut_when_ex(FUT_WHEN_ALL, FUT_CANCEL_LOSERS): the first failure rejects
 * the map and cancels the chunks that have not started.  A continuation
 * then fulfils the map's future with the results array.
 *
 * One block holds the item pointers (copied: the caller's array is only
 * borrowed for the call), the results and their destructors, and the chunk
 * descriptors.  References: one per chunk task (its free_arg), one for the
 * continuation (its free_arg), one for the map's value (its destructor).
 * The last one destroys every result that was produced and frees the
 * block, so a failed map loses nothing either.
 */
#include "core/ctx.h"
#include "util/msg.h"

#include <errno.h>
#include <string.h>

typedef struct chunk {
    struct map *m;
    size_t start, end;
} chunk_t;

typedef struct map {
    _Atomic size_t refs;
    size_t n, nchunks, size;
    fut_map_fn fn;
    void *arg;
    void **items;
    fut_free_fn *frees;
    chunk_t *chunks;
    struct map *back; /* the word before results: see value_free */
    void *results[];
} map_t;

static void map_release(void *p)
{
    map_t *m = p;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < m->n; i++)
        if (m->frees[i])
            m->frees[i](m->results[i]);
    fut__free(m, m->size);
}

static void chunk_release(void *p)
{
    map_release(((chunk_t *)p)->m);
}

static void value_free(void *results)
{
    map_release(((map_t **)results)[-1]);
}

static void *run_chunk(fut_ctx_t *ctx, void *p)
{
    chunk_t *c = p;
    map_t *m = c->m;
    for (size_t i = c->start; i < c->end; i++) {
        if (fut_cancel_requested(ctx))
            return fut_fail(ctx, ECANCELED, "fut_map: cancelled");
        fut_ctx_t item = {.f = ctx->f};
        void *v = m->fn(&item, m->items[i], m->arg);
        if (item.adopt) {
            fut_release(item.adopt);
            if (!item.code) {
                item.code = EINVAL;
                item.message = fut__msg_copy(
                    "fut_map: fut_adopt is not available inside a map");
            }
        }
        if (item.code) {
            if (v && item.free_value)
                item.free_value(v);
            /* The chunk fails with the item's error. */
            ctx->code = item.code;
            ctx->domain = item.domain;
            ctx->message = item.message;
            return NULL;
        }
        m->results[i] = v;
        m->frees[i] = item.free_value;
    }
    return NULL;
}

static void *all_done(fut_ctx_t *ctx, void *value, void *p)
{
    (void)value;
    map_t *m = p;
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    fut_set_free(ctx, value_free);
    return m->results;
}

fut_t *fut_map(fut_executor_t *ex, fut_map_fn fn, void *const *items, size_t n,
               size_t chunk, void *arg)
{
    if (!ex || !fn || (!items && n))
        return fut_rejected(EINVAL, "fut_map: bad arguments");
    if (n == 0)
        return fut_resolved(NULL, NULL);
    if (chunk == 0)
        chunk = 1;
    size_t nchunks = n / chunk + (n % chunk != 0);
    if (n > (SIZE_MAX / 2) / 64)
        return fut_rejected(EINVAL, "fut_map: too many items");
    size_t size = sizeof(map_t) + n * sizeof(void *) + n * sizeof(void *) +
                  n * sizeof(fut_free_fn) + nchunks * sizeof(chunk_t);
    fut_t **fs = fut__alloc(nchunks * sizeof *fs);
    map_t *m = fs ? fut__alloc(size) : NULL;
    if (!m) {
        fut__free(fs, nchunks * sizeof *fs);
        return &fut__enomem;
    }
    memset(m, 0, size);
    m->size = size;
    m->n = n;
    m->nchunks = nchunks;
    m->fn = fn;
    m->arg = arg;
    m->back = m;
    m->items = (void **)(m->results + n);
    m->frees = (fut_free_fn *)(m->items + n);
    m->chunks = (chunk_t *)(m->frees + n);
    memcpy(m->items, items, n * sizeof(void *));
    atomic_init(&m->refs, nchunks + 1);
    for (size_t c = 0; c < nchunks; c++) {
        chunk_t *ch = &m->chunks[c];
        ch->m = m;
        ch->start = c * chunk;
        ch->end = ch->start + chunk < n ? ch->start + chunk : n;
        fs[c] = fut_submit_ex(ex, run_chunk, ch, chunk_release, 0);
    }
    fut_t *all = fut_when_ex(FUT_WHEN_ALL, fs, nchunks, 0, FUT_CANCEL_LOSERS);
    fut__free(fs, nchunks * sizeof *fs);
    return fut_then_ex(NULL, all, all_done, NULL, m, map_release);
}

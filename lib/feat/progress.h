/*
 * progress.h - progress notifications (private; feature layer).
 */
#ifndef FUT_FEAT_PROGRESS_H
#define FUT_FEAT_PROGRESS_H

#include "core/future.h"

/* Tells f's progress listeners (and, through relays, the listeners of the
 * continuations that wait for f): 0, EALREADY once f settled, ENOMEM. */
int fut__notify(fut_t *f, void *progress);

/* True while this thread relays progress (it must not give the thread
 * away meanwhile: see fut__may_suspend). */
bool fut__progress_busy(void);

#endif /* FUT_FEAT_PROGRESS_H */

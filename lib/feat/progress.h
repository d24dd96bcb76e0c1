/*
 * progress.h - progress notifications (private; feature layer).
 */
#ifndef FUT_FEAT_PROGRESS_H
#define FUT_FEAT_PROGRESS_H

#include "core/future.h"

/* Tells f's progress listeners (and, through relays, the listeners of the
 * continuations that wait for f): 0, EALREADY once f settled, ENOMEM. */
int fut__notify(fut_t *f, void *progress);

#endif /* FUT_FEAT_PROGRESS_H */

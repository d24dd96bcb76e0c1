/*
 * group.h - task groups: members started as you go, a future that settles
 * once every member has (private; feature layer).
 */
#ifndef FUT_FEAT_GROUP_H
#define FUT_FEAT_GROUP_H

#include "feat/kinds.h"

#include <pthread.h>

extern const fut__kind_ops_t fut__group_kind;

/* The group's block and members, shared by group.c (the block, settling,
 * cancelling, the API) and group_member.c (adding, starting and counting
 * members).  The design is at the top of group.c. */
typedef enum fut__group_cause {
    CAUSE_NONE,
    CAUSE_FAILED,   /* ALL: a member failed */
    CAUSE_WON,      /* RACE: a member fulfilled */
    CAUSE_DEADLINE, /* the deadline passed */
    CAUSE_CANCEL,   /* fut_group_cancel, fut_cancel on R, a parent */
} cause_t;

struct fut_group {
    pthread_mutex_t lock;
    _Atomic size_t refs;
    fut_executor_t *ex; /* a reference */
    unsigned mode;
    fut_t *result;              /* R: RUNNING until every member settled */
    fut_t **members;            /* in start order, a reference each */
    void **values;              /* ALL: filled as members fulfil */
    unsigned char *running_now; /* per member: started by us, not settled */
    size_t n, cap;
    size_t settled, rejected;
    size_t started, running, max_running; /* tasks queued or run so far */
    fut_t *first_failed; /* a reference: ALL's first failure, RACE's last */
    fut_group_t *self;   /* the word before `won`: see value_free */
    fut_any_t won;       /* RACE */
    cause_t cause;
    bool closed, finished;
    fut_t *timer; /* the deadline (a reference), or NULL */
};

typedef struct member {
    fut__cb_t slot; /* first: on the member's callback stack */
    fut_group_t *g;
    size_t index;
    fut_fn fn; /* a task member's function, argument and destructor */
    void *arg;
    fut_free_fn free_arg;
} member_t;

_Static_assert(sizeof(member_t) == FUT__CLASS_LARGE,
               "member records are cached by the allocator");

/* The block's references (group.c). */
void fut__group_retain(fut_group_t *g);
void fut__group_unref(fut_group_t *g);
/* Lock held: room for one more member; false on ENOMEM (group.c). */
bool fut__group_grow(fut_group_t *g);
/* Every member settled and the group closed: settles R (group.c). */
void fut__group_finish(fut_group_t *g);
/* Lock held: records the first cause; true if this was it (group.c). */
bool fut__group_set_cause(fut_group_t *g, cause_t cause);
/* Sets the cause and cancels the members; true if this was the first
 * cause (group.c). */
bool fut__group_cancel(fut_group_t *g, cause_t cause);
/* Cancels the members that have not settled, no lock held (group.c). */
void fut__group_cancel_members(fut_group_t *g);
/* Starts waiting task members while the limit allows (group_member.c). */
void fut__group_start_members(fut_group_t *g);

#endif /* FUT_FEAT_GROUP_H */

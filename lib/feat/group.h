/*
 * group.h - task groups: members started as you go, a future that settles
 * once every member has (private; feature layer).
 */
#ifndef FUT_FEAT_GROUP_H
#define FUT_FEAT_GROUP_H

#include "feat/kinds.h"
#include "feat/task.h"
#include "util/lock.h"

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

/* Three parts, each on cache lines of its own (padding: the block comes
 * from the allocator, which aligns to 16 bytes), so that the slots of
 * members settling on the workers and the thread adding members do not
 * bounce one line (with the lock-free slot, W9's group cost went from
 * 9.3x to 1.6-2.0x over fut_when_all, 3 processes). */
struct fut_group {
    /* Read-mostly: set at creation, or rarely. */
    fut_executor_t *ex; /* a reference */
    unsigned mode;
    _Atomic size_t refs;
    fut_t *result;          /* R: RUNNING until every member settled */
    _Atomic size_t waiting; /* members behind `started` */
    fut_group_t *self;      /* the word before `won`: see value_free */
    fut_any_t won;          /* RACE, under the lock */
    char pad0[64];
    /* Under the lock. */
    fut__lock_t lock;
    fut_t **members;              /* in start order, a reference each */
    void **values;                /* ALL: filled from the members at finish */
    _Atomic unsigned char *marks; /* per member: MARK_RUNNING, _UNWATCHED */
    size_t n, cap;
    size_t unwatched;        /* members marked UNWATCHED (0 once closed) */
    size_t started;          /* members[0..started) were started or skipped */
    size_t fast_started;     /* members started at once (COUNTED) */
    size_t deferred_running; /* deferred members marked RUNNING */
    size_t credits;          /* of `pending`, taken ahead for members to add */
    size_t max_running;
    fut_t *first_failed; /* a reference: ALL's first failure, RACE's last */
    cause_t cause;
    bool closed, finished;
    fut_t *timer; /* the deadline (a reference), or NULL */
    char pad1[64];
    /* Written by the slots without the lock. */
    _Atomic size_t pending;   /* slots to fire + credits, + 1 while open */
    _Atomic size_t fast_done; /* COUNTED members settled */
    _Atomic size_t rejected;  /* members that rejected */
};

/* A member's mark.  RUNNING: a deferred member started and not settled
 * (under the lock).  UNWATCHED: a task member started at once, whose
 * slot is not pushed yet (group.c, Watching); whoever exchanges the mark
 * away from UNWATCHED watches it, once.  VALUE: its watcher found it
 * fulfilled and wrote ALL's values[i]. */
enum { MARK_NONE = 0, MARK_RUNNING = 1, MARK_UNWATCHED = 2, MARK_VALUE = 3 };

/* The member's flags, in the high bits of its record's index.  OWN: the
 * record is an allocation of its own (a future handed to fut_group_add),
 * freed by its slot; a task member's record is the room of its roomy task
 * (task.h), and goes with the future. */
#define FUT__MEMBER_COUNTED ((size_t)1 << (sizeof(size_t) * 8 - 1))
#define FUT__MEMBER_DEFERRED ((size_t)1 << (sizeof(size_t) * 8 - 2))
#define FUT__MEMBER_OWN ((size_t)1 << (sizeof(size_t) * 8 - 3))
#define FUT__MEMBER_INDEX (FUT__MEMBER_OWN - 1)

typedef struct member {
    fut__cb_t slot; /* first: on the member's callback stack */
    fut_group_t *g;
    size_t index; /* and the flags above */
    fut_fn fn;    /* a task member's function, argument and destructor */
    void *arg;
    fut_free_fn free_arg;
} member_t;

_Static_assert(sizeof(member_t) == FUT__CLASS_LARGE,
               "member records are cached by the allocator");
_Static_assert(sizeof(member_t) <= FUT__TASK_ROOM,
               "a task member's record fits its task's room");

/* The block's references (group.c). */
void fut__group_retain(fut_group_t *g);
void fut__group_unref(fut_group_t *g);
/* Lock held: room for one more member; false on ENOMEM (group.c). */
bool fut__group_grow(fut_group_t *g);
/* Drops k of `pending`; who drops the last settles R (group.c). */
void fut__group_settle(fut_group_t *g, size_t k);
/* Lock held: records the first cause; true if this was it (group.c). */
bool fut__group_set_cause(fut_group_t *g, cause_t cause);
/* Sets the cause and cancels the members; true if this was the first
 * cause (group.c). */
bool fut__group_cancel(fut_group_t *g, cause_t cause);
/* Cancels the members that have not settled, no lock held (group.c). */
void fut__group_cancel_members(fut_group_t *g);
/* Starts waiting task members while the limit allows (group_member.c). */
void fut__group_start_members(fut_group_t *g);
/* Watches the unwatched members among the first n, with the lock held
 * (locked: the members may still grow) or not (closed: they cannot).  The
 * caller has added one to `pending` for each member it took off
 * `unwatched`; returns how many slots it pushed, so the caller gives the
 * rest back: members dispatched already (counted here) and members that
 * watched themselves.  *cancel_others: a member counted here decided the
 * group (group_member.c). */
size_t fut__group_watch(fut_group_t *g, size_t n, bool locked,
                        bool *cancel_others);

#endif /* FUT_FEAT_GROUP_H */

#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_ops into fuzz/corpus (run it from anywhere).

Each seed is a small program in fuzz_ops's byte code: the first byte picks
the executors (bit 0: add a one-worker pool), then operations follow, each
an opcode byte (value % 5: 0 then, 1 when, 2 task, 3 settle, 4 misc) and its
argument bytes, as fuzz_ops.c reads them.
"""
import os

THEN, WHEN, TASK, SETTLE, MISC = 0, 1, 2, 3, 4


def then(form, slot, x):
    return [THEN, form, slot, x]


def when(n, c, slots):
    return [WHEN, n, c] + slots


def task(ex, x, slot):
    return [TASK, ex, x, slot]


def settle(b):
    return [SETTLE, b]


def misc(b, s):
    return [MISC, b, s]


SEEDS = {
    # Promises resolved and rejected, a then and a catch on them, a query.
    "chain_inline": [0] + settle(0) + then(0, 0, 0) + settle(1 | 4)
    + then(1, 1, 0) + misc(1, 0) + misc(1, 1),
    # Tasks on the pool: value, failure, adoption of a promise's future.
    "pool_tasks": [1] + task(2, 0, 4) + task(2, 1 | (1 << 3), 5)
    + task(2, 3, 6) + settle(0) + misc(1, 4) + misc(1, 6),
    # Continuations on the loop executor, drained by the loop's owner.
    "loop_then": [0] + then(4 | (1 << 3), 0, 0) + then(6 | (1 << 3), 1, 0)
    + settle(0) + settle(3 | 4) + misc(9, 0) + misc(1, 0),
    # when_all, when_any with CANCEL_LOSERS, when_some over the promises.
    "combinators": [0] + when(3, 0, [0, 1, 2]) + when(2, 2 | 0x80, [0x83, 1])
    + when(4, 4 | (2 << 3), [0, 1, 2, 3]) + settle(0) + settle(5) + misc(1, 0),
    # Cancels of pending and settled futures, a within and a delay.
    "cancel_timers": [1] + misc(6, 0) + misc(6 | 0x10, 5) + misc(0, 0)
    + misc(0, 5) + then(7, 1, 4) + misc(0, 1) + settle(0 | 4),
    # Bad arguments and NULL slots: EINVAL everywhere.
    "bad_arguments": [0] + misc(2, 7) + misc(1, 7) + misc(15, 7)
    + when(2, 5, [7, 6]) + settle(1 | (2 << 4)) + misc(4, 7),
    # Waits with zero timeout, as_completed, map, progress, stats.
    "queries": [1] + misc(10, 3) + misc(11, 0) + misc(12, 3 | (2 << 2))
    + misc(5, 0) + settle(2) + misc(13, 0) + misc(14, 0) + misc(9, 0),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, prog in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(b & 0xFF for b in prog))


if __name__ == "__main__":
    main()

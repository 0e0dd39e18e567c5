"""Which replaced functions are still running: their old code is on a thread's stack.

A patch flips a function's cell, so its *next call* runs the new code; a call already
in progress finishes in the old code.  For most functions that is a moment, but a
function that never returns (`main`'s loop, a thread's start routine) keeps running
its old code for the program's whole life, and the user must hear so, or the edit
seems to have done nothing.

The check reads each thread's stack from its stack pointer up and looks for return
addresses inside the old code.  A thread blocked in a system call (the common case for
a loop that sleeps, polls or reads) tells its stack pointer in `/proc/PID/task/TID/
syscall` without being stopped; a thread that is running at that moment is looked at
again for a few milliseconds, never stopped to ask (ptrace's side effects: EINTR in
the program).  A word on
the stack that merely looks like an address in the old code can make a false positive;
the words are above the stack pointer, so they belong to live frames, and what is
reported ("runs its new code from its next call") is true either way.
"""

from __future__ import annotations

import os
import time

import numpy as np

#: at most this much of each stack is read (a deep recursion needs no more to be seen)
MAX_STACK_READ = 1 << 20
#: how long a thread that is running (not in a system call) is waited for, and how often
#: it is looked at; a thread that never makes a system call is not seen
SAMPLE_PATIENCE = 0.01
SAMPLE_INTERVAL = 0.0005


def running_functions(words: np.ndarray, ranges: list[tuple[str, int, int]]) -> list[str]:
    """Names of the `ranges` (name, start address, size) that some 8-byte word of
    `words` (a stack's contents, uint64) points into.  Pure."""
    if not len(words) or not ranges:
        return []
    starts = np.array([r[1] for r in ranges], np.uint64)
    ends = starts + np.array([r[2] for r in ranges], np.uint64)
    order = np.argsort(starts)
    starts, ends = starts[order], ends[order]
    i = np.searchsorted(starts, words, side="right") - 1
    ok = i >= 0
    hit = np.zeros(len(words), bool)
    hit[ok] = words[ok] < ends[i[ok]]
    found = np.unique(i[hit])
    return sorted({ranges[int(order[k])][0] for k in found.tolist()})


def thread_stack_pointers(pid: int, patience: float = SAMPLE_PATIENCE) -> list[int]:
    """The stack pointer of every thread of `pid` when it is blocked in a system call.
    A thread running at the moment is looked at again for up to `patience` seconds (a
    loop that computes, then sleeps or prints, is caught in its next call)."""
    out = []
    try:
        pending = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    deadline = time.monotonic() + patience
    while pending:
        running = []
        for tid in pending:
            try:
                with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                    fields = f.read().split()
            except OSError:
                continue                  # the thread ended
            # "nr a1 a2 a3 a4 a5 a6 sp pc" while blocked; "running" (or "-1 sp pc") otherwise
            if len(fields) == 9 and fields[0] != "-1":
                out.append(int(fields[7], 16))
            else:
                running.append(tid)
        if not running or time.monotonic() > deadline:
            break
        pending = running
        time.sleep(SAMPLE_INTERVAL)
    return out


def _mapping_end(pid: int, address: int) -> int | None:
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                lo, _, rest = line.partition("-")
                hi = rest.split(" ", 1)[0]
                if int(lo, 16) <= address < int(hi, 16):
                    return int(hi, 16)
    except OSError:
        pass
    return None


def functions_on_stacks(pid: int, read, ranges: list[tuple[str, int, int]]) -> list[str]:
    """The `ranges` (name, old code address, size) that a thread of `pid` is running,
    read through `read(address, size) -> bytes` (the session's memory reader)."""
    found: set[str] = set()
    if not ranges:
        return []
    for sp in thread_stack_pointers(pid):
        end = _mapping_end(pid, sp)
        if end is None:
            continue
        start = sp & ~7
        try:
            data = read(start, min(end - start, MAX_STACK_READ))
        except Exception:          # the thread ended, or its stack went: nothing to see
            continue
        words = np.frombuffer(data[:len(data) & ~7], np.uint64)
        found.update(running_functions(words, ranges))
    return sorted(found)

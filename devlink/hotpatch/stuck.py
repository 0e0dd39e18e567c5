"""An edit that never returns: a thread caught in a loop in patched code.

The session samples the child's threads twice a second (`sample_threads`): a thread
blocked in a system call is read from /proc without stopping it (its pc and sp from
`/proc/PID/task/TID/syscall`, its stack from `/proc/PID/mem`); a thread running in user
space is stopped for a moment by the crash guard to read its registers (it is in no
system call, so nothing sees EINTR).  Each sample is the innermost frame in the
program's own code, named by the crash map (function, atom, generation), found by the
crash report's stack scan when the pc is in a library (a loop that calls `usleep`).

`StuckDetector` (pure) then says when a thread has stayed in one function atom that a
patch placed (a generation newer than the one the child started with) for far longer
than that function was ever seen to stay: at least STUCK_SECONDS, and FACTOR times its
longest stay before.  A function that by nature runs long (a worker's loop, `main`)
was seen staying long, so its threshold is high; code the child started with is never
reported (it was not an edit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: a thread in patched code this long (and FACTOR times longer than the function was
#: ever seen staying) is reported
STUCK_SECONDS = 2.0
FACTOR = 4.0
#: how often the threads are sampled
SAMPLE_INTERVAL = 0.5


@dataclass(frozen=True)
class Where:
    """The innermost frame of a thread in the program's own code."""

    name: str
    start: int               #: the atom's address (another version is another atom)
    generation: int


@dataclass
class Stuck:
    tid: int
    where: Where
    seconds: float

    def message(self, program: str) -> str:
        return (f"{program}: thread {self.tid} has been in {self.where.name} (generation {self.where.generation}) "
                f"for {self.seconds:.1f} s without returning: the edit may loop forever; press r (devlink "
                f"restart) to start the program again, or u (devlink undo) to take the edit back for later calls")

    def as_dict(self) -> dict:
        return {"thread": self.tid, "function": self.where.name, "generation": self.where.generation,
                "seconds": round(self.seconds, 1)}


class StuckDetector:
    """Stays of threads in functions, from samples; reports a stay in patched code that
    lasts far longer than that function ever stayed."""

    def __init__(self, start_generation: int):
        self.start_generation = start_generation
        #: thread -> (where, time of the first sample of this stay)
        self.stays: dict[int, tuple[Where, float]] = {}
        #: function name -> the longest stay seen of any of its versions
        self.longest: dict[str, float] = {}
        self.reported: dict[int, Stuck] = {}

    def observe(self, now: float, samples: dict[int, Where | None]) -> list[Stuck]:
        """Take one round of samples; returns the threads newly found stuck."""
        new = []
        for tid in list(self.stays):
            if tid not in samples:
                self._end(tid, now)
        for tid, where in samples.items():
            stay = self.stays.get(tid)
            if stay is not None and stay[0] != where:
                self._end(tid, now)
                stay = None
            if where is None:
                continue
            if stay is None:
                self.stays[tid] = (where, now)
                continue
            seconds = now - stay[1]
            before = self.longest.get(where.name, 0.0)
            if (where.generation > self.start_generation and tid not in self.reported
                    and seconds >= max(STUCK_SECONDS, FACTOR * before)):
                self.reported[tid] = Stuck(tid, where, seconds)
                new.append(self.reported[tid])
            elif tid in self.reported:
                self.reported[tid].seconds = seconds
        return new

    def _end(self, tid: int, now: float) -> None:
        where, since = self.stays.pop(tid)
        if tid not in self.reported:        # a reported stay does not raise its own bar
            self.longest[where.name] = max(self.longest.get(where.name, 0.0), now - since)
        self.reported.pop(tid, None)

    @property
    def stuck(self) -> list[Stuck]:
        return list(self.reported.values())


def sample_threads(pid: int, guard, amap, program: str | None = None) -> dict[int, Where | None]:
    """The innermost program frame of every thread of `pid` now (None: none found)."""
    from devlink.hotpatch.crash import walk_frames
    from devlink.hotpatch.guard import stack_frames
    from devlink.hotpatch.libsyms import function_at, function_at_address
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return {}
    regs: dict[int, tuple[int, int]] = {}
    running = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            continue
        if not fields or fields[0] == "running":
            running.append(tid)
        elif len(fields) >= 9:              # nr, 6 arguments, sp, pc
            regs[tid] = (int(fields[8], 16), int(fields[7], 16))
    if running and guard is not None:
        regs.update(guard.registers(running))
    own = (lambda address: function_at_address(program, address)) if program else None
    out: dict[int, Where | None] = {}
    for tid, (pc, sp) in regs.items():
        try:
            maps, frames = stack_frames(tid, sp)
        except OSError:
            continue
        out[tid] = None
        for address, _, in_program in walk_frames(pc, frames, amap, maps, function_at, own):
            if in_program:
                hit = amap.lookup(address)
                if hit is not None:
                    out[tid] = Where(hit[0], address - hit[1], hit[2])
                break
    return out

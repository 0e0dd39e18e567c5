"""One patch step: plan an update and apply it to the running child, as one short step."""

from __future__ import annotations

import contextlib
import os
import time

from devlink.collector import collector_paused
from devlink.hotpatch.plan import PatchPlan, plan_patch

#: a sleep this long before the step makes the scheduler count devlink as a waking task,
#: so the step runs on a fresh time slice (measured: without it, the child's busy
#: threads on the same cores preempt the step now and then for milliseconds)
FRESH_SLICE_SLEEP = 50e-6


def apply_plan(patcher, plan: PatchPlan) -> tuple[float, float]:
    """Apply a safe `plan` through `patcher` as one short step: the collector off, not
    preempted.  Returns the seconds the writes and flips took, and the wall-clock time
    of the last flip (when the program started running the new code)."""
    _, seconds, flipped_at = _step(patcher, lambda: plan)
    return seconds, flipped_at


def patch_step(patcher, result) -> tuple[PatchPlan, float]:
    """Plan `result` and, if it is safe, apply it through `patcher` (as `apply_plan`).
    Returns the plan and the seconds the step (plan + writes + flips) took."""
    plan, seconds, _ = _step(patcher, lambda: plan_patch(result))
    return plan, seconds


def _step(patcher, make_plan) -> tuple[PatchPlan, float, float]:
    with collector_paused(), _not_preempted():
        t0 = time.perf_counter()
        plan = make_plan()
        if plan.safe:
            patcher.apply(plan)
        return plan, time.perf_counter() - t0, time.time()


@contextlib.contextmanager
def _not_preempted():
    """The step's few dozen microseconds at real-time priority where the system allows
    it (root, or an RLIMIT_RTPRIO), so a program's busy threads on the same cores cannot
    preempt it halfway for a whole time slice; elsewhere a short sleep first, so it at
    least starts on a fresh slice."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):
        if FRESH_SLICE_SLEEP:
            time.sleep(FRESH_SLICE_SLEEP)
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

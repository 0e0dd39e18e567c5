"""Python's cyclic garbage collector, paused where a pause would hurt.

A link state is a large graph with no garbage in it: a collection in the middle of a
link rescans it over and over, and one inside a patch step stalls it for milliseconds.
"""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def collector_paused(freeze_after: bool = False):
    """No cyclic collection inside (reference counting still frees what it can).
    `freeze_after`: what was made inside joins the frozen generation (gc.freeze), so
    the collection that the allocations made inside trigger right after does not walk
    it (for a session whose link state is frozen: an update's new objects are that
    state from now on; at 10,000 functions the walk cost 0.4 ms of each update)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze_after:
            gc.freeze()
        if was_enabled:
            gc.enable()


#: whether a link state was frozen by `freeze_state` (gc.get_freeze_count() would tell,
#: but it counts the frozen objects one by one: milliseconds for a large state)
_state_frozen = False


def freeze_state() -> None:
    """Everything alive now (a link state that lives as long as its session) moves to
    the frozen generation: the collector's full passes no longer walk it."""
    global _state_frozen
    gc.freeze()
    _state_frozen = True


def unfreeze_state() -> None:
    """Back to collectable (a state about to be replaced, or a session's end)."""
    global _state_frozen
    gc.unfreeze()
    _state_frozen = False


def state_frozen() -> bool:
    return _state_frozen

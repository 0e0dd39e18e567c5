"""Python's cyclic garbage collector, paused where a pause would hurt.

A link state is a large graph with no garbage in it: a collection in the middle of a
link rescans it over and over, and one inside a patch step stalls it for milliseconds.
"""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def collector_paused():
    """No cyclic collection inside (reference counting still frees what it can)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

"""Shared int objects for the indexes the link state keeps per atom and per symbol.

CPython makes a new 32-byte object for every int past 256 that arithmetic, `len` or
`range` produces.  The state of a 100,000-function program keeps several indexes per
function: its atom's slot in the output section, its stub, its row in the extras table
and in the symbol table's globals, its symbol-table index.  Their values overlap (slot
7, stub 7, row 7...): taken from one list, each value is one object, not one per use.
"""

from __future__ import annotations

#: the int objects 0, 1, 2, ... (grown on demand, never shrunk: at most the largest
#: index a link used).  Hot loops may read `POOL[i] if i < len(POOL) else index(i)`
#: to save the call.
POOL: list[int] = list(range(257))


#: how far the pool grows past the index asked for (indexes are mostly taken in order)
_CHUNK = 4096


def index(i: int) -> int:
    """The shared object for the index `i` (>= 0)."""
    if i >= len(POOL):
        POOL.extend(range(len(POOL), i + _CHUNK))
    return POOL[i]


def indexes(n: int) -> list[int]:
    """[0, 1, ..., n-1], as the shared objects."""
    if len(POOL) < n:
        POOL.extend(range(len(POOL), n))
    return POOL[:n]

"""Relocation tables: one object's relocations decoded once, as columns.

Scanning fills a `RelocTable` per object (kinds decided, relaxations chosen); applying
it is then a few numpy operations over the whole table, for a full link and for the
few objects an incremental update touches alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from devlink.link.arch import x86_64 as arch


@dataclass(slots=True)
class RelocTable:
    obj: object                   #: the ObjectFile
    atoms: list                   #: atoms with relocations, in table order
    aidx: np.ndarray              #: atom index (into `atoms`) of each relocation
    offs: np.ndarray              #: offset in its atom (after TLS relaxation rewrites)
    types: np.ndarray             #: input relocation type (for messages)
    syms: np.ndarray              #: symbol-table index in `obj`
    addend: np.ndarray            #: A
    kinds: np.ndarray             #: arch kind (how the value is computed), K_NONE to skip
    from_alloc: np.ndarray        #: in code or data (may mean a stub); not unwind or debug info
    in_code: np.ndarray           #: in an executable section (PC-relative fields end instructions)
    relax_lea: np.ndarray | None  #: rows whose `mov` opcode becomes `lea`


@dataclass(slots=True)
class RelocContext:
    entry_addr: np.ndarray        #: sorted function-entry addresses (atoms)
    entry_stub: np.ndarray        #: the stub address of each entry
    got_base: int
    tp: int
    tls_start: int


@lru_cache(maxsize=1)
def type_tables():
    """Lookup tables by input type: kind, needs-special-handling, GOT type, relaxable."""
    kind_table = np.full(256, -1, np.int16)
    for t, k in arch.DIRECT_KIND.items():
        kind_table[t] = k
    special_types = np.zeros(256, bool)
    for t in (*arch.TLS_SEQUENCE_TYPES, arch.R_X86_64_GOTTPOFF):
        special_types[t] = True
    got_types = np.zeros(256, bool)
    got_types[list(arch.GOT_TYPES)] = True
    relaxable_types = np.zeros(256, bool)
    relaxable_types[list(arch.RELAXABLE_GOT_TYPES)] = True
    return kind_table, special_types, got_types, relaxable_types


def trimmed(t: RelocTable) -> RelocTable:
    """Only the rows an update may apply again (code and data naming a symbol that
    moved); unwind and debug relocations are object-local and never re-applied."""
    keep = t.from_alloc
    if keep.all():
        return t
    rows = np.flatnonzero(keep)
    relax = None
    if t.relax_lea is not None and len(t.relax_lea):
        mapping = np.full(len(keep), -1, np.int64)
        mapping[rows] = np.arange(len(rows))
        relax = mapping[t.relax_lea]
        relax = relax[relax >= 0]
    used = np.unique(t.aidx[rows])
    remap = np.full(len(t.atoms), -1, np.int64)
    remap[used] = np.arange(len(used))
    atoms = [t.atoms[i] for i in used.tolist()]
    return RelocTable(t.obj, atoms, remap[t.aidx[rows]], t.offs[rows].copy(), t.types[rows].astype(np.int16),
                      t.syms[rows].astype(np.int32), t.addend[rows].copy(), t.kinds[rows].copy(),
                      t.from_alloc[rows].copy(), t.in_code[rows].copy(), relax)

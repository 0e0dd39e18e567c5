"""Relocation tables: one object's relocations decoded once, as columns.

Scanning fills a `RelocTable` per object (kinds decided, relaxations chosen); applying
it is then a few numpy operations over the whole table, for a full link and for the
few objects an incremental update touches alike.
"""

from __future__ import annotations

import itertools
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
    #: for a table made by `concat_tables`: (first row of each part, the parts)
    parts: tuple | None = None

    def source(self, row: int) -> tuple["RelocTable", int]:
        """The table and row a row of this table came from (itself, unless concatenated)."""
        if self.parts is None:
            return self, row
        starts, tables = self.parts
        k = int(np.searchsorted(starts, row, side="right")) - 1
        return tables[k], row - int(starts[k])


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
    for t in (*arch.TLS_SEQUENCE_TYPES, arch.INITIAL_EXEC_TYPE):
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


def share_records(t: RelocTable, records: np.ndarray) -> RelocTable:
    """`t` (trimmed) for the link state: where its offsets, types, symbols and addends
    are those of `records` (RELA_DTYPE, the input records of `t.atoms` in table order,
    then possibly others), those columns become views of `records`, which the state
    keeps anyway for comparing the next version of the object; the rest in the
    narrowest type that holds it.  A table whose rows moved (TLS relaxation rewrites
    an offset and addend) keeps its own offsets and addends."""
    n = len(t.aidx)
    if len(records) < n:
        return t
    rec = records[:n]
    words = rec.view(np.int64).reshape(-1, 3)
    halves = rec.view(np.uint32).reshape(-1, 6)
    offs, addend = words[:, 0], words[:, 2]
    types, syms = halves[:, 2], halves[:, 3]
    if not (np.array_equal(types, t.types) and np.array_equal(syms, t.syms)):
        return t                            # not this table's records: leave it whole
    if not np.array_equal(offs, t.offs):
        offs = t.offs
    if not np.array_equal(addend, t.addend):
        addend = t.addend
    aidx = t.aidx.astype(np.int32) if len(t.atoms) < 1 << 31 else t.aidx
    relax = t.relax_lea
    if relax is not None and n < 1 << 31:
        relax = relax.astype(np.int32)
    from_alloc = t.from_alloc
    if n and from_alloc.all():
        from_alloc = np.broadcast_to(np.True_, n)   # what trimming leaves: no bytes
    return RelocTable(t.obj, t.atoms, aidx, offs, types, syms, addend, t.kinds, from_alloc,
                      t.in_code, relax, t.parts)


def select_rows(t: RelocTable, rows: np.ndarray) -> RelocTable:
    """The table restricted to `rows` (same atoms and symbols)."""
    relax = None
    if t.relax_lea is not None:
        keep = np.zeros(len(t.aidx), bool)
        keep[t.relax_lea] = True
        relax = np.flatnonzero(keep[rows])
    return RelocTable(t.obj, t.atoms, t.aidx[rows], t.offs[rows], t.types[rows], t.syms[rows], t.addend[rows],
                      t.kinds[rows], t.from_alloc[rows], t.in_code[rows], relax)


def concat_tables(tables: list[RelocTable]) -> RelocTable:
    """Several objects' tables as one: atom indexes into the concatenated atom lists,
    symbol indexes into the concatenated symbol tables (in `tables` order), so one
    numpy pass applies them all.  `obj` is None; `source` maps a row back."""
    n_rows = np.array([len(t.aidx) for t in tables], np.int64)
    row_start = np.concatenate(([0], np.cumsum(n_rows)[:-1]))
    atom_base = np.concatenate(([0], np.cumsum([len(t.atoms) for t in tables])[:-1])).astype(np.int64)
    sym_base = np.concatenate(([0], np.cumsum([len(t.obj.symbols) for t in tables])[:-1])).astype(np.int64)
    atoms = list(itertools.chain.from_iterable(t.atoms for t in tables))
    aidx = np.concatenate([t.aidx for t in tables]) + np.repeat(atom_base, n_rows)
    syms = np.concatenate([t.syms for t in tables]).astype(np.int64) + np.repeat(sym_base, n_rows)
    relax = [t.relax_lea + start for t, start in zip(tables, row_start.tolist())
             if t.relax_lea is not None and len(t.relax_lea)]
    return RelocTable(None, atoms, aidx, np.concatenate([t.offs for t in tables]),
                      np.concatenate([t.types for t in tables]), syms,
                      np.concatenate([t.addend for t in tables]), np.concatenate([t.kinds for t in tables]),
                      np.concatenate([t.from_alloc for t in tables]), np.concatenate([t.in_code for t in tables]),
                      np.concatenate(relax) if relax else None, (row_start, tables))

"""Symbols: one record per named definition or reference, as in Zig's `Symbol.zig`.

A symbol carries `flags` (what the linker has decided about it) and an index into the
linker's `extras` side table, where the rarely-present indexes live (its GOT entry, its
stub, its dynamic symbol...).  Keeping those out of the record keeps the common symbol
small: most symbols never get a GOT entry.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from devlink.elf import consts as C
from devlink.link.shared_ints import POOL, index as shared_index


class SymbolFlags:
    """Bits of `Symbol.flags` (plain ints: enum.IntFlag arithmetic costs ~1 us a call,
    and a link does it hundreds of thousands of times)."""

    NONE = 0
    #: defined by a shared library: resolved by ld.so at start (GLOB_DAT / COPY)
    IMPORT = 1 << 0
    #: goes into .dynsym as a definition (referenced by a shared library, or -E)
    EXPORT = 1 << 1
    #: has a constant GOT entry (GOTPCREL that could not be relaxed, or an import)
    GOT = 1 << 2
    #: has a thread-pointer-offset GOT entry (initial-exec TLS)
    GOTTP = 1 << 3
    #: a function entry with a stub and a mutable cell (the canonical address is the stub)
    STUB = 1 << 4
    #: an imported variable copied into the executable's .bss (a COPY relocation)
    COPY_REL = 1 << 5
    #: an imported function whose address is taken absolutely: the stub is canonical
    CANONICAL_PLT = 1 << 6
    #: defined by the linker (`_DYNAMIC`, `__init_array_start`, ...)
    LINKER_DEFINED = 1 << 7
    #: weak reference or definition
    WEAK = 1 << 8
    #: referenced by a relocation that survived relaxation
    REFERENCED = 1 << 9
    #: a library function bound at start only so a later edit can call it
    PREBOUND = 1 << 10


@dataclass(slots=True)
class Extra:
    """Side-table indexes of one symbol; 0 means "none" except where noted."""

    got: int = -1          #: index into GotSection.entries (constant GOT entry)
    gottp: int = -1        #: index into GotSection.entries (TP offset entry)
    stub: int = -1         #: index into StubSection.stubs
    dynsym: int = 0        #: index into .dynsym (0 = not dynamic)
    copy_addr: int = 0     #: address of the COPY-relocated storage


EXTRA_FIELDS = tuple(f.name for f in fields(Extra))
EXTRA_DEFAULTS = tuple(f.default for f in fields(Extra))
#: ints per row of the extras table
EXTRA_WIDTH = len(EXTRA_FIELDS)


class Symbol:
    """One symbol of the link: a global by name, or a file-local definition.

    `atom` and `value` say where a defined symbol lives: its address is the atom's
    address plus `value`.  Absolute symbols have no atom; undefined ones have no file.
    """

    __slots__ = ("name", "file", "esym_index", "atom", "value", "size", "type", "bind",
                 "visibility", "shndx", "flags", "extra_index", "version")

    def __init__(self, name: str):
        #: the symbol's name as written in the object
        self.name = name
        #: the ObjectFile or SharedObject that defines it (None while undefined)
        self.file = None
        #: index of the defining entry in that file's symbol table
        self.esym_index = 0
        #: the Atom the symbol is in (None for absolute, common-before-allocation, imports)
        self.atom = None
        #: offset within the atom (or the absolute value / shared library value)
        self.value = 0
        #: st_size
        self.size = 0
        #: STT_* of the definition
        self.type = C.STT_NOTYPE
        #: STB_* of the definition (or of the strongest reference while undefined)
        self.bind = C.STB_GLOBAL
        #: STV_*
        self.visibility = C.STV_DEFAULT
        #: st_shndx in the defining file (SHN_ABS, SHN_COMMON or a section index)
        self.shndx = C.SHN_UNDEF
        #: SymbolFlags
        self.flags = SymbolFlags.NONE
        #: row in the linker's extras table (0 = none yet)
        self.extra_index = 0
        #: default version name of an import (from the library's .gnu.version_d)
        self.version = None

    @property
    def is_defined(self) -> bool:
        return self.file is not None

    @property
    def is_import(self) -> bool:
        return bool(self.flags & SymbolFlags.IMPORT)

    @property
    def is_undefined_weak(self) -> bool:
        return self.file is None and self.bind == C.STB_WEAK

    def address(self) -> int:
        """Where the symbol's bytes are (the atom, not the stub)."""
        if self.atom is not None:
            return self.atom.address + self.value
        return self.value

    def __repr__(self) -> str:
        return f"Symbol({self.name!r}, file={getattr(self.file, 'name', None)}, value={self.value:#x})"


class SymbolExtras:
    """The extras side table: a flat list of ints, `len(EXTRA_FIELDS)` per symbol; a
    symbol's `extra_index` is its row (a shared int, see devlink.link.shared_ints)."""

    def __init__(self):
        self.table: list[int] = self._defaults()  # row 0 is "no extras"

    @staticmethod
    def _defaults() -> list[int]:
        return list(EXTRA_DEFAULTS)

    def _new_row(self, sym: Symbol, values) -> int:
        """Give `sym` a row holding `values`; returns its first position in the table."""
        i = len(self.table)
        sym.extra_index = shared_index(i // EXTRA_WIDTH)
        self.table.extend(values)
        return i

    def get(self, sym: Symbol) -> Extra | None:
        if not sym.extra_index:
            return None
        i = sym.extra_index * EXTRA_WIDTH
        return Extra(*self.table[i:i + EXTRA_WIDTH])

    def field(self, sym: Symbol, name: str) -> int:
        """One extra of `sym` (its default if the symbol has none)."""
        return self.table[sym.extra_index * EXTRA_WIDTH + EXTRA_OFFSET[name]]

    def set(self, sym: Symbol, extra: Extra) -> None:
        values = [getattr(extra, f) for f in EXTRA_FIELDS]
        if not sym.extra_index:
            self._new_row(sym, values)
        else:
            i = sym.extra_index * EXTRA_WIDTH
            self.table[i:i + EXTRA_WIDTH] = values

    def set_field(self, sym: Symbol, name: str, value: int) -> None:
        """One extra of `sym` (the fast path of `update`: a full link calls it for every
        function, so `_new_row` is inlined)."""
        table = self.table
        i = sym.extra_index
        if i:
            i *= EXTRA_WIDTH
        else:
            i = len(table)
            row = i // EXTRA_WIDTH
            sym.extra_index = POOL[row] if row < len(POOL) else shared_index(row)
            table.extend(EXTRA_DEFAULTS)
        table[i + EXTRA_OFFSET[name]] = value

    def update(self, sym: Symbol, **changes) -> None:
        if sym.extra_index:
            i = sym.extra_index * EXTRA_WIDTH
        else:
            i = self._new_row(sym, EXTRA_DEFAULTS)
        table = self.table
        for k, v in changes.items():
            table[i + EXTRA_OFFSET[k]] = v


EXTRA_OFFSET = {name: i for i, name in enumerate(EXTRA_FIELDS)}

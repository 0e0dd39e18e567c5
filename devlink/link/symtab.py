"""The output's `.symtab`/`.strtab`, kept as blocks so an update rebuilds only its part.

Order (locals before globals, as ELF requires): one block of locals per object, the
synthetic names (`f$stub`, `f$got`, GOT entries, linker-defined), then one block of
globals whose rows are updated in place.  Rendering is a concatenation of numpy
arrays; an update's Python work is proportional to the objects it changed.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np

from devlink.elf import consts as C
from devlink.elf.records import SYM_DTYPE
from devlink.errors import DevlinkError
from devlink.link.shared_ints import POOL, index
from devlink.link.symbol import Symbol, SymbolFlags
from devlink.link.synthetic import GotTag


class Block:
    """Rows of one part of the table; `st_name` relative to this block's strings."""

    __slots__ = ("rows", "strings")

    def __init__(self, names: list[str], info, other, shndx, value, size):
        rows = np.zeros(len(names), SYM_DTYPE)
        strings = b""
        if names:
            text = "\0".join(names) + "\0"
            if text.isascii():          # a byte per character: lengths are the str lengths
                strings = text.encode("ascii")
                lengths = np.fromiter(map(len, names), np.int64, len(names)) + 1
            else:
                encoded = [n.encode("utf-8", "surrogateescape") for n in names]
                strings = b"\0".join(encoded) + b"\0"
                lengths = np.fromiter(map(len, encoded), np.int64, len(encoded)) + 1
            rows["st_name"][1:] = np.cumsum(lengths[:-1])
            rows["st_info"] = info
            rows["st_other"] = other
            rows["st_shndx"] = _symbol_shndx(shndx)
            rows["st_value"] = np.array(value, np.uint64) if len(value) else 0
            rows["st_size"] = size
        self.rows = rows
        self.strings = strings

    def extend(self, other: "Block") -> None:
        base = len(self.strings)
        add = other.rows.copy()
        add["st_name"] += base
        self.rows = np.concatenate((self.rows, add))
        self.strings += other.strings


def _symbol_shndx(shndx):
    """Section indexes as st_shndx values (`consts.output_symbol_shndx`, in bulk)."""
    s = np.asarray(shndx, np.int64)
    return np.where(s >= C.SHN_LORESERVE, C.SHN_ABS, s)


def _columns(rows: list[tuple]):
    if not rows:
        return [], [], [], [], [], []
    return [list(c) for c in zip(*rows)]


class SymtabBuilder:
    def __init__(self):
        #: per object name: its locals
        self.local_blocks: dict[str, Block] = {}
        #: synthetic locals, append-only: stubs+cells, GOT entries
        self.stub_block = Block([], [], [], [], [], [])
        self.stubs_done = 0
        self.got_block = Block([], [], [], [], [], [])
        self.got_done = 0
        #: globals: one block updated in place, row index by name
        self.global_block = Block([], [], [], [], [], [])
        self.global_index: dict[str, int] = {}
        self.pending_globals: list[tuple] = []
        #: where each block went in the last render: key -> (first row, rows, string offset, length)
        self.layout: dict = {}
        #: what changed since the last render
        self.dirty_blocks: set = set()
        #: global row -> its new (info, other, shndx, value, size), not yet stored
        self.dirty_globals: dict[int, tuple] = {}
        self.reshaped = True

    # --- what goes in ----------------------------------------------------------------
    def object_locals(self, obj, tls_start: int) -> None:
        rows = []
        file_name = obj.source_name()
        if file_name:
            rows.append((file_name, (C.STB_LOCAL << 4) | C.STT_FILE, 0, C.SHN_ABS, 0, 0))
        for sym in obj.symbols[:obj.raw.first_global]:
            if sym is None or sym.atom is None or sym.atom.output is None:
                continue
            atom = sym.atom
            value = atom.output.addr + atom.value + sym.value
            if sym.type == C.STT_TLS:
                if not atom.sh_flags & C.SHF_TLS:
                    raise DevlinkError(f"{obj.name}: thread-local symbol {sym.name!r} is defined in "
                                       f"{atom.name}, which is not a TLS section; the object is malformed, recompile it")
                value -= tls_start      # TLS symbols: offset in the TLS segment
            rows.append((sym.name, (C.STB_LOCAL << 4) | sym.type, sym.visibility, atom.output.index, value, sym.size))
        block = Block(*_columns(rows))
        old = self.local_blocks.get(obj.name)
        if old is None or len(old.rows) != len(block.rows) or len(old.strings) != len(block.strings):
            self.reshaped = True
        self.local_blocks[obj.name] = block
        self.dirty_blocks.add(obj.name)

    def drop_object(self, name: str) -> None:
        if self.local_blocks.pop(name, None) is not None:
            self.reshaped = True

    def stubs(self, linker) -> None:
        """Names for stubs and cells made since the last call (columns built in bulk)."""
        stubs = linker.stubs
        new = stubs.stubs[self.stubs_done:]
        if not new:
            return
        so = linker.outputs[".plt"].index
        ce = linker.outputs[".devlink.cells"].index
        func = (C.STB_LOCAL << 4) | C.STT_FUNC
        objt = (C.STB_LOCAL << 4) | C.STT_OBJECT
        first = self.stubs_done
        base = list(map(attrgetter("symbol.name"), new))
        cells = np.fromiter(map(attrgetter("cell"), new), np.int64, len(new))
        with_cell = np.flatnonzero(cells >= 0)
        names = [n + "$stub" for n in base] + [base[k] + "$got" for k in with_cell.tolist()]
        addrs = np.concatenate((stubs.addr + 8 * np.arange(first, first + len(new), dtype=np.int64),
                                linker.cells.addr + 8 * cells[with_cell]))
        n1, n2 = len(new), len(with_cell)
        kinds = np.repeat(np.array([func, objt], np.uint8), [n1, n2])
        block = Block(names, kinds, 0, np.repeat(np.array([so, ce], np.int64), [n1, n2]), addrs, 8)
        self.stubs_done = len(stubs.stubs)
        self.stub_block.extend(block)
        self.reshaped = True

    def got(self, linker, name_of) -> None:
        go = linker.outputs[".got"].index
        obj = (C.STB_LOCAL << 4) | C.STT_OBJECT
        rows = []
        for e in linker.got.entries[self.got_done:]:
            name = name_of(e)
            if name is not None:
                rows.append((name, obj, 0, go, e.address(linker.got), 8))
        self.got_done = len(linker.got.entries)
        if rows:
            self.got_block.extend(Block(*_columns(rows)))
            self.reshaped = True

    def set_global(self, name: str, row: tuple | None) -> None:
        """Add or update the global `name`: row = (info, other, shndx, value, size);
        None leaves an undefined entry."""
        if row is None:
            row = ((C.STB_GLOBAL << 4) | C.STT_NOTYPE, 0, C.SHN_UNDEF, 0, 0)
        i = self.global_index.get(name)
        if i is None:
            n = len(self.global_index)
            self.global_index[name] = POOL[n] if n < len(POOL) else index(n)   # shared ints
            self.pending_globals.append((name,) + row)
            self.reshaped = True
            return
        self.dirty_globals[i] = row           # stored in bulk by _store_globals

    def _store_globals(self) -> None:
        """The updated global rows, into their block (one assignment per column)."""
        if not self.dirty_globals:
            return
        self._flush_globals()
        idx = np.fromiter(self.dirty_globals.keys(), np.int64, len(self.dirty_globals))
        info, other, shndx, value, size = zip(*self.dirty_globals.values())
        r = self.global_block.rows
        r["st_info"][idx] = info
        r["st_other"][idx] = other
        r["st_shndx"][idx] = _symbol_shndx(shndx)
        r["st_value"][idx] = np.array([v & 0xFFFFFFFFFFFFFFFF for v in value], np.uint64)
        r["st_size"][idx] = size

    def add_globals(self, rows: list[tuple]) -> None:
        """`set_global` for many rows (name, info, other, shndx, value, size) at once."""
        index = self.global_index
        if any(r[0] in index for r in rows) or len({r[0] for r in rows}) != len(rows):
            for r in rows:
                self.set_global(r[0], r[1:])
            return
        first = len(index)
        index.update(zip([r[0] for r in rows], range(first, first + len(rows))))
        self.pending_globals.extend(rows)
        if rows:
            self.reshaped = True

    def _flush_globals(self) -> None:
        if self.pending_globals:
            self.global_block.extend(Block(*_columns(self.pending_globals)))
            self.pending_globals = []

    # --- what comes out ----------------------------------------------------------------
    def render(self, linker_rows: list[tuple]) -> tuple[bytes, bytes, int]:
        """(.symtab bytes, .strtab bytes, index of the first global)."""
        keyed = list(self.local_blocks.items()) + [("$stubs", self.stub_block), ("$got", self.got_block),
                                                   ("$linker", Block(*_columns(linker_rows)))]
        self._store_globals()
        self._flush_globals()
        keyed.append(("$globals", self.global_block))
        parts = [np.zeros(1, SYM_DTYPE)]
        strings = [b"\0"]
        bases = [0]
        base = 1
        row = 1
        nlocal = 1
        self.layout = {}
        for key, b in keyed:
            self.layout[key] = (row, len(b.rows), base, len(b.strings))
            if not len(b.rows):
                continue
            parts.append(b.rows)
            bases.append(base)
            strings.append(b.strings)
            base += len(b.strings)
            row += len(b.rows)
            if key != "$globals":
                nlocal += len(b.rows)
        # one copy of every block, each one's names moved past the strings before it
        table = np.concatenate(parts)
        table["st_name"] += np.repeat(np.array(bases, np.uint32), [len(p) for p in parts])
        self.dirty_blocks.clear()
        self.dirty_globals.clear()
        self.reshaped = False
        return table.tobytes(), b"".join(strings), nlocal

    def render_changes(self) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]] | None:
        """If no block changed shape since the last render: the (offset, bytes) pieces of
        .symtab and .strtab that changed; else None (render everything)."""
        if self.reshaped or self.pending_globals:
            return None
        self._store_globals()
        sym_writes, str_writes = [], []
        for name in self.dirty_blocks:
            b = self.local_blocks[name]
            row, n, base, length = self.layout[name]
            if n:
                rows = b.rows.copy()
                rows["st_name"] += base
                sym_writes.append((row * SYM_DTYPE.itemsize, rows.tobytes()))
                str_writes.append((base, b.strings))
        grow, _, gbase, _ = self.layout["$globals"]
        if self.dirty_globals:
            # one write from the first to the last changed row
            lo, hi = min(self.dirty_globals), max(self.dirty_globals)
            r = self.global_block.rows[lo:hi + 1].copy()
            r["st_name"] += gbase
            sym_writes.append(((grow + lo) * SYM_DTYPE.itemsize, r.tobytes()))
        self.dirty_blocks.clear()
        self.dirty_globals.clear()
        return sym_writes, str_writes


# --- the linker's use ------------------------------------------------------------------
def build_symtab(linker, changed_objects=None, also_globals=(), partial=False):
    """.symtab: locals (per object, then $stub/$got names), then globals.  With
    `changed_objects`, only their blocks and their globals are rebuilt."""
    b = getattr(linker, "symtab_builder", None)
    if b is None or changed_objects is None:
        b = linker.symtab_builder = SymtabBuilder()
        changed_objects = linker.objects
        b.add_globals(symtab_global_rows(linker, linker.symtab.globals.values()))
    else:
        # the changed objects' definitions, and names they use for the first time
        for obj in changed_objects:
            for sym in obj.symbols[obj.raw.first_global:]:
                if sym is not None and (sym.file is obj or sym.name not in b.global_index):
                    symtab_global(linker, sym)
        changed_names = {o.name for o in changed_objects}
        for sym in also_globals:
            if sym.file is None or sym.file.name not in changed_names:
                symtab_global(linker, sym)
    tls_start = linker.tls_start()
    for obj in changed_objects:
        b.object_locals(obj, tls_start)
    b.stubs(linker)
    b.got(linker, got_symbol_name)
    if partial:
        changes = b.render_changes()
        if changes is not None:
            return changes
    linker_rows = [(name, C.STB_LOCAL << 4, C.STV_HIDDEN, C.SHN_ABS, sym.value, 0)
                   for name, sym in linker.linker_symbols.items() if linker.symtab.referenced_by.get(name)]
    return b.render(linker_rows)


def got_symbol_name(e) -> str | None:
    """The .symtab name of GOT entry `e` (None: only bound for later edits)."""
    if e.symbol.flags & SymbolFlags.PREBOUND:
        return None
    return e.symbol.name + {GotTag.GOTTP: "$gottp", GotTag.IPLT: "$iplt", GotTag.PLT: "$plt"}.get(
        e.tag, "$got" if e.symbol.is_import else "$gotpcrel")


def symtab_global(linker, sym: Symbol) -> None:
    row = symtab_global_rows(linker, (sym,))
    if row:
        linker.symtab_builder.set_global(row[0][0], row[0][1:])


def symtab_global_rows(linker, syms) -> list[tuple]:
    """.symtab rows (name, info, other, shndx, value, size) of global records `syms`
    (none for linker-defined names and for library functions bound only for later
    edits)."""
    rows = []
    add = rows.append
    tls_start = None
    LINKER_DEFINED, IMPORT, PREBOUND = SymbolFlags.LINKER_DEFINED, SymbolFlags.IMPORT, SymbolFlags.PREBOUND
    USED = SymbolFlags.STUB | SymbolFlags.REFERENCED
    for sym in syms:
        flags = sym.flags
        if flags & LINKER_DEFINED:
            continue
        bind = C.STB_WEAK if sym.bind == C.STB_WEAK else C.STB_GLOBAL
        if flags & IMPORT or sym.file is None:
            if flags & PREBOUND and not flags & USED:
                continue   # only bound for later edits: .dynsym has it
            add((sym.name, (bind << 4) | sym.type, 0, C.SHN_UNDEF, 0, 0))
            continue
        atom = sym.atom
        if atom is not None and atom.output is not None:
            out = atom.output
            value = out.addr + atom.value + sym.value
            if sym.type == C.STT_TLS:
                if tls_start is None:
                    tls_start = linker.tls_start()
                value -= tls_start
            add((sym.name, (bind << 4) | sym.type, sym.visibility, out.index, value, sym.size))
        elif sym.shndx == C.SHN_ABS:
            add((sym.name, (bind << 4) | sym.type, sym.visibility, C.SHN_ABS, sym.value, sym.size))
    return rows

"""Stubs and cells: every function's canonical address (invariant 1).

Every function entry in `.text` gets a stub (`jmp *cell(%rip)`, in `.plt`) and a mutable
cell (`.devlink.cells`) holding its current atom's address; aliases share one, `.cold`
pieces get none.  IFUNCs, and imports whose address is taken, get stubs that jump
through a GOT entry.  The hot patcher works on these sections: a patch moves a function
by rewriting its cell.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np

from devlink.elf import consts as C
from devlink.link.arch import x86_64 as arch
from devlink.link.object_file import ObjectFile
from devlink.link.shared_ints import index as shared_index
from devlink.link.symbol import Symbol, SymbolFlags
from devlink.link.synthetic import Stub
from devlink.output.image import OutputImage


def create_stubs(linker) -> None:
    """A stub + cell for every function entry in .text (aliases share one)."""
    text = linker.outputs.get(".text")
    stubs, cells, stub_by_key = linker.stubs.stubs, linker.cells.stub_of, linker.stub_by_key
    set_extra = linker.extras.set_field
    STUB = SymbolFlags.STUB
    for obj in linker.objects:
        # an object's functions are in its own atoms: the entries seen are per object
        by_entry: dict[tuple[int, int], int] = {}
        stub_indexes = obj.stub_indexes
        for sym in function_definitions(obj):
            if sym.type == C.STT_GNU_IFUNC:
                ifunc_stub(linker, obj, sym)
                continue
            atom = sym.atom
            if atom.output is not text or ".cold" in sym.name:
                continue
            key = (id(atom), sym.value)
            index = by_entry.get(key)
            if index is None:
                index = by_entry[key] = shared_index(len(stubs))
                cell = len(cells)
                stubs.append(Stub(sym, atom, sym.value, index if cell == index else cell))
                cells.append(index)
                # stub_key(obj, sym), inline
                stub_by_key[(obj.name, sym.name) if sym.bind == C.STB_LOCAL else sym.name] = index
                stub_indexes.append(index)
            sym.flags |= STUB
            set_extra(sym, "stub", index)


def ifunc_stub(linker, obj: ObjectFile, sym: Symbol) -> None:
    """An IFUNC's canonical address is a stub jumping through a GOT entry that ld.so
    fills with what the resolver returns (an IRELATIVE relocation)."""
    if sym.flags & SymbolFlags.STUB:
        return
    index = linker.stubs.add(Stub(sym, None, 0, -1, linker.got.add_iplt_symbol(sym)))
    sym.flags |= SymbolFlags.STUB
    linker.extras.update(sym, stub=index)
    linker.files_with_local_specials.add(obj)


def import_stub(linker, sym: Symbol) -> int:
    if sym.flags & SymbolFlags.STUB:
        return linker.extras.field(sym, "stub")
    # the stub jumps through the import's GOT entry; if its address turns out to be
    # taken absolutely, size_synthetic_sections gives it a JUMP_SLOT of its own
    index = linker.stubs.add(Stub(sym, None, 0, -1, linker.got.add_got_symbol(sym)))
    sym.flags |= SymbolFlags.STUB
    linker.extras.update(sym, stub=index)
    return index


def size_patch_sections(linker) -> None:
    """The stubs, the cells and the link id get their output sections."""
    A, W, X = C.SHF_ALLOC, C.SHF_WRITE, C.SHF_EXECINSTR
    linker.synthetic_section(".plt", C.SHT_PROGBITS, A | X, linker.stubs.size(), 16)
    linker.synthetic_section(".devlink.cells", C.SHT_PROGBITS, A | W, linker.cells.size(), 4096, 8)
    if "__devlink_link_id" in linker.linker_symbols:
        # the link id in memory: the runtime maps a patch area only if it is its own
        linker.synthetic_section(".devlink.id", C.SHT_PROGBITS, A, 16, 8)


def render_patch_sections(linker, image: OutputImage) -> None:
    """Stubs, cells (each holding its function's entry) and the link id."""
    o = linker.outputs
    buf = image.array
    if ".devlink.id" in o:
        image.put(o[".devlink.id"], bytes.fromhex(linker.link_id))
    st = o[".plt"]
    sbuf = buf[image.buf_off[st.name]:image.buf_off[st.name] + st.size]
    n = len(linker.stubs.stubs)
    if n:
        stub_addrs = st.addr + 8 * np.arange(n, dtype=np.int64)
        cell = np.fromiter([s.cell for s in linker.stubs.stubs], np.int64, n)
        cell_addrs = linker.cells.addr + 8 * cell
        for k in np.flatnonzero(cell < 0).tolist():     # imports, IFUNCs: their GOT entry
            cell_addrs[k] = linker.got.entry_address(linker.stubs.stubs[k].slot)
        arch.write_stubs(sbuf, stub_addrs, cell_addrs, st.addr)
    ce = o[".devlink.cells"]
    if linker.cells.stub_of:
        # each cell holds its function's entry (`entry_table` has them by stub)
        entry_table(linker)
        targets = linker.stub_entry[np.array(linker.cells.stub_of, np.int64)].astype("<u8")
        image.put(ce, targets.tobytes())


def entry_table(linker):
    """Sorted function-entry addresses and their stubs (kept per stub in
    `stub_entry`, so an update only touches the entries it changes)."""
    stub_entries(linker)
    idx = np.flatnonzero(linker.stub_entry)
    entries = linker.stub_entry[idx]
    order = np.argsort(entries, kind="stable")
    return entries[order], linker.stubs.addr + 8 * idx[order].astype(np.int64)


def stub_entries(linker) -> np.ndarray:
    """`stub_entry`: each stub's function entry (0: none), built on first use."""
    if getattr(linker, "stub_entry", None) is None or len(linker.stub_entry) < len(linker.stubs.stubs):
        stubs = linker.stubs.stubs
        # s.atom.address + s.offset, without the property call per stub
        linker.stub_entry = np.fromiter([a.output.addr + a.value + s.offset if a is not None and s.cell >= 0 else 0
                                         for s, a in zip(stubs, map(attrgetter("atom"), stubs))], np.int64, len(stubs))
    return linker.stub_entry


def set_stub_entry(linker, index: int, addr: int) -> None:
    if getattr(linker, "stub_entry", None) is None:
        return                      # built on first use
    if index >= len(linker.stub_entry):
        linker.stub_entry = np.concatenate((linker.stub_entry, np.zeros(index + 64 - len(linker.stub_entry), np.int64)))
    linker.stub_entry[index] = addr


def function_definitions(obj: ObjectFile) -> list[Symbol]:
    """The functions (and IFUNCs) `obj` defines and that won symbol resolution."""
    symbols = obj.symbols
    found = [symbols[i] for i in np.flatnonzero((obj.sym_type == C.STT_FUNC) | (obj.sym_type == C.STT_GNU_IFUNC)).tolist()]
    return [sym for sym in found if sym is not None and sym.file is obj and sym.atom is not None]


def stub_key(obj: ObjectFile, sym: Symbol) -> str | tuple:
    """How a function is recognised across edits: by its name (the symbol's own string,
    no tuple per function) if global, else by (file, name)."""
    if sym.bind == C.STB_LOCAL:
        return (obj.name, sym.name)
    return sym.name

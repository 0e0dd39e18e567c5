"""Applying relocation tables: each symbol's S, GOT entry, size and atom range as
columns, then every kind's value computed and range-checked in bulk (`arch.compute_values`,
`arch.check_ranges`) and written.  A reference from code or data to a function entry
goes to the function's stub (invariant 1)."""

from __future__ import annotations

from operator import attrgetter

import numpy as np

from devlink.elf import consts as C
from devlink.errors import DevlinkError
from devlink.link.arch import x86_64 as arch
from devlink.link.layout import tls_range
from devlink.link.object_file import ObjectFile
from devlink.link.relocs import RelocContext, RelocTable, concat_tables, select_rows
from devlink.link.scan import global_rows
from devlink.link.stubs import entry_table, stub_entries
from devlink.link.symbol import EXTRA_OFFSET, EXTRA_WIDTH, Symbol, SymbolFlags
from devlink.output.image import OutputImage


def relocation_context(linker, objects=None) -> RelocContext:
    """What every relocation needs besides its symbol: entries, GOT base, TP.  For
    `objects` only: the entries their relocations can name (their own functions and
    the functions they refer to), which costs what those objects cost."""
    if objects is None:
        entry_addr, entry_stub = entry_table(linker)
    else:
        stubs = set()
        table, offset = linker.extras.table, EXTRA_OFFSET["stub"]
        for obj in objects:
            stubs.update(obj.stub_indexes)
            for sym in obj.symbols:
                if sym is not None and sym.flags & SymbolFlags.STUB and sym.atom is not None:
                    stubs.add(table[sym.extra_index * EXTRA_WIDTH + offset])
        idx = np.fromiter(stubs, np.int64, len(stubs))
        entry = stub_entries(linker)[idx]
        idx, entry = idx[entry != 0], entry[entry != 0]
        order = np.argsort(entry, kind="stable")
        entry_addr, entry_stub = entry[order], linker.stubs.addr + 8 * idx[order]
    tls_start, _, _, tls_memsz, tls_align = tls_range(linker.alloc_sections)
    return RelocContext(entry_addr, entry_stub, linker.got.addr, arch.tls_tp(tls_start, tls_memsz, tls_align), tls_start)


def symbol_arrays(linker, obj: ObjectFile, global_table=None):
    """Per symbol-table index of `obj`: address (S), GOT entry, size, and the address
    range of the atom the symbol is in (a stub redirect must stay inside it).
    `global_table` (from `global_symbol_table`): globals gathered from it instead
    of computed one by one, for a pass over every object."""
    n = len(obj.symbols)
    # section-relative symbols (locals, section symbols) in bulk, from atom addresses
    nsec = len(obj.atoms)
    sec_lo = np.zeros(nsec + 1, np.int64)
    sec_hi = np.zeros(nsec + 1, np.int64)
    for k, atom in enumerate(obj.atoms):
        if atom is not None and atom.output is not None:
            a = atom.output.addr + atom.value if atom.sh_flags & C.SHF_ALLOC else atom.value
            sec_lo[k] = a
            sec_hi[k] = a + atom.size
    shndx = np.array(obj.st_shndx, np.int64)
    in_sec = (shndx > 0) & (shndx < min(C.SECTION_INDEX_END, nsec))
    sidx = np.where(in_sec, shndx, nsec)
    lo = sec_lo[sidx]
    hi = sec_hi[sidx]
    S_ = np.where(in_sec, lo + np.array(obj.st_value, np.uint64).view(np.int64), 0)
    G = np.zeros(n, np.int64)
    Z = np.array(obj.st_size, np.uint64).view(np.int64)
    first = obj.raw.first_global
    symbols = obj.symbols
    # globals resolve by name: the winning definition may be in another file
    end = n
    if global_table is not None and first < n:
        position, table = global_table
        gi = position.get(id(obj))
        if gi is not None:
            for column, values in zip((S_, G, Z, lo, hi), table):
                column[first:] = values[gi]
            end = first
    start = 1 if obj in linker.got.local_files or obj in linker.files_with_local_specials else first
    rows, values = [], []
    by_name = SymbolFlags.IMPORT | SymbolFlags.GOT | SymbolFlags.GOTTP
    placed = in_sec.tolist()
    S_list, lo_list, hi_list = S_.tolist(), lo.tolist(), hi.tolist()
    for i in range(start, end):
        sym = symbols[i]
        if sym is None:
            continue
        if i >= first:
            if sym.file is obj and sym.esym_index == i and placed[i] and not sym.flags & by_name \
                    and sym.type != C.STT_GNU_IFUNC:
                continue              # this object's own definition: S, lo, hi as computed
            rows.append(i)
            values.append(symbol_values(linker, sym, S_list[i], lo_list[i], hi_list[i]))
        elif sym.type == C.STT_GNU_IFUNC:
            rows.append(i)
            values.append(symbol_values(linker, sym, S_list[i], lo_list[i], hi_list[i]))
        elif sym.flags & (SymbolFlags.GOT | SymbolFlags.GOTTP):
            G[i] = got_value(linker, sym)
    if rows:
        cols = np.array(values, np.int64).T
        S_[rows], G[rows], Z[rows], lo[rows], hi[rows] = cols
    return S_, G, Z, lo, hi


def symbol_values(linker, sym: Symbol, S: int = 0, lo: int = 0, hi: int = 0) -> tuple:
    """(S, GOT entry, size, atom start, atom end) of a symbol bound by name; S, lo and
    hi as given where the symbol's atom is not placed."""
    flags = sym.flags
    if flags & SymbolFlags.IMPORT or sym.type == C.STT_GNU_IFUNC:
        lo = hi = 0
        if flags & SymbolFlags.STUB:
            S = linker.stubs.addr + 8 * linker.extras.field(sym, "stub")
        elif flags & SymbolFlags.COPY_REL:
            S = linker.extras.field(sym, "copy_addr")
        else:
            S = 0
    else:
        atom = sym.atom
        if atom is not None:
            if atom.output is not None:
                a = atom.output.addr + atom.value
                S = a + sym.value
                lo = a
                hi = a + atom.size
        else:
            S = sym.value
            lo = hi = 0
    G = got_value(linker, sym) if flags & (SymbolFlags.GOT | SymbolFlags.GOTTP) else 0
    return S, G, sym.size, lo, hi


def got_value(linker, sym: Symbol) -> int:
    G = 0
    for name in ("got", "gottp"):
        g = linker.extras.field(sym, name)
        if g >= 0:
            G = linker.got.addr + 8 * linker.got.entries[g].cell_index
    return G


def global_symbol_table(linker):
    """Every global's `symbol_values` once, as columns, and each record's row
    (by id): a pass over all objects gathers from it instead of recomputing a
    global for every object that names it."""
    rows = []
    add = rows.append
    special = SymbolFlags.IMPORT | SymbolFlags.GOT | SymbolFlags.GOTTP
    for sym in linker.symtab.globals.values():
        if sym.flags & special or sym.type == C.STT_GNU_IFUNC:
            add(symbol_values(linker, sym))
            continue
        # `symbol_values` of a symbol of the program without a GOT entry, inline
        atom = sym.atom
        if atom is None:
            add((sym.value, 0, sym.size, 0, 0))
        elif atom.output is None:
            add((0, 0, sym.size, 0, 0))
        else:
            a = atom.output.addr + atom.value
            add((a + sym.value, 0, sym.size, a, a + atom.size))
    columns = np.array(rows, np.int64).reshape(-1, 5).T
    object_rows = linker.__dict__.pop("_scan_rows", None)
    if object_rows is None:
        object_rows = global_rows(linker)
    return object_rows, tuple(np.ascontiguousarray(c) for c in columns)


def apply_relocations(linker, image: OutputImage) -> None:
    """All objects' relocations in one pass: concatenated, a hundred objects cost the
    numpy call overhead of one (per object it was a third of the pass)."""
    ctx = relocation_context(linker)
    tables = linker.reloc_tables
    if not tables:
        return
    global_table = global_symbol_table(linker)
    arrays = [symbol_arrays(linker, t.obj, global_table) for t in tables]
    merged = concat_tables(tables)
    # each atom's place in the buffer and its address, from its output section's
    n = len(merged.atoms)
    outputs = list(linker.outputs.values())
    out_row = {id(o): i for i, o in enumerate(outputs)}
    out_pos = np.array([image.buf_off.get(o.name, 0) for o in outputs], np.int64)
    out_addr = np.array([o.addr for o in outputs], np.int64)
    oi = np.fromiter(map(out_row.__getitem__, map(id, map(attrgetter("output"), merged.atoms))), np.int64, n)
    value = np.fromiter(map(attrgetter("value"), merged.atoms), np.int64, n)
    alloc = (np.fromiter(map(attrgetter("sh_flags"), merged.atoms), np.uint64, n) & C.SHF_ALLOC) != 0
    atom_pos = out_pos[oi] + value
    atom_addr = np.where(alloc, out_addr[oi] + value, value)
    S, G, Z, lo, hi = (np.concatenate([a[k] for a in arrays]) for k in range(5))
    relocate_rows(linker, merged, ctx, image.array, atom_pos, atom_addr, (S, G, Z, lo, hi))


def relocate(linker, t: RelocTable, ctx: RelocContext, buf: np.ndarray, atom_pos: np.ndarray,
             rows: np.ndarray | None = None) -> None:
    """Apply table `t` (or only its `rows`) into `buf`, where atom i's bytes start at
    `atom_pos[i]`; addresses are the atoms' current addresses."""
    if rows is not None:
        t = select_rows(t, rows)
    atom_addr = np.array([a.address if a.sh_flags & C.SHF_ALLOC else a.value for a in t.atoms], np.int64)
    relocate_rows(linker, t, ctx, buf, atom_pos, atom_addr, symbol_arrays(linker, t.obj))


def relocate_rows(linker, t: RelocTable, ctx: RelocContext, buf: np.ndarray, atom_pos: np.ndarray,
                   atom_addr: np.ndarray, symbol_arrays) -> None:
    aidx, offs, kinds, syms, A = t.aidx, t.offs, t.kinds, t.syms, t.addend
    from_alloc = t.from_alloc
    in_code = t.in_code
    relax_lea = t.relax_lea
    Sarr, Garr, Zarr, lo, hi = symbol_arrays
    P = atom_addr[aidx] + offs
    pos = atom_pos[aidx] + offs
    if relax_lea is not None and len(relax_lea):
        buf[pos[relax_lea] - 2] = arch.LEA_OPCODE   # mov -> lea
    Sv = Sarr[syms]
    # references from code and data to a function entry go to its stub; the
    # entry must be in the referenced symbol's own atom (a jump table's
    # `.L3-.L5` may compute an address that is the next atom's entry)
    entry_addr, entry_stub = ctx.entry_addr, ctx.entry_stub
    if len(entry_addr):
        redirect = from_alloc & arch.address_kind_mask(kinds)
        if redirect.any():
            # in an instruction the PC-relative field ends it: the target is S+A+4;
            # in data `.long f - .` means S+A, and `.long f - . - 4` is read as
            # the instruction form
            rows = np.flatnonzero(redirect)
            pc = kinds[rows] == arch.K_PC32
            code = in_code[rows]
            S_r, A_r = Sv[rows], A[rows]
            lo_s, hi_s = lo[syms[rows]], hi[syms[rows]]
            delta = np.zeros(len(rows), np.int64)
            last = len(entry_addr) - 1
            target = S_r + A_r + np.where(pc & code, 4, 0)
            k = np.minimum(np.searchsorted(entry_addr, target), last)
            hit = (entry_addr[k] == target) & (target >= lo_s) & (target < hi_s)
            delta[hit] = (entry_stub[k] - entry_addr[k])[hit]
            # the second reading only for the PC-relative data fields the first missed
            again = np.flatnonzero(pc & ~code & ~hit)
            if len(again):
                target = S_r[again] + A_r[again] + 4
                k = np.minimum(np.searchsorted(entry_addr, target), last)
                hit = (entry_addr[k] == target) & (target >= lo_s[again]) & (target < hi_s[again])
                delta[again[hit]] = (entry_stub[k] - entry_addr[k])[hit]
            Sv[rows] += delta
    values = arch.compute_values(kinds, Sv, A, P, Garr[syms], Zarr[syms], ctx.got_base, ctx.tp, ctx.tls_start)
    bad = arch.check_ranges(kinds, values, Sv)
    if bad is not None:
        overflow_error(linker, t, bad, values)
    arch.write_values(buf, pos, kinds, values)


def overflow_error(linker, t: RelocTable, row: int, values: np.ndarray) -> None:
    value = int(values[row])
    t, row = t.source(row)
    obj = t.obj
    atom = t.atoms[t.aidx[row]]
    sym = obj.symbols[t.syms[row]]
    name = sym.name if sym is not None else obj.section_name(obj.st_shndx[t.syms[row]])
    raise DevlinkError(
        f"relocation {arch.reloc_name(int(t.types[row]))} against {name!r} in {obj.name}: section "
        f"{atom.name}+{int(t.offs[row]):#x} is out of range (value {value:#x} does not fit); "
        f"the program is too large for the small code model, or the object was built without -fPIC")

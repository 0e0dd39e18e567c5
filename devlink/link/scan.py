"""The relocation scan: every object's relocations become one table of kinds (S+A,
S+A-P, G+A-P..., decided by `arch/x86_64.py`), and what they need is decided: GOT
entries, stubs for imports, COPY relocations, canonical PLT entries, relaxations
(GOTPCRELX `mov` to `lea` in bulk; TLS general/local dynamic to local exec)."""

from __future__ import annotations

import itertools
import operator
from operator import attrgetter

import numpy as np

from devlink.elf import consts as C
from devlink.elf.reader import _reloc_widths
from devlink.errors import DevlinkError
from devlink.link.arch import x86_64 as arch
from devlink.link.atom import Atom
from devlink.link.object_file import ObjectFile
from devlink.link.relocs import RelocTable, type_tables as _type_tables
from devlink.link.stubs import import_stub
from devlink.link.symbol import Symbol, SymbolFlags


def scan_relocations(linker) -> None:
    global_masks = global_definition_masks(linker)
    for obj in linker.objects:
        table = obj.table = scan_object(linker, obj, global_masks)
        if table is not None:
            linker.reloc_tables.append(table)


def global_definition_masks(linker):
    """Per global (row of `global_rows`): imported, defined in the program."""
    # kept for the relocation pass of the same link: objects keep their symbols and
    # globals are only appended until then, so the rows stay right
    rows = linker._scan_rows = global_rows(linker)
    syms = list(linker.symtab.globals.values())
    n = len(syms)
    imported = (np.fromiter(map(attrgetter("flags"), syms), np.int64, n) & SymbolFlags.IMPORT) != 0
    has_file = np.fromiter(map(operator.is_not, map(attrgetter("file"), syms), itertools.repeat(None)), bool, n)
    defined = has_file & (np.fromiter(map(attrgetter("shndx"), syms), np.int64, n) != C.SHN_ABS)
    return rows, imported, defined & ~imported


def global_rows(linker) -> dict[int, np.ndarray | None]:
    """Per object (by id): the row of each of its global symbols in tables made over
    all globals (None where one has no record: then the caller goes symbol by
    symbol).  Looked up for every object in one pass."""
    row_of = dict(zip(map(id, linker.symtab.globals.values()), itertools.count()))
    parts = [obj.symbols[obj.raw.first_global:] for obj in linker.objects]
    flat = list(itertools.chain.from_iterable(parts))
    try:
        rows = np.fromiter(map(row_of.__getitem__, map(id, flat)), np.int64, len(flat))
    except KeyError:
        return {id(obj): _object_global_rows(obj, row_of) for obj in linker.objects}
    out = {}
    start = 0
    for obj, part in zip(linker.objects, parts):
        out[id(obj)] = rows[start:start + len(part)]
        start += len(part)
    return out


def definition_masks(linker, obj: ObjectFile, global_masks=None):
    """Per symbol index of `obj`: imported; defined in the program (not absolute)."""
    symbols = obj.symbols
    first = obj.raw.first_global
    n = len(symbols)
    gi = global_masks[0].get(id(obj)) if global_masks is not None else None
    if gi is None:
        imported = np.array([s is not None and bool(s.flags & SymbolFlags.IMPORT) for s in symbols], bool)
        local_def = np.array([s is not None and s.file is not None and not (s.flags & SymbolFlags.IMPORT)
                              and s.shndx != C.SHN_ABS for s in symbols], bool)
        return imported, local_def
    imported = np.zeros(n, bool)
    imported[first:] = global_masks[1][gi]
    local_def = np.zeros(n, bool)
    local_def[first:] = global_masks[2][gi]
    # locals: defined here unless dropped or absolute
    local_def[:first] = np.fromiter(map(operator.is_not, symbols[:first], itertools.repeat(None)), bool, first)
    local_def[:first] &= np.array(obj.st_shndx[:first], np.int64) != C.SHN_ABS
    return imported, local_def


def scan_object(linker, obj: ObjectFile, global_masks=None) -> RelocTable | None:
    """One object's relocations as one table of kinds; GOT entries, stubs for
    imports, COPY relocations and relaxations are decided here.  `global_masks`
    (from `global_definition_masks`): for a pass over every object."""
    kind_table, special_types, got_types, relaxable_types = _type_tables()
    atoms = [a for a in obj.atoms if a is not None and a.alive and a.relocs is not None
             and len(a.relocs) and a.output is not None]
    if not atoms:
        return None
    # one table for the whole object (as plain u8 columns)
    rel, lens = _gather_relocations(obj.raw, atoms)
    aidx = np.repeat(np.arange(len(atoms), dtype=np.int64), lens)
    offs = rel[:, 0].astype(np.int64)
    info = rel[:, 1]
    types = (info & 0xFFFFFFFF).astype(np.int64)
    syms = (info >> 32).astype(np.int64)
    addend = rel[:, 2].view(np.int64)
    if int(syms.max()) >= len(obj.symbols):
        j = int(np.argmax(syms >= len(obj.symbols)))
        raise DevlinkError(f"{obj.name}: a relocation in section {atoms[aidx[j]].name} names symbol {int(syms[j])}, "
                           f"past the end of the symbol table ({len(obj.symbols)} entries); the object is corrupt, rebuild it")
    # the atoms' columns (maps over the atoms: no per-atom Python)
    n_atoms = len(atoms)
    atom_size = np.fromiter(map(attrgetter("size"), atoms), np.int64, n_atoms)
    atom_flags = np.fromiter(map(attrgetter("sh_flags"), atoms), np.uint64, n_atoms)   # any 64 bits (a corrupt object)
    atom_nobits = np.fromiter(map(attrgetter("sh_type"), atoms), np.int64, n_atoms) == C.SHT_NOBITS
    # every field inside the section it patches
    sizes = atom_size[aidx]
    widths = _reloc_widths()[np.minimum(types, 255)]
    outside = (offs < 0) | (offs + widths > sizes) | (types >= 256) & (offs > sizes)
    if outside.any():
        j = int(np.argmax(outside))
        raise DevlinkError(f"{obj.name}: a relocation for section {atoms[aidx[j]].name} patches offset {int(offs[j]):#x}, "
                           f"outside the section ({int(sizes[j]):#x} bytes); the object is corrupt, rebuild it")
    if atom_nobits.any():
        a = atoms[int(np.argmax(atom_nobits))]
        raise DevlinkError(f"{obj.name}: section {a.name} has no contents (SHT_NOBITS) but has relocations; "
                           f"the object is corrupt, rebuild it")
    tclip = np.minimum(types, 255)
    kinds = np.where(types >= 256, -1, kind_table[tclip]).astype(np.int16)
    # references from code and data (not unwind tables, not debug info) may mean a
    # function's canonical address, the stub
    eh_frame_out = linker.outputs.get(".eh_frame")
    not_eh_frame = np.fromiter(map(operator.is_not, map(attrgetter("output"), atoms), itertools.repeat(eh_frame_out)),
                               bool, n_atoms)
    alloc_atom = ((atom_flags & C.SHF_ALLOC) != 0) & not_eh_frame
    code_atom = (atom_flags & C.SHF_EXECINSTR) != 0
    from_alloc = alloc_atom[aidx]
    in_code = code_atom[aidx]
    # local-dynamic TLS is always relaxed to local exec, so in code a DTPOFF32 is an
    # offset from the thread pointer; in data and debug info it stays an offset in
    # the TLS block
    arch.local_dynamic_offsets_in_code(kinds, types, in_code)
    symbols = obj.symbols
    is_import, local_def = definition_masks(linker, obj, global_masks)
    relax_lea = None
    got_mask = got_types[tclip] & (types < 256)
    if got_mask.any():
        # `mov foo@GOTPCREL(%rip), %reg` -> `lea foo(%rip), %reg` for symbols
        # defined in the program: no GOT entry, one load less
        sec_off = np.fromiter(map(attrgetter("offset"), atoms), np.int64, n_atoms)
        fpos = sec_off[aidx] + offs
        data = np.frombuffer(obj.raw.data, np.uint8)
        ok = got_mask & relaxable_types[tclip] & local_def[syms] & (offs >= 2)
        cand = np.flatnonzero(ok)
        if len(cand):
            relax_lea = cand[arch.gotpcrel_relaxable(data, fpos[cand])]
            kinds[relax_lea] = arch.K_PC32
            got_mask[relax_lea] = False
        for j in np.flatnonzero(got_mask).tolist():
            sym = symbols[syms[j]]
            if sym is None:
                atom = atoms[aidx[j]]
                raise DevlinkError(f"{where(linker, obj, atom, int(offs[j]))}: {arch.reloc_name(int(types[j]))} "
                                   f"against a section symbol is not supported")
            if sym.flags & SymbolFlags.IMPORT:
                sym.flags |= SymbolFlags.REFERENCED
            linker.got.add_got_symbol(sym)
    special = np.flatnonzero((kinds < 0) | special_types[tclip])
    skip = set()
    for j in special.tolist():
        if j in skip:
            continue
        scan_special(linker, obj, atoms, j, aidx, offs, types, syms, addend, kinds, from_alloc, skip)
    imp = np.flatnonzero(is_import[syms] & from_alloc)
    for j in imp.tolist():
        if kinds[j] <= 0:
            continue
        scan_import(linker, obj, atoms[aidx[j]], int(offs[j]), int(types[j]), symbols[syms[j]], int(kinds[j]))
    return RelocTable(obj, atoms, aidx, offs, types, syms, addend, kinds, from_alloc, in_code, relax_lea)


def where(linker, obj, atom, off) -> str:
    return f"{obj.name}: section {atom.name}+{off:#x}"


def scan_special(linker, obj, atoms, j, aidx, offs, types, syms, addend, kinds, from_alloc, skip) -> None:
    atom = atoms[aidx[j]]
    off = int(offs[j])
    t = int(types[j])
    sym = obj.symbols[syms[j]] if syms[j] < len(obj.symbols) else None
    if kinds[j] < 0 and t not in arch.TLS_SEQUENCE_TYPES:
        raise DevlinkError(f"unsupported relocation {arch.reloc_name(t)} in {where(linker, obj, atom, off)}: "
                           f"{arch.unsupported_hint(t)}")
    if t == arch.INITIAL_EXEC_TYPE:
        if sym is None or sym.is_import:
            raise DevlinkError(f"{where(linker, obj, atom, off)}: thread-local variable {getattr(sym, 'name', '?')!r} from a shared library is not supported")
        linker.got.add_gottp_symbol(sym)
        return
    if t in arch.TLS_SEQUENCE_TYPES:
        if sym is not None and sym.is_import:
            raise DevlinkError(f"{where(linker, obj, atom, off)}: thread-local variable {sym.name!r} from a shared library is not supported")
        nxt = j + 1
        nxt_type = int(types[nxt]) if nxt < len(types) and aidx[nxt] == aidx[j] else None
        r = arch.relax_tls_sequence(atom.data, off, t, nxt_type)
        if r is None:
            raise DevlinkError(f"{where(linker, obj, atom, off)}: {arch.reloc_name(t)} is not followed by the standard "
                               f"__tls_get_addr call sequence; build with gcc's default TLS code")
        start, code, field_off = r
        linker.edits.append((atom, start, code))
        if field_off is not None:          # general dynamic: a new TP-offset field
            offs[j] = field_off
            addend[j] = 0
            kinds[j] = arch.K_TPOFF32
        else:                              # local dynamic: its DTPOFF32 offsets become TP offsets
            kinds[j] = arch.K_NONE
        if nxt_type is not None:
            kinds[nxt] = arch.K_NONE   # the __tls_get_addr call is gone
            skip.add(nxt)
        return


def scan_import(linker, obj, atom, off, t, sym: Symbol, kind: int) -> None:
    sym.flags |= SymbolFlags.REFERENCED
    if sym.type == C.STT_TLS:
        raise DevlinkError(f"{where(linker, obj, atom, off)}: thread-local variable {sym.name!r} from a shared library is not supported")
    is_func = sym.type in (C.STT_FUNC, C.STT_GNU_IFUNC)
    if kind in arch.GOT_KINDS:
        return
    if is_func:
        import_stub(linker, sym)
        if arch.takes_address(t, atom.data, off):
            # the address is taken directly: the stub becomes the canonical address
            sym.flags |= SymbolFlags.CANONICAL_PLT
        return
    if kind in (arch.K_ABS64, arch.K_ABS32, arch.K_ABS32S, arch.K_PC32, arch.K_PC64):
        if not (sym.flags & SymbolFlags.COPY_REL):
            add_copy(linker, sym)


def add_copy(linker, sym: Symbol) -> None:
    if sym.size == 0:
        raise DevlinkError(f"imported variable {sym.name!r} has size 0 and cannot be copied into the program; build the referencing object with -fPIC")
    # the copy keeps the alignment of the library's definition (at most 64)
    align = 1
    while align < 64 and sym.value % (align * 2) == 0:
        align *= 2
    atom = Atom(None, 0, "COPY." + sym.name, C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE,
                sym.size, align, memoryview(b""), None)
    out = linker.output_section(".bss", C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE)
    out.alignment = max(out.alignment, align)
    atom.output = out
    out.atoms.append(atom)
    sym.flags |= SymbolFlags.COPY_REL
    linker.copy_atoms.append((sym, atom))
    # the library's other names for the same variable (environ, __environ) must be
    # defined at the copy too, or libc keeps using its own storage
    so = sym.file
    for alias in so.aliases_of(sym.value):
        if alias.name == sym.name or (alias.info & 0xF) != C.STT_OBJECT:
            continue
        other = linker.symtab.get_or_create(alias.name)
        if other.file is not None and other.file is not so:
            continue
        other.file = so
        other.value, other.size, other.type = alias.value, alias.size, C.STT_OBJECT
        other.version = alias.version
        other.flags |= SymbolFlags.IMPORT | SymbolFlags.COPY_REL | SymbolFlags.REFERENCED
        linker.copy_aliases.append((other, atom))


def _object_global_rows(obj: ObjectFile, rows: dict[int, int]) -> np.ndarray | None:
    """Row (in a table over all globals) of each of `obj`'s global symbols; None if
    one has no record (then the caller goes symbol by symbol)."""
    first = obj.raw.first_global
    n = len(obj.symbols)
    try:
        return np.fromiter((rows[id(sym)] for sym in obj.symbols[first:]), np.int64, n - first)
    except KeyError:
        return None


def _gather_relocations(raw, atoms: list) -> tuple[np.ndarray, np.ndarray]:
    """The RELA records of `atoms`, in order, as an (n, 3) u8 array, and the count per
    atom: gathered from the file's bytes with one index instead of one array per atom."""
    lens = np.fromiter(map(len, map(attrgetter("relocs"), atoms)), np.int64, len(atoms))
    offsets = getattr(raw, "rela_offsets", None) or {}
    try:
        starts = np.fromiter(map(offsets.__getitem__, map(attrgetter("shndx"), atoms)), np.int64, len(atoms))
    except KeyError:
        starts = None
    if starts is None or (starts & 7).any():
        return np.concatenate([a.relocs.view("<u8").reshape(-1, 3) for a in atoms]), lens
    words = np.frombuffer(raw.data, "<u8", len(raw.data) // 8)
    first_row = np.cumsum(lens) - lens
    row_word = np.repeat(starts // 8 - 3 * first_row, lens) + 3 * np.arange(int(lens.sum()), dtype=np.int64)
    return words[row_word[:, None] + np.arange(3)], lens

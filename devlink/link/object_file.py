"""Input files of a link: relocatable objects (and archive members) and shared objects."""

from __future__ import annotations

import numpy as np

from devlink.elf import consts as C
from devlink.elf.reader import RawObject, RawSharedObject
from devlink.errors import DevlinkError
from devlink.link.atom import Atom
from devlink.link.symbol import Symbol, SymbolFlags

#: non-allocated sections that are kept in the output (with relocations applied)
EMPTY_VIEW = memoryview(b"")
_STATIC_SUFFIX = __import__("re").compile(r"\.\d+$")


#: section types that hold the file's own tables, never output bytes
_NO_ATOM_TYPES = frozenset((C.SHT_NULL, C.SHT_SYMTAB, C.SHT_STRTAB, C.SHT_RELA, C.SHT_REL, C.SHT_GROUP,
                            C.SHT_SYMTAB_SHNDX))


def is_debug_section(name: str) -> bool:
    return name.startswith(".debug_") or name.startswith(".zdebug_")


class ObjectFile:
    """One relocatable object: its atoms and its symbol table, resolved."""

    def __init__(self, raw: RawObject, name: str, priority: int = 0):
        #: the decoded ELF tables
        self.raw = raw
        #: display name (`lib.a(member.o)` for archive members)
        self.name = name
        #: position in the link order
        self.priority = priority
        #: atoms by section index (None where the section makes no atom)
        self.atoms: list[Atom | None] = [None] * len(raw.sections)
        #: Symbol per symbol-table index; None for the null, section and file symbols
        self.symbols: list[Symbol | None] = [None] * len(raw.symtab)
        #: COMDAT group signatures of this file: signature -> member section indexes
        self.comdat_groups: list[tuple[str, list[int]]] = []
        #: whether `.note.GNU-stack` asks for an executable stack
        self.exec_stack = False
        #: stubs of this object's functions (indexes into the StubSection)
        self.stub_indexes: list[int] = []
        #: global names this object references, and those it references only weakly
        self.ref_names: list[str] = []
        self.weak_refs: set[str] = set()
        #: RelocTable of this object (set by scanning)
        self.table = None
        #: names of relocation targets, for comparing two versions (built on demand)
        self._target_keys = None
        #: atoms by decl key (set when an update placed this object)
        self.decl_keys = None
        #: section names, once `compact` dropped the other section records
        self.section_names = None
        #: function-scope statics by DWARF identity (see static_keys), and the bytes
        #: to read them from once compacted
        self._static_keys = None
        self._full_data = None
        #: symbol types / bindings (numpy, for bulk selection)
        info = raw.symtab["st_info"]
        self.sym_type = info & 0xF
        self.sym_bind = info >> 4
        #: the symbol table's columns as Python lists: per-symbol loops index these
        #: (a numpy structured-field access per element costs microseconds)
        self.st_value = raw.symtab["st_value"].tolist()
        self.st_size = raw.symtab["st_size"].tolist()
        self.st_other = raw.symtab["st_other"].tolist()
        shndx = raw.symtab["st_shndx"].astype(np.int64)
        if raw.symtab_shndx is not None and len(raw.symtab_shndx) == len(shndx):
            shndx = np.where(shndx == C.SHN_XINDEX, raw.symtab_shndx.astype(np.int64), shndx)
        self.st_shndx = shndx.tolist()

    def create_atoms(self, order: int) -> int:
        """Make an atom for every section that goes to the output."""
        raw = self.raw
        for sec in raw.sections:
            if sec.sh_type == C.SHT_GROUP:
                self._read_group(sec)
        if raw.view is None:
            raw.view = memoryview(raw.data)
        view = raw.view
        relocs_of = raw.relocs.get
        atoms = self.atoms
        for sec in raw.sections:
            t = sec.sh_type
            if t in _NO_ATOM_TYPES:
                continue
            name = sec.name
            flags = sec.sh_flags
            if name == ".note.GNU-stack":
                self.exec_stack = bool(flags & C.SHF_EXECINSTR)
                continue
            if flags & C.SHF_EXCLUDE:
                continue
            if not (flags & C.SHF_ALLOC):
                if not name.startswith((".debug_", ".zdebug_")):    # is_debug_section
                    continue  # .comment, .note.*, .llvm_addrsig...: not needed at run time
            elif name == ".note.gnu.property":
                continue  # devlink does not claim IBT/SHSTK for the whole program
            if flags & C.SHF_COMPRESSED:
                raise DevlinkError(f"{self.name}: section {name} is compressed; rebuild without -gz")
            align = sec.sh_addralign
            if align & (align - 1):
                raise DevlinkError(f"{self.name}: section {name} has alignment {align}, not a power of two; the object is corrupt")
            # raw.section_bytes(sec), inline
            data = EMPTY_VIEW if t == C.SHT_NOBITS else view[sec.sh_offset:sec.sh_offset + sec.sh_size]
            atom = Atom(self, sec.index, name, t, flags, sec.sh_size, align, data, relocs_of(sec.index))
            atom.input_order = order
            order += 1
            atoms[sec.index] = atom
        return order

    def _read_group(self, sec) -> None:
        raw = self.raw
        words = np.frombuffer(raw.data, "<u4", sec.sh_size // 4, sec.sh_offset)
        if not len(words) or not (int(words[0]) & C.GRP_COMDAT):
            return
        if sec.sh_info >= len(raw.symtab):
            raise DevlinkError(f"{self.name}: group section {sec.name} names symbol {sec.sh_info}, which does not exist; the object is corrupt")
        signature = raw.sym_name(sec.sh_info)
        self.comdat_groups.append((signature, [int(w) for w in words[1:]]))

    def source_name(self) -> str | None:
        """The STT_FILE name of the object (its source file), for the output's symtab."""
        name = getattr(self, "_source_name", False)
        if name is False:
            name = None
            files = np.flatnonzero(self.sym_type == C.STT_FILE)
            if len(files):
                name = self.raw.sym_name(int(files[0])) or None
            self._source_name = name
        return name

    def has_function_statics(self) -> bool:
        """Whether gcc numbered some local variable (`n.1`): a function-scope static."""
        first = self.raw.first_global
        for sym in self.symbols[:first]:
            if sym is not None and sym.type in (C.STT_OBJECT, C.STT_TLS) and _STATIC_SUFFIX.search(sym.name):
                return True
        return False

    def static_keys(self) -> dict[str, tuple[str, str]]:
        """ELF name of each function-scope static -> (enclosing function, variable), from
        DWARF: gcc renumbers these (`n.0` may become `n.1` when a function with its own
        static `n` is added), so only this key finds the same variable again."""
        keys = self._static_keys
        if keys is None:
            keys = {}
            data = self._full_data if self._full_data is not None else self.raw.data
            if self.has_function_statics():
                try:
                    from devlink.dwarf import build_index
                    index = build_index(self.name, data)
                    keys = {sym: (fn, var) for (fn, var), sym in index.static_locals.items()}
                except Exception:   # no usable DWARF: names are the fallback
                    keys = {}
            self._static_keys = keys
            self._full_data = None
        return keys

    def compact(self) -> None:
        """Keep only the bytes an update still needs once this object is linked: its
        code and data sections and their relocations.  Debug info and unwind tables are
        read again from the object's next version; dropping them here is most of an
        object's size."""
        from devlink.elf.reader import RELA_DTYPE
        raw = self.raw
        if self._static_keys is None and self.has_function_statics():
            self._full_data = raw.data      # its DWARF is read when an update needs it
        keep = []
        for atom in self.atoms:
            if atom is None or not (atom.sh_flags & C.SHF_ALLOC) or atom.is_nobits or atom.name == ".eh_frame":
                continue
            keep.append(atom)
        buf = bytearray()
        places = []
        for atom in keep:
            start = len(buf)
            buf += atom.data
            rel_start = len(buf)
            if atom.relocs is not None and len(atom.relocs):
                buf += atom.relocs.tobytes()
            places.append((atom, start, rel_start))
        data = bytes(buf)
        view = memoryview(data)
        for atom, start, rel_start in places:
            sec = raw.sections[atom.shndx]
            sec.sh_offset = start
            atom.data = view[start:start + atom.size]
            if atom.relocs is not None and len(atom.relocs):
                atom.relocs = np.frombuffer(data, RELA_DTYPE, len(atom.relocs), rel_start)
        kept = {a.shndx for a in keep}
        # dropped sections keep only their names
        self.section_names = [sec.name for sec in raw.sections]
        raw.sections = [sec if sec.index in kept else None for sec in raw.sections]
        for atom in self.atoms:
            if atom is not None and atom.shndx not in kept:
                atom.data = EMPTY_VIEW
                atom.relocs = None
        raw.symtab = raw.symtab.copy()
        raw.relocs = {}
        raw.rela_offsets = {}
        raw.data = data
        raw.view = None
        # the symbol columns, packed (they are read in bulk from here on)
        self.st_value = np.array(self.st_value, np.uint64)
        self.st_size = np.array(self.st_size, np.uint64)
        self.st_other = np.array(self.st_other, np.uint8)
        self.st_shndx = np.array(self.st_shndx, np.int64)

    def section_name(self, shndx: int) -> str:
        if 0 < shndx < len(self.raw.sections):
            if self.section_names is not None:
                return self.section_names[shndx]
            return self.raw.sections[shndx].name
        return f"[{shndx}]"


class SharedObject:
    """A shared library the program is linked against (`DT_NEEDED` when used)."""

    def __init__(self, raw: RawSharedObject, as_needed: bool):
        self.raw = raw
        self.name = raw.path
        self.soname = raw.soname
        #: listed in AS_NEEDED(...) or behind --as-needed: DT_NEEDED only if used
        self.as_needed = as_needed
        #: whether some symbol of the program binds to it
        self.used = False

    def lookup(self, name: str):
        return self.raw.defined.get(name)

    def aliases_of(self, value: int) -> list:
        """Every default-version definition at `value` (a variable's other names)."""
        by_value = getattr(self, "_by_value", None)
        if by_value is None:
            by_value = self._by_value = {}
            for d in self.raw.defined.values():
                by_value.setdefault(d.value, []).append(d)
        return by_value.get(value, [])


def bind_import(sym: Symbol, so: SharedObject, d) -> None:
    """`sym` is defined by shared library `so` (its dynamic symbol `d`)."""
    sym.file = so
    sym.value = d.value
    sym.size = d.size
    sym.type = d.info & 0xF
    sym.shndx = d.shndx
    sym.version = d.version
    sym.flags |= SymbolFlags.IMPORT


def new_local_symbol(obj: ObjectFile, i: int, name: str) -> Symbol:
    """A Symbol record for a file-local definition of `obj`'s symbol table entry `i`."""
    sym = Symbol(name)
    sym.file = obj
    sym.esym_index = i
    shndx = obj.st_shndx[i]
    sym.shndx = shndx
    sym.value = obj.st_value[i]
    sym.size = obj.st_size[i]
    sym.type = int(obj.sym_type[i])
    sym.bind = C.STB_LOCAL
    sym.visibility = obj.st_other[i] & 3
    if 0 < shndx < C.SHN_LORESERVE:
        sym.atom = obj.atoms[shndx]
    return sym

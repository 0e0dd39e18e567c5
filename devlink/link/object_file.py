"""Input files of a link: relocatable objects (and archive members) and shared objects."""

from __future__ import annotations

import numpy as np

from devlink.elf import consts as C
from devlink.elf.reader import RawObject, RawSharedObject
from devlink.errors import DevlinkError
from devlink.link.atom import Atom
from devlink.link.relocs import share_records
from devlink.link.symbol import Symbol, SymbolFlags

#: the contents of an atom that has none (NOBITS)
EMPTY_VIEW = memoryview(b"")
#: the bytes of a compacted atom whose contents an update never reads
EMPTY_BYTES = b""
_STATIC_SUFFIX = __import__("re").compile(r"\.\d+$")
#: sections that go to .init_array/.fini_array/.preinit_array (see sections.output_name):
#: the link sorts those by (priority, input order)
_ARRAY_TYPES = (C.SHT_INIT_ARRAY, C.SHT_FINI_ARRAY, C.SHT_PREINIT_ARRAY)
_ARRAY_PREFIXES = (".init_array", ".fini_array", ".preinit_array")


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
        #: section names by index once `compact` dropped the section records (None for
        #: a section that made no atom and that no symbol names)
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
        """Make an atom for every section that goes to the output.  Section headers are
        dropped here (unless a symbol names the section, or it is in a COMDAT group): an
        atom holds what its header said, about half of an object's sections are
        relocation tables, and a link holds every object at once."""
        raw = self.raw
        for sec in raw.sections:
            if sec.sh_type == C.SHT_GROUP:
                self._read_group(sec)
        # an atom holds what its header said (but a COMDAT member that is discarded
        # keeps its name); other sections' headers go unless a symbol names them
        sections = raw.sections
        named = set(self.st_shndx)
        grouped = {m for _, members in self.comdat_groups for m in members}
        skipped = []
        if raw.view is None:
            raw.view = memoryview(raw.data)
        view = raw.view
        data_of = raw.data
        relocs_of = raw.relocs.get
        atoms = self.atoms
        for sec in sections:
            t = sec.sh_type
            if t in _NO_ATOM_TYPES:
                skipped.append(sec.index)
                continue
            name = sec.name
            flags = sec.sh_flags
            if name == ".note.GNU-stack":
                self.exec_stack = bool(flags & C.SHF_EXECINSTR)
                skipped.append(sec.index)
                continue
            if flags & C.SHF_EXCLUDE:
                skipped.append(sec.index)
                continue
            if not (flags & C.SHF_ALLOC):
                if not name.startswith((".debug_", ".zdebug_")):    # is_debug_section
                    skipped.append(sec.index)
                    continue  # .comment, .note.*, .llvm_addrsig...: not needed at run time
            elif name == ".note.gnu.property":
                skipped.append(sec.index)
                continue  # devlink does not claim IBT/SHSTK for the whole program
            if flags & C.SHF_COMPRESSED:
                raise DevlinkError(f"{self.name}: section {name} is compressed; rebuild without -gz")
            align = sec.sh_addralign
            if align & (align - 1):
                raise DevlinkError(f"{self.name}: section {name} has alignment {align}, not a power of two; the object is corrupt")
            off = sec.sh_offset
            if t == C.SHT_NOBITS:
                data = EMPTY_VIEW
            elif flags & C.SHF_ALLOC and name != ".eh_frame":
                # code and data: bytes of their own, the form `compact` keeps (smaller
                # than a view's 184-byte header for a typical function, and no copy later)
                data = bytes(data_of[off:off + sec.sh_size])
            else:
                data = view[off:off + sec.sh_size]
            atom = Atom(self, sec.index, name, t, flags, sec.sh_size, align, data, relocs_of(sec.index))
            if t in _ARRAY_TYPES or name.startswith(_ARRAY_PREFIXES):
                atom.input_order = order    # only these are sorted by it (an int per atom)
            order += 1
            atoms[sec.index] = atom
            atom.offset = off
            if sec.index not in grouped:
                sections[sec.index] = None
        for i in skipped:
            if i not in named:
                sections[i] = None
        return order

    def atom_bytes(self, atom: Atom) -> memoryview:
        """The bytes of `atom` in this object's file (a view)."""
        if atom.is_nobits:
            return memoryview(b"")
        raw = self.raw
        if raw.view is None:
            raw.view = memoryview(raw.data)
        return raw.view[atom.offset:atom.offset + atom.size]

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
        """Keep only what an update still needs once this object is linked: its code and
        data bytes and their relocations, the symbol table, the names of the sections a
        symbol names.  Debug info and unwind tables are read again from the object's next
        version; dropping them here is most of an object's size.  Code and data atoms
        already own their bytes (see create_atoms); the section headers go."""
        from devlink.elf.reader import RELA_DTYPE
        if self.section_names is not None:
            return                          # compacted already
        raw = self.raw
        if self._static_keys is None and self.has_function_statics():
            self._full_data = raw.data      # its DWARF is read when an update needs it
        keep = []
        for atom in self.atoms:
            if atom is None:
                continue
            atom.offset = 0                 # the file's bytes are gone
            if not (atom.sh_flags & C.SHF_ALLOC) or atom.sh_type == C.SHT_NOBITS or atom.name == ".eh_frame":
                atom.data = EMPTY_BYTES
                atom.relocs = None
                continue
            atom.data = bytes(atom.data)
            if atom.relocs is not None and len(atom.relocs):
                keep.append(atom)
            else:
                atom.relocs = None
        # relocations: one array per object, each atom's records a slice of it; the
        # relocation table's atoms first, in its order, so its input columns can be
        # views of the same records (see relocs.share_records)
        table = self.table
        if keep:
            share = False
            if table is not None:
                in_table = {id(a) for a in table.atoms}
                rest = [a for a in keep if id(a) not in in_table]
                if len(rest) + len(table.atoms) == len(keep):   # every table atom is kept
                    keep = list(table.atoms) + rest
                    share = True
            # joined as bytes (np.concatenate promotes structured dtypes in Python code,
            # ~7 us an array); read-only, as the records read from the file were
            records = np.frombuffer(b"".join([atom.relocs.data for atom in keep]), RELA_DTYPE)
            start = 0
            for atom in keep:
                n = len(atom.relocs)
                atom.relocs = records[start:start + n]
                start += n
            if share:
                self.table = share_records(table, records)
        # the names a symbol-table entry can ask for (section symbols, and symbols of
        # sections that made no atom): other sections' names go with their headers
        named = set(np.unique(np.asarray(self.st_shndx, np.int64)).tolist())
        self.section_names = [atom.name if atom is not None else
                              (sec.name if sec is not None and i in named else None)
                              for i, (sec, atom) in enumerate(zip(raw.sections, self.atoms))]
        raw.sections = []
        # the symbol table, copied out of the file's bytes; the per-symbol columns are
        # views of it (no second copy)
        symtab = raw.symtab = raw.symtab.copy()
        if raw.symtab_shndx is not None:
            raw.symtab_shndx = raw.symtab_shndx.copy()
        self.st_value = symtab["st_value"]
        self.st_size = symtab["st_size"]
        self.st_other = symtab["st_other"]
        shndx = np.asarray(self.st_shndx, np.int64)
        if (symtab["st_shndx"] == shndx).all():
            self.st_shndx = symtab["st_shndx"]
        else:                               # SHN_XINDEX entries, resolved
            self.st_shndx = shndx
        raw.relocs = {}
        raw.rela_offsets = {}
        raw.data = EMPTY_BYTES
        raw.view = None

    def section_name(self, shndx: int) -> str:
        if self.section_names is not None:
            if 0 < shndx < len(self.section_names):
                return self.section_names[shndx]
        elif 0 < shndx < len(self.raw.sections):
            if self.atoms[shndx] is not None:
                return self.atoms[shndx].name
            if self.raw.sections[shndx] is not None:
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
    if 0 < shndx < C.SECTION_INDEX_END:
        sym.atom = obj.atoms[shndx]
    return sym

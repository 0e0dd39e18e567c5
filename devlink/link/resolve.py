"""Symbol resolution: which definition each name binds to, and which archive members and
shared libraries the program pulls in.

Precedence follows GNU ld: a strong definition in an object beats a weak one, which beats
a COMMON symbol, which beats a shared library's definition.  Archive members are loaded
only to define a symbol that is still undefined (by a strong reference) when the
archive is reached; the library list is walked again until nothing changes, as if the
whole list were one --start-group.

`SymbolTable` holds the bindings (an incremental update changes them object by object);
`resolve_symbols` is the full link's pass over every input.
"""

from __future__ import annotations

import numpy as np

from devlink.elf import consts as C
from devlink.elf.reader import cstrings, read_object
from devlink.errors import DevlinkError
from devlink.link.load import add_object
from devlink.link.object_file import ObjectFile, SharedObject, bind_import, new_local_symbol
from devlink.link.shared_ints import indexes
from devlink.link.symbol import Symbol, SymbolFlags

# rank of a definition: lower wins
RANK_STRONG = 1
RANK_WEAK = 2
RANK_COMMON = 3
RANK_SHARED = 4
RANK_UNDEF = 5


def _rank(sym: Symbol) -> int:
    if sym.file is None:
        return RANK_UNDEF
    if isinstance(sym.file, SharedObject):
        return RANK_SHARED
    if sym.shndx == C.SHN_COMMON:
        return RANK_COMMON
    if sym.bind == C.STB_WEAK:
        return RANK_WEAK
    return RANK_STRONG


def symbol_names(raw, indexes: np.ndarray) -> list[str]:
    """The names of symbol-table entries `indexes` of `raw`, in one pass over the string
    table (a name ends at the first NUL at or after its offset)."""
    return cstrings(raw.strtab, raw.symtab["st_name"][indexes].astype(np.int64), "surrogateescape")


class SymbolTable:
    """All global symbols of a link, by name."""

    def __init__(self):
        self.globals: dict[str, Symbol] = {}
        #: the objects that reference each name (for "undefined symbol" messages and
        #: updates): a tuple for the first user, a list once there are more
        self.referenced_by: dict[str, tuple | list[ObjectFile]] = {}

    def get_or_create(self, name: str) -> Symbol:
        sym = self.globals.get(name)
        if sym is None:
            sym = self.globals[name] = Symbol(name)
            sym.bind = C.STB_WEAK  # until a strong reference is seen
        return sym

    def add_object(self, obj: ObjectFile, like: ObjectFile | None = None) -> None:
        """Bind `obj`'s symbols: locals get their own records, globals go by name.
        `like`: the object's previous version, whose symbol table has the same names at
        the same indexes (an edit inside functions): names and global records are taken
        from it instead of decoded and looked up."""
        if like is not None:
            return self._add_like(obj, like)
        raw = obj.raw
        n = len(raw.symtab)
        first_global = max(raw.first_global, 1)
        if n <= 1:
            return
        syms = obj.symbols
        idx = indexes(n)                      # a record keeps its index: shared ints
        shndxs = obj.st_shndx
        types = obj.sym_type
        # locals: named definitions only (not section or file symbols, not undefined)
        local = np.flatnonzero((types[1:first_global] != C.STT_SECTION) & (types[1:first_global] != C.STT_FILE)
                               & (np.array(shndxs[1:first_global], np.int64) != C.SHN_UNDEF)) + 1
        atoms = obj.atoms
        # every name this object needs, in one pass over its string table
        names = symbol_names(raw, np.concatenate((local, np.arange(first_global, n))))
        local_names, global_names = names[:len(local)], names[len(local):]
        for i, name in zip(local.tolist(), local_names):
            if not name:
                continue
            shndx = shndxs[i]
            if 0 < shndx < C.SECTION_INDEX_END and atoms[shndx] is None:
                continue  # in a discarded section
            syms[i] = new_local_symbol(obj, idx[i], name)
        if first_global >= n:
            return
        binds = obj.sym_bind[first_global:].tolist()
        if C.STB_LOCAL in binds:
            i = first_global + binds.index(C.STB_LOCAL)
            raise DevlinkError(f"{obj.name}: local symbol {raw.sym_name(i)!r} is listed among the globals (index {i}); the object is corrupt")
        lookup = self.globals.get
        referenced_by = self.referenced_by
        ref_names = obj.ref_names
        st_other, st_value, st_size = obj.st_other, obj.st_value, obj.st_size
        type_list = types[first_global:].tolist()
        for i, name, shndx, bind in zip(idx[first_global:n], global_names, shndxs[first_global:], binds):
            sym = lookup(name)
            if sym is None:
                sym = self.globals[name] = Symbol(name)
                sym.bind = C.STB_WEAK  # until a strong reference is seen
            syms[i] = sym
            if shndx == C.SHN_UNDEF:
                if bind != C.STB_WEAK and sym.file is None:
                    sym.bind = C.STB_GLOBAL
                name = sym.name                     # the symbol's own string, not a copy
                refs = referenced_by.get(name)
                if refs is None:
                    referenced_by[name] = (obj,)    # a tuple until a second user (add_reference)
                elif type(refs) is tuple:
                    referenced_by[name] = [*refs, obj]
                else:
                    refs.append(obj)
                ref_names.append(name)
                if bind == C.STB_WEAK:
                    obj.weak_refs.add(name)
                vis = st_other[i] & 3
                if vis and (not sym.visibility or vis < sym.visibility):
                    sym.visibility = vis
                continue
            in_section = 0 < shndx < C.SECTION_INDEX_END
            if in_section and atoms[shndx] is None:
                continue  # defined in a section devlink drops (duplicate COMDAT)
            if sym.file is not None:
                self._define(sym, obj, i, shndx, bind)
                continue
            # the first definition of the name (what _define does against no rival)
            vis = sym.visibility
            v = st_other[i] & 3
            sym.file = obj
            sym.esym_index = i
            sym.shndx = shndx
            sym.value = st_value[i]  # for COMMON: the alignment
            sym.size = st_size[i]
            sym.type = type_list[i - first_global]
            sym.bind = bind
            sym.visibility = v if not vis else (min(v, vis) if v else vis)
            sym.atom = atoms[shndx] if in_section else None
            sym.flags &= ~SymbolFlags.IMPORT

    def _bind_global(self, sym: Symbol, obj: ObjectFile, i: int, shndx: int, bind: int) -> None:
        """`obj`'s global entry `i` (record `sym`): a reference, or a definition."""
        if shndx == C.SHN_UNDEF:
            if bind != C.STB_WEAK and sym.file is None:
                sym.bind = C.STB_GLOBAL
            self.add_reference(sym.name, obj)
            obj.ref_names.append(sym.name)       # the symbol's own string, not a copy
            if bind == C.STB_WEAK:
                obj.weak_refs.add(sym.name)
            vis = obj.st_other[i] & 3
            if vis and (not sym.visibility or vis < sym.visibility):
                sym.visibility = vis
            return
        if 0 < shndx < C.SECTION_INDEX_END and obj.atoms[shndx] is None:
            return  # defined in a section devlink drops (duplicate COMDAT)
        self._define(sym, obj, i, shndx, bind)

    def add_reference(self, name: str, obj: ObjectFile) -> None:
        refs = self.referenced_by.get(name)
        if refs is None:
            # most names have one or two users: a tuple until there are two
            self.referenced_by[name] = (obj,)
        elif type(refs) is tuple:
            self.referenced_by[name] = [*refs, obj]
        else:
            refs.append(obj)

    def drop_reference(self, name: str, obj: ObjectFile) -> None:
        """`obj` no longer references `name` (an update replaced or removed it)."""
        refs = self.referenced_by.get(name)
        if type(refs) is tuple:
            self.referenced_by[name] = tuple(o for o in refs if o is not obj)
        elif refs:
            try:
                refs.remove(obj)              # a C loop over identities
            except ValueError:
                pass

    def _add_like(self, obj: ObjectFile, like: ObjectFile) -> None:
        shndxs = obj.st_shndx
        types = obj.sym_type.tolist()
        binds = obj.sym_bind.tolist()
        syms = obj.symbols
        old = like.symbols
        first_global = obj.raw.first_global
        idx = indexes(len(syms))              # a record keeps its index: shared ints
        for i in idx[1:first_global]:
            prev = old[i]
            if prev is None:
                t = types[i]
                if t == C.STT_SECTION or t == C.STT_FILE or shndxs[i] == C.SHN_UNDEF or not obj.raw.sym_name(i):
                    continue
                name = obj.raw.sym_name(i)
            else:
                name = prev.name
            if shndxs[i] == C.SHN_UNDEF:
                continue
            sym = new_local_symbol(obj, i, name)
            if sym.atom is None and 0 < shndxs[i] < C.SECTION_INDEX_END:
                continue  # in a discarded section
            syms[i] = sym
        for i in idx[first_global:]:
            syms[i] = old[i]
            self._bind_global(old[i], obj, i, shndxs[i], binds[i])

    def _define(self, sym: Symbol, obj: ObjectFile, i: int, shndx: int, bind: int) -> None:
        new_rank = RANK_COMMON if shndx == C.SHN_COMMON else (RANK_WEAK if bind == C.STB_WEAK else RANK_STRONG)
        old_rank = _rank(sym)
        if new_rank == RANK_STRONG and old_rank == RANK_STRONG:
            raise DevlinkError(
                f"duplicate definition of {sym.name!r}: in {sym.file.name} and in {obj.name}; "
                f"make one of them static, or remove one")
        size = obj.st_size[i]
        if new_rank == RANK_COMMON and old_rank == RANK_COMMON:
            # COMMON + COMMON: the largest size and alignment win
            if size > sym.size:
                sym.size = size
            sym.value = max(sym.value, obj.st_value[i])
            return
        if new_rank >= old_rank:
            return
        vis = sym.visibility
        sym.file = obj
        sym.esym_index = i
        sym.shndx = shndx
        sym.value = obj.st_value[i]  # for COMMON: the alignment
        sym.size = size
        sym.type = int(obj.sym_type[i])
        sym.bind = bind
        v = obj.st_other[i] & 3
        sym.visibility = v if not vis else (min(v, vis) if v else vis)
        sym.atom = obj.atoms[shndx] if 0 < shndx < C.SECTION_INDEX_END else None
        sym.flags &= ~SymbolFlags.IMPORT

    def undefined_strong(self) -> list[Symbol]:
        return [s for s in self.globals.values() if s.file is None and s.bind != C.STB_WEAK]


# --- the full link's pass --------------------------------------------------------------
def resolve_symbols(linker) -> None:
    for obj in linker.objects:
        linker.symtab.add_object(obj)
    changed = True
    while changed:
        changed = False
        for lib in linker.libraries:
            if isinstance(lib, tuple):
                changed |= extract_members(linker, lib)
            else:
                if bind_shared(linker, lib, weak=False):
                    changed = True
    for so in linker.shared:
        if so.used or not so.as_needed:
            bind_shared(linker, so, weak=True)
    # archive members pulled in above go before crtend.o/crtn.o
    if linker.post_objects:
        post = set(map(id, linker.post_objects))
        linker.objects = [o for o in linker.objects if id(o) not in post] + linker.post_objects


def extract_members(linker, lib) -> bool:
    _, archive, extracted = lib
    changed = False
    while True:
        wanted = [name for name, sym in linker.symtab.globals.items()
                  if sym.file is None and sym.bind != C.STB_WEAK and name in archive.symbol_index]
        todo = []
        for name in wanted:
            off = archive.symbol_index[name]
            if off not in extracted:
                extracted.add(off)
                todo.append(off)
        if not todo:
            return changed
        for off in sorted(todo):
            m = archive.members[off]
            name = f"{archive.path}({m.name})"
            blob = archive.data[m.offset:m.offset + m.size]
            if not blob.startswith(C.ELFMAG):
                raise DevlinkError(f"{name}: archive member is not an ELF object; rebuild the archive with `ar rcs` from .o files")
            obj = add_object(linker, read_object(name, blob), name)
            linker.symtab.add_object(obj)
        changed = True


def bind_shared(linker, so: SharedObject, weak: bool) -> bool:
    changed = False
    for sym in linker.symtab.globals.values():
        if sym.file is not None or (sym.bind == C.STB_WEAK) != weak:
            continue
        d = so.lookup(sym.name)
        if d is None:
            continue
        bind_import(sym, so, d)
        so.used = True
        changed = True
    return changed


def check_undefined(linker) -> None:
    missing = linker.symtab.undefined_strong()
    if not missing:
        return
    parts = []
    for sym in missing[:5]:
        refs = sorted({o.name for o in linker.symtab.referenced_by.get(sym.name, [])})
        shown = ", ".join(refs[:3]) + (f" and {len(refs) - 3} more" if len(refs) > 3 else "")
        parts.append(f"{sym.name!r} (referenced by {shown})")
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    what = "symbol" if len(missing) == 1 else "symbols"
    err = DevlinkError(f"undefined {what}: {'; '.join(parts)}{more}; define it, or add the object or -l library that provides it")
    err.undefined = [(sym.name, sorted({o.name for o in linker.symtab.referenced_by.get(sym.name, [])}))
                     for sym in missing]          # for the editor's diagnostics
    raise err

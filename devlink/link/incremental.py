"""Incremental relinking: apply changed objects to a linked program in place.

The cost follows the edit: only the changed objects are read, diffed and relocated; in
the rest of the program only the relocations that name a symbol whose address changed
are applied again.  Stubs and cells never move, so a moved function costs one cell.

`update_objects` works on the in-memory link state (`Linker`) and returns the writes
that bring the output file up to date; it never touches a file or a process itself
(`devlink.output.writer` and `devlink.hotpatch` do that with the writes).  A user error
(undefined or duplicate symbol, bad object) is found before anything is changed.
Anything the in-place update cannot express (a new library, a new constructor, a
section out of room...) raises `NeedsFullLink` with the reason; the caller relinks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from devlink.elf import consts as C
from devlink.elf.reader import read_object
from devlink.collector import collector_paused, state_frozen
from devlink.errors import DevlinkError
from devlink.link import debug_pad, eh_frame, sections as S
from devlink.link.arch import x86_64 as arch
from devlink.link.atom import Atom, pad_to_ideal
from devlink.link.linker import MIN_CODE_CAPACITY, Linker, function_definitions, stub_key
from devlink.link.object_file import ObjectFile, SharedObject
from devlink.link.symbol import Symbol, SymbolFlags
from devlink.link.synthetic import GotTag, Stub

#: output sections whose atoms an update may not add, change or remove
FROZEN_OUTPUTS = (".init_array", ".fini_array", ".preinit_array", ".init", ".fini", ".tdata")


class NeedsFullLink(Exception):
    """The update cannot be applied in place; `str(e)` says why.  `state_changed`: the
    link state was already modified (only a full link makes it whole again); False when
    the update stopped during its checks, leaving the previous generation intact."""

    state_changed = True


@dataclass(slots=True)
class Write:
    """Bytes for the output file, and where they are in the running program."""

    offset: int               #: file offset
    data: bytes
    vaddr: int | None         #: address in the program (None: not loaded, e.g. symtab)
    #: "code", "data" (new storage or a field re-applied), "init" (the new initial value
    #: of a writable variable the running program keeps: for the file only), "rodata",
    #: "cell", "got", "stub", "meta"
    kind: str
    visible: bool             #: changes what the current program does (else: unused room)


@dataclass
class DeclChange:
    name: str
    file: str
    kind: str                 #: "function" or "variable" or "data"
    old_address: int | None
    new_address: int | None
    old_size: int = 0
    new_size: int = 0


@dataclass
class UpdateResult:
    generation: int
    changed: list[DeclChange] = field(default_factory=list)
    added: list[DeclChange] = field(default_factory=list)
    removed: list[DeclChange] = field(default_factory=list)
    #: data decls that moved or changed size (unsafe to patch into a running program)
    layout_changes: list[DeclChange] = field(default_factory=list)
    #: what the user should know about this update (said once, with the status)
    notes: list[str] = field(default_factory=list)
    #: writable variables whose initial value changed: a running program keeps its
    #: value, the file on disk has the new one (it applies at the next start)
    new_initial_values: list[str] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    #: objects read
    objects: list[str] = field(default_factory=list)
    #: size of the output file after the writes
    file_size: int = 0

    def summary(self) -> str:
        return (f"generation {self.generation}: {len(self.changed)} changed, {len(self.added)} added, "
                f"{len(self.removed)} removed")


def update_objects(linker: Linker, changes: dict[str, bytes | None], live: bool = False) -> UpdateResult:
    """Replace the objects named in `changes` (bytes), add new ones, remove those mapped
    to None.  `live`: a program runs this layout, so code is never rewritten in place
    and freed room is not reused."""
    linker.finish_update()          # the previous update's deferred work, if nobody did it
    update = IncrementalUpdate(linker, changes, live)
    # a session keeps its link state frozen (Session.relink): what the update adds
    # to that state is frozen with it
    with collector_paused(freeze_after=state_frozen()):
        try:
            return update.run()
        except NeedsFullLink as e:
            e.state_changed = update.state_changed
            raise


def decl_key(obj: ObjectFile, atom: Atom, syms_by_atom: dict, statics_by_dwarf: bool = False) -> tuple:
    """How an atom is recognised in the next version of its object.  With
    `statics_by_dwarf`, a function-scope static is known by its function and name."""
    named = syms_by_atom.get(id(atom))
    if named:
        primary = min(named, key=lambda s: (s.value != 0, s.bind == C.STB_LOCAL, s.name))
        if primary.bind == C.STB_LOCAL:
            if statics_by_dwarf and primary.type in (C.STT_OBJECT, C.STT_TLS) and _is_numbered(primary.name):
                key = obj.static_keys().get(primary.name)
                if key is not None:
                    return ("s",) + key        # a function-scope static: by function and name
            return ("l", atom.name, primary.name)
        return ("g", primary.name)
    if not atom.sh_flags & C.SHF_ALLOC:
        return ("d", atom.name)              # debug info: one section of each name
    h = hashlib.blake2b(atom.data, digest_size=12)
    if atom.relocs is not None and len(atom.relocs):
        h.update(atom.relocs)
    return ("u", atom.name, atom.size, h.hexdigest())


def _is_named(obj: ObjectFile, atom: Atom) -> bool:
    return any(s is not None and s.atom is atom and s.file is obj and not _assembler_local(s.name)
               for s in obj.symbols)


def _assembler_local(name: str) -> bool:
    """`.LC0` and the like: a label gcc gave a string literal or a constant, kept in the
    symbol table; it names no decl (the data belongs to the code that uses it)."""
    return name.startswith(".L")


def _numbered_statics(obj: ObjectFile) -> set[str]:
    """Names of the object's function-scope statics (`n.1`), bound or not yet."""
    out = set()
    types = obj.sym_type
    for i in range(1, obj.raw.first_global):
        if int(types[i]) in (C.STT_OBJECT, C.STT_TLS):
            sym = obj.symbols[i]
            name = sym.name if sym is not None else obj.raw.sym_name(i)
            if _is_numbered(name):
                out.add(name)
    return out


def _is_numbered(name: str) -> bool:
    head, dot, tail = name.rpartition(".")
    return bool(dot) and tail.isdigit()


def symbols_by_atom(obj: ObjectFile) -> dict[int, list[Symbol]]:
    out: dict[int, list[Symbol]] = {}
    for sym in obj.symbols:
        if sym is not None and sym.file is obj and sym.atom is not None and sym.type != C.STT_SECTION \
                and not _assembler_local(sym.name):
            out.setdefault(id(sym.atom), []).append(sym)
    return out


class IncrementalUpdate:
    def __init__(self, linker: Linker, changes: dict[str, bytes | None], live: bool):
        self.L = linker
        self.changes = changes
        self.live = live
        self.result = UpdateResult(linker.generation + 1)
        self.old: dict[str, ObjectFile] = {}
        self.new: dict[str, ObjectFile] = {}
        self.writes_invisible: list[Write] = []
        self.writes_visible: list[Write] = []
        #: global symbols whose address (as seen by references) changed
        self.moved: set[int] = set()
        #: relocated bytes of the new objects' .eh_frame atoms
        self.eh_buffers: dict[int, bytes] = {}
        #: replaced object -> its previous version, when both symbol tables name the same
        #: targets at the same indexes (set by check_symbols)
        self.like: dict[str, ObjectFile] = {}
        #: set when the link state starts to change (a NeedsFullLink before leaves it whole)
        self.state_changed = False

    # ------------------------------------------------------------------------------------
    def run(self) -> UpdateResult:
        L = self.L
        # Read the changed objects first: a malformed one stops here, nothing changed.
        self.read_objects()
        # Symbols are checked before anything changes: undefined and duplicate names
        # are the user's errors and must leave the program as it was (invariant 6).
        self.check_symbols()
        # The relocation types of the new objects, for the same reason.
        self.check_relocations()
        # The previous generation's decls, by key, while its symbols still say so.
        self.index_old_decls()
        # From here on the link state changes.
        self.state_changed = True
        self.rebind_symbols()
        # Match each new atom to its decl of the previous generation and place it:
        # unchanged keep their address; changed go back in place, to freed room, or
        # to the end of the section's room.
        self.place_atoms()
        # Functions keep their stubs; new ones get stubs and cells; removed ones trap.
        self.update_stubs()
        # Relocations of the new objects decide GOT entries and import stubs.
        self.scan_new_objects()
        # Unwind records get their final place before anything is relocated: their
        # pc_begin fields are PC-relative.
        self.place_unwind_records()
        # The new objects' bytes, and the references elsewhere to what moved.
        self.render_new_objects()
        self.rewrite_moved_references()
        # Unwind tables, symbol table, section headers; the stamp is written last.
        self.update_unwind_tables()
        self.update_metadata()
        L.generation += 1
        self.result.writes = self.writes_invisible + self.writes_visible + [self.stamp_write()]
        return self.result

    # --- reading ------------------------------------------------------------------------
    def read_objects(self) -> None:
        L = self.L
        by_name = {o.name: o for o in L.objects} if len(self.changes) > 1 else None
        for name, data in self.changes.items():
            if by_name is None:
                by_name = {name: next((o for o in L.objects if o.name == name), None)}
            old = by_name.get(name)
            if old is not None:
                self.old[name] = old
            elif data is None:
                continue
            if data is None:
                continue
            obj = ObjectFile(read_object(name, data), name, priority=old.priority if old else len(L.objects))
            L.atom_order = obj.create_atoms(L.atom_order)
            owners = set()
            if obj.comdat_groups:
                owners = {sig for o in L.objects if o.name not in self.changes for sig, _ in o.comdat_groups}
            for signature, members in obj.comdat_groups:
                if signature in owners:
                    for m in members:
                        if 0 < m < len(obj.atoms) and obj.atoms[m] is not None:
                            obj.atoms[m].alive = False
                            obj.atoms[m] = None
            if obj.exec_stack and not L.exec_stack:
                raise NeedsFullLink(f"{name} asks for an executable stack")
            self.new[name] = obj
        self.result.objects = sorted(self.new)

    # --- symbols ------------------------------------------------------------------------
    def check_symbols(self) -> None:
        """Duplicate and undefined names, found without changing anything."""
        L = self.L
        table = L.symtab.globals
        replaced = set(self.old)
        new_defs: dict[str, tuple[ObjectFile, int]] = {}
        new_refs: dict[str, list[ObjectFile]] = {}
        if len(self.new) == 1 and len(self.old) == 1:
            name, obj = next(iter(self.new.items()))
            old = self.old.get(name)
            if old is not None and _same_globals(old, obj):
                if _same_symbol_table(old, obj):
                    self.like[name] = old
                # the same names defined and referenced as by the version that is
                # linked: what was checked for it holds for this one
                first = old.raw.first_global
                for sym, shndx, bind in zip(old.symbols[first:], obj.st_shndx[obj.raw.first_global:],
                                            obj.sym_bind[obj.raw.first_global:].tolist()):
                    if shndx != C.SHN_UNDEF and not (0 < shndx < C.SECTION_INDEX_END and obj.atoms[shndx] is None):
                        new_defs.setdefault(sym.name, (obj, bind))
                self.new_defs = new_defs
                return
        for obj in self.new.values():
            first = obj.raw.first_global
            names = obj.raw.symtab["st_name"].tolist()
            strtab = obj.raw.strtab
            for i in range(first, len(obj.symbols)):
                end = strtab.find(b"\0", names[i])
                name = strtab[names[i]:end].decode("utf-8", "surrogateescape")
                shndx = obj.st_shndx[i]
                bind = int(obj.sym_bind[i])
                if shndx == C.SHN_UNDEF:
                    if bind != C.STB_WEAK:
                        new_refs.setdefault(name, []).append(obj)
                    continue
                if 0 < shndx < C.SECTION_INDEX_END and obj.atoms[shndx] is None:
                    continue
                if shndx == C.SHN_COMMON:
                    # a tentative definition (`int x;` with -fcommon) of this object only
                    # keeps its storage; merged with another object's, a full link decides
                    sym = table.get(name)
                    if sym is not None and sym.file is not None and \
                            not (isinstance(sym.file, ObjectFile) and sym.file.name in replaced):
                        raise NeedsFullLink(f"{obj.name} defines COMMON symbol {name!r}, also defined by "
                                            f"{getattr(sym.file, 'name', None) or sym.file.soname}")
                    new_defs.setdefault(name, (obj, bind))
                    continue
                strong = bind != C.STB_WEAK
                prev = new_defs.get(name)
                if prev is not None and strong and prev[1] != C.STB_WEAK:
                    raise DevlinkError(f"duplicate definition of {name!r}: in {prev[0].name} and in {obj.name}; "
                                       f"make one of them static, or remove one")
                if prev is None or (strong and prev[1] == C.STB_WEAK):
                    new_defs[name] = (obj, bind)
                sym = table.get(name)
                if sym is None or sym.file is None or (isinstance(sym.file, ObjectFile) and sym.file.name in replaced):
                    continue
                if isinstance(sym.file, SharedObject):
                    # references to it were bound to the library at start
                    raise NeedsFullLink(f"{obj.name} now defines {name!r}, which came from {sym.file.soname}")
                if strong and (sym.bind == C.STB_WEAK or sym.shndx == C.SHN_COMMON):
                    # the definition that wins moves: every reference to it changes
                    raise NeedsFullLink(f"{obj.name} now defines {name!r}, which overrides the definition in "
                                        f"{sym.file.name}")
                if strong:
                    raise DevlinkError(f"duplicate definition of {name!r}: in {sym.file.name} and in {obj.name}; "
                                       f"make one of them static, or remove one")
        # names the new objects need
        missing = []
        for name, refs in new_refs.items():
            if name in new_defs:
                continue
            sym = table.get(name)
            if sym is not None and sym.file is not None and not (isinstance(sym.file, ObjectFile) and sym.file.name in replaced):
                if isinstance(sym.file, SharedObject) and not (sym.flags & (SymbolFlags.GOT | SymbolFlags.STUB | SymbolFlags.COPY_REL)):
                    raise NeedsFullLink(f"{name!r} comes from {sym.file.soname} and was not bound at start")
                continue
            if self._in_archive(name):
                raise NeedsFullLink(f"{name!r} needs an archive member that is not linked yet")
            missing.append((name, refs))
        # names the old objects defined and others still need
        for obj in self.old.values():
            for sym in obj.symbols[obj.raw.first_global:]:
                if sym is None or sym.file is not obj or sym.name in new_defs:
                    continue
                users = [o for o in L.symtab.referenced_by.get(sym.name, [])
                         if o.name not in replaced and sym.name not in o.weak_refs]
                if users and sym.bind != C.STB_WEAK:
                    missing.append((sym.name, users))
        if missing:
            parts = []
            for name, refs in missing[:5]:
                names = sorted({o.name for o in refs})
                parts.append(f"{name!r} (referenced by {', '.join(names[:3])}{' and more' if len(names) > 3 else ''})")
            what = "symbol" if len(missing) == 1 else "symbols"
            err = DevlinkError(f"undefined {what}: {'; '.join(parts)}; define it, or add the object or -l library "
                               f"that provides it")
            err.undefined = [(name, sorted({o.name for o in refs})) for name, refs in missing]   # for the editor
            raise err
        self.new_defs = new_defs

    def _in_archive(self, name: str) -> bool:
        for lib in self.L.libraries:
            if isinstance(lib, tuple) and name in lib[1].symbol_index:
                return True
        return False

    def check_relocations(self) -> None:
        """Relocation types devlink cannot apply, over each new object's whole table."""
        from devlink.link.relocs import type_tables
        kind_table, _, _, _ = type_tables()
        for obj in self.new.values():
            tabs = [(a, a.relocs) for a in obj.atoms if a is not None and a.relocs is not None and len(a.relocs)]
            if not tabs:
                continue
            whole = np.concatenate([r.view("<u8").reshape(-1, 3) for _, r in tabs])
            types = (whole[:, 1] & 0xFFFFFFFF).astype(np.int64)
            bad = (types >= 256) | ((kind_table[np.minimum(types, 255)] < 0) & ~np.isin(types, arch.TLS_SEQUENCE_TYPES))
            if bad.any():
                j = int(np.argmax(bad))
                for atom, r in tabs:
                    if j < len(r):
                        break
                    j -= len(r)
                t = int(r["r_info"][j] & 0xFFFFFFFF)
                raise DevlinkError(f"unsupported relocation {arch.reloc_name(t)} in {obj.name}: section "
                                   f"{atom.name}+{int(r['r_offset'][j]):#x}: {arch.unsupported_hint(t)}")
            if int((whole[:, 1] >> 32).max()) >= len(obj.symbols):
                raise DevlinkError(f"{obj.name}: a relocation names a symbol past the end of the symbol table; "
                                   f"the object is corrupt, rebuild it")
            from devlink.elf.reader import _reloc_widths
            sizes = np.repeat(np.array([a.size for a, _ in tabs], np.int64), [len(r) for _, r in tabs])
            offs = whole[:, 0].astype(np.int64)
            if ((offs < 0) | (offs + _reloc_widths()[np.minimum(types, 255)] > sizes)).any() or \
                    any(a.is_nobits for a, _ in tabs):
                raise DevlinkError(f"{obj.name}: a relocation patches bytes outside its section; "
                                   f"the object is corrupt, rebuild it")

    def rebind_symbols(self) -> None:
        """Old definitions out, new ones in; globals keep their Symbol records (other
        objects point at them)."""
        L = self.L
        self.old_address: dict[int, tuple[Symbol, int]] = {}
        #: COMMON symbols of the replaced objects: name -> their zero-filled atom
        commons: dict[str, Atom] = {}
        for obj in self.old.values():
            for sym in obj.symbols[obj.raw.first_global:]:
                if sym is None:
                    continue
                if sym.file is obj and sym.shndx == C.SHN_COMMON and sym.atom is not None:
                    commons[sym.name] = sym.atom
                if sym.file is obj:
                    self.old_address[id(sym)] = (sym, L.canonical_address(sym) if sym.atom is not None else sym.value)
                    sym.file = None
                    sym.atom = None
                    sym.value = 0             # undefined (weak) from here on, unless redefined
                    sym.shndx = C.SHN_UNDEF
                    sym.bind = C.STB_WEAK
                    sym.flags &= ~SymbolFlags.STUB
            for name in set(obj.ref_names):
                L.symtab.drop_reference(name, obj)
        # names that were undefined (weak: they read 0) and now get a definition: what
        # refers to them is applied again, as to a moved global
        for name in self.new_defs:
            sym = L.symtab.globals.get(name)
            if sym is not None and sym.file is None and id(sym) not in self.old_address:
                self.old_address[id(sym)] = (sym, 0)
        for name, obj in self.new.items():
            L.symtab.add_object(obj, like=self.like.get(name))
        self._bind_commons(commons)
        # every global named by a replaced object that is still undefined was checked
        # above: it is a weak reference or no longer used
        # the new version takes the old one's place in the link order; added ones go last
        objects = L.objects
        for name, obj in self.new.items():
            old = self.old.get(name)
            if old is not None:
                objects[objects.index(old)] = obj
            else:
                objects.append(obj)
        gone = [o for n, o in self.old.items() if n not in self.new]
        if gone:
            L.objects = [o for o in objects if not any(o is g for g in gone)]

    def _bind_commons(self, commons: dict[str, Atom]) -> None:
        """The new objects' COMMON symbols get the storage they had (its running value
        stays, invariant 2), or new zero-filled storage in .bss."""
        L = self.L
        for obj in self.new.values():
            for sym in obj.symbols[obj.raw.first_global:]:
                if sym is None or sym.file is not obj or sym.shndx != C.SHN_COMMON:
                    continue
                atom = commons.get(sym.name)
                if atom is None or atom.size != sym.size or atom.alignment < sym.value:
                    if atom is not None:
                        change = DeclChange(sym.name, obj.name, "variable", atom.address, None, atom.size, sym.size)
                        self.result.layout_changes.append(change)
                    atom = Atom(None, 0, "COMMON." + sym.name, C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE,
                                sym.size, max(sym.value, 1), memoryview(b""), None)
                    atom.output = L.outputs[".bss"]
                    self._allocate(atom)
                    self.result.added.append(DeclChange(sym.name, obj.name, "variable", None, atom.address,
                                                        0, atom.size))
                sym.atom = atom
                sym.value = 0

    # --- placement ------------------------------------------------------------------------
    def index_old_decls(self) -> None:
        self.old_syms: dict[str, dict] = {}
        self.old_keys: dict[str, dict] = {}
        #: objects whose function-scope statics may have been renumbered: the set of
        #: `name.N` statics changed, so they are matched through DWARF (slow, rare)
        self.by_dwarf: set[str] = set()
        for name, old in self.old.items():
            new = self.new.get(name)
            if new is not None and _numbered_statics(old) != _numbered_statics(new):
                self.by_dwarf.add(name)
            syms = self.old_syms[name] = symbols_by_atom(old)
            keys = getattr(old, "decl_keys", None) if name not in self.by_dwarf else None
            if keys is None:
                keys = {}
                for a in old.atoms:
                    if a is not None and a.output is not None:
                        keys.setdefault(decl_key(old, a, syms, name in self.by_dwarf), a)
            self.old_keys[name] = keys

    def place_atoms(self) -> None:
        L = self.L
        self.placed: list[Atom] = []         # new alloc atoms, in object order
        #: (object, atom, previous atom, name) of atoms whose input did not change
        self.kept_same: list[tuple] = []
        self.debug_atoms: list[tuple[Atom, Atom | None]] = []
        self.eh_new: list[Atom] = []
        for name, obj in self.new.items():
            old = self.old.get(name)
            new_syms = symbols_by_atom(obj)
            obj.decl_keys = {}
            old_by_key = self.old_keys.get(name, {})
            # when both versions' symbol tables name the same targets index by index
            # (an edit inside function bodies), relocations compare as raw bytes
            self.same_targets = name in self.like
            used_old = set()
            new_debug: list[Atom] = []
            for atom in obj.atoms:
                if atom is None or not atom.alive:
                    continue
                out_name = S.output_name(atom.name, atom.sh_type, atom.sh_flags)
                out = L.outputs.get(out_name)
                if out is None:
                    if not atom.sh_flags & C.SHF_ALLOC:
                        new_debug.append(atom)     # a debug section the program has not got
                        continue
                    raise NeedsFullLink(f"{name} adds section {out_name}")
                atom.output = out
                atom.priority = S.init_priority(atom.name)
                key = decl_key(obj, atom, new_syms, name in self.by_dwarf)
                if name not in self.by_dwarf:
                    obj.decl_keys.setdefault(key, atom)
                else:
                    obj.decl_keys.setdefault(decl_key(obj, atom, new_syms), atom)
                prev = old_by_key.get(key)
                if prev is not None and prev.output is not out:
                    prev = None
                if prev is not None:
                    used_old.add(id(prev))
                if not (atom.sh_flags & C.SHF_ALLOC):
                    new_debug.append(atom)
                    continue
                if out.name == ".eh_frame":
                    atom.alignment = min(atom.alignment, 4)
                    self.eh_new.append(atom)
                    continue
                if out.name in FROZEN_OUTPUTS:
                    if prev is None or bytes(prev.data) != bytes(atom.data) or \
                            (prev.relocs is not None and atom.relocs is not None and prev.relocs.tobytes() != atom.relocs.tobytes()):
                        raise NeedsFullLink(f"{name}: section {atom.name} changed (a constructor, destructor or "
                                            f"initialised thread-local changed; it runs only at start)")
                    self._keep(atom, prev)
                    continue
                self._place(obj, atom, prev, key, new_syms)
            if new_debug:
                self._place_object_debug(obj, old, new_debug)
            if old:
                self._drop_unused(name, old, used_old)
        for name, old in self.old.items():
            if name not in self.new:
                # a removed object: all of it goes; its debug pieces describe nothing
                self._drop_unused(name, old, set())
                self._blank_debug(old)
        self.propagate_changes()

    def _drop_unused(self, name: str, old: ObjectFile, used: set[int]) -> None:
        """The atoms of the previous version that nothing took the place of: their room
        is freed and their named decls reported removed."""
        old_syms = self.old_syms.get(name, {})
        for a in old.atoms:
            if a is None or a.output is None or id(a) in used:
                continue
            if not (a.sh_flags & C.SHF_ALLOC):
                continue         # a piece no longer needed stays, valid and unreferenced
            if a.output.name in FROZEN_OUTPUTS:
                raise NeedsFullLink(f"{name}: section {a.name} was removed (a constructor or destructor)")
            if a.output.name == ".eh_frame":
                continue
            self._free(a)
            for sym in old_syms.get(id(a), []):
                if (sym.bind != C.STB_LOCAL and sym.name in self.new_defs) or not _reportable(sym.name):
                    continue
                self.result.removed.append(DeclChange(sym.name, name, _kind(a), a.address, None, a.size, 0))
            _remove(a)

    def _blank_debug(self, old: ObjectFile) -> None:
        """A removed object's compile unit becomes an empty one (its abbreviations and
        address ranges with it), so no reader maps code to it any more; its line
        program and lists stay, valid and unreferenced."""
        pieces = {a.name: a for a in old.atoms if a is not None and not a.sh_flags & C.SHF_ALLOC and a.output is not None}
        info, abbrev = pieces.get(".debug_info"), pieces.get(".debug_abbrev")
        if info is None:
            return
        if abbrev is None:
            raise NeedsFullLink(f"{old.name}: .debug_info without .debug_abbrev")
        blank = {".debug_info": debug_pad.empty_info_unit(info.capacity, abbrev.value),
                 ".debug_abbrev": debug_pad.empty_info_abbrevs(abbrev.capacity)}
        if ".debug_aranges" in pieces:
            blank[".debug_aranges"] = debug_pad.empty_aranges(pieces[".debug_aranges"].capacity, info.value)
        for sec, data in blank.items():
            if data is None:
                raise NeedsFullLink(f"{old.name}: its {sec} has no room for an empty unit")
            atom = pieces[sec]
            self._emit(atom.output, atom.value, data, "meta", visible=True)

    def propagate_changes(self) -> None:
        """An atom whose input is unchanged still changes when it refers, other than
        through a stub, to an atom that moved or changed (a function using a string
        literal that was edited; a jump table into a function that moved).  In a running
        program such code cannot be rewritten in place: it moves too, to a fixpoint."""
        if not self.kept_same:
            return
        by_obj: dict[str, list] = {}
        for entry in self.kept_same:
            by_obj.setdefault(entry[0].name, []).append(entry)
        for name, entries_ in by_obj.items():
            obj = entries_[0][0]
            same_ids = {id(e[1]) for e in entries_}
            nsec = len(obj.atoms)
            changed = np.zeros(nsec + 1, bool)
            for k, a in enumerate(obj.atoms):
                if a is not None and a.output is not None and a.sh_flags & C.SHF_ALLOC and id(a) not in same_ids:
                    changed[k] = True
            if not changed.any():
                continue
            # the section each symbol-table entry lives in, and its offset there
            shndx = np.asarray(obj.st_shndx, np.int64)
            target = np.where((shndx > 0) & (shndx < nsec), shndx, nsec)
            target[obj.raw.first_global:] = nsec     # globals: re-applied as moved globals
            values = np.asarray(obj.st_value, np.uint64).view(np.int64)
            # function entries: section * 2**40 + offset (reached through their stubs)
            entries = [sym.shndx << 40 | sym.value for sym in obj.symbols
                       if sym is not None and sym.file is obj and sym.type == C.STT_FUNC and 0 < sym.shndx < nsec]
            code_sec = np.zeros(nsec + 1, bool)
            for k, a in enumerate(obj.atoms):
                if a is not None and a.sh_flags & C.SHF_EXECINSTR:
                    code_sec[k] = True
            pending = [e for e in entries_ if e[1].relocs is not None and len(e[1].relocs)]
            if not pending:
                continue
            # every pending atom's relocations as one table: the row's atom, the section
            # it refers to, and whether that reference is a function's entry
            rels = [e[1].relocs for e in pending]
            row_atom = np.repeat(np.arange(len(pending)), [len(r) for r in rels])
            whole = np.concatenate([r.view("<u8").reshape(-1, 3) for r in rels])
            sym_idx = (whole[:, 1] >> 32).astype(np.int64)
            t = target[sym_idx]
            from_code = np.array([bool(e[1].sh_flags & C.SHF_EXECINSTR) for e in pending])[row_atom]
            entry_off = values[sym_idx] + whole[:, 2].view(np.int64) + np.where(from_code, 4, 0)
            is_entry = code_sec[t] & _member(t << 40 | entry_off, np.array(entries, np.int64))
            candidate = ~is_entry
            open_atom = np.ones(len(pending), bool)
            while True:
                hit = np.unique(row_atom[candidate & changed[t]])
                hit = hit[open_atom[hit]]
                if not len(hit):
                    break
                for k in hit.tolist():
                    entry = pending[k]
                    open_atom[k] = False
                    changed[entry[1].shndx] = True
                    self._mark_changed(*entry)
                candidate &= open_atom[row_atom]

    def _mark_changed(self, obj: ObjectFile, atom: Atom, prev: Atom, name: str) -> None:
        code = bool(atom.sh_flags & C.SHF_EXECINSTR)
        if self.live and (code or (not (atom.sh_flags & C.SHF_WRITE) and not _is_named(obj, atom))
                          or _refers_into_code(obj, atom)):
            # code a program may be running, or unnamed read-only data it may be
            # using: a new copy; the old one stays for the old code
            _remove(atom)
            self._allocate(atom)
        atom.generation = self.result.generation
        if not _reportable(name):
            return
        if _keeps_running_value(atom):
            # its bytes changed only through what it points at (a string literal of
            # its object was edited): a new initial value, not an edit of its own
            self.result.new_initial_values.append(name)
            return
        self.result.changed.append(DeclChange(name, obj.name, "function" if code else _kind(atom),
                                              prev.address, atom.address, prev.size, atom.size))
    # --- debug pieces ------------------------------------------------------------------------
    # Debug info is never a reason to restart a program: it is not loaded.  An edited
    # object's pieces go where its previous ones were when each fits its room (the
    # common case); otherwise (a piece outgrew its room, a debug section appeared or
    # went, as .debug_loclists does at -O2) the object's compile unit moves: the old one
    # becomes an empty unit and the new pieces go into the file room after each debug
    # section, as an added object's do.  With no room left, a running program keeps
    # going and the object's debug info is left out of the file until the next restart.

    def _place_object_debug(self, obj: ObjectFile, old: ObjectFile | None, atoms: list[Atom]) -> None:
        if old is not None:
            plan = self._debug_in_place(old, atoms)
            if plan is not None:
                for atom, prev in plan:
                    atom.value, atom.capacity = prev.value, prev.capacity
                    _replace(prev, atom)
                    self.debug_atoms.append((atom, prev))
                return
        try:
            if old is not None:
                self._blank_debug(old)
            for atom in atoms:
                out = self.L.outputs.get(S.output_name(atom.name, atom.sh_type, atom.sh_flags))
                if out is None:
                    raise NeedsFullLink(f"{obj.name}: new debug section {atom.name}")
                atom.output = out
            self._append_debug(obj, atoms)
        except NeedsFullLink as e:
            if not self.live:
                raise
            for atom in atoms:
                atom.output = None          # not rendered, not relocated
            self.L.debug_incomplete = True
            self.result.notes.append(f"{obj.name}: its debug info is left out of the program file until the next "
                                     f"restart ({e})")

    def _debug_in_place(self, old: ObjectFile, atoms: list[Atom]) -> list[tuple[Atom, Atom]] | None:
        """(new piece, previous piece) for every piece when each fits where its previous
        one was, padded to the same capacity (readers walk these sections); else None."""
        prevs: dict[str, Atom] = {}
        for a in old.atoms:
            if a is not None and not a.sh_flags & C.SHF_ALLOC and a.output is not None:
                if a.name in prevs:
                    return None             # several pieces of one name: matched by nothing
                prevs[a.name] = a
        if len({a.name for a in atoms}) != len(atoms):
            return None
        plan = []
        for atom in atoms:
            prev = prevs.get(atom.name)
            if prev is None or prev.output is not atom.output or atom.size > prev.capacity \
                    or (atom.size != prev.capacity and atom.name not in debug_pad.PADDING) \
                    or (atom.name == ".debug_info" and 0 < prev.capacity - atom.size < debug_pad.MIN_INFO_PAD):
                return None
            plan.append((atom, prev))
        names = {a.name for a in atoms}
        if any(n in prevs and n not in names for n in (".debug_info", ".debug_abbrev", ".debug_aranges")):
            return None                     # the unit itself went: blanked by the move
        return plan

    def _append_debug(self, obj: ObjectFile, atoms: list[Atom]) -> None:
        """The debug pieces of an added object (or of a unit that moved) go at the end
        of their sections, in the file room the full link left after each (readers see
        only `size` bytes).  All or none: checked before any is placed."""
        debug_pad.plan_object(atoms)
        ends: dict[str, int] = {}
        for atom in atoms:
            out = atom.output
            start = (ends.get(out.name, out.size) + atom.alignment - 1) & ~(atom.alignment - 1)
            if start + atom.capacity > out.limit:
                raise NeedsFullLink(f"no room left in {out.name} for the debug info of {obj.name}")
            ends[out.name] = start + atom.capacity
        for atom in atoms:
            out = atom.output
            atom.value = (out.size + atom.alignment - 1) & ~(atom.alignment - 1)
            out.size = atom.value + atom.capacity
            _append(atom)
            self.debug_atoms.append((atom, None))

    def _keep(self, atom: Atom, prev: Atom) -> None:
        atom.value = prev.value
        atom.capacity = prev.capacity
        _replace(prev, atom)
        self.placed.append(atom)

    def _place(self, obj: ObjectFile, atom: Atom, prev: Atom | None, key: tuple, syms_by_atom: dict) -> None:
        code = bool(atom.sh_flags & C.SHF_EXECINSTR)
        names = [s.name for s in syms_by_atom.get(id(atom), [])] or [atom.name]
        if prev is not None:
            same = prev.size == atom.size and bytes(prev.data) == bytes(atom.data) and _relocs_equal(prev, atom, self.same_targets)
            fits = atom.size <= prev.capacity and atom.alignment <= prev.alignment
            if code:
                # a changed function goes back in place only if no program can be
                # running it; otherwise it is placed elsewhere and its cell flips
                if same or (fits and not self.live):
                    self._keep_in_place(obj, atom, prev, names[0], "function", same)
                    return
                self._free(prev)
                _remove(prev)
                self._allocate(atom)
                if _reportable(names[0]):
                    self.result.changed.append(DeclChange(names[0], obj.name, "function", prev.address,
                                                          atom.address, prev.size, atom.size))
                return
            # data: same size and alignment keeps the address (and, in a running
            # program, the value) -- unless it holds addresses inside functions (a
            # computed-goto table): that belongs to its code's generation, a new copy
            # for the new code while the old code keeps using the old one
            if atom.size == prev.size and atom.alignment <= prev.alignment and \
                    not (self.live and not same and _refers_into_code(obj, atom)):
                self._keep_in_place(obj, atom, prev, names[0], _kind(atom), same)
                return
            self._free(prev)
            _remove(prev)
            self._allocate(atom)
            change = DeclChange(names[0], obj.name, _kind(atom), prev.address, atom.address, prev.size, atom.size)
            if _reportable(names[0]):
                self.result.changed.append(change)
            # only writable data has a running value to keep: read-only data (a string
            # literal, a const table) that moved is just new bytes its users now reach,
            # and so is a table of its function's labels
            if key[0] != "u" and atom.sh_flags & (C.SHF_WRITE | C.SHF_TLS) and atom.size != prev.size:
                self.result.layout_changes.append(change)
            return
        self._allocate(atom)
        if key[0] != "u" and _reportable(names[0]):
            self.result.added.append(DeclChange(names[0], obj.name, _kind(atom), None, atom.address, 0, atom.size))

    def _keep_in_place(self, obj: ObjectFile, atom: Atom, prev: Atom, name: str, kind: str, same: bool) -> None:
        """`atom` takes `prev`'s place; reported as changed unless its input is the same
        (then the dependency pass decides, see propagate_changes)."""
        self._keep(atom, prev)
        if same:
            self.kept_same.append((obj, atom, prev, name))
            atom.generation = prev.generation
        else:
            atom.generation = self.result.generation
            if not _reportable(name):
                return
            if _keeps_running_value(atom):
                self.result.new_initial_values.append(name)
            self.result.changed.append(DeclChange(name, obj.name, kind, prev.address, prev.address,
                                                  prev.size, atom.size))

    def _free(self, atom: Atom) -> None:
        if not self.live:
            atom.output.free.append((atom.value, atom.capacity))

    def _allocate(self, atom: Atom) -> None:
        """Freed room first (when no program runs this layout), else the section's end."""
        out = atom.output
        code = bool(atom.sh_flags & C.SHF_EXECINSTR)
        want = max(pad_to_ideal(atom.size), MIN_CODE_CAPACITY) if code else atom.size
        align = atom.alignment
        if not self.live:
            for i, (off, cap) in enumerate(out.free):
                start = (off + align - 1) & ~(align - 1)
                if start + atom.size <= off + cap:
                    atom.value = start
                    atom.capacity = off + cap - start
                    del out.free[i]
                    _append(atom)
                    self.placed.append(atom)
                    atom.generation = self.result.generation
                    return
        start = (out.size + align - 1) & ~(align - 1)
        if start + want > out.limit:
            raise NeedsFullLink(f"section {out.name} is out of reserved room")
        atom.value = start
        atom.capacity = want
        out.size = start + want
        _append(atom)
        self.placed.append(atom)
        atom.generation = self.result.generation
        atom.fresh = True

    # --- stubs ------------------------------------------------------------------------------
    def update_stubs(self) -> None:
        L = self.L
        text = L.outputs[".text"]
        seen: set[int] = set()
        for obj in self.new.values():
            by_entry: dict[tuple[int, int], int] = {}
            for sym in function_definitions(obj):
                if sym.type == C.STT_GNU_IFUNC:
                    raise NeedsFullLink(f"{obj.name}: IFUNC {sym.name!r} changed")
                atom = sym.atom
                if atom.output is not text or ".cold" in sym.name:
                    continue
                entry = (id(atom), sym.value)
                index = by_entry.get(entry)
                if index is None:
                    key = stub_key(obj, sym)
                    index = L.stub_by_key.get(key)
                    if index is None or index in seen:
                        index = L.stubs.add(Stub(sym, atom, sym.value, -1))
                        stub = L.stubs.stubs[index]
                        stub.cell = L.cells.add(index)
                        L.stub_by_key[key] = index
                        self._check_room(".plt", L.stubs.size())
                        self._check_room(".devlink.cells", L.cells.size())
                        self._write_stub(index, fresh=True)
                    else:
                        stub = L.stubs.stubs[index]
                        before = stub.atom.address + stub.offset if stub.atom is not None else None
                        stub.symbol, stub.atom, stub.offset = sym, atom, sym.value
                        if before == atom.address + sym.value:
                            by_entry[entry] = index      # same place: the cell stays as it is
                            seen.add(index)
                            obj.stub_indexes.append(index)
                            sym.flags |= SymbolFlags.STUB
                            L.extras.update(sym, stub=index)
                            continue
                    by_entry[entry] = index
                    seen.add(index)
                    obj.stub_indexes.append(index)
                    self._write_cell(index)
                sym.flags |= SymbolFlags.STUB
                L.extras.update(sym, stub=index)
        # functions of the replaced objects that are gone: their cells trap
        for obj in self.old.values():
            for index in obj.stub_indexes:
                if index in seen:
                    continue
                stub = L.stubs.stubs[index]
                if stub.atom is None or stub.atom.file is not obj:
                    continue
                self._trap(index)

    def _check_room(self, name: str, size: int) -> None:
        out = self.L.outputs[name]
        if size > out.limit:
            raise NeedsFullLink(f"section {name} is out of reserved room")
        out.size = max(out.size, size)

    def _write_stub(self, index: int, fresh: bool) -> None:
        L = self.L
        stub = L.stubs.stubs[index]
        target = L.cells.address(stub.cell) if stub.cell >= 0 else L.got.entry_address(stub.slot)
        addr = L.stubs.address(index)
        out = L.outputs[".plt"]
        self._emit(out, addr - out.addr, arch.stub_bytes(addr, target), "stub", visible=not fresh)

    def _write_cell(self, index: int) -> None:
        L = self.L
        stub = L.stubs.stubs[index]
        value = stub.atom.address + stub.offset
        L.set_stub_entry(index, value)
        self._emit_cell(stub.cell, value)

    def _emit_cell(self, cell: int, value: int) -> None:
        out = self.L.outputs[".devlink.cells"]
        addr = self.L.cells.address(cell)
        self._emit(out, addr - out.addr, value.to_bytes(8, "little"), "cell", visible=True)

    def _trap(self, index: int) -> None:
        """The cell of a removed function points at code that reports the call."""
        L = self.L
        stub = L.stubs.stubs[index]
        name = stub.symbol.name
        code = arch.trap_code(f"devlink: called removed function {name}\n".encode("utf-8", "replace"))
        atom = Atom(None, 0, f".text.devlink.removed.{name}", C.SHT_PROGBITS, C.SHF_ALLOC | C.SHF_EXECINSTR,
                    len(code), 16, memoryview(code), None)
        atom.output = L.outputs[".text"]
        self._allocate(atom)
        self.placed.remove(atom)
        self._emit(atom.output, atom.value, code, "code", visible=False)
        stub.atom, stub.offset = atom, 0
        L.set_stub_entry(index, 0)          # nothing refers to the trap as an entry
        self._emit_cell(stub.cell, atom.address)

    # --- relocations ------------------------------------------------------------------------
    def scan_new_objects(self) -> None:
        L = self.L
        # imports the new objects name: none may become a COPY or canonical PLT
        named = {id(s): s for o in self.new.values() for s in o.symbols[o.raw.first_global:]
                 if s is not None and s.flags & SymbolFlags.IMPORT}
        flags_before = {k: s.flags for k, s in named.items()}
        got_before = len(L.got.entries)
        stubs_before = len(L.stubs.stubs)
        copies_before = len(L.copy_atoms)
        L.edits = [e for e in L.edits if e[0].file is None or e[0].file.name not in self.changes]
        for obj in self.new.values():
            obj.table = L.scan_object(obj)
        if len(L.copy_atoms) != copies_before:
            raise NeedsFullLink("an object now reads a shared library's variable directly (a COPY relocation); "
                                "build it with -fPIC")
        for k, s in named.items():
            if s.flags & SymbolFlags.CANONICAL_PLT and not (flags_before[k] & SymbolFlags.CANONICAL_PLT):
                raise NeedsFullLink(f"the address of library function {s.name!r} is now taken absolutely")
        got = L.outputs[".got"]
        if len(L.got.entries) * 8 > got.limit:
            raise NeedsFullLink("section .got is out of reserved room")
        tls_start, _, _, tls_memsz, tls_align = self._tls()
        tp = arch.tls_tp(tls_start, tls_memsz, tls_align)
        for e in L.got.entries[got_before:]:
            if e.tag == GotTag.GOTTP:
                value = e.symbol.address() - tp
            elif e.symbol.is_import:
                raise NeedsFullLink(f"library symbol {e.symbol.name!r} needs a GOT entry bound at start")
            else:
                value = L.canonical_address(e.symbol)
            self._emit(got, e.cell_index * 8, (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"), "got", visible=False)
        got.size = max(got.size, len(L.got.entries) * 8)
        for index in range(stubs_before, len(L.stubs.stubs)):
            stub = L.stubs.stubs[index]
            if stub.atom is None:     # a library function called for the first time
                self._check_room(".plt", L.stubs.size())
                self._write_stub(index, fresh=True)

    def _tls(self):
        from devlink.link.layout import tls_range
        return tls_range(self.L.alloc_sections)

    def render_new_objects(self) -> None:
        """Relocate every atom of the new objects at its final address."""
        L = self.L
        ctx = L.relocation_context(list(self.new.values()))
        self.ctx = ctx
        for obj in self.new.values():
            atoms = [a for a in obj.atoms if a is not None and a.alive and a.output is not None and not a.is_nobits]
            if not atoms:
                continue
            pos = {}
            total = 0
            for a in atoms:
                pos[id(a)] = total
                total += max(a.capacity, a.size)
            buf = bytearray(total)
            for a in atoms:
                p = pos[id(a)]
                buf[p:p + a.size] = a.data
            for atom, off, code in L.edits:
                if atom.file is obj:
                    p = pos[id(atom)] + off
                    buf[p:p + len(code)] = code
            arr = np.frombuffer(buf, np.uint8)
            if obj.table is not None:
                atom_pos = np.array([pos[id(a)] for a in obj.table.atoms], np.int64)
                L.relocate(obj.table, ctx, arr, atom_pos)
            self._pad_debug(obj, buf, pos)
            for a in atoms:
                if a.output.name == ".eh_frame":
                    continue
                p = pos[id(a)]
                if a.sh_flags & C.SHF_ALLOC:
                    fresh = getattr(a, "fresh", False)
                    self._emit(a.output, a.value, bytes(buf[p:p + a.size]), _write_kind(a, fresh), visible=not fresh)
                else:
                    self._emit(a.output, a.value, bytes(buf[p:p + a.capacity]), "meta", visible=True)
            for a in atoms:
                if a.output.name == ".eh_frame":
                    self.eh_buffers[id(a)] = bytes(buf[pos[id(a)]:pos[id(a)] + a.size])
        # trimming their tables and dropping their debug bytes can wait until the
        # program has the new code (Linker.finish_update)
        L.uncompacted.extend(self.new.values())
        # globals whose address changed: their references elsewhere are applied again
        for key, (sym, old_addr) in self.old_address.items():
            if sym.file is None:
                new_addr = 0                  # gone: weak references now read 0
            else:
                new_addr = L.canonical_address(sym) if sym.atom is not None else None
            if new_addr is not None and new_addr != old_addr:
                self.moved.add(id(sym))

    def _pad_debug(self, obj: ObjectFile, buf: bytearray, pos: dict) -> None:
        info = abbrev = None
        for atom, prev in self.debug_atoms:
            if atom.file is not obj:
                continue
            if atom.name == ".debug_info":
                info = atom
            elif atom.name == ".debug_abbrev":
                abbrev = atom
            elif atom.capacity > atom.size:
                p = pos[id(atom)]
                if not debug_pad.pad_piece(atom.name, memoryview(buf)[p:p + atom.capacity], atom.size, atom.capacity):
                    raise NeedsFullLink(f"{obj.name}: {atom.name} cannot be padded")
        if info is not None and info.capacity > info.size:
            if abbrev is None:
                raise NeedsFullLink(f"{obj.name}: .debug_info without .debug_abbrev")
            end = debug_pad.abbrev_table_end(abbrev.data, abbrev.size)
            if end is None or info.capacity - info.size < debug_pad.MIN_INFO_PAD \
                    or debug_pad.last_unit_offset(info.data, info.size) != 0 or info.data[info.size - 1] != 0:
                raise NeedsFullLink(f"{obj.name}: its debug info cannot be padded in place")
            code = end[1] + 1
            if end[0] + len(debug_pad.padding_abbrev(code)) > abbrev.capacity:
                raise NeedsFullLink(f"{obj.name}: its debug abbreviations do not fit in place")
            pi, pa_ = pos[id(info)], pos[id(abbrev)]
            mv = memoryview(buf)
            debug_pad.apply_info_padding(mv[pi:pi + info.capacity], info.size, info.capacity,
                                         mv[pa_:pa_ + abbrev.capacity], abbrev.size, abbrev.capacity, code, end[0])

    def rewrite_moved_references(self) -> None:
        """References from unchanged objects to globals that moved, field by field."""
        if not self.moved:
            return
        L = self.L
        self.ctx = L.relocation_context()
        targets = {id(s): s for s in L.symtab.globals.values() if id(s) in self.moved}
        names = {s.name for s in targets.values()}
        users = {o.name: o for n in names for o in L.symtab.referenced_by.get(n, []) if o.name not in self.changes}
        for obj in users.values():
            t = obj.table
            if t is None:
                continue
            mask = np.array([s is not None and id(s) in self.moved for s in obj.symbols], bool)
            rows = np.flatnonzero(mask[t.syms])
            if not len(rows):
                continue
            self._emit_fields(t, rows)
        # constant GOT entries holding their addresses
        got = L.outputs[".got"]
        for e in L.got.entries:
            if e.tag == GotTag.GOT and id(e.symbol) in self.moved:
                value = L.canonical_address(e.symbol)
                self._emit(got, e.cell_index * 8, value.to_bytes(8, "little"), "got", visible=True)

    def _emit_fields(self, t, rows: np.ndarray) -> None:
        """Apply `rows` of table `t` into a scratch copy of their atoms, then write only
        the fields."""
        L = self.L
        atoms = t.atoms
        widths = np.array([arch.KIND_WIDTH.get(int(k), 0) for k in t.kinds[rows]], np.int64)
        # a scratch buffer holding each field, 8 bytes apart: row i's atom is "placed"
        # so that its field lands at 8*i
        scratch = np.zeros(len(rows) * 8, np.uint8)
        fake_pos = np.arange(len(rows), dtype=np.int64) * 8 - t.offs[rows]
        sub = _subtable(t, rows)
        L.relocate(sub, self.ctx, scratch, fake_pos)
        for i, r in enumerate(rows.tolist()):
            w = int(widths[i])
            if not w:
                continue
            atom = atoms[t.aidx[r]]
            off = atom.value + int(t.offs[r])
            kind = "code" if atom.sh_flags & C.SHF_EXECINSTR else "data"
            self._emit(atom.output, off, scratch[i * 8:i * 8 + w].tobytes(), kind, visible=True)

    # --- unwind tables and metadata ---------------------------------------------------------
    def place_unwind_records(self) -> None:
        """Retire the replaced objects' FDEs and give the new objects' .eh_frame atoms
        their place (freed room first when no program runs this layout)."""
        ef = self.L.outputs[".eh_frame"]
        #: (initial location, FDE address) of the FDEs taken out of the unwind table
        self.retired_fdes: list[np.ndarray] = []
        # the replaced objects' FDEs: gone unless a program may still run that code
        for obj in self.old.values():
            for a in obj.atoms:
                if a is None or a.output is not ef or a.slot < 0 or ef.atoms[a.slot] is not a:
                    continue
                if not self.live:
                    if a.fdes is not None and len(a.fdes):
                        self.retired_fdes.append(a.fdes)
                    self._retire_fdes(a)
                    ef.free.append((a.value, a.capacity))
                    _remove(a)
        for atom in self.eh_new:
            self._allocate_eh(atom)

    def update_unwind_tables(self) -> None:
        L = self.L
        ef = L.outputs[".eh_frame"]
        for atom in self.eh_new:
            data = self.eh_buffers.get(id(atom), bytes(atom.data))
            # the FDEs, from the bytes relocated at the final address
            atom.fdes = np.array(eh_frame.fde_table(data, atom.address, atom.file.name), np.int64).reshape(-1, 2)
            self._emit(ef, atom.value, data, "rodata", visible=False)
        hdr = L.outputs[".eh_frame_hdr"]
        none = np.zeros((0, 2), np.int64)
        added = [a.fdes for a in self.eh_new if len(a.fdes)]
        table, runs = eh_frame.update_hdr_table(
            L.eh_hdr_table, np.concatenate(self.retired_fdes) if self.retired_fdes else none,
            np.concatenate(added) if added else none)
        size = eh_frame.HDR_HEADER + eh_frame.HDR_ENTRY * len(table)
        if size > hdr.limit:
            raise NeedsFullLink("section .eh_frame_hdr is out of reserved room")
        hdr.size = max(hdr.size, size)
        L.eh_frame_fdes = len(table)
        L.eh_hdr_table = table
        # the header, then only the rows that changed (an edit's functions, and what
        # it added at the end of the code)
        self._emit(hdr, 0, eh_frame.hdr_header(hdr.addr, ef.addr, len(table)), "rodata", visible=True)
        for start, end in runs:
            self._emit(hdr, eh_frame.HDR_HEADER + eh_frame.HDR_ENTRY * start,
                       eh_frame.hdr_rows(hdr.addr, table[start:end]), "rodata", visible=True)

    def _allocate_eh(self, atom: Atom) -> None:
        ef = atom.output
        if not self.live:
            for i, (off, cap) in enumerate(ef.free):
                left = cap - atom.size
                if left == 0 or left >= eh_frame.MIN_FILLER:
                    atom.value, atom.capacity = off, atom.size
                    del ef.free[i]
                    _append(atom)
                    if left:
                        # the rest of the old record's room: a CIE nothing uses
                        self._emit(ef, off + atom.size, eh_frame.filler_cie(left), "rodata", visible=False)
                    return
        term = getattr(self.L, "eh_terminator", None)
        if term is not None and term.value + 4 == ef.size:
            start = term.value                # the new records go where the terminator was
        else:
            start = (ef.size + 3) & ~3
        if start + atom.size + 4 > ef.limit:
            raise NeedsFullLink("section .eh_frame is out of reserved room")
        atom.value, atom.capacity = start, atom.size
        ef.size = start + atom.size
        _append(atom)
        if term is not None:
            term.value = ef.size
            ef.size += 4
            self._emit(ef, term.value, bytes(4), "rodata", visible=False)

    def _retire_fdes(self, atom: Atom) -> None:
        """FDEs of code that is gone cover nothing (pc_range 0), so linear walkers of
        .eh_frame (gdb) do not find them over reused room."""
        ef = atom.output
        for _pc, fde_addr in (atom.fdes.tolist() if atom.fdes is not None else []):
            # before any new bytes: the new atom may reuse this room
            self._emit(ef, fde_addr - ef.addr + 12, b"\0\0\0\0", "rodata", visible=False)

    def update_metadata(self) -> None:
        """Symbol table, section headers and ELF header: rewritten whole (they are not
        loaded, so no program sees them change)."""
        L = self.L
        for o in L.alloc_sections:
            if not o.is_nobits:
                pass
        for name in self.old:
            if name not in self.new:
                L.symtab_builder.drop_object(name)
        # the globals the replaced objects defined (now defined elsewhere, or gone)
        old_globals = [sym for sym, _ in self.old_address.values()]
        st, sr, sh = L.outputs[".symtab"], L.outputs[".strtab"], L.outputs[".shstrtab"]
        built = L._build_symtab(list(self.new.values()), old_globals, partial=True)
        if len(built) == 2:
            # same shape as before: only the rows (and names) that changed
            sym_writes, str_writes = built
            for off, data in sym_writes:
                self._emit_meta(st.offset + off, data)
            for off, data in str_writes:
                self._emit_meta(sr.offset + off, data)
            self._write_headers_only(st, sr, sh)
            return
        symtab, strtab, first_global = built
        st.info = first_global
        off = st.offset
        st.size, st.synthetic = len(symtab), symtab
        sr.size, sr.synthetic = len(strtab), strtab
        sr.offset = off + st.size
        sh.offset = sr.offset + sr.size
        shoff = (sh.offset + sh.size + 7) & ~7
        self._emit_meta(st.offset, symtab)
        self._emit_meta(sr.offset, strtab)
        self._emit_meta(sh.offset, sh.synthetic)
        from devlink.output.image import OutputImage
        from devlink.elf.records import Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr
        ordered = sorted((o for o in L.outputs.values() if o.index), key=lambda o: o.index)
        img = OutputImage([], Elf64_Ehdr.size + L.num_phdrs * Elf64_Phdr.size, shoff, (len(ordered) + 1) * Elf64_Shdr.size)
        L._write_headers(img, ordered)
        self._emit_meta(shoff, bytes(img.shdrs))
        self._emit_meta(0, bytes(img.headers))
        self.result.file_size = shoff + len(img.shdrs)

    def _write_headers_only(self, st, sr, sh) -> None:
        L = self.L
        from devlink.output.image import OutputImage
        from devlink.elf.records import Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr
        shoff = (sh.offset + sh.size + 7) & ~7
        ordered = sorted((o for o in L.outputs.values() if o.index), key=lambda o: o.index)
        img = OutputImage([], Elf64_Ehdr.size + L.num_phdrs * Elf64_Phdr.size, shoff, (len(ordered) + 1) * Elf64_Shdr.size)
        L._write_headers(img, ordered)
        self._emit_meta(shoff, bytes(img.shdrs))
        self.result.file_size = shoff + len(img.shdrs)

    def _emit_meta(self, offset: int, data: bytes) -> None:
        self.writes_visible.append(Write(offset, data, None, "meta", True))

    def stamp_write(self) -> Write:
        out = self.L.outputs[".devlink.stamp"]
        return Write(out.offset, self.L.stamp_bytes(), None, "meta", True)

    def _emit(self, out, offset_in_section: int, data: bytes, kind: str, visible: bool) -> None:
        vaddr = out.addr + offset_in_section if out.is_alloc else None
        w = Write(out.offset + offset_in_section, data, vaddr, kind, visible)
        (self.writes_visible if visible else self.writes_invisible).append(w)


def _replace(prev: Atom, atom: Atom) -> None:
    """`atom` takes `prev`'s place in its output section's list (O(1))."""
    atom.slot = prev.slot
    prev.output.atoms[prev.slot] = atom


def _remove(atom: Atom) -> None:
    atom.output.atoms[atom.slot] = None      # a hole; lists are only walked whole at full links


def _append(atom: Atom) -> None:
    atom.slot = len(atom.output.atoms)
    atom.output.atoms.append(atom)


def _refers_into_code(obj: ObjectFile, atom: Atom) -> bool:
    """Data that holds an address inside a function, not at its entry (`&&label`): a
    dispatch table that only that function's code uses."""
    if atom.sh_flags & C.SHF_EXECINSTR or atom.relocs is None or not len(atom.relocs):
        return False
    entries = getattr(obj, "_function_entries", None)
    if entries is None:
        entries = obj._function_entries = {(s.shndx, s.value) for s in obj.symbols
                                           if s is not None and s.file is obj and s.type == C.STT_FUNC}
    u = atom.relocs.view("<u8").reshape(-1, 3)
    shndx, values = obj.st_shndx, obj.st_value
    for i, addend in zip((u[:, 1] >> 32).tolist(), u[:, 2].view(np.int64).tolist()):
        k = int(shndx[i])
        target = obj.atoms[k] if 0 < k < len(obj.atoms) else None
        if target is not None and target.sh_flags & C.SHF_EXECINSTR and (k, int(values[i]) + addend) not in entries:
            return True
    return False


def _reportable(name: str) -> bool:
    """A decl the user wrote: not the assembler's local labels (`.LC0`, a string literal
    gcc names at -O2) nor a section's name."""
    return not name.startswith(".")


def _keeps_running_value(atom: Atom) -> bool:
    """Writable data: a running program keeps its value across updates."""
    return bool(atom.sh_flags & C.SHF_WRITE) and not atom.sh_flags & C.SHF_EXECINSTR \
        and atom.output.name != ".data.rel.ro"


def _write_kind(atom: Atom, fresh: bool) -> str:
    """What an allocated atom's bytes are to a running program.  A writable variable
    that kept its place keeps its running value there (invariant 2): its bytes are its
    new *initial* value, for the file.  New storage gets its initial value in the child
    too; read-only data (`.rodata`, and `.data.rel.ro`, which gcc marks writable in
    objects) has no state to keep and takes its new contents live."""
    if atom.sh_flags & C.SHF_EXECINSTR:
        return "code"
    if not _keeps_running_value(atom):
        return "rodata"
    return "data" if fresh else "init"


def _kind(atom: Atom) -> str:
    if atom.sh_flags & C.SHF_EXECINSTR:
        return "function"
    return "variable"


def _same_symbol_table(old: ObjectFile, new: ObjectFile) -> bool:
    """Every symbol-table index of both versions names the same target (what
    `_target_keys` would give, compared in bulk): same strings, names, types, sections
    (by name) and, for section symbols, offsets."""
    so, sn = old.raw.symtab, new.raw.symtab
    if len(so) != len(sn) or old.raw.strtab != new.raw.strtab:
        return False
    for column in ("st_name", "st_info"):
        if not np.array_equal(so[column], sn[column]):
            return False
    if not np.array_equal(np.asarray(old.st_shndx, np.int64), np.asarray(new.st_shndx, np.int64)):
        return False
    sections = (so["st_info"] & 0xF) == C.STT_SECTION
    if not np.array_equal(so["st_value"][sections], sn["st_value"][sections]):
        return False
    if len(old.atoms) != len(new.atoms) or \
            [a.name if a is not None else None for a in old.atoms] != [a.name if a is not None else None for a in new.atoms]:
        return False
    # section symbols of sections that made no atom: by the names kept for them
    shndx = np.asarray(new.st_shndx, np.int64)[sections]
    for k in shndx.tolist():
        if not 0 <= k < len(new.atoms):
            return False
        if new.atoms[k] is None and old.section_name(k) != new.section_name(k):
            return False
    return True


def _same_globals(old: ObjectFile, new: ObjectFile) -> bool:
    """Both versions of an object have the same global symbols, in the same order: names,
    bindings and types, and which are undefined (an edit inside functions)."""
    fo, fn = old.raw.first_global, new.raw.first_global
    if len(old.symbols) - fo != len(new.symbols) - fn or old.raw.strtab != new.raw.strtab:
        return False
    so, sn = old.raw.symtab[fo:], new.raw.symtab[fn:]
    if not (np.array_equal(so["st_name"], sn["st_name"]) and np.array_equal(so["st_info"], sn["st_info"])):
        return False
    ko = np.asarray(old.st_shndx[fo:], np.int64)
    kn = np.asarray(new.st_shndx[fn:], np.int64)
    # (COMMON symbols take the slow path, which sends them to a full link)
    return np.array_equal(ko == C.SHN_UNDEF, kn == C.SHN_UNDEF) and not (kn == C.SHN_COMMON).any()


def _relocs_equal(a: Atom, b: Atom, same_targets: bool = False) -> bool:
    """Same relocations: offsets, types and addends, and the same targets by name
    (symbol indexes differ between two builds of an object).  `same_targets`: the two
    objects' symbol tables name the same target at every index, so the records compare
    as bytes."""
    ra, rb = a.relocs, b.relocs
    if ra is None or rb is None:
        return (ra is None or not len(ra)) and (rb is None or not len(rb))
    if len(ra) != len(rb):
        return False
    if same_targets:
        return ra.tobytes() == rb.tobytes()
    ua, ub = ra.view("<u8").reshape(-1, 3), rb.view("<u8").reshape(-1, 3)
    if ua[:, 0].tobytes() != ub[:, 0].tobytes() or ua[:, 2].tobytes() != ub[:, 2].tobytes() \
            or (ua[:, 1] & 0xFFFFFFFF).tobytes() != (ub[:, 1] & 0xFFFFFFFF).tobytes():
        return False
    ka, kb = _target_keys(a.file), _target_keys(b.file)
    return [ka[i] for i in (ua[:, 1] >> 32).tolist()] == [kb[i] for i in (ub[:, 1] >> 32).tolist()]


def _target_keys(obj: ObjectFile) -> list[str]:
    """A name for every symbol-table entry of `obj` (cached on the object)."""
    keys = getattr(obj, "_target_keys", None)
    if keys is None:
        keys = []
        for i, sym in enumerate(obj.symbols):
            if sym is not None:
                keys.append(sym.name)
            else:
                keys.append(f"section:{obj.section_name(obj.st_shndx[i])}+{obj.st_value[i]}")
        obj._target_keys = keys
    return keys


def _member(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """`np.isin(values, keys)` by binary search (np.isin sorts both sides)."""
    if not len(keys):
        return np.zeros(len(values), bool)
    keys = np.sort(keys)
    k = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return keys[k] == values


def _subtable(t, rows: np.ndarray):
    """`rows` of table `t` as a table of their own, one atom entry per row (the
    relaxation edits are already in the file)."""
    from devlink.link.relocs import RelocTable
    atoms = [t.atoms[i] for i in t.aidx[rows].tolist()]
    return RelocTable(t.obj, atoms, np.arange(len(rows), dtype=np.int64), t.offs[rows], t.types[rows],
                      t.syms[rows], t.addend[rows], t.kinds[rows], t.from_alloc[rows], t.in_code[rows], None)

"""The link pipeline: one function, `Linker.link`, that reads as the list of its passes.

Each pass is a method below, in the order it runs, with a line in `link` saying why it
stands there.  Passes work on in-memory records; only `devlink.output.writer` touches
the output file.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import operator
import os
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

from devlink.collector import collector_paused
from devlink.elf import consts as C
from devlink.elf.reader import _reloc_widths, read_archive, read_linker_script, read_object, read_shared_object
from devlink.elf.records import Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr
from devlink.errors import DevlinkError
from devlink.link import debug_pad, eh_frame, sections as S
from devlink.link.arch import x86_64 as arch
from devlink.link.atom import Atom
from devlink.link.inputs import find_library, kind_of, read_file
from devlink.link.layout import layout, tls_range
from devlink.link.object_file import ObjectFile, SharedObject, bind_import
from devlink.link.output_section import OutputSection
from devlink.link.relocs import RelocContext, RelocTable, concat_tables, select_rows, trimmed, type_tables as _type_tables
from devlink.link.resolve import SymbolTable
from devlink.link.shared_ints import index as shared_index, indexes
from devlink.link.symbol import EXTRA_OFFSET, EXTRA_WIDTH, Symbol, SymbolExtras, SymbolFlags
from devlink.link.symtab import SymtabBuilder
from devlink.link.synthetic import (
    CellSection, DynamicSection, DynamicSymbols, GotSection, GotTag, RelaDyn, StringTable, Stub, StubSection,
)
from devlink.link.toolchain import Toolchain, discover_toolchain
from devlink.output.image import OutputImage

#: names the linker defines when no input does
LINKER_DEFINED = (
    "_GLOBAL_OFFSET_TABLE_", "_DYNAMIC", "__init_array_start", "__init_array_end",
    "__fini_array_start", "__fini_array_end", "__preinit_array_start", "__preinit_array_end",
    "__ehdr_start", "__executable_start", "_end", "end", "_edata", "edata", "__bss_start",
    "_etext", "etext", "__etext", "__GNU_EH_FRAME_HDR", "__dso_handle", "__rela_iplt_start",
    "__rela_iplt_end", "__devlink_link_id",
)


@dataclass
class LinkOptions:
    """What to link. `inputs` keeps command-line order: paths and `-lNAME` entries."""

    output: str
    inputs: list[str]
    lib_dirs: list[str] = field(default_factory=list)
    export_dynamic: bool = False
    entry: str = "_start"
    cc: str | None = None
    #: skip cc's start-up objects and default libraries (-nostdlib)
    nostdlib: bool = False
    #: link devlink's start-up runtime (maps the shared patch area under a session;
    #: does nothing otherwise).  DEVLINK_NO_RUNTIME=1 turns it off by default.
    runtime: bool = field(default_factory=lambda: os.environ.get("DEVLINK_NO_RUNTIME", "") in ("", "0"))


class LinkerFile:
    """The pseudo-file that defines linker-made symbols."""

    name = "<linker>"


LINKER_FILE = LinkerFile()


class Linker:
    def __init__(self, options: LinkOptions, toolchain: Toolchain | None = None):
        self.options = options
        self.toolchain = toolchain
        #: relocatable inputs in link order (archive members where they were pulled in)
        self.objects: list[ObjectFile] = []
        #: libraries in command-line order: ("archive", RawArchive, extracted offsets) or SharedObject
        self.libraries: list = []
        self.shared: list[SharedObject] = []
        self.symtab = SymbolTable()
        self.extras = SymbolExtras()
        self.got = GotSection(self.extras)
        self.stubs = StubSection()
        self.cells = CellSection()
        self.dynsyms = DynamicSymbols()
        self.rela_dyn = RelaDyn()
        self.rela_plt = RelaDyn()
        self.dynamic = DynamicSection()
        #: output sections by name, and in final order
        self.outputs: dict[str, OutputSection] = {}
        self.sections: list[OutputSection] = []
        self.segments = []
        self.comdat_seen: set[str] = set()
        self.atom_order = 0
        #: relocation tables per object, worked out by scan_relocations
        self.reloc_tables: list[dict] = []
        #: objects an update linked and has not compacted yet (see finish_update)
        self.uncompacted: list = []
        #: the .eh_frame_hdr search table as written: sorted (location, FDE address)
        #: rows, kept so an update changes rows instead of rebuilding it
        self.eh_hdr_table = None
        #: byte edits from relaxations: (atom, offset, bytes)
        self.edits: list[tuple[Atom, int, bytes]] = []
        self.exec_stack = False
        self.eh_frame_fdes = 0
        self.copy_atoms: list[tuple[Symbol, Atom]] = []
        #: other names of copied variables (no COPY relocation of their own)
        self.copy_aliases: list[tuple[Symbol, Atom]] = []
        self.linker_symbols: dict[str, Symbol] = {}
        #: one successful link or update; the file's stamp carries it
        self.generation = 1
        #: identifies this link's state (a full link makes a new one)
        self.link_id = os.urandom(16).hex()
        #: stub index by `stub_key`: a function keeps its stub across edits
        self.stub_by_key: dict[str | tuple, int] = {}
        #: crtend.o/crtn.o: they close .eh_frame and .init/.fini, so they stay last
        self.post_objects: list[ObjectFile] = []
        #: objects whose local symbols need per-symbol address work (IFUNCs)
        self.files_with_local_specials: set = set()

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("image", None)        # the full output is on disk, not in the state
        return state

    def restore_after_load(self) -> None:
        """Point input atoms back at their bytes inside their objects."""
        for obj in self.objects:
            for atom in obj.atoms:
                if atom is not None and atom.data is None:
                    atom.data = obj.atom_bytes(atom)
            if obj.table is not None:
                for atom in obj.table.atoms:
                    if atom.data is None:
                        atom.data = obj.atom_bytes(atom)
        for out in self.outputs.values():
            for atom in out.atoms:
                if atom is not None and atom.data is None and atom.file is not None:
                    atom.data = atom.file.atom_bytes(atom)

    # ------------------------------------------------------------------------------------
    def link(self) -> OutputImage:
        """Link the inputs; return the output image (the caller writes it)."""
        # A link allocates ~10 objects per input section and frees almost none of them
        # until it ends: the cyclic collector would rescan them over and over.
        with collector_paused():
            return self._link()

    def _link(self) -> OutputImage:
        # Start-up objects and default libraries come from the user's own cc, so the
        # program starts exactly as a cc-linked one does.
        self.toolchain = self.toolchain or (None if self.options.nostdlib else discover_toolchain(self.options.cc))
        # Read every input; archives are only indexed here, members load on demand.
        self.load_inputs()
        # Bind each name to one definition, pulling archive members and libraries in.
        self.resolve_symbols()
        # Names no input defines but C programs use (_DYNAMIC, __init_array_start...).
        self.define_linker_symbols()
        # Report undefined symbols before anything depends on them.
        self.check_undefined()
        # Every input section gets its output section; COMMON symbols become .bss atoms.
        self.assign_output_sections()
        # Every function entry gets a stub and a mutable cell: the canonical address
        # (invariant 1), decided before relocations so they can be pointed at it.
        self.create_stubs()
        # Relocations decide GOT entries, imports, copy relocations and relaxations.
        self.scan_relocations()
        # Dynamic-linking tables are sized now that imports and exports are known.
        self.size_synthetic_sections()
        # Addresses and file offsets for every section (pure arithmetic).
        self.assign_addresses()
        # Bytes: atoms copied, relocations applied, synthetic sections rendered.
        return self.render()

    # --- 1. inputs ------------------------------------------------------------------------
    def load_inputs(self) -> None:
        tc = self.toolchain
        lib_dirs = list(self.options.lib_dirs) + (tc.lib_dirs if tc else [])
        self.lib_dirs = lib_dirs
        if tc:
            for p in tc.pre_objects:
                self._load_path(p, as_needed=False)
        for item in self.options.inputs:
            if item.startswith("-l"):
                self._load_path(find_library(item[2:], lib_dirs), as_needed=True)
            else:
                self._load_path(item, as_needed=False)
        if tc and self.options.runtime and any(o for o in self.objects):
            # devlink's runtime: its constructor maps the shared patch area under a
            # session (invariant 5); it needs cc's start-up code to run constructors
            from devlink.runtime import runtime_object
            self._load_path(runtime_object(tc.cc), as_needed=False)
        if tc:
            for name, as_needed in tc.default_libs:
                self._load_path(find_library(name, lib_dirs), as_needed=as_needed)
            for p in tc.post_objects:
                self._load_path(p, as_needed=False, post=True)
        if not any(o for o in self.objects):
            raise DevlinkError("no input files; pass .c, .o or .a files to link")

    def _load_path(self, path: str, as_needed: bool, post: bool = False, depth: int = 0) -> None:
        cached = _library_cache_get(path)
        if cached is not None:
            # a system library parsed by an earlier link in this process
            if isinstance(cached, tuple):
                if not any(lib[1].path == path for lib in self.libraries if isinstance(lib, tuple)):
                    self.libraries.append(("archive", cached[1], set()))
            elif not any(so.name == path for so in self.shared):
                so = SharedObject(cached, as_needed)
                self.shared.append(so)
                self.libraries.append(so)
            return
        data = read_file(path)
        kind = kind_of(path, data)
        if kind == "object":
            obj = self._add_object(read_object(path, data), path)
            if post:
                self.post_objects.append(obj)
        elif kind == "archive":
            if any(lib[1].path == path for lib in self.libraries if isinstance(lib, tuple)):
                return
            archive = read_archive(path, data)
            _library_cache_put(path, ("archive", archive))
            self.libraries.append(("archive", archive, set()))
        elif kind == "shared":
            if any(so.name == path for so in self.shared):
                return
            raw = read_shared_object(path, data)
            _library_cache_put(path, raw)
            so = SharedObject(raw, as_needed)
            self.shared.append(so)
            self.libraries.append(so)
        else:
            if depth > 8:
                raise DevlinkError(f"{path}: linker scripts include each other too deeply")
            base = os.path.dirname(path)
            for entry, entry_as_needed in read_linker_script(path, data.decode("utf-8", "replace")):
                if entry.startswith("-l"):
                    p = find_library(entry[2:], self.lib_dirs)
                elif os.path.isabs(entry):
                    p = entry
                else:
                    p = os.path.join(base, entry)
                    if not os.path.exists(p):
                        try:
                            p = find_library(":" + entry, self.lib_dirs)
                        except DevlinkError:
                            raise DevlinkError(f"{path}: names {entry!r}, which was not found") from None
                self._load_path(p, as_needed or entry_as_needed, depth=depth + 1)

    def _add_object(self, raw, name: str) -> ObjectFile:
        obj = ObjectFile(raw, name, priority=len(self.objects))
        self.atom_order = obj.create_atoms(self.atom_order)
        for signature, members in obj.comdat_groups:
            if signature in self.comdat_seen:
                for m in members:
                    if 0 < m < len(obj.atoms) and obj.atoms[m] is not None:
                        obj.atoms[m].alive = False
                        obj.atoms[m] = None
            else:
                self.comdat_seen.add(signature)
        if obj.exec_stack:
            self.exec_stack = True
        self.objects.append(obj)
        return obj

    # --- 2. resolution ----------------------------------------------------------------------
    def resolve_symbols(self) -> None:
        for obj in self.objects:
            self.symtab.add_object(obj)
        changed = True
        while changed:
            changed = False
            for lib in self.libraries:
                if isinstance(lib, tuple):
                    changed |= self._extract_members(lib)
                else:
                    if self._bind_shared(lib, weak=False):
                        changed = True
        for so in self.shared:
            if so.used or not so.as_needed:
                self._bind_shared(so, weak=True)
        # archive members pulled in above go before crtend.o/crtn.o
        if self.post_objects:
            post = set(map(id, self.post_objects))
            self.objects = [o for o in self.objects if id(o) not in post] + self.post_objects

    def _extract_members(self, lib) -> bool:
        _, archive, extracted = lib
        changed = False
        while True:
            wanted = [name for name, sym in self.symtab.globals.items()
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
                obj = self._add_object(read_object(name, blob), name)
                self.symtab.add_object(obj)
            changed = True

    def _bind_shared(self, so: SharedObject, weak: bool) -> bool:
        changed = False
        for sym in self.symtab.globals.values():
            if sym.file is not None or (sym.bind == C.STB_WEAK) != weak:
                continue
            d = so.lookup(sym.name)
            if d is None:
                continue
            bind_import(sym, so, d)
            so.used = True
            changed = True
        return changed

    def define_linker_symbols(self) -> None:
        wanted = list(LINKER_DEFINED)
        for name, sym in self.symtab.globals.items():
            if sym.file is None and (name.startswith("__start_") or name.startswith("__stop_")):
                wanted.append(name)
        for name in wanted:
            sym = self.symtab.globals.get(name)
            if sym is None or sym.file is not None:
                continue
            sym.file = LINKER_FILE
            sym.flags |= SymbolFlags.LINKER_DEFINED
            sym.shndx = C.SHN_ABS
            sym.visibility = C.STV_HIDDEN
            self.linker_symbols[name] = sym

    def check_undefined(self) -> None:
        missing = self.symtab.undefined_strong()
        if not missing:
            return
        parts = []
        for sym in missing[:5]:
            refs = sorted({o.name for o in self.symtab.referenced_by.get(sym.name, [])})
            shown = ", ".join(refs[:3]) + (f" and {len(refs) - 3} more" if len(refs) > 3 else "")
            parts.append(f"{sym.name!r} (referenced by {shown})")
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        what = "symbol" if len(missing) == 1 else "symbols"
        err = DevlinkError(f"undefined {what}: {'; '.join(parts)}{more}; define it, or add the object or -l library that provides it")
        err.undefined = [(sym.name, sorted({o.name for o in self.symtab.referenced_by.get(sym.name, [])}))
                         for sym in missing]          # for the editor's diagnostics
        raise err

    # --- 3. sections ------------------------------------------------------------------------
    def _output(self, name: str, sh_type: int, flags: int) -> OutputSection:
        out = self.outputs.get(name)
        if out is None:
            out = self.outputs[name] = OutputSection(name, sh_type, flags)
        return out

    def assign_output_sections(self) -> None:
        mask = ~(C.SHF_GROUP | C.SHF_MERGE | C.SHF_STRINGS | C.SHF_INFO_LINK | C.SHF_LINK_ORDER)
        output_name = S.output_name
        array_types = {".init_array": C.SHT_INIT_ARRAY, ".fini_array": C.SHT_FINI_ARRAY,
                       ".preinit_array": C.SHT_PREINIT_ARRAY}
        outputs = self.outputs
        for obj in self.objects:
            for atom in obj.atoms:
                if atom is None or not atom.alive:
                    continue
                name = output_name(atom.name, atom.sh_type, atom.sh_flags)
                if name in (".ctors", ".dtors") or atom.name.startswith((".ctors", ".dtors")):
                    raise DevlinkError(f"{obj.name}: section {atom.name} (old-style constructors) is not supported; rebuild with a current gcc, which uses .init_array")
                sh_type = array_types.get(name, atom.sh_type)
                flags = atom.sh_flags & mask
                out = outputs.get(name)
                if out is None:
                    out = self._output(name, sh_type, flags)
                elif out.sh_type == C.SHT_NOBITS and sh_type != C.SHT_NOBITS:
                    out.sh_type = sh_type
                out.sh_flags |= flags
                if atom.alignment > out.alignment:
                    out.alignment = atom.alignment
                atom.output = out
                if name in array_types:
                    # only the arrays are ordered by priority (`.init_array.00100`)
                    atom.priority = S.init_priority(atom.name)
                if name == ".eh_frame":
                    # records are 4-byte aligned; zero padding between objects would
                    # read as the table's terminator to a linear walker
                    atom.alignment = min(atom.alignment, 4)
                    if atom.size == 4 and bytes(atom.data) == b"\0\0\0\0":
                        # crtend's terminator: the zeros of the room after the last
                        # record end the table, also once updates append records
                        atom.alive = False
                        continue
                out.atoms.append(atom)
        # COMMON symbols: each gets a zero-filled atom in .bss
        for sym in self.symtab.globals.values():
            if isinstance(sym.file, ObjectFile) and sym.shndx == C.SHN_COMMON:
                atom = Atom(None, 0, "COMMON." + sym.name, C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE,
                            sym.size, max(sym.value, 1), memoryview(b""), None)
                out = self._output(".bss", C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE)
                out.alignment = max(out.alignment, atom.alignment)
                atom.output = out
                out.atoms.append(atom)
                sym.atom = atom
                sym.value = 0
        for name in (".init_array", ".fini_array", ".preinit_array"):
            out = self.outputs.get(name)
            if out:
                out.atoms.sort(key=lambda a: (a.priority, a.input_order))
        # .eh_frame: count FDEs now so the search table can be sized before layout
        out = self.outputs.get(".eh_frame")
        if out:
            self.eh_frame_fdes = sum(eh_frame.count_fdes(a.data, a.file.name) for a in out.atoms)

    # --- 4. stubs ---------------------------------------------------------------------------
    def create_stubs(self) -> None:
        """A stub + cell for every function entry in .text (aliases share one)."""
        text = self.outputs.get(".text")
        stubs, cells, stub_by_key = self.stubs.stubs, self.cells.stub_of, self.stub_by_key
        set_extra = self.extras.set_field
        STUB = SymbolFlags.STUB
        for obj in self.objects:
            # an object's functions are in its own atoms: the entries seen are per object
            by_entry: dict[tuple[int, int], int] = {}
            stub_indexes = obj.stub_indexes
            for sym in function_definitions(obj):
                if sym.type == C.STT_GNU_IFUNC:
                    self._ifunc_stub(obj, sym)
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

    def _ifunc_stub(self, obj: ObjectFile, sym: Symbol) -> None:
        """An IFUNC's canonical address is a stub jumping through a GOT entry that ld.so
        fills with what the resolver returns (R_X86_64_IRELATIVE)."""
        if sym.flags & SymbolFlags.STUB:
            return
        index = self.stubs.add(Stub(sym, None, 0, -1, self.got.add_iplt_symbol(sym)))
        sym.flags |= SymbolFlags.STUB
        self.extras.update(sym, stub=index)
        self.files_with_local_specials.add(obj)

    def _import_stub(self, sym: Symbol) -> int:
        if sym.flags & SymbolFlags.STUB:
            return self.extras.field(sym, "stub")
        # the stub jumps through the import's GOT entry; if its address turns out to be
        # taken absolutely, size_synthetic_sections gives it a JUMP_SLOT of its own
        index = self.stubs.add(Stub(sym, None, 0, -1, self.got.add_got_symbol(sym)))
        sym.flags |= SymbolFlags.STUB
        self.extras.update(sym, stub=index)
        return index

    # --- 5. relocation scan ---------------------------------------------------------------
    def scan_relocations(self) -> None:
        global_masks = self._global_definition_masks()
        for obj in self.objects:
            table = obj.table = self.scan_object(obj, global_masks)
            if table is not None:
                self.reloc_tables.append(table)

    def _global_definition_masks(self):
        """Per global (row of `_global_rows`): imported, defined in the program."""
        # kept for the relocation pass of the same link: objects keep their symbols and
        # globals are only appended until then, so the rows stay right
        rows = self._scan_rows = self._global_rows()
        syms = list(self.symtab.globals.values())
        n = len(syms)
        imported = (np.fromiter(map(attrgetter("flags"), syms), np.int64, n) & SymbolFlags.IMPORT) != 0
        has_file = np.fromiter(map(operator.is_not, map(attrgetter("file"), syms), itertools.repeat(None)), bool, n)
        defined = has_file & (np.fromiter(map(attrgetter("shndx"), syms), np.int64, n) != C.SHN_ABS)
        return rows, imported, defined & ~imported

    def _global_rows(self) -> dict[int, np.ndarray | None]:
        """Per object (by id): the row of each of its global symbols in tables made over
        all globals (None where one has no record: then the caller goes symbol by
        symbol).  Looked up for every object in one pass."""
        row_of = dict(zip(map(id, self.symtab.globals.values()), itertools.count()))
        parts = [obj.symbols[obj.raw.first_global:] for obj in self.objects]
        flat = list(itertools.chain.from_iterable(parts))
        try:
            rows = np.fromiter(map(row_of.__getitem__, map(id, flat)), np.int64, len(flat))
        except KeyError:
            return {id(obj): _object_global_rows(obj, row_of) for obj in self.objects}
        out = {}
        start = 0
        for obj, part in zip(self.objects, parts):
            out[id(obj)] = rows[start:start + len(part)]
            start += len(part)
        return out

    def _definition_masks(self, obj: ObjectFile, global_masks=None):
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

    def scan_object(self, obj: ObjectFile, global_masks=None) -> RelocTable | None:
        """One object's relocations as one table of kinds; GOT entries, stubs for
        imports, COPY relocations and relaxations are decided here.  `global_masks`
        (from `_global_definition_masks`): for a pass over every object."""
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
        eh_frame_out = self.outputs.get(".eh_frame")
        not_eh_frame = np.fromiter(map(operator.is_not, map(attrgetter("output"), atoms), itertools.repeat(eh_frame_out)),
                                   bool, n_atoms)
        alloc_atom = ((atom_flags & C.SHF_ALLOC) != 0) & not_eh_frame
        code_atom = (atom_flags & C.SHF_EXECINSTR) != 0
        from_alloc = alloc_atom[aidx]
        in_code = code_atom[aidx]
        # local-dynamic TLS is always relaxed to local exec, so in code a DTPOFF32 is an
        # offset from the thread pointer; in data and debug info it stays an offset in
        # the TLS block
        kinds[in_code & (types == arch.R_X86_64_DTPOFF32)] = arch.K_TPOFF32
        symbols = obj.symbols
        is_import, local_def = self._definition_masks(obj, global_masks)
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
                    raise DevlinkError(f"{self._where(obj, atom, int(offs[j]))}: {arch.reloc_name(int(types[j]))} "
                                       f"against a section symbol is not supported")
                if sym.flags & SymbolFlags.IMPORT:
                    sym.flags |= SymbolFlags.REFERENCED
                self.got.add_got_symbol(sym)
        special = np.flatnonzero((kinds < 0) | special_types[tclip])
        skip = set()
        for j in special.tolist():
            if j in skip:
                continue
            self._scan_special(obj, atoms, j, aidx, offs, types, syms, addend, kinds, from_alloc, skip)
        imp = np.flatnonzero(is_import[syms] & from_alloc)
        for j in imp.tolist():
            if kinds[j] <= 0:
                continue
            self._scan_import(obj, atoms[aidx[j]], int(offs[j]), int(types[j]), symbols[syms[j]], int(kinds[j]))
        return RelocTable(obj, atoms, aidx, offs, types, syms, addend, kinds, from_alloc, in_code, relax_lea)

    def _where(self, obj, atom, off) -> str:
        return f"{obj.name}: section {atom.name}+{off:#x}"

    def _scan_special(self, obj, atoms, j, aidx, offs, types, syms, addend, kinds, from_alloc, skip) -> None:
        atom = atoms[aidx[j]]
        off = int(offs[j])
        t = int(types[j])
        sym = obj.symbols[syms[j]] if syms[j] < len(obj.symbols) else None
        if kinds[j] < 0 and t not in arch.TLS_SEQUENCE_TYPES:
            hint = arch.UNSUPPORTED_HINT.get(t, "devlink does not support it; report this with the object attached")
            raise DevlinkError(f"unsupported relocation {arch.reloc_name(t)} in {self._where(obj, atom, off)}: {hint}")
        if t == arch.R_X86_64_GOTTPOFF:
            if sym is None or sym.is_import:
                raise DevlinkError(f"{self._where(obj, atom, off)}: thread-local variable {getattr(sym, 'name', '?')!r} from a shared library is not supported")
            self.got.add_gottp_symbol(sym)
            return
        if t in arch.TLS_SEQUENCE_TYPES:
            if sym is not None and sym.is_import:
                raise DevlinkError(f"{self._where(obj, atom, off)}: thread-local variable {sym.name!r} from a shared library is not supported")
            nxt = j + 1
            nxt_type = int(types[nxt]) if nxt < len(types) and aidx[nxt] == aidx[j] else None
            if t == arch.R_X86_64_TLSGD:
                r = arch.relax_tls_gd_to_le(atom.data, off, nxt_type)
                if r is None:
                    raise DevlinkError(f"{self._where(obj, atom, off)}: R_X86_64_TLSGD is not followed by the standard __tls_get_addr call sequence; build with gcc's default TLS code")
                start, code, field_off = r
                self.edits.append((atom, start, code))
                offs[j] = field_off
                addend[j] = 0
                kinds[j] = arch.K_TPOFF32
            else:
                r = arch.relax_tls_ld_to_le(atom.data, off)
                if r is None:
                    raise DevlinkError(f"{self._where(obj, atom, off)}: R_X86_64_TLSLD is not followed by the standard __tls_get_addr call sequence; build with gcc's default TLS code")
                start, code = r
                self.edits.append((atom, start, code))
                kinds[j] = arch.K_NONE
            if nxt_type is not None:
                kinds[nxt] = arch.K_NONE   # the __tls_get_addr call is gone
                skip.add(nxt)
            return

    def _scan_import(self, obj, atom, off, t, sym: Symbol, kind: int) -> None:
        sym.flags |= SymbolFlags.REFERENCED
        if sym.type == C.STT_TLS:
            raise DevlinkError(f"{self._where(obj, atom, off)}: thread-local variable {sym.name!r} from a shared library is not supported")
        is_func = sym.type in (C.STT_FUNC, C.STT_GNU_IFUNC)
        if kind in arch.GOT_KINDS:
            return
        if is_func:
            self._import_stub(sym)
            if t not in (arch.R_X86_64_PLT32, arch.R_X86_64_PC32) or (t == arch.R_X86_64_PC32 and not _is_call(atom.data, off)):
                # the address is taken directly: the stub becomes the canonical address
                sym.flags |= SymbolFlags.CANONICAL_PLT
            return
        if kind in (arch.K_ABS64, arch.K_ABS32, arch.K_ABS32S, arch.K_PC32, arch.K_PC64):
            if not (sym.flags & SymbolFlags.COPY_REL):
                self._add_copy(sym)

    def _add_copy(self, sym: Symbol) -> None:
        if sym.size == 0:
            raise DevlinkError(f"imported variable {sym.name!r} has size 0 and cannot be copied into the program; build the referencing object with -fPIC")
        # the copy keeps the alignment of the library's definition (at most 64)
        align = 1
        while align < 64 and sym.value % (align * 2) == 0:
            align *= 2
        atom = Atom(None, 0, "COPY." + sym.name, C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE,
                    sym.size, align, memoryview(b""), None)
        out = self._output(".bss", C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE)
        out.alignment = max(out.alignment, align)
        atom.output = out
        out.atoms.append(atom)
        sym.flags |= SymbolFlags.COPY_REL
        self.copy_atoms.append((sym, atom))
        # the library's other names for the same variable (environ, __environ) must be
        # defined at the copy too, or libc keeps using its own storage
        so = sym.file
        for alias in so.aliases_of(sym.value):
            if alias.name == sym.name or (alias.info & 0xF) != C.STT_OBJECT:
                continue
            other = self.symtab.get_or_create(alias.name)
            if other.file is not None and other.file is not so:
                continue
            other.file = so
            other.value, other.size, other.type = alias.value, alias.size, C.STT_OBJECT
            other.version = alias.version
            other.flags |= SymbolFlags.IMPORT | SymbolFlags.COPY_REL | SymbolFlags.REFERENCED
            self.copy_aliases.append((other, atom))

    # --- 6. synthetic sections --------------------------------------------------------------
    def size_synthetic_sections(self) -> None:
        opts = self.options
        # every function and variable the needed libraries export gets a GOT entry bound
        # at start, so an edit that calls a libc function the program never called before
        # (or reads stdout) needs no new dynamic symbol (IFUNCs such as strlen can only be
        # resolved by ld.so)
        self.prebind_library_functions()
        # dynamic symbols: exports are definitions a library refers to (or all, -E)
        IMPORT, USED = SymbolFlags.IMPORT, SymbolFlags.GOT | SymbolFlags.COPY_REL | SymbolFlags.STUB
        imports = [sym for sym in self.symtab.globals.values() if sym.flags & IMPORT and sym.flags & USED]
        for sym in imports:
            sym.file.used = True
        lib_names: set[str] = set()
        for so in self.shared:
            if so.used:
                lib_names.update(so.raw.defined)
                lib_names.update(so.raw.undefined)
        export_all = opts.export_dynamic
        exports = [sym for sym in self.symtab.globals.values()
                   if (export_all or sym.name in lib_names) and isinstance(sym.file, ObjectFile)
                   and sym.visibility not in (C.STV_HIDDEN, C.STV_INTERNAL)]
        # an exported function's value is its stub; an earlier entry names its code
        for sym in exports:
            if sym.flags & SymbolFlags.STUB and sym.atom is not None:
                self.dynsyms.add_code_name(sym)
        for sym in imports:
            self.dynsyms.add(sym, self.extras)
        for sym in exports:
            sym.flags |= SymbolFlags.EXPORT
            self.dynsyms.add(sym, self.extras)
        for so in self.shared:
            if so.used or not so.as_needed:
                self.dynsyms.add_needed(so.soname)
        self.dynsyms.finish()
        # a canonical import's stub must not jump through its GLOB_DAT entry: ld.so binds
        # that to the executable's own definition, the stub itself
        for stub in self.stubs.stubs:
            if stub.atom is None and stub.symbol.flags & SymbolFlags.CANONICAL_PLT and \
                    self.got.entries[stub.slot].tag == GotTag.GOT:
                stub.slot = self.got.add_plt_symbol(stub.symbol)
        # dynamic relocations: counted now (addresses are filled in after layout)
        self._fill_dynamic_relocs()
        # output sections for the synthetic contents
        tc = self.toolchain
        interp = (tc.dynamic_linker if tc else "/lib64/ld-linux-x86-64.so.2").encode() + b"\0"
        self.interp = interp
        A, W, X = C.SHF_ALLOC, C.SHF_WRITE, C.SHF_EXECINSTR
        d = self.dynsyms

        def synth(name, sh_type, flags, size, align, entsize=0):
            out = self._output(name, sh_type, flags)
            out.size = size
            out.alignment = align
            out.entsize = entsize
            out.synthetic = True
            return out

        # the stubs get an unwind entry of their own, first in .eh_frame
        ef = self._output(".eh_frame", C.SHT_PROGBITS, A)
        ef.alignment = max(ef.alignment, 4)
        self.stub_unwind = Atom(None, 0, ".eh_frame.devlink-stubs", C.SHT_PROGBITS, A,
                                eh_frame.TRAMPOLINE_CIE_FDE_SIZE, 4, memoryview(bytes(eh_frame.TRAMPOLINE_CIE_FDE_SIZE)), None)
        self.stub_unwind.output = ef
        ef.atoms.insert(0, self.stub_unwind)
        self.eh_frame_fdes += 1
        # the zero terminator, last (an update moves it behind the records it appends)
        self.eh_terminator = Atom(None, 0, ".eh_frame.devlink-end", C.SHT_PROGBITS, A, 4, 4, memoryview(bytes(4)), None)
        self.eh_terminator.output = ef
        ef.atoms.append(self.eh_terminator)
        synth(".interp", C.SHT_PROGBITS, A, len(interp), 1)
        synth(".hash", C.SHT_HASH, A, d.hash_size(), 8, 4)
        synth(".dynsym", C.SHT_DYNSYM, A, d.dynsym_size(), 8, 24)
        if d.versions:
            synth(".gnu.version", C.SHT_GNU_versym, A, d.versym_size(), 2, 2)
            synth(".gnu.version_r", C.SHT_GNU_verneed, A, d.verneed_size(), 8)
        if self.rela_dyn.relocs:
            synth(".rela.dyn", C.SHT_RELA, A, self.rela_dyn.size(), 8, 24)
        if self.rela_plt.relocs:
            synth(".rela.plt", C.SHT_RELA, A | C.SHF_INFO_LINK, self.rela_plt.size(), 8, 24)
        synth(".plt", C.SHT_PROGBITS, A | X, self.stubs.size(), 16)
        synth(".eh_frame_hdr", C.SHT_PROGBITS, A, eh_frame.HDR_HEADER + eh_frame.HDR_ENTRY * self.eh_frame_fdes, 4)
        synth(".got", C.SHT_PROGBITS, A | W, max(self.got.size(), 8), 8, 8)
        synth(".devlink.cells", C.SHT_PROGBITS, A | W, self.cells.size(), 4096, 8)
        if "__devlink_link_id" in self.linker_symbols:
            # the link id in memory: the runtime maps a patch area only if it is its own
            synth(".devlink.id", C.SHT_PROGBITS, A, 16, 8)
        # .dynamic: its tag list is fixed now; values are filled in after layout
        tags: list[tuple[int, object]] = [(C.DT_NEEDED, ("str", n)) for n in d.needed]
        if self._has(".init"):
            tags.append((C.DT_INIT, ("sym", "_init")))
        if self._has(".fini"):
            tags.append((C.DT_FINI, ("sym", "_fini")))
        for name, t_addr, t_size in ((".preinit_array", C.DT_PREINIT_ARRAY, C.DT_PREINIT_ARRAYSZ),
                                     (".init_array", C.DT_INIT_ARRAY, C.DT_INIT_ARRAYSZ),
                                     (".fini_array", C.DT_FINI_ARRAY, C.DT_FINI_ARRAYSZ)):
            if self._has(name):
                tags += [(t_addr, ("addr", name)), (t_size, ("size", name))]
        tags += [(C.DT_HASH, ("addr", ".hash")), (C.DT_STRTAB, ("addr", ".dynstr")),
                 (C.DT_SYMTAB, ("addr", ".dynsym")), (C.DT_STRSZ, ("size", ".dynstr")),
                 (C.DT_SYMENT, 24), (C.DT_DEBUG, 0)]
        if self.rela_plt.relocs:
            tags += [(C.DT_PLTGOT, ("addr", ".got")), (C.DT_PLTRELSZ, ("size", ".rela.plt")),
                     (C.DT_PLTREL, C.DT_RELA), (C.DT_JMPREL, ("addr", ".rela.plt"))]
        if self.rela_dyn.relocs:
            tags += [(C.DT_RELA, ("addr", ".rela.dyn")), (C.DT_RELASZ, ("size", ".rela.dyn")),
                     (C.DT_RELAENT, 24)]
        tags += [(C.DT_FLAGS, C.DF_BIND_NOW), (C.DT_FLAGS_1, C.DF_1_NOW)]
        if d.versions:
            tags += [(C.DT_VERSYM, ("addr", ".gnu.version")), (C.DT_VERNEED, ("addr", ".gnu.version_r")),
                     (C.DT_VERNEEDNUM, d.verneed_count())]
        self.dynamic.set_tags(tags)
        synth(".dynamic", C.SHT_DYNAMIC, A | W, self.dynamic.size(), 8, 16)
        # .dynstr last: the tags above added strings to it
        synth(".dynstr", C.SHT_STRTAB, A, len(d.dynstr), 1)

    def prebind_library_functions(self) -> None:
        table = self.symtab.globals
        for so in self.shared:
            if not (so.used or not so.as_needed):
                continue
            for name, d in so.raw.defined.items():
                if (d.info & 0xF) not in (C.STT_FUNC, C.STT_GNU_IFUNC, C.STT_OBJECT) or d.version == "GLIBC_PRIVATE" \
                        or d.shndx == C.SHN_ABS:   # version markers such as GLIBC_ABI_DT_RELR
                    continue
                sym = table.get(name)
                if sym is None:
                    sym = table[name] = Symbol(name)
                    bind_import(sym, so, d)
                    sym.bind = C.STB_WEAK if d.info >> 4 == C.STB_WEAK else C.STB_GLOBAL
                    sym.flags |= SymbolFlags.PREBOUND
                elif not (sym.flags & SymbolFlags.IMPORT) or sym.file is not so:
                    continue
                if not (sym.flags & (SymbolFlags.GOT | SymbolFlags.COPY_REL)):
                    self.got.add_got_symbol(sym)

    def _fill_dynamic_relocs(self) -> None:
        """What ld.so fills in at start: GLOB_DAT per import GOT entry (JUMP_SLOT where
        the stub is the canonical address, so ld.so does not bind the entry to the
        stub itself), COPY per copied variable, IRELATIVE per IFUNC."""
        self.rela_dyn.relocs.clear()
        self.rela_plt.relocs.clear()
        ext = self.extras
        got = self.got
        plt_add, dyn_add, dynsym = self.rela_plt.add, self.rela_dyn.add, ext.field
        IPLT, PLT, GOT = GotTag.IPLT, GotTag.PLT, GotTag.GOT
        IMPORT, COPY_REL = SymbolFlags.IMPORT, SymbolFlags.COPY_REL
        for e in got.entries:
            sym = e.symbol
            tag = e.tag
            if tag == GOT:
                if sym.flags & IMPORT and not (sym.flags & COPY_REL):
                    dyn_add(e.address(got), arch.DYN_GLOB_DAT, dynsym(sym, "dynsym"))
            elif tag == IPLT:
                plt_add(e.address(got), arch.DYN_IRELATIVE, 0, sym.address())
            elif tag == PLT:
                plt_add(e.address(got), arch.DYN_JUMP_SLOT, dynsym(sym, "dynsym"))
        for sym, atom in self.copy_atoms:
            self.rela_dyn.add(atom.address if atom.output is not None else 0, arch.DYN_COPY, ext.field(sym, "dynsym"))

    def _has(self, name: str) -> bool:
        out = self.outputs.get(name)
        return out is not None and (out.size > 0 or any(a.size for a in out.atoms))

    # --- 7. layout --------------------------------------------------------------------------
    def assign_addresses(self) -> None:
        self._plan_debug_padding()
        for out in self.outputs.values():
            if out.synthetic:
                continue
            cursor = 0
            pad_code = out.name == ".text"
            for slot, atom in zip(indexes(len(out.atoms)), out.atoms):   # shared ints
                atom.slot = slot
                align = atom.alignment
                cursor = (cursor + align - 1) & ~(align - 1)
                atom.value = cursor
                size = atom.size
                if pad_code and atom.sh_flags & C.SHF_EXECINSTR:
                    # room to grow in place (Zig's padToIdeal), for an edited function
                    # that no running program can be executing:
                    # max(pad_to_ideal(size), min(size + 16, MIN_CODE_CAPACITY)), inline
                    ideal = size + size // 3
                    small = size + 16 if size + 16 < MIN_CODE_CAPACITY else MIN_CODE_CAPACITY
                    atom.capacity = ideal if ideal > small else small
                elif atom.capacity < size:
                    atom.capacity = size
                cursor += atom.capacity
            out.size = cursor
        # reserved room: sections grow into it during a session without moving
        for o in self.outputs.values():
            if o.is_alloc:
                o.room = S.room_for(o.name, o.size)
        tls = [o for o in self.outputs.values() if o.is_tls]
        if not tls:
            # an empty TLS block with slack, so a first thread-local variable can come later
            tbss = self._output(".tbss", C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE | C.SHF_TLS)
            tbss.alignment = 8
            tls = [tbss]
        tls_memsz = sum(o.size for o in tls)
        # the slack goes after the zero-filled part (any TLS output, if there is none)
        last_tls = next((o for o in tls if o.name == ".tbss"), tls[-1])
        last_tls.room = S.tls_slack(tls_memsz)
        alloc = [o for o in self.outputs.values() if o.is_alloc]
        placements = {}
        keyed = []
        for i, o in enumerate(alloc):
            seg, key = S.placement(o.name, o.sh_flags, o.sh_type)
            placements[o.name] = seg
            keyed.append((seg, key, i, o))
        keyed.sort(key=lambda t: (t[0], t[1], t[2]))
        alloc = [t[3] for t in keyed]
        nonalloc = sorted((o for o in self.outputs.values() if not o.is_alloc), key=lambda o: o.name)
        self.placements = placements
        nload = len({placements[o.name] for o in alloc})
        has_tls = any(o.is_tls for o in alloc)
        has_note = any(o.sh_type == C.SHT_NOTE for o in alloc)
        self.num_phdrs = 1 + 1 + nload + 1 + (1 if has_note else 0) + (1 if has_tls else 0) + \
            (1 if ".eh_frame_hdr" in self.outputs else 0) + 1
        self.segments, self.content_end = layout(alloc, placements, [], self.num_phdrs)
        self.alloc_sections = alloc
        self.nonalloc_sections = nonalloc
        for o in alloc:
            o.limit = o.size + o.room     # growth stops here (bytes from o.addr)
            o.free = []                   # (offset, capacity) of freed atoms
        self.got.addr = self.outputs[".got"].addr
        self.stubs.addr = self.outputs[".plt"].addr
        self.cells.addr = self.outputs[".devlink.cells"].addr

    def _debug_atoms(self) -> list[Atom]:
        """The non-allocated input pieces (debug info), from their output sections: a
        tenth of the atoms, where a walk over every object's atoms sees them all."""
        return [a for out in self.outputs.values() if not out.is_alloc for a in out.atoms
                if a is not None and a.file is not None and not a.sh_flags & C.SHF_ALLOC]

    def _plan_debug_padding(self) -> None:
        """Debug pieces get capacity (valid DWARF padding) so an edited object's debug
        info can be rewritten in place by an incremental update."""
        info_of, abbrev_of = {}, {}
        for atom in self._debug_atoms():
            if atom.name == ".debug_info":
                info_of[id(atom.file)] = atom
            elif atom.name == ".debug_abbrev":
                abbrev_of[id(atom.file)] = atom
            else:
                debug_pad.plan_piece(atom)
        for obj in self.objects:
            info, abbrev = info_of.get(id(obj)), abbrev_of.get(id(obj))
            obj.info_padding = debug_pad.plan_info(info, abbrev) if info is not None and abbrev is not None else None

    def _pad_debug(self, image: OutputImage) -> None:
        for obj in self.objects:
            plan = getattr(obj, "info_padding", None)
            if plan is not None:
                info, abbrev, code, term = plan
                iv = image.view(info.output)[info.value:info.value + info.capacity]
                av = image.view(abbrev.output)[abbrev.value:abbrev.value + abbrev.capacity]
                debug_pad.apply_info_padding(iv, info.size, info.capacity, av, abbrev.size, abbrev.capacity, code, term)
        for atom in self._debug_atoms():
            if atom.capacity <= atom.size or atom.name in (".debug_info", ".debug_abbrev"):
                continue
            view = image.view(atom.output)[atom.value:atom.value + atom.capacity]
            debug_pad.pad_piece(atom.name, view, atom.size, atom.capacity)

    # --- 8. contents ------------------------------------------------------------------------
    def canonical_address(self, sym: Symbol) -> int:
        """The address a reference to `sym` means: the stub for functions (invariant 1)."""
        if sym.flags & SymbolFlags.STUB:
            return self.stubs.address(self.extras.field(sym, "stub"))
        if sym.flags & SymbolFlags.COPY_REL:
            return self.copy_address(sym)
        if sym.is_import:
            return 0
        return sym.address()

    def copy_address(self, sym: Symbol) -> int:
        for s, atom in self.copy_atoms + self.copy_aliases:
            if s is sym:
                return atom.address
        return 0

    def _set_linker_symbols(self) -> None:
        o = self.outputs
        first_seg = self.segments[0]

        def start(name):
            return o[name].addr if name in o else 0

        def end(name):
            return o[name].addr + o[name].size if name in o else 0

        data_end = max((s.addr + s.size for s in self.alloc_sections if not s.is_nobits and s.segment.seg_class == S.SEG_DATA), default=0)
        bss = o.get(".bss")
        image_end = max(s.addr + s.size for s in self.alloc_sections)
        text_end = max((s.addr + s.size for s in self.alloc_sections if s.segment.seg_class in (S.SEG_TEXT, S.SEG_STUBS)), default=0)
        values = {
            "_GLOBAL_OFFSET_TABLE_": start(".got"), "_DYNAMIC": start(".dynamic"),
            "__init_array_start": start(".init_array"), "__init_array_end": end(".init_array"),
            "__fini_array_start": start(".fini_array"), "__fini_array_end": end(".fini_array"),
            "__preinit_array_start": start(".preinit_array"), "__preinit_array_end": end(".preinit_array"),
            "__ehdr_start": first_seg.vaddr, "__executable_start": first_seg.vaddr,
            "_end": image_end, "end": image_end, "_edata": data_end, "edata": data_end,
            "__bss_start": bss.addr if bss else data_end, "_etext": text_end, "etext": text_end,
            "__etext": text_end, "__GNU_EH_FRAME_HDR": start(".eh_frame_hdr"), "__dso_handle": 0,
            "__rela_iplt_start": 0, "__rela_iplt_end": 0, "__devlink_link_id": start(".devlink.id"),
        }
        for name, sym in self.linker_symbols.items():
            if name.startswith("__start_"):
                sym.value = start(name[8:])
            elif name.startswith("__stop_"):
                sym.value = end(name[7:])
            else:
                sym.value = values.get(name, 0)

    def render(self) -> OutputImage:
        self._set_linker_symbols()
        for sym, atom in self.copy_atoms + self.copy_aliases:
            self.extras.update(sym, copy_addr=atom.address)
        # section indexes first: the symbol tables refer to them
        for name, sh_type, align, entsize in ((".symtab", C.SHT_SYMTAB, 8, 24), (".strtab", C.SHT_STRTAB, 1, 0)):
            out = self._output(name, sh_type, 0)
            out.alignment = align
            out.entsize = entsize
            out.synthetic = b""
        stamp = self._output(".devlink.stamp", C.SHT_PROGBITS, 0)
        stamp.size, stamp.alignment, stamp.synthetic = STAMP_SIZE, 8, b""
        nonalloc = [o for o in self.outputs.values() if not o.is_alloc]
        debug = sorted((o for o in nonalloc if o.synthetic is None), key=lambda o: o.name)
        tail = [self.outputs[".symtab"], self.outputs[".strtab"]]
        shstr_out = self._output(".shstrtab", C.SHT_STRTAB, 0)
        # the stamp first: its place never changes, so an update can write it last
        ordered = self.alloc_sections + [stamp] + debug + tail + [shstr_out]
        shstrtab = StringTable()
        for i, o in enumerate(ordered, 1):
            o.index = i
            shstrtab.add(o.name)
        shstr_out.size = len(shstrtab)
        shstr_out.synthetic = bytes(shstrtab.buf)
        # non-allocated sections go after the allocated ones
        symtab, strtab, first_global = self._build_symtab()
        for out, data in ((tail[0], symtab), (tail[1], strtab)):
            out.size = len(data)
            out.synthetic = data
        self.outputs[".symtab"].info = first_global
        stamp.synthetic = self.stamp_bytes()
        off = self.content_end
        for o in debug:
            o.room = S.debug_room(o.size)
            o.limit = o.size + o.room
        for o in [stamp] + debug + tail + [shstr_out]:
            align = max(o.alignment, 1)
            off = (off + align - 1) & ~(align - 1)
            o.offset = off
            o.addr = 0
            off += o.size + o.room
        shoff = (off + 7) & ~7
        image = OutputImage(ordered, Elf64_Ehdr.size + self.num_phdrs * Elf64_Phdr.size, shoff,
                            (len(ordered) + 1) * Elf64_Shdr.size)
        content = image.content
        # atoms' bytes
        text = self.outputs.get(".text")
        for o in self.alloc_sections + debug:
            if o.is_nobits or o.synthetic is not None or o is text:
                continue
            base = image.buf_off[o.name]
            for atom in o.atoms:
                if atom.size and atom.sh_type != C.SHT_NOBITS:
                    p = base + atom.value
                    content[p:p + atom.size] = atom.data
        if text is not None and text.size and not text.is_nobits and text.synthetic is None:
            # room between functions: int3, so a stray jump traps instead of running zeros
            view = image.view(text)
            view[:] = arch.TRAP_INSN * text.size
            for atom in text.atoms:
                if atom.size and atom.sh_type != C.SHT_NOBITS:
                    view[atom.value:atom.value + atom.size] = atom.data
        for atom, off_in, code in self.edits:
            image.put(atom.output, code, atom.value + off_in)
        self._apply_relocations(image)
        self._pad_debug(image)
        self._render_synthetic(image)
        for o in [stamp] + tail + [shstr_out]:
            image.put(o, o.synthetic)
        self._write_headers(image, ordered)
        return image

    def compact_state(self) -> None:
        """Keep only what an incremental update needs, once the output is written:
        objects' code and data bytes (not their debug info), the relocations an update
        may apply again, archives' symbol indexes (a new member means a full link)."""
        self.libraries = [("archive", dataclasses.replace(lib[1], data=b"", members={}), lib[2])
                          if isinstance(lib, tuple) else lib for lib in self.libraries]
        _compact_objects(self.objects)
        self.reloc_tables = []           # the full link's pass is done; updates use obj.table
        # .symtab/.strtab as written: an update renders them again from the builder's
        # blocks (whole, or only the changed rows), never from these bytes
        for name in (".symtab", ".strtab"):
            out = self.outputs.get(name)
            if out is not None and out.synthetic:
                out.synthetic = b""
        gc.collect()
        _release_free_memory()

    def finish_update(self) -> None:
        """The part of an incremental update no output byte waits for: trim the new
        objects' relocation tables and compact them (as compact_state did at the full
        link).  A session calls it once the program runs the new code; the next
        update calls it first in any case."""
        pending, self.uncompacted = self.uncompacted, []
        _compact_objects(pending)

    def discard(self) -> None:
        """Break the state's reference cycles (objects <-> atoms, symbols and relocation
        tables; output sections <-> atoms and segments) so that reference counting frees
        a link that is not kept as soon as it is dropped: left to the cyclic collector,
        its first pass after the link traces every record (~30 ms at 10,000 functions)."""
        for obj in self.objects:
            obj.atoms = []
            obj.symbols = []
            obj.table = None
            obj.info_padding = None
        for out in self.outputs.values():
            out.atoms = []
            out.segment = None
        self.symtab.globals.clear()
        self.reloc_tables = []

    def stamp_bytes(self) -> bytes:
        """The generation stamp: which link state this file belongs to, and which
        generation; an update writes it last, so a file whose stamp is not the state's
        was interrupted (see devlink/link/state.py)."""
        return STAMP_MAGIC + self.generation.to_bytes(8, "little") + bytes.fromhex(self.link_id)

    def _symbol_arrays(self, obj: ObjectFile, global_table=None):
        """Per symbol-table index of `obj`: address (S), GOT entry, size, and the address
        range of the atom the symbol is in (a stub redirect must stay inside it).
        `global_table` (from `_global_symbol_table`): globals gathered from it instead
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
        in_sec = (shndx > 0) & (shndx < min(C.SHN_LORESERVE, nsec))
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
        start = 1 if obj in self.got.local_files or obj in self.files_with_local_specials else first
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
                values.append(self._symbol_values(sym, S_list[i], lo_list[i], hi_list[i]))
            elif sym.type == C.STT_GNU_IFUNC:
                rows.append(i)
                values.append(self._symbol_values(sym, S_list[i], lo_list[i], hi_list[i]))
            elif sym.flags & (SymbolFlags.GOT | SymbolFlags.GOTTP):
                G[i] = self._got_value(sym)
        if rows:
            cols = np.array(values, np.int64).T
            S_[rows], G[rows], Z[rows], lo[rows], hi[rows] = cols
        return S_, G, Z, lo, hi

    def _symbol_values(self, sym: Symbol, S: int = 0, lo: int = 0, hi: int = 0) -> tuple:
        """(S, GOT entry, size, atom start, atom end) of a symbol bound by name; S, lo and
        hi as given where the symbol's atom is not placed."""
        flags = sym.flags
        if flags & SymbolFlags.IMPORT or sym.type == C.STT_GNU_IFUNC:
            lo = hi = 0
            if flags & SymbolFlags.STUB:
                S = self.stubs.addr + 8 * self.extras.field(sym, "stub")
            elif flags & SymbolFlags.COPY_REL:
                S = self.extras.field(sym, "copy_addr")
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
        G = self._got_value(sym) if flags & (SymbolFlags.GOT | SymbolFlags.GOTTP) else 0
        return S, G, sym.size, lo, hi

    def _got_value(self, sym: Symbol) -> int:
        G = 0
        for name in ("got", "gottp"):
            g = self.extras.field(sym, name)
            if g >= 0:
                G = self.got.addr + 8 * self.got.entries[g].cell_index
        return G

    def _global_symbol_table(self):
        """Every global's `_symbol_values` once, as columns, and each record's row
        (by id): a pass over all objects gathers from it instead of recomputing a
        global for every object that names it."""
        rows = []
        add = rows.append
        special = SymbolFlags.IMPORT | SymbolFlags.GOT | SymbolFlags.GOTTP
        for sym in self.symtab.globals.values():
            if sym.flags & special or sym.type == C.STT_GNU_IFUNC:
                add(self._symbol_values(sym))
                continue
            # `_symbol_values` of a symbol of the program without a GOT entry, inline
            atom = sym.atom
            if atom is None:
                add((sym.value, 0, sym.size, 0, 0))
            elif atom.output is None:
                add((0, 0, sym.size, 0, 0))
            else:
                a = atom.output.addr + atom.value
                add((a + sym.value, 0, sym.size, a, a + atom.size))
        columns = np.array(rows, np.int64).reshape(-1, 5).T
        object_rows = self.__dict__.pop("_scan_rows", None)
        if object_rows is None:
            object_rows = self._global_rows()
        return object_rows, tuple(np.ascontiguousarray(c) for c in columns)

    def _entry_table(self):
        """Sorted function-entry addresses and their stubs (kept per stub in
        `stub_entry`, so an update only touches the entries it changes)."""
        self._stub_entries()
        idx = np.flatnonzero(self.stub_entry)
        entries = self.stub_entry[idx]
        order = np.argsort(entries, kind="stable")
        return entries[order], self.stubs.addr + 8 * idx[order].astype(np.int64)

    def _stub_entries(self) -> np.ndarray:
        """`stub_entry`: each stub's function entry (0: none), built on first use."""
        if getattr(self, "stub_entry", None) is None or len(self.stub_entry) < len(self.stubs.stubs):
            stubs = self.stubs.stubs
            # s.atom.address + s.offset, without the property call per stub
            self.stub_entry = np.fromiter([a.output.addr + a.value + s.offset if a is not None and s.cell >= 0 else 0
                                           for s, a in zip(stubs, map(attrgetter("atom"), stubs))], np.int64, len(stubs))
        return self.stub_entry

    def set_stub_entry(self, index: int, addr: int) -> None:
        if getattr(self, "stub_entry", None) is None:
            return                      # built on first use
        if index >= len(self.stub_entry):
            self.stub_entry = np.concatenate((self.stub_entry, np.zeros(index + 64 - len(self.stub_entry), np.int64)))
        self.stub_entry[index] = addr

    def relocation_context(self, objects=None) -> RelocContext:
        """What every relocation needs besides its symbol: entries, GOT base, TP.  For
        `objects` only: the entries their relocations can name (their own functions and
        the functions they refer to), which costs what those objects cost."""
        if objects is None:
            entry_addr, entry_stub = self._entry_table()
        else:
            stubs = set()
            table, offset = self.extras.table, EXTRA_OFFSET["stub"]
            for obj in objects:
                stubs.update(obj.stub_indexes)
                for sym in obj.symbols:
                    if sym is not None and sym.flags & SymbolFlags.STUB and sym.atom is not None:
                        stubs.add(table[sym.extra_index * EXTRA_WIDTH + offset])
            idx = np.fromiter(stubs, np.int64, len(stubs))
            entry = self._stub_entries()[idx]
            idx, entry = idx[entry != 0], entry[entry != 0]
            order = np.argsort(entry, kind="stable")
            entry_addr, entry_stub = entry[order], self.stubs.addr + 8 * idx[order]
        tls_start, _, _, tls_memsz, tls_align = tls_range(self.alloc_sections)
        return RelocContext(entry_addr, entry_stub, self.got.addr, arch.tls_tp(tls_start, tls_memsz, tls_align), tls_start)

    def _apply_relocations(self, image: OutputImage) -> None:
        """All objects' relocations in one pass: concatenated, a hundred objects cost the
        numpy call overhead of one (per object it was a third of the pass)."""
        ctx = self.relocation_context()
        tables = self.reloc_tables
        if not tables:
            return
        global_table = self._global_symbol_table()
        arrays = [self._symbol_arrays(t.obj, global_table) for t in tables]
        merged = concat_tables(tables)
        # each atom's place in the buffer and its address, from its output section's
        n = len(merged.atoms)
        outputs = list(self.outputs.values())
        out_row = {id(o): i for i, o in enumerate(outputs)}
        out_pos = np.array([image.buf_off.get(o.name, 0) for o in outputs], np.int64)
        out_addr = np.array([o.addr for o in outputs], np.int64)
        oi = np.fromiter(map(out_row.__getitem__, map(id, map(attrgetter("output"), merged.atoms))), np.int64, n)
        value = np.fromiter(map(attrgetter("value"), merged.atoms), np.int64, n)
        alloc = (np.fromiter(map(attrgetter("sh_flags"), merged.atoms), np.uint64, n) & C.SHF_ALLOC) != 0
        atom_pos = out_pos[oi] + value
        atom_addr = np.where(alloc, out_addr[oi] + value, value)
        S, G, Z, lo, hi = (np.concatenate([a[k] for a in arrays]) for k in range(5))
        self._relocate_rows(merged, ctx, image.array, atom_pos, atom_addr, (S, G, Z, lo, hi))

    def relocate(self, t: RelocTable, ctx: RelocContext, buf: np.ndarray, atom_pos: np.ndarray,
                 rows: np.ndarray | None = None) -> None:
        """Apply table `t` (or only its `rows`) into `buf`, where atom i's bytes start at
        `atom_pos[i]`; addresses are the atoms' current addresses."""
        if rows is not None:
            t = select_rows(t, rows)
        atom_addr = np.array([a.address if a.sh_flags & C.SHF_ALLOC else a.value for a in t.atoms], np.int64)
        self._relocate_rows(t, ctx, buf, atom_pos, atom_addr, self._symbol_arrays(t.obj))

    def _relocate_rows(self, t: RelocTable, ctx: RelocContext, buf: np.ndarray, atom_pos: np.ndarray,
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
            self._overflow_error(t, bad, values)
        arch.write_values(buf, pos, kinds, values)

    def _overflow_error(self, t: RelocTable, row: int, values: np.ndarray) -> None:
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

    def _render_synthetic(self, image: OutputImage) -> None:
        o = self.outputs
        buf = image.array

        def put(name, data):
            image.put(o[name], data)

        d = self.dynsyms
        put(".interp", self.interp)
        if ".devlink.id" in o:
            put(".devlink.id", bytes.fromhex(self.link_id))
        put(".dynsym", d.render_dynsym(self.canonical_address, self._dynsym_shndx))
        put(".hash", d.render_hash())
        if d.versions:
            put(".gnu.version", d.render_versym())
            put(".gnu.version_r", d.render_verneed())
        tls_start, _, _, tls_memsz, tls_align = tls_range(self.alloc_sections)
        tp = arch.tls_tp(tls_start, tls_memsz, tls_align)
        got_bytes = self.got.render(self.canonical_address, tp)
        put(".got", got_bytes)
        self._fill_dynamic_relocs()
        if self.rela_dyn.relocs:
            put(".rela.dyn", self.rela_dyn.render())
        if self.rela_plt.relocs:
            put(".rela.plt", self.rela_plt.render(last_types=(arch.DYN_IRELATIVE,)))
        # stubs and cells
        st = o[".plt"]
        sbuf = buf[image.buf_off[st.name]:image.buf_off[st.name] + st.size]
        n = len(self.stubs.stubs)
        if n:
            stub_addrs = st.addr + 8 * np.arange(n, dtype=np.int64)
            cell = np.fromiter([s.cell for s in self.stubs.stubs], np.int64, n)
            cell_addrs = self.cells.addr + 8 * cell
            for k in np.flatnonzero(cell < 0).tolist():     # imports, IFUNCs: their GOT entry
                cell_addrs[k] = self.got.entry_address(self.stubs.stubs[k].slot)
            arch.write_stubs(sbuf, stub_addrs, cell_addrs, st.addr)
        ce = o[".devlink.cells"]
        if self.cells.stub_of:
            # each cell holds its function's entry (`_entry_table` has them by stub)
            self._entry_table()
            targets = self.stub_entry[np.array(self.cells.stub_of, np.int64)].astype("<u8")
            image.put(ce, targets.tobytes())
        st = o[".plt"]
        su = self.stub_unwind
        image.put(su.output, eh_frame.trampoline_cie_fde(su.address, st.addr, st.size + st.room), su.value)
        # .eh_frame_hdr from the relocated .eh_frame
        if ".eh_frame_hdr" in o:
            hdr = o[".eh_frame_hdr"]
            ef = o.get(".eh_frame")
            table = np.zeros((0, 2), np.int64)
            if ef:
                view = image.view(ef)
                for atom in ef.atoms:
                    where = atom.file.name if atom.file is not None else "<linker>"
                    fdes = eh_frame.fde_table(view[atom.value:atom.value + atom.size], atom.address, where)
                    atom.fdes = np.array(fdes, np.int64).reshape(-1, 2)
                table = np.concatenate([table] + [a.fdes for a in ef.atoms])
                table = table[np.lexsort((table[:, 1], table[:, 0]))]   # by location, then FDE
            self.eh_hdr_table = table
            put(".eh_frame_hdr", eh_frame.render_hdr(hdr.addr, ef.addr if ef else 0, table, self.eh_frame_fdes))

        def dyn_value(v):
            if isinstance(v, tuple):
                what, name = v
                if what == "str":
                    return d.dynstr.index[name]
                if what == "addr":
                    return o[name].addr
                if what == "size":
                    return o[name].size
                if what == "sym":
                    sym = self.symtab.globals.get(name)
                    return sym.address() if sym is not None else 0
            return v

        put(".dynamic", self.dynamic.render(dyn_value))
        put(".dynstr", bytes(d.dynstr.buf))

    def _dynsym_shndx(self, sym: Symbol) -> int:
        if sym.flags & SymbolFlags.STUB:
            return self.outputs[".plt"].index
        if sym.atom is not None and sym.atom.output is not None:
            return sym.atom.output.index
        if sym.flags & SymbolFlags.COPY_REL:
            return self.outputs[".bss"].index
        return C.SHN_ABS

    def _build_symtab(self, changed_objects=None, also_globals=(), partial=False):
        """.symtab: locals (per object, then $stub/$got names), then globals.  With
        `changed_objects`, only their blocks and their globals are rebuilt."""
        b = getattr(self, "symtab_builder", None)
        if b is None or changed_objects is None:
            b = self.symtab_builder = SymtabBuilder()
            changed_objects = self.objects
            b.add_globals(self._symtab_global_rows(self.symtab.globals.values()))
        else:
            # the changed objects' definitions, and names they use for the first time
            for obj in changed_objects:
                for sym in obj.symbols[obj.raw.first_global:]:
                    if sym is not None and (sym.file is obj or sym.name not in b.global_index):
                        self._symtab_global(sym)
            changed_names = {o.name for o in changed_objects}
            for sym in also_globals:
                if sym.file is None or sym.file.name not in changed_names:
                    self._symtab_global(sym)
        tls_start = self.tls_start()
        for obj in changed_objects:
            b.object_locals(obj, tls_start)
        b.stubs(self)
        b.got(self, self._got_symbol_name)
        if partial:
            changes = b.render_changes()
            if changes is not None:
                return changes
        linker_rows = [(name, C.STB_LOCAL << 4, C.STV_HIDDEN, C.SHN_ABS, sym.value, 0)
                       for name, sym in self.linker_symbols.items() if self.symtab.referenced_by.get(name)]
        return b.render(linker_rows)

    def _got_symbol_name(self, e) -> str | None:
        if e.symbol.flags & SymbolFlags.PREBOUND:
            return None
        return e.symbol.name + {GotTag.GOTTP: "$gottp", GotTag.IPLT: "$iplt", GotTag.PLT: "$plt"}.get(
            e.tag, "$got" if e.symbol.is_import else "$gotpcrel")

    def _symtab_global(self, sym: Symbol) -> None:
        row = self._symtab_global_rows((sym,))
        if row:
            self.symtab_builder.set_global(row[0][0], row[0][1:])

    def _symtab_global_rows(self, syms) -> list[tuple]:
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
                        tls_start = self.tls_start()
                    value -= tls_start
                add((sym.name, (bind << 4) | sym.type, sym.visibility, out.index, value, sym.size))
            elif sym.shndx == C.SHN_ABS:
                add((sym.name, (bind << 4) | sym.type, sym.visibility, C.SHN_ABS, sym.value, sym.size))
        return rows

    def tls_start(self) -> int:
        return tls_range(self.alloc_sections)[0]

    def _write_headers(self, image: OutputImage, ordered: list[OutputSection]) -> None:
        o = self.outputs
        entry_sym = self.symtab.globals.get(self.options.entry)
        if entry_sym is None or not entry_sym.is_defined:
            raise DevlinkError(f"entry symbol {self.options.entry!r} is not defined; link the C start-up files (do not pass -nostdlib) or define it")
        entry = self.canonical_address(entry_sym)
        phdrs = []
        first = self.segments[0]
        phoff = Elf64_Ehdr.size
        phdrs.append((C.PT_PHDR, C.PF_R, phoff, first.vaddr + phoff, self.num_phdrs * Elf64_Phdr.size, 8))
        it = o[".interp"]
        phdrs.append((C.PT_INTERP, C.PF_R, it.offset, it.addr, it.size, 1))
        loads = []
        for seg in self.segments:
            loads.append((C.PT_LOAD, seg.flags, seg.offset, seg.vaddr, seg.filesz, seg.memsz, 4096))
        dy = o[".dynamic"]
        rows = [(t, f, off, va, sz, sz, al) for (t, f, off, va, sz, al) in phdrs]
        rows += loads
        rows.append((C.PT_DYNAMIC, C.PF_R | C.PF_W, dy.offset, dy.addr, dy.size, dy.size, 8))
        notes = [s for s in self.alloc_sections if s.sh_type == C.SHT_NOTE]
        if notes:
            start, end = notes[0], notes[-1]
            rows.append((C.PT_NOTE, C.PF_R, start.offset, start.addr, end.offset + end.size - start.offset,
                         end.offset + end.size - start.offset, max(s.alignment for s in notes)))
        tls_start, tls_off, tls_filesz, tls_memsz, tls_align = tls_range(self.alloc_sections)
        if any(s.is_tls for s in self.alloc_sections):
            rows.append((C.PT_TLS, C.PF_R, tls_off, tls_start, tls_filesz, tls_memsz, tls_align))
        if ".eh_frame_hdr" in o:
            h = o[".eh_frame_hdr"]
            rows.append((C.PT_GNU_EH_FRAME, C.PF_R, h.offset, h.addr, h.size, h.size, 4))
        rows.append((C.PT_GNU_STACK, C.PF_R | C.PF_W | (C.PF_X if self.exec_stack else 0), 0, 0, 0, 0, 16))
        assert len(rows) == self.num_phdrs, (len(rows), self.num_phdrs)
        for i, (t, f, off, va, fsz, msz, al) in enumerate(rows):
            Elf64_Phdr.pack_into(image.headers, phoff + i * Elf64_Phdr.size, t, f, off, va, va, fsz, msz, al)
        ident = C.ELFMAG + bytes([C.ELFCLASS64, C.ELFDATA2LSB, C.EV_CURRENT, C.ELFOSABI_SYSV]) + bytes(8)
        Elf64_Ehdr.pack_into(image.headers, 0, ident, C.ET_EXEC, C.EM_X86_64, C.EV_CURRENT, entry, phoff, image.shoff, 0,
                             Elf64_Ehdr.size, Elf64_Phdr.size, len(rows), Elf64_Shdr.size, len(ordered) + 1,
                             o[".shstrtab"].index)
        links = {".dynsym": ".dynstr", ".hash": ".dynsym", ".gnu.version": ".dynsym", ".gnu.version_r": ".dynstr",
                 ".rela.dyn": ".dynsym", ".rela.plt": ".dynsym", ".dynamic": ".dynstr", ".symtab": ".strtab"}
        infos = {".gnu.version_r": self.dynsyms.verneed_count(), ".dynsym": 1,
                 ".symtab": o[".symtab"].info, ".rela.plt": o[".got"].index}
        for sec in ordered:
            link = o[links[sec.name]].index if sec.name in links else 0
            info = infos.get(sec.name, 0)
            Elf64_Shdr.pack_into(image.shdrs, sec.index * Elf64_Shdr.size, self._shstr_index(sec), sec.sh_type,
                                 sec.sh_flags, sec.addr, sec.offset, sec.size, link, info, max(sec.alignment, 1),
                                 sec.entsize)

    def _shstr_index(self, sec: OutputSection) -> int:
        data = self.outputs[".shstrtab"].synthetic
        key = sec.name.encode("utf-8", "surrogateescape") + b"\0"
        # names are unique; find the first full match at a string boundary
        pos = 1
        while True:
            pos = data.find(key, pos)
            if pos < 0:
                return 0
            if data[pos - 1] == 0:
                return pos
            pos += 1


#: smallest room a function gets: a tiny function can still grow a little in place
MIN_CODE_CAPACITY = 32
STAMP_MAGIC = b"DEVLINK1"
STAMP_SIZE = 32


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


#: libraries and archives parsed in this process, by path, checked by size and mtime:
#: a session links many times, and libc's symbol table takes ~30 ms to read
_LIBRARY_CACHE: dict[str, tuple[tuple[int, int], object]] = {}


def _library_cache_get(path: str):
    entry = _LIBRARY_CACHE.get(path)
    if entry is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return entry[1] if entry[0] == (st.st_size, st.st_mtime_ns) else None


def _library_cache_put(path: str, value) -> None:
    if path.endswith(".o"):
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    _LIBRARY_CACHE[path] = ((st.st_size, st.st_mtime_ns), value)


def _release_free_memory() -> None:
    """Give the memory a link freed back to the system (glibc keeps it otherwise), so a
    session's footprint is its state, not the link's peak."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _is_call(data, off: int) -> bool:
    """Whether the PC32 field at `off` belongs to a `call rel32` or `jmp rel32`."""
    return off >= 1 and data[off - 1] in (0xE8, 0xE9)


def _compact_objects(objects) -> None:
    """Each object trimmed to what an update needs: its relocation table to the rows an
    update may apply again, its bytes to code and data (ObjectFile.compact)."""
    for obj in objects:
        if obj.table is not None:
            obj.table = trimmed(obj.table)
        obj.compact()


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


def link_executable(inputs: list[str], output: str, libs: list[str] = (), lib_dirs: list[str] = (),
                    export_dynamic: bool = False, cc: str | None = None) -> None:
    """Link `inputs` (objects, archives, shared libraries) and `-l` `libs` into `output`."""
    from devlink.output.writer import write_file
    items = list(inputs) + [l if l.startswith("-l") else "-l" + l for l in libs]
    opts = LinkOptions(output=output, inputs=items, lib_dirs=list(lib_dirs), export_dynamic=export_dynamic, cc=cc)
    # the collector stays off until the file is written: re-enabled right after the
    # link, its first pass would scan the whole link state (~20 ms at 10,000 functions)
    with collector_paused():
        linker = Linker(opts)
        image = linker.link()
        write_file(output, image)
        linker.discard()

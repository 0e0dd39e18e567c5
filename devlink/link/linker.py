"""The link pipeline: `Linker._link` reads as the list of its passes, one call each,
with a line saying why it stands there (as Zig's `Elf.flush` and mold's `main.cc`).

Each pass lives in the module of its concept, as a function of the `Linker` (the link's
state, which this module defines):

    load.py            inputs: start-up objects, the command line, default libraries
    resolve.py         symbol resolution, archive members, shared libraries
    linker_defined.py  names the linker defines (_DYNAMIC, __init_array_start...)
    output_section.py  which output section every input section goes to
    stubs.py           stubs and cells: every function's canonical address
    scan.py            the relocation scan: kinds, GOT entries, imports, relaxations
    dynamic.py         what ld.so reads: .dynsym, versions, .rela.*, .dynamic, .got
    unwind.py          the stubs' unwind entry, the terminator and .eh_frame_hdr
    layout.py          addresses and file offsets (pure arithmetic)
    relocate.py        applying relocation tables to the image
    symtab.py          the output's .symtab
    render.py          the image: bytes, synthetic sections, headers

Passes work on in-memory records; only `devlink.output.writer` touches the output file.
"""

from __future__ import annotations

import dataclasses
import gc
import os
from dataclasses import dataclass, field

from devlink.collector import collector_paused
from devlink.link import render as render_pass, relocate as relocate_pass, stubs as stubs_pass, symtab as symtab_pass
from devlink.link.atom import Atom
from devlink.link.dynamic import prebind_library_functions, size_dynamic_sections
from devlink.link.layout import MIN_CODE_CAPACITY, assign_addresses, tls_range
from devlink.link.linker_defined import LINKER_DEFINED, LINKER_FILE, LinkerFile, define_linker_symbols
from devlink.link.load import load_inputs
from devlink.link.object_file import ObjectFile, SharedObject
from devlink.link.output_section import OutputSection, assign_output_sections
from devlink.link.relocs import RelocContext, RelocTable, trimmed
from devlink.link.resolve import SymbolTable, check_undefined, resolve_symbols
from devlink.link.scan import scan_object as _scan_object, scan_relocations
from devlink.link.stubs import create_stubs, function_definitions, size_patch_sections, stub_key
from devlink.link.symbol import Symbol, SymbolExtras, SymbolFlags
from devlink.link.synthetic import CellSection, DynamicSection, DynamicSymbols, GotSection, RelaDyn, StubSection
from devlink.link.toolchain import Toolchain, discover_toolchain
from devlink.link.unwind import size_unwind_sections
from devlink.output.image import OutputImage

#: names other modules (and link states saved before the split: LinkerFile) take from here
__all__ = ["LINKER_DEFINED", "LINKER_FILE", "LinkOptions", "Linker", "LinkerFile", "MIN_CODE_CAPACITY",
           "function_definitions", "link_executable", "stub_key"]


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
        #: an update had no room for an object's debug info and left it out of the
        #: file; the next start relinks from scratch (see IncrementalUpdate)
        self.debug_incomplete = False
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
        load_inputs(self)
        # Bind each name to one definition, pulling archive members and libraries in.
        resolve_symbols(self)
        # Names no input defines but C programs use (_DYNAMIC, __init_array_start...).
        define_linker_symbols(self)
        # Report undefined symbols before anything depends on them.
        check_undefined(self)
        # Every input section gets its output section; COMMON symbols become .bss atoms.
        assign_output_sections(self)
        # Every function entry gets a stub and a mutable cell: the canonical address
        # (invariant 1), decided before relocations so they can be pointed at it.
        create_stubs(self)
        # Relocations decide GOT entries, imports, copy relocations and relaxations.
        scan_relocations(self)
        # Every function and variable the needed libraries export gets a GOT entry
        # bound at start, so an edit that calls a libc function the program never
        # called before (or reads stdout) needs no new dynamic symbol.
        prebind_library_functions(self)
        # Dynamic-linking tables are sized now that imports and exports are known.
        size_dynamic_sections(self)
        # Stubs, cells and the link id: the sections the hot patcher works on.
        size_patch_sections(self)
        # The stubs' own unwind entry and .eh_frame_hdr, sized from the FDE count.
        size_unwind_sections(self)
        # Addresses and file offsets for every section (pure arithmetic).
        assign_addresses(self)
        # Bytes: atoms copied, relocations applied, synthetic sections rendered.
        return render_pass.render(self)

    # --- the state's sections -----------------------------------------------------------
    def output_section(self, name: str, sh_type: int, flags: int) -> OutputSection:
        """The output section `name`, created on first use."""
        out = self.outputs.get(name)
        if out is None:
            out = self.outputs[name] = OutputSection(name, sh_type, flags)
        return out

    def synthetic_section(self, name: str, sh_type: int, flags: int, size: int, align: int,
                          entsize: int = 0) -> OutputSection:
        """An output section whose bytes the linker makes (rendered after layout)."""
        out = self.output_section(name, sh_type, flags)
        out.size = size
        out.alignment = align
        out.entsize = entsize
        out.synthetic = True
        return out

    # --- addresses ----------------------------------------------------------------------
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

    def tls_start(self) -> int:
        return tls_range(self.alloc_sections)[0]

    # --- what incremental updates use (devlink/link/incremental.py) ----------------------
    def scan_object(self, obj, global_masks=None) -> RelocTable | None:
        return _scan_object(self, obj, global_masks)

    def relocation_context(self, objects=None) -> RelocContext:
        return relocate_pass.relocation_context(self, objects)

    def relocate(self, t, ctx, buf, atom_pos, rows=None) -> None:
        relocate_pass.relocate(self, t, ctx, buf, atom_pos, rows)

    def set_stub_entry(self, index: int, addr: int) -> None:
        stubs_pass.set_stub_entry(self, index, addr)

    def stamp_bytes(self) -> bytes:
        return render_pass.stamp_bytes(self)

    def _write_headers(self, image: OutputImage, ordered: list[OutputSection]) -> None:
        render_pass.write_headers(self, image, ordered)

    def _build_symtab(self, changed_objects=None, also_globals=(), partial=False):
        return symtab_pass.build_symtab(self, changed_objects, also_globals, partial)

    # --- after the link -----------------------------------------------------------------
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


def _release_free_memory() -> None:
    """Give the memory a link freed back to the system (glibc keeps it otherwise), so a
    session's footprint is its state, not the link's peak."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _compact_objects(objects) -> None:
    """Each object trimmed to what an update needs: its relocation table to the rows an
    update may apply again, its bytes to code and data (ObjectFile.compact)."""
    for obj in objects:
        if obj.table is not None:
            obj.table = trimmed(obj.table)
        obj.compact()


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

"""Output sections: named runs of atoms (or synthetic contents) with an address, and
the pass that gives every input section its output section (the rules are in
`sections.py`)."""

from __future__ import annotations

from devlink.elf import consts as C
from devlink.errors import DevlinkError
from devlink.link import eh_frame, sections as S
from devlink.link.atom import Atom
from devlink.link.object_file import ObjectFile


class OutputSection:
    __slots__ = ("name", "sh_type", "sh_flags", "alignment", "atoms", "size", "addr", "offset",
                 "index", "entsize", "link", "info", "synthetic", "segment", "room", "limit",
                 "free")

    def __init__(self, name: str, sh_type: int, sh_flags: int, alignment: int = 1):
        self.name = name
        self.sh_type = sh_type
        self.sh_flags = sh_flags
        self.alignment = alignment
        #: the atoms placed here, in address order
        self.atoms: list = []
        #: bytes used (content, or zero fill for NOBITS)
        self.size = 0
        #: virtual address (0 for non-allocated sections)
        self.addr = 0
        #: file offset
        self.offset = 0
        #: index in the output's section header table
        self.index = 0
        self.entsize = 0
        #: sh_link / sh_info (as output section objects or ints, resolved at write time)
        self.link = 0
        self.info = 0
        #: the synthetic section object that computes this section's bytes, if any
        self.synthetic = None
        #: the Segment it belongs to (allocated sections only)
        self.segment = None
        #: virtual room reserved after `size` for growth during a session
        self.room = 0
        #: bytes from `addr` the section may grow to (size + room at the first link)
        self.limit = 0
        #: freed (offset, capacity) ranges that an update may reuse
        self.free: list[tuple[int, int]] = []

    @property
    def is_alloc(self) -> bool:
        return bool(self.sh_flags & C.SHF_ALLOC)

    @property
    def is_nobits(self) -> bool:
        return self.sh_type == C.SHT_NOBITS

    @property
    def is_tls(self) -> bool:
        return bool(self.sh_flags & C.SHF_TLS)

    def __repr__(self) -> str:
        return f"OutputSection({self.name}, addr={self.addr:#x}, size={self.size:#x})"


def assign_output_sections(linker) -> None:
    mask = ~(C.SHF_GROUP | C.SHF_MERGE | C.SHF_STRINGS | C.SHF_INFO_LINK | C.SHF_LINK_ORDER)
    output_name = S.output_name
    array_types = {".init_array": C.SHT_INIT_ARRAY, ".fini_array": C.SHT_FINI_ARRAY,
                   ".preinit_array": C.SHT_PREINIT_ARRAY}
    outputs = linker.outputs
    for obj in linker.objects:
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
                out = linker.output_section(name, sh_type, flags)
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
    # a program with debug info has every DWARF section an object may come to need
    # (empty until one does), so an update never needs a new section header
    if ".debug_info" in outputs:
        for name in S.DEBUG_SECTIONS:
            linker.output_section(name, C.SHT_PROGBITS, 0)
    # COMMON symbols: each gets a zero-filled atom in .bss
    for sym in linker.symtab.globals.values():
        if isinstance(sym.file, ObjectFile) and sym.shndx == C.SHN_COMMON:
            atom = Atom(None, 0, "COMMON." + sym.name, C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE,
                        sym.size, max(sym.value, 1), memoryview(b""), None)
            out = linker.output_section(".bss", C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE)
            out.alignment = max(out.alignment, atom.alignment)
            atom.output = out
            out.atoms.append(atom)
            sym.atom = atom
            sym.value = 0
    for name in (".init_array", ".fini_array", ".preinit_array"):
        out = linker.outputs.get(name)
        if out:
            out.atoms.sort(key=lambda a: (a.priority, a.input_order))
    # .eh_frame: count FDEs now so the search table can be sized before layout
    out = linker.outputs.get(".eh_frame")
    if out:
        linker.eh_frame_fdes = sum(eh_frame.count_fdes(a.data, a.file.name) for a in out.atoms)

"""Atoms: the bytes of one input section, placed in one output section.

An atom has an address (its output section's address + `value`), a `size`, and a
`capacity`: the room it owns in its output section, so that an edited function that
grew a little can go back into the same place (Zig's `padToIdeal`).
"""

from __future__ import annotations

import numpy as np

from devlink.elf import consts as C


def pad_to_ideal(size: int) -> int:
    """Room an atom of `size` bytes gets: size + size/3, as Zig's linker does."""
    return size + size // 3


class Atom:
    __slots__ = ("file", "shndx", "name", "sh_type", "sh_flags", "size", "alignment",
                 "capacity", "output", "value", "relocs", "alive", "data", "priority",
                 "input_order", "fdes", "generation", "fresh", "slot", "offset")

    def __init__(self, file, shndx: int, name: str, sh_type: int, sh_flags: int, size: int,
                 alignment: int, data: memoryview, relocs: np.ndarray | None):
        #: the ObjectFile the bytes come from (None for linker-made atoms, e.g. COMMON)
        self.file = file
        #: section index in that file
        self.shndx = shndx
        #: input section name (".text.main", ".rodata.str1.1", ...)
        self.name = name
        self.sh_type = sh_type
        self.sh_flags = sh_flags
        #: bytes of content (or of zero fill for SHT_NOBITS)
        self.size = size
        #: required alignment (power of two, at least 1)
        self.alignment = max(alignment, 1)
        #: bytes reserved for it in the output section (>= size)
        self.capacity = size
        #: the OutputSection it was placed in
        self.output = None
        #: offset within the output section
        self.value = 0
        #: RELA records applying to this atom (RELA_DTYPE), or None
        self.relocs = relocs
        #: False for discarded sections (duplicate COMDAT groups)
        self.alive = True
        #: the section contents (empty for NOBITS): a view into the object's bytes, or
        #: bytes of its own once the object is compacted
        self.data = data
        #: init/fini priority (from `.init_array.NNNNN`), 65536 when none
        self.priority = 65536
        #: position in link order, for the stable sort of .init_array/.fini_array/
        #: .preinit_array (0 for other atoms: nothing sorts them by it)
        self.input_order = 0
        #: for an .eh_frame atom: (initial location, FDE address) of its FDEs
        self.fdes = None
        #: the generation that last changed these bytes
        self.generation = 1
        #: placed in room nothing used before (writing it changes no running code)
        self.fresh = False
        #: index in its output section's atom list (replaced in O(1) by an update)
        self.slot = -1
        #: where the bytes are in the file's `raw.data` (the section header is not kept;
        #: 0 for linker-made atoms and once the object is compacted).  Free: the
        #: 19-field atom left 8 bytes of its 192-byte allocation unused
        self.offset = 0

    def __getstate__(self):
        state = {k: getattr(self, k) for k in self.__slots__}
        # bytes of an input section are a view into its object, restored on load; a
        # compacted object's atoms own their bytes (see ObjectFile.compact)
        if self.file is None:
            state["data"] = bytes(self.data)
        elif not isinstance(self.data, bytes):
            state["data"] = None
        return state

    def __setstate__(self, state):
        for k, v in state.items():
            setattr(self, k, v)
        if self.data is not None and self.file is None:
            self.data = memoryview(self.data)

    @property
    def address(self) -> int:
        return self.output.addr + self.value

    @property
    def is_nobits(self) -> bool:
        return self.sh_type == C.SHT_NOBITS

    def __repr__(self) -> str:
        fname = self.file.name if self.file is not None else "<linker>"
        return f"Atom({fname}:{self.name}, size={self.size})"

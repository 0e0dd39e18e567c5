"""Output sections: named runs of atoms (or synthetic contents) with an address."""

from __future__ import annotations

from devlink.elf import consts as C


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

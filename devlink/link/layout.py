"""Address and file-offset assignment: pure arithmetic over output sections.

Every allocated output section gets an address and a file offset; sections of one
segment class share one `PT_LOAD`.  Room reserved after a section (`room`) is both
virtual and file-backed (a sparse hole), so code room stays read+execute and a later
update can append without moving anything.  `assign_addresses` is the full link's pass:
atoms placed in their sections with room to grow, then sections in segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devlink.elf import consts as C
from devlink.elf.records import Elf64_Ehdr, Elf64_Phdr
from devlink.link import sections as S
from devlink.link.debug_pad import plan_debug_padding
from devlink.link.shared_ints import indexes

PAGE = 4096
BASE_ADDRESS = 0x400000
#: sections whose reserved room ends on a page boundary (the patch area maps it)
PAGE_END_ROOM = (".text", ".plt")


def align_up(v: int, a: int) -> int:
    return (v + a - 1) & ~(a - 1) if a > 1 else v


@dataclass
class Segment:
    """One PT_LOAD."""

    seg_class: int
    flags: int
    sections: list = field(default_factory=list)
    offset: int = 0
    vaddr: int = 0
    filesz: int = 0
    memsz: int = 0


SEG_FLAGS = {0: C.PF_R, 1: C.PF_R | C.PF_X, 2: C.PF_R | C.PF_X, 3: C.PF_R, 4: C.PF_R | C.PF_W,
             5: C.PF_R | C.PF_W}


def layout(alloc_sections: list, placements: dict, nonalloc_sections: list, num_phdrs: int,
           base: int = BASE_ADDRESS) -> tuple[list[Segment], int]:
    """Assign addresses and offsets. Returns the PT_LOAD segments and the end of the file
    contents (where the section header table may go)."""
    headers = Elf64_Ehdr.size + num_phdrs * Elf64_Phdr.size
    segments: list[Segment] = []
    off = 0
    vaddr = base
    current: Segment | None = None
    for sec in alloc_sections:
        seg_class = placements[sec.name]
        if current is None or current.seg_class != seg_class:
            if current is not None:
                vaddr = align_up(vaddr, PAGE)
                off = align_up(off, PAGE)
            current = Segment(seg_class, SEG_FLAGS[seg_class], offset=off, vaddr=vaddr)
            segments.append(current)
            if len(segments) == 1:
                off += headers
                vaddr += headers
        align = max(sec.alignment, 1)
        if sec.name == ".devlink.cells":
            align = max(align, PAGE)
        if sec.is_tls and sec.is_nobits:
            # .tbss takes no room in the segment: it only extends PT_TLS's memsz
            sec.addr = align_up(vaddr, align)
            sec.offset = off
            current.sections.append(sec)
            sec.segment = current
            continue
        pad = align_up(vaddr, align) - vaddr
        vaddr += pad
        sec.addr = vaddr
        if sec.name in PAGE_END_ROOM and sec.room:
            # code room ends on a page: the shared patch area maps it whole (invariant 5)
            sec.room = align_up(sec.addr + sec.size + sec.room, PAGE) - sec.addr - sec.size
        if sec.is_nobits:
            sec.offset = off
            vaddr += sec.size + sec.room
        else:
            off += pad
            sec.offset = off
            off += sec.size + sec.room
            vaddr += sec.size + sec.room
        if sec.name == ".devlink.cells":
            end = align_up(sec.addr + sec.size, PAGE)
            off += end - vaddr
            vaddr = end
        current.sections.append(sec)
        sec.segment = current
    for seg in segments:
        last_file = seg.offset
        last_mem = seg.vaddr
        for sec in seg.sections:
            if sec.is_tls and sec.is_nobits:
                continue
            if not sec.is_nobits:
                last_file = max(last_file, sec.offset + sec.size + sec.room)
            last_mem = max(last_mem, sec.addr + sec.size + sec.room)
        seg.filesz = last_file - seg.offset
        seg.memsz = last_mem - seg.vaddr
        if seg.seg_class == 5:
            seg.filesz = seg.memsz = align_up(seg.memsz, PAGE)
    off = max(off, max((s.offset + s.filesz for s in segments), default=0))
    for sec in nonalloc_sections:
        off = align_up(off, max(sec.alignment, 1))
        sec.offset = off
        sec.addr = 0
        off += sec.size
    return segments, off


def tls_range(alloc_sections: list) -> tuple[int, int, int, int, int]:
    """(vaddr, offset, filesz, memsz, align) of PT_TLS, or zeros if no TLS."""
    tls = [s for s in alloc_sections if s.is_tls]
    if not tls:
        return 0, 0, 0, 0, 0
    start = tls[0].addr
    align = max(s.alignment for s in tls)
    data = [s for s in tls if not s.is_nobits]
    filesz = (data[-1].addr + data[-1].size - start) if data else 0
    memsz = max(s.addr + s.size + s.room for s in tls) - start
    return start, tls[0].offset, filesz, memsz, align


#: smallest room a function gets: a tiny function can still grow a little in place
MIN_CODE_CAPACITY = 32


def assign_addresses(linker) -> None:
    plan_debug_padding(linker)
    for out in linker.outputs.values():
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
    for o in linker.outputs.values():
        if o.is_alloc:
            o.room = S.room_for(o.name, o.size)
    tls = [o for o in linker.outputs.values() if o.is_tls]
    if not tls:
        # an empty TLS block with slack, so a first thread-local variable can come later
        tbss = linker.output_section(".tbss", C.SHT_NOBITS, C.SHF_ALLOC | C.SHF_WRITE | C.SHF_TLS)
        tbss.alignment = 8
        tls = [tbss]
    tls_memsz = sum(o.size for o in tls)
    # the slack goes after the zero-filled part (any TLS output, if there is none)
    last_tls = next((o for o in tls if o.name == ".tbss"), tls[-1])
    last_tls.room = S.tls_slack(tls_memsz)
    alloc = [o for o in linker.outputs.values() if o.is_alloc]
    placements = {}
    keyed = []
    for i, o in enumerate(alloc):
        seg, key = S.placement(o.name, o.sh_flags, o.sh_type)
        placements[o.name] = seg
        keyed.append((seg, key, i, o))
    keyed.sort(key=lambda t: (t[0], t[1], t[2]))
    alloc = [t[3] for t in keyed]
    nonalloc = sorted((o for o in linker.outputs.values() if not o.is_alloc), key=lambda o: o.name)
    linker.placements = placements
    nload = len({placements[o.name] for o in alloc})
    has_tls = any(o.is_tls for o in alloc)
    has_note = any(o.sh_type == C.SHT_NOTE for o in alloc)
    linker.num_phdrs = 1 + 1 + nload + 1 + (1 if has_note else 0) + (1 if has_tls else 0) + \
        (1 if ".eh_frame_hdr" in linker.outputs else 0) + 1
    linker.segments, linker.content_end = layout(alloc, placements, [], linker.num_phdrs)
    linker.alloc_sections = alloc
    linker.nonalloc_sections = nonalloc
    for o in alloc:
        o.limit = o.size + o.room     # growth stops here (bytes from o.addr)
        o.free = []                   # (offset, capacity) of freed atoms
    linker.got.addr = linker.outputs[".got"].addr
    linker.stubs.addr = linker.outputs[".plt"].addr
    linker.cells.addr = linker.outputs[".devlink.cells"].addr

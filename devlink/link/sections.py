"""Which output section each input section goes to, and the output's section order.

The rules are GNU ld's default script for executables, reduced to what C programs use.
"""

from __future__ import annotations

import re

from devlink.elf import consts as C

_PRIORITY = re.compile(r"^\.(init|fini|preinit)_array\.(\d+)$|^\.(ctors|dtors)\.(\d+)$")


def output_name(name: str, sh_type: int, flags: int) -> str:
    """The output section an input section belongs to."""
    if flags & C.SHF_ALLOC == 0:
        return name
    if flags & C.SHF_TLS:
        return ".tbss" if sh_type == C.SHT_NOBITS else ".tdata"
    if name == ".text" or name.startswith(".text."):
        return ".text"
    if name in (".init", ".fini"):
        return name
    if name.startswith(".init_array") or sh_type == C.SHT_INIT_ARRAY:
        return ".init_array"
    if name.startswith(".fini_array") or sh_type == C.SHT_FINI_ARRAY:
        return ".fini_array"
    if name.startswith(".preinit_array") or sh_type == C.SHT_PREINIT_ARRAY:
        return ".preinit_array"
    if name.startswith(".data.rel.ro"):
        return ".data.rel.ro"
    if name == ".rodata" or name.startswith(".rodata."):
        return ".rodata"
    if name.startswith(".gcc_except_table"):
        return ".gcc_except_table"
    if name == ".eh_frame":
        return ".eh_frame"
    if name == ".bss" or name.startswith(".bss.") or sh_type == C.SHT_NOBITS:
        return ".bss"
    if name == ".data" or name.startswith(".data.") or name == ".tm_clone_table":
        return ".data"
    if name.startswith(".note"):
        return name
    # a user section (__attribute__((section("x")))) keeps its name, so __start_x works
    if flags & C.SHF_EXECINSTR:
        return name if _c_ident(name) else ".text"
    if flags & C.SHF_WRITE:
        return name if _c_ident(name) else ".data"
    return name if _c_ident(name) else ".rodata"


def _c_ident(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name))


def init_priority(name: str) -> int:
    m = _PRIORITY.match(name)
    if not m:
        return 65536
    return int(m.group(2) or m.group(4))


#: segment classes, in address order
SEG_RO_HEAD = 0      # headers and dynamic-linking tables
SEG_TEXT = 1         # code
SEG_STUBS = 2        # function stubs (code that never changes)
SEG_RODATA = 3       # read-only data, unwind tables
SEG_DATA = 4         # writable data
SEG_CELLS = 5        # mutable GOT cells (shared patch area)

#: fixed order within the output, by output section name
ORDER = [
    (".interp", SEG_RO_HEAD), (".note.ABI-tag", SEG_RO_HEAD), (".hash", SEG_RO_HEAD),
    (".dynsym", SEG_RO_HEAD), (".dynstr", SEG_RO_HEAD), (".gnu.version", SEG_RO_HEAD),
    (".gnu.version_r", SEG_RO_HEAD), (".rela.dyn", SEG_RO_HEAD), (".rela.plt", SEG_RO_HEAD),
    (".devlink.id", SEG_RO_HEAD),
    (".init", SEG_TEXT), (".fini", SEG_TEXT), (".text", SEG_TEXT),
    (".plt", SEG_STUBS),
    (".rodata", SEG_RODATA), (".eh_frame_hdr", SEG_RODATA), (".eh_frame", SEG_RODATA),
    (".gcc_except_table", SEG_RODATA),
    (".tdata", SEG_DATA), (".tbss", SEG_DATA), (".preinit_array", SEG_DATA),
    (".init_array", SEG_DATA), (".fini_array", SEG_DATA), (".data.rel.ro", SEG_DATA),
    (".dynamic", SEG_DATA), (".got", SEG_DATA), (".data", SEG_DATA), (".bss", SEG_DATA),
    (".devlink.cells", SEG_CELLS),
]
ORDER_INDEX = {name: i for i, (name, _) in enumerate(ORDER)}
SEGMENT_OF = dict(ORDER)


def placement(name: str, flags: int, sh_type: int) -> tuple[int, int]:
    """(segment class, sort key) of an allocated output section."""
    if name in ORDER_INDEX:
        return SEGMENT_OF[name], ORDER_INDEX[name] * 10
    if flags & C.SHF_EXECINSTR:
        return SEG_TEXT, ORDER_INDEX[".text"] * 10 + 1
    if flags & C.SHF_WRITE:
        if sh_type == C.SHT_NOBITS:
            return SEG_DATA, ORDER_INDEX[".bss"] * 10 - 1
        return SEG_DATA, ORDER_INDEX[".data"] * 10 + 1
    if name.startswith(".note"):
        return SEG_RO_HEAD, ORDER_INDEX[".note.ABI-tag"] * 10 + 1
    return SEG_RODATA, ORDER_INDEX[".rodata"] * 10 + 1


KiB = 1024
MiB = 1024 * KiB

#: virtual room reserved after each growable section: (minimum, factor of its size).
#: Room is file-backed but sparse (a hole), so code room stays read+execute and costs
#: no disk; sections never move during a session, they grow into their room.
ROOM_POLICY = {
    ".text": (4 * MiB, 2.0),
    ".plt": (64 * KiB, 1.0),
    ".devlink.cells": (64 * KiB, 1.0),
    ".rodata": (512 * KiB, 1.0),
    ".data.rel.ro": (64 * KiB, 1.0),
    ".data": (512 * KiB, 1.0),
    ".bss": (4 * MiB, 1.0),
    ".got": (16 * KiB, 0.5),
    ".eh_frame": (256 * KiB, 1.0),
    ".eh_frame_hdr": (64 * KiB, 1.0),
}
#: thread-local slack: a new zero-initialised TLS variable fits without changing the
#: TLS block's size, so no existing variable's offset from the thread pointer moves
TLS_SLACK = (256, 0.25)


#: file room after each debug section, for the debug pieces of an object an update adds
#: and of a compile unit that outgrew its room (an -O2 edit that makes a function's
#: location lists grow).  Not loaded, and a hole in the file until used: it costs
#: neither memory nor disk blocks.
DEBUG_ROOM = (64 * KiB, 1.0)

#: the DWARF sections gcc and clang emit outside split DWARF
DEBUG_SECTIONS = (".debug_abbrev", ".debug_addr", ".debug_aranges", ".debug_info", ".debug_line",
                  ".debug_line_str", ".debug_loc", ".debug_loclists", ".debug_macro", ".debug_ranges",
                  ".debug_rnglists", ".debug_str", ".debug_str_offsets")


def debug_room(size: int) -> int:
    minimum, factor = DEBUG_ROOM
    return max(minimum, int(size * factor))


def room_for(name: str, size: int) -> int:
    policy = ROOM_POLICY.get(name)
    if policy is None:
        return 0
    minimum, factor = policy
    room = max(minimum, int(size * factor))
    return (room + 4095) & ~4095


def tls_slack(memsz: int) -> int:
    minimum, factor = TLS_SLACK
    return (max(minimum, int(memsz * factor)) + 63) & ~63

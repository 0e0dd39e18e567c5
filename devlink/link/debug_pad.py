"""Room inside debug sections, so an edited object's DWARF can be rewritten in place.

Debug sections are walked sequentially by readers (gdb, readelf, pyelftools), so free
bytes must stay valid DWARF.  Each object's piece of a debug section gets capacity
(size + size/3); the padding joins the piece's last *unit* by growing its unit_length,
and is made of bytes that mean nothing there: in .debug_info one vendor DIE
(DW_TAG_lo_user holding a DW_FORM_block) as the compile unit's last child, whose
abbreviation is added to the object's .debug_abbrev piece (null DIEs at the top level
make readelf warn); (0, 0) tuples in .debug_aranges; end-of-list entries in range and
location lists; DW_LNS_negate_stmt in a line program (no row is emitted); NULs in string
and abbreviation tables.  Pure: the full link plans the room (`plan_debug_padding`) and
fills it in the image (`pad_debug`).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from devlink.elf import consts as C
from devlink.elf.leb128 import read_uleb as _read_uleb, uleb, uleb_width

if TYPE_CHECKING:
    from devlink.link.atom import Atom
    from devlink.output.image import OutputImage

#: section -> (is made of units, padding byte)
PADDING = {
    ".debug_info": (True, None),       # a padding DIE, see pad_info
    ".debug_aranges": (True, 0x00),
    ".debug_rnglists": (True, 0x00),
    ".debug_loclists": (True, 0x00),
    ".debug_line": (True, 0x06),       # DW_LNS_negate_stmt: changes no row
    ".debug_abbrev": (False, 0x00),
    ".debug_str": (False, 0x00),
    ".debug_line_str": (False, 0x00),
}


def debug_capacity(name: str, size: int) -> int:
    """Room an object's piece of debug section `name` gets (= size if it cannot pad)."""
    if name not in PADDING or size == 0:
        return size
    # debug info grows faster than code when a function grows (locations, lines):
    # half again, and some bytes for small objects
    return (size + size // 2 + 256 + 3) & ~3


def last_unit_offset(data, size: int) -> int | None:
    """Offset of the last unit of a piece made of 32-bit DWARF units, or None."""
    off = 0
    last = None
    while off + 4 <= size:
        length = struct.unpack_from("<I", data, off)[0]
        if length >= 0xFFFFFFF0 or off + 4 + length > size:
            return None            # 64-bit DWARF or malformed: do not pad
        last = off
        off += 4 + length
    return last if off == size else None


def pad_piece(name: str, buf: bytearray | memoryview, size: int, capacity: int) -> bool:
    """Fill buf[size:capacity] with padding valid for section `name` (buf holds the
    relocated piece). Returns False if this piece cannot be padded."""
    if capacity == size:
        return True
    rule = PADDING.get(name)
    if rule is None:
        return False
    units, byte = rule
    if byte is None:
        return False               # .debug_info: pad_info, with its abbreviation
    if units:
        last = last_unit_offset(buf, size)
        if last is None:
            return False
        length = struct.unpack_from("<I", buf, last)[0]
        struct.pack_into("<I", buf, last, length + capacity - size)
    buf[size:capacity] = bytes([byte]) * (capacity - size)
    return True


DW_TAG_lo_user = 0x4080
DW_AT_lo_user = 0x2000
DW_FORM_block = 0x09
MIN_INFO_PAD = 4


def abbrev_table_end(data, size: int) -> tuple[int, int] | None:
    """(offset of the terminating 0 code, highest code) of the abbreviation table that
    starts a piece, or None if it is not one well-formed table.  Remembered by content:
    an edit seldom changes an object's abbreviations, and walking them costs ms."""
    key = bytes(data[:size])
    hit = _ABBREV_ENDS.get(key)
    if hit is None:
        hit = _ABBREV_ENDS[key] = (_abbrev_table_end(data, size),)
        while len(_ABBREV_ENDS) > 64:
            del _ABBREV_ENDS[next(iter(_ABBREV_ENDS))]
    return hit[0]


_ABBREV_ENDS: dict[bytes, tuple] = {}


def _abbrev_table_end(data, size: int) -> tuple[int, int] | None:
    off = 0
    top = 0
    try:
        while off < size:
            code, off = _read_uleb(data, off)
            if code == 0:
                return off - 1, top
            top = max(top, code)
            _, off = _read_uleb(data, off)       # tag
            off += 1                              # children
            while True:
                name, off = _read_uleb(data, off)
                form, off = _read_uleb(data, off)
                if form == 0x21:                  # DW_FORM_implicit_const: an sleb follows
                    while data[off] & 0x80:
                        off += 1
                    off += 1
                if name == 0 and form == 0:
                    break
    except IndexError:
        return None
    return None


def padding_abbrev(code: int) -> bytes:
    """code: DW_TAG_lo_user, no children, (DW_AT_lo_user, DW_FORM_block); then the
    table's terminator."""
    return uleb(code) + uleb(DW_TAG_lo_user) + b"\x00" + uleb(DW_AT_lo_user) + uleb(DW_FORM_block) + b"\x00\x00" + b"\x00"


def padding_die(code: int, total: int) -> bytes:
    """A DIE of exactly `total` bytes using abbreviation `code`: the block's length is
    written with as many bytes as make the sizes meet."""
    head = uleb(code)
    for width in range(1, 6):
        n = total - len(head) - width
        if n >= 0 and n < (1 << (7 * width)):
            return head + uleb_width(n, width) + bytes(n)
    raise ValueError(total)


def pad_info(buf, size: int, capacity: int, code: int) -> bool:
    """Grow the piece's last compile unit to `capacity` with a padding DIE placed just
    before the root DIE's end-of-children marker."""
    pad = capacity - size
    if pad == 0:
        return True
    last = last_unit_offset(buf, size)
    if last is None or pad < MIN_INFO_PAD or buf[size - 1] != 0:
        return False
    length = struct.unpack_from("<I", buf, last)[0]
    struct.pack_into("<I", buf, last, length + pad)
    buf[size - 1:capacity - 1] = padding_die(code, pad)
    buf[capacity - 1] = 0
    return True


def plan_info_padding(info_data, info_size: int, abbrev_data, abbrev_size: int):
    """(info capacity, abbrev capacity, padding abbreviation code, end of the abbreviation
    table) for one object whose
    .debug_info is a single unit using the abbreviation table at the start of its
    .debug_abbrev piece; None when the object's DWARF has another shape."""
    if info_size == 0 or last_unit_offset(info_data, info_size) != 0 or info_data[info_size - 1] != 0:
        return None
    end = abbrev_table_end(abbrev_data, abbrev_size)
    if end is None:
        return None
    term, top = end
    code = top + 1
    extra = len(padding_abbrev(code))
    info_cap = max(debug_capacity(".debug_info", info_size), info_size + MIN_INFO_PAD)
    abbrev_cap = max(debug_capacity(".debug_abbrev", abbrev_size), term + extra)
    return info_cap, abbrev_cap, code, term


def apply_info_padding(info_buf, info_size: int, info_cap: int, abbrev_buf, abbrev_size: int,
                       abbrev_cap: int, code: int, term: int | None = None) -> None:
    """Write the padding abbreviation, then the padding DIE (buffers span capacities).
    `term`: where the abbreviation table ends, if the caller knows."""
    if term is None:
        term, _ = abbrev_table_end(abbrev_buf, abbrev_size)
    pa = padding_abbrev(code)
    abbrev_buf[term:abbrev_cap] = bytes(abbrev_cap - term)
    abbrev_buf[term:term + len(pa)] = pa
    pad_info(info_buf, info_size, info_cap, code)


def plan_piece(atom) -> None:
    """Capacity for a debug piece other than .debug_info/.debug_abbrev (see plan_info)."""
    if atom.name in PADDING:
        units = PADDING[atom.name][0]
        if not units or last_unit_offset(atom.data, atom.size) is not None:
            atom.capacity = debug_capacity(atom.name, atom.size)


def plan_info(info, abbrev) -> tuple | None:
    """Capacity for an object's .debug_info and .debug_abbrev pieces; the padding plan
    (info, abbrev, abbreviation code, table end), or None if they cannot pad."""
    plan = plan_info_padding(info.data, info.size, abbrev.data, abbrev.size)
    if plan is None:
        return None
    info.capacity, abbrev.capacity, code, term = plan
    return info, abbrev, code, term


def plan_object(atoms) -> tuple | None:
    """Give one object's debug pieces (its non-allocated atoms) their capacity; returns
    the .debug_info padding plan, or None (for an object an update adds; the full link
    does the same over every object's pieces at once)."""
    info = abbrev = None
    for atom in atoms:
        if atom.name == ".debug_info":
            info = atom
        elif atom.name == ".debug_abbrev":
            abbrev = atom
        else:
            plan_piece(atom)
    return plan_info(info, abbrev) if info is not None and abbrev is not None else None


# --- a removed object's pieces: units that describe nothing -------------------------------

DW_TAG_compile_unit = 0x11
DW_UT_compile = 0x01
#: the two abbreviations of an empty unit: 1 = a compile unit with children and no
#: attributes, 2 = the padding DIE
_EMPTY_ABBREVS = b"\x01" + bytes([DW_TAG_compile_unit, 1]) + b"\x00\x00"


def empty_info_abbrevs(capacity: int) -> bytes | None:
    """An abbreviation table for `empty_info_unit`, padded with zeros to `capacity`."""
    table = _EMPTY_ABBREVS + padding_abbrev(2)
    return table + bytes(capacity - len(table)) if len(table) <= capacity else None


def empty_info_unit(capacity: int, abbrev_offset: int) -> bytes | None:
    """A DWARF 5 compile unit of exactly `capacity` bytes whose root DIE has no
    attributes and one child, the padding DIE (abbreviations of `empty_info_abbrevs`
    at `abbrev_offset` in .debug_abbrev)."""
    header = struct.pack("<IHBBI", capacity - 4, 5, DW_UT_compile, 8, abbrev_offset)
    room = capacity - len(header) - 2              # the root DIE's code and its children's end
    if room < MIN_INFO_PAD:
        return None
    return header + b"\x01" + padding_die(2, room) + b"\x00"


def empty_aranges(capacity: int, info_offset: int) -> bytes | None:
    """A .debug_aranges set for the unit at `info_offset` with no address ranges: the
    header, then (0, 0) tuples to `capacity`."""
    header = struct.pack("<IHIBB", capacity - 4, 2, info_offset, 8, 0) + bytes(4)   # tuples 16-aligned
    if capacity < len(header) + 16:
        return None
    return header + bytes(capacity - len(header))


# --- the full link's use ---------------------------------------------------------------
def debug_atoms(linker) -> list[Atom]:
    """The non-allocated input pieces (debug info), from their output sections: a
    tenth of the atoms, where a walk over every object's atoms sees them all."""
    return [a for out in linker.outputs.values() if not out.is_alloc for a in out.atoms
            if a is not None and a.file is not None and not a.sh_flags & C.SHF_ALLOC]


def plan_debug_padding(linker) -> None:
    """Debug pieces get capacity (valid DWARF padding) so an edited object's debug
    info can be rewritten in place by an incremental update."""
    info_of, abbrev_of = {}, {}
    for atom in debug_atoms(linker):
        if atom.name == ".debug_info":
            info_of[id(atom.file)] = atom
        elif atom.name == ".debug_abbrev":
            abbrev_of[id(atom.file)] = atom
        else:
            plan_piece(atom)
    for obj in linker.objects:
        info, abbrev = info_of.get(id(obj)), abbrev_of.get(id(obj))
        obj.info_padding = plan_info(info, abbrev) if info is not None and abbrev is not None else None


def pad_debug(linker, image: OutputImage) -> None:
    for obj in linker.objects:
        plan = getattr(obj, "info_padding", None)
        if plan is not None:
            info, abbrev, code, term = plan
            iv = image.view(info.output)[info.value:info.value + info.capacity]
            av = image.view(abbrev.output)[abbrev.value:abbrev.value + abbrev.capacity]
            apply_info_padding(iv, info.size, info.capacity, av, abbrev.size, abbrev.capacity, code, term)
    for atom in debug_atoms(linker):
        if atom.capacity <= atom.size or atom.name in (".debug_info", ".debug_abbrev"):
            continue
        view = image.view(atom.output)[atom.value:atom.value + atom.capacity]
        pad_piece(atom.name, view, atom.size, atom.capacity)

"""`.eh_frame` records and the `.eh_frame_hdr` binary search table.

`backtrace()` and every unwinder find a PC's frame description through
`PT_GNU_EH_FRAME`: a sorted table of (initial location, FDE address).  The records are
read from the output's `.eh_frame` after relocation, so the table sees final addresses.
"""

from __future__ import annotations

import struct

from devlink.elf.leb128 import read_uleb as _uleb
from devlink.errors import DevlinkError

DW_EH_PE_absptr = 0x00
DW_EH_PE_udata4 = 0x03
DW_EH_PE_sdata4 = 0x0B
DW_EH_PE_udata8 = 0x04
DW_EH_PE_sdata8 = 0x0C
DW_EH_PE_pcrel = 0x10
DW_EH_PE_datarel = 0x30
DW_EH_PE_omit = 0xFF

HDR_HEADER = 12
HDR_ENTRY = 8
#: a record's length and CIE pointer, and (for an FDE) a signed first word after them
_RECORD_HEAD = struct.Struct("<IIi")
#: a record's length and CIE id (0 for a CIE)
_LENGTH_AND_ID = struct.Struct("<II")


def count_fdes(data, where: str) -> int:
    """How many FDEs an input `.eh_frame` holds (to size the search table early)."""
    n = 0
    off = 0
    end = len(data)
    head = _LENGTH_AND_ID.unpack_from
    while off + 4 <= end:
        if off + 8 <= end:
            length, cie_id = head(data, off)
        else:
            length, cie_id = struct.unpack_from("<I", data, off)[0], None
        if length == 0:
            break
        if length == 0xFFFFFFFF:
            raise DevlinkError(f"{where}: 64-bit .eh_frame records are not supported")
        if off + 4 + length > end or length < 4:
            raise DevlinkError(f"{where}: .eh_frame record at offset {off} runs past the section end; the object is corrupt")
        if cie_id != 0:
            n += 1
        off += 4 + length
    return n


def _cie_fde_encoding(data, off: int) -> int:
    """The FDE pointer encoding ('R' augmentation) of the CIE at `off`."""
    p = off + 8
    version = data[p]
    p += 1
    aug_end = bytes(data[p:p + 64]).index(b"\0")
    aug = bytes(data[p:p + aug_end]).decode("ascii", "replace")
    p += aug_end + 1
    _, p = _uleb(data, p)        # code alignment
    while data[p] & 0x80:        # data alignment (sleb)
        p += 1
    p += 1
    if version == 1:
        p += 1
    else:
        _, p = _uleb(data, p)
    enc = DW_EH_PE_absptr
    if aug.startswith("z"):
        _, p = _uleb(data, p)
        for ch in aug[1:]:
            if ch == "R":
                return data[p]
            if ch == "P":
                penc = data[p]
                p += 1 + _encoded_size(penc)
            elif ch == "L":
                p += 1
            elif ch in "SB":
                pass
            else:
                break
    return enc


def _encoded_size(enc: int) -> int:
    low = enc & 0x0F
    return {0x00: 8, 0x03: 4, 0x0B: 4, 0x04: 8, 0x0C: 8, 0x02: 2, 0x0A: 2}.get(low, 8)


def _read_encoded(data, off: int, enc: int, addr: int) -> int:
    low = enc & 0x0F
    if low in (DW_EH_PE_sdata4,):
        v = struct.unpack_from("<i", data, off)[0]
    elif low == DW_EH_PE_udata4:
        v = struct.unpack_from("<I", data, off)[0]
    elif low in (DW_EH_PE_absptr, DW_EH_PE_udata8):
        v = struct.unpack_from("<Q", data, off)[0]
    elif low == DW_EH_PE_sdata8:
        v = struct.unpack_from("<q", data, off)[0]
    else:
        raise DevlinkError(f".eh_frame: pointer encoding {enc:#x} is not supported")
    if enc & 0x70 == DW_EH_PE_pcrel:
        v += addr
    return v & 0xFFFFFFFFFFFFFFFF


def fde_table(data, addr: int, where: str = ".eh_frame") -> list[tuple[int, int]]:
    """(initial location, FDE address) of every FDE of relocated `.eh_frame` bytes that
    start at `addr` (one object's piece: its FDEs point at CIEs in the same piece)."""
    out = []
    add = out.append
    encodings: dict[int, int] = {}
    off = 0
    end = len(data)
    record = _RECORD_HEAD.unpack_from
    pcrel_sdata4 = DW_EH_PE_pcrel | DW_EH_PE_sdata4
    try:
        while off + 4 <= end:
            if off + 12 <= end:
                # length, CIE pointer, and the first word of an FDE's initial location
                length, cie_ptr, word = record(data, off)
            else:
                length, cie_ptr, word = struct.unpack_from("<I", data, off)[0], None, None
            if length == 0:
                off += 4
                continue
            if off + 4 + length > end or length < 8:
                raise ValueError("record runs past the end")
            if cie_ptr is None:
                cie_ptr = struct.unpack_from("<I", data, off + 4)[0]
            if cie_ptr == 0:
                encodings[off] = _cie_fde_encoding(data, off)
            else:
                cie_off = off + 4 - cie_ptr
                enc = encodings.get(cie_off)
                if enc is None:
                    if not 0 <= cie_off < off:
                        raise ValueError("FDE names no CIE of this object")
                    enc = encodings[cie_off] = _cie_fde_encoding(data, cie_off)
                if enc == pcrel_sdata4 and word is not None:    # what gcc emits
                    pc = (word + addr + off + 8) & 0xFFFFFFFFFFFFFFFF
                else:
                    pc = _read_encoded(data, off + 8, enc, addr + off + 8)
                if pc:  # FDEs of discarded code have 0
                    add((pc, addr + off))
            off += 4 + length
    except (ValueError, IndexError, struct.error) as e:
        raise DevlinkError(f"{where}: .eh_frame record at offset {off:#x} is malformed ({e}); rebuild the object") from None
    return out


def render_hdr(hdr_addr: int, eh_frame_addr: int, table, nslots: int) -> bytes:
    """`.eh_frame_hdr` version 1: pcrel eh_frame_ptr, udata4 count, datarel sdata4 table.
    `table`: sorted (initial location, FDE address) pairs (a list or an (n, 2) array)."""
    import numpy as np
    arr = np.asarray(table, np.int64).reshape(-1, 2)
    out = bytearray(HDR_HEADER + HDR_ENTRY * max(nslots, len(arr)))
    out[:HDR_HEADER] = hdr_header(hdr_addr, eh_frame_addr, len(arr))
    out[HDR_HEADER:HDR_HEADER + HDR_ENTRY * len(arr)] = hdr_rows(hdr_addr, arr)
    return bytes(out)


def hdr_header(hdr_addr: int, eh_frame_addr: int, count: int) -> bytes:
    """The 12 bytes before the table: version, encodings, eh_frame_ptr, fde_count."""
    return struct.pack("<BBBBiI", 1, DW_EH_PE_pcrel | DW_EH_PE_sdata4, DW_EH_PE_udata4,
                       DW_EH_PE_datarel | DW_EH_PE_sdata4, eh_frame_addr - (hdr_addr + 4), count)


def hdr_rows(hdr_addr: int, rows) -> bytes:
    """Table entries: (initial location, FDE address), each relative to the header."""
    rel = rows - hdr_addr
    if len(rel) and (rel.min() < -2**31 or rel.max() >= 2**31):
        raise DevlinkError(".eh_frame: an FDE covers code too far from the unwind table to index; an input's unwind table is corrupt")
    return rel.astype("<i4").tobytes()


def update_hdr_table(table, removed, added, gap: int = 64):
    """The sorted, one-per-address (initial location, FDE address) table with the
    `removed` pairs taken out and the `added` ones put in (an added entry replaces the
    one for the same address: newer code wins), and the [start, end) runs of its rows
    that differ from `table`'s (what must be written).  Costs a copy of the table at
    most, and only when an address comes or goes."""
    import numpy as np
    changed = []                       # rows replaced in place
    shift = None                       # first row from which rows moved
    if len(removed) and len(added):
        # an address that gets a new entry needs no removal first (a replacement
        # costs nothing; a removal and an insertion each copy the table)
        removed = removed[~np.isin(removed[:, 0], added[:, 0])]
    if len(removed) and len(table):
        k = np.minimum(np.searchsorted(table[:, 0], removed[:, 0]), len(table) - 1)
        hit = (table[k, 0] == removed[:, 0]) & (table[k, 1] == removed[:, 1])
        if hit.any():
            gone = np.unique(k[hit])
            table = np.delete(table, gone, axis=0)
            shift = int(gone[0])
    if len(added):
        # one entry per address among the added (the last wins)
        rev = added[::-1]
        _, first = np.unique(rev[:, 0], return_index=True)
        added = rev[first]
        k = np.searchsorted(table[:, 0], added[:, 0])
        same = k < len(table)
        same[same] = table[k[same], 0] == added[same, 0]
        if same.any():
            rows, fdes = k[same], added[same, 1]
            differs = table[rows, 1] != fdes
            if differs.any():
                table = table.copy()
                table[rows[differs], 1] = fdes[differs]
                changed = rows[differs]
        if (~same).any():
            at = k[~same]
            table = np.insert(table, at, added[~same], axis=0)
            shift = int(at.min()) if shift is None else min(shift, int(at.min()))
    runs = []
    idx = np.sort(np.asarray(changed, np.int64))
    if shift is not None:
        idx = idx[idx < shift]
    if len(idx):
        breaks = np.flatnonzero(np.diff(idx) > gap)
        starts = np.concatenate(([idx[0]], idx[breaks + 1]))
        ends = np.concatenate((idx[breaks], [idx[-1]])) + 1
        runs = list(zip(starts.tolist(), ends.tolist()))
    if shift is not None and shift < len(table):
        runs.append((shift, len(table)))
    return table, runs


#: a CIE + FDE for code entered like a function and left by a jump (the stubs): at
#: every instruction CFA = rsp + 8 and the return address is at CFA - 8
TRAMPOLINE_CIE_FDE_SIZE = 48


def trampoline_cie_fde(record_addr: int, code_start: int, code_size: int) -> bytes:
    """CIE ("zR", pcrel sdata4) then one FDE covering [code_start, +code_size)."""
    cie = bytearray(24)
    struct.pack_into("<II", cie, 0, 20, 0)
    cie[8:24] = bytes([1]) + b"zR\0" + bytes([1, 0x78, 16, 1, DW_EH_PE_pcrel | DW_EH_PE_sdata4,
                                                0x0C, 7, 8, 0x90, 1, 0, 0])
    fde = bytearray(24)
    pc_field = record_addr + 24 + 8
    struct.pack_into("<IIiI", fde, 0, 20, 24 + 4, code_start - pc_field, code_size)
    return bytes(cie + fde)


MIN_FILLER = 16


def filler_cie(size: int) -> bytes:
    """A CIE of exactly `size` bytes (a multiple of 4, at least 16) that no FDE uses:
    fills room inside .eh_frame so linear walkers read valid records."""
    assert size % 4 == 0 and size >= MIN_FILLER
    body = bytes([1]) + b"\0" + bytes([1, 1, 16])      # version, "", code/data align, RA
    rest = size - 8 - len(body)
    return struct.pack("<II", size - 4, 0) + body + bytes(rest)   # DW_CFA_nop padding

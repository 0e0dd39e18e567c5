"""LEB128 numbers, as DWARF and the unwind tables write them."""

from __future__ import annotations


def read_uleb(data, off: int) -> tuple[int, int]:
    """(value, offset after it) of the unsigned LEB128 at `off`."""
    result = shift = 0
    while True:
        b = data[off]
        off += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, off


def uleb(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def uleb_width(v: int, width: int) -> bytes:
    """`v` as a ULEB128 of exactly `width` bytes (trailing continuation bytes)."""
    out = bytearray()
    for i in range(width):
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if i < width - 1 else 0))
    if v:
        raise ValueError("value does not fit")
    return bytes(out)

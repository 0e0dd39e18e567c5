"""Function names in mapped ELF files (libc, other libraries), for crash reports.

A crash in `abort()` stops in libc; the report names `raise+0x..` in libc.so.6 and the
program's own caller, where a bare address told the user nothing.  The names come from
the file's `.symtab` when it has one (Debian's libc has only `.dynsym`) and its
`.dynsym`, function symbols with a size; a file offset is turned into the file's own
virtual address through its `PT_LOAD` headers.  Files are read once per process.
Only crash reports use this, so a damaged or missing file just names no function.
"""

from __future__ import annotations

import bisect
import os
import struct

import numpy as np

from devlink.elf import consts as C
from devlink.elf.records import Elf64_Ehdr, Elf64_Phdr, SHDR_DTYPE, SYM_DTYPE

_CACHE: dict[tuple[str, int, int], "FunctionTable | None"] = {}


class FunctionTable:
    """One file's functions, sorted by address, and its PT_LOAD (offset, vaddr, size)."""

    def __init__(self, starts: list[int], ends: list[int], names: list[str], loads: list[tuple[int, int, int]]):
        self.starts, self.ends, self.names, self.loads = starts, ends, names, loads

    def vaddr(self, file_offset: int) -> int | None:
        for off, vaddr, size in self.loads:
            if off <= file_offset < off + size:
                return file_offset - off + vaddr
        return None

    def lookup(self, file_offset: int) -> tuple[str, int] | None:
        """(function, offset into it) at `file_offset` of the file, or None."""
        va = self.vaddr(file_offset)
        return None if va is None else self.lookup_address(va)

    def lookup_address(self, va: int) -> tuple[str, int] | None:
        """(function, offset into it) at the file's own virtual address `va`, or None."""
        i = bisect.bisect_right(self.starts, va) - 1
        # the innermost (latest-starting) function that contains it
        while i >= 0 and self.starts[i] > va - (1 << 20):
            if self.starts[i] <= va < self.ends[i]:
                return self.names[i], va - self.starts[i]
            i -= 1
        return None


def function_at(path: str, file_offset: int) -> tuple[str, int] | None:
    """(function, offset) at `file_offset` in the ELF file `path`, or None."""
    table = _table(path)
    return table.lookup(file_offset) if table is not None else None


def function_at_address(path: str, address: int) -> tuple[str, int] | None:
    """(function, offset) at virtual address `address` of the executable `path` (an
    ET_EXEC runs at its own addresses: devlink's outputs, whose .symtab also names
    what the crash map does not hold, such as `f.cold` pieces)."""
    table = _table(path)
    return table.lookup_address(address) if table is not None else None


def _table(path: str) -> "FunctionTable | None":
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_ino, st.st_mtime_ns)
    if key not in _CACHE:
        try:
            with open(path, "rb") as f:
                _CACHE[key] = _read_functions(f.read())
        except (OSError, ValueError, struct.error, IndexError, UnicodeDecodeError):
            _CACHE[key] = None
    return _CACHE[key]


def _read_functions(data: bytes) -> FunctionTable | None:
    if not data.startswith(C.ELFMAG) or len(data) < Elf64_Ehdr.size:
        return None
    hdr = Elf64_Ehdr.unpack_from(data, 0)
    e_phoff, e_shoff, e_phnum, e_shnum = hdr[5], hdr[6], hdr[10], hdr[12]
    loads = []
    for i in range(e_phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = Elf64_Phdr.unpack_from(data, e_phoff + i * Elf64_Phdr.size)
        if p_type == C.PT_LOAD:
            loads.append((p_offset, p_vaddr, p_filesz))
    if e_shnum == 0 and e_shoff:
        e_shnum = int(np.frombuffer(data, SHDR_DTYPE, 1, e_shoff)["sh_size"][0])
    shdrs = np.frombuffer(data, SHDR_DTYPE, e_shnum, e_shoff) if e_shoff else np.zeros(0, SHDR_DTYPE)
    rows: dict[int, tuple[int, str]] = {}
    for i in np.flatnonzero((shdrs["sh_type"] == C.SHT_SYMTAB) | (shdrs["sh_type"] == C.SHT_DYNSYM)).tolist():
        sec = shdrs[i]
        syms = np.frombuffer(data, SYM_DTYPE, int(sec["sh_size"]) // SYM_DTYPE.itemsize, int(sec["sh_offset"]))
        strs = shdrs[int(sec["sh_link"])]
        strtab = data[int(strs["sh_offset"]):int(strs["sh_offset"]) + int(strs["sh_size"])]
        func = ((syms["st_info"] & 0xF) == C.STT_FUNC) | ((syms["st_info"] & 0xF) == C.STT_GNU_IFUNC)
        keep = np.flatnonzero(func & (syms["st_size"] > 0) & (syms["st_shndx"] != 0))
        for j, value, size, name in zip(keep.tolist(), syms["st_value"][keep].tolist(), syms["st_size"][keep].tolist(),
                                        syms["st_name"][keep].tolist()):
            if value not in rows or rows[value][0] < size:
                end = strtab.find(b"\0", name)
                rows[value] = (size, strtab[name:end].decode("utf-8", "replace"))
    order = sorted(rows)
    return FunctionTable(order, [v + rows[v][0] for v in order], [rows[v][1] for v in order], loads)

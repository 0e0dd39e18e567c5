"""Readers for the three kinds of ELF input: relocatable objects, archives, shared objects.

Records are decoded with `struct` and numpy over the file bytes (pyelftools is ~35x
slower at this; see DESIGN.md "Speed").  Every offset and size is checked against the
file, so a truncated or malformed input raises `DevlinkError` naming the file and what
is wrong, never an IndexError from deep inside the linker.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from devlink.elf import consts as C
from devlink.elf.records import (
    Elf64_Ehdr, Elf64_Shdr, Elf64_Dyn, Elf64_Verdef, Elf64_Verdaux, RELA_DTYPE, SHDR_DTYPE, SYM_DTYPE,
)
from devlink.errors import DevlinkError


@dataclass(slots=True)
class RawSection:
    """One section header of an input file, as read (plus its name)."""

    index: int
    name: str
    sh_type: int
    sh_flags: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_info: int
    sh_addralign: int
    sh_entsize: int


@dataclass(slots=True)
class RawObject:
    """The tables of one ET_REL file, decoded but not interpreted."""

    path: str
    data: bytes
    sections: list[RawSection]
    symtab: np.ndarray            # SYM_DTYPE records
    strtab: bytes
    first_global: int             # sh_info of .symtab
    relocs: dict[int, np.ndarray] = field(default_factory=dict)  # target shndx -> RELA_DTYPE
    symtab_shndx: np.ndarray | None = None                       # SHT_SYMTAB_SHNDX
    view: memoryview | None = None
    #: target shndx -> file offset of its RELA table (to gather many tables at once)
    rela_offsets: dict[int, int] = field(default_factory=dict)

    def __getstate__(self):
        state = {k: getattr(self, k) for k in self.__dataclass_fields__}
        state["view"] = None
        return state

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def section_bytes(self, sec: RawSection | None) -> memoryview:
        if sec is None or sec.sh_type in (C.SHT_NOBITS, C.SHT_NULL):
            return memoryview(b"")
        if self.view is None:
            self.view = memoryview(self.data)
        return self.view[sec.sh_offset:sec.sh_offset + sec.sh_size]

    def sym_name(self, i: int) -> str:
        return cstr(self.strtab, int(self.symtab["st_name"][i]), self.path)

    def sym_shndx(self, i: int) -> int:
        shndx = int(self.symtab["st_shndx"][i])
        if shndx == C.SHN_XINDEX and self.symtab_shndx is not None:
            return int(self.symtab_shndx[i])
        return shndx


def cstr(table: bytes, off: int, path: str = "?") -> str:
    """A NUL-terminated string from a string table."""
    if off >= len(table) and off != 0:
        raise DevlinkError(f"{path}: string table offset {off} is past the end of the table; the file is corrupt, rebuild it")
    end = table.find(b"\0", off)
    if end < 0:
        end = len(table)
    return table[off:end].decode("utf-8", "surrogateescape")


def _check_ident(data: bytes, path: str, what: str) -> tuple:
    if len(data) < Elf64_Ehdr.size:
        raise DevlinkError(f"{path}: file is truncated ({len(data)} bytes, smaller than an ELF header); rebuild it")
    hdr = Elf64_Ehdr.unpack_from(data, 0)
    ident = hdr[0]
    if ident[:4] != C.ELFMAG:
        raise DevlinkError(f"{path}: not an ELF file (bad magic); pass a .c, .o, .a or shared library")
    if ident[4] != C.ELFCLASS64 or ident[5] != C.ELFDATA2LSB:
        raise DevlinkError(f"{path}: not a 64-bit little-endian ELF file; devlink links x86-64 only")
    if hdr[2] != C.EM_X86_64:
        raise DevlinkError(f"{path}: machine {hdr[2]} is not x86-64 (EM_X86_64); rebuild it for x86-64")
    return hdr


def _read_section_headers(data: bytes, path: str, hdr: tuple) -> list[RawSection]:
    return _section_table(data, path, hdr)[0]


def _section_table(data: bytes, path: str, hdr: tuple) -> tuple[list[RawSection], np.ndarray]:
    """The section headers as records, and as one numpy table (for bulk checks).  Names
    and bounds are checked in bulk; a file that fails goes through
    `_section_header_error`, which names the first bad section."""
    e_shoff, e_shentsize, e_shnum, e_shstrndx = hdr[6], hdr[11], hdr[12], hdr[13]
    if e_shoff == 0:
        return [], np.zeros(0, SHDR_DTYPE)
    if e_shentsize != Elf64_Shdr.size:
        raise DevlinkError(f"{path}: section header size {e_shentsize} is not {Elf64_Shdr.size}; the file is corrupt, rebuild it")
    if e_shnum == 0 and e_shoff + Elf64_Shdr.size <= len(data):
        e_shnum = Elf64_Shdr.unpack_from(data, e_shoff)[5]  # extended numbering
    if e_shnum > C.SECTION_INDEX_END:
        raise DevlinkError(f"{path}: has {e_shnum} sections, more than devlink can link ({C.SECTION_INDEX_END}); "
                           f"split the source file in two")
    if e_shoff + e_shnum * Elf64_Shdr.size > len(data):
        raise DevlinkError(f"{path}: section header table runs past the end of the file (truncated?); rebuild it")
    table = np.frombuffer(data, SHDR_DTYPE, e_shnum, e_shoff)
    if e_shstrndx == C.SHN_XINDEX and e_shnum:
        e_shstrndx = int(table["sh_link"][0])
    if e_shstrndx >= e_shnum:
        raise DevlinkError(f"{path}: section name table index {e_shstrndx} is out of range; the file is corrupt, rebuild it")
    str_off, str_size = int(table["sh_offset"][e_shstrndx]), int(table["sh_size"][e_shstrndx])
    if str_off + str_size > len(data):
        raise DevlinkError(f"{path}: section name table runs past the end of the file (truncated?); rebuild it")
    shstr = data[str_off:str_off + str_size]
    noff = table["sh_name"].astype(np.int64)
    offset, size, sh_type = table["sh_offset"], table["sh_size"], table["sh_type"]
    end = np.uint64(len(data))
    bad = ((noff >= len(shstr)) & (noff != 0)) | \
          (((offset > end) | (size > end - np.minimum(offset, end)))
           & (sh_type != C.SHT_NOBITS) & (sh_type != C.SHT_NULL))
    names = None if bad.any() else _section_names(shstr, noff)
    if names is None:
        _section_header_error(data, path, table, shstr)
    columns = [table[f].tolist() for f in SHDR_DTYPE.names[1:]]
    return list(map(RawSection, range(e_shnum), names, *columns)), table


def cstrings(table: bytes, offsets: np.ndarray, errors: str = "strict") -> list[str]:
    """The NUL-terminated strings at `offsets` of a string table, in one pass over it (a
    string ends at the first NUL at or after its offset); UTF-8, decoded with `errors`."""
    zeros = np.flatnonzero(np.frombuffer(table, np.uint8) == 0)
    ends = np.append(zeros, len(table))[np.searchsorted(zeros, offsets)].tolist()
    starts = offsets.tolist()
    if table.isascii():
        text = table.decode("ascii")
        return [text[a:b] for a, b in zip(starts, ends)]
    return [table[a:b].decode("utf-8", errors) for a, b in zip(starts, ends)]


def _section_names(shstr: bytes, noff: np.ndarray) -> list[str] | None:
    """The names at `noff` in the section name table; None if one is not valid UTF-8."""
    try:
        return cstrings(shstr, noff)
    except UnicodeDecodeError:
        return None


def _section_header_error(data: bytes, path: str, table: np.ndarray, shstr: bytes) -> None:
    """Raise the error of the first section whose name or bounds are bad."""
    size = len(data)
    nstr = len(shstr)
    for i, r in enumerate(table.tolist()):
        noff = r[0]
        if noff >= nstr and noff:
            raise DevlinkError(f"{path}: section [{i}] name offset {noff} is past the end of the section name table; the file is corrupt, rebuild it")
        end = shstr.find(b"\0", noff)
        try:
            name = shstr[noff:end if end >= 0 else nstr].decode("utf-8")
        except UnicodeDecodeError:
            raise DevlinkError(f"{path}: section [{i}] has a name that is not valid UTF-8; the file is corrupt, rebuild it") from None
        if r[4] + r[5] > size and r[1] != C.SHT_NOBITS and r[1] != C.SHT_NULL:
            raise DevlinkError(
                f"{path}: section [{i}] {name} (offset {r[4]:#x}, size {r[5]:#x}) runs past the end of the file "
                f"({len(data):#x} bytes; truncated?); rebuild it")
    raise AssertionError("bulk section header checks failed, one by one none did")


def _table(data: bytes, sec: RawSection, dtype: np.dtype, path: str) -> np.ndarray:
    if sec.sh_size % dtype.itemsize:
        raise DevlinkError(f"{path}: section {sec.name} size {sec.sh_size} is not a multiple of its entry size {dtype.itemsize}; the file is corrupt")
    return np.frombuffer(data, dtype=dtype, count=sec.sh_size // dtype.itemsize, offset=sec.sh_offset)


def read_object(path: str, data: bytes) -> RawObject:
    """Decode an ET_REL file's section headers, symbol table and RELA tables."""
    hdr = _check_ident(data, path, "object")
    if hdr[1] != C.ET_REL:
        kind = {C.ET_EXEC: "an executable", C.ET_DYN: "a shared object"}.get(hdr[1], f"ELF type {hdr[1]}")
        raise DevlinkError(f"{path}: is {kind}, not a relocatable object; pass .o files, .a archives or -l libraries")
    sections, table = _section_table(data, path, hdr)
    sh_type = table["sh_type"]
    rela = np.flatnonzero(sh_type == C.SHT_RELA)
    if ((sh_type == C.SHT_REL).any() or (table["sh_info"][rela] >= len(sections)).any()
            or (table["sh_size"][rela] % RELA_DTYPE.itemsize).any()):
        _read_tables_one_by_one(data, path, sections)     # raises the first section's error
    symtab = np.zeros(0, SYM_DTYPE)
    strtab = b""
    first_global = 0
    shndx_table = None
    symtab_sec = None
    for i in np.flatnonzero((sh_type == C.SHT_SYMTAB) | (sh_type == C.SHT_SYMTAB_SHNDX)).tolist():
        sec = sections[i]
        if sec.sh_type == C.SHT_SYMTAB:
            if symtab_sec is not None:
                raise DevlinkError(f"{path}: has two symbol tables (sections [{symtab_sec.index}] and [{sec.index}]); "
                                   f"the file is corrupt, rebuild it")
            symtab_sec = sec
            symtab = _table(data, sec, SYM_DTYPE, path)
            first_global = sec.sh_info
            st = _symtab_strings(path, sections, sec)
            strtab = data[st.sh_offset:st.sh_offset + st.sh_size]
        else:
            shndx_table = np.frombuffer(data, "<u4", sec.sh_size // 4, sec.sh_offset)
    relocs, rela_offsets = _rela_tables(data, table, rela)
    nsyms = len(symtab)
    if nsyms and int(symtab["st_name"].max()) >= max(len(strtab), 1):
        raise DevlinkError(f"{path}: a symbol name points past the end of the string table; the file is corrupt, rebuild it")
    raw = RawObject(path, data, sections, symtab, strtab, first_global, relocs, shndx_table,
                    rela_offsets=rela_offsets)
    _check_sections(raw, table)
    _check_symbols(raw)
    # (relocation offsets are checked against their sections when the object's whole
    # table is scanned: devlink.link.linker.Linker.scan_object)
    return raw


def _symtab_strings(path: str, sections: list[RawSection], symtab: RawSection) -> RawSection:
    """The string table `.symtab` links to, checked."""
    if symtab.sh_link >= len(sections) or symtab.sh_link == 0:
        raise DevlinkError(f"{path}: .symtab links to section {symtab.sh_link}, which does not exist; the file is corrupt, rebuild it")
    st = sections[symtab.sh_link]
    if st.sh_type != C.SHT_STRTAB:
        raise DevlinkError(f"{path}: .symtab links to section [{st.index}] {st.name}, which is not a string table; "
                           f"the file is corrupt, rebuild it")
    return st


def _rela_tables(data: bytes, table: np.ndarray, rela: np.ndarray) -> tuple[dict, dict]:
    """Target section -> its RELA records, and -> the file offset of them.  Each table is
    a slice of one view of the file (one per offset modulo the record size): a slice
    costs a tenth of an `np.frombuffer` call, and an object has hundreds of tables."""
    relocs: dict[int, np.ndarray] = {}
    rela_offsets: dict[int, int] = {}
    size = RELA_DTYPE.itemsize
    views: dict[int, np.ndarray] = {}
    for target, off, nbytes in zip(table["sh_info"][rela].tolist(), table["sh_offset"][rela].tolist(),
                                   table["sh_size"][rela].tolist()):
        first, residue = divmod(off, size)
        view = views.get(residue)
        if view is None:
            view = views[residue] = np.frombuffer(data, RELA_DTYPE, (len(data) - residue) // size, residue)
        relocs[target] = view[first:first + nbytes // size]
        rela_offsets[target] = off
    return relocs, rela_offsets


def _read_tables_one_by_one(data: bytes, path: str, sections: list[RawSection]) -> None:
    """Raise the error of the first bad relocation section, in section order (after a
    bad symbol table before it, as a reader going section by section would)."""
    symtab_sec = None
    for sec in sections:
        if sec.sh_type == C.SHT_SYMTAB:
            if symtab_sec is not None:
                raise DevlinkError(f"{path}: has two symbol tables (sections [{symtab_sec.index}] and [{sec.index}]); "
                                   f"the file is corrupt, rebuild it")
            symtab_sec = sec
            _table(data, sec, SYM_DTYPE, path)
            _symtab_strings(path, sections, sec)
        elif sec.sh_type == C.SHT_RELA:
            if sec.sh_info >= len(sections):
                raise DevlinkError(f"{path}: relocation section {sec.name} applies to section {sec.sh_info}, which does not exist; the file is corrupt, rebuild it")
            _table(data, sec, RELA_DTYPE, path)
        elif sec.sh_type == C.SHT_REL:
            raise DevlinkError(f"{path}: section {sec.name} uses REL relocations; x86-64 objects use RELA, rebuild the object with an x86-64 compiler")
    raise AssertionError("bulk relocation section checks failed, one by one none did")


#: the largest section alignment and NOBITS (.bss) size devlink accepts: far beyond what
#: a compiler emits, small enough that addresses stay well inside 64-bit arithmetic
MAX_ALIGNMENT = 1 << 28
MAX_SECTION_SIZE = 1 << 40
#: the largest symbol value / size (they are signed 64-bit numbers inside the linker)
MAX_SYMBOL_VALUE = (1 << 63) - 1


def _check_sections(raw: RawObject, table: np.ndarray | None = None) -> None:
    """Alignments and sizes the linker's address arithmetic can hold (`table`: the
    section headers as numpy, to check in bulk first)."""
    if table is not None:
        sh_type = table["sh_type"]
        bad = (sh_type != C.SHT_NULL) & ((table["sh_addralign"] > MAX_ALIGNMENT)
                                         | ((sh_type == C.SHT_NOBITS) & (table["sh_size"] > MAX_SECTION_SIZE)))
        if not bad.any():
            return
    path = raw.path
    for sec in raw.sections:
        if sec.sh_type == C.SHT_NULL:
            continue
        a = sec.sh_addralign
        if a > MAX_ALIGNMENT:
            raise DevlinkError(f"{path}: section [{sec.index}] {sec.name} asks for alignment {a:#x}, more than devlink "
                               f"supports ({MAX_ALIGNMENT:#x}); the object is corrupt, or lower the alignment")
        if sec.sh_type == C.SHT_NOBITS and sec.sh_size > MAX_SECTION_SIZE:
            raise DevlinkError(f"{path}: section [{sec.index}] {sec.name} has size {sec.sh_size:#x}, more than devlink "
                               f"supports ({MAX_SECTION_SIZE:#x}); the object is corrupt, or make the array smaller")


def _bad_symbol(raw: RawObject, i: int, what: str) -> DevlinkError:
    try:
        name = raw.sym_name(i) or f"#{i}"
    except (DevlinkError, IndexError):
        name = f"#{i}"
    return DevlinkError(f"{raw.path}: symbol {name!r} (index {i} of .symtab) {what}; the object is corrupt, rebuild it")


def _check_symbols(raw: RawObject) -> None:
    """Every symbol's section index names a section (or ABS/COMMON/XINDEX); values fit."""
    symtab = raw.symtab
    nsyms = len(symtab)
    if raw.first_global > nsyms:
        raise DevlinkError(f"{raw.path}: .symtab says its globals start at index {raw.first_global}, but it has only "
                           f"{nsyms} symbols; the object is corrupt, rebuild it")
    if not nsyms:
        return
    nsec = len(raw.sections)
    shndx = symtab["st_shndx"].astype(np.int64)
    xindex = shndx == C.SHN_XINDEX
    if xindex.any():
        if raw.symtab_shndx is None or len(raw.symtab_shndx) < nsyms:
            i = int(np.argmax(xindex))
            raise _bad_symbol(raw, i, "uses an extended section index (SHN_XINDEX) but the file has no complete "
                                      "SHT_SYMTAB_SHNDX table")
        shndx = np.where(xindex, raw.symtab_shndx[:nsyms].astype(np.int64), shndx)
    bad = ((shndx >= nsec) & (shndx < C.SHN_LORESERVE)) | \
          ((shndx >= C.SHN_LORESERVE) & (shndx != C.SHN_ABS) & (shndx != C.SHN_COMMON) & ~xindex) | \
          (xindex & (shndx >= nsec))
    if bad.any():
        i = int(np.argmax(bad))
        raise _bad_symbol(raw, i, f"is defined in section {int(shndx[i]):#x}, which does not exist "
                                  f"(the file has {nsec} sections)")
    limit = np.uint64(MAX_SYMBOL_VALUE)
    for field_name in ("st_value", "st_size"):
        col = symtab[field_name]
        over = col > limit
        if over.any():
            i = int(np.argmax(over))
            raise _bad_symbol(raw, i, f"has {field_name} {int(col[i]):#x}, which is too large")
    common = np.flatnonzero(shndx == C.SHN_COMMON)
    for i in common.tolist():
        align, size = int(symtab["st_value"][i]), int(symtab["st_size"][i])
        if align & (align - 1) or align > MAX_ALIGNMENT:
            raise _bad_symbol(raw, i, f"is a COMMON symbol with alignment {align:#x}, not a power of two up to {MAX_ALIGNMENT:#x}")
        if size > MAX_SECTION_SIZE:
            raise _bad_symbol(raw, i, f"is a COMMON symbol of size {size:#x}, more than devlink supports ({MAX_SECTION_SIZE:#x})")


def _reloc_widths() -> np.ndarray:
    """Bytes each relocation type writes (0 for markers and for types the linker rejects)."""
    global _RELOC_WIDTHS
    if _RELOC_WIDTHS is None:
        from devlink.link.arch import x86_64 as arch
        w = np.zeros(256, np.uint64)
        for t, k in arch.DIRECT_KIND.items():
            w[t] = arch.KIND_WIDTH.get(k, 0)
        for t in arch.TLS_SEQUENCE_TYPES:
            w[t] = 4
        _RELOC_WIDTHS = w
    return _RELOC_WIDTHS


_RELOC_WIDTHS: np.ndarray | None = None


def _check_relocs(raw: RawObject, relocs: dict[int, np.ndarray]) -> None:
    """Every relocation's field lies inside the section it patches (one check over all
    of the object's tables)."""
    tables = [(raw.sections[t], tab) for t, tab in relocs.items() if len(tab)]
    if not tables:
        return
    for target, _ in tables:
        if target.sh_type == C.SHT_NOBITS:
            raise DevlinkError(f"{raw.path}: section {target.name} has no contents (SHT_NOBITS) but has relocations; "
                               f"the object is corrupt, rebuild it")
    whole = np.concatenate([tab.view("<u8").reshape(-1, 3) for _, tab in tables])
    sizes = np.repeat(np.array([t.sh_size for t, _ in tables], np.uint64), [len(tab) for _, tab in tables])
    offs = whole[:, 0]
    types = whole[:, 1] & np.uint64(0xFFFFFFFF)
    width = _reloc_widths()[np.minimum(types, np.uint64(255)).astype(np.intp)]
    width[types > 255] = 0
    over = offs > sizes
    over |= np.where(over, np.uint64(0), offs) + width > sizes
    if over.any():
        j = int(np.argmax(over))
        for target, tab in tables:           # which table row j is in
            if j < len(tab):
                break
            j -= len(tab)
        raise DevlinkError(f"{raw.path}: relocation {j} for section {target.name} patches offset {int(tab['r_offset'][j]):#x}, "
                           f"outside the section ({target.sh_size:#x} bytes); the object is corrupt, rebuild it")


# --- archives -----------------------------------------------------------------------------

@dataclass(slots=True)
class ArchiveMember:
    name: str
    offset: int      # of the member's data in the archive
    size: int


@dataclass(slots=True)
class RawArchive:
    path: str
    data: bytes
    members: dict[int, ArchiveMember]        # keyed by header offset (what the index names)
    symbol_index: dict[str, int]             # symbol -> member header offset (first wins)


def read_archive(path: str, data: bytes) -> RawArchive:
    """Decode a System V / GNU `ar` archive: members and the symbol index."""
    magic = bytes(data[:8])              # `data` may be a mapped file (no startswith)
    if magic == b"!<thin>\n":
        raise DevlinkError(f"{path}: thin archives are not supported; make a regular one with `ar rcs`")
    if magic != b"!<arch>\n":
        raise DevlinkError(f"{path}: not an ar archive (bad magic); pass a .a made by `ar`")
    pos = 8
    members: dict[int, ArchiveMember] = {}
    longnames = b""
    symbol_index: dict[str, int] = {}
    raw_index = None
    while pos < len(data):
        if pos + 60 > len(data):
            if data[pos:].strip(b"\n") == b"":
                break
            raise DevlinkError(f"{path}: archive member header at offset {pos} is truncated; the archive is corrupt, rebuild it with `ar rcs`")
        hdr = data[pos:pos + 60]
        if hdr[58:60] != b"`\n":
            raise DevlinkError(f"{path}: archive member header at offset {pos} is malformed; the archive is corrupt, rebuild it with `ar rcs`")
        name = hdr[0:16].decode("ascii", "replace").rstrip()
        field_ = hdr[48:58].strip()
        if not field_.isdigit():
            raise DevlinkError(f"{path}: archive member at offset {pos} has a malformed size {field_.decode('ascii', 'replace')!r}; "
                               f"the archive is corrupt, rebuild it with `ar rcs`")
        size = int(field_)
        start = pos + 60
        if start + size > len(data):
            raise DevlinkError(f"{path}: archive member {name.rstrip('/')!r} at offset {pos} runs past the end of the file (truncated?); rebuild the archive")
        if name == "/":
            raw_index = data[start:start + size]
        elif name == "//":
            longnames = data[start:start + size]
        elif name in ("/SYM64/",):
            raise DevlinkError(f"{path}: 64-bit archive symbol index is not supported; rebuild the archive with `ar rcs`")
        else:
            if name.startswith("/") and name[1:].isdigit():
                off = int(name[1:])
                end = longnames.find(b"/\n", off)
                name = longnames[off:end if end >= 0 else len(longnames)].decode("utf-8", "replace")
            elif name.endswith("/"):
                name = name[:-1]
            members[pos] = ArchiveMember(name, start, size)
        pos = start + size + (size & 1)
    if raw_index is not None:
        if len(raw_index) < 4:
            raise DevlinkError(f"{path}: archive symbol index is truncated; rebuild the archive with `ar rcs`")
        n = int.from_bytes(raw_index[:4], "big")
        if 4 + 4 * n > len(raw_index):
            raise DevlinkError(f"{path}: archive symbol index is truncated; rebuild the archive with `ar rcs`")
        offsets = np.frombuffer(raw_index, ">u4", n, 4)
        names = raw_index[4 + 4 * n:].split(b"\0")
        for i in range(n):
            if i >= len(names):
                raise DevlinkError(f"{path}: archive symbol index is truncated; rebuild the archive with `ar rcs`")
            off = int(offsets[i])
            if off not in members:
                raise DevlinkError(f"{path}: archive symbol index names a member at offset {off} that does not exist; rebuild the archive with `ar rcs`")
            symbol_index.setdefault(names[i].decode("utf-8", "surrogateescape"), off)
    else:
        # No index (`ar rc` without `s`): build one from the members' symbol tables.
        for off, m in members.items():
            blob = data[m.offset:m.offset + m.size]
            if not blob.startswith(C.ELFMAG):
                continue
            raw = read_object(f"{path}({m.name})", blob)
            for i in range(raw.first_global, len(raw.symtab)):
                if raw.sym_shndx(i) != C.SHN_UNDEF:
                    symbol_index.setdefault(raw.sym_name(i), off)
    return RawArchive(path, data, members, symbol_index)


# --- shared objects -------------------------------------------------------------------------

@dataclass(slots=True)
class DynSymbol:
    name: str
    value: int
    size: int
    info: int
    other: int
    shndx: int
    version: str | None        # default version name, None if unversioned
    hidden: bool               # non-default version (name@VER, not name@@VER)


@dataclass(slots=True)
class RawSharedObject:
    path: str
    soname: str
    defined: dict[str, DynSymbol]        # default-version definitions by name
    undefined: set[str]                  # names the library itself imports
    version_names: dict[int, str]        # verdef index -> name


#: DT_FLAGS_1 bit of a position-independent executable (not a library)
DF_1_PIE = 0x08000000


def read_shared_object(path: str, data: bytes) -> RawSharedObject:
    """Decode the dynamic symbol table, versions and DT_SONAME of an ET_DYN file."""
    try:
        return _read_shared_object(path, data)
    except (struct.error, IndexError, ValueError, OverflowError):
        # a table or record pointing outside the file (the checks below catch the usual cases)
        raise DevlinkError(f"{path}: malformed shared library (a dynamic table points outside the file); "
                           f"reinstall or rebuild it") from None


def _read_shared_object(path: str, data: bytes) -> RawSharedObject:
    hdr = _check_ident(data, path, "shared object")
    if hdr[1] != C.ET_DYN:
        raise DevlinkError(f"{path}: not a shared object")
    sections = _read_section_headers(data, path, hdr)
    dynsym = dynstr = versym = None
    verdef = None
    dynamic = None
    for sec in sections:
        if sec.sh_type == C.SHT_DYNSYM:
            dynsym = sec
        elif sec.sh_type == C.SHT_GNU_versym:
            versym = sec
        elif sec.sh_type == C.SHT_GNU_verdef:
            verdef = sec
        elif sec.sh_type == C.SHT_DYNAMIC:
            dynamic = sec
    if dynsym is None:
        raise DevlinkError(f"{path}: shared object has no dynamic symbol table; it cannot be linked against")
    if not 0 < dynsym.sh_link < len(sections):
        raise DevlinkError(f"{path}: .dynsym links to section {dynsym.sh_link}, which does not exist; the library is corrupt")
    dynstr_sec = sections[dynsym.sh_link]
    dynstr = data[dynstr_sec.sh_offset:dynstr_sec.sh_offset + dynstr_sec.sh_size]
    syms = _table(data, dynsym, SYM_DTYPE, path)
    if versym is not None and versym.sh_size < 2 * len(syms):
        raise DevlinkError(f"{path}: .gnu.version is smaller than .dynsym; the library is corrupt")
    vers = np.frombuffer(data, "<u2", len(syms), versym.sh_offset) if versym is not None else None
    version_names: dict[int, str] = {}
    if verdef is not None:
        off = verdef.sh_offset
        for _ in range(verdef.sh_info):
            vd = Elf64_Verdef.unpack_from(data, off)
            aux = Elf64_Verdaux.unpack_from(data, off + vd[5])
            version_names[vd[2]] = cstr(dynstr, aux[0], path)
            if not vd[6]:
                break
            off += vd[6]
    soname = path.rsplit("/", 1)[-1]
    if dynamic is not None:
        for i in range(dynamic.sh_size // Elf64_Dyn.size):
            tag, val = Elf64_Dyn.unpack_from(data, dynamic.sh_offset + i * Elf64_Dyn.size)
            if tag == C.DT_NULL:
                break
            if tag == C.DT_SONAME:
                soname = cstr(dynstr, val, path)
            elif tag == C.DT_FLAGS_1 and val & DF_1_PIE:
                raise DevlinkError(f"{path}: is an executable (PIE), not a shared library; "
                                   f"pass .o files, .a archives or -l libraries")
    defined: dict[str, DynSymbol] = {}
    undefined: set[str] = set()
    names = syms["st_name"]
    infos = syms["st_info"]
    shndxs = syms["st_shndx"]
    for i in range(1, len(syms)):
        name = cstr(dynstr, int(names[i]), path)
        shndx = int(shndxs[i])
        info = int(infos[i])
        if shndx == C.SHN_UNDEF:
            undefined.add(name)
            continue
        if info >> 4 == C.STB_LOCAL:
            continue
        v = int(vers[i]) if vers is not None else C.VER_NDX_GLOBAL
        hidden = bool(v & C.VERSYM_HIDDEN)
        v &= 0x7FFF
        if hidden:
            continue  # only default versions (name@@VER) bind new references
        ver = version_names.get(v) if v > C.VER_NDX_GLOBAL else None
        defined[name] = DynSymbol(name, int(syms["st_value"][i]), int(syms["st_size"][i]), info,
                                  int(syms["st_other"][i]), shndx, ver, hidden)
    return RawSharedObject(path, soname, defined, undefined, version_names)


def read_linker_script(path: str, text: str) -> list[tuple[str, bool]]:
    """The inputs named by a GNU ld script such as libc.so: [(path, as_needed)].

    Only what library scripts use is understood: GROUP, INPUT, AS_NEEDED, OUTPUT_FORMAT
    and comments.
    """
    import re
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    tokens = re.findall(r"[()]|[^\s()]+", text)
    out: list[tuple[str, bool]] = []
    i = 0
    depth_as_needed = 0
    stack: list[str] = []
    while i < len(tokens):
        t = tokens[i]
        if t in ("GROUP", "INPUT", "AS_NEEDED", "OUTPUT_FORMAT", "SEARCH_DIR", "OUTPUT_ARCH") and i + 1 < len(tokens) and tokens[i + 1] == "(":
            stack.append(t)
            if t == "AS_NEEDED":
                depth_as_needed += 1
            i += 2
            continue
        if t == ")":
            if not stack:
                raise DevlinkError(f"{path}: unbalanced ')' in linker script; devlink understands GROUP/INPUT/AS_NEEDED scripts")
            if stack.pop() == "AS_NEEDED":
                depth_as_needed -= 1
            i += 1
            continue
        if stack and stack[-1] in ("GROUP", "INPUT", "AS_NEEDED"):
            out.append((t, depth_as_needed > 0))
        elif not stack:
            raise DevlinkError(f"{path}: linker script command {t!r} is not supported; devlink understands GROUP/INPUT/AS_NEEDED scripts")
        i += 1
    return out

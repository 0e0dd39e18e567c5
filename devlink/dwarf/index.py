"""A per-object index of the DWARF of one relocatable object: its functions, variables,
function-scope statics and their C types, keyed by ELF symbol.

Why: the incremental linker matches a function-scope `static` across recompiles by
(enclosing function, source name), because gcc renumbers the symbols (`n.1` becomes `n.2`
when a function with its own `static n` is added earlier in the file; DESIGN.md, "Decl").
The LSP shows declarations, signatures and live values of globals, which needs the type.

How: pyelftools parses the DWARF (and relocates the debug sections of an ET_REL object,
which is fine for strings and references).  What an address *means* is ambiguous after
that relocation (every section starts at 0), so for DW_AT_low_pc and DW_OP_addr this
module reads `.rela.debug_info` itself, with `struct`/numpy, and resolves the relocation
at the attribute's offset to the ELF symbol or (section, addend) it names.

Speed: pyelftools needs ~190 ms for Lua's lvm.o, so `DwarfIndexCache` caches indexes per
object content (memory and disk) and builds them on a background thread pool: an update
never waits on DWARF parsing unless it asks for that very object.

Robustness: an object without DWARF gives an empty index; malformed DWARF gives a partial
index with `errors` filled in.  The only exception out of `build_index` is DevlinkError,
for input that is not an ELF file.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from devlink import private
from devlink.dwarf.types import (
    ENC_BOOL, ENC_CHAR, ENC_COMPLEX, ENC_FLOAT, ENC_OTHER, ENC_SIGNED, ENC_UNSIGNED,
    KIND_ARRAY, KIND_BASE, KIND_ENUM, KIND_FUNCTION, KIND_POINTER, KIND_STRUCT,
    KIND_UNION, KIND_UNKNOWN, KIND_VOID, Member, TypeInfo, c_decl, type_hash,
)
from devlink.elf.consts import (
    ELFMAG, STT_FUNC, STT_GNU_IFUNC, STT_NOTYPE, STT_OBJECT,
    STT_SECTION, STT_TLS,
)
from devlink.errors import DevlinkError

# Bump when the layout of the classes below or the meaning of a field changes: cached
# indexes with another version are ignored and rebuilt.
INDEX_VERSION = 2

SCOPE_GLOBAL = "global"       # external linkage
SCOPE_FILE = "file"           # `static` at file scope
SCOPE_FUNCTION = "function"   # `static` inside a function (any nested block)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class FunctionInfo:
    """One function with code in the object (one ELF symbol; a gcc clone is its own)."""

    symbol: str               # the ELF symbol name: "main", "helper", "sq.constprop.0"
    name: str                 # the source name ("sq" for "sq.constprop.0")
    decl_file: str | None     # path of the declaring file (comp_dir joined, normalised)
    decl_line: int | None     # 1-based line of the declaration (DW_AT_decl_line)
    decl_column: int | None   # 1-based column (DW_AT_decl_column)
    external: bool            # has external linkage (not `static`)
    signature: str            # return + parameter types as C: "int (int, const char *)"
    signature_hash: str       # 16 hex digits over the signature's full types (layout of
                              # by-value struct params included); stable across recompiles
    return_type: TypeInfo | None   # None for void
    param_types: tuple[TypeInfo, ...]  # source parameters, in order
    param_names: tuple[str, ...]       # their names ("" when unnamed)
    section: str | None       # ELF section holding the entry, e.g. ".text.main"
    offset: int | None        # offset of the entry in `section`
    size: int | None          # byte size of the code at the entry (DW_AT_high_pc)
    aliases: tuple[str, ...] = ()  # other ELF function symbols at the same entry
    is_clone: bool = False    # `symbol` is a gcc clone (.constprop/.isra/.part/...)
    inline: bool = False      # declared `inline` or inlined somewhere (DW_AT_inline)


@dataclass(frozen=True)
class VariableInfo:
    """One variable with static storage (global, file-static, function-scope static)."""

    symbol: str               # the key in ObjectIndex.variables: the ELF symbol name
                              # ("counter", "n.1"); the source name if it has none
    name: str                 # the source name ("n")
    decl_file: str | None     # path of the declaring file
    decl_line: int | None     # 1-based line
    decl_column: int | None   # 1-based column
    scope: str                # SCOPE_GLOBAL / SCOPE_FILE / SCOPE_FUNCTION
    enclosing_function: str | None  # source name of the function (SCOPE_FUNCTION only)
    static_key: tuple[str, str] | None  # its key in ObjectIndex.static_locals, if any
    elf_symbol: str | None    # the ELF symbol at its address (None if none found)
    elf_section: str | None   # ELF section name holding it (".data.counter", ".bss")
    offset: int | None        # offset of the variable inside `elf_section`
    reloc_symbol: str | None  # the symbol the DW_OP_addr relocation names (a section
                              # symbol's section name for section-relative ones)
    addend: int               # that relocation's addend
    type: TypeInfo            # its C type (typedefs resolved, see TypeInfo)
    type_hash: str            # types.type_hash(type): stable while the type is unchanged
    size: int | None          # byte size (from the type, else the ELF symbol's size)
    tls: bool = False         # thread-local (`_Thread_local`): offset is within PT_TLS
    const: bool = False       # the object is const-qualified (read-only data)


@dataclass
class ObjectIndex:
    """The DWARF index of one object file.  Plain data: picklable, no file handles."""

    name: str                 # the name the object was indexed under (its path)
    content_hash: str | None  # sha256 hex of its bytes (or the hash the cache was given)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)  # by ELF symbol
    variables: dict[str, VariableInfo] = field(default_factory=dict)  # by ELF symbol
    static_locals: dict[tuple[str, str], str] = field(default_factory=dict)
    # (enclosing function source name, variable source name) -> ELF symbol; a second
    # static of the same name in the same function is "n#2", a third "n#3" (DIE order)
    named_types: dict[str, TypeInfo] = field(default_factory=dict)
    # struct/union/enum/typedef definitions seen, by C spelling ("struct node", "pt_t");
    # lets a client expand a pointer's shallow target
    producer: str | None = None     # DW_AT_producer of the first CU (compiler + flags)
    dwarf_version: int | None = None
    has_dwarf: bool = False   # the object had a .debug_info section
    errors: tuple[str, ...] = ()    # problems met (malformed DWARF): index is partial
    build_seconds: float = 0.0      # wall time build_index took
    version: int = INDEX_VERSION    # INDEX_VERSION of the code that built it (cache check)

    def function_at(self, section: str, offset: int = 0) -> FunctionInfo | None:
        """The function whose entry is at (section, offset), if indexed."""
        for f in self.functions.values():
            if f.section == section and f.offset == offset:
                return f
        return None

    def static_local(self, function: str, name: str) -> VariableInfo | None:
        """The function-scope static `name` of `function` (source names)."""
        sym = self.static_locals.get((function, name))
        return self.variables.get(sym) if sym is not None else None


# --------------------------------------------------------------------------- ELF bits

_SYM = struct.Struct("<IBBHQQ")
_CLONE_MARKERS = (".constprop", ".isra", ".part", ".cold", ".lto_priv", ".clone")


@dataclass
class _Sym:
    name: str
    type: int
    bind: int
    shndx: int
    value: int
    size: int


class _Elf:
    """What build_index needs from the ELF: sections, symbols, debug relocations."""

    def __init__(self, elf, data: bytes):
        self.elf = elf
        self.is_rel = elf["e_type"] == "ET_REL"
        self.sec_names: list[str] = []
        headers = []
        for sec in elf.iter_sections():
            self.sec_names.append(sec.name)
            headers.append(sec.header)
        self.headers = headers
        self.syms: list[_Sym] = []
        for hdr in headers:
            if hdr["sh_type"] == "SHT_SYMTAB":
                strh = headers[hdr["sh_link"]] if hdr["sh_link"] < len(headers) else None
                strtab = data[strh["sh_offset"]:strh["sh_offset"] + strh["sh_size"]] \
                    if strh is not None else b""
                raw = data[hdr["sh_offset"]:hdr["sh_offset"] + hdr["sh_size"]]
                raw = raw[:len(raw) - len(raw) % _SYM.size]
                for st_name, info, _other, shndx, value, size in _SYM.iter_unpack(raw):
                    end = strtab.find(b"\0", st_name)
                    nm = strtab[st_name:end if end >= 0 else len(strtab)]
                    self.syms.append(_Sym(nm.decode("utf-8", "replace"), info & 0xF,
                                          info >> 4, shndx, value, size))
                break
        import numpy as np
        self.symvals = np.array([s.value for s in self.syms], dtype=np.uint64)
        # (shndx, value) -> symbols defined there (named, not section/file symbols)
        self.at: dict[tuple[int, int], list[_Sym]] = {}
        self.by_value: dict[int, list[_Sym]] = {}
        for s in self.syms:
            if s.name and s.type in (STT_FUNC, STT_OBJECT, STT_NOTYPE, STT_TLS,
                                     STT_GNU_IFUNC) and 0 < s.shndx < 0xFF00:
                self.at.setdefault((s.shndx, s.value), []).append(s)
                self.by_value.setdefault(s.value, []).append(s)
        # r_offset in .debug_info -> (symbol index, addend), for the relocations that
        # DW_AT_low_pc and DW_OP_addr / TLS DW_OP_const8u operands carry
        self.relocs: dict[int, tuple[int, int]] = {}
        try:
            info_idx = self.sec_names.index(".debug_info")
        except ValueError:
            info_idx = -1
        if info_idx >= 0 and self.is_rel:
            from devlink.link.arch.x86_64 import (R_X86_64_64, R_X86_64_DTPOFF32,
                                                  R_X86_64_DTPOFF64)
            for hdr in headers:
                if hdr["sh_type"] == "SHT_RELA" and hdr["sh_info"] == info_idx:
                    raw = data[hdr["sh_offset"]:hdr["sh_offset"] + hdr["sh_size"]]
                    raw = raw[:len(raw) - len(raw) % 24]
                    arr = np.frombuffer(raw, dtype=[("off", "<u8"), ("info", "<u8"),
                                                    ("add", "<i8")])
                    typ = arr["info"] & 0xFFFFFFFF
                    sel = arr[(typ == R_X86_64_64) | (typ == R_X86_64_DTPOFF64) |
                              (typ == R_X86_64_DTPOFF32)]
                    self.relocs = {int(o): (int(i >> 32), int(a))
                                   for o, i, a in zip(sel["off"], sel["info"], sel["add"])}

    def install_fast_relocation(self, data: bytes) -> None:
        """Make pyelftools read debug sections relocated by `relocated_section` (numpy,
        ~10x faster than its per-relocation loop, and it knows DTPOFF64, which
        pyelftools rejects).  Only for x86-64 ET_REL; otherwise pyelftools does it."""
        elf = self.elf
        if not self.is_rel or elf["e_machine"] != "EM_X86_64" or \
                not hasattr(elf, "_read_dwarf_section"):
            return
        from elftools.dwarf.dwarfinfo import DebugSectionDescriptor
        original = elf._read_dwarf_section

        def read(section, relocate_dwarf_sections):
            if not relocate_dwarf_sections:
                return original(section, relocate_dwarf_sections)
            body = self.relocated_section(data, section.name)
            if body is None:
                return original(section, relocate_dwarf_sections)
            return DebugSectionDescriptor(
                stream=io.BytesIO(body), name=section.name,
                global_offset=section["sh_offset"], size=len(body),
                address=section["sh_addr"])

        elf._read_dwarf_section = read

    def relocated_section(self, data: bytes, name: str) -> bytes | None:
        """The bytes of section `name` with its RELA relocations applied as a static
        link at address 0 would (S + A, or S + A - P); None if a relocation type is not
        one of the data relocations debug sections use."""
        import numpy as np
        from devlink.link.arch import x86_64 as X
        try:
            idx = self.sec_names.index(name)
        except ValueError:
            return None
        h = self.headers[idx]
        if h["sh_type"] == "SHT_NOBITS":
            return None
        buf = np.frombuffer(bytearray(data[h["sh_offset"]:h["sh_offset"] + h["sh_size"]]),
                            dtype=np.uint8).copy()
        symvals = self.symvals
        for rh in self.headers:
            if rh["sh_type"] != "SHT_RELA" or rh["sh_info"] != idx:
                continue
            raw = data[rh["sh_offset"]:rh["sh_offset"] + rh["sh_size"]]
            raw = raw[:len(raw) - len(raw) % 24]
            arr = np.frombuffer(raw, dtype=[("off", "<u8"), ("info", "<u8"), ("add", "<i8")])
            typ = (arr["info"] & 0xFFFFFFFF).astype(np.int64)
            sym = (arr["info"] >> 32).astype(np.int64)
            off = arr["off"].astype(np.int64)
            if len(arr) == 0:
                continue
            if sym.max() >= len(symvals):
                return None
            s_val = symvals[sym]
            add = arr["add"].astype(np.int64)
            for types, width, pcrel in (
                    ((X.R_X86_64_64, X.R_X86_64_DTPOFF64), 8, False),
                    ((X.R_X86_64_PC64,), 8, True),
                    ((X.R_X86_64_32, X.R_X86_64_32S, X.R_X86_64_DTPOFF32), 4, False),
                    ((X.R_X86_64_PC32,), 4, True)):
                sel = np.isin(typ, types)
                if not sel.any():
                    continue
                o = off[sel]
                if (o + width > len(buf)).any() or (o < 0).any():
                    return None
                v = (s_val[sel].astype(np.uint64) + add[sel].astype(np.uint64))
                if pcrel:
                    v = v - o.astype(np.uint64)
                if width == 4:
                    v = (v & np.uint64(0xFFFFFFFF)).astype("<u4")
                else:
                    v = v.astype("<u8")
                pos = o[:, None] + np.arange(width)
                buf[pos] = v.view(np.uint8).reshape(-1, width)
            known = np.isin(typ, (X.R_X86_64_NONE, X.R_X86_64_64, X.R_X86_64_DTPOFF64,
                                  X.R_X86_64_PC64, X.R_X86_64_32, X.R_X86_64_32S,
                                  X.R_X86_64_DTPOFF32, X.R_X86_64_PC32))
            if not known.all():
                return None
        return buf.tobytes()

    def resolve(self, value_offset: int, value: int) -> tuple[int | None, int | None,
                                                               _Sym | None, int]:
        """Where the 8-byte address stored at `value_offset` of .debug_info points:
        (section index, offset in section, relocation symbol, addend)."""
        rel = self.relocs.get(value_offset)
        if rel is not None:
            symidx, addend = rel
            if symidx >= len(self.syms):
                return None, None, None, addend
            s = self.syms[symidx]
            if s.type == STT_SECTION:
                return s.shndx, addend, s, addend
            if 0 < s.shndx < 0xFF00:
                return s.shndx, s.value + addend, s, addend
            return None, None, s, addend
        if not self.is_rel:
            cands = self.by_value.get(value)
            if cands:
                return cands[0].shndx, value, None, 0
        return None, None, None, 0

    def sec_name(self, idx: int | None) -> str | None:
        if idx is None or not 0 <= idx < len(self.sec_names):
            return None
        return self.sec_names[idx]


def _pick(cands: list[_Sym], types: tuple[int, ...], src_name: str) -> tuple[_Sym | None,
                                                                             list[_Sym]]:
    """The best symbol for source name `src_name` among `cands`, and the others."""
    pool = [s for s in cands if s.type in types]
    if not pool:
        return None, []

    def rank(s: _Sym) -> tuple[int, str]:
        if s.name == src_name:
            return (0, s.name)
        if s.name.startswith(src_name + ".") and not s.name.endswith(
                (".localalias", ".cold")):
            return (1, s.name)
        if s.name.endswith(".localalias"):
            return (3, s.name)
        return (2, s.name)

    pool.sort(key=rank)
    return pool[0], pool[1:]


# --------------------------------------------------------------------------- DWARF walk

_ENCODINGS = {
    0x02: (ENC_BOOL, False), 0x03: (ENC_COMPLEX, True), 0x04: (ENC_FLOAT, True),
    0x05: (ENC_SIGNED, True), 0x06: (ENC_CHAR, True), 0x07: (ENC_UNSIGNED, False),
    0x08: (ENC_CHAR, False), 0x10: (ENC_UNSIGNED, False),
}
_VOID = TypeInfo(kind=KIND_VOID, name="void", size=None)
_UNKNOWN = TypeInfo(kind=KIND_UNKNOWN, name="?", size=None)
_ORIGIN_ATTRS = ("DW_AT_abstract_origin", "DW_AT_specification")


def _s(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def _uleb_len(n: int) -> int:
    k = 1
    while n >= 0x80:
        n >>= 7
        k += 1
    return k


def _children(die):
    """die.iter_children(), stopping at a DIE that is not after the previous one or
    outside the unit: a malformed DW_AT_sibling pointing backwards would otherwise make
    pyelftools loop forever."""
    cu = die.cu
    end = cu.cu_offset + cu["unit_length"] + cu.structs.initial_length_field_size()
    last = die.offset
    for ch in die.iter_children():
        if ch.offset <= last or ch.offset >= end:
            raise ValueError("DIE at 0x%x: child list runs backwards or out of its unit "
                             "(bad DW_AT_sibling)" % die.offset)
        last = ch.offset
        yield ch


class _Builder:
    def __init__(self, elf: _Elf, dwarf, index: ObjectIndex):
        self.elf = elf
        self.dwarf = dwarf
        self.ix = index
        self.errors: list[str] = []
        self.types: dict[tuple[int, bool], TypeInfo] = {}
        self.in_progress: set[tuple[int, bool]] = set()
        self.files: dict[int, list[str | None]] = {}
        self.static_counts: dict[tuple[str, str], int] = {}
        self.unmatched_funcs: list = []  # (die, origin) with code but no symbol found

    # ---- attribute helpers

    def origin_chain(self, die):
        """`die`, then the DIEs it refers to by abstract_origin/specification."""
        seen = 0
        while die is not None and seen < 8:
            yield die
            seen += 1
            nxt = None
            for a in _ORIGIN_ATTRS:
                if a in die.attributes:
                    try:
                        nxt = die.get_DIE_from_attribute(a)
                    except Exception:
                        nxt = None
                    break
            die = nxt

    def attr(self, die, name):
        for d in self.origin_chain(die):
            av = d.attributes.get(name)
            if av is not None:
                return av.value, d
        return None, None

    def name_of(self, die) -> str | None:
        v, _ = self.attr(die, "DW_AT_name")
        return _s(v) if v is not None else None

    def file_name(self, die, idx) -> str | None:
        if not isinstance(idx, int):
            return None
        cu = die.cu
        table = self.files.get(cu.cu_offset)
        if table is None:
            table = []
            try:
                top = cu.get_top_DIE()
                comp_dir = _s(top.attributes["DW_AT_comp_dir"].value) \
                    if "DW_AT_comp_dir" in top.attributes else ""
                lp = self.dwarf.line_program_for_CU(cu)
                if lp is not None:
                    v5 = lp.header.version >= 5
                    dirs = [_s(d) for d in lp["include_directory"]]
                    for fe in lp["file_entry"]:
                        nm = _s(fe.name)
                        di = fe.dir_index
                        if v5:
                            d = dirs[di] if di < len(dirs) else ""
                        else:
                            d = comp_dir if di == 0 else (dirs[di - 1]
                                                          if di - 1 < len(dirs) else "")
                        p = os.path.join(comp_dir, d, nm)
                        table.append(os.path.normpath(p))
                    if not v5:
                        table.insert(0, None)
            except Exception as e:  # malformed line table: positions without files
                self.errors.append("line table of CU at 0x%x: %s" % (cu.cu_offset, e))
            self.files[cu.cu_offset] = table
        return table[idx] if 0 <= idx < len(table) else None

    def decl(self, die) -> tuple[str | None, int | None, int | None]:
        f, fd = self.attr(die, "DW_AT_decl_file")
        line, _ = self.attr(die, "DW_AT_decl_line")
        col, _ = self.attr(die, "DW_AT_decl_column")
        return (self.file_name(fd, f) if fd is not None else None,
                line if isinstance(line, int) else None,
                col if isinstance(col, int) else None)

    # ---- types

    def type_attr(self, die, shallow: bool = False) -> TypeInfo | None:
        """The type named by die's DW_AT_type (following origins); None if absent."""
        for d in self.origin_chain(die):
            if "DW_AT_type" in d.attributes:
                try:
                    tdie = d.get_DIE_from_attribute("DW_AT_type")
                except Exception as e:
                    self.errors.append("bad DW_AT_type at 0x%x: %s" % (d.offset, e))
                    return _UNKNOWN
                return self.type_of(tdie, shallow)
        return None

    def type_of(self, die, shallow: bool = False) -> TypeInfo:
        key = (die.offset, shallow)
        t = self.types.get(key)
        if t is not None:
            return t
        if key in self.in_progress:  # only malformed DWARF has cycles we follow
            return _UNKNOWN
        self.in_progress.add(key)
        try:
            t = self._make_type(die, shallow)
        except Exception as e:
            self.errors.append("type at 0x%x: %s" % (die.offset, e))
            t = _UNKNOWN
        finally:
            self.in_progress.discard(key)
        self.types[key] = t
        return t

    def _make_type(self, die, shallow: bool) -> TypeInfo:
        tag = die.tag
        at = die.attributes
        size = at["DW_AT_byte_size"].value if "DW_AT_byte_size" in at else None
        if not isinstance(size, int):
            size = None
        name = _s(at["DW_AT_name"].value) if "DW_AT_name" in at else None
        if tag == "DW_TAG_base_type":
            enc = at["DW_AT_encoding"].value if "DW_AT_encoding" in at else None
            e, signed = _ENCODINGS.get(enc, (ENC_OTHER, False))
            return TypeInfo(kind=KIND_BASE, name=name or "?", size=size, encoding=e,
                            is_signed=signed)
        if tag in ("DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type",
                   "DW_TAG_atomic_type"):
            inner = self.type_attr(die, shallow) or _VOID
            if tag == "DW_TAG_const_type":
                return replace(inner, const=True)
            if tag == "DW_TAG_volatile_type":
                return replace(inner, volatile=True)
            return inner
        if tag == "DW_TAG_typedef":
            inner = self.type_attr(die, shallow) or _VOID
            t = replace(inner, name=name or "?", typedef_of=c_decl(inner),
                        const=False, volatile=False)
            if not shallow:
                self.ix.named_types.setdefault(t.name, t)
            return t
        if tag == "DW_TAG_pointer_type":
            # pointer targets are shallow: no cycles, and a pointer's hash does not
            # depend on the pointee's layout
            target = self.type_attr(die, True) or _VOID
            t = TypeInfo(kind=KIND_POINTER, name="", size=size or 8, target=target)
            return replace(t, name=c_decl(t))
        if tag in ("DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type"):
            kind = KIND_UNION if tag == "DW_TAG_union_type" else KIND_STRUCT
            cname = "%s %s" % ("union" if kind == KIND_UNION else "struct",
                               name or "<anonymous>")
            if "DW_AT_declaration" in at:
                return TypeInfo(kind=kind, name=cname, size=size, shallow=True)
            if shallow:
                if name and cname not in self.ix.named_types:
                    # its definition too, for a client that expands the pointer and for
                    # the safety check that names a member a layout change added
                    self.type_of(die, False)
                return TypeInfo(kind=kind, name=cname, size=size, shallow=True)
            members = []
            for ch in _children(die):
                if ch.tag != "DW_TAG_member":
                    continue
                mat = ch.attributes
                mname = _s(mat["DW_AT_name"].value) if "DW_AT_name" in mat else ""
                mtype = self.type_attr(ch, False) or _UNKNOWN
                off = mat["DW_AT_data_member_location"].value \
                    if "DW_AT_data_member_location" in mat else 0
                if not isinstance(off, int):
                    off = 0  # location expressions: not produced by C compilers
                bsize = mat["DW_AT_bit_size"].value if "DW_AT_bit_size" in mat else None
                boff = None
                if bsize is not None:
                    if "DW_AT_data_bit_offset" in mat:
                        dbo = mat["DW_AT_data_bit_offset"].value
                        off, boff = dbo // 8, dbo % 8
                    elif "DW_AT_bit_offset" in mat:  # DWARF <= 3, big-endian numbering
                        storage = (mat["DW_AT_byte_size"].value
                                   if "DW_AT_byte_size" in mat else (mtype.size or 4))
                        boff = storage * 8 - mat["DW_AT_bit_offset"].value - bsize
                    else:
                        boff = 0
                members.append(Member(mname, off, mtype, bsize, boff))
            t = TypeInfo(kind=kind, name=cname, size=size, members=tuple(members))
            if name:
                self.ix.named_types.setdefault(cname, t)
            return t
        if tag == "DW_TAG_enumeration_type":
            under = self.type_attr(die, True)
            signed = bool(under.is_signed) if under is not None else False
            enums = []
            for ch in _children(die):
                if ch.tag == "DW_TAG_enumerator" and "DW_AT_const_value" in ch.attributes:
                    av = ch.attributes["DW_AT_const_value"]
                    v = av.value
                    if signed and av.form in ("DW_FORM_data1", "DW_FORM_data2",
                                              "DW_FORM_data4", "DW_FORM_data8"):
                        bits = {"DW_FORM_data1": 8, "DW_FORM_data2": 16,
                                "DW_FORM_data4": 32, "DW_FORM_data8": 64}[av.form]
                        if v >> (bits - 1):
                            v -= 1 << bits
                    enums.append((_s(ch.attributes["DW_AT_name"].value)
                                  if "DW_AT_name" in ch.attributes else "?", v))
            t = TypeInfo(kind=KIND_ENUM, name="enum " + (name or "<anonymous>"),
                         size=size, encoding=ENC_SIGNED if signed else ENC_UNSIGNED,
                         is_signed=signed, enumerators=tuple(enums))
            if name:
                self.ix.named_types.setdefault(t.name, t)
            return t
        if tag == "DW_TAG_array_type":
            elem = self.type_attr(die, shallow) or _UNKNOWN
            counts: list[int | None] = []
            for ch in _children(die):
                if ch.tag not in ("DW_TAG_subrange_type", "DW_TAG_enumeration_type"):
                    continue
                cat = ch.attributes
                cnt = None
                if "DW_AT_count" in cat and isinstance(cat["DW_AT_count"].value, int):
                    cnt = cat["DW_AT_count"].value
                elif "DW_AT_upper_bound" in cat and \
                        isinstance(cat["DW_AT_upper_bound"].value, int) and \
                        cat["DW_AT_upper_bound"].form != "DW_FORM_exprloc":
                    lo = cat["DW_AT_lower_bound"].value \
                        if "DW_AT_lower_bound" in cat else 0
                    cnt = cat["DW_AT_upper_bound"].value - (lo if isinstance(lo, int)
                                                            else 0) + 1
                counts.append(cnt)
            if not counts:
                counts = [None]
            t = elem
            for cnt in reversed(counts):
                esz = t.size
                arr = TypeInfo(kind=KIND_ARRAY, name="", target=t, count=cnt,
                               size=(cnt * esz) if cnt is not None and esz is not None
                               else None)
                t = replace(arr, name=c_decl(arr))
            return t
        if tag == "DW_TAG_subroutine_type":
            return self.function_type(die, shallow)
        if tag == "DW_TAG_unspecified_type":
            return TypeInfo(kind=KIND_UNKNOWN, name=name or "?", size=size)
        return TypeInfo(kind=KIND_UNKNOWN, name=name or "?", size=size)

    def function_type(self, die, shallow: bool = False) -> TypeInfo:
        """A function type from a subroutine_type or subprogram DIE."""
        ret = self.type_attr(die, shallow)
        params = []
        variadic = False
        for ch in _children(die):
            if ch.tag == "DW_TAG_formal_parameter":
                params.append(self.type_attr(ch, shallow) or _UNKNOWN)
            elif ch.tag == "DW_TAG_unspecified_parameters":
                variadic = True
        proto, _ = self.attr(die, "DW_AT_prototyped")
        t = TypeInfo(kind=KIND_FUNCTION, name="", size=None, target=ret,
                     params=tuple(params), variadic=variadic, prototyped=bool(proto))
        return replace(t, name=c_decl(t))

    # ---- DIEs

    def walk(self, parent, func: str | None) -> None:
        for ch in _children(parent):
            try:
                tag = ch.tag
                if tag == "DW_TAG_subprogram":
                    self.subprogram(ch)
                    if ch.has_children:
                        self.walk(ch, self.name_of(ch) or func)
                elif tag == "DW_TAG_variable":
                    self.variable(ch, func)
                elif tag == "DW_TAG_lexical_block" and ch.has_children:
                    self.walk(ch, func)
                elif tag == "DW_TAG_inlined_subroutine" and ch.has_children:
                    self.walk(ch, self.name_of(ch) or func)
            except Exception as e:
                self.errors.append("DIE at 0x%x: %s: %s" % (ch.offset, type(e).__name__, e))

    def subprogram(self, die) -> None:
        at = die.attributes
        if "DW_AT_declaration" in at:
            return
        low = at.get("DW_AT_low_pc")
        if low is None:
            if "DW_AT_ranges" in at:
                self.unmatched_funcs.append(die)
            return  # abstract instance (inlined everywhere) or a declaration
        shndx, off, _rs, _add = self.elf.resolve(low.offset, low.value)
        src = self.name_of(die) or ""
        best = None
        others: list[_Sym] = []
        if shndx is not None:
            best, others = _pick(self.elf.at.get((shndx, off), []),
                                 (STT_FUNC, STT_GNU_IFUNC, STT_NOTYPE), src)
        if best is None:
            self.unmatched_funcs.append(die)
            return
        size = None
        high = at.get("DW_AT_high_pc")
        if high is not None and isinstance(high.value, int):
            size = high.value if high.form != "DW_FORM_addr" else high.value - low.value
        self.add_function(die, best.name, self.elf.sec_name(shndx), off, size,
                          tuple(s.name for s in others))

    def add_function(self, die, symbol: str, section, offset, size, aliases) -> None:
        if symbol in self.ix.functions:
            return
        src = self.name_of(die) or symbol
        # signature from the DIE that carries the source parameters
        sig_die = die
        for d in self.origin_chain(die):
            sig_die = d
        ret = self.type_attr(die, False)
        params, pnames, variadic = [], [], False
        for ch in _children(sig_die):
            if ch.tag == "DW_TAG_formal_parameter":
                params.append(self.type_attr(ch, False) or _UNKNOWN)
                pnames.append(self.name_of(ch) or "")
            elif ch.tag == "DW_TAG_unspecified_parameters":
                variadic = True
        proto, _ = self.attr(die, "DW_AT_prototyped")
        ft = TypeInfo(kind=KIND_FUNCTION, name="", size=None, target=ret,
                      params=tuple(params), variadic=variadic, prototyped=bool(proto))
        sig = c_decl(ft)
        ext, _ = self.attr(die, "DW_AT_external")
        inl, _ = self.attr(die, "DW_AT_inline")
        f, line, col = self.decl(die)
        self.ix.functions[symbol] = FunctionInfo(
            symbol=symbol, name=src, decl_file=f, decl_line=line, decl_column=col,
            external=bool(ext), signature=sig, signature_hash=type_hash(ft),
            return_type=ret, param_types=tuple(params), param_names=tuple(pnames),
            section=section, offset=offset, size=size, aliases=aliases,
            is_clone=symbol != src and any(m in symbol for m in _CLONE_MARKERS),
            inline=bool(inl) and inl in (1, 3))

    def match_leftover_functions(self) -> None:
        """Functions whose entry has no DW_AT_low_pc (hot/cold split: DW_AT_ranges) or
        whose relocation could not be resolved: match ELF function symbols by source
        name ("f", "f.part.0"), never a ".cold" piece."""
        if not self.unmatched_funcs:
            return
        by_src: dict[str, object] = {}
        for die in self.unmatched_funcs:
            n = self.name_of(die)
            if n:
                by_src.setdefault(n, die)
        for s in self.elf.syms:
            if s.type not in (STT_FUNC, STT_GNU_IFUNC) or not s.name or \
                    s.name in self.ix.functions or s.name.endswith((".cold", ".localalias")):
                continue
            if not 0 < s.shndx < 0xFF00:
                continue
            die = by_src.get(s.name.split(".", 1)[0])
            if die is None:
                continue
            self.add_function(die, s.name, self.elf.sec_name(s.shndx), s.value,
                              s.size or None, ())

    def variable(self, die, func: str | None) -> None:
        at = die.attributes
        if "DW_AT_declaration" in at:
            return
        loc = at.get("DW_AT_location")
        if loc is None or not isinstance(loc.value, list) or not loc.value:
            return  # optimised away, in registers, or a location list: no storage
        expr = loc.value
        tls = False
        if expr[0] == 0x03 and len(expr) >= 9:          # DW_OP_addr
            pass
        elif expr[0] in (0x0E, 0x0F) and len(expr) >= 10 and expr[9] in (0xE0, 0x9B):
            tls = True                                    # const8u/s; form_tls_address
        else:
            return
        form = loc.form
        n = len(expr)
        hdr = {"DW_FORM_block1": 1, "DW_FORM_block2": 2, "DW_FORM_block4": 4}.get(
            form, _uleb_len(n))
        value_off = loc.offset + hdr + 1
        addr = int.from_bytes(bytes(expr[1:9]), "little")
        shndx, off, rsym, addend = self.elf.resolve(value_off, addr)
        src = self.name_of(die) or ""
        best = None
        if shndx is not None:
            if rsym is not None and rsym.type != STT_SECTION and addend == 0:
                best = rsym
            else:
                best, _ = _pick(self.elf.at.get((shndx, off), []),
                                (STT_OBJECT, STT_TLS, STT_NOTYPE), src)
                if best is None and rsym is not None and rsym.type != STT_SECTION:
                    best = rsym
        elif rsym is not None and rsym.type != STT_SECTION:
            best = rsym  # e.g. an undefined or common symbol
        key = best.name if best is not None else src
        if not key or key in self.ix.variables:
            return
        ext, _ = self.attr(die, "DW_AT_external")
        if func is not None:
            scope = SCOPE_FUNCTION
        else:
            scope = SCOPE_GLOBAL if ext else SCOPE_FILE
        t = self.type_attr(die, False) or _UNKNOWN
        static_key = None
        if scope == SCOPE_FUNCTION:
            ck = (func, src)
            k = self.static_counts.get(ck, 0) + 1
            self.static_counts[ck] = k
            static_key = (func, src if k == 1 else "%s#%d" % (src, k))
            self.ix.static_locals[static_key] = key
        size = t.size
        if size is None and best is not None and best.size:
            size = best.size
        f, line, col = self.decl(die)
        self.ix.variables[key] = VariableInfo(
            symbol=key, name=src, decl_file=f, decl_line=line, decl_column=col,
            scope=scope, enclosing_function=func if scope == SCOPE_FUNCTION else None,
            static_key=static_key, elf_symbol=best.name if best is not None else None,
            elf_section=self.elf.sec_name(shndx), offset=off,
            reloc_symbol=(rsym.name if rsym is not None and rsym.type != STT_SECTION
                          else self.elf.sec_name(rsym.shndx) if rsym is not None
                          else None),
            addend=addend, type=t, type_hash=type_hash(t), size=size, tls=tls,
            const=t.const)


# --------------------------------------------------------------------------- entry


def content_hash(data: bytes) -> str:
    """The cache key of an object: sha256 hex of its bytes."""
    return hashlib.sha256(data).hexdigest()


def build_index(name: str, data: bytes, *, hash: str | None = None) -> ObjectIndex:
    """Index the DWARF of one object file given its bytes.

    `name` is only recorded (and used in messages); `hash` is recorded as
    `content_hash` (computed when not given).  Raises DevlinkError only when `data` is
    not an ELF file; an object without DWARF gives an empty index, malformed DWARF a
    partial one with `errors` set.
    """
    t0 = time.perf_counter()
    data = bytes(data)
    if data[:4] != ELFMAG:
        raise DevlinkError("%s: not an ELF object (bad magic); pass a .o file built by "
                           "the C compiler" % name)
    ix = ObjectIndex(name=name, content_hash=hash or content_hash(data))
    from elftools.elf.elffile import ELFFile
    try:
        elf = ELFFile(io.BytesIO(data))
        eh = _Elf(elf, data)
    except Exception as e:
        raise DevlinkError("%s: malformed ELF file (%s); rebuild the object"
                           % (name, e)) from None
    errors: list[str] = []
    try:
        ix.has_dwarf = elf.has_dwarf_info() and ".debug_info" in eh.sec_names
    except Exception:
        ix.has_dwarf = False
    if ix.has_dwarf:
        try:
            try:
                eh.install_fast_relocation(data)
                dwarf = elf.get_dwarf_info()
            except Exception as e:  # e.g. a relocation pyelftools cannot apply
                errors.append("relocating DWARF: %s" % e)
                dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
            b = _Builder(eh, dwarf, ix)
            for cu in dwarf.iter_CUs():
                try:
                    top = cu.get_top_DIE()
                    if ix.producer is None and "DW_AT_producer" in top.attributes:
                        ix.producer = _s(top.attributes["DW_AT_producer"].value)
                        ix.dwarf_version = cu["version"]
                    b.walk(top, None)
                except Exception as e:
                    errors.append("CU at 0x%x: %s: %s" % (cu.cu_offset,
                                                          type(e).__name__, e))
            try:
                b.match_leftover_functions()
            except Exception as e:
                errors.append("matching functions: %s" % e)
            errors.extend(b.errors)
        except Exception as e:
            errors.append("DWARF: %s: %s" % (type(e).__name__, e))
    ix.errors = tuple(errors)
    ix.build_seconds = time.perf_counter() - t0
    return ix


# --------------------------------------------------------------------------- cache

CACHE_VERSION = INDEX_VERSION  # the version field stored in each cache file
#: the MAC's personalisation for cache files (devlink.private)
CACHE_KIND = b"DLDW"


class DwarfIndexCache:
    """ObjectIndex per object content, in memory and on disk, built off the caller's
    thread when prefetched.

    Files are `cache_dir/<sha256>.pkl`, each this user's MAC (devlink.private, checked
    before unpickling: a planted file never is) and a pickle of
    {"version": CACHE_VERSION, "key": <hash>, "index": ObjectIndex}; a file that does not
    load (foreign, corrupt, truncated, other version) is ignored and rebuilt.  Disk errors are
    never raised.  Thread-safe: one build per key at a time; `get` waits for an
    in-flight build of the same object instead of parsing it twice.
    """

    def __init__(self, cache_dir: str | os.PathLike | None, *, max_workers: int = 1,
                 max_memory_entries: int = 512):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.max_memory_entries = max_memory_entries
        self._mem: OrderedDict[str, ObjectIndex] = OrderedDict()
        self._inflight: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self.builds = 0        # indexes built by this cache (statistics)
        self.disk_hits = 0
        self.memory_hits = 0

    # ---- public API

    @staticmethod
    def key_for(data: bytes) -> str:
        return content_hash(data)

    def get(self, name: str, data: bytes, hash: str | None = None) -> ObjectIndex:
        """The index of the object `data` (named `name`): from memory, from an in-flight
        build, from disk, or built now on this thread.  Raises DevlinkError for non-ELF
        input (like build_index)."""
        key = hash or content_hash(data)
        with self._lock:
            ix = self._mem_get(key)
            if ix is not None:
                return self._renamed(ix, name)
            fut = self._inflight.get(key)
            if fut is None:
                fut = Future()
                self._inflight[key] = fut
                owner = True
            else:
                owner = False
        if not owner:
            return self._renamed(fut.result(), name)
        self._produce(key, name, data, fut)
        return self._renamed(fut.result(), name)

    def get_cached(self, hash: str) -> ObjectIndex | None:
        """The index for content hash `hash` if in memory or on disk; never parses and
        never waits for an in-flight build."""
        with self._lock:
            ix = self._mem_get(hash)
        if ix is not None:
            return ix
        ix = self._load(hash)
        if ix is not None:
            with self._lock:
                self._mem_put(hash, ix)
        return ix

    def prefetch(self, items: Iterable) -> list[Future]:
        """Build indexes in the background.  `items` are (name, data) or
        (name, data, hash).  Returns one Future per item (already cached ones are done
        futures); errors stay in the futures."""
        futs = []
        for it in items:
            name, data = it[0], it[1]
            key = (it[2] if len(it) > 2 and it[2] else None) or content_hash(data)
            with self._lock:
                ix = self._mem.get(key)
                if ix is not None:
                    f: Future = Future()
                    f.set_result(ix)
                    futs.append(f)
                    continue
                f = self._inflight.get(key)
                if f is not None:
                    futs.append(f)
                    continue
                f = Future()
                self._inflight[key] = f
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=self._max_workers,
                                                    thread_name_prefix="devlink-dwarf")
                pool = self._pool
            pool.submit(self._produce, key, name, data, f)
            futs.append(f)
        return futs

    def close(self, wait: bool = True) -> None:
        """Stop the worker threads (waiting for running builds when `wait`)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=not wait)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- internals

    def _renamed(self, ix: ObjectIndex, name: str) -> ObjectIndex:
        return ix if ix.name == name else replace(ix, name=name)

    def _mem_get(self, key: str) -> ObjectIndex | None:
        ix = self._mem.get(key)
        if ix is not None:
            self._mem.move_to_end(key)
            self.memory_hits += 1
        return ix

    def _mem_put(self, key: str, ix: ObjectIndex) -> None:
        self._mem[key] = ix
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_memory_entries:
            self._mem.popitem(last=False)

    def _path(self, key: str) -> Path | None:
        if self.cache_dir is None or not key or "/" in key or key.startswith("."):
            return None
        return self.cache_dir / (key + ".pkl")

    def _load(self, key: str) -> ObjectIndex | None:
        p = self._path(key)
        if p is None:
            return None
        try:
            with open(p, "rb") as fh:
                body = private.unseal(CACHE_KIND, fh.read())
            if body is None:      # not written by this user's devlink: never unpickled
                return None
            obj = pickle.loads(body)
            if not isinstance(obj, dict) or obj.get("version") != CACHE_VERSION or \
                    obj.get("key") != key:
                return None
            ix = obj.get("index")
            if not isinstance(ix, ObjectIndex) or ix.version != INDEX_VERSION:
                return None
            self.disk_hits += 1
            return ix
        except Exception:  # missing, corrupt, truncated, from another version
            return None

    def _store(self, key: str, ix: ObjectIndex) -> None:
        p = self._path(key)
        if p is None:
            return
        try:
            private.private_dir(str(p.parent))
            private.write_private(str(p), private.seal(CACHE_KIND, pickle.dumps(
                {"version": CACHE_VERSION, "key": key, "index": ix}, protocol=pickle.HIGHEST_PROTOCOL)))
        except Exception:  # a read-only or full disk (or a planted link) only costs a rebuild later
            pass

    def _produce(self, key: str, name: str, data: bytes, fut: Future) -> None:
        """Load or build the index for `key`, then resolve `fut` (which is registered
        in-flight under `key`)."""
        try:
            ix = self._load(key)
            if ix is None:
                ix = build_index(name, data, hash=key)
                self.builds += 1
                self._store(key, ix)
            with self._lock:
                self._mem_put(key, ix)
                self._inflight.pop(key, None)
            fut.set_result(ix)
        except BaseException as e:
            with self._lock:
                self._inflight.pop(key, None)
            fut.set_exception(e)

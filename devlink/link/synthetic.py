"""Synthetic sections: contents the linker makes rather than copies.

Each class first works out its entries (during scanning), reports its size (before
layout), and only then, with addresses known, renders its bytes into a bytearray.
None of them opens a file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from devlink.elf import consts as C
from devlink.elf.records import (
    Elf64_Dyn, Elf64_Rela, Elf64_Sym, Elf64_Verneed, Elf64_Vernaux, elf_hash, elf_hash_many, st_info,
)
from devlink.link.symbol import Symbol, SymbolFlags

PTR = 8


class StringTable:
    """A string table under construction (.dynstr, .strtab, .shstrtab)."""

    def __init__(self):
        self.buf = bytearray(b"\0")
        self.index: dict[str, int] = {"": 0}

    def add(self, s: str) -> int:
        off = self.index.get(s)
        if off is None:
            off = self.index[s] = len(self.buf)
            self.buf += s.encode("utf-8", "surrogateescape") + b"\0"
        return off

    def __len__(self) -> int:
        return len(self.buf)


# --- the GOT ------------------------------------------------------------------------------

class GotTag(IntEnum):
    #: constant address of a symbol: an import (GLOB_DAT), or a function's stub (for
    #: `mov f@GOTPCREL(%rip)` that cannot be relaxed), or a variable's address
    GOT = 0
    #: offset of a TLS variable from the thread pointer (initial exec)
    GOTTP = 1
    #: the function an IFUNC resolver picked, filled by ld.so (IRELATIVE); the IFUNC's
    #: stub jumps through it
    IPLT = 2
    #: the jump slot of an import whose stub is its canonical address (its address is
    #: taken absolutely): bound with JUMP_SLOT, which skips the executable's own
    #: definition, while its GOT entry (GLOB_DAT) holds the stub like every `&f`
    PLT = 3


@dataclass(slots=True)
class GotEntry:
    tag: GotTag
    symbol: Symbol
    cell_index: int

    def address(self, got: "GotSection") -> int:
        return got.addr + self.cell_index * PTR


class GotSection:
    """The GOT of constant entries, as in the seed's `GotSection` (tag, symbol, cell).

    The *mutable* per-function cells read by the stubs are a separate, page-aligned
    section (`CellSection`), because a live patch rewrites them and the shared patch area
    maps their pages from a file.
    """

    def __init__(self, extras):
        self.entries: list[GotEntry] = []
        self.extras = extras
        #: files with a local (non-global) symbol that has an entry
        self.local_files: set = set()
        #: address of the section (set by layout)
        self.addr = 0

    def _add(self, tag: GotTag, sym: Symbol) -> int:
        if sym.bind == C.STB_LOCAL:
            self.local_files.add(sym.file)
        index = len(self.entries)
        cell = self.entries[-1].cell_index + 1 if self.entries else 0
        self.entries.append(GotEntry(tag, sym, cell))
        return index

    def add_got_symbol(self, sym: Symbol) -> int:
        if sym.flags & SymbolFlags.GOT:
            return self.extras.field(sym, "got")
        index = self._add(GotTag.GOT, sym)
        sym.flags |= SymbolFlags.GOT
        self.extras.set_field(sym, "got", index)
        return index

    def add_gottp_symbol(self, sym: Symbol) -> int:
        if sym.flags & SymbolFlags.GOTTP:
            return self.extras.field(sym, "gottp")
        index = self._add(GotTag.GOTTP, sym)
        sym.flags |= SymbolFlags.GOTTP
        self.extras.set_field(sym, "gottp", index)
        return index

    def add_iplt_symbol(self, sym: Symbol) -> int:
        return self._add(GotTag.IPLT, sym)

    def add_plt_symbol(self, sym: Symbol) -> int:
        return self._add(GotTag.PLT, sym)

    def entry_address(self, index: int) -> int:
        return self.entries[index].address(self)

    def got_address(self, sym: Symbol) -> int:
        return self.entries[self.extras.field(sym, "got")].address(self)

    def gottp_address(self, sym: Symbol) -> int:
        return self.entries[self.extras.field(sym, "gottp")].address(self)

    def size(self) -> int:
        return len(self.entries) * PTR

    def render(self, canonical_address, tp: int) -> bytearray:
        """The entries' initial bytes (ld.so fills the imports', see
        dynamic.fill_dynamic_relocs)."""
        out = bytearray(self.size())
        import_flags = SymbolFlags.IMPORT
        for e in self.entries:
            sym = e.symbol
            tag = e.tag
            if tag == GotTag.GOT:
                if sym.flags & import_flags and not (sym.flags & SymbolFlags.COPY_REL):
                    continue                  # filled by ld.so (GLOB_DAT)
                val = canonical_address(sym)
            elif tag == GotTag.GOTTP:
                val = sym.address() - tp
            else:
                continue                      # IRELATIVE / JUMP_SLOT: ld.so fills them
            struct.pack_into("<q", out, e.cell_index * PTR, val)
        return out


# --- stubs and cells --------------------------------------------------------------------------

@dataclass(slots=True)
class Stub:
    """One canonical function address: `jmp *cell(%rip)`."""

    #: the symbol that names it (the first alias)
    symbol: Symbol
    #: the atom and offset of the function entry (None for imports)
    atom: object
    offset: int
    #: index of the mutable cell in CellSection (-1 for imports and IFUNCs)
    cell: int
    #: for imports and IFUNCs: the GotSection entry the stub jumps through (GLOB_DAT,
    #: JUMP_SLOT or IRELATIVE); -1 for functions of the program (they use `cell`)
    slot: int = -1


class StubSection:
    """Every function's stub: the address all calls and all `&f` resolve to."""

    def __init__(self):
        self.stubs: list[Stub] = []
        self.addr = 0

    def add(self, stub: Stub) -> int:
        self.stubs.append(stub)
        return len(self.stubs) - 1

    def address(self, index: int) -> int:
        return self.addr + index * 8

    def size(self) -> int:
        return len(self.stubs) * 8


class CellSection:
    """The mutable GOT cells read by the stubs, one per defined function, page aligned.

    A patch moves a function by storing its new atom address into its cell (one aligned
    8-byte store).  The section fills whole pages so it can be mapped from a shared file.
    """

    def __init__(self):
        #: stub index per cell
        self.stub_of: list[int] = []
        self.addr = 0

    def add(self, stub_index: int) -> int:
        self.stub_of.append(stub_index)
        return len(self.stub_of) - 1

    def address(self, index: int) -> int:
        return self.addr + index * PTR

    def size(self) -> int:
        return len(self.stub_of) * PTR


# --- dynamic linking tables -------------------------------------------------------------

class DynamicSymbols:
    """.dynsym, .dynstr, .hash, .gnu.version and .gnu.version_r, worked out together."""

    def __init__(self):
        #: entries naming the real code of exported functions, so that dladdr() (and
        #: backtrace_symbols) finds the function a return address is in.  They come
        #: first: a DT_HASH chain visits higher indexes first, so a lookup by name (ld.so,
        #: dlsym) finds the later entry, the stub, the canonical address.  (dladdr skips
        #: local symbols, so these are global too.)
        self.code_names: list[Symbol] = []
        #: global entries: imports and exports
        self.symbols: list[Symbol] = []
        self.dynstr = StringTable()
        #: (soname, version) -> version index (2..)
        self.versions: dict[tuple[str, str], int] = {}
        #: sonames of DT_NEEDED, in order
        self.needed: list[str] = []

    def add_code_name(self, sym: Symbol) -> None:
        assert not self.symbols, "code names come first"
        self.code_names.append(sym)
        self.dynstr.add(sym.name)

    def add(self, sym: Symbol, extras) -> int:
        if sym.extra_index and extras.field(sym, "dynsym"):
            return extras.field(sym, "dynsym")
        self.symbols.append(sym)
        index = len(self.code_names) + len(self.symbols)
        extras.set_field(sym, "dynsym", index)
        self.dynstr.add(sym.name)
        return index

    def add_needed(self, soname: str) -> None:
        if soname not in self.needed:
            self.needed.append(soname)
            self.dynstr.add(soname)

    def finish(self) -> None:
        """Fix versions and string offsets before sizes are asked for."""
        for sym in self.symbols:
            if sym.is_import and sym.version:
                key = (sym.file.soname, sym.version)
                if key not in self.versions:
                    self.versions[key] = len(self.versions) + 2
                    self.dynstr.add(sym.version)
        self.nbucket = max(1, self.count() // 2 + 1)

    def count(self) -> int:
        return len(self.code_names) + len(self.symbols)

    def dynsym_size(self) -> int:
        return (self.count() + 1) * Elf64_Sym.size

    def hash_size(self) -> int:
        return (2 + self.nbucket + self.count() + 1) * 4

    def versym_size(self) -> int:
        return (self.count() + 1) * 2

    def verneed_size(self) -> int:
        libs = {lib for lib, _ in self.versions}
        return len(libs) * Elf64_Verneed.size + len(self.versions) * Elf64_Vernaux.size

    def render_dynsym(self, value_of, shndx_of) -> bytes:
        out = bytearray(self.dynsym_size())
        for i, sym in enumerate(self.code_names, 1):
            Elf64_Sym.pack_into(out, i * 24, self.dynstr.index[sym.name], st_info(C.STB_GLOBAL, C.STT_FUNC), 0,
                                sym.atom.output.index, sym.address(), sym.size)
        for i, sym in enumerate(self.symbols, 1 + len(self.code_names)):
            name = self.dynstr.index[sym.name]
            if sym.is_import and not (sym.flags & SymbolFlags.COPY_REL):
                bind = C.STB_WEAK if sym.bind == C.STB_WEAK else C.STB_GLOBAL
                # an IFUNC import whose stub is canonical is a plain function here, or
                # dlsym would call the stub as a resolver
                typ = C.STT_FUNC if sym.type == C.STT_GNU_IFUNC else sym.type
                info = st_info(bind, typ)
                # a canonical PLT entry (address taken by absolute relocation) has a value
                value = value_of(sym) if sym.flags & SymbolFlags.CANONICAL_PLT else 0
                Elf64_Sym.pack_into(out, i * 24, name, info, 0, C.SHN_UNDEF, value, 0)
            else:
                bind = C.STB_WEAK if sym.bind == C.STB_WEAK else C.STB_GLOBAL
                # a function's value is its stub, which is what its size covers
                size = 8 if sym.flags & SymbolFlags.STUB else sym.size
                Elf64_Sym.pack_into(out, i * 24, name, st_info(bind, sym.type), sym.visibility,
                                    shndx_of(sym), value_of(sym), size)
        return bytes(out)

    def render_hash(self) -> bytes:
        nchain = self.count() + 1
        buckets = [0] * self.nbucket
        chains = [0] * nchain
        names = [sym.name.encode("utf-8", "surrogateescape") for sym in self.code_names + self.symbols]
        hashes = (elf_hash_many(names) % self.nbucket).tolist()
        for i, h in enumerate(hashes, 1):
            chains[i] = buckets[h]
            buckets[h] = i
        return struct.pack(f"<II{self.nbucket}I{nchain}I", self.nbucket, nchain, *buckets, *chains)

    def render_versym(self) -> bytes:
        vals = [0] + [C.VER_NDX_GLOBAL] * len(self.code_names)
        for sym in self.symbols:
            if sym.is_import and sym.version:
                vals.append(self.versions[(sym.file.soname, sym.version)])
            else:
                vals.append(C.VER_NDX_GLOBAL)
        return struct.pack(f"<{len(vals)}H", *vals)

    def render_verneed(self) -> bytes:
        by_lib: dict[str, list[tuple[str, int]]] = {}
        for (lib, ver), idx in self.versions.items():
            by_lib.setdefault(lib, []).append((ver, idx))
        out = bytearray()
        libs = list(by_lib)
        for li, lib in enumerate(libs):
            vers = by_lib[lib]
            next_off = 0 if li == len(libs) - 1 else Elf64_Verneed.size + len(vers) * Elf64_Vernaux.size
            out += Elf64_Verneed.pack(1, len(vers), self.dynstr.add(lib), Elf64_Verneed.size, next_off)
            for vi, (ver, idx) in enumerate(vers):
                nxt = 0 if vi == len(vers) - 1 else Elf64_Vernaux.size
                out += Elf64_Vernaux.pack(elf_hash(ver.encode()), 0, idx, self.dynstr.add(ver), nxt)
        return bytes(out)

    def verneed_count(self) -> int:
        return len({lib for lib, _ in self.versions})


class RelaDyn:
    """Dynamic relocations for ld.so: (offset, type, dynsym index, addend)."""

    def __init__(self):
        self.relocs: list[tuple[int, int, int, int]] = []

    def add(self, offset: int, r_type: int, sym_index: int = 0, addend: int = 0) -> None:
        self.relocs.append((offset, r_type, sym_index, addend))

    def size(self) -> int:
        return len(self.relocs) * Elf64_Rela.size

    def render(self, last_types: tuple[int, ...] = ()) -> bytes:
        """The table sorted by address, with `last_types` (IRELATIVE: a resolver may
        read anything the other relocations fill in) at the end."""
        if not self.relocs:
            return b""
        arr = np.array(self.relocs, np.int64).reshape(-1, 4)
        last = np.isin(arr[:, 1], list(last_types)) if last_types else np.zeros(len(arr), bool)
        order = np.lexsort((arr[:, 0], last))
        arr = arr[order]
        out = np.empty((len(arr), 3), "<u8")
        out[:, 0] = arr[:, 0]
        out[:, 1] = (arr[:, 2].astype(np.uint64) << np.uint64(32)) | arr[:, 1].astype(np.uint64)
        out[:, 2] = arr[:, 3].astype(np.uint64)
        return out.tobytes()


class DynamicSection:
    """.dynamic: the tags ld.so reads. The tag list is fixed before layout."""

    def __init__(self):
        self.tags: list[tuple[int, object]] = []

    def set_tags(self, tags: list[tuple[int, object]]) -> None:
        self.tags = tags + [(C.DT_NULL, 0)]

    def size(self) -> int:
        return len(self.tags) * Elf64_Dyn.size

    def render(self, resolve) -> bytes:
        return b"".join(Elf64_Dyn.pack(tag, resolve(val)) for tag, val in self.tags)

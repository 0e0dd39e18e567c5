"""What ld.so reads: `.interp`, `.dynsym` with its versions and `.hash`, `.rela.dyn` and
`.rela.plt`, `.dynamic`, `.dynstr`, and the GOT entries it fills.  Sized once imports
and exports are known, rendered after layout."""

from __future__ import annotations

from devlink.elf import consts as C
from devlink.link.arch import x86_64 as arch
from devlink.link.layout import tls_range
from devlink.link.object_file import ObjectFile, bind_import
from devlink.link.symbol import Symbol, SymbolFlags
from devlink.link.synthetic import GotTag
from devlink.output.image import OutputImage


def prebind_library_functions(linker) -> None:
    table = linker.symtab.globals
    for so in linker.shared:
        if not (so.used or not so.as_needed):
            continue
        for name, d in so.raw.defined.items():
            if (d.info & 0xF) not in (C.STT_FUNC, C.STT_GNU_IFUNC, C.STT_OBJECT) or d.version == "GLIBC_PRIVATE" \
                    or d.shndx == C.SHN_ABS:   # version markers such as GLIBC_ABI_DT_RELR
                continue
            sym = table.get(name)
            if sym is None:
                sym = table[name] = Symbol(name)
                bind_import(sym, so, d)
                sym.bind = C.STB_WEAK if d.info >> 4 == C.STB_WEAK else C.STB_GLOBAL
                sym.flags |= SymbolFlags.PREBOUND
            elif not (sym.flags & SymbolFlags.IMPORT) or sym.file is not so:
                continue
            if not (sym.flags & (SymbolFlags.GOT | SymbolFlags.COPY_REL)):
                linker.got.add_got_symbol(sym)


def size_dynamic_sections(linker) -> None:
    """Dynamic symbols (imports, exports, versions), ld.so's relocations and .dynamic's
    tags are decided, and their sections sized; the GOT is complete then too."""
    opts = linker.options
    # dynamic symbols: exports are definitions a library refers to (or all, -E)
    IMPORT, USED = SymbolFlags.IMPORT, SymbolFlags.GOT | SymbolFlags.COPY_REL | SymbolFlags.STUB
    imports = [sym for sym in linker.symtab.globals.values() if sym.flags & IMPORT and sym.flags & USED]
    for sym in imports:
        sym.file.used = True
    lib_names: set[str] = set()
    for so in linker.shared:
        if so.used:
            lib_names.update(so.raw.defined)
            lib_names.update(so.raw.undefined)
    export_all = opts.export_dynamic
    exports = [sym for sym in linker.symtab.globals.values()
               if (export_all or sym.name in lib_names) and isinstance(sym.file, ObjectFile)
               and sym.visibility not in (C.STV_HIDDEN, C.STV_INTERNAL)]
    # an exported function's value is its stub; an earlier entry names its code
    for sym in exports:
        if sym.flags & SymbolFlags.STUB and sym.atom is not None:
            linker.dynsyms.add_code_name(sym)
    for sym in imports:
        linker.dynsyms.add(sym, linker.extras)
    for sym in exports:
        sym.flags |= SymbolFlags.EXPORT
        linker.dynsyms.add(sym, linker.extras)
    for so in linker.shared:
        if so.used or not so.as_needed:
            linker.dynsyms.add_needed(so.soname)
    linker.dynsyms.finish()
    # a canonical import's stub must not jump through its GLOB_DAT entry: ld.so binds
    # that to the executable's own definition, the stub itself
    for stub in linker.stubs.stubs:
        if stub.atom is None and stub.symbol.flags & SymbolFlags.CANONICAL_PLT and \
                linker.got.entries[stub.slot].tag == GotTag.GOT:
            stub.slot = linker.got.add_plt_symbol(stub.symbol)
    # dynamic relocations: counted now (addresses are filled in after layout)
    fill_dynamic_relocs(linker)
    # output sections for the synthetic contents
    tc = linker.toolchain
    interp = (tc.dynamic_linker if tc else "/lib64/ld-linux-x86-64.so.2").encode() + b"\0"
    linker.interp = interp
    A, W = C.SHF_ALLOC, C.SHF_WRITE
    synth = linker.synthetic_section
    d = linker.dynsyms
    synth(".interp", C.SHT_PROGBITS, A, len(interp), 1)
    synth(".hash", C.SHT_HASH, A, d.hash_size(), 8, 4)
    synth(".dynsym", C.SHT_DYNSYM, A, d.dynsym_size(), 8, 24)
    if d.versions:
        synth(".gnu.version", C.SHT_GNU_versym, A, d.versym_size(), 2, 2)
        synth(".gnu.version_r", C.SHT_GNU_verneed, A, d.verneed_size(), 8)
    if linker.rela_dyn.relocs:
        synth(".rela.dyn", C.SHT_RELA, A, linker.rela_dyn.size(), 8, 24)
    if linker.rela_plt.relocs:
        synth(".rela.plt", C.SHT_RELA, A | C.SHF_INFO_LINK, linker.rela_plt.size(), 8, 24)
    synth(".got", C.SHT_PROGBITS, A | W, max(linker.got.size(), 8), 8, 8)
    # .dynamic: its tag list is fixed now; values are filled in after layout
    tags: list[tuple[int, object]] = [(C.DT_NEEDED, ("str", n)) for n in d.needed]
    if has_contents(linker, ".init"):
        tags.append((C.DT_INIT, ("sym", "_init")))
    if has_contents(linker, ".fini"):
        tags.append((C.DT_FINI, ("sym", "_fini")))
    for name, t_addr, t_size in ((".preinit_array", C.DT_PREINIT_ARRAY, C.DT_PREINIT_ARRAYSZ),
                                 (".init_array", C.DT_INIT_ARRAY, C.DT_INIT_ARRAYSZ),
                                 (".fini_array", C.DT_FINI_ARRAY, C.DT_FINI_ARRAYSZ)):
        if has_contents(linker, name):
            tags += [(t_addr, ("addr", name)), (t_size, ("size", name))]
    tags += [(C.DT_HASH, ("addr", ".hash")), (C.DT_STRTAB, ("addr", ".dynstr")),
             (C.DT_SYMTAB, ("addr", ".dynsym")), (C.DT_STRSZ, ("size", ".dynstr")),
             (C.DT_SYMENT, 24), (C.DT_DEBUG, 0)]
    if linker.rela_plt.relocs:
        tags += [(C.DT_PLTGOT, ("addr", ".got")), (C.DT_PLTRELSZ, ("size", ".rela.plt")),
                 (C.DT_PLTREL, C.DT_RELA), (C.DT_JMPREL, ("addr", ".rela.plt"))]
    if linker.rela_dyn.relocs:
        tags += [(C.DT_RELA, ("addr", ".rela.dyn")), (C.DT_RELASZ, ("size", ".rela.dyn")),
                 (C.DT_RELAENT, 24)]
    tags += [(C.DT_FLAGS, C.DF_BIND_NOW), (C.DT_FLAGS_1, C.DF_1_NOW)]
    if d.versions:
        tags += [(C.DT_VERSYM, ("addr", ".gnu.version")), (C.DT_VERNEED, ("addr", ".gnu.version_r")),
                 (C.DT_VERNEEDNUM, d.verneed_count())]
    linker.dynamic.set_tags(tags)
    synth(".dynamic", C.SHT_DYNAMIC, A | W, linker.dynamic.size(), 8, 16)
    # .dynstr last: the tags above added strings to it
    synth(".dynstr", C.SHT_STRTAB, A, len(d.dynstr), 1)


def fill_dynamic_relocs(linker) -> None:
    """What ld.so fills in at start: GLOB_DAT per import GOT entry (JUMP_SLOT where
    the stub is the canonical address, so ld.so does not bind the entry to the
    stub itself), COPY per copied variable, IRELATIVE per IFUNC."""
    linker.rela_dyn.relocs.clear()
    linker.rela_plt.relocs.clear()
    ext = linker.extras
    got = linker.got
    plt_add, dyn_add, dynsym = linker.rela_plt.add, linker.rela_dyn.add, ext.field
    IPLT, PLT, GOT = GotTag.IPLT, GotTag.PLT, GotTag.GOT
    IMPORT, COPY_REL = SymbolFlags.IMPORT, SymbolFlags.COPY_REL
    for e in got.entries:
        sym = e.symbol
        tag = e.tag
        if tag == GOT:
            if sym.flags & IMPORT and not (sym.flags & COPY_REL):
                dyn_add(e.address(got), arch.DYN_GLOB_DAT, dynsym(sym, "dynsym"))
        elif tag == IPLT:
            plt_add(e.address(got), arch.DYN_IRELATIVE, 0, sym.address())
        elif tag == PLT:
            plt_add(e.address(got), arch.DYN_JUMP_SLOT, dynsym(sym, "dynsym"))
    for sym, atom in linker.copy_atoms:
        linker.rela_dyn.add(atom.address if atom.output is not None else 0, arch.DYN_COPY, ext.field(sym, "dynsym"))


def has_contents(linker, name: str) -> bool:
    out = linker.outputs.get(name)
    return out is not None and (out.size > 0 or any(a.size for a in out.atoms))


def dynsym_shndx(linker, sym: Symbol) -> int:
    if sym.flags & SymbolFlags.STUB:
        return C.output_symbol_shndx(linker.outputs[".plt"].index)
    if sym.atom is not None and sym.atom.output is not None:
        return C.output_symbol_shndx(sym.atom.output.index)
    if sym.flags & SymbolFlags.COPY_REL:
        return C.output_symbol_shndx(linker.outputs[".bss"].index)
    return C.SHN_ABS


def render_dynamic_sections(linker, image: OutputImage) -> None:
    """The dynamic-linking sections' bytes, and the GOT's, once addresses are known."""
    o = linker.outputs

    def put(name, data):
        image.put(o[name], data)

    d = linker.dynsyms
    put(".interp", linker.interp)
    put(".dynsym", d.render_dynsym(linker.canonical_address, lambda sym: dynsym_shndx(linker, sym)))
    put(".hash", d.render_hash())
    if d.versions:
        put(".gnu.version", d.render_versym())
        put(".gnu.version_r", d.render_verneed())
    tls_start, _, _, tls_memsz, tls_align = tls_range(linker.alloc_sections)
    tp = arch.tls_tp(tls_start, tls_memsz, tls_align)
    got_bytes = linker.got.render(linker.canonical_address, tp)
    put(".got", got_bytes)
    fill_dynamic_relocs(linker)
    if linker.rela_dyn.relocs:
        put(".rela.dyn", linker.rela_dyn.render())
    if linker.rela_plt.relocs:
        put(".rela.plt", linker.rela_plt.render(last_types=(arch.DYN_IRELATIVE,)))
    def dyn_value(v):
        if isinstance(v, tuple):
            what, name = v
            if what == "str":
                return d.dynstr.index[name]
            if what == "addr":
                return o[name].addr
            if what == "size":
                return o[name].size
            if what == "sym":
                sym = linker.symtab.globals.get(name)
                return sym.address() if sym is not None else 0
        return v

    put(".dynamic", linker.dynamic.render(dyn_value))
    put(".dynstr", bytes(d.dynstr.buf))

"""The last pass: the output image in memory (atoms copied, relocations applied, debug
padding, synthetic sections, the generation stamp, ELF headers).  Only
`devlink.output.writer` writes it to the file."""

from __future__ import annotations

from devlink.elf import consts as C
from devlink.elf.records import Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr
from devlink.errors import DevlinkError
from devlink.link import sections as S
from devlink.link.arch import x86_64 as arch
from devlink.link.debug_pad import pad_debug
from devlink.link.dynamic import render_dynamic_sections
from devlink.link.layout import tls_range
from devlink.link.linker_defined import set_linker_symbol_values
from devlink.link.output_section import OutputSection
from devlink.link.relocate import apply_relocations
from devlink.link.stubs import render_patch_sections
from devlink.link.symtab import build_symtab
from devlink.link.synthetic import StringTable
from devlink.link.unwind import render_unwind_sections
from devlink.output.image import OutputImage

STAMP_MAGIC = b"DEVLINK1"
STAMP_SIZE = 32


def render(linker) -> OutputImage:
    """The output image: atoms' bytes, relocations applied, synthetic sections, headers."""
    set_linker_symbol_values(linker)
    for sym, atom in linker.copy_atoms + linker.copy_aliases:
        linker.extras.update(sym, copy_addr=atom.address)
    # section indexes first: the symbol tables refer to them
    for name, sh_type, align, entsize in ((".symtab", C.SHT_SYMTAB, 8, 24), (".strtab", C.SHT_STRTAB, 1, 0)):
        out = linker.output_section(name, sh_type, 0)
        out.alignment = align
        out.entsize = entsize
        out.synthetic = b""
    stamp = linker.output_section(".devlink.stamp", C.SHT_PROGBITS, 0)
    stamp.size, stamp.alignment, stamp.synthetic = STAMP_SIZE, 8, b""
    nonalloc = [o for o in linker.outputs.values() if not o.is_alloc]
    debug = sorted((o for o in nonalloc if o.synthetic is None), key=lambda o: o.name)
    tail = [linker.outputs[".symtab"], linker.outputs[".strtab"]]
    shstr_out = linker.output_section(".shstrtab", C.SHT_STRTAB, 0)
    # the stamp first: its place never changes, so an update can write it last
    ordered = linker.alloc_sections + [stamp] + debug + tail + [shstr_out]
    shstrtab = StringTable()
    for i, o in enumerate(ordered, 1):
        o.index = i
        shstrtab.add(o.name)
    shstr_out.size = len(shstrtab)
    shstr_out.synthetic = bytes(shstrtab.buf)
    # non-allocated sections go after the allocated ones
    symtab, strtab, first_global = build_symtab(linker)
    for out, data in ((tail[0], symtab), (tail[1], strtab)):
        out.size = len(data)
        out.synthetic = data
    linker.outputs[".symtab"].info = first_global
    stamp.synthetic = stamp_bytes(linker)
    off = linker.content_end
    for o in debug:
        o.room = S.debug_room(o.size)
        o.limit = o.size + o.room
    for o in [stamp] + debug + tail + [shstr_out]:
        align = max(o.alignment, 1)
        off = (off + align - 1) & ~(align - 1)
        o.offset = off
        o.addr = 0
        off += o.size + o.room
    shoff = (off + 7) & ~7
    image = OutputImage(ordered, Elf64_Ehdr.size + linker.num_phdrs * Elf64_Phdr.size, shoff,
                        (len(ordered) + 1) * Elf64_Shdr.size)
    content = image.content
    # atoms' bytes
    text = linker.outputs.get(".text")
    for o in linker.alloc_sections + debug:
        if o.is_nobits or o.synthetic is not None or o is text:
            continue
        base = image.buf_off[o.name]
        for atom in o.atoms:
            if atom.size and atom.sh_type != C.SHT_NOBITS:
                p = base + atom.value
                content[p:p + atom.size] = atom.data
    if text is not None and text.size and not text.is_nobits and text.synthetic is None:
        # room between functions: int3, so a stray jump traps instead of running zeros
        view = image.view(text)
        view[:] = arch.TRAP_INSN * text.size
        for atom in text.atoms:
            if atom.size and atom.sh_type != C.SHT_NOBITS:
                view[atom.value:atom.value + atom.size] = atom.data
    for atom, off_in, code in linker.edits:
        image.put(atom.output, code, atom.value + off_in)
    apply_relocations(linker, image)
    pad_debug(linker, image)
    render_dynamic_sections(linker, image)
    render_patch_sections(linker, image)
    render_unwind_sections(linker, image)
    for o in [stamp] + tail + [shstr_out]:
        image.put(o, o.synthetic)
    write_headers(linker, image, ordered)
    return image


def stamp_bytes(linker) -> bytes:
    """The generation stamp: which link state this file belongs to, and which
    generation; an update writes it last, so a file whose stamp is not the state's
    was interrupted (see devlink/link/state.py)."""
    return STAMP_MAGIC + linker.generation.to_bytes(8, "little") + bytes.fromhex(linker.link_id)


def write_headers(linker, image: OutputImage, ordered: list[OutputSection]) -> None:
    o = linker.outputs
    entry_sym = linker.symtab.globals.get(linker.options.entry)
    if entry_sym is None or not entry_sym.is_defined:
        raise DevlinkError(f"entry symbol {linker.options.entry!r} is not defined; link the C start-up files (do not pass -nostdlib) or define it")
    entry = linker.canonical_address(entry_sym)
    phdrs = []
    first = linker.segments[0]
    phoff = Elf64_Ehdr.size
    phdrs.append((C.PT_PHDR, C.PF_R, phoff, first.vaddr + phoff, linker.num_phdrs * Elf64_Phdr.size, 8))
    it = o[".interp"]
    phdrs.append((C.PT_INTERP, C.PF_R, it.offset, it.addr, it.size, 1))
    loads = []
    for seg in linker.segments:
        loads.append((C.PT_LOAD, seg.flags, seg.offset, seg.vaddr, seg.filesz, seg.memsz, 4096))
    dy = o[".dynamic"]
    rows = [(t, f, off, va, sz, sz, al) for (t, f, off, va, sz, al) in phdrs]
    rows += loads
    rows.append((C.PT_DYNAMIC, C.PF_R | C.PF_W, dy.offset, dy.addr, dy.size, dy.size, 8))
    notes = [s for s in linker.alloc_sections if s.sh_type == C.SHT_NOTE]
    if notes:
        start, end = notes[0], notes[-1]
        rows.append((C.PT_NOTE, C.PF_R, start.offset, start.addr, end.offset + end.size - start.offset,
                     end.offset + end.size - start.offset, max(s.alignment for s in notes)))
    tls_start, tls_off, tls_filesz, tls_memsz, tls_align = tls_range(linker.alloc_sections)
    if any(s.is_tls for s in linker.alloc_sections):
        rows.append((C.PT_TLS, C.PF_R, tls_off, tls_start, tls_filesz, tls_memsz, tls_align))
    if ".eh_frame_hdr" in o:
        h = o[".eh_frame_hdr"]
        rows.append((C.PT_GNU_EH_FRAME, C.PF_R, h.offset, h.addr, h.size, h.size, 4))
    rows.append((C.PT_GNU_STACK, C.PF_R | C.PF_W | (C.PF_X if linker.exec_stack else 0), 0, 0, 0, 0, 16))
    assert len(rows) == linker.num_phdrs, (len(rows), linker.num_phdrs)
    for i, (t, f, off, va, fsz, msz, al) in enumerate(rows):
        Elf64_Phdr.pack_into(image.headers, phoff + i * Elf64_Phdr.size, t, f, off, va, va, fsz, msz, al)
    ident = C.ELFMAG + bytes([C.ELFCLASS64, C.ELFDATA2LSB, C.EV_CURRENT, C.ELFOSABI_SYSV]) + bytes(8)
    # extended section numbering (ELF gABI): past SHN_LORESERVE sections, e_shnum is 0
    # and section 0's sh_size holds the count; e_shstrndx is SHN_XINDEX and section
    # 0's sh_link holds the index
    shnum, shstrndx = len(ordered) + 1, o[".shstrtab"].index
    Elf64_Shdr.pack_into(image.shdrs, 0, 0, C.SHT_NULL, 0, 0, 0, shnum if shnum >= C.SHN_LORESERVE else 0,
                         shstrndx if shstrndx >= C.SHN_LORESERVE else 0, 0, 0, 0)
    Elf64_Ehdr.pack_into(image.headers, 0, ident, C.ET_EXEC, C.EM_X86_64, C.EV_CURRENT, entry, phoff, image.shoff, 0,
                         Elf64_Ehdr.size, Elf64_Phdr.size, len(rows), Elf64_Shdr.size,
                         shnum if shnum < C.SHN_LORESERVE else 0,
                         shstrndx if shstrndx < C.SHN_LORESERVE else C.SHN_XINDEX)
    links = {".dynsym": ".dynstr", ".hash": ".dynsym", ".gnu.version": ".dynsym", ".gnu.version_r": ".dynstr",
             ".rela.dyn": ".dynsym", ".rela.plt": ".dynsym", ".dynamic": ".dynstr", ".symtab": ".strtab"}
    infos = {".gnu.version_r": linker.dynsyms.verneed_count(), ".dynsym": 1,
             ".symtab": o[".symtab"].info, ".rela.plt": o[".got"].index}
    for sec in ordered:
        link = o[links[sec.name]].index if sec.name in links else 0
        info = infos.get(sec.name, 0)
        Elf64_Shdr.pack_into(image.shdrs, sec.index * Elf64_Shdr.size, shstr_index(linker, sec), sec.sh_type,
                             sec.sh_flags, sec.addr, sec.offset, sec.size, link, info, max(sec.alignment, 1),
                             sec.entsize)


def shstr_index(linker, sec: OutputSection) -> int:
    data = linker.outputs[".shstrtab"].synthetic
    key = sec.name.encode("utf-8", "surrogateescape") + b"\0"
    # names are unique; find the first full match at a string boundary
    pos = 1
    while True:
        pos = data.find(key, pos)
        if pos < 0:
            return 0
        if data[pos - 1] == 0:
            return pos
        pos += 1

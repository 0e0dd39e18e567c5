"""Names the linker defines when no input does (`_DYNAMIC`, `__init_array_start`,
`__start_SECTION`...): bound to a pseudo-file before the undefined check, valued once
the layout is known (Zig's LinkerDefined)."""

from __future__ import annotations

from devlink.elf import consts as C
from devlink.link import sections as S
from devlink.link.symbol import SymbolFlags

#: names the linker defines when no input does
LINKER_DEFINED = (
    "_GLOBAL_OFFSET_TABLE_", "_DYNAMIC", "__init_array_start", "__init_array_end",
    "__fini_array_start", "__fini_array_end", "__preinit_array_start", "__preinit_array_end",
    "__ehdr_start", "__executable_start", "_end", "end", "_edata", "edata", "__bss_start",
    "_etext", "etext", "__etext", "__GNU_EH_FRAME_HDR", "__dso_handle", "__rela_iplt_start",
    "__rela_iplt_end", "__devlink_link_id",
)


class LinkerFile:
    """The pseudo-file that defines linker-made symbols."""

    name = "<linker>"


LINKER_FILE = LinkerFile()


def define_linker_symbols(linker) -> None:
    wanted = list(LINKER_DEFINED)
    for name, sym in linker.symtab.globals.items():
        if sym.file is None and (name.startswith("__start_") or name.startswith("__stop_")):
            wanted.append(name)
    for name in wanted:
        sym = linker.symtab.globals.get(name)
        if sym is None or sym.file is not None:
            continue
        sym.file = LINKER_FILE
        sym.flags |= SymbolFlags.LINKER_DEFINED
        sym.shndx = C.SHN_ABS
        sym.visibility = C.STV_HIDDEN
        linker.linker_symbols[name] = sym


def set_linker_symbol_values(linker) -> None:
    o = linker.outputs
    first_seg = linker.segments[0]

    def start(name):
        return o[name].addr if name in o else 0

    def end(name):
        return o[name].addr + o[name].size if name in o else 0

    data_end = max((s.addr + s.size for s in linker.alloc_sections if not s.is_nobits and s.segment.seg_class == S.SEG_DATA), default=0)
    bss = o.get(".bss")
    image_end = max(s.addr + s.size for s in linker.alloc_sections)
    text_end = max((s.addr + s.size for s in linker.alloc_sections if s.segment.seg_class in (S.SEG_TEXT, S.SEG_STUBS)), default=0)
    values = {
        "_GLOBAL_OFFSET_TABLE_": start(".got"), "_DYNAMIC": start(".dynamic"),
        "__init_array_start": start(".init_array"), "__init_array_end": end(".init_array"),
        "__fini_array_start": start(".fini_array"), "__fini_array_end": end(".fini_array"),
        "__preinit_array_start": start(".preinit_array"), "__preinit_array_end": end(".preinit_array"),
        "__ehdr_start": first_seg.vaddr, "__executable_start": first_seg.vaddr,
        "_end": image_end, "end": image_end, "_edata": data_end, "edata": data_end,
        "__bss_start": bss.addr if bss else data_end, "_etext": text_end, "etext": text_end,
        "__etext": text_end, "__GNU_EH_FRAME_HDR": start(".eh_frame_hdr"), "__dso_handle": 0,
        "__rela_iplt_start": 0, "__rela_iplt_end": 0, "__devlink_link_id": start(".devlink.id"),
    }
    for name, sym in linker.linker_symbols.items():
        if name.startswith("__start_"):
            sym.value = start(name[8:])
        elif name.startswith("__stop_"):
            sym.value = end(name[7:])
        else:
            sym.value = values.get(name, 0)

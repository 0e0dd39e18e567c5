"""The unwind tables' linker-made parts: the stubs' own CIE and FDE (first in
`.eh_frame`: CFA = rsp+8 everywhere), the zero terminator (last: an update moves it
behind the records it appends) and `.eh_frame_hdr`'s sorted search table, with room for
the FDEs of appended atoms."""

from __future__ import annotations

import numpy as np

from devlink.elf import consts as C
from devlink.link import eh_frame
from devlink.link.atom import Atom
from devlink.output.image import OutputImage


def size_unwind_sections(linker) -> None:
    A = C.SHF_ALLOC
    # the stubs get an unwind entry of their own, first in .eh_frame
    ef = linker.output_section(".eh_frame", C.SHT_PROGBITS, A)
    ef.alignment = max(ef.alignment, 4)
    linker.stub_unwind = Atom(None, 0, ".eh_frame.devlink-stubs", C.SHT_PROGBITS, A,
                              eh_frame.TRAMPOLINE_CIE_FDE_SIZE, 4, memoryview(bytes(eh_frame.TRAMPOLINE_CIE_FDE_SIZE)), None)
    linker.stub_unwind.output = ef
    ef.atoms.insert(0, linker.stub_unwind)
    linker.eh_frame_fdes += 1
    # the zero terminator, last (an update moves it behind the records it appends)
    linker.eh_terminator = Atom(None, 0, ".eh_frame.devlink-end", C.SHT_PROGBITS, A, 4, 4, memoryview(bytes(4)), None)
    linker.eh_terminator.output = ef
    ef.atoms.append(linker.eh_terminator)
    linker.synthetic_section(".eh_frame_hdr", C.SHT_PROGBITS, A,
                             eh_frame.HDR_HEADER + eh_frame.HDR_ENTRY * linker.eh_frame_fdes, 4)


def render_unwind_sections(linker, image: OutputImage) -> None:
    """The stubs' CIE/FDE, then the search table from the relocated `.eh_frame`."""
    o = linker.outputs
    st = o[".plt"]
    su = linker.stub_unwind
    image.put(su.output, eh_frame.trampoline_cie_fde(su.address, st.addr, st.size + st.room), su.value)
    # .eh_frame_hdr from the relocated .eh_frame
    if ".eh_frame_hdr" in o:
        hdr = o[".eh_frame_hdr"]
        ef = o.get(".eh_frame")
        table = np.zeros((0, 2), np.int64)
        if ef:
            view = image.view(ef)
            for atom in ef.atoms:
                where = atom.file.name if atom.file is not None else "<linker>"
                fdes = eh_frame.fde_table(view[atom.value:atom.value + atom.size], atom.address, where)
                atom.fdes = np.array(fdes, np.int64).reshape(-1, 2)
            table = np.concatenate([table] + [a.fdes for a in ef.atoms])
            table = table[np.lexsort((table[:, 1], table[:, 0]))]   # by location, then FDE
        linker.eh_hdr_table = table
        image.put(hdr, eh_frame.render_hdr(hdr.addr, ef.addr if ef else 0, table, linker.eh_frame_fdes))

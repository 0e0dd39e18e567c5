"""The symbol and GOT tables of a linked program, as rows for people and for JSON.

Shared by `devlink symbols`, `devlink got` and the language server: one place that
reads the link state into plain dictionaries.
"""

from __future__ import annotations

from devlink.elf import consts as C
from devlink.link.symbol import SymbolFlags
from devlink.link.synthetic import GotTag


def function_rows(linker) -> list[dict]:
    """One row per function stub: name, stub, atom, size/capacity, cell, target, generation."""
    return [function_row(linker, i) for i in range(len(linker.stubs.stubs))]


def function_row(linker, i: int) -> dict:
    """The row of stub `i` alone (the editor asks about one function at a time)."""
    stub = linker.stubs.stubs[i]
    sym = stub.symbol
    row = {"name": sym.name, "kind": "function", "stub": linker.stubs.address(i)}
    if stub.cell >= 0:
        atom = stub.atom
        removed = atom is not None and atom.file is None and atom.name.startswith(".text.devlink.removed.")
        row.update({
            "file": atom.file.name if atom is not None and atom.file is not None else None,
            "atom": atom.address + stub.offset if atom is not None else None,
            "size": atom.size if atom is not None else 0,
            "capacity": atom.capacity if atom is not None else 0,
            "got_slot": stub.cell,
            "got_cell": linker.cells.address(stub.cell),
            "got_target": atom.address + stub.offset if atom is not None else None,
            "generation": getattr(atom, "generation", 1) if atom is not None else None,
            "removed": removed,
        })
    else:
        entry = linker.got.entries[stub.slot]
        row.update({"file": getattr(sym.file, "soname", None), "atom": None, "size": 0, "capacity": 0,
                    "got_slot": None, "got_cell": entry.address(linker.got), "got_target": None,
                    "generation": None, "removed": False,
                    "import": True})
    return row


def stub_index(linker, name: str, obj_name: str | None = None) -> int | None:
    """The stub of function `name`: the file-local one of `obj_name` if it has one, else
    the global one (a dictionary lookup, not a walk over every stub)."""
    keys = ((obj_name, name), name) if obj_name else (name,)
    for key in keys:
        i = linker.stub_by_key.get(key)
        if i is not None:
            return i
    sym = linker.symtab.globals.get(name)
    if sym is not None and sym.flags & SymbolFlags.STUB:
        return linker.extras.field(sym, "stub")         # imports and IFUNCs
    return None


def variable_row(sym, kind: str = "variable") -> dict | None:
    """The row of one data symbol (a global: kind "variable"; a file-local: "static")."""
    atom = sym.atom
    if atom is None or atom.output is None or sym.type not in (C.STT_OBJECT, C.STT_TLS):
        return None
    return {"name": sym.name, "kind": kind, "address": sym.address(), "size": sym.size,
            "section": atom.output.name, "file": atom.file.name if atom.file is not None else None,
            "generation": getattr(atom, "generation", 1), "tls": sym.type == C.STT_TLS}


def variable_rows(linker) -> list[dict]:
    rows = []
    for sym in linker.symtab.globals.values():
        if sym.flags & (SymbolFlags.IMPORT | SymbolFlags.LINKER_DEFINED) or sym.atom is None:
            continue
        if sym.type not in (C.STT_OBJECT, C.STT_TLS) or sym.atom.output is None:
            continue
        atom = sym.atom
        rows.append({"name": sym.name, "kind": "variable", "address": sym.address(), "size": sym.size,
                     "section": atom.output.name, "file": atom.file.name if atom.file is not None else None,
                     "generation": getattr(atom, "generation", 1)})
    for obj in linker.objects:
        for sym in obj.symbols[:obj.raw.first_global]:
            if sym is None or sym.type != C.STT_OBJECT or sym.atom is None or sym.atom.output is None:
                continue
            rows.append({"name": sym.name, "kind": "static", "address": sym.address(), "size": sym.size,
                         "section": sym.atom.output.name, "file": obj.name,
                         "generation": getattr(sym.atom, "generation", 1)})
    return rows


def got_rows(linker) -> list[dict]:
    """Every GOT entry: the constant GOT (.got) and the function cells (.devlink.cells)."""
    rows = []
    for i, stub_index in enumerate(linker.cells.stub_of):
        stub = linker.stubs.stubs[stub_index]
        target = stub.atom.address + stub.offset if stub.atom is not None else None
        rows.append({"section": ".devlink.cells", "index": i, "address": linker.cells.address(i),
                     "name": stub.symbol.name + "$got", "kind": "cell", "target": target,
                     "stub": linker.stubs.address(stub_index)})
    tags = {GotTag.GOT: "got", GotTag.GOTTP: "gottp", GotTag.IPLT: "irelative", GotTag.PLT: "jump_slot"}
    for e in linker.got.entries:
        sym = e.symbol
        if sym.flags & SymbolFlags.PREBOUND and not sym.flags & (SymbolFlags.STUB | SymbolFlags.REFERENCED):
            continue
        rows.append({"section": ".got", "index": e.cell_index, "address": e.address(linker.got),
                     "name": sym.name, "kind": tags[e.tag], "bound_by": "ld.so" if sym.is_import or e.tag != GotTag.GOT and e.tag != GotTag.GOTTP else "link",
                     "target": None if sym.is_import else linker.canonical_address(sym)})
    return rows


def fmt_addr(v) -> str:
    return "-" if v is None else f"{v:#x}"

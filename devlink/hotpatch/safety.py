"""Unsafe edits: what a patch into the running program cannot do right.  Pure.

Checked *before* the linker's state changes, from the previous and the new version of
each recompiled object, so every policy (restart, keep-old, refuse) starts from an
untouched link state:

- layout: a variable whose size or alignment changed (ELF symbol and section); its
  running value cannot be kept, and code not recompiled still uses the old layout;
- type: a variable whose DWARF type changed at the same size (`int` -> `float`): the
  running bytes would be read as the new type;
- signature: a function whose parameter or return types changed (DWARF): callers that
  were not recompiled, and stored pointers, call it the old way;
- tls: a new thread-local with a non-zero initial value, or a changed initial value
  (the TLS image is copied only when a thread starts);
- constructor / destructor: a new or changed `.init_array`/`.fini_array` entry (a
  constructor never runs in a program that has already started).

A new library shows up later, as the linker's `NeedsFullLink` (a name bound by no
library loaded at start), before the state changes too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from devlink.elf import consts as C
from devlink.link import sections as S

POLICIES = ("restart", "keep-old", "refuse")
CRASH_POLICIES = ("restart", "rollback")

#: output sections whose contents take effect only when the program starts
START_ONLY = {".init_array": "constructor", ".preinit_array": "constructor", ".init": "constructor",
              ".fini_array": "destructor", ".fini": "destructor", ".tdata": "tls"}


#: where DWARF keeps types and declarations: unchanged bytes, unchanged types
DEBUG_TYPE_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_types")


@dataclass(frozen=True)
class Unsafe:
    kind: str                 #: layout, type, signature, tls, constructor, destructor, restart
    name: str                 #: the variable, function or section
    file: str
    message: str


@dataclass
class ObjectFacts:
    """What the checks need from one object's ELF tables."""

    #: data symbols: key -> (size, alignment, tls, initialised)
    variables: dict[str, tuple[int, int, bool, bool]]
    #: functions defined here, by name
    functions: set[str]
    #: start-only sections: name -> (output section, content signature)
    start_only: dict[str, tuple[str, tuple]]
    #: digest of the debug sections that hold types and declarations
    debug_digest: bytes = b""


def object_facts(raw) -> ObjectFacts:
    """Facts of a RawObject (devlink.elf.reader.read_object)."""
    syms = raw.symtab
    secs = raw.sections
    variables, functions = {}, set()
    types = (syms["st_info"] & 0xF).tolist()
    sizes = syms["st_size"].tolist()
    for i in range(1, len(syms)):
        t = types[i]
        if t not in (C.STT_OBJECT, C.STT_TLS, C.STT_FUNC):
            continue
        shndx = raw.sym_shndx(i)
        if shndx == C.SHN_UNDEF or shndx >= C.SECTION_INDEX_END and shndx != C.SHN_COMMON:
            continue
        name = raw.sym_name(i)
        if t == C.STT_FUNC:
            functions.add(name)
            continue
        key = name if i >= raw.first_global else f"{name}@local"
        if shndx == C.SHN_COMMON:
            align = int(syms["st_value"][i]) or 1
            variables[key] = (int(sizes[i]), align, False, False)
            continue
        sec = secs[shndx]
        variables[key] = (int(sizes[i]), max(sec.sh_addralign, 1), t == C.STT_TLS, sec.sh_type != C.SHT_NOBITS)
    start_only = {}
    names = None
    for sec in secs:
        if not sec.sh_flags & C.SHF_ALLOC:
            continue
        out = S.output_name(sec.name, sec.sh_type, sec.sh_flags)
        if out not in START_ONLY:
            continue
        if names is None:
            names = [raw.sym_name(i) or _section_symbol_name(raw, i) for i in range(len(syms))]
        rel = raw.relocs.get(sec.index)
        relsig = () if rel is None else tuple(
            (int(r["r_offset"]), int(r["r_info"]) & 0xFFFFFFFF, int(r["r_addend"]), names[int(r["r_info"]) >> 32])
            for r in rel)
        start_only[sec.name] = (out, (bytes(raw.section_bytes(sec)), sec.sh_size, relsig))
    h = hashlib.blake2b(digest_size=16)
    for sec in secs:
        if sec.name in DEBUG_TYPE_SECTIONS:
            h.update(sec.name.encode() + b"\0" + bytes(raw.section_bytes(sec)))
    return ObjectFacts(variables, functions, start_only, h.digest())


def _section_symbol_name(raw, i: int) -> str:
    shndx = raw.sym_shndx(i)
    return "section:" + raw.sections[shndx].name if 0 < shndx < len(raw.sections) else f"#{i}"


def check_object(file: str, old: ObjectFacts, new: ObjectFacts, old_ix=None, new_ix=None) -> list[Unsafe]:
    """Why the new version of `file` cannot be patched over the old one in a running
    program.  `old_ix`/`new_ix`: DWARF indexes (devlink.dwarf.ObjectIndex), or None to
    skip the type and signature checks."""
    out: list[Unsafe] = []
    for key, (nsize, nalign, ntls, ninit) in new.variables.items():
        prev = old.variables.get(key)
        name = key.removesuffix("@local")
        if prev is None:
            if ntls and ninit:
                out.append(Unsafe("tls", name, file, f"new thread-local {name!r} ({file}) has a non-zero initial "
                                                     f"value, which threads already running would never get"))
            continue
        psize, palign, _, _ = prev
        if psize != nsize or palign != nalign:
            what = f"size from {psize} to {nsize} bytes" if psize != nsize else \
                f"alignment from {palign} to {nalign}"
            out.append(Unsafe("layout", name, file, f"variable {name!r} ({file}) changed {what}; "
                                                    f"its running value cannot be kept"))
    for sec, (outname, sig) in new.start_only.items():
        prev = old.start_only.get(sec)
        if prev is not None and prev[1] == sig:
            continue
        kind = START_ONLY[outname]
        if kind == "tls":
            if prev is None:
                continue                  # reported per variable above
            out.append(Unsafe("tls", sec, file, f"an initial value of a thread-local changed ({sec} in {file}); "
                                                f"threads already running keep the old one"))
        elif kind == "constructor":
            out.append(Unsafe(kind, sec, file, f"{'a new' if prev is None else 'a changed'} constructor ({sec} in "
                                               f"{file}) would never run in the running program"))
        else:
            out.append(Unsafe(kind, sec, file, f"{'a new' if prev is None else 'a changed'} destructor ({sec} in "
                                               f"{file}) is not registered in the running program"))
    for sec, (outname, _) in old.start_only.items():
        if sec in new.start_only:
            continue
        kind = START_ONLY[outname]
        what = "the running program already registered it" if kind != "tls" else \
            "threads already running have it in their thread-local block"
        out.append(Unsafe(kind, sec, file, f"{sec} was removed from {file}; {what}"))
    if old_ix is not None and new_ix is not None:
        out += check_types(file, old_ix, new_ix, {u.name for u in out if u.kind == "layout"})
    return out


def check_types(file: str, old_ix, new_ix, skip: set[str] = frozenset()) -> list[Unsafe]:
    """Variables whose type changed at the same size; functions whose signature changed."""
    out: list[Unsafe] = []
    for sym, v in new_ix.variables.items():
        prev = old_ix.static_local(*v.static_key) if v.static_key else old_ix.variables.get(sym)
        if prev is None or v.name in skip or prev.type_hash == v.type_hash:
            continue
        if prev.size != v.size:
            continue                      # a layout change: reported from the ELF facts
        if prev.type.c_decl() == v.type.c_decl():
            changed = _changed_layouts(old_ix, new_ix, (v.type,))
            if changed:
                out.append(Unsafe("layout", v.name, file, f"{changed[0][0]}: variable {v.name!r} ({file}) "
                                                          f"holds one; its running bytes have the old layout"))
                continue
        out.append(Unsafe("type", v.name, file, f"variable {v.name!r} ({file}) changed type from "
                                                f"{prev.type.c_decl()!r} to {v.type.c_decl()!r} at the same size; "
                                                f"its running bytes would be read as the new type"))
    for sym, f in new_ix.functions.items():
        prev = old_ix.functions.get(sym)
        if prev is None or prev.signature_hash == f.signature_hash:
            continue
        if prev.signature == f.signature:
            # the same spelling: a type it names changed its layout (a struct member)
            changed = _changed_layouts(old_ix, new_ix, (f.return_type, *f.param_types))
            if changed:
                for what, spelling in changed:
                    out.append(Unsafe("layout", spelling, file, f"{what}: function {f.name!r} ({file}) uses it "
                                                                f"({f.signature}); code not recompiled and data "
                                                                f"already in memory have the old layout"))
                continue
        out.append(Unsafe("signature", f.name, file, f"function {f.name!r} ({file}) changed signature from "
                                                     f"{prev.signature!r} to {f.signature!r}; callers not "
                                                     f"recompiled and stored pointers would call it the old way"))
    return out


def _changed_layouts(old_ix, new_ix, types) -> list[tuple[str, str]]:
    """(description, spelling) of each struct or union that `types` name (through
    pointers, arrays and members) whose definition differs between the two indexes:
    `struct pos changed layout: member 'z' added (8 -> 12 bytes)`."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    todo = [t for t in types if t is not None]
    while todo:
        t = todo.pop()
        if t.kind in ("pointer", "array", "function"):
            todo += [x for x in (t.target, *t.params) if x is not None]
            continue
        if t.kind not in ("struct", "union") or t.name in seen:
            continue
        seen.add(t.name)
        old, new = old_ix.named_types.get(t.name), new_ix.named_types.get(t.name)
        if old is None or new is None:
            continue
        todo += [m.type for m in new.members]
        diff = describe_layout_change(old, new)
        if diff:
            out.append((f"{t.name} changed layout: {diff}", t.name))
    return out


def describe_layout_change(old, new) -> str:
    """What differs between two definitions of a struct or union (TypeInfo), in words;
    "" when their layouts are the same."""
    from devlink.dwarf.types import type_hash
    before = {m.name: m for m in old.members}
    after = {m.name: m for m in new.members}
    parts = [f"member {n!r} added" for n in after if n not in before]
    parts += [f"member {n!r} removed" for n in before if n not in after]
    for n, m in after.items():
        p = before.get(n)
        if p is None:
            continue
        if p.offset != m.offset:
            parts.append(f"member {n!r} moved from offset {p.offset} to {m.offset}")
        elif type_hash(p.type) != type_hash(m.type) or (p.bit_size, p.bit_offset) != (m.bit_size, m.bit_offset):
            parts.append(f"member {n!r} changed type from {p.type.c_decl()!r} to {m.type.c_decl()!r}")
    if not parts and old.size == new.size:
        return ""
    size = f" ({old.size} -> {new.size} bytes)" if old.size != new.size else ""
    return ", ".join(parts or ["its members changed"]) + size


def needs_dwarf(old: ObjectFacts, new: ObjectFacts) -> bool:
    """DWARF is parsed (~80 ms for Lua's lvm.o) only when a type can have changed: the
    object keeps a function or variable, and its type/declaration debug bytes differ (a
    body edit that moves no line leaves them equal)."""
    if old.debug_digest == new.debug_digest:
        return False
    return bool(old.functions & new.functions) or bool(old.variables.keys() & new.variables.keys())


def describe(unsafe: list[Unsafe]) -> str:
    return "; ".join(u.message for u in unsafe)

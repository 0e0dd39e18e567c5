"""The executables devlink writes are well-formed ELF, by the judgement of independent
readers: binutils (`readelf`, `objdump`) and pyelftools, and by structural checks of
what DESIGN.md ("Invariants" 1 and "The output executable") promises.

A handful of diverse corpus programs is built once per module (TLS, constructors and
destructors, a static archive, gcc's -O2 clones, backtrace(), pthreads, a jump table,
libm, function pointers across files); every check runs on each of them."""

from __future__ import annotations

import re
import struct
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import helpers

CC = helpers.find_cc()
READELF = helpers.find_tool("readelf")
OBJDUMP = helpers.find_tool("objdump")

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (`cc`) found on PATH; install gcc")

# (corpus program, opt level): diverse features, both opt levels represented
CASES = [
    ("tls", "-O0"),
    ("ctor_dtor", "-O0"),
    ("archive_lib", "-O2"),
    ("clones", "-O2"),
    ("backtrace_count", "-O0"),
    ("pthreads_condvar", "-O2"),
    ("switch_table", "-O2"),
    ("libm_math", "-O2"),
    ("funcptr_xfile", "-O0"),
]
CASE_IDS = [f"{name}{opt}" for name, opt in CASES]

# ELF constants (kept local: the test must not trust devlink's own tables)
ET_EXEC = 2
EM_X86_64 = 62
PF_X, PF_W, PF_R = 1, 2, 4
SHT_NOBITS = 8
SHN_UNDEF, SHN_LORESERVE, SHN_ABS = 0, 0xFF00, 0xFFF1
PAGE = 4096


@dataclass
class Built:
    name: str
    opt: str
    path: Path
    data: bytes


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Built]:
    """Build every case once (in parallel: the builds are dominated by cc)."""
    root = tmp_path_factory.mktemp("elf_validity")
    progs = {p.name: p for p in helpers.corpus_programs()}

    def build(case):
        name, opt = case
        prog = progs[name]
        work = root / f"{name}{opt}"
        inputs = helpers.corpus_inputs(prog, CC, work / "archive", opt)
        try:
            out = helpers.devlink_build(work / "prog", inputs, opt=opt, cflags=prog.directives.cflags,
                                        ldflags=prog.directives.ldflags, cwd=work)
        except helpers.BuildError as e:
            return f"{name}{opt}", e
        return f"{name}{opt}", Built(name, opt, out, out.read_bytes())

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(build, CASES))


@pytest.fixture(params=CASE_IDS)
def exe(request, built) -> Built:
    b = built[request.param]
    if isinstance(b, Exception):
        pytest.fail(f"devlink build of {request.param} failed:\n{b}", pytrace=False)
    return b


def _elffile(b: Built):
    from elftools.elf.elffile import ELFFile
    import io
    return ELFFile(io.BytesIO(b.data))


# ------------------------------------------------------------------ binutils say nothing

_DIAG_RE = re.compile(r"(^|:\s)(Warning|Error)\b")

BINUTILS = [
    ("readelf", ["-a", "-W"]),
    ("readelf", ["--debug-dump=info,line", "-W"]),
    ("readelf", ["--debug-dump=frames", "-W"]),
    ("objdump", ["-d", "-w"]),
]


@pytest.mark.parametrize("tool,args", BINUTILS, ids=[f"{t} {' '.join(a)}" for t, a in BINUTILS])
def test_binutils_report_no_problems(exe: Built, tool, args):
    path = READELF if tool == "readelf" else OBJDUMP
    if path is None:
        pytest.skip(f"`{tool}` not found (install binutils)")
    p = subprocess.run([path, *args, str(exe.path)], capture_output=True, text=True,
                       errors="backslashreplace", timeout=60)
    assert p.returncode == 0, f"{tool} {' '.join(args)} exited {p.returncode}:\n{p.stderr[:3000]}"
    assert p.stderr.strip() == "", f"{tool} {' '.join(args)} wrote to stderr:\n{p.stderr[:3000]}"
    bad = [line for line in p.stdout.splitlines() if _DIAG_RE.search(line)]
    assert not bad, f"{tool} {' '.join(args)} reports problems:\n" + "\n".join(bad[:40])


# ------------------------------------------------------------------ pyelftools reads it all


def test_pyelftools_reads_everything(exe: Built):
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection
    from elftools.elf.gnuversions import GNUVerNeedSection, GNUVerSymSection

    counts = dict(sections=0, symbols=0, segments=0, dyntags=0, relocs=0, cus=0, dies=0, lines=0, cfi=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        elf = _elffile(exe)
        for sec in elf.iter_sections():
            counts["sections"] += 1
            sec.data()
            if isinstance(sec, SymbolTableSection):
                for sym in sec.iter_symbols():
                    counts["symbols"] += 1
                    _ = (sym.name, sym["st_value"], sym["st_info"]["type"], sym["st_shndx"])
            if isinstance(sec, DynamicSection):
                for tag in sec.iter_tags():
                    counts["dyntags"] += 1
                    _ = tag.entry.d_tag
            if isinstance(sec, RelocationSection):
                for rel in sec.iter_relocations():
                    counts["relocs"] += 1
                    _ = (rel["r_offset"], rel["r_info_type"], rel["r_info_sym"])
            if isinstance(sec, GNUVerNeedSection):
                for verneed, auxes in sec.iter_versions():
                    _ = verneed.name
                    for aux in auxes:
                        _ = aux.name
            if isinstance(sec, GNUVerSymSection):
                for sym in sec.iter_symbols():
                    _ = sym["ndx"]
        for seg in elf.iter_segments():
            counts["segments"] += 1
            _ = seg.header.p_type
            if seg.header.p_type == "PT_INTERP":
                assert seg.get_interp_name().startswith("/")
            if seg.header.p_type == "PT_DYNAMIC":
                for tag in seg.iter_tags():
                    _ = tag.entry.d_tag
        assert elf.has_dwarf_info(), "no DWARF in a -g build"
        dw = elf.get_dwarf_info()
        for cu in dw.iter_CUs():
            counts["cus"] += 1
            for die in cu.iter_DIEs():
                counts["dies"] += 1
                _ = die.attributes
            lp = dw.line_program_for_CU(cu)
            if lp is not None:
                for entry in lp.get_entries():
                    counts["lines"] += 1
        aranges = dw.get_aranges()
        if aranges is not None:
            for entry in aranges.entries:
                _ = (entry.begin_addr, entry.length, entry.info_offset)
        if dw.has_EH_CFI():
            for entry in dw.EH_CFI_entries():
                counts["cfi"] += 1
                if hasattr(entry, "get_decoded"):
                    entry.get_decoded()
    for key in ("sections", "symbols", "segments", "dyntags", "relocs", "cus", "dies", "lines", "cfi"):
        assert counts[key] > 0, f"pyelftools found no {key} in {exe.name}{exe.opt}: {counts}"


# ------------------------------------------------------------------ structure


def _load_segments(elf):
    return [s for s in elf.iter_segments() if s.header.p_type == "PT_LOAD"]


def _exec_ranges(elf):
    return [(s.header.p_vaddr, s.header.p_vaddr + s.header.p_memsz)
            for s in _load_segments(elf) if s.header.p_flags & PF_X]


def _read_vaddr(b: Built, elf, addr: int, size: int) -> bytes:
    """File bytes at a virtual address (inside some PT_LOAD's file image)."""
    for s in _load_segments(elf):
        h = s.header
        if h.p_vaddr <= addr and addr + size <= h.p_vaddr + h.p_filesz:
            off = h.p_offset + addr - h.p_vaddr
            return b.data[off:off + size]
    raise AssertionError(f"address {addr:#x}+{size} is not in the file image of any PT_LOAD")


def test_header_and_program_headers(exe: Built):
    elf = _elffile(exe)
    h = elf.header
    assert h.e_ident["EI_CLASS"] == "ELFCLASS64" and h.e_ident["EI_DATA"] == "ELFDATA2LSB"
    assert h.e_type == "ET_EXEC", f"e_type is {h.e_type}, expected ET_EXEC (non-PIE)"
    assert h.e_machine == "EM_X86_64"
    types = [s.header.p_type for s in elf.iter_segments()]
    for t in ("PT_PHDR", "PT_INTERP", "PT_DYNAMIC", "PT_GNU_STACK", "PT_GNU_EH_FRAME", "PT_LOAD"):
        assert t in types, f"no {t}; program headers: {types}"
    assert types.count("PT_INTERP") == 1 and types.count("PT_DYNAMIC") == 1
    # PT_PHDR and PT_INTERP precede every PT_LOAD (ld.so expects it)
    first_load = types.index("PT_LOAD")
    assert types.index("PT_PHDR") < first_load and types.index("PT_INTERP") < first_load
    stack = next(s for s in elf.iter_segments() if s.header.p_type == "PT_GNU_STACK")
    assert not stack.header.p_flags & PF_X, "PT_GNU_STACK asks for an executable stack"
    # the entry point is executable code
    assert any(lo <= h.e_entry < hi for lo, hi in _exec_ranges(elf)), f"entry {h.e_entry:#x} not in an X segment"
    # PT_INTERP, PT_DYNAMIC, PT_PHDR lie inside a PT_LOAD
    loads = _load_segments(elf)
    for s in elf.iter_segments():
        if s.header.p_type in ("PT_INTERP", "PT_DYNAMIC", "PT_PHDR", "PT_GNU_EH_FRAME", "PT_NOTE", "PT_TLS"):
            v, fsz = s.header.p_vaddr, s.header.p_filesz
            assert any(l.header.p_vaddr <= v and v + fsz <= l.header.p_vaddr + l.header.p_filesz for l in loads), \
                f"{s.header.p_type} at {v:#x}+{fsz:#x} is not inside the file image of a PT_LOAD"
    if exe.name == "tls":
        assert "PT_TLS" in types, "the tls program has no PT_TLS"


def test_load_segments_aligned_sorted_disjoint(exe: Built):
    elf = _elffile(exe)
    loads = [s.header for s in _load_segments(elf)]
    for h in loads:
        assert h.p_align >= PAGE and h.p_align & (h.p_align - 1) == 0, f"PT_LOAD align {h.p_align:#x}"
        assert h.p_offset % h.p_align == h.p_vaddr % h.p_align, \
            f"PT_LOAD offset {h.p_offset:#x} and vaddr {h.p_vaddr:#x} disagree modulo {h.p_align:#x}"
        assert h.p_filesz <= h.p_memsz
        assert h.p_offset + h.p_filesz <= len(exe.data), "PT_LOAD extends beyond the end of the file"
        assert not (h.p_flags & PF_W and h.p_flags & PF_X) or h.p_filesz == h.p_memsz, \
            "a writable+executable PT_LOAD"
    vaddrs = [h.p_vaddr for h in loads]
    assert vaddrs == sorted(vaddrs), "PT_LOAD entries are not sorted by p_vaddr (ld.so requires it)"
    for a, b in zip(loads, loads[1:]):
        a_end = (a.p_vaddr + a.p_memsz + PAGE - 1) // PAGE * PAGE
        assert a_end <= b.p_vaddr // PAGE * PAGE, \
            f"PT_LOADs at {a.p_vaddr:#x} and {b.p_vaddr:#x} share or overlap pages"


def test_section_headers_do_not_overlap(exe: Built):
    elf = _elffile(exe)
    spans = []
    for i, s in enumerate(elf.iter_sections()):
        if i == 0 or s["sh_type"] == "SHT_NOBITS" or s["sh_size"] == 0:
            continue
        lo, hi = s["sh_offset"], s["sh_offset"] + s["sh_size"]
        assert hi <= len(exe.data), f"section {s.name} extends beyond the end of the file"
        spans.append((lo, hi, s.name))
    sh_table = (elf.header.e_shoff, elf.header.e_shoff + elf.header.e_shnum * elf.header.e_shentsize, "<section headers>")
    ph_table = (elf.header.e_phoff, elf.header.e_phoff + elf.header.e_phnum * elf.header.e_phentsize, "<program headers>")
    spans += [sh_table, ph_table, (0, 64, "<ELF header>")]
    spans.sort()
    for (alo, ahi, an), (blo, bhi, bn) in zip(spans, spans[1:]):
        assert ahi <= blo, f"{an} [{alo:#x}, {ahi:#x}) overlaps {bn} [{blo:#x}, {bhi:#x}) in the file"
    # and allocated sections do not overlap in memory
    mem = sorted((s["sh_addr"], s["sh_addr"] + s["sh_size"], s.name) for s in elf.iter_sections()
                 if s["sh_flags"] & 2 and s["sh_size"] and not s["sh_flags"] & 0x400)  # SHF_TLS .tbss aside
    for (alo, ahi, an), (blo, bhi, bn) in zip(mem, mem[1:]):
        assert ahi <= blo, f"{an} and {bn} overlap in memory"


def test_dynamic_needed_and_symbol_versions(exe: Built):
    from elftools.elf.dynamic import DynamicSection
    elf = _elffile(exe)
    dyn = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
    needed = [t.needed for t in dyn.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
    assert "libc.so.6" in needed, f"DT_NEEDED: {needed}"
    if exe.name == "libm_math":
        assert "libm.so.6" in needed, f"-lm but DT_NEEDED: {needed}"

    verneed = elf.get_section_by_name(".gnu.version_r")
    versym = elf.get_section_by_name(".gnu.version")
    dynsym = elf.get_section_by_name(".dynsym")
    assert verneed is not None and versym is not None, "no .gnu.version/.gnu.version_r"
    index_to_version = {}
    for vn, auxes in verneed.iter_versions():
        for aux in auxes:
            index_to_version[aux["vna_other"]] = (vn.name, aux.name)
    assert versym["sh_size"] // 2 == dynsym.num_symbols(), ".gnu.version and .dynsym differ in length"
    unversioned = []
    for i, sym in enumerate(dynsym.iter_symbols()):
        if i == 0 or sym["st_shndx"] != "SHN_UNDEF":
            continue
        ndx = versym.get_symbol(i)["ndx"]
        ndx = ndx if isinstance(ndx, int) else {"VER_NDX_LOCAL": 0, "VER_NDX_GLOBAL": 1}.get(ndx, ndx)
        if isinstance(ndx, int):
            ndx &= 0x7FFF
        if sym["st_info"]["bind"] == "STB_WEAK" and ndx in (0, 1):
            continue  # an optional weak import (e.g. __gmon_start__) may be unversioned
        if ndx not in index_to_version:
            unversioned.append(f"{sym.name} (versym {ndx})")
        else:
            lib, ver = index_to_version[ndx]
            assert re.match(r"^[A-Z_]+_[0-9.]+$", ver), f"{sym.name}: odd version {ver!r} from {lib}"
            assert lib in needed, f"{sym.name}@{ver} needs {lib}, which is not DT_NEEDED"
    assert not unversioned, "undefined dynamic symbols without a version: " + ", ".join(unversioned)


# ------------------------------------------------------------------ .eh_frame_hdr


def _decode_ptr(data: bytes, off: int, enc: int, field_addr: int, datarel_base: int) -> tuple[int, int]:
    fmt = {0x00: "<Q", 0x02: "<H", 0x03: "<I", 0x04: "<Q", 0x09: "<h", 0x0A: "<h", 0x0B: "<i", 0x0C: "<q"}[enc & 0x0F]
    (v,) = struct.unpack_from(fmt, data, off)
    app = enc & 0x70
    if app == 0x10:
        v += field_addr
    elif app == 0x30:
        v += datarel_base
    else:
        assert app == 0, f"unexpected pointer application {app:#x}"
    return v & 0xFFFFFFFFFFFFFFFF, struct.calcsize(fmt)


def _eh_frame_hdr(b: Built, elf):
    seg = next(s for s in elf.iter_segments() if s.header.p_type == "PT_GNU_EH_FRAME")
    base = seg.header.p_vaddr
    data = b.data[seg.header.p_offset:seg.header.p_offset + seg.header.p_filesz]
    version, ptr_enc, count_enc, table_enc = data[:4]
    assert version == 1, f".eh_frame_hdr version {version}"
    off = 4
    eh_frame_ptr, n = _decode_ptr(data, off, ptr_enc, base + off, base)
    off += n
    count, n = _decode_ptr(data, off, count_enc, base + off, base)
    off += n
    assert table_enc == 0x3B, f"search table encoding {table_enc:#x}, expected DW_EH_PE_datarel|sdata4"
    table = []
    for _ in range(count):
        loc, n1 = _decode_ptr(data, off, table_enc, base + off, base)
        fde, n2 = _decode_ptr(data, off + n1, table_enc, base + off + n1, base)
        off += n1 + n2
        table.append((loc, fde))
    assert off <= len(data), "the search table runs past PT_GNU_EH_FRAME's size"
    return eh_frame_ptr, table


def _fdes(elf):
    """{FDE address: (initial location, address range)} from pyelftools' .eh_frame parse."""
    from elftools.dwarf.callframe import FDE
    eh = elf.get_section_by_name(".eh_frame")
    dw = elf.get_dwarf_info()
    out = {}
    for e in dw.EH_CFI_entries():
        if isinstance(e, FDE):
            out[eh["sh_addr"] + e.offset] = (e.header["initial_location"], e.header["address_range"])
    return out


def test_eh_frame_hdr_table(exe: Built):
    elf = _elffile(exe)
    eh = elf.get_section_by_name(".eh_frame")
    assert eh is not None, "no .eh_frame"
    eh_frame_ptr, table = _eh_frame_hdr(exe, elf)
    assert eh_frame_ptr == eh["sh_addr"], f"eh_frame_ptr {eh_frame_ptr:#x} != .eh_frame at {eh['sh_addr']:#x}"
    assert table, "empty .eh_frame_hdr search table"
    locs = [loc for loc, _ in table]
    assert locs == sorted(locs), "the .eh_frame_hdr search table is not sorted"
    assert len(set(locs)) == len(locs), "duplicate initial locations in the .eh_frame_hdr table"
    fdes = _fdes(elf)
    xr = _exec_ranges(elf)
    for loc, fde_addr in table:
        assert fde_addr in fdes, f"table entry for {loc:#x} points at {fde_addr:#x}, which is not an FDE"
        start, size = fdes[fde_addr]
        assert start == loc, f"table says {loc:#x} but the FDE at {fde_addr:#x} starts at {start:#x}"
    assert len(table) == len(fdes), f"{len(fdes)} FDEs in .eh_frame but {len(table)} in the search table"
    for fde_addr, (start, size) in fdes.items():
        assert any(lo <= start and start + size <= hi for lo, hi in xr), \
            f"FDE at {fde_addr:#x} covers [{start:#x}, {start + size:#x}), outside every executable PT_LOAD"


def test_eh_frame_covers_stub_area(exe: Built):
    elf = _elffile(exe)
    stubs = elf.get_section_by_name(".plt")
    assert stubs is not None
    lo, hi = stubs["sh_addr"], stubs["sh_addr"] + stubs["sh_size"]
    _, table = _eh_frame_hdr(exe, elf)
    fdes = _fdes(elf)
    covered = [(s, s + n) for s, n in (fdes[a] for _, a in table)]
    assert any(s <= lo and hi <= e for s, e in covered), \
        f"no FDE covers .plt [{lo:#x}, {hi:#x})"


# ------------------------------------------------------------------ stubs and GOT cells


def _symbols(elf):
    return list(elf.get_section_by_name(".symtab").iter_symbols())


def test_every_function_has_a_stub_and_cell(exe: Built):
    elf = _elffile(exe)
    text = elf.get_section_by_name(".text")
    stubs_sec = elf.get_section_by_name(".plt")
    cells_sec = elf.get_section_by_name(".devlink.cells")
    assert stubs_sec is not None and cells_sec is not None
    t_lo, t_hi = text["sh_addr"], text["sh_addr"] + text["sh_size"]
    s_lo, s_hi = stubs_sec["sh_addr"], stubs_sec["sh_addr"] + stubs_sec["sh_size"]
    c_lo, c_hi = cells_sec["sh_addr"], cells_sec["sh_addr"] + cells_sec["sh_size"]

    syms = _symbols(elf)
    by_name: dict[str, list] = {}
    for s in syms:
        by_name.setdefault(s.name, []).append(s)
    # functions by address in .text (not by st_shndx: see test_symtab_section_indexes)
    funcs = [s for s in syms if s["st_info"]["type"] == "STT_FUNC" and s["st_value"]
             and t_lo <= s["st_value"] < t_hi and ".cold" not in s.name and "$" not in s.name]
    assert funcs, "no functions found in .text"
    problems = []
    checked = 0
    for f in funcs:
        stubs = by_name.get(f.name + "$stub", [])
        cells = by_name.get(f.name + "$got", [])
        if len(stubs) != 1:
            problems.append(f"{f.name}: {len(stubs)} `$stub` symbols")
            continue
        stub = stubs[0]["st_value"]
        if not (s_lo <= stub and stub + 8 <= s_hi) or stubs[0]["st_size"] != 8:
            problems.append(f"{f.name}$stub at {stub:#x} size {stubs[0]['st_size']} is not an 8-byte entry of .plt")
            continue
        code = _read_vaddr(exe, elf, stub, 8)
        if code[:2] != b"\xff\x25":
            problems.append(f"{f.name}$stub: bytes {code.hex(' ')} are not `jmp *rel32(%rip)`")
            continue
        (rel,) = struct.unpack_from("<i", code, 2)
        cell = stub + 6 + rel
        if not (c_lo <= cell and cell + 8 <= c_hi) or cell % 8:
            problems.append(f"{f.name}$stub jumps through {cell:#x}, not an aligned cell in .devlink.cells")
            continue
        cell_names = [c["st_value"] for c in cells if c_lo <= c["st_value"] < c_hi]
        if cell_names != [cell]:
            problems.append(f"{f.name}$stub reads {cell:#x} but {f.name}$got is at "
                            f"{[hex(v) for v in cell_names]}")
            continue
        (target,) = struct.unpack("<Q", _read_vaddr(exe, elf, cell, 8))
        if target != f["st_value"]:
            problems.append(f"{f.name}$got holds {target:#x}, but {f.name} is at {f['st_value']:#x}")
            continue
        checked += 1
    assert not problems, f"{len(problems)} of {len(funcs)} functions:\n" + "\n".join(problems[:40])
    assert checked == len(funcs)


def test_no_duplicate_stub_or_cell_names(exe: Built):
    elf = _elffile(exe)
    seen: dict[str, int] = {}
    for s in _symbols(elf):
        if s.name.endswith(("$stub", "$got", "$gotpcrel")):
            seen[s.name] = seen.get(s.name, 0) + 1
    dups = sorted(n for n, k in seen.items() if k > 1)
    assert not dups, f"duplicate synthetic symbol names in .symtab: {dups}"


def test_stub_code_and_entry_point(exe: Built):
    """The entry point is _start's stub (canonical address) or _start's code; and every
    stub slot is 8 bytes of `jmp *rel32(%rip)` plus padding that never executes."""
    elf = _elffile(exe)
    stubs_sec = elf.get_section_by_name(".plt")
    data = stubs_sec.data()
    for off in range(0, len(data) - len(data) % 8, 8):
        chunk = data[off:off + 8]
        if chunk == b"\0" * 8:
            continue  # unused room
        assert chunk[:2] == b"\xff\x25", f"stub at {stubs_sec['sh_addr'] + off:#x}: {chunk.hex(' ')}"
    syms = {s.name: s["st_value"] for s in _symbols(elf)}
    assert elf.header.e_entry in (syms.get("_start"), syms.get("_start$stub")), \
        f"e_entry {elf.header.e_entry:#x} is neither _start nor _start$stub"


def test_symtab_section_indexes(exe: Built):
    """Each defined .symtab symbol's st_shndx names the section that holds its address."""
    elf = _elffile(exe)
    secs = list(elf.iter_sections())
    wrong = []
    for s in _symbols(elf):
        if not s.name or s["st_info"]["type"] in ("STT_FILE", "STT_SECTION"):
            continue
        shndx, value = s["st_shndx"], s["st_value"]
        if shndx == "SHN_ABS":
            continue
        if shndx == "SHN_UNDEF":
            if value != 0:
                wrong.append(f"{s.name} = {value:#x} is SHN_UNDEF")
            continue
        if not isinstance(shndx, int):
            continue
        sec = secs[shndx]
        lo, hi = sec["sh_addr"], sec["sh_addr"] + sec["sh_size"]
        if sec["sh_flags"] & 0x400:  # SHF_TLS: st_value is an offset into the TLS block
            continue
        if not (lo <= value <= hi):
            wrong.append(f"{s.name} = {value:#x} but section {shndx} {sec.name} is [{lo:#x}, {hi:#x})")
    assert not wrong, f"{len(wrong)} symbols with a wrong st_shndx:\n" + "\n".join(wrong[:30])


def _eh_frame_records(b: Built, elf) -> list[tuple[int, int]]:
    """(offset, length) of each record of .eh_frame, walked linearly (length 0 = terminator)."""
    eh = elf.get_section_by_name(".eh_frame")
    data = eh.data()
    out, off = [], 0
    while off + 4 <= len(data):
        (length,) = struct.unpack_from("<I", data, off)
        assert length != 0xFFFFFFFF, "64-bit DWARF record in .eh_frame"
        out.append((off, length))
        off += 4 + length
    assert off == len(data), f".eh_frame records run to {off:#x}, section size is {len(data):#x}"
    return out


def test_eh_frame_has_no_premature_terminator(exe: Built):
    elf = _elffile(exe)
    recs = _eh_frame_records(exe, elf)
    last_real = max(i for i, (_, n) in enumerate(recs) if n)
    early = [off for i, (off, n) in enumerate(recs) if n == 0 and i < last_real]
    assert not early, f"zero terminators before the last CIE/FDE of .eh_frame at offsets {[hex(o) for o in early]}"
    assert recs[-1][1] == 0, ".eh_frame does not end with a zero terminator"


# ------------------------------------------------------------------ dynamic section


def test_dynamic_tags_match_sections(exe: Built):
    from elftools.elf.dynamic import DynamicSection
    elf = _elffile(exe)
    dyn = next(s for s in elf.iter_sections() if isinstance(s, DynamicSection))
    tags: dict[str, list[int]] = {}
    for t in dyn.iter_tags():
        tags.setdefault(t.entry.d_tag, []).append(t.entry.d_val)
    sec = elf.get_section_by_name

    def one(tag):
        assert len(tags.get(tag, [])) == 1, f"{tag}: {tags.get(tag)}"
        return tags[tag][0]

    assert one("DT_SYMTAB") == sec(".dynsym")["sh_addr"]
    assert one("DT_STRTAB") == sec(".dynstr")["sh_addr"]
    assert one("DT_STRSZ") == sec(".dynstr")["sh_size"]
    assert one("DT_SYMENT") == 24
    hash_sec = sec(".gnu.hash") or sec(".hash")
    assert hash_sec is not None, "no .hash/.gnu.hash"
    assert (tags.get("DT_HASH") or tags.get("DT_GNU_HASH")) == [hash_sec["sh_addr"]]
    assert one("DT_VERSYM") == sec(".gnu.version")["sh_addr"]
    assert one("DT_VERNEED") == sec(".gnu.version_r")["sh_addr"]
    assert one("DT_VERNEEDNUM") == sum(1 for _ in sec(".gnu.version_r").iter_versions())
    rela = sec(".rela.dyn")
    if rela is not None and rela["sh_size"]:
        assert one("DT_RELA") == rela["sh_addr"]
        assert one("DT_RELASZ") == rela["sh_size"]
        assert one("DT_RELAENT") == 24
    for name, tag in ((".init_array", "DT_INIT_ARRAY"), (".fini_array", "DT_FINI_ARRAY")):
        s = sec(name)
        if s is not None and s["sh_size"]:
            assert one(tag) == s["sh_addr"]
            assert one(tag + "SZ") == s["sh_size"]
    bind_now = (tags.get("DT_FLAGS", [0])[0] & 0x8) or (tags.get("DT_FLAGS_1", [0])[0] & 0x1)
    assert bind_now, "no BIND_NOW (DT_FLAGS / DT_FLAGS_1)"
    assert "DT_TEXTREL" not in tags, "text relocations"
    assert list(dyn.iter_tags())[-1].entry.d_tag == "DT_NULL"


def test_hash_table_finds_every_dynamic_symbol(exe: Built):
    elf = _elffile(exe)
    h = elf.get_section_by_name(".gnu.hash") or elf.get_section_by_name(".hash")
    dynsym = elf.get_section_by_name(".dynsym")
    assert h.get_number_of_symbols() == dynsym.num_symbols()
    for i, s in enumerate(dynsym.iter_symbols()):
        if i == 0 or s["st_shndx"] == "SHN_UNDEF" and elf.get_section_by_name(".gnu.hash") is not None:
            continue  # .gnu.hash holds only defined symbols
        found = h.get_symbol(s.name)
        assert found is not None and found.name == s.name, f"hash lookup of {s.name!r} fails"


def test_dynamic_relocations_are_sane(exe: Built):
    from elftools.elf.relocation import RelocationSection
    elf = _elffile(exe)
    dynsym = elf.get_section_by_name(".dynsym")
    writable = [(s.header.p_vaddr, s.header.p_vaddr + s.header.p_memsz)
                for s in _load_segments(elf) if s.header.p_flags & PF_W]
    # R_X86_64_64, COPY, GLOB_DAT, JUMP_SLOT, RELATIVE, DTPMOD64, DTPOFF64, TPOFF64, IRELATIVE
    allowed = {1, 5, 6, 7, 8, 16, 17, 18, 37}
    n = 0
    for sec in elf.iter_sections():
        if not isinstance(sec, RelocationSection) or not sec["sh_flags"] & 2:
            continue
        for r in sec.iter_relocations():
            n += 1
            t, off, si = r["r_info_type"], r["r_offset"], r["r_info_sym"]
            assert t in allowed, f"{sec.name}: unexpected dynamic relocation type {t} at {off:#x}"
            assert si < dynsym.num_symbols(), f"{sec.name}: symbol index {si} out of range"
            assert any(lo <= off and off + 8 <= hi for lo, hi in writable), \
                f"{sec.name}: relocation at {off:#x} is not in a writable segment (text relocation)"
            if t in (6, 7):
                assert si != 0, f"GLOB_DAT/JUMP_SLOT at {off:#x} without a symbol"
                assert off % 8 == 0, f"GOT entry at {off:#x} is not 8-aligned"
    assert n > 0, "no dynamic relocations at all (imports must be bound through the GOT)"


def test_init_fini_arrays_point_at_code(exe: Built):
    elf = _elffile(exe)
    xr = _exec_ranges(elf)
    for name in (".init_array", ".fini_array"):
        s = elf.get_section_by_name(name)
        if s is None:
            continue
        data = s.data()
        assert len(data) % 8 == 0
        for i in range(0, len(data), 8):
            (p,) = struct.unpack_from("<Q", data, i)
            assert any(lo <= p < hi for lo, hi in xr), f"{name}[{i // 8}] = {p:#x} is not executable code"

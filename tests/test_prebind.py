"""Every function (and variable) the needed libraries export is bound at start, so a
later edit can call a libc function the program never called before (DESIGN.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerSymSection

import helpers

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


def libc_path() -> str:
    out = subprocess.run(["cc", "-print-file-name=libc.so.6"], capture_output=True, text=True).stdout.strip()
    return out if Path(out).exists() else "/lib/x86_64-linux-gnu/libc.so.6"


def default_exports(path: str) -> set[str]:
    """Names of the library's default-version function definitions (not GLIBC_PRIVATE)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        dynsym = elf.get_section_by_name(".dynsym")
        versym = next(s for s in elf.iter_sections() if isinstance(s, GNUVerSymSection))
        verdef = elf.get_section_by_name(".gnu.version_d")
        names = {}
        for v, aux in verdef.iter_versions():
            names[v["vd_ndx"]] = next(aux).name
        out = set()
        for i, sym in enumerate(dynsym.iter_symbols()):
            if sym["st_shndx"] == "SHN_UNDEF" or sym["st_info"]["type"] not in ("STT_FUNC", "STT_GNU_IFUNC"):
                continue
            if sym["st_info"]["bind"] == "STB_LOCAL":
                continue
            ndx = versym.get_symbol(i)["ndx"]
            if isinstance(ndx, str):
                continue
            if ndx & 0x8000 or names.get(ndx & 0x7FFF) == "GLIBC_PRIVATE":
                continue
            out.add(sym.name)
        return out


def test_every_libc_function_is_bound_at_start(tmp_path):
    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    out = tmp_path / "hello"
    r = helpers.run_devlink("build", "-o", out, src, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    wanted = default_exports(libc_path())
    assert len(wanted) > 1500, len(wanted)
    with open(out, "rb") as f:
        elf = ELFFile(f)
        dyn = {s.name for s in elf.get_section_by_name(".dynsym").iter_symbols()}
        glob_dat = sum(1 for r in elf.get_section_by_name(".rela.dyn").iter_relocations()
                       if r["r_info_type"] == 6)  # R_X86_64_GLOB_DAT
    missing = sorted(wanted - dyn)
    assert not missing, f"{len(missing)} libc functions are not bound, e.g. {missing[:10]}"
    assert glob_dat >= len(wanted)
    # and the program still runs as cc's does
    assert subprocess.run([str(out)], capture_output=True, text=True).stdout == "hi\n"

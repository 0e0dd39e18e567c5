"""Objects and outputs with more than 65,279 sections (ELF extended section numbering).

Past SHN_LORESERVE (0xff00) sections an ELF file keeps the section count in section
0's sh_size (e_shnum = 0), the name table's index in its sh_link (e_shstrndx =
SHN_XINDEX), and a symbol's section in SHT_SYMTAB_SHNDX (st_shndx = SHN_XINDEX).  gcc
writes such an object for a file with 65,300 variables under -fdata-sections; devlink
used to link it into a program that crashed (the variables past index 0xff00 were
taken for absolute symbols at address 0).
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from test_bad_input import CC, OLD_OUTPUT, check_fails, devlink

pytestmark = pytest.mark.skipif(CC is None, reason="needs cc")

N = 65300
MAIN_C = r"""
#include <stdio.h>
extern int v10, v65299;
extern int f65290(void);
int main(void) { printf("%d %d %d\n", v10, v65299, f65290()); return 0; }
"""


def _many(tmp_path, line: str, name: str = "b.c"):
    src = tmp_path / name
    src.write_text("".join(line % {"i": i} for i in range(N)))
    return src


def test_object_with_extended_section_numbers_links_and_updates(tmp_path):
    """65,300 initialised variables and one function in section 65,3xx: the program
    prints their values, after a full link and after an incremental update."""
    (tmp_path / "m.c").write_text(MAIN_C)
    _many(tmp_path, "int v%(i)d = %(i)d;\n")
    with open(tmp_path / "b.c", "a") as f:
        f.write("int f65290(void) { return v65290 * 2; }\n")
    p = devlink("build", "-o", "o", "m.c", "b.c", cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    obj = next((tmp_path / ".devlink" / "o" / "obj").glob("b-*.o"))
    head = obj.read_bytes()[:64]
    assert struct.unpack_from("<HH", head, 60) == (0, 0xFFFF), "gcc did not use extended numbering"
    assert subprocess.run([str(tmp_path / "o")], capture_output=True, text=True).stdout == "10 65299 130580\n"
    text = (tmp_path / "b.c").read_text().replace("int v65299 = 65299;", "int v65299 = 7;")
    (tmp_path / "b.c").write_text(text.replace("return v65290 * 2;", "return v65290 * 3;"))
    p = devlink("build", "-v", "-o", "o", "m.c", "b.c", cwd=tmp_path, timeout=300)
    assert p.returncode == 0 and "updated o" in p.stderr, p.stderr
    assert subprocess.run([str(tmp_path / "o")], capture_output=True, text=True).stdout == "10 7 195870\n"


@pytest.mark.slow
def test_output_with_extended_section_numbers(tmp_path):
    """65,300 user sections (each its own output section): the output uses extended
    numbering in its header, readers find its section names, the symbols keep their
    addresses (as SHN_ABS past 0xff00), and the program runs."""
    (tmp_path / "m.c").write_text(MAIN_C.replace("extern int f65290(void);", "int f65290(void) { return 1; }"))
    _many(tmp_path, '__attribute__((section("s%(i)d"))) int v%(i)d = %(i)d;\n')
    p = devlink("build", "-o", "o", "m.c", "b.c", cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "o"
    assert subprocess.run([str(out)], capture_output=True, text=True).stdout == "10 65299 1\n"
    e_shnum, e_shstrndx = struct.unpack_from("<HH", out.read_bytes()[:64], 60)
    assert (e_shnum, e_shstrndx) == (0, 0xFFFF)
    with open(out, "rb") as f:
        elf = ELFFile(f)
        assert elf.num_sections() > N
        assert elf.get_section(elf.num_sections() - 1).name == ".shstrtab"
        assert elf.get_section_by_name("s65299") is not None
        symtab = elf.get_section_by_name(".symtab")
        v = symtab.get_symbol_by_name("v65299")[0]
        sec = elf.get_section_by_name("s65299")
        assert v["st_value"] == sec["sh_addr"] and v["st_shndx"] == "SHN_ABS"
    assert "ff" not in subprocess.run(["readelf", "-h", str(out)], capture_output=True, text=True).stderr


def test_object_with_too_many_sections_is_one_error_line(tmp_path):
    """More sections than devlink's resolved indexes can tell from SHN_ABS/SHN_COMMON:
    one line naming the file, not a wrong program."""
    data = bytearray(64 + 64)
    data[:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", data, 16, 1, 62, 1, 0, 0, 64, 0, 64, 0, 0, 64, 0, 0xFFFF)
    struct.pack_into("<IIQQQQIIQQ", data, 64, 0, 0, 0, 0, 0, 70000, 5, 0, 0, 0)
    big = tmp_path / "big.o"
    big.write_bytes(bytes(data))
    out = tmp_path / "prog"
    out.write_bytes(OLD_OUTPUT)
    line = check_fails(tmp_path, out, big, must_name=(big, "70000"))
    assert "split" in line

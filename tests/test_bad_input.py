"""Bad input gets one clear error line, never a traceback (DESIGN.md invariant 7).

Every case runs the real CLI (`python -m devlink build ...`) and checks: exit status 1;
stderr is exactly one line `devlink: error: ...` (for a C compile error, gcc's own
diagnostics may come first); the line names the file / symbol at fault; no traceback;
and an output file that existed before the failed link is untouched (same bytes, same
inode).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
AR = shutil.which("ar")
pytestmark = pytest.mark.skipif(CC is None or AR is None, reason="needs cc and ar")

OLD_OUTPUT = b"previous program \x00\x01\x02 must survive a failed link\n"

MAIN_C = r"""
#include <stdio.h>
extern int helper(int);
int main(int argc, char **argv) { printf("%d\n", helper(argc)); return 0; }
"""
HELPER_C = "int helper(int x) { return x + 1; }\n"


def devlink(*args, cwd=None, env=None, timeout=120):
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-m", "devlink", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=e, timeout=timeout)


def cc(tmp: Path, name: str, text: str, *flags: str) -> Path:
    src = tmp / name
    src.write_text(text)
    obj = tmp / (src.stem + ".o")
    subprocess.run([CC, "-c", *flags, str(src), "-o", str(obj)], check=True, capture_output=True)
    return obj


def objects(tmp: Path) -> tuple[Path, Path]:
    return cc(tmp, "main.c", MAIN_C, "-fPIC"), cc(tmp, "helper.c", HELPER_C, "-fPIC")


def old_output(tmp: Path) -> Path:
    out = tmp / "prog"
    out.write_bytes(OLD_OUTPUT)
    return out


def check_fails(tmp: Path, out: Path, *args, must_name=(), env=None, compiler_output=False) -> str:
    """Run `devlink build -o out args...`; check the failure contract; return the error line."""
    ino = out.stat().st_ino
    p = devlink("build", "-o", out, *args, cwd=tmp, env=env)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert lines, "no error message"
    line = lines[-1]
    assert line.startswith("devlink: error: "), p.stderr
    if compiler_output:
        assert sum(ln.startswith("devlink:") for ln in lines) == 1, p.stderr
    else:
        assert len(lines) == 1, p.stderr
    for what in must_name:
        assert str(what) in line, f"{what!r} not named in: {line}"
    assert out.read_bytes() == OLD_OUTPUT, "the failed link changed the output file"
    assert out.stat().st_ino == ino, "the failed link replaced the output file"
    assert not [f for f in os.listdir(out.parent) if f.startswith(f".{out.name}.")], "temporary file left behind"
    print(line)
    return line


# --- symbols ------------------------------------------------------------------------------

def test_good_link_works(tmp_path):
    """The baseline the other cases break: these objects do link and run."""
    main, helper = objects(tmp_path)
    out = old_output(tmp_path)
    p = devlink("build", "-o", out, main, helper)
    assert p.returncode == 0, p.stderr
    assert subprocess.run([str(out), "x"], capture_output=True, text=True).stdout == "3\n"


def test_undefined_symbol_names_symbol_and_every_referencing_object(tmp_path):
    main, helper = objects(tmp_path)
    a = cc(tmp_path, "use_a.c", "extern int missing_fn(void);\nint use_a(void) { return missing_fn(); }\n", "-fPIC")
    b = cc(tmp_path, "use_b.c", "extern int missing_fn(void);\nint use_b(void) { return missing_fn() + 1; }\n", "-fPIC")
    line = check_fails(tmp_path, old_output(tmp_path), main, helper, a, b, must_name=("missing_fn", a, b))
    assert "undefined" in line


def test_undefined_symbol_from_missing_object(tmp_path):
    main, _ = objects(tmp_path)
    check_fails(tmp_path, old_output(tmp_path), main, must_name=("helper", main))


def test_duplicate_definition_names_both_objects(tmp_path):
    main, helper = objects(tmp_path)
    dup = cc(tmp_path, "dup.c", "int helper(int x) { return x + 2; }\n", "-fPIC")
    line = check_fails(tmp_path, old_output(tmp_path), main, helper, dup, must_name=("helper", helper, dup))
    assert "duplicate" in line


# --- relocations --------------------------------------------------------------------------

USE_C = "int get_it(void);\nint main(void) { return get_it(); }\n"


@pytest.mark.parametrize("asm, rtype, offset", [
    (".reloc ., R_X86_64_GOTPC32_TLSDESC, foo\n\tnop; nop; nop; nop\n", "R_X86_64_GOTPC32_TLSDESC", "0x0"),
    ("nop\n\tnop\n\tmovabs $foo@GOT, %rax\n", "R_X86_64_GOT64", "0x4"),
    (".reloc ., R_X86_64_TLSDESC_CALL, foo\n\tnop; nop\n", "R_X86_64_TLSDESC_CALL", "0x0"),
])
def test_unsupported_relocation(tmp_path, asm, rtype, offset):
    src = tmp_path / "bad.s"
    src.write_text(f"\t.text\n\t.globl get_it\n\t.type get_it,@function\nget_it:\n\t{asm}\tret\n"
                   f"\t.data\n\t.globl foo\nfoo:\t.long 1\n")
    obj = tmp_path / "bad.o"
    subprocess.run([CC, "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
    use = cc(tmp_path, "use.c", USE_C, "-fPIC")
    line = check_fails(tmp_path, old_output(tmp_path), use, obj, must_name=(rtype, obj, ".text", offset))
    assert "unsupported relocation" in line


def test_unknown_relocation_type_is_named_once(tmp_path):
    """A type x86-64 does not have (1028): "unsupported relocation type 1028 (unknown to
    x86-64) in OBJ: section .text+0x4" (it said "relocation relocation type 1028")."""
    from elftools.elf.elffile import ELFFile
    src = tmp_path / "bad.s"
    src.write_text("\t.text\n\t.globl get_it\nget_it:\n\tnop\n\tnop\n\tmovabs $foo@GOT, %rax\n\tret\n"
                   "\t.data\n\t.globl foo\nfoo:\t.long 1\n")
    obj = tmp_path / "bad.o"
    subprocess.run([CC, "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
    data = bytearray(obj.read_bytes())
    with open(obj, "rb") as f:
        rela = ELFFile(f).get_section_by_name(".rela.text")
        off, size = rela["sh_offset"], rela["sh_size"]
    for r in range(off, off + size, 24):
        if struct.unpack_from("<I", data, r + 8)[0] == 27:             # R_X86_64_GOT64
            struct.pack_into("<I", data, r + 8, 1028)
    obj.write_bytes(bytes(data))
    use = cc(tmp_path, "use.c", USE_C, "-fPIC")
    line = check_fails(tmp_path, old_output(tmp_path), use, obj, must_name=(obj, ".text+0x4"))
    assert "unsupported relocation type 1028 (unknown to x86-64) in" in line and "relocation relocation" not in line
    assert "rebuild it" in line


# --- malformed objects --------------------------------------------------------------------

@pytest.mark.parametrize("frac", [0.0, 0.01, 0.04, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_truncated_object(tmp_path, frac):
    main, helper = objects(tmp_path)
    data = helper.read_bytes()
    cut = int(len(data) * frac)
    helper.write_bytes(data[:cut] if frac else data[:10])
    check_fails(tmp_path, old_output(tmp_path), main, helper, must_name=(helper,))


def test_truncated_object_by_one_byte(tmp_path):
    main, helper = objects(tmp_path)
    helper.write_bytes(helper.read_bytes()[:-1])
    line = check_fails(tmp_path, old_output(tmp_path), main, helper, must_name=(helper,))
    assert "truncated" in line


@pytest.mark.parametrize("content", [b"", b"hello, this is not an object\n", bytes(range(256)) * 8,
                                     b"\x7fELF", b"\x7fELF" + b"\x00" * 100])
def test_garbage_object(tmp_path, content):
    main, _ = objects(tmp_path)
    bad = tmp_path / "helper.o"
    bad.write_bytes(content)
    check_fails(tmp_path, old_output(tmp_path), main, bad, must_name=(bad,))


def _patch(path: Path, off: int, fmt: str, value: int) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, off, value)
    path.write_bytes(bytes(data))


def _shdr(path: Path, name: str) -> tuple[int, tuple]:
    """(file offset of the section header, its fields) of section `name`."""
    data = path.read_bytes()
    shoff, shnum, shstrndx = struct.unpack_from("<Q", data, 40)[0], *struct.unpack_from("<HH", data, 60)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * i) for i in range(shnum)]
    strs = data[hdrs[shstrndx][4]:]
    for i, h in enumerate(hdrs):
        if strs[h[0]:strs.index(b"\0", h[0])].decode() == name:
            return shoff + 64 * i, h
    raise KeyError(name)


@pytest.mark.parametrize("what", ["e_shstrndx", "e_shnum", "e_machine", "e_shentsize", "sh_offset",
                                  "symbol_shndx", "reloc_offset", "reloc_symbol", "symtab_link"])
def test_corrupt_object_fields(tmp_path, what):
    main, helper = objects(tmp_path)
    obj = main
    if what == "e_shstrndx":
        _patch(obj, 62, "<H", 999)
    elif what == "e_shnum":
        _patch(obj, 60, "<H", 0xFFF0)
    elif what == "e_machine":
        _patch(obj, 18, "<H", 183)  # EM_AARCH64
    elif what == "e_shentsize":
        _patch(obj, 58, "<H", 40)
    elif what == "sh_offset":
        off, _ = _shdr(obj, ".text.startup" if False else ".text")
        _patch(obj, off + 24, "<Q", 2**40)
    elif what == "symbol_shndx":
        _, sym = _shdr(obj, ".symtab")
        _patch(obj, sym[4] + 24 * (sym[5] // 24 - 1) + 6, "<H", 0x7000)
    elif what in ("reloc_offset", "reloc_symbol"):
        _, rel = _shdr(obj, ".rela.text")
        if what == "reloc_offset":
            _patch(obj, rel[4], "<Q", 2**63 + 5)
        else:
            _patch(obj, rel[4] + 12, "<I", 100000)
    elif what == "symtab_link":
        off, _ = _shdr(obj, ".symtab")
        _patch(obj, off + 40, "<I", 5000)
    check_fails(tmp_path, old_output(tmp_path), obj, helper, must_name=(obj,))


def test_executable_as_input(tmp_path):
    main, helper = objects(tmp_path)
    exe = tmp_path / "exe"
    subprocess.run([CC, "-no-pie", str(tmp_path / "helper.c"), "-x", "c", "-", "-o", str(exe)],
                   input="int main(void){return 0;}", text=True, check=True, capture_output=True)
    line = check_fails(tmp_path, old_output(tmp_path), main, helper, exe, must_name=(exe,))
    assert "executable" in line


def test_pie_executable_as_input(tmp_path):
    main, helper = objects(tmp_path)
    exe = tmp_path / "pie"
    subprocess.run([CC, "-pie", "-fPIE", "-x", "c", "-", "-o", str(exe)],
                   input="int main(void){return 0;}", text=True, check=True, capture_output=True)
    line = check_fails(tmp_path, old_output(tmp_path), main, helper, exe, must_name=(exe,))
    assert "executable" in line


def test_directory_as_input(tmp_path):
    main, helper = objects(tmp_path)
    d = tmp_path / "somedir.o"
    d.mkdir()
    check_fails(tmp_path, old_output(tmp_path), main, helper, d, must_name=(d,))


# --- archives -----------------------------------------------------------------------------

def _archive(tmp: Path, *flags: str) -> Path:
    lib = tmp / "libhelp.a"
    helper = cc(tmp, "helper.c", HELPER_C, "-fPIC")
    other = cc(tmp, "other_member.c", "int other_fn(void) { return 42; }\n", "-fPIC")
    subprocess.run([AR, *(flags or ("rcs",)), str(lib), str(helper), str(other)], check=True, capture_output=True)
    return lib


def _member_header(data: bytes, name: bytes) -> int:
    pos = data.index(name.ljust(16)[:16] if len(name) < 16 else name)
    assert data[pos + 58:pos + 60] == b"`\n"
    return pos


@pytest.mark.parametrize("damage", ["header_magic", "header_size", "negative_size", "truncated_member",
                                    "bad_index_offset", "index_truncated", "member_garbage", "member_truncated"])
def test_malformed_archive(tmp_path, damage):
    main = cc(tmp_path, "main.c", MAIN_C, "-fPIC")
    lib = _archive(tmp_path)
    data = bytearray(lib.read_bytes())
    pos = _member_header(data, b"helper.o/")
    size = int(data[pos + 48:pos + 58])
    if damage == "header_magic":
        data[pos + 58:pos + 60] = b"XX"
    elif damage == "header_size":
        data[pos + 48:pos + 58] = b"12x4      "
    elif damage == "negative_size":
        data[pos + 48:pos + 58] = b"-60       "
    elif damage == "truncated_member":
        data = data[:pos + 60 + size // 2]
    elif damage == "bad_index_offset":
        assert data[8:10] == b"/ "
        struct.pack_into(">I", data, 8 + 60 + 4, 7)   # first index entry -> offset 7
    elif damage == "index_truncated":
        struct.pack_into(">I", data, 8 + 60, 10**6)   # symbol count far beyond the index
    elif damage == "member_garbage":
        data[pos + 60:pos + 60 + size] = b"G" * size
    elif damage == "member_truncated":
        # the member's own ELF contents cut short (its header still says the old size)
        data[pos + 60 + size // 2:pos + 60 + size] = b"\0" * (size - size // 2)
        struct.pack_into("<Q", data, pos + 60 + 40, size * 4)   # e_shoff past the member
    lib.write_bytes(bytes(data))
    check_fails(tmp_path, old_output(tmp_path), main, lib, must_name=(lib,))


def test_thin_archive(tmp_path):
    main = cc(tmp_path, "main.c", MAIN_C, "-fPIC")
    lib = _archive(tmp_path, "rcsT")
    assert lib.read_bytes().startswith(b"!<thin>\n")
    line = check_fails(tmp_path, old_output(tmp_path), main, lib, must_name=(lib,))
    assert "thin" in line


# --- files and libraries ------------------------------------------------------------------

def test_missing_library(tmp_path):
    main, helper = objects(tmp_path)
    extra = tmp_path / "mylibs"
    extra.mkdir()
    line = check_fails(tmp_path, old_output(tmp_path), main, helper, "-L", extra, "-lnosuchlib",
                       must_name=("-lnosuchlib", extra))
    assert "/usr/lib" in line or "/lib" in line  # the compiler's own directories are listed too


def test_missing_input_file(tmp_path):
    main, helper = objects(tmp_path)
    check_fails(tmp_path, old_output(tmp_path), main, helper, tmp_path / "nope.o", must_name=("nope.o",))


def test_missing_source_file(tmp_path):
    main, helper = objects(tmp_path)
    check_fails(tmp_path, old_output(tmp_path), tmp_path / "nope.c", helper, must_name=("nope.c",))


def test_missing_compiler(tmp_path):
    (tmp_path / "main.c").write_text(MAIN_C)
    (tmp_path / "helper.c").write_text(HELPER_C)
    line = check_fails(tmp_path, old_output(tmp_path), "main.c", "helper.c", env={"CC": "/nonexistent/cc"},
                       must_name=("/nonexistent/cc",))
    assert "install gcc" in line and "CC" in line


def test_missing_compiler_linking_objects(tmp_path):
    """Objects only: the start-up files still come from cc, so the message is the same."""
    main, helper = objects(tmp_path)
    line = check_fails(tmp_path, old_output(tmp_path), main, helper, env={"CC": "/nonexistent/cc"},
                       must_name=("/nonexistent/cc",))
    assert "install gcc" in line


def test_compile_error(tmp_path):
    (tmp_path / "broken.c").write_text("int main(void) { return undeclared_thing + ; }\n")
    line = check_fails(tmp_path, old_output(tmp_path), "broken.c", must_name=("broken.c",), compiler_output=True)
    p = devlink("build", "-o", tmp_path / "x", "broken.c", cwd=tmp_path)
    gcc_lines = p.stderr.splitlines()[:-1]
    assert any("broken.c:1:" in ln and "error" in ln for ln in gcc_lines), p.stderr  # gcc's own diagnostics
    assert "compil" in line


# --- options and commands -----------------------------------------------------------------

@pytest.mark.parametrize("opt", ["-static", "-flto", "-flto=auto", "-shared", "-static-pie", "-Wl,--whole-archive"])
def test_unsupported_options(tmp_path, opt):
    main, helper = objects(tmp_path)
    check_fails(tmp_path, old_output(tmp_path), opt, main, helper, must_name=(opt.split(",")[-1],))


def test_option_missing_argument(tmp_path):
    main, helper = objects(tmp_path)
    check_fails(tmp_path, old_output(tmp_path), main, helper, "-L", must_name=("-L",))


def test_no_inputs(tmp_path):
    check_fails(tmp_path, old_output(tmp_path))


def test_unknown_command():
    p = devlink("frobnicate")
    assert p.returncode == 1
    assert p.stderr.splitlines() == [p.stderr.strip()] and p.stderr.startswith("devlink: error: ")
    assert "frobnicate" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"], [], ["build", "--help"]])
def test_help_and_version(args):
    p = devlink(*args)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() and not p.stderr
    if args == ["--version"]:
        assert p.stdout.startswith("devlink ")
    else:
        assert "build" in p.stdout


def test_devlink_entry_point_is_the_cli():
    from devlink.cli import main
    assert main(["--version"]) == 0

"""Fuzzing the readers and the linker with mutated real objects (DESIGN.md invariant 7).

A few real objects (small C programs compiled with and without -fPIC, at -O0 and -O2,
plus an `ar rcs` archive) are mutated -- bytes flipped in the ELF header, the section
headers, the symbol table and the relocations; fields set to huge or out-of-range
values; files truncated and spliced -- and linked in process.  The link must either
succeed or raise `DevlinkError`: any other exception, or a hang, is a bug.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from devlink.errors import DevlinkError  # noqa: E402
from devlink.link.linker import LinkOptions, Linker  # noqa: E402

CC = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
AR = shutil.which("ar")
pytestmark = pytest.mark.skipif(CC is None or AR is None, reason="needs cc and ar")

#: seconds one example may take before it counts as a hang
EXAMPLE_TIMEOUT = 10
#: examples per test (the module runs in well under a minute)
MAX_EXAMPLES = int(os.environ.get("DEVLINK_FUZZ_EXAMPLES", "400"))

SOURCES = {
    "main.c": r"""
#include <stdio.h>
#include <string.h>
extern int helper(int);
extern int lib_fn(int);
int counter = 3;
static __thread int tls_var = 5;
static const char *names[] = {"zero", "one", "two", "three"};
static int sq(int x) { return x * x; }
int (*fp)(int) = helper;
int main(int argc, char **argv) {
    switch (argc) {
    case 1: counter += 2; break;
    case 2: counter *= 3; break;
    case 3: counter -= 1; break;
    case 4: counter ^= 7; break;
    default: counter = 0;
    }
    tls_var += argc;
    printf("%d %s %zu %d\n", fp(argc) + sq(counter), names[argc & 3], strlen(argv[0]), tls_var + lib_fn(argc));
    return 0;
}
""",
    "helper.c": r"""
int helper_data[16] = {1, 2, 3};
int helper_bss[64];
int helper(int x) { helper_bss[x & 63] = x; return x + helper_data[x & 15]; }
""",
    "lib1.c": "int lib_fn(int x) { return x * 7; }\nint lib_unused(void) { return 1; }\n",
    "lib2.c": "int lib_other(int x) { return x - 1; }\n",
}

#: extra compile flags of the fuzz seeds (none: their .eh_frame is fuzzed too)
UNWIND_FLAGS: list[str] = []

CONFIGS = [("-O0", "-fPIC"), ("-O2", "-fPIC"), ("-O0", "-fno-pic"), ("-O2", "-fno-pic")]


@dataclass
class Seeds:
    dir: Path
    #: config -> {"main": bytes, "helper": bytes, "lib1": bytes, "lib2": bytes, "archive": bytes}
    blobs: dict


_SEEDS: Seeds | None = None


def seeds() -> Seeds:
    """Compile the seed objects once per session (hypothesis does not mix with fixtures)."""
    global _SEEDS
    if _SEEDS is not None:
        return _SEEDS
    d = Path(tempfile.mkdtemp(prefix="devlink-fuzz-"))
    atexit.register(shutil.rmtree, d, True)
    for name, text in SOURCES.items():
        (d / name).write_text(text)
    blobs = {}
    for opt, pic in CONFIGS:
        tag = f"{opt}{pic}"
        out = {}
        for name in SOURCES:
            obj = d / f"{tag}-{name[:-2]}.o"
            subprocess.run([CC, "-c", opt, pic, "-ffunction-sections", "-fdata-sections", "-g", *UNWIND_FLAGS,
                            str(d / name), "-o", str(obj)], check=True, capture_output=True)
            out[name[:-2]] = obj.read_bytes()
        lib = d / f"{tag}-lib.a"
        subprocess.run([AR, "rcs", str(lib), str(d / f"{tag}-lib1.o"), str(d / f"{tag}-lib2.o")],
                       check=True, capture_output=True)
        out["archive"] = lib.read_bytes()
        blobs[tag] = out
    _SEEDS = Seeds(d, blobs)
    return _SEEDS


# --- ELF structure, for aiming mutations ------------------------------------------------

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
SHDR = struct.Struct("<IIQQQQIIQQ")
#: (offset, size) of the Elf64_Ehdr fields worth breaking
EHDR_FIELDS = {"e_type": (16, 2), "e_machine": (18, 2), "e_shoff": (40, 8), "e_shentsize": (58, 2),
               "e_shnum": (60, 2), "e_shstrndx": (62, 2)}
#: (offset, size) inside an Elf64_Shdr
SHDR_FIELDS = [(0, 4), (4, 4), (8, 8), (24, 8), (32, 8), (40, 4), (44, 4), (48, 8), (56, 8)]
#: (offset, size) inside an Elf64_Sym and an Elf64_Rela
SYM_FIELDS = [(0, 4), (4, 1), (5, 1), (6, 2), (8, 8), (16, 8)]
RELA_FIELDS = [(0, 8), (8, 4), (12, 4), (16, 8)]

INTERESTING = [0, 1, 2, 3, 4, 7, 8, 0xF, 0x10, 0x40, 0xFF, 0x100, 0xFFF0, 0xFFF1, 0xFFF2, 0xFFFF,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**40, 2**62, 2**63, 2**63 + 1, 2**64 - 1, 2**64 - 8]


def sections_of(data: bytes) -> list[tuple]:
    """[(index, sh_type, sh_offset, sh_size, entsize)] of an intact ELF file."""
    if not data.startswith(b"\x7fELF"):
        return []
    try:
        hdr = EHDR.unpack_from(data, 0)
        shoff, shnum = hdr[6], hdr[12]
        if shoff + 64 * shnum > len(data):
            return []
        return [(i, *(lambda r: (r[1], r[4], r[5], r[9]))(SHDR.unpack_from(data, shoff + i * 64)))
                for i in range(shnum)]
    except (struct.error, OverflowError):
        return []


def put(buf: bytearray, off: int, size: int, value: int) -> None:
    if 0 <= off and off + size <= len(buf):
        buf[off:off + size] = (value % (1 << (8 * size))).to_bytes(size, "little")


@st.composite
def mutation(draw, data: bytes):
    """One mutation of `data`, as a function bytes -> bytes (described for the report)."""
    kind = draw(st.sampled_from(["flip", "ehdr", "shdr", "sym", "rela", "truncate", "splice", "sectsize"]))
    secs = sections_of(data)
    value = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2**64 - 1)))
    if kind == "flip":
        region = draw(st.sampled_from(["any", "ehdr", "shdrs"]))
        if region == "ehdr":
            lo, hi = 0, 64
        elif region == "shdrs" and secs:
            shoff = EHDR.unpack_from(data, 0)[6]
            lo, hi = shoff, min(len(data), shoff + 64 * len(secs))
        else:
            lo, hi = 0, len(data)
        pos = draw(st.integers(lo, max(lo, hi - 1)))
        bit = draw(st.integers(0, 255))
        return f"xor byte {pos} with {bit:#x}", lambda b: _xor(b, pos, bit)
    if kind == "ehdr":
        name = draw(st.sampled_from(sorted(EHDR_FIELDS)))
        off, size = EHDR_FIELDS[name]
        return f"{name} = {value:#x}", lambda b: _set(b, off, size, value)
    if kind in ("shdr", "sectsize") and secs:
        shoff = EHDR.unpack_from(data, 0)[6]
        i = draw(st.integers(0, len(secs) - 1))
        off, size = draw(st.sampled_from(SHDR_FIELDS)) if kind == "shdr" else draw(st.sampled_from([(24, 8), (32, 8)]))
        return f"section [{i}] field @{off} = {value:#x}", lambda b: _set(b, shoff + 64 * i + off, size, value)
    if kind in ("sym", "rela"):
        want = 2 if kind == "sym" else 4
        tables = [s for s in secs if s[1] == want and s[4]]
        if tables:
            _, _, toff, tsize, ent = draw(st.sampled_from(tables))
            n = max(1, tsize // ent)
            j = draw(st.integers(0, n - 1))
            off, size = draw(st.sampled_from(SYM_FIELDS if kind == "sym" else RELA_FIELDS))
            return f"{kind} entry {j} field @{off} = {value:#x}", lambda b: _set(b, toff + ent * j + off, size, value)
    if kind == "splice":
        other = draw(st.sampled_from([k for k in ("main", "helper", "lib1", "archive")]))
        cut = draw(st.integers(0, len(data)))
        tag = draw(st.sampled_from(sorted(seeds().blobs)))
        src = seeds().blobs[tag][other]
        at = draw(st.integers(0, len(src)))
        return f"splice [:{cut}] + {tag}:{other}[{at}:]", lambda b: b[:cut] + src[at:]
    cut = draw(st.integers(0, len(data)))
    return f"truncate to {cut}", lambda b: b[:cut]


def _xor(b: bytes, pos: int, bit: int) -> bytes:
    buf = bytearray(b)
    if pos < len(buf):
        buf[pos] ^= bit or 0xFF
    return bytes(buf)


def _set(b: bytes, off: int, size: int, value: int) -> bytes:
    buf = bytearray(b)
    put(buf, off, size, value)
    return bytes(buf)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang(f"the link took more than {EXAMPLE_TIMEOUT} s (a hang?)")


def link_mutated(target: str, tag: str, mutated: bytes) -> None:
    """Link main + helper + lib.a of config `tag`, with `target` replaced by `mutated`."""
    s = seeds()
    d = Path(tempfile.mkdtemp(dir=s.dir))
    paths = []
    for name in ("main", "helper", "archive"):
        p = d / ("lib.a" if name == "archive" else f"{name}.o")
        p.write_bytes(mutated if name == target else s.blobs[tag][name])
        paths.append(str(p))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(EXAMPLE_TIMEOUT)
    try:
        Linker(LinkOptions(output=str(d / "out"), inputs=paths)).link()
    except DevlinkError as e:
        msg = str(e)
        assert msg and "\n" not in msg
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        shutil.rmtree(d, ignore_errors=True)


@st.composite
def mutated_input(draw):
    tag = draw(st.sampled_from(sorted(seeds().blobs)))
    target = draw(st.sampled_from(["main", "helper", "archive"]))
    data = seeds().blobs[tag][target]
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        desc, fn = draw(mutation(data))
        data = fn(data)
        steps.append(desc)
    return tag, target, steps, data


FUZZ_SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=False,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.filter_too_much])


def test_seeds_link():
    """The unmutated seeds link (so mutations start from a working link)."""
    for tag in seeds().blobs:
        link_mutated("main", tag, seeds().blobs[tag]["main"])


@FUZZ_SETTINGS
@given(mutated_input())
def test_mutated_inputs_link_or_fail_cleanly(case):
    tag, target, steps, data = case
    link_mutated(target, tag, data)


@FUZZ_SETTINGS
@given(st.sampled_from(["main", "helper", "archive"]), st.data())
def test_archive_member_mutations(target, data):
    """Mutations of one member inside an archive (the member is read when it is pulled in)."""
    tag = data.draw(st.sampled_from(sorted(seeds().blobs)))
    member = seeds().blobs[tag]["lib1"]
    desc, fn = data.draw(mutation(member))
    blob = fn(member)
    # rebuild the archive by hand with the mutated member (ar would refuse some of them)
    arch = _archive([("lib1.o", blob), ("lib2.o", seeds().blobs[tag]["lib2"])],
                    index=data.draw(st.booleans()))
    link_mutated("archive", tag, arch)


def _archive(members: list[tuple[str, bytes]], index: bool) -> bytes:
    """A GNU archive of `members`; with `index`, a symbol index naming lib_fn in member 0."""
    def header(name: str, size: int) -> bytes:
        return f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{size:<10}`\n".encode()

    body = b""
    offsets = []
    idx_size = 4 + 4 + len(b"lib_fn\0") if index else 0
    pos = 8 + ((60 + idx_size + (idx_size & 1)) if index else 0)
    for name, blob in members:
        offsets.append(pos)
        part = header(name + "/", len(blob)) + blob + (b"\n" if len(blob) & 1 else b"")
        body += part
        pos += len(part)
    out = b"!<arch>\n"
    if index:
        table = (1).to_bytes(4, "big") + offsets[0].to_bytes(4, "big") + b"lib_fn\0"
        out += header("/", len(table)) + table + (b"\n" if len(table) & 1 else b"")
    return out + body


# --- crashes outside the files the reader-side fixes may touch ---------------------------

def _eh_frame_case(tmp: Path, r_offset: int) -> list[str]:
    """lib.o (with unwind tables) whose first .rela.eh_frame entry patches `r_offset`."""
    src = tmp / "lib1.c"
    src.write_text(SOURCES["lib1.c"])
    obj = tmp / "lib1.o"
    subprocess.run([CC, "-c", "-O2", "-fPIC", str(src), "-o", str(obj)], check=True, capture_output=True)
    use = tmp / "use.c"
    use.write_text("int lib_fn(int);\nint main(void) { return lib_fn(1); }\n")
    subprocess.run([CC, "-c", "-fPIC", str(use), "-o", str(tmp / "use.o")], check=True, capture_output=True)
    data = bytearray(obj.read_bytes())
    for i, sh_type, off, size, ent in sections_of(bytes(data)):
        if sh_type == 4:
            shoff, shstrndx = EHDR.unpack_from(data, 0)[6], EHDR.unpack_from(data, 0)[13]
            name_off = SHDR.unpack_from(data, shoff + 64 * i)[0]
            strs = SHDR.unpack_from(data, shoff + 64 * shstrndx)[4]
            if data[strs + name_off:].startswith(b".rela.eh_frame\0"):
                struct.pack_into("<Q", data, off, r_offset)
                break
    else:
        raise AssertionError("no .rela.eh_frame")
    obj.write_bytes(bytes(data))
    return [str(tmp / "use.o"), str(obj)]


@pytest.mark.parametrize("r_offset", [1, 2, 8])
def test_misplaced_eh_frame_relocation(tmp_path, r_offset):
    inputs = _eh_frame_case(tmp_path, r_offset)
    try:
        Linker(LinkOptions(output=str(tmp_path / "out"), inputs=inputs)).link()
    except DevlinkError:
        pass

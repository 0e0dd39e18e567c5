"""devlink.dwarf: the per-object DWARF index (functions, variables, function-scope
statics, types), value formatting, and the on-disk/in-memory cache.

Everything is checked on objects built by the real C compiler with devlink's flags
(`-fPIC -ffunction-sections -fdata-sections -g`) at -O0 and -O2; values are formatted
from the bytes of the object's own data sections.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

import devlink.dwarf.index as dindex
from devlink.dwarf import (
    DwarfIndexCache, ObjectIndex, TypeInfo, build_index, content_hash, format_value,
)
from devlink.dwarf.types import ENC_CHAR, ENC_FLOAT, ENC_SIGNED, Member
from devlink.errors import DevlinkError
from helpers import find_cc

CC = find_cc()
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler")
OPTS = ["-O0", "-O2"]
FLAGS = ["-fPIC", "-ffunction-sections", "-fdata-sections", "-g"]


def compile_c(tmp_path: Path, src: str, opt: str, name: str = "t",
              extra: list[str] | None = None) -> bytes:
    c = tmp_path / (name + ".c")
    c.write_text(src)
    o = tmp_path / ("%s%s.o" % (name, opt))
    subprocess.run([CC, opt, *FLAGS, *(extra or []), "-c", str(c), "-o", str(o)],
                   check=True, capture_output=True, cwd=tmp_path)
    return o.read_bytes()


def value_of(ix: ObjectIndex, data: bytes, sym: str, **kw) -> str:
    """Format the initial value of variable `sym` from the object's own section bytes."""
    v = ix.variables[sym]
    elf = ELFFile(io.BytesIO(data))
    sec = elf.get_section_by_name(v.elf_section)
    assert sec is not None, v
    size = v.size or 0
    if sec["sh_type"] == "SHT_NOBITS":
        raw = bytes(size)
    else:
        raw = sec.data()[v.offset:v.offset + size]
    return format_value(v.type, raw, **kw)


PROGRAM = r"""#include <stdio.h>
typedef struct { int x; double y; } pt_t;
struct node { const char *name; struct node *next; int vals[3]; };
enum color { RED, GREEN = 5, BLUE };
int counter = 42;
float ratio = 2.5f;
char greeting[16] = "hi\n\"there\"";
struct node head = { 0, 0, {1, 2, 3} };
enum color col = GREEN;
int *ptr = &counter;
pt_t origin = { 3, 4.5 };
const int table[5] = { 1, 2, 3, 4, 5 };
static int file_static = 7;
int (*fp)(int, const char *);
_Bool flag = 1;
static int helper(int a, const char *s) { return a + (s ? s[0] : 0); }
int counter_fn(void)
{
    static int n = 100;
    {
        static int n = 3;
        n++;
        file_static += n;
    }
    return ++n + file_static;
}
static __attribute__((noinline)) int sq(int k, int unused) { return k * k + unused; }
int main(int argc, char **argv)
{
    fp = helper;
    printf("%d %d\n", helper(argc, argv[0]) + counter_fn() + sq(argc, 5), table[argc]);
    return 0;
}
"""


# --------------------------------------------------------------------------- functions


@pytest.mark.parametrize("opt", OPTS)
def test_functions_decl_and_signature(tmp_path, opt):
    data = compile_c(tmp_path, PROGRAM, opt)
    ix = build_index("t.o", data)
    assert ix.has_dwarf and not ix.errors, ix.errors
    f = ix.functions
    assert f["main"].decl_line == 28 and f["main"].decl_column == 5
    assert f["main"].external and f["main"].name == "main"
    assert f["main"].signature == "int (int, char **)"
    assert f["main"].section in (".text.main", ".text.startup.main")
    assert f["main"].offset == 0 and f["main"].size
    assert f["main"].decl_file == str(tmp_path / "t.c")
    assert f["counter_fn"].signature == "int (void)"
    assert f["counter_fn"].decl_line == 17 and f["counter_fn"].section == ".text.counter_fn"
    # static function, keyed by its ELF symbol
    assert f["helper"].external is False
    assert f["helper"].signature == "int (int, const char *)"
    assert f["helper"].param_names == ("a", "s")
    assert f["helper"].decl_line == 16
    # sq is `sq` at -O0 and a clone (`sq.constprop.0`) at -O2: keyed by the ELF symbol,
    # named by the source
    sq = [fi for fi in f.values() if fi.name == "sq"]
    assert len(sq) == 1 and sq[0].decl_line == 27
    assert sq[0].symbol == "sq" or sq[0].symbol.startswith("sq.")
    assert sq[0].is_clone == (sq[0].symbol != "sq")
    assert sq[0].signature == "int (int, int)"
    assert sq[0].section == ".text." + sq[0].symbol
    assert not any(k.endswith(".cold") for k in f)
    # every key is a function symbol of the object
    elf = ELFFile(io.BytesIO(data))
    funcs = {s.name for s in elf.get_section_by_name(".symtab").iter_symbols()
             if s["st_info"]["type"] == "STT_FUNC"}
    assert set(f) <= funcs


def test_hot_cold_split_function(tmp_path):
    """At -O2 gcc splits unlikely code into `f.cold` and describes `f` with
    DW_AT_ranges (no DW_AT_low_pc): `f` is still indexed, `f.cold` never is."""
    src = ("#include <stdlib.h>\n"
           "int hot(int x) {\n"
           "  if (__builtin_expect(x == 12345, 0)) { for (int i = 0; i < x; i++)\n"
           "      x ^= abs(i * x); abort(); }\n"
           "  return x * 3; }\n")
    ix = build_index("h.o", compile_c(tmp_path, src, "-O2", "hc"))
    f = ix.functions["hot"]
    assert f.section == ".text.hot" and f.offset == 0 and f.decl_line == 2
    assert f.signature == "int (int)"
    assert not any(k.endswith(".cold") for k in ix.functions)


def test_signature_hash(tmp_path):
    v1 = "int f(int a, char *s) { return a + *s; }\nint g(void) { return 1; }\n"
    v1b = "\n\n/* moved */\nint g2(void) { return 2; }\n" + v1
    v2 = v1.replace("int f(int a", "int f(long a")
    ix1, ix1b, ix2 = (build_index("x.o", compile_c(tmp_path, v, "-O0", "x%d" % i))
                      for i, v in enumerate((v1, v1b, v2)))
    assert ix1.functions["f"].signature == "int (int, char *)"
    assert ix1.functions["f"].signature_hash == ix1b.functions["f"].signature_hash
    assert ix1.functions["f"].decl_line != ix1b.functions["f"].decl_line
    assert ix2.functions["f"].signature == "int (long int, char *)"
    assert ix1.functions["f"].signature_hash != ix2.functions["f"].signature_hash
    assert ix1.functions["g"].signature_hash == ix2.functions["g"].signature_hash


# --------------------------------------------------------------------------- variables


@pytest.mark.parametrize("opt", OPTS)
def test_variables_types_and_values(tmp_path, opt):
    data = compile_c(tmp_path, PROGRAM, opt)
    ix = build_index("t.o", data)
    v = ix.variables

    c = v["counter"]
    assert (c.name, c.scope, c.decl_line, c.decl_column) == ("counter", "global", 5, 5)
    assert c.elf_symbol == "counter" and c.elf_section == ".data.counter"
    assert c.offset == 0 and c.size == 4
    assert c.type.kind == "base" and c.type.encoding == ENC_SIGNED and c.type.name == "int"
    assert value_of(ix, data, "counter") == "42"

    assert v["ratio"].type.encoding == ENC_FLOAT
    assert value_of(ix, data, "ratio") == "2.5"

    g = v["greeting"].type
    assert g.kind == "array" and g.count == 16 and g.target.encoding == ENC_CHAR
    assert g.c_decl("greeting") == "char greeting[16]"
    assert value_of(ix, data, "greeting") == r'"hi\n\"there\""'
    assert value_of(ix, data, "greeting", max_len=8) == r'"hi\n\""...'

    h = v["head"].type
    assert h.kind == "struct" and h.name == "struct node" and h.size == 32
    assert [(m.name, m.offset) for m in h.members] == [("name", 0), ("next", 8),
                                                      ("vals", 16)]
    nxt = h.members[1].type
    assert nxt.kind == "pointer" and nxt.target.name == "struct node" and nxt.target.shallow
    assert nxt.name == "struct node *"
    assert value_of(ix, data, "head") == "{.name = 0x0, .next = 0x0, .vals = {1, 2, 3}}"
    assert ix.named_types["struct node"].members == h.members

    e = v["col"].type
    assert e.kind == "enum" and e.enumerators == (("RED", 0), ("GREEN", 5), ("BLUE", 6))
    assert value_of(ix, data, "col") == "GREEN"

    p = v["ptr"]
    assert p.type.kind == "pointer" and p.type.target.name == "int" and p.size == 8
    assert p.type.c_decl("ptr") == "int *ptr"
    assert value_of(ix, data, "ptr") == "0x0"  # relocated at link time

    o = v["origin"].type
    assert o.kind == "struct" and o.name == "pt_t" and o.typedef_of == "struct <anonymous>"
    assert value_of(ix, data, "origin") == "{.x = 3, .y = 4.5}"

    t = v["table"]
    assert t.type.kind == "array" and t.type.count == 5 and t.const
    assert t.type.c_decl("table") == "const int table[5]"
    assert t.elf_section.startswith(".rodata")
    assert value_of(ix, data, "table") == "{1, 2, 3, 4, 5}"
    assert value_of(ix, data, "table", max_elements=3) == "{1, 2, 3, ...}"

    f = v["fp"].type
    assert f.is_function_pointer and f.c_decl("fp") == "int (*fp)(int, const char *)"
    assert value_of(ix, data, "fp") == "0x0"
    assert value_of(ix, data, "flag") == "true"


@pytest.mark.parametrize("opt", OPTS)
def test_statics(tmp_path, opt):
    data = compile_c(tmp_path, PROGRAM, opt)
    ix = build_index("t.o", data)
    fs = ix.variables["file_static"]
    assert fs.scope == "file" and fs.enclosing_function is None and fs.static_key is None
    assert fs.elf_symbol == "file_static" and value_of(ix, data, "file_static") == "7"
    outer = ix.static_locals[("counter_fn", "n")]
    inner = ix.static_locals[("counter_fn", "n#2")]
    assert outer != inner and outer.startswith("n.") and inner.startswith("n.")
    for sym, init, key in ((outer, "100", "n"), (inner, "3", "n#2")):
        vi = ix.variables[sym]
        assert vi.scope == "function" and vi.enclosing_function == "counter_fn"
        assert vi.name == "n" and vi.static_key == ("counter_fn", key)
        assert vi.elf_symbol == sym and vi.elf_section.endswith("." + sym)
        assert value_of(ix, data, sym) == init
    assert ix.static_local("counter_fn", "n").symbol == outer


@pytest.mark.parametrize("opt", OPTS)
def test_static_local_renumbering(tmp_path, opt):
    """gcc numbers function-scope statics of one name per file (`n.0`, `n.1`, ...);
    gcc 12 counts from the end of the file, so adding a function with its own
    `static n` *after* `b` renames b's `n` (and the new one takes b's old name), while
    adding it *before* `b` keeps b's name and gives the new one a new number.  Either
    way (function, name) finds the right variable: checked by the initial values."""
    b = "int b(void) { static int n = 20; return ++n; }\n"
    a = "int a(void) { static int n = 10; return n += 2; }\n"
    v1 = "int x;\n" + b
    v2 = "int x;\n" + a + b          # `a` added before `b`
    v3 = "int x;\n" + b + a          # `a` added after `b`
    d1, d2, d3 = (compile_c(tmp_path, v, opt, "v%d" % i)
                  for i, v in enumerate((v1, v2, v3), 1))
    ix1, ix2, ix3 = (build_index("v.o", d) for d in (d1, d2, d3))
    b1 = ix1.static_locals[("b", "n")]
    assert b1 in ("n.0", "n.1") and ("a", "n") not in ix1.static_locals
    assert value_of(ix1, d1, b1) == "20"
    for ix, d in ((ix2, d2), (ix3, d3)):
        bn, an = ix.static_locals[("b", "n")], ix.static_locals[("a", "n")]
        assert bn != an and {bn, an} <= {"n.0", "n.1"}
        assert value_of(ix, d, bn) == "20" and value_of(ix, d, an) == "10"
        assert ix.variables[bn].type_hash == ix1.variables[b1].type_hash
    # the ELF name of b's static changed in one of the two edits, and the new
    # function's static took the old name: matching by symbol would move b's state
    # into a's variable
    renamed = [ix for ix in (ix2, ix3) if ix.static_locals[("b", "n")] != b1]
    assert renamed, "gcc renumbered neither edit"
    for ix in renamed:
        assert ix.static_locals[("a", "n")] == b1


def test_type_hash(tmp_path):
    base = ("struct S { int x; float y; };\nstruct S s = {1, 2};\nint g = 3;\n"
            "typedef struct { char c; } T;\nT t;\n"
            "int use(void) { return (int)sizeof s + g; }\n")
    unrelated = "/* an edit */\nint added(int q) { return q * 2; }\n\n" + \
        base.replace("+ g;", "+ g + 1;")
    ix0 = build_index("a.o", compile_c(tmp_path, base, "-O0", "h0"))
    ix1 = build_index("a.o", compile_c(tmp_path, unrelated, "-O2", "h1"))
    for name in ("s", "g", "t"):
        assert ix0.variables[name].type_hash == ix1.variables[name].type_hash, name
    assert ix0.variables["s"].decl_line != ix1.variables["s"].decl_line

    def h(src, var, i):
        return build_index("x.o", compile_c(tmp_path, src, "-O0", "hx%d" % i)
                           ).variables[var].type_hash

    changed = [
        ("g", base.replace("int g = 3", "float g = 3")),
        ("s", base.replace("int x; float y;", "int z; float y;")),       # renamed
        ("s", base.replace("int x; float y;", "float y; int x;")),       # reordered
        ("s", base.replace("int x; float y;", "int x; double y;")),      # member type
        ("t", base.replace("char c;", "char c; char d;")),               # via typedef
    ]
    for i, (var, src) in enumerate(changed):
        assert h(src, var, i) != ix0.variables[var].type_hash, (var, src)


@pytest.mark.parametrize("opt", OPTS)
def test_more_types(tmp_path, opt):
    src = r"""
_Thread_local int tls_counter = 9;
struct bits { unsigned a:3; int b:5; _Bool c:1; };
struct bits bf = { 5, -3, 1 };
union u { int i; struct { short lo, hi; }; } un = { .i = 0x10002 };
double matrix[2][3] = {{1,2,3},{4.5,5,6}};
signed char sc = -5;
unsigned char bytes[4] = {1, 2, 'a', 0};
enum neg { MINUS = -2, PLUS = 2 } ng = MINUS;
typedef int (*cb_t)(const void *, const void *);
cb_t cb;
long double ld = 1.5L;
int read_all(void) { return tls_counter + bf.a + un.i + (int)matrix[1][0] + sc + ng
                     + (cb != 0) + bytes[1] + (int)ld; }
"""
    data = compile_c(tmp_path, src, opt, "m")
    ix = build_index("m.o", data)
    assert not ix.errors
    t = ix.variables["tls_counter"]
    assert t.tls and t.elf_symbol == "tls_counter" and t.elf_section == ".tdata.tls_counter"
    assert value_of(ix, data, "tls_counter") == "9"
    assert value_of(ix, data, "bf") == "{.a = 5, .b = -3, .c = true}"
    assert value_of(ix, data, "un") == "{.i = 65538, {.lo = 2, .hi = 1}}"
    assert value_of(ix, data, "matrix") == "{{1.0, 2.0, 3.0}, {4.5, 5.0, 6.0}}"
    assert ix.variables["matrix"].type.c_decl("matrix") == "double matrix[2][3]"
    assert value_of(ix, data, "sc") == r"-5 '\373'"
    assert value_of(ix, data, "bytes") == '"\\001\\002a"'
    assert value_of(ix, data, "ng") == "MINUS"
    cb = ix.variables["cb"].type
    assert cb.name == "cb_t" and cb.is_function_pointer
    assert cb.typedef_of == "int (*)(const void *, const void *)"
    assert value_of(ix, data, "ld") == "1.5"


def test_format_value_pure():
    i32 = TypeInfo(kind="base", name="int", size=4, encoding="signed", is_signed=True)
    ch = TypeInfo(kind="base", name="char", size=1, encoding="char", is_signed=True)
    s = TypeInfo(kind="array", name="char[8]", size=8, target=ch, count=8)
    assert format_value(s, b"ab\tc\x00zzz") == r'"ab\tc"'
    assert format_value(s, b"abcdefgh") == '"abcdefgh"'
    assert format_value(s, b"abcdefgh", max_len=5) == '"abc"...'
    arr = TypeInfo(kind="array", name="int[100]", size=400, target=i32, count=100)
    data = b"".join(i.to_bytes(4, "little", signed=True) for i in range(100))
    assert format_value(arr, data) == "{" + ", ".join(map(str, range(16))) + ", ...}"
    assert len(format_value(arr, data, max_len=20, max_elements=1000)) <= 24
    assert format_value(i32, b"\x01") == "<unavailable>"
    pt = TypeInfo(kind="struct", name="struct p", size=8,
                  members=(Member("x", 0, i32), Member("y", 4, i32)))
    assert format_value(pt, (1).to_bytes(4, "little") + (-2).to_bytes(4, "little",
                                                                      signed=True)) \
        == "{.x = 1, .y = -2}"
    assert format_value(pt, b"\x01\x00\x00\x00") == "{.x = 1, .y = <unavailable>}"
    assert format_value(TypeInfo(kind="unknown", name="?", size=None), b"") == "<?>"


# --------------------------------------------------------------------------- robustness


def test_no_dwarf_and_not_elf(tmp_path):
    c = tmp_path / "n.c"
    c.write_text("int x = 1; static int y; int f(void) { return x + y++; }\n")
    o = tmp_path / "n.o"
    subprocess.run([CC, "-O2", "-c", str(c), "-o", str(o)], check=True)
    ix = build_index("n.o", o.read_bytes())
    assert not ix.has_dwarf and not ix.functions and not ix.variables and not ix.errors
    with pytest.raises(DevlinkError):
        build_index("junk.o", b"not an elf at all")
    with pytest.raises(DevlinkError):
        build_index("empty.o", b"")


def test_malformed_dwarf_never_raises(tmp_path):
    data = compile_c(tmp_path, PROGRAM, "-O2")
    elf = ELFFile(io.BytesIO(data))
    targets = []
    for name in (".debug_info", ".debug_abbrev", ".debug_line", ".debug_str",
                 ".rela.debug_info"):
        sec = elf.get_section_by_name(name)
        if sec is not None:
            targets.append((sec["sh_offset"], sec["sh_size"]))
    rng = random.Random(1234)
    partial = 0
    for trial in range(60):
        buf = bytearray(data)
        off, size = targets[trial % len(targets)]
        for _ in range(rng.choice((1, 4, 32))):
            buf[off + rng.randrange(size)] = rng.randrange(256)
        try:
            ix = build_index("fuzz.o", bytes(buf))
        except DevlinkError:
            continue
        assert isinstance(ix, ObjectIndex)
        partial += bool(ix.errors)
    ix = build_index("ok.o", data)
    assert ix.functions and not ix.errors


def test_backward_sibling_terminates(tmp_path):
    """A DW_AT_sibling pointing backwards makes pyelftools' child iteration loop
    forever; the index stops there with an error and keeps what it found."""
    data = compile_c(tmp_path, PROGRAM, "-O0")
    elf = ELFFile(io.BytesIO(data))
    info = elf.get_section_by_name(".debug_info")
    dw = elf.get_dwarf_info()
    cu = next(dw.iter_CUs())
    victims = [d for d in cu.get_top_DIE().iter_children()
               if d.attributes.get("DW_AT_sibling") is not None
               and d.attributes["DW_AT_sibling"].form == "DW_FORM_ref4"]
    victim = victims[len(victims) // 2]
    at = info["sh_offset"] + victim.attributes["DW_AT_sibling"].offset
    buf = bytearray(data)
    buf[at:at + 4] = (victim.offset - cu.cu_offset).to_bytes(4, "little")
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("ix", build_index("s.o",
                                                                          bytes(buf))),
                          daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive(), "build_index loops on a backward DW_AT_sibling"
    ix = out["ix"]
    assert ix.errors and any("backwards" in e for e in ix.errors)


# --------------------------------------------------------------------------- cache


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = dindex.build_index

    def counting(name, data, **kw):
        calls.append(name)
        return real(name, data, **kw)

    monkeypatch.setattr(dindex, "build_index", counting)
    return calls


def test_cache_memory_and_disk(tmp_path, counted):
    data = compile_c(tmp_path, PROGRAM, "-O0")
    cdir = tmp_path / "cache"
    cache = DwarfIndexCache(cdir)
    key = content_hash(data)
    assert cache.get_cached(key) is None
    ix = cache.get("t.o", data)
    assert counted == ["t.o"] and "main" in ix.functions
    assert cache.get("t.o", data) is ix                      # memory
    assert cache.get_cached(key) is ix
    assert counted == ["t.o"]
    files = list(cdir.glob("*.pkl"))
    assert [f.name for f in files] == [key + ".pkl"]

    cache2 = DwarfIndexCache(cdir)                           # a new session: disk
    ix2 = cache2.get("renamed.o", data)
    assert counted == ["t.o"] and cache2.disk_hits == 1
    assert ix2.name == "renamed.o" and ix2.functions == ix.functions
    assert ix2.variables["head"].type == ix.variables["head"].type
    assert DwarfIndexCache(cdir).get_cached(key).functions.keys() == ix.functions.keys()

    for garbage in (b"", b"\x80\x05garbage", os.urandom(300)):
        files[0].write_bytes(garbage)                        # corrupt: rebuilt
        cache3 = DwarfIndexCache(cdir)
        assert cache3.get_cached(key) is None
        n = len(counted)
        ix3 = cache3.get("t.o", data)
        assert len(counted) == n + 1 and ix3.functions.keys() == ix.functions.keys()
    assert DwarfIndexCache(cdir).get_cached(key) is not None  # rewritten

    # another version's file is ignored too
    import pickle

    from devlink import private
    from devlink.dwarf.index import CACHE_KIND
    files[0].write_bytes(private.seal(CACHE_KIND, pickle.dumps({"version": -1, "key": key, "index": ix})))
    assert DwarfIndexCache(cdir).get_cached(key) is None

    # an unwritable cache dir only costs rebuilds
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    assert DwarfIndexCache(blocker / "sub").get("t.o", data).functions
    with pytest.raises(DevlinkError):
        cache.get("bad.o", b"garbage")


def test_cache_prefetch_then_get(tmp_path, monkeypatch):
    objs = [("p%d.o" % i, compile_c(tmp_path, PROGRAM.replace("42", str(i)), "-O0",
                                    "p%d" % i)) for i in range(3)]
    real = dindex.build_index
    calls: list[tuple[str, str]] = []
    gate = threading.Event()

    def slow(name, data, **kw):
        calls.append((name, threading.current_thread().name))
        gate.wait(10)
        return real(name, data, **kw)

    monkeypatch.setattr(dindex, "build_index", slow)
    with DwarfIndexCache(tmp_path / "c", max_workers=2) as cache:
        t0 = time.perf_counter()
        futs = cache.prefetch(objs)
        assert time.perf_counter() - t0 < 0.5        # never waits for a parse
        assert len(futs) == 3
        result = {}

        def getter():
            result["ix"] = cache.get("p0.o", objs[0][1])

        th = threading.Thread(target=getter)
        th.start()
        time.sleep(0.1)
        assert th.is_alive()                          # waiting for the in-flight build
        gate.set()
        th.join(10)
        assert result["ix"].variables["counter"].name == "counter"
        for f in futs:
            f.result(10)
        for name, data in objs:
            assert cache.get(name, data).name == name
        assert sorted(n for n, _ in calls) == ["p0.o", "p1.o", "p2.o"]  # once each
        assert all(t.startswith("devlink-dwarf") for _, t in calls)
        # prefetching again is free
        assert all(f.done() for f in cache.prefetch(objs))
        assert len(calls) == 3
        # a bad object's error stays in its future
        (bad,) = cache.prefetch([("bad.o", b"nope")])
        with pytest.raises(DevlinkError):
            bad.result(10)


# --------------------------------------------------------------------------- speed

LUA_VM = Path.home() / ".cache/devlink/lua5.4/src/lvm.c"


def _big_source(n: int = 400) -> str:
    parts = ["#include <stdio.h>\n#include <string.h>\n"]
    for i in range(n):
        parts.append(
            "struct s%d { int a; double b[%d]; const char *name; struct s%d *next; };\n"
            "struct s%d g%d = { %d };\n"
            "int f%d(struct s%d *p, int k) { static int calls; calls++;\n"
            "  for (int j = 0; j < k; j++) p->a += j * %d; return p->a + calls; }\n"
            % (i, i % 7 + 1, i, i, i, i, i, i, i))
    return "".join(parts)


def test_build_time_large_object(tmp_path):
    if LUA_VM.exists():
        o = tmp_path / "lvm.o"
        subprocess.run([CC, "-O2", "-g", "-fPIC", "-ffunction-sections",
                        "-fdata-sections", "-std=gnu99", "-DLUA_COMPAT_5_3",
                        "-DLUA_USE_LINUX", "-c", str(LUA_VM), "-o", str(o)],
                       check=True, cwd=LUA_VM.parent)
        name, data = "lvm.o", o.read_bytes()
    else:
        name, data = "big.o", compile_c(tmp_path, _big_source(), "-O2", "big")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ix = build_index(name, data)
        times.append(time.perf_counter() - t0)
    cache = DwarfIndexCache(tmp_path / "cache")
    cache.get(name, data)
    t0 = time.perf_counter()
    DwarfIndexCache(tmp_path / "cache").get(name, data)
    disk = time.perf_counter() - t0
    t0 = time.perf_counter()
    cache.get(name, data)
    mem = time.perf_counter() - t0
    print("\n[dwarf index] %s (%d bytes): build %s ms; %d functions, %d variables; "
          "disk-cache get %.1f ms, memory get %.2f ms"
          % (name, len(data), ", ".join("%.1f" % (t * 1000) for t in times),
             len(ix.functions), len(ix.variables), disk * 1000, mem * 1000))
    assert ix.functions and not ix.errors
    assert min(times) < 2.0

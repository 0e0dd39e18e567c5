"""Running state survives every update (issue: a patch reset initialised globals).

The programs here hold state of every storage kind a C program has: initialised and
zero-initialised globals, file statics and function-scope statics, structs, arrays,
pointers to the heap, to another global and to a function, COMMON, `.data.rel` and
`.data.rel.local`, and thread-locals of a running thread.  They advance their state a
fixed number of steps per round (a round starts on SIGUSR1), so between rounds every
value is known and still, and the tests read each one in the running process
(`value()`, `read_memory`) before and after a code-only edit, in the file that defines
the state and in another one, at -O0, -O1 and -O2 (with -g, as devlink compiles).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess

import pytest

from devlink.testing import CProject

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

STATE_C = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pos { int x, y; };

int total = 1000;                          /* .data */
int zeroed;                                /* .bss */
static int st = 500;                       /* file static, .data */
static int st_zero;                        /* file static, .bss */
struct pos where = { 3, 4 };               /* a struct */
long hist[4] = { 1, 2, 3, 4 };             /* an array */
int other = 42;
int *to_global = &total;                   /* .data.rel: repointed at run time */
static int *to_static = &st;               /* .data.rel.local */
char *to_heap;                             /* a pointer to the heap */
static int inc1(int v) { return v + 1; }
static int inc2(int v) { return v + 2; }
int (*to_func)(int) = inc1;                /* a pointer to a function (its stub) */
__attribute__((common)) int common_var;    /* COMMON */
__thread int tls_init = 7;                 /* .tdata */
__thread int tls_zero;                     /* .tbss */
int tls_seen_init, tls_seen_zero;          /* what the worker thread's TLS holds */
static volatile int rounds_wanted, rounds_done;

static void *worker(void *arg) {
    for (;;) {
        if (rounds_done < rounds_wanted) {
            tls_init++; tls_zero++;
            tls_seen_init = tls_init; tls_seen_zero = tls_zero;
            rounds_done++;
        }
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, 0);
    }
    return arg;
}

void start_worker(void) {
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
}

int step(int tick) {
    static int loc = 7;                    /* function-scope static */
    total++; zeroed++; st++; st_zero++; loc++; where.x++; hist[0]++; common_var++;
    if (tick == 1) {
        to_global = &other;
        to_static = &st_zero;
        to_heap = malloc(16);
        strcpy(to_heap, "on the heap");
        to_func = inc2;
    }
    return loc;
}

void round_done(int tick) {
    rounds_wanted++;
    while (rounds_done < rounds_wanted) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, 0);
    }
    printf("state A tick=%d total=%d zeroed=%d st=%d st_zero=%d x=%d hist0=%ld common=%d "
           "to_global=%d to_static=%d heap=%s func=%d tls=%d/%d\n",
           tick, total, zeroed, st, st_zero, where.x, hist[0], common_var, *to_global, *to_static,
           to_heap, to_func(0), tls_seen_init, tls_seen_zero);
    fflush(stdout);
}
"""

MAIN_C = r"""
#include <signal.h>
#include <stdio.h>
#include <time.h>

int step(int tick);
void round_done(int tick);
void start_worker(void);
int main_total = 77;                       /* state in the other file too */
static int main_static = 5;
static volatile sig_atomic_t go = 1;
static void on_usr1(int sig) { (void)sig; go = 1; }

void banner(int tick) {
    main_total++; main_static++;
    printf("main A tick=%d main_total=%d main_static=%d\n", tick, main_total, main_static);
    fflush(stdout);
}

int main(void) {
    signal(SIGUSR1, on_usr1);
    start_worker();
    int tick = 0;
    for (;;) {
        if (go) {
            go = 0;
            for (int i = 0; i < 5; i++)
                step(++tick);
            round_done(tick);
            banner(tick);
        }
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, 0);
    }
}
"""

SCALARS = ["total", "zeroed", "st", "st_zero", "other", "common_var", "main_total", "main_static"]
POINTERS = ["to_global", "to_static", "to_heap", "to_func"]


def _static(p: CProject, name: str) -> dict:
    """The row of a file static or function-scope static (`loc.0`) by its source name."""
    from devlink import tables as T
    rows = [r for r in T.variable_rows(p.session.linker) if re.fullmatch(rf"{re.escape(name)}(\.\d+)?", r["name"])]
    assert len(rows) == 1, rows
    return rows[0]


def snapshot(p: CProject) -> dict:
    """Every variable of the program, read in the running process."""
    out = {name: p.value(name) for name in SCALARS}
    out["loc"] = int.from_bytes(p.read_memory(_static(p, "loc")["address"], 4), "little")
    for name in POINTERS:
        out[name] = p.value(name, signed=False)
    out["where"] = p.read_memory(p.symbol("where")["address"], 8)
    out["hist"] = p.read_memory(p.symbol("hist")["address"], 32)
    out["heap"] = p.read_memory(out["to_heap"], 12)
    return out


def expect_round(p: CProject, letter: str, tick: int) -> None:
    m = p.expect_output(rf"state {letter} tick={tick} ")
    line = m.string
    n = tick
    assert f"total={1000 + n} zeroed={n} st={500 + n} st_zero={n} x={3 + n} hist0={1 + n} common={n} " in line, line
    assert f"to_global=42 to_static={n} heap=on the heap func=2 tls={7 + n // 5}/{n // 5}" in line, line


def start(tmp_path, opt: str) -> CProject:
    p = CProject(tmp_path / "proj", cflags=(opt, "-pthread"))
    p.write("state.c", STATE_C)
    p.write("main.c", MAIN_C)
    p.start()
    return p


@pytest.mark.parametrize("opt", ["-O0", "-O1", "-O2"])
@pytest.mark.parametrize("edited", ["state.c", "main.c"])
def test_code_edit_keeps_every_kind_of_state(tmp_path, opt, edited):
    with start(tmp_path, opt) as p:
        expect_round(p, "A", 5)
        p.expect_output(r"main A tick=5 main_total=78 main_static=6")
        pid = p.pid
        before = snapshot(p)
        assert before["to_global"] == p.symbol("other")["address"]
        assert before["to_func"] == p.symbol("inc2")["stub"]
        assert before["heap"] == b"on the heap\0"
        if edited == "state.c":
            gen = p.edit("state.c", '"state A tick', '"state B tick')
            state_letter, main_letter = "B", "A"
        else:
            gen = p.edit("main.c", '"main A tick', '"main B tick')
            state_letter, main_letter = "A", "B"
        assert gen.action == "patched" and gen.patched, gen
        assert p.pid == pid
        assert snapshot(p) == before            # nothing the program holds changed
        os.kill(pid, signal.SIGUSR1)
        expect_round(p, state_letter, 10)       # the state goes on from where it was
        p.expect_output(rf"main {main_letter} tick=10 main_total=79 main_static=7")


def test_printf_edit_in_the_file_that_defines_the_state(tmp_path):
    """The scenario of the report: only the format of a printf changes in the file that
    defines every variable; at tick 37 they all read 37, not 16."""
    src = r"""
#include <stdio.h>
#include <unistd.h>
struct pos { int x, y; };
int total = 1000;  int zeroed;  static int st = 500;  struct pos where = { 3, 4 };  long hist[4] = { 1, 2, 3, 4 };
void step(long tick) { static int loc = 7; total++; zeroed++; st++; loc++; where.x++; hist[tick % 4]++;
    printf("A tick=%ld total=%d zeroed=%d st=%d loc=%d x=%d\n", tick, total - 1000, zeroed, st - 500, loc - 7,
           where.x - 3); fflush(stdout); }
int main(void) { for (long t = 1;; t++) { step(t); usleep(10000); } }
"""
    with CProject(tmp_path / "d1", cflags=("-O2",)) as p:
        p.write("main.c", src)
        p.start()
        p.expect_output(r"A tick=20 ")
        gen = p.edit("main.c", '"A tick=', '"B tick=')
        assert gen.changed == ["step"], gen        # one function, not the string literal too
        m = p.expect_output(r"B tick=(\d+) total=(\d+) zeroed=(\d+) st=(\d+) loc=(\d+) x=(\d+)")
        tick = m.group(1)
        assert m.groups()[1:] == (tick,) * 5, m.string
        assert p.value("total") - 1000 >= int(tick)


def test_new_initial_value_keeps_the_running_value_and_says_so(tmp_path):
    with start(tmp_path, "-O1") as p:
        expect_round(p, "A", 5)
        gen = p.edit("state.c", "int total = 1000;", "int total = 2000;")
        assert gen.action == "patched"
        assert "total: new initial value applies at the next restart" in gen.notes, gen.notes
        assert p.value("total") == 1005          # the running value is kept
        os.kill(p.pid, signal.SIGUSR1)
        p.expect_output(r"state A tick=10 total=1010 ")
        # a later edit of other code does not say it again
        gen = p.edit("state.c", '"state A tick', '"state B tick')
        assert not any("initial value" in n for n in gen.notes), gen.notes
        p.restart()                               # the file has the new initial value
        p.expect_output(r"state B tick=5 total=2005 ")


def test_o2_edits_that_change_debug_sections_patch_without_restart(tmp_path):
    """At -O2 an edit can make .debug_loclists and .debug_rnglists appear, grow past
    their room and disappear again: the program keeps running and gdb's view of the
    file (its DWARF) stays valid and describes the new code."""
    small = "int total = 5;\nint work(int t) { return t + total; }\n"
    big = r"""
int total = 5;
static int helper(int a, int b) { int s = 0; for (int i = 0; i < a; i++) { s += i * b; if (s > 1000) s -= b; } return s; }
int work(int t) {
    int x = t * 3, y = t ^ 5, z = helper(t % 7, x);
    for (int k = 0; k < y % 5; k++) z += helper(k, y) * (k + x);
    for (int k = 0; k < x % 3; k++) { int w = z / (k + 1); z ^= w << 1; }
    return z + total;
}
"""
    main = r"""
#include <stdio.h>
#include <unistd.h>
int work(int);
int main(void) { for (int t = 1;; t++) { printf("v=%d\n", work(t)); fflush(stdout); usleep(10000); } }
"""
    with CProject(tmp_path / "dbg", cflags=("-O2",)) as p:
        p.write("main.c", main)
        p.write("work.c", small)
        p.start()
        p.expect_output(r"v=")
        pid = p.pid
        for text in (big, small, big, big.replace("z + total", "z - total")):
            gen = p.edit("work.c", text=text)
            assert gen.action == "patched" and p.pid == pid, gen
            assert not any("debug" in n for n in gen.notes), gen.notes
            p.expect_output(r"v=")
        _check_dwarf_names_work(str(p.output), p.symbol("work")["atom"])


def _check_dwarf_names_work(path: str, address: int) -> None:
    readelf = shutil.which("readelf")
    if readelf:
        r = subprocess.run([readelf, "--debug-dump=info,line", "-W", path],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "Warning" not in r.stderr, r.stderr[-2000:]
    from elftools.elf.elffile import ELFFile
    with open(path, "rb") as f:
        dwarf = ELFFile(f).get_dwarf_info()
        found = []
        for cu in dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                if die.tag == "DW_TAG_subprogram" and die.attributes.get("DW_AT_name") \
                        and die.attributes["DW_AT_name"].value == b"work" and "DW_AT_low_pc" in die.attributes:
                    found.append(die.attributes["DW_AT_low_pc"].value)
    assert found == [address], (found, hex(address))


def test_one_function_edit_counts_one_function(tmp_path):
    src = r"""
#include <stdio.h>
#include <unistd.h>
static const char *names[] = { "zero", "one" };
int count = 10;
void tick(int t) { count++; printf("tick %d %s %d\n", t, names[t & 1], count); fflush(stdout); }
int main(void) { for (int t = 0;; t++) { tick(t); usleep(10000); } }
"""
    with CProject(tmp_path / "count", cflags=("-O2",)) as p:
        p.write("main.c", src)
        p.start()
        p.expect_output(r"tick 5 ")
        gen = p.edit("main.c", '"tick %d %s %d\\n"', '"tock %d %s %d\\n"')
        assert (gen.changed, gen.added, gen.removed) == (["tick"], [], []), gen
        assert gen.counts() == "1 changed (tick), 0 added, 0 removed"
        p.expect_output(r"tock \d+ (zero|one) ")


def test_edit_of_a_loop_that_never_returns_says_so(tmp_path):
    src = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { for (int t = 0;; t++) { printf("loop A %d\n", t); fflush(stdout); usleep(20000); } }
"""
    with CProject(tmp_path / "loop", cflags=("-O1",)) as p:
        p.write("main.c", src)
        p.start()
        p.expect_output(r"loop A 3")
        gen = p.edit("main.c", '"loop A %d\\n"', '"loop B %d\\n"')
        assert any(n.startswith("main is running its old code") and "next call" in n for n in gen.notes), gen.notes
        p.expect_output(r"loop A")                 # as it says: the old loop goes on


def test_struct_layout_change_names_the_struct_and_field(tmp_path):
    header = "struct pos { int x, y; };\nvoid move(struct pos *p);\n"
    mover = '#include "pos.h"\nvoid move(struct pos *p) { p->x++; }\n'
    main = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "pos.h"
int main(void) { struct pos *p = calloc(1, 64); for (;;) { move(p); printf("x=%d\n", p->x); fflush(stdout); usleep(20000); } }
"""
    with CProject(tmp_path / "layout", cflags=("-O0",)) as p:
        p.write("pos.h", header)
        p.write("mover.c", mover)
        p.write("main.c", main)
        p.start(on_unsafe="keep-old")
        p.expect_output(r"x=3")
        p.save("pos.h", header.replace("int x, y;", "int x, y, z;"))
        gen = p.edit("mover.c", "p->x++;", "p->x++; p->z = 1;")
        text = " ".join(gen.unsafe)
        assert "struct pos" in text and "'z'" in text and "added" in text, gen.unsafe
        assert "signature from 'void (struct pos *)' to 'void (struct pos *)'" not in text, gen.unsafe


# --- property: code-only edits never change a running value --------------------------------

from hypothesis import HealthCheck, given, settings, strategies as hs  # noqa: E402

PART = r"""
#include <stdio.h>
struct pair { int p, q; };
int g_@ = 11;
int z_@;
static int s_@ = 5;
static long arr_@[3] = { 1, 2, 3 };
struct pair obj_@ = { 1, 2 };
const char *ptr_@ = "literal @";
/*FUNCS*/
void bump_@(void) {
    static int n = 3;
    g_@++; z_@ += 2; s_@ += 3; arr_@[1]++; obj_@.q++; n++;
    /*EDIT*/
}
void report_@(int round) {
    static int calls;
    calls++;
    printf("report @ v0 round=%d g=%d z=%d s=%d arr=%ld q=%d calls=%d\n", round, g_@, z_@, s_@, arr_@[1], obj_@.q, calls);
    fflush(stdout);
}
"""

PROP_MAIN = r"""
#include <signal.h>
#include <time.h>
void bump_a(void); void bump_b(void); void report_a(int); void report_b(int);
static volatile sig_atomic_t go = 1;
static void on_usr1(int sig) { (void)sig; go = 1; }
int main(void) {
    signal(SIGUSR1, on_usr1);
    for (int round = 1;; ) {
        if (go) { go = 0; for (int i = 0; i < 3; i++) { bump_a(); bump_b(); } report_a(round); report_b(round); round++; }
        struct timespec ts = { 0, 3000000 };
        nanosleep(&ts, 0);
    }
}
"""

EDITS = hs.tuples(hs.sampled_from(["literal", "pad", "function"]), hs.sampled_from("ab"), hs.integers(1, 99))


def _apply(text: str, edit: tuple) -> str:
    kind, _, k = edit
    if kind == "literal":
        return re.sub(r" v\d+ round", f" v{k} round", text, count=1)
    if kind == "pad":
        return text.replace("/*EDIT*/", f"{{ volatile int pad = {k}; (void)pad; }}\n    /*EDIT*/", 1)
    # a new function with a static of the same name before bump's: gcc renumbers them
    return text.replace("/*FUNCS*/", f"int helper{k}_{len(text)}(int v) {{ static int n = {k}; n++; return v + n; }}\n"
                                     "/*FUNCS*/", 1)


def dwarf_snapshot(p: CProject) -> dict:
    """The bytes of every variable with static storage, found through each object's DWARF
    (a function-scope static by its function and name) and read in the running process."""
    from devlink import tables as T
    from devlink.dwarf.index import build_index
    s = p.session
    rows = {(r["file"], r["name"]): r for r in T.variable_rows(s.linker)}
    out = {}
    for obj in s.objects:
        ix = build_index(obj, s.object_bytes[obj])
        for v in ix.variables.values():
            if v.tls or v.elf_symbol is None or not v.size:
                continue
            row = rows.get((obj, v.elf_symbol))
            if row is None:
                continue              # optimised away at this level
            key = (os.path.basename(obj), v.static_key or v.symbol)
            out[key] = p.read_memory(row["address"], v.size)
    return out


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
@settings(max_examples=int(os.environ.get("DEVLINK_STATE_EXAMPLES", "3")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=hs.lists(EDITS, min_size=3, max_size=6))
def test_code_only_edits_never_change_a_running_value(tmp_path_factory, opt, edits):
    root = tmp_path_factory.mktemp("prop")
    texts = {c: PART.replace("@", c) for c in "ab"}
    with CProject(root, cflags=(opt,)) as p:
        p.write("main.c", PROP_MAIN)
        for c, text in texts.items():
            p.write(f"{c}.c", text)
        p.start()
        p.expect_output(r"report b v0 round=1 ")
        pid, round_ = p.pid, 1
        for edit in edits:
            before = dwarf_snapshot(p)
            c = edit[1]
            texts[c] = _apply(texts[c], edit)
            gen = p.edit(f"{c}.c", text=texts[c])
            assert gen is None or (gen.action == "patched" and p.pid == pid), (edit, gen)
            after = dwarf_snapshot(p)
            kept = {k: v for k, v in after.items() if k in before}
            assert kept == {k: before[k] for k in kept}, edit
            assert len(kept) >= 12, sorted(before)      # the state is really read
            os.kill(pid, signal.SIGUSR1)
            round_ += 1
            p.expect_output(rf"report b v\d+ round={round_} g={11 + 3 * round_} z={6 * round_} "
                            rf"s={5 + 9 * round_} arr={2 + 3 * round_} q={2 + 3 * round_} calls={round_}")


def test_patch_plan_leaves_running_values_alone():
    """Pure: the plan sends the child new storage's initial values, read-only data and
    code, and the cells last; a kept variable's new initial value goes to the file only."""
    from devlink.hotpatch.plan import plan_patch
    from devlink.link.incremental import UpdateResult, Write
    r = UpdateResult(7)
    r.writes = [Write(0x10, b"\1" * 4, 0x401000, "code", False),
                Write(0x20, b"\2" * 4, 0x404000, "init", True),       # total = 2000, kept
                Write(0x30, b"\3" * 4, 0x404010, "data", False),      # a new variable
                Write(0x40, b"\4" * 8, 0x403000, "rodata", True),     # a const table
                Write(0x50, (0x401000).to_bytes(8, "little"), 0x405000, "cell", True),
                Write(0x60, b"\5" * 8, None, "meta", True)]           # symbol table
    plan = plan_patch(r)
    assert [(w.address, w.kind) for w in plan.writes] == [(0x401000, "code"), (0x404010, "data"),
                                                          (0x403000, "rodata")]
    assert plan.cells == [(0x405000, 0x401000)]


def test_label_table_of_a_running_function_stays_with_its_old_code(tmp_path):
    """A `static const void *table[] = {&&op...}` (a computed-goto dispatch table, as in
    Lua's interpreter loop) holds addresses inside its function: it belongs to that
    function's generation.  The loop that runs the old code keeps dispatching through
    the old table into old code (never from old code into the middle of new code); the
    new table is for the new code."""
    src = r"""
#include <stdio.h>
#include <unistd.h>
long run(const unsigned char *code) {
    static const void *const table[] = { &&op_add, &&op_print, &&op_loop };
    long acc = 0, pc = 0, k = 0;
    goto *table[code[pc]];
op_add:   acc += 7; pc++; goto *table[code[pc]];
op_print: if (++k % 20000 == 0) { printf("acc v1 %ld\n", acc); fflush(stdout); usleep(2000); } pc++; goto *table[code[pc]];
op_loop:  pc = 0; goto *table[code[pc]];
}
int main(void) { static const unsigned char prog[] = { 0, 1, 2 }; return (int)run(prog); }
"""
    with CProject(tmp_path / "cgoto", cflags=("-O2",)) as p:
        p.write("main.c", src)
        p.start()
        p.expect_output(r"acc v1 ")
        gen = p.edit("main.c", '"acc v1 %ld\\n"', '"acc v2 %ld\\n"')
        assert gen.action == "patched", gen
        p.drain()
        for _ in range(20):
            assert p.expect_output(r"acc v\d ").group(0) == "acc v1 ", "old code jumped into the new code"
        assert p.running


def test_running_functions_finds_return_addresses_in_old_code():
    """Pure: words on a stack that point into an old atom name its function."""
    import numpy as np
    from devlink.hotpatch.stacks import running_functions
    ranges = [("main", 0x401000, 0x80), ("step", 0x401100, 0x40), ("draw", 0x402000, 0x10)]
    words = np.array([0, 0x7ffd0000, 0x401123, 0x40107f, 0x401080, 0x402010, 0x401fff], np.uint64)
    assert running_functions(words, ranges) == ["main", "step"]
    assert running_functions(np.array([], np.uint64), ranges) == []


@pytest.mark.slow
def test_lua_o2_body_edits_never_restart(tmp_path):
    """The load test of the report, as a test: random function-body edits across Lua's
    sources at -O2 under a running interpreter; every one is patched (before, debug
    sections that came and went restarted 14 of 37), and the interpreter's state (its
    loop counter, on the Lua heap) goes on."""
    import random
    import lua as lua_helper
    src = lua_helper.lua_sources()
    rng = random.Random(14)
    p = CProject(tmp_path / "lua", cflags=("-O2", *lua_helper.LUA_CFLAGS), timeout=60)
    with p:
        for f in lua_helper.lua_c_files(src):
            p.write(f.name, f.read_text())
        for h in src.glob("*.h"):
            shutil.copy(h, p.root / h.name)
        p.write("loop.lua", "local i = 0\nwhile true do i = i + 1\n"
                            "if i % 1000000 == 0 then print('tick', i) io.stdout:flush() end end\n")
        p.start(str(p.root / "loop.lua"), libraries=tuple(lua_helper.LUA_LIBS))
        last = int(p.expect_output(r"tick\s(\d+)").group(1))
        pid = p.pid
        fn = re.compile(r"^(?:static\s+)?[A-Za-z_][\w \*]*\b(\w+)\s*\([^;{)]*\)\s*\{\s*$", re.M)
        files = ["lvm.c", "lapi.c", "ltable.c", "lstring.c", "lgc.c", "ldo.c", "lobject.c", "lstrlib.c"]
        for k in range(25):
            name = rng.choice(files)
            text = p.read(name)
            m = rng.choice(list(fn.finditer(text)))
            gen = p.edit(name, text=text[:m.end()] + f"\n  {{ volatile int devlink_pad_{k} = {k}; (void)devlink_pad_{k}; }}"
                         + text[m.end():])
            assert gen is None or (gen.action == "patched" and p.pid == pid), (name, m.group(1), gen)
            now = int(p.expect_output(r"tick\s(\d+)").group(1))
            assert now > last, (last, now)            # the loop goes on from where it was
            last = now

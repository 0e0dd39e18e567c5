"""The hot-patcher's safety net with a real compiler and a real, ptrace-seized child:
unsafe edits under each policy, undo, crash reports with restart/rollback, detach,
and `devlink run`'s pass-through of the child's output and exit status."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import devlink_command, devlink_env

from devlink.errors import DevlinkError
from devlink.hotpatch.crash import AddressMap, symbolize
from devlink.testing import CProject
from test_hotpatch import field

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

PROGRAM = r"""
#include <stdio.h>
#include <unistd.h>

int counter = 0;
int value(int x) { return x + 1; }
const char *label(void) { return "v1"; }

int main(int argc, char **argv) {
    int n = argc > 1 ? 1 : 2000;
    for (int i = 0; i < n; i++) {
        counter = value(counter);
        printf("tick pid=%d counter=%d label=%s\n", (int)getpid(), (int)counter, label());
        fflush(stdout);
        usleep(10000);
    }
    return 0;
}
"""


class Live(CProject):
    """A program under a Session (devlink.testing.CProject, the pytest plugin's fixture),
    followed across restarts."""

    def __init__(self, tmp: Path, source: str = PROGRAM, cflags=("-O0",), **policy):
        super().__init__(tmp, output="prog")
        self.dir = tmp
        self.src = self.write("prog.c", source)
        self.start(cflags=cflags, **policy)

    def save(self, old: str, new: str) -> None:
        text = self.src.read_text()
        assert old in text, old
        super().save("prog.c", text.replace(old, new))

    def edit(self, old: str, new: str):
        return super().edit("prog.c", old, new)

    def line(self, pred=lambda ln: True, timeout: float = 10.0) -> str:
        return self.expect_line(lambda ln: ln.startswith("tick") and pred(ln), timeout)

    def fresh(self, pred=lambda ln: True) -> str:
        """A line printed after now (skips what was already buffered)."""
        self.drain()
        return self.line(pred)

    def run_output_once(self) -> str:
        p = subprocess.run([str(self.dir / "prog"), "once"], capture_output=True, text=True, timeout=10)
        return p.stdout

    def close(self) -> None:
        self.stop()


def tracer_pid(pid: int) -> int:
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("TracerPid:"):
            return int(ln.split()[1])
    raise AssertionError("no TracerPid")


def traced_by_us(pid: int) -> bool:
    """The tracer is a thread of this process (the guard's tracer thread)."""
    tid = tracer_pid(pid)
    return tid != 0 and os.path.exists(f"/proc/{os.getpid()}/task/{tid}")


# The unsafe edits: (what is replaced, the unsafe text, the word the report must contain)
UNSAFE = {
    "size": ("int counter = 0;", "long counter = 0;", "size from 4 to 8"),
    "type": ("int counter = 0;", "float counter = 0;", "changed type from 'int' to 'float'"),
    "signature": ("int value(int x) { return x + 1; }", "int value(long x) { return x + 1; }",
                  "changed signature"),
    "tls": ("int counter = 0;", "int counter = 0;\n_Thread_local int tl = 5;", "non-zero initial value"),
    "constructor": ("int counter = 0;",
                    "int counter = 0;\n__attribute__((constructor)) static void init(void) { counter = 0; }",
                    "would never run"),
}


@pytest.mark.parametrize("kind", sorted(UNSAFE))
def test_unsafe_edit_policies(tmp_path, kind):
    old, unsafe, words = UNSAFE[kind]
    lv = Live(tmp_path, on_unsafe="refuse")
    try:
        pid = lv.pid
        assert traced_by_us(pid)          # seized; patches go through /proc/PID/mem
        lv.line()
        # refuse: nothing changes, the error names the problem
        with pytest.raises(DevlinkError, match=words):
            lv.edit(old, unsafe)
        lv.session.forget_changes()
        assert lv.fresh()
        assert lv.session.child.pid == pid and lv.session.running
        # ...and the next edit that is safe again patches normally
        lv.save(unsafe, old)
        gen = lv.edit('"v1"', '"v2"')
        assert gen.patched, gen
        assert field(lv.line(lambda ln: "label=v2" in ln), "pid") == str(pid)

        # restart: the newest program runs in a new child
        lv.session.on_unsafe = "restart"
        lv.save(old, unsafe)
        gen = lv.edit('"v2"', '"v3"')
        assert gen.action == "restarted" and any(words in u for u in gen.unsafe), gen
        line = lv.line(lambda ln: "label=v3" in ln)
        assert field(line, "pid") != str(pid) and lv.session.running
        pid = lv.session.child.pid
        assert traced_by_us(pid)

        # keep-old: the child keeps its code, the output file gets the new program
        lv.session.on_unsafe = "keep-old"
        lv.save(unsafe, old)
        gen = lv.edit('"v3"', '"v4"')
        assert gen.action == "kept-old" and not gen.patched and gen.unsafe, gen
        assert lv.session.pinned
        assert "label=v3" in lv.fresh() and lv.session.child.pid == pid
        assert "label=v4" in lv.run_output_once()
        gen = lv.edit('"v4"', '"v5"')                  # later edits reach the file only
        assert not gen.patched and gen.action == "file"
        assert "label=v3" in lv.fresh() and "label=v5" in lv.run_output_once()
    finally:
        lv.close()


def test_undo_flips_cells_back_to_the_previous_atoms(tmp_path):
    lv = Live(tmp_path)
    try:
        L = lv.session.linker
        stub = next(s for s in L.stubs.stubs if s.symbol.name == "value")
        cell = L.cells.address(stub.cell)
        before = int.from_bytes(lv.session.mem.read(cell, 8), "little")
        lv.line()
        gen = lv.edit("return x + 1;", "return x + 100;")
        assert gen.patched
        a = int(field(lv.line(lambda ln: int(field(ln, "counter")) >= 100), "counter"))
        b = int(field(lv.line(), "counter"))
        assert b - a == 100
        assert int.from_bytes(lv.session.mem.read(cell, 8), "little") != before
        back = lv.session.undo()
        assert back == ["value"]
        assert int.from_bytes(lv.session.mem.read(cell, 8), "little") == before   # the old atom itself
        a = int(field(lv.fresh(), "counter"))
        b = int(field(lv.line(), "counter"))
        assert b - a == 1                              # the old code runs again, state kept
        assert a > 100
        # the output file is the undone program too, and the next edit patches normally
        assert "counter=1 " in lv.run_output_once()
        assert lv.edit("return x + 100;", "return x + 7;").patched
        a = int(field(lv.fresh(), "counter"))
        assert int(field(lv.line(), "counter")) - a == 7
        with pytest.raises(DevlinkError, match="nothing to undo"):
            lv.session.undo()
            lv.session.undo()
    finally:
        lv.close()


def test_idle_session_collects_what_updates_replaced(tmp_path):
    """The link state is frozen for the collector, and so is what updates add to it:
    records an update replaced stay unless the idle session collects them."""
    lv = Live(tmp_path)
    try:
        lv.line()
        assert lv.session.reclaim_memory() == 0            # nothing updated yet
        for k in range(3):
            assert lv.edit(f"return x + {k + 1};", f"return x + {k + 2};").patched
        assert lv.session.updates_to_reclaim == 3
        assert lv.session.reclaim_memory() > 100           # replaced symbols, atoms, tables
        assert lv.session.reclaim_memory() == 0
        a = int(field(lv.fresh(), "counter"))
        assert int(field(lv.line(), "counter")) - a == 4   # and the program runs the last edit
    finally:
        lv.close()


CRASH_EDIT = ("int value(int x) { return x + 1; }",
              "int value(int x) {\n    if (x > 5) { int *volatile p = 0; return *p; }\n    return x + 2;\n}")


def _wait_crash(lv: Live):
    end = time.time() + 10
    while time.time() < end:
        ev = lv.session.child_event()
        if ev is not None:
            return ev
        time.sleep(0.02)
    raise AssertionError("the child did not crash")


@pytest.mark.parametrize("policy", ["restart", "rollback"])
def test_crash_after_patch_is_reported_and_handled(tmp_path, policy):
    lv = Live(tmp_path, on_crash=policy)
    try:
        lv.line(lambda ln: int(field(ln, "counter")) > 5)
        gen = lv.edit(*CRASH_EDIT)
        assert gen.patched and gen.number == 2
        ev = _wait_crash(lv)
        assert ev.status == -signal.SIGSEGV
        r = ev.crash
        assert r is not None and r.fault_address == 0
        assert r.where.startswith("value+0x") and r.where.endswith("(generation 2)"), r.where
        text = r.message("prog")
        assert "SIGSEGV" in text and "address not mapped" in text and "the last patch was generation 2 (value)" in text
        old_pid = lv.pid
        lv.session.handle_crash(r)
        assert lv.pid != old_pid and lv.session.running
        if policy == "restart":
            assert "newest" in r.action
            # the newest program runs: it counts by 2 from the start
            line = lv.line(lambda ln: field(ln, "pid") == str(lv.pid))
            assert field(line, "counter") == "2"
        else:
            assert "rolled back to the code of generation 1" in r.action, r.action
            lines = [lv.line(lambda ln: field(ln, "pid") == str(lv.pid)) for _ in range(8)]
            assert [int(field(ln, "counter")) for ln in lines] == list(range(1, 9))
            assert "counter=1 " in lv.run_output_once()
    finally:
        lv.close()


@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_abort_in_libc_is_named_with_the_programs_caller(tmp_path, opt):
    """abort() after a patch: the report names the libc function it died in (not a bare
    0x7f... address) and the first frame in the program's own code, the patched
    `value` (it said `killed by SIGABRT in 0x7f9facc41eec`)."""
    src = PROGRAM.replace("#include <unistd.h>", "#include <unistd.h>\n#include <stdlib.h>")
    lv = Live(tmp_path, source=src, cflags=(opt,))
    try:
        lv.line(lambda ln: int(field(ln, "counter")) > 5)
        gen = lv.edit("int value(int x) { return x + 1; }",
                      "__attribute__((noinline)) int value(int x) {\n    if (x > 5) abort();\n    return x + 2;\n}")
        assert gen.patched
        ev = _wait_crash(lv)
        assert ev.status == -signal.SIGABRT
        r = ev.crash
        # libc's internal function (no .symtab without debug symbols) is named by its offset
        assert r is not None and ("in libc.so.6" in r.where or r.where.startswith("libc.so.6+0x")), r.where
        assert r.called_from and r.called_from[-1].startswith(("value+0x", "value.cold+0x")), r.called_from
        assert r.called_from[-1].endswith("(generation 2)")
        assert r.called_from[-2].startswith("abort+0x") and r.called_from[-2].endswith(" in libc.so.6"), r.called_from
        text = r.message("prog")
        assert "killed by SIGABRT in " in text and ", called from " in text and " from value" in text, text
    finally:
        lv.close()


def test_detach_leaves_the_child_running_and_patchable(tmp_path):
    lv = Live(tmp_path)
    try:
        lv.line()
        pid = lv.pid
        assert traced_by_us(pid) and lv.session.traced
        assert lv.session.detach() == pid
        assert tracer_pid(pid) == 0 and not lv.session.traced
        assert lv.edit('"v1"', '"after-detach"').patched
        assert field(lv.line(lambda ln: "after-detach" in ln), "pid") == str(pid)
        assert lv.session.child.poll() is None         # Popen waits for it again
        assert lv.session.stop() == -signal.SIGTERM
    finally:
        lv.close()


def test_stop_reports_exit_and_leaves_nothing_traced(tmp_path):
    src = PROGRAM.replace("int n = argc > 1 ? 1 : 2000;", "int n = 3;").replace("return 0;", "return 7;")
    lv = Live(tmp_path, source=src)
    try:
        assert lv.session.child.wait(10) == 7
        ev = lv.session.child_event()
        assert ev is not None and ev.status == 7 and ev.crash is None
    finally:
        lv.close()


def test_address_map_names_the_latest_atom():
    amap = AddressMap()
    amap.extend([(0x1000, 0x40, "f", 1), (0x1040, 0x20, "g", 1)])
    amap.add(0x2000, 0x30, "f", 3)
    assert symbolize(amap, 0x1045) == "g+0x5 (generation 1)"
    assert symbolize(amap, 0x2010) == "f+0x10 (generation 3)"
    assert symbolize(amap, 0x3000) == "0x3000"


EXITING = r"""
#include <stdio.h>
int main(void) { printf("out-line\n"); fprintf(stderr, "err-line\n"); return 3; }
"""


def test_run_passes_output_through_and_reports_status(tmp_path):
    (tmp_path / "p.c").write_text(EXITING)
    p = subprocess.run(devlink_command("run", "-o", "p", "p.c"), cwd=tmp_path, env=devlink_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, p.stderr
    assert "out-line" in p.stdout and "err-line" in p.stderr
    assert "exited with status 3" in p.stderr
    bad = subprocess.run(devlink_command("run", "--on-unsafe=maybe", "-o", "p", "p.c"), cwd=tmp_path,
                         env=devlink_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "keep-old" in bad.stderr


SIGNALS = r"""
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
volatile int usr1;
static void on_usr1(int s) { (void)s; usr1++; }
int main(void) {
    signal(SIGUSR1, on_usr1);
    for (int i = 0; i < 2000; i++) {
        printf("tick pid=%d usr1=%d\n", (int)getpid(), usr1);
        fflush(stdout);
        usleep(10000);
    }
    return 0;
}
"""


def test_signals_pass_through_the_guard(tmp_path):
    lv = Live(tmp_path, source=SIGNALS)
    try:
        lv.line()
        assert traced_by_us(lv.pid)
        os.kill(lv.pid, signal.SIGUSR1)                 # re-injected: the handler runs
        lv.line(lambda ln: field(ln, "usr1") == "1")
        os.kill(lv.pid, signal.SIGSTOP)                 # a group-stop stays a stop...
        time.sleep(0.2)
        state = Path(f"/proc/{lv.pid}/stat").read_text().rpartition(")")[2].split()[0]
        assert state in ("t", "T"), state
        os.kill(lv.pid, signal.SIGCONT)                 # ...until SIGCONT
        lv.fresh()
        assert lv.session.running and traced_by_us(lv.pid)
    finally:
        lv.close()


LOOPING = r"""
#include <stdio.h>
#include <unistd.h>
#include <pthread.h>
volatile long work;
void step(int i) { work += i; }
void *worker(void *arg) { for (;;) { work++; usleep(1000); } return arg; }   /* runs long by nature */
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    for (int i = 0;; i++) { step(i); printf("tick %d\n", i); fflush(stdout); usleep(20000); }
}
"""


def _stuck_within(lv: Live, seconds: float) -> list:
    end = time.monotonic() + seconds
    found = []
    while time.monotonic() < end and not found:
        found = lv.session.check_stuck()
        time.sleep(0.1)
    return found


@pytest.mark.parametrize("loop", ["for (;;) work++;", "for (;;) usleep(1000);"], ids=["spinning", "sleeping"])
def test_an_edit_that_never_returns_is_reported(tmp_path, loop):
    """step() edited into an endless loop (spinning, or calling usleep): reported within
    a few seconds, naming step and its generation (the status said "running"); the
    worker thread, which never returns by nature, and main are not reported."""
    lv = Live(tmp_path, source=LOOPING, cflags=("-O1",), libraries=("pthread",))
    try:
        lv.line(lambda ln: ln.startswith("tick 3"))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:          # what the functions usually do
            assert lv.session.check_stuck() == []
            time.sleep(0.1)
        gen = lv.edit("void step(int i) { work += i; }", "void step(int i) { work += i; if (i > 0) { %s } }" % loop)
        assert gen.patched
        found = _stuck_within(lv, 8)
        assert [(s.where.name, s.where.generation) for s in found] == [("step", gen.number)], found
        text = found[0].message("prog")
        assert "in step (generation 2)" in text and "restart" in text and "undo" in text, text
        assert lv.session.stuck and lv.session.running
        assert lv.session.check_stuck() == []          # said once
    finally:
        lv.close()


def test_a_normal_edit_is_not_reported_as_stuck(tmp_path):
    lv = Live(tmp_path, source=LOOPING, cflags=("-O1",), libraries=("pthread",))
    try:
        lv.line(lambda ln: ln.startswith("tick 3"))
        gen = lv.edit("void step(int i) { work += i; }", "void step(int i) { work += 2 * i; }")
        assert gen.patched
        assert _stuck_within(lv, 5) == [] and lv.session.stuck == []
    finally:
        lv.close()

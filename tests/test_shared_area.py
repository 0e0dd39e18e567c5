"""The shared patch area (invariant 5): the runtime maps it under a session, patches are
stores into devlink's mapping, forked children see them, and outside devlink the
runtime does nothing.  Real compiler, real child."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from devlink.hotpatch.procmem import ProcMem
from devlink.hotpatch.shared import PAGE, SharedPatchArea, patch_ranges
from devlink.runtime import ENV
from test_hotpatch import THREADS, Live, field

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")

PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int version(void) { return 1; }

static int mapped(void) {        /* lines of /proc/self/maps from the patch area */
    char line[512];
    int n = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, "devlink-patch-area") != 0;
    if (f) fclose(f);
    return n;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? 1 : 1000;
    for (int i = 0; i < rounds; i++) {
        printf("tick v=%d mapped=%d\n", version(), mapped());
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
"""

FORK = r"""
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

int version(void) { return 1; }

int main(void) {
    pid_t parent = getpid();
    const char *who = fork() == 0 ? "child" : "parent";
    for (int i = 0; i < 1000 && getppid() != 1; i++) {
        if (who[0] == 'c' && getppid() != parent) break;      /* the parent is gone */
        printf("%s v=%d\n", who, version());
        fflush(stdout);
        usleep(20000);
    }
    return 0;
}
"""


def maps_of(pid: int) -> list[str]:
    with open(f"/proc/{pid}/maps") as f:
        return [ln for ln in f if "devlink-patch-area" in ln]


def test_runtime_maps_the_area_and_patches_are_stores(tmp_path):
    lv = Live(tmp_path, PROGRAM)
    try:
        patcher = lv.session.patcher
        assert isinstance(patcher, SharedPatchArea) and patcher.active
        assert patcher.status == lv.child.pid
        perms = {ln.split()[1] for ln in maps_of(lv.child.pid)}
        assert "r-xs" in perms and "r--s" in perms and not any("w" in p for p in perms), perms
        line = lv.lines_until(lambda ln: ln.startswith("tick"))
        assert int(field(line, "mapped")) >= 2
        lv.edit("return 1;", "return 22;")
        lv.lines_until(lambda ln: "v=22" in ln)
        lv.edit("return 22;", "return 333;")
        lv.lines_until(lambda ln: "v=333" in ln)
        # the code and the cells went through devlink's mapping, nothing through /proc/PID/mem
        assert patcher.shared_writes > 0
        assert patcher.mem.writes == 0
    finally:
        lv.close()


def test_outside_devlink_the_runtime_does_nothing(tmp_path):
    lv = Live(tmp_path, PROGRAM)
    lv.close()
    prog = str(tmp_path / "prog")
    env = {k: v for k, v in os.environ.items() if k != ENV}
    r = subprocess.run([prog, "once"], capture_output=True, text=True, env=env, timeout=20)
    assert r.returncode == 0 and r.stdout == "tick v=1 mapped=0\n", r
    # another program's area (a program exec'd by the child inherits the variable)
    env[ENV] = "3:" + "ab" * 16 + ":1000:401000,1000,1000,5;"
    r = subprocess.run([prog, "once"], capture_output=True, text=True, env=env, timeout=20)
    assert r.returncode == 0 and r.stdout == "tick v=1 mapped=0\n", r


def test_forked_child_runs_new_code(tmp_path):
    lv = Live(tmp_path, FORK)
    try:
        lv.lines_until(lambda ln: ln == "child v=1")
        lv.edit("return 1;", "return 5;")
        lv.lines_until(lambda ln: ln == "child v=5")
        lv.lines_until(lambda ln: ln == "parent v=5")
    finally:
        lv.close()


def test_procmem_fallback_without_the_area(tmp_path):
    lv = Live(tmp_path, PROGRAM, patch_area=False)
    try:
        assert isinstance(lv.session.patcher, ProcMem)
        assert maps_of(lv.child.pid) == []
        lv.lines_until(lambda ln: "mapped=0" in ln)
        lv.edit("return 1;", "return 4;")
        lv.lines_until(lambda ln: "v=4" in ln)
        assert lv.session.patcher.writes > 0
    finally:
        lv.close()


def test_linked_without_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLINK_NO_RUNTIME", "1")
    lv = Live(tmp_path, PROGRAM)
    try:
        assert ".devlink.id" not in lv.session.linker.outputs
        assert isinstance(lv.session.patcher, ProcMem)
        lv.edit("return 1;", "return 6;")
        lv.lines_until(lambda ln: "v=6 mapped=0" in ln)
    finally:
        lv.close()


def test_ranges_are_pages_and_never_writable_data(tmp_path):
    lv = Live(tmp_path, PROGRAM)
    lv.close()
    L = lv.session.linker
    ranges = patch_ranges(L)
    for r in ranges:
        assert r.vaddr % PAGE == 0 and r.size % PAGE == 0 and r.offset % PAGE == 0
        assert r.vaddr - r.offset == next(s.vaddr - s.offset for s in L.segments
                                          if s.vaddr <= r.vaddr < s.vaddr + max(s.memsz, 1))
        for o in L.alloc_sections:
            if o.addr < r.vaddr + r.size and r.vaddr < o.addr + o.size + o.room and o.name != ".devlink.cells":
                assert not o.sh_flags & 1, o.name            # SHF_WRITE
    text, cells = L.outputs[".text"], L.outputs[".devlink.cells"]
    assert any(r.vaddr >= text.addr + text.size - PAGE and r.vaddr + r.size == text.addr + text.limit for r in ranges)
    assert any(r.vaddr == cells.addr for r in ranges)


def test_threads_stopped_on_the_fallback_see_eintr(tmp_path):
    """The documented price of the opt-in ptrace stop: a blocked epoll_wait returns EINTR."""
    lv = Live(tmp_path, THREADS, flags=("-O2", "-pthread"), patch_area=False, stop_threads=True)
    try:
        lv.lines_until(lambda ln: ln.startswith("tick"))
        lv.edit("x * 0 + 0", "x * 0 + 9")
        line = lv.lines_until(lambda ln: "seen=9,9,9,9" in ln)
        assert int(field(line, "eintr")) >= 1, line
        assert lv.child.poll() is None
    finally:
        lv.close()

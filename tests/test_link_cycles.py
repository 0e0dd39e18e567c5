"""A one-shot link (`link_executable`) leaves no reference cycles behind: its state is
freed by reference counting when the call returns (Linker.discard).  A cycle left in
it makes the collector trace every record of the link (tens of milliseconds for a big
program) on its first pass after the link."""

from __future__ import annotations

import collections
import gc
import subprocess

import pytest

import helpers
from devlink.link.linker import link_executable

CC = helpers.find_cc()

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (`cc`) found on PATH; install gcc")

MAIN = r"""
#include <stdio.h>
extern int twice(int);
static int (*op)(int) = twice;
__thread int tls_counter;
int main(void) {
    tls_counter = op(20) + 2;
    printf("%d\n", tls_counter);
    return 0;
}
"""

LIB = r"""
static int calls;
int twice(int x) { calls++; return 2 * x; }
"""


def test_link_executable_leaves_no_cyclic_garbage(tmp_path):
    objs = []
    for name, text in (("main.c", MAIN), ("lib.c", LIB)):
        src = tmp_path / name
        src.write_text(text)
        objs.append(helpers.cc_c(src, ["-g", "-O2", "-fPIC", "-ffunction-sections", "-fdata-sections"]))
    out = tmp_path / "prog"
    link_executable([str(o) for o in objs], str(out))   # fills the per-process library caches
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        link_executable([str(o) for o in objs], str(out))
        gc.collect()
        garbage = collections.Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
    assert not garbage, f"the link left reference cycles (extend Linker.discard): {garbage.most_common(8)}"
    p = subprocess.run([str(out)], capture_output=True, text=True, timeout=20)
    assert (p.returncode, p.stdout) == (0, "42\n")

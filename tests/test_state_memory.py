"""The compacted link state (`Linker.compact_state`) holds what an update reads, in less
memory: the same code and data bytes, relocation records and relocation-table rows as
the state before compaction, the same section names for symbols, and an update gives
the same writes from the live state, the compacted one, and the compacted one saved
and loaded again.

The program has what the compaction treats specially: a TLS variable reached through
the general-dynamic sequence (relaxed, so its relocation-table row no longer equals the
input record), a jump table and string literals (unnamed sections), static functions,
a function-scope static and a function pointer in data.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import helpers

CC = helpers.find_cc()
pytestmark = pytest.mark.skipif(CC is None, reason="needs cc")

FLAGS = ["-O2", "-g", "-fPIC", "-ffunction-sections", "-fdata-sections"]

A_C = r"""
#include <stdio.h>
extern __thread int tcount;
int helper(int);
extern int (*fp)(int);
static int sq(int x) { return x * x; }
int counter(void) { static int n; return ++n; }
const char *msg(int i)
{
    switch (i) {
    case 0: return "zero"; case 1: return "one"; case 2: return "two";
    case 3: return "three"; case 4: return "four"; default: return "many";
    }
}
int main(int argc, char **argv)
{
    tcount += argc;
    printf("%d %s %d %d %d\n", helper(sq(3)), msg(argc + 1), counter(), tcount, fp(1));
    return 0;
}
"""

B_C = r"""
__thread int tcount = 1;
int helper(int x) { static int calls; calls++; return x + calls; }
int (*fp)(int) = helper;
"""

B_EDITED = B_C.replace("return x + calls;", "return x + calls + 40;")


def _objects(tmp: Path, b_text: str = B_C, name: str = "b.c") -> list[Path]:
    a = helpers.cc_c(helpers.write(tmp / "a.c", A_C), FLAGS)
    b = helpers.cc_c(helpers.write(tmp / name, b_text), FLAGS, tmp / "b.o")
    return [a, b]


def _link(tmp: Path, objs: list[Path], out: str, compact: bool):
    from devlink.link.linker import Linker, LinkOptions
    from devlink.output.writer import write_file
    L = Linker(LinkOptions(output=str(tmp / out), inputs=[str(o) for o in objs]))
    image = L.link()
    write_file(str(tmp / out), image)
    del image
    if compact:
        L.compact_state()
    return L


def _run(path: Path) -> str:
    p = subprocess.run([str(path)], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_compacted_state_holds_what_an_update_reads(tmp_path):
    from devlink.elf import consts as C
    from devlink.link.relocs import trimmed
    objs = _objects(tmp_path)
    live = _link(tmp_path, objs, "live", compact=False)
    small = _link(tmp_path, objs, "small", compact=True)
    assert _run(tmp_path / "live") == _run(tmp_path / "small")
    shared_tables = 0
    for lo, so in zip(live.objects, small.objects):
        assert lo.name == so.name
        assert so.raw.data == b"" and so.raw.sections == []
        for la, sa in zip(lo.atoms, so.atoms):
            assert (la is None) == (sa is None)
            if la is None or not (la.sh_flags & C.SHF_ALLOC) or la.is_nobits or la.name == ".eh_frame":
                continue
            assert type(sa.data) is bytes and sa.data == bytes(la.data), sa.name
            if la.relocs is None or not len(la.relocs):
                assert sa.relocs is None, sa.name
            else:
                assert sa.relocs.dtype == la.relocs.dtype and sa.relocs.tobytes() == la.relocs.tobytes(), sa.name
        # what the symbols say, and the names of the sections they name
        for col in ("st_value", "st_size", "st_other", "st_shndx"):
            assert np.array_equal(np.asarray(getattr(lo, col), np.int64).astype(np.uint64),
                                  np.asarray(getattr(so, col), np.int64).astype(np.uint64)), col
        for i in range(len(so.symbols)):
            shndx = int(so.st_shndx[i])
            assert so.section_name(shndx) == lo.section_name(shndx)
        # the relocation table: the rows of the trimmed table, whatever the column types
        if lo.table is None:
            assert so.table is None
            continue
        lt, st = trimmed(lo.table), so.table
        assert [a.shndx for a in lt.atoms] == [a.shndx for a in st.atoms]
        for col in ("aidx", "offs", "types", "syms", "addend", "kinds", "from_alloc", "in_code"):
            assert np.array_equal(np.asarray(getattr(lt, col)).astype(np.int64),
                                  np.asarray(getattr(st, col)).astype(np.int64)), (so.name, col)
        assert (lt.relax_lea is None) == (st.relax_lea is None)
        if lt.relax_lea is not None:
            assert np.array_equal(lt.relax_lea, st.relax_lea)
        shared_tables += st.syms.base is not None
    # the input columns of at least one table are views of the records
    assert shared_tables
    # a.o's general-dynamic TLS access was relaxed: its table rows moved
    a_table = small.objects[[o.name for o in small.objects].index(str(objs[0]))].table
    rec = np.concatenate([x.relocs for x in a_table.atoms]).view("<i8").reshape(-1, 3)[:len(a_table.offs), 0]
    assert not np.array_equal(a_table.offs, rec)


def _writes(result) -> list[tuple[int, bytes]]:
    """The writes of an update, but the stamp (it names the link, which differs)."""
    return [(w.offset, bytes(w.data)) for w in result.writes[:-1]]


def test_update_writes_the_same_from_live_compacted_and_reloaded_state(tmp_path):
    from devlink.link import state as st
    from devlink.link.incremental import update_objects
    from devlink.output.writer import pwrite_all
    objs = _objects(tmp_path)
    live = _link(tmp_path, objs, "live", compact=False)
    small = _link(tmp_path, objs, "small", compact=True)
    sdir = str(tmp_path / "state")
    st.commit_state(sdir, st.save_state(sdir, small))
    loaded = st.load_state(sdir)
    edited = helpers.cc_c(helpers.write(tmp_path / "edit" / "b.c", B_EDITED), FLAGS).read_bytes()
    results = {}
    for name, L in (("live", live), ("small", small), ("loaded", loaded)):
        results[name] = update_objects(L, {str(objs[1]): edited})
    assert _writes(results["small"]) == _writes(results["live"])
    assert _writes(results["loaded"]) == _writes(results["small"])
    assert [c.name for c in results["small"].changed] == ["helper"]
    # and the update is right: the edited program runs the new code
    before = _run(tmp_path / "small")
    pwrite_all(str(tmp_path / "small"), results["small"].writes)
    after = _run(tmp_path / "small")
    assert int(after.split()[0]) == int(before.split()[0]) + 40
    # a second update reads the state the first one compacted
    again = update_objects(small, {str(objs[1]): helpers.cc_c(tmp_path / "b.c", FLAGS, tmp_path / "b2.o").read_bytes()})
    pwrite_all(str(tmp_path / "small"), again.writes)
    assert _run(tmp_path / "small") == before


def test_shared_index_ints():
    from devlink.link import shared_ints
    n = 70_000
    ints = shared_ints.indexes(n)
    assert ints == list(range(n))
    assert shared_ints.index(n - 1) is ints[n - 1]
    assert shared_ints.index(n + 5) == n + 5 and shared_ints.index(n + 5) is shared_ints.indexes(n + 6)[n + 5]

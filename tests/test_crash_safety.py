"""Crash safety of incremental `devlink build`, and recovery from damaged link state.

- Fault injection: `DEVLINK_FAULT=N` SIGKILLs devlink at the N-th write step of an
  incremental update.  For N = 1, 2, ... (each on a fresh copy of the pre-edit project,
  restored at the same path: the link state records absolute paths) until a run is not
  killed: after the kill the output still runs and prints the old or the new program's
  output, unless a journal shows the update was mid-commit; then the next plain build
  succeeds, the output prints the new output, readelf is clean, and a further edit is
  again an incremental update (nothing was lost).
- A corrupt or foreign `state.pickle` or `manifest`: the next build prints one notice
  line (no traceback) and produces a correct program.
- An output changed outside devlink (cc wrote it, it was truncated or deleted): the next
  build notices and relinks correctly.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import pytest

import helpers

CC = helpers.find_cc()
READELF = helpers.find_tool("readelf")

pytestmark = pytest.mark.skipif(CC is None or READELF is None, reason="needs cc and readelf (gcc, binutils)")

#: unrelated code that gives lib.c's debug pieces room, so the edit below is an
#: incremental update and not a full relink (debug sections have ~1/3 room each)
FILLER = "".join(f"int filler{i}(int x)\n{{\n  int y = x * {i + 3};\n  y += x / 3;\n  return y - {i};\n}}\n"
                 for i in range(16))

MAIN = r"""#include <stdio.h>
int f(int); int g(int); int k(int); extern int counter; extern const int table[4];
extern const char *const label;
int main(void)
{
    int (*volatile fp)(int) = g;
    printf("%s f=%d g=%d k=%d counter=%d table=%d\n", label, f(1), fp(2), k(3), counter, table[1] + table[3]);
    return 0;
}
"""

LIB_OLD = FILLER + """
int counter = 3;
const int table[4] = {1, 2, 3, 4};
const char *const label = "old";
int f(int x) { return x + 1; }
int g(int x) { return x * 2; }
int k(int x) { return x - 1; }
"""

# changes: a global's initial value, a const table, a string literal, f grown past its
# capacity (moves, its cell flips), g changed in place, a new function h that k calls
LIB_NEW = FILLER + """
int counter = 4;
const int table[4] = {1, 20, 3, 40};
const char *const label = "new";
int h(int x);
int f(int x) { x = x * 3 + 1; x = x * 3 + 2; x = x * 5 + 3; x = x * 7 + 4; x = x * 11 + 5; return x + 1; }
int g(int x) { return x * 2 + 1; }
int k(int x) { return h(x) - 1; }
int h(int x) { return x * 100; }
"""

LIB_NEW2 = LIB_NEW.replace("x * 100", "x * 1000")

OUT_OLD = b"old f=2 g=4 k=2 counter=3 table=6\n"
OUT_NEW = b"new f=5671 g=5 k=299 counter=4 table=60\n"
OUT_NEW2 = b"new f=5671 g=5 k=2999 counter=4 table=60\n"


def build(root: Path, *, env_extra: dict | None = None, verbose: bool = True) -> subprocess.CompletedProcess:
    args = ["build", *(["-v"] if verbose else []), "-o", "prog", "main.c", "lib.c"]
    return helpers.run_devlink(*args, cwd=root, env=helpers.devlink_env(env_extra))


def ok(r: subprocess.CompletedProcess, what: str) -> str:
    assert r.returncode == 0 and "Traceback" not in r.stderr, f"{what}: exit {r.returncode}\n{r.stderr[-3000:]}"
    return r.stderr


def run(root: Path) -> helpers.RunResult:
    return helpers.run_program([root / "prog"])


def readelf_clean(path: Path) -> None:
    for args in (["-a", "-W"], ["--debug-dump=info,line", "-W"]):
        p = subprocess.run([READELF, *args, str(path)], capture_output=True, text=True, errors="backslashreplace",
                           timeout=60)
        assert p.returncode == 0 and not p.stderr.strip(), f"readelf {' '.join(args)}:\n{p.stderr[:2000]}"


def restore(backup: Path, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(backup, root, symlinks=True)   # copy2: mtimes kept, so nothing looks edited


def set_source(root: Path, text: str) -> None:
    p = root / "lib.c"
    old = p.stat().st_mtime_ns if p.exists() else 0
    p.write_text(text)
    # make sure the change is visible to a size+mtime check even on a coarse clock
    st = p.stat()
    if st.st_mtime_ns <= old:
        os.utime(p, ns=(st.st_atime_ns, old + 1_000_000))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> tuple[Path, Path]:
    """(backup of the built pre-edit project, the path it must be restored to)."""
    base = tmp_path_factory.mktemp("crash")
    root = base / "proj"
    root.mkdir()
    (root / "main.c").write_text(MAIN)
    (root / "lib.c").write_text(LIB_OLD)
    ok(build(root), "initial build")
    assert run(root).stdout == OUT_OLD
    # the edit must be an incremental update, or fault injection tests nothing
    probe = base / "probe"
    shutil.copytree(root, base / "backup", symlinks=True)
    err = ok(build_after_edit(root), "probe build")
    assert "updated prog" in err, f"the edit is not an incremental update: {err}"
    assert run(root).stdout == OUT_NEW
    del probe
    return base / "backup", root


def build_after_edit(root: Path, **kw) -> subprocess.CompletedProcess:
    set_source(root, LIB_NEW)
    return build(root, **kw)


# ------------------------------------------------------------------------ fault injection


def _killed_at(backup: Path, root: Path, n: int) -> tuple[bool, bool]:
    """Run the edited build with DEVLINK_FAULT=n on a fresh copy of the pre-edit project
    and check everything; returns (killed, a journal was left)."""
    restore(backup, root)
    set_source(root, LIB_NEW)
    r = build(root, env_extra={"DEVLINK_FAULT": str(n)})
    ctx = f"DEVLINK_FAULT={n}"
    if r.returncode == 0:
        assert run(root).stdout == OUT_NEW, f"{ctx}: the build was not killed but the output is wrong"
        return False, False
    assert r.returncode == -signal.SIGKILL, f"{ctx}: exit {r.returncode}\n{r.stderr[-2000:]}"
    journal = (root / ".devlink" / "prog" / "journal").exists()
    if not journal:
        got = run(root)
        assert got.returncode == 0 and got.stdout in (OUT_OLD, OUT_NEW), \
            f"{ctx}: killed with no journal, and the output is neither program: {got.describe_status()} " \
            f"{got.stdout!r} {got.stderr[-500:]!r}"
    # recovery: the next plain build finishes (or redoes) the update
    err = ok(build(root), f"{ctx}: the build after the kill")
    got = run(root)
    assert got.returncode == 0 and got.stdout == OUT_NEW, \
        f"{ctx}: after recovery: {got.describe_status()} {got.stdout!r}\n-v said: {err}"
    assert not (root / ".devlink" / "prog" / "journal").exists()
    readelf_clean(root / "prog")
    # nothing lost: a second build has nothing to do, and a further edit is incremental
    err = ok(build(root), f"{ctx}: the second build after the kill")
    assert "up to date" in err, f"{ctx}: the build after recovery did not leave a consistent state: {err}"
    set_source(root, LIB_NEW2)
    err = ok(build(root), f"{ctx}: a further edit after recovery")
    assert "updated prog" in err, f"{ctx}: the edit after recovery was not incremental: {err}"
    assert run(root).stdout == OUT_NEW2, ctx
    readelf_clean(root / "prog")
    return True, journal


def _sweep(baseline, stride: int) -> None:
    """N = 1, 1+stride, ... until a run is not killed; every N around the point where
    the journal first appears (saving the state, writing the journal, the manifest)."""
    backup, root = baseline
    killed, journals = [], []
    tried = set()
    n = 1
    while n < 1000:
        tried.add(n)
        k, j = _killed_at(backup, root, n)
        if not k:
            break
        killed.append(n)
        if j:
            if not journals:
                for m in range(max(1, n - stride), n):
                    if m not in tried:
                        tried.add(m)
                        k2, j2 = _killed_at(backup, root, m)
                        assert k2
                        (journals if j2 else killed).append(m)
            journals.append(n)
        n += stride
    else:
        pytest.fail("DEVLINK_FAULT never let the build finish")
    # the injection points exist: the room writes, state, journal, manifest, replay
    assert len(killed) >= 4, f"only {len(killed)} write steps were injected: {killed}"
    assert journals, "no kill left a journal behind (the commit phase was never interrupted)"


def test_sigkill_at_write_steps_sampled(baseline):
    """Every 5th write step (each kind of step is a run of similar pwrites), and every
    step where the commit starts."""
    _sweep(baseline, 5)


@pytest.mark.slow
def test_sigkill_at_every_write_step(baseline):
    _sweep(baseline, 1)


def test_sigkill_during_journal_replay_of_recovery(baseline):
    """Killed mid-commit, then killed again while the next build replays the journal:
    the third build still finishes the update."""
    backup, root = baseline
    for n in range(1, 200):
        restore(backup, root)
        set_source(root, LIB_NEW)
        r = build(root, env_extra={"DEVLINK_FAULT": str(n)})
        assert r.returncode in (0, -signal.SIGKILL), r.stderr[-2000:]
        assert r.returncode != 0, "no kill left a journal behind"
        if (root / ".devlink" / "prog" / "journal").exists():
            break
    r = build(root, env_extra={"DEVLINK_FAULT": "1"})     # the first replay write
    assert r.returncode in (0, -signal.SIGKILL), r.stderr[-2000:]
    ok(build(root), "the build after two kills")
    assert run(root).stdout == OUT_NEW
    readelf_clean(root / "prog")


# ------------------------------------------------------------------------ damaged state


def _state(root: Path) -> Path:
    return root / ".devlink" / "prog" / "state.pickle"


def _reframe(blob: bytes, version: int) -> bytes:
    """A state file with a valid header around `blob`, and the checksum anyone can compute
    (devlink's first format): not this user's MAC."""
    head = struct.pack("<4sI", b"DLST", version)
    return head + hashlib.blake2b(head + blob, digest_size=32).digest() + blob


def _current_version(root: Path) -> int:
    return struct.unpack_from("<I", _state(root).read_bytes(), 4)[0]


STATE_DAMAGE = {
    "flip-bytes": lambda data, v: data[:len(data) // 2] + bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 16])
    + data[len(data) // 2 + 16:],
    "truncate": lambda data, v: data[:len(data) // 3],
    "empty": lambda data, v: b"",
    "garbage": lambda data, v: os.urandom(4096),
    "raw-pickle-of-other-object": lambda data, v: pickle.dumps({"not": "a linker"}),
    "other-version": lambda data, v: struct.pack("<4sI", b"DLST", v + 1) + data[8:],
}


def _one_notice(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line]


@pytest.mark.parametrize("damage", sorted(STATE_DAMAGE))
def test_damaged_state_is_rebuilt_with_one_notice(baseline, damage):
    backup, root = baseline
    restore(backup, root)
    p = _state(root)
    p.write_bytes(STATE_DAMAGE[damage](p.read_bytes(), _current_version(root)))
    set_source(root, LIB_NEW)
    err = ok(build(root, verbose=False), f"build with a {damage} state")
    lines = _one_notice(err)
    assert len(lines) == 1 and lines[0].startswith("devlink: "), f"expected one notice line, got:\n{err}"
    assert run(root).stdout == OUT_NEW
    readelf_clean(root / "prog")
    # the state is whole again: the next edit is an incremental update
    set_source(root, LIB_NEW2)
    err = ok(build(root), "the next edit")
    assert "updated prog" in err, err
    assert run(root).stdout == OUT_NEW2


def test_foreign_pickle_with_valid_checksum_is_rebuilt(baseline):
    backup, root = baseline
    restore(backup, root)
    _state(root).write_bytes(_reframe(pickle.dumps({"not": "a linker"}), _current_version(root)))
    set_source(root, LIB_NEW)
    err = ok(build(root, verbose=False), "build with a foreign state")
    lines = _one_notice(err)
    assert len(lines) == 1 and lines[0].startswith("devlink: "), err
    assert run(root).stdout == OUT_NEW


MANIFEST_DAMAGE = {
    "garbage": b"\x00\x01garbage{{{",
    "truncated-json": b'{"version": ',
    "json-list": b"[1, 2, 3]",
    "other-version": b'{"version": 9999, "options": "x"}',
    "empty": b"",
}


@pytest.mark.parametrize("damage", sorted(MANIFEST_DAMAGE))
def test_damaged_manifest_gives_a_correct_program(baseline, damage):
    backup, root = baseline
    restore(backup, root)
    (root / ".devlink" / "prog" / "manifest").write_bytes(MANIFEST_DAMAGE[damage])
    set_source(root, LIB_NEW)
    err = ok(build(root, verbose=False), f"build with a {damage} manifest")
    assert len(_one_notice(err)) <= 1, err
    assert run(root).stdout == OUT_NEW
    readelf_clean(root / "prog")
    err = ok(build(root), "the build after")
    assert "up to date" in err, err


@pytest.mark.parametrize("damage", ["garbage", "other-version"])
def test_damaged_manifest_notice(baseline, damage):
    backup, root = baseline
    restore(backup, root)
    (root / ".devlink" / "prog" / "manifest").write_bytes(MANIFEST_DAMAGE[damage])
    set_source(root, LIB_NEW)
    err = ok(build(root, verbose=False), f"build with a {damage} manifest")
    lines = _one_notice(err)
    assert len(lines) == 1 and "manifest" in lines[0], f"expected one notice line, got: {err!r}"


def test_garbage_journal_is_ignored(baseline):
    """A journal that is not whole (garbage) means the update never started."""
    backup, root = baseline
    restore(backup, root)
    (root / ".devlink" / "prog" / "journal").write_bytes(b"DLJR" + os.urandom(100))
    err = ok(build(root, verbose=False), "build with a garbage journal")
    assert "Traceback" not in err
    assert run(root).stdout == OUT_OLD
    set_source(root, LIB_NEW)
    ok(build(root), "the edit after")
    assert run(root).stdout == OUT_NEW
    readelf_clean(root / "prog")


# ------------------------------------------------------------------ output changed outside


def _cc_writes_output(root: Path) -> None:
    subprocess.run([CC, "main.c", "lib.c", "-o", "prog"], cwd=root, check=True, capture_output=True)


def _is_devlink_output(path: Path) -> bool:
    p = subprocess.run([READELF, "-SW", str(path)], capture_output=True, text=True)
    return ".devlink.cells" in p.stdout


@pytest.mark.parametrize("edit", [False, True], ids=["no-edit", "with-edit"])
def test_output_written_by_cc_is_relinked(baseline, edit):
    backup, root = baseline
    restore(backup, root)
    if edit:
        set_source(root, LIB_NEW.replace("x * 100", "x * 7"))   # cc builds something else
    _cc_writes_output(root)
    assert not _is_devlink_output(root / "prog")
    if edit:
        set_source(root, LIB_NEW)
    err = ok(build(root), "build after cc replaced the output")
    assert "up to date" not in err, err
    assert _is_devlink_output(root / "prog"), "devlink kept cc's output"
    assert run(root).stdout == (OUT_NEW if edit else OUT_OLD)
    readelf_clean(root / "prog")
    err = ok(build(root), "the build after")
    assert "up to date" in err, err


@pytest.mark.parametrize("how", ["truncate", "delete", "stamp-overwritten"])
def test_damaged_or_missing_output_is_relinked(baseline, how):
    backup, root = baseline
    restore(backup, root)
    out = root / "prog"
    if how == "truncate":
        os.truncate(out, 4096)
    elif how == "delete":
        out.unlink()
    else:
        # the stamp is what ties the file to the state; rewrite the whole file as cc would,
        # but keep devlink's layout: copy the output of a different devlink build
        other = root.parent / "other"
        if other.exists():
            shutil.rmtree(other)
        other.mkdir()
        (other / "main.c").write_text(MAIN)
        (other / "lib.c").write_text(LIB_NEW2)
        ok(build(other), "the other build")
        shutil.copyfile(other / "prog", out)
        os.chmod(out, 0o755)
    set_source(root, LIB_NEW)
    ok(build(root), f"build after the output was {how}")
    got = run(root)
    assert got.returncode == 0 and got.stdout == OUT_NEW, got.describe_status() + repr(got.stdout)
    readelf_clean(out)

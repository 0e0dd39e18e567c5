"""`devlink build` where the file system works against it: a copied project, added
inputs that are no files, huge garbage, folders it cannot write, a compiler that writes
nothing, temporary files left by a kill.  Each one is a regression test of a defect
found by probing devlink from outside (issue 16): the build must give a correct
program or one line saying what is wrong, never a stale program or a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_bad_input import CC, OLD_OUTPUT, check_fails, devlink
from watch_helpers import WatchProcess

pytestmark = pytest.mark.skipif(CC is None, reason="needs cc")

HELLO = '#include <stdio.h>\nint main(void) { puts("%s"); return 0; }\n'


def run(prog: Path) -> str:
    return subprocess.run([str(prog)], capture_output=True, text=True, timeout=30).stdout


def one_error_line(p) -> str:
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("devlink: error: "), p.stderr
    return lines[0]


def unprivileged() -> list[str]:
    """A command prefix under which folder permissions hold: as root, without the
    capabilities that override them."""
    if os.getuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def devlink_unprivileged(*args, cwd, env=None):
    e = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), **(env or {}))
    return subprocess.run([*unprivileged(), sys.executable, "-m", "devlink", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=e, timeout=120)


# --- 2. a copied project ------------------------------------------------------------------

def test_copied_project_is_not_up_to_date_with_the_original(tmp_path):
    """`cp -a a b`, edit b: b's build makes b's program (the manifest named a's files,
    whose stats had not changed, so b's build said "up to date")."""
    a = tmp_path / "a"
    a.mkdir()
    (a / "h.c").write_text(HELLO % "from a")
    assert devlink("build", "-o", "h", "h.c", cwd=a).returncode == 0
    b = tmp_path / "b"
    subprocess.run(["cp", "-a", str(a), str(b)], check=True)
    (b / "h.c").write_text(HELLO % "from b")
    p = devlink("build", "-o", "h", "h.c", cwd=b)
    assert p.returncode == 0, p.stderr
    assert "copied or moved" in p.stderr
    assert run(b / "h") == "from b\n" and run(a / "h") == "from a\n"
    # the copy's own state from then on: up to date, then incremental
    p = devlink("build", "-v", "-o", "h", "h.c", cwd=b)
    assert "up to date" in p.stderr, p.stderr
    (b / "h.c").write_text(HELLO % "from b, again")
    p = devlink("build", "-v", "-o", "h", "h.c", cwd=b)
    assert "updated" in p.stderr and run(b / "h") == "from b, again\n", p.stderr


def test_file_replaced_with_the_same_size_and_mtime_is_rebuilt(tmp_path):
    """A restore that keeps size and mtime (tar, rsync -t, cp -p) still changes the
    inode and ctime: the source is recompiled."""
    src = tmp_path / "h.c"
    src.write_text(HELLO % "one")
    assert devlink("build", "-o", "h", "h.c", cwd=tmp_path).returncode == 0
    st = src.stat()
    other = tmp_path / "other.c"
    other.write_text(HELLO % "two")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, src)
    assert devlink("build", "-o", "h", "h.c", cwd=tmp_path).returncode == 0
    assert run(tmp_path / "h") == "two\n"


# --- 3 and 6. inputs checked the same way on both paths -----------------------------------

def _objects(tmp_path):
    (tmp_path / "m.c").write_text('#include <stdio.h>\nint main(void) { puts("m"); return 0; }\n')
    (tmp_path / "x.c").write_text("int x_value = 3;\n")
    subprocess.run([CC, "-c", "-fPIC", "x.c", "-o", "x.o"], cwd=tmp_path, check=True)


@pytest.mark.parametrize("what", ["missing", "directory", "fifo", "zeros"])
def test_added_input_is_checked_like_a_fresh_one(tmp_path, what):
    """An input added to an incremental build that is missing, a directory, a FIFO or
    not an object gets the fresh link's own error line (it was ignored: exit 0)."""
    _objects(tmp_path)
    assert devlink("build", "-o", "p", "m.c", cwd=tmp_path).returncode == 0
    bad = tmp_path / "bad.o"
    if what == "directory":
        bad.mkdir()
    elif what == "fifo":
        os.mkfifo(bad)
    elif what == "zeros":
        bad.write_bytes(bytes(4096))
    before = (tmp_path / "p").read_bytes()
    incremental = one_error_line(devlink("build", "-o", "p", "m.c", "bad.o", cwd=tmp_path, timeout=30))
    assert "bad.o" in incremental
    assert (tmp_path / "p").read_bytes() == before
    fresh = one_error_line(devlink("build", "-o", "q", "m.c", "bad.o", cwd=tmp_path, timeout=30))
    assert fresh == incremental


def test_input_that_turns_into_garbage_gets_the_fresh_links_words(tmp_path):
    """A linked .o replaced by garbage: the incremental path says what a fresh link says."""
    _objects(tmp_path)
    assert devlink("build", "-o", "p", "m.c", "x.o", cwd=tmp_path).returncode == 0
    (tmp_path / "x.o").write_bytes(b"\0" * 10000)
    incremental = one_error_line(devlink("build", "-o", "p", "m.c", "x.o", cwd=tmp_path))
    fresh = one_error_line(devlink("build", "-o", "q", "m.c", "x.o", cwd=tmp_path))
    assert incremental == fresh and "x.o" in fresh


def test_huge_garbage_input_is_refused_from_its_header(tmp_path):
    """A 2 GB zero-filled .o (sparse: no disk) is refused at once, without reading it:
    devlink read the whole file first (3 GB: 3.1 GB of memory and 17 s)."""
    _objects(tmp_path)
    big = tmp_path / "big.o"
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    script = ("import resource, subprocess, sys, time\n"
              "t = time.monotonic()\n"
              "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
              "print(p.returncode, time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
              "print(p.stderr, end='')\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    p = subprocess.run([sys.executable, "-c", script, sys.executable, "-m", "devlink", "build", "-o", "q", "x.o",
                        "big.o"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    head, _, stderr = p.stdout.partition("\n")
    rc, seconds, max_kb = head.split()
    assert rc == "1" and "big.o" in stderr and "Traceback" not in stderr, p.stdout
    assert int(max_kb) < 400_000, f"{max_kb} KB to refuse a file of zeros"
    assert float(seconds) < 20


def test_truncated_elf_is_refused_before_it_is_read(tmp_path):
    """An ELF header whose section table lies past the end of the file: refused."""
    _objects(tmp_path)
    data = bytearray((tmp_path / "x.o").read_bytes())
    (tmp_path / "cut.o").write_bytes(bytes(data[:len(data) // 2]))
    line = check_fails(tmp_path, _old(tmp_path), "cut.o", must_name=("cut.o",))
    assert "truncated" in line


def _old(tmp_path) -> Path:
    out = tmp_path / "prog"
    out.write_bytes(OLD_OUTPUT)
    return out


# --- 4. folders devlink cannot write, a compiler that writes nothing ----------------------

def test_unwritable_output_folder_is_one_line(tmp_path):
    (tmp_path / "h.c").write_text(HELLO % "x")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        line = one_error_line(devlink_unprivileged("build", "-o", "out/h", "h.c", cwd=tmp_path))
    finally:
        out.chmod(0o755)
    assert str(out) in line and "writable" in line


def test_unwritable_home_builds_with_a_private_runtime_cache(tmp_path):
    """HOME read-only: the runtime object is cached in a private folder instead (it was
    a PermissionError traceback from os.makedirs)."""
    (tmp_path / "h.c").write_text(HELLO % "home")
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    env = {"HOME": str(home), "XDG_CACHE_HOME": "", "TMPDIR": str(tmp_path)}
    try:
        p = devlink_unprivileged("build", "-o", "h", "h.c", cwd=tmp_path, env=env)
    finally:
        home.chmod(0o755)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert run(tmp_path / "h") == "home\n"
    assert list(tmp_path.glob(f"devlink-{os.getuid()}/runtime-*.o")), "runtime not cached in the private folder"


def read_only_mount(path: Path, but: Path | None = None) -> list[str]:
    """A command prefix that runs the command with `path` mounted read-only except its
    subfolder `but` (a private mount namespace; needs root).  Permissions alone do
    not do: devlink makes its state folders 0700 again, as their owner may."""
    script = ('mount --bind "$2" "$2" && mount --rbind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" '
              '&& shift 2 && exec "$@"')
    prefix = ["unshare", "-m", "--", "sh", "-c", script, "sh", str(path), str(but or path)]
    if shutil.which("unshare") is None or subprocess.run(prefix + ["true"], capture_output=True).returncode:
        pytest.skip("cannot mount a folder read-only here (needs root and unshare)")
    return prefix


def test_unwritable_state_folder_still_builds_the_program(tmp_path):
    """The state folder cannot take the state (read-only here; a full disk the same):
    the edit still reaches the program (a full link, with one notice), where
    save_state raised a traceback.  Its objects folder stays writable."""
    (tmp_path / "h.c").write_text(HELLO % "one")
    assert devlink("build", "-o", "h", "h.c", cwd=tmp_path).returncode == 0
    sdir = tmp_path / ".devlink" / "h"
    (tmp_path / "h.c").write_text(HELLO % "two")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    p = subprocess.run([*read_only_mount(sdir, sdir / "obj"), sys.executable, "-m", "devlink", "build", "-o", "h", "h.c"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert [ln for ln in p.stderr.splitlines()] == [
        f"devlink: cannot save the link state in {sdir} (Read-only file system); the next build links from scratch"]
    assert run(tmp_path / "h") == "two\n"
    assert not [f for f in os.listdir(sdir) if f.endswith(".tmp")]
    # writable again: the next build recovers
    (tmp_path / "h.c").write_text(HELLO % "three")
    p = devlink("build", "-o", "h", "h.c", cwd=tmp_path)
    assert p.returncode == 0 and run(tmp_path / "h") == "three\n", p.stderr


def test_read_only_state_and_objects_folder_is_one_line(tmp_path):
    """Nowhere to write the new object either: one line naming the folder."""
    (tmp_path / "h.c").write_text(HELLO % "one")
    assert devlink("build", "-o", "h", "h.c", cwd=tmp_path).returncode == 0
    sdir = tmp_path / ".devlink" / "h"
    (tmp_path / "h.c").write_text(HELLO % "two")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    p = subprocess.run([*read_only_mount(sdir), sys.executable, "-m", "devlink", "build", "-o", "h", "h.c"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    line = one_error_line(p)
    assert str(sdir / "obj") in line and "writable" in line
    assert run(tmp_path / "h") == "one\n"


def _compiler_that_writes_nothing(tmp_path) -> Path:
    cc = tmp_path / "nocc"
    cc.write_text("#!/bin/sh\nexit 0\n")
    cc.chmod(0o755)
    return cc


def test_compiler_that_writes_no_object_is_one_line(tmp_path):
    (tmp_path / "h.c").write_text(HELLO % "x")
    cc = _compiler_that_writes_nothing(tmp_path)
    line = one_error_line(devlink("build", "-o", "h", "h.c", cwd=tmp_path, env={"CC": str(cc)}))
    assert "h.c" in line and "wrote no object" in line


def test_compiler_that_writes_no_object_leaves_no_stale_object(tmp_path):
    """The object of the last good compile is not taken for the new one (same
    compiler, which once writes nothing)."""
    cc = tmp_path / "flaky-cc"
    cc.write_text(f'#!/bin/sh\n[ -e "{tmp_path}/skip" ] && exit 0\nexec {CC} "$@"\n')
    cc.chmod(0o755)
    env = {"CC": str(cc)}
    (tmp_path / "h.c").write_text(HELLO % "good")
    assert devlink("build", "-o", "h", "h.c", cwd=tmp_path, env=env).returncode == 0
    (tmp_path / "h.c").write_text(HELLO % "newer")
    (tmp_path / "skip").touch()
    one_error_line(devlink("build", "-o", "h", "h.c", cwd=tmp_path, env=env))
    (tmp_path / "skip").unlink()
    assert devlink("build", "-o", "h", "h.c", cwd=tmp_path, env=env).returncode == 0
    assert run(tmp_path / "h") == "newer\n"


def test_watch_with_a_compiler_that_writes_nothing(tmp_path):
    """`devlink watch` says what is wrong and stops cleanly (it was a FileNotFoundError,
    then `RuntimeError: cannot join thread before it is started`)."""
    (tmp_path / "h.c").write_text(HELLO % "x")
    cc = _compiler_that_writes_nothing(tmp_path)
    (tmp_path / "devlink.toml").write_text(f'sources = ["*.c"]\ncc = "{cc}"\n')
    w = WatchProcess(tmp_path)
    try:
        w.expect_log("wrote no object", timeout=60)
    finally:
        rc = w.stop()
    log = "\n".join(w.log)
    assert "Traceback" not in log and "RuntimeError" not in log, log
    assert rc in (0, 130), log


# --- 5. temporary files of a killed devlink -----------------------------------------------

def test_stale_temporary_files_are_removed(tmp_path):
    (tmp_path / "h.c").write_text(HELLO % "x")
    assert devlink("build", "-o", "h", "h.c", cwd=tmp_path).returncode == 0
    sdir = tmp_path / ".devlink" / "h"
    dead = subprocess.Popen(["true"])
    dead.wait()                               # a pid that no longer runs
    stale = [sdir / f"state.pickle.{dead.pid}.tmp", sdir / f"manifest.{dead.pid}.tmp",
             sdir / f"journal.{dead.pid}.tmp", tmp_path / f".h.devlink-{dead.pid}.tmp"]
    live = [sdir / f"state.pickle.{os.getpid()}.tmp"]          # this test runs: left alone
    for f in stale + live:
        f.write_bytes(b"x" * 1000)
    p = devlink("build", "-v", "-o", "h", "h.c", cwd=tmp_path)
    assert p.returncode == 0 and "up to date" in p.stderr, p.stderr
    assert [f for f in stale if f.exists()] == []
    assert all(f.exists() for f in live)


# --- 11. error texts -----------------------------------------------------------------------

USES_MISSING = "extern int nothere(void);\nint main(void) { return nothere(); }\n"


@pytest.mark.parametrize("path", ["fresh", "incremental"])
def test_link_error_names_the_source_and_no_running_program(tmp_path, path):
    """`devlink build` says `u.c`, not `.devlink/u/obj/u-fc1645af.o`, and does not say
    the program keeps running (none runs)."""
    src = tmp_path / "u.c"
    if path == "incremental":
        src.write_text("int main(void) { return 0; }\n")
        assert devlink("build", "-o", "u", "u.c", cwd=tmp_path).returncode == 0
    src.write_text(USES_MISSING)
    line = one_error_line(devlink("build", "-o", "u", "u.c", cwd=tmp_path))
    assert "nothere" in line and "referenced by u.c)" in line, line
    assert ".devlink" not in line and "keeps running" not in line and "last good code" not in line


def test_compiler_text_around_json_diagnostics_has_no_stray_brackets(tmp_path):
    """gcc prints `cc1: error: ...` and then `[]` (its JSON diagnostics, empty): the
    text is shown, the `[]` is not."""
    (tmp_path / "u.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "devlink.toml").write_text('sources = ["*.c"]\ncflags = "-O9x"\n')
    w = WatchProcess(tmp_path)
    try:
        w.expect_log("compiling .*u.c failed", timeout=60)
    finally:
        w.stop()
    log = "\n".join(w.log)
    assert "argument to" in log and "-O" in log, log
    assert "[]" not in log and '"kind"' not in log, log


def test_watch_link_error_names_the_source(tmp_path):
    (tmp_path / "u.c").write_text(USES_MISSING)
    (tmp_path / "devlink.toml").write_text('sources = ["*.c"]\n')
    w = WatchProcess(tmp_path)
    try:
        line = w.expect_log("undefined symbol", timeout=60)
    finally:
        w.stop()
    assert "referenced by u.c" in line and ".devlink" not in line, line

"""A project folder that comes with a `.devlink/` (a repository, a tarball, a shared
folder) must not make devlink run code, trust another user's state, or write outside
the project.

- Planted files: for every file devlink reads back from `.devlink/` (link state,
  manifest, journal, DWARF cache) a pickle whose unpickling would create a marker file,
  in the old checksum-only frame and in a frame MAC'd under another user's key: nothing
  runs, the build says so in one line and produces the right program, and the state is
  whole again afterwards.
- A state copied with the project from another user (another key) is not trusted.
- `.devlink/` is 0700 and what devlink writes there 0600; the key is 0600.
- A symlink planted for `.devlink`, `.devlink/<program>`, a compiler output, the session
  lock, the program log or the socket pointer is refused or replaced, never written
  through.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

import helpers

CC = helpers.find_cc()
pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler")

MAIN = r"""#include <stdio.h>
int f(int);
int main(void) { printf("f=%d\n", f(1)); return 0; }
"""
LIB = "int pad0(int x) { return x * 3; }\nint pad1(int x) { return x - 7; }\nint f(int x) { return x + 1; }\n"
LIB2 = LIB.replace("x + 1", "x + 2")


class Payload:
    """Unpickling this runs `touch MARKER`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def env_for(key_home: Path) -> dict:
    return helpers.devlink_env({"XDG_CONFIG_HOME": str(key_home)})


def build(root: Path, key_home: Path, verbose: bool = True) -> subprocess.CompletedProcess:
    return helpers.run_devlink("build", *(["-v"] if verbose else []), "-o", "prog", "main.c", "lib.c",
                               cwd=root, env=env_for(key_home))


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    return r.stderr


def output_of(root: Path) -> str:
    return subprocess.run([str(root / "prog")], capture_output=True, text=True, timeout=20).stdout


def set_lib(root: Path, text: str) -> None:
    p = root / "lib.c"
    old = p.stat().st_mtime_ns if p.exists() else 0
    p.write_text(text)
    st = p.stat()
    if st.st_mtime_ns <= old:
        os.utime(p, ns=(st.st_atime_ns, old + 1_000_000))


@pytest.fixture
def project(tmp_path):
    """(project folder, this user's key home), built once."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "main.c").write_text(MAIN)
    (root / "lib.c").write_text(LIB)
    home = tmp_path / "config"
    ok(build(root, home))
    assert output_of(root) == "f=2\n"
    return root, home


def foreign_frame(magic: bytes, body: bytes, other_home: Path, monkeypatch) -> bytes:
    """`body` framed as devlink frames its files, MAC'd under another user's key."""
    from devlink import private
    from devlink.link import state as st
    monkeypatch.setenv("XDG_CONFIG_HOME", str(other_home))
    private.forget_key()
    try:
        return b"".join(bytes(p) for p in st.frame(magic, body))
    finally:
        monkeypatch.undo()
        private.forget_key()


def checksum_frame(magic: bytes, body: bytes) -> bytes:
    """The frame with the unkeyed checksum anyone can compute (devlink's first format)."""
    from devlink.link import state as st
    head = struct.pack("<4sI", magic, st.STATE_VERSION)
    return head + hashlib.blake2b(head + body, digest_size=32).digest() + body


# ------------------------------------------------------------------------- planted files

PLANTED = {
    "state.pickle": b"DLST",
    "manifest": b"DLMF",
    "journal": b"DLJR",
}


@pytest.mark.parametrize("name", sorted(PLANTED))
@pytest.mark.parametrize("framing", ["checksum", "other-key", "raw"])
def test_planted_pickle_runs_nothing(project, tmp_path, monkeypatch, name, framing):
    root, home = project
    marker = tmp_path / "marker"
    payload = pickle.dumps(Payload(marker))
    blob = {"checksum": lambda: checksum_frame(PLANTED[name], payload),
            "other-key": lambda: foreign_frame(PLANTED[name], payload, tmp_path / "other", monkeypatch),
            "raw": lambda: payload}[framing]()
    sdir = root / ".devlink" / "prog"
    (sdir / name).write_bytes(blob)
    before = (root / "prog").read_bytes()
    set_lib(root, LIB2)
    err = ok(build(root, home, verbose=False))
    assert not marker.exists(), f"the planted {name} ran its payload"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) <= 1 and all(ln.startswith("devlink: ") and "relinking from scratch" in ln for ln in lines), err
    if name != "journal":
        assert len(lines) == 1, f"a planted {name} was not reported: {err!r}"
    assert output_of(root) == "f=3\n"
    assert (root / "prog").read_bytes() != before
    assert not (sdir / "journal").exists()
    # the state is whole again: the next build has nothing to do
    assert "up to date" in ok(build(root, home))


def test_planted_journal_writes_nothing_into_the_output(project, tmp_path, monkeypatch):
    """A journal under another key whose writes would change the program: ignored."""
    root, home = project
    before = (root / "prog").read_bytes()
    size = len(before)
    body = struct.pack("<QI", size, 1) + struct.pack("<QI", 0, 4) + b"\x7fBAD"
    (root / ".devlink" / "prog" / "journal").write_bytes(foreign_frame(b"DLJR", body, tmp_path / "o", monkeypatch))
    assert "up to date" in ok(build(root, home))
    assert (root / "prog").read_bytes() == before
    assert not (root / ".devlink" / "prog" / "journal").exists()


def test_planted_manifest_cannot_claim_up_to_date(project, tmp_path, monkeypatch):
    """Another user's manifest that says the edited source is fresh is not believed
    (believed, the build would say "up to date" and keep the old program)."""
    import json

    from devlink import private
    from devlink.link import state as st
    root, home = project
    sdir = root / ".devlink" / "prog"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    private.forget_key()
    try:
        manifest = st.load_manifest(str(sdir))
    finally:
        monkeypatch.undo()
        private.forget_key()
    set_lib(root, LIB2)
    src = str(root / "lib.c")
    now = [os.stat(src).st_size, os.stat(src).st_mtime_ns]
    for entry in manifest["sources"].values():
        if src in entry["deps"]:
            entry["deps"][src] = now
    manifest["stats"][src] = now
    (sdir / "manifest").write_bytes(foreign_frame(b"DLMF", json.dumps(manifest).encode(), tmp_path / "o", monkeypatch))
    err = ok(build(root, home))
    assert "up to date" not in err and "relinking from scratch" in err, err
    assert output_of(root) == "f=3\n"


def test_planted_dwarf_cache_runs_nothing(tmp_path, monkeypatch):
    from devlink import private
    from devlink.dwarf.index import DwarfIndexCache, content_hash
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    private.forget_key()
    try:
        src = helpers.write(tmp_path / "t.c", "int g = 3;\nint f(int x) { return x + g; }\n")
        obj = tmp_path / "t.o"
        subprocess.run([CC, "-c", "-g", str(src), "-o", str(obj)], check=True)
        data = obj.read_bytes()
        key = content_hash(data)
        cdir = tmp_path / ".devlink" / "dwarf"
        cdir.mkdir(parents=True)
        marker = tmp_path / "marker"
        for planted in (pickle.dumps(Payload(marker)), b"\0" * 32 + pickle.dumps(Payload(marker))):
            (cdir / f"{key}.pkl").write_bytes(planted)
            cache = DwarfIndexCache(cdir)
            assert cache.get_cached(key) is None
            assert "f" in cache.get("t.o", data).functions        # rebuilt, and stored as ours
            assert not marker.exists()
        assert DwarfIndexCache(cdir).get_cached(key) is not None
        assert stat.S_IMODE((cdir / f"{key}.pkl").stat().st_mode) == 0o600
        # another user's cache file (another key) is not read either
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "other"))
        private.forget_key()
        assert DwarfIndexCache(cdir).get_cached(key) is None
    finally:
        private.forget_key()


def test_state_copied_from_another_user_is_not_trusted(project, tmp_path):
    root, home = project
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    set_lib(copy, LIB2)
    err = ok(build(copy, tmp_path / "other-user", verbose=False))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "relinking from scratch" in lines[0] and "manifest" in lines[0], err
    assert output_of(copy) == "f=3\n"
    # and it is that user's state now: an edit is an update
    set_lib(copy, LIB)
    assert "updated prog" in ok(build(copy, tmp_path / "other-user"))
    assert output_of(copy) == "f=2\n"


# ---------------------------------------------------------------------------- permissions

def _modes(top: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            out[str(p.relative_to(top))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_state_folder_and_files_are_private(project):
    root, home = project
    set_lib(root, LIB2)
    ok(build(root, home))
    assert stat.S_IMODE((root / ".devlink").stat().st_mode) == 0o700
    modes = _modes(root / ".devlink")
    assert any(k.endswith(".o") for k in modes) and "prog/manifest" in modes and "prog/state.pickle" in modes
    wrong = {k: oct(m) for k, m in modes.items() if m != (0o700 if (root / ".devlink" / k).is_dir() else 0o600)}
    assert not wrong, f"not private: {wrong}"
    key = home / "devlink" / "state-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700


def test_an_older_devlinks_open_folder_is_made_private(project):
    root, home = project
    os.chmod(root / ".devlink", 0o755)
    os.chmod(root / ".devlink" / "prog", 0o755)
    set_lib(root, LIB2)
    ok(build(root, home))
    assert stat.S_IMODE((root / ".devlink").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / ".devlink" / "prog").stat().st_mode) == 0o700


def test_a_key_others_can_read_is_replaced(project):
    root, home = project
    key = home / "devlink" / "state-key"
    old = key.read_bytes()
    os.chmod(key, 0o644)
    set_lib(root, LIB2)
    err = ok(build(root, home, verbose=False))
    assert "relinking from scratch" in err          # what the old key signed is not trusted
    assert key.read_bytes() != old and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert output_of(root) == "f=3\n"


def test_session_files_are_private(tmp_path, monkeypatch):
    """The session lock, the control socket, the socket pointer and the program log."""
    from devlink.lsp.backend import StandaloneBackend
    from devlink.watch.control import ControlServer, SessionLock
    root = tmp_path / "p"
    root.mkdir()
    (root / "main.c").write_text(MAIN.replace("f(1)", "1") .replace("int f(int);\n", ""))
    lock = SessionLock(str(root))
    lock.acquire()
    server = ControlServer(str(root), lambda r: {"ok": True})
    server.start()
    backend = StandaloneBackend(str(root))
    try:
        modes = _modes(root / ".devlink")
        assert stat.S_IMODE((root / ".devlink").stat().st_mode) == 0o700
        assert modes["session.lock"] == 0o600 and modes["session.sock"] == 0o600 and modes["program.log"] == 0o600
    finally:
        backend.log.close()
        server.close()
        lock.release()


# ------------------------------------------------------------------------------- symlinks

@pytest.mark.parametrize("which", [".devlink", ".devlink/prog", ".devlink/prog/obj"])
def test_symlinked_state_folder_is_refused(project, tmp_path, which):
    root, home = project
    outside = tmp_path / "outside"
    outside.mkdir()
    target = root / which
    shutil.rmtree(target)
    target.symlink_to(outside)
    set_lib(root, LIB2)
    r = build(root, home)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "symbolic link" in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert list(outside.iterdir()) == [], "devlink wrote through the link"


def test_planted_link_at_a_compiler_output_is_not_written_through(project, tmp_path):
    root, home = project
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    obj = next((root / ".devlink" / "prog" / "obj").glob("lib-*.o"))
    dep = obj.with_suffix(".d")
    obj.unlink()
    obj.symlink_to(victim)
    dep.unlink()
    dep.symlink_to(victim)
    set_lib(root, LIB2)
    ok(build(root, home))
    assert victim.read_text() == "precious\n"
    assert not obj.is_symlink() and output_of(root) == "f=3\n"


def test_planted_link_at_state_files_is_replaced_not_followed(project, tmp_path):
    root, home = project
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    sdir = root / ".devlink" / "prog"
    for name in ("manifest", "state.pickle", f"manifest.{os.getpid()}.tmp"):
        p = sdir / name
        if p.exists():
            p.unlink()
        p.symlink_to(victim)
    set_lib(root, LIB2)
    ok(build(root, home))
    assert victim.read_text() == "precious\n"
    assert not (sdir / "manifest").is_symlink() and output_of(root) == "f=3\n"


def test_planted_session_links_are_refused(tmp_path):
    from devlink.errors import DevlinkError
    from devlink.lsp.backend import StandaloneBackend
    from devlink.watch.control import SessionClient, SessionLock
    root = tmp_path / "p"
    (root / ".devlink").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (root / ".devlink" / "session.lock").symlink_to(victim)
    with pytest.raises(DevlinkError, match="symbolic link"):
        SessionLock(str(root)).acquire()
    (root / ".devlink" / "program.log").symlink_to(victim)
    with pytest.raises(DevlinkError, match="symbolic link"):
        StandaloneBackend(str(root))
    assert victim.read_text() == "precious\n"
    # a socket pointer naming a socket outside devlink's private folder
    (root / ".devlink" / "session.sock").write_text(str(tmp_path / "someone-elses.sock"))
    with pytest.raises(DevlinkError, match="outside devlink's private folder"):
        SessionClient(str(root))


def test_watch_refuses_a_symlinked_state_folder(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "main.c").write_text("int main(void) { return 0; }\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / ".devlink").symlink_to(outside)
    r = subprocess.run(helpers.devlink_command("watch", str(root)), capture_output=True, text=True, timeout=60,
                       env=helpers.devlink_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    assert "symbolic link" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert list(outside.iterdir()) == []


def test_running_session_files_are_private(c_project):
    """Session objects, the program's copy (0700: it runs), the DWARF cache."""
    c_project.write("main.c", "#include <stdio.h>\n#include <unistd.h>\nint step(int i) { return i + 1; }\n"
                    "int main(void) { for (int i = 0;; i = step(i)) { printf(\"n %d\\n\", i); fflush(stdout);"
                    " usleep(20000); } }\n")
    c_project.start()
    c_project.expect_output(r"n 2")
    gen = c_project.edit("main.c", "return i + 1;", "return i + 2;")
    assert gen.patched
    top = c_project.root / ".devlink"
    modes = _modes(top)
    assert any(k.startswith("prog/session/") and k.endswith(".o") for k in modes), modes
    assert modes["prog/run/prog"] == 0o700
    wrong = {k: oct(m) for k, m in modes.items()
             if m != (0o700 if (top / k).is_dir() or k == "prog/run/prog" else 0o600)}
    assert not wrong and stat.S_IMODE(top.stat().st_mode) == 0o700, f"not private: {wrong}"

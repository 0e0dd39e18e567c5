"""The session's files and configuration under hostile conditions (issue 16): another
user's folder where the socket goes, an `output` that points out of the project."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devlink.errors import DevlinkError
from devlink.watch import config as cfgmod
from devlink.watch.control import ControlServer, SessionClient


# --- 4. the socket's fallback folder, planted by another user -----------------------------

@pytest.fixture
def long_project(tmp_path):
    """A project whose .devlink/session.sock is too long for sun_path (the socket
    then lives in a private folder under XDG_RUNTIME_DIR)."""
    root = tmp_path / ("p" * 60) / ("q" * 60)
    (root / ".devlink").mkdir(parents=True)       # made by the session's lock
    return root


@pytest.mark.parametrize("planted", ["other user", "symlink", "open to all"])
def test_socket_fallback_folder_planted_by_someone_else(tmp_path, long_project, monkeypatch, planted):
    """`/run/user/UID/devlink-UID` made first by another user (or a symlink, or a
    folder open to all): the session binds in a folder it owns (os.chmod raised
    PermissionError: any local user could block everyone else's sessions)."""
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    trap = run / f"devlink-{os.getuid()}"
    if planted == "other user":
        if os.getuid() != 0:
            pytest.skip("making a folder owned by another user needs root")
        trap.mkdir(mode=0o777)
        os.chown(trap, 65534, 65534)
    elif planted == "symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        trap.symlink_to(elsewhere)
    else:
        trap.mkdir()
        trap.chmod(0o777)
    server = ControlServer(str(long_project), lambda req: {"ok": True, "echo": req["cmd"]})
    server.start()
    try:
        where = Path(server.path).parent
        st = os.lstat(where)
        assert st.st_uid == os.getuid() and not st.st_mode & 0o077
        if planted != "open to all":
            assert where != trap and where.parent == run
        with SessionClient(str(long_project)) as c:
            assert c.request("status") == {"ok": True, "echo": "status"}
    finally:
        server.close()
    if planted != "open to all":
        assert not where.exists(), "the session's own folder was left behind"


# --- 9. an output outside the project -----------------------------------------------------

def _project(tmp_path, toml: str) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "main.c").write_text("int main(void) { return 0; }\n")
    (root / "devlink.toml").write_text('sources = ["*.c"]\n' + toml)
    return root


@pytest.mark.parametrize("output", ["/tmp/elsewhere/prog", "../../prog", "../prog"])
def test_output_outside_the_project_is_refused(tmp_path, output):
    root = _project(tmp_path, f'output = "{output}"\n')
    with pytest.raises(DevlinkError) as e:
        cfgmod.load_config(str(root))
    msg = str(e.value)
    where = os.path.normpath(os.path.join(root, output))
    assert msg.startswith(f"{root / 'devlink.toml'}:2: output") and where in msg and "allow_output_outside" in msg


def test_output_through_a_symlink_out_of_the_project_is_refused(tmp_path):
    root = _project(tmp_path, 'output = "out/prog"\n')
    (root / "out").symlink_to(tmp_path)
    with pytest.raises(DevlinkError, match="outside the project"):
        cfgmod.load_config(str(root))


def test_output_outside_allowed_explicitly_and_said(tmp_path):
    root = _project(tmp_path, 'output = "../bin/prog"\nallow_output_outside = true\n')
    cfg = cfgmod.load_config(str(root))
    assert cfg.output == str(tmp_path / "bin" / "prog")
    assert any(str(tmp_path / "bin" / "prog") in n and "outside the project" in n for n in cfg.notes)


def test_output_inside_the_project_needs_nothing(tmp_path):
    root = _project(tmp_path, 'output = "build/../bin/prog"\n')
    cfg = cfgmod.load_config(str(root))
    assert cfg.output == str(root / "bin" / "prog") and cfg.notes == []


def test_allow_output_outside_must_be_a_boolean(tmp_path):
    root = _project(tmp_path, 'output = "../p"\nallow_output_outside = "yes"\n')
    with pytest.raises(DevlinkError, match="allow_output_outside must be true or false"):
        cfgmod.load_config(str(root))


# --- 10. hostile requests on the control socket ---------------------------------------------

HOSTILE = [
    b'{"cmd": "read", "address": 1180591620717411303424, "size": 8}',     # 2**70
    b'{"cmd": "read", "address": -1, "size": 8}',
    b'{"cmd": "read", "address": 9223372036854775807, "size": 8}',       # 2**63 - 1
    b'{"cmd": "read", "address": 1e400, "size": 8}',
    b'{"cmd": "read", "address": "0x401000", "size": 8}',
    b'{"cmd": "read", "address": 4198400, "size": 100000000000000000000}',
    b'{"cmd": "read", "address": 4198400, "size": true}',
    b'{"cmd": "symbol", "name": "main", "line": 1e400}',
    b'{"cmd": "symbol", "name": {"a": 1}}',
    b'{"cmd": "lenses", "file": ["x"]}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"cmd": "status", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"cmd": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    b'{"cmd": "status"' + b" " * (2 << 20) + b"}",                      # a 2 MB line
    b"\xff\xfe not json",
    b'{"cmd": 7}',
    b'{"cmd": "no such command"}',
    b"null",
]


def test_hostile_requests_get_the_protocols_own_errors(tmp_path):
    """Every hostile line is answered `{"ok": false, "error": ...}` naming what is wrong
    (`bad request: ...`, or the command's own error), never `internal error:
    OverflowError/RecursionError`; the session answers normally afterwards."""
    import socket
    from helpers import devlink_env  # noqa: F401  (watch_helpers needs it importable)
    from watch_helpers import WatchProcess
    (tmp_path / "main.c").write_text('#include <stdio.h>\n#include <unistd.h>\nint v = 3;\n'
                                     'int main(void) { for (;;) { printf("v %d\\n", v); fflush(stdout); sleep(1); } }\n')
    w = WatchProcess(tmp_path)
    try:
        w.expect(r"v 3", timeout=60)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(20)
        sock.connect(str(tmp_path / ".devlink" / "session.sock"))
        f = sock.makefile("rwb")
        for line in HOSTILE:
            f.write(line + b"\n")
            f.flush()
            reply = json.loads(f.readline())
            assert reply["ok"] is False, (line[:80], reply)
            assert "internal error" not in reply["error"] and "Error" not in reply["error"], (line[:80], reply)
            assert len(reply["error"]) < 300, reply
        f.write(b'{"cmd": "status"}\n')
        f.flush()
        assert json.loads(f.readline())["state"] == "running"
        sock.close()
    finally:
        w.stop()


# --- 7. an edit that never returns, under devlink watch ----------------------------------

def test_watch_reports_an_edit_that_never_returns_and_status_says_stuck(tmp_path):
    import subprocess
    import sys
    from helpers import devlink_env
    from watch_helpers import WatchProcess, save_rename
    src = tmp_path / "main.c"
    src.write_text('#include <stdio.h>\n#include <unistd.h>\nvolatile long work;\n'
                   'void step(int i) { work += i; }\n'
                   'int main(void) { for (int i = 0;; i++) { step(i); printf("tick %d\\n", i); fflush(stdout); '
                   'usleep(20000); } }\n')
    w = WatchProcess(tmp_path)
    try:
        w.expect(r"tick 5", timeout=60)
        mark = w.mark()
        save_rename(src, src.read_text().replace("work += i; }", "work += i; if (i > 0) for (;;) work++; }"))
        line = w.expect_log(r"without returning", timeout=30, start=mark)
        assert "in step (generation 2)" in line and "press r" in line, line
        r = subprocess.run([sys.executable, "-m", "devlink", "status", str(tmp_path)], capture_output=True,
                           text=True, env=devlink_env(), timeout=30)
        assert ": stuck (pid " in r.stdout and "in step (generation 2)" in r.stdout, r.stdout + r.stderr
    finally:
        w.stop()

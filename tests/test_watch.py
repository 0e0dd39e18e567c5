"""`devlink watch` driven as a subprocess on temporary projects: edits land in the
running program with its state kept, whatever way the editor saves; compile errors keep
the old code; headers recompile their dependents; new files are linked in; one session
per project, reachable through its socket."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import devlink_env, find_cc, write
from watch_helpers import WatchProcess, save_partial, save_rename, save_truncate

pytestmark = pytest.mark.skipif(find_cc() is None, reason="needs a C compiler")

MAIN = r"""
#include <stdio.h>
#include <unistd.h>
#include "shape.h"
int counter;                        /* state that must survive every patch */
const char *message(void);
int sides(void) { return SIDES; }   /* called each time round: a header edit reaches it */
int main(void) {
    for (;;) {
        counter++;
        printf("%s %d %d\n", message(), sides(), counter);
        fflush(stdout);
        usleep(20000);
    }
}
"""


def message_c(word: str) -> str:
    return f'#include "shape.h"\nconst char *message(void) {{ return "{word}"; }}\n'


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "demo"
    root.mkdir()
    write(root / "main.c", MAIN)
    write(root / "shape.h", "#define SIDES 3\n")
    write(root / "message.c", message_c("alpha"))
    return root


@pytest.fixture
def watch(project):
    procs = []

    def start(*args, root=None, env=None):
        w = WatchProcess(root or project, args, env=env)
        procs.append(w)
        return w

    yield start
    for w in procs:
        w.stop()


def counter_after(w: WatchProcess, word: str) -> int:
    return int(w.expect(rf"^{word} \d+ (\d+)$").group(1))


@pytest.mark.parametrize("save", [save_rename, save_truncate, save_partial], ids=["rename", "truncate", "partial"])
def test_edit_lands_in_running_program_with_state_kept(project, watch, save):
    w = watch()
    before = counter_after(w, "alpha")
    save(project / "message.c", message_c("beta"))
    after = counter_after(w, "beta")
    assert after > before, "the counter restarted: the program lost its state"
    line = w.expect_log(r"gen \d+ · message\.c · 1 changed")
    assert re.search(r"compile \d+ ms · link [\d.]+ ms · patch [\d.]+ ms", line)
    # one save is one update, however many events the editor made
    time.sleep(0.5)
    assert sum(1 for l in w.log if " gen " in l) == 1, w.log


def test_compile_error_keeps_old_code_and_fix_recovers(project, watch):
    w = watch()
    counter_after(w, "alpha")
    mark = w.mark()
    save_rename(project / "message.c", message_c("gamma") + "this is not C\n")
    w.expect_log(r"message\.c:\d+:\d+: error", start=mark)
    w.expect_log(r"failed .*the program keeps its last good code", start=mark)
    w.drain()
    counter_after(w, "alpha")                     # still running the last good code
    save_rename(project / "message.c", message_c("delta"))
    assert counter_after(w, "delta") > 0


def test_header_change_recompiles_its_dependents(project, watch):
    w = watch()
    w.expect(r"^alpha 3 ")
    save_rename(project / "shape.h", "#define SIDES 5\n")
    w.expect(r"^alpha 5 ")
    line = w.expect_log(r"gen \d+ · ")
    assert "main.c" in line and "message.c" in line, line


@pytest.mark.parametrize("first", ["new file", "caller"])
def test_new_source_file_is_linked_in(project, watch, first):
    """A new file joins the running program by an update (its state kept), whether it
    is saved before the file that calls it or after (that save fails, then links)."""
    w = watch()
    before = counter_after(w, "alpha")
    new = lambda: save_rename(project / "extra.c", 'const char *extra_word(void) { return "extra"; }\n')  # noqa: E731
    caller = lambda: save_rename(project / "message.c", '#include "shape.h"\nconst char *extra_word(void);\n'  # noqa: E731
                                 'const char *message(void) { return extra_word(); }\n')
    if first == "new file":
        new()
        w.expect_log(r"extra\.c \(new\) · 0 changed, 1 added")
        caller()
    else:
        caller()
        w.expect_log(r"undefined symbol: 'extra_word'")
        new()
    assert counter_after(w, "extra") > before, "the program restarted"
    assert not any("rebuilding" in line for line in w.log), w.log


def test_second_session_is_refused_with_pid_and_socket_is_private(project, watch):
    w = watch()
    w.expect(r"^alpha ")
    sock = project / ".devlink" / "session.sock"
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    second = subprocess.run([sys.executable, "-m", "devlink", "watch", "--no-keys", str(project)],
                            capture_output=True, text=True, env=devlink_env(), timeout=30)
    assert second.returncode == 1
    assert re.search(r"already running for this project \(pid \d+\)", second.stderr), second.stderr
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    status = subprocess.run([sys.executable, "-m", "devlink", "status", "--json", str(project)],
                            capture_output=True, text=True, env=devlink_env(), timeout=30)
    reply = json.loads(status.stdout)
    assert reply["state"] == "running" and reply["pid"] and reply["generation"] >= 1
    syms = subprocess.run([sys.executable, "-c", "import sys; from devlink.watch.control import SessionClient; "
                           "c = SessionClient(sys.argv[1]); r = c.request('symbols'); "
                           "print(sorted(x['name'] for x in r['symbols'] if x['kind'] == 'function'))", str(project)],
                          capture_output=True, text=True, env=devlink_env(), timeout=30)
    assert "'message'" in syms.stdout, syms.stderr


def test_restart_through_the_socket_resets_state(project, watch):
    w = watch()
    counter_after(w, "alpha")
    time.sleep(0.3)
    r = subprocess.run([sys.executable, "-m", "devlink", "restart", str(project)], capture_output=True, text=True,
                       env=devlink_env(), timeout=30)
    assert r.returncode == 0 and "restarted" in r.stdout, r.stderr
    w.drain()
    # a fresh program counts from 1 again
    assert any(counter_after(w, "alpha") < 10 for _ in range(20))


def test_devlink_toml_and_compiler_launcher(project, watch, tmp_path):
    log = tmp_path / "launcher.log"
    launcher = write(tmp_path / "launch.sh", f'#!/bin/sh\necho "$@" >> {log}\nexec "$@"\n')
    launcher.chmod(0o755)
    write(project / "devlink.toml", f'''
sources = ["*.c"]
defines = ["WORD=\\"toml\\""]
cflags = "-O1 -flto"
output = "bin/demo"
compiler_launcher = "{launcher}"
''')
    save_rename(project / "message.c", '#include "shape.h"\nconst char *message(void) { return WORD; }\n')
    w = watch()
    w.expect(r"^toml ")
    assert (project / "bin" / "demo").exists()
    w.expect_log(r"-flto .*ignored")
    assert "message.c" in log.read_text()


def test_malformed_config_is_one_line_with_file_and_line(project):
    write(project / "devlink.toml", 'sources = ["*.c"]\ncflags = [1, 2]\n')
    r = subprocess.run([sys.executable, "-m", "devlink", "watch", "--no-keys", str(project)], capture_output=True,
                       text=True, env=devlink_env(), timeout=30)
    assert r.returncode == 1
    assert re.fullmatch(r"devlink: error: .*devlink\.toml:2: cflags must be a list of strings\n", r.stderr), r.stderr
    write(project / "devlink.toml", 'sources = ["*.c"\n')
    r = subprocess.run([sys.executable, "-m", "devlink", "watch", "--no-keys", str(project)], capture_output=True,
                       text=True, env=devlink_env(), timeout=30)
    assert r.returncode == 1 and re.search(r"devlink\.toml:1: .*fix the TOML syntax", r.stderr), r.stderr
    assert r.stderr.count("\n") == 1


def test_compile_commands_json_gives_per_file_flags(project, watch):
    entries = [{"directory": str(project), "file": "main.c", "arguments": ["cc", "-c", "main.c", "-o", "main.o"]},
               {"directory": str(project), "file": "message.c",
                "command": "cc -DWORD='\"ccjson\"' -O2 -fno-function-sections -c message.c -o message.o"}]
    write(project / "compile_commands.json", json.dumps(entries))
    save_rename(project / "message.c", '#include "shape.h"\nconst char *message(void) { return WORD; }\n')
    w = watch()
    w.expect(r"^ccjson ")
    w.expect_log(r"-fno-function-sections .*ignored")


def test_ctrl_c_stops_cleanly_and_leaves_no_child(project, watch):
    w = watch()
    w.expect(r"^alpha ")
    status = subprocess.run([sys.executable, "-m", "devlink", "status", "--json", str(project)],
                            capture_output=True, text=True, env=devlink_env(), timeout=30)
    pid = json.loads(status.stdout)["pid"]
    w.stop()
    w.expect_log(r"stopped")
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not (project / ".devlink" / "session.sock").exists()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)")
def test_interactive_keys_in_a_terminal(project, tmp_path):
    """A real terminal (tmux): the update lines render, u undoes, r restarts, q quits."""
    name = f"devlink-test-{os.getpid()}"
    env = devlink_env()
    cmd = f"cd {project} && PYTHONPATH={env['PYTHONPATH']} {sys.executable} -m devlink watch; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "150", "-y", "45", cmd], check=True, env=env)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", name, "-S", "-200"], capture_output=True,
                              text=True).stdout

    def wait_for(pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = screen()
            if re.search(pattern, text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"terminal never showed /{pattern}/:\n{screen()}")

    try:
        wait_for(r"keys: r restart, u undo, q quit")
        wait_for(r"alpha 3 \d+")
        save_rename(project / "message.c", message_c("keys"))
        wait_for(r"gen 2 · message\.c")
        wait_for(r"keys 3 \d+")
        subprocess.run(["tmux", "send-keys", "-t", name, "u"], check=True)
        wait_for(r"undo: message went back.*\n(.*\n)*alpha 3 \d+")
        subprocess.run(["tmux", "send-keys", "-t", name, "r"], check=True)
        wait_for(r"restarted \(pid \d+\)")
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True)
        wait_for(r"devlink stopped")
        assert not (project / ".devlink" / "session.sock").exists()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_unsafe_edit_policy_from_the_command_line(project, watch):
    """--on-unsafe=refuse: a global that changes size is named, nothing is patched, and
    the program runs on; a later safe edit patches normally."""
    write(project / "message.c", '#include "shape.h"\nint hits;\nconst char *message(void) { hits++; return "alpha"; }\n')
    w = watch("--on-unsafe=refuse")
    counter_after(w, "alpha")
    mark = w.mark()
    save_rename(project / "message.c",
                '#include "shape.h"\nlong hits;\nconst char *message(void) { hits++; return "alpha"; }\n')
    w.expect_log(r"not patched \(policy refuse\).*'hits'.*size from 4 to 8", start=mark)
    w.drain()
    counter_after(w, "alpha")
    save_rename(project / "message.c",
                '#include "shape.h"\nint hits;\nconst char *message(void) { hits++; return "omega"; }\n')
    assert counter_after(w, "omega") > 1


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_terminated_watch_leaves_no_program(project, watch, sig):
    """Killed politely (SIGTERM) or its terminal closed (SIGHUP): the program goes too."""
    import signal as signals
    w = watch()
    w.expect(r"^alpha ")
    status = subprocess.run([sys.executable, "-m", "devlink", "status", "--json", str(project)],
                            capture_output=True, text=True, env=devlink_env(), timeout=30)
    pid = json.loads(status.stdout)["pid"]
    w.proc.send_signal(getattr(signals, sig))
    w.proc.wait(10)
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), f"program {pid} was left running after {sig}"


def test_deleted_source_is_unlinked(project, watch):
    """A source file that goes away leaves the running program by an update (no
    restart); while something still calls it, the removal fails and the program keeps
    it, until the save that drops the call."""
    write(project / "extra.c", 'const char *extra_word(void) { return "extra"; }\n')
    save_rename(project / "message.c", '#include "shape.h"\nconst char *extra_word(void);\n'
                                       'const char *message(void) { return extra_word(); }\n')
    w = watch()
    before = counter_after(w, "extra")
    mark = w.mark()
    (project / "extra.c").unlink()
    w.expect_log(r"undefined symbol: 'extra_word'", start=mark)
    assert counter_after(w, "extra") > before          # still running, extra.c's code kept
    mark = w.mark()
    save_rename(project / "message.c", message_c("solo"))
    w.expect_log(r"extra\.c \(deleted\) · 0 changed, 0 added, 1 removed", start=mark)
    assert counter_after(w, "solo") > before, "the program restarted"
    assert not any("rebuilding" in line for line in w.log), w.log
    # and the next save of a remaining file is an ordinary update
    mark = w.mark()
    save_rename(project / "message.c", message_c("again"))
    w.expect_log(r"gen \d+ · message\.c · 1 changed", start=mark)
    assert counter_after(w, "again") > before

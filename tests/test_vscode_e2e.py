"""The VS Code extension end to end, in a real VS Code: code-server (installed once into
a cache outside the repo by scripts/install-code-server.sh) driven by Debian's Chromium
with playwright-core (vscode-extension/test/e2e/drive.mjs).

The .vsix is built from vscode-extension/ and installed offline; an example is opened,
the program runs under `devlink lsp`, a hover on a function shows its GOT cell (checked
against the linker's own table), an edit on disk raises the status bar's generation.
Screenshots go to $DEVLINK_ARTIFACTS (default: build/test-artifacts/vscode).

Marked `vscode`: skipped unless code-server, Chromium and Node 20+ are there
(DEVLINK_INSTALL_CODE_SERVER=1 installs code-server first, as CI does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from helpers import REPO_ROOT, find_cc

pytestmark = pytest.mark.vscode

EXT = REPO_ROOT / "vscode-extension"
CACHE = Path(os.environ.get("DEVLINK_CODE_SERVER",
                            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "devlink" / "code-server"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("DEVLINK_ARTIFACTS", REPO_ROOT / "build" / "test-artifacts" / "vscode"))
# the devlink the editor runs: this checkout (override to try another one's `devlink lsp`)
DEVLINK_SRC = os.environ.get("DEVLINK_E2E_SRC", str(REPO_ROOT))


def _node_major() -> int:
    try:
        out = subprocess.run(["node", "-v"], capture_output=True, text=True, timeout=10).stdout
        return int(out.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def _code_server() -> Path:
    entry = CACHE / "app" / "node_modules" / "code-server" / "out" / "node" / "entry.js"
    if not entry.exists() and os.environ.get("DEVLINK_INSTALL_CODE_SERVER") == "1":
        subprocess.run(["sh", str(REPO_ROOT / "scripts" / "install-code-server.sh")], check=True,
                       env={**os.environ, "DEVLINK_CODE_SERVER": str(CACHE)}, stdout=subprocess.DEVNULL)
    if not entry.exists():
        pytest.skip(f"code-server is not installed in {CACHE} (scripts/install-code-server.sh)")
    return entry


def _has_lsp() -> bool:
    r = subprocess.run([sys.executable, "-m", "devlink", "lsp", "--help"], capture_output=True, text=True,
                       cwd="/", env={**os.environ, "PYTHONPATH": DEVLINK_SRC}, timeout=60)
    return r.returncode == 0


@pytest.fixture(scope="module")
def vsix(tmp_path_factory) -> Path:
    if _node_major() < 20:
        pytest.skip("needs Node 20 or newer")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Chromium (apt-get install chromium)")
    if find_cc() is None:
        pytest.skip("needs a C compiler")
    _code_server()
    env = {**os.environ, "npm_config_audit": "false", "npm_config_fund": "false"}
    # npm ci only when the lock changed since the last install (node_modules is the cache)
    stamp = EXT / "node_modules" / ".package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < (EXT / "package-lock.json").stat().st_mtime:
        subprocess.run(["npm", "ci"], cwd=EXT, check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["npm", "run", "package"], cwd=EXT, check=True, env=env, stdout=subprocess.DEVNULL)
    return EXT / "devlink.vsix"


class CodeServer:
    """One code-server on loopback with throwaway dirs and HOME, the extension installed."""

    def __init__(self, base: Path, vsix: Path):
        entry = _code_server()
        self.node = str(CACHE / "node" / "bin" / "node")
        self.base = base
        self.dirs = {k: base / k for k in ("home", "data", "ext")}
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        # a quiet window: no welcome page, no chat panel in the way of the editor
        (self.dirs["data"] / "User").mkdir()
        (self.dirs["data"] / "User" / "settings.json").write_text(json.dumps({
            "workbench.startupEditor": "none", "chat.disableAIFeatures": True,
            "workbench.secondarySideBar.defaultVisibility": "hidden", "workbench.tips.enabled": False,
            "editor.hover.delay": 200, "extensions.autoCheckUpdates": False, "update.mode": "none"}))
        self.env = {**os.environ, "HOME": str(self.dirs["home"]), "XDG_CONFIG_HOME": str(self.dirs["home"] / ".config"),
                    "XDG_DATA_HOME": str(self.dirs["home"] / ".local/share")}
        self.env.pop("VSCODE_IPC_HOOK_CLI", None)
        self.cmd = [self.node, str(entry), "--user-data-dir", str(self.dirs["data"]),
                    "--extensions-dir", str(self.dirs["ext"])]
        r = subprocess.run(self.cmd + ["--install-extension", str(vsix)], env=self.env, capture_output=True,
                           text=True, timeout=180)
        assert r.returncode == 0 and "successfully installed" in r.stdout, r.stdout + r.stderr
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(base / "code-server.log", "w")
        self.proc = subprocess.Popen(
            self.cmd + ["--auth", "none", "--bind-addr", f"127.0.0.1:{self.port}", "--disable-telemetry",
                        "--disable-update-check", "--disable-workspace-trust"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert self.proc.poll() is None, (base / "code-server.log").read_text()
            assert time.monotonic() < deadline, "code-server did not answer in 60 s"
            time.sleep(0.3)

    def drive(self, workspace: Path, scenario: dict, timeout: float = 420) -> dict:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cfg = {"url": f"http://127.0.0.1:{self.port}/?folder={workspace}", "chromium": CHROMIUM,
               "artifacts": str(ARTIFACTS), **scenario}
        cfg_file = self.base / f"drive-{scenario['scenario']}.json"
        cfg_file.write_text(json.dumps(cfg))
        r = subprocess.run(["node", str(EXT / "test" / "e2e" / "drive.mjs"), str(cfg_file)], cwd=EXT,
                           capture_output=True, text=True, timeout=timeout)
        lines = r.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {}
        assert r.returncode == 0 and not result.get("error"), (
            f"drive.mjs: {result.get('error') or r.stderr[-3000:]}\nsteps: {result.get('steps')}\n"
            f"status: {result.get('statusAtFailure')}\nscreenshots: {result.get('screenshots')}\n"
            f"code-server log:\n{(self.base / 'code-server.log').read_text()[-3000:]}")
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            # the whole group: code-server, its extension host, devlink lsp and the program
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def code_server(vsix, tmp_path_factory):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)     # only this run's screenshots
    cs = CodeServer(tmp_path_factory.mktemp("code-server"), vsix)
    yield cs
    cs.stop()


def _workspace(root: Path, name: str, settings: dict) -> Path:
    ws = root / name
    shutil.copytree(REPO_ROOT / "examples" / name, ws, ignore=shutil.ignore_patterns(".devlink", name))
    (ws / ".vscode").mkdir()
    (ws / ".vscode" / "settings.json").write_text(json.dumps(settings, indent=2))
    return ws


def test_hover_shows_got_and_edit_raises_generation(code_server, tmp_path):
    if not _has_lsp():
        pytest.skip(f"`devlink lsp` is not in {DEVLINK_SRC} (set DEVLINK_E2E_SRC to a checkout that has it)")
    ws = _workspace(tmp_path, "life", {
        "devlink.path": sys.executable, "devlink.args": ["-m", "devlink", "lsp"],
        "devlink.env": {"PYTHONPATH": DEVLINK_SRC}, "devlink.mode": "standalone",
    })
    rules = ws / "rules.c"
    result = code_server.drive(ws, {
        "scenario": "live", "file": "rules.c", "symbol": "next_state",
        "edit": {"path": str(rules), "from": "return neighbours == 3;", "to": "return neighbours == 3 || neighbours == 6;"},
    })
    hover = result["hover"]
    # the hover's stub and GOT cell are those of next_state in the program on disk (its
    # symbol table names them next_state$stub and next_state$got)
    cell = re.search(r"GOT\[\d+\] cell (0x[0-9a-f]+)", hover)
    stub = re.search(r"stub \(canonical address\): (0x[0-9a-f]+)", hover)
    assert cell and stub, hover
    with open(ws / "life", "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        addr = {name: symtab.get_symbol_by_name(name)[0]["st_value"] for name in ("next_state$got", "next_state$stub")}
    assert int(cell.group(1), 16) == addr["next_state$got"], (hover, addr)
    assert int(stub.group(1), 16) == addr["next_state$stub"], (hover, addr)
    # the status bar followed the edit
    assert result["genAfter"] > result["genBefore"] >= 1, result
    assert re.search(r"devlink: running · gen \d+ · \d+ patch", result["statusAfter"]), result
    # the menu's undo, the palette's GOT table, the output channel with the program's output
    assert any("Undo the last patch" in line for line in result["menu"]), result["menu"]
    # the server's answer to the menu's undo reached the editor; a done undo is a new generation
    if result["undoMessage"].startswith("undo:"):
        assert int(re.search(r"gen (\d+)", result["statusAfterUndo"]).group(1)) > result["genAfter"], result
    else:
        assert "devlink:" in result["undoMessage"], result
    assert "next_state$got" in result["gotTable"].replace("\u00a0", " "), result["gotTable"]
    assert re.search(r"\[program\] generation \d+ alive \d+", result["output"].replace("\u00a0", " ")), result["output"]
    for shot in result["screenshots"]:
        assert Path(shot).stat().st_size > 10_000, shot


def test_missing_devlink_says_how_to_fix(code_server, tmp_path):
    ws = _workspace(tmp_path, "hello", {"devlink.path": str(tmp_path / "no-such-devlink")})
    result = code_server.drive(ws, {"scenario": "missing", "file": "hello.c", "expect": "devlink.path"})
    assert "was not found" in result["message"] and "pip install devlink" in result["message"], result
    assert "devlink: not started" in result["status"], result


def test_server_that_fails_at_start_is_explained(code_server, tmp_path):
    ws = _workspace(tmp_path, "hello", {
        "devlink.path": sys.executable,
        "devlink.args": ["-c", "import sys; sys.stderr.write('devlink: boom in start-up\\n'); sys.exit(3)"]})
    result = code_server.drive(ws, {"scenario": "broken", "file": "hello.c", "expect": "failed to start"})
    assert "exited with status 3: devlink: boom in start-up" in result["message"], result
    assert "EPIPE" not in result["message"], result    # the client's own toast is not shown
    assert "devlink: not started" in result["status"], result

"""`devlink lsp` end to end: pytest-lsp drives `python -m devlink lsp` on real temporary
projects, in standalone mode (the server runs the session) and attached to a
`devlink watch`; headless neovim is a real client no one here wrote."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig

from helpers import devlink_env, find_cc, write
from watch_helpers import WatchProcess, save_rename

pytestmark = pytest.mark.skipif(find_cc() is None, reason="needs a C compiler")

MAIN = r"""#include <stdio.h>
#include <unistd.h>
struct point { int x; double y; };
int counter;
double ratio = 1.5;
char label[16] = "hello";
struct point origin = {3, 2.5};
static int hidden = 7;
int step(int n) { return n + 1; }
int tick(void) { static int calls; return ++calls; }
int main(void) {
    for (;;) {
        counter = step(counter);
        tick();
        hidden++;
        printf("%d\n", counter);
        fflush(stdout);
        usleep(20000);
    }
}
"""
LINE_STEP = 9          # 1-based lines of MAIN
LINE_TICK = 10


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    write(root / "main.c", MAIN)
    return root


class Editor:
    """A pytest-lsp client with the notifications devlink sends collected."""

    def __init__(self, client, root: Path):
        self.client, self.root = client, root
        self.statuses: list[dict] = []
        self.lens_refreshes = 0

    @property
    def uri(self) -> str:
        return (self.root / "main.c").as_uri()

    async def wait(self, what, timeout: float = 60.0, message: str = ""):
        deadline = time.monotonic() + timeout
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {message or what}; statuses: {self.statuses[-3:]}")
            await asyncio.sleep(0.05)

    async def running(self, generation: int | None = None) -> dict:
        def ok():
            for s in reversed(self.statuses):
                if s.get("state") == "running" and (generation is None or (s.get("generation") or 0) >= generation):
                    return s
        return await self.wait(ok, message=f"a running status (generation {generation})")

    async def hover(self, line: int, character: int, uri: str | None = None) -> str | None:
        h = await self.client.text_document_hover_async(T.HoverParams(
            text_document=T.TextDocumentIdentifier(uri=uri or self.uri),
            position=T.Position(line=line, character=character)))
        return None if h is None else h.contents.value

    async def hover_word(self, word: str, line: int, uri: str | None = None) -> str | None:
        text = (self.root / "main.c").read_text().splitlines()[line - 1]
        return await self.hover(line - 1, text.index(word) + 1, uri)

    async def lenses(self) -> list[str]:
        lenses = await self.client.text_document_code_lens_async(T.CodeLensParams(
            text_document=T.TextDocumentIdentifier(uri=self.uri)))
        return [f"{lens.range.start.line + 1}: {lens.command.title}" for lens in lenses]


async def start_editor(root: Path, *args: str) -> Editor:
    config = ClientServerConfig(server_command=[sys.executable, "-m", "devlink", "lsp", *args],
                                server_env=devlink_env())
    client = await config.start()
    ed = Editor(client, root)
    client.feature("devlink/status")(lambda params: ed.statuses.append(_plain(params)))

    @client.feature(T.WORKSPACE_CODE_LENS_REFRESH)
    def _refresh(params):
        ed.lens_refreshes += 1

    caps = T.ClientCapabilities(workspace=T.WorkspaceClientCapabilities(
        code_lens=T.CodeLensWorkspaceClientCapabilities(refresh_support=True)))
    result = await client.initialize_session(T.InitializeParams(capabilities=caps, root_uri=root.as_uri()))
    assert result.capabilities.hover_provider
    assert result.capabilities.completion_provider is None and not result.capabilities.definition_provider
    client.text_document_did_open(T.DidOpenTextDocumentParams(text_document=T.TextDocumentItem(
        uri=ed.uri, language_id="c", version=1, text=(root / "main.c").read_text())))
    return ed


def _plain(params) -> dict:
    return params if isinstance(params, dict) else {k: getattr(params, k) for k in dir(params) if not k.startswith("_")}


async def stop_editor(ed: Editor) -> None:
    await ed.client.shutdown_session()
    await ed.client.stop()


def addr(text: str, label: str) -> str:
    return re.search(label + r"[^`]*`(0x[0-9a-f]+)`", text).group(1)


def value_of(text: str) -> str:
    m = re.search(r"value \(pid \d+\): `([^`]*)`", text)
    assert m, text
    return m.group(1)


@pytest.mark.asyncio
async def test_standalone_hover_patch_lenses_and_live_values(project):
    ed = await start_editor(project)
    try:
        status = await ed.running()
        assert status["pid"] and status["patches"] == 0
        first = await ed.hover_word("step", LINE_STEP)
        assert "**step** — function" in first and "main.c:9" in first and "patched 0×" in first
        assert re.search(r"GOT\[\d+\] cell `0x[0-9a-f]+` → `0x[0-9a-f]+`", first)
        assert re.search(r"atom: `0x[0-9a-f]+` · \d+/\d+ B", first)
        stub0, atom0 = addr(first, "stub"), addr(first, "atom")

        # live values, formatted by type, changing while the program runs
        c1 = int(value_of(await ed.hover_word("counter", 4)))
        await asyncio.sleep(0.3)
        c2 = int(value_of(await ed.hover_word("counter", 4)))
        assert c2 > c1
        assert value_of(await ed.hover_word("ratio", 5)) == "1.5"
        assert value_of(await ed.hover_word("label", 6)) == '"hello"'
        assert value_of(await ed.hover_word("origin", 7)) == "{.x = 3, .y = 2.5}"
        assert int(value_of(await ed.hover_word("hidden", 8))) > 7
        calls = await ed.hover_word("calls", LINE_TICK)
        assert "static in tick()" in calls and int(value_of(calls)) > 0

        lenses = await ed.lenses()
        assert any(x.startswith(f"{LINE_STEP}: GOT[") and "not patched" in x for x in lenses), lenses
        assert len(lenses) == 3          # step, tick, main

        refreshes = ed.lens_refreshes
        save_rename(project / "main.c", MAIN.replace("return n + 1;", "return n + 2; /* faster */"))
        await ed.running(generation=2)
        after = await ed.hover_word("step", LINE_STEP)
        assert addr(after, "stub") == stub0, "the canonical address never moves"
        assert addr(after, "atom") != atom0, "a running program's new code goes to new room"
        assert "patched 1×" in after and "last at" in after
        await ed.wait(lambda: ed.lens_refreshes > refreshes, message="workspace/codeLens/refresh")
        lenses = await ed.lenses()
        assert any(x.startswith(f"{LINE_STEP}: GOT[") and "patched 1×" in x for x in lenses), lenses
        assert ed.statuses[-1]["patches"] == 1 and ed.statuses[-1]["generation"] >= 2

        # commands: the GOT table, restart
        got = await ed.client.workspace_execute_command_async(T.ExecuteCommandParams(command="devlink.showGot"))
        assert got["ok"] and any(r["name"] == "step$got" for r in got["got"])
        old_pid = ed.statuses[-1]["pid"]
        reply = await ed.client.workspace_execute_command_async(T.ExecuteCommandParams(command="devlink.restart"))
        assert reply["ok"] and "restarted" in reply["message"]
        await ed.wait(lambda: ed.statuses[-1]["pid"] != old_pid and ed.statuses[-1]["state"] == "running")

        # a second session for the same project is refused, naming the language server
        p = subprocess.run([sys.executable, "-m", "devlink", "watch", "--no-keys", str(project)], env=devlink_env(),
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == 1 and "already running" in p.stderr and "devlink lsp" in p.stderr
    finally:
        await stop_editor(ed)


@pytest.mark.asyncio
async def test_program_not_running_says_so(project):
    write(project / "main.c", MAIN.replace("    for (;;) {", "    for (int i = 0; i < 3; i++) {"))
    ed = await start_editor(project)
    try:
        await ed.wait(lambda: any(s.get("state") == "exited" for s in ed.statuses), message="the program to exit")
        text = await ed.hover_word("counter", 4)
        assert "the program is not running" in text and "value (pid" not in text
        assert "stub" in await ed.hover_word("step", LINE_STEP)
    finally:
        await stop_editor(ed)


def diags(ed: Editor, name: str = "main.c"):
    found = ed.client.diagnostics.get((ed.root / name).as_uri(), None)
    return None if found is None else list(found)


@pytest.mark.asyncio
async def test_diagnostics_appear_and_clear(project):
    write(project / "util.c", "int helper(int x) { return x * 2; }\n")
    write(project / "devlink.toml", 'sources = ["*.c"]\ncflags = ["-Wall"]\n')
    ed = await start_editor(project)
    try:
        await ed.running()
        # a compile error and a warning, at their lines; the old code keeps running
        save_rename(project / "main.c", MAIN.replace("return n + 1;", "int unused; return n + 1 +;"))
        found = await ed.wait(lambda: diags(ed), message="compile diagnostics")
        errors = [d for d in found if d.severity == T.DiagnosticSeverity.Error]
        assert errors and errors[0].range.start.line == LINE_STEP - 1 and "expected expression" in errors[0].message
        assert any(d.severity == T.DiagnosticSeverity.Warning and "unused" in d.message for d in found)
        save_rename(project / "main.c", MAIN)
        await ed.wait(lambda: diags(ed) == [], message="diagnostics to clear")

        # a link error at the referencing line
        broken = MAIN.replace("        tick();", "        tick();\n        missing_fn();").replace(
            "int main(void)", "void missing_fn(void);\nint main(void)")
        save_rename(project / "main.c", broken)
        found = await ed.wait(lambda: diags(ed), message="link diagnostics")
        lines = broken.splitlines()
        assert [d.range.start.line for d in found] == [lines.index("        missing_fn();")]
        assert "undefined symbol 'missing_fn'" in found[0].message
        save_rename(project / "main.c", MAIN)
        await ed.wait(lambda: diags(ed) == [], message="link diagnostics to clear")

        # a layout change the patcher refuses: at the variable's declaration
        gen = ed.statuses[-1]["generation"]
        save_rename(project / "main.c", MAIN.replace("char label[16]", "char label[32]"))
        found = await ed.wait(lambda: diags(ed), message="a patch refusal")
        assert found[0].range.start.line == 5 and "label" in found[0].message
        assert found[0].severity == T.DiagnosticSeverity.Warning
        await ed.running(generation=gen + 1)
    finally:
        await stop_editor(ed)


@pytest.mark.asyncio
async def test_attached_to_devlink_watch(project):
    w = WatchProcess(project)
    try:
        w.expect(r"^\d+$")
        ed = await start_editor(project, "--attached")
        try:
            status = await ed.running()
            assert status["session_pid"] == w.proc.pid
            first = await ed.hover_word("step", LINE_STEP)
            stub0, atom0 = addr(first, "stub"), addr(first, "atom")
            c1 = int(value_of(await ed.hover_word("counter", 4)))
            await asyncio.sleep(0.2)
            assert int(value_of(await ed.hover_word("counter", 4))) > c1
            save_rename(project / "main.c", MAIN.replace("return n + 1;", "return n + 3;"))
            await ed.running(generation=2)
            after = await ed.hover_word("step", LINE_STEP)
            assert addr(after, "stub") == stub0 and addr(after, "atom") != atom0 and "patched 1×" in after
            assert any("patched 1×" in x for x in await ed.lenses())
            save_rename(project / "main.c", MAIN.replace("return n + 1;", "return n + ;"))
            found = await ed.wait(lambda: diags(ed), message="diagnostics in attached mode")
            assert found[0].range.start.line == LINE_STEP - 1
        finally:
            await stop_editor(ed)
        assert w.proc.poll() is None, "closing the editor leaves the watch session running"
    finally:
        w.stop()


@pytest.mark.asyncio
async def test_bad_requests_get_empty_answers(project, tmp_path):
    outside = write(tmp_path / "elsewhere.c", "int counter;\n")
    ed = await start_editor(project)
    try:
        await ed.running()
        assert await ed.hover(0, 5, uri=outside.as_uri()) is None                       # outside the project
        assert await ed.hover(0, 0, uri=(project / "nope.c").as_uri()) is None           # no such file
        assert await ed.hover(500, 0) is None                                             # past the end
        assert await ed.hover(3, 400) is None                                             # past the line's end
        assert await ed.hover(0, 0) is None                                               # `#include`: not a symbol
        assert await ed.hover_word("point", 3) is None                                    # a type, not a symbol
        assert not (await ed.client.text_document_code_lens_async(T.CodeLensParams(
            text_document=T.TextDocumentIdentifier(uri=outside.as_uri()))))
        # still answering
        assert "stub" in await ed.hover_word("step", LINE_STEP)
    finally:
        await stop_editor(ed)


NVIM_LUA = r"""
local root, file, out = ROOT, FILE, OUT
local client_id = vim.lsp.start_client({
  name = "devlink", cmd = CMD, root_dir = root,
  cmd_env = { PYTHONPATH = PYPATH },
  handlers = { ["devlink/status"] = function(_, result) _G.status = result end },
})
vim.cmd("edit " .. file)
vim.lsp.buf_attach_client(0, client_id)
local ok = vim.wait(60000, function() return _G.status ~= nil and _G.status.state == "running" end, 100)
local text = "no status"
if ok then
  local client = vim.lsp.get_client_by_id(client_id)
  local params = { textDocument = { uri = vim.uri_from_fname(file) }, position = { line = LINE, character = 5 } }
  local resp = client.request_sync("textDocument/hover", params, 20000, 0)
  if resp and resp.result then text = resp.result.contents.value else text = "no hover: " .. vim.inspect(resp) end
end
local f = io.open(out, "w"); f:write(text); f:close()
vim.lsp.stop_client(client_id)
vim.wait(3000, function() return vim.lsp.get_client_by_id(client_id) == nil end, 100)
vim.cmd("qa!")
"""


def test_neovim_gets_devlink_hover(project, tmp_path):
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.skip("needs neovim (apt-get install neovim)")
    out = tmp_path / "hover.txt"
    cmd = [sys.executable, "-m", "devlink", "lsp"]
    lua = (NVIM_LUA.replace("ROOT", _lua(str(project))).replace("FILE", _lua(str(project / "main.c")))
           .replace("OUT", _lua(str(out))).replace("CMD", "{" + ", ".join(map(_lua, cmd)) + "}")
           .replace("PYPATH", _lua(devlink_env()["PYTHONPATH"])).replace("LINE", str(LINE_STEP - 1)))
    script = write(tmp_path / "hover.lua", lua)
    subprocess.run([nvim, "--headless", "--clean", "-n", "-u", "NONE", "-c", f"luafile {script}"],
                   cwd=project, timeout=120, stdin=subprocess.DEVNULL, capture_output=True)
    text = out.read_text()
    assert "**step** — function" in text and "GOT[" in text and "stub" in text, text


def _lua(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.asyncio
async def test_stopping_the_server_stops_its_program(project):
    """Standalone: the program belongs to the editor's server; SIGTERM (an editor closing
    it) must not leave the program running."""
    ed = await start_editor(project)
    try:
        pid = (await ed.running())["pid"]
        ed.client._server.terminate()
        assert await asyncio.wait_for(ed.client._server.wait(), 20) == 0
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split()[2] == "Z"
    finally:
        await ed.client.stop()

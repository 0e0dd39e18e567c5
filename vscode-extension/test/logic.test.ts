// Unit tests of the extension's logic without VS Code: `npm test` (node --test).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as C from "../src/constants";
import * as L from "../src/logic";

test("status bar: running with generation and patch count", () => {
  const v = L.statusView("ready", { state: "running", pid: 4242, generation: 3, patches: 2, program: "/p/life" });
  assert.equal(v.text, "$(play) devlink: running · gen 3 · 2 patches");
  assert.match(v.tooltip, /pid 4242: running/);
  assert.match(v.tooltip, /program: \/p\/life/);
  assert.equal(v.error, false);
});

test("status bar: one patch is singular; crashed is an error with the signal", () => {
  const v = L.statusView("ready", { state: "crashed", pid: 7, generation: 2, patches: 1, exit_status: -11 });
  assert.equal(v.text, "$(error) devlink: crashed · gen 2 · 1 patch");
  assert.match(v.tooltip, /killed by SIGSEGV/);
  assert.equal(v.error, true);
  assert.match(L.statusView("ready", { state: "exited", pid: 7, generation: 1, patches: 0, exit_status: 3 }).tooltip, /exit status 3/);
});

test("status bar: before any status, after a failure, after the server stopped", () => {
  assert.match(L.statusView("starting").text, /starting/);
  const f = L.statusView("failed", undefined, "devlink is not installed");
  assert.equal(f.tooltip, "devlink is not installed");
  assert.equal(f.error, true);
  assert.match(L.statusView("stopped", { state: "running", generation: 4 }).text, /stopped/);
});

test("status bar: a build that has not finished has no generation", () => {
  assert.equal(L.statusView("ready", { state: "not built", generation: null, patches: 0 }).text, "$(warning) devlink: not built · 0 patches");
});

test("menu: restart, undo only after a patch, GOT, output", () => {
  const fresh = L.menuItems({ state: "running", pid: 1, generation: 1, patches: 0 });
  assert.deepEqual(fresh.map((m) => m.command), [C.CMD_RESTART, C.CMD_SHOW_GOT, C.CMD_SHOW_OUTPUT]);
  const patched = L.menuItems({ state: "running", pid: 1, generation: 3, patches: 2 });
  assert.deepEqual(patched.map((m) => m.command), [C.CMD_RESTART, C.CMD_UNDO, C.CMD_SHOW_GOT, C.CMD_SHOW_OUTPUT]);
  assert.match(patched[1].description, /generation 3/);
  const down = L.menuItems(undefined, false);
  assert.deepEqual(down.map((m) => m.command), [C.CMD_RESTART_SERVER, C.CMD_SHOW_OUTPUT]);
});

test("extension commands never reuse the server's command ids", () => {
  // vscode-languageclient registers the server's ids: registering them again throws
  const ours = [C.CMD_MENU, C.CMD_RESTART, C.CMD_UNDO, C.CMD_SHOW_GOT, C.CMD_SHOW_OUTPUT, C.CMD_RESTART_SERVER];
  for (const s of [C.SERVER_RESTART, C.SERVER_UNDO, C.SERVER_SHOW_GOT]) assert.ok(!ours.includes(s), s);
});

test("server command line: defaults", () => {
  const c = L.serverCommand(L.DEFAULT_SETTINGS, "/w", { PATH: "/usr/bin" }, "/home/u");
  assert.deepEqual(c, { command: "devlink", args: ["lsp"], env: { PATH: "/usr/bin" } });
});

test("server command line: python -m devlink, mode, policies, env with variables", () => {
  const s: L.Settings = {
    path: "~/venv/bin/python3", args: ["-m", "devlink", "lsp"], env: { PYTHONPATH: "${workspaceFolder}/../devlink:${env:PYTHONPATH}" },
    mode: "standalone", onUnsafe: "keep-old", onCrash: "rollback",
  };
  const c = L.serverCommand(s, "/w/proj", { PATH: "/bin", PYTHONPATH: "/extra", GONE: undefined }, "/home/u");
  assert.equal(c.command, "/home/u/venv/bin/python3");
  assert.deepEqual(c.args, ["-m", "devlink", "lsp", "--standalone", "--on-unsafe=keep-old", "--on-crash=rollback"]);
  assert.deepEqual(c.env, { PATH: "/bin", PYTHONPATH: "/w/proj/../devlink:/extra" });
});

test("server command line: empty path and args fall back to `devlink lsp`; auto adds no flag", () => {
  const c = L.serverCommand({ ...L.DEFAULT_SETTINGS, path: "  ", args: [] }, undefined, {}, "/h");
  assert.equal(c.command, "devlink");
  assert.deepEqual(c.args, ["lsp"]);
});

test("findExecutable: PATH search and explicit paths", () => {
  const exists = new Set(["/opt/bin/devlink", "/x/python3"]);
  const isExec = (p: string) => exists.has(p);
  assert.equal(L.findExecutable("devlink", "/usr/bin::/opt/bin", isExec), "/opt/bin/devlink");
  assert.equal(L.findExecutable("devlink", "/usr/bin", isExec), undefined);
  assert.equal(L.findExecutable("devlink", undefined, isExec), undefined);
  assert.equal(L.findExecutable("/x/python3", "", isExec), "/x/python3");
  assert.equal(L.findExecutable("./devlink", "/opt/bin", isExec), undefined);
});

test("start failure: devlink not installed names the fix", () => {
  const m = L.startFailureMessage("devlink", { notFound: true });
  assert.match(m, /devlink is not installed/);
  assert.match(m, /pip install devlink/);
  assert.match(m, /devlink\.path/);
  const custom = L.startFailureMessage("/opt/dl", { notFound: true });
  assert.match(custom, /devlink\.path "\/opt\/dl" was not found/);
});

test("start failure: python without the package, an old devlink, another error", () => {
  const tb = "Traceback (most recent call last):\n  File \"x\", line 1\nModuleNotFoundError: No module named 'devlink'\n";
  assert.match(L.startFailureMessage("python3", { stderr: tb, exitCode: 1 }), /cannot find the devlink package.*PYTHONPATH/);
  assert.match(L.startFailureMessage("devlink", { stderr: "devlink: unknown command 'lsp'\n", exitCode: 2 }), /no lsp command. Upgrade it: pip install -U devlink/);
  const other = L.startFailureMessage("devlink", { stderr: "Traceback (most recent call last):\n  File \"a\"\nRuntimeError: boom\n\n", exitCode: 1 });
  assert.equal(other, "devlink failed to start: devlink exited with status 1: RuntimeError: boom. See the devlink output for the full log.");
});

test("stopped server: exit status and the last error line", () => {
  assert.equal(L.stoppedMessage(1, "Traceback (most recent call last):\n  File \"s.py\"\nOSError: gone\n"),
    "devlink lsp exited with status 1: OSError: gone. The program it ran is stopped too; restart the language server to go on.");
  assert.match(L.stoppedMessage(null, ""), /^devlink lsp stopped\. /);
});

test("GOT text: the server's text under a header; rows when there is no text; errors throw", () => {
  const t = L.gotText({ ok: true, generation: 2, got: [], text: ".got  0 0x1000 ..." });
  assert.equal(t, "# devlink GOT · generation 2 · 0 entries\n# section        index    address  kind          target  name\n.got  0 0x1000 ...\n");
  const rows = L.gotText({ ok: true, generation: 1, got: [{ section: ".got", index: 3, address: 0x404018, kind: "cell", target: 0x401000, name: "step$got" }] });
  assert.match(rows, /\.got\s+3\s+0x404018\s+cell\s+0x401000\s+step\$got/);
  assert.throws(() => L.gotText({ ok: false, error: "the program has not been built yet" }), /devlink: the program has not been built yet/);
});

test("LineBuffer: whole lines only, partial lines wait, CRLF trimmed", () => {
  const b = new L.LineBuffer();
  assert.deepEqual(b.push("gen 1\ngen"), ["gen 1"]);
  assert.deepEqual(b.push(" 2\r\n\n"), ["gen 2", ""]);
  assert.deepEqual(b.push("tail"), []);
  assert.deepEqual(b.flush(), ["tail"]);
  assert.deepEqual(b.flush(), []);
});

test("nextRange: reads what was appended; restarts when the log shrank", () => {
  assert.deepEqual(L.nextRange(10, 25), { start: 10, end: 25, reset: false });
  assert.deepEqual(L.nextRange(10, 10), { start: 10, end: 10, reset: false });
  assert.deepEqual(L.nextRange(100, 4), { start: 0, end: 4, reset: true });
  assert.equal(L.programLogPath("/w/life"), "/w/life/.devlink/program.log");
});

test("workspace trust: nothing starts in an untrusted folder, and the reason is shown", () => {
  const d = L.startDecision(false, "/p/life");
  assert.equal(d.start, false);
  if (d.start) return;
  assert.equal(d.phase, "restricted");
  assert.match(d.message, /Restricted Mode/);
  assert.match(d.message, /Trust the folder/);
  const v = L.statusView("restricted");
  assert.match(v.text, /Restricted Mode/);
  assert.equal(v.tooltip, d.message);
  assert.equal(v.error, false);
  // untrusted wins over a missing folder: no server either way, and no start failure
  const none = L.startDecision(false, undefined);
  assert.equal(none.start, false);
  if (!none.start) assert.equal(none.phase, "restricted");
});

test("workspace trust: a trusted folder starts; no folder is a start failure", () => {
  assert.deepEqual(L.startDecision(true, "/p/life"), { start: true });
  const d = L.startDecision(true, undefined);
  assert.equal(d.start, false);
  if (!d.start) {
    assert.equal(d.phase, "failed");
    assert.match(d.message, /needs a folder/);
  }
});

test("package.json declares limited support in untrusted workspaces, with the settings that run code restricted", () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const pkg = JSON.parse(require("fs").readFileSync(require("path").join(__dirname, "..", "..", "package.json"), "utf8"));
  const u = pkg.capabilities.untrustedWorkspaces;
  assert.equal(u.supported, "limited");
  assert.match(u.description, /starts nothing/);
  assert.deepEqual([...u.restrictedConfigurations].sort(), ["devlink.args", "devlink.env", "devlink.path"]);
});

test("status bar: a thread stuck in patched code is an error naming the function", () => {
  const v = L.statusView("ready", { state: "stuck", pid: 7, generation: 3, patches: 2,
    stuck: [{ thread: 8, function: "step", generation: 3, seconds: 2.5 }] });
  assert.equal(v.text, "$(sync-ignored) devlink: stuck · gen 3 · 2 patches");
  assert.equal(v.error, true);
  assert.match(v.tooltip, /thread 8 has been in step \(generation 3\) for 2.5 s/);
  assert.equal(L.menuItems({ state: "stuck", pid: 7, generation: 3, patches: 2 })[0].description, "pid 7");
});


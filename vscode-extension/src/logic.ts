// The extension's logic that needs no editor: status text, menu, the server's command
// line, error messages, GOT text, log lines. Unit-tested with `node --test`.
import * as path from "path";
import * as C from "./constants";

/** The payload of the server's status notification (WatchApp.status()). */
export interface Status {
  state?: string;            // running, stuck, exited, crashed, not started, not built
  pid?: number | null;
  generation?: number | null;
  patches?: number | null;
  exit_status?: number | null;
  program?: string | null;
  root?: string;
  /** threads looping in patched code (state "stuck") */
  stuck?: { thread: number; function: string; generation: number; seconds: number }[];
}

/** What the extension itself knows about the server, before any status arrives. */
export type Phase = "starting" | "ready" | "failed" | "stopped" | "restricted";

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;            // shown with the error background
}

const STATE_ICON: Record<string, string> = {
  running: "$(play)",
  stuck: "$(sync-ignored)",
  exited: "$(debug-stop)",
  crashed: "$(error)",
  "not started": "$(circle-outline)",
  "not built": "$(warning)",
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "es"}`;
}

/** The status bar item, e.g. `$(play) devlink: running · gen 3 · 2 patches`. */
export function statusView(phase: Phase, status?: Status, failure?: string): StatusView {
  if (phase === "restricted") {
    return { text: "$(shield) devlink: off (Restricted Mode)", tooltip: RESTRICTED_MESSAGE, error: false };
  }
  if (phase === "failed") {
    return { text: "$(error) devlink: not started", tooltip: failure ?? "the language server did not start", error: true };
  }
  if (phase === "stopped") {
    return { text: "$(debug-disconnect) devlink: stopped", tooltip: "the language server stopped; click for the menu", error: true };
  }
  if (!status) {
    return { text: "$(sync~spin) devlink: starting", tooltip: "building and starting the program", error: false };
  }
  const state = status.state ?? "unknown";
  const parts = [`${STATE_ICON[state] ?? "$(question)"} devlink: ${state}`];
  if (status.generation != null) parts.push(`gen ${status.generation}`);
  parts.push(plural(status.patches ?? 0, "patch"));
  const tip: string[] = [];
  if (status.program) tip.push(`program: ${status.program}`);
  if (status.pid != null) tip.push(`pid ${status.pid}: ${state}` +
    (status.exit_status != null && state !== "running" ? ` (${exitText(status.exit_status)})` : ""));
  if (status.generation != null) tip.push(`generation ${status.generation} (one per successful update)`);
  tip.push(`${plural(status.patches ?? 0, "patch")} applied to the running program`);
  for (const t of status.stuck ?? []) {
    tip.push(`thread ${t.thread} has been in ${t.function} (generation ${t.generation}) for ${t.seconds} s: ` +
      "the edit may loop forever; restart the program, or undo the edit");
  }
  tip.push("click: restart, undo, GOT table");
  return { text: parts.join(" · "), tooltip: tip.join("\n"),
    error: state === "crashed" || state === "not built" || state === "stuck" };
}

/** Popen's return code: negative is a signal. */
export function exitText(code: number): string {
  const signals: Record<number, string> = { 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM", 4: "SIGILL", 7: "SIGBUS", 8: "SIGFPE" };
  return code < 0 ? `killed by ${signals[-code] ?? `signal ${-code}`}` : `exit status ${code}`;
}

export interface MenuItem {
  label: string;
  description: string;
  command: string;
}

/** The status bar's menu. Undo is offered only when something was patched. */
export function menuItems(status?: Status, serverRunning = true): MenuItem[] {
  const items: MenuItem[] = [];
  if (serverRunning) {
    const running = status?.state === "running" || status?.state === "stuck";
    items.push({ label: "$(debug-restart) Restart the program", description: running ? `pid ${status?.pid}` : "start it again", command: C.CMD_RESTART });
    if ((status?.patches ?? 0) > 0 || (status?.generation ?? 0) > 1) {
      items.push({ label: "$(discard) Undo the last patch", description: `back from generation ${status?.generation ?? "?"}`, command: C.CMD_UNDO });
    }
    items.push({ label: "$(table) Show the GOT table", description: "stubs' cells and their targets", command: C.CMD_SHOW_GOT });
  } else {
    items.push({ label: "$(debug-restart) Restart the language server", description: "after fixing devlink.path", command: C.CMD_RESTART_SERVER });
  }
  items.push({ label: "$(output) Show output", description: "the program's output and devlink's log", command: C.CMD_SHOW_OUTPUT });
  return items;
}

/** Why nothing starts in a folder VS Code does not trust: `devlink lsp` builds the
 * folder's program with the compiler, launcher and flags the folder's devlink.toml or
 * compile_commands.json choose, and runs it; both are code the folder chose. */
export const RESTRICTED_MESSAGE =
  "devlink is off in Restricted Mode: it would build and run this folder's program with the compiler and " +
  "settings the folder chooses. Trust the folder to start it.";

export type StartDecision =
  | { start: true }
  | { start: false; phase: Phase; message: string };

/** Whether the server may start: only in a trusted folder, and only with a folder. */
export function startDecision(trusted: boolean, folder: string | undefined): StartDecision {
  if (!trusted) return { start: false, phase: "restricted", message: RESTRICTED_MESSAGE };
  if (!folder) return { start: false, phase: "failed", message: "devlink needs a folder: open the C project's folder (File > Open Folder)." };
  return { start: true };
}

export interface Settings {
  path: string;
  args: string[];
  env: Record<string, string>;
  mode: string;
  onUnsafe: string;
  onCrash: string;
}

export const DEFAULT_SETTINGS: Settings = { path: "devlink", args: ["lsp"], env: {}, mode: "auto", onUnsafe: "", onCrash: "" };

export interface ServerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
}

/** `${workspaceFolder}`, `${env:NAME}` and a leading `~`. */
export function expand(s: string, workspaceFolder: string | undefined, env: Record<string, string | undefined>, home: string): string {
  let out = s.replace(/\$\{workspaceFolder\}/g, workspaceFolder ?? "")
    .replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n) => env[n] ?? "");
  if (out === "~" || out.startsWith("~/")) out = home + out.slice(1);
  return out;
}

/** Settings → the server's command line: `devlink.path devlink.args [--attached|--standalone]
 * [--on-unsafe=P] [--on-crash=P]`, environment merged over the editor's. */
export function serverCommand(s: Settings, workspaceFolder: string | undefined,
                              env: Record<string, string | undefined>, home: string): ServerCommand {
  const x = (v: string) => expand(v, workspaceFolder, env, home);
  const args = (s.args.length ? s.args : DEFAULT_SETTINGS.args).map(x);
  if (s.mode === "attached" || s.mode === "standalone") args.push(`--${s.mode}`);
  if (s.onUnsafe) args.push(`--on-unsafe=${s.onUnsafe}`);
  if (s.onCrash) args.push(`--on-crash=${s.onCrash}`);
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  for (const [k, v] of Object.entries(s.env)) merged[k] = x(v);
  return { command: x(s.path.trim() || DEFAULT_SETTINGS.path), args, env: merged };
}

/** Where `command` would be run from: itself when it has a slash, else the first PATH
 * entry that holds it. `isExecutable` is injected so this stays pure. */
export function findExecutable(command: string, pathVar: string | undefined,
                               isExecutable: (p: string) => boolean): string | undefined {
  if (command.includes("/")) return isExecutable(command) ? command : undefined;
  for (const dir of (pathVar ?? "").split(":")) {
    if (!dir) continue;
    const p = path.join(dir, command);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

// plain text: notifications do not render Markdown
const INSTALL_HINT = "Install it with: pip install devlink (or pip install -e . in a devlink checkout)";

/** The one-line message for a server that could not start, with the fix. */
export function startFailureMessage(command: string, reason: { notFound?: boolean; exitCode?: number | null; stderr?: string; error?: string }): string {
  if (reason.notFound) {
    return command === DEFAULT_SETTINGS.path
      ? `devlink is not installed (no devlink on PATH). ${INSTALL_HINT}; or set "devlink.path" to its full path.`
      : `devlink.path "${command}" was not found or is not executable. Fix "devlink.path"; or clear it and install devlink: pip install devlink.`;
  }
  const last = lastLine(reason.stderr ?? "");
  if (/No module named '?devlink/.test(reason.stderr ?? "")) {
    return `devlink failed to start: Python cannot find the devlink package. ${INSTALL_HINT}; or set PYTHONPATH in "devlink.env".`;
  }
  if (/unknown command '?lsp|invalid choice: '?lsp/.test(reason.stderr ?? "")) {
    return "devlink failed to start: this devlink has no lsp command. Upgrade it: pip install -U devlink (or git pull in a devlink checkout).";
  }
  const what = reason.exitCode != null ? `exited with status ${reason.exitCode}` : (reason.error ?? "did not start");
  return `devlink failed to start: ${command} ${what}${last ? `: ${last}` : ""}. See the devlink output for the full log.`;
}

/** The message when a running server goes away. */
export function stoppedMessage(exitCode: number | null, stderr: string): string {
  const last = lastLine(stderr);
  const how = exitCode == null ? "stopped" : exitCode < 0 || exitCode > 128 ? "was killed" : `exited with status ${exitCode}`;
  return `devlink lsp ${how}${last ? `: ${last}` : ""}. The program it ran is stopped too; restart the language server to go on.`;
}

function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !/^\s*(File |Traceback)/.test(l));
  return lines.length ? lines[lines.length - 1] : "";
}

/** The server's `devlink.showGot` reply as the text of a document. */
export interface GotRow { section: string; index: number; address: number; kind: string; target: number | null; name: string }
export function gotText(reply: { ok?: boolean; error?: string; generation?: number; got?: GotRow[]; text?: string }): string {
  if (!reply || reply.ok === false) throw new Error(`devlink: ${reply?.error ?? "no answer from the server"}`);
  const hex = (v: number | null | undefined) => (v == null ? "-" : `0x${v.toString(16)}`);
  const header = `# devlink GOT · generation ${reply.generation ?? "?"} · ${reply.got?.length ?? 0} entries\n` +
    `# section        index    address  kind          target  name\n`;
  const body = reply.text ?? (reply.got ?? []).map((r) =>
    `${r.section.padEnd(15)} ${String(r.index).padStart(5)} ${hex(r.address).padStart(10)}  ${r.kind.padEnd(9)} ${hex(r.target).padStart(10)}  ${r.name}`).join("\n");
  return header + body + "\n";
}

/** Splits a byte stream into whole lines; keeps a partial last line for the next chunk. */
export class LineBuffer {
  private rest = "";
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines = text.split("\n");
    this.rest = lines.pop() ?? "";
    return lines.map((l) => l.replace(/\r$/, ""));
  }
  /** What is left when the stream ends. */
  flush(): string[] {
    const r = this.rest;
    this.rest = "";
    return r ? [r] : [];
  }
}

/** Which bytes of a growing log file to read next: from `offset` to `size`, or from 0 when
 * the file was replaced or truncated (it got smaller). */
export function nextRange(offset: number, size: number): { start: number; end: number; reset: boolean } {
  if (size < offset) return { start: 0, end: size, reset: true };
  return { start: offset, end: size, reset: false };
}

export function programLogPath(root: string): string {
  return path.join(root, C.PROGRAM_LOG);
}

// devlink for VS Code: starts `devlink lsp` for C files, shows the session's state in
// the status bar, and offers restart / undo / GOT table. The logic without the editor
// lives in logic.ts (unit-tested).
import * as fs from "fs";
import * as os from "os";
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";
import * as C from "./constants";
import * as L from "./logic";

let client: LanguageClient | undefined;
let output: vscode.OutputChannel;
let statusItem: vscode.StatusBarItem;
let phase: L.Phase = "starting";
let lastStatus: L.Status | undefined;
let failure: string | undefined;
let tail: LogTail | undefined;

// The GOT table opens as a read-only document (no "save?" when it is closed); showing it
// again refreshes the same tab.
const GOT_URI = vscode.Uri.parse("devlink-got:/GOT table");
let gotContent = "";
const gotChanged = new vscode.EventEmitter<vscode.Uri>();

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("devlink");
  statusItem = vscode.window.createStatusBarItem("devlink.status", vscode.StatusBarAlignment.Left, 10);
  statusItem.name = "devlink";
  statusItem.command = C.CMD_MENU;
  context.subscriptions.push(output, statusItem, gotChanged, { dispose: () => tail?.dispose() });
  context.subscriptions.push(vscode.workspace.registerTextDocumentContentProvider("devlink-got",
    { onDidChange: gotChanged.event, provideTextDocumentContent: () => gotContent }));

  const reg = (id: string, fn: (...a: unknown[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  reg(C.CMD_MENU, showMenu);
  reg(C.CMD_RESTART, () => runServerCommand(C.SERVER_RESTART));
  reg(C.CMD_UNDO, () => runServerCommand(C.SERVER_UNDO));
  reg(C.CMD_SHOW_GOT, () => runServerCommand(C.SERVER_SHOW_GOT));
  reg(C.CMD_SHOW_OUTPUT, () => output.show(true));
  reg(C.CMD_RESTART_SERVER, async () => { await stopClient(); await startClient(); });

  context.subscriptions.push(vscode.workspace.onDidGrantWorkspaceTrust(async () => {
    output.appendLine("devlink: the folder is trusted now; starting the language server");
    await stopClient();
    await startClient();
  }));
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration(async (e) => {
    if (e.affectsConfiguration("devlink")) {
      output.appendLine("devlink: settings changed; restarting the language server");
      await stopClient();
      await startClient();
    }
  }));
  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}

function settings(): L.Settings {
  const c = vscode.workspace.getConfiguration("devlink");
  const d = L.DEFAULT_SETTINGS;
  return {
    path: c.get<string>("path", d.path), args: c.get<string[]>("args", d.args), env: c.get<Record<string, string>>("env", d.env),
    mode: c.get<string>("mode", d.mode), onUnsafe: c.get<string>("onUnsafe", d.onUnsafe), onCrash: c.get<string>("onCrash", d.onCrash),
  };
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function render(): void {
  const v = L.statusView(phase, lastStatus, failure);
  statusItem.text = v.text;
  statusItem.tooltip = v.tooltip;
  statusItem.backgroundColor = v.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  statusItem.show();
}

async function fail(message: string): Promise<void> {
  phase = "failed";
  failure = message;
  render();
  output.appendLine(message);
  const pick = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output");
  if (pick === "Open Settings") await vscode.commands.executeCommand("workbench.action.openSettings", "devlink.path");
  if (pick === "Show Output") output.show(true);
}

async function startClient(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  lastStatus = undefined;
  failure = undefined;
  const decision = L.startDecision(vscode.workspace.isTrusted, folder);
  if (!decision.start && decision.phase === "restricted") {
    // nothing runs in a folder VS Code does not trust; granting trust starts it
    phase = "restricted";
    render();
    output.appendLine(decision.message);
    const pick = await vscode.window.showInformationMessage(decision.message, "Manage Workspace Trust");
    if (pick) await vscode.commands.executeCommand("workbench.trust.manage");
    return;
  }
  phase = "starting";
  render();
  const cmd = L.serverCommand(settings(), folder, process.env, os.homedir());
  if (!L.findExecutable(cmd.command, cmd.env.PATH, isExecutable)) {
    await fail(L.startFailureMessage(cmd.command, { notFound: true }));
    return;
  }
  if (!decision.start || !folder) {
    await fail(decision.start ? "devlink needs a folder." : decision.message);
    return;
  }
  output.appendLine(`devlink: starting ${[cmd.command, ...cmd.args].join(" ")} in ${folder}`);

  // stderr is kept (last 64 KiB) so that a server that dies at once is explained.
  let stderr = "";
  let exitCode: number | null = null;
  const serverOptions: ServerOptions = async () => {
    const { spawn } = await import("child_process");
    const child = spawn(cmd.command, cmd.args, { cwd: folder, env: cmd.env, stdio: ["pipe", "pipe", "pipe"] });
    // the child's end is watched here, not through the client: a server that dies
    // before answering `initialize` can leave client.start() pending
    child.on("close", (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      if (client !== c) return;
      if (phase === "starting") {
        client = undefined;
        c.stop(1000).catch(() => undefined);
        void fail(L.startFailureMessage(cmd.command, { stderr, exitCode }));
      } else if (phase === "ready") {
        phase = "stopped";
        render();
        vscode.window.showErrorMessage(L.stoppedMessage(exitCode, stderr), "Restart", "Show Output").then(async (pick) => {
          if (pick === "Restart") await vscode.commands.executeCommand(C.CMD_RESTART_SERVER);
          if (pick === "Show Output") output.show(true);
        });
      }
    });
    child.stderr.on("data", (b: Buffer) => {
      const s = b.toString();
      stderr = (stderr + s).slice(-65536);
      output.append(s);
    });
    return child;
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file", language: "c" }],
    outputChannel: output,
    revealOutputChannelOn: 4, // RevealOutputChannelOn.Never: our own error message says where to look
    initializationFailedHandler: () => false,
    // the client's own toasts ("connection to server is erroring. write EPIPE") say
    // nothing useful: the child's close handler above explains the exit
    errorHandler: {
      error: () => ({ action: ErrorAction.Shutdown, handled: true }),
      closed: () => {
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
    middleware: {
      // a code lens click runs the server's devlink.showGot too: show its table
      executeCommand: async (command, args, next) => {
        const reply = await next(command, args);
        if (command === C.SERVER_SHOW_GOT) await showGot(reply);
        return reply;
      },
    },
  };
  const c = new LanguageClient("devlink", "devlink", serverOptions, clientOptions);
  client = c;
  c.onDidChangeState((e) => {
    if (client !== c) return;
    // a failed start is the close handler's to explain; this is a running server stopping
    if (e.newState === State.Stopped && phase === "ready") {
      phase = "stopped";
      render();
    }
  });
  let startError: string | undefined;
  try {
    await c.start();
  } catch (e) {
    startError = e instanceof Error ? e.message : String(e);
  }
  // start() may also resolve without a running client (a server that died during
  // initialize): both are start failures, explained once with the child's stderr
  if (startError !== undefined || !c.isRunning()) {
    await new Promise((r) => setTimeout(r, 300)); // the child's close and the rest of stderr
    if (client !== c || (phase as L.Phase) !== "starting") return;   // the close handler explained it
    client = undefined;
    await fail(L.startFailureMessage(cmd.command, { stderr, exitCode, error: startError ?? "stopped during start-up" }));
    return;
  }
  if (client !== c || (phase as L.Phase) !== "starting") return;
  phase = "ready";
  render();
  c.onNotification(C.STATUS_NOTIFICATION, (s: L.Status) => {
    lastStatus = s;
    render();
  });
  tail?.dispose();
  tail = new LogTail(L.programLogPath(folder), (line) => output.appendLine(`[program] ${line}`));
}

async function stopClient(): Promise<void> {
  tail?.dispose();
  tail = undefined;
  const c = client;
  client = undefined;
  if (c && c.state !== State.Stopped) {
    try {
      await c.stop(5000);
    } catch (e) {
      output.appendLine(`devlink: stopping the language server: ${e}`);
    }
  }
}

async function showMenu(): Promise<void> {
  const running = client !== undefined && client.state === State.Running;
  const items = L.menuItems(lastStatus, running).map((m) => ({ ...m }));
  const pick = await vscode.window.showQuickPick(items, { placeHolder: L.statusView(phase, lastStatus, failure).text.replace(/\$\([^)]*\)\s*/g, "") });
  if (pick) await vscode.commands.executeCommand(pick.command);
}

async function runServerCommand(command: string, args: unknown[] = []): Promise<unknown> {
  if (!client || client.state !== State.Running) {
    vscode.window.showErrorMessage(failure ?? "devlink: the language server is not running. Open a C file of the project, or run \"devlink: Restart the Language Server\".");
    return undefined;
  }
  // the server reports success and errors itself (window/showMessage)
  const reply = await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  if (command === C.SERVER_SHOW_GOT) await showGot(reply);
  return reply;
}

async function showGot(reply: unknown): Promise<void> {
  let text: string;
  try {
    text = L.gotText(reply as Parameters<typeof L.gotText>[0]);
  } catch (e) {
    vscode.window.showErrorMessage(e instanceof Error ? e.message : String(e));
    return;
  }
  gotContent = text;
  gotChanged.fire(GOT_URI);
  const doc = await vscode.workspace.openTextDocument(GOT_URI);
  await vscode.window.showTextDocument(doc, { preview: true, viewColumn: vscode.ViewColumn.Beside });
}

/** Follows the program's log file (the server sends the program's output there, since
 * its own stdout is the protocol) from its size at start, into the output channel. */
class LogTail {
  private offset: number;
  private lines = new L.LineBuffer();
  private timer: NodeJS.Timeout;
  private reading = false;

  constructor(private file: string, private onLine: (l: string) => void) {
    this.offset = fs.existsSync(file) ? fs.statSync(file).size : 0;
    this.timer = setInterval(() => this.poll(), 500);
  }

  private poll(): void {
    if (this.reading) return;
    let size: number;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      return; // not there yet: the first build has not started the program
    }
    const r = L.nextRange(this.offset, size);
    if (r.reset) this.lines = new L.LineBuffer();
    if (r.end === r.start) return;
    this.reading = true;
    const stream = fs.createReadStream(this.file, { start: r.start, end: r.end - 1, encoding: "utf8" });
    stream.on("data", (chunk) => this.lines.push(chunk as string).forEach(this.onLine));
    stream.on("close", () => { this.offset = r.end; this.reading = false; });
    stream.on("error", () => { this.reading = false; });
  }

  dispose(): void {
    clearInterval(this.timer);
    this.lines.flush().forEach(this.onLine);
  }
}

// Names shared with the language server (devlink/lsp/server.py). Keep them in step:
// the server's STATUS_NOTIFICATION and COMMANDS.

/** Notification the server sends after every build, patch, restart or exit. */
export const STATUS_NOTIFICATION = "devlink/status";

/** workspace/executeCommand commands of the server. */
export const SERVER_RESTART = "devlink.restart";
export const SERVER_UNDO = "devlink.undo";
export const SERVER_SHOW_GOT = "devlink.showGot";

/** The extension's own commands (palette, status bar). They differ from the server's:
 * vscode-languageclient registers the server's command ids itself. */
export const CMD_MENU = "devlink.menu";
export const CMD_RESTART = "devlink.restartProgram";
export const CMD_UNDO = "devlink.undoPatch";
export const CMD_SHOW_GOT = "devlink.showGotTable";
export const CMD_SHOW_OUTPUT = "devlink.showOutput";
export const CMD_RESTART_SERVER = "devlink.restartServer";

/** Where the server, running the session itself, sends the program's output. */
export const PROGRAM_LOG = ".devlink/program.log";

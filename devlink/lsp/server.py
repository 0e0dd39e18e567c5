"""`devlink lsp`: a pygls language server showing the editor what devlink knows.

Thin handlers: each translates LSP types into one backend request (backend.py) and the
reply into LSP types (hover.py, lens.py, diagnostics.py).  It offers hovers, code lenses,
diagnostics and commands only, so it sits beside clangd, which keeps completion and
go-to-definition.  Backend calls run off the event loop (a DWARF index may still be
building), and no request, however odd, takes the server down: an unknown file, a
position past the end or a file outside the project get an empty answer.
"""

from __future__ import annotations

import asyncio
import logging
import os

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from devlink import __version__
from devlink.diagnostics import word_at
from devlink.errors import DevlinkError
from devlink.lsp import diagnostics as D
from devlink.lsp.hover import hover_markdown
from devlink.lsp.lens import lens_title

STATUS_NOTIFICATION = "devlink/status"
COMMANDS = ("devlink.restart", "devlink.undo", "devlink.showGot")

log = logging.getLogger("devlink.lsp")


class DevlinkServer(LanguageServer):
    def __init__(self, mode: str = "auto"):
        super().__init__("devlink", __version__)
        self.mode = mode
        #: on_unsafe / on_crash given on the command line (a session started here)
        self.policies: dict[str, str] = {}
        self.backend = None
        self.root: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.published: set[str] = set()
        self.start_error: str | None = None

    # --- plumbing ----------------------------------------------------------------------------
    async def ask(self, cmd: str, **args) -> dict:
        if self.backend is None:
            return {"ok": False, "error": self.start_error or "devlink has not started yet"}
        return await asyncio.to_thread(self.backend.request, cmd, **args)

    def path_of(self, uri: str) -> str | None:
        """The file of `uri` if it is inside the project, else None."""
        try:
            path = to_fs_path(uri)
        except Exception:
            return None
        if not path or self.root is None:
            return None
        path = os.path.realpath(path)
        return path if path.startswith(self.root + os.sep) else None

    def on_event(self, event: dict) -> None:
        """From a backend thread: refresh what the editor shows, on the loop."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.refresh(event)))

    async def refresh(self, event: dict) -> None:
        if event.get("event") in ("gone", "error"):
            self.window_show_message(T.ShowMessageParams(
                type=T.MessageType.Error if event["event"] == "error" else T.MessageType.Warning,
                message=event.get("message", "")))
            return
        status = event.get("status") or {}
        self.protocol.notify(STATUS_NOTIFICATION, status)
        reply = await self.ask("diagnostics")
        if reply.get("ok"):
            by_uri = D.to_lsp(reply.get("files", {}))
            for uri in self.published - set(by_uri):
                by_uri[uri] = []
            for uri, diags in by_uri.items():
                self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=diags))
            self.published = {u for u, d in by_uri.items() if d}
        caps = self.client_capabilities.workspace
        if caps is not None and caps.code_lens is not None and caps.code_lens.refresh_support:
            try:
                self.workspace_code_lens_refresh(None)
            except Exception as e:      # an old client that says it can but cannot
                log.warning("codeLens/refresh failed: %s", e)


server = DevlinkServer()


@server.feature(T.INITIALIZED)
async def initialized(ls: DevlinkServer, params: T.InitializedParams) -> None:
    from devlink.lsp.backend import connect
    ls.loop = asyncio.get_running_loop()
    root = ls.workspace.root_path
    if not root:
        ls.start_error = "devlink needs a workspace folder (the C project) to work in"
        ls.window_show_message(T.ShowMessageParams(type=T.MessageType.Error, message=ls.start_error))
        return
    ls.root = os.path.realpath(root)
    try:
        backend = await asyncio.to_thread(connect, ls.root, ls.mode, ls.policies)
    except DevlinkError as e:
        ls.start_error = str(e)
        ls.window_show_message(T.ShowMessageParams(type=T.MessageType.Error, message=f"devlink: {e}"))
        return
    backend.subscribe(ls.on_event)      # before it starts: the first build's event counts
    backend.start()
    ls.backend = backend
    ls.window_log_message(T.LogMessageParams(type=T.MessageType.Info,
                                             message=f"devlink: {backend.mode} session for {ls.root}"))
    if backend.mode == "attached":
        # the session pushes only changes: show its current state now
        await ls.refresh({"event": "updated", "status": await ls.ask("status")})


@server.feature(T.SHUTDOWN)
async def shutdown(ls: DevlinkServer, params) -> None:
    if ls.backend is not None:
        backend, ls.backend = ls.backend, None
        await asyncio.to_thread(backend.close)


@server.feature(T.TEXT_DOCUMENT_HOVER)
async def hover(ls: DevlinkServer, params: T.HoverParams) -> T.Hover | None:
    path = ls.path_of(params.text_document.uri)
    if path is None:
        return None
    try:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        lines = doc.lines
    except OSError:
        return None
    line_no, char = params.position.line, params.position.character
    if not 0 <= line_no < len(lines):
        return None
    hit = word_at(lines[line_no].rstrip("\r\n"), char)
    if hit is None:
        return None
    word, start = hit
    reply = await ls.ask("symbol", name=word, file=path, line=line_no + 1)
    if not reply.get("ok"):
        text = f"devlink: {reply.get('error')}"
    else:
        text = hover_markdown(reply, ls.root)
        if text is None:
            return None
    return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text),
                   range=T.Range(start=T.Position(line=line_no, character=start),
                                 end=T.Position(line=line_no, character=start + len(word))))


@server.feature(T.TEXT_DOCUMENT_CODE_LENS)
async def code_lens(ls: DevlinkServer, params: T.CodeLensParams) -> list[T.CodeLens]:
    path = ls.path_of(params.text_document.uri)
    if path is None or not path.endswith(".c"):
        return []
    reply = await ls.ask("lenses", file=path)
    if not reply.get("ok"):
        return []
    out = []
    for row in reply.get("lenses", []):
        line = max(0, row["line"] - 1)
        out.append(T.CodeLens(range=T.Range(start=T.Position(line=line, character=0),
                                            end=T.Position(line=line, character=0)),
                              command=T.Command(title=lens_title(row), command="devlink.showGot",
                                                arguments=[row["name"]])))
    return out


async def _command(ls: DevlinkServer, cmd: str) -> dict:
    reply = await ls.ask(cmd)
    msg = reply.get("message") if reply.get("ok") else f"devlink: {reply.get('error')}"
    if msg:
        ls.window_show_message(T.ShowMessageParams(
            type=T.MessageType.Info if reply.get("ok") else T.MessageType.Error, message=msg))
    return reply


@server.command("devlink.restart")
async def restart(ls: DevlinkServer, *args) -> dict:
    return await _command(ls, "restart")


@server.command("devlink.undo")
async def undo(ls: DevlinkServer, *args) -> dict:
    return await _command(ls, "undo")


@server.command("devlink.showGot")
async def show_got(ls: DevlinkServer, *args) -> dict:
    """The GOT as rows and as text (a client without a table view shows the text)."""
    reply = await ls.ask("got")
    if not reply.get("ok"):
        return reply
    from devlink.tables import fmt_addr
    rows = reply["got"]
    want = {a for a in args if isinstance(a, str)}
    shown = [r for r in rows if not want or r["name"].removesuffix("$got") in want] or rows
    text = "\n".join(f"{r['section']:15} {r['index']:>5} {fmt_addr(r['address']):>10}  {r['kind']:9} "
                     f"{fmt_addr(r['target']):>10}  {r['name']}" for r in shown)
    ls.window_log_message(T.LogMessageParams(type=T.MessageType.Info, message=text))
    return {"ok": True, "generation": reply.get("generation"), "got": shown, "text": text}


def _terminate(signum, frame):
    """SIGTERM from the editor: stop the session (and its program) first, then exit
    (the protocol's reader thread would keep a normal exit waiting on stdin)."""
    backend, server.backend = server.backend, None
    if backend is not None:
        backend.close()
    os._exit(0)


def main(mode: str = "auto", policies: dict[str, str] | None = None) -> int:
    import signal
    server.mode = mode
    server.policies = dict(policies or {})
    # an editor that stops the server with SIGTERM must not leave the program running
    signal.signal(signal.SIGTERM, _terminate)
    server.start_io()
    if server.backend is not None:       # the client went away without a shutdown
        server.backend.close()
    return 0

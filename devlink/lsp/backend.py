"""Where the language server gets its facts: the one module that knows about sessions.

Both backends speak the session host's request vocabulary (`SessionHost.handle_request`:
status, symbol, lenses, diagnostics, got, restart, undo) and push the same
`{"event": "updated"}` events, so the features never ask which one they have:

- attached: a `devlink watch` runs for the workspace; requests go over its Unix socket
  (one connection for requests, one subscribed connection for events);
- standalone: nothing runs; the server runs a SessionHost itself in a background thread
  (build, child, watcher, and the socket, so `devlink status` reaches it too) and calls
  `handle_request` directly.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from devlink.errors import DevlinkError


def _failed(e: Exception) -> dict:
    if isinstance(e, DevlinkError):
        return {"ok": False, "error": str(e)}
    if isinstance(e, (ValueError, TypeError, KeyError)):
        return {"ok": False, "error": f"bad request: {e}"}
    return {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}


class AttachedBackend:
    """A running `devlink watch` session, over its socket."""

    mode = "attached"

    def __init__(self, root: str, wait: float = 60.0):
        from devlink.watch.control import SessionClient, running_session_pid
        self.root = os.path.abspath(root)
        self.lock = threading.Lock()
        self.closed = False
        deadline = time.monotonic() + wait
        while True:                     # the session opens its socket after its first build
            try:
                self.client = SessionClient(self.root, timeout=10.0)
                break
            except DevlinkError:
                if time.monotonic() > deadline or running_session_pid(self.root) is None:
                    raise
                time.sleep(0.1)

    def start(self) -> None:
        """Nothing to start: the session runs elsewhere."""

    def request(self, cmd: str, **args) -> dict:
        from devlink.watch.control import SessionClient
        with self.lock:
            for attempt in (0, 1):
                try:
                    return self.client.request(cmd, **args)
                except (DevlinkError, OSError, ValueError) as e:
                    if attempt or self.closed:
                        return _failed(e if isinstance(e, DevlinkError) else DevlinkError(
                            f"the devlink session did not answer: {e}"))
                    try:                # the session may have restarted its socket: reconnect once
                        self.client.close()
                        self.client = SessionClient(self.root, timeout=10.0)
                    except (DevlinkError, OSError) as e2:
                        return _failed(e2 if isinstance(e2, DevlinkError) else DevlinkError(str(e2)))

    def subscribe(self, callback) -> None:
        from devlink.watch.control import SessionClient

        def listen():
            try:
                c = SessionClient(self.root, timeout=None)
                c.request("subscribe")
                while not self.closed:
                    callback(c.read())
            except (DevlinkError, OSError, ValueError) as e:
                if not self.closed:
                    callback({"event": "gone", "message": f"the devlink session went away: {e}"})

        threading.Thread(target=listen, name="devlink-lsp-events", daemon=True).start()

    def close(self) -> None:
        self.closed = True
        try:
            self.client.close()
        except OSError:
            pass


class StandaloneBackend:
    """The session runs inside the language server (an editor alone is enough)."""

    mode = "standalone"

    def __init__(self, root: str, log_path: str | None = None, policies: dict[str, str] | None = None):
        from devlink.host import Lines, SessionHost
        self.root = os.path.abspath(root)
        self.log_path = log_path or os.path.join(self.root, ".devlink", "program.log")
        from devlink import private
        private.private_dir(os.path.dirname(self.log_path))
        # the program's output goes to a log file: the server's stdout is the protocol
        self.log = os.fdopen(private.open_private(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "ab",
                             buffering=0)
        self.host = SessionHost(self.root, out=Lines(sys.stderr), policies=policies, role="devlink lsp",
                               child_output=self.log)
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, name="devlink-lsp-session", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.host.run()
        except DevlinkError as e:          # the lock is taken, a bad config...
            self.error = str(e)
        except Exception as e:             # never take the language server down with it
            self.error = f"internal error in the session: {type(e).__name__}: {e}"
        else:
            return
        self.host.ready.set()
        for fn in list(self.host.listeners):
            fn({"event": "error", "message": f"devlink: {self.error}"})

    def request(self, cmd: str, **args) -> dict:
        if self.error:
            return {"ok": False, "error": self.error}
        if cmd == "quit":
            return {"ok": False, "error": "the session belongs to the editor: it stops with the language server"}
        try:
            return self.host.handle_request({"cmd": cmd, **args})
        except Exception as e:
            return _failed(e)

    def subscribe(self, callback) -> None:
        self.host.add_listener(callback)

    def close(self) -> None:
        self.host.post("quit")
        self.thread.join(10)
        self.log.close()


def connect(root: str, mode: str = "auto", policies: dict[str, str] | None = None):
    """Attach to the project's running session, or start one here (`mode`: auto,
    attached, standalone; `policies`: on_unsafe/on_crash over the project's, for a
    session started here); the caller subscribes, then calls `start()`."""
    from devlink.watch.control import running_session_pid
    if mode == "attached" or (mode == "auto" and running_session_pid(root) is not None):
        return AttachedBackend(root)
    if mode not in ("auto", "standalone"):
        raise DevlinkError(f"unknown mode {mode!r}; use auto, attached or standalone")
    return StandaloneBackend(root, policies=policies)

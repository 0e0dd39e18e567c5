"""One session per project: its lock, and the Unix socket other commands talk to it by.

`.devlink/session.lock` is held (flock) by the running `devlink watch` (or the language
server in standalone mode) and names its pid, so a second one says who runs instead of
fighting over the output.  `.devlink/session.sock` (mode 0600, never TCP) carries one
JSON object per line each way: `{"cmd": "status"}` -> `{"ok": true, ...}`.  After
`{"cmd": "subscribe"}` the session also pushes `{"event": "updated", ...}` lines on that
connection whenever something the editor shows changed (the language server listens
instead of polling).  A socket
path longer than the kernel's limit (108 bytes) lives in a private folder under
$XDG_RUNTIME_DIR or /tmp, and `.devlink/session.sock` is then a file naming it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import stat
import threading

from devlink import private
from devlink.errors import DevlinkError

STATE_DIR = ".devlink"
LOCK_NAME = "session.lock"
SOCKET_NAME = "session.sock"
_MAX_SOCKET_PATH = 100


def state_dir(root: str) -> str:
    return os.path.join(os.path.abspath(root), STATE_DIR)


class SessionLock:
    """The project's session lock; `acquire` fails with the running session's pid."""

    def __init__(self, root: str):
        self.path = os.path.join(state_dir(root), LOCK_NAME)
        self.fd = -1

    def acquire(self, what: str = "devlink watch") -> None:
        private.private_dir(os.path.dirname(self.path))
        fd = private.open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            pid = holder[0] if holder else "?"
            who = " ".join(holder[1:]) or "devlink"
            raise DevlinkError(f"a devlink session ({who}) is already running for this project (pid {pid}); "
                               f"use `devlink status` to talk to it, or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1


def running_session_pid(root: str) -> int | None:
    """The pid of the session holding the project's lock, or None."""
    path = os.path.join(state_dir(root), LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            words = os.pread(fd, 200, 0).decode(errors="replace").split()
            return int(words[0]) if words and words[0].isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _socket_path(root: str) -> tuple[str, str | None, str | None]:
    """(where the socket is bound, the pointer file naming it or None, a folder made
    for this session alone, to remove at the end, or None)."""
    path = os.path.join(state_dir(root), SOCKET_NAME)
    if len(path.encode()) <= _MAX_SOCKET_PATH:
        return path, None, None
    folder, fresh = private.shared_private_dir(_socket_dir_name())
    digest = hashlib.sha1(os.path.abspath(root).encode()).hexdigest()[:16]
    return os.path.join(folder, f"{digest}.sock"), path, folder if fresh else None


def _socket_dir_name() -> str:
    return f"devlink-{os.getuid()}"


def _is_socket_dir(folder: str) -> bool:
    """`folder` is one ControlServer binds in: private to us, in the shared base, named
    devlink-UID (or devlink-UID-XXXXXX when another user had taken that name)."""
    name = _socket_dir_name()
    base = os.path.basename(folder)
    return os.path.dirname(folder) == private.shared_base() and (base == name or base.startswith(name + "-")) \
        and private.is_private(folder)


#: the longest request line read (requests are a few hundred bytes; a longer line is
#: refused without being read into memory)
MAX_REQUEST = 1 << 20


class BadRequest(DevlinkError):
    """A request the protocol does not allow: answered `bad request: ...`."""

    def __init__(self, message: str):
        super().__init__(f"bad request: {message}")


def parse_request(line: bytes) -> dict:
    """One request line -> its object, or BadRequest saying what is wrong with it."""
    if len(line) > MAX_REQUEST:
        raise BadRequest(f"a request is one JSON line of at most {MAX_REQUEST} bytes")
    try:
        request = json.loads(line)
    except RecursionError:
        raise BadRequest("nested too deeply; a request is a flat JSON object") from None
    except ValueError as e:
        raise BadRequest(f"not JSON ({e})") from None
    if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
        raise BadRequest("a request is a JSON object with a string `cmd`")
    return request


def request_int(request: dict, key: str, lo: int, hi: int) -> int:
    """`request[key]` as an integer from `lo` to `hi` (BadRequest otherwise: a float,
    a string or a number past 64 bits never reaches the handler)."""
    value = request.get(key)
    if type(value) is not int or not lo <= value <= hi:
        raise BadRequest(f"`{key}` must be an integer from {lo} to {hi:#x}")
    return value


def request_str(request: dict, key: str, optional: bool = False, limit: int = 4096) -> str | None:
    """`request[key]` as a string of at most `limit` characters (BadRequest otherwise)."""
    value = request.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"`{key}` must be a string of at most {limit} characters")
    return value


class ControlServer:
    """Serves requests on the project's socket; `handler(request) -> dict` runs in the
    connection's thread (the handler takes the session's lock itself)."""

    def __init__(self, root: str, handler, subscribe=None):
        self.handler = handler
        self.subscribe = subscribe      #: subscribe(send): send(event) pushes one line
        self.path, self.pointer, self.own_dir = _socket_path(root)
        self.sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            os.unlink(self.path)          # a stale socket of a session that died (we hold the lock)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(self.path)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        if self.pointer:
            private.write_private(self.pointer, self.path.encode())
        sock.listen(8)
        self.sock = sock
        self._thread = threading.Thread(target=self._serve, name="devlink-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        wlock = threading.Lock()           # replies and pushed events never interleave
        closed = threading.Event()
        with conn, conn.makefile("rwb") as f:
            def send(event: dict) -> None:
                if closed.is_set():
                    raise OSError("subscriber gone")
                with wlock:
                    f.write(json.dumps(event).encode() + b"\n")
                    f.flush()

            for line in self._lines(f):
                try:
                    request = parse_request(line)
                    if request["cmd"] == "subscribe" and self.subscribe is not None:
                        self.subscribe(send)
                        reply = {"ok": True, "subscribed": True}
                    else:
                        reply = self.handler(request)
                except DevlinkError as e:
                    reply = {"ok": False, "error": str(e)}
                except (ValueError, TypeError, KeyError) as e:
                    reply = {"ok": False, "error": f"bad request: {e}"}
                except Exception as e:          # never let one request kill the session
                    reply = {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}
                try:
                    with wlock:
                        f.write(json.dumps(reply).encode() + b"\n")
                        f.flush()
                except OSError:
                    break
            closed.set()

    @staticmethod
    def _lines(f):
        """The connection's lines; one longer than MAX_REQUEST is cut there (and then
        refused by parse_request), not read whole."""
        try:
            while line := f.readline(MAX_REQUEST + 1):
                if len(line) > MAX_REQUEST and not line.endswith(b"\n"):
                    while (rest := f.readline(MAX_REQUEST)) and not rest.endswith(b"\n"):
                        pass             # skip to the end of the line, a piece at a time
                yield line
        except OSError:
            return

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        for p in (self.path, self.pointer):
            if p:
                try:
                    os.unlink(p)
                except OSError:
                    pass
        if self.own_dir:
            try:
                os.rmdir(self.own_dir)
            except OSError:
                pass


class SessionClient:
    """Talks to the session of a project: `request("status")`."""

    def __init__(self, root: str, timeout: float = 10.0):
        self.root = os.path.abspath(root)
        path = os.path.join(state_dir(root), SOCKET_NAME)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise DevlinkError(f"no devlink session is running for {self.root}; start one with `devlink watch`") from None
        if stat.S_ISREG(st.st_mode):
            with open(path) as f:
                path = f.read().strip()
            # a pointer planted in the folder could name anyone's socket: only one in our
            # own private folder, where ControlServer puts it, is followed
            if st.st_uid != os.getuid() or not _is_socket_dir(os.path.dirname(path)):
                raise DevlinkError(f"{os.path.join(state_dir(root), SOCKET_NAME)} names a socket outside "
                                   f"devlink's private folder; remove it") from None
        elif not stat.S_ISSOCK(st.st_mode):
            raise DevlinkError(f"{path} is not a devlink session socket; remove it") from None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise DevlinkError(f"no devlink session is running for {self.root} (its socket is stale); "
                               f"start one with `devlink watch`") from None
        self.file = self.sock.makefile("rwb")

    def request(self, cmd: str, **args) -> dict:
        self.file.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        self.file.flush()
        return self.read()

    def read(self) -> dict:
        """The next line from the session (a reply, or a pushed event after subscribe)."""
        try:
            line = self.file.readline()
        except OSError as e:
            raise DevlinkError(f"the devlink session did not answer: {e}") from None
        if not line:
            raise DevlinkError("the devlink session closed the connection")
        return json.loads(line)

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

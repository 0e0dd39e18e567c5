"""`devlink watch`: build, start the program, and land every save in it while it runs.

The loop, on the main thread: wait for a burst of file events (watcher.py), map the
paths to the sources they affect (the sources themselves, or every source whose
depfile names a saved header), recompile those, relink in place and patch the child
(Session.update), and print one line.  A compile error prints gcc's own diagnostics
and changes nothing: the program keeps its last good code.  A new or deleted source,
or a changed configuration, rebuilds and restarts the program.  The control socket
(control.py) and the keys r/u/q act on the same session under one lock.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from devlink.errors import DevlinkError
from devlink.watch import config as cfgmod
from devlink.watch.control import ControlServer, SessionLock
from devlink.watch.watcher import ChangeWatcher


class Terminal:
    """devlink's own lines, apart from the program's: on stderr, prefixed and coloured
    (the program's output goes straight to the terminal, escapes and all)."""

    def __init__(self, stream=None):
        from rich.console import Console
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.lock = threading.Lock()

    def line(self, text: str, style: str = "cyan") -> None:
        from rich.markup import escape
        with self.lock:
            self.console.print(f"[bold {style}]devlink[/] {escape(text)}")

    def error(self, text: str) -> None:
        self.line(text, "red")

    def raw(self, text: str) -> None:
        """Text as the compiler wrote it (file:line:column: ...), unchanged."""
        with self.lock:
            self.stream.write(text)
            self.stream.flush()


def build_args_from_config(cfg: cfgmod.ProjectConfig):
    from devlink.cli import parse_build_args
    args = parse_build_args(cfg.build_argv())
    args.source_flags = dict(cfg.source_flags)
    args.launcher = list(cfg.launcher)
    args.cc = cfg.cc
    return args


class WatchApp:
    def __init__(self, root: str, terminal: Terminal | None = None, keys: bool | None = None):
        self.root = os.path.abspath(root)
        self.term = terminal or Terminal()
        self.keys = sys.stdin.isatty() if keys is None else keys
        self.lock = threading.RLock()           #: held while the session changes
        self.session = None
        self.cfg: cfgmod.ProjectConfig | None = None
        self.quit = threading.Event()
        self.commands: list[str] = []           #: keys pressed, run by the loop
        self.patches = 0
        self.last_exit_reported = None
        self.compile_errors: dict[str, str] = {}  #: source -> diagnostics of its failed compile
        self.trace = os.environ.get("DEVLINK_TRACE")

    # --- set-up ---------------------------------------------------------------------------
    def _new_session(self):
        from devlink.session import Session
        args = build_args_from_config(self.cfg)
        env = dict(os.environ)
        env.update(self.cfg.env)
        s = Session(args, list(self.cfg.args), env=env)
        for name in ("on_unsafe", "on_crash"):
            if hasattr(s, name):
                setattr(s, name, getattr(self.cfg, name))
        return s

    def _initial_build(self) -> None:
        s = self.session
        n = len(self.cfg.sources)
        t0 = time.perf_counter()
        if self.term.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            with Progress(TextColumn("[bold cyan]devlink[/] compiling"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.description}"), console=self.term.console, transient=True) as bar:
                task = bar.add_task("", total=n)
                s.on_compiled = lambda src, done, total: bar.update(task, completed=done,
                                                                    description=os.path.basename(src))
                s.build()
        else:
            self.term.line(f"compiling {n} file{'s' * (n != 1)}")
            s.build()
        s.on_compiled = None
        self.term.line(f"built {os.path.relpath(self.cfg.output, self.root)} from {n} file{'s' * (n != 1)} "
                       f"in {(time.perf_counter() - t0) * 1000:.0f} ms")

    def _start_child(self) -> None:
        child = self.session.start()
        self.last_exit_reported = None
        self.term.line(f"running {os.path.basename(self.cfg.output)} (pid {child.pid})"
                       + ("; keys: r restart, u undo, q quit" if self.keys else ""))

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> int:
        self.cfg = cfgmod.load_config(self.root)
        for note in self.cfg.notes:
            self.term.line(note, "yellow")
        lock = SessionLock(self.root)
        lock.acquire("devlink watch")
        server = ControlServer(self.root, self.handle_request)
        watcher = ChangeWatcher(self.root, on_event=self._on_event)
        restore_tty = None
        try:
            self.session = self._new_session()
            try:
                self._initial_build()
            except DevlinkError as e:
                # nothing to run yet: show the error, build again on the next save
                self.term.error(str(e))
                self.session = None
            server.start()
            watcher.start()
            self.watcher = watcher
            if self.session is not None:
                self._start_child()
            if self.keys:
                restore_tty = self._start_keys()
            while not self.quit.is_set():
                paths = watcher.next_batch(timeout=0.2)
                with self.lock:
                    self._run_commands()
                    if paths:
                        self._changed(paths)
                    self._check_child()
            return 0
        except KeyboardInterrupt:
            return 130
        finally:
            if restore_tty:
                restore_tty()
            watcher.stop()
            server.close()
            if self.session is not None:
                self.session.close()
            lock.release()
            self.term.line("stopped")

    def _on_event(self, path: str) -> None:
        """From the watcher's thread: a save of a file being compiled stops that compile."""
        s = self.session
        if s is not None and path in s.compiling:
            from devlink.build import cancel_compile
            cancel_compile(s.compiling, path)

    def _affected(self, paths: set[str]) -> tuple[list[int], bool]:
        """(indexes of sources to recompile, whether the source list/config changed)."""
        cfg = self.cfg
        config_files = {os.path.join(self.root, cfgmod.CONFIG_NAME), os.path.join(self.root, cfgmod.COMPILE_COMMANDS)}
        if paths & config_files:
            return [], True
        sources = set(cfg.sources)
        if cfg.source_globs is not None:
            for p in paths:
                if p.endswith(".c") and ((p not in sources and os.path.exists(p)) or (p in sources and not os.path.exists(p))):
                    if p in sources or p in cfgmod.find_sources(self.root, cfg.source_globs):
                        return [], True
        s = self.session
        indexes = []
        for i, src in enumerate(s.args.sources if s is not None else []):
            src = os.path.abspath(src)
            deps = {os.path.abspath(d) for d in (s.deps.get(s.args.sources[i]) or {src: None})}
            deps.add(src)
            if deps & paths:
                indexes.append(i)
        return indexes, False

    def _changed(self, paths: set[str]) -> None:
        indexes, reconfigure = self._affected(paths)
        if reconfigure or self.session is None:
            self._rebuild("configuration or source list changed" if reconfigure else "retrying the build")
            return
        if not indexes:
            return
        s = self.session
        names = ", ".join(os.path.relpath(s.args.sources[i], self.root) for i in indexes)
        try:
            gen = s.update(indexes)
        except DevlinkError as e:
            from devlink.build import CompileCancelled
            if isinstance(e, CompileCancelled):
                return                 # the newer save is already queued
            self.term.error(f"{e}; {'the program keeps its last good code' if s.running else 'nothing changed'}")
            return
        if gen is None:
            self.term.line(f"{names}: no change to the program", "dim")
            return
        if gen.action not in ("patched", "file"):
            # an unsafe edit: the session applied the policy and said what it did
            self.term.line(f"gen {gen.number} · {names} · {gen.action}", "yellow")
            return
        flip = time.time()
        self.patches += bool(gen.patched)
        if self.trace:
            with open(self.trace, "a") as f:
                f.write(json.dumps({"event": "flip", "time": flip, "generation": gen.number,
                                    "compile_ms": gen.compile_ms, "link_ms": gen.link_ms,
                                    "patch_ms": gen.patch_ms, "files": names}) + "\n")
        self.term.line(
            f"{time.strftime('%H:%M:%S')} gen {gen.number} · {names} · {len(gen.changed)} changed, "
            f"{len(gen.added)} added, {len(gen.removed)} removed · compile {gen.compile_ms:.0f} ms · "
            f"link {gen.link_ms:.1f} ms · patch {gen.patch_ms:.2f} ms"
            + ("" if gen.patched else " · not running: saved to the program file"), "green")
        if not s.running:
            self._start_child()

    def _rebuild(self, why: str) -> None:
        """Full build on a fresh session (new/deleted source, new config); restart."""
        try:
            cfg = cfgmod.load_config(self.root)
        except DevlinkError as e:
            self.term.error(f"{e}; keeping the running program")
            return
        self.term.line(f"{why}: rebuilding ({len(cfg.sources)} files)")
        old_cfg, self.cfg = self.cfg, cfg
        new = self._new_session()
        try:
            new.build()
        except DevlinkError as e:
            self.cfg = old_cfg
            self.term.error(f"{e}; the program keeps its last good code")
            return
        if self.session is not None:
            self.session.close()
        self.session = new
        self._start_child()

    def _check_child(self) -> None:
        """The child ended: a crash after a patch gets the crash policy (restart or
        rollback); an exit is reported, and the next save or `r` starts it again."""
        s = self.session
        if s is None:
            return
        ev = s.child_event()
        if ev is None:
            return
        name = os.path.basename(self.cfg.output)
        if ev.crash is not None:
            s.handle_crash(ev.crash)
            self.term.error(f"{ev.crash.message(name)} (pid {s.child.pid})")
            return
        code = ev.status
        if code is not None and code < 0:
            from devlink.hotpatch.crash import signal_name
            self.term.error(f"{name} was killed by {signal_name(-code)}; save a file or press r to start it again")
        else:
            self.term.line(f"{name} exited with status {code}; save a file or press r to start it again", "yellow")

    # --- keys and commands ---------------------------------------------------------------------
    def _start_keys(self):
        import termios
        import tty
        fd = sys.stdin.fileno()
        try:
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except termios.error:
            return None

        def read_keys():
            while not self.quit.is_set():
                try:
                    ch = os.read(fd, 1)
                except OSError:
                    return
                if not ch:
                    return
                key = ch.decode(errors="ignore").lower()
                if key in ("r", "u", "q"):
                    self.commands.append(key)
                    self.watcher.wake()

        threading.Thread(target=read_keys, name="devlink-keys", daemon=True).start()
        return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    def _run_commands(self) -> None:
        while self.commands:
            key = self.commands.pop(0)
            try:
                if key == "q":
                    self.quit.set()
                elif key == "r":
                    self.term.line(self.restart()["message"])
                elif key == "u":
                    self.term.line(self.undo()["message"])
            except DevlinkError as e:
                self.term.error(str(e))

    def restart(self) -> dict:
        with self.lock:
            if self.session is None or self.session.linker is None:
                raise DevlinkError("nothing to restart: the program has not been built yet; fix the build errors")
            self.session.stop()
            self._start_child()
            return {"ok": True, "message": f"restarted (pid {self.session.child.pid})"}

    def undo(self) -> dict:
        with self.lock:
            s = self.session
            if s is None or s.linker is None:
                raise DevlinkError("nothing to undo: the program has not been built yet")
            names = s.undo()
            return {"ok": True, "functions": names,
                    "message": f"undo: {', '.join(names) if names else 'nothing'} went back to the previous code"}

    def detach(self) -> dict:
        with self.lock:
            s = self.session
            pid = s.detach() if s is not None else None
            if pid is None:
                return {"ok": True, "message": "the program is not traced"}
            return {"ok": True, "pid": pid, "message": f"detached from pid {pid}; attach gdb with `gdb -p {pid}`"}

    def status(self) -> dict:
        s = self.session
        child = s.child if s is not None else None
        state = "not built" if s is None or s.linker is None else (
            "running" if s.running else ("not started" if child is None else
                                         ("crashed" if (child.returncode or 0) < 0 else "exited")))
        return {"ok": True, "root": self.root, "program": self.cfg.output if self.cfg else None,
                "pid": child.pid if child is not None else None, "state": state,
                "exit_status": None if child is None or s.running else child.returncode,
                "generation": s.linker.generation if s is not None and s.linker is not None else None,
                "patches": self.patches, "session_pid": os.getpid()}

    def handle_request(self, request: dict) -> dict:
        """A request from the control socket (other devlink commands, the language server)."""
        cmd = request["cmd"]
        if cmd == "status":
            with self.lock:
                return self.status()
        if cmd in ("symbols", "got"):
            from devlink import tables as T
            with self.lock:
                s = self.session
                if s is None or s.linker is None:
                    raise DevlinkError("the program has not been built yet")
                rows = (T.function_rows(s.linker) + T.variable_rows(s.linker)) if cmd == "symbols" else T.got_rows(s.linker)
                return {"ok": True, "generation": s.linker.generation, "program": self.cfg.output, cmd: rows}
        if cmd == "read":
            address, size = int(request["address"]), int(request["size"])
            if not 0 < size <= 1 << 16:
                raise DevlinkError("read: size must be between 1 and 65536 bytes")
            with self.lock:
                s = self.session
                if s is None or not s.running or s.mem is None:
                    raise DevlinkError("the program is not running")
                return {"ok": True, "data": s.mem.read(address, size).hex()}
        if cmd == "restart":
            return self.restart()
        if cmd == "undo":
            return self.undo()
        if cmd == "detach":
            return self.detach()
        if cmd == "quit":
            self.quit.set()
            self.watcher.wake()
            return {"ok": True, "message": "stopping"}
        raise DevlinkError(f"unknown command {cmd!r}; the commands are: status, symbols, got, read, restart, undo, "
                          f"detach, quit")


def main(root: str) -> int:
    return WatchApp(root).run()

"""The session host: one project's dev session, below every front end.

It owns what a running project is, whoever shows it: the configuration and the build
arguments made from it, the Session (build, child, patches), the project's lock and
control socket, the file watcher and its loop, the requests other commands and the
language server send (status, symbol, lenses, diagnostics, got, read, restart, undo,
detach, quit), the DWARF index those answers need, and the events subscribers get.

The loop (`run`, one thread): wait for a burst of file events (watcher.py), map the
paths to the sources they affect (the sources themselves, or every source whose depfile
names a saved header), recompile those, relink in place and patch the child
(Session.update), and say one line.  A compile error shows gcc's own diagnostics and
changes nothing: the program keeps its last good code.  A changed configuration
rebuilds and restarts the program.  Requests and posted commands act on the same
session under one lock.

Front ends sit on it: `devlink watch` (watch/app.py: keys, the terminal's lines) and the
language server's standalone backend (lsp/backend.py).  Messages go to `out`, anything
with `line`, `error`, `raw` and `progress` (`Lines` writes plain lines to a stream).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time

from devlink.build_args import parse_build_args
from devlink.errors import DevlinkError
from devlink.watch import config as cfgmod
from devlink.watch.control import ControlServer, SessionLock, request_int, request_str
from devlink.watch.watcher import ChangeWatcher


class Lines:
    """devlink's messages as plain lines (`devlink TEXT`) on a stream (default stderr)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.lock = threading.Lock()

    def line(self, text: str, style: str = "cyan") -> None:
        with self.lock:
            self.stream.write(f"devlink {text}\n")
            self.stream.flush()

    def error(self, text: str) -> None:
        self.line(text, "red")

    def raw(self, text: str) -> None:
        """Text as the compiler wrote it (file:line:column: ...), unchanged."""
        with self.lock:
            self.stream.write(text)
            self.stream.flush()

    @contextlib.contextmanager
    def progress(self, total: int):
        """Around the first build: yields `on_compiled(source, done, total)` or None."""
        self.line(f"compiling {total} file{'s' * (total != 1)}")
        yield None


#: seconds without a save after which a session collects what its updates replaced
IDLE_RECLAIM_S = 2.0


def build_args_from_config(cfg: cfgmod.ProjectConfig):
    args = parse_build_args(cfg.build_argv())
    args.source_flags = dict(cfg.source_flags)
    args.launcher = list(cfg.launcher)
    args.cc = cfg.cc
    return args


class SessionHost:
    def __init__(self, root: str, out=None, policies: dict[str, str] | None = None,
                 role: str = "devlink watch", child_output=None, output: str | None = None):
        self.root = os.path.abspath(root)
        #: the program's path from the command line (`--output`), over devlink.toml's
        self.output = os.path.abspath(output) if output else None
        #: on_unsafe / on_crash from the command line, over the project's configuration
        self.policies = {k: v for k, v in (policies or {}).items() if v}
        self.out = out or Lines()
        self.role = role                       #: who holds the lock (named to a second session)
        #: added to the "running PROG (pid N)" line (the terminal's keys)
        self.running_hint = ""
        self.lock = threading.RLock()           #: held while the session changes
        self.session = None
        self.cfg: cfgmod.ProjectConfig | None = None
        self.quit = threading.Event()
        self.commands: list[str] = []           #: posted commands (restart, undo, quit), run by the loop
        self.watcher: ChangeWatcher | None = None
        self.patches = 0
        self.trace = os.environ.get("DEVLINK_TRACE")
        #: called with an event dict after every change the editor may show (subscribe)
        self.listeners: list = []
        #: what the editor is told about (diagnostics): compiler text per source, the
        #: last link error's undefined names with their referencing sources, refusals
        self.compile_output: dict[str, str | list] = {}
        self.link_errors: list[tuple[str, list[str]]] = []
        self.link_message = ""
        self.refusals: list[tuple[str, str | None, str]] = []
        #: (object, function) -> number of updates that changed it, time of the last
        self.patch_counts: dict[tuple[str, str], int] = {}
        self.last_patch: dict[tuple[str, str], float] = {}
        #: where the child's output goes (None: this terminal; the language server
        #: passes a log file, since its stdout is the protocol)
        self.child_output = child_output
        self.ready = threading.Event()         #: set once the first build was tried
        self._dwarf = None                     #: DwarfIndexCache, made on first use
        self._hashes: dict[str, tuple[bytes, str]] = {}
        self._by_name: dict = {}

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

    def _load_config(self) -> cfgmod.ProjectConfig:
        cfg = cfgmod.load_config(self.root)
        if self.output:
            cfg.output = self.output
            if not cfgmod.inside(cfg.output, self.root):
                cfg.notes.append(f"the program is written to {cfg.output}, outside the project (--output)")
        for key, value in self.policies.items():
            allowed = cfgmod.POLICIES_ON_UNSAFE if key == "on_unsafe" else cfgmod.POLICIES_ON_CRASH
            if value not in allowed:
                raise DevlinkError(f"--{key.replace('_', '-')}={value} is not a policy; use one of: {', '.join(allowed)}")
            setattr(cfg, key, value)
        return cfg

    def _initial_build(self) -> None:
        s = self.session
        n = len(self.cfg.sources)
        t0 = time.perf_counter()
        with self.out.progress(n) as on_compiled:
            s.on_compiled = on_compiled
            try:
                s.build()
            finally:
                s.on_compiled = None
        self.out.line(f"built {os.path.relpath(self.cfg.output, self.root)} from {n} file{'s' * (n != 1)} "
                       f"in {(time.perf_counter() - t0) * 1000:.0f} ms")

    def _start_child(self) -> None:
        child = self.session.start(self.child_output, self.child_output)
        self.out.line(f"running {os.path.basename(self.cfg.output)} (pid {child.pid})"
                       + self.running_hint)

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> int:
        restore_signals = self._stop_on_signals()
        try:
            return self._run()
        finally:
            restore_signals()

    def _stop_on_signals(self):
        """SIGTERM and SIGHUP (the terminal closed) end the loop like Ctrl-C, so the program
        is stopped and never left behind (it runs in its own process group, so the
        terminal's signals do not reach it).  Only the main thread can set handlers; a
        session run in another thread (the language server's) is stopped by its owner."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def interrupt(signum, frame):
            raise KeyboardInterrupt
        saved = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
        return lambda: [signal.signal(sig, old) for sig, old in saved.items()]

    def _run(self) -> int:
        self.cfg = self._load_config()
        for note in self.cfg.notes:
            self.out.line(note, "yellow")
        lock = SessionLock(self.root)
        lock.acquire(self.role)
        server = ControlServer(self.root, self.handle_request, subscribe=self.add_listener)
        watcher = ChangeWatcher(self.root, on_event=self._on_event)
        try:
            self.session = self._new_session()
            try:
                self._initial_build()
                self._record(self.session)
            except DevlinkError as e:
                # nothing to run yet: show the error, build again on the next save
                self.out.error(str(self.session.named_by_source(e)))
                self._record(self.session, e)
                self.session = None
            server.start()
            self.watcher = watcher
            watcher.start()
            if self.session is not None:
                self._start_child()
            self.ready.set()
            self._notify()
            last_change = time.monotonic()
            while not self.quit.is_set():
                paths = watcher.next_batch(timeout=0.2)
                self.batch_time = time.time()
                with self.lock:
                    self._run_commands()
                    if paths:
                        self._changed(paths)
                        last_change = time.monotonic()
                    self._check_child()
                    self._check_stuck()
                    if self.session is not None and time.monotonic() - last_change > IDLE_RECLAIM_S:
                        # nobody is saving: collect what the updates replaced
                        self.session.reclaim_memory()
            return 0
        except KeyboardInterrupt:
            return 130
        finally:
            self.ready.set()
            watcher.stop()
            server.close()
            if self.session is not None:
                self.session.close()
            if self._dwarf is not None:
                self._dwarf.close(wait=False)
            lock.release()
            self.out.line("stopped")

    def _on_event(self, path: str) -> None:
        """From the watcher's thread: a save of a file being compiled stops that compile."""
        s = self.session
        if s is not None and path in s.compiling:
            from devlink.build import cancel_compile
            cancel_compile(s.compiling, path)

    def _affected(self, paths: set[str]) -> tuple[list[int], bool, list[str], list[str]]:
        """(indexes of sources to recompile, whether the configuration changed so that
        the program is rebuilt, new source files to add, deleted ones to remove)."""
        cfg = self.cfg
        config_files = {os.path.join(self.root, cfgmod.CONFIG_NAME), os.path.join(self.root, cfgmod.COMPILE_COMMANDS)}
        if paths & config_files:
            return [], True, [], []
        sources = set(cfg.sources)
        added, deleted = [], []
        if cfg.source_globs is not None:
            found = None
            for p in sorted(paths):
                if not p.endswith(".c"):
                    continue
                if p in sources and not os.path.exists(p):
                    deleted.append(p)
                    continue
                if p not in sources and os.path.exists(p):
                    found = cfgmod.find_sources(self.root, cfg.source_globs) if found is None else found
                    if p in found:
                        added.append(p)
        s = self.session
        indexes = []
        for i, src in enumerate(s.args.sources if s is not None else []):
            src = os.path.abspath(src)
            deps = {os.path.abspath(d) for d in (s.deps.get(s.args.sources[i]) or {src: None})}
            deps.add(src)
            if deps & paths and src not in deleted:
                indexes.append(i)
        return indexes, False, added, deleted

    def _changed(self, paths: set[str]) -> None:
        indexes, reconfigure, added, deleted = self._affected(paths)
        if reconfigure or self.session is None:
            self._rebuild("configuration or source list changed" if reconfigure else "retrying the build")
            return
        saved = [self.session.args.sources[i] for i in indexes]
        self._remove_deleted(deleted)
        # (a removal moves the later sources down one place)
        indexes = [self.session.args.sources.index(x) for x in saved if x in self.session.args.sources]
        for src in added:
            self._update(lambda s, src=src: s.add_source(src), os.path.relpath(src, self.root) + " (new)")
            if src in self.session.args.sources:
                self.cfg.sources.append(src)
        if added and not indexes:
            # an earlier save may have failed for want of what the new file defines
            self._update(lambda s: s.link_unlinked(), "earlier saves")
        if indexes:
            s = self.session
            self._update(lambda s: s.update(indexes),
                         ", ".join(os.path.relpath(s.args.sources[i], self.root) for i in indexes))
            # a deleted file whose removal failed (something still called it) goes now,
            # if that save was the fix
            self._remove_deleted([x for x in s.args.sources if not os.path.exists(x)])

    def _remove_deleted(self, deleted: list[str]) -> None:
        for src in deleted:
            self._update(lambda s, src=src: s.remove_source(src), os.path.relpath(src, self.root) + " (deleted)")
            if src not in self.session.args.sources and src in self.cfg.sources:
                self.cfg.sources.remove(src)

    def _update(self, step, names: str) -> None:
        """Run one session update (`step(session)`), and say what it did."""
        s = self.session
        try:
            gen = step(s)
        except DevlinkError as e:
            from devlink.build import CompileCancelled
            if isinstance(e, CompileCancelled):
                return                 # the newer save is already queued
            self.out.error(f"{s.named_by_source(e)}; "
                           f"{'the program keeps its last good code' if s.running else 'nothing changed'}")
            self._record(s, e)
            self._notify()
            return
        self._record(s)
        if gen is None:
            self.out.line(f"{names}: no change to the program", "dim")
            self._notify()
            return
        if gen.action not in ("patched", "file"):
            # an unsafe edit: the session applied the policy and said what it did
            self.out.line(f"gen {gen.number} · {names} · {gen.action}", "yellow")
            if not s.running:
                self._start_child()
            self._notify()
            return
        flip = getattr(s, "last_flip", None) if gen.patched else None
        flip = flip or time.time()
        self.patches += bool(gen.patched)
        for name, obj, kind in gen.decls:
            if kind == "function":
                key = (obj, name)
                self.patch_counts[key] = self.patch_counts.get(key, 0) + 1
                self.last_patch[key] = gen.time
        if self.trace:
            with open(self.trace, "a") as f:
                f.write(json.dumps({"event": "flip", "time": flip, "generation": gen.number,
                                    "compile_ms": gen.compile_ms, "link_ms": gen.link_ms,
                                    "patch_ms": gen.patch_ms, "files": names,
                                    "batch_time": getattr(self, "batch_time", None)}) + "\n")
        self.out.line(
            f"{time.strftime('%H:%M:%S')} gen {gen.number} · {names} · {gen.counts()} · "
            f"compile {gen.compile_ms:.0f} ms · link {gen.link_ms:.1f} ms · patch {gen.patch_ms:.2f} ms"
            + ("" if gen.patched else " · not running: saved to the program file"), "green")
        for note in gen.notes:
            self.out.line(f"{names}: {note}", "yellow")
        if not s.running:
            self._start_child()
        self._prefetch_dwarf()
        self._notify()

    def _rebuild(self, why: str) -> None:
        """Full build on a fresh session (new/deleted source, new config); restart."""
        try:
            cfg = self._load_config()
        except DevlinkError as e:
            self.out.error(f"{e}; keeping the running program")
            return
        self.out.line(f"{why}: rebuilding ({len(cfg.sources)} files)")
        old_cfg, self.cfg = self.cfg, cfg
        new = self._new_session()
        try:
            new.build()
        except DevlinkError as e:
            self.cfg = old_cfg
            self.out.error(f"{new.named_by_source(e)}; the program keeps its last good code")
            self._record(new, e)
            self._notify()
            return
        self._record(new)
        if self.session is not None:
            self.session.close()
        self.session = new
        self.patch_counts.clear()
        self.last_patch.clear()
        self._start_child()
        self._prefetch_dwarf()
        self._notify()

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
            self.out.error(f"{ev.crash.message(name)} (pid {s.child.pid})")
            return
        code = ev.status
        if code is not None and code < 0:
            from devlink.hotpatch.crash import signal_name
            self.out.error(f"{name} was killed by {signal_name(-code)}; save a file or press r to start it again")
        else:
            self.out.line(f"{name} exited with status {code}; save a file or press r to start it again", "yellow")
        self._notify()

    def _check_stuck(self) -> None:
        """A thread looping in patched code: say so once, naming function and generation."""
        s = self.session
        if s is None:
            return
        found = s.check_stuck()
        for stuck in found:
            self.out.error(stuck.message(os.path.basename(self.cfg.output)))
        if found:
            self._notify()

    # --- commands ------------------------------------------------------------------------------
    def post(self, command: str) -> None:
        """Queue `restart`, `undo` or `quit` for the loop (from a key reader, any thread)."""
        if command == "quit":
            self.quit.set()
        else:
            self.commands.append(command)
        if self.watcher is not None:
            self.watcher.wake()

    def _run_commands(self) -> None:
        while self.commands:
            key = self.commands.pop(0)
            try:
                if key == "quit":
                    self.quit.set()
                elif key == "restart":
                    self.out.line(self.restart()["message"])
                elif key == "undo":
                    self.out.line(self.undo()["message"])
            except DevlinkError as e:
                self.out.error(str(e))

    def restart(self) -> dict:
        with self.lock:
            if self.session is None or self.session.linker is None:
                raise DevlinkError("nothing to restart: the program has not been built yet; fix the build errors")
            self.session.stop()
            self._start_child()
            self._notify()
            return {"ok": True, "message": f"restarted (pid {self.session.child.pid})"}

    def undo(self) -> dict:
        with self.lock:
            s = self.session
            if s is None or s.linker is None:
                raise DevlinkError("nothing to undo: the program has not been built yet")
            names = s.undo()
            self._notify()
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
        stuck = s.stuck if s is not None and state == "running" else []
        if stuck:
            state = "stuck"
        return {"ok": True, "root": self.root, "program": self.cfg.output if self.cfg else None,
                "pid": child.pid if child is not None else None, "state": state,
                "stuck": [t.as_dict() for t in stuck],
                "exit_status": None if child is None or s.running else child.returncode,
                "generation": s.linker.generation if s is not None and s.linker is not None else None,
                "patches": self.patches, "session_pid": os.getpid()}

    # --- what the editor sees -------------------------------------------------------------------
    def add_listener(self, fn) -> None:
        """`fn(event)` after every build, update, failed compile, restart or exit."""
        self.listeners.append(fn)

    def _notify(self) -> None:
        event = {"event": "updated", "status": self.status()}
        for fn in list(self.listeners):
            try:
                fn(event)
            except Exception:              # a gone subscriber must not stop the session
                self.listeners.remove(fn)

    def _record(self, s, error: DevlinkError | None = None) -> None:
        """Keep what the last attempt said, for `diagnostics`."""
        if s is None:
            return
        for src, text in s.compile_output.items():
            self.compile_output[os.path.abspath(src)] = text
        undefined = getattr(error, "undefined", None)
        if undefined is not None:
            sources = {os.path.abspath(o): os.path.abspath(src) for o, src in zip(s.objects, s.args.sources)}
            self.link_errors = [(name, [sources.get(os.path.abspath(o), o) for o in objs]) for name, objs in undefined]
            self.link_message = str(error)
        elif error is None:
            self.link_errors, self.link_message = [], ""
        if error is None:
            sources = {os.path.abspath(o): os.path.abspath(src) for o, src in zip(s.objects, s.args.sources)}
            srcs = set(sources.values())
            # a refusal names the object (found by the linker) or the source (by the safety checks)
            self.refusals = [(name, sources.get(os.path.abspath(f), os.path.abspath(f) if os.path.abspath(f) in srcs
                                                else None), msg) for name, f, _o, _n, msg in s.refusals]

    def _dwarf_cache(self):
        if self._dwarf is None:
            from devlink.dwarf import DwarfIndexCache
            from devlink.watch.control import state_dir
            self._dwarf = DwarfIndexCache(os.path.join(state_dir(self.root), "dwarf"), max_workers=1)
            self._prefetch_dwarf()
        return self._dwarf

    def _object_hash(self, path: str, data: bytes) -> str:
        known = self._hashes.get(path)
        if known is not None and known[0] is data:
            return known[1]
        from devlink.dwarf import content_hash
        h = content_hash(data)
        self._hashes[path] = (data, h)
        return h

    def _prefetch_dwarf(self) -> None:
        """Index the objects' DWARF in the background, once someone asked for it (the
        language server); a plain `devlink watch` never pays for it."""
        s = self.session
        if self._dwarf is None or s is None:
            return
        self._dwarf.prefetch([(p, d, self._object_hash(p, d)) for p, d in list(s.object_bytes.items())])

    def _index(self, obj: str | None):
        """The DWARF index of one object of the session (cached; built on this thread
        only if the background build has not done it yet), or None."""
        s = self.session
        data = s.object_bytes.get(obj) if s is not None and obj else None
        if data is None:
            return None
        try:
            return self._dwarf_cache().get(obj, data, self._object_hash(obj, data))
        except DevlinkError:
            return None

    def _source_object(self, file: str | None) -> str | None:
        s = self.session
        if not file or s is None:
            return None
        file = os.path.realpath(file)
        for src, obj in zip(s.args.sources, s.objects):
            if os.path.realpath(src) == file:
                return obj
        return None

    def _locals_of(self, obj_name: str) -> dict:
        """name -> file-local symbol of one linked object (cached per generation)."""
        L = self.session.linker
        key = (id(L), L.generation, obj_name)
        table = self._by_name.get(key)
        if table is None:
            if len(self._by_name) > 256:
                self._by_name.clear()
            objs = self._by_name.get((id(L), L.generation))
            if objs is None:
                objs = self._by_name[(id(L), L.generation)] = {o.name: o for o in L.objects}
            o = objs.get(obj_name)
            table = {}
            if o is not None:
                for sym in o.symbols[:o.raw.first_global]:
                    if sym is not None and sym.atom is not None and sym.name:
                        table.setdefault(sym.name, sym)
            self._by_name[key] = table
        return table

    def symbol_info(self, name: str, file: str | None = None, line: int | None = None) -> dict:
        """Everything known about the function or variable `name` as seen from `file`
        at `line` (1-based): its linked place, patches, declaration, live value."""
        from devlink import tables as T
        from devlink.dwarf import format_value
        from devlink.elf import consts as C
        from devlink.link.symbol import SymbolFlags
        with self.lock:
            s = self.session
            if s is None or s.linker is None:
                raise DevlinkError("the program has not been built yet")
            obj = self._source_object(file)
        ix = self._index(obj)
        elf_name, scope = name, None
        if ix is not None and line is not None:
            here = os.path.realpath(file)
            enclosing = [f for f in ix.functions.values()
                         if f.decl_line is not None and f.decl_line <= line and f.decl_file
                         and os.path.realpath(f.decl_file) == here]
            if enclosing:
                func = max(enclosing, key=lambda f: f.decl_line)
                v = ix.static_local(func.name, name)
                if v is not None and v.elf_symbol:
                    elf_name, scope = v.elf_symbol, f"static in {func.name}()"
        with self.lock:
            s = self.session
            if s is None or s.linker is None:
                raise DevlinkError("the program has not been built yet")
            L = s.linker
            sym = self._locals_of(obj).get(elf_name) if obj else None
            if sym is None:
                g = L.symtab.globals.get(name)
                sym = g if g is not None and (g.file is not None) else None
            if sym is None:
                return {"ok": True, "found": False, "name": name}
            out = {"ok": True, "found": True, "name": name, "generation": L.generation,
                   "running": s.running, "pid": s.child.pid if s.child is not None else None}
            is_func = sym.type in (C.STT_FUNC, C.STT_GNU_IFUNC) or bool(sym.flags & SymbolFlags.IMPORT and sym.type != C.STT_OBJECT)
            if is_func:
                obj_of = getattr(sym.file, "name", None)
                i = T.stub_index(L, sym.name, obj_of)
                if i is None:
                    return {"ok": True, "found": False, "name": name}
                out.update(T.function_row(L, i))
                key = (out.get("file") or obj_of, out["name"])
                out["patches"] = self.patch_counts.get(key, 0)
                out["last_patch"] = self.last_patch.get(key)
                defined_in = out.get("file") if not out.get("import") else None
            else:
                row = T.variable_row(sym, "static" if sym.bind == C.STB_LOCAL else "variable")
                if row is None:
                    return {"ok": True, "found": False, "name": name}
                out.update(row)
                if scope:
                    out["scope"] = scope
                defined_in = row["file"]
                data = None
                if row["tls"]:
                    out["value_note"] = "thread-local: one value per thread"
                elif not s.running or s.mem is None:
                    out["value_note"] = "the program is not running"
                elif 0 < row["size"] <= 4096:
                    try:
                        data = s.mem.read(row["address"], row["size"])
                    except (OSError, ValueError, DevlinkError):
                        out["value_note"] = "the program is not running (it exited during the read)"
                out["bytes"] = data.hex() if data is not None else None
        dix = ix if defined_in == obj else self._index(defined_in)
        if dix is not None:
            if is_func:
                f = dix.functions.get(out["name"]) or dix.functions.get(sym.name)
                if f is not None:
                    out.update(decl_file=f.decl_file, decl_line=f.decl_line, signature=f.signature)
            else:
                v = dix.variables.get(sym.name)
                if v is not None:
                    out.update(decl_file=v.decl_file, decl_line=v.decl_line, type=v.type.name)
                    if out.get("bytes"):
                        out["value"] = format_value(v.type, bytes.fromhex(out["bytes"]))
        if not is_func and out.get("bytes") and "value" not in out:
            out["value"] = "0x" + bytes.fromhex(out["bytes"])[::-1].hex() if len(out["bytes"]) <= 16 else out["bytes"]
        return out

    def lenses(self, file: str) -> dict:
        """Per function defined in `file`: its line, GOT slot, size/capacity, patches."""
        from devlink import tables as T
        with self.lock:
            obj = self._source_object(file)
        ix = self._index(obj)
        if ix is None:
            return {"ok": True, "lenses": []}
        here = os.path.realpath(file)
        funcs = [f for f in ix.functions.values()
                 if f.decl_line is not None and f.decl_file and not f.is_clone and os.path.realpath(f.decl_file) == here]
        out = []
        with self.lock:
            s = self.session
            if s is None or s.linker is None or self._source_object(file) != obj:
                return {"ok": True, "lenses": []}
            L = s.linker
            for f in funcs:
                i = T.stub_index(L, f.symbol, obj)
                if i is None:
                    continue
                row = T.function_row(L, i)
                if row.get("import"):
                    continue
                key = (row.get("file") or obj, row["name"])
                out.append({"name": f.name, "line": f.decl_line, "got_slot": row["got_slot"], "size": row["size"],
                            "capacity": row["capacity"], "patches": self.patch_counts.get(key, 0),
                            "atom": row["atom"], "stub": row["stub"]})
        return {"ok": True, "lenses": sorted(out, key=lambda r: r["line"]), "generation": L.generation}

    def diagnostics(self) -> dict:
        """{file: [diagnostic]} for every file devlink has said something about (an
        empty list: nothing to say any more, so the editor clears it)."""
        from devlink import diagnostics as D
        with self.lock:
            compile_output = dict(self.compile_output)
            link_errors, link_message = list(self.link_errors), self.link_message
            refusals = list(self.refusals)
        files: dict[str, list[dict]] = {src: [] for src in compile_output}
        for src, text in compile_output.items():
            for path, diags in D.parse_gcc(text, self.root).items():
                files.setdefault(path, []).extend(diags)

        def source_text(path):
            try:
                with open(path, errors="replace") as f:
                    return f.read()
            except OSError:
                return ""

        for name, sources in link_errors:
            for src in sources:
                for line, col in D.uses_of(name, source_text(src)) or [(1, 1)]:
                    files.setdefault(src, []).append({
                        "line": line, "column": col, "severity": "error", "source": "devlink",
                        "message": f"undefined symbol {name!r}: no object or library defines it; "
                                   f"the program keeps running its last good code"})
        for name, src, msg in refusals:
            if src is None:
                continue
            ix = self._index(self._source_object(src))
            v = ix.variables.get(name) if ix is not None else None
            where = (v.decl_line, v.decl_column or 1) if v is not None and v.decl_line else \
                D.declaration_of(name.split(".")[0], source_text(src)) or (1, 1)
            files.setdefault(src, []).append({"line": where[0], "column": where[1], "severity": "warning",
                                              "source": "devlink", "message": msg})
        return {"ok": True, "files": files, "link_error": link_message or None}

    def handle_request(self, request: dict) -> dict:
        """A request from the control socket (other devlink commands, the language server)."""
        cmd = request["cmd"]
        if cmd == "symbol":
            line = None if request.get("line") is None else request_int(request, "line", 1, 1 << 31)
            return self.symbol_info(request_str(request, "name"), request_str(request, "file", optional=True), line)
        if cmd == "lenses":
            return self.lenses(request_str(request, "file"))
        if cmd == "diagnostics":
            return self.diagnostics()
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
            # an address the kernel's file offsets can hold (pread takes a signed 64-bit one)
            size = request_int(request, "size", 1, 1 << 16)
            address = request_int(request, "address", 0, (1 << 63) - 1 - size)
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
            self.post("quit")
            return {"ok": True, "message": "stopping"}
        raise DevlinkError(f"unknown command {cmd!r}; the commands are: status, symbols, got, read, symbol, lenses, "
                           f"diagnostics, subscribe, restart, undo, detach, quit")


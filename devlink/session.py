"""One dev session: a program's sources, its link state, the running child, history.

`devlink run` is a Session driven by a simple source poller; the watch mode, the
language server and the pytest plugin build on the same object.

The child never runs the output file itself (Linux refuses writes to a running
executable, ETXTBSY): it runs a snapshot copy made at launch, while devlink keeps
updating the real output, which always holds the newest program (invariant 4).
"""

from __future__ import annotations

import gc
import os
import subprocess
import time
from dataclasses import dataclass, field

from devlink import private
from devlink.build import compile_source, read_depfile
from devlink.collector import freeze_state, unfreeze_state
from devlink.errors import DevlinkError
from devlink.link import state as st
from devlink.generation import Generation  # noqa: F401 (re-exported: Session's API)
from devlink.session_safety import SafetyNet


@dataclass
class Session(SafetyNet):
    """A program under development: build it, run it, apply edits to it while it runs."""

    args: object                    #: devlink.build_args.BuildArgs
    program_args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    live: bool = True
    #: patch through the shared patch area when the program's runtime maps it
    #: (invariant 5); False: always through /proc/PID/mem
    patch_area: bool = True
    #: on the /proc/PID/mem path, stop every thread around a patch (blocked system
    #: calls then return EINTR; see devlink/hotpatch/procmem.py).  The stop is a ptrace
    #: attach of its own, so it turns the crash guard off (one tracer per thread).
    stop_threads: bool = False
    out=None
    #: what to do with an edit that cannot be patched safely: restart | keep-old | refuse
    on_unsafe: str = "restart"
    #: what to do when the child dies by a signal: restart | rollback
    on_crash: str = "restart"
    #: seize the child with ptrace to report crashes (devlink.hotpatch.guard)
    guard: bool = True

    def __post_init__(self):
        if self.stop_threads:
            self.guard = False
        from devlink.link.toolchain import find_cc
        self.output = self.args.output
        self.sdir = st.state_dir(self.output)
        self.objdir = private.private_dir(os.path.join(self.sdir, "session"))
        self.cc = getattr(self.args, "cc", None) or find_cc()
        #: compiles in progress, by source (a newer save stops its compile)
        self.compiling: dict[str, subprocess.Popen] = {}
        #: called with (source, done, total) as the compiles of `build` finish
        self.on_compiled = None
        self.linker = None
        self.child: subprocess.Popen | None = None
        self.mem = None
        #: what applies patch plans: a SharedPatchArea, or the ProcMem fallback
        self.patcher = None
        self.history: list[Generation] = []
        self.objects: list[str] = []
        self.deps: dict[str, dict[str, tuple]] = {}        # source -> {dep path: stat key}
        self.object_bytes: dict[str, bytes] = {}
        from devlink.hotpatch.safety import CRASH_POLICIES, POLICIES
        if self.on_unsafe not in POLICIES:
            raise DevlinkError(f"unknown policy {self.on_unsafe!r} for unsafe edits; use one of {', '.join(POLICIES)}")
        if self.on_crash not in CRASH_POLICIES:
            raise DevlinkError(f"unknown policy {self.on_crash!r} for crashes; use one of {', '.join(CRASH_POLICIES)}")
        self._init_safety()
        #: source -> the compiler's diagnostics text of its last compile ("" when clean)
        self.compile_output: dict[str, str | list] = {}
        #: the last update's patch refusals: (variable, object, old size, new size, message)
        self.refusals: list[tuple[str, str, int, int, str]] = []
        #: where the child's stdout/stderr go (kept for restarts after a refusal)
        self.child_output: tuple = (None, None)
        #: updates since the frozen state was last collected (see reclaim_memory)
        self.updates_to_reclaim = 0

    # --- building ---------------------------------------------------------------------
    def _object_for(self, i: int, src: str) -> str:
        base = os.path.splitext(os.path.basename(src))[0]
        path = os.path.join(self.objdir, f"{i:03d}-{base}.o")
        while path in self.objects:           # a source was removed: numbers are reused
            i += 1000
            path = os.path.join(self.objdir, f"{i:03d}-{base}.o")
        return path

    def _compile(self, indexes: list[int]) -> None:
        """Compile `indexes` in parallel (bounded by the cores); the first error wins,
        after every compile has ended (so all diagnostics are shown)."""
        from concurrent.futures import ThreadPoolExecutor, as_completed
        a = self.args
        source_flags = getattr(a, "source_flags", {})
        launcher = getattr(a, "launcher", [])
        with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, len(indexes)))) as pool:
            futures = {}
            for i in indexes:
                src, obj = a.sources[i], self.objects[i]
                flags = list(a.cflags) + list(source_flags.get(src, []))
                futures[pool.submit(compile_source, self.cc, src, obj, flags, obj[:-2] + ".d",
                                    launcher, self.compiling, self.compile_output)] = src
            error = None
            for done, f in enumerate(as_completed(futures), 1):
                try:
                    f.result()
                except DevlinkError as e:
                    error = error or e
                if self.on_compiled is not None:
                    self.on_compiled(futures[f], done, len(futures))
            if error is not None:
                raise error
        for i in indexes:
            obj = self.objects[i]
            self.deps[a.sources[i]] = {d: st.stat_key(d) for d in read_depfile(obj[:-2] + ".d") or [a.sources[i]]}

    def _inputs(self) -> list[str]:
        return [self.objects[int(x[5:])] if x.startswith("@src:") else x for x in self.args.link_items]

    def build(self) -> None:
        """Compile everything and link from scratch."""
        a = self.args
        self.objects = [self._object_for(i, s) for i, s in enumerate(a.sources)]
        self._compile(list(range(len(a.sources))))
        for p in self.objects:
            with open(p, "rb") as f:
                self.object_bytes[p] = f.read()
        self.relink()
        # the first save must not pay for loading the update path (hundreds of ms
        # where Python cannot cache compiled modules)
        import devlink.hotpatch.safety  # noqa: F401
        import devlink.hotpatch.step  # noqa: F401
        import devlink.link.incremental  # noqa: F401

    def relink(self) -> None:
        """Link the current objects from scratch (a fresh layout: a running child can no
        longer be patched).  Generation numbers go on counting."""
        from devlink.link.linker import LinkOptions, Linker
        from devlink.output.writer import write_file
        a = self.args
        linker = Linker(LinkOptions(output=self.output, inputs=self._inputs(), lib_dirs=a.lib_dirs,
                                    export_dynamic=a.export_dynamic))
        if self.linker is not None:
            linker.generation = self.linker.generation + 1
        image = linker.link()
        write_file(self.output, image)
        del image
        unfreeze_state()              # the previous state (if any) may be garbage now
        linker.compact_state()
        self.linker = linker
        # The state lives as long as the session: frozen, the collector's full passes
        # (which a session's allocations trigger now and then) do not walk it again;
        # for Lua such a pass cost ~100 ms in the middle of an edit.
        freeze_state()
        self._linked()

    def add_source(self, src: str) -> Generation | None:
        """A new source file joins the program: compiled, then added by an update like
        an edit (the running program gets its functions and variables; nothing
        restarts).  A compile or link error leaves the session as it was."""
        a = self.args
        i = len(a.sources)
        saved = (list(a.sources), list(a.link_items), list(self.objects))
        a.sources.append(src)
        # after the other sources, before the libraries that follow them
        last = max((k for k, x in enumerate(a.link_items) if x.startswith("@src:")), default=len(a.link_items) - 1)
        a.link_items.insert(last + 1, f"@src:{i}")
        self.objects.append(self._object_for(i, src))
        try:
            t0 = time.perf_counter()
            self._compile([i])
            with open(self.objects[i], "rb") as f:
                data = f.read()
            return self.apply_objects({self.objects[i]: data}, (time.perf_counter() - t0) * 1000)
        except DevlinkError:
            a.sources[:], a.link_items[:], self.objects[:] = saved
            self.deps.pop(src, None)
            raise

    def remove_source(self, src: str) -> Generation | None:
        """A deleted source file leaves the program by an update (its functions' cells
        trap, its room is freed; nothing restarts).  If something still refers to what
        it defined, the link error leaves the session as it was."""
        a = self.args
        i = a.sources.index(src)
        obj = self.objects[i]
        gen = self.apply_objects({obj: None})
        # the later sources move down one place; their objects keep their files
        del a.sources[i], self.objects[i]
        items = [x for x in a.link_items if x != f"@src:{i}"]
        a.link_items[:] = [f"@src:{int(x[5:]) - 1}" if x.startswith("@src:") and int(x[5:]) > i else x for x in items]
        self.deps.pop(src, None)
        return gen

    def link_unlinked(self) -> Generation | None:
        """Objects compiled but left out by a failed update (a call to a function that a
        file added since provides) are linked now."""
        changes = {}
        for p in self.objects:
            if p in self.object_bytes and os.path.exists(p):
                with open(p, "rb") as f:
                    data = f.read()
                if data != self.object_bytes[p]:
                    changes[p] = data
        return self.apply_objects(changes) if changes else None

    def reclaim_memory(self) -> int:
        """Collect what updates left behind.  The link state is frozen (relink), and so
        is what each update adds to it; the records an update replaced are garbage in
        cycles the collector no longer looks at.  Called when the session is idle: a
        full collection walks the whole state (tens of ms for Lua).  Returns how many
        unreachable objects the collector found."""
        if not self.updates_to_reclaim:
            return 0
        unfreeze_state()
        found = gc.collect()
        freeze_state()
        self.updates_to_reclaim = 0
        return found

    # --- the child -----------------------------------------------------------------------
    def start(self, stdout=None, stderr=None) -> subprocess.Popen:
        """Run a snapshot copy of the output (the output itself stays writable)."""
        if self.linker.debug_incomplete:
            self.relink()             # an update left debug info out: a new layout has room
        from devlink.hotpatch.procmem import ProcMem
        from devlink.hotpatch.shared import SharedPatchArea, patch_ranges, reserve_code_page
        from devlink.runtime import ENV
        run_dir = private.private_dir(os.path.join(self.sdir, "run"))
        snapshot = os.path.join(run_dir, f"{os.path.basename(self.output)}")
        private.copy_private(self.output, snapshot, mode=0o700)
        env = dict(os.environ if self.env is None else self.env)
        self._stdio = self.child_output = (stdout, stderr)
        env.pop(ENV, None)
        area = None
        if self.patch_area and ".devlink.id" in self.linker.outputs:      # the runtime is linked in
            reserve_code_page(self.linker)
            area = SharedPatchArea(patch_ranges(self.linker), snapshot, self.linker.link_id)
            env[ENV] = area.env_value()
        try:
            self.child = self._spawn([snapshot] + list(self.program_args), env=env, stdout=stdout, stderr=stderr,
                                     stdin=subprocess.DEVNULL, pass_fds=(area.fd,) if area else ())
        except BaseException:
            if area is not None:
                area.close()
            raise
        try:
            self.mem = ProcMem(self.child.pid, stop_threads=self.stop_threads)
        except DevlinkError:
            if area is not None:
                area.close()
            if self.child.poll() is None:
                raise
            self.mem = None               # it has already exited: nothing to patch
        if self.mem is not None:
            self.patcher = area.attach(self.mem, self.child) if area else self.mem
        self.child_generation = self.linker.generation
        self._started()
        return self.child

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.poll() is None

    def stop(self) -> int | None:
        if self.child is None:
            return None
        if self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(2)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()
        self._stopped()
        self._close_patcher()
        return self.child.returncode

    def _close_patcher(self) -> None:
        """Close the shared patch area (if any) and /proc/PID/mem."""
        if self.patcher is not None and self.patcher is not self.mem:
            self.patcher.close()          # closes self.mem too
        elif self.mem is not None:
            self.mem.close()
        self.patcher = self.mem = None

    # --- edits -----------------------------------------------------------------------------
    def changed_sources(self) -> list[int]:
        out = []
        for i, src in enumerate(self.args.sources):
            deps = self.deps.get(src, {})
            if any(st.stat_key(d) != key for d, key in deps.items()):
                out.append(i)
        return out

    def named_by_source(self, err: DevlinkError) -> DevlinkError:
        """`err` naming the user's sources where it names the objects compiled from them."""
        from devlink.build import name_sources
        return name_sources(err, {o: os.path.relpath(s) for o, s in zip(self.objects, self.args.sources)})

    def forget_changes(self) -> None:
        """Take the current files as seen (after a failed compile: wait for the next save)."""
        for src, deps in self.deps.items():
            self.deps[src] = {d: st.stat_key(d) for d in deps}

    def update(self, indexes: list[int] | None = None) -> Generation | None:
        """Recompile `indexes` (default: what changed), relink in place, patch the child.
        A compile or link error raises DevlinkError and changes nothing; so does an
        unsafe edit under the `refuse` policy."""
        indexes = self.changed_sources() if indexes is None else indexes
        if not indexes:
            return None
        t0 = time.perf_counter()
        # compile into fresh files: a failed compile must leave the last good objects
        saved = list(self.objects)
        try:
            self._compile(indexes)
        except DevlinkError:
            self.objects = saved
            raise
        t1 = time.perf_counter()
        changes = {}
        for i in indexes:
            p = self.objects[i]
            with open(p, "rb") as f:
                data = f.read()
            if data != self.object_bytes.get(p):
                changes[p] = data
        if not changes:
            return None
        return self.apply_objects(changes, (t1 - t0) * 1000)

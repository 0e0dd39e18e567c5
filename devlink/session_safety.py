"""The safety net of a Session: unsafe-edit policies, undo, the crash guard.

Kept apart from session.py (which builds, starts and compiles) so each piece reads on
its own.  `Session` inherits `SafetyNet`; the methods here use the session's linker,
child, history and object bytes.

- An edit is checked against the running program *before* the link state changes
  (devlink.hotpatch.safety), so `refuse` leaves everything as it was and `keep-old` /
  `restart` start from a whole state.
- Undo re-applies the previous generation's object bytes as an update (the link state
  and the output file stay one consistent program), writes its bytes into the child like
  any patch, but flips each cell back to the atom the child ran before (still there:
  code is append-only while a child runs), so the child runs exactly the old code.
- The crash guard (devlink.hotpatch.guard) seizes the child; a death by a fault signal
  after a patch is reported with `symbol+offset (generation)` and the patch before it,
  then `restart` or `rollback` (to the last generation that did not crash).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from devlink.errors import DevlinkError
from devlink.generation import Generation
from devlink.hotpatch.step import apply_plan


@dataclass
class UndoRecord:
    generation: int
    #: object path -> its bytes before this generation
    before: dict[str, bytes]
    #: cell address -> target it held before this generation's patch (in child `serial`)
    flips: dict[int, int]
    serial: int
    changed: list[str] = field(default_factory=list)


@dataclass
class ChildExit:
    status: int                   #: Popen returncode (negative: killed by that signal)
    crash: object | None = None   #: devlink.hotpatch.crash.CrashReport when it crashed after a patch


class SafetyNet:
    # --- set-up and bookkeeping -------------------------------------------------------------
    def _init_safety(self) -> None:
        from devlink.dwarf import DwarfIndexCache
        from devlink.hotpatch.crash import AddressMap
        self.pinned: str | None = None          # why the child no longer takes patches
        self.undo_stack: list[UndoRecord] = []
        self.contents: list[tuple[int, dict[str, bytes]]] = []     # (generation, object bytes)
        self.crashed: set[bytes] = set()        # content keys of generations that crashed
        self.addresses = AddressMap()
        self.child_serial = 0
        self.child_content: dict[str, bytes] = {}
        self.last_patch = None                  # (generation, changed names) applied to this child
        self.child_exit: ChildExit | None = None
        self._guard = None
        #: threads caught in patched code that never returns (devlink.hotpatch.stuck)
        self._stuck = None
        self._stuck_sampled = 0.0
        self._stdio = (None, None)
        self._facts: dict[str, tuple[bytes, object]] = {}
        self.dwarf = DwarfIndexCache(os.path.join(self.sdir, "dwarf"), max_workers=1)

    def _linked(self) -> None:
        """After a full link: a fresh layout, whose function atoms name crash addresses."""
        from devlink import tables as T
        from devlink.hotpatch.crash import AddressMap
        self.addresses = AddressMap()
        rows = T.function_rows(self.linker)
        self.addresses.extend((r["atom"], r["size"], r["name"], r["generation"] or self.linker.generation)
                              for r in rows if r.get("atom") is not None)
        stubs = self.linker.stubs
        plt = self.linker.outputs.get(".plt")
        # the whole stub room: stubs an update appends (new imports too) are stubs as well
        room = max(stubs.size(), plt.limit if plt is not None and plt.addr == stubs.addr else 0)
        self.addresses.extend([(stubs.addr, room, "devlink stubs", self.linker.generation)])
        self._remember_content()

    def _remember_content(self) -> None:
        self.contents.append((self.linker.generation, dict(self.object_bytes)))
        del self.contents[:-64]
        if self.guard:
            # the next edit's "old" indexes: only for objects whose bytes are new (hashing
            # every object of the program on every update cost ~10 ms for Lua)
            seen = getattr(self, "_prefetched", {})
            fresh = [(p, b) for p, b in self.object_bytes.items() if seen.get(p) is not b]
            self._prefetched = dict(self.object_bytes)
            if fresh:
                self.dwarf.prefetch(fresh)

    def _spawn(self, argv, **kw) -> subprocess.Popen:
        if not self.guard:
            return subprocess.Popen(argv, **kw)
        from devlink.hotpatch.guard import GuardedPopen
        # its own process group: the guard waits for exactly its threads
        return GuardedPopen(argv, process_group=0, **kw)

    def _started(self) -> None:
        from devlink.hotpatch.stuck import StuckDetector
        self._stuck = StuckDetector(self.linker.generation)
        self.child_serial += 1
        self.child_content = dict(self.object_bytes)
        self.last_patch = None
        self.pinned = None
        self.child_exit = None
        self._guard = None
        if self.guard and self.child.returncode is None:
            from devlink.hotpatch.guard import Guard
            try:
                self._guard = Guard(self.child.pid)
            except DevlinkError:
                self.child.kill()
                self.child.wait()
                raise
            self.child.guard = self._guard

    def _stopped(self) -> None:
        g = self._guard
        if g is not None and not g.wait(2):
            g.detach()

    def close(self) -> None:
        """Stop the child (never left traced) and the background DWARF workers; the link
        state is no longer frozen (Session.relink), so it can be collected."""
        self.stop()
        self.dwarf.close(wait=False)
        from devlink.collector import unfreeze_state
        unfreeze_state()

    # --- the guard ------------------------------------------------------------------------
    @property
    def traced(self) -> bool:
        g = self._guard
        return g is not None and not g.finished.is_set()

    def detach(self) -> int | None:
        """Let the running child go (e.g. to attach gdb); patches still work.  Returns its pid."""
        if self._guard is None or not self.running:
            return None
        self._guard.detach()
        return self.child.pid

    def child_event(self) -> ChildExit | None:
        """Once per child, after it ended: its status, and a crash report when a fault
        signal killed it after a patch (the crash policy then applies: handle_crash)."""
        if self.child is None or self.child_exit is not None:
            return None
        status = self.child.poll()
        if status is None:
            return None
        from devlink.hotpatch.crash import crash_report
        from devlink.hotpatch.guard import FAULT_SIGNALS
        ev = ChildExit(status)
        if status < 0 and -status in FAULT_SIGNALS and self.last_patch is not None:
            fault = self._guard.fatal if self._guard is not None else None
            ev.crash = crash_report(fault, -status, self.child.pid, self.addresses, self.child_generation,
                                    self.last_patch, program=self.output)
        self.child_exit = ev
        return ev

    def check_stuck(self, now: float | None = None) -> list:
        """Sample the child's threads (every SAMPLE_INTERVAL once patched, 4x slower
        before: what each function's usual stay is) and return the threads newly found
        looping in patched code (hotpatch.stuck.Stuck; `.message(program)`)."""
        from devlink.hotpatch import stuck
        now = time.monotonic() if now is None else now
        interval = stuck.SAMPLE_INTERVAL * (1 if self.last_patch is not None else 4)
        if self._stuck is None or not self.running or now - self._stuck_sampled < interval:
            return []
        self._stuck_sampled = now
        return self._stuck.observe(now, stuck.sample_threads(self.child.pid, self._guard, self.addresses,
                                                             self.output))

    @property
    def stuck(self) -> list:
        """The threads looping in patched code now."""
        return self._stuck.stuck if self._stuck is not None and self.running else []

    def handle_crash(self, report) -> None:
        """Apply the crash policy: start the newest program again (`restart`), or the last
        generation that did not crash (`rollback`)."""
        self.crashed.add(_content_key(self.child_content))
        self._close_patcher()
        action = f"restarted with the newest program (generation {self.linker.generation})"
        if self.on_crash == "rollback":
            target = next(((g, c) for g, c in reversed(self.contents) if _content_key(c) not in self.crashed), None)
            if target is None:
                action = "no generation ran without crashing; restarted with the newest program"
            else:
                changes = {p: b for p, b in target[1].items() if self.object_bytes.get(p) != b}
                if changes:
                    self._write_objects(changes)
                    self.apply_objects(changes, kind="rollback")
                action = f"rolled back to the code of generation {target[0]} (now generation {self.linker.generation})"
        self.start(*self._stdio)
        report.action = action

    # --- edits --------------------------------------------------------------------------------
    def check_edit(self, changes: dict[str, bytes]) -> list:
        """Why `changes` cannot be patched into the running child (devlink.hotpatch.safety)."""
        from devlink.elf.reader import read_object
        from devlink.hotpatch.safety import check_object, needs_dwarf, object_facts
        out = []
        for p, data in changes.items():
            old = self.object_bytes.get(p)
            if old is None or data is None:
                continue                      # added, or removed: nothing running changes shape
            of, nf = self._facts_of(p, old), object_facts(read_object(p, data))
            oix = nix = None
            if needs_dwarf(of, nf):
                try:
                    oix, nix = self.dwarf.get(p, old), self.dwarf.get(p, data)
                except DevlinkError:
                    oix = nix = None          # the linker reports a bad object
            out += check_object(self._source_of(p), of, nf, oix, nix)
            self._facts[p] = (data, nf)
        return out

    def _facts_of(self, path: str, data: bytes):
        from devlink.elf.reader import read_object
        from devlink.hotpatch.safety import object_facts
        hit = self._facts.get(path)
        if hit is not None and hit[0] is data:
            return hit[1]
        facts = object_facts(read_object(path, data))
        self._facts[path] = (data, facts)
        return facts

    def _source_of(self, obj: str) -> str:
        try:
            return os.path.basename(self.args.sources[self.objects.index(obj)])
        except (ValueError, IndexError):
            return os.path.basename(obj)

    def apply_objects(self, changes: dict[str, bytes], compile_ms: float = 0.0, kind: str = "patched",
                      undo: UndoRecord | None = None):
        """Relink with `changes` (object path -> bytes) and patch the running child, after
        the safety checks; an unsafe edit gets the `on_unsafe` policy."""
        from devlink.hotpatch.plan import plan_patch
        from devlink.link.incremental import NeedsFullLink, update_objects
        from devlink.output.writer import pwrite_all
        t1 = time.perf_counter()
        live = self.live and self.running and self.pinned is None
        self.refusals = []
        if live:
            unsafe = self.check_edit(changes)
            if unsafe:
                # for editors: (name, object, -, -, message), placed at the declaration
                objects = {os.path.basename(src): obj for src, obj in zip(self.args.sources, self.objects)}
                self.refusals = [(u.name, objects.get(u.file, u.file), 0, 0, u.message) for u in unsafe]
                return self._unsafe_edit(changes, [u.message for u in unsafe], compile_ms, t1, clean=True)
        try:
            result = update_objects(self.linker, changes, live=live)
        except NeedsFullLink as e:
            if live:
                return self._unsafe_edit(changes, [f"this edit needs a restart: {e}"], compile_ms, t1,
                                         clean=not e.state_changed)
            before = self._take(changes)
            self.relink()
            gen = Generation(self.linker.generation, time.time(), [], [], [], compile_ms,
                             (time.perf_counter() - t1) * 1000, 0.0, False, action=kind if kind != "patched" else "file")
            self._push_undo(kind, gen, before, {})
            self.history.append(gen)
            return gen
        self.updates_to_reclaim += 1
        before = self._take(changes)
        pwrite_all(self.output, [w for w in result.writes if not w.visible])
        pwrite_all(self.output, [w for w in result.writes if w.visible])
        os.truncate(self.output, result.file_size)
        for c in result.changed + result.added:
            if c.kind == "function" and c.new_address is not None:
                self.addresses.add(c.new_address, c.new_size, c.name, result.generation)
        t2 = time.perf_counter()
        patched, flips, reverted = False, {}, []
        names = [c.name for c in result.changed + result.added]
        notes = [f"{name}: new initial value applies at the next restart" for name in result.new_initial_values]
        if live:
            plan = plan_patch(result)
            if not plan.safe:        # found only by the linker: the state changed already
                self.refusals = [(c.name, c.file, c.old_size, c.new_size, m)
                                 for c, m in zip([c for c in result.layout_changes if c.kind == "variable"],
                                                 plan.unsafe)]
                return self._unsafe_edit({}, plan.unsafe, compile_ms, t1, clean=False, generation=result.generation)
            flips, reverted = self._patch(plan, undo)
            patched = True
            notes += self._still_running(result)
            self.child_generation = result.generation
            self.child_content = dict(self.object_bytes)
            self.last_patch = (result.generation, names)
        t3 = time.perf_counter()
        action = kind if kind != "patched" or live else "file"
        gen = Generation(result.generation, time.time(), [c.name for c in result.changed],
                         [c.name for c in result.added], [c.name for c in result.removed],
                         compile_ms, (t2 - t1) * 1000, (t3 - t2) * 1000, patched, action=action, reverted=reverted,
                         decls=[(c.name, c.file, c.kind) for c in result.changed + result.added],
                         notes=notes)
        self._push_undo(kind, gen, before, flips)
        self._remember_content()
        self.history.append(gen)
        self.linker.finish_update()        # after the flip: nothing waits for it now
        return gen

    def _still_running(self, result) -> list[str]:
        """Notes for the changed functions whose old code a thread is still running
        (a loop that never returns keeps its old code until it is called again)."""
        from devlink.hotpatch.stacks import functions_on_stacks
        old = [(c.name, c.old_address, c.old_size) for c in result.changed
               if c.kind == "function" and c.old_address is not None and c.old_address != c.new_address]
        if not old or self.mem is None or self.child is None:
            return []
        running = functions_on_stacks(self.child.pid, self.mem.read, old)
        return [f"{name} is running its old code (it has not returned): the change takes effect at its next "
                f"call, or restart (r)" for name in running]

    def _take(self, changes: dict[str, bytes | None]) -> dict[str, bytes | None]:
        before = {p: self.object_bytes.get(p) for p in changes}
        for p, data in changes.items():
            if data is None:
                self.object_bytes.pop(p, None)          # an object no longer linked
            else:
                self.object_bytes[p] = data
        return before

    def _push_undo(self, kind: str, gen, before: dict, flips: dict) -> None:
        if kind == "patched":
            self.undo_stack.append(UndoRecord(gen.number, before, flips, self.child_serial,
                                              gen.changed + gen.added))
            del self.undo_stack[:-64]

    def _write_objects(self, objects: dict[str, bytes]) -> None:
        """Object files on disk follow object_bytes (a full link reads them)."""
        from devlink.private import write_private
        for p, data in objects.items():
            write_private(p, data)

    def _cell_name(self, address: int) -> str:
        L = self.linker
        i = (address - L.cells.addr) // 8
        if 0 <= i < len(L.cells.stub_of):
            return L.stubs.stubs[L.cells.stub_of[i]].symbol.name
        return f"{address:#x}"

    def _patch(self, plan, undo: UndoRecord | None) -> tuple[dict[int, int], list[str]]:
        """Apply `plan`, remembering what each cell held before (for undo).  With `undo`,
        a cell goes back to the atom it held before that generation when the child still
        has it (the same child, a non-zero target)."""
        before = {addr: int.from_bytes(self.patcher.read(addr, 8), "little") for addr, _ in plan.cells}
        reverted = []
        if undo is not None:
            cells = []
            for addr, target in plan.cells:
                back = undo.flips.get(addr) if undo.serial == self.child_serial else None
                cells.append((addr, back if back else target))
                reverted.append(self._cell_name(addr))
            plan.cells = cells
        _, self.last_flip = apply_plan(self.patcher, plan)    # when the program runs the new code
        return before, reverted

    def _unsafe_edit(self, changes: dict[str, bytes], reasons: list[str], compile_ms: float, t1: float,
                     clean: bool, generation: int | None = None):
        """Apply the `on_unsafe` policy.  `clean`: the link state is still the previous
        generation's (so `refuse` can leave everything as it was)."""
        what = "; ".join(reasons)
        policy = self.on_unsafe
        if policy == "refuse" and clean:
            # the object files go back to what the running program was built from
            self._write_objects({p: self.object_bytes[p] for p in changes if p in self.object_bytes})
            raise DevlinkError(f"not patched (policy refuse): {what}; the program keeps running generation "
                               f"{self.child_generation}; edit again to make it safe, or restart")
        if changes:
            self._take(changes)
        if clean or generation is None:
            self.relink()             # the output file gets the newest program
        if policy == "restart":
            print(f"devlink: {what}; restarting the program", file=sys.stderr)
            self.stop()
            self.start(*self._stdio)
            action = "restarted"
        else:
            self.pinned = what
            note = "" if policy == "keep-old" else " (the link state had changed: it cannot be refused)"
            print(f"devlink: {what}; the program keeps running generation {self.child_generation} and takes no "
                  f"more patches until it restarts{note}", file=sys.stderr)
            action = "kept-old"
        gen = Generation(self.linker.generation, time.time(), [], [], [], compile_ms,
                         (time.perf_counter() - t1) * 1000, 0.0, False, unsafe=list(reasons), action=action)
        self.undo_stack.clear()      # a new layout or a pinned child: nothing to flip back
        self.history.append(gen)
        return gen

    def undo(self) -> list[str]:
        """Go back to the code of the generation before the last edit.  Returns the
        functions that went back (their cells now hold the earlier atoms)."""
        if not self.undo_stack:
            raise DevlinkError("nothing to undo: no edit since the program was built or restarted")
        rec = self.undo_stack.pop()
        changes = {p: b for p, b in rec.before.items() if b is not None and self.object_bytes.get(p) != b}
        if not changes:
            return []
        self._write_objects(changes)
        gen = self.apply_objects(changes, kind="undo", undo=rec)
        if gen.action not in ("undo",):
            return []
        return gen.reverted if gen.patched else sorted(set(rec.changed))


def _content_key(content: dict[str, bytes]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for p in sorted(content):
        h.update(p.encode() + b"\0" + hashlib.blake2b(content[p], digest_size=16).digest())
    return h.digest()

"""Temporary C projects under a devlink session, for tests: the `c_project` fixture of
devlink's pytest plugin (and of devlink's own tests).

    def test_counter_keeps_counting(c_project):
        c_project.write("main.c", MAIN)
        c_project.start()
        c_project.expect_output(r"count 3")
        c_project.edit("main.c", "count %d", "total %d")      # saved like an editor does
        c_project.expect_output(r"total [4-9]")               # same process, state kept

Each `edit` saves the file the way editors do (a temporary file renamed over it) and
applies the update at once, so the test knows the generation it waits for; the
program's output (stdout and stderr) is read line by line with a timeout, and a failed
expectation shows the last lines the program printed.  Tear-down stops the program and
its tracer, also when the test failed or timed out.
"""

from __future__ import annotations

import collections
import os
import re
import select
import subprocess
import time
from pathlib import Path

from devlink.errors import DevlinkError

DEFAULT_TIMEOUT = 10.0


class ExpectationFailed(AssertionError):
    """The program did not print what the test expected (the message has its last lines)."""


class CProject:
    """A C program in a temporary folder, built with devlink and run under a session."""

    def __init__(self, root: Path | str, cc: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 cflags: tuple[str, ...] = ("-O0",), output: str = "prog"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cc = cc
        self.timeout = timeout
        self.cflags = list(cflags)
        self.output = self.root / output
        self.session = None
        self.sources: list[Path] = []
        self.libraries: list[str] = []
        self.program_args: list[str] = []
        self.env: dict[str, str] = {}
        self._child = None
        self._buf = b""
        self._lines: collections.deque[str] = collections.deque()
        self._recent: collections.deque[str] = collections.deque(maxlen=20)

    # --- files -------------------------------------------------------------------------------
    def write(self, name: str, text: str) -> Path:
        """Create or overwrite a file of the project (before `start`, or to add one)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if path.suffix == ".c" and path not in self.sources:
            self.sources.append(path)
        return path

    def read(self, name: str) -> str:
        return (self.root / name).read_text()

    # --- the program ---------------------------------------------------------------------------
    def start(self, *args: str, cflags: tuple[str, ...] | None = None, libraries: tuple[str, ...] = (),
              env: dict[str, str] | None = None, on_unsafe: str = "restart", **session_options) -> "CProject":
        """Build every .c file written so far and start the program under a session.
        `session_options`: fields of devlink.session.Session (patch_area, guard,
        stop_threads, on_crash...)."""
        from devlink.build_args import parse_build_args
        from devlink.session import Session
        if not self.sources:
            raise DevlinkError(f"{self.root}: no C source written; call write('main.c', ...) first")
        if cflags is not None:
            self.cflags = list(cflags)
        self.libraries = list(libraries)
        self.program_args = list(args)
        self.env = dict(env or {})
        argv = ["-o", str(self.output), *self.cflags, *map(str, self.sources),
                *[f"-l{lib}" for lib in self.libraries]]
        build_args = parse_build_args(argv)
        build_args.cc = self.cc
        child_env = dict(os.environ)
        child_env.update(self.env)
        self.session = Session(build_args, self.program_args, env=child_env, **session_options)
        self._closed = False
        self.session.on_unsafe = on_unsafe
        self.session.build()
        self.session.start(stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._follow_child()
        return self

    def _follow_child(self) -> None:
        child = self.session.child if self.session is not None else None
        if child is not self._child:
            self._child = child
            self._buf = b""

    @property
    def pid(self) -> int | None:
        return self.session.child.pid if self.session is not None and self.session.child is not None else None

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    @property
    def generation(self) -> int:
        return self.session.linker.generation if self.session is not None and self.session.linker else 0

    # --- edits ---------------------------------------------------------------------------------
    def save(self, name: str, text: str) -> Path:
        """Save `text` as an editor does: a temporary file beside it, renamed over it
        (the update is not applied: `edit` does both)."""
        return self._save(name, text)

    def _save(self, name: str, text: str) -> Path:
        path = self.root / name
        tmp = path.with_name(f".{path.name}.devlink-save")
        tmp.write_text(text)
        os.replace(tmp, path)
        if path.suffix == ".c" and path not in self.sources:
            self.sources.append(path)
        return path

    def edit(self, name: str, old: str | None = None, new: str | None = None, *, text: str | None = None):
        """Replace `old` by `new` in the file (or save `text`), and apply the update to
        the running program.  Returns the session's Generation (None: nothing changed).
        A compile or link error raises DevlinkError; the program keeps its code."""
        if text is None:
            current = self.read(name)
            if old is None or old not in current:
                raise AssertionError(f"{name} does not contain {old!r}")
            text = current.replace(old, new or "")
        path = self._save(name, text)
        s = self._session()
        index = next((i for i, src in enumerate(s.args.sources) if Path(src) == path), None)
        if index is None:
            raise DevlinkError(f"{name} is not a source of the running program; write it before start()")
        gen = s.update([index])
        self._follow_child()
        return gen

    def wait_generation(self, number: int, timeout: float | None = None) -> None:
        """Until the session has reached generation `number`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self.generation < number:
            if time.monotonic() > deadline:
                raise ExpectationFailed(f"generation {number} was not reached in time (now {self.generation})")
            time.sleep(0.01)

    # --- output --------------------------------------------------------------------------------
    def expect_output(self, pattern: str, timeout: float | None = None) -> re.Match:
        """The next line of output (stdout and stderr, in order; none skipped) matching
        the regular expression `pattern`."""
        rx = re.compile(pattern)
        return rx.search(self.expect_line(lambda line: rx.search(line) is not None, timeout, f"/{pattern}/"))

    def expect_line(self, predicate, timeout: float | None = None, what: str = "the test's condition") -> str:
        """The next line of output for which `predicate(line)` is true."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            while self._lines:
                line = self._lines.popleft()
                self._recent.append(line)
                if predicate(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0 or not self._read_more(min(left, 0.2)):
                if left <= 0 or not self._lines:
                    self._fail(what, "in time" if left <= 0 else "before it ended", timeout)

    def _read_more(self, wait: float) -> bool:
        """Read what the program printed; False once its output has ended."""
        self._follow_child()
        child = self._child
        if child is None or child.stdout is None:
            return False
        fd = child.stdout.fileno()
        r, _, _ = select.select([fd], [], [], wait)
        if not r:
            return True
        chunk = os.read(fd, 65536)
        if not chunk:
            if self._buf:
                self._lines.append(self._buf.decode(errors="replace"))
                self._buf = b""
            # a restarted program writes to a new pipe
            self._follow_child()
            return self._child is not child
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        self._lines.extend(ln.decode(errors="replace") for ln in lines)
        return True

    def _fail(self, what: str, when: str, timeout: float):
        state = "running" if self.running else f"exited with status {self._child.poll() if self._child else '?'}"
        last = "\n".join(f"    {ln}" for ln in self._recent) or "    (nothing)"
        raise ExpectationFailed(f"the program did not print a line matching {what} {when} "
                                f"({timeout:g} s; program {state}); its last output:\n{last}")

    def drain(self) -> None:
        """Forget the output printed so far (the next expectation reads what comes next)."""
        while self._read_more(0):
            if not select.select([self._child.stdout.fileno()], [], [], 0)[0]:
                break
        self._recent.extend(self._lines)
        self._lines.clear()
        self._buf = b""

    def output_lines(self) -> list[str]:
        """Lines read so far and not yet consumed by expect_output (for inspection)."""
        return list(self._lines)

    # --- what devlink knows -----------------------------------------------------------------------
    def symbol(self, name: str) -> dict:
        """The symbol table row of a function (stub, atom, size/capacity, GOT slot and
        cell, target, generation) or variable (address, size, section)."""
        from devlink import tables as T
        s = self._session()
        for row in T.function_rows(s.linker) + T.variable_rows(s.linker):
            if row["name"] == name:
                return row
        raise KeyError(f"no function or variable {name!r} in the program")

    def read_memory(self, address: int, size: int) -> bytes:
        s = self._session()
        if not s.running or s.mem is None:
            raise DevlinkError("the program is not running")
        return s.mem.read(address, size)

    def value(self, name: str, signed: bool = True) -> int:
        """The live value of an integer global (read from the running program)."""
        row = self.symbol(name)
        if row.get("kind") == "function":
            raise TypeError(f"{name} is a function, not a variable")
        size = row["size"]
        if size not in (1, 2, 4, 8):
            raise TypeError(f"{name} is {size} bytes: use read_memory(symbol({name!r})['address'], {size})")
        return int.from_bytes(self.read_memory(row["address"], size), "little", signed=signed)

    # --- control -------------------------------------------------------------------------------
    def undo(self) -> list[str]:
        """Flip the last update's functions back; returns their names."""
        return self._session().undo()

    def restart(self) -> int:
        """Start the program again on its newest code; returns the new pid."""
        s = self._session()
        s.stop()
        s.start(stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._follow_child()
        self._lines.clear()
        return s.child.pid

    def stop(self) -> int | None:
        """Stop the program (and its tracer); returns its exit status.  The session's
        link state stays readable (`session.linker`)."""
        if self.session is None or self._closed:
            return None
        self._closed = True
        try:
            status = self.session.stop()
        finally:
            self.session.close()
        return status

    def __enter__(self) -> "CProject":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _session(self):
        if self.session is None:
            raise DevlinkError("the program is not started; call start() first")
        return self.session

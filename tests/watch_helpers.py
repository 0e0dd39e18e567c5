"""Driving `devlink watch` as a subprocess on a temporary project, and editing files the
ways editors save them."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import devlink_env


class WatchProcess:
    """`devlink watch --no-keys ROOT`; the program's stdout lines and devlink's own
    (stderr) lines are collected by threads and waited for with `expect`/`expect_log`."""

    def __init__(self, root: Path, extra_args=(), env=None):
        self.root = Path(root)
        self.proc = subprocess.Popen([sys.executable, "-m", "devlink", "watch", "--no-keys", *extra_args, str(root)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     env=devlink_env(env), cwd=root)
        self.out: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.log_cond = threading.Condition()
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_log, daemon=True).start()

    def _pump_out(self):
        for raw in self.proc.stdout:
            self.out.put(raw.decode(errors="replace").rstrip("\n"))

    def _pump_log(self):
        for raw in self.proc.stderr:
            with self.log_cond:
                self.log.append(raw.decode(errors="replace").rstrip("\n"))
                self.log_cond.notify_all()

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match:
        """The next program output line matching `pattern` (earlier lines are dropped)."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"program never printed /{pattern}/; last lines: {seen[-5:]}\n"
                                     f"devlink said:\n" + "\n".join(self.log[-20:]))
            try:
                line = self.out.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(line)
            m = rx.search(line)
            if m:
                return m

    def drain(self) -> None:
        while True:
            try:
                self.out.get_nowait()
            except queue.Empty:
                return

    def expect_log(self, pattern: str, timeout: float = 30.0, start: int = 0) -> str:
        """A line devlink printed (from index `start` of its log) matching `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.log_cond:
            while True:
                for line in self.log[start:]:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self._more_log():
                    raise AssertionError(f"devlink never printed /{pattern}/; it printed:\n" + "\n".join(self.log))
                self.log_cond.wait(min(left, 0.2))

    def _more_log(self) -> bool:
        return False

    def mark(self) -> int:
        with self.log_cond:
            return len(self.log)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# --- saving the way editors do ------------------------------------------------------------

def save_rename(path: Path, text: str) -> None:
    """Write a temporary file beside it and rename it over (vim, VS Code, most editors)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_truncate(path: Path, text: str) -> None:
    """Truncate the file, then write the new contents (nano, some IDEs)."""
    with open(path, "r+") as f:
        f.truncate(0)
        f.flush()
        os.fsync(f.fileno())
        time.sleep(0.005)
        f.write(text)


def save_partial(path: Path, text: str, pause: float = 0.01) -> None:
    """The first half, a pause, then the rest (a slow writer)."""
    half = len(text) // 2
    with open(path, "w") as f:
        f.write(text[:half])
        f.flush()
        time.sleep(pause)
        f.write(text[half:])

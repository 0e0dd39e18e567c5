"""`devlink watch`: the terminal front end of a session host (devlink/host.py).

The host builds, runs, watches and patches; this module is what the terminal adds:
devlink's lines on stderr, prefixed and coloured by rich, a progress bar for the first
build, and the keys r (restart), u (undo), q (quit) read in cbreak mode.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from devlink.host import Lines, SessionHost


class Terminal(Lines):
    """devlink's own lines, apart from the program's: on stderr, prefixed and coloured
    (the program's output goes straight to the terminal, escapes and all)."""

    def __init__(self, stream=None):
        from rich.console import Console
        super().__init__(stream)
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)

    def line(self, text: str, style: str = "cyan") -> None:
        from rich.markup import escape
        with self.lock:
            self.console.print(f"[bold {style}]devlink[/] {escape(text)}")

    @contextlib.contextmanager
    def progress(self, total: int):
        if not self.console.is_terminal:
            with super().progress(total) as on_compiled:
                yield on_compiled
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        with Progress(TextColumn("[bold cyan]devlink[/] compiling"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.description}"), console=self.console, transient=True) as bar:
            task = bar.add_task("", total=total)
            yield lambda src, done, total: bar.update(task, completed=done, description=os.path.basename(src))


#: key -> host command
KEYS = {"r": "restart", "u": "undo", "q": "quit"}


class WatchApp:
    def __init__(self, root: str, terminal: Terminal | None = None, keys: bool | None = None,
                 policies: dict[str, str] | None = None, output: str | None = None):
        self.term = terminal or Terminal()
        self.keys = sys.stdin.isatty() if keys is None else keys
        self.host = SessionHost(root, out=self.term, policies=policies, output=output)
        if self.keys:
            self.host.running_hint = "; keys: r restart, u undo, q quit"

    def run(self) -> int:
        restore_tty = self._start_keys() if self.keys else None
        try:
            return self.host.run()
        finally:
            if restore_tty:
                restore_tty()

    def _start_keys(self):
        import termios
        import tty
        fd = sys.stdin.fileno()
        try:
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except termios.error:
            return None
        host = self.host

        def read_keys():
            while not host.quit.is_set():
                try:
                    ch = os.read(fd, 1)
                except OSError:
                    return
                if not ch:
                    return
                command = KEYS.get(ch.decode(errors="ignore").lower())
                if command:
                    host.post(command)

        threading.Thread(target=read_keys, name="devlink-keys", daemon=True).start()
        return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def main(root: str) -> int:
    return WatchApp(root).run()

"""File events in, one batch per save out.

Editors save in several ways (write a temp file and rename it over the source;
truncate then write; several writes), each a burst of inotify events.  `ChangeWatcher`
collects the paths of a burst and hands them over once the folder has been quiet for
`quiet` seconds (or `longest` after the first event, so a file written continuously
still gets built); when the last event says the save is complete (the writer closed the
file, or a rename put it in place), after only `quiet_after_close`.  A save of a file whose compile is still running stops that compile
(`on_event`), so only the newest version is built.
"""

from __future__ import annotations

import os
import threading
import time

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

#: folders never watched (devlink's own state, VCS, build trees of other tools)
IGNORED_DIRS = {".devlink", ".git", ".hg", ".svn", "__pycache__", "node_modules"}


class ChangeWatcher(FileSystemEventHandler):
    def __init__(self, root: str, quiet: float = 0.03, longest: float = 0.3, on_event=None,
                 quiet_after_close: float = 0.002):
        self.root = os.path.abspath(root)
        self.quiet = quiet
        #: after a writer closed the file or a rename put it in place, the save is
        #: complete: only wait long enough to merge the events that come with it
        self.quiet_after_close = quiet_after_close
        self._complete = False
        self.longest = longest
        self.on_event = on_event
        self._cond = threading.Condition()
        self._paths: set[str] = set()
        self._first = 0.0
        self._last = 0.0
        self._wakeups = 0
        self._observer = Observer()

    def start(self) -> None:
        self._observer.schedule(self, self.root, recursive=True)
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive():      # a session that failed before it watched anything
            self._observer.join(2)

    def ignored(self, path: str) -> bool:
        rel = os.path.relpath(path, self.root)
        parts = rel.split(os.sep)
        return rel.startswith("..") or any(p in IGNORED_DIRS for p in parts[:-1]) or parts[0] in IGNORED_DIRS

    # watchdog calls this from its thread for every event
    def on_any_event(self, event) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path] + ([event.dest_path] if getattr(event, "dest_path", "") else [])
        now = time.monotonic()
        with self._cond:
            for p in paths:
                p = os.path.abspath(os.fsdecode(p))
                if self.ignored(p):
                    continue
                if not self._paths:
                    self._first = now
                self._paths.add(p)
                self._last = now
                # closed after writing, or renamed into place: the file is whole now
                self._complete = event.event_type in ("closed", "moved")
                if self.on_event is not None:
                    self.on_event(p)
            self._cond.notify_all()

    def wake(self) -> None:
        """Make `next_batch` return now (a key press or a command wants the loop)."""
        with self._cond:
            self._wakeups += 1
            self._cond.notify_all()

    def next_batch(self, timeout: float | None = None) -> set[str]:
        """The paths of the next burst of events, once it is over; empty after
        `timeout` or a `wake`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._wakeups:
                    self._wakeups = 0
                    if not self._paths:
                        return set()
                now = time.monotonic()
                if self._paths:
                    quiet = self.quiet_after_close if self._complete else self.quiet
                    settle = min(self._last + quiet, self._first + self.longest)
                    if now >= settle:
                        paths, self._paths = self._paths, set()
                        return paths
                    self._cond.wait(settle - now)
                    continue
                if deadline is not None and now >= deadline:
                    return set()
                self._cond.wait(None if deadline is None else deadline - now)

"""The one module that writes the output executable.

A full link writes a temporary file next to the target and renames it into place, so
a failed or interrupted link leaves the old program untouched (invariant 6).  Reserved
room is left as holes (the file is sparse), so it costs no disk and no write time.
"""

from __future__ import annotations

import os
import re
import threading

from devlink.errors import DevlinkError


def _release_in_background(fd: int) -> None:
    """Close the last handle on a replaced output in another thread: freeing a large
    file's page cache costs ~1 ms per MB, and nobody waits for it (mold does the same)."""
    threading.Thread(target=os.close, args=(fd,), daemon=True).start()


def _create(tmp: str) -> int:
    """A new file: a leftover (or a symlink planted at the name) is removed, not followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(tmp, flags, 0o755)
    except FileExistsError:
        os.unlink(tmp)
        return os.open(tmp, flags, 0o755)


def write_file(path: str, image) -> None:
    """Write an OutputImage (or plain bytes) to `path` atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.devlink-{os.getpid()}.tmp")
    try:
        fd = _create(tmp)
        try:
            if isinstance(image, (bytes, bytearray, memoryview)):
                chunks, size = [(0, memoryview(image))], len(image)
            else:
                chunks, size = image.chunks(), image.file_size
            os.ftruncate(fd, size)
            for off, data in chunks:
                while data:
                    n = os.pwrite(fd, data, off)
                    data = data[n:]
                    off += n
        finally:
            os.close(fd)
        try:
            old = os.open(path, os.O_RDONLY)
        except OSError:
            old = -1
        try:
            os.replace(tmp, path)
        finally:
            if old >= 0:
                _release_in_background(old)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise DevlinkError(f"cannot write {path!r}: {e.strerror}; check the directory exists and is writable") from None


def remove_stale_temporaries(path: str) -> None:
    """Remove the temporary outputs (`.NAME.devlink-PID.tmp`, as large as the program)
    a full link killed while writing left next to `path`."""
    from devlink.private import remove_stale_temporaries as remove
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.devlink-") + r"(\d+)\.tmp$")
    remove(os.path.dirname(os.path.abspath(path)), pattern)


def pwrite_all(path: str, writes, fault=None) -> None:
    """Write (offset, data) pieces into an existing file in place."""
    if not writes:
        return
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        raise DevlinkError(f"cannot open {path!r} for writing: {e.strerror}") from None
    try:
        if fault:
            for w in writes:
                os.pwrite(fd, w.data, w.offset)
                fault("write")
            return
        # pieces that follow each other in the file (an object's atoms, kept in
        # place) go out in one system call, in order
        run, start, end = [], 0, -1
        for w in writes:
            if w.offset != end or len(run) >= 1024:
                if run:
                    os.pwritev(fd, run, start)
                run, start = [], w.offset
                end = w.offset
            run.append(w.data)
            end += len(w.data)
        if run:
            os.pwritev(fd, run, start)
    finally:
        os.close(fd)

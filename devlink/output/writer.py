"""The one module that writes the output executable.

A full link writes a temporary file next to the target and renames it into place, so
a failed or interrupted link leaves the old program untouched (invariant 6).
"""

from __future__ import annotations

import os

from devlink.errors import DevlinkError


def write_file(path: str, image: bytes | bytearray) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.devlink-{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
        try:
            view = memoryview(image)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise DevlinkError(f"cannot write {path!r}: {e.strerror}; check the directory exists and is writable") from None

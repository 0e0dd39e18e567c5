"""Turning a command line's inputs into files: -l search, archives, linker scripts."""

from __future__ import annotations

import mmap
import os
import stat

from devlink.elf import consts as C
from devlink.errors import DevlinkError


#: bytes read first from every input: enough for its kind and its ELF header
HEAD_SIZE = 4096


def open_input(path: str) -> tuple[int, int]:
    """(fd, size) of input `path`, opened for reading once it is known to be a regular
    file (a FIFO is opened without blocking and refused; a directory is refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DevlinkError(f"input file {path!r} not found; check the path") from None
    except IsADirectoryError:
        raise DevlinkError(f"input {path!r} is a directory; pass .c, .o, .a files or -l libraries") from None
    except OSError as e:
        raise DevlinkError(f"cannot read {path!r}: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a socket" if stat.S_ISSOCK(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) \
            else "not a regular file"      # (a FIFO would block the link forever)
        raise DevlinkError(f"input {path!r} is {what}; pass .c, .o, .a files or -l libraries")
    return fd, st.st_size


def check_input(path: str) -> None:
    """The checks `load_input` makes before reading: the same errors for a fresh link
    and for an incremental build's added or changed input."""
    fd, size = open_input(path)
    try:
        kind_of(path, os.pread(fd, HEAD_SIZE, 0), size)
    finally:
        os.close(fd)


def load_input(path: str, map_archive: bool = True) -> tuple[str, bytes]:
    """(kind, contents) of an input file.  Its kind and header are checked on the first
    bytes before the rest is read, so a huge file of garbage is refused at once.  An
    archive is mapped, not read (a link pages in its index and the members it pulls);
    an object is read: the linker keeps views of it, and the compiler rewrites objects
    in place (a mapped file that shrinks under a view faults with SIGBUS)."""
    fd, size = open_input(path)
    try:
        head = os.pread(fd, HEAD_SIZE, 0)
        kind = kind_of(path, head, size)
        if kind == "archive" and map_archive and size:
            return kind, mmap.mmap(fd, size, mmap.MAP_PRIVATE, mmap.PROT_READ)
        if len(head) == size:
            return kind, head
        with os.fdopen(os.dup(fd), "rb") as f:
            return kind, f.read()
    except OSError as e:
        raise DevlinkError(f"cannot read {path!r}: {e.strerror}") from None
    finally:
        os.close(fd)


def kind_of(path: str, data: bytes, size: int | None = None) -> str:
    """'object', 'shared', 'archive' or 'script', from the file's first bytes (`data`)
    and its `size` (default: len(data)).  An ELF file whose section headers lie past
    its end is refused here, before it is read."""
    size = len(data) if size is None else size
    if data.startswith(C.ELFMAG):
        if size < 64:
            raise DevlinkError(f"{path}: file is truncated ({size} bytes, smaller than an ELF header); rebuild it")
        e_type = int.from_bytes(data[16:18], "little")
        if e_type == C.ET_REL:
            kind = "object"
        elif e_type == C.ET_DYN:
            kind = "shared"
        elif e_type == C.ET_EXEC:
            raise DevlinkError(f"{path}: is an executable, not an object or library; pass .o files, .a archives or -l libraries")
        else:
            raise DevlinkError(f"{path}: ELF file of unknown type {e_type}; pass .o files, .a archives or -l libraries")
        e_shoff = int.from_bytes(data[40:48], "little")
        e_shnum = int.from_bytes(data[60:62], "little")
        if e_shoff > size or e_shoff + e_shnum * 64 > size:
            raise DevlinkError(f"{path}: section header table runs past the end of the file (truncated?); rebuild it")
        return kind
    if data.startswith(b"!<arch>\n") or data.startswith(b"!<thin>\n"):
        return "archive"
    head = data[:4096]
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if text and any(k in text for k in ("GROUP", "INPUT", "OUTPUT_FORMAT")):
        return "script"
    raise DevlinkError(f"{path}: not an ELF object, archive, shared library or linker script; pass .c, .o, .a files or -l libraries")


def find_library(name: str, dirs: list[str], static: bool = False) -> str:
    """The file `-l<name>` means: lib<name>.so (or its script) before lib<name>.a, per dir."""
    if name.startswith(":"):
        cands = [name[1:]]
    else:
        cands = [f"lib{name}.a"] if static else [f"lib{name}.so", f"lib{name}.a"]
    for d in dirs:
        for c in cands:
            p = os.path.join(d, c)
            if os.path.isfile(p):
                return p
    raise DevlinkError(f"cannot find library -l{name} (looked in {', '.join(dict.fromkeys(dirs)) or 'no directories'}); "
                       f"install it or add its directory with -L")

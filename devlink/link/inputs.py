"""Turning a command line's inputs into files: -l search, archives, linker scripts."""

from __future__ import annotations

import os

from devlink.elf import consts as C
from devlink.errors import DevlinkError


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DevlinkError(f"input file {path!r} not found; check the path") from None
    except IsADirectoryError:
        raise DevlinkError(f"input {path!r} is a directory; pass .c, .o, .a files or -l libraries") from None
    except OSError as e:
        raise DevlinkError(f"cannot read {path!r}: {e.strerror}") from None


def kind_of(path: str, data: bytes) -> str:
    """'object', 'shared', 'archive' or 'script'."""
    if data.startswith(C.ELFMAG):
        if len(data) < 18:
            raise DevlinkError(f"{path}: file is truncated ({len(data)} bytes, smaller than an ELF header); rebuild it")
        e_type = int.from_bytes(data[16:18], "little")
        if e_type == C.ET_REL:
            return "object"
        if e_type == C.ET_DYN:
            return "shared"
        if e_type == C.ET_EXEC:
            raise DevlinkError(f"{path}: is an executable, not an object or library; pass .o files, .a archives or -l libraries")
        raise DevlinkError(f"{path}: ELF file of unknown type {e_type}; pass .o files, .a archives or -l libraries")
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

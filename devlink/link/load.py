"""Pass 1, the inputs: cc's start-up objects, the command line in order, devlink's
runtime, cc's default libraries, then crtend.o/crtn.o.  Linker scripts (libc.so) are
followed; archives are only indexed here (resolution pulls their members in)."""

from __future__ import annotations

import os

from devlink.elf.reader import read_archive, read_linker_script, read_object, read_shared_object
from devlink.errors import DevlinkError
from devlink.link.inputs import find_library, load_input
from devlink.link.object_file import ObjectFile, SharedObject


def load_inputs(linker) -> None:
    tc = linker.toolchain
    lib_dirs = list(linker.options.lib_dirs) + (tc.lib_dirs if tc else [])
    linker.lib_dirs = lib_dirs
    if tc:
        for p in tc.pre_objects:
            load_path(linker, p, as_needed=False)
    for item in linker.options.inputs:
        if item.startswith("-l"):
            load_path(linker, find_library(item[2:], lib_dirs), as_needed=True)
        else:
            load_path(linker, item, as_needed=False)
    if tc and linker.options.runtime and any(o for o in linker.objects):
        # devlink's runtime: its constructor maps the shared patch area under a
        # session (invariant 5); it needs cc's start-up code to run constructors
        from devlink.runtime import runtime_object
        load_path(linker, runtime_object(tc.cc), as_needed=False)
    if tc:
        for name, as_needed in tc.default_libs:
            load_path(linker, find_library(name, lib_dirs), as_needed=as_needed)
        for p in tc.post_objects:
            load_path(linker, p, as_needed=False, post=True)
    if not any(o for o in linker.objects):
        raise DevlinkError("no input files; pass .c, .o or .a files to link")


def load_path(linker, path: str, as_needed: bool, post: bool = False, depth: int = 0) -> None:
    cached = _library_cache_get(path)
    if cached is not None:
        # a system library parsed by an earlier link in this process
        if isinstance(cached, tuple):
            if not any(lib[1].path == path for lib in linker.libraries if isinstance(lib, tuple)):
                linker.libraries.append(("archive", cached[1], set()))
        elif not any(so.name == path for so in linker.shared):
            so = SharedObject(cached, as_needed)
            linker.shared.append(so)
            linker.libraries.append(so)
        return
    kind, data = load_input(path)
    if kind == "object":
        obj = add_object(linker, read_object(path, data), path)
        if post:
            linker.post_objects.append(obj)
    elif kind == "archive":
        if any(lib[1].path == path for lib in linker.libraries if isinstance(lib, tuple)):
            return
        archive = read_archive(path, data)
        _library_cache_put(path, ("archive", archive))
        linker.libraries.append(("archive", archive, set()))
    elif kind == "shared":
        if any(so.name == path for so in linker.shared):
            return
        raw = read_shared_object(path, data)
        _library_cache_put(path, raw)
        so = SharedObject(raw, as_needed)
        linker.shared.append(so)
        linker.libraries.append(so)
    else:
        if depth > 8:
            raise DevlinkError(f"{path}: linker scripts include each other too deeply")
        base = os.path.dirname(path)
        for entry, entry_as_needed in read_linker_script(path, data.decode("utf-8", "replace")):
            if entry.startswith("-l"):
                p = find_library(entry[2:], linker.lib_dirs)
            elif os.path.isabs(entry):
                p = entry
            else:
                p = os.path.join(base, entry)
                if not os.path.exists(p):
                    try:
                        p = find_library(":" + entry, linker.lib_dirs)
                    except DevlinkError:
                        raise DevlinkError(f"{path}: names {entry!r}, which was not found") from None
            load_path(linker, p, as_needed or entry_as_needed, depth=depth + 1)


def add_object(linker, raw, name: str) -> ObjectFile:
    obj = ObjectFile(raw, name, priority=len(linker.objects))
    linker.atom_order = obj.create_atoms(linker.atom_order)
    for signature, members in obj.comdat_groups:
        if signature in linker.comdat_seen:
            for m in members:
                if 0 < m < len(obj.atoms) and obj.atoms[m] is not None:
                    obj.atoms[m].alive = False
                    obj.atoms[m] = None
        else:
            linker.comdat_seen.add(signature)
    if obj.exec_stack:
        linker.exec_stack = True
    linker.objects.append(obj)
    return obj


#: libraries and archives parsed in this process, by path, checked by size and mtime:
#: a session links many times, and libc's symbol table takes ~30 ms to read
_LIBRARY_CACHE: dict[str, tuple[tuple[int, int], object]] = {}


def _library_cache_get(path: str):
    entry = _LIBRARY_CACHE.get(path)
    if entry is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return entry[1] if entry[0] == (st.st_size, st.st_mtime_ns) else None


def _library_cache_put(path: str, value) -> None:
    if path.endswith(".o"):
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    _LIBRARY_CACHE[path] = ((st.st_size, st.st_mtime_ns), value)

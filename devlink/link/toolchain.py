"""What `cc` would link: start-up objects, library directories, default libraries.

Asked of the user's own compiler the way it builds a link line (`cc -no-pie -###`), so
devlink links the same crt1.o/crti.o/crtbegin.o, libgcc and libc as `cc` does.  The
answer is cached per compiler (keyed by its path and mtime) so `devlink build` does not
pay for a compiler process on every run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, asdict, field

from devlink.errors import DevlinkError

CACHE_VERSION = 1


@dataclass
class Toolchain:
    cc: str
    #: PT_INTERP
    dynamic_linker: str = "/lib64/ld-linux-x86-64.so.2"
    #: objects before the user's (crt1.o, crti.o, crtbegin.o)
    pre_objects: list[str] = field(default_factory=list)
    #: objects after everything (crtend.o, crtn.o)
    post_objects: list[str] = field(default_factory=list)
    #: -L directories cc passes, in order
    lib_dirs: list[str] = field(default_factory=list)
    #: libraries after the user's: [(name, as_needed)], e.g. ("gcc", False), ("gcc_s", True)
    default_libs: list[tuple[str, bool]] = field(default_factory=list)


def find_cc() -> str:
    cc = os.environ.get("CC") or "cc"
    argv = shlex.split(cc)
    path = shutil.which(argv[0])
    if path is None:
        raise DevlinkError(f"C compiler {argv[0]!r} not found; install gcc (apt-get install gcc) or set CC")
    return shlex.join([path] + argv[1:])


def _cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "devlink", "toolchain.json")


def discover_toolchain(cc: str | None = None) -> Toolchain:
    cc = cc or find_cc()
    argv = shlex.split(cc)
    try:
        st = os.stat(argv[0])
        key = f"{CACHE_VERSION}:{cc}:{st.st_mtime_ns}:{st.st_size}"
    except OSError:
        raise DevlinkError(f"C compiler {argv[0]!r} not found; install gcc or set CC") from None
    cache_file = _cache_path()
    try:
        with open(cache_file) as f:
            cached = json.load(f)
        if cached.get("key") == key:
            tc = Toolchain(**cached["toolchain"])
            tc.default_libs = [tuple(x) for x in tc.default_libs]
            return tc
    except (OSError, ValueError, TypeError, KeyError):
        pass
    tc = _ask_cc(cc, argv)
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        tmp = cache_file + f".{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({"key": key, "toolchain": asdict(tc)}, f)
        os.replace(tmp, cache_file)
    except OSError:
        pass
    return tc


def _ask_cc(cc: str, argv: list[str]) -> Toolchain:
    marker = "devlink-input-marker.o"
    try:
        p = subprocess.run(argv + ["-no-pie", "-###", marker, "-o", "devlink-out"],
                           capture_output=True, text=True, timeout=30)
    except OSError as e:
        raise DevlinkError(f"cannot run C compiler {cc!r}: {e.strerror}; install gcc or set CC") from None
    line = None
    for ln in p.stderr.splitlines():
        if marker in ln and ("collect2" in ln or " ld" in ln or "/ld" in ln):
            line = ln
    if line is None:
        raise DevlinkError(f"could not read the link line of {cc!r} (`cc -###` printed no linker command); use gcc or clang")
    args = shlex.split(line)
    tc = Toolchain(cc=cc)
    seen_marker = False
    as_needed = False
    stack: list[bool] = []
    i = 1
    while i < len(args):
        a = args[i]
        if a in ("-plugin", "-dynamic-linker", "-m", "-o", "-z", "--hash-style"):
            if a == "-dynamic-linker":
                tc.dynamic_linker = args[i + 1]
            i += 2
            continue
        if a == marker:
            seen_marker = True
        elif a.startswith("-L"):
            d = a[2:] or args[i + 1]
            tc.lib_dirs.append(os.path.normpath(d))
            if a == "-L":
                i += 1
        elif a.startswith("-l"):
            tc.default_libs.append((a[2:], as_needed))
        elif a == "--as-needed":
            as_needed = True
        elif a == "--no-as-needed":
            as_needed = False
        elif a == "--push-state":
            stack.append(as_needed)
        elif a == "--pop-state":
            as_needed = stack.pop() if stack else False
        elif a.endswith(".o") and not a.startswith("-"):
            (tc.post_objects if seen_marker else tc.pre_objects).append(os.path.normpath(a))
        i += 1
    return tc

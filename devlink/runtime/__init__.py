"""devlink's start-up runtime (devlink_rt.c), compiled once per compiler and cached.

The object is linked into every program devlink builds; see devlink_rt.c for what it
does and devlink/hotpatch/shared.py for the other side of the patch area.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess

from devlink.errors import DevlinkError

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "devlink_rt.c")
CFLAGS = ["-O2", "-fPIC", "-ffunction-sections", "-fdata-sections", "-fno-stack-protector", "-w"]
#: the environment variable that carries the patch area to the child
ENV = "DEVLINK_PATCH_AREA"


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "devlink", "runtime")


def runtime_object(cc: str) -> str:
    """Path of the runtime object for `cc`, compiled on first use (keyed by the source,
    the flags and the compiler binary, so a compiler upgrade recompiles it)."""
    argv = shlex.split(cc)
    try:
        with open(SOURCE, "rb") as f:
            source = f.read()
        st = os.stat(argv[0])
    except OSError as e:
        raise DevlinkError(f"cannot read devlink's runtime source or compiler: {e}") from None
    key = hashlib.sha256(source + repr((cc, st.st_mtime_ns, st.st_size, CFLAGS)).encode()).hexdigest()[:24]
    path = os.path.join(_cache_dir(), f"{key}.o")
    if os.path.exists(path):
        return path
    folder = _cache_dir()
    try:
        os.makedirs(folder, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        # HOME (or XDG_CACHE_HOME) is read-only: a private folder in /tmp holds it
        from devlink.private import shared_private_dir
        folder = shared_private_dir(f"devlink-{os.getuid()}")[0]
        path = os.path.join(folder, f"runtime-{key}.o")
        if os.path.exists(path):
            return path
    tmp = f"{path}.{os.getpid()}.tmp"
    r = subprocess.run(argv + CFLAGS + ["-c", SOURCE, "-o", tmp], capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(tmp):
        raise DevlinkError(f"cannot compile devlink's runtime with {cc}: {r.stderr.strip()[:300] or 'no object written'}; "
                           f"set DEVLINK_NO_RUNTIME=1 to link without it")
    os.replace(tmp, path)
    return path

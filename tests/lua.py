"""Lua 5.4 as a real-world test and benchmark program (a helper module, not a test).

The source comes from Debian's source package (``apt-get source lua5.4``), fetched
by ``scripts/fetch-lua.sh`` into a cache directory outside the repository:
``$DEVLINK_LUA_SRC``, default ``~/.cache/devlink/lua5.4`` (the unpacked tree, with
Debian's patches applied; the C files are in its ``src/``).

What the Lua build does on Linux (Debian's ``src/Makefile``, target
``linux-noreadline``; Debian's own package uses ``linux-readline`` plus
``dpkg-buildflags`` hardening flags, which we leave out):

    CC      = gcc -std=gnu99
    CFLAGS  = -Wall -Wextra -DLUA_COMPAT_5_3 -DLUA_USE_LINUX
    LIBS    = -lm -Wl,-E -ldl
    lua     = lua.o + CORE_O + LIB_O   (luac.c is the separate compiler ``luac``)

Debian's Makefile builds ``llex.c``, ``lparser.c`` and ``lcode.c`` with an extra
``-Os`` (see ``LUA_PER_FILE_CFLAGS``); the tests and benchmarks here compile every
file with the same flags so that the objects are comparable.

``-Wl,-E`` (export every global of the executable, so that C modules loaded with
``require`` find ``lua_*`` functions) is devlink's ``-E`` / ``export_dynamic=True``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FETCH_SCRIPT = REPO / "scripts" / "fetch-lua.sh"

#: Preprocessor/language flags of Lua's Makefile on Linux (warnings left out).
LUA_CFLAGS: list[str] = ["-std=gnu99", "-DLUA_COMPAT_5_3", "-DLUA_USE_LINUX"]
#: Warning flags the Makefile adds (harmless, not needed to build).
LUA_WARN_CFLAGS: list[str] = ["-Wall", "-Wextra"]
#: Extra per-file flags in Debian's Makefile (the "compiler modules" built for size).
LUA_PER_FILE_CFLAGS: dict[str, list[str]] = {
    "llex.c": ["-Os"],
    "lparser.c": ["-Os"],
    "lcode.c": ["-Os"],
}
#: Libraries of the ``lua`` executable (``LIBS= -lm ... -ldl``).
LUA_LIBS: list[str] = ["m", "dl"]
#: ``-Wl,-E``: the executable exports its symbols for C modules.
LUA_EXPORT_DYNAMIC = True
#: The flags devlink itself adds when it compiles a .c file, used for our objects too.
DEVLINK_CC_FLAGS: list[str] = ["-fPIC", "-ffunction-sections", "-fdata-sections", "-g"]

# Test-only / amalgamation files that are never part of the ``lua`` interpreter.
_NOT_IN_LUA = {"luac.c", "ltests.c", "onelua.c"}


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/devlink`` (default ``~/.cache/devlink``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "devlink"


def lua_root() -> Path:
    """The unpacked Lua source tree (it may not exist yet)."""
    env = os.environ.get("DEVLINK_LUA_SRC")
    return Path(env).expanduser() if env else cache_root() / "lua5.4"


def lua_sources(fetch: bool = True) -> Path:
    """The directory holding Lua's ``*.c`` files (``<tree>/src``).

    Runs ``scripts/fetch-lua.sh`` first when the source is not there yet (needs
    Debian's apt repositories and root or sudo to add a ``deb-src`` entry).
    Raises ``FileNotFoundError`` when the source cannot be had.
    """
    src = lua_root() / "src"
    if not (src / "lua.c").is_file() and fetch:
        proc = subprocess.run(["sh", str(FETCH_SCRIPT)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise FileNotFoundError(
                f"could not fetch the Lua 5.4 source with {FETCH_SCRIPT} "
                f"(exit {proc.returncode}):\n{proc.stderr.strip()}"
            )
    else:
        # an already unpacked tree may still miss Debian's generated header
        luaconf = src / "luaconf.h"
        if luaconf.is_file() and "lua5.4-deb-multiarch.h" in luaconf.read_text() \
                and not (src / "lua5.4-deb-multiarch.h").exists():
            subprocess.run(["sh", str(FETCH_SCRIPT)], capture_output=True, check=False)
    if not (src / "lua.c").is_file():
        raise FileNotFoundError(f"no Lua source in {src} (run {FETCH_SCRIPT})")
    return src


def _makefile_objects(makefile: Path) -> list[str] | None:
    """``CORE_O LIB_O`` then ``LUA_O`` from Lua's ``src/Makefile`` (object names)."""
    try:
        text = makefile.read_text()
    except OSError:
        return None
    text = text.replace("\\\n", " ")
    vars_: dict[str, str] = {}
    for m in re.finditer(r"^([A-Z_]+)\s*=\s*(.*)$", text, re.M):
        vars_.setdefault(m.group(1), m.group(2).strip())
    objs: list[str] = []
    for name in ("CORE_O", "LIB_O", "LUA_O"):
        if name not in vars_:
            return None
        objs += [w for w in vars_[name].split() if w.endswith(".o")]
    return objs or None


def lua_c_files(src: Path | None = None) -> list[Path]:
    """The ``.c`` files of the ``lua`` interpreter, ``lua.c`` first.

    Taken from the Makefile (``CORE_O LIB_O`` = the library, ``LUA_O`` = lua.o);
    without a usable Makefile, every ``src/*.c`` except luac.c, ltests.c, onelua.c.
    """
    src = src or lua_sources()
    objs = _makefile_objects(src / "Makefile")
    if objs:
        files = [src / (o[:-2] + ".c") for o in objs]
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"Lua Makefile names missing sources: {missing}")
    else:
        files = sorted(p for p in src.glob("*.c") if p.name not in _NOT_IN_LUA)
    return [f for f in files if f.name == "lua.c"] + [f for f in files if f.name != "lua.c"]


def cc_version(cc: str = "cc") -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def compile_cached(
    sources: list[Path],
    cflags: list[str],
    cache_dir: Path,
    *,
    extra_inputs: list[Path] = (),
    jobs: int = 2,
    cc: str = "cc",
    label: str = "objs",
) -> list[Path]:
    """Compile each source with ``cc -c <cflags>`` into a cache, in parallel.

    The cache directory is ``cache_dir/<label>-<hash>`` where the hash covers the
    compiler version, the flags, and the names and contents of the sources and of
    ``extra_inputs`` (headers). Objects are built in a scratch directory and renamed
    into place, so an interrupted build never leaves a half-filled cache entry.
    Returns the object paths in the order of ``sources``.
    """
    h = hashlib.sha256()
    h.update(cc_version(cc).encode())
    h.update("\0".join(cflags).encode())
    for p in list(sources) + sorted(extra_inputs):
        h.update(b"\0" + p.name.encode() + b"\0")
        h.update(p.read_bytes())
    out = cache_dir / f"{label}-{h.hexdigest()[:16]}"
    objs = [out / (s.stem + ".o") for s in sources]
    if out.is_dir() and all(o.is_file() for o in objs):
        return objs
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{label}-", dir=cache_dir))
    try:
        def one(src: Path) -> None:
            cmd = [cc, "-c", *cflags, str(src), "-o", str(tmp / (src.stem + ".o"))]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{proc.stderr}")

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            list(ex.map(one, sources))
        (tmp / "FLAGS").write_text(" ".join([cc, *cflags]) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return objs


def lua_objects(opt: list[str] = ("-O2",), jobs: int = 2,
                cache_dir: Path | None = None) -> list[Path]:
    """Lua's interpreter objects (``lua.o`` first), compiled with devlink's flags
    (``-fPIC -ffunction-sections -fdata-sections -g``) + ``opt`` + ``LUA_CFLAGS``,
    cached under ``cache_dir`` (default ``~/.cache/devlink/lua-obj``)."""
    src = lua_sources()
    files = lua_c_files(src)
    cflags = [*opt, *DEVLINK_CC_FLAGS, *LUA_CFLAGS]
    return compile_cached(files, cflags, cache_dir or cache_root() / "lua-obj",
                          extra_inputs=sorted(src.glob("*.h")), jobs=jobs, label="lua")


def lua_cc_link_args() -> list[str]:
    """What goes after the objects on a ``cc`` link line for ``lua``."""
    return [f"-l{lib}" for lib in LUA_LIBS] + (["-Wl,-E"] if LUA_EXPORT_DYNAMIC else [])


def lua_devlink_link_args() -> list[str]:
    """What goes after the objects on a ``python -m devlink build`` line for ``lua``."""
    return [f"-l{lib}" for lib in LUA_LIBS] + (["-E"] if LUA_EXPORT_DYNAMIC else [])


if __name__ == "__main__":  # quick manual check: python tests/lua.py
    src = lua_sources()
    print("source:", src)
    print("files :", " ".join(p.name for p in lua_c_files(src)))
    print("cflags:", " ".join(LUA_CFLAGS), "| libs:", " ".join(lua_cc_link_args()))
    objs = lua_objects()
    print("objs  :", objs[0].parent, len(objs))

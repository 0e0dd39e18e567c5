"""What a project is: its sources, flags, libraries, output and policies.

From least to most configuration:

* nothing: every `.c` file under the folder (not under `.devlink/` or hidden folders),
  the output named after the folder;
* `devlink.toml`: sources or globs, include dirs, defines, cflags, ldflags, libraries,
  output, program arguments and environment, policies, compiler and launcher;
* `compile_commands.json` (CMake, Meson, Bear): each source with its own flags, as
  clangd reads it.  `devlink.toml` may sit beside it for what it does not say
  (output, arguments, policies).

devlink needs some flags of its own (-fPIC -ffunction-sections -fdata-sections -g) and
cannot honour others (-flto, -static, -pie...): `sanitize_flags` drops those and says so,
once, in `ProjectConfig.notes`.  Pure: reads the config files, never runs anything.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import tomllib
from dataclasses import dataclass, field

from devlink.errors import DevlinkError
from devlink.hotpatch.safety import CRASH_POLICIES, POLICIES

CONFIG_NAME = "devlink.toml"
COMPILE_COMMANDS = "compile_commands.json"
POLICIES_ON_UNSAFE = POLICIES          # restart, keep-old, refuse
POLICIES_ON_CRASH = CRASH_POLICIES     # restart, rollback

#: user flags devlink must drop, and why (the note the user sees)
_DROPPED = {
    "-flto": "devlink links the compiler's objects itself (no LTO)",
    "-fno-function-sections": "devlink places and patches one function at a time",
    "-fno-data-sections": "devlink places and patches one variable at a time",
    "-static": "devlink builds dynamically linked programs",
    "-static-pie": "devlink builds non-PIE executables",
    "-pie": "devlink builds non-PIE executables at a fixed address",
    "-fPIE": "devlink compiles with -fPIC", "-fpie": "devlink compiles with -fPIC",
    "-fno-PIC": "devlink compiles with -fPIC", "-fno-pic": "devlink compiles with -fPIC",
    "-fno-PIE": "devlink compiles with -fPIC", "-fno-pie": "devlink compiles with -fPIC",
    "-g0": "devlink needs debug info (-g) for the editor and for safe patching",
    "-gsplit-dwarf": "devlink reads debug info from the objects",
    "-shared": "devlink builds executables",
    "-no-pie": None,                 # what devlink does anyway: dropped silently
}
#: driver options that only make sense for one compile (devlink adds its own)
_DROPPED_WITH_ARG = {"-o", "-MF", "-MT", "-MQ"}
_DROPPED_ALONE = {"-c", "-MD", "-MMD", "-M", "-MM", "-MP", "-S", "-E"}
_WITH_ARG = {"-I", "-D", "-U", "-include", "-isystem", "-iquote", "-idirafter", "-imacros", "-x", "-std"}


@dataclass
class ProjectConfig:
    root: str                                   #: the project folder (absolute)
    sources: list[str]                          #: absolute paths, in link order
    cflags: list[str] = field(default_factory=list)       #: for every source (after sanitizing)
    source_flags: dict[str, list[str]] = field(default_factory=dict)  #: per source (compile_commands)
    ldflags: list[str] = field(default_factory=list)      #: -L, -l, -E, objects, archives
    output: str = ""                            #: absolute path of the program
    args: list[str] = field(default_factory=list)         #: the program's arguments
    env: dict[str, str] = field(default_factory=dict)     #: added to the program's environment
    cc: str | None = None                       #: compiler (default $CC or cc)
    launcher: list[str] = field(default_factory=list)     #: e.g. ["ccache"]
    on_unsafe: str = "restart"
    on_crash: str = "restart"
    #: globs new sources are found by (None: the source list is fixed)
    source_globs: list[str] | None = None
    #: where the configuration came from, for messages
    origin: str = "defaults"
    #: one line per user flag devlink dropped or overrode
    notes: list[str] = field(default_factory=list)

    def build_argv(self) -> list[str]:
        """The `devlink build`-style command line of this project."""
        return ["-o", self.output, *self.cflags, *self.sources, *self.ldflags]


def sanitize_flags(flags: list[str], notes: list[str], where: str) -> list[str]:
    """`flags` without what devlink must set itself; a note for each one dropped."""
    kept: list[str] = []
    i = 0
    while i < len(flags):
        f = flags[i]
        base = f.split("=", 1)[0] if f.startswith("-flto") else f
        if base in _DROPPED:
            why = _DROPPED[base]
            if why and not any(n.startswith(f"{f} ") for n in notes):
                notes.append(f"{f} (in {where}) is ignored: {why}")
        elif f in _DROPPED_WITH_ARG:
            i += 1
        elif f in _DROPPED_ALONE:
            pass
        elif f in _WITH_ARG and i + 1 < len(flags):
            kept += [f, flags[i + 1]]
            i += 1
        else:
            kept.append(f)
        i += 1
    return kept


def find_sources(root: str, patterns: list[str]) -> list[str]:
    """Sources matching `patterns` (globs relative to `root`), sorted, without devlink's
    own state folder or hidden folders."""
    out: set[str] = set()
    for pat in patterns:
        for p in glob.glob(os.path.join(root, pat), recursive=True):
            rel = os.path.relpath(p, root)
            if any(part.startswith(".") for part in rel.split(os.sep)[:-1]):
                continue
            if os.path.isfile(p):
                out.add(os.path.abspath(p))
    return sorted(out)


def load_config(root: str) -> ProjectConfig:
    """The project at `root`, from whatever configuration it has."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise DevlinkError(f"{root}: no such folder; run devlink watch in your project folder or pass its path")
    toml_path = os.path.join(root, CONFIG_NAME)
    cc_path = os.path.join(root, COMPILE_COMMANDS)
    table = _read_toml(toml_path) if os.path.exists(toml_path) else None
    cfg = ProjectConfig(root=root, sources=[], output=os.path.join(root, os.path.basename(root) or "program"))
    if os.path.exists(cc_path) and (table is None or "sources" not in table):
        _apply_compile_commands(cfg, cc_path)
    elif table is None:
        cfg.source_globs = ["**/*.c"]
        cfg.sources = find_sources(root, cfg.source_globs)
    if table is not None:
        _apply_toml(cfg, table, toml_path)
    if not cfg.sources:
        where = cfg.origin if cfg.origin != "defaults" else root
        raise DevlinkError(f"{where}: no C sources found; add .c files, or list them under `sources` in {CONFIG_NAME}")
    for src in cfg.sources:
        if not os.path.exists(src):
            raise DevlinkError(f"{cfg.origin}: source {os.path.relpath(src, root)} does not exist; fix the path")
    return cfg


def _read_toml(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        # tomllib says "... (at line 3, column 7)" or "... (at end of document)"
        import re
        text = str(e)
        m = re.search(r" \(at line (\d+), column (\d+)\)$", text)
        if m:
            where, text = f"{m.group(1)}:{m.group(2)}", text[:m.start()]
        else:
            with open(path, "rb") as f:
                where = str(max(1, f.read().count(b"\n")))
            text = text.replace(" (at end of document)", " at the end of the file")
        raise DevlinkError(f"{path}:{where}: {text}; fix the TOML syntax") from None
    except OSError as e:
        raise DevlinkError(f"{path}: cannot read it: {e.strerror}") from None


def _line_of(path: str, key: str) -> int:
    """The line where `key` is set in a TOML file (for messages about a value)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                if line.strip().startswith((key + " ", key + "=")):
                    return n
    except OSError:
        pass
    return 1


_TOML_KEYS = {"sources": list, "include_dirs": list, "defines": list, "cflags": (list, str), "ldflags": (list, str),
              "libraries": list, "library_dirs": list, "output": str, "args": (list, str), "env": dict,
              "cc": str, "compiler_launcher": (str, list), "on_unsafe": str, "on_crash": str,
              "allow_output_outside": bool}


def _apply_toml(cfg: ProjectConfig, t: dict, path: str) -> None:
    root = cfg.root
    cfg.origin = path

    def bad(key: str, what: str) -> DevlinkError:
        return DevlinkError(f"{path}:{_line_of(path, key)}: {key} {what}")

    for key, value in t.items():
        want = _TOML_KEYS.get(key)
        if want is None:
            raise bad(key, f"is not a devlink setting; the settings are: {', '.join(sorted(_TOML_KEYS))}")
        if not isinstance(value, want):
            names = " or ".join(w.__name__ for w in (want if isinstance(want, tuple) else (want,)))
            kind = {"list": "a list", "str": "a string", "dict": "a table", "bool": "true or false"}
            raise bad(key, f"must be {' or '.join(kind.get(n, n) for n in names.split(' or '))}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise bad(key, "must be a list of strings")

    def words(key: str) -> list[str]:
        v = t.get(key, [])
        return shlex.split(v) if isinstance(v, str) else list(v)

    if "sources" in t:
        cfg.source_globs = list(t["sources"])
        cfg.sources = find_sources(root, cfg.source_globs)
        if not cfg.sources:
            raise bad("sources", f"matches no file ({', '.join(t['sources'])}); fix the paths or globs")
    flags = [f"-I{os.path.join(root, d)}" for d in t.get("include_dirs", [])]
    flags += [f"-D{d}" for d in t.get("defines", [])]
    flags += words("cflags")
    cfg.cflags = cfg.cflags + sanitize_flags(flags, cfg.notes, path)
    ld = [f"-L{os.path.join(root, d)}" for d in t.get("library_dirs", [])]
    for w in words("ldflags"):
        if w in ("-static", "-pie", "-shared", "-static-pie") or w.startswith("-flto"):
            cfg.notes.append(f"{w} (in {path} ldflags) is ignored: {_DROPPED.get(w.split('=')[0], 'devlink cannot honour it')}")
        elif w == "-no-pie":
            continue
        else:
            ld.append(w)
    ld += [lib if lib.startswith("-l") else f"-l{lib}" for lib in t.get("libraries", [])]
    cfg.ldflags = cfg.ldflags + ld
    if "output" in t:
        cfg.output = os.path.normpath(os.path.join(root, t["output"]))
        if not inside(cfg.output, root):
            if not t.get("allow_output_outside"):
                raise bad("output", f"is {t['output']!r}, which writes {cfg.output}, outside the project {root}; "
                                    f"choose a path inside the project, or set allow_output_outside = true")
            cfg.notes.append(f"the program is written to {cfg.output}, outside the project "
                             f"(allow_output_outside = true in {path})")
    cfg.args = words("args") if "args" in t else cfg.args
    for k, v in t.get("env", {}).items():
        if not isinstance(v, (str, int, float, bool)):
            raise bad("env", f"value of {k!r} must be a string")
        cfg.env[str(k)] = str(v)
    if "cc" in t:
        cfg.cc = t["cc"]
    if "compiler_launcher" in t:
        v = t["compiler_launcher"]
        cfg.launcher = shlex.split(v) if isinstance(v, str) else list(v)
    for key, allowed in (("on_unsafe", POLICIES_ON_UNSAFE), ("on_crash", POLICIES_ON_CRASH)):
        if key in t:
            if t[key] not in allowed:
                raise bad(key, f"is {t[key]!r}; use one of: {', '.join(allowed)}")
            setattr(cfg, key, t[key])


def inside(path: str, root: str) -> bool:
    """`path` is in the folder `root` (after symlinks: a link out of the project counts
    as outside)."""
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    top = os.path.realpath(root)
    return os.path.commonpath([real, top]) == top and real != top


def _apply_compile_commands(cfg: ProjectConfig, path: str) -> None:
    """Sources and their flags from a compilation database (C files only)."""
    cfg.origin = path
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except json.JSONDecodeError as e:
        raise DevlinkError(f"{path}:{e.lineno}: {e.msg}; fix the JSON or regenerate it (cmake -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)") from None
    except OSError as e:
        raise DevlinkError(f"{path}: cannot read it: {e.strerror}") from None
    if not isinstance(entries, list):
        raise DevlinkError(f"{path}:1: a compilation database is a JSON list of entries; regenerate it")
    seen: set[str] = set()
    for n, e in enumerate(entries):
        if not isinstance(e, dict) or "file" not in e or not ("arguments" in e or "command" in e):
            raise DevlinkError(f"{path}: entry {n} has no `file` and `arguments`/`command`; regenerate the file")
        directory = e.get("directory", cfg.root)
        src = os.path.normpath(os.path.join(directory, e["file"]))
        if not src.endswith(".c") or src in seen:
            continue
        seen.add(src)
        argv = list(e["arguments"]) if "arguments" in e else shlex.split(e["command"])
        flags = []
        for i, a in enumerate(argv[1:], 1):
            if os.path.normpath(os.path.join(directory, a)) == src:
                continue
            flags.append(a)
        # relative include paths are relative to the entry's directory
        fixed = []
        for i, f in enumerate(flags):
            if f.startswith("-I") and len(f) > 2 and not os.path.isabs(f[2:]):
                f = "-I" + os.path.join(directory, f[2:])
            elif i > 0 and flags[i - 1] == "-I" and not os.path.isabs(f):
                f = os.path.join(directory, f)
            fixed.append(f)
        cfg.sources.append(src)
        cfg.source_flags[src] = sanitize_flags(fixed, cfg.notes, os.path.basename(path))
    if not cfg.sources:
        raise DevlinkError(f"{path}: lists no C source (.c); devlink watch needs C sources")

"""Shared helpers for devlink's tests: finding the C compiler, reading the corpus and
its per-file directives, building with `cc` and with `devlink build`, running a
program with a timeout, and comparing two runs.

Corpus layout (tests/corpus/):
  NAME.c                one single-file program
  NAME/*.c              one multi-file program (all .c files, sorted, are its sources)
  NAME/archive/*.c      members of a static archive: compiled with `cc -c` and packed
                        with `ar rcs` by the harness, then passed (as libNAME.a) after
                        the sources to both the reference build and the devlink build

Directives are comment lines at the top of a .c file (before the first code line):
  // cflags: -fcommon          extra compiler flags (shell-split)
  // ldflags: -lm              extra link flags, placed after the sources
  // args: x y                 arguments to run with (default: a b c)
  // check-nm: RE...           (corpus sanity) each regex matches a symbol name in
  // check-nm-O0: RE...          `nm` of the program's objects, at every opt level /
  // check-nm-O2: RE...          only at that level
  // check-rodata-relocs       (corpus sanity) the objects have relocations against
                               a .rodata section (a jump table)
For a multi-file program the directives of all its files are merged.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"
CORPUS_DIR = TESTS_DIR / "corpus"

DEFAULT_ARGS = ["a", "b", "c"]
TEST_ENV = {"DEVLINK_TEST_VAR": "hello"}
RUN_TIMEOUT = 20.0
BUILD_TIMEOUT = 300.0
OPT_LEVELS = ["-O0", "-O2"]


# --------------------------------------------------------------------------- tools


def find_cc() -> str | None:
    """The C compiler to use: $CC if set and found, else `cc`, else `gcc`."""
    candidates = []
    if os.environ.get("CC"):
        candidates.append(os.environ["CC"])
    candidates += ["cc", "gcc"]
    for c in candidates:
        argv = shlex.split(c)
        if argv and shutil.which(argv[0]):
            return shutil.which(argv[0])
    return None


def find_tool(name: str) -> str | None:
    return shutil.which(name)


# ---------------------------------------------------------------------- directives


@dataclass
class Directives:
    cflags: list[str] = field(default_factory=list)
    ldflags: list[str] = field(default_factory=list)
    args: list[str] | None = None
    check_nm: dict[str, list[str]] = field(default_factory=dict)  # opt ("" = all) -> regexes
    check_rodata_relocs: bool = False

    def merge(self, other: "Directives") -> None:
        for f in other.cflags:
            if f not in self.cflags:
                self.cflags.append(f)
        for f in other.ldflags:
            if f not in self.ldflags:
                self.ldflags.append(f)
        if other.args is not None:
            self.args = list(other.args)
        for opt, res in other.check_nm.items():
            self.check_nm.setdefault(opt, []).extend(res)
        self.check_rodata_relocs |= other.check_rodata_relocs

    def nm_checks_for(self, opt: str) -> list[str]:
        return self.check_nm.get("", []) + self.check_nm.get(opt, [])


_DIRECTIVE_RE = re.compile(r"^//\s*(cflags|ldflags|args|check-nm(?:-O\d)?|check-rodata-relocs)\s*(?::\s*(.*))?$")


def parse_directives(path: Path | str) -> Directives:
    """Read the directive comments at the top of one C file."""
    d = Directives()
    for raw in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("//"):
            break
        m = _DIRECTIVE_RE.match(line)
        if not m:
            continue
        key, value = m.group(1), (m.group(2) or "").strip()
        if key == "cflags":
            d.cflags += shlex.split(value)
        elif key == "ldflags":
            d.ldflags += shlex.split(value)
        elif key == "args":
            d.args = shlex.split(value)
        elif key.startswith("check-nm"):
            opt = key[len("check-nm-"):] if key != "check-nm" else ""
            opt = f"-{opt}" if opt else ""
            d.check_nm.setdefault(opt, []).extend(value.split())
        elif key == "check-rodata-relocs":
            d.check_rodata_relocs = True
    return d


# -------------------------------------------------------------------------- corpus


@dataclass
class CorpusProgram:
    name: str
    sources: list[Path]
    archive_sources: list[Path]
    directives: Directives

    @property
    def args(self) -> list[str]:
        return self.directives.args if self.directives.args is not None else list(DEFAULT_ARGS)

    @property
    def all_sources(self) -> list[Path]:
        return self.sources + self.archive_sources


def load_program(path: Path) -> CorpusProgram:
    if path.is_dir():
        sources = sorted(p for p in path.glob("*.c"))
        archive_sources = sorted((path / "archive").glob("*.c"))
    else:
        sources, archive_sources = [path], []
    d = Directives()
    for s in sources + archive_sources:
        d.merge(parse_directives(s))
    return CorpusProgram(path.stem if path.is_file() else path.name, sources, archive_sources, d)


def corpus_programs(corpus_dir: Path = CORPUS_DIR) -> list[CorpusProgram]:
    progs = []
    for p in sorted(corpus_dir.iterdir()):
        if p.name.startswith((".", "_")):
            continue
        if (p.is_file() and p.suffix == ".c") or (p.is_dir() and any(p.glob("*.c"))):
            progs.append(load_program(p))
    return progs


# -------------------------------------------------------------------------- running


@dataclass
class RunResult:
    argv: list[str]
    returncode: int | None  # None: timed out; negative: killed by that signal
    stdout: bytes
    stderr: bytes
    timed_out: bool = False

    def describe_status(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.returncode is not None and self.returncode < 0:
            return f"killed by signal {-self.returncode}"
        return f"exit status {self.returncode}"


def program_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A small, fixed environment for running corpus programs (deterministic output)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C",
        "LANG": "C",
        **TEST_ENV,
    }
    if extra:
        env.update(extra)
    return env


def run_program(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | str | None = None,
                timeout: float = RUN_TIMEOUT, stdin: bytes | None = None) -> RunResult:
    """Run a program to completion with a timeout; never raises on failure or timeout."""
    argv = [str(a) for a in argv]
    try:
        p = subprocess.run(argv, input=stdin if stdin is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env if env is not None else program_env(), cwd=cwd, timeout=timeout)
        return RunResult(argv, p.returncode, p.stdout, p.stderr)
    except subprocess.TimeoutExpired as e:
        return RunResult(argv, None, e.stdout or b"", e.stderr or b"", timed_out=True)


def _text(b: bytes) -> str:
    return b.decode("utf-8", errors="backslashreplace")


def _diff(name: str, expected: bytes, actual: bytes, limit: int = 80) -> str:
    lines = list(difflib.unified_diff(_text(expected).splitlines(keepends=True),
                                      _text(actual).splitlines(keepends=True),
                                      fromfile=f"{name} (cc)", tofile=f"{name} (devlink)"))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more diff lines)\n"]
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def compare_runs(expected: RunResult, actual: RunResult) -> str | None:
    """None if both runs behaved the same, else a readable report of the differences."""
    problems = []
    if expected.timed_out or actual.timed_out or expected.returncode != actual.returncode:
        problems.append(f"status: cc build {expected.describe_status()}, devlink build {actual.describe_status()}")
    if expected.stdout != actual.stdout:
        problems.append("stdout differs:\n" + _diff("stdout", expected.stdout, actual.stdout))
    if expected.stderr != actual.stderr:
        problems.append("stderr differs:\n" + _diff("stderr", expected.stderr, actual.stderr))
    if not problems:
        return None
    return "\n".join(problems)


# ------------------------------------------------------------------------ building


class BuildError(Exception):
    pass


def _run_build(cmd: list[str], *, cwd: Path | str, env: dict[str, str] | None = None,
               timeout: float = BUILD_TIMEOUT) -> subprocess.CompletedProcess:
    cmd = [str(c) for c in cmd]
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, errors="backslashreplace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"build timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None
    if p.returncode != 0:
        raise BuildError(f"build failed (exit {p.returncode}): {shlex.join(cmd)}\n"
                         f"--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}")
    return p


def cc_compile_objects(cc: str, sources: list[Path], outdir: Path, flags: list[str]) -> list[Path]:
    """`cc -c` each source into outdir; returns the object paths (in source order)."""
    outdir.mkdir(parents=True, exist_ok=True)
    objs = []
    for s in sources:
        o = outdir / (s.stem + ".o")
        _run_build([cc, *flags, "-c", str(s), "-o", str(o)], cwd=outdir)
        objs.append(o)
    return objs


def build_archive(cc: str, sources: list[Path], outdir: Path, flags: list[str], name: str = "lib.a") -> Path:
    """Compile sources with `cc -c` and pack them with `ar rcs` into outdir/name."""
    ar = find_tool("ar")
    if ar is None:
        raise BuildError("`ar` not found (install binutils)")
    objs = cc_compile_objects(cc, sources, outdir / (name + ".objs"), flags)
    archive = outdir / name
    if archive.exists():
        archive.unlink()
    _run_build([ar, "rcs", str(archive), *map(str, objs)], cwd=outdir)
    return archive


def cc_build(cc: str, output: Path, inputs: list[Path | str], *, opt: str, cflags: list[str] = (),
             ldflags: list[str] = (), cwd: Path) -> Path:
    """Reference build: `cc <opt> <cflags> <inputs> -o output <ldflags> -pthread`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    _run_build([cc, opt, *cflags, *map(str, inputs), "-o", str(output), *ldflags, "-pthread"], cwd=cwd)
    return output


def devlink_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running `python -m devlink`: the repo's package comes first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    if extra:
        env.update(extra)
    return env


def devlink_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "devlink", *map(str, args)]


def run_devlink(*args: str | Path, cwd: Path | str, timeout: float = BUILD_TIMEOUT,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m devlink ARGS...` and return the completed process (no check)."""
    return subprocess.run(devlink_command(*args), cwd=cwd, env=env or devlink_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="backslashreplace", timeout=timeout)


def devlink_build(output: Path, inputs: list[Path | str], *, opt: str, cflags: list[str] = (),
                  ldflags: list[str] = (), cwd: Path) -> Path:
    """`python -m devlink build -o output <opt> <cflags> <inputs> <ldflags> -pthread`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    _run_build(devlink_command("build", "-o", output, opt, *cflags, *inputs, *ldflags, "-pthread"),
               cwd=cwd, env=devlink_env())
    return output


def corpus_inputs(prog: CorpusProgram, cc: str, workdir: Path, opt: str) -> list[Path]:
    """The link inputs for a corpus program: its sources, then its archive (built here)."""
    inputs: list[Path] = list(prog.sources)
    if prog.archive_sources:
        inputs.append(build_archive(cc, prog.archive_sources, workdir, [opt, *prog.directives.cflags],
                                    name=f"lib{prog.name}.a"))
    return inputs


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, making its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cc_c(src: Path, flags: list[str], out: Path | None = None) -> Path:
    """`cc -c FLAGS src -o out` (out defaults to src with .o)."""
    out = out or src.with_suffix(".o")
    p = subprocess.run([find_cc() or "cc", "-c", *flags, str(src), "-o", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, f"cc -c {' '.join(flags)} {src.name} failed:\n{p.stderr}"
    return out

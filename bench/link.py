#!/usr/bin/env python3
"""Full-link benchmark: devlink vs GNU ld (bfd), gold, mold (and lld if present).

Builds objects once (cached under ~/.cache/devlink/bench) with
``cc -c -g -O2 -fPIC -ffunction-sections -fdata-sections`` for

* ``lua``: Lua 5.4 from Debian's source package (tests/lua.py), linked with
  ``-lm -ldl`` and ``-E``;
* ``gen``: the synthetic program of baselines.md section D (bench/gen_program.py),
  10,000 functions in 100 files by default.

Then links the same objects, round-robin in one run, with

* devlink in-process: only the ``link_executable`` call is timed, after one warm-up
  call (interpreter start-up and the import are measured separately, as the wall
  time of ``python -c 'import devlink.link.linker'``);
* ``cc -no-pie -fuse-ld=X`` for each linker X that is installed (driver included,
  which is what a user pays).

Each output is run and its output compared. Medians of ``--repeat`` runs, ratios vs
gold, JSON to bench/results/link.json. A devlink failure is recorded, not fatal.

    python bench/link.py [--repeat 5] [--programs lua,gen] [--functions 10000]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))

import gen_program  # noqa: E402  (bench/gen_program.py)
import lua as lua_helper  # noqa: E402  (tests/lua.py)

BENCH_CFLAGS = ["-g", "-O2", "-fPIC", "-ffunction-sections", "-fdata-sections"]
CC_LINKERS = ["gold", "bfd", "mold", "lld"]
LUA_CHECK_SCRIPT = ("print(('x'):rep(3), 6 * 7, string.format('%.3f', math.pi)) "
                    "local t = {3, 1, 2} table.sort(t) print(table.concat(t, ','))")
LUA_CHECK_EXPECTED = "xxx\t42\t3.142\n1,2,3\n"


def cache_dir() -> Path:
    return lua_helper.cache_root() / "bench"


# ---------------------------------------------------------------------------
# devlink: the one place that knows the in-process API. Adapt here if it changes.

def devlink_link(objs: list[Path], out: Path, libs: list[str], export_dynamic: bool) -> None:
    from devlink.link.linker import link_executable
    link_executable([str(o) for o in objs], str(out), libs=list(libs), lib_dirs=[],
                    export_dynamic=export_dynamic)


def devlink_cli_cmd(objs: list[Path], out: Path, libs: list[str], export_dynamic: bool) -> list[str]:
    return ([sys.executable, "-m", "devlink", "build", "-o", str(out), *map(str, objs)]
            + [f"-l{lib}" for lib in libs] + (["-E"] if export_dynamic else []))


# ---------------------------------------------------------------------------

def first_line(cmd: list[str]) -> str | None:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (p.stdout or p.stderr).strip()
    return text.splitlines()[0] if text else None


def linker_binary(name: str) -> str | None:
    return shutil.which(f"ld.{name}") or (shutil.which(name) if name == "mold" else None)


def machine_info() -> dict:
    info = {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_total"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        info["os"] = next(line.split("=", 1)[1].strip('"') for line in
                          Path("/etc/os-release").read_text().splitlines()
                          if line.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        pass
    tools = {"cc": first_line(["cc", "--version"])}
    for name in CC_LINKERS:
        b = linker_binary(name)
        tools[name] = first_line([b, "--version"]) if b else None
    info["tools"] = tools
    commit = first_line(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    info["devlink_commit"] = commit if commit and len(commit) == 40 else None
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "devlink"],
                           capture_output=True, text=True)
    info["devlink_dirty"] = bool(dirty.stdout.strip()) if dirty.returncode == 0 else None
    return info


# ---------------------------------------------------------------------------
# programs

class Program:
    name: str
    objs: list[Path]
    libs: list[str]
    export_dynamic: bool
    run_args: list[str]
    expected: str

    def check(self, exe: Path) -> tuple[bool, str]:
        try:
            p = subprocess.run([str(exe), *self.run_args], capture_output=True, text=True,
                               timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"could not run: {e}"
        if p.returncode != 0:
            return False, f"exit {p.returncode}: {p.stderr.strip()[-500:]}"
        if p.stdout != self.expected:
            return False, f"output {p.stdout!r} != expected {self.expected!r}"
        return True, ""

    def stats(self) -> dict:
        return {"objects": len(self.objs), "object_bytes": sum(o.stat().st_size for o in self.objs),
                "object_dir": str(self.objs[0].parent), "libs": self.libs,
                "export_dynamic": self.export_dynamic}


def lua_program(jobs: int) -> Program:
    p = Program()
    p.name = "lua"
    opt = [f for f in BENCH_CFLAGS if f not in lua_helper.DEVLINK_CC_FLAGS]
    p.objs = lua_helper.lua_objects(opt=opt, jobs=jobs, cache_dir=cache_dir() / "lua-obj")
    p.libs = list(lua_helper.LUA_LIBS)
    p.export_dynamic = lua_helper.LUA_EXPORT_DYNAMIC
    p.run_args = ["-e", LUA_CHECK_SCRIPT]
    p.expected = LUA_CHECK_EXPECTED
    return p


def gen_program_objs(functions: int, per_file: int, seed: int, jobs: int) -> Program:
    gen_hash = hashlib.sha256(Path(gen_program.__file__).read_bytes()).hexdigest()[:12]
    src = cache_dir() / f"gen-n{functions}-p{per_file}-s{seed}-{gen_hash}" / "src"
    if not (src / "expected_output.txt").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=".gen-", dir=cache_dir()))
        gen_program.generate(tmp, functions, per_file, seed, depth=4)
        if src.exists():
            shutil.rmtree(src)
        src.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(src)
    sources = sorted(src.glob("m[0-9]*.c")) + [src / "main.c"]
    p = Program()
    p.name = "gen"
    p.objs = lua_helper.compile_cached(sources, BENCH_CFLAGS, src.parent / "obj", jobs=jobs,
                                       label="gen")
    p.libs = []
    p.export_dynamic = False
    p.run_args = []
    p.expected = (src / "expected_output.txt").read_text()
    return p


# ---------------------------------------------------------------------------
# tools

class Tool:
    """One way of linking; ``link`` raises on failure."""
    name: str

    def link(self, prog: Program, out: Path) -> None:
        raise NotImplementedError

    def describe(self, prog: Program, out: Path) -> str:
        return ""


class CcTool(Tool):
    def __init__(self, linker: str):
        self.name = linker
        self.linker = linker

    def cmd(self, prog: Program, out: Path) -> list[str]:
        return (["cc", "-no-pie", f"-fuse-ld={self.linker}", "-o", str(out), *map(str, prog.objs)]
                + [f"-l{lib}" for lib in prog.libs] + (["-Wl,-E"] if prog.export_dynamic else []))

    def link(self, prog: Program, out: Path) -> None:
        p = subprocess.run(self.cmd(prog, out), capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"cc -fuse-ld={self.linker} failed (exit {p.returncode}): "
                               f"{p.stderr.strip()[-2000:]}")

    def describe(self, prog: Program, out: Path) -> str:
        cmd = self.cmd(prog, out)
        return " ".join(cmd[:5] + [f"<{len(prog.objs)} objects>"] + cmd[5 + len(prog.objs):])


class DevlinkInProcess(Tool):
    name = "devlink"

    def link(self, prog: Program, out: Path) -> None:
        devlink_link(prog.objs, out, prog.libs, prog.export_dynamic)

    def describe(self, prog: Program, out: Path) -> str:
        return "devlink.link.linker.link_executable(...) in-process"


class DevlinkCli(Tool):
    name = "devlink-cli"

    def link(self, prog: Program, out: Path) -> None:
        # a full link each time: without its saved state, devlink cannot be incremental
        shutil.rmtree(out.parent / ".devlink" / out.name, ignore_errors=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        p = subprocess.run(devlink_cli_cmd(prog.objs, out, prog.libs, prog.export_dynamic),
                           capture_output=True, text=True, env=env, cwd=out.parent)
        if p.returncode != 0:
            raise RuntimeError(f"python -m devlink build failed (exit {p.returncode}): "
                               f"{(p.stderr or p.stdout).strip()[-2000:]}")

    def describe(self, prog: Program, out: Path) -> str:
        return "python -m devlink build -o OUT <objects> ... (whole process)"


def error_record(e: BaseException) -> dict:
    return {"type": type(e).__name__, "message": str(e)[:4000],
            "traceback": traceback.format_exc()[-4000:]}


def bench_program(prog: Program, tools: list[Tool], repeat: int, workdir: Path) -> dict:
    results: dict[str, dict] = {}
    outs = {t.name: workdir / f"{prog.name}-{t.name}" for t in tools}
    live: list[Tool] = []
    for t in tools:  # warm-up + correctness check
        r = results[t.name] = {"how": t.describe(prog, outs[t.name]), "times_ms": [],
                               "ok": False, "output_ok": None, "error": None}
        try:
            t.link(prog, outs[t.name])
        except Exception as e:  # noqa: BLE001 - a linker failure is a result, not a crash
            r["error"] = error_record(e)
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            print(f"  {prog.name}/{t.name}: link FAILED: {type(e).__name__}: "
                  f"{lines[0] if lines else ''}{(' ... ' + lines[-1].strip()) if len(lines) > 1 else ''}",
                  file=sys.stderr)
            continue
        ok, why = prog.check(outs[t.name])
        r["output_ok"] = ok
        if not ok:
            r["output_error"] = why
            print(f"  {prog.name}/{t.name}: output WRONG: {why}", file=sys.stderr)
        live.append(t)
    for _ in range(repeat):  # round-robin, so drift hits every tool alike
        for t in list(live):
            r = results[t.name]
            out = outs[t.name]
            gc.collect()
            t0 = time.perf_counter()
            try:
                t.link(prog, out)
            except Exception as e:  # noqa: BLE001
                r["error"] = error_record(e)
                live.remove(t)
                continue
            r["times_ms"].append((time.perf_counter() - t0) * 1e3)
    for name, r in results.items():
        ts = r["times_ms"]
        r["ok"] = bool(ts) and r["error"] is None
        r["median_ms"] = statistics.median(ts) if ts else None
        r["min_ms"] = min(ts) if ts else None
        if outs[name].is_file():
            r["output_bytes"] = outs[name].stat().st_size
    gold = results.get("gold", {}).get("median_ms")
    for r in results.values():
        r["vs_gold"] = (r["median_ms"] / gold) if (gold and r["median_ms"]) else None
    return {"stats": prog.stats(), "tools": results}


def wall_ms(cmd: list[str], repeat: int, env=None) -> dict:
    ts = []
    err = None
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        dt = (time.perf_counter() - t0) * 1e3
        if p.returncode != 0:
            err = p.stderr.strip()[-2000:]
            break
        ts.append(dt)
    ts = ts[1:]  # the first run warms the page cache
    return {"cmd": " ".join(cmd), "times_ms": ts, "median_ms": statistics.median(ts) if ts else None,
            "min_ms": min(ts) if ts else None, "error": err}


def startup(repeat: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return {
        "python_bare": wall_ms([sys.executable, "-c", "pass"], repeat, env),
        "import_devlink_linker": wall_ms([sys.executable, "-c", "import devlink.link.linker"],
                                         repeat, env),
    }


def fmt(v, spec=".1f", none="-"):
    return none if v is None else format(v, spec)


def print_table(report: dict) -> None:
    print()
    print(f"{'program':8} {'tool':12} {'median ms':>10} {'min ms':>9} {'vs gold':>8}  result")
    for pname, pres in report["programs"].items():
        for tname, r in pres["tools"].items():
            if r.get("error") and not r["times_ms"]:
                status = "LINK FAILED: " + r["error"]["type"]
            elif r["output_ok"] is False:
                status = "output WRONG"
            elif r.get("error"):
                status = "failed in a timed run"
            else:
                status = "ok"
            ratio = fmt(r["vs_gold"], ".2f") + ("x" if r["vs_gold"] else "")
            print(f"{pname:8} {tname:12} {fmt(r['median_ms']):>10} {fmt(r['min_ms']):>9} "
                  f"{ratio:>8}  {status}")
    st = report.get("startup", {})
    for k, v in st.items():
        extra = f"  ({v['error'].splitlines()[-1]})" if v.get("error") else ""
        print(f"{'startup':8} {k:22} median {fmt(v['median_ms'])} ms{extra}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="full-link benchmark: devlink vs bfd/gold/mold")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per tool (default 5)")
    ap.add_argument("--programs", default="lua,gen", help="comma list of lua,gen")
    ap.add_argument("--functions", type=int, default=10000, help="gen: functions (default 10000)")
    ap.add_argument("--per-file", type=int, default=100, help="gen: functions per file")
    ap.add_argument("--seed", type=int, default=1, help="gen: random seed")
    ap.add_argument("--linkers", default=",".join(CC_LINKERS),
                    help="cc -fuse-ld= linkers to try, each if installed (default gold,bfd,mold,lld)")
    ap.add_argument("--no-devlink", action="store_true", help="skip devlink")
    ap.add_argument("--no-cli", action="store_true",
                    help="skip the whole-process `python -m devlink build` row")
    ap.add_argument("--jobs", type=int, default=2, help="parallel compiles (default 2)")
    ap.add_argument("--json", type=Path, default=BENCH / "results" / "link.json")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")

    tools: list[Tool] = []
    skipped = {}
    for name in filter(None, args.linkers.split(",")):
        if linker_binary(name):
            tools.append(CcTool(name))
        else:
            skipped[name] = "not installed"
    if not args.no_devlink:
        tools.insert(0, DevlinkInProcess())
        if not args.no_cli:
            tools.insert(1, DevlinkCli())

    report = {"machine": machine_info(), "cflags": BENCH_CFLAGS, "repeat": args.repeat,
              "skipped_linkers": skipped, "programs": {}, "startup": {}}
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="devlink-bench-") as tmp:
        for pname in filter(None, args.programs.split(",")):
            t0 = time.perf_counter()
            try:
                if pname == "lua":
                    prog = lua_program(args.jobs)
                elif pname == "gen":
                    prog = gen_program_objs(args.functions, args.per_file, args.seed, args.jobs)
                else:
                    ap.error(f"unknown program {pname!r}")
            except Exception as e:  # noqa: BLE001
                print(f"{pname}: could not build objects: {e}", file=sys.stderr)
                report["programs"][pname] = {"error": error_record(e), "tools": {}}
                continue
            print(f"{pname}: {len(prog.objs)} objects ready ({time.perf_counter() - t0:.1f} s); "
                  f"linking with {', '.join(t.name for t in tools)} x{args.repeat}", file=sys.stderr)
            report["programs"][pname] = bench_program(prog, tools, args.repeat, Path(tmp))
    if not args.no_devlink:
        report["startup"] = startup(args.repeat)

    print_table(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp_json = args.json.with_suffix(".json.tmp")
    tmp_json.write_text(json.dumps(report, indent=2) + "\n")
    tmp_json.replace(args.json)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

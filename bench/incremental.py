#!/usr/bin/env python3
"""Incremental-update benchmark: a one-function edit, devlink in place vs a full relink.

For the synthetic program (bench/gen_program.py, 100 functions per file) at several
sizes (default 1,000, 10,000 and 100,000 functions) and for Lua 5.4 (tests/lua.py),
with objects built by ``cc -c -O2 -g -fPIC -ffunction-sections -fdata-sections``
(cached under ~/.cache/devlink/bench, compiled in parallel):

* full link once in-process (``Linker(LinkOptions(...)).link()`` + ``write_file``),
  then ``--edits`` one-function edits, each timed from "object bytes in memory" to
  "output file updated": ``update_objects`` + ``pwrite_all`` + ``os.truncate``. The
  edit alternates between three behaviour-preserving variants of one function
  (``f_00000`` in ``m000.c``; ``luaV_tonumber_`` in ``lvm.c``): an
  ``__asm__ volatile("" :: "r"(K))`` on the line of an existing statement (so no line
  numbers move), with K = 11, 22, or two statements 33 and 44 (the function grows).
  The variants are compiled once up front. The output is run and checked after the
  timed edits and again after the profiled ones;
  After each timed edit, ``Linker.finish_update`` (compacting the new object: work no
  output byte waits for, which a session does after the patch) runs untimed and is
  reported on its own ("after");
* a few more edits under cProfile (top entries in the JSON, printed for ``--profile-size``);
* ``cc -no-pie -fuse-ld=gold`` (and mold, if installed) full relinks of the same
  (unedited) objects, ``--relinks`` timed runs after one warm-up;
* memory of the process holding the link state: RSS before the link and after it
  (image dropped, gc'd), peak RSS (getrusage), and bytes per atom
  (``sum(len(o.atoms) for o in L.outputs.values())``); ``--tracemalloc`` adds the
  Python-heap size of the state (slow: the link runs traced);
* ``python -m devlink build`` with nothing changed, Lua from its sources (whole
  process, interpreter start included), ``--build-runs`` runs, beside ``python -c pass``.

Each program size runs in its own subprocess, so peak RSS belongs to one link state.
Prints a table and PASS/FAIL lines for the targets; JSON to
bench/results/incremental.json, plot to bench/results/incremental.png (needs
matplotlib; skipped with a message otherwise).

    python bench/incremental.py                       # 1000,10000,100000 + lua + build
    python bench/incremental.py --sizes 1000,10000    # skip the 100,000-function program
    python bench/incremental.py --no-lua --no-build --edits 40
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import resource
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

import link as link_bench  # noqa: E402  (bench/link.py: object cache, cc linkers, machine info)
import lua as lua_helper  # noqa: E402  (tests/lua.py)

BENCH_CFLAGS = link_bench.BENCH_CFLAGS
PER_FILE = 100
#: the edit: an asm statement that puts K in a register (changes the code, not the result)
VARIANT_ASMS = [
    '__asm__ volatile("" :: "r"(11));',
    '__asm__ volatile("" :: "r"(22));',
    '__asm__ volatile("" :: "r"(33)); __asm__ volatile("" :: "r"(44));',
]
GEN_EDIT = ("m000.c", "void f_00000(int d)\n{\n    g_total++;")
LUA_EDIT = ("lvm.c", "int luaV_tonumber_ (const TValue *obj, lua_Number *n) {\n  TValue v;")

TARGETS = {
    "median_ms_at_10000": 5.0,
    "growth_1000_to_100000": 2.0,
    "speedup_vs_gold_at_10000": 10.0,
    "bytes_per_atom_at_100000": 2048,
    "nochange_lua_build_ms": 150.0,
}


# ---------------------------------------------------------------------------
# helpers

def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def summarize(ts: list[float]) -> dict:
    if not ts:
        return {"n": 0, "median_ms": None, "p90_ms": None, "min_ms": None, "max_ms": None}
    p90 = statistics.quantiles(ts, n=10, method="inclusive")[-1] if len(ts) > 1 else ts[0]
    return {"n": len(ts), "median_ms": statistics.median(ts), "p90_ms": p90,
            "min_ms": min(ts), "max_ms": max(ts)}


def error_record(e: BaseException) -> dict:
    return {"type": type(e).__name__, "message": str(e)[:4000],
            "traceback": traceback.format_exc()[-4000:]}


def env_with_repo() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def make_variants(src: Path, anchor: str, cflags: list[str], label: str, jobs: int) -> list[Path]:
    """Compile the edit variants of `src` once (cached); returns their object paths."""
    text = src.read_text()
    if text.count(anchor) != 1:
        raise RuntimeError(f"edit anchor not found exactly once in {src}: {anchor!r}")
    srcs = []
    root = link_bench.cache_dir() / "edits" / label
    for k, asm in enumerate(VARIANT_ASMS):
        d = root / f"v{k}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / src.name
        new = text.replace(anchor, anchor + " " + asm, 1)
        if not p.is_file() or p.read_text() != new:
            p.write_text(new)
        srcs.append(p)
    objs = []
    for k, p in enumerate(srcs):  # one cache entry per variant (same file name in each)
        objs += lua_helper.compile_cached([p], cflags, root / "obj", jobs=jobs,
                                          label=f"{label}-v{k}")
    return objs


def run_check(exe: str, args: list[str], expected: str) -> tuple[bool, str]:
    try:
        p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"could not run: {e}"
    if p.returncode != 0:
        return False, f"exit {p.returncode}: {p.stderr.strip()[-500:]}"
    if p.stdout != expected:
        return False, f"output {p.stdout!r} != expected {expected!r}"
    return True, ""


# ---------------------------------------------------------------------------
# worker: one program in its own process

def worker(spec: dict) -> dict:
    """Full link, edits, profile, gold/mold relinks of one program. `spec` from main."""
    from devlink.collector import freeze_state
    from devlink.link.incremental import NeedsFullLink, update_objects
    from devlink.link.linker import Linker, LinkOptions
    from devlink.output.writer import pwrite_all, write_file

    objs = [Path(o) for o in spec["objs"]]
    libs = spec["libs"]
    edit_obj = spec["edit_obj"]
    variants = [Path(v).read_bytes() for v in spec["variants"]]
    run_args, expected = spec["run_args"], spec["expected"]
    workdir = Path(spec["workdir"])
    out = str(workdir / f"{spec['name']}-devlink")
    inputs = [str(o) for o in objs] + [f"-l{lib}" for lib in libs]
    opts = dict(output=out, inputs=inputs, export_dynamic=spec["export_dynamic"])
    r: dict = {"name": spec["name"], "edit_object": edit_obj, "edit_function": spec["edit_function"],
               "variants": VARIANT_ASMS, "errors": []}

    def full_link():
        L = Linker(LinkOptions(**opts))
        image = L.link()
        write_file(out, image)
        del image
        # what `devlink build`, `devlink run` and every session keep: the state trimmed
        # to what an update needs
        if hasattr(L, "compact_state"):
            L.compact_state()
        # as a session does (Session.relink): the state is frozen, so the collector's
        # passes do not walk it (an update's own objects are frozen with it)
        freeze_state()
        return L

    # --- full link + memory
    gc.collect()
    r["rss_before_link"] = rss_bytes()
    if spec.get("tracemalloc"):
        import tracemalloc
        tracemalloc.start()
    t0 = time.perf_counter()
    L = full_link()
    r["full_link_ms"] = (time.perf_counter() - t0) * 1e3
    gc.collect()
    if spec.get("tracemalloc"):
        import tracemalloc
        r["tracemalloc_state_bytes"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    r["rss_after_link"] = rss_bytes()
    r["peak_rss_after_link"] = peak_rss_bytes()
    atoms = sum(len(o.atoms) for o in L.outputs.values())
    r["atoms"] = atoms
    r["objects_linked"] = len(L.objects)
    r["state_rss_bytes"] = r["rss_after_link"] - r["rss_before_link"]
    r["bytes_per_atom_rss"] = r["state_rss_bytes"] / atoms if atoms else None
    r["bytes_per_atom_peak_rss"] = r["peak_rss_after_link"] / atoms if atoms else None
    if "tracemalloc_state_bytes" in r:
        r["bytes_per_atom_tracemalloc"] = r["tracemalloc_state_bytes"] / atoms if atoms else None
    ok, why = run_check(out, run_args, expected)
    r["full_link_output_ok"] = ok
    if not ok:
        r["errors"].append(f"full link output wrong: {why}")
        return r

    # --- timed edits
    edits = []
    needs_full = []
    fallback_ms = []
    for i in range(spec["edits"]):
        data = variants[i % len(variants)]
        gc.collect()
        t0 = time.perf_counter()
        try:
            res = update_objects(L, {edit_obj: data})
        except NeedsFullLink as e:
            t1 = time.perf_counter()
            needs_full.append({"edit": i, "variant": i % len(variants), "reason": str(e),
                               "raised_after_ms": (t1 - t0) * 1e3})
            # fall back as a user would, with a fresh full link; the cached object on
            # disk is the unedited one, so the edited bytes go to a copy in workdir
            tmp_obj = workdir / Path(edit_obj).name
            tmp_obj.write_bytes(data)
            opts["inputs"] = [str(tmp_obj) if x == edit_obj else x for x in opts["inputs"]]
            edit_obj = str(tmp_obj)
            t2 = time.perf_counter()
            L = full_link()
            fallback_ms.append((time.perf_counter() - t2) * 1e3)
            continue
        t1 = time.perf_counter()
        pwrite_all(out, res.writes)
        os.truncate(out, res.file_size)
        t2 = time.perf_counter()
        # what a session does once the program runs the new code (not on the edit's path)
        if hasattr(L, "finish_update"):
            L.finish_update()
        t3 = time.perf_counter()
        edits.append({"edit": i, "variant": i % len(variants),
                      "update_ms": (t1 - t0) * 1e3, "write_ms": (t2 - t1) * 1e3,
                      "total_ms": (t2 - t0) * 1e3, "finish_ms": (t3 - t2) * 1e3, "writes": len(res.writes),
                      "write_bytes": sum(len(w.data) for w in res.writes),
                      "changed": [c.name for c in res.changed], "added": [c.name for c in res.added],
                      "removed": [c.name for c in res.removed]})
    r["edits"] = edits
    r["needs_full_link"] = needs_full
    r["fallback_full_link_ms"] = fallback_ms
    r["update"] = summarize([e["update_ms"] for e in edits])
    r["write"] = summarize([e["write_ms"] for e in edits])
    r["total"] = summarize([e["total_ms"] for e in edits])
    r["finish"] = summarize([e["finish_ms"] for e in edits])
    r["edits_without_change"] = sum(1 for e in edits if not e["changed"])
    r["rss_after_edits"] = rss_bytes()
    r["peak_rss_after_edits"] = peak_rss_bytes()
    ok, why = run_check(out, run_args, expected)
    r["edited_output_ok"] = ok
    if not ok:
        r["errors"].append(f"output wrong after the timed edits: {why}")

    # --- profile
    if spec["profile_edits"] > 0:
        prof = cProfile.Profile()
        base = spec["edits"]
        try:
            for i in range(base, base + spec["profile_edits"]):
                data = variants[i % len(variants)]
                prof.enable()
                res = update_objects(L, {edit_obj: data})
                prof.disable()
                pwrite_all(out, res.writes)
                os.truncate(out, res.file_size)
        except NeedsFullLink as e:
            prof.disable()
            r["errors"].append(f"NeedsFullLink while profiling: {e}")
        r["profile_edits"] = spec["profile_edits"]
        for key in ("cumulative", "tottime"):
            s = io.StringIO()
            pstats.Stats(prof, stream=s).strip_dirs().sort_stats(key).print_stats(30)
            r[f"profile_{key}"] = s.getvalue()
        ok, why = run_check(out, run_args, expected)
        r["profiled_output_ok"] = ok
        if not ok:
            r["errors"].append(f"output wrong after the profiled edits: {why}")

    # --- gold / mold full relinks of the unedited objects
    prog = link_bench.Program()
    prog.name, prog.objs, prog.libs = spec["name"], objs, libs
    prog.export_dynamic, prog.run_args, prog.expected = spec["export_dynamic"], run_args, expected
    r["relink"] = {}
    tools = [link_bench.CcTool(n) for n in spec["linkers"] if link_bench.linker_binary(n)]
    live = []
    for t in tools:
        o = workdir / f"{spec['name']}-{t.name}"
        rec = r["relink"][t.name] = {"how": t.describe(prog, o), "times_ms": []}
        try:
            t.link(prog, o)
            ok, why = prog.check(o)
            rec["output_ok"] = ok
            if not ok:
                rec["output_error"] = why
            live.append(t)
        except Exception as e:  # noqa: BLE001
            rec["error"] = error_record(e)
    for _ in range(spec["relinks"]):
        for t in live:
            o = workdir / f"{spec['name']}-{t.name}"
            t0 = time.perf_counter()
            t.link(prog, o)
            r["relink"][t.name]["times_ms"].append((time.perf_counter() - t0) * 1e3)
    for rec in r["relink"].values():
        rec.update(summarize(rec["times_ms"]))
    return r


# ---------------------------------------------------------------------------
# main process

def run_worker(spec: dict, tmp: Path) -> dict:
    spec_path = tmp / f"spec-{spec['name']}.json"
    out_path = tmp / f"result-{spec['name']}.json"
    spec_path.write_text(json.dumps(spec))
    p = subprocess.run([sys.executable, __file__, "--worker", str(spec_path), str(out_path)],
                       env=env_with_repo(), cwd=REPO, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0 or not out_path.is_file():
        return {"name": spec["name"], "errors": [f"worker failed (exit {p.returncode}): "
                                                 f"{p.stderr.strip()[-3000:]}"]}
    return json.loads(out_path.read_text())


def gen_spec(n: int, args, tmp: Path) -> tuple[dict, dict]:
    t0 = time.perf_counter()
    prog = link_bench.gen_program_objs(n, PER_FILE, args.seed, args.jobs)
    compile_s = time.perf_counter() - t0
    src = prog.objs[0].parent.parent.parent / "src"
    edit_src = src / GEN_EDIT[0]
    variants = make_variants(edit_src, GEN_EDIT[1], BENCH_CFLAGS,
                             f"gen-n{n}-s{args.seed}-{edit_src.stem}", args.jobs)
    edit_obj = next(o for o in prog.objs if o.name == Path(GEN_EDIT[0]).stem + ".o")
    spec = {"name": f"gen{n}", "objs": [str(o) for o in prog.objs], "libs": [],
            "export_dynamic": False, "edit_obj": str(edit_obj), "edit_function": "f_00000",
            "variants": [str(v) for v in variants], "run_args": [], "expected": prog.expected}
    info = {"functions": n, "files": len(prog.objs) - 1, "objects_and_sources_ready_s": compile_s,
            "object_bytes": sum(o.stat().st_size for o in prog.objs),
            "object_dir": str(prog.objs[0].parent)}
    return spec, info


def lua_spec(args) -> tuple[dict, dict]:
    t0 = time.perf_counter()
    prog = link_bench.lua_program(args.jobs)
    compile_s = time.perf_counter() - t0
    src = lua_helper.lua_sources()
    opt = [f for f in BENCH_CFLAGS if f not in lua_helper.DEVLINK_CC_FLAGS]
    cflags = [*opt, *lua_helper.DEVLINK_CC_FLAGS, *lua_helper.LUA_CFLAGS, f"-I{src}"]
    variants = make_variants(src / LUA_EDIT[0], LUA_EDIT[1], cflags, "lua-lvm", args.jobs)
    edit_obj = next(o for o in prog.objs if o.name == "lvm.o")
    spec = {"name": "lua", "objs": [str(o) for o in prog.objs], "libs": prog.libs,
            "export_dynamic": prog.export_dynamic, "edit_obj": str(edit_obj),
            "edit_function": "luaV_tonumber_", "variants": [str(v) for v in variants],
            "run_args": prog.run_args, "expected": prog.expected}
    info = {"objects_ready_s": compile_s, "object_bytes": sum(o.stat().st_size for o in prog.objs),
            "object_dir": str(prog.objs[0].parent)}
    return spec, info


def wall(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env_with_repo())
    dt = (time.perf_counter() - t0) * 1e3
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {p.returncode}): "
                           f"{(p.stderr or p.stdout).strip()[-2000:]}")
    return dt


def nochange_build(args, tmp: Path) -> dict:
    src = lua_helper.lua_sources()
    files = [str(f) for f in lua_helper.lua_c_files(src)]
    d = tmp / "build-lua"
    d.mkdir()
    cmd = ([sys.executable, "-m", "devlink", "build", "-O2", *lua_helper.LUA_CFLAGS,
            "-o", "lua", *files] + [f"-l{lib}" for lib in lua_helper.LUA_LIBS] + ["-E"])
    r: dict = {"cmd": " ".join(cmd), "cwd": "<tmp>/build-lua"}
    try:
        r["first_build_ms"] = wall(cmd, d)
        ok, why = run_check(str(d / "lua"), ["-e", link_bench.LUA_CHECK_SCRIPT],
                            link_bench.LUA_CHECK_EXPECTED)
        r["output_ok"] = ok
        if not ok:
            r["output_error"] = why
        wall(cmd, d)  # warm-up
        build, bare = [], []
        for _ in range(args.build_runs):  # interleaved with the bare interpreter
            build.append(wall(cmd, d))
            bare.append(wall([sys.executable, "-c", "pass"], d))
        r["nochange"] = {"times_ms": build, **summarize(build)}
        r["python_pass"] = {"times_ms": bare, **summarize(bare)}
    except Exception as e:  # noqa: BLE001
        r["error"] = error_record(e)
    return r


def devlink_tree_hash() -> str:
    """Hash of the devlink/*.py files as measured (the working tree may differ from HEAD)."""
    import hashlib
    h = hashlib.sha256()
    for f in sorted((REPO / "devlink").rglob("*.py")):
        h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def fmt(v, spec=".2f", none="-"):
    return none if v is None else format(v, spec)


def evaluate(report: dict) -> list[dict]:
    gens = {int(k): v for k, v in report["gen"].items()}
    med = {n: (g.get("total") or {}).get("median_ms") for n, g in gens.items()}
    out = []

    def add(name, value, target, ok, note=""):
        out.append({"target": name, "value": value, "limit": target,
                    "result": "SKIP" if ok is None else ("PASS" if ok else "FAIL"), "note": note})

    v = med.get(10000)
    add("median update at 10,000 functions <= 5 ms", v, TARGETS["median_ms_at_10000"],
        None if v is None else v <= TARGETS["median_ms_at_10000"])
    if med.get(1000) and med.get(100000):
        g = med[100000] / med[1000]
        add("growth 1,000 -> 100,000 functions <= 2x", g, TARGETS["growth_1000_to_100000"],
            g <= TARGETS["growth_1000_to_100000"])
    else:
        sizes = sorted(n for n in med if med[n])
        g = med[sizes[-1]] / med[sizes[0]] if len(sizes) > 1 else None
        add("growth 1,000 -> 100,000 functions <= 2x", None, TARGETS["growth_1000_to_100000"], None,
            f"100,000 not run; {sizes[0]} -> {sizes[-1]}: {fmt(g)}x" if g else "not enough sizes")
    gold = (gens.get(10000, {}).get("relink", {}).get("gold") or {}).get("median_ms")
    s = gold / med[10000] if (gold and med.get(10000)) else None
    add("at 10,000 functions >= 10x faster than gold's full relink", s,
        TARGETS["speedup_vs_gold_at_10000"], None if s is None else s >= TARGETS["speedup_vs_gold_at_10000"])
    b = gens.get(100000, {}).get("bytes_per_atom_rss")
    note = ""
    if b is None and gens:
        big = max(gens)
        note = f"100,000 not run; at {big}: {fmt(gens[big].get('bytes_per_atom_rss'), '.0f')} B/atom"
    add("memory per atom at 100,000 functions <= 2 KB (RSS held by the state)", b,
        TARGETS["bytes_per_atom_at_100000"], None if b is None else b <= TARGETS["bytes_per_atom_at_100000"],
        note)
    nb = ((report.get("build") or {}).get("nochange") or {}).get("median_ms")
    add("no-change Lua `devlink build` <= 150 ms", nb, TARGETS["nochange_lua_build_ms"],
        None if nb is None else nb <= TARGETS["nochange_lua_build_ms"])
    return out


def print_report(report: dict) -> None:
    print()
    hdr = (f"{'program':10} {'atoms':>7} {'full link':>10} {'upd med':>8} {'upd p90':>8} "
           f"{'u_o med':>8} {'write med':>9} {'after':>6} {'gold med':>9} {'mold med':>9} {'gold/upd':>9} "
           f"{'B/atom':>7} {'NFL':>4}  check")
    print(hdr)
    rows = [(f"gen{n}", g) for n, g in sorted(((int(k), v) for k, v in report["gen"].items()))]
    if report.get("lua"):
        rows.append(("lua", report["lua"]))
    for name, g in rows:
        if "total" not in g:
            print(f"{name:10} FAILED: {'; '.join(g.get('errors', []))[:300]}")
            continue
        gold = (g["relink"].get("gold") or {}).get("median_ms")
        mold = (g["relink"].get("mold") or {}).get("median_ms")
        tot = g["total"]["median_ms"]
        ratio = gold / tot if gold and tot else None
        checks = all(g.get(k, True) for k in ("full_link_output_ok", "edited_output_ok",
                                               "profiled_output_ok"))
        print(f"{name:10} {g['atoms']:>7} {fmt(g['full_link_ms'], '.0f'):>8}ms "
              f"{fmt(tot):>8} {fmt(g['total']['p90_ms']):>8} {fmt(g['update']['median_ms']):>8} "
              f"{fmt(g['write']['median_ms']):>9} {fmt((g.get('finish') or {}).get('median_ms')):>6} "
              f"{fmt(gold):>9} {fmt(mold):>9} "
              f"{fmt(ratio, '.1f'):>8}x {fmt(g.get('bytes_per_atom_rss'), '.0f'):>7} "
              f"{len(g['needs_full_link']):>4}  {'ok' if checks and not g['errors'] else 'FAIL'}")
    print("(ms; upd = update_objects + pwrite_all + truncate, u_o = update_objects alone, after = "
          "Linker.finish_update, which a session runs once the program has the new code (not timed "
          "in upd), NFL = NeedsFullLink count, B/atom = RSS held after the full link / atoms)")
    b = report.get("build")
    if b:
        if b.get("error"):
            print(f"no-change lua build: FAILED {b['error']['type']}: {b['error']['message'][:300]}")
        else:
            print(f"no-change `devlink build` of Lua: median {fmt(b['nochange']['median_ms'], '.1f')} ms "
                  f"(p90 {fmt(b['nochange']['p90_ms'], '.1f')}); `python -c pass`: "
                  f"{fmt(b['python_pass']['median_ms'], '.1f')} ms; first build "
                  f"{fmt(b['first_build_ms'] / 1e3, '.1f')} s")
    print()
    for t in report["targets"]:
        val = "-" if t["value"] is None else fmt(t["value"], ".2f")
        print(f"{t['result']}: {t['target']} (value {val}, limit {t['limit']})"
              + (f"  [{t['note']}]" if t["note"] else ""))


def plot(report: dict, path: Path) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not importable: no plot (pip install matplotlib)"
    gens = sorted((int(k), v) for k, v in report["gen"].items() if "total" in v)
    if not gens:
        return "no results to plot"
    xs = [n for n, _ in gens]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    med = [g["total"]["median_ms"] for _, g in gens]
    p90 = [g["total"]["p90_ms"] for _, g in gens]
    ax.plot(xs, med, "o-", label="devlink one-function update (median)")
    ax.plot(xs, p90, "o:", color="C0", alpha=0.5, label="devlink update (p90)")
    ax.plot(xs, [g["update"]["median_ms"] for _, g in gens], "x--", color="C0", alpha=0.5,
            label="devlink update_objects only (median)")
    for i, tool in enumerate(("gold", "mold")):
        ys = [(g["relink"].get(tool) or {}).get("median_ms") for _, g in gens]
        if any(ys):
            ax.plot([x for x, y in zip(xs, ys) if y], [y for y in ys if y], "s-", color=f"C{i + 1}",
                    label=f"{tool} full relink (median)")
    ax.axhline(TARGETS["median_ms_at_10000"], color="grey", lw=0.8, ls="--", label="5 ms target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("functions in the program (100 per file)")
    ax.set_ylabel("time from object ready to output updated (ms)")
    ax.set_title("one-function edit: devlink in place vs full relink")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"wrote {path}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000",
                    help="functions of the generated programs (default 1000,10000,100000)")
    ap.add_argument("--edits", type=int, default=30, help="timed one-function edits (default 30)")
    ap.add_argument("--profile-edits", type=int, default=10,
                    help="extra edits under cProfile (default 10, 0: none)")
    ap.add_argument("--profile-size", type=int, default=10000,
                    help="print the profile of this size (default 10000)")
    ap.add_argument("--relinks", type=int, default=5, help="timed gold/mold relinks (default 5)")
    ap.add_argument("--linkers", default="gold,mold", help="cc -fuse-ld= baselines (default gold,mold)")
    ap.add_argument("--build-runs", type=int, default=10, help="no-change build runs (default 10)")
    ap.add_argument("--no-lua", action="store_true", help="skip the Lua edit")
    ap.add_argument("--no-build", action="store_true", help="skip the no-change devlink build")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also measure the link state with tracemalloc (the full link runs traced)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="parallel compiles")
    ap.add_argument("--json", type=Path, default=BENCH / "results" / "incremental.json")
    ap.add_argument("--plot", type=Path, default=BENCH / "results" / "incremental.png")
    ap.add_argument("--worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        spec = json.loads(Path(args.worker[0]).read_text())
        res = worker(spec)
        Path(args.worker[1]).write_text(json.dumps(res, indent=1))
        return 0
    if args.edits < 20:
        print("note: fewer than 20 edits", file=sys.stderr)

    sizes = [int(s) for s in args.sizes.split(",") if s]
    linkers = [x for x in args.linkers.split(",") if x]
    report: dict = {"machine": link_bench.machine_info(), "cflags": BENCH_CFLAGS,
                    "per_file": PER_FILE, "edits": args.edits, "targets_limits": TARGETS,
                    "skipped_linkers": [x for x in linkers if not link_bench.linker_binary(x)],
                    "devlink_tree_hash": devlink_tree_hash(),
                    "gen": {}, "lua": None, "build": None, "compile": {}}
    link_bench.cache_dir().mkdir(parents=True, exist_ok=True)
    common = {"edits": args.edits, "profile_edits": args.profile_edits, "relinks": args.relinks,
              "linkers": linkers, "tracemalloc": args.tracemalloc}
    with tempfile.TemporaryDirectory(prefix="devlink-incr-") as tmps:
        tmp = Path(tmps)
        for n in sizes:
            print(f"gen{n}: preparing objects ...", file=sys.stderr, flush=True)
            try:
                spec, info = gen_spec(n, args, tmp)
            except Exception as e:  # noqa: BLE001
                report["gen"][str(n)] = {"errors": [f"could not build objects: {e}"]}
                continue
            report["compile"][f"gen{n}"] = info
            print(f"gen{n}: objects ready in {info['objects_and_sources_ready_s']:.1f} s "
                  f"(0 if cached); measuring", file=sys.stderr, flush=True)
            d = tmp / f"gen{n}"
            d.mkdir()
            res = run_worker({**spec, **common, "workdir": str(d)}, tmp)
            res.update(info)
            report["gen"][str(n)] = res
            if "total" in res:
                print(f"gen{n}: median {res['total']['median_ms']:.2f} ms, "
                      f"NeedsFullLink {len(res['needs_full_link'])}", file=sys.stderr, flush=True)
        if not args.no_lua:
            print("lua: preparing objects ...", file=sys.stderr, flush=True)
            try:
                spec, info = lua_spec(args)
                report["compile"]["lua"] = info
                d = tmp / "lua"
                d.mkdir()
                report["lua"] = {**run_worker({**spec, **common, "workdir": str(d)}, tmp), **info}
            except Exception as e:  # noqa: BLE001
                report["lua"] = {"errors": [f"could not build Lua objects: {e}"]}
        if not args.no_build:
            print("build: first devlink build of Lua, then no-change builds ...",
                  file=sys.stderr, flush=True)
            try:
                report["build"] = nochange_build(args, tmp)
            except Exception as e:  # noqa: BLE001
                report["build"] = {"error": error_record(e)}

    report["targets"] = evaluate(report)
    print_report(report)
    ps = str(args.profile_size)
    if ps in report["gen"] and report["gen"][ps].get("profile_tottime"):
        g = report["gen"][ps]
        print(f"\nupdate_objects profile at {ps} functions ({g['profile_edits']} edits), by tottime:")
        print("\n".join(g["profile_tottime"].splitlines()[:45]))
    for name, g in list(report["gen"].items()) + [("lua", report.get("lua") or {})]:
        for e in g.get("needs_full_link", []):
            print(f"NeedsFullLink at {name} edit {e['edit']}: {e['reason']}")
        for e in g.get("errors", []):
            print(f"ERROR {name}: {e[:1000]}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp_json = args.json.with_suffix(".json.tmp")
    tmp_json.write_text(json.dumps(report, indent=1) + "\n")
    tmp_json.replace(args.json)
    print(f"\nwrote {args.json}")
    print(plot(report, args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())

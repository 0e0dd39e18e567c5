#!/usr/bin/env python3
"""End-to-end edit latency of `devlink watch`, beside the path a user takes without it.

For each edit: the bench writes a source file (temp file + rename, as editors do) and
notes the time; devlink records the moment it flips the GOT cell (DEVLINK_TRACE); a
child that calls the patched function at ~2 kHz prints a marker when it sees the new
value, and the bench notes when that line arrives.  devlink's own share is
(flip - write) minus the compiler's own time on that file, measured on its own in the
same run (median of the same number of compiles, same flags): `devlink_share_ms`.
On a busy machine the compiler's time varies more than devlink's whole share, so
`devlink_own_ms` also subtracts the compile time devlink measured for that very edit.

Programs:
  probe  a small program (main.c + probe.c) whose loop polls `probe()`;
  life, server, prodcons
         the examples, each edit in the file its README names (flip times from the trace);
  lua    Lua 5.4 (tests/lua.py), edits of lvm.c: a typical one (a function and its own
         string literal) and the worst case (a literal the interpreter loop shares, so
         the whole loop moves); the flip is taken from devlink's trace (the interpreter
         runs a script in a loop so the process lives).

Baseline, same edits: recompile the file with cc, relink all objects with gold and with
mold (`cc -fuse-ld=...`), start the program again until its first marker line; its
share is everything after the compile (link + restart), compared with `devlink_own_ms`.

    python bench/latency.py [--edits 20] [--programs probe,lua]

Targets (issue 6): devlink's share at most 15 ms median, 40 ms at the 95th percentile.
Writes bench/results/latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

REQUIRED = ["-fPIC", "-ffunction-sections", "-fdata-sections", "-g"]

PROBE_MAIN = r"""
#include <stdio.h>
#include <unistd.h>
int probe(void);
int main(void) {
    int last = -1;
    for (;;) {
        int v = probe();
        if (v != last) { printf("seen %d\n", v); fflush(stdout); last = v; }
        usleep(500);
    }
}
"""


def probe_c(n: int) -> str:
    return f"int probe(void) {{ return {n}; }}\n"


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summary(values):
    return {"median": statistics.median(values), "p95": pct(values, 95), "min": min(values), "n": len(values)}


class Lines:
    """A process's stdout lines, with arrival times."""

    def __init__(self, proc):
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc):
        for raw in proc.stdout:
            self.q.put((time.time(), raw.decode(errors="replace").strip()))

    def wait_for(self, text: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while True:
            t, line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            if line == text:
                return t


def save(path: Path, text: str) -> float:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    t = time.time()
    os.replace(tmp, path)
    return t


def read_flips(trace: Path) -> list[dict]:
    if not trace.exists():
        return []
    return [json.loads(l) for l in trace.read_text().splitlines() if l.strip()]


def wait_flip(trace: Path, after: float, timeout: float = 120.0) -> dict:
    """The first flip devlink recorded after the time `after` (a save)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for flip in read_flips(trace):
            if flip["time"] > after:
                return flip
        time.sleep(0.002)
    raise TimeoutError("devlink never recorded the flip")


def wait_ready(root: Path, timeout: float = 600.0) -> None:
    """Until the session's first build is done (its socket answers `status`)."""
    sys.path.insert(0, str(REPO))
    from devlink.watch.control import SessionClient
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with SessionClient(str(root)) as c:
                if c.request("status").get("state") == "running":
                    return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError("the session never started the program")


def time_compile(cc: str, src: Path, flags: list[str], n: int) -> list[float]:
    out = src.with_suffix(".bench.o")
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([cc, "-c", *REQUIRED, *flags, str(src), "-o", str(out)], check=True)
        times.append((time.perf_counter() - t) * 1000)
    out.unlink(missing_ok=True)
    return times


def start_watch(root: Path, trace: Path) -> subprocess.Popen:
    env = dict(os.environ, DEVLINK_TRACE=str(trace), PYTHONPATH=str(REPO))
    log = open(trace.with_suffix(".log"), "wb")       # devlink's own lines, for a failed run
    return subprocess.Popen([sys.executable, "-m", "devlink", "watch", "--no-keys", str(root)], stdout=subprocess.PIPE,
                            stderr=log, stdin=subprocess.DEVNULL, env=env)


def stop(proc):
    proc.send_signal(2)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- probe ------------------------------------------------------------------------------------

def bench_probe(work: Path, edits: int, cc: str, linkers: list[str]) -> dict:
    root = work / "probe"
    root.mkdir()
    (root / "main.c").write_text(PROBE_MAIN)
    (root / "probe.c").write_text(probe_c(0))
    trace = work / "probe-trace.jsonl"
    proc = start_watch(root, trace)
    share, own, end_to_end, flip_to_seen, internal_compile = [], [], [], [], []
    try:
        lines = Lines(proc)
        lines.wait_for("seen 0", 120)
        compile_alone = time_compile(cc, root / "probe.c", [], edits)
        for i in range(1, edits + 1):
            time.sleep(0.15)
            t_write = save(root / "probe.c", probe_c(i))
            t_seen = lines.wait_for(f"seen {i}")
            flip = wait_flip(trace, t_write)
            internal_compile.append(flip["compile_ms"])
            end_to_end.append((t_seen - t_write) * 1000)
            flip_to_seen.append((t_seen - flip["time"]) * 1000)
            share.append((flip["time"] - t_write) * 1000 - statistics.median(compile_alone))
            own.append((flip["time"] - t_write) * 1000 - flip["compile_ms"])
    finally:
        stop(proc)
    result = {"devlink_own_ms": summary(own), "devlink_share_ms": summary(share), "write_to_seen_ms": summary(end_to_end),
              "flip_to_seen_ms": summary(flip_to_seen), "compile_alone_ms": summary(compile_alone),
              "compile_in_devlink_ms": summary(internal_compile)}
    # the path without devlink: compile, relink everything, restart to first output
    objs = []
    for name in ("main.c", "probe.c"):
        o = work / f"probe-base-{name}.o"
        subprocess.run([cc, "-c", "-g", str(root / name), "-o", str(o)], check=True)
        objs.append(o)
    for ld in linkers:
        times = []
        for i in range(1, edits + 1):
            (work / "probe-base.c").write_text(probe_c(1000 + i))
            t = time.perf_counter()
            subprocess.run([cc, "-c", "-g", str(work / "probe-base.c"), "-o", str(objs[1])], check=True)
            t_compiled = time.perf_counter()
            subprocess.run([cc, "-no-pie", f"-fuse-ld={ld}", "-o", str(work / "probe-base"), *map(str, objs)], check=True)
            p = subprocess.Popen([str(work / "probe-base")], stdout=subprocess.PIPE)
            p.stdout.readline()
            t_seen = time.perf_counter()
            times.append(((t_seen - t) * 1000, (t_seen - t_compiled) * 1000))
            p.kill()
            p.wait()
        result[f"relink_restart_{ld}_ms"] = summary([x[0] for x in times])
        result[f"relink_share_{ld}_ms"] = summary([x[1] for x in times])
    return result


# --- the examples -----------------------------------------------------------------------------

#: per example: the file a user edits, a text in it, and its variants (one per edit)
EXAMPLE_EDITS = {
    # each variant compiles to other code with the same behaviour (never 100+ neighbours)
    "life": ("rules.c", "return neighbours == 3;\n}", lambda i: f"return neighbours == 3 || neighbours == {100 + i};\n}}"),
    "server": ("handler.c", '"echo #%ld: %s\\n"', lambda i: f'"echo{i} #%ld: %s\\n"'),
    "prodcons": ("work.c", "return n * n;", lambda i: f"return n * n + (n == -{i});"),
}


def bench_example(work: Path, name: str, edits: int) -> dict:
    """Edits of the file the example's README names, in a copy of the example: the flip
    time from devlink's trace (the example's own output confirms nothing at 1 kHz, so the
    child-side confirmation is the probe program's)."""
    root = work / name
    shutil.copytree(REPO / "examples" / name, root, ignore=shutil.ignore_patterns(".devlink", name))
    if name == "server":
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        (root / "devlink.toml").write_text(f'sources = ["*.c"]\nargs = ["{port}"]\n')
    fname, anchor, variant = EXAMPLE_EDITS[name]
    path = root / fname
    original = path.read_text()
    if anchor not in original:
        raise RuntimeError(f"{name}/{fname} no longer contains {anchor!r}; update EXAMPLE_EDITS")
    trace = work / f"{name}-trace.jsonl"
    proc = start_watch(root, trace)
    try:
        wait_ready(root)
        own, link, patch = [], [], []
        for i in range(1, edits + 1):
            t_write = save(path, original.replace(anchor, variant(i)))
            flip = wait_flip(trace, t_write)
            own.append((flip["time"] - t_write) * 1000 - flip["compile_ms"])
            link.append(flip["link_ms"])
            patch.append(flip["patch_ms"])
            time.sleep(0.15)
    finally:
        stop(proc)
    return {"devlink_own_ms": summary(own), "link_ms": summary(link), "patch_ms": summary(patch)}


# --- lua --------------------------------------------------------------------------------------

def bench_lua(work: Path, edits: int, cc: str, linkers: list[str]) -> dict:
    import lua as lua_helper
    src = lua_helper.lua_sources()
    root = work / "lua"
    shutil.copytree(src, root / "src")
    files = [p.name for p in lua_helper.lua_c_files(root / "src")]
    script = work / "loop.lua"
    script.write_text("while true do local t = {} for i = 1, 1000 do t[i] = i % 7 end end\n")
    (root / "devlink.toml").write_text(
        f"sources = {json.dumps(['src/' + f for f in files])}\n"
        f"cflags = {json.dumps(' '.join(['-O2', *lua_helper.LUA_CFLAGS]))}\n"
        f"libraries = [\"m\", \"dl\"]\nldflags = \"-E\"\noutput = \"lua\"\nargs = [\"{script}\"]\n")
    trace = work / "lua-trace.jsonl"
    proc = start_watch(root, trace)
    try:
        return _bench_lua_session(work, root, trace, proc, edits, cc, linkers, files, lua_helper)
    finally:
        stop(proc)                        # a failed run must not leave Lua spinning


def _bench_lua_session(work, root, trace, proc, edits, cc, linkers, files, lua_helper) -> dict:
    lvm = root / "src" / "lvm.c"
    original = lvm.read_text()
    # a typical edit: the error message of luaV_finishget (the function and its own
    # string literal move); and the worst case: the message of luaV_mod, whose literal
    # luaV_execute shares, so the whole interpreter loop (~30 KB of code) moves too
    typical = "'__index' chain too long; possible loop"
    worst = "attempt to perform 'n%%0'"
    for marker in (typical, worst):
        if marker not in original:
            raise RuntimeError(f"lvm.c does not have the message {marker!r} to edit; update bench/latency.py")
    marker = typical
    wait_ready(root)
    flags = ["-O2", *lua_helper.LUA_CFLAGS]
    compile_alone = time_compile(cc, lvm, flags, max(5, edits // 2))

    def edit_many(marker: str) -> tuple[list, list, list]:
        share, own, noticed = [], [], []
        for i in range(1, edits + 1):
            t_write = save(lvm, original.replace(marker, marker.replace("'", f"'({i})", 1)))
            flip = wait_flip(trace, t_write)
            share.append((flip["time"] - t_write) * 1000 - statistics.median(compile_alone))
            own.append((flip["time"] - t_write) * 1000 - flip["compile_ms"])
            if flip.get("batch_time"):
                noticed.append((flip["batch_time"] - t_write) * 1000)
            time.sleep(0.3)
        return share, own, noticed

    share, own, noticed = edit_many(typical)
    _, own_worst, _ = edit_many(worst)
    result = {"devlink_own_ms": summary(own), "devlink_share_ms": summary(share),
              "interpreter_loop_edit_own_ms": summary(own_worst), "compile_alone_ms": summary(compile_alone)}
    if noticed:
        result["write_to_batch_ms"] = summary(noticed)    # the watcher's part of the own share
    objdir = work / "lua-objs"
    objdir.mkdir()
    objs = []
    for f in files:
        o = objdir / (f[:-2] + ".o")
        subprocess.run([cc, "-c", "-g", *flags, str(root / "src" / f), "-o", str(o)], check=True)
        objs.append(o)
    lvm_o = objdir / "lvm.o"
    for ld in linkers:
        times = []
        for i in range(1, max(5, edits // 2) + 1):
            lvm.write_text(original.replace(marker, marker.replace("'", f"'[{i}]", 1)))
            t = time.perf_counter()
            subprocess.run([cc, "-c", "-g", *flags, str(lvm), "-o", str(lvm_o)], check=True)
            t_compiled = time.perf_counter()
            subprocess.run([cc, "-no-pie", f"-fuse-ld={ld}", "-o", str(work / "lua-base"), *map(str, objs),
                            "-lm", "-ldl", "-Wl,-E"], check=True)
            subprocess.run([str(work / "lua-base"), "-e", "print(1)"], check=True, stdout=subprocess.DEVNULL)
            t_seen = time.perf_counter()
            times.append(((t_seen - t) * 1000, (t_seen - t_compiled) * 1000))
        result[f"relink_restart_{ld}_ms"] = summary([x[0] for x in times])
        result[f"relink_share_{ld}_ms"] = summary([x[1] for x in times])
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--programs", default="probe,life,server,prodcons,lua")
    a = ap.parse_args()
    cc = shutil.which(os.environ.get("CC", "cc")) or "cc"
    linkers = [ld for ld in ("gold", "mold") if shutil.which(f"ld.{ld}") or shutil.which(ld)]
    results = {"machine": platform.platform(), "cpus": os.cpu_count(), "edits": a.edits, "programs": {}}
    with tempfile.TemporaryDirectory(prefix="devlink-latency-") as tmp:
        work = Path(tmp)
        for name in a.programs.split(","):
            try:
                if name in EXAMPLE_EDITS:
                    results["programs"][name] = bench_example(work, name, a.edits)
                    continue
                fn = {"probe": bench_probe, "lua": bench_lua}[name]
                results["programs"][name] = fn(work, a.edits, cc, linkers)
            except Exception as e:           # a failure is recorded, the other program still runs
                log = work / f"{name}-trace.log"
                tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
                results["programs"][name] = {"error": f"{type(e).__name__}: {e}", "devlink_said": tail}
    print(f"{'program':8} {'what':34} {'median ms':>10} {'p95 ms':>9}")
    for name, r in results["programs"].items():
        if "error" in r:
            print(f"{name:8} error: {r['error']}")
            for line in r.get("devlink_said", []):
                print(f"{'':8}   {line}")
            continue
        for key, s in r.items():
            print(f"{name:8} {key:34} {s['median']:10.1f} {s['p95']:9.1f}")
        own = r["devlink_own_ms"]["median"]
        p95 = r["devlink_own_ms"]["p95"]
        verdict = "PASS" if own <= 15 and p95 <= 40 else "FAIL"
        print(f"{name:8} {'target own share <=15 ms med, <=40 p95':34} {verdict:>10}")
        for ld in linkers:
            base = r.get(f"relink_share_{ld}_ms")
            if base and own > 0:
                print(f"{name:8} {'ratio: relink+restart (' + ld + ') / devlink':34} {base['median'] / own:10.1f}x")
    out = BENCH / "results" / "latency.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

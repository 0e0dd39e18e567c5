#!/usr/bin/env python3
"""Patch-step benchmark: applying an update to a running program with 4 busy threads.

For 1-function and 100-function updates, in one run:
* the patch step (plan + writes + cell flips; devlink/hotpatch/step.py) through the shared patch area (stores
  into devlink's mapping of the memfd the child maps) and through the `/proc/PID/mem`
  fallback (the same program started with the area turned off);
* the incremental relink that precedes it (update_objects), for context;
* the baseline: restarting the program (exec to its first line of output).

Medians and p99, JSON to bench/results/patch.json.

    python bench/patch.py [--edits 60]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devlink.build_args import parse_build_args  # noqa: E402
from devlink.hotpatch.step import patch_step  # noqa: E402
from devlink.link.incremental import update_objects  # noqa: E402
from devlink.output.writer import pwrite_all  # noqa: E402
from devlink.session import Session  # noqa: E402

MAIN = r"""
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
int work(int);
static void *busy(void *arg) { volatile long s = 0; for (;;) s += work((int)(long)arg); return 0; }
int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], 0, busy, (void *)i);
    printf("ready\n"); fflush(stdout);
    for (;;) pause();
}
"""


def lib_source(nfuncs: int, k: int) -> str:
    body = [f"int f{i}(int x) {{ return x * {i + 1} + {k}; }}" for i in range(nfuncs)]
    calls = " + ".join(f"f{i}(x)" for i in range(min(nfuncs, 8)))
    return "\n".join(body) + f"\nint work(int x) {{ return {calls}; }}\n"


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def measure(nfuncs: int, edits: int, tmp: Path, shared: bool) -> dict:
    tmp.mkdir()
    (tmp / "main.c").write_text(MAIN)
    lib = tmp / "lib.c"
    lib.write_text(lib_source(nfuncs, 0))
    args = parse_build_args(["-o", str(tmp / "prog"), "-O2", "-pthread", str(tmp / "main.c"), str(lib)])
    s = Session(args, patch_area=shared)
    s.build()
    child = s.start(stdout=subprocess.PIPE)
    try:
        return _measure(s, child, nfuncs, edits, lib, shared)
    finally:
        s.stop()                  # no busy child left behind, even when an update fails


def _measure(s, child, nfuncs: int, edits: int, lib: Path, shared: bool) -> dict:
    child.stdout.readline()
    path = "shared" if getattr(s.patcher, "active", False) else "procmem"
    if path != ("shared" if shared else "procmem"):
        raise SystemExit(f"asked for the {'shared' if shared else 'procmem'} path, got {path}")
    # compile the variants once: the benchmark measures what comes after the compiler
    variants = []
    for k in range(1, 4):
        lib.write_text(lib_source(nfuncs, k))
        s._compile([1])
        variants.append(open(s.objects[1], "rb").read())
    link_ms, patch_ms, sizes, with_sleep_us = [], [], [], []
    for e in range(edits):
        data = variants[e % len(variants)]
        t0 = time.perf_counter()
        result = update_objects(s.linker, {s.objects[1]: data}, live=True)
        pwrite_all(s.output, result.writes)
        t1 = time.perf_counter()
        plan, step = patch_step(s.patcher, result)
        t2 = time.perf_counter()
        link_ms.append((t1 - t0) * 1e3)
        patch_ms.append(step * 1e6)
        with_sleep_us.append((t2 - t1) * 1e6)
        sizes.append((len(plan.writes), len(plan.cells), plan.size()))
    alive = child.poll() is None
    writes = s.mem.writes
    return {"path": path, "functions_changed": nfuncs, "edits": edits, "child_survived": alive,
            "procmem_writes": writes,
            "patch_us_median": statistics.median(patch_ms), "patch_us_p99": pct(patch_ms, 0.99),
            "relink_ms_median": statistics.median(link_ms),
            # the step is preceded by a short sleep (devlink/hotpatch/step.py): this is
            # the step plus that sleep, what the user waits for
            "step_with_sleep_us_median": statistics.median(with_sleep_us),
            "step_with_sleep_us_p99": pct(with_sleep_us, 0.99),
            "writes_per_patch": sizes[len(sizes) // 2][0], "cells_per_patch": sizes[len(sizes) // 2][1],
            "bytes_per_patch": sizes[len(sizes) // 2][2]}


def restart_ms(prog: Path, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen([str(prog)], stdout=subprocess.PIPE)
        select.select([p.stdout], [], [], 10)
        p.stdout.readline()
        out.append((time.perf_counter() - t0) * 1e3)
        p.kill()
        p.wait()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=60)
    ap.add_argument("--json", default=str(REPO / "bench" / "results" / "patch.json"))
    a = ap.parse_args()
    results = {"machine": {"nproc": os.cpu_count(), "kernel": os.uname().release, "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as d:
        for n in (1, 100):
            for path in ("shared", "procmem"):
                results[f"{path}_{n}"] = measure(n, a.edits, Path(d) / f"{path}{n}", path == "shared")
        rs = restart_ms(Path(d) / "shared1" / "prog", 20)
    results["restart_ms_median"] = statistics.median(rs)
    results["restart_ms_p99"] = pct(rs, 0.99)
    print(f"{'update':30} {'patch median':>14} {'patch p99':>11} {'relink median':>14} {'writes':>7} {'cells':>6}")
    for n in (1, 100):
        for path in ("shared", "procmem"):
            r = results[f"{path}_{n}"]
            print(f"{n:>3} function(s), {path:13} {r['patch_us_median']:>10.1f} us {r['patch_us_p99']:>8.1f} us "
                  f"{r['relink_ms_median']:>11.2f} ms {r['writes_per_patch']:>7} {r['cells_per_patch']:>6}"
                  f"{'' if r['child_survived'] else '  CHILD DIED'}")
    print(f"{'restart (exec to first output)':30} {results['restart_ms_median'] * 1e3:>10.1f} us "
          f"{results['restart_ms_p99'] * 1e3:>8.1f} us")
    p99 = results["shared_1"]["patch_us_p99"]
    print(f"{'PASS' if p99 <= 200 else 'FAIL'}: 1-function patch p99 <= 200 us on the shared path (value {p99:.1f} us)")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

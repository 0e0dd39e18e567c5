"""`devlink build`: compile the C sources (in parallel), then link with devlink's linker."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

from devlink.errors import DevlinkError
from devlink.link.toolchain import find_cc

#: flags devlink adds to every compile: one section per function and variable (each
#: becomes its own atom), PIC code (GOT-relative access to imports), debug info
REQUIRED_CFLAGS = ["-fPIC", "-ffunction-sections", "-fdata-sections", "-g"]


def compile_source(cc: str, src: str, obj: str, cflags: list[str]) -> None:
    if not os.path.exists(src):
        raise DevlinkError(f"source file {src!r} not found; check the path")
    cmd = shlex.split(cc) + ["-c"] + REQUIRED_CFLAGS + list(cflags) + [src, "-o", obj]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise DevlinkError(f"cannot run the C compiler {cc!r}: {e.strerror}; install gcc or set CC") from None
    if p.stderr:
        import sys
        sys.stderr.write(p.stderr)
    if p.returncode != 0:
        raise DevlinkError(f"compiling {src} failed (exit status {p.returncode}); fix the errors above")


def build(args) -> None:
    from devlink.link.linker import LinkOptions, Linker
    from devlink.output.writer import write_file
    cc = find_cc() if args.sources else None
    with tempfile.TemporaryDirectory(prefix="devlink-build-") as tmp:
        objs = [os.path.join(tmp, f"{i}-{os.path.splitext(os.path.basename(s))[0]}.o")
                for i, s in enumerate(args.sources)]
        if args.sources:
            with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, len(args.sources)))) as pool:
                futures = [pool.submit(compile_source, cc, s, o, args.cflags) for s, o in zip(args.sources, objs)]
                for f in futures:
                    f.result()
        inputs = [objs[int(x[5:])] if x.startswith("@src:") else x for x in args.link_items]
        opts = LinkOptions(output=args.output, inputs=inputs, lib_dirs=args.lib_dirs,
                           export_dynamic=args.export_dynamic, cc=cc)
        image = Linker(opts).link()
        write_file(args.output, image)

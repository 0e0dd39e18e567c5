"""A cc/ld-style command line (`-o prog a.c b.o -L dir -lm -O2 -Wl,-E`) as BuildArgs.

Below every command that builds: `devlink build` and `run` parse their argv with it, the
session host turns a project's configuration into the same argv (ProjectConfig.build_argv).
"""

from __future__ import annotations

import os

from devlink.errors import DevlinkError

#: compiler options that take a separate argument (`-I dir`, `-D X`...)
CC_OPTS_WITH_ARG = {"-I", "-D", "-U", "-include", "-isystem", "-iquote", "-idirafter", "-imacros", "-x",
                    "-MF", "-MT", "-MQ"}


class BuildArgs:
    def __init__(self):
        self.output = "a.out"
        self.sources: list[str] = []
        #: link inputs in order: object/archive paths, "-lNAME", and "@src:INDEX" for compiled sources
        self.link_items: list[str] = []
        self.lib_dirs: list[str] = []
        self.cflags: list[str] = []
        self.export_dynamic = False
        self.verbose = False
        self.jobs = os.cpu_count() or 1
        #: per source: flags added after `cflags` (from compile_commands.json)
        self.source_flags: dict[str, list[str]] = {}
        #: compiler launcher (ccache, distcc) and compiler (None: $CC or cc)
        self.launcher: list[str] = []
        self.cc: str | None = None


def parse_build_args(argv: list[str]) -> BuildArgs:
    """Parse a cc/ld-style command line (`-o out a.c b.o -L dir -lm -O2 -Wl,-E`)."""
    a = BuildArgs()
    i = 0
    while i < len(argv):
        arg = argv[i]

        def value():
            nonlocal i
            if i + 1 >= len(argv):
                raise DevlinkError(f"option {arg} needs an argument")
            i += 1
            return argv[i]

        if arg == "-o":
            a.output = value()
        elif arg.startswith("-o") and len(arg) > 2:
            a.output = arg[2:]
        elif arg == "-L":
            a.lib_dirs.append(value())
        elif arg.startswith("-L"):
            a.lib_dirs.append(arg[2:])
        elif arg == "-l":
            a.link_items.append("-l" + value())
        elif arg.startswith("-l"):
            a.link_items.append(arg)
        elif arg in ("-E", "--export-dynamic", "-rdynamic"):
            a.export_dynamic = True
        elif arg.startswith("-Wl,"):
            for w in arg[4:].split(","):
                if w in ("-E", "--export-dynamic"):
                    a.export_dynamic = True
                elif w in ("--as-needed", "--no-as-needed", "-O1", "--gc-sections", "-z", "now", "relro", "--build-id"):
                    continue
                elif w:
                    raise DevlinkError(f"linker option {w!r} (from {arg}) is not supported by devlink; remove it")
        elif arg in ("-pthread", "-pthreads"):
            a.cflags.append("-pthread")
        elif arg in ("-v", "--verbose"):
            a.verbose = True
        elif arg.startswith("-j") and arg[2:].isdigit():
            a.jobs = max(1, int(arg[2:]))
        elif arg in ("-c", "-S", "-E "):
            raise DevlinkError(f"{arg} is not a link; use cc for that, devlink build links a program")
        elif arg in ("-static", "-pie", "-shared", "-static-pie"):
            raise DevlinkError(f"{arg} is not supported: devlink builds non-PIE, dynamically linked executables; remove it")
        elif arg in ("-flto",) or arg.startswith("-flto="):
            raise DevlinkError(f"{arg} is not supported: devlink links the compiler's objects itself; remove it")
        elif arg == "-no-pie":
            continue
        elif arg in CC_OPTS_WITH_ARG:
            a.cflags += [arg, value()]
        elif arg.startswith("-"):
            a.cflags.append(arg)
        else:
            if arg.endswith((".c", ".i")):
                a.link_items.append(f"@src:{len(a.sources)}")
                a.sources.append(arg)
            else:
                a.link_items.append(arg)
        i += 1
    if not a.link_items:
        raise DevlinkError("no input files; usage: devlink build -o prog main.c util.o libfoo.a -lm")
    return a

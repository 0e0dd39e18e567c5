"""`devlink` command line: build (a cc-like link), and the dev-server commands.

Every user-caused failure is a DevlinkError printed as one line, exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from devlink import __version__
from devlink.build_args import BuildArgs, parse_build_args  # noqa: F401 (BuildArgs: the API)
from devlink.errors import DevlinkError

USAGE = """\
devlink {build} [options] inputs...

Commands:
  build     compile C sources and link them, like `cc -o prog a.c b.o libx.a -lm`
  run       build, start the program, and patch every saved edit into it while it runs:
            devlink run -o prog main.c util.c -- ARGS...
  watch     the dev server: build the project in a folder, run it, patch every save into it
            (config: none, devlink.toml or compile_commands.json); keys r/u/q
  status    the running session of a project (also: undo, restart, stop)
  lsp       language server (stdio) for editors: addresses, GOT slots, live values,
            diagnostics; attaches to `devlink watch`, or runs the session itself
  symbols   the program's functions and variables: stub, atom, size/capacity, GOT cell
  got       the program's GOT: function cells and constant entries

Run `devlink build --help` for the options of a command.
"""

def cmd_build(argv: list[str]) -> int:
    if any(x in ("-h", "--help") for x in argv):
        print("usage: devlink build [-o OUTPUT] [cc options] [-L DIR] [-lNAME] [-E] inputs...\n\n"
              "Compiles .c inputs with $CC (or cc) using -fPIC -ffunction-sections -fdata-sections -g\n"
              "plus your options, then links everything with devlink's own linker into a non-PIE,\n"
              "dynamically linked x86-64 executable. Inputs: .c, .o, .a, shared libraries, -lNAME.")
        return 0
    args = parse_build_args(argv)
    from devlink.build import build
    build(args)
    return 0


def _load_linker(output: str):
    from devlink.link import state as st
    sdir = st.state_dir(output)
    manifest = st.load_manifest(sdir)
    if manifest is None:
        raise DevlinkError(f"no devlink link state for {output!r}; build it with `devlink build -o {output} ...` first")
    try:
        return st.load_state(sdir)
    except st.StateError as e:
        raise DevlinkError(f"{e}; rebuild with `devlink build`") from None


def cmd_table(which: str, argv: list[str]) -> int:
    import json
    p = argparse.ArgumentParser(prog=f"devlink {which}", description=(
        "Print the program's functions (stub, atom, size/capacity, GOT cell and target, generation) and "
        "variables" if which == "symbols" else "Print the program's GOT: function cells and constant entries"))
    p.add_argument("program", nargs="?", help="the output devlink built (default: a.out)")
    p.add_argument("-o", dest="output", help="same as PROGRAM")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    a = p.parse_args(argv)
    output = a.output or a.program or "a.out"
    linker = _load_linker(output)
    from devlink import tables as T
    if which == "symbols":
        rows = T.function_rows(linker) + T.variable_rows(linker)
        if a.json:
            print(json.dumps({"program": output, "generation": linker.generation, "symbols": rows}, indent=1))
            return 0
        print(f"{output}: generation {linker.generation}")
        print(f"{'name':32} {'stub':>10} {'atom':>10} {'size/cap':>11} {'GOT':>5} {'cell':>10} {'target':>10} gen")
        for r in rows:
            if r["kind"] == "function":
                sc = f"{r['size']}/{r['capacity']}" if r.get("atom") is not None else "-"
                slot = "-" if r.get("got_slot") is None else str(r["got_slot"])
                name = r["name"] + (" (removed)" if r.get("removed") else "") + (" (import)" if r.get("import") else "")
                print(f"{name[:32]:32} {T.fmt_addr(r['stub']):>10} {T.fmt_addr(r['atom']):>10} {sc:>11} {slot:>5} "
                      f"{T.fmt_addr(r['got_cell']):>10} {T.fmt_addr(r['got_target']):>10} {r['generation'] or '-'}")
        for r in rows:
            if r["kind"] != "function":
                print(f"{r['name'][:32]:32} {'':>10} {T.fmt_addr(r['address']):>10} {str(r['size']):>11} "
                      f"{r['section']:>16} {r['generation']}")
        return 0
    rows = T.got_rows(linker)
    if a.json:
        print(json.dumps({"program": output, "generation": linker.generation, "got": rows}, indent=1))
        return 0
    print(f"{output}: generation {linker.generation}")
    print(f"{'section':15} {'index':>5} {'address':>10}  {'kind':9} {'target':>10}  name")
    for r in rows:
        print(f"{r['section']:15} {r['index']:>5} {T.fmt_addr(r['address']):>10}  {r['kind']:9} "
              f"{T.fmt_addr(r['target']):>10}  {r['name']}")
    return 0


RUN_OPTIONS = {"--on-unsafe": ("on_unsafe", ("restart", "keep-old", "refuse")),
               "--on-crash": ("on_crash", ("restart", "rollback"))}


def _run_options(argv: list[str]) -> tuple[list[str], dict]:
    """devlink's own `run` options, taken out before the cc-style ones are parsed."""
    opts: dict = {}
    rest = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in RUN_OPTIONS:
            if not eq:
                if i + 1 >= len(argv):
                    raise DevlinkError(f"option {name} needs a value: {'|'.join(RUN_OPTIONS[name][1])}")
                i += 1
                value = argv[i]
            key, allowed = RUN_OPTIONS[name]
            if value not in allowed:
                raise DevlinkError(f"{name}={value}: use one of {', '.join(allowed)}")
            opts[key] = value
        elif arg == "--no-guard":
            opts["guard"] = False
        else:
            rest.append(arg)
        i += 1
    return rest, opts


def _read_command(stdin) -> str | None:
    """A command line typed on devlink's stdin, if one is waiting (the child's stdin is
    /dev/null, so devlink's is free)."""
    import select
    if stdin is None:
        return None
    try:
        r, _, _ = select.select([stdin], [], [], 0)
    except (OSError, ValueError):
        return None
    if not r:
        return None
    line = stdin.readline()
    return line.strip() if line else None


def cmd_run(argv: list[str]) -> int:
    """Build, run, and apply edits to the running program until it exits."""
    import time
    own = argv[:argv.index("--")] if "--" in argv else argv
    if any(x in ("-h", "--help") for x in own):
        print("usage: devlink run [-o OUTPUT] [--on-unsafe=restart|keep-old|refuse] [--on-crash=restart|rollback]\n"
              "                   [--no-guard] [cc options] sources... [-- program arguments]\n\n"
              "Builds the program, starts it, and every time a source file is saved, recompiles it, relinks\n"
              "only what changed and patches the running program: the next call of an edited function runs\n"
              "the new code, with the program's state (globals, heap, connections) kept.\n\n"
              "--on-unsafe  an edit that cannot be patched safely (a variable's size or type, a function's\n"
              "             signature, a new constructor or initialised thread-local, a new library):\n"
              "             restart the program (default), keep-old (keep it running the old code), refuse\n"
              "--on-crash   the program dies by a signal after a patch: restart the newest program (default)\n"
              "             or rollback to the last generation that did not crash\n"
              "--no-guard   do not trace the program (crashes are then reported without an address)\n\n"
              "Commands on stdin: `undo` (back to the previous generation's code), `detach` (stop tracing,\n"
              "e.g. to attach gdb).")
        return 0
    prog_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, prog_args = argv[:i], argv[i + 1:]
    argv, opts = _run_options(argv)
    args = parse_build_args(argv)
    if not args.sources:
        raise DevlinkError("devlink run needs the C sources of the program (it recompiles them when they change)")
    from devlink.session import Session
    session = Session(args, prog_args, **opts)
    try:
        session.build()
    except DevlinkError as e:
        raise session.named_by_source(e) from None
    child = session.start()
    print(f"devlink: running {args.output} (pid {child.pid}); edit and save a source file to patch it", file=sys.stderr)
    stdin = sys.stdin if sys.stdin is not None and not sys.stdin.closed else None
    try:
        while True:
            ev = session.child_event()
            if ev is not None:
                if ev.crash is None:
                    break
                session.handle_crash(ev.crash)
                print(f"devlink: {ev.crash.message(args.output)} (pid {session.child.pid})", file=sys.stderr)
                continue
            time.sleep(0.1)
            for stuck in session.check_stuck():
                print(f"devlink: {stuck.message(args.output)}", file=sys.stderr)
            command = _read_command(stdin)
            if command is None and stdin is not None and stdin.closed:
                stdin = None
            try:
                if command in ("undo", "u"):
                    back = session.undo()
                    print(f"devlink: undo: {', '.join(back) or 'nothing'} went back", file=sys.stderr)
                elif command in ("detach", "d"):
                    pid = session.detach()
                    print(f"devlink: detached from pid {pid}; attach gdb with `gdb -p {pid}`" if pid else
                          "devlink: not tracing the program", file=sys.stderr)
                elif command == "":
                    pass
                elif command is not None:
                    print(f"devlink: unknown command {command!r}; commands: undo, detach", file=sys.stderr)
                gen = session.update()
            except DevlinkError as e:
                print(f"devlink: error: {session.named_by_source(e)}; the program keeps its last good code",
                      file=sys.stderr)
                session.forget_changes()     # wait for the next save; the program keeps its code
                continue
            if gen is not None and gen.action in ("patched", "file"):
                what = ", ".join(gen.changed + gen.added) or "nothing"
                print(f"devlink: generation {gen.number}: {what} (compile {gen.compile_ms:.0f} ms, link "
                      f"{gen.link_ms:.1f} ms, patch {gen.patch_ms:.1f} ms)", file=sys.stderr)
                for note in gen.notes:
                    print(f"devlink: {note}", file=sys.stderr)
    except KeyboardInterrupt:
        session.close()
        return 130
    status = session.child.wait()
    session.close()
    if status < 0:
        from devlink.hotpatch.crash import signal_name
        print(f"devlink: {args.output} was killed by {signal_name(-status)}", file=sys.stderr)
        return 128 - status
    print(f"devlink: {args.output} exited with status {status}", file=sys.stderr)
    return status


def cmd_watch(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="devlink watch", description=(
        "Build the project in FOLDER (default: here), start the program, and patch every saved edit into it "
        "while it runs. Configuration: none (all .c files), devlink.toml, or compile_commands.json."))
    p.add_argument("folder", nargs="?", default=".", help="the project folder")
    p.add_argument("--no-keys", action="store_true", help="do not read keys (r restart, u undo, q quit) from the terminal")
    p.add_argument("-o", "--output", help="where to write the program (over devlink.toml's `output`; may be "
                                          "outside the project)")
    _policy_options(p)
    a = p.parse_args(argv)
    from devlink.watch.app import WatchApp
    return WatchApp(a.folder, keys=False if a.no_keys else None,
                    policies={"on_unsafe": a.on_unsafe, "on_crash": a.on_crash}, output=a.output).run()


def cmd_lsp(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="devlink lsp", description=(
        "Language server on stdin/stdout. The project is the editor's workspace folder: if a `devlink watch` "
        "runs for it, the server attaches to it; otherwise the server builds, runs and watches the program itself."))
    p.add_argument("--stdio", action="store_true", help="talk on stdin/stdout (the default and only transport)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--attached", action="store_true", help="only attach to a running `devlink watch`")
    group.add_argument("--standalone", action="store_true", help="always run the session in the server")
    _policy_options(p)
    a = p.parse_args(argv)
    import logging
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="devlink lsp: %(message)s")
    from devlink.lsp.server import main as lsp_main
    return lsp_main("attached" if a.attached else "standalone" if a.standalone else "auto",
                    {"on_unsafe": a.on_unsafe, "on_crash": a.on_crash})


def _policy_options(p: argparse.ArgumentParser) -> None:
    """--on-unsafe / --on-crash for a session started by this command (over devlink.toml)."""
    from devlink.watch.config import POLICIES_ON_CRASH, POLICIES_ON_UNSAFE
    p.add_argument("--on-unsafe", choices=POLICIES_ON_UNSAFE, default=None,
                   help="an edit that cannot be patched safely: restart (default), keep-old, refuse")
    p.add_argument("--on-crash", choices=POLICIES_ON_CRASH, default=None,
                   help="the program dies by a signal after a patch: restart (default), rollback")


def cmd_session(which: str, argv: list[str]) -> int:
    """status / undo / restart / detach / stop: ask the project's running session."""
    import json
    p = argparse.ArgumentParser(prog=f"devlink {which}", description={
        "status": "Show the running session of the project: program, pid, state, generation, patches.",
        "undo": "Flip the functions of the last update back to their previous code.",
        "restart": "Restart the program on its newest build.",
        "detach": "Stop tracing the program (so gdb can attach); patches still apply.",
        "stop": "Stop the running session (and its program)."}[which])
    p.add_argument("folder", nargs="?", default=".", help="the project folder")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    a = p.parse_args(argv)
    from devlink.watch.control import SessionClient
    with SessionClient(a.folder) as c:
        reply = c.request("quit" if which == "stop" else which)
    if not reply.get("ok"):
        raise DevlinkError(reply.get("error", "the session refused the request"))
    if a.json:
        print(json.dumps(reply, indent=1))
    elif which == "status":
        gen = reply.get("generation")
        stuck = "".join(f"; thread {t['thread']} in {t['function']} (generation {t['generation']}) for "
                        f"{t['seconds']} s" for t in reply.get("stuck") or [])
        print(f"{reply['program']}: {reply['state']}" + (f" (pid {reply['pid']})" if reply.get("pid") else "") + stuck
              + (f", generation {gen}" if gen is not None else "") + f", {reply['patches']} patches"
              + f"; session pid {reply['session_pid']}")
    else:
        print(reply.get("message", "done"))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("--version", "-V", "version"):
        print(f"devlink {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    commands = {"build": cmd_build, "run": cmd_run, "watch": cmd_watch, "lsp": cmd_lsp,
                "symbols": lambda a: cmd_table("symbols", a), "got": lambda a: cmd_table("got", a),
                **{w: (lambda a, w=w: cmd_session(w, a)) for w in ("status", "undo", "restart", "detach", "stop")}}
    try:
        if cmd not in commands:
            raise DevlinkError(f"unknown command {cmd!r}; run `devlink --help` for the commands")
        return commands[cmd](rest)
    except DevlinkError as e:
        print(f"devlink: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("devlink: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # `devlink symbols | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

"""`devlink build`: compile what changed, then link incrementally when it can.

The first build compiles every source and links from scratch; it keeps its objects and
the link state under `.devlink/<output>/`.  A later build recompiles only sources whose
file or headers (from the compiler's depfiles) changed, reads only objects whose bytes
changed, and updates the output in place (devlink.link.incremental).  A build where
nothing changed reads a small manifest and a few file stats and stops; it does not even
import numpy.

An interrupted update is finished from its journal by the next build; a corrupt or
foreign state is rebuilt with a one-line notice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from devlink import __version__
from devlink.diagnostics import render_gcc_json
from devlink import private
from devlink.errors import DevlinkError
from devlink.link import state as st
from devlink.link.toolchain import find_cc

#: flags devlink adds to every compile: one section per function and variable (each
#: becomes its own atom), PIC code (GOT-relative access to imports), debug info
REQUIRED_CFLAGS = ["-fPIC", "-ffunction-sections", "-fdata-sections", "-g"]


class FaultInjector:
    """Test hook: DEVLINK_FAULT=N kills devlink (SIGKILL) at the N-th write step."""

    def __init__(self):
        v = os.environ.get("DEVLINK_FAULT")
        self.at = int(v) if v and v.isdigit() else None
        self.count = 0

    def __call__(self, where: str) -> None:
        if self.at is None:
            return
        self.count += 1
        if self.count == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


class CompileCancelled(DevlinkError):
    """A newer save of the file arrived while it compiled: its compile was stopped."""


def compile_source(cc: str, src: str, obj: str, cflags: list[str], depfile: str | None = None,
                   launcher: list[str] = (), running: dict | None = None,
                   diagnostics: dict | None = None) -> None:
    """Compile `src` to `obj` with the user's compiler (through `launcher`, e.g. ccache).
    Its diagnostics go to stderr as gcc prints them, and into `diagnostics[src]` (the
    text, "" when clean) for the editor.  While it runs, its process is in
    `running[src]`, so a newer save can stop it (`cancel_compile`)."""
    if not os.path.exists(src):
        raise DevlinkError(f"source file {src!r} not found; check the path")
    json_diagnostics = diagnostics is not None and supports_json_diagnostics(cc)
    cmd = list(launcher) + shlex.split(cc) + ["-c"] + REQUIRED_CFLAGS + list(cflags)
    if json_diagnostics:
        cmd.append("-fdiagnostics-format=json")
    if depfile:
        cmd += ["-MMD", "-MF", depfile]
    cmd += [src, "-o", obj]
    # the compiler writes through a symlink planted at its output's name: remove it
    private.clear_for_output(obj)
    if depfile:
        private.clear_for_output(depfile)
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        what = launcher[0] if launcher and e.filename == launcher[0] else cc
        raise DevlinkError(f"cannot run the C compiler {what!r}: {e.strerror}; install it or fix the compiler setting") from None
    if running is not None:
        running[src] = p
    try:
        out, err = p.communicate()
    finally:
        if running is not None and running.get(src) is p:
            del running[src]
    if getattr(p, "cancelled", False):
        raise CompileCancelled(f"compiling {src} was stopped: a newer version was saved")
    parsed = _json_diagnostics(err) if json_diagnostics else None
    if parsed is not None:
        # the editor gets gcc's structure, the terminal the text gcc would have printed
        diagnostics[src], rest = parsed
        err = render_gcc_json(parsed[0], _source_line) + rest
    elif diagnostics is not None:
        diagnostics[src] = err or ""
    if err:
        sys.stderr.write(err)
    if p.returncode != 0:
        raise DevlinkError(f"compiling {src} failed (exit status {p.returncode}); fix the errors above")
    if not os.path.isfile(obj):
        raise DevlinkError(f"compiling {src}: {shlex.join(list(launcher) + shlex.split(cc))} exited with status 0 "
                           f"but wrote no object file; check the compiler setting")
    for path in (obj, depfile):
        if path:
            try:
                os.chmod(path, 0o600)      # the compiler made it under the user's umask
            except OSError:
                pass


_JSON_SUPPORT: dict[str, bool] = {}


def supports_json_diagnostics(cc: str) -> bool:
    """Whether `cc` takes -fdiagnostics-format=json (gcc 9 and later; not clang).
    Asked once per compiler."""
    hit = _JSON_SUPPORT.get(cc)
    if hit is None:
        try:
            p = subprocess.run(shlex.split(cc) + ["-fdiagnostics-format=json", "-fsyntax-only", "-x", "c", "-"],
                               input="int x;\n", capture_output=True, text=True, timeout=30)
            hit = p.returncode == 0
        except (OSError, subprocess.SubprocessError):
            hit = False
        _JSON_SUPPORT[cc] = hit
    return hit


def _json_diagnostics(err: str) -> tuple[list, str] | None:
    """(gcc's JSON diagnostics, the rest of its stderr) from its stderr: a line that is a
    JSON array is diagnostics (`[]` when clean); other lines (the driver's `cc1: error:
    ...`, `compilation terminated.`) are text, shown as they are.  None when no line
    is JSON (then it all is shown as it is)."""
    diags, rest, found = [], [], not (err or "").strip()
    for line in (err or "").splitlines(keepends=True):
        if line.startswith("["):
            try:
                data = json.loads(line)
            except ValueError:
                data = None
            if isinstance(data, list):
                diags += data
                found = True
                continue
        rest.append(line)
    return (diags, "".join(rest)) if found else None


def _source_line(path: str, line: int) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, text in enumerate(f, 1):
                if n == line:
                    return text.rstrip("\n")
    except OSError:
        return None
    return None


def cancel_compile(running: dict, src: str) -> bool:
    """Stop the compile of `src` still running (a newer save makes it useless)."""
    p = running.get(src)
    if p is None or p.poll() is not None:
        return False
    p.cancelled = True
    p.kill()
    return True


def read_depfile(path: str) -> list[str]:
    """The prerequisites make-style depfile `path` lists (the source and its headers)."""
    try:
        with open(path) as f:
            text = f.read().replace("\\\n", " ")
    except OSError:
        return []
    _, _, deps = text.partition(":")
    return [d.replace("\\ ", " ") for d in shlex.split(deps.replace("\\ ", "\0")) if d] if deps else []


def options_key(args, cc: str | None) -> str:
    """What makes a link state unusable when it changes: the compiler, flags, library
    directories, -E.  Not the list of inputs: an added or deleted source file is an
    update (see `_object_changes`)."""
    blob = json.dumps([__version__, cc, args.cflags, args.lib_dirs, args.export_dynamic])
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def _same_items(manifest: dict, args) -> bool:
    """The manifest was written for this command line's sources and link items."""
    return (manifest.get("link_items") == list(args.link_items)
            and manifest.get("source_list") == [os.path.abspath(s) for s in args.sources])


def _object_changes(old_inputs: list[str], inputs: list[str]) -> tuple[list[str], list[str]] | None:
    """(objects added, objects removed) going from `old_inputs` to `inputs`, when that
    is all that changed (a source file added or deleted): the inputs both lists have
    are in the same order, and only `.o` files come or go.  None otherwise (inputs
    reordered, a library added or removed: a full link)."""
    old, new = set(old_inputs), set(inputs)
    added = [p for p in inputs if p not in old]
    removed = [p for p in old_inputs if p not in new]
    if [p for p in inputs if p in old] != [p for p in old_inputs if p in new] \
            or any(not p.endswith(".o") for p in added + removed):
        return None
    return added, removed


def build(args) -> None:
    out = args.output
    sdir = st.state_dir(out)
    fault = FaultInjector()
    cc = find_cc() if args.sources else None
    okey = options_key(args, cc)
    private.private_dir(sdir)          # a symlink planted there is refused before any use
    # an update cut short is finished first, before anything looks at the output
    if os.path.exists(os.path.join(sdir, "journal")):
        if st.replay_journal(sdir, out, fault):
            _say(args, f"finished an interrupted update of {out}")
    # what a devlink killed while writing left behind
    st.remove_stale_temporaries(sdir)
    from devlink.output.writer import remove_stale_temporaries
    remove_stale_temporaries(out)
    manifest = st.load_manifest(sdir, notice=lambda m: print(f"devlink: {m}; relinking from scratch", file=sys.stderr))
    if manifest is not None and manifest.get("options") == okey and _same_items(manifest, args) \
            and _up_to_date(manifest, out):
        _say(args, f"{out} is up to date")
        return
    private.private_dir(os.path.join(sdir, "obj"))
    objects = _compile(args, cc, sdir, manifest if manifest and manifest.get("options") == okey else None)
    inputs = [objects[int(x[5:])] if x.startswith("@src:") else x for x in args.link_items]
    try:
        _link(args, inputs, out, sdir, okey, manifest, fault)
    except DevlinkError as e:
        raise name_sources(e, dict(zip(objects, args.sources))) from None


def name_sources(err: DevlinkError, sources: dict[str, str]) -> DevlinkError:
    """`err` with every object devlink compiled named by its source: the user wrote
    `u.c` and never sees `.devlink/u/obj/u-fc1645af.o`.  `sources`: object -> source
    as the user named it.  Attributes (`undefined` for the editor) are kept."""
    msg = str(err)
    for obj in sorted(sources, key=len, reverse=True):     # a path never matches inside a longer one
        msg = msg.replace(obj, sources[obj])
    if msg == str(err):
        return err
    named = DevlinkError(msg)
    named.__dict__.update(err.__dict__)
    return named


def _say(args, msg: str) -> None:
    if args.verbose:
        print(f"devlink: {msg}", file=sys.stderr)


def _up_to_date(manifest: dict, out: str) -> bool:
    for path, key in manifest.get("stats", {}).items():
        if list(st.stat_key(path) or ()) != key:
            return False
    stamp = st.read_stamp(out, manifest.get("stamp_offset", 0))
    return stamp is not None and stamp.hex() == manifest.get("stamp")


def _object_path(sdir: str, index: int, src: str) -> str:
    tag = hashlib.blake2b(os.path.abspath(src).encode(), digest_size=4).hexdigest()
    base = os.path.splitext(os.path.basename(src))[0]
    return os.path.join(sdir, "obj", f"{base}-{tag}.o")


def _compile(args, cc, sdir: str, manifest: dict | None) -> list[str]:
    """Compile the sources whose file or headers changed; returns the object paths."""
    old = (manifest or {}).get("sources", {})
    todo = []
    objects = []
    for i, src in enumerate(args.sources):
        obj = _object_path(sdir, i, src)
        objects.append(obj)
        entry = old.get(os.path.abspath(src))
        fresh = entry is not None and os.path.exists(obj) and all(
            list(st.stat_key(d) or ()) == key for d, key in entry.get("deps", {}).items())
        if not fresh:
            todo.append((src, obj))
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, len(todo)))) as pool:
            futures = [pool.submit(compile_source, cc, s, o, args.cflags, o[:-2] + ".d") for s, o in todo]
            for f in futures:
                f.result()
    return objects


def _link(args, inputs: list[str], out: str, sdir: str, okey: str, manifest: dict | None, fault) -> None:
    from devlink.link.incremental import NeedsFullLink, update_objects
    from devlink.link.inputs import check_input, load_input
    from devlink.link.linker import LinkOptions, Linker
    for p in inputs:
        if not p.startswith("-l"):
            check_input(p)           # the fresh link's checks, for the incremental path too
    hashes = {p: st.file_digest(p) for p in inputs if not p.startswith("-l")}
    moves = _object_changes(manifest.get("inputs") or [], inputs) if manifest is not None else None
    usable = manifest is not None and manifest.get("options") == okey and moves is not None and os.path.exists(out)
    if manifest is not None and not usable:
        why = ("the build options changed" if manifest.get("options") != okey else
               "the inputs were reordered, or a library added or removed" if moves is None else f"{out} is missing")
        _say(args, f"full relink: {why}")
    if usable:
        changed = {p: h for p, h in hashes.items() if manifest.get("hashes", {}).get(p) != h}
        if any(not p.endswith(".o") for p in changed):
            usable = False           # an archive or library changed: relink
    if usable:
        stamp = st.read_stamp(out, manifest.get("stamp_offset", 0))
        if stamp is None or stamp.hex() != manifest.get("stamp"):
            print(f"devlink: {out} does not match its link state (changed outside devlink, or an interrupted "
                  f"update); relinking from scratch", file=sys.stderr)
            usable = False
    if usable and not changed and not moves[1]:
        _save_manifest(sdir, args, inputs, hashes, okey, manifest["stamp_offset"], manifest["stamp"])
        return
    if usable:
        try:
            linker = st.load_state(sdir)
        except st.StateError as e:
            print(f"devlink: {e}; relinking from scratch", file=sys.stderr)
            linker = None
        if linker is not None:
            try:
                changes = {p: None for p in moves[1]}          # objects no longer linked
                for p in changed:
                    kind, changes[p] = load_input(p)
                    if kind != "object":
                        raise NeedsFullLink(f"{p} is no longer an object file")
                result = update_objects(linker, changes)
            except NeedsFullLink as e:
                _say(args, f"full relink: {e}")
            else:
                try:
                    _apply_update(linker, result, out, sdir, args, inputs, hashes, okey, fault)
                except StateNotSaved as e:        # the full link below says so (once)
                    _say(args, f"full relink: cannot save the link state in {sdir} ({e})")
                else:
                    _say(args, f"updated {out}: {result.summary()}")
                    return
    linker = Linker(LinkOptions(output=out, inputs=inputs, lib_dirs=args.lib_dirs,
                                export_dynamic=args.export_dynamic, cc=args.cc if hasattr(args, "cc") else None))
    image = linker.link()
    from devlink.output.writer import write_file
    write_file(out, image)
    del image
    linker.compact_state()
    stamp_sec = linker.outputs[".devlink.stamp"]
    try:
        st.commit_state(sdir, st.save_state(sdir, linker))
        _save_manifest(sdir, args, inputs, hashes, okey, stamp_sec.offset, linker.stamp_bytes().hex())
    except OSError as e:
        print(f"devlink: cannot save the link state in {sdir} ({e.strerror}); the next build links from scratch",
              file=sys.stderr)


class StateNotSaved(Exception):
    """The state folder cannot be written (the message says why): an update could not
    be made crash-safe, so nothing visible of it was written."""


def _apply_update(linker, result, out, sdir, args, inputs, hashes, okey, fault) -> None:
    """Invisible writes (unused room) straight away; the rest through a journal."""
    from devlink.output.writer import pwrite_all
    invisible = [w for w in result.writes if not w.visible]
    visible = [w for w in result.writes if w.visible]
    pwrite_all(out, invisible, fault=fault)
    linker.finish_update()
    tmp = None
    try:
        tmp = st.save_state(sdir, linker)
        fault("state")
        st.write_journal(sdir, visible, result.file_size)
    except OSError as e:
        # nothing visible changed yet: the output is still the old program
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise StateNotSaved(e.strerror or str(e)) from None
    fault("journal")
    st.commit_state(sdir, tmp)
    stamp_sec = linker.outputs[".devlink.stamp"]
    _save_manifest(sdir, args, inputs, hashes, okey, stamp_sec.offset, linker.stamp_bytes().hex())
    fault("manifest")
    st.replay_journal(sdir, out, fault)


def _save_manifest(sdir, args, inputs, hashes, okey, stamp_offset, stamp) -> None:
    sources = {}
    stats = {}
    for i, src in enumerate(args.sources):
        obj = _object_path(sdir, i, src)
        deps = read_depfile(obj[:-2] + ".d") or [src]
        dep_stats = {os.path.abspath(d): list(st.stat_key(d) or ()) for d in deps}
        sources[os.path.abspath(src)] = {"obj": obj, "deps": dep_stats}
        stats.update(dep_stats)
    for p in inputs:
        if not p.startswith("-l") and p not in {s["obj"] for s in sources.values()}:
            stats[os.path.abspath(p)] = list(st.stat_key(p) or ())
    st.save_manifest(sdir, {"options": okey, "inputs": inputs, "hashes": hashes, "sources": sources,
                            "link_items": list(args.link_items),
                            "source_list": [os.path.abspath(s) for s in args.sources],
                            "stats": stats, "stamp_offset": stamp_offset, "stamp": stamp})

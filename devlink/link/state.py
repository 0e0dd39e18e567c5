"""The link state kept between runs, under `.devlink/<output>/` next to the output.

- `manifest`: small, read on every build: format version, the link's id and
  generation, the build options, and every input with its size, mtime and content hash
  (JSON). A build whose inputs did not change (by size and mtime, then by content) and
  whose output still carries the manifest's stamp has nothing to do, and never imports
  numpy.
- `state.pickle`: the whole in-memory link state (`Linker`), for incremental updates.
- `journal`: the visible writes of an update in progress (see `apply_update`).

Each file is a frame: magic, format version, this user's MAC (devlink.private) over the
magic, the version and the body.  The MAC is checked before the body is decoded, so a
file planted in the folder (pickle runs code) or written by another user is never
decoded; it is treated like a corrupt, foreign or old-format one: the program is
relinked from scratch with a one-line notice.

Only this module and `devlink.output.writer` touch these files.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import struct
import sys
import threading

from devlink import private

STATE_VERSION = 6
STATE_MAGIC = b"DLST"
MANIFEST_MAGIC = b"DLMF"
JOURNAL_MAGIC = b"DLJR"
MANIFEST_NAME = "manifest"
#: magic, version, MAC
FRAME_HEAD = 8 + private.MAC_SIZE


def frame(magic: bytes, body) -> list:
    """The pieces of a framed file: magic, version, MAC over both and the body."""
    head = struct.pack("<4sI", magic, STATE_VERSION)
    tag = private.mac(magic, head, body)
    if tag is None:
        raise OSError(0, private.key_problem())
    return [head, tag, body]


def unframe(magic: bytes, raw, path: str, what: str):
    """The body of a framed file, or StateError saying why it cannot be used."""
    raw = memoryview(raw)
    if len(raw) < FRAME_HEAD or bytes(raw[:4]) != magic:
        raise StateError(f"{path} is not a devlink {what}")
    if struct.unpack_from("<I", raw, 4)[0] != STATE_VERSION:
        raise StateError(f"{path} is from another devlink version")
    if private.key() is None:
        raise StateError(private.key_problem())
    if not private.verify(magic, raw[8:FRAME_HEAD], raw[:8], raw[FRAME_HEAD:]):
        raise StateError(f"{path} was not written by this user's devlink, or is damaged")
    return raw[FRAME_HEAD:]


def state_dir(output: str) -> str:
    out = os.path.abspath(output)
    return os.path.join(os.path.dirname(out), ".devlink", os.path.basename(out))


def file_digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def stat_key(path: str) -> tuple[int, int, int, int] | None:
    """What says a file may have changed: size, mtime, inode and ctime.  A copy (`cp -a`)
    or a restore that keeps size and mtime still gets a new inode and ctime, and ctime
    cannot be set back by a program (git's index compares the same fields)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


# --- manifest -------------------------------------------------------------------------------

def load_manifest(sdir: str, notice=None) -> dict | None:
    """The manifest, or None; `notice(message)` hears why an existing one is unusable."""
    path = os.path.join(sdir, MANIFEST_NAME)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        if notice:
            notice(f"{path} cannot be read ({e.strerror})")
        return None
    try:
        m = json.loads(bytes(unframe(MANIFEST_MAGIC, raw, path, "manifest")))
    except StateError as e:
        if notice:
            notice(str(e))
        return None
    except ValueError:
        m = None
    if not isinstance(m, dict):
        if notice:
            notice(f"{path} is not a devlink manifest")
        return None
    if "home" not in m:
        if notice:
            notice(f"{path} is from another devlink version")
        return None
    if m["home"] != home_of(sdir):
        if notice:
            notice(f"the link state in {sdir} was made in {m['home']} (a copied or moved project)")
        return None
    return m


def home_of(sdir: str) -> str:
    """The state folder's real path, kept in its manifest: a state found elsewhere (a
    copied or moved project) names other files, and is not used."""
    return os.path.realpath(sdir)


def save_manifest(sdir: str, manifest: dict) -> None:
    manifest = dict(manifest, home=home_of(sdir))
    _atomic_write(os.path.join(sdir, MANIFEST_NAME), frame(MANIFEST_MAGIC, json.dumps(manifest).encode()))


#: temporary files of this module: NAME.PID.tmp
_TEMPORARY = re.compile(r"^(state\.pickle|manifest|journal)\.(\d+)\.tmp$")


def remove_stale_temporaries(sdir: str) -> None:
    """Remove the temporary files a devlink killed while writing left in `sdir`."""
    private.remove_stale_temporaries(sdir, _TEMPORARY)


def read_stamp(output: str, offset: int, size: int = 32) -> bytes | None:
    try:
        with open(output, "rb") as f:
            f.seek(offset)
            return f.read(size)
    except OSError:
        return None


# --- the pickled link state -------------------------------------------------------------

def _deep(fn):
    """Run `fn` where deep recursion is safe: pickling the link state descends through
    objects -> atoms -> output sections -> atoms of other objects, about ten levels per
    object, far past the default limit and the main thread's stack."""
    result, error = [], []

    def run():
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 2_000_000))
        try:
            result.append(fn())
        except BaseException as e:     # re-raised in the caller's thread
            error.append(e)
        finally:
            sys.setrecursionlimit(old)

    previous = threading.stack_size(1 << 30)
    try:
        t = threading.Thread(target=run, name="devlink-state")
        t.start()
        t.join()
    finally:
        threading.stack_size(previous)
    if error:
        raise error[0]
    return result[0]


def save_state(sdir: str, linker) -> str:
    """Write the state to a temporary file; returns its path (renamed by commit_state)."""
    private.private_dir(sdir)
    blob = _deep(lambda: pickle.dumps(linker, protocol=pickle.HIGHEST_PROTOCOL))
    tmp = os.path.join(sdir, f"state.pickle.{os.getpid()}.tmp")
    _write_pieces(tmp, frame(STATE_MAGIC, blob))
    return tmp


def commit_state(sdir: str, tmp: str) -> None:
    os.replace(tmp, os.path.join(sdir, "state.pickle"))


class StateError(Exception):
    """The saved state cannot be used; the message says why (for a one-line notice)."""


def load_state(sdir: str):
    path = os.path.join(sdir, "state.pickle")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        raise StateError("no saved link state") from None
    # the MAC before pickle: only bytes this user's devlink wrote are ever unpickled
    blob = unframe(STATE_MAGIC, raw, path, "state file")
    try:
        linker = _deep(lambda: pickle.loads(blob))
    except Exception as e:   # a damaged pickle can raise nearly anything
        raise StateError(f"{path} could not be read ({type(e).__name__})") from None
    from devlink.link.linker import Linker
    if not isinstance(linker, Linker):
        raise StateError(f"{path} holds no devlink link state")
    try:
        linker.restore_after_load()
    except Exception as e:
        raise StateError(f"{path} could not be restored ({type(e).__name__})") from None
    return linker


# --- applying an update with a journal ------------------------------------------------------

def _write_pieces(path: str, pieces, fsync: bool = False) -> None:
    """A new private file (a link planted at `path` is removed, never followed)."""
    fd = private.create_private(path)
    try:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: str, pieces, fsync: bool = False) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        _write_pieces(tmp, pieces, fsync)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_journal(sdir: str, writes: list, file_size: int) -> str:
    """The visible writes of an update, checksummed; replayed if an update is cut short."""
    body = bytearray()
    body += struct.pack("<QI", file_size, len(writes))
    for w in writes:
        body += struct.pack("<QI", w.offset, len(w.data))
        body += w.data
    path = os.path.join(sdir, "journal")
    _atomic_write(path, frame(JOURNAL_MAGIC, body), fsync=True)
    return path


def replay_journal(sdir: str, output: str, fault=None) -> bool:
    """Finish an interrupted update. Returns True if a journal was replayed."""
    path = os.path.join(sdir, "journal")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return False
    try:
        body = unframe(JOURNAL_MAGIC, raw, path, "journal")
    except StateError:
        os.unlink(path)          # written only partly (the update had not started), or not ours
        return False
    file_size, n = struct.unpack_from("<QI", body, 0)
    pos = 12
    fd = os.open(output, os.O_WRONLY)
    try:
        for _ in range(n):
            off, length = struct.unpack_from("<QI", body, pos)
            pos += 12
            os.pwrite(fd, body[pos:pos + length], off)
            pos += length
            if fault:
                fault("replay")
        os.ftruncate(fd, file_size)
    finally:
        os.close(fd)
    os.unlink(path)
    return True

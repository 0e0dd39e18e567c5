"""The link state kept between runs, under `.devlink/<output>/` next to the output.

- `manifest.json`: small, read on every build: format version, the link's id and
  generation, the build options, and every input with its size, mtime and content hash.
  A build whose inputs did not change (by size and mtime, then by content) and whose
  output still carries the manifest's stamp has nothing to do, and never imports numpy.
- `state.pickle`: the whole in-memory link state (`Linker`), for incremental updates.
  Written with a checksum; a corrupt, foreign or old-format state is detected and the
  program is relinked from scratch with a one-line notice.
- `journal`: the visible writes of an update in progress (see `apply_update`).

Only this module and `devlink.output.writer` touch these files.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import sys
import threading

STATE_VERSION = 5
JOURNAL_MAGIC = b"DLJRNL01"


def state_dir(output: str) -> str:
    out = os.path.abspath(output)
    return os.path.join(os.path.dirname(out), ".devlink", os.path.basename(out))


def file_digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def stat_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


# --- manifest -------------------------------------------------------------------------------

def load_manifest(sdir: str, notice=None) -> dict | None:
    """The manifest, or None; `notice(message)` hears why an existing one is unusable."""
    path = os.path.join(sdir, "manifest.json")
    try:
        with open(path) as f:
            m = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        if notice:
            notice(f"{path} is corrupt")
        return None
    if not isinstance(m, dict) or m.get("version") != STATE_VERSION:
        if notice:
            notice(f"{path} is from another devlink version" if isinstance(m, dict) else f"{path} is not a devlink manifest")
        return None
    return m


def save_manifest(sdir: str, manifest: dict) -> None:
    manifest = dict(manifest, version=STATE_VERSION)
    _atomic_write(os.path.join(sdir, "manifest.json"), json.dumps(manifest, indent=1).encode())


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
    os.makedirs(sdir, exist_ok=True)
    blob = _deep(lambda: pickle.dumps(linker, protocol=pickle.HIGHEST_PROTOCOL))
    digest = hashlib.blake2b(blob, digest_size=16).digest()
    tmp = os.path.join(sdir, f"state.pickle.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<4sI", b"DLST", STATE_VERSION) + digest)
        f.write(blob)
    return tmp


def commit_state(sdir: str, tmp: str) -> None:
    os.replace(tmp, os.path.join(sdir, "state.pickle"))


class StateError(Exception):
    """The saved state cannot be used; the message says why (for a one-line notice)."""


def load_state(sdir: str):
    path = os.path.join(sdir, "state.pickle")
    try:
        with open(path, "rb") as f:
            head = f.read(24)
            blob = f.read()
    except OSError:
        raise StateError("no saved link state") from None
    if len(head) < 24 or head[:4] != b"DLST":
        raise StateError(f"{path} is not a devlink state file")
    version = struct.unpack_from("<I", head, 4)[0]
    if version != STATE_VERSION:
        raise StateError(f"{path} is from another devlink version")
    if hashlib.blake2b(blob, digest_size=16).digest() != head[8:24]:
        raise StateError(f"{path} is corrupt (checksum mismatch)")
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

def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_journal(sdir: str, writes: list, file_size: int) -> str:
    """The visible writes of an update, checksummed; replayed if an update is cut short."""
    body = bytearray()
    body += struct.pack("<QI", file_size, len(writes))
    for w in writes:
        body += struct.pack("<QI", w.offset, len(w.data))
        body += w.data
    digest = hashlib.blake2b(bytes(body), digest_size=16).digest()
    path = os.path.join(sdir, "journal")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(JOURNAL_MAGIC + digest + bytes(body))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def replay_journal(sdir: str, output: str, fault=None) -> bool:
    """Finish an interrupted update. Returns True if a journal was replayed."""
    path = os.path.join(sdir, "journal")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return False
    if not raw.startswith(JOURNAL_MAGIC) or hashlib.blake2b(raw[24:], digest_size=16).digest() != raw[8:24]:
        os.unlink(path)          # written only partly: the update had not started
        return False
    body = memoryview(raw)[24:]
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

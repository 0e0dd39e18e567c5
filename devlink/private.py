"""What devlink keeps in a project folder: private, never reached through a symlink,
and authenticated before it is read back.

A project folder is input from whoever made it (a repository, a tarball, a shared
folder), so a `.devlink/` that came with it must not make devlink do anything but
ignore it:

- Every file devlink reads back from `.devlink/` (link state, manifest, journal, DWARF
  cache) carries a MAC, keyed blake2b under a per-user secret that never leaves the
  user's config folder (`$XDG_CONFIG_HOME/devlink/state-key`, 0600).  The MAC is checked
  over the raw bytes before anything is decoded (`pickle` runs code, so it must only ever
  see bytes this user's devlink wrote); a file that fails it was written by another user
  or machine, or is damaged, and is treated as absent.  The `kind` is blake2b's
  personalisation, so a file of one kind is never accepted as another.
- `.devlink/` and every folder under it are real folders owned by the user, mode 0700
  (`private_dir`); a symlink or a folder of another user there is refused with a
  one-line error, so nothing devlink writes can land outside the project.
- Files are written 0600 through a fresh temporary file (O_EXCL|O_NOFOLLOW) renamed into
  place (`write_private`), or opened with O_NOFOLLOW (`open_private`), so a symlink
  planted at a file's name is replaced or refused, never written through.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading

from devlink.errors import DevlinkError

STATE_DIR_NAME = ".devlink"
KEY_SIZE = 32
MAC_SIZE = 32

_key: bytes | None = None
_key_error: str | None = None


def key_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "devlink", "state-key")


def _read_key(path: str) -> bytes | None:
    """The key in `path` if it is a private regular file of ours of the right size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077 \
                or st.st_size != KEY_SIZE:
            return None           # readable by others (or not ours): a forger may know it
        data = os.read(fd, KEY_SIZE + 1)
        return data if len(data) == KEY_SIZE else None
    finally:
        os.close(fd)


def _create_key(path: str) -> bytes:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, os.urandom(KEY_SIZE))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        try:
            os.link(tmp, path)        # the first process to get here wins (make -j)
        except FileExistsError:
            if _read_key(path) is None:
                os.replace(tmp, path)  # an unusable key is replaced: what it signed is distrusted
                tmp = None
    finally:
        if tmp is not None:
            os.unlink(tmp)
    key = _read_key(path)
    if key is None:
        raise OSError(f"{path} is not a private file")
    return key


def key() -> bytes | None:
    """This user's secret (created on first use), or None when it cannot be kept
    (then nothing is trusted and `key_problem()` says why)."""
    global _key, _key_error
    if _key is None and _key_error is None:
        path = key_path()
        try:
            _key = _read_key(path) or _create_key(path)
        except OSError as e:
            _key_error = f"cannot keep devlink's key in {path} ({e.strerror or e})"
    return _key


def key_problem() -> str | None:
    key()
    return _key_error


def forget_key() -> None:
    """Read the key again on next use (tests switch users by $XDG_CONFIG_HOME)."""
    global _key, _key_error
    _key = _key_error = None


def mac(kind: bytes, *chunks) -> bytes | None:
    """The MAC of `chunks` as a file of `kind` (b"state", b"journal"...); None without a key."""
    k = key()
    if k is None:
        return None
    h = hashlib.blake2b(digest_size=MAC_SIZE, key=k, person=kind)
    for c in chunks:
        h.update(c)
    return h.digest()


def verify(kind: bytes, tag, *chunks) -> bool:
    """`tag` is this user's MAC of `chunks`; compared in constant time."""
    import hmac
    expected = mac(kind, *chunks)
    return expected is not None and hmac.compare_digest(expected, bytes(tag))


def seal(kind: bytes, body: bytes) -> bytes:
    """MAC + body, for `unseal`.  Raises OSError when there is no key."""
    tag = mac(kind, body)
    if tag is None:
        raise OSError(0, key_problem())
    return tag + body


def unseal(kind: bytes, raw) -> memoryview | None:
    """The body of a `seal`ed file, or None if this user's devlink did not write it."""
    raw = memoryview(raw)
    if len(raw) < MAC_SIZE or not verify(kind, raw[:MAC_SIZE], raw[MAC_SIZE:]):
        return None
    return raw[MAC_SIZE:]


# --- folders and files ----------------------------------------------------------------------

def _check_dir(path: str, st) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise DevlinkError(f"{path} is a symbolic link; devlink keeps its files only in a real folder "
                           f"of its own: remove the link")
    if not stat.S_ISDIR(st.st_mode):
        raise DevlinkError(f"{path} is not a folder; remove it so devlink can keep its files there")
    if st.st_uid != os.getuid():
        raise DevlinkError(f"{path} belongs to another user; remove it so devlink can keep its files there")


def private_dir(path: str) -> str:
    """Make sure `path` exists as real folders of ours, mode 0700, from its `.devlink`
    component down; folders above are created normally.  Outside a `.devlink` folder
    only a missing `path` is created 0700 (an existing folder keeps its mode).  Returns
    `path`."""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    if STATE_DIR_NAME not in parts:
        _makedirs(path, 0o700)
        _check_dir(path, os.lstat(path))
        return path
    top = len(parts) - 1 - parts[::-1].index(STATE_DIR_NAME)
    parent = os.sep.join(parts[:top]) or os.sep
    _makedirs(parent, 0o777)
    current = parent
    for name in parts[top:]:
        current = os.path.join(current, name)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            try:
                os.mkdir(current, 0o700)
            except FileExistsError:
                pass                  # made by a concurrent build: checked below
            except OSError as e:
                raise DevlinkError(f"cannot create the folder {current}: {e.strerror}; "
                                   f"check that its parent is writable") from None
            st = os.lstat(current)
        _check_dir(current, st)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(current, 0o700)   # made by an older devlink, or by mkdir under a umask
    return path


def _makedirs(path: str, mode: int) -> None:
    try:
        os.makedirs(path, mode=mode, exist_ok=True)
    except OSError as e:
        raise DevlinkError(f"cannot create the folder {path}: {e.strerror}; check that it is writable") from None


def write_private(path: str, data, mode: int = 0o600, fsync: bool = False) -> None:
    """Write `data` to `path` through a temporary file renamed into place (a symlink at
    `path` is replaced, not followed)."""
    tmp = f"{path}.{os.getpid()}.{threading.get_native_id()}.tmp"
    fd = create_private(tmp, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


def copy_private(src: str, path: str, mode: int = 0o600) -> None:
    """Copy the file `src` to `path` like `write_private` (kernel-side, no buffer)."""
    tmp = f"{path}.{os.getpid()}.{threading.get_native_id()}.tmp"
    with open(src, "rb") as f:
        fd = create_private(tmp, mode)
        try:
            size, off = os.fstat(f.fileno()).st_size, 0
            while off < size:
                n = os.sendfile(fd, f.fileno(), off, size - off)
                if n == 0:
                    break
                off += n
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
    os.replace(tmp, path)


def create_private(path: str, mode: int = 0o600) -> int:
    """A new file at `path` (a leftover or planted entry there is removed first)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, mode)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, flags, mode)


def open_private(path: str, flags: int, mode: int = 0o600) -> int:
    """os.open that refuses a symlink at `path` with a one-line error."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == 40 and os.path.islink(path):      # ELOOP: a symlink was planted there
            raise DevlinkError(f"{path} is a symbolic link; devlink does not write through links "
                               f"in its folder: remove it") from None
        raise


def clear_for_output(path: str) -> None:
    """Remove whatever is at `path` before a tool (the compiler) writes it, so a symlink
    planted there is not written through."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise DevlinkError(f"{path} is a folder; remove it") from None
    except OSError as e:
        raise DevlinkError(f"cannot replace {path}: {e.strerror}; check that {os.path.dirname(path)} "
                           f"is writable") from None


# --- folders in shared places (/tmp, $XDG_RUNTIME_DIR) ----------------------------------
# Any local user can create `/tmp/devlink-1000` before user 1000 does, so such a folder
# is never trusted by its name: an existing one must be a real folder owned by us;
# when it is not, devlink uses a fresh folder of its own (`mkdtemp`, made 0700
# atomically) instead.

def shared_base() -> str:
    """Where per-user runtime folders go: $XDG_RUNTIME_DIR, else the temp folder."""
    return os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()


def is_private(path: str) -> bool:
    """`path` is a directory (not a symlink) owned by this user, closed to others."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def shared_private_dir(name: str, base: str | None = None) -> tuple[str, bool]:
    """(folder, fresh): `base/name` made or verified private, or, when another user owns
    that name (or it is not a plain folder), a new folder `base/name-XXXXXX` made for
    this call (`fresh` True: the caller removes it when done)."""
    base = base or shared_base()
    path = os.path.join(base, name)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise DevlinkError(f"cannot create the private folder {path}: {e.strerror}; "
                           f"set XDG_RUNTIME_DIR or TMPDIR to a folder you own") from None
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            if st.st_mode & 0o077:
                os.chmod(path, 0o700)          # ours: close it (our own umask made it wider)
            if is_private(path):
                return path, False
    except OSError:
        pass
    try:
        return tempfile.mkdtemp(prefix=name + "-", dir=base), True
    except OSError as e:
        raise DevlinkError(f"{path} belongs to another user and a private folder cannot be made in {base} "
                           f"({e.strerror}); set XDG_RUNTIME_DIR or TMPDIR to a folder you own") from None


# --- temporary files of killed processes ------------------------------------------------

def remove_stale_temporaries(folder: str, pattern) -> None:
    """Remove the files of `folder` whose name matches `pattern` (a compiled regex whose
    last group is a pid) and whose pid no longer runs: what a devlink killed while
    writing left behind.  A running devlink's files are left alone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = pattern.match(name)
        if m and not pid_alive(int(m.group(m.lastindex))):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False          # left by an earlier process with our pid: nothing writes it yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return True


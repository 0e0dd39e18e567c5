"""The one module that writes into a running process: `/proc/PID/mem`.

`/proc/PID/mem` can write read-only text on this kernel without attaching
(`CONFIG_PROC_MEM_ALWAYS_FORCE`, measured in baselines.md), and costs about 1 µs per
write with the file kept open.  `process_vm_writev` cannot write text at all.

A cell flip is one aligned 8-byte `pwrite`.  The kernel copies it with a plain memcpy,
which is not *guaranteed* to be a single store; the shared patch area (an atomic store
in devlink's own mapping, hotpatch/shared.py) is the way that guarantees it.  Both
apply the same plan.  This is the fallback, used when the program's runtime is not
active (linked without it, or the area is turned off).

`stop_threads=True` (opt-in) stops every thread of the child around a patch
(`PTRACE_SEIZE` + `PTRACE_INTERRUPT` per `/proc/PID/task` entry, then detach), so no
thread runs while the bytes change.  Its price: a thread blocked in a system call
(`epoll_wait`, `sigtimedwait`, `nanosleep` without restart) sees it return EINTR.
"""

from __future__ import annotations

import ctypes
import os

from devlink.collector import collector_paused
from devlink.errors import DevlinkError
from devlink.hotpatch.plan import apply_in_order

PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
_WALL = 0x40000000


class ProcMem:
    def __init__(self, pid: int, stop_threads: bool = False):
        self.pid = pid
        self.stop_threads = stop_threads
        #: writes made (tests check that the shared path makes none for code and cells)
        self.writes = 0
        try:
            self.fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
        except OSError as e:
            raise DevlinkError(f"cannot open the memory of process {pid}: {e.strerror}; "
                               f"devlink needs to run as the same user as the program") from None

    def write(self, address: int, data: bytes) -> None:
        self.writes += 1
        view = memoryview(data)
        while view:
            try:
                n = os.pwrite(self.fd, view, address)
            except OSError as e:
                raise DevlinkError(f"cannot write {len(view)} bytes at {address:#x} in process {self.pid}: "
                                   f"{e.strerror}") from None
            view = view[n:]
            address += n

    def read(self, address: int, size: int) -> bytes:
        try:
            return os.pread(self.fd, size, address)
        except OSError as e:
            raise DevlinkError(f"cannot read {size} bytes at {address:#x} in process {self.pid}: {e.strerror}") from None

    def flip_cell(self, address: int, target: int) -> None:
        if address & 7:
            raise DevlinkError(f"GOT cell {address:#x} is not 8-byte aligned; this is a devlink bug")
        self.writes += 1
        os.pwrite(self.fd, target.to_bytes(8, "little"), address)

    def apply(self, plan) -> None:
        """Bytes first, then the cells (invariant 5), with no collector pause between the
        first write and the last flip."""
        with collector_paused():
            stopped = self._stop() if self.stop_threads else []
            try:
                apply_in_order(self, plan)
            finally:
                for tid in stopped:
                    _libc().ptrace(PTRACE_DETACH, tid, None, None)

    def _stop(self) -> list[int]:
        """Seize and interrupt every thread; wait until each one has stopped."""
        libc = _libc()
        stopped = []
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{self.pid}/task")]
        except OSError as e:
            raise DevlinkError(f"cannot list the threads of process {self.pid}: {e.strerror}") from None
        for tid in tids:
            if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
                continue                  # a thread that just ended
            stopped.append(tid)
            libc.ptrace(PTRACE_INTERRUPT, tid, None, None)
        for tid in stopped:
            try:
                os.waitpid(tid, _WALL)
            except ChildProcessError:
                pass
        return stopped

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        _LIBC.ptrace.restype = ctypes.c_long
    return _LIBC

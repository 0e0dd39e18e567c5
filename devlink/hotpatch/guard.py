"""Crash guard: the running child, seized with ptrace so a fatal signal can be examined.

Why ptrace: after a patch, a crash must be reported with the faulting instruction
(`step+0x12`, generation 3), and only the tracer can read a dying thread's registers
and siginfo.  PTRACE_SEIZE (not ATTACH) stops the child for nothing but signal delivery
and group-stops, so a blocked `epoll_wait` is not disturbed by the guard or by patches
(`/proc/PID/mem` writes need no stop).  Every signal is re-injected unchanged.

Rules this module keeps:
- every ptrace call is made by the one tracer thread (the kernel ties a tracee to the
  thread that seized it); other threads talk to it through `_commands`;
- the guard owns `waitpid` for the child (ptrace stops are reported to the parent even
  without WUNTRACED, so Popen must not wait at the same time): `GuardedPopen` takes its
  exit status from the guard;
- the child is never left stopped or traced: `detach()` on request, on `close()`, at
  interpreter exit (atexit), and if the tracer thread fails.

The child runs in its own process group, so `waitpid(-pgid, __WALL)` sees all of its
threads and none of devlink's other children (compilers).  The tracer polls without
blocking (a blocking waitpid cannot be woken for a detach request without sending the
child a signal), 0.5 ms apart after activity and 5 ms when idle: a signal sent to the
child is delivered at most that much later.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import os
import signal
import subprocess
import threading
import time
import weakref
from dataclasses import dataclass, field

from devlink.errors import DevlinkError

PTRACE_CONT = 7
PTRACE_GETREGS = 12
PTRACE_DETACH = 17
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_O_TRACECLONE = 0x8
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_STOP = 128
WALL = 0x40000000

#: signals that kill with a fault address worth reporting
FAULT_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGTRAP, signal.SIGABRT,
                 signal.SIGSYS}
STOP_SIGNALS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
#: user_regs_struct (x86-64): 27 unsigned longs, rip is the 17th, rsp the 20th
REGS_WORDS, RIP_INDEX, RSP_INDEX = 27, 16, 19
#: how much of a faulting thread's stack is scanned for return addresses, and how many
#: callers are kept (a crash report names the first one in the program's code)
STACK_SCAN_BYTES = 64 * 1024
STACK_FRAMES = 32

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


class _PtraceError(OSError):
    pass


def _ptrace(request: int, tid: int, addr=None, data=None) -> int:
    r = _libc.ptrace(request, tid, addr, data)
    if r == -1:
        e = ctypes.get_errno()
        if e:
            raise _PtraceError(e, os.strerror(e))
    return r


@dataclass
class Fault:
    """What a thread was doing when a fault signal reached it."""

    tid: int
    signal: int
    code: int                 #: si_code (SEGV_MAPERR = 1, SEGV_ACCERR = 2, ...)
    address: int              #: si_addr: the data address (SIGSEGV/SIGBUS) or the instruction
    pc: int                   #: rip
    time: float
    #: (return address, the call's target or None) found on its stack, innermost first
    #: (stack scan: words that point into executable memory just after a call)
    frames: list = field(default_factory=list)
    #: the process's mappings at the fault (crash.Mapping), to name library code
    maps: list = field(default_factory=list)


class Guard:
    """Seizes a running child (all its threads) on a thread of its own."""

    def __init__(self, pid: int):
        self.pid = pid
        self.tracees: set[int] = set()
        #: exit status as Popen reports it (negative: killed by that signal); None: running
        self.returncode: int | None = None
        #: the last fault signal seen per thread, and the one that killed the process
        self.faults: dict[int, Fault] = {}
        self.fatal: Fault | None = None
        self.attached = threading.Event()
        self.finished = threading.Event()     # reaped, or detached
        self.detached = False
        self.error: str | None = None
        self._commands: list[tuple[str, object]] = []
        #: threads interrupted by `registers`, and where their (pc, sp) go
        self._want_registers: dict[int, tuple[threading.Event, dict]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"devlink-guard-{pid}", daemon=True)
        self._thread.start()
        if not self.attached.wait(5):
            raise DevlinkError(f"could not seize process {pid} for the crash guard (timed out)")
        if self.error is not None and not self.tracees and not _gone(pid):
            raise DevlinkError(f"could not seize process {pid} for the crash guard: {self.error}; "
                               f"run with --no-guard")
        _live.add(self)

    # --- requests from other threads -------------------------------------------------------
    def detach(self, timeout: float = 5.0) -> None:
        """Let the child go (it keeps running, e.g. for gdb); waitpid goes back to Popen."""
        if self.finished.is_set():
            return
        done = threading.Event()
        with self._lock:
            self._commands.append(("detach", done))
        self._wake.set()
        done.wait(timeout)
        self.finished.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def registers(self, tids: list[int], timeout: float = 0.2) -> dict[int, tuple[int, int]]:
        """(pc, sp) of threads `tids`, each stopped for a moment (PTRACE_INTERRUPT, read,
        continue).  Only for threads running in user space: a thread blocked in a system
        call would see the stop as EINTR (the caller reads those from /proc)."""
        if self.finished.is_set() or not tids:
            return {}
        done = threading.Event()
        out: dict[int, tuple[int, int]] = {}
        with self._lock:
            self._commands.append(("registers", (done, out, list(tids))))
        self._wake.set()
        done.wait(timeout)
        with self._lock:
            return dict(out)

    # --- the tracer thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._seize_all()
        except Exception as e:             # noqa: BLE001 - reported to the starting thread
            self.error = str(e)
        finally:
            self.attached.set()
        if not self.tracees:
            self.detached = True          # nothing traced (it had exited): Popen waits itself
            self.finished.set()
            return
        try:
            self._loop()
        except Exception as e:             # noqa: BLE001 - never leave the child traced
            self.error = f"{type(e).__name__}: {e}"
            self._detach_all()
        finally:
            self.finished.set()

    def _seize_all(self) -> None:
        """Seize every thread; threads made while we list them are seized by TRACECLONE
        (through their creator) or by the next listing."""
        while True:
            try:
                tids = {int(t) for t in os.listdir(f"/proc/{self.pid}/task")}
            except FileNotFoundError:
                return
            new = tids - self.tracees
            if not new:
                return
            for tid in sorted(new):
                try:
                    _ptrace(PTRACE_SEIZE, tid, None, PTRACE_O_TRACECLONE)
                    self.tracees.add(tid)
                except _PtraceError as e:
                    if e.errno == errno.ESRCH:
                        continue                   # exited meanwhile
                    if e.errno == errno.EPERM and self.tracees:
                        self.tracees.add(tid)      # already ours: a clone of a seized thread
                        continue
                    raise

    def _loop(self) -> None:
        quiet = 0
        while True:
            if self._commands:
                with self._lock:
                    commands, self._commands = self._commands, []
                for name, done in commands:
                    if name == "detach":
                        self._detach_all()
                        done.set()
                        return
                    if name == "registers":
                        self._interrupt_for_registers(*done)
            if self._reap():
                quiet = 0
                if self.returncode is not None:
                    return
                continue
            quiet += 1
            self._wake.wait(0.0005 if quiet < 40 else 0.005)
            self._wake.clear()

    def _waitpid(self, flags: int) -> tuple[int, int]:
        try:
            return os.waitpid(-self.pid, WALL | flags)
        except ChildProcessError:
            return 0, 0

    def _reap(self) -> bool:
        """Handle every event waiting; True if there was one."""
        any_event = False
        while True:
            tid, status = self._waitpid(os.WNOHANG)
            if tid == 0:
                return any_event
            any_event = True
            self._event(tid, status)
            if self.returncode is not None:
                return True

    def _event(self, tid: int, status: int) -> None:
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            self.tracees.discard(tid)
            if tid == self.pid:
                self.returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
                if os.WIFSIGNALED(status):
                    hits = [f for f in self.faults.values() if f.signal == os.WTERMSIG(status)]
                    self.fatal = max(hits, key=lambda f: f.time) if hits else None
            return
        if not os.WIFSTOPPED(status):
            return
        self.tracees.add(tid)
        sig = os.WSTOPSIG(status)
        event = status >> 16
        try:
            if event == PTRACE_EVENT_CLONE:
                self.tracees.add(self._event_msg(tid))
                _ptrace(PTRACE_CONT, tid, None, 0)
            elif event == PTRACE_EVENT_STOP:
                if sig in STOP_SIGNALS:
                    _ptrace(PTRACE_LISTEN, tid, None, 0)      # group-stop: stay stopped until SIGCONT
                else:
                    if tid in self._want_registers:           # stopped by `registers`
                        self._read_registers(tid)
                    _ptrace(PTRACE_CONT, tid, None, 0)        # (or a new thread's first stop)
            elif event:
                _ptrace(PTRACE_CONT, tid, None, 0)
            else:
                if sig in FAULT_SIGNALS:
                    self.faults[tid] = self._fault(tid, sig)
                _ptrace(PTRACE_CONT, tid, None, sig)          # re-inject every signal
        except _PtraceError as e:
            if e.errno != errno.ESRCH:                        # ESRCH: killed meanwhile
                raise

    def _interrupt_for_registers(self, done: threading.Event, out: dict, tids: list[int]) -> None:
        for tid in tids:
            if tid in self.tracees and tid not in self._want_registers:
                try:
                    _ptrace(PTRACE_INTERRUPT, tid)
                    self._want_registers[tid] = (done, out)
                except _PtraceError:
                    pass
        if not any(d is done for d, _ in self._want_registers.values()):
            done.set()

    def _read_registers(self, tid: int) -> None:
        done, out = self._want_registers.pop(tid)
        regs = (ctypes.c_ulong * REGS_WORDS)()
        try:
            _ptrace(PTRACE_GETREGS, tid, None, ctypes.addressof(regs))
            with self._lock:
                out[tid] = (regs[RIP_INDEX], regs[RSP_INDEX])
        except _PtraceError:
            pass
        if not any(d is done for d, _ in self._want_registers.values()):
            done.set()

    def _event_msg(self, tid: int) -> int:
        msg = ctypes.c_ulong()
        _ptrace(PTRACE_GETEVENTMSG, tid, None, ctypes.addressof(msg))
        return msg.value

    def _fault(self, tid: int, sig: int) -> Fault:
        info = (ctypes.c_uint8 * 128)()
        regs = (ctypes.c_ulong * REGS_WORDS)()
        code = address = pc = 0
        try:
            _ptrace(PTRACE_GETSIGINFO, tid, None, ctypes.addressof(info))
            raw = bytes(info)
            code = int.from_bytes(raw[8:12], "little", signed=True)
            address = int.from_bytes(raw[16:24], "little")
            _ptrace(PTRACE_GETREGS, tid, None, ctypes.addressof(regs))
            pc = regs[RIP_INDEX]
        except _PtraceError:
            pass
        fault = Fault(tid, sig, code, address, pc, time.monotonic())
        try:
            fault.maps, fault.frames = stack_frames(tid, regs[RSP_INDEX])
        except OSError:
            pass                  # the report names the pc alone
        return fault

    def _detach_all(self) -> None:
        """Stop each thread with PTRACE_INTERRUPT, then detach it, re-injecting a signal it
        was about to get.  A group-stopped process stays stopped (as without us)."""
        self.detached = True
        pending = set()
        for tid in list(self.tracees):
            try:
                _ptrace(PTRACE_INTERRUPT, tid)
                pending.add(tid)
            except _PtraceError:
                self.tracees.discard(tid)
        deadline = time.monotonic() + 5
        while pending and time.monotonic() < deadline:
            tid, status = self._waitpid(os.WNOHANG)
            if tid == 0:
                time.sleep(0.0005)
                continue
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                pending.discard(tid)
                self._event(tid, status)
                continue
            if not os.WIFSTOPPED(status):
                continue
            sig, event = os.WSTOPSIG(status), status >> 16
            inject = sig if event == 0 else 0
            if event == PTRACE_EVENT_CLONE:
                try:
                    new = self._event_msg(tid)
                    pending.add(new)           # auto-attached: it will report a stop
                except _PtraceError:
                    pass
            try:
                _ptrace(PTRACE_DETACH, tid, None, inject)
            except _PtraceError:
                pass
            pending.discard(tid)
            self.tracees.discard(tid)
        self.tracees.clear()


def stack_frames(tid: int, sp: int) -> tuple[list, list[tuple[int, int | None]]]:
    """The mappings and the return addresses on the stack of stopped thread `tid`
    (a scan, not an unwind: libraries keep no frame pointers, and their unwind
    tables are not ours; a word counts when it points into executable memory right
    after a call instruction)."""
    from devlink.hotpatch.crash import mapping_at, parse_maps
    from devlink.link.arch.x86_64 import call_target, follows_call
    with open(f"/proc/{tid}/maps") as f:
        maps = parse_maps(f.read())
    stack = mapping_at(maps, sp)
    if stack is None:
        return maps, []
    fd = os.open(f"/proc/{tid}/mem", os.O_RDONLY)
    try:
        raw = os.pread(fd, min(STACK_SCAN_BYTES, stack.end - sp), sp)
        import numpy as np
        words = np.frombuffer(raw, "<u8", len(raw) // 8)
        inside = np.zeros(len(words), bool)
        for m in maps:
            if m.executable:
                inside |= (words > np.uint64(m.start)) & (words < np.uint64(m.end))
        frames = []
        for word in words[inside].tolist():
            try:
                before = os.pread(fd, 7, word - 7)
            except OSError:          # the bytes before lie in no mapping
                continue
            if follows_call(before):
                frames.append((word, call_target(before, word)))
                if len(frames) >= STACK_FRAMES:
                    break
        return maps, frames
    finally:
        os.close(fd)


def _gone(pid: int) -> bool:
    """The process has exited (a zombie or reaped): nothing to seize, not an error."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        return True


class GuardedPopen(subprocess.Popen):
    """A Popen whose exit status comes from its Guard while one is attached (the guard
    owns waitpid; a Popen wait at the same time could swallow a ptrace stop)."""

    guard: Guard | None = None

    def _guarded(self) -> bool:
        g = self.guard
        if g is None:
            return False
        if g.finished.is_set() and g.detached and g.returncode is None:
            return False                  # detached while running: Popen waits again
        return True

    def _internal_poll(self, *args, **kwargs):
        if not self._guarded():
            return super()._internal_poll(*args, **kwargs)
        if self.returncode is None and self.guard.finished.is_set():
            self.returncode = self.guard.returncode
        return self.returncode

    def _wait(self, timeout):
        if not self._guarded():
            return super()._wait(timeout)
        if not self.guard.finished.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        if self.guard.returncode is None:         # detached meanwhile
            return super()._wait(timeout)
        self.returncode = self.guard.returncode
        return self.returncode


_live: "weakref.WeakSet[Guard]" = weakref.WeakSet()


@atexit.register
def _detach_at_exit() -> None:
    for g in list(_live):
        try:
            g.detach(timeout=2)
        except Exception:                 # noqa: BLE001 - best effort at exit
            pass

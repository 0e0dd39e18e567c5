"""Naming a crash: an address as `symbol+offset` of the atom (current or past) that
holds it, with the generation that placed it.  Pure.

While a child runs, code is only appended (invariant 5), so every function atom placed
since the child's layout was linked keeps its bytes in the child: old generations'
atoms stay in the map, and address ranges do not overlap.
"""

from __future__ import annotations

import bisect
import signal
from dataclasses import dataclass, field

#: si_code meanings for the signals a crash report names
_SEGV_CODES = {1: "address not mapped", 2: "invalid permissions"}
_BUS_CODES = {1: "invalid address alignment", 2: "nonexistent physical address", 3: "object-specific error"}
_FPE_CODES = {1: "integer divide by zero", 2: "integer overflow", 3: "floating-point divide by zero"}
_ILL_CODES = {1: "illegal opcode", 2: "illegal operand", 4: "illegal trap", 5: "privileged opcode"}


class AddressMap:
    """Code ranges -> (name, generation), newest placement first for equal starts."""

    def __init__(self):
        self._starts: list[int] = []
        self._entries: list[tuple[int, int, str, int]] = []      # (start, end, name, generation)

    def add(self, start: int, size: int, name: str, generation: int) -> None:
        if start is None or size <= 0:
            return
        i = bisect.bisect_right(self._starts, start)
        self._starts.insert(i, start)
        self._entries.insert(i, (start, start + size, name, generation))

    def extend(self, entries) -> None:
        """Add many (start, size, name, generation) at once (one sort)."""
        rows = [(st, st + size, name, gen) for st, size, name, gen in entries if st is not None and size > 0]
        self._entries = sorted(self._entries + rows, key=lambda e: e[0])
        self._starts = [e[0] for e in self._entries]

    def lookup(self, address: int) -> tuple[str, int, int] | None:
        """(name, offset, generation) of the latest atom containing `address`."""
        i = bisect.bisect_right(self._starts, address)
        best = None
        while i > 0:
            i -= 1
            start, end, name, gen = self._entries[i]
            if start <= address < end and (best is None or gen > best[2]):
                best = (name, address - start, gen)
            if address - start > 1 << 24:
                break                     # far below: no function is this large
        return best

    def __len__(self) -> int:
        return len(self._entries)


def symbolize(amap: AddressMap, address: int) -> str:
    hit = amap.lookup(address)
    if hit is None:
        return f"{address:#x}"
    name, off, gen = hit
    return f"{name}+{off:#x} (generation {gen})"


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


@dataclass
class CrashReport:
    signal: int
    pid: int
    fault_address: int | None       #: si_addr
    pc: int | None                  #: the faulting instruction
    code: int = 0
    where: str = "?"                #: pc as symbol+offset (generation)
    child_generation: int = 0       #: the generation the child was running
    last_patch: int | None = None   #: the generation of the last patch applied to it
    last_patch_changed: list[str] = field(default_factory=list)
    action: str = ""                #: what devlink did about it (filled by the session)

    def message(self, program: str) -> str:
        sig = signal_name(self.signal)
        codes = {signal.SIGSEGV: _SEGV_CODES, signal.SIGBUS: _BUS_CODES, signal.SIGFPE: _FPE_CODES,
                 signal.SIGILL: _ILL_CODES}.get(self.signal, {})
        what = f" ({codes[self.code]})" if self.code in codes else ""
        text = f"{program} (pid {self.pid}) was killed by {sig}{what}"
        if self.pc is not None:
            if self.signal in (signal.SIGSEGV, signal.SIGBUS) and self.fault_address is not None:
                text += f" accessing {self.fault_address:#x}"
            text += f" in {self.where}"
        if self.last_patch is not None:
            changed = ", ".join(self.last_patch_changed[:6]) or "nothing named"
            text += f"; the last patch was generation {self.last_patch} ({changed})"
        else:
            text += f"; no patch was applied to it (generation {self.child_generation})"
        if self.action:
            text += f"; {self.action}"
        return text


def crash_report(fault, signal_number: int, pid: int, amap: AddressMap, child_generation: int,
                 last_patch: tuple[int, list[str]] | None) -> CrashReport:
    """A report for a child killed by `signal_number`; `fault` is the guard's Fault (or
    None when the signal came without one, e.g. a kill from outside)."""
    r = CrashReport(signal_number, pid, None, None, child_generation=child_generation)
    if fault is not None:
        r.fault_address, r.pc, r.code = fault.address, fault.pc, fault.code
        r.where = symbolize(amap, fault.pc)
    if last_patch is not None:
        r.last_patch, r.last_patch_changed = last_patch[0], list(last_patch[1])
    return r

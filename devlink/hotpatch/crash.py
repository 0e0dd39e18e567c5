"""Naming a crash: an address as `symbol+offset` of the atom (current or past) that
holds it, with the generation that placed it; an address in a library as its function
there (`abort+0x16 in libc.so.6`, read by devlink.hotpatch.libsyms), followed by the
callers back to the first frame in the program's own code.  Pure but for that reader.

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


@dataclass(frozen=True)
class Mapping:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    offset: int              #: file offset of `start`
    executable: bool
    path: str                #: "" for anonymous memory


def parse_maps(text: str) -> list[Mapping]:
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, _, hi = parts[0].partition("-")
        try:
            out.append(Mapping(int(lo, 16), int(hi, 16), int(parts[2], 16), "x" in parts[1],
                               parts[5].strip() if len(parts) > 5 else ""))
        except ValueError:
            continue
    return out


def mapping_at(maps: list[Mapping], address: int) -> Mapping | None:
    for m in maps:
        if m.start <= address < m.end:
            return m
    return None


def name_address(address: int, amap: AddressMap, maps: list[Mapping], function_at=None,
                 program_function=None) -> tuple[str, bool, int | None]:
    """(what `address` is, whether it is in the program's own functions, the start of
    its function when known): `value+0x19 (generation 2)`, or a piece the map does not
    hold by the program's own symbol table (`program_function(address)`: `value.cold+0x5`),
    or `abort+0x16 in libc.so.6` through the mapped file's symbols (`function_at(path,
    file offset)`), or `libc.so.6+0x2639f`, or the bare address."""
    hit = amap.lookup(address)
    if hit is not None:
        name, off, gen = hit
        return f"{name}+{off:#x} (generation {gen})", name != STUBS, address - off
    fn = program_function(address) if program_function is not None else None
    if fn is not None:
        return f"{fn[0]}+{fn[1]:#x}", True, address - fn[1]
    m = mapping_at(maps, address)
    if m is None or not m.path or m.path.startswith("["):
        return f"{address:#x}", False, None
    file_offset = address - m.start + m.offset
    lib = m.path.rsplit("/", 1)[-1]
    fn = function_at(m.path, file_offset) if function_at is not None else None
    if fn is None:
        return f"{lib}+{file_offset:#x}", False, None
    return f"{fn[0]}+{fn[1]:#x} in {lib}", False, address - fn[1]


#: the AddressMap name of the program's stub area (a call into it goes through a stub)
STUBS = "devlink stubs"


def walk_frames(pc: int, frames: list[tuple[int, int | None]], amap: AddressMap, maps: list[Mapping],
                function_at=None, program_function=None):
    """(address, name, in the program's code) of the pc and then of the callers found on
    the stack (`frames`: (return address, direct call target or None)), up to the first
    one in the program's own code.  A scan also finds words left over from earlier
    calls, so the next frame is the first one whose direct call reaches the function
    below it (or a stub: the program calls libraries through its stubs); only when
    none does, the next word is taken as it is.  A caller is named by its call (the
    byte before the return address)."""
    def reaches(target, start) -> bool:
        if target is None:
            return False
        hit = amap.lookup(target)
        return target == start or (hit is not None and hit[0] == STUBS)

    name, own, start = name_address(pc, amap, maps, function_at, program_function)
    yield pc, name, own
    i = 0
    while not own and i < len(frames):
        if start is not None:
            i = next((k for k in range(i, len(frames)) if reaches(frames[k][1], start)), i)
        address = frames[i][0] - 1
        i += 1
        name, own, start = name_address(address, amap, maps, function_at, program_function)
        yield address, name, own


def frame_names(pc: int, frames: list[tuple[int, int | None]], amap: AddressMap, maps: list[Mapping],
                function_at=None, program_function=None, most: int = 4) -> tuple[str, list[str]]:
    """(the faulting instruction's name, the callers that lead back to the program's
    own code: at most `most` library frames, then the program's frame when found)."""
    walk = walk_frames(pc, frames, amap, maps, function_at, program_function)
    _, where, own = next(walk)
    chain: list[str] = []
    for _, name, own in walk:
        if own:
            return where, chain[:most] + [name]
        chain.append(name)
    return where, chain[:most]


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
    #: for a pc outside the program's functions: the callers back to the program's code
    #: (the last one is in the program when it was found)
    called_from: list[str] = field(default_factory=list)
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
            if self.called_from:
                text += ", called from " + " from ".join(self.called_from)
        if self.last_patch is not None:
            changed = ", ".join(self.last_patch_changed[:6]) or "nothing named"
            text += f"; the last patch was generation {self.last_patch} ({changed})"
        else:
            text += f"; no patch was applied to it (generation {self.child_generation})"
        if self.action:
            text += f"; {self.action}"
        return text


def crash_report(fault, signal_number: int, pid: int, amap: AddressMap, child_generation: int,
                 last_patch: tuple[int, list[str]] | None, program: str | None = None) -> CrashReport:
    """A report for a child killed by `signal_number`; `fault` is the guard's Fault (or
    None when the signal came without one, e.g. a kill from outside); `program`: the
    output file, whose symbol table names code the map does not hold."""
    r = CrashReport(signal_number, pid, None, None, child_generation=child_generation)
    if fault is not None:
        from devlink.hotpatch.libsyms import function_at, function_at_address
        own = (lambda address: function_at_address(program, address)) if program else None
        r.fault_address, r.pc, r.code = fault.address, fault.pc, fault.code
        r.where, r.called_from = frame_names(fault.pc, fault.frames, amap, fault.maps, function_at, own)
    if last_patch is not None:
        r.last_patch, r.last_patch_changed = last_patch[0], list(last_patch[1])
    return r

"""The shared patch area: patches as stores into memory the child maps (invariant 5).

devlink holds a memfd with the bytes of the program's patchable ranges, at their file
offsets; the runtime linked into the program (devlink/runtime/devlink_rt.c) maps those
ranges `MAP_SHARED|MAP_FIXED` over its own pages in its first constructor (same bytes,
so nothing changes then).  From then on a patch is a memcpy into devlink's read+write
mapping of the memfd, and each GOT cell flip is one aligned 8-byte store: no system
call, no stopped thread, no EINTR, no writable+executable page in the child, and a
process the program forks shares every later patch.

The ranges (`patch_ranges`, pure):
* the code room of `.text` from the first page after the code present at launch (new
  code is only appended there while a child runs; the code present at launch keeps its
  private pages, so gdb can still put breakpoints in it), read+execute;
* the whole stub segment (`.plt`, stubs are appended for new functions), read+execute;
* the whole read-only data segment (`.rodata`, unwind tables: new string literals,
  edited `const` tables and new unwind entries reach forked children too), read;
* the whole cell segment (`.devlink.cells`), read: the stubs only read their cells.
Writable data stays private (a forked child has its own variables) and is written
through `/proc/PID/mem`, as is anything else outside these ranges.

Until the runtime reports that it mapped the area (its pid in the header page after
the ranges), writes go to both the memfd and `/proc/PID/mem`, so whichever memory the
child ends up with holds every patch.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from dataclasses import dataclass

from devlink.elf import consts as C
from devlink.collector import collector_paused
from devlink.errors import DevlinkError
from devlink.hotpatch.plan import apply_in_order

PAGE = 4096
PROT_READ, PROT_EXEC = 1, 4


@dataclass(frozen=True, slots=True)
class Range:
    vaddr: int
    size: int
    offset: int          #: file offset in the executable, and in the memfd
    prot: int


def _page_up(v: int) -> int:
    return (v + PAGE - 1) & ~(PAGE - 1)


def reserve_code_page(linker) -> None:
    """Move the append cursor of `.text` to the next page, so code appended while a
    child runs lands in pages the patch area maps (the code before it stays private)."""
    text = linker.outputs.get(".text")
    if text is not None:
        text.size = min(_page_up(text.addr + text.size) - text.addr, text.limit)


def patch_ranges(linker) -> list[Range]:
    """The page-aligned ranges of the program that the patch area maps.  Pure."""
    out = []
    text = linker.outputs.get(".text")
    if text is not None:
        start, end = _page_up(text.addr + text.size), text.addr + text.limit
        if end > start and not end & (PAGE - 1):
            out.append(Range(start, end - start, text.offset + start - text.addr, PROT_READ | PROT_EXEC))
    for name, prot in ((".plt", PROT_READ | PROT_EXEC), (".eh_frame", PROT_READ), (".devlink.cells", PROT_READ)):
        sec = linker.outputs.get(name)
        if sec is None:
            continue
        seg = sec.segment
        if seg.filesz != seg.memsz or seg.vaddr & (PAGE - 1) or seg.offset & (PAGE - 1):
            continue                        # not wholly file-backed: stays private
        if name != ".devlink.cells" and any(s.sh_flags & C.SHF_WRITE for s in seg.sections):
            continue                        # the program's writable data: never shared
        out.append(Range(seg.vaddr, _page_up(seg.memsz), seg.offset, prot))
    return out


class SharedPatchArea:
    """The memfd, devlink's mapping of it, and the plan applier that uses it."""

    def __init__(self, ranges: list[Range], program: str, link_id: str):
        self.ranges = ranges
        self.link_id = link_id
        self.header = _page_up(max(r.offset + r.size for r in ranges))
        self.size = self.header + PAGE
        self.fd = os.memfd_create("devlink-patch-area", os.MFD_CLOEXEC)
        self.mem = None                       # ProcMem, set by attach
        self.child = None
        self.status = 0                       # the runtime's report: pid, or < 0 on failure
        self.shared_writes = 0
        try:
            os.ftruncate(self.fd, self.size)
            self._copy_from(program)
            self.map = mmap.mmap(self.fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            os.close(self.fd)
            raise DevlinkError(f"cannot create the shared patch area for {program!r}: {e.strerror}") from None
        self.view = memoryview(self.map)
        self.cells = self.view.cast("Q")
        #: (start, end, memfd offset - vaddr) per range, for the write path
        self.spans = [(r.vaddr, r.vaddr + r.size, r.offset - r.vaddr) for r in ranges]

    def _copy_from(self, program: str) -> None:
        """The program's bytes in each range; pages of zeros stay holes (room)."""
        chunk = 1 << 16
        with open(program, "rb") as f:
            for r in self.ranges:
                for off in range(r.offset, r.offset + r.size, chunk):
                    data = os.pread(f.fileno(), min(chunk, r.offset + r.size - off), off)
                    if data.count(0) != len(data):
                        os.pwrite(self.fd, data, off)

    def env_value(self) -> str:
        """DEVLINK_PATCH_AREA for the child (format: devlink_rt.c)."""
        spans = "".join(f"{r.vaddr:x},{r.size:x},{r.offset:x},{r.prot:x};" for r in self.ranges)
        return f"{self.fd:x}:{self.link_id}:{self.header:x}:{spans}"

    def attach(self, mem, child, wait: float = 2.0) -> "SharedPatchArea":
        """Take the child's ProcMem (for writes outside the ranges, and until the runtime
        is active), and give its runtime up to `wait` seconds to map the area: it runs
        before main, so this is normally a millisecond."""
        self.mem, self.child = mem, child
        end = time.monotonic() + wait
        while not self.poll() and child.poll() is None and time.monotonic() < end:
            time.sleep(0.0005)
        return self

    def poll(self) -> bool:
        """Whether the child's runtime mapped the area (raises if it tried and failed)."""
        if self.status <= 0:
            self.status = struct.unpack_from("<q", self.map, self.header)[0]
            if self.status < 0:
                what, err = divmod(-self.status, 1000)
                raise DevlinkError(f"the program's devlink runtime could not map the shared patch area "
                                   f"(range {what}, errno {err}); set DEVLINK_NO_RUNTIME=1 to link without it")
        return self.status > 0

    @property
    def active(self) -> bool:
        return self.status > 0

    def read(self, address: int, size: int) -> bytes:
        for start, end, delta in self.spans:
            if start <= address and address + size <= end:
                return bytes(self.view[address + delta:address + delta + size])
        return self.mem.read(address, size)

    def write(self, address: int, data: bytes) -> None:
        """Bytes into the memfd where they fall in a range, the rest through ProcMem (and
        everything through ProcMem too while the runtime is not active)."""
        n = len(data)
        for start, end, delta in self.spans:
            if start <= address and address + n <= end:
                p = address + delta
                self.view[p:p + n] = data
                self.shared_writes += 1
                if not self.active:
                    self.mem.write(address, data)
                return
        for start, end, delta in self.spans:
            lo, hi = max(start, address), min(end, address + n)
            if lo < hi:                       # straddles a range's edge: split it
                self.write(address, data[:lo - address]) if lo > address else None
                self.write(lo, data[lo - address:hi - address])
                self.write(hi, data[hi - address:]) if hi < address + n else None
                return
        if n and not (self.active and self.mem.read(address, n) == data):
            # an update re-emits the unchanged functions of an edited object with their
            # same bytes: reading first leaves code that may be running untouched
            self.mem.write(address, data)

    def flip_cell(self, address: int, target: int) -> None:
        for start, end, delta in self.spans:
            if start <= address < end:
                p = address + delta
                if p & 7:
                    raise DevlinkError(f"GOT cell {address:#x} is not 8-byte aligned; this is a devlink bug")
                # One aligned 8-byte store: memoryview packs a 'Q' item with a
                # constant-size 8-byte memcpy, which compiles to a single `mov`; an aligned
                # 8-byte mov is atomic on x86-64, so no thread sees half a pointer.
                self.cells[p >> 3] = target
                if not self.active:
                    self.mem.flip_cell(address, target)
                return
        self.mem.flip_cell(address, target)

    def apply(self, plan) -> None:
        """Bytes first, cells last (invariant 5).  x86-TSO: other cores see this
        thread's stores in program order, so a thread that loads a flipped cell sees
        the code it points at; no fence is needed.  No collector pause in between."""
        if not self.active:
            self.poll()
        with collector_paused():
            apply_in_order(self, plan)

    def close(self) -> None:
        if self.fd < 0:
            return
        self.cells.release()
        self.view.release()
        self.map.close()
        os.close(self.fd)
        self.fd = -1
        if self.mem is not None:
            self.mem.close()

"""The one module that writes into a running process: `/proc/PID/mem`.

`/proc/PID/mem` can write read-only text on this kernel without attaching
(`CONFIG_PROC_MEM_ALWAYS_FORCE`, measured in baselines.md), and costs about 1 µs per
write with the file kept open.  `process_vm_writev` cannot write text at all.

A cell flip is one aligned 8-byte `pwrite`.  The kernel copies it with a plain memcpy,
which is not *guaranteed* to be a single store; the shared patch area (an atomic store
in devlink's own mapping) is the way that guarantees it.  Both apply the same plan.
"""

from __future__ import annotations

import os

from devlink.errors import DevlinkError


class ProcMem:
    def __init__(self, pid: int):
        self.pid = pid
        try:
            self.fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
        except OSError as e:
            raise DevlinkError(f"cannot open the memory of process {pid}: {e.strerror}; "
                               f"devlink needs to run as the same user as the program") from None

    def write(self, address: int, data: bytes) -> None:
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
        os.pwrite(self.fd, target.to_bytes(8, "little"), address)

    def apply(self, plan) -> None:
        """Bytes first, then the cells (invariant 5), with no collector pause between the
        first write and the last flip."""
        import gc
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for w in plan.writes:
                self.write(w.address, w.data)
            for address, target in plan.cells:
                self.flip_cell(address, target)
        finally:
            if was_enabled:
                gc.enable()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

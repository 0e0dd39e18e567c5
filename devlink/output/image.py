"""The output file as pieces in memory: headers, each section's bytes, the section
header table, and where each goes in the file.

Sections' reserved room (virtual address space kept free for growth during a session)
is never held in memory; on disk it is a hole, so a file with megabytes of code room
costs only the bytes that are used.  Pure data: nothing here opens a file.
"""

from __future__ import annotations

import numpy as np


class OutputImage:
    def __init__(self, sections: list, headers_size: int, shoff: int, shdrs_size: int):
        #: sections whose bytes are in `content` (allocated non-NOBITS and non-allocated)
        self.sections = [s for s in sections if not s.is_nobits]
        off = 0
        self.buf_off: dict[str, int] = {}
        for s in self.sections:
            self.buf_off[s.name] = off
            off += s.size
        self.content = bytearray(off)
        #: the same bytes as a numpy array, for vectorized relocation writes
        self.array = np.frombuffer(self.content, np.uint8)
        self.headers = bytearray(headers_size)
        self.shoff = shoff
        self.shdrs = bytearray(shdrs_size)
        self.file_size = shoff + shdrs_size

    def view(self, sec) -> memoryview:
        """The bytes of one section (writable)."""
        off = self.buf_off[sec.name]
        return memoryview(self.content)[off:off + sec.size]

    def put(self, sec, data, at: int = 0) -> None:
        off = self.buf_off[sec.name] + at
        self.content[off:off + len(data)] = data

    def chunks(self):
        """(file offset, bytes) of everything that is not a hole, in file order."""
        yield 0, memoryview(self.headers)
        mv = memoryview(self.content)
        for s in self.sections:
            if s.size:
                off = self.buf_off[s.name]
                yield s.offset, mv[off:off + s.size]
        yield self.shoff, memoryview(self.shdrs)

    def to_bytes(self) -> bytes:
        """The whole file (holes as zeros), for tests and in-memory use."""
        out = bytearray(self.file_size)
        for off, data in self.chunks():
            out[off:off + len(data)] = data
        return bytes(out)

"""x86-64 relocations, relaxations and stub code: the only module that names R_X86_64_*.

Written with the psABI's names: S (symbol address), A (addend), P (place), G (GOT entry
address), GOT (GOT base), Z (symbol size), TP (thread pointer: end of the TLS block).

Scanning turns each input relocation into one of a few *kinds* (how to compute the value
and how wide the field is) plus, for the relaxable sequences (GOTPCRELX, TLS GD/LD),
byte edits of the instructions.  Applying the kinds is then vectorized over whole
tables of relocations (numpy), with every value range-checked before it is written.
"""

from __future__ import annotations

import numpy as np

from devlink.errors import DevlinkError

R_X86_64_NONE = 0
R_X86_64_64 = 1
R_X86_64_PC32 = 2
R_X86_64_GOT32 = 3
R_X86_64_PLT32 = 4
R_X86_64_COPY = 5
R_X86_64_GLOB_DAT = 6
R_X86_64_JUMP_SLOT = 7
R_X86_64_RELATIVE = 8
R_X86_64_GOTPCREL = 9
R_X86_64_32 = 10
R_X86_64_32S = 11
R_X86_64_16 = 12
R_X86_64_PC16 = 13
R_X86_64_8 = 14
R_X86_64_PC8 = 15
R_X86_64_DTPMOD64 = 16
R_X86_64_DTPOFF64 = 17
R_X86_64_TPOFF64 = 18
R_X86_64_TLSGD = 19
R_X86_64_TLSLD = 20
R_X86_64_DTPOFF32 = 21
R_X86_64_GOTTPOFF = 22
R_X86_64_TPOFF32 = 23
R_X86_64_PC64 = 24
R_X86_64_GOTOFF64 = 25
R_X86_64_GOTPC32 = 26
R_X86_64_GOT64 = 27
R_X86_64_GOTPCREL64 = 28
R_X86_64_GOTPC64 = 29
R_X86_64_GOTPLT64 = 30
R_X86_64_PLTOFF64 = 31
R_X86_64_SIZE32 = 32
R_X86_64_SIZE64 = 33
R_X86_64_GOTPC32_TLSDESC = 34
R_X86_64_TLSDESC_CALL = 35
R_X86_64_TLSDESC = 36
R_X86_64_IRELATIVE = 37
R_X86_64_GOTPCRELX = 41
R_X86_64_REX_GOTPCRELX = 42

RELOC_NAMES = {v: k for k, v in globals().items() if k.startswith("R_X86_64_")}

# Dynamic relocation types the generic linker asks for, by role.
DYN_GLOB_DAT = R_X86_64_GLOB_DAT
DYN_JUMP_SLOT = R_X86_64_JUMP_SLOT
DYN_COPY = R_X86_64_COPY
DYN_IRELATIVE = R_X86_64_IRELATIVE
DYN_RELATIVE = R_X86_64_RELATIVE


def reloc_name(r_type: int) -> str:
    """R_X86_64_NAME, or `type N (unknown to x86-64)` (messages say "relocation" first)."""
    return RELOC_NAMES.get(r_type, f"type {r_type} (unknown to x86-64)")


# --- kinds: how a relocation's value is computed --------------------------------------------
# Each kind is (formula, width, check); formulas use the arrays named in `compute_values`.
K_NONE = 0
K_ABS64 = 1         # S + A                (8 bytes)
K_ABS32 = 2         # S + A                (4 bytes, zero-extended)
K_ABS32S = 3        # S + A                (4 bytes, sign-extended)
K_PC32 = 4          # S + A - P            (4 bytes, signed)
K_PC64 = 5          # S + A - P            (8 bytes)
K_GOTPCREL = 6      # G + A - P            (4 bytes, signed)
K_GOTOFF64 = 7      # S + A - GOT          (8 bytes)
K_GOTPC32 = 8       # GOT + A - P          (4 bytes, signed)
K_GOTPC64 = 9       # GOT + A - P          (8 bytes)
K_SIZE32 = 10       # Z + A                (4 bytes)
K_SIZE64 = 11       # Z + A                (8 bytes)
K_TPOFF32 = 12      # S + A - TP           (4 bytes, signed)
K_TPOFF64 = 13      # S + A - TP           (8 bytes)
K_DTPOFF32 = 14     # S + A - TLS start    (4 bytes, signed)
K_DTPOFF64 = 15     # S + A - TLS start    (8 bytes)
K_ABS16 = 16        # S + A                (2 bytes)
K_PC16 = 17         # S + A - P            (2 bytes, signed)
K_ABS8 = 18         # S + A                (1 byte)
K_PC8 = 19          # S + A - P            (1 byte, signed)
K_GOTTPOFF = 20     # G(tp) + A - P        (4 bytes, signed)
K_GOT32 = 21        # G + A - GOT          (4 bytes, signed)

KIND_WIDTH = {K_ABS64: 8, K_ABS32: 4, K_ABS32S: 4, K_PC32: 4, K_PC64: 8, K_GOTPCREL: 4,
              K_GOTOFF64: 8, K_GOTPC32: 4, K_GOTPC64: 8, K_SIZE32: 4, K_SIZE64: 8,
              K_TPOFF32: 4, K_TPOFF64: 8, K_DTPOFF32: 4, K_DTPOFF64: 8, K_ABS16: 2,
              K_PC16: 2, K_ABS8: 1, K_PC8: 1, K_GOTTPOFF: 4, K_GOT32: 4}
#: (low, high) inclusive range of each kind's value; None = any 64-bit value
KIND_RANGE = {K_ABS32: (0, 2**32 - 1), K_ABS32S: (-2**31, 2**31 - 1), K_PC32: (-2**31, 2**31 - 1),
              K_GOTPCREL: (-2**31, 2**31 - 1), K_GOTPC32: (-2**31, 2**31 - 1),
              K_SIZE32: (0, 2**32 - 1), K_TPOFF32: (-2**31, 2**31 - 1), K_DTPOFF32: (-2**31, 2**31 - 1),
              K_ABS16: (-2**15, 2**16 - 1), K_PC16: (-2**15, 2**15 - 1), K_ABS8: (-2**7, 2**8 - 1),
              K_PC8: (-2**7, 2**7 - 1), K_GOTTPOFF: (-2**31, 2**31 - 1), K_GOT32: (-2**31, 2**31 - 1)}
#: kinds whose target is a code address: a function entry there means "go to the stub"
ADDRESS_KINDS = (K_ABS64, K_ABS32, K_ABS32S, K_PC32, K_PC64, K_GOTOFF64)
#: kinds that read the symbol's GOT entry
GOT_KINDS = (K_GOTPCREL, K_GOT32)

#: the direct mapping of input types to kinds (types needing decisions are handled in scan)
DIRECT_KIND = {
    R_X86_64_NONE: K_NONE, R_X86_64_64: K_ABS64, R_X86_64_PC32: K_PC32, R_X86_64_PLT32: K_PC32,
    R_X86_64_32: K_ABS32, R_X86_64_32S: K_ABS32S, R_X86_64_16: K_ABS16, R_X86_64_PC16: K_PC16,
    R_X86_64_8: K_ABS8, R_X86_64_PC8: K_PC8, R_X86_64_PC64: K_PC64, R_X86_64_GOTOFF64: K_GOTOFF64,
    R_X86_64_GOTPC32: K_GOTPC32, R_X86_64_GOTPC64: K_GOTPC64, R_X86_64_SIZE32: K_SIZE32,
    R_X86_64_SIZE64: K_SIZE64, R_X86_64_TPOFF32: K_TPOFF32, R_X86_64_TPOFF64: K_TPOFF64,
    R_X86_64_DTPOFF32: K_DTPOFF32, R_X86_64_DTPOFF64: K_DTPOFF64, R_X86_64_GOTPCREL: K_GOTPCREL,
    R_X86_64_GOTPCRELX: K_GOTPCREL, R_X86_64_REX_GOTPCRELX: K_GOTPCREL, R_X86_64_GOTTPOFF: K_GOTTPOFF,
    R_X86_64_GOT32: K_GOT32,
}
#: input types that may need a relaxation decision or a special entry
GOT_TYPES = (R_X86_64_GOTPCREL, R_X86_64_GOTPCRELX, R_X86_64_REX_GOTPCRELX, R_X86_64_GOT32)
TLS_SEQUENCE_TYPES = (R_X86_64_TLSGD, R_X86_64_TLSLD)
#: initial exec: a GOT entry holds the variable's offset from the thread pointer
INITIAL_EXEC_TYPE = R_X86_64_GOTTPOFF
PC_RELATIVE_TYPES = (R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_PC64, R_X86_64_PC16, R_X86_64_PC8)
#: types whose bias to the instruction end is -4 (the field is the last 4 bytes)
ABSOLUTE_DATA_TYPES = (R_X86_64_64, R_X86_64_32, R_X86_64_32S)
UNSUPPORTED_HINT = {
    R_X86_64_GOTPC32_TLSDESC: "TLS descriptors (-mtls-dialect=gnu2) are not supported; build with the default -mtls-dialect=gnu",
    R_X86_64_TLSDESC_CALL: "TLS descriptors (-mtls-dialect=gnu2) are not supported; build with the default -mtls-dialect=gnu",
    R_X86_64_GOT64: "the large code model (-mcmodel=large) is not supported; build without it",
    R_X86_64_GOTPCREL64: "the large code model (-mcmodel=large) is not supported; build without it",
    R_X86_64_GOTPLT64: "the large code model (-mcmodel=large) is not supported; build without it",
    R_X86_64_PLTOFF64: "the large code model (-mcmodel=large) is not supported; build without it",
}


def unsupported_hint(r_type: int) -> str:
    """What to do about a relocation type devlink cannot apply."""
    hint = UNSUPPORTED_HINT.get(r_type)
    if hint:
        return hint
    if r_type not in RELOC_NAMES:
        return "the object is corrupt or not built for x86-64; rebuild it"
    return "devlink does not support it; report this with the object attached"


# --- stubs: `jmp *cell(%rip)` ---------------------------------------------------------------
STUB_SIZE = 8
STUB_ALIGN = 8
PAGE_SIZE = 4096
TRAP_INSN = b"\xcc"   # int3, fills padding


def write_stubs(buf: np.ndarray, stub_addrs: np.ndarray, cell_addrs: np.ndarray, base_addr: int) -> None:
    """Fill `buf` (the stub section, starting at `base_addr`) with `jmp *cell(%rip)` stubs."""
    n = len(stub_addrs)
    if not n:
        return
    rel = cell_addrs.astype(np.int64) - (stub_addrs.astype(np.int64) + 6)
    if rel.min() < -2**31 or rel.max() >= 2**31:
        raise DevlinkError("a stub cannot reach its GOT cell (more than 2 GiB apart); this is a devlink layout bug, please report it")
    recs = np.zeros((n, STUB_SIZE), np.uint8)
    recs[:, 0] = 0xFF
    recs[:, 1] = 0x25
    recs[:, 2:6] = rel.astype("<i4").view(np.uint8).reshape(n, 4)
    recs[:, 6:8] = 0xCC
    offs = (stub_addrs - base_addr).astype(np.int64)
    idx = offs[:, None] + np.arange(STUB_SIZE)
    buf[idx] = recs


def stub_bytes(stub_addr: int, cell_addr: int) -> bytes:
    rel = cell_addr - (stub_addr + 6)
    return b"\xff\x25" + rel.to_bytes(4, "little", signed=True) + b"\xcc\xcc"


# --- relaxations ----------------------------------------------------------------------------

def gotpcrel_relaxable(data: np.ndarray, field_pos: np.ndarray) -> np.ndarray:
    """Which GOTPCRELX fields (file positions in `data`) belong to
    `mov foo@GOTPCREL(%rip), %reg`, which can become `lea foo(%rip), %reg`."""
    op = data[field_pos - 2]
    modrm = data[field_pos - 1]
    return (op == 0x8B) & ((modrm & 0xC7) == 0x05)


#: the opcode that replaces `mov` (0x8b) in a relaxed GOTPCRELX load
LEA_OPCODE = 0x8D
RELAXABLE_GOT_TYPES = (R_X86_64_GOTPCRELX, R_X86_64_REX_GOTPCRELX)


def relax_tls_gd_to_le(data: memoryview, off: int, next_type: int | None) -> tuple[int, bytes, int] | None:
    """General dynamic -> local exec.

    `data16 lea x@tlsgd(%rip),%rdi; data16 data16 rex64 call __tls_get_addr@PLT` (16 bytes
    from off-4) becomes `mov %fs:0,%rax; lea x@tpoff(%rax),%rax`.  Returns (start, new
    bytes, offset of the new TPOFF32 field) or None if the sequence is not the ABI's.
    """
    start = off - 4
    if start < 0 or off + 12 > len(data):
        return None
    if bytes(data[start:start + 4]) != b"\x66\x48\x8d\x3d":
        return None
    tail = bytes(data[off + 4:off + 8])
    if tail == b"\x66\x66\x48\xe8" or tail[:2] == b"\xff\x15" or tail[:3] == b"\x66\x48\xff":
        # call *__tls_get_addr@GOTPCREL(%rip) is `66 48 ff 15` or `ff 15` with prefixes
        pass
    else:
        return None
    return start, b"\x64\x48\x8b\x04\x25\x00\x00\x00\x00\x48\x8d\x80\x00\x00\x00\x00", start + 12


def relax_tls_ld_to_le(data: memoryview, off: int) -> tuple[int, bytes] | None:
    """Local dynamic -> local exec.

    `lea x@tlsld(%rip),%rdi; call __tls_get_addr@PLT` (12 bytes from off-3) becomes
    `data16 data16 data16 mov %fs:0,%rax`; the DTPOFF32 offsets then become TP offsets.
    """
    start = off - 3
    if start < 0 or off + 9 > len(data):
        return None
    if bytes(data[start:start + 3]) != b"\x48\x8d\x3d":
        return None
    if data[off + 4] == 0xE8:
        return start, b"\x66\x66\x66\x64\x48\x8b\x04\x25\x00\x00\x00\x00"
    if bytes(data[off + 4:off + 6]) == b"\xff\x15":
        return start, b"\x66\x66\x66\x66\x64\x48\x8b\x04\x25\x00\x00\x00\x00"
    return None


def relax_tls_sequence(data: memoryview, off: int, r_type: int, next_type: int | None) -> tuple[int, bytes, int | None] | None:
    """A general- or local-dynamic sequence (`r_type` in TLS_SEQUENCE_TYPES) relaxed to
    local exec, the executable being the main module: (start, new bytes, offset of the
    new TP-offset field, or None for local dynamic, whose DTPOFF32 offsets become TP
    offsets), or None if the sequence is not the ABI's."""
    if r_type == R_X86_64_TLSGD:
        return relax_tls_gd_to_le(data, off, next_type)
    r = relax_tls_ld_to_le(data, off)
    return None if r is None else (r[0], r[1], None)


def local_dynamic_offsets_in_code(kinds: np.ndarray, types: np.ndarray, in_code: np.ndarray) -> None:
    """Local-dynamic TLS is always relaxed to local exec, so in code a DTPOFF32 is an
    offset from the thread pointer; in data and debug info it stays an offset in the
    TLS block."""
    kinds[in_code & (types == R_X86_64_DTPOFF32)] = K_TPOFF32


def takes_address(r_type: int, data, off: int) -> bool:
    """Whether a reference to a function at `off` takes its address (anything but the
    field of a direct `call rel32` or `jmp rel32`)."""
    if r_type == R_X86_64_PLT32:
        return False
    if r_type == R_X86_64_PC32:
        return not (off >= 1 and data[off - 1] in (0xE8, 0xE9))
    return True


def tls_tp(tls_addr: int, tls_memsz: int, tls_align: int) -> int:
    """The thread pointer for the executable's TLS block (variant II: TP is its end)."""
    align = max(tls_align, 1)
    return tls_addr + ((tls_memsz + align - 1) & ~(align - 1))


# --- applying kinds in bulk -----------------------------------------------------------------

def _kind_tables():
    """Per-kind lookup tables (indexed by kind; the last entry stands for any kind that
    is not one, e.g. -1, which is neither computed nor written)."""
    n = max(KIND_WIDTH) + 2
    width = np.zeros(n, np.int64)
    for k, w in KIND_WIDTH.items():
        width[k] = w
    low = np.full(n, np.iinfo(np.int64).min, np.int64)
    high = np.full(n, np.iinfo(np.int64).max, np.int64)
    for k, (lo, hi) in KIND_RANGE.items():
        low[k], high[k] = lo, hi
    # S + A and S + A - P are most of any table; every other kind is rare
    plain = np.zeros(n, bool)
    plain[[K_ABS64, K_ABS32, K_ABS32S, K_ABS16, K_ABS8]] = True
    pc = np.zeros(n, bool)
    pc[[K_PC32, K_PC64, K_PC16, K_PC8]] = True
    address = np.zeros(n, bool)
    address[list(ADDRESS_KINDS)] = True
    return width, low, high, plain | pc, pc, address


KIND_WIDTHS, KIND_LOW, KIND_HIGH, _COMMON_KIND, _PC_KIND, _ADDRESS_KIND = _kind_tables()


def kind_index(kind: np.ndarray) -> np.ndarray:
    """`kind` as indexes into the per-kind tables (anything else -> the last entry)."""
    # -1 (and anything below) indexes the last entry, as does anything past the end
    return np.clip(kind, -1, len(KIND_WIDTHS) - 1)


def address_kind_mask(kind: np.ndarray) -> np.ndarray:
    """Which rows' kinds take a code address (see ADDRESS_KINDS)."""
    return _ADDRESS_KIND[kind_index(kind)]


def compute_values(kind: np.ndarray, S: np.ndarray, A: np.ndarray, P: np.ndarray, G: np.ndarray,
                   Z: np.ndarray, got_base: int, tp: int, tls_start: int) -> np.ndarray:
    """The value of every relocation, as int64 (uint64 arithmetic wraps like the CPU)."""
    S = S.astype(np.int64, copy=False)
    ki = kind_index(kind)
    with np.errstate(over="ignore"):
        v = S + A
        np.subtract(v, P, out=v, where=_PC_KIND[ki])
        rare = np.flatnonzero(~_COMMON_KIND[ki])
        if len(rare):
            v[rare] = _rare_values(kind[rare], S[rare], A[rare], P[rare], G[rare], Z[rare],
                                   got_base, tp, tls_start)
    return v


def _rare_values(kind, S, A, P, G, Z, got_base: int, tp: int, tls_start: int) -> np.ndarray:
    """`compute_values` for the kinds other than S + A and S + A - P (0 for K_NONE)."""
    v = np.zeros(len(kind), np.int64)
    for k in np.unique(kind).tolist():
        sel = kind == k
        s, a, p = S[sel], A[sel], P[sel]
        if k in (K_GOTPCREL, K_GOTTPOFF):
            v[sel] = G[sel] + a - p
        elif k == K_GOT32:
            v[sel] = G[sel] + a - got_base
        elif k == K_GOTOFF64:
            v[sel] = s + a - got_base
        elif k in (K_GOTPC32, K_GOTPC64):
            v[sel] = got_base + a - p
        elif k in (K_SIZE32, K_SIZE64):
            v[sel] = Z[sel] + a
        elif k in (K_TPOFF32, K_TPOFF64):
            v[sel] = s + a - tp
        elif k in (K_DTPOFF32, K_DTPOFF64):
            v[sel] = s + a - tls_start
    return v


def check_ranges(kind: np.ndarray, values: np.ndarray, S: np.ndarray) -> int | None:
    """Index of the first relocation whose value does not fit its field, or None."""
    ki = kind_index(kind)
    bad = (values < KIND_LOW[ki]) | (values > KIND_HIGH[ki])
    idx = np.flatnonzero(bad)
    if len(idx):
        # a 32-bit absolute field also holds negative values of small symbols (S+A < 0)
        vals = values[idx]
        ok = (kind[idx] == K_ABS32) & (vals >= -2**31) & (S[idx].astype(np.int64) == 0)
        idx = idx[~ok]
    return int(idx[0]) if len(idx) else None


_FIELD_DTYPE = {8: "<u8", 4: "<u4", 2: "<u2", 1: "u1"}


def _field_view(buf: np.ndarray, width: int) -> np.ndarray:
    """`buf` seen as overlapping little-endian integers of `width` bytes, one starting at
    every byte: element i is the field at offset i, so a scatter of unaligned stores is
    one numpy assignment."""
    n = len(buf) - width + 1
    return np.ndarray((max(n, 0),), dtype=_FIELD_DTYPE[width], buffer=buf, offset=0, strides=(1,))


def write_values(buf: np.ndarray, pos: np.ndarray, kind: np.ndarray, values: np.ndarray) -> None:
    """Store every value little-endian at `buf[pos]`, with its kind's width."""
    width = KIND_WIDTHS[kind_index(kind)]
    for w in (4, 8, 2, 1):
        sel = np.flatnonzero(width == w)
        if not len(sel):
            continue
        view = _field_view(buf, w)
        if w == 8:
            view[pos[sel]] = values[sel].astype(np.uint64)
        else:
            view[pos[sel]] = (values[sel] & ((1 << (8 * w)) - 1)).astype(_FIELD_DTYPE[w])


# --- the trap a removed function's cell points to -------------------------------------------

def trap_code(message: bytes) -> bytes:
    """Position-independent code that writes `message` to stderr and raises SIGABRT.

    A removed function's cell points here, so a stale caller (a stored function pointer,
    or old code still running) fails loudly instead of running freed bytes:
        lea msg(%rip),%rsi; mov $len,%edx; mov $2,%edi; mov $1,%eax; syscall   # write
        mov $39,%eax; syscall; mov %eax,%edi; mov $6,%esi; mov $62,%eax; syscall  # kill(getpid(), SIGABRT)
        ud2
    """
    tail = (b"\xba" + len(message).to_bytes(4, "little")       # mov $len, %edx
            + b"\xbf\x02\x00\x00\x00"                           # mov $2, %edi
            + b"\xb8\x01\x00\x00\x00\x0f\x05"                   # mov $1, %eax; syscall
            + b"\xb8\x27\x00\x00\x00\x0f\x05"                   # mov $39, %eax; syscall
            + b"\x89\xc7\xbe\x06\x00\x00\x00"                   # mov %eax, %edi; mov $6, %esi
            + b"\xb8\x3e\x00\x00\x00\x0f\x05"                   # mov $62, %eax; syscall
            + b"\x0f\x0b")                                      # ud2
    rel = len(tail)                                             # the message follows the code
    return b"\x48\x8d\x35" + rel.to_bytes(4, "little", signed=True) + tail + message


# --- return addresses: stack scanning for crash reports ---------------------------------------

def call_target(before: bytes, ret: int) -> int | None:
    """The target of the `call rel32` that ends just before `ret` (`before`: the bytes
    before it), or None for an indirect call."""
    if len(before) >= 5 and before[-5] == 0xE8:
        return (ret + int.from_bytes(before[-4:], "little", signed=True)) & 0xFFFFFFFFFFFFFFFF
    return None


def follows_call(before: bytes) -> bool:
    """Whether the code ending just before an address (`before`: its last 7 bytes) ends
    with a call, so that the address is a plausible return address: `call rel32` (e8),
    or `call *r/m` (ff /2) in its register, [reg], [reg+d8], [reg+d32] and [rip+d32]
    forms (with a SIB byte too)."""
    n = len(before)
    if n >= 5 and before[n - 5] == 0xE8:
        return True
    for length in (2, 3, 4, 6, 7):            # ff modrm [sib] [disp8 | disp32]
        if n < length:
            continue
        op, modrm = before[n - length], before[n - length + 1]
        if op != 0xFF or (modrm >> 3) & 7 != 2:
            continue
        mod, rm = modrm >> 6, modrm & 7
        sib = 1 if mod != 3 and rm == 4 else 0
        disp = {0: 4 if rm == 5 else 0, 1: 1, 2: 4, 3: 0}[mod]
        if mod == 0 and sib and before[n - length + 2] & 7 == 5:
            disp = 4
        if 2 + sib + disp == length:
            return True
    return False

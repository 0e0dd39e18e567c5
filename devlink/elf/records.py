"""On-disk ELF64 little-endian records, declared once, with the gABI's field names.

Each record is a `struct.Struct` (for packing/unpacking one record) and, for the tables
that are decoded in bulk on the hot path (symbols, relocations), a numpy dtype with the
same layout so a whole table is one `np.frombuffer` call.
"""

import struct

import numpy as np

# Elf64_Ehdr: e_ident[16], e_type, e_machine, e_version, e_entry, e_phoff, e_shoff,
# e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
Elf64_Ehdr = struct.Struct("<16sHHIQQQIHHHHHH")

# Elf64_Shdr: sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info,
# sh_addralign, sh_entsize
Elf64_Shdr = struct.Struct("<IIQQQQIIQQ")
SHDR_DTYPE = np.dtype(
    [("sh_name", "<u4"), ("sh_type", "<u4"), ("sh_flags", "<u8"), ("sh_addr", "<u8"),
     ("sh_offset", "<u8"), ("sh_size", "<u8"), ("sh_link", "<u4"), ("sh_info", "<u4"),
     ("sh_addralign", "<u8"), ("sh_entsize", "<u8")]
)

# Elf64_Phdr: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
Elf64_Phdr = struct.Struct("<IIQQQQQQ")

# Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value, st_size
Elf64_Sym = struct.Struct("<IBBHQQ")
SYM_DTYPE = np.dtype(
    [("st_name", "<u4"), ("st_info", "u1"), ("st_other", "u1"), ("st_shndx", "<u2"),
     ("st_value", "<u8"), ("st_size", "<u8")]
)

# Elf64_Rela: r_offset, r_info (sym << 32 | type), r_addend
Elf64_Rela = struct.Struct("<QQq")
RELA_DTYPE = np.dtype([("r_offset", "<u8"), ("r_info", "<u8"), ("r_addend", "<i8")])

# Elf64_Dyn: d_tag, d_val
Elf64_Dyn = struct.Struct("<qQ")

# Elf64_Verneed: vn_version, vn_cnt, vn_file, vn_aux, vn_next
Elf64_Verneed = struct.Struct("<HHIII")
# Elf64_Vernaux: vna_hash, vna_flags, vna_other, vna_name, vna_next
Elf64_Vernaux = struct.Struct("<IHHII")
# Elf64_Verdef: vd_version, vd_flags, vd_ndx, vd_cnt, vd_hash, vd_aux, vd_next
Elf64_Verdef = struct.Struct("<HHHHIII")
# Elf64_Verdaux: vda_name, vda_next
Elf64_Verdaux = struct.Struct("<II")

# Elf64_Nhdr: n_namesz, n_descsz, n_type
Elf64_Nhdr = struct.Struct("<III")

# Elf64_Chdr: ch_type, ch_reserved, ch_size, ch_addralign
Elf64_Chdr = struct.Struct("<IIQQ")


def st_bind(info: int) -> int:
    return info >> 4


def st_type(info: int) -> int:
    return info & 0xF


def st_info(bind: int, typ: int) -> int:
    return (bind << 4) | (typ & 0xF)


def st_visibility(other: int) -> int:
    return other & 0x3


def elf_hash(name: bytes) -> int:
    """The SysV hash of DT_HASH and of vna_hash/vd_hash."""
    h = 0
    for c in name:
        h = ((h << 4) + c) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


def elf_hash_many(names: list[bytes]) -> np.ndarray:
    """`elf_hash` of many names at once (one numpy step per character position)."""
    n = len(names)
    if not n:
        return np.zeros(0, np.uint32)
    lens = np.fromiter((len(x) for x in names), np.int64, n)
    width = int(lens.max())
    chars = np.zeros((n, width), np.uint32)
    flat = np.frombuffer(b"".join(x.ljust(width, b"\0") for x in names), np.uint8).reshape(n, width)
    chars[:] = flat
    h = np.zeros(n, np.uint32)
    for c in range(width):
        active = lens > c
        hv = ((h << np.uint32(4)) + chars[:, c]) & np.uint32(0xFFFFFFFF)
        g = hv & np.uint32(0xF0000000)
        hv ^= g >> np.uint32(24)
        hv &= ~g
        h = np.where(active, hv, h)
    return h

"""ELF constants, named as in the gABI (System V ABI, "Object Files" chapter).

Only format facts live here; relocation types are architecture policy and are named
only in `devlink.link.arch.x86_64`.
"""

# e_ident
ELFMAG = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ELFOSABI_SYSV = 0

# e_type
ET_REL = 1
ET_EXEC = 2
ET_DYN = 3

EM_X86_64 = 62

# section header indexes
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF
#: an input symbol's section index, with SHN_XINDEX resolved through SHT_SYMTAB_SHNDX,
#: names a section exactly when 0 < shndx < SECTION_INDEX_END: the reader refuses
#: objects with more sections than that, so a real index never equals SHN_ABS or
#: SHN_COMMON (which keep their own values in the resolved column)
SECTION_INDEX_END = SHN_ABS


def output_symbol_shndx(index: int) -> int:
    """st_shndx of an output symbol in section `index`.  An executable's symbol values
    are addresses, so one in a section past the 16-bit range (more than 65,279 output
    sections) is written as SHN_ABS: the same address, without an SHT_SYMTAB_SHNDX
    table (tools then show it as absolute)."""
    return index if index < SHN_LORESERVE else SHN_ABS

# sh_type
SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_HASH = 5
SHT_DYNAMIC = 6
SHT_NOTE = 7
SHT_NOBITS = 8
SHT_REL = 9
SHT_DYNSYM = 11
SHT_INIT_ARRAY = 14
SHT_FINI_ARRAY = 15
SHT_PREINIT_ARRAY = 16
SHT_GROUP = 17
SHT_SYMTAB_SHNDX = 18
SHT_X86_64_UNWIND = 0x70000001
SHT_GNU_HASH = 0x6FFFFFF6
SHT_GNU_verdef = 0x6FFFFFFD
SHT_GNU_verneed = 0x6FFFFFFE
SHT_GNU_versym = 0x6FFFFFFF

# sh_flags
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_MERGE = 0x10
SHF_STRINGS = 0x20
SHF_INFO_LINK = 0x40
SHF_LINK_ORDER = 0x80
SHF_GROUP = 0x200
SHF_TLS = 0x400
SHF_COMPRESSED = 0x800
SHF_EXCLUDE = 0x80000000

GRP_COMDAT = 0x1

# symbol binding / type / visibility
STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
STB_GNU_UNIQUE = 10

STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STT_FILE = 4
STT_COMMON = 5
STT_TLS = 6
STT_GNU_IFUNC = 10

STV_DEFAULT = 0
STV_INTERNAL = 1
STV_HIDDEN = 2
STV_PROTECTED = 3

# p_type
PT_NULL = 0
PT_LOAD = 1
PT_DYNAMIC = 2
PT_INTERP = 3
PT_NOTE = 4
PT_PHDR = 6
PT_TLS = 7
PT_GNU_EH_FRAME = 0x6474E550
PT_GNU_STACK = 0x6474E551
PT_GNU_RELRO = 0x6474E552

# p_flags
PF_X = 0x1
PF_W = 0x2
PF_R = 0x4

# d_tag
DT_NULL = 0
DT_NEEDED = 1
DT_PLTRELSZ = 2
DT_PLTGOT = 3
DT_HASH = 4
DT_STRTAB = 5
DT_SYMTAB = 6
DT_RELA = 7
DT_RELASZ = 8
DT_RELAENT = 9
DT_STRSZ = 10
DT_SYMENT = 11
DT_INIT = 12
DT_FINI = 13
DT_SONAME = 14
DT_DEBUG = 21
DT_JMPREL = 23
DT_PLTREL = 20
DT_BIND_NOW = 24
DT_INIT_ARRAY = 25
DT_FINI_ARRAY = 26
DT_INIT_ARRAYSZ = 27
DT_FINI_ARRAYSZ = 28
DT_FLAGS = 30
DT_PREINIT_ARRAY = 32
DT_PREINIT_ARRAYSZ = 33
DT_GNU_HASH = 0x6FFFFEF5
DT_VERSYM = 0x6FFFFFF0
DT_RELACOUNT = 0x6FFFFFF9
DT_FLAGS_1 = 0x6FFFFFFB
DT_VERDEF = 0x6FFFFFFC
DT_VERDEFNUM = 0x6FFFFFFD
DT_VERNEED = 0x6FFFFFFE
DT_VERNEEDNUM = 0x6FFFFFFF

DF_BIND_NOW = 0x8
DF_1_NOW = 0x1

# symbol versioning
VER_NDX_LOCAL = 0
VER_NDX_GLOBAL = 1
VERSYM_HIDDEN = 0x8000
VER_FLG_BASE = 0x1

NT_GNU_ABI_TAG = 1

"""Every relocation type that gcc and gas emit for C on x86-64 appears in objects that
devlink links, and the linked program computes the same values as the program linked by
`cc -no-pie` (devlink writes non-PIE executables, so that is the comparable reference).

Each program prints values that a wrong relocation would change (an address compared
with `&sym`, a symbol size, a GOT base recomputed two ways, TLS values from several
threads), never raw addresses.  `readelf -rW` on the objects asserts that each named
relocation type really occurs, so a test cannot silently stop covering it.

Also: a relocation whose value does not fit its field (an absolute symbol at
0x7fff00000000 used by R_X86_64_32 / 32S / PC32) is a one-line `devlink: error:`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import helpers

CC = helpers.find_cc()
READELF = helpers.find_tool("readelf")
GDB = helpers.find_tool("gdb")

pytestmark = [
    pytest.mark.skipif(CC is None, reason="no C compiler (`cc`) found on PATH; install gcc"),
    pytest.mark.skipif(READELF is None, reason="readelf not found (install binutils)"),
]

NOTE_GNU_STACK = '\n    .section .note.GNU-stack,"",@progbits\n'


# ----------------------------------------------------------------------------- helpers


write = helpers.write


cc_c = helpers.cc_c


def reloc_types(obj: Path, section_re: str = r".*") -> list[str]:
    """Relocation type names in `obj` (from `readelf -rW`), in sections matching section_re."""
    text = subprocess.run([READELF, "-rW", str(obj)], capture_output=True, text=True, check=True).stdout
    types, in_section = [], False
    for line in text.splitlines():
        m = re.match(r"Relocation section '\.rela(\S*)'", line)
        if m:
            in_section = re.fullmatch(section_re, m.group(1)) is not None
            continue
        if in_section:
            t = re.search(r"\b(R_X86_64_\w+)\b", line)
            if t:
                types.append(t.group(1))
    return types


def assert_relocs(objs: list[Path], expected: set[str], section_re: str = r".*") -> None:
    found = set()
    for o in objs:
        found.update(reloc_types(o, section_re))
    missing = expected - found
    assert not missing, (f"the objects no longer contain {sorted(missing)} (in sections {section_re!r}); "
                         f"found {sorted(found)}: the test would not cover them")


def build_and_compare(tmp: Path, inputs: list[Path | str], *, opt: str = "-O0", cflags: list[str] = (),
                      ldflags: list[str] = (), args: list[str] = (), expect_in_stdout: str | None = None) -> str:
    """Link `inputs` with `cc -no-pie` and with devlink, run both, require identical
    behaviour, and return the (common) stdout."""
    ref = helpers.cc_build(CC, tmp / "ref" / "prog", inputs, opt=opt, cflags=[*cflags, "-no-pie"],
                           ldflags=ldflags, cwd=tmp)
    try:
        out = helpers.devlink_build(tmp / "out" / "prog", inputs, opt=opt, cflags=cflags, ldflags=ldflags, cwd=tmp)
    except helpers.BuildError as e:
        pytest.fail(f"devlink build failed:\n{e}", pytrace=False)
    env = helpers.program_env()
    expected = helpers.run_program([ref, *args], env=env, cwd=tmp)
    assert expected.returncode == 0 and not expected.timed_out, \
        f"reference (cc) build misbehaves: test bug\n{expected.stdout!r}\n{expected.stderr!r}"
    if expect_in_stdout is not None:
        assert expect_in_stdout in expected.stdout.decode(), f"reference output lacks {expect_in_stdout!r}: test bug"
    actual = helpers.run_program([out, *args], env=env, cwd=tmp)
    report = helpers.compare_runs(expected, actual)
    if report:
        pytest.fail(f"devlink's executable behaves differently from cc's\n{report}", pytrace=False)
    return expected.stdout.decode()


# ------------------------------------------------- assembly: data, PC, GOT, GOTOFF, SIZE

RELOCS_S = r"""
    .data
    .balign 8
    .globl dvar
    .type dvar, @object
    .size dvar, 40
dvar:   .quad 11, 22, 33, 44, 55

    .globl dsmall
    .type dsmall, @object
    .size dsmall, 12
dsmall: .long 1, 2, 3

    # R_X86_64_64: absolute 64-bit addresses
    .globl r64_tab
    .balign 8
r64_tab:
    .quad dvar
    .quad dvar + 16
    .quad afunc
    .quad c_array + 8

    # R_X86_64_PC64: each entry is target - &entry
    .globl pc64_tab
pc64_tab:
    .quad dvar - .
    .quad dvar + 24 - .
    .quad afunc - .
    .quad c_array - .

    # R_X86_64_PC32 in data
    .globl pc32_tab
pc32_tab:
    .long dvar - .
    .long dvar + 8 - .
    .long dsmall + 4 - .
    .long c_array + 4 - .

    # R_X86_64_32 in data (non-PIE: every address fits 32 bits)
    .globl abs32_tab
abs32_tab:
    .long dvar
    .long dvar + 32
    .long afunc
    .long c_array

    .text
    # PC32: lea sym(%rip)
    .globl pc32_dvar8
pc32_dvar8:
    lea dvar+8(%rip), %rax
    ret
    .globl pc32_afunc
pc32_afunc:
    lea afunc(%rip), %rax
    ret

    # PLT32: direct call and tail jump to a C function, call to libc
    .globl plt32_call
plt32_call:                     # int plt32_call(int x) { return afunc(x) + 1; }
    sub $8, %rsp
    call afunc
    add $8, %rsp
    add $1, %eax
    ret
    .globl plt32_tail
plt32_tail:                     # int plt32_tail(int x) { return afunc(x); }
    jmp afunc
    .globl plt32_puts
plt32_puts:                     # int plt32_puts(const char *s) { return puts(s); }
    sub $8, %rsp
    call puts@PLT
    add $8, %rsp
    ret

    # GOTPCREL (not relaxable): lea of the GOT cell, SSE load of the GOT cell
    .globl gotpcrel_lea
gotpcrel_lea:
    lea dvar@GOTPCREL(%rip), %rax
    mov (%rax), %rax
    ret
    .globl gotpcrel_lea_fn
gotpcrel_lea_fn:
    lea afunc@GOTPCREL(%rip), %rax
    mov (%rax), %rax
    ret
    .globl gotpcrel_xmm
gotpcrel_xmm:
    movq c_array@GOTPCREL(%rip), %xmm0
    movq %xmm0, %rax
    ret
    .globl gotpcrel_xmm_strcmp
gotpcrel_xmm_strcmp:
    movq strcmp@GOTPCREL(%rip), %xmm0
    movq %xmm0, %rax
    ret

    # GOTPCRELX / REX_GOTPCRELX on instructions other than mov: call, jmp, cmp, add
    .globl gotx_call
gotx_call:                      # int gotx_call(int x) { return afunc(x) + 2; }
    sub $8, %rsp
    call *afunc@GOTPCREL(%rip)
    add $8, %rsp
    add $2, %eax
    ret
    .globl gotx_jmp
gotx_jmp:
    jmp *afunc@GOTPCREL(%rip)
    .globl gotx_call_puts
gotx_call_puts:
    sub $8, %rsp
    call *puts@GOTPCREL(%rip)
    add $8, %rsp
    ret
    .globl gotx_cmp_dvar
gotx_cmp_dvar:                  # int gotx_cmp_dvar(void *p) { return p == &dvar; }
    xor %eax, %eax
    cmp dvar@GOTPCREL(%rip), %rdi
    sete %al
    ret
    .globl gotx_cmp_afunc
gotx_cmp_afunc:
    xor %eax, %eax
    cmp afunc@GOTPCREL(%rip), %rdi
    sete %al
    ret
    .globl gotx_cmp_strcmp
gotx_cmp_strcmp:
    xor %eax, %eax
    cmp strcmp@GOTPCREL(%rip), %rdi
    sete %al
    ret
    .globl gotx_add
gotx_add:                       # char *gotx_add(long off) { return (char *)&dvar + off; }
    mov %rdi, %rax
    add dvar@GOTPCREL(%rip), %rax
    ret

    # relaxable loads: mov sym@GOTPCREL(%rip), %reg
    .globl gotx_mov
gotx_mov:
    mov dvar@GOTPCREL(%rip), %rax
    ret
    .globl gotx_mov32
gotx_mov32:                     # 32-bit mov (GOTPCRELX without REX), zero-extended
    mov dsmall@GOTPCREL(%rip), %eax
    ret
    .globl gotx_mov_r12_fn
gotx_mov_r12_fn:
    push %r12
    mov afunc@GOTPCREL(%rip), %r12
    mov %r12, %rax
    pop %r12
    ret
    .globl gotx_mov_stdout
gotx_mov_stdout:                # FILE *gotx_mov_stdout(void) { return stdout; } via the GOT
    mov stdout@GOTPCREL(%rip), %rax
    mov (%rax), %rax
    ret
    .globl gotx_mov_strcmp
gotx_mov_strcmp:
    mov strcmp@GOTPCREL(%rip), %rax
    ret
    .globl gotx_mov_far
gotx_mov_far:                   # an absolute symbol out of lea's reach: must stay a GOT load
    mov far_abs@GOTPCREL(%rip), %rax
    ret
    .globl far_direct
far_direct:                     # R_X86_64_64 in code
    movabs $far_abs, %rax
    ret

    # GOTPC32 + GOTOFF64: &sym = GOT + sym@GOTOFF
    .globl gotpc32_base
gotpc32_base:
    lea _GLOBAL_OFFSET_TABLE_(%rip), %rax
    ret
    .globl gotoff_dvar16
gotoff_dvar16:
    lea _GLOBAL_OFFSET_TABLE_(%rip), %rdx
    movabs $dvar@GOTOFF+16, %rax
    add %rdx, %rax
    ret
    .globl gotoff_afunc
gotoff_afunc:
    lea _GLOBAL_OFFSET_TABLE_(%rip), %rdx
    movabs $afunc@GOTOFF, %rax
    add %rdx, %rax
    ret
    .globl gotoff_c_array
gotoff_c_array:
    lea _GLOBAL_OFFSET_TABLE_(%rip), %rdx
    movabs $c_array@GOTOFF, %rax
    add %rdx, %rax
    ret
    # GOTPC64 (large-model GOT base)
    .globl gotpc64_base
gotpc64_base:
1:  lea 1b(%rip), %rax
    movabs $_GLOBAL_OFFSET_TABLE_-1b, %rdx
    add %rdx, %rax
    ret

    # SIZE32 / SIZE64
    .globl size32_dvar
size32_dvar:
    mov $dvar@SIZE, %eax
    ret
    .globl size32_dsmall_plus
size32_dsmall_plus:
    mov $dsmall@SIZE+100, %eax
    ret
    .globl size64_dvar
size64_dvar:
    movabs $dvar@SIZE, %rax
    ret
    .globl size64_c_array
size64_c_array:
    movabs $c_array@SIZE-1, %rax
    ret
    .globl size32_c_array
size32_c_array:
    mov $c_array@SIZE, %eax
    ret
""" + NOTE_GNU_STACK

FAR_S = """
    .globl far_abs
    .set far_abs, 0x7fff00001234
""" + NOTE_GNU_STACK

RELOCS_MAIN_C = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern long dvar[5];
extern int dsmall[3];
int c_array[37] = {5};

__attribute__((noinline)) int afunc(int x) { return 3 * x + 1; }

extern intptr_t r64_tab[4], pc64_tab[4];
extern int32_t pc32_tab[4];
extern uint32_t abs32_tab[4];
void *pc32_dvar8(void), *pc32_afunc(void);
int plt32_call(int), plt32_tail(int), plt32_puts(const char *);
void *gotpcrel_lea(void), *gotpcrel_lea_fn(void), *gotpcrel_xmm(void), *gotpcrel_xmm_strcmp(void);
int gotx_call(int), gotx_jmp(int), gotx_call_puts(const char *);
int gotx_cmp_dvar(void *), gotx_cmp_afunc(void *), gotx_cmp_strcmp(void *);
char *gotx_add(long);
void *gotx_mov(void), *gotx_mov_r12_fn(void), *gotx_mov_stdout(void), *gotx_mov_strcmp(void);
void *gotx_mov_far(void), *far_direct(void);
unsigned gotx_mov32(void);
char *gotpc32_base(void), *gotpc64_base(void);
void *gotoff_dvar16(void), *gotoff_afunc(void), *gotoff_c_array(void);
unsigned size32_dvar(void), size32_dsmall_plus(void), size32_c_array(void);
unsigned long size64_dvar(void), size64_c_array(void);

#define CHECK(name, cond) printf("%-22s %s\n", name, (cond) ? "ok" : "WRONG")

int main(void)
{
    int (*volatile fp)(int) = afunc;
    CHECK("64 dvar", r64_tab[0] == (intptr_t)dvar);
    CHECK("64 dvar+16", r64_tab[1] == (intptr_t)dvar + 16);
    CHECK("64 afunc", r64_tab[2] == (intptr_t)fp);
    CHECK("64 c_array+8", r64_tab[3] == (intptr_t)c_array + 8);
    for (int i = 0; i < 4; i++) {
        static const intptr_t add[4] = {0, 24, 0, 0};
        intptr_t target[4] = {(intptr_t)dvar, (intptr_t)dvar, (intptr_t)fp, (intptr_t)c_array};
        printf("PC64[%d]                %s\n", i,
               (intptr_t)&pc64_tab[i] + pc64_tab[i] == target[i] + add[i] ? "ok" : "WRONG");
        static const intptr_t add32[4] = {0, 8, 4, 4};
        intptr_t target32 = i == 2 ? (intptr_t)dsmall : target[i];
        printf("PC32 data[%d]           %s\n", i,
               (intptr_t)&pc32_tab[i] + pc32_tab[i] == target32 + add32[i] ? "ok" : "WRONG");
        static const intptr_t add_abs[4] = {0, 32, 0, 0};
        printf("32 data[%d]             %s\n", i, (intptr_t)abs32_tab[i] == target[i] + add_abs[i] ? "ok" : "WRONG");
    }
    CHECK("PC32 lea dvar+8", pc32_dvar8() == (char *)dvar + 8);
    CHECK("PC32 lea afunc", pc32_afunc() == (void *)fp);
    printf("PLT32 call             %d\n", plt32_call(5));
    printf("PLT32 tail             %d\n", plt32_tail(6));
    fflush(stdout);
    plt32_puts("PLT32 puts             ok");
    CHECK("GOTPCREL lea dvar", gotpcrel_lea() == (void *)dvar);
    CHECK("GOTPCREL lea afunc", gotpcrel_lea_fn() == (void *)fp);
    CHECK("GOTPCREL xmm c_array", gotpcrel_xmm() == (void *)c_array);
    CHECK("GOTPCREL xmm strcmp", gotpcrel_xmm_strcmp() == (void *)&strcmp);
    printf("GOTPCRELX call         %d\n", gotx_call(7));
    printf("GOTPCRELX jmp          %d\n", gotx_jmp(8));
    fflush(stdout);
    gotx_call_puts("GOTPCRELX call puts    ok");
    CHECK("REX_GOTPCRELX cmp dvar", gotx_cmp_dvar(dvar) && !gotx_cmp_dvar(dsmall));
    CHECK("REX_GOTPCRELX cmp afunc", gotx_cmp_afunc((void *)fp));
    CHECK("REX_GOTPCRELX cmp strcmp", gotx_cmp_strcmp((void *)&strcmp));
    CHECK("REX_GOTPCRELX add", gotx_add(24) == (char *)dvar + 24);
    CHECK("REX_GOTPCRELX mov", gotx_mov() == (void *)dvar);
    CHECK("GOTPCRELX mov32", gotx_mov32() == (unsigned)(uintptr_t)dsmall);
    CHECK("REX_GOTPCRELX r12 fn", gotx_mov_r12_fn() == (void *)fp);
    CHECK("REX_GOTPCRELX stdout", gotx_mov_stdout() == (void *)stdout);
    CHECK("REX_GOTPCRELX strcmp", gotx_mov_strcmp() == (void *)&strcmp);
    CHECK("REX_GOTPCRELX far abs", gotx_mov_far() == far_direct() && (uintptr_t)far_direct() == 0x7fff00001234);
    CHECK("GOTPC32 == GOTPC64", gotpc32_base() == gotpc64_base());
    CHECK("GOTOFF64 dvar+16", gotoff_dvar16() == (char *)dvar + 16);
    CHECK("GOTOFF64 afunc", gotoff_afunc() == (void *)fp);
    CHECK("GOTOFF64 c_array", gotoff_c_array() == (void *)c_array);
    CHECK("GOTOFF64 via GOTPC64", gotpc64_base() + ((char *)dvar - gotpc32_base()) == (char *)dvar);
    printf("SIZE32 dvar            %u\n", size32_dvar());
    printf("SIZE32 dsmall+100      %u\n", size32_dsmall_plus());
    printf("SIZE32 c_array         %u\n", size32_c_array());
    printf("SIZE64 dvar            %lu\n", size64_dvar());
    printf("SIZE64 c_array-1       %lu\n", size64_c_array());
    printf("dvar[2]=%ld dsmall[2]=%d c_array[0]=%d\n", dvar[2], dsmall[2], c_array[0]);
    return 0;
}
"""

ASM_EXPECTED_RELOCS = {"R_X86_64_64", "R_X86_64_PC64", "R_X86_64_PC32", "R_X86_64_32", "R_X86_64_PLT32",
                       "R_X86_64_GOTPCREL", "R_X86_64_GOTPCRELX", "R_X86_64_REX_GOTPCRELX",
                       "R_X86_64_GOTPC32", "R_X86_64_GOTPC64", "R_X86_64_GOTOFF64",
                       "R_X86_64_SIZE32", "R_X86_64_SIZE64"}


@pytest.mark.parametrize("opt", helpers.OPT_LEVELS, ids=lambda o: o.lstrip("-"))
def test_asm_relocations(tmp_path, opt):
    relocs_o = cc_c(write(tmp_path / "relocs.s", RELOCS_S), [])
    far_o = cc_c(write(tmp_path / "far.s", FAR_S), [])
    assert_relocs([relocs_o], ASM_EXPECTED_RELOCS)
    # `lea _GLOBAL_OFFSET_TABLE_(%rip)` really is a GOTPC32 (not a PC32 against the GOT symbol)
    text = subprocess.run([READELF, "-rW", str(relocs_o)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"R_X86_64_GOTPC32\s+\S+\s+_GLOBAL_OFFSET_TABLE_", text), text
    main_c = write(tmp_path / "main.c", RELOCS_MAIN_C)
    out = build_and_compare(tmp_path, [main_c, relocs_o, far_o], opt=opt)
    assert "WRONG" not in out, out
    assert "SIZE32 dvar            40" in out and "SIZE64 c_array-1       147" in out, out


# ----------------------------------------------------- C, non-PIC: R_X86_64_32 and 32S

NOPIC_C = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int table[64];
long big[8] = {1, 2, 3, 4, 5, 6, 7, 8};
const char *const names[] = {"zero", "one", "two", "three"};
int nopic_callee(int x) { return x * 7; }
int (*const nopic_fptrs[2])(int) = {nopic_callee, 0};

__attribute__((noinline)) int nopic_get(int i) { return table[i]; }      /* 32S: table(,%rdi,4) */
__attribute__((noinline)) void nopic_set(int i, int v) { table[i] = v; }
__attribute__((noinline)) long nopic_big(long i) { return big[i]; }
__attribute__((noinline)) int *nopic_table(void) { return table; }      /* 32: mov $table, %eax */
__attribute__((noinline)) long *nopic_big_addr(void) { return &big[2]; }
__attribute__((noinline)) void *nopic_fn_addr(void) { return (void *)nopic_callee; }
__attribute__((noinline)) void *nopic_ext_fn_addr(void) { return (void *)pic_callee; }
__attribute__((noinline)) const char *nopic_name(int i) { return names[i]; }
__attribute__((noinline)) int nopic_call(int x) { return nopic_fptrs[0](x) + pic_callee(x); }
"""

NOPIC_MAIN_C = r"""
#include <stdio.h>
int pic_callee(int x) { return x + 1000; }
int nopic_get(int), nopic_call(int), nopic_callee(int);
void nopic_set(int, int);
long nopic_big(long);
int *nopic_table(void);
long *nopic_big_addr(void);
void *nopic_fn_addr(void), *nopic_ext_fn_addr(void);
const char *nopic_name(int);
extern long big[8];

int main(void)
{
    for (int i = 0; i < 64; i++) nopic_set(i, i * i);
    long sum = 0;
    for (int i = 0; i < 64; i++) sum += nopic_get(i);
    printf("sum=%ld table[5] via pointer=%d\n", sum, nopic_table()[5]);
    printf("big[3]=%ld &big[2] ok=%d\n", nopic_big(3), nopic_big_addr() == &big[2]);
    printf("&nopic_callee ok=%d &pic_callee ok=%d\n", nopic_fn_addr() == (void *)nopic_callee,
           nopic_ext_fn_addr() == (void *)pic_callee);
    printf("names: %s %s call=%d\n", nopic_name(1), nopic_name(3), nopic_call(6));
    return 0;
}
"""


@pytest.mark.parametrize("opt", helpers.OPT_LEVELS, ids=lambda o: o.lstrip("-"))
def test_nopic_abs32_relocations(tmp_path, opt):
    src = write(tmp_path / "nopic.c", "int pic_callee(int);\n" + NOPIC_C)
    obj = cc_c(src, [opt, "-fno-pic", "-mcmodel=small"])
    assert_relocs([obj], {"R_X86_64_32", "R_X86_64_32S", "R_X86_64_64"})
    main_c = write(tmp_path / "main.c", NOPIC_MAIN_C)
    out = build_and_compare(tmp_path, [main_c, obj], opt=opt)
    assert "ok=1 &pic_callee ok=1" in out and "&big[2] ok=1" in out, out


# ------------------------------------------------------------------------------ TLS in C

TLS_DEF_C = r"""
/* the definitions: accessed from the other files as extern */
__thread int ext_counter = 100;
__thread char ext_buf[16] = "init";
int *def_counter_addr(void) { return &ext_counter; }
"""

TLS_LE_C = r"""
/* -fno-pic: local exec (TPOFF32) for own variables, initial exec (GOTTPOFF) for extern */
extern __thread int ext_counter;
__thread long le_var = 5;
static __thread int le_static[4] = {1, 2, 3, 4};
long le_bump(int n) { le_var += n; le_static[n & 3] += n; ext_counter += 1; return le_var + le_static[n & 3]; }
long *le_var_addr(void) { return &le_var; }
int *le_counter_addr(void) { return &ext_counter; }
"""

TLS_IE_C = r"""
/* -fPIC -ftls-model=initial-exec: GOTTPOFF for everything */
extern __thread int ext_counter;
extern __thread long le_var;
__thread int ie_var = 77;
int ie_bump(int n) { ie_var += n; ext_counter += 10; le_var += 100; return ie_var; }
int *ie_counter_addr(void) { return &ext_counter; }
long *ie_le_var_addr(void) { return &le_var; }
"""

TLS_GD_C = r"""
/* -fPIC: general dynamic (TLSGD) for globals, local dynamic (TLSLD + DTPOFF32) for statics */
extern __thread int ext_counter;
extern __thread char ext_buf[16];
static __thread int ld_a = 9;
static __thread long ld_b[3];
int gd_bump(int n) { ext_counter += 1000; ext_buf[0] = (char)('a' + n); ld_a += n; ld_b[2] += ld_a; return ld_a; }
int *gd_counter_addr(void) { return &ext_counter; }
long gd_ld_sum(void) { return ld_a + ld_b[0] + ld_b[1] + ld_b[2]; }
int *gd_ld_a_addr(void) { return &ld_a; }
long *gd_ld_b_addr(void) { return &ld_b[1]; }
char gd_buf0(void) { return ext_buf[0]; }
"""

TLS_MAIN_C = r"""
#include <pthread.h>
#include <stdio.h>
#include <string.h>

int *def_counter_addr(void), *le_counter_addr(void), *ie_counter_addr(void), *gd_counter_addr(void);
long le_bump(int), *le_var_addr(void), *ie_le_var_addr(void), gd_ld_sum(void), *gd_ld_b_addr(void);
int ie_bump(int), gd_bump(int), *gd_ld_a_addr(void);
char gd_buf0(void);
extern __thread int ext_counter;
extern __thread char ext_buf[16];

#define NT 4
static char results[NT + 1][256];

static void *work(void *arg)
{
    int id = (int)(long)arg;
    char *r = results[id];
    int same = def_counter_addr() == le_counter_addr() && le_counter_addr() == ie_counter_addr()
               && ie_counter_addr() == gd_counter_addr() && gd_counter_addr() == &ext_counter;
    int same_le = le_var_addr() == ie_le_var_addr();
    int init_ok = ext_counter == 100 && strcmp(ext_buf, "init") == 0 && *le_var_addr() == 5;
    long a = 0;
    for (int i = 0; i <= id; i++) {
        a += le_bump(i + id);
        a += ie_bump(i * 2 + id);
        a += gd_bump(i + 3 * id);
    }
    int distinct = (long)gd_ld_a_addr() != (long)gd_ld_b_addr();
    snprintf(r, 256, "thread %d: same=%d same_le=%d init=%d distinct=%d acc=%ld counter=%d le=%ld ld=%ld buf0=%c",
             id, same, same_le, init_ok, distinct, a, ext_counter, *le_var_addr(), gd_ld_sum(), gd_buf0());
    return NULL;
}

int main(void)
{
    pthread_t t[NT];
    for (long i = 0; i < NT; i++) pthread_create(&t[i], NULL, work, (void *)(i + 1));
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    work((void *)0L);
    for (int i = 0; i <= NT; i++) puts(results[i]);
    return 0;
}
"""


@pytest.mark.parametrize("opt", helpers.OPT_LEVELS, ids=lambda o: o.lstrip("-"))
def test_tls_access_models(tmp_path, opt):
    g = ["-g", opt]
    objs = [
        cc_c(write(tmp_path / "tls_def.c", TLS_DEF_C), [*g, "-fPIC"]),
        cc_c(write(tmp_path / "tls_le.c", TLS_LE_C), [*g, "-fno-pic"]),
        cc_c(write(tmp_path / "tls_ie.c", TLS_IE_C), [*g, "-fPIC", "-ftls-model=initial-exec"]),
        cc_c(write(tmp_path / "tls_gd.c", TLS_GD_C), [*g, "-fPIC"]),
    ]
    # gcc -O0 uses TLSGD even for statics: one more file asks for local dynamic explicitly
    ld_src = write(tmp_path / "tls_ld.c", r"""
static __thread int ldm_x = 3;
static __thread long ldm_y[2] = {40, 50};
long ldm_sum(int n) { ldm_x += n; ldm_y[1] += ldm_x; return ldm_x + ldm_y[0] + ldm_y[1]; }
""")
    objs.append(cc_c(ld_src, [*g, "-fPIC", "-ftls-model=local-dynamic"]))
    assert_relocs(objs, {"R_X86_64_TPOFF32", "R_X86_64_GOTTPOFF", "R_X86_64_TLSGD", "R_X86_64_TLSLD"})
    assert_relocs(objs, {"R_X86_64_DTPOFF32"}, r"\.text.*")        # DTPOFF32 in code (after TLSLD)
    assert_relocs(objs, {"R_X86_64_DTPOFF32"}, r"\.debug_info")     # DTPOFF32 in DWARF locations
    main_src = TLS_MAIN_C.replace("return NULL;\n}", "ldm_sum(id);\n    snprintf(r + strlen(r), 256 - strlen(r), \" ldm=%ld\", ldm_sum(1));\n    return NULL;\n}", 1)
    main_src = "long ldm_sum(int);\n" + main_src
    main_c = write(tmp_path / "main.c", main_src)
    out = build_and_compare(tmp_path, [main_c, *objs], opt=opt, cflags=["-g"])
    assert out.count("same=1 same_le=1 init=1 distinct=1") == 5, out


DTPOFF_S = r"""
    .section .tbss,"awT",@nobits
    .balign 8
    .globl tv1, tv2
    .type tv1, @object
    .size tv1, 8
tv1: .zero 8
    .type tv2, @object
    .size tv2, 24
tv2: .zero 24

    .data
    .balign 8
    .globl dtpoff64_tab, dtpoff32_tab
dtpoff64_tab:                   # R_X86_64_DTPOFF64: offset in the module's TLS block
    .quad tv1@dtpoff
    .quad tv2@dtpoff + 8
dtpoff32_tab:                   # R_X86_64_DTPOFF32 outside code: also a block offset (not TP-relative)
    .long tv1@dtpoff
    .long tv2@dtpoff + 16
""" + NOTE_GNU_STACK

DTPOFF_MAIN_C = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>

extern __thread long tv1;
extern __thread char tv2[24];
extern int64_t dtpoff64_tab[2];
extern int32_t dtpoff32_tab[2];
/* the ABI's definition of a DTPOFF: __tls_get_addr({module, dtpoff}) == &var; the
   executable is module 1 */
typedef struct { unsigned long module, offset; } tls_index;
extern void *__tls_get_addr(tls_index *);

static void *check(void *arg)
{
    tls_index i1 = {1, dtpoff64_tab[0]}, i2 = {1, dtpoff64_tab[1]};
    tls_index j1 = {1, (unsigned long)(long)dtpoff32_tab[0]}, j2 = {1, (unsigned long)(long)dtpoff32_tab[1]};
    printf("%s: DTPOFF64 %s %s DTPOFF32 %s %s\n", (char *)arg,
           __tls_get_addr(&i1) == (void *)&tv1 ? "ok" : "WRONG",
           __tls_get_addr(&i2) == (void *)(tv2 + 8) ? "ok" : "WRONG",
           __tls_get_addr(&j1) == (void *)&tv1 ? "ok" : "WRONG",
           __tls_get_addr(&j2) == (void *)(tv2 + 16) ? "ok" : "WRONG");
    return NULL;
}

int main(void)
{
    check("main");
    pthread_t t;
    pthread_create(&t, NULL, check, "thread");
    pthread_join(t, NULL);
    printf("diff %ld %ld\n", (long)(dtpoff64_tab[1] - dtpoff64_tab[0]), (long)((char *)tv2 - (char *)&tv1));
    return 0;
}
"""


def test_dtpoff_in_data(tmp_path):
    obj = cc_c(write(tmp_path / "dtpoff.s", DTPOFF_S), [])
    assert_relocs([obj], {"R_X86_64_DTPOFF64", "R_X86_64_DTPOFF32"}, r"\.data")
    main_c = write(tmp_path / "main.c", DTPOFF_MAIN_C)
    out = build_and_compare(tmp_path, [main_c, obj])
    assert "WRONG" not in out, out


GDB_TLS_C = r"""
#include <stdio.h>
static __thread int st_tls = 1234;
__thread long gl_tls = 98765;
__attribute__((noinline)) void stop_here(void) { printf("%d %ld\n", st_tls, gl_tls); }
int main(void) { st_tls += 1; gl_tls += 2; stop_here(); return 0; }
"""


@pytest.mark.skipif(GDB is None, reason="gdb not found")
def test_tls_debug_info_dtpoff_gdb(tmp_path):
    """DTPOFF32 in .debug_info (DW_OP_const4u x@dtpoff; DW_OP_form_tls_address): gdb
    reads a thread-local variable from a devlink-built program as from a cc-built one."""
    src = write(tmp_path / "gdbtls.c", GDB_TLS_C)
    obj = cc_c(src, ["-O2", "-g", "-fPIC"])
    assert_relocs([obj], {"R_X86_64_DTPOFF32"}, r"\.debug_info")
    outs = {}
    for name in ("cc", "devlink"):
        try:
            if name == "cc":
                exe = helpers.cc_build(CC, tmp_path / name / "prog", [src], opt="-O2", cflags=["-g", "-no-pie"],
                                       cwd=tmp_path)
            else:
                exe = helpers.devlink_build(tmp_path / name / "prog", [src], opt="-O2", cflags=["-g"], cwd=tmp_path)
        except helpers.BuildError as e:
            pytest.fail(f"{name} build failed:\n{e}", pytrace=False)
        p = subprocess.run([GDB, "-batch", "-nx", "-ex", "break stop_here", "-ex", "run",
                            "-ex", "print st_tls", "-ex", "print gl_tls", str(exe)],
                           capture_output=True, text=True, timeout=60, env=helpers.program_env())
        outs[name] = re.findall(r"^\$\d+ = (.*)$", p.stdout, re.M)
    assert outs["cc"] == ["1235", "98767"], f"gdb on the cc build: {outs['cc']} (test bug?)"
    assert outs["devlink"] == outs["cc"], f"gdb prints {outs['devlink']} on the devlink build, {outs['cc']} on cc's"


PC32_FN_DATA_S = r"""
    .data
    .globl pc32_fn_tab
pc32_fn_tab:                    # R_X86_64_PC32 in data against a function, addend 0
    .long afunc - .
    .globl pc32_fn_m4
pc32_fn_m4:
    .long afunc - . - 4         # addend -4: the instruction-like form
""" + NOTE_GNU_STACK

PC32_FN_MAIN_C = r"""
#include <stdint.h>
#include <stdio.h>
int afunc(int x) { return x + 1; }
extern int32_t pc32_fn_tab[1], pc32_fn_m4[1];
int main(void)
{
    int (*volatile fp)(int) = afunc;
    printf("A=0  %s\n", (intptr_t)&pc32_fn_tab[0] + pc32_fn_tab[0] == (intptr_t)fp ? "ok" : "WRONG");
    printf("A=-4 %s\n", (intptr_t)&pc32_fn_m4[0] + pc32_fn_m4[0] + 4 == (intptr_t)fp ? "ok" : "WRONG");
    return 0;
}
"""


def test_pc32_in_data_against_function(tmp_path):
    obj = cc_c(write(tmp_path / "pc32fn.s", PC32_FN_DATA_S), [])
    assert_relocs([obj], {"R_X86_64_PC32"}, r"\.data")
    main_c = write(tmp_path / "main.c", PC32_FN_MAIN_C)
    out = build_and_compare(tmp_path, [main_c, obj])
    assert "WRONG" not in out, out


# -------------------------------------------------------------------- overflow errors

OVERFLOW_USES = {
    "R_X86_64_32": "    movl $far, %eax\n",
    "R_X86_64_32S": "    mov far(,%rcx,8), %rax\n",
    "R_X86_64_PC32": "    lea far(%rip), %rax\n",
}


@pytest.mark.parametrize("rtype", sorted(OVERFLOW_USES))
def test_relocation_overflow_is_one_line_error(tmp_path, rtype):
    far_o = cc_c(write(tmp_path / "far.s", "    .globl far\n    .set far, 0x7fff00000000\n" + NOTE_GNU_STACK), [])
    use_o = cc_c(write(tmp_path / "use.s", "    .text\n    .globl use_far\n    .type use_far, @function\nuse_far:\n"
                       + OVERFLOW_USES[rtype] + "    ret\n" + NOTE_GNU_STACK), [])
    assert rtype in reloc_types(use_o), reloc_types(use_o)
    main_c = write(tmp_path / "main.c", "long use_far(void);\nint main(void) { return (int)use_far(); }\n")
    out = tmp_path / "prog"
    sentinel = b"previous output\n"
    out.write_bytes(sentinel)
    p = helpers.run_devlink("build", "-o", out, main_c, use_o, far_o, cwd=tmp_path, timeout=120)
    assert p.returncode == 1, f"exit {p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}"
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{p.stderr}"
    assert re.match(rf"devlink: error: relocation {rtype} against 'far'.*out of range", lines[0]), lines[0]
    assert out.read_bytes() == sentinel, "the output file was modified by a failed link"

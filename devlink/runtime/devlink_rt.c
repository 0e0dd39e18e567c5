/* devlink's start-up runtime: maps the shared patch area (DESIGN.md, invariant 5).
 *
 * devlink links this object into every program it builds.  Its constructor runs
 * before the program's own (priority 101).  When the program was started by a
 * devlink session, DEVLINK_PATCH_AREA names a file descriptor devlink holds (a
 * memfd with the same bytes as the executable's patchable ranges) and the ranges:
 *
 *     DEVLINK_PATCH_AREA=<fd>:<link id, 32 hex>:<header offset>:<vaddr>,<len>,<offset>,<prot>;...
 *
 * (numbers in hex).  The constructor maps each range MAP_SHARED|MAP_FIXED over the
 * program's own pages (same bytes, so nothing changes at that moment), closes the
 * descriptor and writes its pid into the header so devlink knows patches can be
 * stores into its own mapping from now on.  The link id must be this program's
 * (__devlink_link_id, defined by devlink's linker): a program exec'd by the child
 * inherits the environment and must not map another program's area.
 *
 * Without the variable, or with another program's id, it does nothing.  It calls no
 * libc function (raw system calls only): it runs before anything else of the program.
 */

typedef unsigned long u64;

extern const unsigned char __devlink_link_id[16] __attribute__((visibility("hidden")));

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

#define SYS_pwrite64 18
#define SYS_close 3
#define SYS_mmap 9
#define SYS_getpid 39
#define MAP_SHARED 0x01
#define MAP_FIXED 0x10

static const char NAME[] = "DEVLINK_PATCH_AREA=";

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* one hex number ending at `stop`; 0 on a malformed field */
static const char *hexnum(const char *p, char stop, u64 *out)
{
    u64 v = 0;
    int n = 0, d;
    while ((d = hexval(*p)) >= 0 && n < 16) { v = v * 16 + (u64)d; p++; n++; }
    if (n == 0 || *p != stop) return 0;
    *out = v;
    return p + 1;
}

static void report(long fd, u64 hdr, long status)
{
    sys6(SYS_pwrite64, fd, (long)&status, sizeof status, (long)hdr, 0, 0);
}

__attribute__((constructor(101), used)) static void devlink_rt_init(int argc, char **argv, char **envp)
{
    (void)argc; (void)argv;
    const char *v = 0;
    for (char **e = envp; e && *e; e++) {
        const char *s = *e, *n = NAME;
        while (*n && *s == *n) { s++; n++; }
        if (!*n) { v = s; break; }
    }
    if (!v) return;                                     /* not started by devlink */
    u64 fd, hdr;
    const char *p = hexnum(v, ':', &fd);
    if (!p) return;
    for (int i = 0; i < 16; i++) {                      /* another program's area? */
        int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0 || (unsigned char)(hi * 16 + lo) != __devlink_link_id[i]) return;
    }
    p += 32;
    if (*p++ != ':' || !(p = hexnum(p, ':', &hdr))) return;
    long status = sys6(SYS_getpid, 0, 0, 0, 0, 0, 0);
    for (int index = 1; *p; index++) {
        u64 addr, len, off, prot;
        if (!(p = hexnum(p, ',', &addr)) || !(p = hexnum(p, ',', &len)) || !(p = hexnum(p, ',', &off)))
            { status = -1; break; }
        if (!(p = hexnum(p, ';', &prot))) { status = -1; break; }
        long r = sys6(SYS_mmap, (long)addr, (long)len, (long)prot, MAP_SHARED | MAP_FIXED, (long)fd, (long)off);
        if (r != (long)addr) { status = -(index * 1000 + (r < 0 && r > -4096 ? -r : 0)); break; }
    }
    report((long)fd, hdr, status);
    sys6(SYS_close, (long)fd, 0, 0, 0, 0, 0);
}

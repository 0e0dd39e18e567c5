// check-nm: ^__popcountdi2$
// __builtin_popcountll without -mpopcnt calls libgcc's __popcountdi2.
#include <stdio.h>

__attribute__((noinline)) int bits(unsigned long long x) { return __builtin_popcountll(x); }
__attribute__((noinline)) int parity(unsigned long long x) { return __builtin_parityll(x); }

int main(void)
{
    unsigned long long vals[] = {0, 1, 0xff, 0xdeadbeefcafebabeULL, ~0ULL, 0x8000000000000001ULL};
    for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++)
        printf("popcount(%#llx)=%d parity=%d clz=%d ctz=%d\n", vals[i], bits(vals[i]), parity(vals[i]),
               vals[i] ? __builtin_clzll(vals[i]) : -1, vals[i] ? __builtin_ctzll(vals[i]) : -1);
    long total = 0;
    for (unsigned long long x = 0; x < 100000; x++)
        total += bits(x * 2654435761ULL);
    printf("total=%ld\n", total);
    return 0;
}

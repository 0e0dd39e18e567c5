// check-nm: ^__divti3$ ^__modti3$ ^__udivti3$
// 128-bit integer arithmetic: division and modulo call libgcc's __divti3/__udivti3/__modti3.
#include <stdio.h>

typedef __int128 i128;
typedef unsigned __int128 u128;

static void print_u128(const char *label, u128 v)
{
    char buf[64];
    int i = 63;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    printf("%s%s\n", label, &buf[i]);
}

__attribute__((noinline)) i128 sdiv(i128 a, i128 b) { return a / b; }
__attribute__((noinline)) i128 smod(i128 a, i128 b) { return a % b; }
__attribute__((noinline)) u128 udiv(u128 a, u128 b) { return a / b; }

int main(int argc, char **argv)
{
    (void)argv;
    u128 big = ((u128)0x0123456789abcdefULL << 64) | 0xfedcba9876543210ULL;
    print_u128("big = ", big);
    print_u128("big / 1000000007 = ", udiv(big, 1000000007u + (unsigned)argc - 4));
    i128 neg = -(i128)big;
    i128 q = sdiv(neg, (i128)12345678901LL);
    i128 r = smod(neg, (i128)12345678901LL);
    printf("neg / 12345678901 is negative: %d\n", q < 0);
    print_u128("|q| = ", (u128)-q);
    print_u128("|r| = ", (u128)-r);
    printf("check q*d+r == neg: %d\n", q * 12345678901LL + r == neg);
    u128 f = 1;
    for (int i = 1; i <= 30; i++)
        f *= (u128)i;
    print_u128("30! = ", f);
    return 0;
}

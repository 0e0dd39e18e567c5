// A 64 MiB zero-initialised static array (.bss), touched sparsely, plus a small one.
#include <stdio.h>
#include <stdint.h>

#define BIG (64u * 1024u * 1024u)
static unsigned char big[BIG];
uint64_t big_words[1u << 20];   /* another 8 MiB, global */
static int small_bss[10];
int initialised = 5;

int main(void)
{
    unsigned long nonzero = 0;
    for (unsigned i = 0; i < BIG; i += 4096 * 16)
        nonzero += big[i] != 0;
    printf("nonzero sampled bytes before: %lu\n", nonzero);
    for (unsigned i = 0; i < BIG; i += 1u << 20)
        big[i] = (unsigned char)(i >> 20);
    big[BIG - 1] = 0xAB;
    unsigned long sum = 0;
    for (unsigned i = 0; i < BIG; i += 1u << 20)
        sum += big[i];
    printf("sum=%lu last=%#x\n", sum, big[BIG - 1]);
    big_words[(1u << 20) - 1] = 0x0123456789abcdefULL;
    printf("big_words last=%#llx first=%llu\n", (unsigned long long)big_words[(1u << 20) - 1],
           (unsigned long long)big_words[0]);
    printf("small_bss[9]=%d initialised=%d\n", small_bss[9], initialised);
    return 0;
}

// Unwinding through the program's own code: glibc's backtrace() (via libgcc_s and
// PT_GNU_EH_FRAME) must see each of our nested frames. Only frame counts are printed.
#include <execinfo.h>
#include <stdio.h>

static int base_depth;

__attribute__((noinline)) static int depth_here(void)
{
    void *frames[64];
    return backtrace(frames, 64);
}

__attribute__((noinline)) static int nest(int n)
{
    int r = n == 0 ? depth_here() : nest(n - 1);
    __asm__ volatile("" ::: "memory"); /* keep the frame (no tail call) */
    return r;
}

int main(void)
{
    base_depth = depth_here();
    for (int n = 0; n <= 5; n++)
        printf("nest(%d): %d extra frames\n", n, nest(n) - base_depth);
    return 0;
}

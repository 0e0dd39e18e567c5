// check-rodata-relocs
// Dense switch statements: gcc emits jump tables in .rodata (at -O0 and -O2) whose
// entries point into the function body.
#include <stdio.h>

__attribute__((noinline)) const char *day_name(int d)
{
    switch (d) {
    case 0: return "sunday";
    case 1: return "monday";
    case 2: return "tuesday";
    case 3: return "wednesday";
    case 4: return "thursday";
    case 5: return "friday";
    case 6: return "saturday";
    default: return "unknown";
    }
}

__attribute__((noinline)) int interp(const unsigned char *code, int n)
{
    int acc = 0, reg = 0;
    for (int pc = 0; pc < n; pc++) {
        switch (code[pc]) {
        case 0: acc += 1; break;
        case 1: acc -= 1; break;
        case 2: acc *= 2; break;
        case 3: acc /= 2; break;
        case 4: reg = acc; break;
        case 5: acc += reg; break;
        case 6: acc = -acc; break;
        case 7: acc ^= 0x55; break;
        case 8: acc <<= 3; break;
        case 9: acc %= 1000; break;
        case 10: printf("  trace acc=%d\n", acc); break;
        case 11: acc += 100; break;
        default: acc = 0; break;
        }
    }
    return acc;
}

int main(int argc, char **argv)
{
    (void)argv;
    for (int d = -1; d < 8; d++)
        printf("day %d: %s\n", d, day_name(d + argc - 4));
    unsigned char prog[] = {0, 0, 2, 4, 5, 10, 8, 11, 7, 10, 6, 9, 3, 1, 10, 42, 0};
    printf("interp=%d\n", interp(prog, (int)sizeof prog));
    return 0;
}

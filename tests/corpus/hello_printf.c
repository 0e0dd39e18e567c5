// printf and puts: the simplest possible program.
#include <stdio.h>

int main(void)
{
    puts("hello from puts");
    printf("hello from printf: %d %s %c %5.2f|%-6s|%06d\n", 42, "str", 'x', 3.14159, "left", 123);
    printf("%x %X %o %#x %lu %lld\n", 255u, 255u, 8u, 255u, 123456789UL, -9876543210LL);
    for (int i = 0; i < 3; i++)
        printf("line %d\n", i);
    return 0;
}

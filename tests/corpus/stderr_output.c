// Output on both stdout and stderr (captured separately), with a non-zero exit.
#include <stdio.h>

int main(void)
{
    printf("to stdout 1\n");
    fprintf(stderr, "to stderr 1: %d\n", 42);
    fputs("to stderr 2\n", stderr);
    printf("to stdout 2\n");
    fputc('!', stderr);
    fputc('\n', stderr);
    return 2;
}

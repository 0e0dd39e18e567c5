// A non-zero exit status through exit() from a nested call; stdio is flushed by exit.
#include <stdio.h>
#include <stdlib.h>

static void fail(int code)
{
    printf("failing with %d\n", code);
    exit(code);
}

int main(int argc, char **argv)
{
    (void)argv;
    printf("argc=%d\n", argc);
    if (argc > 1)
        fail(37);
    return 0;
}

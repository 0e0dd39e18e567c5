// A small first program for devlink: build it with `devlink build -o hello examples/hello/hello.c`.
#include <stdio.h>

static const char *greeting(void)
{
    return "Hello from a program linked by devlink!";
}

static int square(int x)
{
    return x * x;
}

int main(void)
{
    puts(greeting());
    for (int i = 1; i <= 5; i++)
        printf("%d squared is %d\n", i, square(i));
    puts("Edit this file and rebuild to see your change.");
    return 0;
}

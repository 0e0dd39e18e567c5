// atexit handlers run in reverse order of registration, after main returns.
#include <stdio.h>
#include <stdlib.h>

static int state = 0;

static void first(void) { printf("atexit first (registered first), state=%d\n", state); }
static void second(void) { printf("atexit second, state=%d\n", state); state++; }
void third(void) { printf("atexit third (registered last), state=%d\n", state); state += 10; }

int main(void)
{
    if (atexit(first) || atexit(second) || atexit(third))
        return 1;
    state = 1;
    printf("main returning with 3\n");
    return 3;
}

// write(1, ...) mixed with buffered printf, then fflush: the order on a pipe is
// deterministic (printf output stays buffered until fflush).
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void raw(const char *s) { write(1, s, strlen(s)); }

int main(void)
{
    printf("printf 1\n");
    raw("write 1\n");
    printf("printf 2\n");
    fflush(stdout);
    raw("write 2 (after fflush)\n");
    printf("printf 3 ");
    printf("continued\n");
    raw("write 3\n");
    fflush(stdout);
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("unbuffered printf\n");
    raw("write 4\n");
    printf("last printf, flushed at exit\n");
    return 0;
}

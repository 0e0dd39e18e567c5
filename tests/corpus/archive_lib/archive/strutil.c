// Archive member: uses libc's `stdout` directly (a data import) and stores &strcmp
// in initialised data (an absolute reference to a libc function).
#include <ctype.h>
#include <stdio.h>
#include <string.h>

long lib_scale(long x);

int lib_shout_count;
static int (*const comparator)(const char *, const char *) = strcmp;

void lib_shout(const char *s)
{
    char buf[128];
    size_t n = strlen(s);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)toupper((unsigned char)s[i]);
    buf[n] = 0;
    lib_shout_count++;
    fprintf(stdout, "%s! (scaled len %ld)\n", buf, lib_scale((long)n));
    fflush(stdout);
}

int (*lib_get_comparator(void))(const char *, const char *) { return comparator; }

// A program linked against a static archive (tests/corpus/archive_lib/archive/*.c,
// compiled with plain `cc -c` and packed with `ar rcs` by the harness). Only the members
// that are needed may be pulled in: unused.c defines `shadowed`, which main.c defines
// too, so loading it would be a duplicate definition.
#include <stdio.h>
#include <string.h>

int shadowed(void) { return 1; }

/* from strutil.o */
void lib_shout(const char *s);
int (*lib_get_comparator(void))(const char *, const char *);
extern int lib_shout_count;
/* from mathutil.o (pulled in only because strutil.o needs it, and main too) */
long lib_scale(long x);

int main(void)
{
    lib_shout("hello archive");
    lib_shout("second call");
    printf("lib_shout_count=%d\n", lib_shout_count);
    printf("lib_scale(21)=%ld\n", lib_scale(21));
    printf("comparator is strcmp: %d\n", lib_get_comparator() == strcmp);
    printf("comparator(\"a\",\"b\")<0: %d\n", lib_get_comparator()("a", "b") < 0);
    printf("shadowed()=%d\n", shadowed());
    return 0;
}

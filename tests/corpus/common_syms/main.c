// cflags: -fcommon
// COMMON symbols: tentative definitions in two files merge into one object;
// a tentative definition merges with a real (initialised) definition elsewhere.
#include <stdio.h>

int shared_counter;          /* COMMON here and in other.c */
double shared_values[100];   /* COMMON, 800 bytes, 8-aligned */
char shared_name[32];        /* COMMON */
int has_real_def;            /* COMMON here, initialised definition in other.c */
long only_here;              /* COMMON in one file only */

void other_bump(int n);
int other_read(void);
double other_sum(void);

int main(void)
{
    printf("initial: counter=%d has_real_def=%d only_here=%ld\n", shared_counter, has_real_def, only_here);
    shared_counter = 5;
    other_bump(10);
    printf("counter after bump: %d (other sees %d)\n", shared_counter, other_read());
    for (int i = 0; i < 100; i++)
        shared_values[i] = i * 0.5;
    printf("other_sum=%.1f\n", other_sum());
    printf("shared_name='%s'\n", shared_name);
    only_here = 77;
    printf("only_here=%ld has_real_def=%d\n", only_here, has_real_def);
    return 0;
}

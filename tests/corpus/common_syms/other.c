// cflags: -fcommon
#include <string.h>

int shared_counter;
double shared_values[100];
char shared_name[32];
int has_real_def = 1234;

void other_bump(int n)
{
    shared_counter += n;
    strcpy(shared_name, "set by other.c");
}

int other_read(void) { return shared_counter; }

double other_sum(void)
{
    double s = 0;
    for (int i = 0; i < 100; i++)
        s += shared_values[i];
    return s;
}

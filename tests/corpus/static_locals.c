// static functions and function-scope static locals (gcc names them n.0, n.1, ...).
#include <stdio.h>

static int counter(void)
{
    static int n;
    return ++n;
}

static int other_counter(void)
{
    static int n = 100;
    return n += 10;
}

static const char *name_of(int i)
{
    static const char *names[] = {"zero", "one", "two"};
    static char fallback[16];
    if (i >= 0 && i < 3)
        return names[i];
    snprintf(fallback, sizeof fallback, "n%d", i);
    return fallback;
}

int fib_memo(int k)
{
    static long memo[64];
    static int calls;
    calls++;
    if (k < 2)
        return k;
    if (memo[k])
        return (int)memo[k];
    memo[k] = fib_memo(k - 1) + fib_memo(k - 2);
    if (k == 30)
        printf("fib_memo calls so far: %d\n", calls);
    return (int)memo[k];
}

int main(void)
{
    for (int i = 0; i < 3; i++)
        printf("counter=%d other=%d\n", counter(), other_counter());
    for (int i = 0; i < 5; i++)
        printf("name_of(%d)=%s\n", i, name_of(i));
    printf("fib(30)=%d\n", fib_memo(30));
    printf("fib(30) again=%d\n", fib_memo(30));
    return 0;
}

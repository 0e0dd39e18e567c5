// stdarg: a variadic sum, a vprintf wrapper, va_copy.
#include <stdarg.h>
#include <stdio.h>

static int sum_ints(int count, ...)
{
    va_list ap;
    va_start(ap, count);
    int s = 0;
    for (int i = 0; i < count; i++)
        s += va_arg(ap, int);
    va_end(ap);
    return s;
}

static double mean(int count, ...)
{
    va_list ap;
    va_start(ap, count);
    double s = 0;
    for (int i = 0; i < count; i++)
        s += va_arg(ap, double);
    va_end(ap);
    return s / count;
}

static void logf_(const char *tag, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    char buf[64];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    printf("[%s] (%d chars) ", tag, n);
    vprintf(fmt, ap2);
    putchar('\n');
    va_end(ap2);
    va_end(ap);
}

int main(void)
{
    printf("sum0=%d sum3=%d sum8=%d\n", sum_ints(0), sum_ints(3, 1, 2, 3),
           sum_ints(8, 1, 2, 3, 4, 5, 6, 7, 8));
    printf("mean=%.3f\n", mean(4, 1.5, 2.5, 3.5, 4.5));
    logf_("info", "%s has %d items costing %.2f", "cart", 3, 19.99);
    logf_("mixed", "%d %ld %lld %c %s %f %e", 1, 2L, 3LL, 'z', "s", 0.5, 12345.678);
    return 0;
}

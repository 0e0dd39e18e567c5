// Floating-point formatting with printf and parsing with strtod.
#include <float.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    double vals[] = {0.0, -0.0, 1.0, -1.5, 3.141592653589793, 1e-300, 6.02214076e23, 1.0 / 3, 0.1 + 0.2,
                     DBL_MAX, DBL_MIN, 123456789.125};
    for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++)
        printf("%%f=%f %%e=%e %%g=%g %%.17g=%.17g %%a=%a\n", vals[i], vals[i], vals[i], vals[i], vals[i]);
    float f = 1.1f;
    printf("float %f %.9g\n", (double)f, (double)f);
    long double ld = 1.0L / 7;
    printf("long double %.20Lf %Lg\n", ld, ld);
    printf("width: [%10.3f] [%-10.2e] [%+g] [% .1f] [%010.4f]\n", 3.14159, 2718.28, 1.5, 2.25, -1.5);
    printf("strtod: %.6f %.3e %g\n", strtod("123.456", NULL), strtod("-4.5e-3", NULL), strtod("inf", NULL));
    volatile double zero = 0.0;
    printf("special: %f %f %f\n", 1.0 / zero, -1.0 / zero, zero / zero < 0 ? 0.0 : 1.0);
    double acc = 0;
    for (int i = 1; i <= 1000; i++)
        acc += 1.0 / ((double)i * i);
    printf("sum 1/i^2 = %.12f\n", acc);
    return 0;
}

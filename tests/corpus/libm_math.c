// ldflags: -lm
// libm: sqrt, sin, cos, pow, exp, log, fmod, floor/ceil, on values the compiler cannot fold.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    (void)argv;
    volatile double base = 2.0 + argc - 4;   /* argc is 4 with args "a b c" */
    double x = base;
    printf("sqrt(%g)=%.10f\n", x, sqrt(x));
    printf("sin(1)=%.10f cos(1)=%.10f\n", sin(x - 1), cos(x - 1));
    printf("pow(2,10)=%.1f pow(2.5,3.5)=%.10f\n", pow(x, 10), pow(x + 0.5, 3.5));
    printf("exp(1)=%.10f log(10)=%.10f log10(1000)=%.3f\n", exp(x - 1), log(x * 5), log10(x * 500));
    printf("fmod(10,3)=%.1f floor(-2.5)=%.1f ceil(2.1)=%.1f round(2.5)=%.1f\n",
           fmod(x * 5, 3), floor(-x - 0.5), ceil(x + 0.1), round(x + 0.5));
    printf("atan2(1,1)*4=%.10f hypot(3,4)=%.1f\n", atan2(x - 1, x - 1) * 4, hypot(x + 1, x + 2));
    printf("sqrtf(2)=%.6f powf=%.4f\n", (double)sqrtf((float)x), (double)powf((float)x, 0.5f));
    printf("isnan(sqrt(-1))=%d isinf(1/0)=%d\n", isnan(sqrt(-x)) != 0, isinf(x / (x - 2)) != 0);
    return 0;
}

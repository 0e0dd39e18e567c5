// const tables: numbers, strings, pointers to strings and to functions (.rodata, .data.rel.ro).
#include <stdio.h>

static const int primes[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29};
const double weights[4] = {0.1, 0.2, 0.3, 0.4};
const char greeting[] = "const char array";
const char *const colors[] = {"red", "green", "blue"};
static const char *const *const colors_ptr = colors;

static int twice(int x) { return 2 * x; }
static int square(int x) { return x * x; }
int negate(int x) { return -x; }

typedef int (*unary)(int);
static const unary transforms[] = {twice, square, negate};
const struct { const char *name; unary fn; } named[] = {
    {"twice", twice}, {"square", square}, {"negate", negate},
};
static const struct { int key; const char *value; } lookup[] = {
    {10, "ten"}, {20, "twenty"}, {30, "thirty"},
};

int main(void)
{
    int s = 0;
    for (unsigned i = 0; i < sizeof primes / sizeof primes[0]; i++)
        s += primes[i];
    printf("sum of primes=%d\n", s);
    double w = 0;
    for (int i = 0; i < 4; i++)
        w += weights[i] * (i + 1);
    printf("weighted=%.2f\n", w);
    printf("%s / %s %s %s\n", greeting, colors[0], colors_ptr[1], colors[2]);
    for (int i = 0; i < 3; i++)
        printf("transforms[%d](7)=%d named %s(5)=%d\n", i, transforms[i](7), named[i].name, named[i].fn(5));
    for (int i = 0; i < 3; i++)
        printf("lookup %d=%s\n", lookup[i].key, lookup[i].value);
    printf("same fn in both tables: %d\n", transforms[2] == named[2].fn && named[2].fn == negate);
    return 0;
}

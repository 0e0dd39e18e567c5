// check-nm-O2: \.constprop\.[0-9]+$ \.isra\.[0-9]+$ \.part\.[0-9]+$ \.cold$
// Functions that gcc -O2 clones or splits: f.constprop.N (a static function always
// called with a constant argument), f.isra.N (scalar replacement of a struct argument),
// f.part.N (partial inlining of an early-return guard), f.cold (an unlikely error
// path moved to .text.unlikely). The program must never take the cold paths.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* .cold: the unlikely branches call a cold function and end in a noreturn call */
static __attribute__((cold, noinline)) void report(const char *what, int a, int b)
{
    fprintf(stderr, "%s (%d, %d)\n", what, a, b);
    fflush(stderr);
}

__attribute__((noinline)) int checked_div(int a, int b)
{
    if (__builtin_expect(b == 0, 0)) {
        report("checked_div: division by zero", a, b);
        abort();
    }
    return a / b;
}

__attribute__((noinline)) int find_index(const int *t, int n, int key)
{
    for (int i = 0; i < n; i++) {
        if (t[i] == key)
            return i;
        if (__builtin_expect(t[i] < -1000000, 0)) {
            report("find_index: corrupt table", i, t[i]);
            fprintf(stderr, "giving up at %d\n", i);
            return -2;
        }
    }
    return -1;
}

/* .constprop: every call passes step == 3 */
static long weighted_sum(const int *v, int n, int step)
{
    long s = 0;
    for (int i = 0; i < n; i += step) {
        s += (long)v[i] * (i + 1);
        if (s > 1000000)
            s %= 99991;
        s ^= (s >> 3);
    }
    for (int i = n - 1; i >= 0; i -= step)
        s += v[i] % 7;
    return s;
}

/* .isra: only two scalar fields of a large struct are read */
struct record {
    char name[64];
    int weight;
    int height;
    double unused[8];
};

static __attribute__((noinline)) int bmi_like(const struct record *r)
{
    int w = r->weight, h = r->height;
    int score = 0;
    for (int i = 0; i < h; i++)
        score += (w * (i + 1)) % (h + 1);
    return score;
}

/* .part: a cheap guard inlined into callers, the big rest split out */
static int expensive_checksum(const char *s)
{
    if (s == NULL || s[0] == 0)
        return 0;
    unsigned h = 2166136261u;
    for (int round = 0; round < 4; round++) {
        for (const char *p = s; *p; p++) {
            h ^= (unsigned char)*p;
            h *= 16777619u;
            if ((h & 0xff) == 0x42)
                h = (h >> 7) | (h << 25);
        }
        h += (unsigned)round * 0x9e3779b9u;
        if (h % 13 == 0)
            h = ~h;
    }
    return (int)(h & 0x7fffffff);
}

int use_checksum_a(const char *s) { return expensive_checksum(s) % 1000; }
int use_checksum_b(const char *s) { return expensive_checksum(s) % 777; }

int main(int argc, char **argv)
{
    (void)argv;
    int v[50];
    for (int i = 0; i < 50; i++)
        v[i] = i * i - 7 * i + argc;
    printf("weighted_sum a=%ld\n", weighted_sum(v, 50, 3));
    printf("weighted_sum b=%ld\n", weighted_sum(v + 5, 40, 3));
    printf("weighted_sum c=%ld\n", weighted_sum(v + 10, 30, 3));

    struct record r1, r2;
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    strcpy(r1.name, "first");
    r1.weight = 70 + argc;
    r1.height = 180;
    strcpy(r2.name, "second");
    r2.weight = 55;
    r2.height = 160 + argc;
    printf("%s=%d %s=%d\n", r1.name, bmi_like(&r1), r2.name, bmi_like(&r2));

    printf("checksum a=%d b=%d empty=%d\n", use_checksum_a("hello world"), use_checksum_b("devlink"),
           use_checksum_a(""));
    printf("find_index=%d %d\n", find_index(v, 50, 8 * 8 - 7 * 8 + argc), find_index(v, 50, -5));
    printf("checked_div=%d %d\n", checked_div(100, argc), checked_div(-81, argc - 1));
    return 0;
}

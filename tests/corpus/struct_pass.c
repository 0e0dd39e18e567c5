// Structs passed and returned by value: small (in registers), mixed int/float, large (memory).
#include <stdio.h>
#include <string.h>

struct pair { int a, b; };
struct vec2 { double x, y; };
struct mixed { long id; float w; char tag; };
struct big { int data[16]; char name[24]; };

__attribute__((noinline)) struct pair swap(struct pair p) { return (struct pair){p.b, p.a}; }
__attribute__((noinline)) struct vec2 add(struct vec2 u, struct vec2 v) { return (struct vec2){u.x + v.x, u.y + v.y}; }
__attribute__((noinline)) struct mixed tweak(struct mixed m) { m.id *= 2; m.w += 0.5f; m.tag++; return m; }

__attribute__((noinline)) struct big make_big(int seed, const char *name)
{
    struct big b;
    for (int i = 0; i < 16; i++)
        b.data[i] = seed * i;
    strncpy(b.name, name, sizeof b.name - 1);
    b.name[sizeof b.name - 1] = 0;
    return b;
}

__attribute__((noinline)) long sum_big(struct big b, struct pair extra, double scale)
{
    long s = 0;
    for (int i = 0; i < 16; i++)
        s += b.data[i];
    return (long)((s + extra.a + extra.b) * scale);
}

typedef struct pair (*pair_fn)(struct pair);

int main(void)
{
    struct pair p = swap((struct pair){1, 2});
    printf("swap: %d %d\n", p.a, p.b);
    pair_fn fn = swap;
    p = fn(p);
    printf("swap via pointer: %d %d\n", p.a, p.b);
    struct vec2 v = add((struct vec2){1.5, 2.5}, (struct vec2){0.25, -4});
    printf("add: %.2f %.2f\n", v.x, v.y);
    struct mixed m = tweak((struct mixed){21, 1.25f, 'a'});
    printf("tweak: %ld %.2f %c\n", m.id, (double)m.w, m.tag);
    struct big b = make_big(3, "a big struct");
    printf("big: %s data[15]=%d\n", b.name, b.data[15]);
    printf("sum_big: %ld\n", sum_big(b, (struct pair){10, 20}, 0.5));
    return 0;
}

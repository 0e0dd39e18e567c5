// qsort and bsearch with comparison callbacks (libc calls back into the program).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int cmp_desc(const void *a, const void *b)
{
    return cmp_int(b, a);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct person { const char *name; int age; };

static int by_age_then_name(const void *a, const void *b)
{
    const struct person *p = a, *q = b;
    if (p->age != q->age)
        return p->age - q->age;
    return strcmp(p->name, q->name);
}

static void show(const char *label, const int *v, int n)
{
    printf("%s:", label);
    for (int i = 0; i < n; i++)
        printf(" %d", v[i]);
    putchar('\n');
}

int main(void)
{
    int v[20];
    unsigned s = 12345;
    for (int i = 0; i < 20; i++) {
        s = s * 1103515245u + 12345u;
        v[i] = (int)((s >> 16) % 1000);
    }
    show("orig", v, 20);
    qsort(v, 20, sizeof v[0], cmp_int);
    show("asc", v, 20);
    int key = v[7];
    int *found = bsearch(&key, v, 20, sizeof v[0], cmp_int);
    printf("bsearch %d -> index %ld\n", key, found ? (long)(found - v) : -1L);
    int (*cmp)(const void *, const void *) = cmp_desc;
    qsort(v, 20, sizeof v[0], cmp);
    show("desc", v, 20);

    const char *words[] = {"pear", "apple", "fig", "banana", "cherry", "date"};
    qsort(words, 6, sizeof words[0], cmp_str);
    for (int i = 0; i < 6; i++)
        printf("%s%s", words[i], i < 5 ? " " : "\n");

    struct person people[] = {{"carol", 30}, {"alice", 25}, {"bob", 30}, {"dave", 20}};
    qsort(people, 4, sizeof people[0], by_age_then_name);
    for (int i = 0; i < 4; i++)
        printf("%s(%d)\n", people[i].name, people[i].age);
    return 0;
}

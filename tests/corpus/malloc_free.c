// malloc / calloc / realloc / free: a linked list and a growing array.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    int value;
    struct node *next;
};

static struct node *push(struct node *head, int v)
{
    struct node *n = malloc(sizeof *n);
    if (!n) { puts("oom"); exit(2); }
    n->value = v;
    n->next = head;
    return n;
}

int main(void)
{
    struct node *head = NULL;
    for (int i = 1; i <= 10; i++)
        head = push(head, i * i);
    long sum = 0;
    int count = 0;
    while (head) {
        struct node *next = head->next;
        sum += head->value;
        count++;
        free(head);
        head = next;
    }
    printf("list: %d nodes, sum %ld\n", count, sum);

    size_t cap = 1, len = 0;
    int *arr = malloc(cap * sizeof *arr);
    for (int i = 0; i < 1000; i++) {
        if (len == cap) {
            cap *= 2;
            arr = realloc(arr, cap * sizeof *arr);
        }
        arr[len++] = i;
    }
    long total = 0;
    for (size_t i = 0; i < len; i++)
        total += arr[i];
    printf("array: len %zu cap %zu total %ld\n", len, cap, total);
    free(arr);

    int *z = calloc(100, sizeof *z);
    int nonzero = 0;
    for (int i = 0; i < 100; i++)
        nonzero += z[i] != 0;
    printf("calloc nonzero: %d\n", nonzero);
    free(z);

    char *big = malloc(1 << 20);
    memset(big, 'q', 1 << 20);
    printf("big[12345] = %c\n", big[12345]);
    free(big);
    return 0;
}

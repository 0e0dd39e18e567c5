#include <stdio.h>

/* What a producer makes of its n-th item. */
long produce_item(long n)
{
    return n * n;
}

/* What a consumer does with one. */
void consume_item(int consumer, long item)
{
    printf("consumer %d got %ld\n", consumer, item);
    fflush(stdout);
}

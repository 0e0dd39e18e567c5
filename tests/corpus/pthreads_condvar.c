// pthreads: mutex + condition variable, a bounded producer/consumer queue.
#include <pthread.h>
#include <stdio.h>

#define CAP 8
#define ITEMS 2000
#define PRODUCERS 3

static int queue[CAP];
static int head, tail, count;
static int done_producers;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;

static void *producer(void *arg)
{
    int base = *(int *)arg;
    for (int i = 1; i <= ITEMS; i++) {
        pthread_mutex_lock(&lock);
        while (count == CAP)
            pthread_cond_wait(&not_full, &lock);
        queue[tail] = base + i;
        tail = (tail + 1) % CAP;
        count++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    done_producers++;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&lock);
    return NULL;
}

struct tally { long sum; int n; };

static void *consumer(void *arg)
{
    struct tally *t = arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (count == 0 && done_producers < PRODUCERS)
            pthread_cond_wait(&not_empty, &lock);
        if (count == 0) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        int v = queue[head];
        head = (head + 1) % CAP;
        count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&lock);
        t->sum += v;
        t->n++;
    }
}

int main(void)
{
    pthread_t prod[PRODUCERS], cons[2];
    int bases[PRODUCERS] = {0, 100000, 200000};
    struct tally tallies[2] = {{0, 0}, {0, 0}};
    for (int i = 0; i < 2; i++)
        pthread_create(&cons[i], NULL, consumer, &tallies[i]);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&prod[i], NULL, producer, &bases[i]);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(prod[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(cons[i], NULL);
    long expect = 0;
    for (int p = 0; p < PRODUCERS; p++)
        for (int i = 1; i <= ITEMS; i++)
            expect += bases[p] + i;
    printf("consumed %d items, sum %ld, expected %ld, ok=%d\n", tallies[0].n + tallies[1].n,
           tallies[0].sum + tallies[1].sum, expect, tallies[0].sum + tallies[1].sum == expect);

    /* a recursive mutex and trylock */
    pthread_mutexattr_t attr;
    pthread_mutex_t rec;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &attr);
    pthread_mutex_lock(&rec);
    printf("recursive relock: %d\n", pthread_mutex_trylock(&rec));
    pthread_mutex_unlock(&rec);
    pthread_mutex_unlock(&rec);
    pthread_mutex_destroy(&rec);
    pthread_mutexattr_destroy(&attr);
    return 0;
}

/* Producers and consumers on a bounded queue, four threads: edit work.c and save;
 * every thread runs the new code from its next item on. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

long produce_item(long n);                 /* work.c */
void consume_item(int consumer, long item);

#define CAP 16
static long queue[CAP];
static int head, count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
long produced;                             /* survives patches */

static void *producer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (count == CAP)
            pthread_cond_wait(&not_full, &lock);
        queue[(head + count++) % CAP] = produce_item(++produced);
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
        usleep(20000);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    int id = (int)(long)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (count == 0)
            pthread_cond_wait(&not_empty, &lock);
        long item = queue[head];
        head = (head + 1) % CAP, count--;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&lock);
        consume_item(id, item);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[4];
    pthread_create(&t[0], NULL, producer, NULL);
    pthread_create(&t[1], NULL, producer, NULL);
    pthread_create(&t[2], NULL, consumer, (void *)1L);
    pthread_create(&t[3], NULL, consumer, (void *)2L);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    return 0;
}

// _Thread_local: initialised and zero-initialised TLS variables, in main and in
// threads, a TLS variable defined in another file (extern), static TLS in a function.
#include <pthread.h>
#include <stdio.h>

_Thread_local int tls_init = 100;       /* .tdata */
_Thread_local long tls_zero;            /* .tbss */
_Thread_local char tls_buf[64] = "main";
static _Thread_local int tls_static = 5;
extern _Thread_local int tls_other;     /* defined in other.c (.tdata) */
extern _Thread_local double tls_other_zero; /* defined in other.c (.tbss) */

int *other_tls_addr(void);
void other_tls_bump(void);

static int per_thread_calls(void)
{
    static _Thread_local int calls;
    return ++calls;
}

struct result {
    int id, init, other, calls, addr_same;
    long zero;
    double other_zero;
};

static void *worker(void *arg)
{
    struct result *r = arg;
    tls_init += r->id;
    tls_zero += r->id * 1000;
    tls_static += r->id;
    for (int i = 0; i < r->id; i++)
        other_tls_bump();
    tls_other_zero += 0.25 * r->id;
    per_thread_calls();
    r->init = tls_init + tls_static;
    r->zero = tls_zero;
    r->other = tls_other;
    r->other_zero = tls_other_zero;
    r->calls = per_thread_calls();
    r->addr_same = other_tls_addr() == &tls_other;
    return NULL;
}

int main(void)
{
    printf("main: init=%d zero=%ld buf=%s static=%d other=%d other_zero=%.2f\n",
           tls_init, tls_zero, tls_buf, tls_static, tls_other, tls_other_zero);
    tls_init = 1;
    tls_zero = 2;
    other_tls_bump();
    enum { N = 4 };
    pthread_t th[N];
    struct result res[N];
    for (int i = 0; i < N; i++) {
        res[i] = (struct result){.id = i + 1};
        pthread_create(&th[i], NULL, worker, &res[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        printf("thread %d: init+static=%d zero=%ld other=%d other_zero=%.2f calls=%d addr_same=%d\n",
               res[i].id, res[i].init, res[i].zero, res[i].other, res[i].other_zero,
               res[i].calls, res[i].addr_same);
    printf("main after: init=%d zero=%ld other=%d calls=%d addr_same=%d\n",
           tls_init, tls_zero, tls_other, per_thread_calls(), other_tls_addr() == &tls_other);
    return 0;
}

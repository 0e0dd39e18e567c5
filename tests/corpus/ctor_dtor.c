// constructor/destructor attributes with priorities; they run around main,
// constructors in increasing priority order and destructors in decreasing order.
#include <stdio.h>

static int order[16];
static int n;

__attribute__((constructor(200))) static void ctor_200(void) { order[n++] = 200; }
__attribute__((constructor(101))) static void ctor_101(void) { order[n++] = 101; }
__attribute__((constructor)) static void ctor_default(void) { order[n++] = 65535; }
__attribute__((constructor(150))) void ctor_150(void) { order[n++] = 150; }

__attribute__((destructor(101))) static void dtor_101(void) { printf("dtor 101 (runs last)\n"); }
__attribute__((destructor(300))) static void dtor_300(void) { printf("dtor 300\n"); }
__attribute__((destructor)) static void dtor_default(void) { printf("dtor default (runs first)\n"); }

int main(void)
{
    printf("constructors ran: %d:", n);
    for (int i = 0; i < n; i++)
        printf(" %d", order[i]);
    printf("\nmain done\n");
    return 0;
}
